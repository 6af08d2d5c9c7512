--- jsonrpc: JSON-RPC 2.0 for Lua with an engine in C.
-- This module is the public face; the work is done in jsonrpc.core (C) and
-- the small Lua modules beside this one.
-- Loading has no side effects beyond SIGPIPE (see docs/connection.md): the
-- transports, and luv with its loop, load on first use, so that a require
-- in nginx's master opens no descriptor for every worker to inherit.
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

}

--- A method registry that answers JSON-RPC texts: server:handle(text).
-- Its schedule option is the transports' (how its connections run
-- handlers and callbacks); the rest are the C server's.
function jsonrpc.server(opts)
  if type(opts) ~= "table" or opts.schedule == nil then return core.server(opts) end
  local c_opts = {}
  for k, v in pairs(opts) do if k ~= "schedule" then c_opts[k] = v end end
  local server = core.server(c_opts)
  require("jsonrpc.host").set_server_schedule(server, opts.schedule)
  return server
end

--- Both directions of one connection, sans-IO (see jsonrpc.endpoint).
function jsonrpc.endpoint(opts)
  return require("jsonrpc.endpoint").new(opts)
end

-- Inside nginx the event loop is nginx's own: a libuv loop run there
-- would hold the worker (jsonrpc.ngx speaks through cosockets instead).
local function refuse_in_nginx(what)
  if require("jsonrpc.host").nginx() then
    local ngx = rawget(_G, "ngx")
    error(("jsonrpc.%s: the libuv transports cannot run inside nginx (phase %s), "
           .. "whose worker runs its own event loop; use jsonrpc.ngx"):format(what, ngx.get_phase()), 3)
  end
end

-- The transports on first use; luv loads with them (our loop is then
-- luv's, so luv's timers and sockets and ours run together).
local transport
local function transport_for(what)
  if not transport then
    refuse_in_nginx(what)
    transport = require "jsonrpc.transport"
  end
  return transport
end

--- Connections over TCP and Unix sockets, stdio and child processes, and
-- the event loop.
function jsonrpc.connect(url, opts) return transport_for("connect").connect(url, opts) end
function jsonrpc.stdio(server, opts) return transport_for("stdio").stdio(server, opts) end
function jsonrpc.spawn(argv, opts) return transport_for("spawn").spawn(argv, opts) end
function jsonrpc.run(mode) return transport_for("run").run(mode) end

-- server:listen(url [, opts]) and server:close() join the C methods; a
-- server that never listened has nothing to close.
do
  local methods = getmetatable(core.server()).__index
  function methods.listen(server, url, opts)
    return transport_for("listen").listen(server, url, opts)
  end
  function methods.close(server, opts)
    if transport then return transport.close_server(server, opts) end
  end
  -- inside nginx, handlers may yield in OpenResty's APIs (jsonrpc.ngx
  -- keeps the C handle for the phases that cannot)
  if require("jsonrpc.host").nginx() then methods.handle = require("jsonrpc.ngx").handle end
end

return jsonrpc
