/*
 * waf.h — a request's data into a WAF transaction, and the inspection of
 * it: what the `waf` filter (filters/waf.c) and the rule-test tool
 * (tests/waf/waf_check.c) share, so both see a request the same way.
 *
 * Phase 1 sees the head: method, protocol, request line, target, path,
 * query arguments, headers, cookies, the client address. Phase 2 adds the
 * body, parsed by its declared type: urlencoded and multipart fields and
 * JSON values as ARGS_POST, multipart file names as FILES, and the body
 * itself (except multipart, whose file contents are never inspected) as
 * REQUEST_BODY.
 */
#ifndef PC_WAF_H
#define PC_WAF_H

#include "http1.h"
#include "waf_eval.h"

/* How the WAF treats a request body, from its Content-Type. */
typedef enum {
    PC_WAF_BODY_NONE = 0,   /* not inspected (none, octet-stream, images, archives, ...) */
    PC_WAF_BODY_URLENCODED, /* application/x-www-form-urlencoded */
    PC_WAF_BODY_MULTIPART,  /* multipart/form-data */
    PC_WAF_BODY_JSON,       /* application/json, application/...+json */
    PC_WAF_BODY_TEXT        /* text/... or XML: REQUEST_BODY only */
} pc_waf_body_e;

/* Starts a transaction: the TX variables every rule set may read —
 * paranoia_level, anomaly_threshold, and anomaly_score at 0. */
int pc_waf_tx_start(pc_waf_tx_t *tx, int paranoia, int threshold);

/* What the head gives phase 1 (REQUEST_FILENAME is the path as received,
 * not normalised, so that rules see "../"). remote: the client address as
 * text. 0; PC_WAFB_TOO_MANY when the query string has more arguments than
 * the WAF inspects, PC_WAF_TOO_MANY_COOKIES when a Cookie header has more
 * cookies (the request must not pass uninspected); -1 when out of memory. */
#define PC_WAF_TOO_MANY_COOKIES (-5)
int pc_waf_collect_head(pc_waf_tx_t *tx, const pc_http_request_t *h, const char *remote);

/* The body kind of a request (from its Content-Type header). */
int pc_waf_body_kind(const pc_http_request_t *h);

/* Parses body (n bytes, complete) as kind into the transaction. Returns a
 * pc_wafb_rc_e: 0, or why the body is not what it claims to be (then
 * REQBODY_ERROR is "1"). The transaction may keep pointers into body. */
int pc_waf_collect_body(pc_waf_tx_t *tx, const pc_http_request_t *h, int kind, const char *body,
                        size_t n);

#endif
