/*
 * test.c — the test-build filter (see test.h). Route keys: test_suspend
 * (duration; 0: do not suspend) and test_respond (status; 0: continue).
 */
#ifdef PC_TESTING
#include "test.h"

#include <event2/event.h>

#include "../config.h"
#include "../request.h"

typedef struct {
    struct event timer;
    unsigned armed : 1;
} test_state_t;

static pc_filter_rc_e verdict(pc_req_t *r, const pc_route_conf_t *rt)
{
    if (!rt->test_respond)
        return PC_FILTER_CONTINUE;
    pc_req_respond(r, rt->test_respond == 403 ? PC_REPLY_forbidden : PC_REPLY_service_unavailable,
                   "test filter");
    return PC_FILTER_RESPOND;
}

static void fire(evutil_socket_t fd, short what, void *arg)
{
    pc_req_t *r = arg;
    (void)fd;
    (void)what;
    pc_req_resume(r, verdict(r, r->route));
}

static pc_filter_rc_e on_headers(pc_req_t *r, const void *conf, void *state)
{
    const pc_route_conf_t *rt = conf;
    test_state_t *st = state;
    if (!rt->test_suspend)
        return verdict(r, rt);
    evtimer_assign(&st->timer, pc_req_base(r), fire, r);
    struct timeval tv = {(time_t)(rt->test_suspend / 1000),
                         (suseconds_t)(rt->test_suspend % 1000) * 1000};
    evtimer_add(&st->timer, &tv);
    st->armed = 1;
    return PC_FILTER_SUSPEND;
}

static void on_cancel(pc_req_t *r, const void *conf, void *state)
{
    test_state_t *st = state;
    (void)r;
    (void)conf;
    if (st->armed)
        evtimer_del(&st->timer);
    st->armed = 0;
}

const pc_filter_ops_t pc_test_filter_ops = {
    .name = "test",
    .state_size = sizeof(test_state_t),
    .request_headers = on_headers,
    .cancel = on_cancel,
};
#else
typedef int pc_test_filter_unused_t; /* ISO C wants a declaration in every file */
#endif
