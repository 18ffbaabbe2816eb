/*
 * test_http1.c — unit tests of the strict HTTP/1.1 head scanner and parsers
 * (gateway/http1.c): malformed and valid requests, size limits at N-1 / N /
 * N+1 fed at once and byte by byte, responses, path normalisation, request
 * ids and the error table.
 *
 * Every head is copied into a heap buffer of its exact size before it is
 * scanned or parsed, so a sanitizer build catches any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>

#include "http1.h"
#include "test.h"

#define H      "Host: a\r\n"
#define ERR(e) PC_HTTP_ERR(PC_HTTP_E_##e)

static const pc_http_limits_t deflim = {8192, 32768, 100};

#define MAXH 1024
static pc_http_header_t hdrs[MAXH];

/* The heap copy of the input being examined; slices returned by the parser
 * point into it, so it lives until the next call. */
static char *cur;

static const char *own(const char *raw, size_t len)
{
    free(cur);
    cur = malloc(len ? len : 1);
    if (!cur)
        abort();
    memcpy(cur, raw, len);
    return cur;
}

static int scan_once(const char *b, size_t len, const pc_http_limits_t *lim, pc_http_scan_t *s,
                     size_t *end)
{
    memset(s, 0, sizeof(*s));
    *end = 0;
    return pc_http_scan(s, b, len, lim, end);
}

/* Feeds b one more byte per call; *at receives the length seen when the
 * scanner gave its verdict (len when it never did). */
static int scan_bytewise(const char *b, size_t len, const pc_http_limits_t *lim, pc_http_scan_t *s,
                         size_t *end, size_t *at)
{
    int rc = PC_HTTP_AGAIN;
    memset(s, 0, sizeof(*s));
    *end = 0;
    *at = len;
    for (size_t k = 1; k <= len; k++) {
        rc = pc_http_scan(s, b, k, lim, end);
        if (rc != PC_HTTP_AGAIN) {
            *at = k;
            break;
        }
    }
    return rc;
}

/* Feeds b in two pieces split at k. */
static int scan_split(const char *b, size_t len, size_t k, const pc_http_limits_t *lim,
                      pc_http_scan_t *s, size_t *end)
{
    memset(s, 0, sizeof(*s));
    *end = 0;
    int rc = pc_http_scan(s, b, k, lim, end);
    if (rc != PC_HTTP_AGAIN)
        return rc;
    return pc_http_scan(s, b, len, lim, end);
}

/* Scans raw at once, byte by byte and split at every offset (the verdicts
 * must agree), then parses the head. Returns the scan's error or AGAIN, or
 * the parser's result; *endp (if not NULL) receives the end of the head. */
static int request_verdict(const char *raw, size_t len, const pc_http_limits_t *lim,
                           pc_http_request_t *r, size_t *endp)
{
    const char *b = own(raw, len);
    pc_http_scan_t s1, s2;
    size_t end1, end2, at;
    int rc1 = scan_once(b, len, lim, &s1, &end1);
    int rc2 = scan_bytewise(b, len, lim, &s2, &end2, &at);
    CHECK_EQ_INT(rc2, rc1);
    if (rc1 == PC_HTTP_OK && rc2 == PC_HTTP_OK) {
        CHECK_EQ_INT(end2, end1);
        CHECK_EQ_INT(s2.start, s1.start);
        CHECK_EQ_INT(s2.lines, s1.lines);
        CHECK_EQ_INT(at, end1); /* the verdict comes with the final LF */
    }
    if (len < 600) {
        for (size_t k = 1; k < len; k++) {
            size_t e3;
            pc_http_scan_t s3;
            int rc3 = scan_split(b, len, k, lim, &s3, &e3);
            CHECK_EQ_INT(rc3, rc1);
            if (rc3 == PC_HTTP_OK && rc1 == PC_HTTP_OK)
                CHECK_EQ_INT(e3, end1);
        }
    }
    if (endp)
        *endp = end1;
    if (rc1 != PC_HTTP_OK)
        return rc1;
    CHECK(end1 > s1.start);
    CHECK(s1.lines >= 1);
    int rc = pc_http_parse_request(b + s1.start, end1 - s1.start, lim, hdrs, MAXH, r);
    if (rc == PC_HTTP_OK)
        CHECK(r->nheaders <= s1.lines - 1);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* malformed requests                                                       */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int rc;
    int status;
} bad_t;

#define BAD(n, s, e, st)                \
    {                                   \
        n, s, sizeof(s) - 1, ERR(e), st \
    }

static const bad_t bad_requests[] = {
    /* --- Content-Length / Transfer-Encoding together --- */
    BAD("cl-then-te",
        "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        CL_AND_TE, 400),
    BAD("te-then-cl",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        CL_AND_TE, 400),
    BAD("cl-and-te-gzip",
        "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", CL_AND_TE,
        400),
    BAD("cl-zero-and-te",
        "POST / HTTP/1.1\r\n" H "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        CL_AND_TE, 400),
    BAD("cl-and-te-http10",
        "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", CL_AND_TE,
        400),
    BAD("cl-and-te-lowercase-names",
        "POST / HTTP/1.1\r\n" H "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        CL_AND_TE, 400),
    /* --- Content-Length --- */
    BAD("cl-duplicate-same",
        "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", CL_DUPLICATE,
        400),
    BAD("cl-duplicate-differ",
        "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", CL_DUPLICATE,
        400),
    BAD("cl-duplicate-case",
        "POST / HTTP/1.1\r\n" H "content-length: 5\r\nCONTENT-LENGTH: 5\r\n\r\n", CL_DUPLICATE,
        400),
    BAD("cl-duplicate-one-empty",
        "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length:\r\n\r\n", CL_DUPLICATE, 400),
    BAD("cl-list-same", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", CL_INVALID, 400),
    BAD("cl-list-differ", "POST / HTTP/1.1\r\n" H "Content-Length: 5,6\r\n\r\n", CL_INVALID, 400),
    BAD("cl-trailing-comma", "POST / HTTP/1.1\r\n" H "Content-Length: 5,\r\n\r\n", CL_INVALID, 400),
    BAD("cl-plus", "POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", CL_INVALID, 400),
    BAD("cl-minus", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", CL_INVALID, 400),
    BAD("cl-space-inside", "POST / HTTP/1.1\r\n" H "Content-Length: 1 0\r\n\r\n", CL_INVALID, 400),
    BAD("cl-tab-inside", "POST / HTTP/1.1\r\n" H "Content-Length: 1\t0\r\n\r\n", CL_INVALID, 400),
    BAD("cl-hex-prefix", "POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", CL_INVALID, 400),
    BAD("cl-hex-letter", "POST / HTTP/1.1\r\n" H "Content-Length: a\r\n\r\n", CL_INVALID, 400),
    BAD("cl-decimal-point", "POST / HTTP/1.1\r\n" H "Content-Length: 5.0\r\n\r\n", CL_INVALID, 400),
    BAD("cl-exponent", "POST / HTTP/1.1\r\n" H "Content-Length: 1e3\r\n\r\n", CL_INVALID, 400),
    BAD("cl-quoted", "POST / HTTP/1.1\r\n" H "Content-Length: \"5\"\r\n\r\n", CL_INVALID, 400),
    BAD("cl-empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", CL_INVALID, 400),
    BAD("cl-only-spaces", "POST / HTTP/1.1\r\n" H "Content-Length:    \r\n\r\n", CL_INVALID, 400),
    BAD("cl-int64-overflow", "POST / HTTP/1.1\r\n" H "Content-Length: 9223372036854775808\r\n\r\n",
        CL_INVALID, 400),
    BAD("cl-u64-overflow", "POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n",
        CL_INVALID, 400),
    BAD("cl-19-digits-leading-zeros",
        "POST / HTTP/1.1\r\n" H "Content-Length: 0000000000000000005\r\n\r\n", CL_INVALID, 400),
    BAD("cl-unit-suffix", "POST / HTTP/1.1\r\n" H "Content-Length: 5k\r\n\r\n", CL_INVALID, 400),
    BAD("cl-nul-after", "POST / HTTP/1.1\r\n" H "Content-Length: 5\0\r\n\r\n", HEADER_VALUE, 400),
    /* --- Transfer-Encoding --- */
    BAD("te-gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", TE_UNSUPPORTED, 400),
    BAD("te-identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-chunked-chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-gzip-chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-chunked-gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-chunked-trailing-comma", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked,\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-chunked-junk", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunkedx\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-chunked-param", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-quoted", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", TE_UNSUPPORTED, 400),
    BAD("te-prefix", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunk\r\n\r\n", TE_UNSUPPORTED,
        400),
    BAD("te-two-headers",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-two-headers-identity",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n",
        TE_UNSUPPORTED, 400),
    BAD("te-http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TE_HTTP10, 400),
    BAD("te-vertical-tab",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \x0b"
        "chunked\r\n\r\n",
        HEADER_VALUE, 400),
    BAD("te-form-feed", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\x0c\r\n\r\n",
        HEADER_VALUE, 400),
    BAD("te-ws-before-colon", "POST / HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n",
        WS_BEFORE_COLON, 400),
    /* --- field syntax --- */
    BAD("obs-fold-space", "GET / HTTP/1.1\r\n" H "X-A: a\r\n b\r\n\r\n", OBS_FOLD, 400),
    BAD("obs-fold-tab", "GET / HTTP/1.1\r\n" H "X-A: a\r\n\tb\r\n\r\n", OBS_FOLD, 400),
    BAD("obs-fold-te", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n chunked\r\n\r\n", OBS_FOLD,
        400),
    BAD("space-before-first-field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", OBS_FOLD, 400),
    BAD("ws-before-colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", WS_BEFORE_COLON, 400),
    BAD("tab-before-colon", "POST / HTTP/1.1\r\n" H "Content-Length\t: 5\r\n\r\n", WS_BEFORE_COLON,
        400),
    BAD("space-inside-name", "POST / HTTP/1.1\r\n" H "Content Length: 5\r\n\r\n", WS_BEFORE_COLON,
        400),
    BAD("no-colon", "GET / HTTP/1.1\r\n" H "X-Foo\r\n\r\n", HEADER_NO_COLON, 400),
    BAD("empty-name", "GET / HTTP/1.1\r\n" H ": a\r\n\r\n", HEADER_NAME, 400),
    BAD("nul-in-name", "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n", HEADER_NAME, 400),
    BAD("nul-starts-name", "GET / HTTP/1.1\r\n" H "\0X: a\r\n\r\n", HEADER_NAME, 400),
    BAD("ctl-in-name", "GET / HTTP/1.1\r\n" H "X\x01Y: a\r\n\r\n", HEADER_NAME, 400),
    BAD("obs-text-in-name", "GET / HTTP/1.1\r\n" H "X\xff: a\r\n\r\n", HEADER_NAME, 400),
    BAD("quote-in-name", "GET / HTTP/1.1\r\n" H "X\"Y: a\r\n\r\n", HEADER_NAME, 400),
    BAD("at-in-name", "GET / HTTP/1.1\r\n" H "X@Y: a\r\n\r\n", HEADER_NAME, 400),
    BAD("nul-in-value", "GET / HTTP/1.1\r\n" H "X-A: a\0b\r\n\r\n", HEADER_VALUE, 400),
    BAD("ctl-in-value",
        "GET / HTTP/1.1\r\n" H "X-A: a\x01"
        "b\r\n\r\n",
        HEADER_VALUE, 400),
    BAD("del-in-value", "GET / HTTP/1.1\r\n" H "X-A: a\x7f\r\n\r\n", HEADER_VALUE, 400),
    BAD("esc-in-value", "GET / HTTP/1.1\r\n" H "X-A: \x1b[0m\r\n\r\n", HEADER_VALUE, 400),
    BAD("bare-cr-in-value", "GET / HTTP/1.1\r\n" H "X-A: a\rb\r\n\r\n", HEADER_VALUE, 400),
    BAD("cr-cr-lf", "GET / HTTP/1.1\r\n" H "X-A: a\r\r\n\r\n", HEADER_VALUE, 400),
    BAD("bare-cr-in-host", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", HEADER_VALUE, 400),
    /* --- line endings --- */
    BAD("bare-lf-request-line", "GET / HTTP/1.1\n" H "\r\n", BARE_LF, 400),
    BAD("bare-lf-field", "GET / HTTP/1.1\r\nHost: a\n\r\n", BARE_LF, 400),
    BAD("bare-lf-final", "GET / HTTP/1.1\r\n" H "\n", BARE_LF, 400),
    BAD("bare-lf-leading", "\nGET / HTTP/1.1\r\n" H "\r\n", BARE_LF, 400),
    BAD("bare-lf-in-value", "GET / HTTP/1.1\r\n" H "X-A: a\nb\r\n\r\n", BARE_LF, 400),
    BAD("bare-lf-lf", "GET / HTTP/1.1\n\n", BARE_LF, 400),
    BAD("bare-cr-request-line", "GET /\r HTTP/1.1\r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("five-leading-crlf", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", REQUEST_LINE, 400),
    /* --- Host --- */
    BAD("host-missing", "GET / HTTP/1.1\r\n\r\n", HOST_MISSING, 400),
    BAD("host-missing-with-fields", "GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", HOST_MISSING, 400),
    BAD("host-missing-absolute", "GET http://a/ HTTP/1.1\r\n\r\n", HOST_MISSING, 400),
    BAD("host-duplicate", "GET / HTTP/1.1\r\n" H H "\r\n", HOST_DUPLICATE, 400),
    BAD("host-duplicate-differ", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HOST_DUPLICATE,
        400),
    BAD("host-duplicate-case", "GET / HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n", HOST_DUPLICATE, 400),
    BAD("content-type-duplicate",
        "POST / HTTP/1.1\r\n" H "Content-Type: application/octet-stream\r\n"
        "content-type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        CT_DUPLICATE, 400),
    BAD("host-empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", HOST_INVALID, 400),
    BAD("host-space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HOST_INVALID, 400),
    BAD("host-userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", HOST_INVALID, 400),
    BAD("host-port-empty", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", HOST_INVALID, 400),
    BAD("host-port-overflow", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", HOST_INVALID, 400),
    BAD("host-port-six-digits", "GET / HTTP/1.1\r\nHost: a:000080\r\n\r\n", HOST_INVALID, 400),
    BAD("host-port-alpha", "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", HOST_INVALID, 400),
    BAD("host-two-ports", "GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", HOST_INVALID, 400),
    BAD("host-percent", "GET / HTTP/1.1\r\nHost: a%2e\r\n\r\n", HOST_INVALID, 400),
    BAD("host-comma", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", HOST_INVALID, 400),
    BAD("host-slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HOST_INVALID, 400),
    BAD("host-ipv6-unclosed", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", HOST_INVALID, 400),
    BAD("host-ipv6-bad-char", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", HOST_INVALID, 400),
    BAD("host-ipv6-zone", "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", HOST_INVALID, 400),
    BAD("host-ipv6-empty", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", HOST_INVALID, 400),
    BAD("host-ipv6-junk-after", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", HOST_INVALID, 400),
    BAD("host-only-port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", HOST_INVALID, 400),
    BAD("host-mismatch", "GET http://b/ HTTP/1.1\r\n" H "\r\n", HOST_MISMATCH, 400),
    BAD("host-mismatch-port", "GET http://a:80/ HTTP/1.1\r\n" H "\r\n", HOST_MISMATCH, 400),
    /* --- request-target --- */
    BAD("target-fragment", "GET /a#b HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-no-slash", "GET a HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-nul", "GET /a\0 HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-ctl", "GET /\x01 HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-tab", "GET /\t HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-del", "GET /\x7f HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-obs-text", "GET /\xc3\xa9 HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("target-double-space", "GET  / HTTP/1.1\r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("target-space-inside", "GET /a b HTTP/1.1\r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("asterisk-get", "GET * HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("asterisk-twice", "OPTIONS ** HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("connect-authority", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", CONNECT, 405),
    BAD("connect-origin", "CONNECT / HTTP/1.1\r\n" H "\r\n", CONNECT, 405),
    BAD("absolute-userinfo", "GET http://u@a/ HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-userinfo-pass", "GET http://u:p@a/ HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-ftp", "GET ftp://a/ HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-empty-authority", "GET http:///a HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-scheme-only", "GET http:// HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-no-slashes", "GET http:a/ HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-bad-port", "GET http://a:99999/ HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    BAD("absolute-backslash", "GET http://a\\b/ HTTP/1.1\r\n" H "\r\n", TARGET, 400),
    /* --- request line, method, version --- */
    BAD("empty-method", " / HTTP/1.1\r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("method-only", "GET\r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("no-version", "GET /\r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("method-ctl", "G\x01T / HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    BAD("method-paren", "GE(T / HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    BAD("method-tab", "GET\t/ HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    /* tokens, but refused like nginx: a backend that upper-cases methods
     * would undo route method restrictions */
    BAD("method-lowercase", "get / HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    BAD("method-mixed-case", "Get / HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    BAD("method-digit", "G3T / HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    BAD("method-tchar-punct", "GET! / HTTP/1.1\r\n" H "\r\n", METHOD, 400),
    BAD("method-33-chars", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\n" H "\r\n", METHOD,
        400),
    BAD("version-lowercase", "GET / http/1.1\r\n" H "\r\n", VERSION, 400),
    BAD("version-1.2", "GET / HTTP/1.2\r\n" H "\r\n", VERSION_UNSUPPORTED, 505),
    BAD("version-2.0", "GET / HTTP/2.0\r\n" H "\r\n", VERSION_UNSUPPORTED, 505),
    BAD("version-3.0", "GET / HTTP/3.0\r\n" H "\r\n", VERSION_UNSUPPORTED, 505),
    BAD("version-0.9", "GET / HTTP/0.9\r\n" H "\r\n", VERSION_UNSUPPORTED, 505),
    BAD("h2-preface", "PRI * HTTP/2.0\r\n\r\n", VERSION_UNSUPPORTED, 505),
    BAD("version-1.10", "GET / HTTP/1.10\r\n" H "\r\n", VERSION, 400),
    BAD("version-01.1", "GET / HTTP/01.1\r\n" H "\r\n", VERSION, 400),
    BAD("version-short", "GET / HTTP/1\r\n" H "\r\n", VERSION, 400),
    BAD("version-letters", "GET / HTTP/a.b\r\n" H "\r\n", VERSION, 400),
    BAD("version-comma", "GET / HTTP/1,1\r\n" H "\r\n", VERSION, 400),
    BAD("version-trailing-space", "GET / HTTP/1.1 \r\n" H "\r\n", REQUEST_LINE, 400),
    BAD("version-trailing-tab", "GET / HTTP/1.1\t\r\n" H "\r\n", VERSION, 400),
    BAD("leading-space", " GET / HTTP/1.1\r\n" H "\r\n", REQUEST_LINE, 400),
    /* --- Expect --- */
    BAD("expect-other", "GET / HTTP/1.1\r\n" H "Expect: 200-ok\r\n\r\n", EXPECT_UNSUPPORTED, 417),
    BAD("expect-102", "GET / HTTP/1.1\r\n" H "Expect: 102-processing\r\n\r\n", EXPECT_UNSUPPORTED,
        417),
    BAD("expect-empty", "GET / HTTP/1.1\r\n" H "Expect:\r\n\r\n", EXPECT_UNSUPPORTED, 417),
    BAD("expect-list", "GET / HTTP/1.1\r\n" H "Expect: 100-continue, foo\r\n\r\n",
        EXPECT_UNSUPPORTED, 417),
    BAD("expect-truncated", "GET / HTTP/1.1\r\n" H "Expect: 100-continu\r\n\r\n",
        EXPECT_UNSUPPORTED, 417),
    BAD("expect-second-bad", "GET / HTTP/1.1\r\n" H "Expect: 100-continue\r\nExpect: x\r\n\r\n",
        EXPECT_UNSUPPORTED, 417),
    /* --- Connection --- */
    BAD("connection-quoted", "GET / HTTP/1.1\r\n" H "Connection: \"close\"\r\n\r\n",
        CONNECTION_INVALID, 400),
    BAD("connection-semicolon", "GET / HTTP/1.1\r\n" H "Connection: close;x\r\n\r\n",
        CONNECTION_INVALID, 400),
    BAD("connection-slash", "GET / HTTP/1.1\r\n" H "Connection: keep-alive/1\r\n\r\n",
        CONNECTION_INVALID, 400),
    BAD("connection-33-tokens",
        "GET / HTTP/1.1\r\n" H "Connection: a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,a15,"
        "a16,a17,a18,a19,a20,a21,a22,a23,a24,a25,a26,a27,a28,a29,a30,a31,a32,a33\r\n\r\n",
        CONNECTION_INVALID, 400),
    BAD("connection-space-in-token", "GET / HTTP/1.1\r\n" H "Connection: keep alive\r\n\r\n",
        CONNECTION_INVALID, 400),
};

TEST(malformed_requests)
{
    const char *saved = test_current;
    size_t n = sizeof(bad_requests) / sizeof(bad_requests[0]);
    CHECK(n >= 90);
    for (size_t i = 0; i < n; i++) {
        const bad_t *c = &bad_requests[i];
        pc_http_request_t r;
        test_current = c->name;
        int rc = request_verdict(c->raw, c->len, &deflim, &r, NULL);
        CHECK_EQ_INT(rc, c->rc);
        CHECK_EQ_INT(pc_http_err_status(rc), c->status);
        CHECK(pc_http_err_detail(rc) != NULL && *pc_http_err_detail(rc) != '\0');
        /* No limit is involved in any of these: the verdict is the same
         * without limits. */
        rc = request_verdict(c->raw, c->len, NULL, &r, NULL);
        CHECK_EQ_INT(rc, c->rc);
    }
    test_current = saved;
    printf("malformed requests: %zu\n", n);
}

/* ---------------------------------------------------------------------- */
/* valid requests                                                           */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int mid;
    const char *method;
    const char *target;
    const char *path;
    const char *query; /* NULL: no '?' in the target */
    const char *host;
    const char *authority; /* absolute-form only */
    int form;
    int v10;      /* HTTP/1.0 */
    int body;     /* pc_body_kind_e */
    long long cl; /* checked when body == PC_BODY_LENGTH */
    int close;    /* keep_alive == 0 */
    int expect;   /* expect_continue */
    unsigned nh;  /* header count */
    size_t skip;  /* leading CRLF bytes skipped by the scan */
} good_t;

#define RAW(s) .raw = s, .len = sizeof(s) - 1

static const good_t good_requests[] = {
    {.name = "simple-get",
     RAW("GET / HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 1},
    {.name = "query",
     RAW("GET /a/b?c=d&e HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/a/b?c=d&e",
     .path = "/a/b",
     .query = "c=d&e",
     .host = "a",
     .nh = 1},
    {.name = "empty-query",
     RAW("GET /a? HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/a?",
     .path = "/a",
     .query = "",
     .host = "a",
     .nh = 1},
    {.name = "query-with-slash-and-question",
     RAW("GET /a?b/c?d HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/a?b/c?d",
     .path = "/a",
     .query = "b/c?d",
     .host = "a",
     .nh = 1},
    {.name = "head",
     RAW("HEAD /x HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_HEAD,
     .method = "HEAD",
     .target = "/x",
     .path = "/x",
     .host = "a",
     .nh = 1},
    {.name = "post-cl",
     RAW("POST /p HTTP/1.1\r\n" H "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/p",
     .path = "/p",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 5,
     .nh = 3},
    {.name = "post-cl-zero",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 0,
     .nh = 2},
    {.name = "post-chunked",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_CHUNKED,
     .nh = 2},
    {.name = "te-uppercase",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: CHUNKED\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_CHUNKED,
     .nh = 2},
    {.name = "te-ows-around",
     RAW("POST / HTTP/1.1\r\n" H "transfer-encoding: \t chunked \t\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_CHUNKED,
     .nh = 2},
    {.name = "te-no-space",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding:chunked\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_CHUNKED,
     .nh = 2},
    {.name = "cl-leading-zeros",
     RAW("PUT /r HTTP/1.1\r\n" H "Content-Length: 007\r\n\r\n"),
     .mid = PC_M_PUT,
     .method = "PUT",
     .target = "/r",
     .path = "/r",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 7,
     .nh = 2},
    {.name = "cl-18-digits",
     RAW("PUT / HTTP/1.1\r\n" H "Content-Length: 999999999999999999\r\n\r\n"),
     .mid = PC_M_PUT,
     .method = "PUT",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 999999999999999999LL,
     .nh = 2},
    {.name = "cl-ows",
     RAW("PUT / HTTP/1.1\r\n" H "Content-Length:\t 12 \t\r\n\r\n"),
     .mid = PC_M_PUT,
     .method = "PUT",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 12,
     .nh = 2},
    {.name = "delete",
     RAW("DELETE /d/1 HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_DELETE,
     .method = "DELETE",
     .target = "/d/1",
     .path = "/d/1",
     .host = "a",
     .nh = 1},
    {.name = "options-asterisk",
     RAW("OPTIONS * HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_OPTIONS,
     .method = "OPTIONS",
     .target = "*",
     .path = "*",
     .host = "a",
     .form = PC_TARGET_ASTERISK,
     .nh = 1},
    {.name = "options-path",
     RAW("OPTIONS /o HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_OPTIONS,
     .method = "OPTIONS",
     .target = "/o",
     .path = "/o",
     .host = "a",
     .nh = 1},
    {.name = "patch",
     RAW("PATCH /p HTTP/1.1\r\n" H "Content-Length: 2\r\n\r\n"),
     .mid = PC_M_PATCH,
     .method = "PATCH",
     .target = "/p",
     .path = "/p",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 2,
     .nh = 2},
    {.name = "trace",
     RAW("TRACE / HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_TRACE,
     .method = "TRACE",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 1},
    {.name = "extension-method",
     RAW("PURGE /c HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_OTHER,
     .method = "PURGE",
     .target = "/c",
     .path = "/c",
     .host = "a",
     .nh = 1},
    {.name = "method-with-dash-and-underscore",
     RAW("VERSION-CONTROL_X / HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_OTHER,
     .method = "VERSION-CONTROL_X",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 1},
    {.name = "method-32-chars",
     RAW("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_OTHER,
     .method = "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 1},
    {.name = "absolute-form",
     RAW("GET http://a/x?y HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "http://a/x?y",
     .path = "/x",
     .query = "y",
     .host = "a",
     .authority = "a",
     .form = PC_TARGET_ABSOLUTE,
     .nh = 1},
    {.name = "absolute-https-port",
     RAW("GET https://a:8443/ HTTP/1.1\r\nHost: a:8443\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "https://a:8443/",
     .path = "/",
     .host = "a:8443",
     .authority = "a:8443",
     .form = PC_TARGET_ABSOLUTE,
     .nh = 1},
    {.name = "absolute-case-insensitive",
     RAW("GET HTTP://A/ HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "HTTP://A/",
     .path = "/",
     .host = "a",
     .authority = "A",
     .form = PC_TARGET_ABSOLUTE,
     .nh = 1},
    {.name = "absolute-empty-path",
     RAW("GET http://a HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "http://a",
     .path = "/",
     .host = "a",
     .authority = "a",
     .form = PC_TARGET_ABSOLUTE,
     .nh = 1},
    {.name = "absolute-query-no-path",
     RAW("GET http://a?q HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "http://a?q",
     .path = "/",
     .query = "q",
     .host = "a",
     .authority = "a",
     .form = PC_TARGET_ABSOLUTE,
     .nh = 1},
    {.name = "absolute-ipv6",
     RAW("GET http://[::1]:8080/v HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "http://[::1]:8080/v",
     .path = "/v",
     .host = "[::1]:8080",
     .authority = "[::1]:8080",
     .form = PC_TARGET_ABSOLUTE,
     .nh = 1},
    {.name = "http10-no-host",
     RAW("GET /old HTTP/1.0\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/old",
     .path = "/old",
     .host = "",
     .v10 = 1,
     .close = 1},
    {.name = "http10-keep-alive",
     RAW("GET / HTTP/1.0\r\n" H "Connection: keep-alive\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .v10 = 1,
     .nh = 2},
    {.name = "http10-keep-alive-and-close",
     RAW("GET / HTTP/1.0\r\n" H "Connection: keep-alive, close\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .v10 = 1,
     .close = 1,
     .nh = 2},
    {.name = "http10-absolute-no-host",
     RAW("GET http://b:81/z HTTP/1.0\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "http://b:81/z",
     .path = "/z",
     .host = "b:81",
     .authority = "b:81",
     .form = PC_TARGET_ABSOLUTE,
     .v10 = 1,
     .close = 1},
    {.name = "http10-post-cl",
     RAW("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "",
     .v10 = 1,
     .body = PC_BODY_LENGTH,
     .cl = 3,
     .close = 1,
     .nh = 1},
    {.name = "connection-close",
     RAW("GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .close = 1,
     .nh = 2},
    {.name = "connection-close-uppercase",
     RAW("GET / HTTP/1.1\r\n" H "Connection: CLOSE\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .close = 1,
     .nh = 2},
    {.name = "connection-close-in-second-field",
     RAW("GET / HTTP/1.1\r\n" H "Connection: keep-alive\r\nConnection: close\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .close = 1,
     .nh = 3},
    {.name = "connection-empty-elements",
     RAW("GET / HTTP/1.1\r\n" H "Connection: , ,\tclose ,\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .close = 1,
     .nh = 2},
    {.name = "connection-keep-alive-11",
     RAW("GET / HTTP/1.1\r\n" H "Connection: Keep-Alive\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 2},
    {.name = "connection-empty",
     RAW("GET / HTTP/1.1\r\n" H "Connection:\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 2},
    {.name = "expect-continue",
     RAW("POST / HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n"),
     .mid = PC_M_POST,
     .method = "POST",
     .target = "/",
     .path = "/",
     .host = "a",
     .body = PC_BODY_LENGTH,
     .cl = 1,
     .expect = 1,
     .nh = 3},
    {.name = "expect-continue-case",
     RAW("PUT / HTTP/1.1\r\n" H "expect: 100-Continue\r\n\r\n"),
     .mid = PC_M_PUT,
     .method = "PUT",
     .target = "/",
     .path = "/",
     .host = "a",
     .expect = 1,
     .nh = 2},
    {.name = "expect-continue-http10",
     RAW("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
     .mid = PC_M_PUT,
     .method = "PUT",
     .target = "/",
     .path = "/",
     .host = "",
     .v10 = 1,
     .close = 1,
     .nh = 1},
    {.name = "one-leading-crlf",
     RAW("\r\nGET / HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 1,
     .skip = 2},
    {.name = "four-leading-crlf",
     RAW("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 1,
     .skip = 8},
    {.name = "host-port",
     RAW("GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a.example:8080",
     .nh = 1},
    {.name = "host-ipv4",
     RAW("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "127.0.0.1",
     .nh = 1},
    {.name = "host-ipv6",
     RAW("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "[::1]",
     .nh = 1},
    {.name = "host-mixed-case-ows",
     RAW("GET / HTTP/1.1\r\nhOsT:  A.Example.COM  \r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "A.Example.COM",
     .nh = 1},
    {.name = "host-last",
     RAW("GET / HTTP/1.1\r\nAccept: */*\r\nX-A: 1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 3},
    {.name = "underscore-cl-is-not-framing",
     RAW("GET / HTTP/1.1\r\n" H "Content_Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 3},
    {.name = "scheme-relative-looking-path",
     RAW("GET //a/b HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "//a/b",
     .path = "//a/b",
     .host = "a",
     .nh = 1},
    {.name = "encoded-dots-parse",
     RAW("GET /%2e%2e/x HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/%2e%2e/x",
     .path = "/%2e%2e/x",
     .host = "a",
     .nh = 1},
    {.name = "backslash-and-subdelims",
     RAW("GET /a\\b;c=d,e!$'()* HTTP/1.1\r\n" H "\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/a\\b;c=d,e!$'()*",
     .path = "/a\\b;c=d,e!$'()*",
     .host = "a",
     .nh = 1},
    {.name = "obs-text-value",
     RAW("GET / HTTP/1.1\r\n" H "X-Name: caf\xc3\xa9\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 2},
    {.name = "empty-value",
     RAW("GET / HTTP/1.1\r\n" H "X-Empty:\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 2},
    {.name = "upgrade-is-plain-request",
     RAW("GET / HTTP/1.1\r\n" H "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 3},
    {.name = "tchar-names",
     RAW("GET / HTTP/1.1\r\n" H "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"),
     .mid = PC_M_GET,
     .method = "GET",
     .target = "/",
     .path = "/",
     .host = "a",
     .nh = 2},
};

static void check_slice_in_head(pc_str_t v, const char *head, size_t len)
{
    if (v.n == 0)
        return;
    CHECK(v.p >= head && v.p + v.n <= head + len);
}

TEST(valid_requests)
{
    const char *saved = test_current;
    size_t n = sizeof(good_requests) / sizeof(good_requests[0]);
    CHECK(n >= 35);
    for (size_t i = 0; i < n; i++) {
        const good_t *c = &good_requests[i];
        pc_http_request_t r;
        size_t end;
        test_current = c->name;
        int rc = request_verdict(c->raw, c->len, &deflim, &r, &end);
        CHECK_EQ_INT(rc, PC_HTTP_OK);
        if (rc != PC_HTTP_OK)
            continue;
        CHECK_EQ_INT(end, c->len);
        CHECK_EQ_INT(r.method_id, c->mid);
        CHECK_SLICE(r.method.p, r.method.n, c->method);
        CHECK_SLICE(r.target.p, r.target.n, c->target);
        CHECK_SLICE(r.path.p, r.path.n, c->path);
        if (c->query) {
            CHECK(r.query.p != NULL);
            CHECK_SLICE(r.query.p, r.query.n, c->query);
        } else {
            CHECK(r.query.p == NULL);
            CHECK_EQ_INT(r.query.n, 0);
        }
        CHECK_SLICE(r.host.p, r.host.n, c->host);
        CHECK_SLICE(r.authority.p, r.authority.n, c->authority ? c->authority : "");
        CHECK_EQ_INT(r.target_form, c->form);
        CHECK_EQ_INT(r.minor, c->v10 ? 0 : 1);
        CHECK_EQ_INT(r.body, c->body);
        CHECK_EQ_INT(r.content_length, c->body == PC_BODY_LENGTH ? c->cl : -1);
        CHECK_EQ_INT(r.keep_alive, !c->close);
        CHECK_EQ_INT(r.expect_continue, c->expect);
        CHECK_EQ_INT(r.nheaders, c->nh);
        CHECK(r.headers == hdrs);
        /* Every slice points into the head (the absolute-form "/" aside). */
        const char *head = cur + c->skip;
        size_t hl = c->len - c->skip;
        check_slice_in_head(r.method, head, hl);
        check_slice_in_head(r.target, head, hl);
        if (!(c->form == PC_TARGET_ABSOLUTE && r.path.n == 1))
            check_slice_in_head(r.path, head, hl);
        check_slice_in_head(r.query, head, hl);
        check_slice_in_head(r.host, head, hl);
        check_slice_in_head(r.authority, head, hl);
        CHECK(r.method.p == head);
        for (uint32_t k = 0; k < r.nheaders; k++) {
            check_slice_in_head(r.headers[k].name, head, hl);
            check_slice_in_head(r.headers[k].value, head, hl);
            CHECK(r.headers[k].name.n > 0);
            /* names with '_' are not forwarded (CGI-style aliasing of '-') */
            CHECK(!!(r.headers[k].flags & PC_HDR_F_DROP) ==
                  !!memchr(r.headers[k].name.p, '_', r.headers[k].name.n));
            if (r.headers[k].id == PC_HDR_HOST)
                CHECK(!(r.headers[k].flags & PC_HDR_F_HOP));
        }
    }
    test_current = saved;
    printf("valid requests: %zu\n", n);
}

/* Header slices, ids, trimming and hop-by-hop flags in detail. */
TEST(header_slices_and_flags)
{
    static const char raw[] = "POST /up HTTP/1.1\r\n"
                              "Host:  a:80 \r\n"
                              "Connection: X-Secret, keep-alive, Host, x-forwarded-for\r\n"
                              "X-Secret: s\r\n"
                              "Keep-Alive: timeout=5\r\n"
                              "Proxy-Connection: keep-alive\r\n"
                              "TE: trailers\r\n"
                              "Trailer: X-T\r\n"
                              "Upgrade: h2c\r\n"
                              "Proxy-Authenticate: Basic\r\n"
                              "X-Forwarded-For: 1.2.3.4\r\n"
                              "X-Request-Id: abc-123\r\n"
                              "Date: today\r\n"
                              "Expect: 100-continue\r\n"
                              "Transfer-Encoding: chunked\r\n"
                              "X-Plain:\t v1  v2 \t\r\n"
                              "x-secret: again\r\n"
                              "\r\n";
    pc_http_request_t r;
    int rc = request_verdict(raw, sizeof(raw) - 1, &deflim, &r, NULL);
    CHECK_EQ_INT(rc, PC_HTTP_OK);
    if (rc != PC_HTTP_OK)
        return;
    CHECK_EQ_INT(r.nheaders, 16);
    static const struct {
        const char *name, *value;
        int id;
        int hop;
    } want[] = {
        {"Host", "a:80", PC_HDR_HOST, 0},
        {"Connection", "X-Secret, keep-alive, Host, x-forwarded-for", PC_HDR_CONNECTION, 1},
        {"X-Secret", "s", PC_HDR_OTHER, 1},
        {"Keep-Alive", "timeout=5", PC_HDR_KEEP_ALIVE, 1},
        {"Proxy-Connection", "keep-alive", PC_HDR_PROXY_CONNECTION, 1},
        {"TE", "trailers", PC_HDR_TE, 1},
        {"Trailer", "X-T", PC_HDR_TRAILER, 1},
        {"Upgrade", "h2c", PC_HDR_UPGRADE, 1},
        {"Proxy-Authenticate", "Basic", PC_HDR_PROXY_AUTHENTICATE, 1},
        {"X-Forwarded-For", "1.2.3.4", PC_HDR_X_FORWARDED_FOR, 1}, /* named in Connection */
        {"X-Request-Id", "abc-123", PC_HDR_X_REQUEST_ID, 0},
        {"Date", "today", PC_HDR_DATE, 0},
        {"Expect", "100-continue", PC_HDR_EXPECT, 1},
        {"Transfer-Encoding", "chunked", PC_HDR_TRANSFER_ENCODING, 1},
        {"X-Plain", "v1  v2", PC_HDR_OTHER, 0},
        {"x-secret", "again", PC_HDR_OTHER, 1}, /* Connection names are case-insensitive */
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const pc_http_header_t *h = &r.headers[i];
        CHECK_SLICE(h->name.p, h->name.n, want[i].name);
        CHECK_SLICE(h->value.p, h->value.n, want[i].value);
        CHECK_EQ_INT(h->id, want[i].id);
        CHECK_EQ_INT(!!(h->flags & PC_HDR_F_HOP), want[i].hop);
        CHECK(!(h->flags & PC_HDR_F_DROP));
    }
    CHECK_SLICE(r.host.p, r.host.n, "a:80");
    CHECK_EQ_INT(r.body, PC_BODY_CHUNKED);
    CHECK_EQ_INT(r.keep_alive, 1);
    CHECK_EQ_INT(r.expect_continue, 1);

    /* lookups */
    const pc_http_header_t *h = pc_http_find(r.headers, r.nheaders, PC_HDR_X_REQUEST_ID);
    CHECK(h == &r.headers[10]);
    CHECK(pc_http_find(r.headers, r.nheaders, PC_HDR_CONTENT_LENGTH) == NULL);
    CHECK(pc_http_find(r.headers, r.nheaders, PC_HDR_X_FORWARDED_HOST) == NULL);
    CHECK(pc_http_find_name(r.headers, r.nheaders, PC_STR("X-SECRET")) == &r.headers[2]);
    CHECK(pc_http_find_name(r.headers, r.nheaders, PC_STR("x-plain")) == &r.headers[14]);
    CHECK(pc_http_find_name(r.headers, r.nheaders, PC_STR("X-Plai")) == NULL);
    CHECK(pc_http_find(r.headers, 0, PC_HDR_HOST) == NULL);
}

TEST(content_length_is_hop_and_host_never)
{
    static const char raw[] = "POST / HTTP/1.1\r\nConnection: content-length, host, close\r\n"
                              "Content-Length: 3\r\nhost: a\r\n\r\n";
    pc_http_request_t r;
    CHECK_EQ_INT(request_verdict(raw, sizeof(raw) - 1, &deflim, &r, NULL), PC_HTTP_OK);
    CHECK_EQ_INT(r.nheaders, 3);
    CHECK_EQ_INT(r.headers[1].id, PC_HDR_CONTENT_LENGTH);
    CHECK(r.headers[1].flags & PC_HDR_F_HOP);
    CHECK_EQ_INT(r.headers[2].id, PC_HDR_HOST);
    CHECK_EQ_INT(r.headers[2].flags, 0);
    CHECK_EQ_INT(r.body, PC_BODY_LENGTH);
    CHECK_EQ_INT(r.content_length, 3);
    CHECK_EQ_INT(r.keep_alive, 0);
}

/* Header ids: every known name in any case maps to its id; look-alikes do not. */
TEST(header_ids)
{
    static const struct {
        const char *name;
        int id;
        const char *value; /* one the request can carry alone */
    } names[] = {
        {"HOST", PC_HDR_HOST, "a"},
        {"content-LENGTH", PC_HDR_CONTENT_LENGTH, "0"},
        {"Transfer-encoding", PC_HDR_TRANSFER_ENCODING, "chunked"},
        {"connection", PC_HDR_CONNECTION, "close"},
        {"KEEP-ALIVE", PC_HDR_KEEP_ALIVE, "v"},
        {"proxy-connection", PC_HDR_PROXY_CONNECTION, "v"},
        {"te", PC_HDR_TE, "v"},
        {"trailer", PC_HDR_TRAILER, "v"},
        {"upgrade", PC_HDR_UPGRADE, "v"},
        {"EXPECT", PC_HDR_EXPECT, "100-continue"},
        {"proxy-authenticate", PC_HDR_PROXY_AUTHENTICATE, "v"},
        {"x-forwarded-for", PC_HDR_X_FORWARDED_FOR, "v"},
        {"X-Forwarded-Proto", PC_HDR_X_FORWARDED_PROTO, "v"},
        {"X-FORWARDED-HOST", PC_HDR_X_FORWARDED_HOST, "v"},
        {"x-request-id", PC_HDR_X_REQUEST_ID, "v"},
        {"date", PC_HDR_DATE, "v"},
        {"Content_Length", PC_HDR_OTHER, "v"},
        {"Content-Lengths", PC_HDR_OTHER, "v"},
        {"Hos", PC_HDR_OTHER, "v"},
        {"Hostx", PC_HDR_OTHER, "v"},
        {"Transfer-Encodin", PC_HDR_OTHER, "v"},
        {"X-Forwarded_For", PC_HDR_OTHER, "v"},
        {"Trailers", PC_HDR_OTHER, "v"},
        {"T", PC_HDR_OTHER, "v"},
        {"Accept", PC_HDR_OTHER, "v"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char raw[256];
        int host = names[i].id == PC_HDR_HOST;
        int n = snprintf(raw, sizeof(raw), "POST / HTTP/1.1\r\nX: 1\r\n%s: %s\r\n%s\r\n",
                         names[i].name, names[i].value, host ? "" : "Host: a\r\n");
        pc_http_request_t r;
        test_current = names[i].name;
        int rc = request_verdict(raw, (size_t)n, &deflim, &r, NULL);
        CHECK_EQ_INT(rc, PC_HTTP_OK);
        if (rc == PC_HTTP_OK)
            CHECK_EQ_INT(r.headers[1].id, names[i].id);
    }
    test_current = "header_ids";
}

/* A request followed by more bytes: the scan stops at the end of the head
 * and the next request is untouched. */
TEST(pipelined_heads)
{
    static const char raw[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                              "GET /two HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *b = own(raw, sizeof(raw) - 1);
    pc_http_scan_t s;
    size_t end;
    CHECK_EQ_INT(scan_once(b, sizeof(raw) - 1, &deflim, &s, &end), PC_HTTP_OK);
    CHECK_EQ_INT(end, 47);
    pc_http_request_t r;
    CHECK_EQ_INT(pc_http_parse_request(b, end, &deflim, hdrs, MAXH, &r), PC_HTTP_OK);
    CHECK_EQ_INT(r.content_length, 5);
    size_t next = end + 5;
    CHECK_EQ_INT(scan_once(b + next, sizeof(raw) - 1 - next, &deflim, &s, &end), PC_HTTP_OK);
    CHECK_EQ_INT(next + end, sizeof(raw) - 1);
    CHECK_EQ_INT(pc_http_parse_request(b + next, end, &deflim, hdrs, MAXH, &r), PC_HTTP_OK);
    CHECK_SLICE(r.path.p, r.path.n, "/two");
}

/* The scan resumes where it stopped: an incomplete head is AGAIN, whatever
 * the split, and the parse of an incomplete head is refused. */
TEST(scan_incomplete)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *b = own(raw, sizeof(raw) - 1);
    pc_http_scan_t s;
    size_t end = 12345;
    for (size_t k = 0; k < sizeof(raw) - 1; k++) {
        CHECK_EQ_INT(scan_once(b, k, &deflim, &s, &end), PC_HTTP_AGAIN);
        CHECK_EQ_INT(s.pos, k);
    }
    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(pc_http_scan(&s, b, 0, &deflim, &end), PC_HTTP_AGAIN);
    CHECK_EQ_INT(pc_http_scan(&s, b, 0, &deflim, &end), PC_HTTP_AGAIN);
    pc_http_request_t r;
    CHECK_EQ_INT(pc_http_parse_request(b, 16, &deflim, hdrs, MAXH, &r), ERR(REQUEST_LINE));
    CHECK_EQ_INT(pc_http_parse_request(b, 3, &deflim, hdrs, MAXH, &r), ERR(REQUEST_LINE));
    CHECK_EQ_INT(pc_http_parse_request(b, 0, &deflim, hdrs, MAXH, &r), ERR(REQUEST_LINE));
    /* a head handed over with its leading CRLFs still attached is refused */
    static const char lead[] = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    b = own(lead, sizeof(lead) - 1);
    CHECK_EQ_INT(pc_http_parse_request(b, sizeof(lead) - 1, &deflim, hdrs, MAXH, &r),
                 ERR(REQUEST_LINE));
}

/* The header array capacity: one short is 431, exactly enough is fine. */
TEST(header_capacity)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    const char *b = own(raw, sizeof(raw) - 1);
    pc_http_header_t small[3];
    pc_http_request_t r;
    CHECK_EQ_INT(pc_http_parse_request(b, sizeof(raw) - 1, &deflim, small, 3, &r), PC_HTTP_OK);
    CHECK_EQ_INT(r.nheaders, 3);
    int rc = pc_http_parse_request(b, sizeof(raw) - 1, &deflim, small, 2, &r);
    CHECK_EQ_INT(rc, ERR(TOO_MANY_HEADERS));
    CHECK_EQ_INT(pc_http_err_status(rc), 431);
    CHECK_EQ_INT(pc_http_parse_request(b, sizeof(raw) - 1, &deflim, small, 0, &r),
                 ERR(TOO_MANY_HEADERS));
}

/* ---------------------------------------------------------------------- */
/* size limits                                                              */

/* Builds "<method> /aaa...a HTTP/1.1\r\nHost: a\r\n\r\n" with a target of
 * tlen bytes; returns its length. */
static size_t build_uri_request(char *out, const char *method, size_t tlen)
{
    size_t n = 0, ml = strlen(method);
    memcpy(out, method, ml);
    n += ml;
    out[n++] = ' ';
    out[n++] = '/';
    for (size_t i = 1; i < tlen; i++)
        out[n++] = (char)('a' + i % 26);
    static const char tail[] = " HTTP/1.1\r\nHost: a\r\n\r\n";
    memcpy(out + n, tail, sizeof(tail) - 1);
    return n + sizeof(tail) - 1;
}

static void check_uri_limit(size_t max_uri)
{
    pc_http_limits_t lim = {max_uri, 32768, 100};
    char *buf = malloc(max_uri + 200);
    static const char *methods[] = {"GET", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t t = max_uri - 1; t <= max_uri + 1; t++) {
            size_t len = build_uri_request(buf, methods[m], t);
            pc_http_request_t r;
            int rc = request_verdict(buf, len, &lim, &r, NULL);
            if (t <= max_uri) {
                CHECK_EQ_INT(rc, PC_HTTP_OK);
                CHECK_EQ_INT(r.target.n, t);
            } else {
                CHECK_EQ_INT(rc, ERR(URI_TOO_LONG));
                CHECK_EQ_INT(pc_http_err_status(rc), 414);
            }
            /* the parser enforces the limit on its own too */
            const char *b = own(buf, len);
            rc = pc_http_parse_request(b, len, &lim, hdrs, MAXH, &r);
            CHECK_EQ_INT(rc, t <= max_uri ? PC_HTTP_OK : ERR(URI_TOO_LONG));
            /* and without limits there is none */
            CHECK_EQ_INT(pc_http_parse_request(b, len, NULL, hdrs, MAXH, &r), PC_HTTP_OK);
        }
    }
    /* A first line that never ends is refused before it is complete, once no
     * valid request line could be that long, both fed at once and byte by
     * byte; the longest valid line (checked above) never is. */
    size_t big = max_uri + 100;
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', big - 5);
    const char *b = own(buf, big);
    pc_http_scan_t s;
    size_t end, at;
    CHECK_EQ_INT(scan_once(b, big, &lim, &s, &end), ERR(URI_TOO_LONG));
    CHECK_EQ_INT(scan_bytewise(b, big, &lim, &s, &end, &at), ERR(URI_TOO_LONG));
    CHECK(at > max_uri + 42 && at <= max_uri + 64);
    CHECK_EQ_INT(scan_once(b, at - 1, &lim, &s, &end), PC_HTTP_AGAIN);
    /* leading CRLFs do not count toward the first line */
    size_t len = build_uri_request(buf + 8, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF", max_uri);
    memcpy(buf, "\r\n\r\n\r\n\r\n", 8);
    pc_http_request_t r;
    CHECK_EQ_INT(request_verdict(buf, len + 8, &lim, &r, NULL), PC_HTTP_OK);
    free(buf);
}

TEST(limit_max_uri)
{
    check_uri_limit(64);
    check_uri_limit(100);
    check_uri_limit(deflim.max_uri);
}

/* Around the scanner's own bound for an incomplete first line, a garbage line
 * gets the same verdict whether it arrives at once or byte by byte, and a
 * prefix never fails where the whole line would not. */
TEST(first_line_bound_consistent)
{
    pc_http_limits_t lim = {64, 1024, 16};
    char buf[256];
    for (size_t l = 90; l < 130; l++) {
        memset(buf, 'A', l);
        memcpy(buf + l, "\r\n\r\n", 4);
        const char *b = own(buf, l + 4);
        pc_http_scan_t s1, s2;
        size_t e1, e2, at;
        int rc1 = scan_once(b, l + 4, &lim, &s1, &e1);
        int rc2 = scan_bytewise(b, l + 4, &lim, &s2, &e2, &at);
        CHECK_EQ_INT(rc2, rc1);
        /* each prefix agrees with the incremental scan up to its verdict */
        for (size_t k = 1; k <= at; k++) {
            int rp = scan_once(b, k, &lim, &s1, &e1);
            CHECK_EQ_INT(rp, k < at ? PC_HTTP_AGAIN : rc2);
        }
        if (rc1 == PC_HTTP_OK) {
            pc_http_request_t r;
            CHECK_EQ_INT(pc_http_parse_request(b, e2, &lim, hdrs, MAXH, &r), ERR(REQUEST_LINE));
        }
    }
}

/* A head whose header lines (with their CRLFs) take exactly hbytes bytes. */
static size_t build_hbytes_request(char *out, size_t hbytes)
{
    static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t n = sizeof(start) - 1;
    memcpy(out, start, n);
    /* "Host: a\r\n" is 9 bytes, "X-Pad: " 7 and its CRLF 2 */
    for (size_t i = 0; i < hbytes - 18; i++)
        out[n++] = (char)('a' + i % 26);
    memcpy(out + n, "\r\n\r\n", 4);
    return n + 4;
}

static void check_header_bytes_limit(size_t max)
{
    pc_http_limits_t lim = {8192, max, 100};
    char *buf = malloc(max + 200);
    for (size_t hb = max - 1; hb <= max + 1; hb++) {
        size_t len = build_hbytes_request(buf, hb);
        pc_http_request_t r;
        int rc = request_verdict(buf, len, &lim, &r, NULL);
        if (hb <= max) {
            CHECK_EQ_INT(rc, PC_HTTP_OK);
            CHECK_EQ_INT(r.nheaders, 2);
        } else {
            CHECK_EQ_INT(rc, ERR(HEADERS_TOO_LARGE));
            CHECK_EQ_INT(pc_http_err_status(rc), 431);
        }
        const char *b = own(buf, len);
        CHECK_EQ_INT(pc_http_parse_request(b, len, &lim, hdrs, MAXH, &r),
                     hb <= max ? PC_HTTP_OK : ERR(HEADERS_TOO_LARGE));
        /* incremental: when over, the verdict comes before the head is
         * complete (with the LF of the last header line) */
        pc_http_scan_t s;
        size_t end, at;
        rc = scan_bytewise(b, len, &lim, &s, &end, &at);
        if (hb > max)
            CHECK(at < len);
    }
    /* A header line that never ends: refused before any CRLF arrives, at
     * most two bytes past the limit. */
    size_t big = max + 100;
    memcpy(buf, "GET / HTTP/1.1\r\nX-Long: ", 24);
    memset(buf + 24, 'v', big - 24);
    const char *b = own(buf, big);
    pc_http_scan_t s;
    size_t end, at;
    CHECK_EQ_INT(scan_bytewise(b, big, &lim, &s, &end, &at), ERR(HEADERS_TOO_LARGE));
    CHECK(at - 16 > max && at - 16 <= max + 2);
    CHECK_EQ_INT(scan_once(b, big, &lim, &s, &end), ERR(HEADERS_TOO_LARGE));
    CHECK_EQ_INT(scan_once(b, 16 + max, &lim, &s, &end), PC_HTTP_AGAIN);
    /* exactly max bytes of fields, then the final CR still pending: AGAIN */
    size_t len = build_hbytes_request(buf, max);
    b = own(buf, len);
    CHECK_EQ_INT(scan_once(b, len - 1, &lim, &s, &end), PC_HTTP_AGAIN);
    CHECK_EQ_INT(scan_once(b, len, &lim, &s, &end), PC_HTTP_OK);
    free(buf);
}

TEST(limit_max_header_bytes)
{
    check_header_bytes_limit(64);
    check_header_bytes_limit(256);
    check_header_bytes_limit(deflim.max_header_bytes);
}

/* A head with nh header lines (Host first), into out of size cap. */
static size_t build_nheaders_request(char *out, size_t cap, unsigned nh)
{
    size_t n = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (unsigned i = 1; i < nh && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "X-H%u: %u\r\n", i, i);
    CHECK(n + 2 <= cap);
    memcpy(out + n, "\r\n", 2);
    return n + 2;
}

static void check_header_count_limit(uint32_t max)
{
    pc_http_limits_t lim = {8192, 65536, max};
    size_t cap = 64 + 24 * (size_t)(max + 2);
    char *buf = malloc(cap);
    for (uint32_t nh = max - 1; nh <= max + 1; nh++) {
        size_t len = build_nheaders_request(buf, cap, nh);
        pc_http_request_t r;
        int rc = request_verdict(buf, len, &lim, &r, NULL);
        if (nh <= max) {
            CHECK_EQ_INT(rc, PC_HTTP_OK);
            CHECK_EQ_INT(r.nheaders, nh);
        } else {
            CHECK_EQ_INT(rc, ERR(TOO_MANY_HEADERS));
            CHECK_EQ_INT(pc_http_err_status(rc), 431);
        }
        const char *b = own(buf, len);
        CHECK_EQ_INT(pc_http_parse_request(b, len, &lim, hdrs, MAXH, &r),
                     nh <= max ? PC_HTTP_OK : ERR(TOO_MANY_HEADERS));
        pc_http_scan_t s;
        size_t end, at;
        rc = scan_bytewise(b, len, &lim, &s, &end, &at);
        if (nh > max) {
            /* decided with the LF of the extra line, before the final CRLF */
            CHECK_EQ_INT(at, len - 2);
        } else {
            CHECK_EQ_INT(s.lines, nh + 1);
        }
    }
    free(buf);
}

TEST(limit_max_headers)
{
    check_header_count_limit(2);
    check_header_count_limit(8);
    check_header_count_limit(deflim.max_headers);
}

/* ---------------------------------------------------------------------- */
/* responses                                                                */

static char *rcur;

static int response_verdict(const char *raw, size_t len, pc_method_e m, pc_http_response_t *r)
{
    free(rcur);
    rcur = malloc(len);
    memcpy(rcur, raw, len);
    pc_http_scan_t s1, s2;
    size_t e1, e2, at;
    int rc1 = scan_once(rcur, len, NULL, &s1, &e1);
    int rc2 = scan_bytewise(rcur, len, NULL, &s2, &e2, &at);
    CHECK_EQ_INT(rc2, rc1);
    if (rc1 != PC_HTTP_OK)
        return rc1;
    CHECK_EQ_INT(e2, e1);
    int rc = pc_http_parse_response(rcur + s1.start, e1 - s1.start, m, hdrs, MAXH, r);
    if (rc == PC_HTTP_OK) {
        CHECK(r->headers == hdrs);
        CHECK(r->reason.n == 0 || (r->reason.p >= rcur && r->reason.p + r->reason.n <= rcur + len));
    }
    return rc;
}

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    pc_method_e method;
    int rc;
    int status;
    const char *reason;
    int minor;
    int body;
    long long cl;
    int keep_alive;
    unsigned nh;
} resp_t;

#define RESP_OK(n, s, m, st, rs, mi, b, c, ka, nh)          \
    {                                                       \
        n, s, sizeof(s) - 1, m, 0, st, rs, mi, b, c, ka, nh \
    }
#define RESP_BAD(n, s, m, e)                                   \
    {                                                          \
        n, s, sizeof(s) - 1, m, ERR(e), 0, NULL, 0, 0, 0, 0, 0 \
    }

static const resp_t responses[] = {
    RESP_OK("200-cl", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", PC_M_GET, 200, "OK", 1,
            PC_BODY_LENGTH, 5, 1, 1),
    RESP_OK("200-cl-zero", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", PC_M_GET, 200, "OK", 1,
            PC_BODY_LENGTH, 0, 1, 1),
    RESP_OK("200-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PC_M_POST, 200,
            "OK", 1, PC_BODY_CHUNKED, -1, 1, 1),
    RESP_OK("200-close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", PC_M_GET,
            200, "OK", 1, PC_BODY_CLOSE, -1, 0, 1),
    RESP_OK("200-no-fields", "HTTP/1.1 200 OK\r\n\r\n", PC_M_GET, 200, "OK", 1, PC_BODY_CLOSE, -1,
            0, 0),
    RESP_OK("204", "HTTP/1.1 204 No Content\r\n\r\n", PC_M_DELETE, 204, "No Content", 1,
            PC_BODY_NONE, -1, 1, 0),
    RESP_OK("204-with-cl", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", PC_M_GET, 204,
            "No Content", 1, PC_BODY_NONE, 7, 1, 1),
    RESP_OK("304-with-cl", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", PC_M_GET,
            304, "Not Modified", 1, PC_BODY_NONE, 100, 1, 1),
    RESP_OK("304-chunked", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            PC_M_GET, 304, "Not Modified", 1, PC_BODY_NONE, -1, 1, 1),
    RESP_OK("head-with-cl", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", PC_M_HEAD, 200, "OK",
            1, PC_BODY_NONE, 1000, 1, 1),
    RESP_OK("head-no-cl", "HTTP/1.1 200 OK\r\n\r\n", PC_M_HEAD, 200, "OK", 1, PC_BODY_NONE, -1, 1,
            0),
    RESP_OK("head-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PC_M_HEAD, 200,
            "OK", 1, PC_BODY_NONE, -1, 1, 1),
    RESP_OK("100-continue", "HTTP/1.1 100 Continue\r\n\r\n", PC_M_POST, 100, "Continue", 1,
            PC_BODY_NONE, -1, 1, 0),
    RESP_OK("101-parses", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", PC_M_GET, 101,
            "Switching Protocols", 1, PC_BODY_NONE, -1, 1, 1),
    RESP_OK("103-early-hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
            PC_M_GET, 103, "Early Hints", 1, PC_BODY_NONE, -1, 1, 1),
    RESP_OK("http10-cl", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", PC_M_GET, 200, "OK", 0,
            PC_BODY_LENGTH, 2, 0, 1),
    RESP_OK("http10-keep-alive",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", PC_M_GET, 200,
            "OK", 0, PC_BODY_LENGTH, 2, 1, 2),
    RESP_OK("http10-keep-alive-close-delimited",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", PC_M_GET, 200, "OK", 0,
            PC_BODY_CLOSE, -1, 0, 1),
    RESP_OK("http10-keep-alive-204", "HTTP/1.0 204 No Content\r\nConnection: Keep-Alive\r\n\r\n",
            PC_M_GET, 204, "No Content", 0, PC_BODY_NONE, -1, 1, 1),
    RESP_OK("http11-close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            PC_M_GET, 200, "OK", 1, PC_BODY_LENGTH, 1, 0, 2),
    RESP_OK("empty-reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", PC_M_GET, 200, "", 1,
            PC_BODY_LENGTH, 0, 1, 1),
    RESP_OK("reason-spaces-tab", "HTTP/1.1 404 Not\tFound  Here\r\nContent-Length: 0\r\n\r\n",
            PC_M_GET, 404, "Not\tFound  Here", 1, PC_BODY_LENGTH, 0, 1, 1),
    RESP_OK("reason-obs-text", "HTTP/1.1 200 \xc3\x89t\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
            PC_M_GET, 200, "\xc3\x89t\xc3\xa9", 1, PC_BODY_LENGTH, 0, 1, 1),
    RESP_OK("599", "HTTP/1.1 599 Custom\r\nContent-Length: 0\r\n\r\n", PC_M_GET, 599, "Custom", 1,
            PC_BODY_LENGTH, 0, 1, 1),
    RESP_OK("leading-crlf", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", PC_M_GET, 200, "OK",
            1, PC_BODY_LENGTH, 0, 1, 1),
    RESP_BAD("cl-and-te",
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", PC_M_GET,
             CL_AND_TE),
    RESP_BAD("cl-and-te-on-204",
             "HTTP/1.1 204 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", PC_M_GET,
             CL_AND_TE),
    RESP_BAD("cl-and-te-on-head",
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
             PC_M_HEAD, CL_AND_TE),
    RESP_BAD("cl-duplicate", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
             PC_M_GET, CL_DUPLICATE),
    RESP_BAD("cl-invalid", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", PC_M_GET, CL_INVALID),
    RESP_BAD("te-gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", PC_M_GET,
             TE_UNSUPPORTED),
    RESP_BAD("te-gzip-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
             PC_M_GET, TE_UNSUPPORTED),
    RESP_BAD("te-http10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PC_M_GET,
             TE_HTTP10),
    /* the SP before an empty reason is often missing; still unambiguous */
    RESP_OK("no-space-after-status", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", PC_M_GET, 200, "",
            1, PC_BODY_LENGTH, 0, 1, 1),
    RESP_BAD("tab-after-status", "HTTP/1.1 200\tOK\r\nContent-Length: 0\r\n\r\n", PC_M_GET,
             STATUS_LINE),
    RESP_BAD("status-then-letter", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", PC_M_GET,
             STATUS_LINE),
    RESP_BAD("two-digit-status", "HTTP/1.1 20 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("four-digit-status", "HTTP/1.1 2000 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("letter-in-status", "HTTP/1.1 2x0 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("status-099", "HTTP/1.1 099 Low\r\n\r\n", PC_M_GET, STATUS_UNSUPPORTED),
    RESP_BAD("status-600", "HTTP/1.1 600 High\r\n\r\n", PC_M_GET, STATUS_UNSUPPORTED),
    RESP_BAD("double-space", "HTTP/1.1  200 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("version-2.0", "HTTP/2.0 200 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("version-1.2", "HTTP/1.2 200 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("version-lowercase", "http/1.1 200 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("not-http", "ICY 200 OK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("reason-ctl", "HTTP/1.1 200 O\x01K\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("reason-nul", "HTTP/1.1 200 O\0K\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("reason-bare-cr", "HTTP/1.1 200 O\rK\r\n\r\n", PC_M_GET, STATUS_LINE),
    RESP_BAD("obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", PC_M_GET,
             OBS_FOLD),
    RESP_BAD("ws-before-colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", PC_M_GET,
             WS_BEFORE_COLON),
    RESP_BAD("bare-cr-field", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", PC_M_GET, HEADER_VALUE),
    RESP_BAD("nul-value", "HTTP/1.1 200 OK\r\nX-A: a\0\r\n\r\n", PC_M_GET, HEADER_VALUE),
    RESP_BAD("bare-lf", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", PC_M_GET, BARE_LF),
    RESP_BAD("connection-invalid", "HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n", PC_M_GET,
             CONNECTION_INVALID),
    RESP_BAD("too-short", "HTTP/1.1\r\n\r\n", PC_M_GET, STATUS_LINE),
};

TEST(response_parsing)
{
    const char *saved = test_current;
    for (size_t i = 0; i < sizeof(responses) / sizeof(responses[0]); i++) {
        const resp_t *c = &responses[i];
        pc_http_response_t r;
        test_current = c->name;
        int rc = response_verdict(c->raw, c->len, c->method, &r);
        CHECK_EQ_INT(rc, c->rc);
        if (c->rc != PC_HTTP_OK || rc != PC_HTTP_OK)
            continue;
        CHECK_EQ_INT(r.status, c->status);
        CHECK_SLICE(r.reason.p, r.reason.n, c->reason);
        CHECK_EQ_INT(r.minor, c->minor);
        CHECK_EQ_INT(r.body, c->body);
        CHECK_EQ_INT(r.content_length, c->cl);
        CHECK_EQ_INT(r.keep_alive, c->keep_alive);
        CHECK_EQ_INT(r.nheaders, c->nh);
    }
    test_current = saved;
    /* the status line errors are all 502 for the client */
    CHECK_EQ_INT(pc_http_err_status(ERR(STATUS_LINE)), 502);
    CHECK_EQ_INT(pc_http_err_status(ERR(STATUS_UNSUPPORTED)), 502);
}

TEST(response_headers)
{
    static const char raw[] = "HTTP/1.1 200 OK\r\nServer: x\r\nConnection: X-Internal\r\n"
                              "X-Internal: secret\r\nKeep-Alive: timeout=5\r\n"
                              "Set-Cookie: a=b; Path=/\r\nContent-Length: 3\r\n\r\n";
    pc_http_response_t r;
    CHECK_EQ_INT(response_verdict(raw, sizeof(raw) - 1, PC_M_GET, &r), PC_HTTP_OK);
    CHECK_EQ_INT(r.nheaders, 6);
    CHECK_SLICE(r.headers[0].name.p, r.headers[0].name.n, "Server");
    CHECK_EQ_INT(r.headers[0].flags, 0);
    CHECK(r.headers[1].flags & PC_HDR_F_HOP);
    CHECK(r.headers[2].flags & PC_HDR_F_HOP);
    CHECK(r.headers[3].flags & PC_HDR_F_HOP);
    CHECK_SLICE(r.headers[4].value.p, r.headers[4].value.n, "a=b; Path=/");
    CHECK_EQ_INT(r.headers[4].flags, 0);
    CHECK(r.headers[5].flags & PC_HDR_F_HOP);
    CHECK_EQ_INT(r.content_length, 3);
    /* too small a header array */
    pc_http_header_t small[2];
    char *b = malloc(sizeof(raw) - 1);
    memcpy(b, raw, sizeof(raw) - 1);
    CHECK_EQ_INT(pc_http_parse_response(b, sizeof(raw) - 1, PC_M_GET, small, 2, &r),
                 ERR(TOO_MANY_HEADERS));
    CHECK_EQ_INT(pc_http_parse_response(b, 20, PC_M_GET, small, 2, &r), ERR(STATUS_LINE));
    free(b);
}

/* ---------------------------------------------------------------------- */
/* path normalisation                                                       */

typedef struct {
    const char *in;
    const char *out; /* NULL: error */
    int rc;
} norm_t;

#define NORM_OK(i, o) \
    {                 \
        i, o, 0       \
    }
#define NORM_BAD(i, e)  \
    {                   \
        i, NULL, ERR(e) \
    }

static const norm_t norms[] = {
    NORM_OK("/", "/"),
    NORM_OK("/a/b", "/a/b"),
    NORM_OK("/a/b/", "/a/b/"),
    NORM_OK("//", "/"),
    NORM_OK("//a///b//", "/a/b/"),
    NORM_OK("/%41%42%7a", "/ABz"),
    NORM_OK("/%7e%7E", "/~~"),
    NORM_OK("/%2d%2E%5f%5F", "/-.__"),
    NORM_OK("/%30%39", "/09"),
    NORM_OK("/%2f", "/%2F"),
    NORM_OK("/a%2f%2fb", "/a%2F%2Fb"),
    NORM_OK("/%2F/", "/%2F/"),
    NORM_OK("/%c3%a9", "/%C3%A9"),
    NORM_OK("/%C3%A9", "/%C3%A9"),
    NORM_OK("/a%20b", "/a%20b"),
    NORM_OK("/%3b", "/%3B"),
    NORM_OK("/%25", "/%25"),
    NORM_OK("/%252e%252e", "/%252e%252e"),
    NORM_OK("/%ff", "/%FF"),
    /* a backslash, raw or encoded, is refused: Windows backends read it as '/' */
    NORM_BAD("/%5c", PATH_BACKSLASH),
    NORM_BAD("/a%5Cb", PATH_BACKSLASH),
    NORM_OK("/...", "/..."),
    NORM_OK("/%2e%2e%2e", "/..."),
    NORM_OK("/.a/a./..b/b..", "/.a/a./..b/b.."),
    NORM_OK("/a.b/c.d.e", "/a.b/c.d.e"),
    NORM_OK("/.well-known/x", "/.well-known/x"),
    NORM_OK("/%2ea", "/.a"),
    NORM_OK("/a;b=c", "/a;b=c"),
    NORM_BAD("/a\\b", PATH_BACKSLASH),
    NORM_OK("/~user/", "/~user/"),
    NORM_OK("/a//%41//", "/a/A/"),
    NORM_BAD("/.", PATH_DOT_SEGMENT),
    NORM_BAD("/..", PATH_DOT_SEGMENT),
    NORM_BAD("/./", PATH_DOT_SEGMENT),
    NORM_BAD("/../", PATH_DOT_SEGMENT),
    NORM_BAD("/a/./b", PATH_DOT_SEGMENT),
    NORM_BAD("/a/../b", PATH_DOT_SEGMENT),
    NORM_BAD("/a/..", PATH_DOT_SEGMENT),
    NORM_BAD("/a//..//b", PATH_DOT_SEGMENT),
    NORM_BAD("/%2e", PATH_DOT_SEGMENT),
    NORM_BAD("/%2E%2e/", PATH_DOT_SEGMENT),
    NORM_BAD("/.%2e/x", PATH_DOT_SEGMENT),
    NORM_BAD("/%2e./x", PATH_DOT_SEGMENT),
    NORM_BAD("/a/..\\b", PATH_BACKSLASH),
    NORM_BAD("/a\\..\\b", PATH_BACKSLASH),
    NORM_BAD("/a\\.", PATH_BACKSLASH),
    NORM_BAD("/..;/x", PATH_DOT_SEGMENT),
    NORM_BAD("/.;x=1/", PATH_DOT_SEGMENT),
    NORM_BAD("/a/..;", PATH_DOT_SEGMENT),
    NORM_BAD("/a/%2e%2e%2fb", PATH_DOT_SEGMENT),
    NORM_BAD("/a/..%2fb", PATH_DOT_SEGMENT),
    NORM_BAD("/a/..%5cb", PATH_BACKSLASH),
    NORM_BAD("/a/%2e%2e%5C", PATH_BACKSLASH),
    NORM_BAD("/a/%2e%2e%3b", PATH_DOT_SEGMENT),
    NORM_BAD("/a%2f..%2fb", PATH_DOT_SEGMENT),
    NORM_BAD("/%00", PATH_ENCODING),
    NORM_BAD("/a%00b", PATH_ENCODING),
    NORM_BAD("/%", PATH_ENCODING),
    NORM_BAD("/a%", PATH_ENCODING),
    NORM_BAD("/%4", PATH_ENCODING),
    NORM_BAD("/a%4/", PATH_ENCODING),
    NORM_BAD("/%zz", PATH_ENCODING),
    NORM_BAD("/%4g", PATH_ENCODING),
    NORM_BAD("/%g4", PATH_ENCODING),
    NORM_BAD("/%%41", PATH_ENCODING),
    NORM_BAD("/%-1", PATH_ENCODING),
    NORM_BAD("/% 1", PATH_ENCODING),
    NORM_BAD("", TARGET),
    NORM_BAD("a", TARGET),
    NORM_BAD("*", TARGET),
    NORM_BAD("%2f", TARGET),
    NORM_BAD("\\a", TARGET),
};

TEST(normalize_path)
{
    const char *saved = test_current;
    for (size_t i = 0; i < sizeof(norms) / sizeof(norms[0]); i++) {
        const norm_t *c = &norms[i];
        size_t n = strlen(c->in);
        char *in = malloc(n ? n : 1);
        char *out = malloc(n ? n : 1); /* exactly in.n bytes, as the contract says */
        memcpy(in, c->in, n);
        size_t outn = 9999;
        test_current = c->in;
        int rc = pc_http_normalize_path(pc_str_make(in, n), out, &outn);
        CHECK_EQ_INT(rc, c->rc);
        if (c->out && rc == PC_HTTP_OK) {
            CHECK(outn <= n);
            CHECK_SLICE(out, outn, c->out);
            /* normalising twice changes nothing */
            char *again = malloc(outn);
            size_t n2 = 0;
            CHECK_EQ_INT(pc_http_normalize_path(pc_str_make(out, outn), again, &n2), PC_HTTP_OK);
            CHECK(n2 == outn && memcmp(again, out, outn) == 0);
            free(again);
        }
        if (rc != PC_HTTP_OK)
            CHECK_EQ_INT(pc_http_err_status(rc), 400);
        free(in);
        free(out);
    }
    test_current = saved;
}

/* The path of a parsed request is what gets normalised. */
TEST(normalize_parsed_path)
{
    static const char raw[] = "GET //x/%7euser/%2fa?q=/../ HTTP/1.1\r\nHost: a\r\n\r\n";
    pc_http_request_t r;
    CHECK_EQ_INT(request_verdict(raw, sizeof(raw) - 1, &deflim, &r, NULL), PC_HTTP_OK);
    char out[64];
    size_t n;
    CHECK_EQ_INT(pc_http_normalize_path(r.path, out, &n), PC_HTTP_OK);
    CHECK_SLICE(out, n, "/x/~user/%2Fa");
    CHECK_SLICE(r.query.p, r.query.n, "q=/../");
}

/* ---------------------------------------------------------------------- */
/* request ids, error table, misc                                           */

TEST(valid_request_id)
{
    char id[200];
    CHECK(pc_http_valid_request_id(PC_STR("abc")));
    CHECK(pc_http_valid_request_id(PC_STR("A-Z_0.9:x")));
    CHECK(pc_http_valid_request_id(PC_STR("0")));
    CHECK(pc_http_valid_request_id(PC_STR("f47ac10b-58cc-4372-a567-0e02b2c3d479")));
    CHECK(pc_http_valid_request_id(PC_STR("trace:span.1_2-3")));
    memset(id, 'x', sizeof(id));
    CHECK(pc_http_valid_request_id(pc_str_make(id, 128)));
    CHECK(!pc_http_valid_request_id(pc_str_make(id, 129)));
    CHECK(!pc_http_valid_request_id(pc_str_make(id, 0)));
    CHECK(!pc_http_valid_request_id(PC_STR_NULL));
    static const char *bad[] = {"~",   "a~b", "a b", "a/b",  "a+b",  "a=b",  "a,b", "a;b",
                                "a\"", "<x>", "a%2", "a\tb", "\xff", "a\\b", "{}",  "a@b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_current = bad[i];
        CHECK(!pc_http_valid_request_id(pc_str_cstr(bad[i])));
    }
    test_current = "valid_request_id";
    CHECK(!pc_http_valid_request_id(pc_str_make("a\0b", 3)));
    CHECK(!pc_http_valid_request_id(pc_str_make("ab\r\n", 4)));
}

TEST(err_status_table)
{
    static const struct {
        int rc, status;
    } want[] = {
        {ERR(BARE_LF), 400},
        {ERR(REQUEST_LINE), 400},
        {ERR(METHOD), 400},
        {ERR(TARGET), 400},
        {ERR(URI_TOO_LONG), 414},
        {ERR(VERSION), 400},
        {ERR(VERSION_UNSUPPORTED), 505},
        {ERR(HEADER_NAME), 400},
        {ERR(HEADER_VALUE), 400},
        {ERR(HEADER_NO_COLON), 400},
        {ERR(WS_BEFORE_COLON), 400},
        {ERR(OBS_FOLD), 400},
        {ERR(HEADERS_TOO_LARGE), 431},
        {ERR(TOO_MANY_HEADERS), 431},
        {ERR(HOST_MISSING), 400},
        {ERR(HOST_DUPLICATE), 400},
        {ERR(HOST_INVALID), 400},
        {ERR(HOST_MISMATCH), 400},
        {ERR(CL_INVALID), 400},
        {ERR(CL_DUPLICATE), 400},
        {ERR(CT_DUPLICATE), 400},
        {ERR(CL_AND_TE), 400},
        {ERR(TE_UNSUPPORTED), 400},
        {ERR(TE_HTTP10), 400},
        {ERR(CONNECTION_INVALID), 400},
        {ERR(EXPECT_UNSUPPORTED), 417},
        {ERR(PATH_ENCODING), 400},
        {ERR(PATH_DOT_SEGMENT), 400},
        {ERR(PATH_BACKSLASH), 400},
        {ERR(CONNECT), 405},
        {ERR(STATUS_LINE), 502},
        {ERR(STATUS_UNSUPPORTED), 502},
        {ERR(CHUNK_SIZE), 400},
        {ERR(CHUNK_EXT), 400},
        {ERR(CHUNK_DATA_END), 400},
        {ERR(TRAILER), 400},
    };
    CHECK_EQ_INT(sizeof(want) / sizeof(want[0]), PC_HTTP_E_COUNT - 1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_EQ_INT(pc_http_err_status(want[i].rc), want[i].status);
        CHECK(pc_http_err_detail(want[i].rc)[0] != '\0');
        CHECK(strcmp(pc_http_err_detail(want[i].rc), "internal error") != 0);
    }
    /* every code is distinct and negative */
    for (int e = 1; e < PC_HTTP_E_COUNT; e++)
        CHECK(PC_HTTP_ERR(e) < 0);
    /* anything that is not an error code maps to 500 */
    CHECK_EQ_INT(pc_http_err_status(PC_HTTP_OK), 500);
    CHECK_EQ_INT(pc_http_err_status(PC_HTTP_AGAIN), 500);
    CHECK_EQ_INT(pc_http_err_status(-PC_HTTP_E_COUNT), 500);
    CHECK_EQ_INT(pc_http_err_status(-1000), 500);
    CHECK_EQ_INT(pc_http_err_status(1000), 500);
    CHECK_EQ_STR(pc_http_err_detail(-PC_HTTP_E_COUNT), "internal error");
    CHECK_EQ_STR(pc_http_err_detail(ERR(CL_AND_TE)), "both Content-Length and Transfer-Encoding");
}

/* The decimal parser under Content-Length and ports. */
TEST(str_to_u64)
{
    uint64_t v = 77;
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("0"), 10, &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("65535"), 65535, &v), 0);
    CHECK_EQ_INT(v, 65535);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("65536"), 65535, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("0065535"), 65535, &v), 0);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("9223372036854775807"), (uint64_t)INT64_MAX, &v), 0);
    CHECK(v == (uint64_t)INT64_MAX);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("9223372036854775808"), (uint64_t)INT64_MAX, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("18446744073709551615"), UINT64_MAX, &v), 0);
    CHECK(v == UINT64_MAX);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("18446744073709551616"), UINT64_MAX, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR(""), 10, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("1a"), 100, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR(" 1"), 100, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("-1"), 100, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("+1"), 100, &v), -1);
    /* a single digit above a small max (max - digit must not wrap) */
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("9"), 5, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("5"), 5, &v), 0);
    CHECK_EQ_INT(v, 5);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("1"), 0, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("0"), 0, &v), 0);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("19"), 15, &v), -1);
    CHECK_EQ_INT(pc_str_to_u64(PC_STR("15"), 15, &v), 0);
}

TEST(misc_helpers)
{
    CHECK(pc_http_method_idempotent(PC_M_GET));
    CHECK(pc_http_method_idempotent(PC_M_HEAD));
    CHECK(pc_http_method_idempotent(PC_M_PUT));
    CHECK(pc_http_method_idempotent(PC_M_DELETE));
    CHECK(pc_http_method_idempotent(PC_M_OPTIONS));
    CHECK(pc_http_method_idempotent(PC_M_TRACE));
    CHECK(!pc_http_method_idempotent(PC_M_POST));
    CHECK(!pc_http_method_idempotent(PC_M_PATCH));
    CHECK(!pc_http_method_idempotent(PC_M_CONNECT));
    CHECK(!pc_http_method_idempotent(PC_M_OTHER));
    CHECK_EQ_STR(pc_http_reason(200), "OK");
    CHECK_EQ_STR(pc_http_reason(431), "Request Header Fields Too Large");
    CHECK_EQ_STR(pc_http_reason(505), "HTTP Version Not Supported");
    CHECK_EQ_STR(pc_http_reason(799), "");
    /* every status of the error table has a reason phrase */
    for (int e = 1; e < PC_HTTP_E_COUNT; e++)
        CHECK(pc_http_reason(pc_http_err_status(PC_HTTP_ERR(e)))[0] != '\0');
}

int main(void)
{
    RUN(malformed_requests);
    RUN(valid_requests);
    RUN(header_slices_and_flags);
    RUN(content_length_is_hop_and_host_never);
    RUN(header_ids);
    RUN(pipelined_heads);
    RUN(scan_incomplete);
    RUN(header_capacity);
    RUN(limit_max_uri);
    RUN(first_line_bound_consistent);
    RUN(limit_max_header_bytes);
    RUN(limit_max_headers);
    RUN(response_parsing);
    RUN(response_headers);
    RUN(normalize_path);
    RUN(normalize_parsed_path);
    RUN(valid_request_id);
    RUN(err_status_table);
    RUN(str_to_u64);
    RUN(misc_helpers);
    free(cur);
    free(rcur);
    printf("%s: %d checks, %d failures\n", __FILE__, test_checks, test_failures);
    return test_failures ? 1 : 0;
}
