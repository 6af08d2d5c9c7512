-- The server `make soak` attacks (`jsonrpc serve bench/soak_server.lua
-- --listen tcp://127.0.0.1:0`): add, echo, sleep (waits on a timer without
-- blocking the loop), stream (notifications back to the caller) and fail
-- (a plain Lua error). Hostile clients choose the params, so the waits and
-- the counts are clamped: the soak is about the engine, not about a
-- handler told to sleep for a year.
local jsonrpc = require "jsonrpc"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local wait = dofile(here .. "/peers/wait.lua")

local MAX_SLEEP_MS = 50
local MAX_NOTIFICATIONS = 1000000

local server = jsonrpc.server()

local function clamp(n, high)
  if type(n) ~= "number" or n ~= n then return 0 end
  return math.floor(math.max(0, math.min(n, high)))
end

server:method("add", function(a, b) return a + b end)

server:method("echo", function(x) return x end)

server:method("sleep", function(ms)
  ms = clamp(ms, MAX_SLEEP_MS)
  wait(ms)
  return ms
end)

-- notify waits by itself while the client is behind (write_high_water), and
-- raises once the connection is closed, which ends the handler
server:method("stream", function(ctx, n)
  n = clamp(n, MAX_NOTIFICATIONS)
  local conn = ctx.connection
  for i = 1, n do conn:notify("tick", { i }) end
  return n
end, { context = true })

server:method("fail", function() error("fail was called") end)

return server
