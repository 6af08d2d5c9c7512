/* A stream: a message layer on a libuv stream (TCP, a Unix socket, a
 * pipe), the driver of an endpoint: bytes in through the layer, messages to
 * the endpoint, its answers framed and queued for writing, with
 * backpressure (stream.c; the Lua methods in stream_lua.c). */
#ifndef JSONRPC_STREAM_H
#define JSONRPC_STREAM_H

#include "deadline.h"
#include "rpc/endpoint.h"
#include "framing/framing.h"
#include "framing/layer.h"
#include "listen_limits.h"
#include "loop.h"

#define JR_STREAM_MT "jsonrpc.stream"
#define JR_DEFAULT_HIGH_WATER (8u << 20)   /* queued write bytes */
/* Listeners face strangers: tighter defaults than the connections a user
 * opens to peers of their choosing (which keep JR_DEFAULT_MAX_MESSAGE and
 * no timeouts). Idle connections are not timed out by default: language
 * servers and dashboards idle for hours. */
#define JR_LISTEN_MAX_MESSAGE ((size_t)16 << 20)
#define JR_LISTEN_HIGH_WATER ((size_t)1 << 20)   /* queued for one stranger */
#define JR_LISTEN_FRAME_TIMEOUT 30          /* seconds */
#define JR_LISTEN_SEND_TIMEOUT 60           /* seconds */

typedef struct jr_stream {
    jr_handle h;              /* first */
    union {                   /* the read side (and the write side too,
                                 unless the stream is split) */
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } u;
    union {                   /* the write side of a split stream (stdio,
                                 a child's pipes) */
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } w;
    uv_stream_t *writer;      /* &u.stream, or &w.stream when split */
    int handles;              /* libuv handles not closed yet */
    jr_layer *layer;          /* the message layer (malloc'd) */
    int on_message, on_close, on_drain, on_eof;   /* registry refs of Lua callbacks */
    jr_endpoint *ep;          /* the endpoint messages go to, or NULL */
    int ep_ref;               /* its registry ref, or LUA_NOREF */
    jr_sink sink;             /* where the endpoint puts its texts */
    int max_in_flight;        /* handlers waiting at once before reading
                                 stops (0: no limit) */
    int full;                 /* reading stopped at max_in_flight */
    int draining;             /* closing once no handler waits */
    int reading;              /* uv_read_start is in effect */
    int throttled;            /* reading stopped while writes are queued */
    int paused;               /* reading stopped by Lua (pause/resume) */
    int finishing;            /* shutting down after the queued writes */
    int eof;                  /* the peer shut down its side */
    int in_read;              /* delivering what one read brought */
    int delivering;           /* deliver() is running */
    int writes;               /* our writes in flight (not called back) */
    size_t write_bytes;       /* the bytes they carry */
    int want_drain;           /* call on_drain once all is written */
    unsigned long messages;   /* messages taken from the layer */
    size_t read_size;         /* room offered to the next read when low */
    size_t offered;           /* room offered to the last read */
    int burst;                /* the last read filled it: more may wait */
    int write_failed;         /* a write failed: nothing more is written */
    jr_buf pending;           /* texts collected for the next write */
    jr_deadline deadline;     /* frame, idle and send timeouts */
    jr_limits *limits;        /* the listener's, for accepted streams */
    jr_peer_addr peer;        /* as counted by limits */
    size_t held;              /* bytes counted against limits */
    size_t high_water;        /* queued bytes above which reading stops */
    char reason[200];         /* why it closed */
    const char *errname;      /* the libuv error it closed for ("EPIPE"), or NULL */
} jr_stream;

/* A new stream (its userdata pushed) with a stream framing; the caller
 * initialises s->u, then calls jr_stream_opened. */
jr_stream *jr_stream_new(lua_State *L, jr_loop *loop, jr_frame_kind kind, size_t max_message);
/* Frees a stream whose handles could not be initialised (its userdata
 * stays, closed). */
void jr_stream_drop(jr_stream *s);
/* Registers the initialised handle (the stream's userdata at idx). */
void jr_stream_opened(lua_State *L, jr_stream *s, int idx);
/* Starts reading (once connected); 0 or a libuv error. */
int jr_stream_start(jr_stream *s);
/* Makes s write through s->w (which the caller has initialised). */
void jr_stream_split(jr_stream *s);
/* Counts the stream against a listener's limits (with a reference); NULL
 * when admitted, else why not. */
const char *jr_stream_admit(jr_stream *s, jr_limits *lim);
/* Bytes queued for writing: collected, or in writes not called back. */
size_t jr_stream_queued(const jr_stream *s);
/* Closes with a reason (the first reason given is kept). */
void jr_stream_close(jr_stream *s, const char *reason);

/* Frames text and queues it: 0, or -1 when out of memory. check says
 * beforehand whether the layer can carry it (NULL, or why not). */
int jr_stream_write(jr_stream *s, const char *text, size_t n);
const char *jr_stream_check(const jr_stream *s, const char *text, size_t n);
/* Writes what is collected now; returns the bytes still queued (on_drain
 * is called once they are written). */
size_t jr_stream_flush(jr_stream *s);
/* Bytes not handed to the kernel yet. */
size_t jr_stream_unsent(const jr_stream *s);
/* Stops / restarts reading (what arrived meanwhile is delivered). */
void jr_stream_pause(jr_stream *s);
void jr_stream_resume(jr_stream *s);
/* Closes once what is queued has been written. */
void jr_stream_finish(jr_stream *s, const char *reason);
/* Reads no more, lets the endpoint's waiting handlers finish and their
 * answers be written, then finishes. */
void jr_stream_shutdown(jr_stream *s, const char *reason);
/* Hands messages to ep (registry ref `ref`, released on close); reading
 * stops while max_in_flight handlers wait (0: no limit). */
void jr_stream_serve(jr_stream *s, jr_endpoint *ep, int ref, int max_in_flight);

/* Internal to stream.c (life, reading) and stream_write.c (writing). */
void jr_stream_call_back(jr_stream *s, int ref, int nargs);
int jr_stream_account(jr_stream *s);
int jr_stream_start_reading(jr_stream *s);
void jr_stream_stop_reading(jr_stream *s);
void jr_stream_deliver(jr_stream *s);
void jr_stream_flush_pending(jr_stream *s);
void jr_stream_finish_now(jr_stream *s);
int jr_stream_sink_put(jr_sink *sink, unsigned long tag, const char *text, size_t n);

/* Adds the stream metatable. */
void jr_stream_open(lua_State *L);

#endif
