#include <stdio.h>
#include <string.h>
#include "options.h"

void jr_check_options(lua_State *L, int opts, const char *const names[])
{
    if (lua_isnoneornil(L, opts))
        return;
    luaL_checktype(L, opts, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, opts) != 0) {
        const char *k;
        int i;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, opts, "option names must be strings");
        k = lua_tostring(L, -1);
        for (i = 0; names[i] != NULL && strcmp(k, names[i]) != 0; i++)
            ;
        if (names[i] == NULL)
            luaL_argerror(L, opts, lua_pushfstring(L, "unknown option '%s'", k));
    }
}

size_t jr_opt_size(lua_State *L, int opts, const char *name, size_t dflt,
                   size_t min, size_t max)
{
    lua_Number v;
    size_t r = dflt;
    if (lua_isnoneornil(L, opts))
        return dflt;
    lua_getfield(L, opts, name);
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        /* the range test comes first: it also keeps the cast defined */
        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= (lua_Number)min && v <= (lua_Number)max)
            || (lua_Number)(size_t)v != v) {
            char msg[120];
            snprintf(msg, sizeof msg, "option '%s' must be an integer from %.0f to %.0f",
                     name, (double)min, (double)max);
            luaL_argerror(L, opts, msg);
        }
        r = (size_t)v;
    }
    lua_pop(L, 1);
    return r;
}
