-- Execution belongs to the host: on luv's loop, every callback of ours goes
-- through luv's cb_pcall, which a host (Neovim) replaces with its own
-- wrapper; and the engine never runs the loop from inside its callbacks.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"
local codes = jsonrpc.codes

local function sh(cmd) return util.sh(cmd .. " 2>&1") end

describe("the host's callback wrapper", function()
  it("runs our handlers, call callbacks and close hooks inside luv's cb_pcall", function()
    local bin, script = os.tmpname(), os.tmpname()
    -- the host is built for the Lua running this spec
    local inc, lib = util.lua_c_flags()
    local out, code = sh(("cc %s spec/support/host_pcall.c %s -ldl -o %s"):format(inc, lib, bin))
    assert.equal(0, code, out)
    local f = assert(io.open(script, "w"))
    f:write([[
      local jsonrpc = require "jsonrpc"
      local seen = {}
      local server = jsonrpc.server()
      server:method("where", function() seen.handler = host.inside(); return true end)
      local l = assert(server:listen("tcp://127.0.0.1:0"))
      local conn = assert(jsonrpc.connect(l.url))
      conn:call("where", nil, function(result)
        seen.callback = host.inside()
        conn:close()
        l:close()
      end)
      conn:on_close(function() seen.close = host.inside() end)
      local before = host.calls()
      jsonrpc.run()
      print(seen.handler, seen.callback, seen.close, host.calls() > before, host.inside())
    ]])
    f:close()
    out, code = sh(("%s %s"):format(bin, script))
    os.remove(bin)
    os.remove(script)
    assert.equal(0, code, out)
    assert.equal("true\ttrue\ttrue\ttrue\tfalse\n", out)
  end)
end)

describe("waiting inside a callback", function()
  it("fails with NO_EVENT_LOOP at once rather than running the loop inside itself", function()
    local server = jsonrpc.server()
    server:method("add", function(a, b) return a + b end)
    local l = assert(server:listen("tcp://127.0.0.1:0"))
    local conn = assert(jsonrpc.connect(l.url))
    local err, took
    local timer = require("jsonrpc.core").timer(1, function()
      local t0 = os.clock()
      local ok, e = pcall(conn.call, conn, "add", {1, 2})   -- not a coroutine: it cannot wait
      took = os.clock() - t0
      err = not ok and e
    end)
    assert.is_true(timer ~= nil)
    for _ = 1, 100 do
      if err ~= nil then break end
      jsonrpc.run("once")
    end
    assert.is_truthy(err)
    assert.equal(codes.NO_EVENT_LOOP, err.code)
    assert.is_true(err.transport)
    assert.is_true(took < 0.5)
    local ran, why
    require("jsonrpc.core").timer(0, function() ran, why = pcall(jsonrpc.run, "once") end)
    for _ = 1, 100 do
      if ran ~= nil then break end
      jsonrpc.run("once")
    end
    assert.is_false(ran)
    assert.matches("already running", why)
    conn:close()
    l:close()
    jsonrpc.run("nowait")
  end)
end)

describe("a loop run by someone else", function()
  it("is not run again from inside one of our callbacks (luv's uv.run runs it)", function()
    local uv = require "luv"
    local ran, why
    require("jsonrpc.core").timer(0, function() ran, why = pcall(jsonrpc.run, "nowait") end)
    for _ = 1, 100 do
      if ran ~= nil then break end
      uv.run("once")
    end
    assert.is_false(ran)
    assert.matches("already running", why)
  end)
end)

describe("a host that starts handlers itself", function()
  it("starts every handler of a connection through its start option, waiting ones too", function()
    local started = 0
    local function start(run, ...)
      started = started + 1
      local co = coroutine.create(run)
      local ok, err = coroutine.resume(co, ...)
      if not ok then error(err, 0) end
    end
    local server = jsonrpc.server()
    server:method("add", function(a, b) return a + b end)
    server:method("ask", function(ctx) return ctx.connection:call("ping") + 1 end, { context = true })
    local l = assert(server:listen("tcp://127.0.0.1:0", { start = start }))
    local conn = assert(jsonrpc.connect(l.url, { timeout = 5 }))
    conn:method("ping", function() return 41 end)
    local results
    local co = coroutine.wrap(function()
      results = { conn:call("add", { 1, 2 }), conn:call("ask") }
      local batch = conn:batch():call("add", { 2, 2 }):call("ask"):send()
      results[3], results[4] = batch[1], batch[2]
    end)
    co()
    for _ = 1, 200 do
      if results and results[4] then break end
      jsonrpc.run("once")
    end
    assert.same({ 3, 42, 4, 42 }, results)
    assert.equal(4, started)   -- the server's handlers only: the client's ran in ours
    conn:close()
    l:close()
    jsonrpc.run("nowait")
  end)
end)

describe("a host's scheduler (the schedule option)", function()
  -- a scheduler of our own: what it is given runs only when the host says
  local function queue()
    local q = {}
    return q, function(fn) q[#q + 1] = fn end
  end
  local function run_queued(q)
    while #q > 0 do table.remove(q, 1)() end
  end

  it("runs handlers, call callbacks and close hooks through it, and answers handlers' errors", function()
    local q, schedule = queue()
    local server = jsonrpc.server()
    local in_handler = 0
    server:method("ok", function() in_handler = in_handler + 1; return "fine" end)
    server:method("fail", function() error("on purpose") end)
    local l = assert(server:listen("tcp://127.0.0.1:0", { schedule = schedule, on_error = function() end }))
    local conn = assert(jsonrpc.connect(l.url, { schedule = schedule }))
    local got = {}
    conn:call("ok", nil, function(r) got.ok = r end)
    conn:call("fail", nil, function(_, err) got.fail = err end)
    conn:on_close(function() got.closed = true end)
    for _ = 1, 200 do   -- the request arrives; its handler waits for the scheduler
      jsonrpc.run("nowait")
      if #q > 0 then break end
    end
    assert.equal(0, in_handler)
    for _ = 1, 200 do
      run_queued(q)
      jsonrpc.run("nowait")
      if got.ok and got.fail then break end
    end
    assert.equal("fine", got.ok)
    assert.equal(1, in_handler)
    assert.equal(codes.INTERNAL_ERROR, got.fail and got.fail.code)
    conn:close()
    jsonrpc.run("nowait")
    assert.is_nil(got.closed)   -- the hook waits for the scheduler
    run_queued(q)
    assert.is_true(got.closed)
    l:close()
    jsonrpc.run("nowait")
  end)

  it("is refused when it is neither a function nor false", function()
    local ok, err = pcall(jsonrpc.connect, "tcp://127.0.0.1:1", { schedule = 42 })
    assert.is_false(ok)
    assert.matches("schedule must be a function or false", err)
    ok, err = pcall(jsonrpc.server, { schedule = "soon" })
    assert.is_false(ok)
    assert.matches("schedule must be a function or false", err)
  end)
end)
