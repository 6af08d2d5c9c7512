--- A raw client on luv for the hardening specs: it writes bytes as a
-- hostile or broken peer would (half a header, a flood it never reads, a
-- reset) and records what comes back.
local uv = require "luv"

local raw = {}

local Client = {}
Client.__index = Client

--- Connects to tcp://HOST:PORT or unix:///PATH (from the local address
-- `from` when given); runs the loop until connected (at most 2 s).
-- Returns the client, or nil and why.
function raw.connect(url, run_until, from)
  local host, port = url:match("^tcp://([%d%.]+):(%d+)$")
  local path = url:match("^unix://(/.+)$")
  local handle = host and uv.new_tcp() or uv.new_pipe(false)
  local c = setmetatable({ handle = handle, received = "", eof = false }, Client)
  local function on_connect(err)
    c.connect_err = err
    c.connected = err == nil
    if err then return end
    handle:read_start(function(rerr, data)
      if rerr or not data then
        c.eof = true
        c.read_err = rerr
        if not handle:is_closing() then handle:read_stop() end
      else
        c.received = c.received .. data
      end
    end)
  end
  if from then assert(handle:bind(from, 0)) end
  if host then handle:connect(host, tonumber(port), on_connect) else handle:connect(path, on_connect) end
  run_until(function() return c.connected ~= nil end, 2000)
  if not c.connected then
    if not handle:is_closing() then handle:close() end
    return nil, c.connect_err or "connect timed out"
  end
  return c
end

--- Queues bytes to write (luv copies them).
function Client:write(bytes)
  if not self.handle:is_closing() then self.handle:write(bytes) end
end

--- Stops reading: the kernel's buffers fill and the server's writes wait.
function Client:stop_reading()
  self.handle:read_stop()
end

--- Half-closes: no more bytes from us; the server may still answer.
function Client:shutdown()
  self.handle:shutdown()
end

--- Closes: a FIN, or with reset = true a RST (TCP only).
function Client:close(reset)
  if self.handle:is_closing() then return end
  local done = false
  local function closed() done = true end
  if reset and self.handle.close_reset then self.handle:close_reset(closed) else self.handle:close(closed) end
  -- Debian's luv 1.44 crashes at exit on a luv handle whose close is still
  -- pending: finish it now, unless the loop is running (we are in one of
  -- its callbacks, and it finishes the close itself)
  if uv.loop_mode() then return end
  local jsonrpc = require "jsonrpc"
  for _ = 1, 10 do
    if done or not pcall(jsonrpc.run, "nowait") then break end
  end
end

return raw
