/*
 * fuzz_jws.c — libFuzzer target for JWS verification (pc_jws_verify) and
 * base64url. The input is a token checked against one fixed key set (RSA,
 * EC P-256, Ed25519 and an HMAC secret, every algorithm allowed), and raw
 * bytes round-tripped through base64url.
 *
 * Invariants (abort on violation):
 *  - the verdict is one of pc_jws_rc_e; PC_JWS_OK comes with a claims object;
 *  - an input without a '.' is MALFORMED (or TOO_LARGE); one over
 *    PC_JWT_MAX_LEN is TOO_LARGE;
 *  - decode(encode(x)) == x, and decode writes at most pc_b64url_max(n)
 *    bytes (the buffer is exactly that long: ASan sees any overrun).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "jose.h"

static const char jwks[] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"n3g0zfpWAeqhC5westAPXMj8PQUzyB_vJV76Sd_H0mCzIJ05JEE04vy7soKjhJCHfCUwZHoXPVfWwNet3hKvSDPmZm2M3HD98dSFRtlodDs6ptLhDadP8jA2-zL_NPLOoKICFbCf78cYVOsT-tQdujYLmwSd5g1RHYlJPju4Gyi0y40NyenplEioMYI3p-UCywKAEsxsRMjqX72H-BOE9fecufWg6G0oRjW-cMYCRi-qUp4C1JFAHWzr7p6SoRiZXDkOtI82IGLS-WEh8dDzXLsPHWyqxm7k4wnhiC0KXhq0vaNdR1Wh5k6FnL3Ev_sVhnSFCjMzmuF5N_z7Pf9NpQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\",\"x\":\"jBl-IG10bZmO9VrT5HA4MFWoDisJJrgdix-qtP3t2_Q\",\"y\":\"Y2rPr2wmFn3kRE-DNxhxfsEE-4SEI3TMBIJyEjxbtgA\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"d\",\"x\":\"CE2laFspEAWWLS8uelZS0BVLhK4126HWnrZGhf1IMNA\"},{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZmdoaWo\"}]}";

static pc_keyset_t *keys(void)
{
    static pc_keyset_t *ks;
    char err[256];
    if (!ks && !(ks = pc_jwks_parse(jwks, sizeof(jwks) - 1, err, sizeof(err), NULL, NULL)))
        abort();
    return ks;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pc_jws_t out;
    pc_jws_rc_e rc = pc_jws_verify((const char *)data, size, keys(), (1u << PC_JWS_COUNT) - 1, &out);
    FZ_ASSERT(rc >= PC_JWS_OK && rc <= PC_JWS_INTERNAL);
    FZ_ASSERT(rc != PC_JWS_OK || json_is_object(out.payload));
    FZ_ASSERT(size <= PC_JWT_MAX_LEN || rc == PC_JWS_TOO_LARGE);
    FZ_ASSERT(memchr(data, '.', size) || rc == PC_JWS_MALFORMED || rc == PC_JWS_TOO_LARGE);
    FZ_ASSERT(rc == PC_JWS_OK || out.why != NULL);
    pc_jws_clear(&out);

    /* base64url both ways on the raw bytes */
    char *enc = malloc((size + 2) / 3 * 4 + 1);
    size_t el = pc_b64url_encode(data, size, enc);
    unsigned char *dec = malloc(pc_b64url_max(el));
    long dl = pc_b64url_decode(enc, el, dec);
    FZ_ASSERT(dl == (long)size && memcmp(dec, data, size) == 0);
    free(dec);
    /* and the input itself as base64url text, into a buffer of the bound */
    dec = malloc(pc_b64url_max(size) ? pc_b64url_max(size) : 1);
    dl = pc_b64url_decode((const char *)data, size, dec);
    FZ_ASSERT(dl < 0 || (size_t)dl <= pc_b64url_max(size));
    if (dl >= 0) { /* canonical: re-encoding gives the input back */
        char *re = malloc((size_t)dl / 3 * 4 + 4);
        FZ_ASSERT(pc_b64url_encode(dec, (size_t)dl, re) == size && memcmp(re, data, size) == 0);
        free(re);
    }
    free(dec);
    free(enc);
    return 0;
}
