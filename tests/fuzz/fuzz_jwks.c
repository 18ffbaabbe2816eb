/*
 * fuzz_jwks.c — libFuzzer target for JWKS parsing (pc_jwks_parse): JSON,
 * every key type, base64url members, OpenSSL key construction. Each input
 * is parsed twice, without and with a warning callback.
 *
 * Invariants (abort on violation):
 *  - a key set has 1..PC_JWKS_MAX_KEYS keys, each usable for at least one
 *    algorithm, with an OpenSSL key or a secret (never both, never none);
 *  - HMAC keys allow only HS*, others never HS*; a key's own "alg" narrows
 *    it to exactly that algorithm; EC keys carry their order and size;
 *  - warnings are NUL-terminated and under 200 bytes; every key of the
 *    "keys" array is either in the set or named by exactly one warning;
 *  - asking for warnings changes nothing else; a failure always says why.
 */
#include <string.h>

#include "fuzz_common.h"
#include "jose.h"

static void warn(void *arg, const char *msg)
{
    FZ_ASSERT(msg);
    FZ_ASSERT(strnlen(msg, 200) < 200); /* a NUL within the first 200 bytes */
    ++*(size_t *)arg;
}

static void check_set(const pc_keyset_t *ks, json_t *keys)
{
    FZ_ASSERT(ks->refs == 1);
    FZ_ASSERT(ks->n >= 1 && ks->n <= PC_JWKS_MAX_KEYS);
    for (size_t i = 0; i < ks->n; i++) {
        const pc_jwk_t *k = &ks->keys[i];
        FZ_ASSERT(k->algs != 0 && (k->algs >> PC_JWS_COUNT) == 0);
        FZ_ASSERT(!!k->pkey != !!k->secret);
        if (k->secret) {
            FZ_ASSERT((k->algs & ~PC_JWS_HMAC_ALGS) == 0);
            FZ_ASSERT(k->secret_len >= 32);
        } else {
            FZ_ASSERT((k->algs & PC_JWS_HMAC_ALGS) == 0);
        }
        const uint32_t ec =
            PC_JWS_BIT(PC_JWS_ES256) | PC_JWS_BIT(PC_JWS_ES384) | PC_JWS_BIT(PC_JWS_ES512);
        if (k->algs & ec)
            FZ_ASSERT(k->order && (k->ec_size == 32 || k->ec_size == 48 || k->ec_size == 66));
        else
            FZ_ASSERT(!k->order);
    }
    /* when every key was taken (so the indexes line up): a key with its own
     * "alg" allows exactly that one, and its kid is the document's */
    size_t n = json_array_size(keys);
    if (n == ks->n) {
        for (size_t i = 0; i < n; i++) {
            json_t *jk = json_array_get(keys, i);
            const char *a = json_string_value(json_object_get(jk, "alg"));
            const char *kid = json_string_value(json_object_get(jk, "kid"));
            if (a)
                FZ_ASSERT(ks->keys[i].algs == PC_JWS_BIT(pc_jws_alg_parse(pc_str_cstr(a))));
            FZ_ASSERT(!kid == !ks->keys[i].kid);
            FZ_ASSERT(!kid || strcmp(kid, ks->keys[i].kid) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    char err[256], err2[256];
    size_t nwarn = 0;

    err[0] = 0;
    pc_keyset_t *ks = pc_jwks_parse(json, size, err, sizeof(err), NULL, NULL);
    err2[0] = 0;
    pc_keyset_t *ks2 = pc_jwks_parse(json, size, err2, sizeof(err2), warn, &nwarn);

    /* the document as the parser should have seen it */
    json_t *doc = json_loadb(json, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *keys = json_object_get(doc, "keys");
    size_t n = json_array_size(keys);

    FZ_ASSERT(!ks == !ks2);
    if (!ks) {
        FZ_ASSERT(err[0] != 0 && strnlen(err, sizeof(err)) < sizeof(err));
        FZ_ASSERT(strcmp(err, err2) == 0);
        if (json_is_array(keys) && n <= PC_JWKS_MAX_KEYS)
            FZ_ASSERT(nwarn == n); /* every key skipped, each said why */
        else
            FZ_ASSERT(nwarn == 0);
    } else {
        FZ_ASSERT(json_is_array(keys) && n <= PC_JWKS_MAX_KEYS);
        FZ_ASSERT(ks->n + nwarn == n);
        check_set(ks, keys);
        check_set(ks2, keys);
        FZ_ASSERT(ks->n == ks2->n);
        for (size_t i = 0; i < ks->n; i++) {
            const pc_jwk_t *a = &ks->keys[i], *b = &ks2->keys[i];
            FZ_ASSERT(a->algs == b->algs && !a->kid == !b->kid);
            FZ_ASSERT(!a->kid || strcmp(a->kid, b->kid) == 0);
            FZ_ASSERT(a->secret_len == b->secret_len && a->ec_size == b->ec_size);
        }
        /* references: a second one keeps the set alive */
        pc_keyset_ref(ks);
        FZ_ASSERT(ks->refs == 2);
        pc_keyset_unref(ks);
        FZ_ASSERT(ks->refs == 1 && ks->n >= 1);
    }
    json_decref(doc);
    pc_keyset_unref(ks);
    pc_keyset_unref(ks2);
    return 0;
}
