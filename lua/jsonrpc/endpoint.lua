--- Both directions of one JSON-RPC connection, sans-IO.
--
-- The work is the C endpoint's (core.endpoint): dispatching what the peer
-- sends, matching responses to our calls by their raw id, running and
-- completing handlers. This module shapes it for Lua: call, try_call,
-- notify and batches, waiting in a coroutine or through a transport's
-- loop, and timeouts. A transport attaches the C endpoint to a stream; a
-- test can wire two endpoints with plain functions.
local core = require "jsonrpc.core"
local host = require "jsonrpc.host"

local codes = core.codes
local request_text = core.request
local resume = core.resume
local running, yield = coroutine.running, coroutine.yield
local isyieldable = coroutine.isyieldable
-- Plain Lua 5.1 cannot yield across pcall at all (LuaJIT and 5.2+ can).
local yield_needs_no_pcall = _VERSION == "Lua 5.1" and not jit
-- Inside nginx calls wait on a semaphore and handlers run in light
-- threads (see jsonrpc.host).
local in_nginx = host.nginx()

local Endpoint = {}
Endpoint.__index = Endpoint

local Batch = {}
Batch.__index = Batch

local M = { Endpoint = Endpoint }

--- An error made here, on the calling side, rather than sent by the peer
-- (a timeout, a closed connection...): marked `transport = true`, since a
-- peer may send the same codes. errno, when a system call failed, is the
-- libuv error's name ("ECONNREFUSED"), in err.data.errno.
local function local_error(code, message, errno)
  local err = core.error(code, message, errno and { errno = errno } or nil)
  err.transport = true
  return err
end
M.local_error = local_error

--- A coroutine a call can wait in: nil in the main thread, or where the
-- current coroutine cannot yield (inside a C function, or in one of the
-- loop's callbacks: plain 5.1 sees the thread they run on as a coroutine).
local function waitable_coroutine()
  local co, is_main = running()
  if co == nil or is_main or in_nginx then return nil end
  if isyieldable and not isyieldable() then return nil end
  if yield_needs_no_pcall and co == core.loop_thread() then return nil end
  return co
end
M.waitable_coroutine = waitable_coroutine

--- endpoint.new{send = fn(text) [, server, context, on_stray, log, report,
-- start, wait, set_timer, timeout, null, schedule]}: start(run, ...) is how
-- a host starts handlers (it calls run(...) in a coroutine of its own);
-- wait(done) how it waits outside coroutines; schedule(fn) how it runs a
-- waiting call's continuation (a callback, or the coroutine's resume).
function M.new(opts)
  if type(opts) ~= "table" or type(opts.send) ~= "function" then
    error("jsonrpc.endpoint: opts.send must be a function that sends a text", 2)
  end
  local start, run_jobs = opts.start, nil
  if start == nil and in_nginx then start, run_jobs = host.job_queue() end
  local self = setmetatable({
    send = opts.send,
    server = opts.server or core.server(),
    wait = opts.wait,          -- transports: runs the loop until done() is true
    -- transports: set_timer(ms, fn) -> timer with stop(); nginx has its own
    set_timer = opts.set_timer or (in_nginx and host.nginx_timer or nil),
    timeout = opts.timeout,    -- seconds a call may wait, by default
    context = opts.context or {},
    schedule = opts.schedule,  -- how a call's waiter is woken: schedule(fn), or at once
    run_jobs = run_jobs,       -- in nginx: starts the handlers receive filed
  }, Endpoint)
  -- answers go through self.send as it is when they go (it may be replaced)
  self.core = core.endpoint{ server = self.server, send = function(text) return self.send(text) end,
                             context = self.context,
                             on_stray = opts.on_stray, log = opts.log, report = opts.report,
                             start = start, null = opts.null }
  return self
end

--- Registers a method on this endpoint's server.
function Endpoint:method(name, fn, opts)
  self.server:method(name, fn, opts)
  return self
end

--- One incoming text: requests, notifications, responses, or a batch.
function Endpoint:receive(text)
  self.core:receive(text)
  if self.run_jobs then self.run_jobs() end
end

--- The calls waiting for a response, and the handlers waiting (their
-- coroutine yielded in a call).
function Endpoint:pending() return self.core:pending() end
function Endpoint:in_flight() return self.core:in_flight() end

--- A waiter is what one call or one batch waits on: it is done when its
-- `remaining` responses have all arrived.
local function new_waiter(n, schedule)
  return { remaining = n, done = n == 0, schedule = schedule }
end

local function wake(waiter)
  if waiter.callback then
    waiter.callback()
  elseif waiter.post then
    waiter.post()
  elseif waiter.co and coroutine.status(waiter.co) == "suspended" then
    local ok, err = resume(waiter.co)
    if not ok then error(err, 0) end
  end
end

local function settle_record(record, result, err)
  record.result, record.err = result, err
  local waiter = record.waiter
  waiter.remaining = waiter.remaining - 1
  if waiter.remaining == 0 then
    waiter.done = true
    if waiter.timer then waiter.timer:stop(); waiter.timer = nil end
    -- through the host's scheduler, when there is one (in Neovim, so that
    -- the code after the call runs where vim.api works)
    if waiter.schedule then waiter.schedule(function() wake(waiter) end) else wake(waiter) end
  end
end

--- The function the C endpoint calls with the response of one record.
local function settler(record)
  return function(result, err) settle_record(record, result, err) end
end

--- Starts the timeout of records that wait on one waiter.
function Endpoint:_arm(waiter, records, seconds, what)
  if not seconds then return end
  if not self.set_timer then
    error("a timeout needs a transport: this endpoint has no timer", 3)
  end
  waiter.timer = self.set_timer(seconds * 1000, function()
    waiter.timer = nil
    local err = local_error(codes.TIMEOUT, ("no response to %s within %g s"):format(what, seconds))
    for _, record in ipairs(records) do
      if self.core:forget(record.id, true) then settle_record(record, nil, err) end
    end
  end)
end

--- Fails every call still waiting (the connection closed, say).
function Endpoint:_fail_all(err)
  self.core:fail_all(err)
end

--- Sends text for the records (already waiting); on a failing send they
-- stop waiting, and an error value (a closed connection) is returned as
-- the calls' outcome, anything else raised.
function Endpoint:_send(text, ids)
  local ok, err = pcall(self.send, text)
  if not ok then
    for _, id in ipairs(ids) do self.core:forget(id) end
    if not core.is_error(err) then error(err, 0) end
    return err
  end
end

--- Waits until the waiter is done: at once when the responses came during
-- send, by yielding in a coroutine, or through the transport's loop.
-- Without any of them the calls fail with NO_EVENT_LOOP.
function Endpoint:_wait(waiter, records)
  if waiter.done then return end
  local co = waitable_coroutine()
  if in_nginx and not self.wait then
    host.nginx_park(waiter)
  elseif co then
    -- under pcall, a yield that is impossible here fails at once rather
    -- than leaving the call waiting forever (plain 5.1 must yield bare)
    waiter.co = co
    repeat
      local yielded = true
      if yield_needs_no_pcall then yield() else yielded = pcall(yield) end
    until waiter.done or not yielded
    waiter.co = nil
  elseif self.wait then
    self.wait(function() return waiter.done end)
  end
  if waiter.done then return end
  local err = local_error(codes.NO_EVENT_LOOP,
    "no response yet and no event loop to wait on (call from a coroutine, pass a callback, or use a transport)")
  for _, record in ipairs(records) do
    if self.core:forget(record.id) then record.result, record.err = nil, err end
  end
  waiter.done = true
end

--- call(method [, params [, opts | callback]]) -> result (raises the error
-- value on failure); with a callback, returns at once and later calls
-- callback(result, err).
function Endpoint:call(method, params, opts)
  local result, err = self:try_call(method, params, opts)
  if err ~= nil then error(err, 0) end
  return result
end

--- try_call(method [, params [, opts | callback]]) -> result | nil, err
-- opts: {timeout = seconds, callback = fn}.
function Endpoint:try_call(method, params, opts)
  local waiter = new_waiter(1, self.schedule)
  local record = { waiter = waiter }
  if type(opts) == "function" then opts = { callback = opts } end
  local callback = opts and opts.callback
  if callback then
    waiter.callback = function() callback(record.result, record.err) end
  end
  local text, id = self.core:request(method, params, settler(record))
  record.id = id
  self:_arm(waiter, { record }, (opts and opts.timeout) or self.timeout, ("%q"):format(method))
  local failed = self:_send(text, { id })
  if failed and waiter.timer then waiter.timer:stop(); waiter.timer = nil end
  if failed then
    if waiter.callback then record.err = failed; return waiter.callback() end
    return nil, failed
  end
  if waiter.callback then return end
  self:_wait(waiter, { record })
  return record.result, record.err
end

--- notify(method [, params]): no response is expected.
function Endpoint:notify(method, params)
  self.send(request_text(method, params))
end

--- A batch built as a table of calls and notifications, sent as one text.
function Endpoint:batch()
  return setmetatable({ endpoint = self, items = {} }, Batch)
end

function Batch:call(method, params)
  local text, id = self.endpoint.core:request(method, params)
  self.items[#self.items + 1] = { text = text, id = id }
  return self
end

function Batch:notify(method, params)
  self.items[#self.items + 1] = { text = request_text(method, params) }
  return self
end

--- Sends the batch and waits for every response; returns the results in
-- call order (notifications take no slot), each a result or an error value.
-- opts: {timeout = seconds}.
function Batch:send(opts)
  local ep, texts, records, ids = self.endpoint, {}, {}, {}
  local calls = 0
  for i, item in ipairs(self.items) do
    texts[i] = item.text
    if item.id then calls = calls + 1 end
  end
  local waiter = new_waiter(calls, ep.schedule)
  for _, item in ipairs(self.items) do
    if item.id then
      local record = { id = item.id, waiter = waiter }
      records[#records + 1] = record
      ids[#ids + 1] = item.id
      ep.core:expect(item.id, settler(record))
    end
  end
  if calls > 0 then ep:_arm(waiter, records, (opts and opts.timeout) or ep.timeout, "a batch") end
  local failed = #texts > 0 and ep:_send("[" .. table.concat(texts, ",") .. "]", ids)
  if failed then
    for _, record in ipairs(records) do record.err = failed end
    waiter.done = true
    if waiter.timer then waiter.timer:stop(); waiter.timer = nil end
  end
  ep:_wait(waiter, records)
  local results = {}
  for i, record in ipairs(records) do
    if record.err ~= nil then results[i] = record.err else results[i] = record.result end
  end
  return results
end

return M
