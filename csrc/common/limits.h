/* Defaults that more than one layer uses, in one place. */
#ifndef JSONRPC_LIMITS_H
#define JSONRPC_LIMITS_H

#include <stddef.h>

/* Bytes one message (one JSON document, one frame) may have, unless told
 * otherwise: the codec's max_size, the framings' and the server's
 * max_message_size. Listeners face strangers and default to less
 * (uv/stream.h). */
#define JR_DEFAULT_MAX_MESSAGE ((size_t)128 << 20)

#endif
