// A vscode-jsonrpc server, for our client to call: over TCP (prints the
// port it listens on) or over its own stdin/stdout ("stdio").
const rpc = require('vscode-jsonrpc/node');
const net = require('net');

function serve(reader, writer, onClose) {
  const conn = rpc.createMessageConnection(reader, writer);
  conn.onRequest('add', (a, b) => a + b);
  conn.onRequest('echo', (x) => x);
  // calls the caller back while the caller's call is in flight
  conn.onRequest('ask_back', async (x) => (await conn.sendRequest('double', x)) + 1);
  conn.onRequest('fail', () => { throw new rpc.ResponseError(-32000, 'out of stock', { item: 7 }); });
  conn.onNotification('note', (x) => conn.sendNotification('noted', x));
  conn.onClose(onClose);
  conn.listen();
}

if (process.argv[2] === 'stdio') {
  serve(new rpc.StreamMessageReader(process.stdin), new rpc.StreamMessageWriter(process.stdout),
        () => process.exit(0));
} else {
  const server = net.createServer((socket) => {
    serve(new rpc.SocketMessageReader(socket), new rpc.SocketMessageWriter(socket), () => {});
  });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
  process.stdin.on('end', () => process.exit(0));   // our spec closes stdin to stop us
  process.stdin.resume();
}
