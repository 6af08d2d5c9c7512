-- A pure-Lua JSON-RPC 2.0 dispatcher on lua-cjson: the baseline that
-- bench/dispatch.lua measures jsonrpc.server against.
--
-- It is written the way a competent Lua programmer would write one: no
-- deliberate slowness, no skipped work. It does what the C dispatcher does
-- for a request (see the README), within lua-cjson's limits:
--   decode (pcall)            -> -32700 with id null on failure
--   validation                -> -32600: jsonrpc ~= "2.0", method not a
--                                string, params a scalar, id an object,
--                                array or boolean (echoed id when valid)
--   "params": null            -> -32602
--   batches                   -> each member on its own; [] -> one -32600;
--                                only notifications -> nil
--   method lookup             -> -32601 (nothing for notifications)
--   declared param names      -> named params mapped to positions; too many
--                                positional or an unknown name -> -32602
--   handler under pcall       -> error(M.error(...)) or `return nil, err`
--                                -> that error; any other error -> -32603
--   response table            -> cjson.encode (a batch: encoded once)
--
--   local d = require("lua_dispatcher").new()
--   d:method("subtract", function(a, b) return a - b end,
--            {params = {"minuend", "subtrahend"}})
--   local response_text = d:handle(request_text)   -- nil: nothing to send

local cjson = require "cjson"

local decode, encode, null = cjson.decode, cjson.encode, cjson.null
local pcall, type, next, pairs, setmetatable, getmetatable =
  pcall, type, next, pairs, setmetatable, getmetatable
local find, format, sub = string.find, string.format, string.sub
local unpack = table.unpack or unpack

local M = {}

local PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR =
  -32700, -32600, -32601, -32602, -32603
M.codes = {
  PARSE_ERROR = PARSE_ERROR, INVALID_REQUEST = INVALID_REQUEST,
  METHOD_NOT_FOUND = METHOD_NOT_FOUND, INVALID_PARAMS = INVALID_PARAMS,
  INTERNAL_ERROR = INTERNAL_ERROR,
}
M.null = null

local ErrorMT = {}
ErrorMT.__index = ErrorMT
ErrorMT.__tostring = function(e)
  return format("jsonrpc error %d: %s", e.code, e.message)
end

function M.error(code, message, data)
  return setmetatable({code = code, message = message, data = data}, ErrorMT)
end

local function is_error(v)
  return getmetatable(v) == ErrorMT
end
M.is_error = is_error

local function error_response(id, code, message, data)
  return {jsonrpc = "2.0", error = {code = code, message = message, data = data}, id = id}
end

local function err_response(id, e)
  return {jsonrpc = "2.0", error = {code = e.code, message = e.message, data = e.data}, id = id}
end

local Dispatcher = {}
Dispatcher.__index = Dispatcher

function M.new(opts)
  opts = opts or {}
  return setmetatable({
    methods = {},
    max_batch = opts.max_batch or 1000,
    max_message_size = opts.max_message_size or 134217728,
    on_error = opts.on_error,
  }, Dispatcher)
end

-- Registers fn under name; mopts.params declares the parameter names.
function Dispatcher:method(name, fn, mopts)
  if type(name) ~= "string" then error("method name must be a string", 2) end
  if sub(name, 1, 4) == "rpc." then error("method names starting with 'rpc.' are reserved", 2) end
  if type(fn) ~= "function" then error("handler must be a function", 2) end
  local entry = {fn = fn}
  local names = mopts and mopts.params
  if names then
    local index = {}
    for i = 1, #names do index[names[i]] = i end
    entry.names, entry.index, entry.nnames = names, index, #names
  end
  self.methods[name] = entry
  return self
end

-- The handler's outcome as (result, err): err is an error value or nil.
local function outcome(self, ok, res, err)
  if ok then
    if res == nil and is_error(err) then return nil, err end
    return res, nil
  end
  if is_error(res) then return nil, res end
  if self.on_error then pcall(self.on_error, tostring(res)) end
  return nil, M.error(INTERNAL_ERROR, "Internal error")
end

-- Runs one decoded request; returns its response table, or nil for a
-- notification.
local function run(self, req)
  if type(req) ~= "table" then
    return error_response(null, INVALID_REQUEST, "Invalid Request")
  end
  local id = req.id
  local notification = id == nil
  local tid = type(id)
  if not (notification or tid == "string" or tid == "number" or id == null) then
    return error_response(null, INVALID_REQUEST, "Invalid Request")
  end
  local method, params = req.method, req.params
  if req.jsonrpc ~= "2.0" or type(method) ~= "string" then
    return error_response(notification and null or id, INVALID_REQUEST, "Invalid Request")
  end
  if params ~= nil and type(params) ~= "table" then
    if params == null then
      if notification then return nil end
      return error_response(id, INVALID_PARAMS, "Invalid params",
        "params must be an array or an object")
    end
    return error_response(notification and null or id, INVALID_REQUEST, "Invalid Request")
  end

  local entry = self.methods[method]
  if not entry then
    if notification then return nil end
    return error_response(id, METHOD_NOT_FOUND, "Method not found")
  end

  local fn = entry.fn
  local result, err
  if params == nil then
    result, err = outcome(self, pcall(fn))
  else
    local n = #params
    local positional = n > 0 or next(params) == nil
    local nnames = entry.nnames
    if positional then
      if nnames and n > nnames then
        if notification then return nil end
        return error_response(id, INVALID_PARAMS, "Invalid params",
          format("expected at most %d params, got %d", nnames, n))
      end
      result, err = outcome(self, pcall(fn, unpack(params, 1, n)))
    elseif nnames then
      local index, args = entry.index, {}
      for k, v in pairs(params) do
        local i = index[k]
        if not i then
          if notification then return nil end
          return error_response(id, INVALID_PARAMS, "Invalid params",
            format("unknown param '%s'", tostring(k)))
        end
        args[i] = v
      end
      result, err = outcome(self, pcall(fn, unpack(args, 1, nnames)))
    else
      result, err = outcome(self, pcall(fn, params))
    end
  end

  if notification then return nil end
  if err then return err_response(id, err) end
  if result == nil then result = null end
  return {jsonrpc = "2.0", result = result, id = id}
end

-- Encodes one response; a result cjson cannot encode becomes -32603.
local function encode_one(self, resp)
  local ok, text = pcall(encode, resp)
  if ok then return text end
  if self.on_error then pcall(self.on_error, tostring(text)) end
  return encode(error_response(resp.id, INTERNAL_ERROR, "Internal error"))
end

-- request text -> response text, or nil when there is nothing to send.
function Dispatcher:handle(text)
  if #text > self.max_message_size then
    return encode(error_response(null, INVALID_REQUEST,
      format("message of %d bytes exceeds max_message_size %d", #text, self.max_message_size)))
  end
  local ok, msg = pcall(decode, text)
  if not ok then
    return encode(error_response(null, PARSE_ERROR, "Parse error"))
  end

  -- cjson decodes [] and {} alike: a batch is a text whose first
  -- non-blank character is '['.
  if type(msg) ~= "table" or not find(text, "^[ \t\r\n]*%[") then
    local resp = run(self, msg)
    if resp == nil then return nil end
    return encode_one(self, resp)
  end

  local n = #msg
  if n == 0 then
    return encode(error_response(null, INVALID_REQUEST, "Invalid Request"))
  end
  if n > self.max_batch then
    return encode(error_response(null, INVALID_REQUEST,
      format("batch of %d requests exceeds max_batch %d", n, self.max_batch)))
  end
  local out, m = {}, 0
  for i = 1, n do
    local resp = run(self, msg[i])
    if resp then
      m = m + 1
      out[m] = resp
    end
  end
  if m == 0 then return nil end
  local eok, text_out = pcall(encode, out)
  if eok then return text_out end
  -- Some result cannot be encoded: find it, member by member.
  for i = 1, m do
    local r = out[i]
    if not pcall(encode, r) then
      if self.on_error then pcall(self.on_error, "result cannot be encoded") end
      out[i] = error_response(r.id, INTERNAL_ERROR, "Internal error")
    end
  end
  return encode(out)
end

return M
