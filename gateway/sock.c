/*
 * sock.c — see sock.h.
 */
#include "sock.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int64_t now_ms(pc_sock_t *s)
{
    struct timeval tv;
    event_base_gettimeofday_cached(s->base, &tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void add_timer(pc_sock_t *s, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(&s->ev, &tv);
    s->armed = 1;
}

void pc_sock_init(pc_sock_t *s, struct event_base *base, int fd, event_callback_fn cb, void *arg)
{
    s->fd = fd;
    s->rd_ready = 0;
    s->wr_ready = 0;
    s->eof = 0;
    s->rdhup = 0;
    s->armed = 0;
    s->timeout_ms = -1;
    s->base = base;
    s->ssl = NULL;
    s->want_write_to_read = s->want_read_to_write = 0;
    event_assign(&s->ev, base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST, cb, arg);
}

void pc_sock_arm(pc_sock_t *s, int64_t ms)
{
    s->active_ms = now_ms(s);
    if (s->armed && s->timeout_ms == ms)
        return;
    s->timeout_ms = ms;
    add_timer(s, ms);
}

short pc_sock_events(pc_sock_t *s, short what)
{
    int64_t now = now_ms(s);
    if (what & (EV_READ | EV_CLOSED))
        s->rd_ready = 1;
    if (what & EV_CLOSED)
        s->rdhup = 1;
    if (what & EV_WRITE)
        s->wr_ready = 1;
    /* OpenSSL sometimes reads to write or writes to read: wake the other side */
    if ((what & EV_WRITE) && s->want_write_to_read)
        s->rd_ready = 1;
    if ((what & (EV_READ | EV_CLOSED)) && s->want_read_to_write)
        s->wr_ready = 1;
    if (what & EV_TIMEOUT) {
        int64_t left = s->active_ms + s->timeout_ms - now;
        if (left > 0) {
            add_timer(s, left); /* fired early: armed before the last activity */
            what &= (short)~EV_TIMEOUT;
        }
    } else {
        s->active_ms = now;
    }
    return what;
}

/* Maps an SSL_read/SSL_write/SSL_do_handshake failure onto the flags. */
static ssize_t tls_fail(pc_sock_t *s, int r, int reading)
{
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->rd_ready = 0;
        s->want_read_to_write = !reading;
        return PC_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->wr_ready = 0;
        s->want_write_to_read = reading;
        return PC_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN: /* close_notify */
        s->eof = 1;
        s->rd_ready = 0;
        return 0;
    default:
        ERR_clear_error();
        s->rd_ready = s->wr_ready = 0;
        return PC_IO_ERR;
    }
}

static ssize_t tls_read(pc_sock_t *s, char *buf, size_t n)
{
    int r = SSL_read(s->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    s->want_write_to_read = 0;
    if (r > 0)
        return r; /* OpenSSL may hold more records: read on until WANT_READ */
    if (r == 0 && SSL_get_error(s->ssl, r) == SSL_ERROR_SYSCALL) {
        s->eof = 1; /* the peer closed without close_notify */
        s->rd_ready = 0;
        ERR_clear_error();
        return 0;
    }
    return tls_fail(s, r, 1);
}

/* One record's worth at a time: small iovecs (a head and a body slice) are
 * coalesced so they go out as one record; OpenSSL needs a retry with the
 * same bytes after WANT_WRITE, which the caller's unchanged iovecs give. */
static ssize_t tls_writev(pc_sock_t *s, const struct iovec *iov, int cnt)
{
    static __thread char scratch[16384];
    const void *p = iov[0].iov_base;
    size_t n = iov[0].iov_len;
    if (cnt > 1 && n < sizeof(scratch)) {
        n = 0;
        for (int i = 0; i < cnt && n < sizeof(scratch); i++) {
            size_t take = iov[i].iov_len;
            if (take > sizeof(scratch) - n)
                take = sizeof(scratch) - n;
            memcpy(scratch + n, iov[i].iov_base, take);
            n += take;
        }
        p = scratch;
    }
    if (n > INT_MAX)
        n = INT_MAX;
    int r = SSL_write(s->ssl, p, (int)n);
    s->want_read_to_write = 0;
    if (r > 0)
        return r;
    return tls_fail(s, r, 0);
}

void pc_sock_idle(pc_sock_t *s)
{
    if (s->ssl && !SSL_has_pending(s->ssl))
        SSL_free_buffers(s->ssl);
}

int pc_sock_handshake(pc_sock_t *s)
{
    int r = SSL_do_handshake(s->ssl);
    if (r == 1)
        return 1;
    ssize_t rc = tls_fail(s, r, 1);
    return rc == PC_IO_AGAIN ? 0 : -1;
}

ssize_t pc_sock_read(pc_sock_t *s, char *buf, size_t n)
{
    if (s->ssl)
        return tls_read(s, buf, n);
    for (;;) {
        ssize_t r = recv(s->fd, buf, n, 0);
        if (r > 0) {
            /* A short read drained the socket and the next data brings a new
             * edge -- unless the FIN is already queued behind the data: it
             * raised no edge of its own, so read on to see the end. */
            if ((size_t)r < n && !s->rdhup)
                s->rd_ready = 0;
            return r;
        }
        if (r == 0) {
            s->eof = 1;
            s->rd_ready = 0;
            return 0;
        }
        if (errno == EINTR)
            continue;
        s->rd_ready = 0;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? PC_IO_AGAIN : PC_IO_ERR;
    }
}

ssize_t pc_sock_writev(pc_sock_t *s, const struct iovec *iov, int cnt)
{
    if (s->ssl)
        return tls_writev(s, iov, cnt);
    size_t want = 0;
    for (int i = 0; i < cnt; i++)
        want += iov[i].iov_len;
    for (;;) {
        struct msghdr mh = {0};
        mh.msg_iov = (struct iovec *)iov;
        mh.msg_iovlen = (size_t)cnt;
        ssize_t w = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
        if (w >= 0) {
            if ((size_t)w < want)
                s->wr_ready = 0;
            return w;
        }
        if (errno == EINTR)
            continue;
        s->wr_ready = 0;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? PC_IO_AGAIN : PC_IO_ERR;
    }
}

int pc_sock_quiet(pc_sock_t *s)
{
    char b;
    if (s->eof || s->rdhup || s->fd < 0 || (s->ssl && SSL_has_pending(s->ssl)))
        return 0;
    if (!s->rd_ready)
        return 1;
    ssize_t r = recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        s->rd_ready = 0;
        return 1;
    }
    return 0;
}

int pc_sock_peer_gone(pc_sock_t *s)
{
    char b;
    if (s->eof)
        return 1;
    if (!s->rdhup || s->fd < 0)
        return 0;
    if (s->ssl) {
        /* after the FIN, anything but a complete record of data means gone
         * (a close_notify, or half a record that can never be completed) */
        int r = SSL_peek(s->ssl, &b, 1);
        int gone = r <= 0 && SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        return gone;
    }
    return recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void pc_sock_close(pc_sock_t *s)
{
    if (s->armed)
        event_del(&s->ev);
    s->armed = 0;
    if (s->ssl) {
        if (SSL_is_init_finished(s->ssl))
            SSL_shutdown(s->ssl); /* one close_notify, without waiting for the peer's */
        SSL_free(s->ssl);
        ERR_clear_error();
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->rd_ready = s->wr_ready = 0;
}

void pc_sock_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
