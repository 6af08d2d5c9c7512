--- The calling side: two endpoints wired to each other with plain function
-- calls (synchronously, or through queues the test delivers by hand).
-- Black-box: only the API documented in the README is assumed.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"

local null = jsonrpc.null
local decode, encode = jsonrpc.decode, jsonrpc.encode
local has_integers = math.type ~= nil

local function decode_ok(text)
  local v, err = decode(text)
  assert(err == nil, "not JSON: " .. tostring(err) .. ": " .. tostring(text))
  return v
end

local same = util.same_json   -- numbers compared by value

local function assert_same(expected, actual)
  if not same(expected, actual) then
    local e, a = encode(expected), encode(actual)
    error(("expected %s, got %s"):format(tostring(e), tostring(a)), 2)
  end
end

local function assert_error_value(e, code, message, data)
  assert(jsonrpc.is_error(e), "expected an error value, got " .. tostring(e))
  assert.equal(code, e.code)
  if message then assert.equal(message, e.message) end
  if data ~= nil then assert_same(data, e.data) end
end

--- The methods of the peer under test.
local function install(ep, log)
  ep:method("subtract", function(minuend, subtrahend) return minuend - subtrahend end,
    {params = {"minuend", "subtrahend"}})
  ep:method("sum", function(...)
    local t = 0
    for i = 1, select("#", ...) do t = t + select(i, ...) end
    return t
  end)
  ep:method("record", function(...)
    log.received = {n = select("#", ...), ...}
    return "recorded"
  end)
  ep:method("note", function(...)
    log.notes = log.notes + 1
    log.note_args = {n = select("#", ...), ...}
  end)
  ep:method("nothing", function() end)
  ep:method("get_data", function() return {"hello", 5} end)
  ep:method("echo", function(x) return x end)
  ep:method("fail", function(code, message, data) error(jsonrpc.error(code, message, data)) end,
    {params = {"code", "message", "data"}})
  ep:method("soft_fail", function() return nil, jsonrpc.error(-32042, "soft", {n = 1}) end)
  ep:method("boom", function() error("boom") end)
end

--- Two endpoints wired synchronously; log.a / log.b hold the texts each sent.
local function sync_pair(opts_a, opts_b)
  local a, b
  local log = {a = {}, b = {}, notes = 0}
  opts_a, opts_b = opts_a or {}, opts_b or {}
  opts_a.send = function(t) log.a[#log.a + 1] = t; b:receive(t) end
  opts_b.send = function(t) log.b[#log.b + 1] = t; a:receive(t) end
  a = jsonrpc.endpoint(opts_a)
  b = jsonrpc.endpoint(opts_b)
  install(b, log)
  return a, b, log
end

--- An endpoint whose output goes to a queue the test delivers by hand.
local function queued(opts)
  opts = opts or {}
  local q = {}
  opts.send = function(t) q[#q + 1] = t end
  return jsonrpc.endpoint(opts), q
end

local function start(fn)
  local co = coroutine.create(fn)
  local okay, err = coroutine.resume(co)
  assert(okay, err)
  return co
end

--- call() raising inside a coroutine, caught: pcall where a coroutine can
-- yield across it (5.2+, LuaJIT); plain Lua 5.1 cannot, so there the error
-- value comes from try_call instead.
local yield_across_pcall = not (_VERSION == "Lua 5.1" and rawget(_G, "jit") == nil)
local function pcall_call(ep, method, params)
  if yield_across_pcall then return pcall(ep.call, ep, method, params) end
  local result, err = ep:try_call(method, params)
  if err ~= nil then return false, err end
  return true, result
end

local function response(id, result) return encode{jsonrpc = "2.0", result = result, id = id} end

describe("endpoint: synchronous wiring", function()
  local a, b, log
  before_each(function() a, b, log = sync_pair() end)

  it("calls with positional and named params", function()
    assert.equal(19, a:call("subtract", {42, 23}))
    assert.equal(19, a:call("subtract", {minuend = 42, subtrahend = 23}))
    assert.equal(-19, a:call("subtract", {subtrahend = 42, minuend = 23}))
    assert.equal(7, a:call("sum", {1, 2, 4}))
    assert_same({"hello", 5}, a:call("get_data"))
  end)

  it("shapes params: sequence -> array, string keys -> object, nil -> omitted", function()
    assert.equal("recorded", a:call("record", {1, "two", {3}}))
    assert_same({n = 3, 1, "two", {3}}, log.received)
    local sent = decode_ok(log.a[#log.a])
    assert.equal("[1,\"two\",[3]]", encode(sent.params))

    a:call("record", {x = 1, y = {z = true}})
    assert.equal(1, log.received.n)
    assert_same({x = 1, y = {z = true}}, log.received[1])

    a:call("record")
    assert.equal(0, log.received.n)
    sent = decode_ok(log.a[#log.a])
    assert.is_nil(sent.params)
    assert.equal("record", sent.method)
    assert.equal("2.0", sent.jsonrpc)
    assert.is_not_nil(sent.id)

    a:call("record", {1, null, 3})
    assert_same({n = 3, 1, null, 3}, log.received)
  end)

  it("sends jsonrpc.array{} and jsonrpc.object{} as [] and {}", function()
    a:call("record", jsonrpc.array{})
    assert.equal(0, log.received.n)
    assert.equal("[]", encode(decode_ok(log.a[#log.a]).params))
    a:call("record", jsonrpc.object{})
    assert.equal(1, log.received.n)
    assert.is_table(log.received[1])
    assert.is_nil(next(log.received[1]))
    assert.equal("{}", encode(decode_ok(log.a[#log.a]).params))
  end)

  it("raises on scalar params (a programming error)", function()
    for _, p in ipairs{5, "str", true, 1.5} do
      assert.has_error(function() a:call("record", p) end)
      assert.has_error(function() a:try_call("record", p) end)
      assert.has_error(function() a:notify("record", p) end)
    end
    assert.is_nil(log.received)
  end)

  it("gets results of every kind; null arrives as jsonrpc.null", function()
    assert.equal(null, a:call("nothing"))
    assert.equal(null, a:call("echo", {null}))
    assert.equal("é😀", a:call("echo", {"é😀"}))
    assert.is_true(a:call("echo", {true}))
    assert.equal(2.5, a:call("echo", {2.5}))
    assert_same({a = {1, 2, {b = null}}}, a:call("echo", {{a = {1, 2, {b = null}}}}))
    assert.equal("[]", encode(a:call("echo", {jsonrpc.array{}})))
    if has_integers then
      assert.equal(math.maxinteger, a:call("echo", {math.maxinteger}))
      assert.equal(math.mininteger, a:call("echo", {math.mininteger}))
    end
  end)

  it("notify: the handler runs and nothing comes back", function()
    a:notify("note", {1, 2})
    assert.equal(1, log.notes)
    assert_same({n = 2, 1, 2}, log.note_args)
    assert.equal(0, #log.b)
    local sent = decode_ok(log.a[1])
    assert.is_nil(sent.id)
    assert.equal("note", sent.method)
    a:notify("note")
    assert.equal(2, log.notes)
    assert.equal(0, log.note_args.n)
    a:notify("no_such_method", {1})
    a:notify("boom")
    assert.equal(0, #log.b)
  end)

  it("call raises the error value; try_call returns nil, err", function()
    local okay, e = pcall(a.call, a, "fail", {-32050, "nope", {why = "because", list = {1, 2}}})
    assert.is_false(okay)
    assert_error_value(e, -32050, "nope", {why = "because", list = {1, 2}})
    assert.equal("jsonrpc error -32050: nope", tostring(e))

    local r, err = a:try_call("fail", {code = 7, message = "seven", data = "str"})
    assert.is_nil(r)
    assert_error_value(err, 7, "seven", "str")

    r, err = a:try_call("fail", {code = 8, message = "no data"})
    assert.is_nil(r)
    assert_error_value(err, 8, "no data")
    assert.is_nil(err.data)

    r, err = a:try_call("soft_fail")
    assert_error_value(err, -32042, "soft", {n = 1})

    r, err = a:try_call("subtract", {5, 3})
    assert.equal(2, r)
    assert.is_nil(err)
  end)

  it("receives the standard errors as values", function()
    local _, err = a:try_call("no_such_method", {1})
    assert_error_value(err, -32601)
    _, err = a:try_call("subtract", {1, 2, 3})
    assert_error_value(err, -32602)
    _, err = a:try_call("boom")
    assert_error_value(err, -32603, "Internal error")
    assert.is_nil(err.data)
    local okay, e = pcall(a.call, a, "no_such_method")
    assert.is_false(okay)
    assert_error_value(e, -32601)
  end)

  it("callback form: returns at once, calls back with result or error", function()
    local got = {}
    a:call("subtract", {42, 23}, function(result, err) got[#got + 1] = {result = result, err = err} end)
    a:call("fail", {-32001, "cb", {1}}, function(result, err) got[#got + 1] = {result = result, err = err} end)
    a:call("nothing", nil, function(result, err) got[#got + 1] = {result = result, err = err} end)
    assert.equal(3, #got)
    assert.equal(19, got[1].result)
    assert.is_nil(got[1].err)
    assert.is_nil(got[2].result)
    assert_error_value(got[2].err, -32001, "cb", {1})
    assert.equal(null, got[3].result)
    assert.is_nil(got[3].err)
  end)

  it("batches: results in call order, notifications take no slot, errors as values", function()
    local batch = a:batch()
    batch:call("subtract", {42, 23})
    batch:notify("note", {"n"})
    batch:call("no_such_method")
    batch:call("fail", {-32077, "in batch", {deep = {1}}})
    batch:call("nothing")
    batch:notify("note")
    batch:call("subtract", {minuend = 10, subtrahend = 3})
    local results = batch:send()
    assert.equal(5, #results)
    assert.equal(19, results[1])
    assert_error_value(results[2], -32601)
    assert_error_value(results[3], -32077, "in batch", {deep = {1}})
    assert.equal(null, results[4])
    assert.equal(7, results[5])
    assert.equal(2, log.notes)
    -- one text went out: an array of 7, two of them without ids
    assert.equal(1, #log.a)
    local sent = decode_ok(log.a[1])
    assert.equal(7, #sent)
    local without_id = 0
    for _, m in ipairs(sent) do if m.id == nil then without_id = without_id + 1 end end
    assert.equal(2, without_id)
  end)

  it("a batch of notifications only: nothing comes back", function()
    local batch = a:batch()
    batch:notify("note", {1})
    batch:notify("note", {2})
    local results = batch:send()
    assert.equal(2, log.notes)
    assert.equal(0, #log.b)
    assert.is_table(results)
    assert.equal(0, #results)
  end)

  it("answers -32601 to requests when the endpoint has no server", function()
    local _, err = b:try_call("anything", {1})
    assert_error_value(err, -32601)
    b:notify("anything")
  end)

  it("uses the server given in the options, and the endpoint's context", function()
    local srv = jsonrpc.server()
    local seen
    srv:method("whoami", function(ctx) seen = ctx; return ctx.name end, {context = true})
    local ctx = {name = "bee"}
    local x, y
    x = jsonrpc.endpoint{send = function(t) y:receive(t) end}
    y = jsonrpc.endpoint{send = function(t) x:receive(t) end, server = srv, context = ctx}
    assert.equal(srv, y.server)
    assert.equal("bee", x:call("whoami"))
    assert.equal(ctx, seen)
  end)

  it("nests calls in both directions (re-entrant)", function()
    local depth = {}
    a:method("inner", function(x)
      depth[#depth + 1] = "a.inner"
      return a:call("leaf", {x}) * 10
    end)
    b:method("leaf", function(x)
      depth[#depth + 1] = "b.leaf"
      return x * 2
    end)
    b:method("outer", function(x)
      depth[#depth + 1] = "b.outer"
      return b:call("inner", {x}) + 1
    end)
    assert.equal(61, a:call("outer", {3}))
    assert.same({"b.outer", "a.inner", "b.leaf"}, depth)
    -- and a's handler calling b while b's call to a is in flight, with try_call
    a:method("ask_back", function() local r, err = a:try_call("no_such_method"); return err and err.code or r end)
    b:method("start", function() return b:call("ask_back") end)
    assert.equal(-32601, a:call("start"))
  end)
end)

describe("endpoint: out-of-order responses", function()
  it("resumes each waiting coroutine with its own result, delivered in reverse", function()
    local a, q = queued()
    local results, errs, cos = {}, {}, {}
    for i = 1, 3 do
      cos[i] = start(function() results[i], errs[i] = a:try_call("echo", {i}) end)
      assert.equal("suspended", coroutine.status(cos[i]))
    end
    assert.equal(3, #q)
    local ids = {}
    for i = 1, 3 do
      local r = decode_ok(q[i])
      assert.equal(i, r.params[1])
      for j = 1, i - 1 do assert.is_false(same(ids[j], r.id), "ids must differ") end
      ids[i] = r.id
    end
    for i = 3, 1, -1 do
      a:receive(response(ids[i], i * 100))
      assert.equal("dead", coroutine.status(cos[i]))
      assert.equal(i * 100, results[i])
      assert.is_nil(errs[i])
      for j = 1, i - 1 do assert.equal("suspended", coroutine.status(cos[j])) end
    end
  end)

  it("works between two endpoints whose answers are delivered in reverse", function()
    local a, qa = queued()
    local b, qb = queued()
    local log = {notes = 0}
    install(b, log)
    local results, cos = {}, {}
    cos[1] = start(function() results[1] = a:call("subtract", {10, 1}) end)
    cos[2] = start(function() results[2] = a:call("get_data") end)
    cos[3] = start(function()
      local okay, e = pcall_call(a, "fail", {-32011, "third"})
      results[3] = okay and "no error" or e
    end)
    assert.equal(3, #qa)
    for i = 1, 3 do b:receive(qa[i]) end
    assert.equal(3, #qb)
    for i = 3, 1, -1 do a:receive(qb[i]) end
    for i = 1, 3 do assert.equal("dead", coroutine.status(cos[i])) end
    assert.equal(9, results[1])
    assert_same({"hello", 5}, results[2])
    assert_error_value(results[3], -32011, "third")
  end)

  it("answers a batch in request order, whatever order its waiting members finish in", function()
    local b, q = queued()
    b:method("now", function(x) return x end)
    b:method("later", function(x) return b:call("ask", {x}) end)   -- waits for our answer
    b:receive(encode{
      {jsonrpc = "2.0", method = "later", params = {1}, id = 1},
      {jsonrpc = "2.0", method = "now", params = {2}, id = 2},
      {jsonrpc = "2.0", method = "later", params = {3}, id = 3},
      {jsonrpc = "2.0", method = "later", params = {0}},          -- a waiting notification
      {jsonrpc = "2.0", method = "now", params = {4}, id = 4},
      7,                                                           -- an invalid member
      {jsonrpc = "2.0", method = "later", params = {5}, id = 5},
    })
    assert.equal(4, #q)   -- the calls of the four waiting members, nothing answered yet
    local asks = {}
    for i = 1, 4 do asks[i] = decode_ok(q[i]) end
    for i = 4, 1, -1 do b:receive(response(asks[i].id, asks[i].params[1] * 10)) end
    assert.equal(5, #q)
    local answer = decode_ok(q[5])
    local ids, results = {}, {}
    for i, r in ipairs(answer) do ids[i], results[i] = r.id, r.result end
    assert_same({1, 2, 3, 4, null, 5}, ids)
    assert_same({10, 2, 30, 4, nil, 50}, results)
    assert.equal(-32600, answer[5].error.code)
  end)

  it("matches a batch response array that comes back shuffled", function()
    local a, q = queued()
    local results
    local co = start(function()
      local batch = a:batch()
      batch:call("m1", {1})
      batch:notify("n", {0})
      batch:call("m2", {2})
      batch:call("m3", {3})
      batch:call("m4", {4})
      results = batch:send()
    end)
    assert.equal("suspended", coroutine.status(co))
    assert.equal(1, #q)
    local sent = decode_ok(q[1])
    assert.equal(5, #sent)
    local by_method = {}
    for _, m in ipairs(sent) do by_method[m.method] = m end
    assert.is_nil(by_method.n.id)
    local replies = {
      {jsonrpc = "2.0", result = "three", id = by_method.m3.id},
      {jsonrpc = "2.0", error = {code = -32099, message = "four", data = {4}}, id = by_method.m4.id},
      {jsonrpc = "2.0", result = "one", id = by_method.m1.id},
      {jsonrpc = "2.0", result = null, id = by_method.m2.id},
    }
    a:receive(encode(replies))
    assert.equal("dead", coroutine.status(co))
    assert.equal(4, #results)
    assert.equal("one", results[1])
    assert.equal(null, results[2])
    assert.equal("three", results[3])
    assert_error_value(results[4], -32099, "four", {4})
  end)

  it("matches separate calls answered together in one array", function()
    local a, q = queued()
    local r1, r2
    local c1 = start(function() r1 = a:call("x") end)
    local c2 = start(function() r2 = a:call("y") end)
    local id1, id2 = decode_ok(q[1]).id, decode_ok(q[2]).id
    a:receive(encode{{jsonrpc = "2.0", result = "for y", id = id2}, {jsonrpc = "2.0", result = "for x", id = id1}})
    assert.equal("dead", coroutine.status(c1))
    assert.equal("dead", coroutine.status(c2))
    assert.equal("for x", r1)
    assert.equal("for y", r2)
  end)

  it("calls callbacks as their responses arrive, not before", function()
    local a, q = queued()
    local got = {}
    a:call("first", nil, function(result, err) got[#got + 1] = {"first", result, err} end)
    a:call("second", {1}, function(result, err) got[#got + 1] = {"second", result, err} end)
    assert.equal(0, #got)
    assert.equal(2, #q)
    local id1, id2 = decode_ok(q[1]).id, decode_ok(q[2]).id
    a:receive(encode{jsonrpc = "2.0", error = {code = -32000, message = "late"}, id = id2})
    assert.equal(1, #got)
    assert.equal("second", got[1][1])
    assert.is_nil(got[1][2])
    assert_error_value(got[1][3], -32000, "late")
    a:receive(response(id1, {1, 2}))
    assert.equal(2, #got)
    assert.equal("first", got[2][1])
    assert_same({1, 2}, got[2][2])
    assert.is_nil(got[2][3])
  end)
end)

describe("endpoint: stray responses", function()
  local a, q, strays
  before_each(function()
    strays = {}
    a, q = queued{on_stray = function(reason, detail) strays[#strays + 1] = {reason = reason, detail = detail} end}
  end)

  local function receive(text)
    local okay, err = pcall(a.receive, a, text)
    assert(okay, "receive raised: " .. tostring(err))
  end

  it("reports a response with an unknown id, and sends nothing back", function()
    receive(response(999999, 1))
    assert.equal(1, #strays)
    assert.is_not_nil(strays[1].reason)
    receive(response("nobody", 1))
    receive('{"jsonrpc":"2.0","error":{"code":-32000,"message":"x"},"id":424242}')
    assert.equal(3, #strays)
    assert.equal(0, #q)
  end)

  it("reports a duplicate response; the call completes once", function()
    local calls = 0
    a:call("m", nil, function() calls = calls + 1 end)
    local id = decode_ok(q[1]).id
    receive(response(id, "first"))
    assert.equal(1, calls)
    assert.equal(0, #strays)
    receive(response(id, "again"))
    assert.equal(1, calls)
    assert.equal(1, #strays)
  end)

  it("reports malformed responses (neither result nor error; both)", function()
    receive('{"jsonrpc":"2.0","id":31337}')
    assert.is_true(#strays >= 1)
    local n = #strays
    receive('{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"m"},"id":31338}')
    assert.is_true(#strays > n)
    assert.equal(0, #q)
  end)

  it("fails a waiting call with -32004 on a malformed response to it", function()
    local results = {}
    local c1 = start(function() results[1] = {a:try_call("m1")} end)
    local c2 = start(function() results[2] = {pcall_call(a, "m2")} end)
    local id1, id2 = decode_ok(q[1]).id, decode_ok(q[2]).id
    receive(encode{jsonrpc = "2.0", id = id1})
    assert.equal("dead", coroutine.status(c1))
    assert.is_nil(results[1][1])
    assert_error_value(results[1][2], -32004)
    assert.is_true(#strays >= 1)
    local n = #strays
    receive(encode{jsonrpc = "2.0", result = 1, error = {code = 1, message = "m"}, id = id2})
    assert.equal("dead", coroutine.status(c2))
    assert.is_false(results[2][1])
    assert_error_value(results[2][2], -32004)
    assert.is_true(#strays > n)
    -- the calls are over: a proper response now is stray
    n = #strays
    receive(response(id1, "too late"))
    assert.equal(n + 1, #strays)
  end)

  it("fails a waiting callback with -32004 on a malformed response", function()
    local got
    a:call("m", nil, function(result, err) got = {result = result, err = err} end)
    receive(encode{jsonrpc = "2.0", error = "not an object", id = decode_ok(q[1]).id})
    assert.is_table(got)
    assert.is_nil(got.result)
    assert_error_value(got.err, -32004)
    assert.is_true(#strays >= 1)
  end)

  it("does not raise on stray input without an on_stray hook", function()
    local x = jsonrpc.endpoint{send = function() end}
    assert.has_no.errors(function()
      x:receive(response(5, 1))
      x:receive('{"jsonrpc":"2.0","id":5}')
      x:receive('{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"m"},"id":6}')
      x:receive("not json at all")
      x:receive("[]")
    end)
  end)
end)

describe("endpoint: no event loop", function()
  it("fails a call that cannot be answered outside a coroutine with -32005", function()
    local strays = {}
    local a, q = queued{on_stray = function(reason) strays[#strays + 1] = reason end}
    local okay, e = pcall(a.call, a, "never", {1})
    assert.is_false(okay)
    assert_error_value(e, -32005)
    local r, err = a:try_call("never")
    assert.is_nil(r)
    assert_error_value(err, -32005)
    assert.equal(2, #q)
    -- the call is no longer waiting: its late response is stray
    a:receive(response(decode_ok(q[1]).id, "late"))
    assert.equal(1, #strays)
  end)
end)
