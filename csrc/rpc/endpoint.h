/* The endpoint: both directions of one JSON-RPC connection, in C.
 *
 * One userdata owns what a connection's dispatch needs: its server, its
 * context, its hooks (on_stray, log, report), the outgoing-call table
 * keyed by the raw id text, and the handlers waiting in coroutines with
 * their batches. Lua values hang off its uservalue (the EP_* slots); counts
 * and flags are in the struct.
 *
 * Texts go out through a sink when a driver (a stream) has attached one,
 * else through the Lua send function given at creation. A driver hands
 * every message it frames to jr_endpoint_receive, inside one protected
 * call: requests are dispatched and their answers put to the sink,
 * responses are matched to the calls waiting for them, all in C. */
#ifndef JSONRPC_ENDPOINT_H
#define JSONRPC_ENDPOINT_H

#include "server.h"

#define JR_ENDPOINT_MT "jsonrpc.endpoint"

/* Where an endpoint's texts go: implemented by a driver.
 *
 * Each message a driver delivers carries a tag of the driver's choosing
 * (jr_delivery.tag). put takes one whole answer to the message `tag` (the
 * driver frames it) and returns 0, or -1 when it cannot take it (the driver
 * has closed for that, out of memory). done says that the message `tag`
 * is answered for good: after its put, or with no put at all when it asked
 * for no answer (notifications, responses). Answers of handlers that wait
 * come later, and in any order; a layer that must answer in order (HTTP
 * pipelining) or must answer every message (HTTP's 204) holds and matches
 * them by tag. done may be NULL (streams need no matching). waiting is told
 * how many handlers wait after each change: a driver stops reading at its
 * limit and finishes a graceful close at 0. */
typedef struct jr_sink jr_sink;
struct jr_sink {
    int (*put)(jr_sink *sink, unsigned long tag, const char *text, size_t len);
    void (*done)(jr_sink *sink, unsigned long tag);
    void (*waiting)(jr_sink *sink, int in_flight);
};

typedef struct jr_endpoint {
    jr_sink *sink;            /* NULL: texts go to the Lua send function */
    int detached;             /* its driver closed: answers are dropped */
    long long last_id;        /* of our calls */
    long pending;             /* our calls waiting for a response */
    long timed_out;           /* ids in the timed-out set */
    int in_flight;            /* handlers waiting in their coroutines */
    int host_starts;          /* a host's start function starts handlers */
    int has_null;             /* EP_NULL is set (the per-message path looks only then) */
} jr_endpoint;

/* Slots of the endpoint's uservalue table. */
enum {
    EP_SERVER = 1,  /* its server userdata */
    EP_CONTEXT,     /* the context handlers may take */
    EP_SEND,        /* send(text), or nil when a sink takes the texts */
    EP_ON_STRAY,    /* on_stray(reason, id) for responses no call waits for */
    EP_LOG,         /* log(message, traceback, req): handlers' plain errors
                       when the server has no on_error hook */
    EP_REPORT,      /* report(message): errors raised by our callbacks
                       while a driver delivers; nil: they are raised */
    EP_PENDING,     /* raw id text -> settle(result, err) of a call */
    EP_TIMED_OUT,   /* raw id text -> true: calls given up (late answers
                       are dropped quietly) */
    EP_START,       /* start(run, ...): how the host starts a handler, or
                       nil: in a pooled coroutine of ours (handlers.c) */
    EP_NULL,        /* what null decodes to on this endpoint, or nil: the
                       server's */
    EP_COUNT = EP_NULL
};

/* The endpoint userdata at idx, or NULL. */
jr_endpoint *jr_to_endpoint(lua_State *L, int idx);

/* Dispatches one message text (a request, a response, a batch) of the
 * endpoint at ep_idx; its answers go out under tag. Raises only what a
 * callback raised when the endpoint has no report function, and memory
 * errors. */
void jr_endpoint_receive(lua_State *L, int ep_idx, const char *text, size_t len,
                         unsigned long tag);

/* A message a driver hands over, in place (not copied: it must stay put
 * until jr_endpoint_deliver returns). */
typedef struct jr_delivery {
    const char *text;
    size_t len;
    unsigned long tag;        /* given back with its answers (jr_sink) */
} jr_delivery;

/* lua_CFunction for a driver's protected call: (endpoint, light userdata
 * of a jr_delivery) -> nothing; jr_endpoint_receive inside. */
int jr_endpoint_deliver(lua_State *L);

/* Attaches a driver's sink (texts go there from now on), or detaches it
 * (sink NULL: the driver closed; answers are dropped from now on). */
void jr_endpoint_attach(jr_endpoint *ep, jr_sink *sink);

/* Whether a handler or a call still waits (the connection is not idle). */
int jr_endpoint_busy(const jr_endpoint *ep);

/* Adds endpoint to the table on top. */
void jr_endpoint_open(lua_State *L);

#endif
