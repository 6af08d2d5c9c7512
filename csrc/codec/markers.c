/* Neovim's and lua-cjson's JSON markers, found where those hosts keep them
 * (see markers.h). */
#include "markers.h"

#define VIM_NIL_KEY "mpack.NIL"
#define VIM_EMPTY_DICT_KEY "mpack.empty_dict"

/* The JSON modules whose markers count, by where they are loaded. */
static const char *const cjson_modules[] = {"cjson", "cjson.safe", NULL};

int jr_marker_is_null(lua_State *L, int idx)
{
    int same;
    idx = jr_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, VIM_NIL_KEY);
    same = !lua_isnil(L, -1) && lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    return same;
}

/* Pushes the loaded JSON modules that may carry markers (the cjsons, then
 * vim.json); returns how many. */
static int push_json_modules(lua_State *L)
{
    int i, n = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    for (i = 0; cjson_modules[i] != NULL; i++) {
        lua_getfield(L, -1 - n, cjson_modules[i]);
        if (lua_istable(L, -1)) {
            n++;
        } else {
            lua_pop(L, 1);
        }
    }
    lua_getglobal(L, "vim");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "json");
        lua_remove(L, -2);
    }
    if (lua_istable(L, -1))
        n++;
    else
        lua_pop(L, 1);
    lua_remove(L, -1 - n);   /* _LOADED */
    return n;
}

/* Whether field `name` of one of the JSON modules is raw-equal to the
 * value at idx. */
static int is_module_field(lua_State *L, int idx, const char *name)
{
    int i, n, found = 0;
    idx = jr_absindex(L, idx);
    n = push_json_modules(L);
    for (i = 0; i < n && !found; i++) {
        lua_getfield(L, -n + i, name);
        found = !lua_isnil(L, -1) && lua_rawequal(L, -1, idx);
        lua_pop(L, 1);
    }
    lua_pop(L, n);
    return found;
}

int jr_marker_is_empty_array(lua_State *L, int idx)
{
    return is_module_field(L, idx, "empty_array");
}

int jr_marker_kind(lua_State *L)
{
    int kind = JR_MARK_NONE;
    lua_getfield(L, LUA_REGISTRYINDEX, VIM_EMPTY_DICT_KEY);
    if (!lua_isnil(L, -1) && lua_rawequal(L, -1, -2))
        kind = JR_MARK_OBJECT;
    lua_pop(L, 1);
    if (kind == JR_MARK_NONE && is_module_field(L, -1, "array_mt"))
        kind = JR_MARK_ARRAY;
    if (kind == JR_MARK_NONE && is_module_field(L, -1, "empty_array_mt"))
        kind = JR_MARK_EMPTY_ARRAY;
    return kind;
}

/* Whether field `name` of vim.types equals the value at idx. */
static int is_vim_type(lua_State *L, int types, int idx, const char *name)
{
    int same;
    idx = jr_absindex(L, idx);
    lua_getfield(L, types, name);
    same = !lua_isnil(L, -1) && lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    return same;
}

int jr_marker_vim_type(lua_State *L, int idx)
{
    int top = lua_gettop(L), type = JR_VIM_NONE, types;
    idx = jr_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, VIM_NIL_KEY);   /* only under Neovim */
    lua_getglobal(L, "vim");
    if (lua_isnil(L, -2) || !lua_istable(L, -1)) {
        lua_settop(L, top);
        return JR_VIM_NONE;
    }
    lua_getfield(L, -1, "types");
    types = lua_gettop(L);
    lua_getfield(L, types - 1, "type_idx");
    if (lua_istable(L, types) && !lua_isnil(L, -1)) {
        lua_rawget(L, idx);   /* t[vim.type_idx] */
        if (is_vim_type(L, types, -1, "array"))
            type = JR_VIM_ARRAY;
        else if (is_vim_type(L, types, -1, "dictionary"))
            type = JR_VIM_DICTIONARY;
        else if (is_vim_type(L, types, -1, "float"))
            type = JR_VIM_FLOAT;
    }
    if (type == JR_VIM_FLOAT) {
        lua_getfield(L, types - 1, "val_idx");
        lua_rawget(L, idx);   /* t[vim.val_idx] */
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
    } else {
        lua_settop(L, top);
    }
    return type;
}
