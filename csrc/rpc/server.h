/* The server object: a method registry with its limits and hooks
 * (server_lua.c). What a dispatch needs of it hangs off its uservalue, the
 * server's data table, at the D_* slots. */
#ifndef JSONRPC_SERVER_H
#define JSONRPC_SERVER_H

#include "codec/codec.h"

#define JR_SERVER_MT "jsonrpc.server"
#define JR_DEFAULT_MAX_BATCH 1000

typedef struct jr_server {
    int expose_errors;      /* plain Lua errors reach the peer */
    int has_null;           /* D_NULL is set */
    int hooks;              /* how many of the hooks are set */
    int max_depth;
    size_t max_batch;
    size_t max_message;
    size_t max_values;      /* values decoded from one message */
    jr_buf *out, *scratch;  /* reused buffers (their boxes are in the data
                               table, which keeps them alive) */
} jr_server;

/* Slots of a server's data table (integer keys, for speed). */
enum {
    D_METHODS = 1,   /* name -> handler, or its entry (envelope.h) */
    D_ON_REQUEST, D_ON_RESPONSE, D_ON_ERROR,   /* hooks, or nil */
    D_OUT, D_SCRATCH,   /* the boxes of srv->out and srv->scratch */
    D_THREADS,       /* handler threads kept for reuse */
    D_MSGH,          /* the message handler: jr_capture_failure */
    D_ARRAY_MT, D_OBJECT_MT,   /* the kind metatables */
    D_RUNNER,        /* what each handler's thread runs (handlers.c) */
    D_HOST_RUNNER,   /* what a host's start() runs for a handler */
    D_NULL,          /* what null decodes to (vim.NIL, say), or nil: jsonrpc.null */
    D_COUNT = D_NULL
};

/* The server userdata at idx, or NULL. */
jr_server *jr_to_server(lua_State *L, int idx);

/* Adds server to the table on top. */
void jr_server_open(lua_State *L);

#endif
