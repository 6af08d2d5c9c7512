/* The deferral object for Lua (deferral.h): core.deferral(server [, log]),
 * deferral:begin / member / settle, and core.capture_failure. */
#include <stdlib.h>
#include "common/class.h"
#include "deferral.h"
#include "exchange.h"

/* Upvalue of the methods: the metatable (jr_check_self, as the server's). */
#define UPVAL_MT lua_upvalueindex(1)
/* settle's, besides: the kind metatables, for the encoder */
#define UPVAL_ARRAY_MT lua_upvalueindex(2)
#define UPVAL_OBJECT_MT lua_upvalueindex(3)

static jr_deferral *check_deferral(lua_State *L)
{
    return (jr_deferral *)jr_check_self(L, UPVAL_MT, JR_DEFERRAL_MT);
}

/* Opens x on the deferral whose uservalue table is on top (x->dv), with
 * its server and log, and the context at ctx. */
static void open_exchange(jr_exchange *x, lua_State *L, int ctx)
{
    int dv = lua_gettop(L);
    lua_rawgeti(L, dv, DV_SERVER);
    lua_rawgeti(L, dv, DV_LOG);
    jr_exchange_open(x, L, (jr_server *)lua_touserdata(L, dv + 1), dv + 1, ctx, NULL, 0, 0);
    x->log = lua_isnil(L, dv + 2) ? 0 : dv + 2;
    x->dv = dv;
}

/* deferral:begin(text [, context [, make_context [, arg]]]): with no
 * context, make_context(arg) makes it if and when a handler or a hook
 * needs it. */
static int l_begin(lua_State *L)
{
    jr_deferral *d = check_deferral(L);
    jr_exchange x;
    size_t n;
    const char *s;
    luaL_checktype(L, 2, LUA_TSTRING);
    s = lua_tolstring(L, 2, &n);
    luaL_argcheck(L, lua_isnoneornil(L, 4) || lua_isfunction(L, 4), 4, "function expected");
    lua_settop(L, 5);
    if (d->busy)
        return luaL_error(L, "deferral:begin: the last text's members are not all settled");
    jr_get_uservalue(L, 1);
    jr_deferral_reset(L, d, 6);   /* what an error may have left */
    open_exchange(&x, L, 3);
    x.deferral = d;
    x.make_ctx = lua_isnil(L, 3) && !lua_isnil(L, 4) ? 4 : 0;
    jr_exchange_text(&x, s, n);
    if (d->on_stack) {   /* true, n, fn, args... */
        int values = d->members[0].nargs + 1;
        jr_exchange_release(&x);
        d->busy = 1;
        lua_pushboolean(L, 1);
        lua_insert(L, -values - 1);
        lua_pushinteger(L, values - 1);
        lua_insert(L, -values - 1);
        return values + 2;
    }
    lua_pushinteger(L, d->count);
    if (x.out->len > 0)
        lua_pushlstring(L, x.out->data, x.out->len);
    else
        lua_pushnil(L);
    jr_exchange_release(&x);
    d->busy = d->count > 0;
    return 2;
}

static long check_member(lua_State *L, jr_deferral *d)
{
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, d->busy && i >= 1 && i <= d->count, 2, "no such member");
    return (long)i - 1;
}

/* deferral:member(i) -> n, fn, args... */
static int l_member(lua_State *L)
{
    jr_deferral *d = check_deferral(L);
    long i = check_member(L, d);
    const jr_deferred *m = &d->members[i];
    int k, values = m->nargs + 1;
    luaL_argcheck(L, !d->on_stack, 2, "a lone request's handler came from begin");
    luaL_checkstack(L, values + 2, "jsonrpc deferral");
    jr_get_uservalue(L, 1);
    lua_pushinteger(L, m->nargs);
    for (k = 0; k < values; k++)
        lua_rawgeti(L, -2 - k, m->at + M_FN + k);
    return values + 1;
}

/* deferral:settle(i, ok, a, b) -> answer | nil */
static int l_settle(lua_State *L)
{
    jr_deferral *d = check_deferral(L);
    long i = check_member(L, d);
    jr_exchange x;
    int whole;
    jr_kinds k;
    luaL_argcheck(L, !d->members[i].settled, 2, "member settled already");
    lua_settop(L, 5);
    k.mt_array = UPVAL_ARRAY_MT;
    k.mt_object = UPVAL_OBJECT_MT;
    k.max_depth = d->srv->max_depth;
    whole = jr_deferral_settle_result(L, d, i, 3, &k);
    if (whole >= 0) {
        if (d->settled == d->count) {
            jr_get_uservalue(L, 1);
            jr_deferral_reset(L, d, lua_gettop(L));
            lua_pop(L, 1);   /* the answer, if any, is on top again */
        }
        return whole;
    }
    lua_pushnil(L);   /* the context: none needed now */
    jr_get_uservalue(L, 1);
    open_exchange(&x, L, 6);
    whole = jr_deferral_settle(&x, d, i, 3);
    jr_exchange_release(&x);
    if (d->settled == d->count)
        jr_deferral_reset(L, d, x.dv);
    return whole;
}

static int deferral_gc(lua_State *L)
{
    jr_deferral *d = (jr_deferral *)lua_touserdata(L, 1);
    if (d->batch != NULL)
        jr_batch_unref(d->batch);
    d->batch = NULL;
    free(d->members);
    d->members = NULL;
    return 0;
}

/* core.deferral(server [, log]) */
static int l_deferral(lua_State *L)
{
    jr_deferral *d;
    const jr_server *srv = jr_to_server(L, 1);
    luaL_argcheck(L, srv != NULL, 1, "server expected");
    luaL_argcheck(L, lua_isnoneornil(L, 2) || lua_isfunction(L, 2), 2, "log must be a function");
    lua_settop(L, 2);
    d = (jr_deferral *)lua_newuserdata(L, sizeof *d);
    d->busy = d->lone = d->on_stack = 0;
    d->count = d->settled = d->cap = 0;
    d->members = NULL;
    d->used = DV_FIRST;
    d->batch = NULL;
    d->srv = srv;
    lua_pushvalue(L, UPVAL_MT);
    lua_setmetatable(L, -2);
    lua_createtable(L, 8, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, DV_LOG);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, DV_SERVER);
    d->out = jr_buf_newbox(L);
    lua_rawseti(L, -2, DV_OUT);
    jr_set_uservalue(L, -2);
    return 1;
}

void jr_deferral_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"begin", l_begin},
        {"member", l_member},
        {"settle", l_settle},
        {NULL, NULL},
    };
    jr_class_self(L, JR_DEFERRAL_MT, methods, deferral_gc);
    lua_getfield(L, -1, "__index");   /* settle, with the kind metatables */
    lua_pushvalue(L, -2);
    jr_push_kind_mts(L);
    lua_pushcclosure(L, l_settle, 3);
    lua_setfield(L, -2, "settle");
    lua_pop(L, 1);
    lua_pushcclosure(L, l_deferral, 1);
    lua_setfield(L, -2, "deferral");
    lua_pushcfunction(L, jr_capture_failure);
    lua_setfield(L, -2, "capture_failure");
}
