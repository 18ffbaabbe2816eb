/*
 * builtin.c — see builtin.h.
 */
#include "builtin.h"

#include "cors.h"
#include "test.h"

int pc_builtin_chain(pc_cctx_t *c, pc_route_conf_t *r)
{
    pc_filter_t *f = pc_arena_calloc(c->pool, 4 * sizeof(*f));
    size_t n = 0;
    if (!f)
        return -1;
    if (r->cors_policy)
        f[n++] = (pc_filter_t){&pc_cors_filter_ops, r->cors_policy};
#ifdef PC_TESTING
    if (r->test_suspend || r->test_respond)
        f[n++] = (pc_filter_t){&pc_test_filter_ops, r};
#endif
    r->chain.filters = f;
    r->chain.n = n;
    return 0;
}
