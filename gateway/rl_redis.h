/*
 * rl_redis.h — a worker's Redis client for rate limiting: one hiredis async
 * connection on the worker's event loop (libevent adapter), every request's
 * decision one EVALSHA of one Lua script, pipelined.
 *
 * hiredis 0.14 has no timeouts, so the client arms its own: every command
 * must be answered within redis.timeout, and so must a connection attempt
 * and the SCRIPT LOAD that proves a new connection answers (a stopped
 * Redis accepts TCP connections all the same) and loads the script. The first command that times
 * out marks Redis down: the connection is dropped (every command still waiting fails at once), and
 * until a reconnection's PING is answered no request waits — pc_rl_redis_usable() says 0 and the
 * caller applies on_failure. A NOSCRIPT answer (Redis restarted or flushed) is retried once with
 * EVAL. Reconnection backs off from 100 ms to 2 s.
 */
#ifndef PC_RL_REDIS_H
#define PC_RL_REDIS_H

#include <stdint.h>

#include "config.h"
#include "ratelimit.h"

typedef struct pc_rl_redis_s pc_rl_redis_t;
typedef struct pc_rl_op_s pc_rl_op_t;
struct event_base;

/* Redis connection states, also published for /readyz (atomic). */
typedef enum { PC_REDIS_UNUSED = 0, PC_REDIS_UP, PC_REDIS_DOWN } pc_redis_state_e;

/* A client for conf on base; *state is kept up to date. NULL when out of
 * memory. Connecting starts at once. */
pc_rl_redis_t *pc_rl_redis_new(struct event_base *base, const pc_redis_conf_t *conf, int *state);
/* Same address and timeout? (else the worker replaces the client) */
int pc_rl_redis_matches(const pc_rl_redis_t *c, const pc_redis_conf_t *conf);
/* Connected and answering: a command sent now is expected to be answered. */
int pc_rl_redis_usable(const pc_rl_redis_t *c);

/* Sends d's script. done(arg, ok) is called exactly once from the loop,
 * later (ok: d's results are filled; 0: Redis failed or timed out), unless
 * the op is cancelled first. NULL when it could not be sent (Redis not
 * usable, or out of memory): done is not called. */
pc_rl_op_t *pc_rl_redis_decide(pc_rl_redis_t *c, pc_rl_decision_t *d,
                               void (*done)(void *arg, int ok), void *arg);
/* The request went away: done will not be called and d not written. */
void pc_rl_redis_cancel(pc_rl_op_t *op);

/* Frees the client now: commands in flight fail (done(arg, 0)). Call it
 * from a top-level callback, never from inside a request's filter. */
void pc_rl_redis_free(pc_rl_redis_t *c);

/* Failed or timed-out commands and lost connections, all workers. */
uint64_t pc_rl_redis_errors(void);

/* The script (for docs and tests) and its SHA-1. */
extern const char pc_rl_script[];

#endif
