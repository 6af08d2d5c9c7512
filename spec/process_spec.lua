-- Connections over a child's stdin/stdout (jsonrpc.spawn) and over this
-- process's own (jsonrpc.stdio, in the child): calls both ways, the exit
-- reported, pending calls failing when the child dies.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"

local codes = jsonrpc.codes
local lua = util.interpreter()
local CHILD = "spec/support/child_server.lua"

describe("child processes", function()
  for _, framing in ipairs{"content-length", "be32", "ndjson"} do
    it("talks to a stdio server over " .. framing .. ", both ways", function()
      local conn = assert(jsonrpc.spawn({lua, CHILD, framing}, {framing = framing}))
      conn:method("double", function(x) return 2 * x end)
      assert.equal(5, conn:call("add", {2, 3}))
      assert.equal(21, conn:call("ask_back", {10}))   -- the child calls us back
      assert.is_true(conn.process:pid() > 0)
      conn:close()
      assert.equal("closed", conn:wait_closed())
      local code = conn:wait_exit()   -- the child sees its stdin close and ends
      assert.equal(0, code)
    end)
  end

  it("keeps stdout clean: print in a stdio server goes to stderr", function()
    local conn = assert(jsonrpc.spawn({lua, CHILD, "content-length"}, {stderr = "ignore"}))
    assert.equal("ok", conn:call("noisy"))
    assert.equal(7, conn:call("add", {3, 4}))   -- the stream was not corrupted
    conn:close()
    conn:wait_exit()
  end)

  it("captures the child's stderr when asked", function()
    local conn = assert(jsonrpc.spawn({lua, CHILD, "content-length"}, {stderr = "capture"}))
    assert.equal("ok", conn:call("noisy"))
    conn:close()
    conn:wait_exit()
    jsonrpc.run("nowait")
    assert.matches("this goes to stderr, not the stream", conn.stderr, 1, true)

    local chunks, ended = {}, false
    conn = assert(jsonrpc.spawn({lua, CHILD, "content-length"}, {stderr = "capture",
      on_stderr = function(chunk) if chunk then chunks[#chunks + 1] = chunk else ended = true end end}))
    assert.equal("ok", conn:call("noisy"))
    conn:close()
    conn:wait_exit()
    local tick = require("luv").new_timer()
    tick:start(5, 5, function() end)
    while not ended do jsonrpc.run("once") end
    tick:close()
    jsonrpc.run("nowait")
    assert.matches("this goes to stderr", table.concat(chunks), 1, true)
  end)

  it("fails pending calls when the child dies, and reports its exit", function()
    local exited
    local conn = assert(jsonrpc.spawn({lua, CHILD, "content-length"},
      {on_exit = function(code) exited = code end}))
    local r, err = conn:try_call("exit", {3})
    assert.is_nil(r)
    assert.equal(codes.CONNECTION_CLOSED, err.code)
    assert.equal(3, conn:wait_exit())
    assert.equal(3, exited)
    r, err = conn:try_call("add", {1, 2})
    assert.equal(codes.CONNECTION_CLOSED, err.code)
  end)

  it("reports a child killed by a signal", function()
    local conn = assert(jsonrpc.spawn({lua, CHILD, "content-length"}))
    assert.equal(3, conn:call("add", {1, 2}))
    assert.is_true(conn.process:kill(9))
    local code, signal = conn:wait_exit()
    assert.equal(9, signal)
    assert.is_number(code)
  end)

  it("fails clearly when the program does not exist", function()
    local conn, err = jsonrpc.spawn({"/nonexistent/program"})
    assert.is_nil(conn)
    assert.equal(codes.CONNECTION_FAILED, err.code)
    assert.matches("cannot run /nonexistent/program", err.message)
    -- the failed spawn's handle was closed properly: walking the loop is safe
    local uv = require "luv"
    jsonrpc.run("nowait")
    uv.walk(function(h) assert(h ~= nil) end)
  end)

  it("refuses stdio on a regular file", function()
    local script = [[
      local jsonrpc = require "jsonrpc"
      local conn, err = jsonrpc.stdio(jsonrpc.server())
      io.stderr:write(tostring(conn), " ", tostring(err and err.message))
    ]]
    local f = os.tmpname()
    local p = io.popen(("%s -e '%s' < %s 2>&1 >/dev/null"):format(lua, script:gsub("'", "'\\''"), f))
    local out = p:read("*a")
    p:close()
    os.remove(f)
    assert.matches("stdin is a regular file", out)
  end)
end)
