/* Streams over standard input/output and over child processes.
 *
 * core.stdio(framing, max_message) -> stream | nil, err
 *   reads fd 0, writes fd 1 (pipes, sockets or terminals)
 * core.spawn(file, args, framing, max_message, stderr, on_exit [, on_stderr])
 *   -> stream, process | nil, err
 *   the stream writes to the child's stdin and reads its stdout; stderr is
 *   "inherit" (passed through), "ignore" or "capture" (on_stderr(chunk),
 *   then on_stderr(nil) at its end); on_exit(code, signal)
 * process:pid()   process:kill([signal])   process:is_closing() */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "process.h"
#include "stream.h"

#define PROCESS_MT "jsonrpc.process"
#define READER_MT "jsonrpc.reader"
#define MAX_ARGS 256

typedef struct jr_process {
    jr_handle h;              /* first */
    uv_process_t proc;
    int on_exit;              /* registry ref */
} jr_process;

/* Opens fd as the libuv stream that fits it, into *u (a stream union). */
static int open_fd(uv_loop_t *loop, uv_file fd, uv_handle_t *h, int readable, const char **why)
{
    int rc;
    switch (uv_guess_handle(fd)) {
    case UV_TTY:
        return uv_tty_init(loop, (uv_tty_t *)h, fd, readable);
    case UV_NAMED_PIPE:
        rc = uv_pipe_init(loop, (uv_pipe_t *)h, 0);
        return rc != 0 ? rc : uv_pipe_open((uv_pipe_t *)h, fd);
    case UV_TCP:
        rc = uv_tcp_init(loop, (uv_tcp_t *)h);
        return rc != 0 ? rc : uv_tcp_open((uv_tcp_t *)h, fd);
    case UV_FILE:
        *why = "is a regular file (a stream needs a pipe, a socket or a terminal)";
        return UV_EINVAL;
    default:
        *why = "is not open or not a stream";
        return UV_EBADF;
    }
}

static int l_stdio(lua_State *L)
{
    jr_loop *loop = jr_loop_get(L);
    jr_frame_kind kind = jr_check_framing(L, 1);
    size_t max_message = (size_t)luaL_checknumber(L, 2);
    const char *why = NULL;
    jr_stream *s = jr_stream_new(L, loop, kind, max_message);
    int rc = open_fd(loop->uv, 0, &s->u.handle, 1, &why);
    if (rc != 0) {
        jr_stream_drop(s);
        lua_pushnil(L);
        lua_pushfstring(L, "stdin %s", why ? why : uv_strerror(rc));
        lua_pushstring(L, uv_err_name(rc));
        return 3;
    }
    rc = open_fd(loop->uv, 1, &s->w.handle, 0, &why);
    if (rc != 0) {
        /* the read side is open: close it through the stream */
        jr_stream_opened(L, s, -1);
        jr_stream_close(s, "stdout unusable");
        lua_pushnil(L);
        lua_pushfstring(L, "stdout %s", why ? why : uv_strerror(rc));
        lua_pushstring(L, uv_err_name(rc));
        return 3;
    }
    jr_stream_split(s);
    jr_stream_opened(L, s, -1);
    if ((rc = jr_stream_start(s)) != 0) {
        jr_stream_close(s, "cannot read stdin");
        lua_pushnil(L);
        lua_pushfstring(L, "stdin: %s", uv_strerror(rc));
        lua_pushstring(L, uv_err_name(rc));
        return 3;
    }
    return 1;
}

/* ---- a child's stderr, read raw: on_data(chunk), then on_data(nil) ---- */

typedef struct jr_reader {
    jr_handle h;              /* first */
    uv_pipe_t pipe;
    int on_data;              /* registry ref */
} jr_reader;

static void reader_closed(jr_handle *h)
{
    if (!h->loop->closing)
        luaL_unref(h->loop->cbL, LUA_REGISTRYINDEX, ((jr_reader *)h)->on_data);
}

static void reader_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    buf->base = (char *)malloc(suggested);
    buf->len = buf->base != NULL ? suggested : 0;
}

static void reader_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    jr_reader *r = (jr_reader *)st->data;
    lua_State *L = r->h.loop->cbL;
    if (n == 0) {
        free(buf->base);
        return;
    }
    if (!r->h.loop->closing) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_data);
        if (n > 0)
            lua_pushlstring(L, buf->base, (size_t)n);
        else
            lua_pushnil(L);   /* the end */
        if (jr_loop_call(r->h.loop, 1) != 0)
            lua_pop(L, 1);    /* our own callback; nowhere to report */
    }
    free(buf->base);
    if (n < 0)
        jr_handle_close(&r->h);
}

/* A reader (its userdata pushed) on a pipe not connected yet. */
static jr_reader *new_reader(lua_State *L, jr_loop *loop, int on_data)
{
    jr_reader *r;
    on_data = jr_absindex(L, on_data);
    r = (jr_reader *)jr_handle_new(L, sizeof *r, READER_MT, reader_closed);
    uv_pipe_init(loop->uv, &r->pipe, 0);
    lua_pushvalue(L, on_data);
    r->on_data = luaL_ref(L, LUA_REGISTRYINDEX);
    r->h.uv = (uv_handle_t *)&r->pipe;
    jr_handle_open(L, loop, &r->h, -1);
    return r;
}

/* ---- child processes ---- */

static void process_closed(jr_handle *h)
{
    if (!h->loop->closing)
        luaL_unref(h->loop->cbL, LUA_REGISTRYINDEX, ((jr_process *)h)->on_exit);
}

static void exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    jr_process *p = (jr_process *)proc->data;
    lua_State *L = p->h.loop->cbL;
    if (!p->h.loop->closing) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->on_exit);
        lua_pushinteger(L, (lua_Integer)status);
        lua_pushinteger(L, term_signal);
        if (jr_loop_call(p->h.loop, 2) != 0)
            lua_pop(L, 1);   /* the connection's own callback; nowhere to report */
    }
    jr_handle_close(&p->h);
}

/* The child's argument vector from the Lua array at idx (file first). */
static void collect_args(lua_State *L, int idx, const char *file, char **argv)
{
    int n = (int)lua_rawlen(L, idx), i;
    luaL_argcheck(L, n < MAX_ARGS - 1, idx, "too many arguments");
    argv[0] = (char *)file;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, idx, "arguments must be strings");
        argv[i] = (char *)lua_tostring(L, -1);   /* anchored in the table */
        lua_pop(L, 1);
    }
    argv[n + 1] = NULL;
}

static int l_spawn(lua_State *L)
{
    static const char *const stderr_modes[] = {"inherit", "ignore", "capture", NULL};
    jr_loop *loop = jr_loop_get(L);
    const char *file = luaL_checkstring(L, 1);
    jr_frame_kind kind;
    size_t max_message;
    int err_mode, rc;
    char *argv[MAX_ARGS];
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    jr_stream *s;
    jr_process *p;
    int proc_idx;
    jr_reader *err_reader = NULL;
    luaL_checktype(L, 2, LUA_TTABLE);
    kind = jr_check_framing(L, 3);
    max_message = (size_t)luaL_checknumber(L, 4);
    err_mode = luaL_checkoption(L, 5, "inherit", stderr_modes);
    luaL_checktype(L, 6, LUA_TFUNCTION);
    if (err_mode == 2)
        luaL_checktype(L, 7, LUA_TFUNCTION);
    lua_settop(L, 7);
    collect_args(L, 2, file, argv);

    s = jr_stream_new(L, loop, kind, max_message);          /* 8 */
    uv_pipe_init(loop->uv, &s->u.pipe, 0);                  /* the child's stdout */
    uv_pipe_init(loop->uv, &s->w.pipe, 0);                  /* the child's stdin */
    jr_stream_split(s);
    jr_stream_opened(L, s, 8);
    if (err_mode == 2)
        err_reader = new_reader(L, loop, 7);                 /* 9 */

    p = (jr_process *)jr_handle_new(L, sizeof *p, PROCESS_MT, process_closed);
    proc_idx = lua_gettop(L);
    memset(&o, 0, sizeof o);
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE);
    stdio[0].data.stream = &s->w.stream;
    stdio[1].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = &s->u.stream;
    if (err_reader != NULL) {
        stdio[2].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[2].data.stream = (uv_stream_t *)&err_reader->pipe;
    } else {
        stdio[2].flags = err_mode == 0 ? UV_INHERIT_FD : UV_IGNORE;
        stdio[2].data.fd = 2;
    }
    o.file = file;
    o.args = argv;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.exit_cb = exit_cb;
    rc = uv_spawn(loop->uv, &p->proc, &o);
    /* even a failed spawn leaves the handle initialised on the loop (unix):
     * it is registered and closed like any other */
    lua_pushvalue(L, 6);
    p->on_exit = luaL_ref(L, LUA_REGISTRYINDEX);
    p->h.uv = (uv_handle_t *)&p->proc;
    jr_handle_open(L, loop, &p->h, proc_idx);
    if (rc != 0) {
        jr_handle_close(&p->h);
        if (err_reader != NULL)
            jr_handle_close(&err_reader->h);
        jr_stream_close(s, "spawn failed");
        lua_pushnil(L);
        lua_pushfstring(L, "cannot run %s: %s", file, uv_strerror(rc));
        lua_pushstring(L, uv_err_name(rc));
        return 3;
    }
    if ((rc = jr_stream_start(s)) != 0) {
        jr_stream_close(s, "cannot read the child's output");
        uv_process_kill(&p->proc, SIGTERM);
    }
    if (err_reader != NULL
        && uv_read_start((uv_stream_t *)&err_reader->pipe, reader_alloc, reader_read) != 0)
        jr_handle_close(&err_reader->h);
    lua_pushvalue(L, 8);
    lua_pushvalue(L, proc_idx);
    return 2;
}

static jr_process *check_process(lua_State *L)
{
    return *(jr_process **)luaL_checkudata(L, 1, PROCESS_MT);
}

static int l_pid(lua_State *L)
{
    jr_process *p = check_process(L);
    if (p == NULL)
        return 0;
    lua_pushinteger(L, p->proc.pid);
    return 1;
}

static int l_kill(lua_State *L)
{
    jr_process *p = check_process(L);
    int sig = (int)luaL_optinteger(L, 2, SIGTERM), rc;
    if (p == NULL || uv_is_closing(p->h.uv)) {
        lua_pushnil(L);
        lua_pushliteral(L, "the process has exited");
        return 2;
    }
    rc = uv_process_kill(&p->proc, sig);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, uv_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* close() for uv.walk's sake: a child is stopped, then its handle closes. */
static int l_close(lua_State *L)
{
    jr_process *p = check_process(L);
    if (p != NULL && !uv_is_closing(p->h.uv)) {
        uv_process_kill(&p->proc, SIGTERM);
        jr_handle_close(&p->h);
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    jr_process *p = check_process(L);
    if (p == NULL)
        lua_pushliteral(L, "jsonrpc.process (exited)");
    else
        lua_pushfstring(L, "jsonrpc.process: %d", p->proc.pid);
    return 1;
}

void jr_process_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"pid", l_pid},
        {"kill", l_kill},
        {"is_closing", jr_handle_l_is_closing},
        {"close", l_close},
        {NULL, NULL},
    };
    static const luaL_Reg reader_methods[] = {
        {"is_closing", jr_handle_l_is_closing}, {"close", jr_handle_l_close}, {NULL, NULL},
    };
    jr_class(L, PROCESS_MT, methods, NULL, l_tostring);
    jr_class(L, READER_MT, reader_methods, NULL, jr_handle_l_tostring);
    lua_pushcfunction(L, l_stdio);
    lua_setfield(L, -2, "stdio");
    lua_pushcfunction(L, l_spawn);
    lua_setfield(L, -2, "spawn");
}
