-- The benchmarks against peers: every implementation serves the same
-- methods over TCP with content-length framing, and the C load generator
-- (build/bench/loadgen) drives each workload, with the server pinned to one
-- core and the generator to the other. Each measurement starts a fresh
-- server, so its peak RSS belongs to that workload alone.
--
--   lua5.4 bench/run.lua [--runs N] [--seconds S] [--only ours,lua_tuned,...]
--                        [--workloads pingpong,...] [--out DIR] [--before DIR]
--
-- Each workload runs in rounds (--runs, 5): every implementation once a
-- round, in a random order. Prints one table with the median of the runs
-- and their min and max, p50 and p99 latency, the server's peak RSS, its CPU
-- per call, and the ratios ours/peer (a * marks a rate where the load
-- generator was saturated), then the goals; the JSON also has the load
-- average and the generator's CPU per call; writes DIR/latest.json, DIR/latest.md and DIR/latest.svg (the
-- chart, when gnuplot is installed). `make bench` installs what it needs.
-- --before DIR adds ours_before and ours_before_jit: our server from
-- another checkout (built with make and make LUA=luajit), serving this
-- tree's bench/peers/ours.lua, for before-and-after figures measured in
-- the same run. Each round then runs the two builds of one Lua back to back
-- (in a random order), and the before/after table gives the median of
-- those paired ratios with their spread: on a machine whose speed drifts,
-- a pair run together is compared, not two medians taken apart.
local uv = require "luv"

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
if HERE:sub(1, 1) ~= "/" then HERE = uv.cwd() .. "/" .. HERE end
local ROOT = HERE .. "/.."

local function parse_args(argv)
  local o = { runs = 5, seconds = 1.5, out = HERE .. "/results" }
  local i = 1
  while i <= #argv do
    local flag, value = argv[i], argv[i + 1]
    if flag == "--runs" then o.runs = assert(tonumber(value), "--runs N")
    elseif flag == "--seconds" then o.seconds = assert(tonumber(value), "--seconds S")
    elseif flag == "--only" then o.only = value
    elseif flag == "--workloads" then o.workloads = value
    elseif flag == "--out" then o.out = value
    elseif flag == "--before" then o.before = value
    else error("unknown argument " .. tostring(flag) .. " (see the head of bench/run.lua)") end
    i = i + 2
  end
  return o
end

local function set_of(list)
  if not list then return nil end
  local set = {}
  for name in list:gmatch("[^,]+") do set[name] = true end
  return set
end

---------------------------------------------------------------------------
-- The implementations: how to start each (it prints "listening on
-- tcp://127.0.0.1:PORT" on stdout or stderr once it listens).

-- stdio_argv: the same served over stdin and stdout (the stdio workloads).
local function ours(name, title, lua, root)
  local cli = (root or ROOT) .. "/bin/jsonrpc"
  local argv = { lua, cli, "serve", HERE .. "/peers/ours.lua",
                 "--listen", "tcp://127.0.0.1:0", "--max-message-size", "134217728" }
  local stdio_argv = { lua, cli, "serve", HERE .. "/peers/ours.lua", "--listen", "stdio:" }
  return { name = name, title = title, argv = argv, stdio_argv = stdio_argv }
end

local function lua_peer(name, title, lua, tuned)
  local argv = { lua, HERE .. "/peers/lua_server.lua", "0", tuned }
  local stdio_argv = { lua, HERE .. "/peers/lua_server.lua", "stdio:", tuned }
  return { name = name, title = title, argv = argv, stdio_argv = stdio_argv }
end

local IMPLEMENTATIONS = {
  ours("ours", "jsonrpc (ours)", "lua5.4"),
  -- the same on LuaJIT, as Neovim runs it
  ours("ours_jit", "jsonrpc (ours, LuaJIT)", "luajit"),
  -- pure Lua on luv and cjson, tuned (the answers to one read in one
  -- write), then framed the way Neovim's LSP client does (a write each)
  lua_peer("lua_tuned", "pure Lua, tuned (luv + cjson)", "lua5.4", "--tuned"),
  lua_peer("lua_tuned_jit", "pure Lua, tuned, LuaJIT", "luajit", "--tuned"),
  lua_peer("lua", "pure Lua, Neovim-style (luv + cjson)", "lua5.4"),
  lua_peer("lua_jit", "pure Lua, Neovim-style, LuaJIT", "luajit"),
  -- Node compiles as it runs: its tail latency is warm-up for a second or two
  { name = "vscode", title = "vscode-jsonrpc (Node)", warmup = 2,
    argv = { "node", HERE .. "/peers/vscode_server.js", "0" },
    stdio_argv = { "node", HERE .. "/peers/vscode_server.js", "stdio:" } },
  { name = "floor", title = "floor (C, no JSON)",
    argv = { ROOT .. "/build/bench/floor", "127.0.0.1", "0" },
    stdio_argv = { ROOT .. "/build/bench/floor", "stdio:" } },
}

---------------------------------------------------------------------------
-- The workloads: loadgen's arguments and what the rate counts.

local MIB = 1024 * 1024

-- The LSP-like messages (bench/peers/lsp_like.lua): params too large for a
-- flag go to files; a completion list's length is known in advance.
local function lsp_like_workloads()
  local jsonrpc = require "jsonrpc"
  local lsp_like = dofile(HERE .. "/peers/lsp_like.lua")
  local dir = ROOT .. "/build/bench/payloads"
  os.execute("mkdir -p '" .. dir .. "'")
  local function file(name, value)
    local path = dir .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(jsonrpc.encode(jsonrpc.array{ value }))
    f:close()
    return path
  end
  local function completion(n) return tostring(#jsonrpc.encode(lsp_like.completion(n))) end
  local diag, open = file("diagnostics.json", lsp_like.diagnostics(17)), file("did_open.json", lsp_like.did_open(7200))
  local small, large = completion(28), completion(82)
  return {
    { name = "complete1", title = "completion list 6.4 KB, 1 in flight", unit = "calls/s", lsp = true,
      args = { "-m", "complete", "-p", "[28]", "-L", small, "-n", "1" } },
    { name = "complete16", title = "completion list 6.4 KB, 16 in flight", unit = "calls/s", lsp = true,
      args = { "-m", "complete", "-p", "[28]", "-L", small, "-n", "16" } },
    { name = "complete16l", title = "completion list 18.7 KB, 16 in flight", unit = "calls/s", lsp = true,
      args = { "-m", "complete", "-p", "[82]", "-L", large, "-n", "16" } },
    { name = "diag16", title = "diagnostics 5.4 KB, 16 in flight", unit = "calls/s", lsp = true,
      args = { "-m", "diagnostics", "-P", diag, "-r", "17", "-n", "16" } },
    { name = "open1", title = "didOpen 8.5 KB, 1 in flight", unit = "calls/s", lsp = true,
      args = { "-m", "did_open", "-P", open, "-r", "42", "-n", "1" } },
    { name = "open16", title = "didOpen 8.5 KB, 16 in flight", unit = "calls/s", lsp = true,
      args = { "-m", "did_open", "-P", open, "-r", "42", "-n", "16" } },
    { name = "conn64", title = "completion 6.4 KB, 64 conns x 4", unit = "calls/s", lsp = true,
      args = { "-m", "complete", "-p", "[28]", "-L", small, "-c", "64", "-n", "4" } },
    -- stdio: the server is the load generator's child, on its stdin and
    -- stdout, as an editor runs a language server
    { name = "stdio_pipe", title = "stdio: add, 100 in flight", unit = "calls/s", stdio = true,
      args = { "-n", "100" } },
    { name = "stdio_complete", title = "stdio: completion 6.4 KB, 16 in flight", unit = "calls/s",
      stdio = true, lsp = true, args = { "-m", "complete", "-p", "[28]", "-L", small, "-n", "16" } },
    { name = "named", title = "named params, 100 in flight", unit = "calls/s",
      args = { "-m", "add_named", "-p", '{"a":1,"b":2}', "-r", "3", "-n", "100" } },
    -- open loop: a fixed arrival rate every implementation sustains, never
    -- waiting for answers, so the latencies are the servers' own
    { name = "open10k", title = "open loop: add at 10k calls/s", unit = "calls/s", open = true,
      args = { "-R", "10000" } },
    { name = "open_complete", title = "open loop: completion 6.4 KB at 3k calls/s", unit = "calls/s",
      open = true, args = { "-m", "complete", "-p", "[28]", "-L", small, "-R", "3000" } },
  }
end

local WORKLOADS = {
  { name = "pingpong", title = "ping-pong", unit = "calls/s", args = { "-n", "1" } },
  { name = "pipe1", title = "pipelined 1x100", unit = "calls/s", args = { "-n", "100" } },
  { name = "pipe4", title = "pipelined 4x100", unit = "calls/s", args = { "-c", "4", "-n", "100" } },
  -- as many calls in flight as pipe4: 4 connections, one batch of 100 each
  { name = "batch", title = "batches of 100, 4 conns", unit = "elements/s",
    args = { "-c", "4", "-b", "100", "-n", "1" },
    unsupported = { vscode = "no batch support" } },
  { name = "echo1m", title = "1 MiB echo", unit = "calls/s", args = { "-s", tostring(MIB), "-n", "1" } },
  -- large messages: after one call of warm-up, enough calls for a median
  -- time per call (p50); a fresh server per run, so 5 rounds are 25 and 45
  -- calls; then a single call to a fresh server, whose peak RSS is that of
  -- one message with no garbage of an earlier one
  { name = "echo16m", title = "16 MiB message", unit = "calls/s",
    args = { "-s", tostring(16 * MIB), "-N", "9", "-W", "1" }, counted = true },
  { name = "echo64m", title = "64 MiB message", unit = "calls/s",
    args = { "-s", tostring(64 * MIB), "-N", "5", "-W", "1" }, counted = true },
  { name = "single64m", title = "64 MiB message, one call to a fresh server", unit = "calls/s",
    args = { "-s", tostring(64 * MIB), "-N", "1", "-W", "0" }, counted = true },
  { name = "oneway", title = "1M notifications", unit = "notifications/s",
    args = { "-o", "1000000", "-W", "10000" }, counted = true },
  { name = "sleep", title = "1 ms timer, 64 in flight", unit = "calls/s",
    args = { "-m", "sleep", "-p", "[1]", "-n", "64" } },
}
for _, wl in ipairs(lsp_like_workloads()) do WORKLOADS[#WORKLOADS + 1] = wl end

---------------------------------------------------------------------------
-- Processes.

local function read_status(pid, field)
  local f = io.open(("/proc/%d/status"):format(pid))
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local kb = text:match(field .. ":%s*(%d+) kB")
  return kb and tonumber(kb) * 1024
end

-- Runs the loop until done() or the deadline (seconds from now).
local function run_until(done, seconds)
  local deadline = uv.now() + seconds * 1000
  local timer = uv.new_timer()
  timer:start(50, 50, function() end)   -- wakes the loop to check
  while not done() and uv.now() < deadline do uv.run("once") end
  timer:close()
  uv.run("nowait")
  return done()
end

-- Spawns argv pinned to a core; collects its output; on_line(line) for
-- each line (stdout and stderr).
local function spawn(argv, core, on_line)
  local out, err = uv.new_pipe(false), uv.new_pipe(false)
  local p = { output = {}, exited = false }
  local args = { "-c", tostring(core) }
  for _, a in ipairs(argv) do args[#args + 1] = a end
  local function reader(pipe)
    local partial = ""
    pipe:read_start(function(e, data)
      if e or not data then if not pipe:is_closing() then pipe:close() end return end
      p.output[#p.output + 1] = data
      partial = partial .. data
      for line in partial:gmatch("([^\n]*)\n") do if on_line then on_line(line) end end
      partial = partial:match("[^\n]*$")
    end)
  end
  local handle, pid = uv.spawn("taskset", { args = args, stdio = { nil, out, err } },
    function(code, signal)
      p.exited, p.code, p.signal = true, code, signal
    end)
  if not handle then error("cannot start " .. argv[1] .. ": " .. tostring(pid)) end
  p.handle, p.pid = handle, pid
  reader(out)
  reader(err)
  return p
end

local function stop(p)
  if not p.exited then
    p.handle:kill("sigterm")
    if not run_until(function() return p.exited end, 3) then
      p.handle:kill("sigkill")
      run_until(function() return p.exited end, 3)
    end
  end
  if not p.handle:is_closing() then p.handle:close() end
  uv.run("nowait")
end

local function start_server(impl)
  local port
  local p = spawn(impl.argv, 0, function(line)
    port = port or line:match("listening on tcp://[^%s]-:(%d+)")
  end)
  if not run_until(function() return port ~= nil or p.exited end, 20) or not port then
    stop(p)
    error(("%s did not start listening: %s"):format(impl.name, table.concat(p.output)))
  end
  return p, port
end

---------------------------------------------------------------------------
-- One measurement: a fresh server, one loadgen run, the server's peak RSS.

local function decode_line(text)
  -- loadgen prints one flat JSON object of numbers
  local t = {}
  for k, v in text:gmatch('"([%w_]+)":([%-%d%.e+]+)') do t[k] = tonumber(v) end
  return next(t) and t or nil
end

-- CPU seconds a process has used (user and system), from /proc.
local function cpu_seconds(pid)
  local f = io.open(("/proc/%d/stat"):format(pid))
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local fields = {}
  for w in text:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100   -- clock ticks
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  local text = f and f:read("l")
  if f then f:close() end
  return text and tonumber(text:match("^(%S+)"))
end

-- loadgen's arguments for one run of a workload: against a TCP port, or
-- for stdio with the server's argv (pinned to core 0) after "--".
local function loadgen_args(impl, workload, seconds, port)
  local args = workload.stdio and { "stdio:" } or { "127.0.0.1", port }
  for _, a in ipairs(workload.args) do args[#args + 1] = a end
  if not workload.counted then
    for _, a in ipairs({ "-d", tostring(seconds), "-w", tostring(impl.warmup or 0.5) }) do
      args[#args + 1] = a
    end
  end
  if workload.stdio then
    for _, a in ipairs({ "--", "taskset", "-c", "0" }) do args[#args + 1] = a end
    for _, a in ipairs(impl.stdio_argv) do args[#args + 1] = a end
  end
  return args
end

local function measure(impl, workload, seconds)
  local server, port
  if not workload.stdio then server, port = start_server(impl) end
  local warmup = impl.warmup or 0.5
  local load = loadavg()
  local gen = spawn({ ROOT .. "/build/bench/loadgen", table.unpack(loadgen_args(impl, workload, seconds, port)) }, 1)
  -- the server's CPU over loadgen's measured window (duration mode; over
  -- stdio, loadgen measures its child itself)
  local cpu_from, cpu_to
  if server and not workload.counted then
    local t = uv.new_timer()
    t:start(math.floor(warmup * 1000), 0, function()
      cpu_from = cpu_seconds(server.pid)
      t:start(math.floor(seconds * 1000), 0, function() cpu_to = cpu_seconds(server.pid); t:close() end)
    end)
  end
  local finished = run_until(function() return gen.exited end, seconds + warmup + 120)
  local rss = server and read_status(server.pid, "VmHWM")
  local server_died = server and server.exited
  if not finished then gen.handle:kill("sigkill"); run_until(function() return gen.exited end, 3) end
  stop(gen)
  if server then stop(server) end
  local out = table.concat(gen.output)
  local r = decode_line(out:match("{[^\n]*}") or "")
  if not finished or not r or server_died then
    return { failed = not finished and "timed out" or server_died and "server died"
                      or ("loadgen: " .. out:gsub("%s+$", "")) }
  end
  if r.errors > 0 then return { failed = ("%d bad responses"):format(r.errors) } end
  r.rss = rss or r.server_rss
  r.loadavg = load
  if r.server_cpu_s then cpu_from, cpu_to = 0, r.server_cpu_s end
  if cpu_from and cpu_to and r.calls > 0 then r.server_cpu_us_per_call = (cpu_to - cpu_from) / r.calls * 1e6 end
  if r.calls > 0 then r.loadgen_cpu_us_per_call = r.loadgen_cpu_s / r.calls * 1e6 end
  return r
end

---------------------------------------------------------------------------
-- Statistics and formatting.

local function median(values)
  local v = {}
  for i, x in ipairs(values) do v[i] = x end
  table.sort(v)
  local n = #v
  if n == 0 then return nil end
  if n % 2 == 1 then return v[(n + 1) // 2] end
  return (v[n // 2] + v[n // 2 + 1]) / 2
end

local function summarize(runs)
  local rates, p50s, p99s, p999s, rss, failed, saturated = {}, {}, {}, {}, 0, nil, 0
  local server_cpu, gen_cpu, loads = {}, {}, {}
  for _, r in ipairs(runs) do
    if r.failed then failed = r.failed
    else
      rates[#rates + 1] = r.calls_per_s
      p50s[#p50s + 1] = r.p50_us
      p99s[#p99s + 1] = r.p99_us
      p999s[#p999s + 1] = r.p999_us
      if r.rss and r.rss > rss then rss = r.rss end
      if r.saturated == 1 then saturated = saturated + 1 end
      server_cpu[#server_cpu + 1] = r.server_cpu_us_per_call
      gen_cpu[#gen_cpu + 1] = r.loadgen_cpu_us_per_call
      loads[#loads + 1] = r.loadavg
    end
  end
  if failed then return { failed = failed } end
  table.sort(rates)
  return { rate = median(rates), min = rates[1], max = rates[#rates],
           p50_us = median(p50s), p99_us = median(p99s), p999_us = median(p999s), rss = rss,
           runs = #rates,
           saturated_runs = saturated, server_cpu_us_per_call = median(server_cpu),
           loadgen_cpu_us_per_call = median(gen_cpu), loadavg = median(loads) }
end

local function si(x)
  if x == nil then return "-" end
  if x >= 1e6 then return ("%.2fM"):format(x / 1e6) end
  if x >= 1e4 then return ("%.0fk"):format(x / 1e3) end
  if x >= 1e3 then return ("%.1fk"):format(x / 1e3) end
  if x >= 100 then return ("%.0f"):format(x) end
  return ("%.2f"):format(x)
end

local function us(x)
  if x == nil or x == 0 then return "-" end
  if x >= 1e6 then return ("%.2f s"):format(x / 1e6) end
  if x >= 1e4 then return ("%.1f ms"):format(x / 1e3) end
  return ("%.0f us"):format(x)
end

local function mib(bytes)
  if not bytes or bytes == 0 then return "-" end
  return ("%.0f MiB"):format(bytes / MIB)
end

local function ratio(a, b)
  if not a or not b or b == 0 then return nil end
  return a / b
end

local function fmt_ratio(r)
  if not r then return "-" end
  return ("%.2fx"):format(r)
end

---------------------------------------------------------------------------
-- Goals, from the benchmark issue; printed, never fatal.

local function goals(res)
  local function rate(impl, wl)
    local s = res[wl] and res[wl][impl]
    return s and not s.failed and s.rate or nil
  end
  local function p50(impl, wl)
    local s = res[wl] and res[wl][impl]
    return s and not s.failed and s.p50_us or nil
  end
  local list = {}
  local function goal(text, value, target, higher_is_better)
    local met
    if value then met = (higher_is_better and value >= target) or (not higher_is_better and value <= target) end
    list[#list + 1] = { goal = text, value = value, target = target, met = met }
  end
  for _, wl in ipairs({ "pipe1", "pipe4" }) do
    goal(wl .. ": ours / tuned pure Lua >= 4", ratio(rate("ours", wl), rate("lua_tuned", wl)), 4, true)
    goal(wl .. ": ours (LuaJIT) / tuned pure Lua (LuaJIT) >= 4",
      ratio(rate("ours_jit", wl), rate("lua_tuned_jit", wl)), 4, true)
    goal(wl .. ": ours / vscode-jsonrpc >= 10", ratio(rate("ours", wl), rate("vscode", wl)), 10, true)
    goal(wl .. ": ours / floor >= 0.5", ratio(rate("ours", wl), rate("floor", wl)), 0.5, true)
  end
  goal("ping-pong p50 latency: ours / floor <= 1.2", ratio(p50("ours", "pingpong"), p50("floor", "pingpong")), 1.2, false)
  goal("batch elements/s / pipelined 4x100 calls/s >= 1", ratio(rate("ours", "batch"), rate("ours", "pipe4")), 1, true)
  goal("1 MiB echo: ours / tuned pure Lua >= 2", ratio(rate("ours", "echo1m"), rate("lua_tuned", "echo1m")), 2, true)
  -- linear: a 64 MiB message costs 4 times a 16 MiB one (both are far
  -- larger than the caches, so that only the growth shows)
  -- LSP-like messages (issue: honest benchmarks): at least 3x the tuned
  -- pure-Lua peer, on both Luas, and 0.4 of the floor
  for _, wl in ipairs(WORKLOADS) do
    if wl.lsp then
      goal(wl.name .. ": ours / tuned pure Lua >= 3", ratio(rate("ours", wl.name), rate("lua_tuned", wl.name)), 3, true)
      goal(wl.name .. ": ours (LuaJIT) / tuned pure Lua (LuaJIT) >= 3",
        ratio(rate("ours_jit", wl.name), rate("lua_tuned_jit", wl.name)), 3, true)
      goal(wl.name .. ": ours / floor >= 0.4", ratio(rate("ours", wl.name), rate("floor", wl.name)), 0.4, true)
    end
  end
  local r16, r64 = rate("ours", "echo16m"), rate("ours", "echo64m")
  goal("64 MiB message time / (4 x 16 MiB message time) <= 1.25", r16 and r64 and (r16 / r64) / 4, 1.25, false)
  local function peak(impl)
    local m
    for _, wl in pairs(res) do
      local s = wl[impl]
      if s and not s.failed and s.rss and s.rss > 0 then m = math.max(m or 0, s.rss) end
    end
    return m
  end
  local function rss(impl, wl)
    local s = res[wl] and res[wl][impl]
    return s and not s.failed and s.rss or nil
  end
  goal("peak RSS: ours / tuned pure Lua < 1", ratio(peak("ours"), peak("lua_tuned")), 1, false)
  goal("peak RSS of one 64 MiB call: ours / tuned pure Lua < 1",
    ratio(rss("ours", "single64m"), rss("lua_tuned", "single64m")), 1, false)
  goal("peak RSS: ours / vscode-jsonrpc < 1", ratio(peak("ours"), peak("vscode")), 1, false)
  return list
end

---------------------------------------------------------------------------
-- Output: the table, the JSON, the Markdown and the chart.

local function json_value(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type and math.type(v) == "integer" then return tostring(v) end
    return ("%.6g"):format(v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"'
  elseif t == "boolean" then return tostring(v)
  elseif t == "table" then
    local inner = indent .. "  "
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = inner .. json_value(x, inner) end
      return #parts == 0 and "[]" or "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = inner .. json_value(k) .. ": " .. json_value(v[k], inner) end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  end
  return "null"
end

local function capture(cmd)
  local f = io.popen(cmd .. " 2>/dev/null")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return (text:gsub("%s+$", ""))
end

local function machine()
  local cpu = capture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
  return {
    cpu = cpu and cpu:gsub("^%s+", ""),
    cores = tonumber(capture("nproc")),
    kernel = capture("uname -r"),
    lua = _VERSION,
    node = capture("node --version"),
    vscode_jsonrpc = capture("node -p \"require('" .. HERE .. "/peers/node_modules/vscode-jsonrpc/package.json').version\""),
  }
end

local function table_rows(res, selected_impls, selected_wls)
  local rows = {}
  rows[1] = { "workload", "implementation", "rate (median)", "min - max", "p50", "p99", "p99.9",
              "peak RSS", "server CPU/call", "ours / this" }
  for _, wl in ipairs(selected_wls) do
    local ours = res[wl.name].ours
    for _, impl in ipairs(selected_impls) do
      local s = res[wl.name][impl.name]
      local row
      if s.failed then
        row = { wl.title, impl.title, s.failed, "", "", "", "", "", "", "" }
      else
        -- *: in some run the load generator itself was saturated
        row = { wl.title, impl.title, si(s.rate) .. " " .. wl.unit .. (s.saturated_runs > 0 and " *" or ""),
                si(s.min) .. " - " .. si(s.max), us(s.p50_us), us(s.p99_us), us(s.p999_us), mib(s.rss),
                s.server_cpu_us_per_call and ("%.2f us"):format(s.server_cpu_us_per_call) or "-",
                impl.name == "ours" and "" or fmt_ratio(ours and not ours.failed and ratio(ours.rate, s.rate)) }
      end
      rows[#rows + 1] = row
    end
  end
  return rows
end

local function print_table(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell) end
  end
  for r, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do cells[i] = cell .. (" "):rep(widths[i] - (utf8.len(cell) or #cell)) end
    print(table.concat(cells, "  "))
    if r == 1 then
      local bars = {}
      for i, w in ipairs(widths) do bars[i] = ("-"):rep(w) end
      print(table.concat(bars, "  "))
    end
  end
end

-- The builds compared by --before: after and before, for each Lua.
local PAIRS = { { "ours", "ours_before", "Lua 5.4" }, { "ours_jit", "ours_before_jit", "LuaJIT" } }

-- A round's order with each pair of builds side by side.
local function paired_order(order)
  local out, placed = {}, {}
  local partner = {}
  for _, p in ipairs(PAIRS) do partner[p[1]], partner[p[2]] = p[2], p[1] end
  local by_name = {}
  for _, impl in ipairs(order) do by_name[impl.name] = impl end
  for _, impl in ipairs(order) do
    if not placed[impl.name] then
      out[#out + 1], placed[impl.name] = impl, true
      local mate = by_name[partner[impl.name] or ""]
      if mate and not placed[mate.name] then out[#out + 1], placed[mate.name] = mate, true end
    end
  end
  return out
end

-- Per pair: the median of the rounds' after/before ratios, min and max.
local function paired_ratios(runs)
  local out = {}
  for _, p in ipairs(PAIRS) do
    local after, before, ratios = runs[p[1]], runs[p[2]], {}
    for i = 1, math.min(after and #after or 0, before and #before or 0) do
      local a, b = after[i], before[i]
      if not a.failed and not b.failed and b.calls_per_s > 0 then
        ratios[#ratios + 1] = a.calls_per_s / b.calls_per_s
      end
    end
    if #ratios > 0 then
      table.sort(ratios)
      out[p[1]] = { median = median(ratios), min = ratios[1], max = ratios[#ratios], rounds = #ratios }
    end
  end
  return next(out) and out or nil
end

local PAIRED_HEADING = "Before and after, paired: the two builds of one Lua run back to back each round."

local function paired_table(wls, paired)
  local lines = { "| workload | " .. PAIRS[1][3] .. ": after / before (min - max) | "
                  .. PAIRS[2][3] .. ": after / before (min - max) |", "| --- | --- | --- |" }
  for _, wl in ipairs(wls) do
    local row = paired[wl.name]
    if row then
      local cells = {}
      for i, p in ipairs(PAIRS) do
        local r = row[p[1]]
        cells[i] = r and ("%.2f (%.2f - %.2f)"):format(r.median, r.min, r.max) or "-"
      end
      lines[#lines + 1] = ("| %s | %s | %s |"):format(wl.title, cells[1], cells[2])
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

local function markdown(rows, goal_list, wls, paired)
  local lines = {}
  for r, row in ipairs(rows) do
    lines[#lines + 1] = "| " .. table.concat(row, " | ") .. " |"
    if r == 1 then lines[#lines + 1] = "|" .. (" --- |"):rep(#row) end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "| goal | measured | met |"
  lines[#lines + 1] = "| --- | --- | --- |"
  for _, g in ipairs(goal_list) do
    lines[#lines + 1] = ("| %s | %s | %s |"):format(g.goal, g.value and ("%.2f"):format(g.value) or "-",
      g.met == nil and "not measured" or g.met and "yes" or "**no**")
  end
  if next(paired) then   -- after the goals: bench/readme.lua splits there
    lines[#lines + 1] = ""
    lines[#lines + 1] = PAIRED_HEADING
    lines[#lines + 1] = ""
    lines[#lines + 1] = paired_table(wls, paired)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- The chart: each implementation's rate as a fraction of the floor's, per
-- workload, on a log scale (the floor is 1).
local function chart(res, selected_impls, selected_wls, dir)
  if not capture("command -v gnuplot") or capture("command -v gnuplot") == "" then
    return nil, "gnuplot is not installed"
  end
  local data = dir .. "/latest.dat"
  local f = assert(io.open(data, "w"))
  local peers = {}
  local has_floor = false
  for _, impl in ipairs(selected_impls) do
    if impl.name == "floor" then has_floor = true else peers[#peers + 1] = impl end
  end
  if not has_floor or #peers == 0 then
    f:close()
    os.remove(data)
    return nil, "the chart needs the floor and another server"
  end
  for _, wl in ipairs(selected_wls) do
    local floor = res[wl.name].floor
    local cells = { '"' .. wl.title .. '"' }
    for _, impl in ipairs(peers) do
      local s = res[wl.name][impl.name]
      local r = floor and not floor.failed and s and not s.failed and ratio(s.rate, floor.rate)
      cells[#cells + 1] = r and ("%.4f"):format(r) or "-"
    end
    f:write(table.concat(cells, " "), "\n")
  end
  f:close()
  local plots = {}
  for i, impl in ipairs(peers) do
    plots[i] = ("'%s' using %d:xtic(1) title '%s'"):format(data, i + 1, impl.title)
  end
  local script = table.concat({
    "set terminal svg size 960,440 dynamic font 'sans,12' background '#ffffff'",
    "set output '" .. dir .. "/latest.svg'",
    "set title 'Throughput as a fraction of the floor (C, no JSON parsing = 1); higher is better'",
    "set style data histograms",
    "set style histogram clustered gap 1",
    "set style fill solid 0.85 border -1",
    "set boxwidth 0.9",
    "set datafile missing '-'",
    "set logscale y",
    "set yrange [0.003:2]",
    "set ytics ('0.01' 0.01, '0.1' 0.1, '0.5' 0.5, '1' 1)",
    "set grid ytics",
    "set key outside top center horizontal",
    "set xtics rotate by -20",
    "plot " .. table.concat(plots, ", "),
  }, "\n")
  local gp = assert(io.popen("gnuplot 2>&1", "w"))
  gp:write(script, "\n")
  local ok = gp:close()
  os.remove(data)
  if not ok then return nil, "gnuplot failed" end
  return dir .. "/latest.svg"
end

---------------------------------------------------------------------------

local function main(argv)
  local o = parse_args(argv)
  local only, only_wl = set_of(o.only), set_of(o.workloads)
  local impls, wls = {}, {}
  if o.before then
    table.insert(IMPLEMENTATIONS, 3, ours("ours_before", "jsonrpc (ours), before", "lua5.4", o.before))
    table.insert(IMPLEMENTATIONS, 4, ours("ours_before_jit", "jsonrpc (ours, LuaJIT), before", "luajit", o.before))
  end
  for _, impl in ipairs(IMPLEMENTATIONS) do if not only or only[impl.name] then impls[#impls + 1] = impl end end
  for _, wl in ipairs(WORKLOADS) do if not only_wl or only_wl[wl.name] then wls[#wls + 1] = wl end end
  io.stdout:setvbuf("line")
  print(("benchmarks: %d implementations x %d workloads x %d runs, %g s each after 0.5 s of warm-up; "
         .. "server on core 0, load generator on core 1"):format(#impls, #wls, o.runs, o.seconds))
  local res, paired = {}, {}
  math.randomseed(os.time())
  for _, wl in ipairs(wls) do
    -- rounds: every implementation once per round, in a fresh random
    -- order, so that background load does not land on one of them
    local runs = {}
    for _, impl in ipairs(impls) do runs[impl.name] = {} end
    for _ = 1, o.runs do
      local order = {}
      for i, impl in ipairs(impls) do order[i] = impl end
      for i = #order, 2, -1 do
        local j = math.random(i)
        order[i], order[j] = order[j], order[i]
      end
      if o.before then order = paired_order(order) end
      for _, impl in ipairs(order) do
        if not (wl.unsupported and wl.unsupported[impl.name]) then
          local ok, r = pcall(measure, impl, wl, o.seconds)
          local list = runs[impl.name]
          list[#list + 1] = ok and r or { failed = tostring(r) }
        end
      end
    end
    res[wl.name] = {}
    paired[wl.name] = o.before and paired_ratios(runs) or nil
    for _, impl in ipairs(impls) do
      local why = wl.unsupported and wl.unsupported[impl.name]
      res[wl.name][impl.name] = why and { failed = why } or summarize(runs[impl.name])
      local s = res[wl.name][impl.name]
      io.stderr:write(("  %-10s %-14s %s\n"):format(wl.name, impl.name,
        s.failed and s.failed or (si(s.rate) .. " " .. wl.unit .. (s.saturated_runs > 0 and " (load generator saturated)" or ""))))
    end
  end
  local rows = table_rows(res, impls, wls)
  print("")
  print_table(rows)
  if next(paired) then
    print("")
    io.write(paired_table(wls, paired))
  end
  local goal_list = goals(res)
  print("")
  print("Goals (never fatal):")
  for _, g in ipairs(goal_list) do
    print(("  %-55s %8s   %s"):format(g.goal, g.value and ("%.2f"):format(g.value) or "-",
      g.met == nil and "not measured" or g.met and "met" or "MISSED"))
  end
  os.execute("mkdir -p '" .. o.out .. "'")
  local results = { machine = machine(), date = os.date("!%Y-%m-%dT%H:%M:%SZ"), runs = o.runs,
                    seconds = o.seconds, workloads = {}, goals = goal_list }
  for _, wl in ipairs(wls) do
    local per = { title = wl.title, unit = wl.unit, loadgen = wl.args, results = res[wl.name],
                  paired = paired[wl.name] }
    results.workloads[wl.name] = per
  end
  local f = assert(io.open(o.out .. "/latest.json", "w"))
  f:write(json_value(results), "\n")
  f:close()
  f = assert(io.open(o.out .. "/latest.md", "w"))
  f:write(markdown(rows, goal_list, wls, paired))
  f:close()
  local svg, why = chart(res, impls, wls, o.out)
  print("")
  print("wrote " .. o.out .. "/latest.json, " .. o.out .. "/latest.md"
        .. (svg and (", " .. svg) or (" (no chart: " .. why .. ")")))
end

main(arg)
