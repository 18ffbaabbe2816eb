/*
 * request.c — the request lifecycle: from a parsed head through routing and
 * the filter chain to the proxy or a local reply, and the access-log line.
 */
#include "request.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "proxy.h"
#include "router.h"
#include "worker.h"

static const struct {
    const char *name;
    int status;
    const char *blocked_by;
} reasons[PC_REPLY_COUNT] = {
#define X(name, status, blocked) {#name, status, blocked},
    PC_REPLY_REASONS(X)
#undef X
};

int64_t pc_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int pc_reply_status(pc_reply_e reason)
{
    return reasons[reason].status;
}

struct event_base *pc_req_base(const pc_req_t *r)
{
    return r->w->base;
}

int pc_req_init(pc_req_t *r, pc_conn_t *conn)
{
    pc_worker_t *w = conn->w;
    r->conn = conn;
    r->w = w;
    r->cfg = w->cfg;
    w->inflight++;
    r->reply = -1;
    r->state = PC_RS_FILTERS;
    event_base_gettimeofday_cached(w->base, &r->start);
    r->start_us = pc_now_us();
    r->client_ip = conn->peer;
    pc_worker_random_hex(w, r->id);
    r->id_len = 32;
    return 0;
}

/* The client address: the peer, or, when the peer is a trusted proxy, the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy. */
static void resolve_client_ip(pc_req_t *r)
{
    const pc_cidr_set_t *trusted = &r->cfg->trusted;
    if (trusted->n == 0 || !pc_cidr_set_contains(trusted, r->conn->peer))
        return;
    pc_ip_t client = r->conn->peer;
    const pc_http_header_t *h = r->http.headers;
    /* Walk every X-Forwarded-For field from the last one backwards. */
    for (uint32_t i = r->http.nheaders; i-- > 0;) {
        if (h[i].id != PC_HDR_X_FORWARDED_FOR)
            continue;
        const char *p = h[i].value.p, *e = p + h[i].value.n;
        while (e > p) {
            const char *s = e;
            while (s > p && s[-1] != ',')
                s--;
            const char *a = s, *b = e;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            pc_ip_t ip;
            if (pc_ip_parse(a, (size_t)(b - a), &ip) != 0)
                goto done; /* garbage: trust nothing further left */
            client = ip;
            if (!pc_cidr_set_contains(trusted, ip))
                goto done;
            e = s > p ? s - 1 : p;
        }
    }
done:
    r->client_ip = client;
}

static void run_filters(pc_req_t *r)
{
    const pc_chain_t *ch = &r->route->chain;
    while (r->filter_next < ch->n) {
        uint32_t i = r->filter_next++;
        const pc_filter_t *f = &ch->filters[i];
        if (!f->ops->request_headers)
            continue;
        switch (f->ops->request_headers(r, f->conf, r->filter_state[i])) {
        case PC_FILTER_CONTINUE:
            continue;
        case PC_FILTER_RESPOND:
            return;
        case PC_FILTER_SUSPEND:
            r->suspended = 1;
            return;
        case PC_FILTER_ERROR:
        default:
            pc_req_respond(r, PC_REPLY_internal_error, "filter error");
            return;
        }
    }
    pc_proxy_start(r);
}

void pc_req_start(pc_req_t *r)
{
    pc_http_request_t *h = &r->http;
    const pc_http_header_t *rid = pc_http_find(h->headers, h->nheaders, PC_HDR_X_REQUEST_ID);
    if (rid && pc_http_valid_request_id(rid->value)) {
        memcpy(r->id, rid->value.p, rid->value.n);
        r->id_len = rid->value.n;
    }
    resolve_client_ip(r);
    if (h->target_form == PC_TARGET_ASTERISK) {
        r->path = h->path;
    } else {
        char *np = pc_arena_alloc(&r->arena, h->path.n + 1);
        size_t nl;
        if (!np) {
            pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
            return;
        }
        int rc = pc_http_normalize_path(h->path, np, &nl);
        if (rc != PC_HTTP_OK) {
            pc_req_respond_http_error(r, rc);
            return;
        }
        r->path = pc_str_make(np, nl);
    }
    if (h->body == PC_BODY_LENGTH && h->content_length > r->cfg->limits.max_body) {
        pc_req_respond(r, PC_REPLY_content_too_large, "Content-Length over max_body");
        return;
    }
    r->route = pc_route_match(r->cfg, r);
    if (!r->route) {
        pc_req_respond(r, PC_REPLY_not_found, "no route");
        return;
    }
    const pc_chain_t *ch = &r->route->chain;
    if (ch->n) {
        r->filter_state = pc_arena_calloc(&r->arena, ch->n * sizeof(void *));
        for (size_t i = 0; r->filter_state && i < ch->n; i++) {
            size_t sz = ch->filters[i].ops->state_size;
            if (sz && !(r->filter_state[i] = pc_arena_calloc(&r->arena, sz)))
                r->filter_state = NULL;
        }
        if (!r->filter_state) {
            pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
            return;
        }
    }
    run_filters(r);
}

void pc_req_resume(pc_req_t *r, pc_filter_rc_e rc)
{
    r->suspended = 0;
    if (r->abandoned) {
        r->state = PC_RS_DONE;
    } else if (rc == PC_FILTER_CONTINUE) {
        run_filters(r);
    } else if (rc != PC_FILTER_RESPOND) {
        pc_req_respond(r, PC_REPLY_internal_error, "filter error");
    }
    pc_conn_drive(r->conn);
}

void pc_req_run(pc_req_t *r)
{
    /* A step may move the request to another state (the proxy may turn into
     * a local reply): run until the state holds still. */
    for (;;) {
        uint8_t st = r->state;
        if (st == PC_RS_PROXY) {
            pc_proxy_run(r);
        } else if (st == PC_RS_REPLY) {
            int rc = pc_relay_step(&r->download);
            r->bytes_out = r->download.written;
            if (rc == PC_RELAY_DONE) {
                r->state = PC_RS_DONE;
            } else if (rc != PC_RELAY_AGAIN || r->client_timed_out) {
                r->close_after = 1;
                r->state = PC_RS_DONE;
            }
        }
        if (r->state == st)
            return;
    }
}

void pc_req_respond_http_error(pc_req_t *r, int rc)
{
    static const struct {
        int status;
        pc_reply_e reason;
    } map[] = {{400, PC_REPLY_bad_request},
               {405, PC_REPLY_method_not_allowed},
               {413, PC_REPLY_content_too_large},
               {414, PC_REPLY_uri_too_long},
               {417, PC_REPLY_expectation_failed},
               {431, PC_REPLY_header_fields_too_large},
               {505, PC_REPLY_http_version_not_supported}};
    int status = pc_http_err_status(rc);
    pc_reply_e reason = PC_REPLY_bad_request;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i].status == status)
            reason = map[i].reason;
    r->close_after = 1; /* the stream can no longer be trusted */
    pc_req_respond(r, reason, pc_http_err_detail(rc));
}

void pc_req_respond(pc_req_t *r, pc_reply_e reason, const char *detail)
{
    r->reply = (int)reason;
    r->detail = detail;
    r->blocked_by = reasons[reason].blocked_by;
    if (r->up)
        pc_proxy_detach(r, 0);
    if (r->response_started) {
        /* Too late for a status: the client sees the connection close. */
        r->close_after = 1;
        r->state = PC_RS_DONE;
        return;
    }
    int status = reasons[reason].status;
    r->status = status;
    pc_buf_t *in = &r->conn->in;
    if (r->body_unread && !r->upload.src && r->http.body == PC_BODY_LENGTH &&
        (uint64_t)pc_buf_unread(in) >= (uint64_t)r->http.content_length) {
        /* A body that is already here in full is skipped, so a small POST
         * answered locally does not cost the connection. */
        in->rpos += (uint32_t)r->http.content_length;
        r->bytes_in += (uint64_t)r->http.content_length;
        r->body_unread = 0;
    }
    if (r->body_unread || status == 400 || status == 408)
        r->close_after = 1;
    if (!r->http.keep_alive || r->w->draining)
        r->close_after = 1;
    char body[160];
    int bl =
        snprintf(body, sizeof(body), "{\"error\":\"%s\",\"status\":%d,\"request_id\":\"%.*s\"}",
                 reasons[reason].name, status, (int)r->id_len, r->id);
    size_t cap = 512 + (size_t)bl;
    char *buf = pc_arena_alloc(&r->arena, cap);
    if (!buf) {
        r->close_after = 1;
        r->state = PC_RS_DONE;
        return;
    }
    int head_only = r->http.method_id == PC_M_HEAD;
    int n =
        snprintf(buf, cap,
                 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\nCache-Control: no-store\r\nX-Request-Id: %.*s\r\n"
                 "%s\r\n%s",
                 status, pc_http_reason(status), pc_worker_date(r->w), bl, (int)r->id_len, r->id,
                 r->close_after       ? "Connection: close\r\n"
                 : r->http.minor == 0 ? "Connection: keep-alive\r\n"
                                      : "",
                 head_only ? "" : body);
    pc_relay_init(&r->download, NULL, NULL, &r->conn->sock, PC_BODY_NONE, 0, PC_BODY_NONE, buf,
                  (size_t)n);
    r->response_started = 1;
    r->state = PC_RS_REPLY;
}

/* Appends `"key":"escaped"` (or null when s is NULL). */
static size_t json_str(char *out, size_t cap, const char *key, const char *s, size_t n)
{
    size_t o = (size_t)snprintf(out, cap, ",\"%s\":", key);
    if (o >= cap)
        return cap;
    if (!s)
        return o + (size_t)snprintf(out + o, cap - o, "null");
    if (o + 2 >= cap)
        return cap;
    out[o++] = '"';
    o += pc_json_escape(s, n, out + o, cap - o - 1);
    out[o++] = '"';
    return o;
}

static void access_log(pc_req_t *r)
{
    pc_worker_t *w = r->w;
    if (w->access.file->fd < 0)
        return;
    const size_t cap = 8192;
    char *out = pc_worker_log_reserve(w, cap);
    if (!out)
        return;
    double ms = (double)(pc_now_us() - r->start_us) / 1e3;
    char ts[32];
    pc_time_iso(&r->start, ts);
    size_t o = (size_t)snprintf(out, cap, "{\"ts\":\"%s\"", ts);
    o += json_str(out + o, cap - o, "request_id", r->id, r->id_len);
    char ip[46];
    const char *cip = r->conn->peer_str;
    if (r->client_ip.hi != r->conn->peer.hi || r->client_ip.lo != r->conn->peer.lo) {
        pc_ip_format(r->client_ip, ip);
        cip = ip;
    }
    o += json_str(out + o, cap - o, "client_ip", cip, strlen(cip));
    o += json_str(out + o, cap - o, "method", r->http.method.p,
                  r->http.method.n > 64 ? 64 : r->http.method.n);
    pc_str_t path = r->path.p ? r->path : r->http.path;
    o += json_str(out + o, cap - o, "path", path.p, path.n > 2048 ? 2048 : path.n);
    o += (size_t)snprintf(
        out + o, cap - o,
        ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f", r->status,
        (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, ms < 0 ? 0.0 : ms);
    o += json_str(out + o, cap - o, "upstream", r->upstream_name,
                  r->upstream_name ? strlen(r->upstream_name) : 0);
    if (r->upstream_name && r->upstream_us >= 0)
        o += (size_t)snprintf(out + o, cap - o, ",\"upstream_ms\":%.3f",
                              (double)r->upstream_us / 1e3);
    else
        o += (size_t)snprintf(out + o, cap - o, ",\"upstream_ms\":null");
    o += json_str(out + o, cap - o, "route", r->route ? r->route->name : NULL,
                  r->route ? strlen(r->route->name) : 0);
    o += (size_t)snprintf(out + o, cap - o, ",\"user\":null");
    o += json_str(out + o, cap - o, "blocked_by", r->blocked_by,
                  r->blocked_by ? strlen(r->blocked_by) : 0);
    o += (size_t)snprintf(out + o, cap - o, ",\"rules\":[]");
    if (r->detail)
        o += json_str(out + o, cap - o, "detail", r->detail, strlen(r->detail));
    if (o + 2 > cap)
        o = cap - 2; /* cannot happen with the caps above; keep the line intact */
    out[o++] = '}';
    out[o++] = '\n';
    pc_worker_log_commit(w, o);
}

void pc_req_finish(pc_req_t *r)
{
    const pc_chain_t *ch = r->route ? &r->route->chain : NULL;
    for (size_t i = 0; ch && r->filter_state && i < ch->n; i++)
        if (ch->filters[i].ops->log)
            ch->filters[i].ops->log(r, ch->filters[i].conf, r->filter_state[i]);
    if (r->up)
        pc_proxy_detach(r, 0);
    if (r->status == 0)
        r->status = 499; /* the client went away before any answer */
    access_log(r);
    r->w->inflight--;
    pc_arena_t a = r->arena; /* r lives inside its own arena */
    pc_arena_free(&a);
}
