/* One dispatch: a text in, the responses it calls for written into one
 * output buffer. Shared by the files of the dispatch core:
 *   exchange.c   reading texts, messages and batches; writing responses
 *   hooks.c      the request table for hooks, on_error, internal errors
 *   params.c     params to the handler's arguments
 *   handlers.c   running handlers: under pcall, or in coroutines that may
 *                wait (endpoints), and completing those that waited
 *   endpoint.c   responses to our calls; where texts go
 * Everything an exchange uses sits on the Lua stack at the indices below
 * (absolute), from open to close. */
#ifndef JSONRPC_EXCHANGE_H
#define JSONRPC_EXCHANGE_H

#include "batch.h"
#include "endpoint.h"
#include "envelope.h"
#include "response.h"

typedef struct jr_exchange {
    lua_State *L;
    jr_server *srv;
    jr_endpoint *ep;        /* NULL for server:handle(): handlers run under
                               pcall, and responses are not expected */
    jr_buf *out;            /* the responses written */
    jr_buf *scratch;        /* the decoder's */
    jr_decoder d;
    jr_kinds kinds;
    int data, methods, msgh;   /* the server's data table, its methods, and
                                  the message handler */
    int ctx;                /* the context */
    int make_ctx;           /* make_context(arg) (arg above it) makes the
                               context when first needed, or 0 */
    int null_value;         /* what null decodes to, or 0: jsonrpc.null */
    int epi, epv;           /* the endpoint and its uservalue table, or 0 */
    int hooks;              /* any hook set */
    int batch;              /* writing an array of responses */
    int count;              /* responses written */
    jr_batch *waiting;      /* the batch being read, once a member waits */
    unsigned long tag;      /* the driver's tag of the message (jr_sink) */
    int owed;               /* an answer of this message comes later (a
                               handler waits): no done yet */
    int log;                /* log(message, traceback, req) for handlers'
                               plain errors when not an endpoint's, or 0 */
    struct jr_deferral *deferral;   /* handlers are handed back to the
                                       caller (deferral.h), or NULL */
    int dv;                 /* the deferral's uservalue table, or 0 */
    char err[JR_ERRLEN];
} jr_exchange;

/* exchange.c */
/* Pushes the server's parts (8 slots) and lends its buffers: srv is the
 * server userdata at srv_idx, the context is at ctx_idx, ep the endpoint
 * at epi with its uservalue table at epv (NULL, 0 and 0 for
 * server:handle()). The callers have checked them. */
void jr_exchange_open(jr_exchange *x, lua_State *L, jr_server *srv, int srv_idx, int ctx_idx,
                      jr_endpoint *ep, int epi, int epv);
/* Pushes the context (made now if it is made when first needed). */
void jr_push_context(jr_exchange *x);
/* Gives the buffers back (and the batch); the stack is the caller's. */
void jr_exchange_release(jr_exchange *x);
/* Releases, then raises message. */
void jr_exchange_error(jr_exchange *x, const char *message);
/* Dispatches the text s[0..n). */
void jr_exchange_text(jr_exchange *x, const char *s, size_t n);
/* Writes a result / an error value at idx as the response to e (or, for an
 * error, id null when e is NULL). */
void jr_write_result_of(jr_exchange *x, const jr_envelope *e, int idx);
void jr_write_error_of(jr_exchange *x, const jr_envelope *e, int idx);
/* A member of the batch being read whose answer comes later: reserves its
 * place in the batch's answer (x->waiting, made for the first), after the
 * answers written so far. */
long jr_exchange_reserve(jr_exchange *x);

/* hooks.c */
/* The message handler: error values pass, anything else becomes a failure
 * {message, traceback} (upvalue-free, a lua_CFunction). */
int jr_capture_failure(lua_State *L);
int jr_is_failure(lua_State *L, int idx);
/* Pushes the Internal error value for the failure (or other non-error
 * value) at idx, after reporting it to on_error or the endpoint's log. */
void jr_push_internal_error(jr_exchange *x, int idx, int req);
/* Pushes the error value a handler's thread co died with (value at idx),
 * with co's traceback. */
void jr_push_thread_error(jr_exchange *x, lua_State *co, int idx, int req);
/* on_error(message, traceback, req), or else the endpoint's log. */
void jr_report(jr_exchange *x, int req, const char *message, const char *traceback);
/* The request table for hooks (slot JR_S_REQ), before the call. */
void jr_build_req(jr_exchange *x, const jr_envelope *e);
/* Pushes the id of e as a Lua value (nil when absent or invalid). */
void jr_push_id_value(jr_exchange *x, const jr_envelope *e);
/* Calls hook D_* with (req, nargs values on top); 1 with an error value on
 * top when it raised one, 0 otherwise. */
int jr_call_hook(jr_exchange *x, int hook, int req, int nargs);
/* on_response(req, result, err), when set. */
void jr_notify_response(jr_exchange *x, const jr_envelope *e, int result, int err);

/* params.c */
/* Leaves the handler's arguments on top and returns their count, or -1
 * with the reason pushed. */
int jr_prepare_args(jr_exchange *x, const jr_envelope *e, int entry);

/* handlers.c */
/* Pushes what each handler's thread runs, and what a host's start runs
 * (made once per Lua state). */
void jr_push_runner(lua_State *L);
void jr_push_host_runner(lua_State *L);
/* resume(co, ...), as coroutine.resume, for the wakers of handlers that
 * wait: a handler whose thread dies of an error is answered (Lua 5.1,
 * where its runner cannot catch errors across a yield). */
int jr_resume(lua_State *L);
/* Runs the handler of entry with the nargs arguments on top; leaves the
 * outcome on top: 0 with the result, 1 with an error value, 2 when it
 * waits (endpoints: its answer comes when it finishes). */
int jr_invoke(jr_exchange *x, const jr_envelope *e, int entry, int nargs);
/* Pushes a finished handler's outcome as the value to answer with:
 * returns 1 for an error value, 0 for a result. ok is whether it
 * returned; a and a + 1 are its two results, or a is what it raised (a
 * failure from capture_failure, else co's traceback is taken). req is the
 * request table's index. */
int jr_push_outcome(jr_exchange *x, lua_State *co, int ok, int a, int req);

/* endpoint.c */
/* A response from the peer: matched to the call waiting for it. */
void jr_endpoint_response(jr_exchange *x, const jr_envelope *e);
/* Sends what the exchange wrote (through the sink or the Lua send), and
 * gives the buffers back. */
void jr_endpoint_flush(jr_exchange *x);

#endif
