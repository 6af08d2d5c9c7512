/* A batch whose members wait: the answers of the members written so far,
 * kept until the last waiting member finishes, so that the batch is still
 * answered with one array (the specification asks for one). Shared by the
 * exchange that reads the batch and the jobs of its waiting members, by
 * reference count; memory from malloc, as a job may outlive the exchange
 * that made it. */
#ifndef JSONRPC_BATCH_H
#define JSONRPC_BATCH_H

#include "common/buffer.h"

typedef struct jr_batch {
    int refs;        /* the exchange reading it, and each waiting member */
    int waiting;     /* members not answered yet */
    int open;        /* still being read: not to be sent yet */
    jr_buf parts;    /* the responses so far, comma-separated */
    unsigned long tag;   /* the driver's tag of the batch's message */
} jr_batch;

/* A new batch, open, with one reference; NULL when out of memory. */
jr_batch *jr_batch_new(void);
void jr_batch_ref(jr_batch *b);
void jr_batch_unref(jr_batch *b);

/* Adds responses (comma-separated, no brackets; len may be 0) to the
 * batch's parts; `answered` members are done with it. When no member
 * waits and the batch is read, the whole array is in b->parts (from '[')
 * and 1 is returned; 0 otherwise, -1 when out of memory. */
int jr_batch_add(jr_batch *b, const char *text, size_t len, int answered);

#endif
