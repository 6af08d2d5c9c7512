--- jsonrpc.ngx: JSON-RPC inside OpenResty, on nginx's own event loop.
--
-- serve(server) is a content handler for JSON-RPC over HTTP POST;
-- handle(server, text) answers a text with handlers that may yield in
-- OpenResty's APIs; connect(url) is a client (and a peer) over cosockets.
-- Handlers run in OpenResty's light threads; calls wait on ngx.semaphore.
-- Nothing of libuv is loaded here.
local core = require "jsonrpc.core"
local endpoint = require "jsonrpc.endpoint"
local host = require "jsonrpc.host"
local url_of = require "jsonrpc.url"

local ngx = rawget(_G, "ngx")
local codes = core.codes
local local_error = endpoint.local_error
local concat = table.concat

local M = {}

local function need_yieldable(what)
  if not host.nginx_yieldable() then
    error(("jsonrpc.ngx.%s: needs a phase that may yield (rewrite, access, content, timer), not %s")
          :format(what, ngx.get_phase()), 3)
  end
end

local function check_opts(opts, names, what)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("jsonrpc.ngx." .. what .. ": options must be a table", 3) end
  for name in pairs(opts) do
    if not names[name] then
      error(("jsonrpc.ngx.%s: unknown option %s"):format(what, tostring(name)), 3)
    end
  end
  return opts
end

local function set_of(list)
  local set = {}
  for _, name in ipairs(list) do set[name] = true end
  return set
end

--- Handlers' plain errors (the server has no on_error), to error.log.
local function log_handler_error(message, traceback, req)
  local method = type(req) == "table" and req.method
  ngx.log(ngx.ERR, "jsonrpc: handler of ", tostring(method or "?"), " failed: ",
          tostring(message), traceback and ("\n" .. traceback) or "")
end

local function log_report(message)
  ngx.log(ngx.ERR, "jsonrpc: ", tostring(message))
end

-- ---- handle: one text, its handlers in the calling thread ----

-- Per server, the free deferrals (deferral.h): the C dispatch reads the
-- text and hands its handlers back, to be run here, where they may yield
-- to nginx; C writes the answers. One serves one text at a time and goes
-- back once answered, so a busy worker makes none per request.
local free_deferrals = setmetatable({}, { __mode = "k" })

local c_handle = getmetatable(core.server()).__index.handle
local Deferral = getmetatable(core.deferral(core.server())).__index
local begin, member, settle = Deferral.begin, Deferral.member, Deferral.settle
local capture_failure = core.capture_failure
local spawn_thread = ngx and ngx.thread and ngx.thread.spawn
local wait_thread = ngx and ngx.thread and ngx.thread.wait

-- A handler's call, its arguments in fixed slots: LuaJIT runs a function
-- of varargs slower, and most handlers take at most 4 arguments.
local function call(n, fn, a, b, c, d)
  if n == 2 then return xpcall(fn, capture_failure, a, b)
  elseif n == 1 then return xpcall(fn, capture_failure, a)
  elseif n == 0 then return xpcall(fn, capture_failure)
  elseif n == 3 then return xpcall(fn, capture_failure, a, b, c)
  end
  return xpcall(fn, capture_failure, a, b, c, d)
end

local function call_varargs(_, fn, ...)
  return xpcall(fn, capture_failure, ...)
end

-- Runs member i (a batch's, or a lone request's of many arguments).
local function run_member(deferral, i)
  local n, fn, a, b, c, d = member(deferral, i)
  if n <= 4 then return settle(deferral, i, call(n, fn, a, b, c, d)) end
  return settle(deferral, i, call_varargs(member(deferral, i)))
end

-- A batch's members in light threads of their own, all started at once.
local function run_concurrently(deferral, count, answer)
  local threads = {}
  for i = 1, count do threads[i] = spawn_thread(run_member, deferral, i) end
  for i = 1, count do
    local ok, got = wait_thread(threads[i])
    if not ok then error(got, 0) end
    answer = got or answer
  end
  return answer
end

-- handle where the phase may yield; with no context, make_context(arg)
-- makes it if a handler or a hook asks for it. begin gives a lone
-- request's handler and arguments, or the count of members to run (and
-- the answer when it is whole already).
local function handle_here(server, text, context, concurrent, make_context, arg)
  local free = free_deferrals[server]
  if not free then free = {}; free_deferrals[server] = free end
  local deferral = free[#free] or core.deferral(server, log_handler_error)
  free[#free] = nil
  local lone, n, fn, a, b, c, d = begin(deferral, text, context, make_context, arg)
  local answer
  if lone == true then
    answer = settle(deferral, 1, call(n, fn, a, b, c, d))
  elseif concurrent and lone > 1 then
    answer = run_concurrently(deferral, lone, n)
  else
    answer = n
    for i = 1, lone do answer = run_member(deferral, i) or answer end
  end
  free[#free + 1] = deferral
  return answer
end

--- handle(server, text [, context [, concurrent]]) -> response | nil:
-- server:handle, with handlers that may yield (ngx.sleep, cosockets,
-- subrequests, light threads). They run in the calling thread, a batch's
-- members one after another; with `concurrent`, a batch's members run in
-- light threads of their own, at once. Either way a batch is answered
-- whole, in order. Where the phase cannot yield, it is the C handle.
function M.handle(server, text, context, concurrent)
  if not host.nginx_yieldable() then return c_handle(server, text, context) end
  return handle_here(server, text, context, concurrent)
end

-- ---- serve: the content handler ----

local SERVE_OPTS = set_of{ "max_message_size", "context", "concurrent" }

-- The media types of JSON-RPC over HTTP, with any charset of UTF-8.
local JSON_TYPES = { ["application/json"] = true, ["application/json-rpc"] = true,
                     ["application/jsonrequest"] = true }

-- the Content-Types clients send, answered without parsing
local COMMON_JSON_TYPES = { ["application/json"] = true, ["application/json; charset=utf-8"] = true,
                            ["application/json;charset=utf-8"] = true,
                            ["application/json; charset=UTF-8"] = true }

local function is_json_type(value)
  if COMMON_JSON_TYPES[value] then return true end
  if type(value) ~= "string" then return false end
  local media, params = value:match("^%s*([^;%s]+)%s*(.*)$")
  if not media or not JSON_TYPES[media:lower()] then return false end
  for name, v in params:gmatch(";%s*([^=%s;]+)%s*=%s*\"?([^;\"%s]*)\"?%s*") do
    if name:lower() == "charset" and not (v:lower() == "utf-8" or v:lower() == "utf8") then
      return false
    end
  end
  return true
end
M.is_json_type = is_json_type

local function plain(status, reason)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain; charset=utf-8"
  ngx.header["Content-Length"] = #reason + 1
  ngx.print(reason, "\n")
end

-- The body nginx buffered to a temp file (client_body_buffer_size was
-- passed): read here within the limit.
local function read_body_file(path, max)
  local file, err = io.open(path, "rb")
  if not file then return nil, err end
  local size = file:seek("end")
  if size > max then file:close(); return nil, "too large", size end
  file:seek("set", 0)
  local body = file:read(size) or ""
  file:close()
  return body
end

-- What handlers with context = true see: the request's variables,
-- headers and peer, the last two made when first asked for.
local Context = {}
function Context.__index(ctx, key)
  if key == "headers" then
    local headers = ngx.req.get_headers(200)
    rawset(ctx, "headers", headers)
    return headers
  elseif key == "peer" then
    local var = ctx.var
    local addr, port = var.remote_addr, var.remote_port
    local peer = "local"   -- a Unix socket has no port
    if addr and port and port ~= "" then
      peer = (addr:find(":", 1, true) and "[%s]:%s" or "%s:%s"):format(addr, port)
    end
    rawset(ctx, "peer", peer)
    return peer
  end
  return nil
end

-- The context of a request, made only when a handler or a hook asks.
local function make_context(opts)
  local ctx = setmetatable({ var = ngx.var, method = ngx.req.get_method() }, Context)
  if opts.context then opts.context(ctx) end
  return ctx
end

--- serve(server [, opts]): answers the request as JSON-RPC over HTTP.
-- opts: max_message_size (default the listeners' 16 MiB), context
-- (function(ctx) that adds to the handlers' context), concurrent (a
-- batch's members each in a light thread, as handle's).
local NO_OPTS = {}

function M.serve(server, opts)
  opts = opts == nil and NO_OPTS or check_opts(opts, SERVE_OPTS, "serve")
  local max = opts.max_message_size or core.defaults.listen_max_message_size
  local req = ngx.req
  local method = req.get_method()
  if method ~= "POST" then
    ngx.header["Allow"] = "POST"
    return plain(405, "JSON-RPC takes POST, not " .. method)
  end
  local var = ngx.var
  if not is_json_type(var.content_type) then
    return plain(415, "Content-Type must be application/json, not " .. tostring(var.content_type or "none"))
  end
  local length = tonumber(var.content_length)
  if length and length > max then
    return plain(413, ("the body (%d bytes) is over max_message_size (%d)"):format(length, max))
  end
  req.read_body()
  local body = req.get_body_data()
  if body == nil then
    local path = req.get_body_file()
    if path then
      local err, size
      body, err, size = read_body_file(path, max)
      if not body and err == "too large" then
        return plain(413, ("the body (%d bytes) is over max_message_size (%d)"):format(size, max))
      elseif not body then
        ngx.log(ngx.ERR, "jsonrpc: cannot read the request body from ", path, ": ", err)
        return plain(500, "cannot read the request body")
      end
    end
  end
  body = body or ""
  if #body > max then
    return plain(413, ("the body (%d bytes) is over max_message_size (%d)"):format(#body, max))
  end
  local answer = handle_here(server, body, nil, opts.concurrent, make_context, opts)   -- content: it may yield
  if answer == nil then
    ngx.status = 204
    return
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #answer
  ngx.print(answer)
end

-- ---- connections over cosockets ----

local CONNECT_OPTS = set_of{ "framing", "max_message_size", "server", "timeout", "connect_timeout",
  "send_timeout", "read_timeout", "on_stray", "on_close", "null", "headers", "keepalive_timeout",
  "pool_size" }

local function ms(seconds, default)
  if seconds == nil then return default end
  if type(seconds) ~= "number" or seconds < 0 then error("jsonrpc.ngx.connect: a timeout is seconds from 0", 4) end
  return math.floor(seconds * 1000)
end

local Conn = setmetatable({}, { __index = endpoint.Endpoint })
Conn.__index = Conn
M.Connection = Conn

local function closed_error(conn)
  return local_error(codes.CONNECTION_CLOSED, "connection closed: " .. conn.close_reason)
end

--- The connection has ended: calls waiting fail, hooks run, the writer
-- stops; the socket closes once neither light thread uses it.
function Conn:_lost(reason)
  if self.closed then return end
  self.closed, self.close_reason = true, reason
  self:_fail_all(closed_error(self))
  if self.wake_writer then self.wake_writer:post(1) end
  if self.wake_dispatcher then self.wake_dispatcher:post(1) end
  for _, hook in ipairs(self.on_close_hooks) do
    local ok, err = pcall(hook, reason, self)
    if not ok then log_report("on_close failed: " .. tostring(err)) end
  end
end

function Conn:_io_done(which)
  self[which] = nil
  if not self.reader and not self.writer and self.sock then
    self.sock:close()
    self.sock = nil
  end
end

-- What handlers' answers and our calls send: queued for the writer (an
-- answer is sent from inside the C engine, where nothing may yield).
function Conn:_queue(bytes)
  if self.closed then error(closed_error(self), 0) end
  local out = self.out
  out[#out + 1] = bytes
  self.wake_writer:post(1)
end

local function writer_loop(conn)
  local sema = conn.wake_writer
  while not conn.closed do
    sema:wait(3600)
    while conn.out[1] and not conn.closed do
      local data = concat(conn.out)
      conn.out = {}
      local ok, err = conn.sock:send(data)
      if not ok then conn:_lost("send failed: " .. tostring(err)) end
    end
  end
  conn:_io_done("writer")
end

-- Starts the handlers the reader received, as light threads of its own,
-- and reaps those that finished. The reader must not start them: it may
-- be killed (close), and a killed thread's finished children are never
-- reaped, which would hold the request open forever.
local function dispatcher_loop(conn, run_jobs)
  local sema = conn.wake_dispatcher
  while not conn.closed do
    sema:wait(1)
    run_jobs()
  end
end

local function reader_loop(conn)
  local sock, framer = conn.sock, conn.framer
  while not conn.closed do
    local data, err = sock:receiveany(65536)
    if data then
      local messages, framing_err = framer:feed(data)
      for i = 1, #messages do
        local ok, rerr = pcall(conn.receive, conn, messages[i])
        if not ok then log_report("receiving: " .. tostring(rerr)) end
      end
      if framing_err then
        pcall(conn._queue, conn, framer:frame(core.encode{ jsonrpc = "2.0", id = core.null,
          error = { code = codes.INVALID_REQUEST, message = "Invalid Request", data = framing_err } }))
        conn:_lost("framing error: " .. framing_err)
      end
    elseif err ~= "timeout" then
      conn:_lost(err == "closed" and "closed by the peer" or ("receive failed: " .. tostring(err)))
    end
  end
  conn:_io_done("reader")
end

--- conn:close([reason]): ends the connection; calls waiting fail.
function Conn:close(reason)
  self:_lost(reason or "closed")
  -- a reader waits in receive: only the thread that connected may kill
  -- it; elsewhere it stops when its read returns (read_timeout)
  if self.reader and ngx.thread.kill(self.reader) then self:_io_done("reader") end
end

function Conn:is_closed() return self.closed == true end

function Conn:on_close(fn)
  if self.closed then fn(self.close_reason, self) else
    self.on_close_hooks[#self.on_close_hooks + 1] = fn
  end
  return self
end

local function new_endpoint(send, opts)
  local conn = endpoint.new{ send = send, server = opts.server, timeout = opts.timeout,
                             on_stray = opts.on_stray, null = opts.null, context = {},
                             log = log_handler_error, report = log_report }
  conn.context.connection = conn
  conn.on_close_hooks = {}
  if opts.on_close then conn.on_close_hooks[1] = opts.on_close end
  return setmetatable(conn, Conn)
end

local function stream_connect(url, target, opts)
  local framer = core.framer(opts.framing or "content-length",
                             { max_message_size = opts.max_message_size })
  local sock = ngx.socket.tcp()
  sock:settimeouts(ms(opts.connect_timeout, 60000), ms(opts.send_timeout, 60000),
                   ms(opts.read_timeout, 60000))
  local ok, err
  if target.kind == "unix" then ok, err = sock:connect("unix:" .. target.path)
  else ok, err = sock:connect(target.host, target.port) end
  if not ok then
    return nil, local_error(codes.CONNECTION_FAILED, ("cannot connect to %s: %s"):format(url, err))
  end
  local conn
  conn = new_endpoint(function(text) return conn:_queue(framer:frame(text)) end, opts)
  conn.url, conn.sock, conn.framer, conn.out = url, sock, framer, {}
  conn.context.transport = target.kind
  conn.context.peer = target.kind == "tcp" and (target.host:find(":", 1, true) and "[%s]:%d" or "%s:%d")
                      :format(target.host, target.port) or "local"
  local semaphore = require "ngx.semaphore"
  conn.wake_writer, conn.wake_dispatcher = semaphore.new(0), semaphore.new(0)
  local run_jobs = conn.run_jobs
  conn.run_jobs = function() conn.wake_dispatcher:post(1) end
  ngx.thread.spawn(dispatcher_loop, conn, run_jobs)
  conn.writer = ngx.thread.spawn(writer_loop, conn)
  conn.reader = ngx.thread.spawn(reader_loop, conn)
  return conn
end

-- ---- HTTP: each text one POST on a pooled keep-alive socket ----

local function http_error(message)
  return local_error(codes.CONNECTION_FAILED, message)
end

-- Reads a response body: by Content-Length, chunked, or to the close.
local function read_http_body(sock, headers, max)
  local length = tonumber(headers["content-length"])
  if length then
    if length > max then return nil, "response over max_message_size" end
    if length == 0 then return "" end
    return sock:receive(length)
  end
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      local line, err = sock:receive("*l")
      if not line then return nil, err end
      local size = tonumber(line:match("^%s*(%x+)"), 16)
      if not size then return nil, "bad chunk size" end
      if size == 0 then
        repeat line, err = sock:receive("*l") until not line or line == ""
        return concat(parts)
      end
      total = total + size
      if total > max then return nil, "response over max_message_size" end
      local chunk, cerr = sock:receive(size)
      if not chunk then return nil, cerr end
      parts[#parts + 1] = chunk
      sock:receive("*l")
    end
  end
  headers.connection = "close"
  return sock:receive("*a")
end

local function http_post(conn, text)
  local target, opts = conn.target, conn.opts
  local sock = ngx.socket.tcp()
  sock:settimeouts(ms(opts.connect_timeout, 60000), ms(opts.send_timeout, 60000),
                   ms(opts.read_timeout, 60000))
  local ok, err = sock:connect(target.host, target.port)
  if not ok then error(http_error(("cannot connect to %s: %s"):format(conn.url, err)), 0) end
  local request = { "POST ", target.path, " HTTP/1.1\r\nHost: ", target.authority,
    "\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ",
    tostring(#text), "\r\n", conn.extra_headers, "\r\n", text }
  ok, err = sock:send(request)
  local status_line = ok and sock:receive("*l")
  if not status_line then
    sock:close()
    error(http_error(("%s: %s"):format(conn.url, err or "closed before the status line")), 0)
  end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    local line, herr = sock:receive("*l")
    if not line then sock:close(); error(http_error(conn.url .. ": " .. tostring(herr)), 0) end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local body, berr = read_http_body(sock, headers, conn.max_message_size)
  if not body then sock:close(); error(http_error(conn.url .. ": " .. tostring(berr)), 0) end
  if (headers.connection or ""):lower() == "close" then sock:close()
  else sock:setkeepalive(conn.keepalive_ms, conn.pool_size) end
  if status == 200 and body ~= "" then
    conn:receive(body)
  elseif status ~= 200 and status ~= 204 then
    error(http_error(("%s answered HTTP %s: %s"):format(conn.url, tostring(status),
                                                         body:sub(1, 200))), 0)
  end
end

local function http_connect(url, target, opts)
  local conn
  conn = new_endpoint(function(text) return http_post(conn, text) end, opts)
  local extra = {}
  for name, value in pairs(opts.headers or {}) do extra[#extra + 1] = name .. ": " .. value .. "\r\n" end
  conn.url, conn.target, conn.opts, conn.extra_headers = url, target, opts, concat(extra)
  conn.context.transport, conn.context.peer = "http", target.authority
  conn.max_message_size = opts.max_message_size or core.defaults.max_message_size
  conn.keepalive_ms = ms(opts.keepalive_timeout, 60000)
  conn.pool_size = opts.pool_size or 16
  return conn
end

--- connect(url [, opts]) -> conn | nil, err: tcp://, unix:// (one
-- socket, in any of the three framings, both sides calling) or http://
-- (each call a POST on a pooled keep-alive socket).
function M.connect(url, opts)
  opts = check_opts(opts, CONNECT_OPTS, "connect")
  need_yieldable("connect")
  local target, why = url_of.parse(url, true)
  if not target then return nil, local_error(codes.CONNECTION_FAILED, why) end
  if target.kind == "http" then return http_connect(url, target, opts) end
  return stream_connect(url, target, opts)
end

return M
