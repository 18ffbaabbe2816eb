/*
 * proxy.c — see proxy.h and docs/internals/request-lifecycle.md.
 *
 * pc_proxy_run() is a loop over three steps — connect, upload (client to
 * upstream) and download (upstream to client) — each of which returns
 * WAIT (blocked on a socket), MOVED (made progress) or a final state change.
 * Upload and download run side by side: an upstream may answer before it has
 * read the whole request.
 */
#include "proxy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "upstream.h"
#include "worker.h"

enum { WAIT = 0, MOVED = 1, ENDED = 2 };

/* ---- heads ---- */

/* Bytes the fields of h take once written as "name: value\r\n". */
static size_t fields_size(const pc_http_header_t *h, uint32_t n)
{
    size_t sz = 0;
    for (uint32_t i = 0; i < n; i++)
        sz += h[i].name.n + h[i].value.n + 4;
    return sz;
}

/* Room for the fields the gateway adds to a head (request id, forwarded-*,
 * framing, Date, Connection), beyond the variable parts counted apart. */
#define ADDED_FIELDS 512

static void put_field(pc_wbuf_t *o, const char *name, pc_str_t v)
{
    pc_wb_cstr(o, name);
    pc_wb_put(o, ": ", 2);
    pc_wb_str(o, v);
    pc_wb_put(o, "\r\n", 2);
}

/* The request head sent upstream: origin-form with the normalised path,
 * the client's fields minus hop-by-hop ones, X-Forwarded-* and X-Request-Id
 * set by the gateway, and the body re-framed. */
static int build_request_head(pc_req_t *r)
{
    const pc_http_request_t *h = &r->http;
    int trusted = r->cfg->trusted.n && pc_cidr_set_contains(&r->cfg->trusted, r->conn->peer);
    const char *subject =
        r->listener->tls && r->listener->tls->forward_client_cert ? r->conn->client_subject : NULL;
    size_t cap = h->method.n + r->path.n + h->query.n + fields_size(h->headers, h->nheaders) +
                 h->host.n + strlen(r->route->up->name) + (subject ? strlen(subject) : 0) +
                 r->req_extra_len + ADDED_FIELDS;
    pc_wbuf_t o = {pc_arena_alloc(&r->arena, cap), 0, cap};
    if (!o.p)
        return -1;
    pc_wb_str(&o, h->method);
    pc_wb_put(&o, " ", 1);
    pc_wb_str(&o, r->path);
    if (h->query.p) {
        pc_wb_put(&o, "?", 1);
        pc_wb_str(&o, h->query);
    }
    pc_wb_cstr(&o, " HTTP/1.1\r\n");
    const pc_http_header_t *xfp = NULL, *xfh = NULL;
    int has_host = 0;
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const pc_http_header_t *f = &h->headers[i];
        if (f->flags & (PC_HDR_F_HOP | PC_HDR_F_DROP))
            continue;
        switch (f->id) {
        case PC_HDR_X_FORWARDED_FOR: /* written below, as one field */
            continue;
        case PC_HDR_X_FORWARDED_PROTO:
            xfp = xfp ? xfp : f;
            continue;
        case PC_HDR_X_FORWARDED_HOST:
            xfh = xfh ? xfh : f;
            continue;
        case PC_HDR_X_REQUEST_ID:
        case PC_HDR_X_CLIENT_CERT_SUBJECT: /* only the gateway may say who the client is */
            continue;
        case PC_HDR_HOST:
            has_host = 1;
            break;
        default:
            break;
        }
        pc_wb_str(&o, f->name);
        pc_wb_put(&o, ": ", 2);
        pc_wb_str(&o, f->value);
        pc_wb_put(&o, "\r\n", 2);
    }
    if (r->req_extra_len) /* fields filters added */
        pc_wb_put(&o, r->req_extra, r->req_extra_len);
    /* every X-Forwarded-For field becomes one, with the peer appended */
    pc_wb_cstr(&o, "X-Forwarded-For: ");
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const pc_http_header_t *f = &h->headers[i];
        if (f->id == PC_HDR_X_FORWARDED_FOR && !(f->flags & (PC_HDR_F_HOP | PC_HDR_F_DROP))) {
            pc_wb_str(&o, f->value);
            pc_wb_put(&o, ", ", 2);
        }
    }
    pc_wb_cstr(&o, r->conn->peer_str);
    pc_wb_put(&o, "\r\n", 2);
    /* HTTP/1.0 without a Host field: the absolute-form authority, or, like
     * nginx's $proxy_host, the upstream's name */
    if (!has_host)
        put_field(&o, "Host", h->host.p ? h->host : pc_str_cstr(r->route->up->name));
    /* A trusted proxy in front of us knows the original scheme and host. */
    put_field(&o, "X-Forwarded-Proto",
              trusted && xfp      ? xfp->value
              : r->conn->sock.ssl ? PC_STR("https")
                                  : PC_STR("http"));
    if (subject)
        put_field(&o, "X-Client-Cert-Subject", pc_str_cstr(subject));
    if (trusted && xfh)
        put_field(&o, "X-Forwarded-Host", xfh->value);
    else if (h->host.p)
        put_field(&o, "X-Forwarded-Host", h->host);
    put_field(&o, "X-Request-Id", pc_str_make(r->id, r->id_len));
    if (h->body == PC_BODY_CHUNKED) {
        pc_wb_cstr(&o, "Transfer-Encoding: chunked\r\n");
    } else if (h->body == PC_BODY_LENGTH) {
        pc_wb_cstr(&o, "Content-Length: ");
        pc_wb_u64(&o, (uint64_t)h->content_length);
        pc_wb_put(&o, "\r\n", 2);
    }
    pc_wb_put(&o, "\r\n", 2);
    if (!pc_wb_ok(&o))
        return -1;
    r->up_head = o.p;
    r->up_head_len = o.n;
    return 0;
}

/* Upstream response fields the client never sees: those security_headers
 * removes or sets itself, and CORS fields on a route whose policy the
 * gateway enforces. */
static int dropped(pc_str_t name, const pc_sechdr_conf_t *sec, int cors)
{
    for (size_t i = 0; i < sec->ndrop; i++)
        if (name.n == sec->drop[i].n && pc_str_ieq(name, sec->drop[i]))
            return 1;
    return cors && name.n > 15 && pc_str_ieq_c(pc_str_make(name.p, 15), "access-control-");
}

/* The response head sent to the client; sets r->download's framing. */
static int build_response_head(pc_req_t *r, uint8_t *out_kind)
{
    const pc_http_response_t *s = &r->resp;
    const pc_http_header_t *h = s->headers;
    int v10 = r->http.minor == 0;
    uint8_t out = PC_BODY_NONE;
    switch (s->body) {
    case PC_BODY_LENGTH:
        out = PC_BODY_LENGTH;
        break;
    case PC_BODY_CHUNKED:
    case PC_BODY_CLOSE:
        /* HTTP/1.0 clients cannot read chunked: delimit by closing. */
        out = v10 ? PC_BODY_CLOSE : PC_BODY_CHUNKED;
        break;
    default:
        break;
    }
    if (out == PC_BODY_CLOSE || !r->http.keep_alive || r->w->draining)
        r->close_after = 1;
    size_t cap =
        s->reason.n + fields_size(h, s->nheaders) + ADDED_FIELDS + pc_req_added_headers_size(r);
    pc_wbuf_t o = {pc_arena_alloc(&r->arena, cap), 0, cap};
    const pc_sechdr_conf_t *sec = r->route->security_headers;
    int cors = r->route->cors_policy != NULL;
    if (!o.p)
        return -1;
    pc_wb_cstr(&o, "HTTP/1.1 ");
    pc_wb_u64(&o, s->status);
    pc_wb_put(&o, " ", 1);
    pc_wb_str(&o, s->reason.n ? s->reason : pc_str_cstr(pc_http_reason(s->status)));
    pc_wb_put(&o, "\r\n", 2);
    int has_date = 0, has_rid = 0;
    const pc_http_header_t *cl = NULL;
    for (uint32_t i = 0; i < s->nheaders; i++) {
        if (h[i].id == PC_HDR_CONTENT_LENGTH)
            cl = &h[i];
        if ((h[i].flags & (PC_HDR_F_HOP | PC_HDR_F_DROP)) || dropped(h[i].name, sec, cors))
            continue;
        has_date |= h[i].id == PC_HDR_DATE;
        has_rid |= h[i].id == PC_HDR_X_REQUEST_ID;
        pc_wb_str(&o, h[i].name);
        pc_wb_put(&o, ": ", 2);
        pc_wb_str(&o, h[i].value);
        pc_wb_put(&o, "\r\n", 2);
    }
    if (!has_date)
        put_field(&o, "Date", pc_str_cstr(pc_worker_date(r->w)));
    if (!has_rid)
        put_field(&o, "X-Request-Id", pc_str_make(r->id, r->id_len));
    pc_req_put_added_headers(r, &o);
    if (out == PC_BODY_LENGTH) {
        pc_wb_cstr(&o, "Content-Length: ");
        pc_wb_u64(&o, (uint64_t)s->content_length);
        pc_wb_put(&o, "\r\n", 2);
    } else if (out == PC_BODY_CHUNKED) {
        pc_wb_cstr(&o, "Transfer-Encoding: chunked\r\n");
    } else if (cl && (r->http.method_id == PC_M_HEAD || s->status == 304)) {
        /* describes the representation, not this (empty) message */
        put_field(&o, "Content-Length", cl->value);
    }
    if (r->close_after)
        pc_wb_cstr(&o, "Connection: close\r\n");
    else if (v10)
        pc_wb_cstr(&o, "Connection: keep-alive\r\n");
    pc_wb_put(&o, "\r\n", 2);
    if (!pc_wb_ok(&o))
        return -1;
    *out_kind = out;
    r->download.pre = o.p;
    r->download.pre_len = o.n;
    return 0;
}

/* ---- upstream connection handling ---- */

void pc_proxy_detach(pc_req_t *r, int reusable)
{
    pc_upconn_t *u = r->up;
    if (!u)
        return;
    r->up = NULL;
    pc_upconn_release(u, reusable);
}

/* Runs request_body filters on each slice of the upload. */
static int upload_data(void *arg, const char *p, size_t n, int last)
{
    pc_req_t *r = arg;
    const pc_chain_t *ch = &r->route->chain;
    for (size_t i = 0; i < ch->n; i++) {
        const pc_filter_t *f = &ch->filters[i];
        if (!f->ops->request_body)
            continue;
        pc_filter_rc_e rc = f->ops->request_body(r, f->conf, r->filter_state[i], p, n, last);
        if (rc == PC_FILTER_CONTINUE)
            continue;
        if (rc != PC_FILTER_RESPOND)
            pc_req_respond(r, PC_REPLY_internal_error, "filter error");
        return -1;
    }
    return 0;
}

/* The upload relay reading the client's body, written to the upstream with
 * framing out after pre (PC_BODY_NONE: into on_data only, a held body). */
static void client_relay(pc_req_t *r, int out, const char *pre, size_t pre_len)
{
    const pc_http_request_t *h = &r->http;
    pc_relay_init(&r->upload, &r->conn->sock, &r->conn->in, NULL, h->body, h->content_length, out,
                  pre, pre_len);
    if (h->body == PC_BODY_CHUNKED) {
        /* a dry-run route lets the body through and flags it at the end */
        r->upload.limit = r->route->dry_run ? -1 : r->route->limits.max_body;
        pc_chunked_init(&r->upload.chunked, (uint32_t)r->route->limits.max_header_bytes);
    }
}

static void upload_init(pc_req_t *r)
{
    const pc_http_request_t *h = &r->http;
    if (r->hold_done) {
        /* the whole body is in memory, sent after the head */
        pc_relay_init(&r->upload, NULL, NULL, NULL, PC_BODY_NONE, 0, PC_BODY_LENGTH, r->up_head,
                      r->up_head_len);
        r->upload.held = r->hbuf;
        r->upload.held_len = r->hbuf_len;
        r->upload.total = r->hbuf_len;
        return;
    }
    if (r->hold_overflow && r->upload.src) {
        /* what was read goes first, then the rest streams as usual */
        pc_relay_forward(&r->upload, h->body, r->up_head, r->up_head_len, r->hbuf, r->hbuf_len);
    } else {
        client_relay(r, h->body, r->up_head, r->up_head_len);
    }
    r->upload.on_data = NULL;
    for (size_t i = 0; i < r->route->chain.n; i++) {
        if (r->route->chain.filters[i].ops->request_body) {
            r->upload.on_data = upload_data;
            r->upload.arg = r;
        }
    }
}

/* Attaches a connection (fresh: never one from the pool). */
static int attach(pc_req_t *r, int fresh, pc_acquire_e *why)
{
    pc_upstream_rt_t *rt = &r->snap->ups[r->route->up->index];
    pc_upconn_t *u = pc_upconn_acquire(r->w, rt, r, &r->servers_tried, fresh, why);
    if (!u)
        return -1;
    r->up = u;
    r->tries++;
    r->upload.dst = &u->sock;
    r->up_start_us = pc_now_us();
    return 0;
}

typedef enum {
    F_CONNECT,         /* could not connect: try another server */
    F_CONNECT_TIMEOUT, /* same, after connect_timeout */
    F_RESET,           /* closed or reset before any response byte */
    F_TIMEOUT,         /* no response head within response_timeout */
    F_BAD_RESPONSE     /* malformed response head */
} failure_e;

/* Retries when the failure allows it, else answers 502/504. */
static int upstream_failed(pc_req_t *r, failure_e why, const char *detail)
{
    const pc_upstream_conf_t *uc = r->route->up;
    if (r->up)
        pc_upconn_outcome(r->up, 0);
    pc_proxy_detach(r, 0);
    int no_body = r->http.body == PC_BODY_NONE ||
                  (r->http.body == PC_BODY_LENGTH && r->http.content_length == 0);
    int again = 0;
    if (why == F_CONNECT || why == F_CONNECT_TIMEOUT) {
        /* nothing was sent: any method may go to the next server */
        again = r->tries < uc->n_servers;
    } else if (why == F_RESET && !r->resp_bytes && !r->retried) {
        /* Sent but unanswered (typically a pooled connection the upstream
         * had just closed): retry once on a fresh connection, only when
         * replaying cannot do harm. */
        again = pc_http_method_idempotent(r->http.method_id) && no_body;
        r->retried = 1;
        r->servers_tried = 0;
    }
    if (again) {
        pc_acquire_e none;
        upload_init(r);
        if (attach(r, 1, &none) == 0)
            return MOVED;
    }
    r->upstream_us = pc_now_us() - r->up_start_us;
    pc_reply_e reply = why == F_CONNECT_TIMEOUT || why == F_TIMEOUT ? PC_REPLY_gateway_timeout
                                                                    : PC_REPLY_bad_gateway;
    pc_metrics_upstream(&r->w->metrics, uc->metric_id, reply == PC_REPLY_bad_gateway ? 502 : 504);
    pc_req_respond(r, reply, detail);
    return ENDED;
}

/* Ends the request without a (further) response: the client connection is
 * closed and the upstream connection dropped. */
static int abort_request(pc_req_t *r, const char *detail)
{
    if (!r->detail)
        r->detail = detail;
    pc_proxy_detach(r, 0);
    r->close_after = 1;
    r->state = PC_RS_DONE;
    return ENDED;
}

/* The client's body failed (closed early, bad framing, over max_body):
 * answered, or cut when a response has started. */
static void client_body_failed(pc_req_t *r, int rc)
{
    if (rc == PC_RELAY_E_SRC) {
        r->body_unread = 0;
        abort_request(r, "client closed during the request body");
        return;
    }
    pc_reply_e reply = rc == PC_RELAY_E_FRAMING ? PC_REPLY_bad_request : PC_REPLY_content_too_large;
    const char *detail =
        rc == PC_RELAY_E_FRAMING ? pc_http_err_detail(r->upload.err) : "body over max_body";
    if (!r->response_started)
        pc_req_respond(r, reply, detail);
    else
        abort_request(r, detail);
    r->close_after = 1;
}

/* ---- steps ---- */

static int step_connect(pc_req_t *r)
{
    pc_upconn_t *u = r->up;
    if (u->state != PC_UP_CONNECTING)
        return MOVED;
    if (u->timed_out)
        return upstream_failed(r, F_CONNECT_TIMEOUT, "upstream connect timeout");
    if (!u->sock.wr_ready)
        return WAIT;
    int err = pc_upconn_connected(u);
    if (err)
        return upstream_failed(r, F_CONNECT, "upstream connect failed");
    pc_sock_arm(&u->sock, r->route->up->response_timeout);
    return MOVED;
}

static void send_continue(pc_req_t *r)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec v = {(void *)msg, sizeof(msg) - 1};
    r->continue_sent = 1;
    /* 25 bytes into an idle connection's empty send buffer: it fits, or the
     * connection is broken, which the response write will find out. */
    if (r->conn->sock.wr_ready)
        pc_sock_writev(&r->conn->sock, &v, 1);
}

/* limits.min_body_rate: a client that sends its body slower than the rate,
 * measured over windows of the rate's period, is cut with 408 (slow POST).
 * Time spent waiting on the upstream (back-pressure) does not count. */
static int too_slow(pc_req_t *r)
{
    const pc_rate_t *rate = &r->route->limits.min_body_rate;
    pc_relay_t *up = &r->upload;
    int64_t now = pc_worker_now_ms(r->w);
    if (rate->count <= 0 || up->src_done)
        return 0;
    if (r->rate_start == 0 || pc_relay_pending(up)) {
        r->rate_start = now;
        r->rate_base = up->total;
        return 0;
    }
    if (now - r->rate_start < rate->period_ms)
        return 0;
    if (up->total - r->rate_base < (uint64_t)rate->count) {
        if (!r->response_started)
            pc_req_respond(r, PC_REPLY_request_timeout, "request body slower than min_body_rate");
        else
            abort_request(r, "request body slower than min_body_rate");
        r->close_after = 1;
        return 1;
    }
    r->rate_start = now;
    r->rate_base = up->total;
    return 0;
}

static int step_upload(pc_req_t *r)
{
    pc_relay_t *up = &r->upload;
    if (up->done)
        return WAIT;
    if (r->http.expect_continue && !r->continue_sent && !up->src_done &&
        pc_buf_unread(&r->conn->in) == 0 && up->pre_queued)
        send_continue(r);
    uint64_t before = up->written + up->total;
    int rc = pc_relay_step(up);
    if (rc == PC_RELAY_DONE) {
        r->body_unread = 0;
        if (r->route->dry_run && up->total > (uint64_t)r->route->limits.max_body)
            pc_req_block(r, PC_REPLY_content_too_large, "size", "body over max_body");
        pc_conn_arm(r->conn, r->cfg->limits.idle_timeout);
        /* response_timeout counts from the end of the request */
        if (!r->resp_parsed)
            pc_sock_arm(&r->up->sock, r->route->up->response_timeout);
        return MOVED;
    }
    if (rc == PC_RELAY_AGAIN) {
        if (too_slow(r))
            return ENDED;
        return up->written + up->total != before ? MOVED : WAIT;
    }
    switch (rc) {
    case PC_RELAY_E_DST:
        if (r->resp_parsed) {
            /* The upstream answered and stopped reading: finish the response,
             * then close (the rest of the body is never read). */
            up->done = 1;
            r->close_after = 1;
            r->up_unusable = 1;
            return MOVED;
        }
        return upstream_failed(r, F_RESET, "upstream closed while receiving the request");
    case PC_RELAY_E_SRC:
    case PC_RELAY_E_FRAMING:
    case PC_RELAY_E_LIMIT:
        client_body_failed(r, rc);
        return ENDED;
    case PC_RELAY_E_ABORT:
    default:
        /* a request_body filter answered (pc_req_respond already ran) */
        r->close_after = 1;
        return ENDED;
    }
}

static int run_response_filters(pc_req_t *r)
{
    const pc_chain_t *ch = &r->route->chain;
    for (size_t i = 0; i < ch->n; i++) {
        const pc_filter_t *f = &ch->filters[i];
        if (!f->ops->response_headers)
            continue;
        pc_filter_rc_e rc = f->ops->response_headers(r, f->conf, r->filter_state[i]);
        if (rc == PC_FILTER_RESPOND)
            return -1;
        if (rc != PC_FILTER_CONTINUE) {
            pc_req_respond(r, PC_REPLY_internal_error, "filter error");
            return -1;
        }
    }
    return 0;
}

/* The response head is complete at u->in[0, end). */
static int start_response(pc_req_t *r, size_t end)
{
    pc_upconn_t *u = r->up;
    r->resp_parsed = 1;
    r->upstream_us = pc_now_us() - r->up_start_us;
    r->status = r->resp.status;
    pc_upconn_outcome(u, r->status < 502 || r->status > 504);
    pc_metrics_upstream(&r->w->metrics, r->route->up->metric_id, r->status);
    if (run_response_filters(r) != 0)
        return ENDED;
    uint8_t out;
    if (build_response_head(r, &out) != 0) {
        pc_req_respond(r, PC_REPLY_internal_error, "response head too large");
        return ENDED;
    }
    const char *pre = r->download.pre;
    size_t pre_len = r->download.pre_len;
    u->in.pin = u->in.rpos = (uint32_t)end;
    pc_relay_init(&r->download, &u->sock, &u->in, &r->conn->sock, r->resp.body,
                  r->resp.content_length, out, pre, pre_len);
    r->response_started = 1;
    if (!r->upload.done)
        pc_conn_arm(r->conn, r->cfg->limits.idle_timeout);
    return MOVED;
}

static int step_response_head(pc_req_t *r)
{
    pc_upconn_t *u = r->up;
    pc_buf_t *b = &u->in;
    if (u->state != PC_UP_ACTIVE)
        return WAIT;
    for (;;) {
        if (b->data && b->wpos > 0) {
            size_t end;
            int rc = pc_http_scan(&r->resp_scan, b->data, b->wpos, NULL, &end);
            if (rc == PC_HTTP_OK) {
                /* Leave room for body bytes after the head, which stays put. */
                if (b->cap - end < 4096 &&
                    pc_buf_grow(b, (uint32_t)end + PC_BUF_SIZE, &r->w->bufs) != 0)
                    return abort_request(r, "out of memory");
                uint32_t cap = r->resp_scan.lines + 1;
                pc_http_header_t *hdrs = pc_arena_alloc(&r->arena, cap * sizeof(*hdrs));
                if (!hdrs) {
                    pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
                    return ENDED;
                }
                rc = pc_http_parse_response(b->data + r->resp_scan.start, end - r->resp_scan.start,
                                            (pc_method_e)r->http.method_id, hdrs, cap, &r->resp);
                if (rc != PC_HTTP_OK)
                    return upstream_failed(r, F_BAD_RESPONSE, pc_http_err_detail(rc));
                if (r->resp.status == 101)
                    return upstream_failed(r, F_BAD_RESPONSE, "unrequested protocol switch");
                if (r->resp.status < 200) {
                    /* interim response: drop it and read on */
                    memmove(b->data, b->data + end, b->wpos - end);
                    b->wpos -= (uint32_t)end;
                    b->rpos = 0;
                    memset(&r->resp_scan, 0, sizeof(r->resp_scan));
                    continue;
                }
                return start_response(r, end);
            }
            if (rc < 0)
                return upstream_failed(r, F_BAD_RESPONSE, pc_http_err_detail(rc));
        }
        if (u->sock.eof)
            return upstream_failed(r, F_RESET, "upstream closed before responding");
        if (u->timed_out) {
            u->timed_out = 0;
            /* while the client is still uploading, its body_timeout governs */
            if (r->upload.done)
                return upstream_failed(r, F_TIMEOUT, "upstream response timeout");
        }
        if (!u->sock.rd_ready)
            return WAIT;
        if (pc_buf_ensure(b, &r->w->bufs) != 0)
            return abort_request(r, "out of memory");
        if (pc_buf_space(b) == 0) {
            if (b->cap >= PC_UP_HEAD_MAX)
                return upstream_failed(r, F_BAD_RESPONSE, "upstream response head too large");
            if (pc_buf_grow(b, PC_UP_HEAD_MAX, &r->w->bufs) != 0)
                return abort_request(r, "out of memory");
        }
        ssize_t n = pc_sock_read(&u->sock, b->data + b->wpos, pc_buf_space(b));
        if (n == PC_IO_AGAIN)
            return WAIT;
        if (n < 0)
            return upstream_failed(r, F_RESET, "upstream connection reset");
        if (n > 0)
            r->resp_bytes = 1;
        b->wpos += (uint32_t)n;
    }
}

static int step_download(pc_req_t *r)
{
    pc_relay_t *dl = &r->download;
    uint64_t before = dl->written;
    int rc = pc_relay_step(dl);
    r->bytes_out = dl->written;
    if (rc == PC_RELAY_AGAIN) {
        if (r->up->timed_out) {
            r->up->timed_out = 0;
            /* blocked on a slow client: that is the client timeout's business */
            if (!pc_relay_pending(dl))
                return abort_request(r, "upstream timeout during the response body");
        }
        return dl->written != before ? MOVED : WAIT;
    }
    if (rc == PC_RELAY_DONE) {
        pc_upconn_t *u = r->up;
        int reusable = r->resp.keep_alive && r->upload.done && !r->up_unusable &&
                       pc_buf_unread(&u->in) == 0 && r->resp.body != PC_BODY_CLOSE;
        u->in.pin = u->in.rpos = u->in.wpos = 0;
        pc_proxy_detach(r, reusable);
        if (!r->upload.done)
            r->close_after = 1; /* the rest of the request body was never read */
        r->state = PC_RS_DONE;
        return ENDED;
    }
    if (rc == PC_RELAY_E_DST)
        return abort_request(r, "client closed during the response");
    const char *why = rc == PC_RELAY_E_FRAMING ? "invalid chunked response from upstream"
                                               : "upstream closed during the response";
    if (dl->written == 0) {
        /* nothing reached the client yet: it can still get a proper 502 */
        r->response_started = 0;
        pc_req_respond(r, PC_REPLY_bad_gateway, why);
        return ENDED;
    }
    return abort_request(r, why);
}

/* Checks the chunked body bytes that arrived with the head before the
 * upstream is contacted, so that a malformed or oversized body that is
 * already here (which is where smuggling payloads travel) never reaches it.
 * The rest of the body is checked as it streams. 0, or -1 after answering. */
static int precheck_chunked(pc_req_t *r)
{
    const pc_buf_t *b = &r->conn->in;
    pc_chunked_t d;
    pc_chunked_init(&d, (uint32_t)r->route->limits.max_header_bytes);
    const char *p = b->data + b->rpos;
    size_t left = pc_buf_unread(b);
    while (left) {
        size_t used, dlen;
        const char *data;
        int rc = pc_chunked_next(&d, p, left, &used, &data, &dlen);
        if (rc < 0) {
            pc_req_respond(r, PC_REPLY_bad_request, pc_http_err_detail(rc));
            return -1;
        }
        if (d.total > (uint64_t)r->route->limits.max_body) {
            pc_req_respond(r, PC_REPLY_content_too_large, "body over max_body");
            return -1;
        }
        if (rc == PC_CHUNK_DONE)
            break;
        p += used;
        left -= used;
    }
    return 0;
}

/* ---- a held body ---- */

/* The relay's on_data while the body is read into memory. */
static int hold_data(void *arg, const char *p, size_t n, int last)
{
    pc_req_t *r = arg;
    (void)last;
    if (n == 0)
        return 0;
    if (r->hbuf_len + n > (uint64_t)r->hold_limit) {
        if (r->hold_reject &&
            pc_req_block(r, PC_REPLY_content_too_large, r->hold_blocked_by, r->hold_detail) != 0)
            return -1;        /* answered */
        r->hold_overflow = 1; /* kept (one slice past the limit), then the rest streams */
    }
    if (r->hbuf_len + n > r->hbuf_cap) {
        size_t cap = r->hbuf_cap ? r->hbuf_cap * 2 : 16384;
        while (cap < r->hbuf_len + n)
            cap *= 2;
        char *b = realloc(r->hbuf, cap);
        if (!b) {
            pc_req_respond(r, PC_REPLY_service_unavailable, "out of memory holding the body");
            return -1;
        }
        r->hbuf = b;
        r->hbuf_cap = cap;
    }
    memcpy(r->hbuf + r->hbuf_len, p, n);
    r->hbuf_len += n;
    return r->hold_overflow ? -1 : 0;
}

static void begin(pc_req_t *r);

void pc_proxy_hold_run(pc_req_t *r)
{
    pc_relay_t *up = &r->upload;
    if (r->client_timed_out) {
        r->client_timed_out = 0;
        pc_req_respond(r, PC_REPLY_request_timeout, "client body timeout");
        r->close_after = 1;
        return;
    }
    int rc = pc_relay_step(up);
    switch (rc) {
    case PC_RELAY_AGAIN:
        too_slow(r);
        return;
    case PC_RELAY_DONE:
        r->body_unread = 0;
        r->hold_done = 1;
        pc_conn_arm(r->conn, r->cfg->limits.idle_timeout);
        /* the request_body filters see the whole body at once; upstream, it
         * is framed with its length */
        if (upload_data(r, r->hbuf ? r->hbuf : "", r->hbuf_len, 1) != 0)
            return;
        r->http.body = PC_BODY_LENGTH;
        r->http.content_length = (int64_t)r->hbuf_len;
        begin(r);
        return;
    case PC_RELAY_E_ABORT:
        if (!r->hold_overflow) {
            r->close_after = 1; /* answered by hold_data; the rest is never read */
            return;
        }
        if (upload_data(r, r->hbuf, r->hbuf_len, 0) != 0) {
            r->close_after = 1;
            return;
        }
        begin(r);
        return;
    default: /* E_SRC, E_FRAMING, E_LIMIT */
        client_body_failed(r, rc);
        return;
    }
}

/* Reads the body into memory before the upstream is contacted. */
static void hold(pc_req_t *r)
{
    const pc_http_request_t *h = &r->http;
    if (h->body == PC_BODY_LENGTH && h->content_length > r->hold_limit) {
        /* known to be over the limit: refused, or streamed as it comes */
        if (r->hold_reject &&
            pc_req_block(r, PC_REPLY_content_too_large, r->hold_blocked_by, r->hold_detail) != 0)
            return;
        r->hold_overflow = 1;
        begin(r);
        return;
    }
    r->state = PC_RS_BODY;
    client_relay(r, PC_BODY_NONE, NULL, 0);
    r->upload.on_data = hold_data;
    r->upload.arg = r;
    if (h->expect_continue && pc_buf_unread(&r->conn->in) == 0)
        send_continue(r);
    pc_conn_arm(r->conn, r->cfg->limits.body_timeout);
    pc_proxy_hold_run(r);
}

void pc_proxy_start(pc_req_t *r)
{
    const pc_http_request_t *h = &r->http;
    if (h->body == PC_BODY_CHUNKED && precheck_chunked(r) != 0)
        return;
    if (r->hold_limit &&
        (h->body == PC_BODY_CHUNKED || (h->body == PC_BODY_LENGTH && h->content_length > 0))) {
        hold(r);
        return;
    }
    begin(r);
}

/* Connects upstream and starts relaying. */
static void begin(pc_req_t *r)
{
    const pc_http_request_t *h = &r->http;
    r->state = PC_RS_PROXY;
    r->upstream_name = r->route->up->name;
    r->upstream_us = -1;
    if (build_request_head(r) != 0) {
        pc_req_respond(r, PC_REPLY_internal_error, "out of memory");
        return;
    }
    upload_init(r);
    pc_acquire_e why;
    if (attach(r, 0, &why) != 0) {
        if (why == PC_ACQ_OPEN)
            pc_req_respond(r, PC_REPLY_service_unavailable, "circuit open");
        else if (why == PC_ACQ_DOWN)
            pc_req_respond(r, PC_REPLY_service_unavailable, "no healthy upstream server");
        else if (why == PC_ACQ_NOMEM)
            pc_req_respond(r, PC_REPLY_service_unavailable, "out of memory");
        else
            pc_req_respond(r, PC_REPLY_bad_gateway, "no upstream server reachable");
        return;
    }
    pc_conn_arm(r->conn, h->body == PC_BODY_NONE || r->hold_done ? r->cfg->limits.idle_timeout
                                                                 : r->cfg->limits.body_timeout);
    pc_proxy_run(r);
}

void pc_proxy_run(pc_req_t *r)
{
    for (;;) {
        if (r->state != PC_RS_PROXY)
            return;
        if (r->client_timed_out) {
            r->client_timed_out = 0;
            if (!r->upload.done && !r->resp_parsed) {
                pc_req_respond(r, PC_REPLY_request_timeout, "client body timeout");
                r->close_after = 1;
                return;
            }
            if (r->resp_parsed && pc_relay_pending(&r->download)) {
                abort_request(r, "client send timeout");
                return;
            }
        }
        /* A client that hung up while its complete request waits for the
         * upstream gets it cancelled (logged 499), like nginx does. */
        if (r->upload.done && !r->response_started && r->conn->sock.rdhup &&
            pc_sock_peer_gone(&r->conn->sock)) {
            abort_request(r, "client closed before the response");
            return;
        }
        int moved = 0, rc;
        if ((rc = step_connect(r)) == ENDED)
            continue;
        if (r->up->state != PC_UP_ACTIVE)
            return;
        if ((rc = step_upload(r)) == ENDED)
            continue;
        moved |= rc;
        rc = r->resp_parsed ? step_download(r) : step_response_head(r);
        if (rc == ENDED)
            continue;
        moved |= rc;
        if (!moved)
            return;
    }
}
