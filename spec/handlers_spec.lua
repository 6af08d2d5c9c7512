-- Handlers run in coroutines on endpoints: a handler may call the peer and
-- wait for its answer while other messages keep flowing, and its response
-- goes out when it finishes. Two endpoints are wired through queues that
-- the test pumps, so nothing is answered synchronously.
local jsonrpc = require "jsonrpc"

-- How the endpoints start handlers: nil for our pooled coroutines, or a
-- host's start function (the suite runs under both, see the end).
local host_start

local function wired_pair()
  local to_a, to_b = {}, {}
  local a = jsonrpc.endpoint{send = function(t) to_b[#to_b + 1] = t end, start = host_start}
  local b = jsonrpc.endpoint{send = function(t) to_a[#to_a + 1] = t end, start = host_start}
  -- delivers every queued text, in order, until both queues are empty
  local function pump()
    local steps = 0
    while #to_a > 0 or #to_b > 0 do
      steps = steps + 1
      assert(steps < 10000, "pump does not settle")
      if #to_b > 0 then b:receive(table.remove(to_b, 1)) end
      if #to_a > 0 then a:receive(table.remove(to_a, 1)) end
    end
  end
  return a, b, pump, to_a, to_b
end

-- runs fn in a coroutine (calls wait there), pumps, returns what fn returned
local function run(pump, fn)
  local out
  local co = coroutine.create(function() out = {fn()} end)
  assert(coroutine.resume(co))
  pump()
  assert.equal("dead", coroutine.status(co))
  return (table.unpack or unpack)(out)
end

local function suite(title, start)
describe(title, function()
  before_each(function() host_start = start end)
  after_each(function() host_start = nil end)

  it("lets a handler call back the peer while the peer's call is in flight", function()
    local a, b, pump = wired_pair()
    a:method("title_of", function(name) return name == "Ada" and "Countess" or "citizen" end)
    b:method("greet", function(name)
      return ("hello, %s %s"):format(b:call("title_of", {name}), name)
    end)
    assert.equal("hello, Countess Ada", run(pump, function() return a:call("greet", {"Ada"}) end))
  end)

  it("nests calls both ways, several levels deep", function()
    local a, b, pump = wired_pair()
    a:method("count", function(n) if n == 0 then return 0 end return 1 + a:call("count", {n - 1}) end)
    b:method("count", function(n) if n == 0 then return 0 end return 1 + b:call("count", {n - 1}) end)
    assert.equal(6, run(pump, function() return a:call("count", {6}) end))
  end)

  it("answers other requests while one handler waits", function()
    local a, b, pump = wired_pair()
    local gate = {}
    a:method("slow_answer", function() return "late" end)
    b:method("slow", function() return b:call("slow_answer") end)
    b:method("fast", function() return "quick" end)
    local order = {}
    -- (the index is taken after the call returns, not before it waits)
    local co1 = coroutine.wrap(function() local r = a:call("slow"); order[#order + 1] = r end)
    local co2 = coroutine.wrap(function() local r = a:call("fast"); order[#order + 1] = r end)
    co1(); co2()
    pump()
    assert.same({"quick", "late"}, order)
    assert.is_nil(gate[1])
  end)

  it("answers a batch once its waiting members finish, with every member", function()
    local a, b, pump, to_a = wired_pair()
    a:method("inner", function(x) return x * 10 end)
    b:method("outer", function(x) return b:call("inner", {x}) + 1 end)
    b:method("plain", function(x) return x end)
    local results = run(pump, function()
      local batch = a:batch()
      batch:call("outer", {1}):call("plain", {2}):notify("outer", {5}):call("outer", {3})
      return batch:send()
    end)
    assert.same({11, 2, 31}, results)
    assert.equal(0, #to_a)
  end)

  it("sends one array for a batch, not one response per member", function()
    local a, b, _, to_a, to_b = wired_pair()
    local sent = {}
    a.send = function(t) sent[#sent + 1] = t; to_b[#to_b + 1] = t end
    local b_sent = {}
    b.send = function(t) b_sent[#b_sent + 1] = t; to_a[#to_a + 1] = t end
    a:method("inner", function(x) return x end)
    b:method("outer", function(x) return b:call("inner", {x}) end)
    local co = coroutine.wrap(function()
      local batch = a:batch()
      batch:call("outer", {1}):call("outer", {2})
      return batch:send()
    end)
    co()
    b:receive(table.remove(to_b, 1))          -- the batch: both members wait
    assert.equal(2, #b_sent)                  -- b's two calls to a, no answer yet
    a:receive(table.remove(to_a, 1))
    a:receive(table.remove(to_a, 1))          -- a answers both calls
    b:receive(table.remove(to_b, 1))          -- first answer: member 1 finishes
    assert.equal(2, #b_sent)                  -- still waiting for member 2
    b:receive(table.remove(to_b, 1))          -- second answer: the batch is done
    assert.equal(3, #b_sent)
    local reply = jsonrpc.decode(b_sent[3])
    assert.equal(2, #reply)
  end)

  it("answers a plain error after waiting with -32603, reported with a traceback", function()
    local a, b, pump = wired_pair()
    local reported
    b.server:on_error(function(message, traceback) reported = {message, traceback} end)
    a:method("ping", function() return "pong" end)
    b:method("fails_late", function()
      b:call("ping")
      error("broke after waiting")
    end)
    local r, err = run(pump, function() return a:try_call("fails_late") end)
    assert.is_nil(r)
    assert.equal(-32603, err.code)
    assert.is_nil(err.data)
    assert.matches("broke after waiting", reported[1])
    assert.matches("traceback", reported[2])
  end)

  it("answers error values raised or returned after waiting", function()
    local a, b, pump = wired_pair()
    a:method("ping", function() return "pong" end)
    b:method("raises", function()
      b:call("ping")
      error(jsonrpc.error(-32000, "out of stock", {item = 7}))
    end)
    b:method("returns", function()
      b:call("ping")
      return nil, jsonrpc.error(-32001, "nope")
    end)
    local _, err = run(pump, function() return a:try_call("raises") end)
    assert.equal(-32000, err.code)
    assert.equal(7, err.data.item)
    _, err = run(pump, function() return a:try_call("returns") end)
    assert.equal(-32001, err.code)
  end)

  it("runs waiting notifications to the end and answers nothing", function()
    local a, b, pump, to_a = wired_pair()
    local done = false
    a:method("ping", function() return "pong" end)
    b:method("note", function() b:call("ping"); done = true end)
    a:notify("note")
    pump()
    assert.is_true(done)
    assert.equal(0, #to_a)
  end)

  it("keeps the exact id of a waiting request", function()
    local a, b, _, to_a, to_b = wired_pair()
    a:method("ping", function() return "pong" end)
    b:method("later", function() return b:call("ping") end)
    b:receive('{"jsonrpc":"2.0","method":"later","id":123456789012345678901234567890}')
    a:receive(table.remove(to_a, 1))          -- b's "ping" to a
    b:receive(table.remove(to_b, 1))          -- a's answer: "later" finishes
    local reply = table.remove(to_a, 1)
    assert.matches('"id":123456789012345678901234567890', reply, 1, true)
    assert.matches('"result":"pong"', reply, 1, true)
  end)
end)
end

suite("handlers in coroutines", nil)

-- A host that starts handlers itself (as OpenResty's scheduler would): each
-- in a coroutine of the host's, counted so that the spec knows it ran them.
local started = 0
suite("handlers started by the host", function(run, ...)
  started = started + 1
  local co = coroutine.create(run)
  local ok, err = coroutine.resume(co, ...)
  if not ok then error(err, 0) end
end)

describe("a host's start", function()
  it("ran the handlers of the suite above", function()
    assert.is_true(started > 10)
  end)
end)
