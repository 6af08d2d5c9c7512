-- Cross-cutting concerns with the server's hooks: authentication, logging
-- and rate limiting, all outside the methods themselves. Sans-IO: requests
-- are plain strings here; a transport fills the context (peer, headers).
--   make && lua5.4 examples/hooks_demo.lua   (with the paths `make` exports)
local jsonrpc = require "jsonrpc"

local TOKENS = { ["s3cret"] = "alice" }   -- token -> user
local RATE = 3                            -- calls per peer per window

local calls_by_peer = {}
local log = {}

local server = jsonrpc.server{
  -- Authentication: every request must carry a known token in its context.
  -- Raising a jsonrpc.error rejects the request before any method runs.
  on_request = function(req)
    local user = TOKENS[req.context.token or ""]
    if not user then
      error(jsonrpc.error(-32001, "Unauthorized", { method = req.method }))
    end
    req.context.user = user
    -- Rate limiting: a fixed window per peer, reset by the host.
    local peer = req.context.peer
    calls_by_peer[peer] = (calls_by_peer[peer] or 0) + 1
    if calls_by_peer[peer] > RATE then
      error(jsonrpc.error(-32029, "Too many requests", { limit = RATE }))
    end
  end,

  -- Logging: every response, with its outcome.
  on_response = function(req, result, err)
    log[#log + 1] = ("%s %s -> %s"):format(req.context.peer or "?", req.method or "(unreadable)",
      err and ("error " .. err.code) or jsonrpc.encode(result))
  end,

  -- Plain Lua errors in handlers: the peer sees only "Internal error".
  on_error = function(message, traceback, req)
    log[#log + 1] = "handler failed: " .. message
  end,
}

server:method("whoami", function(ctx) return ctx.user end, { context = true })
server:method("add", function(a, b) return a + b end, { params = { "a", "b" } })
server:method("crash", function() error("database unreachable") end)

local function call(ctx, method, params)
  local text = jsonrpc.encode({ jsonrpc = "2.0", id = 1, method = method, params = params })
  return server:handle(text, ctx)
end

local alice = { peer = "10.0.0.7:5123", token = "s3cret" }
local mallory = { peer = "10.0.0.9:6000", token = "guess" }

print(call(alice, "whoami"))
print(call(alice, "add", { a = 2, b = 3 }))
print(call(mallory, "add", { 1, 2 }))
print(call(alice, "crash"))
print(call(alice, "add", { 1, 1 }))          -- the 4th call in the window
print()
for _, line in ipairs(log) do print("log: " .. line) end
