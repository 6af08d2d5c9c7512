/* Request and notification texts for the calling side (request.c). */
#ifndef JSONRPC_REQUEST_H
#define JSONRPC_REQUEST_H

#include "codec/codec.h"

/* {"jsonrpc":"2.0","method":<method_idx>[,"params":<params_idx>] into b,
 * params left out when nil; the caller ends it: ',"id":ID}' or '}'. NULL,
 * or why the method or params cannot be encoded. Needs the kind
 * metatables at mt_array and mt_object. */
const char *jr_write_request_head(lua_State *L, jr_buf *b, int method_idx, int params_idx,
                                  int mt_array, int mt_object, char err[JR_ERRLEN]);

/* Pushes the request text for the method at method_idx and the params at
 * params_idx, with the id as raw JSON text (id != NULL) or the Lua value
 * at id_idx (id_idx != 0), else none (a notification); b is the shared
 * buffer to lend. Raises when they cannot be encoded. */
void jr_push_request(lua_State *L, jr_buf *b, int method_idx, int params_idx, const char *id,
                     size_t id_len, int id_idx, int mt_array, int mt_object);

/* Checks request()'s method (a string) and params (a table or nil). */
void jr_check_request_args(lua_State *L, int method_idx, int params_idx);

/* Adds request to the table on top. */
void jr_request_open(lua_State *L);

#endif
