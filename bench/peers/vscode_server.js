// Benchmark peer: a JSON-RPC server on vscode-jsonrpc (npm, 8.2.x).
//   node bench/peers/vscode_server.js PORT      (PORT 0 picks a free port)
//   node bench/peers/vscode_server.js stdio:    (stdin and stdout; EOF ends it)
// Listens on TCP 127.0.0.1:PORT, prints "listening on tcp://127.0.0.1:<port>",
// serves Content-Length framed JSON-RPC until SIGTERM/SIGINT. Methods, with
// positional params: add(a, b), echo(x), sleep(ms) -> ms after a timer,
// stream(n) -> n notifications "tick" [i], then the result n, and the
// LSP-like ones of bench/peers/ours.lua. Batches are left
// to the library (vscode-jsonrpc ignores them: no answer).
'use strict';
const net = require('net');
const rpc = require('vscode-jsonrpc/node');

// The LSP-like messages, by the rules of bench/peers/lsp_like.lua.
function completion(n) {
  const items = [];
  for (let i = 1; i <= n; i++) {
    items.push({
      label: 'item_' + i + '_\u00e9\u2713',
      kind: i % 25 + 1,
      detail: 'fn(x: "int") -> ' + i,
      documentation: 'Line one\nline "two"\ttabbed \u4e2d\u6587',
      sortText: String(i).padStart(5, '0'),
      insertText: 'item_' + i + '(${1:x})',
      data: { id: i, position: { line: i, character: i % 80 } },
    });
  }
  return { isIncomplete: false, items };
}

const methods = {
  add: (a, b) => a + b,
  echo: (x) => x,
  sleep: (ms) => new Promise((resolve) => setTimeout(() => resolve(ms), ms)),
  add_named: (p) => p.a + p.b,
  complete: (n) => completion(n),
  diagnostics: (report) => report.diagnostics.length,
  did_open: (p) => p.textDocument.version,
};

// One connection: requests read from input, answers written to output.
function serve(input, output) {
  const conn = rpc.createMessageConnection(
    new rpc.StreamMessageReader(input), new rpc.StreamMessageWriter(output));

  // vscode-jsonrpc writes one message at a time behind a semaphore, and the
  // promise settles once the socket took the bytes: awaiting each one is the
  // flow control. (Awaiting only every 1000th is no faster and grows memory:
  // the semaphore schedules a setImmediate per queued write, and those pile
  // up by one per message, ~300 MB over a million.)
  const stream = async (n) => {
    for (let i = 1; i <= n; i++) await conn.sendNotification('tick', i);   // params: [i]
    return n;
  };

  for (const [name, fn] of Object.entries({ ...methods, stream })) {
    conn.onRequest(name, fn);
    conn.onNotification(name, (...args) => {   // run, no answer
      Promise.resolve().then(() => fn(...args)).catch(() => {});
    });
  }
  // The library's own answer here says "Unhandled method x"; the contract says:
  conn.onRequest(() => {
    throw new rpc.ResponseError(rpc.ErrorCodes.MethodNotFound, 'Method not found');
  });
  conn.onClose(() => conn.dispose());
  input.on('error', () => {});   // a peer that resets is just closed
  output.on('error', () => {});
  conn.listen();
}

if (process.argv[2] === 'stdio:') {
  serve(process.stdin, process.stdout);
  process.stdin.on('end', () => process.exit(0));
} else {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    serve(socket, socket);
  });
  server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
    process.stdout.write(`listening on tcp://127.0.0.1:${server.address().port}\n`);
  });
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
