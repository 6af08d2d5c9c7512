#include <stdlib.h>
#include "buffer.h"

#define BUF_BOX "jsonrpc.buffer"
#define BUF_MIN 256

static int box_gc(lua_State *L)
{
    jr_buf *b = (jr_buf *)luaL_checkudata(L, 1, BUF_BOX);
    jr_buf_release(b);
    return 0;
}

void jr_buf_openlib(lua_State *L)
{
    if (luaL_newmetatable(L, BUF_BOX)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

jr_buf *jr_buf_newbox(lua_State *L)
{
    jr_buf *b = (jr_buf *)lua_newuserdata(L, sizeof *b);
    b->data = NULL;
    b->len = b->cap = 0;
    b->lent = 0;
    b->alloc = lua_getallocf(L, &b->alloc_ud);
    luaL_getmetatable(L, BUF_BOX);
    lua_setmetatable(L, -2);
    return b;
}

static int resize(jr_buf *b, size_t cap)
{
    char *p = (char *)b->alloc(b->alloc_ud, b->data, b->cap, cap);
    if (p == NULL && cap > 0)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int jr_buf_grow(jr_buf *b, size_t extra)
{
    size_t need, cap;
    if (extra > (size_t)-1 - b->len)
        return -1;
    need = b->len + extra;
    cap = b->cap < BUF_MIN ? BUF_MIN : b->cap;
    while (cap < need)
        cap = (cap > (size_t)-1 / 2) ? need : cap * 2;
    return resize(b, cap);
}

void jr_buf_release(jr_buf *b)
{
    if (b->data != NULL)
        b->alloc(b->alloc_ud, b->data, b->cap, 0);
    b->data = NULL;
    b->len = b->cap = 0;
}

void jr_buf_trim(jr_buf *b, size_t keep)
{
    if (b->cap > keep && b->len <= keep)
        (void)resize(b, keep);
}

jr_buf *jr_buf_borrow(lua_State *L, jr_buf *shared)
{
    jr_buf *b = shared;
    if (b->lent)
        b = jr_buf_newbox(L);
    else
        lua_pushnil(L);
    b->lent = 1;
    b->len = 0;
    return b;
}

void jr_buf_return(jr_buf *b)
{
    b->lent = 0;
    jr_buf_trim(b, JR_BUF_KEEP);
}

void *jr_malloc_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}
