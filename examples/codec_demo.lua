-- A tour of the foundation: exact JSON and stream framing, no sockets.
-- Run it with `make demo` (or, after `make`, with the paths make exports).
local jsonrpc = require "jsonrpc"

-- A request as a peer would send it: a 64-bit id, a float, an empty array.
local request = '{"jsonrpc":"2.0","id":1700000000123456,"method":"scale",' ..
                '"params":{"factor":0.1,"values":[],"label":"caf\\u00e9 \\ud83d\\ude00"}}'

local msg = assert(jsonrpc.decode(request))
print("id stays exact:     ", msg.id, math.type and math.type(msg.id) or "(number)")
print("escapes to UTF-8:   ", msg.params.label)
print("empty array kept:   ", jsonrpc.encode(msg.params.values))
print("float round-trips:  ", jsonrpc.encode(msg.params.factor))

-- The response goes out framed as LSP peers expect (Content-Length header).
local response = assert(jsonrpc.encode({jsonrpc = "2.0", id = msg.id,
                                        result = jsonrpc.array{}}))
local framer = jsonrpc.framer("content-length")
local wire = framer:frame(response)
print("framed response:    ", (wire:gsub("\r\n", "\\r\\n")))

-- The receiving side gets the bytes in arbitrary pieces; messages come out whole.
local receiver = jsonrpc.framer("content-length")
local received = {}
for i = 1, #wire, 7 do
  for _, m in ipairs(assert(receiver:feed(wire:sub(i, i + 6)))) do
    received[#received + 1] = m
  end
end
print("reassembled:        ", received[1] == response and "identical" or "DIFFERENT")

-- Bad input is an error value, never a crash or silent loss.
print("sparse table:       ", select(2, jsonrpc.encode({1, nil, 3})))
print("broken JSON:        ", select(2, jsonrpc.decode('{"id": 1,}')))
print("invalid UTF-8:      ", select(2, jsonrpc.decode('"\255"')))
