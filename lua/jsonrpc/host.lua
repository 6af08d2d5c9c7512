--- The host we run in, and what it gives us: in Neovim, its scheduler
-- (handlers and callbacks run where vim.api works), its wait (nvim's queue
-- goes on while a call waits) and its messages; inside nginx, nothing of
-- libuv. In plain Lua nothing here changes a default.
local M = {}

local unpack = table.unpack or unpack

--- Neovim's vim table when we run inside Neovim, else nil.
function M.neovim()
  local vim = rawget(_G, "vim")
  if type(vim) == "table" and type(vim.schedule) == "function"
     and type(vim.in_fast_event) == "function" then
    return vim
  end
  return nil
end

--- Whether we run inside nginx (OpenResty's ngx, with its phases).
function M.nginx()
  local ngx = rawget(_G, "ngx")
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
end

-- The phases where OpenResty's light threads, sleeps, semaphores and
-- cosockets may yield.
local NGINX_YIELDABLE = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

--- Inside nginx, whether the current phase may yield.
function M.nginx_yieldable()
  return NGINX_YIELDABLE[rawget(_G, "ngx").get_phase()] == true
end

--- A queue of handler jobs, for endpoints in nginx: start(run, ...) files
-- a job, because the C receive that starts handlers cannot yield and
-- ngx.thread.spawn does. run_jobs([here [, threads]]) then starts what was
-- filed: with `here`, one after another in the calling thread; else each
-- in a light thread of its own where the phase allows one (collected in
-- `threads` when given), and at once where it does not. A job that
-- yields in OpenResty's APIs thus suspends only its own thread.
function M.job_queue()
  local jobs = {}
  local function start(run, ...)
    jobs[#jobs + 1] = { n = select("#", ...) + 1, run, ... }
  end
  -- light threads started without a collector: a finished one stays a
  -- zombie until its parent waits on it, so each run reaps those of the
  -- running thread (a long-lived receiver would otherwise pile them up)
  local children = {}
  local function reap(ngx)
    local me, kept = coroutine.running(), {}
    for i = 1, #children do
      local child = children[i]
      if child.parent == me and coroutine.status(child.thread) == "zombie" then
        ngx.thread.wait(child.thread)
      else
        kept[#kept + 1] = child
      end
    end
    children = kept
  end
  local function run_jobs(here, threads)
    local ngx = rawget(_G, "ngx")
    local spawn = not here and M.nginx_yieldable() and ngx.thread.spawn
    if spawn and children[1] then reap(ngx) end
    while jobs[1] do
      local filed = jobs
      jobs = {}
      for i = 1, #filed do
        local job = filed[i]
        if spawn then
          local thread = spawn(unpack(job, 1, job.n))
          if threads then threads[#threads + 1] = thread
          elseif coroutine.status(thread) ~= "dead" then
            children[#children + 1] = { thread = thread, parent = coroutine.running() }
          end
        else
          job[1](unpack(job, 2, job.n))
        end
      end
    end
  end
  local function count() return #jobs end
  return start, run_jobs, count
end

-- A one-shot timer for endpoints in nginx (their set_timer):
-- ngx.timer.at, which stop() turns into a no-op.
local NginxTimer = {}
NginxTimer.__index = NginxTimer
function NginxTimer:stop() self.stopped = true end

function M.nginx_timer(delay_ms, fn)
  local timer = setmetatable({}, NginxTimer)
  local ok, err = rawget(_G, "ngx").timer.at(delay_ms / 1000, function(premature)
    if not premature and not timer.stopped then timer.stopped = true; fn() end
  end)
  if not ok then error("jsonrpc: cannot start an nginx timer: " .. tostring(err), 0) end
  return timer
end

--- Inside nginx, the wait of a call in a yieldable phase: a semaphore
-- that the response posts. coroutine.yield cannot serve there: in an
-- entry thread or a light thread it yields to nginx, which resumes it at
-- once (the worker would spin). Returns false where nothing may wait
-- (init, set, filters, log): the call then fails with -32005.
function M.nginx_park(waiter)
  if not M.nginx_yieldable() then return false end
  local sema = require("ngx.semaphore").new(0)
  waiter.post = function() sema:post(1) end
  while not waiter.done do
    local ok, err = sema:wait(86400)
    if not ok and err ~= "timeout" then break end
  end
  waiter.post = nil
  return true
end

--- The scheduler callbacks into user code go through, from an option:
-- a function(fn) that runs fn later, false for none (at once, in the
-- loop's callback), nil for the host's default (vim.schedule in Neovim).
function M.scheduler(option)
  if option == false then return nil end
  if option ~= nil then
    if type(option) ~= "function" then error("schedule must be a function or false", 3) end
    return option
  end
  local vim = M.neovim()
  return vim and vim.schedule or nil
end

-- The schedule option of servers made with one (jsonrpc.server), weakly:
-- the connections of such a server take it when they have none of their own.
local server_schedules = setmetatable({}, { __mode = "k" })

--- Records a server's schedule option (a function or false).
function M.set_server_schedule(server, option)
  if option ~= nil and option ~= false and type(option) ~= "function" then
    error("jsonrpc.server: schedule must be a function or false", 3)
  end
  server_schedules[server] = option
end

--- The schedule option a connection of `server` runs with: its own
-- (`option`), else its server's, else nil (the host's default).
function M.schedule_option(option, server)
  if option ~= nil then return option end
  if server ~= nil then return server_schedules[server] end
  return nil
end

--- fn deferred through schedule (nil: fn itself).
function M.deferred(schedule, fn)
  if not schedule then return fn end
  return function(...)
    local n, args = select("#", ...), { ... }
    schedule(function() fn(unpack(args, 1, n)) end)
  end
end

--- start(run, ...) for the connection options: each handler starts through
-- schedule, in a coroutine of its own (so that it may wait), and report
-- hears what its runner raises.
function M.scheduled_start(schedule, report)
  return function(run, ...)
    local n, args = select("#", ...), { ... }
    schedule(function()
      local co = coroutine.create(function() return run(unpack(args, 1, n)) end)
      -- core.resume: on plain 5.1, where the runner cannot catch an error
      -- after a yield, it answers the handler's error itself
      local ok, err = require("jsonrpc.core").resume(co)
      if not ok then report("handler runner failed: " .. tostring(err)) end
    end)
  end
end

--- In Neovim, the wait of calls made outside coroutines: vim.wait, so that
-- nvim's queue, redraws and signals go on while the call waits. In a fast
-- event (a luv callback) nothing can wait: it returns at once, and the
-- call fails with -32005.
function M.neovim_wait(done)
  local vim = M.neovim()
  if vim.in_fast_event() then return end
  vim.wait(2 ^ 31 - 1, done, 10)
end

--- The sink of the reporter's messages: in Neovim, vim.notify at ERROR
-- level, scheduled (it is not allowed in fast events); nil elsewhere (a
-- line on stderr).
function M.error_sink()
  local vim = M.neovim()
  if not vim then return nil end
  return function(message)
    vim.schedule(function()
      vim.notify("jsonrpc: " .. message, vim.log and vim.log.levels and vim.log.levels.ERROR or 4)
    end)
  end
end

return M
