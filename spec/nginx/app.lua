-- The OpenResty side of spec/nginx_spec.lua: a server whose handlers use
-- each of OpenResty's yielding APIs, and the content of each location.
-- The spec's params (ports, paths) are in conf/params.lua of the prefix.
local jsonrpc = require "jsonrpc"
local jngx = require "jsonrpc.ngx"

local params = dofile(ngx.config.prefix() .. "conf/params.lua")
local M = { params = params }

local server = jsonrpc.server()
M.server = server
server:method("add", function(a, b) return a + b end)
server:method("sleep", function(ms) ngx.sleep(ms / 1000); return ms end)
-- a subrequest
server:method("capture", function()
  local res = ngx.location.capture("/plain")
  return { status = res.status, body = res.body }
end)
-- a raw cosocket: an HTTP GET to this nginx
server:method("cosocket", function()
  local sock = ngx.socket.tcp()
  sock:settimeouts(2000, 2000, 2000)
  assert(sock:connect("127.0.0.1", params.port))
  assert(sock:send("GET /plain HTTP/1.0\r\nHost: x\r\n\r\n"))
  local line = assert(sock:receive("*l"))
  sock:close()
  return line
end)
-- our own cosocket client, over HTTP to this nginx
server:method("http_add", function(a, b)
  local conn = assert(jngx.connect(("http://127.0.0.1:%d/rpc"):format(params.port)))
  return conn:call("add", { a, b })
end)
-- light threads of the handler's own
server:method("threads", function(a, b)
  local t1 = ngx.thread.spawn(function() ngx.sleep(0.01); return a end)
  local t2 = ngx.thread.spawn(function() ngx.sleep(0.02); return b end)
  local _, x = ngx.thread.wait(t1)
  local _, y = ngx.thread.wait(t2)
  return x + y
end)
-- a coroutine of the handler's own that sleeps between its yields
server:method("coroutine", function(n)
  local gen = coroutine.wrap(function()
    for i = 1, n do ngx.sleep(0.001); coroutine.yield(i) end
  end)
  local sum = 0
  for _ = 1, n do sum = sum + gen() end
  return sum
end)
-- many arguments (past the 4 a lone request's handler is handed back with)
server:method("sleep_sum", function(...)
  ngx.sleep(0.001)
  local sum = 0
  for i = 1, select("#", ...) do sum = sum + select(i, ...) end
  return sum
end)
server:method("boom", function() error("the handler failed on purpose") end)
server:method("whoami", function(ctx)
  return { peer = ctx.peer, header = ctx.headers["x-test"], uri = ctx.var.uri, method = ctx.method }
end, { context = true })
server:method("size", function(s) return #s end)

function M.serve(opts) return jngx.serve(server, opts) end

--- The request body, read here (access and timer phases use it).
local function body()
  ngx.req.read_body()
  return ngx.req.get_body_data() or ""
end

function M.access()
  local answer = server:handle(body())
  ngx.header["Content-Type"] = "application/json"
  ngx.print(answer or "")
  return ngx.exit(200)
end

-- server:handle in a timer: the answer comes back on a semaphore.
function M.timer()
  local text = body()
  local sema = require("ngx.semaphore").new(0)
  local answer
  assert(ngx.timer.at(0, function()
    answer = server:handle(text)
    sema:post(1)
  end))
  assert(sema:wait(10))
  ngx.header["Content-Type"] = "application/json"
  ngx.print(answer or "")
end

-- Two endpoints wired in this worker: b's handlers sleep and call a back.
function M.endpoints()
  local a, b
  a = jsonrpc.endpoint{ send = function(text) b:receive(text) end }
  b = jsonrpc.endpoint{ send = function(text) a:receive(text) end }
  a:method("name", function() ngx.sleep(0.005); return "Ada" end)
  b:method("greet", function(greeting)
    ngx.sleep(0.01)
    return greeting .. ", " .. b:call("name")
  end)
  local results = {}
  local threads = {}
  for i = 1, 5 do
    threads[i] = ngx.thread.spawn(function() return a:call("greet", { "hello " .. i }) end)
  end
  for i = 1, 5 do
    local ok, r = ngx.thread.wait(threads[i])
    results[i] = ok and r or ("failed: " .. tostring(r))
  end
  local batch = a:batch():call("greet", { "hi" }):call("greet", { "yo" }):send()
  results[6], results[7] = batch[1], batch[2]
  -- a call nobody answers times out on nginx's timers
  local c = jsonrpc.endpoint{ send = function() end }
  local _, err = c:try_call("nobody", nil, { timeout = 0.05 })
  results[8] = err and err.code
  ngx.print(jsonrpc.encode(results))
end

-- An endpoint whose host wait cannot make progress: the call fails at
-- once (-32005) instead of spinning the worker; the libuv transports
-- refuse to start inside nginx.
function M.wait_fn()
  local ep = jsonrpc.endpoint{ send = function() end, wait = function() end }
  local _, err = ep:try_call("nothing")
  local refused = {}
  for name, fn in pairs{
    connect = function() return jsonrpc.connect("tcp://127.0.0.1:1") end,
    listen = function() return server:listen("tcp://127.0.0.1:0") end,
    spawn = function() return jsonrpc.spawn({ "true" }) end,
    stdio = function() return jsonrpc.stdio(server) end,
    run = function() return jsonrpc.run("nowait") end,
  } do
    local ok, why = pcall(fn)
    refused[name] = not ok and tostring(why) or "not refused"
  end
  ngx.print(jsonrpc.encode{ code = err and err.code, refused = refused })
end

-- The cosocket client against the plain-Lua peer: 100 calls from 4
-- light threads, a batch, a notification, and the peer's calls to us.
function M.client(url, framing)
  local notes = {}
  local conn = assert(jngx.connect(url, { framing = framing, timeout = 10 }))
  conn:method("client.twice", function(n) ngx.sleep(0.001); return 2 * n end)
  conn:method("client.note", function(text) notes[#notes + 1] = text end)
  local threads, wrong = {}, 0
  for t = 1, 4 do
    threads[t] = ngx.thread.spawn(function()
      for i = 1, 25 do
        if conn:call("add", { t * 1000, i }) ~= t * 1000 + i then wrong = wrong + 1 end
      end
    end)
  end
  for t = 1, 4 do ngx.thread.wait(threads[t]) end
  local batch = conn:batch():call("add", { 1, 2 }):notify("add", { 0, 0 }):call("slow", { 5 }):send()
  conn:notify("echo", { "x" })
  local back = conn:call("ask_back", { 21 })
  conn:call("notify_back", { "hello" })
  local _, timeout_err = conn:try_call("slow", { 500 }, { timeout = 0.05 })
  conn:close()
  local _, closed_err = conn:try_call("add", { 1, 1 })
  ngx.print(jsonrpc.encode{ wrong = wrong, pending = conn:pending(), batch = batch, back = back,
                            notes = notes, timeout = timeout_err and timeout_err.code,
                            closed = closed_err and closed_err.code })
end

return M
