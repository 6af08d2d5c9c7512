/* Stream framing, sans-IO: cut a byte stream into message payloads and wrap
 * payloads into frames, for the three framings JSON-RPC peers use over
 * streams:
 *
 *   content-length  LSP / vscode-jsonrpc / vs-streamjsonrpc headers:
 *                   "Content-Length: N\r\n" ... "\r\n" then N bytes
 *   be32            4-byte big-endian length then the payload
 *                   (vs-streamjsonrpc LengthHeaderMessageHandler,
 *                   nim-json-rpc lengthHeaderBE32)
 *   ndjson          one JSON text per line
 *
 * The C API is what the message layer of streams (stream_layer.c) uses: it
 * feeds bytes as they arrive (or reads straight into the framer with
 * jr_framer_reserve/commit) and takes messages in place with
 * jr_framer_next. The Lua binding (jsonrpc.framer) is a thin wrapper over
 * it. Errors and the state after them are described at the top of
 * framing.c; encoding (a frame's header) is in stream_frame.c. */
#ifndef JSONRPC_FRAMING_H
#define JSONRPC_FRAMING_H

#include <stddef.h>
#include "common/buffer.h"
#include "common/limits.h"

#define JR_DEFAULT_MAX_HEADER ((size_t)8192)        /* content-length header block */
#define JR_FRAMER_ERRLEN 192
/* A buffer is trimmed back to this once what it holds needs less: an idle
 * connection keeps little, whatever it once received. */
#define JR_FRAMER_KEEP ((size_t)8192)
/* Room jr_frame_header_write needs: "Content-Length: " + 20 digits + CRLFCRLF. */
#define JR_FRAME_HEADER_MAX 48

typedef enum jr_frame_kind {
    JR_FRAME_CONTENT_LENGTH = 0,
    JR_FRAME_BE32 = 1,
    JR_FRAME_NDJSON = 2
} jr_frame_kind;

/* An incremental decoder. Fields are private to framing*.c; the struct is
 * public only so it can be embedded (in a userdata, in a connection). */
typedef struct jr_framer {
    jr_frame_kind kind;
    int state;
    size_t max_message;  /* payload bytes a frame may carry */
    size_t max_header;   /* content-length: bytes the header block may take */
    jr_buf buf;          /* received bytes; [start, buf.len) not consumed yet */
    size_t start;
    size_t line;         /* content-length: start of the header line in scan */
    size_t scan;         /* where the search for the current frame's end resumes */
    size_t body_len;     /* length of the body being awaited */
    int too_big;         /* the last error: a message over max_message */
    char err[JR_FRAMER_ERRLEN];
} jr_framer;

/* Return value of jr_framer_feed/jr_framer_commit when memory ran out; the
 * framer is then as it was before the call. */
#define JR_FRAMER_NOMEM (-2)

/* Names: "content-length", "be32", "ndjson". parse returns 0 or -1. */
const char *jr_frame_kind_name(jr_frame_kind kind);
int jr_frame_kind_parse(const char *name, jr_frame_kind *kind);

/* Sets up an empty framer whose buffer uses the given allocator (a Lua
 * state's, from lua_getallocf, or any function with lua_Alloc's contract).
 * Allocates nothing. */
void jr_framer_init(jr_framer *f, jr_frame_kind kind, size_t max_message,
                    size_t max_header, lua_Alloc alloc, void *alloc_ud);
/* Frees the buffer. The framer may be used again after jr_framer_reset. */
void jr_framer_free(jr_framer *f);
/* Back to the initial state: buffered bytes dropped, error cleared. */
void jr_framer_reset(jr_framer *f);

/* Appends n bytes. 0 on success; -1 when the framer is broken (the bytes are
 * ignored, jr_framer_error says why); JR_FRAMER_NOMEM when out of memory.
 * Invalidates messages returned by jr_framer_next before it. */
int jr_framer_feed(jr_framer *f, const char *data, size_t n);

/* Zero-copy alternative to feed, for reading straight into the framer:
 * reserve returns where at least n bytes may be written (and in *avail how
 * many may be; more than n while a large body is awaited) or NULL when broken
 * (jr_framer_broken) or out of memory; commit then adds the first `n` of them
 * (n <= *avail). Reserve invalidates earlier messages, like feed. */
char *jr_framer_reserve(jr_framer *f, size_t n, size_t *avail);
void jr_framer_commit(jr_framer *f, size_t n);

/* Takes the next complete message: 1 with *msg and *len set (pointing into the
 * framer's buffer, valid until the next feed, reserve, reset or free; the
 * bytes are not NUL-terminated), 0 when more bytes are needed, -1 on a
 * framing error (jr_framer_error says what; see framing.c for what follows:
 * ndjson continues with the next line, the others stay broken). */
int jr_framer_next(jr_framer *f, const char **msg, size_t *len);

/* Bytes that may be written after the held ones without growing. */
size_t jr_framer_room(const jr_framer *f);

/* Gives back memory the bytes held do not need (after a large message).
 * Invalidates messages taken before it; feed and reserve do it too. */
void jr_framer_shrink(jr_framer *f);

/* The last framing error's message ("" when none). */
const char *jr_framer_error(const jr_framer *f);
/* 1 when the last framing error was a message over max_message_size. */
int jr_framer_too_big(const jr_framer *f);

/* The answer to the framer's error, as the peer is told it (once, with id
 * null): -32600 for a message over the size limit, -32700 for a broken
 * frame, the reason in the message; unframed, into text. Returns its
 * length (stream_frame.c). */
#define JR_REFUSAL_MAX (JR_FRAMER_ERRLEN * 2 + 128)
size_t jr_framer_refusal(const jr_framer *f, char text[JR_REFUSAL_MAX]);
/* 1 when a framing error has made the framer unusable until reset. */
int jr_framer_broken(const jr_framer *f);
/* Bytes held and not yet returned as messages. */
size_t jr_framer_buffered(const jr_framer *f);

/* Encoding. NULL when a payload of `len` bytes (ndjson: these bytes) can be
 * framed with `kind`, else why not: be32 cannot carry more than 0xFFFFFFFF
 * bytes, an ndjson payload may not contain a newline. */
const char *jr_frame_check(jr_frame_kind kind, const char *payload, size_t len);
/* Writes the frame header for a payload of len bytes into dst and returns
 * its length (0 for ndjson, whose frames have only a trailer); (size_t)-1
 * when len is too large for the framing. A transport can reserve
 * JR_FRAME_HEADER_MAX bytes, encode the body after them, then write the
 * header right-aligned against the body. */
size_t jr_frame_header_write(jr_frame_kind kind, size_t len, char dst[JR_FRAME_HEADER_MAX]);

/* Internal, shared by framing.c and framing_headers.c: parses a complete
 * content-length header block p[0..n) (header lines, each ending in CRLF,
 * without the empty line that ends the block) into *len. 0, or -1 with a
 * message in err. */
int jr_content_length_headers(const char *p, size_t n, unsigned long long *len,
                              char err[JR_FRAMER_ERRLEN]);
/* Copies at most 32 bytes of s[0..n) into out for quoting in a message,
 * with unprintable bytes replaced by '?' and "..." marking truncation. */
void jr_framing_quote(char out[40], const char *s, size_t n);

/* Adds framer to the table on top of the stack. */
void jr_framing_open(lua_State *L);
/* The framing named by the string argument idx (raises for another). */
jr_frame_kind jr_check_framing(lua_State *L, int idx);

#endif
