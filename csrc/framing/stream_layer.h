/* The stream framings (content-length, be32, ndjson) as a message layer
 * (layer.h): a framer for the bytes in, frame headers for the texts out. */
#ifndef JSONRPC_STREAM_LAYER_H
#define JSONRPC_STREAM_LAYER_H

#include "framing.h"
#include "layer.h"

/* The layer's state; internal to stream_layer.c and stream_frame.c. */
typedef struct stream_layer {
    jr_layer base;            /* first */
    jr_framer framer;
} stream_layer;

#define FRAMER(l) (&((stream_layer *)(l))->framer)
#define CFRAMER(l) (&((const stream_layer *)(l))->framer)

/* The write half (stream_frame.c). */
int jr_stream_layer_frame(jr_layer *l, jr_buf *out, const char *text, size_t len);
const char *jr_stream_layer_check(const jr_layer *l, const char *text, size_t len);
int jr_stream_layer_refuse(jr_layer *l, jr_buf *out);

/* A new layer (malloc'd, its buffers too, as a driver's memory may outlive
 * the Lua state's finalizers); NULL when out of memory. */
jr_layer *jr_stream_layer_new(jr_frame_kind kind, size_t max_message);

#endif
