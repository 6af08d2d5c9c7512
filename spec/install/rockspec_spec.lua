-- The rockspec builds and installs offline with Debian's luarocks into a
-- fresh tree, and the installed module works from that tree alone.
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  local ok, _, code = p:close()
  return (ok == true or code == 0), out
end

describe("rockspec", function()
  local tmp

  before_each(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(run("mkdir -p " .. tmp .. "/src"))
  end)

  after_each(function()
    run("rm -rf " .. tmp)
  end)

  it("lists every C source and Lua module of the tree", function()
    local f = assert(io.open("jsonrpc-scm-1.rockspec"))
    local text = f:read("*a")
    f:close()
    local ok, out = run("ls csrc/*.c csrc/*/*.c lua/jsonrpc/*.lua lua/jsonrpc/*/*.lua")
    assert(ok, out)
    local missing = {}
    for path in out:gmatch("%S+") do
      if not text:find('"' .. path .. '"', 1, true) then missing[#missing + 1] = path end
    end
    assert.same({}, missing)
  end)

  it("installs with luarocks make into a fresh tree and loads from it", function()
    -- a copy of the tracked files, so no build product of the checkout helps
    local ok, out = run("git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t " .. tmp .. "/src")
    assert(ok, out)
    ok, out = run("cd " .. tmp .. "/src && luarocks --lua-version 5.4 make --deps-mode=none --tree "
      .. tmp .. "/tree jsonrpc-scm-1.rockspec")
    assert(ok, out)
    local check = [[
      local j = require "jsonrpc"
      assert(package.searchpath("jsonrpc.core", package.cpath):find(os.getenv("TREE"), 1, true))
      assert(j.encode(j.decode("1700000000123456")) == "1700000000123456")
      assert(#j.framer("content-length"):feed("Content-Length: 2\r\n\r\n{}") == 1)
      print("installed ok")
    ]]
    ok, out = run(("cd / && TREE=%s LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua' "
      .. "LUA_CPATH='%s/lib/lua/5.4/?.so' lua5.4 -e '%s'"):format(tmp .. "/tree", tmp .. "/tree",
      tmp .. "/tree", tmp .. "/tree", check))
    assert(ok, out)
    assert.matches("installed ok", out)
  end)
end)
