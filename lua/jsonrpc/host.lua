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
