--- Shared by the benchmarks: timing that calibrates itself, and comparison
-- of decoded values. Settings: BENCH_TARGET (seconds per repetition),
-- BENCH_REPS (repetitions).
local clock, ceil, format, sort = os.clock, math.ceil, string.format, table.sort

local M = {}

M.REPS = math.max(1, tonumber(os.getenv("BENCH_REPS") or "") or 5)

-- (two loops: some C functions, cjson's among them, refuse an extra nil)
local function run(fn, a, b, n)
  local t0 = clock()
  if b == nil then
    for _ = 1, n do fn(a) end
  else
    for _ = 1, n do fn(a, b) end
  end
  return clock() - t0
end

-- Iterations for a repetition to take about target seconds, and the time of
-- the run that confirmed it. A probe only counts once a run with the chosen
-- count lands near the target: a one-off stall (a GC atomic phase, a buffer
-- resize) in a short probe would otherwise pick a count far too small.
local function calibrate(fn, a, b, target)
  local n = 1
  for _ = 1, 60 do
    collectgarbage()
    local t = run(fn, a, b, n)
    if t >= target * 0.6 and (t <= target * 1.6 or n == 1) then
      return n, t
    end
    if t >= target / 4 then
      n = math.max(1, ceil(n * target / t))
    elseif t < target / 100 then
      n = n * 10
    else
      n = n * 2
    end
  end
  collectgarbage()
  return n, run(fn, a, b, n)
end

--- Two functions timed alternately (fn1(a1, b1) and fn2(a2, b2), which goes first
-- swapping each round), so that background load and frequency changes fall
-- on both alike; REPS rounds (at least 5). Returns the median ratio of
-- their times per call (fn2 / fn1: above 1 when fn1 is faster), its min
-- and max over the rounds, and each one's median seconds per call; or
-- nil and an error.
function M.compare(fn1, a1, b1, fn2, a2, b2, target)
  target = tonumber(os.getenv("BENCH_TARGET") or "") or target or 0.3
  local ok, r = pcall(function()
    run(fn1, a1, b1, 10)
    run(fn2, a2, b2, 10)
    local n1 = calibrate(fn1, a1, b1, target)
    local n2 = calibrate(fn2, a2, b2, target)
    local ratios, t1s, t2s = {}, {}, {}
    for i = 1, math.max(5, M.REPS) do
      local t1, t2
      collectgarbage()
      if i % 2 == 1 then
        t1 = run(fn1, a1, b1, n1) / n1
        collectgarbage()
        t2 = run(fn2, a2, b2, n2) / n2
      else
        t2 = run(fn2, a2, b2, n2) / n2
        collectgarbage()
        t1 = run(fn1, a1, b1, n1) / n1
      end
      ratios[i], t1s[i], t2s[i] = t2 / t1, t1, t2
    end
    local function median(v)
      sort(v)
      local m = #v
      return (m % 2 == 1) and v[(m + 1) / 2] or (v[m / 2] + v[m / 2 + 1]) / 2
    end
    local med = median(ratios)
    return { ratio = med, min = ratios[1], max = ratios[#ratios], t1 = median(t1s), t2 = median(t2s) }
  end)
  if ok then return r end
  return nil, tostring(r)
end

--- Seconds per call of fn(a, b): the best and the median of REPS
-- repetitions of about `target` seconds each (BENCH_TARGET overrides it);
-- or nil, nil, err when fn fails.
function M.measure(fn, a, b, target)
  target = tonumber(os.getenv("BENCH_TARGET") or "") or target or 0.3
  local ok, best, median = pcall(function()
    run(fn, a, b, 10)                   -- warm up (first-call costs, JIT traces)
    local n, t1 = calibrate(fn, a, b, target)   -- the confirming run is rep 1
    local times = {t1}
    for i = 2, M.REPS do
      collectgarbage()
      times[i] = run(fn, a, b, n)
    end
    sort(times)
    local m = #times
    local med = (m % 2 == 1) and times[(m + 1) / 2] or (times[m / 2] + times[m / 2 + 1]) / 2
    return times[1] / n, med / n
  end)
  if ok then return best, median end
  return nil, nil, tostring(best)
end

--- Deep equality of decoded values (raw access); false and where they
-- differ otherwise.
function M.deepeq(a, b, path)
  path = path or "$"
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return false, format("%s: %s vs %s", path, ta, tb)
  end
  if ta == "table" then
    for k, v in pairs(a) do
      local ok, where = M.deepeq(v, rawget(b, k), path .. "[" .. tostring(k) .. "]")
      if not ok then return false, where end
    end
    for k in pairs(b) do
      if rawget(a, k) == nil then
        return false, path .. "[" .. tostring(k) .. "]: missing"
      end
    end
    return true
  end
  if a == b then return true end
  if ta == "string" then
    return false, format("%s: strings differ (%d vs %d bytes)", path, #a, #b)
  end
  return false, format("%s: %s vs %s", path, tostring(a), tostring(b))
end

--- Prints the goal's line (MET, or the rows below it), the sanity
-- warnings, and the CPU time since t_start.
function M.print_goal(goal, below, warnings, t_start)
  if #below == 0 then
    print(goal .. ": MET")
  else
    print(goal .. ": NOT MET; below: " .. table.concat(below, ", "))
  end
  if warnings > 0 then
    print(format("(%d warning(s) above)", warnings))
  end
  print(format("total cpu time %.1f s", clock() - t_start))
end

return M
