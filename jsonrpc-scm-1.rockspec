rockspec_format = "3.0"
package = "jsonrpc"
version = "scm-1"

source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}

description = {
  summary = "JSON-RPC 2.0 for Lua with an engine in C",
  detailed = [[
An exact JSON codec (64-bit integers, shortest round-trip floats, strict
UTF-8, arrays and objects that keep their kind) and sans-IO stream framings
(content-length, be32, ndjson), the foundation of a complete JSON-RPC 2.0
library.
]],
  license = "MIT",
}

dependencies = {
  "lua >= 5.1",
}

build = {
  type = "builtin",
  modules = {
    ["jsonrpc"] = "lua/jsonrpc/init.lua",
    ["jsonrpc.endpoint"] = "lua/jsonrpc/endpoint.lua",
    ["jsonrpc.transport"] = "lua/jsonrpc/transport/init.lua",
    ["jsonrpc.transport.connection"] = "lua/jsonrpc/transport/connection.lua",
    ["jsonrpc.transport.process"] = "lua/jsonrpc/transport/process.lua",
    ["jsonrpc.core"] = {
      sources = {
        "csrc/core.c",
        "csrc/codec/codec_lua.c",
        "csrc/codec/decode.c",
        "csrc/codec/encode.c",
        "csrc/codec/number.c",
        "csrc/common/buffer.c",
        "csrc/common/class.c",
        "csrc/common/options.c",
        "csrc/framing/framing.c",
        "csrc/framing/framing_headers.c",
        "csrc/framing/framing_lua.c",
        "csrc/framing/stream_layer.c",
        "csrc/rpc/batch.c",
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
        "csrc/uv/timer.c",
      },
      incdirs = { "csrc" },
      libraries = { "uv", "m" },
    },
  },
  install = {
    bin = { jsonrpc = "bin/jsonrpc" },
  },
}
