/*
 * fuzz_http_fields.c — libFuzzer target for the request header-value
 * parsers, each driven through the public entry point that uses it: Host
 * (field and absolute-form authority) and pc_route_host_part, Content-Length,
 * Connection token lists, Transfer-Encoding, Expect, Content-Type media types
 * (pc_waf_body_kind), ;params in paths (pc_http_strip_params) and
 * X-Request-Id (pc_http_valid_request_id). The first byte picks the field,
 * the rest is its value (CR and LF removed: they would end the line).
 *
 * Invariants (abort on violation):
 *  - a request carrying the value parses exactly when a reference check
 *    written here from the documented grammar accepts the value, and fails
 *    with that field's error otherwise;
 *  - on success what the parser reports matches the reference: the Host
 *    slice is the trimmed value, inside the head; the content length is the
 *    digits' value; keep-alive and which fields Connection made hop-by-hop
 *    follow the listed tokens (Host never); chunked only for "chunked";
 *  - pc_route_host_part returns a prefix of the host without the port (and
 *    without a final dot), the whole bracketed literal for IPv6;
 *  - the body kind of a Content-Type is the reference's, and a second
 *    Content-Type field is refused;
 *  - strip_params keeps every byte outside ";..." segments, in order, and
 *    is idempotent; a request id is valid exactly for 1..128 bytes of
 *    [A-Za-z0-9._:-].
 */
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "http1.h"
#include "router.h"
#include "waf.h"

enum { K_HOST, K_AUTHORITY, K_CL, K_CONN, K_TE, K_EXPECT, K_CTYPE, K_PATH, K_REQID, K_COUNT };

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_vchar_value(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f)))
            return 0;
    }
    return 1;
}

static pc_str_t trim(const char *p, size_t n)
{
    while (n && is_ows(*p))
        p++, n--;
    while (n && is_ows(p[n - 1]))
        n--;
    return pc_str_make(p, n);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Host = ( "[" 2*(HEXDIG / ":" / ".") "]" / 1*(ALPHA / DIGIT / "-._~") )
 *        [ ":" 1*5DIGIT (<= 65535) ], at most 261 bytes */
static int ref_host(pc_str_t h)
{
    if (h.n == 0 || h.n > 261)
        return 0;
    size_t i;
    if (h.p[0] == '[') {
        const char *rb = memchr(h.p, ']', h.n);
        if (!rb || rb - h.p < 3)
            return 0;
        for (const char *c = h.p + 1; c < rb; c++)
            if (!is_hex(*c) && *c != ':' && *c != '.')
                return 0;
        i = (size_t)(rb - h.p) + 1;
    } else {
        for (i = 0; i < h.n && h.p[i] != ':'; i++) {
            char c = h.p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
                  c == '.' || c == '_' || c == '~'))
                return 0;
        }
        if (i == 0)
            return 0;
    }
    if (i == h.n)
        return 1;
    if (h.p[i] != ':')
        return 0;
    size_t d = h.n - i - 1;
    if (d == 0 || d > 5)
        return 0;
    unsigned long port = 0;
    for (size_t k = i + 1; k < h.n; k++) {
        if (!is_digit(h.p[k]))
            return 0;
        port = port * 10 + (unsigned long)(h.p[k] - '0');
    }
    return port <= 65535;
}

static int ieq(pc_str_t a, const char *lit)
{
    return a.n == strlen(lit) && strncasecmp(a.p, lit, a.n) == 0;
}

static void check_host_part(pc_str_t host)
{
    pc_str_t hp = pc_route_host_part(host);
    FZ_ASSERT(hp.p == host.p && hp.n <= host.n);
    if (host.n && host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', host.n);
        FZ_ASSERT(hp.n == (rb ? (size_t)(rb - host.p) + 1 : host.n));
        return;
    }
    const char *colon = memchr(host.p, ':', host.n);
    size_t want = colon ? (size_t)(colon - host.p) : host.n;
    if (want > 1 && host.p[want - 1] == '.')
        want--;
    FZ_ASSERT(hp.n == want);
    FZ_ASSERT(!memchr(hp.p, ':', hp.n));
}

/* Connection: #token with empty elements allowed; what the parser must
 * conclude. */
typedef struct {
    int ok, close, keep_alive, names_xa, names_xb, names_host;
} conn_ref_t;

static conn_ref_t ref_connection(pc_str_t v)
{
    conn_ref_t r = {1, 0, 0, 0, 0, 0};
    unsigned tokens = 0;
    size_t s = 0;
    for (size_t i = 0; i <= v.n; i++) {
        if (i < v.n && v.p[i] != ',')
            continue;
        pc_str_t el = trim(v.p + s, i - s);
        s = i + 1;
        if (el.n == 0)
            continue;
        for (size_t k = 0; k < el.n; k++)
            if (!fz_is_tchar((unsigned char)el.p[k]))
                r.ok = 0;
        if (!r.ok)
            return r;
        if (++tokens > 32) {
            r.ok = 0;
            return r;
        }
        r.close |= ieq(el, "close");
        r.keep_alive |= ieq(el, "keep-alive");
        r.names_xa |= ieq(el, "x-a");
        r.names_xb |= ieq(el, "x-b");
        r.names_host |= ieq(el, "host");
    }
    return r;
}

static pc_str_t media(pc_str_t v)
{
    size_t e = 0;
    while (e < v.n && v.p[e] != ';' && !is_ows(v.p[e]))
        e++;
    return pc_str_make(v.p, e);
}

static int ends_with_ci(pc_str_t s, const char *suf)
{
    size_t n = strlen(suf);
    return s.n >= n && strncasecmp(s.p + s.n - n, suf, n) == 0;
}

static int ref_body_kind(pc_str_t v)
{
    pc_str_t m = media(v);
    if (ieq(m, "application/x-www-form-urlencoded"))
        return PC_WAF_BODY_URLENCODED;
    if (ieq(m, "multipart/form-data"))
        return PC_WAF_BODY_MULTIPART;
    if (ieq(m, "application/json") || ends_with_ci(m, "+json"))
        return PC_WAF_BODY_JSON;
    if ((m.n >= 5 && strncasecmp(m.p, "text/", 5) == 0) || ieq(m, "application/xml") ||
        ends_with_ci(m, "+xml"))
        return PC_WAF_BODY_TEXT;
    return PC_WAF_BODY_NONE;
}

/* Builds head = pre + value + post into buf; returns its length. */
static size_t build(char *buf, const char *pre, const char *v, size_t n, const char *post)
{
    size_t a = strlen(pre), b = strlen(post);
    memcpy(buf, pre, a);
    memcpy(buf + a, v, n);
    memcpy(buf + a + n, post, b);
    return a + n + b;
}

static int parse(const char *head, size_t len, pc_http_header_t *hdrs, pc_http_request_t *r)
{
    return pc_http_parse_request(head, len, NULL, hdrs, 8, r);
}

static void check_strip(const char *p, size_t n)
{
    char *out = malloc(n + 1), *again = malloc(n + 1);
    FZ_ASSERT(out && again);
    size_t o = pc_http_strip_params(pc_str_make(p, n), out);
    FZ_ASSERT(o <= n);
    size_t k = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '/')
            in = 0;
        else if (p[i] == ';')
            in = 1;
        if (!in) {
            FZ_ASSERT(k < o && out[k] == p[i]);
            k++;
        }
    }
    FZ_ASSERT(k == o && !memchr(out, ';', o));
    FZ_ASSERT(pc_http_strip_params(pc_str_make(out, o), again) == o && memcmp(again, out, o) == 0);
    free(out);
    free(again);
}

static void check_reqid(const char *p, size_t n)
{
    int want = n >= 1 && n <= PC_REQUEST_ID_MAX;
    for (size_t i = 0; want && i < n; i++) {
        char c = p[i];
        want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
               c == '.' || c == '_' || c == ':';
    }
    FZ_ASSERT(pc_http_valid_request_id(pc_str_make(p, n)) == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1024)
        return 0;
    int kind = data[0] % K_COUNT;
    int minor = (data[0] / K_COUNT) & 1;
    char v[1024] = {0};
    size_t n = 0;
    for (size_t i = 1; i < size; i++)
        if (data[i] != '\r' && data[i] != '\n')
            v[n++] = (char)data[i];

    char head[4096]; /* two values of 1023 bytes and the fixed text */
    pc_http_header_t hdrs[8];
    pc_http_request_t r;
    size_t len;
    int rc;
    int valid = is_vchar_value(v, n);
    pc_str_t t = trim(v, n);

    switch (kind) {
    case K_HOST:
        len = build(head, "GET / HTTP/1.1\r\nHost: ", v, n, "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        if (!valid) {
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE));
            break;
        }
        FZ_ASSERT(rc == (ref_host(t) ? PC_HTTP_OK : PC_HTTP_ERR(PC_HTTP_E_HOST_INVALID)));
        if (rc == PC_HTTP_OK) {
            FZ_ASSERT(r.host.n == t.n && r.host.p == head + 22 + (t.p - v));
            check_host_part(r.host);
        }
        break;
    case K_AUTHORITY: {
        /* the value as both the absolute-form authority and Host */
        int target_ok = n > 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c < 0x21 || c > 0x7e || c == '#' || c == '/' || c == '?')
                target_ok = 0;
        }
        if (!target_ok)
            break;
        char mid[4096];
        size_t m = build(mid, "", v, n, "/x HTTP/1.1\r\nHost: ");
        memcpy(mid + m, v, n);
        len = build(head, "GET http://", mid, m + n, "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        FZ_ASSERT(rc == (ref_host(pc_str_make(v, n)) ? PC_HTTP_OK : PC_HTTP_ERR(PC_HTTP_E_TARGET)));
        if (rc == PC_HTTP_OK) {
            FZ_ASSERT(r.target_form == PC_TARGET_ABSOLUTE);
            FZ_ASSERT(r.authority.p == head + 11 && r.authority.n == n);
            FZ_ASSERT(r.path.n == 2 && memcmp(r.path.p, "/x", 2) == 0);
            check_host_part(r.host);
        }
        break;
    }
    case K_CL: {
        len = build(head, minor ? "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
                                : "POST / HTTP/1.0\r\nContent-Length: ",
                    v, n, "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        if (!valid) {
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE));
            break;
        }
        int ok = t.n >= 1 && t.n <= 18;
        int64_t x = 0;
        for (size_t i = 0; ok && i < t.n; i++) {
            ok = is_digit(t.p[i]);
            x = x * 10 + (t.p[i] - '0');
        }
        FZ_ASSERT(rc == (ok ? PC_HTTP_OK : PC_HTTP_ERR(PC_HTTP_E_CL_INVALID)));
        if (ok)
            FZ_ASSERT(r.body == PC_BODY_LENGTH && r.content_length == x);
        break;
    }
    case K_CONN: {
        len = build(head,
                    minor ? "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\nConnection: "
                          : "GET / HTTP/1.0\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\nConnection: ",
                    v, n, "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        if (!valid) {
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE));
            break;
        }
        conn_ref_t c = ref_connection(t);
        FZ_ASSERT(rc == (c.ok ? PC_HTTP_OK : PC_HTTP_ERR(PC_HTTP_E_CONNECTION_INVALID)));
        if (!c.ok)
            break;
        FZ_ASSERT(r.nheaders == 4);
        FZ_ASSERT(r.keep_alive == (minor ? !c.close : c.keep_alive && !c.close));
        FZ_ASSERT(!(hdrs[0].flags & PC_HDR_F_HOP)); /* Host */
        FZ_ASSERT(!!(hdrs[1].flags & PC_HDR_F_HOP) == c.names_xa);
        FZ_ASSERT(!!(hdrs[2].flags & PC_HDR_F_HOP) == c.names_xb);
        FZ_ASSERT(hdrs[3].flags & PC_HDR_F_HOP);
        (void)c.names_host;
        break;
    }
    case K_TE:
        len = build(head, minor ? "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                                : "POST / HTTP/1.0\r\nTransfer-Encoding: ",
                    v, n, "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        if (!valid)
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE));
        else if (!minor)
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_TE_HTTP10));
        else if (ieq(t, "chunked"))
            FZ_ASSERT(rc == PC_HTTP_OK && r.body == PC_BODY_CHUNKED && r.content_length == -1);
        else
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_TE_UNSUPPORTED));
        break;
    case K_EXPECT:
        len = build(head, minor ? "PUT / HTTP/1.1\r\nHost: a\r\nExpect: " : "PUT / HTTP/1.0\r\nExpect: ",
                    v, n, "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        if (!valid)
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE));
        else if (ieq(t, "100-continue"))
            FZ_ASSERT(rc == PC_HTTP_OK && r.expect_continue == minor);
        else
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_EXPECT_UNSUPPORTED));
        break;
    case K_CTYPE:
        /* one field (any case of the name) decides; a second one is refused */
        len = build(head, "POST / HTTP/1.1\r\nHost: a\r\ncontent-TYPE: ", v, n,
                    minor ? "\r\nContent-Type: text/plain\r\n\r\n" : "\r\n\r\n");
        rc = parse(head, len, hdrs, &r);
        if (!valid) {
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_HEADER_VALUE));
            break;
        }
        if (minor) {
            FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_CT_DUPLICATE));
            break;
        }
        FZ_ASSERT(rc == PC_HTTP_OK);
        FZ_ASSERT(pc_waf_body_kind(&r) == ref_body_kind(t));
        break;
    case K_PATH:
        check_strip(v, n);
        break;
    case K_REQID:
        check_reqid(v, n);
        break;
    }
    return 0;
}
