#include <stdlib.h>
#include "batch.h"

jr_batch *jr_batch_new(void)
{
    jr_batch *b = (jr_batch *)calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->open = 1;
    b->parts.alloc = jr_malloc_alloc;
    /* room for the '[' that opens the array when it goes out */
    if (jr_buf_addc(&b->parts, '[') != 0) {
        free(b);
        return NULL;
    }
    return b;
}

void jr_batch_ref(jr_batch *b)
{
    b->refs++;
}

void jr_batch_unref(jr_batch *b)
{
    if (--b->refs > 0)
        return;
    jr_buf_release(&b->parts);
    free(b);
}

int jr_batch_add(jr_batch *b, const char *text, size_t len, int answered)
{
    if (len > 0) {
        if (b->parts.len > 1 && jr_buf_addc(&b->parts, ',') != 0)
            return -1;
        if (jr_buf_add(&b->parts, text, len) != 0)
            return -1;
    }
    b->waiting -= answered;
    if (b->waiting > 0 || b->open)
        return 0;
    return jr_buf_addc(&b->parts, ']') != 0 ? -1 : 1;
}
