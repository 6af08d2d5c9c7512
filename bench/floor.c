/* The floor: a libuv server that finds each content-length frame and
 * answers it with a fixed result carrying the request's id, without parsing
 * JSON (the id is copied as the bytes after "id":). No real JSON-RPC server
 * can be faster; it shows how close one comes to the limit.
 *
 *   floor HOST PORT      (port 0 picks one; prints "listening on tcp://...")
 *
 * The methods are told apart by their bytes: `echo` answers with the bytes
 * of its params inside the brackets, `sleep` answers after 1 ms on a timer,
 * `stream` [n] writes n `tick` notifications (the counter is the only thing
 * formatted) before its answer; anything else gets the result 3. A batch (a
 * body starting with '[') gets an array with one result 3 per "id". The
 * answers to one read go out in one write. */
#include "frames.h"

typedef struct client {
    uv_tcp_t tcp;
    inbuf in;
    int refs;                 /* the handle, and each timer or stream going on */
} client;

typedef struct out {
    uv_write_t req;
    char *data;
    size_t len, cap;
} out;

typedef struct later {        /* a sleep's answer, or a stream in progress */
    uv_timer_t timer;
    client *c;
    char id[32];
    size_t id_len;
    unsigned long sent, total;
} later;

static uv_loop_t *loop;

static void put(out *o, const char *p, size_t n)
{
    if (o->cap - o->len < n) {
        o->cap = (o->len + n) * 2;
        o->data = (char *)must(realloc(o->data, o->cap));
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

/* The id token after "id": in [p, end): its bytes up to ',' or '}'. */
static const char *id_token(const char *p, const char *end, size_t *n)
{
    const char *id = memmem(p, (size_t)(end - p), "\"id\":", 5), *q;
    if (id == NULL)
        return NULL;
    id += 5;
    for (q = id; q < end && *q != ',' && *q != '}'; q++)
        ;
    *n = (size_t)(q - id);
    return id;
}

static void frame(out *o, const char *body, size_t len)
{
    char head[64];
    int n = snprintf(head, sizeof head, "Content-Length: %zu\r\n\r\n", len);
    put(o, head, (size_t)n);
    put(o, body, len);
}

/* The fixed answer 3 to a request, or to each member of a batch. */
static void answer_fixed(out *o, const char *body, size_t len)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":";
    const char *p = body, *end = body + len, *id;
    char resp[8192];
    size_t rlen = 0, n;
    int batch = len > 0 && body[0] == '[', first = 1;
    if (batch)
        resp[rlen++] = '[';
    while ((id = id_token(p, end, &n)) != NULL && rlen + n + 64 < sizeof resp) {
        if (!first)
            resp[rlen++] = ',';
        memcpy(resp + rlen, head, sizeof head - 1);
        rlen += sizeof head - 1;
        memcpy(resp + rlen, id, n);
        rlen += n;
        resp[rlen++] = '}';
        first = 0;
        p = id + n;
        if (!batch)
            break;
    }
    if (batch)
        resp[rlen++] = ']';
    frame(o, resp, rlen);
}

/* echo: the bytes inside the params' brackets are the result. */
static void answer_echo(out *o, const char *body, size_t len)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":";
    const char *params = memmem(body, len, "\"params\":[", 10), *id, *close;
    size_t idn, n;
    char tail[64], lenhead[64];
    if (params == NULL || (id = id_token(params, body + len, &idn)) == NULL) {
        answer_fixed(o, body, len);
        return;
    }
    params += 10;
    for (close = id; close > params && *close != ']'; close--)
        ;
    snprintf(tail, sizeof tail, ",\"id\":%.*s}", (int)idn, id);
    n = (sizeof head - 1) + (size_t)(close - params) + strlen(tail);
    snprintf(lenhead, sizeof lenhead, "Content-Length: %zu\r\n\r\n", n);
    put(o, lenhead, strlen(lenhead));
    put(o, head, sizeof head - 1);
    put(o, params, (size_t)(close - params));
    put(o, tail, strlen(tail));
}

static void send_out(client *c, out *o, uv_write_cb done)
{
    uv_buf_t w = uv_buf_init(o->data, (unsigned)o->len);
    if (uv_write(&o->req, (uv_stream_t *)&c->tcp, &w, 1, done) != 0)
        done(&o->req, -1);
}

static void written(uv_write_t *req, int status)
{
    out *o = (out *)req;
    (void)status;
    free(o->data);
    free(o);
}

static void unref_client(client *c)
{
    if (--c->refs == 0) {
        free(c->in.p);
        free(c);
    }
}

static void closed(uv_handle_t *h)
{
    unref_client((client *)h->data);
}

static void later_closed(uv_handle_t *h)
{
    later *l = (later *)h->data;
    unref_client(l->c);
    free(l);
}

/* The answer carrying the later's id with the given result text. */
static void answer_later(later *l, const char *result)
{
    char resp[128];
    out *o = (out *)must(calloc(1, sizeof *o));
    int n = snprintf(resp, sizeof resp, "{\"jsonrpc\":\"2.0\",\"result\":%s,\"id\":%.*s}",
                     result, (int)l->id_len, l->id);
    frame(o, resp, (size_t)n);
    send_out(l->c, o, written);
}

static void slept(uv_timer_t *t)
{
    later *l = (later *)t->data;
    if (!uv_is_closing((uv_handle_t *)&l->c->tcp))
        answer_later(l, "1");
    uv_close((uv_handle_t *)t, later_closed);
}

static void stream_more(later *l);

static void stream_written(uv_write_t *req, int status)
{
    later *l = (later *)req->data;
    written(req, status);
    if (status < 0 || uv_is_closing((uv_handle_t *)&l->c->tcp)) {
        uv_close((uv_handle_t *)&l->timer, later_closed);
        return;
    }
    stream_more(l);
}

/* stream: the next 64 KiB of ticks, then the answer; one slice is written
 * at a time, so nothing piles up. */
static void stream_more(later *l)
{
    out *o;
    char tick[96];
    if (l->sent == l->total) {
        char total[32];
        snprintf(total, sizeof total, "%lu", l->total);
        answer_later(l, total);
        uv_close((uv_handle_t *)&l->timer, later_closed);
        return;
    }
    o = (out *)must(calloc(1, sizeof *o));
    while (l->sent < l->total && o->len < 65536) {
        int n = snprintf(tick, sizeof tick, "{\"jsonrpc\":\"2.0\",\"method\":\"tick\",\"params\":[%lu]}",
                         ++l->sent);
        frame(o, tick, (size_t)n);
    }
    o->req.data = l;
    send_out(l->c, o, stream_written);
}

static later *new_later(client *c, const char *body, size_t len)
{
    size_t n;
    const char *id = id_token(body, body + len, &n);
    later *l = (later *)must(calloc(1, sizeof *l));
    l->c = c;
    c->refs++;
    if (id == NULL || n >= sizeof l->id)
        id = "null", n = 4;
    memcpy(l->id, id, n);
    l->id_len = n;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    return l;
}

static int method_is(const char *method, const char *end, const char *name)
{
    size_t n = strlen(name);
    return method != NULL && (size_t)(end - method) > n && memcmp(method, name, n) == 0
           && method[n] == '"';
}

static void answer(client *c, out *o, const char *body, size_t len)
{
    const char *end = body + len, *method = memmem(body, len < 256 ? len : 256, "\"method\":\"", 10);
    if (method != NULL)
        method += 10;
    if (method_is(method, end, "echo")) {
        answer_echo(o, body, len);
    } else if (method_is(method, end, "sleep")) {
        later *l = new_later(c, body, len);
        uv_timer_start(&l->timer, slept, 1, 0);
    } else if (method_is(method, end, "stream")) {
        later *l = new_later(c, body, len);
        const char *params = memmem(body, len, "\"params\":[", 10);
        l->total = params ? strtoul(params + 10, NULL, 10) : 0;
        stream_more(l);
    } else {
        answer_fixed(o, body, len);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    inbuf_room(&((client *)h->data)->in, suggested, buf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client *c = (client *)s->data;
    out *o = NULL;
    const char *body;
    size_t len;
    (void)buf;
    if (n < 0) {
        uv_close((uv_handle_t *)s, closed);
        return;
    }
    c->in.len += (size_t)n;
    while (inbuf_next(&c->in, &body, &len)) {
        if (o == NULL)
            o = (out *)must(calloc(1, sizeof *o));
        answer(c, o, body, len);
    }
    inbuf_shift(&c->in);
    if (o != NULL && o->len > 0)
        send_out(c, o, written);
    else
        free(o);
}

static void on_connection(uv_stream_t *server, int status)
{
    client *c;
    if (status < 0)
        return;
    c = (client *)must(calloc(1, sizeof *c));
    c->refs = 1;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
        uv_tcp_nodelay(&c->tcp, 1);
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    } else {
        uv_close((uv_handle_t *)&c->tcp, closed);
    }
}

int main(int argc, char **argv)
{
    uv_tcp_t server;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if (argc < 3) {
        fprintf(stderr, "usage: floor HOST PORT\n");
        return 2;
    }
    loop = uv_default_loop();
    uv_ip4_addr(argv[1], atoi(argv[2]), &addr);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0
        || uv_listen((uv_stream_t *)&server, 511, on_connection) != 0) {
        fprintf(stderr, "floor: cannot listen\n");
        return 2;
    }
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    printf("listening on tcp://%s:%d\n", argv[1], ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
