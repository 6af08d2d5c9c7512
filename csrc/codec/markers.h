/* The JSON markers of the hosts whose values we are handed, so that a value
 * built for vim.json or for lua-cjson encodes the same through us:
 *
 *   Neovim   vim.NIL (null: a full userdata, registry "mpack.NIL"),
 *            vim.empty_dict() (an empty object: its metatable is registry
 *            "mpack.empty_dict"), and the tables vim.api returns tagged
 *            with vim.type_idx: t[vim.type_idx] is vim.types.array,
 *            .dictionary, or .float (the number at t[vim.val_idx]);
 *   cjson    empty_array (a light userdata: []), array_mt (an array) and
 *            empty_array_mt (when empty: []), from the loaded cjson,
 *            cjson.safe or vim.json, where they have them (OpenResty's
 *            fork and Neovim's do, Debian's lua-cjson does not).
 *
 * The encoder asks only when it meets a value it would otherwise refuse,
 * or a metatable that is not its own, so plain values cost nothing. Every
 * function leaves the stack as it found it. */
#ifndef JSONRPC_MARKERS_H
#define JSONRPC_MARKERS_H

#include "common/compat.h"

enum { JR_MARK_NONE, JR_MARK_ARRAY, JR_MARK_OBJECT, JR_MARK_EMPTY_ARRAY };
enum { JR_VIM_NONE, JR_VIM_ARRAY, JR_VIM_DICTIONARY, JR_VIM_FLOAT };

/* Whether the full userdata at idx is a host's null (vim.NIL). */
int jr_marker_is_null(lua_State *L, int idx);

/* Whether the light userdata at idx is a cjson's empty_array. */
int jr_marker_is_empty_array(lua_State *L, int idx);

/* The kind that the metatable on top of the stack marks: JR_MARK_*. */
int jr_marker_kind(lua_State *L);

/* Neovim's type tag of the table at idx: JR_VIM_*. With JR_VIM_FLOAT, the
 * value is pushed too (the caller pops it). */
int jr_marker_vim_type(lua_State *L, int idx);

#endif
