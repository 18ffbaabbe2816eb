/*
 * ratelimit.h — rate limiting with GCRA (the generic cell rate algorithm):
 * policies (configuration), the request keys, the in-process store shared
 * by all workers, and the filter that asks Redis (rl_redis.c) or the local
 * store whether a request may pass.
 *
 * GCRA keeps one number per key: the theoretical arrival time (TAT) of the
 * next request if requests came exactly at the policy's rate. A policy of
 * N per T with burst B has the emission interval I = T / N and the
 * tolerance tau = (N + B - 1) * I: a request at time now is admitted when
 * TAT - now <= tau, and then TAT = max(TAT, now) + I. So N + B requests
 * pass at once, then one every I — no window boundaries, no counters to
 * reset. A request is admitted only when every policy of its route admits
 * it, and only then does any policy consume.
 */
#ifndef PC_RATELIMIT_H
#define PC_RATELIMIT_H

#include <stdint.h>

#include "config_int.h"
#include "filter.h"

/* ---- configuration (called by config_schema.c) ---- */
void pc_rl_check_policy(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
void pc_rl_finish(pc_cctx_t *c);
void pc_rl_resolve_route(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn);

extern const pc_filter_ops_t pc_rl_filter_ops;

/* ---- decisions ---- */

#define PC_RL_MAX_POLICIES 8 /* per route */
#define PC_RL_KEY_MAX      256

/* One policy's part of a decision. */
typedef struct pc_rl_item_s {
    const pc_rl_policy_conf_t *policy;
    char key[PC_RL_KEY_MAX]; /* policy name and key values; binary */
    size_t key_len;
    int64_t ahead_us; /* result: TAT - now (after admission when admitted) */
} pc_rl_item_t;

typedef struct pc_rl_decision_s {
    pc_rl_item_t items[PC_RL_MAX_POLICIES];
    unsigned n;
    int admitted;
    int64_t retry_us; /* refused: when the request would be admitted */
} pc_rl_decision_t;

/* GCRA over every item at once against the in-process store (now:
 * monotonic µs). Fills ahead_us, admitted, retry_us. 0, or -1 when out of
 * memory (nothing consumed). */
int pc_rl_local_decide(pc_rl_decision_t *d, int64_t now_us);

/* Drops expired entries of a few shards (control thread, every tick). */
void pc_rl_local_sweep(int64_t now_us);
/* Tracked keys, and the whole store freed (at exit). */
size_t pc_rl_local_count(void);
void pc_rl_local_free(void);

/* The store's hard cap on tracked keys (the rest is in ratelimit.c). */
#define PC_RL_LOCAL_MAX_KEYS 1000000

#endif
