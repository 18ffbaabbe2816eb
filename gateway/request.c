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
#include "waf_eval.h"
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

struct event_base *pc_req_base(const pc_req_t *r)
{
    return r->w->base;
}

int pc_req_init(pc_req_t *r, pc_conn_t *conn)
{
    pc_worker_t *w = conn->w;
    r->conn = conn;
    r->w = w;
    r->snap = w->snap;
    r->snap->inflight++;
    r->cfg = r->snap->cfg;
    r->listener = &r->cfg->listeners[conn->listener];
    r->state = PC_RS_FILTERS;
    event_base_gettimeofday_cached(w->base, &r->start);
    r->start_us = pc_now_us();
    r->client_ip = conn->peer;
    pc_worker_random_hex(w, r->id);
    r->id_len = 32;
    return 0;
}

pc_ip_t pc_req_forwarded_client(const pc_http_header_t *h, uint32_t n, const pc_cidr_set_t *trusted,
                                pc_ip_t peer)
{
    if (trusted->n == 0 || !pc_cidr_set_contains(trusted, peer))
        return peer;
    pc_ip_t client = peer;
    /* Walk every X-Forwarded-For field from the last one backwards. */
    for (uint32_t i = n; i-- > 0;) {
        if (h[i].id != PC_HDR_X_FORWARDED_FOR || h[i].value.n == 0)
            continue;
        const char *p = h[i].value.p, *e = p + h[i].value.n;
        /* entry by entry, the empty one before a leading comma included */
        for (;;) {
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
                return client; /* garbage: trust nothing further left */
            client = ip;
            if (!pc_cidr_set_contains(trusted, ip))
                return client;
            if (s == p)
                break;
            e = s - 1;
        }
    }
    return client;
}

static void resolve_client_ip(pc_req_t *r)
{
    r->client_ip =
        pc_req_forwarded_client(r->http.headers, r->http.nheaders, &r->cfg->trusted, r->conn->peer);
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

static int ip_denied(const pc_ip_rules_conf_t *ip, pc_ip_t a)
{
    return ip && ((ip->deny_set.n && pc_cidr_set_contains(&ip->deny_set, a)) ||
                  (ip->n_allow && !pc_cidr_set_contains(&ip->allow_set, a)));
}

/* Headers that carry verified claims upstream are the gateway's to set: a
 * client's copies are never forwarded, on any route. */
static void drop_claim_headers(pc_req_t *r)
{
    for (uint32_t i = 0; i < r->http.nheaders; i++) {
        pc_http_header_t *f = &r->http.headers[i];
        for (size_t k = 0; k < r->cfg->n_claim_headers; k++)
            if (pc_str_ieq(f->name, r->cfg->claim_headers[k]))
                f->flags |= PC_HDR_F_DROP;
    }
}

/* ip_rules, global then the route's, on the client address (after trusted
 * proxies): before anything else looks at the request. 0, or -1 after
 * answering 403. */
static int check_ip(pc_req_t *r)
{
    if (!ip_denied(r->cfg->ip_rules, r->client_ip) &&
        !(r->route && ip_denied(r->route->ip_rules, r->client_ip)))
        return 0;
    return pc_req_block(r, PC_REPLY_forbidden, "ip", "client address denied by ip_rules");
}

/* The limits of the route (or the global ones when no route matched): the
 * parser applied the largest any route allows. 0, or -1 after answering
 * (or flagging, on a dry-run route). */
static int check_limits(pc_req_t *r, const pc_limits_conf_t *l)
{
    const pc_http_request_t *h = &r->http;
    if (h->target.n > (size_t)l->max_uri)
        return pc_req_block(r, PC_REPLY_uri_too_long, "size",
                            "request-target over the route's max_uri");
    if (h->header_bytes > l->max_header_bytes)
        return pc_req_block(r, PC_REPLY_header_fields_too_large, "size",
                            "header section over the route's max_header_bytes");
    if (h->nheaders > l->max_headers)
        return pc_req_block(r, PC_REPLY_header_fields_too_large, "size",
                            "more header fields than the route's max_headers");
    if (h->body == PC_BODY_LENGTH && h->content_length > l->max_body)
        return pc_req_block(r, PC_REPLY_content_too_large, "size", "Content-Length over max_body");
    return 0;
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
    r->route_path = r->path;
    if (memchr(r->path.p, ';', r->path.n)) {
        /* routes match what a parameter-stripping backend will serve */
        char *sp = pc_arena_alloc(&r->arena, r->path.n + 1);
        if (!sp) {
            pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
            return;
        }
        r->route_path = pc_str_make(sp, pc_http_strip_params(r->path, sp));
    }
    if (h->body == PC_BODY_LENGTH && h->content_length > r->cfg->scan_limits.max_body) {
        pc_req_respond(r, PC_REPLY_content_too_large, "Content-Length over max_body");
        return;
    }
    r->route = pc_route_match(r->cfg, r);
    if (r->cfg->n_claim_headers)
        drop_claim_headers(r);
    if (check_ip(r) != 0 || check_limits(r, r->route ? &r->route->limits : &r->cfg->limits) != 0)
        return;
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

void pc_req_cancel(pc_req_t *r, const char *detail)
{
    uint32_t i = r->filter_next - 1; /* the filter that suspended it */
    const pc_filter_t *f = &r->route->chain.filters[i];
    if (f->ops->cancel)
        f->ops->cancel(r, f->conf, r->filter_state[i]);
    r->suspended = 0;
    r->detail = detail;
    r->state = PC_RS_DONE;
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
        } else if (st == PC_RS_BODY) {
            pc_proxy_hold_run(r);
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

pc_reply_e pc_reply_for_status(int status, pc_reply_e dflt)
{
    for (int i = 0; i < PC_REPLY_COUNT; i++)
        if (reasons[i].status == status)
            return (pc_reply_e)i;
    return dflt;
}

void pc_req_respond_http_error(pc_req_t *r, int rc)
{
    r->close_after = 1; /* the stream can no longer be trusted */
    pc_req_respond(r, pc_reply_for_status(pc_http_err_status(rc), PC_REPLY_bad_request),
                   pc_http_err_detail(rc));
}

int pc_req_block(pc_req_t *r, pc_reply_e reply, const char *blocked_by, const char *detail)
{
    return pc_req_block_as(r, reply, NULL, blocked_by, detail);
}

void pc_req_hold_body(pc_req_t *r, int64_t limit, int reject, const char *blocked_by,
                      const char *detail)
{
    r->hold_limit = limit > 0 ? limit : 1;
    r->hold_reject = reject != 0;
    r->hold_blocked_by = blocked_by;
    r->hold_detail = detail;
}

const char *pc_req_client_ip_str(const pc_req_t *r, char *buf)
{
    if (r->client_ip.hi == r->conn->peer.hi && r->client_ip.lo == r->conn->peer.lo)
        return r->conn->peer_str;
    pc_ip_format(r->client_ip, buf);
    return buf;
}

int pc_req_dry_run(const pc_req_t *r)
{
    return r->route && r->route->dry_run;
}

void pc_req_flag(pc_req_t *r, pc_reply_e reply, const char *blocked_by, const char *detail)
{
    if (r->nflags < PC_REQ_FLAGS_MAX) {
        r->flags[r->nflags].reason = blocked_by;
        r->flags[r->nflags].detail = detail;
        r->flags[r->nflags].status = reasons[reply].status;
        r->nflags++;
    }
}

int pc_req_block_as(pc_req_t *r, pc_reply_e reply, const char *error, const char *blocked_by,
                    const char *detail)
{
    if (pc_req_dry_run(r)) {
        pc_req_flag(r, reply, blocked_by, detail);
        return 0;
    }
    pc_req_respond_as(r, reply, error, detail);
    r->blocked_by = blocked_by;
    return -1;
}

/* Appends "name: value\r\n" to a header-line buffer in the arena. */
static int add_line(pc_req_t *r, char **buf, uint32_t *len, uint32_t *cap, const char *name,
                    pc_str_t value)
{
    size_t nl = strlen(name), need = *len + nl + value.n + 4;
    if (need > *cap) {
        size_t ncap = need < 256 ? 256 : need * 2;
        char *p = pc_arena_alloc(&r->arena, ncap);
        if (!p)
            return -1;
        if (*len)
            memcpy(p, *buf, *len);
        *buf = p;
        *cap = (uint32_t)ncap;
    }
    pc_wbuf_t o = {*buf, *len, *cap};
    pc_wb_put(&o, name, nl);
    pc_wb_put(&o, ": ", 2);
    pc_wb_str(&o, value);
    pc_wb_put(&o, "\r\n", 2);
    *len = (uint32_t)o.n;
    return 0;
}

int pc_req_add_response_header(pc_req_t *r, const char *name, pc_str_t value)
{
    return add_line(r, &r->resp_extra, &r->resp_extra_len, &r->resp_extra_cap, name, value);
}

int pc_req_add_request_header(pc_req_t *r, const char *name, pc_str_t value)
{
    return add_line(r, &r->req_extra, &r->req_extra_len, &r->req_extra_cap, name, value);
}

static const pc_sechdr_conf_t *sechdr(const pc_req_t *r)
{
    return r->route ? r->route->security_headers : &r->cfg->security_headers;
}

size_t pc_req_added_headers_size(const pc_req_t *r)
{
    return r->resp_extra_len + sechdr(r)->block_tls.n;
}

void pc_req_put_added_headers(pc_req_t *r, pc_wbuf_t *o)
{
    const pc_sechdr_conf_t *s = sechdr(r);
    pc_wb_put(o, r->resp_extra, r->resp_extra_len);
    pc_wb_str(o, r->listener->tls ? s->block_tls : s->block);
}

/* Sends a reply the gateway makes itself: status, the JSON body (NULL: no
 * body), and every added header. */
static void local_reply(pc_req_t *r, int status, const char *body, size_t body_len)
{
    if (r->up)
        pc_proxy_detach(r, 0);
    if (r->response_started) {
        /* Too late for a status: the client sees the connection close. */
        r->close_after = 1;
        r->state = PC_RS_DONE;
        return;
    }
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
    size_t cap = 320 + body_len + pc_req_added_headers_size(r);
    pc_wbuf_t o = {pc_arena_alloc(&r->arena, cap), 0, cap};
    if (!o.p) {
        r->close_after = 1;
        r->state = PC_RS_DONE;
        return;
    }
    pc_wb_cstr(&o, "HTTP/1.1 ");
    pc_wb_u64(&o, (uint64_t)status);
    pc_wb_put(&o, " ", 1);
    pc_wb_cstr(&o, pc_http_reason(status));
    pc_wb_cstr(&o, "\r\nDate: ");
    pc_wb_cstr(&o, pc_worker_date(r->w));
    if (body)
        pc_wb_cstr(&o, "\r\nContent-Type: application/json");
    if (status != 204 && status != 304) {
        pc_wb_cstr(&o, "\r\nContent-Length: ");
        pc_wb_u64(&o, body_len);
    }
    pc_wb_cstr(&o, "\r\nCache-Control: no-store\r\nX-Request-Id: ");
    pc_wb_put(&o, r->id, r->id_len);
    pc_wb_cstr(&o, "\r\n");
    pc_req_put_added_headers(r, &o);
    if (r->close_after)
        pc_wb_cstr(&o, "Connection: close\r\n");
    else if (r->http.minor == 0)
        pc_wb_cstr(&o, "Connection: keep-alive\r\n");
    pc_wb_cstr(&o, "\r\n");
    if (body && r->http.method_id != PC_M_HEAD)
        pc_wb_put(&o, body, body_len);
    if (!pc_wb_ok(&o)) {
        r->close_after = 1;
        r->state = PC_RS_DONE;
        return;
    }
    pc_relay_init(&r->download, NULL, NULL, &r->conn->sock, PC_BODY_NONE, 0, PC_BODY_NONE, o.p,
                  o.n);
    r->response_started = 1;
    r->state = PC_RS_REPLY;
}

void pc_req_respond(pc_req_t *r, pc_reply_e reason, const char *detail)
{
    pc_req_respond_as(r, reason, NULL, detail);
}

void pc_req_respond_as(pc_req_t *r, pc_reply_e reason, const char *error, const char *detail)
{
    r->detail = detail;
    r->blocked_by = reasons[reason].blocked_by;
    int status = reasons[reason].status;
    /* {"error":"<name>","status":NNN,"request_id":"<id>"} */
    char body[96 + PC_REQUEST_ID_MAX]; /* an error of up to 48 bytes fits */
    pc_wbuf_t b = {body, 0, sizeof(body)};
    pc_wb_cstr(&b, "{\"error\":\"");
    pc_wb_cstr(&b, error ? error : reasons[reason].name);
    pc_wb_cstr(&b, "\",\"status\":");
    pc_wb_u64(&b, (uint64_t)status);
    pc_wb_cstr(&b, ",\"request_id\":\"");
    pc_wb_put(&b, r->id, r->id_len); /* ids are [A-Za-z0-9._:-]: nothing to escape */
    pc_wb_cstr(&b, "\"}");
    local_reply(r, status, body, b.n);
}

void pc_req_respond_empty(pc_req_t *r, int status, const char *detail)
{
    r->detail = detail;
    local_reply(r, status, NULL, 0);
}

/* Appends ,"key":"escaped" — or ,"key":null when s is NULL. */
static void json_field(pc_wbuf_t *o, const char *key, const char *s, size_t n, size_t max)
{
    pc_wb_cstr(o, ",\"");
    pc_wb_cstr(o, key);
    if (!s) {
        pc_wb_cstr(o, "\":null");
        return;
    }
    pc_wb_cstr(o, "\":\"");
    pc_wb_json(o, s, n, max);
    pc_wb_put(o, "\"", 1);
}

static void json_num(pc_wbuf_t *o, const char *key, uint64_t v)
{
    pc_wb_cstr(o, ",\"");
    pc_wb_cstr(o, key);
    pc_wb_cstr(o, "\":");
    pc_wb_u64(o, v);
}

/* Milliseconds with three decimals, from microseconds. */
static void json_ms(pc_wbuf_t *o, const char *key, int64_t us)
{
    char frac[4];
    if (us < 0)
        us = 0;
    json_num(o, key, (uint64_t)us / 1000);
    frac[0] = '.';
    frac[1] = (char)('0' + us / 100 % 10);
    frac[2] = (char)('0' + us / 10 % 10);
    frac[3] = (char)('0' + us % 10);
    pc_wb_put(o, frac, 4);
}

/* The access-log line (docs/operations.md). Every field that comes from the
 * client is escaped and capped, so a line always fits LOG_LINE_MAX. */
#define LOG_LINE_MAX 8192

/* The fields both logs start with: ts, request_id, client_ip, method, path,
 * status. */
static void log_common(pc_wbuf_t *o, pc_req_t *r)
{
    char ts[32], ip[46];
    pc_wb_cstr(o, "{\"ts\":\"");
    pc_wb_put(o, ts, pc_time_iso(&r->start, ts));
    pc_wb_put(o, "\"", 1);
    json_field(o, "request_id", r->id, r->id_len, PC_REQUEST_ID_MAX);
    const char *cip = pc_req_client_ip_str(r, ip);
    json_field(o, "client_ip", cip, strlen(cip), 46);
    json_field(o, "method", r->http.method.p, r->http.method.n, 32);
    pc_str_t path = r->path.p ? r->path : r->http.path;
    json_field(o, "path", path.p ? path.p : "", path.n, 1024);
    json_num(o, "status", (uint64_t)r->status);
}

/* Starts a line of log b with the common fields; -1 when the log is off or
 * its buffer cannot take a line. */
static int log_begin(pc_req_t *r, pc_logbuf_t *b, pc_wbuf_t *o)
{
    if (b->file->fd < 0)
        return -1;
    char *line = pc_logbuf_reserve(b, LOG_LINE_MAX);
    if (!line)
        return -1;
    *o = (pc_wbuf_t){line, 0, LOG_LINE_MAX};
    log_common(o, r);
    return 0;
}

/* "rules":[id,...] — the WAF rules that matched (at most 32 listed). */
static void log_rules(pc_wbuf_t *o, const pc_req_t *r)
{
    pc_wb_cstr(o, ",\"rules\":[");
    for (unsigned i = 0; i < r->nwaf_hits && i < 32; i++) {
        if (i)
            pc_wb_put(o, ",", 1);
        pc_wb_u64(o, r->waf_hits[i].id);
    }
    pc_wb_put(o, "]", 1);
}

/* A JSON string element of an array: ,"..." (escaped, capped). */
static void log_elem(pc_wbuf_t *o, int *first, const char *s, size_t cap)
{
    pc_wb_cstr(o, *first ? "\"" : ",\"");
    pc_wb_json(o, s, strlen(s), cap);
    pc_wb_put(o, "\"", 1);
    *first = 0;
}

/* The security-log line for a blocked request (docs/operations.md). */
static void security_log(pc_req_t *r)
{
    pc_worker_t *w = r->w;
    pc_wbuf_t o;
    if (log_begin(r, &w->security, &o) != 0)
        return;
    const char *rt = r->route ? r->route->name : NULL;
    json_field(&o, "route", rt, rt ? strlen(rt) : 0, 128);
    /* blocked, or only flagged by controls of a dry-run route */
    const char *reason = r->blocked_by ? r->blocked_by : r->flags[0].reason;
    json_field(&o, "reason", reason, strlen(reason), 32);
    pc_wb_cstr(&o, r->blocked_by ? ",\"dry_run\":false" : ",\"dry_run\":true");
    if (!r->blocked_by)
        json_num(&o, "would_status", (uint64_t)r->flags[0].status);
    log_rules(&o, r);
    pc_wb_cstr(&o, ",\"messages\":[");
    int first = 1;
    for (size_t i = 0; i <= r->nflags; i++) {
        const char *m = i < r->nflags ? r->flags[i].detail : r->blocked_by ? r->detail : NULL;
        if (m)
            log_elem(&o, &first, m, 256);
    }
    /* each matched WAF rule's message and variable; the excerpt of the
     * first match that has one (already cut by the engine) */
    const char *excerpt = NULL;
    for (unsigned i = 0; i < r->nwaf_hits && i < 16; i++) {
        if (r->waf_hits[i].msg && (!r->detail || strcmp(r->waf_hits[i].msg, r->detail) != 0))
            log_elem(&o, &first, r->waf_hits[i].msg, 256);
    }
    pc_wb_cstr(&o, "],\"matched\":[");
    first = 1;
    for (unsigned i = 0; i < r->nwaf_hits && i < 16; i++) {
        if (r->waf_hits[i].var && strncmp(r->waf_hits[i].var, "TX:", 3) != 0) {
            log_elem(&o, &first, r->waf_hits[i].var, 128);
            if (!excerpt)
                excerpt = r->waf_hits[i].excerpt;
        }
    }
    pc_wb_cstr(&o, "],\"excerpt\":");
    if (excerpt) {
        pc_wb_put(&o, "\"", 1);
        pc_wb_json(&o, excerpt, strlen(excerpt), 128);
        pc_wb_put(&o, "\"", 1);
    } else {
        pc_wb_cstr(&o, "null");
    }
    pc_wb_cstr(&o, "}\n");
    if (pc_wb_ok(&o))
        pc_worker_log_commit(w, &w->security, o.n);
}

static void access_log(pc_req_t *r, int64_t duration_us)
{
    pc_worker_t *w = r->w;
    pc_wbuf_t o;
    if (log_begin(r, &w->access, &o) != 0)
        return;
    json_num(&o, "bytes_in", r->bytes_in);
    json_num(&o, "bytes_out", r->bytes_out);
    json_ms(&o, "duration_ms", duration_us);
    const char *up = r->upstream_name;
    json_field(&o, "upstream", up, up ? strlen(up) : 0, 128);
    if (up && r->upstream_us >= 0)
        json_ms(&o, "upstream_ms", r->upstream_us);
    else
        pc_wb_cstr(&o, ",\"upstream_ms\":null");
    const char *rt = r->route ? r->route->name : NULL;
    json_field(&o, "route", rt, rt ? strlen(rt) : 0, 128);
    json_field(&o, "user", r->user, r->user ? strlen(r->user) : 0, 256);
    json_field(&o, "blocked_by", r->blocked_by, r->blocked_by ? strlen(r->blocked_by) : 0, 32);
    log_rules(&o, r);
    if (r->detail)
        json_field(&o, "detail", r->detail, strlen(r->detail), 128);
    pc_wb_cstr(&o, "}\n");
    if (pc_wb_ok(&o)) /* cannot fail with the caps above; a cut line is never written */
        pc_worker_log_commit(w, &w->access, o.n);
}

void pc_req_finish(pc_req_t *r)
{
    if (r->up)
        pc_proxy_detach(r, 0);
    if (r->status == 0)
        r->status = 499;            /* the client went away, or was cut, before any answer */
    r->bytes_in += r->upload.total; /* body payload read (a skipped body is counted already) */
    int64_t duration = pc_now_us() - r->start_us;
    pc_metrics_request(&r->w->metrics, r->route ? r->route->metric_id : PC_METRIC_NO_ROUTE,
                       r->status, duration, r->blocked_by);
    for (size_t i = 0; i < r->nflags; i++)
        pc_metrics_dry_run(&r->w->metrics, r->flags[i].reason);
    access_log(r, duration);
    if (r->blocked_by || r->nflags)
        security_log(r);
    /* after the lines: what filters release may be what the lines show */
    const pc_chain_t *ch = r->route ? &r->route->chain : NULL;
    for (size_t i = 0; ch && r->filter_state && i < ch->n; i++)
        if (ch->filters[i].ops->log)
            ch->filters[i].ops->log(r, ch->filters[i].conf, r->filter_state[i]);
    pc_worker_snap_release(r->w, r->snap);
    free(r->hbuf);
    pc_arena_t a = r->arena; /* r lives inside its own arena */
    pc_arena_free(&a);
}
