/* A soak test: hostile clients against a JSON-RPC server over TCP, with
 * content-length framing, while a monitor watches the server for crashes,
 * hangs and memory growth.
 *
 *   soak [--seconds N] [--seed S] [--connections N] [--only NAME]
 *        [--ending NAME] [--max-rss-mib N] [--log FILE]
 *        [--sigpipe default|ignore] -- SERVER ARGV...
 *
 * SERVER ARGV is started (and restarted after each crash) by this program;
 * it must print "listening on tcp://HOST:PORT" on stderr, and starts with
 * SIGPIPE at its default (--sigpipe ignore: ignored, as a host such as nginx
 * would leave it, to look past the crashes SIGPIPE causes). N connections are
 * kept open for the whole run, each one a plan drawn from its own random
 * stream (seeded from S and its number, so a run replays): random bytes,
 * mutated frames, pipelined calls (read or never read), the server's
 * notification flood never read, or a slow trickle; and an ending: FIN, RST,
 * half-close (then read to EOF, bounded) or a drop at a random moment.
 * A probe calls add(1,2) every second to catch hangs. At the end: one more
 * probe (liveness), the server's peak RSS (VmHWM), SIGTERM (SIGKILL after a
 * bound). Exit 0 only without crashes, alive at the end and under the RSS
 * limit; 1 otherwise; 2 when the server cannot be started. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "frames.h"

#define MAX_CONNECTIONS 256
#define START_BOUND_MS 10000      /* for the server to print its port */
#define STOP_BOUND_MS 3000        /* after SIGTERM, before SIGKILL */
#define LIFE_BOUND_MS 4000        /* no attack connection lives longer */
#define HALF_CLOSE_BOUND_MS 2000  /* after our FIN, for the server's */
#define PROBE_EVERY_MS 1000
#define PROBE_BOUND_MS 5000       /* a probe unanswered by then: a hang */
#define PROBE_LATE_MS 1000
#define RSS_EVERY_MS 200
#define REFUSED_PAUSE_MS 50
#define MAX_CRASHES 64
#define RECENT 64                 /* ended connections kept for crash reports */
#define TAIL_BYTES 4096           /* the server's last stderr bytes */

/* ---- small tools ---- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        b->cap = (b->len + n) * 2;
        b->p = (char *)must(realloc(b->p, b->cap));
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_str(buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_fmt(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(buf *b, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    put(b, text, n < (int)sizeof text ? (size_t)n : sizeof text - 1);
}

static void put_repeat(buf *b, const char *s, size_t times)
{
    size_t i;
    for (i = 0; i < times; i++)
        put_str(b, s);
}

/* splitmix64: small, fast, and every seed is a good one */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rng_below(rng *r, uint64_t n) { return n ? rng_next(r) % n : 0; }

static int rng_percent(rng *r, int percent) { return (int)rng_below(r, 100) < percent; }

/* Sizes spread evenly over orders of magnitude, lo..hi. */
static size_t rng_size(rng *r, size_t lo, size_t hi)
{
    size_t top = lo;
    while (top < hi && rng_percent(r, 75))
        top = top * 2 < hi ? top * 2 : hi;
    return lo + (size_t)rng_below(r, top - lo + 1);
}

static const char *pick(rng *r, const char *const *list, size_t n) { return list[rng_below(r, n)]; }

#define PICK(r, list) pick((r), (list), sizeof(list) / sizeof(list)[0])

/* ---- plans: what a connection sends and how it ends ---- */

typedef enum { K_RANDOM, K_MUTATED, K_PIPELINE, K_FLOOD, K_SLOW, K_PROBE, K_COUNT } kind;
static const char *const kind_names[K_COUNT] = {"random", "mutated", "pipeline", "flood", "slow", "probe"};
static const int kind_weights[K_PROBE] = {15, 40, 25, 10, 10};

typedef enum {
    M_NONE, M_FLIP, M_TRUNCATE, M_WRONG_LENGTH, M_HUGE_LENGTH, M_BAD_HEADER,
    M_DUPLICATES, M_DEEP, M_TINY_ARRAYS, M_BIG_BATCH, M_BAD_VALUES, M_COUNT
} mutation;
static const char *const mutation_names[M_COUNT] = {
    "none", "flip", "truncate", "wrong-length", "huge-length", "bad-header",
    "duplicates", "deep", "tiny-arrays", "big-batch", "bad-values"};

typedef enum { E_FIN, E_RST, E_HALF, E_DROP, E_COUNT } ending;
static const char *const ending_names[E_COUNT] = {"fin", "rst", "half-close", "drop"};

typedef struct plan {
    kind k;
    mutation m;
    ending e;
    int reads;        /* reads what the server sends, or never does */
    double drop_ms;   /* E_DROP: when, after connecting */
} plan;

/* The header and an id for one request (id 0: a notification). */
static void put_head(buf *b, const char *method)
{
    put_fmt(b, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":", method);
}

static void put_id(buf *b, uint64_t id)
{
    if (id)
        put_fmt(b, ",\"id\":%" PRIu64 "}", id);
    else
        put_str(b, "}");
}

static void put_letters(rng *r, buf *b, size_t n)
{
    size_t i;
    put_str(b, "\"");
    for (i = 0; i < n; i++) {
        char c = (char)('a' + rng_below(r, 26));
        put(b, &c, 1);
    }
    put_str(b, "\"");
}

/* One well-formed request to one of the server's methods (or none). */
static void put_call(rng *r, buf *b, uint64_t id)
{
    switch (rng_below(r, 7)) {
    case 0: put_head(b, "add"); put_fmt(b, "[%d,%d]", (int)rng_below(r, 1000), (int)rng_below(r, 1000)); break;
    case 1: put_head(b, "echo"); put_str(b, "["); put_letters(r, b, rng_size(r, 0, 20000)); put_str(b, "]"); break;
    case 2: put_head(b, "sleep"); put_fmt(b, "[%d]", (int)rng_below(r, 20)); break;
    case 3: put_head(b, "stream"); put_fmt(b, "[%d]", (int)rng_size(r, 1, 2000)); break;
    case 4: put_head(b, "fail"); put_str(b, "[]"); break;
    case 5: put_head(b, "no_such_method"); put_str(b, "{\"x\":1}"); break;
    default: put_head(b, "add"); put_str(b, "[1,2]"); id = 0; break;   /* a notification */
    }
    put_id(b, id);
}

static void put_frame(buf *out, const buf *body)
{
    put_fmt(out, "Content-Length: %zu\r\n\r\n", body->len);
    put(out, body->p, body->len);
}

/* A batch of n calls (ids from *id on). */
static void put_batch(rng *r, buf *b, size_t n, uint64_t *id)
{
    size_t i;
    put_str(b, "[");
    for (i = 0; i < n; i++) {
        if (i)
            put_str(b, ",");
        put_call(r, b, (*id)++);
    }
    put_str(b, "]");
}

/* Valid frames, single calls and some batches, up to about `target` bytes. */
static void put_pipeline(rng *r, buf *out, size_t target)
{
    buf body = {0};
    uint64_t id = 1;
    while (out->len < target) {
        body.len = 0;
        if (rng_percent(r, 10))
            put_batch(r, &body, rng_size(r, 2, 50), &id);
        else
            put_call(r, &body, id++);
        put_frame(out, &body);
    }
    free(body.p);
}

static void put_random_bytes(rng *r, buf *out, size_t n)
{
    size_t i;
    if (rng_percent(r, 30))   /* so that the bytes reach past the header name */
        put_str(out, "Content-Length: ");
    for (i = 0; i < n; i++) {
        char c = (char)rng_next(r);
        put(out, &c, 1);
    }
}

/* ---- mutations of valid frames ---- */

static void mutate_flip(rng *r, buf *out)
{
    size_t flips = rng_size(r, 1, 8), i;
    put_pipeline(r, out, rng_size(r, 64, 16384));
    for (i = 0; i < flips; i++) {
        size_t at = (size_t)rng_below(r, out->len);
        if (rng_percent(r, 50))
            out->p[at] ^= (char)(1 << rng_below(r, 8));
        else
            out->p[at] = (char)rng_next(r);
    }
}

static void mutate_truncate(rng *r, buf *out)
{
    put_pipeline(r, out, rng_size(r, 64, 65536));
    out->len = (size_t)rng_below(r, out->len);
}

/* A length that does not match the body: short, long, or zero. */
static void mutate_wrong_length(rng *r, buf *out)
{
    buf body = {0};
    size_t announced;
    put_call(r, &body, 1);
    if (rng_percent(r, 20))
        announced = 0;
    else if (rng_percent(r, 50))
        announced = body.len - 1 - (size_t)rng_below(r, body.len - 1);
    else
        announced = body.len + 1 + (size_t)rng_below(r, 64);
    put_fmt(out, "Content-Length: %zu\r\n\r\n", announced);
    put(out, body.p, body.len);
    free(body.p);
    if (rng_percent(r, 50))
        put_pipeline(r, out, rng_size(r, 64, 8192));
}

static void mutate_huge_length(rng *r, buf *out)
{
    static const char *const lengths[] = {
        "134217728", "134217729", "2147483648", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "18446744073709551615",
        "18446744073709551616", "99999999999999999999999999", "1048576", "16777216"};
    put_fmt(out, "Content-Length: %s\r\n\r\n", PICK(r, lengths));
    put_head(out, "echo");
    put_str(out, "[");
    put_letters(r, out, rng_size(r, 0, 65536));
}

/* Header blocks that break the rules in one way each (lengths given, as
 * some hold a NUL byte). */
typedef struct text {
    const char *p;
    size_t n;
} sized_text;
#define TEXT(s) {s, sizeof(s) - 1}

static void mutate_bad_header(rng *r, buf *out)
{
    static const sized_text heads[] = {
        TEXT("Content-Length 54\r\n\r\n"), TEXT("Content-Length:\r\n\r\n"),
        TEXT("Content-Length: -54\r\n\r\n"), TEXT("Content-Length: +54\r\n\r\n"),
        TEXT("Content-Length: 5 4\r\n\r\n"), TEXT("Content-Length: 0x36\r\n\r\n"),
        TEXT("Content-Length: 54\n\n"), TEXT("Content-Length: 54\r\nContent-Length: 55\r\n\r\n"),
        TEXT("Content-Type: application/json; charset=latin1\r\nContent-Length: 54\r\n\r\n"),
        TEXT("X-Other: 1\r\n\r\n"), TEXT("\r\n\r\n"), TEXT("Content-Length: 54\r\n\0\r\n\r\n"),
        TEXT("Content-Length: 5\0004\r\n\r\n"), TEXT("content-length:54\r\n\r\n"),
        TEXT("CONTENT-LENGTH:    54   \r\n\r\n"), TEXT("Content-Length: 54\r\nContent-Length: 54\r\n\r\n"),
        TEXT("Content-Length: 54\r\r\n\r\n"), TEXT("Content-Length: \xff" "54\r\n\r\n")};
    const sized_text *head = &heads[rng_below(r, sizeof heads / sizeof heads[0])];
    if (rng_percent(r, 15)) {   /* a header block longer than any limit */
        put_str(out, "X-Padding: ");
        put_repeat(out, "x", rng_size(r, 4096, 70000));
        put_str(out, "\r\n");
    }
    put(out, head->p, head->n);
    put_str(out, "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1}");
}

/* Members repeated with the same or other values: the last one wins. */
static void mutate_duplicates(rng *r, buf *out)
{
    static const char *const members[] = {
        "\"jsonrpc\":\"2.0\"", "\"jsonrpc\":\"1.0\"", "\"method\":\"add\"", "\"method\":\"echo\"",
        "\"method\":\"stream\"", "\"params\":[1,2]", "\"params\":{\"a\":1}", "\"params\":[3]",
        "\"id\":1", "\"id\":\"x\"", "\"id\":null", "\"id\":[1]", "\"result\":1", "\"error\":{}"};
    buf body = {0};
    size_t frames = rng_size(r, 1, 20), i, j, n;
    for (i = 0; i < frames; i++) {
        body.len = 0;
        n = rng_size(r, 2, 40);
        put_str(&body, "{");
        for (j = 0; j < n; j++) {
            if (j)
                put_str(&body, ",");
            put_str(&body, PICK(r, members));
        }
        put_str(&body, "}");
        put_frame(out, &body);
    }
    free(body.p);
}

/* Nesting like [[[[... (or {"a":{"a":...), closed or not. */
static void mutate_deep(rng *r, buf *out)
{
    buf body = {0};
    size_t depth = rng_size(r, 100, 200000);
    int objects = rng_percent(r, 30), closed = rng_percent(r, 60), top = rng_percent(r, 30);
    if (!top)
        put_head(&body, "echo"), put_str(&body, "[");
    put_repeat(&body, objects ? "{\"a\":" : "[", depth);
    put_str(&body, "1");
    if (closed)
        put_repeat(&body, objects ? "}" : "]", depth);
    if (!top)
        put_str(&body, "]"), put_id(&body, 1);
    put_frame(out, &body);
    free(body.p);
}

/* Many tiny arrays (or objects) in one message: cheap to send, each one a
 * table for the server. */
static void mutate_tiny_arrays(rng *r, buf *out)
{
    static const char *const tiny[] = {"[]", "{}", "[[]]", "[0]", "{\"a\":[]}"};
    buf body = {0};
    size_t n = rng_size(r, 100, 300000), i;
    const char *one = PICK(r, tiny);
    put_head(&body, "echo");
    put_str(&body, "[[");
    for (i = 0; i < n; i++) {
        if (i)
            put_str(&body, ",");
        put_str(&body, one);
    }
    put_str(&body, "]]");
    put_id(&body, 1);
    put_frame(out, &body);
    free(body.p);
}

/* Batches over the limit, empty, or of things that are not requests. */
static void mutate_big_batch(rng *r, buf *out)
{
    buf body = {0};
    uint64_t id = 1;
    size_t n = rng_size(r, 2, 3000), i;
    switch (rng_below(r, 3)) {
    case 0: put_batch(r, &body, n, &id); break;
    case 1: put_str(&body, "[]"); break;
    default:
        put_str(&body, "[");
        for (i = 0; i < n; i++)
            put_str(&body, i ? ",1" : "1");
        put_str(&body, "]");
    }
    put_frame(out, &body);
    free(body.p);
}

/* Texts the codec or the envelope must refuse. */
static void mutate_bad_values(rng *r, buf *out)
{
    static const char *const bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\xff\xfe\"],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\xc0\xaf\"],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\\ud800\"],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1e999999],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[-],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[NaN],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\x01\"],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\\u0000\"],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1,],\"id\":1}",
        "\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":1,\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":\"12\",\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":{\"a\":1}}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1.5}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"rpc.discover\",\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[\"a\",{}],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"sleep\",\"params\":[1e308],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"stream\",\"params\":[-1],\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":1}", "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1},\"id\":7}",
        "null", "1", "\"x\"", "", "{", "[", "{}", "[{}]", "[[]]"};
    buf body = {0};
    size_t frames = rng_size(r, 1, 10), i;
    for (i = 0; i < frames; i++) {
        body.len = 0;
        if (rng_percent(r, 10)) {   /* a number too long for any buffer */
            put_str(&body, "[");
            put_repeat(&body, "9", rng_size(r, 100, 100000));
            put_str(&body, "]");
        } else {
            put_str(&body, PICK(r, bodies));
        }
        put_frame(out, &body);
    }
    free(body.p);
}

static void put_mutated(rng *r, buf *out, mutation m)
{
    switch (m) {
    case M_FLIP: mutate_flip(r, out); break;
    case M_TRUNCATE: mutate_truncate(r, out); break;
    case M_WRONG_LENGTH: mutate_wrong_length(r, out); break;
    case M_HUGE_LENGTH: mutate_huge_length(r, out); break;
    case M_BAD_HEADER: mutate_bad_header(r, out); break;
    case M_DUPLICATES: mutate_duplicates(r, out); break;
    case M_DEEP: mutate_deep(r, out); break;
    case M_TINY_ARRAYS: mutate_tiny_arrays(r, out); break;
    case M_BIG_BATCH: mutate_big_batch(r, out); break;
    default: mutate_bad_values(r, out); break;
    }
    if (rng_percent(r, 30))   /* valid calls after the damage */
        put_pipeline(r, out, rng_size(r, 64, 32768));
}

/* A notification flood asked for, never read, perhaps with more behind. */
static void put_flood(rng *r, buf *out)
{
    buf body = {0};
    put_head(&body, "stream");
    put_fmt(&body, "[%zu]", rng_size(r, 10000, 1000000));
    put_id(&body, 1);
    put_frame(out, &body);
    free(body.p);
    if (rng_percent(r, 50))
        put_pipeline(r, out, rng_size(r, 1024, 131072));
}

static kind draw_kind(rng *r)
{
    int total = 0, k, at;
    for (k = 0; k < K_PROBE; k++)
        total += kind_weights[k];
    at = (int)rng_below(r, (uint64_t)total);
    for (k = 0; at >= kind_weights[k]; k++)
        at -= kind_weights[k];
    return (kind)k;
}

/* What to insist on (--only, --ending); -1 leaves it to chance. */
typedef struct choice {
    int k, m, e;
} choice;

/* The plan and the bytes for connection number `number`. */
static plan make_plan(rng *r, const choice *only, buf *out)
{
    plan p;
    memset(&p, 0, sizeof p);
    p.k = only->k >= 0 ? (kind)only->k : draw_kind(r);
    p.m = p.k != K_MUTATED ? M_NONE : only->m >= 0 ? (mutation)only->m : (mutation)(1 + rng_below(r, M_COUNT - 1));
    p.e = only->e >= 0 ? (ending)only->e : (ending)rng_below(r, E_COUNT);
    p.drop_ms = (double)rng_below(r, 1500);
    switch (p.k) {
    case K_RANDOM: p.reads = rng_percent(r, 30); put_random_bytes(r, out, rng_size(r, 1, 262144)); break;
    case K_MUTATED: p.reads = rng_percent(r, 50); put_mutated(r, out, p.m); break;
    case K_PIPELINE: p.reads = rng_percent(r, 50); put_pipeline(r, out, rng_size(r, 1024, 524288)); break;
    case K_FLOOD: p.reads = 0; put_flood(r, out); break;
    default: p.reads = rng_percent(r, 50); put_pipeline(r, out, rng_size(r, 64, 4096)); break;
    }
    return p;
}

static void describe_plan(const plan *p, size_t bytes, char *text, size_t n)
{
    snprintf(text, n, "%s%s%s, %zu bytes, %s, ends by %s", kind_names[p->k], p->m ? "/" : "",
             p->m ? mutation_names[p->m] : "", bytes, p->reads ? "reads" : "never reads",
             ending_names[p->e]);
}

/* ---- the server under test ---- */

typedef struct server {
    char **argv;
    int ignore_sigpipe;       /* as a host such as nginx or Neovim would */
    pid_t pid;
    int err_fd;               /* its stderr, drained so that it never blocks */
    int port;
    char tail[TAIL_BYTES];    /* its last words, for crash reports */
    size_t tail_len;
    long peak_kib;            /* VmHWM of this instance */
} server;

/* Keeps the last TAIL_BYTES of the server's stderr. */
static void keep_tail(server *s, const char *p, size_t n)
{
    if (n >= TAIL_BYTES) {
        p += n - TAIL_BYTES / 2;
        n = TAIL_BYTES / 2;
    }
    if (s->tail_len + n > TAIL_BYTES) {
        size_t drop = s->tail_len + n - TAIL_BYTES;
        memmove(s->tail, s->tail + drop, s->tail_len - drop);
        s->tail_len -= drop;
    }
    memcpy(s->tail + s->tail_len, p, n);
    s->tail_len += n;
}

/* Reads what the server wrote on stderr (a bounded amount a turn, however
 * fast it writes); 0 at its end. */
static int drain_stderr(server *s)
{
    char chunk[65536];
    ssize_t n = -1;
    int turns;
    for (turns = 0; turns < 16 && (n = read(s->err_fd, chunk, sizeof chunk)) > 0; turns++)
        keep_tail(s, chunk, (size_t)n);
    return n == 0 ? 0 : 1;
}

/* The port from "listening on tcp://HOST:PORT", or 0 not yet. */
static int parse_port(const server *s)
{
    const char *at = memmem(s->tail, s->tail_len, "listening on tcp://", 19), *colon, *end;
    if (at == NULL || (end = memchr(at, '\n', s->tail_len - (size_t)(at - s->tail))) == NULL)
        return 0;
    for (colon = end; colon > at && *colon != ':'; colon--)
        ;
    return atoi(colon + 1);
}

/* The child's side: stderr to the pipe, SIGPIPE as any shell leaves it
 * (we ignore it ourselves, and exec keeps an ignored signal ignored) unless
 * asked to ignore it, and dead with us if we die. */
static void exec_server(char **argv, int err_write, int ignore_sigpipe)
{
    int null = open("/dev/null", O_RDWR);
    sigset_t none;
    dup2(null, 0);
    dup2(null, 1);
    dup2(err_write, 2);
    signal(SIGPIPE, ignore_sigpipe ? SIG_IGN : SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp(argv[0], argv);
    fprintf(stderr, "soak: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Starts the server and waits (bounded) for its port. 0 or -1. */
static int server_start(server *s)
{
    int fds[2];
    double give_up = now_ms() + START_BOUND_MS;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    s->tail_len = 0;
    s->port = 0;
    s->peak_kib = 0;
    s->pid = fork();
    if (s->pid == 0)
        exec_server(s->argv, fds[1], s->ignore_sigpipe);
    close(fds[1]);
    s->err_fd = fds[0];
    fcntl(s->err_fd, F_SETFL, O_NONBLOCK);
    while (s->pid > 0 && s->port == 0 && now_ms() < give_up) {
        struct pollfd pfd = {s->err_fd, POLLIN, 0};
        poll(&pfd, 1, 50);
        if (!drain_stderr(s) && (s->port = parse_port(s)) == 0)
            return -1;   /* its stderr closed before a port: it died */
        s->port = parse_port(s);
    }
    return s->port > 0 ? 0 : -1;
}

/* How a process ended, from waitpid's status. */
static void describe_death(int status, char *text, size_t n)
{
    if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(text, n, "killed by signal %d (SIG%s)%s", WTERMSIG(status), abbrev ? abbrev : "?",
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else {
        snprintf(text, n, "exited with status %d", WEXITSTATUS(status));
    }
}

/* A field of /proc/PID/status in KiB, "VmHWM" say (0 when unreadable). */
static long read_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    long kib = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void sample_rss(server *s)
{
    long kib = read_status_kib(s->pid, "VmHWM");
    if (kib > s->peak_kib)
        s->peak_kib = kib;
}

/* SIGTERM, then SIGKILL after a bound. Describes how it ended. */
static void server_stop(server *s, char *how, size_t n)
{
    double give_up = now_ms() + STOP_BOUND_MS;
    int status = 0;
    pid_t done = 0;
    kill(s->pid, SIGTERM);
    while ((done = waitpid(s->pid, &status, WNOHANG)) == 0 && now_ms() < give_up) {
        drain_stderr(s);
        usleep(10000);
    }
    if (done == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        snprintf(how, n, "no: still running %d ms after SIGTERM, killed", STOP_BOUND_MS);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        snprintf(how, n, "yes (exit 0)");
    } else {
        char death[96];
        describe_death(status, death, sizeof death);
        snprintf(how, n, "no: %s", death);
    }
    close(s->err_fd);
    s->pid = 0;
}

/* ---- connections ---- */

typedef enum { S_FREE, S_CONNECTING, S_SENDING, S_LINGER, S_HALF_WAIT } state;

typedef struct conn {
    state st;
    int fd;
    uint64_t number;
    plan p;
    buf out;
    size_t sent;
    inbuf in;
    double started, end_at, next_send, half_deadline;
} conn;

typedef struct options {
    double seconds;
    uint64_t seed;
    int connections;
    long max_rss_mib;
    int ignore_sigpipe;
    const char *log;
    choice only;
} options;

typedef struct recent {
    double ended;
    uint64_t number;
    char what[160];
} recent;

typedef struct stats {
    uint64_t tried, by_kind[K_COUNT], by_mutation[M_COUNT], by_ending[E_COUNT];
    uint64_t refused, server_closed, frames_read, half_eof, half_timeout;
    uint64_t probes, probes_answered, probes_late, probes_lost;
    double probe_worst_ms;
    int crashes;
    char crash[MAX_CRASHES][160];
    long peak_kib;
    long end_kib;             /* VmRSS once the attackers have gone */
} stats;

typedef struct soak {
    options o;
    server srv;
    conn conns[MAX_CONNECTIONS];
    conn probe;
    stats st;
    double t0, next_probe, next_rss;
    FILE *log;
    double refused_at;        /* a connect was refused: is the server dead? */
    double probe_cut_at;      /* the probe closed unanswered: crash or not? */
    recent recents[RECENT];
    uint64_t recents_at;
} soak;

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void logf_(soak *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(soak *k, const char *fmt, ...)
{
    va_list ap;
    if (k->log == NULL)
        return;
    va_start(ap, fmt);
    vfprintf(k->log, fmt, ap);
    va_end(ap);
}

static void describe_conn(const conn *c, char *text, size_t n)
{
    char what[128];
    describe_plan(&c->p, c->out.len, what, sizeof what);
    snprintf(text, n, "#%" PRIu64 " %s, sent %zu", c->number, what, c->sent);
}

/* Frees the slot, remembering the connection for crash reports. */
static void conn_free(soak *k, conn *c)
{
    if (c->st != S_CONNECTING) {   /* one that never connected did nothing */
        recent *r = &k->recents[k->recents_at++ % RECENT];
        r->ended = now_ms();
        r->number = c->number;
        describe_conn(c, r->what, sizeof r->what);
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = S_FREE;
    c->out.len = 0;
    c->in.len = c->in.at = 0;
}

static void set_linger_zero(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/* Ends the connection the way its plan says. */
static void conn_end(soak *k, conn *c)
{
    k->st.by_ending[c->p.e]++;
    if (c->p.e == E_RST)
        set_linger_zero(c->fd);
    if (c->p.e == E_HALF && shutdown(c->fd, SHUT_WR) == 0) {
        c->st = S_HALF_WAIT;
        c->half_deadline = now_ms() + HALF_CLOSE_BOUND_MS;
        return;
    }
    conn_free(k, c);
}

static int conn_connect(soak *k, conn *c)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)k->srv.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS)
        return -1;
    c->st = S_CONNECTING;
    c->started = now_ms();
    c->end_at = c->started + LIFE_BOUND_MS;
    return 0;
}

/* A new attack connection in a free slot, with its own random stream. */
static void conn_open(soak *k, conn *c)
{
    rng r;
    c->number = ++k->st.tried;
    r.s = k->o.seed ^ (c->number * 0xd1b54a32d192ed03u);
    c->p = make_plan(&r, &k->o.only, &c->out);
    c->sent = 0;
    k->st.by_kind[c->p.k]++;
    k->st.by_mutation[c->p.m]++;
    if (conn_connect(k, c) != 0) {
        k->st.refused++;
        k->refused_at = now_ms();
        logf_(k, "%.3f s: #%" PRIu64 " connect: %s\n", (now_ms() - k->t0) / 1e3, c->number, strerror(errno));
        conn_free(k, c);
    }
}

static const char PROBE_FRAME[] =
    "Content-Length: 54\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1}";

static void probe_open(soak *k)
{
    conn *c = &k->probe;
    memset(&c->p, 0, sizeof c->p);
    c->p.k = K_PROBE;
    c->p.reads = 1;
    c->number = 0;
    c->sent = 0;
    c->out.len = 0;
    put(&c->out, PROBE_FRAME, sizeof PROBE_FRAME - 1);
    k->st.probes++;
    if (conn_connect(k, c) != 0) {
        k->st.probes_lost++;
        conn_free(k, c);
    }
    c->end_at = c->started + PROBE_BOUND_MS;
}

/* The probe's answer: add(1,2) is 3. */
static void probe_frame(soak *k, conn *c, const char *body, size_t len)
{
    double ms = now_ms() - c->started;
    if (memmem(body, len, "\"result\":3", 10) == NULL)
        return;
    k->st.probes_answered++;
    if (ms > k->st.probe_worst_ms)
        k->st.probe_worst_ms = ms;
    if (ms > PROBE_LATE_MS)
        k->st.probes_late++;
    conn_free(k, c);
}

/* ---- connection events ---- */

static void conn_connected(soak *k, conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        if (c->p.k == K_PROBE)
            k->st.probes_lost++;
        else
            k->st.refused++;
        k->refused_at = now_ms();
        logf_(k, "%.3f s: #%" PRIu64 " connect: %s\n", (now_ms() - k->t0) / 1e3, c->number, strerror(err));
        conn_free(k, c);
        return;
    }
    c->st = S_SENDING;
    c->next_send = 0;
    k->refused_at = 0;
    if (c->p.e == E_DROP && c->p.k != K_PROBE)
        c->end_at = c->started + c->p.drop_ms;
}

/* The server went away first (its FIN or RST reached us). */
static void conn_lost(soak *k, conn *c)
{
    if (c->st == S_HALF_WAIT)
        k->st.half_eof++;
    else if (c->p.k == K_PROBE)
        k->probe_cut_at = now_ms();   /* counted once we know it was no crash */
    else
        k->st.server_closed++;
    conn_free(k, c);
}

/* Sends what the socket takes; a slow connection a few bytes at a time. */
static void conn_write(soak *k, conn *c)
{
    size_t left = c->out.len - c->sent;
    ssize_t n;
    double t = now_ms();
    if (c->p.k == K_SLOW && left > 1 + c->number % 16)
        left = 1 + c->number % 16;
    n = send(c->fd, c->out.p + c->sent, left, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_lost(k, c);
        return;
    }
    c->sent += (size_t)n;
    if (c->p.k == K_SLOW)
        c->next_send = t + 10 + (double)(c->sent * 7919 % 190);
    if (c->sent < c->out.len)
        return;
    c->st = S_LINGER;
    if (c->p.e != E_DROP && c->p.k != K_PROBE && t + 300 < c->end_at)
        c->end_at = t + (double)(c->number % 300);   /* a short wait, reading or not */
}

/* Whole frames received: counted, and the probe's checked. */
static void take_frames(soak *k, conn *c)
{
    const char *body;
    size_t len;
    while (c->st != S_FREE && inbuf_next(&c->in, &body, &len)) {
        k->st.frames_read++;
        if (c->p.k == K_PROBE)
            probe_frame(k, c, body, len);
    }
    if (c->st != S_FREE)
        inbuf_shift(&c->in);
}

/* Reads (a bounded number of times per turn, so that one fast sender does
 * not starve the others). */
static void conn_read(soak *k, conn *c)
{
    int turns;
    for (turns = 0; turns < 16 && c->st != S_FREE; turns++) {
        uv_buf_t room;
        ssize_t n;
        inbuf_room(&c->in, 65536, &room);
        n = recv(c->fd, room.base, room.len, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            conn_lost(k, c);
            return;
        }
        if (n < 0)
            return;
        c->in.len += (size_t)n;
        take_frames(k, c);
    }
}

/* Deadlines: the end of a plan, the bound of a half-close, of a probe. */
static void conn_tick(soak *k, conn *c, double t)
{
    if (c->st == S_FREE)
        return;
    if (c->st == S_HALF_WAIT) {
        if (t >= c->half_deadline) {
            k->st.half_timeout++;
            conn_free(k, c);
        }
    } else if (t >= c->end_at) {
        if (c->p.k == K_PROBE) {
            k->st.probes_lost++;
            logf_(k, "%.1f s: probe unanswered after %d ms\n", (t - k->t0) / 1e3, PROBE_BOUND_MS);
            conn_free(k, c);
        } else if (c->st == S_CONNECTING) {
            k->st.refused++;
            logf_(k, "%.3f s: #%" PRIu64 " connect: no answer in %d ms\n", (t - k->t0) / 1e3, c->number, LIFE_BOUND_MS);
            conn_free(k, c);
        } else {
            conn_end(k, c);
        }
    }
}

static short interest(const conn *c, double t)
{
    short events = 0;
    if (c->st == S_CONNECTING)
        return POLLOUT;
    if (c->p.reads || c->st == S_HALF_WAIT)
        events |= POLLIN;
    if (c->st == S_SENDING && t >= c->next_send)
        events |= POLLOUT;
    return events;
}

static void conn_event(soak *k, conn *c, short revents)
{
    if (c->st == S_CONNECTING) {
        if (revents & (POLLOUT | POLLERR | POLLHUP))
            conn_connected(k, c);
        return;
    }
    if (revents & POLLIN)
        conn_read(k, c);
    if (c->st != S_FREE && (revents & (POLLERR | POLLHUP)) && !(revents & POLLIN))
        conn_lost(k, c);
    if (c->st == S_SENDING && (revents & POLLOUT))
        conn_write(k, c);
}

/* One poll over the server's stderr and every open connection. */
static void poll_once(soak *k, int timeout_ms)
{
    struct pollfd fds[MAX_CONNECTIONS + 2];
    conn *owner[MAX_CONNECTIONS + 2];
    double t = now_ms();
    int n = 0, i;
    fds[n].fd = k->srv.err_fd, fds[n].events = POLLIN, owner[n++] = NULL;
    for (i = 0; i <= k->o.connections; i++) {
        conn *c = i < k->o.connections ? &k->conns[i] : &k->probe;
        if (c->st == S_FREE)
            continue;
        fds[n].fd = c->fd, fds[n].events = interest(c, t), owner[n++] = c;
    }
    if (poll(fds, (nfds_t)n, timeout_ms) <= 0)
        return;
    if (fds[0].revents)
        drain_stderr(&k->srv);
    for (i = 1; i < n; i++)
        if (fds[i].revents && owner[i]->st != S_FREE)
            conn_event(k, owner[i], fds[i].revents);
}

/* ---- the monitor ---- */

static void close_all(soak *k)
{
    int i;
    for (i = 0; i < k->o.connections; i++)
        if (k->conns[i].st != S_FREE)
            conn_free(k, &k->conns[i]);
    if (k->probe.st != S_FREE) {
        k->st.probes--;   /* neither answered nor lost: it never had a chance */
        conn_free(k, &k->probe);
    }
}

/* What the crash report's log holds: the server's last words, and the
 * connections open at its death or ended just before. */
static void log_crash(soak *k, const char *death, double t)
{
    int i;
    logf_(k, "\n=== crash %d at %.3f s: %s\n--- server stderr (last %zu bytes):\n%.*s\n--- open connections:\n",
          k->st.crashes, (t - k->t0) / 1e3, death, k->srv.tail_len, (int)k->srv.tail_len, k->srv.tail);
    for (i = 0; i < k->o.connections; i++) {
        char what[200];
        if (k->conns[i].st == S_FREE)
            continue;
        describe_conn(&k->conns[i], what, sizeof what);
        logf_(k, "  %s\n", what);
    }
    logf_(k, "--- ended in the last 500 ms:\n");
    for (i = 0; i < RECENT; i++) {
        const recent *r = &k->recents[i];
        if (r->number && t - r->ended <= 500)
            logf_(k, "  %s (%.0f ms before)\n", r->what, t - r->ended);
    }
}

static void record_crash(soak *k, int status)
{
    char death[96];
    double t = now_ms();
    describe_death(status, death, sizeof death);
    k->st.crashes++;
    if (k->st.crashes <= MAX_CRASHES)
        snprintf(k->st.crash[k->st.crashes - 1], sizeof k->st.crash[0], "crash %d at %.1f s: %s",
                 k->st.crashes, (t - k->t0) / 1e3, death);
    drain_stderr(&k->srv);
    log_crash(k, death, t);
    if (k->srv.peak_kib > k->st.peak_kib)
        k->st.peak_kib = k->srv.peak_kib;
    close_all(k);
    close(k->srv.err_fd);
    k->srv.pid = 0;
}

/* Notices the server's death (recording it and restarting it when asked).
 * 1 while it runs. */
static int watch_server(soak *k, int restart)
{
    int status;
    if (k->srv.pid == 0)
        return 0;
    if (waitpid(k->srv.pid, &status, WNOHANG) != k->srv.pid)
        return 1;
    record_crash(k, status);
    k->refused_at = 0;
    if (k->probe_cut_at > 0)   /* the crash cut it, not a hang */
        k->st.probes--, k->probe_cut_at = 0;
    if (!restart)
        return 0;
    if (server_start(&k->srv) != 0) {
        fprintf(stderr, "soak: the server did not start again after crash %d\n", k->st.crashes);
        exit(2);
    }
    return 1;
}

/* Opens connections in the free slots; after a refusal, none for a while
 * (the server is most likely dying, and the monitor will soon know), then
 * one at a time until one connects. */
static void fill_slots(soak *k, double t)
{
    int i;
    if (k->refused_at > 0 && t - k->refused_at < REFUSED_PAUSE_MS)
        return;
    for (i = 0; i < k->o.connections; i++) {
        if (k->conns[i].st != S_FREE)
            continue;
        conn_open(k, &k->conns[i]);
        if (k->refused_at > 0)
            break;
    }
}

static void tick_all(soak *k, double t)
{
    int i;
    for (i = 0; i < k->o.connections; i++)
        conn_tick(k, &k->conns[i], t);
    conn_tick(k, &k->probe, t);
}

/* A probe the server closed unanswered, while it went on living. */
static void settle_cut_probe(soak *k, double t)
{
    if (k->probe_cut_at == 0 || t - k->probe_cut_at < 200)
        return;
    k->st.probes_lost++;
    logf_(k, "%.1f s: the server closed a probe without answering\n", (k->probe_cut_at - k->t0) / 1e3);
    k->probe_cut_at = 0;
}

/* The attack, for the whole run. */
static void run_attack(soak *k)
{
    double end = k->t0 + k->o.seconds * 1e3, t;
    while (!interrupted && (t = now_ms()) < end) {
        watch_server(k, 1);
        settle_cut_probe(k, t);
        if (t >= k->next_rss) {
            sample_rss(&k->srv);
            k->next_rss = t + RSS_EVERY_MS;
        }
        fill_slots(k, t);
        if (k->probe.st == S_FREE && t >= k->next_probe) {
            probe_open(k);
            k->next_probe = t + PROBE_EVERY_MS;
        }
        tick_all(k, t);
        poll_once(k, 10);
    }
    close_all(k);
}

/* After the attack: does add(1,2) still come back, within the bound? */
static int check_alive(soak *k)
{
    uint64_t answered = k->st.probes_answered;
    double give_up = now_ms() + PROBE_BOUND_MS + 100;
    usleep(200000);   /* the server notices the attackers have gone */
    probe_open(k);
    while (k->probe.st != S_FREE && now_ms() < give_up && watch_server(k, 0)) {
        conn_tick(k, &k->probe, now_ms());
        poll_once(k, 10);
    }
    if (k->probe.st != S_FREE)
        conn_free(k, &k->probe);
    return k->st.probes_answered > answered;
}

/* ---- the report ---- */

static void print_counts(const char *const *names, const uint64_t *counts, int from, int n)
{
    int i;
    for (i = from; i < n; i++)
        printf("%s%s %" PRIu64, i > from ? ", " : "", names[i], counts[i]);
}

static void print_report(const soak *k, int alive, const char *stopped)
{
    const stats *s = &k->st;
    int i;
    printf("connections tried: %" PRIu64 " (", s->tried);
    print_counts(kind_names, s->by_kind, 0, K_PROBE);
    printf(")\n  mutations: ");
    print_counts(mutation_names, s->by_mutation, 1, M_COUNT);
    printf("\n  endings: ");
    print_counts(ending_names, s->by_ending, 0, E_COUNT);
    printf("; after a half-close the server closed %" PRIu64 ", not within %d ms %" PRIu64 "\n",
           s->half_eof, HALF_CLOSE_BOUND_MS, s->half_timeout);
    printf("  closed by the server first: %" PRIu64 ", refused or failed to connect: %" PRIu64
           ", frames read back: %" PRIu64 "\n", s->server_closed, s->refused, s->frames_read);
    printf("probes (add every %d ms): %" PRIu64 " answered of %" PRIu64 ", slowest %.0f ms, later than %d ms %"
           PRIu64 ", unanswered %" PRIu64 "\n", PROBE_EVERY_MS, s->probes_answered, s->probes,
           s->probe_worst_ms, PROBE_LATE_MS, s->probes_late, s->probes_lost);
    printf("crashes: %d\n", s->crashes);
    for (i = 0; i < s->crashes && i < MAX_CRASHES; i++)
        printf("  %s\n", s->crash[i]);
    printf("peak RSS: %ld MiB (VmHWM, max over %d server%s; ", (s->peak_kib + 1023) / 1024, s->crashes + 1,
           s->crashes ? "s" : "");
    if (k->o.max_rss_mib > 0)
        printf("limit %ld MiB)\n", k->o.max_rss_mib);
    else
        printf("no limit)\n");
    if (s->end_kib)
        printf("RSS at the end: %ld MiB (VmRSS, the attackers gone)\n", (s->end_kib + 1023) / 1024);
    printf("server alive at the end: %s\n", alive ? "yes" : "no");
    printf("stopped by SIGTERM: %s\n", stopped);
    if (k->log)
        printf("details: %s\n", k->o.log);
}

/* 0 when the server passed. */
static int verdict(const soak *k, int alive)
{
    int rss_over = k->o.max_rss_mib > 0 && k->st.peak_kib > k->o.max_rss_mib * 1024;
    if (k->st.crashes == 0 && alive && !rss_over) {
        printf("soak: PASS\n");
        return 0;
    }
    printf("soak: FAIL (");
    if (k->st.crashes)
        printf("%d crash%s%s", k->st.crashes, k->st.crashes > 1 ? "es" : "", !alive || rss_over ? ", " : "");
    if (!alive)
        printf("not alive at the end%s", rss_over ? ", " : "");
    if (rss_over)
        printf("peak RSS over %ld MiB", k->o.max_rss_mib);
    printf(")\n");
    return 1;
}

/* ---- options ---- */

static void usage(void)
{
    fprintf(stderr, "usage: soak [--seconds N] [--seed S] [--connections N] [--only KIND|MUTATION] "
                    "[--ending fin|rst|half-close|drop] [--max-rss-mib N] [--log FILE]\n"
                    "            [--sigpipe default|ignore] -- SERVER ARGV...\n"
                    "  kinds: random mutated pipeline flood slow; mutations: flip truncate wrong-length\n"
                    "  huge-length bad-header duplicates deep tiny-arrays big-batch bad-values\n");
    exit(2);
}

static int find_name(const char *const *names, int n, const char *name)
{
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* --only names a kind, or a mutation (of the mutated kind). */
static void parse_only(choice *only, const char *name)
{
    int k = find_name(kind_names, K_PROBE, name), m = find_name(mutation_names, M_COUNT, name);
    if (k < 0 && m <= 0)
        usage();
    only->k = k >= 0 ? k : K_MUTATED;
    only->m = k >= 0 ? -1 : m;
}

static void parse_ending(choice *only, const char *name)
{
    if ((only->e = find_name(ending_names, E_COUNT, name)) < 0)
        usage();
}

/* The index of the server's argv in argv. */
static int parse(int argc, char **argv, options *o)
{
    int i;
    o->seconds = 60;
    o->seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    o->seed %= 1000000000u;   /* short enough to type back */
    o->connections = 24;
    o->max_rss_mib = 64;
    o->only.k = o->only.m = o->only.e = -1;
    for (i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(f, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--connections")) o->connections = atoi(v);
        else if (!strcmp(f, "--max-rss-mib")) o->max_rss_mib = atol(v);
        else if (!strcmp(f, "--log")) o->log = v;
        else if (!strcmp(f, "--sigpipe") && (!strcmp(v, "ignore") || !strcmp(v, "default")))
            o->ignore_sigpipe = !strcmp(v, "ignore");
        else if (!strcmp(f, "--only")) parse_only(&o->only, v);
        else if (!strcmp(f, "--ending")) parse_ending(&o->only, v);
        else usage();
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc || o->seconds <= 0 || o->seconds > 86400
        || o->connections < 1 || o->connections > MAX_CONNECTIONS)
        usage();
    return i + 1;
}

static void print_banner(const soak *k, char **server_argv)
{
    int i;
    printf("soak: seed %" PRIu64 ", %g s, %d connections, server:", k->o.seed, k->o.seconds, k->o.connections);
    for (i = 0; server_argv[i]; i++)
        printf(" %s", server_argv[i]);
    printf(" (pid %d, port %d%s)\n", (int)k->srv.pid, k->srv.port,
           k->o.ignore_sigpipe ? ", started with SIGPIPE ignored" : "");
    fflush(stdout);
}

static void init_conns(soak *k)
{
    int i;
    for (i = 0; i < MAX_CONNECTIONS; i++)
        k->conns[i].fd = -1;
    k->probe.fd = -1;
}

int main(int argc, char **argv)
{
    static soak k;   /* large: not on the stack */
    char stopped[128];
    int alive, first = parse(argc, argv, &k.o);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    init_conns(&k);
    k.srv.argv = argv + first;
    k.srv.ignore_sigpipe = k.o.ignore_sigpipe;
    if (k.o.log && (k.log = fopen(k.o.log, "w")) == NULL)
        fprintf(stderr, "soak: cannot write %s: %s\n", k.o.log, strerror(errno));
    if (server_start(&k.srv) != 0) {
        fprintf(stderr, "soak: the server died or did not print its port within %d ms:\n%.*s\n", START_BOUND_MS,
                (int)k.srv.tail_len, k.srv.tail);
        if (k.srv.pid > 0)
            server_stop(&k.srv, stopped, sizeof stopped);
        return 2;
    }
    print_banner(&k, argv + first);
    k.t0 = now_ms();
    run_attack(&k);
    alive = check_alive(&k);
    if (k.srv.pid > 0) {
        sample_rss(&k.srv);
        k.st.end_kib = read_status_kib(k.srv.pid, "VmRSS");
        if (k.srv.peak_kib > k.st.peak_kib)
            k.st.peak_kib = k.srv.peak_kib;
        server_stop(&k.srv, stopped, sizeof stopped);
    } else {
        snprintf(stopped, sizeof stopped, "no: it had died");
    }
    print_report(&k, alive, stopped);
    if (k.log)
        fclose(k.log);
    return verdict(&k, alive);
}
