/*
 * health.c — see health.h.
 */
#include "health.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pc_health_t *head, **tail = &head;

int64_t pc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pc_health_t *pc_health_get(const char *upstream, const char *server)
{
    pc_health_t *h;
    pthread_mutex_lock(&lock);
    for (h = head; h; h = h->next)
        if (strcmp(h->upstream, upstream) == 0 && strcmp(h->server, server) == 0)
            goto out;
    h = calloc(1, sizeof(*h));
    if (h && (!(h->upstream = strdup(upstream)) || !(h->server = strdup(server)))) {
        free(h->upstream);
        free(h);
        h = NULL;
    }
    if (h) {
        h->healthy = 1;
        *tail = h;
        tail = &h->next;
    }
out:
    pthread_mutex_unlock(&lock);
    return h;
}

pc_health_t *pc_health_all(void)
{
    pthread_mutex_lock(&lock);
    pc_health_t *h = head;
    pthread_mutex_unlock(&lock);
    return h;
}

void pc_health_free_all(void)
{
    pthread_mutex_lock(&lock);
    while (head) {
        pc_health_t *h = head;
        head = h->next;
        free(h->upstream);
        free(h->server);
        free(h);
    }
    tail = &head;
    pthread_mutex_unlock(&lock);
}

#define LOAD(p)     __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)

void pc_health_apply(const pc_config_t *cfg)
{
    for (pc_health_t *h = pc_health_all(); h; h = h->next)
        h->checked = 0;
    for (size_t u = 0; u < cfg->n_upstreams; u++) {
        const pc_upstream_conf_t *uc = &cfg->upstreams[u];
        for (size_t i = 0; i < uc->n_servers; i++) {
            pc_health_t *h = uc->servers[i].health;
            if (!h)
                continue;
            h->checked = uc->health_check != NULL;
            if (!uc->circuit_breaker && LOAD(&h->open_until_ms)) {
                STORE(&h->open_until_ms, (int64_t)0);
                STORE(&h->probe_ms, (int64_t)0);
                STORE(&h->fails, 0u);
            }
        }
    }
    for (pc_health_t *h = pc_health_all(); h; h = h->next) {
        if (!h->checked && !LOAD(&h->healthy)) {
            h->streak_ok = h->streak_bad = 0;
            STORE(&h->healthy, 1);
        }
    }
}

pc_health_pick_e pc_health_pick(pc_health_t *h, int64_t now_ms, int64_t probe_after_ms)
{
    if (!LOAD(&h->healthy))
        return PC_HEALTH_DOWN;
    int64_t open = LOAD(&h->open_until_ms);
    if (open == 0)
        return PC_HEALTH_USE;
    if (now_ms < 0)
        now_ms = pc_mono_ms();
    if (now_ms < open)
        return PC_HEALTH_OPEN;
    /* half-open: one probe at a time, a new one if the last went unanswered */
    int64_t probe = LOAD(&h->probe_ms);
    if (probe && now_ms - probe < probe_after_ms)
        return PC_HEALTH_OPEN;
    if (!__atomic_compare_exchange_n(&h->probe_ms, &probe, now_ms ? now_ms : 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return PC_HEALTH_OPEN;
    return PC_HEALTH_PROBE;
}

void pc_health_success(pc_health_t *h)
{
    if (LOAD(&h->fails))
        STORE(&h->fails, 0u);
    if (LOAD(&h->open_until_ms)) {
        STORE(&h->open_until_ms, (int64_t)0);
        STORE(&h->probe_ms, (int64_t)0);
        pc_log(PC_LOG_INFO, "upstream", "upstream %s server %s: circuit closed", h->upstream,
               h->server);
    }
}

void pc_health_failure(pc_health_t *h, int64_t now_ms, unsigned failures, int64_t cooldown_ms)
{
    unsigned n = __atomic_add_fetch(&h->fails, 1u, __ATOMIC_ACQ_REL);
    if (!failures)
        return;
    int64_t open = LOAD(&h->open_until_ms);
    int half_open = open && now_ms >= open;
    if (half_open || (!open && n >= failures)) {
        STORE(&h->open_until_ms, now_ms + cooldown_ms);
        STORE(&h->probe_ms, (int64_t)0);
        pc_log(PC_LOG_WARN, "upstream",
               "upstream %s server %s: circuit open for %lld ms after %u consecutive failures",
               h->upstream, h->server, (long long)cooldown_ms, n);
    }
}

int pc_health_up(const pc_health_t *h, int64_t now_ms)
{
    if (!LOAD(&h->healthy))
        return 0;
    int64_t open = LOAD(&h->open_until_ms);
    return open == 0 || now_ms >= open;
}

int pc_health_check_result(pc_health_t *h, int ok, unsigned healthy_after, unsigned unhealthy_after)
{
    int was = LOAD(&h->healthy);
    if (ok) {
        h->streak_bad = 0;
        if (!was && ++h->streak_ok >= healthy_after) {
            h->streak_ok = 0;
            STORE(&h->healthy, 1);
            return 1;
        }
    } else {
        h->streak_ok = 0;
        if (was && ++h->streak_bad >= unhealthy_after) {
            h->streak_bad = 0;
            STORE(&h->healthy, 0);
            return 1;
        }
    }
    return 0;
}

int pc_health_status_code(const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}
