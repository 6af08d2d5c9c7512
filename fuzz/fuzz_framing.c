/* libFuzzer target for the stream framings (csrc/framing/).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I/usr/include/lua5.4 \
 *       -Icsrc fuzz/fuzz_framing.c $(find csrc -name "*.c") -llua5.4 -lm -o /tmp/fuzz_framing
 *   (every .c file under csrc)
 *
 * Input: byte 0 picks the framing (value % 3) and extra runs (0x10: through
 * the Lua binding too; 0x20: with failing allocations, 0x40: those through
 * reserve/commit), byte 1 max_message_size (255: the default), byte 2
 * max_header_size - 1, byte 3 the chunking; the rest is the stream. The stream is decoded three ways: fed
 * whole, fed in chunks, and read in chunks through reserve/commit. All must
 * give the same messages and errors, in the same order, also when some
 * allocations fail and the refused chunks are offered again. Each message must
 * respect the limits and re-frame to itself; messages taken in one drain
 * must stay intact until the next feed; what stays buffered must be bounded.
 * Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "framing/framing.h"
#include "framing/stream_layer.h"

int luaopen_jsonrpc_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct params {
    jr_frame_kind kind;
    size_t max_message, max_header;
    unsigned chunk_seed;
    int via_lua;
} params;

/* What a decoding produced: 'M' len bytes / 'E' len text, back to back. */
typedef struct eventlog {
    char *p;
    size_t n, cap;
} eventlog;

/* ud, when given, makes every period-th (re)allocation fail. */
typedef struct budget {
    unsigned left, period;
} budget;

static void *fz_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    budget *bg = (budget *)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (bg != NULL && bg->left-- == 0) {
        bg->left = bg->period;
        return NULL;
    }
    return realloc(ptr, nsize);
}

static void new_buf(jr_buf *b)
{
    memset(b, 0, sizeof *b);
    b->alloc = fz_alloc;
}

static void log_add(eventlog *l, char tag, const char *s, size_t n)
{
    size_t need = l->n + 1 + sizeof n + n;
    if (need > l->cap) {
        l->cap = need * 2;
        l->p = (char *)realloc(l->p, l->cap);
        if (l->p == NULL)
            abort();
    }
    l->p[l->n++] = tag;
    memcpy(l->p + l->n, &n, sizeof n);
    l->n += sizeof n;
    if (n > 0)
        memcpy(l->p + l->n, s, n);
    l->n += n;
}

static int same_log(const eventlog *a, const eventlog *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/* Appends the frame of m[0..n) as the message layer makes it. */
static int frame_into(const params *pp, jr_buf *b, const char *m, size_t n)
{
    jr_layer *l = jr_stream_layer_new(pp->kind, pp->max_message);
    int rc;
    if (l == NULL)
        abort();
    rc = l->ops->frame(l, b, m, n);
    l->ops->free(l);
    return rc;
}

/* Decodes framed bytes with a fresh framer: they must hold exactly m. */
static void check_reframe(const params *pp, const char *m, size_t n)
{
    jr_framer g;
    jr_buf b;
    const char *out;
    size_t len;
    if (jr_frame_check(pp->kind, m, n) != NULL)
        abort();
    if (pp->kind == JR_FRAME_NDJSON && n > 0 && m[n - 1] == '\r')
        return; /* the CR would be taken for part of a CRLF: documented */
    new_buf(&b);
    if (frame_into(pp, &b, m, n) != 0)
        abort();
    jr_framer_init(&g, pp->kind, pp->max_message, JR_DEFAULT_MAX_HEADER, fz_alloc, NULL);
    if (jr_framer_feed(&g, b.data, b.len) != 0)
        abort();
    if (jr_framer_next(&g, &out, &len) != 1 || len != n || (n > 0 && memcmp(out, m, n) != 0))
        abort();
    if (jr_framer_next(&g, &out, &len) != 0 || jr_framer_buffered(&g) != 0)
        abort();
    jr_framer_free(&g);
    jr_buf_release(&b);
}

static void check_message(const params *pp, const char *m, size_t n)
{
    size_t i;
    int blank = 1;
    if (n > pp->max_message)
        abort();
    if (pp->kind == JR_FRAME_NDJSON) {
        for (i = 0; i < n; i++) {
            if (m[i] == '\n')
                abort();
            if (m[i] != ' ' && m[i] != '\t' && m[i] != '\r')
                blank = 0;
        }
        if (blank)
            abort();
    }
    check_reframe(pp, m, n);
}

/* What may stay buffered once everything complete has been taken. */
static void check_buffered(const params *pp, const jr_framer *f)
{
    size_t held = jr_framer_buffered(f);
    if (jr_framer_broken(f)) {
        if (held != 0 || jr_framer_error(f)[0] == '\0')
            abort();
        return;
    }
    switch (pp->kind) {
    case JR_FRAME_CONTENT_LENGTH:
        if (held >= pp->max_header && held >= pp->max_message)
            abort();
        break;
    case JR_FRAME_BE32:
        if (held >= 4 && held >= pp->max_message)
            abort();
        break;
    default:
        if (held > pp->max_message + 1)
            abort();
    }
}

#define TRACKED 64

/* Takes every complete message; they must all stay intact until the next
 * feed, so they are compared with their logged copies at the end. */
static void drain(const params *pp, jr_framer *f, eventlog *log)
{
    const char *m, *ptr[TRACKED];
    size_t n, len[TRACKED], at[TRACKED];
    int r, k = 0, i;
    if (jr_framer_broken(f)) {
        /* reported when it broke; it stays so, with the same error */
        if (jr_framer_next(f, &m, &n) != -1 || jr_framer_buffered(f) != 0)
            abort();
        return;
    }
    while ((r = jr_framer_next(f, &m, &n)) != 0) {
        if (r == 1) {
            check_message(pp, m, n);
            log_add(log, 'M', m, n);
            if (k < TRACKED) {
                ptr[k] = m;
                len[k] = n;
                at[k++] = log->n - n;
            }
            continue;
        }
        if (r != -1 || jr_framer_error(f)[0] == '\0')
            abort();
        log_add(log, 'E', jr_framer_error(f), strlen(jr_framer_error(f)));
        if (jr_framer_broken(f))
            break;
        if (pp->kind != JR_FRAME_NDJSON)
            abort(); /* only ndjson goes on after an error */
    }
    if (jr_framer_broken(f) && jr_framer_next(f, &m, &n) != -1)
        abort();
    for (i = 0; i < k; i++)
        if (len[i] > 0 && memcmp(ptr[i], log->p + at[i], len[i]) != 0)
            abort();
    check_buffered(pp, f);
}

/* Next chunk length: a small xorshift walk over sizes that are mostly
 * small, with some empty and some large. */
static size_t next_chunk(unsigned *state, size_t left)
{
    unsigned x = *state, scale;
    size_t n;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    scale = (x >> 24) & 7;
    n = (x & 0xffff) % ((size_t)1 << (scale + 1));
    return n < left ? n : left;
}

static void feed_checked(jr_framer *f, const char *p, size_t n)
{
    int r = jr_framer_feed(f, p, n);
    if (r == -1 ? !jr_framer_broken(f) : r != 0)
        abort();
}

static void decode_whole(const params *pp, const char *p, size_t n, eventlog *log)
{
    jr_framer f;
    jr_framer_init(&f, pp->kind, pp->max_message, pp->max_header, fz_alloc, NULL);
    feed_checked(&f, p, n);
    drain(pp, &f, log);
    jr_framer_free(&f);
}

/* Feeds (or reads in, zero_copy) the chunks, draining after each. With a
 * failing allocator, a chunk refused for lack of memory must leave the
 * framer as it was, and is offered again. */
static void decode_chunked(const params *pp, const char *p, size_t n, eventlog *log,
                           int zero_copy, budget *bg)
{
    jr_framer f;
    unsigned state = pp->chunk_seed * 2654435761u + 1;
    size_t off = 0, c, avail, held;
    int round = 0, r;
    jr_framer_init(&f, pp->kind, pp->max_message, pp->max_header, fz_alloc, bg);
    while (off < n) {
        c = next_chunk(&state, n - off);
        held = jr_framer_buffered(&f);
        if (!zero_copy) {
            r = jr_framer_feed(&f, p + off, c);
            if (r == JR_FRAMER_NOMEM && bg != NULL) {
                if (jr_framer_buffered(&f) != held || jr_framer_broken(&f))
                    abort();
                continue;
            }
            if (r == -1 ? !jr_framer_broken(&f) : r != 0)
                abort();
        } else {
            char *dst = jr_framer_reserve(&f, c, &avail);
            if (dst == NULL) {
                if (!jr_framer_broken(&f) && bg == NULL)
                    abort();
                if (!jr_framer_broken(&f)) {
                    if (jr_framer_buffered(&f) != held)
                        abort();
                    continue;
                }
            } else {
                if (avail < c)
                    abort();
                memcpy(dst, p + off, c);
                jr_framer_commit(&f, c);
            }
        }
        off += c;
        drain(pp, &f, log);
        if (++round % 3 == 0)
            jr_framer_shrink(&f);
    }
    jr_framer_free(&f);
}

/* The string on top of L must be the C API's frame of m. */
static void check_lua_frame(const params *pp, lua_State *L, const char *m, size_t n)
{
    jr_buf b;
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    new_buf(&b);
    if (frame_into(pp, &b, m, n) != 0)
        abort();
    if (s == NULL || len != b.len || memcmp(s, b.data, len) != 0)
        abort();
    jr_buf_release(&b);
}

/* The same chunks through jsonrpc.framer: the same messages in order. */
static void decode_lua(const params *pp, const char *p, size_t n, const eventlog *want)
{
    static const char *const names[] = { "content-length", "be32", "ndjson" };
    lua_State *L = luaL_newstate();
    unsigned state = pp->chunk_seed * 2654435761u + 1;
    eventlog got = { NULL, 0, 0 };
    size_t off = 0, c, i, len;
    const char *m;
    if (L == NULL)
        abort();
    lua_pushcfunction(L, luaopen_jsonrpc_core);
    if (lua_pcall(L, 0, 1, 0) != 0)
        abort();
    lua_getfield(L, -1, "framer");
    lua_pushstring(L, names[pp->kind]);
    lua_newtable(L);
    lua_pushnumber(L, (lua_Number)pp->max_message);
    lua_setfield(L, -2, "max_message_size");
    lua_pushnumber(L, (lua_Number)pp->max_header);
    lua_setfield(L, -2, "max_header_size");
    if (lua_pcall(L, 2, 1, 0) != 0)
        abort();
    while (off < n) {
        c = next_chunk(&state, n - off);
        lua_getfield(L, -1, "feed");
        lua_pushvalue(L, -2);
        lua_pushlstring(L, p + off, c);
        off += c;
        if (lua_pcall(L, 2, 2, 0) != 0 || lua_type(L, -2) != LUA_TTABLE)
            abort();
        for (i = 1; i <= lua_rawlen(L, -2); i++) {
            lua_rawgeti(L, -2, (int)i);
            m = lua_tolstring(L, -1, &len);
            log_add(&got, 'M', m, len);
            /* f:frame(m) must give the C API's frame */
            lua_getfield(L, -4, "frame");
            lua_pushvalue(L, -5);
            lua_pushvalue(L, -3);
            if (lua_pcall(L, 2, 1, 0) != 0)
                abort();
            check_lua_frame(pp, L, m, len);
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
    /* Only the messages are compared: the Lua feed reports one error per
     * call. */
    {
        eventlog msgs = { NULL, 0, 0 };
        size_t at = 0;
        while (at < want->n) {
            char tag = want->p[at];
            memcpy(&len, want->p + at + 1, sizeof len);
            if (tag == 'M')
                log_add(&msgs, 'M', want->p + at + 1 + sizeof len, len);
            at += 1 + sizeof len + len;
        }
        if (!same_log(&msgs, &got))
            abort();
        free(msgs.p);
    }
    free(got.p);
    lua_close(L);
}

static void check_encoding_limits(void)
{
    char hdr[JR_FRAME_HEADER_MAX];
    if (jr_frame_header_write(JR_FRAME_BE32, 0xFFFFFFFFu, hdr) != 4 || memcmp(hdr, "\377\377\377\377", 4) != 0)
        abort();
    if (jr_frame_header_write(JR_FRAME_CONTENT_LENGTH, (size_t)-1, hdr) > JR_FRAME_HEADER_MAX)
        abort();
#if SIZE_MAX > 0xFFFFFFFFu
    if (jr_frame_header_write(JR_FRAME_BE32, (size_t)0x100000000ull, hdr) != (size_t)-1 ||
        jr_frame_check(JR_FRAME_BE32, NULL, (size_t)0x100000000ull) == NULL)
        abort();
#endif
}

/* After an error, what the layer tells the peer: one frame holding a
 * JSON-RPC error with id null. */
static void check_refusal(const params *pp, jr_layer *l)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32";
    static const char tail[] = "\"id\":null}";
    jr_framer g;
    jr_buf b;
    const char *m;
    size_t len;
    new_buf(&b);
    if (l->ops->refuse(l, &b) != 0)
        abort();
    jr_framer_init(&g, pp->kind, JR_DEFAULT_MAX_MESSAGE, JR_DEFAULT_MAX_HEADER, fz_alloc, NULL);
    if (jr_framer_feed(&g, b.data, b.len) != 0 || jr_framer_next(&g, &m, &len) != 1
        || len < sizeof head + sizeof tail || memcmp(m, head, sizeof head - 1) != 0
        || memcmp(m + len - (sizeof tail - 1), tail, sizeof tail - 1) != 0
        || jr_framer_next(&g, &m, &len) != 0)
        abort();
    jr_framer_free(&g);
    jr_buf_release(&b);
}

/* The bytes through the message-layer interface (layer.h) as a driver
 * uses it: reserve and commit in chunks, next after each, and refuse after
 * an error. */
static void decode_layer(const params *pp, const char *p, size_t n, eventlog *log)
{
    jr_layer *l = jr_stream_layer_new(pp->kind, pp->max_message);
    unsigned state = pp->chunk_seed * 2654435761u + 7;
    size_t off = 0, c, avail, len;
    const char *m;
    int r;
    if (l == NULL)
        abort();
    while (off < n && !l->ops->broken(l)) {
        char *dst;
        c = next_chunk(&state, n - off);
        dst = l->ops->reserve(l, c, &avail);
        if (dst == NULL || avail < c)
            abort();
        memcpy(dst, p + off, c);
        l->ops->commit(l, c);
        off += c;
        while ((r = l->ops->next(l, &m, &len)) != 0) {
            if (r == 1) {
                log_add(log, 'M', m, len);
                continue;
            }
            log_add(log, 'E', l->ops->error(l), strlen(l->ops->error(l)));
            check_refusal(pp, l);
            if (l->ops->broken(l))
                break;
        }
        if (off % 3 == 0)
            l->ops->shrink(l);
    }
    if (!l->ops->broken(l) && l->ops->partial(l) > l->ops->held(l))
        abort();
    l->ops->free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    params pp;
    eventlog whole = { NULL, 0, 0 }, chunked = { NULL, 0, 0 }, zc = { NULL, 0, 0 };
    eventlog starved = { NULL, 0, 0 };
    budget bg;
    const char *p = (const char *)data + 4;
    size_t n;
    if (size < 4)
        return 0;
    check_encoding_limits();
    pp.kind = (jr_frame_kind)(data[0] % 3);
    pp.via_lua = (data[0] & 0x10) != 0;
    pp.max_message = data[1] == 255 ? JR_DEFAULT_MAX_MESSAGE : data[1];
    pp.max_header = (size_t)data[2] + 1;
    pp.chunk_seed = data[3];
    n = size - 4;
    decode_whole(&pp, p, n, &whole);
    decode_chunked(&pp, p, n, &chunked, 0, NULL);
    decode_chunked(&pp, p, n, &zc, 1, NULL);
    if (!same_log(&whole, &chunked) || !same_log(&whole, &zc))
        abort();
    if (data[0] & 0x20) {
        bg.left = data[3] % 5;
        bg.period = 1 + data[3] % 3;
        decode_chunked(&pp, p, n, &starved, (data[0] & 0x40) != 0, &bg);
        if (!same_log(&whole, &starved))
            abort();
    }
    if (pp.via_lua)
        decode_lua(&pp, p, n, &whole);
    {   /* the layer has the default header limit */
        params lp = pp;
        eventlog ref = { NULL, 0, 0 }, got = { NULL, 0, 0 };
        lp.max_header = JR_DEFAULT_MAX_HEADER;
        decode_whole(&lp, p, n, &ref);
        decode_layer(&lp, p, n, &got);
        if (!same_log(&ref, &got))
            abort();
        free(ref.p);
        free(got.p);
    }
    free(whole.p);
    free(chunked.p);
    free(zc.p);
    free(starved.p);
    return 0;
}
