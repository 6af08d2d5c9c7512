/* The deadlines of one stream: a stranger must not hold a connection, or
 * the memory behind it, for ever.
 *
 *   frame timeout  a frame whose first byte has arrived must be complete
 *                  within it (counted only while we read: our own
 *                  backpressure is not the peer's fault);
 *   idle timeout   a connection with no traffic and nothing in flight
 *                  (no partial frame, nothing queued, and no handler or call
 *                  waiting on the stream's endpoint);
 *   send timeout   while bytes wait for a peer that does not read (the
 *                  kernel's buffers for it are full, so libuv holds what
 *                  we wrote), it must read something within it. Not only
 *                  above the high-water mark: a handler waiting for the
 *                  queue to drain holds less, and would wait for ever.
 *
 * One libuv timer per stream, armed for the earliest deadline and only
 * when a timeout is set. Events only move times forward; the timer
 * re-checks when it fires, so the hot path pays a clock read and a few
 * comparisons. */
#ifndef JSONRPC_DEADLINE_H
#define JSONRPC_DEADLINE_H

#include <stdint.h>
#include <uv.h>

typedef struct jr_deadline {
    uv_timer_t timer;         /* timer.data is the stream */
    int active;               /* the timer is initialised */
    uint64_t frame_ms, idle_ms, send_ms;   /* the timeouts, 0 = off */
    int frame_pending;        /* a frame has begun and is not complete */
    uint64_t frame_since;
    uint64_t active_at;       /* the last read or completed write */
    int send_pending;         /* bytes wait that the kernel would not take */
    uint64_t send_since;      /* ... and the peer has read nothing since */
    size_t send_mark;         /* the bytes queued then */
    uint64_t due;             /* when the timer fires; 0: not armed */
} jr_deadline;

struct jr_stream;

/* Sets the timeouts (seconds, 0 = off); the timer is made on first use.
 * 0, or a libuv error. */
int jr_deadline_set(struct jr_stream *s, double frame, double idle, double send);
/* A read was delivered; took: it completed at least one message. */
void jr_deadline_read(struct jr_stream *s, int took);
/* A write completed: the peer reads. */
void jr_deadline_wrote(struct jr_stream *s);
/* A write could not be handed to the kernel whole: the peer is behind. */
void jr_deadline_blocked(struct jr_stream *s);
/* Reading starts again after a pause: a partial frame's clock restarts. */
void jr_deadline_resumed(struct jr_stream *s);
/* The stream closes: closes the timer (1 when it had one, whose close
 * callback is cb). */
int jr_deadline_close(struct jr_stream *s, uv_close_cb cb);

#endif
