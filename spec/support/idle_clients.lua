-- Opens N connections to URL (tcp://HOST:PORT), sends each the start of a
-- frame header and holds them: the cost of idle peers, for the hardening
-- spec. Prints "ready N" on stderr once all are open; exits after SECONDS.
local uv = require "luv"
local host, port = arg[1]:match("^tcp://([%d%.]+):(%d+)$")
local n, seconds = tonumber(arg[2]), tonumber(arg[3] or "10")
local open, handles = 0, {}
for i = 1, n do
  local t = uv.new_tcp()
  handles[i] = t
  t:connect(host, tonumber(port), function(err)
    if err then io.stderr:write("connect: ", err, "\n"); return end
    t:write("Content-Length: 10")
    open = open + 1
    if open == n then io.stderr:write("ready ", open, "\n") end
  end)
end
local stop = uv.new_timer()
stop:start(seconds * 1000, 0, function()
  stop:close()
  for _, t in ipairs(handles) do t:close() end
end)
uv.run()
