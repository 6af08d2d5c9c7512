/* A message layer: the part of a connection between a byte transport and
 * the endpoint. Sans-IO: bytes come in through reserve/commit and leave as
 * whole messages from next; texts from the endpoint are framed into bytes
 * to write. A driver (csrc/uv/stream.c on libuv, or a host's own sockets)
 * moves the bytes and knows nothing of the protocol; the endpoint takes
 * and makes message texts and knows nothing of the bytes.
 *
 * The stream framings (content-length, be32, ndjson) are its first
 * implementations (stream_layer.c). HTTP/1.1 and WebSocket will be others,
 * new files with their own jr_layer_ops, with no change to the driver or
 * the endpoint.
 *
 * A byte filter such as TLS (OpenSSL memory BIOs) goes below it, in the
 * driver: ciphertext read from the socket goes into the filter, whose
 * plaintext the driver writes into the layer's reserved room; the bytes
 * frame() makes go through the filter on their way out. The layer never
 * sees ciphertext, and the zero-copy path above it stays as it is.
 *
 * Lifetimes. The layer owns its read buffer. reserve's pointer is valid
 * until the commit that follows. A message from next points into the
 * buffer, valid until the next reserve, shrink or free: a driver hands it
 * to the endpoint before it reads again. frame copies what it is given. */
#ifndef JSONRPC_LAYER_H
#define JSONRPC_LAYER_H

#include <stddef.h>
#include "common/buffer.h"

typedef struct jr_layer jr_layer;

typedef struct jr_layer_ops {
    const char *name;
    /* Reads: where at least `want` bytes may be written (*avail: how many
     * may), or NULL when the layer is broken or out of memory; commit adds
     * the first n of them. room: bytes that fit without growing. */
    char *(*reserve)(jr_layer *l, size_t want, size_t *avail);
    void (*commit)(jr_layer *l, size_t n);
    size_t (*room)(const jr_layer *l);
    /* The next whole message: 1 with *msg and *len set, 0 when more bytes
     * are needed, -1 on an error (error() says what; broken() whether the
     * connection must close after it). */
    int (*next)(jr_layer *l, const char **msg, size_t *len);
    /* Appends the bytes that carry text (one message) to out: 0, or -1
     * when out of memory. check says beforehand whether text can be
     * carried at all (NULL, or why not). */
    int (*frame)(jr_layer *l, jr_buf *out, const char *text, size_t len);
    const char *(*check)(const jr_layer *l, const char *text, size_t len);
    /* After an error from next: appends what tells the peer (a JSON-RPC
     * error with id null for the stream framings; a status or a close frame
     * for others), 0 or -1 when out of memory. */
    int (*refuse)(jr_layer *l, jr_buf *out);
    const char *(*error)(const jr_layer *l);
    int (*broken)(const jr_layer *l);
    /* Bytes of a message begun and not complete (0: none), for the frame
     * timeout. */
    size_t (*partial)(const jr_layer *l);
    /* Memory: gives back what the bytes held do not need (after a burst);
     * the bytes of memory held (for a listener's cap); frees everything,
     * the layer included. */
    void (*shrink)(jr_layer *l);
    size_t (*held)(const jr_layer *l);
    void (*free)(jr_layer *l);
} jr_layer_ops;

/* Every layer starts with this. */
struct jr_layer {
    const jr_layer_ops *ops;
};

#endif
