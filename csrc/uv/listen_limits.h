/* What one listener's connections may take together: how many there are
 * (in all and from one address), and the bytes they hold (partial frames
 * read, answers not yet written). A listener faces strangers; these keep
 * one of them from starving the others.
 *
 * The listener and each of its connections hold a reference, so the
 * counts outlive whichever closes first. */
#ifndef JSONRPC_LISTEN_LIMITS_H
#define JSONRPC_LISTEN_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define JR_LISTEN_MAX_CONNECTIONS 1024
#define JR_LISTEN_FD_RESERVE 32               /* fds kept for everything else */
#define JR_LISTEN_MAX_BUFFERED ((size_t)512 << 20)

typedef struct jr_peer_addr {
    unsigned char bytes[16];  /* IPv4 or IPv6 address */
    int len;                  /* 4 or 16; 0 for no address (Unix sockets) */
} jr_peer_addr;

typedef struct jr_limits {
    int refs;
    size_t connections, max_connections;
    size_t max_per_address;   /* 0: no limit */
    struct addr_count *addrs; /* connections per address, when limited */
    size_t naddrs, addrs_cap;
    size_t held, max_held;    /* bytes across the connections */
    uint64_t logged_at;       /* the last refusal logged (loop ms) */
    unsigned long refused;    /* refusals since it was logged */
} jr_limits;

/* A new set of limits with one reference (the listener's); NULL when out
 * of memory. max_connections 0 is the default: JR_LISTEN_MAX_CONNECTIONS,
 * lowered to the process's fd limit less a reserve when that is smaller. */
jr_limits *jr_limits_new(size_t max_connections, size_t max_per_address, size_t max_held);

/* max_connections when none is given: JR_LISTEN_MAX_CONNECTIONS, or the
 * fd limit less a reserve when that is smaller. */
size_t jr_limits_default_max(void);
void jr_limits_unref(jr_limits *lim);

/* The address of a connected TCP socket (len 0 for others). */
void jr_peer_addr_of(uv_handle_t *h, jr_peer_addr *a);

/* NULL when one more connection from a is allowed (and counts it, with a
 * reference), else why not. */
const char *jr_limits_admit(jr_limits *lim, const jr_peer_addr *a);
/* A connection admitted from a, holding `held` bytes, has closed (drops
 * its reference). */
void jr_limits_leave(jr_limits *lim, const jr_peer_addr *a, size_t held);

/* A connection now holds `now` bytes where it held *held: 0, or -1 when
 * the listener's cap would be passed (the connection must close; its
 * bytes are counted until it leaves). */
int jr_limits_hold(jr_limits *lim, size_t *held, size_t now);

#endif
