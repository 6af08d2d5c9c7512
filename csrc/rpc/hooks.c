/* What the dispatch tells Lua besides answers: the request table the hooks
 * see, on_request / on_response / on_error, and the capture of a plain
 * error's traceback (reported, and sent only with expose_errors). */
#include <stdio.h>
#include "errors.h"
#include "exchange.h"

#define FAILURE_MT "jsonrpc.failure"

/* msg with the traceback of co (L itself, or a failed coroutine). */
static void push_traceback(lua_State *L, lua_State *co, const char *msg, int level)
{
#if LUA_VERSION_NUM >= 502 || defined(LUAJIT_VERSION)
    luaL_traceback(L, co, msg, level);
#else
    int nargs = 2;
    lua_getglobal(L, "debug");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "traceback");
        lua_remove(L, -2);
        if (co != L) {
            lua_pushthread(co);
            lua_xmove(co, L, 1);
            nargs++;
        }
        lua_pushstring(L, msg);
        if (co == L)
            lua_pushinteger(L, level + 1);   /* past debug.traceback itself */
        else
            nargs--;
        if (lua_pcall(L, nargs, 1, 0) == 0 && lua_isstring(L, -1))
            return;
    }
    lua_pop(L, 1);
    lua_pushstring(L, msg);
#endif
}

/* {message, traceback} with the failure metatable, from msg at top + 1. */
static void push_failure(lua_State *L, lua_State *co, int level)
{
    int msg = lua_gettop(L);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, msg);
    lua_rawseti(L, -2, 1);
    push_traceback(L, co, lua_tostring(L, msg), level);
    lua_rawseti(L, -2, 2);
    luaL_newmetatable(L, FAILURE_MT);
    lua_setmetatable(L, -2);
    lua_remove(L, msg);
}

/* Pushes the message of the raised value at idx. */
static void push_message(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
        lua_pushstring(L, lua_tostring(L, idx));
    else
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
}

int jr_capture_failure(lua_State *L)
{
    if (jr_is_error(L, 1))
        return 1;
    push_message(L, 1);
    push_failure(L, L, 1);
    return 1;
}

int jr_is_failure(lua_State *L, int idx)
{
    int same;
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, FAILURE_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

void jr_push_id_value(jr_exchange *x, const jr_envelope *e)
{
    jr_codec_limits lim = { 1, (size_t)-1, JR_NO_BUDGET, 0 };
    if (!(e->seen & JR_M_ID) || !e->id_ok
        || jr_decode(x->L, e->id, e->id_len, &lim, x->kinds.mt_array, x->kinds.mt_object,
                     x->d.scratch, x->err) != 0)
        lua_pushnil(x->L);
}

/* req = {method, params, id, notification, context} in slot JR_S_REQ. Must
 * run before the call, which consumes the arguments. */
void jr_build_req(jr_exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    int i;
    luaL_checkstack(L, 8, "jsonrpc dispatch");
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, e->base + JR_S_METHOD);
    lua_setfield(L, -2, "method");
    if (e->params_at != NULL) {   /* not decoded: the method does not exist */
        lua_pushnil(L);
    } else if (e->params == JR_P_ARRAY) {
        lua_createtable(L, e->nargs, 0);
        for (i = 0; i < e->nargs && i < JR_MAX_ARGS; i++) {
            lua_pushvalue(L, e->base + JR_S_ARGS + i);
            lua_rawseti(L, -2, i + 1);
        }
        lua_pushvalue(L, x->kinds.mt_array);
        lua_setmetatable(L, -2);
    } else {
        lua_pushvalue(L, e->base + JR_S_PARAMS);
    }
    lua_setfield(L, -2, "params");
    jr_push_id_value(x, e);
    lua_setfield(L, -2, "id");
    lua_pushboolean(L, !(e->seen & JR_M_ID));
    lua_setfield(L, -2, "notification");
    jr_push_context(x);
    lua_setfield(L, -2, "context");
    lua_replace(L, e->base + JR_S_REQ);
}

/* Errors in on_error (or the log) are dropped: there is nowhere left to
 * report them. */
void jr_report(jr_exchange *x, int req, const char *message, const char *traceback)
{
    lua_State *L = x->L;
    luaL_checkstack(L, 8, "jsonrpc dispatch");
    lua_rawgeti(L, x->data, D_ON_ERROR);
    if (lua_isnil(L, -1) && x->log) {
        lua_pop(L, 1);
        lua_pushvalue(L, x->log);
    } else if (lua_isnil(L, -1) && x->epv) {
        lua_pop(L, 1);
        lua_rawgeti(L, x->epv, EP_LOG);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushstring(L, message);
    lua_pushstring(L, traceback);
    if (req)
        lua_pushvalue(L, req);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 3, 0, 0) != 0)
        lua_pop(L, 1);
}

void jr_push_internal_error(jr_exchange *x, int idx, int req)
{
    lua_State *L = x->L;
    const char *msg, *tb;
    luaL_checkstack(L, 8, "jsonrpc dispatch");
    idx = jr_absindex(L, idx);
    if (jr_is_failure(L, idx)) {
        lua_rawgeti(L, idx, 1);
        lua_rawgeti(L, idx, 2);
    } else {
        lua_pushstring(L, lua_tostring(L, idx) ? lua_tostring(L, idx) : "not enough memory");
        lua_pushliteral(L, "");
    }
    msg = lua_tostring(L, -2);
    tb = lua_tostring(L, -1);
    jr_report(x, req, msg, tb);
    if (x->srv->expose_errors) {
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "message");
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "traceback");
        jr_push_error(L, JR_INTERNAL_ERROR, "Internal error", -1);
        lua_replace(L, -4);
        lua_pop(L, 2);
    } else {
        lua_pop(L, 2);
        jr_push_error(L, JR_INTERNAL_ERROR, "Internal error", 0);
    }
}

void jr_push_thread_error(jr_exchange *x, lua_State *co, int idx, int req)
{
    lua_State *L = x->L;
    luaL_checkstack(L, 8, "jsonrpc dispatch");
    idx = jr_absindex(L, idx);
    if (jr_is_error(L, idx)) {
        lua_pushvalue(L, idx);
        return;
    }
    push_message(L, idx);
    push_failure(L, co, 0);
    jr_push_internal_error(x, -1, req);
    lua_remove(L, -2);
}

int jr_call_hook(jr_exchange *x, int hook, int req, int nargs)
{
    lua_State *L = x->L;
    int base = lua_gettop(L) - nargs;
    if (!x->hooks) {
        if (nargs > 0)   /* lua_settop costs even when it changes nothing */
            lua_settop(L, base);
        return 0;
    }
    lua_rawgeti(L, x->data, hook);
    if (lua_isnil(L, -1)) {
        lua_settop(L, base);
        return 0;
    }
    lua_insert(L, base + 1);
    lua_pushvalue(L, req);
    lua_insert(L, base + 2);
    if (lua_pcall(L, nargs + 1, 0, x->msgh) == 0)
        return 0;
    if (!jr_is_error(L, -1)) {   /* a plain error in a hook: Internal error */
        jr_push_internal_error(x, -1, req);
        lua_remove(L, -2);
    }
    return 1;
}

void jr_notify_response(jr_exchange *x, const jr_envelope *e, int result, int err)
{
    lua_State *L = x->L;
    int req;
    if (!x->hooks)
        return;
    req = e ? e->base + JR_S_REQ : 0;
    if (!req || lua_isnil(L, req)) {   /* a message too broken to read */
        lua_createtable(L, 0, 1);
        jr_push_context(x);
        lua_setfield(L, -2, "context");
        req = lua_gettop(L);
    }
    if (result) lua_pushvalue(L, result); else lua_pushnil(L);
    if (err) lua_pushvalue(L, err); else lua_pushnil(L);
    if (jr_call_hook(x, D_ON_RESPONSE, req, 2))
        lua_pop(L, 1);   /* a failing logger does not change the answer */
    if (req != (e ? e->base + JR_S_REQ : 0))
        lua_remove(L, req);
}
