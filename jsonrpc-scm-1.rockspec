rockspec_format = "3.0"
package = "jsonrpc"
version = "scm-1"

source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}

description = {
  summary = "JSON-RPC 2.0 for Lua with an engine in C",
  detailed = [[
A complete JSON-RPC 2.0 library whose engine is C: an exact JSON codec,
the stream framings (content-length as LSP uses it, be32, ndjson), a
dispatcher with params mapping, batches, hooks and limits, and endpoints
that call and serve in both directions, with handlers that may wait in
coroutines. Connections over TCP, Unix sockets, stdio and child
processes run on libuv, and share luv's loop when luv is loaded. Hardened
against hostile peers (limits, timeouts, backpressure). Runs on Lua 5.4,
5.3, 5.1 and LuaJIT, and embeds in hosts such as Neovim and OpenResty.
]],
  license = "MIT",
}

-- luv is optional, not a dependency: when it is installed, connections
-- share its loop (uv.run and jsonrpc.run are then interchangeable) and host
-- names are looked up without blocking; without it the module runs
-- libuv's default loop and resolves names synchronously.
dependencies = {
  "lua >= 5.1",
}

external_dependencies = {
  LIBUV = {
    header = "uv.h",
    library = "uv",
  },
}

-- The whole suite (four Lua versions, sanitizers, valgrind, fuzzing) is
-- `make test` from a checkout; luarocks test runs the specs under the Lua
-- luarocks was asked for.
test_dependencies = {
  "busted",
}

test = {
  type = "busted",
}

build = {
  type = "builtin",
  modules = {
    ["jsonrpc"] = "lua/jsonrpc/init.lua",
    ["jsonrpc.endpoint"] = "lua/jsonrpc/endpoint.lua",
    ["jsonrpc.host"] = "lua/jsonrpc/host.lua",
    ["jsonrpc.ngx"] = "lua/jsonrpc/ngx.lua",
    ["jsonrpc.url"] = "lua/jsonrpc/url.lua",
    ["jsonrpc.transport"] = "lua/jsonrpc/transport/init.lua",
    ["jsonrpc.transport.connection"] = "lua/jsonrpc/transport/connection.lua",
    ["jsonrpc.transport.process"] = "lua/jsonrpc/transport/process.lua",
    ["jsonrpc.transport.driver"] = "lua/jsonrpc/transport/driver.lua",
    ["jsonrpc.transport.luv_driver"] = "lua/jsonrpc/transport/luv_driver.lua",
    ["jsonrpc.core"] = {
      sources = {
        "csrc/core.c",
        "csrc/codec/codec_lua.c",
        "csrc/codec/decode.c",
        "csrc/codec/encode.c",
        "csrc/codec/markers.c",
        "csrc/codec/number.c",
        "csrc/common/buffer.c",
        "csrc/common/class.c",
        "csrc/common/options.c",
        "csrc/framing/framing.c",
        "csrc/framing/framing_headers.c",
        "csrc/framing/framing_lua.c",
        "csrc/framing/stream_frame.c",
        "csrc/framing/stream_layer.c",
        "csrc/rpc/batch.c",
        "csrc/rpc/deferral.c",
        "csrc/rpc/deferral_lua.c",
        "csrc/rpc/emit.c",
        "csrc/rpc/endpoint.c",
        "csrc/rpc/endpoint_lua.c",
        "csrc/rpc/envelope.c",
        "csrc/rpc/errors.c",
        "csrc/rpc/exchange.c",
        "csrc/rpc/handlers.c",
        "csrc/rpc/hooks.c",
        "csrc/rpc/params.c",
        "csrc/rpc/request.c",
        "csrc/rpc/response.c",
        "csrc/rpc/server_lua.c",
        "csrc/uv/deadline.c",
        "csrc/uv/handle.c",
        "csrc/uv/listen_limits.c",
        "csrc/uv/loop.c",
        "csrc/uv/process.c",
        "csrc/uv/socket.c",
        "csrc/uv/stream.c",
        "csrc/uv/stream_lua.c",
        "csrc/uv/stream_write.c",
        "csrc/uv/timer.c",
      },
      incdirs = { "csrc", "$(LIBUV_INCDIR)" },
      libdirs = { "$(LIBUV_LIBDIR)" },
      libraries = { "uv", "m" },
    },
  },
  install = {
    bin = { jsonrpc = "bin/jsonrpc" },
  },
}
