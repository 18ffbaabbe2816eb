/*
 * revoke_redis.h — the revoked-token list shared by every gateway instance
 * through Redis (see revoke_redis.c for the key layout). Control thread
 * only.
 */
#ifndef PC_REVOKE_REDIS_H
#define PC_REVOKE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct evhttp_request;

/* Every control-thread tick: connects, reconnects (with a backoff) and
 * resynchronises; conf NULL (no redis section) disconnects. */
void pc_revoke_redis_tick(struct event_base *base, const pc_redis_conf_t *conf);
/* Disconnects (pending admin requests are answered). */
void pc_revoke_redis_stop(void);

/* Stores and publishes a revocation; done(req, ok) is called exactly once,
 * within redis.timeout. -1 (done not called) when Redis is not connected. */
int pc_revoke_redis_add(const char *jti, size_t n, int64_t exp, struct evhttp_request *req,
                        void (*done)(struct evhttp_request *req, int ok));

int pc_revoke_redis_connected(void);
uint64_t pc_revoke_redis_errors(void);

#endif
