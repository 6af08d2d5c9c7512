/* The stream framings as a message layer: the read half (the framer
 * behind reserve, commit and next) and the ops table; the write half
 * (frame, check, refuse) is in stream_frame.c. */
#include <stdlib.h>
#include "stream_layer.h"

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
    "stream", reserve, commit, room, next, jr_stream_layer_frame, jr_stream_layer_check,
    jr_stream_layer_refuse, error, broken, partial, shrink, held,
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
