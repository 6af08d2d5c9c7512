/* jsonrpc.framer(kind [, opts]): the framing state machines for Lua, a thin
 * wrapper over the C API in framing.h.
 *
 *   f:feed(bytes)    -> messages, err   (err only on a framing error)
 *   f:frame(payload) -> bytes
 *   f:buffered()     -> bytes held
 *   f:kind()         -> "content-length" | "be32" | "ndjson"
 *   f:reset()        -> back to new (clears a broken state)
 *
 * Wrong arguments raise; framing errors are returned. */
#include <stdio.h>
#include "framing.h"
#include "common/class.h"
#include "common/options.h"

#define FRAMER_MT "jsonrpc.framer"

static jr_framer *check_framer(lua_State *L)
{
    return (jr_framer *)luaL_checkudata(L, 1, FRAMER_MT);
}

static int l_framer(lua_State *L)
{
    static const char *const option_names[] = {"max_message_size", "max_header_size", NULL};
    const char *name = luaL_checkstring(L, 1);
    size_t max_message = JR_DEFAULT_MAX_MESSAGE, max_header = JR_DEFAULT_MAX_HEADER;
    jr_frame_kind kind;
    jr_framer *f;
    void *ud;
    lua_Alloc alloc;
    if (jr_frame_kind_parse(name, &kind) != 0)
        return luaL_argerror(L, 1, lua_pushfstring(L,
            "unknown framing '%s' (expected 'content-length', 'be32' or 'ndjson')", name));
    jr_check_options(L, 2, option_names);
    max_message = jr_opt_size(L, 2, "max_message_size", max_message, 0, JR_OPT_SIZE_MAX);
    max_header = jr_opt_size(L, 2, "max_header_size", max_header, 1, JR_OPT_SIZE_MAX);
    alloc = lua_getallocf(L, &ud);
    f = (jr_framer *)lua_newuserdata(L, sizeof *f);
    jr_framer_init(f, kind, max_message, max_header, alloc, ud);
    luaL_getmetatable(L, FRAMER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* Every complete message as a string, in order. ndjson goes on past an
 * oversized line (so no message waits in the buffer for more input), and
 * the first such error of this feed is returned; content-length and be32
 * stop at their error. */
static int l_feed(lua_State *L)
{
    jr_framer *f = check_framer(L);
    const char *s, *msg;
    size_t n, len;
    int r, count = 0, err = 0;
    luaL_checktype(L, 2, LUA_TSTRING);
    s = lua_tolstring(L, 2, &n);
    lua_settop(L, 2);
    r = jr_framer_feed(f, s, n);
    if (r == JR_FRAMER_NOMEM)
        return luaL_error(L, "not enough memory");
    lua_newtable(L);
    if (r != 0) {
        lua_pushstring(L, jr_framer_error(f));
        err = 1;
    }
    while (r == 0 && (r = jr_framer_next(f, &msg, &len)) != 0) {
        if (r == 1) {
            lua_pushlstring(L, msg, len);
            lua_rawseti(L, 3, ++count);
        } else if (!err) {
            lua_pushstring(L, jr_framer_error(f));
            err = 1;
        }
        r = jr_framer_broken(f) ? -1 : 0;
    }
    jr_framer_shrink(f);
    return 1 + err;
}

static int l_frame(lua_State *L)
{
    jr_framer *f = check_framer(L);
    char hdr[JR_FRAME_HEADER_MAX];
    const char *payload, *why;
    size_t n;
    luaL_checktype(L, 2, LUA_TSTRING);
    payload = lua_tolstring(L, 2, &n);
    why = jr_frame_check(f->kind, payload, n);
    if (why != NULL)
        return luaL_argerror(L, 2, why);
    n = jr_frame_header_write(f->kind, n, hdr);
    lua_pushlstring(L, hdr, n);
    lua_pushvalue(L, 2);
    if (f->kind == JR_FRAME_NDJSON)
        lua_pushliteral(L, "\n");
    lua_concat(L, f->kind == JR_FRAME_NDJSON ? 3 : 2);
    return 1;
}

/* framer:push(bytes) -> nil | err: buffers bytes without taking the
 * messages out (framer:next or an endpoint's receive_from does). */
static int l_push(lua_State *L)
{
    jr_framer *f = check_framer(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    int r = jr_framer_feed(f, s, n);
    if (r == JR_FRAMER_NOMEM)
        return luaL_error(L, "not enough memory");
    if (r != 0) {
        lua_pushstring(L, jr_framer_error(f));
        return 1;
    }
    return 0;
}

/* framer:next() -> message | nil [, err]: the next complete message. */
static int l_next(lua_State *L)
{
    jr_framer *f = check_framer(L);
    const char *msg;
    size_t len;
    int r = jr_framer_next(f, &msg, &len);
    if (r == 1) {
        lua_pushlstring(L, msg, len);
        return 1;
    }
    lua_pushnil(L);
    if (r == 0) {
        jr_framer_shrink(f);
        return 1;
    }
    lua_pushstring(L, jr_framer_error(f));
    return 2;
}

/* framer:refusal() -> text | nil: the answer to the last framing error. */
static int l_refusal(lua_State *L)
{
    jr_framer *f = check_framer(L);
    char text[JR_REFUSAL_MAX];
    if (jr_framer_error(f)[0] == '\0') {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, text, jr_framer_refusal(f, text));
    return 1;
}

static int l_buffered(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)jr_framer_buffered(check_framer(L)));
    return 1;
}

static int l_kind(lua_State *L)
{
    lua_pushstring(L, jr_frame_kind_name(check_framer(L)->kind));
    return 1;
}

static int l_reset(lua_State *L)
{
    jr_framer_reset(check_framer(L));
    return 0;
}

static int l_tostring(lua_State *L)
{
    jr_framer *f = check_framer(L);
    char s[JR_FRAMER_ERRLEN + 64];
    if (jr_framer_broken(f))
        snprintf(s, sizeof s, "jsonrpc.framer(%s): broken: %s",
                 jr_frame_kind_name(f->kind), jr_framer_error(f));
    else
        snprintf(s, sizeof s, "jsonrpc.framer(%s): %llu bytes buffered",
                 jr_frame_kind_name(f->kind), (unsigned long long)jr_framer_buffered(f));
    lua_pushstring(L, s);
    return 1;
}

static int l_gc(lua_State *L)
{
    jr_framer_free(check_framer(L));
    return 0;
}

jr_frame_kind jr_check_framing(lua_State *L, int idx)
{
    jr_frame_kind kind;
    if (jr_frame_kind_parse(luaL_checkstring(L, idx), &kind) != 0)
        luaL_argerror(L, idx, "unknown framing (expected 'content-length', 'be32' or 'ndjson')");
    return kind;
}

void jr_framing_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "feed", l_feed },
        { "frame", l_frame },
        { "refusal", l_refusal },
        { "push", l_push },
        { "next", l_next },
        { "buffered", l_buffered },
        { "kind", l_kind },
        { "reset", l_reset },
        { NULL, NULL }
    };
    jr_class(L, FRAMER_MT, methods, l_gc, l_tostring);
    lua_pushcfunction(L, l_framer);
    lua_setfield(L, -2, "framer");
}
