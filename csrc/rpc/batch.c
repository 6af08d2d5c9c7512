#include <stdlib.h>
#include "batch.h"

jr_batch *jr_batch_new(void)
{
    jr_batch *b = (jr_batch *)calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->open = 1;
    b->early.alloc = jr_malloc_alloc;
    b->late.alloc = jr_malloc_alloc;
    b->parts.alloc = jr_malloc_alloc;
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
    jr_buf_release(&b->early);
    jr_buf_release(&b->late);
    jr_buf_release(&b->parts);
    free(b->slots);
    free(b);
}

long jr_batch_reserve(jr_batch *b, size_t at)
{
    if (b->nslots == b->slots_cap) {
        size_t cap = b->slots_cap ? 2 * b->slots_cap : 8;
        jr_batch_slot *slots = (jr_batch_slot *)realloc(b->slots, cap * sizeof *slots);
        if (slots == NULL)
            return -1;
        b->slots = slots;
        b->slots_cap = cap;
    }
    b->slots[b->nslots].at = at;
    b->slots[b->nslots].start = 0;
    b->slots[b->nslots].len = 0;
    b->waiting++;
    return (long)b->nslots++;
}

/* Appends one answer to the array, after a comma when one came before. */
static int add_answer(jr_buf *out, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    if (out->len > 1 && jr_buf_addc(out, ',') != 0)
        return -1;
    return jr_buf_add(out, text, len);
}

/* Appends a run of answers written while reading; it starts with the
 * comma that separated it from an earlier one, if any. */
static int add_run(jr_buf *out, const char *text, size_t len)
{
    if (len > 0 && text[0] == ',') {
        text++;
        len--;
    }
    return add_answer(out, text, len);
}

/* The array, in request order: the runs written while reading, with each
 * waiting member's answer where it was reserved. */
static int assemble(jr_batch *b)
{
    /* a buffer nothing was written to has no memory: no offset from NULL */
    const char *early = b->early.data != NULL ? b->early.data : "";
    const char *late = b->late.data != NULL ? b->late.data : "";
    size_t pos = 0, i;
    if (jr_buf_addc(&b->parts, '[') != 0)
        return -1;
    for (i = 0; i < b->nslots; i++) {
        const jr_batch_slot *s = &b->slots[i];
        if (add_run(&b->parts, early + pos, s->at - pos) != 0
            || add_answer(&b->parts, late + s->start, s->len) != 0)
            return -1;
        pos = s->at;
    }
    if (add_run(&b->parts, early + pos, b->early.len - pos) != 0
        || jr_buf_addc(&b->parts, ']') != 0)
        return -1;
    return 1;
}

static int whole_yet(jr_batch *b)
{
    if (b->waiting > 0 || b->open)
        return 0;
    return assemble(b);
}

int jr_batch_answer(jr_batch *b, long slot, const char *text, size_t len)
{
    jr_batch_slot *s = &b->slots[slot];
    s->start = b->late.len;
    s->len = len;
    if (len > 0 && jr_buf_add(&b->late, text, len) != 0)
        return -1;
    b->waiting--;
    return whole_yet(b);
}

int jr_batch_close(jr_batch *b, const char *text, size_t len)
{
    b->open = 0;
    if (len > 0 && jr_buf_add(&b->early, text, len) != 0)
        return -1;
    return whole_yet(b);
}
