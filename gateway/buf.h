/*
 * buf.h — a connection's input buffer, born with its maximum size.
 *
 * Layout: [0, pin) holds the current message head, which parsed slices point
 * into, so it never moves while a message is in flight; [rpos, wpos) holds
 * bytes received but not yet consumed (body, or pipelined messages). Buffers
 * of the standard size come from the worker's block cache and go back to it
 * when the connection is idle and empty, so an idle keep-alive connection
 * holds no buffer at all.
 */
#ifndef PC_BUF_H
#define PC_BUF_H

#include <stdint.h>
#include <stddef.h>

#include "arena.h"

#define PC_BUF_SIZE 16384 /* the standard buffer */

typedef struct pc_buf_s {
    char *data;
    uint32_t cap;
    uint32_t pin;
    uint32_t rpos;
    uint32_t wpos;
} pc_buf_t;

static inline uint32_t pc_buf_unread(const pc_buf_t *b)
{
    return b->wpos - b->rpos;
}

static inline uint32_t pc_buf_space(const pc_buf_t *b)
{
    return b->cap - b->wpos;
}

/* Makes sure b has storage (a standard block). 0, or -1 when out of memory. */
int pc_buf_ensure(pc_buf_t *b, pc_blocks_t *cache);

/* Grows the storage to at least cap bytes, keeping the contents (never
 * called while slices point into the buffer). 0 or -1. */
int pc_buf_grow(pc_buf_t *b, uint32_t cap, pc_blocks_t *cache);

/* Moves unread bytes down to pin so that the space after them is free. */
void pc_buf_compact(pc_buf_t *b);

/* Drops the pinned head: unread bytes move to offset 0. */
void pc_buf_unpin(pc_buf_t *b);

/* Returns the storage when nothing is unread (or always, with force). */
void pc_buf_release(pc_buf_t *b, pc_blocks_t *cache, int force);

#endif
