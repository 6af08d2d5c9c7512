/* The endpoint for Lua (internal: lua/jsonrpc/endpoint.lua shapes it).
 *
 * core.endpoint{server, send, context, on_stray, log, report} -> ep
 * ep:receive(text)                     a text from the peer
 * ep:request(method, params [, settle]) -> text, id
 *     a request text with the endpoint's next id; with settle, the call is
 *     registered: settle(result, err) runs when its response comes
 * ep:expect(id, settle)                registers a call made with request()
 * ep:forget(id [, timed_out]) -> was it waiting; a timed-out id's late
 *     answer is dropped quietly
 * ep:fail_all(err)                     every waiting call gets err
 * ep:pending() -> calls waiting        ep:in_flight() -> handlers waiting
 * ep:set_context(ctx)
 * core.resume(co, ...)                 coroutine.resume for the wakers of
 *                                      handlers (handlers.c) */
#include <stdio.h>
#include "common/class.h"
#include "common/options.h"
#include "errors.h"
#include "exchange.h"
#include "framing/framing.h"
#include "request.h"

#define MAX_TIMED_OUT 4096   /* ids remembered for their late responses */
#define ID_MAX 32            /* "%lld" */

jr_endpoint *jr_to_endpoint(lua_State *L, int idx)
{
    return (jr_endpoint *)jr_testudata(L, idx, JR_ENDPOINT_MT);
}

static jr_endpoint *check_endpoint(lua_State *L)
{
    return (jr_endpoint *)luaL_checkudata(L, 1, JR_ENDPOINT_MT);
}

/* Sets uservalue slot `slot` (table at uv) from the field `name` of the
 * options at 1, which must be of type `type` (or nil). */
static void set_slot(lua_State *L, int uv, int slot, const char *name, int type)
{
    lua_getfield(L, 1, name);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != type)
        luaL_argerror(L, 1, lua_pushfstring(L, "'%s' must be a %s", name, lua_typename(L, type)));
    lua_rawseti(L, uv, slot);
}

static int l_endpoint(lua_State *L)
{
    static const char *const names[] = {"server", "send", "context", "on_stray", "log",
                                        "report", "start", "null", NULL};
    jr_endpoint *ep;
    luaL_checktype(L, 1, LUA_TTABLE);
    jr_check_options(L, 1, names);
    lua_settop(L, 1);
    ep = (jr_endpoint *)lua_newuserdata(L, sizeof *ep);   /* 2 */
    memset(ep, 0, sizeof *ep);
    luaL_getmetatable(L, JR_ENDPOINT_MT);
    lua_setmetatable(L, 2);
    lua_createtable(L, EP_COUNT, 0);                       /* 3 */
    lua_getfield(L, 1, "server");
    if (jr_to_server(L, -1) == NULL)
        return luaL_argerror(L, 1, "'server' must be a jsonrpc.server");
    lua_rawseti(L, 3, EP_SERVER);
    lua_getfield(L, 1, "context");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_rawseti(L, 3, EP_CONTEXT);
    set_slot(L, 3, EP_SEND, "send", LUA_TFUNCTION);
    set_slot(L, 3, EP_ON_STRAY, "on_stray", LUA_TFUNCTION);
    set_slot(L, 3, EP_LOG, "log", LUA_TFUNCTION);
    set_slot(L, 3, EP_REPORT, "report", LUA_TFUNCTION);
    set_slot(L, 3, EP_START, "start", LUA_TFUNCTION);
    lua_rawgeti(L, 3, EP_START);
    ep->host_starts = !lua_isnil(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "null");
    ep->has_null = !lua_isnil(L, -1);
    lua_rawseti(L, 3, EP_NULL);
    lua_newtable(L);
    lua_rawseti(L, 3, EP_PENDING);
    lua_newtable(L);
    lua_rawseti(L, 3, EP_TIMED_OUT);
    jr_set_uservalue(L, 2);
    return 1;
}

static int l_receive(lua_State *L)
{
    size_t n;
    const char *text;
    (void)check_endpoint(L);
    text = luaL_checklstring(L, 2, &n);
    jr_endpoint_receive(L, 1, text, n, 0);
    return 0;
}

/* cep:receive_from(framer [, max]) -> taken [, err]: dispatches up to max
 * (all when absent or 0) of the messages the framer holds, in place, with
 * no Lua string made of them; err is a framing error, where it stops
 * (ndjson goes on past it at the next call; the others stay broken). */
static int l_receive_from(lua_State *L)
{
    jr_framer *f;
    const char *msg, *err = NULL;
    size_t len;
    lua_Integer max, taken = 0;
    int r;
    (void)check_endpoint(L);
    f = (jr_framer *)luaL_checkudata(L, 2, "jsonrpc.framer");
    max = luaL_optinteger(L, 3, 0);
    while (max <= 0 || taken < max) {
        r = jr_framer_next(f, &msg, &len);
        if (r == 0) {
            jr_framer_shrink(f);
            break;
        }
        if (r != 1) {   /* the caller answers it, then calls again if it recovers */
            err = jr_framer_error(f);
            break;
        }
        taken++;
        jr_endpoint_receive(L, 1, msg, len, 0);
    }
    lua_pushinteger(L, taken);
    if (err == NULL)
        return 1;
    lua_pushstring(L, err);
    return 2;
}

/* Pushes the raw id text of a call id (a number from request()). */
static void push_key(lua_State *L, int idx)
{
    char id[ID_MAX];
    lua_Number n = luaL_checknumber(L, idx);
    snprintf(id, sizeof id, "%lld", (long long)n);
    lua_pushstring(L, id);
}

/* pending[key on top] = the settle function at fn; pops the key. */
static void expect(lua_State *L, jr_endpoint *ep, int fn)
{
    luaL_checktype(L, fn, LUA_TFUNCTION);
    jr_get_uservalue(L, 1);
    lua_rawgeti(L, -1, EP_PENDING);
    lua_pushvalue(L, -3);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1))
        ep->pending++;
    lua_pop(L, 1);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, fn);
    lua_rawset(L, -3);
    lua_pop(L, 3);
}

/* The upvalues of request: a scratch buffer and the kind metatables. */
#define UPVAL_SCRATCH lua_upvalueindex(1)
#define UPVAL_ARRAY_MT lua_upvalueindex(2)
#define UPVAL_OBJECT_MT lua_upvalueindex(3)

static int l_request(lua_State *L)
{
    jr_endpoint *ep = check_endpoint(L);
    char id[ID_MAX];
    int n;
    jr_check_request_args(L, 2, 3);
    lua_settop(L, 4);
    n = snprintf(id, sizeof id, "%lld", ep->last_id + 1);
    jr_push_request(L, (jr_buf *)lua_touserdata(L, UPVAL_SCRATCH), 2, 3, id, (size_t)n, 0,
                    UPVAL_ARRAY_MT, UPVAL_OBJECT_MT);
    ep->last_id++;
    if (!lua_isnil(L, 4)) {
        lua_pushstring(L, id);
        expect(L, ep, 4);
    }
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)ep->last_id);
#else
    lua_pushnumber(L, (lua_Number)ep->last_id);
#endif
    return 2;
}

static int l_expect(lua_State *L)
{
    jr_endpoint *ep = check_endpoint(L);
    push_key(L, 2);
    expect(L, ep, 3);
    return 0;
}

/* ep:forget(id [, timed_out]) -> whether the call was waiting */
static int l_forget(lua_State *L)
{
    jr_endpoint *ep = check_endpoint(L);
    int timed_out = lua_toboolean(L, 3), waiting;
    lua_settop(L, 2);
    push_key(L, 2);                                    /* 3 */
    jr_get_uservalue(L, 1);                            /* 4 */
    lua_rawgeti(L, 4, EP_PENDING);                     /* 5 */
    lua_pushvalue(L, 3);
    lua_rawget(L, 5);
    waiting = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!waiting) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushvalue(L, 3);
    lua_pushnil(L);
    lua_rawset(L, 5);
    ep->pending--;
    if (timed_out) {
        if (ep->timed_out >= MAX_TIMED_OUT) {   /* the oldest go: a fresh set */
            lua_newtable(L);
            lua_rawseti(L, 4, EP_TIMED_OUT);
            ep->timed_out = 0;
        }
        lua_rawgeti(L, 4, EP_TIMED_OUT);
        lua_pushvalue(L, 3);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        ep->timed_out++;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ep:fail_all(err): every waiting call is settled with (nil, err). */
static int l_fail_all(lua_State *L)
{
    jr_endpoint *ep = check_endpoint(L);
    int n = 0, i;
    lua_settop(L, 2);
    jr_get_uservalue(L, 1);                            /* 3 */
    lua_rawgeti(L, 3, EP_PENDING);                     /* 4 */
    lua_getfield(L, 1, "null");
    lua_rawseti(L, 3, EP_NULL);
    lua_newtable(L);
    lua_rawseti(L, 3, EP_PENDING);
    ep->pending = 0;
    lua_newtable(L);                                   /* 5: the settles */
    lua_pushnil(L);
    while (lua_next(L, 4))
        lua_rawseti(L, 5, ++n);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 5, i);
        lua_pushnil(L);
        lua_pushvalue(L, 2);
        lua_call(L, 2, 0);
    }
    return 0;
}

static int l_pending(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_endpoint(L)->pending);
    return 1;
}

static int l_in_flight(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_endpoint(L)->in_flight);
    return 1;
}

static int l_set_context(lua_State *L)
{
    (void)check_endpoint(L);
    luaL_checkany(L, 2);
    jr_get_uservalue(L, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, EP_CONTEXT);
    return 0;
}

static int l_tostring(lua_State *L)
{
    lua_pushfstring(L, "jsonrpc.endpoint: %p", lua_touserdata(L, 1));
    return 1;
}

void jr_endpoint_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"receive", l_receive},
        {"receive_from", l_receive_from},
        {"expect", l_expect},
        {"forget", l_forget},
        {"fail_all", l_fail_all},
        {"pending", l_pending},
        {"in_flight", l_in_flight},
        {"set_context", l_set_context},
        {NULL, NULL},
    };
    jr_class(L, JR_ENDPOINT_MT, methods, NULL, l_tostring);
    luaL_getmetatable(L, JR_ENDPOINT_MT);   /* request has upvalues */
    lua_getfield(L, -1, "__index");
    jr_buf_newbox(L);
    jr_push_kind_mts(L);
    lua_pushcclosure(L, l_request, 3);
    lua_setfield(L, -2, "request");
    lua_pop(L, 2);
    lua_pushcfunction(L, l_endpoint);
    lua_setfield(L, -2, "endpoint");
    lua_pushcfunction(L, jr_resume);
    lua_setfield(L, -2, "resume");
}
