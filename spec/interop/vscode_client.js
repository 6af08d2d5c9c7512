// A vscode-jsonrpc client calling our server: over TCP (host, port), or by
// starting our stdio server as its child ("spawn" program args...). Prints
// what it found as JSON; exits 1 on a failure.
const rpc = require('vscode-jsonrpc/node');
const net = require('net');
const cp = require('child_process');

async function exercise(conn) {
  conn.onRequest('double', (x) => 2 * x);
  conn.listen();
  const out = {};
  out.add = await conn.sendRequest('add', 1, 2);
  out.ask_back = await conn.sendRequest('ask_back', 20);          // we are called back mid-call
  out.named = await conn.sendRequest('subtract', { minuend: 42, subtrahend: 23 });
  try { await conn.sendRequest('nope', 1); } catch (e) { out.nope = e.code; }
  const text = 'é😀 ünïcödé '.repeat(1 << 16);                   // ~1.1 MiB of multibyte text
  const echoed = await conn.sendRequest('echo', text);
  out.multibyte_ok = Array.isArray(echoed) && echoed[0] === text;
  const many = await Promise.all([...Array(20).keys()].map((i) => conn.sendRequest('add', i, i)));
  out.concurrent = many.every((v, i) => v === 2 * i);
  return out;
}

async function main() {
  const [mode, ...rest] = process.argv.slice(2);
  let conn, child, socket;
  if (mode === 'spawn') {
    child = cp.spawn(rest[0], rest.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    conn = rpc.createMessageConnection(new rpc.StreamMessageReader(child.stdout),
                                       new rpc.StreamMessageWriter(child.stdin));
  } else {
    socket = net.connect(Number(rest[1]), rest[0]);
    await new Promise((ok, ko) => { socket.on('connect', ok); socket.on('error', ko); });
    conn = rpc.createMessageConnection(new rpc.SocketMessageReader(socket),
                                       new rpc.SocketMessageWriter(socket));
  }
  const out = await exercise(conn);
  console.log(JSON.stringify(out));
  conn.dispose();
  if (child) child.stdin.end();
  if (socket) socket.end();
}

main().catch((e) => { console.error('vscode client failed:', e && (e.stack || e)); process.exit(1); });
