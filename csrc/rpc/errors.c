#include <math.h>
#include "errors.h"

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "jsonrpc error %s: %s", lua_tostring(L, -2) ? lua_tostring(L, -2) : "?",
                    lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    return 1;
}

static void push_error_mt(lua_State *L)
{
    if (luaL_newmetatable(L, JR_ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
    }
}

void jr_push_error(lua_State *L, lua_Integer code, const char *message, int data_idx)
{
    data_idx = data_idx ? jr_absindex(L, data_idx) : 0;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    if (data_idx) {
        lua_pushvalue(L, data_idx);
        lua_setfield(L, -2, "data");
    }
    push_error_mt(L);
    lua_setmetatable(L, -2);
}

void jr_push_local_error(lua_State *L, lua_Integer code, const char *message)
{
    jr_push_error(L, code, message, 0);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "transport");
}

int jr_is_error(lua_State *L, int idx)
{
    int same;
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, JR_ERROR_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

static int is_integral(lua_State *L, int idx)
{
#if JR_HAVE_INTEGERS
    return lua_isinteger(L, idx);
#else
    lua_Number n = lua_tonumber(L, idx);
    return lua_type(L, idx) == LUA_TNUMBER && n == floor(n) && fabs(n) < 9007199254740992.0;
#endif
}

const char *jr_adopt_error(lua_State *L, int idx)
{
    const char *why = NULL;
    idx = jr_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        return "error is not an object";
    lua_getfield(L, idx, "code");
    lua_getfield(L, idx, "message");
    if (!is_integral(L, -2))
        why = "error code is not an integer";
    else if (lua_type(L, -1) != LUA_TSTRING)
        why = "error message is not a string";
    lua_pop(L, 2);
    if (why == NULL) {
        push_error_mt(L);
        lua_setmetatable(L, idx);
    }
    return why;
}

static int l_error(lua_State *L)
{
    lua_Integer code;
    if (!is_integral(L, 1))
        return luaL_argerror(L, 1, "error code must be an integer");
    code = lua_tointeger(L, 1);
    luaL_checktype(L, 2, LUA_TSTRING);
    jr_push_error(L, code, lua_tostring(L, 2), lua_isnoneornil(L, 3) ? 0 : 3);
    return 1;
}

static int l_is_error(lua_State *L)
{
    lua_pushboolean(L, jr_is_error(L, 1));
    return 1;
}

void jr_errors_open(lua_State *L)
{
    static const struct { const char *name; int code; } codes[] = {
        {"PARSE_ERROR", JR_PARSE_ERROR},
        {"INVALID_REQUEST", JR_INVALID_REQUEST},
        {"METHOD_NOT_FOUND", JR_METHOD_NOT_FOUND},
        {"INVALID_PARAMS", JR_INVALID_PARAMS},
        {"INTERNAL_ERROR", JR_INTERNAL_ERROR},
        {"SERVER_ERROR", JR_SERVER_ERROR},
        {"TIMEOUT", JR_TIMEOUT},
        {"CONNECTION_CLOSED", JR_CONNECTION_CLOSED},
        {"CONNECTION_FAILED", JR_CONNECTION_FAILED},
        {"INVALID_RESPONSE", JR_INVALID_RESPONSE},
        {"NO_EVENT_LOOP", JR_NO_EVENT_LOOP},
    };
    size_t i;
    lua_pushcfunction(L, l_error);
    lua_setfield(L, -2, "error");
    lua_pushcfunction(L, l_is_error);
    lua_setfield(L, -2, "is_error");
    lua_newtable(L);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        lua_pushinteger(L, codes[i].code);
        lua_setfield(L, -2, codes[i].name);
    }
    lua_setfield(L, -2, "codes");
    push_error_mt(L);
    lua_pop(L, 1);
}
