/* The write side of a stream: the endpoint's texts (through the sink) and
 * stream:write's are framed by the layer into `pending`, and written.
 *
 * Writes are coalesced: while one read is delivered (or what a completed
 * write wakes runs), and while libuv still holds bytes it could not write,
 * texts collect in `pending`, which goes out in one write when the callback
 * ends or the write completes. So a burst of answers or notifications costs
 * one system call, and a lone text goes out at once, even from a script
 * that is not running the loop. Past high_water bytes queued, reading
 * stops until the queue is down to half. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "stream.h"

#define HAND_OVER ((size_t)65536)   /* pending bytes given to a write, not copied */
#define PENDING_KEEP ((size_t)4096)

typedef struct write_req {
    uv_write_t req;
    jr_stream *s;
    size_t n;                 /* bytes it carries */
    char *owned;              /* a pending buffer handed over, or NULL */
    char data[1];             /* else the bytes, copied */
} write_req;

/* Bytes whose writes have not been called back, and ours collected: a
 * write the kernel took at once still holds its memory until libuv calls
 * it back in the next loop turn, so a handler that sends a million
 * notifications between two turns must see them. */
size_t jr_stream_queued(const jr_stream *s)
{
    return s->write_bytes + s->pending.len;
}

/* The peer does not read what we write: stop reading from it. */
static void throttle_if_full(jr_stream *s)
{
    if (jr_stream_queued(s) <= s->high_water)
        return;
    if (s->reading) {
        s->throttled = 1;
        jr_stream_stop_reading(s);
    }
}

/* Everything is written and a flush asked to know: tell Lua. */
static void drained(jr_stream *s)
{
    if (!s->want_drain || jr_stream_queued(s) > 0 || s->writes > 0 || s->on_drain == LUA_NOREF)
        return;
    s->want_drain = 0;
    jr_stream_call_back(s, s->on_drain, 0);
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
    if (jr_stream_account(s) != 0)
        return;
    /* what runs from here (a handler woken by the drain, say) collects
     * its texts too, and they go out together */
    s->in_read++;
    if (s->throttled && jr_stream_queued(s) <= s->high_water / 2) {
        s->throttled = 0;
        jr_stream_start_reading(s);   /* unless Lua paused it */
        jr_stream_deliver(s);         /* what was read before the queue filled */
    }
    drained(s);
    s->in_read--;
    if (s->in_read == 0)
        jr_stream_flush_pending(s);   /* with what collected while this write was out */
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
void jr_stream_flush_pending(jr_stream *s)
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
        jr_stream_flush_pending(s);   /* nothing to wait for: out at once */
    else
        throttle_if_full(s);
    (void)jr_stream_account(s);
    return 0;
}

/* The endpoint's texts; dropped once the stream closes. */
int jr_stream_sink_put(jr_sink *sink, unsigned long tag, const char *text, size_t n)
{
    jr_stream *s = (jr_stream *)((char *)sink - offsetof(jr_stream, sink));
    (void)tag;   /* a stream answers in any order */
    if (uv_is_closing(&s->u.handle))
        return -1;
    if (queue_text(s, text, n) != 0) {
        jr_stream_close(s, "not enough memory for a reply");
        return -1;
    }
    return 0;
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
void jr_stream_finish_now(jr_stream *s)
{
    finish_req *f;
    if (s->finishing || uv_is_closing(&s->u.handle))
        return;
    s->finishing = 1;
    jr_stream_stop_reading(s);
    jr_stream_flush_pending(s);   /* the shutdown waits for queued writes only */
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
    jr_stream_flush_pending(s);
    left = uv_is_closing(&s->u.handle) ? 0 : jr_stream_queued(s);
    s->want_drain = left > 0;
    return left;
}

size_t jr_stream_unsent(const jr_stream *s)
{
    return uv_stream_get_write_queue_size(s->writer) + s->pending.len;
}

void jr_stream_finish(jr_stream *s, const char *reason)
{
    if (s->finishing || uv_is_closing(&s->u.handle))
        return;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    jr_stream_finish_now(s);
}

void jr_stream_shutdown(jr_stream *s, const char *reason)
{
    if (s->draining || s->finishing || uv_is_closing(&s->u.handle))
        return;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    s->draining = 1;
    jr_stream_pause(s);
    if ((s->ep == NULL || s->ep->in_flight == 0) && !s->delivering)
        jr_stream_finish_now(s);
}
