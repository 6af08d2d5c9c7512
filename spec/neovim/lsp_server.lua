-- A language server written with the library (plain Lua 5.4, over stdio),
-- for Neovim's own LSP client in spec/neovim/lsp_client.lua: it asks the
-- client for its configuration when initialized, answers hover with it,
-- keeps a slow request going until the client cancels it, and exits when
-- told to.
local jsonrpc = require "jsonrpc"

local server = jsonrpc.server()
local conn
local config, cancelled = nil, {}

local sleep = require("spec.support.calc").sleep   -- waits ms on a luv timer

server:method("initialize", function()
  return { capabilities = { hoverProvider = true, definitionProvider = true },
           serverInfo = { name = "spec-ls", version = "1" } }
end)

-- a call to the client, from the handler of its notification
server:method("initialized", function()
  local answer = conn:call("workspace/configuration", { items = { { section = "spec" } } })
  config = answer[1]
end)

server:method("textDocument/hover", function(params)
  return { contents = { kind = "plaintext",
    value = ("line %d, answer %s"):format(params.position.line, tostring(config and config.answer)) } }
end)

-- runs until a request is cancelled (at most 10 s; the spec has only
-- this one in flight), then answers RequestCancelled
server:method("textDocument/definition", function()
  for _ = 1, 500 do
    if next(cancelled) then error(jsonrpc.error(-32800, "cancelled")) end
    sleep(20)
  end
  return jsonrpc.null
end)

server:method("$/cancelRequest", function(params) cancelled[params.id] = true end)

server:method("spec/cancelled", function()
  local ids = {}
  for id in pairs(cancelled) do ids[#ids + 1] = id end
  return jsonrpc.array(ids)
end)

server:method("shutdown", function() return jsonrpc.null end)
server:method("exit", function() conn:close("exit") end)

conn = assert(jsonrpc.stdio(server))
conn:wait_closed()
