-- The benchmark tools stay honest: the load generator checks what it is
-- sent back (a wrong echo or a missing notification counts as an error),
-- and our benchmark server answers every workload of `make bench`. Short
-- runs, so that this costs about a second.
local util = require "spec.support.util"

local lua = util.interpreter()

local function sh(command)
  return util.sh(command .. " 2>&1")
end

local function loadgen(port, args)
  local out, code = sh(("build/bench/loadgen 127.0.0.1 %s %s"):format(port, args))
  local r = {}
  for k, v in out:gmatch('"([%w_]+)":([%-%d%.]+)') do r[k] = tonumber(v) end
  return r, code, out
end

-- Short runs of every method and mode `make bench` uses.
local WORKLOADS = {
  "-n 1 -d 0.1 -w 0", "-c 2 -n 50 -d 0.1 -w 0", "-c 2 -b 20 -n 1 -d 0.1 -w 0",
  "-s 100000 -N 3 -W 1", "-o 20000 -W 100", "-m sleep -p [1] -n 16 -d 0.1 -w 0",
  "-R 2000 -c 2 -d 0.3 -w 0.1",
  [[-m add_named -p '{"a":1,"b":2}' -r 3 -n 4 -d 0.1 -w 0]],
  "-m complete -p [3] -n 4 -d 0.1 -w 0",
  [[-m did_open -p '[{"textDocument":{"uri":"file:a","version":42}}]' -r 42 -n 4 -d 0.1 -w 0]],
  [[-m diagnostics -p '[{"diagnostics":[{"severity":1},{"severity":2}]}]' -r 2 -n 4 -d 0.1 -w 0]],
}

local function drive(port)
  for _, args in ipairs(WORKLOADS) do
    local r, code, out = loadgen(port, args)
    assert.equal(0, code, args .. ": " .. out)
    assert.equal(0, r.errors, args)
    assert.is_true(r.calls > 0, args)
  end
end

describe("the benchmark tools", function()
  local ours, floor, ours_port, floor_port

  setup(function()
    local out, code = sh("make -s build/bench/loadgen build/bench/floor")
    assert.equal(0, code, out)
    ours = util.background(("%s bin/jsonrpc serve bench/peers/ours.lua --listen tcp://127.0.0.1:0"):format(lua))
    ours_port = ours.wait_for("listening on tcp://[%d%.]+:(%d+)")
    assert(ours_port, "our server did not start: " .. ours.stderr())
    floor = util.background("sh -c 'exec build/bench/floor 127.0.0.1 0 1>&2'")
    floor_port = floor.wait_for("listening on tcp://[%d%.]+:(%d+)")
    assert(floor_port, "the floor did not start: " .. floor.stderr())
  end)

  teardown(function()
    for _, bg in ipairs({ ours, floor }) do
      if bg then bg.signal("TERM"); bg.wait(); bg.cleanup() end
    end
  end)

  it("drives our server through every workload without a bad response", function()
    drive(ours_port)
  end)

  -- the pure-Lua peers of `make bench`, under the Lua running the specs
  -- (the benchmarks run them on 5.4 and LuaJIT), over TCP and stdio
  for _, mode in ipairs({ "", " --tuned" }) do
    it("drives the pure-Lua peer" .. mode .. " through every workload, over TCP and stdio", function()
      local peer = util.background(("sh -c 'exec %s bench/peers/lua_server.lua 0%s 1>&2'"):format(lua, mode))
      local port = peer.wait_for("listening on tcp://[%d%.]+:(%d+)")
      local ok, err = pcall(function()
        assert(port, "the pure-Lua peer did not start: " .. peer.stderr())
        drive(port)
        local out, code = sh(("build/bench/loadgen stdio: -n 20 -d 0.1 -w 0 -- %s bench/peers/lua_server.lua stdio:%s")
          :format(lua, mode))
        assert.equal(0, code, out)
      end)
      peer.signal("TERM")
      peer.wait()
      peer.cleanup()
      assert(ok, err)
    end)
  end

  it("drives a server over its stdio, measuring the child's CPU and memory", function()
    for _, server in ipairs({ lua .. " bin/jsonrpc serve bench/peers/ours.lua --listen stdio:",
                              "build/bench/floor stdio:" }) do
      local out, code = sh("build/bench/loadgen stdio: -n 20 -d 0.2 -w 0.05 -- " .. server)
      local r = {}
      for k, v in out:gmatch('"([%w_]+)":([%-%d%.]+)') do r[k] = tonumber(v) end
      assert.equal(0, code, server .. ": " .. out)
      assert.equal(0, r.errors, server)
      assert.is_true(r.calls > 100, server)
      assert.is_true(r.server_rss > 1024 * 1024, server)   -- the child's, read from /proc
      assert.is_true(r.server_cpu_s > 0, server)
    end
  end)

  it("keeps an open loop's rate whatever the answers do", function()
    local r = loadgen(ours_port, "-R 4000 -d 0.5 -w 0.1")
    assert.equal(0, r.errors)
    assert.is_true(math.abs(r.calls_per_s - 4000) < 200, tostring(r.calls_per_s))
    assert.is_true(r.p999_us >= r.p99_us and r.p99_us >= r.p50_us)
  end)

  it("counts every notification of a one-way run", function()
    local r = loadgen(ours_port, "-o 5000")
    assert.equal(5000, r.calls)
  end)

  it("catches a server that answers echo with something else", function()
    -- the floor answers `add` with 3 whatever its params: the echo's
    -- string sent to `add` must come back wrong, and be counted so
    local r, code = loadgen(floor_port, "-s 1000 -m add -N 2")
    assert.equal(1, code)
    assert.equal(2, r.errors)
    r, code = loadgen(floor_port, "-s 1000 -N 2")   -- the floor's real echo
    assert.equal(0, code)
    assert.equal(0, r.errors)
  end)

  it("has a floor that answers the request's own id and whole batches", function()
    -- "id" keys inside the params are not the request's
    local r, code, out = loadgen(floor_port, [[-m add -p '[{"id":99,"x":{"id":7}}]' -r 3 -n 4 -N 20]])
    assert.equal(0, code, out)
    assert.equal(20, r.calls)
    -- a batch whose answer is far over 8 KiB
    r, code, out = loadgen(floor_port, "-b 400 -N 2")
    assert.equal(0, code, out)
    assert.equal(800, r.calls)
  end)

  describe("against a server that answers wrongly", function()
    local function with_server(mode, fn)
      local bg = util.background(("%s spec/support/wrong_server.lua %s"):format(lua, mode))
      local port = bg.wait_for("listening on tcp://[%d%.]+:(%d+)")
      assert(port, "the wrong server did not start: " .. bg.stderr())
      local ok, err = pcall(fn, port)
      bg.signal("TERM")
      bg.wait()
      bg.cleanup()
      assert(ok, err)
    end

    it("counts nested ids and error words inside a result as nothing", function()
      with_server("right", function(port)
        local r, code = loadgen(port, "-m complete -p [] -n 4 -N 40")
        assert.equal(0, code)
        assert.equal(0, r.errors)
        assert.equal(40, r.calls)   -- one call per answer, not one per "id"
        r, code = loadgen(port, "-b 5 -N 10")
        assert.equal(0, code)
        assert.equal(50, r.calls)
        r, code = loadgen(port, "-s 1000 -N 3")   -- each string echoed as sent
        assert.equal(0, code)
        assert.equal(3, r.calls)
      end)
    end)

    for _, case in ipairs{
      { "wrong-result", "-n 4 -N 20" },
      { "wrong-result", "-b 5 -N 4" },
      { "wrong-id", "-n 4 -N 20" },
      { "duplicate", "-n 1 -N 20" },
      { "short-batch", "-b 5 -N 4" },
      -- each call's string is its own: the first one echoed again is wrong
      { "stale-echo", "-s 1000 -N 3" },
    } do
      it("flags " .. case[1] .. " (" .. case[2] .. ")", function()
        with_server(case[1], function(port)
          local r, code, out = loadgen(port, case[2])
          assert.equal(1, code, out)
          assert.is_true(r.errors > 0, out)
        end)
      end)
    end
  end)
end)
