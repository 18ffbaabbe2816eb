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
    s->stopping++;
    pc_log(PC_LOG_INFO, "server", "%s: %s", sig == SIGINT ? "SIGINT" : "SIGTERM",
           s->stopping == 1 ? "draining in-flight requests" : "closing every connection now");
    for (unsigned i = 0; i < s->nworkers; i++)
        pc_worker_drain(&s->workers[i], s->stopping > 1);
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

/* What a reload cannot change yet: the sockets already open. */
static int same_listeners(const pc_config_t *a, const pc_config_t *b)
{
    if (a->n_listeners != b->n_listeners)
        return 0;
    for (size_t i = 0; i < a->n_listeners; i++) {
        const pc_listener_conf_t *x = &a->listeners[i], *y = &b->listeners[i];
        if (x->addr.len != y->addr.len || memcmp(&x->addr.u, &y->addr.u, x->addr.len) != 0 ||
            !x->tls != !y->tls)
            return 0;
    }
    return 1;
}

/* SIGHUP: load and validate a whole new configuration (certificates
 * included) here, off the workers' loops, then hand it to every worker.
 * A configuration that fails changes nothing. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    pc_server_t *s = arg;
    (void)sig;
    (void)what;
    pc_errlist_t errs = {0};
    pc_config_t *n = pc_config_load(s->cfg->file, &s->opts, &errs);
    pc_errlist_sort(&errs);
    for (size_t i = 0; i < errs.n; i++)
        pc_log(errs.is_warning[i] ? PC_LOG_WARN : PC_LOG_ERROR, "reload", "%s", errs.msgs[i]);
    size_t nerr = pc_errlist_errors(&errs);
    pc_errlist_free(&errs);
    if (!n) {
        pc_log(PC_LOG_ERROR, "reload",
               "failed with %zu error%s: configuration %llu stays in effect", nerr,
               nerr == 1 ? "" : "s", (unsigned long long)s->cfg->generation);
        return;
    }
    if (!same_listeners(s->cfg, n)) {
        pc_log(PC_LOG_ERROR, "reload",
               "listeners were added, removed or moved: that needs a restart; configuration %llu "
               "stays in effect",
               (unsigned long long)s->cfg->generation);
        pc_config_unref(n);
        return;
    }
    n->generation = s->cfg->generation + 1;
    for (unsigned i = 0; i < s->nworkers; i++)
        pc_worker_reload(&s->workers[i], n);
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

int pc_server_run(pc_config_t *cfg, const pc_config_opts_t *opts)
{
    pc_server_t s = {0};
    int rc = 1;
    int *fds = NULL;
    unsigned nw = (unsigned)cfg->workers;
    size_t nl = cfg->n_listeners;
    struct event *sigs[6] = {0};
    s.cfg = cfg;
    s.opts = *opts;
    cfg->generation = 1;
    s.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s.access_log.fd = s.security_log.fd = s.error_log.fd = -1;
    signal(SIGPIPE, SIG_IGN);
    s.per_ip = pc_connlimit_new();
    if (s.done_fd < 0 || !s.per_ip || open_logs(&s) != 0)
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
    for (unsigned w = 0; w < nw; w++)
        pc_worker_start(&s.workers[w]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pc_log(PC_LOG_INFO, "server", "portcullis started: %u workers, configuration %s%s%s", nw,
           cfg->file, cfg->stage ? ", stage " : "", cfg->stage ? cfg->stage : "");

    event_base_dispatch(s.base);
    for (unsigned w = 0; w < s.nworkers; w++)
        pthread_join(s.workers[w].thread, NULL);
    rc = 0;
    pc_log(PC_LOG_INFO, "server", "stopped");
out_workers:
    for (unsigned w = 0; w < s.nworkers; w++)
        pc_worker_free(&s.workers[w]);
    goto out_logs;
out:
    for (size_t i = 0; fds && i < (size_t)nw * nl; i++)
        if (fds[i] >= 0)
            close(fds[i]);
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
    free(fds);
    free(s.workers);
    pc_connlimit_free(s.per_ip);
    pc_config_unref(s.cfg); /* the latest, after reloads */
    return rc;
}
