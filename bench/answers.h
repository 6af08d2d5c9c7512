/* Reading JSON-RPC messages at their top level only, in one pass, for the
 * load generator and the floor: a response's id, result and error, or a
 * request's id, method and params, wherever "id" keys hide inside params
 * and results (an LSP
 * completion list has dozens). Values are skipped, not decoded: strings
 * with their escapes, containers with everything inside them. */
#ifndef JSONRPC_BENCH_ANSWERS_H
#define JSONRPC_BENCH_ANSWERS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One message object's top-level members (spans point into the text). */
typedef struct message {
    int has_id, id_is_integer;
    int64_t id;
    const char *id_text, *result, *error, *params, *method;
    size_t id_len, result_len, params_len, method_len;
} message;

static inline const char *json_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past the string at p (its opening quote); NULL when it does not end.
 * memchr finds each quote; one preceded by an odd run of backslashes is
 * escaped. */
static inline const char *json_skip_string(const char *p, const char *end)
{
    const char *q = p + 1;
    for (;;) {
        const char *b;
        q = (const char *)memchr(q, '"', (size_t)(end - q));
        if (q == NULL)
            return NULL;
        for (b = q; b > p + 1 && b[-1] == '\\'; b--)
            ;
        if ((q - b) % 2 == 0)
            return q + 1;
        q++;
    }
}

/* Past the value at p; NULL when it is cut short. */
static inline const char *json_skip_value(const char *p, const char *end)
{
    int depth = 0;
    if (p >= end)
        return NULL;
    if (*p == '"')
        return json_skip_string(p, end);
    if (*p != '[' && *p != '{') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n'
               && *p != '\r' && *p != '\t')
            p++;
        return p;
    }
    for (; p < end; p++) {
        if (*p == '"') {
            p = json_skip_string(p, end);
            if (p == NULL)
                return NULL;
            p--;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if ((*p == ']' || *p == '}') && --depth == 0) {
            return p + 1;
        }
    }
    return NULL;
}

static inline int json_key_is(const char *k, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(k, word, n) == 0;
}

/* An id that is a non-negative integer below 2^62, read from [p, end)
 * only (the text has no terminator): 1 and *id, else 0. */
static inline int json_read_id(const char *p, const char *end, int64_t *id)
{
    int64_t v = 0;
    if (p >= end)
        return 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_C(1) << 62) / 10)
            return 0;
        v = v * 10 + (*p - '0');
    }
    *id = v;
    return 1;
}

/* Reads the object at p into m; returns the end of it, or NULL when it is
 * not an object or is cut short. */
static inline const char *json_read_message(const char *p, const char *end, message *m)
{
    memset(m, 0, sizeof *m);
    p = json_space(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = json_space(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    while (p < end) {
        const char *k = p + 1, *ke, *v, *ve;
        if (*p != '"' || (ke = json_skip_string(p, end)) == NULL)
            return NULL;
        p = json_space(ke, end);
        if (p >= end || *p != ':')
            return NULL;
        v = json_space(p + 1, end);
        if ((ve = json_skip_value(v, end)) == NULL)
            return NULL;
        if (json_key_is(k, (size_t)(ke - 1 - k), "id")) {
            m->has_id = 1;
            m->id_text = v;
            m->id_len = (size_t)(ve - v);
            m->id_is_integer = json_read_id(v, ve, &m->id);
        } else if (json_key_is(k, (size_t)(ke - 1 - k), "result")) {
            m->result = v;
            m->result_len = (size_t)(ve - v);
        } else if (json_key_is(k, (size_t)(ke - 1 - k), "error")) {
            m->error = v;
        } else if (json_key_is(k, (size_t)(ke - 1 - k), "method") && *v == '"') {
            m->method = v + 1;
            m->method_len = (size_t)(ve - v) - 2;
        } else if (json_key_is(k, (size_t)(ke - 1 - k), "params")) {
            m->params = v;
            m->params_len = (size_t)(ve - v);
        }
        p = json_space(ve, end);
        if (p < end && *p == '}')
            return p + 1;
        if (p >= end || *p != ',')
            return NULL;
        p = json_space(p + 1, end);
    }
    return NULL;
}

/* Walks the messages of a text: one object, or an array of them. Calls
 * each(ud, &m) for every one; returns how many, or -1 when the text is
 * not that shape. */
static inline long json_each_message(const char *p, const char *end, void (*each)(void *, const message *),
                              void *ud)
{
    message m;
    long n = 0;
    p = json_space(p, end);
    if (p < end && *p == '{') {
        if (json_read_message(p, end, &m) == NULL)
            return -1;
        each(ud, &m);
        return 1;
    }
    if (p >= end || *p != '[')
        return -1;
    p = json_space(p + 1, end);
    if (p < end && *p == ']')
        return 0;
    while (p < end) {
        if ((p = json_read_message(p, end, &m)) == NULL)
            return -1;
        each(ud, &m);
        n++;
        p = json_space(p, end);
        if (p < end && *p == ']')
            return n;
        if (p >= end || *p != ',')
            return -1;
        p++;
    }
    return -1;
}

#endif
