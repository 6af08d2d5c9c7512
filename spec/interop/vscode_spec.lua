-- Interop with vscode-jsonrpc (npm), the JSON-RPC library of VS Code and
-- LSP: each side as client and as server, over TCP and over stdio, with
-- calls back to the caller while its call is in flight.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"
local uv = require "luv"
local run_until = util.run_until
local node = util.node

local lua = util.interpreter()



local function our_server()
  local server = jsonrpc.server()
  server:method("add", function(a, b) return a + b end)
  server:method("subtract", function(a, b) return a - b end, {params = {"minuend", "subtrahend"}})
  server:method("echo", function(...) return {...} end)
  server:method("ask_back", function(ctx, x) return ctx.connection:call("double", {x}) + 1 end,
    {context = true})
  return server
end

local function check_client_report(text)
  local r = assert(jsonrpc.decode(text:match("[^\n]+")), text)
  assert.equal(3, r.add)
  assert.equal(41, r.ask_back)
  assert.equal(19, r.named)
  assert.equal(-32601, r.nope)
  assert.is_true(r.multibyte_ok)
  assert.is_true(r.concurrent)
end

describe("vscode-jsonrpc as the client", function()
  it("calls our TCP server, and is called back while its call is in flight", function()
    local server = our_server()
    local listener = assert(server:listen("tcp://127.0.0.1:0"))
    local host, port = listener:address()
    local proc = node({ "spec/interop/vscode_client.js", "tcp", host, tostring(port) })
    assert.is_true(run_until(function() return proc.code ~= nil end, 60000))
    assert.equal(0, proc.code)
    check_client_report(proc.out)
    server:close()
  end)

  it("starts our stdio server as its child and talks to it", function()
    local p = io.popen(("node spec/interop/vscode_client.js spawn %s spec/support/child_server.lua content-length")
      :format(lua))
    local out = p:read("*a")
    p:close()
    check_client_report(out)
  end)
end)

describe("vscode-jsonrpc as the server", function()
  local function exercise(conn)
    local noted
    conn:method("double", function(x) return 2 * x end)
    conn:method("noted", function(x) noted = x end)
    assert.equal(3, conn:call("add", {1, 2}))
    assert.equal(41, conn:call("ask_back", {20}))   -- it calls us back mid-call
    local _, err = conn:try_call("fail")
    assert.equal(-32000, err.code)
    assert.equal("out of stock", err.message)
    assert.equal(7, err.data.item)
    _, err = conn:try_call("nope")
    assert.equal(-32601, err.code)
    local text = string.rep("é😀 ünïcödé ", 65536)
    assert.equal(text, conn:call("echo", {text}))
    conn:notify("note", {"hi"})
    assert.is_true(run_until(function() return noted ~= nil end, 15000))
    assert.equal("hi", noted)
    local results = {}
    for i = 1, 20 do
      coroutine.wrap(function() local v = conn:call("add", {i, i}); results[i] = v end)()
    end
    assert.is_true(run_until(function()
      for i = 1, 20 do if results[i] == nil then return false end end
      return true
    end))
    for i = 1, 20 do assert.equal(2 * i, results[i]) end
  end

  it("is called over its stdio (our client spawns it)", function()
    local conn = assert(jsonrpc.spawn({ "node", "spec/interop/vscode_server.js", "stdio" }))
    exercise(conn)
    conn:close()
    assert.equal(0, (conn:wait_exit()))
  end)

  it("is called over TCP", function()
    local proc = node({ "spec/interop/vscode_server.js", "tcp" })
    assert.is_true(run_until(function() return proc.out:find("\n") ~= nil end, 15000))
    local port = assert(tonumber(proc.out:match("%d+")))
    local conn = assert(jsonrpc.connect("tcp://127.0.0.1:" .. port))
    exercise(conn)
    conn:close()
    proc.stdin:shutdown()   -- it exits when its stdin ends
    assert.is_true(run_until(function() return proc.code ~= nil end, 60000))
  end)
end)
