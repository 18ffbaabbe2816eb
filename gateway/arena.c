/*
 * arena.c — see arena.h.
 */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct pc_arena_block_s {
    pc_arena_block_t *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) char data[];
};

void pc_blocks_init(pc_blocks_t *c, size_t size, unsigned max)
{
    c->free = NULL;
    c->size = size;
    c->count = 0;
    c->max = max;
}

#ifdef PC_TESTING
int (*pc_test_block_fails)(void);
#endif

void *pc_blocks_get(pc_blocks_t *c)
{
    void *b = c->free;
#ifdef PC_TESTING
    if (b && pc_test_block_fails && pc_test_block_fails())
        return NULL;
#endif
    if (b) {
        c->free = *(void **)b;
        c->count--;
        return b;
    }
    return malloc(c->size);
}

void pc_blocks_put(pc_blocks_t *c, void *b)
{
    if (c->count >= c->max) {
        free(b);
        return;
    }
    *(void **)b = c->free;
    c->free = b;
    c->count++;
}

void pc_blocks_drain(pc_blocks_t *c)
{
    while (c->free) {
        void *b = c->free;
        c->free = *(void **)b;
        free(b);
    }
    c->count = 0;
}

void pc_arena_init(pc_arena_t *a, pc_blocks_t *cache, size_t block_size, size_t cap)
{
    a->head = NULL;
    a->cache = cache;
    a->block_size = cache ? cache->size : block_size;
    a->total = 0;
    a->cap = cap;
}

static pc_arena_block_t *arena_grow(pc_arena_t *a, size_t n)
{
    size_t hdr = offsetof(pc_arena_block_t, data);
    size_t bytes = a->block_size;
    if (n + hdr > bytes)
        bytes = (n + hdr + 4095) & ~(size_t)4095;
    if (a->cap && a->total + bytes > a->cap)
        return NULL;
    pc_arena_block_t *b;
    if (a->cache && bytes == a->cache->size)
        b = pc_blocks_get(a->cache);
    else
        b = malloc(bytes);
    if (!b)
        return NULL;
    b->size = bytes - hdr;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    a->total += bytes;
    return b;
}

void *pc_arena_alloc(pc_arena_t *a, size_t n)
{
    if (n > ((size_t)1 << 40)) /* nothing legitimate asks for this much */
        return NULL;
    n = (n + 15) & ~(size_t)15;
    pc_arena_block_t *b = a->head;
    if ((!b || b->size - b->used < n) && (b = arena_grow(a, n)) == NULL)
        return NULL;
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void *pc_arena_calloc(pc_arena_t *a, size_t n)
{
    void *p = pc_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *pc_arena_strndup(pc_arena_t *a, const char *p, size_t n)
{
    char *s = pc_arena_alloc(a, n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

void pc_arena_free(pc_arena_t *a)
{
    size_t hdr = offsetof(pc_arena_block_t, data);
    pc_arena_block_t *b = a->head;
    while (b) {
        pc_arena_block_t *next = b->next;
        if (a->cache && b->size + hdr == a->cache->size)
            pc_blocks_put(a->cache, b);
        else
            free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}
