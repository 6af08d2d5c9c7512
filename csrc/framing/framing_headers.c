/* The content-length header block: "Name: value" lines, names compared
 * without regard to case. Content-Length gives the body's length in bytes;
 * Content-Type is checked only for its charset parameter (JSON-RPC bodies are
 * UTF-8; a peer announcing anything else would be misread); every other
 * header is ignored, as vscode-jsonrpc and vs-streamjsonrpc do. */
#include <stdio.h>
#include "framing.h"

#define CHARSET_MAX 40

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of s[0..n) with the lowercase literal lit. */
static int ieq(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || lower(s[i]) != lit[i])
            return 0;
    return lit[n] == '\0';
}

/* Narrows [*s, *e) to exclude spaces and tabs at both ends. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

void jr_framing_quote(char out[40], const char *s, size_t n)
{
    size_t i, m = n > 32 ? 32 : n;
    for (i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (m < n) {
        memcpy(out + m, "...", 3);
        m += 3;
    }
    out[m] = '\0';
}

static int parse_length(const char *s, const char *e, unsigned long long *len,
                        char err[JR_FRAMER_ERRLEN])
{
    unsigned long long v = 0;
    const char *p;
    char q[40];
    if (s == e) {
        snprintf(err, JR_FRAMER_ERRLEN, "content-length: empty Content-Length value");
        return -1;
    }
    for (p = s; p < e; p++) {
        unsigned d = (unsigned)(unsigned char)*p - '0';
        if (d > 9 || v > (~0ull - d) / 10)
            break;
        v = v * 10 + d;
    }
    if (p == e) {
        *len = v;
        return 0;
    }
    /* Signs, spaces inside, anything but digits: vscode-jsonrpc's parseInt
     * would read a prefix; a wrong length is worse than none. */
    jr_framing_quote(q, s, (size_t)(e - s));
    if ((unsigned)(unsigned char)*p - '0' > 9)
        snprintf(err, JR_FRAMER_ERRLEN, "content-length: invalid Content-Length value '%s'", q);
    else
        snprintf(err, JR_FRAMER_ERRLEN, "content-length: Content-Length value '%s' out of range", q);
    return -1;
}

/* The value of a parameter, unquoted (RFC 9110 quoted-string) if quoted,
 * into out (truncated past CHARSET_MAX - 1 bytes; a charset that long is
 * unsupported anyway). Returns where the parameter ends. */
static const char *param_value(const char *p, const char *e, char out[CHARSET_MAX])
{
    size_t n = 0;
    if (p < e && *p == '"') {
        for (p++; p < e && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < e)
                p++;
            if (n < CHARSET_MAX - 1)
                out[n++] = *p;
        }
        if (p < e)
            p++; /* the closing quote */
        while (p < e && *p != ';')
            p++;
    } else {
        const char *s = p, *t;
        while (p < e && *p != ';')
            p++;
        t = p;
        trim(&s, &t);
        for (; s < t && n < CHARSET_MAX - 1; s++)
            out[n++] = *s;
    }
    out[n] = '\0';
    return p;
}

/* Content-Type: "type/subtype; name=value; ..."; only charset matters. */
static int check_content_type(const char *p, const char *e, char err[JR_FRAMER_ERRLEN])
{
    while (p < e && *p != ';')
        p++; /* the media type */
    while (p < e) {
        const char *name, *name_end;
        char value[CHARSET_MAX], q[40];
        p++; /* the ';' */
        name = p;
        while (p < e && *p != '=' && *p != ';')
            p++;
        name_end = p;
        trim(&name, &name_end);
        if (p == e || *p == ';')
            continue; /* a parameter without a value: nothing to check */
        p++; /* the '=' */
        while (p < e && is_space(*p))
            p++;
        p = param_value(p, e, value);
        if (!ieq(name, (size_t)(name_end - name), "charset"))
            continue;
        if (ieq(value, strlen(value), "utf-8") || ieq(value, strlen(value), "utf8"))
            continue;
        jr_framing_quote(q, value, strlen(value));
        snprintf(err, JR_FRAMER_ERRLEN, "content-length: unsupported charset '%s'", q);
        return -1;
    }
    return 0;
}

/* One "Name: value" line (without its CRLF). */
static int header_line(const char *s, const char *e, int *have, unsigned long long *len,
                       char err[JR_FRAMER_ERRLEN])
{
    const char *colon = (const char *)memchr(s, ':', (size_t)(e - s));
    const char *name = s, *name_end, *value, *value_end = e;
    unsigned long long v;
    char q[40];
    if (colon == NULL) {
        jr_framing_quote(q, s, (size_t)(e - s));
        snprintf(err, JR_FRAMER_ERRLEN, "content-length: header line without ':' ('%s')", q);
        return -1;
    }
    name_end = colon;
    value = colon + 1;
    trim(&name, &name_end);
    trim(&value, &value_end);
    if (ieq(name, (size_t)(name_end - name), "content-type"))
        return check_content_type(value, value_end, err);
    if (!ieq(name, (size_t)(name_end - name), "content-length"))
        return 0;
    if (parse_length(value, value_end, &v, err) != 0)
        return -1;
    if (*have && v != *len) {
        snprintf(err, JR_FRAMER_ERRLEN,
                 "content-length: conflicting Content-Length headers (%llu and %llu)", *len, v);
        return -1;
    }
    *have = 1;
    *len = v;
    return 0;
}

int jr_content_length_headers(const char *p, size_t n, unsigned long long *len,
                              char err[JR_FRAMER_ERRLEN])
{
    const char *e = p + n, *line = p, *q = p;
    int have = 0;
    /* Lines end in CRLF; a lone LF or CR is part of its line, as framing.c
     * decided when it found the block's end. */
    while (q < e) {
        const char *nl = (const char *)memchr(q, '\n', (size_t)(e - q));
        if (nl == NULL)
            break; /* cannot happen: the block ends in CRLF */
        q = nl + 1;
        if (nl > line && nl[-1] == '\r') {
            if (header_line(line, nl - 1, &have, len, err) != 0)
                return -1;
            line = q;
        }
    }
    if (!have) {
        snprintf(err, JR_FRAMER_ERRLEN, "content-length: missing Content-Length header");
        return -1;
    }
    return 0;
}
