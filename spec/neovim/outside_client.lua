-- A plain Lua process calling into a server that runs inside Neovim
-- (spec/neovim/in_nvim.lua starts it): prints the line count set_lines
-- answers, then the error the fast listener's handler answers.
local jsonrpc = require "jsonrpc"
local url, fast_url = arg[1], arg[2]
local conn = assert(jsonrpc.connect(url, { timeout = 10 }))
local n, err = conn:try_call("set_lines", { { "a", "b", "c" } })
print(n or ("error: " .. tostring(err and err.message)))
conn:close()
local fast = assert(jsonrpc.connect(fast_url, { timeout = 10 }))
local r, ferr = fast:try_call("set_lines", { { "x" } })
print(r ~= nil and ("answered " .. tostring(r)) or tostring(ferr.data and ferr.data.message or ferr.message))
fast:close()
