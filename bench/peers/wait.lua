-- wait(ms): suspends the calling handler's coroutine for ms milliseconds on
-- a libuv timer, without blocking the loop (the benchmark and soak servers'
-- `sleep` method).
local uv = require "luv"

return function(ms)
  local co = coroutine.running()
  local timer = uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    coroutine.resume(co)
  end)
  coroutine.yield()
end
