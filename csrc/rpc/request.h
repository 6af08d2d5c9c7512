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

/* Checks request()'s method (a string) and params (a table or nil). */
void jr_check_request_args(lua_State *L, int method_idx, int params_idx);

/* Adds request to the table on top. */
void jr_request_open(lua_State *L);

#endif
