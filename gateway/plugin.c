/*
 * plugin.c — see plugin.h: loading plugins with a configuration, releasing
 * them with it, and the filter adapter that runs them in a route's chain.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"
#include "log.h"
#include "request.h"

#define NAME_MAX_LEN 64
#define STATE_MAX    (64 * 1024) /* a plugin's per-request state (the arena holds 1 MiB) */
#define STATE_HDR    16          /* the adapter's part of the state, before the plugin's */

__thread pc_plugin_call_t *pc_plugin_current;

/* The adapter's per-request record, at the start of the filter state. */
typedef struct {
    /* request_body has seen last = 1: a request retried on another upstream
     * connection (only ever one without a body) replays the final call,
     * which the plugin must not see twice */
    unsigned body_done : 1;
} adapter_state_t;

_Static_assert(sizeof(adapter_state_t) <= STATE_HDR, "the adapter state must fit its header");

/* ---- the adapter ---- */

static void *plugin_state(void *state, const pc_plugin_t *p)
{
    return p->desc->state_size ? (char *)state + STATE_HDR : NULL;
}

/* Turns what a plugin returned into the filter interface's code. A reply
 * the plugin made stands whatever it returned; RESPOND without a reply, and
 * codes ABI 1 does not define, are internal errors (500). */
static pc_filter_rc_e outcome(const pc_plugin_call_t *call, int rc)
{
    const pc_plugin_t *p = call->p;
    if (call->responded)
        return PC_FILTER_RESPOND;
    switch (rc) {
    case PORTCULLIS_CONTINUE:
        return PC_FILTER_CONTINUE;
    case PORTCULLIS_ERROR:
        return PC_FILTER_ERROR;
    case PORTCULLIS_RESPOND:
        pc_log(PC_LOG_ERROR, p->subsys, "returned RESPOND without a reply (respond() not called)");
        return PC_FILTER_ERROR;
    default:
        pc_log(PC_LOG_ERROR, p->subsys, "returned %d, which plugin ABI %d does not define", rc,
               PORTCULLIS_PLUGIN_ABI);
        return PC_FILTER_ERROR;
    }
}

static pc_filter_rc_e on_request_headers(pc_req_t *r, const void *conf, void *state)
{
    const pc_plugin_t *p = conf;
    pc_plugin_call_t call = {p, r, PC_PHASE_REQUEST_HEADERS, 0}, *saved = pc_plugin_current;
    pc_plugin_current = &call;
    int rc = (int)p->desc->request_headers((portcullis_req_t *)r, p->conf, plugin_state(state, p));
    pc_plugin_current = saved;
    return outcome(&call, rc);
}

static pc_filter_rc_e on_request_body(pc_req_t *r, const void *conf, void *state, const char *data,
                                      size_t len, int last)
{
    const pc_plugin_t *p = conf;
    adapter_state_t *a = state;
    if (a->body_done)
        return PC_FILTER_CONTINUE;
    a->body_done = last != 0;
    pc_plugin_call_t call = {p, r, PC_PHASE_REQUEST_BODY, 0}, *saved = pc_plugin_current;
    pc_plugin_current = &call;
    int rc = (int)p->desc->request_body((portcullis_req_t *)r, p->conf, plugin_state(state, p),
                                        data, len, last);
    pc_plugin_current = saved;
    return outcome(&call, rc);
}

static pc_filter_rc_e on_response_headers(pc_req_t *r, const void *conf, void *state)
{
    const pc_plugin_t *p = conf;
    pc_plugin_call_t call = {p, r, PC_PHASE_RESPONSE_HEADERS, 0}, *saved = pc_plugin_current;
    pc_plugin_current = &call;
    int rc = (int)p->desc->response_headers((portcullis_req_t *)r, p->conf, plugin_state(state, p));
    pc_plugin_current = saved;
    return outcome(&call, rc);
}

static void on_log(pc_req_t *r, const void *conf, void *state)
{
    const pc_plugin_t *p = conf;
    pc_plugin_call_t call = {p, r, PC_PHASE_LOG, 0}, *saved = pc_plugin_current;
    pc_plugin_current = &call;
    p->desc->log((portcullis_req_t *)r, p->conf, plugin_state(state, p));
    pc_plugin_current = saved;
}

/* ---- loading ---- */

static int valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-') ||
            n >= NAME_MAX_LEN)
            return 0;
    }
    return n > 0;
}

/* A copy of a config subtree with every scalar's ${env:}/${file:} expanded
 * (a failure is reported at its key path, and the scalar kept as written),
 * so that plugins read final values with plain accessors at any time. */
static pc_ynode_t *expand(pc_cctx_t *c, const pc_ynode_t *n)
{
    pc_ynode_t *o = pc_arena_alloc(c->pool, sizeof(*o));
    if (!o) {
        pc_cfg_error(c, n, "out of memory");
        return NULL;
    }
    *o = *n;
    if (n->type == PC_Y_SCALAR) {
        const char *v = pc_ynode_is_null(n) ? NULL : pc_cfg_scalar(c, n, "a value");
        if (v) {
            o->u.str = (char *)v;
            o->n = strlen(v);
        }
    } else if (n->type == PC_Y_MAP) {
        o->u.pairs = pc_arena_calloc(c->pool, (n->n ? n->n : 1) * sizeof(pc_ypair_t));
        for (size_t i = 0; o->u.pairs && i < n->n; i++) {
            size_t mark = pc_cfg_push_key(c, n->u.pairs[i].key);
            o->u.pairs[i] = n->u.pairs[i];
            o->u.pairs[i].value = expand(c, n->u.pairs[i].value);
            pc_cfg_pop(c, mark);
        }
    } else if (n->type == PC_Y_SEQ) {
        o->u.items = pc_arena_calloc(c->pool, (n->n ? n->n : 1) * sizeof(pc_ynode_t *));
        for (size_t i = 0; o->u.items && i < n->n; i++) {
            size_t mark = pc_cfg_push_index(c, i);
            o->u.items[i] = expand(c, n->u.items[i]);
            pc_cfg_pop(c, mark);
        }
    }
    if ((n->type == PC_Y_MAP && !o->u.pairs) || (n->type == PC_Y_SEQ && !o->u.items)) {
        pc_cfg_error(c, n, "out of memory");
        return NULL;
    }
    return o;
}

/* The index of the entry among the first upto that loaded a plugin called
 * name, or -1. */
static long find_loaded(const pc_config_t *cfg, const char *name, size_t upto)
{
    for (size_t i = 0; i < upto && i < cfg->n_plugins; i++)
        if (cfg->plugins[i].loaded && strcmp(cfg->plugins[i].loaded->ops.name, name) == 0)
            return (long)i;
    return -1;
}

/* Opens and checks the file of entry i; the descriptor, or NULL after
 * reporting why (nothing left open). */
static const portcullis_plugin_t *open_plugin(pc_cctx_t *c, const pc_plugin_conf_t *e, size_t i,
                                              const pc_ynode_t *at, void **dl)
{
    /* A bare file name would make dlopen search the library path: the file
     * is meant relative to the working directory, like every other path. */
    char path[4096];
    snprintf(path, sizeof(path), "%s%s", strchr(e->path, '/') ? "" : "./", e->path);
    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        const char *why = dlerror();
        pc_cfg_error(c, at, "cannot open: %s", why ? why : "unknown error");
        return NULL;
    }
    const portcullis_plugin_t *d = dlsym(*dl, PORTCULLIS_PLUGIN_SYMBOL);
    const char *problem = NULL;
    char msg[200];
    long k;
    if (!d) {
        problem = "no plugin descriptor: the file does not export '" PORTCULLIS_PLUGIN_SYMBOL "'";
    } else if (d->abi != PORTCULLIS_PLUGIN_ABI) {
        snprintf(msg, sizeof(msg),
                 "plugin ABI version %u, this gateway speaks %d (rebuild the plugin against its "
                 "portcullis/plugin.h)",
                 d->abi, PORTCULLIS_PLUGIN_ABI);
        problem = msg;
    } else if (!d->name || !valid_name(d->name)) {
        problem = "the plugin's name is not 1 to 64 of [A-Za-z0-9_.-]";
    } else if (d->state_size > STATE_MAX) {
        problem = "the plugin's state_size is over 64 KiB";
    } else if ((k = find_loaded(c->cfg, d->name, i)) >= 0) {
        snprintf(msg, sizeof(msg), "duplicate plugin name '%s' (plugins[%ld] has it)", d->name, k);
        problem = msg;
    }
    if (problem) {
        pc_cfg_error(c, at, "%s", problem);
        dlclose(*dl);
        *dl = NULL;
        return NULL;
    }
    return d;
}

/* Loads entry i: open, check, expand its config, init. */
static void load_one(pc_cctx_t *c, pc_plugin_conf_t *e, size_t i, const pc_ynode_t *item)
{
    const pc_ynode_t *path_node = pc_ymap_get(item, "path");
    size_t mark = pc_cfg_push_key(c, "path");
    void *dl;
    const portcullis_plugin_t *d = open_plugin(c, e, i, path_node ? path_node : item, &dl);
    pc_cfg_pop(c, mark);
    if (!d)
        return;
    pc_plugin_t *p = pc_arena_calloc(c->pool, sizeof(*p));
    const char *name = pc_arena_strndup(c->pool, d->name, strlen(d->name));
    if (!p || !name) {
        pc_cfg_error(c, item, "out of memory");
        dlclose(dl);
        return;
    }
    p->desc = d;
    p->dl = dl;
    snprintf(p->subsys, sizeof(p->subsys), "plugin:%s", name);
    p->ops.name = name;
    p->ops.state_size = STATE_HDR + d->state_size;
    p->ops.request_headers = d->request_headers ? on_request_headers : NULL;
    p->ops.request_body = d->request_body ? on_request_body : NULL;
    p->ops.response_headers = d->response_headers ? on_response_headers : NULL;
    p->ops.log = d->log ? on_log : NULL;
    pc_plugin_host_init(p);

    size_t before = pc_errlist_errors(c->errs);
    mark = pc_cfg_push_key(c, "config");
    const pc_ynode_t *config = e->config ? expand(c, e->config) : NULL;
    /* a config that is there but was refused (not a mapping) is reported */
    int refused = !e->config && !pc_ynode_is_null(pc_ymap_get(item, "config"));
    if (!refused && pc_errlist_errors(c->errs) == before) {
        char err[512] = "";
        void *conf = NULL;
        pc_plugin_call_t call = {p, NULL, PC_PHASE_INIT, 0}, *saved = pc_plugin_current;
        pc_plugin_current = &call;
        int rc = d->init
                     ? d->init(&p->host, (const portcullis_node_t *)config, &conf, err, sizeof(err))
                     : 0;
        pc_plugin_current = saved;
        err[sizeof(err) - 1] = '\0';
        if (rc == 0) {
            p->conf = conf;
            p->initialised = 1;
            e->loaded = p;
        } else {
            if (!e->config) { /* no config section: name the entry by its path */
                pc_cfg_pop(c, mark);
                mark = pc_cfg_push_key(c, "path");
            }
            pc_cfg_error(c,
                         e->config   ? e->config
                         : path_node ? path_node
                                     : item,
                         "init failed: %s", err[0] ? err : "(the plugin gave no reason)");
        }
    }
    pc_cfg_pop(c, mark);
    if (!e->loaded)
        dlclose(dl);
}

void pc_plugins_load(pc_cctx_t *c, const pc_ynode_t *root)
{
    pc_config_t *cfg = c->cfg;
    const pc_ynode_t *list = pc_ymap_get(root, "plugins");
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        pc_plugin_conf_t *e = &cfg->plugins[i];
        if (!e->path)
            continue; /* reported by the walk */
        const pc_ynode_t *item = pc_yseq_at(list, i, root);
        size_t mark = pc_cfg_push_key(c, "plugins");
        pc_cfg_push_index(c, i);
        load_one(c, e, i, item);
        pc_cfg_pop(c, mark);
    }
}

void pc_plugins_resolve(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn)
{
    const pc_config_t *cfg = c->cfg;
    if (!r->n_plugins)
        return;
    r->plugin_refs = pc_arena_calloc(c->pool, r->n_plugins * sizeof(*r->plugin_refs));
    if (!r->plugin_refs) {
        pc_cfg_error(c, rn, "out of memory");
        return;
    }
    /* An entry that failed to load is already an error; the names routes
     * give it would only repeat that. */
    int some_failed = 0;
    for (size_t k = 0; k < cfg->n_plugins; k++)
        some_failed |= !cfg->plugins[k].loaded;
    const pc_ynode_t *ln = pc_ymap_get(rn, "plugins");
    for (size_t i = 0; i < r->n_plugins; i++) {
        const char *name = r->plugins[i];
        if (!name)
            continue; /* reported by the walk */
        const pc_ynode_t *at = pc_yseq_at(ln, i, rn);
        size_t mark = pc_cfg_push_key(c, "plugins");
        pc_cfg_push_index(c, i);
        long at_k = find_loaded(cfg, name, cfg->n_plugins);
        const pc_plugin_t *p = at_k >= 0 ? cfg->plugins[at_k].loaded : NULL;
        int twice = 0;
        for (size_t k = 0; p && k < i; k++)
            twice |= r->plugin_refs[k] == p;
        if (twice) {
            pc_cfg_error(c, at, "plugin '%s' is listed twice", name);
        } else if (p) {
            r->plugin_refs[i] = (pc_plugin_t *)p;
        } else if (!cfg->n_plugins) {
            pc_cfg_error(c, at, "unknown plugin '%s' (there is no top-level plugins list)", name);
        } else if (!some_failed) {
            pc_suggest_t sg = PC_SUGGEST_INIT;
            for (size_t k = 0; k < cfg->n_plugins; k++)
                pc_suggest_offer(&sg, name, cfg->plugins[k].loaded->ops.name);
            const char *best = pc_suggest_best(&sg, 2);
            if (best)
                pc_cfg_error(c, at, "unknown plugin '%s' (did you mean '%s'?)", name, best);
            else
                pc_cfg_error(c, at, "unknown plugin '%s'", name);
        }
        pc_cfg_pop(c, mark);
    }
}

void pc_plugins_release(pc_config_t *cfg)
{
    for (size_t i = cfg->n_plugins; i-- > 0;) {
        pc_plugin_t *p = cfg->plugins[i].loaded;
        if (!p)
            continue;
        cfg->plugins[i].loaded = NULL;
        if (p->initialised && p->desc->fini) {
            pc_plugin_call_t call = {p, NULL, PC_PHASE_INIT, 0}, *saved = pc_plugin_current;
            pc_plugin_current = &call;
            p->desc->fini(p->conf);
            pc_plugin_current = saved;
        }
        dlclose(p->dl);
    }
}
