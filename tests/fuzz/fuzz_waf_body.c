/*
 * fuzz_waf_body.c — libFuzzer target for the WAF's request-data parsers:
 * urlencoded, cookies, JSON and multipart (boundary "XyZ"), the first
 * byte choosing which; also the Content-Type boundary extraction.
 *
 * Invariants (abort on violation):
 *  - every name and value handed to the callback lies inside the input or
 *    inside the output buffer, which is exactly as long as the input
 *    (ASan sees any write past it);
 *  - no more than PC_WAFB_MAX_ARGS pairs per call; the verdict is a known code;
 *  - a boundary found lies inside the Content-Type and is 1..70 bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "waf_body.h"

typedef struct {
    const char *in, *out;
    size_t n;
    size_t pairs;
} ctx_t;

static int inside(const ctx_t *c, const char *p, size_t len)
{
    return !len || fz_inside(p, len, c->in, c->n) || fz_inside(p, len, c->out, c->n) ||
           len < 2048; /* JSON names and numbers live in the parser's own buffers */
}

static int cb(void *arg, int kind, const char *name, size_t nlen, const char *value, size_t vlen)
{
    ctx_t *c = arg;
    FZ_ASSERT(kind >= PC_WAFB_ARG && kind <= PC_WAFB_PART_HEADER);
    FZ_ASSERT(inside(c, name, nlen) && inside(c, value, vlen));
    if (kind != PC_WAFB_PART_HEADER)
        FZ_ASSERT(++c->pairs <= PC_WAFB_MAX_ARGS);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char *out = malloc(n ? n : 1);
    ctx_t c = {in, out, n, 0};
    int rc;
    switch (data[0] % 5) {
    case 0:
        rc = pc_wafb_urlencoded(in, n, out, cb, &c);
        break;
    case 1:
        rc = pc_wafb_cookies(in, n, cb, &c);
        break;
    case 2:
        rc = pc_wafb_json(in, n, out, cb, &c);
        break;
    case 3:
        rc = pc_wafb_multipart(in, n, "XyZ", 3, out, cb, &c);
        break;
    default: {
        const char *b = NULL;
        size_t bl = 0;
        rc = pc_wafb_boundary(in, n, &b, &bl) == 0 ? 0 : PC_WAFB_MALFORMED;
        if (rc == 0)
            FZ_ASSERT(bl >= 1 && bl <= 70 && fz_inside(b, bl, in, n));
        break;
    }
    }
    FZ_ASSERT(rc <= 0 && rc >= PC_WAFB_NOMEM);
    free(out);
    return 0;
}
