-- A driver's view of the endpoint (csrc/rpc/endpoint.h): every message it
-- delivers carries a tag, and comes back as its answers (put) and one
-- done() once it is answered for good, handlers that wait included. HTTP
-- needs exactly this to answer pipelined requests in order and to send
-- 204 for notifications.
local util = require "spec.support.util"

local function sh(cmd) return util.sh(cmd .. " 2>&1") end

describe("the sink a driver implements", function()
  it("gets each message's answers under its tag, then done once, when handlers wait too", function()
    local inc, lib = util.lua_c_flags()
    local bin = os.tmpname()
    local out, code = sh(("cc -std=gnu99 -Icsrc %s spec/support/sink_tags.c $(ls csrc/*.c csrc/*/*.c)"
      .. " %s -luv -lm -ldl -o %s"):format(inc, lib, bin))
    assert.equal(0, code, out)
    out, code = sh(bin)
    os.remove(bin)
    assert.equal(0, code, out)
    assert.equal(table.concat({
      'put 1 {"jsonrpc":"2.0","result":1,"id":1}',
      "done 1",
      "waiting 1",                -- "later" (id 2) waits: no done yet
      "waiting 2",                -- the notification waits: it asked for no answer
      "done 3",
      "waiting 3",                -- the batch: member 4 waits, member 5 answered
      "done 5",                   -- a response is done at once
      "resume batch member",
      -- in request order, though member 5 was answered first
      'put 4 [{"jsonrpc":"2.0","result":4,"id":4},{"jsonrpc":"2.0","result":5,"id":5}]',
      "done 4",
      "waiting 2",
      "resume notification",
      "waiting 1",
      "resume call",
      'put 2 {"jsonrpc":"2.0","result":2,"id":2}',
      "done 2",
      "waiting 0",
      "",
    }, "\n"), out)
  end)
end)
