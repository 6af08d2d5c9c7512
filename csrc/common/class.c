#include "class.h"

void jr_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
              lua_CFunction tostring)
{
    if (!luaL_newmetatable(L, name)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    if (methods != NULL) {
        lua_newtable(L);
        jr_setfuncs(L, methods);
        lua_setfield(L, -2, "__index");
    }
    if (gc != NULL) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
    if (tostring != NULL) {
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

void *jr_check_self(lua_State *L, int mt, const char *name)
{
    void *p = lua_touserdata(L, 1);
    int ok = p != NULL && lua_getmetatable(L, 1);
    if (ok) {
        ok = lua_rawequal(L, -1, mt);
        lua_pop(L, 1);
    }
    if (!ok)
        luaL_argerror(L, 1, lua_pushfstring(L, "%s expected, got %s", name, luaL_typename(L, 1)));
    return p;
}

void jr_class_self(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    int mt, i;
    jr_class(L, name, NULL, gc, NULL);
    luaL_getmetatable(L, name);
    mt = lua_gettop(L);
    lua_newtable(L);
    for (i = 0; methods[i].name != NULL; i++) {
        lua_pushvalue(L, mt);
        lua_pushcclosure(L, methods[i].func, 1);
        lua_setfield(L, -2, methods[i].name);
    }
    lua_setfield(L, mt, "__index");
}
