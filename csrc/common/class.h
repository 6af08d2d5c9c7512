/* One way to register a class of userdata: its metatable, under its name in
 * the registry, with the methods as __index, __gc and __tostring when given,
 * and __name (which luaL_newmetatable sets only from Lua 5.3 on). */
#ifndef JSONRPC_CLASS_H
#define JSONRPC_CLASS_H

#include "compat.h"

/* Leaves nothing on the stack; a second call changes nothing. */
void jr_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
              lua_CFunction tostring);

#endif
