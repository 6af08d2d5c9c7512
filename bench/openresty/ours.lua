-- nginx content handler: jsonrpc.ngx.serve.
local jsonrpc = require "jsonrpc"
local serve = require("jsonrpc.ngx").serve
local server = require("methods")(jsonrpc.server())

return function() return serve(server) end
