/*
 * worker.h — one event-loop thread: its listening sockets, client and
 * upstream connections, buffer caches, access-log buffer and upstream pools.
 *
 * Nothing a worker owns is touched by another thread. The main thread talks
 * to a worker only through its notification descriptor (drain, stop).
 * Objects are never freed inside their own event callback: pc_worker_reap()
 * queues them and a dedicated event frees them once the callback returned.
 */
#ifndef PC_WORKER_H
#define PC_WORKER_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pc_types.h"
#include "upstream.h"

#define PC_ARENA_BLOCK   8192       /* per-request arena blocks */
#define PC_REQ_ARENA_CAP (1u << 20) /* hard cap of one request's arena */

typedef struct pc_listen_s {
    int fd;
    uint16_t idx; /* position in the configuration's listeners */
    struct event ev;
    pc_worker_t *w;
} pc_listen_t;

/*
 * A configuration snapshot as one worker uses it: the configuration, the
 * runtime state built from it (upstream pools, balancer positions) and the
 * number of requests still running on it. New requests take the current
 * snapshot; a replaced one lives until its last request ends.
 */
typedef struct pc_snap_s {
    pc_config_t *cfg; /* one reference */
    pc_upstream_rt_t *ups;
    unsigned inflight;
    struct pc_snap_s *next; /* in the list of retired snapshots */
} pc_snap_t;

struct pc_worker_s {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    pc_server_t *srv;

    pc_snap_t *snap;      /* for new requests */
    pc_snap_t *retired;   /* replaced, with requests still running on them */
    pc_config_t *pending; /* next configuration, from the main thread (atomic) */
    int *pending_fds;     /* its listening sockets for this worker (published with pending) */

    pc_listen_t *listens;
    size_t nlistens;
    unsigned accept_paused : 1;
    struct event accept_resume_ev;

    pc_blocks_t bufs;   /* PC_BUF_SIZE connection buffers */
    pc_blocks_t blocks; /* PC_ARENA_BLOCK arena blocks */

    pc_conn_t *conns; /* every client connection (doubly linked) */
    unsigned nconns;

    /* Idle keep-alive connections (served a request, waiting for the next),
     * oldest first: at max_connections they give way to waiting clients. */
    pc_conn_t *idle_oldest, *idle_newest;
    unsigned nidle;          /* their number (atomic: other workers read it) */
    unsigned reclaim_wanted; /* how many of them other workers asked it to close (atomic) */
    unsigned paused_at_cap;  /* accepting paused at max_connections (atomic mirror) */
    unsigned resume_wanted;  /* another worker made room: accept again (atomic) */
    int64_t cap_warned_ms;   /* when the "max_connections reached" warning was last logged */

    /* deferred frees */
    pc_conn_t *dead_conns;
    pc_upconn_t *dead_upconns;
    struct event reap_ev;

    /* main thread -> worker: set drain_requested or pending, then write the eventfd */
    int notify_fd;
    unsigned drain_requested; /* atomic: 1 drain, 2 drain now */
    struct event notify_ev;
    unsigned draining : 1;
    struct event drain_timer;

    pc_logbuf_t access;
    pc_logbuf_t security;
    struct event flush_ev;
    unsigned flush_armed : 1;

    pc_metrics_t metrics; /* this worker's shard, read by the admin thread */

    struct pc_rl_redis_s *rl_redis; /* rate limiting's Redis connection, made on first use */
    int redis_state;                /* pc_redis_state_e, read by the admin thread (atomic) */

    struct pc_op_ctx_s *waf_ctx; /* the WAF's match context, made on first use */
    uint32_t waf_sample;         /* requests seen by the WAF, to time a sample */

    uint64_t rng[2];
    time_t date_sec; /* cached Date header value */
    char date[32];
};

/* Creates worker id for srv with listening sockets already bound (fds are
 * owned by the worker from here on). 0 or -1. */
int pc_worker_init(pc_worker_t *w, pc_server_t *srv, unsigned id, pc_config_t *cfg,
                   const int *listen_fds, size_t nlisten);

/* Starts the thread. */
int pc_worker_start(pc_worker_t *w);

/* Asks the worker to stop accepting, finish in-flight requests and exit
 * (thread-safe; force: close everything now). */
void pc_worker_drain(pc_worker_t *w, int force);

/* Hands the worker a new configuration (thread-safe; takes a reference)
 * with one listening socket per listener of cfg (fds, cfg->n_listeners of
 * them, copied): new requests use it, running ones finish on theirs. Sockets
 * the worker has that are not in fds are closed, with the connections
 * accepted on them once their current request ends. The previous handover
 * must have been taken (pc_worker_reload_pending). Returns 0 or -1. */
int pc_worker_reload(pc_worker_t *w, pc_config_t *cfg, const int *fds);

/* Has the worker not yet taken the last configuration handed over? */
int pc_worker_reload_pending(pc_worker_t *w);

/* The configuration new requests use. */
static inline pc_config_t *pc_worker_cfg(const pc_worker_t *w)
{
    return w->snap->cfg;
}

/* A request ends: its snapshot is freed if it was retired and was the last. */
void pc_worker_snap_release(pc_worker_t *w, pc_snap_t *s);

/* Frees what the worker owns once its thread has been joined. */
void pc_worker_free(pc_worker_t *w);

/* Queues a closed connection to be freed after the current callback. */
void pc_worker_reap_conn(pc_worker_t *w, pc_conn_t *c);
void pc_worker_reap_upconn(pc_worker_t *w, pc_upconn_t *u);

/* Milliseconds on the worker's loop clock (cached per loop iteration). */
int64_t pc_worker_now_ms(pc_worker_t *w);

/* The current Date header value ("Sun, 22 Nov 2026 10:00:00 GMT"). */
const char *pc_worker_date(pc_worker_t *w);

/* 16 random bytes as 32 hex characters (request ids); out needs 32. */
void pc_worker_random_hex(pc_worker_t *w, char *out);

/* Commits a line reserved with pc_logbuf_reserve in one of the worker's log
 * buffers and makes sure the worker flushes it soon (batches, at least
 * every LOG_FLUSH_MS). */
void pc_worker_log_commit(pc_worker_t *w, pc_logbuf_t *b, size_t n);

/* Called when a connection closes: uncounts it and lets a paused listener
 * resume. */
void pc_worker_conn_closed(pc_worker_t *w, pc_conn_t *c);

/* c has served a request and waits for the next one: it joins the end of
 * the worker's idle keep-alive list (the first closed when a client waits at
 * max_connections). */
void pc_worker_idle_add(pc_worker_t *w, pc_conn_t *c);

/* c leaves that list (the first byte of its next request came, or it
 * closes); no-op when it is not in it. */
void pc_worker_idle_remove(pc_worker_t *w, pc_conn_t *c);

#endif
