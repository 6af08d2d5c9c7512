--- This process's stdin and stdout, and child processes, as connections.
--
-- jsonrpc.stdio([server [, opts]]) -> connection | nil, err
-- jsonrpc.spawn({cmd, arg...} [, opts]) -> connection | nil, err
local core = require "jsonrpc.core"
local endpoint = require "jsonrpc.endpoint"
local connection = require "jsonrpc.transport.connection"
local host = require "jsonrpc.host"
local drivers = require "jsonrpc.transport.driver"

local codes = core.codes
local local_error = endpoint.local_error
local check_opts, framing_of = connection.check_opts, connection.framing_of
local wrap, connection_opts, report = connection.wrap, connection.connection_opts, connection.report

local DEFAULT_STDERR_LIMIT = 65536  -- bytes of a child's stderr kept in conn.stderr

local M = {}


--- stdio(server [, opts]) -> connection | nil, err: serves (and calls) the
-- peer on this process's own stdin and stdout. While it is open, print
-- writes to stderr (opts.guard_print = false keeps print as it is): a
-- stray print to stdout would corrupt the stream.
function M.stdio(server, opts)
  opts = check_opts(opts, "stdio")
  local framing, max = framing_of(opts)
  local stream, err, errno = drivers.of(opts.driver).stdio(framing, max)
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

-- Calls a user's callback (through the connection's scheduler, as its
-- other callbacks); what it raises goes to the connection's reporter.
local function call_user(conn, what, fn, ...)
  host.deferred(conn.schedule, function(...)
    local ok, err = pcall(fn, ...)
    if not ok then report(conn, what .. " failed: " .. tostring(err)) end
  end)(...)
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
        call_user(conn, "on_stderr", opts.on_stderr, chunk)
      elseif chunk then
        local text = (conn.stderr or "") .. chunk
        if #text > limit then text = text:sub(-limit) end
        conn.stderr = text
      end
    end
  end
  local stream, process, errno = drivers.of(opts.driver).spawn(cmd[1], args, framing, max, opts.stderr or "inherit",
    function(code, signal)
      local conn = holder.conn
      conn.exit_code, conn.exit_signal = code, signal
      if opts.on_exit then call_user(conn, "on_exit", opts.on_exit, code, signal) end
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


return M
