-- wrk script: POSTs the body in $BENCH_BODY (a file) and counts the
-- answers that are not what $BENCH_EXPECT (a Lua pattern) and
-- $BENCH_COUNT (its occurrences) say: a wrong answer is not a request
-- served. Prints "wrong N" at the end.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local expect, count = os.getenv("BENCH_EXPECT"), tonumber(os.getenv("BENCH_COUNT"))
local threads = {}
wrong = 0

function setup(thread) threads[#threads + 1] = thread end

function response(status, _, body)
  if status ~= 200 then wrong = wrong + 1; return end
  local _, n = body:gsub(expect, "")
  if n ~= count then wrong = wrong + 1 end
end

function done()
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("wrong") end
  io.write(("wrong %d\n"):format(total))
end
