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

/* The head of luv's luv_ctx_t (luv.h): its loop, and the function luv
 * calls every callback through (luv's own, or the host's: Neovim puts its
 * wrapper there, which marks the call as a fast event). */
typedef struct jr_luv_ctx {
    uv_loop_t *loop;
    lua_State *L;
    int (*cb_pcall)(lua_State *L, int nargs, int nresults, int flags);
} jr_luv_ctx;

struct jr_loop {
    uv_loop_t *uv;
    int luv;                  /* luv's loop (else libuv's default) */
    jr_luv_ctx *luv_ctx;      /* luv's context, or NULL without luv */
    int depth;                /* our callbacks running (jr_loop_call) */
    int running;              /* jsonrpc.run() is in uv_run */
    int closing;              /* the Lua state is closing: no Lua calls */
    int orphaned;             /* closing, and the sentinel left: the last
                                 close frees the loop */
    lua_State *cbL;           /* the thread callbacks run on */
    jr_handle handles;        /* sentinel of the list of open handles */
};

/* The loop of this Lua state (made on first use). */
jr_loop *jr_loop_get(lua_State *L);

/* The one way the drivers call Lua: the function below the nargs values
 * on top of loop->cbL, protected. On luv's loop it goes through luv's
 * cb_pcall (so a host's rules for callbacks apply: Neovim's fast events),
 * with our own protected call inside, so that an error still comes back
 * here. 0, or a Lua error status with the message on top. While it runs,
 * the loop cannot be run from Lua (jsonrpc.run fails at once). */
int jr_loop_call(jr_loop *loop, int nargs);

/* A handle of loop has closed: frees an orphaned loop with the last. */
void jr_loop_handle_closed(jr_loop *loop);

/* Adds run to the table on top. */
void jr_loop_open(lua_State *L);

#endif
