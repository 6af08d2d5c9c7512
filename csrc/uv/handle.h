/* The life of our libuv handles, as luv's luv_setup_handle does it for its
 * own: every handle is a malloc'd owner struct starting with a jr_handle,
 * and a Lua object (a "box": a userdata holding the owner's pointer) that
 * is referenced while the handle is open and finds NULL once it closed.
 * Memory from malloc, not from Lua: a handle may outlive the Lua state's
 * finalizers (libuv calls back after it closed). */
#ifndef JSONRPC_HANDLE_H
#define JSONRPC_HANDLE_H

#include <uv.h>
#include "common/class.h"

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

typedef struct jr_loop jr_loop;   /* loop.h */

/* One handle of ours: registered with the loop until closed. */
typedef struct jr_handle {
    jr_luv_handle luv;        /* first: what handle->data points to */
    jr_loop *loop;
    struct jr_handle *prev, *next;
    uv_handle_t *uv;          /* the libuv handle (inside the owner) */
    void (*on_close)(struct jr_handle *);    /* optional: closing starts */
    void (*on_closed)(struct jr_handle *);   /* the owner lets go of what
                                                it holds (not itself) */
    void **box;               /* the Lua object's pointer to the owner,
                                 cleared when the handle has closed */
    int frees_itself;         /* the owner has other libuv handles and frees
                                 itself (in on_closed) when they are closed */
} jr_handle;

/* A new owner of `size` bytes (zeroed, its jr_handle first) and its box
 * of class mt, pushed. on_closed runs once libuv is done with the handle;
 * then the box is cleared and the owner freed. Raises when out of memory. */
void *jr_handle_new(lua_State *L, size_t size, const char *mt,
                    void (*on_closed)(jr_handle *));

/* Frees an owner whose libuv handle was never initialised (its box stays,
 * closed). */
void jr_handle_drop(jr_handle *h);

/* Registers h (whose ->uv is set) under the Lua object at idx, which is
 * kept alive (referenced) until the handle is closed. */
void jr_handle_open(lua_State *L, jr_loop *loop, jr_handle *h, int idx);

/* Closes h (once); h->on_closed runs when libuv is done with it. */
void jr_handle_close(jr_handle *h);

/* Pushes the Lua object of h (its registry ref). */
void jr_handle_push(lua_State *L, const jr_handle *h);

/* The owner in the box at idx, which must be of class mt (NULL once
 * closed). */
void *jr_handle_check(lua_State *L, int idx, const char *mt);

/* Methods every handle class may take: close() and is_closing(), and a
 * __tostring ("jsonrpc.timer: 0x..." / "jsonrpc.timer (closed)"). They
 * check the class through __name. */
int jr_handle_l_close(lua_State *L);
int jr_handle_l_is_closing(lua_State *L);
int jr_handle_l_tostring(lua_State *L);

#endif
