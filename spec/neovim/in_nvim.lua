-- Run by spec/neovim_spec.lua inside `nvim --headless`: a server and its
-- clients in Neovim, as a plugin would have them, and a client from
-- outside (a plain Lua process) calling into it.
local H = dofile(os.getenv("JSONRPC_NVIM_HARNESS"))

H.run(function()
  local jsonrpc = require "jsonrpc"
  local codes = jsonrpc.codes
  H.check("the LuaJIT build loads", jit ~= nil and jsonrpc.version ~= nil, jsonrpc.version)

  -- handlers that edit the buffer, scheduled on nvim's main loop (the default)
  local server = jsonrpc.server{ expose_errors = true }   -- errors name their cause
  local seen = {}
  server:method("set_lines", function(lines)
    seen[#seen + 1] = vim.in_fast_event()
    vim.api.nvim_buf_set_lines(0, 0, -1, false, lines)
    return vim.api.nvim_buf_line_count(0)
  end)
  server:method("count", function() return vim.api.nvim_buf_line_count(0) end)
  server:method("slow", function(ms)   -- waits on a timer without blocking nvim
    local co = coroutine.running()
    vim.defer_fn(function() coroutine.resume(co) end, ms)
    coroutine.yield()
    return ms
  end)
  server:method("fail", function() error("on purpose") end)
  local l = assert(server:listen("tcp://127.0.0.1:0"))
  -- the same server with schedule = false: fast context, as luv callbacks
  local fast = assert(server:listen("tcp://127.0.0.1:0", { schedule = false }))

  -- from outside: a plain Lua process calls in
  local out = {}
  local job = vim.fn.jobstart({ "env", "LUA_CPATH=" .. os.getenv("JSONRPC_CPATH_54"),
                                "lua5.4", os.getenv("JSONRPC_NVIM_DIR") .. "/outside_client.lua",
                                l.url, fast.url }, {
    stdout_buffered = true,
    on_stdout = function(_, data) out = data end,
  })
  H.check("the outside client starts", job > 0, job)
  local exited = H.wait(10000, function() return #out > 0 and out[1] ~= "" end)
  H.check("the outside client finishes", exited, table.concat(out, "\n"))
  H.check("a handler edits the buffer for an outside caller and answers its line count",
    out[1] == "3", out[1])
  H.check("the buffer holds what it was sent",
    table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), ",") == "a,b,c")
  H.check("the handler ran outside fast events, and with schedule = false in one",
    seen[1] == false and seen[2] == true, vim.inspect(seen))
  H.check("with schedule = false, vim.api in a handler answers E5560 and nvim goes on",
    out[2] ~= nil and out[2]:find("E5560", 1, true) ~= nil, out[2])

  -- a client inside nvim
  local conn = assert(jsonrpc.connect(l.url))
  local in_callback
  conn:call("count", nil, function(result)
    in_callback = { result = result, fast = vim.in_fast_event(),
                    lines = #vim.api.nvim_buf_get_lines(0, 0, -1, false) }
  end)
  H.wait(5000, function() return in_callback ~= nil end)
  H.check("a call's callback runs where vim.api works",
    in_callback and in_callback.result == 3 and in_callback.fast == false and in_callback.lines == 3,
    vim.inspect(in_callback))

  local after_call
  coroutine.wrap(function()
    local n = conn:call("count")
    after_call = { n = n, fast = vim.in_fast_event(), buf = vim.api.nvim_get_current_buf() }
  end)()
  H.wait(5000, function() return after_call ~= nil end)
  H.check("code after conn:call in a coroutine runs where vim.api works",
    after_call and after_call.n == 3 and after_call.fast == false, vim.inspect(after_call))

  -- blocking on the main thread: nvim's timers go on meanwhile
  local ticks, timer = 0, vim.loop.new_timer()
  timer:start(5, 5, function() ticks = ticks + 1 end)
  local t0 = vim.loop.hrtime()
  local waited = conn:call("slow", { 150 })
  local ms = (vim.loop.hrtime() - t0) / 1e6
  timer:stop()
  timer:close()
  H.check("a blocking call on the main thread returns", waited == 150, waited)
  H.check("timers tick while a blocking call waits", ticks >= 5 and ms >= 140, ("%d ticks in %.0f ms"):format(ticks, ms))

  -- inside a fast event nothing can wait: -32005 at once
  local fast_result
  local t = vim.loop.new_timer()
  t:start(1, 0, function()
    local t1 = vim.loop.hrtime()
    local r, err = conn:try_call("count")
    fast_result = { r = r, code = err and err.code, ms = (vim.loop.hrtime() - t1) / 1e6 }
    t:close()
  end)
  H.wait(5000, function() return fast_result ~= nil end)
  H.check("a blocking call inside a fast event fails at once with -32005",
    fast_result and fast_result.r == nil and fast_result.code == codes.NO_EVENT_LOOP and fast_result.ms < 100,
    vim.inspect(fast_result))

  -- schedule = false on a server: its connections' handlers run in fast events
  local fast_server = jsonrpc.server{ schedule = false }
  fast_server:method("where", function() return vim.in_fast_event() end)
  local fl = assert(fast_server:listen("tcp://127.0.0.1:0"))
  local where
  local conn2 = assert(jsonrpc.connect(fl.url))
  conn2:call("where", nil, function(r) where = r end)
  H.wait(5000, function() return where ~= nil end)
  H.check("a server's schedule = false runs its handlers in fast events", where == true, tostring(where))

  local ok, err = pcall(jsonrpc.run)
  H.check("jsonrpc.run() refuses inside Neovim", not ok and tostring(err):find("Neovim runs the event loop", 1, true) ~= nil, err)

  -- 1,000 calls whose handlers use vim.api
  local done = 0
  for i = 1, 1000 do
    conn:call("set_lines", { { "line " .. i } }, function(n) if n == 1 then done = done + 1 end end)
  end
  H.wait(20000, function() return done == 1000 end)
  H.check("1,000 calls whose handlers use vim.api", done == 1000, done)

  -- handler errors go to vim.notify (:messages), not over the screen
  local failed
  conn:call("fail", nil, function(_, e) failed = e end)
  H.wait(5000, function() return failed ~= nil end)
  local messages = ""
  H.wait(5000, function()
    messages = vim.fn.execute("messages")
    return messages:find("jsonrpc: handler error", 1, true) ~= nil
  end)
  H.check("a handler's error is answered", failed and failed.code == codes.INTERNAL_ERROR, vim.inspect(failed))
  H.check("a handler's error goes to :messages", messages:find("on purpose", 1, true) ~= nil, messages)

  -- the host's JSON values
  H.check("encode takes vim.NIL as null", jsonrpc.encode({ vim.NIL }) == "[null]", jsonrpc.encode({ vim.NIL }))
  H.check("encode takes vim.empty_dict() as {}", jsonrpc.encode({ d = vim.empty_dict() }) == '{"d":{}}')
  local dict = vim.api.nvim_eval("{}")
  H.check("encode takes vim.api's empty dictionary as {}", jsonrpc.encode(dict) == "{}", vim.inspect(dict))
  H.check("encode takes vim.api's lists", jsonrpc.encode(vim.api.nvim_eval("[1, 2]")) == "[1,2]")
  H.check("encode takes a vim.types.float table",
    jsonrpc.encode({ [vim.type_idx] = vim.types.float, [vim.val_idx] = 0.5 }) == "0.5")
  if vim.json and vim.json.empty_array ~= nil then
    H.check("encode takes vim.json.empty_array as []", jsonrpc.encode({ vim.json.empty_array }) == "[[]]")
  end
  local decoded = jsonrpc.decode('{"a":null,"b":[1,null]}', { null = vim.NIL })
  H.check("decoded with null = vim.NIL, vim.json writes it back",
    vim.json.encode(decoded.b) == "[1,null]" and decoded.a == vim.NIL, vim.json.encode(decoded.b))
  local set_ok, set_err = pcall(vim.api.nvim_set_var, "jsonrpc_spec", decoded.b)
  H.check("decoded with null = vim.NIL, nvim_set_var takes it",
    set_ok and vim.g.jsonrpc_spec and vim.g.jsonrpc_spec[2] == vim.NIL, set_err)

  -- and exit with the listeners and the connection still open
  H.finish()
end)
