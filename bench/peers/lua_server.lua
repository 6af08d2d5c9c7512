-- Benchmark peer: a pure-Lua JSON-RPC server on luv and lua-cjson, framed and
-- dispatched the way Neovim's LSP client (runtime/lua/vim/lsp/rpc.lua) does.
--   lua5.4 bench/peers/lua_server.lua PORT [--tuned]   (PORT 0 picks a port)
--   lua5.4 bench/peers/lua_server.lua stdio: [--tuned] (stdin and stdout, as
--                                     Neovim runs a language server)
-- As Neovim does it, every response and notification is one tcp:write. With
-- --tuned, as a competent pure-Lua server would: the answers to one read go
-- out in one write, and a stream's notifications a slice at a time. Runs on
-- Lua 5.1 to 5.4 and LuaJIT (the benchmarks use 5.4 and LuaJIT).
-- Listens on TCP 127.0.0.1:PORT, prints "listening on tcp://127.0.0.1:<port>",
-- serves Content-Length framed JSON-RPC (batches too) until SIGTERM/SIGINT.
-- Methods, positional params: add(a, b), echo(x), sleep(ms) -> ms after a
-- timer, stream(n) -> n notifications "tick" [i], then the result n; and
-- the LSP-like ones of ours.lua (add_named takes {a, b}).
local uv = require "luv"
local cjson = require "cjson"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lsp_like = dofile(here .. "/lsp_like.lua")

local SLICE = 100   -- notifications written between two waits in stream()
local TUNED = arg[2] == "--tuned"
local unpack = table.unpack or unpack   -- LuaJIT has the 5.1 name

---------------------------------------------------------------- framing

local function content_length(header)
  local n = header:lower():match("content%-length%s*:%s*(%d+)")
  return tonumber(n) or error("no Content-Length in header: " .. header)
end

-- A coroutine fed one chunk per resume; it yields a body whenever one is
-- complete (then expects "" to go on) and nil when it needs more input.
local function parser_loop()
  local buf = ""   -- holds only the header part (and what follows it)
  while true do
    local start, finish = string.find(buf, "\r\n\r\n", 1, true)
    if start then
      local len = content_length(buf:sub(1, start - 1))
      -- Body pieces are kept apart and joined once: appending each chunk to
      -- one string would copy a 64 MiB body over and over.
      local chunks = { buf:sub(finish + 1) }
      local have = #chunks[1]
      while have < len do
        local chunk = coroutine.yield()
        chunks[#chunks + 1] = chunk
        have = have + #chunk
      end
      local rest = ""
      if have > len then   -- the last chunk also holds the next message(s)
        local last = chunks[#chunks]
        local cut = #last - (have - len)
        chunks[#chunks], rest = last:sub(1, cut), last:sub(cut + 1)
      end
      buf = rest .. coroutine.yield(table.concat(chunks))
    else
      buf = buf .. coroutine.yield()
    end
  end
end

local function close(conn)
  if conn.closed then return end
  conn.closed = true
  if conn.input ~= conn.output then os.exit(0) end   -- stdio: stdin closed
  conn.input:close()
end

local function frame(body)
  return "Content-Length: " .. #body .. "\r\n\r\n" .. body
end

local function write(conn, data, on_written)
  local ok = conn.output:write(data, on_written)
  if not ok then close(conn) end   -- the peer is gone
  return ok and true or false
end

-- False when nothing was written (then on_written will not be called).
-- Tuned, while a read is handled, the frame joins that read's answers.
local function send(conn, body, on_written)
  if conn.closed then return false end
  if conn.collected and not on_written then
    conn.collected[#conn.collected + 1] = frame(body)
    return true
  end
  return write(conn, frame(body), on_written)
end

-- Tuned: what the handling of one read collected, in one write.
local function flush(conn)
  local collected = conn.collected
  conn.collected = nil
  if collected and #collected > 0 and not conn.closed then write(conn, table.concat(collected)) end
end

-- A response as JSON. Debian's lua-cjson 2.1.0 writes numbers with 14
-- significant digits, so an integer id from 1e14 up would come back rounded:
-- such an id is left out of the table and written by hand.
local function encode(response)
  local id, head = response.id, nil
  if type(id) == "number" and id % 1 == 0 and math.abs(id) >= 1e14 then
    response.id, head = nil, string.format('{"id":%.0f,', id)
  end
  local ok, body = pcall(cjson.encode, response)
  if not ok then   -- e.g. a result of inf: answer that rather than die
    response.result, response.error = nil, { code = -32603, message = body }
    body = cjson.encode(response)
  end
  return head and head .. body:sub(2) or body
end

---------------------------------------------------------------- methods

-- Each call runs in its own coroutine (as Neovim runs server requests), so
-- a method may wait on the loop by yielding; it gets the connection first.
-- A waiting method is resumed by its callback through wake, which hands the
-- call's end (its result or its error) to the call's finisher: no pcall
-- around the method, as Lua 5.1 cannot yield across one.
local methods = {}
local finishers = {}   -- coroutine -> function(ok, result)

local function wake(co, ...)
  local ok, result = coroutine.resume(co, ...)
  if coroutine.status(co) == "dead" then
    local finish = finishers[co]
    finishers[co] = nil
    finish(ok, result)
  end
end

function methods.add(_, a, b) return a + b end

function methods.echo(_, x) return x end

-- The LSP-like methods (lsp_like.lua); add_named takes its params by name.
function methods.add_named(_, p) return p.a + p.b end
function methods.complete(_, n) return lsp_like.completion(n) end
function methods.diagnostics(_, report) return #report.diagnostics end
function methods.did_open(_, p) return p.textDocument.version end

-- math.tointeger is 5.3+; on LuaJIT a whole number is a float equal to its floor
local function whole(x)
  if math.tointeger then return math.tointeger(x) end
  return type(x) == "number" and x == math.floor(x) and x or nil
end

function methods.sleep(_, ms)
  ms = whole(ms) or error("sleep: ms must be a whole number")
  local co, timer = coroutine.running(), uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    wake(co)
  end)
  coroutine.yield()
  return ms
end

-- One write per notification; after each slice the coroutine waits for the
-- slice's last write to complete (libuv writes in order), so never more than
-- one slice (~5 KB) waits in memory, and the loop gets a turn to free the
-- finished writes and serve the other connections (1000 a slice held them
-- ~15 ms; 100 costs no throughput).
local function stream_tuned(conn, n)
  local co = coroutine.running()
  local slice = {}
  for i = 1, n do
    slice[#slice + 1] = frame(cjson.encode({ jsonrpc = "2.0", method = "tick", params = { i } }))
    if i % SLICE == 0 or i == n then
      if not write(conn, table.concat(slice), function() wake(co) end) then
        error("connection closed")
      end
      slice = {}
      coroutine.yield()
    end
  end
  return n
end

function methods.stream(conn, n)
  if TUNED then return stream_tuned(conn, n) end
  local co = coroutine.running()
  for i = 1, n do
    local last = i % SLICE == 0 or i == n
    if not send(conn, cjson.encode({ jsonrpc = "2.0", method = "tick", params = { i } }),
                last and function() wake(co) end or nil) then
      error("connection closed")
    end
    if last then coroutine.yield() end
  end
  return n
end

---------------------------------------------------------------- dispatch

local function error_response(id, code, message)
  return { jsonrpc = "2.0", id = id, error = { code = code, message = message } }
end

-- Runs one call; done(response) follows, with nil for a notification.
local function call(conn, msg, done)
  if type(msg) ~= "table" or type(msg.method) ~= "string" then
    local id = type(msg) == "table" and msg.id or cjson.null
    return done(error_response(id, -32600, "Invalid Request"))
  end
  local id, fn = msg.id, methods[msg.method]   -- no id: a notification
  if not fn then
    return done(id ~= nil and error_response(id, -32601, "Method not found") or nil)
  end
  local params = type(msg.params) == "table" and msg.params or {}
  -- positional params are the arguments; named ones arrive as one table
  local named = #params == 0 and next(params) ~= nil
  local co = coroutine.create(function()
    if named then return fn(conn, params) end
    return fn(conn, unpack(params, 1, #params))
  end)
  finishers[co] = function(ok, result)
    if id == nil then
      done(nil)
    elseif ok then
      if result == nil then result = cjson.null end
      done({ jsonrpc = "2.0", id = id, result = result })
    else
      done(error_response(id, -32603, tostring(result)))
    end
  end
  wake(co)
end

local function handle_body(conn, body)
  local ok, msg = pcall(cjson.decode, body)
  if not ok then
    return send(conn, encode(error_response(cjson.null, -32700, "Parse error")))
  end
  -- cjson decodes [] and {} alike, so a batch is told by its first byte.
  if not body:find("^%s*%[") then
    return call(conn, msg, function(response)
      if response then send(conn, encode(response)) end
    end)
  end
  if #msg == 0 then
    return send(conn, encode(error_response(cjson.null, -32600, "Invalid Request")))
  end
  -- The batch is answered once its last call is done (some may wait).
  local answers, pending = {}, #msg
  for i = 1, #msg do
    call(conn, msg[i], function(response)
      answers[i] = response and encode(response) or false
      pending = pending - 1
      if pending > 0 then return end
      local list = {}
      for j = 1, #msg do
        if answers[j] then list[#list + 1] = answers[j] end
      end
      if #list > 0 then send(conn, "[" .. table.concat(list, ",") .. "]") end
    end)
  end
end

---------------------------------------------------------------- server

-- One connection: requests read from input, answers written to output
-- (the same TCP socket, or stdin and stdout).
local function serve(input, output)
  local conn = { input = input, output = output, closed = false }
  local parse = coroutine.wrap(parser_loop)
  parse()   -- runs up to its first yield, ready for chunks
  input:read_start(function(err, chunk)
    if err or not chunk then return close(conn) end
    if TUNED then conn.collected = {} end
    local ok, body = pcall(parse, chunk)
    while ok and body do
      handle_body(conn, body)
      ok, body = pcall(parse, "")
    end
    flush(conn)
    if not ok then   -- a broken header: the stream cannot be resynchronised
      io.stderr:write("lua_server: ", tostring(body), "\n")
      close(conn)
    end
  end)
end

local function pipe(fd)
  local p = uv.new_pipe(false)
  assert(p:open(fd))
  return p
end

local server
if arg[1] == "stdio:" then
  serve(pipe(0), pipe(1))
else
  server = uv.new_tcp()
  assert(server:bind("127.0.0.1", tonumber(arg[1]) or 0))
  assert(server:listen(1024, function(err)
    if err then return end
    local tcp = uv.new_tcp()
    if server:accept(tcp) then
      tcp:nodelay(true)
      serve(tcp, tcp)
    else
      tcp:close()
    end
  end))
end

for _, name in ipairs({ "sigterm", "sigint" }) do
  local signal = uv.new_signal()
  signal:start(name, function() os.exit(0) end)
end
-- Writing to a peer that went away raises SIGPIPE, which kills by default;
-- caught, the write fails with EPIPE instead and the connection closes.
local sigpipe = uv.new_signal()
sigpipe:start("sigpipe", function() end)

if server then
  io.stdout:write("listening on tcp://127.0.0.1:", server:getsockname().port, "\n")
  io.stdout:flush()
end
uv.run()
