/* A growable byte buffer whose memory comes from the Lua state's allocator.
 * Held inside a userdata "box" with __gc, so an error raised while it is in
 * use (including out-of-memory) never leaks it. */
#ifndef JSONRPC_BUFFER_H
#define JSONRPC_BUFFER_H

#include <stddef.h>
#include <string.h>
#include "compat.h"

typedef struct jr_buf {
    char *data;
    size_t len;   /* bytes in use */
    size_t cap;   /* bytes allocated */
    lua_Alloc alloc;
    void *alloc_ud;
    int lent;     /* set while a shared scratch buffer is in use, so that a
                     re-entrant call (from a __gc finalizer run by an
                     allocation) takes a fresh buffer instead */
} jr_buf;

/* Capacity a shared buffer keeps between uses: enough for the common
 * message, without one huge message pinning its memory for ever. */
#define JR_BUF_KEEP ((size_t)64 << 10)

/* A lua_Alloc on malloc: for buffers that outlive a call (a handle's, a
 * batch's), which may outlive the Lua state's finalizers when it closes. */
void *jr_malloc_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Pushes a new empty buffer box; returns the buffer inside it. */
jr_buf *jr_buf_newbox(lua_State *L);
/* Registers the box metatable (called once at module load). */
void jr_buf_openlib(lua_State *L);

/* Ensures room for `extra` more bytes; 0 on success, -1 when out of memory
 * or when the size would overflow. */
int jr_buf_grow(jr_buf *b, size_t extra);
/* Frees the storage (the buffer stays usable, empty). */
void jr_buf_release(jr_buf *b);
/* Shrinks storage back to at most `keep` bytes of capacity when it is larger
 * (used to stop one huge message from pinning memory forever). */
void jr_buf_trim(jr_buf *b, size_t keep);

/* Lends the shared buffer (emptied), or, when a re-entrant use (a handler
 * dispatching again, a finalizer) finds it lent, a fresh one. Pushes the
 * fresh one's box, or nil, so the caller's stack layout is the same. */
jr_buf *jr_buf_borrow(lua_State *L, jr_buf *shared);
/* Gives a borrowed buffer back, trimmed to JR_BUF_KEEP. */
void jr_buf_return(jr_buf *b);

static inline int jr_buf_reserve(jr_buf *b, size_t extra)
{
    return (b->cap - b->len >= extra) ? 0 : jr_buf_grow(b, extra);
}

static inline int jr_buf_add(jr_buf *b, const void *p, size_t n)
{
    if (n == 0)   /* data may still be NULL, and NULL + 0 is undefined */
        return 0;
    if (jr_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int jr_buf_addc(jr_buf *b, char c)
{
    if (jr_buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

#endif
