/*
 * upstream.c — see upstream.h.
 */
#include "upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "health.h"
#include "log.h"
#include "request.h"
#include "worker.h"

/* The circuit breaker's settings; failures 0 means none. */
#define CB_FAILURES(uc) ((uc)->circuit_breaker ? (unsigned)(uc)->circuit_breaker->failures : 0u)
#define CB_COOLDOWN(uc) ((uc)->circuit_breaker ? (uc)->circuit_breaker->cooldown : 0)

static void pool_remove(pc_uppool_t *p, pc_upconn_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        p->idle = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    p->nidle--;
}

static void upconn_close(pc_upconn_t *u)
{
    if (u->state == PC_UP_CLOSED)
        return;
    if (u->state == PC_UP_IDLE)
        pool_remove(&u->up->pools[u->server], u);
    u->state = PC_UP_CLOSED;
    u->req = NULL;
    pc_sock_close(&u->sock);
    pc_buf_release(&u->in, &u->w->bufs, 1);
    pc_worker_reap_upconn(u->w, u);
}

static void upconn_event(evutil_socket_t fd, short what, void *arg)
{
    pc_upconn_t *u = arg;
    (void)fd;
    what = pc_sock_events(&u->sock, what);
    if (!what)
        return;
    if (u->state == PC_UP_IDLE) {
        /* An idle connection has nothing to say: data, EOF or the idle
         * timeout all end it. Write readiness alone is not news. */
        if (what & (EV_READ | EV_TIMEOUT))
            upconn_close(u);
        return;
    }
    if (what & EV_TIMEOUT)
        u->timed_out = 1;
    if (u->req)
        pc_conn_drive(u->req->conn);
}

pc_upstream_rt_t *pc_upstream_rt_new(pc_worker_t *w, const pc_config_t *cfg)
{
    pc_upstream_rt_t *ups = calloc(cfg->n_upstreams ? cfg->n_upstreams : 1, sizeof(*ups));
    if (!ups)
        return NULL;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        ups[i].conf = &cfg->upstreams[i];
        /* start workers on different servers so they do not all hit the first */
        ups[i].rr = w->id;
        ups[i].pools = calloc(cfg->upstreams[i].n_servers, sizeof(pc_uppool_t));
        ups[i].active = calloc(cfg->upstreams[i].n_servers, sizeof(uint32_t));
        if (!ups[i].pools || !ups[i].active) {
            pc_upstream_rt_free(ups, cfg);
            return NULL;
        }
    }
    return ups;
}

void pc_upstream_rt_free(pc_upstream_rt_t *ups, const pc_config_t *cfg)
{
    if (!ups)
        return;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        pc_upstream_rt_t *rt = &ups[i];
        for (size_t s = 0; rt->pools && s < cfg->upstreams[i].n_servers; s++)
            while (rt->pools[s].idle)
                upconn_close(rt->pools[s].idle);
        free(rt->pools);
        free(rt->active);
    }
    free(ups);
}

/* A new connection to server, or NULL with *nomem set when memory, not the
 * server, was missing (which must not count against its health). */
static pc_upconn_t *upconn_connect(pc_worker_t *w, pc_upstream_rt_t *up, uint32_t server,
                                   int *nomem)
{
    const pc_sockaddr_t *a = &up->conf->servers[server].addr;
    pc_upconn_t *u = calloc(1, sizeof(*u));
    *nomem = !u;
    if (!u)
        return NULL;
    int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        free(u);
        return NULL;
    }
    pc_sock_nodelay(fd);
    int rc = connect(fd, &a->u.sa, a->len);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        free(u);
        return NULL;
    }
    u->w = w;
    u->up = up;
    u->server = server;
    pc_sock_init(&u->sock, w->base, fd, upconn_event, u);
    if (rc == 0) {
        u->state = PC_UP_ACTIVE;
        u->sock.wr_ready = 1;
        pc_sock_arm(&u->sock, up->conf->response_timeout);
    } else {
        u->state = PC_UP_CONNECTING;
        pc_sock_arm(&u->sock, up->conf->connect_timeout);
    }
    return u;
}

/* The next candidate not yet tried: round robin from up->rr, or the one
 * with the fewest attached connections (ties: round-robin order). */
static int64_t next_server(pc_upstream_rt_t *up, unsigned tried_mask, const uint8_t *skip)
{
    uint32_t n = (uint32_t)up->conf->n_servers;
    int64_t best = -1;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t s = (up->rr + k) % n;
        if ((s < 32 && (tried_mask & (1u << s))) || skip[s])
            continue;
        if (up->conf->balance != PC_BALANCE_LEAST_CONN)
            return s;
        if (best < 0 || up->active[s] < up->active[best])
            best = s;
    }
    return best;
}

pc_upconn_t *pc_upconn_acquire(pc_worker_t *w, pc_upstream_rt_t *up, pc_req_t *r, unsigned *tried,
                               int fresh, pc_acquire_e *why)
{
    const pc_upstream_conf_t *uc = up->conf;
    uint32_t n = (uint32_t)uc->n_servers;
    uint8_t skip_small[64];
    uint8_t *skip = n <= sizeof(skip_small) ? skip_small : calloc(n, 1);
    int down = 0, open = 0, nomem = 0;
    pc_upconn_t *u = NULL;
    if (!skip) {
        *why = PC_ACQ_NOMEM;
        return NULL;
    }
    memset(skip, 0, n);
    for (;;) {
        int64_t pick = next_server(up, *tried, skip);
        if (pick < 0)
            break;
        uint32_t s = (uint32_t)pick;
        skip[s] = 1;
        pc_health_t *h = uc->servers[s].health;
        pc_health_pick_e pick_h =
            h ? pc_health_pick(h, -1, uc->connect_timeout + uc->response_timeout) : PC_HEALTH_USE;
        if (pick_h == PC_HEALTH_DOWN || pick_h == PC_HEALTH_OPEN) {
            down += pick_h == PC_HEALTH_DOWN;
            open += pick_h == PC_HEALTH_OPEN;
            continue;
        }
        up->rr = s + 1;
        if (s < 32)
            *tried |= 1u << s;
        pc_uppool_t *p = &up->pools[s];
        u = fresh ? NULL : p->idle;
        if (u) {
            pool_remove(p, u);
            u->state = PC_UP_ACTIVE;
            u->timed_out = 0;
            pc_sock_arm(&u->sock, uc->response_timeout);
        } else {
            u = upconn_connect(w, up, s, &nomem);
            if (!u && nomem)
                break;
            if (!u) {
                if (h)
                    pc_health_failure(h, pc_mono_ms(), CB_FAILURES(uc), CB_COOLDOWN(uc));
                continue; /* refused at once: the next server */
            }
        }
        u->req = r;
        up->active[s]++;
        break;
    }
    if (skip != skip_small)
        free(skip);
    *why = u       ? PC_ACQ_OK
           : nomem ? PC_ACQ_NOMEM
           : open  ? PC_ACQ_OPEN
           : down  ? PC_ACQ_DOWN
                   : PC_ACQ_TRIED;
    return u;
}

void pc_upconn_outcome(pc_upconn_t *u, int ok)
{
    const pc_upstream_conf_t *uc = u->up->conf;
    pc_health_t *h = uc->servers[u->server].health;
    if (!h)
        return;
    if (ok)
        pc_health_success(h);
    else
        pc_health_failure(h, pc_mono_ms(), CB_FAILURES(uc), CB_COOLDOWN(uc));
}

int pc_upconn_connected(pc_upconn_t *u)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(u->sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0)
        u->state = PC_UP_ACTIVE;
    return err;
}

void pc_upconn_release(pc_upconn_t *u, int reusable)
{
    pc_worker_t *w = u->w;
    pc_uppool_t *p = &u->up->pools[u->server];
    if (u->req && u->up->active[u->server])
        u->up->active[u->server]--;
    u->req = NULL;
    /* Only a connection with nothing more to say goes back: stray bytes after
     * a response would otherwise reach the next request, another client's. */
    if (!reusable || w->draining || u->state != PC_UP_ACTIVE ||
        p->nidle >= (unsigned)u->up->conf->keepalive || pc_buf_unread(&u->in) != 0 ||
        !pc_sock_quiet(&u->sock)) {
        upconn_close(u);
        return;
    }
    /* An idle connection keeps no buffer. */
    pc_buf_release(&u->in, &w->bufs, 1);
    u->state = PC_UP_IDLE;
    u->timed_out = 0;
    u->prev = NULL;
    u->next = p->idle;
    if (p->idle)
        p->idle->prev = u;
    p->idle = u;
    p->nidle++;
    pc_sock_arm(&u->sock, u->up->conf->keepalive_timeout);
}

void pc_upconn_free(pc_upconn_t *u)
{
    free(u);
}
