// A peer that frames by hand (no JSON-RPC library), to check our framing
// on the wire: node raw_peer.js FRAMING HOST PORT. It sends awkward but
// valid input and parses our answers itself; prints a JSON report.
const net = require('net');

const [framing, host, port] = process.argv.slice(2);
const BIG = 64 * 1024 * 1024;

function frame(text) {
  const body = Buffer.from(text, 'utf8');
  if (framing === 'be32') {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    return Buffer.concat([head, body]);
  }
  if (framing === 'ndjson') return Buffer.concat([body, Buffer.from('\r\n')]);
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]);
}

// parses whole messages out of the received bytes, in any chunking; the
// chunks are kept in a list and joined once a message is complete (joining
// on every chunk would be quadratic for 64 MiB)
function makeParser(onMessage) {
  let chunks = [], size = 0, need = 0;
  const take = (n) => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    chunks = all.length > n ? [all.subarray(n)] : [];
    size = all.length - n;
    return all.subarray(0, n);
  };
  const peek = () => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    chunks = size ? [all] : [];
    return all;
  };
  return (chunk) => {
    chunks.push(chunk);
    size += chunk.length;
    // a line cannot end in a chunk without a newline: nothing to look at
    if (framing === 'ndjson' && need === 0 && chunk.indexOf(10) < 0) return;
    for (;;) {
      if (need > 0) {                       // a body of known length
        if (size < need) return;
        const body = take(need);
        need = 0;
        onMessage(body.toString('utf8'));
        continue;
      }
      if (framing === 'be32') {
        if (size < 4) return;
        need = take(4).readUInt32BE(0);
        if (need === 0) { onMessage(''); }
      } else if (framing === 'ndjson') {
        const all = peek();
        const nl = all.indexOf(10);
        if (nl < 0) return;
        const line = take(nl + 1).subarray(0, nl).toString('utf8').replace(/\r$/, '');
        if (line.trim()) onMessage(line);
      } else {
        const all = peek();
        const end = all.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = take(end + 4).toString('ascii');
        need = Number(/content-length:\s*(\d+)/i.exec(head)[1]);
      }
    }
  };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function main() {
  const socket = net.connect(Number(port), host);
  await new Promise((ok, ko) => { socket.on('connect', ok); socket.on('error', ko); });
  const waiting = new Map();
  socket.on('data', makeParser((text) => {
    const msg = JSON.parse(text);
    const w = waiting.get(msg.id);
    if (w) { waiting.delete(msg.id); w(msg); }
  }));
  const answer = (id) => new Promise((ok) => waiting.set(id, ok));
  const req = (id, method, params) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
  const out = {};

  // 1. a header split across reads, lowercase and with a Content-Type
  if (framing === 'content-length') {
    const body = Buffer.from(req(1, 'add', [1, 2]));
    const parts = ['content-le', 'ngth: ' + body.length + '\r', '\nContent-Type: application/vscode-jsonrpc; ',
                   'charset=utf-8\r\n', '\r', '\n'];
    const a = answer(1);
    for (const p of parts) { socket.write(p); await sleep(15); }
    socket.write(body.subarray(0, 5)); await sleep(15); socket.write(body.subarray(5));
    out.split_header = (await a).result;
  } else {
    const bytes = frame(req(1, 'add', [1, 2]));
    const a = answer(1);
    for (let i = 0; i < bytes.length; i += 3) { socket.write(bytes.subarray(i, i + 3)); }
    out.split_header = (await a).result;
  }

  // 2. several frames in one write
  const many = [2, 3, 4].map((i) => answer(i));
  socket.write(Buffer.concat([2, 3, 4].map((i) => frame(req(i, 'add', [i, i])))));
  out.several = (await Promise.all(many)).map((m) => m.result);

  // 3. multibyte UTF-8 bodies: lengths are bytes, not characters
  const text = 'é😀 ünïcödé ∑ '.repeat(1000);
  const m = answer(5);
  socket.write(frame(req(5, 'echo', [text])));
  const echoed = (await m).result;
  out.multibyte_ok = Array.isArray(echoed) && echoed[0] === text;

  // 4. a 64 MiB message each way
  const huge = 'x'.repeat(BIG);
  const h = answer(6);
  const t0 = Date.now();
  socket.write(frame(req(6, 'length_of', [huge])));
  out.big_length = (await h).result;
  const b = answer(7);
  socket.write(frame(req(7, 'make', [BIG])));
  out.big_back = (await b).result.length;
  out.big_ms = Date.now() - t0;

  console.log(JSON.stringify(out));
  socket.end();
}

main().catch((e) => { console.error('raw peer failed:', e && (e.stack || e)); process.exit(1); });
