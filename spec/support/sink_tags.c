/* A driver's view of an endpoint: messages delivered with tags, answers
 * and done() coming back through a C sink, with handlers that wait (they
 * yield, and Lua resumes them later), in a batch too. Prints one line per
 * sink event; spec/sink_spec.lua checks them. Built with the engine's C
 * sources, like the fuzz targets. */
#include <stdio.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "rpc/endpoint.h"

int luaopen_jsonrpc_core(lua_State *L);

static int put(jr_sink *sink, unsigned long tag, const char *text, size_t len)
{
    (void)sink;
    printf("put %lu %.*s\n", tag, (int)len, text);
    return 0;
}

static void done(jr_sink *sink, unsigned long tag)
{
    (void)sink;
    printf("done %lu\n", tag);
}

static void waiting(jr_sink *sink, int in_flight)
{
    (void)sink;
    printf("waiting %d\n", in_flight);
}

static jr_sink sink = { put, done, waiting };

/* deliver(ep, text, tag): as a driver hands a message over. */
static int deliver(lua_State *L)
{
    jr_delivery d;
    d.text = luaL_checklstring(L, 2, &d.len);
    d.tag = (unsigned long)luaL_checkinteger(L, 3);
    lua_pushcfunction(L, jr_endpoint_deliver);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, &d);
    lua_call(L, 2, 0);
    return 0;
}

static int attach(lua_State *L)
{
    jr_endpoint_attach(jr_to_endpoint(L, 1), &sink);
    return 0;
}

static const char script[] =
    "local core = require 'jsonrpc.core'\n"
    "local server = core.server()\n"
    "local parked = {}\n"
    "server:method('now', function(x) return x end)\n"
    "server:method('later', function(x) parked[#parked + 1] = coroutine.running();"
    " coroutine.yield(); return x end)\n"
    "local ep = core.endpoint{server = server}\n"
    "attach(ep)\n"
    "deliver(ep, '{\"jsonrpc\":\"2.0\",\"method\":\"now\",\"params\":[1],\"id\":1}', 1)\n"
    "deliver(ep, '{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"params\":[2],\"id\":2}', 2)\n"
    "deliver(ep, '{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"params\":[3]}', 3)\n"
    "deliver(ep, '[{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"params\":[4],\"id\":4},"
    "{\"jsonrpc\":\"2.0\",\"method\":\"now\",\"params\":[5],\"id\":5}]', 4)\n"
    "deliver(ep, '{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":99}', 5)\n"
    "print('resume batch member')\n"
    "core.resume(parked[3])\n"
    "print('resume notification')\n"
    "core.resume(parked[2])\n"
    "print('resume call')\n"
    "core.resume(parked[1])\n";

int main(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_jsonrpc_core);
    lua_setfield(L, -2, "jsonrpc.core");
    lua_pop(L, 2);
    lua_register(L, "deliver", deliver);
    lua_register(L, "attach", attach);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (luaL_dostring(L, script) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_close(L);
    return 0;
}
