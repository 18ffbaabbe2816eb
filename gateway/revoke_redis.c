/*
 * revoke_redis.c — the revocation list shared through Redis (control
 * thread only; see revoke_redis.h).
 *
 * Layout: one key per revoked token, "portcullis:revoked:<jti>", holding
 * its exp and expiring at it (SET ... EXAT), so Redis forgets tokens that
 * are expired anyway; and a channel, "portcullis:revoked", on which each
 * revocation is published as "<exp> <jti>". Every gateway subscribes, and
 * on every (re)connection and once a minute copies the keys into its
 * in-process list (SCAN + MGET), so an instance that was down or
 * disconnected catches up. Workers only ever read the in-process list:
 * Redis never adds a round trip to a request.
 *
 * hiredis 0.14 has no timeouts: an admin request waits at most
 * redis.timeout for Redis (then 503, the token still revoked on this
 * instance), and a connection that does not complete within it is dropped
 * and retried with a backoff.
 */
#include "revoke_redis.h"

#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "jwt.h"
#include "log.h"

#define KEY_PREFIX   "portcullis:revoked:"
#define CHANNEL      "portcullis:revoked"
#define RESYNC_MS    60000
#define RETRY_MAX_MS 5000

typedef struct {
    struct event_base *base;
    pc_redis_conf_t conf; /* a copy: the snapshot may go */
    char host[64];
    int port;
    char address[300];
    redisAsyncContext *cmd, *sub;
    int cmd_up, sub_up;
    int64_t connect_deadline;
    int64_t next_try, next_sync;
    unsigned fails;
    int syncing;
    uint64_t errors;
} rstate_t;

static rstate_t st;

int pc_revoke_redis_connected(void)
{
    return st.cmd_up && st.sub_up;
}

uint64_t pc_revoke_redis_errors(void)
{
    return st.errors;
}

static void drop(const char *why)
{
    if (why)
        pc_log(PC_LOG_WARN, "redis", "revocation list: %s (%s)", why, st.address);
    st.errors++;
    /* cleared first: redisAsyncFree runs the disconnect callback and the
     * pending command callbacks (with a NULL reply) */
    redisAsyncContext *a = st.cmd, *b = st.sub;
    st.cmd = st.sub = NULL;
    st.cmd_up = st.sub_up = 0;
    st.syncing = 0;
    if (a)
        redisAsyncFree(a);
    if (b)
        redisAsyncFree(b);
    int64_t wait = st.fails >= 4 ? RETRY_MAX_MS : 250 << st.fails;
    st.fails++;
    st.next_try = pc_mono_ms() + wait;
}

/* ---- sync: SCAN keys, MGET their exp ---- */

static void scan_cb(redisAsyncContext *c, void *r, void *priv);

static void mget_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *rep = r, *keys = priv;
    (void)c;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == keys->elements)
        for (size_t i = 0; i < rep->elements; i++) {
            redisReply *v = rep->element[i];
            if (v->type != REDIS_REPLY_STRING)
                continue;
            const char *jti = keys->element[i]->str + strlen(KEY_PREFIX);
            size_t n = keys->element[i]->len - strlen(KEY_PREFIX);
            if (n && n <= PC_JTI_MAX)
                pc_revoke_add(jti, n, strtoll(v->str, NULL, 10));
        }
    freeReplyObject(keys);
}

static void scan_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *rep = r;
    (void)priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        st.syncing = 0;
        return;
    }
    redisReply *keys = rep->element[1];
    if (keys->elements) {
        const char **argv = calloc(keys->elements + 1, sizeof(*argv));
        size_t *lens = calloc(keys->elements + 1, sizeof(*lens));
        if (argv && lens) {
            argv[0] = "MGET";
            lens[0] = 4;
            for (size_t i = 0; i < keys->elements; i++) {
                argv[i + 1] = keys->element[i]->str;
                lens[i + 1] = keys->element[i]->len;
            }
            /* the key names stay ours until MGET answers */
            rep->element[1] = NULL;
            rep->elements = 1;
            if (redisAsyncCommandArgv(c, mget_cb, keys, (int)keys->elements + 1, argv, lens) !=
                REDIS_OK)
                freeReplyObject(keys);
        }
        free(argv);
        free(lens);
    }
    const char *cursor = rep->element[0]->str;
    if (cursor && strcmp(cursor, "0") != 0)
        redisAsyncCommand(c, scan_cb, NULL, "SCAN %s MATCH " KEY_PREFIX "* COUNT 1000", cursor);
    else
        st.syncing = 0;
}

static void sync_all(void)
{
    if (!st.cmd_up || st.syncing)
        return;
    st.syncing = 1;
    st.next_sync = pc_mono_ms() + RESYNC_MS;
    redisAsyncCommand(st.cmd, scan_cb, NULL, "SCAN 0 MATCH " KEY_PREFIX "* COUNT 1000");
}

/* ---- the subscription ---- */

static void message_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *rep = r;
    (void)c;
    (void)priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") != 0)
        return;
    const char *m = rep->element[2]->str, *sp = m ? strchr(m, ' ') : NULL;
    if (!sp)
        return;
    size_t n = rep->element[2]->len - (size_t)(sp + 1 - m);
    if (n && n <= PC_JTI_MAX)
        pc_revoke_add(sp + 1, n, strtoll(m, NULL, 10));
}

/* ---- connections ---- */

static void on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        /* hiredis frees c after this returns */
        if (c == st.cmd)
            st.cmd = NULL;
        if (c == st.sub)
            st.sub = NULL;
        drop("cannot connect");
        return;
    }
    if (c == st.cmd)
        st.cmd_up = 1;
    if (c == st.sub)
        st.sub_up = 1;
    if (st.cmd_up && st.sub_up) {
        st.fails = 0;
        pc_log(PC_LOG_INFO, "redis", "revocation list shared through %s", st.address);
        sync_all();
    }
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    (void)status;
    if (c == st.cmd)
        st.cmd = NULL;
    if (c == st.sub)
        st.sub = NULL;
    if (st.cmd || st.sub || st.cmd_up || st.sub_up)
        drop("connection lost");
}

static redisAsyncContext *open_one(void)
{
    redisAsyncContext *c = redisAsyncConnect(st.host, st.port);
    if (!c)
        return NULL;
    if (c->err || redisLibeventAttach(c, st.base) != REDIS_OK) {
        redisAsyncFree(c);
        return NULL;
    }
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

static void connect_now(void)
{
    st.cmd = open_one();
    st.sub = st.cmd ? open_one() : NULL;
    if (!st.cmd || !st.sub) {
        drop("cannot connect");
        return;
    }
    st.connect_deadline = pc_mono_ms() + st.conf.timeout + 1000;
    redisAsyncCommand(st.sub, message_cb, NULL, "SUBSCRIBE " CHANNEL);
}

void pc_revoke_redis_tick(struct event_base *base, const pc_redis_conf_t *conf)
{
    if (!conf) {
        if (st.base)
            pc_revoke_redis_stop();
        return;
    }
    if (st.base && (strcmp(st.address, conf->address) != 0 || st.conf.timeout != conf->timeout))
        pc_revoke_redis_stop(); /* a reload changed it */
    if (!st.base) {
        st.base = base;
        st.conf = *conf;
        st.conf.address = NULL; /* the snapshot's; st.address is ours */
        snprintf(st.address, sizeof(st.address), "%s", conf->address);
        st.port = pc_sockaddr_host(&conf->addr, st.host, sizeof(st.host));
    }
    int64_t now = pc_mono_ms();
    if (!st.cmd && !st.sub) {
        if (now >= st.next_try)
            connect_now();
    } else if (!(st.cmd_up && st.sub_up) && now > st.connect_deadline) {
        drop("connect timed out");
    } else if (st.cmd_up && now >= st.next_sync) {
        sync_all();
    }
}

void pc_revoke_redis_stop(void)
{
    uint64_t errors = st.errors;
    if (st.cmd || st.sub)
        drop(NULL);
    memset(&st, 0, sizeof(st));
    st.errors = errors;
}

/* ---- revoking ---- */

typedef struct {
    struct evhttp_request *req;
    struct event *timer;
    void (*done)(struct evhttp_request *req, int ok);
    int answered;
    int pending; /* replies still to come */
} op_t;

static void op_release(op_t *o)
{
    if (--o->pending > 0)
        return;
    event_free(o->timer);
    free(o);
}

static void op_answer(op_t *o, int ok)
{
    if (o->answered)
        return;
    o->answered = 1;
    event_del(o->timer);
    o->done(o->req, ok);
}

static void op_timeout(evutil_socket_t fd, short what, void *arg)
{
    op_t *o = arg;
    (void)fd;
    (void)what;
    st.errors++;
    op_answer(o, 0); /* the callbacks still come, and release o */
}

static void publish_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *rep = r;
    (void)c;
    op_answer(priv, rep && rep->type == REDIS_REPLY_INTEGER);
    op_release(priv);
}

static void set_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *rep = r;
    (void)c;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        op_answer(priv, 0);
    op_release(priv);
}

int pc_revoke_redis_add(const char *jti, size_t n, int64_t exp, struct evhttp_request *req,
                        void (*done)(struct evhttp_request *req, int ok))
{
    if (!st.cmd_up)
        return -1;
    op_t *o = calloc(1, sizeof(*o));
    if (!o || !(o->timer = evtimer_new(st.base, op_timeout, o))) {
        free(o);
        return -1;
    }
    o->req = req;
    o->done = done;
    char msg[24 + PC_JTI_MAX];
    int ml = snprintf(msg, sizeof(msg), "%lld %.*s", (long long)exp, (int)n, jti);
    o->pending = 2;
    if (redisAsyncCommand(st.cmd, set_cb, o, "SET " KEY_PREFIX "%b %lld EXAT %lld", jti, n,
                          (long long)exp, (long long)exp) != REDIS_OK) {
        event_free(o->timer);
        free(o);
        return -1;
    }
    struct timeval tv = {(time_t)(st.conf.timeout / 1000),
                         (suseconds_t)(st.conf.timeout % 1000) * 1000};
    evtimer_add(o->timer, &tv);
    if (redisAsyncCommand(st.cmd, publish_cb, o, "PUBLISH " CHANNEL " %b", msg, (size_t)ml) !=
        REDIS_OK) {
        o->pending = 1; /* only SET's callback will come */
        op_answer(o, 0);
    }
    return 0;
}
