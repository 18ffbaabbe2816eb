/*
 * connlimit.c — see connlimit.h.
 */
#include "connlimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#define STRIPES 64
#define BUCKETS 1024 /* per stripe */

typedef struct entry_s {
    struct entry_s *next;
    pc_ip_t ip;
    unsigned count;
} entry_t;

typedef struct {
    pthread_mutex_t lock;
    entry_t *b[BUCKETS];
} stripe_t;

struct pc_connlimit_s {
    uint64_t seed; /* keyed hash: clients cannot aim at each other's buckets */
    stripe_t s[STRIPES];
};

static uint64_t hash(const pc_connlimit_t *t, pc_ip_t ip)
{
    uint64_t h = (ip.hi ^ t->seed) * 0x9e3779b97f4a7c15ULL;
    h ^= (ip.lo + (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
}

pc_connlimit_t *pc_connlimit_new(void)
{
    pc_connlimit_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&t->s[i].lock, NULL);
    return t;
}

void pc_connlimit_free(pc_connlimit_t *t)
{
    if (!t)
        return;
    for (int i = 0; i < STRIPES; i++) {
        for (int j = 0; j < BUCKETS; j++) {
            for (entry_t *e = t->s[i].b[j], *n; e; e = n) {
                n = e->next;
                free(e);
            }
        }
        pthread_mutex_destroy(&t->s[i].lock);
    }
    free(t);
}

int pc_connlimit_acquire(pc_connlimit_t *t, pc_ip_t ip, unsigned max)
{
    uint64_t h = hash(t, ip);
    stripe_t *s = &t->s[h % STRIPES];
    entry_t **slot = &s->b[(h / STRIPES) % BUCKETS];
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    entry_t *e = *slot;
    while (e && (e->ip.hi != ip.hi || e->ip.lo != ip.lo))
        e = e->next;
    if (!e) {
        e = malloc(sizeof(*e));
        if (e) {
            e->ip = ip;
            e->count = 0;
            e->next = *slot;
            *slot = e;
        }
    }
    if (!e || e->count >= max)
        rc = -1;
    else
        e->count++;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void pc_connlimit_release(pc_connlimit_t *t, pc_ip_t ip)
{
    uint64_t h = hash(t, ip);
    stripe_t *s = &t->s[h % STRIPES];
    entry_t **p = &s->b[(h / STRIPES) % BUCKETS];
    pthread_mutex_lock(&s->lock);
    while (*p && ((*p)->ip.hi != ip.hi || (*p)->ip.lo != ip.lo))
        p = &(*p)->next;
    if (*p && --(*p)->count == 0) {
        entry_t *e = *p;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&s->lock);
}
