#include <string.h>
#include "envelope.h"

static int member_of(const char *k, size_t n)
{
#define IS(word) (n == sizeof word - 1 && memcmp(k, word, n) == 0)
    if (IS("jsonrpc")) return JR_M_JSONRPC;
    if (IS("method")) return JR_M_METHOD;
    if (IS("params")) return JR_M_PARAMS;
    if (IS("id")) return JR_M_ID;
    if (IS("result")) return JR_M_RESULT;
    if (IS("error")) return JR_M_ERROR;
    return 0;
#undef IS
}

/* A value that is checked but not kept. */
static int skip_value(jr_decoder *d)
{
    int rc;
    d->build = 0;
    rc = jr_decoder_value(d);
    d->build = 1;
    return rc;
}

/* The value at d->p into stack slot `slot` (or checked only, when keep is 0
 * and the slot becomes nil). */
static int read_into(jr_decoder *d, jr_envelope *e, int slot, int keep)
{
    if (!keep) {
        lua_pushnil(d->L);
        lua_replace(d->L, e->base + slot);
        return skip_value(d);
    }
    if (jr_decoder_value(d) != 0)
        return -1;
    lua_replace(d->L, e->base + slot);
    return 0;
}

static int read_version(jr_decoder *d, jr_envelope *e)
{
    const char *s;
    size_t n;
    if (*d->p != '"') {
        e->version_ok = 0;
        return skip_value(d);
    }
    if (jr_decoder_string(d, &s, &n) != 0)
        return -1;
    e->version_ok = (n == 3 && memcmp(s, "2.0", 3) == 0);
    return 0;
}

/* The method's name, and (without hooks) its registry entry looked up at
 * once; every request comes this way, so the stack work is kept short. */
static int read_method(jr_decoder *d, jr_envelope *e)
{
    lua_State *L = d->L;
    const char *s;
    size_t n;
    e->method_ok = (*d->p == '"');
    if (!e->method_ok)
        return read_into(d, e, JR_S_METHOD, 0);
    if (jr_decoder_string(d, &s, &n) != 0)
        return -1;
    lua_pushlstring(L, s, n);
    if (!e->methods) {
        lua_replace(L, e->base + JR_S_METHOD);
        return 0;
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, e->methods);
    jr_store2(L, e->base + JR_S_ENTRY, e->base + JR_S_METHOD);
    return 0;
}

static int read_id(jr_decoder *d, jr_envelope *e)
{
    const char *start = d->p;
    char c = *start;
    e->id_ok = (c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 'n');
    if (skip_value(d) != 0)
        return -1;
    e->id = start;
    e->id_len = (size_t)(d->p - start);
    return 0;
}

/* Positional params: each element pushed as one more argument (past
 * JR_MAX_ARGS only counted, and refused later). */
static int push_arg(jr_decoder *d, void *ud)
{
    jr_envelope *e = (jr_envelope *)ud;
    e->nargs++;
    if (e->nargs > JR_MAX_ARGS)
        return skip_value(d);
    if (!lua_checkstack(d->L, 8))
        return jr_decoder_fail(d, d->p, "Lua stack exhausted");
    return jr_decoder_value(d);
}

/* Named params of a method with declared names: each member's value goes
 * straight into its name's argument slot; the first unknown name is kept
 * (in slot JR_S_PARAMS) for the error. */
typedef struct mapping {
    jr_envelope *e;
    int set;   /* the entry's name -> position table */
} mapping;

static int map_member(jr_decoder *d, void *ud, const char *k, size_t n)
{
    mapping *m = (mapping *)ud;
    lua_State *L = d->L;
    int slot;
    lua_pushlstring(L, k, n);
    lua_pushvalue(L, -1);
    lua_rawget(L, m->set);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (lua_isnil(L, m->e->base + JR_S_PARAMS))
            lua_replace(L, m->e->base + JR_S_PARAMS);
        else
            lua_pop(L, 1);
        return skip_value(d);
    }
    slot = m->e->base + JR_S_ARGS + (int)lua_tointeger(L, -1) - 1;
    lua_pop(L, 2);
    if (jr_decoder_value(d) != 0)
        return -1;
    lua_replace(L, slot);
    return 0;
}

/* The entry's name -> position table when named params can be mapped as
 * they are read (the method came first and declares names): pushed, and
 * the argument slots reserved; else 0 and nothing pushed. */
static int mapping_for(lua_State *L, jr_envelope *e)
{
    int entry = e->base + JR_S_ENTRY, nnames, i;
    if (!e->methods || !lua_istable(L, entry))
        return 0;
    lua_rawgeti(L, entry, JR_E_NAMES);
    nnames = lua_isnil(L, -1) ? 0 : (int)lua_rawlen(L, -1);
    lua_pop(L, 1);
    if (nnames == 0 || !lua_checkstack(L, nnames + 8))
        return 0;
    for (i = 0; i < nnames; i++)
        lua_pushnil(L);
    e->nargs = nnames;
    lua_rawgeti(L, entry, JR_E_NAME_SET);
    return lua_gettop(L);
}

/* The params slot back to nil. */
static void clear_params(lua_State *L, const jr_envelope *e)
{
    if (!lua_isnil(L, e->base + JR_S_PARAMS)) {
        lua_pushnil(L);
        lua_replace(L, e->base + JR_S_PARAMS);
    }
}

static int decode_params(jr_decoder *d, jr_envelope *e)
{
    /* only the slots below the arguments (lua_settop costs even when it
     * changes nothing, and this is every request's path) */
    if (lua_gettop(d->L) != e->base + JR_S_ARGS - 1)
        lua_settop(d->L, e->base + JR_S_ARGS - 1);
    e->nargs = 0;
    switch (*d->p) {
    case '[':
        e->params = JR_P_ARRAY;
        clear_params(d->L, e);
        return jr_decoder_array(d, push_arg, e);
    case '{': {
        int set = mapping_for(d->L, e), rc;
        mapping m;
        clear_params(d->L, e);
        if (set == 0) {
            e->params = JR_P_OBJECT;
            return read_into(d, e, JR_S_PARAMS, 1);
        }
        e->params = JR_P_MAPPED;
        m.e = e;
        m.set = set;
        rc = jr_decoder_object(d, map_member, &m);
        lua_settop(d->L, set - 1);
        return rc;
    }
    case 'n':
        e->params = JR_P_NULL;
        return read_into(d, e, JR_S_PARAMS, 0);
    default:
        e->params = JR_P_SCALAR;
        return read_into(d, e, JR_S_PARAMS, 0);
    }
}

/* Params now when their method is known and exists; skipped when it is
 * known not to (nothing built: a flood of tiny arrays to an unknown
 * method costs nothing); else left for jr_envelope_params. */
static int read_params(jr_decoder *d, jr_envelope *e)
{
    char c = *d->p;
    if (c != '[' && c != '{')
        return decode_params(d, e);   /* null or a scalar: nothing to build */
    if (e->methods && (e->seen & JR_M_METHOD)) {
        if (e->method_ok && !lua_isnil(d->L, e->base + JR_S_ENTRY))
            return decode_params(d, e);
        e->params = c == '[' ? JR_P_ARRAY : JR_P_OBJECT;
        return skip_value(d);
    }
    e->params = c == '[' ? JR_P_ARRAY : JR_P_OBJECT;
    e->params_at = d->p;
    return skip_value(d);
}

int jr_envelope_params(jr_decoder *d, jr_envelope *e)
{
    const char *resume = d->p;
    int rc;
    d->p = e->params_at;
    d->depth++;   /* inside the message object, as when first read */
    e->params_at = NULL;
    rc = decode_params(d, e);
    d->depth--;
    d->p = resume;
    return rc;
}

const char *jr_member_name(int m)
{
    switch (m) {
    case JR_M_JSONRPC: return "jsonrpc";
    case JR_M_METHOD: return "method";
    case JR_M_PARAMS: return "params";
    case JR_M_ID: return "id";
    case JR_M_RESULT: return "result";
    default: return "error";
    }
}

static int read_member(jr_decoder *d, jr_envelope *e, int member)
{
    if (d->p >= d->end)
        return jr_decoder_fail(d, d->p, "unexpected end of input");
    if (e->seen & member) {   /* given twice: which one counts is ambiguous */
        if (!e->duplicate)
            e->duplicate = member;
        return skip_value(d);
    }
    e->seen |= member;
    switch (member) {
    case JR_M_JSONRPC: return read_version(d, e);
    case JR_M_METHOD: return read_method(d, e);
    case JR_M_PARAMS: return read_params(d, e);
    case JR_M_ID: return read_id(d, e);
    case JR_M_RESULT: return read_into(d, e, JR_S_RESULT, e->decode_results);
    case JR_M_ERROR: return read_into(d, e, JR_S_ERROR, e->decode_results);
    default: return skip_value(d);
    }
}

static int on_member(jr_decoder *d, void *ud, const char *k, size_t n)
{
    return read_member(d, (jr_envelope *)ud, member_of(k, n));
}

int jr_envelope_read(jr_decoder *d, jr_envelope *e)
{
    e->seen = e->version_ok = e->method_ok = e->id_ok = e->duplicate = 0;
    e->params_at = NULL;
    e->params = JR_P_NONE;
    e->nargs = 0;
    e->id = NULL;
    e->id_len = 0;
    lua_settop(d->L, e->base + JR_S_ARGS - 1);   /* the slots, all nil */
    if (jr_decoder_object(d, on_member, e) == 0)
        return 0;
    lua_settop(d->L, e->base - 1);
    return -1;
}
