/*
 * http1.c — strict HTTP/1.1 head scanning and parsing. See http1.h for the
 * contract and docs/internals/http-parser.md for the strictness rules.
 */
#include "http1.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

/* Longest method accepted; longer is 400. Also bounds the first line while it
 * is still incomplete (see pc_http_scan). */
#define PC_HTTP_MAX_METHOD 32
/* Most Connection tokens considered; more is 400. */
#define PC_HTTP_MAX_CONN_TOKENS 32

static const struct {
    int status;
    const char *detail;
} http_errors[PC_HTTP_E_COUNT] = {[PC_HTTP_E_NONE] = {0, "no error"},
#define X(name, status, detail) [PC_HTTP_E_##name] = {status, detail},
                                  PC_HTTP_ERRORS(X)
#undef X
};

int pc_http_err_status(int rc)
{
    int e = -rc;
    return (e > 0 && e < PC_HTTP_E_COUNT) ? http_errors[e].status : 500;
}

const char *pc_http_err_detail(int rc)
{
    int e = -rc;
    return (e > 0 && e < PC_HTTP_E_COUNT) ? http_errors[e].detail : "internal error";
}

/* Character classes, one table: bit 1 tchar (RFC 9110 §5.6.2), bit 2 a byte
 * allowed in a request-target, bit 4 field-vchar (VCHAR / obs-text). */
#define C_TCHAR  1
#define C_TARGET 2
#define C_VCHAR  4
static unsigned char cclass[256];

static void cclass_build(void)
{
    unsigned char t[256] = {0};
    for (int c = 0x21; c <= 0x7e; c++)
        t[c] |= C_VCHAR | C_TARGET;
    for (int c = 0x80; c <= 0xff; c++)
        t[c] |= C_VCHAR;
    t['#'] &= (unsigned char)~C_TARGET; /* a fragment never goes on the wire */
    for (int c = '0'; c <= '9'; c++)
        t[c] |= C_TCHAR;
    for (int c = 'a'; c <= 'z'; c++)
        t[c] |= C_TCHAR, t[c - 32] |= C_TCHAR;
    for (const char *p = "!#$%&'*+-.^_`|~"; *p; p++)
        t[(unsigned char)*p] |= C_TCHAR;
    memcpy(cclass, t, sizeof(t));
}

static void cclass_init_once(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cclass_build);
}

static inline int is_tchar(unsigned char c)
{
    return cclass[c] & C_TCHAR;
}

int pc_http_scan(pc_http_scan_t *s, const char *buf, size_t len, const pc_http_limits_t *lim,
                 size_t *end)
{
    cclass_init_once();
    /* An incomplete first line longer than this can only end over max_uri. */
    size_t max_line = lim ? PC_HTTP_MAX_METHOD + 1 + lim->max_uri + sizeof(" HTTP/1.1\r\n") : 0;

    while (s->pos < len) {
        const char *lf = memchr(buf + s->pos, '\n', len - s->pos);
        if (!lf) {
            s->pos = len;
            break;
        }
        size_t at = (size_t)(lf - buf);
        if (at == s->line_start || buf[at - 1] != '\r')
            return PC_HTTP_ERR(PC_HTTP_E_BARE_LF);
        s->pos = at + 1;
        size_t line_len = at - 1 - s->line_start; /* without CRLF */
        s->line_start = s->pos;
        if (line_len == 0) {
            if (s->lines == 0) {
                /* Empty lines before the start line are skipped; cap them so
                 * a stream of CRLFs cannot keep the connection busy. */
                if (s->pos > 8)
                    return PC_HTTP_ERR(PC_HTTP_E_REQUEST_LINE);
                s->start = s->pos;
                continue;
            }
            *end = s->pos;
            return PC_HTTP_OK;
        }
        if (s->lines == 0) {
            if (lim && line_len > max_line)
                return PC_HTTP_ERR(PC_HTTP_E_URI_TOO_LONG);
            s->hdr_start = s->pos;
        } else if (lim) {
            if (s->lines > lim->max_headers)
                return PC_HTTP_ERR(PC_HTTP_E_TOO_MANY_HEADERS);
            if (s->pos - s->hdr_start > lim->max_header_bytes)
                return PC_HTTP_ERR(PC_HTTP_E_HEADERS_TOO_LARGE);
        }
        s->lines++;
    }
    /* Incomplete: fail early when the limits are already certain to be hit. */
    if (lim) {
        if (s->lines == 0) {
            /* +1: the line's CR may already be here */
            if (len - s->line_start > max_line + 1)
                return PC_HTTP_ERR(PC_HTTP_E_URI_TOO_LONG);
        } else if (len - s->hdr_start > lim->max_header_bytes + 1) {
            /* +1: the final empty line's CR may already be here */
            return PC_HTTP_ERR(PC_HTTP_E_HEADERS_TOO_LARGE);
        }
    }
    return PC_HTTP_AGAIN;
}

static const struct {
    const char *name;
    size_t len;
    pc_method_e id;
} methods[] = {
    {"GET", 3, PC_M_GET},     {"HEAD", 4, PC_M_HEAD},     {"POST", 4, PC_M_POST},
    {"PUT", 3, PC_M_PUT},     {"DELETE", 6, PC_M_DELETE}, {"OPTIONS", 7, PC_M_OPTIONS},
    {"PATCH", 5, PC_M_PATCH}, {"TRACE", 5, PC_M_TRACE},   {"CONNECT", 7, PC_M_CONNECT},
};

static pc_method_e method_id(pc_str_t m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (m.n == methods[i].len && memcmp(m.p, methods[i].name, m.n) == 0)
            return methods[i].id;
    return PC_M_OTHER;
}

int pc_http_valid_method(pc_str_t m)
{
    if (m.n == 0 || m.n > PC_HTTP_MAX_METHOD)
        return 0;
    for (size_t i = 0; i < m.n; i++) {
        char c = m.p[i];
        if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int pc_http_method_idempotent(pc_method_e m)
{
    return m == PC_M_GET || m == PC_M_HEAD || m == PC_M_PUT || m == PC_M_DELETE ||
           m == PC_M_OPTIONS || m == PC_M_TRACE;
}

static const pc_str_t hdr_names[PC_HDR_COUNT] = {[PC_HDR_OTHER] = {"", 0},
#define X(name, lower) [PC_HDR_##name] = {lower, sizeof(lower) - 1},
                                                 PC_HDR_IDS(X)
#undef X
};

/* Known names by (length, first letter): the only candidates for a field,
 * so most fields are dismissed by one or two table reads. Filled once, before
 * main, from hdr_names. */
#define HDR_MAXLEN 32
static uint8_t hdr_by_shape[HDR_MAXLEN][26][2];

__attribute__((constructor)) static void hdr_table_init(void)
{
    for (int i = 1; i < PC_HDR_COUNT; i++) {
        unsigned first = (unsigned)(hdr_names[i].p[0] - 'a');
        if (hdr_names[i].n >= HDR_MAXLEN || first >= 26 || hdr_by_shape[hdr_names[i].n][first][1])
            abort(); /* PC_HDR_IDS outgrew the table: a build-time mistake */
        uint8_t *slot = hdr_by_shape[hdr_names[i].n][first];
        slot[slot[0] ? 1 : 0] = (uint8_t)i;
    }
}

static uint16_t header_id(pc_str_t name)
{
    unsigned first = (unsigned)pc_lower((unsigned char)name.p[0]) - 'a';
    if (name.n >= HDR_MAXLEN || first >= 26)
        return PC_HDR_OTHER;
    const uint8_t *slot = hdr_by_shape[name.n][first];
    for (int k = 0; k < 2 && slot[k]; k++)
        if (pc_str_ieq(hdr_names[slot[k]], name))
            return slot[k];
    return PC_HDR_OTHER;
}

/* Parses "HTTP/d.d" exactly. Returns the minor version (0 or 1) or an error. */
static int parse_version(const char *p, size_t n)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
        p[7] < '0' || p[7] > '9')
        return PC_HTTP_ERR(PC_HTTP_E_VERSION);
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return PC_HTTP_ERR(PC_HTTP_E_VERSION_UNSUPPORTED);
    return p[7] - '0';
}

/* Parses header field lines from p to end (each ending in CRLF, the final
 * empty line excluded) into hdrs. */
static int parse_fields(const char *p, const char *end, pc_http_header_t *hdrs, uint32_t cap,
                        uint32_t *count)
{
    uint32_t n = 0;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol + 1 >= end || eol[1] != '\n')
            return PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE); /* CR not part of CRLF */
        if (*p == ' ' || *p == '\t')
            return PC_HTTP_ERR(PC_HTTP_E_OBS_FOLD);
        const char *q = p;
        while (q < eol && is_tchar((unsigned char)*q))
            q++;
        if (q == eol)
            return PC_HTTP_ERR(PC_HTTP_E_HEADER_NO_COLON);
        if (*q != ':') {
            if (q > p && (*q == ' ' || *q == '\t'))
                return PC_HTTP_ERR(PC_HTTP_E_WS_BEFORE_COLON);
            return PC_HTTP_ERR(PC_HTTP_E_HEADER_NAME);
        }
        if (q == p)
            return PC_HTTP_ERR(PC_HTTP_E_HEADER_NAME);
        if (n == cap)
            return PC_HTTP_ERR(PC_HTTP_E_TOO_MANY_HEADERS);
        pc_http_header_t *h = &hdrs[n++];
        h->name = pc_str_make(p, (size_t)(q - p));
        const char *v = q + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *c = v; c < ve; c++) {
            unsigned char ch = (unsigned char)*c;
            if (!(cclass[ch] & C_VCHAR) && ch != ' ' && ch != '\t')
                return PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE);
        }
        h->value = pc_str_make(v, (size_t)(ve - v));
        h->id = header_id(h->name);
        h->flags = 0;
        p = eol + 2;
    }
    *count = n;
    return PC_HTTP_OK;
}

/* Content-Length: 1*DIGIT, at most 18 digits so it always fits an int64. */
static int parse_content_length(pc_str_t v, int64_t *out)
{
    uint64_t x;
    if (v.n > 18 || pc_str_to_u64(v, (uint64_t)INT64_MAX, &x) != 0)
        return -1;
    *out = (int64_t)x;
    return 0;
}

/* Host = uri-host [ ":" port ], with uri-host a DNS-style reg-name, an IPv4
 * address, or a bracketed IPv6 literal. Stricter than RFC 3986's reg-name on
 * purpose: sub-delims and percent-escapes in Host only serve confusion. */
static int valid_host(pc_str_t h)
{
    size_t i = 0;
    if (h.n == 0 || h.n > 261)
        return 0;
    if (h.p[0] == '[') {
        for (i = 1; i < h.n && h.p[i] != ']'; i++) {
            unsigned char c = (unsigned char)h.p[i];
            if (pc_hex_value(c) < 0 && c != ':' && c != '.')
                return 0;
        }
        if (i == h.n || i < 3)
            return 0;
        i++;
    } else {
        for (; i < h.n && h.p[i] != ':'; i++) {
            unsigned char c = (unsigned char)h.p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~'))
                return 0;
        }
        if (i == 0)
            return 0;
    }
    if (i == h.n)
        return 1;
    if (h.p[i] != ':')
        return 0;
    uint64_t port;
    return pc_str_to_u64(pc_str_make(h.p + i + 1, h.n - i - 1), 65535, &port) == 0 &&
           h.n - i - 1 <= 5;
}

/* Walks a comma-separated list of tokens (RFC 9110 §5.6.1, empty elements
 * allowed). Calls fn for each token; returns -1 on a non-token element. */
static int each_token(pc_str_t v, int (*fn)(pc_str_t tok, void *arg), void *arg)
{
    size_t i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && is_tchar((unsigned char)v.p[i]))
            i++;
        if (i > s && fn(pc_str_make(v.p + s, i - s), arg) != 0)
            return -1;
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t'))
            i++;
        if (i < v.n && v.p[i] != ',')
            return -1;
    }
    return 0;
}

typedef struct {
    pc_http_header_t *hdrs;
    uint32_t n;
    unsigned close : 1, keep_alive : 1;
    unsigned tokens;
} conn_ctx_t;

static int connection_token(pc_str_t tok, void *arg)
{
    conn_ctx_t *c = arg;
    if (++c->tokens > PC_HTTP_MAX_CONN_TOKENS)
        return -1;
    if (pc_str_ieq_c(tok, "close")) {
        c->close = 1;
        return 0;
    }
    if (pc_str_ieq_c(tok, "keep-alive")) {
        c->keep_alive = 1;
        return 0;
    }
    /* Any other token names a field that is hop-by-hop for this message. A
     * client cannot make the gateway drop Host this way. */
    for (uint32_t i = 0; i < c->n; i++)
        if (c->hdrs[i].id != PC_HDR_HOST && pc_str_ieq(c->hdrs[i].name, tok))
            c->hdrs[i].flags |= PC_HDR_F_HOP;
    return 0;
}

/* Shared by requests and responses: hop-by-hop marking, Connection semantics
 * and message framing fields. */
typedef struct {
    const pc_http_header_t *cl, *te, *host;
    unsigned ncl, nte, nhost, nct;
    int close, keep_alive;
} fields_t;

static int analyze_common(pc_http_header_t *h, uint32_t n, fields_t *f)
{
    conn_ctx_t cc = {h, n, 0, 0, 0};
    memset(f, 0, sizeof(*f));
    for (uint32_t i = 0; i < n; i++) {
        switch (h[i].id) {
        case PC_HDR_CONTENT_LENGTH:
            f->cl = &h[i], f->ncl++;
            h[i].flags |= PC_HDR_F_HOP; /* regenerated when re-framing */
            break;
        case PC_HDR_TRANSFER_ENCODING:
            f->te = &h[i], f->nte++;
            h[i].flags |= PC_HDR_F_HOP;
            break;
        case PC_HDR_HOST:
            f->host = &h[i], f->nhost++;
            break;
        case PC_HDR_CONTENT_TYPE:
            f->nct++;
            break;
        case PC_HDR_CONNECTION:
        case PC_HDR_KEEP_ALIVE:
        case PC_HDR_PROXY_CONNECTION:
        case PC_HDR_TE:
        case PC_HDR_TRAILER:
        case PC_HDR_UPGRADE:
        case PC_HDR_PROXY_AUTHENTICATE:
            h[i].flags |= PC_HDR_F_HOP;
            break;
        default:
            break;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        if (h[i].id == PC_HDR_CONNECTION && each_token(h[i].value, connection_token, &cc) != 0)
            return PC_HTTP_ERR(PC_HTTP_E_CONNECTION_INVALID);
    f->close = cc.close;
    f->keep_alive = cc.keep_alive;
    return PC_HTTP_OK;
}

/* Decides body framing from Content-Length / Transfer-Encoding. */
static int framing(const fields_t *f, int minor, uint8_t *body, int64_t *cl)
{
    *cl = -1;
    if (f->nte && f->ncl)
        return PC_HTTP_ERR(PC_HTTP_E_CL_AND_TE);
    if (f->nte) {
        if (minor == 0)
            return PC_HTTP_ERR(PC_HTTP_E_TE_HTTP10);
        if (f->nte > 1 || !pc_str_ieq_c(f->te->value, "chunked"))
            return PC_HTTP_ERR(PC_HTTP_E_TE_UNSUPPORTED);
        *body = PC_BODY_CHUNKED;
        return PC_HTTP_OK;
    }
    if (f->ncl) {
        if (f->ncl > 1)
            return PC_HTTP_ERR(PC_HTTP_E_CL_DUPLICATE);
        if (parse_content_length(f->cl->value, cl) != 0)
            return PC_HTTP_ERR(PC_HTTP_E_CL_INVALID);
        *body = PC_BODY_LENGTH;
        return PC_HTTP_OK;
    }
    *body = PC_BODY_NONE;
    return PC_HTTP_OK;
}

/* Splits and checks the request-target. */
static int parse_target(pc_http_request_t *r)
{
    pc_str_t t = r->target;
    for (size_t i = 0; i < t.n; i++)
        if (!(cclass[(unsigned char)t.p[i]] & C_TARGET))
            return PC_HTTP_ERR(PC_HTTP_E_TARGET);
    if (r->method_id == PC_M_CONNECT)
        return PC_HTTP_ERR(PC_HTTP_E_CONNECT);
    const char *path;
    if (t.p[0] == '/') {
        r->target_form = PC_TARGET_ORIGIN;
        path = t.p;
    } else if (t.n == 1 && t.p[0] == '*') {
        if (r->method_id != PC_M_OPTIONS)
            return PC_HTTP_ERR(PC_HTTP_E_TARGET);
        r->target_form = PC_TARGET_ASTERISK;
        r->path = t;
        return PC_HTTP_OK;
    } else {
        size_t sl;
        if (t.n > 7 && pc_str_ieq(pc_str_make(t.p, 7), PC_STR("http://")))
            sl = 7;
        else if (t.n > 8 && pc_str_ieq(pc_str_make(t.p, 8), PC_STR("https://")))
            sl = 8;
        else
            return PC_HTTP_ERR(PC_HTTP_E_TARGET);
        const char *a = t.p + sl, *e = t.p + t.n, *q = a;
        while (q < e && *q != '/' && *q != '?')
            q++;
        r->authority = pc_str_make(a, (size_t)(q - a));
        if (!valid_host(r->authority))
            return PC_HTTP_ERR(PC_HTTP_E_TARGET);
        r->target_form = PC_TARGET_ABSOLUTE;
        path = q;
    }
    const char *e = t.p + t.n;
    const char *qm = memchr(path, '?', (size_t)(e - path));
    if (qm) {
        r->path = pc_str_make(path, (size_t)(qm - path));
        r->query = pc_str_make(qm + 1, (size_t)(e - qm - 1));
    } else {
        r->path = pc_str_make(path, (size_t)(e - path));
    }
    if (r->path.n == 0) /* absolute-form with an empty path means "/" */
        r->path = PC_STR("/");
    else if (r->path.p[0] != '/')
        return PC_HTTP_ERR(PC_HTTP_E_TARGET);
    return PC_HTTP_OK;
}

int pc_http_parse_request(const char *head, size_t len, const pc_http_limits_t *lim,
                          pc_http_header_t *hdrs, uint32_t cap, pc_http_request_t *r)
{
    cclass_init_once();
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    const char *end = head + len;
    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0) {
        /* a head with no fields ends in the request line's CRLF + CRLF too */
        return PC_HTTP_ERR(PC_HTTP_E_REQUEST_LINE);
    }
    const char *eol = memchr(head, '\r', len);
    if (!eol || eol[1] != '\n')
        return PC_HTTP_ERR(PC_HTTP_E_REQUEST_LINE);

    /* method SP request-target SP HTTP-version */
    const char *p = head, *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1 || sp1 == p)
        return PC_HTTP_ERR(PC_HTTP_E_REQUEST_LINE);
    r->method = pc_str_make(p, (size_t)(sp1 - p));
    if (r->method.n > PC_HTTP_MAX_METHOD)
        return PC_HTTP_ERR(PC_HTTP_E_METHOD);
    if (!pc_http_valid_method(r->method))
        return PC_HTTP_ERR(PC_HTTP_E_METHOD);
    r->method_id = (uint8_t)method_id(r->method);
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(eol - t));
    if (!sp2 || sp2 == t)
        return PC_HTTP_ERR(PC_HTTP_E_REQUEST_LINE);
    if (memchr(sp2 + 1, ' ', (size_t)(eol - sp2 - 1)))
        return PC_HTTP_ERR(PC_HTTP_E_REQUEST_LINE);
    r->target = pc_str_make(t, (size_t)(sp2 - t));
    if (lim && r->target.n > lim->max_uri)
        return PC_HTTP_ERR(PC_HTTP_E_URI_TOO_LONG);
    int v = parse_version(sp2 + 1, (size_t)(eol - sp2 - 1));
    if (v < 0)
        return v;
    r->minor = (uint8_t)v;
    int rc = parse_target(r);
    if (rc != PC_HTTP_OK)
        return rc;

    const char *fields = eol + 2;
    r->header_bytes = (uint32_t)(end - 2 - fields);
    if (lim && (size_t)(end - 2 - fields) > lim->max_header_bytes)
        return PC_HTTP_ERR(PC_HTTP_E_HEADERS_TOO_LARGE);
    rc = parse_fields(fields, end - 2, hdrs, cap, &r->nheaders);
    if (rc != PC_HTTP_OK)
        return rc;
    if (lim && r->nheaders > lim->max_headers)
        return PC_HTTP_ERR(PC_HTTP_E_TOO_MANY_HEADERS);
    r->headers = hdrs;

    fields_t f;
    if ((rc = analyze_common(hdrs, r->nheaders, &f)) != PC_HTTP_OK)
        return rc;
    if (f.nhost > 1)
        return PC_HTTP_ERR(PC_HTTP_E_HOST_DUPLICATE);
    /* which one would the application read? The WAF parses the body as
     * the first says: one saying octet-stream would hide a JSON body */
    if (f.nct > 1)
        return PC_HTTP_ERR(PC_HTTP_E_CT_DUPLICATE);
    if (f.nhost == 1) {
        if (!valid_host(f.host->value))
            return PC_HTTP_ERR(PC_HTTP_E_HOST_INVALID);
        r->host = f.host->value;
        if (r->target_form == PC_TARGET_ABSOLUTE && !pc_str_ieq(r->host, r->authority))
            return PC_HTTP_ERR(PC_HTTP_E_HOST_MISMATCH);
    } else if (r->minor == 1) {
        return PC_HTTP_ERR(PC_HTTP_E_HOST_MISSING);
    } else if (r->target_form == PC_TARGET_ABSOLUTE) {
        r->host = r->authority;
    }
    if ((rc = framing(&f, r->minor, &r->body, &r->content_length)) != PC_HTTP_OK)
        return rc;
    r->keep_alive = r->minor == 1 ? !f.close : (f.keep_alive && !f.close);

    for (uint32_t i = 0; i < r->nheaders; i++) {
        /* CGI-style backends read "X_Forwarded_For" as "X-Forwarded-For":
         * such names could smuggle past the fields the gateway controls, so
         * they are not forwarded (nginx's default too). */
        if (memchr(hdrs[i].name.p, '_', hdrs[i].name.n))
            hdrs[i].flags |= PC_HDR_F_DROP;
        if (hdrs[i].id != PC_HDR_EXPECT)
            continue;
        hdrs[i].flags |= PC_HDR_F_HOP; /* the gateway answers 100-continue itself */
        if (!pc_str_ieq_c(hdrs[i].value, "100-continue"))
            return PC_HTTP_ERR(PC_HTTP_E_EXPECT_UNSUPPORTED);
        r->expect_continue = r->minor == 1;
    }
    return PC_HTTP_OK;
}

int pc_http_parse_response(const char *head, size_t len, pc_method_e request_method,
                           pc_http_header_t *hdrs, uint32_t cap, pc_http_response_t *r)
{
    cclass_init_once();
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    const char *end = head + len;
    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
        return PC_HTTP_ERR(PC_HTTP_E_STATUS_LINE);
    const char *eol = memchr(head, '\r', len);
    /* HTTP-version SP 3DIGIT SP [ reason-phrase ] */
    /* The SP before an empty reason-phrase is required by RFC 9112 but often
     * missing; without it the line is still unambiguous. */
    if (!eol || eol[1] != '\n' || eol - head < 12 || head[8] != ' ' ||
        (eol - head > 12 && head[12] != ' '))
        return PC_HTTP_ERR(PC_HTTP_E_STATUS_LINE);
    int v = parse_version(head, 8);
    if (v < 0)
        return PC_HTTP_ERR(PC_HTTP_E_STATUS_LINE);
    r->minor = (uint8_t)v;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return PC_HTTP_ERR(PC_HTTP_E_STATUS_LINE);
        status = status * 10 + (head[i] - '0');
    }
    if (status < 100 || status > 599)
        return PC_HTTP_ERR(PC_HTTP_E_STATUS_UNSUPPORTED);
    r->status = (uint16_t)status;
    r->reason = eol - head > 12 ? pc_str_make(head + 13, (size_t)(eol - head - 13)) : PC_STR("");
    for (size_t i = 0; i < r->reason.n; i++) {
        unsigned char c = (unsigned char)r->reason.p[i];
        if (!(cclass[c] & C_VCHAR) && c != ' ' && c != '\t')
            return PC_HTTP_ERR(PC_HTTP_E_STATUS_LINE);
    }
    int rc = parse_fields(eol + 2, end - 2, hdrs, cap, &r->nheaders);
    if (rc != PC_HTTP_OK)
        return rc;
    r->headers = hdrs;
    fields_t f;
    if ((rc = analyze_common(hdrs, r->nheaders, &f)) != PC_HTTP_OK)
        return rc;
    r->keep_alive = r->minor == 1 ? !f.close : (f.keep_alive && !f.close);
    /* Framing is validated even where the body is absent by definition, so a
     * confused upstream is caught rather than relayed. */
    if ((rc = framing(&f, r->minor, &r->body, &r->content_length)) != PC_HTTP_OK)
        return rc;
    if (request_method == PC_M_HEAD || status < 200 || status == 204 || status == 304) {
        r->body = PC_BODY_NONE;
    } else if (r->body == PC_BODY_NONE) {
        r->body = PC_BODY_CLOSE;
        r->keep_alive = 0;
    }
    return PC_HTTP_OK;
}

static inline int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int pc_http_normalize_path(pc_str_t in, char *out, size_t *outn)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    /* Dot-segment detection runs on the decoded view, where '/' and ';' (and
     * their escapes) end a segment: Tomcat-style backends drop ";params". A
     * backslash, which Windows backends read as '/', is refused outright. */
    size_t seg_len = 0, seg_dots = 0;
    int prev_slash = 0;
    if (in.n == 0 || in.p[0] != '/')
        return PC_HTTP_ERR(PC_HTTP_E_TARGET);
    for (size_t i = 0; i <= in.n; i++) {
        unsigned char c, dec;
        int escaped = 0;
        if (i == in.n) {
            dec = '/'; /* end of path closes the last segment */
            c = 0;
        } else {
            c = (unsigned char)in.p[i];
            dec = c;
            if (c == '%') {
                if (i + 2 >= in.n || pc_hex_value((unsigned char)in.p[i + 1]) < 0 ||
                    pc_hex_value((unsigned char)in.p[i + 2]) < 0)
                    return PC_HTTP_ERR(PC_HTTP_E_PATH_ENCODING);
                dec = (unsigned char)(pc_hex_value((unsigned char)in.p[i + 1]) * 16 +
                                      pc_hex_value((unsigned char)in.p[i + 2]));
                if (dec == 0)
                    return PC_HTTP_ERR(PC_HTTP_E_PATH_ENCODING);
                escaped = 1;
            }
        }
        if (dec == '\\')
            return PC_HTTP_ERR(PC_HTTP_E_PATH_BACKSLASH);
        if (dec == '/' || dec == ';') {
            if (seg_len > 0 && seg_len == seg_dots && seg_dots <= 2)
                return PC_HTTP_ERR(PC_HTTP_E_PATH_DOT_SEGMENT);
            seg_len = seg_dots = 0;
        } else {
            seg_len++;
            if (dec == '.')
                seg_dots++;
        }
        if (i == in.n)
            break;
        if (escaped) {
            if (is_unreserved(dec)) {
                out[o++] = (char)dec;
            } else {
                out[o++] = '%';
                out[o++] = hex[dec >> 4];
                out[o++] = hex[dec & 15];
            }
            prev_slash = 0;
            i += 2;
            continue;
        }
        if (c == '/') {
            if (prev_slash)
                continue;
            prev_slash = 1;
        } else {
            prev_slash = 0;
        }
        out[o++] = (char)c;
    }
    *outn = o;
    return PC_HTTP_OK;
}

size_t pc_http_strip_params(pc_str_t path, char *out)
{
    size_t o = 0;
    int in_param = 0;
    for (size_t i = 0; i < path.n; i++) {
        char c = path.p[i];
        if (c == '/')
            in_param = 0;
        else if (c == ';')
            in_param = 1;
        if (!in_param)
            out[o++] = c;
    }
    return o;
}

const pc_http_header_t *pc_http_find(const pc_http_header_t *h, uint32_t n, pc_hdr_id_e id)
{
    for (uint32_t i = 0; i < n; i++)
        if (h[i].id == id)
            return &h[i];
    return NULL;
}

const pc_http_header_t *pc_http_find_name(const pc_http_header_t *h, uint32_t n, pc_str_t name)
{
    for (uint32_t i = 0; i < n; i++)
        if (pc_str_ieq(h[i].name, name))
            return &h[i];
    return NULL;
}

int pc_http_valid_request_id(pc_str_t v)
{
    if (v.n == 0 || v.n > PC_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (!(is_unreserved(c) || c == ':') || c == '~')
            return 0;
    }
    return 1;
}

const char *pc_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}
