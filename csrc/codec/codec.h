/* The JSON codec: exact numbers, strict UTF-8, arrays and objects that keep
 * their kind. Used from Lua (jsonrpc.encode/decode) and, in C, by the layers
 * above it that decode from and encode into their own buffers. */
#ifndef JSONRPC_CODEC_H
#define JSONRPC_CODEC_H

#include <stddef.h>
#include "common/buffer.h"
#include "common/limits.h"

/* Registry keys of the metatables that mark a table's JSON kind. */
#define JR_ARRAY_MT "jsonrpc.array"
#define JR_OBJECT_MT "jsonrpc.object"

#define JR_DEFAULT_MAX_DEPTH 1000
#define JR_LIMIT_MAX_DEPTH 10000            /* C recursion bound */
#define JR_ERRLEN 200
/* Values a server decodes from one message: 30 MB of [[],[],...] would
 * otherwise become ten million tables. An array or an object counts
 * JR_TABLE_COST (a Lua table costs about four numbers), so the default
 * holds a message to about 250,000 tables (16 MB) or a million scalars.
 * jsonrpc.decode has no budget unless asked. */
#define JR_DEFAULT_MAX_VALUES ((size_t)1000000)
#define JR_TABLE_COST 4
#define JR_NO_BUDGET ((size_t)-1)

typedef struct jr_codec_limits {
    int max_depth;
    size_t max_size;
    size_t max_values;   /* decoding: values built at most (JR_NO_BUDGET) */
    int null_value;      /* decoding: stack index of what null becomes (0: jsonrpc.null) */
} jr_codec_limits;

/* Decodes the JSON text s[0..n) and pushes its value. On failure pushes
 * nothing, writes a message (with 1-based byte offset) to err and returns -1.
 * Needs the two kind metatables at stack indices mt_array and mt_object, and
 * a scratch buffer for strings with escapes. */
int jr_decode(lua_State *L, const char *s, size_t n, const jr_codec_limits *lim,
              int mt_array, int mt_object, jr_buf *scratch, char err[JR_ERRLEN]);

/* Appends the JSON text of the value at idx to b. On failure writes a message
 * naming the offending place to err and returns -1 (b then holds partial
 * output the caller should discard). Needs the kind metatables as above. */
int jr_encode(lua_State *L, int idx, jr_buf *b, const jr_codec_limits *lim,
              int mt_array, int mt_object, char err[JR_ERRLEN]);

/* Pushes the array and object metatables (in that order). */
void jr_push_kind_mts(lua_State *L);

/* Adds encode, decode, null, array, object to the table on top. */
void jr_codec_open(lua_State *L);

#endif
