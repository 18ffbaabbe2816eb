/*
 * proxy.h — forwards a routed request to its upstream and relays the
 * response: connection choice and retries, head rewriting (hop-by-hop
 * fields, X-Forwarded-*, X-Request-Id, re-framing), both bodies streamed
 * with back-pressure, and the timeouts of that phase.
 */
#ifndef PC_PROXY_H
#define PC_PROXY_H

#include "request.h"

/* Starts proxying r (its filters have passed). */
void pc_proxy_start(pc_req_t *r);

/* Makes progress after an event on either side. */
void pc_proxy_run(pc_req_t *r);

/* Makes progress reading a held body (state PC_RS_BODY, pc_req_hold_body). */
void pc_proxy_hold_run(pc_req_t *r);

/* Detaches the upstream connection from r: pooled when reusable. */
void pc_proxy_detach(pc_req_t *r, int reusable);

#endif
