/*
 * waf.h — the `waf` filter: the rule engine on a route (see docs/rules.md).
 *
 * Phase 1 runs on the head; a body of a type the WAF parses is held until
 * complete (up to waf.body_inspect_limit; a multipart body up to the
 * route's max_body, its file contents not counted) and phase 2 runs on it
 * before the upstream sees a byte. Requests without such a body run phase 2
 * at once, before an upstream connection is made.
 */
#ifndef PC_FILTERS_WAF_H
#define PC_FILTERS_WAF_H

#include "../config_int.h"
#include "../filter.h"
#include "../waf_rules.h"

/* A route's exclusion: rules lo..hi, or one target of them (target.kind
 * set when has_target). */
typedef struct pc_waf_exclusion_s {
    uint32_t lo, hi;
    int has_target;
    pc_waf_var_t target;
} pc_waf_exclusion_t;

extern const pc_filter_ops_t pc_waf_filter_ops;

/* Loads the rule set when any route inspects (before the routes resolve). */
void pc_waf_finish(pc_cctx_t *c, const pc_ynode_t *root);
/* The route's waf settings in effect (r->waf), exclusions parsed. */
void pc_waf_resolve_route(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn);
/* Frees what the configuration's WAF owns. */
void pc_waf_release(pc_config_t *cfg);

#endif
