/*
 * router.h — picks the route of a request: the first route whose match
 * (host, exact path or path prefix, methods) accepts it.
 */
#ifndef PC_ROUTER_H
#define PC_ROUTER_H

#include "config.h"
#include "request.h"

/* Matching uses the normalised path without segment parameters
 * (r->route_path), the Host without its port or a trailing dot, compared
 * case-insensitively ("*.example.com" matches any subdomain, not
 * example.com itself), and the method. NULL when nothing matches. */
const pc_route_conf_t *pc_route_match(const pc_config_t *cfg, const pc_req_t *r);

/* The host part of a Host value: no port, no trailing dot (IPv6 brackets
 * kept as written). */
pc_str_t pc_route_host_part(pc_str_t host);

#endif
