-- Methods for the command-line specs: `jsonrpc serve` takes a table of
-- functions as well as a server.
local jsonrpc = require "jsonrpc"
return {
  add = function(a, b) return a + b end,
  fail = function() error(jsonrpc.error(-32000, "out of stock", {item = 7})) end,
  slow = function()
    local uv = require "luv"
    local co = coroutine.running()
    local t = uv.new_timer()
    t:start(2000, 0, function() t:close(); coroutine.resume(co) end)
    coroutine.yield()
    return "done"
  end,
}
