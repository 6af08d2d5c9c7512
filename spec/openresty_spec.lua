-- The library inside OpenResty (Debian's nginx with lua-nginx-module, on
-- its LuaJIT), as its users run it: nginx is started under a temp prefix
-- on 127.0.0.1 with spec/nginx/app.lua, driven over HTTP with curl (each
-- request bounded by --max-time), and stopped by its pid.
local jsonrpc = require "jsonrpc"
local nginx = require "spec.support.nginx"
local util = require "spec.support.util"

local decode, encode = jsonrpc.decode, jsonrpc.encode

local LOCATIONS = [[
    location = /rpc { content_by_lua_block { require("app").serve() } }
    location = /rpc_concurrent { content_by_lua_block { require("app").serve{ concurrent = true } } }
    location = /rpc_small { content_by_lua_block { require("app").serve{ max_message_size = 1000 } } }
    location = /rpc_buffered {
      client_body_buffer_size 1k;
      client_max_body_size 4m;
      content_by_lua_block { require("app").serve() }
    }
    location = /plain { content_by_lua_block { ngx.print("plain") } }
    location = /access { access_by_lua_block { require("app").access() } }
    location = /timer { content_by_lua_block { require("app").timer() } }
    location = /set {
      set_by_lua_block $answer { return require("app").server:handle(ngx.unescape_uri(ngx.var.arg_q)) or "" }
      return 200 $answer;
    }
    location = /endpoints { content_by_lua_block { require("app").endpoints() } }
    location = /wait_fn { content_by_lua_block { require("app").wait_fn() } }
    location = /client { content_by_lua_block { require("app").client(ngx.var.arg_url, ngx.var.arg_framing) } }
]]

local function request(id, method, params)
  return { jsonrpc = "2.0", id = id, method = method, params = params }
end

-- Wall-clock seconds.
local function now()
  return tonumber((util.sh("date +%s%N"))) / 1e9
end

-- CPU seconds a process has used (utime + stime, in clock ticks of 100 Hz).
local function cpu_seconds(pid)
  local stat = nginx.read("/proc/" .. pid .. "/stat") or ""
  local fields = {}
  for f in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
  return ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / 100
end

describe("inside OpenResty", function()
  it("is installed (nginx, libnginx-mod-http-lua, lua-resty-core, from scripts/install-deps)", function()
    assert.is_true(nginx.available)
  end)
  if not nginx.available then return end

  local n, peer, peer_pipe, socket_path
  local ports = {}

  setup(function()
    socket_path = os.tmpname()
    os.remove(socket_path)
    -- the plain-Lua stream peer; it stops when its stdin (this pipe) closes
    peer_pipe = io.popen(("%s spec/nginx/peer.lua %s > %s.ports 2>&1")
      :format(util.interpreter(), socket_path, socket_path), "w")
    for _ = 1, 200 do
      local text = nginx.read(socket_path .. ".ports") or ""
      local count = 0
      for k, v in text:gmatch("ready (%S+) (%S+)") do ports[k] = v; count = count + 1 end
      if count == 4 then break end
      os.execute("sleep 0.05")
    end
    peer = ports.unix ~= nil
    n = nginx.start{ params = { peer = ports }, server = LOCATIONS }
  end)

  teardown(function()
    if n then n.stop() end
    if peer_pipe then peer_pipe:close() end
    os.remove(socket_path .. ".ports")
  end)

  local function post(path, body, opts)
    opts = opts or {}
    opts.body = type(body) == "table" and encode(body) or body
    return nginx.request(n.url .. path, opts)
  end

  local function rpc(path, body)
    local status, text, headers = post(path, body)
    assert.equal(200, status, text)
    assert.truthy(headers:lower():find("content-type: application/json", 1, true), headers)
    return assert(decode(text), text)
  end

  describe("serve: handlers that yield in OpenResty's APIs", function()
    local cases = {
      { "sleep", { 5 }, 5 },
      { "capture", nil, { status = 200, body = "plain" } },
      { "cosocket", nil, "HTTP/1.1 200 OK" },
      { "http_add", { 2, 3 }, 5 },
      { "threads", { 1, 2 }, 3 },
      { "coroutine", { 4 }, 10 },
      { "sleep_sum", { 1, 2, 3, 4, 5, 6 }, 21 },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local r = rpc("/rpc", request(1, case[1], case[2]))
        assert.same(case[3], r.result)
        assert.equal(1, r.id)
      end)
    end

    it("a batch of all of them is answered whole, in request order", function()
      local batch = {}
      for i, case in ipairs(cases) do batch[i] = request(i, case[1], case[2]) end
      table.insert(batch, 3, { jsonrpc = "2.0", method = "sleep", params = { 1 } })   -- a notification
      local r = rpc("/rpc", batch)
      assert.equal(#cases, #r)
      for i, case in ipairs(cases) do
        assert.equal(i, r[i].id)
        assert.same(case[3], r[i].result)
      end
    end)

    it("with concurrent = true, a batch's members wait side by side, still answered in order", function()
      local batch = {}
      for i = 1, 5 do batch[i] = request(i, "sleep", { 300 - 50 * i }) end
      batch[6] = request(6, "sleep_sum", { 1, 2, 3, 4, 5, 6 })
      for _, path in ipairs{ "/rpc", "/rpc_concurrent" } do
        local t0 = now()
        local r = rpc(path, batch)
        local took = now() - t0
        for i = 1, 5 do assert.same({ i, 300 - 50 * i }, { r[i].id, r[i].result }) end
        assert.same({ 6, 21 }, { r[6].id, r[6].result })
        if path == "/rpc" then assert.is_true(took >= 0.75, took)   -- 250+200+150+100+50 ms
        else assert.is_true(took < 0.6, took) end                  -- the longest, 250 ms
      end
    end)

    it("in the access phase and in a timer too", function()
      for _, path in ipairs{ "/access", "/timer" } do
        local r = rpc(path, { request(1, "sleep", { 20 }), request(2, "cosocket"),
                              request(3, "coroutine", { 3 }), request(4, "add", { 1, 2 }) })
        assert.same({ 1, 2, 3, 4 }, { r[1].id, r[2].id, r[3].id, r[4].id })
        assert.same({ 20, "HTTP/1.1 200 OK", 6, 3 }, { r[1].result, r[2].result, r[3].result, r[4].result })
      end
    end)

    it("in a phase that cannot yield (set_by_lua), plain handlers answer and yielding ones fail cleanly", function()
      local function at_set(body)
        local status, text = nginx.request(n.url .. "/set?q=" .. body:gsub("[^%w]", function(c)
          return ("%%%02X"):format(c:byte()) end))
        assert.equal(200, status, text)
        return decode(text)
      end
      assert.equal(3, at_set(encode(request(1, "add", { 1, 2 }))).result)
      local r = at_set(encode(request(2, "sleep", { 1 })))
      assert.equal(-32603, r.error.code)
      assert.equal(3, rpc("/rpc", request(3, "add", { 1, 2 })).result)   -- the worker lives on
    end)
  end)

  describe("serve: HTTP", function()
    it("answers 204 with no body for notifications", function()
      local status, text = post("/rpc", { jsonrpc = "2.0", method = "add", params = { 1, 2 } })
      assert.equal(204, status)
      assert.equal("", text)
    end)

    it("answers 405 with Allow to a method that is not POST", function()
      local status, text, headers = nginx.request(n.url .. "/rpc")
      assert.equal(405, status)
      assert.truthy(headers:find("Allow: POST", 1, true))
      assert.truthy(text:find("POST", 1, true))
    end)

    it("answers 415 to a Content-Type that is not JSON, and takes JSON's with a UTF-8 charset", function()
      local body = encode(request(1, "add", { 1, 2 }))
      for _, ctype in ipairs{ "text/plain", "application/x-www-form-urlencoded",
                              "application/json; charset=latin1" } do
        local status, text = post("/rpc", body, { content_type = ctype })
        assert.equal(415, status, ctype)
        assert.truthy(text:find("application/json", 1, true))
      end
      for _, ctype in ipairs{ "application/json", "application/json; charset=utf-8",
                              "application/json-rpc", "Application/JSONrequest;charset=\"UTF-8\"" } do
        local status, text = post("/rpc", body, { content_type = ctype })
        assert.equal(200, status, ctype)
        assert.equal(3, decode(text).result)
      end
    end)

    it("answers 413 to a body over max_message_size, before reading it", function()
      local status, text = post("/rpc_small", encode(request(1, "size", { ("x"):rep(2000) })))
      assert.equal(413, status)
      assert.truthy(text:find("max_message_size (1000)", 1, true), text)
    end)

    it("reads a body that nginx buffered to a temp file", function()
      local big = ("y"):rep(300000)
      local r = rpc("/rpc_buffered", request(1, "size", { big }))
      assert.equal(300000, r.result)
      assert.truthy(n.error_log():find("buffered to a temporary file", 1, true))
    end)

    it("answers bad JSON with -32700 and an empty body the same", function()
      assert.equal(-32700, rpc("/rpc", "{nope").error.code)
      assert.equal(-32700, rpc("/rpc", "").error.code)
    end)

    it("gives handlers the request's variables, headers and peer", function()
      local status, text = post("/rpc", request(1, "whoami"), { headers = { ["X-Test"] = "t1" } })
      assert.equal(200, status)
      local r = decode(text).result
      assert.equal("t1", r.header)
      assert.equal("/rpc", r.uri)
      assert.equal("POST", r.method)
      assert.truthy(r.peer:match("^127%.0%.0%.1:%d+$"), r.peer)
    end)

    it("logs a handler's error to error.log and answers -32603", function()
      local r = rpc("/rpc", request(1, "boom"))
      assert.equal(-32603, r.error.code)
      assert.truthy(n.error_log():find("the handler failed on purpose", 1, true))
    end)
  end)

  describe("endpoints and calls", function()
    it("an endpoint's handlers may sleep and call back, in light threads and batches, and time out", function()
      local status, text = post("/endpoints", "")
      assert.equal(200, status, text)
      assert.same({ "hello 1, Ada", "hello 2, Ada", "hello 3, Ada", "hello 4, Ada", "hello 5, Ada",
                    "hi, Ada", "yo, Ada", -32001 }, decode(text))
    end)

    it("a call whose wait cannot progress fails at once (-32005), and the libuv transports refuse", function()
      local worker = n.worker_pid()
      local before = cpu_seconds(worker)
      local status, text = post("/wait_fn", "")
      assert.equal(200, status, text)
      local r = decode(text)
      assert.equal(-32005, r.code)
      for _, name in ipairs{ "connect", "listen", "spawn", "stdio", "run" } do
        assert.truthy(r.refused[name]:find("cannot run inside nginx (phase content)", 1, true),
          name .. ": " .. r.refused[name])
      end
      os.execute("sleep 0.5")
      -- no spin: the worker is idle once answered
      assert.is_true(cpu_seconds(worker) - before < 0.3)
    end)
  end)

  describe("the cosocket client", function()
    local targets = { { "content-length", "tcp" }, { "be32", "tcp" }, { "ndjson", "tcp" },
                      { "content-length", "unix" } }
    for _, t in ipairs(targets) do
      it(("over %s in %s: 100 calls from 4 light threads, a batch, the peer's calls, timeouts, close")
         :format(t[2], t[1]), function()
        assert.is_true(peer, "the peer did not start")
        local url = t[2] == "unix" and ("unix://" .. ports.unix) or ("tcp://127.0.0.1:" .. ports[t[1]])
        local status, text = nginx.request(("%s/client?framing=%s&url=%s"):format(n.url, t[1], url))
        assert.equal(200, status, text)
        local r = decode(text)
        assert.equal(0, r.wrong)
        assert.same({ 3, 5 }, r.batch)
        assert.equal(42, r.back)
        assert.same({ "hello" }, r.notes)
        assert.equal(-32001, r.timeout)
        assert.equal(-32002, r.closed)
        assert.equal(0, r.pending)
      end)
    end
  end)
end)

describe("loading inside nginx", function()
  if not nginx.available then return end

  -- What the master and the worker hold: open descriptors, threads, and
  -- caught and ignored signals.
  local function footprint(init)
    local m = nginx.start{ init = init, server = "location = / { return 200 ok; }" }
    local worker = m.worker_pid()
    local function of(pid)
      local fds = util.sh("ls /proc/" .. pid .. "/fd | wc -l"):match("%d+")
      local status = nginx.read("/proc/" .. pid .. "/status") or ""
      return { fds = tonumber(fds), threads = tonumber(status:match("Threads:%s*(%d+)")),
               caught = status:match("SigCgt:%s*(%x+)"), ignored = status:match("SigIgn:%s*(%x+)") }
    end
    local result = { master = of(m.pid), worker = of(worker) }
    m.stop()
    return result
  end

  it("opens no descriptor, starts no thread and installs no signal handler", function()
    local plain = footprint(nil)
    local loaded = footprint([[ require "jsonrpc"; require "jsonrpc.ngx" ]])
    assert.same(plain.master, loaded.master)
    assert.same(plain.worker, loaded.worker)
  end)
end)
