/*
 * upstream.h — connections to upstream servers: balancing, connecting and
 * the per-worker keep-alive pools.
 *
 * Ownership: an upstream connection is owned by the request it is attached
 * to, or by its pool while idle. Closing one goes through the worker's
 * reaper, so it can happen inside its own event callback.
 */
#ifndef PC_UPSTREAM_H
#define PC_UPSTREAM_H

#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "pc_types.h"
#include "sock.h"

#define PC_UP_HEAD_MAX 65536 /* largest response head accepted from an upstream */

typedef struct pc_uppool_s {
    pc_upconn_t *idle; /* most recently used first */
    unsigned nidle;
} pc_uppool_t;

/* A worker's runtime state for one configured upstream. */
typedef struct pc_upstream_rt_s {
    const pc_upstream_conf_t *conf;
    uint32_t rr;        /* next server for round robin */
    pc_uppool_t *pools; /* one per server */
    uint32_t *active;   /* per server: connections attached to requests (least_conn) */
} pc_upstream_rt_t;

typedef enum { PC_UP_CONNECTING = 1, PC_UP_ACTIVE, PC_UP_IDLE, PC_UP_CLOSED } pc_upstate_e;

struct pc_upconn_s {
    pc_sock_t sock;
    pc_worker_t *w;
    pc_buf_t in;
    pc_req_t *req; /* attached request, NULL while pooled */
    pc_upstream_rt_t *up;
    uint32_t server; /* index in up->conf->servers */
    uint8_t state;   /* pc_upstate_e */
    unsigned timed_out : 1;
    pc_upconn_t *next, *prev;
};

/* A worker's runtime state for cfg's upstreams (NULL when out of memory). */
pc_upstream_rt_t *pc_upstream_rt_new(pc_worker_t *w, const pc_config_t *cfg);
/* Closes the idle connections and frees the state. */
void pc_upstream_rt_free(pc_upstream_rt_t *ups, const pc_config_t *cfg);

typedef enum {
    PC_ACQ_OK = 0,
    PC_ACQ_TRIED, /* every usable server has been tried */
    PC_ACQ_DOWN,  /* no server passes its health check */
    PC_ACQ_OPEN,  /* the circuit of every remaining server is open */
    PC_ACQ_NOMEM  /* out of memory */
} pc_acquire_e;

/*
 * Attaches a connection to r: by the upstream's balance (round robin, or
 * the fewest requests in flight from this worker), a server that is not in
 * *tried (a bitmask, updated) and that its health check and circuit breaker
 * allow; from its idle pool unless fresh is set, or a new connection (state
 * CONNECTING). NULL with the reason in *why when there is none.
 */
pc_upconn_t *pc_upconn_acquire(pc_worker_t *w, pc_upstream_rt_t *up, pc_req_t *r, unsigned *tried,
                               int fresh, pc_acquire_e *why);

/* The outcome of a request on u, for passive health and the circuit breaker. */
void pc_upconn_outcome(pc_upconn_t *u, int ok);

/* After the connecting socket became writable: 0 when connected (state
 * ACTIVE), else the errno of the failure. */
int pc_upconn_connected(pc_upconn_t *u);

/* Detaches u from its request: back to the idle pool when reusable and
 * there is room, closed otherwise. */
void pc_upconn_release(pc_upconn_t *u, int reusable);

/* Frees a closed connection (the reaper calls this). */
void pc_upconn_free(pc_upconn_t *u);

#endif
