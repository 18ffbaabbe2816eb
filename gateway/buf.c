/*
 * buf.c — see buf.h.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int pc_buf_ensure(pc_buf_t *b, pc_blocks_t *cache)
{
    if (b->data)
        return 0;
    b->data = pc_blocks_get(cache);
    if (!b->data)
        return -1;
    b->cap = (uint32_t)cache->size;
    b->pin = b->rpos = b->wpos = 0;
    return 0;
}

int pc_buf_grow(pc_buf_t *b, uint32_t cap, pc_blocks_t *cache)
{
    if (b->data && b->cap >= cap)
        return 0;
    char *d = malloc(cap);
    if (!d)
        return -1;
    if (b->data) {
        memcpy(d, b->data, b->wpos);
        if (b->cap == cache->size)
            pc_blocks_put(cache, b->data);
        else
            free(b->data);
    } else {
        b->pin = b->rpos = b->wpos = 0;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void pc_buf_compact(pc_buf_t *b)
{
    if (b->rpos == b->pin)
        return;
    uint32_t n = b->wpos - b->rpos;
    if (n)
        memmove(b->data + b->pin, b->data + b->rpos, n);
    b->rpos = b->pin;
    b->wpos = b->pin + n;
}

void pc_buf_unpin(pc_buf_t *b)
{
    b->pin = 0;
    pc_buf_compact(b);
}

void pc_buf_release(pc_buf_t *b, pc_blocks_t *cache, int force)
{
    if (!b->data || (!force && b->wpos != b->rpos))
        return;
    if (b->cap == cache->size)
        pc_blocks_put(cache, b->data);
    else
        free(b->data);
    b->data = NULL;
    b->cap = b->pin = b->rpos = b->wpos = 0;
}
