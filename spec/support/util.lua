--- Helpers shared by the specs: value comparison, generators, UTF-8 checks.
local jsonrpc = require "jsonrpc"

local util = {}

--- JSONRPC_SPEC_QUICK=1 (used under valgrind) scales generated cases down.
util.quick = os.getenv("JSONRPC_SPEC_QUICK") ~= nil
function util.count(n)
  return util.quick and math.max(1, math.floor(n / 20)) or n
end

function util.is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return false
end

--- Deep equality of decoded JSON values; numbers compared by value as doubles.
function util.same_json(a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then
    return a + 0.0 == b + 0.0 or (a ~= a and b ~= b)
  end
  if ta ~= tb then return false end
  if ta ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not util.same_json(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

--- Length of the valid UTF-8 sequence at byte i of s, or nil (strict rules).
function util.utf8_seq(s, i)
  local c = s:byte(i)
  if c < 0x80 then return 1 end
  local n, lo, hi
  if c >= 0xC2 and c <= 0xDF then n = 2
  elseif c >= 0xE0 and c <= 0xEF then
    n = 3
    lo = (c == 0xE0) and 0xA0 or 0x80
    hi = (c == 0xED) and 0x9F or 0xBF
  elseif c >= 0xF0 and c <= 0xF4 then
    n = 4
    lo = (c == 0xF0) and 0x90 or 0x80
    hi = (c == 0xF4) and 0x8F or 0xBF
  else return nil end
  lo, hi = lo or 0x80, hi or 0xBF
  local b1 = s:byte(i + 1)
  if not b1 or b1 < lo or b1 > hi then return nil end
  for k = 2, n - 1 do
    local b = s:byte(i + k)
    if not b or b < 0x80 or b > 0xBF then return nil end
  end
  return n
end

function util.valid_utf8(s)
  local i = 1
  while i <= #s do
    local n = util.utf8_seq(s, i)
    if not n then return false end
    i = i + n
  end
  return true
end

--- Whether s is exactly one number in the JSON grammar.
function util.valid_json_number(s)
  local rest = s:match("^%-?0(.*)$") or s:match("^%-?[1-9]%d*(.*)$")
  if not rest then return false end
  rest = rest:match("^%.%d+(.*)$") or rest
  rest = rest:match("^[eE][%+%-]?%d+(.*)$") or rest
  return rest == ""
end

--- Encodes a code point as UTF-8 (Lua 5.1 has no utf8.char).
function util.utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

--- A random valid scalar value, weighted toward the interesting ranges.
local function random_codepoint(rand)
  local r = rand(10)
  if r <= 4 then return rand(0x20, 0x7E) end
  if r == 5 then return rand(0, 0x1F) end
  if r == 6 then return rand(0x80, 0x7FF) end
  if r == 7 then return rand(0x800, 0xD7FF) end
  if r == 8 then return rand(0xE000, 0xFFFF) end
  return rand(0x10000, 0x10FFFF)
end

function util.random_string(rand, maxlen)
  local parts = {}
  for i = 1, rand(0, maxlen or 12) do
    parts[i] = util.utf8_char(random_codepoint(rand))
  end
  return table.concat(parts)
end

--- A random number as JSON text, in the many forms the grammar allows.
function util.random_number_text(rand)
  local r = rand(8)
  local sign = rand(3) == 1 and "-" or ""
  if r == 1 then return sign .. tostring(rand(0, 9)) end
  if r == 2 then return sign .. tostring(rand(1, 2147483647)) .. tostring(rand(0, 99999999)) end
  if r == 3 then return sign .. "9223372036854775" .. tostring(rand(800, 810)) end
  if r == 4 then return sign .. tostring(rand(0, 999)) .. "." .. tostring(rand(0, 99999)) end
  if r == 5 then
    return sign .. tostring(rand(1, 9)) .. "." .. tostring(rand(0, 9999)) .. (rand(2) == 1 and "e" or "E")
      .. ({"", "+", "-"})[rand(3)] .. tostring(rand(0, 330))
  end
  if r == 6 then return sign .. "0.000" .. tostring(rand(1, 99999)) end
  if r == 7 then return sign .. string.rep("1234567890", rand(2, 4)) .. "." .. string.rep("9", rand(1, 30)) end
  return string.format("%.17g", (rand() - 0.5) * 10 ^ rand(-300, 300))
end

--- Escapes a Lua string as a JSON string literal, choosing among the
-- equivalent spellings at random (\u escapes, surrogate pairs, \/).
function util.json_string(rand, s)
  local out, i = {'"'}, 1
  while i <= #s do
    local c = s:byte(i)
    local n = util.utf8_seq(s, i)
    local ch = s:sub(i, i + n - 1)
    local simple = { [0x22] = '\\"', [0x5C] = '\\\\', [0x08] = "\\b", [0x0C] = "\\f",
                     [0x0A] = "\\n", [0x0D] = "\\r", [0x09] = "\\t" }
    if simple[c] then
      out[#out + 1] = simple[c]
    elseif c < 0x20 or rand(6) == 1 then
      -- \u escape of the code point (a surrogate pair above the BMP)
      local cp
      if n == 1 then cp = c
      elseif n == 2 then cp = (c % 32) * 64 + s:byte(i + 1) % 64
      elseif n == 3 then cp = (c % 16) * 4096 + (s:byte(i + 1) % 64) * 64 + s:byte(i + 2) % 64
      else cp = (c % 8) * 262144 + (s:byte(i + 1) % 64) * 4096 + (s:byte(i + 2) % 64) * 64 + s:byte(i + 3) % 64 end
      local hex = rand(2) == 1 and "%04x" or "%04X"
      if cp >= 0x10000 then
        cp = cp - 0x10000
        out[#out + 1] = ("\\u" .. hex .. "\\u" .. hex):format(0xD800 + math.floor(cp / 1024), 0xDC00 + cp % 1024)
      else
        out[#out + 1] = ("\\u" .. hex):format(cp)
      end
    elseif c == 0x2F and rand(2) == 1 then
      out[#out + 1] = "\\/"
    else
      out[#out + 1] = ch
    end
    i = i + n
  end
  out[#out + 1] = '"'
  return table.concat(out)
end

--- A random JSON document as text, with random (legal) whitespace.
function util.random_document(rand, depth)
  depth = depth or 0
  local function ws()
    local r = rand(6)
    if r > 3 then return "" end
    return ({" ", "\n", "\t", "\r\n  "})[rand(4)]
  end
  local r = rand(depth > 3 and 6 or 8)
  local text
  if r == 1 then text = util.json_string(rand, util.random_string(rand))
  elseif r == 2 then text = util.random_number_text(rand)
  elseif r == 3 then text = ({"true", "false", "null"})[rand(3)]
  elseif r <= 6 then text = util.random_number_text(rand)
  elseif r == 7 then
    local items = {}
    for i = 1, rand(0, 5) do items[i] = util.random_document(rand, depth + 1) end
    text = "[" .. ws() .. table.concat(items, ws() .. "," .. ws()) .. ws() .. "]"
  else
    local items = {}
    for i = 1, rand(0, 5) do
      items[i] = util.json_string(rand, util.random_string(rand, 6)) .. ws() .. ":" .. ws()
        .. util.random_document(rand, depth + 1)
    end
    text = "{" .. ws() .. table.concat(items, ws() .. "," .. ws()) .. ws() .. "}"
  end
  return ws() .. text .. ws()
end

--- A random Lua value that jsonrpc.encode accepts.
function util.random_value(rand, depth)
  depth = depth or 0
  local r = rand(depth > 3 and 6 or 9)
  if r == 1 then return util.random_string(rand, 20) end
  if r == 2 then return rand(-2147483647, 2147483647) end
  if r == 3 then return (rand() - 0.5) * 10 ^ rand(-20, 20) end
  if r == 4 then return ({true, false, jsonrpc.null})[rand(3)] end
  if r == 5 then -- a full-width 64-bit integer where Lua has them
    if not math.tointeger then return rand(0, 2 ^ 30) * 2 ^ 22 end
    return math.tointeger(rand(-2147483647, 2147483647) * 4294967296 + rand(0, 65535) * 65536 + rand(0, 65535))
  end
  if r == 6 then return rand(0, 1000) / 8 end
  if r == 7 then
    local t = {}
    for i = 1, rand(0, 6) do t[i] = util.random_value(rand, depth + 1) end
    return #t == 0 and jsonrpc.array(t) or t
  end
  local t = {}
  for _ = 1, rand(0, 6) do t[util.random_string(rand, 8)] = util.random_value(rand, depth + 1) end
  return next(t) == nil and jsonrpc.object(t) or t
end

--- The interpreter running the specs (busted's arg[-n]), for children.
function util.interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return arg and arg[i] or "lua5.4"
end

--- Runs a shell command; returns its output (stdout, and stderr when the
--- command redirects it) and its exit status.
function util.sh(command)
  local p = io.popen(command .. "; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return (out:gsub("exit=%d+%s*$", "")), code
end

--- The compiler flags of a C program that embeds the Lua running the
--- specs (a host, a driver): its include directory and its library.
function util.lua_c_flags()
  if jit then return "-I/usr/include/luajit-2.1", "-lluajit-5.1" end
  local v = _VERSION:match("%d+%.%d+")
  return "-I/usr/include/lua" .. v, "-llua" .. v
end

--- Runs the event loop until cond() holds, for at most ms milliseconds
-- (a ticking timer keeps run("once") from blocking past the deadline).
-- Returns cond().
function util.run_until(cond, ms)
  local uv = require "luv"
  local tick = uv.new_timer()
  tick:start(10, 10, function() end)
  local deadline = uv.now() + (ms or 5000)
  while not cond() and uv.now() < deadline do jsonrpc.run("once") end
  tick:close()
  -- let the close finish: Debian's luv 1.44 crashes at exit on a luv
  -- handle whose close is still pending
  jsonrpc.run("nowait")
  return cond()
end

--- Starts `node args...` on the loop; returns {out = stdout so far,
-- code = exit code once known, stdin = a pipe to its stdin}.
function util.node(args)
  local uv = require "luv"
  local proc = { out = "" }
  local stdin, stdout = uv.new_pipe(false), uv.new_pipe(false)
  proc.handle = uv.spawn("node", { args = args, stdio = { stdin, stdout, 2 } },
    function(code)
      proc.code = code
      proc.handle:close()
      if not stdin:is_closing() then stdin:close() end
    end)
  assert(proc.handle, "cannot start node")
  stdout:read_start(function(_, data)
    if data then proc.out = proc.out .. data else stdout:close() end
  end)
  proc.stdin = stdin
  return proc
end

--- The text of a file, or nil when it cannot be opened.
local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end
util.read_file = read_file

--- Runs a shell command in the background, its stderr into a file; returns
-- a handle with stderr() (what it wrote so far), signal(name) and
-- wait() (its exit status, or nil after 5 s). cleanup() removes its files.
function util.background(command)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  assert(os.execute(("(%s 2>%s/err & echo $! >%s/pid; wait $!; echo $? >%s/status) >/dev/null 2>&1 &")
    :format(command, dir, dir, dir)))
  local bg = { dir = dir }
  function bg.stderr() return read_file(dir .. "/err") or "" end
  function bg.wait_for(pattern)
    for _ = 1, 100 do
      local found = bg.stderr():match(pattern)
      if found then return found end
      os.execute("sleep 0.05")
    end
  end
  function bg.signal(name)
    local pid = tonumber(read_file(dir .. "/pid") or "")
    return pid and os.execute(("kill -%s %d"):format(name, pid))
  end
  function bg.wait()
    for _ = 1, 100 do
      local status = tonumber(read_file(dir .. "/status") or "")
      if status then return status end
      os.execute("sleep 0.05")
    end
  end
  function bg.cleanup() os.execute("rm -rf " .. dir) end
  return bg
end

return util
