/*
 * metrics.c — see metrics.h.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const double pc_hist_bounds[PC_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};

const char *const pc_block_names[PC_BLOCK_COUNT] = {"waf",  "ratelimit", "jwt",      "cors",
                                                    "size", "ip",        "malformed"};

/* Interned names; they are never removed, so ids stay valid for the life of
 * the process and readers need no lock once an id has been handed out. */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static char *names[2][PC_METRIC_NAMES] = {{(char *)""}}; /* route 0: no route matched */
static uint32_t nnames[2] = {1, 0};

uint32_t pc_metrics_name_id(pc_names_e kind, const char *name)
{
    uint32_t id;
    pthread_mutex_lock(&names_lock);
    for (id = 0; id < nnames[kind]; id++)
        if (names[kind][id] && strcmp(names[kind][id], name) == 0) /* NULL: out of memory */
            goto out;
    if (id >= PC_METRIC_NAMES - 1 || (names[kind][id] = strdup(name)) == NULL) {
        /* full (or out of memory): the last id, shared, is "other" */
        id = PC_METRIC_NAMES - 1;
        if (!names[kind][id])
            names[kind][id] = (char *)"other";
        __atomic_store_n(&nnames[kind], PC_METRIC_NAMES, __ATOMIC_RELEASE);
        goto out;
    }
    __atomic_store_n(&nnames[kind], id + 1, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&names_lock);
    return id;
}

const char *pc_metrics_name(pc_names_e kind, uint32_t id)
{
    if (id >= pc_metrics_names_count(kind))
        return NULL;
    return names[kind][id];
}

uint32_t pc_metrics_names_count(pc_names_e kind)
{
    return __atomic_load_n(&nnames[kind], __ATOMIC_ACQUIRE);
}

int pc_block_index(const char *reason)
{
    for (int i = 0; reason && i < PC_BLOCK_COUNT; i++)
        if (strcmp(pc_block_names[i], reason) == 0)
            return i;
    return -1;
}

/* One writer per shard: a plain add, published whole. */
static inline void inc(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static void count_status(uint64_t **slot, int status)
{
    uint64_t *a = *slot;
    if (status < PC_STATUS_MIN || status >= PC_STATUS_MIN + PC_STATUS_SLOTS)
        return;
    if (!a) {
        a = calloc(PC_STATUS_SLOTS, sizeof(uint64_t));
        if (!a)
            return;
        __atomic_store_n(slot, a, __ATOMIC_RELEASE);
    }
    inc(&a[status - PC_STATUS_MIN], 1);
}

void pc_metrics_request(pc_metrics_t *m, uint32_t route_id, int status, int64_t duration_us,
                        const char *blocked_by)
{
    count_status(&m->route_status[route_id % PC_METRIC_NAMES], status);
    if (blocked_by) {
        int b = pc_block_index(blocked_by);
        if (b >= 0)
            inc(&m->blocked[b], 1);
    }
    if (duration_us < 0)
        duration_us = 0;
    double s = (double)duration_us / 1e6;
    size_t i = 0;
    while (i < PC_HIST_BUCKETS && s > pc_hist_bounds[i])
        i++;
    inc(&m->latency[i], 1);
    inc(&m->latency_sum_us, (uint64_t)duration_us);
    inc(&m->latency_count, 1);
}

void pc_metrics_dry_run(pc_metrics_t *m, const char *reason)
{
    int b = pc_block_index(reason);
    if (b >= 0)
        inc(&m->dry_run[b], 1);
}

void pc_metrics_upstream(pc_metrics_t *m, uint32_t upstream_id, int status)
{
    count_status(&m->upstream_status[upstream_id % PC_METRIC_NAMES], status);
}

void pc_metrics_free(pc_metrics_t *m)
{
    for (size_t i = 0; i < PC_METRIC_NAMES; i++) {
        free(m->route_status[i]);
        free(m->upstream_status[i]);
        m->route_status[i] = m->upstream_status[i] = NULL;
    }
}
