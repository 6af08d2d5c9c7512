/* A JSON-RPC byte stream over a libuv stream (TCP, Unix socket, pipe):
 * bytes in through a framer, whole messages out to Lua; messages from Lua
 * framed and queued for writing, with backpressure. */
#ifndef JSONRPC_STREAM_H
#define JSONRPC_STREAM_H

#include "dispatch.h"
#include "framing.h"
#include "loop.h"

#define JR_DEFAULT_HIGH_WATER (8u << 20)   /* queued write bytes */

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
    jr_framer framer;
    int on_message, on_close, on_drain;   /* registry refs of the Lua callbacks */
    int serve;                /* registry ref of the serve table, or LUA_NOREF */
    jr_sink sink;             /* where the dispatcher puts replies */
    int reading;              /* uv_read_start is in effect */
    int throttled;            /* reading stopped while writes are queued */
    int paused;               /* reading stopped by Lua (pause/resume) */
    int finishing;            /* shutting down after the queued writes */
    int in_read;              /* delivering what one read brought */
    int delivering;           /* deliver() is running */
    int writes;               /* our writes in flight (not called back) */
    int want_drain;           /* call on_drain once all is written */
    int write_failed;         /* a write failed: nothing more is written */
    jr_buf pending;           /* texts collected for the next write */
    size_t high_water;        /* queued bytes above which reading stops */
    char reason[200];         /* why it closed */
    struct jr_stream **box;   /* the Lua object's pointer, cleared on close */
} jr_stream;

/* A new stream (its userdata pushed); the caller initialises s->u, then
 * calls jr_stream_opened. */
jr_stream *jr_stream_new(lua_State *L, jr_loop *loop, jr_frame_kind kind, size_t max_message);
/* Registers the initialised handle (the stream's userdata at idx). */
void jr_stream_opened(lua_State *L, jr_stream *s, int idx);
/* Starts reading (once connected); 0 or a libuv error. */
int jr_stream_start(jr_stream *s);
/* Makes s write through s->w (which the caller has initialised). */
void jr_stream_split(jr_stream *s);
/* Closes with a reason (the first reason given is kept). */
void jr_stream_close(jr_stream *s, const char *reason);

/* Adds the stream metatable. */
void jr_stream_open(lua_State *L);

#endif
