-- Hardening: what hostile or broken peers do to a server, on real sockets
-- and real processes. No client may crash, starve or bloat the server.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"
local raw = require "spec.support.raw"
local run_until = util.run_until

local codes = jsonrpc.codes
local lua = util.interpreter()
-- Under AddressSanitizer (the suite preloads it) freed memory waits in a
-- quarantine and every block has red zones: the RSS bounds below are
-- asserted on native builds only; the behaviour is checked everywhere.
local sanitized = (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) ~= nil
local plain_lua51 = _VERSION == "Lua 5.1" and not jit
local CMD = lua .. " bin/jsonrpc"

local sh = util.sh

--- Content-length frames of n pipelined calls to method, about `bytes` long.
local function pipelined(method, params, bytes)
  local parts, total, id = {}, 0, 0
  while total < bytes do
    id = id + 1
    local body = ('{"jsonrpc":"2.0","method":"%s","params":%s,"id":%d}'):format(method, params, id)
    local frame = ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
    parts[#parts + 1] = frame
    total = total + #frame
  end
  return table.concat(parts), id
end

--- Starts `jsonrpc serve spec/support/calc.lua` with the given listen URL
-- and flags (after a shell prefix such as a ulimit); returns the background
-- process and the URL it listens on.
local function serve(listen, flags, prefix)
  local bg = util.background(("%sexec %s serve spec/support/calc.lua --listen %s %s")
    :format(prefix or "", CMD, listen, flags or ""))
  local url = bg.wait_for("listening on (%S+)")
  assert(url, "the server did not start: " .. bg.stderr())
  return bg, url
end

--- The server answers a call (it is alive and serving).
local function answers(url)
  local conn = jsonrpc.connect(url, { timeout = 5 })
  if not conn then return false end
  local ok, result = pcall(conn.call, conn, "add", {20, 22})
  conn:close()
  return ok and result == 42
end

local function stop(bg)
  bg.signal("TERM")
  local status = bg.wait()
  bg.cleanup()
  return status
end

describe("SIGPIPE", function()
  it("is ignored once the module is loaded (a host's own disposition is kept)", function()
    local out = sh(lua .. [[ -e '
      require "jsonrpc"
      os.execute("grep SigIgn /proc/$PPID/status")' 2>&1]])
    -- SIGPIPE is signal 13: bit 12 of the ignored mask
    local mask = tonumber(out:match("SigIgn:%s*(%x+)"), 16)
    assert.is_truthy(mask, out)
    assert.equal(1, math.floor(mask / 2 ^ 12) % 2)
    -- a host that handles SIGPIPE itself (here through luv) keeps its handler
    out = sh(lua .. [[ -e '
      local uv = require "luv"
      local s = uv.new_signal()
      s:start("sigpipe", function() end)
      require "jsonrpc"
      os.execute("grep -E \"SigIgn|SigCgt\" /proc/$PPID/status")' 2>&1]])
    mask = tonumber(out:match("SigIgn:%s*(%x+)"), 16)
    local caught = tonumber(out:match("SigCgt:%s*(%x+)"), 16)
    assert.equal(0, math.floor(mask / 2 ^ 12) % 2)
    assert.equal(1, math.floor(caught / 2 ^ 12) % 2)
  end)

  for _, kind in ipairs{ "tcp", "unix" } do
    it("never kills a server whose " .. kind .. " client pipelines 76,000 bytes and closes unread", function()
      local dir = os.tmpname()
      local listen = kind == "tcp" and "tcp://127.0.0.1:0" or ("unix://" .. dir .. ".sock")
      local bg, url = serve(listen)
      for _ = 1, 4 do
        local c = assert(raw.connect(url, run_until))
        c:stop_reading()
        c:write((pipelined("add", "[1,2]", 76000)))
        c:close()   -- at once: the server answers into a closed socket
        run_until(function() return false end, 100)
      end
      assert.is_true(answers(url), bg.stderr())
      assert.equal(0, stop(bg))
    end)
  end

  it("never kills a server whose client pipelines 128 calls to a waiting handler and closes", function()
    local bg, url = serve("tcp://127.0.0.1:0")
    local c = assert(raw.connect(url, run_until))
    c:write((pipelined("sleep", "[200]", 1)):rep(1))
    local many = {}
    for i = 1, 128 do
      local body = ('{"jsonrpc":"2.0","method":"sleep","params":[100],"id":%d}'):format(i)
      many[i] = ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
    end
    c:write(table.concat(many))
    run_until(function() return false end, 30)
    c:close(true)
    run_until(function() return false end, 400)
    assert.is_true(answers(url), bg.stderr())
    assert.equal(0, stop(bg))
  end)

  it("never kills a stdio server whose stdout reader exits", function()
    local input = os.tmpname()
    local f = assert(io.open(input, "wb"))
    f:write((pipelined("add", "[1,2]", 200000)))
    f:close()
    -- the reader takes 10 bytes and exits; the server goes on answering
    -- into the broken pipe, with stdin still open
    local out = sh(("bash -c '(cat %s 2>/dev/null; sleep 2) | %s serve spec/support/calc.lua --listen stdio: "
      .. "2>/dev/null | head -c 10 >/dev/null; echo \"server=${PIPESTATUS[1]}\"'"):format(input, CMD))
    os.remove(input)
    local status = tonumber(out:match("server=(%d+)"))
    assert.is_truthy(status, out)
    assert.are_not.equal(141, status, "killed by SIGPIPE")
    assert.equal(0, status)
  end)

  it("never kills a caller whose spawned child closed its stdin; the call fails", function()
    local out, code = sh(lua .. [[ -e '
      local jsonrpc = require "jsonrpc"
      local conn = assert(jsonrpc.spawn({"sh", "-c", "exec 0<&-; sleep 1"}))
      local uv = require "luv"
      local t = uv.new_timer()   -- let the child close its stdin first
      local fired
      t:start(300, 0, function() fired = true; t:close() end)
      while not fired do uv.run("once") end
      local r, err = conn:try_call("add", {1, 2}, {timeout = 5})
      print(r, err and err.code, err and err.message, err and err.data and err.data.errno)' 2>&1]])
    assert.equal(0, code, out)
    assert.matches("nil\t" .. codes.CONNECTION_CLOSED .. "\tconnection closed: write failed", out, 1, true)
    assert.matches("\tEPIPE\n", out, 1, true)   -- the libuv error's name, in err.data.errno
  end)
end)

--- A server in this process with the methods the specs below use.
local function test_server()
  local server = jsonrpc.server()
  server:method("add", function(a, b) return a + b end)
  server:method("sleep", function(ms)
    local uv = require "luv"
    local co = coroutine.running()
    local t = uv.new_timer()
    t:start(ms, 0, function() t:close(); coroutine.resume(co) end)
    coroutine.yield()
    return ms
  end)
  server:method("flood", function(ctx, n, size)
    local payload = ("x"):rep(size)
    for i = 1, n do ctx.connection:notify("tick", {i, payload}) end
    return n
  end, {context = true})
  return server
end

local function frame(body)
  return ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
end

local function wait(ms) run_until(function() return false end, ms) end

describe("server-side timeouts", function()
  local server, closes, errors
  before_each(function()
    server = test_server()
    closes, errors = {}, {}
  end)
  after_each(function()
    server:close()
    jsonrpc.run("nowait")
  end)

  local function listen(opts)
    opts.on_close = function(reason) closes[#closes + 1] = reason end
    opts.on_error = function(message) errors[#errors + 1] = message end
    return assert(server:listen("tcp://127.0.0.1:0", opts))
  end

  local function count(list, pattern)
    local n = 0
    for _, v in ipairs(list) do if v:find(pattern, 1, true) then n = n + 1 end end
    return n
  end

  it("closes slowloris connections at the frame timeout; others are served", function()
    local l = listen{ frame_timeout = 0.3 }
    local clients = {}
    for i = 1, 40 do
      local c = assert(raw.connect(l.url, run_until))
      c:write(i % 2 == 0 and "Content-Len" or frame('{"jsonrpc":"2.0","method":"add"'):sub(1, 30))
      clients[i] = c
    end
    -- ten more trickle a body a byte at a time, faster than the timeout
    local body = frame('{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}')
    local trickle = {}
    for i = 1, 10 do trickle[i] = assert(raw.connect(l.url, run_until)) end
    local closed_early
    for pos = 1, 12 do   -- 0.6 s: twice the timeout
      for _, c in ipairs(trickle) do c:write(body:sub(pos, pos)) end
      wait(50)
      if pos == 4 then closed_early = #closes end   -- 0.2 s in: none yet
    end
    assert.equal(0, closed_early)
    local good = assert(jsonrpc.connect(l.url))
    assert.equal(3, good:call("add", {1, 2}))
    -- all at about 0.3 s: by now (0.6 s), with a little slack
    assert.is_true(run_until(function() return #closes >= 50 end, 150), #closes .. " closed")
    assert.equal(50, count(closes, "frame timeout: no complete frame within 0.3 s"))
    for _, c in ipairs(clients) do assert.is_true(c.eof) end
    assert.equal(3, good:call("add", {1, 2}))   -- the legitimate client is still served
    good:close()
    assert.same({}, errors)
  end)

  it("counts a frame's time only from its first byte; whole frames reset nothing", function()
    local l = listen{ frame_timeout = 0.25 }
    local c = assert(raw.connect(l.url, run_until))
    local body = frame('{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}')
    for _ = 1, 6 do   -- 0.6 s of complete frames, each sent within the timeout
      c:write(body:sub(1, 10))
      wait(60)
      c:write(body:sub(11))
      wait(40)
    end
    assert.same({}, closes)
    assert.equal(6, select(2, c.received:gsub('"result":3', "")))
    c:close()
  end)

  it("closes a connection idle past idle_timeout, but not one whose handler is working", function()
    local l = listen{ idle_timeout = 0.2 }
    local quiet = assert(raw.connect(l.url, run_until))
    local working = assert(raw.connect(l.url, run_until))
    working:write(frame('{"jsonrpc":"2.0","method":"sleep","params":[500],"id":7}'))
    assert.is_true(run_until(function() return quiet.eof end, 1000))
    assert.equal(1, count(closes, "idle timeout: no traffic within 0.2 s"))
    assert.is_false(working.eof)
    assert.is_true(run_until(function() return working.received:find('"result":500', 1, true) ~= nil end, 2000))
    assert.is_true(run_until(function() return working.eof end, 1000))   -- idle once answered
    assert.equal(2, count(closes, "idle timeout"))
    assert.same({}, errors)
  end)

  it("has no idle timeout by default on listeners", function()
    local l = listen{}
    local c = assert(raw.connect(l.url, run_until))
    wait(400)
    assert.is_false(c.eof)
    assert.same({}, closes)
    c:close()
  end)

  it("closes a peer that reads nothing at the send timeout; its flooding handler ends quietly", function()
    local l = listen{ send_timeout = 0.4, write_high_water = 64 * 1024 }
    local c = assert(raw.connect(l.url, run_until))
    c:stop_reading()
    c:write(frame('{"jsonrpc":"2.0","method":"flood","params":[100000,1000],"id":1}'))
    local good = assert(jsonrpc.connect(l.url))
    assert.is_true(run_until(function() return #closes >= 1 end, 3000))
    assert.equal(1, count(closes, "send timeout: the peer read nothing within 0.4 s"))
    wait(100)
    assert.equal(3, good:call("add", {1, 2}))
    good:close()
    assert.same({}, errors)
  end)

  it("lets a slow reader that keeps reading live past the send timeout", function()
    local l = listen{ send_timeout = 0.3, write_high_water = 16 * 1024 }
    local c = assert(raw.connect(l.url, run_until))
    c:stop_reading()
    c:write(frame('{"jsonrpc":"2.0","method":"flood","params":[3000,1000],"id":1}'))
    for _ = 1, 8 do   -- reads in bursts every 0.15 s: 1.2 s in all
      wait(150)
      c.handle:read_start(function(_, data) if data then c.received = c.received .. data end end)
      wait(5)
      c:stop_reading()
    end
    assert.same({}, closes)
    c:close()
  end)
end)

describe("connection limits", function()
  local server, closes, errors
  before_each(function()
    server = test_server()
    closes, errors = {}, {}
  end)
  after_each(function()
    server:close()
    jsonrpc.run("nowait")
  end)

  local function listen(opts)
    opts.on_close = function(reason) closes[#closes + 1] = reason end
    opts.on_error = function(message) errors[#errors + 1] = message end
    return assert(server:listen("tcp://127.0.0.1:0", opts))
  end

  it("accepts and closes connections past max_connections; logs once; serves again after the timeouts", function()
    local l = listen{ max_connections = 20, frame_timeout = 0.4 }
    assert.equal(20, select(2, l:connections()))
    local attackers = {}
    for i = 1, 60 do   -- 3x as many attempts, each holding half a header
      local c = raw.connect(l.url, run_until)
      if c then c:write("Content-Le"); attackers[#attackers + 1] = c end
    end
    wait(100)
    local open, dropped = 0, 0
    for _, c in ipairs(attackers) do if c.eof then dropped = dropped + 1 else open = open + 1 end end
    assert.equal(20, open)
    assert.equal(40, dropped)
    assert.equal(20, (l:connections()))
    assert.is_true(#errors >= 1 and #errors <= 2, table.concat(errors, "\n"))
    assert.matches("max_connections reached", errors[1], 1, true)
    -- a legitimate client is refused while they hold every slot ...
    local early = raw.connect(l.url, run_until)
    assert.is_true(run_until(function() return early.eof end, 500))
    -- ... and served once their frames have timed out
    assert.is_true(run_until(function() return (l:connections()) == 0 end, 2000))
    local good = assert(jsonrpc.connect(l.url))
    assert.equal(3, good:call("add", {1, 2}))
    good:close()
  end)

  it("defaults max_connections to 1024, or less under a low fd limit", function()
    local l = listen{}
    local _, max = l:connections()
    local out = sh(("ulimit -n 100; %s -e 'local j = require \"jsonrpc\"; local s = j.server();"
      .. " print(select(2, s:listen(\"tcp://127.0.0.1:0\"):connections()))'"):format(lua))
    local fd_limit = tonumber((sh("ulimit -n"))) or 1024
    assert.equal(math.min(1024, fd_limit - 32), max)
    assert.equal(68, tonumber((out)))
  end)

  it("limits connections per address", function()
    local l = listen{ max_connections_per_address = 3 }
    local from1, from2 = {}, {}
    for i = 1, 5 do from1[i] = assert(raw.connect(l.url, run_until, "127.0.0.1")) end
    for i = 1, 3 do from2[i] = assert(raw.connect(l.url, run_until, "127.0.0.2")) end
    wait(100)
    local function dropped(list)
      local n = 0
      for _, c in ipairs(list) do if c.eof then n = n + 1 end end
      return n
    end
    assert.equal(2, dropped(from1))
    assert.equal(0, dropped(from2))
    assert.matches("max_connections_per_address reached", errors[1], 1, true)
    from1[1]:close()   -- a slot frees up for that address
    wait(50)
    local again = assert(raw.connect(l.url, run_until, "127.0.0.1"))
    wait(50)
    assert.is_false(again.eof)
  end)

  it("closes the connection that would pass max_buffered_bytes, and only it", function()
    local l = listen{ max_buffered_bytes = 1024 * 1024 }
    local good = assert(jsonrpc.connect(l.url))
    local big = assert(raw.connect(l.url, run_until))
    big:write("Content-Length: 10000000\r\n\r\n" .. ("x"):rep(3 * 1024 * 1024))
    assert.is_true(run_until(function() return big.eof end, 2000))
    assert.matches("max_buffered_bytes reached", closes[1], 1, true)
    assert.matches("max_buffered_bytes reached", errors[1], 1, true)
    assert.equal(3, good:call("add", {1, 2}))
    good:close()
  end)

  it("never spins when fds run out (ulimit -n 64), and serves again once they are free", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local jsonrpc = require "jsonrpc"
      local uv = require "luv"
      local server = jsonrpc.server()
      server:method("add", function(a, b) return a + b end)
      local l = assert(server:listen("tcp://127.0.0.1:0", {max_connections = 1000}))
      local files = {}
      repeat local fh = io.open("/dev/null"); files[#files + 1] = fh until not fh
      io.stderr:write("listening on ", l.url, "\n")
      local t = uv.new_timer()   -- hold every fd for 1.5 s
      t:start(1500, 0, function() for _, fh in ipairs(files) do fh:close() end; t:close() end)
      local stop = uv.new_timer()
      stop:start(4000, 0, function() stop:close(); server:close() end)
      jsonrpc.run()
    ]])
    f:close()
    local bg = util.background(("ulimit -n 64; exec %s %s"):format(lua, script))
    local url = assert(bg.wait_for("listening on (%S+)"), bg.stderr())
    local pid = tonumber((sh("cat " .. bg.dir .. "/pid")))   -- the shell exec'd the server
    local function cpu_ticks()
      local stat = sh("cat /proc/" .. pid .. "/stat")
      local fields = {}
      for w in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = w end
      return tonumber(fields[12]) + tonumber(fields[13])   -- utime + stime
    end
    local before = cpu_ticks()
    local clients = {}
    for i = 1, 30 do clients[i] = raw.connect(url, run_until) end
    wait(800)
    local used = cpu_ticks() - before
    local dropped = 0   -- accepts failed (EMFILE): libuv drops those peers
    for _, c in ipairs(clients) do if not c or c.eof then dropped = dropped + 1 end end
    assert.is_true(dropped > 0, "no accept failed: the test did not run out of fds")
    assert.is_true(used < 30, "the server used " .. used .. " ticks in 0.8 s")   -- < 0.3 s of CPU
    wait(900)   -- the fds are free again
    assert.is_true(answers(url), bg.stderr())
    for _, c in ipairs(clients) do if c then c:close() end end
    assert.equal(0, bg.wait())
    bg.cleanup()
    os.remove(script)
  end)
end)

--- A process's resident memory in KiB (VmRSS, or VmHWM for the peak).
local function rss_kib(pid, field)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match((field or "VmRSS") .. ":%s*(%d+)"))
end

describe("memory bounds", function()
  it("costs at most 16 KiB per idle connection holding a partial header (2,000 of them)", function()
    local bg, url = serve("tcp://127.0.0.1:0", "--max-connections 3000", "ulimit -n 4096; ")
    local pid = tonumber((sh("cat " .. bg.dir .. "/pid")))
    assert.is_true(answers(url))
    local before = rss_kib(pid)
    local clients = util.background(("ulimit -n 4096; exec %s spec/support/idle_clients.lua %s 2000 4")
      :format(lua, url))
    assert.is_truthy(clients.wait_for("ready 2000"), clients.stderr())
    wait(300)
    local after = rss_kib(pid)
    local per = (after - before) / 2000
    print(("-- 2,000 idle connections: RSS %d -> %d KiB, %.1f KiB each"):format(before, after, per))
    if not sanitized then assert.is_true(per <= 16, ("%.1f KiB per connection"):format(per)) end
    clients.wait()
    clients.cleanup()
    assert.is_true(answers(url))
    assert.equal(0, stop(bg))
  end)
end)

describe("decode amplification", function()
  -- 30 MB of [[],[],...] (3 MB when the suite runs under valgrind)
  local n = util.quick and 1000 * 1000 or 10 * 1000 * 1000
  local tiny_arrays = "[" .. ("[],"):rep(n - 1) .. "[]]"

  it("answers -32601 to a flood of tiny arrays for an unknown method, building nothing", function()
    local bg, url = serve("tcp://127.0.0.1:0", "--max-message-size 67108864")
    local pid = tonumber((sh("cat " .. bg.dir .. "/pid")))
    assert.is_true(answers(url))
    local before = rss_kib(pid, "VmHWM")
    for _, text in ipairs{
      -- one argument holding them all (past the first 4000 positional
      -- params, arguments are only counted anyway), or a named one
      ('{"jsonrpc":"2.0","method":"nope","params":[%s],"id":1}'):format(tiny_arrays),
      ('{"jsonrpc":"2.0","params":{"a":%s},"method":"nope","id":2}'):format(tiny_arrays),   -- params first
    } do
      local c = assert(raw.connect(url, run_until))
      local t0 = os.time()
      c:write(frame(text))
      assert.is_true(run_until(function() return c.received:find("-32601", 1, true) ~= nil end, 10000),
        c.received)
      assert.is_true(os.time() - t0 <= 2)
      c:close()
    end
    local extra = rss_kib(pid, "VmHWM") - before
    print(("-- %d MB of [[],...] to an unknown method: peak RSS grew %d KiB"):format(math.floor(#tiny_arrays / 1000000), extra))
    if not sanitized then assert.is_true(extra < 2 * #tiny_arrays / 1024, extra .. " KiB extra") end
    assert.equal(0, stop(bg))
  end)

  it("refuses the same flood to a known method by the value budget (-32600), and honours max_values", function()
    local server = jsonrpc.server()
    local called = false
    server:method("known", function() called = true end)
    server:method("named", function() called = true end, {params = {"a"}})
    for _, text in ipairs{
      ('{"jsonrpc":"2.0","method":"known","params":[%s],"id":1}'):format(tiny_arrays),
      ('{"jsonrpc":"2.0","params":{"a":%s},"method":"named","id":1}'):format(tiny_arrays),
    } do
      local t0 = os.clock()
      local out = jsonrpc.decode(server:handle(text))
      local ms = (os.clock() - t0) * 1000
      assert.equal(-32600, out.error.code)
      assert.matches("more than 1000000 values (max_values)", out.error.data, 1, true)
      print(("-- refused by the budget in %.0f ms"):format(ms))
    end
    assert.is_false(called)
    local small = jsonrpc.server{ max_values = 10 }
    small:method("f", function(t) return #t end)
    assert.equal(5, jsonrpc.decode(small:handle('{"jsonrpc":"2.0","method":"f","params":[[1,2,3,4,5]],"id":1}')).result)
    local out = jsonrpc.decode(small:handle('{"jsonrpc":"2.0","method":"f","params":[[1,2,3,4,5,6,7,8,9,10]],"id":1}'))
    assert.equal(-32600, out.error.code)
    -- a batch is counted whole, before any member runs
    out = jsonrpc.decode(small:handle('[{"jsonrpc":"2.0","method":"f","params":[[1,2,3]],"id":1},'
      .. '{"jsonrpc":"2.0","method":"f","params":[[1,2,3]],"id":2}]'))
    assert.equal(-32600, out.error.code)
    assert.matches("batch of more than 10 values", out.error.data, 1, true)
  end)

  it("gives decode a value budget when asked", function()
    -- 12 values: the two arrays count 4 each, and 1, 2, 3 and 4
    local v, err = jsonrpc.decode("[1,[2,3],4]", { max_values = 11 })
    assert.is_nil(v)
    assert.matches("more than 11 values (max_values) at byte", err, 1, true)
    assert.same({1, {2, 3}, 4}, jsonrpc.decode("[1,[2,3],4]", { max_values = 12 }))
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
      jsonrpc.decode("[1,2,3,4,5,6,7,8,9,10,11]", { max_values = 15 }))
    assert.has_error(function() jsonrpc.encode({}, { max_values = 5 }) end)
  end)
end)

describe("duplicate members", function()
  local server = jsonrpc.server()
  local ran = {}
  server:method("add", function(a, b) ran[#ran + 1] = "add"; return a + b end)
  server:method("boom", function() ran[#ran + 1] = "boom" end)

  it("refuses a request that names its method twice, over a socket too", function()
    local bg, url = serve("tcp://127.0.0.1:0")
    local c = assert(raw.connect(url, run_until))
    c:write(frame('{"jsonrpc":"2.0","method":"add","method":"boom","params":[1,2],"id":1}'))
    assert.is_true(run_until(function() return c.received:find("}$") ~= nil end, 2000))
    local answer = jsonrpc.decode(c.received:match("\r\n\r\n(.*)$"))
    assert.equal(-32600, answer.error.code)
    assert.equal('duplicate member "method"', answer.error.data)
    assert.equal(1, answer.id)
    c:close()
    assert.equal(0, stop(bg))
  end)

  it("refuses every envelope member given twice, and runs nothing", function()
    for _, text in ipairs{
      '{"jsonrpc":"2.0","jsonrpc":"2.0","method":"add","params":[1,2],"id":1}',
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"params":[3,4],"id":1}',
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1,"id":2}',
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"result":1,"result":2,"id":1}',
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"error":1,"error":2,"id":1}',
    } do
      local out = jsonrpc.decode(server:handle(text))
      assert.equal(-32600, out.error.code)
      assert.matches('^duplicate member "%a+"$', out.error.data)
    end
    assert.same({}, ran)
  end)

  it("treats a response with a member given twice as invalid: its call fails with -32004", function()
    local a, strays = nil, {}
    a = jsonrpc.endpoint{
      send = function(text)
        local id = jsonrpc.decode(text).id
        a:receive(('{"jsonrpc":"2.0","result":1,"result":2,"id":%d}'):format(id))
      end,
      on_stray = function(reason) strays[#strays + 1] = reason end,
    }
    local r, err = a:try_call("x")
    assert.is_nil(r)
    assert.equal(codes.INVALID_RESPONSE, err.code)
    assert.matches('duplicate member "result"', strays[1], 1, true)
  end)
end)

describe("the peer learns why", function()
  local server
  before_each(function() server = test_server() end)
  after_each(function() server:close(); jsonrpc.run("nowait") end)

  local function answer_of(c)
    local body = c.received:match("\r\n\r\n(.*)$") or c.received:match("^(.-)\n")
    return body and jsonrpc.decode(body)
  end

  it("gets -32700 with the reason for a broken frame, then the close", function()
    local l = assert(server:listen("tcp://127.0.0.1:0", { on_error = function() end }))
    local c = assert(raw.connect(l.url, run_until))
    c:write("Content-Length: abc\r\n\r\n{}")
    assert.is_true(run_until(function() return c.eof end, 2000))
    local a = answer_of(c)
    assert.equal(-32700, a.error.code)
    assert.matches("^Parse error: content%-length", a.error.message)
    assert.equal(jsonrpc.null, a.id)
  end)

  it("gets -32600 naming the limit for an oversized message, then the close", function()
    local l = assert(server:listen("tcp://127.0.0.1:0", { max_message_size = 100, on_error = function() end }))
    local c = assert(raw.connect(l.url, run_until))
    c:write("Content-Length: 1000\r\n\r\n")
    assert.is_true(run_until(function() return c.eof end, 2000))
    local a = answer_of(c)
    assert.equal(-32600, a.error.code)
    assert.matches("message of 1000 bytes exceeds max_message_size (100)", a.error.message, 1, true)
  end)

  it("gets -32600 for an oversized ndjson line, and the connection goes on", function()
    local l = assert(server:listen("tcp://127.0.0.1:0",
      { framing = "ndjson", max_message_size = 100, on_error = function() end }))
    local c = assert(raw.connect(l.url, run_until))
    c:write(("x"):rep(200) .. "\n" .. '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}\n')
    assert.is_true(run_until(function() return select(2, c.received:gsub("\n", "")) >= 2 end, 2000))
    local first, second = c.received:match("^(.-)\n(.-)\n")
    assert.equal(-32600, jsonrpc.decode(first).error.code)
    assert.equal(3, jsonrpc.decode(second).result)
    assert.is_false(c.eof)
    c:close()
  end)
end)

describe("half-close", function()
  local server
  before_each(function() server = test_server() end)
  after_each(function() server:close(); jsonrpc.run("nowait") end)

  it("answers the requests of a peer that shut down its write side, then closes", function()
    local l = assert(server:listen("tcp://127.0.0.1:0"))
    local c = assert(raw.connect(l.url, run_until))
    c:write(frame('{"jsonrpc":"2.0","method":"sleep","params":[200],"id":1}')
      .. frame('{"jsonrpc":"2.0","method":"add","params":[1,2],"id":2}'))
    c:shutdown()
    assert.is_true(run_until(function() return c.eof end, 3000))
    assert.matches('"result":3,"id":2', c.received, 1, true)
    assert.matches('"result":200,"id":1', c.received, 1, true)
  end)

  it("answers what came on stdin before its end (jsonrpc serve --listen stdio:)", function()
    local input = os.tmpname()
    local f = assert(io.open(input, "wb"))
    f:write(frame('{"jsonrpc":"2.0","method":"sleep","params":[200],"id":1}'))
    f:close()
    local out, code = sh(("cat %s | %s serve spec/support/calc.lua --listen stdio: 2>/dev/null"):format(input, CMD))
    os.remove(input)
    assert.equal(0, code)
    assert.matches('"result":200,"id":1', out, 1, true)
  end)

  it("fails the calls waiting on a peer that shut down its side", function()
    local conns = {}
    local l = assert(server:listen("tcp://127.0.0.1:0", { on_connection = function(c) conns[#conns + 1] = c end }))
    local c = assert(raw.connect(l.url, run_until))
    assert.is_true(run_until(function() return #conns == 1 end, 1000))
    local result, err
    conns[1]:call("ping", nil, function(r, e) result, err = r, e end)
    c:shutdown()
    assert.is_true(run_until(function() return err ~= nil end, 2000))
    assert.equal(codes.CONNECTION_CLOSED, err.code)
    assert.matches("shut down its side", err.message, 1, true)
  end)
end)

describe("lifetimes", function()
  it("collects endpoints and servers whose handlers capture them (100 of them)", function()
    local weak = setmetatable({}, { __mode = "k" })
    for _ = 1, 100 do
      local ep
      ep = jsonrpc.endpoint{ send = function() end }
      ep:method("ping", function() return ep end)
      weak[ep] = true
      weak[ep.server] = true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)

  it("gives lent buffers back when a callback raises: bytes per dispatch unchanged after 100", function()
    local a, b
    a = jsonrpc.endpoint{ send = function(text) b:receive(text) end }
    b = jsonrpc.endpoint{ send = function(text) a:receive(text) end }
    b:method("add", function(x, y) return x + y end)
    local function bytes_per_call()
      for _ = 1, 50 do a:call("add", {1, 2}) end   -- warm
      collectgarbage()
      collectgarbage("stop")
      local before = collectgarbage("count")
      for _ = 1, 200 do a:call("add", {1, 2}) end
      local per = (collectgarbage("count") - before) * 1024 / 200
      collectgarbage("restart")
      return per
    end
    local clean = bytes_per_call()
    for _ = 1, 100 do
      pcall(a.call, a, "add", {1, 2}, function() error("the callback failed") end)
    end
    local after = bytes_per_call()
    print(("-- bytes per dispatch: %.0f, after 100 raising callbacks: %.0f"):format(clean, after))
    assert.is_true(after <= clean * 1.05 + 8, ("%.0f -> %.0f"):format(clean, after))
  end)
end)

describe("a spawned child's stderr", function()
  it("keeps the last stderr_limit bytes, in time linear in what the child writes", function()
    local t0 = os.time()
    local conn = assert(jsonrpc.spawn({"sh", "-c", "head -c 20971520 /dev/zero | tr '\\\\0' x >&2; printf END >&2"},
      { stderr = "capture" }))
    conn:wait_exit()
    assert.is_true(run_until(function() return conn.stderr and conn.stderr:sub(-3) == "END" end, 5000))
    assert.equal(65536, #conn.stderr)
    assert.is_true(os.time() - t0 <= 3, "20 MiB of stderr took " .. (os.time() - t0) .. " s")
    local small = assert(jsonrpc.spawn({"sh", "-c", "printf 0123456789 >&2"},
      { stderr = "capture", stderr_limit = 4 }))
    small:wait_exit()
    assert.is_true(run_until(function() return small.stderr == "6789" end, 2000))
  end)
end)

describe("visible failures", function()
  it("jsonrpc serve writes handler errors with their traceback to stderr, rate-limited", function()
    local bg, url = serve("tcp://127.0.0.1:0")
    local conn = assert(jsonrpc.connect(url))
    for _ = 1, 40 do
      local _, err = conn:try_call("boom")
      assert.equal(codes.INTERNAL_ERROR, err.code)
    end
    conn:close()
    wait(1200)   -- the line telling how many were left out
    local log = bg.stderr()
    local lines = select(2, log:gsub("handler error: [^\n]*the handler failed", ""))
    assert.is_true(lines >= 1 and lines <= 10, log)
    assert.matches("stack traceback:", log, 1, true)
    assert.matches("%d+ more messages like these were left out in the last second", log)
    assert.equal(0, stop(bg))
  end)

  it("jsonrpc serve warns when it listens on every interface", function()
    local bg = util.background(CMD .. " serve spec/support/calc.lua --listen tcp://0:0")
    assert.is_truthy(bg.wait_for("warning: tcp://0:0 listens on every interface %(0%.0%.0%.0%)"), bg.stderr())
    assert.equal(0, stop(bg))
    bg = util.background(CMD .. " serve spec/support/calc.lua --listen tcp://127.0.0.1:0")
    assert.is_truthy(bg.wait_for("listening on"))
    assert.is_falsy(bg.stderr():find("warning", 1, true))
    assert.equal(0, stop(bg))
  end)

  it("reports a connection's framing errors through on_error", function()
    local server = test_server()
    local errors = {}
    local l = assert(server:listen("tcp://127.0.0.1:0", { on_error = function(m) errors[#errors + 1] = m end }))
    local c = assert(raw.connect(l.url, run_until))
    c:write("Content-Length: x\r\n\r\n")
    assert.is_true(run_until(function() return #errors > 0 end, 2000))
    assert.matches("^framing error: content%-length", errors[1])
    server:close()
  end)
end)

describe("a handler flooding a peer that reads", function()
  it("lets other connections be served meanwhile, and holds about write_high_water", function()
    local server = test_server()
    local most, done = 0, false
    server:method("flood_reader", function(ctx, n)
      local payload = ("y"):rep(1000)
      for i = 1, n do
        ctx.connection:notify("tick", {i, payload})
        most = math.max(most, ctx.connection.stream:queued())
        -- plain Lua 5.1 cannot tell whether a pcall is in the way, so
        -- notify never waits there: a handler waits with flush itself
        if plain_lua51 and ctx.connection.stream:queued() > 64 * 1024 then ctx.connection:flush() end
      end
      done = true
      return n
    end, {context = true})
    local l = assert(server:listen("tcp://127.0.0.1:0", { write_high_water = 64 * 1024 }))
    local reader = assert(jsonrpc.connect(l.url))
    local ticks = 0
    reader:method("tick", function() ticks = ticks + 1 end)
    local other = assert(jsonrpc.connect(l.url))
    local answered_during
    reader:call("flood_reader", {20000}, function() end)
    coroutine.wrap(function()
      run_until(function() return ticks > 0 end, 2000)
      other:call("add", {1, 2})
      answered_during = not done
    end)()
    assert.is_true(run_until(function() return done and answered_during ~= nil end, 10000))
    assert.is_true(answered_during, "the other connection waited for the whole flood")
    assert.is_true(most <= 64 * 1024 + 2048, most .. " bytes queued")
    reader:close()
    other:close()
    server:close()
  end)
end)

describe("memory after large messages", function()
  it("gives back a connection's read buffer once its large message is done", function()
    local bg, url = serve("tcp://127.0.0.1:0")
    local pid = tonumber((sh("cat " .. bg.dir .. "/pid")))
    assert.is_true(answers(url))
    local before = rss_kib(pid)
    -- ten connections each send one 4 MiB request, are answered, and stay
    local body = ('{"jsonrpc":"2.0","method":"nope","params":["%s"],"id":1}'):format(("x"):rep(4 * 1024 * 1024))
    local clients = {}
    for i = 1, 10 do
      clients[i] = assert(raw.connect(url, run_until))
      clients[i]:write(frame(body))
    end
    assert.is_true(run_until(function()
      for _, c in ipairs(clients) do if not c.received:find("-32601", 1, true) then return false end end
      return true
    end, 10000))
    wait(200)
    local after = rss_kib(pid)
    print(("-- 10 idle connections after a 4 MiB message each: RSS %d -> %d KiB"):format(before, after))
    if not sanitized then assert.is_true(after - before < 8 * 1024, (after - before) .. " KiB kept") end
    for _, c in ipairs(clients) do c:close() end
    assert.equal(0, stop(bg))
  end)
end)
