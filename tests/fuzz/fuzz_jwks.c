/*
 * fuzz_jwks.c — libFuzzer target for JWKS parsing (pc_jwks_parse): JSON,
 * every key type, base64url members, OpenSSL key construction.
 *
 * Invariants (abort on violation):
 *  - a key set has 1..PC_JWKS_MAX_KEYS keys, each usable for at least one
 *    algorithm, with an OpenSSL key or a secret (never both, never none);
 *  - HMAC keys allow only HS*; others never HS*;
 *  - warnings are NUL-terminated and short; a failure always says why.
 */
#include <string.h>

#include "fuzz_common.h"
#include "jose.h"

static void warn(void *arg, const char *msg)
{
    (void)arg;
    FZ_ASSERT(strlen(msg) < 200);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    err[0] = 0;
    pc_keyset_t *ks = pc_jwks_parse((const char *)data, size, err, sizeof(err), warn, NULL);
    if (!ks) {
        FZ_ASSERT(err[0] != 0);
        return 0;
    }
    FZ_ASSERT(ks->n >= 1 && ks->n <= PC_JWKS_MAX_KEYS);
    for (size_t i = 0; i < ks->n; i++) {
        const pc_jwk_t *k = &ks->keys[i];
        FZ_ASSERT(k->algs != 0);
        FZ_ASSERT(!!k->pkey != !!k->secret);
        FZ_ASSERT(k->secret ? (k->algs & ~PC_JWS_HMAC_ALGS) == 0 : (k->algs & PC_JWS_HMAC_ALGS) == 0);
    }
    pc_keyset_unref(ks);
    return 0;
}
