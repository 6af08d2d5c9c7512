-- The library inside Neovim (Debian's neovim, on LuaJIT), as a plugin uses
-- it: each script of spec/neovim/ runs in `nvim --headless` and writes
-- its checks; nvim must then exit 0, with its handles still open.
local util = require "spec.support.util"

local root = util.sh("pwd"):gsub("%s+$", "")
local has_nvim = util.sh("command -v nvim"):match("%S") ~= nil

-- Runs spec/neovim/SCRIPT in nvim; opts.plugin: the library comes from a
-- plugin directory on 'runtimepath' instead of LUA_PATH and LUA_CPATH.
local function run_in_nvim(script, opts)
  opts = opts or {}
  local out = os.tmpname()
  local env = {
    "JSONRPC_NVIM_OUT=" .. out,
    "JSONRPC_NVIM_HARNESS=" .. root .. "/spec/neovim/harness.lua",
    "JSONRPC_NVIM_DIR=" .. root .. "/spec/neovim",
    "JSONRPC_CPATH_54='" .. root .. "/build/5.4/?.so;;'",
  }
  local cmd = ""
  if opts.plugin then
    env[#env + 1] = "JSONRPC_NVIM_PLUGIN=" .. opts.plugin
    cmd = ("--cmd 'set rtp^=%s'"):format(opts.plugin)
  else
    env[#env + 1] = "LUA_PATH='" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;'"
    env[#env + 1] = "LUA_CPATH='" .. root .. "/build/luajit/?.so;;'"
  end
  -- bounded: a hang fails the spec instead of holding the suite
  local log, code = util.sh(("env -u LD_PRELOAD -u LUA_PATH -u LUA_CPATH %s timeout -k 5 90 nvim --headless "
    .. "--clean -n -i NONE %s -c 'luafile %s/spec/neovim/%s' </dev/null 2>&1")
    :format(table.concat(env, " "), cmd, root, script))
  local f = io.open(out)
  local lines = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(out)
  return lines, code, log
end

--- The checks a script wrote: the failed ones, and how many there were.
local function failed_checks(lines)
  local failed, count = {}, 0
  for line in lines:gmatch("[^\n]+") do
    count = count + 1
    if not line:match("^ok ") then failed[#failed + 1] = line end
  end
  return failed, count
end

describe("inside Neovim", function()
  it("is installed (Debian's neovim, from scripts/install-deps)", function()
    assert.is_true(has_nvim)
  end)

  it("serves and calls as a plugin would, with vim.api in handlers and callbacks", function()
    local lines, code, log = run_in_nvim("in_nvim.lua")
    local failed, count = failed_checks(lines)
    assert.equal(0, #failed, table.concat(failed, "\n") .. "\n" .. log)
    assert.is_true(count >= 20, lines .. log)
    assert.equal(0, code, log)   -- exits 0 with its listeners and connection open
  end)

  it("is a language server for Neovim's own LSP client (vim.lsp.start_client)", function()
    local lines, code, log = run_in_nvim("lsp_client.lua")
    local failed, count = failed_checks(lines)
    assert.equal(0, #failed, table.concat(failed, "\n") .. "\n" .. log)
    assert.equal(8, count, lines .. log)
    assert.equal(0, code, log)
  end)

  it("installs as a plugin: make plugin's layout on 'runtimepath', no path edits", function()
    local dir = os.tmpname()
    os.remove(dir)
    local out, built = util.sh(("make -s plugin PLUGIN_DIR=%s 2>&1"):format(dir))
    assert.equal(0, built, out)
    local lines, code, log = run_in_nvim("plugin.lua", { plugin = dir })
    util.sh("rm -rf " .. dir)
    local failed, count = failed_checks(lines)
    assert.equal(0, #failed, table.concat(failed, "\n") .. "\n" .. log)
    assert.equal(7, count, lines .. log)
    assert.equal(0, code, log)
  end)
end)
