/* One way to register a class of userdata: its metatable, under its name in
 * the registry, with the methods as __index, __gc and __tostring when given,
 * and __name (which luaL_newmetatable sets only from Lua 5.3 on). */
#ifndef JSONRPC_CLASS_H
#define JSONRPC_CLASS_H

#include "compat.h"

/* Leaves nothing on the stack; a second call changes nothing. */
void jr_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
              lua_CFunction tostring);

/* A class whose methods find its metatable as their upvalue 1, for
 * jr_check_self; leaves the metatable on the stack (for the constructor's
 * upvalue). */
void jr_class_self(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* The userdata at 1, whose metatable must be the one at mt (an upvalue,
 * compared directly: cheaper than luaL_checkudata's registry lookup on
 * every call); else an argument error naming the class. */
void *jr_check_self(lua_State *L, int mt, const char *name);

#endif
