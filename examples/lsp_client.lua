-- Drives a language server as a child process over its stdin/stdout: here
-- examples/lsp_server.lua, started with the same Lua interpreter.
--   lua5.4 examples/lsp_client.lua
local jsonrpc = require "jsonrpc"

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local interpreter = arg[-1] or "lua5.4"
local server = assert(jsonrpc.spawn({ interpreter, here .. "/lsp_server.lua" }))

server:method("textDocument/publishDiagnostics", function(params)
  for _, d in ipairs(params.diagnostics) do
    print(("diagnostic  %s:%d: %s"):format(params.uri, d.range.start.line + 1, d.message))
  end
end)

local init = server:call("initialize", { processId = jsonrpc.null, rootUri = jsonrpc.null,
                                         capabilities = jsonrpc.object() })
print("initialized", init.serverInfo.name, init.serverInfo.version)

server:notify("textDocument/didOpen", { textDocument = {
  uri = "file:///demo.lua", languageId = "lua", version = 1,
  text = "local x = 1\n-- TODO: name this better\nreturn x\n" } })

local hover = server:call("textDocument/hover", {
  textDocument = { uri = "file:///demo.lua" }, position = { line = 0, character = 6 } })
print("hover      ", hover.contents)

server:call("shutdown")
server:notify("exit")
print("exit code  ", server:wait_exit())
