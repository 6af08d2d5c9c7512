-- The methods both OpenResty servers serve (jsonrpc.ngx.serve and the
-- pure-Lua cjson dispatcher): register(d) adds them to a jsonrpc server
-- or a bench/lua_dispatcher one.
local lsp_like = require "lsp_like"   -- bench/peers/lsp_like.lua

return function(d)
  d:method("add", function(a, b) return a + b end)
  d:method("diagnostics", function(report) return #report.diagnostics end)
  d:method("complete", function(n) return lsp_like.completion(n) end)
  return d
end
