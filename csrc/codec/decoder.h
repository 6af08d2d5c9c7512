/* The decoder's internal interface, for the layers that read JSON-RPC
 * envelopes member by member (dispatch) instead of as whole documents.
 * jr_decode (codec.h) is built on it. */
#ifndef JSONRPC_DECODER_H
#define JSONRPC_DECODER_H

#include "codec.h"

typedef struct jr_decoder {
    lua_State *L;
    const char *start, *p, *end;
    int depth, max_depth;
    int mt_array, mt_object;  /* absolute stack indices of the kind metatables */
    int build;                /* 1: push decoded values; 0: only validate */
    size_t budget;            /* values that may still be built */
    size_t max_values;        /* the budget of the whole text (JR_NO_BUDGET) */
    size_t values;            /* values read, built or not */
    int over_budget;          /* the error is the budget's */
    int staged;               /* stack slots holding values of unfinished containers */
    int null_value;           /* stack index of what null becomes; 0: jsonrpc.null */
    jr_buf *scratch;          /* unescaped strings, long numbers */
    char *err;                /* JR_ERRLEN bytes */
} jr_decoder;

void jr_decoder_init(jr_decoder *d, lua_State *L, const char *s, size_t n,
                     int max_depth, int mt_array, int mt_object, jr_buf *scratch,
                     char err[JR_ERRLEN]);

/* Sets what null decodes to: the value at stack index idx (0: jsonrpc.null,
 * the light userdata NULL). */
void jr_decoder_null(jr_decoder *d, int idx);

/* Sets the budget of values the text may build (JR_NO_BUDGET: none). */
void jr_decoder_budget(jr_decoder *d, size_t max_values);

/* The value at d->p: pushed when d->build, else only checked; 0 or -1. */
int jr_decoder_value(jr_decoder *d);

/* The string at d->p (which must be '"'), without pushing it: *s points into
 * the text or into the scratch buffer, valid until the next string read. */
int jr_decoder_string(jr_decoder *d, const char **s, size_t *n);

/* Walkers over the containers at d->p, which do the grammar, the depth
 * limit and the separators; the callback is called with d->p at each
 * element (or member value), and must consume it. A member's key (k, n)
 * may live in the scratch buffer: use it before reading another string.
 * Each returns 0, or -1 on an error (the callback's or the grammar's). */
typedef int (*jr_element_fn)(jr_decoder *d, void *ud);
typedef int (*jr_member_fn)(jr_decoder *d, void *ud, const char *k, size_t n);
int jr_decoder_array(jr_decoder *d, jr_element_fn each, void *ud);
int jr_decoder_object(jr_decoder *d, jr_member_fn each, void *ud);

/* Skips JSON whitespace. */
void jr_decoder_space(jr_decoder *d);

/* Skips whitespace, then consumes c; else fails with "expected ..." */
int jr_decoder_expect(jr_decoder *d, char c, const char *what);

/* Records an error at p (a 1-based byte offset is added); returns -1. */
int jr_decoder_fail(jr_decoder *d, const char *p, const char *msg);

#endif
