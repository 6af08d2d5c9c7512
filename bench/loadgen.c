/* A JSON-RPC load generator on libuv, in C so that it does not compete for
 * the CPU the way a Node or Lua client would.
 *
 *   loadgen HOST PORT [-c CONNECTIONS] [-n IN_FLIGHT] [-b BATCH]
 *           [-m METHOD] [-p PARAMS_JSON | -P PARAMS_FILE] [-r RESULT_JSON]
 *           [-L RESULT_LENGTH] [-s ECHO_BYTES]
 *           [-d SECONDS] [-w WARMUP_SECONDS]        duration mode (default)
 *           [-N CALLS] [-W WARMUP_CALLS]            count mode
 *           [-o NOTIFICATIONS] [-W WARMUP_NOTIFICATIONS]   one-way mode
 *           [-R CALLS_PER_SECOND]                   open-loop mode
 *   loadgen stdio: [options as above] -- SERVER_ARGV...
 *
 * Holds IN_FLIGHT requests (or batches of BATCH requests) in flight on each
 * connection, content-length framing, sending a new one for each answer
 * (written every 2 KiB, so that client and server work at the same time
 * rather than in turns), and checks every response at its top level: an
 * integer id that is in flight (each answered once), a result and no
 * error, a batch answered with as many responses as it had requests, and
 * the result itself when it is known: -r RESULT_JSON, 3 for the default
 * `add` of [1,2], and with -s the echoed string byte for byte. -s sends
 * `echo` with a string of ECHO_BYTES letters whose first letters spell the
 * request's id, so that no two calls send the same string (LuaJIT interns
 * strings: a string equal to one still alive costs no copy, which no real
 * traffic gets). Duration mode measures for
 * SECONDS after a warm-up; count mode measures CALLS calls after WARMUP_CALLS.
 * One-way mode calls `stream(NOTIFICATIONS)` and counts the `tick`
 * notifications the server sends before its answer (checking that they
 * arrive in order); the rate is notifications per second.
 * Open-loop mode (-R, with -d and -w) sends calls at a fixed rate over the
 * connections, never waiting for answers, so a server that stalls is
 * charged for every call sent meanwhile (no coordinated omission). The
 * calls due go out each millisecond (libuv's timer resolution), each timed
 * from that write. More than half the id ring in flight on a connection
 * stops the run as overloaded.
 * With stdio: in place of HOST PORT, the server is a child started from
 * SERVER_ARGV, spoken to over its stdin and stdout (one connection), as an
 * editor runs a language server; closing its stdin ends it.
 * Prints one JSON line: calls, seconds, calls_per_s, p50_us, p99_us,
 * p999_us, errors,
 * loadgen_cpu_s (its own CPU over the measured window) and saturated (1
 * when that was over 90% of the window: the rate may be the generator's);
 * with stdio also server_cpu_s (the child's CPU over the window, from
 * /proc) and server_rss (its peak resident bytes). */
#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include "answers.h"
#include "frames.h"

#define MAX_IN_FLIGHT 4096
#define EARLY_FLUSH 2048              /* request bytes written before a read ends */
#define ID_RING (2 * MAX_IN_FLIGHT)   /* send times by id, for the ids in flight */
/* Latency histogram: 1 us buckets up to FINE_US, then 1 ms buckets; the
 * last is open. */
#define FINE_US 100000
#define HIST_BUCKETS (FINE_US + 100000)

/* A growing byte buffer. */
typedef struct bytes {
    char *p;
    size_t len, cap;
} bytes;

typedef struct options {
    const char *host, *method, *params, *result;
    char **server_argv;       /* stdio: the child to start, NULL for TCP */
    size_t result_len;        /* -L: the result's length, when its bytes vary */
    int port, connections, in_flight, batch;
    double seconds, warmup, rate;
    uint64_t echo_bytes, calls, warmup_calls, notifications;
} options;

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_pipe_t to_child, from_child;   /* stdio: the child's stdin and stdout */
    uv_stream_t *rd, *wr;     /* where answers come from and requests go */
    inbuf in;                 /* received bytes */
    uint64_t next_id;
    uint64_t sent_at[ID_RING];
    uint64_t awaiting[ID_RING];   /* the id whose answer is due in each slot, or 0 */
    int in_flight;
    bytes out;           /* requests not written yet: one write per read */
    bytes body;          /* scratch for the request being made */
    uint64_t ticks;           /* one-way mode: notifications seen in this call */
    uint64_t due;             /* open-loop mode: calls sent so far */
    uint64_t send_time;       /* open-loop mode: when the calls being sent go out */
    struct bench *b;
} conn;

typedef struct bench {
    options o;
    uv_loop_t *loop;
    conn *conns;
    bytes params;        /* the params text of every request */
    int measuring, stopping, open, connecting;
    uint64_t start_ns, end_ns;
    double cpu_start, cpu_s;  /* this process's CPU seconds: at the start, over the window */
    uint64_t calls, errors, completed, sent;
    uint64_t *hist;
    uv_timer_t warmup_timer, stop_timer, pace_timer;
    uint64_t open_at;         /* open-loop mode: when the first call was due */
    uv_process_t child;       /* stdio: the server */
    uv_timer_t kill_timer;    /* stdio: kills a child that outlives its stdin */
    double child_cpu_start, child_cpu_s;
    uint64_t child_rss;
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

static void put(bytes *o, const char *p, size_t n)
{
    if (o->cap - o->len < n) {
        o->cap = (o->len + n) * 2;
        o->p = (char *)must(realloc(o->p, o->cap));
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

/* The params of every request: -p as given, or for -s a string of letters. */
static void make_params(bench *b)
{
    uint64_t i, n = b->o.echo_bytes;
    if (n == 0) {
        put(&b->params, b->o.params, strlen(b->o.params));
        return;
    }
    put(&b->params, "[\"", 2);
    for (i = 0; i < n; i++) {
        char letter = (char)('a' + i % 26);
        put(&b->params, &letter, 1);
    }
    put(&b->params, "\"]", 2);
}

/* An echo string's first letters: the id in base 26, as many letters as
 * the string has up to ID_STAMP. */
#define ID_STAMP 14
static size_t stamp_len(const bench *b)
{
    return b->o.echo_bytes < ID_STAMP ? (size_t)b->o.echo_bytes : ID_STAMP;
}

static void id_stamp(uint64_t id, char stamp[ID_STAMP])
{
    int i;
    for (i = ID_STAMP - 1; i >= 0; i--, id /= 26)
        stamp[i] = (char)('a' + id % 26);
}

/* The params of one request: for -s, the string stamped with its id. */
static void put_params(bench *b, bytes *o, uint64_t id)
{
    char stamp[ID_STAMP];
    size_t k = stamp_len(b);
    if (b->o.echo_bytes == 0) {
        put(o, b->params.p, b->params.len);
        return;
    }
    id_stamp(id, stamp);
    put(o, "[\"", 2);
    put(o, stamp + ID_STAMP - k, k);
    put(o, b->params.p + 2 + k, b->params.len - 2 - k);
}

/* The text of one request with the given id. */
static void put_request(bench *b, bytes *o, const char *method, uint64_t id)
{
    char text[128];
    int n = snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":", method);
    put(o, text, (size_t)n);
    put_params(b, o, id);
    n = snprintf(text, sizeof text, ",\"id\":%" PRIu64 "}", id);
    put(o, text, (size_t)n);
}

/* One request (or a batch of them) framed and queued. */
static void send_one(conn *c, const char *method)
{
    bench *b = c->b;
    int i, count = b->o.batch > 1 ? b->o.batch : 1;
    char head[64];
    int hlen;
    c->body.len = 0;
    if (b->o.batch > 1)
        put(&c->body, "[", 1);
    for (i = 0; i < count; i++) {
        uint64_t id = c->next_id + (uint64_t)i;
        if (i)
            put(&c->body, ",", 1);
        put_request(b, &c->body, method, id);
        c->awaiting[id % ID_RING] = id;
    }
    if (b->o.batch > 1)
        put(&c->body, "]", 1);
    hlen = sprintf(head, "Content-Length: %zu\r\n\r\n", c->body.len);
    put(&c->out, head, (size_t)hlen);
    put(&c->out, c->body.p, c->body.len);
    c->sent_at[c->next_id % ID_RING] = c->send_time ? c->send_time : uv_hrtime();
    c->next_id += (uint64_t)count;
    c->in_flight++;
}

/* Writes the queued requests in one write. */
static void flush(conn *c)
{
    write_req *w;
    uv_buf_t buf;
    if (c->out.len == 0)
        return;
    w = (write_req *)must(malloc(sizeof *w + c->out.len));
    memcpy(w->data, c->out.p, c->out.len);
    buf = uv_buf_init(w->data, (unsigned)c->out.len);
    c->out.len = 0;
    if (uv_write(&w->req, c->wr, &buf, 1, wrote) != 0)
        die("write", 0);
}

/* This process's CPU time so far (user and system), in seconds. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A process's CPU seconds so far and its peak RSS in bytes, from /proc
 * (stdio: the server is our child; 0 where /proc is not there). */
static double proc_cpu(int pid)
{
    char path[64], text[1024];
    const char *p;
    unsigned long utime = 0, stime = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* after the command's closing parenthesis: state is field 3, utime 14 */
    if ((p = strrchr(text, ')')) == NULL
        || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t proc_peak_rss(int pid)
{
    char path[64], line[256];
    unsigned long long kb = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

static void start_measuring(bench *b)
{
    b->measuring = 1;
    b->start_ns = uv_hrtime();
    b->cpu_start = cpu_now();
    if (b->o.server_argv != NULL)
        b->child_cpu_start = proc_cpu(b->child.pid);
}

static void stop_measuring(bench *b)
{
    if (b->measuring) {
        b->end_ns = uv_hrtime();
        b->cpu_s = cpu_now() - b->cpu_start;
        if (b->o.server_argv != NULL) {
            b->child_cpu_s = proc_cpu(b->child.pid) - b->child_cpu_start;
            b->child_rss = proc_peak_rss(b->child.pid);
        }
    }
    b->measuring = 0;
    b->stopping = 1;
}

static void record(bench *b, uint64_t ns, uint64_t calls)
{
    uint64_t us = ns / 1000;
    uint64_t bucket = us < FINE_US ? us : FINE_US + (us - FINE_US) / 1000;
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

static void kill_child(uv_timer_t *t)
{
    bench *b = (bench *)t->data;
    uv_process_kill(&b->child, SIGKILL);
}

static void child_exited(uv_process_t *p, int64_t status, int signal)
{
    (void)status;
    (void)signal;
    uv_close((uv_handle_t *)p, closed);
}

static int is_closing(conn *c) { return uv_is_closing((uv_handle_t *)c->rd); }

/* Ends a connection; for stdio, closing the child's stdin ends the child,
 * which is given 5 s before it is killed. */
static void close_conn(conn *c)
{
    bench *b = c->b;
    if (is_closing(c))
        return;
    uv_close((uv_handle_t *)c->rd, closed);
    if (c->wr != c->rd)
        uv_close((uv_handle_t *)c->wr, closed);
    if (b->o.server_argv != NULL)
        uv_timer_start(&b->kill_timer, kill_child, 5000, 0);
}

/* The result a response must carry, when it is known: its text and
 * length (NULL when anything goes). An echo's string is checked apart. */
static const char *expected_result(const bench *b, size_t *len)
{
    if (b->o.result != NULL) {
        *len = strlen(b->o.result);
        return b->o.result;
    }
    return NULL;
}

/* Whether an echo's result is the string sent with this id. */
static int is_echo_of(const bench *b, uint64_t id, const char *result, size_t len)
{
    char stamp[ID_STAMP];
    size_t k = stamp_len(b), n = b->params.len - 2;   /* the string, quotes included */
    if (len != n || result[0] != '"')
        return 0;
    id_stamp(id, stamp);
    return memcmp(result + 1, stamp + ID_STAMP - k, k) == 0
           && memcmp(result + 1 + k, b->params.p + 2 + k, n - 1 - k) == 0;
}

/* What the responses in one answer came to. */
typedef struct tally {
    conn *c;
    uint64_t good, bad, first;
} tally;

static void check_one(void *ud, const message *m)
{
    tally *t = (tally *)ud;
    conn *c = t->c;
    const char *want;
    size_t want_len = 0;
    uint64_t id = (uint64_t)m->id;
    if (!m->has_id || !m->id_is_integer || m->id <= 0 || c->awaiting[id % ID_RING] != id) {
        t->bad++;   /* an id not in flight: unknown, or answered already */
        return;
    }
    c->awaiting[id % ID_RING] = 0;
    want = expected_result(c->b, &want_len);
    if (m->error != NULL || m->result == NULL
        || (want != NULL && (m->result_len != want_len || memcmp(m->result, want, want_len) != 0))
        || (c->b->o.echo_bytes > 0 && !is_echo_of(c->b, id, m->result, m->result_len))
        || (c->b->o.result_len > 0 && m->result_len != c->b->o.result_len))
        t->bad++;
    else
        t->good++;
    if (id < t->first)
        t->first = id;
}

/* Checks one answer (a response, or a batch's array) in one pass: the
 * number of good responses and of bad ones, and the lowest id answered. */
static void check_response(conn *c, const char *body, size_t len, tally *t)
{
    const bench *b = c->b;
    long want = b->o.batch > 1 ? b->o.batch : 1, n;
    const char *p = json_space(body, body + len);
    t->c = c;
    t->good = t->bad = 0;
    t->first = UINT64_MAX;
    n = json_each_message(p, body + len, check_one, t);
    /* a batch is answered by an array of as many, a call by one object */
    if (n != want || (p < body + len && (*p == '[') != (b->o.batch > 1)))
        t->bad++;
}

static int is_mode_count(const bench *b) { return b->o.calls > 0; }
static int is_mode_open(const bench *b) { return b->o.rate > 0; }
static int is_mode_one_way(const bench *b) { return b->o.notifications > 0; }

/* One-way mode: a tick must carry the next number. */
static void on_tick(conn *c, const char *body, size_t len)
{
    const char *p = memmem(body, len, "\"params\":[", 10);
    if (p == NULL || strtoull(p + 10, NULL, 10) != c->ticks + 1)
        c->b->errors++;
    c->ticks++;
}

/* One-way mode: the answer to stream(n) ends a phase (warm-up, then the
 * measured one). */
static void on_stream_end(conn *c)
{
    bench *b = c->b;
    uint64_t want = b->measuring ? b->o.notifications : b->o.warmup_calls;
    char text[64];
    if (c->ticks != want)
        b->errors++;
    c->ticks = 0;
    if (b->measuring) {
        b->calls = want;
        stop_measuring(b);
        close_conn(c);
        return;
    }
    start_measuring(b);
    snprintf(text, sizeof text, "[%" PRIu64 "]", b->o.notifications);
    b->params.len = 0;
    put(&b->params, text, strlen(text));
    send_one(c, "stream");
}

static void start_stream(conn *c)
{
    bench *b = c->b;
    char text[64];
    uint64_t first = b->o.warmup_calls ? b->o.warmup_calls : b->o.notifications;
    if (b->o.warmup_calls == 0)
        start_measuring(b);
    snprintf(text, sizeof text, "[%" PRIu64 "]", first);
    put(&b->params, text, strlen(text));
    send_one(c, "stream");
}

static void on_response(conn *c, const char *body, size_t len)
{
    bench *b = c->b;
    tally t;
    check_response(c, body, len, &t);
    b->errors += t.bad;   /* a wrong answer counts whenever it comes, warm-up too */
    if (t.bad == 0 && t.first != UINT64_MAX)
        record(b, uv_hrtime() - c->sent_at[t.first % ID_RING], t.good);
    c->in_flight--;
    if (is_mode_one_way(b)) {
        on_stream_end(c);
        return;
    }
    if (is_mode_count(b)) {
        b->completed++;
        if (b->completed == b->o.warmup_calls)
            start_measuring(b);
        if (b->completed == b->o.warmup_calls + b->o.calls)
            stop_measuring(b);
        if (!b->stopping && b->sent < b->o.warmup_calls + b->o.calls)
            b->sent++, send_one(c, b->o.method);
    } else if (!b->stopping && !is_mode_open(b)) {
        send_one(c, b->o.method);
    }
    if (b->stopping && c->in_flight == 0)
        close_conn(c);
}

static void on_frame(conn *c, const char *body, size_t len)
{
    /* A notification has a method and no id; responses have no method. */
    if (is_mode_one_way(c->b) && memmem(body, len, "\"method\":\"tick\"", 15) != NULL)
        on_tick(c, body, len);
    else
        on_response(c, body, len);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    inbuf_room(&((conn *)h->data)->in, suggested, buf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = (conn *)s->data;
    const char *body;
    size_t len;
    (void)buf;
    if (n < 0) {
        fprintf(stderr, "loadgen: read: %s\n", uv_strerror((int)n));
        exit(2);
    }
    c->in.len += (size_t)n;
    while (inbuf_next(&c->in, &body, &len)) {
        on_frame(c, body, len);
        if (is_closing(c))
            return;
        if (c->out.len >= EARLY_FLUSH)   /* the server starts on them sooner */
            flush(c);
    }
    inbuf_shift(&c->in);
    flush(c);
}

static void pace(uv_timer_t *t);

static void connected(uv_connect_t *req, int status)
{
    conn *c = (conn *)req->data;
    bench *b = c->b;
    int i;
    if (status < 0)
        die("connect", status);
    uv_read_start(c->rd, alloc_cb, read_cb);
    if (is_mode_one_way(b)) {
        start_stream(c);
    } else if (is_mode_open(b)) {
        if (--b->connecting == 0)   /* all connected: the clock starts */
            uv_timer_start(&b->pace_timer, pace, 1, 1);
    } else {
        for (i = 0; i < b->o.in_flight; i++) {
            if (is_mode_count(b)) {
                if (b->sent >= b->o.warmup_calls + b->o.calls)
                    break;
                b->sent++;
            }
            send_one(c, b->o.method);
        }
    }
    flush(c);
}

/* Open-loop mode, every millisecond: each connection sends the calls that
 * fell due meanwhile (its share of the rate). */
static void pace(uv_timer_t *t)
{
    bench *b = (bench *)t->data;
    uint64_t now = uv_hrtime();
    double per_ns = b->o.rate / 1e9 / b->o.connections;
    int i;
    if (b->stopping) {
        uv_timer_stop(t);
        for (i = 0; i < b->o.connections; i++) {
            conn *c = &b->conns[i];
            if (c->in_flight == 0)
                close_conn(c);
        }
        return;
    }
    if (b->open_at == 0)
        b->open_at = now;
    for (i = 0; i < b->o.connections; i++) {
        conn *c = &b->conns[i];
        uint64_t want = (uint64_t)((double)(now - b->open_at) * per_ns);
        while (c->due < want) {
            if (c->in_flight >= ID_RING / 2) {
                fprintf(stderr, "loadgen: overloaded: %d calls in flight on a connection\n",
                        c->in_flight);
                b->errors++;
                stop_measuring(b);
                return;
            }
            c->send_time = now;
            send_one(c, b->o.method);
            c->due++;
        }
        c->send_time = 0;
        flush(c);
    }
}

static void warmed_up(uv_timer_t *t)
{
    start_measuring((bench *)t->data);
}

static void time_up(uv_timer_t *t)
{
    stop_measuring((bench *)t->data);
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
            return i < FINE_US ? i + 0.5 : FINE_US + (i - FINE_US + 0.5) * 1000.0;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen HOST PORT [-c CONNS] [-n IN_FLIGHT] [-b BATCH] [-m METHOD] "
                    "[-p PARAMS | -P FILE] [-r RESULT] [-L RESULT_LENGTH] [-s ECHO_BYTES] [-d SECONDS] [-w WARMUP] [-N CALLS] "
                    "[-W WARMUP_CALLS] [-o NOTIFICATIONS] [-R CALLS_PER_SECOND]\n");
    exit(2);
}

/* The whole of a file, NUL-terminated (-P: params too large for a flag). */
static const char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        die("cannot read the -P file", 0);
    text = (char *)must(malloc((size_t)n + 1));
    if (fread(text, 1, (size_t)n, f) != (size_t)n)
        die("cannot read the -P file", 0);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void parse(int argc, char **argv, options *o)
{
    int i = 3, end;
    if (argc < 3)
        usage();
    o->host = argv[1];
    if (!strcmp(o->host, "stdio:")) {   /* options, then -- and the server's argv */
        for (end = 2; end < argc && strcmp(argv[end], "--") != 0; end++)
            ;
        if (end + 1 >= argc)
            usage();
        o->server_argv = argv + end + 1;
        argc = end;
        i = 2;
    } else {
        o->port = atoi(argv[2]);
    }
    o->connections = 1;
    o->in_flight = 1;
    o->batch = 1;
    o->seconds = 3;
    o->warmup = 0.5;
    o->method = "add";
    o->params = "[1,2]";
    for (; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "-c")) o->connections = atoi(v);
        else if (!strcmp(f, "-n")) o->in_flight = atoi(v);
        else if (!strcmp(f, "-d")) o->seconds = atof(v);
        else if (!strcmp(f, "-b")) o->batch = atoi(v);
        else if (!strcmp(f, "-m")) o->method = v;
        else if (!strcmp(f, "-p")) o->params = v;
        else if (!strcmp(f, "-r")) o->result = v;
        else if (!strcmp(f, "-P")) o->params = read_file(v);
        else if (!strcmp(f, "-L")) o->result_len = strtoull(v, NULL, 10);
        else if (!strcmp(f, "-s")) o->echo_bytes = strtoull(v, NULL, 10), o->method = "echo";
        else if (!strcmp(f, "-w")) o->warmup = atof(v);
        else if (!strcmp(f, "-N")) o->calls = strtoull(v, NULL, 10);
        else if (!strcmp(f, "-W")) o->warmup_calls = strtoull(v, NULL, 10);
        else if (!strcmp(f, "-o")) o->notifications = strtoull(v, NULL, 10);
        else if (!strcmp(f, "-R")) o->rate = atof(v);
        else usage();
    }
    if (i != argc || o->in_flight < 1 || o->in_flight > MAX_IN_FLIGHT || o->connections < 1
        || o->batch < 1 || (uint64_t)o->in_flight * (uint64_t)o->batch > ID_RING)
        die("bad counts", 0);
    if (o->notifications > 0)
        o->connections = 1, o->in_flight = 1, o->batch = 1;
    if (o->server_argv != NULL && o->connections != 1)
        die("stdio is one connection", 0);
    if (o->result == NULL && o->notifications == 0 && !strcmp(o->method, "add")
        && !strcmp(o->params, "[1,2]"))
        o->result = "3";   /* the default call: its answer is known */
}

/* stdio: the server as a child on two pipes, "connected" at once. */
static void start_child(bench *b)
{
    conn *c = &b->conns[0];
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    int rc;
    uv_pipe_init(b->loop, &c->to_child, 0);
    uv_pipe_init(b->loop, &c->from_child, 0);
    c->to_child.data = c->from_child.data = c;
    c->wr = (uv_stream_t *)&c->to_child;
    c->rd = (uv_stream_t *)&c->from_child;
    io[0].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE);
    io[0].data.stream = c->wr;
    io[1].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    io[1].data.stream = c->rd;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = 2;
    memset(&po, 0, sizeof po);
    po.file = b->o.server_argv[0];
    po.args = b->o.server_argv;
    po.exit_cb = child_exited;
    po.stdio = io;
    po.stdio_count = 3;
    b->child.data = c;
    if ((rc = uv_spawn(b->loop, &b->child, &po)) != 0)
        die("cannot start the server", rc);
    uv_timer_init(b->loop, &b->kill_timer);
    b->kill_timer.data = b;
    uv_unref((uv_handle_t *)&b->kill_timer);
    b->open += 3;   /* two pipes and the child */
    b->connecting = 1;
    c->connect.data = c;
    connected(&c->connect, 0);
}

int main(int argc, char **argv)
{
    bench b;
    struct sockaddr_in addr;
    int i;
    double secs;
    memset(&b, 0, sizeof b);
    parse(argc, argv, &b.o);
    b.hist = (uint64_t *)must(calloc(HIST_BUCKETS, sizeof *b.hist));
    if (!is_mode_one_way(&b))
        make_params(&b);
    b.loop = uv_default_loop();
    b.conns = (conn *)must(calloc((size_t)b.o.connections, sizeof *b.conns));
    for (i = 0; i < b.o.connections; i++) {
        b.conns[i].b = &b;
        b.conns[i].next_id = 1;
    }
    if (b.o.server_argv != NULL) {
        start_child(&b);
    } else {
        if (uv_ip4_addr(b.o.host, b.o.port, &addr) != 0)
            die("address", 0);
        for (i = 0; i < b.o.connections; i++) {
            conn *c = &b.conns[i];
            uv_tcp_init(b.loop, &c->tcp);
            uv_tcp_nodelay(&c->tcp, 1);
            c->tcp.data = c;
            c->rd = c->wr = (uv_stream_t *)&c->tcp;
            c->connect.data = c;
            b.open++;
            b.connecting++;
            if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, connected) != 0)
                die("connect", 0);
        }
    }
    if (is_mode_open(&b)) {
        uv_timer_init(b.loop, &b.pace_timer);
        b.pace_timer.data = &b;
    }
    if (!is_mode_count(&b) && !is_mode_one_way(&b)) {
        uv_timer_init(b.loop, &b.warmup_timer);
        uv_timer_init(b.loop, &b.stop_timer);
        b.warmup_timer.data = b.stop_timer.data = &b;
        uv_timer_start(&b.warmup_timer, warmed_up, (uint64_t)(b.o.warmup * 1000), 0);
        uv_timer_start(&b.stop_timer, time_up, (uint64_t)((b.o.warmup + b.o.seconds) * 1000), 0);
        uv_unref((uv_handle_t *)&b.warmup_timer);
        uv_unref((uv_handle_t *)&b.stop_timer);
    } else if (is_mode_count(&b) && b.o.warmup_calls == 0) {
        start_measuring(&b);
    }
    uv_run(b.loop, UV_RUN_DEFAULT);
    secs = (double)(b.end_ns - b.start_ns) / 1e9;
    /* saturated: the generator itself was busy nearly all the window, so
     * the rate may be its limit rather than the server's */
    printf("{\"calls\":%" PRIu64 ",\"seconds\":%.4f,\"calls_per_s\":%.1f,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"p999_us\":%.1f,\"errors\":%" PRIu64 ",\"loadgen_cpu_s\":%.4f,"
           "\"saturated\":%d",
           b.calls, secs, secs > 0 ? (double)b.calls / secs : 0.0,
           is_mode_one_way(&b) ? 0.0 : percentile(&b, 0.5),
           is_mode_one_way(&b) ? 0.0 : percentile(&b, 0.99),
           is_mode_one_way(&b) ? 0.0 : percentile(&b, 0.999), b.errors, b.cpu_s,
           secs > 0 && b.cpu_s / secs > 0.9);
    if (b.o.server_argv != NULL)
        printf(",\"server_cpu_s\":%.4f,\"server_rss\":%" PRIu64, b.child_cpu_s, b.child_rss);
    printf("}\n");
    return b.errors ? 1 : 0;
}
