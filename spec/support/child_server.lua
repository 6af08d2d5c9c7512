-- A JSON-RPC server on its own stdin/stdout, run as a child by the specs.
-- arg[1]: the framing.
local jsonrpc = require "jsonrpc"
local server = jsonrpc.server()
server:method("add", function(a, b) return a + b end)
server:method("subtract", function(a, b) return a - b end, {params = {"minuend", "subtrahend"}})
server:method("echo", function(...) return {...} end)
server:method("ask_back", function(ctx, x) return ctx.connection:call("double", {x}) + 1 end, {context = true})
server:method("noisy", function() print("this goes to stderr, not the stream") return "ok" end)
server:method("exit", function(code) os.exit(code) end)
local conn = assert(jsonrpc.stdio(server, {framing = arg[1]}))
conn:wait_closed()
