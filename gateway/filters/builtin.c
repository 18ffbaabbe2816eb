/*
 * builtin.c — see builtin.h.
 */
#include "builtin.h"

#include "../jwt.h"
#include "../plugin.h"
#include "../ratelimit.h"
#include "cors.h"
#include "test.h"
#include "waf.h"

/* Room for every built-in filter a route can have (cors, jwt, ratelimit, the test filter)
 * and one per plugin: raise it with each new built-in. */
#define BUILTIN_MAX 8

int pc_builtin_chain(pc_cctx_t *c, pc_route_conf_t *r)
{
    pc_filter_t *f = pc_arena_calloc(c->pool, (BUILTIN_MAX + r->n_plugins) * sizeof(*f));
    size_t n = 0;
    if (!f)
        return -1;
    if (r->cors_policy)
        f[n++] = (pc_filter_t){&pc_cors_filter_ops, r->cors_policy}; /* preflights need no token */
    if (r->auth && r->auth->provider)
        f[n++] = (pc_filter_t){&pc_jwt_filter_ops, r->auth};
    if (r->n_rate_limits) /* after jwt: claim keys need the verified token */
        f[n++] = (pc_filter_t){&pc_rl_filter_ops, r};
    if (r->waf) /* after the cheaper controls: a refused request costs no inspection */
        f[n++] = (pc_filter_t){&pc_waf_filter_ops, r->waf};
#ifdef PC_TESTING
    if (r->test_suspend || r->test_respond)
        f[n++] = (pc_filter_t){&pc_test_filter_ops, r};
#endif
    /* plugins after the built-in controls, in the order the route lists them */
    for (size_t i = 0; r->plugin_refs && i < r->n_plugins; i++)
        if (r->plugin_refs[i])
            f[n++] = (pc_filter_t){&r->plugin_refs[i]->ops, r->plugin_refs[i]};
    r->chain.filters = f;
    r->chain.n = n;
    return 0;
}
