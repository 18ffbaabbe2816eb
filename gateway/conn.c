/*
 * conn.c — see conn.h and docs/internals/request-lifecycle.md.
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "request.h"
#include "tls.h"
#include "worker.h"

#define LINGER_MS       5000       /* how long a closing connection drains input */
#define LINGER_MAX      (1u << 20) /* ... and how much of it */
#define MIN_BODY_WINDOW 8192       /* room kept after a head for body bytes */

static void conn_event(evutil_socket_t fd, short what, void *arg);

static int64_t now_ms(pc_conn_t *c)
{
    return pc_worker_now_ms(c->w);
}

void pc_conn_arm(pc_conn_t *c, int64_t ms)
{
    if (c->state != PC_CS_CLOSED)
        pc_sock_arm(&c->sock, ms);
}

/* Arms the timeout from an absolute deadline. */
static void arm_deadline(pc_conn_t *c)
{
    pc_conn_arm(c, c->deadline - now_ms(c));
}

int pc_conn_accept(pc_worker_t *w, int fd, const struct sockaddr *peer, uint16_t listener,
                   int per_ip)
{
    const pc_listener_conf_t *lc = &pc_worker_cfg(w)->listeners[listener];
    pc_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -1;
    }
    c->w = w;
    c->listener = listener;
    c->state = PC_CS_IDLE;
    c->peer = pc_ip_from_sockaddr(peer);
    pc_ip_format(c->peer, c->peer_str);
    c->per_ip = (unsigned)per_ip;
    pc_sock_nodelay(fd);
    pc_sock_init(&c->sock, w->base, fd, conn_event, c);
    if (lc->tls) {
        c->sock.ssl = pc_tls_accept(lc->tls->tls, fd);
        if (!c->sock.ssl) {
            close(fd);
            free(c);
            return -1;
        }
        c->state = PC_CS_HANDSHAKE;
    }
    /* Until the first byte, a new connection gets header_timeout (a client
     * that connects and says nothing is cut as soon as a slow one would be). */
    c->deadline = now_ms(c) + pc_worker_cfg(w)->limits.header_timeout;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    arm_deadline(c);
    return 0;
}

void pc_conn_free(pc_conn_t *c)
{
    free(c->client_subject);
    free(c);
}

void pc_conn_close(pc_conn_t *c)
{
    pc_worker_t *w = c->w;
    if (c->state == PC_CS_CLOSED)
        return;
    pc_worker_idle_remove(w, c);
    c->state = PC_CS_CLOSED;
    pc_sock_close(&c->sock);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    w->nconns--;
    pc_req_t *r = c->req;
    if (r && r->suspended) {
        /* The filter still holds the request; the connection stays allocated
         * until it resumes (pc_conn_drive then finishes both). */
        r->abandoned = 1;
    } else {
        if (r) {
            c->req = NULL;
            pc_req_finish(r);
        }
        pc_buf_release(&c->in, &w->bufs, 1);
        pc_worker_reap_conn(w, c);
    }
    pc_worker_conn_closed(w, c);
}

void pc_conn_close_if_idle(pc_conn_t *c)
{
    if ((c->state == PC_CS_IDLE || c->state == PC_CS_HANDSHAKE) && !c->req &&
        (!c->in.data || pc_buf_unread(&c->in) == 0))
        pc_conn_close(c);
}

/* Half-closes and reads what the client still sends for a while, so that
 * the reply is not destroyed by a TCP reset (data left unread at close()
 * makes the kernel send RST, which can discard the reply in flight). */
static void start_linger(pc_conn_t *c)
{
    if (c->sock.ssl)
        SSL_shutdown(c->sock.ssl); /* close_notify before the FIN */
    shutdown(c->sock.fd, SHUT_WR);
    c->state = PC_CS_LINGER;
    c->deadline = now_ms(c) + LINGER_MS;
    c->drained = 0;
    pc_buf_release(&c->in, &c->w->bufs, 1);
    arm_deadline(c);
}

static void linger(pc_conn_t *c, short what)
{
    char scratch[4096];
    if (what & EV_TIMEOUT) {
        pc_conn_close(c);
        return;
    }
    while (c->sock.rd_ready) {
        /* raw bytes, even on TLS: they are thrown away */
        ssize_t n = recv(c->sock.fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            c->sock.rd_ready = errno == EINTR;
            continue;
        }
        c->drained += n > 0 ? (uint32_t)n : 0;
        if (n <= 0 || c->drained > LINGER_MAX) {
            pc_conn_close(c);
            return;
        }
    }
    arm_deadline(c);
}

/* A new request on c, living in its own arena; NULL (connection closed)
 * when out of memory. */
static pc_req_t *new_request(pc_conn_t *c)
{
    pc_worker_t *w = c->w;
    pc_arena_t a;
    pc_arena_init(&a, &w->blocks, 0, PC_REQ_ARENA_CAP);
    pc_req_t *r = pc_arena_calloc(&a, sizeof(*r));
    if (!r) {
        pc_arena_free(&a);
        pc_conn_close(c);
        return NULL;
    }
    r->arena = a;
    pc_req_init(r, c);
    c->req = r;
    c->state = PC_CS_ACTIVE;
    /* Timeouts while the request runs are the proxy's (see proxy.c); until
     * then, nothing is expected from the client. */
    pc_conn_arm(c, pc_worker_cfg(w)->limits.idle_timeout);
    return r;
}

/* Answers a head that could not be read (err: a pc_http code, or 0 for a
 * head that did not arrive in time). */
static void refuse_head(pc_conn_t *c, int err)
{
    pc_req_t *r = new_request(c);
    if (!r)
        return;
    r->bytes_in = c->in.data ? c->in.wpos : 0;
    if (c->in.data)
        c->in.rpos = c->in.pin = c->in.wpos;
    if (err) {
        pc_req_respond_http_error(r, err);
    } else {
        r->close_after = 1;
        pc_req_respond(r, PC_REPLY_request_timeout, "header timeout");
    }
}

/* Creates the request for a complete head ending at `end`. */
static void start_request(pc_conn_t *c, size_t end)
{
    pc_worker_t *w = c->w;
    pc_req_t *r = new_request(c);
    if (!r)
        return;
    const pc_limits_conf_t *lim = &pc_worker_cfg(w)->scan_limits;
    if (c->in.cap - end < MIN_BODY_WINDOW &&
        pc_buf_grow(&c->in, (uint32_t)end + PC_BUF_SIZE, &w->bufs) != 0) {
        pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
        return;
    }
    uint32_t cap = c->scan.lines;
    pc_http_header_t *hdrs = pc_arena_alloc(&r->arena, (cap ? cap : 1) * sizeof(*hdrs));
    if (!hdrs) {
        pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
        return;
    }
    pc_http_limits_t hl = {(size_t)lim->max_uri, (size_t)lim->max_header_bytes,
                           (uint32_t)lim->max_headers};
    int rc = pc_http_parse_request(c->in.data + c->scan.start, end - c->scan.start, &hl, hdrs, cap,
                                   &r->http);
    c->in.pin = c->in.rpos = (uint32_t)end;
    r->bytes_in = end;
    if (rc != PC_HTTP_OK) {
        pc_req_respond_http_error(r, rc);
        return;
    }
    r->body_unread = r->http.body == PC_BODY_CHUNKED ||
                     (r->http.body == PC_BODY_LENGTH && r->http.content_length > 0);
    pc_req_start(r);
}

/* Between requests a connection holds neither an input buffer nor, on TLS,
 * record buffers: idle keep-alive connections are most connections. */
static void release_idle_buffers(pc_conn_t *c)
{
    pc_buf_release(&c->in, &c->w->bufs, 0);
    if (!c->in.data)
        pc_sock_idle(&c->sock);
}

/* Reads and scans a request head. Returns 1 when a request was started,
 * 0 when waiting for bytes, -1 when the connection was closed. */
static int read_head(pc_conn_t *c)
{
    pc_worker_t *w = c->w;
    /* Head limits: the largest any route allows (each route checks its own
     * once the request is routed). */
    const pc_limits_conf_t *lim = &pc_worker_cfg(w)->scan_limits;
    pc_http_limits_t hl = {(size_t)lim->max_uri, (size_t)lim->max_header_bytes,
                           (uint32_t)lim->max_headers};
    /* The largest head the limits allow, plus slack for leading CRLFs. */
    uint32_t head_max = (uint32_t)(lim->max_uri + lim->max_header_bytes + 128);
    for (;;) {
        if (c->in.data && pc_buf_unread(&c->in)) {
            if (c->state == PC_CS_IDLE) {
                pc_worker_idle_remove(w, c);
                c->state = PC_CS_HEAD;
                /* header_timeout runs from the first byte, not per byte */
                c->deadline = now_ms(c) + pc_worker_cfg(w)->limits.header_timeout;
            }
            size_t end;
            int rc = pc_http_scan(&c->scan, c->in.data, c->in.wpos, &hl, &end);
            if (rc == PC_HTTP_OK || rc < 0) {
                if (rc == PC_HTTP_OK)
                    start_request(c, end);
                else
                    refuse_head(c, rc);
                return c->state == PC_CS_CLOSED ? -1 : 1;
            }
        }
        if (c->sock.eof) {
            /* closed between requests or mid-head: nobody to answer */
            pc_conn_close(c);
            return -1;
        }
        if (!c->sock.rd_ready)
            return 0;
        if (pc_buf_ensure(&c->in, &w->bufs) != 0) {
            pc_conn_close(c);
            return -1;
        }
        if (pc_buf_space(&c->in) == 0) {
            /* The scanner refuses heads over the limits before this. */
            uint32_t want = head_max + PC_BUF_SIZE;
            if (c->in.cap >= want || pc_buf_grow(&c->in, want, &w->bufs) != 0) {
                pc_conn_close(c);
                return -1;
            }
        }
        ssize_t n = pc_sock_read(&c->sock, c->in.data + c->in.wpos, pc_buf_space(&c->in));
        if (n == PC_IO_AGAIN) {
            if (c->state == PC_CS_IDLE)
                release_idle_buffers(c); /* a TLS read can find nothing */
            return 0;
        }
        if (n < 0) {
            pc_conn_close(c);
            return -1;
        }
        c->in.wpos += (uint32_t)n;
    }
}

/* The current request is over: log it, then keep the connection for the
 * next one or close it. */
static void request_done(pc_conn_t *c)
{
    pc_req_t *r = c->req;
    pc_worker_t *w = c->w;
    int unread = r->body_unread;
    int close_it =
        r->close_after || !r->http.keep_alive || w->draining || unread || c->listener_gone;
    c->req = NULL;
    pc_req_finish(r);
    pc_buf_unpin(&c->in);
    c->scan = (pc_http_scan_t){0};
    if (close_it) {
        if (unread || pc_buf_unread(&c->in) || c->sock.rd_ready)
            start_linger(c);
        else
            pc_conn_close(c);
        return;
    }
    c->state = PC_CS_IDLE;
    c->deadline = now_ms(c) + pc_worker_cfg(w)->limits.idle_timeout;
    pc_worker_idle_add(w, c);
    release_idle_buffers(c);
    arm_deadline(c);
}

void pc_conn_drive(pc_conn_t *c)
{
    for (;;) {
        pc_req_t *r = c->req;
        if (c->state == PC_CS_CLOSED) {
            /* closed while a filter held the request: finish both now */
            if (r && !r->suspended) {
                c->req = NULL;
                pc_req_finish(r);
                pc_buf_release(&c->in, &c->w->bufs, 1);
                pc_worker_reap_conn(c->w, c);
            }
            return;
        }
        if (r) {
            if (r->suspended) {
                /* Nobody reads while a filter holds the request; a client
                 * that hung up (perhaps in the very event that brought the
                 * request) must still be noticed: the request is abandoned. */
                if (c->sock.rdhup && pc_sock_peer_gone(&c->sock))
                    pc_conn_close(c);
                return;
            }
            pc_req_run(r);
            if (r->state != PC_RS_DONE || c->state == PC_CS_CLOSED)
                return;
            request_done(c);
            continue;
        }
        if (c->state != PC_CS_IDLE && c->state != PC_CS_HEAD)
            return;
        if (read_head(c) <= 0) {
            if (c->state == PC_CS_HEAD || c->state == PC_CS_IDLE)
                arm_deadline(c);
            return;
        }
    }
}

/* The TLS handshake, bounded by header_timeout from accept (a client that
 * connects and never sends a ClientHello is cut like a silent one). */
static void handshake(pc_conn_t *c, short what)
{
    if ((what & EV_TIMEOUT) && now_ms(c) >= c->deadline) {
        pc_conn_close(c);
        return;
    }
    int rc = pc_sock_handshake(&c->sock);
    if (rc < 0) {
        pc_conn_close(c); /* bad version, no shared cipher, bad client certificate, plain HTTP */
        return;
    }
    if (rc == 0) {
        arm_deadline(c);
        return;
    }
    char subject[1024];
    if (pc_tls_client_subject(c->sock.ssl, subject, sizeof(subject)))
        c->client_subject = strdup(subject);
    c->state = PC_CS_IDLE;
    c->deadline = now_ms(c) + pc_worker_cfg(c->w)->limits.header_timeout;
    c->sock.rd_ready = 1; /* the request may have come with the handshake's last flight */
    pc_conn_drive(c);
}

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
    pc_conn_t *c = arg;
    (void)fd;
    what = pc_sock_events(&c->sock, what);
    if (!what)
        return; /* a timer that fired early, now re-armed */
    switch (c->state) {
    case PC_CS_HANDSHAKE:
        handshake(c, what);
        return;
    case PC_CS_IDLE:
    case PC_CS_HEAD:
        if ((what & EV_TIMEOUT) && now_ms(c) >= c->deadline) {
            if (c->state == PC_CS_HEAD) {
                /* part of a head arrived, the rest did not: 408 */
                refuse_head(c, 0);
                pc_conn_drive(c);
            } else {
                pc_conn_close(c);
            }
            return;
        }
        pc_conn_drive(c);
        return;
    case PC_CS_ACTIVE:
        if ((what & EV_TIMEOUT) && c->req && !c->req->suspended)
            c->req->client_timed_out = 1;
        pc_conn_drive(c);
        return;
    case PC_CS_LINGER:
        linger(c, what);
        return;
    default:
        return;
    }
}
