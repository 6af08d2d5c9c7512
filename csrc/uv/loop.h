/* The event loop the transports run on, and the life of their handles.
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

/* The head of luv's luv_handle_t (luv 1.44, lhandle.h). luv reads this from
 * handle->data for every handle on its loop: uv.walk() pushes the object
 * registered under `ref` and calls it through ctx. Every handle of ours
 * starts with this, so uv.walk() sees our Lua objects. */
typedef struct jr_luv_handle {
    int ref;                  /* registry ref of our Lua object */
    int callbacks[2];         /* LUA_NOREF: luv never calls them for us */
    void *ctx;                /* luv's luv_ctx_t, or NULL without luv */
    void *extra;
    void (*extra_gc)(void *);
} jr_luv_handle;

typedef struct jr_loop jr_loop;

/* One handle of ours: registered with the loop until closed. */
typedef struct jr_handle {
    jr_luv_handle luv;        /* first: what handle->data points to */
    jr_loop *loop;
    struct jr_handle *prev, *next;
    uv_handle_t *uv;          /* the libuv handle (inside the owner) */
    void (*on_close)(struct jr_handle *);    /* optional: closing starts */
    void (*on_closed)(struct jr_handle *);   /* the owner frees itself */
} jr_handle;

struct jr_loop {
    uv_loop_t *uv;
    int luv;                  /* luv's loop (else libuv's default) */
    int running;              /* jsonrpc.run() is in uv_run */
    int closing;              /* the Lua state is closing: no Lua calls */
    int orphaned;             /* closing, and the sentinel left: the last
                                 close frees the loop */
    lua_State *cbL;           /* the thread callbacks run on */
    jr_handle handles;        /* sentinel of the list of open handles */
};

/* The loop of this Lua state (made on first use). */
jr_loop *jr_loop_get(lua_State *L);

/* Registers h (whose ->uv is set) under the Lua object at idx, which is
 * kept alive (referenced) until the handle is closed. */
void jr_handle_open(lua_State *L, jr_loop *loop, jr_handle *h, int idx);

/* Closes h (once); h->on_closed runs when libuv is done with it. */
void jr_handle_close(jr_handle *h);

/* Pushes the Lua object of h (its registry ref). */
void jr_handle_push(lua_State *L, const jr_handle *h);

/* Adds run and timer to the table on top. */
void jr_loop_open(lua_State *L);

#endif
