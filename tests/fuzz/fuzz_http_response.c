/*
 * fuzz_http_response.c — libFuzzer target for the response side of the
 * HTTP/1.1 parser: pc_http_scan without limits (one-shot, in pieces, byte by
 * byte) and pc_http_parse_response for the request methods whose answers
 * differ (GET, HEAD, POST).
 *
 * Invariants (abort on violation):
 *  - every way of feeding the scanner gives the same verdict and head end;
 *  - on OK: slices inside the head, header count within capacity and equal
 *    to the scanned line count, status 100..599, framing consistent with
 *    the status and the request method (1xx, 204, 304 and HEAD have no
 *    body; a close-delimited body never keeps the connection);
 *  - the HEAD answer is the GET answer with no body.
 */
#include <string.h>

#include "fuzz_common.h"
#include "http1.h"

static int scan_steps(const char *buf, size_t len, uint64_t *rng, int bytewise, pc_http_scan_t *s,
                      size_t *end)
{
    size_t k = 0;
    int rc = PC_HTTP_AGAIN;
    memset(s, 0, sizeof(*s));
    *end = 0;
    do {
        size_t step = bytewise ? 1 : fz_step(rng);
        k = (len - k < step) ? len : k + step;
        rc = pc_http_scan(s, buf, k, NULL, end);
    } while (rc == PC_HTTP_AGAIN && k < len);
    return rc;
}

static void check_response(const char *head, size_t len, pc_method_e m, const pc_http_response_t *r,
                           uint32_t cap)
{
    FZ_ASSERT(r->nheaders <= cap);
    FZ_ASSERT(r->status >= 100 && r->status <= 599);
    FZ_ASSERT(r->minor <= 1);
    FZ_ASSERT(fz_inside(r->reason.p, r->reason.n, head, len));
    for (size_t i = 0; i < r->reason.n; i++) {
        unsigned char c = (unsigned char)r->reason.p[i];
        FZ_ASSERT(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    switch (r->body) {
    case PC_BODY_NONE:
        break;
    case PC_BODY_LENGTH:
        FZ_ASSERT(r->content_length >= 0);
        break;
    case PC_BODY_CHUNKED:
        FZ_ASSERT(r->minor == 1 && r->content_length == -1);
        break;
    case PC_BODY_CLOSE:
        FZ_ASSERT(!r->keep_alive && r->content_length == -1);
        break;
    default:
        FZ_ASSERT(0);
    }
    if (m == PC_M_HEAD || r->status < 200 || r->status == 204 || r->status == 304)
        FZ_ASSERT(r->body == PC_BODY_NONE);
    else
        FZ_ASSERT(r->body != PC_BODY_NONE);
    unsigned ncl = 0, nte = 0;
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
        ncl += h->id == PC_HDR_CONTENT_LENGTH;
        nte += h->id == PC_HDR_TRANSFER_ENCODING;
        if (h->id == PC_HDR_CONTENT_LENGTH || h->id == PC_HDR_TRANSFER_ENCODING)
            FZ_ASSERT(h->flags & PC_HDR_F_HOP);
        if (h->id == PC_HDR_CONNECTION || h->id == PC_HDR_KEEP_ALIVE)
            FZ_ASSERT(h->flags & PC_HDR_F_HOP);
    }
    FZ_ASSERT(ncl <= 1 && nte <= 1 && !(ncl && nte));
    if (r->body == PC_BODY_LENGTH)
        FZ_ASSERT(ncl == 1);
    if (r->body == PC_BODY_CHUNKED)
        FZ_ASSERT(nte == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    uint64_t rng = fz_seed(data, size);
    pc_http_scan_t s1, s2, s3;
    size_t e1 = 0, e2 = 0, e3 = 0;
    memset(&s1, 0, sizeof(s1));
    int rc1 = pc_http_scan(&s1, buf, size, NULL, &e1);
    int rc2 = scan_steps(buf, size, &rng, 0, &s2, &e2);
    int rc3 = scan_steps(buf, size, &rng, 1, &s3, &e3);
    /* without limits nothing is decided early: all three agree exactly */
    FZ_ASSERT(rc1 == rc2 && rc1 == rc3);
    if (rc1 != PC_HTTP_OK)
        return 0;
    FZ_ASSERT(e1 == e2 && e1 == e3 && s1.start == s2.start && s1.start == s3.start);
    FZ_ASSERT(s1.lines >= 1 && e1 <= size);

    const char *head = buf + s1.start;
    size_t hlen = e1 - s1.start;
    uint32_t cap = s1.lines - 1;
    pc_http_header_t *hdrs = malloc((cap ? cap : 1) * sizeof(*hdrs));
    FZ_ASSERT(hdrs);
    static const pc_method_e methods[] = {PC_M_GET, PC_M_HEAD, PC_M_POST};
    pc_http_response_t r[3];
    int rc[3];
    for (int i = 0; i < 3; i++) {
        rc[i] = pc_http_parse_response(head, hlen, methods[i], hdrs, cap, &r[i]);
        FZ_ASSERT(rc[i] == PC_HTTP_OK || rc[i] < 0);
        if (rc[i] == PC_HTTP_OK) {
            FZ_ASSERT(r[i].nheaders == cap);
            check_response(head, hlen, methods[i], &r[i], cap);
        }
    }
    /* the method only changes whether there is a body */
    FZ_ASSERT(rc[0] == rc[1] && rc[0] == rc[2]);
    if (rc[0] == PC_HTTP_OK) {
        FZ_ASSERT(r[0].status == r[1].status && r[0].body == r[2].body);
        FZ_ASSERT(r[1].body == PC_BODY_NONE);
        if (r[0].body != PC_BODY_CLOSE)
            FZ_ASSERT(r[0].keep_alive == r[1].keep_alive);
        if (cap > 0)
            FZ_ASSERT(pc_http_parse_response(head, hlen, PC_M_GET, hdrs, cap - 1, &r[0]) ==
                      PC_HTTP_ERR(PC_HTTP_E_TOO_MANY_HEADERS));
    }
    free(hdrs);
    return 0;
}
