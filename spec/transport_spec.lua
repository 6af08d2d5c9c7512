-- Connections on real sockets (loopback only): TCP, IPv6, Unix sockets;
-- calls both ways; failures that cost only their own connection; the loop
-- shared with luv; exiting with connections open.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"
local core = require "jsonrpc.core"
local uv = require "luv"
local run_until = util.run_until

local codes = jsonrpc.codes

local function new_server()
  local server = jsonrpc.server()
  server:method("add", function(a, b) return a + b end)
  server:method("echo", function(...) return {...} end)
  server:method("ask_back", function(ctx, x)
    return ctx.connection:call("double", {x}) + 1
  end, {context = true})
  server:method("sleep_then", function(ms, value)  -- waits on a luv timer
    local co = coroutine.running()
    local t = uv.new_timer()
    t:start(ms, 0, function() t:close(); coroutine.resume(co) end)
    coroutine.yield()
    return value
  end)
  return server
end


local server, listener
before_each(function()
  server = new_server()
  listener = assert(server:listen("tcp://127.0.0.1:0"))
end)
after_each(function()
  server:close()
  jsonrpc.run("nowait")
end)

describe("tcp connections", function()
  it("reports the real port when asked for port 0", function()
    local host, port = listener:address()
    assert.equal("127.0.0.1", host)
    assert.is_true(port > 0)
    assert.equal("tcp://127.0.0.1:" .. port, listener.url)
  end)

  it("calls and is called back on the same connection while its call is in flight", function()
    local conn = assert(jsonrpc.connect(listener.url))
    conn:method("double", function(x) return 2 * x end)
    assert.equal(3, conn:call("add", {1, 2}))
    assert.equal(41, conn:call("ask_back", {20}))
    local r, err = conn:try_call("missing")
    assert.is_nil(r)
    assert.equal(codes.METHOD_NOT_FOUND, err.code)
    conn:close()
  end)

  it("keeps many calls in flight and matches answers that come out of order", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local results = {}
    for i, ms in ipairs{60, 10, 40, 1, 25} do
      coroutine.wrap(function()
        local v = conn:call("sleep_then", {ms, i})
        results[#results + 1] = v
      end)()
    end
    assert.is_true(run_until(function() return #results == 5 end))
    assert.same({4, 2, 5, 3, 1}, results)   -- in the order the timers fired
    conn:close()
  end)

  it("connects to a host name, outside and inside coroutines", function()
    local port = select(2, listener:address())
    local conn = assert(jsonrpc.connect("tcp://localhost:" .. port))
    assert.equal(3, conn:call("add", {1, 2}))
    conn:close()
    local result
    coroutine.wrap(function()
      local c = assert(jsonrpc.connect("tcp://localhost:" .. port))
      result = c:call("add", {2, 3})
      c:close()
    end)()
    assert.is_true(run_until(function() return result ~= nil end))
    assert.equal(5, result)
  end)

  it("fails a name that does not resolve with CONNECTION_FAILED", function()
    local conn, err = jsonrpc.connect("tcp://no-such-host.invalid:4000")
    assert.is_nil(conn)
    assert.equal(codes.CONNECTION_FAILED, err.code)
    assert.is_true(err.transport)
    assert.matches("no%-such%-host%.invalid", err.message)
  end)

  it("works over IPv6 loopback", function()
    local probe = uv.new_tcp()
    local has_v6 = probe:bind("::1", 0)
    probe:close()
    if not has_v6 then pending("no IPv6 loopback on this machine") return end
    local l6 = assert(server:listen("tcp://[::1]:0"))
    assert.matches("^tcp://%[::1%]:%d+$", l6.url)
    local conn = assert(jsonrpc.connect(l6.url))
    assert.equal(5, conn:call("add", {2, 3}))
    conn:close()
  end)

  for _, framing in ipairs{"be32", "ndjson", "content-length"} do
    it("speaks " .. framing, function()
      local l = assert(server:listen("tcp://127.0.0.1:0", {framing = framing}))
      local conn = assert(jsonrpc.connect(l.url, {framing = framing}))
      assert.same({"é😀", {1, 2}}, conn:call("echo", {"é😀", {1, 2}}))
      conn:close()
    end)
  end

  it("batches over a socket", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local b = conn:batch()
    b:call("add", {1, 1}):notify("add", {0, 0}):call("nope"):call("add", {2, 2})
    local r = b:send()
    assert.equal(2, r[1])
    assert.equal(codes.METHOD_NOT_FOUND, r[2].code)
    assert.equal(4, r[3])
    conn:close()
  end)
end)

describe("timeouts", function()
  it("fails a call that outlives its timeout with -32001 and drops its late answer quietly", function()
    local strays = {}
    local conn = assert(jsonrpc.connect(listener.url, {on_stray = function(r) strays[#strays + 1] = r end}))
    local t0 = uv.hrtime()
    local r, err = conn:try_call("sleep_then", {300, "late"}, {timeout = 0.05})
    local elapsed = (uv.hrtime() - t0) / 1e6
    assert.is_nil(r)
    assert.equal(codes.TIMEOUT, err.code)
    assert.is_true(elapsed >= 40 and elapsed < 250, "timed out after " .. elapsed .. " ms")
    -- the late answer arrives and is dropped without a word
    local done = false
    local t = uv.new_timer()
    t:start(400, 0, function() t:close(); done = true end)
    run_until(function() return done end)
    assert.same({}, strays)
    -- the connection is still fine
    assert.equal(3, conn:call("add", {1, 2}, {timeout = 2}))
    conn:close()
  end)

  it("applies a connection's default timeout, in coroutines and callbacks too", function()
    local conn = assert(jsonrpc.connect(listener.url, {timeout = 0.03}))
    local _, err = conn:try_call("sleep_then", {200, 1})
    assert.equal(codes.TIMEOUT, err.code)
    local cb_err
    conn:call("sleep_then", {200, 1}, function(_, e) cb_err = e end)
    local co_err
    coroutine.wrap(function() local _, e = conn:try_call("sleep_then", {200, 1}); co_err = e end)()
    assert.is_true(run_until(function() return cb_err ~= nil and co_err ~= nil end))
    assert.equal(codes.TIMEOUT, cb_err.code)
    assert.equal(codes.TIMEOUT, co_err.code)
    assert.equal(9, conn:call("add", {4, 5}))   -- quick calls are unaffected
    conn:close()
  end)

  it("times out a batch as a whole", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local b = conn:batch()
    b:call("add", {1, 1}):call("sleep_then", {300, "x"})
    local results = b:send({timeout = 0.05})
    assert.equal(codes.TIMEOUT, results[1].code)   -- a batch is answered as one array
    assert.equal(codes.TIMEOUT, results[2].code)
    conn:close()
  end)

  it("needs a transport: a sans-IO endpoint refuses a timeout", function()
    local ep = jsonrpc.endpoint{send = function() end}
    assert.has_error(function() ep:try_call("x", nil, {timeout = 1}) end)
  end)
end)

describe("unix sockets", function()
  it("listens, calls and removes the socket file on close", function()
    local path = os.tmpname()
    os.remove(path)
    local l = assert(server:listen("unix://" .. path))
    assert.equal("unix://" .. path, l.url)
    assert.equal("socket", uv.fs_stat(path).type)
    local conn = assert(jsonrpc.connect(l.url))
    assert.equal(42, conn:call("add", {40, 2}))
    conn:close()
    l:close()
    jsonrpc.run("nowait")
    assert.is_nil(uv.fs_stat(path))   -- (io.open fails on a socket file anyway)
  end)
end)

describe("failures", function()
  it("fails fast on a closed port", function()
    local t0 = uv.hrtime()
    local conn, err = jsonrpc.connect("tcp://127.0.0.1:1")
    assert.is_nil(conn)
    assert.equal(codes.CONNECTION_FAILED, err.code)
    assert.is_true((uv.hrtime() - t0) / 1e9 < 2)
  end)

  it("fails listen and connect with error values that keep the libuv error's name", function()
    local taken = assert(server:listen("tcp://127.0.0.1:0"))
    local l, err = jsonrpc.server():listen(taken.url)
    assert.is_nil(l)
    assert.equal(codes.CONNECTION_FAILED, err.code)
    assert.is_true(err.transport)
    assert.equal("EADDRINUSE", err.data.errno)
    assert.matches("cannot listen on " .. taken.url:gsub("%p", "%%%0"), err.message)
    local port = taken.url:match(":(%d+)$")
    taken:close()
    jsonrpc.run("nowait")
    local conn
    conn, err = jsonrpc.connect("tcp://127.0.0.1:" .. port)
    assert.is_nil(conn)
    assert.equal(codes.CONNECTION_FAILED, err.code)
    assert.equal("ECONNREFUSED", err.data.errno)
    l, err = server:listen("tcp://127.0.0.1:99999")
    assert.is_nil(l)
    assert.equal(codes.CONNECTION_FAILED, err.code)
    assert.is_nil(err.data)
  end)

  it("refuses bad URLs", function()
    local conn, err = jsonrpc.connect("http://x")
    assert.is_nil(conn)
    assert.matches("unsupported URL", err.message)
    assert.is_nil(server:listen("tcp://127.0.0.1:99999"))
  end)

  it("fails pending calls with CONNECTION_CLOSED when the peer closes", function()
    server:method("drop", function(ctx) ctx.connection:close("server went away") end, {context = true})
    local conn = assert(jsonrpc.connect(listener.url))
    local r, err = conn:try_call("drop")
    assert.is_nil(r)
    assert.equal(codes.CONNECTION_CLOSED, err.code)
    assert.equal("closed by the peer", conn:wait_closed())
    -- and later calls fail at once
    r, err = conn:try_call("add", {1, 2})
    assert.equal(codes.CONNECTION_CLOSED, err.code)
  end)

  it("closes only the connection that sends garbage; others go on", function()
    local good = assert(jsonrpc.connect(listener.url))
    local errors = {}
    server:close()
    listener = assert(server:listen("tcp://127.0.0.1:0",
      {on_error = function(message) errors[#errors + 1] = message end}))
    good = assert(jsonrpc.connect(listener.url))
    local host, port = listener:address()
    local sock = uv.new_tcp()
    local gone = false
    sock:connect(host, port, function(err)
      assert(not err, err)
      sock:write("Content-Length: nonsense\r\n\r\n")
      sock:read_start(function(_, data)
        if data == nil then gone = true; sock:close() end
      end)
    end)
    assert.is_true(run_until(function() return gone end))   -- the server dropped it
    assert.equal(7, good:call("add", {3, 4}))                 -- the other goes on
    assert.matches("invalid Content%-Length", errors[1])      -- reported through the hook
    good:close()
  end)

  it("loses only the connection of a client that dies mid-message", function()
    local good = assert(jsonrpc.connect(listener.url))
    local host, port = listener:address()
    local sock = uv.new_tcp()
    local done = false
    sock:connect(host, port, function(err)
      assert(not err, err)
      -- a header announcing 100 bytes, then 10 of them, then gone
      sock:write("Content-Length: 100\r\n\r\n{\"jsonrpc\"", function() sock:close(); done = true end)
    end)
    assert.is_true(run_until(function() return done end))
    run_until(function() return false end, 50)
    assert.equal(9, good:call("add", {4, 5}))
    good:close()
  end)

  it("fails the pending call when the server dies mid-answer", function()
    local raw = uv.new_tcp()
    raw:bind("127.0.0.1", 0)
    raw:listen(8, function()
      local client = uv.new_tcp()
      raw:accept(client)
      client:read_start(function(_, data)
        if data then   -- the request: answer half of it and die
          client:write("Content-Length: 60\r\n\r\n{\"jsonrpc\":\"2.0\",\"res", function() client:close() end)
        end
      end)
    end)
    local addr = raw:getsockname()
    local conn = assert(jsonrpc.connect(("tcp://127.0.0.1:%d"):format(addr.port)))
    local r, err = conn:try_call("add", {1, 2})
    assert.is_nil(r)
    assert.equal(codes.CONNECTION_CLOSED, err.code)
    raw:close()
    jsonrpc.run("nowait")
  end)

  it("closes a connection whose frame is over max_message_size, before buffering it", function()
    local reported
    local small = assert(server:listen("tcp://127.0.0.1:0", {max_message_size = 64,
      on_error = function(message) reported = message end}))
    local conn = assert(jsonrpc.connect(small.url))
    local r, err = conn:try_call("echo", {string.rep("x", 200)})
    assert.is_nil(r)
    assert.equal(codes.CONNECTION_CLOSED, err.code)
    assert.matches("exceeds max_message_size %(64%)", reported)
  end)
end)

describe("the loop shared with luv", function()
  it("runs luv timers and our connections in one loop, from either run", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local fired = 0
    local t = uv.new_timer()
    t:start(5, 5, function() fired = fired + 1; if fired == 3 then t:close() end end)
    local answer
    coroutine.wrap(function() answer = conn:call("sleep_then", {30, "late"}) end)()
    -- luv's own run drives our sockets too
    local deadline = uv.now() + 5000
    while not (fired == 3 and answer) and uv.now() < deadline do uv.run("once") end
    assert.equal(3, fired)
    assert.equal("late", answer)
    conn:close()
  end)

  it("lets uv.walk see our handles", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local ours = 0
    -- the C driver's handles name themselves; the luv driver's are luv's
    local mine = require("jsonrpc.transport.driver").default_name() == "luv" and "^uv_tcp_t" or "^jsonrpc%."
    uv.walk(function(h)
      local name = tostring(h)
      if name:find(mine) then
        ours = ours + 1
        assert.is_false(h:is_closing())
      end
    end)
    assert.is_true(ours >= 3)   -- the listener and both ends of the connection
    conn:close()
  end)

  it("lets the interpreter exit with connections open, without a crash", function()
    local script = [[
      local jsonrpc = require "jsonrpc"
      local uv = require "luv"
      local server = jsonrpc.server()
      server:method("add", function(a, b) return a + b end)
      local l = assert(server:listen("tcp://127.0.0.1:0"))
      local conn = assert(jsonrpc.connect(l.url))
      assert(conn:call("add", {1, 2}) == 3)
      uv.new_timer():start(100000, 0, function() end)   -- a luv handle left open too
      io.write("ok")
    ]]
    local lua = require("spec.support.util").interpreter()
    local p = io.popen(lua .. " -e '" .. script:gsub("'", "'\\''") .. "' 2>&1; echo \" exit=$?\"")
    local out = p:read("*a")
    p:close()
    assert.matches("^ok exit=0", out)
  end)
end)

describe("the luv driver", function()
  it("is not the default where luv runs the libuv we link (Debian's luv does)", function()
    local core = require "jsonrpc.core"
    assert.is_true(core.same_libuv())
    local expected = os.getenv("JSONRPC_DRIVER") or "c"
    assert.equal(expected, require("jsonrpc.transport.driver").default_name())
  end)

  it("serves and calls through luv's handles with driver = \"luv\", framing and dispatch in C", function()
    local server = jsonrpc.server()
    server:method("add", function(a, b) return a + b end)
    local l = assert(server:listen("tcp://127.0.0.1:0", { driver = "luv" }))
    local conn = assert(jsonrpc.connect(l.url, { driver = "luv", framing = "content-length" }))
    local names = {}
    uv.walk(function(h) names[#names + 1] = tostring(h) end)
    local ours, luvs = 0, 0
    for _, name in ipairs(names) do
      if name:find("^jsonrpc%.stream") then ours = ours + 1 end
      if name:find("^uv_tcp_t") then luvs = luvs + 1 end
    end
    assert.equal(0, ours)
    assert.is_true(luvs >= 3)   -- the listener and both ends
    local result
    conn:call("add", { 2, 3 }, function(r) result = r end)
    assert.is_true(util.run_until(function() return result ~= nil end, 2000))
    assert.equal(5, result)
    conn:close()
    l:close()
    server:close()
  end)

  it("answers framing errors as the C driver does: once and closes, or goes on for ndjson", function()
    local raw = require "spec.support.raw"
    local server = jsonrpc.server()
    server:method("add", function(a, b) return a + b end)
    local lines = assert(server:listen("tcp://127.0.0.1:0",
      { driver = "luv", framing = "ndjson", max_message_size = 100, on_error = function() end }))
    local c = assert(raw.connect(lines.url, util.run_until))
    c:write(("x"):rep(200) .. "\n" .. '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}\n')
    assert.is_true(util.run_until(function() return select(2, c.received:gsub("\n", "")) >= 2 end, 2000))
    local first, second = c.received:match("^(.-)\n(.-)\n")
    assert.equal(-32600, jsonrpc.decode(first).error.code)
    assert.equal(3, jsonrpc.decode(second).result)
    assert.is_false(c.eof)
    c:close()
    local frames = assert(server:listen("tcp://127.0.0.1:0", { driver = "luv", on_error = function() end }))
    local b = assert(raw.connect(frames.url, util.run_until))
    b:write("Content-Length: nope\r\n\r\n")
    assert.is_true(util.run_until(function() return b.eof end, 2000))
    local answer = jsonrpc.decode(b.received:match("\r\n\r\n(.*)$"))
    assert.equal(-32700, answer.error.code)
    assert.matches("^Parse error: ", answer.error.message)
    b:close()
    lines:close()
    frames:close()
    server:close()
  end)

  it("names libuv's errors as the C driver does (core.strerror)", function()
    local core = require "jsonrpc.core"
    assert.equal("connection refused", core.strerror("ECONNREFUSED"))
    assert.is_nil(core.strerror("ENOTANERROR"))
    local _, err = jsonrpc.connect("tcp://127.0.0.1:1", { driver = "luv" })
    assert.equal("connect failed: connection refused", err.message)
    assert.equal("ECONNREFUSED", err.data.errno)
  end)

  it("refuses a driver it does not have", function()
    assert.has_error(function() jsonrpc.connect("tcp://127.0.0.1:1", { driver = "libevent" }) end,
      'driver must be "c" or "luv", not libevent')
  end)
end)

describe("closing and load", function()
  it("closes a server gracefully: handlers in flight finish and their answers arrive", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local answers = {}
    for i = 1, 3 do
      coroutine.wrap(function() answers[i] = conn:call("sleep_then", {20 * i, i}) end)()
    end
    run_until(function() return false end, 5)   -- let the requests arrive
    server:close({graceful = true})
    assert.is_true(run_until(function() return #answers == 3 end))
    assert.same({1, 2, 3}, answers)
    assert.equal("closed by the peer", conn:wait_closed())
  end)

  it("stops reading from a peer that does not read its answers, and resumes when it does", function()
    local handled = 0
    local answer = string.rep("z", 128 * 1024)
    server:method("count", function() handled = handled + 1; return answer end)
    local l = assert(server:listen("tcp://127.0.0.1:0", {write_high_water = 256 * 1024}))
    local host, port = l:address()
    local sock = uv.new_tcp()
    local connected = false
    sock:connect(host, port, function(err) assert(not err, err); connected = true end)
    assert.is_true(run_until(function() return connected end))
    local TOTAL, sent = 300, 0
    local pace = uv.new_timer()
    pace:start(1, 1, function()
      sent = sent + 1
      local body = ('{"jsonrpc":"2.0","method":"count","id":%d}'):format(sent)
      sock:write(("Content-Length: %d\r\n\r\n%s"):format(#body, body))
      if sent == TOTAL then pace:stop() end
    end)
    assert.is_true(run_until(function() return sent == TOTAL end))
    run_until(function() return false end, 200)   -- the server does what it can
    local stalled = handled
    assert.is_true(stalled < TOTAL, "handled " .. stalled .. " while nothing was read")
    local received = 0
    sock:read_start(function(_, data) if data then received = received + #data end end)
    assert.is_true(run_until(function() return handled == TOTAL end, 30000))
    assert.is_true(run_until(function() return received >= TOTAL * #answer end, 30000))
    pace:close()
    sock:close()
    jsonrpc.run("nowait")
  end)

  it("makes a handler that floods notifications wait while the peer is behind", function()
    server:close()
    local HIGH, N, most = 64 * 1024, 20000, 0
    server:method("flood", function(ctx, n)
      local conn = ctx.connection
      for i = 1, n do
        conn:notify("tick", {i, string.rep("x", 100)})
        most = math.max(most, conn.stream:queued())
      end
      return n
    end, {context = true})
    listener = assert(server:listen("tcp://127.0.0.1:0", {write_high_water = HIGH}))
    local got, in_order, result = 0, true, nil
    local client = assert(jsonrpc.connect(listener.url))
    client:method("tick", function(i) got = got + 1; if i ~= got then in_order = false end end)
    coroutine.wrap(function() result = client:call("flood", {N}) end)()
    assert.is_true(run_until(function() return result ~= nil end, 60000))
    assert.equal(N, result)
    assert.equal(N, got)   -- every notification, before the answer
    assert.is_true(in_order)
    if coroutine.isyieldable then   -- plain Lua 5.1 cannot wait there
      assert.is_true(most <= HIGH + 200, "queued " .. most .. " bytes")
    end
    client:close()
  end)

  it("flushes from a handler: the handler waits until its texts are written", function()
    local big = string.rep("y", 3 * 1024 * 1024)
    local queued_after
    server:method("push_then_answer", function(ctx)
      ctx.connection:notify("big", {big})
      ctx.connection:flush()
      queued_after = ctx.connection.stream:queued()
      return "flushed"
    end, {context = true})
    local client = assert(jsonrpc.connect(listener.url))
    local got
    client:method("big", function(s) got = #s end)
    local result
    coroutine.wrap(function() result = client:call("push_then_answer") end)()
    assert.is_true(run_until(function() return result ~= nil end, 30000))
    assert.equal("flushed", result)
    assert.equal(#big, got)
    assert.equal(0, queued_after)
    client:close()
  end)

  it("sends at once from a script that is not running the loop", function()
    local conn = assert(jsonrpc.connect(listener.url))
    for i = 1, 3 do conn:notify("add", {i, 1}) end
    assert.equal(0, conn.stream:unsent())   -- all handed to the kernel already
    conn:close()
  end)

  it("answers many requests that arrive in one read, in order", function()
    local sock = uv.new_tcp()
    local host, port = listener:address()
    local connected, received = false, ""
    sock:connect(host, port, function(err) assert(not err, err); connected = true end)
    assert.is_true(run_until(function() return connected end))
    local parts = {}
    for i = 1, 50 do
      local body = ('{"jsonrpc":"2.0","method":"add","params":[%d,1],"id":%d}'):format(i, i)
      parts[i] = ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
    end
    sock:read_start(function(_, data) if data then received = received .. data end end)
    sock:write(table.concat(parts))
    assert.is_true(run_until(function()
      local _, n = received:gsub("Content%-Length", "")
      return n == 50
    end))
    local i = 0
    for result, id in received:gmatch('"result":(%d+),"id":(%d+)') do
      i = i + 1
      assert.equal(i, tonumber(id))
      assert.equal(i + 1, tonumber(result))
    end
    assert.equal(50, i)
    sock:close()
    jsonrpc.run("nowait")
  end)

  it("stops reading from a connection with too many handlers in flight, then resumes", function()
    server:close()
    local running, most = 0, 0
    server:method("tracked", function()
      running = running + 1
      most = math.max(most, running)
      local co = coroutine.running()
      local t = uv.new_timer()
      t:start(20, 0, function() t:close(); coroutine.resume(co) end)
      coroutine.yield()
      running = running - 1
      return true
    end)
    listener = assert(server:listen("tcp://127.0.0.1:0", {max_in_flight = 2}))
    local conn = assert(jsonrpc.connect(listener.url))
    local done = 0
    for _ = 1, 6 do
      coroutine.wrap(function() conn:call("tracked"); done = done + 1 end)()
    end
    assert.is_true(run_until(function() return done == 6 end))
    assert.equal(2, most)   -- never more than two at once, and all six answered
    conn:close()
  end)
end)
