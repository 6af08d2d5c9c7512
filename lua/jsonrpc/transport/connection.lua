--- Connections: an endpoint (jsonrpc.endpoint) whose texts travel on a
-- stream of the C engine, with the options, waiting and reporting every
-- transport shares (transport/init.lua: sockets; transport/process.lua:
-- stdio and child processes).
local core = require "jsonrpc.core"
local endpoint = require "jsonrpc.endpoint"
local host = require "jsonrpc.host"
local drivers = require "jsonrpc.transport.driver"

local codes = core.codes
local local_error = endpoint.local_error
local waitable_coroutine = endpoint.waitable_coroutine
local has_luv, luv = pcall(require, "luv")
local yield, resume = coroutine.yield, core.resume
local isyieldable = coroutine.isyieldable

local defaults = core.defaults       -- the limits' defaults, from C
local DEFAULT_MAX_IN_FLIGHT = 128   -- handlers waiting at once, per connection

-- The options each entry point takes; another name is a mistake, and
-- raises rather than being ignored.
local CONNECTION_OPTS = { "framing", "max_message_size", "on_close", "on_error", "on_stray",
  "timeout", "max_in_flight", "write_high_water", "frame_timeout", "idle_timeout", "send_timeout",
  "start", "wait", "null", "schedule", "driver" }
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


--- Waits until done() is true: in a coroutine by yielding (wake resumes
-- it, through schedule when there is one), else by running the loop,
-- which must not be running already (we would be inside one of its
-- callbacks). Returns done().
local function await(done, set_wake, schedule)
  if done() then return true end
  local co = waitable_coroutine()
  if co then
    set_wake(host.deferred(schedule, function()
      if coroutine.status(co) == "suspended" then
        local ok, err = resume(co)
        if not ok then error(err, 0) end
      end
    end))
    repeat yield() until done()
    return true
  end
  local vim = host.neovim()
  if vim then   -- nvim runs the loop: wait as vim.wait does, or not at all
    host.neovim_wait(done)
    return done()
  end
  if has_luv and luv.loop_mode and luv.loop_mode() then return false end
  while not done() do
    local ok, alive = pcall(drivers.of().run, "once")
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
local function new_reporter(on_error, driver)
  local timer_of = (driver or drivers.of()).timer
  local sink = on_error or host.error_sink()
               or function(message) io.stderr:write("jsonrpc: ", message, "\n") end
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
    timer = timer_of(1000, function()
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
  local driver = drivers.of(opts.driver)
  local reporter = opts.reporter or new_reporter(opts.on_error, driver)
  local schedule = host.scheduler(host.schedule_option(opts.schedule, opts.server))
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
    -- the host's ways to start handlers and to wait, or ours; in Neovim
    -- handlers start scheduled on its main loop, where vim.api works
    start = opts.start or (schedule and host.scheduled_start(schedule, reporter)),
    schedule = schedule,
    wait = opts.wait or (host.neovim() and host.neovim_wait) or run_until,
    null = opts.null,   -- what null decodes to on this connection
    set_timer = driver.timer,
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
  conn.schedule = schedule
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

local function run_close_hooks(conn, reason)
  for _, hook in ipairs(conn.on_close_hooks) do
    local ok, err = pcall(hook, reason, conn)
    if not ok then report(conn, "on_close hook failed: " .. tostring(err)) end
  end
end

function Connection:_closed(reason, errno)
  self.closed_reason = reason
  self:_fail_all(local_error(codes.CONNECTION_CLOSED, "connection closed: " .. reason, errno))
  host.deferred(self.schedule, run_close_hooks)(self, reason)
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
    function(wake) local w = self.drain_waiters; w[#w + 1] = wake end, self.schedule)
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
    function(wake) self.wake_exit = wake end, self.schedule)
  return self.exit_code, self.exit_signal
end

--- Waits until the connection is closed; returns the reason.
function Connection:wait_closed()
  await(function() return self.closed_reason ~= nil end,
    function(wake) self.wake_closed = wake end, self.schedule)
  return self.closed_reason
end


local function framing_of(opts, max_default)
  return opts.framing or "content-length", opts.max_message_size or max_default or defaults.max_message_size
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
           null = opts.null, schedule = opts.schedule, driver = opts.driver,
           write_high_water = opts.write_high_water or (timeouts and timeouts.listen_write_high_water),
           frame_timeout = timeout("frame_timeout"), idle_timeout = timeout("idle_timeout"),
           send_timeout = timeout("send_timeout") }
end

return {
  Connection = Connection,
  check_opts = check_opts,
  connection_opts = connection_opts,
  framing_of = framing_of,
  wrap = wrap,
  await = await,
  new_reporter = new_reporter,
  report = report,
}
