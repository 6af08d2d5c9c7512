-- The methods our server serves in the benchmarks (`jsonrpc serve
-- bench/peers/ours.lua --listen tcp://127.0.0.1:0`), the same four every
-- implementation serves: add, echo, sleep (waits on a timer without
-- blocking the loop) and stream (n notifications to the caller, then n).
local jsonrpc = require "jsonrpc"
local uv = require "luv"

local server = jsonrpc.server()

server:method("add", function(a, b) return a + b end)

server:method("echo", function(x) return x end)

server:method("sleep", function(ms)
  local co = coroutine.running()
  local timer = uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    coroutine.resume(co)
  end)
  coroutine.yield()
  return ms
end)

-- notify waits by itself while the client is behind (write_high_water)
server:method("stream", function(ctx, n)
  local conn = ctx.connection
  for i = 1, n do conn:notify("tick", { i }) end
  return n
end, { context = true })

return server
