/* Texts we send as the calling side: requests and notifications, encoded
 * straight from the Lua values. core.request(method [, params [, id]]):
 * with an id a request, without one a notification. params must be a table
 * (a sequence becomes an array, string keys an object, jsonrpc.array{} and
 * jsonrpc.object{} the empty ones) or nil (left out). */
#include <stdio.h>
#include "codec/codec.h"
#include "outgoing.h"

#define UPVAL_SCRATCH lua_upvalueindex(1)
#define UPVAL_ARRAY_MT lua_upvalueindex(2)
#define UPVAL_OBJECT_MT lua_upvalueindex(3)
#define KEEP (64u << 10)   /* buffer capacity kept between calls */

/* Appends member and the value at idx; NULL, or why it cannot. */
static const char *add_value(lua_State *L, jr_buf *b, const char *member, size_t mlen, int idx,
                             char err[JR_ERRLEN])
{
    jr_codec_limits lim = { JR_DEFAULT_MAX_DEPTH, (size_t)-1, JR_NO_BUDGET };
    if (jr_buf_add(b, member, mlen) != 0)
        return "not enough memory";
    if (jr_encode(L, idx, b, &lim, UPVAL_ARRAY_MT, UPVAL_OBJECT_MT, err) != 0)
        return err;
    return NULL;
}

static const char *write_request(lua_State *L, jr_buf *b, char err[JR_ERRLEN])
{
    static const char head[] = "{\"jsonrpc\":\"2.0\"";
    const char *why;
    if (jr_buf_add(b, head, sizeof head - 1) != 0)
        return "not enough memory";
    if ((why = add_value(L, b, ",\"method\":", 10, 1, err)) != NULL)
        return why;
    if (!lua_isnil(L, 2) && (why = add_value(L, b, ",\"params\":", 10, 2, err)) != NULL)
        return why;
    if (!lua_isnil(L, 3) && (why = add_value(L, b, ",\"id\":", 6, 3, err)) != NULL)
        return why;
    return jr_buf_addc(b, '}') != 0 ? "not enough memory" : NULL;
}

static int l_request(lua_State *L)
{
    char err[JR_ERRLEN];
    const char *why;
    jr_buf *b;
    int t;
    luaL_checktype(L, 1, LUA_TSTRING);
    t = lua_type(L, 2);
    if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TTABLE)
        return luaL_argerror(L, 2, "params must be a table (array or object) or nil");
    t = lua_type(L, 3);
    if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TNUMBER && t != LUA_TSTRING)
        return luaL_argerror(L, 3, "id must be a number, a string or nil");
    lua_settop(L, 3);
    b = (jr_buf *)lua_touserdata(L, UPVAL_SCRATCH);
    if (b->lent)
        b = jr_buf_newbox(L);
    b->lent = 1;
    b->len = 0;
    why = write_request(L, b, err);
    if (why == NULL)
        lua_pushlstring(L, b->data, b->len);
    b->lent = 0;
    jr_buf_trim(b, KEEP);
    if (why != NULL)
        return luaL_error(L, "cannot encode the request: %s", why);
    return 1;
}

void jr_outgoing_open(lua_State *L)
{
    jr_buf_newbox(L);
    jr_push_kind_mts(L);
    lua_pushcclosure(L, l_request, 3);
    lua_setfield(L, -2, "request");
}
