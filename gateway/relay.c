/*
 * relay.c — see relay.h.
 */
#include "relay.h"

#include <assert.h>
#include <string.h>

#include "http1.h"

void pc_relay_init(pc_relay_t *rl, pc_sock_t *src, pc_buf_t *buf, pc_sock_t *dst, int in,
                   int64_t content_length, int out, const char *pre, size_t pre_len)
{
    memset(rl, 0, sizeof(*rl));
    rl->src = src;
    rl->buf = buf;
    rl->dst = dst;
    rl->in = (uint8_t)in;
    rl->out = (uint8_t)out;
    rl->limit = -1;
    rl->pre = pre;
    rl->pre_len = pre_len;
    if (in == PC_BODY_LENGTH)
        rl->remaining = (uint64_t)content_length;
    if (in == PC_BODY_CHUNKED)
        pc_chunked_init(&rl->chunked, 0);
    if (in == PC_BODY_NONE || !src || (in == PC_BODY_LENGTH && content_length == 0))
        rl->src_done = 1;
}

static void queue(pc_relay_t *rl, const void *p, size_t n)
{
    if (n == 0)
        return;
    assert(rl->iovcnt < (int)(sizeof(rl->iov) / sizeof(rl->iov[0])));
    rl->iov[rl->iovcnt].iov_base = (void *)p;
    rl->iov[rl->iovcnt].iov_len = n;
    rl->iovcnt++;
}

/* Writes queued iovecs. 1 when all are written, 0 to wait, -1 on error. */
static int flush(pc_relay_t *rl)
{
    while (rl->iovpos < rl->iovcnt) {
        if (!rl->dst->wr_ready)
            return 0;
        ssize_t w = pc_sock_writev(rl->dst, rl->iov + rl->iovpos, rl->iovcnt - rl->iovpos);
        if (w == PC_IO_AGAIN)
            return 0;
        if (w < 0)
            return -1;
        rl->written += (uint64_t)w;
        size_t left = (size_t)w;
        while (left && rl->iovpos < rl->iovcnt) {
            struct iovec *v = &rl->iov[rl->iovpos];
            if (left >= v->iov_len) {
                left -= v->iov_len;
                rl->iovpos++;
            } else {
                v->iov_base = (char *)v->iov_base + left;
                v->iov_len -= left;
                left = 0;
            }
        }
    }
    rl->iovcnt = rl->iovpos = 0;
    return 1;
}

/* Takes the next payload slice from the buffered source bytes. Returns 1
 * with a slice, 0 when more input is needed (or the body is complete:
 * src_done), or a negative PC_RELAY_E_* code. */
static int decode(pc_relay_t *rl, const char **data, size_t *len)
{
    pc_buf_t *b = rl->buf;
    uint32_t avail = pc_buf_unread(b);
    const char *p = b->data + b->rpos;
    *len = 0;
    switch (rl->in) {
    case PC_BODY_LENGTH: {
        size_t n = avail;
        if ((uint64_t)n > rl->remaining)
            n = (size_t)rl->remaining;
        if (n == 0)
            return 0;
        rl->remaining -= n;
        b->rpos += (uint32_t)n;
        if (rl->remaining == 0)
            rl->src_done = 1;
        *data = p;
        *len = n;
        return 1;
    }
    case PC_BODY_CLOSE:
        if (avail == 0)
            return 0;
        b->rpos += avail;
        *data = p;
        *len = avail;
        return 1;
    case PC_BODY_CHUNKED: {
        while (avail) {
            size_t used;
            int rc = pc_chunked_next(&rl->chunked, p, avail, &used, data, len);
            if (rc < 0) {
                rl->err = rc;
                return -PC_RELAY_E_FRAMING;
            }
            b->rpos += (uint32_t)used;
            p += used;
            avail -= (uint32_t)used;
            if (rc == PC_CHUNK_DATA)
                return 1;
            if (rc == PC_CHUNK_DONE) {
                rl->src_done = 1;
                return 0;
            }
        }
        return 0;
    }
    default:
        rl->src_done = 1;
        return 0;
    }
}

/* Queues payload with the destination's framing. */
static void frame(pc_relay_t *rl, const char *data, size_t len)
{
    if (rl->out == PC_BODY_NONE || len == 0)
        return;
    if (rl->out == PC_BODY_CHUNKED) {
        static const char hex[] = "0123456789abcdef";
        char *h = rl->chunk_hdr + sizeof(rl->chunk_hdr);
        *--h = '\n';
        *--h = '\r';
        size_t v = len;
        do {
            *--h = hex[v & 15];
            v >>= 4;
        } while (v);
        queue(rl, h, (size_t)(rl->chunk_hdr + sizeof(rl->chunk_hdr) - h));
        queue(rl, data, len);
        queue(rl, "\r\n", 2);
    } else {
        queue(rl, data, len);
    }
}

/* Queues one payload slice from the source. */
static int queue_slice(pc_relay_t *rl, const char *data, size_t len)
{
    if (rl->limit >= 0 && rl->total + len > (uint64_t)rl->limit)
        return -PC_RELAY_E_LIMIT;
    rl->total += len;
    if (rl->on_data && rl->on_data(rl->arg, data, len, rl->src_done) != 0)
        return -PC_RELAY_E_ABORT;
    rl->last_seen = rl->src_done;
    frame(rl, data, len);
    return 0;
}

void pc_relay_forward(pc_relay_t *rl, int out, const char *pre, size_t pre_len, const char *held,
                      size_t held_len)
{
    rl->out = (uint8_t)out;
    rl->pre = pre;
    rl->pre_len = pre_len;
    rl->held = held;
    rl->held_len = held_len;
    rl->pre_queued = 0;
    rl->iovcnt = rl->iovpos = 0;
}

int pc_relay_step(pc_relay_t *rl)
{
    for (;;) {
        if (rl->iovpos < rl->iovcnt) {
            int f = flush(rl);
            if (f < 0)
                return PC_RELAY_E_DST;
            if (f == 0)
                return PC_RELAY_AGAIN;
            continue;
        }
        if (rl->done)
            return PC_RELAY_DONE;
        if (!rl->pre_queued) {
            /* The head goes out with the first payload slice already buffered,
             * in one writev, when there is one. */
            rl->pre_queued = 1;
            queue(rl, rl->pre, rl->pre_len);
            if (rl->held_len) {
                /* up to four iovecs: written before anything more is queued */
                frame(rl, rl->held, rl->held_len);
                continue;
            }
        }
        if (rl->src_done) {
            if (rl->on_data && !rl->last_seen) {
                rl->last_seen = 1;
                if (rl->on_data(rl->arg, NULL, 0, 1) != 0)
                    return PC_RELAY_E_ABORT;
            }
            if (rl->out == PC_BODY_CHUNKED && !rl->term_queued) {
                rl->term_queued = 1;
                queue(rl, "0\r\n\r\n", 5);
                continue;
            }
            if (rl->iovcnt)
                continue;
            rl->done = 1;
            continue;
        }
        const char *data = NULL;
        size_t len;
        int d = decode(rl, &data, &len);
        if (d < 0)
            return -d;
        if (d > 0) {
            int q = queue_slice(rl, data, len);
            if (q < 0)
                return -q;
            continue;
        }
        if (rl->src_done || rl->iovcnt)
            continue;
        /* Everything buffered is consumed: read more from the source. */
        pc_buf_t *b = rl->buf;
        b->rpos = b->wpos = b->pin;
        if (rl->src->eof) {
            if (rl->in == PC_BODY_CLOSE) {
                rl->src_done = 1;
                continue;
            }
            return PC_RELAY_E_SRC;
        }
        if (!rl->src->rd_ready)
            return PC_RELAY_AGAIN;
        /* Bytes past the end of the body (a pipelined request) stay in the
         * buffer for whoever reads next. */
        ssize_t n = pc_sock_read(rl->src, b->data + b->wpos, pc_buf_space(b));
        if (n == PC_IO_AGAIN)
            return PC_RELAY_AGAIN;
        if (n < 0)
            return PC_RELAY_E_SRC;
        b->wpos += (uint32_t)n;
        if (n == 0)
            continue; /* eof: handled above */
    }
}
