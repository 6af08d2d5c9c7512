-- OpenResty: nginx with jsonrpc.ngx.serve against nginx with the pure-Lua
-- cjson dispatcher (bench/lua_dispatcher.lua), one worker each, both
-- pinned to core 1, and wrk on core 0 with keep-alive (1 thread, 16
-- connections). Every answer is checked (bench/openresty/wrk.lua): a run
-- with a wrong one is refused.
--
--   lua5.4 bench/openresty.lua [--pairs N] [--seconds S] [--out DIR]
--
-- The rates on a machine that drifts are noisy; so each server is also run
-- under callgrind (one process), and the table gives the instructions
-- each request costs it in user space, counted over several thousand
-- requests after a warm-up: those repeat to a few percent from run to run.
--
-- This machine's speed drifts, so the two servers run side by side and
-- each workload is measured in pairs (--pairs, 7): wrk on one server then
-- on the other for S seconds (--seconds, 2), in a random order. The table
-- gives each server's median rate and its worker's CPU per request, and
-- the median of the paired ratios with their spread. The floor row is
-- nginx answering a constant text from Lua: what the HTTP part costs,
-- which bounds any ratio. Prints the goals (1.3x on single calls, 2x on
-- batches of 100) and writes DIR/openresty.md and DIR/openresty.json
-- (DIR: bench/results).
local jsonrpc = require "jsonrpc"

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = HERE .. "/../?.lua;" .. package.path
local nginx = require "spec.support.nginx"
local util = require "spec.support.util"
local lsp_like = dofile(HERE .. "/peers/lsp_like.lua")
local ROOT = nginx.root

local o = { pairs = 7, seconds = 2, out = ROOT .. "/bench/results", instructions = true }
do
  local i = 1
  while arg[i] do
    local flag, value = arg[i], arg[i + 1]
    if flag == "--pairs" then o.pairs = assert(tonumber(value), "--pairs N")
    elseif flag == "--seconds" then o.seconds = assert(tonumber(value), "--seconds S")
    elseif flag == "--out" then o.out = value
    elseif flag == "--no-instructions" then o.instructions = false; i = i - 1
    else error("unknown argument " .. tostring(flag) .. " (see the head of bench/openresty.lua)") end
    i = i + 2
  end
end

-- A request text with its members in the order clients write them (a Lua
-- table's would change from run to run, and a server that meets params
-- before the method reads them twice).
local function request(id, method, params)
  return ('{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}'):format(id, method, jsonrpc.encode(params))
end

local batch = {}
for i = 1, 100 do batch[i] = request(i, "add", { 1, 2 }) end
batch = "[" .. table.concat(batch, ",") .. "]"
-- name, title ($B: the body's size), body, the pattern each answer holds, how often
local WORKLOADS = {
  { "single", "add, single call ($B)", request(1, "add", { 1, 2 }), '"result":3[,}]', 1 },
  { "batch100", "add, batches of 100 ($B)", batch, '"result":3[,}]', 100 },
  { "diagnostics", "diagnostics, single call ($B)", request(1, "diagnostics", { lsp_like.diagnostics(17) }),
    '"result":17[,}]', 1 },
  { "completion", "completion list of 28 answered ($B)", request(1, "complete", { 28 }), '"sortText":"', 28 },
}

local IMPLS = {
  { "ours", "jsonrpc.ngx.serve" },
  { "cjson_dispatcher", "pure Lua on lua-cjson" },
}

local dir = ROOT .. "/build/bench/openresty"
os.execute("mkdir -p '" .. dir .. "'")
for _, wl in ipairs(WORKLOADS) do
  wl.file = dir .. "/" .. wl[1] .. ".json"
  local f = assert(io.open(wl.file, "wb"))
  f:write(wl[3])
  f:close()
  wl.bytes = #wl[3]
  local size = wl.bytes < 1000 and ("%d B"):format(wl.bytes) or ("%.1f KB"):format(wl.bytes / 1000)
  wl[2] = wl[2]:gsub("%$B", size)
end

local function start(impl, wrap)
  return nginx.start{
    wrap = wrap,
    main = "worker_cpu_affinity 10;",
    lua_path = ("%s/bench/openresty/?.lua;%s/bench/?.lua;%s/bench/peers/?.lua;"):format(ROOT, ROOT, ROOT),
    server = [[
      location = /rpc { content_by_lua_block { HANDLER() } }
      location = /floor { content_by_lua_block {
        ngx.header["Content-Type"] = "application/json"
        ngx.header["Content-Length"] = 35
        ngx.print('{"jsonrpc":"2.0","result":3,"id":1}')
      } }
    ]],
    init = ("HANDLER = require(%q)"):format(impl),
  }
end

-- CPU seconds a process has used.
local function cpu_seconds(pid)
  local stat = (util.read_file("/proc/" .. pid .. "/stat") or ""):gsub("^.-%) ", "")
  local f = {}
  for x in stat:gmatch("%S+") do f[#f + 1] = x end
  return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / 100
end

-- One wrk run on server n: requests/s and its worker's CPU microseconds
-- per request, or nil and why.
local function run_wrk(n, path, wl, seconds)
  local c0 = cpu_seconds(n.worker)
  local out = util.sh(("BENCH_BODY=%s BENCH_EXPECT='%s' BENCH_COUNT=%d taskset -c 0 "
    .. "wrk -t1 -c16 -d%ds --timeout 5s -s %s/bench/openresty/wrk.lua %s%s 2>&1")
    :format(wl.file, wl[4], wl[5], seconds, ROOT, n.url, path))
  local cpu = cpu_seconds(n.worker) - c0
  local rate = tonumber(out:match("Requests/sec:%s*([%d%.]+)"))
  local count = tonumber(out:match("(%d+) requests in"))
  local wrong = tonumber(out:match("wrong (%d+)"))
  local errors = out:match("Non%-2xx or 3xx responses: (%d+)") or out:match("Socket errors: ([^\n]+)")
  if not rate or not count or wrong == nil then return nil, "wrk: " .. out end
  if wrong > 0 then return nil, ("%d wrong answers"):format(wrong) end
  if errors then return nil, "errors: " .. errors end
  return rate, cpu / count * 1e6
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local m = #s // 2
  if #s % 2 == 1 then return s[m + 1] end
  return (s[m] + s[m + 1]) / 2
end

math.randomseed(os.time())
local servers = {}
for _, impl in ipairs(IMPLS) do
  local n = start(impl[1])
  n.worker = n.worker_pid()
  servers[impl[1]] = n
end
local function stop_all() for _, n in pairs(servers) do n.stop() end end

local floor_wl = { "floor", "", nil, '"result":3[,}]', 1, file = WORKLOADS[1].file }
local rows = {}
for _, wl in ipairs(WORKLOADS) do
  local row = { wl = wl, rate = { ours = {}, cjson_dispatcher = {} }, cpu = { ours = {}, cjson_dispatcher = {} },
                ratio = {}, floor = {} }
  for _, impl in ipairs(IMPLS) do run_wrk(servers[impl[1]], "/rpc", wl, 1) end   -- warm-up
  for pair = 1, o.pairs do
    local order = math.random() < 0.5 and { 1, 2 } or { 2, 1 }
    local got = {}
    for _, k in ipairs(order) do
      local name = IMPLS[k][1]
      local rate, cpu = run_wrk(servers[name], "/rpc", wl, o.seconds)
      if not rate then
        local log = servers[name].error_log():sub(-2000)
        stop_all()
        error(("%s, %s: %s\n%s"):format(name, wl[1], cpu, log))
      end
      got[name] = rate
      table.insert(row.rate[name], rate)
      table.insert(row.cpu[name], cpu)
    end
    row.ratio[pair] = got.ours / got.cjson_dispatcher
    io.stderr:write(("%s: pair %d/%d: %.2fx\n"):format(wl[1], pair, o.pairs, row.ratio[pair]))
  end
  rows[#rows + 1] = row
end
-- the floor: nginx and wrk alone, a constant answer
local floor_rate, floor_cpu, floor_instr = {}, {}, nil
for _ = 1, 3 do
  local rate, cpu = run_wrk(servers.ours, "/floor", floor_wl, o.seconds)
  if rate then floor_rate[#floor_rate + 1], floor_cpu[#floor_cpu + 1] = rate, cpu end
end
stop_all()

-- Instructions per request under callgrind: counted only while wrk runs
-- after a warm-up (callgrind_control switches the instrumentation).
local function instructions(impl_name, path, wl)
  local out_file = os.tmpname()
  local n = start(impl_name, ("valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=%s")
    :format(out_file))
  local function load(seconds)
    return util.sh(("BENCH_BODY=%s BENCH_EXPECT='%s' BENCH_COUNT=%d wrk -t1 -c4 -d%ds --timeout 10s "
      .. "-s %s/bench/openresty/wrk.lua %s%s 2>&1"):format(wl.file, wl[4], wl[5], seconds, ROOT, n.url, path))
  end
  load(3)
  util.sh("callgrind_control -i on " .. n.pid .. " >/dev/null 2>&1")
  local out = load(4)
  util.sh("callgrind_control -i off " .. n.pid .. " >/dev/null 2>&1")
  util.sh("callgrind_control -d " .. n.pid .. " >/dev/null 2>&1")
  local count = tonumber(out:match("(%d+) requests in"))
  local wrong = tonumber(out:match("wrong (%d+)"))
  n.stop()
  local total = 0
  for file in util.sh("ls " .. out_file .. "*"):gmatch("%S+") do
    local a = util.sh("callgrind_annotate " .. file .. " 2>/dev/null | grep 'PROGRAM TOTALS'")
    total = total + (tonumber(((a:match("([%d,]+)") or "0"):gsub(",", ""))) or 0)
    os.remove(file)
  end
  if not count or count == 0 or wrong ~= 0 or total == 0 then return nil end
  return total / count
end

if o.instructions and util.sh("command -v callgrind_control"):match("%S") then
  for _, row in ipairs(rows) do
    row.instr = {}
    for _, impl in ipairs(IMPLS) do row.instr[impl[1]] = instructions(impl[1], "/rpc", row.wl) end
    io.stderr:write(("%s: instructions measured\n"):format(row.wl[1]))
  end
  floor_instr = instructions("ours", "/floor", floor_wl)
end

local lines = {
  "# OpenResty: jsonrpc.ngx.serve against a pure-Lua cjson dispatcher",
  "",
  ("nginx %s with lua-nginx-module on LuaJIT; each server 1 worker on core 1; wrk -t1 -c16 on "
   .. "core 0, keep-alive; %d pairs of %d s per workload; every answer checked. `make bench-openresty`.")
    :format((util.sh("nginx -v 2>&1"):match("nginx/(%S+)") or "?"), o.pairs, o.seconds),
  "",
  "| workload | jsonrpc.ngx.serve req/s | CPU/req | cjson dispatcher req/s | CPU/req | paired ratio (min-max) | instructions/req: ours, cjson, ratio |",
  "| --- | --- | --- | --- | --- | --- | --- |",
}
local summary = {}
for _, row in ipairs(rows) do
  local wl = row.wl
  local r = median(row.ratio)
  local ins = row.instr or {}
  local instr_cell = (ins.ours and ins.cjson_dispatcher)
    and ("%.0f, %.0f, %.2fx"):format(ins.ours, ins.cjson_dispatcher, ins.cjson_dispatcher / ins.ours) or "-"
  lines[#lines + 1] = ("| %s | %.0f | %.1f us | %.0f | %.1f us | %.2fx (%.2f-%.2f) | %s |"):format(wl[2],
    median(row.rate.ours), median(row.cpu.ours), median(row.rate.cjson_dispatcher),
    median(row.cpu.cjson_dispatcher), r, math.min(table.unpack(row.ratio)), math.max(table.unpack(row.ratio)),
    instr_cell)
  summary[wl[1]] = { rates = row.rate, cpu_us = row.cpu, ratios = row.ratio, ratio = r, bytes = wl.bytes,
                     instructions = row.instr }
end
if #floor_rate > 0 then
  lines[#lines + 1] = ("| floor: nginx answering a constant from Lua | %.0f | %.1f us | | | | %s |")
    :format(median(floor_rate), median(floor_cpu), floor_instr and ("%.0f"):format(floor_instr) or "-")
  summary.floor = { rates = floor_rate, cpu_us = floor_cpu, instructions = floor_instr }
end
local single, batched = summary.single.ratio, summary.batch100.ratio
lines[#lines + 1] = ""
lines[#lines + 1] = ("Goals (paired rates): single calls at least 1.3x: %.2fx, %s; batches of 100 at least 2x: %.2fx, %s.")
  :format(single, single >= 1.3 and "met" or "NOT met", batched, batched >= 2 and "met" or "NOT met")
local function instr_ratio(name)
  local ins = summary[name].instructions
  return ins and ins.ours and ins.cjson_dispatcher and ins.cjson_dispatcher / ins.ours
end
if instr_ratio("single") and instr_ratio("batch100") then
  lines[#lines + 1] = ("By instructions per request: single calls %.2fx, batches of 100 %.2fx.")
    :format(instr_ratio("single"), instr_ratio("batch100"))
end
-- nginx's own cost bounds a single call's ratio: a server whose JSON-RPC
-- work cost nothing would answer at the floor's rate
if #floor_rate > 0 then
  local ceiling = median(floor_rate) / median(summary.single.rates.cjson_dispatcher)
  summary.single.ceiling = ceiling
  lines[#lines + 1] = ("The most any server could reach on single calls here, answering at the floor's rate: %.2fx.")
    :format(ceiling)
end
local text = table.concat(lines, "\n") .. "\n"
io.write(text)
local f = assert(io.open(o.out .. "/openresty.md", "w"))
f:write(text)
f:close()
f = assert(io.open(o.out .. "/openresty.json", "w"))
f:write(jsonrpc.encode(summary))
f:close()
