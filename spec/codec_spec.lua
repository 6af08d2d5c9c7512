local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"

local encode, decode = jsonrpc.encode, jsonrpc.decode
local has_integers = math.type ~= nil

local function decode_ok(text, opts)
  local v, err = decode(text, opts)
  assert(err == nil, "unexpected error: " .. tostring(err))
  return v
end

local function decode_err(text, pattern, opts)
  local v, err = decode(text, opts)
  assert.is_nil(v)
  assert.is_string(err)
  if pattern then assert.matches(pattern, err) end
  return err
end

local function encode_err(value, pattern, opts)
  local s, err = encode(value, opts)
  assert.is_nil(s)
  assert.is_string(err)
  if pattern then assert.matches(pattern, err) end
  return err
end

describe("codec: the issue's examples", function()
  it("decodes 1700000000123456 exactly and encodes it back", function()
    local v = decode_ok("1700000000123456")
    if has_integers then assert.equal("integer", math.type(v)) end
    assert.equal(1700000000123456, v)
    assert.equal("1700000000123456", encode(v))
  end)

  it("decodes 9007199254740993 exactly where integers exist", function()
    local v = decode_ok("9007199254740993")
    if has_integers then
      assert.equal("integer", math.type(v))
      assert.equal("9007199254740993", encode(v))
      assert.are_not.equal(9007199254740992, v)
    else
      assert.equal(9007199254740992, v) -- nearest double on 5.1/LuaJIT
    end
  end)

  it("encodes 0.1 as 0.1", function()
    assert.equal("0.1", encode(0.1))
  end)

  it("keeps [] and {} as they are", function()
    assert.equal("[]", encode(decode_ok("[]")))
    assert.equal("{}", encode(decode_ok("{}")))
  end)

  it("refuses {1, nil, 3}", function()
    encode_err({1, nil, 3}, "sparse array: key 2 is missing")
  end)
end)

describe("codec: numbers", function()
  it("decodes integers over the whole int64 range", function()
    if not has_integers then return end
    assert.equal(math.maxinteger, decode_ok("9223372036854775807"))
    assert.equal(math.mininteger, decode_ok("-9223372036854775808"))
    assert.equal("integer", math.type(decode_ok("-9223372036854775808")))
    assert.equal("integer", math.type(decode_ok("0")))
    assert.equal("integer", math.type(decode_ok("-0")))
  end)

  it("turns integers beyond int64 into floats", function()
    local v = decode_ok("9223372036854775808")
    if has_integers then assert.equal("float", math.type(v)) end
    assert.equal(2^63, v)
    assert.equal(-2^63 * 10, decode_ok("-92233720368547758080"))
    assert.equal(1e30, decode_ok("1000000000000000000000000000000"))
  end)

  it("decodes fractions and exponents as floats", function()
    for text, value in pairs{["1.0"] = 1.0, ["-2.5"] = -2.5, ["1e2"] = 100.0, ["1E+2"] = 100.0,
                             ["1e-2"] = 0.01, ["0.5e1"] = 5.0, ["123.456e-3"] = 0.123456} do
      local v = decode_ok(text)
      if has_integers then assert.equal("float", math.type(v)) end
      assert.equal(value, v)
    end
  end)

  it("rounds long and extreme numbers correctly", function()
    assert.equal(0.30000000000000004, decode_ok("0.30000000000000004"))
    assert.equal(2.2250738585072014e-308, decode_ok("2.2250738585072014e-308"))
    assert.equal(5e-324, decode_ok("4.9406564584124654e-324"))
    assert.equal(1.7976931348623157e308, decode_ok("1.7976931348623157e308"))
    assert.equal(math.huge, decode_ok("1e400"))
    assert.equal(0.0, decode_ok("1e-400"))
    assert.equal(0.1, decode_ok("0.1000000000000000000000000000000000001"))
    assert.equal(1e23, decode_ok("1e23"))
    assert.equal(8.98846567431158e307, decode_ok("8.98846567431158e307"))
  end)

  it("encodes integers exactly", function()
    assert.equal("0", encode(0))
    assert.equal("-1", encode(-1))
    if has_integers then
      assert.equal("9223372036854775807", encode(math.maxinteger))
      assert.equal("-9223372036854775808", encode(math.mininteger))
    end
  end)

  it("encodes floats in the shortest form that reads back the same", function()
    local cases = { [0.1] = "0.1", [0.30000000000000004] = "0.30000000000000004", [123.456] = "123.456",
                    [1e300] = "1e+300", [5e-324] = "5e-324", [1/3] = "0.3333333333333333",
                    [-2.5] = "-2.5", [1e-7] = "1e-07", [2^-1074] = "5e-324",
                    [1.7976931348623157e308] = "1.7976931348623157e+308" }
    for value, text in pairs(cases) do
      assert.equal(text, encode(value))
    end
    local rand = math.random
    math.randomseed(7)
    for _ = 1, util.count(20000) do
      local v = (rand() - 0.5) * 10 ^ rand(-300, 300)
      assert.equal(v, decode_ok(encode(v)))
    end
  end)

  it("marks integral floats on 5.3+ and writes them as integers on 5.1", function()
    if has_integers then
      assert.equal("2.0", encode(2.0))
      assert.equal("-0.0", encode(-0.0))
      assert.equal("float", math.type(decode_ok(encode(2.0))))
      assert.equal("9007199254740992.0", encode(2.0^53))
    else
      assert.equal("2", encode(2))
      assert.equal("9007199254740992", encode(2^53))
      assert.equal("-9007199254740992", encode(-2^53))
      assert.equal("1700000000123456", encode(1700000000123456))
      assert.equal(2^54, decode_ok(encode(2^54)))
    end
  end)

  it("refuses NaN and infinities", function()
    encode_err(0/0, "NaN")
    encode_err(math.huge, "infinity")
    encode_err({x = -math.huge}, 'infinity at %$%["x"%]')
  end)

  it("rejects what the JSON grammar forbids", function()
    decode_err("01", "leading zero%) at byte 1")
    decode_err("1.", "no digits after '.'")
    decode_err(".5", "expected a value")
    decode_err("1e", "exponent without digits")
    decode_err("-", "invalid number")
    decode_err("+1", "expected a value")
    decode_err("0x10", "unexpected data after the JSON value")
    decode_err("NaN", "expected a value")
    decode_err("Infinity", "expected a value")
    decode_err("-Infinity", "invalid number")
  end)
end)

describe("codec: strings", function()
  it("decodes every escape", function()
    assert.equal('"\\/\b\f\n\r\t', decode_ok([["\"\\\/\b\f\n\r\t"]]))
    assert.equal("\0", decode_ok([["\u0000"]]))
    assert.equal("é", decode_ok([["\u00e9"]]))
    assert.equal("€", decode_ok([["\u20AC"]]))
    assert.equal("😀", decode_ok([["\ud83d\ude00"]]))
    assert.equal("\244\143\191\191", decode_ok([["\uDBFF\uDFFF"]]))
    assert.equal("a😀b", decode_ok('"a😀b"'))
  end)

  it("rejects lone surrogates", function()
    decode_err([["\ud800"]], "lone high surrogate")
    decode_err([["\ud800x"]], "lone high surrogate")
    decode_err([["\ud800\u0041"]], "lone high surrogate")
    decode_err([["\udc00"]], "lone low surrogate")
    decode_err([["\ude00\ud83d"]], "lone low surrogate")
  end)

  it("rejects invalid UTF-8 with the byte offset", function()
    decode_err('"\255"', "invalid UTF%-8 in string at byte 2")
    decode_err('"ab\192\128"', "invalid UTF%-8 in string at byte 4")      -- overlong
    decode_err('"\237\160\128"', "invalid UTF%-8")                        -- encoded surrogate
    decode_err('"\244\144\128\128"', "invalid UTF%-8")                    -- above U+10FFFF
    decode_err('"\226\130"', "invalid UTF%-8")                            -- truncated
    decode_err('"\128"', "invalid UTF%-8")                                -- stray continuation
  end)

  it("rejects raw control characters and bad escapes", function()
    decode_err('"a\nb"', "control character in string %(must be escaped%) at byte 3")
    decode_err('"\0"', "control character")
    decode_err('"\31"', "control character")
    decode_err([["\x"]], "invalid escape, found 'x' at byte 3")
    decode_err([["\u12"]], "invalid \\u escape")
    decode_err([["\u12G4"]], "invalid \\u escape")
    decode_err('"abc', "unterminated string at byte 1")
    decode_err('"abc\\', "unterminated string")
  end)

  it("encodes what JSON requires escaped and leaves UTF-8 alone", function()
    assert.equal([["a\"b\\c/"]], encode('a"b\\c/'))
    assert.equal([["\b\f\n\r\t"]], encode("\b\f\n\r\t"))
    assert.equal([["\u0000\u0001\u001f"]], encode("\0\1\31"))
    assert.equal('"\127"', encode("\127"))
    assert.equal('"héllo wörld 😀 €"', encode("héllo wörld 😀 €"))
  end)

  it("refuses to encode invalid UTF-8", function()
    encode_err("\255", "not valid UTF%-8 %(byte 1%)")
    encode_err({k = "ab\192\128"}, 'not valid UTF%-8 %(byte 3%) at %$%["k"%]')
    encode_err({["\255"] = 1}, "not valid UTF%-8")
  end)

  it("round-trips random strings", function()
    math.randomseed(11)
    for _ = 1, util.count(3000) do
      local s = util.random_string(math.random, 40)
      assert.equal(s, decode_ok(encode(s)))
      assert.equal(s, decode_ok(util.json_string(math.random, s)))
    end
  end)

  it("handles long strings and embedded zeros", function()
    local s = string.rep("abc\0é", 100000)
    assert.equal(s, decode_ok(encode(s)))
  end)

  -- strings are escaped and unescaped 4096 bytes of input at a time, a
  -- word at a time: every kind of sequence across every boundary
  it("escapes and unescapes sequences that straddle the 4 KiB chunks and the words", function()
    local pieces = {
      { raw = "\n", json = "\\n" }, { raw = '"', json = '\\"' }, { raw = "\1", json = "\\u0001" },
      { raw = "é", json = "\\u00e9" }, { raw = "😀", json = "\\ud83d\\ude00" }, { raw = "✓", json = "✓" },
    }
    for offset = 4080, 4100 do
      for _, piece in ipairs(pieces) do
        local raw = string.rep("a", offset) .. piece.raw .. string.rep("b", 4100) .. piece.raw .. "c"
        local json = '"' .. string.rep("a", offset) .. piece.json .. string.rep("b", 4100) .. piece.json .. 'c"'
        assert.equal(raw, decode_ok(json), offset)
        assert.equal(raw, decode_ok(encode(raw)), offset)
      end
    end
    for n = 0, 20 do   -- short strings: the padded last word
      local raw = string.rep("x", n) .. "\t" .. string.rep("y", n % 9)
      assert.equal('"' .. string.rep("x", n) .. "\\t" .. string.rep("y", n % 9) .. '"', encode(raw))
      assert.equal(raw, decode_ok(encode(raw)))
    end
  end)
end)

describe("codec: null, arrays and objects", function()
  it("decodes null to jsonrpc.null, the same value as cjson.null", function()
    local cjson = require "cjson"
    assert.equal(cjson.null, jsonrpc.null)
    assert.equal(jsonrpc.null, decode_ok("null"))
    assert.equal(jsonrpc.null, decode_ok("[null]")[1])
    assert.equal("null", encode(jsonrpc.null))
    assert.equal("null", encode(cjson.null))
    assert.equal("[1,null,3]", encode({1, jsonrpc.null, 3}))
  end)

  it("marks kinds with jsonrpc.array and jsonrpc.object", function()
    assert.equal("[]", encode(jsonrpc.array{}))
    assert.equal("[]", encode(jsonrpc.array()))
    assert.equal("{}", encode(jsonrpc.object{}))
    assert.equal("{}", encode({}))
    assert.equal("[1,2]", encode(jsonrpc.array{1, 2}))
    local t = {}
    assert.equal(t, jsonrpc.array(t))
    assert.equal(t, jsonrpc.object(t)) -- re-marking is allowed
    assert.equal("{}", encode(t))
    assert.has_error(function() jsonrpc.array(setmetatable({}, {})) end)
    assert.has_error(function() jsonrpc.array(1) end)
  end)

  it("keeps the kind of decoded tables", function()
    local v = decode_ok('{"a":[],"b":{},"c":[[],{}]}')
    assert.equal("[]", encode(v.a))
    assert.equal("{}", encode(v.b))
    assert.equal("[[],{}]", encode(v.c))
    assert.equal("[1,2,3]", encode(decode_ok("[1,2,3]")))
  end)

  -- containers of up to 64 values are staged on the stack and get their
  -- table at its size; longer ones, or ones opened while 512 slots are
  -- staged around them, fill their table as they go: both ways must agree
  it("decodes arrays and objects of every size the same, staged or filled", function()
    for _, n in ipairs({ 0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000 }) do
      local items, members = {}, {}
      for i = 1, n do
        items[i] = tostring(i)
        members[i] = ('"k%d":[%d,{"i":%d}]'):format(i, i, i)
      end
      local a = decode_ok("[" .. table.concat(items, ",") .. "]")
      local o = decode_ok("{" .. table.concat(members, ",") .. "}")
      assert.equal(n, #a)
      local count = 0
      for k, v in pairs(o) do
        count = count + 1
        assert.equal(tonumber(k:sub(2)), v[1])
        assert.equal(v[1], v[2].i)
      end
      assert.equal(n, count)
      for i = 1, n do assert.equal(i, a[i]) end
      if n == 0 then   -- the kind marks, which tell empty ones apart
        assert.equal("[]", encode(a))
        assert.equal("{}", encode(o))
      end
    end
  end)

  it("lets the last of repeated keys win, whether staged or filled", function()
    local members = { '"x":1' }
    for i = 1, 100 do members[#members + 1] = ('"k%d":%d'):format(i, i) end
    members[#members + 1] = '"x":2'            -- after the table was made
    members[#members + 1] = '"k3":"three"'
    local o = decode_ok("{" .. table.concat(members, ",") .. "}")
    assert.equal(2, o.x)
    assert.equal("three", o.k3)
    assert.equal(1, decode_ok('{"a":0,"a":1}').a)
  end)

  it("decodes deep nests whose levels each hold many values", function()
    -- 200 levels of 20 members before the nested one: more than the 512
    -- stack slots staging may hold, on every Lua (5.1 allows 8000 a call)
    local depth, open, close = 200, {}, {}
    for level = 1, depth do
      local m = {}
      for i = 1, 20 do m[i] = ('"m%d":%d'):format(i, level) end
      open[level] = "{" .. table.concat(m, ",") .. ',"next":['
      close[level] = "]}"
    end
    local v = decode_ok(table.concat(open) .. "true" .. table.concat(close))
    for level = 1, depth do
      assert.equal(level, v.m1)
      assert.equal(level, v.m20)
      v = v.next[1]
    end
    assert.equal(true, v)
  end)

  it("classifies plain tables: 1..n is an array, string keys an object", function()
    assert.equal("[1,2,3]", encode({1, 2, 3}))
    assert.equal('{"a":1}', encode({a = 1}))
    local t = {}
    for i = 100, 1, -1 do t[i] = i end -- built backwards: hash part
    local sorted = {}
    for i = 1, 100 do sorted[i] = tostring(i) end
    assert.equal("[" .. table.concat(sorted, ",") .. "]", encode(t))
  end)

  it("refuses tables that are neither, naming the key", function()
    encode_err({1, 2, x = 3}, 'mixes array items with string key "x"')
    encode_err({[1] = 1, [3] = 3}, "key 2 is missing")
    encode_err({[0] = 1}, "table key 0 is neither a string nor an array index")
    encode_err({[-1] = 1}, "key %-1")
    encode_err({[1.5] = 1}, "key 1.5")
    encode_err({[true] = 1}, "key true")
    encode_err({[{}] = 1}, "key of type table")
    encode_err(jsonrpc.object{1}, "object key 1 is not a string")
    encode_err(jsonrpc.array{x = 1}, 'array key "x" is not a positive integer')
    encode_err({a = {b = {1, nil, 3}}}, 'key 2 is missing.* at %$%["a"%]%["b"%]')
  end)

  it("refuses values JSON cannot carry", function()
    encode_err(print, "type function")
    encode_err({f = coroutine.create(function() end)}, "type thread")
    encode_err(io.stdout, "type userdata")
  end)

  it("encodes nil at the top level as null", function()
    assert.equal("null", encode(nil))
  end)
end)

describe("codec: limits", function()
  it("limits nesting depth (default 1000) when decoding", function()
    assert.is_table(decode_ok(string.rep("[", 1000) .. string.rep("]", 1000)))
    decode_err(string.rep("[", 1001) .. string.rep("]", 1001), "nesting deeper than max_depth %(1000%) at byte 1001")
    decode_err(string.rep('{"a":', 3) .. "1}}}", "max_depth %(2%)", {max_depth = 2})
    assert.is_table(decode_ok("[[1]]", {max_depth = 2}))
  end)

  it("limits nesting depth when encoding", function()
    local deep = {}
    local t = deep
    for _ = 1, 1000 do t[1] = {}; t = t[1] end
    encode_err(deep, "nesting deeper than max_depth %(1000%)")
    assert.is_string(encode(deep, {max_depth = 1001}))
    encode_err({{{}}}, "max_depth %(2%)", {max_depth = 2})
  end)

  it("detects cycles", function()
    local t = {}
    t[1] = t
    encode_err(t, "cycle")
    local a, b = {}, {}
    a.b, b.a = b, a
    encode_err(a, "cycle")
    local shared = {1}
    assert.equal("[[1],[1]]", encode({shared, shared})) -- shared is not a cycle
  end)

  it("limits the document size", function()
    decode_err("[1,2,3]", "document of 7 bytes exceeds max_size %(6%)", {max_size = 6})
    assert.is_table(decode_ok("[1,2,3]", {max_size = 7}))
    -- encode's max_size bounds what it writes
    local text, err = jsonrpc.encode({1, 2, 3}, {max_size = 6})
    assert.is_nil(text)
    assert.equal("encoded text of 7 bytes exceeds max_size (6)", err)
    assert.equal("[1,2,3]", jsonrpc.encode({1, 2, 3}, {max_size = 7}))
  end)

  it("rejects bad options and arguments", function()
    assert.has_error(function() decode({}) end)
    assert.has_error(function() decode("1", {max_depth = 0}) end)
    assert.has_error(function() decode("1", {max_depth = "x"}) end)
    assert.has_error(function() decode("1", 5) end)
    assert.has_error(function() decode("1", {max_dept = 3}) end, "bad argument #2 to 'decode' (unknown option 'max_dept')")
    assert.has_error(function() encode(1, {max_depth = 2.5}) end)
    assert.has_error(function() decode("1", {max_size = -1}) end)
    assert.has_error(function() encode() end)
  end)
end)

describe("codec: grammar errors", function()
  local cases = {
    {"", "unexpected end of input at byte 1"},
    {"   ", "unexpected end of input at byte 4"},
    {"[1,]", "expected a value, found ']' at byte 4"},
    {"[1 2]", "expected ',' or ']' in array, found '2' at byte 4"},
    {'{"a" 1}', "expected ':' after object key, found '1' at byte 6"},
    {'{"a":1,}', "expected a string key in object, found '}' at byte 8"},
    {"{1:2}", "expected a string key in object"},
    {"[1] x", "unexpected data after the JSON value, found 'x' at byte 5"},
    {"tru", "expected a value, found 't' at byte 1"},
    {"nul", "expected a value"},
    {"[", "unexpected end of input at byte 2"},
    {'{"a":', "unexpected end of input"},
    {"\239\187\191[]", "expected a value, found byte 0xEF"},
    {"[1]\0", "found byte 0x00 at byte 4"},
  }
  for _, case in ipairs(cases) do
    it(("reports %q"):format(case[1]), function()
      local err = decode_err(case[1])
      assert(err:find(case[2], 1, true), ("expected %q in %q"):format(case[2], err))
    end)
  end

  it("accepts all JSON whitespace and nothing else", function()
    assert.same({1}, decode_ok(" \t\r\n[ \t\r\n1 \t\r\n] \t\r\n"))
    decode_err("\f1", "expected a value")
    decode_err("\v1", "expected a value")
  end)
end)

describe("codec: re-entrancy", function()
  it("survives decode called from a finalizer during decode", function()
    if not setmetatable({}, {__gc = true}) then return end
    local calls = 0
    local text = "[" .. string.rep('"esc\\naped",', 2000) .. "1]"
    for _ = 1, 20 do
      setmetatable({}, {__gc = function() calls = calls + 1; decode('["\\n", "x\\ty"]') end})
    end
    for _ = 1, 20 do
      local v = decode_ok(text)
      assert.equal("esc\naped", v[1999])
    end
    collectgarbage()
  end)
end)
