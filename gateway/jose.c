/*
 * jose.c — see jose.h.
 */
#include "jose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const pc_jws_alg_info_t pc_jws_algs[PC_JWS_COUNT] = {
#define X(id, name, fam, md, crv, group, size) {name, fam, md, crv, group, size},
    PC_JWS_ALGS(X)
#undef X
};

int pc_jws_alg_parse(pc_str_t s)
{
    for (int i = 0; i < PC_JWS_COUNT; i++)
        if (s.n == strlen(pc_jws_algs[i].name) && memcmp(s.p, pc_jws_algs[i].name, s.n) == 0)
            return i;
    return -1;
}

const char *pc_jws_alg_name(int alg)
{
    return alg >= 0 && alg < PC_JWS_COUNT ? pc_jws_algs[alg].name : "?";
}

/* ---- base64url ---- */

static signed char b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (signed char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (signed char)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (signed char)(c - '0' + 52);
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long pc_b64url_decode(const char *in, size_t n, unsigned char *out)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        signed char v = b64_val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* the unused low bits of the last character must be zero: one encoding
     * per value, so a signature cannot be altered without failing */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

size_t pc_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    return o;
}

json_t *pc_json_strict(const char *s, size_t n)
{
    return json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
}

/* ---- key sets ---- */

static pc_keyset_t *keyset_new(size_t n)
{
    pc_keyset_t *ks = calloc(1, sizeof(*ks) + n * sizeof(pc_jwk_t));
    if (ks)
        ks->refs = 1;
    return ks;
}

static void jwk_free(pc_jwk_t *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    BN_free(k->order);
    if (k->secret)
        OPENSSL_clear_free(k->secret, k->secret_len);
}

void pc_keyset_ref(pc_keyset_t *ks)
{
    __atomic_add_fetch(&ks->refs, 1, __ATOMIC_RELAXED);
}

void pc_keyset_unref(pc_keyset_t *ks)
{
    if (!ks || __atomic_sub_fetch(&ks->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < ks->n; i++)
        jwk_free(&ks->keys[i]);
    free(ks);
}

/* HS algorithms a secret of len bytes may use: at least the hash size. */
static uint32_t hmac_algs(size_t len)
{
    uint32_t algs = 0;
    for (int i = 0; i < PC_JWS_COUNT; i++)
        if (pc_jws_algs[i].family == PC_JWS_FAM_HMAC && len >= pc_jws_algs[i].size)
            algs |= PC_JWS_BIT(i);
    return algs;
}

pc_keyset_t *pc_keyset_secret(const void *secret, size_t len, char *err, size_t errlen)
{
    if (hmac_algs(len) == 0) {
        snprintf(err, errlen, "a secret of %zu bytes is too short: HS256 needs at least 32", len);
        return NULL;
    }
    pc_keyset_t *ks = keyset_new(1);
    unsigned char *copy = ks ? OPENSSL_malloc(len) : NULL;
    if (!copy) {
        free(ks);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(copy, secret, len);
    ks->n = 1;
    ks->keys[0].secret = copy;
    ks->keys[0].secret_len = len;
    ks->keys[0].algs = hmac_algs(len);
    return ks;
}

/* A base64url member of a JWK, decoded into a malloc'ed buffer. */
static unsigned char *member_b64(json_t *k, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(k, name));
    if (!s)
        return NULL;
    size_t n = strlen(s);
    unsigned char *out = malloc(pc_b64url_max(n) + 1);
    long m = out ? pc_b64url_decode(s, n, out) : -1;
    if (m <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)m;
    return out;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *b)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static const char *jwk_rsa(json_t *k, pc_jwk_t *out)
{
    size_t nl = 0, el = 0;
    unsigned char *n = member_b64(k, "n", &nl), *e = member_b64(k, "e", &el);
    const char *why = NULL;
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL,
           *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    if (!n || !e)
        why = "an RSA key needs base64url \"n\" and \"e\"";
    else if (!bn || !be || !b)
        why = "out of memory";
    else if (BN_num_bits(bn) < 2048)
        why = "an RSA modulus under 2048 bits is refused (RFC 7518 §3.3)";
    else if (BN_num_bits(bn) > 16384 || BN_num_bits(be) > 64 || !BN_is_odd(be) || BN_is_one(be))
        why = "an RSA key with an implausible modulus or exponent";
    else if (!OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) ||
             !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) ||
             !(out->pkey = pkey_fromdata("RSA", b)))
        why = "OpenSSL refused the RSA key";
    out->algs = PC_JWS_BIT(PC_JWS_RS256) | PC_JWS_BIT(PC_JWS_RS384) | PC_JWS_BIT(PC_JWS_RS512) |
                PC_JWS_BIT(PC_JWS_PS256) | PC_JWS_BIT(PC_JWS_PS384) | PC_JWS_BIT(PC_JWS_PS512);
    OSSL_PARAM_BLD_free(b);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return why;
}

static const char *jwk_ec(json_t *k, pc_jwk_t *out)
{
    const char *crv = json_string_value(json_object_get(k, "crv"));
    int alg = 0;
    while (alg < PC_JWS_COUNT &&
           !(pc_jws_algs[alg].crv && crv && strcmp(crv, pc_jws_algs[alg].crv) == 0))
        alg++;
    if (alg == PC_JWS_COUNT)
        return "an EC key needs \"crv\" P-256, P-384 or P-521";
    const pc_jws_alg_info_t *cv = &pc_jws_algs[alg];
    size_t xl = 0, yl = 0;
    unsigned char *x = member_b64(k, "x", &xl), *y = member_b64(k, "y", &yl);
    unsigned char pub[1 + 2 * 66];
    const char *why = NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EC_GROUP *g = NULL;
    EVP_PKEY_CTX *chk = NULL;
    if (!x || !y || xl != cv->size || yl != cv->size) {
        why = "an EC key needs base64url \"x\" and \"y\" of the curve's size";
        goto out;
    }
    pub[0] = 4; /* uncompressed point */
    memcpy(pub + 1, x, xl);
    memcpy(pub + 1 + xl, y, yl);
    if (!b || !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, cv->group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * xl) ||
        !(out->pkey = pkey_fromdata("EC", b))) {
        why = "the EC point is not on the curve";
        goto out;
    }
    /* an invalid-curve point must never be accepted */
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, out->pkey, NULL);
    if (!chk || EVP_PKEY_public_check(chk) != 1) {
        why = "the EC point is not on the curve";
        goto out;
    }
    g = EC_GROUP_new_by_curve_name(OBJ_sn2nid(cv->group));
    out->order = g ? BN_dup(EC_GROUP_get0_order(g)) : NULL;
    if (!out->order)
        why = "out of memory";
    out->ec_size = cv->size;
    out->algs = PC_JWS_BIT(alg);
out:
    EVP_PKEY_CTX_free(chk);
    EC_GROUP_free(g);
    OSSL_PARAM_BLD_free(b);
    free(x);
    free(y);
    return why;
}

static const char *jwk_okp(json_t *k, pc_jwk_t *out)
{
    const char *crv = json_string_value(json_object_get(k, "crv"));
    if (!crv || strcmp(crv, "Ed25519") != 0)
        return "an OKP key needs \"crv\" Ed25519";
    size_t xl = 0;
    unsigned char *x = member_b64(k, "x", &xl);
    const char *why = NULL;
    if (!x || xl != 32)
        why = "an Ed25519 key needs a base64url \"x\" of 32 bytes";
    else if (!(out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl)))
        why = "OpenSSL refused the Ed25519 key";
    out->algs = PC_JWS_BIT(PC_JWS_EDDSA);
    free(x);
    return why;
}

static const char *jwk_oct(json_t *k, pc_jwk_t *out)
{
    size_t len = 0;
    unsigned char *s = member_b64(k, "k", &len);
    if (!s)
        return "an oct key needs a base64url \"k\"";
    out->algs = hmac_algs(len);
    out->secret = OPENSSL_malloc(len);
    if (!out->secret || !out->algs) {
        OPENSSL_clear_free(s, len);
        return out->secret ? "an oct key under 32 bytes is refused (RFC 7518 §3.2)"
                           : "out of memory";
    }
    memcpy(out->secret, s, len);
    out->secret_len = len;
    OPENSSL_cleanse(s, len);
    free(s);
    return NULL;
}

/* One JWK into out; NULL, or why it is skipped. */
static const char *jwk_parse(json_t *k, pc_jwk_t *out)
{
    if (!json_is_object(k))
        return "not an object";
    const char *kty = json_string_value(json_object_get(k, "kty"));
    const char *use = json_string_value(json_object_get(k, "use"));
    json_t *alg = json_object_get(k, "alg"), *kid = json_object_get(k, "kid");
    if (!kty)
        return "no \"kty\"";
    if (json_object_get(k, "use") && (!use || strcmp(use, "sig") != 0))
        return "not a signature key (\"use\" is not \"sig\")";
    if (kid && !json_is_string(kid))
        return "\"kid\" is not a string";
    const char *why = strcmp(kty, "RSA") == 0   ? jwk_rsa(k, out)
                      : strcmp(kty, "EC") == 0  ? jwk_ec(k, out)
                      : strcmp(kty, "OKP") == 0 ? jwk_okp(k, out)
                      : strcmp(kty, "oct") == 0 ? jwk_oct(k, out)
                                                : "unsupported \"kty\"";
    if (why)
        return why;
    if (alg) {
        /* the key's own "alg" narrows it to that one algorithm */
        const char *a = json_string_value(alg);
        int id = a ? pc_jws_alg_parse(pc_str_cstr(a)) : -1;
        if (id < 0 || !(out->algs & PC_JWS_BIT(id)))
            return "its \"alg\" is unknown or does not fit the key";
        out->algs = PC_JWS_BIT(id);
    }
    if (kid && !(out->kid = strdup(json_string_value(kid))))
        return "out of memory";
    return NULL;
}

pc_keyset_t *pc_jwks_parse(const char *json, size_t len, char *err, size_t errlen,
                           void (*warn_cb)(void *arg, const char *msg), void *warn_arg)
{
    json_error_t je;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    pc_keyset_t *ks = NULL;
    if (!doc) {
        snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
        return NULL;
    }
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "not a JWKS: expected an object with a \"keys\" array");
        goto out;
    }
    size_t n = json_array_size(keys);
    if (n > PC_JWKS_MAX_KEYS) {
        snprintf(err, errlen, "%zu keys: at most %d are accepted", n, PC_JWKS_MAX_KEYS);
        goto out;
    }
    if (!(ks = keyset_new(n))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        pc_jwk_t *k = &ks->keys[ks->n];
        const char *why = jwk_parse(json_array_get(keys, i), k);
        if (!why) {
            ks->n++;
            continue;
        }
        if (warn_cb) {
            char msg[200];
            const char *kid = json_string_value(json_object_get(json_array_get(keys, i), "kid"));
            snprintf(msg, sizeof(msg), "key %zu%s%.64s%s skipped: %s", i, kid ? " (kid \"" : "",
                     kid ? kid : "", kid ? "\")" : "", why);
            warn_cb(warn_arg, msg);
        }
        jwk_free(k);
        memset(k, 0, sizeof(*k));
    }
    if (!ks->n) {
        snprintf(err, errlen, "no usable signature key");
        pc_keyset_unref(ks);
        ks = NULL;
    }
out:
    json_decref(doc);
    return ks;
}

/* ---- verification ---- */

/* The digests, fetched once: OpenSSL 3 otherwise looks each one up in its
 * provider tables on every EVP_DigestVerifyInit (a measurable share of a
 * verification). */
static EVP_MD *mds[PC_JWS_COUNT];

static void fetch_mds(void)
{
    for (int i = 0; i < PC_JWS_COUNT; i++)
        if (pc_jws_algs[i].md)
            mds[i] = EVP_MD_fetch(NULL, pc_jws_algs[i].md, NULL);
}

static const EVP_MD *alg_md(int alg)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fetch_mds);
    return mds[alg]; /* NULL for EdDSA: no pre-hash */
}

static int verify_hmac(const pc_jwk_t *k, int alg, const char *data, size_t n,
                       const unsigned char *sig, size_t sl)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (!HMAC(alg_md(alg), k->secret, (int)k->secret_len, (const unsigned char *)data, n, mac, &ml))
        return -1;
    return ml == sl && CRYPTO_memcmp(mac, sig, ml) == 0 ? 1 : 0;
}

/* JOSE r||s into DER, refusing r or s outside [1, n-1]. */
static int ecdsa_der(const pc_jwk_t *k, const unsigned char *sig, size_t sl, unsigned char *der,
                     size_t *derlen)
{
    if (sl != 2 * k->ec_size)
        return 0;
    BIGNUM *r = BN_bin2bn(sig, (int)k->ec_size, NULL);
    BIGNUM *s = BN_bin2bn(sig + k->ec_size, (int)k->ec_size, NULL);
    ECDSA_SIG *es = ECDSA_SIG_new();
    int ok = 0;
    if (r && s && es && !BN_is_zero(r) && !BN_is_zero(s) && BN_cmp(r, k->order) < 0 &&
        BN_cmp(s, k->order) < 0 && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es */
        unsigned char *p = der;
        int len = i2d_ECDSA_SIG(es, &p);
        if (len > 0) {
            *derlen = (size_t)len;
            ok = 1;
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

static int verify_pkey(const pc_jwk_t *k, int alg, const char *data, size_t n,
                       const unsigned char *sig, size_t sl)
{
    unsigned char der[160]; /* a P-521 DER signature is at most 139 bytes */
    if (pc_jws_algs[alg].family == PC_JWS_FAM_EC) {
        if (!ecdsa_der(k, sig, sl, der, &sl))
            return 0;
        sig = der;
    } else if (alg == PC_JWS_EDDSA && sl != 64) {
        return 0;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = -1;
    if (ctx && EVP_DigestVerifyInit(ctx, &pctx, alg_md(alg), NULL, k->pkey) == 1) {
        if (pc_jws_algs[alg].family == PC_JWS_FAM_PSS &&
            (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
            goto out;
        rc = EVP_DigestVerify(ctx, sig, sl, (const unsigned char *)data, n) == 1 ? 1 : 0;
    }
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* Decodes one base64url part into a JSON object. */
static json_t *part_json(const char *p, size_t n)
{
    unsigned char stackbuf[2048];
    unsigned char *buf = pc_b64url_max(n) <= sizeof(stackbuf) ? stackbuf : malloc(pc_b64url_max(n));
    long m = buf ? pc_b64url_decode(p, n, buf) : -1;
    json_t *j = m > 0 ? pc_json_strict((const char *)buf, (size_t)m) : NULL;
    if (buf != stackbuf)
        free(buf);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static pc_jws_rc_e fail(pc_jws_t *out, pc_jws_rc_e rc, const char *why)
{
    out->why = why;
    return rc;
}

pc_jws_rc_e pc_jws_verify(const char *tok, size_t len, const pc_keyset_t *ks, uint32_t allowed_algs,
                          pc_jws_t *out)
{
    memset(out, 0, sizeof(*out));
    out->alg = -1;
    if (len > PC_JWT_MAX_LEN)
        return fail(out, PC_JWS_TOO_LARGE, "token too large");
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) || d1 == tok || d2 == d1 + 1)
        return fail(out, PC_JWS_MALFORMED, "not a compact JWS");
    if (!(out->header = part_json(tok, (size_t)(d1 - tok))))
        return fail(out, PC_JWS_MALFORMED, "malformed header");
    json_t *alg = json_object_get(out->header, "alg");
    const char *an = json_string_value(alg);
    if (!an)
        return fail(out, PC_JWS_ALG, "no algorithm");
    out->alg = pc_jws_alg_parse(pc_str_cstr(an));
    if (out->alg < 0 || !(allowed_algs & PC_JWS_BIT(out->alg)))
        return fail(out, PC_JWS_ALG,
                    strcasecmp(an, "none") == 0 ? "alg none is never accepted"
                                                : "algorithm not allowed");
    if (json_object_get(out->header, "crit"))
        return fail(out, PC_JWS_CRIT, "unsupported critical header");
    json_t *kid = json_object_get(out->header, "kid");
    if (kid && !json_is_string(kid))
        return fail(out, PC_JWS_MALFORMED, "kid is not a string");
    out->kid = json_string_value(kid);

    const char *sp = d2 + 1;
    size_t sn = len - (size_t)(sp - tok);
    unsigned char sig[1100]; /* an RSA-8192 signature is 1024 bytes */
    long sl = sn && pc_b64url_max(sn) <= sizeof(sig) ? pc_b64url_decode(sp, sn, sig) : -1;
    if (sl <= 0)
        return fail(out, PC_JWS_MALFORMED, "malformed signature");
    size_t signed_len = (size_t)(d2 - tok);
    int tried = 0;
    for (size_t i = 0; ks && i < ks->n; i++) {
        const pc_jwk_t *k = &ks->keys[i];
        if (!(k->algs & PC_JWS_BIT(out->alg)))
            continue;
        if (out->kid ? !k->kid || strcmp(k->kid, out->kid) != 0 : 0)
            continue;
        tried = 1;
        int ok = k->secret ? verify_hmac(k, out->alg, tok, signed_len, sig, (size_t)sl)
                           : verify_pkey(k, out->alg, tok, signed_len, sig, (size_t)sl);
        if (ok < 0)
            return fail(out, PC_JWS_INTERNAL, "verification failed");
        if (ok) {
            if (!(out->payload = part_json(d1 + 1, (size_t)(d2 - d1 - 1))))
                return fail(out, PC_JWS_MALFORMED, "malformed claims");
            return PC_JWS_OK;
        }
    }
    return tried ? fail(out, PC_JWS_SIGNATURE, "bad signature")
                 : fail(out, PC_JWS_NO_KEY,
                        out->kid ? "unknown key id" : "no key for this algorithm");
}

void pc_jws_clear(pc_jws_t *j)
{
    json_decref(j->header);
    json_decref(j->payload);
    memset(j, 0, sizeof(*j));
}
