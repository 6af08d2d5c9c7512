--- Connections over the event loop: an endpoint on a framed stream.
--
-- jsonrpc.connect(url [, opts]) -> connection | nil, err
-- server:listen(url [, opts]) -> listener | nil, err
-- jsonrpc.run([mode])
--
-- URLs: tcp://HOST:PORT (IPv6: tcp://[::1]:PORT; port 0 picks a free port)
-- and unix:///path/to.sock.
local core = require "jsonrpc.core"
local endpoint = require "jsonrpc.endpoint"

local codes = core.codes
local local_error = endpoint.local_error
local waitable_coroutine = endpoint.waitable_coroutine
local has_luv, luv = pcall(require, "luv")
local yield, resume = coroutine.yield, core.resume
local isyieldable = coroutine.isyieldable

local defaults = core.defaults       -- the limits' defaults, from C
local DEFAULT_MAX_IN_FLIGHT = 128   -- handlers waiting at once, per connection
local DEFAULT_STDERR_LIMIT = 65536  -- bytes of a child's stderr kept in conn.stderr

-- The options each entry point takes; another name is a mistake, and
-- raises rather than being ignored.
local CONNECTION_OPTS = { "framing", "max_message_size", "on_close", "on_error", "on_stray",
  "timeout", "max_in_flight", "write_high_water", "frame_timeout", "idle_timeout", "send_timeout",
  "start", "wait" }
local OPTS = {
  connect = { "server" },
  listen = { "on_connection", "max_connections", "max_connections_per_address", "max_buffered_bytes" },
  stdio = { "guard_print" },
  spawn = { "server", "stderr", "on_stderr", "on_exit", "stderr_limit" },
}
for _, names in pairs(OPTS) do
  local set = {}
  for _, n in ipairs(CONNECTION_OPTS) do set[n] = true end
  for _, n in ipairs(names) do set[n] = true end
  OPTS[_] = set
end

--- opts, checked against the names `what` takes; {} when nil.
local function check_opts(opts, what)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(what .. ": options must be a table", 3) end
  for name in pairs(opts) do
    if not OPTS[what][name] then error(("%s: unknown option %s"):format(what, tostring(name)), 3) end
  end
  return opts
end

local M = {}

--- {kind = "tcp", host, port} or {kind = "unix", path}; nil and why.
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "URL must be a string" end
  local host, port = url:match("^tcp://%[([^%]]+)%]:(%d+)$")
  if not host then host, port = url:match("^tcp://([^:/%[%]]+):(%d+)$") end
  if host then
    port = tonumber(port)
    if port > 65535 then return nil, "port out of range in " .. url end
    return { kind = "tcp", host = host, port = port }
  end
  local path = url:match("^unix://(/.+)$")
  if path then return { kind = "unix", path = path } end
  return nil, ("unsupported URL %q (expected tcp://HOST:PORT or unix:///PATH)"):format(url)
end

local function format_url(kind, host, port)
  if kind == "unix" then return "unix://" .. host end
  if host:find(":", 1, true) then return ("tcp://[%s]:%d"):format(host, port) end
  return ("tcp://%s:%d"):format(host, port)
end

--- Waits until done() is true: in a coroutine by yielding (wake resumes
-- it), else by running the loop, which must not be running already (we
-- would be inside one of its callbacks). Returns done().
local function await(done, set_wake)
  if done() then return true end
  local co = waitable_coroutine()
  if co then
    set_wake(function()
      if coroutine.status(co) == "suspended" then
        local ok, err = resume(co)
        if not ok then error(err, 0) end
      end
    end)
    repeat yield() until done()
    return true
  end
  if has_luv and luv.loop_mode and luv.loop_mode() then return false end
  while not done() do
    local ok, alive = pcall(core.run, "once")
    if not ok or (not alive and not done()) then break end
  end
  return done()
end

--- The wait function endpoints use outside coroutines.
local function run_until(done)
  await(done, function() end)
end

---------------------------------------------------------------------------
-- Connections: an endpoint whose texts travel on a stream.

local Connection = setmetatable({}, { __index = endpoint.Endpoint })
Connection.__index = Connection

local LOG_BURST = 5   -- messages a reporter passes on per second

--- A reporter: passes messages to on_error (default: a line on stderr),
-- at most LOG_BURST a second, so that a peer provoking errors cannot
-- flood the log; one line then says how many were left out.
local function new_reporter(on_error)
  local sink = on_error or function(message) io.stderr:write("jsonrpc: ", message, "\n") end
  local second, count, dropped, timer = nil, 0, 0, nil
  local function pass(message)
    local ok, err = pcall(sink, message)
    if not ok then io.stderr:write("jsonrpc: on_error failed: ", tostring(err), "\n") end
  end
  return function(message)
    local now = os.time()
    if now ~= second then second, count = now, 0 end
    count = count + 1
    if count <= LOG_BURST then return pass(message) end
    dropped = dropped + 1
    if timer then return end
    timer = core.timer(1000, function()
      timer = nil
      local n = dropped
      dropped = 0
      pass(("%d more messages like these were left out in the last second"):format(n))
    end)
  end
end

local function report(conn, message)
  conn.reporter(message)
end

local function wrap(stream, opts, transport)
  local conn
  local high_water = stream:high_water(opts.write_high_water)
  local reporter = opts.reporter or new_reporter(opts.on_error)
  conn = endpoint.new{
    send = function(text)
      local queued, err = stream:write(text)
      if not queued then
        error(local_error(codes.CONNECTION_CLOSED, "connection closed: " .. tostring(err)), 0)
      end
      -- a coroutine (a handler sending many notifications) waits while the
      -- peer is behind, rather than piling texts up in memory (not on plain
      -- Lua 5.1, which cannot tell whether a pcall is in the way)
      if queued > high_water and isyieldable and waitable_coroutine() then conn:flush() end
    end,
    server = opts.server,
    on_stray = opts.on_stray,
    -- the host's ways to start handlers and to wait, or ours
    start = opts.start,
    wait = opts.wait or run_until,
    set_timer = core.timer,
    timeout = opts.timeout,
    -- its handlers' plain errors, when the server has no on_error hook
    log = function(message, traceback)
      local text = traceback ~= nil and traceback ~= "" and traceback or message
      reporter("handler error: " .. tostring(text))
    end,
    -- errors raised by our callbacks while the stream delivers
    report = function(message) reporter(tostring(message)) end,
  }
  setmetatable(conn, Connection)
  conn.stream = stream
  conn.reporter = reporter
  conn.on_close_hooks = {}
  conn.drain_waiters = {}
  stream:on_drain(function() conn:_wake_drained() end)
  conn.context = { peer = stream:peer(), transport = transport, connection = conn }
  conn.core:set_context(conn.context)
  -- messages go from the stream to the endpoint in C, answers back;
  -- on_message hears only of framing errors
  stream:serve(conn.core, opts.max_in_flight or DEFAULT_MAX_IN_FLIGHT)
  stream:on_message(function(_, err) report(conn, tostring(err)) end)
  stream:on_close(function(reason, errno) conn:_closed(reason, errno) end)
  -- the peer shut down its side (a half-close, or stdin's end): it can
  -- answer nothing more, so the calls waiting on it fail; the requests it
  -- sent are still answered, then the stream closes
  stream:on_eof(function()
    conn:_fail_all(local_error(codes.CONNECTION_CLOSED, "connection closed: the peer shut down its side"))
  end)
  if opts.on_close then conn.on_close_hooks[1] = opts.on_close end
  if opts.frame_timeout or opts.idle_timeout or opts.send_timeout then
    stream:timeouts(opts.frame_timeout or 0, opts.idle_timeout or 0, opts.send_timeout or 0)
  end
  return conn
end

function Connection:_closed(reason, errno)
  self.closed_reason = reason
  self:_fail_all(local_error(codes.CONNECTION_CLOSED, "connection closed: " .. reason, errno))
  for _, hook in ipairs(self.on_close_hooks) do
    local ok, err = pcall(hook, reason, self)
    if not ok then report(self, "on_close hook failed: " .. tostring(err)) end
  end
  local wake = self.wake_closed
  self.wake_closed = nil
  if wake then wake() end
  self:_wake_drained()
end

function Connection:_wake_drained()
  local waiters = self.drain_waiters
  self.drain_waiters = {}
  for _, wake in ipairs(waiters) do wake() end
end

--- Closes the connection; calls still waiting fail with CONNECTION_CLOSED.
function Connection:close(reason)
  self.stream:close(reason or "closed")
end

--- Closes gracefully: reads no more requests, lets the handlers in flight
-- finish and their answers be written, then closes.
function Connection:shutdown(reason)
  self.stream:shutdown(reason or "closed")
end

function Connection:is_closed()
  return self.closed_reason ~= nil or self.stream:is_closing()
end

--- Waits until everything queued has been written (closing would cancel
-- what is still queued).
function Connection:flush()
  local stream = self.stream
  if self:is_closed() or stream:flush() == 0 then return end
  await(function() return self:is_closed() or stream:queued() == 0 end,
    function(wake) local w = self.drain_waiters; w[#w + 1] = wake end)
end

--- Registers fn(reason, connection) to run when the connection closes.
function Connection:on_close(fn)
  self.on_close_hooks[#self.on_close_hooks + 1] = fn
  return self
end

--- A spawned child's connection: waits until the child has exited;
-- returns its exit code and the signal that ended it (0 if none).
function Connection:wait_exit()
  if not self.process then error("wait_exit: not a spawned process's connection", 2) end
  await(function() return self.exit_code ~= nil end,
    function(wake) self.wake_exit = wake end)
  return self.exit_code, self.exit_signal
end

--- Waits until the connection is closed; returns the reason.
function Connection:wait_closed()
  await(function() return self.closed_reason ~= nil end,
    function(wake) self.wake_closed = wake end)
  return self.closed_reason
end

---------------------------------------------------------------------------
-- Connecting and listening.

local function framing_of(opts, max_default)
  return opts.framing or "content-length", opts.max_message_size or max_default or defaults.max_message_size
end

-- A callback that hands its arguments to record, marks state done and
-- wakes whoever waits on it (wait_done).
local function settling(state, record)
  return function(...)
    record(...)
    state.done = true
    if state.wake then state.wake() end
  end
end

-- Waits until state is done: true, or nil and NO_EVENT_LOOP.
local function wait_done(state)
  if await(function() return state.done end, function(wake) state.wake = wake end) then
    return true
  end
  return nil, local_error(codes.NO_EVENT_LOOP, "connecting: the loop is running and this is not a coroutine")
end

--- The addresses of host, looked up without blocking the loop (luv's
-- getaddrinfo runs on libuv's thread pool); nil and an error value when
-- there are none. An address is its own answer, and so is any host when
-- luv is missing: the C side then resolves it, synchronously.
local function lookup(host, port)
  if host:match("^[%d.]+$") or host:find(":", 1, true) or not (has_luv and luv.getaddrinfo) then
    return { host }
  end
  local state = {}
  local ok, err = pcall(luv.getaddrinfo, host, tostring(port), { socktype = "stream" },
    settling(state, function(lerr, found) state.err, state.found = lerr, found end))
  if not ok then return nil, local_error(codes.CONNECTION_FAILED, tostring(err)) end
  ok, err = wait_done(state)
  if not ok then return nil, err end
  local addrs = {}
  for _, a in ipairs(state.found or {}) do addrs[#addrs + 1] = a.addr end
  if #addrs == 0 then
    return nil, local_error(codes.CONNECTION_FAILED,
      ("cannot resolve %s: %s"):format(host, tostring(state.err or "no address")),
      type(state.err) == "string" and state.err:match("^(E[%u%d_]+)") or nil)
  end
  return addrs
end

-- One attempt at one address (or socket path).
local function connect_to(kind, where, port, opts)
  local framing, max = framing_of(opts)
  local state = {}
  local ok, err, errno = core.connect(kind, where, port, framing, max,
    settling(state, function(stream, cerr, cerrno)
      if stream then state.conn = wrap(stream, opts, kind) else state.err, state.errno = cerr, cerrno end
    end))
  if not ok then return nil, local_error(codes.CONNECTION_FAILED, tostring(err), errno) end
  ok, err = wait_done(state)
  if not ok then return nil, err end
  if state.err then return nil, local_error(codes.CONNECTION_FAILED, state.err, state.errno) end
  return state.conn
end

--- connect(url [, opts]) -> connection | nil, err. Waits for the connection
-- (yielding in a coroutine, else running the loop). A host name's addresses
-- are tried in turn.
function M.connect(url, opts)
  opts = check_opts(opts, "connect")
  local u, why = M.parse_url(url)
  if not u then return nil, local_error(codes.CONNECTION_FAILED, why) end
  if u.kind ~= "tcp" then return connect_to(u.kind, u.path, 0, opts) end
  local addrs, err = lookup(u.host, u.port)
  if not addrs then return nil, err end
  local conn
  for _, addr in ipairs(addrs) do
    conn, err = connect_to("tcp", addr, u.port, opts)
    if conn or err.code ~= codes.CONNECTION_FAILED then break end
  end
  return conn, err
end

-- What wrap takes from the options of stdio, spawn and listen; a
-- timeout given as false is off (0), nil takes the default.
local function connection_opts(server, opts, timeouts)
  local function timeout(name)
    local v = opts[name]
    if v == false then return 0 end
    if v == nil then return timeouts and timeouts[name] end
    return v
  end
  return { server = server, on_stray = opts.on_stray, on_error = opts.on_error,
           on_close = opts.on_close, timeout = opts.timeout,
           max_in_flight = opts.max_in_flight, start = opts.start, wait = opts.wait,
           write_high_water = opts.write_high_water or (timeouts and timeouts.listen_write_high_water),
           frame_timeout = timeout("frame_timeout"), idle_timeout = timeout("idle_timeout"),
           send_timeout = timeout("send_timeout") }
end

--- stdio(server [, opts]) -> connection | nil, err: serves (and calls) the
-- peer on this process's own stdin and stdout. While it is open, print
-- writes to stderr (opts.guard_print = false keeps print as it is): a
-- stray print to stdout would corrupt the stream.
function M.stdio(server, opts)
  opts = check_opts(opts, "stdio")
  local framing, max = framing_of(opts)
  local stream, err, errno = core.stdio(framing, max)
  if not stream then return nil, local_error(codes.CONNECTION_FAILED, err, errno) end
  local conn = wrap(stream, connection_opts(server, opts), "stdio")
  if opts.guard_print ~= false then
    local original = print
    local function to_stderr(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      io.stderr:write(table.concat(parts, "\t"), "\n")
    end
    _G.print = to_stderr
    conn:on_close(function() if _G.print == to_stderr then _G.print = original end end)
  end
  return conn
end

--- spawn({cmd, arg...} [, opts]) -> connection | nil, err: runs a program
-- and talks to it over its stdin and stdout. opts.stderr: "inherit" (the
-- default), "ignore" or "capture" (opts.on_stderr(chunk) and then
-- on_stderr(nil), or else the text collected in conn.stderr);
-- opts.on_exit(code, signal). When the child exits
-- the connection closes and the calls waiting on it fail.
function M.spawn(cmd, opts)
  if type(cmd) ~= "table" or type(cmd[1]) ~= "string" then
    error("jsonrpc.spawn: expected {program, arg...}", 2)
  end
  opts = check_opts(opts, "spawn")
  local framing, max = framing_of(opts)
  local args = {}
  for i = 2, #cmd do args[i - 1] = tostring(cmd[i]) end
  local holder = {}
  local on_stderr = nil
  if opts.stderr == "capture" then
    -- without on_stderr, conn.stderr keeps the last stderr_limit bytes:
    -- each chunk costs at most that much, however much the child writes
    local limit = opts.stderr_limit or DEFAULT_STDERR_LIMIT
    on_stderr = function(chunk)
      local conn = holder.conn
      if opts.on_stderr then
        local ok, err = pcall(opts.on_stderr, chunk)
        if not ok then report(conn, "on_stderr failed: " .. tostring(err)) end
      elseif chunk then
        local text = (conn.stderr or "") .. chunk
        if #text > limit then text = text:sub(-limit) end
        conn.stderr = text
      end
    end
  end
  local stream, process, errno = core.spawn(cmd[1], args, framing, max, opts.stderr or "inherit",
    function(code, signal)
      local conn = holder.conn
      conn.exit_code, conn.exit_signal = code, signal
      if opts.on_exit then
        local ok, err = pcall(opts.on_exit, code, signal)
        if not ok then report(conn, "on_exit failed: " .. tostring(err)) end
      end
      conn:close(signal ~= 0 and ("the child was killed by signal " .. signal)
                 or ("the child exited with code " .. code))
      local wake = conn.wake_exit
      conn.wake_exit = nil
      if wake then wake() end
    end, on_stderr)
  if not stream then return nil, local_error(codes.CONNECTION_FAILED, process, errno) end
  local conn = wrap(stream, connection_opts(opts.server, opts), "process")
  conn.process = process
  holder.conn = conn
  return conn
end

local server_state = setmetatable({}, { __mode = "k" })

local function state_of(server)
  local s = server_state[server]
  if not s then
    s = { listeners = {}, connections = setmetatable({}, { __mode = "k" }) }
    server_state[server] = s
  end
  return s
end

--- server:listen(url [, opts]) -> listener | nil, err. The listener has
-- url (with the real port), address() and close().
function M.listen(server, url, opts)
  opts = check_opts(opts, "listen")
  for _, name in ipairs{ "max_connections", "max_connections_per_address" } do
    local v = opts[name]
    if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= math.floor(v)) then
      error(("listen: %s must be a whole number from 1"):format(name), 2)
    end
  end
  local u, why = M.parse_url(url)
  if not u then return nil, local_error(codes.CONNECTION_FAILED, why) end
  local framing, max = framing_of(opts, defaults.listen_max_message_size)
  local state = state_of(server)
  local conn_opts = connection_opts(server, opts, defaults)
  -- the listener's connections share one reporter, and so one rate limit
  conn_opts.reporter = new_reporter(opts.on_error)
  local limits = { max_connections = opts.max_connections, on_error = conn_opts.reporter,
                   max_connections_per_address = opts.max_connections_per_address,
                   max_buffered_bytes = opts.max_buffered_bytes }
  local listener, err, errno = core.listen(u.kind, u.host or u.path, u.port or 0, framing, max,
    function(stream)
      local conn = wrap(stream, conn_opts, u.kind)
      state.connections[conn] = true
      if opts.on_connection then opts.on_connection(conn) end
    end, limits)
  if not listener then
    return nil, local_error(codes.CONNECTION_FAILED, ("cannot listen on %s: %s"):format(url, err), errno)
  end
  state.listeners[#state.listeners + 1] = listener
  local host, port = listener:address()
  return setmetatable({ url = format_url(u.kind, host, port), handle = listener }, {
    __index = {
      address = function(self) return self.handle:address() end,
      connections = function(self) return self.handle:connections() end,
      close = function(self) self.handle:close() end,
    },
  })
end

--- server:close([{graceful = true}]): stops listening and closes the
-- server's connections: at once, or gracefully (the handlers in flight
-- finish and their answers are written first).
function M.close_server(server, opts)
  local state = state_of(server)
  for _, l in ipairs(state.listeners) do l:close() end
  state.listeners = {}
  for conn in pairs(state.connections) do
    if opts and opts.graceful then conn:shutdown("server closed") else conn:close("server closed") end
  end
end

M.run = core.run

return M
