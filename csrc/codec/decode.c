/* JSON text -> Lua values, in one pass straight onto the Lua stack; or, with
 * build off, the same grammar checked without building anything. */
#include <stdio.h>
#include "decoder.h"
#include "number.h"
#include "utf8.h"

typedef jr_decoder decoder;

/* Byte classes inside a string: what stops the plain-byte scan. */
enum { C_PLAIN = 0, C_QUOTE, C_ESCAPE, C_CONTROL, C_HIGH };
static const unsigned char string_class[256] = {
    [0x00 ... 0x1F] = C_CONTROL,
    ['"'] = C_QUOTE,
    ['\\'] = C_ESCAPE,
    [0x80 ... 0xFF] = C_HIGH,
};

int jr_decoder_fail(decoder *d, const char *p, const char *msg)
{
    snprintf(d->err, JR_ERRLEN, "%s at byte %lu", msg, (unsigned long)(p - d->start) + 1);
    return -1;
}

static int fail_char(decoder *d, const char *p, const char *what)
{
    char msg[80];
    unsigned char c;
    if (p >= d->end)
        return jr_decoder_fail(d, p, "unexpected end of input");
    c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7F)
        snprintf(msg, sizeof msg, "%s, found '%c'", what, c);
    else
        snprintf(msg, sizeof msg, "%s, found byte 0x%02X", what, c);
    return jr_decoder_fail(d, p, msg);
}

void jr_decoder_space(decoder *d)
{
    const char *p = d->p;
    while (p < d->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    d->p = p;
}

static int hex4(const char *p, unsigned long *out)
{
    unsigned long v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], x;
        if (c >= '0' && c <= '9') x = c - '0';
        else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') x = c - 'A' + 10;
        else return -1;
        v = v << 4 | (unsigned long)x;
    }
    *out = v;
    return 0;
}

/* \uXXXX (and its low surrogate partner): the code point, or -1. */
static int unicode_escape(decoder *d, const char *p, unsigned long *cp, const char **next)
{
    unsigned long lo;
    if (d->end - p < 6 || hex4(p + 2, cp) != 0)
        return jr_decoder_fail(d, p, "invalid \\u escape");
    p += 6;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return jr_decoder_fail(d, p - 6, "lone low surrogate in \\u escape");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        if (d->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0
            || lo < 0xDC00 || lo > 0xDFFF)
            return jr_decoder_fail(d, p - 6, "lone high surrogate in \\u escape");
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    *next = p;
    return 0;
}

/* One escape sequence at p (p[0] == '\\') written at out (at most 4
 * bytes, never more than the sequence's own length): its length, or -1. */
static int unescape(decoder *d, const char *p, const char **next, char *out)
{
    unsigned long cp;
    if (p + 1 >= d->end)
        return jr_decoder_fail(d, p, "unterminated string");
    *next = p + 2;
    switch (p[1]) {
    case '"': *out = '"'; return 1;
    case '\\': *out = '\\'; return 1;
    case '/': *out = '/'; return 1;
    case 'b': *out = '\b'; return 1;
    case 'f': *out = '\f'; return 1;
    case 'n': *out = '\n'; return 1;
    case 'r': *out = '\r'; return 1;
    case 't': *out = '\t'; return 1;
    case 'u':
        if (unicode_escape(d, p, &cp, next) != 0)
            return -1;
        return (int)jr_utf8_put(out, cp);
    default:
        return fail_char(d, p + 1, "invalid escape");
    }
}

/* Scans plain bytes from p, validating UTF-8; stops at a quote, a backslash,
 * a control character or the end. Returns where it stopped, NULL on error. */
static const char *scan_plain(decoder *d, const char *p)
{
    const unsigned char *u = (const unsigned char *)p, *end = (const unsigned char *)d->end;
    for (;;) {
        u = jr_skip_plain_ascii(u, end);
        if (u < end && string_class[*u] == C_HIGH) {
            size_t n = jr_utf8_seqlen(u, end);
            if (n == 0) {
                jr_decoder_fail(d, (const char *)u, "invalid UTF-8 in string");
                return NULL;
            }
            u += n;
            continue;
        }
        return (const char *)u;
    }
}

/* Strings with escapes: unescaped into the scratch buffer, in room
 * reserved a chunk of input at a time (the unescaped text is never longer
 * than its source), plain bytes copied a word at a time. */
#define UNESCAPE_CHUNK 4096
#define UNESCAPE_SLACK 32   /* a word written past the end; a sequence past stop */

/* Unescapes from *up up to stop (a sequence may run past it) into out.
 * Returns the end of the output; *up is where the input stopped, at the
 * closing quote when *done. NULL on an error. */
static unsigned char *unescape_chunk(decoder *d, const unsigned char **up,
                                     const unsigned char *stop, unsigned char *out, int *done)
{
    const unsigned char *u = *up, *end = (const unsigned char *)d->end;
    while (u < stop) {
        size_t k;
        int len;
        const char *next;
        if (!jr_copy_plain(&u, stop, &out))
            break;
        switch (string_class[*u]) {
        case C_QUOTE:
            *up = u;
            *done = 1;
            return out;
        case C_ESCAPE:
            if ((len = unescape(d, (const char *)u, &next, (char *)out)) < 0)
                return NULL;
            u = (const unsigned char *)next;
            out += len;
            break;
        case C_HIGH:
            if ((k = jr_utf8_seqlen(u, end)) == 0) {
                jr_decoder_fail(d, (const char *)u, "invalid UTF-8 in string");
                return NULL;
            }
            memcpy(out, u, k);
            u += k;
            out += k;
            break;
        default:
            jr_decoder_fail(d, (const char *)u, "control character in string (must be escaped)");
            return NULL;
        }
    }
    *up = u;
    return out;
}

static int read_escaped(decoder *d, const char *from, const char *p, const char **s, size_t *n)
{
    jr_buf *b = d->scratch;
    const unsigned char *u = (const unsigned char *)p, *end = (const unsigned char *)d->end;
    int done = 0;
    b->len = 0;
    if (jr_buf_add(b, from, (size_t)(p - from)) != 0)
        return jr_decoder_fail(d, p, "out of memory");
    while (u < end) {
        const unsigned char *stop = end - u > UNESCAPE_CHUNK ? u + UNESCAPE_CHUNK : end;
        unsigned char *out;
        if (jr_buf_reserve(b, (size_t)(stop - u) + UNESCAPE_SLACK) != 0)
            return jr_decoder_fail(d, (const char *)u, "out of memory");
        out = unescape_chunk(d, &u, stop, (unsigned char *)b->data + b->len, &done);
        if (out == NULL)
            return -1;
        b->len = (size_t)((char *)out - b->data);
        if (done) {
            *s = b->data;
            *n = b->len;
            d->p = (const char *)u + 1;
            return 0;
        }
    }
    return jr_decoder_fail(d, from - 1, "unterminated string");
}

int jr_decoder_string(decoder *d, const char **s, size_t *n)
{
    const char *from = d->p + 1, *q = scan_plain(d, from);
    if (q == NULL)
        return -1;
    if (q >= d->end)
        return jr_decoder_fail(d, d->p, "unterminated string");
    if (*q == '"') {   /* the common case: no escapes, no copy */
        *s = from;
        *n = (size_t)(q - from);
        d->p = q + 1;
        return 0;
    }
    if (*q == '\\')
        return read_escaped(d, from, q, s, n);
    return jr_decoder_fail(d, q, "control character in string (must be escaped)");
}

static int decode_string(decoder *d)
{
    const char *s;
    size_t n;
    if (jr_decoder_string(d, &s, &n) != 0)
        return -1;
    if (d->build)
        lua_pushlstring(d->L, s, n);
    return 0;
}

static int decode_number(decoder *d)
{
    jr_number n;
    const char *why = NULL;
    const char *q = jr_parse_number(d->p, d->end, JR_HAVE_INTEGERS, d->scratch, &n, &why);
    if (q == NULL)
        return jr_decoder_fail(d, d->p, why);
    d->p = q;
    if (!d->build)
        return 0;
#if JR_HAVE_INTEGERS
    if (n.is_integer)
        lua_pushinteger(d->L, (lua_Integer)n.i);
    else
#endif
        lua_pushnumber(d->L, (lua_Number)n.d);
    return 0;
}

/* true, false, null: kind 1, 0 or -1 */
static int decode_literal(decoder *d, const char *word, size_t n, int kind)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return fail_char(d, d->p, "expected a value");
    d->p += n;
    if (d->build) {
        if (kind >= 0)
            lua_pushboolean(d->L, kind);
        else if (d->null_value != 0)
            lua_pushvalue(d->L, d->null_value);
        else
            lua_pushlightuserdata(d->L, NULL);
    }
    return 0;
}

void jr_decoder_null(decoder *d, int idx)
{
    d->null_value = idx == 0 ? 0 : jr_absindex(d->L, idx);
}
#define decode_value jr_decoder_value

/* Enters the container at d->p: the depth limit, the opener consumed. */
static int enter(decoder *d)
{
    if (++d->depth > d->max_depth) {
        char msg[64];
        snprintf(msg, sizeof msg, "nesting deeper than max_depth (%d)", d->max_depth);
        return jr_decoder_fail(d, d->p, msg);
    }
    d->p++;
    jr_decoder_space(d);
    return 0;
}

/* Consumes the closer of a container, if it is next: 1 when closed. */
static int close_empty(decoder *d, char closer)
{
    if (d->p < d->end && *d->p == closer) {
        d->p++;
        d->depth--;
        return 1;
    }
    return 0;
}

/* After a member: 1 if another follows (',' consumed), 0 at the closer. */
static int next_member(decoder *d, char closer, const char *what)
{
    jr_decoder_space(d);
    if (d->p < d->end && *d->p == ',') {
        d->p++;
        jr_decoder_space(d);
        return 1;
    }
    if (close_empty(d, closer))
        return 0;
    fail_char(d, d->p, what);
    return -1;
}

int jr_decoder_array(decoder *d, jr_element_fn each, void *ud)
{
    int more;
    if (enter(d) != 0)
        return -1;
    if (close_empty(d, ']'))
        return 0;
    do {
        if (each(d, ud) != 0)
            return -1;
        more = next_member(d, ']', "expected ',' or ']' in array");
    } while (more == 1);
    return more;
}

int jr_decoder_object(decoder *d, jr_member_fn each, void *ud)
{
    int more;
    if (enter(d) != 0)
        return -1;
    if (close_empty(d, '}'))
        return 0;
    do {
        const char *k;
        size_t n;
        if (d->p >= d->end || *d->p != '"')
            return fail_char(d, d->p, "expected a string key in object");
        if (jr_decoder_string(d, &k, &n) != 0)
            return -1;
        if (jr_decoder_expect(d, ':', "expected ':' after object key") != 0)
            return -1;
        jr_decoder_space(d);
        if (each(d, ud, k, n) != 0)
            return -1;
        more = next_member(d, '}', "expected ',' or '}' in object");
    } while (more == 1);
    return more;
}

/* Building a container: its values are first staged on the Lua stack, so
 * that its table is made once at its final size (no rehash as it grows,
 * which costs more than the decoding). A container with more than
 * STAGE_MAX values, or one opened while the containers around it already
 * stage STAGE_TOTAL slots, gets its table then and fills it directly. */
#define STAGE_MAX 64
#define STAGE_TOTAL 512

typedef struct filling {
    int base;          /* the stack top before the container's values */
    int table;         /* the stack index of its table once made, else 0 */
    int mt;            /* its kind's metatable */
    int per_value;     /* stack slots a value takes: 1, or 2 for a member */
    lua_Integer count; /* values so far */
} filling;

/* The container's slot is held by a nil until its table is made there, so
 * that the staged values above it need not move. */
static int filling_start(decoder *d, filling *f, int mt, int per_value)
{
    if (!lua_checkstack(d->L, 4))
        return jr_decoder_fail(d, d->p, "Lua stack exhausted");
    lua_pushnil(d->L);
    f->base = lua_gettop(d->L) - 1;
    f->table = 0;
    f->mt = mt;
    f->per_value = per_value;
    f->count = 0;
    return 0;
}

/* The table, made in the slot under the staged values, with room for n. */
static void make_table(decoder *d, filling *f, int n)
{
    lua_State *L = d->L;
    if (f->per_value == 1)
        lua_createtable(L, n, 0);
    else
        lua_createtable(L, 0, n);
    lua_pushvalue(L, f->mt);
    lua_setmetatable(L, -2);
    lua_replace(L, f->base + 1);
    f->table = f->base + 1;
}

/* Moves the staged values into the table: elements from the top down
 * (each rawseti pops one), members in order (a repeated key: the last
 * wins, as when filled directly). */
static void unstage(decoder *d, filling *f)
{
    lua_State *L = d->L;
    int t = f->table, i, n = (int)f->count;
    if (f->per_value == 1) {
        for (i = n; i >= 1; i--)
            lua_rawseti(L, t, i);
    } else {
        for (i = 0; i < n; i++) {
            lua_pushvalue(L, t + 1 + 2 * i);
            lua_pushvalue(L, t + 2 + 2 * i);
            lua_rawset(L, t);
        }
        lua_settop(L, t);
    }
    d->staged -= n * f->per_value;
}

/* Before a value is read: room on the stack for it (and its key). */
static int filling_room(decoder *d)
{
    if (!lua_checkstack(d->L, 6))
        return jr_decoder_fail(d, d->p, "Lua stack exhausted");
    return 0;
}

/* After a value (and its key) was pushed. */
static void filling_add(decoder *d, filling *f)
{
    lua_State *L = d->L;
    f->count++;
    if (f->table != 0) {   /* filled directly */
        if (f->per_value == 1)
            lua_rawseti(L, f->table, f->count);
        else
            lua_rawset(L, f->table);
        return;
    }
    d->staged += f->per_value;
    if (f->count >= STAGE_MAX || d->staged >= STAGE_TOTAL) {
        make_table(d, f, (int)f->count * 2);
        unstage(d, f);
    }
}

/* The container is complete: its table, if not made yet, at its size. */
static void filling_end(decoder *d, filling *f)
{
    if (f->table == 0) {
        make_table(d, f, (int)f->count);
        unstage(d, f);
    }
}

static int add_element(decoder *d, void *ud)
{
    filling *f = (filling *)ud;
    if (!d->build)
        return decode_value(d);
    if (filling_room(d) != 0 || decode_value(d) != 0)
        return -1;
    filling_add(d, f);
    return 0;
}

static int add_member(decoder *d, void *ud, const char *k, size_t n)
{
    filling *f = (filling *)ud;
    if (!d->build)
        return decode_value(d);
    if (filling_room(d) != 0)
        return -1;
    lua_pushlstring(d->L, k, n);
    if (decode_value(d) != 0)
        return -1;
    filling_add(d, f);
    return 0;
}

static int decode_array(decoder *d)
{
    filling f;
    if (d->build && filling_start(d, &f, d->mt_array, 1) != 0)
        return -1;
    if (jr_decoder_array(d, add_element, &f) != 0)
        return -1;
    if (d->build)
        filling_end(d, &f);
    return 0;
}

static int decode_object(decoder *d)
{
    filling f;
    if (d->build && filling_start(d, &f, d->mt_object, 2) != 0)
        return -1;
    if (jr_decoder_object(d, add_member, &f) != 0)
        return -1;
    if (d->build)
        filling_end(d, &f);
    return 0;
}

int jr_decoder_expect(decoder *d, char c, const char *what)
{
    jr_decoder_space(d);
    if (d->p >= d->end || *d->p != c)
        return fail_char(d, d->p, what);
    d->p++;
    return 0;
}

/* Past the budget: refused before another table is built. */
static int over_budget(decoder *d)
{
    char msg[80];
    snprintf(msg, sizeof msg, "more than %lu values (max_values)", (unsigned long)d->max_values);
    d->over_budget = 1;
    return jr_decoder_fail(d, d->p, msg);
}

void jr_decoder_budget(decoder *d, size_t max_values)
{
    d->budget = d->max_values = max_values;
}

int jr_decoder_value(decoder *d)
{
    if (d->p >= d->end)
        return jr_decoder_fail(d, d->p, "unexpected end of input");
    {
        /* a table costs about four times what a number or a short string
         * does: arrays and objects count 4 against the budget */
        size_t cost = (*d->p == '[' || *d->p == '{') ? JR_TABLE_COST : 1;
        d->values += cost;
        if (d->build) {
            if (d->budget < cost)
                return over_budget(d);
            d->budget -= cost;
        }
    }
    switch (*d->p) {
    case '"': return decode_string(d);
    case '{': return decode_object(d);
    case '[': return decode_array(d);
    case 't': return decode_literal(d, "true", 4, 1);
    case 'f': return decode_literal(d, "false", 5, 0);
    case 'n': return decode_literal(d, "null", 4, -1);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return decode_number(d);
    default:
        return fail_char(d, d->p, "expected a value");
    }
}

void jr_decoder_init(decoder *d, lua_State *L, const char *s, size_t n, int max_depth,
                     int mt_array, int mt_object, jr_buf *scratch, char err[JR_ERRLEN])
{
    d->L = L;
    d->start = d->p = s;
    d->end = s + n;
    d->depth = 0;
    d->max_depth = max_depth;
    d->mt_array = jr_absindex(L, mt_array);
    d->mt_object = jr_absindex(L, mt_object);
    d->build = 1;
    d->budget = d->max_values = JR_NO_BUDGET;
    d->values = 0;
    d->over_budget = 0;
    d->staged = 0;
    d->null_value = 0;
    d->scratch = scratch;
    d->err = err;
}

int jr_decode(lua_State *L, const char *s, size_t n, const jr_codec_limits *lim,
              int mt_array, int mt_object, jr_buf *scratch, char err[JR_ERRLEN])
{
    decoder d;
    int top = lua_gettop(L);
    if (n > lim->max_size) {
        snprintf(err, JR_ERRLEN, "document of %lu bytes exceeds max_size (%lu)",
                 (unsigned long)n, (unsigned long)lim->max_size);
        return -1;
    }
    jr_decoder_init(&d, L, s, n, lim->max_depth, mt_array, mt_object, scratch, err);
    jr_decoder_budget(&d, lim->max_values);
    jr_decoder_null(&d, lim->null_value);
    jr_decoder_space(&d);
    if (jr_decoder_value(&d) == 0) {
        jr_decoder_space(&d);
        if (d.p == d.end)
            return 0;
        fail_char(&d, d.p, "unexpected data after the JSON value");
    }
    lua_settop(L, top);
    return -1;
}
