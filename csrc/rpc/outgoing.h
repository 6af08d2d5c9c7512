/* Request and notification texts for the calling side (outgoing.c). */
#ifndef JSONRPC_OUTGOING_H
#define JSONRPC_OUTGOING_H

#include "common/compat.h"

/* Adds request to the table on top. */
void jr_outgoing_open(lua_State *L);

#endif
