/*
 * router.c — see router.h. Routes are few (tens): a linear scan over
 * precomputed fields is faster than any index at that size.
 */
#include "router.h"

#include <string.h>

pc_str_t pc_route_host_part(pc_str_t host)
{
    if (host.n == 0)
        return host;
    if (host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', host.n);
        return rb ? pc_str_make(host.p, (size_t)(rb - host.p + 1)) : host;
    }
    const char *colon = memchr(host.p, ':', host.n);
    if (colon)
        host.n = (size_t)(colon - host.p);
    if (host.n > 1 && host.p[host.n - 1] == '.')
        host.n--; /* "example.com." is example.com, fully qualified */
    return host;
}

static int host_matches(const char *pattern, pc_str_t host)
{
    if (pattern[0] == '*') {
        /* "*.example.com" matches "a.example.com" but not "example.com" */
        size_t sl = strlen(pattern + 1); /* ".example.com" */
        return host.n > sl &&
               pc_str_ieq(pc_str_make(host.p + host.n - sl, sl), pc_str_make(pattern + 1, sl));
    }
    return pc_str_ieq_c(host, pattern);
}

static int method_matches(const pc_route_match_t *m, const pc_http_request_t *h)
{
    if (m->n_methods == 0)
        return 1;
    if (h->method_id != PC_M_OTHER)
        return (m->method_mask >> h->method_id) & 1;
    for (size_t i = 0; i < m->n_methods; i++)
        if (pc_str_eq(h->method, pc_str_cstr(m->methods[i])))
            return 1;
    return 0;
}

const pc_route_conf_t *pc_route_match(const pc_config_t *cfg, const pc_req_t *r)
{
    pc_str_t host = pc_route_host_part(r->http.host);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const pc_route_conf_t *rt = &cfg->routes[i];
        const pc_route_match_t *m = &rt->match;
        if (m->host && !host_matches(m->host, host))
            continue;
        if (m->path && !pc_str_eq(r->route_path, pc_str_cstr(m->path)))
            continue;
        if (m->path_prefix && !pc_str_has_prefix(r->route_path, pc_str_cstr(m->path_prefix)))
            continue;
        if (!method_matches(m, &r->http))
            continue;
        return rt;
    }
    return NULL;
}
