/* The stream framings (content-length, be32, ndjson) as a message layer
 * (layer.h): a framer for the bytes in, frame headers for the texts out. */
#ifndef JSONRPC_STREAM_LAYER_H
#define JSONRPC_STREAM_LAYER_H

#include "framing.h"
#include "layer.h"

/* A new layer (malloc'd, its buffers too, as a driver's memory may outlive
 * the Lua state's finalizers); NULL when out of memory. */
jr_layer *jr_stream_layer_new(jr_frame_kind kind, size_t max_message);

#endif
