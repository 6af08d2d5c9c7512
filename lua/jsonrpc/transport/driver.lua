--- Which driver runs a connection's I/O: "c", the engine's own libuv
-- code, or "luv", luv's Lua API (jsonrpc.transport.luv_driver). The
-- default is "c", unless the libuv the module links is not the one luv
-- runs (core.same_libuv()), or JSONRPC_DRIVER names another. Each driver
-- has connect, listen, timer, run, stdio and spawn, with core's arguments.
local core = require "jsonrpc.core"

local M = {}

local C = { name = "c", connect = core.connect, listen = core.listen, timer = core.timer,
            run = core.run, stdio = core.stdio, spawn = core.spawn }

local default

--- The default driver's name.
function M.default_name()
  if default then return default end
  local env = os.getenv("JSONRPC_DRIVER")
  if env == "c" or env == "luv" then
    default = env
  else
    local has_luv = pcall(require, "luv")
    default = (has_luv and core.same_libuv() == false) and "luv" or "c"
  end
  return default
end

--- of(name) -> driver: "c", "luv" or nil (the default); else it raises.
function M.of(name)
  if name == nil then name = M.default_name() end
  if name == "c" then return C end
  if name == "luv" then return require "jsonrpc.transport.luv_driver" end
  error(('driver must be "c" or "luv", not %s'):format(tostring(name)), 3)
end

return M
