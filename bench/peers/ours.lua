-- The methods our server serves in the benchmarks (`jsonrpc serve
-- bench/peers/ours.lua --listen tcp://127.0.0.1:0`), the same every
-- implementation serves: add, echo, sleep (waits on a timer without
-- blocking the loop), stream (n notifications to the caller, then n), and
-- the LSP-like ones (bench/peers/lsp_like.lua): add_named {a, b},
-- complete(n) -> a completion list, diagnostics(report) -> its count,
-- did_open(params) -> the document's version.
local jsonrpc = require "jsonrpc"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lsp_like = dofile(here .. "/lsp_like.lua")
local wait = dofile(here .. "/wait.lua")

local server = jsonrpc.server()

server:method("add", function(a, b) return a + b end)

server:method("echo", function(x) return x end)

server:method("sleep", function(ms)
  wait(ms)
  return ms
end)

-- notify waits by itself while the client is behind (write_high_water)
server:method("stream", function(ctx, n)
  local conn = ctx.connection
  for i = 1, n do conn:notify("tick", { i }) end
  return n
end, { context = true })

server:method("add_named", function(a, b) return a + b end, { params = { "a", "b" } })
server:method("complete", function(n) return lsp_like.completion(n) end)
server:method("diagnostics", function(report) return #report.diagnostics end)
server:method("did_open", function(params) return params.textDocument.version end)

return server
