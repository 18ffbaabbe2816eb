/*
 * sock.h — a non-blocking socket watched by one edge-triggered libevent
 * event for its whole life.
 *
 * The event is registered once (EV_READ|EV_WRITE|EV_CLOSED|EV_ET|EV_PERSIST), so
 * steady-state traffic costs no epoll_ctl calls; readiness is remembered in
 * rd_ready / wr_ready (set by the event, cleared when an operation would
 * block or when a short read/write shows the kernel buffer is drained/full).
 * Every socket always has a timeout armed; its meaning depends on the owner's
 * state (see docs/internals/request-lifecycle.md).
 *
 * With TLS (ssl set), the same calls go through OpenSSL: SSL_read/SSL_write's
 * want-read/want-write map onto the same readiness flags.
 */
#ifndef PC_SOCK_H
#define PC_SOCK_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define PC_IO_AGAIN (-1) /* would block: wait for the event */
#define PC_IO_ERR   (-2) /* connection error (reset, broken pipe...) */

typedef struct pc_sock_s {
    int fd;
    unsigned rd_ready : 1;
    unsigned wr_ready : 1;
    unsigned eof : 1;                /* the peer closed its sending side (read returned 0) */
    unsigned rdhup : 1;              /* the kernel reported the peer's FIN (EV_CLOSED) */
    unsigned armed : 1;              /* the event is registered */
    unsigned want_write_to_read : 1; /* SSL_read needs the socket writable */
    unsigned want_read_to_write : 1; /* SSL_write needs the socket readable */
    int64_t timeout_ms;              /* the inactivity timeout in force */
    int64_t active_ms;               /* last activity or (re)arm, on the loop's clock */
    struct event_base *base;
    SSL *ssl; /* NULL: plain TCP */
    struct event ev;
} pc_sock_t;

/* Binds s to fd (already non-blocking) on base; cb(fd, what, arg) runs on
 * events. Nothing is registered until pc_sock_arm. */
void pc_sock_init(pc_sock_t *s, struct event_base *base, int fd, event_callback_fn cb, void *arg);

/*
 * Sets the inactivity timeout: the event fires when nothing happened on the
 * socket for ms milliseconds. Re-arming with the interval already in force
 * only records the time (no event_add): an early timer is re-armed for the
 * rest of the interval when it fires, in pc_sock_events. So the common case —
 * the same timeout state after state — costs no timer-heap work.
 */
void pc_sock_arm(pc_sock_t *s, int64_t ms);

/* Records what an event reported and returns it, minus EV_TIMEOUT when the
 * timer fired before the socket was really inactive for the interval (it is
 * then re-armed). Call it first thing in the event callback. */
short pc_sock_events(pc_sock_t *s, short what);

/* Reads up to n bytes: > 0 bytes read, 0 at end of stream, PC_IO_AGAIN or
 * PC_IO_ERR. */
ssize_t pc_sock_read(pc_sock_t *s, char *buf, size_t n);

/* Writes from iov: bytes written (> 0), PC_IO_AGAIN or PC_IO_ERR. */
ssize_t pc_sock_writev(pc_sock_t *s, const struct iovec *iov, int cnt);

/* Gives OpenSSL's record buffers (up to ~34 KiB) back while a connection
 * idles (no-op for plain sockets and while data is pending). */
void pc_sock_idle(pc_sock_t *s);

/* Advances a TLS handshake: 1 when complete, 0 to wait for the event, -1
 * when it failed (wrong protocol, no shared cipher, bad client certificate,
 * plain HTTP sent to a TLS port, ...). */
int pc_sock_handshake(pc_sock_t *s);

/* 1 when nothing is waiting to be read and the peer has not closed: the
 * socket may be reused (an upstream connection going back to its pool).
 * Edge-triggered readiness cannot tell alone, so it peeks when in doubt. */
int pc_sock_quiet(pc_sock_t *s);

/* 1 when the peer closed and sent nothing more (a client that went away). */
int pc_sock_peer_gone(pc_sock_t *s);

/* Unregisters the event and closes the descriptor (safe inside the event's
 * own callback; the memory of s must stay valid until that callback returns). */
void pc_sock_close(pc_sock_t *s);

/* Sets TCP_NODELAY; ignores failures (e.g. on Unix sockets). */
void pc_sock_nodelay(int fd);

#endif
