/* Reading one JSON-RPC message object (a request, a notification or a
 * response) member by member, in any member order, without building a table
 * for it: positional params are decoded straight onto the Lua stack, where
 * they become the handler's arguments, and the id is kept as its raw text so
 * that it is echoed exactly. */
#ifndef JSONRPC_ENVELOPE_H
#define JSONRPC_ENVELOPE_H

#include "codec/decoder.h"

/* Members seen. */
enum {
    JR_M_JSONRPC = 1, JR_M_METHOD = 2, JR_M_PARAMS = 4,
    JR_M_ID = 8, JR_M_RESULT = 16, JR_M_ERROR = 32
};

/* What "params" held. JR_P_MAPPED: an object whose members were read
 * straight into the slots of the method's declared names. */
enum { JR_P_NONE, JR_P_ARRAY, JR_P_OBJECT, JR_P_NULL, JR_P_SCALAR, JR_P_MAPPED };

/* Stack slots, relative to envelope.base. */
enum {
    JR_S_METHOD,   /* method name string, or nil */
    JR_S_PARAMS,   /* params object (table), or nil; with JR_P_MAPPED, the
                      first unknown param name, or nil */
    JR_S_RESULT,   /* result value (responses) */
    JR_S_ERROR,    /* error value (responses) */
    JR_S_REQ,      /* the request as a table, built only for hooks */
    JR_S_ENTRY,    /* the method's registry entry, when looked up */
    JR_S_ARGS      /* first positional param; the rest follow */
};

/* A registry entry is the handler itself, or for a method registered with
 * options this table: */
enum {
    JR_E_FN = 1,     /* the handler */
    JR_E_NAMES,      /* declared param names {"a", "b"}, or nil */
    JR_E_NAME_SET,   /* {a = 1, b = 2}, or nil */
    JR_E_CONTEXT     /* pass the context first */
};

/* Most positional params passed as arguments (Lua 5.1's C stack allows
 * about 8000 slots; this leaves room for the handler). */
#define JR_MAX_ARGS 4000

typedef struct jr_envelope {
    int seen;               /* JR_M_* */
    int duplicate;          /* the first member given twice (JR_M_*), or 0 */
    const char *params_at;  /* params not read yet (their method was not
                               known when they came): where they are, to be
                               read by jr_envelope_params if it may run */
    int version_ok;         /* "jsonrpc": "2.0" */
    int method_ok;          /* method is a string */
    int params;             /* JR_P_* */
    int nargs;              /* positional params on the stack */
    int id_ok;              /* id is a string, a number or null */
    const char *id;         /* raw id text (when id_ok) */
    size_t id_len;
    int base;               /* absolute index of slot JR_S_METHOD */
    int decode_results;     /* decode "result"/"error" (endpoints) */
    int methods;            /* the registry (stack index): the method is
                               looked up as soon as it is read, so that named
                               params can be mapped as they are read; 0: not */
} jr_envelope;

/* Reads the object at d->p (which must be '{'), leaving the slots above on
 * the stack from e->base (which must be gettop + 1). d->depth must count the
 * containers around it. Returns 0, or -1 with the decoder's error (the text
 * is not valid JSON, or d's value budget ran out; the stack is then left at
 * e->base - 1).
 *
 * Params are decoded only for a method that exists: read after the method
 * (with e->methods), they are decoded at once, or skipped without building
 * anything when the method is unknown; read before it, they are only
 * checked, and e->params_at says where they are. A member given twice is
 * skipped and named in e->duplicate. */
int jr_envelope_read(jr_decoder *d, jr_envelope *e);

/* Reads the params left at e->params_at, now that the method is known to
 * exist (its entry in slot JR_S_ENTRY); the stack top must be the last
 * slot. 0, or -1 with the decoder's error (its value budget). */
int jr_envelope_params(jr_decoder *d, jr_envelope *e);

/* The name of member m (JR_M_*). */
const char *jr_member_name(int m);

#endif
