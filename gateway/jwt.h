/*
 * jwt.h — JWT authentication: providers (configuration), the `auth` filter
 * of a route, the verified-token cache, key sources and the revocation list.
 *
 * Where keys come from:
 *   jwks_file / secret   parsed with the configuration (so `-t` and a
 *                        reload see every problem); immutable with the
 *                        snapshot; SIGHUP re-reads the file.
 *   jwks_url             a key source (jwks.c) shared by every snapshot
 *                        that names the same URL, so a reload keeps the
 *                        keys it has; fetched by the control thread every
 *                        jwks_refresh, and at once (at most once a minute)
 *                        when a token names a kid the set lacks. A failed
 *                        fetch keeps the last good set.
 *
 * On the request path nothing blocks and nothing is parsed twice: a token
 * seen before (same bytes, same provider, same key generation, within
 * cache_ttl and its own exp) costs a hash lookup in this worker's cache;
 * otherwise its signature is checked with the cached OpenSSL keys
 * (jose.c) and its claims checked; a cache entry never outlives the
 * token's exp + leeway, so a hit needs neither again. The revocation list
 * is consulted whenever it changed since the entry was found clean.
 */
#ifndef PC_JWT_H
#define PC_JWT_H

#include <stdint.h>

#include "config_int.h"
#include "filter.h"
#include "http1.h"

/* ---- configuration (called by config_schema.c) ---- */

/* The schema's check of one jwt.providers entry: key sources, algorithms,
 * forwarded header names; loads jwks_file / secret. */
void pc_jwt_check_provider(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
/* After the providers: the union of forward_claims headers. */
void pc_jwt_finish(pc_cctx_t *c);
/* Resolves a route's auth.jwt (reports unknown names). */
void pc_jwt_resolve_route(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn);
/* Releases what providers hold (with the snapshot). */
void pc_jwt_release(pc_config_t *cfg);

extern const pc_filter_ops_t pc_jwt_filter_ops;

/* A claim of the request's verified token as text (in r's arena): strings
 * as they are, numbers and booleans written out, arrays and objects as
 * compact JSON. NULL when there is no verified token or no such claim. */
const char *pc_jwt_claim_text(pc_req_t *r, const char *name);

/* The token of the one Authorization field of h[0, n) when it reads
 * "Bearer" (any case), a space, then optional spaces and the token (a slice
 * of the field); else an empty slice, with *why set to the reason. */
pc_str_t pc_jwt_bearer(const pc_http_header_t *h, uint32_t n, const char **why);

/* ---- runtime ---- */

/* Binds each jwks_url provider to its shared key source (main thread,
 * before the snapshot is published). 0, or -1 when out of memory. */
int pc_jwt_bind(pc_config_t *cfg);
/* At exit: frees the key sources and the revocation list. */
void pc_jwt_free_all(void);
/* A worker thread's end: frees its token cache. */
void pc_jwt_thread_done(void);

/* ---- revocation (in process; mirrored to Redis when configured) ---- */

#define PC_JTI_MAX 256
/* Adds jti until exp (unix seconds). 0, or -1 when the list is full or
 * out of memory. */
int pc_revoke_add(const char *jti, size_t n, int64_t exp);
/* 1 when jti is on the list (and not past its exp). */
int pc_revoke_has(const char *jti, size_t n);
/* Bumped by every change: a cached "not revoked" is good while it stays. */
uint64_t pc_revoke_generation(void);
/* Drops entries past their exp (control thread, now and then). */
void pc_revoke_expire(int64_t now);
size_t pc_revoke_count(void);

#endif
