/*
 * jwks.h — remote key sets: one source per jwks_url, shared by every
 * configuration snapshot that names it and kept across reloads, fetched by
 * the control thread over HTTP or HTTPS (verified against the system's CAs
 * or jwks_ca, host name checked), never on the request path.
 *
 * Schedule: the first fetch at once; then every jwks_refresh after a
 * success; after a failure, retries with a backoff from 1 s doubling to
 * 30 s while no key set was ever loaded, else every 30 s up to
 * jwks_refresh. A worker that meets an unknown kid asks for a fetch now,
 * granted at most once a minute. A fetch that fails or returns no usable
 * key keeps the last good set.
 *
 * Threads: workers take a reference on the current set under the source's
 * lock (only on a token cache miss) and read its generation with an atomic
 * load; everything else belongs to the control thread.
 */
#ifndef PC_JWKS_H
#define PC_JWKS_H

#include <stdint.h>

#include "jose.h"

typedef struct pc_jwks_src_s pc_jwks_src_t;
struct event_base;
struct pc_config_s;

/* 0 when url parses as an http(s) URL with a host. */
int pc_jwks_url_check(const char *url);

/* The source for (url, ca), created on first use. NULL when out of memory. */
pc_jwks_src_t *pc_jwks_src_get(const char *url, const char *ca);

/* The current key set (a reference, release with pc_keyset_unref) and its
 * generation; NULL when no set was ever loaded. */
pc_keyset_t *pc_jwks_src_keys(pc_jwks_src_t *s, uint64_t *gen);
uint64_t pc_jwks_src_generation(pc_jwks_src_t *s);

/* A token named a kid the current set lacks. */
void pc_jwks_src_unknown_kid(pc_jwks_src_t *s);

/* Control thread, every tick: starts the fetches cfg's sources are due. */
void pc_jwks_tick(struct event_base *base, const struct pc_config_s *cfg);
/* Control thread, at its end: cancels fetches in flight. */
void pc_jwks_stop(void);
/* A source's figures for /admin/status (control thread). */
typedef struct pc_jwks_stats_s {
    const char *url;
    size_t keys;
    uint64_t generation, fetches, failures;
    const char *last_error; /* NULL after a success */
} pc_jwks_stats_t;
void pc_jwks_src_stats(pc_jwks_src_t *s, pc_jwks_stats_t *out);
/* At exit: frees every source. */
void pc_jwks_free_all(void);

#endif
