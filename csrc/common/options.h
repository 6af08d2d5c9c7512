/* Options tables passed from Lua: checked strictly, so that a misspelt or
 * out-of-range limit is an error rather than silently ignored. */
#ifndef JSONRPC_OPTIONS_H
#define JSONRPC_OPTIONS_H

#include <stddef.h>
#include "compat.h"

/* Largest size option: exact as a double (2^53) and within size_t. */
#define JR_OPT_SIZE_MAX ((size_t)-1 > 9007199254740992ull ? (size_t)9007199254740992ull : (size_t)-1)

/* Raises unless every key of the table at opts is one of names (NULL-ended).
 * A nil or absent opts is fine; anything else but a table is an error. */
void jr_check_options(lua_State *L, int opts, const char *const names[]);

/* The integer option `name` of the table at opts (absent: dflt), which must
 * be within min..max; raises otherwise. opts may be nil or absent. */
size_t jr_opt_size(lua_State *L, int opts, const char *name, size_t dflt,
                   size_t min, size_t max);

#endif
