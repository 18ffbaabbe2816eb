/*
 * health.h — what every worker knows about each upstream server: the active
 * health check's verdict and the passive circuit breaker.
 *
 * One record per (upstream name, server address), shared by all workers and
 * kept across reloads (a reload does not forget that a server is down).
 * Fields are atomics; no lock is taken on the request path, and a server in
 * good health costs two relaxed loads to select.
 *
 * Circuit breaker: `failures` consecutive failed requests (connect errors,
 * timeouts, resets, malformed responses, 502/503/504 answers) open the
 * circuit for `cooldown`; then exactly one request is let through as a probe
 * (half-open): its success closes the circuit, its failure opens it again.
 */
#ifndef PC_HEALTH_H
#define PC_HEALTH_H

#include <stddef.h>
#include <stdint.h>

struct pc_config_s;

typedef struct pc_health_s {
    char *upstream;
    char *server;
    int healthy;           /* active check verdict (1 until a check says otherwise) */
    unsigned fails;        /* consecutive passive failures */
    int64_t open_until_ms; /* circuit open until (monotonic ms); 0: closed */
    int64_t probe_ms;      /* when the half-open probe was let through; 0: none */
    /* the active checker's own (the control thread only) */
    unsigned streak_ok, streak_bad;
    int64_t next_check_ms;
    int checking;
    int checked; /* the current configuration health-checks it */
    struct pc_health_s *next;
} pc_health_t;

/* The record of a server (created on first use; thread-safe). NULL when out
 * of memory. */
pc_health_t *pc_health_get(const char *upstream, const char *server);
/* Every record, in creation order (for /metrics and /admin/status). */
pc_health_t *pc_health_all(void);
void pc_health_free_all(void);

typedef enum {
    PC_HEALTH_USE = 0,
    PC_HEALTH_PROBE,
    PC_HEALTH_DOWN,
    PC_HEALTH_OPEN
} pc_health_pick_e;

/* May a request go to this server now? PROBE: yes, as the half-open probe;
 * DOWN: the active check says no; OPEN: the circuit is open. probe_after:
 * how long a probe may stay unanswered before another one is allowed.
 * now_ms < 0: read the clock only if the circuit is not closed (the common
 * case costs two loads). */
pc_health_pick_e pc_health_pick(pc_health_t *h, int64_t now_ms, int64_t probe_after_ms);

/* A request's outcome. failures == 0: no circuit breaker. */
void pc_health_success(pc_health_t *h);
void pc_health_failure(pc_health_t *h, int64_t now_ms, unsigned failures, int64_t cooldown_ms);

/* Is the server usable as far as the checks and the circuit go? */
int pc_health_up(const pc_health_t *h, int64_t now_ms);

/* The active checker reports one probe; returns 1 when the verdict changed. */
int pc_health_check_result(pc_health_t *h, int ok, unsigned healthy_after,
                           unsigned unhealthy_after);

/* A configuration takes effect (control thread): servers it does not
 * health-check are healthy, and servers without a circuit breaker have
 * their circuit closed, whatever an earlier configuration decided. */
void pc_health_apply(const struct pc_config_s *cfg);

/* Monotonic milliseconds (any thread). */
int64_t pc_mono_ms(void);

/* The status code of a health check's answer s[0, n) that starts
 * "HTTP/1.x NNN" (only its first 12 bytes are read), or -1. */
int pc_health_status_code(const char *s, size_t n);

#endif
