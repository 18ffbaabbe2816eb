/*
 * cors.h — the CORS filter: answers preflights itself (204, or 403 for a
 * disallowed origin, method or header) and adds the Access-Control-* fields
 * to the responses of allowed origins. Its configuration is a named policy
 * (pc_cors_conf_t). docs/configuration.md describes the rules.
 */
#ifndef PC_FILTERS_CORS_H
#define PC_FILTERS_CORS_H

#include "../filter.h"

extern const pc_filter_ops_t pc_cors_filter_ops;

#endif
