/*
 * waf.c — see waf.h.
 */
#include "waf.h"

#include <string.h>
#include <strings.h>

#include "str.h"
#include "waf_body.h"

static const pc_str_t cookie_name = {"cookie", 6};
static const pc_str_t ctype_name = {"content-type", 12};

typedef struct {
    pc_waf_tx_t *tx;
    int args;        /* the collection arguments go to */
    int copy_names;  /* the parser's names, or values, last only as long as the call; */
    int copy_values; /* else they are in the input, or in an out buffer it fills once */
} sink_t;

/* Pairs from the body parsers are valid during the call only, unless the
 * parser is one that leaves them in place (see waf_body.h): copied then. */
static int sink(void *arg, int kind, const char *name, size_t nlen, const char *value, size_t vlen)
{
    sink_t *s = arg;
    int var = kind == PC_WAFB_COOKIE        ? PC_WV_REQUEST_COOKIES
              : kind == PC_WAFB_FILE        ? PC_WV_FILES
              : kind == PC_WAFB_PART_HEADER ? PC_WV_MULTIPART_PART_HEADERS
                                            : s->args;
    if (s->copy_names)
        name = pc_arena_strndup(s->tx->arena, name, nlen);
    if (s->copy_values)
        value = pc_arena_strndup(s->tx->arena, value, vlen);
    if (!name || !value || pc_waf_add(s->tx, var, name, nlen, value, vlen) != 0)
        return PC_WAFB_NOMEM;
    return 0;
}

int pc_waf_tx_start(pc_waf_tx_t *tx, int paranoia, int threshold)
{
    char p[24], t[24];
    p[pc_u64_dec((uint64_t)paranoia, p)] = 0;
    t[pc_u64_dec((uint64_t)threshold, t)] = 0;
    return pc_waf_setvar(tx, "paranoia_level", p) | pc_waf_setvar(tx, "anomaly_threshold", t) |
           pc_waf_setvar(tx, "anomaly_score", "0");
}

int pc_waf_collect_head(pc_waf_tx_t *tx, const pc_http_request_t *h, const char *remote)
{
    static const char *const protos[2] = {"HTTP/1.0", "HTTP/1.1"};
    const char *proto = protos[h->minor ? 1 : 0];
    int rc = 0;
    rc |= pc_waf_add(tx, PC_WV_REQUEST_METHOD, "REQUEST_METHOD", 14, h->method.p, h->method.n);
    rc |= pc_waf_add(tx, PC_WV_REQUEST_PROTOCOL, "REQUEST_PROTOCOL", 16, proto, 8);
    size_t ll = h->method.n + 1 + h->target.n + 9;
    char *line = pc_arena_alloc(tx->arena, ll + 1);
    if (!line)
        return -1;
    memcpy(line, h->method.p, h->method.n);
    line[h->method.n] = ' ';
    memcpy(line + h->method.n + 1, h->target.p, h->target.n);
    line[h->method.n + 1 + h->target.n] = ' ';
    memcpy(line + h->method.n + 2 + h->target.n, proto, 8);
    line[ll] = 0;
    rc |= pc_waf_add(tx, PC_WV_REQUEST_LINE, "REQUEST_LINE", 12, line, ll);
    rc |= pc_waf_add(tx, PC_WV_REQUEST_URI_RAW, "REQUEST_URI_RAW", 15, h->target.p, h->target.n);
    /* REQUEST_URI: path and query (an absolute-form target loses its
     * scheme and authority) */
    const char *uri = h->path.p ? h->path.p : h->target.p;
    size_t urin = h->target.n - (size_t)(uri - h->target.p);
    rc |= pc_waf_add(tx, PC_WV_REQUEST_URI, "REQUEST_URI", 11, uri, urin);
    rc |= pc_waf_add(tx, PC_WV_REQUEST_FILENAME, "REQUEST_FILENAME", 16, h->path.p, h->path.n);
    size_t b = h->path.n;
    while (b && h->path.p[b - 1] != '/')
        b--;
    rc |= pc_waf_add(tx, PC_WV_REQUEST_BASENAME, "REQUEST_BASENAME", 16, h->path.p + b,
                     h->path.n - b);
    if (h->query.p) {
        rc |= pc_waf_add(tx, PC_WV_QUERY_STRING, "QUERY_STRING", 12, h->query.p, h->query.n);
        char *out = pc_arena_alloc(tx->arena, h->query.n + 1);
        sink_t s = {tx, PC_WV_ARGS_GET, 0, 0};
        if (!out)
            return -1;
        /* a query string is never "malformed": whatever it holds is data;
         * but arguments past the limit would go uninspected */
        int qrc = pc_wafb_urlencoded(h->query.p, h->query.n, out, sink, &s);
        if (qrc == PC_WAFB_NOMEM)
            return -1;
        if (qrc == PC_WAFB_TOO_MANY)
            return PC_WAFB_TOO_MANY;
    }
    if (remote)
        rc |= pc_waf_add(tx, PC_WV_REMOTE_ADDR, "REMOTE_ADDR", 11, remote, strlen(remote));
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const pc_http_header_t *hd = &h->headers[i];
        rc |=
            pc_waf_add(tx, PC_WV_REQUEST_HEADERS, hd->name.p, hd->name.n, hd->value.p, hd->value.n);
        if (pc_str_ieq(hd->name, cookie_name)) {
            sink_t s = {tx, PC_WV_ARGS, 0, 0}; /* cookies stay in the head */
            int crc = pc_wafb_cookies(hd->value.p, hd->value.n, sink, &s);
            if (crc == PC_WAFB_NOMEM)
                return -1;
            if (crc == PC_WAFB_TOO_MANY)
                return PC_WAF_TOO_MANY_COOKIES;
        }
    }
    return rc ? -1 : 0;
}

static int media_is(pc_str_t v, const char *type)
{
    size_t n = strlen(type);
    return v.n >= n && strncasecmp(v.p, type, n) == 0 &&
           (v.n == n || v.p[n] == ';' || v.p[n] == ' ' || v.p[n] == '\t');
}

/* "application/vnd.api+json" has the suffix +json */
static int media_suffix(pc_str_t v, const char *suffix)
{
    size_t end = 0, n = strlen(suffix);
    while (end < v.n && v.p[end] != ';' && v.p[end] != ' ' && v.p[end] != '\t')
        end++;
    return end >= n && strncasecmp(v.p + end - n, suffix, n) == 0;
}

int pc_waf_body_kind(const pc_http_request_t *h)
{
    const pc_http_header_t *ct = pc_http_find_name(h->headers, h->nheaders, ctype_name);
    if (!ct) /* no parser reads it as form or JSON; raw uploads often have none */
        return PC_WAF_BODY_NONE;
    pc_str_t v = ct->value;
    if (media_is(v, "application/x-www-form-urlencoded"))
        return PC_WAF_BODY_URLENCODED;
    if (media_is(v, "multipart/form-data"))
        return PC_WAF_BODY_MULTIPART;
    if (media_is(v, "application/json") || media_suffix(v, "+json"))
        return PC_WAF_BODY_JSON;
    if ((v.n >= 5 && strncasecmp(v.p, "text/", 5) == 0) || media_is(v, "application/xml") ||
        media_suffix(v, "+xml"))
        return PC_WAF_BODY_TEXT;
    return PC_WAF_BODY_NONE;
}

int pc_waf_collect_body(pc_waf_tx_t *tx, const pc_http_request_t *h, int kind, const char *body,
                        size_t n)
{
    /* urlencoded pairs are decoded once into out, JSON values too (or are
     * in the body, which outlives phase 2, as REQUEST_BODY must); JSON
     * names are built, and multipart reuses out per part: copied */
    sink_t s = {tx, PC_WV_ARGS_POST, kind != PC_WAF_BODY_URLENCODED, kind == PC_WAF_BODY_MULTIPART};
    int rc = PC_WAFB_OK;
    char *out = NULL;
    if (kind == PC_WAF_BODY_URLENCODED || kind == PC_WAF_BODY_MULTIPART ||
        kind == PC_WAF_BODY_JSON) {
        if (!(out = pc_arena_alloc(tx->arena, n + 1)))
            return PC_WAFB_NOMEM;
    }
    switch (kind) {
    case PC_WAF_BODY_URLENCODED:
        rc = pc_wafb_urlencoded(body, n, out, sink, &s);
        break;
    case PC_WAF_BODY_JSON:
        rc = n ? pc_wafb_json(body, n, out, sink, &s) : PC_WAFB_OK;
        break;
    case PC_WAF_BODY_MULTIPART: {
        const pc_http_header_t *ct = pc_http_find_name(h->headers, h->nheaders, ctype_name);
        const char *b;
        size_t bl;
        if (!ct || pc_wafb_boundary(ct->value.p, ct->value.n, &b, &bl) != 0)
            rc = PC_WAFB_MALFORMED;
        else
            rc = pc_wafb_multipart(body, n, b, bl, out, sink, &s);
        break;
    }
    default:
        break;
    }
    if (rc == PC_WAFB_NOMEM)
        return rc;
    if (kind != PC_WAF_BODY_MULTIPART && kind != PC_WAF_BODY_NONE && n &&
        pc_waf_add(tx, PC_WV_REQUEST_BODY, "REQUEST_BODY", 12, body, n) != 0)
        return PC_WAFB_NOMEM;
    if (rc != PC_WAFB_OK && pc_waf_add(tx, PC_WV_REQBODY_ERROR, "REQBODY_ERROR", 13, "1", 1) != 0)
        return PC_WAFB_NOMEM;
    return rc;
}
