/* The endpoint's engine: a message in (jr_endpoint_receive), responses to
 * our calls matched by their raw id text, texts out through the sink. */
#include <stdio.h>
#include <string.h>
#include "errors.h"
#include "exchange.h"

void jr_endpoint_attach(jr_endpoint *ep, jr_sink *sink)
{
    ep->sink = sink;
    ep->detached = sink == NULL;
}

int jr_endpoint_busy(const jr_endpoint *ep)
{
    return ep->in_flight > 0 || ep->pending > 0;
}

void jr_endpoint_receive(lua_State *L, int epi, const char *text, size_t len,
                         unsigned long tag)
{
    jr_exchange x;
    jr_endpoint *ep = (jr_endpoint *)lua_touserdata(L, epi);
    int top = lua_gettop(L);
    epi = jr_absindex(L, epi);
    jr_get_uservalue(L, epi);
    lua_rawgeti(L, top + 1, EP_SERVER);
    lua_rawgeti(L, top + 1, EP_CONTEXT);
    jr_exchange_open(&x, L, (jr_server *)lua_touserdata(L, top + 2), top + 2, top + 3, ep, epi,
                     top + 1);
    x.tag = tag;
    jr_exchange_text(&x, text, len);
    jr_endpoint_flush(&x);
    lua_settop(L, top);
}

int jr_endpoint_deliver(lua_State *L)
{
    const jr_delivery *d = (const jr_delivery *)lua_touserdata(L, 2);
    jr_endpoint_receive(L, 1, d->text, d->len, d->tag);
    return 0;
}

/* Calls the function below the nargs values on top: an error it raises
 * goes to the endpoint's report function, or, without one, on up (after
 * the exchange's buffers are back). */
static void call_out(jr_exchange *x, int nargs)
{
    lua_State *L = x->L;
    if (lua_pcall(L, nargs, 0, 0) == 0)
        return;
    lua_rawgeti(L, x->epv, EP_REPORT);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        jr_exchange_release(x);   /* the buffers go back before the error goes up */
        lua_error(L);
    }
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) != 0)
        lua_pop(L, 1);
}

/* on_stray(reason, id) for a response no call can take. */
static void stray(jr_exchange *x, const jr_envelope *e, const char *reason)
{
    lua_State *L = x->L;
    lua_rawgeti(L, x->epv, EP_ON_STRAY);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushstring(L, reason);
    jr_push_id_value(x, e);
    call_out(x, 2);
}

/* What is malformed in the response e, or NULL. */
static const char *response_problem(jr_exchange *x, const jr_envelope *e, char dup[48])
{
    int has_result = e->seen & JR_M_RESULT, has_error = e->seen & JR_M_ERROR;
    if (e->duplicate) {
        snprintf(dup, 48, "duplicate member \"%s\"", jr_member_name(e->duplicate));
        return dup;
    }
    if (!e->version_ok)
        return "response without \"jsonrpc\": \"2.0\"";
    if (!has_result && !has_error)
        return "response has neither result nor error";
    if (has_result && has_error)
        return "response has both result and error";
    if (!(e->seen & JR_M_ID) || !e->id_ok)
        return "response without a valid id";
    if (has_error)
        return jr_adopt_error(x->L, e->base + JR_S_ERROR);
    return NULL;
}

/* Pushes the settle function of the call waiting for id (or nil) and
 * takes it out of the table. */
static void take_call(jr_exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    int pending;
    lua_rawgeti(L, x->epv, EP_PENDING);
    pending = lua_gettop(L);
    lua_pushlstring(L, e->id, e->id_len);
    lua_pushvalue(L, -1);
    lua_rawget(L, pending);
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, -2);
        lua_pushnil(L);
        lua_rawset(L, pending);
        x->ep->pending--;
    }
    lua_replace(L, pending);
    lua_settop(L, pending);
}

/* Whether id is of a call given up (a timeout): its late answer is
 * dropped quietly, and forgotten. */
static int late_answer(jr_exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    int late;
    if (x->ep->timed_out == 0)
        return 0;
    lua_rawgeti(L, x->epv, EP_TIMED_OUT);
    lua_pushlstring(L, e->id, e->id_len);
    lua_rawget(L, -2);
    late = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (late) {
        lua_pushlstring(L, e->id, e->id_len);
        lua_pushnil(L);
        lua_rawset(L, -3);
        x->ep->timed_out--;
    }
    lua_pop(L, 1);
    return late;
}

void jr_endpoint_response(jr_exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    char dup[48];
    const char *problem = response_problem(x, e, dup);
    int has_id = (e->seen & JR_M_ID) && e->id_ok;
    if (has_id)
        take_call(x, e);
    else
        lua_pushnil(L);
    if (lua_isnil(L, -1) && has_id && late_answer(x, e)) {
        lua_pop(L, 1);
        return;
    }
    if (problem != NULL) {
        char why[120];
        stray(x, e, problem);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return;
        }
        snprintf(why, sizeof why, "invalid response: %s", problem);
        lua_pushnil(L);
        jr_push_local_error(L, JR_INVALID_RESPONSE, why);
        call_out(x, 2);
        return;
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        stray(x, e, "no call waits for this id (unknown or already answered)");
        return;
    }
    if (e->seen & JR_M_RESULT) {
        lua_pushvalue(L, e->base + JR_S_RESULT);
        lua_pushnil(L);
    } else {
        lua_pushnil(L);
        lua_pushvalue(L, e->base + JR_S_ERROR);
    }
    call_out(x, 2);
}
