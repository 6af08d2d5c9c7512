/* One-shot timers for the Lua layer (call timeouts, the reporter's rate
 * limit): core.timer(ms, fn) -> timer; timer:stop(). */
#include "timer.h"

#define TIMER_MT "jsonrpc.timer"

typedef struct jr_timer {
    jr_handle h;              /* first */
    uv_timer_t t;
    int fn;                   /* registry ref of the callback */
} jr_timer;

static void timer_closed(jr_handle *h)
{
    if (!h->loop->closing)
        luaL_unref(h->loop->cbL, LUA_REGISTRYINDEX, ((jr_timer *)h)->fn);
}

static void timer_fired(uv_timer_t *ut)
{
    jr_timer *t = (jr_timer *)ut->data;
    lua_State *L = t->h.loop->cbL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn);
    jr_handle_close(&t->h);   /* one-shot */
    if (jr_loop_call(t->h.loop, 0) != 0)
        lua_pop(L, 1);        /* the callbacks we set never fail; nowhere to report */
}

static int l_timer(lua_State *L)
{
    jr_loop *loop = jr_loop_get(L);
    lua_Number ms = luaL_checknumber(L, 1);
    jr_timer *t;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_argcheck(L, ms >= 0 && ms < 1e15, 1, "delay out of range");
    lua_settop(L, 2);
    t = (jr_timer *)jr_handle_new(L, sizeof *t, TIMER_MT, timer_closed);
    uv_timer_init(loop->uv, &t->t);
    lua_pushvalue(L, 2);
    t->fn = luaL_ref(L, LUA_REGISTRYINDEX);
    t->h.uv = (uv_handle_t *)&t->t;
    jr_handle_open(L, loop, &t->h, -1);
    uv_timer_start(&t->t, timer_fired, (uint64_t)ms, 0);
    return 1;
}

void jr_timer_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"stop", jr_handle_l_close}, {"close", jr_handle_l_close},
        {"is_closing", jr_handle_l_is_closing}, {NULL, NULL},
    };
    jr_class(L, TIMER_MT, methods, jr_handle_l_close, jr_handle_l_tostring);
    lua_pushcfunction(L, l_timer);
    lua_setfield(L, -2, "timer");
}
