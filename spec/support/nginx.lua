--- Starts Debian's nginx with lua-nginx-module for a spec: under a temp
-- prefix, one worker, listening on 127.0.0.1 only, our module on its
-- paths (the LuaJIT build). stop() ends it by its pid; every request the
-- specs make is bounded by curl's --max-time.
local util = require "spec.support.util"

local M = {}

local root = util.sh("pwd"):gsub("%s+$", "")
M.root = root
M.available = util.sh("command -v nginx"):match("%S") ~= nil
  and io.open("/usr/lib/nginx/modules/ngx_http_lua_module.so") ~= nil

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local read = util.read_file
M.read = read

--- A free loopback port (bound, read, released).
function M.free_port()
  local uv = require "luv"
  local tcp = uv.new_tcp()
  assert(tcp:bind("127.0.0.1", 0))
  local port = tcp:getsockname().port
  tcp:close()
  uv.run("nowait")   -- let the close finish (Debian's luv 1.44 crashes at exit on a pending one)
  return port
end

local function lua_literal(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = ("[%q] = %s"):format(k, lua_literal(x)) end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

--- start{http = "directives", server = "directives", params = {...},
-- init = "lua code for init_by_lua", main = "directives", lua_path =
-- "more;paths;", wrap = "a command nginx runs under"} -> nginx with url,
-- port, prefix, pid, stop(), error_log(), worker_pid(). With wrap
-- (valgrind, say) nginx runs as one process in the foreground, in the
-- background of the shell.
function M.start(opts)
  local prefix = os.tmpname()
  os.remove(prefix)
  assert(os.execute(("mkdir -p %s/conf %s/logs %s/body"):format(prefix, prefix, prefix)))
  local port = opts.port or M.free_port()
  local params = opts.params or {}
  params.port = port
  write(prefix .. "/conf/params.lua", "return " .. lua_literal(params) .. "\n")
  local is_root = util.sh("id -u"):match("^0") ~= nil
  local conf = table.concat({
    is_root and "user root root;" or "",
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    "worker_processes 1;",
    opts.wrap and "master_process off; daemon off;" or "",
    opts.main or "",
    "pid logs/nginx.pid;",
    "error_log logs/error.log info;",
    "events { worker_connections 256; }",
    "http {",
    "  access_log off;",
    ("  lua_package_path '%s%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/nginx/?.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;';")
      :format(opts.lua_path or "", root, root, root),
    ("  lua_package_cpath '%s/build/luajit/?.so;;';"):format(root),
    ("  client_body_temp_path %s/body;"):format(prefix),
    opts.init and ("  init_by_lua_block { %s }"):format(opts.init) or "",
    opts.http or "",
    "  server {",
    ("    listen 127.0.0.1:%d;"):format(port),
    opts.server or "",
    "  }",
    "}",
  }, "\n")
  write(prefix .. "/conf/nginx.conf", conf)
  if opts.wrap then
    os.execute(("(%s nginx -p %s/ -c conf/nginx.conf >%s/logs/wrapped.log 2>&1 &)"):format(opts.wrap, prefix, prefix))
  else
    local out, code = util.sh(("nginx -p %s/ -c conf/nginx.conf 2>&1"):format(prefix))
    assert(code == 0, "nginx did not start: " .. out .. (read(prefix .. "/logs/error.log") or ""))
  end
  local pid
  for _ = 1, opts.wrap and 600 or 100 do
    pid = tonumber((read(prefix .. "/logs/nginx.pid") or ""):match("%d+"))
    if pid then break end
    os.execute("sleep 0.05")
  end
  assert(pid, "nginx wrote no pid")
  local nginx = { prefix = prefix, port = port, pid = pid, url = "http://127.0.0.1:" .. port }
  function nginx.error_log() return read(prefix .. "/logs/error.log") or "" end
  function nginx.worker_pid()
    if opts.wrap then return pid end   -- one process
    -- the child of the master, from /proc (no procps needed)
    for _ = 1, 100 do
      for entry in util.sh("ls /proc"):gmatch("%d+") do
        local stat = read("/proc/" .. entry .. "/stat")
        if stat and tonumber(stat:match("^%d+ %b() %S+ (%d+)")) == pid then return tonumber(entry) end
      end
      os.execute("sleep 0.05")
    end
  end
  function nginx.stop()
    os.execute("kill -QUIT " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
      os.execute("sleep 0.05")
    end
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    os.execute("rm -rf " .. prefix)
  end
  -- ready once the port answers (valgrind takes its time)
  for _ = 1, opts.wrap and 600 or 100 do
    local _, c = util.sh(("curl -s -o /dev/null --max-time 1 %s/"):format(nginx.url))
    if c == 0 then break end
    os.execute("sleep 0.05")
  end
  return nginx
end

--- request(url, {method, body, content_type, headers = {...}}) ->
-- status, body, headers text. Bounded: 15 s.
function M.request(url, opts)
  opts = opts or {}
  local args = { "curl -s -S --max-time 15 -D - -o -" }
  if opts.method then args[#args + 1] = "-X " .. opts.method end
  local body_file
  if opts.body then
    body_file = os.tmpname()
    write(body_file, opts.body)
    args[#args + 1] = "--data-binary @" .. body_file
    args[#args + 1] = ("-H 'Content-Type: %s'"):format(opts.content_type or "application/json")
  end
  for name, value in pairs(opts.headers or {}) do
    args[#args + 1] = ("-H '%s: %s'"):format(name, value)
  end
  args[#args + 1] = "'" .. url .. "'"
  local out = util.sh(table.concat(args, " ") .. " 2>&1")
  if body_file then os.remove(body_file) end
  -- the last header block (after any 100 Continue), then the body
  local status, headers, body
  local pos = 1
  while true do
    local block, s, after = out:match("^(HTTP/%d[%.%d]* (%d+).-\r\n)\r\n()", pos)
    if not block then break end
    status, headers, pos = tonumber(s), block, after
  end
  body = out:sub(pos)
  return status, body, headers or out
end

return M
