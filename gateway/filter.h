/*
 * filter.h — the filter interface: the unit of policy (types only).
 *
 * Each built-in control (ip rules, cors, limits, jwt, ratelimit, waf,
 * security headers) and each plugin is a pc_filter_ops_t: a name and phase
 * callbacks. Its configuration object is parsed once per config snapshot and
 * is read-only afterwards; anything per request lives in `state`, which the
 * request allocates (zeroed, state_size bytes) from its arena.
 *
 * Return convention of the phase callbacks:
 *   PC_FILTER_CONTINUE  go on to the next filter;
 *   PC_FILTER_RESPOND   the filter called pc_req_respond() and the request
 *                       is answered locally; later filters do not run;
 *   PC_FILTER_SUSPEND   the filter started something asynchronous and will
 *                       call pc_req_resume(r, rc) exactly once, later, from
 *                       the same worker's event loop, with rc CONTINUE,
 *                       RESPOND or ERROR. Until then the request is owned by
 *                       the filter: it is not freed even if the client goes;
 *   PC_FILTER_ERROR     internal failure: 500.
 * Filters never touch sockets.
 */
#ifndef PC_FILTER_H
#define PC_FILTER_H

#include <stddef.h>

#include "pc_types.h"

typedef enum {
    PC_FILTER_CONTINUE = 0,
    PC_FILTER_RESPOND,
    PC_FILTER_SUSPEND,
    PC_FILTER_ERROR
} pc_filter_rc_e;

typedef struct pc_filter_ops_s {
    const char *name;
    size_t state_size;
    /* The request head is parsed and routed; no body byte has been read. */
    pc_filter_rc_e (*request_headers)(pc_req_t *r, const void *conf, void *state);
    /* A piece of the request body as it streams, before it is forwarded
     * (last = 1 on the final call, possibly with len 0). May RESPOND (the
     * upstream request is then aborted, never completed); may not suspend. */
    pc_filter_rc_e (*request_body)(pc_req_t *r, const void *conf, void *state, const char *data,
                                   size_t len, int last);
    /* The upstream's response head is parsed, nothing sent to the client yet.
     * May add or drop response headers; may not suspend. */
    pc_filter_rc_e (*response_headers)(pc_req_t *r, const void *conf, void *state);
    /* The request is over (answered, failed or abandoned) and logged:
     * release what state holds. */
    void (*log)(pc_req_t *r, const void *conf, void *state);
    /* Required of a filter that may SUSPEND: the request is torn down while
     * this filter holds it (the worker stops after shutdown_timeout). Stop
     * what was started, synchronously; pc_req_resume must not be called. */
    void (*cancel)(pc_req_t *r, const void *conf, void *state);
} pc_filter_ops_t;

typedef struct pc_filter_s {
    const pc_filter_ops_t *ops;
    const void *conf;
} pc_filter_t;

/* A route's filters, in the order they run. */
typedef struct pc_chain_s {
    const pc_filter_t *filters;
    size_t n;
} pc_chain_t;

#endif
