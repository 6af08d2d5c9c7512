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
 * This file is the stream's life and its read side; the write side is in
 * stream_write.c, the Lua methods in stream_lua.c. */
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

static void sink_waiting(jr_sink *sink, int in_flight);

/* Calls the callback `ref` with the nargs values on top of cbL's stack. A
 * failing callback closes the stream (nothing above it to raise to). */
void jr_stream_call_back(jr_stream *s, int ref, int nargs)
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
    jr_stream_call_back(s, s->on_message, 2);
}

/* A layer error, answered as the layer says (refuse). */
static void tell_peer(jr_stream *s)
{
    if (s->layer->ops->refuse(s->layer, &s->pending) != 0)
        jr_stream_close(s, "not enough memory for a reply");
    else if (s->in_read == 0)
        jr_stream_flush_pending(s);
}

/* Takes the messages while nothing holds reading back: each goes to the
 * endpoint at epi (0: to on_message), in place (the layer's buffer stays
 * put until it returns, as deliver does not run again meanwhile). A layer
 * error is reported and answered; returns 1 when the layer cannot go on. */
static int take_messages(jr_stream *s, lua_State *L, int epi)
{
    const char *msg;
    size_t len;
    int r;
    /* a pause or a full write queue holds back the messages already
     * buffered too: resume (or the queue draining) delivers them */
    while (!uv_is_closing(&s->u.handle) && !s->paused && !s->throttled && !s->finishing
           && !s->full && (r = s->layer->ops->next(s->layer, &msg, &len)) != 0) {
        if (r == 1) {
            s->messages++;
            if (epi) {   /* streams do not match answers to messages: any tag */
                jr_endpoint_receive(L, epi, msg, len, s->messages);
            } else {
                lua_pushlstring(L, msg, len);
                jr_stream_call_back(s, s->on_message, 1);
            }
            continue;
        }
        lua_pushfstring(L, "framing error: %s", s->layer->ops->error(s->layer));
        report(s, lua_tostring(L, -1));
        lua_pop(L, 1);
        tell_peer(s);
        if (s->layer->ops->broken(s->layer))
            return 1;
    }
    return 0;
}

typedef struct delivery_run {
    jr_stream *s;
    int broken;
} delivery_run;

/* The protected call of a read: the messages it brought, to the endpoint,
 * in one call (on luv's loop, each call is a trip through its cb_pcall). */
static int deliver_protected(lua_State *L)
{
    delivery_run *run = (delivery_run *)lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->s->ep_ref);
    run->broken = take_messages(run->s, L, lua_gettop(L));
    return 0;
}

/* Serves what was read: C to C, the endpoint's answers coming back through
 * the sink. A message whose callback raised (or that ran out of memory) is
 * reported, and the messages after it are still delivered. */
static int serve_messages(jr_stream *s)
{
    lua_State *L = s->h.loop->cbL;
    delivery_run run;
    run.s = s;
    run.broken = 0;
    for (;;) {
        unsigned long before = s->messages;
        lua_pushcfunction(L, deliver_protected);
        lua_pushlightuserdata(L, &run);
        if (jr_loop_call(s->h.loop, 1) == 0)
            return run.broken;
        if (s->messages == before) {   /* failed before taking a message: no progress */
            jr_stream_close(s, lua_tostring(L, -1) ? lua_tostring(L, -1) : "delivery failed");
            lua_pop(L, 1);
            return 0;
        }
        if (s->on_message != LUA_NOREF && !s->h.loop->closing) {
            lua_pushnil(L);
            lua_insert(L, -2);
            jr_stream_call_back(s, s->on_message, 2);
        } else {
            lua_pop(L, 1);
        }
    }
}

void jr_stream_deliver(jr_stream *s)
{
    int broken;
    /* A callback below may resume the stream, which delivers: the loop
     * here goes on by itself, and must be the only one taking messages. */
    if (s->delivering)
        return;
    s->delivering = 1;
    s->in_read++;   /* the answers to what is delivered now go out in one write */
    broken = s->ep != NULL ? serve_messages(s) : take_messages(s, s->h.loop->cbL, 0);
    if (broken) {
        s->in_read--;
        s->delivering = 0;
        jr_stream_close(s, s->layer->ops->error(s->layer));
        return;
    }
    if (!s->burst)
        s->layer->ops->shrink(s->layer);   /* the burst is over: give back its memory */
    s->delivering = 0;
    s->in_read--;
    if (s->in_read == 0)
        jr_stream_flush_pending(s);
    if (s->draining && (s->ep == NULL || s->ep->in_flight == 0) && !uv_is_closing(&s->u.handle))
        jr_stream_finish_now(s);   /* the last handler finished while this ran */
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
int jr_stream_account(jr_stream *s)
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
        jr_stream_deliver(s);
        if (!uv_is_closing(&s->u.handle) && jr_stream_account(s) == 0)
            jr_deadline_read(s, s->messages != before);
    } else if (n == UV_EOF) {
        /* the peer shut down its side; with on_eof, Lua lets the requests
         * it sent be answered first (a half-close), else it is the end */
        s->eof = 1;
        jr_stream_stop_reading(s);
        if (s->ep == NULL || s->layer->ops->broken(s->layer)) {
            jr_stream_close(s, "closed by the peer");
            return;
        }
        if (s->on_eof != LUA_NOREF)
            jr_stream_call_back(s, s->on_eof, 0);   /* the calls waiting on it fail */
        if (!s->draining) {
            s->draining = 1;
            snprintf(s->reason, sizeof s->reason, "closed by the peer");
        }
        s->full = 0;   /* what it sent before is answered, whatever the limit */
        jr_stream_deliver(s);
        if (s->ep->in_flight == 0)
            jr_stream_finish_now(s);
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

int jr_stream_start_reading(jr_stream *s)
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

void jr_stream_stop_reading(jr_stream *s)
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
    jr_stream_stop_reading(s);
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
    s->sink.put = jr_stream_sink_put;
    s->sink.done = NULL;
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
    return jr_stream_start_reading(s);
}

/* ---- Lua methods ---- */

/* The endpoint's handlers waiting: too many stop reading until one
 * finishes; a graceful close finishes once none is left. */
static void sink_waiting(jr_sink *sink, int in_flight)
{
    jr_stream *s = (jr_stream *)((char *)sink - offsetof(jr_stream, sink));
    if (uv_is_closing(&s->u.handle))
        return;
    if (s->max_in_flight > 0 && in_flight >= s->max_in_flight && !s->full && !s->eof) {
        s->full = 1;
        jr_stream_stop_reading(s);
    } else if (s->full && in_flight < s->max_in_flight) {
        s->full = 0;
        jr_stream_start_reading(s);
        jr_stream_deliver(s);   /* what was read before the limit */
    }
    if (s->draining && in_flight == 0 && !s->delivering)
        jr_stream_finish_now(s);
}

/* stream:jr_stream_finish_now([reason]): closes once what is queued has been written. */

/* ---- what the Lua methods (stream_lua.c) and the drivers use ---- */

void jr_stream_pause(jr_stream *s)
{
    s->paused = 1;
    jr_stream_stop_reading(s);
}

void jr_stream_resume(jr_stream *s)
{
    if (!s->paused)
        return;
    s->paused = 0;
    jr_stream_start_reading(s);
    jr_stream_deliver(s);   /* what arrived before the pause */
}

void jr_stream_serve(jr_stream *s, jr_endpoint *ep, int ref, int max_in_flight)
{
    s->ep_ref = ref;
    s->ep = ep;
    s->max_in_flight = max_in_flight;
    jr_endpoint_attach(ep, &s->sink);
}

