-- The jsonrpc command, run as a real program under the suite's interpreter.
local util = require "spec.support.util"
local jsonrpc = require "jsonrpc"

local lua = util.interpreter()
local CMD = lua .. " bin/jsonrpc"

local sh = util.sh

-- runs `jsonrpc call ...`; returns stdout, stderr, exit code
local function call(args)
  local err = os.tmpname()
  local out, code = sh(("%s call %s 2>%s"):format(CMD, args, err))
  local f = io.open(err)
  local stderr = f:read("*a")
  f:close()
  os.remove(err)
  return out, stderr, code
end

describe("jsonrpc serve and call", function()
  local bg, url, sock_dir

  setup(function()
    sock_dir = os.tmpname()
    os.remove(sock_dir)
    assert(os.execute("mkdir -p " .. sock_dir))
    bg = util.background(("%s serve spec/support/calc.lua --listen tcp://127.0.0.1:0 "
      .. "--listen unix://%s/calc.sock"):format(CMD, sock_dir))
    assert(bg.wait_for("unix://"), "the server did not start: " .. bg.stderr())
    url = bg.stderr():match("listening on (tcp://[%d%.]+:%d+)")
  end)

  teardown(function()
    bg.cleanup()
    os.execute("rm -rf " .. sock_dir)
  end)

  it("prints the result as JSON and exits 0", function()
    local out, _, code = call(url .. " add '[1,2]'")
    assert.equal(0, code)
    assert.equal("3\n", out)
    out, _, code = call(("unix://%s/calc.sock add '[40,2]'"):format(sock_dir))
    assert.equal("42\n", out)
    assert.equal(0, code)
  end)
  it("prints a JSON-RPC error object on stderr and exits 1", function()
    local out, stderr, code = call(url .. " fail")
    assert.equal(1, code)
    assert.equal("", out)
    local e = jsonrpc.decode(stderr)
    assert.equal(-32000, e.code)
    assert.equal("out of stock", e.message)
    assert.equal(7, e.data.item)
    _, stderr, code = call(url .. " nope '[]'")
    assert.equal(1, code)
    assert.equal(-32601, jsonrpc.decode(stderr).code)
  end)

  it("exits 2 with a one-line reason on a transport failure", function()
    local _, stderr, code = call("tcp://127.0.0.1:1 add")
    assert.equal(2, code)
    assert.matches("^jsonrpc: connect failed: connection refused\n$", stderr)
    _, stderr, code = call(url .. " slow --timeout 0.1")
    assert.equal(2, code)
    assert.matches("no response to \"slow\" within 0.1 s", stderr)
  end)

  it("sends notifications", function()
    local out, _, code = call(url .. " add '[1,2]' --notify")
    assert.equal(0, code)
    assert.equal("", out)
  end)

  it("refuses bad arguments with exit 2", function()
    local _, stderr, code = call(url .. " add 'not json'")
    assert.equal(2, code)
    assert.matches("PARAMS_JSON is not JSON", stderr)
    _, stderr, code = call("")
    assert.equal(2, code)
    assert.matches("usage", stderr)
  end)

  it("calls a program over its stdio with exec:, here `jsonrpc serve --listen stdio:`", function()
    local out, stderr, code = call(("'exec:%s bin/jsonrpc serve spec/support/calc.lua --listen stdio:' add '[20,22]'")
      :format(lua))
    assert.equal(0, code, stderr)
    assert.equal("42\n", out)
  end)

  it("stops cleanly on SIGTERM, removing its socket", function()
    assert(bg.signal("TERM"))
    assert.equal(0, bg.wait())
    assert.is_nil(io.open(sock_dir .. "/calc.sock"))
  end)
end)
