/*
 * request.h — one HTTP request from head to access-log line.
 *
 * Ownership: the client connection owns its current request; the request
 * owns its arena (everything it allocates), its upstream connection while
 * attached, and a counted use of the config snapshot it started with. A
 * suspended request is additionally held by the filter that suspended it,
 * which must call pc_req_resume() exactly once.
 *
 * The request is never freed inside a socket callback's call chain other
 * than at the very end of the top-level callback (see conn.c), so code on
 * the request path may use r freely until it returns.
 */
#ifndef PC_REQUEST_H
#define PC_REQUEST_H

#include <stdint.h>
#include <sys/time.h>

#include "arena.h"
#include "cidr.h"
#include "filter.h"
#include "http1.h"
#include "pc_types.h"
#include "relay.h"

/* X(name, status, blocked_by): why the gateway answered a request itself.
 * The name is the "error" field of the JSON body; blocked_by is the metrics
 * and access-log reason (NULL: not a block, e.g. an upstream failure). */
#define PC_REPLY_REASONS(X)                 \
    X(bad_request, 400, "malformed")        \
    X(unauthorized, 401, NULL)              \
    X(forbidden, 403, NULL)                 \
    X(not_found, 404, NULL)                 \
    X(method_not_allowed, 405, "malformed") \
    X(request_timeout, 408, "malformed")    \
    X(content_too_large, 413, "size")       \
    X(uri_too_long, 414, "size")            \
    X(expectation_failed, 417, "malformed") \
    X(too_many_requests, 429, NULL)         \
    X(header_fields_too_large, 431, "size") \
    X(internal_error, 500, NULL)            \
    X(bad_gateway, 502, NULL)               \
    X(service_unavailable, 503, NULL)       \
    X(gateway_timeout, 504, NULL)           \
    X(http_version_not_supported, 505, "malformed")

#define PC_REQ_FLAGS_MAX 4

typedef enum {
#define X(name, status, blocked) PC_REPLY_##name,
    PC_REPLY_REASONS(X)
#undef X
        PC_REPLY_COUNT
} pc_reply_e;

/* Where the request is in its life. */
typedef enum {
    PC_RS_FILTERS = 0, /* request filters running (or suspended) */
    PC_RS_BODY,        /* reading a held body in full before the upstream sees it */
    PC_RS_PROXY,       /* talking to the upstream */
    PC_RS_REPLY,       /* sending a local reply */
    PC_RS_DONE         /* finished: the connection will log and free it */
} pc_req_state_e;

struct pc_req_s {
    pc_conn_t *conn;
    pc_worker_t *w;
    struct pc_snap_s *snap; /* the worker's snapshot this request runs on (counted) */
    pc_config_t *cfg;       /* snap->cfg */
    const struct pc_listener_conf_s *listener; /* where it arrived */
    const pc_route_conf_t *route;
    pc_arena_t arena;

    pc_http_request_t http;     /* slices into the connection's buffer */
    pc_str_t path;              /* normalised path, in the arena */
    pc_str_t route_path;        /* path without ";params": what routes match */
    pc_ip_t client_ip;          /* after trusted proxies */
    char id[PC_REQUEST_ID_MAX]; /* X-Request-Id (kept if well formed, else generated) */
    size_t id_len;

    struct timeval start; /* wall clock (the loop's), for the log's ts */
    int64_t start_us;     /* monotonic, for durations */
    uint8_t state;        /* pc_req_state_e */

    /* filter chain */
    uint32_t filter_next; /* index of the next filter to run */
    void **filter_state;  /* per filter, allocated when the chain starts */
    unsigned suspended : 1;
    unsigned abandoned : 1;        /* the client left while suspended */
    unsigned close_after : 1;      /* close the client connection after this request */
    unsigned body_unread : 1;      /* the client may still send body bytes */
    unsigned response_started : 1; /* a response head was committed to the client */
    unsigned continue_sent : 1;    /* "100 Continue" written */
    unsigned client_timed_out : 1; /* the client socket's timeout fired */

    /* what controls on a dry-run route would have done (pc_req_block) */
    struct {
        const char *reason; /* blocked_by value */
        const char *detail;
        int status;
    } flags[PC_REQ_FLAGS_MAX];
    uint8_t nflags;

    /* header lines the gateway adds to the response ("Name: value\r\n"...) */
    char *resp_extra;
    uint32_t resp_extra_len, resp_extra_cap;
    /* ... and to the request sent upstream */
    char *req_extra;
    uint32_t req_extra_len, req_extra_cap;
    const char *user;                    /* who the client is (the access log's user), or NULL */
    const struct pc_waf_hit_s *waf_hits; /* WAF rules that matched (logged), or NULL */
    unsigned nwaf_hits;
    struct json_t *jwt_claims; /* the verified token's claims (a reference), or NULL */

    /* outcome */
    int status;         /* status sent (or to be sent) to the client */
    const char *detail; /* why (for the access log), static string */
    const char *blocked_by;
    uint64_t bytes_in;  /* request bytes received: head + body */
    uint64_t bytes_out; /* response bytes sent to the client */

    /* proxying */
    pc_upconn_t *up;
    const char *upstream_name;
    int64_t upstream_us; /* time from sending to the upstream until its response head */
    int64_t up_start_us;
    unsigned tries;           /* upstream connections attached */
    unsigned servers_tried;   /* bitmask of servers (first 32) tried for this request */
    unsigned retried : 1;     /* the one retry after a reset has been used */
    unsigned resp_bytes : 1;  /* the upstream sent at least one response byte */
    unsigned resp_parsed : 1; /* the upstream's final response head is parsed */
    unsigned up_unusable : 1; /* the upstream connection cannot be pooled */
    pc_relay_t upload;        /* client -> upstream */
    pc_relay_t download;      /* upstream (or a local reply) -> client */
    pc_http_scan_t resp_scan; /* response head scanner */
    pc_http_response_t resp;  /* slices into the upstream connection's buffer */
    int64_t rate_start;       /* ms: start of the current min_body_rate window */
    uint64_t rate_base;       /* body bytes received when that window started */
    char *up_head;            /* the request head as sent upstream (kept for a retry) */
    size_t up_head_len;

    /* a body held back until complete (pc_req_hold_body) */
    int64_t hold_limit; /* 0: the body streams */
    const char *hold_blocked_by, *hold_detail;
    unsigned hold_reject : 1;   /* over hold_limit: 413 (else the rest streams) */
    unsigned hold_done : 1;     /* hbuf holds the whole body */
    unsigned hold_overflow : 1; /* the body passed hold_limit: it streams, uninspected */
    char *hbuf;                 /* malloc'd: can be larger than the arena allows */
    size_t hbuf_len, hbuf_cap;
};

/* Sets up r for a request just parsed on conn (head already parsed into
 * r->http). Returns 0, or -1 when out of memory. */
int pc_req_init(pc_req_t *r, pc_conn_t *conn);

/* Runs the request from its parsed head: normalise, route, filters, proxy. */
void pc_req_start(pc_req_t *r);

/* Makes progress after a socket event (either side). */
void pc_req_run(pc_req_t *r);

/* Answers the request locally with a JSON error body (see PC_REPLY_REASONS).
 * detail is a static string for the access log. Safe to call from a filter
 * (then return PC_FILTER_RESPOND) or from the proxy. If a response has
 * already started, the client connection is closed instead. */
void pc_req_respond(pc_req_t *r, pc_reply_e reason, const char *detail);

/* The same, with error (JSON-safe, e.g. [a-z0-9_]) as the body's "error"
 * field instead of the reason's name (NULL: the name). */
void pc_req_respond_as(pc_req_t *r, pc_reply_e reason, const char *error, const char *detail);

/* A control refuses the request for blocked_by (a reason of
 * portcullis_blocked_total): it is answered with reply (returns -1; a filter
 * then returns PC_FILTER_RESPOND), unless its route is in dry-run mode: then
 * what would have happened is recorded for the security log and metrics and
 * the request goes on (returns 0). */
int pc_req_block(pc_req_t *r, pc_reply_e reply, const char *blocked_by, const char *detail);

/* Records what a control would have done without doing it (dry run, WAF
 * detect mode): the security log and the dry-run metrics show it. */
void pc_req_flag(pc_req_t *r, pc_reply_e reply, const char *blocked_by, const char *detail);

/* pc_req_block with the JSON body's "error" (NULL: the reply's name). */
int pc_req_block_as(pc_req_t *r, pc_reply_e reply, const char *error, const char *blocked_by,
                    const char *detail);

/* The client address of a request from peer with header fields h[0, n): the
 * peer itself unless trusted holds it; else the right-most X-Forwarded-For
 * entry (non-empty fields read last to first, their comma-separated entries
 * right to left) that trusted does not hold, or the last address read
 * before an entry that is not one (an empty entry included), or the
 * left-most entry when every one is trusted. */
pc_ip_t pc_req_forwarded_client(const pc_http_header_t *h, uint32_t n, const pc_cidr_set_t *trusted,
                                pc_ip_t peer);

/* The client address (after trusted proxies) as text: the connection's
 * own string, or formatted into buf (46 bytes). */
const char *pc_req_client_ip_str(const pc_req_t *r, char *buf);

/* Is the request's route in dry-run mode? Controls add the fields of a
 * refusal (WWW-Authenticate, Retry-After...) only when it is not: the
 * request then goes on, and a proxied response must not carry them. */
int pc_req_dry_run(const pc_req_t *r);

/* Adds a header line to the response, proxied or local (Name: value).
 * 0, or -1 when out of memory. */
int pc_req_add_response_header(pc_req_t *r, const char *name, pc_str_t value);

/* Adds a header line to the request sent upstream (before the proxy builds
 * its head). 0, or -1 when out of memory. */
int pc_req_add_request_header(pc_req_t *r, const char *name, pc_str_t value);

/* From request_headers: read the request body in full, up to limit bytes,
 * before anything goes upstream; request_body filters then see it in one
 * call (last = 1). A body over the limit is refused with 413 (reject:
 * pc_req_block with blocked_by and detail, so a dry-run route only flags
 * it), or streams on (hold_overflow set; request_body filters see what was
 * read, then the rest in pieces). */
void pc_req_hold_body(pc_req_t *r, int64_t limit, int reject, const char *blocked_by,
                      const char *detail);

/* Answers locally with an empty body and the added headers (e.g. 204 to a
 * CORS preflight). */
void pc_req_respond_empty(pc_req_t *r, int status, const char *detail);

/* Appends what every response of r gets: the added header lines and the
 * security headers of its route (HSTS on TLS listeners only). */
void pc_req_put_added_headers(pc_req_t *r, pc_wbuf_t *o);
size_t pc_req_added_headers_size(const pc_req_t *r);

/* The reply with this status (statuses are unique among them), or dflt. */
pc_reply_e pc_reply_for_status(int status, pc_reply_e dflt);

/* Answers a parse failure (negative pc_http_* code) locally. */
void pc_req_respond_http_error(pc_req_t *r, int rc);

/* Tears down a suspended request now (the filter holding it is told to
 * cancel); it is then finished like any other (logged with detail). */
void pc_req_cancel(pc_req_t *r, const char *detail);

/* Ends a suspension (see filter.h). */
void pc_req_resume(pc_req_t *r, pc_filter_rc_e rc);

/* The event loop of the request's worker (for filters that arm timers). */
struct event_base *pc_req_base(const pc_req_t *r);

/* Writes the access-log line and releases everything the request holds. */
void pc_req_finish(pc_req_t *r);

/* Microseconds on the monotonic clock. */
int64_t pc_now_us(void);

#endif
