/* Streams: a message layer (csrc/framing/layer.h) on a libuv stream (TCP,
 * a Unix socket, a pipe), driving an endpoint (csrc/rpc/endpoint.h).
 *
 * Reading goes straight into the layer's buffer (reserve/commit); each
 * message it yields goes to the endpoint in one protected call, and the
 * endpoint's answers come back through the stream's sink. A layer error is
 * reported (on_message(nil, err)), answered as the layer says (refuse),
 * and closes the stream when the layer cannot go on. While more than
 * high_water bytes wait to be written, reading stops (backpressure); so it
 * does while max_in_flight handlers wait.
 *
 * Writes are coalesced: while one read is delivered (or what a completed
 * write wakes runs), and while libuv still holds bytes it could not write,
 * texts collect in `pending`, which goes out in one write when the callback
 * ends or the write completes. So a burst of answers or notifications costs
 * one system call, and a lone text goes out at once, even from a script
 * that is not running the loop. The Lua methods are in stream_lua.c. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "framing/stream_layer.h"
#include "stream.h"

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

/* Calls the callback `ref` with the nargs values on top of cbL's stack. A
 * failing callback closes the stream (nothing above it to raise to). */
static void call_back(jr_stream *s, int ref, int nargs)
{
    lua_State *L = s->h.loop->cbL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_insert(L, -1 - nargs);
    if (jr_loop_call(s->h.loop, nargs) != 0) {
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
    /* the text in place, not copied: the layer's buffer stays put until
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
    if (jr_loop_call(s->h.loop, 1) != 0) {   /* out of memory, or a raising callback */
        if (s->on_message != LUA_NOREF && !s->h.loop->closing) {
            lua_pushnil(L);
            lua_insert(L, -2);
            call_back(s, s->on_message, 2);
        } else {
            lua_pop(L, 1);
        }
    }
}

/* A layer error, answered as the layer says (refuse). */
static void tell_peer(jr_stream *s)
{
    if (s->layer->ops->refuse(s->layer, &s->pending) != 0)
        jr_stream_close(s, "not enough memory for a reply");
    else if (s->in_read == 0)
        flush_pending(s);
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
           && !s->full && (r = s->layer->ops->next(s->layer, &msg, &len)) != 0) {
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
        lua_pushfstring(L, "framing error: %s", s->layer->ops->error(s->layer));
        report(s, lua_tostring(L, -1));
        lua_pop(L, 1);
        tell_peer(s);
        if (s->layer->ops->broken(s->layer)) {
            s->in_read--;
            s->delivering = 0;
            jr_stream_close(s, s->layer->ops->error(s->layer));
            return;
        }
    }
    if (!s->burst)
        s->layer->ops->shrink(s->layer);   /* the burst is over: give back its memory */
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
    now = s->layer->ops->held(s->layer) + s->pending.cap + s->write_bytes;
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

/* Offers the layer's free room when there is enough (a partial header
 * does not grow the buffer), else room for read_size more; a body whose
 * length is known grows toward its end (framing.c). */
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    jr_stream *s = (jr_stream *)handle->data;
    size_t avail = 0, room = s->layer->ops->room(s->layer);
    char *p = s->layer->ops->reserve(s->layer, room >= READ_MIN_ROOM ? room : s->read_size, &avail);
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
        s->layer->ops->commit(s->layer, (size_t)n);
        deliver(s);
        if (!uv_is_closing(&s->u.handle) && account(s) == 0)
            jr_deadline_read(s, s->messages != before);
    } else if (n == UV_EOF) {
        /* the peer shut down its side; with on_eof, Lua lets the requests
         * it sent be answered first (a half-close), else it is the end */
        s->eof = 1;
        stop_reading(s);
        if (s->ep == NULL || s->layer->ops->broken(s->layer)) {
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
        jr_stream_close(s, s->layer->ops->broken(s->layer) ? s->layer->ops->error(s->layer)
                                                        : "not enough memory");
    } else if (n < 0) {
        char why[120];
        snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)n));
        s->errname = uv_err_name((int)n);
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
    s->layer->ops->free(s->layer);
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
    if (!h->loop->closing) {
        if (s->on_close != LUA_NOREF) {   /* on_close(reason, errname) */
            lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_close);
            lua_pushstring(L, s->reason);
            if (s->errname != NULL)
                lua_pushstring(L, s->errname);
            else
                lua_pushnil(L);
            if (jr_loop_call(h->loop, 2) != 0)
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
    jr_stream *s = (jr_stream *)jr_handle_new(L, sizeof *s, JR_STREAM_MT, on_closed);
    if ((s->layer = jr_stream_layer_new(kind, max_message)) == NULL) {
        jr_handle_drop(&s->h);
        luaL_error(L, "not enough memory");
    }
    s->h.frees_itself = 1;   /* its writer and its timer may close after it */
    s->pending.alloc = jr_malloc_alloc;   /* calloc zeroed the rest */
    s->on_message = s->on_close = s->on_drain = s->on_eof = s->ep_ref = LUA_NOREF;
    s->sink.put = sink_put;
    s->sink.waiting = sink_waiting;
    s->high_water = JR_DEFAULT_HIGH_WATER;
    s->read_size = READ_START;
    s->h.uv = &s->u.handle;
    s->h.on_close = on_close;
    s->writer = &s->u.stream;
    s->handles = 1;
    s->h.loop = loop;
    return s;
}

void jr_stream_drop(jr_stream *s)
{
    s->layer->ops->free(s->layer);
    jr_handle_drop(&s->h);
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
    s->errname = uv_err_name(status);
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
    if (s->layer->ops->frame(s->layer, &s->pending, text, n) != 0)
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

/* ---- what the Lua methods (stream_lua.c) and the drivers use ---- */

int jr_stream_write(jr_stream *s, const char *text, size_t n)
{
    return queue_text(s, text, n);
}

const char *jr_stream_check(const jr_stream *s, const char *text, size_t n)
{
    return s->layer->ops->check(s->layer, text, n);
}

size_t jr_stream_flush(jr_stream *s)
{
    size_t left;
    flush_pending(s);
    left = uv_is_closing(&s->u.handle) ? 0 : jr_stream_queued(s);
    s->want_drain = left > 0;
    return left;
}

size_t jr_stream_unsent(const jr_stream *s)
{
    return uv_stream_get_write_queue_size(s->writer) + s->pending.len;
}

void jr_stream_pause(jr_stream *s)
{
    s->paused = 1;
    stop_reading(s);
}

void jr_stream_resume(jr_stream *s)
{
    if (!s->paused)
        return;
    s->paused = 0;
    start_reading(s);
    deliver(s);   /* what arrived before the pause */
}

void jr_stream_finish(jr_stream *s, const char *reason)
{
    if (s->finishing || uv_is_closing(&s->u.handle))
        return;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    finish(s);
}

void jr_stream_shutdown(jr_stream *s, const char *reason)
{
    if (s->draining || s->finishing || uv_is_closing(&s->u.handle))
        return;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    s->draining = 1;
    jr_stream_pause(s);
    if ((s->ep == NULL || s->ep->in_flight == 0) && !s->delivering)
        finish(s);
}

void jr_stream_serve(jr_stream *s, jr_endpoint *ep, int ref, int max_in_flight)
{
    s->ep_ref = ref;
    s->ep = ep;
    s->max_in_flight = max_in_flight;
    jr_endpoint_attach(ep, &s->sink);
}
