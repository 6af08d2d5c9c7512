/* The floor: a libuv server that finds each content-length frame and
 * answers it with a fixed result carrying the request's id, without
 * decoding JSON: the message is read at its top level only (answers.h), so
 * the id is the request's own, whatever "id" keys its params hold, and the
 * bytes of the id are copied. No real JSON-RPC server can be faster; it
 * shows how close one comes to the limit.
 *
 *   floor HOST PORT      (port 0 picks one; prints "listening on tcp://...")
 *   floor stdio:         (one connection on stdin and stdout; EOF ends it)
 *
 * The methods are told apart by their bytes: `echo` answers with the bytes
 * of its params inside the brackets, `sleep` answers after 1 ms on a timer,
 * `stream` [n] writes n `tick` notifications (the counter is the only thing
 * formatted) before its answer; the LSP-like methods of bench/peers/ours.lua
 * are answered as cheaply as their answers allow: `complete` [n] with its
 * completion list (built once per n, by lsp_like.lua's rules),
 * `diagnostics` with the count of "severity" keys in its params, `did_open`
 * with the digits after its "version" key; anything else gets the result
 * 3. A batch
 * gets an array with one result 3 per member, however long. The answers to
 * one read go out in one write. */
#include "answers.h"
#include "frames.h"

typedef struct client {
    uv_tcp_t tcp;
    uv_pipe_t in_pipe, out_pipe;   /* stdio: stdin and stdout */
    uv_stream_t *rd, *wr;     /* where requests come from and answers go */
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

static void frame(out *o, const char *body, size_t len)
{
    char head[64];
    int n = snprintf(head, sizeof head, "Content-Length: %zu\r\n\r\n", len);
    put(o, head, (size_t)n);
    put(o, body, len);
}

/* The fixed answer 3 to one request, appended to o. */
static void put_fixed(out *o, const message *m)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":";
    put(o, head, sizeof head - 1);
    if (m->has_id)
        put(o, m->id_text, m->id_len);
    else
        put(o, "null", 4);
    put(o, "}", 1);
}

typedef struct batch_out {
    out *o;
    int members;
} batch_out;

static void put_member(void *ud, const message *m)
{
    batch_out *b = (batch_out *)ud;
    if (b->members++ > 0)
        put(b->o, ",", 1);
    put_fixed(b->o, m);
}

/* The fixed answer 3 to a request, or to each member of a batch, framed. */
static void answer_fixed(out *o, const char *body, size_t len)
{
    static out text;   /* reused: the floor is one thread */
    batch_out b;
    const char *p = json_space(body, body + len);
    int batch = p < body + len && *p == '[';
    text.len = 0;
    b.o = &text;
    b.members = 0;
    if (batch)
        put(&text, "[", 1);
    json_each_message(p, body + len, put_member, &b);
    if (batch)
        put(&text, "]", 1);
    frame(o, text.data, text.len);
}

/* The fixed answer 3 to one request already read, framed. */
static void answer_one(out *o, const message *m)
{
    static out text;
    text.len = 0;
    put_fixed(&text, m);
    frame(o, text.data, text.len);
}

/* echo: the bytes inside the params' brackets are the result. */
static void answer_echo(out *o, const message *m, const char *body, size_t len)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":";
    size_t n;
    char tail[64], lenhead[64];
    if (m->params == NULL || m->params_len < 2 || m->params[0] != '[' || !m->has_id
        || m->id_len > 32) {
        answer_fixed(o, body, len);
        return;
    }
    snprintf(tail, sizeof tail, ",\"id\":%.*s}", (int)m->id_len, m->id_text);
    n = (sizeof head - 1) + (m->params_len - 2) + strlen(tail);
    snprintf(lenhead, sizeof lenhead, "Content-Length: %zu\r\n\r\n", n);
    put(o, lenhead, strlen(lenhead));
    put(o, head, sizeof head - 1);
    put(o, m->params + 1, m->params_len - 2);
    put(o, tail, strlen(tail));
}

/* A result text answered with the request's id, framed. */
static void answer_with(out *o, const message *m, const char *result, size_t n)
{
    static out text;
    text.len = 0;
    put(&text, "{\"jsonrpc\":\"2.0\",\"result\":", 26);
    put(&text, result, n);
    put(&text, ",\"id\":", 6);
    if (m->has_id)
        put(&text, m->id_text, m->id_len);
    else
        put(&text, "null", 4);
    put(&text, "}", 1);
    frame(o, text.data, text.len);
}

/* complete(n): lsp_like.lua's completion list, made once per n. */
static void answer_complete(out *o, const message *m)
{
    static out list;
    static unsigned long made_for;
    unsigned long n = m->params != NULL ? strtoul(m->params + 1, NULL, 10) : 0, i;
    if (n != made_for || list.len == 0) {
        list.len = 0;
        put(&list, "{\"isIncomplete\":false,\"items\":[", 31);
        for (i = 1; i <= n; i++) {
            char item[512];
            int k = snprintf(item, sizeof item,
                "%s{\"label\":\"item_%lu_\xc3\xa9\xe2\x9c\x93\",\"kind\":%lu,"
                "\"detail\":\"fn(x: \\\"int\\\") -> %lu\","
                "\"documentation\":\"Line one\\nline \\\"two\\\"\\ttabbed \xe4\xb8\xad\xe6\x96\x87\","
                "\"sortText\":\"%05lu\",\"insertText\":\"item_%lu(${1:x})\","
                "\"data\":{\"id\":%lu,\"position\":{\"line\":%lu,\"character\":%lu}}}",
                i > 1 ? "," : "", i, i % 25 + 1, i, i, i, i, i, i % 80);
            put(&list, item, (size_t)k);
        }
        put(&list, "]}", 2);
        made_for = n;
    }
    answer_with(o, m, list.data, list.len);
}

/* diagnostics(report): how many "severity" keys its params hold. */
static void answer_count(out *o, const message *m)
{
    const char *p = m->params, *end = m->params + m->params_len;
    unsigned long n = 0;
    char digits[24];
    while (p != NULL && (p = memmem(p, (size_t)(end - p), "\"severity\":", 11)) != NULL) {
        n++;
        p += 11;
    }
    answer_with(o, m, digits, (size_t)snprintf(digits, sizeof digits, "%lu", n));
}

/* did_open(params): the digits after its "version" key. */
static void answer_version(out *o, const message *m)
{
    const char *v = m->params ? memmem(m->params, m->params_len, "\"version\":", 10) : NULL;
    size_t n = 0;
    if (v == NULL) {
        answer_with(o, m, "null", 4);
        return;
    }
    for (v += 10; v + n < m->params + m->params_len && v[n] >= '0' && v[n] <= '9'; n++)
        ;
    answer_with(o, m, v, n);
}

static void send_out(client *c, out *o, uv_write_cb done)
{
    uv_buf_t w = uv_buf_init(o->data, (unsigned)o->len);
    if (uv_write(&o->req, c->wr, &w, 1, done) != 0)
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
    if (!uv_is_closing((uv_handle_t *)l->c->rd))
        answer_later(l, "1");
    uv_close((uv_handle_t *)t, later_closed);
}

static void stream_more(later *l);

static void stream_written(uv_write_t *req, int status)
{
    later *l = (later *)req->data;
    written(req, status);
    if (status < 0 || uv_is_closing((uv_handle_t *)l->c->rd)) {
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

static later *new_later(client *c, const message *m)
{
    size_t n = m->id_len;
    const char *id = m->has_id ? m->id_text : NULL;
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

static int method_is(const message *m, const char *name)
{
    return m->method != NULL && m->method_len == strlen(name)
           && memcmp(m->method, name, m->method_len) == 0;
}

static void answer(client *c, out *o, const char *body, size_t len)
{
    message m;
    const char *p = json_space(body, body + len);
    if (p >= body + len || *p != '{' || json_read_message(p, body + len, &m) == NULL) {
        answer_fixed(o, body, len);   /* a batch, or something else */
        return;
    }
    if (method_is(&m, "echo")) {
        answer_echo(o, &m, body, len);
    } else if (method_is(&m, "sleep")) {
        later *l = new_later(c, &m);
        uv_timer_start(&l->timer, slept, 1, 0);
    } else if (method_is(&m, "stream")) {
        later *l = new_later(c, &m);
        l->total = m.params != NULL && m.params[0] == '[' ? strtoul(m.params + 1, NULL, 10) : 0;
        stream_more(l);
    } else if (method_is(&m, "complete")) {
        answer_complete(o, &m);
    } else if (method_is(&m, "diagnostics")) {
        answer_count(o, &m);
    } else if (method_is(&m, "did_open")) {
        answer_version(o, &m);
    } else {
        answer_one(o, &m);
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
        if (c->wr != c->rd)   /* stdio: the editor closed our stdin, we are done */
            exit(0);
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
    c->rd = c->wr = (uv_stream_t *)&c->tcp;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
        uv_tcp_nodelay(&c->tcp, 1);
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    } else {
        uv_close((uv_handle_t *)&c->tcp, closed);
    }
}

/* stdio: one client on stdin and stdout. */
static int serve_stdio(void)
{
    client *c = (client *)must(calloc(1, sizeof *c));
    c->refs = 1;
    uv_pipe_init(loop, &c->in_pipe, 0);
    uv_pipe_init(loop, &c->out_pipe, 0);
    if (uv_pipe_open(&c->in_pipe, 0) != 0 || uv_pipe_open(&c->out_pipe, 1) != 0) {
        fprintf(stderr, "floor: stdin and stdout must be pipes or sockets\n");
        return 2;
    }
    c->in_pipe.data = c->out_pipe.data = c;
    c->rd = (uv_stream_t *)&c->in_pipe;
    c->wr = (uv_stream_t *)&c->out_pipe;
    uv_read_start(c->rd, alloc_cb, read_cb);
    return uv_run(loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    uv_tcp_t server;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    loop = uv_default_loop();
    if (argc == 2 && !strcmp(argv[1], "stdio:"))
        return serve_stdio();
    if (argc < 3) {
        fprintf(stderr, "usage: floor HOST PORT | floor stdio:\n");
        return 2;
    }
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
