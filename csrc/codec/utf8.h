/* Strict UTF-8 validation (Unicode 15, table 3-7): no overlong forms, no
 * UTF-16 surrogates, nothing above U+10FFFF. */
#ifndef JSONRPC_UTF8_H
#define JSONRPC_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The bytes a JSON string holds as they are and that need no UTF-8 check
 * are "plain": ASCII from 0x20 up, but for '"' and '\\'. Strings of real
 * messages are mostly such bytes, and this is where encoding and decoding
 * them spend their time, so they are tested eight at a time, in a word.
 *
 * jr_ascii_word: the (up to 8) bytes at u as a word; bytes past end are
 * 'a' (plain), so a string's tail is tested like the rest. */
#define JR_WORD_ONES 0x0101010101010101ull
#define JR_WORD_HIGHS 0x8080808080808080ull

static inline uint64_t jr_ascii_word(const unsigned char *u, const unsigned char *end)
{
    uint64_t x = JR_WORD_ONES * 'a';
    size_t n = end - u >= 8 ? 8 : (size_t)(end - u);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Built in registers: bytes stored one by one and read back as a word
     * stall the load (no store forwarding), and that was most of the time
     * spent on short strings. Overlapping loads cover the n bytes; byte i
     * goes to bits 8i. */
    uint32_t a, b;
    if (n == 8) {
        memcpy(&x, u, 8);
        return x;
    }
    if (n >= 4) {
        memcpy(&a, u, 4);
        memcpy(&b, u + n - 4, 4);
        x = (uint64_t)a | (uint64_t)b << (8 * (n - 4));
    } else if (n > 0) {
        x = (uint64_t)u[0] | (uint64_t)u[n / 2] << (8 * (n / 2)) | (uint64_t)u[n - 1] << (8 * (n - 1));
    } else {
        return x;
    }
    return x | (JR_WORD_ONES * 'a' & ~((1ull << (8 * n)) - 1));
#else
    memcpy(&x, u, n);
    return x;
#endif
}

/* A high bit set in the word's first byte that is not plain, and maybe in
 * bytes after it (a borrow can run on past the first); 0 if all are. */
static inline uint64_t jr_ascii_special(uint64_t x)
{
    uint64_t quote = x ^ (JR_WORD_ONES * '"'), slash = x ^ (JR_WORD_ONES * '\\');
    return (x | ((x - JR_WORD_ONES * 0x20) & ~x) | ((quote - JR_WORD_ONES) & ~quote)
            | ((slash - JR_WORD_ONES) & ~slash)) & JR_WORD_HIGHS;
}

/* The position in the word of the first byte jr_ascii_special flagged. */
static inline size_t jr_first_special(uint64_t mask)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (size_t)__builtin_clzll(mask) / 8;
#elif defined(__GNUC__)
    return (size_t)__builtin_ctzll(mask) / 8;
#else
    size_t i = 0;
    const unsigned char *b = (const unsigned char *)&mask;
    while (b[i] == 0)   /* the word's bytes in memory order */
        i++;
    return i;
#endif
}

/* Past the plain bytes from u (up to end); the caller looks at the byte it
 * stops on. */
static inline const unsigned char *jr_skip_plain_ascii(const unsigned char *u,
                                                       const unsigned char *end)
{
    uint64_t x, mask;
    while (end - u >= 8) {
        memcpy(&x, u, 8);
        if ((mask = jr_ascii_special(x)) != 0)
            return u + jr_first_special(mask);
        u += 8;
    }
    if (u == end)
        return u;
    mask = jr_ascii_special(jr_ascii_word(u, end));
    return mask != 0 ? u + jr_first_special(mask) : end;
}

/* Copies the plain bytes from *up to out, a word at a time, up to stop or
 * the first byte that is not plain; writes up to 8 bytes past what it
 * copies (the caller reserves them). Returns 1 when it stopped at such a
 * byte (*up points at it), 0 at stop; *outp moves past the copy. */
static inline int jr_copy_plain(const unsigned char **up, const unsigned char *stop,
                                unsigned char **outp)
{
    const unsigned char *u = *up;
    unsigned char *out = *outp;
    uint64_t x, mask = 0;
    size_t k;
    while (stop - u >= 8) {   /* whole words, the common case */
        memcpy(&x, u, 8);
        memcpy(out, &x, 8);
        if ((mask = jr_ascii_special(x)) != 0)
            break;
        u += 8;
        out += 8;
    }
    if (mask == 0 && u < stop) {   /* the tail: fewer than 8 bytes */
        x = jr_ascii_word(u, stop);
        memcpy(out, &x, 8);
        mask = jr_ascii_special(x);
    }
    k = mask != 0 ? jr_first_special(mask) : (size_t)(stop - u);
    *up = u + k;
    *outp = out + k;
    return mask != 0;
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
