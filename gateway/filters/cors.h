/*
 * cors.h — the CORS filter: answers preflights itself (204, or 403 for a
 * disallowed origin, method or header) and adds the Access-Control-* fields
 * to the responses of allowed origins. Its configuration is a named policy
 * (pc_cors_conf_t). docs/configuration.md describes the rules.
 */
#ifndef PC_FILTERS_CORS_H
#define PC_FILTERS_CORS_H

#include "../filter.h"
#include "../str.h"

extern const pc_filter_ops_t pc_cors_filter_ops;

/* Does the Origin value o match a configured origin pattern (exact, or with
 * a "*." subdomain wildcard after the scheme)? */
int pc_cors_origin_matches(pc_str_t o, const char *pattern);

#endif
