/*
 * metrics.h — request counters and the latency histogram, sharded per worker
 * and summed when /metrics is scraped.
 *
 * Each worker writes only its own shard, with plain loads and stores (one
 * writer), through relaxed atomics so that the scraping thread reads whole
 * values. Route and upstream names are interned once, when a configuration
 * is loaded, into ids that survive reloads: a counter never goes back to
 * zero because the file was edited.
 */
#ifndef PC_METRICS_H
#define PC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define PC_METRIC_NAMES 512 /* distinct route / upstream names tracked */
#define PC_STATUS_MIN   100
#define PC_STATUS_SLOTS 500 /* 100..599 */
#define PC_HIST_BUCKETS 14

typedef enum {
    PC_BLOCK_WAF = 0,
    PC_BLOCK_RATELIMIT,
    PC_BLOCK_JWT,
    PC_BLOCK_CORS,
    PC_BLOCK_SIZE,
    PC_BLOCK_IP,
    PC_BLOCK_MALFORMED,
    PC_BLOCK_COUNT
} pc_block_e;

typedef enum { PC_NAMES_ROUTE = 0, PC_NAMES_UPSTREAM } pc_names_e;

#define PC_METRIC_NO_ROUTE 0 /* route id of requests no route matched (label "") */

/* One worker's counters. Status arrays are allocated on first use. */
typedef struct pc_metrics_s {
    uint64_t *route_status[PC_METRIC_NAMES];
    uint64_t *upstream_status[PC_METRIC_NAMES];
    uint64_t blocked[PC_BLOCK_COUNT];
    uint64_t dry_run[PC_BLOCK_COUNT];      /* what dry-run routes would have blocked */
    uint64_t latency[PC_HIST_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    uint64_t latency_sum_us;
    uint64_t latency_count;
} pc_metrics_t;

/* The upper bounds of the histogram buckets, in seconds. */
extern const double pc_hist_bounds[PC_HIST_BUCKETS];

/* The id of a route or upstream name (interned on first sight; thread-safe).
 * Names past PC_METRIC_NAMES share the last id, labelled "other". */
uint32_t pc_metrics_name_id(pc_names_e kind, const char *name);
/* The name of an id, or NULL when unused. */
const char *pc_metrics_name(pc_names_e kind, uint32_t id);
uint32_t pc_metrics_names_count(pc_names_e kind);

/* Maps a blocked_by reason ("waf", "size", ...) to its counter; -1 if none. */
int pc_block_index(const char *reason);
extern const char *const pc_block_names[PC_BLOCK_COUNT];

/* Worker side. */
void pc_metrics_request(pc_metrics_t *m, uint32_t route_id, int status, int64_t duration_us,
                        const char *blocked_by);
void pc_metrics_upstream(pc_metrics_t *m, uint32_t upstream_id, int status);
void pc_metrics_dry_run(pc_metrics_t *m, const char *reason);
void pc_metrics_free(pc_metrics_t *m);

/* Reader side: a counter as the owning worker last stored it. */
static inline uint64_t pc_ctr_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}
/* The status array of an id, or NULL while the worker has never used it. */
static inline const uint64_t *pc_metrics_status(const pc_metrics_t *m, pc_names_e kind, uint32_t id)
{
    uint64_t *const *a = kind == PC_NAMES_ROUTE ? m->route_status : m->upstream_status;
    return __atomic_load_n(&a[id], __ATOMIC_ACQUIRE);
}

#endif
