/* Listening and connecting over TCP (IPv4, IPv6) and Unix sockets. */
#ifndef JSONRPC_SOCKET_H
#define JSONRPC_SOCKET_H

#include "common/compat.h"

/* Adds listen and connect to the table on top. */
void jr_socket_open(lua_State *L);

#endif
