/* decode -> encode -> decode on arbitrary bytes: whatever decodes encodes
 * (unless it holds an infinity, which JSON cannot carry) and reads back to an
 * equal value with the same kinds; encoding is stable. */
#include "harness.h"

static const char check[] =
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then\n"
    "    if math.type and math.type(a) ~= math.type(b) then return false end\n"
    "    return a == b\n"
    "  end\n"
    "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(s)\n"
    "  local v = jsonrpc.decode(s)\n"
    "  if v == nil then return end\n"
    "  local text, err = jsonrpc.encode(v)\n"
    "  if text == nil then\n"
    "    assert(err:find('infinity'), 'decoded value does not encode: ' .. err)\n"
    "    return\n"
    "  end\n"
    "  local back, derr = jsonrpc.decode(text)\n"
    "  assert(derr == nil, 'our output does not decode: ' .. text)\n"
    "  assert(same(v, back), 'round trip changed the value: ' .. text)\n"
    "  assert(#jsonrpc.encode(back) == #text, 'encoding is not stable')\n"
    "end\n";

HARNESS_TARGET(check)
