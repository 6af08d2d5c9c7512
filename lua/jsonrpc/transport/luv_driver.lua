--- The luv driver: the transports' I/O through luv's Lua API (uv.new_tcp,
-- uv.new_pipe, uv.new_timer...) instead of the C libuv driver. Framing
-- (core.framer), the codec and dispatch (the C endpoint) stay in C; only
-- the sockets and timers are luv's. It serves where the libuv our module
-- links is not the one luv runs (an editor that links libuv statically):
-- there, a handle of ours on luv's loop would be driven by another copy
-- of libuv. The streams and listeners it makes have the methods of the C
-- ones (docs/internals.md), so the connections above do not know which
-- driver they run on.
local core = require "jsonrpc.core"
local uv = require "luv"

local M = { name = "luv" }

local defaults = core.defaults
local HIGH_WATER = 8388608   -- the C streams' default
local LISTEN_MAX_BUFFERED = 536870912

--- The libuv error's name in a luv error message ("ECONNREFUSED: ...").
local function errno_of(err)
  return type(err) == "string" and err:match("^(E[%u%d_]+)") or nil
end

--- A luv error message as libuv's uv_strerror says it ("connection
-- refused"), as the C driver reports them.
local function strerror(err)
  err = tostring(err)
  return err:match("^E[%u%d_]+: (.*)$") or core.strerror(err) or err
end

-- Handles whose close is still pending. Debian's luv 1.44 crashes when
-- the Lua state closes with one (a handle's finalizer frees what its close
-- callback then uses). So each close makes a new sentinel, held here: the
-- Lua state finalizes in the reverse order of creation, so at its close
-- the sentinel's finalizer runs before the handle's, and lets the pending
-- closes finish. A replaced sentinel, collected on the way, does nothing.
local closing = 0
local sentinel

local function on_state_close(self)
  if self == sentinel and closing > 0 and not uv.loop_mode() then pcall(uv.run, "nowait") end
end

local function new_sentinel()
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = on_state_close
    return p
  end
  return setmetatable({}, { __gc = on_state_close })
end

local function close_handle(h, cb)
  closing = closing + 1
  sentinel = new_sentinel()
  h:close(function()
    closing = closing - 1
    if cb then cb() end
  end)
end

--- A luv call that may raise or return nil, err: its result, or nil and
-- the error message.
local function try(fn, ...)
  local ok, r, err = pcall(fn, ...)
  if not ok then return nil, tostring(r) end
  if r == nil then return nil, tostring(err) end
  return r
end

-- ---- timers ----

-- Stopped timers are kept for the next one rather than closed: Debian's
-- luv 1.44 crashes at exit on a handle whose close is still pending, and
-- a call's timeout is stopped just before a script ends more often than
-- not.
local spare = {}
local SPARE_MAX = 64

local Timer = {}
Timer.__index = Timer

local function retire(timer)
  local handle = timer.handle
  if timer.retired or handle:is_closing() then return end
  timer.retired = true
  handle:stop()
  if #spare < SPARE_MAX then spare[#spare + 1] = handle else close_handle(handle) end
end

function Timer:stop() retire(self) end
Timer.close = Timer.stop

function Timer:is_closing() return self.retired == true end

--- timer(ms, fn) -> timer: fn() once after ms, unless stopped first (as
-- core.timer); errors in fn are dropped.
function M.timer(ms, fn)
  local handle = table.remove(spare) or uv.new_timer()
  local timer = setmetatable({ handle = handle }, Timer)
  handle:start(math.floor(ms), 0, function()
    retire(timer)
    pcall(fn)
  end)
  return timer
end

--- run([mode]): the loop, as core.run (luv's uv.run); refused from inside
-- one of its callbacks.
function M.run(mode)
  if uv.loop_mode() then error("jsonrpc.run: the loop is already running", 2) end
  return uv.run(mode or "default")
end

-- ---- streams ----

local Stream = {}
Stream.__index = Stream

-- A stream reads `handle` and writes `writer` (the same handle for a
-- socket; a child's stdout and stdin, or fd 0 and fd 1, for processes).
local function new_stream(handle, framing, max, kind, limits, writer)
  return setmetatable({
    handle = handle, writer = writer or handle, kind = kind, limits = limits,
    framer = core.framer(framing, { max_message_size = max }),
    hw = HIGH_WATER, bytes_queued = 0, writes = 0,
    paused = false, throttled = false, full = false, reading = false,
    timeouts_s = { frame = 0, idle = 0, send = 0 },
  }, Stream)
end

local function call_back(s, fn, ...)
  if not fn then return end
  local ok, err = pcall(fn, ...)
  if not ok and s.report then s.report("callback failed: " .. tostring(err)) end
end

-- Reading goes on when nothing holds it back.
local function should_read(s)
  return not (s.closed or s.eof or s.finishing or s.draining or s.paused or s.throttled or s.full)
end

local deliver

local function update_reading(s)
  if s.closed or s.handle:is_closing() then return end
  local want = should_read(s)
  if want and not s.reading then
    s.reading = true
    s.handle:read_start(s.on_read)
  elseif not want and s.reading then
    s.reading = false
    s.handle:read_stop()
  end
end

-- ---- deadlines: the frame, idle and send timeouts ----

local function stop_deadline(s)
  if s.deadline then s.deadline:stop(); s.deadline = nil end
end

local function busy(s)
  return s.cep ~= nil and (s.cep:in_flight() > 0 or s.cep:pending() > 0)
end

local close

local function expire(s, what, seconds)
  local why = what == "frame" and "no complete frame" or what == "send" and "the peer read nothing"
              or "no traffic"
  close(s, ("%s timeout: %s within %g s"):format(what, why, seconds))
end

-- Re-arms the one timer of a stream's deadlines at the earliest due.
local function arm_deadline(s)
  stop_deadline(s)
  if s.closed then return end
  local t, now = s.timeouts_s, uv.now()
  local due, what
  local function consider(kind, since)
    local seconds = t[kind]
    if seconds > 0 and since then
      local at = since + seconds * 1000
      if not due or at < due then due, what = at, kind end
    end
  end
  consider("frame", s.reading and s.frame_since or nil)
  consider("send", s.unsent_since)
  if s.framer:buffered() == 0 and s.bytes_queued == 0 and not busy(s) then
    consider("idle", s.last_traffic or now)
  end
  if not due then
    -- only idleness pending on busy handlers: look again later
    if t.idle > 0 then s.deadline = M.timer(math.max(50, t.idle * 250), function() arm_deadline(s) end) end
    return
  end
  s.deadline = M.timer(math.max(0, due - now), function()
    s.deadline = nil
    local now2 = uv.now()
    if what == "frame" and s.frame_since and now2 - s.frame_since >= t.frame * 1000 then
      return expire(s, "frame", t.frame)
    elseif what == "send" and s.unsent_since and now2 - s.unsent_since >= t.send * 1000 then
      return expire(s, "send", t.send)
    elseif what == "idle" and s.framer:buffered() == 0 and s.bytes_queued == 0 and not busy(s)
           and now2 - (s.last_traffic or now2) >= t.idle * 1000 then
      return expire(s, "idle", t.idle)
    end
    arm_deadline(s)
  end)
end

local function any_timeout(s)
  local t = s.timeouts_s
  return t.frame > 0 or t.idle > 0 or t.send > 0
end

-- ---- closing ----

close = function(s, reason, errno)
  if s.closed then return end
  s.closed, s.reason = true, s.reason or reason
  if s.finish_reason and not reason then s.reason = s.finish_reason end
  stop_deadline(s)
  if s.shutdown_timer then s.shutdown_timer:stop(); s.shutdown_timer = nil end
  if s.limits then s.limits.release(s) end
  local on_close = s.on_close_fn
  local handles = { s.handle }
  if s.writer ~= s.handle then handles[2] = s.writer end
  local left = #handles
  local function closed()
    left = left - 1
    if left == 0 then call_back(s, on_close, s.reason, errno) end
  end
  for _, h in ipairs(handles) do
    if h:is_closing() then closed() else close_handle(h, closed) end
  end
end

local function finish_now(s)
  if s.finishing or s.closed then return end
  s.finishing = true
  update_reading(s)
  local ok = try(s.writer.shutdown, s.writer, function() close(s, s.finish_reason or "closed") end)
  if not ok then close(s, s.finish_reason or "closed") end
end

-- While draining (shutdown, or the peer's end), the stream finishes once
-- no handler waits.
local function check_drained(s)
  if s.draining and not s.finishing and not s.closed and (not s.cep or s.cep:in_flight() == 0) then
    finish_now(s)
    return true
  end
  return false
end

local function watch_drain(s)
  if s.shutdown_timer or check_drained(s) then return end
  local function tick()
    s.shutdown_timer = nil
    if not check_drained(s) and not s.closed then s.shutdown_timer = M.timer(10, tick) end
  end
  s.shutdown_timer = M.timer(10, tick)
end

-- While too many handlers wait, reading stops; they are looked at again
-- every few milliseconds until one has finished.
local function check_in_flight(s)
  if not s.max_in_flight or s.max_in_flight == 0 or not s.cep then return end
  local over = s.cep:in_flight() >= s.max_in_flight
  if over ~= s.full then
    s.full = over
    if not over then deliver(s) end
    update_reading(s)
  end
  if s.full and not s.in_flight_timer then
    s.in_flight_timer = M.timer(5, function()
      s.in_flight_timer = nil
      check_in_flight(s)
    end)
  end
end

-- ---- reading ----

-- A framing error: reported, answered once, and the end of the stream
-- when the framing cannot go on (all but ndjson).
local function framing_error(s, err)
  call_back(s, s.on_message_fn, nil, "framing error: " .. err)
  local refusal = s.framer:refusal()
  if refusal then pcall(s.write, s, refusal) end
  if s.framer:kind() ~= "ndjson" then
    s.broken = true
    s.finish_reason = "framing error: " .. err
    finish_now(s)
  end
end

-- Takes the framed messages while nothing holds reading back, one at a
-- time, each dispatched in place from the framer's buffer (no Lua string
-- is made of it); a pause or a full write queue leaves the rest buffered,
-- for resume or the queue's draining.
deliver = function(s, err)
  if s.delivering then return end
  s.delivering = true
  local framer = s.framer
  while not (s.closed or s.paused or s.throttled or s.finishing or s.full) do
    local taken, ferr
    if s.cep then
      local ok
      ok, taken, ferr = pcall(s.cep.receive_from, s.cep, framer, 1)
      if not ok then
        s.delivering = false
        if s.report then s.report(tostring(taken)) else error(taken, 0) end
        s.delivering, taken = true, 1
      end
      check_in_flight(s)
    else
      local msg
      msg, ferr = framer:next()
      taken = msg and 1 or 0
      if msg then call_back(s, s.on_message_fn, msg) end
    end
    if ferr then
      framing_error(s, ferr)   -- answered where it happened, in order
      if framer:kind() ~= "ndjson" then break end
    elseif taken == 0 then
      break
    end
  end
  s.delivering = false
  if err and not s.closed then framing_error(s, err) end
  -- bytes that arrived while messages were being dispatched in place
  if s.backlog and not s.closed then
    local more = table.concat(s.backlog)
    s.backlog = nil
    return s.on_bytes(more)
  end
end

local function on_data(s, data)
  s.last_traffic = uv.now()
  if s.delivering then   -- the framer's buffer must stay put meanwhile
    s.backlog = s.backlog or {}
    s.backlog[#s.backlog + 1] = data
    return
  end
  deliver(s, s.framer:push(data))
  if s.closed then return end
  if s.limits and not s.limits.account(s) then return end
  if s.framer:buffered() > 0 then s.frame_since = s.frame_since or uv.now() else s.frame_since = nil end
  if any_timeout(s) then arm_deadline(s) end
end

local function on_eof(s)
  s.eof = true
  update_reading(s)
  if not s.cep or s.broken then return close(s, "closed by the peer") end
  call_back(s, s.on_eof_fn)
  if not s.draining then
    s.draining = true
    s.finish_reason = "closed by the peer"
  end
  s.full = false
  deliver(s)
  watch_drain(s)
end

local function start(s)
  s.on_bytes = function(data) on_data(s, data) end
  s.on_read = function(err, data)
    if s.closed then return end
    if err then
      close(s, "read failed: " .. strerror(err), errno_of(err))
    elseif data then
      on_data(s, data)
    else
      on_eof(s)
    end
  end
  update_reading(s)
end

-- ---- the C stream's methods ----

--- write(text) -> bytes queued | nil, reason
function Stream:write(text)
  if self.closed or self.finishing then return nil, self.reason or "closed" end
  local bytes = self.framer:frame(text)
  local n = #bytes
  self.bytes_queued = self.bytes_queued + n
  self.writes = self.writes + 1
  self.unsent_since = self.unsent_since or uv.now()
  self.last_traffic = uv.now()
  local ok, err = try(self.writer.write, self.writer, bytes, function(werr)
    self.bytes_queued = self.bytes_queued - n
    self.writes = self.writes - 1
    if werr then
      return close(self, "write failed: " .. strerror(werr), errno_of(werr))
    end
    self.unsent_since = self.bytes_queued > 0 and uv.now() or nil
    if self.throttled and self.bytes_queued <= self.hw / 2 then
      self.throttled = false
      deliver(self)
      update_reading(self)
    end
    if self.bytes_queued == 0 and self.drain_wanted then
      self.drain_wanted = false
      call_back(self, self.on_drain_fn)
    end
    if self.draining then check_drained(self) end
    if any_timeout(self) then arm_deadline(self) end
  end)
  if not ok then
    self.bytes_queued = self.bytes_queued - n
    self.writes = self.writes - 1
    close(self, "write failed: " .. strerror(err), errno_of(err))
    return nil, self.reason
  end
  if self.bytes_queued > self.hw and not self.throttled then
    self.throttled = true
    update_reading(self)
  end
  if self.draining then check_drained(self) end
  if self.max_in_flight then check_in_flight(self) end
  if any_timeout(self) then arm_deadline(self) end
  return self.bytes_queued
end

function Stream:close(reason) close(self, reason or "closed") end

function Stream:finish(reason)
  if self.finishing or self.closed then return end
  self.finish_reason = reason or "closed"
  finish_now(self)
end

function Stream:flush()
  if self.bytes_queued > 0 then self.drain_wanted = true end
  return self.bytes_queued
end

function Stream:queued() return self.bytes_queued end

function Stream:unsent()
  if self.closed or self.writer:is_closing() then return 0 end
  return self.writer:get_write_queue_size()
end

function Stream:high_water(bytes)
  if bytes ~= nil then
    if type(bytes) ~= "number" or bytes < 1 then error("high_water must be at least 1", 2) end
    self.hw = bytes
  end
  return self.hw
end

function Stream:pause()
  self.paused = true
  update_reading(self)
end

function Stream:resume()
  self.paused = false
  deliver(self)
  update_reading(self)
end

function Stream:timeouts(frame, idle, send)
  self.timeouts_s = { frame = frame or 0, idle = idle or 0, send = send or 0 }
  self.last_traffic = self.last_traffic or uv.now()
  if any_timeout(self) then arm_deadline(self) else stop_deadline(self) end
end

function Stream:serve(cep, max_in_flight)
  self.cep = cep
  self.max_in_flight = max_in_flight
end

function Stream:shutdown(reason)
  if self.draining or self.finishing or self.closed then return end
  self.finish_reason = reason or "closed"
  self.draining = true
  update_reading(self)
  watch_drain(self)
end

function Stream:on_message(fn) self.on_message_fn = fn end
function Stream:on_close(fn) self.on_close_fn = fn end
function Stream:on_drain(fn) self.on_drain_fn = fn end
function Stream:on_eof(fn) self.on_eof_fn = fn end

function Stream:peer()
  if self.kind ~= "tcp" then return "local" end
  local ok, name = pcall(self.handle.getpeername, self.handle)
  if not ok or type(name) ~= "table" then return "local" end
  if name.family == "inet6" then return ("[%s]:%d"):format(name.ip, name.port) end
  return ("%s:%d"):format(name.ip, name.port)
end

function Stream:is_closing()
  return self.closed == true or self.handle:is_closing()
end

-- ---- connect ----

local function new_handle(kind)
  if kind == "tcp" then return uv.new_tcp() end
  return uv.new_pipe(false)
end

--- connect(kind, where, port, framing, max, on_connect) -> true | nil, err:
-- as core.connect; on_connect(stream) or on_connect(nil, err, errno).
function M.connect(kind, where, port, framing, max, on_connect)
  local handle = new_handle(kind)
  local function done(err)
    if err then
      close_handle(handle)
      return on_connect(nil, "connect failed: " .. strerror(err), errno_of(err))
    end
    local s = new_stream(handle, framing, max, kind)
    start(s)
    on_connect(s)
  end
  local ok, err
  if kind == "tcp" then ok, err = try(handle.connect, handle, where, port, done)
  else ok, err = try(handle.connect, handle, where, done) end
  if not ok then
    if not handle:is_closing() then close_handle(handle) end
    return nil, "connect: " .. strerror(err), errno_of(err)
  end
  return true
end

-- ---- this process's stdio, and child processes ----

-- A handle on fd (0 or 1), as libuv sees it; nil and why for a file.
local function fd_handle(fd, name)
  local kind = uv.guess_handle(fd)
  local handle
  if kind == "pipe" then
    handle = uv.new_pipe(false)
    handle:open(fd)
  elseif kind == "tty" then
    handle = uv.new_tty(fd, fd == 0)
  elseif kind == "tcp" then
    handle = uv.new_tcp()
    handle:open(fd)
  else
    return nil, ("%s is a %s (a stream needs a pipe, a socket or a terminal)")
                :format(name, kind == "file" and "regular file" or tostring(kind))
  end
  return handle
end

--- stdio(framing, max) -> stream | nil, err: as core.stdio.
function M.stdio(framing, max)
  local reader, err = fd_handle(0, "stdin")
  if not reader then return nil, err end
  local writer, werr = fd_handle(1, "stdout")
  if not writer then close_handle(reader); return nil, werr end
  local s = new_stream(reader, framing, max, "stdio", nil, writer)
  start(s)
  return s
end

local Process = {}
Process.__index = Process

function Process:pid() return self.pid_ end

function Process:kill(signal)
  if self.handle:is_closing() then return nil, "the process has exited" end
  local ok, err = try(self.handle.kill, self.handle, signal or "sigterm")
  if not ok then return nil, err end
  return true
end

function Process:is_closing() return self.handle:is_closing() end

function Process:close()
  if not self.handle:is_closing() then close_handle(self.handle) end
end

--- spawn(file, args, framing, max, stderr, on_exit [, on_stderr]) ->
-- stream, process | nil, err: as core.spawn.
function M.spawn(file, args, framing, max, stderr, on_exit, on_stderr)
  local stdin, stdout = uv.new_pipe(false), uv.new_pipe(false)
  local err_pipe, err_slot
  if stderr == "capture" then
    err_pipe = uv.new_pipe(false)
    err_slot = err_pipe
  elseif stderr == "inherit" then
    err_slot = 2
  end
  local process = setmetatable({}, Process)
  local handle, pid = uv.spawn(file, { args = args, stdio = { stdin, stdout, err_slot } },
    function(code, signal)
      close_handle(process.handle)
      on_exit(code, signal)
    end)
  if not handle then
    close_handle(stdin); close_handle(stdout)
    if err_pipe then close_handle(err_pipe) end
    return nil, ("cannot run %s: %s"):format(file, tostring(pid)), errno_of(pid)
  end
  process.handle, process.pid_ = handle, pid
  if err_pipe then
    err_pipe:read_start(function(rerr, chunk)
      if chunk then return on_stderr(chunk) end
      close_handle(err_pipe)
      on_stderr(nil)
    end)
  end
  local s = new_stream(stdout, framing, max, "process", nil, stdin)
  start(s)
  return s, process
end

-- ---- listen ----

local Listener = {}
Listener.__index = Listener

function Listener:address()
  if self.closed then error("listener is closed", 2) end
  if self.kind == "unix" then return self.path end
  local name = self.handle:getsockname()
  return name.ip, name.port
end

function Listener:connections() return self.open, self.max end

function Listener:close()
  if self.closed then return end
  self.closed = true
  if not self.handle:is_closing() then close_handle(self.handle) end
  if self.kind == "unix" then os.remove(self.path) end
end

function Listener:is_closing() return self.closed == true end

-- The limits a listener puts on its connections (as listen_limits.c).
local function new_limits(l, limits)
  local per_address, by_address, held_total = limits.max_connections_per_address, {}, 0
  local max_held = limits.max_buffered_bytes or LISTEN_MAX_BUFFERED
  local last_report = -1
  local function tell(message)
    local now = os.time()
    if limits.on_error and now ~= last_report then
      last_report = now
      pcall(limits.on_error, message)
    end
  end
  local L = {}
  function L.admit(address)
    if l.open >= l.max then return "max_connections reached" end
    if per_address and address and (by_address[address] or 0) >= per_address then
      return "max_connections_per_address reached"
    end
    return nil
  end
  function L.take(s, address)
    l.open = l.open + 1
    s.address, s.held = address, 0
    if address then by_address[address] = (by_address[address] or 0) + 1 end
  end
  function L.release(s)
    l.open = l.open - 1
    held_total = held_total - (s.held or 0)
    s.held = 0
    if s.address then by_address[s.address] = by_address[s.address] - 1 end
  end
  function L.account(s)
    local now = s.framer:buffered() + s.bytes_queued
    held_total = held_total + now - (s.held or 0)
    s.held = now
    if held_total <= max_held then return true end
    local why = ("max_buffered_bytes reached: the listener's connections hold more than %d bytes")
                :format(max_held)
    if s.report then s.report(why) end
    close(s, why)
    return false
  end
  L.tell = tell
  return L
end

--- listen(kind, where, port, framing, max, on_connection [, limits]) ->
-- listener | nil, err, errno: as core.listen.
function M.listen(kind, where, port, framing, max, on_connection, limits)
  limits = limits or {}
  local handle = new_handle(kind)
  local l = setmetatable({ handle = handle, kind = kind, path = kind == "unix" and where or nil,
                           open = 0, max = limits.max_connections or core.default_max_connections() },
                     Listener)
  local lim = new_limits(l, limits)
  local function accept(lerr)
    if lerr or l.closed then return end
    local client = new_handle(kind)
    if not try(handle.accept, handle, client) then close_handle(client); return end
    local address
    if kind == "tcp" then
      local name = client:getpeername()
      address = type(name) == "table" and name.ip or nil
    end
    local refused = lim.admit(address)
    if refused then
      lim.tell(refused)
      close_handle(client)
      return
    end
    local s = new_stream(client, framing, max, kind, lim)
    s.report = limits.on_error
    lim.take(s, address)
    start(s)
    on_connection(s)
  end
  -- a name is looked up before listen returns (as the C driver does)
  if kind == "tcp" and not where:match("^%d+%.%d+%.%d+%.%d+$") and not where:find(":", 1, true) then
    local found = uv.getaddrinfo(where, nil, { socktype = "stream" })
    if type(found) == "table" and found[1] then where = found[1].addr end
  end
  local ok, err
  local what = "bind"
  if kind == "tcp" then ok, err = try(handle.bind, handle, where, port)
  else ok, err = try(handle.bind, handle, where) end
  if ok then
    what = "listen"
    ok, err = try(handle.listen, handle, 511, accept)
  end
  if not ok then
    close_handle(handle)
    return nil, what .. ": " .. strerror(err), errno_of(err)
  end
  return l
end

return M
