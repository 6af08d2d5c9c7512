-- Builds bench/README.md from the template bench/README.in.md and the
-- results of the latest `make bench`: the tables of results/latest.md and
-- the figures of results/latest.json. The prose lives in the template; the
-- figures are never pasted by hand.
--
--   lua5.4 bench/readme.lua [RESULTS_DIR [OUTPUT]]
--       RESULTS_DIR defaults to bench/results, OUTPUT to bench/README.md.
--   It may also be called from Lua: assert(loadfile("bench/readme.lua"))(dir).
--
-- Fields of the template, {{NAME ARG...}}; IMPL is an implementation's key
-- in latest.json (ours, ours_jit, ours_before, ours_before_jit, lua_tuned,
-- lua_tuned_jit, lua, lua_jit, vscode, floor), WL a workload's (pipe1...):
--   {{run}}                       when, how long and on what the run was made
--   {{results}}                   the table of every workload (latest.md)
--   {{goals}}                     the table of goals (latest.md)
--   {{paired}}                    with --before, the paired before/after table
--   {{goals_met}}                 "N of M": the goals met, of those measured
--   {{ratio WL A B}}              A's rate over B's in WL, as 6.6 (0.13 below 1, 21 from 10)
--   {{range WL,WL... A B}}        the least and the greatest of those ratios, "1.1 to 2.2"
--   {{rss_ratio WL A B}}          A's peak RSS over B's in WL (WL * : the peak of every workload)
--   {{latency WL IMPL p50|p99|p999}}  as the table writes it, "324 us"
--   {{cpu WL IMPL}}               the server's CPU per call, "41 us"
--   {{linearity IMPL}}            (rate at 16 MiB / rate at 64 MiB) / 4, as 1.24
-- A figure the results lack (a run narrowed with --only or --workloads)
-- is written "n/a", with a warning on stderr; an unknown field is an error.
local args = { ... }
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."
local results_dir = args[1] or (here .. "/results")
local output = args[2] or (here .. "/README.md")
local template_path = here .. "/README.in.md"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- A JSON decoder: lua-cjson (a dependency of the benchmarks), or our own
-- module from this checkout.
local function json_decoder()
  local ok, cjson = pcall(require, "cjson")
  if ok then return cjson.decode end
  local v = _VERSION:match("%d+%.%d+")
  package.path = ("%s/../lua/?.lua;%s/../lua/?/init.lua;"):format(here, here) .. package.path
  package.cpath = ("%s/../build/%s/?.so;"):format(here, jit and "luajit" or v) .. package.cpath
  local jsonrpc = require "jsonrpc"
  return function(text) return assert(jsonrpc.decode(text)) end
end

local data = json_decoder()(read(results_dir .. "/latest.json"))
local markdown = read(results_dir .. "/latest.md")

-- latest.md: the table of results, a blank line, the table of goals.
local results_table, goals_table = markdown:match("^(.-)\n%s*\n(.-)%s*$")
if not results_table then results_table, goals_table = markdown:gsub("%s+$", ""), "" end
-- with --before, the paired before/after table follows the goals
local paired_table = ""
do
  local at = goals_table:find("\n%s*\nBefore and after, paired")
  if at then
    paired_table = goals_table:sub(at):gsub("^%s+", ""):gsub("%s+$", "")
    goals_table = goals_table:sub(1, at - 1)
  end
end

local warnings = 0
local function missing(what)
  warnings = warnings + 1
  io.stderr:write("bench/readme.lua: no figure for ", what, " in ", results_dir, "/latest.json\n")
  return "n/a"
end

local function result(wl, impl)
  local w = data.workloads and data.workloads[wl]
  local r = w and w.results and w.results[impl]
  if type(r) ~= "table" or r.failed then return nil end
  return r
end

local function rate_ratio(wl, a, b)
  local ra, rb = result(wl, a), result(wl, b)
  if not (ra and rb and ra.rate and rb.rate and rb.rate > 0) then return nil end
  return ra.rate / rb.rate
end

local function us(x)
  if x >= 1e6 then return ("%.2f s"):format(x / 1e6) end
  if x >= 1e4 then return ("%.1f ms"):format(x / 1e3) end
  return ("%.0f us"):format(x)
end

local function peak_rss(impl)
  local m
  for wl in pairs(data.workloads or {}) do
    local r = result(wl, impl)
    if r and r.rss and r.rss > 0 then m = math.max(m or 0, r.rss) end
  end
  return m
end

-- Ratios and times with two significant digits or so: 6.6, 0.13, 41.
local function fixed(x)
  if x < 1 then return ("%.2f"):format(x) end
  if x < 10 then return ("%.1f"):format(x) end
  return ("%.0f"):format(x)
end

local function number(x)
  if type(x) == "number" and x == math.floor(x) then return ("%d"):format(x) end
  return tostring(x)
end

local function split(s, sep)
  local parts = {}
  for p in s:gmatch("[^" .. sep .. "]+") do parts[#parts + 1] = p end
  return parts
end

local fields = {}

function fields.run()
  local m = data.machine or {}
  local parts = {}
  parts[#parts + 1] = ("Run on %s, %d rounds of %s s per workload"):format(
    tostring(data.date or "?"):gsub("T", " "):gsub("Z$", " UTC"), data.runs or 0, number(data.seconds or "?"))
  local machine = {}
  if m.cores then machine[#machine + 1] = ("%d cores (%s)"):format(m.cores, m.cpu or "?") end
  if m.kernel then machine[#machine + 1] = "Linux " .. m.kernel end
  if m.lua then machine[#machine + 1] = m.lua end
  if m.node then
    machine[#machine + 1] = "Node.js " .. m.node
      .. (m.vscode_jsonrpc and (" with vscode-jsonrpc " .. m.vscode_jsonrpc) or "")
  end
  local text = parts[1] .. (#machine > 0 and (", on " .. table.concat(machine, ", ")) or "")
  if result("pingpong", "ours_before") or result("pipe1", "ours_before") then
    text = text .. "; with `--before`, an earlier build of ours (\"before\") beside the current one"
  end
  return text .. "."
end

function fields.results() return results_table end
function fields.goals() return goals_table end
function fields.paired() return paired_table end

function fields.goals_met()
  local met, measured = 0, 0
  for _, g in ipairs(data.goals or {}) do
    if g.met ~= nil then
      measured = measured + 1
      if g.met then met = met + 1 end
    end
  end
  return ("%d of %d"):format(met, measured)
end

function fields.ratio(wl, a, b)
  local r = rate_ratio(wl, a, b)
  return r and fixed(r) or missing(("%s / %s in %s"):format(a, b, wl))
end

function fields.range(wls, a, b)
  local lo, hi
  for _, wl in ipairs(split(wls, ",")) do
    local r = rate_ratio(wl, a, b)
    if not r then return missing(("%s / %s in %s"):format(a, b, wl)) end
    lo, hi = math.min(lo or r, r), math.max(hi or r, r)
  end
  local l, h = fixed(lo), fixed(hi)
  return l == h and l or (l .. " to " .. h)
end

function fields.rss_ratio(wl, a, b)
  local ra, rb
  if wl == "*" then
    ra, rb = peak_rss(a), peak_rss(b)
  else
    ra, rb = result(wl, a), result(wl, b)
    ra, rb = ra and ra.rss, rb and rb.rss
  end
  if not (ra and rb and rb > 0) then return missing(("peak RSS %s / %s in %s"):format(a, b, wl)) end
  return fixed(ra / rb)
end

function fields.latency(wl, impl, which)
  local r = result(wl, impl)
  local v = r and r[which .. "_us"]
  if not v or v == 0 then return missing(("%s of %s in %s"):format(which, impl, wl)) end
  return us(v)
end

function fields.cpu(wl, impl)
  local r = result(wl, impl)
  local v = r and r.server_cpu_us_per_call
  if not v then return missing(("the CPU per call of %s in %s"):format(impl, wl)) end
  return fixed(v) .. " us"
end

function fields.linearity(impl)
  local r16, r64 = result("echo16m", impl), result("echo64m", impl)
  if not (r16 and r64 and r64.rate and r64.rate > 0) then
    return missing("the 16 and 64 MiB rates of " .. impl)
  end
  return ("%.2f"):format(r16.rate / r64.rate / 4)
end

local template = read(template_path)
-- the template's note to its editors becomes a note that this is generated
template = template:gsub("<!%-%- bench/README.md is generated.-%-%->\n",
  "<!-- Generated by bench/readme.lua from bench/README.in.md and bench/results/:\n"
  .. "     edit the template, not this file. -->\n", 1)
local unpack = table.unpack or unpack
local text = template:gsub("{{(.-)}}", function(spec)
  local words = split(spec, "%s")
  local fn = fields[words[1]]
  if not fn then error(("%s: unknown field {{%s}}"):format(template_path, spec), 0) end
  return (fn(unpack(words, 2)))
end)

local f = assert(io.open(output, "wb"))
f:write(text)
f:close()
print(("wrote %s%s"):format(output, warnings > 0 and (" (" .. warnings .. " figures missing)") or ""))
