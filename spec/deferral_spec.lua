-- Deferred dispatch (core.deferral, csrc/rpc/deferral.h): the C dispatch
-- reads a text and hands its handlers back; the caller runs them (here
-- under xpcall, in coroutines when they yield) and C writes the answers.
-- What a deferral answers must be what server:handle answers.
local jsonrpc = require "jsonrpc"
local core = require "jsonrpc.core"

local unpack = table.unpack or unpack
local msgh = core.capture_failure

-- xpcall(fn, msgh, ...) on every Lua (5.1's xpcall takes no arguments)
local function pack(...) return { n = select("#", ...), ... } end

local function call(fn, ...)
  local args = pack(...)
  return xpcall(function() return fn(unpack(args, 1, args.n)) end, msgh)
end

-- A call that may yield: plain Lua 5.1 cannot yield across xpcall, so
-- there the handler runs bare (as the library's own 5.1 runner does).
local yieldable_call = call
if _VERSION == "Lua 5.1" and not rawget(_G, "jit") then
  yieldable_call = function(fn, ...) return true, fn(...) end
end

-- Answers text through d, running the members in `order` (a function
-- from the count to a list of member numbers; default in turn).
local function answer(d, text, ctx, order)
  local got = pack(d:begin(text, ctx))
  if got[1] == true then
    return d:settle(1, call(unpack(got, 3, got.n)))
  end
  local count, whole = got[1], got[2]
  local seq = {}
  for i = 1, count do seq[i] = i end
  for _, i in ipairs(order and order(count) or seq) do
    local a = d:settle(i, call(select(2, d:member(i))))
    if a ~= nil then
      assert.is_nil(whole, "the answer is returned once")
      whole = a
    end
  end
  return whole
end

local function calc_server(opts)
  local s = jsonrpc.server(opts)
  s:method("add", function(a, b) return a + b end)
  s:method("echo", function(...) return { n = select("#", ...), ... } end)
  s:method("fail", function() return nil, jsonrpc.error(-32000, "refused", { why = 1 }) end)
  s:method("boom", function() error("exploded") end)
  s:method("raise_value", function() error(jsonrpc.error(-32001, "raised")) end)
  s:method("unencodable", function() return function() end end)
  s:method("sub", function(minuend, subtrahend) return minuend - subtrahend end,
           { params = { "minuend", "subtrahend" } })
  s:method("where", function(ctx, x) return { ctx = ctx and ctx.name or false, x = x } end,
           { context = true })
  s:method("nothing", function() end)
  s:method("count", function(...) return select("#", ...) end)
  return s
end

local R = function(id, method, params)
  return { jsonrpc = "2.0", id = id, method = method, params = params }
end
local N = function(method, params) return { jsonrpc = "2.0", method = method, params = params } end

-- texts of every kind: requests, errors, notifications, batches, limits
local TEXTS = {
  R(1, "add", { 1, 2 }), R("s", "echo", { 1, "two", { 3 }, jsonrpc.null }), R(2, "fail"),
  R(3, "boom"), R(4, "raise_value"), R(5, "unencodable"), R(6, "sub", { subtrahend = 2, minuend = 9 }),
  R(7, "sub", { minuend = 1, extra = 2 }), R(8, "where", { 5 }), R(9, "nope"), R(10, "nothing"),
  N("add", { 1, 2 }), N("boom"), N("nope"),
  { R(1, "add", { 1, 2 }), N("add", { 1, 1 }), 5, R(2, "nope"), R(3, "add", { 3, 2 }), R(4, "boom") },
  { N("add", { 1, 2 }), N("boom") }, { N("add", { 1, 2 }), "x" }, { R(1, "where", { 1 }), R(2, "where", { 2 }) },
  -- ids kept in the struct (up to 24 bytes of JSON) and in the table
  R(string.rep("i", 22), "add", { 1, 2 }), R(string.rep("j", 23), "add", { 1, 2 }), R(string.rep("k", 60), "boom"),
  { R(string.rep("l", 40), "add", { 1, 2 }), R(-12345678901234, "add", { 2, 2 }), R(string.rep("m", 40), "nothing") },
  R(1.5, "add", { 1, 2 }), R(1, "fail"), { R(1, "fail"), N("fail") },
  -- a lone request of more arguments than begin hands back itself
  R(11, "count", { 1, 2, 3, 4, 5 }), R(12, "count", { 1, 2, 3, 4, jsonrpc.null, jsonrpc.null }), R(13, "count", {}),
  R(14, "count", { 1, jsonrpc.null, jsonrpc.null }), { R(15, "count", { 1, 2, 3, 4, 5 }), R(16, "count", { 1, 2, 3, 4 }) },
  N("count", { 1, 2, 3, 4, 5, 6, 7 }),
}
local RAW = {
  "", "x", "[]", "[1", "[1]", "{", "5", "null", '{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]} 7',
  '[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},{"jsonrpc":"2.0","id":2,"method":"add"',
  '[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}] x',
  '[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},[1,',
  '{"params":[1,2],"id":1,"method":"add","jsonrpc":"2.0"}',
  '{"jsonrpc":"2.0","id":1,"method":"add","method":"add","params":[1,2]}',
  '{"jsonrpc":"2.0","id":{"x":1},"method":"add","params":[1,2]}',
  '[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},{"jsonrpc":"2.0","id":2,"method":"add","params":[2,2]},'
    .. '{"jsonrpc":"2.0","id":3,"method":"add","params":[3,2]}]',
}

local function all_texts()
  local texts = {}
  for _, t in ipairs(TEXTS) do texts[#texts + 1] = jsonrpc.encode(t) end
  for _, t in ipairs(RAW) do texts[#texts + 1] = t end
  return texts
end

-- an answer decoded, without the tracebacks of exposed errors (the two
-- paths' stacks differ)
local function comparable(text)
  if text == nil then return nil end
  local value = jsonrpc.decode(text)
  for _, response in ipairs(value[1] and value or { value }) do
    local data = type(response) == "table" and response.error and response.error.data
    if type(data) == "table" and data.traceback then data.traceback = "(a traceback)" end
  end
  return value
end

describe("a deferral", function()
  it("answers every kind of text as server:handle does", function()
    local ctx = { name = "ctx" }
    for _, opts in ipairs{ {}, { max_batch = 2 }, { max_values = 40 }, { expose_errors = true },
                           { on_request = function() end, on_response = function() end } } do
      local s = calc_server(opts)
      local d = core.deferral(s, function() end)
      for _, text in ipairs(all_texts()) do
        assert.same(comparable(s:handle(text, ctx)), comparable(answer(d, text, ctx)), text)
      end
    end
  end)

  it("runs no hook for a batch that turns out unsound, as server:handle does", function()
    local seen = {}
    local s = calc_server{ on_request = function(req) seen[#seen + 1] = req.method end }
    local d = core.deferral(s)
    local broken = '[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},{"jsonrpc":"2.0","id":2,"method":"add"'
    assert.equal(-32700, jsonrpc.decode(answer(d, broken)).error.code)
    assert.same({}, seen)
    answer(d, jsonrpc.encode{ R(1, "add", { 1, 2 }), R(2, "echo") })
    assert.same({ "add", "echo" }, seen)
  end)

  it("calls the hooks as server:handle does", function()
    local function recorder()
      local seen = {}
      local s = calc_server{
        on_request = function(req) seen[#seen + 1] = "request " .. tostring(req.method) end,
        on_response = function(req, result, err)
          local shown = type(result) == "table" and jsonrpc.encode(result) or tostring(result)
          seen[#seen + 1] = ("response %s %s %s"):format(tostring(req.method), shown,
                                                        tostring(err and err.code))
        end,
      }
      return s, seen
    end
    local plain, seen_plain = recorder()
    local deferred, seen_deferred = recorder()
    local d = core.deferral(deferred, function() end)
    plain:on_error(function() end)
    deferred:on_error(function() end)
    for _, text in ipairs(all_texts()) do
      plain:handle(text)
      answer(d, text)
    end
    -- the same calls; in a batch the deferral's come in another order (every
    -- on_request while the text is read, the handlers' on_response as they
    -- are settled), as on an endpoint whose handlers wait
    table.sort(seen_plain)
    table.sort(seen_deferred)
    assert.same(seen_plain, seen_deferred)
    assert.is_true(#seen_plain > 40)
  end)

  it("answers a batch in request order, whatever order its members are settled in", function()
    local s = calc_server()
    local d = core.deferral(s)
    local batch = {}
    for i = 1, 20 do batch[i] = (i % 3 == 0) and N("add", { i, 0 }) or R(i, "add", { i, 0 }) end
    batch[21] = R(21, "nope")
    local text = jsonrpc.encode(batch)
    local reversed = function(n) local t = {} for i = n, 1, -1 do t[#t + 1] = i end return t end
    local got = jsonrpc.decode(answer(d, text, nil, reversed))
    local want = jsonrpc.decode(s:handle(text))
    assert.same(want, got)
    assert.equal(1, got[1].id)
    assert.equal(21, got[#got].id)
  end)

  it("runs handlers that yield: each runs in the caller's coroutine, answered once all are done", function()
    local s = jsonrpc.server()
    local waiting = {}
    s:method("later", function(x) return coroutine.yield(x) end)
    local d = core.deferral(s)
    local count = d:begin(jsonrpc.encode{ R(1, "later", { 10 }), R(2, "later", { 20 }), N("later", { 0 }) })
    assert.equal(3, count)
    local answers = {}
    for i = 1, count do
      local co = coroutine.create(function(...) answers[#answers + 1] = d:settle(i, yieldable_call(...)) end)
      local ok, asked = coroutine.resume(co, select(2, d:member(i)))
      assert.is_true(ok)
      waiting[i] = { co = co, asked = asked }
    end
    assert.same({}, answers)
    for i = count, 1, -1 do assert(coroutine.resume(waiting[i].co, waiting[i].asked + 1)) end
    assert.equal(1, #answers)
    assert.same({ { jsonrpc = "2.0", id = 1, result = 11 }, { jsonrpc = "2.0", id = 2, result = 21 } },
                jsonrpc.decode(answers[1]))
  end)

  it("makes the context only when a handler or a hook takes it, once per text", function()
    local s = calc_server()
    local d = core.deferral(s)
    local made = 0
    local function make(arg) made = made + 1; return { name = arg } end
    local function answer_made(text)
      local got = pack(d:begin(text, nil, make, "lazy"))
      if got[1] == true then return d:settle(1, call(unpack(got, 3, got.n))) end
      local whole = got[2]
      for i = 1, got[1] do whole = d:settle(i, call(select(2, d:member(i)))) or whole end
      return whole
    end
    answer_made(jsonrpc.encode(R(1, "add", { 1, 2 })))
    assert.equal(0, made)
    local a = jsonrpc.decode(answer_made(jsonrpc.encode{ R(1, "where", { 1 }), R(2, "where", { 2 }) }))
    assert.equal(1, made)
    assert.equal("lazy", a[1].result.ctx)
    assert.equal("lazy", a[2].result.ctx)
    -- a given context wins: make is not called
    answer(d, jsonrpc.encode(R(1, "where", { 1 })), { name = "given" })
    assert.equal(1, made)
    -- hooks see the context
    local seen
    s:on_request(function(req) seen = req.context end)
    answer_made(jsonrpc.encode(R(1, "add", { 1, 2 })))
    assert.equal(2, made)
    assert.equal("lazy", seen.name)
  end)

  it("raises what making the context raised, and takes the next text", function()
    local d = core.deferral(calc_server())
    local ok, err = pcall(d.begin, d, jsonrpc.encode(R(1, "where", { 1 })), nil,
                          function() error({ mine = true }) end)
    assert.is_false(ok)
    assert.is_true(err.mine)
    assert.equal('{"jsonrpc":"2.0","result":3,"id":1}', answer(d, jsonrpc.encode(R(1, "add", { 1, 2 }))))
  end)

  it("reports handlers' plain errors to its log, with the traceback", function()
    local logged = {}
    local d = core.deferral(calc_server(), function(message, traceback)
      logged[#logged + 1] = { message = message, traceback = traceback }
    end)
    local a = jsonrpc.decode(answer(d, jsonrpc.encode(R(1, "boom"))))
    assert.equal(-32603, a.error.code)
    assert.equal(1, #logged)
    assert.matches("exploded", logged[1].message)
    assert.matches("traceback", logged[1].traceback)
    answer(d, jsonrpc.encode(N("boom")))   -- a notification's too
    assert.equal(2, #logged)
  end)

  it("hands back a lone request's handler with up to 4 arguments, and the rest as a member", function()
    local s = calc_server()
    local d = core.deferral(s)
    local got = pack(d:begin(jsonrpc.encode(R(1, "add", { 1, 2 }))))
    assert.equal(5, got.n)
    assert.is_true(got[1])
    assert.equal(2, got[2])
    assert.equal("function", type(got[3]))
    assert.same({ 1, 2 }, { got[4], got[5] })
    assert.equal('{"jsonrpc":"2.0","result":3,"id":1}', d:settle(1, call(unpack(got, 3, got.n))))
    local count, whole = d:begin(jsonrpc.encode(R(2, "count", { 1, 2, 3, 4, 5 })))
    assert.equal(1, count)
    assert.is_nil(whole)
    local m = pack(d:member(1))
    assert.equal(5, m[1])
    assert.equal(7, m.n)
    local a = jsonrpc.decode(d:settle(1, call(unpack(m, 2, m.n))))
    assert.equal(5, a.result)
    assert.equal(2, a.id)
  end)

  it("takes one text at a time, and refuses members and settles it does not have", function()
    local d = core.deferral(calc_server())
    local count = d:begin(jsonrpc.encode{ R(1, "add", { 1, 2 }), R(2, "add", { 2, 2 }) })
    assert.equal(2, count)
    assert.has_error(function() d:begin("[]") end,
                     "deferral:begin: the last text's members are not all settled")
    assert.has_error(function() d:member(3) end)
    assert.has_error(function() d:member(0) end)
    assert.is_nil(d:settle(1, call(select(2, d:member(1)))))
    assert.has_error(function() d:settle(1, true, 5) end)
    assert.is_string(d:settle(2, call(select(2, d:member(2)))))
    assert.has_error(function() d:member(1) end)   -- the text is done
    assert.has_error(function() core.deferral({}) end)
    assert.has_error(function() d.begin({}, "[]") end)
  end)

  it("holds nothing of a text once it is answered", function()
    local s = jsonrpc.server()
    local kept = setmetatable({}, { __mode = "k" })
    s:method("keep", function(t) kept[t] = true; return 1 end)
    local d = core.deferral(s)
    answer(d, jsonrpc.encode{ R(1, "keep", { {} }), N("keep", { {} }) }, { "a context" })
    answer(d, jsonrpc.encode(R(1, "keep", { {} })))
    collectgarbage(); collectgarbage()
    assert.is_nil(next(kept))
  end)
end)
