-- Behaviour a mutation audit found unguarded (one-line bugs the rest of the
-- suite let through; see mutants/list): string ids of handlers that wait,
-- timeouts, calls and batches pending at close, the default message limit,
-- backpressure, IPv6, guard_print, and connecting to a name's later address.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"
local uv = require "luv"

local codes = jsonrpc.codes
local run_until = util.run_until
local lua = util.interpreter()

-- A handler waits ms on a luv timer (its coroutine yields).
local function sleep(ms)
  local co = coroutine.running()
  local t = uv.new_timer()
  t:start(ms, 0, function() t:close(); coroutine.resume(co) end)
  coroutine.yield()
end

local function pause(ms) run_until(function() return false end, ms) end

local sh = util.sh

-- A client on a plain luv socket, speaking content-length by hand:
-- send(body); got: the messages received, decoded; closed: the peer hung up.
local function raw_client(host, port)
  local c = { got = {}, closed = false }
  local framer = jsonrpc.framer("content-length")
  local sock = uv.new_tcp()
  local connected = false
  sock:connect(host, port, function(err) assert(not err, err); connected = true end)
  assert(run_until(function() return connected end), "cannot connect")
  sock:read_start(function(_, data)
    if not data then c.closed = true; return end
    for _, m in ipairs(framer:feed(data)) do c.got[#c.got + 1] = jsonrpc.decode(m) end
  end)
  function c.send(body) sock:write(("Content-Length: %d\r\n\r\n%s"):format(#body, body)) end
  function c.close()
    if not sock:is_closing() then sock:close() end
    jsonrpc.run("nowait")
  end
  return c
end

-- A server on a plain luv socket: on_accept(client) for each connection.
local function raw_server(on_accept)
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  srv:listen(8, function()
    local client = uv.new_tcp()
    srv:accept(client)
    on_accept(client)
  end)
  return srv, srv:getsockname().port
end

local server, listener
before_each(function()
  server = jsonrpc.server()
  server:method("add", function(a, b) return a + b end)
  server:method("sleep_then", function(ms, value) sleep(ms); return value end)
  server:method("drop", function(ctx, ms)
    if ms then sleep(ms) end
    ctx.connection:close("dropped")
  end, { context = true })
  listener = assert(server:listen("tcp://127.0.0.1:0"))
end)
after_each(function()
  server:close()
  jsonrpc.run("nowait")
end)

describe("handlers that wait", function()
  it("answer with the request's own id: strings, escaped strings, numbers, in batches", function()
    local c = raw_client(listener:address())
    c.send('{"jsonrpc":"2.0","method":"sleep_then","params":[30,"a"],"id":"abc"}')
    c.send('{"jsonrpc":"2.0","method":"sleep_then","params":[20,"b"],"id":"q\\"\\u00e9/"}')
    c.send('{"jsonrpc":"2.0","method":"sleep_then","params":[10,"c"],"id":7}')
    c.send('[{"jsonrpc":"2.0","method":"sleep_then","params":[5,"d"],"id":"in a batch"},'
      .. '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":"quick"}]')
    assert.is_true(run_until(function() return #c.got == 4 end))
    local id_of = {}
    for _, m in ipairs(c.got) do
      for _, r in ipairs(m.jsonrpc and { m } or m) do id_of[tostring(r.result)] = r.id end
    end
    assert.same({ a = "abc", b = 'q"é/', c = 7, d = "in a batch", ["3"] = "quick" }, id_of)
    c.close()
  end)

  it("answer a string id when the handler waits on a call to the peer", function()
    -- two endpoints whose texts wait in a queue: b's handler must yield
    local queue, sent, a, b = {}, {}, nil, nil
    a = jsonrpc.endpoint { send = function(text) queue[#queue + 1] = { b, text } end }
    b = jsonrpc.endpoint { send = function(text)
      sent[#sent + 1] = jsonrpc.decode(text)
      queue[#queue + 1] = { a, text }
    end }
    a:method("double", function(x) return 2 * x end)
    b:method("ask_back", function(x) return b:call("double", { x }) + 1 end)
    b:receive('{"jsonrpc":"2.0","method":"ask_back","params":[20],"id":"s-1"}')
    assert.equal(1, b:in_flight())   -- it waits for a's answer
    while #queue > 0 do
      local item = table.remove(queue, 1)
      item[1]:receive(item[2])
    end
    local last = sent[#sent]
    assert.equal(41, last.result)
    assert.equal("s-1", last.id)
  end)
end)

describe("timeouts", function()
  local function timed(f)
    local t0 = uv.hrtime()
    local r, err = f()
    return (uv.hrtime() - t0) / 1e9, r, err
  end

  local function assert_timed_out(seconds, r, err)
    assert.is_nil(r)
    assert.equal(codes.TIMEOUT, err.code)
    assert.is_true(seconds >= 0.15 and seconds < 0.5, ("timed out after %.3f s"):format(seconds))
  end

  it("fail a call with {timeout = 0.2} after about 0.2 s", function()
    local conn = assert(jsonrpc.connect(listener.url))
    assert_timed_out(timed(function() return conn:try_call("sleep_then", { 1500, 1 }, { timeout = 0.2 }) end))
    conn:close()
  end)

  it("fail a call after a connection's default timeout of 0.2 s, and a batch", function()
    local conn = assert(jsonrpc.connect(listener.url, { timeout = 0.2 }))
    assert_timed_out(timed(function() return conn:try_call("sleep_then", { 1500, 1 }) end))
    local s, results = timed(function()
      return conn:batch():call("sleep_then", { 1500, 1 }):send({ timeout = 0.2 })
    end)
    assert_timed_out(s, nil, results[1])
    conn:close()
  end)
end)

describe("closing with calls pending", function()
  it("fails a callback call with CONNECTION_CLOSED, closed here or by the peer", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local errs = {}
    conn:call("sleep_then", { 1500, 1 }, function(_, err) errs[#errs + 1] = err end)
    pause(20)
    conn:close()
    assert.is_true(run_until(function() return #errs == 1 end, 3000))
    assert.equal(codes.CONNECTION_CLOSED, errs[1].code)

    conn = assert(jsonrpc.connect(listener.url))
    conn:call("sleep_then", { 1500, 1 }, function(_, err) errs[#errs + 1] = err end)
    conn:call("drop", { 20 }, function(_, err) errs[#errs + 1] = err end)
    assert.is_true(run_until(function() return #errs == 3 end, 3000))
    assert.equal(codes.CONNECTION_CLOSED, errs[2].code)
    assert.equal(codes.CONNECTION_CLOSED, errs[3].code)
  end)

  it("fails a batch with CONNECTION_CLOSED, closed here or by the peer", function()
    local conn = assert(jsonrpc.connect(listener.url))
    local results
    coroutine.wrap(function()
      results = conn:batch():call("sleep_then", { 1500, 1 }):call("add", { 1, 2 }):send({ timeout = 3 })
    end)()
    pause(20)
    conn:close()
    assert.is_true(run_until(function() return results ~= nil end, 5000))
    assert.equal(codes.CONNECTION_CLOSED, results[1].code)
    assert.equal(codes.CONNECTION_CLOSED, results[2].code)

    conn = assert(jsonrpc.connect(listener.url))
    results = conn:batch():call("sleep_then", { 1500, 1 }):call("drop", { 20 }):send({ timeout = 3 })
    assert.equal(codes.CONNECTION_CLOSED, results[1].code)
    assert.equal(codes.CONNECTION_CLOSED, results[2].code)
  end)
end)

describe("the default max_message_size (128 MiB on connections the user opens)", function()
  local LIMIT = 128 * 1024 * 1024

  it("closes a connection whose peer announces a larger frame, before its body", function()
    for _, case in ipairs { { LIMIT + 1, true }, { LIMIT, false } } do
      local size, refused = case[1], case[2]
      local peer
      local srv, port = raw_server(function(client)
        peer = client
        client:write(("Content-Length: %d\r\n\r\n{\"jsonrpc\""):format(size))
      end)
      local errors = {}
      local conn = assert(jsonrpc.connect("tcp://127.0.0.1:" .. port,
        { on_error = function(message) errors[#errors + 1] = message end }))
      run_until(function() return conn:is_closed() end, refused and 3000 or 300)
      assert.equal(refused, conn:is_closed(), "announced " .. size)
      if refused then
        assert.matches("exceeds max_message_size %(" .. LIMIT .. "%)", errors[1] or "")
      end
      conn:close()
      if peer then peer:close() end
      srv:close()
      jsonrpc.run("nowait")
    end
  end)

  it("is 16 MiB on listeners, which face strangers", function()
    local LIMIT = 16 * 1024 * 1024
    local errors = {}
    local l = assert(server:listen("tcp://127.0.0.1:0",
      { on_error = function(message) errors[#errors + 1] = message end }))
    local host, port = l:address()
    local sock, gone = uv.new_tcp(), false
    sock:connect(host, port, function(err)
      assert(not err, err)
      sock:write(("Content-Length: %d\r\n\r\n{"):format(LIMIT + 1))
      sock:read_start(function(_, data) if not data then gone = true end end)
    end)
    assert.is_true(run_until(function() return gone end, 3000))
    assert.matches("exceeds max_message_size %(" .. LIMIT .. "%)", errors[1] or "")
    sock:close()
    jsonrpc.run("nowait")
  end)
end)

describe("backpressure", function()
  it("stops reading from a peer that does not read once write_high_water bytes are queued", function()
    local HIGH, answer = 256 * 1024, string.rep("z", 64 * 1024)
    local handled, most = 0, 0
    server:method("big", function(ctx)
      handled = handled + 1
      most = math.max(most, ctx.connection.stream:queued())
      return answer
    end, { context = true })
    local l = assert(server:listen("tcp://127.0.0.1:0", { write_high_water = HIGH }))
    -- 600 requests in one write, for 38 MiB of answers (far more than the
    -- kernel's buffers hold); the peer never reads them
    local TOTAL, parts = 600, {}
    for i = 1, TOTAL do
      local body = ('{"jsonrpc":"2.0","method":"big","id":%d}'):format(i)
      parts[i] = ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
    end
    local host, port = l:address()
    local sock, written = uv.new_tcp(), false
    sock:connect(host, port, function(err)
      assert(not err, err)
      sock:write(table.concat(parts), function() written = true end)
    end)
    assert.is_true(run_until(function() return written end, 10000))
    pause(300)   -- the server does what it can
    assert.is_true(handled < TOTAL, "handled all " .. handled .. " while nothing was read")
    assert.is_true(most <= 2 * HIGH, ("%d bytes were queued (write_high_water %d)"):format(most, HIGH))
    sock:close()
    jsonrpc.run("nowait")
  end)
end)

describe("IPv6", function()
  it("parses IPv6 URLs", function()
    local parse = require("jsonrpc.transport").parse_url
    assert.same({ kind = "tcp", host = "::1", port = 4000 }, parse("tcp://[::1]:4000"))
    assert.same({ kind = "tcp", host = "fe80::1:2", port = 0 }, parse("tcp://[fe80::1:2]:0"))
    assert.same({ kind = "tcp", host = "::ffff:127.0.0.1", port = 65535 },
      parse("tcp://[::ffff:127.0.0.1]:65535"))
    assert.same({ kind = "tcp", host = "127.0.0.1", port = 80 }, parse("tcp://127.0.0.1:80"))
    for _, bad in ipairs { "tcp://[::1]:65536", "tcp://::1:4000", "tcp://[::1]", "tcp://[]:80",
                           "tcp://[::1]:x", "tcp://[::1:80" } do
      assert.is_nil(parse(bad), bad)
    end
  end)

  it("connects over tcp://[::1]:PORT when this machine has IPv6 loopback", function()
    local probe = uv.new_tcp()
    local has_v6 = probe:bind("::1", 0)
    probe:close()
    jsonrpc.run("nowait")
    if not has_v6 then pending("no IPv6 loopback on this machine") return end
    server:method("peer", function(ctx) return ctx.connection.stream:peer() end, { context = true })
    local l6 = assert(server:listen("tcp://[::1]:0"))
    assert.matches("^tcp://%[::1%]:%d+$", l6.url)
    assert.equal("::1", (l6:address()))
    local conn = assert(jsonrpc.connect(l6.url))
    assert.equal(5, conn:call("add", { 2, 3 }))
    assert.matches("^%[::1%]:%d+$", conn:call("peer"))
    conn:close()
  end)
end)

describe("jsonrpc.stdio's guard_print", function()
  local function child(opts)
    local script = ('local j = require "jsonrpc"; local c = assert(j.stdio(j.server(), %s)); '
      .. 'print("PRINTED"); c:close(); c:wait_closed()'):format(opts)
    local err = os.tmpname()
    local out, code = sh((": | %s -e '%s' 2>%s"):format(lua, script, err))
    local f = assert(io.open(err))
    local stderr = f:read("*a")
    f:close()
    os.remove(err)
    assert.equal(0, code, stderr)
    return out, stderr
  end

  it("sends print to stderr by default", function()
    local out, stderr = child("{}")
    assert.not_matches("PRINTED", out)
    assert.matches("PRINTED", stderr)
  end)

  it("leaves print on stdout with guard_print = false", function()
    local out, stderr = child("{guard_print = false}")
    assert.matches("PRINTED", out)
    assert.not_matches("PRINTED", stderr)
  end)
end)

describe("connecting to a host name", function()
  it("tries its addresses in turn: the first refuses, a later one answers", function()
    local addrs = uv.getaddrinfo("localhost", nil, { socktype = "stream" }) or {}
    local command
    if #addrs >= 2 and addrs[1].addr ~= addrs[#addrs].addr then
      command = lua .. " spec/support/connect_fallback.lua localhost"
    else
      -- this machine's localhost has one address: give a name two in a
      -- private /etc/hosts (a mount namespace of the child's own)
      local hosts = os.tmpname()
      local f = assert(io.open(hosts, "w"))
      f:write("::1 jsonrpc-two.test\n127.0.0.1 jsonrpc-two.test\n")
      f:close()
      command = ("unshare -m sh -c 'mount --bind %s /etc/hosts && exec %s spec/support/connect_fallback.lua jsonrpc-two.test'; rm -f %s")
        :format(hosts, lua, hosts)
    end
    local out, code = sh(command .. " 2>&1")
    assert.equal(0, code, out)
    assert.matches("^answered by %S+ after %S+ refused", out)
  end)
end)
