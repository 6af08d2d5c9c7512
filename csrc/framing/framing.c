/* Framing state machines and their buffer (formats: see framing.h).
 *
 * Errors, and the state after them:
 *  - content-length and be32: after a framing error (a bad header, a frame
 *    over max_message_size, a header block over max_header_size) where the
 *    next frame starts is unknown, so there is no resynchronising. The framer
 *    is broken: what it held is dropped (its memory released at the next
 *    feed, reserve or shrink), jr_framer_next returns -1 and jr_framer_feed
 *    ignores its bytes and returns -1, with the same error, until
 *    jr_framer_reset. From Lua: every later feed returns {} and that
 *    error.
 *  - ndjson recovers: a line whose payload (without its newline and a CR
 *    before it) is longer than max_message_size is reported once, as soon as
 *    the pending part of it shows that it must be too long or when it is
 *    complete, and discarded up to and including its newline without being
 *    buffered; framing goes on with the next line. The error names no
 *    length, so it reads the same however the line was split.
 *  Running out of memory is not a framing error: feed returns
 *  JR_FRAMER_NOMEM and the framer is as it was.
 *
 * Cost is linear in the bytes fed, however they are split:
 *  - every search (for a newline, for the empty line ending a header block)
 *    resumes where the previous one stopped (f->scan, f->line);
 *  - the consumed prefix is moved out only when growing would otherwise be
 *    needed and it is at least as large as what remains (so each move is paid
 *    for by the bytes consumed since the last), or once per frame when a
 *    known-length body is about to be reserved;
 *  - once a body's length is known, its bytes are moved to the front once
 *    and the buffer grows geometrically up to exactly the frame's end (not
 *    all at once: a peer announcing a huge frame must send it to make us
 *    hold it, so memory stays within twice what was received);
 *  - when the bytes held need less than a quarter of a large buffer, the
 *    buffer is trimmed, so one huge message does not pin its memory.
 *  Nothing is moved or freed between jr_framer_next calls: every message
 *  taken stays valid until the next feed/reserve/shrink. */
#include <stdio.h>
#include "framing.h"

enum {
    ST_HEAD,   /* content-length, be32: reading a header */
    ST_BODY,   /* content-length, be32: awaiting body_len bytes at start */
    ST_LINE,   /* ndjson */
    ST_SKIP,   /* ndjson: discarding the rest of an oversized line */
    ST_BROKEN  /* after a content-length or be32 framing error */
};


static const char *const kind_names[] = { "content-length", "be32", "ndjson" };

const char *jr_frame_kind_name(jr_frame_kind kind)
{
    return kind_names[kind];
}

int jr_frame_kind_parse(const char *name, jr_frame_kind *kind)
{
    int i;
    for (i = 0; i < 3; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (jr_frame_kind)i;
            return 0;
        }
    }
    return -1;
}

/* ---- state and buffer ------------------------------------------------- */

static int initial_state(jr_frame_kind kind)
{
    return kind == JR_FRAME_NDJSON ? ST_LINE : ST_HEAD;
}

void jr_framer_init(jr_framer *f, jr_frame_kind kind, size_t max_message,
                    size_t max_header, lua_Alloc alloc, void *alloc_ud)
{
    f->kind = kind;
    f->state = initial_state(kind);
    f->max_message = max_message;
    f->max_header = max_header;
    memset(&f->buf, 0, sizeof f->buf);
    f->buf.alloc = alloc;
    f->buf.alloc_ud = alloc_ud;
    f->start = f->line = f->scan = f->body_len = 0;
    f->too_big = 0;
    f->err[0] = '\0';
}

void jr_framer_free(jr_framer *f)
{
    jr_buf_release(&f->buf);
    f->start = f->line = f->scan = 0;
}

void jr_framer_reset(jr_framer *f)
{
    jr_framer_free(f);
    f->state = initial_state(f->kind);
    f->body_len = 0;
    f->too_big = 0;
    f->err[0] = '\0';
}

const char *jr_framer_error(const jr_framer *f)
{
    return f->err;
}

int jr_framer_too_big(const jr_framer *f)
{
    return f->too_big;
}

int jr_framer_broken(const jr_framer *f)
{
    return f->state == ST_BROKEN;
}

size_t jr_framer_room(const jr_framer *f)
{
    return f->state == ST_BROKEN ? 0 : f->buf.cap - f->buf.len;
}

size_t jr_framer_buffered(const jr_framer *f)
{
    return f->buf.len - f->start;
}

/* A framing error that content-length and be32 cannot recover from; err
 * already holds the message. Everything held is dropped; the memory goes at
 * the next feed, reserve or shrink, as messages taken before may still be
 * in use. Returns -1 for the caller to pass on. */
static int broken(jr_framer *f)
{
    f->start = f->line = f->scan = f->buf.len;
    f->state = ST_BROKEN;
    return -1;
}

static int oversized(jr_framer *f, unsigned long long len)
{
    f->too_big = 1;
    snprintf(f->err, JR_FRAMER_ERRLEN,
             "%s: message of %llu bytes exceeds max_message_size (%llu)",
             jr_frame_kind_name(f->kind), len, (unsigned long long)f->max_message);
    return broken(f);
}

/* Moves the unconsumed bytes to the front of the buffer. */
static void compact(jr_framer *f)
{
    jr_buf *b = &f->buf;
    size_t s = f->start;
    if (s == 0)
        return;
    memmove(b->data, b->data + s, b->len - s);
    b->len -= s;
    f->start = 0;
    f->line -= s;
    f->scan -= s;
}

/* Bytes of buffer the framer needs from start on: what it holds, and for a
 * known-length body the whole body. */
static size_t needed(const jr_framer *f)
{
    size_t held = jr_framer_buffered(f);
    return (f->state == ST_BODY && f->body_len > held) ? f->body_len : held;
}

/* Gives back memory when what is needed (plus `extra` about to arrive) is
 * under a quarter of a large buffer. */
static void shrink(jr_framer *f, size_t extra)
{
    jr_buf *b = &f->buf;
    size_t need = needed(f);
    if (f->start == b->len) {
        /* Everything consumed: start over at the front, nothing to move. */
        b->len = f->start = f->line = f->scan = 0;
    }
    if (b->cap <= JR_FRAMER_KEEP || extra > b->cap / 4 || need > b->cap / 4 - extra)
        return;
    need += extra;
    compact(f);
    jr_buf_trim(b, need > JR_FRAMER_KEEP ? need : JR_FRAMER_KEEP);
}

void jr_framer_shrink(jr_framer *f)
{
    if (f->state == ST_BROKEN)
        jr_framer_free(f);
    else
        shrink(f, 0);
}

/* Sets the storage to exactly `cap` bytes (cap >= len). */
static int resize_exact(jr_buf *b, size_t cap)
{
    char *p = (char *)b->alloc(b->alloc_ud, b->data, b->cap, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Capacity to grow to, from start on, for a body whose length is known:
 * geometric growth, so the copies stay linear, but never past the frame, so
 * nothing is wasted; and never more than twice what is held, so a peer
 * announcing a huge frame does not make us allocate it before it sends. */
static size_t body_target(const jr_framer *f, size_t want)
{
    size_t cap = f->buf.cap, t = cap > (size_t)-1 / 2 ? (size_t)-1 : cap * 2;
    if (want >= f->body_len)
        return want;
    if (t < JR_FRAMER_KEEP)
        t = JR_FRAMER_KEEP;
    if (t < want)
        t = want;
    return t < f->body_len ? t : f->body_len;
}

/* Room for n more bytes after the buffer's end. 0, or -1 when out of
 * memory. */
static int make_room(jr_framer *f, size_t n)
{
    jr_buf *b = &f->buf;
    size_t held, want;
    shrink(f, n);
    held = jr_framer_buffered(f);
    if (n > (size_t)-1 - held)
        return -1;
    want = held + n;
    if (b->cap - b->len >= n)
        return 0;
    /* Moving is worth it when it costs no more than the bytes consumed
     * since the last move, or once per body (start stays 0 after it until
     * the body is complete). */
    if (f->start >= held || (f->state == ST_BODY && held < f->body_len))
        compact(f);
    if (b->cap - b->len >= n)
        return 0;
    if (f->state == ST_BODY)
        return resize_exact(b, f->start + body_target(f, want));
    return jr_buf_grow(b, n);
}

int jr_framer_feed(jr_framer *f, const char *data, size_t n)
{
    if (f->state == ST_BROKEN) {
        jr_framer_free(f);
        return -1;
    }
    if (n == 0)
        return 0;
    if (f->state == ST_SKIP) {
        const char *nl = (const char *)memchr(data, '\n', n);
        if (nl == NULL)
            return 0;
        n -= (size_t)(nl + 1 - data);
        data = nl + 1;
        f->state = ST_LINE;
        if (n > 0 && make_room(f, n) != 0) {
            f->state = ST_SKIP;
            return JR_FRAMER_NOMEM;
        }
    } else if (n > 0 && make_room(f, n) != 0) {
        return JR_FRAMER_NOMEM;
    }
    if (n > 0) {
        memcpy(f->buf.data + f->buf.len, data, n);
        f->buf.len += n;
    }
    return 0;
}

char *jr_framer_reserve(jr_framer *f, size_t n, size_t *avail)
{
    if (f->state == ST_BROKEN) {
        jr_framer_free(f);
        return NULL;
    }
    if (make_room(f, n > 0 ? n : 1) != 0)
        return NULL;
    *avail = f->buf.cap - f->buf.len;
    return f->buf.data + f->buf.len;
}

void jr_framer_commit(jr_framer *f, size_t n)
{
    jr_buf *b = &f->buf;
    if (f->state == ST_BROKEN)
        return;
    if (f->state == ST_SKIP) {
        char *p = b->data + b->len;
        char *nl = (char *)memchr(p, '\n', n);
        if (nl == NULL)
            return;
        n -= (size_t)(nl + 1 - p);
        memmove(p, nl + 1, n);
        f->state = ST_LINE;
    }
    b->len += n;
}

/* ---- decoding --------------------------------------------------------- */

/* content-length: finds the empty line ending the header block and parses
 * the block. 1 when the body's length is known, 0 for more bytes, -1. */
static int head_content_length(jr_framer *f)
{
    jr_buf *b = &f->buf;
    const char *d = b->data;
    unsigned long long len;
    size_t end;
    for (;;) {
        const char *nl = f->scan < b->len
                             ? (const char *)memchr(d + f->scan, '\n', b->len - f->scan)
                             : NULL;
        size_t i;
        if (nl == NULL) {
            f->scan = b->len;
            /* The block must end within its first max_header bytes. */
            if (b->len - f->start >= f->max_header)
                goto too_big;
            return 0;
        }
        i = (size_t)(nl - d);
        f->scan = i + 1;
        if (i > f->line && d[i - 1] == '\r') {
            if (i - 1 == f->line) {
                end = i + 1;
                break;
            }
            f->line = i + 1;
        }
    }
    if (end - f->start > f->max_header)
        goto too_big;
    if (jr_content_length_headers(d + f->start, f->line - f->start, &len, f->err) != 0) {
        f->too_big = 0;
        return broken(f);
    }
    if (len > f->max_message)
        return oversized(f, len);
    f->start = f->line = f->scan = end;
    f->body_len = (size_t)len;
    f->state = ST_BODY;
    return 1;
too_big:
    f->too_big = 0;   /* a header, not a message, too large: a broken frame */
    snprintf(f->err, JR_FRAMER_ERRLEN,
             "content-length: header block exceeds max_header_size (%llu)",
             (unsigned long long)f->max_header);
    return broken(f);
}

static int head_be32(jr_framer *f)
{
    const unsigned char *p;
    unsigned long len;
    if (jr_framer_buffered(f) < 4)
        return 0;
    p = (const unsigned char *)f->buf.data + f->start;
    len = (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
    if (len > f->max_message)
        return oversized(f, len);
    f->start += 4;
    f->line = f->scan = f->start;
    f->body_len = (size_t)len;
    f->state = ST_BODY;
    return 1;
}

static int take_body(jr_framer *f, const char **msg, size_t *len)
{
    if (jr_framer_buffered(f) < f->body_len)
        return 0;
    *msg = f->buf.data != NULL ? f->buf.data + f->start : "";
    *len = f->body_len;
    f->start += f->body_len;
    f->line = f->scan = f->start;
    f->state = ST_HEAD;
    return 1;
}

static int blank(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static int line_too_long(jr_framer *f)
{
    f->too_big = 1;
    snprintf(f->err, JR_FRAMER_ERRLEN, "ndjson: line exceeds max_message_size (%llu)",
             (unsigned long long)f->max_message);
    return -1;
}

/* The pending (newline-less) part of a line is too long when no ending
 * could bring its payload within the limit: only a CR right before the
 * newline is not payload. */
static int pending_too_long(const jr_framer *f)
{
    size_t held = jr_framer_buffered(f);
    return held > f->max_message &&
           (held - f->max_message > 1 || f->buf.data[f->buf.len - 1] != '\r');
}

static int next_line(jr_framer *f, const char **msg, size_t *len)
{
    jr_buf *b = &f->buf;
    for (;;) {
        const char *d = b->data, *nl;
        size_t s, n;
        if (f->state == ST_SKIP)
            return 0;
        nl = f->scan < b->len ? (const char *)memchr(d + f->scan, '\n', b->len - f->scan) : NULL;
        if (nl == NULL) {
            f->scan = b->len;
            if (!pending_too_long(f))
                return 0;
            f->start = f->line = f->scan = b->len;
            f->state = ST_SKIP;
            return line_too_long(f);
        }
        s = f->start;
        n = (size_t)(nl - d) - s;
        f->start = f->line = f->scan = s + n + 1;
        if (n > 0 && d[s + n - 1] == '\r')
            n--;
        if (n > f->max_message)
            return line_too_long(f);
        if (!blank(d + s, n)) {
            *msg = d + s;
            *len = n;
            return 1;
        }
    }
}

int jr_framer_next(jr_framer *f, const char **msg, size_t *len)
{
    int r;
    switch (f->state) {
    case ST_BROKEN:
        return -1;
    case ST_LINE:
    case ST_SKIP:
        return next_line(f, msg, len);
    case ST_HEAD:
        r = f->kind == JR_FRAME_BE32 ? head_be32(f) : head_content_length(f);
        if (r <= 0)
            return r;
        return take_body(f, msg, len);
    default:
        return take_body(f, msg, len);
    }
}
