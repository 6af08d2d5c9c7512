/* Checks that the head of luv's handle and context structs, which our
 * handles mirror (csrc/uv/loop.h) so that uv.walk() can see them, matches the
 * installed luv headers. Exits 0 when it does. */
#include <stddef.h>
#include <stdio.h>
#include "luv/luv.h"
#include "luv/lhandle.h"
#include "uv/loop.h"

#define SAME(a, b) do { if ((size_t)(a) != (size_t)(b)) { \
    printf("mismatch: %s = %zu, %s = %zu\n", #a, (size_t)(a), #b, (size_t)(b)); bad = 1; } } while (0)

int main(void)
{
    int bad = 0;
    SAME(offsetof(luv_handle_t, ref), offsetof(jr_luv_handle, ref));
    SAME(offsetof(luv_handle_t, callbacks), offsetof(jr_luv_handle, callbacks));
    SAME(offsetof(luv_handle_t, ctx), offsetof(jr_luv_handle, ctx));
    SAME(offsetof(luv_handle_t, extra), offsetof(jr_luv_handle, extra));
    SAME(offsetof(luv_handle_t, extra_gc), offsetof(jr_luv_handle, extra_gc));
    SAME(sizeof(luv_handle_t), sizeof(jr_luv_handle));
    SAME(offsetof(luv_ctx_t, loop), offsetof(jr_luv_ctx, loop));   /* loop.c reads these */
    SAME(offsetof(luv_ctx_t, L), offsetof(jr_luv_ctx, L));
    SAME(offsetof(luv_ctx_t, cb_pcall), offsetof(jr_luv_ctx, cb_pcall));
    puts(bad ? "layout differs" : "layout matches");
    return bad;
}
