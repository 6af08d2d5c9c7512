/* Streams: framing on libuv streams, for Lua.
 *
 * stream:write(text) -> queued bytes | nil, err     stream:close([reason])
 * stream:on_message(fn(text | nil, err))    stream:on_close(fn(reason))
 * stream:flush() -> queued bytes    stream:on_drain(fn())
 * stream:high_water([bytes]) -> bytes
 * stream:timeouts(frame, idle, send)   stream:on_eof(fn())
 * stream:serve(endpoint [, max_in_flight])    stream:shutdown([reason])
 * stream:peer() -> address    stream:is_closing()    stream:queued() -> bytes
 * stream:unsent() -> bytes
 *
 * Reading goes straight into the framer's buffer (reserve/commit). A
 * framing error is passed to on_message as (nil, err); when the framing
 * cannot recover (content-length, be32) the stream closes. While more than
 * high_water bytes wait to be written, reading stops (backpressure).
 *
 * Writes are coalesced: while one read is delivered (or what a completed
 * write wakes runs), and while libuv still holds bytes it could not write,
 * texts collect in `pending`, which goes out in one write when the callback
 * ends or the write completes. So a burst of answers or notifications costs
 * one system call, and a lone text goes out at once, even from a script
 * that is not running the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "stream.h"

#define STREAM_MT "jsonrpc.stream"
/* Reads start small, so an idle connection costs little, and double while
 * each read fills what was offered (a burst), back to the start after. */
#define READ_START ((size_t)8192)
#define READ_MAX ((size_t)65536)
#define READ_MIN_ROOM ((size_t)1024)   /* less room than this: grow first */
#define HAND_OVER ((size_t)65536)   /* pending bytes given to a write, not copied */
#define PENDING_KEEP ((size_t)4096)

typedef struct write_req {
    uv_write_t req;
    jr_stream *s;
    size_t n;                 /* bytes it carries */
    char *owned;              /* a pending buffer handed over, or NULL */
    char data[1];             /* else the bytes, copied */
} write_req;

static void flush_pending(jr_stream *s);
static void stop_reading(jr_stream *s);
static int queue_text(jr_stream *s, const char *text, size_t n);
static void finish(jr_stream *s);
static int sink_put(jr_sink *sink, const char *text, size_t n);
static void sink_waiting(jr_sink *sink, int in_flight);

static jr_stream **check_box(lua_State *L)
{
    return (jr_stream **)luaL_checkudata(L, 1, STREAM_MT);
}

static jr_stream *check_open(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s == NULL)
        luaL_argerror(L, 1, "stream is closed");
    return s;
}

/* Calls the callback `ref` with the nargs values on top of cbL's stack. A
 * failing callback closes the stream (nothing above it to raise to). */
static void call_back(jr_stream *s, int ref, int nargs)
{
    lua_State *L = s->h.loop->cbL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_insert(L, -1 - nargs);
    if (lua_pcall(L, nargs, 0, 0) != 0) {
        char why[200];
        snprintf(why, sizeof why, "callback failed: %s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
        lua_pop(L, 1);
        jr_stream_close(s, why);
    }
}

/* Tells Lua of a problem on this stream (on_message(nil, message)). */
static void report(jr_stream *s, const char *message)
{
    lua_State *L = s->h.loop->cbL;
    if (s->on_message == LUA_NOREF || s->h.loop->closing)
        return;
    lua_pushnil(L);
    lua_pushstring(L, message);
    call_back(s, s->on_message, 2);
}

/* A message to the endpoint, whose answers come back through the sink:
 * C to C, inside one protected call. */
typedef struct delivery {
    jr_stream *s;
    const char *msg;
    size_t len;
} delivery;

static int receive_protected(lua_State *L)
{
    delivery *d = (delivery *)lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->s->ep_ref);
    /* the text in place, not copied: the framer's buffer stays put until
     * this returns, as deliver does not run again meanwhile */
    jr_endpoint_receive(L, 2, d->msg, d->len);
    return 0;
}

static void serve_message(jr_stream *s, const char *msg, size_t len)
{
    lua_State *L = s->h.loop->cbL;
    delivery d;
    d.s = s;
    d.msg = msg;
    d.len = len;
    lua_pushcfunction(L, receive_protected);
    lua_pushlightuserdata(L, &d);
    if (lua_pcall(L, 1, 0, 0) != 0) {   /* out of memory, or a raising callback */
        if (s->on_message != LUA_NOREF && !s->h.loop->closing) {
            lua_pushnil(L);
            lua_insert(L, -2);
            call_back(s, s->on_message, 2);
        } else {
            lua_pop(L, 1);
        }
    }
}

/* A framing error, answered once with id null while our side of the
 * framing can still be written (it always can: only the peer's broke):
 * -32600 for a message over the size limit, -32700 for a broken frame,
 * with the reason in the message. */
static void tell_peer(jr_stream *s)
{
    const char *why = jr_framer_error(&s->framer);
    int too_big = jr_framer_too_big(&s->framer);
    char text[JR_FRAMER_ERRLEN * 2 + 128];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":%d,\"message\":\"%s: ",
                                too_big ? -32600 : -32700,
                                too_big ? "Invalid Request" : "Parse error");
    for (; *why != '\0' && n < sizeof text - 40; why++) {
        if (*why == '"' || *why == '\\')
            text[n++] = '\\';
        text[n++] = (unsigned char)*why < 0x20 ? '?' : *why;
    }
    n += (size_t)snprintf(text + n, sizeof text - n, "\"},\"id\":null}");
    if (queue_text(s, text, n) != 0)
        jr_stream_close(s, "not enough memory for a reply");
}

static void deliver(jr_stream *s)
{
    lua_State *L = s->h.loop->cbL;
    const char *msg;
    size_t len;
    int r;
    /* A callback below may resume the stream, which delivers: the loop
     * here goes on by itself, and must be the only one taking messages. */
    if (s->delivering)
        return;
    s->delivering = 1;
    s->in_read++;   /* the answers to what is delivered now go out in one write */
    /* a pause or a full write queue holds back the messages already
     * buffered too: resume (or the queue draining) delivers them */
    while (!uv_is_closing(&s->u.handle) && !s->paused && !s->throttled && !s->finishing
           && !s->full && (r = jr_framer_next(&s->framer, &msg, &len)) != 0) {
        if (r == 1) {
            s->messages++;
            if (s->ep != NULL) {
                serve_message(s, msg, len);
            } else {
                lua_pushlstring(L, msg, len);
                call_back(s, s->on_message, 1);
            }
            continue;
        }
        lua_pushfstring(L, "framing error: %s", jr_framer_error(&s->framer));
        report(s, lua_tostring(L, -1));
        lua_pop(L, 1);
        tell_peer(s);
        if (jr_framer_broken(&s->framer)) {
            s->in_read--;
            s->delivering = 0;
            jr_stream_close(s, jr_framer_error(&s->framer));
            return;
        }
    }
    if (!s->burst)
        jr_framer_shrink(&s->framer);   /* the burst is over: give back its memory */
    s->delivering = 0;
    s->in_read--;
    if (s->in_read == 0)
        flush_pending(s);
    if (s->draining && (s->ep == NULL || s->ep->in_flight == 0) && !uv_is_closing(&s->u.handle))
        finish(s);   /* the last handler finished while this ran */
}

/* Bytes whose writes have not been called back, and ours collected: a
 * write the kernel took at once still holds its memory until libuv calls
 * it back in the next loop turn, so a handler that sends a million
 * notifications between two turns must see them. */
size_t jr_stream_queued(const jr_stream *s)
{
    return s->write_bytes + s->pending.len;
}

const char *jr_stream_admit(jr_stream *s, jr_limits *lim)
{
    const char *why;
    jr_peer_addr_of(&s->u.handle, &s->peer);
    why = jr_limits_admit(lim, &s->peer);
    if (why == NULL)
        s->limits = lim;
    return why;
}

/* Updates the bytes this stream holds against its listener's cap: 0, or
 * -1 when it has closed for passing it. */
static int account(jr_stream *s)
{
    size_t now;
    if (s->limits == NULL)
        return 0;
    now = s->framer.buf.cap + s->pending.cap + s->write_bytes;
    if (jr_limits_hold(s->limits, &s->held, now) == 0)
        return 0;
    snprintf(s->reason, sizeof s->reason,
             "max_buffered_bytes reached: the listener's connections hold more than %lu bytes",
             (unsigned long)s->limits->max_held);
    report(s, s->reason);
    jr_stream_close(s, s->reason);
    return -1;
}

/* The peer does not read what we write: stop reading from it. */
static void throttle_if_full(jr_stream *s)
{
    if (jr_stream_queued(s) <= s->high_water)
        return;
    if (s->reading) {
        s->throttled = 1;
        stop_reading(s);
    }
}

/* Offers the framer's free room when there is enough (a partial header
 * does not grow the buffer), else room for read_size more; a body whose
 * length is known grows toward its end (framing.c). */
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    jr_stream *s = (jr_stream *)handle->data;
    size_t avail = 0, room = jr_framer_room(&s->framer);
    char *p = jr_framer_reserve(&s->framer, room >= READ_MIN_ROOM ? room : s->read_size, &avail);
    (void)suggested;
    buf->base = p;
    buf->len = p == NULL ? 0 : (avail > (size_t)1 << 30 ? (size_t)1 << 30 : avail);
    s->offered = buf->len;
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    jr_stream *s = (jr_stream *)st->data;
    (void)buf;
    if (n > 0) {
        unsigned long before = s->messages;
        s->burst = (size_t)n == s->offered;   /* there may be more: read more at once */
        s->read_size = !s->burst ? READ_START
                       : s->read_size < READ_MAX ? s->read_size * 2 : READ_MAX;
        jr_framer_commit(&s->framer, (size_t)n);
        deliver(s);
        if (!uv_is_closing(&s->u.handle) && account(s) == 0)
            jr_deadline_read(s, s->messages != before);
    } else if (n == UV_EOF) {
        /* the peer shut down its side; with on_eof, Lua lets the requests
         * it sent be answered first (a half-close), else it is the end */
        s->eof = 1;
        stop_reading(s);
        if (s->ep == NULL || jr_framer_broken(&s->framer)) {
            jr_stream_close(s, "closed by the peer");
            return;
        }
        if (s->on_eof != LUA_NOREF)
            call_back(s, s->on_eof, 0);   /* the calls waiting on it fail */
        if (!s->draining) {
            s->draining = 1;
            snprintf(s->reason, sizeof s->reason, "closed by the peer");
        }
        s->full = 0;   /* what it sent before is answered, whatever the limit */
        deliver(s);
        if (s->ep->in_flight == 0)
            finish(s);
    } else if (n == UV_ENOBUFS) {
        jr_stream_close(s, jr_framer_broken(&s->framer) ? jr_framer_error(&s->framer)
                                                        : "not enough memory");
    } else if (n < 0) {
        char why[120];
        snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)n));
        jr_stream_close(s, why);
    }
}

static int start_reading(jr_stream *s)
{
    int rc = 0;
    if (!s->reading && !s->paused && !s->throttled && !s->finishing && !s->eof && !s->full
        && !uv_is_closing(&s->u.handle)) {
        rc = uv_read_start(&s->u.stream, alloc_cb, read_cb);
        s->reading = rc == 0;
        jr_deadline_resumed(s);
    }
    return rc;
}

static void stop_reading(jr_stream *s)
{
    if (s->reading) {
        uv_read_stop(&s->u.stream);
        s->reading = 0;
    }
}

/* One libuv handle of s is closed; the last one frees it. */
static void release(jr_stream *s)
{
    if (--s->handles > 0)
        return;
    if (s->limits != NULL)
        jr_limits_leave(s->limits, &s->peer, s->held);
    jr_framer_free(&s->framer);
    jr_buf_release(&s->pending);
    free(s);
}

static void writer_closed(uv_handle_t *handle)
{
    release((jr_stream *)handle->data);
}

/* Closing the read side (from anywhere, the sentinel too) closes the write
 * side with it. */
static void on_close(jr_handle *h)
{
    jr_stream *s = (jr_stream *)h;
    stop_reading(s);
    if (s->writer == &s->w.stream && !uv_is_closing(&s->w.handle))
        uv_close(&s->w.handle, writer_closed);
    (void)jr_deadline_close(s, writer_closed);
}

static void on_closed(jr_handle *h)
{
    jr_stream *s = (jr_stream *)h;
    lua_State *L = h->loop->cbL;
    *s->box = NULL;   /* the Lua object outlives us; it may be used again */
    if (!h->loop->closing) {
        if (s->on_close != LUA_NOREF) {
            lua_pushstring(L, s->reason);
            lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_close);
            lua_insert(L, -2);
            if (lua_pcall(L, 1, 0, 0) != 0)
                lua_pop(L, 1);   /* the stream is gone: nowhere to report */
        }
        luaL_unref(L, LUA_REGISTRYINDEX, s->on_message);
        luaL_unref(L, LUA_REGISTRYINDEX, s->on_close);
        luaL_unref(L, LUA_REGISTRYINDEX, s->on_drain);
        luaL_unref(L, LUA_REGISTRYINDEX, s->on_eof);
        luaL_unref(L, LUA_REGISTRYINDEX, s->ep_ref);
        if (s->ep != NULL)   /* it may outlive us: what it answers is dropped */
            jr_endpoint_attach(s->ep, NULL);
    }   /* else the Lua state is closing, and the endpoint may be gone */
    release(s);
}

void jr_stream_close(jr_stream *s, const char *reason)
{
    if (uv_is_closing(&s->u.handle))
        return;
    if (s->pending.len > 0 && !s->write_failed) {   /* answers collected during this read */
        uv_buf_t buf = uv_buf_init(s->pending.data, (unsigned int)s->pending.len);
        (void)uv_try_write(s->writer, &buf, 1);
        s->pending.len = 0;
    }
    if (reason != s->reason)
        snprintf(s->reason, sizeof s->reason, "%s", reason);
    jr_handle_close(&s->h);   /* on_close stops reading, closes the writer */
}

void jr_stream_split(jr_stream *s)
{
    s->writer = &s->w.stream;
    s->w.handle.data = s;
    s->handles = 2;
}

jr_stream *jr_stream_new(lua_State *L, jr_loop *loop, jr_frame_kind kind, size_t max_message)
{
    jr_stream **box = (jr_stream **)lua_newuserdata(L, sizeof *box);
    jr_stream *s = (jr_stream *)calloc(1, sizeof *s);
    *box = NULL;
    if (s == NULL)
        luaL_error(L, "not enough memory");
    luaL_getmetatable(L, STREAM_MT);
    lua_setmetatable(L, -2);
    jr_framer_init(&s->framer, kind, max_message, 8192, jr_malloc_alloc, NULL);
    s->pending.alloc = jr_malloc_alloc;   /* calloc zeroed the rest */
    s->on_message = s->on_close = s->on_drain = s->on_eof = s->ep_ref = LUA_NOREF;
    s->sink.put = sink_put;
    s->sink.waiting = sink_waiting;
    s->high_water = JR_DEFAULT_HIGH_WATER;
    s->read_size = READ_START;
    s->h.uv = &s->u.handle;
    s->h.on_close = on_close;
    s->h.on_closed = on_closed;
    s->writer = &s->u.stream;
    s->handles = 1;
    s->h.loop = loop;
    s->box = box;
    *box = s;
    return s;
}

void jr_stream_opened(lua_State *L, jr_stream *s, int idx)
{
    jr_handle_open(L, s->h.loop, &s->h, idx);
}

int jr_stream_start(jr_stream *s)
{
    if (s->u.handle.type == UV_TCP)
        (void)uv_tcp_nodelay(&s->u.tcp, 1);   /* requests and answers are small */
    return start_reading(s);
}

/* ---- Lua methods ---- */

/* Everything is written and a flush asked to know: tell Lua. */
static void drained(jr_stream *s)
{
    if (!s->want_drain || jr_stream_queued(s) > 0 || s->writes > 0 || s->on_drain == LUA_NOREF)
        return;
    s->want_drain = 0;
    call_back(s, s->on_drain, 0);
}

/* A write failed (the peer went away: EPIPE, ECONNRESET): nothing more is
 * written, and the stream closes with the reason. */
static void write_failed(jr_stream *s, int status)
{
    char why[120];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
    s->write_failed = 1;
    jr_stream_close(s, why);
}

static void write_cb(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    jr_stream *s = w->s;
    s->write_bytes -= w->n;
    free(w->owned);
    free(w);
    s->writes--;
    if (status == UV_ECANCELED || uv_is_closing(&s->u.handle))
        return;
    if (status < 0) {
        write_failed(s, status);
        return;
    }
    jr_deadline_wrote(s);
    if (account(s) != 0)
        return;
    /* what runs from here (a handler woken by the drain, say) collects
     * its texts too, and they go out together */
    s->in_read++;
    if (s->throttled && jr_stream_queued(s) <= s->high_water / 2) {
        s->throttled = 0;
        start_reading(s);   /* unless Lua paused it */
        deliver(s);         /* what was read before the queue filled */
    }
    drained(s);
    s->in_read--;
    if (s->in_read == 0)
        flush_pending(s);   /* with what collected while this write was out */
}

/* Writes what is pending with one uv_write: a large buffer is handed over
 * to the write (no copy of a big answer), a small one is copied and kept
 * for the next texts. 0 or a libuv error. */
static int write_pending(jr_stream *s)
{
    size_t n = s->pending.len;
    int own = n >= HAND_OVER, rc;
    write_req *w = (write_req *)malloc(sizeof *w + (own ? 0 : n));
    uv_buf_t buf;
    if (w == NULL)
        return UV_ENOMEM;
    w->s = s;
    w->n = n;
    if (own) {
        /* given back down to its length first: a buffer that grew by
         * doubling may be twice that, for as long as the peer is slow */
        char *fit = s->pending.cap > n ? (char *)realloc(s->pending.data, n) : NULL;
        w->owned = fit != NULL ? fit : s->pending.data;   /* malloc'd: free() */
        s->pending.data = NULL;
        s->pending.cap = 0;
    } else {
        w->owned = NULL;
        memcpy(w->data, s->pending.data, n);
    }
    s->pending.len = 0;
    buf = uv_buf_init(own ? w->owned : w->data, (unsigned int)n);
    rc = uv_write(&w->req, s->writer, &buf, 1, write_cb);
    if (rc < 0) {
        free(w->owned);
        free(w);
    } else {
        s->writes++;
        s->write_bytes += n;
    }
    return rc;
}

/* The texts collected go out in one write. */
static void flush_pending(jr_stream *s)
{
    int rc;
    if (s->pending.len == 0 || uv_is_closing(&s->u.handle))
        return;
    rc = write_pending(s);
    /* what is kept for the next texts: little once a burst is over */
    jr_buf_trim(&s->pending, s->burst ? HAND_OVER : PENDING_KEEP);
    if (rc < 0) {
        write_failed(s, rc);
        return;
    }
    if (uv_stream_get_write_queue_size(s->writer) > 0)
        jr_deadline_blocked(s);
    throttle_if_full(s);
}

/* Frames text into `pending`, written at once when nothing holds it back.
 * 0, or -1 when memory runs out. */
static int queue_text(jr_stream *s, const char *text, size_t n)
{
    char head[JR_FRAME_HEADER_MAX];
    size_t hlen = jr_frame_header_write(s->framer.kind, n, head);
    if (jr_buf_add(&s->pending, head, hlen) != 0 || jr_buf_add(&s->pending, text, n) != 0
        || (s->framer.kind == JR_FRAME_NDJSON && jr_buf_addc(&s->pending, '\n') != 0))
        return -1;
    if (s->in_read == 0 && uv_stream_get_write_queue_size(s->writer) == 0)
        flush_pending(s);   /* nothing to wait for: out at once */
    else
        throttle_if_full(s);
    (void)account(s);
    return 0;
}

/* The endpoint's texts; dropped once the stream closes. */
static int sink_put(jr_sink *sink, const char *text, size_t n)
{
    jr_stream *s = (jr_stream *)((char *)sink - offsetof(jr_stream, sink));
    if (uv_is_closing(&s->u.handle))
        return -1;
    if (queue_text(s, text, n) != 0) {
        jr_stream_close(s, "not enough memory for a reply");
        return -1;
    }
    return 0;
}

/* The endpoint's handlers waiting: too many stop reading until one
 * finishes; a graceful close finishes once none is left. */
static void sink_waiting(jr_sink *sink, int in_flight)
{
    jr_stream *s = (jr_stream *)((char *)sink - offsetof(jr_stream, sink));
    if (uv_is_closing(&s->u.handle))
        return;
    if (s->max_in_flight > 0 && in_flight >= s->max_in_flight && !s->full && !s->eof) {
        s->full = 1;
        stop_reading(s);
    } else if (s->full && in_flight < s->max_in_flight) {
        s->full = 0;
        start_reading(s);
        deliver(s);   /* what was read before the limit */
    }
    if (s->draining && in_flight == 0 && !s->delivering)
        finish(s);
}

/* stream:write(text): frames text and queues it; the bytes now queued, or
 * nil and why. */
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
    why = jr_frame_check(s->framer.kind, text, n);
    if (why != NULL)
        return luaL_argerror(L, 2, why);
    if (queue_text(s, text, n) != 0)
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
    size_t left;
    if (s == NULL || uv_is_closing(&s->u.handle)) {
        lua_pushinteger(L, 0);
        return 1;
    }
    flush_pending(s);
    left = uv_is_closing(&s->u.handle) ? 0 : jr_stream_queued(s);
    s->want_drain = left > 0;
    lua_pushinteger(L, (lua_Integer)left);
    return 1;
}

/* stream:pause() / stream:resume(): stop and restart reading (a connection
 * with too many handlers in flight, a graceful close). */
static int l_pause(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL) {
        s->paused = 1;
        stop_reading(s);
    }
    return 0;
}

static int l_resume(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s != NULL && s->paused) {
        s->paused = 0;
        start_reading(s);
        deliver(s);   /* what arrived before the pause */
    }
    return 0;
}

typedef struct finish_req {
    uv_shutdown_t req;
    jr_stream *s;
} finish_req;

static void finished(uv_shutdown_t *req, int status)
{
    jr_stream *s = ((finish_req *)req)->s;
    (void)status;
    free(req);
    jr_stream_close(s, s->reason[0] ? s->reason : "closed");
}

/* Closes once what is queued has been written. */
static void finish(jr_stream *s)
{
    finish_req *f;
    if (s->finishing || uv_is_closing(&s->u.handle))
        return;
    s->finishing = 1;
    stop_reading(s);
    flush_pending(s);   /* the shutdown waits for queued writes only */
    if (uv_is_closing(&s->u.handle))
        return;
    f = (finish_req *)malloc(sizeof *f);
    if (f == NULL || uv_shutdown(&f->req, s->writer, finished) != 0) {
        free(f);
        jr_stream_close(s, s->reason);   /* nothing to wait for, or cannot */
        return;
    }
    f->s = s;
}

/* stream:finish([reason]): closes once what is queued has been written. */
static int l_finish(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s == NULL || s->finishing || uv_is_closing(&s->u.handle))
        return 0;
    snprintf(s->reason, sizeof s->reason, "%s", luaL_optstring(L, 2, "closed"));
    finish(s);
    return 0;
}

/* stream:shutdown([reason]): reads no more requests, lets the endpoint's
 * handlers in flight finish and their answers be written, then closes. */
static int l_shutdown(lua_State *L)
{
    jr_stream *s = *check_box(L);
    if (s == NULL || s->draining || s->finishing || uv_is_closing(&s->u.handle))
        return 0;
    snprintf(s->reason, sizeof s->reason, "%s", luaL_optstring(L, 2, "closed"));
    s->draining = 1;
    s->paused = 1;
    stop_reading(s);
    if ((s->ep == NULL || s->ep->in_flight == 0) && !s->delivering)
        finish(s);
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
    s->ep_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->ep = ep;
    s->max_in_flight = (int)max;
    jr_endpoint_attach(ep, &s->sink);
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
    lua_pushinteger(L, s == NULL ? 0
                       : (lua_Integer)(uv_stream_get_write_queue_size(s->writer) + s->pending.len));
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
    if (luaL_newmetatable(L, STREAM_MT)) {
        lua_newtable(L);
        jr_setfuncs(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}
