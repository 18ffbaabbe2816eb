/*
 * admin.c — see admin.h.
 */
#include "admin.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "jose.h"
#include "jwks.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "plugin.h"
#include "ratelimit.h"
#include "request.h"
#include "revoke_redis.h"
#include "rl_redis.h"
#include "server.h"
#include "version.h"
#include "waf_rules.h"
#include "worker.h"

#define TICK_MS       100
#define PROBE_HEAD    512 /* bytes of a health-check answer that are read */
#define ADMIN_TIMEOUT 10  /* seconds an admin client may take */

struct pc_admin_s {
    pc_server_t *srv;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *tick;
    pc_config_t *cfg; /* the control thread's current configuration */
    time_t started;
    struct probe_s *probes; /* health probes in flight */
    unsigned ticks;

    pthread_mutex_t lock; /* guards the three below */
    pc_config_t *pending;
    int pending_fd; /* -2: keep the current socket */
    int stop;
};

/* ---- helpers ---- */

int pc_admin_listen(const pc_sockaddr_t *addr)
{
    int fd = socket(addr->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, &addr->u.sa, addr->len) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A Prometheus label value or a JSON string body: \ " and newlines escaped,
 * other control bytes dropped. */
static void add_escaped(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\\' || ch == '"')
            evbuffer_add_printf(b, "\\%c", ch);
        else if (ch == '\n')
            evbuffer_add(b, "\\n", 2);
        else if (ch >= 0x20 && ch != 0x7f)
            evbuffer_add(b, s, 1);
    }
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

/* A body buffer, or NULL after answering 500 (out of memory). */
static struct evbuffer *new_body(struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        evhttp_send_error(req, 500, NULL);
    return b;
}

static void reply_json(struct evhttp_request *req, int code, const char *reason, const char *json)
{
    struct evbuffer *b = new_body(req);
    if (!b)
        return;
    evbuffer_add_printf(b, "%s\n", json);
    reply(req, code, reason, "application/json", b);
    evbuffer_free(b);
}

/* Bearer token check, in constant time whatever the lengths: the digests of
 * both sides are compared. */
static int authorized(const pc_admin_t *a, struct evhttp_request *req)
{
    const char *tok = a->cfg->admin ? a->cfg->admin->token : NULL;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!tok || !*tok || !h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    unsigned char x[SHA256_DIGEST_LENGTH], y[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)h + 7, strlen(h + 7), x);
    SHA256((const unsigned char *)tok, strlen(tok), y);
    return CRYPTO_memcmp(x, y, sizeof(x)) == 0;
}

/* Redis is configured and answering: the control thread's connection
 * (revocation list) and every worker's (rate limits) that has one. */
static int redis_ok(const pc_admin_t *a)
{
    if (!pc_revoke_redis_connected())
        return 0;
    for (unsigned w = 0; w < a->srv->nworkers; w++)
        if (__atomic_load_n(&a->srv->workers[w].redis_state, __ATOMIC_RELAXED) == PC_REDIS_DOWN)
            return 0;
    return 1;
}

/* ---- /metrics ---- */

static void help(struct evbuffer *b, const char *name, const char *type, const char *text)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void status_counters(struct evbuffer *b, const pc_admin_t *a, pc_names_e kind,
                            const char *metric, const char *label)
{
    const pc_server_t *s = a->srv;
    uint32_t n = pc_metrics_names_count(kind);
    for (uint32_t id = 0; id < n; id++) {
        const char *name = pc_metrics_name(kind, id);
        for (int st = 0; name && st < PC_STATUS_SLOTS; st++) {
            uint64_t v = 0;
            for (unsigned w = 0; w < s->nworkers; w++) {
                const uint64_t *arr = pc_metrics_status(&s->workers[w].metrics, kind, id);
                if (arr)
                    v += pc_ctr_get(&arr[st]);
            }
            if (!v)
                continue;
            evbuffer_add_printf(b, "%s{%s=\"", metric, label);
            add_escaped(b, name);
            evbuffer_add_printf(b, "\",status=\"%d\"} %llu\n", st + PC_STATUS_MIN,
                                (unsigned long long)v);
        }
    }
}

/* A per-reason counter array of the shards (at offset in pc_metrics_t),
 * every reason written, zeros too. */
static void by_reason(struct evbuffer *b, const pc_server_t *s, const char *metric, size_t offset)
{
    for (int r = 0; r < PC_BLOCK_COUNT; r++) {
        uint64_t v = 0;
        for (unsigned w = 0; w < s->nworkers; w++)
            v += pc_ctr_get((const uint64_t *)((const char *)&s->workers[w].metrics + offset) + r);
        evbuffer_add_printf(b, "%s{reason=\"%s\"} %llu\n", metric, pc_block_names[r],
                            (unsigned long long)v);
    }
}

static void metrics(pc_admin_t *a, struct evhttp_request *req)
{
    const pc_server_t *s = a->srv;
    struct evbuffer *b = new_body(req);
    if (!b)
        return;
    help(b, "portcullis_requests_total", "counter", "Requests answered, by route and status.");
    status_counters(b, a, PC_NAMES_ROUTE, "portcullis_requests_total", "route");

    help(b, "portcullis_blocked_total", "counter", "Requests refused by a control, by reason.");
    by_reason(b, s, "portcullis_blocked_total", offsetof(pc_metrics_t, blocked));
    help(b, "portcullis_dry_run_total", "counter",
         "Requests a control of a dry-run route would have refused, by reason.");
    by_reason(b, s, "portcullis_dry_run_total", offsetof(pc_metrics_t, dry_run));

    help(b, "portcullis_waf_rule_hits_total", "counter", "WAF rule matches, by rule id.");
    const pc_waf_ruleset_t *rs = a->cfg->waf.rs;
    for (size_t i = 0; rs && i < rs->n; i++) {
        const pc_waf_rule_t *r = rs->rules[i];
        if (r->id && !r->action_only)
            evbuffer_add_printf(b, "portcullis_waf_rule_hits_total{rule=\"%u\"} %llu\n", r->id,
                                (unsigned long long)pc_waf_stat_read(r->stat).hits);
    }

    help(b, "portcullis_request_duration_seconds", "histogram",
         "Time from a request's complete head to the end of its response.");
    uint64_t cum = 0, sum_us = 0, count = 0;
    for (int i = 0; i <= PC_HIST_BUCKETS; i++) {
        for (unsigned w = 0; w < s->nworkers; w++)
            cum += pc_ctr_get(&s->workers[w].metrics.latency[i]);
        if (i < PC_HIST_BUCKETS)
            evbuffer_add_printf(b, "portcullis_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                                pc_hist_bounds[i], (unsigned long long)cum);
    }
    for (unsigned w = 0; w < s->nworkers; w++) {
        sum_us += pc_ctr_get(&s->workers[w].metrics.latency_sum_us);
        count += pc_ctr_get(&s->workers[w].metrics.latency_count);
    }
    /* +Inf is the count, read last so that it is never below a bucket */
    if (count < cum)
        count = cum;
    evbuffer_add_printf(b, "portcullis_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                        (unsigned long long)count);
    evbuffer_add_printf(b, "portcullis_request_duration_seconds_sum %.6f\n", (double)sum_us / 1e6);
    evbuffer_add_printf(b, "portcullis_request_duration_seconds_count %llu\n",
                        (unsigned long long)count);

    help(b, "portcullis_upstream_requests_total", "counter",
         "Responses from upstreams (502/504: the gateway's, after a failure), by upstream and "
         "status.");
    status_counters(b, a, PC_NAMES_UPSTREAM, "portcullis_upstream_requests_total", "upstream");

    help(b, "portcullis_upstream_healthy", "gauge",
         "1 when the server passes its health check and its circuit is not open.");
    int64_t now = pc_mono_ms();
    for (size_t u = 0; u < a->cfg->n_upstreams; u++) {
        const pc_upstream_conf_t *uc = &a->cfg->upstreams[u];
        for (size_t i = 0; i < uc->n_servers; i++) {
            const pc_health_t *h = uc->servers[i].health;
            evbuffer_add(b, "portcullis_upstream_healthy{upstream=\"", 38);
            add_escaped(b, uc->name);
            evbuffer_add(b, "\",server=\"", 10);
            add_escaped(b, uc->servers[i].address);
            evbuffer_add_printf(b, "\"} %d\n", !h || pc_health_up(h, now));
        }
    }

    help(b, "portcullis_redis_errors_total", "counter",
         "Redis connections lost and commands that failed or timed out.");
    evbuffer_add_printf(b, "portcullis_redis_errors_total %llu\n",
                        (unsigned long long)(pc_revoke_redis_errors() + pc_rl_redis_errors()));

    help(b, "portcullis_connections_active", "gauge", "Open client connections.");
    evbuffer_add_printf(b, "portcullis_connections_active %ld\n",
                        __atomic_load_n(&s->connections, __ATOMIC_RELAXED));

    pc_plugin_metrics(b);

    help(b, "portcullis_config_generation", "gauge",
         "Generation of the configuration in effect (1 at start, +1 per successful reload).");
    evbuffer_add_printf(b, "portcullis_config_generation %llu\n",
                        (unsigned long long)a->cfg->generation);
    reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/* ---- /readyz, /admin/status ---- */

/* Does some server of uc pass its check with its circuit not open? */
static int upstream_up(const pc_upstream_conf_t *uc, int64_t now)
{
    for (size_t i = 0; i < uc->n_servers; i++)
        if (!uc->servers[i].health || pc_health_up(uc->servers[i].health, now))
            return 1;
    return 0;
}

static void readyz(pc_admin_t *a, struct evhttp_request *req)
{
    struct evbuffer *b = new_body(req);
    if (!b)
        return;
    int64_t now = pc_mono_ms();
    int down = 0;
    if (__atomic_load_n(&a->srv->stopping, __ATOMIC_RELAXED)) {
        reply_json(req, 503, "Service Unavailable",
                   "{\"status\":\"not_ready\",\"reasons\":[\"shutting down\"]}");
        evbuffer_free(b);
        return;
    }
    for (size_t u = 0; u < a->cfg->n_upstreams; u++) {
        const pc_upstream_conf_t *uc = &a->cfg->upstreams[u];
        int routed = 0;
        for (size_t r = 0; r < a->cfg->n_routes && !routed; r++)
            routed = a->cfg->routes[r].up == uc;
        if (!routed || upstream_up(uc, now))
            continue;
        evbuffer_add_printf(b, "%s\"upstream ", down ? "," : "");
        add_escaped(b, uc->name);
        evbuffer_add_printf(b, " has no healthy server\"");
        down++;
    }
    if (a->cfg->redis && !redis_ok(a)) {
        evbuffer_add_printf(b, "%s\"redis not connected\"", down ? "," : "");
        down++;
    }
    if (!down) {
        evbuffer_free(b);
        reply_json(req, 200, "OK", "{\"status\":\"ready\"}");
        return;
    }
    evbuffer_prepend(b, "{\"status\":\"not_ready\",\"reasons\":[", 33);
    evbuffer_add(b, "]}\n", 3);
    reply(req, 503, "Service Unavailable", "application/json", b);
    evbuffer_free(b);
}

/* "jwks": one object per JWT provider: its key source and how it fares. */
static void jwks_status(struct evbuffer *b, const pc_config_t *cfg)
{
    evbuffer_add(b, "[", 1);
    for (size_t i = 0; i < cfg->n_jwt_providers; i++) {
        const pc_jwt_provider_conf_t *p = &cfg->jwt_providers[i];
        evbuffer_add_printf(b, "%s{\"provider\":\"", i ? "," : "");
        add_escaped(b, p->name);
        if (!p->src) {
            evbuffer_add_printf(b, "\",\"source\":\"%s\",\"keys\":%zu}",
                                p->secret ? "secret" : "file", p->keys ? p->keys->n : 0);
            continue;
        }
        pc_jwks_stats_t st;
        pc_jwks_src_stats(p->src, &st);
        evbuffer_add(b, "\",\"source\":\"", 12);
        add_escaped(b, st.url);
        evbuffer_add_printf(b,
                            "\",\"keys\":%zu,\"generation\":%llu,\"fetches\":%llu,"
                            "\"failures\":%llu,\"last_error\":",
                            st.keys, (unsigned long long)st.generation,
                            (unsigned long long)st.fetches, (unsigned long long)st.failures);
        if (st.last_error) {
            evbuffer_add(b, "\"", 1);
            add_escaped(b, st.last_error);
            evbuffer_add(b, "\"}", 2);
        } else {
            evbuffer_add(b, "null}", 5);
        }
    }
    evbuffer_add(b, "]", 1);
}

/* GET /admin/waf/rules: per rule of the rule set in effect, its hits and
 * the time its evaluations take (measured on one request in
 * PC_WAF_TIME_EVERY, the total scaled up). */
static void waf_rules(pc_admin_t *a, struct evhttp_request *req)
{
    const pc_waf_ruleset_t *rs = a->cfg->waf.rs;
    struct evbuffer *b = new_body(req);
    if (!b)
        return;
    evbuffer_add_printf(b, "{\"loaded\":%s,\"sample_every\":%d,\"rules\":[", rs ? "true" : "false",
                        PC_WAF_TIME_EVERY);
    int first = 1;
    for (size_t i = 0; rs && i < rs->n; i++) {
        const pc_waf_rule_t *r = rs->rules[i];
        if (!r->id)
            continue;
        pc_waf_counts_t n = pc_waf_stat_read(r->stat);
        uint64_t hits = n.hits, evals = n.evals, ns = n.ns;
        evbuffer_add_printf(b,
                            "%s{\"id\":%u,\"phase\":%u,\"hits\":%llu,\"timed_evaluations\":%llu,"
                            "\"avg_ns\":%llu,\"time_us\":%llu,\"file\":\"",
                            first ? "" : ",", r->id, r->phase, (unsigned long long)hits,
                            (unsigned long long)evals, (unsigned long long)(evals ? ns / evals : 0),
                            (unsigned long long)(ns * PC_WAF_TIME_EVERY / 1000));
        add_escaped(b, r->file ? r->file : "");
        evbuffer_add_printf(b, "\",\"line\":%d,\"msg\":", r->line);
        if (r->msg) {
            evbuffer_add(b, "\"", 1);
            add_escaped(b, r->msg);
            evbuffer_add(b, "\"", 1);
        } else {
            evbuffer_add(b, "null", 4);
        }
        evbuffer_add(b, "}", 1);
        first = 0;
    }
    evbuffer_add(b, "]}\n", 3);
    reply(req, 200, "OK", "application/json", b);
    evbuffer_free(b);
}

static void status(pc_admin_t *a, struct evhttp_request *req)
{
    const pc_server_t *s = a->srv;
    struct evbuffer *b = new_body(req);
    if (!b)
        return;
    int64_t now = pc_mono_ms();
    evbuffer_add_printf(b,
                        "{\"version\":\"%s\",\"uptime_seconds\":%lld,\"config_generation\":%llu,"
                        "\"config_file\":\"",
                        PC_VERSION, (long long)(time(NULL) - a->started),
                        (unsigned long long)a->cfg->generation);
    add_escaped(b, a->cfg->file);
    evbuffer_add_printf(b, "\",\"workers\":%u,\"connections_active\":%ld,\"upstreams\":{",
                        s->nworkers, __atomic_load_n(&s->connections, __ATOMIC_RELAXED));
    for (size_t u = 0; u < a->cfg->n_upstreams; u++) {
        const pc_upstream_conf_t *uc = &a->cfg->upstreams[u];
        evbuffer_add_printf(b, "%s\"", u ? "," : "");
        add_escaped(b, uc->name);
        evbuffer_add_printf(b, "\":{\"balance\":\"%s\",\"healthy\":%s,\"servers\":[",
                            uc->balance == PC_BALANCE_LEAST_CONN ? "least_conn" : "round_robin",
                            upstream_up(uc, now) ? "true" : "false");
        for (size_t i = 0; i < uc->n_servers; i++) {
            const pc_health_t *h = uc->servers[i].health;
            int64_t open = h ? __atomic_load_n(&h->open_until_ms, __ATOMIC_ACQUIRE) : 0;
            evbuffer_add_printf(b, "%s{\"address\":\"", i ? "," : "");
            add_escaped(b, uc->servers[i].address);
            evbuffer_add_printf(
                b, "\",\"check\":\"%s\",\"circuit\":\"%s\",\"consecutive_failures\":%u}",
                !uc->health_check                                          ? "none"
                : h && __atomic_load_n(&h->healthy, __ATOMIC_ACQUIRE) == 0 ? "failing"
                                                                           : "passing",
                open == 0    ? "closed"
                : now < open ? "open"
                             : "half_open",
                h ? __atomic_load_n(&h->fails, __ATOMIC_RELAXED) : 0u);
        }
        evbuffer_add(b, "]}", 2);
    }
    evbuffer_add(b, "},\"jwks\":", 9);
    jwks_status(b, a->cfg);
    evbuffer_add_printf(b, ",\"revoked_tokens\":%zu,\"redis\":{\"state\":\"%s\"}}\n",
                        pc_revoke_count(),
                        !a->cfg->redis ? "not_configured"
                        : redis_ok(a)  ? "connected"
                                       : "disconnected");
    reply(req, 200, "OK", "application/json", b);
    evbuffer_free(b);
}

/* POST /admin/revoke {"jti":"...","exp":UNIX}: the token is refused until
 * exp (and a little after, for the providers' leeway). */
static void revoke_done(struct evhttp_request *req, int ok)
{
    if (ok)
        reply_json(req, 200, "OK", "{\"status\":\"revoked\"}");
    else
        reply_json(req, 503, "Service Unavailable",
                   "{\"error\":\"redis_unavailable\",\"status\":503,"
                   "\"detail\":\"revoked on this instance only\"}");
}

static void admin_revoke(struct evhttp_request *req, int redis)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *j =
        len && len <= 4096 ? pc_json_strict((const char *)evbuffer_pullup(in, -1), len) : NULL;
    const char *jti = json_string_value(json_object_get(j, "jti"));
    json_t *exp = json_object_get(j, "exp");
    size_t n = jti ? strlen(jti) : 0;
    if (!n || n > PC_JTI_MAX || !json_is_integer(exp) || json_object_size(j) != 2) {
        reply_json(req, 400, "Bad Request",
                   "{\"error\":\"bad_request\",\"status\":400,\"detail\":"
                   "\"expected {\\\"jti\\\":\\\"ID\\\",\\\"exp\\\":UNIX_SECONDS}\"}");
    } else if (json_integer_value(exp) <= (json_int_t)time(NULL)) {
        reply_json(req, 200, "OK", "{\"status\":\"ignored\",\"detail\":\"already expired\"}");
    } else if (pc_revoke_add(jti, n, (int64_t)json_integer_value(exp)) != 0) {
        reply_json(req, 503, "Service Unavailable",
                   "{\"error\":\"revocation_list_full\",\"status\":503}");
    } else {
        pc_log(PC_LOG_INFO, "admin", "token %.64s revoked until %lld", jti,
               (long long)json_integer_value(exp));
        if (!redis)
            revoke_done(req, 1);
        else if (pc_revoke_redis_add(jti, n, (int64_t)json_integer_value(exp), req, revoke_done) !=
                 0)
            revoke_done(req, 0); /* answered when Redis answers, within redis.timeout */
    }
    json_decref(j);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    pc_admin_t *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!path) {
        reply_json(req, 400, "Bad Request", "{\"error\":\"bad_request\",\"status\":400}");
        return;
    }
    int is_admin = strncmp(path, "/admin/", 7) == 0;
    int known = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
                strcmp(path, "/metrics") == 0 || is_admin;
    if (!known) {
        reply_json(req, 404, "Not Found", "{\"error\":\"not_found\",\"status\":404}");
        return;
    }
    if (is_admin) {
        const char *tok = a->cfg->admin ? a->cfg->admin->token : NULL;
        if (!tok || !*tok) {
            reply_json(req, 403, "Forbidden",
                       "{\"error\":\"admin_api_disabled\",\"status\":403,"
                       "\"detail\":\"set admin.token to enable /admin/ endpoints\"}");
            return;
        }
        if (!authorized(a, req)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              "Bearer realm=\"portcullis-admin\"");
            reply_json(req, 401, "Unauthorized", "{\"error\":\"unauthorized\",\"status\":401}");
            return;
        }
    }
    if (strcmp(path, "/admin/revoke") == 0) {
        if (m == EVHTTP_REQ_POST) {
            admin_revoke(req, a->cfg->redis != NULL);
            return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_json(req, 405, "Method Not Allowed",
                   "{\"error\":\"method_not_allowed\",\"status\":405}");
        return;
    }
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_json(req, 405, "Method Not Allowed",
                   "{\"error\":\"method_not_allowed\",\"status\":405}");
        return;
    }
    if (strcmp(path, "/healthz") == 0)
        reply_json(req, 200, "OK", "{\"status\":\"ok\"}");
    else if (strcmp(path, "/readyz") == 0)
        readyz(a, req);
    else if (strcmp(path, "/metrics") == 0)
        metrics(a, req);
    else if (strcmp(path, "/admin/status") == 0)
        status(a, req);
    else if (strcmp(path, "/admin/waf/rules") == 0)
        waf_rules(a, req);
    else
        reply_json(req, 404, "Not Found", "{\"error\":\"not_found\",\"status\":404}");
}

/* ---- active health checks ---- */

typedef struct probe_s {
    pc_admin_t *a;
    pc_health_t *h;
    struct probe_s *next, **prevp;
    int fd;
    int sent;
    int64_t deadline_ms;
    struct event ev;
    unsigned healthy_after, unhealthy_after;
    size_t reqlen, got;
    char req[600];
    char head[PROBE_HEAD];
} probe_t;

static void probe_done(probe_t *p, int ok, const char *why)
{
    /* a probe of a check a reload removed decides nothing */
    if (p->h->checked && pc_health_check_result(p->h, ok, p->healthy_after, p->unhealthy_after))
        pc_log(ok ? PC_LOG_INFO : PC_LOG_WARN, "health", "upstream %s server %s is %s%s%s",
               p->h->upstream, p->h->server, ok ? "healthy again" : "unhealthy", ok ? "" : ": ",
               ok ? "" : why);
    event_del(&p->ev);
    close(p->fd);
    p->h->checking = 0;
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
    free(p);
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    probe_t *p = arg;
    if (what & EV_TIMEOUT) {
        probe_done(p, 0, "health check timed out");
        return;
    }
    if (!p->sent) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
            probe_done(p, 0, "connect failed");
            return;
        }
        if (send(fd, p->req, p->reqlen, MSG_NOSIGNAL) != (ssize_t)p->reqlen) {
            probe_done(p, 0, "send failed");
            return;
        }
        p->sent = 1;
        /* the answer must come within what is left of the timeout */
        int64_t left = p->deadline_ms - pc_mono_ms();
        if (left < 1)
            left = 1;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        event_del(&p->ev);
        event_assign(&p->ev, p->a->base, fd, EV_READ | EV_PERSIST, probe_cb, p);
        event_add(&p->ev, &tv);
        return;
    }
    ssize_t n = recv(fd, p->head + p->got, sizeof(p->head) - p->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        p->got += (size_t)n;
    if (n > 0 && p->got < 12)
        return;
    int st = pc_health_status_code(p->head, p->got); /* 2xx and 3xx pass */
    char why[64];
    snprintf(why, sizeof(why), st < 0 ? "not an HTTP response" : "status %d", st);
    probe_done(p, st >= 200 && st < 400, why);
}

static void probe_start(pc_admin_t *a, const pc_upstream_conf_t *uc, const pc_server_conf_t *sc)
{
    pc_health_t *h = sc->health;
    const pc_health_check_conf_t *hc = uc->health_check;
    probe_t *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->a = a;
    p->h = h;
    p->healthy_after = (unsigned)hc->healthy_threshold;
    p->unhealthy_after = (unsigned)hc->unhealthy_threshold;
    int n = snprintf(p->req, sizeof(p->req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portcullis-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     hc->path, sc->address);
    p->fd = socket(sc->addr.u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n <= 0 || (size_t)n >= sizeof(p->req) || p->fd < 0) {
        if (p->fd >= 0)
            close(p->fd);
        free(p);
        return;
    }
    p->reqlen = (size_t)n;
    p->deadline_ms = pc_mono_ms() + hc->timeout;
    h->checking = 1;
    p->next = a->probes;
    p->prevp = &a->probes;
    if (a->probes)
        a->probes->prevp = &p->next;
    a->probes = p;
    event_assign(&p->ev, a->base, p->fd, EV_WRITE, probe_cb, p);
    struct timeval tv = {(time_t)(hc->timeout / 1000), (suseconds_t)(hc->timeout % 1000) * 1000};
    if (connect(p->fd, &sc->addr.u.sa, sc->addr.len) != 0 && errno != EINPROGRESS) {
        event_add(&p->ev, &tv); /* so that probe_done can delete it */
        probe_done(p, 0, "connect failed");
        return;
    }
    event_add(&p->ev, &tv);
}

static void run_checks(pc_admin_t *a)
{
    int64_t now = pc_mono_ms();
    for (size_t u = 0; u < a->cfg->n_upstreams; u++) {
        const pc_upstream_conf_t *uc = &a->cfg->upstreams[u];
        if (!uc->health_check)
            continue;
        for (size_t i = 0; i < uc->n_servers; i++) {
            pc_health_t *h = uc->servers[i].health;
            if (!h || h->checking || now < h->next_check_ms)
                continue;
            h->next_check_ms = now + uc->health_check->interval;
            probe_start(a, uc, &uc->servers[i]);
        }
    }
}

/* ---- the thread ---- */

static void take_pending(pc_admin_t *a)
{
    pthread_mutex_lock(&a->lock);
    pc_config_t *cfg = a->pending;
    int fd = a->pending_fd;
    a->pending = NULL;
    a->pending_fd = -2;
    pthread_mutex_unlock(&a->lock);
    if (!cfg)
        return;
    pc_config_unref(a->cfg);
    a->cfg = cfg;
    pc_health_apply(cfg);
    if (fd == -2)
        return;
    if (a->bound)
        evhttp_del_accept_socket(a->http, a->bound);
    a->bound = NULL;
    if (fd >= 0 && !(a->bound = evhttp_accept_socket_with_handle(a->http, fd))) {
        pc_log(PC_LOG_ERROR, "admin", "cannot serve the admin listener");
        close(fd);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    pc_admin_t *a = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&a->lock);
    int stop = a->stop;
    pthread_mutex_unlock(&a->lock);
    if (stop) {
        event_base_loopbreak(a->base);
        return;
    }
    take_pending(a);
    run_checks(a);
    pc_jwks_tick(a->base, a->cfg);
    pc_revoke_redis_tick(a->base, a->cfg->redis);
    pc_rl_local_sweep(pc_now_us());
    if (++a->ticks % 100 == 0) /* every ~10 s; leeway is at most 10 min */
        pc_revoke_expire((int64_t)time(NULL) - 600);
}

static void *admin_main(void *arg)
{
    pc_admin_t *a = arg;
    event_base_dispatch(a->base);
    return NULL;
}

static void admin_free(pc_admin_t *a)
{
    pc_jwks_stop();
    pc_revoke_redis_stop();
    while (a->probes) {
        probe_t *p = a->probes;
        a->probes = p->next;
        event_del(&p->ev);
        close(p->fd);
        p->h->checking = 0;
        free(p);
    }
    if (a->http)
        evhttp_free(a->http); /* closes the bound socket */
    if (a->tick)
        event_free(a->tick);
    if (a->base)
        event_base_free(a->base);
    if (a->pending)
        pc_config_unref(a->pending);
    if (a->pending_fd >= 0)
        close(a->pending_fd);
    if (a->cfg)
        pc_config_unref(a->cfg);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

pc_admin_t *pc_admin_start(pc_server_t *srv, pc_config_t *cfg, int admin_fd)
{
    pc_admin_t *a = calloc(1, sizeof(*a));
    if (!a) {
        if (admin_fd >= 0)
            close(admin_fd);
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->srv = srv;
    a->pending_fd = -2;
    a->started = time(NULL);
    pc_config_ref(cfg);
    a->cfg = cfg;
    pc_health_apply(cfg);
    a->base = event_base_new();
    a->http = a->base ? evhttp_new(a->base) : NULL;
    a->tick = a->base ? event_new(a->base, -1, EV_PERSIST, on_tick, a) : NULL;
    struct timeval tv = {0, TICK_MS * 1000};
    if (!a->http || !a->tick || event_add(a->tick, &tv) != 0)
        goto fail;
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 65536);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_default_content_type(a->http, "application/json");
    evhttp_set_gencb(a->http, on_request, a);
    if (admin_fd >= 0) {
        a->bound = evhttp_accept_socket_with_handle(a->http, admin_fd);
        if (!a->bound)
            goto fail;
        admin_fd = -1;
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0)
        goto fail;
    return a;
fail:
    if (admin_fd >= 0)
        close(admin_fd);
    admin_free(a);
    return NULL;
}

void pc_admin_reload(pc_admin_t *a, pc_config_t *cfg, int admin_fd)
{
    pc_config_ref(cfg);
    pthread_mutex_lock(&a->lock);
    if (a->pending)
        pc_config_unref(a->pending);
    a->pending = cfg;
    if (admin_fd != -2) {
        if (a->pending_fd >= 0)
            close(a->pending_fd);
        a->pending_fd = admin_fd;
    }
    pthread_mutex_unlock(&a->lock);
}

void pc_admin_stop(pc_admin_t *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    admin_free(a);
}
