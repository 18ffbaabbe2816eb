/*
 * fuzz_chunked.c — libFuzzer target for the chunked decoder
 * (pc_chunked_next). The input is a body decoded three ways: at once, in
 * pieces split at input-derived points, and byte by byte.
 *
 * Invariants (abort on violation):
 *  - every returned slice lies inside the bytes handed to that call, is
 *    non-empty, and ends exactly at the reported consumption;
 *  - AGAIN consumes everything; DONE stays DONE and consumes nothing more;
 *  - the decoder's running total equals the sum of the returned slices;
 *  - all three ways agree on the verdict, the payload bytes and the offset
 *    where the body ends.
 */
#include <string.h>

#include "chunked.h"
#include "fuzz_common.h"
#include "http1.h"

static const uint32_t trailer_caps[] = {0, 1, 16, 100};

typedef struct {
    int rc;
    size_t done_at;
    size_t plen;
    uint64_t total;
} result_t;

/* mode 0: at once; 1: random steps; 2: byte by byte. payload receives the
 * decoded bytes (room for len). */
static void decode(const char *buf, size_t len, uint32_t cap, int mode, uint64_t *rng,
                   char *payload, result_t *res)
{
    pc_chunked_t d;
    size_t pos = 0, lim = 0;
    memset(res, 0, sizeof(*res));
    res->rc = PC_CHUNK_AGAIN;
    pc_chunked_init(&d, cap);
    while (lim < len) {
        size_t step = mode == 0 ? len : mode == 2 ? 1 : fz_step(rng);
        lim = (len - lim < step) ? len : lim + step;
        for (;;) {
            size_t avail = lim - pos, used = (size_t)-1, dlen = (size_t)-1;
            const char *data = buf;
            int rc = pc_chunked_next(&d, buf + pos, avail, &used, &data, &dlen);
            if (rc < 0) {
                FZ_ASSERT(pc_http_err_status(rc) == 400);
                res->rc = rc;
                res->total = d.total;
                FZ_ASSERT(res->total == res->plen);
                return;
            }
            FZ_ASSERT(used <= avail);
            if (rc == PC_CHUNK_DATA) {
                FZ_ASSERT(dlen > 0 && data != NULL);
                FZ_ASSERT(fz_inside(data, dlen, buf + pos, avail));
                FZ_ASSERT(data + dlen == buf + pos + used);
                memcpy(payload + res->plen, data, dlen);
                res->plen += dlen;
                FZ_ASSERT(d.total == res->plen);
                pos += used;
                continue;
            }
            FZ_ASSERT(data == NULL && dlen == 0);
            if (rc == PC_CHUNK_DONE) {
                res->rc = rc;
                res->done_at = pos + used;
                res->total = d.total;
                FZ_ASSERT(res->total == res->plen);
                if (res->done_at < lim) {
                    size_t u2 = 1;
                    FZ_ASSERT(pc_chunked_next(&d, buf + res->done_at, lim - res->done_at, &u2,
                                              &data, &dlen) == PC_CHUNK_DONE);
                    FZ_ASSERT(u2 == 0);
                }
                return;
            }
            FZ_ASSERT(rc == PC_CHUNK_AGAIN);
            FZ_ASSERT(used == avail);
            pos = lim;
            break;
        }
    }
    res->total = d.total;
    FZ_ASSERT(res->total == res->plen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    uint64_t rng = fz_seed(data, size);
    uint32_t cap = trailer_caps[fz_rand(&rng) % 4];
    char *p[3];
    result_t r[3];
    for (int m = 0; m < 3; m++) {
        p[m] = malloc(size ? size : 1);
        FZ_ASSERT(p[m]);
        decode(buf, size, cap, m, &rng, p[m], &r[m]);
    }
    for (int m = 1; m < 3; m++) {
        FZ_ASSERT(r[m].rc == r[0].rc);
        FZ_ASSERT(r[m].plen == r[0].plen && memcmp(p[m], p[0], r[0].plen) == 0);
        FZ_ASSERT(r[m].total == r[0].total);
        if (r[0].rc == PC_CHUNK_DONE)
            FZ_ASSERT(r[m].done_at == r[0].done_at);
    }
    if (r[0].rc == PC_CHUNK_DONE)
        FZ_ASSERT(r[0].done_at >= 5 && r[0].done_at <= size &&
                  memcmp(buf + r[0].done_at - 2, "\r\n", 2) == 0);
    /* the payload never outgrows the body that carried it */
    FZ_ASSERT(r[0].plen <= size);
    for (int m = 0; m < 3; m++)
        free(p[m]);
    return 0;
}
