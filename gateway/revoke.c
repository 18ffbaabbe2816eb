/*
 * revoke.c — the revoked-token list (see jwt.h): a hash set of jti values,
 * each kept until its token's exp, shared by every worker behind a
 * read-write lock. Workers consult it only when its generation moved since
 * they last found a token clean, so the lock is not taken per request.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "str.h"

#define REVOKE_MAX   1000000 /* entries; adding past it fails (503 at the admin API) */
#define REVOKE_SLOTS 4096    /* buckets (chained) */

typedef struct rentry_s {
    struct rentry_s *next;
    int64_t exp;
    size_t n;
    char jti[];
} rentry_t;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static rentry_t *buckets[REVOKE_SLOTS];
static size_t count;
static uint64_t generation; /* atomic */

static size_t bucket(const char *s, size_t n)
{
    return (size_t)(pc_hash_keyed(s, n) % REVOKE_SLOTS);
}

int pc_revoke_add(const char *jti, size_t n, int64_t exp)
{
    size_t b = bucket(jti, n);
    int rc = 0;
    pthread_rwlock_wrlock(&lock);
    rentry_t *e = buckets[b];
    while (e && !(e->n == n && memcmp(e->jti, jti, n) == 0))
        e = e->next;
    if (e) {
        if (exp > e->exp)
            e->exp = exp;
    } else if (count >= REVOKE_MAX || !(e = malloc(sizeof(*e) + n))) {
        rc = -1;
    } else {
        memcpy(e->jti, jti, n);
        e->n = n;
        e->exp = exp;
        e->next = buckets[b];
        buckets[b] = e;
        count++;
        __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    }
    pthread_rwlock_unlock(&lock);
    return rc;
}

int pc_revoke_has(const char *jti, size_t n)
{
    size_t b = bucket(jti, n);
    pthread_rwlock_rdlock(&lock);
    const rentry_t *e = buckets[b];
    while (e && !(e->n == n && memcmp(e->jti, jti, n) == 0))
        e = e->next;
    pthread_rwlock_unlock(&lock);
    return e != NULL; /* an entry past its exp names a token refused as expired anyway */
}

uint64_t pc_revoke_generation(void)
{
    return __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
}

void pc_revoke_expire(int64_t now)
{
    pthread_rwlock_wrlock(&lock);
    for (size_t b = 0; b < REVOKE_SLOTS; b++) {
        rentry_t **pp = &buckets[b];
        while (*pp) {
            rentry_t *e = *pp;
            if (e->exp < now) {
                *pp = e->next;
                free(e);
                count--;
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_rwlock_unlock(&lock);
}

size_t pc_revoke_count(void)
{
    pthread_rwlock_rdlock(&lock);
    size_t n = count;
    pthread_rwlock_unlock(&lock);
    return n;
}
