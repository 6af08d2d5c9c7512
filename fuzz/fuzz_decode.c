/* decode() on arbitrary bytes: never crashes; every answer is either a value
 * or (nil, message with a byte offset inside the input). */
#include "harness.h"

static const char check[] =
    "return function(s)\n"
    "  local v, err = jsonrpc.decode(s)\n"
    "  if v == nil then\n"
    "    assert(type(err) == 'string', 'no error message')\n"
    "    local at = tonumber(err:match('at byte (%d+)$'))\n"
    "    assert(at or err:find('exceeds max_size'), 'no byte offset: ' .. err)\n"
    "    assert(not at or (at >= 1 and at <= #s + 1), 'offset outside input: ' .. err)\n"
    "  end\n"
    "  jsonrpc.decode(s, {max_depth = 3})\n"
    "end\n";

HARNESS_TARGET(check)
