-- jsonrpc.framer: content-length, be32 and ndjson stream framing.
--
-- Every stream is fed whole, byte by byte and in many random splits, and must
-- give the same messages and errors each way. JSONRPC_SPEC_QUICK=1 cuts the
-- counts and sizes (for valgrind); JSONRPC_SPEC_TIMING=1 prints how long the
-- large-message checks took (they never fail on time).
--
-- After a framing error (see also the top of csrc/framing/framing.c):
--  * content-length and be32 cannot find the next frame again: the framer is
--    broken, holds nothing, and every later feed returns {} and the same
--    error, until f:reset();
--  * ndjson drops the offending line up to its newline (without buffering
--    it), reports it once, and goes on with the next line; a feed returns all
--    the messages it completed, with the first error it met.
local jsonrpc = require "jsonrpc"

local QUICK = os.getenv("JSONRPC_SPEC_QUICK") == "1"
local TIMING = os.getenv("JSONRPC_SPEC_TIMING") == "1"
local RANDOM_SPLITS = QUICK and 4 or 40
local MiB = 1024 * 1024

local function cl(body, extra)
  return "Content-Length: " .. #body .. "\r\n" .. (extra or "") .. "\r\n" .. body
end

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
                     math.floor(n / 256) % 256, n % 256)
end

local function b32(body)
  return be32(#body) .. body
end

-- The ways to cut s into chunks: whole, byte by byte, random (seeded).
local function chunkings(s)
  local all = { { s } }
  local bytes = {}
  for i = 1, #s do bytes[i] = s:sub(i, i) end
  all[#all + 1] = bytes
  math.randomseed(#s * 7919 + 17)
  for _ = 1, RANDOM_SPLITS do
    local chunks, i = {}, 1
    local maxlen = math.random(1, math.max(1, math.min(#s, 64)))
    while i <= #s do
      local n = math.random(0, maxlen) -- empty chunks too
      chunks[#chunks + 1] = s:sub(i, i + n - 1)
      i = i + n
    end
    all[#all + 1] = chunks
  end
  return all
end

-- Feeds chunks to a new framer; returns all messages, every error returned
-- (one per feed that returned one) and the framer.
local function run(kind, opts, chunks)
  local f = jsonrpc.framer(kind, opts)
  local msgs, errs = {}, {}
  for _, c in ipairs(chunks) do
    local got, err = f:feed(c)
    assert(type(got) == "table")
    for _, m in ipairs(got) do msgs[#msgs + 1] = m end
    if err ~= nil then errs[#errs + 1] = err end
  end
  return msgs, errs, f
end

-- Asserts that every chunking of stream gives exactly `want` and, when
-- want_err is given, that error (and no other); without it, no error.
local function check(kind, opts, stream, want, want_err)
  for _, chunks in ipairs(chunkings(stream)) do
    local msgs, errs = run(kind, opts, chunks)
    assert.same(want, msgs)
    if want_err then
      assert.is_true(#errs >= 1, "expected error: " .. want_err)
      for _, e in ipairs(errs) do assert.equal(want_err, e) end
    else
      assert.same({}, errs)
    end
  end
end

describe("jsonrpc.framer", function()
  describe("arguments", function()
    it("knows the three framings", function()
      for _, k in ipairs({ "content-length", "be32", "ndjson" }) do
        local f = jsonrpc.framer(k)
        assert.equal(k, f:kind())
        assert.equal(0, f:buffered())
        assert.matches("jsonrpc.framer%(" .. k:gsub("%-", "%%-") .. "%)", tostring(f))
      end
    end)

    it("rejects unknown kinds and bad options", function()
      assert.has_error(function() jsonrpc.framer("lsp") end)
      assert.has_error(function() jsonrpc.framer() end)
      assert.has_error(function() jsonrpc.framer({}) end)
      assert.has_error(function() jsonrpc.framer("be32", "big") end)
      assert.has_error(function() jsonrpc.framer("be32", { max_mesage_size = 10 }) end)
      assert.has_error(function() jsonrpc.framer("be32", { [1] = 10 }) end)
      assert.has_error(function() jsonrpc.framer("be32", { max_message_size = -1 }) end)
      assert.has_error(function() jsonrpc.framer("be32", { max_message_size = 1.5 }) end)
      assert.has_error(function() jsonrpc.framer("be32", { max_message_size = "10" }) end)
      assert.has_error(function() jsonrpc.framer("content-length", { max_header_size = 0 }) end)
      local ok, err = pcall(jsonrpc.framer, "lsp")
      assert.is_false(ok)
      assert.matches("unknown framing 'lsp'", err)
      ok, err = pcall(jsonrpc.framer, "ndjson", { max_size = 1 })
      assert.matches("unknown option 'max_size'", err)
      assert.not_nil(jsonrpc.framer("ndjson", { max_message_size = 0, max_header_size = 1 }))
    end)

    it("rejects non-string bytes and payloads, and foreign selves", function()
      local f = jsonrpc.framer("ndjson")
      assert.has_error(function() f:feed(12) end)
      assert.has_error(function() f:feed() end)
      assert.has_error(function() f:feed({}) end)
      assert.has_error(function() f:frame(12) end)
      assert.has_error(function() f:frame(nil) end)
      assert.has_error(function() f.feed({}, "x") end)
      assert.has_error(function() f.buffered(io.stdout) end)
    end)
  end)

  describe("content-length", function()
    local K = "content-length"

    it("reads one frame and several frames in one feed", function()
      check(K, nil, cl('{"a":1}'), { '{"a":1}' })
      check(K, nil, cl("[1]") .. cl('"two"') .. cl("{}"), { "[1]", '"two"', "{}" })
    end)

    it("reads headers split across feeds", function()
      local f = jsonrpc.framer(K)
      local parts = { "Content-Le", "ngth: 5\r", "\n\r", "\nhel", "lo" }
      local got = {}
      for _, p in ipairs(parts) do
        local msgs, err = f:feed(p)
        assert.is_nil(err)
        for _, m in ipairs(msgs) do got[#got + 1] = m end
      end
      assert.same({ "hello" }, got)
      assert.equal(0, f:buffered())
    end)

    it("takes header names in any case, values with spaces around", function()
      check(K, nil, "content-length: 2\r\n\r\n{}", { "{}" })
      check(K, nil, "CONTENT-LENGTH:2\r\n\r\n{}", { "{}" })
      check(K, nil, "Content-Length: \t 2 \t\r\n\r\n{}", { "{}" })
    end)

    it("ignores other headers", function()
      check(K, nil, "X-Thing: a:b\r\nContent-Length: 2\r\nUser-Agent: x\r\n\r\n{}", { "{}" })
    end)

    it("accepts a UTF-8 Content-Type or one without charset", function()
      for _, ct in ipairs({
        "application/vscode-jsonrpc; charset=utf-8",
        "application/vscode-jsonrpc; charset=utf8",
        "application/vscode-jsonrpc; charset=UTF-8",
        "application/vscode-jsonrpc;charset=\"utf-8\"",
        "application/vscode-jsonrpc; charset = \"UTF8\" ; foo=bar",
        "application/json",
        "application/json; foo=\"a;b\"; charset=utf-8",
        "",
      }) do
        check(K, nil, cl("{}", "Content-Type: " .. ct .. "\r\n"), { "{}" })
        check(K, nil, "content-type: " .. ct .. "\r\nContent-Length: 2\r\n\r\n{}", { "{}" })
      end
    end)

    it("rejects any other charset", function()
      local e = "content-length: unsupported charset 'latin1'"
      check(K, nil, cl("{}", "Content-Type: application/json; charset=latin1\r\n"), {}, e)
      check(K, nil, cl("{}", "Content-Type: text/plain; Charset=\"latin1\"\r\n"), {}, e)
      check(K, nil, cl("{}", "Content-Type: a/b; charset=utf-16\r\n"), {},
            "content-length: unsupported charset 'utf-16'")
    end)

    it("reports a missing length", function()
      local e = "content-length: missing Content-Length header"
      check(K, nil, "Content-Type: application/json\r\n\r\n{}", {}, e)
      check(K, nil, "\r\n{}", {}, e)
      check(K, nil, "Content-Lengthy: 2\r\n\r\n{}", {}, e)
    end)

    it("reports malformed lengths", function()
      local function bad(v, e)
        check(K, nil, "Content-Length: " .. v .. "\r\n\r\n{}", {}, e)
      end
      bad("", "content-length: empty Content-Length value")
      bad("  ", "content-length: empty Content-Length value")
      bad("abc", "content-length: invalid Content-Length value 'abc'")
      bad("-2", "content-length: invalid Content-Length value '-2'")
      bad("+2", "content-length: invalid Content-Length value '+2'")
      bad("2 2", "content-length: invalid Content-Length value '2 2'")
      bad("0x2", "content-length: invalid Content-Length value '0x2'")
      bad("2.0", "content-length: invalid Content-Length value '2.0'")
      bad("99999999999999999999999",
          "content-length: Content-Length value '99999999999999999999999' out of range")
      bad("18446744073709551616",
          "content-length: Content-Length value '18446744073709551616' out of range")
    end)

    it("reports conflicting lengths and accepts repeated equal ones", function()
      check(K, nil, "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", {},
            "content-length: conflicting Content-Length headers (2 and 3)")
      check(K, nil, "Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}", { "{}" })
      check(K, nil, "Content-Length: 2\r\ncontent-length: 002\r\n\r\n{}", { "{}" })
    end)

    it("reports a header line without a colon", function()
      check(K, nil, "Content-Length: 2\r\nbogus\r\n\r\n{}", {},
            "content-length: header line without ':' ('bogus')")
      -- A bare LF does not end a line: it stays inside the value.
      check(K, nil, "Content-Length: 2\nX: y\r\n\r\n{}", {},
            "content-length: invalid Content-Length value '2?X: y'")
      -- nor does LF CRLF end the block: the CRLF ends a line "2\n\r"
      check(K, nil, "Content-Length: 2\n\r\n{}", {})
    end)

    it("reports a header block over max_header_size", function()
      local opts = { max_header_size = 64 }
      local e = "content-length: header block exceeds max_header_size (64)"
      local pad = "X-Pad: " .. string.rep("p", 40) .. "\r\n" -- 49 bytes
      local ok = "Content-Length: 2\r\n" .. "\r\n" -- 21 bytes
      -- 49 + 19 + 2 = 70 > 64
      check(K, opts, pad .. ok .. "{}", {}, e)
      -- exactly 64: 43 + 19 + 2
      local pad2 = "X-Pad: " .. string.rep("p", 34) .. "\r\n"
      check(K, opts, pad2 .. ok .. "{}", { "{}" })
      -- a stream of garbage without any line end
      check(K, opts, string.rep("z", 200), {}, e)
      -- the default is 8 KiB
      check(K, nil, string.rep("z", 8192), {},
            "content-length: header block exceeds max_header_size (8192)")
      check(K, nil, string.rep("z", 8191), {})
    end)

    it("rejects a frame over max_message_size before buffering its body", function()
      check(K, { max_message_size = 10 }, cl(string.rep("x", 10)), { string.rep("x", 10) })
      check(K, { max_message_size = 10 }, cl(string.rep("x", 11)), {},
            "content-length: message of 11 bytes exceeds max_message_size (10)")
      local f = jsonrpc.framer(K)
      local msgs, err = f:feed("Content-Length: 200000000\r\n")
      assert.same({}, msgs)
      assert.is_nil(err)
      msgs, err = f:feed("\r\n{\"jsonrpc\":")
      assert.same({}, msgs)
      assert.equal("content-length: message of 200000000 bytes exceeds max_message_size (134217728)", err)
      assert.equal(0, f:buffered())
    end)

    it("does not allocate an announced body before it arrives", function()
      local f = jsonrpc.framer(K, { max_message_size = 1024 * MiB })
      collectgarbage()
      local before = collectgarbage("count")
      local msgs, err = f:feed("Content-Length: 1000000000\r\n\r\nabc")
      assert.same({}, msgs)
      assert.is_nil(err)
      msgs, err = f:feed("defgh")
      assert.same({}, msgs)
      assert.is_nil(err)
      assert.equal(8, f:buffered())
      assert.is_true(collectgarbage("count") - before < 1024, "allocated the announced size")
    end)

    it("returns the messages before an error, then stays broken", function()
      local stream = cl("[1]") .. cl("[2]") .. "Content-Length: x\r\n\r\n" .. cl("[3]")
      local e = "content-length: invalid Content-Length value 'x'"
      check(K, nil, stream, { "[1]", "[2]" }, e)
      local f = jsonrpc.framer(K)
      local msgs, err = f:feed(stream)
      assert.same({ "[1]", "[2]" }, msgs)
      assert.equal(e, err)
      assert.equal(0, f:buffered())
      for _, more in ipairs({ cl("[4]"), "", "garbage" }) do
        msgs, err = f:feed(more)
        assert.same({}, msgs)
        assert.equal(e, err)
        assert.equal(0, f:buffered())
      end
      assert.matches("broken", tostring(f))
      f:reset()
      msgs, err = f:feed(cl("[5]"))
      assert.same({ "[5]" }, msgs)
      assert.is_nil(err)
    end)

    it("counts the length in bytes (multibyte UTF-8)", function()
      -- {"s":"héllo 😀 世界"}
      local body = '{"s":"h\195\169llo \240\159\152\128 \228\184\150\231\149\140"}'
      assert.equal(26, #body)
      check(K, nil, "Content-Length: 26\r\n\r\n" .. body .. cl("{}"), { body, "{}" })
    end)

    it("reads a zero-length body", function()
      check(K, nil, cl("") .. cl("1"), { "", "1" })
    end)

    it("frames payloads, and reads back what it frames", function()
      local f = jsonrpc.framer(K)
      assert.equal("Content-Length: 7\r\n\r\n{\"a\":1}", f:frame('{"a":1}'))
      assert.equal("Content-Length: 0\r\n\r\n", f:frame(""))
      local body = "\"\226\130\172\""
      assert.equal("Content-Length: 5\r\n\r\n" .. body, f:frame(body))
      local payloads = { "{}", "", body, string.rep("x", 1000), "a\r\n\r\nb" }
      local stream = {}
      for i, p in ipairs(payloads) do stream[i] = f:frame(p) end
      check(K, nil, table.concat(stream), payloads)
    end)
  end)

  describe("be32", function()
    local K = "be32"

    it("reads frames, including empty ones", function()
      check(K, nil, b32("hello"), { "hello" })
      check(K, nil, b32("") .. b32("a") .. b32("") .. b32("[1,2]"), { "", "a", "", "[1,2]" })
      check(K, nil, b32("\0\1\2\255"), { "\0\1\2\255" })
    end)

    it("accepts max_message_size bytes and rejects more", function()
      local opts = { max_message_size = 5 }
      check(K, opts, b32("12345") .. b32("1"), { "12345", "1" })
      check(K, opts, b32("1") .. b32("123456") .. b32("1"), { "1" },
            "be32: message of 6 bytes exceeds max_message_size (5)")
      check(K, { max_message_size = 0 }, b32("") .. b32("1"), { "" },
            "be32: message of 1 bytes exceeds max_message_size (0)")
    end)

    it("rejects an oversized frame as soon as its length is in", function()
      local f = jsonrpc.framer(K)
      local msgs, err = f:feed(be32(200000000):sub(1, 3))
      assert.same({}, msgs)
      assert.is_nil(err)
      assert.equal(3, f:buffered())
      msgs, err = f:feed(be32(200000000):sub(4) .. "abc")
      assert.same({}, msgs)
      assert.equal("be32: message of 200000000 bytes exceeds max_message_size (134217728)", err)
      assert.equal(0, f:buffered())
      check(K, nil, "\255\255\255\255abc", {},
            "be32: message of 4294967295 bytes exceeds max_message_size (134217728)")
    end)

    it("accepts the largest length when allowed, without allocating it", function()
      local f = jsonrpc.framer(K, { max_message_size = 4294967295 })
      collectgarbage()
      local before = collectgarbage("count")
      local msgs, err = f:feed("\255\255\255\255abc")
      assert.same({}, msgs)
      assert.is_nil(err)
      assert.equal(3, f:buffered())
      assert.is_true(collectgarbage("count") - before < 1024)
    end)

    it("stays broken after an error", function()
      local f = jsonrpc.framer(K, { max_message_size = 2 })
      local msgs, err = f:feed(b32("ab") .. b32("abc") .. b32("x"))
      assert.same({ "ab" }, msgs)
      local e = "be32: message of 3 bytes exceeds max_message_size (2)"
      assert.equal(e, err)
      msgs, err = f:feed(b32("x"))
      assert.same({}, msgs)
      assert.equal(e, err)
      assert.equal(0, f:buffered())
      f:reset()
      assert.same({ "x" }, (f:feed(b32("x"))))
    end)

    it("frames payloads, and reads back what it frames", function()
      local f = jsonrpc.framer(K)
      assert.equal("\0\0\0\5hello", f:frame("hello"))
      assert.equal("\0\0\0\0", f:frame(""))
      local big = string.rep("y", 70000)
      assert.equal("\0\1\17\112" .. big, f:frame(big))
      local payloads = { "{}", "", "\"\226\130\172\"", big, "a\nb" }
      local stream = {}
      for i, p in ipairs(payloads) do stream[i] = f:frame(p) end
      local want = {}
      for i, p in ipairs(payloads) do want[i] = p end
      -- the 70000-byte one makes byte-by-byte slow: check it once here
      local msgs, err = f:feed(table.concat(stream))
      assert.same(want, msgs)
      assert.is_nil(err)
      table.remove(payloads, 4)
      stream = {}
      for i, p in ipairs(payloads) do stream[i] = f:frame(p) end
      check(K, nil, table.concat(stream), payloads)
    end)
  end)

  describe("ndjson", function()
    local K = "ndjson"

    it("reads lines, with LF or CRLF endings", function()
      check(K, nil, '{"a":1}\n[2]\r\n"x"\n', { '{"a":1}', "[2]", '"x"' })
    end)

    it("waits for the newline", function()
      local f = jsonrpc.framer(K)
      local msgs, err = f:feed("[1]\n[2]")
      assert.same({ "[1]" }, msgs)
      assert.is_nil(err)
      assert.equal(3, f:buffered())
      msgs = f:feed("\n")
      assert.same({ "[2]" }, msgs)
      assert.equal(0, f:buffered())
    end)

    it("skips blank lines", function()
      check(K, nil, "\n\r\n  \n\t \r\n[1]\n \n\n[2]\r\n\r\n", { "[1]", "[2]" })
    end)

    it("strips one CR only, and keeps CRs inside", function()
      check(K, nil, "a\rb\r\r\n", { "a\rb\r" })
    end)

    it("counts the length in bytes (multibyte UTF-8)", function()
      local s = '"h\195\169llo \240\159\152\128"' -- 13 bytes
      check(K, { max_message_size = 13 }, s .. "\n" .. s .. "\r\n", { s, s })
      check(K, { max_message_size = 12 }, s .. "\n[1]\n", { "[1]" },
            "ndjson: line exceeds max_message_size (12)")
    end)

    it("accepts max_message_size bytes before a CRLF", function()
      check(K, { max_message_size = 5 }, "12345\r\n12345\n", { "12345", "12345" })
      check(K, { max_message_size = 5 }, "123456\r\n[1]\n", { "[1]" },
            "ndjson: line exceeds max_message_size (5)")
      check(K, { max_message_size = 5 }, "12345\r\r\n[1]\n", { "[1]" },
            "ndjson: line exceeds max_message_size (5)")
    end)

    it("discards an oversized line and goes on with the next", function()
      local opts = { max_message_size = 8 }
      local e = "ndjson: line exceeds max_message_size (8)"
      check(K, opts, "[1]\n" .. string.rep("x", 50) .. "\n[2]\n", { "[1]", "[2]" }, e)
      check(K, opts, string.rep("x", 9) .. "\n", {}, e)
      -- reported once, however it is split
      for _, chunks in ipairs(chunkings("[1]\n" .. string.rep("x", 30) .. "\n[2]\n")) do
        local msgs, errs = run(K, opts, chunks)
        assert.same({ "[1]", "[2]" }, msgs)
        assert.same({ e }, errs)
      end
    end)

    it("rejects a long line before its newline, without buffering it", function()
      local f = jsonrpc.framer(K, { max_message_size = 10 })
      local e = "ndjson: line exceeds max_message_size (10)"
      local msgs, err = f:feed("[0]\n" .. string.rep("x", 11))
      assert.same({ "[0]" }, msgs)
      assert.equal(e, err)
      assert.equal(0, f:buffered())
      msgs, err = f:feed(string.rep("x", 100000))
      assert.same({}, msgs)
      assert.is_nil(err)
      assert.equal(0, f:buffered())
      msgs, err = f:feed("xx\n[1]\n[2")
      assert.same({ "[1]" }, msgs)
      assert.is_nil(err)
      assert.equal(2, f:buffered())
      assert.not_matches("broken", tostring(f))
    end)

    it("resets out of a discarded line", function()
      local f = jsonrpc.framer(K, { max_message_size = 4 })
      local msgs, err = f:feed("xxxxxxxx")
      assert.same({}, msgs)
      assert.equal("ndjson: line exceeds max_message_size (4)", err)
      assert.same({}, (f:feed("[0]\n")))     -- still the long line
      f:reset()
      msgs, err = f:feed("[1]\n")
      assert.same({ "[1]" }, msgs)
      assert.is_nil(err)
      assert.same({}, (f:feed("")))
    end)

    it("returns every message of a feed, with the first error", function()
      local f = jsonrpc.framer(K, { max_message_size = 3 })
      local msgs, err = f:feed("[1]\nxxxx\n[2]\nyyyy\n[3]\n")
      assert.same({ "[1]", "[2]", "[3]" }, msgs)
      assert.equal("ndjson: line exceeds max_message_size (3)", err)
      assert.equal(0, f:buffered())
    end)

    it("frames payloads, refuses newlines, reads back what it frames", function()
      local f = jsonrpc.framer(K)
      assert.equal('{"a":1}\n', f:frame('{"a":1}'))
      assert.equal("\n", f:frame(""))
      local ok, err = pcall(f.frame, f, "[1,\n2]")
      assert.is_false(ok)
      assert.matches("ndjson: payload contains a newline", err)
      local payloads = { "{}", "[1, 2]", "\"\226\130\172\"", " {\"x\": null} " }
      local stream = {}
      for i, p in ipairs(payloads) do stream[i] = f:frame(p) end
      check(K, nil, table.concat(stream), payloads)
    end)
  end)

  describe("large messages", function()
    local size = (QUICK and 2 or 16) * MiB
    local body = string.rep('{"k":"0123456789abcdef"},', math.floor(size / 25))

    local function big(kind, framed)
      local f = jsonrpc.framer(kind)
      local t0 = os.clock()
      local got = {}
      for i = 1, #framed, 4096 do
        local msgs, err = f:feed(framed:sub(i, i + 4095))
        assert.is_nil(err)
        for _, m in ipairs(msgs) do got[#got + 1] = m end
      end
      if TIMING then
        io.stderr:write(("\n%s: %.1f MiB in 4 KiB chunks: %.3f s\n"):format(kind, #body / MiB, os.clock() - t0))
      end
      assert.equal(2, #got)
      assert.is_true(got[1] == body, "message corrupted")
      assert.equal("[1]", got[2])
      assert.equal(0, f:buffered())
      return f
    end

    for _, kind in ipairs({ "content-length", "be32", "ndjson" }) do
      it(kind .. " arrives intact in 4 KiB chunks and the buffer shrinks after", function()
        local f = jsonrpc.framer(kind)
        local framed = f:frame(body) .. f:frame("[1]")
        collectgarbage()
        local before = collectgarbage("count")
        f = big(kind, framed)
        collectgarbage()
        -- the framer gave its buffer back (it uses Lua's allocator)
        assert.is_true(collectgarbage("count") - before < 1024,
                       "buffer not trimmed: " .. (collectgarbage("count") - before) .. " KiB")
        assert.same({ "[2]" }, (f:feed(f:frame("[2]"))))
      end)
    end
  end)

  it("gives the same result for many small frames in one feed as fed apart", function()
    for _, kind in ipairs({ "content-length", "be32", "ndjson" }) do
      local f = jsonrpc.framer(kind)
      local parts, want = {}, {}
      for i = 1, (QUICK and 200 or 5000) do
        want[i] = "[" .. i .. "]"
        parts[i] = f:frame(want[i])
      end
      local msgs, err = f:feed(table.concat(parts))
      assert.is_nil(err)
      assert.same(want, msgs)
      local got = {}
      for _, p in ipairs(parts) do
        for _, m in ipairs((f:feed(p))) do got[#got + 1] = m end
      end
      assert.same(want, got)
    end
  end)
end)
