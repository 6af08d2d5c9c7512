/* A JSON-RPC load generator on libuv, in C so that it does not compete for
 * the CPU the way a Node or Lua client would.
 *
 *   loadgen HOST PORT [-c CONNECTIONS] [-n IN_FLIGHT] [-d SECONDS]
 *           [-b BATCH] [-m METHOD] [-p PARAMS_JSON] [-w WARMUP_SECONDS]
 *
 * Holds IN_FLIGHT requests (or batches of BATCH requests) in flight on each
 * connection, content-length framing, for SECONDS after a warm-up; checks
 * that every response carries a result and an id that is in flight. Prints
 * one JSON line: calls, seconds, calls_per_s, p50_us, p99_us, errors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_IN_FLIGHT 4096
#define HIST_BUCKETS 4096   /* latency histogram, 10 us wide, the last open */

typedef struct options {
    const char *host, *method, *params;
    int port, connections, in_flight, batch;
    double seconds, warmup;
} options;

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    char *buf;                /* received bytes */
    size_t len, cap;
    uint64_t next_id;
    uint64_t sent_at[2 * MAX_IN_FLIGHT];   /* by id, for the ids in flight */
    int in_flight;
    char *out;                /* requests not written yet: one write per read */
    size_t out_len, out_cap;
    struct bench *b;
} conn;

typedef struct bench {
    options o;
    uv_loop_t *loop;
    conn *conns;
    int measuring, stopping, open;
    uint64_t start_ns, end_ns;
    uint64_t calls, errors;
    uint64_t hist[HIST_BUCKETS];
    uv_timer_t warmup_timer, stop_timer;
} bench;

typedef struct write_req {
    uv_write_t req;
    char data[1];
} write_req;

static void die(const char *what, int rc)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, rc ? uv_strerror(rc) : "");
    exit(2);
}

static void wrote(uv_write_t *req, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        fprintf(stderr, "loadgen: write: %s\n", uv_strerror(status));
    free(req);
}

/* One request (or a batch of them) framed and written. */
static void send_one(conn *c)
{
    bench *b = c->b;
    char body[65536], *p = body;
    size_t room = sizeof body;
    int i, n;
    uint64_t first = c->next_id;
    if (b->o.batch > 1)
        *p++ = '[', room--;
    for (i = 0; i < (b->o.batch > 1 ? b->o.batch : 1); i++) {
        n = snprintf(p, room, "%s{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":%s,\"id\":%" PRIu64 "}",
                     i ? "," : "", b->o.method, b->o.params, c->next_id++);
        if (n < 0 || (size_t)n >= room)
            die("request too large", 0);
        p += n;
        room -= (size_t)n;
    }
    if (b->o.batch > 1)
        *p++ = ']';
    {
        size_t blen = (size_t)(p - body);
        char head[64];
        int hlen = sprintf(head, "Content-Length: %zu\r\n\r\n", blen);
        if (c->out_cap - c->out_len < (size_t)hlen + blen) {
            c->out_cap = (c->out_len + (size_t)hlen + blen) * 2;
            c->out = (char *)realloc(c->out, c->out_cap);
        }
        memcpy(c->out + c->out_len, head, (size_t)hlen);
        memcpy(c->out + c->out_len + hlen, body, blen);
        c->out_len += (size_t)hlen + blen;
        c->sent_at[first % (2 * MAX_IN_FLIGHT)] = uv_hrtime();
        c->in_flight++;
    }
}

/* Writes the queued requests in one write. */
static void flush(conn *c)
{
    write_req *w;
    uv_buf_t buf;
    if (c->out_len == 0)
        return;
    w = (write_req *)malloc(sizeof *w + c->out_len);
    memcpy(w->data, c->out, c->out_len);
    buf = uv_buf_init(w->data, (unsigned)c->out_len);
    c->out_len = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, wrote) != 0)
        die("write", 0);
}

static void record(bench *b, uint64_t ns, uint64_t calls)
{
    uint64_t bucket = ns / 10000;
    if (!b->measuring)
        return;
    b->hist[bucket < HIST_BUCKETS ? bucket : HIST_BUCKETS - 1] += 1;
    b->calls += calls;
}

static void closed(uv_handle_t *h)
{
    conn *c = (conn *)h->data;
    if (--c->b->open == 0)
        uv_stop(c->b->loop);
}

/* A response body: checks it and returns the first id in it. */
static int check_response(conn *c, const char *body, size_t len, uint64_t *first, uint64_t *count)
{
    const char *p = body, *end = body + len;
    uint64_t n = 0;
    int ok = 1;
    *first = UINT64_MAX;
    while (p < end) {
        const char *id = memmem(p, (size_t)(end - p), "\"id\":", 5);
        if (id == NULL)
            break;
        {
            uint64_t v = strtoull(id + 5, NULL, 10);
            if (v < *first)
                *first = v;
        }
        n++;
        p = id + 5;
    }
    if (n == 0 || memmem(body, len, "\"error\"", 7) != NULL || memmem(body, len, "\"result\"", 8) == NULL)
        ok = 0;
    (void)c;
    *count = n;
    return ok;
}

static void on_frame(conn *c, const char *body, size_t len)
{
    bench *b = c->b;
    uint64_t first, count;
    if (!check_response(c, body, len, &first, &count) || first == UINT64_MAX) {
        b->errors++;
    } else {
        record(b, uv_hrtime() - c->sent_at[first % (2 * MAX_IN_FLIGHT)], count);
    }
    c->in_flight--;
    if (!b->stopping)
        send_one(c);
    else if (c->in_flight == 0)
        uv_close((uv_handle_t *)&c->tcp, closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = (conn *)h->data;
    if (c->cap - c->len < suggested) {
        c->cap = c->len + suggested < 2 * c->cap ? 2 * c->cap : c->len + suggested;
        c->buf = (char *)realloc(c->buf, c->cap);
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = (conn *)s->data;
    size_t at = 0;
    (void)buf;
    if (n < 0) {
        fprintf(stderr, "loadgen: read: %s\n", uv_strerror((int)n));
        exit(2);
    }
    c->len += (size_t)n;
    for (;;) {   /* whole frames */
        const char *head = c->buf + at, *sep;
        size_t avail = c->len - at, blen;
        sep = memmem(head, avail, "\r\n\r\n", 4);
        if (sep == NULL)
            break;
        blen = strtoul(strchr(head, ':') + 1, NULL, 10);
        if ((size_t)(sep + 4 - head) + blen > avail)
            break;
        on_frame(c, sep + 4, blen);
        at += (size_t)(sep + 4 - head) + blen;
        if (uv_is_closing((uv_handle_t *)&c->tcp))
            return;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
    flush(c);
}

static void connected(uv_connect_t *req, int status)
{
    conn *c = (conn *)req->data;
    int i;
    if (status < 0)
        die("connect", status);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    for (i = 0; i < c->b->o.in_flight; i++)
        send_one(c);
    flush(c);
}

static void start_measuring(uv_timer_t *t)
{
    bench *b = (bench *)t->data;
    b->measuring = 1;
    b->start_ns = uv_hrtime();
}

static void stop(uv_timer_t *t)
{
    bench *b = (bench *)t->data;
    b->measuring = 0;
    b->stopping = 1;
    b->end_ns = uv_hrtime();
}

static double percentile(const bench *b, double q)
{
    uint64_t total = 0, seen = 0;
    int i;
    for (i = 0; i < HIST_BUCKETS; i++)
        total += b->hist[i];
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += b->hist[i];
        if (total && (double)seen >= q * (double)total)
            return (i + 0.5) * 10.0;
    }
    return 0;
}

static void parse(int argc, char **argv, options *o)
{
    int i;
    if (argc < 3) {
        fprintf(stderr, "usage: loadgen HOST PORT [-c CONNS] [-n IN_FLIGHT] [-d SECONDS] "
                        "[-b BATCH] [-m METHOD] [-p PARAMS] [-w WARMUP]\n");
        exit(2);
    }
    o->host = argv[1];
    o->port = atoi(argv[2]);
    o->connections = 1;
    o->in_flight = 1;
    o->batch = 1;
    o->seconds = 3;
    o->warmup = 0.5;
    o->method = "add";
    o->params = "[1,2]";
    for (i = 3; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "-c")) o->connections = atoi(v);
        else if (!strcmp(f, "-n")) o->in_flight = atoi(v);
        else if (!strcmp(f, "-d")) o->seconds = atof(v);
        else if (!strcmp(f, "-b")) o->batch = atoi(v);
        else if (!strcmp(f, "-m")) o->method = v;
        else if (!strcmp(f, "-p")) o->params = v;
        else if (!strcmp(f, "-w")) o->warmup = atof(v);
        else { fprintf(stderr, "loadgen: unknown flag %s\n", f); exit(2); }
    }
    if (o->in_flight < 1 || o->in_flight > MAX_IN_FLIGHT || o->connections < 1 || o->batch < 1)
        die("bad counts", 0);
}

int main(int argc, char **argv)
{
    bench b;
    struct sockaddr_in addr;
    int i;
    double secs;
    memset(&b, 0, sizeof b);
    parse(argc, argv, &b.o);
    b.loop = uv_default_loop();
    if (uv_ip4_addr(b.o.host, b.o.port, &addr) != 0)
        die("address", 0);
    b.conns = (conn *)calloc((size_t)b.o.connections, sizeof *b.conns);
    for (i = 0; i < b.o.connections; i++) {
        conn *c = &b.conns[i];
        c->b = &b;
        c->next_id = 1;
        uv_tcp_init(b.loop, &c->tcp);
        uv_tcp_nodelay(&c->tcp, 1);
        c->tcp.data = c;
        c->connect.data = c;
        b.open++;
        if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, connected) != 0)
            die("connect", 0);
    }
    uv_timer_init(b.loop, &b.warmup_timer);
    uv_timer_init(b.loop, &b.stop_timer);
    b.warmup_timer.data = b.stop_timer.data = &b;
    uv_timer_start(&b.warmup_timer, start_measuring, (uint64_t)(b.o.warmup * 1000), 0);
    uv_timer_start(&b.stop_timer, stop, (uint64_t)((b.o.warmup + b.o.seconds) * 1000), 0);
    uv_unref((uv_handle_t *)&b.warmup_timer);
    uv_unref((uv_handle_t *)&b.stop_timer);
    uv_run(b.loop, UV_RUN_DEFAULT);
    secs = (double)(b.end_ns - b.start_ns) / 1e9;
    printf("{\"calls\":%" PRIu64 ",\"seconds\":%.3f,\"calls_per_s\":%.0f,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"errors\":%" PRIu64 "}\n",
           b.calls, secs, secs > 0 ? (double)b.calls / secs : 0.0, percentile(&b, 0.5),
           percentile(&b, 0.99), b.errors);
    return b.errors ? 1 : 0;
}
