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
    ["jsonrpc.transport"] = "lua/jsonrpc/transport.lua",
    ["jsonrpc.core"] = {
      sources = {
        "csrc/core.c",
        "csrc/buffer.c",
        "csrc/codec.c",
        "csrc/decode.c",
        "csrc/dispatch.c",
        "csrc/encode.c",
        "csrc/envelope.c",
        "csrc/errors.c",
        "csrc/number.c",
        "csrc/options.c",
        "csrc/outgoing.c",
        "csrc/process.c",
        "csrc/response.c",
        "csrc/socket.c",
        "csrc/listen_limits.c",
        "csrc/deadline.c",
        "csrc/stream.c",
        "csrc/framing.c",
        "csrc/framing_headers.c",
        "csrc/framing_lua.c",
        "csrc/loop.c",
      },
      incdirs = { "csrc" },
      libraries = { "uv", "m" },
    },
  },
  install = {
    bin = { jsonrpc = "bin/jsonrpc" },
  },
}
