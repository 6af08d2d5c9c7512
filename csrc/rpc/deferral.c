/* Handing handlers back to the caller, and writing their answers when
 * their outcomes come back (deferral.h). */
#include <stdlib.h>
#include <string.h>
#include "deferral.h"
#include "exchange.h"


static jr_deferred *add_member(jr_deferral *d)
{
    if (d->count == d->cap) {
        long cap = d->cap ? 2 * d->cap : 8;
        jr_deferred *members = (jr_deferred *)realloc(d->members, (size_t)cap * sizeof *members);
        if (members == NULL)
            return NULL;
        d->members = members;
        d->cap = cap;
    }
    return &d->members[d->count++];
}

int jr_defer(jr_exchange *x, const jr_envelope *e, int nargs)
{
    lua_State *L = x->L;
    jr_deferral *d = x->deferral;
    jr_deferred *m = add_member(d);
    int has_id = (e->seen & JR_M_ID) != 0, i;
    if (m == NULL)
        jr_exchange_error(x, "not enough memory");
    m->at = d->used;
    m->nargs = nargs;
    m->slot = -1;
    m->settled = 0;
    m->id_kind = !has_id ? DEFERRED_NO_ID
                         : e->id_len <= JR_DEFERRED_ID ? DEFERRED_ID_HERE : DEFERRED_ID_KEPT;
    m->id_len = e->id_len;
    if (m->id_kind == DEFERRED_ID_HERE) {
        memcpy(m->id, e->id, e->id_len);
    } else if (m->id_kind == DEFERRED_ID_KEPT) {
        lua_pushlstring(L, e->id, e->id_len);
        lua_rawseti(L, x->dv, m->at + M_ID);
    }
    if (x->hooks) {
        lua_pushvalue(L, e->base + JR_S_REQ);
        lua_rawseti(L, x->dv, m->at + M_REQ);
    }
    d->lone = !x->batch;
    if (d->lone && nargs <= JR_LONE_ARGS) {   /* the handler and its arguments stay on top */
        d->on_stack = 1;
        d->used += M_FN;
        return 2;
    }
    for (i = nargs; i >= 0; i--)   /* the last argument is on top */
        lua_rawseti(L, x->dv, m->at + M_FN + i);
    d->used += M_FN + nargs + 1;
    if (has_id) {
        m->slot = jr_exchange_reserve(x);
        if (d->batch == NULL) {
            d->batch = x->waiting;
            jr_batch_ref(d->batch);
        }
    }
    return 2;
}

/* The answer written for member m, b->len bytes of b (none when 0), goes
 * to its text: returns 1 with the text's answer on top when whole. -1
 * when memory ran out (nothing pushed). */
static int deliver(lua_State *L, jr_deferral *d, jr_deferred *m, jr_buf *b)
{
    int whole;
    m->settled = 1;
    d->settled++;
    if (d->lone) {
        if (b->len > 0)
            lua_pushlstring(L, b->data, b->len);
        else
            lua_pushnil(L);
        return 1;
    }
    if (m->slot < 0)
        return 0;
    whole = jr_batch_answer(d->batch, m->slot, b->data, b->len);
    b->len = 0;
    if (whole == 1)
        lua_pushlstring(L, d->batch->parts.data, d->batch->parts.len);
    return whole;
}

int jr_deferral_settle(jr_exchange *x, jr_deferral *d, long i, int ok)
{
    lua_State *L = x->L;
    jr_deferred *m = &d->members[i];
    jr_envelope e;
    size_t len = m->id_len;
    int failed, whole;
    if (x->hooks)
        lua_rawgeti(L, x->dv, m->at + M_REQ);
    else
        lua_pushnil(L);
    e.base = lua_gettop(L) - JR_S_REQ;   /* a read-back envelope: the request */
    e.id = m->id;
    if (m->id_kind == DEFERRED_ID_KEPT) {
        lua_rawgeti(L, x->dv, m->at + M_ID);
        e.id = lua_tolstring(L, -1, &len);
    }
    e.id_len = len;
    e.id_ok = 1;
    e.seen = m->id_kind != DEFERRED_NO_ID ? JR_M_ID : 0;
    failed = jr_push_outcome(x, L, lua_toboolean(L, ok), ok + 1, e.base + JR_S_REQ);
    if (e.seen) {
        if (failed)
            jr_write_error_of(x, &e, -1);
        else
            jr_write_result_of(x, &e, -1);
    }
    whole = deliver(L, d, m, x->out);
    if (whole < 0)
        jr_exchange_error(x, "not enough memory");
    return whole;
}

int jr_deferral_settle_result(lua_State *L, jr_deferral *d, long i, int ok, const jr_kinds *k)
{
    jr_deferred *m = &d->members[i];
    jr_buf *b = d->out;
    char err[JR_ERRLEN];
    int whole;
    /* not: a failure (reported), nil (perhaps nil, err), hooks, long ids */
    if (!lua_toboolean(L, ok) || d->srv->hooks || m->id_kind == DEFERRED_ID_KEPT)
        return -1;
    b->len = 0;
    if (m->id_kind == DEFERRED_ID_HERE) {
        jr_id id;
        if (lua_isnil(L, ok + 1))
            return -1;
        id.text = m->id;
        id.len = m->id_len;
        if (jr_write_result(L, b, ok + 1, id, k, err) != 0)
            return -1;   /* the general way reports why */
    }
    whole = deliver(L, d, m, b);
    jr_buf_trim(b, JR_BUF_KEEP);
    if (whole < 0)
        luaL_error(L, "not enough memory");
    return whole;
}

void jr_deferral_reset(lua_State *L, jr_deferral *d, int dv)
{
    int k;
    for (k = DV_FIRST; k < d->used; k++) {
        lua_pushnil(L);
        lua_rawseti(L, dv, k);
    }
    d->used = DV_FIRST;
    d->count = d->settled = 0;
    d->lone = d->on_stack = 0;
    d->busy = 0;
    if (d->batch != NULL) {
        jr_batch_unref(d->batch);
        d->batch = NULL;
    }
}
