/* core.listen(kind, where, port, framing, max_message, on_connection
 *             [, limits]) -> listener | nil, err
 *   limits: {max_connections = n, max_connections_per_address = n,
 *            max_buffered_bytes = n, on_error = fn(message)} (see listen_limits.h);
 *   connections beyond them are accepted and closed at once, and on_error
 *   hears of it at most once a second
 * core.connect(kind, where, port, framing, max_message, on_connect)
 *   on_connect(stream) once connected, on_connect(nil, err) on failure
 * kind is "tcp" (where: a host or address, port: a number, 0 picks one) or
 * "unix" (where: a socket path).
 * listener:address() -> host, port (tcp) | path (unix)
 * listener:connections() -> open, max_connections
 * listener:close()    listener:is_closing() */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "socket.h"
#include "stream.h"

#define LISTENER_MT "jsonrpc.listener"
/* Connections the kernel queues before we accept them (the usual 511 of
 * servers: under load, a short queue refuses clients the limits would
 * have admitted). */
#define LISTEN_BACKLOG 511

typedef struct jr_listener {
    jr_handle h;              /* first */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    jr_frame_kind kind;
    size_t max_message;
    int on_connection;        /* registry ref */
    int on_error;             /* registry ref, or LUA_NOREF */
    jr_limits *limits;
    char path[256];           /* unix: removed on close */
} jr_listener;

typedef struct connect_req {
    uv_connect_t req;
    jr_stream *s;
    int on_connect;           /* registry ref */
} connect_req;

/* ---- addresses ---- */

/* Resolves host:port (numeric addresses first, then the system's resolver,
 * synchronously); 0 or a libuv error. */
static int resolve(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *out)
{
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    char service[16];
    int rc;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0
        || uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%d", port);
    rc = uv_getaddrinfo(loop, &req, NULL, host, service, &hints);
    if (rc != 0)
        return rc;
    memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

static int is_tcp(lua_State *L)
{
    static const char *const kinds[] = {"tcp", "unix", NULL};
    return luaL_checkoption(L, 1, NULL, kinds) == 0;
}

/* The arguments listen and connect share: kind, where, port, framing,
 * max_message, callback. */
typedef struct place {
    int tcp;
    const char *where;        /* host or socket path */
    int port;
    jr_frame_kind kind;
    size_t max_message;
} place;

static void read_place(lua_State *L, place *p)
{
    p->tcp = is_tcp(L);
    p->where = luaL_checkstring(L, 2);
    p->port = p->tcp ? (int)luaL_checkinteger(L, 3) : 0;
    p->kind = jr_check_framing(L, 4);
    p->max_message = (size_t)luaL_checknumber(L, 5);
    luaL_checktype(L, 6, LUA_TFUNCTION);
    if (p->tcp && (p->port < 0 || p->port > 65535))
        luaL_argerror(L, 3, "port out of range");
}

/* nil, "what: why", and the libuv error's name ("ECONNREFUSED"). */
static int push_failure(lua_State *L, const char *what, int rc)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, uv_strerror(rc));
    lua_pushstring(L, uv_err_name(rc));
    return 3;
}

/* ---- listening ---- */

static void on_listener_closed(jr_handle *h)
{
    jr_listener *l = (jr_listener *)h;
    if (!h->loop->closing) {
        luaL_unref(h->loop->cbL, LUA_REGISTRYINDEX, l->on_connection);
        luaL_unref(h->loop->cbL, LUA_REGISTRYINDEX, l->on_error);
    }
    if (l->limits != NULL)
        jr_limits_unref(l->limits);
    if (l->path[0] != '\0')
        unlink(l->path);
}

/* A refused connection or a failed accept, told to on_error at most once
 * a second (with how many there were meanwhile): a flood of them must not
 * flood the log too. */
static void refused(jr_listener *l, const char *why)
{
    lua_State *L = l->h.loop->cbL;
    jr_limits *lim = l->limits;
    uint64_t now = uv_now(l->h.loop->uv);
    lim->refused++;
    if (l->on_error == LUA_NOREF || (lim->logged_at != 0 && now - lim->logged_at < 1000))
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, l->on_error);
    if (lim->refused > 1)
        lua_pushfstring(L, "listener: %s: %d connections refused in the last second", why,
                        (int)lim->refused);
    else
        lua_pushfstring(L, "listener: %s: a connection was refused", why);
    if (jr_loop_call(l->h.loop, 1) != 0)
        lua_pop(L, 1);
    lim->logged_at = now;
    lim->refused = 0;
}

static void connection_cb(uv_stream_t *server, int status)
{
    jr_listener *l = (jr_listener *)server->data;
    lua_State *L = l->h.loop->cbL;
    jr_stream *s;
    const char *why;
    int rc, top = lua_gettop(L);
    if (l->h.loop->closing)
        return;
    if (status < 0) {   /* out of fds, say: libuv has dropped the connection */
        refused(l, uv_strerror(status));
        return;
    }
    s = jr_stream_new(L, l->h.loop, l->kind, l->max_message);
    rc = l->u.handle.type == UV_TCP ? uv_tcp_init(l->h.loop->uv, &s->u.tcp)
                                    : uv_pipe_init(l->h.loop->uv, &s->u.pipe, 0);
    if (rc != 0) {
        jr_stream_drop(s);
        lua_settop(L, top);
        return;
    }
    jr_stream_opened(L, s, -1);
    if (uv_accept(server, &s->u.stream) != 0) {
        jr_stream_close(s, "accept failed");
        lua_settop(L, top);
        return;
    }
    if ((why = jr_stream_admit(s, l->limits)) != NULL || jr_stream_start(s) != 0) {
        if (why != NULL)
            refused(l, why);
        jr_stream_close(s, why != NULL ? why : "accept failed");
        lua_settop(L, top);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, l->on_connection);
    lua_insert(L, -2);
    if (jr_loop_call(l->h.loop, 1) != 0) {
        jr_stream_close(s, lua_tostring(L, -1) ? lua_tostring(L, -1) : "on_connection failed");
    }
    lua_settop(L, top);
}

/* limits.name as a size, or dflt when absent. */
static size_t opt_size(lua_State *L, int idx, const char *name, size_t dflt)
{
    lua_Number v;
    size_t n = dflt;
    if (lua_isnoneornil(L, idx))
        return dflt;
    lua_getfield(L, idx, name);
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (!lua_isnumber(L, -1) || v < 0 || v > 9e15)
            luaL_error(L, "%s must be a number from 0", name);
        n = (size_t)v;
    }
    lua_pop(L, 1);
    return n;
}

/* The listener's limits (argument 7) and its on_error ref. */
static jr_limits *read_limits(lua_State *L, int *on_error)
{
    size_t max_conn = opt_size(L, 7, "max_connections", 0);
    size_t per_addr = opt_size(L, 7, "max_connections_per_address", 0);
    size_t max_held = opt_size(L, 7, "max_buffered_bytes", JR_LISTEN_MAX_BUFFERED);
    jr_limits *lim;
    *on_error = LUA_NOREF;
    if (!lua_isnoneornil(L, 7)) {
        luaL_checktype(L, 7, LUA_TTABLE);
        lua_getfield(L, 7, "on_error");
        if (lua_isfunction(L, -1))
            *on_error = luaL_ref(L, LUA_REGISTRYINDEX);
        else
            lua_pop(L, 1);
    }
    lim = jr_limits_new(max_conn, per_addr, max_held);
    if (lim == NULL) {
        luaL_unref(L, LUA_REGISTRYINDEX, *on_error);
        luaL_error(L, "not enough memory");
    }
    return lim;
}

static int l_listen(lua_State *L)
{
    jr_loop *loop = jr_loop_get(L);
    place pl;
    int tcp, port, rc;
    const char *where;
    jr_listener *l;
    jr_limits *lim;
    int on_error;
    struct sockaddr_storage addr;
    read_place(L, &pl);
    tcp = pl.tcp;
    where = pl.where;
    port = pl.port;
    if (tcp && (rc = resolve(loop->uv, where, port, &addr)) != 0)
        return push_failure(L, where, rc);
    lim = read_limits(L, &on_error);
    l = (jr_listener *)jr_handle_new(L, sizeof *l, LISTENER_MT, on_listener_closed);
    rc = tcp ? uv_tcp_init(loop->uv, &l->u.tcp) : uv_pipe_init(loop->uv, &l->u.pipe, 0);
    if (rc != 0) {
        jr_handle_drop(&l->h);
        jr_limits_unref(lim);
        luaL_unref(L, LUA_REGISTRYINDEX, on_error);
        return push_failure(L, "listen", rc);
    }
    l->limits = lim;
    l->on_error = on_error;
    l->kind = pl.kind;
    l->max_message = pl.max_message;
    lua_pushvalue(L, 6);
    l->on_connection = luaL_ref(L, LUA_REGISTRYINDEX);
    l->h.uv = &l->u.handle;
    jr_handle_open(L, loop, &l->h, -1);
    rc = tcp ? uv_tcp_bind(&l->u.tcp, (const struct sockaddr *)&addr, 0)
             : uv_pipe_bind(&l->u.pipe, where);
    if (rc == 0)
        rc = uv_listen(&l->u.stream, LISTEN_BACKLOG, connection_cb);
    if (rc != 0) {
        jr_handle_close(&l->h);
        return push_failure(L, where, rc);
    }
    if (!tcp)
        snprintf(l->path, sizeof l->path, "%s", where);
    return 1;
}

static jr_listener *check_listener(lua_State *L)
{
    jr_listener *l = *(jr_listener **)luaL_checkudata(L, 1, LISTENER_MT);
    if (l == NULL)
        luaL_argerror(L, 1, "listener is closed");
    return l;
}

/* host, port for TCP (the real port when 0 was asked for); the path for
 * Unix sockets. */
static int l_address(lua_State *L)
{
    jr_listener *l = check_listener(L);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64];
    if (l->u.handle.type != UV_TCP) {
        lua_pushstring(L, l->path);
        return 1;
    }
    if (uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        lua_pushstring(L, ip);
        lua_pushinteger(L, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        lua_pushstring(L, ip);
        lua_pushinteger(L, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    return 2;
}

static int l_connections(lua_State *L)
{
    jr_listener *l = check_listener(L);
    lua_pushinteger(L, (lua_Integer)l->limits->connections);
    lua_pushinteger(L, (lua_Integer)l->limits->max_connections);
    return 2;
}


/* ---- connecting ---- */

static void connect_cb(uv_connect_t *req, int status)
{
    connect_req *c = (connect_req *)req;
    jr_stream *s = c->s;
    lua_State *L = s->h.loop->cbL;
    int top = lua_gettop(L);
    if (s->h.loop->closing) {
        free(c);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_connect);
    luaL_unref(L, LUA_REGISTRYINDEX, c->on_connect);
    if (status == 0)
        status = jr_stream_start(s);
    if (status == 0) {
        jr_handle_push(L, &s->h);
        lua_pushnil(L);
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "connect failed: %s", uv_strerror(status));
        jr_stream_close(s, lua_tostring(L, -1));
    }
    lua_pushstring(L, status == 0 ? NULL : uv_err_name(status));
    free(c);
    if (jr_loop_call(s->h.loop, 3) != 0 && status == 0)
        jr_stream_close(s, lua_tostring(L, -1) ? lua_tostring(L, -1) : "on_connect failed");
    lua_settop(L, top);
}

static int l_connect(lua_State *L)
{
    jr_loop *loop = jr_loop_get(L);
    place pl;
    int tcp, rc;
    const char *where;
    struct sockaddr_storage addr;
    connect_req *c;
    jr_stream *s;
    read_place(L, &pl);
    tcp = pl.tcp;
    where = pl.where;
    if (tcp && (rc = resolve(loop->uv, where, pl.port, &addr)) != 0)
        return push_failure(L, where, rc);
    c = (connect_req *)calloc(1, sizeof *c);
    if (c == NULL)
        return luaL_error(L, "not enough memory");
    s = jr_stream_new(L, loop, pl.kind, pl.max_message);
    rc = tcp ? uv_tcp_init(loop->uv, &s->u.tcp) : uv_pipe_init(loop->uv, &s->u.pipe, 0);
    if (rc != 0) {
        jr_stream_drop(s);
        free(c);
        return push_failure(L, "connect", rc);
    }
    jr_stream_opened(L, s, -1);
    c->s = s;
    lua_pushvalue(L, 6);
    c->on_connect = luaL_ref(L, LUA_REGISTRYINDEX);
    if (tcp) {
        rc = uv_tcp_connect(&c->req, &s->u.tcp, (const struct sockaddr *)&addr, connect_cb);
        if (rc != 0) {
            luaL_unref(L, LUA_REGISTRYINDEX, c->on_connect);
            free(c);
            jr_stream_close(s, "connect failed");
            return push_failure(L, where, rc);
        }
    } else {
        uv_pipe_connect(&c->req, &s->u.pipe, where, connect_cb);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.default_max_connections() -> n: a listener's max_connections when
 * none is given (the luv driver's listeners take it too). */
static int l_default_max_connections(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)jr_limits_default_max());
    return 1;
}

void jr_socket_open(lua_State *L)
{
    lua_pushcfunction(L, l_default_max_connections);
    lua_setfield(L, -2, "default_max_connections");
    static const luaL_Reg methods[] = {
        {"address", l_address},
        {"connections", l_connections},
        {"close", jr_handle_l_close},
        {"is_closing", jr_handle_l_is_closing},
        {NULL, NULL},
    };
    jr_class(L, LISTENER_MT, methods, jr_handle_l_close, jr_handle_l_tostring);
    lua_pushcfunction(L, l_listen);
    lua_setfield(L, -2, "listen");
    lua_pushcfunction(L, l_connect);
    lua_setfield(L, -2, "connect");
}
