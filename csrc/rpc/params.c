/* Params to the handler's arguments: positional params are on the stack
 * already (envelope.c decodes them there); named params were mapped to
 * their declared names while read (envelope.c), or are mapped here from
 * the params table (they came before the method, or hooks asked for the
 * table); a method without declared names takes the object itself. */
#include "exchange.h"

static int unknown_param(lua_State *L, int name)
{
    lua_pushfstring(L, "unknown param '%s'", lua_tostring(L, name));
    return -1;
}

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
        if (lua_isnil(L, -1))
            return unknown_param(L, -2);
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

int jr_prepare_args(jr_exchange *x, const jr_envelope *e, int entry)
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
        if (!lua_isnil(L, e->base + JR_S_PARAMS))
            return unknown_param(L, e->base + JR_S_PARAMS);
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
        jr_push_context(x);
        lua_insert(L, lua_gettop(L) - nargs);   /* below the nargs args */
        nargs++;
    }
    return nargs;
}
