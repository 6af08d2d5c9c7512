/* Lua bindings of the codec: jsonrpc.encode, decode, null, array, object.
 * encode and decode share, through upvalues, a scratch buffer and the two
 * metatables that mark a table's kind. */
#include "codec.h"
#include "common/options.h"

#define UPVAL_SCRATCH lua_upvalueindex(1)
#define UPVAL_ARRAY_MT lua_upvalueindex(2)
#define UPVAL_OBJECT_MT lua_upvalueindex(3)

/* The options of encode, or of decode (which also takes max_values). */
static void read_limits(lua_State *L, int opts, jr_codec_limits *lim, int decoding)
{
    static const char *const encoding_names[] = {"max_depth", "max_size", NULL};
    static const char *const decoding_names[] = {"max_depth", "max_size", "max_values", "null", NULL};
    jr_check_options(L, opts, decoding ? decoding_names : encoding_names);
    lim->max_depth = (int)jr_opt_size(L, opts, "max_depth", JR_DEFAULT_MAX_DEPTH, 1,
                                      JR_LIMIT_MAX_DEPTH);
    lim->max_size = jr_opt_size(L, opts, "max_size", JR_DEFAULT_MAX_MESSAGE, 0, JR_OPT_SIZE_MAX);
    lim->max_values = decoding ? jr_opt_size(L, opts, "max_values", JR_NO_BUDGET, 1, JR_OPT_SIZE_MAX)
                               : JR_NO_BUDGET;
    lim->null_value = 0;
}

/* decode's null option (vim.NIL, say), pushed: its stack index, or 0. */
static int push_null_option(lua_State *L, int opts)
{
    if (!lua_istable(L, opts))
        return 0;
    lua_getfield(L, opts, "null");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    return lua_gettop(L);
}

/* The Lua return convention: the value already pushed, or nil, message. */
static int result(lua_State *L, int rc, const char *err)
{
    if (rc == 0)
        return 1;
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static int l_decode(lua_State *L)
{
    jr_codec_limits lim;
    char err[JR_ERRLEN];
    size_t n;
    const char *s;
    jr_buf *scratch;
    int rc;
    luaL_checktype(L, 1, LUA_TSTRING);
    s = lua_tolstring(L, 1, &n);
    read_limits(L, 2, &lim, 1);
    lua_settop(L, 2);
    lim.null_value = push_null_option(L, 2);
    scratch = jr_buf_borrow(L, (jr_buf *)lua_touserdata(L, UPVAL_SCRATCH));
    rc = jr_decode(L, s, n, &lim, UPVAL_ARRAY_MT, UPVAL_OBJECT_MT, scratch, err);
    jr_buf_return(scratch);
    return result(L, rc, err);
}

static int l_encode(lua_State *L)
{
    jr_codec_limits lim;
    char err[JR_ERRLEN];
    jr_buf *out;
    int rc;
    luaL_checkany(L, 1);
    read_limits(L, 2, &lim, 0);
    lua_settop(L, 2);
    out = jr_buf_borrow(L, (jr_buf *)lua_touserdata(L, UPVAL_SCRATCH));
    rc = jr_encode(L, 1, out, &lim, UPVAL_ARRAY_MT, UPVAL_OBJECT_MT, err);
    if (rc == 0)
        lua_pushlstring(L, out->data, out->len);
    jr_buf_return(out);
    return result(L, rc, err);
}

/* array(t) / object(t): marks t (or a new table) with that kind. */
static int mark_kind(lua_State *L, int mt)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
        int same_family = lua_rawequal(L, -1, UPVAL_ARRAY_MT) || lua_rawequal(L, -1, UPVAL_OBJECT_MT);
        lua_pop(L, 1);
        if (!same_family)
            return luaL_argerror(L, 1, "table already has a metatable");
    }
    lua_pushvalue(L, mt);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_array(lua_State *L)
{
    return mark_kind(L, UPVAL_ARRAY_MT);
}

static int l_object(lua_State *L)
{
    return mark_kind(L, UPVAL_OBJECT_MT);
}

void jr_push_kind_mts(lua_State *L)
{
    if (luaL_newmetatable(L, JR_ARRAY_MT)) {
        lua_pushliteral(L, "array");
        lua_setfield(L, -2, "__jsontype");
    }
    if (luaL_newmetatable(L, JR_OBJECT_MT)) {
        lua_pushliteral(L, "object");
        lua_setfield(L, -2, "__jsontype");
    }
}

void jr_codec_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"decode", l_decode},
        {"encode", l_encode},
        {"array", l_array},
        {"object", l_object},
        {NULL, NULL},
    };
    int i, scratch;
    jr_buf_newbox(L);   /* decode and encode share one scratch buffer */
    scratch = lua_gettop(L);
    for (i = 0; fns[i].name != NULL; i++) {
        if (fns[i].func == l_decode || fns[i].func == l_encode)
            lua_pushvalue(L, scratch);
        else
            lua_pushnil(L);   /* array and object need none */
        jr_push_kind_mts(L);
        lua_pushcclosure(L, fns[i].func, 3);
        lua_setfield(L, -3, fns[i].name);
    }
    lua_pop(L, 1);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}
