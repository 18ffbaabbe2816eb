/*
 * waf.c — see waf.h.
 */
#include "waf.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../request.h"
#include "../waf.h"
#include "../waf_body.h"
#include "../worker.h"

#ifndef PC_RULES_DIR
#define PC_RULES_DIR "rules"
#endif

#define MAX_EXCLUSIONS 32 /* per route; the transaction has room for ctl's too */

/* ---- configuration ---- */

static int route_inspects(const pc_ynode_t *rn, const pc_route_conf_t *r, int64_t global)
{
    const pc_ynode_t *wn = pc_ymap_get(rn, "waf");
    if (r->waf_set && pc_ymap_get(wn, "mode"))
        return r->waf_set->mode != PC_WAF_OFF;
    return global != PC_WAF_OFF;
}

void pc_waf_finish(pc_cctx_t *c, const pc_ynode_t *root)
{
    pc_config_t *cfg = c->cfg;
    pc_waf_conf_t *g = &cfg->waf;
    const pc_ynode_t *routes = pc_ymap_get(root, "routes");
    int needed = 0;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        needed |= route_inspects(pc_yseq_at(routes, i, NULL), &cfg->routes[i], g->mode);
    }
    if (!needed)
        return;
    const pc_ynode_t *wn = pc_ymap_get(root, "waf");
    const pc_ynode_t *list = pc_ymap_get(wn, "rules");
    static const char *const shipped[] = {PC_RULES_DIR "/*.conf"};
    const char *const *globs = g->n_rules ? g->rules : shipped;
    size_t nglobs = g->n_rules ? g->n_rules : 1;
    /* "Include" per glob, each checked here so a typo points at its line */
    size_t cap = 64, len = 0;
    for (size_t i = 0; i < nglobs; i++)
        cap += strlen(globs[i]) + 16;
    char *text = malloc(cap);
    if (!text) {
        pc_cfg_error(c, wn, "out of memory");
        return;
    }
    size_t mark = pc_cfg_push_key(c, "waf");
    pc_cfg_push_key(c, "rules");
    int good = 0;
    for (size_t i = 0; i < nglobs; i++) {
        const pc_ynode_t *at = pc_yseq_at(list, i, wn);
        size_t m2 = g->n_rules ? pc_cfg_push_index(c, i) : 0;
        glob_t gl;
        int rc = glob(globs[i], 0, NULL, &gl);
        if (rc != 0 || gl.gl_pathc == 0) {
            pc_cfg_error(c, at, "no rule file matches '%s'%s", globs[i],
                         g->n_rules ? "" : " (the shipped rule set; set waf.rules or waf.mode)");
        } else if (strpbrk(globs[i], "\"\r\n")) {
            pc_cfg_error(c, at, "a rule file name cannot contain quotes or line breaks");
        } else {
            /* the others are still loaded, so that -t reports their problems too */
            len += (size_t)snprintf(text + len, cap - len, "Include \"%s\"\n", globs[i]);
            good = 1;
        }
        if (rc == 0)
            globfree(&gl);
        if (g->n_rules)
            pc_cfg_pop(c, m2);
    }
    pc_cfg_pop(c, mark);
    if (good) {
        g->rs = calloc(1, sizeof(*g->rs));
        if (!g->rs)
            pc_cfg_error(c, wn, "out of memory");
        else
            pc_waf_load_text(g->rs, "waf.rules", text, len, c->errs);
    }
    free(text);
    /* responses are not inspected: say so rather than let such rules look active */
    size_t later = 0;
    const pc_waf_rule_t *first = NULL;
    for (size_t i = 0; g->rs && i < g->rs->n; i++)
        if (g->rs->rules[i]->phase >= 3 && !g->rs->rules[i]->marker) {
            first = first ? first : g->rs->rules[i];
            later++;
        }
    if (first)
        pc_errlist_warn(c->errs, first->file, first->line, NULL,
                        "%zu rule%s of phases 3-5 (rule %u here is the first) load but are not "
                        "evaluated: responses are not inspected",
                        later, later == 1 ? "" : "s", first->id);
}

static int any_rule(const pc_waf_ruleset_t *rs, uint32_t lo, uint32_t hi)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rules[i]->id >= lo && rs->rules[i]->id <= hi)
            return 1;
    return 0;
}

void pc_waf_resolve_route(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn)
{
    const pc_waf_conf_t *g = &c->cfg->waf;
    const pc_ynode_t *wn = pc_ymap_get(rn, "waf");
    pc_route_waf_t *w = r->waf_set;
    if (!route_inspects(rn, r, g->mode) || !g->rs)
        return;
    if (!w && !(w = pc_arena_calloc(c->pool, sizeof(*w)))) {
        pc_cfg_error(c, rn, "out of memory");
        return;
    }
    if (!pc_ymap_get(wn, "mode"))
        w->mode = g->mode;
    w->g = g;
    w->max_body = r->limits.max_body;
    size_t n = w->n_exclude_rules + w->n_exclude_targets;
    size_t mark = pc_cfg_push_key(c, "waf");
    if (n > MAX_EXCLUSIONS)
        pc_cfg_error(c, wn, "at most %d exclusions per route (rules and targets together)",
                     MAX_EXCLUSIONS);
    w->excl = pc_arena_calloc(c->pool, (n + 1) * sizeof(*w->excl));
    if (!w->excl || n > MAX_EXCLUSIONS) {
        pc_cfg_pop(c, mark);
        return;
    }
    const pc_ynode_t *list = pc_ymap_get(wn, "exclude_rules");
    size_t m2 = pc_cfg_push_key(c, "exclude_rules");
    for (size_t i = 0; i < w->n_exclude_rules; i++) {
        pc_waf_exclusion_t *x = &w->excl[w->nexcl];
        size_t m3 = pc_cfg_push_index(c, i);
        const char *s = w->exclude_rules[i];
        if (pc_waf_parse_ids(s, strlen(s), &x->lo, &x->hi) != 0) {
            pc_cfg_error(c, pc_yseq_at(list, i, wn),
                         "expected a rule id or a range (942100-942199)");
        } else {
            if (!any_rule(g->rs, x->lo, x->hi))
                pc_cfg_warn(c, pc_yseq_at(list, i, wn), "no rule of the rule set has id %s",
                            w->exclude_rules[i]);
            w->nexcl++;
        }
        pc_cfg_pop(c, m3);
    }
    pc_cfg_pop(c, m2);
    list = pc_ymap_get(wn, "exclude_targets");
    m2 = pc_cfg_push_key(c, "exclude_targets");
    for (size_t i = 0; i < w->n_exclude_targets; i++) {
        pc_waf_exclusion_t *x = &w->excl[w->nexcl];
        const char *s = w->exclude_targets[i], *target = s;
        char err[256];
        size_t m3 = pc_cfg_push_index(c, i);
        x->lo = 1;
        x->hi = UINT32_MAX;
        /* RULE_ID[-RULE_ID]: before the target when it starts with a digit */
        const char *colon = s[0] >= '0' && s[0] <= '9' ? strchr(s, ':') : NULL;
        if (colon)
            target = colon + 1;
        if ((s[0] >= '0' && s[0] <= '9') &&
            (!colon || pc_waf_parse_ids(s, (size_t)(colon - s), &x->lo, &x->hi) != 0)) {
            pc_cfg_error(c, pc_yseq_at(list, i, wn), "expected [RULE_ID[-RULE_ID]:]TARGET");
        } else if (pc_waf_parse_target(target, strlen(target), &x->target, err, sizeof(err)) != 0) {
            pc_cfg_error(c, pc_yseq_at(list, i, wn), "%s", err);
        } else {
            x->has_target = 1;
            if (colon && !any_rule(g->rs, x->lo, x->hi))
                pc_cfg_warn(c, pc_yseq_at(list, i, wn), "no rule of the rule set has id %.*s",
                            (int)(colon - s), s);
            w->nexcl++;
        }
        pc_cfg_pop(c, m3);
    }
    pc_cfg_pop(c, m2);
    pc_cfg_pop(c, mark);
    r->waf = w;
}

void pc_waf_release(pc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        pc_route_waf_t *w = cfg->routes[i].waf;
        for (size_t k = 0; w && k < w->nexcl; k++)
            if (w->excl[k].has_target)
                pc_waf_var_free(&w->excl[k].target);
    }
    if (cfg->waf.rs) {
        pc_waf_ruleset_free(cfg->waf.rs);
        free(cfg->waf.rs);
        cfg->waf.rs = NULL;
    }
}

/* ---- the filter ---- */

typedef struct {
    pc_arena_t arena; /* the transaction's: values, decoded bodies */
    pc_waf_tx_t tx;
    uint8_t kind;    /* pc_waf_body_e of a held body */
    uint8_t started; /* phase 1 ran */
    uint8_t done;    /* phase 2 ran (or the request was refused) */
} waf_state_t;

/* The request's log fields point at the transaction's hits. */
static void publish(pc_req_t *r, waf_state_t *st)
{
    r->waf_hits = st->tx.hits;
    r->nwaf_hits = st->tx.nhits;
}

/* Refuses the request (block), or flags it (detect mode, a dry-run route):
 * RESPOND when it was answered. */
static pc_filter_rc_e refuse(pc_req_t *r, const pc_route_waf_t *w, pc_reply_e reply,
                             const char *error, const char *detail)
{
    if (w->mode == PC_WAF_DETECT) {
        pc_req_flag(r, reply, "waf", detail);
        return PC_FILTER_CONTINUE;
    }
    return pc_req_block_as(r, reply, error, "waf", detail) ? PC_FILTER_RESPOND : PC_FILTER_CONTINUE;
}

/* A rule decided. */
static pc_filter_rc_e verdict(pc_req_t *r, const pc_route_waf_t *w, waf_state_t *st)
{
    st->done = 1;
    publish(r, st);
    if (st->tx.nomem) { /* not the rules' verdict */
        pc_req_respond(r, PC_REPLY_service_unavailable, "WAF out of memory");
        return PC_FILTER_RESPOND;
    }
    const char *detail = "WAF rule matched";
    for (unsigned i = 0; i < st->tx.nhits; i++)
        if (st->tx.hits[i].id == st->tx.decided_by && st->tx.hits[i].msg)
            detail = st->tx.hits[i].msg;
    /* the deciding rule's status when the gateway has a reply for it */
    return refuse(r, w, pc_reply_for_status(st->tx.status, PC_REPLY_forbidden), NULL, detail);
}

static pc_filter_rc_e phase2(pc_req_t *r, const pc_route_waf_t *w, waf_state_t *st)
{
    if (pc_waf_eval(w->g->rs, &st->tx, 2))
        return verdict(r, w, st);
    st->done = 1;
    publish(r, st);
    return PC_FILTER_CONTINUE;
}

static pc_filter_rc_e waf_headers(pc_req_t *r, const void *conf, void *state)
{
    const pc_route_waf_t *w = conf;
    const pc_waf_conf_t *g = w->g;
    const pc_http_request_t *h = &r->http;
    waf_state_t *st = state;
    pc_worker_t *wk = r->w;
    if (!wk->waf_ctx) {
        pc_op_ctx_t *ctx = calloc(1, sizeof(*ctx));
        if (!ctx || pc_op_ctx_init(ctx) != 0) {
            free(ctx);
            pc_req_respond(r, PC_REPLY_service_unavailable, "WAF out of memory");
            return PC_FILTER_RESPOND;
        }
        wk->waf_ctx = ctx;
    }
    int64_t most = g->body_inspect_limit > w->max_body ? g->body_inspect_limit : w->max_body;
    pc_arena_init(&st->arena, &wk->blocks, 0, (size_t)most * 3 + (1u << 20));
    pc_waf_tx_init(&st->tx, &st->arena, wk->waf_ctx);
    st->tx.timed = ++wk->waf_sample % PC_WAF_TIME_EVERY == 0;
    st->started = 1;
    for (size_t i = 0; i < w->nexcl; i++)
        (void)pc_waf_remove(&st->tx, w->excl[i].lo, w->excl[i].hi,
                            w->excl[i].has_target ? &w->excl[i].target : NULL);
    char ip[46];
    const char *remote = pc_req_client_ip_str(r, ip);
    if (remote == ip) /* the transaction keeps it */
        remote = pc_arena_strndup(&st->arena, ip, strlen(ip));
    int hrc =
        remote && pc_waf_tx_start(&st->tx, (int)g->paranoia_level, (int)g->anomaly_threshold) == 0
            ? pc_waf_collect_head(&st->tx, h, remote)
            : -1;
    if (hrc == PC_WAFB_TOO_MANY || hrc == PC_WAF_TOO_MANY_COOKIES) {
        int query = hrc == PC_WAFB_TOO_MANY;
        if (refuse(r, w, PC_REPLY_bad_request, query ? "invalid_query" : "invalid_cookie",
                   query ? "more query arguments than the WAF takes"
                         : "more cookies in one Cookie header than the WAF takes") ==
            PC_FILTER_RESPOND) {
            st->done = 1;
            return PC_FILTER_RESPOND;
        }
    } else if (hrc != 0) {
        pc_req_respond(r, PC_REPLY_service_unavailable, "WAF out of memory");
        return PC_FILTER_RESPOND;
    }
    if (pc_waf_eval(g->rs, &st->tx, 1))
        return verdict(r, w, st);
    int has_body = h->body == PC_BODY_CHUNKED || (h->body == PC_BODY_LENGTH && h->content_length);
    st->kind = has_body ? (uint8_t)pc_waf_body_kind(h) : PC_WAF_BODY_NONE;
    if (st->kind == PC_WAF_BODY_NONE)
        return phase2(r, w, st); /* before any upstream connection */
    pc_req_hold_body(r, st->kind == PC_WAF_BODY_MULTIPART ? w->max_body : g->body_inspect_limit,
                     g->on_body_over_limit == PC_WAF_OVER_REJECT && w->mode == PC_WAF_BLOCK, "waf",
                     "body over waf.body_inspect_limit");
    return PC_FILTER_CONTINUE;
}

static pc_filter_rc_e waf_body(pc_req_t *r, const void *conf, void *state, const char *data,
                               size_t len, int last)
{
    const pc_route_waf_t *w = conf;
    waf_state_t *st = state;
    if (!st->started || st->done)
        return PC_FILTER_CONTINUE;
    if (r->hold_overflow) /* over the limit and let through: the body is not inspected */
        return phase2(r, w, st);
    if (!last)
        return PC_FILTER_CONTINUE;
    int rc = pc_waf_collect_body(&st->tx, &r->http, st->kind, data, len);
    if (rc == PC_WAFB_NOMEM) {
        pc_req_respond(r, PC_REPLY_service_unavailable, "WAF out of memory");
        return PC_FILTER_RESPOND;
    }
    if (rc != PC_WAFB_OK) {
        const char *why = rc == PC_WAFB_TOO_MANY ? "more arguments in the body than the WAF takes"
                          : rc == PC_WAFB_TOO_DEEP
                              ? "JSON body nested deeper than the WAF takes"
                              : "request body does not parse as its Content-Type";
        if (refuse(r, w, PC_REPLY_bad_request, "invalid_body", why) == PC_FILTER_RESPOND) {
            st->done = 1;
            publish(r, st);
            return PC_FILTER_RESPOND;
        }
    }
    return phase2(r, w, st);
}

/* The logs have read the transaction's hits: its memory can go. */
static void waf_log(pc_req_t *r, const void *conf, void *state)
{
    waf_state_t *st = state;
    (void)r;
    (void)conf;
    if (st->started)
        pc_arena_free(&st->arena);
}

const pc_filter_ops_t pc_waf_filter_ops = {
    .name = "waf",
    .state_size = sizeof(waf_state_t),
    .request_headers = waf_headers,
    .request_body = waf_body,
    .log = waf_log,
};
