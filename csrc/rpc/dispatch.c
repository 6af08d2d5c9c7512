/* The server: a method registry and the sans-IO dispatch of JSON-RPC texts.
 *
 * server:handle(text [, context]) -> response text | nil
 *
 * The hot path reads the request envelope member by member (envelope.c):
 * positional params land on the stack as the handler's arguments, the id is
 * kept as raw text, no table is built for the request; the handler runs
 * under lua_pcall; its result is encoded straight into the output buffer
 * (response.c). Hooks, when set, see the request as a table, built only
 * then. A batch is checked whole (valid JSON, length) before any member
 * runs, as the specification's examples require. */
#include <stdio.h>
#include <string.h>
#include "dispatch.h"
#include "envelope.h"
#include "errors.h"
#include "common/options.h"
#include "response.h"
#include "codec/utf8.h"

#define SERVER_MT "jsonrpc.server"

static void luaL_typerror_compat(lua_State *L, int arg, const char *tname)
{
    luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, luaL_typename(L, arg)));
}
#define FAILURE_MT "jsonrpc.failure"
#define BUF_KEEP (64u << 10)

/* Fields of a server's data table (registry-held, integer keys for speed). */
enum { D_METHODS = 1, D_ON_REQUEST, D_ON_RESPONSE, D_ON_ERROR, D_OUT, D_SCRATCH, D_THREADS };

#define THREAD_POOL 64   /* handler threads kept for reuse, per server */

/* Upvalues of the server's methods. */
#define UPVAL_SERVER_MT lua_upvalueindex(1)
#define UPVAL_MSGH lua_upvalueindex(2)
#define UPVAL_ARRAY_MT lua_upvalueindex(3)
#define UPVAL_OBJECT_MT lua_upvalueindex(4)


/* One call of handle(): where everything is on the stack. */
typedef struct exchange {
    lua_State *L;
    jr_server *srv;
    jr_buf *out;
    jr_decoder d;
    jr_kinds kinds;
    int data, methods, msgh, ctx, cb;   /* stack indices; cb 0 when absent */
    int log;                            /* endpoints: log(message, traceback,
                                           req) for plain errors when the
                                           server has no on_error hook; 0 */
    int defer;                          /* endpoints: on_defer (stack index),
                                           and handlers run in coroutines; 0
                                           for handle(): handlers run under
                                           pcall */
    int runner;                         /* endpoints: runner(fn, ...) ->
                                           ok, a, b: runs a handler in its
                                           coroutine, and completes it there
                                           when it had to wait */
    int batch_state;                    /* slot of the batch's state table,
                                           nil until a member is deferred */
    int hooks;                          /* any hook set */
    int batch;                          /* writing an array of responses */
    jr_buf *scratch;                    /* the decoder's buffer, lent */
    int count;                          /* responses written */
    char err[JR_ERRLEN];
} exchange;

/* Fields of a deferred handler's job, and of a batch's state. */
#define JOB_THREAD 1
#define JOB_ID "id"          /* raw id text; absent for notifications */
#define JOB_REQ "req"
#define JOB_BATCH "batch"
#define BATCH_PENDING "pending"   /* deferred members not answered yet */
#define BATCH_PARTS "parts"       /* response texts so far */
#define BATCH_OPEN "open"         /* still being read: do not send yet */

static void give_back(jr_buf *b);

/* Raising out of a dispatch (a callback failed, memory ran out): the
 * buffers it borrowed go back first, or every later dispatch would find
 * them lent and allocate fresh ones. */
static void release_exchange(exchange *x)
{
    give_back(x->out);
    give_back(x->scratch);
}

static void exchange_error(exchange *x, const char *message)
{
    release_exchange(x);
    luaL_error(x->L, "%s", message);
}

/* lua_call for the callbacks a dispatch makes (on_response, on_defer):
 * an error they raise goes on up, after the buffers are back. */
static void call_out(exchange *x, int nargs)
{
    if (lua_pcall(x->L, nargs, 0, 0) != 0) {
        release_exchange(x);
        lua_error(x->L);
    }
}

/* The server at 1: its metatable is compared with an upvalue, which is
 * cheaper than luaL_checkudata's registry lookup on every call. */
static jr_server *check_server(lua_State *L)
{
    void *p = lua_touserdata(L, 1);
    int ok = p != NULL && lua_getmetatable(L, 1);
    if (ok) {
        ok = lua_rawequal(L, -1, UPVAL_SERVER_MT);
        lua_pop(L, 1);
    }
    if (!ok)
        luaL_typerror_compat(L, 1, SERVER_MT);
    return (jr_server *)p;
}

/* ---- message handler: keeps the traceback of plain errors ---- */

static void push_traceback(lua_State *L, const char *msg)
{
#if LUA_VERSION_NUM >= 502 || defined(LUAJIT_VERSION)
    luaL_traceback(L, L, msg, 1);
#else
    lua_getglobal(L, "debug");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "traceback");
        lua_remove(L, -2);
        lua_pushstring(L, msg);
        lua_pushinteger(L, 2);
        if (lua_pcall(L, 2, 1, 0) == 0 && lua_isstring(L, -1))
            return;
    }
    lua_pop(L, 1);
    lua_pushstring(L, msg);
#endif
}

/* Error values pass through; anything else becomes a failure table
 * {message, traceback}, captured before the stack unwinds. */
static int capture_failure(lua_State *L)
{
    const char *msg;
    if (jr_is_error(L, 1))
        return 1;
    msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    lua_createtable(L, 2, 0);
    lua_pushstring(L, msg);
    lua_rawseti(L, -2, 1);
    push_traceback(L, msg);
    lua_rawseti(L, -2, 2);
    luaL_newmetatable(L, FAILURE_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* ---- the runner of handler coroutines, in C where the API allows ----
 *
 * runner(fn, ...) -> ok, a, b runs a handler in its coroutine under a
 * protected call that may yield (lua_pcallk, Lua 5.3+). A handler that
 * returns without waiting hands its outcome back to the dispatcher that
 * resumed it, without any Lua code of ours. Otherwise (it waited, or it
 * failed: Lua finishes a failed pcallk in a coroutine through its
 * continuation too) the endpoint's finish(co, ok, a, b) (upvalue 1)
 * decides: it completes a handler that waited, and returns the outcome of
 * one that did not. Lua 5.1 and LuaJIT have no continuations; the
 * endpoint uses its Lua runner there. */
#if LUA_VERSION_NUM >= 503
static int runner_outcome(lua_State *L, int status)
{
    int ok = status == LUA_OK || status == LUA_YIELD;
    lua_pushboolean(L, ok);
    lua_replace(L, 1);   /* the message handler's slot */
    if (!ok)
        lua_pushnil(L);   /* ok, err, nil */
    lua_settop(L, 3);
    return 3;
}

static int runner_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    runner_outcome(L, status);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushthread(L);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_call(L, 4, 3);
    return 3;
}

static int runner(lua_State *L)
{
    int nargs = lua_gettop(L) - 1, status;
    lua_pushcfunction(L, capture_failure);
    lua_insert(L, 1);
    status = lua_pcallk(L, nargs, 2, 1, 0, runner_resumed);
    return runner_outcome(L, status);
}

/* core._runner(finish) -> runner, or nil where it must be Lua. */
static int l_runner(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushcclosure(L, runner, 1);
    return 1;
}
#else
static int l_runner(lua_State *L)
{
    lua_pushnil(L);
    return 1;
}
#endif

static int is_failure(lua_State *L, int idx)
{
    int same;
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, FAILURE_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* ---- building the request table for hooks ---- */

static void push_id_value(exchange *x, const jr_envelope *e)
{
    jr_codec_limits lim = { 1, (size_t)-1, JR_NO_BUDGET };
    if (!(e->seen & JR_M_ID) || !e->id_ok
        || jr_decode(x->L, e->id, e->id_len, &lim, x->kinds.mt_array, x->kinds.mt_object,
                     x->d.scratch, x->err) != 0)
        lua_pushnil(x->L);
}

/* req = {method, params, id, notification, context} in slot JR_S_REQ. Must
 * run before the call, which consumes the arguments. */
static void build_req(exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    int i;
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
    push_id_value(x, e);
    lua_setfield(L, -2, "id");
    lua_pushboolean(L, e != NULL && !(e->seen & JR_M_ID));
    lua_setfield(L, -2, "notification");
    lua_pushvalue(L, x->ctx);
    lua_setfield(L, -2, "context");
    lua_replace(L, e->base + JR_S_REQ);
}

/* ---- hooks ---- */

/* Calls the on_error hook with (message, traceback, req), or else the
 * connection's log; errors in it are dropped (there is nowhere left to
 * report them). */
static void report(exchange *x, int req, const char *message, const char *traceback)
{
    lua_State *L = x->L;
    lua_rawgeti(L, x->data, D_ON_ERROR);
    if (lua_isnil(L, -1) && x->log) {
        lua_pop(L, 1);
        lua_pushvalue(L, x->log);
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

/* Turns the failure (or other non-error value) at idx into an Internal error
 * value pushed on the stack, reporting it to on_error. */
static void push_internal_error(exchange *x, int idx, int req)
{
    lua_State *L = x->L;
    const char *msg, *tb;
    idx = jr_absindex(L, idx);
    if (is_failure(L, idx)) {
        lua_rawgeti(L, idx, 1);
        lua_rawgeti(L, idx, 2);
    } else {
        lua_pushstring(L, lua_tostring(L, idx) ? lua_tostring(L, idx) : "not enough memory");
        lua_pushliteral(L, "");
    }
    msg = lua_tostring(L, -2);
    tb = lua_tostring(L, -1);
    report(x, req, msg, tb);
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

/* Calls hook D_* with (req, ...) protected; a raised error value is left on
 * top and 1 returned; 0 when it returned normally (or is not set). A plain
 * error in a hook answers Internal error. */
static int call_hook(exchange *x, int hook, int req, int nargs)
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
    if (!jr_is_error(L, -1)) {
        push_internal_error(x, -1, req);
        lua_remove(L, -2);
    }
    return 1;
}

/* ---- writing responses ---- */

static int begin_response(exchange *x)
{
    if (x->batch && x->count > 0 && jr_buf_addc(x->out, ',') != 0)
        return -1;
    x->count++;
    return 0;
}

static jr_id id_of(const jr_envelope *e)
{
    jr_id id = { NULL, 0 };
    if (e != NULL && (e->seen & JR_M_ID) && e->id_ok && !(e->id_len == 4 && e->id[0] == 'n')) {
        id.text = e->id;
        id.len = e->id_len;
    }
    return id;
}

/* Reports to on_response (req, result, err) when set. */
static void notify_response(exchange *x, const jr_envelope *e, int result, int err)
{
    lua_State *L = x->L;
    int req;
    if (!x->hooks)
        return;
    req = e ? e->base + JR_S_REQ : 0;
    if (!req || lua_isnil(L, req)) {   /* a message too broken to read */
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, x->ctx);
        lua_setfield(L, -2, "context");
        req = lua_gettop(L);
    }
    if (result) lua_pushvalue(L, result); else lua_pushnil(L);
    if (err) lua_pushvalue(L, err); else lua_pushnil(L);
    if (call_hook(x, D_ON_RESPONSE, req, 2))
        lua_pop(L, 1);   /* a failing logger does not change the answer */
    if (req != (e ? e->base + JR_S_REQ : 0))
        lua_remove(L, req);
}

/* Takes back a response that could not be encoded (the separator too);
 * writes why into `why`. */
static void take_back(exchange *x, size_t mark, const char *what, char *why, size_t size)
{
    x->out->len = mark;
    x->count--;
    snprintf(why, size, "cannot encode the %s: %s", what, x->err);
}

/* Writes the error value at err_idx as the response to e (or id null). */
static void write_error_value(exchange *x, const jr_envelope *e, int err_idx)
{
    lua_State *L = x->L;
    size_t mark = x->out->len;
    char why[JR_ERRLEN + 40];
    err_idx = jr_absindex(L, err_idx);
    if (begin_response(x) != 0)
        exchange_error(x, "not enough memory");
    if (jr_write_error(L, x->out, err_idx, id_of(e), &x->kinds, x->err) == 0) {
        notify_response(x, e, 0, err_idx);
        return;
    }
    /* its message or data cannot be sent: report that, and answer with a
     * bare Internal error, which always encodes */
    take_back(x, mark, "error", why, sizeof why);
    report(x, e ? e->base + JR_S_REQ : 0, why, "");
    jr_push_error(L, JR_INTERNAL_ERROR, "Internal error", 0);
    if (begin_response(x) != 0
        || jr_write_error(L, x->out, -1, id_of(e), &x->kinds, x->err) != 0)
        exchange_error(x, "not enough memory");
    notify_response(x, e, 0, lua_gettop(L));
    lua_pop(L, 1);
}

/* A protocol error (code, message, optional data text) for e or id null. */
static void write_protocol_error(exchange *x, const jr_envelope *e, int code,
                                 const char *message, const char *data)
{
    lua_State *L = x->L;
    if (data != NULL)
        lua_pushstring(L, data);
    jr_push_error(L, code, message, data != NULL ? -1 : 0);
    write_error_value(x, e, -1);
    lua_pop(L, data != NULL ? 2 : 1);
}

static void write_result(exchange *x, const jr_envelope *e, int idx)
{
    lua_State *L = x->L;
    size_t mark = x->out->len;   /* before the separator, which goes too */
    char why[JR_ERRLEN + 40];
    idx = jr_absindex(L, idx);
    if (begin_response(x) != 0)
        exchange_error(x, "not enough memory");
    if (jr_write_result(L, x->out, idx, id_of(e), &x->kinds, x->err) == 0) {
        notify_response(x, e, idx, 0);
        return;
    }
    take_back(x, mark, "result", why, sizeof why);
    lua_pushstring(L, why);
    push_internal_error(x, -1, e->base + JR_S_REQ);
    write_error_value(x, e, -1);
    lua_pop(L, 2);
}

/* ---- params mapping ---- */

/* Pushes the values of the declared names from the params object, after
 * checking that it holds no other name; -1 with the reason pushed. */
static int map_named(lua_State *L, int entry, int params, int nnames)
{
    int set, names, i;
    lua_rawgeti(L, entry, JR_E_NAME_SET);
    set = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, params)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, set);
        if (lua_isnil(L, -1)) {
            lua_pushfstring(L, "unknown param '%s'", lua_tostring(L, -2));
            return -1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!lua_checkstack(L, nnames + 4)) {
        lua_pushliteral(L, "too many declared params");
        return -1;
    }
    lua_rawgeti(L, entry, JR_E_NAMES);
    names = lua_gettop(L);
    for (i = 1; i <= nnames; i++) {
        lua_rawgeti(L, names, i);
        lua_rawget(L, params);
    }
    lua_remove(L, names);
    return nnames;
}

/* Leaves the handler's arguments on top of the stack (positional params are
 * there already) and returns their count, or -1 with the reason pushed. */
static int prepare_args(exchange *x, const jr_envelope *e, int entry)
{
    lua_State *L = x->L;
    int nnames = 0, nargs = 0, with_context = 0;
    if (lua_istable(L, entry)) {
        lua_rawgeti(L, entry, JR_E_NAMES);
        nnames = lua_isnil(L, -1) ? 0 : (int)lua_rawlen(L, -1);
        lua_rawgeti(L, entry, JR_E_CONTEXT);
        with_context = lua_toboolean(L, -1);
        lua_pop(L, 2);
    }
    switch (e->params) {
    case JR_P_MAPPED:   /* the args are in place */
        if (!lua_isnil(L, e->base + JR_S_PARAMS)) {
            lua_pushfstring(L, "unknown param '%s'", lua_tostring(L, e->base + JR_S_PARAMS));
            return -1;
        }
        nargs = e->nargs;
        break;
    case JR_P_ARRAY:
        if (e->nargs > JR_MAX_ARGS) {
            lua_pushfstring(L, "too many positional params (%d, at most %d)", e->nargs, JR_MAX_ARGS);
            return -1;
        }
        if (nnames > 0 && e->nargs > nnames) {
            lua_pushfstring(L, "expected at most %d params, got %d", nnames, e->nargs);
            return -1;
        }
        nargs = e->nargs;
        break;
    case JR_P_OBJECT:
        if (nnames > 0) {
            nargs = map_named(L, entry, e->base + JR_S_PARAMS, nnames);
            if (nargs < 0)
                return -1;
        } else {
            lua_pushvalue(L, e->base + JR_S_PARAMS);
            nargs = 1;
        }
        break;
    case JR_P_NULL:
        lua_pushliteral(L, "params must be an array or an object, not null");
        return -1;
    default:   /* no params */
        break;
    }
    if (with_context) {
        lua_pushvalue(L, x->ctx);
        lua_insert(L, lua_gettop(L) - nargs);   /* below the nargs args */
        nargs++;
    }
    return nargs;
}

/* ---- dispatching one message ---- */

/* "duplicate member \"NAME\"" for a message with a member given twice (a
 * proxy reading the first and a server running the last would disagree),
 * in buf; else NULL. */
static const char *duplicate_problem(const jr_envelope *e, char buf[48])
{
    if (!e->duplicate)
        return NULL;
    snprintf(buf, 48, "duplicate member \"%s\"", jr_member_name(e->duplicate));
    return buf;
}

static const char *request_problem(const jr_envelope *e, char buf[48])
{
    if (e->duplicate)
        return duplicate_problem(e, buf);
    if (!e->version_ok)
        return (e->seen & JR_M_JSONRPC) ? "\"jsonrpc\" must be \"2.0\""
                                        : "missing \"jsonrpc\": \"2.0\"";
    if (!(e->seen & JR_M_METHOD))
        return "missing method";
    if (!e->method_ok)
        return "method must be a string";
    if (e->params == JR_P_SCALAR)
        return "params must be an array or an object";
    if ((e->seen & JR_M_ID) && !e->id_ok)
        return "id must be a string, a number or null";
    return NULL;
}

/* ---- handlers in coroutines (endpoints) ---- */

/* lua_resume across versions; *nres gets the number of results. */
static int resume_thread(lua_State *co, lua_State *from, int nargs, int *nres)
{
#if LUA_VERSION_NUM >= 504
    return lua_resume(co, from, nargs, nres);
#elif LUA_VERSION_NUM >= 502
    int status = lua_resume(co, from, nargs);
    *nres = lua_gettop(co);
    return status;
#else
    int status;
    (void)from;
    status = lua_resume(co, nargs);
    *nres = lua_gettop(co);
    return status;
#endif
}

/* Pushes msg with the traceback of the (failed) coroutine co. */
static void push_thread_traceback(lua_State *L, lua_State *co, const char *msg)
{
#if LUA_VERSION_NUM >= 502 || defined(LUAJIT_VERSION)
    luaL_traceback(L, co, msg, 0);
#else
    lua_getglobal(L, "debug");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "traceback");
        lua_remove(L, -2);
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        lua_pushstring(L, msg);
        if (lua_pcall(L, 2, 1, 0) == 0 && lua_isstring(L, -1))
            return;
    }
    lua_pop(L, 1);
    lua_pushstring(L, msg);
#endif
}

/* The error value a handler's coroutine failed with (at idx, on L): an
 * error value stays; anything else becomes an Internal error, reported
 * with the coroutine's traceback. Pushes the error value. */
static void push_thread_error(exchange *x, lua_State *co, int idx, int req)
{
    lua_State *L = x->L;
    int top = lua_gettop(L);
    idx = jr_absindex(L, idx);
    if (jr_is_error(L, idx)) {
        lua_pushvalue(L, idx);
        return;
    }
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
        lua_pushstring(L, lua_tostring(L, idx));
    else
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
    lua_createtable(L, 2, 0);                  /* a failure, as capture_failure makes */
    lua_pushvalue(L, top + 1);
    lua_rawseti(L, -2, 1);
    push_thread_traceback(L, co, lua_tostring(L, top + 1));
    lua_rawseti(L, -2, 2);
    luaL_getmetatable(L, FAILURE_MT);
    lua_setmetatable(L, -2);
    push_internal_error(x, -1, req);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

/* Hands a handler that is waiting (its coroutine yielded) to the endpoint
 * as a job, to be completed by server:_complete when it finishes. */
static void defer_job(exchange *x, const jr_envelope *e, int thread)
{
    lua_State *L = x->L;
    int has_id = (e->seen & JR_M_ID) != 0;
    lua_pushvalue(L, x->defer);
    lua_createtable(L, 1, 3);
    lua_pushvalue(L, thread);
    lua_rawseti(L, -2, JOB_THREAD);
    if (has_id) {
        lua_pushlstring(L, e->id, e->id_len);
        lua_setfield(L, -2, JOB_ID);
    }
    lua_pushvalue(L, e->base + JR_S_REQ);
    lua_setfield(L, -2, JOB_REQ);
    if (has_id && x->batch) {
        if (lua_isnil(L, x->batch_state)) {
            lua_createtable(L, 0, 3);
            lua_pushinteger(L, 0);
            lua_setfield(L, -2, BATCH_PENDING);
            lua_newtable(L);
            lua_setfield(L, -2, BATCH_PARTS);
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, BATCH_OPEN);
            lua_replace(L, x->batch_state);
        }
        lua_getfield(L, x->batch_state, BATCH_PENDING);
        lua_pushinteger(L, lua_tointeger(L, -1) + 1);
        lua_setfield(L, x->batch_state, BATCH_PENDING);
        lua_pop(L, 1);
        lua_pushvalue(L, x->batch_state);
        lua_setfield(L, -2, JOB_BATCH);
    }
    call_out(x, 1);
}

/* invoke() for endpoints: the handler runs in a coroutine of its own, so it
 * may wait (call the peer) without blocking other messages. Returns 2 when
 * it is waiting and has been deferred. */
static int invoke_in_thread(exchange *x, const jr_envelope *e, int nargs)
{
    lua_State *L = x->L, *co;
    int first = lua_gettop(L) - nargs, nres, status, pooled;   /* the fn is at first */
    /* a thread whose handler finished without waiting can start another */
    lua_rawgeti(L, x->data, D_THREADS);
    pooled = (int)lua_rawlen(L, -1);
    if (pooled > 0) {
        lua_rawgeti(L, -1, pooled);
        lua_pushnil(L);
        lua_rawseti(L, -3, pooled);
        lua_remove(L, -2);
        co = lua_tothread(L, -1);
    } else {
        lua_pop(L, 1);
        co = lua_newthread(L);
    }
    lua_insert(L, first);                      /* thread, fn, args */
    lua_pushvalue(L, x->runner);
    lua_insert(L, first + 1);                  /* thread, runner, fn, args */
    lua_xmove(L, co, nargs + 2);
    status = resume_thread(co, L, nargs + 1, &nres);
    if (status == LUA_OK) {                    /* ok, a, b */
        int res = lua_gettop(L) + 1, ok;
        lua_xmove(co, L, nres);
        lua_settop(co, 0);
        lua_settop(L, res + 2);
        ok = lua_toboolean(L, res);
        lua_remove(L, res);
        lua_rawgeti(L, x->data, D_THREADS);    /* back to the pool */
        pooled = (int)lua_rawlen(L, -1);
        if (pooled < THREAD_POOL) {
            lua_pushvalue(L, first);
            lua_rawseti(L, -2, pooled + 1);
        }
        lua_pop(L, 1);
        lua_remove(L, first);                  /* the thread */
        if (!ok) {                             /* an error value or a failure */
            lua_pop(L, 1);
            if (!jr_is_error(L, -1)) {
                push_internal_error(x, -1, e->base + JR_S_REQ);
                lua_remove(L, -2);
            }
            return 1;
        }
        if (lua_isnil(L, -2) && jr_is_error(L, -1)) {
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
        return 0;
    }
    if (status == LUA_YIELD) {
        lua_settop(co, 0);                     /* what it yielded is not ours */
        defer_job(x, e, first);
        lua_settop(L, first - 1);
        return 2;
    }
    lua_xmove(co, L, 1);
    push_thread_error(x, co, -1, e->base + JR_S_REQ);
    lua_replace(L, first);
    lua_settop(L, first);
    return 1;
}

/* Runs the handler with the nargs arguments on top of the stack; leaves the
 * outcome on top: returns 0 with the result, 1 with an error value (2 when
 * deferred, endpoints only). */
static int invoke(exchange *x, const jr_envelope *e, int entry, int nargs)
{
    lua_State *L = x->L;
    int first = lua_gettop(L) - nargs;
    if (lua_istable(L, entry))
        lua_rawgeti(L, entry, JR_E_FN);
    else
        lua_pushvalue(L, entry);
    lua_insert(L, first + 1);
    if (x->defer)
        return invoke_in_thread(x, e, nargs);
    /* a notification's results go nowhere: none are asked for */
    if (lua_pcall(L, nargs, (e->seen & JR_M_ID) ? 2 : 0, x->msgh) != 0) {
        if (!jr_is_error(L, -1)) {
            push_internal_error(x, -1, e->base + JR_S_REQ);
            lua_remove(L, -2);
        }
        return 1;
    }
    if (!(e->seen & JR_M_ID))
        return 0;
    if (lua_isnil(L, -2) && jr_is_error(L, -1)) {   /* return nil, err */
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* A response from the peer (endpoints): checked, then handed to the
 * callback as (id, result, err, problem); problem says what is malformed. */
static void deliver_response(exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    const char *problem = NULL;
    int has_result = e->seen & JR_M_RESULT, has_error = e->seen & JR_M_ERROR;
    char dup[48];
    if (e->duplicate)
        problem = duplicate_problem(e, dup);
    else if (!e->version_ok)
        problem = "response without \"jsonrpc\": \"2.0\"";
    else if (!has_result && !has_error)
        problem = "response has neither result nor error";
    else if (has_result && has_error)
        problem = "response has both result and error";
    else if (!(e->seen & JR_M_ID) || !e->id_ok)
        problem = "response without a valid id";
    else if (has_error)
        problem = jr_adopt_error(L, e->base + JR_S_ERROR);
    lua_pushvalue(L, x->cb);
    push_id_value(x, e);
    if (problem == NULL && has_result) lua_pushvalue(L, e->base + JR_S_RESULT);
    else lua_pushnil(L);
    if (problem == NULL && has_error) lua_pushvalue(L, e->base + JR_S_ERROR);
    else lua_pushnil(L);
    if (problem) lua_pushstring(L, problem);
    else lua_pushnil(L);
    call_out(x, 4);
}

/* Everything for one message object read into e. */
static void process_message(exchange *x, jr_envelope *e)
{
    lua_State *L = x->L;
    const char *problem;
    char dup[48];
    int entry, nargs, is_notification = !(e->seen & JR_M_ID), failed;
    /* on a two-way connection a message without a method is a response */
    if (!(e->seen & JR_M_METHOD) && x->cb) {
        deliver_response(x, e);
        return;
    }
    problem = request_problem(e, dup);
    if (problem != NULL) {
        write_protocol_error(x, e, JR_INVALID_REQUEST, "Invalid Request", problem);
        return;
    }
    entry = e->base + JR_S_ENTRY;
    if (!e->methods) {
        lua_pushvalue(L, e->base + JR_S_METHOD);
        lua_rawget(L, x->methods);
        lua_replace(L, entry);
    }
    /* params that came before the method are decoded only now that it is
     * known to exist */
    if (e->params_at != NULL && !lua_isnil(L, entry) && jr_envelope_params(&x->d, e) != 0) {
        if (!is_notification)
            write_protocol_error(x, e, JR_INVALID_REQUEST, "Invalid Request", x->d.err);
        return;
    }
    if (x->hooks)
        build_req(x, e);
    if (call_hook(x, D_ON_REQUEST, e->base + JR_S_REQ, 0)) {
        if (!is_notification)
            write_error_value(x, e, -1);
        return;
    }
    if (lua_isnil(L, entry)) {
        if (!is_notification)
            write_protocol_error(x, e, JR_METHOD_NOT_FOUND, "Method not found", NULL);
        return;
    }
    nargs = prepare_args(x, e, entry);
    if (nargs < 0) {
        if (!is_notification)
            write_protocol_error(x, e, JR_INVALID_PARAMS, "Invalid params", lua_tostring(L, -1));
        return;
    }
    failed = invoke(x, e, entry, nargs);
    if (is_notification || failed == 2)
        return;
    if (failed)
        write_error_value(x, e, -1);
    else
        write_result(x, e, -1);
}

/* ---- whole texts and batches ---- */

/* A text that cannot be read: not JSON (-32700), or more values than the
 * budget allows (-32600). */
static void write_parse_error(exchange *x)
{
    if (x->d.over_budget)
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, "Invalid Request", x->d.err);
    else
        write_protocol_error(x, NULL, JR_PARSE_ERROR, "Parse error", x->d.err);
}

/* Reads and processes the message object at d->p; the stack returns to
 * where it was. A read error is returned (-1) for the caller to answer. */
static int message_at(exchange *x)
{
    jr_envelope e;
    int top = lua_gettop(x->L);
    e.base = top + 1;
    e.decode_results = x->cb != 0;
    e.methods = x->hooks ? 0 : x->methods;   /* hooks want params as a table */
    if (jr_envelope_read(&x->d, &e) != 0)
        return -1;
    process_message(x, &e);
    lua_settop(x->L, top);
    return 0;
}

static int count_member(jr_decoder *d, void *ud)
{
    ++*(long *)ud;
    return jr_decoder_value(d);   /* building nothing: only checked */
}

static long over_budget_batch(jr_decoder *d)
{
    snprintf(d->err, JR_ERRLEN, "batch of more than %lu values (max_values)",
             (unsigned long)d->max_values);
    d->over_budget = 1;
    return -1;
}

/* Checks the whole batch (valid JSON) and counts its members in one pass
 * that builds nothing; -1 on a parse error, or when it holds more values
 * than the budget (checked whole: no member runs then). */
static long count_batch(jr_decoder *d)
{
    const char *start = d->p;
    long n = 0;
    d->build = 0;
    if (jr_decoder_array(d, count_member, &n) != 0)
        return -1;
    jr_decoder_space(d);
    if (d->p != d->end)
        return jr_decoder_fail(d, d->p, "unexpected data after the JSON value");
    d->p = start;
    d->build = 1;
    if (d->values > d->max_values) {   /* its members might build them all */
        d->values = 0;
        return over_budget_batch(d);
    }
    d->values = 0;
    return n;
}

/* Adds the response text (without brackets) to a batch's parts; returns
 * the whole array text (pushed) once no member is pending and the batch is
 * read, else pushes nothing and returns 0. */
static int add_batch_part(lua_State *L, int state, const char *text, size_t len, int done)
{
    int n, i, parts;
    luaL_Buffer b;
    lua_getfield(L, state, BATCH_PARTS);
    if (len > 0) {
        lua_pushlstring(L, text, len);
        lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
    }
    lua_getfield(L, state, BATCH_PENDING);
    n = (int)lua_tointeger(L, -1) - done;
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, state, BATCH_PENDING);
    lua_getfield(L, state, BATCH_OPEN);
    if (n > 0 || lua_toboolean(L, -1)) {
        lua_pop(L, 2);
        return 0;
    }
    lua_pop(L, 1);
    parts = lua_gettop(L);   /* absolute: the buffer may push a box above it */
    n = (int)lua_rawlen(L, parts);
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '[');
    for (i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ',');
        lua_rawgeti(L, parts, i);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, ']');
    luaL_pushresult(&b);
    lua_remove(L, parts);
    return 1;
}

/* The end of reading a batch with deferred members: what is answered so far
 * joins the batch's parts; the array goes out when the last one finishes
 * (now, if they all finished while the batch was read). */
static void finish_open_batch(exchange *x)
{
    lua_State *L = x->L;
    size_t from = 1;   /* past '[' */
    lua_pushboolean(L, 0);
    lua_setfield(L, x->batch_state, BATCH_OPEN);
    if (add_batch_part(L, x->batch_state, x->out->data + from, x->out->len - from, 0)) {
        size_t n;
        const char *t = lua_tolstring(L, -1, &n);
        x->out->len = 0;
        if (jr_buf_add(x->out, t, n) != 0)
            exchange_error(x, "not enough memory");
        lua_pop(L, 1);
    } else {
        x->out->len = 0;
    }
}

static int batch_member(jr_decoder *d, void *ud)
{
    exchange *x = (exchange *)ud;
    if (*d->p == '{')
        return message_at(x);
    d->build = 0;
    jr_decoder_value(d);   /* checked already */
    d->build = 1;
    write_protocol_error(x, NULL, JR_INVALID_REQUEST, "Invalid Request",
                         "batch member is not an object");
    return 0;
}

static void process_batch(exchange *x)
{
    long n = count_batch(&x->d);
    char why[128];
    if (n < 0) {
        write_parse_error(x);
        return;
    }
    if (n == 0) {
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, "Invalid Request", "empty batch");
        return;
    }
    if ((size_t)n > x->srv->max_batch) {
        snprintf(why, sizeof why, "Invalid Request: batch of %ld requests exceeds max_batch (%lu)",
                 n, (unsigned long)x->srv->max_batch);
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, why, why + 17);
        return;
    }
    if (jr_buf_addc(x->out, '[') != 0)
        exchange_error(x, "not enough memory");
    x->batch = 1;
    if (jr_decoder_array(&x->d, batch_member, x) != 0)   /* checked: cannot fail */
        exchange_error(x, "batch unreadable after its check");
    if (!lua_isnil(x->L, x->batch_state)) {
        finish_open_batch(x);
        return;
    }
    if (x->count == 0)
        x->out->len = 0;   /* only notifications: nothing at all */
    else if (jr_buf_addc(x->out, ']') != 0)
        exchange_error(x, "not enough memory");
}

static void process_text(exchange *x, size_t n)
{
    jr_decoder *d = &x->d;
    char why[128];
    if (n > x->srv->max_message) {
        snprintf(why, sizeof why, "Invalid Request: message of %lu bytes exceeds max_message_size (%lu)",
                 (unsigned long)n, (unsigned long)x->srv->max_message);
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, why, why + 17);
        return;
    }
    jr_decoder_space(d);
    if (d->p < d->end && *d->p == '[') {
        process_batch(x);
    } else if (d->p < d->end && *d->p == '{') {
        jr_envelope e;
        e.base = lua_gettop(x->L) + 1;
        e.decode_results = x->cb != 0;
        e.methods = x->hooks ? 0 : x->methods;
        if (jr_envelope_read(d, &e) != 0) {
            write_parse_error(x);
            return;
        }
        jr_decoder_space(d);
        if (d->p != d->end) {
            jr_decoder_fail(d, d->p, "unexpected data after the JSON value");
            lua_settop(x->L, e.base - 1);
            write_parse_error(x);
            return;
        }
        process_message(x, &e);
    } else {
        d->build = 0;
        if (jr_decoder_value(d) != 0) {
            write_parse_error(x);
            return;
        }
        jr_decoder_space(d);
        if (d->p != d->end) {
            jr_decoder_fail(d, d->p, "unexpected data after the JSON value");
            write_parse_error(x);
            return;
        }
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, "Invalid Request",
                             "a request must be an object or an array of them");
    }
}

/* ---- entry points ---- */

/* The server's buffer, or a fresh one (pushed) while that is lent: a
 * handler called handle() again. Pushes nil otherwise, to keep the layout. */
static jr_buf *borrow(lua_State *L, jr_buf *b)
{
    if (b->lent)
        b = jr_buf_newbox(L);
    else
        lua_pushnil(L);
    b->lent = 1;
    b->len = 0;
    return b;
}

static void give_back(jr_buf *b)
{
    b->lent = 0;
    jr_buf_trim(b, BUF_KEEP);
}

/* The stack a dispatch works on: data, methods, msgh, the two buffers, the
 * batch state (nil) from slot `at` on. */
static void open_exchange(lua_State *L, exchange *x, jr_server *srv, int at, jr_buf **scratch)
{
    luaL_checkstack(L, 40, "jsonrpc dispatch");
    lua_settop(L, at - 1);
    x->L = L;
    x->srv = srv;
    jr_get_uservalue(L, 1);
    x->data = at;
    lua_rawgeti(L, x->data, D_METHODS);
    x->methods = at + 1;
    lua_pushvalue(L, UPVAL_MSGH);
    x->msgh = at + 2;
    x->out = borrow(L, srv->out);                      /* at + 3 */
    *scratch = borrow(L, srv->scratch);                /* at + 4 */
    x->scratch = *scratch;
    lua_pushnil(L);
    x->batch_state = at + 5;
    x->kinds.mt_array = UPVAL_ARRAY_MT;
    x->kinds.mt_object = UPVAL_OBJECT_MT;
    x->kinds.max_depth = srv->max_depth;
    x->hooks = srv->hooks;
    x->batch = 0;
    x->count = 0;
}

/* Pushes what was written (or nil), or hands it to the sink, and returns
 * the buffers. */
static int close_exchange(exchange *x, jr_buf *scratch, jr_sink *sink)
{
    lua_State *L = x->L;
    lua_settop(L, x->batch_state);
    if (sink != NULL) {
        if (x->out->len > 0)
            sink->put(sink, x->out->data, x->out->len);
        lua_pushnil(L);
    } else if (x->out->len > 0) {
        lua_pushlstring(L, x->out->data, x->out->len);
    } else {
        lua_pushnil(L);
    }
    give_back(x->out);
    give_back(scratch);
    return 1;
}

/* handle(text, context) and, for endpoints,
 * _receive(text, context, on_response, on_defer, runner [, sink, length
 * [, log]]): a stream passes its text in place, as a light userdata and a
 * length; log hears of plain errors when the server has no on_error. */
static int run(lua_State *L, int endpoint)
{
    exchange x;
    jr_server *srv = check_server(L);
    jr_buf *scratch;
    jr_sink *sink = NULL;
    size_t n;
    const char *s;
    if (endpoint) {
        luaL_checktype(L, 4, LUA_TFUNCTION);
        luaL_checktype(L, 5, LUA_TFUNCTION);
        luaL_checktype(L, 6, LUA_TFUNCTION);
        if (lua_islightuserdata(L, 7))
            sink = (jr_sink *)lua_touserdata(L, 7);
    }
    if (sink != NULL && lua_islightuserdata(L, 2)) {
        s = (const char *)lua_touserdata(L, 2);
        n = (size_t)luaL_checknumber(L, 8);
    } else {
        luaL_checktype(L, 2, LUA_TSTRING);
        s = lua_tolstring(L, 2, &n);
    }
    open_exchange(L, &x, srv, 10, &scratch);
    x.ctx = 3;
    x.log = endpoint && lua_isfunction(L, 9) ? 9 : 0;
    x.cb = endpoint ? 4 : 0;
    x.defer = endpoint ? 5 : 0;
    x.runner = endpoint ? 6 : 0;
    jr_decoder_init(&x.d, L, s, n, srv->max_depth, UPVAL_ARRAY_MT, UPVAL_OBJECT_MT, scratch, x.err);
    jr_decoder_budget(&x.d, srv->max_values);
    process_text(&x, n);
    return close_exchange(&x, scratch, sink);
}

/* server:_complete(job, ok, a, b [, log]): the outcome of a deferred
 * handler, as coroutine.resume returned it. Returns the text to send (its
 * response, or its batch's array once the last member is done) or nil. */
static int l_complete(lua_State *L)
{
    exchange x;
    jr_envelope e;
    jr_server *srv = check_server(L);
    jr_buf *scratch;
    lua_State *co;
    int ok, failed, result, job = 2;
    size_t len;
    luaL_checktype(L, job, LUA_TTABLE);
    ok = lua_toboolean(L, 3);
    lua_settop(L, 6);                              /* 4, 5: the two results */
    open_exchange(L, &x, srv, 7, &scratch);        /* 7..12 */
    lua_pushnil(L);
    lua_replace(L, 3);                             /* 3: the context */
    x.ctx = 3;
    x.log = lua_isfunction(L, 6) ? 6 : 0;
    x.cb = x.defer = x.runner = 0;
    /* a read-back envelope: the raw id and the request (slot JR_S_REQ) */
    lua_getfield(L, job, JOB_REQ);                 /* 13 */
    e.base = lua_gettop(L) - JR_S_REQ;
    lua_getfield(L, job, JOB_ID);                  /* 14 */
    e.id = lua_tolstring(L, -1, &len);
    e.id_len = len;
    e.id_ok = 1;
    e.seen = e.id != NULL ? JR_M_ID : 0;
    lua_rawgeti(L, job, JOB_THREAD);
    co = lua_tothread(L, -1);                      /* 15 */
    if (lua_istable(L, 13)) {
        lua_getfield(L, 13, "context");
        lua_replace(L, 3);
    }
    if (!ok && (jr_is_error(L, 4) || is_failure(L, 4))) {
        lua_pushvalue(L, 4);
        if (!jr_is_error(L, -1)) {
            push_internal_error(&x, -1, 13);
            lua_remove(L, -2);
        }
        failed = 1;
    } else if (!ok) {   /* raised past the runner (Lua 5.1): the thread is dead */
        push_thread_error(&x, co, 4, 13);
        failed = 1;
    } else if (lua_isnil(L, 4) && jr_is_error(L, 5)) {
        lua_pushvalue(L, 5);
        failed = 1;
    } else {
        lua_pushvalue(L, 4);
        failed = 0;
    }
    result = lua_gettop(L);
    if (e.id == NULL)   /* a notification: nothing to answer */
        return close_exchange(&x, scratch, NULL);
    lua_getfield(L, job, JOB_BATCH);
    x.batch = 0;
    if (failed)
        write_error_value(&x, &e, result);
    else
        write_result(&x, &e, result);
    if (!lua_isnil(L, -1)) {                       /* a member of a batch */
        int batch = lua_gettop(L);
        int whole = add_batch_part(L, batch, x.out->data, x.out->len, 1);
        x.out->len = 0;
        if (whole) {
            const char *t = lua_tolstring(L, -1, &len);
            if (jr_buf_add(x.out, t, len) != 0)
                exchange_error(&x, "not enough memory");
        }
    }
    return close_exchange(&x, scratch, NULL);
}

static int l_handle(lua_State *L)
{
    return run(L, 0);
}

static int l_receive(lua_State *L)
{
    return run(L, 1);
}

/* ---- construction and registration ---- */

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
        "max_message_size", "max_values", "on_request", "on_response", "on_error", NULL};
    jr_check_options(L, 1, names);
    srv->max_batch = jr_opt_size(L, 1, "max_batch", JR_DEFAULT_MAX_BATCH, 1, 100000000);
    srv->max_values = jr_opt_size(L, 1, "max_values", JR_DEFAULT_MAX_VALUES, 1, JR_OPT_SIZE_MAX);
    srv->max_depth = (int)jr_opt_size(L, 1, "max_depth", JR_DEFAULT_MAX_DEPTH, 2,
                                      JR_LIMIT_MAX_DEPTH);
    srv->max_message = jr_opt_size(L, 1, "max_message_size", JR_DEFAULT_MAX_SIZE, 1,
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
    luaL_getmetatable(L, SERVER_MT);
    lua_setmetatable(L, 2);
    read_options(L, srv);
    srv->hooks = 0;
    lua_createtable(L, 6, 0);
    lua_newtable(L);
    lua_rawseti(L, -2, D_METHODS);
    srv->out = jr_buf_newbox(L);
    lua_rawseti(L, -2, D_OUT);
    srv->scratch = jr_buf_newbox(L);
    lua_rawseti(L, -2, D_SCRATCH);
    lua_newtable(L);
    lua_rawseti(L, -2, D_THREADS);
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

/* fn as a closure over the upvalues UPVAL_* (the server metatable at mt). */
static void push_with_upvalues(lua_State *L, lua_CFunction fn, int mt)
{
    lua_pushvalue(L, mt);
    lua_pushcfunction(L, capture_failure);
    jr_push_kind_mts(L);
    lua_pushcclosure(L, fn, 4);
}

void jr_dispatch_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"method", l_method},
        {"handle", l_handle},
        {"_receive", l_receive},
        {"_complete", l_complete},
        {"on_request", l_on_request},
        {"on_response", l_on_response},
        {"on_error", l_on_error},
        {NULL, NULL},
    };
    int i, mt;
    luaL_newmetatable(L, FAILURE_MT);
    lua_pop(L, 1);
    luaL_newmetatable(L, SERVER_MT);
    mt = lua_gettop(L);
    lua_newtable(L);
    for (i = 0; methods[i].name != NULL; i++) {
        push_with_upvalues(L, methods[i].func, mt);
        lua_setfield(L, -2, methods[i].name);
    }
    lua_setfield(L, mt, "__index");
    /* no __gc: everything a server owns hangs off its uservalue, in boxes
     * that free themselves */
    push_with_upvalues(L, l_server, mt);
    lua_setfield(L, mt - 1, "server");
    lua_pushcfunction(L, capture_failure);   /* for the endpoints' xpcall */
    lua_setfield(L, mt - 1, "_capture_failure");
    lua_pushcfunction(L, l_runner);
    lua_setfield(L, mt - 1, "_runner");
    lua_pop(L, 1);
}
