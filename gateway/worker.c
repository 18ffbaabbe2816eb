/*
 * worker.c — see worker.h.
 */
#include "worker.h"
#include "request.h"
#include "waf_op.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "conn.h"
#include "jwt.h"
#include "rl_redis.h"
#include "server.h"

#define ACCEPT_BATCH    64
#define ACCEPT_RETRY_MS 100   /* a paused listener looks again this often */
#define RECLAIM_LOOK    8     /* idle connections looked at to find one to close */
#define CAP_WARN_MS     60000 /* the "max_connections reached" warning, at most this often */
#define LOG_BUF         (64u << 10)
#define LOG_FLUSH_MS    100

int64_t pc_worker_now_ms(pc_worker_t *w)
{
    struct timeval tv;
    event_base_gettimeofday_cached(w->base, &tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *pc_worker_date(pc_worker_t *w)
{
    struct timeval tv;
    event_base_gettimeofday_cached(w->base, &tv);
    if (tv.tv_sec != w->date_sec) {
        w->date_sec = tv.tv_sec;
        pc_time_http(tv.tv_sec, w->date);
    }
    return w->date;
}

/* xorshift128+: request ids need uniqueness, not secrecy. */
void pc_worker_random_hex(pc_worker_t *w, char *out)
{
    unsigned char b[16];
    for (int k = 0; k < 2; k++) {
        uint64_t s1 = w->rng[0];
        const uint64_t s0 = w->rng[1];
        w->rng[0] = s0;
        s1 ^= s1 << 23;
        w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        uint64_t v = w->rng[1] + s0;
        memcpy(b + 8 * k, &v, 8);
    }
    pc_hex_encode(b, 16, out);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    pc_worker_t *w = arg;
    (void)fd;
    (void)what;
    w->flush_armed = 0;
    pc_logbuf_flush(&w->access);
    pc_logbuf_flush(&w->security);
}

void pc_worker_log_commit(pc_worker_t *w, pc_logbuf_t *b, size_t n)
{
    pc_logbuf_commit(b, n);
    if (!w->flush_armed) {
        struct timeval tv = {0, LOG_FLUSH_MS * 1000};
        evtimer_add(&w->flush_ev, &tv);
        w->flush_armed = 1;
    }
}

void pc_worker_reap_conn(pc_worker_t *w, pc_conn_t *c)
{
    c->next = w->dead_conns;
    w->dead_conns = c;
    event_active(&w->reap_ev, EV_TIMEOUT, 0);
}

void pc_worker_reap_upconn(pc_worker_t *w, pc_upconn_t *u)
{
    u->next = w->dead_upconns;
    w->dead_upconns = u;
    event_active(&w->reap_ev, EV_TIMEOUT, 0);
}

static void reap(pc_worker_t *w)
{
    while (w->dead_conns) {
        pc_conn_t *c = w->dead_conns;
        w->dead_conns = c->next;
        pc_conn_free(c);
    }
    while (w->dead_upconns) {
        pc_upconn_t *u = w->dead_upconns;
        w->dead_upconns = u->next;
        pc_upconn_free(u);
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reap(arg);
}

static void maybe_finish_drain(pc_worker_t *w)
{
    if (w->draining && w->nconns == 0)
        event_base_loopbreak(w->base);
}

static void notify(pc_worker_t *w);

void pc_worker_idle_add(pc_worker_t *w, pc_conn_t *c)
{
    if (c->in_idle)
        return;
    c->in_idle = 1;
    c->idle_next = NULL;
    c->idle_prev = w->idle_newest;
    if (w->idle_newest)
        w->idle_newest->idle_next = c;
    else
        w->idle_oldest = c;
    w->idle_newest = c;
    __atomic_store_n(&w->nidle, w->nidle + 1, __ATOMIC_RELAXED);
}

void pc_worker_idle_remove(pc_worker_t *w, pc_conn_t *c)
{
    if (!c->in_idle)
        return;
    c->in_idle = 0;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        w->idle_oldest = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        w->idle_newest = c->idle_prev;
    c->idle_next = c->idle_prev = NULL;
    __atomic_store_n(&w->nidle, w->nidle - 1, __ATOMIC_RELAXED);
}

/* Closes the keep-alive connection idle the longest, to make room for a
 * client waiting at max_connections. One whose next request is already in
 * the socket is passed over (closing it would lose that request). Returns
 * 1 when one was closed (its slot is free), 0 when there is none. */
static int reclaim_idle(pc_worker_t *w)
{
    int looked = 0;
    for (pc_conn_t *c = w->idle_oldest, *next; c && looked < RECLAIM_LOOK; c = next, looked++) {
        next = c->idle_next;
        char b;
        if (recv(c->sock.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
            continue;
        pc_conn_close(c);
        return 1;
    }
    return 0;
}

static void listens_enable(pc_worker_t *w, int on)
{
    for (size_t i = 0; i < w->nlistens; i++) {
        if (w->listens[i].fd < 0)
            continue;
        if (on)
            event_add(&w->listens[i].ev, NULL);
        else
            event_del(&w->listens[i].ev);
    }
}

static void pause_accept(pc_worker_t *w)
{
    w->accept_paused = 1;
    __atomic_store_n(&w->paused_at_cap, 1, __ATOMIC_RELEASE);
    listens_enable(w, 0);
    struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
    evtimer_add(&w->accept_resume_ev, &tv);
}

static void resume_accept(pc_worker_t *w)
{
    if (!w->accept_paused || w->draining)
        return;
    w->accept_paused = 0;
    __atomic_store_n(&w->paused_at_cap, 0, __ATOMIC_RELEASE);
    event_del(&w->accept_resume_ev);
    listens_enable(w, 1);
}

/* Wakes the other workers whose accepting is paused at the cap: this one
 * just freed slots for the clients waiting in their queues. */
static void wake_paused(pc_worker_t *w)
{
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        pc_worker_t *o = &w->srv->workers[i];
        if (o != w && __atomic_load_n(&o->paused_at_cap, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&o->resume_wanted, 1, __ATOMIC_RELEASE);
            notify(o);
        }
    }
}

void pc_worker_conn_closed(pc_worker_t *w, pc_conn_t *c)
{
    __atomic_sub_fetch(&w->srv->connections, 1, __ATOMIC_RELAXED);
    if (c->per_ip)
        pc_connlimit_release(w->srv->per_ip, c->peer);
    resume_accept(w);
    maybe_finish_drain(w);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    pc_worker_t *w = arg;
    (void)fd;
    (void)what;
    resume_accept(w);
}

/* Takes one of the max_connections slots of all workers together: 1, or 0
 * at the cap. A compare-and-swap, so workers accepting at the same moment
 * cannot overshoot it. */
static int take_slot(pc_worker_t *w)
{
    long max = (long)pc_worker_cfg(w)->limits.max_connections;
    long n = __atomic_load_n(&w->srv->connections, __ATOMIC_RELAXED);
    do {
        if (n >= max)
            return 0;
    } while (!__atomic_compare_exchange_n(&w->srv->connections, &n, n + 1, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return 1;
}

static void give_slot(pc_worker_t *w)
{
    __atomic_sub_fetch(&w->srv->connections, 1, __ATOMIC_RELAXED);
}

/* Is a connection waiting in the accept queue of listening socket fd? */
static int accept_pending(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* At max_connections with a client waiting: an idle keep-alive connection
 * gives way to it. Closes this worker's oldest (1: a slot is free now), or,
 * having none, asks the worker with the most idle connections to close one
 * of its own and wake this one (0). */
static int make_room(pc_worker_t *w)
{
    int64_t now = pc_worker_now_ms(w);
    if (w->cap_warned_ms == 0 || now - w->cap_warned_ms >= CAP_WARN_MS) {
        w->cap_warned_ms = now;
        pc_log(PC_LOG_WARN, "worker",
               "worker %u: max_connections (%ld) reached: idle keep-alive connections are closed "
               "to make room, other new connections wait",
               w->id, (long)pc_worker_cfg(w)->limits.max_connections);
    }
    if (reclaim_idle(w))
        return 1;
    pc_worker_t *best = NULL;
    unsigned most = 0;
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        pc_worker_t *o = &w->srv->workers[i];
        unsigned n = __atomic_load_n(&o->nidle, __ATOMIC_RELAXED);
        if (o != w && n > most) {
            best = o;
            most = n;
        }
    }
    if (best) {
        __atomic_add_fetch(&best->reclaim_wanted, 1, __ATOMIC_RELEASE);
        notify(best);
    }
    return 0;
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    pc_listen_t *l = arg;
    pc_worker_t *w = l->w;
    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (!take_slot(w)) {
            /* At the cap: a waiting client gets the slot of an idle
             * keep-alive connection; with none to close, accepting pauses
             * (clients wait in the backlog) until a connection closes,
             * another worker makes room, or the retry timer fires. */
            if (!accept_pending(fd))
                return;
            if (make_room(w))
                continue;
            pause_accept(w);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            give_slot(w);
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                pc_log(PC_LOG_ERROR, "worker", "accept: %s; pausing", strerror(errno));
                pause_accept(w);
            }
            return;
        }
        /* Behind a trusted proxy every connection has the proxy's address:
         * the per-address limit would throttle everyone, so it is not applied. */
        pc_ip_t ip = pc_ip_from_sockaddr((struct sockaddr *)&ss);
        int counted = !pc_cidr_set_contains(&pc_worker_cfg(w)->trusted, ip);
        if (counted &&
            pc_connlimit_acquire(w->srv->per_ip, ip,
                                 (unsigned)pc_worker_cfg(w)->limits.max_connections_per_ip) != 0) {
            give_slot(w);
            close(cfd);
            continue;
        }
        if (pc_conn_accept(w, cfd, (struct sockaddr *)&ss, l->idx, counted) != 0) {
            give_slot(w);
            if (counted)
                pc_connlimit_release(w->srv->per_ip, ip);
        }
    }
}

static int listens_has(const pc_worker_t *w, int fd)
{
    for (size_t i = 0; i < w->nlistens; i++)
        if (w->listens[i].fd == fd)
            return 1;
    return 0;
}

static void close_listens(pc_worker_t *w)
{
    for (size_t i = 0; i < w->nlistens; i++) {
        if (w->listens[i].fd < 0)
            continue;
        event_del(&w->listens[i].ev);
        close(w->listens[i].fd);
        w->listens[i].fd = -1;
    }
}

/* Closes every connection now; requests still running are logged as cut
 * (those a filter holds are cancelled first, so they are freed and logged
 * too). */
static void cut_all(pc_worker_t *w)
{
    while (w->conns) {
        pc_conn_t *c = w->conns;
        if (c->req && c->req->suspended)
            pc_req_cancel(c->req, "cut at shutdown");
        else if (c->req && !c->req->detail)
            c->req->detail = "cut at shutdown";
        pc_conn_close(c);
    }
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    pc_worker_t *w = arg;
    (void)fd;
    (void)what;
    cut_all(w);
    event_base_loopbreak(w->base);
}

static void start_drain(pc_worker_t *w, int force)
{
    if (!w->draining) {
        w->draining = 1;
        close_listens(w);
        event_del(&w->accept_resume_ev);
        for (pc_conn_t *c = w->conns, *next; c; c = next) {
            next = c->next;
            pc_conn_close_if_idle(c);
        }
        struct timeval tv = {(time_t)(pc_worker_cfg(w)->shutdown_timeout / 1000),
                             (suseconds_t)(pc_worker_cfg(w)->shutdown_timeout % 1000) * 1000};
        evtimer_add(&w->drain_timer, &tv);
    }
    if (force)
        drain_timeout_cb(-1, 0, w);
    maybe_finish_drain(w);
}

static pc_snap_t *snap_new(pc_worker_t *w, pc_config_t *cfg)
{
    pc_snap_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = cfg;
    s->ups = pc_upstream_rt_new(w, cfg);
    if (!s->ups) {
        free(s);
        return NULL;
    }
    return s;
}

static void snap_free(pc_snap_t *s)
{
    pc_upstream_rt_free(s->ups, s->cfg);
    pc_config_unref(s->cfg);
    free(s);
}

void pc_worker_snap_release(pc_worker_t *w, pc_snap_t *s)
{
    if (--s->inflight || s == w->snap)
        return;
    for (pc_snap_t **p = &w->retired; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            snap_free(s);
            return;
        }
    }
}

/* Switches to the listening sockets of a new configuration: kept sockets
 * stay open (their accept queues too, so no connection is refused), removed
 * ones are closed, and connections are renumbered to their listener's new
 * position, or told to close when it is gone. */
static int swap_listens(pc_worker_t *w, const int *fds, size_t n)
{
    pc_listen_t *nl = calloc(n ? n : 1, sizeof(*nl));
    uint16_t *map = calloc(w->nlistens ? w->nlistens : 1, sizeof(*map));
    if (!nl || !map) {
        free(nl);
        free(map);
        return -1;
    }
    for (size_t i = 0; i < w->nlistens; i++) {
        pc_listen_t *l = &w->listens[i];
        map[i] = UINT16_MAX;
        for (size_t j = 0; j < n; j++)
            if (l->fd >= 0 && fds[j] == l->fd)
                map[i] = (uint16_t)j;
        if (l->fd >= 0)
            event_del(&l->ev);
        if (l->fd >= 0 && map[i] == UINT16_MAX)
            close(l->fd);
    }
    for (pc_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        uint16_t to = c->listener < w->nlistens ? map[c->listener] : UINT16_MAX;
        if (to != UINT16_MAX) {
            c->listener = to;
        } else {
            c->listener_gone = 1;
            pc_conn_close_if_idle(c);
        }
    }
    free(map);
    free(w->listens);
    w->listens = nl;
    w->nlistens = n;
    for (size_t j = 0; j < n; j++) {
        pc_listen_t *l = &nl[j];
        l->fd = fds[j];
        l->idx = (uint16_t)j;
        l->w = w;
        event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
        if (!w->accept_paused && !w->draining)
            event_add(&l->ev, NULL);
    }
    return 0;
}

/* Takes the configuration the main thread handed over, if any. */
/* Rate limiting's Redis connection for cfg: connected before the first
 * request needs it; replaced when a reload moves Redis (requests waiting
 * on the old one apply on_failure). */
static void redis_for(pc_worker_t *w, const pc_config_t *cfg)
{
    if (w->rl_redis && (!cfg->redis || !pc_rl_redis_matches(w->rl_redis, cfg->redis))) {
        pc_rl_redis_free(w->rl_redis);
        w->rl_redis = NULL;
    }
    if (!w->rl_redis && cfg->redis && cfg->n_rate_limits)
        w->rl_redis = pc_rl_redis_new(w->base, cfg->redis, &w->redis_state);
}

static void take_pending(pc_worker_t *w)
{
    pc_config_t *cfg = __atomic_load_n(&w->pending, __ATOMIC_ACQUIRE);
    if (!cfg)
        return;
    int *fds = w->pending_fds;
    w->pending_fds = NULL;
    __atomic_store_n(&w->pending, NULL, __ATOMIC_RELEASE);
    pc_snap_t *s = snap_new(w, cfg);
    if (!s || swap_listens(w, fds, cfg->n_listeners) != 0) {
        /* Cannot happen short of memory; the new sockets would leak into a
         * configuration that does not know them, so the worker stops
         * accepting on them rather than serving the wrong listeners. */
        pc_log(PC_LOG_ERROR, "worker",
               "worker %u: out of memory: keeping the previous configuration", w->id);
        for (size_t i = 0; i < cfg->n_listeners; i++)
            if (!listens_has(w, fds[i]))
                close(fds[i]);
        if (s)
            snap_free(s);
        else
            pc_config_unref(cfg);
        free(fds);
        return;
    }
    free(fds);
    redis_for(w, cfg);
    pc_snap_t *old = w->snap;
    w->snap = s;
    if (old->inflight == 0) {
        snap_free(old);
    } else {
        old->next = w->retired;
        w->retired = old;
    }
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    pc_worker_t *w = arg;
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        return;
    take_pending(w);
    unsigned drain = __atomic_load_n(&w->drain_requested, __ATOMIC_ACQUIRE);
    if (drain)
        start_drain(w, drain >= 2);
    /* Another worker at max_connections, with clients waiting and no idle
     * connection of its own, asked this one to close some of its. */
    unsigned want = __atomic_exchange_n(&w->reclaim_wanted, 0, __ATOMIC_ACQ_REL);
    unsigned freed = 0;
    while (freed < want && reclaim_idle(w))
        freed++;
    if (freed)
        wake_paused(w);
    if (__atomic_exchange_n(&w->resume_wanted, 0, __ATOMIC_ACQ_REL))
        resume_accept(w);
}

static void notify(pc_worker_t *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->notify_fd, &one, sizeof(one));
    (void)n;
}

void pc_worker_drain(pc_worker_t *w, int force)
{
    __atomic_store_n(&w->drain_requested, force ? 2u : 1u, __ATOMIC_RELEASE);
    notify(w);
}

int pc_worker_reload_pending(pc_worker_t *w)
{
    return __atomic_load_n(&w->pending, __ATOMIC_ACQUIRE) != NULL;
}

int pc_worker_reload(pc_worker_t *w, pc_config_t *cfg, const int *fds)
{
    size_t n = cfg->n_listeners;
    int *copy = malloc((n ? n : 1) * sizeof(int));
    if (!copy)
        return -1;
    memcpy(copy, fds, n * sizeof(int));
    pc_config_ref(cfg);
    w->pending_fds = copy;
    __atomic_store_n(&w->pending, cfg, __ATOMIC_RELEASE);
    notify(w);
    return 0;
}

int pc_worker_init(pc_worker_t *w, pc_server_t *srv, unsigned id, pc_config_t *cfg,
                   const int *listen_fds, size_t nlisten)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->srv = srv;
    w->notify_fd = -1;
    struct event_config *ec = event_config_new();
    if (!ec)
        return -1;
    event_config_require_features(ec, EV_FEATURE_ET | EV_FEATURE_O1 | EV_FEATURE_EARLY_CLOSE);
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        return -1;
    pc_blocks_init(&w->bufs, PC_BUF_SIZE, 1024);
    pc_blocks_init(&w->blocks, PC_ARENA_BLOCK, 1024);
    if (getrandom(w->rng, sizeof(w->rng), 0) != sizeof(w->rng))
        w->rng[0] = (uint64_t)time(NULL) ^ id, w->rng[1] = (uint64_t)getpid() << 16 | id;
    if (!w->rng[0] && !w->rng[1])
        w->rng[0] = 1;
    w->listens = calloc(nlisten ? nlisten : 1, sizeof(*w->listens));
    if (!w->listens)
        return -1;
    w->nlistens = nlisten;
    for (size_t i = 0; i < nlisten; i++) {
        pc_listen_t *l = &w->listens[i];
        l->fd = listen_fds[i];
        l->idx = (uint16_t)i;
        l->w = w;
        event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
        event_add(&l->ev, NULL);
    }
    evtimer_assign(&w->accept_resume_ev, w->base, accept_resume_cb, w);
    event_assign(&w->reap_ev, w->base, -1, 0, reap_cb, w);
    evtimer_assign(&w->drain_timer, w->base, drain_timeout_cb, w);
    evtimer_assign(&w->flush_ev, w->base, flush_cb, w);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0)
        return -1;
    event_assign(&w->notify_ev, w->base, w->notify_fd, EV_READ | EV_PERSIST, notify_cb, w);
    event_add(&w->notify_ev, NULL);
    if (pc_logbuf_init(&w->access, &srv->access_log, LOG_BUF) != 0 ||
        pc_logbuf_init(&w->security, &srv->security_log, LOG_BUF / 4) != 0)
        return -1;
    pc_config_ref(cfg); /* the snapshot's, taken last: an earlier failure has none to drop */
    w->snap = snap_new(w, cfg);
    if (!w->snap) {
        pc_config_unref(cfg);
        return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    pc_worker_t *w = arg;
    uint64_t one = 1;
    redis_for(w, w->snap->cfg);
    event_base_dispatch(w->base);
    pc_jwt_thread_done();
    pc_rl_redis_free(w->rl_redis);
    w->rl_redis = NULL;
    if (w->waf_ctx) {
        pc_op_ctx_free(w->waf_ctx);
        free(w->waf_ctx);
        w->waf_ctx = NULL;
    }
    pc_logbuf_flush(&w->access);
    pc_logbuf_flush(&w->security);
    if (write(w->srv->done_fd, &one, sizeof(one)) != sizeof(one))
        pc_log(PC_LOG_ERROR, "worker", "cannot notify the main thread");
    return NULL;
}

int pc_worker_start(pc_worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void pc_worker_free(pc_worker_t *w)
{
    cut_all(w);
    pc_config_t *p = __atomic_exchange_n(&w->pending, NULL, __ATOMIC_ACQ_REL);
    if (p) {
        for (size_t i = 0; i < p->n_listeners; i++) /* sockets the worker never took */
            if (w->pending_fds[i] >= 0 && !listens_has(w, w->pending_fds[i]))
                close(w->pending_fds[i]);
        pc_config_unref(p);
    }
    free(w->pending_fds);
    w->pending_fds = NULL;
    close_listens(w);
    while (w->retired) {
        pc_snap_t *s = w->retired;
        w->retired = s->next;
        snap_free(s);
    }
    if (w->snap)
        snap_free(w->snap);
    w->snap = NULL;
    reap(w);
    if (w->access.buf)
        pc_logbuf_free(&w->access);
    if (w->security.buf)
        pc_logbuf_free(&w->security);
    pc_metrics_free(&w->metrics);
    if (w->base)
        event_base_free(w->base);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    pc_blocks_drain(&w->bufs);
    pc_blocks_drain(&w->blocks);
    free(w->listens);
    w->base = NULL;
}
