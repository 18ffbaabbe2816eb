/*
 * test_chunked.c — unit tests of the chunked transfer-coding decoder
 * (gateway/chunked.c). Every body is decoded at once, split in two at every
 * byte offset, split in three at every pair of offsets (small bodies), and
 * fed byte by byte: the payload, the verdict and the offset of the end of the
 * body must be the same every time.
 */
#include <stdint.h>
#include <stdlib.h>

#include "chunked.h"
#include "http1.h"
#include "test.h"

#define ERR(e) PC_HTTP_ERR(PC_HTTP_E_##e)

typedef struct {
    int rc;         /* PC_CHUNK_DONE, PC_CHUNK_AGAIN or an error */
    size_t done_at; /* offset one past the body (DONE only) */
    size_t err_at;  /* offset of the piece that failed (errors only) */
    char *payload;
    size_t plen;
    size_t slices; /* DATA results */
    uint64_t total;
} dec_t;

static void dec_free(dec_t *r)
{
    free(r->payload);
    memset(r, 0, sizeof(*r));
}

/* Decodes buf[0..len) as if it arrived in pieces ending at cuts[0..ncuts)
 * (ascending, the last one len). Checks the decoder's contract on every
 * call. */
static void decode_cuts(const char *buf, size_t len, const size_t *cuts, size_t ncuts,
                        uint32_t max_trailer, dec_t *out)
{
    pc_chunked_t d;
    size_t pos = 0;
    memset(out, 0, sizeof(*out));
    out->payload = malloc(len + 1);
    out->rc = PC_CHUNK_AGAIN;
    pc_chunked_init(&d, max_trailer);
    for (size_t c = 0; c < ncuts; c++) {
        size_t lim = cuts[c];
        for (;;) {
            size_t avail = lim - pos, used = (size_t)-1, dlen = 12345;
            const char *data = (const char *)1;
            int rc = pc_chunked_next(&d, buf + pos, avail, &used, &data, &dlen);
            if (rc < 0) {
                out->rc = rc;
                out->err_at = pos;
                out->total = d.total;
                return;
            }
            CHECK(used <= avail);
            if (rc == PC_CHUNK_DATA) {
                CHECK(dlen > 0);
                CHECK(data >= buf + pos && data + dlen <= buf + lim);
                CHECK(data + dlen == buf + pos + used);
                memcpy(out->payload + out->plen, data, dlen);
                out->plen += dlen;
                out->slices++;
                pos += used;
                continue;
            }
            CHECK(data == NULL && dlen == 0);
            if (rc == PC_CHUNK_DONE) {
                out->rc = rc;
                out->done_at = pos + used;
                out->total = d.total;
                /* once done, it stays done and consumes nothing more */
                size_t u2 = 99;
                if (lim > pos + used) {
                    CHECK_EQ_INT(
                        pc_chunked_next(&d, buf + pos + used, lim - pos - used, &u2, &data, &dlen),
                        PC_CHUNK_DONE);
                    CHECK_EQ_INT(u2, 0);
                }
                return;
            }
            CHECK_EQ_INT(rc, PC_CHUNK_AGAIN);
            CHECK_EQ_INT(used, avail);
            pos = lim;
            break;
        }
    }
    out->total = d.total;
}

static char *cbuf;

static const char *own(const char *raw, size_t len)
{
    free(cbuf);
    cbuf = malloc(len ? len : 1);
    memcpy(cbuf, raw, len);
    return cbuf;
}

static void same_result(const dec_t *a, const dec_t *b)
{
    CHECK_EQ_INT(b->rc, a->rc);
    CHECK_EQ_INT(b->plen, a->plen);
    CHECK(a->plen == b->plen && memcmp(a->payload, b->payload, a->plen) == 0);
    if (a->rc == PC_CHUNK_DONE)
        CHECK_EQ_INT(b->done_at, a->done_at);
    CHECK_EQ_INT(b->total, a->total);
}

/* Decodes raw every way and checks all ways agree; returns the one-shot
 * result in *once (to be freed by the caller). */
static void decode_every_way(const char *raw, size_t len, uint32_t max_trailer, dec_t *once)
{
    const char *b = own(raw, len);
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    dec_t r;
    size_t one = len;
    decode_cuts(b, len, &one, 1, max_trailer, once);
    CHECK_EQ_INT(once->total, once->plen);
    /* two pieces */
    for (size_t k = 1; k < len; k++) {
        cuts[0] = k, cuts[1] = len;
        decode_cuts(b, len, cuts, 2, max_trailer, &r);
        same_result(once, &r);
        dec_free(&r);
    }
    /* three pieces */
    if (len <= 120) {
        for (size_t i = 1; i < len; i++) {
            for (size_t j = i + 1; j < len; j++) {
                cuts[0] = i, cuts[1] = j, cuts[2] = len;
                decode_cuts(b, len, cuts, 3, max_trailer, &r);
                same_result(once, &r);
                dec_free(&r);
            }
        }
    }
    /* byte by byte (also with an empty piece at the start) */
    cuts[0] = 0;
    for (size_t k = 1; k <= len; k++)
        cuts[k] = k;
    decode_cuts(b, len, cuts, len + 1, max_trailer, &r);
    same_result(once, &r);
    dec_free(&r);
    free(cuts);
}

/* ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    const char *payload;
    size_t plen;
    size_t slices; /* DATA results when decoded at once */
} good_t;

#define GOOD(n, r, p, s)                         \
    {                                            \
        n, r, sizeof(r) - 1, p, sizeof(p) - 1, s \
    }

static const good_t good_bodies[] = {
    GOOD("one-chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("empty-body", "0\r\n\r\n", "", 0),
    GOOD("two-chunks", "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", "abcdefg", 2),
    GOOD("one-byte-chunks", "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", "abc", 3),
    GOOD("hex-upper", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 1),
    GOOD("hex-lower", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789", 1),
    GOOD("hex-two-digits-mixed", "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
         "abcdefghijklmnopqrstuvwxyz", 1),
    GOOD("hex-f", "F\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde", 1),
    GOOD("leading-zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 1),
    GOOD("fifteen-digits", "000000000000005\r\nhello\r\n000000000000000\r\n\r\n", "hello", 1),
    GOOD("binary-payload", "6\r\n\r\n\0\n\r\x01\r\n0\r\n\r\n", "\r\n\0\n\r\x01", 1),
    GOOD("payload-looks-like-framing", "9\r\n0\r\n\r\nGET \r\n0\r\n\r\n", "0\r\n\r\nGET ", 1),
    GOOD("ext-name", "5;name\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-token-value", "5;name=value\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-many", "5;a=1;b=2;c;d=x-y.z\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-tchars", "5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-quoted", "5;a=\"x y\"\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-quoted-empty", "5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-quoted-escape", "5;a=\"x\\\"y\\\\\"\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-quoted-tab-semicolon-equals", "5;a=\"\t;=,\"\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-quoted-obs-text", "5;a=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-quoted-then-more", "5;a=\"q\";b=t;c=\"r\"\r\nhello\r\n0\r\n\r\n", "hello", 1),
    GOOD("ext-on-last-chunk", "5\r\nhello\r\n0;end=1;x=\"y\"\r\n\r\n", "hello", 1),
    GOOD("trailer", "5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n", "hello", 1),
    GOOD("two-trailers", "5\r\nhello\r\n0\r\nA: 1\r\nB-b: two words\r\n\r\n", "hello", 1),
    GOOD("trailer-empty-value", "0\r\nX:\r\n\r\n", "", 0),
    GOOD("trailer-no-space", "0\r\nX:v\r\n\r\n", "", 0),
    GOOD("trailer-obs-text-tab", "0\r\nX: \xc3\xa9\tz\r\n\r\n", "", 0),
    GOOD("trailer-framing-names", "0\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", "",
         0),
};

TEST(valid_bodies)
{
    const char *saved = test_current;
    for (size_t i = 0; i < sizeof(good_bodies) / sizeof(good_bodies[0]); i++) {
        const good_t *c = &good_bodies[i];
        dec_t r;
        test_current = c->name;
        decode_every_way(c->raw, c->len, 0, &r);
        CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
        CHECK_EQ_INT(r.done_at, c->len);
        dec_free(&r);
        const char *b = own(c->raw, c->len);
        size_t one = c->len;
        decode_cuts(b, c->len, &one, 1, 0, &r);
        CHECK_EQ_INT(r.plen, c->plen);
        CHECK(r.plen == c->plen && memcmp(r.payload, c->payload, c->plen) == 0);
        CHECK_EQ_INT(r.slices, c->slices);
        CHECK_EQ_INT(r.total, c->plen);
        dec_free(&r);
    }
    test_current = saved;
}

/* Bytes after the terminator belong to the next message and are left alone,
 * however the input is split. */
TEST(bytes_after_terminator)
{
    static const char raw[] = "5\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    dec_t r;
    decode_every_way(raw, sizeof(raw) - 1, 0, &r);
    CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
    CHECK_EQ_INT(r.done_at, 21);
    CHECK(r.plen == 5 && memcmp(r.payload, "hello", 5) == 0);
    dec_free(&r);
    /* a smuggled request right after the last chunk is just the next bytes */
    static const char raw2[] = "0\r\n\r\n0\r\n\r\n";
    decode_every_way(raw2, sizeof(raw2) - 1, 0, &r);
    CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
    CHECK_EQ_INT(r.done_at, 5);
    dec_free(&r);
}

/* Incomplete bodies are AGAIN at every prefix, never DONE early. */
TEST(incomplete_prefixes)
{
    static const char raw[] = "3;x=\"y\"\r\nabc\r\n0\r\nT: v\r\n\r\n";
    size_t len = sizeof(raw) - 1;
    for (size_t k = 0; k < len; k++) {
        dec_t r;
        const char *b = own(raw, k);
        size_t one = k;
        decode_cuts(b, k, &one, 1, 0, &r);
        CHECK_EQ_INT(r.rc, PC_CHUNK_AGAIN);
        CHECK_EQ_INT(r.plen, k < 9 ? 0 : (k < 12 ? k - 9 : 3));
        dec_free(&r);
    }
    pc_chunked_t d;
    size_t used = 7;
    const char *data;
    size_t dlen;
    pc_chunked_init(&d, 0);
    CHECK_EQ_INT(pc_chunked_next(&d, raw, 0, &used, &data, &dlen), PC_CHUNK_AGAIN);
    CHECK_EQ_INT(used, 0);
}

/* A huge (15-digit) chunk streams without overflow. */
TEST(huge_chunk)
{
    static const char raw[] = "fffffffffffffff\r\nabcdef";
    pc_chunked_t d;
    size_t used;
    const char *data;
    size_t dlen;
    pc_chunked_init(&d, 0);
    CHECK_EQ_INT(pc_chunked_next(&d, raw, sizeof(raw) - 1, &used, &data, &dlen), PC_CHUNK_DATA);
    CHECK_EQ_INT(used, sizeof(raw) - 1);
    CHECK(data == raw + 17 && dlen == 6);
    CHECK(d.remaining == 0xfffffffffffffffULL - 6);
    CHECK_EQ_INT(d.total, 6);
    CHECK_EQ_INT(pc_chunked_next(&d, raw, 0, &used, &data, &dlen), PC_CHUNK_AGAIN);
}

/* ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int rc;
} bad_t;

#define BAD(n, r, e)                \
    {                               \
        n, r, sizeof(r) - 1, ERR(e) \
    }

static const bad_t bad_bodies[] = {
    BAD("size-negative", "-5\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-plus", "+5\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-0x", "0x5\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-leading-space", " 5\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-leading-tab", "\t5\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-trailing-space", "5 \r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-trailing-tab", "5\t\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-space-before-ext", "5 ;a=b\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-16-digits-zeros", "0000000000000005\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-16-digits-f", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-17-digits-wraps-to-5", "10000000000000005\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-16-zero-digits-last", "5\r\nhello\r\n0000000000000000\r\n\r\n", CHUNK_SIZE),
    BAD("size-empty", "\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-missing-ext-only", ";a\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-not-hex", "g\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-hex-then-junk", "5g\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-underscore", "1_0\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-nul", "5\0\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-bare-lf", "5\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-cr-cr", "5\r\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("size-bare-cr", "5\rhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("last-chunk-bare-lf", "5\r\nhello\r\n0\n\r\n", CHUNK_SIZE),
    BAD("data-too-long", "5\r\nhelloX\r\n0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-too-short", "5\r\nhell\r\n0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-bare-lf", "5\r\nhello\n0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-bare-cr", "5\r\nhello\r0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-no-crlf", "5\r\nhello0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-junk-lf", "5\r\nhelloX\n0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-lf-lf", "5\r\nhello\n\n0\r\n\r\n", CHUNK_DATA_END),
    BAD("data-cr-junk", "5\r\nhello\rX0\r\n\r\n", CHUNK_DATA_END),
    BAD("empty-line-between-chunks", "3\r\nabc\r\n\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("ext-space-after-semicolon", "5; a=b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-empty", "5;\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-empty-name", "5;=b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-empty-value", "5;a=\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-double-equals", "5;a==b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-value-equals", "5;a=b=c\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-space-before-equals", "5;a =b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-space-after-equals", "5;a= b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-space-in-value", "5;a=b c\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-trailing-space", "5;a=b \r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-tab-in-name", "5;a\tb\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-trailing-semicolon", "5;a;\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-double-semicolon", "5;a=b;;c\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-del", "5;a\x7f\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-bare-lf", "5;a=b\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-unterminated", "5;a=\"x\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-then-token", "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-then-space", "5;a=\"x\" \r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-twice", "5;a=\"x\"\"y\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-ctl", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-del", "5;a=\"x\x7f\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-nul", "5;a=\"\0\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-escaped-ctl", "5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-quoted-escaped-cr", "5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-name-quoted", "5;\"a\"=b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT),
    BAD("ext-cr-cr", "5;a=b\r\r\nhello\r\n0\r\n\r\n", CHUNK_SIZE),
    BAD("final-bare-lf", "5\r\nhello\r\n0\r\n\n", TRAILER),
    BAD("final-cr-cr", "5\r\nhello\r\n0\r\n\r\r", TRAILER),
    BAD("final-cr-junk", "0\r\n\rX", TRAILER),
    BAD("trailer-obs-fold", "0\r\nX: a\r\n b\r\n\r\n", TRAILER),
    BAD("trailer-obs-fold-tab", "0\r\nX: a\r\n\tb\r\n\r\n", TRAILER),
    BAD("trailer-leading-space", "0\r\n X: a\r\n\r\n", TRAILER),
    BAD("trailer-ws-before-colon", "0\r\nX : a\r\n\r\n", TRAILER),
    BAD("trailer-no-colon", "0\r\nX\r\n\r\n", TRAILER),
    BAD("trailer-empty-name", "0\r\n: a\r\n\r\n", TRAILER),
    BAD("trailer-nul-name", "0\r\nX\0: a\r\n\r\n", TRAILER),
    BAD("trailer-ctl-value", "0\r\nX: \x01\r\n\r\n", TRAILER),
    BAD("trailer-nul-value", "0\r\nX: a\0b\r\n\r\n", TRAILER),
    BAD("trailer-del-value", "0\r\nX: a\x7f\r\n\r\n", TRAILER),
    BAD("trailer-bare-lf", "0\r\nX: a\n\r\n", TRAILER),
    BAD("trailer-cr-cr", "0\r\nX: a\r\r\n\r\n", TRAILER),
    BAD("trailer-then-bare-lf", "0\r\nX: a\r\n\n", TRAILER),
};

TEST(invalid_bodies)
{
    const char *saved = test_current;
    size_t n = sizeof(bad_bodies) / sizeof(bad_bodies[0]);
    for (size_t i = 0; i < n; i++) {
        const bad_t *c = &bad_bodies[i];
        dec_t r;
        test_current = c->name;
        decode_every_way(c->raw, c->len, 0, &r);
        CHECK_EQ_INT(r.rc, c->rc);
        CHECK_EQ_INT(pc_http_err_status(r.rc), 400);
        dec_free(&r);
    }
    test_current = saved;
    printf("chunked: %zu valid, %zu invalid bodies\n", sizeof(good_bodies) / sizeof(good_bodies[0]),
           n);
}

/* Payload already returned before an error stays returned: the decoder never
 * hands out bytes past the chunk it is in. */
TEST(error_after_data)
{
    static const char raw[] = "3\r\nabc\r\n2\r\nxyz\r\n0\r\n\r\n";
    dec_t r;
    decode_every_way(raw, sizeof(raw) - 1, 0, &r);
    CHECK_EQ_INT(r.rc, ERR(CHUNK_DATA_END));
    CHECK(r.plen == 5 && memcmp(r.payload, "abcxy", 5) == 0);
    dec_free(&r);
}

/* ---------------------------------------------------------------------- */
/* caps                                                                     */

/* "0\r\n" + trailer fields of exactly tbytes bytes (with their CRLFs) +
 * "\r\n"; returns the length. */
static size_t build_trailer_body(char *out, size_t tbytes)
{
    size_t n = 0;
    memcpy(out, "0\r\n", 3);
    n = 3;
    /* one field "X: vvv...\r\n" of tbytes bytes (tbytes >= 5) */
    memcpy(out + n, "X: ", 3);
    n += 3;
    for (size_t i = 0; i < tbytes - 5; i++)
        out[n++] = 'v';
    memcpy(out + n, "\r\n\r\n", 4);
    return n + 4;
}

/* The trailer cap counts the trailer field lines and the final CR: a cap of
 * N admits N-1 bytes of field lines. */
static void check_trailer_cap(uint32_t cap)
{
    uint32_t eff = cap ? cap : PC_CHUNK_MAX_LINE;
    char *buf = malloc(eff + 64);
    for (size_t t = eff - 2; t <= eff + 1; t++) {
        size_t len = build_trailer_body(buf, t);
        const char *b = own(buf, len);
        dec_t r;
        size_t one = len;
        decode_cuts(b, len, &one, 1, cap, &r);
        if (t + 1 <= eff) {
            CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
            CHECK_EQ_INT(r.done_at, len);
        } else {
            CHECK_EQ_INT(r.rc, ERR(TRAILER));
        }
        dec_free(&r);
        if (len < 200) {
            decode_every_way(buf, len, cap, &r);
            CHECK_EQ_INT(r.rc, t + 1 <= eff ? PC_CHUNK_DONE : ERR(TRAILER));
            dec_free(&r);
        }
    }
    /* many small trailer fields add up the same way */
    size_t n = 3;
    memcpy(buf, "0\r\n", 3);
    while (n + 6 <= eff + 3 + 8)
        memcpy(buf + n, "A: b\r\n", 6), n += 6;
    memcpy(buf + n, "\r\n", 2);
    const char *b = own(buf, n + 2);
    dec_t r;
    size_t one = n + 2;
    decode_cuts(b, n + 2, &one, 1, cap, &r);
    CHECK_EQ_INT(r.rc, ERR(TRAILER));
    dec_free(&r);
    free(buf);
}

TEST(trailer_cap)
{
    check_trailer_cap(16);
    check_trailer_cap(100);
    check_trailer_cap(0); /* default: PC_CHUNK_MAX_LINE */
    /* no trailer at all fits a cap of 1 (the final CR) */
    dec_t r;
    decode_every_way("0\r\n\r\n", 5, 1, &r);
    CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
    dec_free(&r);
}

/* "5;" + extension bytes so that the size line (without CRLF) is linelen
 * bytes, then the chunk and the last chunk. */
static size_t build_long_size_line(char *out, size_t linelen, int quoted)
{
    size_t n = 0;
    if (quoted) {
        memcpy(out, "5;e=\"", 5);
        n = 5;
        while (n < linelen - 1)
            out[n++] = 'q';
        out[n++] = '"';
    } else {
        memcpy(out, "5;", 2);
        n = 2;
        while (n < linelen)
            out[n++] = 'e';
    }
    static const char tail[] = "\r\nhello\r\n0\r\n\r\n";
    memcpy(out + n, tail, sizeof(tail) - 1);
    return n + sizeof(tail) - 1;
}

/* A size line counts with its CR: PC_CHUNK_MAX_LINE - 1 bytes before the
 * CRLF are accepted, PC_CHUNK_MAX_LINE are not. */
TEST(size_line_cap)
{
    char *buf = malloc(4 * (PC_CHUNK_MAX_LINE + 100));
    for (int quoted = 0; quoted < 2; quoted++) {
        for (size_t l = PC_CHUNK_MAX_LINE - 2; l <= PC_CHUNK_MAX_LINE + 1; l++) {
            size_t len = build_long_size_line(buf, l, quoted);
            const char *b = own(buf, len);
            dec_t r;
            size_t one = len;
            decode_cuts(b, len, &one, 1, 0, &r);
            if (l < PC_CHUNK_MAX_LINE) {
                CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
                CHECK(r.plen == 5 && memcmp(r.payload, "hello", 5) == 0);
            } else {
                CHECK_EQ_INT(r.rc, ERR(CHUNK_EXT));
            }
            dec_free(&r);
            /* byte by byte gives the same verdict */
            size_t *cuts = malloc(len * sizeof(*cuts));
            for (size_t k = 0; k < len; k++)
                cuts[k] = k + 1;
            decode_cuts(b, len, cuts, len, 0, &r);
            CHECK_EQ_INT(r.rc, l < PC_CHUNK_MAX_LINE ? PC_CHUNK_DONE : ERR(CHUNK_EXT));
            dec_free(&r);
            free(cuts);
        }
    }
    /* A size line that never ends is refused before it ends. */
    memcpy(buf, "5;", 2);
    memset(buf + 2, 'e', PC_CHUNK_MAX_LINE + 50);
    pc_chunked_t d;
    size_t used;
    const char *data;
    size_t dlen;
    pc_chunked_init(&d, 0);
    CHECK_EQ_INT(pc_chunked_next(&d, buf, PC_CHUNK_MAX_LINE + 52, &used, &data, &dlen),
                 ERR(CHUNK_EXT));
    /* the line length starts again with each chunk */
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t l = build_long_size_line(buf + n, PC_CHUNK_MAX_LINE - 1, 0);
        n += l - 5; /* drop the "0\r\n\r\n" of all but the last */
    }
    memcpy(buf + n, "0\r\n\r\n", 5);
    n += 5;
    dec_t r;
    size_t one = n;
    const char *b = own(buf, n);
    decode_cuts(b, n, &one, 1, 0, &r);
    CHECK_EQ_INT(r.rc, PC_CHUNK_DONE);
    CHECK_EQ_INT(r.plen, 15);
    dec_free(&r);
    free(buf);
}

TEST(init_resets)
{
    pc_chunked_t d;
    memset(&d, 0xa5, sizeof(d));
    pc_chunked_init(&d, 0);
    CHECK_EQ_INT(d.max_trailer, PC_CHUNK_MAX_LINE);
    CHECK_EQ_INT(d.total, 0);
    CHECK_EQ_INT(d.remaining, 0);
    CHECK_EQ_INT(d.line_len, 0);
    CHECK_EQ_INT(d.trailer_bytes, 0);
    pc_chunked_init(&d, 77);
    CHECK_EQ_INT(d.max_trailer, 77);
    /* a decoder can be reused for the next body after init */
    static const char raw[] = "1\r\nx\r\n0\r\n\r\n";
    for (int round = 0; round < 2; round++) {
        size_t used, dlen;
        const char *data;
        pc_chunked_init(&d, 0);
        CHECK_EQ_INT(pc_chunked_next(&d, raw, sizeof(raw) - 1, &used, &data, &dlen), PC_CHUNK_DATA);
        CHECK_EQ_INT(used, 4);
        CHECK_EQ_INT(pc_chunked_next(&d, raw + 4, sizeof(raw) - 5, &used, &data, &dlen),
                     PC_CHUNK_DONE);
        CHECK_EQ_INT(used, sizeof(raw) - 5);
        CHECK_EQ_INT(d.total, 1);
    }
}

int main(void)
{
    RUN(valid_bodies);
    RUN(bytes_after_terminator);
    RUN(incomplete_prefixes);
    RUN(huge_chunk);
    RUN(invalid_bodies);
    RUN(error_after_data);
    RUN(trailer_cap);
    RUN(size_line_cap);
    RUN(init_resets);
    free(cbuf);
    printf("%s: %d checks, %d failures\n", __FILE__, test_checks, test_failures);
    return test_failures ? 1 : 0;
}
