--- The URLs connections take: tcp://HOST:PORT (HOST a name, an IPv4
-- address or [IPv6]), unix:///PATH, and, where a transport speaks HTTP,
-- http://HOST[:PORT][/PATH].
local M = {}

local function host_port(rest)
  local host, port = rest:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = rest:match("^([^:/%[%]]+):(%d+)$") end
  return host, tonumber(port)
end

--- parse(url [, http]) -> {kind = "tcp", host, port} | {kind = "unix", path}
-- | {kind = "http", host, port, path} (only with http true) | nil, why
function M.parse(url, http)
  if type(url) ~= "string" then return nil, "URL must be a string" end
  local expected = http and "tcp://HOST:PORT, unix:///PATH or http://HOST[:PORT]/PATH"
                   or "tcp://HOST:PORT or unix:///PATH"
  local rest = url:match("^tcp://(.*)$")
  if rest then
    local host, port = host_port(rest)
    if host then
      if port > 65535 then return nil, "port out of range in " .. url end
      return { kind = "tcp", host = host, port = port }
    end
  end
  local path = url:match("^unix://(/.+)$")
  if path then return { kind = "unix", path = path } end
  rest = http and url:match("^http://(.*)$")
  if rest then
    local authority, target = rest:match("^([^/]*)(.*)$")
    local host, port = host_port(authority)
    if not host and authority:match("^%[[^%]]+%]$") then host, port = authority:sub(2, -2), 80 end
    if not host and authority:match("^[^:/%[%]]+$") then host, port = authority, 80 end
    if host and port <= 65535 then
      return { kind = "http", host = host, port = port, path = target ~= "" and target or "/",
               authority = authority }
    end
  end
  return nil, ("unsupported URL %q (expected %s)"):format(url, expected)
end

return M
