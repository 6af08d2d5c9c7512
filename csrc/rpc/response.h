/* Writing JSON-RPC response objects into an output buffer. */
#ifndef JSONRPC_RESPONSE_H
#define JSONRPC_RESPONSE_H

#include "codec/codec.h"

/* The id of a response: its raw JSON text, or NULL for null. */
typedef struct jr_id {
    const char *text;
    size_t len;
} jr_id;

/* Where the encoder finds the kind metatables. */
typedef struct jr_kinds {
    int mt_array, mt_object;
    int max_depth;
} jr_kinds;

/* {"jsonrpc":"2.0","result":<value at idx>,"id":<id>}; -1 with err set when
 * the value cannot be encoded (b is then as it was). */
int jr_write_result(lua_State *L, jr_buf *b, int idx, jr_id id, const jr_kinds *k,
                    char err[JR_ERRLEN]);

/* {"jsonrpc":"2.0","error":{"code":..,"message":..,"data":..},"id":<id>}
 * from the error value at idx; -1 (b as it was) when its data or message
 * cannot be encoded. */
int jr_write_error(lua_State *L, jr_buf *b, int idx, jr_id id, const jr_kinds *k,
                   char err[JR_ERRLEN]);

#endif
