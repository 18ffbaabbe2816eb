/*
 * test_ratelimit.c — GCRA on the in-process store: admission at the edges,
 * burst, retry times, the all-or-nothing rule across policies, exactness
 * under concurrent workers, expiry and the cap on tracked keys.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"
#include "test.h"

static pc_rl_policy_conf_t policy(const char *name, int64_t count, int64_t period_ms, int64_t burst)
{
    pc_rl_policy_conf_t p;
    memset(&p, 0, sizeof(p));
    p.name = name;
    p.rate.count = count;
    p.rate.period_ms = period_ms;
    p.burst = burst;
    p.interval_us = period_ms * 1000 / count;
    p.tau_us = (count + burst - 1) * p.interval_us;
    return p;
}

static void item(pc_rl_decision_t *d, const pc_rl_policy_conf_t *p, const char *key)
{
    pc_rl_item_t *it = &d->items[d->n++];
    it->policy = p;
    it->key_len = strlen(key);
    memcpy(it->key, key, it->key_len);
}

static int one(const pc_rl_policy_conf_t *p, const char *key, int64_t now, int64_t *retry)
{
    pc_rl_decision_t d = {.n = 0};
    item(&d, p, key);
    CHECK_EQ_INT(pc_rl_local_decide(&d, now), 0);
    if (retry)
        *retry = d.retry_us;
    return d.admitted;
}

TEST(rate_and_retry)
{
    pc_rl_policy_conf_t p = policy("t1", 3, 1000, 0); /* I = 333,333 µs */
    int64_t t = 1000000000, retry = 0;
    CHECK(one(&p, "a", t, NULL) && one(&p, "a", t, NULL) && one(&p, "a", t, NULL));
    CHECK(!one(&p, "a", t, &retry));
    CHECK_EQ_INT(retry, 333333);
    CHECK(!one(&p, "a", t + 333332, NULL));
    CHECK(one(&p, "a", t + 333333, NULL)); /* exactly when it said */
    CHECK(!one(&p, "a", t + 333333, NULL));
    CHECK(one(&p, "b", t, NULL)); /* keys are separate */
    /* a long pause refills to the whole quota, never beyond */
    int n = 0;
    while (one(&p, "a", t + 10000000, NULL) && n < 10)
        n++;
    CHECK_EQ_INT(n, 3);
}

TEST(burst)
{
    pc_rl_policy_conf_t p = policy("t2", 2, 1000, 3);
    int64_t t = 2000000000;
    int n = 0;
    while (one(&p, "k", t, NULL) && n < 20)
        n++;
    CHECK_EQ_INT(n, 5);
    CHECK(one(&p, "k", t + 500000, NULL)); /* then one every 500 ms */
    CHECK(!one(&p, "k", t + 500000, NULL));
}

TEST(all_or_nothing)
{
    pc_rl_policy_conf_t wide = policy("t3w", 3, 60000, 0), narrow = policy("t3n", 1, 60000, 0);
    int64_t t = 3000000000;
    pc_rl_decision_t d = {.n = 0};
    item(&d, &wide, "ip");
    item(&d, &narrow, "x");
    CHECK(pc_rl_local_decide(&d, t) == 0 && d.admitted);
    CHECK_EQ_INT(d.items[0].ahead_us, wide.interval_us);
    d.n = 0;
    item(&d, &wide, "ip");
    item(&d, &narrow, "x");
    CHECK(pc_rl_local_decide(&d, t) == 0 && !d.admitted); /* narrow refuses ... */
    CHECK_EQ_INT(d.items[0].ahead_us, wide.interval_us);  /* ... and wide was not charged */
    CHECK(one(&wide, "ip", t, NULL) && one(&wide, "ip", t, NULL));
    CHECK(!one(&wide, "ip", t, NULL));
}

static pc_rl_policy_conf_t shared_policy;
static int admitted_total;

static void *hammer(void *arg)
{
    int n = 0;
    (void)arg;
    for (int i = 0; i < 20000; i++)
        n += one(&shared_policy, "hot", 4000000000, NULL);
    __atomic_add_fetch(&admitted_total, n, __ATOMIC_RELAXED);
    return NULL;
}

TEST(exact_under_concurrency)
{
    shared_policy = policy("t4", 5000, 60000, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(admitted_total, 5000);
}

TEST(expiry_and_cap)
{
    pc_rl_local_free();
    pc_rl_policy_conf_t p = policy("t5", 1, 1000, 0);
    int64_t t = 5000000000;
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        one(&p, key, t, NULL);
    }
    CHECK_EQ_INT(pc_rl_local_count(), 1000);
    for (int i = 0; i < 64 / 4; i++) /* a full pass over the shards, all expired */
        pc_rl_local_sweep(t + 2000000);
    CHECK_EQ_INT(pc_rl_local_count(), 0);
    /* more keys than the cap: the store stays bounded, and the newest
     * keys are tracked (a key just refused stays refused) */
    pc_rl_policy_conf_t slow = policy("t6", 1, 3600000, 0);
    for (int i = 0; i < PC_RL_LOCAL_MAX_KEYS + 20000; i++) {
        snprintf(key, sizeof(key), "c%d", i);
        one(&slow, key, t, NULL);
    }
    CHECK(pc_rl_local_count() <= PC_RL_LOCAL_MAX_KEYS);
    snprintf(key, sizeof(key), "c%d", PC_RL_LOCAL_MAX_KEYS + 19999);
    CHECK(!one(&slow, key, t, NULL));
    pc_rl_local_free();
    CHECK_EQ_INT(pc_rl_local_count(), 0);
}

TEST_MAIN(RUN(rate_and_retry); RUN(burst); RUN(all_or_nothing); RUN(exact_under_concurrency);
          RUN(expiry_and_cap))
