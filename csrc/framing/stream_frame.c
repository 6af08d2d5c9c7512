/* The write half of the stream layer: a text framed for the peer (the
 * header, the text, ndjson's newline), and the answer to a broken frame. */
#include <stdio.h>
#include <string.h>
#include "stream_layer.h"

/* ---- encoding (also framer:frame's, framing_lua.c) ---- */

const char *jr_frame_check(jr_frame_kind kind, const char *payload, size_t len)
{
    if (kind == JR_FRAME_BE32 && (unsigned long long)len > 0xFFFFFFFFull)
        return "be32: payload larger than 4294967295 bytes";
    if (kind == JR_FRAME_NDJSON && len > 0 && memchr(payload, '\n', len) != NULL)
        return "ndjson: payload contains a newline";
    return NULL;
}

size_t jr_frame_header_write(jr_frame_kind kind, size_t len, char dst[JR_FRAME_HEADER_MAX])
{
    static const char prefix[] = "Content-Length: ";
    char digits[24];
    size_t nd = 0, n = sizeof prefix - 1;
    switch (kind) {
    case JR_FRAME_CONTENT_LENGTH:
        do {
            digits[nd++] = (char)('0' + len % 10);
            len /= 10;
        } while (len > 0);
        memcpy(dst, prefix, n);
        while (nd > 0)
            dst[n++] = digits[--nd];
        memcpy(dst + n, "\r\n\r\n", 4);
        return n + 4;
    case JR_FRAME_BE32:
        if ((unsigned long long)len > 0xFFFFFFFFull)
            return (size_t)-1;
        dst[0] = (char)(len >> 24 & 0xff);
        dst[1] = (char)(len >> 16 & 0xff);
        dst[2] = (char)(len >> 8 & 0xff);
        dst[3] = (char)(len & 0xff);
        return 4;
    default:
        return 0;
    }
}

/* ---- the layer's write half ---- */

/* The header, the text, and ndjson's newline. */
int jr_stream_layer_frame(jr_layer *l, jr_buf *out, const char *text, size_t len)
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

const char *jr_stream_layer_check(const jr_layer *l, const char *text, size_t len)
{
    return jr_frame_check(CFRAMER(l)->kind, text, len);
}

/* A framing error is answered once with id null, while our side of the
 * framing can still be written (it always can: only the peer's broke):
 * -32600 for a message over the size limit, -32700 for a broken frame,
 * with the reason in the message. Writes the text (unframed) into text;
 * returns its length. */
size_t jr_framer_refusal(const jr_framer *f, char text[JR_REFUSAL_MAX])
{
    const char *why = jr_framer_error(f);
    int too_big = jr_framer_too_big(f);
    size_t n = (size_t)snprintf(text, JR_REFUSAL_MAX,
                                "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":%d,\"message\":\"%s: ",
                                too_big ? -32600 : -32700,
                                too_big ? "Invalid Request" : "Parse error");
    for (; *why != '\0' && n < JR_REFUSAL_MAX - 40; why++) {
        if (*why == '"' || *why == '\\')
            text[n++] = '\\';
        text[n++] = (unsigned char)*why < 0x20 ? '?' : *why;
    }
    n += (size_t)snprintf(text + n, JR_REFUSAL_MAX - n, "\"},\"id\":null}");
    return n;
}

int jr_stream_layer_refuse(jr_layer *l, jr_buf *out)
{
    char text[JR_REFUSAL_MAX];
    size_t n = jr_framer_refusal(FRAMER(l), text);
    return jr_stream_layer_frame(l, out, text, n);
}
