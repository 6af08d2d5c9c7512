/* Connection counts and held bytes of a listener (see listen_limits.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "listen_limits.h"

struct addr_count {
    jr_peer_addr addr;
    size_t n;
};

/* The fd limit leaves room for so many connections (each takes one). */
static size_t fd_room(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return (size_t)-1;
    return rl.rlim_cur > JR_LISTEN_FD_RESERVE * 2 ? (size_t)(rl.rlim_cur - JR_LISTEN_FD_RESERVE)
                                                  : (size_t)rl.rlim_cur / 2;
}

size_t jr_limits_default_max(void)
{
    size_t room = fd_room();
    return JR_LISTEN_MAX_CONNECTIONS < room ? JR_LISTEN_MAX_CONNECTIONS : room;
}

jr_limits *jr_limits_new(size_t max_connections, size_t max_per_address, size_t max_held)
{
    jr_limits *lim = (jr_limits *)calloc(1, sizeof *lim);
    if (lim == NULL)
        return NULL;
    if (max_connections == 0)
        max_connections = jr_limits_default_max();
    lim->refs = 1;
    lim->max_connections = max_connections;
    lim->max_per_address = max_per_address;
    lim->max_held = max_held;
    return lim;
}

void jr_limits_unref(jr_limits *lim)
{
    if (--lim->refs > 0)
        return;
    free(lim->addrs);
    free(lim);
}

void jr_peer_addr_of(uv_handle_t *h, jr_peer_addr *a)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    a->len = 0;
    if (h->type != UV_TCP || uv_tcp_getpeername((uv_tcp_t *)h, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        memcpy(a->bytes, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        a->len = 4;
    } else if (ss.ss_family == AF_INET6) {
        memcpy(a->bytes, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        a->len = 16;
    }
}

static struct addr_count *find(jr_limits *lim, const jr_peer_addr *a)
{
    size_t i;
    for (i = 0; i < lim->naddrs; i++)
        if (lim->addrs[i].addr.len == a->len && memcmp(lim->addrs[i].addr.bytes, a->bytes, a->len) == 0)
            return &lim->addrs[i];
    return NULL;
}

/* The count of a, added at 0 when new; NULL when out of memory. */
static struct addr_count *count_of(jr_limits *lim, const jr_peer_addr *a)
{
    struct addr_count *c = find(lim, a);
    if (c != NULL)
        return c;
    if (lim->naddrs == lim->addrs_cap) {
        size_t cap = lim->addrs_cap ? lim->addrs_cap * 2 : 16;
        struct addr_count *p = (struct addr_count *)realloc(lim->addrs, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        lim->addrs = p;
        lim->addrs_cap = cap;
    }
    c = &lim->addrs[lim->naddrs++];
    c->addr = *a;
    c->n = 0;
    return c;
}

const char *jr_limits_admit(jr_limits *lim, const jr_peer_addr *a)
{
    struct addr_count *c = NULL;
    if (lim->connections >= lim->max_connections)
        return "max_connections reached";
    if (lim->max_per_address > 0 && a->len > 0) {
        c = count_of(lim, a);
        if (c == NULL)
            return "not enough memory";
        if (c->n >= lim->max_per_address)
            return "max_connections_per_address reached";
        c->n++;
    }
    lim->connections++;
    lim->refs++;
    return NULL;
}

void jr_limits_leave(jr_limits *lim, const jr_peer_addr *a, size_t held)
{
    struct addr_count *c;
    lim->connections--;
    lim->held -= held;
    if (lim->max_per_address > 0 && a->len > 0 && (c = find(lim, a)) != NULL && --c->n == 0)
        *c = lim->addrs[--lim->naddrs];   /* the last one takes its place */
    jr_limits_unref(lim);
}

int jr_limits_hold(jr_limits *lim, size_t *held, size_t now)
{
    size_t before = *held;
    lim->held = lim->held - before + now;
    *held = now;
    return now > before && lim->held > lim->max_held ? -1 : 0;
}
