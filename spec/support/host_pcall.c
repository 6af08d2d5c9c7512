/* A host that wraps luv's callbacks, as Neovim does: it sets its own
 * cb_pcall (luv_set_callback), which counts the calls and marks the time
 * inside them (Neovim's in_fast_callback). It runs the Lua script argv[1],
 * which can read host.calls() and host.inside(). */
#include <dlfcn.h>
#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

typedef int (*cfpcall)(lua_State *L, int nargs, int nresults, int flags);

static int inside, calls;

static int wrapper(lua_State *L, int nargs, int nresults, int flags)
{
    int top = lua_gettop(L) - nargs - 1, status;
    (void)flags;
    calls++;
    inside++;
    status = lua_pcall(L, nargs, nresults, 0);
    inside--;
    if (status != 0) {
        fprintf(stderr, "host: callback failed: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -status;
    }
    return nresults == LUA_MULTRET ? lua_gettop(L) - top : nresults;
}

static int l_calls(lua_State *L) { lua_pushinteger(L, calls); return 1; }
static int l_inside(lua_State *L) { lua_pushboolean(L, inside > 0); return 1; }

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    void *luv;
    void (*set_callback)(lua_State *, cfpcall);
    if (argc < 2)
        return 2;
    luaL_openlibs(L);
    if (luaL_dostring(L, "require 'luv'\n"
                         "for t in package.cpath:gmatch('[^;]+') do\n"
                         "  local f = io.open((t:gsub('%?', 'luv')))\n"
                         "  if f then f:close() return (t:gsub('%?', 'luv')) end\n"
                         "end") != 0 || !lua_isstring(L, -1)) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    luv = dlopen(lua_tostring(L, -1), RTLD_NOW | RTLD_NOLOAD);
    set_callback = luv ? (void (*)(lua_State *, cfpcall))dlsym(luv, "luv_set_callback") : NULL;
    if (set_callback == NULL) {
        fprintf(stderr, "no luv_set_callback\n");
        return 1;
    }
    set_callback(L, wrapper);
    lua_newtable(L);
    lua_pushcfunction(L, l_calls);
    lua_setfield(L, -2, "calls");
    lua_pushcfunction(L, l_inside);
    lua_setfield(L, -2, "inside");
    lua_setglobal(L, "host");
    if (luaL_dofile(L, argv[1]) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    return 0;
}
