-- The JSON markers of the hosts (csrc/codec/markers.h): values built for
-- vim.json or lua-cjson encode the same through us. Here the hosts' markers
-- are set up where those hosts keep them (the registry, the global vim,
-- package.loaded.cjson); spec/neovim runs the same against Neovim itself.
local jsonrpc = require "jsonrpc"

local encode, decode = jsonrpc.encode, jsonrpc.decode

local registry = debug.getregistry()

-- A full userdata that stands for vim.NIL (a file handle is one).
local function a_full_userdata() return io.tmpfile() end

describe("host markers: Neovim's", function()
  local NIL, saved_vim
  before_each(function()
    NIL = a_full_userdata()
    registry["mpack.NIL"] = NIL
    registry["mpack.empty_dict"] = {}
    saved_vim = rawget(_G, "vim")
    rawset(_G, "vim", { type_idx = true, val_idx = false,
                        types = { float = 3, array = 5, dictionary = 6,
                                  [3] = "float", [5] = "array", [6] = "dictionary" } })
  end)
  after_each(function()
    registry["mpack.NIL"] = nil
    registry["mpack.empty_dict"] = nil
    rawset(_G, "vim", saved_vim)
    NIL:close()
  end)

  it("encodes vim.NIL as null, anywhere, and still refuses other userdata", function()
    assert.equal("null", encode(NIL))
    assert.equal('[1,null,{"a":null}]', encode({ 1, NIL, { a = NIL } }))
    local other = a_full_userdata()
    local text, err = encode({ other })
    other:close()
    assert.is_nil(text)
    assert.matches("cannot encode a value of type userdata at %$%[1%]", err)
  end)

  it("encodes vim.empty_dict() as an object", function()
    local empty_dict = setmetatable({}, registry["mpack.empty_dict"])
    assert.equal('{"d":{}}', encode({ d = empty_dict }))
    assert.equal('{"a":1}', encode(setmetatable({ a = 1 }, registry["mpack.empty_dict"])))
  end)

  it("encodes vim.api's tables by their vim.type_idx tag", function()
    assert.equal("{}", encode({ [true] = 6 }))
    assert.equal('{"a":1}', encode({ [true] = 6, a = 1 }))
    assert.equal("[]", encode({ [true] = 5 }))
    assert.equal("[1,2,3]", encode({ [true] = 5, 1, 2, 3 }))
    assert.equal("1.5", encode({ [true] = 3, [false] = 1.5 }))
    local back = decode(encode({ lines = { [true] = 5 }, opts = { [true] = 6 },
                                 x = { [true] = 3, [false] = 0.25 } }))
    assert.equal("[]", encode(back.lines))
    assert.equal("{}", encode(back.opts))
    assert.equal(0.25, back.x)
  end)

  it("still refuses a tagged table's bad content, and tags it does not know", function()
    local text, err = encode({ [true] = 6, [1] = "x" })
    assert.is_nil(text)
    assert.matches("not a string", err)
    text, err = encode({ [true] = 99 })
    assert.is_nil(text)
    assert.matches("neither a string nor an array index", err)
    text, err = encode({ [true] = 3, [false] = "x" })
    assert.is_nil(text)
    assert.matches("float", err)
  end)

  it("decodes null to the sentinel it is given", function()
    local v = decode('{"a":null,"b":[null,1]}', { null = NIL })
    assert.equal(NIL, v.a)
    assert.equal(NIL, v.b[1])
    assert.equal(1, v.b[2])
    assert.equal(jsonrpc.null, decode("[null]")[1])   -- by default, jsonrpc.null
    assert.equal('[null,1]', encode(v.b))   -- and the sentinel encodes as null again
  end)
end)

describe("host markers: outside Neovim", function()
  it("gives type tags no meaning, and full userdata none", function()
    local text, err = encode({ [true] = 6 })
    assert.is_nil(text)
    assert.matches("neither a string nor an array index", err)
    local f = a_full_userdata()
    text = encode(f)
    f:close()
    assert.is_nil(text)
  end)
end)

describe("host markers: lua-cjson's", function()
  local saved
  before_each(function()
    saved = package.loaded.cjson
    -- OpenResty's cjson: array_mt marks an array, empty_array_mt an empty one
    package.loaded.cjson = { array_mt = {}, empty_array_mt = {}, null = jsonrpc.null }
  end)
  after_each(function() package.loaded.cjson = saved end)

  it("encodes tables with cjson.array_mt as arrays and cjson.empty_array_mt empty as []", function()
    local cjson = package.loaded.cjson
    assert.equal("[]", encode(setmetatable({}, cjson.array_mt)))
    assert.equal("[1,2]", encode(setmetatable({ 1, 2 }, cjson.array_mt)))
    assert.equal('{"x":[]}', encode({ x = setmetatable({}, cjson.empty_array_mt) }))
    assert.equal('{"a":1}', encode(setmetatable({ a = 1 }, cjson.empty_array_mt)))
    assert.equal("{}", encode(setmetatable({}, {})))   -- a metatable of nobody's
  end)
end)

describe("a null sentinel for servers, endpoints and connections", function()
  local SENTINEL = setmetatable({}, { __name = "sentinel" })

  it("gives a server's handlers the sentinel for null params", function()
    local server = jsonrpc.server{ null = SENTINEL }
    server:method("is_sentinel", function(x, t) return x == SENTINEL and t.k == SENTINEL end)
    assert.equal('{"jsonrpc":"2.0","result":true,"id":1}',
      server:handle('{"jsonrpc":"2.0","method":"is_sentinel","params":[null,{"k":null}],"id":1}'))
    -- the id null of an invalid request is still written as null
    assert.matches('"id":null', server:handle('{"jsonrpc":"2.0","method":1,"id":null}'))
  end)

  it("gives an endpoint's calls the sentinel for a null result, over the server's", function()
    local a, b
    a = jsonrpc.endpoint{ send = function(text) b:receive(text) end, null = SENTINEL,
                          server = jsonrpc.server{ null = "the server's" } }
    b = jsonrpc.endpoint{ send = function(text) a:receive(text) end }
    b:method("nothing", function() return jsonrpc.null end)
    assert.equal(SENTINEL, a:call("nothing"))
    a:method("arg", function(x) return x == SENTINEL end)
    assert.is_true(b:call("arg", { jsonrpc.null }))   -- a's handlers see it too
    a:method("nothing", function() return jsonrpc.null end)
    assert.equal(jsonrpc.null, b:call("nothing"))   -- b is unchanged
  end)

  it("is a connection option", function()
    local server = jsonrpc.server()
    server:method("nothing", function() return jsonrpc.null end)
    local l = assert(server:listen("tcp://127.0.0.1:0"))
    local conn = assert(jsonrpc.connect(l.url, { null = SENTINEL }))
    local got
    conn:call("nothing", nil, function(result) got = result; conn:close(); l:close() end)
    jsonrpc.run()
    assert.equal(SENTINEL, got)
  end)
end)
