/* Where an endpoint's texts go: the sink of the driver that serves it, or
 * the Lua send function it was made with; nowhere once its driver has
 * closed. */
#include "errors.h"
#include "exchange.h"

/* A connection closed under us: nobody is left to answer. */
static int is_closed_error(lua_State *L, int idx)
{
    int closed;
    if (!jr_is_error(L, idx))
        return 0;
    lua_getfield(L, idx, "code");
    closed = lua_tointeger(L, -1) == JR_CONNECTION_CLOSED;
    lua_pop(L, 1);
    return closed;
}

void jr_endpoint_flush(jr_exchange *x)
{
    lua_State *L = x->L;
    jr_endpoint *ep = x->ep;
    if (ep->detached) {
        jr_exchange_release(x);
        return;
    }
    if (ep->sink != NULL) {
        jr_sink *sink = ep->sink;
        /* a sink that cannot take it has closed its driver for that */
        if (x->out->len > 0)
            (void)sink->put(sink, x->tag, x->out->data, x->out->len);
        jr_exchange_release(x);
        if (!x->owed && sink->done != NULL && ep->sink == sink)
            sink->done(sink, x->tag);
        return;
    }
    if (x->out->len == 0) {
        jr_exchange_release(x);
        return;
    }
    lua_rawgeti(L, x->epv, EP_SEND);
    lua_pushlstring(L, x->out->data, x->out->len);
    jr_exchange_release(x);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        if (!is_closed_error(L, -1))
            lua_error(L);
        lua_pop(L, 1);
    }
}

