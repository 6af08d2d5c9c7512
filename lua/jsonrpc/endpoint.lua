--- Both directions of one JSON-RPC connection, sans-IO.
--
-- An endpoint makes request, notification and batch texts with fresh ids and
-- hands them to `send`; `receive(text)` takes what the peer sent: requests
-- go to the endpoint's server (and their responses back through `send`),
-- responses are matched by id to the calls waiting for them, in any order.
-- Transports wrap an endpoint; a test can wire two with plain functions.
local core = require "jsonrpc.core"

local codes = core.codes
local request_text = core.request
local running, yield, resume = coroutine.running, coroutine.yield, coroutine.resume
local isyieldable = coroutine.isyieldable
-- Plain Lua 5.1 cannot yield across pcall at all (LuaJIT and 5.2+ can).
local yield_needs_no_pcall = _VERSION == "Lua 5.1" and not jit

local Endpoint = {}
Endpoint.__index = Endpoint

-- Handlers that are waiting (their coroutine yielded in a call), by
-- coroutine: whoever resumes one completes it when it finishes, whichever
-- endpoint's response woke it.
local waiting_handlers = setmetatable({}, { __mode = "k" })
local runner   -- what each handler's coroutine runs (below)

local Batch = {}
Batch.__index = Batch

local M = { Endpoint = Endpoint }

--- An error made here, on the calling side, rather than sent by the peer
-- (a timeout, a closed connection...): marked `transport = true`, since a
-- peer may send the same codes.
local function local_error(code, message)
  local err = core.error(code, message)
  err.transport = true
  return err
end
M.local_error = local_error

--- A coroutine call can wait in: nil in the main thread, or where the
-- current coroutine cannot yield (inside a C function such as a handler
-- run by the dispatcher).
local function waitable_coroutine()
  local co, is_main = running()
  if co == nil or is_main then return nil end
  if isyieldable and not isyieldable() then return nil end
  return co
end

function M.new(opts)
  if type(opts) ~= "table" or type(opts.send) ~= "function" then
    error("jsonrpc.endpoint: opts.send must be a function that sends a text", 2)
  end
  local self = setmetatable({
    send = opts.send,
    server = opts.server or core.server(),
    context = opts.context or {},
    on_stray = opts.on_stray,
    wait = opts.wait,          -- transports: runs the loop until done() is true
    set_timer = opts.set_timer, -- transports: set_timer(ms, fn) -> timer with stop()
    timeout = opts.timeout,    -- seconds a call may wait, by default
    pending = {},              -- id -> call record
    timed_out = {},            -- ids whose late responses are dropped quietly
    timed_out_count = 0,
    in_flight = 0,             -- handlers waiting (their coroutine yielded)
    last_id = 0,
  }, Endpoint)
  self.on_response = function(id, result, err, problem)
    self:_settle(id, result, err, problem)
  end
  -- a handler that waits (calls the peer) is handed over as a job
  self.on_defer = function(job)
    job.endpoint = self
    waiting_handlers[job[1]] = job
    self.in_flight = self.in_flight + 1
    self:_handler_started()
  end
  return self
end

--- Hooks for transports: a handler started waiting / finished. (A
-- transport also sets endpoint.log(message, traceback, req), told of
-- handlers' plain errors when the server has no on_error hook.)
function Endpoint:_handler_started() end
function Endpoint:_handler_done() end

--- Registers a method on this endpoint's server.
function Endpoint:method(name, fn, opts)
  self.server:method(name, fn, opts)
  return self
end

--- One incoming text: requests, notifications, responses, or a batch.
function Endpoint:receive(text)
  local reply = self.server:_receive(text, self.context, self.on_response, self.on_defer, runner)
  if reply then self:_reply(reply) end
end

--- What a stream needs to hand this endpoint's messages to the dispatcher
-- itself (stream:serve): the arguments of _receive, report(message) for
-- errors raised while a response is delivered, and the endpoint's log
-- (its handlers' plain errors, when the server has no on_error hook).
function Endpoint:_serve_table(report)
  local server = self.server
  return { server._receive, server, self.context, self.on_response, self.on_defer, runner, report,
           self.log }
end

--- Sends a response; when the connection has closed meanwhile there is
-- nobody to answer, and it is dropped.
function Endpoint:_reply(text)
  local ok, err = pcall(self.send, text)
  if not ok and not (core.is_error(err) and err.code == codes.CONNECTION_CLOSED) then
    error(err, 0)
  end
end

function Endpoint:_stray(reason, id)
  local hook = self.on_stray
  if hook then hook(reason, id) end
end

--- A waiter is what one call or one batch waits on: it is done when its
-- `remaining` responses have all arrived.
local function new_waiter(n)
  return { remaining = n, done = n == 0 }
end

--- Completes a handler that had to wait: its response goes out through
-- its endpoint.
local function complete_handler(co, ok, a, b)
  local job = waiting_handlers[co]
  waiting_handlers[co] = nil
  local ep = job.endpoint
  local text = ep.server:_complete(job, ok, a, b, ep.log)
  if text then ep:_reply(text) end
  ep.in_flight = ep.in_flight - 1
  ep:_handler_done()
end

--- What each handler's coroutine runs: the handler, protected, with the
-- traceback of a plain error captured. A handler that had to wait (its
-- coroutine was handed over as a job) completes itself here, whoever
-- resumed it; else the dispatcher takes the outcome (ok, a, b).
local capture_failure = core._capture_failure
local function finish(co, ok, a, b)
  if waiting_handlers[co] == nil then return ok, a, b end
  complete_handler(co, ok, a, b)
end
if _VERSION == "Lua 5.1" and not jit then
  -- plain 5.1 cannot yield across xpcall: errors go to whoever resumes
  runner = function(fn, ...) return finish(running(), true, fn(...)) end
else
  -- Lua 5.3+: the same in C, with a continuation for handlers that waited
  runner = core._runner(finish)
    or function(fn, ...) return finish(running(), xpcall(fn, capture_failure, ...)) end
end

local function wake(waiter)
  if waiter.callback then
    waiter.callback()
  elseif waiter.co and coroutine.status(waiter.co) == "suspended" then
    local co = waiter.co
    local ok, err = resume(co)
    if not ok then
      if waiting_handlers[co] then return complete_handler(co, false, err) end
      error(err, 0)
    end
  end
end

local function settle_record(record, result, err)
  record.result, record.err = result, err
  local waiter = record.waiter
  waiter.remaining = waiter.remaining - 1
  if waiter.remaining == 0 then
    waiter.done = true
    if waiter.timer then waiter.timer:stop(); waiter.timer = nil end
    wake(waiter)
  end
end

--- Called by the dispatcher for every response the peer sent.
local MAX_TIMED_OUT = 4096   -- ids remembered for their late responses

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
      if self.pending[record.id] == record then
        self.pending[record.id] = nil
        if self.timed_out_count >= MAX_TIMED_OUT then
          self.timed_out, self.timed_out_count = {}, 0
        end
        self.timed_out[record.id] = true
        self.timed_out_count = self.timed_out_count + 1
        settle_record(record, nil, err)
      end
    end
  end)
end

function Endpoint:_settle(id, result, err, problem)
  local record = id ~= nil and self.pending[id] or nil
  if record == nil and id ~= nil and self.timed_out[id] then
    self.timed_out[id] = nil   -- the late answer to a call that timed out
    self.timed_out_count = self.timed_out_count - 1
    return
  end
  if problem then
    self:_stray(problem, id)
    if record then
      self.pending[id] = nil
      settle_record(record, nil, local_error(codes.INVALID_RESPONSE, "invalid response: " .. problem))
    end
    return
  end
  if not record then
    self:_stray("no call waits for this id (unknown or already answered)", id)
    return
  end
  self.pending[id] = nil
  settle_record(record, result, err)
end

--- Fails every call still waiting (the connection closed, say).
function Endpoint:_fail_all(err)
  local pending = self.pending
  self.pending = {}
  for _, record in pairs(pending) do settle_record(record, nil, err) end
end

function Endpoint:_next_id()
  local id = self.last_id + 1
  self.last_id = id
  return id
end

--- Sends text for the records (already pending); on a failing send they
-- stop waiting, and an error value (a closed connection) is returned as
-- the calls' outcome, anything else raised.
function Endpoint:_send(text, ids)
  local ok, err = pcall(self.send, text)
  if not ok then
    for _, id in ipairs(ids) do self.pending[id] = nil end
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
  if co then
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
    if self.pending[record.id] == record then
      self.pending[record.id] = nil
      record.result, record.err = nil, err
    end
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
  local id = self:_next_id()
  local text = request_text(method, params, id)
  local waiter = new_waiter(1)
  local record = { id = id, waiter = waiter }
  if type(opts) == "function" then opts = { callback = opts } end
  local callback = opts and opts.callback
  if callback then
    waiter.callback = function() callback(record.result, record.err) end
  end
  self:_arm(waiter, { record }, (opts and opts.timeout) or self.timeout, ("%q"):format(method))
  self.pending[id] = record
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
  local id = self.endpoint:_next_id()
  self.items[#self.items + 1] = { text = request_text(method, params, id), id = id }
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
  local waiter = new_waiter(calls)
  for _, item in ipairs(self.items) do
    if item.id then
      local record = { id = item.id, waiter = waiter }
      records[#records + 1] = record
      ids[#ids + 1] = item.id
      ep.pending[item.id] = record
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
