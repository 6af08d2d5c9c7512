-- Connects to a host name whose first address refuses and whose last one
-- accepts; run as a child by the specs (in a private /etc/hosts when the
-- machine's own has no such name). arg[1]: the name, with two addresses.
-- Prints "answered by ADDR after ADDR refused" and exits with 0.
local jsonrpc = require "jsonrpc"
local uv = require "luv"

local name = arg[1]
local addrs = assert(uv.getaddrinfo(name, nil, { socktype = "stream" }))
local first, last = addrs[1] and addrs[1].addr, addrs[#addrs] and addrs[#addrs].addr
assert(first and first ~= last, name .. " does not have two addresses")

local function url(host, port)
  return (host:find(":", 1, true) and "tcp://[%s]:%d" or "tcp://%s:%d"):format(host, port)
end

local server = jsonrpc.server()
server:method("where", function(ctx) return ctx.connection.stream:peer() end, { context = true })
local listener = assert(server:listen(url(last, 0)))
local port = select(2, listener:address())
-- the first address must refuse that port
local refused, err = jsonrpc.connect(url(first, port))
assert(refused == nil and err.code == jsonrpc.codes.CONNECTION_FAILED, "the first address accepts")

local conn = assert(jsonrpc.connect(url(name, port)))
local peer = conn:call("where")
conn:close()
server:close()
jsonrpc.run("nowait")
io.write(("answered by %s after %s refused (peer %s)\n"):format(last, first, peer))
