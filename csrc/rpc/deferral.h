/* A deferral: a dispatch whose handlers the caller runs, in Lua.
 *
 * Some hosts must run handlers on Lua call chains of their own: in
 * OpenResty a handler may yield to nginx (ngx.sleep, cosockets) only from
 * Lua calls that nginx resumes, never from a coroutine that C resumed. A
 * deferral reads a text as server:handle does (envelopes, params,
 * protocol errors, hooks, all in C) but hands each handler back with its
 * arguments instead of calling it. The caller runs it under xpcall with
 * core.capture_failure and gives the outcome back; C writes its answer,
 * and a batch's whole array, in request order, once its last member is
 * settled. Nothing is made per handler but the values it is given.
 *
 *   core.deferral(server [, log]) -> deferral
 *   deferral:begin(text [, context [, make_context [, arg]]])
 *       -> true, n, fn, args...   a lone request with n <= 4 arguments:
 *                                 run fn(args...), settle member 1
 *        | count, answer | nil    else count members to run (0: none; a
 *                                 lone request with more arguments is 1),
 *                                 and the answer when it is whole already
 *   deferral:member(i) -> n, fn, args...     (1 <= i <= count; n args)
 *   deferral:settle(i, ok, a, b) -> answer | nil
 *       the outcome of member i (a lone request is member 1), as xpcall
 *       returned it; returns the text's answer once it is whole
 *
 * log(message, traceback, req) gets handlers' plain errors when the
 * server has no on_error. A deferral takes one text at a time: begin
 * again only once every member is settled. */
#ifndef JSONRPC_DEFERRAL_H
#define JSONRPC_DEFERRAL_H

#include "batch.h"
#include "response.h"
#include "common/compat.h"

#define JR_DEFERRAL_MT "jsonrpc.deferral"

#define JR_DEFERRED_ID 24   /* ids up to this long are kept in the struct */

/* One handler handed back: its values in the uservalue table from `at`:
 * its raw id text when longer than JR_DEFERRED_ID, its request table
 * when there are hooks, then, for a batch member, the handler and its
 * args. */
typedef struct jr_deferred {
    int at;
    int nargs;
    long slot;        /* its place in the batch's answer, or -1: none owed */
    int settled;
    int id_kind;      /* DEFERRED_NO_ID, _ID_HERE (in id), _ID_KEPT (at `at`) */
    size_t id_len;
    char id[JR_DEFERRED_ID];
} jr_deferred;

enum { DEFERRED_NO_ID, DEFERRED_ID_HERE, DEFERRED_ID_KEPT };

typedef struct jr_deferral {
    int busy;               /* begun, and not every member settled */
    int lone;               /* the text is a lone request, not a batch */
    int on_stack;           /* its handler was left on the stack, for begin */
    long count, settled;
    jr_deferred *members;   /* malloc'd, count in use */
    long cap;
    int used;               /* uservalue slots in use, below `used` */
    jr_batch *batch;        /* the batch's answers, or NULL */
    const struct jr_server *srv;   /* its server (kept by the uservalue) */
    jr_buf *out;            /* answers written the short way (its box is
                               in the uservalue) */
} jr_deferral;

/* Slots of the uservalue table; the members' values follow. (No context
 * is kept: settle needs none, the hooks' request tables carry it.) */
enum { DV_LOG = 1, DV_SERVER, DV_OUT, DV_FIRST };

/* Offsets of a member's values from its `at`. */
enum { M_ID, M_REQ, M_FN };

struct jr_exchange;
struct jr_envelope;

/* jr_invoke in a deferral: files the handler (at top - nargs) and its
 * nargs arguments as a member. A lone request's stay on top, for begin to
 * return, when there are at most JR_LONE_ARGS (the caller takes them in
 * fixed slots: a Lua function of varargs is slower in LuaJIT). Returns 2
 * (its answer comes later). */
#define JR_LONE_ARGS 4
int jr_defer(struct jr_exchange *x, const struct jr_envelope *e, int nargs);

/* Writes the answer of member i (0-based), whose outcome (ok, a, b) is at
 * ok, ok + 1, ok + 2, in x (opened for it, with the deferral's uservalue
 * table as x->dv). Returns 1 with the text's answer (a string, or nil when
 * it has none) on top when it is whole now, else 0. */
int jr_deferral_settle(struct jr_exchange *x, jr_deferral *d, long i, int ok);

/* The short way of the same, for a handler that returned a value to
 * answer (or a notification's that returned) when the server has no
 * hooks: no exchange is opened. k gives the kind metatables. Returns as
 * jr_deferral_settle does, or -1 (nothing done) when the outcome must go
 * the general way. */
int jr_deferral_settle_result(lua_State *L, jr_deferral *d, long i, int ok,
                              const jr_kinds *k);

/* Forgets the members handed out (their values, the batch). */
void jr_deferral_reset(lua_State *L, jr_deferral *d, int dv);

/* Adds deferral and capture_failure to the table on top. */
void jr_deferral_open(lua_State *L);

#endif
