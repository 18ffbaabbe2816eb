/*
 * arena.h — bump allocators with a hard cap, and per-worker block caches.
 *
 * A request owns one arena: everything it allocates (header arrays, the
 * re-serialised heads, the normalised path, filter state) comes from it and
 * is released at once when the request ends. The config snapshot owns an
 * uncapped arena released when its last reference goes.
 *
 * Ownership: the arena owns its blocks; blocks of the standard size come from
 * and return to a pc_blocks_t cache owned by one worker (no locking).
 */
#ifndef PC_ARENA_H
#define PC_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* A cache of equally sized memory blocks, used by one thread only. */
typedef struct pc_blocks_s {
    void *free;     /* singly linked through the first word of each block */
    size_t size;    /* block size */
    unsigned count; /* blocks cached */
    unsigned max;   /* cache no more than this many */
} pc_blocks_t;

void pc_blocks_init(pc_blocks_t *c, size_t size, unsigned max);
/* A block of c->size bytes, or NULL when out of memory. */
void *pc_blocks_get(pc_blocks_t *c);
void pc_blocks_put(pc_blocks_t *c, void *b);
void pc_blocks_drain(pc_blocks_t *c);

#ifdef PC_TESTING
/* Set by the allocation-failure build (tests/oom/alloc_fail.c): asked
 * before a cached block is handed out, nonzero makes pc_blocks_get fail as
 * if the cache were empty and malloc had failed. A request's memory comes
 * mostly from the caches, so without it few of its allocations could fail. */
extern int (*pc_test_block_fails)(void);
#endif

typedef struct pc_arena_block_s pc_arena_block_t;

typedef struct pc_arena_s {
    pc_arena_block_t *head; /* current block; older blocks follow */
    pc_blocks_t *cache;     /* where standard blocks come from, or NULL (malloc) */
    size_t block_size;      /* standard block size */
    size_t total;           /* bytes of blocks held */
    size_t cap;             /* refuse to grow past this (0: no cap) */
} pc_arena_t;

/* Prepares an empty arena; no memory is taken until the first allocation. */
void pc_arena_init(pc_arena_t *a, pc_blocks_t *cache, size_t block_size, size_t cap);

/* n bytes aligned to 16, or NULL when the cap would be exceeded or memory is
 * short. The memory is not zeroed. */
void *pc_arena_alloc(pc_arena_t *a, size_t n);

/* Like pc_arena_alloc, zeroed. */
void *pc_arena_calloc(pc_arena_t *a, size_t n);

/* A NUL-terminated copy of p[0..n). */
char *pc_arena_strndup(pc_arena_t *a, const char *p, size_t n);

/* Releases every block (standard ones back to the cache). */
void pc_arena_free(pc_arena_t *a);

#endif
