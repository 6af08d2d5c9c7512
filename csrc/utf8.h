/* Strict UTF-8 validation (Unicode 15, table 3-7): no overlong forms, no
 * UTF-16 surrogates, nothing above U+10FFFF. */
#ifndef JSONRPC_UTF8_H
#define JSONRPC_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Past the bytes from u that a JSON string holds as they are and that need
 * no UTF-8 check: ASCII from 0x20 up, but for '"' and '\\'. Eight bytes at a
 * time (a word's bytes tested at once), then one at a time; the caller
 * looks at the byte it stops on. Strings of real messages are mostly such
 * bytes, and this is where encoding and decoding them spend their time. */
static inline const unsigned char *jr_skip_plain_ascii(const unsigned char *u,
                                                       const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - u >= 8) {
        uint64_t x, quote, slash;
        memcpy(&x, u, 8);
        quote = x ^ (ones * '"');
        slash = x ^ (ones * '\\');
        /* a byte with its high bit set, below 0x20, or equal to '"' or '\\' */
        if ((x | ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash))
            & highs)
            break;
        u += 8;
    }
    while (u < end && *u >= 0x20 && *u < 0x80 && *u != '"' && *u != '\\')
        u++;
    return u;
}

/* Length of the valid UTF-8 sequence starting at p (p < end), or 0. */
static inline size_t jr_utf8_seqlen(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;            /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0)
        n = 2;
    else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;        /* overlong */
        else if (c == 0xED) hi = 0x9F;   /* surrogates */
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0) lo = 0x90;        /* overlong */
        else if (c == 0xF4) hi = 0x8F;   /* above U+10FFFF */
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Writes code point cp (valid scalar value) as UTF-8; returns its length. */
static inline size_t jr_utf8_put(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
