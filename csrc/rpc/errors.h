/* JSON-RPC error values: tables {code, message, data} carrying one shared
 * metatable, so that the dispatcher can tell `error(jsonrpc.error(...))`
 * from any other Lua error. */
#ifndef JSONRPC_ERRORS_H
#define JSONRPC_ERRORS_H

#include "common/compat.h"

#define JR_ERROR_MT "jsonrpc.error"

/* The codes of the specification... */
#define JR_PARSE_ERROR (-32700)
#define JR_INVALID_REQUEST (-32600)
#define JR_METHOD_NOT_FOUND (-32601)
#define JR_INVALID_PARAMS (-32602)
#define JR_INTERNAL_ERROR (-32603)
/* ...and ours, for failures on the calling side (never sent to a peer). */
#define JR_SERVER_ERROR (-32000)
#define JR_TIMEOUT (-32001)
#define JR_CONNECTION_CLOSED (-32002)
#define JR_CONNECTION_FAILED (-32003)
#define JR_INVALID_RESPONSE (-32004)
#define JR_NO_EVENT_LOOP (-32005)

/* Pushes a new error value; data_idx 0 means no data. */
void jr_push_error(lua_State *L, lua_Integer code, const char *message, int data_idx);

/* Pushes an error made on the calling side (a timeout, a closed
 * connection, a malformed response): marked `transport = true`, since a
 * peer may send the same codes. */
void jr_push_local_error(lua_State *L, lua_Integer code, const char *message);

/* Whether the value at idx is an error value. */
int jr_is_error(lua_State *L, int idx);

/* Checks that the table at idx has the shape of a JSON-RPC error object (an
 * integer code and a string message); when it has, marks it as an error
 * value and returns NULL, else returns what is wrong. */
const char *jr_adopt_error(lua_State *L, int idx);

/* Adds error, is_error and codes to the table on top. */
void jr_errors_open(lua_State *L);

#endif
