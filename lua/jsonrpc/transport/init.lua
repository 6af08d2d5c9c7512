--- Connections over the event loop: an endpoint on a framed stream.
--
-- jsonrpc.connect(url [, opts]) -> connection | nil, err
-- server:listen(url [, opts]) -> listener | nil, err
-- jsonrpc.run([mode])
--
-- URLs: tcp://HOST:PORT (IPv6: tcp://[::1]:PORT; port 0 picks a free port)
-- and unix:///path/to.sock. stdio and spawn are in transport/process.lua,
-- what every connection shares in transport/connection.lua.
local core = require "jsonrpc.core"
local endpoint = require "jsonrpc.endpoint"
local connection = require "jsonrpc.transport.connection"
local process = require "jsonrpc.transport.process"
local hostenv = require "jsonrpc.host"
local drivers = require "jsonrpc.transport.driver"

local codes = core.codes
local defaults = core.defaults
local local_error = endpoint.local_error
local has_luv, luv = pcall(require, "luv")
local check_opts, framing_of = connection.check_opts, connection.framing_of
local wrap, connection_opts, await = connection.wrap, connection.connection_opts, connection.await
local new_reporter = connection.new_reporter

local M = {}

--- {kind = "tcp", host, port} or {kind = "unix", path}; nil and why.
function M.parse_url(url)
  return require("jsonrpc.url").parse(url)
end

local function format_url(kind, host, port)
  if kind == "unix" then return "unix://" .. host end
  if host:find(":", 1, true) then return ("tcp://[%s]:%d"):format(host, port) end
  return ("tcp://%s:%d"):format(host, port)
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
local function wait_done(state, schedule)
  if await(function() return state.done end, function(wake) state.wake = wake end, schedule) then
    return true
  end
  return nil, local_error(codes.NO_EVENT_LOOP, "connecting: the loop is running and this is not a coroutine")
end

--- The addresses of host, looked up without blocking the loop (luv's
-- getaddrinfo runs on libuv's thread pool); nil and an error value when
-- there are none. An address is its own answer, and so is any host when
-- luv is missing: the C side then resolves it, synchronously.
local function lookup(host, port, schedule)
  if host:match("^[%d.]+$") or host:find(":", 1, true) or not (has_luv and luv.getaddrinfo) then
    return { host }
  end
  local state = {}
  local ok, err = pcall(luv.getaddrinfo, host, tostring(port), { socktype = "stream" },
    settling(state, function(lerr, found) state.err, state.found = lerr, found end))
  if not ok then return nil, local_error(codes.CONNECTION_FAILED, tostring(err)) end
  ok, err = wait_done(state, schedule)
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
  local ok, err, errno = drivers.of(opts.driver).connect(kind, where, port, framing, max,
    settling(state, function(stream, cerr, cerrno)
      if stream then state.conn = wrap(stream, opts, kind) else state.err, state.errno = cerr, cerrno end
    end))
  if not ok then return nil, local_error(codes.CONNECTION_FAILED, tostring(err), errno) end
  ok, err = wait_done(state, hostenv.scheduler(hostenv.schedule_option(opts.schedule, opts.server)))
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
  local addrs, err = lookup(u.host, u.port,
                           hostenv.scheduler(hostenv.schedule_option(opts.schedule, opts.server)))
  if not addrs then return nil, err end
  local conn
  for _, addr in ipairs(addrs) do
    conn, err = connect_to("tcp", addr, u.port, opts)
    if conn or err.code ~= codes.CONNECTION_FAILED then break end
  end
  return conn, err
end


M.stdio = process.stdio
M.spawn = process.spawn

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
  local driver = drivers.of(opts.driver)
  conn_opts.reporter = new_reporter(opts.on_error, driver)
  local limits = { max_connections = opts.max_connections, on_error = conn_opts.reporter,
                   max_connections_per_address = opts.max_connections_per_address,
                   max_buffered_bytes = opts.max_buffered_bytes }
  -- on_connection is user code: scheduled as the connections' callbacks are
  local on_connection = opts.on_connection
                        and hostenv.deferred(hostenv.scheduler(hostenv.schedule_option(opts.schedule, server)),
                                             opts.on_connection)
  local listener, err, errno = driver.listen(u.kind, u.host or u.path, u.port or 0, framing, max,
    function(stream)
      local conn = wrap(stream, conn_opts, u.kind)
      state.connections[conn] = true
      if on_connection then on_connection(conn) end
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

--- run([mode]): runs the loop; Neovim runs it itself, so there it refuses.
function M.run(mode)
  if hostenv.neovim() then
    error("jsonrpc.run: Neovim runs the event loop itself; connections and listeners work "
          .. "without it (wait with vim.wait, or in a coroutine)", 2)
  end
  return drivers.of().run(mode)
end

return M

