-- A calculator served over TCP. Run it, then examples/calculator_client.lua:
--   lua5.4 examples/calculator_server.lua [tcp://127.0.0.1:7400]
-- (from a checkout after `make`, with the paths `make` exports, or with the
-- module installed). Ctrl-C stops it.
local jsonrpc = require "jsonrpc"
local uv = require "luv"

local url = arg[1] or "tcp://127.0.0.1:7400"
local server = jsonrpc.server()

server:method("add", function(a, b) return a + b end, { params = { "a", "b" } })
server:method("subtract", function(minuend, subtrahend) return minuend - subtrahend end,
  { params = { "minuend", "subtrahend" } })
server:method("divide", function(a, b)
  if b == 0 then error(jsonrpc.error(-32000, "division by zero", { dividend = a })) end
  return a / b
end, { params = { "a", "b" } })
server:method("sum", function(...)
  local total = 0
  for _, v in ipairs({ ... }) do total = total + v end
  return total
end)

local listener = assert(server:listen(url))
io.stderr:write("calculator listening on ", listener.url, "\n")

local sigint = uv.new_signal()
sigint:start("sigint", function()
  sigint:close()
  server:close()
end)
jsonrpc.run()
