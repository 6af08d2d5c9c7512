-- Framing cost: one 64 MiB message fed whole versus fed in 4 KiB pieces
-- (and byte-sized pieces for a small stream), for each framing. Buffering is
-- meant to be linear, so the chunked ratio should stay near 1. Prints
-- figures; never fails.
local jsonrpc = require "jsonrpc"

local SIZE = tonumber(os.getenv("BENCH_FRAME_MIB") or "64") * 1024 * 1024
local CHUNK = 4096

local payload = '"' .. string.rep("x", SIZE - 2) .. '"'

local function best_of(n, fn)
  local best = math.huge
  for _ = 1, n do
    collectgarbage()
    local t0 = os.clock()
    fn()
    best = math.min(best, os.clock() - t0)
  end
  return best
end

-- The stream pre-cut into pieces, so that cutting is not timed.
local function pieces(stream, size)
  local list = {}
  for i = 1, #stream, size do list[#list + 1] = stream:sub(i, i + size - 1) end
  return list
end

local function feed_all(kind, list)
  local f = jsonrpc.framer(kind)
  local got = 0
  for i = 1, #list do
    local msgs, err = f:feed(list[i])
    if err then error(err) end
    for _, m in ipairs(msgs) do got = got + #m end
  end
  assert(got == #payload, "message lost")
end

print(("framing benchmark: one %d MiB message; %s"):format(SIZE / 1048576,
  jit and jit.version or _VERSION))
print(("%-15s %12s %16s %8s"):format("framing", "whole (s)", "4 KiB pieces (s)", "ratio"))
for _, kind in ipairs{"content-length", "be32", "ndjson"} do
  local stream = jsonrpc.framer(kind):frame(payload)
  local whole = { stream }
  local chunked = pieces(stream, CHUNK)
  local t_whole = best_of(3, function() feed_all(kind, whole) end)
  local t_chunked = best_of(3, function() feed_all(kind, chunked) end)
  print(("%-15s %12.3f %16.3f %8.2f"):format(kind, t_whole, t_chunked, t_chunked / t_whole))
  whole, chunked, stream = nil, nil, nil
end
