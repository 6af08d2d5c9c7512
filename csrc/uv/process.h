/* Streams over standard input/output and child processes (process.c). */
#ifndef JSONRPC_PROCESS_H
#define JSONRPC_PROCESS_H

#include "common/compat.h"

/* Adds stdio and spawn to the table on top. */
void jr_process_open(lua_State *L);

#endif
