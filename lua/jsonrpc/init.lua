--- jsonrpc: JSON-RPC 2.0 for Lua with an engine in C.
-- This module is the public face; the work is done in jsonrpc.core (C) and
-- the small Lua modules beside this one.
-- luv first, when it is there: our connections then share its loop, so
-- luv timers and sockets and ours run together (uv.run == jsonrpc.run).
pcall(require, "luv")
local core = require "jsonrpc.core"

local jsonrpc = {
  version = core.version,

  --- JSON text <-> Lua values (exact integers, shortest round-trip floats).
  encode = core.encode,
  decode = core.decode,

  --- The JSON null; the same value as cjson.null.
  null = core.null,

  --- Mark a table's JSON kind (also how decoded tables remember theirs).
  array = core.array,
  object = core.object,

  --- Sans-IO stream framings: "content-length", "be32", "ndjson".
  framer = core.framer,

  --- Error values: jsonrpc.error(code, message [, data]), and the codes.
  error = core.error,
  is_error = core.is_error,
  codes = core.codes,

  --- A method registry that answers JSON-RPC texts: server:handle(text).
  server = core.server,
}

--- Both directions of one connection, sans-IO (see jsonrpc.endpoint).
function jsonrpc.endpoint(opts)
  return require("jsonrpc.endpoint").new(opts)
end

local transport = require "jsonrpc.transport"

--- Connections over TCP and Unix sockets, on the event loop.
jsonrpc.connect = transport.connect
jsonrpc.stdio = transport.stdio
jsonrpc.spawn = transport.spawn
jsonrpc.run = transport.run

-- server:listen(url [, opts]) and server:close() join the C methods.
do
  local methods = getmetatable(core.server()).__index
  methods.listen = transport.listen
  methods.close = transport.close_server
end

return jsonrpc
