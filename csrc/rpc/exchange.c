/* The dispatch of one JSON-RPC text.
 *
 * The hot path reads the request envelope member by member (envelope.c):
 * positional params land on the stack as the handler's arguments, the id is
 * kept as raw text, no table is built for the request; the handler runs
 * (handlers.c); its result is encoded straight into the output buffer
 * (response.c). Hooks, when set, see the request as a table, built only
 * then. A batch is checked whole (valid JSON, length) before any member
 * runs, as the specification's examples require. */
#include <stdio.h>
#include "deferral.h"
#include "errors.h"
#include "exchange.h"

#define INVALID_REQUEST "Invalid Request"

/* ---- opening and closing ---- */

void jr_exchange_open(jr_exchange *x, lua_State *L, jr_server *srv, int srv_idx, int ctx_idx,
                      jr_endpoint *ep, int epi, int epv)
{
    int at;
    /* the exchange's slots and an envelope's; the deeper pushes (params,
     * decoding, handlers, hooks) check for their own room. Asking for
     * more would grow every fresh coroutine's stack (OpenResty runs each
     * request on one), which costs more than the dispatch. */
    luaL_checkstack(L, 24, "jsonrpc dispatch");
    x->L = L;
    x->srv = srv;
    x->ep = ep;
    x->epi = epi;
    x->ctx = ctx_idx;
    at = lua_gettop(L) + 1;
    jr_get_uservalue(L, srv_idx);
    x->data = at;
    lua_rawgeti(L, x->data, D_METHODS);
    x->methods = at + 1;
    lua_rawgeti(L, x->data, D_MSGH);
    x->msgh = at + 2;
    lua_rawgeti(L, x->data, D_ARRAY_MT);
    lua_rawgeti(L, x->data, D_OBJECT_MT);
    x->kinds.mt_array = at + 3;
    x->kinds.mt_object = at + 4;
    x->kinds.max_depth = x->srv->max_depth;
    x->epv = epv;   /* the caller has it on the stack already */
    x->out = jr_buf_borrow(L, x->srv->out);           /* at + 5 */
    x->scratch = jr_buf_borrow(L, x->srv->scratch);   /* at + 6 */
    /* at + 7: the endpoint's null, else the server's (looked up only when
     * one is set: this runs for every message) */
    if (ep != NULL && ep->has_null)
        lua_rawgeti(L, epv, EP_NULL);
    else if (srv->has_null)
        lua_rawgeti(L, x->data, D_NULL);
    else
        lua_pushnil(L);
    x->null_value = lua_isnil(L, -1) ? 0 : at + 7;
    x->hooks = x->srv->hooks;
    x->batch = 0;
    x->count = 0;
    x->waiting = NULL;
    x->tag = 0;
    x->owed = 0;
    x->log = 0;
    x->make_ctx = 0;
    x->deferral = NULL;
    x->dv = 0;
}

void jr_push_context(jr_exchange *x)
{
    lua_State *L = x->L;
    if (x->make_ctx) {
        lua_pushvalue(L, x->make_ctx);
        lua_pushvalue(L, x->make_ctx + 1);
        x->make_ctx = 0;
        if (lua_pcall(L, 1, 1, 0) != 0) {   /* raised on, the buffers back first */
            jr_exchange_release(x);
            lua_error(L);
        }
        lua_replace(L, x->ctx);
    }
    lua_pushvalue(L, x->ctx);
}

void jr_exchange_release(jr_exchange *x)
{
    jr_buf_return(x->out);
    jr_buf_return(x->scratch);
    if (x->waiting != NULL) {
        jr_batch_unref(x->waiting);
        x->waiting = NULL;
    }
}

/* Raising out of a dispatch (a callback failed, memory ran out): the
 * buffers it borrowed go back first, or every later dispatch would find
 * them lent and allocate fresh ones. */
void jr_exchange_error(jr_exchange *x, const char *message)
{
    jr_exchange_release(x);
    luaL_error(x->L, "%s", message);
}

/* ---- writing responses ---- */

static int begin_response(jr_exchange *x)
{
    if (x->batch && x->count > 0 && jr_buf_addc(x->out, ',') != 0)
        return -1;
    x->count++;
    return 0;
}

static jr_id id_of(const jr_envelope *e)
{
    jr_id id = { NULL, 0 };
    if (e != NULL && (e->seen & JR_M_ID) && e->id_ok && !(e->id_len == 4 && e->id[0] == 'n')) {
        id.text = e->id;
        id.len = e->id_len;
    }
    return id;
}

/* Takes back a response that could not be encoded (the separator too);
 * writes why into `why`. */
static void take_back(jr_exchange *x, size_t mark, const char *what, char *why, size_t size)
{
    x->out->len = mark;
    x->count--;
    snprintf(why, size, "cannot encode the %s: %s", what, x->err);
}

void jr_write_error_of(jr_exchange *x, const jr_envelope *e, int err_idx)
{
    lua_State *L = x->L;
    size_t mark = x->out->len;
    char why[JR_ERRLEN + 40];
    err_idx = jr_absindex(L, err_idx);
    if (begin_response(x) != 0)
        jr_exchange_error(x, "not enough memory");
    if (jr_write_error(L, x->out, err_idx, id_of(e), &x->kinds, x->err) == 0) {
        jr_notify_response(x, e, 0, err_idx);
        return;
    }
    /* its message or data cannot be sent: report that, and answer with a
     * bare Internal error, which always encodes */
    take_back(x, mark, "error", why, sizeof why);
    jr_report(x, e ? e->base + JR_S_REQ : 0, why, "");
    jr_push_error(L, JR_INTERNAL_ERROR, "Internal error", 0);
    if (begin_response(x) != 0
        || jr_write_error(L, x->out, -1, id_of(e), &x->kinds, x->err) != 0)
        jr_exchange_error(x, "not enough memory");
    jr_notify_response(x, e, 0, lua_gettop(L));
    lua_pop(L, 1);
}

/* A protocol error (code, message, optional data text) for e or id null. */
static void write_protocol_error(jr_exchange *x, const jr_envelope *e, int code,
                                 const char *message, const char *data)
{
    lua_State *L = x->L;
    if (data != NULL)
        lua_pushstring(L, data);
    jr_push_error(L, code, message, data != NULL ? -1 : 0);
    jr_write_error_of(x, e, -1);
    lua_pop(L, data != NULL ? 2 : 1);
}

/* Invalid Request with the reason in the message too ("Invalid Request:
 * why") and as data: for limits, which a peer should see at a glance. */
static void write_limit_error(jr_exchange *x, const char *why)
{
    char message[160];
    snprintf(message, sizeof message, INVALID_REQUEST ": %s", why);
    write_protocol_error(x, NULL, JR_INVALID_REQUEST, message, why);
}

void jr_write_result_of(jr_exchange *x, const jr_envelope *e, int idx)
{
    lua_State *L = x->L;
    size_t mark = x->out->len;   /* before the separator, which goes too */
    char why[JR_ERRLEN + 40];
    idx = jr_absindex(L, idx);
    if (begin_response(x) != 0)
        jr_exchange_error(x, "not enough memory");
    if (jr_write_result(L, x->out, idx, id_of(e), &x->kinds, x->err) == 0) {
        jr_notify_response(x, e, idx, 0);
        return;
    }
    take_back(x, mark, "result", why, sizeof why);
    lua_pushstring(L, why);
    jr_push_internal_error(x, -1, e->base + JR_S_REQ);
    jr_write_error_of(x, e, -1);
    lua_pop(L, 2);
}

/* ---- one message ---- */

/* "duplicate member \"NAME\"" for a message with a member given twice (a
 * proxy reading the first and a server running the last would disagree),
 * in buf; else NULL. */
static const char *duplicate_problem(const jr_envelope *e, char buf[48])
{
    if (!e->duplicate)
        return NULL;
    snprintf(buf, 48, "duplicate member \"%s\"", jr_member_name(e->duplicate));
    return buf;
}

static const char *request_problem(const jr_envelope *e, char buf[48])
{
    if (e->duplicate)
        return duplicate_problem(e, buf);
    if (!e->version_ok)
        return (e->seen & JR_M_JSONRPC) ? "\"jsonrpc\" must be \"2.0\""
                                        : "missing \"jsonrpc\": \"2.0\"";
    if (!(e->seen & JR_M_METHOD))
        return "missing method";
    if (!e->method_ok)
        return "method must be a string";
    if (e->params == JR_P_SCALAR)
        return "params must be an array or an object";
    if ((e->seen & JR_M_ID) && !e->id_ok)
        return "id must be a string, a number or null";
    return NULL;
}

/* Everything for one message object read into e. */
static void process_message(jr_exchange *x, jr_envelope *e)
{
    lua_State *L = x->L;
    const char *problem;
    char dup[48];
    int entry, nargs, is_notification = !(e->seen & JR_M_ID), failed;
    /* on a two-way connection a message without a method is a response */
    if (!(e->seen & JR_M_METHOD) && x->ep != NULL) {
        jr_endpoint_response(x, e);
        return;
    }
    problem = request_problem(e, dup);
    if (problem != NULL) {
        write_protocol_error(x, e, JR_INVALID_REQUEST, INVALID_REQUEST, problem);
        return;
    }
    entry = e->base + JR_S_ENTRY;
    if (!e->methods) {
        lua_pushvalue(L, e->base + JR_S_METHOD);
        lua_rawget(L, x->methods);
        lua_replace(L, entry);
    }
    /* params that came before the method are decoded only now that it is
     * known to exist */
    if (e->params_at != NULL && !lua_isnil(L, entry) && jr_envelope_params(&x->d, e) != 0) {
        if (!is_notification)
            write_protocol_error(x, e, JR_INVALID_REQUEST, INVALID_REQUEST, x->d.err);
        return;
    }
    if (x->hooks)
        jr_build_req(x, e);
    if (jr_call_hook(x, D_ON_REQUEST, e->base + JR_S_REQ, 0)) {
        if (!is_notification)
            jr_write_error_of(x, e, -1);
        return;
    }
    if (lua_isnil(L, entry)) {
        if (!is_notification)
            write_protocol_error(x, e, JR_METHOD_NOT_FOUND, "Method not found", NULL);
        return;
    }
    nargs = jr_prepare_args(x, e, entry);
    if (nargs < 0) {
        if (!is_notification)
            write_protocol_error(x, e, JR_INVALID_PARAMS, "Invalid params", lua_tostring(L, -1));
        return;
    }
    failed = jr_invoke(x, e, entry, nargs);
    if (is_notification || failed == 2)
        return;
    if (failed)
        jr_write_error_of(x, e, -1);
    else
        jr_write_result_of(x, e, -1);
}

/* A text that cannot be read: not JSON (-32700), or more values than the
 * budget allows (-32600). */
static void write_parse_error(jr_exchange *x)
{
    if (x->d.over_budget)
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, INVALID_REQUEST, x->d.err);
    else
        write_protocol_error(x, NULL, JR_PARSE_ERROR, "Parse error", x->d.err);
}

/* Reads and processes the message object at d->p; the stack returns to
 * where it was. A read error is returned (-1) for the caller to answer. */
static int message_at(jr_exchange *x)
{
    jr_envelope e;
    int top = lua_gettop(x->L);
    e.base = top + 1;
    e.decode_results = x->ep != NULL;
    e.methods = x->hooks ? 0 : x->methods;   /* hooks want params as a table */
    if (jr_envelope_read(&x->d, &e) != 0)
        return -1;
    process_message(x, &e);
    lua_settop(x->L, top);
    return 0;
}

/* ---- batches ---- */

static int count_member(jr_decoder *d, void *ud)
{
    ++*(long *)ud;
    return jr_decoder_value(d);   /* building nothing: only checked */
}

static long over_budget_batch(jr_decoder *d)
{
    snprintf(d->err, JR_ERRLEN, "batch of more than %lu values (max_values)",
             (unsigned long)d->max_values);
    d->over_budget = 1;
    return -1;
}

/* Checks the whole batch (valid JSON) and counts its members in one pass
 * that builds nothing; -1 on a parse error, or when it holds more values
 * than the budget (checked whole: no member runs then). */
static long count_batch(jr_decoder *d)
{
    const char *start = d->p;
    long n = 0;
    d->build = 0;
    if (jr_decoder_array(d, count_member, &n) != 0)
        return -1;
    jr_decoder_space(d);
    if (d->p != d->end)
        return jr_decoder_fail(d, d->p, "unexpected data after the JSON value");
    d->p = start;
    d->build = 1;
    if (d->values > d->max_values) {   /* its members might build them all */
        d->values = 0;
        return over_budget_batch(d);
    }
    d->values = 0;
    return n;
}

long jr_exchange_reserve(jr_exchange *x)
{
    long slot;
    if (x->waiting == NULL && (x->waiting = jr_batch_new()) == NULL)
        jr_exchange_error(x, "not enough memory");
    x->waiting->tag = x->tag;
    /* past the '[' */
    if ((slot = jr_batch_reserve(x->waiting, x->out->len - 1)) < 0)
        jr_exchange_error(x, "not enough memory");
    return slot;
}

/* The end of reading a batch whose members wait: what is answered so far
 * joins the batch's parts; the array goes out when the last one finishes
 * (now, if they all finished while the batch was read). */
static void finish_waiting_batch(jr_exchange *x)
{
    jr_batch *b = x->waiting;
    int whole;
    b->open = 0;
    whole = jr_batch_close(b, x->out->data + 1, x->out->len - 1);   /* past '[' */
    x->out->len = 0;
    if (whole < 0 || (whole == 1 && jr_buf_add(x->out, b->parts.data, b->parts.len) != 0))
        jr_exchange_error(x, "not enough memory");
    x->owed = whole == 0;   /* its last waiting member sends it */
    x->waiting = NULL;
    jr_batch_unref(b);
}

static int batch_member(jr_decoder *d, void *ud)
{
    jr_exchange *x = (jr_exchange *)ud;
    int rc;
    if (*d->p == '{')
        return message_at(x);
    d->build = 0;
    rc = jr_decoder_value(d);   /* checked already, unless read at once */
    d->build = 1;
    if (rc != 0)
        return -1;
    write_protocol_error(x, NULL, JR_INVALID_REQUEST, INVALID_REQUEST,
                         "batch member is not an object");
    return 0;
}

/* A deferral's batch is read in one pass, without checking it whole
 * first: its handlers do not run while it is read. When that pass finds
 * it unsound (not JSON, empty, over max_batch), what it read is taken
 * back and the batch is read again the careful way, which answers the
 * error. */
typedef struct at_once {
    jr_exchange *x;
    long members;
} at_once;

static int may_read_at_once(const jr_exchange *x, size_t len)
{
    /* values cost at most 2 per byte ("[]" costs JR_TABLE_COST): a text
     * this short cannot go over max_values, which only the check counts */
    return x->deferral != NULL && !x->hooks && len <= x->srv->max_values / 2;
}

static int member_at_once(jr_decoder *d, void *ud)
{
    at_once *a = (at_once *)ud;
    if (++a->members > (long)a->x->srv->max_batch)
        return -1;
    return batch_member(d, a->x);
}

/* 0 when read, -1 when taken back. */
static int read_batch_at_once(jr_exchange *x)
{
    lua_State *L = x->L;
    jr_decoder *d = &x->d;
    at_once a;
    int top = lua_gettop(L);
    a.x = x;
    a.members = 0;
    if (jr_buf_addc(x->out, '[') != 0)
        jr_exchange_error(x, "not enough memory");
    x->batch = 1;
    if (jr_decoder_array(d, member_at_once, &a) == 0) {
        jr_decoder_space(d);
        if (d->p == d->end && a.members > 0)
            return 0;
    }
    lua_settop(L, top);
    x->out->len = 0;
    x->count = 0;
    x->batch = 0;
    if (x->waiting != NULL) {
        jr_batch_unref(x->waiting);
        x->waiting = NULL;
    }
    jr_deferral_reset(L, x->deferral, x->dv);
    return -1;
}

/* The end of a batch read: the array closed, or left to the members that
 * wait. */
static void end_batch(jr_exchange *x)
{
    if (x->waiting != NULL) {
        finish_waiting_batch(x);
        return;
    }
    if (x->count == 0)
        x->out->len = 0;   /* only notifications: nothing at all */
    else if (jr_buf_addc(x->out, ']') != 0)
        jr_exchange_error(x, "not enough memory");
}

static void process_batch(jr_exchange *x)
{
    long n = count_batch(&x->d);
    char why[128];
    if (n < 0) {
        write_parse_error(x);
        return;
    }
    if (n == 0) {
        write_protocol_error(x, NULL, JR_INVALID_REQUEST, INVALID_REQUEST, "empty batch");
        return;
    }
    if ((size_t)n > x->srv->max_batch) {
        snprintf(why, sizeof why, "batch of %ld requests exceeds max_batch (%lu)",
                 n, (unsigned long)x->srv->max_batch);
        write_limit_error(x, why);
        return;
    }
    if (jr_buf_addc(x->out, '[') != 0)
        jr_exchange_error(x, "not enough memory");
    x->batch = 1;
    if (jr_decoder_array(&x->d, batch_member, x) != 0)   /* checked: cannot fail */
        jr_exchange_error(x, "batch unreadable after its check");
    end_batch(x);
}

/* ---- a whole text ---- */

/* Anything but an object or an array: valid JSON, but no request. */
static void process_other(jr_exchange *x)
{
    jr_decoder *d = &x->d;
    d->build = 0;
    if (jr_decoder_value(d) != 0) {
        write_parse_error(x);
        return;
    }
    jr_decoder_space(d);
    if (d->p != d->end) {
        jr_decoder_fail(d, d->p, "unexpected data after the JSON value");
        write_parse_error(x);
        return;
    }
    write_protocol_error(x, NULL, JR_INVALID_REQUEST, INVALID_REQUEST,
                         "a request must be an object or an array of them");
}

static void process_object(jr_exchange *x)
{
    jr_decoder *d = &x->d;
    jr_envelope e;
    e.base = lua_gettop(x->L) + 1;
    e.decode_results = x->ep != NULL;
    e.methods = x->hooks ? 0 : x->methods;
    if (jr_envelope_read(d, &e) != 0) {
        write_parse_error(x);
        return;
    }
    jr_decoder_space(d);
    if (d->p != d->end) {
        jr_decoder_fail(d, d->p, "unexpected data after the JSON value");
        lua_settop(x->L, e.base - 1);
        write_parse_error(x);
        return;
    }
    process_message(x, &e);
}

/* The decoder at the start of s[0..n), past any space. */
static void start_decoder(jr_exchange *x, const char *s, size_t n)
{
    jr_decoder *d = &x->d;
    jr_decoder_init(d, x->L, s, n, x->srv->max_depth, x->kinds.mt_array, x->kinds.mt_object,
                    x->scratch, x->err);
    jr_decoder_budget(d, x->srv->max_values);
    jr_decoder_null(d, x->null_value);
    jr_decoder_space(d);
}

void jr_exchange_text(jr_exchange *x, const char *s, size_t n)
{
    jr_decoder *d = &x->d;
    char why[128];
    if (n > x->srv->max_message) {
        snprintf(why, sizeof why, "message of %lu bytes exceeds max_message_size (%lu)",
                 (unsigned long)n, (unsigned long)x->srv->max_message);
        write_limit_error(x, why);
        return;
    }
    start_decoder(x, s, n);
    if (d->p < d->end && *d->p == '[') {
        if (may_read_at_once(x, n)) {
            if (read_batch_at_once(x) == 0) {
                end_batch(x);
                return;
            }
            start_decoder(x, s, n);   /* again from the start, the careful way */
        }
        process_batch(x);
    } else if (d->p < d->end && *d->p == '{')
        process_object(x);
    else
        process_other(x);
}
