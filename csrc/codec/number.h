/* JSON numbers: exact parsing and shortest round-trip formatting. */
#ifndef JSONRPC_NUMBER_H
#define JSONRPC_NUMBER_H

#include <stddef.h>
#include "common/buffer.h"

#define JR_NUMBUF 40   /* enough for any number this module writes */

typedef struct jr_number {
    int is_integer;    /* fits the integer subtype (only when asked for) */
    long long i;
    double d;
} jr_number;

/* Parses the JSON number at p (p < end). want_integers asks for integers
 * that fit int64 to come back as integers. Returns the end of the number, or
 * NULL with *why set when it breaks the JSON grammar. scratch holds a
 * NUL-terminated copy when the slow (strtod) path is needed. */
const char *jr_parse_number(const char *p, const char *end, int want_integers,
                            jr_buf *scratch, jr_number *out, const char **why);

/* Writes an integer in decimal; returns its length. */
size_t jr_format_integer(char *out, long long v);

/* Writes a finite double in the shortest form that reads back as the same
 * double. mark_float appends ".0" to integral values so they read back as
 * floats on Lua 5.3+; without it (5.1/LuaJIT) integral values up to 2^53 are
 * written as plain integers. Returns the length. */
size_t jr_format_double(char *out, double d, int mark_float);

#endif
