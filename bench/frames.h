/* What the load generator and the floor share: bytes received on a
 * connection, and the content-length frames found in them (the header is
 * taken on trust: these programs talk to servers under test, and a frame
 * that is not well formed simply never completes). */
#ifndef JSONRPC_BENCH_FRAMES_H
#define JSONRPC_BENCH_FRAMES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static inline void *must(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

typedef struct inbuf {
    char *p;
    size_t len, cap, at;      /* at: where the next frame starts */
} inbuf;

/* Room for a read (a libuv alloc callback's work). */
static inline void inbuf_room(inbuf *b, size_t suggested, uv_buf_t *buf)
{
    if (b->cap - b->len < suggested) {
        b->cap = b->len + suggested < 2 * b->cap ? 2 * b->cap : b->len + suggested;
        b->p = (char *)must(realloc(b->p, b->cap));
    }
    *buf = uv_buf_init(b->p + b->len, (unsigned)(b->cap - b->len));
}

/* The next whole frame's body, or 0 when more bytes are needed. */
static inline int inbuf_next(inbuf *b, const char **body, size_t *len)
{
    const char *head = b->p + b->at, *sep, *colon;
    size_t avail = b->len - b->at, hlen;
    sep = memmem(head, avail, "\r\n\r\n", 4);
    if (sep == NULL)
        return 0;
    colon = memchr(head, ':', (size_t)(sep - head));
    *len = 0;
    if (colon != NULL) {   /* the digits after it, within the header */
        const char *d = colon + 1;
        while (d < sep && (*d == ' ' || *d == '\t'))
            d++;
        for (; d < sep && *d >= '0' && *d <= '9'; d++) {
            if (*len > ((size_t)-1 - 9) / 10)
                return 0;   /* a length no frame can have: never completes */
            *len = *len * 10 + (size_t)(*d - '0');
        }
    }
    hlen = (size_t)(sep + 4 - head);
    if (*len > avail - hlen)
        return 0;
    *body = sep + 4;
    b->at += hlen + *len;
    return 1;
}

/* Drops the frames taken, keeping the start of the next one. */
static inline void inbuf_shift(inbuf *b)
{
    memmove(b->p, b->p + b->at, b->len - b->at);
    b->len -= b->at;
    b->at = 0;
}

#endif
