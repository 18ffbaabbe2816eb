/*
 * conn.h — a client connection: reads request heads, runs one request at a
 * time (pipelined requests wait in the buffer and are answered in order),
 * keeps the connection alive between requests, and closes it gracefully.
 *
 * Ownership: the worker owns its connections (listed in w->conns); a
 * connection owns its buffer and its current request.
 */
#ifndef PC_CONN_H
#define PC_CONN_H

#include <stdint.h>

#include "buf.h"
#include "cidr.h"
#include "http1.h"
#include "pc_types.h"
#include "sock.h"

typedef enum {
    PC_CS_HANDSHAKE = 0, /* TLS handshake in progress */
    PC_CS_IDLE,          /* between requests, nothing received */
    PC_CS_HEAD,          /* receiving a request head */
    PC_CS_ACTIVE,        /* a request is in progress */
    PC_CS_LINGER,        /* final reply sent; draining what the client still sends */
    PC_CS_CLOSED
} pc_conn_state_e;

struct pc_conn_s {
    pc_sock_t sock;
    pc_worker_t *w;
    uint16_t listener; /* index in the configuration's listeners */
    pc_buf_t in;
    pc_http_scan_t scan;
    pc_req_t *req;
    char *client_subject; /* verified client certificate subject (mTLS), or NULL */
    pc_ip_t peer;
    char peer_str[46];          /* text form of peer, for X-Forwarded-For and logs */
    uint8_t state;              /* pc_conn_state_e */
    int64_t deadline;           /* ms (worker clock) for IDLE, HEAD and LINGER */
    uint32_t drained;           /* bytes read and dropped while lingering */
    unsigned per_ip : 1;        /* counted in the per-address connection limit */
    unsigned listener_gone : 1; /* a reload removed its listener: close after this request */
    unsigned in_idle : 1;       /* in the worker's list of idle keep-alive connections */
    pc_conn_t *next, *prev;
    pc_conn_t *idle_next, *idle_prev; /* that list, oldest first */
};

/* Takes over a socket accepted on listener number `listener` (per_ip: it
 * was counted in the per-address limit). 0, or -1 (fd closed). */
int pc_conn_accept(pc_worker_t *w, int fd, const struct sockaddr *peer, uint16_t listener,
                   int per_ip);

/* Drives the current request and everything after it (called from the
 * client's and the upstream's socket events). */
void pc_conn_drive(pc_conn_t *c);

/* Closes now (no lingering); safe in any callback. */
void pc_conn_close(pc_conn_t *c);

/* Closes c if it is idle (used when draining). */
void pc_conn_close_if_idle(pc_conn_t *c);

/* Frees a closed connection (the reaper calls this). */
void pc_conn_free(pc_conn_t *c);

/* Re-arms the client socket's timeout for the current state. */
void pc_conn_arm(pc_conn_t *c, int64_t ms);

#endif
