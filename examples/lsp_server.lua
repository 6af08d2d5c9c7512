-- A language-server-style program: JSON-RPC over stdin/stdout with
-- Content-Length framing, as the Language Server Protocol uses. Its client
-- starts it as a child process (see examples/lsp_client.lua).
local jsonrpc = require "jsonrpc"

local documents = {}
local server = jsonrpc.server()
local conn

server:method("initialize", function(params)
  return { capabilities = { textDocumentSync = 1, hoverProvider = true },
           serverInfo = { name = "lua-example-ls", version = "1.0" } }
end)

server:method("textDocument/didOpen", function(params)
  local doc = params.textDocument
  documents[doc.uri] = doc.text
  -- servers talk first too: publish a diagnostic for each TODO
  local diagnostics = {}
  local line = 0
  for text in (doc.text .. "\n"):gmatch("(.-)\n") do
    local col = text:find("TODO", 1, true)
    if col then
      diagnostics[#diagnostics + 1] = { message = "TODO left here", severity = 3,
        range = { start = { line = line, character = col - 1 },
                  ["end"] = { line = line, character = col + 3 } } }
    end
    line = line + 1
  end
  conn:notify("textDocument/publishDiagnostics",
    { uri = doc.uri, diagnostics = jsonrpc.array(diagnostics) })
end)

server:method("textDocument/hover", function(params)
  local text = documents[params.textDocument.uri] or ""
  return { contents = ("%d characters in this document"):format(#text) }
end)

server:method("shutdown", function() return jsonrpc.null end)
server:method("exit", function() conn:close("exit") end)

conn = assert(jsonrpc.stdio(server))   -- print() now goes to stderr
conn:wait_closed()
