/* The server object: method registry, limits, hooks, and the dispatch of
 * JSON-RPC texts (dispatch.c). */
#ifndef JSONRPC_DISPATCH_H
#define JSONRPC_DISPATCH_H

#include "codec/codec.h"

#define JR_DEFAULT_MAX_BATCH 1000

typedef struct jr_server {
    int expose_errors;      /* plain Lua errors reach the peer */
    int hooks;              /* how many of the hooks are set */
    int max_depth;
    size_t max_batch;
    size_t max_message;
    size_t max_values;   /* values decoded from one message */
    jr_buf *out, *scratch;  /* reused buffers (their boxes are in the data
                               table, which keeps them alive) */
} jr_server;

/* Where an endpoint's replies go when they bypass Lua: a stream passes one
 * (as a light userdata) to server:_receive, which then returns nothing. */
typedef struct jr_sink {
    void (*put)(struct jr_sink *sink, const char *text, size_t len);
} jr_sink;

/* Adds server to the table on top. */
void jr_dispatch_open(lua_State *L);

#endif
