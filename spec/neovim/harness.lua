-- What the scripts run inside Neovim share (spec/neovim_spec.lua starts
-- them): checks written to $JSONRPC_NVIM_OUT, one line each ("ok NAME" or
-- "not ok NAME -- DETAIL"), then nvim quits.
local H = { lines = {} }

function H.check(name, ok, detail)
  H.lines[#H.lines + 1] = (ok and "ok " or "not ok ") .. name
                          .. (ok and "" or (" -- " .. tostring(detail)))
end

function H.finish(code)
  local f = assert(io.open(assert(os.getenv("JSONRPC_NVIM_OUT")), "w"))
  f:write(table.concat(H.lines, "\n"), "\n")
  f:close()
  vim.cmd(code and code ~= 0 and ("cquit " .. code) or "qa!")
end

--- Runs fn; an error in it is a failed check, and the script ends.
function H.run(fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    H.check("the script ran to its end", false, err)
    H.finish()
  end
end

--- Waits up to ms for cond, as a user would (nvim's queue goes on).
function H.wait(ms, cond) return vim.wait(ms, cond, 5) end

return H
