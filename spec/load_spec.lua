-- Loading the library has no side effects a host could trip on: no luv, no
-- loop, no descriptor, until a transport is used (nginx's master loads
-- modules before it forks its workers); inside nginx the libuv transports
-- refuse with a clear error instead of holding the worker.
local util = require "spec.support.util"

-- Runs a Lua script in a fresh interpreter (a fresh state, so that nothing
-- this spec loaded counts); its output and exit code.
local function run_fresh(script)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(script)
  f:close()
  local out, code = util.sh(("%s %s 2>&1"):format(util.interpreter(), file))
  os.remove(file)
  return out, code
end

-- The descriptors this process has open (the listing's pipe counted alike
-- each time). The least of three listings: popen may still hold the other
-- end of its pipe when ls looks, which only ever adds one.
local COUNT_FDS = [[
  local function listing()
    local stat = assert(io.open("/proc/self/stat"))
    local pid = stat:read("*l"):match("^(%d+)")
    stat:close()
    local n, h = 0, io.popen("ls /proc/" .. pid .. "/fd")
    for _ in h:lines() do n = n + 1 end
    h:close()
    return n
  end
  local function fds() return math.min(listing(), listing(), listing()) end
]]

describe("require \"jsonrpc\"", function()
  it("loads no luv, starts no loop and opens no descriptor", function()
    local out, code = run_fresh(COUNT_FDS .. [[
      local before = fds()
      local jsonrpc = require "jsonrpc"
      local s = jsonrpc.server()
      s:method("add", function(a, b) return a + b end)
      assert(s:handle('{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}'))
      assert(jsonrpc.decode(jsonrpc.encode({1, "x"}))[2] == "x")
      print(package.loaded.luv == nil, package.loaded["jsonrpc.transport"] == nil, fds() - before)
    ]])
    assert.equal(0, code, out)
    assert.equal("true\ttrue\t0\n", out)
  end)

  it("loads the transports, with luv, on first use, and then shares luv's loop", function()
    local out, code = run_fresh([[
      local jsonrpc = require "jsonrpc"
      local server = jsonrpc.server()
      server:method("ping", function() return "pong" end)
      local l = assert(server:listen("tcp://127.0.0.1:0"))
      local has_luv, uv = pcall(require, "luv")
      local ticked = not has_luv   -- without luv there is no luv timer to see
      if has_luv then
        local t = uv.new_timer()
        t:start(1, 0, function() ticked = true; t:close() end)
      end
      local conn = assert(jsonrpc.connect(l.url))
      local answer
      conn:call("ping", nil, function(result)
        answer = result
        conn:close()
        l:close()
      end)
      jsonrpc.run()   -- until the timer, the call and the listener are done
      print(answer, ticked)
    ]])
    assert.equal(0, code, out)
    assert.equal("pong\ttrue\n", out)
  end)

  it("refuses the libuv transports inside nginx, naming the phase, and still closes servers", function()
    -- the guard reads ngx.get_phase(); nginx itself runs in spec/openresty
    local out, code = run_fresh([[
      ngx = { get_phase = function() return "content" end }
      local jsonrpc = require "jsonrpc"
      local server = jsonrpc.server()
      server:close()   -- nothing listened: nothing to close, no error
      for _, call in ipairs{
        function() return jsonrpc.connect("tcp://127.0.0.1:1") end,
        function() return server:listen("tcp://127.0.0.1:0") end,
        function() return jsonrpc.spawn({"true"}) end,
        function() return jsonrpc.stdio(server) end,
        function() return jsonrpc.run() end,
      } do
        local ok, err = pcall(call)
        print(ok, (tostring(err):match("cannot run inside nginx %(phase content%)") ~= nil))
      end
      print(package.loaded.luv == nil)
    ]])
    assert.equal(0, code, out)
    assert.equal(("false\ttrue\n"):rep(5) .. "true\n", out)
  end)
end)
