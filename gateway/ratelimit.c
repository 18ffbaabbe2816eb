/*
 * ratelimit.c — see ratelimit.h.
 */
#include "ratelimit.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "jwt.h"
#include "request.h"
#include "rl_redis.h"
#include "worker.h"

/* ---- configuration ---- */

static int parse_part(const char *s, size_t n, pc_cctx_t *c, pc_rl_policy_conf_t *p)
{
    if (p->nparts == PC_RL_KEY_PARTS)
        return -1;
    unsigned i = p->nparts;
    if (n == 2 && memcmp(s, "ip", 2) == 0) {
        p->parts[i].kind = PC_RLK_IP;
    } else if (n == 5 && memcmp(s, "route", 5) == 0) {
        p->parts[i].kind = PC_RLK_ROUTE;
    } else if (n > 6 && memcmp(s, "claim:", 6) == 0) {
        p->parts[i].kind = PC_RLK_CLAIM;
        p->parts[i].name = pc_str_make(pc_arena_strndup(c->pool, s + 6, n - 6), n - 6);
    } else if (n > 7 && memcmp(s, "header:", 7) == 0) {
        p->parts[i].kind = PC_RLK_HEADER;
        p->parts[i].name = pc_str_make(pc_arena_strndup(c->pool, s + 7, n - 7), n - 7);
    } else {
        return -1;
    }
    p->nparts++;
    return 0;
}

void pc_rl_check_policy(pc_cctx_t *c, const pc_ynode_t *node, void *obj)
{
    pc_rl_policy_conf_t *p = obj;
    p->fail_mode_given = pc_ymap_get(node, "on_failure") != NULL;
    if (p->key) {
        int bad = 0;
        for (const char *s = p->key;;) {
            const char *e = strchr(s, '+');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (parse_part(s, n, c, p) != 0)
                bad = 1;
            if (!e)
                break;
            s = e + 1;
        }
        if (bad) {
            size_t mark = pc_cfg_push_key(c, "key");
            pc_cfg_error(c, pc_ymap_get(node, "key"),
                         "'%s' is not a key: ip, route, claim:NAME, header:NAME, or up to %d of "
                         "them joined with '+'",
                         p->key, PC_RL_KEY_PARTS);
            pc_cfg_pop(c, mark);
        }
    }
    /* interval and tolerance are added to µs timestamps: both stay below
     * 2^62 µs (146,000 years), so that no sum can overflow */
    const int64_t horizon = (int64_t)1 << 62;
    if (p->rate.count < 1 || p->rate.period_ms < 1 || p->rate.period_ms > horizon / 1000 ||
        p->rate.period_ms * 1000 / p->rate.count < 1) {
        size_t mark = pc_cfg_push_key(c, "rate");
        if (p->rate.count || p->rate.period_ms) /* else already reported */
            pc_cfg_error(c, pc_ymap_get(node, "rate"),
                         "expected at least 1 request per period, at most one per µs, and a "
                         "period of at most 146,000 years");
        pc_cfg_pop(c, mark);
        return;
    }
    p->interval_us = p->rate.period_ms * 1000 / p->rate.count;
    if (p->rate.count + p->burst - 1 > (horizon - p->interval_us) / p->interval_us) {
        size_t mark = pc_cfg_push_key(c, "burst");
        pc_cfg_error(c, pc_ymap_get(node, "burst"),
                     "rate and burst together span more than 146,000 years");
        pc_cfg_pop(c, mark);
        return;
    }
    p->tau_us = (p->rate.count + p->burst - 1) * p->interval_us;
}

void pc_rl_finish(pc_cctx_t *c)
{
    pc_config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->n_rate_limits; i++) {
        pc_rl_policy_conf_t *p = &cfg->rate_limits[i];
        p->index = (uint32_t)i;
        if (!p->fail_mode_given)
            p->fail_mode = cfg->redis ? cfg->redis->on_failure : PC_FAIL_LOCAL;
    }
    size_t n = 0;
    for (size_t u = 0; u < cfg->n_upstreams; u++)
        n += cfg->upstreams[u].health_check != NULL;
    cfg->health_paths = n ? pc_arena_calloc(c->pool, n * sizeof(pc_str_t)) : NULL;
    for (size_t u = 0; cfg->health_paths && u < cfg->n_upstreams; u++)
        if (cfg->upstreams[u].health_check && cfg->upstreams[u].health_check->path)
            cfg->health_paths[cfg->n_health_paths++] =
                pc_str_cstr(cfg->upstreams[u].health_check->path);
}

void pc_rl_resolve_route(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn)
{
    if (!r->n_rate_limits)
        return;
    const pc_config_t *cfg = c->cfg;
    const pc_ynode_t *list = pc_ymap_get(rn, "rate_limits");
    size_t mark = pc_cfg_push_key(c, "rate_limits");
    if (r->n_rate_limits > PC_RL_MAX_POLICIES)
        pc_cfg_error(c, list, "at most %d policies per route", PC_RL_MAX_POLICIES);
    r->rl = pc_arena_calloc(c->pool, r->n_rate_limits * sizeof(*r->rl));
    for (size_t i = 0; r->rl && i < r->n_rate_limits; i++) {
        const char *name = r->rate_limits[i];
        const pc_ynode_t *at = pc_yseq_at(list, i, rn);
        size_t m2 = pc_cfg_push_index(c, i);
        pc_suggest_t sg = PC_SUGGEST_INIT;
        for (size_t k = 0; name && k < cfg->n_rate_limits; k++) {
            if (strcmp(cfg->rate_limits[k].name, name) == 0)
                r->rl[i] = &cfg->rate_limits[k];
            pc_suggest_offer(&sg, name, cfg->rate_limits[k].name);
        }
        for (size_t k = 0; r->rl[i] && k < i; k++)
            if (r->rl[k] == r->rl[i])
                pc_cfg_error(c, at, "policy '%s' is listed twice", name);
        if (name && !r->rl[i]) {
            const char *best = pc_suggest_best(&sg, 2);
            if (best)
                pc_cfg_error(c, at, "unknown rate-limit policy '%s' (did you mean '%s'?)", name,
                             best);
            else
                pc_cfg_error(c, at, "unknown rate-limit policy '%s'%s", name,
                             cfg->n_rate_limits ? "" : " (there is no rate_limits section)");
        }
        pc_cfg_pop(c, m2);
    }
    pc_cfg_pop(c, mark);
}

/* ---- the in-process store ---- */

#define SHARDS        64
#define SHARD_BUCKETS 4096
#define SHARD_MAX     (PC_RL_LOCAL_MAX_KEYS / SHARDS)
#define EVICT_SCAN    16 /* buckets looked at for a victim when a shard is full */

typedef struct lentry_s {
    struct lentry_s *next;
    uint64_t hash;
    int64_t tat; /* µs, monotonic */
    uint32_t len;
    char key[];
} lentry_t;

typedef struct {
    pthread_mutex_t lock;
    lentry_t **b; /* SHARD_BUCKETS chains, allocated on first use */
    size_t n;
    int64_t full_sweep_at; /* when a full shard last swept itself */
    char pad[64 - sizeof(pthread_mutex_t) % 64];
} shard_t;

static shard_t shards[SHARDS];
static unsigned sweep_next;
static pthread_once_t shards_once = PTHREAD_ONCE_INIT;

static void shards_init(void)
{
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
}

static lentry_t **find(shard_t *s, uint64_t h, const char *key, size_t len)
{
    lentry_t **pp = &s->b[(h / SHARDS) % SHARD_BUCKETS];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

/* Frees the expired entries of one shard (lock held). */
static void shard_sweep(shard_t *s, int64_t now)
{
    for (size_t i = 0; s->b && i < SHARD_BUCKETS; i++) {
        lentry_t **pp = &s->b[i];
        while (*pp) {
            lentry_t *e = *pp;
            if (e->tat <= now) { /* fully replenished: the same as no entry */
                *pp = e->next;
                free(e);
                s->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* A full shard forgets one key: the one closest to full replenishment
 * among a few chains from bucket b (lock held). */
static void shard_evict(shard_t *s, size_t b)
{
    lentry_t **victim = NULL;
    for (size_t i = 0; i < EVICT_SCAN; i++)
        for (lentry_t **pp = &s->b[(b + i) % SHARD_BUCKETS]; *pp; pp = &(*pp)->next)
            if (!victim || (*pp)->tat < (*victim)->tat)
                victim = pp;
    if (victim) {
        lentry_t *e = *victim;
        *victim = e->next;
        free(e);
        s->n--;
    }
}

int pc_rl_local_decide(pc_rl_decision_t *d, int64_t now)
{
    pthread_once(&shards_once, shards_init);
    uint64_t h[PC_RL_MAX_POLICIES] = {0};
    unsigned order[PC_RL_MAX_POLICIES] = {0}, n = d->n;
    lentry_t **slot[PC_RL_MAX_POLICIES];
    int64_t tat[PC_RL_MAX_POLICIES];
    for (unsigned i = 0; i < n; i++) {
        h[i] = pc_hash_keyed(d->items[i].key, d->items[i].key_len);
        order[i] = i;
    }
    /* locks in shard order, each once: no deadlock between workers */
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && h[order[j]] % SHARDS < h[order[j - 1]] % SHARDS; j--) {
            unsigned t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int rc = 0;
    unsigned locked = 0;
    for (; locked < n; locked++) {
        shard_t *s = &shards[h[order[locked]] % SHARDS];
        if (locked && s == &shards[h[order[locked - 1]] % SHARDS])
            continue;
        pthread_mutex_lock(&s->lock);
        if (!s->b && !(s->b = calloc(SHARD_BUCKETS, sizeof(*s->b))))
            rc = -1;
    }
    d->admitted = 1;
    d->retry_us = 0;
    for (unsigned i = 0; !rc && i < n; i++) {
        const pc_rl_policy_conf_t *p = d->items[i].policy;
        shard_t *s = &shards[h[i] % SHARDS];
        slot[i] = find(s, h[i], d->items[i].key, d->items[i].key_len);
        tat[i] = *slot[i] && (*slot[i])->tat > now ? (*slot[i])->tat : now;
        if (tat[i] - now > p->tau_us) {
            d->admitted = 0;
            if (tat[i] - p->tau_us - now > d->retry_us)
                d->retry_us = tat[i] - p->tau_us - now;
        }
    }
    for (unsigned i = 0; !rc && i < n; i++) {
        const pc_rl_policy_conf_t *p = d->items[i].policy;
        if (!d->admitted) {
            d->items[i].ahead_us = tat[i] - now;
            continue;
        }
        int64_t next = tat[i] + p->interval_us;
        d->items[i].ahead_us = next - now;
        if (*slot[i]) {
            (*slot[i])->tat = next;
            continue;
        }
        shard_t *s = &shards[h[i] % SHARDS];
        if (s->n >= SHARD_MAX) {
            /* a sweep walks the whole shard: at most every 100 ms, so keys
             * made up to fill the store cannot make every request pay it */
            if (now - s->full_sweep_at >= 100000) {
                s->full_sweep_at = now;
                shard_sweep(s, now);
            }
            if (s->n >= SHARD_MAX)
                shard_evict(s, (h[i] / SHARDS) % SHARD_BUCKETS);
            slot[i] = find(s, h[i], d->items[i].key, d->items[i].key_len);
        }
        lentry_t *e = malloc(sizeof(*e) + d->items[i].key_len);
        if (!e)
            continue; /* admitted, not remembered: the store is out of memory */
        e->hash = h[i];
        e->tat = next;
        e->len = (uint32_t)d->items[i].key_len;
        memcpy(e->key, d->items[i].key, e->len);
        e->next = *slot[i];
        *slot[i] = e;
        s->n++;
    }
    for (unsigned i = 0; i < locked; i++) {
        shard_t *s = &shards[h[order[i]] % SHARDS];
        if (i && s == &shards[h[order[i - 1]] % SHARDS])
            continue;
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

void pc_rl_local_sweep(int64_t now)
{
    pthread_once(&shards_once, shards_init);
    for (int k = 0; k < 4; k++) {
        shard_t *s = &shards[sweep_next++ % SHARDS];
        pthread_mutex_lock(&s->lock);
        shard_sweep(s, now);
        pthread_mutex_unlock(&s->lock);
    }
}

size_t pc_rl_local_count(void)
{
    size_t n = 0;
    pthread_once(&shards_once, shards_init);
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        n += shards[i].n;
        pthread_mutex_unlock(&shards[i].lock);
    }
    return n;
}

void pc_rl_local_free(void)
{
    pthread_once(&shards_once, shards_init);
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        shard_sweep(&shards[i], INT64_MAX);
        free(shards[i].b);
        shards[i].b = NULL;
        pthread_mutex_unlock(&shards[i].lock);
    }
}

/* ---- keys ---- */

static void key_put(pc_rl_item_t *it, const void *p, size_t n, int *over)
{
    if (it->key_len + n > sizeof(it->key)) {
        *over = 1;
        return;
    }
    memcpy(it->key + it->key_len, p, n);
    it->key_len += n;
}

/* The request's key for a policy: the policy's name, then each part as a
 * kind letter and its value, separated by 0x1f (never in a header value or
 * a route name). No value for a part: the client address alone. Keys over
 * PC_RL_KEY_MAX are replaced by their SHA-256. */
static void build_key(pc_req_t *r, const pc_rl_policy_conf_t *p, pc_rl_item_t *it)
{
    char ip[48];
    size_t ipn = 0;
    int over = 0, fallback = 0;
    char big[PC_RL_KEY_MAX * 2];
    pc_rl_item_t *out = it;
    it->policy = p;
    it->key_len = 0;
    key_put(it, p->name, strlen(p->name), &over);
    for (unsigned i = 0; i < p->nparts && !fallback; i++) {
        static const char kinds[] = "icHr";
        char sep[2] = {0x1f, kinds[p->parts[i].kind]};
        pc_str_t v = PC_STR_NULL;
        switch (p->parts[i].kind) {
        case PC_RLK_IP:
            if (!ipn)
                ipn = pc_ip_format(r->client_ip, ip);
            v = pc_str_make(ip, ipn);
            break;
        case PC_RLK_ROUTE:
            v = pc_str_cstr(r->route->name);
            break;
        case PC_RLK_CLAIM: /* the name was copied NUL-terminated at load */
            v = pc_str_cstr(pc_jwt_claim_text(r, p->parts[i].name.p));
            break;
        case PC_RLK_HEADER: {
            const pc_http_header_t *h =
                pc_http_find_name(r->http.headers, r->http.nheaders, p->parts[i].name);
            v = h ? h->value : PC_STR_NULL;
            break;
        }
        }
        if (!v.p || !v.n) {
            fallback = 1;
            break;
        }
        key_put(it, sep, 2, &over);
        if (v.n > PC_RL_KEY_MAX) { /* a long value: its digest stands for it */
            unsigned char md[SHA256_DIGEST_LENGTH];
            SHA256((const unsigned char *)v.p, v.n, md);
            pc_hex_encode(md, sizeof(md), big);
            v = pc_str_make(big, 2 * sizeof(md));
        }
        key_put(it, v.p, v.n, &over);
    }
    if (fallback) {
        if (!ipn)
            ipn = pc_ip_format(r->client_ip, ip);
        it->key_len = 0;
        key_put(it, p->name, strlen(p->name), &over);
        key_put(it,
                "\x1f"
                "i",
                2, &over);
        key_put(it, ip, ipn, &over);
    }
    if (over) { /* cannot happen with the caps above; stay safe */
        out->key_len = 0;
        key_put(out, p->name, strlen(p->name), &over);
    }
}

/* ---- the filter ---- */

/* Per request: only what a Redis decision in flight needs (a local
 * decision lives on the stack; zeroing kilobytes per request would cost
 * more than the decision). */
typedef struct {
    pc_rl_decision_t *d; /* in the arena, while Redis decides */
    pc_rl_op_t *op;
    pc_req_t *r;
} rl_state_t;

static int is_health_path(const pc_req_t *r)
{
    for (size_t i = 0; i < r->cfg->n_health_paths; i++)
        if (pc_str_eq(r->route_path, r->cfg->health_paths[i]))
            return 1;
    return 0;
}

/* The most restrictive item: the fewest requests left, then the longest
 * wait; among items whose policy sends headers when only_headers. */
static const pc_rl_item_t *restrictive(const pc_rl_decision_t *d, int only_headers, int64_t *left)
{
    const pc_rl_item_t *best = NULL;
    int64_t best_left = 0;
    for (unsigned i = 0; i < d->n; i++) {
        const pc_rl_item_t *it = &d->items[i];
        const pc_rl_policy_conf_t *p = it->policy;
        if (only_headers && !p->headers)
            continue;
        int64_t l = (p->tau_us + p->interval_us - it->ahead_us) / p->interval_us;
        if (l < 0)
            l = 0;
        if (!best || l < best_left || (l == best_left && it->ahead_us > best->ahead_us)) {
            best = it;
            best_left = l;
        }
    }
    *left = best_left;
    return best;
}

static int64_t ceil_s(int64_t us)
{
    return us <= 0 ? 0 : (us + 999999) / 1000000;
}

/* RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers)
 * for the item: quota q per window w seconds; r requests left, t seconds
 * until the quota is whole again. */
static int add_fields(pc_req_t *r, const pc_rl_item_t *it, int64_t left)
{
    const pc_rl_policy_conf_t *p = it->policy;
    char pol[160], now[160];
    int a = snprintf(pol, sizeof(pol), "\"%s\";q=%lld;w=%lld", p->name, (long long)p->rate.count,
                     (long long)((p->rate.period_ms + 999) / 1000));
    int b = snprintf(now, sizeof(now), "\"%s\";r=%lld;t=%lld", p->name, (long long)left,
                     (long long)ceil_s(it->ahead_us));
    return pc_req_add_response_header(r, "RateLimit-Policy", pc_str_make(pol, (size_t)a)) ||
           pc_req_add_response_header(r, "RateLimit", pc_str_make(now, (size_t)b));
}

static pc_filter_rc_e apply(pc_req_t *r, pc_rl_decision_t *d)
{
    int64_t left;
    if (d->admitted) {
        const pc_rl_item_t *it = restrictive(d, 1, &left);
        return it && add_fields(r, it, left) != 0 ? PC_FILTER_ERROR : PC_FILTER_CONTINUE;
    }
    if (pc_req_dry_run(r)) /* no fields: they would ride on the proxied response */
        return pc_req_block(r, PC_REPLY_too_many_requests, "ratelimit", "rate limited")
                   ? PC_FILTER_RESPOND
                   : PC_FILTER_CONTINUE;
    const pc_rl_item_t *it = restrictive(d, 0, &left);
    char ra[24];
    size_t n = pc_u64_dec((uint64_t)(ceil_s(d->retry_us) ? ceil_s(d->retry_us) : 1), ra);
    if ((it && add_fields(r, it, left) != 0) ||
        pc_req_add_response_header(r, "Retry-After", pc_str_make(ra, n)) != 0)
        return PC_FILTER_ERROR;
    pc_req_block(r, PC_REPLY_too_many_requests, "ratelimit", "rate limited");
    return PC_FILTER_RESPOND;
}

/* Redis is unusable: each policy's on_failure decides. */
static pc_filter_rc_e on_failure(pc_req_t *r, pc_rl_decision_t *d)
{
    pc_rl_decision_t local;
    local.n = 0;
    for (unsigned i = 0; i < d->n; i++) {
        int64_t mode = d->items[i].policy->fail_mode;
        if (mode == PC_FAIL_CLOSED)
            return pc_req_block_as(r, PC_REPLY_service_unavailable, "rate_limit_unavailable",
                                   "ratelimit", "redis unavailable")
                       ? PC_FILTER_RESPOND
                       : PC_FILTER_CONTINUE;
        if (mode == PC_FAIL_LOCAL)
            local.items[local.n++] = d->items[i];
    }
    if (!local.n)
        return PC_FILTER_CONTINUE; /* fail_open */
    if (pc_rl_local_decide(&local, pc_now_us()) != 0)
        return PC_FILTER_ERROR;
    return apply(r, &local);
}

static void redis_done(void *arg, int ok)
{
    rl_state_t *st = arg;
    pc_req_t *r = st->r;
    st->op = NULL;
    if (r->abandoned) /* the client left while Redis decided: nothing to answer */
        pc_req_resume(r, PC_FILTER_CONTINUE);
    else
        pc_req_resume(r, ok ? apply(r, st->d) : on_failure(r, st->d));
}

static pc_filter_rc_e rl_request(pc_req_t *r, const void *conf, void *state)
{
    const pc_route_conf_t *route = conf;
    rl_state_t *st = state;
    const pc_redis_conf_t *rc = r->cfg->redis;
    pc_rl_decision_t local, *d = &local;
    if (is_health_path(r))
        return PC_FILTER_CONTINUE;
    if (rc && !(d = pc_arena_alloc(&r->arena, sizeof(*d))))
        return PC_FILTER_ERROR;
    d->n = 0;
    for (size_t i = 0; i < route->n_rate_limits; i++)
        if (route->rl[i])
            build_key(r, route->rl[i], &d->items[d->n++]);
    if (!rc) {
        if (pc_rl_local_decide(d, pc_now_us()) != 0)
            return PC_FILTER_ERROR;
        return apply(r, d);
    }
    pc_worker_t *w = r->w;
    if (!w->rl_redis) /* a reload that moves Redis drops the old one (worker.c) */
        w->rl_redis = pc_rl_redis_new(w->base, rc, &w->redis_state);
    st->r = r;
    st->d = d;
    if (w->rl_redis && pc_rl_redis_matches(w->rl_redis, rc) && pc_rl_redis_usable(w->rl_redis) &&
        (st->op = pc_rl_redis_decide(w->rl_redis, d, redis_done, st)) != NULL)
        return PC_FILTER_SUSPEND;
    return on_failure(r, d); /* known down: no waiting */
}

static void rl_cancel(pc_req_t *r, const void *conf, void *state)
{
    rl_state_t *st = state;
    (void)r;
    (void)conf;
    if (st->op)
        pc_rl_redis_cancel(st->op);
    st->op = NULL;
}

const pc_filter_ops_t pc_rl_filter_ops = {.name = "ratelimit",
                                          .state_size = sizeof(rl_state_t),
                                          .request_headers = rl_request,
                                          .cancel = rl_cancel};
