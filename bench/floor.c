/* The floor: a libuv server that finds each content-length frame and
 * answers it with a fixed result carrying the request's id, without parsing
 * JSON (the id is copied as the bytes after "id":). No real JSON-RPC server
 * can be faster; it shows how close one comes to the limit.
 *
 *   floor HOST PORT      (port 0 picks one; the port is printed on stdout)
 *
 * A batch (a body starting with '[') gets an array with one response per
 * "id". All the answers to one read go out in one write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct client {
    uv_tcp_t tcp;
    char *buf;
    size_t len, cap;
} client;

typedef struct out {
    uv_write_t req;
    char *data;
    size_t len, cap;
} out;

static uv_loop_t *loop;

static void put(out *o, const char *p, size_t n)
{
    if (o->cap - o->len < n) {
        o->cap = (o->len + n) * 2;
        o->data = (char *)realloc(o->data, o->cap);
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

static void answer(out *o, const char *body, size_t len)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":";
    const char *p = body, *end = body + len, *id;
    char resp[4096], framed[64];
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
    n = (size_t)snprintf(framed, sizeof framed, "Content-Length: %zu\r\n\r\n", rlen);
    put(o, framed, n);
    put(o, resp, rlen);
}

static void written(uv_write_t *req, int status)
{
    out *o = (out *)req;
    (void)status;
    free(o->data);
    free(o);
}

static void closed(uv_handle_t *h)
{
    client *c = (client *)h->data;
    free(c->buf);
    free(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = (client *)h->data;
    if (c->cap - c->len < suggested) {
        c->cap = c->len + suggested < 2 * c->cap ? 2 * c->cap : c->len + suggested;
        c->buf = (char *)realloc(c->buf, c->cap);
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client *c = (client *)s->data;
    out *o = NULL;
    size_t at = 0;
    (void)buf;
    if (n < 0) {
        uv_close((uv_handle_t *)s, closed);
        return;
    }
    c->len += (size_t)n;
    for (;;) {
        const char *head = c->buf + at, *sep, *colon;
        size_t avail = c->len - at, blen;
        sep = memmem(head, avail, "\r\n\r\n", 4);
        if (sep == NULL)
            break;
        colon = memchr(head, ':', (size_t)(sep - head));
        blen = colon ? strtoul(colon + 1, NULL, 10) : 0;
        if ((size_t)(sep + 4 - head) + blen > avail)
            break;
        if (o == NULL)
            o = (out *)calloc(1, sizeof *o);
        answer(o, sep + 4, blen);
        at += (size_t)(sep + 4 - head) + blen;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
    if (o != NULL) {
        uv_buf_t w = uv_buf_init(o->data, (unsigned)o->len);
        uv_write(&o->req, s, &w, 1, written);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    client *c;
    if (status < 0)
        return;
    c = (client *)calloc(1, sizeof *c);
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
    printf("%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
