-- Two endpoints wired together with plain function calls: each one both
-- calls its peer and serves it. This is what a transport does with bytes;
-- here the "wire" is a function call, so everything runs synchronously.
--   make && lua5.4 examples/endpoints_demo.lua   (with the paths `make` exports)
local jsonrpc = require "jsonrpc"

local client, server
client = jsonrpc.endpoint{ send = function(text) server:receive(text) end }
server = jsonrpc.endpoint{ send = function(text) client:receive(text) end }

server:method("subtract", function(minuend, subtrahend) return minuend - subtrahend end,
  { params = { "minuend", "subtrahend" } })
server:method("greet", function(name)
  -- a handler may call back the peer that called it
  local title = server:call("title_of", { name })
  return ("hello, %s %s"):format(title, name)
end)
client:method("title_of", function(name) return name == "Ada" and "Countess" or "citizen" end)

print(client:call("subtract", { 42, 23 }))                        --> 19
print(client:call("subtract", { subtrahend = 23, minuend = 42 })) --> 19
print(client:call("greet", { "Ada" }))

-- Errors: raised by call, returned by try_call.
local ok, err = pcall(client.call, client, "divide", { 1, 0 })
print(ok, err.code, err.message)
print(client:try_call("divide", { 1, 0 }))

-- A batch: results in call order, errors as values.
local batch = client:batch()
batch:call("subtract", { 10, 1 })
batch:notify("subtract", { 0, 0 })
batch:call("nope")
batch:call("greet", { "Bob" })
for i, r in ipairs(batch:send()) do
  print(i, jsonrpc.is_error(r) and ("error " .. r.code) or r)
end
