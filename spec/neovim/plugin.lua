-- Run by spec/neovim_spec.lua inside `nvim --headless` with the library
-- installed as a plugin (make plugin) on 'runtimepath', LUA_PATH and
-- LUA_CPATH unset: require finds it through Neovim's own loaders.
local H = dofile(os.getenv("JSONRPC_NVIM_HARNESS"))

H.run(function()
  local plugin = os.getenv("JSONRPC_NVIM_PLUGIN")
  local jsonrpc = require "jsonrpc"
  local found = vim.api.nvim_get_runtime_file("lua/jsonrpc/core.so", false)[1] or ""
  H.check("require finds core.so in the plugin", found:sub(1, #plugin) == plugin, found)
  local init = vim.api.nvim_get_runtime_file("lua/jsonrpc/init.lua", false)[1] or ""
  H.check("and the Lua modules", init:sub(1, #plugin) == plugin, init)
  local server = jsonrpc.server()
  server:method("lines", function() return vim.api.nvim_buf_line_count(0) end)
  local l = assert(server:listen("tcp://127.0.0.1:0"))
  local conn = assert(jsonrpc.connect(l.url))
  local result
  conn:call("lines", nil, function(r) result = r end)
  H.check("a server and a client in nvim talk", H.wait(5000, function() return result ~= nil end)
    and result == 1, result)
  H.check("jsonrpc.encode", jsonrpc.encode{ 1, vim.NIL } == "[1,null]")
  conn:close()
  l:close()
  H.check("Debian's nvim links the shared libuv: the C driver is the default",
    require("jsonrpc.core").same_libuv() == true and require("jsonrpc.transport.driver").default_name() == "c")
  -- the luv driver: vim.loop's Lua API does the I/O, handlers still
  -- scheduled where vim.api works
  local ll = assert(server:listen("tcp://127.0.0.1:0", { driver = "luv" }))
  local lc = assert(jsonrpc.connect(ll.url, { driver = "luv" }))
  local via_luv
  lc:call("lines", nil, function(r) via_luv = r end)
  H.check("with driver = \"luv\" too", H.wait(5000, function() return via_luv ~= nil end)
    and via_luv == 1, via_luv)
  local co_result
  local co = coroutine.wrap(function() co_result = lc:call("lines") end)
  co()
  H.check("and calls in a coroutine", H.wait(5000, function() return co_result ~= nil end)
    and co_result == 1, co_result)
  lc:close()
  ll:close()
  H.finish()
end)
