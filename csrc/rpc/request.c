/* Texts we send as the calling side: requests and notifications, encoded
 * straight from the Lua values. core.request(method [, params [, id]]):
 * with an id a request, without one a notification. params must be a table
 * (a sequence becomes an array, string keys an object, jsonrpc.array{} and
 * jsonrpc.object{} the empty ones) or nil (left out). An endpoint's calls
 * take their ids from the endpoint instead (endpoint_lua.c). */
#include <stdio.h>
#include "request.h"

#define UPVAL_SCRATCH lua_upvalueindex(1)
#define UPVAL_ARRAY_MT lua_upvalueindex(2)
#define UPVAL_OBJECT_MT lua_upvalueindex(3)

/* Appends member and the value at idx; NULL, or why it cannot. */
static const char *add_value(lua_State *L, jr_buf *b, const char *member, size_t mlen, int idx,
                             int mt_array, int mt_object, char err[JR_ERRLEN])
{
    jr_codec_limits lim = { JR_DEFAULT_MAX_DEPTH, (size_t)-1, JR_NO_BUDGET, 0 };
    if (jr_buf_add(b, member, mlen) != 0)
        return "not enough memory";
    if (jr_encode(L, idx, b, &lim, mt_array, mt_object, err) != 0)
        return err;
    return NULL;
}

const char *jr_write_request_head(lua_State *L, jr_buf *b, int method_idx, int params_idx,
                                  int mt_array, int mt_object, char err[JR_ERRLEN])
{
    static const char head[] = "{\"jsonrpc\":\"2.0\"";
    const char *why;
    if (jr_buf_add(b, head, sizeof head - 1) != 0)
        return "not enough memory";
    if ((why = add_value(L, b, ",\"method\":", 10, method_idx, mt_array, mt_object, err)) != NULL)
        return why;
    if (!lua_isnil(L, params_idx))
        return add_value(L, b, ",\"params\":", 10, params_idx, mt_array, mt_object, err);
    return NULL;
}

void jr_check_request_args(lua_State *L, int method_idx, int params_idx)
{
    int t = lua_type(L, params_idx);
    luaL_checktype(L, method_idx, LUA_TSTRING);
    if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TTABLE)
        luaL_argerror(L, params_idx, "params must be a table (array or object) or nil");
}

void jr_push_request(lua_State *L, jr_buf *b, int method_idx, int params_idx, const char *id,
                     size_t id_len, int id_idx, int mt_array, int mt_object)
{
    char err[JR_ERRLEN];
    const char *why;
    b = jr_buf_borrow(L, b);
    why = jr_write_request_head(L, b, method_idx, params_idx, mt_array, mt_object, err);
    if (why == NULL && id != NULL
        && (jr_buf_add(b, ",\"id\":", 6) != 0 || jr_buf_add(b, id, id_len) != 0))
        why = "not enough memory";
    if (why == NULL && id_idx != 0)
        why = add_value(L, b, ",\"id\":", 6, id_idx, mt_array, mt_object, err);
    if (why == NULL && jr_buf_addc(b, '}') != 0)
        why = "not enough memory";
    if (why == NULL) {
        lua_pushlstring(L, b->data, b->len);
        lua_remove(L, -2);   /* the borrowed box (or nil) */
    }
    jr_buf_return(b);
    if (why != NULL)
        luaL_error(L, "cannot encode the request: %s", why);
}

static int l_request(lua_State *L)
{
    int t;
    jr_check_request_args(L, 1, 2);
    t = lua_type(L, 3);
    if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TNUMBER && t != LUA_TSTRING)
        return luaL_argerror(L, 3, "id must be a number, a string or nil");
    lua_settop(L, 3);
    jr_push_request(L, (jr_buf *)lua_touserdata(L, UPVAL_SCRATCH), 1, 2, NULL, 0,
                    lua_isnil(L, 3) ? 0 : 3, UPVAL_ARRAY_MT, UPVAL_OBJECT_MT);
    return 1;
}

void jr_request_open(lua_State *L)
{
    jr_buf_newbox(L);
    jr_push_kind_mts(L);
    lua_pushcclosure(L, l_request, 3);
    lua_setfield(L, -2, "request");
}
