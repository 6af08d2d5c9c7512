#include <stdlib.h>
#include <string.h>
#include "loop.h"

void *jr_handle_new(lua_State *L, size_t size, const char *mt, void (*on_closed)(jr_handle *))
{
    void **box = (void **)lua_newuserdata(L, sizeof *box);
    jr_handle *h;
    *box = NULL;
    luaL_getmetatable(L, mt);
    lua_setmetatable(L, -2);
    h = (jr_handle *)calloc(1, size);
    if (h == NULL)
        luaL_error(L, "not enough memory");
    h->on_closed = on_closed;
    h->box = box;
    *box = h;
    return h;
}

void jr_handle_drop(jr_handle *h)
{
    *h->box = NULL;
    free(h);
}

void jr_handle_open(lua_State *L, jr_loop *loop, jr_handle *h, int idx)
{
    lua_pushvalue(L, idx);
    h->luv.ref = luaL_ref(L, LUA_REGISTRYINDEX);
    h->luv.callbacks[0] = h->luv.callbacks[1] = LUA_NOREF;
    h->luv.ctx = loop->luv ? loop->luv_ctx : NULL;
    h->luv.extra = NULL;
    h->luv.extra_gc = NULL;
    h->loop = loop;
    h->uv->data = h;
    h->next = &loop->handles;
    h->prev = loop->handles.prev;
    loop->handles.prev->next = h;
    loop->handles.prev = h;
}

static void closed(uv_handle_t *uvh)
{
    jr_handle *h = (jr_handle *)uvh->data;
    jr_loop *loop = h->loop;
    int ref = h->luv.ref;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    *h->box = NULL;   /* the Lua object outlives us; it may be used again */
    if (h->frees_itself) {
        h->on_closed(h);   /* may still push the object */
    } else {
        if (h->on_closed != NULL)
            h->on_closed(h);
        free(h);
    }
    if (!loop->closing)
        luaL_unref(loop->cbL, LUA_REGISTRYINDEX, ref);
    jr_loop_handle_closed(loop);
}

void jr_handle_close(jr_handle *h)
{
    if (uv_is_closing(h->uv))
        return;
    if (h->on_close != NULL)
        h->on_close(h);
    uv_close(h->uv, closed);
}

void jr_handle_push(lua_State *L, const jr_handle *h)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->luv.ref);
}

void *jr_handle_check(lua_State *L, int idx, const char *mt)
{
    return *(void **)luaL_checkudata(L, idx, mt);
}

/* The box at 1, of one of our handle classes (told by __name). */
static jr_handle **check_box(lua_State *L)
{
    void *p = lua_touserdata(L, 1);
    int ours = 0;
    if (p != NULL && lua_getmetatable(L, 1)) {
        lua_getfield(L, -1, "__name");
        ours = lua_type(L, -1) == LUA_TSTRING && strncmp(lua_tostring(L, -1), "jsonrpc.", 8) == 0;
        if (ours) {   /* and registered under that name */
            luaL_getmetatable(L, lua_tostring(L, -1));
            ours = lua_rawequal(L, -1, -3);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    if (!ours)
        luaL_argerror(L, 1, "jsonrpc handle expected");
    return (jr_handle **)p;
}

int jr_handle_l_close(lua_State *L)
{
    jr_handle *h = *check_box(L);
    if (h != NULL)
        jr_handle_close(h);
    return 0;
}

int jr_handle_l_is_closing(lua_State *L)
{
    jr_handle *h = *check_box(L);
    lua_pushboolean(L, h == NULL || uv_is_closing(h->uv));
    return 1;
}

int jr_handle_l_tostring(lua_State *L)
{
    jr_handle *h = *check_box(L);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__name");
    if (h == NULL)
        lua_pushfstring(L, "%s (closed)", lua_tostring(L, -1));
    else
        lua_pushfstring(L, "%s: %p", lua_tostring(L, -1), (void *)h);
    return 1;
}
