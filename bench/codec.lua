-- Codec throughput: jsonrpc.encode/decode against lua-cjson, same process.
--
-- Run with `make bench-codec` (Lua 5.4) or `make bench-codec LUA=luajit`.
-- Prints figures only: it never fails because of a figure.
--
-- Three inputs, built deterministically from a fixed seed:
--   request  a small JSON-RPC request
--   record   a ~1 KiB object of mixed content
--   document a ~1 MiB document: many records, long strings, many numbers
-- For each input, decode and encode are timed for both codecs. Encode takes
-- the value each library decoded itself, so both do equivalent work.
-- Throughput is in MB/s (10^6 bytes) of the input JSON text, for both
-- operations and both codecs, whatever text each encoder produces.
--
-- Environment knobs (for quick or profiling runs):
--   BENCH_TARGET  seconds per repetition (default 0.35)
--   BENCH_REPS    rounds, ours and cjson timed alternately in each; the
--                 ratio is the median of the rounds' (default 5)
--   BENCH_ONLY    only inputs whose name contains this (e.g. "document")

local clock = os.clock
local floor, ceil, huge = math.floor, math.ceil, math.huge
local concat, format = table.concat, string.format

local TARGET = tonumber(os.getenv("BENCH_TARGET") or "") or 0.35

-- bench/support.lua sits next to this script.
local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = here .. "/?.lua;" .. package.path
local support = require "support"
local REPS = support.REPS
local ONLY = os.getenv("BENCH_ONLY")

---------------------------------------------------------------------------
-- Deterministic input generation. Park-Miller: products stay below 2^46,
-- so the sequence is exact with Lua 5.4 integers and with LuaJIT doubles.

local seed = 20240607

local function rnd()
  seed = (seed * 16807) % 2147483647
  return seed
end

-- An integer in [a, b].
local function rint(a, b)
  return a + floor(rnd() / 2147483647 * (b - a + 1))
end

local function pick(list)
  return list[rint(1, #list)]
end

local function int_text(x)
  return format("%.0f", x)
end

-- Number literals, as JSON text. Every one of them is represented alike by
-- both codecs: integers below 10^14 (cjson prints with %.14g), decimals with
-- at most 14 significant digits.
local FIXED_FLOATS = {
  "3.14159", "0.1", "2.718281828", "-0.5", "1.5", "0.001", "100.25",
  "1e-7", "6.02214076e23", "-2.5E+8", "1.0E-10", "9.81", "0.3333",
}

local function small_int()
  return int_text(rint(-1000, 1000))
end

local function big_int()
  -- up to about 2 * 10^13, well below 2^53 and 10^14
  return int_text(rint(0, 2147483646) * 10000 + rint(0, 9999))
end

local function decimal()
  local ip = rint(0, 99999)
  local digits = rint(1, 6)
  local fp = rint(0, 10 ^ digits - 1)
  local s = format("%.0f.%0" .. digits .. ".0f", ip, fp)
  if rint(1, 4) == 1 then s = "-" .. s end
  return s
end

local function exponent_number()
  local mant = format("%d.%d", rint(1, 9), rint(0, 9999))
  local e = rint(-30, 30)
  return mant .. (rint(1, 2) == 1 and "e" or "E") .. format("%d", e)
end

local function any_number()
  local k = rint(1, 5)
  if k == 1 then return small_int()
  elseif k == 2 then return big_int()
  elseif k == 3 then return decimal()
  elseif k == 4 then return exponent_number()
  else return pick(FIXED_FLOATS) end
end

local ASCII_WORDS = {
  "alpha", "beta", "gamma", "delta", "lorem", "ipsum", "dolor", "sit",
  "amet", "consectetur", "adipiscing", "elit", "request", "response",
  "method", "params", "value", "result", "error", "server", "client",
  "stream", "frame", "buffer", "token", "node", "edge", "graph", "path",
  "a/b", "x-y", "42", "user@example.com", "(ok)", "[tag]", "{brace}",
}

-- Raw UTF-8 (2-, 3- and 4-byte sequences).
local UTF8_WORDS = {
  "caf\xC3\xA9", "Z\xC3\xBCrich", "na\xC3\xAFve", "\xCE\xB1\xCE\xB2\xCE\xB3",
  "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
  "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE2\x82\xAC100",
  "\xF0\x9F\x98\x80", "\xF0\x9F\x9A\x80go",
}

-- Escape sequences, as JSON text.
local ESCAPES = {
  "\\n", "\\t", "\\\"", "\\\\", "\\/", "\\r", "\\b", "\\f",
  "\\u00e9", "\\u2603", "\\u0001", "\\ud83d\\ude00",
}

-- The JSON text of a string of n words; pe/pu: chance in 100 that a word
-- is an escape / a UTF-8 word.
local function jstr(n, pe, pu)
  local parts = {}
  for i = 1, n do
    local r = rint(1, 100)
    if r <= pe then
      parts[i] = pick(ESCAPES)
    elseif r <= pe + pu then
      parts[i] = pick(UTF8_WORDS)
    else
      parts[i] = pick(ASCII_WORDS)
    end
  end
  return '"' .. concat(parts, " ") .. '"'
end

local function jarray(items)
  return "[" .. concat(items, ",") .. "]"
end

-- fields: list of {key, json_text}; keys must be unique.
local function jobject(fields)
  local parts = {}
  for i, f in ipairs(fields) do
    parts[i] = '"' .. f[1] .. '":' .. f[2]
  end
  return "{" .. concat(parts, ",") .. "}"
end

local function numbers_array(n, gen)
  local t = {}
  for i = 1, n do t[i] = gen() end
  return jarray(t)
end

-- A record of mixed content; pad (optional) is the word count of its note.
local function record(id, pad)
  local tags = {}
  for i = 1, rint(2, 6) do tags[i] = jstr(1, 0, 20) end
  local history = {}
  for i = 1, rint(2, 4) do
    history[i] = jobject({
      {"t", big_int()},
      {"v", decimal()},
      {"ok", rint(1, 2) == 1 and "true" or "false"},
    })
  end
  return jobject({
    {"id", int_text(id)},
    {"jsonrpc", '"2.0"'},
    {"name", jstr(rint(2, 4), 0, 25)},
    {"email", '"user' .. int_text(id) .. '@example.com"'},
    {"active", "true"},
    {"deleted", "false"},
    {"parent", "null"},
    {"pi", "3.14159"},
    {"ratio", "0.1"},
    {"score", decimal()},
    {"balance", "-" .. int_text(rint(1, 99999)) .. ".25"},
    {"count", big_int()},
    {"small", small_int()},
    {"avogadro", "6.02214076e23"},
    {"tiny", exponent_number()},
    {"tags", jarray(tags)},
    {"location", jobject({
      {"lat", "48.8566"},
      {"lon", "-2.3522"},
      {"city", jstr(1, 0, 100)},
      {"zip", '"75001"'},
      {"verified", "true"},
      {"meta", jobject({{"source", '"gps"'}, {"accuracy", decimal()}})},
    })},
    {"history", jarray(history)},
    {"matrix", jarray({
      numbers_array(3, small_int),
      numbers_array(3, decimal),
      numbers_array(3, exponent_number),
    })},
    {"flags", jarray({"true", "false", "null", "true"})},
    {"description", jstr(rint(8, 16), 12, 12)},
    {"note", jstr(pad or rint(4, 12), 4, 6)},
  })
end

local function make_request()
  return '{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}'
end

-- The record with its note grown until the text reaches 1 KiB.
local function make_record()
  local saved = seed
  local best
  for pad = 1, 200 do
    seed = saved
    local text = record(123456, pad)
    best = text
    if #text >= 1024 then break end
  end
  return best
end

local function make_document()
  local blob = {}
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 * 1024 do
    local k = rint(1, 64)
    blob[i] = alphabet:sub(k, k)
  end
  local head = {
    {"jsonrpc", '"2.0"'},
    {"id", "7"},
  }
  local tail = {
    {"blob", '"' .. concat(blob) .. '"'},
    {"text", jstr(9000, 6, 10)},
    {"integers", numbers_array(2000, function()
      return rint(1, 2) == 1 and small_int() or big_int()
    end)},
    {"decimals", numbers_array(2000, decimal)},
    {"exponents", numbers_array(1000, exponent_number)},
    {"mixed", numbers_array(1000, any_number)},
  }
  local fixed = 0
  for _, f in ipairs(tail) do fixed = fixed + #f[2] + #f[1] + 4 end
  local records, size = {}, fixed + 200
  local i = 0
  while size < 1024 * 1024 do
    i = i + 1
    local r = record(1000 + i)
    records[i] = r
    size = size + #r + 1
  end
  local result = {{"records", jarray(records)}}
  for _, f in ipairs(tail) do result[#result + 1] = f end
  head[#head + 1] = {"result", jobject(result)}
  return jobject(head), i
end

---------------------------------------------------------------------------
-- Comparison of decoded values: numbers by value, tables deeply.

local deepeq = support.deepeq

---------------------------------------------------------------------------
-- Timing.

---------------------------------------------------------------------------

local function fmt_rate(x)
  if x == nil then return "error" end
  if x >= 100 then return format("%.0f", x) end
  if x >= 10 then return format("%.1f", x) end
  return format("%.2f", x)
end

local function fmt_ops(x)
  if x == nil then return "error" end
  if x >= 1e6 then return format("%.2fM", x / 1e6) end
  if x >= 1e3 then return format("%.1fk", x / 1e3) end
  return format("%.1f", x)
end

local function fmt_size(n)
  if n >= 1024 * 1024 then return format("%.2f MiB", n / 1048576) end
  if n >= 1024 then return format("%.2f KiB", n / 1024) end
  return format("%d B", n)
end

local function main()
  local ok_j, jsonrpc = pcall(require, "jsonrpc")
  local ok_c, cjson = pcall(require, "cjson")
  print("codec benchmark: jsonrpc vs lua-cjson")
  print(format("lua: %s%s", _VERSION,
    (type(jit) == "table" and jit.version) and (" / " .. jit.version) or ""))
  if not ok_j then
    print("cannot load jsonrpc: " .. tostring(jsonrpc))
    return
  end
  if not ok_c then
    print("cannot load cjson: " .. tostring(cjson))
    return
  end
  print(format("jsonrpc %s, lua-cjson %s", tostring(jsonrpc.version),
    tostring(cjson._VERSION)))
  print(format("method: os.clock, ~%.2f s per timing, %d rounds timing ours and cjson " ..
    "alternately (who goes first swaps); ratio = median of the rounds' cjson/ours, " ..
    "spread = their min-max; MB = 10^6 bytes of input text",
    TARGET, math.max(5, REPS)))

  local t_start = clock()
  local doc, nrec = make_document()
  -- an LSP-like message (bench/peers/lsp_like.lua): a completion list of
  -- 18.7 KB with nesting, escapes, UTF-8 and ids inside
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  -- (its \u{...} escapes need Lua 5.3+ or LuaJIT)
  local loaded, lsp_like = pcall(dofile, here .. "/peers/lsp_like.lua")
  local inputs = {
    {name = "request", text = make_request()},
    {name = "record", text = make_record()},
    loaded and {name = "lsp", text = jsonrpc.encode(lsp_like.completion(82))} or nil,
    {name = "document", text = doc},
  }
  if not loaded then
    print("input lsp      left out: " .. tostring(lsp_like))
    inputs[3], inputs[4] = inputs[4], nil
  end
  for _, inp in ipairs(inputs) do
    local extra = inp.name == "document" and format(" (%d records)", nrec) or ""
    print(format("input %-8s %s, %d bytes%s", inp.name, fmt_size(#inp.text), #inp.text, extra))
  end

  -- Sanity: our decode, our encode, cjson.decode == cjson.decode(text).
  local warnings = 0
  local function warn(msg)
    warnings = warnings + 1
    print("WARNING: " .. msg)
  end
  for _, inp in ipairs(inputs) do
    local ok, err = pcall(function()
      local ref = cjson.decode(inp.text)
      inp.cjson_value = ref
      local ours, derr = jsonrpc.decode(inp.text)
      inp.ours_value = ours
      if ours == nil then
        warn(inp.name .. ": our decode failed: " .. tostring(derr))
        return
      end
      local same, where = deepeq(ours, ref, "$")
      if not same then
        warn(inp.name .. ": our decode differs from cjson's: " .. where)
      end
      local text, eerr = jsonrpc.encode(ours)
      if text == nil then
        warn(inp.name .. ": our encode failed: " .. tostring(eerr))
        return
      end
      same, where = deepeq(cjson.decode(text), ref, "$")
      if not same then
        warn(inp.name .. ": our decode+encode differs under cjson.decode: " .. where)
      end
      -- Both encoders must represent this input alike, or encode is unfair.
      same, where = deepeq(cjson.decode(cjson.encode(ref)), ref, "$")
      if not same then
        warn(inp.name .. ": cjson does not round-trip this input: " .. where)
      end
    end)
    if not ok then warn(inp.name .. ": sanity check raised: " .. tostring(err)) end
  end
  if warnings == 0 then
    print("sanity: all inputs round-trip identically (ours decode+encode, cjson decode)")
  end
  print("")

  local rows = {}
  local header = format("%-9s %-7s %11s %11s %7s %11s %11s %11s",
    "input", "op", "ours MB/s", "cjson MB/s", "ratio", "spread", "ours ops/s", "cjson ops/s")
  print(header)
  print(string.rep("-", #header))
  io.stdout:flush()

  for _, inp in ipairs(inputs) do
    if not ONLY or inp.name:find(ONLY, 1, true) then
      local ops = {
        {"decode", jsonrpc.decode, inp.text, cjson.decode, inp.text},
        {"encode", jsonrpc.encode, inp.ours_value, cjson.encode, inp.cjson_value},
      }
      for _, op in ipairs(ops) do
        local row = {input = inp.name, op = op[1]}
        local r, e1
        if op[3] ~= nil and op[5] ~= nil then
          -- timed alternately, a pair per round: the ratio is the median
          -- of the rounds' ratios, with its spread
          r, e1 = support.compare(op[2], op[3], nil, op[4], op[5], nil, TARGET)
        else
          e1 = "no decoded value to encode (see the warnings)"
        end
        if e1 then print("  " .. op[1] .. " error: " .. e1) end
        local t_ours, t_cjson = r and r.t1, r and r.t2
        local mb = #inp.text / 1e6
        row.ours = t_ours and mb / t_ours
        row.cjson = t_cjson and mb / t_cjson
        row.ratio = r and r.ratio
        print(format("%-9s %-7s %11s %11s %7s %11s %11s %11s",
          inp.name, op[1], fmt_rate(row.ours), fmt_rate(row.cjson),
          row.ratio and format("%.2f", row.ratio) or "n/a",
          r and format("%.2f-%.2f", r.min, r.max) or "",
          fmt_ops(t_ours and 1 / t_ours), fmt_ops(t_cjson and 1 / t_cjson)))
        io.stdout:flush()
        rows[#rows + 1] = row
      end
    end
  end

  print("")
  -- the goals of the benchmark issue: decode 1.5x cjson, encode 2x, as
  -- median paired ratios, on every input
  local below = {}
  for _, r in ipairs(rows) do
    local goal = r.op == "decode" and 1.5 or 2.0
    if not r.ratio then
      below[#below + 1] = format("%s/%s (no figure)", r.input, r.op)
    elseif r.ratio < goal then
      below[#below + 1] = format("%s/%s %.2f < %.1f", r.input, r.op, r.ratio, goal)
    end
  end
  support.print_goal("goal decode >= 1.5x and encode >= 2x everywhere", below, warnings, t_start)
end

local ok, err = pcall(main)
if not ok then
  print("benchmark error (ignored): " .. tostring(err))
end
