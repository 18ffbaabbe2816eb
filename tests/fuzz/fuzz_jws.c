/*
 * fuzz_jws.c — libFuzzer target for JWS verification (pc_jws_verify) and
 * base64url. One fixed key set (RSA-2048 "r", EC P-256 "e", Ed25519 "d" and
 * a 32-byte oct secret "h", every algorithm allowed) is built once; each
 * input is then
 *  1. verified as a compact token;
 *  2. round-tripped through base64url, and decoded as base64url text;
 *  3. used as the raw JSON header of a token with a 3-byte signature (so the
 *     fuzzer mutates header JSON directly rather than through base64url);
 *  4. used as the raw claims of a token HMAC-signed with the "h" secret (so
 *     the path after a good signature is reached at all).
 *
 * Invariants (abort on violation):
 *  - the verdict is one of pc_jws_rc_e, a failure says why; PC_JWS_OK comes
 *    with a claims object;
 *  - an input without a '.' is MALFORMED (or TOO_LARGE); one over
 *    PC_JWT_MAX_LEN is TOO_LARGE;
 *  - once the token's alg is known, removing it from the allowed set gives
 *    PC_JWS_ALG, and a verified token still verifies with only its own alg;
 *  - decode(encode(x)) == x, and decode writes at most pc_b64url_max(n)
 *    bytes (the buffer is exactly that long: ASan sees any overrun); what
 *    decodes re-encodes to the same text (one encoding per value);
 *  - a 3-byte signature never verifies; a correctly HMAC-signed token is OK
 *    exactly when its claims are a JSON object, and otherwise MALFORMED.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "jose.h"

#define ALL_ALGS ((1u << PC_JWS_COUNT) - 1)

/* Public halves of keys made with the openssl CLI (the seeds in
 * corpus/jws/ were signed with the private halves); "h" is the 32 bytes
 * "fuzz-secret-0123456789abcdefghij". */
static const char jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"r\","
    "\"n\":\"n3g0zfpWAeqhC5westAPXMj8PQUzyB_vJV76Sd_H0mCzIJ05JEE04vy7soKjhJCHfCUwZHoXPVfWwNet3hK"
    "vSDPmZm2M3HD98dSFRtlodDs6ptLhDadP8jA2-zL_NPLOoKICFbCf78cYVOsT-tQdujYLmwSd5g1RHYlJPju4Gyi"
    "0y40NyenplEioMYI3p-UCywKAEsxsRMjqX72H-BOE9fecufWg6G0oRjW-cMYCRi-qUp4C1JFAHWzr7p6SoRiZXDk"
    "OtI82IGLS-WEh8dDzXLsPHWyqxm7k4wnhiC0KXhq0vaNdR1Wh5k6FnL3Ev_sVhnSFCjMzmuF5N_z7Pf9NpQ\","
    "\"e\":\"AQAB\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\","
    "\"x\":\"jBl-IG10bZmO9VrT5HA4MFWoDisJJrgdix-qtP3t2_Q\","
    "\"y\":\"Y2rPr2wmFn3kRE-DNxhxfsEE-4SEI3TMBIJyEjxbtgA\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"d\","
    "\"x\":\"CE2laFspEAWWLS8uelZS0BVLhK4126HWnrZGhf1IMNA\"},"
    "{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZmdoaWo\"}"
    "]}";

static const char hmac_secret[] = "fuzz-secret-0123456789abcdefghij";

static pc_keyset_t *keys(void)
{
    static pc_keyset_t *ks;
    char err[256];
    if (ks)
        return ks;
    if (!(ks = pc_jwks_parse(jwks, sizeof(jwks) - 1, err, sizeof(err), NULL, NULL))) {
        fprintf(stderr, "fuzz_jws: the fixed key set: %s\n", err);
        abort();
    }
    /* every key made it in, with the algorithms it is meant to have: a key
     * silently skipped would leave its whole verification path unfuzzed */
    static const struct {
        const char *kid;
        uint32_t algs;
    } want[] = {
        {"r", PC_JWS_BIT(PC_JWS_RS256) | PC_JWS_BIT(PC_JWS_RS384) | PC_JWS_BIT(PC_JWS_RS512) |
                  PC_JWS_BIT(PC_JWS_PS256) | PC_JWS_BIT(PC_JWS_PS384) | PC_JWS_BIT(PC_JWS_PS512)},
        {"e", PC_JWS_BIT(PC_JWS_ES256)},
        {"d", PC_JWS_BIT(PC_JWS_EDDSA)},
        {"h", PC_JWS_BIT(PC_JWS_HS256)},
    };
    FZ_ASSERT(ks->n == sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < ks->n; i++) {
        FZ_ASSERT(ks->keys[i].kid && strcmp(ks->keys[i].kid, want[i].kid) == 0);
        FZ_ASSERT(ks->keys[i].algs == want[i].algs);
    }
    FZ_ASSERT(ks->keys[3].secret_len == sizeof(hmac_secret) - 1 &&
              memcmp(ks->keys[3].secret, hmac_secret, sizeof(hmac_secret) - 1) == 0);
    return ks;
}

/* Verifies tok[0..len) with every algorithm allowed and checks the
 * invariants that hold for any input; returns the verdict. */
static pc_jws_rc_e verify(const char *tok, size_t len)
{
    pc_jws_t out;
    pc_jws_rc_e rc = pc_jws_verify(tok, len, keys(), ALL_ALGS, &out);
    switch (rc) {
    case PC_JWS_OK:
    case PC_JWS_MALFORMED:
    case PC_JWS_TOO_LARGE:
    case PC_JWS_ALG:
    case PC_JWS_CRIT:
    case PC_JWS_NO_KEY:
    case PC_JWS_SIGNATURE:
    case PC_JWS_INTERNAL:
        break;
    default:
        FZ_ASSERT(!"verdict out of range");
    }
    FZ_ASSERT(rc != PC_JWS_OK || json_is_object(out.payload));
    FZ_ASSERT(rc == PC_JWS_OK || out.why != NULL);
    FZ_ASSERT(len <= PC_JWT_MAX_LEN || rc == PC_JWS_TOO_LARGE);
    FZ_ASSERT(memchr(tok, '.', len) || rc == PC_JWS_MALFORMED || rc == PC_JWS_TOO_LARGE);
    int alg = out.alg;
    FZ_ASSERT(alg >= -1 && alg < PC_JWS_COUNT);
    pc_jws_clear(&out);

    /* the caller's set is the last word on algorithms */
    if (alg >= 0) {
        pc_jws_rc_e r2 = pc_jws_verify(tok, len, keys(), ALL_ALGS & ~PC_JWS_BIT(alg), &out);
        FZ_ASSERT(r2 == PC_JWS_ALG);
        pc_jws_clear(&out);
        FZ_ASSERT(pc_jws_verify(tok, len, keys(), 0, &out) == PC_JWS_ALG);
        pc_jws_clear(&out);
    }
    if (rc == PC_JWS_OK) {
        FZ_ASSERT(pc_jws_verify(tok, len, keys(), PC_JWS_BIT(alg), &out) == PC_JWS_OK);
        pc_jws_clear(&out);
    }
    return rc;
}

/* base64url both ways on the raw bytes, and the input as base64url text */
static void b64_checks(const uint8_t *data, size_t size)
{
    char *enc = malloc((size + 2) / 3 * 4 + 1);
    FZ_ASSERT(enc);
    size_t el = pc_b64url_encode(data, size, enc);
    FZ_ASSERT(el == size / 3 * 4 + (size % 3 ? size % 3 + 1 : 0));
    unsigned char *dec = malloc(pc_b64url_max(el));
    FZ_ASSERT(dec);
    long dl = pc_b64url_decode(enc, el, dec);
    FZ_ASSERT(dl == (long)size && memcmp(dec, data, size) == 0);
    free(dec);
    free(enc);

    /* into a buffer of exactly the documented bound */
    dec = malloc(pc_b64url_max(size));
    FZ_ASSERT(dec);
    dl = pc_b64url_decode((const char *)data, size, dec);
    FZ_ASSERT(dl >= -1 && (dl < 0 || (size_t)dl <= pc_b64url_max(size)));
    if (dl >= 0) {
        FZ_ASSERT((size_t)dl == size * 6 / 8);
        char *re = malloc((size_t)dl / 3 * 4 + 4);
        FZ_ASSERT(re);
        FZ_ASSERT(pc_b64url_encode(dec, (size_t)dl, re) == size && memcmp(re, data, size) == 0);
        free(re);
    }
    free(dec);
}

/* b64(h) "." b64(p) "." sig into a malloc'ed string of *len bytes. */
static char *make_token(const void *h, size_t hn, const void *p, size_t pn, const char *sig,
                        size_t *len)
{
    size_t sn = strlen(sig);
    char *t = malloc((hn + 2) / 3 * 4 + (pn + 2) / 3 * 4 + sn + 3);
    FZ_ASSERT(t);
    size_t o = pc_b64url_encode(h, hn, t);
    t[o++] = '.';
    o += pc_b64url_encode(p, pn, t + o);
    t[o++] = '.';
    memcpy(t + o, sig, sn);
    *len = o + sn;
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. the input as a token */
    verify((const char *)data, size);

    /* 2. base64url */
    b64_checks(data, size);

    if (size > PC_JWT_MAX_LEN / 2)
        return 0;
    size_t tl = 0;
    char *tok;
    pc_jws_rc_e rc;

    /* 3. the input as the header JSON: a 3-byte signature never verifies */
    tok = make_token(data, size, "{}", 2, "AAAA", &tl);
    rc = verify(tok, tl);
    FZ_ASSERT(rc != PC_JWS_OK && rc != PC_JWS_TOO_LARGE);
    if (size == 0)
        FZ_ASSERT(rc == PC_JWS_MALFORMED);
    free(tok);

    /* 4. the input as the claims of a token correctly signed with "h" */
    static const char hdr[] = "{\"alg\":\"HS256\",\"kid\":\"h\"}";
    char *si = make_token(hdr, sizeof(hdr) - 1, data, size, "", &tl);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    FZ_ASSERT(HMAC(EVP_sha256(), hmac_secret, (int)sizeof(hmac_secret) - 1,
                   (const unsigned char *)si, tl - 1, mac, &ml));
    char sig[64];
    sig[pc_b64url_encode(mac, ml, sig)] = 0;
    free(si);
    tok = make_token(hdr, sizeof(hdr) - 1, data, size, sig, &tl);
    rc = verify(tok, tl);
    if (size == 0) {
        FZ_ASSERT(rc == PC_JWS_MALFORMED); /* an empty part */
    } else {
        json_t *j = pc_json_strict((const char *)data, size);
        FZ_ASSERT(rc == (json_is_object(j) ? PC_JWS_OK : PC_JWS_MALFORMED));
        json_decref(j);
    }
    free(tok);
    return 0;
}
