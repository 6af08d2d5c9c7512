--- Server-side conformance: JSON-RPC 2.0 as seen through server:handle(text).
-- Black-box: only the API documented in the README is assumed. Responses
-- are decoded and compared as values; batches are compared without regard
-- to order.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"

local null = jsonrpc.null
local decode, encode = jsonrpc.decode, jsonrpc.encode
local has_integers = math.type ~= nil

----------------------------------------------------------------------------
-- Matching decoded values against expectations with a few wildcards.

local Matcher = {}
Matcher.__index = Matcher
local function matcher(desc, test) return setmetatable({desc = desc, test = test}, Matcher) end

local ANY = matcher("<any value>", function(v) return v ~= nil end)
local MAYBE = matcher("<anything or absent>", function() return true end)
local NONE = matcher("<absent>", function(v) return v == nil end)
local STRING = matcher("<any string>", function(v) return type(v) == "string" end)
local function FIND(needle)
  return matcher(("<string containing %q>"):format(needle),
    function(v) return type(v) == "string" and v:find(needle, 1, true) ~= nil end)
end

local function show(v, depth)
  depth = depth or 0
  if getmetatable(v) == Matcher then return v.desc end
  if v == null then return "null" end
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  if depth > 8 then return "{...}" end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y)
    if type(x) == type(y) and (type(x) == "number" or type(x) == "string") then return x < y end
    return type(x) < type(y)
  end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = (type(k) == "string" and k or "[" .. tostring(k) .. "]") .. "=" .. show(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function match(expected, actual)
  if getmetatable(expected) == Matcher then return expected.test(actual) end
  local te, ta = type(expected), type(actual)
  if te == "number" and ta == "number" then return expected + 0.0 == actual + 0.0 end
  if te ~= ta then return false end
  if te ~= "table" then return expected == actual end
  for k, v in pairs(expected) do
    if not match(v, actual[k]) then return false end
  end
  for k in pairs(actual) do
    if expected[k] == nil then return false end
  end
  return true
end

local function assert_match(expected, actual, what)
  if not match(expected, actual) then
    error(("%s\nexpected: %s\n     got: %s"):format(what or "mismatch", show(expected), show(actual)), 2)
  end
end

--- Matches an array of expectations against an array, in any order.
local function match_unordered(expected, actual)
  if type(actual) ~= "table" or #actual ~= #expected then return false end
  for k in pairs(actual) do
    if type(k) ~= "number" then return false end
  end
  local used = {}
  local function try(i)
    if i > #expected then return true end
    for j = 1, #actual do
      if not used[j] and match(expected[i], actual[j]) then
        used[j] = true
        if try(i + 1) then return true end
        used[j] = false
      end
    end
    return false
  end
  return try(1)
end

----------------------------------------------------------------------------
-- Expected responses.

local function ok(result, id)
  return {jsonrpc = "2.0", result = result, id = id}
end

--- An error response; message defaults to any string, data to anything.
local function fail(code, id, message, data)
  return {jsonrpc = "2.0", error = {code = code, message = message or STRING, data = data or MAYBE}, id = id}
end

----------------------------------------------------------------------------
-- Running the server.

--- handle(text, ctx): must not raise; returns the decoded response (or nil) and its text.
local function run(server, text, ctx)
  local okay, out = pcall(server.handle, server, text, ctx)
  if not okay then error("handle raised: " .. tostring(out), 2) end
  if out == nil then return nil end
  if type(out) ~= "string" then error("handle returned a " .. type(out), 2) end
  local v, err = decode(out)
  if err ~= nil then error(("handle returned text that is not JSON (%s): %q"):format(err, out), 2) end
  return v, out
end

local function is_array_text(s) return s:match("^%s*%[") ~= nil end
local function is_object_text(s) return s:match("^%s*{") ~= nil end

--- One response object (never an array) matching `expected`.
local function expect_single(server, text, expected, ctx)
  local v, out = run(server, text, ctx)
  if v == nil then error("no response to " .. text, 2) end
  if not is_object_text(out) then error("expected one response object, got " .. out, 2) end
  if not match(expected, v) then
    error(("response to %s\nexpected: %s\n     got: %s"):format(text, show(expected), out), 2)
  end
  return v, out
end

--- One array of responses matching `expected` in any order.
local function expect_batch(server, text, expected, ctx)
  local v, out = run(server, text, ctx)
  if v == nil then error("no response to " .. text, 2) end
  if not is_array_text(out) then error("expected an array of responses, got " .. out, 2) end
  if not match_unordered(expected, v) then
    local want = {}
    for i, e in ipairs(expected) do want[i] = show(e) end
    error(("response to %s\nexpected (any order): [%s]\n     got: %s"):format(text, table.concat(want, ", "), out), 2)
  end
  return v, out
end

local function expect_nothing(server, text, ctx)
  local v, out = run(server, text, ctx)
  if v ~= nil then error(("expected no response to %s, got %s"):format(text, out), 2) end
end

--- The servers of the specification's examples, with a log of side effects.
local function spec_server(opts)
  local log = {update = 0, notify_hello = 0, sum = 0, subtract = 0, get_data = 0}
  local s = jsonrpc.server(opts)
  s:method("subtract", function(minuend, subtrahend)
    log.subtract = log.subtract + 1
    return minuend - subtrahend
  end, {params = {"minuend", "subtrahend"}})
  s:method("sum", function(...)
    log.sum = log.sum + 1
    local total = 0
    for i = 1, select("#", ...) do total = total + select(i, ...) end
    return total
  end)
  s:method("get_data", function()
    log.get_data = log.get_data + 1
    return {"hello", 5}
  end)
  s:method("update", function() log.update = log.update + 1 end)
  s:method("notify_hello", function() log.notify_hello = log.notify_hello + 1 end)
  return s, log
end

local function total_calls(log)
  local n = 0
  for _, c in pairs(log) do n = n + c end
  return n
end

local function req(method, params, id)
  return encode{jsonrpc = "2.0", method = method, params = params, id = id}
end

----------------------------------------------------------------------------

describe("conformance: the specification's examples", function()
  local s, log
  before_each(function() s, log = spec_server() end)

  it("rpc call with positional parameters", function()
    expect_single(s, '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}', ok(19, 1))
    expect_single(s, '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}', ok(-19, 2))
  end)

  it("rpc call with named parameters", function()
    expect_single(s, '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
      ok(19, 3))
    expect_single(s, '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
      ok(19, 4))
  end)

  it("a notification gets no response, but runs", function()
    expect_nothing(s, '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}')
    assert.equal(1, log.update)
    expect_nothing(s, '{"jsonrpc": "2.0", "method": "foobar"}')
  end)

  it("rpc call of non-existent method", function()
    expect_single(s, '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}', fail(-32601, "1"))
  end)

  it("rpc call with invalid JSON", function()
    expect_single(s, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', fail(-32700, null))
  end)

  it("rpc call with invalid Request object", function()
    expect_single(s, '{"jsonrpc": "2.0", "method": 1, "params": "bar"}', fail(-32600, null))
  end)

  it("rpc call Batch, invalid JSON: one parse error, and no member runs", function()
    expect_single(s, '[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
      .. '  {"jsonrpc": "2.0", "method"\n]', fail(-32700, null))
    assert.equal(0, total_calls(log))
  end)

  it("rpc call with an empty Array: one error object, not an array", function()
    expect_single(s, "[]", fail(-32600, null))
  end)

  it("rpc call with an invalid Batch (but not empty)", function()
    expect_batch(s, "[1]", {fail(-32600, null)})
  end)

  it("rpc call with invalid Batch", function()
    expect_batch(s, "[1,2,3]", {fail(-32600, null), fail(-32600, null), fail(-32600, null)})
  end)

  it("rpc call Batch (mixed)", function()
    expect_batch(s, [=[[
      {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
      {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
      {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
      {"foo": "boo"},
      {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
      {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]]=], {
      ok(7, "1"),
      ok(19, "2"),
      fail(-32600, null),
      fail(-32601, "5"),
      ok({"hello", 5}, "9"),
    })
    assert.equal(1, log.notify_hello)
    assert.equal(1, log.sum)
    assert.equal(1, log.subtract)
    assert.equal(1, log.get_data)
  end)

  it("rpc call Batch (all notifications): nothing at all, not []", function()
    expect_nothing(s, [=[[
      {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
      {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]]=])
    assert.equal(1, log.notify_hello)
  end)
end)

describe("conformance: parse errors", function()
  local s, log
  before_each(function() s, log = spec_server() end)

  it("answers unparsable text with one -32700, id null", function()
    for _, text in ipairs{"", "   ", "{", "[", '{"jsonrpc":"2.0","method":"sum","id":1', "nul", "{1:2}",
                          '{"jsonrpc":"2.0","method":"sum","id":1}}', "[1,]", '"abc',
                          '{"jsonrpc":"2.0","method":"sum","id":1} x',
                          '{"jsonrpc":"2.0","method":"\255","id":1}', -- invalid UTF-8 is not JSON
                          '[{"jsonrpc":"2.0","method":"sum","params":[1],"id":1},'} do
      expect_single(s, text, fail(-32700, null))
    end
    assert.equal(0, total_calls(log))
  end)

  it("checks a batch whole: an invalid JSON tail runs no member", function()
    local text = "[" .. req("update", {1}) .. "," .. req("sum", {1, 2}, 1) .. ","
      .. req("notify_hello", {}) .. ',{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2'
    expect_single(s, text, fail(-32700, null))
    assert.equal(0, total_calls(log))
    expect_single(s, "[" .. req("update", {1}) .. "] trailing", fail(-32700, null))
    assert.equal(0, total_calls(log))
  end)
end)

describe("conformance: invalid requests", function()
  local s, log
  before_each(function() s, log = spec_server() end)

  it('rejects a missing "jsonrpc", "1.0", and 2.0 as a number, echoing a valid id', function()
    expect_single(s, '{"method":"sum","params":[1],"id":1}', fail(-32600, 1))
    expect_single(s, '{"jsonrpc":"1.0","method":"sum","params":[1],"id":2}', fail(-32600, 2))
    expect_single(s, '{"jsonrpc":2.0,"method":"sum","params":[1],"id":3}', fail(-32600, 3))
    expect_single(s, '{"jsonrpc":2,"method":"sum","params":[1],"id":"x"}', fail(-32600, "x"))
    expect_single(s, '{"jsonrpc":"2.00","method":"sum","params":[1],"id":4}', fail(-32600, 4))
    expect_single(s, '{"jsonrpc":null,"method":"sum","params":[1],"id":5}', fail(-32600, 5))
    assert.equal(0, log.sum)
  end)

  it("rejects a method that is missing or not a string", function()
    expect_single(s, '{"jsonrpc":"2.0","id":1}', fail(-32600, 1))
    expect_single(s, '{"jsonrpc":"2.0","params":[1],"id":2}', fail(-32600, 2))
    expect_single(s, '{"jsonrpc":"2.0","method":1,"id":3}', fail(-32600, 3))
    expect_single(s, '{"jsonrpc":"2.0","method":null,"id":4}', fail(-32600, 4))
    expect_single(s, '{"jsonrpc":"2.0","method":["sum"],"id":5}', fail(-32600, 5))
    expect_single(s, '{"jsonrpc":"2.0","method":{"name":"sum"},"id":6}', fail(-32600, 6))
    expect_single(s, '{"jsonrpc":"2.0","method":true,"id":7}', fail(-32600, 7))
  end)

  it("rejects scalar params with -32600", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":"bar","id":1}', fail(-32600, 1))
    expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":1,"id":2}', fail(-32600, 2))
    expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":true,"id":3}', fail(-32600, 3))
    expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":false,"id":4}', fail(-32600, 4))
    expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":1.5,"id":5}', fail(-32600, 5))
    assert.equal(0, log.sum)
  end)

  it('answers "params": null with -32602', function()
    local v = expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":null,"id":1}',
      fail(-32602, 1, STRING, FIND("params must be an array or an object")))
    assert.is_string(v.error.data)
    expect_single(s, '{"jsonrpc":"2.0","method":"subtract","params":null,"id":"n"}', fail(-32602, "n"))
    assert.equal(0, log.sum + log.subtract)
  end)

  it("rejects ids that are objects, arrays or booleans, with id null", function()
    for _, id in ipairs{'{}', '{"a":1}', '[]', '[1]', 'true', 'false'} do
      expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":[1],"id":' .. id .. '}', fail(-32600, null))
    end
    assert.equal(0, log.sum)
  end)

  it("rejects requests that are not objects", function()
    for _, text in ipairs{"1", '"sum"', "null", "true", "false", "1.5"} do
      expect_single(s, text, fail(-32600, null))
    end
    expect_batch(s, '[null, "x", [], {}]', {fail(-32600, null), fail(-32600, null), fail(-32600, null),
                                             fail(-32600, null)})
    expect_batch(s, "[[]]", {fail(-32600, null)})
  end)

  it("answers invalid members of a batch each with -32600", function()
    expect_batch(s, "[" .. table.concat({
      '{"jsonrpc":"1.0","method":"sum","params":[1],"id":1}',
      '{"jsonrpc":"2.0","method":2,"id":2}',
      '{"jsonrpc":"2.0","method":"sum","params":"x","id":3}',
      '{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":{}}',
      '{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":4}',
    }, ",") .. "]", {fail(-32600, 1), fail(-32600, 2), fail(-32600, 3), fail(-32600, null), ok(3, 4)})
    assert.equal(1, log.sum)
  end)
end)

describe("conformance: unknown methods", function()
  local s = spec_server()

  it("answers -32601 and echoes the id", function()
    expect_single(s, req("nope", {1}, 7), fail(-32601, 7))
    expect_single(s, req("Subtract", {1, 2}, "x"), fail(-32601, "x"))
    expect_single(s, '{"jsonrpc":"2.0","method":"","id":null}', fail(-32601, null))
  end)

  it("says nothing for an unknown notification", function()
    expect_nothing(s, req("nope", {1}))
    expect_nothing(s, '{"jsonrpc":"2.0","method":"nope"}')
  end)
end)

describe("conformance: ids", function()
  local s = jsonrpc.server()
  s:method("ping", function() return "pong" end)

  local function echo(id_text)
    return expect_single(s, '{"jsonrpc":"2.0","method":"ping","id":' .. id_text .. '}', ok("pong", ANY))
  end

  it("echoes string ids exactly", function()
    for _, id in ipairs{"abc", "", "1", "héllo wörld", "😀🙂", "日本語", "a\"b\\c\n\t/", "\0nul", string.rep("x", 5000)} do
      local v = echo(encode(id))
      assert.equal(id, v.id)
    end
    assert.equal("é😀", echo([["\u00e9\ud83d\ude00"]]).id)
  end)

  it("echoes integer ids exactly", function()
    for _, id in ipairs{"0", "-1", "1", "42", "-2147483648", "4294967296", "1700000000123456"} do
      local v, out = echo(id)
      assert.equal(tonumber(id), v.id)
      assert(out:find('"id":' .. id:gsub("%-", "%%-") .. "[,}]"), ("id %s not echoed as such: %s"):format(id, out))
      if has_integers then assert.equal("integer", math.type(v.id)) end
    end
  end)

  it("echoes full 64-bit integer ids digit for digit", function()
    for _, id in ipairs{"9223372036854775807", "-9223372036854775808", "9007199254740993", "-9007199254740993"} do
      local _, out = echo(id)
      assert(out:find('"id":' .. id:gsub("%-", "%%-") .. "[,}]"), ("id %s not echoed exactly: %s"):format(id, out))
    end
  end)

  it("echoes float ids by value", function()
    for _, id in ipairs{"1.5", "1e3", "-0.25", "1.7976931348623157e308", "5e-324", "0.1"} do
      local v = echo(id)
      assert.equal(tonumber(id), v.id)
    end
  end)

  it('answers "id": null, with id null', function()
    local v, out = echo("null")
    assert.equal(null, v.id)
    assert(out:find('"id":null', 1, true))
  end)

  it("echoes ids in error responses and batches", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"nope","id":-9.5}', fail(-32601, -9.5))
    expect_batch(s, '[{"jsonrpc":"2.0","method":"ping","id":"a"},{"jsonrpc":"2.0","method":"ping","id":1},'
      .. '{"jsonrpc":"2.0","method":"ping","id":null},{"jsonrpc":"2.0","method":"ping","id":2.5},'
      .. '{"jsonrpc":"2.0","method":"nope","id":"b"}]',
      {ok("pong", "a"), ok("pong", 1), ok("pong", null), ok("pong", 2.5), fail(-32601, "b")})
  end)
end)

describe("conformance: params mapping", function()
  local s, got
  local function record(...) got = {n = select("#", ...), ...} end
  before_each(function()
    got = nil
    s = jsonrpc.server()
    s:method("declared", function(...) record(...); return "ok" end, {params = {"a", "b"}})
    s:method("free", function(...) record(...); return "ok" end)
  end)

  it("passes declared names from positional and named params alike", function()
    expect_single(s, req("declared", {42, 23}, 1), ok("ok", 1))
    assert_match({n = 2, 42, 23}, got)
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{"b":23,"a":42},"id":2}', ok("ok", 2))
    assert.equal(42, got[1])
    assert.equal(23, got[2])
  end)

  it("passes missing declared params as nil", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{"b":23},"id":1}', ok("ok", 1))
    assert.is_nil(got[1])
    assert.equal(23, got[2])
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":[42],"id":2}', ok("ok", 2))
    assert.equal(42, got[1])
    assert.is_nil(got[2])
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{},"id":3}', ok("ok", 3))
    assert.is_nil(got[1])
    assert.is_nil(got[2])
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","id":4}', ok("ok", 4))
    assert.is_nil(got[1])
    assert.is_nil(got[2])
  end)

  it("maps named params whatever the order of the members", function()
    -- params before method, and method before params, give the same call
    local texts = {
      '{"params":{"b":23,"a":42},"jsonrpc":"2.0","method":"declared","id":1}',
      '{"jsonrpc":"2.0","method":"declared","params":{"b":23,"a":42},"id":1}',
      '{"id":1,"params":{"a":42,"b":23},"method":"declared","jsonrpc":"2.0"}',
    }
    for _, text in ipairs(texts) do
      got = nil
      expect_single(s, text, ok("ok", 1))
      assert_match({n = 2, 42, 23}, got)
    end
    for _, text in ipairs{
      '{"params":{"a":1,"zz":2},"jsonrpc":"2.0","method":"declared","id":1}',
      '{"jsonrpc":"2.0","method":"declared","params":{"a":1,"zz":2,"yy":3},"id":1}',
    } do
      got = nil
      expect_single(s, text, fail(-32602, 1, STRING, FIND("unknown param 'zz'")))
      assert.is_nil(got)
    end
  end)

  it("refuses repeated params members (-32600 naming it) and runs nothing", function()
    got = nil
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{"a":1},"params":[5,6],"id":1}',
      fail(-32600, 1, "Invalid Request", 'duplicate member "params"'))
    expect_single(s, '{"jsonrpc":"2.0","params":[5,6],"method":"declared","params":{"b":7},"id":2}',
      fail(-32600, 2, "Invalid Request", 'duplicate member "params"'))
    assert.is_nil(got)
  end)

  it("keeps the last of repeated names inside params, as decode does", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{"a":1,"a":2,"b":3},"id":1}', ok("ok", 1))
    assert.equal(2, got[1])
    assert.equal(3, got[2])
  end)

  it("passes JSON null in declared params as jsonrpc.null", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{"a":null,"b":1},"id":1}', ok("ok", 1))
    assert.equal(null, got[1])
    expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":[null,2],"id":2}', ok("ok", 2))
    assert.equal(null, got[1])
    assert.equal(2, got[2])
  end)

  it("answers too many positional params with -32602 giving the counts", function()
    got = nil
    local v = expect_single(s, req("declared", {1, 2, 3}, 9), fail(-32602, 9, STRING, ANY))
    assert.is_nil(got)
    local data = v.error.data
    assert.is_string(data)
    assert(data:find("%f[%d]2%f[%D]") and data:find("%f[%d]3%f[%D]"),
      "data should give the counts 2 and 3: " .. data)
  end)

  it("answers an unknown named param with -32602 naming it", function()
    got = nil
    local v = expect_single(s, '{"jsonrpc":"2.0","method":"declared","params":{"a":1,"zeta_extra":2},"id":9}',
      fail(-32602, 9, STRING, ANY))
    assert.is_nil(got)
    assert.is_string(v.error.data)
    assert(v.error.data:find("zeta_extra", 1, true), "data should name the param: " .. v.error.data)
  end)

  it("answers -32602 to notifications with nothing", function()
    got = nil
    expect_nothing(s, req("declared", {1, 2, 3}))
    expect_nothing(s, '{"jsonrpc":"2.0","method":"declared","params":{"c":1}}')
    expect_nothing(s, '{"jsonrpc":"2.0","method":"declared","params":null}')
    assert.is_nil(got)
  end)

  it("passes undeclared positional params as the arguments", function()
    expect_single(s, req("free", {42, 23}, 1), ok("ok", 1))
    assert_match({n = 2, 42, 23}, got)
    expect_single(s, '{"jsonrpc":"2.0","method":"free","params":[1,"two",null,[3],{"four":4},false],"id":2}',
      ok("ok", 2))
    assert_match({n = 6, 1, "two", null, {3}, {four = 4}, false}, got)
    expect_single(s, '{"jsonrpc":"2.0","method":"free","params":[],"id":3}', ok("ok", 3))
    assert.equal(0, got.n)
  end)

  it("passes undeclared named params as one table", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"free","params":{"a":42,"b":23},"id":1}', ok("ok", 1))
    assert.equal(1, got.n)
    assert_match({a = 42, b = 23}, got[1])
    expect_single(s, '{"jsonrpc":"2.0","method":"free","params":{},"id":2}', ok("ok", 2))
    assert.equal(1, got.n)
    assert.is_table(got[1])
    assert.is_nil(next(got[1]))
  end)

  it("calls fn() with no arguments when there are no params", function()
    expect_single(s, '{"jsonrpc":"2.0","method":"free","id":1}', ok("ok", 1))
    assert.equal(0, got.n)
  end)

  it("passes many positional params", function()
    local params = {}
    for i = 1, 300 do params[i] = i end
    expect_single(s, req("free", params, 1), ok("ok", 1))
    assert.equal(300, got.n)
    assert.equal(300, got[300])
  end)

  it("passes the context first with context = true", function()
    local seen
    s:method("ctx", function(ctx, a, b) seen = {ctx = ctx, a = a, b = b}; return a + b end,
      {context = true, params = {"a", "b"}})
    s:method("ctx_free", function(ctx, ...) seen = {ctx = ctx, n = select("#", ...)}; return ctx.user end,
      {context = true})
    local ctx = {user = "bob"}
    expect_single(s, req("ctx", {1, 2}, 1), ok(3, 1), ctx)
    assert.equal(ctx, seen.ctx)
    expect_single(s, '{"jsonrpc":"2.0","method":"ctx","params":{"b":2,"a":1},"id":2}', ok(3, 2), ctx)
    assert.equal(ctx, seen.ctx)
    expect_single(s, '{"jsonrpc":"2.0","method":"ctx_free","id":3}', ok("bob", 3), ctx)
    assert.equal(ctx, seen.ctx)
    assert.equal(0, seen.n)
  end)
end)

describe("conformance: method names", function()
  it("accepts any UTF-8 name", function()
    local s = jsonrpc.server()
    for _, name in ipairs{"🙂", "textDocument/didOpen", "eth_getBalance", "a.b.c", "with space", "rpcfoo", "rpc"} do
      assert.equal(s, s:method(name, function() return name end))
    end
    for _, name in ipairs{"🙂", "textDocument/didOpen", "eth_getBalance", "a.b.c", "with space", "rpcfoo", "rpc"} do
      expect_single(s, req(name, nil, 1), ok(name, 1))
    end
    expect_single(s, '{"jsonrpc":"2.0","method":"\\ud83d\\ude42","id":2}', ok("🙂", 2))
  end)

  it("refuses to register names starting with rpc.", function()
    local s = jsonrpc.server()
    assert.has_error(function() s:method("rpc.x", function() end) end)
    assert.has_error(function() s:method("rpc.", function() end) end)
    expect_single(s, req("rpc.x", nil, 1), fail(-32601, 1))
  end)

  it("answers rpc.foo with -32601", function()
    local s = spec_server()
    expect_single(s, req("rpc.foo", {1}, 1), fail(-32601, 1))
    expect_nothing(s, req("rpc.foo", {1}))
  end)

  it("replaces a method registered again", function()
    local s = jsonrpc.server()
    s:method("m", function() return 1 end)
    s:method("m", function() return 2 end)
    expect_single(s, req("m", nil, 1), ok(2, 1))
  end)

  it("chains method registrations", function()
    local s = jsonrpc.server():method("a", function() return "a" end):method("b", function() return "b" end)
    expect_batch(s, "[" .. req("a", nil, 1) .. "," .. req("b", nil, 2) .. "]", {ok("a", 1), ok("b", 2)})
  end)

  it("refuses unknown server options", function()
    assert.has_error(function() jsonrpc.server{expose_error = true} end)
    assert.has_error(function() jsonrpc.server{nope = 1} end)
    assert.has_no.errors(function()
      jsonrpc.server{expose_errors = false, max_batch = 10, max_depth = 10, max_message_size = 1000,
                     on_request = function() end, on_response = function() end, on_error = function() end}
    end)
  end)
end)

describe("conformance: error values", function()
  it("jsonrpc.error makes a value with code, message, data and a __tostring", function()
    local e = jsonrpc.error(-32000, "boom", {x = 1})
    assert.equal(-32000, e.code)
    assert.equal("boom", e.message)
    assert.same({x = 1}, e.data)
    assert.equal("jsonrpc error -32000: boom", tostring(e))
    assert.is_true(jsonrpc.is_error(e))
    assert.is_nil(jsonrpc.error(1, "m").data)
  end)

  it("is_error says no to everything else", function()
    for _, v in ipairs{{}, {code = 1, message = "x"}, "x", 1, true, null} do
      assert.is_false(jsonrpc.is_error(v))
    end
    assert.is_false(jsonrpc.is_error(nil))
  end)

  it("jsonrpc.error raises on a bad code or message", function()
    assert.has_error(function() jsonrpc.error(1.5, "x") end)
    assert.has_error(function() jsonrpc.error({}, "x") end)
    assert.has_error(function() jsonrpc.error(nil, "x") end)
    assert.has_error(function() jsonrpc.error(1) end)
    assert.has_error(function() jsonrpc.error(1, {}) end)
  end)

  it("has the documented codes", function()
    assert_match({PARSE_ERROR = -32700, INVALID_REQUEST = -32600, METHOD_NOT_FOUND = -32601,
                  INVALID_PARAMS = -32602, INTERNAL_ERROR = -32603, SERVER_ERROR = -32000, TIMEOUT = -32001,
                  CONNECTION_CLOSED = -32002, CONNECTION_FAILED = -32003, INVALID_RESPONSE = -32004,
                  NO_EVENT_LOOP = -32005}, jsonrpc.codes)
  end)
end)

describe("conformance: handler errors", function()
  local s, errors
  before_each(function()
    errors = {}
    s = jsonrpc.server{on_error = function(message, traceback, r)
      errors[#errors + 1] = {message = message, traceback = traceback, req = r}
    end}
  end)

  it("sends jsonrpc.error raised by a handler, with data of every JSON type", function()
    local cases = {
      {data = {why = "because", list = {1, 2, 3}}},
      {data = {1, "two", false}},
      {data = "a string"},
      {data = 42},
      {data = 2.5},
      {data = true},
      {data = false},
      {data = null, expect = null},
      {data = nil, expect = NONE},
    }
    for i, case in ipairs(cases) do
      s:method("fail" .. i, function() error(jsonrpc.error(-32000 - i, "failure " .. i, case.data)) end)
      local data = case.expect or case.data
      expect_single(s, req("fail" .. i, nil, i),
        {jsonrpc = "2.0", error = {code = -32000 - i, message = "failure " .. i, data = data}, id = i})
    end
    s:method("app", function() error(jsonrpc.error(4001, "app-defined")) end)
    expect_single(s, req("app", nil, "x"), {jsonrpc = "2.0", error = {code = 4001, message = "app-defined"}, id = "x"})
    assert.equal(0, #errors)
  end)

  it("sends the error of return nil, jsonrpc.error(...)", function()
    s:method("soft", function() return nil, jsonrpc.error(-32010, "soft failure", {n = 1}) end)
    expect_single(s, req("soft", nil, 1),
      {jsonrpc = "2.0", error = {code = -32010, message = "soft failure", data = {n = 1}}, id = 1})
    s:method("soft_nodata", function() return nil, jsonrpc.error(7, "seven") end)
    expect_single(s, req("soft_nodata", nil, 2), {jsonrpc = "2.0", error = {code = 7, message = "seven"}, id = 2})
    assert.equal(0, #errors)
  end)

  it("turns error('boom') into -32603 Internal error without data, and calls on_error", function()
    s:method("boom", function() error("boom") end)
    expect_single(s, req("boom", {1}, 1), {jsonrpc = "2.0", error = {code = -32603, message = "Internal error"}, id = 1})
    assert.equal(1, #errors)
    assert.is_string(errors[1].message)
    assert(errors[1].message:find("boom", 1, true), errors[1].message)
    assert.is_string(errors[1].traceback)
    assert.is_table(errors[1].req)
    assert.equal("boom", errors[1].req.method)
  end)

  it("exposes message and traceback as data with expose_errors = true", function()
    local es = jsonrpc.server{expose_errors = true}
    es:method("boom", function() error("boom") end)
    local v = expect_single(es, req("boom", nil, 1),
      {jsonrpc = "2.0", error = {code = -32603, message = "Internal error",
                                 data = {message = FIND("boom"), traceback = STRING}}, id = 1})
    assert.is_string(v.error.data.traceback)
  end)

  it("does not leak the message without expose_errors", function()
    local es = jsonrpc.server{expose_errors = false}
    es:method("secret", function() error("password=hunter2") end)
    local _, out = expect_single(es, req("secret", nil, 1),
      {jsonrpc = "2.0", error = {code = -32603, message = "Internal error"}, id = 1})
    assert.is_nil(out:find("hunter2", 1, true))
  end)

  it("turns errors with non-string values into -32603", function()
    s:method("tbl", function() error({foo = 1}) end)
    s:method("lookalike", function() error({code = 123, message = "looks like one"}) end)
    s:method("num", function() error(42) end)
    s:method("nilerr", function() error(nil) end)
    s:method("runtime", function() local t = nil; return t.field end)
    for i, m in ipairs{"tbl", "lookalike", "num", "nilerr", "runtime"} do
      expect_single(s, req(m, nil, i), {jsonrpc = "2.0", error = {code = -32603, message = "Internal error"}, id = i})
    end
    assert.equal(5, #errors)
  end)

  it("sends result null for a handler that returns nothing or nil", function()
    s:method("nothing", function() end)
    s:method("explicit_nil", function() return nil end)
    s:method("null", function() return null end)
    local v = expect_single(s, req("nothing", nil, 1), ok(null, 1))
    assert.equal(null, v.result)
    expect_single(s, req("explicit_nil", nil, 2), ok(null, 2))
    expect_single(s, req("null", nil, 3), ok(null, 3))
  end)

  it("sends only the first return value", function()
    s:method("two", function() return 1, 2 end)
    expect_single(s, req("two", nil, 1), ok(1, 1))
  end)

  it("keeps the JSON kind of results", function()
    s:method("empty_array", function() return jsonrpc.array{} end)
    s:method("empty_object", function() return jsonrpc.object{} end)
    local _, out = expect_single(s, req("empty_array", nil, 1), ok(ANY, 1))
    assert(out:find('"result":[]', 1, true), out)
    _, out = expect_single(s, req("empty_object", nil, 2), ok(ANY, 2))
    assert(out:find('"result":{}', 1, true), out)
    s:method("exact", function() return {big = has_integers and math.maxinteger or 2^53, f = 0.1, s = "é"} end)
    _, out = expect_single(s, req("exact", nil, 3), ok(ANY, 3))
    if has_integers then assert(out:find("9223372036854775807", 1, true), out) end
  end)

  it("answers a result that cannot be encoded with -32603, and calls on_error", function()
    s:method("sparse", function() return {1, nil, 3} end)
    s:method("func", function() return {f = print} end)
    expect_single(s, req("sparse", nil, 1), fail(-32603, 1))
    assert.equal(1, #errors)
    expect_single(s, req("func", nil, 2), fail(-32603, 2))
    assert.equal(2, #errors)
  end)

  it("says nothing when a notification's handler fails, but calls on_error", function()
    s:method("boom", function() error("boom") end)
    expect_nothing(s, req("boom", nil))
    assert.equal(1, #errors)
  end)

  it("keeps going after a handler error", function()
    s:method("boom", function() error("boom") end)
    s:method("fine", function() return "fine" end)
    expect_batch(s, "[" .. req("boom", nil, 1) .. "," .. req("fine", nil, 2) .. "," .. req("boom", nil, 3) .. "]",
      {fail(-32603, 1, "Internal error", NONE), ok("fine", 2), fail(-32603, 3, "Internal error", NONE)})
    expect_single(s, req("fine", nil, 4), ok("fine", 4))
  end)
end)

describe("conformance: hooks", function()
  it("on_request sees method, params, id, notification and context", function()
    local seen = {}
    local s = spec_server{on_request = function(r) seen[#seen + 1] = r end}
    local ctx = {token = "t"}
    expect_single(s, '{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}', ok(19, 1), ctx)
    expect_single(s, '{"jsonrpc":"2.0","method":"subtract","params":{"minuend":3,"subtrahend":1},"id":"s"}',
      ok(2, "s"), ctx)
    expect_nothing(s, '{"jsonrpc":"2.0","method":"update","params":[1]}', ctx)
    expect_single(s, '{"jsonrpc":"2.0","method":"get_data","id":null}', ok({"hello", 5}, null), ctx)
    assert.equal(4, #seen)
    assert.equal("subtract", seen[1].method)
    assert_match({42, 23}, seen[1].params)
    assert.equal(1, seen[1].id)
    assert.is_false(seen[1].notification)
    assert.equal(ctx, seen[1].context)
    assert_match({minuend = 3, subtrahend = 1}, seen[2].params)
    assert.equal("s", seen[2].id)
    assert.equal("update", seen[3].method)
    assert.is_true(seen[3].notification)
    assert.is_nil(seen[3].id)
    assert.equal(ctx, seen[3].context)
    assert.is_nil(seen[4].params)
    assert.equal(null, seen[4].id)
    assert.is_false(seen[4].notification)
  end)

  it("on_request raising jsonrpc.error rejects the request; the handler does not run", function()
    local s, log = spec_server{on_request = function(r)
      if r.method == "subtract" then error(jsonrpc.error(-32050, "not now", {method = r.method})) end
    end}
    expect_single(s, req("subtract", {5, 1}, 1),
      {jsonrpc = "2.0", error = {code = -32050, message = "not now", data = {method = "subtract"}}, id = 1})
    expect_nothing(s, req("subtract", {5, 1}))
    assert.equal(0, log.subtract)
    expect_single(s, req("sum", {5, 1}, 2), ok(6, 2))
  end)

  it("on_request raising a plain error gives -32603 and on_error", function()
    local errors, ran = 0, 0
    local s = jsonrpc.server{on_request = function() error("hook broke") end,
                             on_error = function() errors = errors + 1 end}
    s:method("m", function() ran = ran + 1 end)
    expect_single(s, req("m", nil, 1), fail(-32603, 1, "Internal error", NONE))
    assert.equal(1, errors)
    assert.equal(0, ran)
  end)

  it("on_response sees each response's result or error, not notifications", function()
    local seen = {}
    local s = spec_server{on_response = function(r, result, err)
      seen[#seen + 1] = {method = r.method, id = r.id, result = result, err = err}
    end}
    s:method("fail", function() error(jsonrpc.error(-32099, "no", "d")) end)
    expect_single(s, req("subtract", {42, 23}, 1), ok(19, 1))
    expect_nothing(s, req("update", {1}))
    expect_single(s, req("fail", nil, 2), fail(-32099, 2))
    expect_single(s, req("nope", nil, 3), fail(-32601, 3))
    assert.equal(3, #seen)
    assert.equal("subtract", seen[1].method)
    assert.equal(19, seen[1].result)
    assert.is_nil(seen[1].err)
    assert.equal("fail", seen[2].method)
    assert.is_true(jsonrpc.is_error(seen[2].err))
    assert.equal(-32099, seen[2].err.code)
    assert.equal("d", seen[2].err.data)
    assert.equal(-32601, seen[3].err.code)
  end)

  it("installs hooks with server:on_request / on_response / on_error too", function()
    local calls = {}
    local s = jsonrpc.server()
    s:method("ok", function() return 1 end)
    s:method("boom", function() error("boom") end)
    s:on_request(function(r) calls[#calls + 1] = "request " .. r.method end)
    s:on_response(function(r) calls[#calls + 1] = "response " .. r.method end)
    s:on_error(function(message) calls[#calls + 1] = "error " .. tostring(message):match("boom") end)
    expect_single(s, req("ok", nil, 1), ok(1, 1))
    expect_single(s, req("boom", nil, 2), fail(-32603, 2))
    assert.same({"request ok", "response ok", "request boom", "error boom", "response boom"}, calls)
  end)

  it("supports an auth check on the context (the README example)", function()
    local ran = 0
    local s = jsonrpc.server{on_request = function(r)
      if not r.context or r.context.token ~= "secret" then
        error(jsonrpc.error(4001, "Unauthorized"))
      end
    end}
    s:method("whoami", function(ctx) ran = ran + 1; return ctx.user end, {context = true})
    local text = req("whoami", nil, 1)
    expect_single(s, text, ok("ann", 1), {token = "secret", user = "ann"})
    expect_single(s, text, {jsonrpc = "2.0", error = {code = 4001, message = "Unauthorized"}, id = 1},
      {token = "guess", user = "eve"})
    expect_single(s, text, {jsonrpc = "2.0", error = {code = 4001, message = "Unauthorized"}, id = 1})
    assert.equal(1, ran)
  end)
end)

describe("conformance: errors that cannot be sent as they are", function()
  it("answers a bare Internal error when an error's message or data is not valid UTF-8", function()
    local reported = {}
    local s = jsonrpc.server{expose_errors = true,
      on_error = function(message) reported[#reported + 1] = message end}
    s:method("bad_message", function() error("caf\233") end)            -- Latin-1, not UTF-8
    s:method("bad_value", function() error(jsonrpc.error(1, "x", "\255")) end)
    s:method("bad_result", function() return {"\255"} end)
    for i, m in ipairs{"bad_message", "bad_value", "bad_result"} do
      local text = s:handle(req(m, nil, i))
      local r = assert(decode(text))
      assert.equal(-32603, r.error.code)
      assert.equal(i, r.id)
    end
    local all = table.concat(reported, "\n")
    assert.matches("cannot encode the error", all, 1, true)
    assert.matches("cannot encode the result", all, 1, true)
  end)
end)

describe("conformance: limits", function()
  it("rejects a batch longer than max_batch whole, running no member", function()
    local s, log = spec_server{max_batch = 2}
    local three = "[" .. req("update", {1}) .. "," .. req("sum", {1}, 1) .. "," .. req("sum", {2}, 2) .. "]"
    local v = expect_single(s, three, fail(-32600, null))
    assert(v.error.message:find("max_batch", 1, true), "message should mention max_batch: " .. v.error.message)
    assert.equal(0, total_calls(log))
    expect_batch(s, "[" .. req("sum", {1}, 1) .. "," .. req("sum", {2}, 2) .. "]", {ok(1, 1), ok(2, 2)})
  end)

  it("defaults max_batch to 1000", function()
    local s, log = spec_server()
    local items = {}
    for i = 1, 1000 do items[i] = req("update", {i}) end
    expect_nothing(s, "[" .. table.concat(items, ",") .. "]")
    assert.equal(1000, log.update)
    items[1001] = req("update", {1001})
    expect_single(s, "[" .. table.concat(items, ",") .. "]", fail(-32600, null))
    assert.equal(1000, log.update)
  end)

  it("rejects a text longer than max_message_size with -32600, id null", function()
    local text = req("sum", {1, 2, 3}, 1)
    local s, log = spec_server{max_message_size = #text}
    expect_single(s, text, ok(6, 1))
    local v = expect_single(s, text .. " ", fail(-32600, null))
    -- "one -32600 (id null) saying so": in the message or the data
    local says = v.error.message .. " " .. tostring(v.error.data)
    assert(says:find("max_message_size", 1, true), "the error should mention max_message_size: " .. says)
    local small = spec_server{max_message_size = #text - 1}
    expect_single(small, text, fail(-32600, null))
    assert.equal(1, log.sum)
  end)

  it("passes at most 4000 positional params as arguments; more answer -32602", function()
    local s, log = spec_server()
    local params = {}
    for i = 1, 4000 do params[i] = 1 end
    expect_single(s, req("sum", params, 1), ok(4000, 1))
    params[4001] = 1
    local v = expect_single(s, req("sum", params, 2), fail(-32602, 2, STRING, ANY))
    assert.matches("4001", tostring(v.error.data))
    assert.equal(1, log.sum)
  end)

  it("answers nesting deeper than max_depth with -32700", function()
    local s, log = spec_server{max_depth = 4}
    expect_single(s, '{"jsonrpc":"2.0","method":"update","params":[[1]],"id":1}', ok(null, 1)) -- depth 3
    assert.equal(1, log.update)
    expect_single(s, '{"jsonrpc":"2.0","method":"sum","params":[[[[[[[[1]]]]]]]],"id":1}', fail(-32700, null))
    local deep = spec_server()
    expect_single(deep, '{"jsonrpc":"2.0","method":"sum","params":' .. string.rep("[", 1100) .. string.rep("]", 1100)
      .. ',"id":1}', fail(-32700, null))
    assert.equal(0, log.sum)
  end)
end)

describe("conformance: response texts", function()
  it("are JSON, one object per request, with notifications absent from batches", function()
    local s = spec_server()
    local texts = {
      req("sum", {1, 2}, 1),
      "[" .. req("sum", {1}, 1) .. "," .. req("update", {1}) .. "," .. req("notify_hello", {7}) .. "]",
      "[" .. req("update", {1}) .. "," .. req("nope", nil) .. "," .. req("get_data", nil, "g") .. "]",
      "garbage",
    }
    local v = expect_batch(s, texts[2], {ok(1, 1)})
    assert.equal(1, #v)
    v = expect_batch(s, texts[3], {ok({"hello", 5}, "g")})
    assert.equal(1, #v)
    for _, text in ipairs(texts) do
      local _, out = run(s, text) -- run() checks that the text decodes
      assert.is_string(out)
    end
  end)

  it("handle() never raises on bad input", function()
    local s = jsonrpc.server{max_depth = 64}
    s:method("echo", function(...) return {n = select("#", ...), args = {...}} end)
    s:method("first", function(x) return x end)
    s:method("named", function(a, b) return {a = a, b = b} end, {params = {"a", "b"}})
    s:method("boom", function() error("boom") end)
    s:method("structured", function(x) error(jsonrpc.error(-32000, "s", x)) end)

    local seeds = {
      req("echo", {1, 2}, 1), req("first", {"x"}, "id"), req("named", {a = 1, b = 2}, 3),
      req("boom", nil, 4), req("structured", {{1, 2}}, 5), req("first", {1}),
      "[" .. req("echo", {1}, 1) .. "," .. req("named", {1, 2}, 2) .. "," .. req("first", {null}) .. "]",
      '{"jsonrpc":"2.0","method":"first","params":[9223372036854775807],"id":-9223372036854775808}',
      '{"jsonrpc":"2.0","method":"first","params":["\\ud83d\\ude00\\u0000"],"id":1.5e300}',
    }
    local rand = math.random
    math.randomseed(20240611)
    local field_values = {
      jsonrpc = {'"2.0"', '"1.0"', "2.0", "null", "[]", false},
      method = {'"echo"', '"first"', '"named"', '"boom"', '"structured"', '"nope"', '"rpc.x"', "1", "null", "{}", false},
      id = {"1", '"a"', "null", "1.5", "{}", "[]", "true", "-0", "1e400", false},
    }
    local function random_request()
      local parts = {}
      for _, key in ipairs{"jsonrpc", "method", "id"} do
        local choices = field_values[key]
        local val = choices[rand(#choices)]
        if val then parts[#parts + 1] = '"' .. key .. '":' .. val end
      end
      local r = rand(5)
      if r <= 3 then parts[#parts + 1] = '"params":' .. util.random_document(rand) end
      if rand(6) == 1 then parts[#parts + 1] = util.json_string(rand, util.random_string(rand, 6)) .. ":"
        .. util.random_document(rand) end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    local function mutate(text)
      for _ = 1, rand(1, 4) do
        local r, n = rand(6), #text
        local i = rand(1, math.max(1, n))
        if r == 1 then text = text:sub(1, i - 1) .. text:sub(i + 1)
        elseif r == 2 then text = text:sub(1, i - 1) .. string.char(rand(0, 255)) .. text:sub(i)
        elseif r == 3 then text = text:sub(1, i - 1) .. string.char(rand(0, 255)) .. text:sub(i + 1)
        elseif r == 4 then text = text:sub(1, i)
        elseif r == 5 then
          local j = rand(i, math.max(i, n))
          text = text:sub(1, j) .. text:sub(i, j) .. text:sub(j + 1)
        else text = text:sub(1, i - 1) .. ("[{]}\",:"):sub(rand(7), 0 + rand(7)) .. text:sub(i) end
      end
      return text
    end

    local count = util.count(2000)
    for n = 1, count do
      local text
      local r = rand(6)
      if r == 1 then text = util.random_document(rand)
      elseif r == 2 then text = random_request()
      elseif r == 3 then
        local items = {}
        for i = 1, rand(0, 6) do items[i] = rand(3) == 1 and util.random_document(rand) or random_request() end
        text = "[" .. table.concat(items, ",") .. "]"
      elseif r == 4 then text = mutate(random_request())
      else text = mutate(seeds[rand(#seeds)]) end
      local okay, out = pcall(s.handle, s, text)
      assert(okay, ("case %d: handle raised %s on %q"):format(n, tostring(out), text))
      if out ~= nil then
        assert(type(out) == "string", ("case %d: handle returned a %s"):format(n, type(out)))
        local v, err = decode(out)
        assert(err == nil and v ~= nil, ("case %d: response is not JSON (%s): %q for %q"):format(n, tostring(err), out, text))
      end
    end
  end)
end)
