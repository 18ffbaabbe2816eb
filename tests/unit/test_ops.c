/*
 * test_ops.c — the operational state machines at their edges: the circuit
 * breaker (open, half-open probe, close, a probe that never answers), the
 * active check's thresholds, and metric shards (status slots, histogram
 * buckets, name interning that survives reloads).
 */
#include <stdlib.h>

#include "health.h"
#include "metrics.h"
#include "test.h"

TEST(circuit_breaker)
{
    pc_health_t *h = pc_health_get("app", "127.0.0.1:1");
    CHECK(h && h == pc_health_get("app", "127.0.0.1:1")); /* one record per server */
    CHECK(h != pc_health_get("other", "127.0.0.1:1"));
    CHECK_EQ_INT(pc_health_pick(h, 1000, 500), PC_HEALTH_USE);
    /* failures below the threshold keep it closed; a success resets the count */
    pc_health_failure(h, 1000, 3, 10000);
    pc_health_failure(h, 1000, 3, 10000);
    pc_health_success(h);
    pc_health_failure(h, 1000, 3, 10000);
    pc_health_failure(h, 1000, 3, 10000);
    CHECK_EQ_INT(pc_health_pick(h, 1000, 500), PC_HEALTH_USE);
    /* the third consecutive one opens it for the cooldown */
    pc_health_failure(h, 1000, 3, 10000);
    CHECK_EQ_INT(pc_health_pick(h, 1001, 500), PC_HEALTH_OPEN);
    CHECK_EQ_INT(pc_health_pick(h, 10999, 500), PC_HEALTH_OPEN);
    CHECK(!pc_health_up(h, 10999) && pc_health_up(h, 11000));
    /* then exactly one probe */
    CHECK_EQ_INT(pc_health_pick(h, 11000, 500), PC_HEALTH_PROBE);
    CHECK_EQ_INT(pc_health_pick(h, 11001, 500), PC_HEALTH_OPEN);
    /* a probe that never answers: another is allowed after probe_after */
    CHECK_EQ_INT(pc_health_pick(h, 11499, 500), PC_HEALTH_OPEN);
    CHECK_EQ_INT(pc_health_pick(h, 11500, 500), PC_HEALTH_PROBE);
    /* the probe fails: open again for a full cooldown */
    pc_health_failure(h, 11600, 3, 10000);
    CHECK_EQ_INT(pc_health_pick(h, 21599, 500), PC_HEALTH_OPEN);
    CHECK_EQ_INT(pc_health_pick(h, 21600, 500), PC_HEALTH_PROBE);
    /* the probe succeeds: closed, every request passes */
    pc_health_success(h);
    CHECK_EQ_INT(pc_health_pick(h, 21601, 500), PC_HEALTH_USE);
    CHECK_EQ_INT(pc_health_pick(h, 21602, 500), PC_HEALTH_USE);
    /* no circuit breaker: failures are counted, nothing opens */
    for (int i = 0; i < 100; i++)
        pc_health_failure(h, 30000, 0, 0);
    CHECK_EQ_INT(pc_health_pick(h, 30000, 500), PC_HEALTH_USE);
    pc_health_success(h);
}

TEST(active_check_thresholds)
{
    pc_health_t *h = pc_health_get("app", "127.0.0.1:2");
    CHECK(h && h->healthy == 1); /* servers start healthy */
    CHECK_EQ_INT(pc_health_check_result(h, 0, 2, 3), 0);
    CHECK_EQ_INT(pc_health_check_result(h, 0, 2, 3), 0);
    CHECK_EQ_INT(pc_health_check_result(h, 1, 2, 3), 0); /* a pass breaks the streak */
    CHECK_EQ_INT(pc_health_check_result(h, 0, 2, 3), 0);
    CHECK_EQ_INT(pc_health_check_result(h, 0, 2, 3), 0);
    CHECK_EQ_INT(pc_health_check_result(h, 0, 2, 3), 1); /* third in a row: down */
    CHECK_EQ_INT(pc_health_pick(h, 1, 500), PC_HEALTH_DOWN);
    CHECK(!pc_health_up(h, 1));
    CHECK_EQ_INT(pc_health_check_result(h, 0, 2, 3), 0); /* still down: no change */
    CHECK_EQ_INT(pc_health_check_result(h, 1, 2, 3), 0);
    CHECK_EQ_INT(pc_health_check_result(h, 1, 2, 3), 1); /* second pass: back */
    CHECK_EQ_INT(pc_health_pick(h, 1, 500), PC_HEALTH_USE);
}

TEST(metric_shards)
{
    pc_metrics_t *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    if (!m)
        return;
    uint32_t api = pc_metrics_name_id(PC_NAMES_ROUTE, "api");
    CHECK(api != PC_METRIC_NO_ROUTE);
    CHECK_EQ_INT(pc_metrics_name_id(PC_NAMES_ROUTE, "api"), api); /* stable across reloads */
    CHECK_EQ_STR(pc_metrics_name(PC_NAMES_ROUTE, api), "api");
    CHECK_EQ_STR(pc_metrics_name(PC_NAMES_ROUTE, PC_METRIC_NO_ROUTE), "");
    CHECK(pc_metrics_status(m, PC_NAMES_ROUTE, api) == NULL); /* allocated on first use */
    pc_metrics_request(m, api, 200, 300, NULL);               /* 0.3 ms: first bucket */
    pc_metrics_request(m, api, 200, 1000, NULL);              /* exactly 1 ms: the 1 ms bucket */
    pc_metrics_request(m, api, 414, 20000000, "size");        /* 20 s: +Inf */
    pc_metrics_request(m, PC_METRIC_NO_ROUTE, 404, 5, NULL);
    pc_metrics_request(m, api, 99, 5, "nonsense");   /* out of range status, unknown reason */
    pc_metrics_request(m, api, 600, 5, "malformed"); /* out of range status, known reason */
    const uint64_t *st = pc_metrics_status(m, PC_NAMES_ROUTE, api);
    CHECK(st && st[200 - PC_STATUS_MIN] == 2 && st[414 - PC_STATUS_MIN] == 1);
    CHECK(st && st[PC_STATUS_SLOTS - 1] == 0);
    CHECK(pc_metrics_status(m, PC_NAMES_ROUTE, PC_METRIC_NO_ROUTE)[404 - PC_STATUS_MIN] == 1);
    CHECK(m->blocked[PC_BLOCK_SIZE] == 1 && m->blocked[PC_BLOCK_MALFORMED] == 1);
    CHECK_EQ_INT(pc_block_index("nonsense"), -1);
    CHECK_EQ_INT(pc_block_index(NULL), -1);
    CHECK(m->latency[0] == 4 && m->latency[1] == 1 && m->latency[PC_HIST_BUCKETS] == 1);
    CHECK(m->latency_count == 6);
    uint32_t up = pc_metrics_name_id(PC_NAMES_UPSTREAM, "app");
    pc_metrics_upstream(m, up, 502);
    CHECK(pc_metrics_status(m, PC_NAMES_UPSTREAM, up)[502 - PC_STATUS_MIN] == 1);
    pc_metrics_free(m);
    free(m);
}

TEST(metric_names_overflow)
{
    char name[32];
    uint32_t last = 0;
    for (int i = 0; i < PC_METRIC_NAMES + 10; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        last = pc_metrics_name_id(PC_NAMES_UPSTREAM, name);
        CHECK(last < PC_METRIC_NAMES);
    }
    CHECK_EQ_INT(last, PC_METRIC_NAMES - 1);
    CHECK_EQ_STR(pc_metrics_name(PC_NAMES_UPSTREAM, last), "other");
    CHECK_EQ_INT(pc_metrics_names_count(PC_NAMES_UPSTREAM), PC_METRIC_NAMES);
}

TEST_MAIN(RUN(circuit_breaker); RUN(active_check_thresholds); RUN(metric_shards);
          RUN(metric_names_overflow); pc_health_free_all())
