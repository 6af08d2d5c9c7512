-- Our framing on the wire against a Node peer that frames by hand: split
-- headers, lowercase content-length, a Content-Type with a charset, several
-- frames in one read, multibyte bodies, and a 64 MiB message each way, for
-- content-length, be32 and ndjson.
local jsonrpc = require "jsonrpc"
local util = require "spec.support.util"
local uv = require "luv"
local run_until = util.run_until
local node = util.node

local BIG = 64 * 1024 * 1024



describe("framing against a hand-framing Node peer", function()
  for _, framing in ipairs{"content-length", "be32", "ndjson"} do
    it(framing .. ": split input, several frames per read, multibyte, 64 MiB each way", function()
      local server = jsonrpc.server()
      server:method("add", function(a, b) return a + b end)
      server:method("echo", function(...) return {...} end)
      server:method("length_of", function(s) return #s end)
      server:method("make", function(n) return string.rep("y", n) end)
      -- 64 MiB messages: past a listener's default max_message_size (16 MiB)
      local l = assert(server:listen("tcp://127.0.0.1:0",
        {framing = framing, max_message_size = 128 * 1024 * 1024}))
      local host, port = l:address()
      local proc = node({ "spec/interop/raw_peer.js", framing, host, tostring(port) })
      assert.is_true(run_until(function() return proc.code ~= nil end, 60000))
      assert.equal(0, proc.code)
      local r = assert(jsonrpc.decode(proc.out:match("[^\n]+")), proc.out)
      assert.equal(3, r.split_header)
      assert.same({4, 6, 8}, r.several)
      assert.is_true(r.multibyte_ok)
      assert.equal(BIG, r.big_length)
      assert.equal(BIG, r.big_back)
      server:close()
      jsonrpc.run("nowait")
    end)
  end
end)
