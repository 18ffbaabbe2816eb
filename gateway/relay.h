/*
 * relay.h — moves one message body from a source socket to a destination
 * socket, re-framing it on the way, with back-pressure and without copies.
 *
 * The source's bytes are decoded in place in the source's buffer (Content-
 * Length, chunked, or until close) and written to the destination straight
 * from that buffer with writev, preceded once by `pre` (a message head) and
 * framed as the destination needs (Content-Length, chunked, or until close).
 * Nothing more is read from the source until what was decoded has been
 * written, so a slow reader slows the sender instead of filling memory.
 */
#ifndef PC_RELAY_H
#define PC_RELAY_H

#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"
#include "chunked.h"
#include "sock.h"

enum {
    PC_RELAY_AGAIN = 0, /* waiting for the source or the destination */
    PC_RELAY_DONE,      /* the whole message has been written */
    PC_RELAY_E_SRC,     /* the source failed or closed before the end */
    PC_RELAY_E_FRAMING, /* the source's framing is invalid (err holds the code) */
    PC_RELAY_E_DST,     /* the destination failed */
    PC_RELAY_E_LIMIT,   /* the payload would exceed limit */
    PC_RELAY_E_ABORT    /* on_data refused the payload */
};

typedef struct pc_relay_s {
    pc_sock_t *src; /* NULL when the message is only `pre` */
    pc_buf_t *buf;  /* the source's input buffer */
    pc_sock_t *dst;
    uint8_t in;         /* pc_body_kind_e of the source */
    uint8_t out;        /* pc_body_kind_e toward the destination */
    uint64_t remaining; /* PC_BODY_LENGTH: bytes still to come */
    pc_chunked_t chunked;
    int64_t limit;    /* payload cap, -1 for none */
    uint64_t total;   /* payload bytes decoded */
    uint64_t written; /* bytes written to dst (framing included) */
    const char *pre;  /* written before the body */
    size_t pre_len;
    const char *held; /* payload already read, written after pre with out's framing */
    size_t held_len;
    /* Sees each payload slice before it is written (and once with last = 1);
     * non-zero aborts with PC_RELAY_E_ABORT. */
    int (*on_data)(void *arg, const char *p, size_t n, int last);
    void *arg;
    int err; /* pc_http error code for PC_RELAY_E_FRAMING */

    struct iovec iov[4];
    int iovcnt, iovpos;
    char chunk_hdr[20];
    unsigned pre_queued : 1;
    unsigned src_done : 1;  /* the source message is complete */
    unsigned last_seen : 1; /* on_data has seen last = 1 */
    unsigned term_queued : 1;
    unsigned done : 1;
} pc_relay_t;

/* Prepares a relay. content_length is used when in is PC_BODY_LENGTH. */
void pc_relay_init(pc_relay_t *rl, pc_sock_t *src, pc_buf_t *buf, pc_sock_t *dst, int in,
                   int64_t content_length, int out, const char *pre, size_t pre_len);

/* Turns a relay that has been reading into memory (dst NULL, out
 * PC_BODY_NONE, stopped by on_data) into one that writes pre, then the
 * payload already read (held), then the rest of the source, framed as out. */
void pc_relay_forward(pc_relay_t *rl, int out, const char *pre, size_t pre_len, const char *held,
                      size_t held_len);

/* Makes as much progress as the sockets allow. Returns a PC_RELAY_* code. */
int pc_relay_step(pc_relay_t *rl);

/* 1 when bytes are queued but not yet written. */
static inline int pc_relay_pending(const pc_relay_t *rl)
{
    return rl->iovpos < rl->iovcnt;
}

#endif
