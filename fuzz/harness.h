/* Shared by the libFuzzer targets: one Lua state per process with the
 * jsonrpc module loaded as the global `jsonrpc`, and a Lua check
 * function that the target runs on every input. A check that fails (a Lua
 * error) is a finding: the harness prints it and aborts. */
#ifndef JSONRPC_FUZZ_HARNESS_H
#define JSONRPC_FUZZ_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_jsonrpc_core(lua_State *L);

/* Loads `check_source` (a chunk returning a function) once; returns the
 * state with that function stored in the registry under "fuzz.check". */
static lua_State *harness_state(const char *check_source)
{
    static lua_State *L = NULL;
    if (L != NULL)
        return L;
    L = luaL_newstate();
    luaL_openlibs(L);
    /* the whole module, its Lua part from the checkout (the fuzzers run
     * from the top of it) and its C part linked into this program */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_jsonrpc_core);
    lua_setfield(L, -2, "jsonrpc.core");
    lua_pop(L, 1);
    lua_pushliteral(L, "lua/?.lua;lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_dostring(L, "jsonrpc = require 'jsonrpc'") != 0) {
        fprintf(stderr, "fuzz harness: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (luaL_loadstring(L, check_source) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "fuzz harness: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.check");
    return L;
}

/* Runs the check on the input; aborts on a failed check. */
static void harness_run(const char *check_source, const unsigned char *data, size_t size)
{
    lua_State *L = harness_state(check_source);
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.check");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "fuzz check failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);
}

/* Defines the libFuzzer entry point running check_source on every input. */
#define HARNESS_TARGET(check_source)                                          \
    int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);       \
    int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)        \
    {                                                                         \
        harness_run(check_source, data, size);                                \
        return 0;                                                             \
    }

#endif
