-- The stream peer of the OpenResty specs: a plain-Lua jsonrpc process
-- listening on TCP in each framing and on a Unix socket. It prints
-- "ready FRAMING PORT" lines and "ready unix PATH", and stops when its
-- stdin closes or after 120 s, whichever comes first.
local jsonrpc = require "jsonrpc"
local uv = require "luv"

local server = jsonrpc.server()
server:method("add", function(a, b) return a + b end)
server:method("echo", function(...) return { ... } end)
-- calls the client back on the same connection, and returns its answer
server:method("ask_back", function(ctx, n)
  return ctx.connection:call("client.twice", { n })
end, { context = true })
server:method("notify_back", function(ctx, text)
  ctx.connection:notify("client.note", { text })
  return true
end, { context = true })
server:method("slow", require("spec.support.calc").sleep)   -- waits ms on a luv timer

local listeners = {}
for _, framing in ipairs{ "content-length", "be32", "ndjson" } do
  local l = assert(server:listen("tcp://127.0.0.1:0", { framing = framing }))
  local _, port = l:address()
  listeners[#listeners + 1] = l
  io.stdout:write(("ready %s %d\n"):format(framing, port))
end
local path = assert(arg[1], "usage: peer.lua SOCKET_PATH")
listeners[#listeners + 1] = assert(server:listen("unix://" .. path))
io.stdout:write(("ready unix %s\n"):format(path))
io.stdout:flush()

local function stop()
  for _, l in ipairs(listeners) do l:close() end
  server:close()
  uv.stop()
end
local stdin = uv.new_pipe(false)
stdin:open(0)
stdin:read_start(function(_, data) if not data then stdin:close(); stop() end end)
local limit = uv.new_timer()
limit:start(120000, 0, function() limit:close(); if not stdin:is_closing() then stdin:close() end; stop() end)
jsonrpc.run()
