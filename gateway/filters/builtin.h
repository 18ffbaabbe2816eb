/*
 * builtin.h — assembles a route's filter chain from its configuration,
 * once per config snapshot, in the order the filters must run.
 */
#ifndef PC_FILTERS_BUILTIN_H
#define PC_FILTERS_BUILTIN_H

#include "../config_int.h"

/* Fills r->chain (allocated from the config pool). 0, or -1 when out of
 * memory. */
int pc_builtin_chain(pc_cctx_t *c, pc_route_conf_t *r);

#endif
