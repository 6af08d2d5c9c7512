-- Calls the calculator of examples/calculator_server.lua over TCP:
--   lua5.4 examples/calculator_client.lua [tcp://127.0.0.1:7400]
local jsonrpc = require "jsonrpc"

local url = arg[1] or "tcp://127.0.0.1:7400"
local conn, err = jsonrpc.connect(url)
if not conn then
  io.stderr:write("cannot reach the calculator at ", url, ": ", err.message, "\n")
  os.exit(1)
end

print("add(2, 3)            =", conn:call("add", { 2, 3 }))
print("subtract by name     =", conn:call("subtract", { subtrahend = 23, minuend = 42 }))
print("sum(1, 2, 3, 4)      =", conn:call("sum", { 1, 2, 3, 4 }))

local result, failure = conn:try_call("divide", { 1, 0 })
print("divide(1, 0)         =", result, failure.message, failure.data.dividend)

-- several calls in flight at once, each in its own coroutine
local answers = {}
for i = 1, 3 do
  coroutine.wrap(function() answers[i] = conn:call("add", { i, i * 10 }) end)()
end
while #answers < 3 do jsonrpc.run("once") end
print("in flight            =", table.concat(answers, " "))

conn:close()
