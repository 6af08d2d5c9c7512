-- The library inside Neovim (Debian's neovim, on LuaJIT), as a plugin uses
-- it: each script of spec/neovim/ runs in `nvim --headless` and writes
-- its checks; nvim must then exit 0, with its handles still open.
local util = require "spec.support.util"

local root = util.sh("pwd"):gsub("%s+$", "")
local has_nvim = util.sh("command -v nvim"):match("%S") ~= nil

local function run_in_nvim(script)
  local out = os.tmpname()
  local env = table.concat({
    "JSONRPC_NVIM_OUT=" .. out,
    "JSONRPC_NVIM_HARNESS=" .. root .. "/spec/neovim/harness.lua",
    "JSONRPC_NVIM_DIR=" .. root .. "/spec/neovim",
    "JSONRPC_CPATH_54='" .. root .. "/build/5.4/?.so;;'",
    "LUA_PATH='" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;'",
    "LUA_CPATH='" .. root .. "/build/luajit/?.so;;'",
  }, " ")
  -- bounded: a hang fails the spec instead of holding the suite
  local log, code = util.sh(("env -u LD_PRELOAD %s timeout -k 5 90 nvim --headless --clean -n -i NONE "
    .. "-c 'luafile %s/spec/neovim/%s' </dev/null 2>&1"):format(env, root, script))
  local f = io.open(out)
  local lines = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(out)
  return lines, code, log
end

describe("inside Neovim", function()
  it("is installed (Debian's neovim, from scripts/install-deps)", function()
    assert.is_true(has_nvim)
  end)

  it("serves and calls as a plugin would, with vim.api in handlers and callbacks", function()
    local lines, code, log = run_in_nvim("in_nvim.lua")
    local failed = {}
    local count = 0
    for line in lines:gmatch("[^\n]+") do
      count = count + 1
      if not line:match("^ok ") then failed[#failed + 1] = line end
    end
    assert.equal(0, #failed, table.concat(failed, "\n") .. "\n" .. log)
    assert.is_true(count >= 20, lines .. log)
    assert.equal(0, code, log)   -- exits 0 with its listeners and connection open
  end)
end)
