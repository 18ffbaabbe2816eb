/*
 * connlimit.h — open connections per client address, shared by all workers
 * (limits.max_connections_per_ip). Exact: a striped hash table whose locks
 * are taken only when a connection is accepted or closed, never per request.
 */
#ifndef PC_CONNLIMIT_H
#define PC_CONNLIMIT_H

#include "cidr.h"

typedef struct pc_connlimit_s pc_connlimit_t;

pc_connlimit_t *pc_connlimit_new(void);
void pc_connlimit_free(pc_connlimit_t *t);

/* Counts a new connection from ip: 0, or -1 (not counted) when ip already
 * has max open connections or memory is short. */
int pc_connlimit_acquire(pc_connlimit_t *t, pc_ip_t ip, unsigned max);

/* Uncounts a connection counted by pc_connlimit_acquire. */
void pc_connlimit_release(pc_connlimit_t *t, pc_ip_t ip);

#endif
