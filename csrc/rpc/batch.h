/* A batch whose members wait: the answers written while the batch was
 * read and those of its waiting members as they finish, kept until the
 * last one finishes. The batch is then answered with one array (the
 * specification asks for one), in the order of its requests, however its
 * members finished. Shared by the exchange that reads the batch and the
 * jobs of its waiting members, by reference count; memory from malloc, as
 * a job may outlive the exchange that made it. */
#ifndef JSONRPC_BATCH_H
#define JSONRPC_BATCH_H

#include "common/buffer.h"

/* Where a waiting member's answer goes: after the first `at` bytes of the
 * answers written while reading, and where it is in `late`. */
typedef struct jr_batch_slot {
    size_t at;
    size_t start, len;   /* in late; len 0 until answered */
} jr_batch_slot;

typedef struct jr_batch {
    int refs;        /* the exchange reading it, and each waiting member */
    int waiting;     /* members not answered yet */
    int open;        /* still being read: not to be sent yet */
    jr_buf early;    /* the answers written while reading, comma-separated */
    jr_buf late;     /* waiting members' answers, back to back */
    jr_batch_slot *slots;
    size_t nslots, slots_cap;
    jr_buf parts;    /* the whole array, once the last member answered */
    unsigned long tag;   /* the driver's tag of the batch's message */
} jr_batch;

/* A new batch, open, with one reference; NULL when out of memory. */
jr_batch *jr_batch_new(void);
void jr_batch_ref(jr_batch *b);
void jr_batch_unref(jr_batch *b);

/* A member starts waiting; its answer will go after the first `at` bytes
 * of what is written while reading. Returns its slot, or -1 when out of
 * memory. */
long jr_batch_reserve(jr_batch *b, size_t at);

/* The answer of the member in `slot` (len 0 for none). Returns 1 when the
 * batch is whole (the array is then in b->parts), 0 when it is not yet,
 * -1 when out of memory. */
int jr_batch_answer(jr_batch *b, long slot, const char *text, size_t len);

/* The end of reading: `text` is what was written meanwhile (comma-
 * separated answers, no brackets). Returns as jr_batch_answer does. */
int jr_batch_close(jr_batch *b, const char *text, size_t len);

#endif
