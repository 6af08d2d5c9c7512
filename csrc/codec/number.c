#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "number.h"

#define TWO53 9007199254740992.0

/* Powers of ten that doubles hold exactly. */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};
#define POW10_MAX 22

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

static char locale_point(void)
{
    const char *dp = localeconv()->decimal_point;
    return (dp != NULL && dp[0] != '\0') ? dp[0] : '.';
}

/* strtod on a NUL-terminated copy of s[0..n), written in the C locale's
 * notation translated to the current locale's decimal point. */
static int slow_strtod(const char *s, size_t n, jr_buf *scratch, double *out)
{
    char point = locale_point();
    size_t i;
    char *copy;
    scratch->len = 0;
    if (jr_buf_reserve(scratch, n + 1) != 0)
        return -1;
    copy = scratch->data;
    memcpy(copy, s, n);
    copy[n] = '\0';
    if (point != '.')
        for (i = 0; i < n; i++)
            if (copy[i] == '.')
                copy[i] = point;
    *out = strtod(copy, NULL);
    return 0;
}

/* Digits of the significand, as many as fit exactly in 19 decimal places. */
typedef struct digits {
    uint64_t mant;
    int count;       /* significant digits kept in mant */
    int exp10;       /* value = mant * 10^exp10 (before the exponent part) */
    int truncated;   /* digits were dropped: only strtod can round it */
} digits;

static void add_digit(digits *d, int v, int in_fraction)
{
    if (d->count < 19) {
        d->mant = d->mant * 10 + (uint64_t)v;
        if (d->mant != 0)
            d->count++;
        if (in_fraction)
            d->exp10--;
    } else {
        d->truncated = 1;
        if (!in_fraction)
            d->exp10++;
    }
}

static const char *scan_exponent(const char *p, const char *end, long *exp, const char **why)
{
    int neg = 0;
    long e = 0;
    p++;   /* 'e' or 'E' */
    if (p < end && (*p == '+' || *p == '-'))
        neg = (*p++ == '-');
    if (p == end || !IS_DIGIT(*p)) {
        *why = "invalid number (exponent without digits)";
        return NULL;
    }
    for (; p < end && IS_DIGIT(*p); p++)
        if (e < 100000)   /* beyond this every double is 0 or inf anyway */
            e = e * 10 + (*p - '0');
    *exp = neg ? -e : e;
    return p;
}

static int to_integer(const digits *d, int neg, long long *out)
{
    if (d->truncated || d->exp10 != 0)
        return 0;
    if (!neg && d->mant <= (uint64_t)INT64_MAX) {
        *out = (long long)d->mant;
        return 1;
    }
    if (neg && d->mant <= (uint64_t)INT64_MAX + 1) {
        /* written so that -2^63 does not overflow */
        *out = d->mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)d->mant;
        return 1;
    }
    return 0;
}

/* Clinger's fast path: exact when the significand and the power of ten are
 * both exact doubles, since one IEEE operation rounds correctly. */
static int fast_double(const digits *d, long exp, double *out)
{
    double m;
    if (d->truncated)
        return 0;
    if (d->mant == 0) {
        *out = 0.0;
        return 1;
    }
    if (d->mant > (uint64_t)TWO53 || exp < -POW10_MAX || exp > POW10_MAX)
        return 0;
    m = (double)d->mant;
    *out = exp >= 0 ? m * pow10_exact[exp] : m / pow10_exact[-exp];
    return 1;
}

/* Most numbers in JSON-RPC are short integers (ids, counts, positions):
 * read in one loop. At most 15 digits, so exact as a double too; anything
 * longer, or with a fraction, an exponent or a leading zero, goes the
 * general way. p is past the sign. */
static int short_integer(const char *p, const char *end, int neg, int want_integers,
                         jr_number *out, const char **next)
{
    const char *start = p;
    long long v = 0;
    if (p == end || !IS_DIGIT(*p) || (*p == '0' && p + 1 < end && IS_DIGIT(p[1])))
        return 0;
    while (p < end && IS_DIGIT(*p) && p - start < 16)
        v = v * 10 + (*p++ - '0');
    if (p - start > 15 || (p < end && (IS_DIGIT(*p) || *p == '.' || *p == 'e' || *p == 'E')))
        return 0;
    out->is_integer = want_integers;
    if (want_integers) {
        out->i = neg ? -v : v;
        out->d = (double)out->i;
    } else {
        out->d = neg ? -(double)v : (double)v;
    }
    *next = p;
    return 1;
}

const char *jr_parse_number(const char *p, const char *end, int want_integers,
                            jr_buf *scratch, jr_number *out, const char **why)
{
    const char *start = p;
    digits d = {0, 0, 0, 0};
    long exp = 0;
    int neg = 0, is_int = 1;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (short_integer(p, end, neg, want_integers, out, &p))
        return p;
    if (p == end || !IS_DIGIT(*p)) {
        *why = "invalid number";
        return NULL;
    }
    if (*p == '0') {
        p++;
        if (p < end && IS_DIGIT(*p)) {
            *why = "invalid number (leading zero)";
            return NULL;
        }
    } else {
        for (; p < end && IS_DIGIT(*p); p++)
            add_digit(&d, *p - '0', 0);
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p == end || !IS_DIGIT(*p)) {
            *why = "invalid number (no digits after '.')";
            return NULL;
        }
        for (; p < end && IS_DIGIT(*p); p++)
            add_digit(&d, *p - '0', 1);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p = scan_exponent(p, end, &exp, why);
        if (p == NULL)
            return NULL;
    }

    out->is_integer = 0;
    if (is_int && want_integers && to_integer(&d, neg, &out->i)) {
        out->is_integer = 1;
        out->d = (double)out->i;
        return p;
    }
    if (is_int && !d.truncated && d.exp10 == 0) {
        out->d = (double)d.mant;   /* the conversion rounds correctly */
    } else if (!fast_double(&d, d.exp10 + exp, &out->d)) {
        if (slow_strtod(start, (size_t)(p - start), scratch, &out->d) != 0) {
            *why = "out of memory";
            return NULL;
        }
        return p;   /* strtod saw the sign itself */
    }
    if (neg)
        out->d = -out->d;
    return p;
}

size_t jr_format_integer(char *out, long long v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = tmp[--n];
    return len;
}

/* Writes m (< 2^53) with a decimal point `frac` digits from the right. */
static size_t put_scaled(char *out, uint64_t m, int frac)
{
    char digs[24];
    int n = 0, i;
    size_t len = 0;
    do {
        digs[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m != 0);
    if (n <= frac) {            /* 0.00ddd */
        out[len++] = '0';
        out[len++] = '.';
        for (i = n; i < frac; i++)
            out[len++] = '0';
        frac = n;
    }
    for (i = n - 1; i >= 0; i--) {
        out[len++] = digs[i];
        if (i == frac && i != 0)
            out[len++] = '.';
    }
    return len;
}

/* The smallest number of fraction digits k for which a k-digit decimal reads
 * back as a; writes it. Covers the ordinary numbers (magnitude 1e-5..1e15,
 * up to 15 significant digits) without printf. Returns 0 when it can't. */
static size_t format_scaled(char *out, double a)
{
    int k;
    if (!(a >= 1e-5 && a < 1e15))
        return 0;
    for (k = 0; k <= 17; k++) {
        double m = a * pow10_exact[k], r;
        int j;
        if (m >= TWO53)
            return 0;
        r = floor(m + 0.5);
        for (j = 0; j < 3; j++) {
            /* the product may round to a neighbour of the right digits */
            double c = r + (j == 1 ? -1.0 : j == 2 ? 1.0 : 0.0);
            if (c > 0 && c / pow10_exact[k] == a)
                return put_scaled(out, (uint64_t)c, k);
        }
    }
    return 0;
}

/* printf with growing precision until the text reads back exactly. */
static size_t format_printf(char *out, double d)
{
    char point = locale_point();
    int prec, n = 0;
    size_t i;
    /* A normal double has over 15 significant digits, so a 15-digit form
     * that reads back is also the shortest; subnormals have fewer. */
    for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(out, JR_NUMBUF, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            break;
    }
    for (i = 0; i < (size_t)n; i++)
        if (out[i] == point)
            out[i] = '.';
    return (size_t)n;
}

size_t jr_format_double(char *out, double d, int mark_float)
{
    size_t len = 0, n;
    double a = fabs(d);
    if (d == 0.0) {
        if (signbit(d))
            out[len++] = '-';
        out[len++] = '0';
    } else if (!mark_float && a < TWO53 && a == floor(a)) {
        len = jr_format_integer(out, (long long)d);
    } else {
        if (d < 0)
            out[len++] = '-';
        n = format_scaled(out + len, a);
        len = n ? len + n : format_printf(out, d);
    }
    if (mark_float) {   /* integral values read back as floats with ".0" */
        size_t i;
        int plain = 1;
        for (i = 0; i < len; i++)
            if (out[i] == '.' || out[i] == 'e' || out[i] == 'E')
                plain = 0;
        if (plain) {
            out[len++] = '.';
            out[len++] = '0';
        }
    }
    return len;
}
