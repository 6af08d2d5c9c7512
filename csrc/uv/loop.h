/* The event loop the transports run on.
 *
 * The loop is luv's when luv is loaded (so luv timers, luv sockets and our
 * connections share it and uv.run() and jsonrpc.run() are interchangeable),
 * else libuv's default loop. Every handle we open is registered here; a
 * sentinel closes those still open when the Lua state closes, before luv's
 * own loop collector runs (which would otherwise close them as its own). */
#ifndef JSONRPC_LOOP_H
#define JSONRPC_LOOP_H

#include <uv.h>
#include "common/buffer.h"

#include "handle.h"

struct jr_loop {
    uv_loop_t *uv;
    int luv;                  /* luv's loop (else libuv's default) */
    void *luv_ctx;            /* luv's luv_ctx_t, or NULL without luv */
    int running;              /* jsonrpc.run() is in uv_run */
    int closing;              /* the Lua state is closing: no Lua calls */
    int orphaned;             /* closing, and the sentinel left: the last
                                 close frees the loop */
    lua_State *cbL;           /* the thread callbacks run on */
    jr_handle handles;        /* sentinel of the list of open handles */
};

/* The loop of this Lua state (made on first use). */
jr_loop *jr_loop_get(lua_State *L);

/* A handle of loop has closed: frees an orphaned loop with the last. */
void jr_loop_handle_closed(jr_loop *loop);

/* Adds run to the table on top. */
void jr_loop_open(lua_State *L);

#endif
