-- nginx content handler: the pure-Lua dispatcher on lua-cjson
-- (bench/lua_dispatcher.lua), with the same HTTP checks as
-- jsonrpc.ngx.serve: POST only, a JSON Content-Type, 204 for
-- notifications, the body from memory or nginx's temp file.
local dispatcher = require("methods")(require("lua_dispatcher").new())

local function refuse(status, reason)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(reason)
end

return function()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return refuse(405, "POST only")
  end
  local ctype = ngx.var.content_type
  if not ctype or not ctype:lower():find("^%s*application/json") then
    return refuse(415, "Content-Type must be application/json")
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    local f = path and io.open(path, "rb")
    body = f and f:read("*a") or ""
    if f then f:close() end
  end
  local answer = dispatcher:handle(body)
  if answer == nil then
    ngx.status = 204
    return
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #answer
  ngx.print(answer)
end
