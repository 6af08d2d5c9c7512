/* The server object for Lua: a method registry with its limits and hooks.
 *
 * jsonrpc.server([opts]) -> server
 * server:method(name, fn [, opts]) -> server
 * server:handle(text [, context]) -> response text | nil
 * server:on_request(fn) / on_response(fn) / on_error(fn) -> server
 *
 * handle() is the sans-IO dispatch (exchange.c) with handlers under
 * lua_pcall; endpoints dispatch on the same server in coroutines. */
#include <string.h>
#include "common/class.h"
#include "common/options.h"
#include "codec/utf8.h"
#include "exchange.h"

/* Upvalue of the server's methods: its metatable, compared directly, which
 * is cheaper than luaL_checkudata's registry lookup on every call. */
#define UPVAL_SERVER_MT lua_upvalueindex(1)

jr_server *jr_to_server(lua_State *L, int idx)
{
    return (jr_server *)jr_testudata(L, idx, JR_SERVER_MT);
}

static jr_server *check_server(lua_State *L)
{
    return (jr_server *)jr_check_self(L, UPVAL_SERVER_MT, JR_SERVER_MT);
}

static int l_handle(lua_State *L)
{
    jr_exchange x;
    jr_server *srv = check_server(L);
    size_t n;
    const char *s;
    luaL_checktype(L, 2, LUA_TSTRING);
    s = lua_tolstring(L, 2, &n);
    lua_settop(L, 3);
    jr_exchange_open(&x, L, srv, 1, 3, NULL, 0, 0);
    jr_exchange_text(&x, s, n);
    if (x.out->len > 0)
        lua_pushlstring(L, x.out->data, x.out->len);
    else
        lua_pushnil(L);
    jr_exchange_release(&x);
    return 1;
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t len = jr_utf8_seqlen(p, end);
        if (len == 0)
            return 0;
        p += len;
    }
    return 1;
}

static int is_callable(lua_State *L, int idx)
{
    int callable;
    if (lua_isfunction(L, idx))
        return 1;
    if (!lua_getmetatable(L, idx))
        return 0;
    lua_getfield(L, -1, "__call");
    callable = !lua_isnil(L, -1);
    lua_pop(L, 2);
    return callable;
}

/* The entry for mopts (a table at 4): {fn, names, name_set, context}. */
static void push_entry(lua_State *L)
{
    static const char *const names[] = {"params", "context", NULL};
    int i, n;
    jr_check_options(L, 4, names);
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, JR_E_FN);
    lua_getfield(L, 4, "params");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_argerror(L, 4, "'params' must be a list of names");
        n = (int)lua_rawlen(L, -1);
        lua_createtable(L, 0, n);
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, -2, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, 4, "'params' must be a list of names");
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (!lua_isnil(L, -1))
                luaL_argerror(L, 4, lua_pushfstring(L, "param '%s' declared twice",
                                                    lua_tostring(L, -2)));
            lua_pop(L, 1);
            lua_pushinteger(L, i);
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -3, JR_E_NAME_SET);
        lua_rawseti(L, -2, JR_E_NAMES);
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, 4, "context");
    lua_pushboolean(L, lua_toboolean(L, -1));
    lua_rawseti(L, -3, JR_E_CONTEXT);
    lua_pop(L, 1);
}

/* server:method(name, fn [, opts]) -> server */
static int l_method(lua_State *L)
{
    size_t n;
    const char *name;
    (void)check_server(L);
    luaL_checktype(L, 2, LUA_TSTRING);
    name = lua_tolstring(L, 2, &n);
    if (!valid_utf8(name, n))
        return luaL_argerror(L, 2, "method name is not valid UTF-8");
    if (n >= 4 && memcmp(name, "rpc.", 4) == 0)
        return luaL_argerror(L, 2, "method names starting with 'rpc.' are reserved");
    if (!is_callable(L, 3))
        return luaL_argerror(L, 3, "handler must be a function");
    lua_settop(L, 4);
    jr_get_uservalue(L, 1);
    lua_rawgeti(L, -1, D_METHODS);
    lua_pushvalue(L, 2);
    if (lua_isnil(L, 4))
        lua_pushvalue(L, 3);
    else
        push_entry(L);
    lua_rawset(L, -3);
    lua_settop(L, 1);
    return 1;
}

static int set_hook(lua_State *L, int field)
{
    jr_server *srv = check_server(L);
    if (!lua_isnoneornil(L, 2) && !is_callable(L, 2))
        return luaL_argerror(L, 2, "hook must be a function or nil");
    lua_settop(L, 2);
    jr_get_uservalue(L, 1);
    lua_rawgeti(L, -1, field);
    srv->hooks += !lua_isnil(L, 2) - !lua_isnil(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, field);
    lua_settop(L, 1);
    return 1;
}

static int l_on_request(lua_State *L) { return set_hook(L, D_ON_REQUEST); }
static int l_on_response(lua_State *L) { return set_hook(L, D_ON_RESPONSE); }
static int l_on_error(lua_State *L) { return set_hook(L, D_ON_ERROR); }

static void read_options(lua_State *L, jr_server *srv)
{
    static const char *const names[] = {"expose_errors", "max_batch", "max_depth",
        "max_message_size", "max_values", "on_request", "on_response", "on_error", "null", NULL};
    jr_check_options(L, 1, names);
    srv->max_batch = jr_opt_size(L, 1, "max_batch", JR_DEFAULT_MAX_BATCH, 1, 100000000);
    srv->max_values = jr_opt_size(L, 1, "max_values", JR_DEFAULT_MAX_VALUES, 1, JR_OPT_SIZE_MAX);
    srv->max_depth = (int)jr_opt_size(L, 1, "max_depth", JR_DEFAULT_MAX_DEPTH, 2,
                                      JR_LIMIT_MAX_DEPTH);
    srv->max_message = jr_opt_size(L, 1, "max_message_size", JR_DEFAULT_MAX_MESSAGE, 1,
                                   (size_t)-1 > 9007199254740992ull ? (size_t)9007199254740992ull
                                                                    : (size_t)-1);
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "expose_errors");
        srv->expose_errors = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
}

/* jsonrpc.server([opts]) */
static int l_server(lua_State *L)
{
    static const struct { const char *name; int field; } hooks[] = {
        {"on_request", D_ON_REQUEST}, {"on_response", D_ON_RESPONSE}, {"on_error", D_ON_ERROR},
    };
    jr_server *srv;
    size_t i;
    lua_settop(L, 1);
    srv = (jr_server *)lua_newuserdata(L, sizeof *srv);   /* 2 */
    srv->expose_errors = 0;
    lua_pushvalue(L, UPVAL_SERVER_MT);
    lua_setmetatable(L, 2);
    read_options(L, srv);
    srv->hooks = 0;
    lua_createtable(L, D_COUNT, 0);
    lua_newtable(L);
    lua_rawseti(L, -2, D_METHODS);
    srv->out = jr_buf_newbox(L);
    lua_rawseti(L, -2, D_OUT);
    srv->scratch = jr_buf_newbox(L);
    lua_rawseti(L, -2, D_SCRATCH);
    lua_newtable(L);
    lua_rawseti(L, -2, D_THREADS);
    lua_pushcfunction(L, jr_capture_failure);
    lua_rawseti(L, -2, D_MSGH);
    jr_push_kind_mts(L);
    lua_rawseti(L, -3, D_OBJECT_MT);
    lua_rawseti(L, -2, D_ARRAY_MT);
    jr_push_runner(L);
    lua_rawseti(L, -2, D_RUNNER);
    jr_push_host_runner(L);
    lua_rawseti(L, -2, D_HOST_RUNNER);
    srv->has_null = 0;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "null");
        srv->has_null = !lua_isnil(L, -1);
        lua_rawseti(L, -2, D_NULL);
    }
    for (i = 0; lua_istable(L, 1) && i < sizeof hooks / sizeof hooks[0]; i++) {
        lua_getfield(L, 1, hooks[i].name);
        if (!lua_isnil(L, -1) && !is_callable(L, -1))
            luaL_argerror(L, 1, lua_pushfstring(L, "'%s' must be a function", hooks[i].name));
        srv->hooks += !lua_isnil(L, -1);
        lua_rawseti(L, -2, hooks[i].field);
    }
    jr_set_uservalue(L, 2);   /* the data table hangs off the server */
    return 1;
}

void jr_server_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"method", l_method},
        {"handle", l_handle},
        {"on_request", l_on_request},
        {"on_response", l_on_response},
        {"on_error", l_on_error},
        {NULL, NULL},
    };
    /* no __gc: everything a server owns hangs off its uservalue, in boxes
     * that free themselves */
    jr_class_self(L, JR_SERVER_MT, methods, NULL);
    lua_pushcclosure(L, l_server, 1);
    lua_setfield(L, -2, "server");
}
