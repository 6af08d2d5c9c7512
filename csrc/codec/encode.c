/* Lua values -> JSON text, appended to a jr_buf.
 *
 * A table is an array when marked with jsonrpc.array or when its keys are
 * exactly 1..n; an object when marked with jsonrpc.object or when every key
 * is a string. Anything else is an error naming the key: no value is ever
 * dropped or padded with null. An unmarked empty table is an object, as in
 * cjson. The markers of Neovim and lua-cjson count too (markers.h). */
#include <math.h>
#include <stdio.h>
#include "codec.h"
#include "markers.h"
#include "number.h"
#include "utf8.h"

#define PATH_MAX_LEN 90   /* innermost part of the path kept in errors */

typedef struct encoder {
    lua_State *L;
    jr_buf *b;
    int depth, max_depth;
    int mt_array, mt_object;
    int root;                       /* stack index of the value encoded */
    char *err;
    char path[PATH_MAX_LEN];        /* filled from the right while unwinding */
    size_t path_at;
    int path_cut;                   /* outer segments did not fit */
} encoder;

enum { K_PLAIN, K_ARRAY, K_OBJECT, K_EMPTY_ARRAY };

static int oom(encoder *e)
{
    snprintf(e->err, JR_ERRLEN, "out of memory");
    return -1;
}

static int fail(encoder *e, const char *msg)
{
    snprintf(e->err, JR_ERRLEN, "%s", msg);
    return -1;
}

/* Prepends a path segment while an error unwinds through a container. */
static void path_prepend(encoder *e, const char *seg, size_t n)
{
    if (n > e->path_at) {
        e->path_cut = 1;
        return;
    }
    if (!e->path_cut) {
        e->path_at -= n;
        memcpy(e->path + e->path_at, seg, n);
    }
}

static void path_index(encoder *e, lua_Integer i)
{
    char seg[32];
    int n = snprintf(seg, sizeof seg, "[%lld]", (long long)i);
    path_prepend(e, seg, (size_t)n);
}

static void path_key(encoder *e, int key)
{
    char seg[80];
    size_t len;
    const char *s = lua_tolstring(e->L, key, &len);
    int n = snprintf(seg, sizeof seg, "[\"%.*s%s\"]", len > 40 ? 40 : (int)len, s,
                     len > 40 ? "..." : "");
    path_prepend(e, seg, (size_t)n);
}

/* A key described for an error message, without converting it in place
 * (lua_tolstring on a number key would confuse lua_next). */
static void describe_key(lua_State *L, int idx, char *out, size_t size)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        snprintf(out, size, "\"%.*s%s\"", len > 40 ? 40 : (int)len, s, len > 40 ? "..." : "");
        break;
    }
    case LUA_TNUMBER:
#if JR_HAVE_INTEGERS
        if (lua_isinteger(L, idx)) {
            snprintf(out, size, "%lld", (long long)lua_tointeger(L, idx));
            break;
        }
#endif
        snprintf(out, size, "%.17g", (double)lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(out, size, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        snprintf(out, size, "of type %s", luaL_typename(L, idx));
    }
}

static int fail_key(encoder *e, const char *fmt, int key)
{
    char k[64], msg[JR_ERRLEN];
    describe_key(e->L, key, k, sizeof k);
    snprintf(msg, sizeof msg, fmt, k);
    return fail(e, msg);
}

/* The array index a key stands for, or 0 when it is not a positive integer. */
static lua_Integer key_index(lua_State *L, int idx)
{
#if JR_HAVE_INTEGERS
    if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        return i > 0 ? i : 0;
    }
    return 0;
#else
    lua_Number n;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    n = lua_tonumber(L, idx);
    return (n >= 1 && n <= 9007199254740992.0 && n == floor(n)) ? (lua_Integer)n : 0;
#endif
}

static int encode_value(encoder *e, int idx);

/* One byte that JSON requires escaped, written at out: its length. */
static size_t put_escape(unsigned char *out, unsigned c)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    switch (c) {
    case '"': out[1] = '"'; return 2;
    case '\\': out[1] = '\\'; return 2;
    case '\b': out[1] = 'b'; return 2;
    case '\f': out[1] = 'f'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default:
        memcpy(out + 1, "u00", 3);
        out[4] = (unsigned char)hex[c >> 4];
        out[5] = (unsigned char)hex[c & 15];
        return 6;
    }
}

/* Input bytes escaped between two reservations: room for six output bytes
 * each is reserved, so the loop writes without checks, yet a long string
 * reserves little more than its length. */
#define STRING_CHUNK 4096
#define STRING_SLACK 16   /* a word written past the end, a UTF-8 tail */

/* Escapes [*up, stop) to out (a sequence may run past stop, up to end).
 * Each word of input is copied as it is, and the output moves on over its
 * plain bytes. Returns the end of the output, or NULL at invalid UTF-8
 * (*up then points at it). */
static unsigned char *escape_chunk(const unsigned char **up, const unsigned char *stop,
                                   const unsigned char *end, unsigned char *out)
{
    const unsigned char *u = *up;
    while (u < stop) {
        size_t k;
        if (!jr_copy_plain(&u, stop, &out))
            break;
        if (*u >= 0x80) {   /* UTF-8: checked, copied */
            k = jr_utf8_seqlen(u, end);
            if (k == 0) {
                *up = u;
                return NULL;
            }
            memcpy(out, u, k);
            u += k;
            out += k;
        } else {
            out += put_escape(out, *u++);
        }
    }
    *up = u;
    return out;
}

static int encode_string(encoder *e, const char *s, size_t n)
{
    jr_buf *b = e->b;
    const unsigned char *u = (const unsigned char *)s, *end = u + n;
    if (jr_buf_addc(b, '"') != 0)
        return oom(e);
    while (u < end) {
        const unsigned char *stop = end - u > STRING_CHUNK ? u + STRING_CHUNK : end;
        unsigned char *out;
        if (jr_buf_reserve(b, 6 * (size_t)(stop - u) + STRING_SLACK) != 0)
            return oom(e);
        out = escape_chunk(&u, stop, end, (unsigned char *)b->data + b->len);
        if (out == NULL) {
            char msg[64];
            snprintf(msg, sizeof msg, "string is not valid UTF-8 (byte %lu)",
                     (unsigned long)(u - (const unsigned char *)s) + 1);
            return fail(e, msg);
        }
        b->len = (size_t)((char *)out - b->data);
    }
    if (jr_buf_addc(b, '"') != 0)
        return oom(e);
    return 0;
}

/* Numbers are formatted straight into the output, in room reserved for
 * the longest. */
static int encode_number(encoder *e, int idx)
{
    jr_buf *b = e->b;
    double d;
    if (jr_buf_reserve(b, JR_NUMBUF) != 0)
        return oom(e);
#if JR_HAVE_INTEGERS
    if (lua_isinteger(e->L, idx)) {
        b->len += jr_format_integer(b->data + b->len, (long long)lua_tointeger(e->L, idx));
        return 0;
    }
#endif
    d = (double)lua_tonumber(e->L, idx);
    if (isnan(d))
        return fail(e, "cannot encode NaN");
    if (isinf(d))
        return fail(e, "cannot encode an infinity");
    b->len += jr_format_double(b->data + b->len, d, JR_HAVE_INTEGERS);
    return 0;
}

static int table_kind(encoder *e, int idx)
{
    static const int of_marker[] = {K_PLAIN, K_ARRAY, K_OBJECT, K_EMPTY_ARRAY};
    int kind = K_PLAIN;
    if (lua_getmetatable(e->L, idx)) {
        if (lua_rawequal(e->L, -1, e->mt_array))
            kind = K_ARRAY;
        else if (lua_rawequal(e->L, -1, e->mt_object))
            kind = K_OBJECT;
        else
            kind = of_marker[jr_marker_kind(e->L)];   /* a host's metatable? */
        lua_pop(e->L, 1);
    }
    return kind;
}

/* Members of an object, continuing a lua_next walk whose first key and
 * value are on the stack; a Neovim dictionary's (tagged) boolean keys are
 * its type tag, not members. */
static int encode_members(encoder *e, int idx, int tagged)
{
    lua_State *L = e->L;
    int first = 1;
    if (jr_buf_addc(e->b, '{') != 0)
        return oom(e);
    do {
        int key = lua_gettop(L) - 1;
        size_t klen;
        const char *k;
        if (tagged && lua_type(L, key) == LUA_TBOOLEAN) {
            lua_pop(L, 1);
            continue;
        }
        if (lua_type(L, key) != LUA_TSTRING)
            return fail_key(e, "object key %s is not a string (mixed or non-string keys)", key);
        k = lua_tolstring(L, key, &klen);
        if ((!first && jr_buf_addc(e->b, ',') != 0))
            return oom(e);
        if (encode_string(e, k, klen) != 0)
            return -1;
        if (jr_buf_addc(e->b, ':') != 0)
            return oom(e);
        if (encode_value(e, key + 1) != 0) {
            path_key(e, key);
            return -1;
        }
        lua_pop(L, 1);
        first = 0;
    } while (lua_next(L, idx));
    return jr_buf_addc(e->b, '}') ? oom(e) : 0;
}

static int encode_element(encoder *e, lua_Integer i, int value)
{
    if (i > 1 && jr_buf_addc(e->b, ',') != 0)
        return oom(e);
    if (encode_value(e, value) != 0) {
        path_index(e, i);
        return -1;
    }
    return 0;
}

/* Checks that the keys are exactly 1..n (n returned), naming the first key
 * that breaks it. */
static int check_sequence(encoder *e, int idx, lua_Integer *n)
{
    lua_State *L = e->L;
    lua_Integer count = 0, max = 0, i;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_Integer k = key_index(L, -2);
        if (k == 0)
            return fail_key(e, lua_type(L, -2) == LUA_TSTRING
                ? "table mixes array items with string key %s"
                : "array key %s is not a positive integer", lua_gettop(L) - 1);
        count++;
        if (k > max)
            max = k;
        lua_pop(L, 1);
    }
    for (i = 1; count != max; i++) {
        int missing;
        lua_rawgeti(L, idx, i);
        missing = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (missing) {
            char msg[JR_ERRLEN];
            snprintf(msg, sizeof msg, "sparse array: key %lld is missing but key %lld exists"
                     " (a JSON array cannot hold nil)", (long long)i, (long long)max);
            return fail(e, msg);
        }
    }
    *n = max;
    return 0;
}

/* The items 1..n of the table at idx, as an array. */
static int encode_items(encoder *e, int idx, lua_Integer n)
{
    lua_Integer i;
    if (jr_buf_addc(e->b, '[') != 0)
        return oom(e);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(e->L, idx, i);
        if (encode_element(e, i, lua_gettop(e->L)) != 0)
            return -1;
        lua_pop(e->L, 1);
    }
    return jr_buf_addc(e->b, ']') ? oom(e) : 0;
}

/* Arrays whose keys lua_next does not walk in order 1..n (hash part). */
static int encode_array_checked(encoder *e, int idx)
{
    lua_Integer n = 0;
    if (check_sequence(e, idx, &n) != 0)
        return -1;
    return encode_items(e, idx, n);
}

/* An array in one lua_next walk when the keys come in order 1, 2, 3...
 * (the array part, the common case); otherwise falls back to checking. The
 * walk's first key and value are on the stack. */
static int encode_array(encoder *e, int idx)
{
    lua_State *L = e->L;
    size_t mark = e->b->len;
    lua_Integer expect = 1;
    if (jr_buf_addc(e->b, '[') != 0)
        return oom(e);
    do {
        if (key_index(L, -2) != expect) {
            lua_pop(L, 2);
            e->b->len = mark;
            return encode_array_checked(e, idx);
        }
        if (encode_element(e, expect, lua_gettop(L)) != 0)
            return -1;
        expect++;
        lua_pop(L, 1);
    } while (lua_next(L, idx));
    return jr_buf_addc(e->b, ']') ? oom(e) : 0;
}

/* Depth exceeded: a cycle when this table is one of its own ancestors (the
 * ancestors are all on the stack above the root). */
static int fail_depth(encoder *e, int idx)
{
    char msg[JR_ERRLEN];
    int i;
    for (i = e->root; i < idx; i++)
        if (lua_rawequal(e->L, i, idx))
            return fail(e, "cycle: a table contains itself");
    snprintf(msg, sizeof msg, "nesting deeper than max_depth (%d)", e->max_depth);
    return fail(e, msg);
}

/* A table by its keys, once its kind is known. */
static int encode_by_keys(encoder *e, int idx, int kind)
{
    lua_State *L = e->L;
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return jr_buf_add(e->b, kind == K_ARRAY || kind == K_EMPTY_ARRAY ? "[]" : "{}", 2) ? oom(e) : 0;
    if (kind == K_OBJECT || (kind != K_ARRAY && lua_type(L, -2) == LUA_TSTRING))
        return encode_members(e, idx, 0);
    if (key_index(L, -2) != 0)
        return encode_array(e, idx);
    if (kind == K_ARRAY)
        return fail_key(e, "array key %s is not a positive integer", lua_gettop(L) - 1);
    return fail_key(e, "table key %s is neither a string nor an array index", lua_gettop(L) - 1);
}


/* The string keys of a Neovim dictionary, its boolean tag keys left out. */
static int encode_vim_dictionary(encoder *e, int idx)
{
    lua_State *L = e->L;
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return jr_buf_add(e->b, "{}", 2) ? oom(e) : 0;
    return encode_members(e, idx, 1);
}

/* A table the keys refused may be one of vim.api's, tagged with its type
 * ({[vim.type_idx] = vim.types.dictionary}, say): encoded by its tag, from
 * where it began, or the refusal stands. */
static int encode_vim_tagged(encoder *e, int idx, int top, size_t mark, size_t path_at, int path_cut)
{
    lua_State *L = e->L;
    int type, rc;
    lua_settop(L, top);
    type = jr_marker_vim_type(L, idx);
    if (type == JR_VIM_NONE)
        return -1;
    e->b->len = mark;
    e->path_at = path_at;
    e->path_cut = path_cut;
    if (type == JR_VIM_FLOAT) {
        rc = lua_type(L, -1) == LUA_TNUMBER ? encode_number(e, lua_gettop(L))
                                            : fail(e, "a vim.types.float table without a number");
        lua_pop(L, 1);
        return rc;
    }
    /* an array's items are 1..#t; its boolean tag keys are left out */
    return type == JR_VIM_ARRAY ? encode_items(e, idx, (lua_Integer)lua_rawlen(L, idx))
                                : encode_vim_dictionary(e, idx);
}

static int encode_table(encoder *e, int idx)
{
    lua_State *L = e->L;
    int kind, rc, top = lua_gettop(L), path_cut = e->path_cut;
    size_t mark = e->b->len, path_at = e->path_at;
    if (e->depth >= e->max_depth)
        return fail_depth(e, idx);
    if (!lua_checkstack(L, 6))
        return fail(e, "Lua stack exhausted");
    e->depth++;
    kind = table_kind(e, idx);
    rc = encode_by_keys(e, idx, kind);
    if (rc != 0 && kind == K_PLAIN)
        rc = encode_vim_tagged(e, idx, top, mark, path_at, path_cut);
    e->depth--;
    return rc;
}

static int encode_value(encoder *e, int idx)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return encode_string(e, s, n);
    }
    case LUA_TNUMBER:
        return encode_number(e, idx);
    case LUA_TTABLE:
        return encode_table(e, idx);
    case LUA_TBOOLEAN:
        return (lua_toboolean(L, idx) ? jr_buf_add(e->b, "true", 4)
                                      : jr_buf_add(e->b, "false", 5)) ? oom(e) : 0;
    case LUA_TNIL:
        return jr_buf_add(e->b, "null", 4) ? oom(e) : 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)   /* jsonrpc.null, cjson.null, ngx.null */
            return jr_buf_add(e->b, "null", 4) ? oom(e) : 0;
        if (jr_marker_is_empty_array(L, idx))
            return jr_buf_add(e->b, "[]", 2) ? oom(e) : 0;
        break;
    case LUA_TUSERDATA:
        if (jr_marker_is_null(L, idx))   /* vim.NIL */
            return jr_buf_add(e->b, "null", 4) ? oom(e) : 0;
        break;
    default:
        break;
    }
    {
        char msg[64];
        snprintf(msg, sizeof msg, "cannot encode a value of type %s", luaL_typename(L, idx));
        return fail(e, msg);
    }
}

int jr_encode(lua_State *L, int idx, jr_buf *b, const jr_codec_limits *lim,
              int mt_array, int mt_object, char err[JR_ERRLEN])
{
    encoder e;
    int top = lua_gettop(L);
    size_t start = b->len;
    e.L = L;
    e.b = b;
    e.depth = 0;
    e.max_depth = lim->max_depth;
    e.mt_array = jr_absindex(L, mt_array);
    e.mt_object = jr_absindex(L, mt_object);
    e.root = jr_absindex(L, idx);
    e.err = err;
    e.path_at = sizeof e.path;
    e.path_cut = 0;
    if (encode_value(&e, e.root) == 0) {
        if (b->len - start <= lim->max_size)
            return 0;
        snprintf(err, JR_ERRLEN, "encoded text of %lu bytes exceeds max_size (%lu)",
                 (unsigned long)(b->len - start), (unsigned long)lim->max_size);
        return -1;
    }
    lua_settop(L, top);
    if (e.path_at < sizeof e.path) {
        char reason[JR_ERRLEN];
        memcpy(reason, err, JR_ERRLEN);
        snprintf(err, JR_ERRLEN, "%.100s at $%s%.*s", reason, e.path_cut ? "..." : "",
                 (int)(sizeof e.path - e.path_at), e.path + e.path_at);
    }
    return -1;
}
