#define _GNU_SOURCE   /* dladdr */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "loop.h"

#define LOOP_KEY "jsonrpc.loop"        /* registry: the sentinel userdata */
#define SENTINEL_MT "jsonrpc.loop.sentinel"
#define CBTHREAD_KEY "jsonrpc.loop.thread"

/* luv keeps its context in the registry; the loop is its first field. */
static uv_loop_t *luv_loop_of(lua_State *L, void **ctx)
{
    uv_loop_t *loop = NULL;
    *ctx = NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, "luv_context");
    if (lua_type(L, -1) == LUA_TUSERDATA) {
        *ctx = lua_touserdata(L, -1);
        loop = *(uv_loop_t **)*ctx;
    }
    lua_pop(L, 1);
    return loop;
}

static int handles_open(const jr_loop *loop)
{
    return loop->handles.next != &loop->handles;
}

/* The Lua state is closing: close what is still open and let libuv finish
 * with it, so that no handle of ours is left for luv's own collector. */
static int sentinel_gc(lua_State *L)
{
    jr_loop *loop = *(jr_loop **)lua_touserdata(L, 1);
    jr_handle *h, *next;
    int rounds;
    if (loop == NULL)
        return 0;
    loop->closing = 1;
    for (h = loop->handles.next; h != &loop->handles; h = next) {
        next = h->next;
        jr_handle_close(h);
    }
    /* on luv's loop, luv's collector runs it to completion right after
     * (running it here would fire luv's own callbacks while luv's objects
     * are being finalized); libuv's default loop is ours to finish */
    for (rounds = 0; !loop->luv && handles_open(loop) && rounds < 1000; rounds++)
        uv_run(loop->uv, UV_RUN_NOWAIT);
    if (handles_open(loop)) {
        loop->orphaned = 1;   /* the last close callback frees it */
    } else {
        /* libuv's default loop holds resources of its own (signal pipes);
         * give them back when nobody else has handles on it */
        if (!loop->luv)
            (void)uv_loop_close(loop->uv);
        free(loop);
    }
    *(jr_loop **)lua_touserdata(L, 1) = NULL;
    return 0;
}

/* Keeps this module mapped once it has handles: when the Lua state closes,
 * Lua 5.1 and LuaJIT unload C modules before luv's loop collector runs, and
 * that collector finishes our closes by calling our close callbacks. */
static void pin_module(void)
{
    Dl_info info;
    if (dladdr((void *)pin_module, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
}

jr_loop *jr_loop_get(lua_State *L)
{
    jr_loop *loop, **box;
    void *ctx;
    lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
    box = (jr_loop **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (box != NULL && *box != NULL)
        return *box;
    loop = (jr_loop *)calloc(1, sizeof *loop);
    if (loop == NULL)
        luaL_error(L, "not enough memory");
    pin_module();
    loop->uv = luv_loop_of(L, &ctx);
    loop->luv = loop->uv != NULL;
    loop->luv_ctx = (jr_luv_ctx *)ctx;
    if (loop->uv == NULL)
        loop->uv = uv_default_loop();
    loop->handles.next = loop->handles.prev = &loop->handles;
    /* callbacks run on a thread of their own, anchored in the registry */
    loop->cbL = lua_newthread(L);
    lua_setfield(L, LUA_REGISTRYINDEX, CBTHREAD_KEY);
    box = (jr_loop **)lua_newuserdata(L, sizeof *box);
    *box = loop;
    if (luaL_newmetatable(L, SENTINEL_MT)) {
        lua_pushcfunction(L, sentinel_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
    return loop;
}

void jr_loop_handle_closed(jr_loop *loop)
{
    if (loop->orphaned && !handles_open(loop))
        free(loop);
}

/* Inside luv's cb_pcall: the call, protected by us; returns its status and
 * its error (or nil). */
static int call_inside(lua_State *L)
{
    int status = lua_pcall(L, lua_gettop(L) - 1, 0, 0);
    if (status == 0)
        lua_pushnil(L);
    lua_pushinteger(L, status);
    lua_insert(L, -2);
    return 2;
}

#define LUV_NOEXIT 0x01      /* LUVF_CALLBACK_NOEXIT */
#define LUV_NOERRMSG 0x04    /* LUVF_CALLBACK_NOERRMSG */

int jr_loop_call(jr_loop *loop, int nargs)
{
    lua_State *L = loop->cbL;
    int status, base;
    loop->depth++;
    if (loop->luv_ctx == NULL || loop->luv_ctx->cb_pcall == NULL) {
        status = lua_pcall(L, nargs, 0, 0);
        loop->depth--;
        return status;
    }
    base = lua_gettop(L) - nargs;   /* the function */
    lua_pushcfunction(L, call_inside);
    lua_insert(L, base);
    if (loop->luv_ctx->cb_pcall(L, nargs + 1, 2, LUV_NOEXIT | LUV_NOERRMSG) < 0) {
        /* the host's wrapper failed itself (and took its error) */
        lua_settop(L, base - 1);
        lua_pushliteral(L, "the host's callback wrapper failed");
        status = LUA_ERRRUN;
    } else {
        status = (int)lua_tointeger(L, -2);
        lua_remove(L, -2);
        if (status == 0)
            lua_pop(L, 1);
    }
    loop->depth--;
    return status;
}

/* jsonrpc.run([mode]): runs the loop ("default": until nothing is left to
 * do, "once", "nowait"); returns whether anything is left. */
static int l_run(lua_State *L)
{
    static const char *const modes[] = {"default", "once", "nowait", NULL};
    static const uv_run_mode uv_modes[] = {UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT};
    jr_loop *loop = jr_loop_get(L);
    int mode = luaL_checkoption(L, 1, "default", modes), alive;
    if (loop->running || loop->depth > 0)
        return luaL_error(L, "jsonrpc.run: the loop is already running (wait in a coroutine "
                             "or with a callback instead)");
    loop->running = 1;
    alive = uv_run(loop->uv, uv_modes[mode]);
    loop->running = 0;
    lua_pushboolean(L, alive);
    return 1;
}

/* core.loop_thread() -> the thread our callbacks run on (plain Lua 5.1
 * cannot tell it from a coroutine otherwise). */
static int l_loop_thread(lua_State *L)
{
    lua_pushthread(jr_loop_get(L)->cbL);
    lua_xmove(jr_loop_get(L)->cbL, L, 1);
    return 1;
}

/* The C function luv's module table has as `run`, or NULL. */
static lua_CFunction luv_run_function(lua_State *L)
{
    lua_CFunction fn = NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "luv");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "run");
            fn = lua_tocfunction(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return fn;
}

/* core.same_libuv() -> whether luv runs the libuv this module links, or
 * nil when luv is not loaded. luv's copy is the uv_run seen from the
 * object luv's code is in (luv.so, which links libuv.so, or an editor
 * that links both statically): found from luv's own `run`, not from its
 * callback wrapper, which a host replaces with one of its own. When that
 * object cannot be opened or shows no uv_run, they are taken to differ. */
static int l_same_libuv(lua_State *L)
{
    void *ctx, *handle, *theirs = NULL;
    Dl_info info;
    lua_CFunction run;
    if (luv_loop_of(L, &ctx) == NULL || (run = luv_run_function(L)) == NULL) {
        lua_pushnil(L);
        return 1;
    }
    if (dladdr((void *)run, &info) != 0 && info.dli_fname != NULL
        && (handle = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD)) != NULL) {
        theirs = dlsym(handle, "uv_run");
        dlclose(handle);
    }
    lua_pushboolean(L, theirs != NULL && theirs == (void *)uv_run);
    return 1;
}

/* core.strerror(name) -> message | nil: libuv's message for an error
 * name ("ECONNREFUSED" -> "connection refused"), for the luv driver,
 * whose callbacks give only the name. */
static int l_strerror(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
#define JR_ERRNO_CASE(code, msg) \
    if (strcmp(name, #code) == 0) { lua_pushstring(L, msg); return 1; }
    UV_ERRNO_MAP(JR_ERRNO_CASE)
#undef JR_ERRNO_CASE
    lua_pushnil(L);
    return 1;
}

void jr_loop_open(lua_State *L)
{
    lua_pushcfunction(L, l_strerror);
    lua_setfield(L, -2, "strerror");
    lua_pushcfunction(L, l_same_libuv);
    lua_setfield(L, -2, "same_libuv");
    lua_pushcfunction(L, l_run);
    lua_setfield(L, -2, "run");
    lua_pushcfunction(L, l_loop_thread);
    lua_setfield(L, -2, "loop_thread");
}
