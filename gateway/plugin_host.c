/*
 * plugin_host.c — the functions plugins call (portcullis_host_t) and the
 * plugin counters behind portcullis_plugin_events_total.
 *
 * Every request function first checks that its request is the one of the
 * plugin callback running on this thread (pc_plugin_current), so a plugin
 * that keeps a request handle past its callback, or uses it from a thread
 * of its own, gets a refusal instead of touching a request it does not own.
 */
#include "plugin.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "jwt.h"
#include "log.h"
#include "request.h"
#include "yaml.h"

#define HEADER_NAME_MAX  256
#define HEADER_VALUE_MAX 8192
#define IDENTITY_MAX     256
#define ERROR_CODE_MAX   48
#define EVENT_MAX        63
#define COUNTERS_MAX     256 /* (plugin, event) pairs over the life of the process */

/* ---- configuration nodes ---- */

static const pc_ynode_t *ynode(const portcullis_node_t *n)
{
    return (const pc_ynode_t *)n;
}

static int node_type(const portcullis_node_t *n)
{
    const pc_ynode_t *y = ynode(n);
    if (!y || pc_ynode_is_null(y))
        return PORTCULLIS_NODE_NULL;
    return y->type == PC_Y_MAP   ? PORTCULLIS_NODE_MAP
           : y->type == PC_Y_SEQ ? PORTCULLIS_NODE_SEQ
                                 : PORTCULLIS_NODE_SCALAR;
}

static const portcullis_node_t *node_get(const portcullis_node_t *map, const char *key)
{
    return key ? (const portcullis_node_t *)pc_ymap_get(ynode(map), key) : NULL;
}

static size_t node_len(const portcullis_node_t *n)
{
    return node_type(n) == PORTCULLIS_NODE_NULL ? 0 : ynode(n)->n;
}

static const portcullis_node_t *node_at(const portcullis_node_t *n, size_t i)
{
    const pc_ynode_t *y = ynode(n);
    if (!y || i >= y->n)
        return NULL;
    if (y->type == PC_Y_SEQ)
        return (const portcullis_node_t *)y->u.items[i];
    if (y->type == PC_Y_MAP)
        return (const portcullis_node_t *)y->u.pairs[i].value;
    return NULL;
}

static const char *node_key(const portcullis_node_t *map, size_t i)
{
    const pc_ynode_t *y = ynode(map);
    return y && y->type == PC_Y_MAP && i < y->n ? y->u.pairs[i].key : NULL;
}

static const char *node_str(const portcullis_node_t *n)
{
    return node_type(n) == PORTCULLIS_NODE_SCALAR ? ynode(n)->u.str : NULL;
}

static int node_line(const portcullis_node_t *n)
{
    return n ? ynode(n)->line : 0;
}

/* ---- the request ---- */

/* The running call when h is its request, else NULL. */
static pc_plugin_call_t *call_of(portcullis_req_t *h)
{
    pc_plugin_call_t *c = pc_plugin_current;
    return c && h && (portcullis_req_t *)c->r == h ? c : NULL;
}

static pc_req_t *req_of(portcullis_req_t *h)
{
    pc_plugin_call_t *c = call_of(h);
    return c ? c->r : NULL;
}

static const char *slice(pc_str_t s, size_t *len)
{
    if (len)
        *len = s.p ? s.n : 0;
    return s.p;
}

static const char *request_method(portcullis_req_t *h, size_t *len)
{
    pc_req_t *r = req_of(h);
    return r ? slice(r->http.method, len) : slice(PC_STR_NULL, len);
}

static const char *request_path(portcullis_req_t *h, size_t *len)
{
    pc_req_t *r = req_of(h);
    return r ? slice(r->path, len) : slice(PC_STR_NULL, len);
}

static const char *request_query(portcullis_req_t *h, size_t *len)
{
    pc_req_t *r = req_of(h);
    return r ? slice(r->http.query, len) : slice(PC_STR_NULL, len);
}

/* The nth field named name among h[0, n) that is still forwarded. */
static const char *find_field(pc_http_header_t *h, uint32_t n, const char *name, unsigned nth,
                              size_t *len)
{
    pc_str_t want = pc_str_cstr(name);
    for (uint32_t i = 0; name && i < n; i++) {
        if ((h[i].flags & PC_HDR_F_DROP) || !pc_str_ieq(h[i].name, want))
            continue;
        if (nth-- == 0)
            return slice(h[i].value, len);
    }
    return slice(PC_STR_NULL, len);
}

static const char *request_header(portcullis_req_t *h, const char *name, unsigned nth, size_t *len)
{
    pc_req_t *r = req_of(h);
    return r ? find_field(r->http.headers, r->http.nheaders, name, nth, len)
             : slice(PC_STR_NULL, len);
}

static const char *client_address(portcullis_req_t *h)
{
    pc_req_t *r = req_of(h);
    char *out = r ? pc_arena_alloc(&r->arena, 48) : NULL;
    if (out)
        out[pc_ip_format(r->client_ip, out)] = '\0';
    return out;
}

static const char *route_name(portcullis_req_t *h)
{
    pc_req_t *r = req_of(h);
    return r && r->route ? r->route->name : NULL;
}

static const char *request_id(portcullis_req_t *h)
{
    pc_req_t *r = req_of(h);
    return r ? pc_arena_strndup(&r->arena, r->id, r->id_len) : NULL;
}

static const char *jwt_claim(portcullis_req_t *h, const char *claim)
{
    pc_req_t *r = req_of(h);
    return r && claim ? pc_jwt_claim_text(r, claim) : NULL;
}

/* ---- changing headers ---- */

static int valid_field(const char *name, const char *value)
{
    if (!name || !value || !portcullis_is_token(name) || strlen(name) > HEADER_NAME_MAX)
        return 0; /* the same names plugins may check in their configuration */
    for (size_t n = 0; value[n]; n++) {
        unsigned char ch = (unsigned char)value[n];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f || n >= HEADER_VALUE_MAX)
            return 0;
    }
    return 1;
}

static int named(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (pc_str_ieq_c(pc_str_cstr(name), *list))
            return 1;
    return 0;
}

/* Fields the gateway writes itself, or that frame the message: a plugin's
 * copy would contradict the gateway's, or smuggle a second message. */
/* clang-format off */
static const char *const owned_request[] = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive",
    "proxy-connection", "te", "trailer", "upgrade", "expect", "proxy-authenticate",
    "proxy-authorization", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "x-request-id", "x-client-cert-subject", NULL};
static const char *const owned_response[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
    "te", "trailer", "upgrade", "date", "x-request-id", NULL};
/* clang-format on */
/* What a plugin may not remove: the message's framing. */
static const char *const framing[] = {"host", "content-length", "transfer-encoding", NULL};

static int request_header_add(portcullis_req_t *h, const char *name, const char *value)
{
    pc_plugin_call_t *c = call_of(h);
    if (!c || c->phase != PC_PHASE_REQUEST_HEADERS || !valid_field(name, value) ||
        named(name, owned_request))
        return -1;
    return pc_req_add_request_header(c->r, name, pc_str_cstr(value));
}

/* Marks the fields named name in h[0, n) as not forwarded; how many. */
static int drop_fields(pc_http_header_t *h, uint32_t n, const char *name)
{
    int dropped = 0;
    pc_str_t want = pc_str_cstr(name);
    for (uint32_t i = 0; i < n; i++) {
        if (!(h[i].flags & PC_HDR_F_DROP) && pc_str_ieq(h[i].name, want)) {
            h[i].flags |= PC_HDR_F_DROP;
            dropped++;
        }
    }
    return dropped;
}

static int request_header_remove(portcullis_req_t *h, const char *name)
{
    pc_plugin_call_t *c = call_of(h);
    if (!c || c->phase != PC_PHASE_REQUEST_HEADERS || !name || named(name, framing))
        return -1;
    return drop_fields(c->r->http.headers, c->r->http.nheaders, name);
}

static int response_status(portcullis_req_t *h)
{
    pc_plugin_call_t *c = call_of(h);
    return c && c->phase == PC_PHASE_RESPONSE_HEADERS ? c->r->resp.status : 0;
}

static const char *response_header(portcullis_req_t *h, const char *name, unsigned nth, size_t *len)
{
    pc_plugin_call_t *c = call_of(h);
    if (!c || c->phase != PC_PHASE_RESPONSE_HEADERS)
        return slice(PC_STR_NULL, len);
    return find_field(c->r->resp.headers, c->r->resp.nheaders, name, nth, len);
}

/* The phases that come before the response head is written. */
static int before_response(const pc_plugin_call_t *c)
{
    return c &&
           (c->phase == PC_PHASE_REQUEST_HEADERS || c->phase == PC_PHASE_REQUEST_BODY ||
            c->phase == PC_PHASE_RESPONSE_HEADERS) &&
           !c->r->response_started;
}

static int response_header_add(portcullis_req_t *h, const char *name, const char *value)
{
    pc_plugin_call_t *c = call_of(h);
    if (!before_response(c) || !valid_field(name, value) || named(name, owned_response))
        return -1;
    return pc_req_add_response_header(c->r, name, pc_str_cstr(value));
}

static int response_header_remove(portcullis_req_t *h, const char *name)
{
    pc_plugin_call_t *c = call_of(h);
    if (!c || c->phase != PC_PHASE_RESPONSE_HEADERS || !name || named(name, framing))
        return -1;
    return drop_fields(c->r->resp.headers, c->r->resp.nheaders, name);
}

static int respond(portcullis_req_t *h, int status, const char *error)
{
    static const int allowed[] = {400, 401, 403, 404, 413, 429, 500, 503};
    pc_plugin_call_t *c = call_of(h);
    if (!before_response(c) || c->responded || c->r->state == PC_RS_REPLY ||
        c->r->state == PC_RS_DONE)
        return -1;
    size_t n = 0;
    for (; error && error[n]; n++) {
        char ch = error[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') ||
            n >= ERROR_CODE_MAX)
            return -1;
    }
    if (error && n == 0)
        return -1;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (allowed[i] != status)
            continue;
        pc_req_t *r = c->r;
        /* the access log's detail: which plugin, and its error code */
        size_t dl = strlen(c->p->subsys) + (error ? n + 2 : 0) + 1;
        char *detail = pc_arena_alloc(&r->arena, dl);
        if (detail)
            snprintf(detail, dl, "%s%s%s", c->p->subsys, error ? ": " : "", error ? error : "");
        pc_req_respond_as(r, pc_reply_for_status(status, PC_REPLY_forbidden), error,
                          detail ? detail : c->p->subsys);
        r->blocked_by = NULL; /* plugins are not among the fixed block reasons */
        c->responded = 1;
        return 0;
    }
    return -1;
}

static int set_identity(portcullis_req_t *h, const char *identity)
{
    pc_req_t *r = req_of(h);
    size_t n = identity ? strnlen(identity, IDENTITY_MAX + 1) : 0;
    if (!r || n == 0 || n > IDENTITY_MAX)
        return -1;
    const char *copy = pc_arena_strndup(&r->arena, identity, n);
    if (!copy)
        return -1;
    r->user = copy;
    return 0;
}

/* ---- logging ---- */

static const pc_plugin_t *plugin_of(const portcullis_host_t *host)
{
    return host ? host->gateway_private : NULL;
}

static void plugin_log(const portcullis_host_t *host, portcullis_req_t *h, int level,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void plugin_log(const portcullis_host_t *host, portcullis_req_t *h, int level,
                       const char *fmt, ...)
{
    const pc_plugin_t *p = plugin_of(host);
    pc_req_t *r = req_of(h);
    if (!p || !fmt)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pc_log_level_e lv = level <= PORTCULLIS_LOG_DEBUG  ? PC_LOG_DEBUG
                        : level == PORTCULLIS_LOG_INFO ? PC_LOG_INFO
                        : level == PORTCULLIS_LOG_WARN ? PC_LOG_WARN
                                                       : PC_LOG_ERROR;
    if (r)
        pc_log(lv, p->subsys, "%s (request %.*s)", msg, (int)r->id_len, r->id);
    else
        pc_log(lv, p->subsys, "%s", msg);
}

/* ---- counters ---- */

struct portcullis_counter {
    char plugin[72];
    char event[EVENT_MAX + 1];
    uint64_t value; /* atomic */
};

static struct portcullis_counter counters[COUNTERS_MAX];
static size_t ncounters; /* entries in use: registration and scrapes take the lock */
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

static portcullis_counter_t *counter(const portcullis_host_t *host, const char *event)
{
    const pc_plugin_t *p = plugin_of(host);
    size_t n = 0;
    for (; event && event[n]; n++) {
        char ch = event[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') || n >= EVENT_MAX)
            return NULL;
    }
    if (!p || n == 0)
        return NULL;
    const char *name = p->ops.name;
    portcullis_counter_t *found = NULL;
    pthread_mutex_lock(&counters_lock);
    for (size_t i = 0; i < ncounters && !found; i++)
        if (strcmp(counters[i].plugin, name) == 0 && strcmp(counters[i].event, event) == 0)
            found = &counters[i];
    if (!found && ncounters < COUNTERS_MAX) {
        found = &counters[ncounters++];
        snprintf(found->plugin, sizeof(found->plugin), "%s", name);
        snprintf(found->event, sizeof(found->event), "%s", event);
    }
    pthread_mutex_unlock(&counters_lock);
    if (!found)
        pc_log(PC_LOG_WARN, p->subsys, "counter '%s' refused: %d plugin counters in use", event,
               COUNTERS_MAX);
    return found;
}

static void count(portcullis_counter_t *c, unsigned long long n)
{
    if (c)
        __atomic_add_fetch(&c->value, (uint64_t)n, __ATOMIC_RELAXED);
}

void pc_plugin_metrics(struct evbuffer *b)
{
    evbuffer_add_printf(b, "# HELP portcullis_plugin_events_total Events counted by plugins, by "
                           "plugin and event.\n# TYPE portcullis_plugin_events_total counter\n");
    pthread_mutex_lock(&counters_lock);
    /* names are [A-Za-z0-9_.-] and events [a-z0-9_]: nothing to escape */
    for (size_t i = 0; i < ncounters; i++)
        evbuffer_add_printf(
            b, "portcullis_plugin_events_total{plugin=\"%s\",event=\"%s\"} %llu\n",
            counters[i].plugin, counters[i].event,
            (unsigned long long)__atomic_load_n(&counters[i].value, __ATOMIC_RELAXED));
    pthread_mutex_unlock(&counters_lock);
}

/* ---- the table ---- */

static const portcullis_host_t host_template = {
    .abi = PORTCULLIS_PLUGIN_ABI,
    .size = sizeof(portcullis_host_t),
    .node_type = node_type,
    .node_get = node_get,
    .node_len = node_len,
    .node_at = node_at,
    .node_key = node_key,
    .node_str = node_str,
    .node_line = node_line,
    .request_method = request_method,
    .request_path = request_path,
    .request_query = request_query,
    .request_header = request_header,
    .client_address = client_address,
    .route_name = route_name,
    .request_id = request_id,
    .jwt_claim = jwt_claim,
    .request_header_add = request_header_add,
    .request_header_remove = request_header_remove,
    .response_status = response_status,
    .response_header = response_header,
    .response_header_add = response_header_add,
    .response_header_remove = response_header_remove,
    .respond = respond,
    .set_identity = set_identity,
    .log = plugin_log,
    .counter = counter,
    .count = count,
};

void pc_plugin_host_init(pc_plugin_t *p)
{
    p->host = host_template;
    p->host.plugin_name = p->ops.name;
    p->host.gateway_private = p;
}
