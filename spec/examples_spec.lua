-- Every example runs as it stands, to completion, with the interpreter the
-- suite runs on.
local util = require "spec.support.util"
local lua = util.interpreter()

-- Runs a Lua program; returns whether it exited with 0, and its output
-- (util.sh: the shell echoes the status, which p:close() tells only on 5.2+).
local function run(path)
  local out, code = util.sh(("%s %s 2>&1"):format(lua, path))
  return code == 0, out
end

describe("examples", function()
  for _, name in ipairs{"codec_demo", "hooks_demo", "endpoints_demo", "lsp_client"} do
    it(name .. " runs", function()
      local ok, out = run("examples/" .. name .. ".lua")
      assert(ok, out)
      assert.is_true(#out > 0)
    end)
  end

  it("every self-checking Lua example in the README runs and prints what it says", function()
    local f = assert(io.open("README.md"))
    local readme = f:read("*a")
    f:close()
    local count = 0
    for block in readme:gmatch("```lua\n(.-)```") do
      -- complete blocks that state their output ("--> value"); the others
      -- (a stdio server, say) need a peer the README cannot provide
      if block:find('^local jsonrpc = require "jsonrpc"\n') and block:find("%-%->") then
        count = count + 1
        local printed = {}
        local env = setmetatable({
          print = function(...)
            local parts = {}
            for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
            printed[#printed + 1] = table.concat(parts, "\t")
          end,
        }, {__index = _G})
        local chunk
        if setfenv then
          chunk = assert(loadstring(block, "=README example " .. count))
          setfenv(chunk, env)
        else
          chunk = assert(load(block, "=README example " .. count, "t", env))
        end
        local ok, err = pcall(chunk)
        assert(ok, err)
        -- each "--> value" comment is what the line before it printed
        local expected = {}
        for want in block:gmatch("%-%-> ([^\n]+)") do expected[#expected + 1] = want end
        for i, want in ipairs(expected) do assert.equal(want, printed[i]) end
      end
    end
    assert.is_true(count >= 2)
  end)

  it("lsp_client drives the stdio language server as a child", function()
    local ok, out = run("examples/lsp_client.lua")
    assert(ok, out)
    assert.matches("initialized\tlua%-example%-ls\t1.0", out)
    assert.matches("diagnostic  file:///demo.lua:2: TODO left here", out, 1, true)
    assert.matches("hover      \t47 characters", out)
    assert.matches("exit code  \t0", out)
  end)

  it("calculator_client talks to calculator_server over TCP; Ctrl-C stops the server", function()
    local util = require "spec.support.util"
    local bg = util.background(lua .. " examples/calculator_server.lua tcp://127.0.0.1:0")
    local url = bg.wait_for("listening on (tcp://%S+)")
    assert(url, "the calculator did not start: " .. bg.stderr())
    local ok, out = run("examples/calculator_client.lua " .. url)
    assert(ok, out)
    assert.matches("add%(2, 3%)%s+=\t5", out)
    assert.matches("division by zero\t1", out)
    assert.matches("in flight%s+=\t11 22 33", out)
    bg.signal("INT")
    local status = bg.wait()
    bg.cleanup()
    assert.equal(0, status)
  end)

  it("hooks_demo rejects the bad token, limits the rate and hides the crash", function()
    local _, out = run("examples/hooks_demo.lua")
    assert.matches('"result":"alice"', out, 1, true)
    assert.matches('"code":-32001', out, 1, true)
    assert.matches('"code":-32029', out, 1, true)
    assert.matches('"code":-32603,"message":"Internal error"}', out, 1, true)
    assert.matches("handler failed: .*database unreachable", out)
  end)

  it("endpoints_demo makes nested calls and batches", function()
    local _, out = run("examples/endpoints_demo.lua")
    assert.matches("hello, Countess Ada", out, 1, true)
    assert.matches("1\t9\n2\terror %-32601\n3\thello, citizen Bob", out)
  end)
end)
