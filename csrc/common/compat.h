/* Differences between Lua 5.1/LuaJIT, 5.3 and 5.4 that the engine touches. */
#ifndef JSONRPC_COMPAT_H
#define JSONRPC_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* LuaJIT speaks the 5.1 API; luajit.h (LUAJIT_VERSION) tells it apart from
 * plain 5.1, which cannot yield across pcall. */
#if LUA_VERSION_NUM == 501 && defined(__has_include)
#if __has_include(<luajit.h>)
#include <luajit.h>
#endif
#endif

/* Lua 5.3+ has a 64-bit integer subtype; 5.1 and LuaJIT have doubles only. */
#if LUA_VERSION_NUM >= 503
#define JR_HAVE_INTEGERS 1
#else
#define JR_HAVE_INTEGERS 0
#endif

#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

#ifndef LUA_OK   /* Lua 5.1 */
#define LUA_OK 0
#endif

/* Register functions into the table on top of the stack (no upvalues). */
static inline void jr_setfuncs(lua_State *L, const luaL_Reg *fns)
{
    for (; fns->name != NULL; fns++) {
        lua_pushcfunction(L, fns->func);
        lua_setfield(L, -2, fns->name);
    }
}

/* luaL_testudata for every version: the userdata at idx if it has the
 * metatable registered under tname, else NULL. */
static inline void *jr_testudata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (p == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

/* Moves the value on top into slot a and the one below it into slot b
 * (absolute indices), popping both: one lua_settop where two lua_replace
 * would cost two. */
static inline void jr_store2(lua_State *L, int a, int b)
{
#if LUA_VERSION_NUM >= 502
    lua_copy(L, -1, a);
    lua_copy(L, -2, b);
    lua_settop(L, -3);
#else
    lua_replace(L, a);
    lua_replace(L, b);
#endif
}

/* The table tied to a userdata (its uservalue; its environment on 5.1):
 * reachable only through the userdata, so a cycle through it (a handler
 * that captures its own server) can be collected, as a registry
 * reference never could. set pops the table. */
static inline void jr_set_uservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_setiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_setuservalue(L, idx);
#else
    lua_setfenv(L, idx);
#endif
}

static inline void jr_get_uservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_getiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_getuservalue(L, idx);
#else
    lua_getfenv(L, idx);
#endif
}

/* Absolute stack index, for indices that must survive pushes. */
static inline int jr_absindex(lua_State *L, int idx)
{
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

#endif
