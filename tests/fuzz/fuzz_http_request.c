/*
 * fuzz_http_request.c — libFuzzer target for the request side of the HTTP/1.1
 * parser: pc_http_scan (one-shot, at input-derived split points, and byte by
 * byte), pc_http_parse_request and pc_http_normalize_path.
 *
 * Invariants (abort on violation):
 *  - a scan fed in pieces answers, at every piece, exactly what a one-shot
 *    scan of the bytes seen so far answers;
 *  - all ways of feeding agree on error / AGAIN / OK and on the head's
 *    start and end; they differ at most in which limit error comes first;
 *  - a scanned head parses to OK or an error, never AGAIN; on OK every slice
 *    lies inside the head, the header count is within the capacity and
 *    equals the scanned line count, and the framing is unambiguous;
 *  - normalisation writes at most in.n bytes and is idempotent.
 */
#include <string.h>

#include "fuzz_common.h"
#include "http1.h"

static const pc_http_limits_t limsets[] = {
    {8192, 32768, 100},
    {16, 64, 4},
    {40, 128, 8},
    {256, 1024, 32},
};

static int is_limit_error(int rc)
{
    return rc == PC_HTTP_ERR(PC_HTTP_E_URI_TOO_LONG) ||
           rc == PC_HTTP_ERR(PC_HTTP_E_HEADERS_TOO_LARGE);
}

/* Scans buf[0..len) as it arrives in steps; checks every intermediate answer
 * against a one-shot scan of the same prefix. */
static int scan_steps(const char *buf, size_t len, const pc_http_limits_t *lim, uint64_t *rng,
                      int bytewise, pc_http_scan_t *s, size_t *end)
{
    size_t k = 0;
    int rc = PC_HTTP_AGAIN;
    memset(s, 0, sizeof(*s));
    *end = 0;
    do {
        size_t step = bytewise ? 1 : fz_step(rng);
        k = (len - k < step) ? len : k + step;
        rc = pc_http_scan(s, buf, k, lim, end);
        FZ_ASSERT(rc == PC_HTTP_OK || rc == PC_HTTP_AGAIN || rc < 0);
        if (!bytewise) {
            pc_http_scan_t sp;
            size_t ep = 0;
            memset(&sp, 0, sizeof(sp));
            int rp = pc_http_scan(&sp, buf, k, lim, &ep);
            FZ_ASSERT(rp == rc);
            if (rc == PC_HTTP_OK)
                FZ_ASSERT(ep == *end && sp.start == s->start && sp.lines == s->lines);
        }
    } while (rc == PC_HTTP_AGAIN && k < len);
    return rc;
}

static void check_normalized(const char *in, size_t inn, const char *out, size_t outn)
{
    FZ_ASSERT(outn <= inn);
    FZ_ASSERT(outn > 0 && out[0] == '/');
    for (size_t i = 0; i < outn; i++) {
        if (i > 0 && out[i] == '/')
            FZ_ASSERT(out[i - 1] != '/');
        if (out[i] == '%') {
            FZ_ASSERT(i + 2 < outn);
            for (int k = 1; k <= 2; k++) {
                char h = out[i + k];
                FZ_ASSERT((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'));
            }
            FZ_ASSERT(!(out[i + 1] == '0' && out[i + 2] == '0'));
        }
    }
    /* idempotent */
    char *again = malloc(outn);
    size_t n2 = 0;
    FZ_ASSERT(again);
    FZ_ASSERT(pc_http_normalize_path(pc_str_make(out, outn), again, &n2) == PC_HTTP_OK);
    FZ_ASSERT(n2 == outn && memcmp(again, out, outn) == 0);
    free(again);
    (void)in;
}

static void normalize(pc_str_t path)
{
    char *out = malloc(path.n ? path.n : 1);
    size_t outn = 0;
    FZ_ASSERT(out);
    int rc = pc_http_normalize_path(path, out, &outn);
    if (rc == PC_HTTP_OK)
        check_normalized(path.p, path.n, out, outn);
    else
        FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_PATH_ENCODING) ||
                  rc == PC_HTTP_ERR(PC_HTTP_E_PATH_DOT_SEGMENT) ||
                  rc == PC_HTTP_ERR(PC_HTTP_E_PATH_BACKSLASH) ||
                  rc == PC_HTTP_ERR(PC_HTTP_E_TARGET));
    if (path.n == 0 || path.p[0] != '/')
        FZ_ASSERT(rc == PC_HTTP_ERR(PC_HTTP_E_TARGET));
    free(out);
}

static void check_request(const char *head, size_t len, const pc_http_limits_t *lim,
                          const pc_http_request_t *r, uint32_t cap)
{
    FZ_ASSERT(r->nheaders <= cap);
    FZ_ASSERT(r->method.p == head && r->method.n > 0 && r->method.n <= 32);
    for (size_t i = 0; i < r->method.n; i++)
        FZ_ASSERT(fz_is_tchar((unsigned char)r->method.p[i]));
    FZ_ASSERT(fz_inside(r->target.p, r->target.n, head, len) && r->target.n > 0);
    for (size_t i = 0; i < r->target.n; i++) {
        unsigned char c = (unsigned char)r->target.p[i];
        FZ_ASSERT(c > 0x20 && c < 0x7f && c != '#');
    }
    FZ_ASSERT(r->method_id != PC_M_CONNECT);
    FZ_ASSERT(r->minor <= 1);
    FZ_ASSERT(r->target_form <= PC_TARGET_ASTERISK);
    if (r->target_form == PC_TARGET_ABSOLUTE && r->path.n == 1 && r->path.p[0] == '/')
        ; /* may be the static "/" of an empty absolute-form path */
    else
        FZ_ASSERT(fz_inside(r->path.p, r->path.n, head, len));
    FZ_ASSERT(r->path.n > 0);
    if (r->target_form == PC_TARGET_ASTERISK)
        FZ_ASSERT(r->method_id == PC_M_OPTIONS && r->path.n == 1 && r->path.p[0] == '*');
    else
        FZ_ASSERT(r->path.p[0] == '/');
    if (r->target_form == PC_TARGET_ORIGIN)
        FZ_ASSERT(r->target.p[0] == '/' && r->authority.n == 0);
    if (r->target_form == PC_TARGET_ABSOLUTE)
        FZ_ASSERT(r->authority.n > 0 && fz_inside(r->authority.p, r->authority.n, head, len));
    if (r->query.p) {
        FZ_ASSERT(fz_inside(r->query.p, r->query.n, head, len));
        FZ_ASSERT(r->query.p[-1] == '?');
    } else {
        FZ_ASSERT(r->query.n == 0);
    }
    FZ_ASSERT(fz_inside(r->host.p, r->host.n, head, len));
    if (r->minor == 1)
        FZ_ASSERT(r->host.n > 0);
    if (lim) {
        FZ_ASSERT(r->target.n <= lim->max_uri);
        FZ_ASSERT(r->nheaders <= lim->max_headers);
    }
    switch (r->body) {
    case PC_BODY_NONE:
    case PC_BODY_CHUNKED:
        FZ_ASSERT(r->content_length == -1);
        break;
    case PC_BODY_LENGTH:
        FZ_ASSERT(r->content_length >= 0);
        break;
    default:
        FZ_ASSERT(0); /* never close-delimited */
    }
    if (r->body == PC_BODY_CHUNKED)
        FZ_ASSERT(r->minor == 1);
    if (r->expect_continue)
        FZ_ASSERT(r->minor == 1);

    unsigned nhost = 0, ncl = 0, nte = 0;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const pc_http_header_t *h = &r->headers[i];
        FZ_ASSERT(h->name.n > 0 && fz_inside(h->name.p, h->name.n, head, len));
        FZ_ASSERT(fz_inside(h->value.p, h->value.n, head, len));
        for (size_t k = 0; k < h->name.n; k++)
            FZ_ASSERT(fz_is_tchar((unsigned char)h->name.p[k]));
        for (size_t k = 0; k < h->value.n; k++) {
            unsigned char c = (unsigned char)h->value.p[k];
            FZ_ASSERT(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value.n) {
            FZ_ASSERT(h->value.p[0] != ' ' && h->value.p[0] != '\t');
            FZ_ASSERT(h->value.p[h->value.n - 1] != ' ' && h->value.p[h->value.n - 1] != '\t');
        }
        FZ_ASSERT(h->id < PC_HDR_COUNT);
        /* names with '_' are never forwarded, and nothing else is dropped */
        FZ_ASSERT(!!(h->flags & PC_HDR_F_DROP) == !!memchr(h->name.p, '_', h->name.n));
        switch (h->id) {
        case PC_HDR_HOST:
            nhost++;
            FZ_ASSERT(!(h->flags & PC_HDR_F_HOP));
            FZ_ASSERT(r->host.p == h->value.p && r->host.n == h->value.n);
            break;
        case PC_HDR_CONTENT_LENGTH:
            ncl++;
            FZ_ASSERT(h->flags & PC_HDR_F_HOP);
            break;
        case PC_HDR_TRANSFER_ENCODING:
            nte++;
            FZ_ASSERT(h->flags & PC_HDR_F_HOP);
            break;
        case PC_HDR_CONNECTION:
        case PC_HDR_KEEP_ALIVE:
        case PC_HDR_PROXY_CONNECTION:
        case PC_HDR_TE:
        case PC_HDR_TRAILER:
        case PC_HDR_UPGRADE:
        case PC_HDR_PROXY_AUTHENTICATE:
        case PC_HDR_EXPECT:
            FZ_ASSERT(h->flags & PC_HDR_F_HOP);
            break;
        case PC_HDR_X_REQUEST_ID:
            (void)pc_http_valid_request_id(h->value);
            break;
        default:
            break;
        }
        FZ_ASSERT(pc_http_find_name(r->headers, r->nheaders, h->name) != NULL);
    }
    FZ_ASSERT(nhost <= 1 && ncl <= 1 && nte <= 1 && !(ncl && nte));
    FZ_ASSERT((r->body == PC_BODY_LENGTH) == (ncl == 1));
    FZ_ASSERT((r->body == PC_BODY_CHUNKED) == (nte == 1));
    if (nhost == 0)
        FZ_ASSERT(r->minor == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    uint64_t rng = fz_seed(data, size);
    uint64_t pick = fz_rand(&rng);
    const pc_http_limits_t *lim = &limsets[pick % 4];

    /* 1. scan: one-shot, random steps, byte by byte */
    pc_http_scan_t s1, s2, s3;
    size_t e1 = 0, e2 = 0, e3 = 0;
    memset(&s1, 0, sizeof(s1));
    int rc1 = pc_http_scan(&s1, buf, size, lim, &e1);
    int rc2 = scan_steps(buf, size, lim, &rng, 0, &s2, &e2);
    int rc3 = scan_steps(buf, size, lim, &rng, 1, &s3, &e3);
    FZ_ASSERT((rc1 < 0) == (rc2 < 0) && (rc1 < 0) == (rc3 < 0));
    if (rc1 == PC_HTTP_AGAIN)
        FZ_ASSERT(rc2 == PC_HTTP_AGAIN && rc3 == PC_HTTP_AGAIN);
    if (rc1 == PC_HTTP_OK) {
        FZ_ASSERT(rc2 == PC_HTTP_OK && rc3 == PC_HTTP_OK);
        FZ_ASSERT(e1 == e2 && e1 == e3 && s1.start == s2.start && s1.start == s3.start);
        FZ_ASSERT(s1.lines == s2.lines && s1.lines == s3.lines);
        FZ_ASSERT(e1 <= size && s1.start < e1 && s1.lines >= 1);
        FZ_ASSERT(e1 >= 4 && memcmp(buf + e1 - 4, "\r\n\r\n", 4) == 0);
    }
    /* an incremental scan may meet a limit before a later error; any other
     * error is the same one the one-shot scan meets */
    if (rc2 < 0 && !is_limit_error(rc2))
        FZ_ASSERT(rc2 == rc1);
    if (rc3 < 0 && !is_limit_error(rc3))
        FZ_ASSERT(rc3 == rc1);
    if (rc1 < 0) {
        FZ_ASSERT(pc_http_err_status(rc1) >= 400 && pc_http_err_status(rc1) < 600);
        FZ_ASSERT(pc_http_err_detail(rc1) != NULL);
    }

    /* 2. parse the scanned head */
    if (rc1 == PC_HTTP_OK) {
        const char *head = buf + s1.start;
        size_t hlen = e1 - s1.start;
        uint32_t cap = s1.lines - 1;
        pc_http_header_t *hdrs = malloc((cap ? cap : 1) * sizeof(*hdrs));
        pc_http_request_t r;
        FZ_ASSERT(hdrs);
        int rc = pc_http_parse_request(head, hlen, lim, hdrs, cap, &r);
        FZ_ASSERT(rc == PC_HTTP_OK || rc < 0);
        if (rc < 0) {
            int st = pc_http_err_status(rc);
            FZ_ASSERT(st == 400 || st == 405 || st == 414 || st == 417 || st == 431 || st == 505);
        } else {
            FZ_ASSERT(r.nheaders == cap);
            check_request(head, hlen, lim, &r, cap);
            if (r.target_form != PC_TARGET_ASTERISK)
                normalize(r.path);
            /* limits only ever add refusals */
            pc_http_request_t r2;
            FZ_ASSERT(pc_http_parse_request(head, hlen, NULL, hdrs, cap, &r2) == PC_HTTP_OK);
            FZ_ASSERT(r2.body == r.body && r2.content_length == r.content_length &&
                      r2.keep_alive == r.keep_alive && r2.nheaders == r.nheaders);
            /* one header slot short is always 431 */
            if (cap > 0)
                FZ_ASSERT(pc_http_parse_request(head, hlen, lim, hdrs, cap - 1, &r2) ==
                          PC_HTTP_ERR(PC_HTTP_E_TOO_MANY_HEADERS));
        }
        free(hdrs);
    }

    /* 3. the parser on raw bytes it was not promised to get (no scan first)
     * must still stay inside them */
    {
        pc_http_header_t hdrs[16];
        pc_http_request_t r;
        int rc = pc_http_parse_request(buf, size, lim, hdrs, 16, &r);
        FZ_ASSERT(rc == PC_HTTP_OK || rc < 0);
        if (rc == PC_HTTP_OK)
            check_request(buf, size, lim, &r, 16);
    }

    /* 4. normalisation of the raw input as a path */
    normalize(pc_str_make(buf, size));
    return 0;
}
