-- Our codec against lua-cjson: wherever cjson accepts a document we agree
-- (numbers compared by value), except where we are stricter by design, and
-- then our error's claim about the input is checked independently.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"

local cjson = require("cjson").new()
cjson.decode_invalid_numbers(false)
cjson.decode_max_depth(1000)

local function cjson_decode(text)
  local ok, v = pcall(cjson.decode, text)
  if ok then return v end
  return nil
end

-- Our documented extra strictness, verified at the byte our error names.
local function stricter_by_design(text, err)
  local at = tonumber(err:match("at byte (%d+)$"))
  if not at then return false end
  if text:byte(at) == 0 then
    return true -- cjson reads a C string: it stops at the first NUL byte
  end
  if err:find("^invalid UTF%-8") then
    return util.utf8_seq(text, at) == nil
  end
  if err:find("^control character in string") then
    return text:byte(at) < 0x20
  end
  if err:find("^invalid number") then
    return not util.valid_json_number(text:match("^[%-%+%.%deE]*", at))
  end
  return false
end

local function check_document(text)
  local theirs = cjson_decode(text)
  local ours, err = jsonrpc.decode(text)
  if theirs == nil then return ours ~= nil end
  if ours == nil then
    assert(stricter_by_design(text, err),
      ("cjson accepts %q but we say: %s"):format(text:sub(1, 200), err))
    return false
  end
  assert(util.same_json(ours, theirs), ("values differ for %q"):format(text:sub(1, 200)))
  return true
end

local function mutate(rand, text)
  local pos = rand(1, #text + 1)
  local r = rand(4)
  local junk = ({ "\"", "\\", ",", "]", "}", "[", "{", ":", "0", "-", ".", "e", "\255", "\0", "\n",
                  "\\u", "\\ud800", "\237\160\128", "1.", " ", "null", "\192\128" })[rand(22)]
  if r == 1 then return text:sub(1, pos - 1) .. text:sub(pos + 1) end
  if r == 2 then return text:sub(1, pos - 1) .. junk .. text:sub(pos) end
  if r == 3 then return text:sub(1, pos - 1) .. junk .. text:sub(pos + 1) end
  return text:sub(1, pos)
end

describe("codec differential against cjson", function()
  it("decodes generated documents to the values cjson finds", function()
    math.randomseed(1234)
    local rand = math.random
    for _ = 1, util.count(5000) do
      local text = util.random_document(rand)
      assert(check_document(text), "we rejected a generated valid document: " .. text)
    end
  end)

  it("agrees on mutated documents wherever cjson accepts them", function()
    math.randomseed(4321)
    local rand = math.random
    local accepted, rejected_by_design = 0, 0
    for _ = 1, util.count(20000) do
      local text = util.random_document(rand)
      for _ = 1, rand(1, 3) do text = mutate(rand, text) end
      if cjson_decode(text) ~= nil then
        if check_document(text) then accepted = accepted + 1
        else rejected_by_design = rejected_by_design + 1 end
      else
        check_document(text)
      end
    end
    assert.is_true(accepted > 0)
  end)

  it("agrees on hand-written documents", function()
    local docs = {
      '{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}',
      '{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":3}',
      '[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method":"notify_hello","params":[7]}]',
      '{"a":1,"a":2}', '[-0, 0, -0.0, 1e-400, 1e400, 123456789012345678901234567890]',
      '"\\u0000\\u001f\\ud83d\\ude00"', '[[[[[[[[[[]]]]]]]]]]', '{"":{"":{"":null}}}',
      '  \t\r\n 42 \n', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', '[true,false,null]',
      '1.7976931348623157e308', '2.2250738585072011e-308', '4.9e-324',
      '0.1e1', '1E5', '1e+5', '-1e-5', '[9223372036854775807, -9223372036854775808, 9223372036854775808]',
    }
    for _, text in ipairs(docs) do
      assert(check_document(text), text)
    end
  end)

  it("writes what cjson reads back to equal values", function()
    math.randomseed(99)
    local rand = math.random
    for _ = 1, util.count(5000) do
      local v = util.random_value(rand)
      local text = assert(jsonrpc.encode(v))
      local back = cjson.decode(text)
      assert(util.same_json(back, v), "cjson reads back something else from " .. text)
      assert(util.same_json(jsonrpc.decode(text), v))
    end
  end)
end)
