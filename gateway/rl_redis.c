/*
 * rl_redis.c — see rl_redis.h.
 */
#include "rl_redis.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "request.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define KEY_PREFIX     "pcrl:{rl}:" /* one hash slot: a request's keys go together */

/*
 * KEYS: one per policy. ARGV: per policy, its emission interval and its
 * tolerance (µs). The clock is Redis's own (TIME), the same for every
 * gateway. Every policy is checked before any is updated, so a request
 * refused by one consumes nothing from the others. Replies
 * {admitted, retry_us, ahead_us...}: ahead is TAT - now, after the update
 * when admitted. Each key expires once its TAT has passed (it then holds
 * nothing a missing key would not).
 */
const char pc_rl_script[] = "local t = redis.call('TIME')\n"
                            "local now = t[1] * 1000000 + t[2]\n"
                            "local v, retry = {}, 0\n"
                            "for i = 1, #KEYS do\n"
                            "  local x = tonumber(redis.call('GET', KEYS[i])) or now\n"
                            "  if x < now then x = now end\n"
                            "  v[i] = x\n"
                            "  local over = x - now - ARGV[2 * i]\n"
                            "  if over > retry then retry = over end\n"
                            "end\n"
                            "if retry > 0 then\n"
                            "  for i = 1, #KEYS do v[i] = v[i] - now end\n"
                            "  return {0, retry, unpack(v)}\n"
                            "end\n"
                            "for i = 1, #KEYS do\n"
                            "  local x = v[i] + ARGV[2 * i - 1]\n"
                            "  redis.call('SET', KEYS[i], string.format('%.0f', x), 'PX', "
                            "math.floor((x - now) / 1000) + 1)\n"
                            "  v[i] = x - now\n"
                            "end\n"
                            "return {1, 0, unpack(v)}\n";

/* ST_FAILED: the probe could not be sent from hiredis's connect callback,
 * after which hiredis still uses the context: the timer takes it down. */
typedef enum { ST_DOWN = 0, ST_CONNECTING, ST_PROBING, ST_UP, ST_FAILED } cstate_e;

struct pc_rl_op_s {
    pc_rl_op_t *next, **prevp; /* in the client's list while unsettled */
    pc_rl_redis_t *c;
    pc_rl_decision_t *d;
    void (*done)(void *arg, int ok);
    void *arg;
    int64_t deadline_us;
    unsigned settled : 1; /* done called, or cancelled */
    unsigned probe : 1;   /* the SCRIPT LOAD of a new connection */
    unsigned resent : 1;  /* sent again with EVAL after NOSCRIPT */
};

struct pc_rl_redis_s {
    struct event_base *base;
    char address[300];
    char host[64];
    int port;
    int64_t timeout_us;
    redisAsyncContext *ac;
    cstate_e state;
    int *pub;            /* the worker's published state */
    int64_t deadline_us; /* connecting or probing must end by then */
    int64_t retry_us;    /* down: the next attempt */
    unsigned fails;
    struct event *timer;
    pc_rl_op_t *ops, **tailp; /* unsettled commands, oldest first */
};

static uint64_t errors; /* atomic */
static char sha_hex[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void make_sha(void)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)pc_rl_script, strlen(pc_rl_script), md);
    pc_hex_encode(md, sizeof(md), sha_hex);
    sha_hex[40] = 0;
}

uint64_t pc_rl_redis_errors(void)
{
    return __atomic_load_n(&errors, __ATOMIC_RELAXED);
}

static void count_error(void)
{
    __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
}

static void publish(pc_rl_redis_t *c)
{
    __atomic_store_n(c->pub, c->state == ST_UP ? PC_REDIS_UP : PC_REDIS_DOWN, __ATOMIC_RELAXED);
}

static void unlink_op(pc_rl_op_t *op)
{
    pc_rl_redis_t *c = op->c;
    if (!op->prevp)
        return;
    *op->prevp = op->next;
    if (op->next)
        op->next->prevp = op->prevp;
    else
        c->tailp = op->prevp;
    op->prevp = NULL;
    op->next = NULL;
}

static void settle(pc_rl_op_t *op, int ok)
{
    if (op->settled)
        return;
    op->settled = 1;
    unlink_op(op);
    if (op->done)
        op->done(op->arg, ok);
}

/* Arms the one timer for the earliest of: the oldest command's deadline,
 * the connection's deadline, the next reconnection. */
static void arm(pc_rl_redis_t *c)
{
    int64_t at = c->state == ST_DOWN ? c->retry_us : c->state == ST_UP ? INT64_MAX : c->deadline_us;
    if (c->ops && c->ops->deadline_us < at)
        at = c->ops->deadline_us;
    if (at == INT64_MAX) {
        evtimer_del(c->timer);
        return;
    }
    int64_t d = at - pc_now_us();
    if (d < 0)
        d = 0;
    struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
    evtimer_add(c->timer, &tv);
}

/* Redis is unusable: forget the connection (its commands fail now, through
 * their callbacks) and retry later. ac is NULL when hiredis is freeing it. */
static void down(pc_rl_redis_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    int was_up = c->state == ST_UP;
    c->ac = NULL;
    c->state = ST_DOWN;
    unsigned shift = c->fails < 5 ? c->fails : 5;
    int64_t wait = (int64_t)BACKOFF_MIN_MS << shift;
    c->retry_us = pc_now_us() + (wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait) * 1000;
    c->fails++;
    count_error();
    publish(c);
    if (was_up || c->fails == 1)
        pc_log(PC_LOG_WARN, "redis", "rate limiting: %s (%s); on_failure applies until it answers",
               why, c->address);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* each pending command's callback runs, with no reply */
    }
    while (c->ops) /* commands hiredis no longer holds (none, normally) */
        settle(c->ops, 0);
    arm(c);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

/* Appends one RESP bulk string. */
static void resp_arg(pc_wbuf_t *o, const char *p, size_t n)
{
    pc_wb_put(o, "$", 1);
    pc_wb_u64(o, n);
    pc_wb_put(o, "\r\n", 2);
    pc_wb_put(o, p, n);
    pc_wb_put(o, "\r\n", 2);
}

/* EVALSHA (or EVAL) with the decision's keys and arguments, written in RESP
 * here: hiredis's own formatting costs more than the rest of the request. */
static int send_op(pc_rl_redis_t *c, pc_rl_op_t *op, int eval)
{
    const pc_rl_decision_t *d = op->d;
    char buf[sizeof(pc_rl_script) + PC_RL_MAX_POLICIES * (PC_RL_KEY_MAX + 96) + 128], num[24];
    pc_wbuf_t o = {buf, 0, sizeof(buf)};
    pc_wb_put(&o, "*", 1);
    pc_wb_u64(&o, 3 + 3 * d->n);
    pc_wb_put(&o, "\r\n", 2);
    if (eval) {
        resp_arg(&o, "EVAL", 4);
        resp_arg(&o, pc_rl_script, sizeof(pc_rl_script) - 1);
    } else {
        resp_arg(&o, "EVALSHA", 7);
        resp_arg(&o, sha_hex, 40);
    }
    resp_arg(&o, num, pc_u64_dec(d->n, num));
    for (unsigned i = 0; i < d->n; i++) {
        size_t n = sizeof(KEY_PREFIX) - 1 + d->items[i].key_len;
        pc_wb_put(&o, "$", 1);
        pc_wb_u64(&o, n);
        pc_wb_put(&o, "\r\n" KEY_PREFIX, 2 + sizeof(KEY_PREFIX) - 1);
        pc_wb_put(&o, d->items[i].key, d->items[i].key_len);
        pc_wb_put(&o, "\r\n", 2);
    }
    for (unsigned i = 0; i < d->n; i++) {
        resp_arg(&o, num, pc_u64_dec((uint64_t)d->items[i].policy->interval_us, num));
        resp_arg(&o, num, pc_u64_dec((uint64_t)d->items[i].policy->tau_us, num));
    }
    if (!pc_wb_ok(&o))
        return -1;
    return redisAsyncFormattedCommand(c->ac, reply_cb, op, buf, o.n) == REDIS_OK ? 0 : -1;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    pc_rl_op_t *op = priv;
    pc_rl_redis_t *c = op->c;
    (void)ac;
    if (op->probe) {
        if (!op->settled && c->ac && c->state == ST_PROBING) {
            if (rep && rep->type == REDIS_REPLY_STRING && rep->len == 40 &&
                memcmp(rep->str, sha_hex, 40) == 0) {
                c->state = ST_UP;
                c->fails = 0;
                publish(c);
                pc_log(PC_LOG_INFO, "redis", "rate limiting through %s", c->address);
                arm(c);
            } else {
                down(c, "SCRIPT LOAD failed");
            }
        }
        unlink_op(op);
        free(op);
        return;
    }
    if (rep && rep->type == REDIS_REPLY_ERROR && !op->resent && !op->settled &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0 && c->ac) {
        /* Redis restarted or flushed its scripts: EVAL loads it again */
        op->resent = 1;
        if (send_op(c, op, 1) == 0)
            return;
    }
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && op->d && rep->elements == 2 + op->d->n;
    for (size_t i = 0; ok && i < rep->elements; i++)
        ok = rep->element[i]->type == REDIS_REPLY_INTEGER;
    if (ok && !op->settled) {
        pc_rl_decision_t *d = op->d;
        d->admitted = rep->element[0]->integer == 1;
        d->retry_us = rep->element[1]->integer;
        for (unsigned i = 0; i < d->n; i++)
            d->items[i].ahead_us = rep->element[2 + i]->integer;
    } else if (!ok && rep) {
        count_error();
        pc_log(PC_LOG_WARN, "redis", "rate limiting: unexpected answer from %s%s%s", c->address,
               rep->type == REDIS_REPLY_ERROR ? ": " : "",
               rep->type == REDIS_REPLY_ERROR ? rep->str : "");
    }
    settle(op, ok);
    free(op);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    pc_rl_redis_t *c = ac->data;
    if (!c || c->ac != ac)
        return;
    if (status != REDIS_OK) {
        c->ac = NULL; /* hiredis frees it */
        down(c, "cannot connect");
        return;
    }
    /* the probe loads the script: it proves Redis answers, and the
     * EVALSHAs that follow find the script */
    pc_rl_op_t *op = calloc(1, sizeof(*op));
    if (!op || redisAsyncCommand(c->ac, reply_cb, op, "SCRIPT LOAD %s", pc_rl_script) != REDIS_OK) {
        free(op);
        c->state = ST_FAILED; /* not down() here: freeing ac now is a use after free */
        c->deadline_us = 0;
        arm(c);
        return;
    }
    op->c = c;
    op->probe = 1;
    c->state = ST_PROBING;
    c->deadline_us = pc_now_us() + c->timeout_us;
    arm(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    pc_rl_redis_t *c = ac->data;
    (void)status;
    if (c && c->ac == ac) {
        c->ac = NULL; /* hiredis frees it */
        down(c, "connection lost");
    }
}

static void connect_now(pc_rl_redis_t *c)
{
    redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
    if (!ac || ac->err || redisLibeventAttach(ac, c->base) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        down(c, "cannot connect");
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->state = ST_CONNECTING;
    c->deadline_us = pc_now_us() + c->timeout_us;
    arm(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    pc_rl_redis_t *c = arg;
    (void)fd;
    (void)what;
    int64_t now = pc_now_us();
    if (c->state == ST_FAILED)
        down(c, "cannot send SCRIPT LOAD");
    else if (c->ops && c->ops->deadline_us <= now && c->state == ST_UP)
        down(c, "a command timed out");
    else if ((c->state == ST_CONNECTING || c->state == ST_PROBING) && c->deadline_us <= now)
        down(c, c->state == ST_CONNECTING ? "connect timed out" : "no answer to SCRIPT LOAD");
    else if (c->state == ST_DOWN && c->retry_us <= now)
        connect_now(c);
    else
        arm(c);
}

pc_rl_redis_t *pc_rl_redis_new(struct event_base *base, const pc_redis_conf_t *conf, int *state)
{
    pthread_once(&sha_once, make_sha);
    pc_rl_redis_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->timer = evtimer_new(base, on_timer, c))) {
        free(c);
        return NULL;
    }
    c->base = base;
    c->pub = state;
    c->tailp = &c->ops;
    c->timeout_us = conf->timeout * 1000;
    snprintf(c->address, sizeof(c->address), "%s", conf->address);
    c->port = pc_sockaddr_host(&conf->addr, c->host, sizeof(c->host));
    connect_now(c);
    return c;
}

int pc_rl_redis_matches(const pc_rl_redis_t *c, const pc_redis_conf_t *conf)
{
    return strcmp(c->address, conf->address) == 0 && c->timeout_us == conf->timeout * 1000;
}

int pc_rl_redis_usable(const pc_rl_redis_t *c)
{
    return c->state == ST_UP;
}

pc_rl_op_t *pc_rl_redis_decide(pc_rl_redis_t *c, pc_rl_decision_t *d,
                               void (*done)(void *arg, int ok), void *arg)
{
    if (c->state != ST_UP)
        return NULL;
    pc_rl_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->c = c;
    op->d = d;
    op->done = done;
    op->arg = arg;
    op->deadline_us = pc_now_us() + c->timeout_us;
    if (send_op(c, op, 0) != 0) {
        free(op);
        return NULL;
    }
    op->prevp = c->tailp;
    *c->tailp = op;
    c->tailp = &op->next;
    if (c->ops == op)
        arm(c);
    return op;
}

void pc_rl_redis_cancel(pc_rl_op_t *op)
{
    op->done = NULL;
    op->d = NULL;
    op->settled = 1;
    unlink_op(op); /* freed by its callback */
}

void pc_rl_redis_free(pc_rl_redis_t *c)
{
    if (!c)
        return;
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = ST_DOWN;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    while (c->ops)
        settle(c->ops, 0);
    __atomic_store_n(c->pub, PC_REDIS_UNUSED, __ATOMIC_RELAXED);
    event_free(c->timer);
    free(c);
}
