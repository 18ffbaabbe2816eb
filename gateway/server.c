/*
 * server.c — see server.h.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "health.h"
#include "jwt.h"
#include "ratelimit.h"
#include "metrics.h"
#include "tls.h"
#include "worker.h"

#define BACKLOG 4096

/* One SO_REUSEPORT socket per worker and listener: the kernel spreads new
 * connections over the workers, which never share an accept queue. */
static int open_listen(const pc_sockaddr_t *addr, uint16_t *port)
{
    pc_sockaddr_t a = *addr;
    if (*port) {
        if (a.u.sa.sa_family == AF_INET6)
            a.u.in6.sin6_port = htons(*port);
        else
            a.u.in4.sin_port = htons(*port);
    }
    int fd = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (a.u.sa.sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, &a.u.sa, a.len) != 0 || listen(fd, BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (*port == 0) { /* port 0: the workers share the port the first one got */
        pc_sockaddr_t got;
        got.len = sizeof(got.u);
        getsockname(fd, &got.u.sa, &got.len);
        *port = ntohs(got.u.sa.sa_family == AF_INET6 ? got.u.in6.sin6_port : got.u.in4.sin_port);
    }
    return fd;
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    pc_server_t *s = arg;
    (void)what;
    unsigned n = __atomic_add_fetch(&s->stopping, 1, __ATOMIC_RELAXED); /* /readyz reads it */
    pc_log(PC_LOG_INFO, "server", "%s: %s", sig == SIGINT ? "SIGINT" : "SIGTERM",
           n == 1 ? "draining in-flight requests" : "closing every connection now");
    for (unsigned i = 0; i < s->nworkers; i++)
        pc_worker_drain(&s->workers[i], n > 1);
}

static void on_reopen(evutil_socket_t sig, short what, void *arg)
{
    pc_server_t *s = arg;
    (void)sig;
    (void)what;
    pc_logfile_t *files[] = {&s->access_log, &s->security_log, &s->error_log};
    for (size_t i = 0; i < 3; i++)
        if (pc_logfile_reopen(files[i]) != 0)
            pc_log(PC_LOG_ERROR, "log", "cannot reopen %s: %s", files[i]->path, strerror(errno));
    pc_log(PC_LOG_INFO, "log", "log files reopened");
}

static int same_addr(const pc_sockaddr_t *x, const pc_sockaddr_t *y)
{
    return x->len == y->len && memcmp(&x->u, &y->u, x->len) == 0;
}

static uint16_t addr_port(const pc_sockaddr_t *a)
{
    return ntohs(a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port : a->u.in4.sin_port);
}

/* Binds what the runtime shares across snapshots to a configuration before
 * anyone uses it: metric ids of routes and upstreams, and each server's
 * health record (kept across reloads, so a reload does not forget that a
 * server is down). */
static int bind_runtime(pc_config_t *cfg)
{
    if (pc_jwt_bind(cfg) != 0)
        return -1;
    for (size_t i = 0; i < cfg->n_routes; i++)
        cfg->routes[i].metric_id = pc_metrics_name_id(PC_NAMES_ROUTE, cfg->routes[i].name);
    for (size_t u = 0; u < cfg->n_upstreams; u++) {
        pc_upstream_conf_t *uc = &cfg->upstreams[u];
        uc->metric_id = pc_metrics_name_id(PC_NAMES_UPSTREAM, uc->name);
        for (size_t i = 0; i < uc->n_servers; i++)
            if (!(uc->servers[i].health = pc_health_get(uc->name, uc->servers[i].address)))
                return -1;
    }
    return 0;
}

/* Closes the sockets in fds (count of them) that s->fds does not hold:
 * those a failed reload opened. */
static void close_new_fds(const pc_server_t *s, int *fds, size_t count)
{
    size_t have = s->cfg->n_listeners * s->nworkers;
    for (size_t i = 0; i < count; i++) {
        int ours = fds[i] >= 0;
        for (size_t k = 0; ours && k < have; k++)
            ours = s->fds[k] != fds[i];
        if (ours)
            close(fds[i]);
    }
    free(fds);
}

/* The listening sockets of n, one per worker and listener: those of a
 * listener already open on the same address are reused (so its queue of
 * pending connections survives), the others are opened now. NULL (nothing
 * opened) when one cannot be. */
static int *reload_listeners(pc_server_t *s, const pc_config_t *n)
{
    const pc_config_t *o = s->cfg;
    size_t nl = n->n_listeners, nw = s->nworkers;
    int *fds = malloc((nl ? nl : 1) * nw * sizeof(int));
    if (!fds)
        return NULL;
    for (size_t i = 0; i < nl * nw; i++)
        fds[i] = -1;
    for (size_t l = 0; l < nl; l++) {
        const pc_listener_conf_t *lc = &n->listeners[l];
        size_t old = o->n_listeners;
        for (size_t k = 0; k < o->n_listeners && old == o->n_listeners; k++)
            if (same_addr(&o->listeners[k].addr, &lc->addr))
                old = k;
        uint16_t port = addr_port(&lc->addr);
        for (size_t w = 0; w < nw; w++) {
            int fd = old < o->n_listeners ? s->fds[w * o->n_listeners + old]
                                          : open_listen(&lc->addr, &port);
            if (fd < 0) {
                pc_log(PC_LOG_ERROR, "reload", "listener %s: cannot listen on %s: %s", lc->name,
                       lc->address, strerror(errno));
                close_new_fds(s, fds, nl * nw);
                return NULL;
            }
            fds[w * nl + l] = fd;
        }
        if (old == o->n_listeners)
            pc_log(PC_LOG_INFO, "reload", "listener %s opened on %s", lc->name, lc->address);
    }
    for (size_t k = 0; k < o->n_listeners; k++) {
        int kept = 0;
        for (size_t l = 0; l < nl; l++)
            kept |= same_addr(&o->listeners[k].addr, &n->listeners[l].addr);
        if (!kept)
            pc_log(PC_LOG_INFO, "reload", "listener %s on %s closed", o->listeners[k].name,
                   o->listeners[k].address);
    }
    return fds;
}

/* The admin socket of n: -2 to keep the current one, -1 for none, else a
 * new socket; -3 when it cannot be opened. */
static int reload_admin(const pc_config_t *o, const pc_config_t *n)
{
    if (!n->admin)
        return -1;
    if (o->admin && same_addr(&o->admin->addr, &n->admin->addr))
        return -2;
    int fd = pc_admin_listen(&n->admin->addr);
    if (fd < 0) {
        pc_log(PC_LOG_ERROR, "reload", "admin: cannot listen on %s: %s", n->admin->address,
               strerror(errno));
        return -3;
    }
    return fd;
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* What a reload takes but cannot apply to a running process. */
static void warn_restart_only(const pc_config_t *o, const pc_config_t *n)
{
    if (o->workers != n->workers)
        pc_log(PC_LOG_WARN, "reload", "workers: a change needs a restart (%lld keep running)",
               (long long)o->workers);
    if (!same_str(o->logging.access.path, n->logging.access.path) ||
        !same_str(o->logging.security.path, n->logging.security.path) ||
        !same_str(o->logging.error.path, n->logging.error.path))
        pc_log(PC_LOG_WARN, "reload",
               "logging paths: a change needs a restart (the open files stay in use)");
}

/* SIGHUP: load and validate a whole new configuration (certificates
 * included) and open what it adds here, off the workers' loops, then hand
 * it to every worker. A configuration that fails changes nothing. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    pc_server_t *s = arg;
    (void)sig;
    (void)what;
    if (s->stopping)
        return;
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (pc_worker_reload_pending(&s->workers[i])) {
            pc_log(PC_LOG_ERROR, "reload",
                   "the previous reload is still being applied: send SIGHUP again");
            return;
        }
    }
    pc_errlist_t errs = {0};
    pc_config_t *n = pc_config_load(s->cfg->file, &s->opts, &errs);
    pc_errlist_sort(&errs);
    for (size_t i = 0; i < errs.n; i++)
        pc_log(errs.is_warning[i] ? PC_LOG_WARN : PC_LOG_ERROR, "reload", "%s", errs.msgs[i]);
    size_t nerr = pc_errlist_errors(&errs);
    pc_errlist_free(&errs);
    int *fds = NULL;
    int admin_fd = -3;
    if (n && bind_runtime(n) == 0 && (fds = reload_listeners(s, n)) != NULL)
        admin_fd = reload_admin(s->cfg, n);
    if (admin_fd == -3) {
        if (fds)
            close_new_fds(s, fds, n->n_listeners * s->nworkers);
        if (n)
            pc_config_unref(n);
        if (!nerr)
            nerr = 1; /* reported above */
        pc_log(PC_LOG_ERROR, "reload",
               "failed with %zu error%s: configuration %llu stays in effect", nerr,
               nerr == 1 ? "" : "s", (unsigned long long)s->cfg->generation);
        return;
    }
    n->generation = s->cfg->generation + 1;
    warn_restart_only(s->cfg, n);
    for (unsigned i = 0; i < s->nworkers; i++)
        if (pc_worker_reload(&s->workers[i], n, fds + (size_t)i * n->n_listeners) != 0)
            pc_log(PC_LOG_ERROR, "reload", "worker %u: out of memory: it keeps configuration %llu",
                   i, (unsigned long long)s->cfg->generation);
    if (s->admin)
        pc_admin_reload(s->admin, n, admin_fd);
    free(s->fds);
    s->fds = fds;
    pc_config_unref(s->cfg);
    s->cfg = n;
    pc_log_set_error(&s->error_log, (pc_log_level_e)n->logging.error.level);
    pc_log(PC_LOG_INFO, "reload", "configuration %llu in effect for new requests",
           (unsigned long long)n->generation);
}

/* Once a minute: a new TLS session-ticket key when the current one is due. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    pc_tls_rotate_ticket_keys();
}

/* A worker's loop ended; when all have, the main loop ends too. */
static void on_worker_done(evutil_socket_t fd, short what, void *arg)
{
    pc_server_t *s = arg;
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof(v)) == sizeof(v))
        s->done += (unsigned)v;
    if (s->done >= s->nworkers)
        event_base_loopbreak(s->base);
}

static int open_logs(pc_server_t *s)
{
    const pc_logging_conf_t *l = &s->cfg->logging;
    struct {
        pc_logfile_t *f;
        const char *path;
    } files[] = {{&s->error_log, l->error.path},
                 {&s->access_log, l->access.path},
                 {&s->security_log, l->security.path}};
    for (size_t i = 0; i < 3; i++) {
        if (pc_logfile_open(files[i].f, files[i].path) != 0) {
            fprintf(stderr, "portcullis: cannot open log %s: %s\n", files[i].path, strerror(errno));
            return -1;
        }
    }
    pc_log_set_error(&s->error_log, (pc_log_level_e)l->error.level);
    return 0;
}

#ifdef PC_TESTING
int pc_test_serving;
#endif

void pc_server_handled_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

int pc_server_run(pc_config_t *cfg, const pc_config_opts_t *opts)
{
    pc_server_t s = {0};
    int rc = 1;
    int *fds = NULL;
    int admin_fd = -1;
    unsigned nw = (unsigned)cfg->workers;
    size_t nl = cfg->n_listeners;
    struct event *sigs[6] = {0};
    s.cfg = cfg;
    s.opts = *opts;
    cfg->generation = 1;
    s.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s.access_log.fd = s.security_log.fd = s.error_log.fd = -1;
    signal(SIGPIPE, SIG_IGN);
    sigset_t handled; /* blocked by main() until the handlers below exist */
    pc_server_handled_signals(&handled);
    s.per_ip = pc_connlimit_new();
    if (s.done_fd < 0 || !s.per_ip || open_logs(&s) != 0 || bind_runtime(cfg) != 0)
        goto out;
    fds = calloc((size_t)nw * nl, sizeof(int));
    s.workers = calloc(nw, sizeof(pc_worker_t));
    if (!fds || !s.workers)
        goto out;
    for (size_t i = 0; i < (size_t)nw * nl; i++)
        fds[i] = -1;
    for (size_t l = 0; l < nl; l++) {
        uint16_t port = 0;
        const pc_listener_conf_t *lc = &cfg->listeners[l];
        port = ntohs(lc->addr.u.sa.sa_family == AF_INET6 ? lc->addr.u.in6.sin6_port
                                                         : lc->addr.u.in4.sin_port);
        for (unsigned w = 0; w < nw; w++) {
            int fd = open_listen(&lc->addr, &port);
            if (fd < 0) {
                pc_log(PC_LOG_ERROR, "server", "listener %s: cannot listen on %s: %s", lc->name,
                       lc->address, strerror(errno));
                goto out;
            }
            fds[(size_t)w * nl + l] = fd;
        }
        pc_log(PC_LOG_INFO, "server", "listener %s on %s (port %u)", lc->name, lc->address, port);
    }
    if (cfg->admin) {
        admin_fd = pc_admin_listen(&cfg->admin->addr);
        if (admin_fd < 0) {
            pc_log(PC_LOG_ERROR, "server", "admin: cannot listen on %s: %s", cfg->admin->address,
                   strerror(errno));
            goto out;
        }
        pc_log(PC_LOG_INFO, "server", "admin listener on %s", cfg->admin->address);
    }
    s.base = event_base_new();
    if (!s.base)
        goto out;
    /* Handlers first: once the workers run, clients and signals may come. */
    sigs[0] = evsignal_new(s.base, SIGINT, on_stop, &s);
    sigs[1] = evsignal_new(s.base, SIGTERM, on_stop, &s);
    sigs[2] = evsignal_new(s.base, SIGUSR1, on_reopen, &s);
    sigs[3] = evsignal_new(s.base, SIGHUP, on_hup, &s);
    sigs[4] = event_new(s.base, s.done_fd, EV_READ | EV_PERSIST, on_worker_done, &s);
    sigs[5] = event_new(s.base, -1, EV_PERSIST, on_tick, &s);
    struct timeval minute = {60, 0};
    for (int i = 0; i < 6; i++)
        if (!sigs[i] || event_add(sigs[i], i == 5 ? &minute : NULL) != 0)
            goto out;
    /* Workers never see signals; the main thread handles them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned w = 0; w < nw; w++) {
        if (pc_worker_init(&s.workers[w], &s, w, cfg, fds + (size_t)w * nl, nl) != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            pc_log(PC_LOG_ERROR, "server", "cannot start worker %u", w);
            s.nworkers = w + 1;
            for (size_t i = (size_t)(w + 1) * nl; i < (size_t)nw * nl; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            goto out_workers;
        }
        s.nworkers = w + 1;
    }
    s.fds = fds;
    for (unsigned w = 0; w < nw; w++)
        pc_worker_start(&s.workers[w]);
    s.admin = pc_admin_start(&s, cfg, admin_fd);
    admin_fd = -1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_sigmask(SIG_UNBLOCK, &handled, NULL); /* what came meanwhile is handled now */
    if (!s.admin) {
        pc_log(PC_LOG_ERROR, "server", "cannot start the control thread");
        for (unsigned w = 0; w < nw; w++)
            pc_worker_drain(&s.workers[w], 1);
    } else {
        pc_log(PC_LOG_INFO, "server", "portcullis started: %u workers, configuration %s%s%s", nw,
               cfg->file, cfg->stage ? ", stage " : "", cfg->stage ? cfg->stage : "");
#ifdef PC_TESTING
        __atomic_store_n(&pc_test_serving, 1, __ATOMIC_RELEASE);
#endif
    }

    event_base_dispatch(s.base);
    for (unsigned w = 0; w < s.nworkers; w++)
        pthread_join(s.workers[w].thread, NULL);
    rc = s.admin ? 0 : 1;
    pc_admin_stop(s.admin);
    pc_log(PC_LOG_INFO, "server", "stopped");
out_workers:
    for (unsigned w = 0; w < s.nworkers; w++)
        pc_worker_free(&s.workers[w]);
    goto out_logs;
out:
    for (size_t i = 0; fds && i < (size_t)nw * nl; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (admin_fd >= 0)
        close(admin_fd);
out_logs:
    for (int i = 0; i < 6; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (s.base)
        event_base_free(s.base);
    if (s.done_fd >= 0)
        close(s.done_fd);
    pc_log_set_error(NULL, PC_LOG_INFO);
    pc_logfile_close(&s.access_log);
    pc_logfile_close(&s.security_log);
    pc_logfile_close(&s.error_log);
    free(s.fds ? s.fds : fds);
    free(s.workers);
    pc_connlimit_free(s.per_ip);
    pc_config_unref(s.cfg); /* the latest, after reloads */
    pc_health_free_all();
    pc_jwt_free_all();
    pc_rl_local_free();
    return rc;
}
