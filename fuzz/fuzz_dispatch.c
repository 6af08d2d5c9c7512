/* server:handle() and an endpoint's receive() on arbitrary bytes: never a
 * crash or a raised error; every answer is nil or JSON that decodes to a
 * response object (or an array of them) with the right shape. A deferral
 * (deferral.h, its handlers run from Lua) answers exactly as handle. Then the
 * path streams take: the bytes read in place (libFuzzer's exact-size
 * buffer, no NUL after it, so AddressSanitizer sees any read past the
 * end), the answer handed to a sink. */
#include <string.h>
#include "rpc/endpoint.h"
#include "harness.h"

static const char check[] =
    "local j = jsonrpc\n"
    "local s = j.server{max_batch = 50, max_depth = 64}\n"
    "s:method('subtract', function(a, b) return a - b end, {params = {'minuend', 'subtrahend'}})\n"
    "s:method('sum', function(...) local t = 0 for _, v in ipairs{...} do t = t + v end return t end)\n"
    "s:method('echo', function(...) return {...} end)\n"
    "s:method('named', function(t) return t end)\n"
    "s:method('ctx', function(ctx, x) return x end, {context = true, params = {'x'}})\n"
    "s:method('fail', function(code) error(j.error(tonumber(code) or 1, 'failed', {code})) end)\n"
    "s:method('boom', function() error('boom') end)\n"
    "s:method('sparse', function() return {1, nil, 3} end)\n"
    "local function check_response(r)\n"
    "  assert(type(r) == 'table', 'response is not an object')\n"
    "  assert(r.jsonrpc == '2.0', 'no jsonrpc 2.0')\n"
    "  assert((r.result == nil) ~= (r.error == nil), 'result xor error')\n"
    "  if r.error then\n"
    "    assert(math.type == nil or math.type(r.error.code) == 'integer', 'code')\n"
    "    assert(type(r.error.message) == 'string', 'message')\n"
    "  end\n"
    "end\n"
    "local function check_answer(text, answer)\n"
    "  if answer == nil then return end\n"
    "  local v, err = j.decode(answer)\n"
    "  assert(v ~= nil, 'answer is not JSON: ' .. tostring(err) .. ': ' .. answer)\n"
    "  if answer:sub(1, 1) == '[' then\n"
    "    assert(#v > 0, 'empty batch answer')\n"
    "    for _, r in ipairs(v) do check_response(r) end\n"
    "  else check_response(v) end\n"
    "end\n"
    "local core = require('jsonrpc.core')\n"
    "local deferral, msgh = core.deferral(s), core.capture_failure\n"
    "local function call(fn, ...) return xpcall(fn, msgh, ...) end\n"
    "local function run(i, _, ...) return deferral:settle(i, call(...)) end\n"
    "local function deferred(lone, n, ...)\n"
    "  if lone == true then return deferral:settle(1, call(...)) end\n"
    "  local answer = n\n"
    "  for i = 1, lone do answer = run(i, deferral:member(i)) or answer end\n"
    "  return answer\n"
    "end\n"
    "local sent = {}\n"
    "local ep = j.endpoint{server = s, send = function(t) sent[#sent + 1] = t end,\n"
    "                     on_stray = function() end}\n"
    "fuzz_sink_endpoint = require('jsonrpc.core').endpoint{server = s, on_stray = function() end}\n"
    "fuzz_check_answer = check_answer\n"
    "return function(text)\n"
    "  local ctx = {peer = 'fuzz'}\n"
    "  local answer = s:handle(text, ctx)\n"
    "  check_answer(text, answer)\n"
    "  local got = deferred(deferral:begin(text, ctx))\n"
    "  assert(got == answer, 'the deferral answers ' .. tostring(got) .. ', handle ' .. tostring(answer))\n"
    "  for k in pairs(sent) do sent[k] = nil end\n"
    "  ep:receive(text)\n"
    "  for _, t in ipairs(sent) do check_answer(text, t) end\n"
    "end\n";

typedef struct collector {
    jr_sink sink;
    lua_State *L;
    int answers;
    int done;                 /* done() calls for the text */
} collector;

/* Each answer is checked as it comes (pushed, then checked by Lua). */
static int collect(jr_sink *sink, unsigned long tag, const char *text, size_t len)
{
    collector *c = (collector *)sink;
    if (tag != 7 || c->done > 0) {   /* every answer before its done, with its tag */
        fprintf(stderr, "fuzz check failed (in place): answer with tag %lu after %d done\n", tag,
                c->done);
        abort();
    }
    lua_getglobal(c->L, "fuzz_check_answer");
    lua_pushnil(c->L);
    lua_pushlstring(c->L, text, len);
    lua_call(c->L, 2, 0);
    c->answers++;
    return 0;
}

static void collect_done(jr_sink *sink, unsigned long tag)
{
    collector *c = (collector *)sink;
    if (tag != 7)
        abort();
    c->done++;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static collector c;
    lua_State *L;
    jr_delivery d;
    harness_run(check, data, size);
    L = harness_state(check);
    c.sink.put = collect;
    c.sink.done = collect_done;
    c.sink.waiting = NULL;
    c.L = L;
    c.answers = 0;
    c.done = 0;
    d.text = (const char *)data;
    d.len = size;
    d.tag = 7;
    /* as a driver hands a message over: in place, in a protected call */
    lua_pushcfunction(L, jr_endpoint_deliver);
    lua_getglobal(L, "fuzz_sink_endpoint");
    jr_endpoint_attach(jr_to_endpoint(L, -1), &c.sink);
    lua_pushlightuserdata(L, &d);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        fprintf(stderr, "fuzz check failed (in place): %s\n", lua_tostring(L, -1));
        abort();
    }
    /* the handlers of this check never wait: one answer at most, then done once */
    if (c.answers > 1 || c.done != 1) {
        fprintf(stderr, "fuzz check failed (in place): %d answers and %d done to one text\n",
                c.answers, c.done);
        abort();
    }
    lua_settop(L, 0);
    return 0;
}
