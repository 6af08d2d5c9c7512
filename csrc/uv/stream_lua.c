/* Streams for Lua (internal: lua/jsonrpc/transport.lua wraps them).
 *
 * stream:write(text) -> queued bytes | nil, err     stream:close([reason])
 * stream:on_message(fn(text | nil, err))    stream:on_close(fn(reason))
 * stream:flush() -> queued bytes    stream:on_drain(fn())
 * stream:high_water([bytes]) -> bytes
 * stream:timeouts(frame, idle, send)   stream:on_eof(fn())
 * stream:serve(endpoint [, max_in_flight])    stream:shutdown([reason])
 * stream:pause()   stream:resume()   stream:finish([reason])
 * stream:peer() -> address    stream:is_closing()    stream:queued() -> bytes
 * stream:unsent() -> bytes */
#include <stdio.h>
#include "stream.h"

static jr_stream **check_box(lua_State *L)
{
    return (jr_stream **)luaL_checkudata(L, 1, JR_STREAM_MT);
}

static jr_stream *check_open(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s == NULL)
        luaL_argerror(L, 1, "stream is closed");
    return s;
}

static int l_write(lua_State *L)
{
    jr_stream *s = *check_box(L);
    const char *text, *why;
    size_t n;
    luaL_checktype(L, 2, LUA_TSTRING);
    text = lua_tolstring(L, 2, &n);
    if (s == NULL || uv_is_closing(&s->u.handle)) {
        lua_pushnil(L);
        lua_pushstring(L, s == NULL ? "closed" : s->reason);
        return 2;
    }
    why = jr_stream_check(s, text, n);
    if (why != NULL)
        return luaL_argerror(L, 2, why);
    if (jr_stream_write(s, text, n) != 0)
        return luaL_error(L, "not enough memory");
    if (uv_is_closing(&s->u.handle)) {
        lua_pushnil(L);
        lua_pushstring(L, s->reason);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)jr_stream_queued(s));
    return 1;
}

/* stream:flush(): writes what is collected now; returns the bytes still
 * queued, and if any, on_drain is called once they are written. */
static int l_flush(lua_State *L)
{
    jr_stream *s = *check_box(L);
    lua_pushinteger(L, s == NULL || uv_is_closing(&s->u.handle) ? 0
                                                               : (lua_Integer)jr_stream_flush(s));
    return 1;
}

/* stream:pause() / stream:resume(): stop and restart reading. */
static int l_pause(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL)
        jr_stream_pause(s);
    return 0;
}

static int l_resume(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL)
        jr_stream_resume(s);
    return 0;
}

/* stream:finish([reason]): closes once what is queued has been written. */
static int l_finish(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL)
        jr_stream_finish(s, luaL_optstring(L, 2, "closed"));
    return 0;
}

/* stream:shutdown([reason]): reads no more requests, lets the endpoint's
 * handlers in flight finish and their answers be written, then closes. */
static int l_shutdown(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL)
        jr_stream_shutdown(s, luaL_optstring(L, 2, "closed"));
    return 0;
}

static int l_close(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL)
        jr_stream_close(s, luaL_optstring(L, 2, "closed"));
    return 0;
}

/* Keeps the value at 2 (of type `type`) in the registry, in *ref. */
static int set_ref(lua_State *L, int *ref, int type)
{
    luaL_checktype(L, 2, type);
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    lua_pushvalue(L, 2);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int l_on_message(lua_State *L)
{
    return set_ref(L, &check_open(L)->on_message, LUA_TFUNCTION);
}

static int l_on_close(lua_State *L)
{
    return set_ref(L, &check_open(L)->on_close, LUA_TFUNCTION);
}

static int l_on_drain(lua_State *L)
{
    return set_ref(L, &check_open(L)->on_drain, LUA_TFUNCTION);
}

/* stream:on_eof(fn): the peer has shut down its side: fn() fails the
 * calls waiting on it; the requests it sent are still answered, then the
 * stream closes (without an endpoint, it closes at once). */
static int l_on_eof(lua_State *L)
{
    return set_ref(L, &check_open(L)->on_eof, LUA_TFUNCTION);
}

static double opt_seconds(lua_State *L, int idx)
{
    lua_Number v = luaL_optnumber(L, idx, 0);
    luaL_argcheck(L, v >= 0 && v < 1e9, idx, "seconds out of range");
    return (double)v;
}

/* stream:timeouts(frame, idle, send): seconds, nil or 0 for none. */
static int l_timeouts(lua_State *L)
{
    jr_stream *s = check_open(L);
    int rc = jr_deadline_set(s, opt_seconds(L, 2), opt_seconds(L, 3), opt_seconds(L, 4));
    if (rc != 0)
        return luaL_error(L, "timeouts: %s", uv_strerror(rc));
    return 0;
}

/* stream:serve(endpoint [, max_in_flight]): messages go to the endpoint
 * rather than on_message (which still hears of framing errors), and its
 * answers come back through the sink; reading stops while max_in_flight
 * handlers wait (0 or nil: no limit). */
static int l_serve(lua_State *L)
{
    jr_stream *s = check_open(L);
    jr_endpoint *ep = jr_to_endpoint(L, 2);
    lua_Number max = luaL_optnumber(L, 3, 0);
    luaL_argcheck(L, ep != NULL, 2, "jsonrpc.endpoint expected");
    luaL_argcheck(L, max >= 0 && max < 1e9, 3, "max_in_flight out of range");
    lua_settop(L, 2);
    luaL_unref(L, LUA_REGISTRYINDEX, s->ep_ref);
    jr_stream_serve(s, ep, luaL_ref(L, LUA_REGISTRYINDEX), (int)max);
    return 0;
}

static int l_is_closing(lua_State *L)
{
    jr_stream *s = *check_box(L);
    lua_pushboolean(L, s == NULL || uv_is_closing(&s->u.handle));
    return 1;
}

static int l_queued(lua_State *L)
{
    jr_stream *s = *check_box(L);
    lua_pushinteger(L, s == NULL ? 0 : (lua_Integer)jr_stream_queued(s));
    return 1;
}

/* stream:unsent(): the bytes not yet handed to the kernel (queued counts
 * also those it took whose writes were not called back yet). */
static int l_unsent(lua_State *L)
{
    jr_stream *s = *check_box(L);
    lua_pushinteger(L, s == NULL ? 0 : (lua_Integer)jr_stream_unsent(s));
    return 1;
}

/* The peer's address: "ip:port" ("[ip]:port" for IPv6) or a socket path. */
static int l_peer(lua_State *L)
{
    jr_stream *s = check_open(L);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64];
    if (s->u.handle.type == UV_TCP
        && uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            lua_pushfstring(L, "[%s]:%d", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            lua_pushfstring(L, "%s:%d", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
        }
        return 1;
    }
    lua_pushliteral(L, "local");
    return 1;
}

/* stream:high_water([bytes]) -> bytes: sets the mark when given; returns
 * the one in effect. */
static int l_high_water(lua_State *L)
{
    jr_stream *s = check_open(L);
    if (!lua_isnoneornil(L, 2)) {
        lua_Number n = luaL_checknumber(L, 2);
        luaL_argcheck(L, n >= 1, 2, "must be at least 1");
        s->high_water = (size_t)n;
    }
    lua_pushnumber(L, (lua_Number)s->high_water);
    return 1;
}

static int l_tostring(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s == NULL)
        lua_pushliteral(L, "jsonrpc.stream (closed)");
    else
        lua_pushfstring(L, "jsonrpc.stream: %p", (void *)s);
    return 1;
}

static int l_gc(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL)   /* only when the Lua state closes: open streams are referenced */
        jr_stream_close(s, "the Lua state closed");
    return 0;
}

void jr_stream_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"write", l_write},
        {"close", l_close},
        {"on_message", l_on_message},
        {"on_close", l_on_close},
        {"on_drain", l_on_drain},
        {"on_eof", l_on_eof},
        {"timeouts", l_timeouts},
        {"flush", l_flush},
        {"serve", l_serve},
        {"is_closing", l_is_closing},
        {"queued", l_queued},
        {"unsent", l_unsent},
        {"peer", l_peer},
        {"high_water", l_high_water},
        {"pause", l_pause},
        {"resume", l_resume},
        {"finish", l_finish},
        {"shutdown", l_shutdown},
        {NULL, NULL},
    };
    lua_newtable(L);   /* core.defaults: the limits' defaults, for the Lua layer */
    lua_pushnumber(L, (lua_Number)JR_DEFAULT_MAX_MESSAGE);
    lua_setfield(L, -2, "max_message_size");
    lua_pushnumber(L, (lua_Number)JR_LISTEN_MAX_MESSAGE);
    lua_setfield(L, -2, "listen_max_message_size");
    lua_pushnumber(L, (lua_Number)JR_LISTEN_HIGH_WATER);
    lua_setfield(L, -2, "listen_write_high_water");
    lua_pushinteger(L, JR_LISTEN_FRAME_TIMEOUT);
    lua_setfield(L, -2, "frame_timeout");
    lua_pushinteger(L, JR_LISTEN_SEND_TIMEOUT);
    lua_setfield(L, -2, "send_timeout");
    lua_setfield(L, -2, "defaults");
    jr_class(L, JR_STREAM_MT, methods, l_gc, l_tostring);
}

