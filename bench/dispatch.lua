-- Dispatch throughput: jsonrpc.server():handle() against a pure-Lua
-- dispatcher on lua-cjson (bench/lua_dispatcher.lua), same process.
--
-- Run with `make bench-dispatch` (Lua 5.4) or `make bench-dispatch LUA=luajit`.
-- Prints figures only: it never fails because of a figure.
--
-- Both dispatchers have the same methods:
--   subtract(minuend, subtrahend)  declared params {"minuend", "subtrahend"}
--   sum(...)                       no declared params
-- Workloads (request text in, response text out, nothing else timed):
--   single    {"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}
--   named     the same with {"minuend":42,"subtrahend":23}
--   batch100  a batch of 100 subtract calls with ids 1..100
--   notify    the subtract call without an id (no response)
-- Throughput is in calls per second (a batch counts 100 calls). The goal is
-- ours >= 4x the pure-Lua dispatcher on every workload.
--
-- First, both dispatchers are checked on the specification's examples, and
-- on each workload both must give equal decoded responses; a mismatch prints
-- a WARNING line and the figures are still measured.
--
-- Environment knobs (for quick or profiling runs):
--   BENCH_TARGET  seconds per repetition (default 0.3)
--   BENCH_REPS    repetitions; best and median are kept (default 5)
--   BENCH_ONLY    only workloads whose name contains this (e.g. "batch")

local clock = os.clock
local ceil = math.ceil
local concat, format, sort = table.concat, string.format, table.sort

local TARGET = tonumber(os.getenv("BENCH_TARGET") or "") or 0.3
local ONLY = os.getenv("BENCH_ONLY")
local GOAL = 4.0
local BATCH = 100

-- bench/lua_dispatcher.lua and bench/support.lua sit next to this script.
local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = here .. "/?.lua;" .. package.path
local support = require "support"
local REPS = support.REPS

---------------------------------------------------------------------------
-- Comparison of decoded values: numbers by value, tables deeply.

local deepeq = support.deepeq

local function is_array_text(text)
  return text:find("^[ \t\r\n]*%[") ~= nil
end

---------------------------------------------------------------------------
-- Methods, registered alike on both dispatchers.

local function subtract(minuend, subtrahend)
  return minuend - subtrahend
end

local function sum(...)
  local s = 0
  for i = 1, select("#", ...) do s = s + select(i, ...) end
  return s
end

local function register_bench(d)
  d:method("subtract", subtract, {params = {"minuend", "subtrahend"}})
  d:method("sum", sum)
  return d
end

---------------------------------------------------------------------------
-- Self-check on the specification's examples (and a few more from
-- the README), compared on decoded values. An expectation is nil
-- (no response), {result = v, id = x}, {code = c, id = x}, or
-- {batch = {...}} (an array of those, in any order).

local function self_check(name, d, mkerror, cjson)
  local null = cjson.null
  register_bench(d)
  d:method("get_data", function() return {"hello", 5} end)
  d:method("fail", function() error("boom") end)
  d:method("custom", function() error(mkerror(-32000, "custom")) end)
  d:method("soft", function() return nil, mkerror(-32001, "soft") end)

  local cases = {
    {'{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}', {result = 19, id = 1}},
    {'{"jsonrpc":"2.0","method":"subtract","params":[23,42],"id":2}', {result = -19, id = 2}},
    {'{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":3}',
      {result = 19, id = 3}},
    {'{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":4}',
      {result = 19, id = 4}},
    {'{"jsonrpc":"2.0","method":"update","params":[1,2,3,4,5]}', nil},
    {'{"jsonrpc":"2.0","method":"foobar"}', nil},
    {'{"jsonrpc":"2.0","method":"foobar","id":"1"}', {code = -32601, id = "1"}},
    {'{"jsonrpc":"2.0","method":"foobar, "params": "bar", "baz]', {code = -32700, id = null}},
    {'{"jsonrpc":"2.0","method":1,"params":"bar"}', {code = -32600, id = null}},
    {'[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method"]',
      {code = -32700, id = null}},
    {'[]', {code = -32600, id = null}},
    {'[1]', {batch = {{code = -32600, id = null}}}},
    {'[1,2,3]', {batch = {{code = -32600, id = null}, {code = -32600, id = null},
      {code = -32600, id = null}}}},
    {'[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},' ..
      '{"jsonrpc":"2.0","method":"notify_hello","params":[7]},' ..
      '{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":"2"},' ..
      '{"foo":"boo"},' ..
      '{"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},' ..
      '{"jsonrpc":"2.0","method":"get_data","id":"9"}]',
      {batch = {{result = 7, id = "1"}, {result = 19, id = "2"}, {code = -32600, id = null},
        {code = -32601, id = "5"}, {result = {"hello", 5}, id = "9"}}}},
    {'[{"jsonrpc":"2.0","method":"notify_sum","params":[1,2,4]},' ..
      '{"jsonrpc":"2.0","method":"notify_hello","params":[7]}]', nil},
    -- From the README.
    {'{"jsonrpc":"2.0","method":"sum","id":null}', {result = 0, id = null}},
    {'{"jsonrpc":"2.0","method":"sum","params":[1.5,2],"id":2.5}', {result = 3.5, id = 2.5}},
    {'{"jsonrpc":"2.0","method":"subtract","params":[1,2,3],"id":5}', {code = -32602, id = 5}},
    {'{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1,"c":2},"id":6}',
      {code = -32602, id = 6}},
    {'{"jsonrpc":"2.0","method":"subtract","params":null,"id":7}', {code = -32602, id = 7}},
    {'{"jsonrpc":"2.0","method":"subtract","params":"x","id":8}', {code = -32600, id = 8}},
    {'{"jsonrpc":"2.0","method":"subtract","params":[1,2],"id":{}}', {code = -32600, id = null}},
    {'{"jsonrpc":"2.0","method":"subtract","params":[1,2],"id":true}', {code = -32600, id = null}},
    {'{"jsonrpc":"1.0","method":"subtract","params":[1,2],"id":9}', {code = -32600, id = 9}},
    {'{"method":"subtract","params":[1,2],"id":10}', {code = -32600, id = 10}},
    {'{"jsonrpc":"2.0","method":"fail","id":11}', {code = -32603, id = 11}},
    {'{"jsonrpc":"2.0","method":"custom","id":12}', {code = -32000, id = 12}},
    {'{"jsonrpc":"2.0","method":"soft","id":13}', {code = -32001, id = 13}},
  }

  local function match_one(got, want)
    if type(got) ~= "table" or got.jsonrpc ~= "2.0" then return false end
    if not deepeq(got.id, want.id) then return false end
    if want.code then
      return type(got.error) == "table" and got.error.code == want.code
        and type(got.error.message) == "string" and got.result == nil
    end
    return got.error == nil and (deepeq(got.result, want.result))
  end

  local failures = {}
  for i, case in ipairs(cases) do
    local req, want = case[1], case[2]
    local ok, text = pcall(d.handle, d, req)
    local good, why = false, nil
    if not ok then
      why = "raised: " .. tostring(text)
    elseif want == nil then
      good = text == nil
      why = good or ("expected no response, got " .. tostring(text))
    elseif type(text) ~= "string" then
      why = "expected a response, got " .. tostring(text)
    else
      local dok, got = pcall(cjson.decode, text)
      if not dok then
        why = "response does not decode: " .. text
      elseif want.batch then
        good = is_array_text(text) and #got == #want.batch
        if good then
          local used = {}
          for _, w in ipairs(want.batch) do
            local found = false
            for j = 1, #got do
              if not used[j] and match_one(got[j], w) then
                used[j], found = true, true
                break
              end
            end
            if not found then good = false end
          end
        end
        why = "got " .. text
      else
        good = not is_array_text(text) and match_one(got, want)
        why = "got " .. text
      end
    end
    if not good then
      failures[#failures + 1] = format("  case %d %s\n    %s", i, req, tostring(why))
    end
  end
  return #cases, failures
end

---------------------------------------------------------------------------
-- Workloads.

local function make_workloads()
  local single = '{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}'
  local named = '{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":1}'
  local members = {}
  for i = 1, BATCH do
    members[i] = format('{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":%d}', i)
  end
  local batch = "[" .. concat(members, ",") .. "]"
  local notify = '{"jsonrpc":"2.0","method":"subtract","params":[42,23]}'
  return {
    {name = "single", text = single, calls = 1},
    {name = "named", text = named, calls = 1},
    {name = "batch" .. BATCH, text = batch, calls = BATCH},
    {name = "notify", text = notify, calls = 1},
  }
end

-- Decoded responses, batches sorted by id, for comparison.
local function normalize(cjson, text)
  if text == nil then return "<no response>" end
  local v = cjson.decode(text)
  if is_array_text(text) then
    sort(v, function(a, b) return tostring(a.id) < tostring(b.id) end)
    return {batch = v}
  end
  return v
end

---------------------------------------------------------------------------
-- Timing.

local function measure(d, text)
  return support.measure(d.handle, d, text, TARGET)
end

---------------------------------------------------------------------------

local function fmt_ops(x)
  if x == nil then return "n/a" end
  if x >= 1e6 then return format("%.2fM", x / 1e6) end
  if x >= 1e3 then return format("%.1fk", x / 1e3) end
  return format("%.1f", x)
end

local function fmt_ratio(x)
  return x and format("%.2f", x) or "n/a"
end

local function main()
  local t_start = clock()
  print("dispatch benchmark: jsonrpc.server vs a pure-Lua dispatcher on lua-cjson")
  print(format("lua: %s%s", _VERSION,
    (type(jit) == "table" and jit.version) and (" / " .. jit.version) or ""))

  local ok_c, cjson = pcall(require, "cjson")
  if not ok_c then
    print("cannot load cjson: " .. tostring(cjson))
    return
  end
  local ok_l, luad = pcall(require, "lua_dispatcher")
  if not ok_l then
    print("cannot load bench/lua_dispatcher.lua: " .. tostring(luad))
    return
  end
  local ok_j, jsonrpc = pcall(require, "jsonrpc")
  local have_ours = ok_j and type(jsonrpc) == "table" and jsonrpc.server ~= nil
  if not ok_j then
    print("cannot load jsonrpc: " .. tostring(jsonrpc))
  elseif not have_ours then
    print("jsonrpc.server is not available: measuring the pure-Lua dispatcher only")
  end
  print(format("jsonrpc %s, lua-cjson %s", ok_j and tostring(jsonrpc.version) or "n/a",
    tostring(cjson._VERSION)))
  print(format("method: os.clock, ~%.2f s per repetition, best and median of %d, " ..
    "collectgarbage() between measurements; a batch counts %d calls", TARGET, REPS, BATCH))

  local warnings = 0
  local function warn(msg)
    warnings = warnings + 1
    print("WARNING: " .. msg)
  end

  -- Self-check on the spec examples.
  local impls = {{"pure-Lua", function() return luad.new() end, luad.error}}
  if have_ours then
    impls[#impls + 1] = {"ours", function() return jsonrpc.server() end, jsonrpc.error}
  end
  for _, impl in ipairs(impls) do
    local ok, ncases, failures = pcall(function()
      return self_check(impl[1], impl[2](), impl[3], cjson)
    end)
    if not ok then
      warn(format("self-check of %s raised: %s", impl[1], tostring(ncases)))
    elseif #failures == 0 then
      print(format("self-check %-8s %d/%d spec cases ok", impl[1], ncases, ncases))
    else
      warn(format("self-check %s: %d of %d spec cases wrong:\n%s", impl[1], #failures,
        ncases, concat(failures, "\n")))
    end
  end

  -- The two dispatchers under test.
  local lua_d = register_bench(luad.new())
  local ours
  if have_ours then
    local ok, srv = pcall(function() return register_bench(jsonrpc.server()) end)
    if ok then ours = srv else warn("cannot set up jsonrpc.server: " .. tostring(srv)) end
  end

  -- Sanity: equal decoded responses on every workload.
  local workloads = make_workloads()
  for _, w in ipairs(workloads) do
    local ok, err = pcall(function()
      local want = normalize(cjson, lua_d:handle(w.text))
      if w.name == "notify" then
        if want ~= "<no response>" then warn("notify: pure-Lua dispatcher responded") end
      elseif type(want) ~= "table" or (want.batch and #want.batch ~= BATCH)
          or (not want.batch and want.result ~= 19) then
        warn(w.name .. ": unexpected pure-Lua response")
      end
      if ours then
        local got = normalize(cjson, ours:handle(w.text))
        local same, where = deepeq(got, want)
        if not same then
          warn(format("%s: responses differ (ours vs pure-Lua) at %s", w.name, where))
        end
      end
    end)
    if not ok then warn(w.name .. ": sanity check raised: " .. tostring(err)) end
  end
  if warnings == 0 then
    print(ours and "sanity: both dispatchers give equal decoded responses on every workload"
      or "sanity: the pure-Lua dispatcher's responses are as expected on every workload")
  end
  print("")

  local header = format("%-9s %12s %12s %8s %11s %14s", "workload", "ours call/s",
    "Lua call/s", "ratio", "spread", "ours ns/call")
  print(header)
  print(string.rep("-", #header))
  io.stdout:flush()

  local rows = {}
  for _, w in ipairs(workloads) do
    if not ONLY or w.name:find(ONLY, 1, true) then
      local row = {name = w.name}
      local r, err, ob, lb
      if ours then
        -- timed alternately, a pair per round: the ratio is the median of
        -- the rounds' ratios, with its spread
        r, err = support.compare(ours.handle, ours, w.text, lua_d.handle, lua_d, w.text, TARGET)
        if err then print("  " .. w.name .. " error: " .. err) end
        ob, lb = r and r.t1, r and r.t2
      else
        local le
        lb, _, le = measure(lua_d, w.text)
        if le then print("  pure-Lua " .. w.name .. " error: " .. le) end
      end
      row.ours = ob and w.calls / ob
      row.lua = lb and w.calls / lb
      row.ratio = r and r.ratio
      print(format("%-9s %12s %12s %8s %11s %14s", w.name, fmt_ops(row.ours),
        fmt_ops(row.lua), fmt_ratio(row.ratio), r and format("%.2f-%.2f", r.min, r.max) or "",
        ob and format("%.0f", ob / w.calls * 1e9) or "n/a"))
      io.stdout:flush()
      rows[#rows + 1] = row
    end
  end
  print("(ratio: ours/pure-Lua, the median of rounds timing both alternately; spread: their min-max)")

  print("")
  local below = {}
  for _, r in ipairs(rows) do
    if not r.ratio then
      below[#below + 1] = format("%s (no figure)", r.name)
    elseif r.ratio < GOAL then
      below[#below + 1] = format("%s %.2fx", r.name, r.ratio)
    end
  end
  support.print_goal(format("goal ours >= %gx the pure-Lua dispatcher everywhere", GOAL),
    below, warnings, t_start)
end

local ok, err = pcall(main)
if not ok then
  print("benchmark error (ignored): " .. tostring(err))
end
