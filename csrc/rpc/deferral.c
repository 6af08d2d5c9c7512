/* Handing handlers back to the caller, and writing their answers when
 * their outcomes come back (deferral.h). */
#include <stdlib.h>
#include "deferral.h"
#include "exchange.h"

/* Offsets of a member's values from its `at`. */
enum { M_ID, M_REQ, M_FN };

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
    if (has_id)
        lua_pushlstring(L, e->id, e->id_len);
    else
        lua_pushboolean(L, 0);
    lua_rawseti(L, x->dv, m->at + M_ID);
    lua_pushvalue(L, e->base + JR_S_REQ);
    lua_rawseti(L, x->dv, m->at + M_REQ);
    if (!x->batch) {   /* the handler and its arguments stay on top */
        d->lone = 1;
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

int jr_deferral_settle(jr_exchange *x, jr_deferral *d, long i, int ok)
{
    lua_State *L = x->L;
    jr_deferred *m = &d->members[i];
    jr_envelope e;
    size_t len = 0;
    int failed, whole;
    lua_rawgeti(L, x->dv, m->at + M_REQ);
    e.base = lua_gettop(L) - JR_S_REQ;   /* a read-back envelope: the request */
    lua_rawgeti(L, x->dv, m->at + M_ID);
    e.id = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    e.id_len = len;
    e.id_ok = 1;
    e.seen = e.id != NULL ? JR_M_ID : 0;
    m->settled = 1;
    d->settled++;
    failed = jr_push_outcome(x, L, lua_toboolean(L, ok), ok + 1, e.base + JR_S_REQ);
    if (e.id != NULL) {
        if (failed)
            jr_write_error_of(x, &e, -1);
        else
            jr_write_result_of(x, &e, -1);
    }
    if (d->lone) {
        if (x->out->len > 0)
            lua_pushlstring(L, x->out->data, x->out->len);
        else
            lua_pushnil(L);
        return 1;
    }
    if (m->slot < 0)
        return 0;
    whole = jr_batch_answer(d->batch, m->slot, x->out->data, x->out->len);
    x->out->len = 0;
    if (whole < 0)
        jr_exchange_error(x, "not enough memory");
    if (whole == 1)
        lua_pushlstring(L, d->batch->parts.data, d->batch->parts.len);
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
    d->lone = 0;
    d->busy = 0;
    if (d->batch != NULL) {
        jr_batch_unref(d->batch);
        d->batch = NULL;
    }
}
