#define _GNU_SOURCE
/* The benchmark tools' own parsers on arbitrary bytes: content-length
 * frames (bench/frames.h) and top-level message reading
 * (bench/answers.h), as the load generator and the floor run them on what
 * a server under test sends. Never crashes, never reads outside the input;
 * every span a message reports lies inside its text. */
#include <assert.h>
#include "../bench/answers.h"
#include "../bench/frames.h"

typedef struct span_check {
    const char *start, *end;
} span_check;

static void inside(const span_check *c, const char *p, size_t n)
{
    if (p != NULL)
        assert(p >= c->start && p + n <= c->end);
}

static void each(void *ud, const message *m)
{
    const span_check *c = (const span_check *)ud;
    inside(c, m->id_text, m->id_len);
    inside(c, m->result, m->result_len);
    inside(c, m->params, m->params_len);
    inside(c, m->method, m->method_len);
    inside(c, m->error, 0);
}

static void read_messages(const char *p, size_t n)
{
    span_check c = { p, p + n };
    json_each_message(p, p + n, each, &c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    inbuf in = { NULL, 0, 0, 0 };
    const char *body;
    size_t len;
    read_messages((const char *)data, size);
    /* the same bytes as a stream of frames, fed in two reads */
    in.p = (char *)must(malloc(size + 1));
    in.cap = size + 1;
    in.len = size / 2;
    memcpy(in.p, data, size);
    while (inbuf_next(&in, &body, &len))
        read_messages(body, len);
    in.len = size;
    while (inbuf_next(&in, &body, &len))
        read_messages(body, len);
    free(in.p);
    return 0;
}
