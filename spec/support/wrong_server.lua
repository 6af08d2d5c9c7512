-- A server that answers wrongly in one way (arg[1]), for the spec that
-- shows the load generator catches it: content-length frames on TCP,
-- printing "listening on tcp://127.0.0.1:PORT" on stderr.
--   right         correct answers to add (3), and to anything else an
--                 LSP-like result full of nested "id" keys and "error" words
--   wrong-result  {"result":"wrong"} with the right id
--   wrong-id      the id of the first request, every time
--   duplicate     every answer twice
--   short-batch   a batch answered with one response fewer
--   stale-echo    echo answered with the first string it was sent
local jsonrpc = require "jsonrpc"
local uv = require "luv"
local mode = arg[1] or "right"

local first_echo
local function result_for(request)
  if mode == "wrong-result" then return "wrong" end
  if request.method == "echo" then
    first_echo = first_echo or request.params[1]
    return mode == "stale-echo" and first_echo or request.params[1]
  end
  if request.method == "add" then return request.params[1] + request.params[2] end
  local items = {}
  for i = 1, 20 do items[i] = { id = i, label = "error " .. i, data = { id = -i } } end
  return { isIncomplete = false, items = items }
end

local first_id
local function answer(request)
  first_id = first_id or request.id
  local id = mode == "wrong-id" and first_id or request.id
  return { jsonrpc = "2.0", result = result_for(request), id = id }
end

local function reply(message)
  if message[1] ~= nil or getmetatable(message) == getmetatable(jsonrpc.array{}) then
    local out = {}
    for i, request in ipairs(message) do out[i] = answer(request) end
    if mode == "short-batch" then out[#out] = nil end
    return jsonrpc.array(out)
  end
  return answer(message)
end

local function frame(text) return ("Content-Length: %d\r\n\r\n%s"):format(#text, text) end

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
server:listen(64, function()
  local client = uv.new_tcp()
  server:accept(client)
  local buffer = ""
  client:read_start(function(err, data)
    if err or not data then client:close(); return end
    buffer = buffer .. data
    while true do
      local len, rest = buffer:match("^Content%-Length: (%d+)\r\n\r\n()")
      if not len or #buffer - rest + 1 < tonumber(len) then break end
      local body = buffer:sub(rest, rest + tonumber(len) - 1)
      buffer = buffer:sub(rest + tonumber(len))
      local text = frame(jsonrpc.encode(reply(jsonrpc.decode(body))))
      client:write(mode == "duplicate" and text .. text or text)
    end
  end)
end)
io.stderr:write(("listening on tcp://127.0.0.1:%d\n"):format(server:getsockname().port))
uv.run()
