-- Methods for the command-line specs: `jsonrpc serve` takes a table of
-- functions as well as a server.
local jsonrpc = require "jsonrpc"

-- Waits ms on a luv timer, in the handler's coroutine.
local function sleep(ms)
  local uv = require "luv"
  local co = coroutine.running()
  local t = uv.new_timer()
  t:start(ms, 0, function() t:close(); coroutine.resume(co) end)
  coroutine.yield()
end

return {
  add = function(a, b) return a + b end,
  fail = function() error(jsonrpc.error(-32000, "out of stock", {item = 7})) end,
  slow = function() sleep(2000); return "done" end,
  sleep = function(ms) sleep(ms); return ms end,
  boom = function() error("the handler failed") end,
}
