#include <stdio.h>
#include <stdlib.h>
#include "stream_layer.h"

typedef struct stream_layer {
    jr_layer base;            /* first */
    jr_framer framer;
} stream_layer;

#define FRAMER(l) (&((stream_layer *)(l))->framer)
#define CFRAMER(l) (&((const stream_layer *)(l))->framer)

static char *reserve(jr_layer *l, size_t want, size_t *avail)
{
    return jr_framer_reserve(FRAMER(l), want, avail);
}

static void commit(jr_layer *l, size_t n)
{
    jr_framer_commit(FRAMER(l), n);
}

static size_t room(const jr_layer *l)
{
    return jr_framer_room(CFRAMER(l));
}

static int next(jr_layer *l, const char **msg, size_t *len)
{
    return jr_framer_next(FRAMER(l), msg, len);
}

/* The header, the text, and ndjson's newline. */
static int frame(jr_layer *l, jr_buf *out, const char *text, size_t len)
{
    jr_frame_kind kind = FRAMER(l)->kind;
    char head[JR_FRAME_HEADER_MAX];
    size_t hlen = jr_frame_header_write(kind, len, head);
    if (hlen == (size_t)-1)
        return -1;
    if (jr_buf_add(out, head, hlen) != 0 || jr_buf_add(out, text, len) != 0
        || (kind == JR_FRAME_NDJSON && jr_buf_addc(out, '\n') != 0))
        return -1;
    return 0;
}

static const char *check(const jr_layer *l, const char *text, size_t len)
{
    return jr_frame_check(CFRAMER(l)->kind, text, len);
}

/* A framing error is answered once with id null, while our side of the
 * framing can still be written (it always can: only the peer's broke):
 * -32600 for a message over the size limit, -32700 for a broken frame,
 * with the reason in the message. */
static int refuse(jr_layer *l, jr_buf *out)
{
    const jr_framer *f = FRAMER(l);
    const char *why = jr_framer_error(f);
    int too_big = jr_framer_too_big(f);
    char text[JR_FRAMER_ERRLEN * 2 + 128];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":%d,\"message\":\"%s: ",
                                too_big ? -32600 : -32700,
                                too_big ? "Invalid Request" : "Parse error");
    for (; *why != '\0' && n < sizeof text - 40; why++) {
        if (*why == '"' || *why == '\\')
            text[n++] = '\\';
        text[n++] = (unsigned char)*why < 0x20 ? '?' : *why;
    }
    n += (size_t)snprintf(text + n, sizeof text - n, "\"},\"id\":null}");
    return frame(l, out, text, n);
}

static const char *error(const jr_layer *l)
{
    return jr_framer_error(CFRAMER(l));
}

static int broken(const jr_layer *l)
{
    return jr_framer_broken(CFRAMER(l));
}

static size_t partial(const jr_layer *l)
{
    return jr_framer_buffered(CFRAMER(l));
}

static void shrink(jr_layer *l)
{
    jr_framer_shrink(FRAMER(l));
}

static size_t held(const jr_layer *l)
{
    return CFRAMER(l)->buf.cap;
}

static void layer_free(jr_layer *l)
{
    jr_framer_free(FRAMER(l));
    free(l);
}

static const jr_layer_ops ops = {
    "stream", reserve, commit, room, next, frame, check, refuse, error, broken, partial, shrink, held,
    layer_free,
};

jr_layer *jr_stream_layer_new(jr_frame_kind kind, size_t max_message)
{
    stream_layer *sl = (stream_layer *)calloc(1, sizeof *sl);
    if (sl == NULL)
        return NULL;
    sl->base.ops = &ops;
    jr_framer_init(&sl->framer, kind, max_message, JR_DEFAULT_MAX_HEADER, jr_malloc_alloc, NULL);
    return &sl->base;
}
