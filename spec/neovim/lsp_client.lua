-- Run by spec/neovim_spec.lua inside `nvim --headless`: Neovim's own LSP
-- client (vim.lsp.start_client) against spec/neovim/lsp_server.lua, a
-- language server written with the library, over stdio.
local H = dofile(os.getenv("JSONRPC_NVIM_HARNESS"))

H.run(function()
  local dir = os.getenv("JSONRPC_NVIM_DIR")
  local exited
  local initialized = false
  local id = vim.lsp.start_client{
    name = "spec-ls",
    cmd = { "env", "LUA_CPATH=" .. os.getenv("JSONRPC_CPATH_54"), "lua5.4", dir .. "/lsp_server.lua" },
    root_dir = dir,
    settings = { spec = { answer = 42 } },
    on_init = function() initialized = true end,
    on_exit = function(code, signal) exited = { code, signal } end,
  }
  H.check("the client starts", id ~= nil, id)
  H.check("initialize is answered", H.wait(10000, function() return initialized end))
  local client = vim.lsp.get_client_by_id(id)
  H.check("the server's capabilities arrive",
    client.server_capabilities and client.server_capabilities.hoverProvider == true
    or client.resolved_capabilities and client.resolved_capabilities.hover == true)

  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "one", "two" })
  local hover
  -- the server asked us for the configuration (a server-to-client request)
  -- when initialized; hover answers with what it got
  H.wait(10000, function()
    hover = nil
    local done = false
    client.request("textDocument/hover", {
      textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 1, character = 0 },
    }, function(err, result) hover = err or result; done = true end, buf)
    H.wait(5000, function() return done end)
    return type(hover) == "table" and hover.contents and hover.contents.value == "line 1, answer 42"
  end)
  H.check("hover is answered, with the configuration the server asked the client for",
    type(hover) == "table" and hover.contents and hover.contents.value == "line 1, answer 42",
    vim.inspect(hover))

  local answer
  local ok, request_id = client.request("textDocument/definition", {
    textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 0, character = 0 },
  }, function(err, result) answer = { err = err, result = result } end, buf)
  H.check("a slow request goes out", ok and request_id ~= nil)
  vim.wait(100)
  client.cancel_request(request_id)
  local cancelled
  H.wait(5000, function()
    local done = false
    client.request("spec/cancelled", {}, function(_, result) cancelled = result; done = true end, buf)
    H.wait(2000, function() return done end)
    return type(cancelled) == "table" and cancelled[1] == request_id
  end)
  H.check("$/cancelRequest reaches the server with the request's id",
    type(cancelled) == "table" and cancelled[1] == request_id, vim.inspect(cancelled))
  -- nvim drops a cancelled request's handler; the server gave up on it
  H.check("the cancelled request's handler is not called", answer == nil, vim.inspect(answer))

  client.stop()
  H.check("shutdown and exit end the server with status 0",
    H.wait(10000, function() return exited ~= nil end) and exited[1] == 0, vim.inspect(exited))
  H.finish()
end)
