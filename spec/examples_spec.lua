-- Every example runs as it stands, to completion, with the interpreter the
-- suite runs on: the programs in examples/, and the self-checking examples
-- of README.md and of every docs/*.md page (a ```lua block that starts with
-- `local jsonrpc = require "jsonrpc"` and states its output in "--> value"
-- comments).
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

  -- The pages whose self-checking examples run: the README and every page
  -- of the reference in docs/.
  local pages = { "README.md" }
  do
    local p = assert(io.popen("ls docs/*.md 2>/dev/null"))
    for path in p:lines() do pages[#pages + 1] = path end
    p:close()
  end

  --- The self-checking examples of a Markdown text: complete blocks that
  -- state their output ("--> value"); the others (a stdio server, say) need
  -- a peer the page cannot provide.
  local function examples_of(text)
    local found = {}
    for block in text:gmatch("```lua\n(.-)```") do
      if block:find('^local jsonrpc = require "jsonrpc"\n') and block:find("%-%->") then
        found[#found + 1] = block
      end
    end
    return found
  end

  --- Runs one example; each "--> value" comment is, in order, what the
  -- example printed.
  local function check_example(block, name)
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
      chunk = assert(loadstring(block, "=" .. name))
      setfenv(chunk, env)
    else
      chunk = assert(load(block, "=" .. name, "t", env))
    end
    local ok, err = pcall(chunk)
    assert(ok, err)
    local expected = {}
    for want in block:gmatch("%-%-> ([^\n]+)") do expected[#expected + 1] = want end
    for i, want in ipairs(expected) do
      assert(want == printed[i], ("%s: output %d: expected %q, printed %q"):format(
        name, i, want, tostring(printed[i])))
    end
  end

  for _, page in ipairs(pages) do
    it("every self-checking Lua example in " .. page .. " runs and prints what it says", function()
      local f = assert(io.open(page))
      local text = f:read("*a")
      f:close()
      for i, block in ipairs(examples_of(text)) do
        check_example(block, ("%s example %d"):format(page, i))
      end
    end)
  end

  it("the README and docs/ have self-checking examples", function()
    local readme, docs = 0, 0
    for _, page in ipairs(pages) do
      local f = assert(io.open(page))
      local n = #examples_of(f:read("*a"))
      f:close()
      if page == "README.md" then readme = n else docs = docs + n end
    end
    assert(#pages > 1, "no docs/*.md pages found")
    assert(readme >= 1, "the README has no self-checking example")
    assert(docs >= 10, ("docs/ has only %d self-checking examples"):format(docs))
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
