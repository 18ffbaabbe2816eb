/*
 * test_jose.c — the JOSE layer's edges: strict base64url, key sets from
 * JWKS, algorithm pinning, and libjwt as an independent oracle (tokens it
 * mints must verify here; what libjwt wrongly accepts must not).
 */
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jose.h"
#include "test.h"

#define ALL_ALGS ((1u << PC_JWS_COUNT) - 1)

TEST(base64url_is_strict)
{
    unsigned char out[64];
    CHECK_EQ_INT(pc_b64url_decode("YWJj", 4, out), 3);
    CHECK(memcmp(out, "abc", 3) == 0);
    CHECK_EQ_INT(pc_b64url_decode("YWI", 3, out), 2);
    CHECK_EQ_INT(pc_b64url_decode("YQ", 2, out), 1);
    CHECK_EQ_INT(pc_b64url_decode("", 0, out), 0);
    CHECK_EQ_INT(pc_b64url_decode("YQ==", 4, out), -1); /* padding */
    CHECK_EQ_INT(pc_b64url_decode("YW+j", 4, out), -1); /* the other alphabet */
    CHECK_EQ_INT(pc_b64url_decode("YW/j", 4, out), -1);
    CHECK_EQ_INT(pc_b64url_decode("YWJjZ", 5, out), -1); /* 4n+1 characters */
    CHECK_EQ_INT(pc_b64url_decode("YR", 2, out), -1);    /* non-zero unused bits */
    CHECK_EQ_INT(pc_b64url_decode("YWM", 3, out), 2);
    CHECK_EQ_INT(pc_b64url_decode("YWN", 3, out), -1);
    CHECK_EQ_INT(pc_b64url_decode("Y\0Jj", 4, out), -1);
    CHECK_EQ_INT(pc_b64url_decode("-_-_", 4, out), 3);
    /* every length round-trips */
    unsigned char in[40];
    char enc[64];
    for (size_t n = 0; n < sizeof(in); n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)(i * 37 + n);
        size_t el = pc_b64url_encode(in, n, enc);
        CHECK_EQ_INT(pc_b64url_decode(enc, el, out), (long)n);
        CHECK(memcmp(in, out, n) == 0);
    }
}

TEST(algorithm_names)
{
    CHECK_EQ_INT(pc_jws_alg_parse(pc_str_cstr("ES256")), PC_JWS_ES256);
    CHECK_EQ_INT(pc_jws_alg_parse(pc_str_cstr("EdDSA")), PC_JWS_EDDSA);
    CHECK_EQ_INT(pc_jws_alg_parse(pc_str_cstr("none")), -1);
    CHECK_EQ_INT(pc_jws_alg_parse(pc_str_cstr("es256")), -1);
    CHECK_EQ_INT(pc_jws_alg_parse(pc_str_cstr("HS256 ")), -1);
    CHECK_EQ_STR(pc_jws_alg_name(PC_JWS_PS384), "PS384");
}

TEST(secrets_need_the_hash_size)
{
    char err[200];
    pc_keyset_t *ks = pc_keyset_secret("0123456789abcdef0123456789abcde", 31, err, sizeof(err));
    CHECK(ks == NULL);
    ks = pc_keyset_secret("0123456789abcdef0123456789abcdef0123456789abcdef", 48, err, sizeof(err));
    CHECK(ks && ks->keys[0].algs == (PC_JWS_BIT(PC_JWS_HS256) | PC_JWS_BIT(PC_JWS_HS384)));
    pc_keyset_unref(ks);
}

static int warnings;
static void count_warning(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
    warnings++;
}

TEST(jwks_keeps_only_usable_signature_keys)
{
    char err[200];
    const char *doc =
        "{\"keys\":["
        "{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
        "{\"kty\":\"oct\",\"kid\":\"b\",\"use\":\"enc\",\"k\":"
        "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
        "{\"kty\":\"oct\",\"kid\":\"c\",\"k\":\"c2hvcnQ\"},"
        "{\"kty\":\"oct\",\"kid\":\"d\",\"alg\":\"HS512\",\"k\":"
        "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
        "{\"kty\":\"oct\",\"kid\":\"e\",\"alg\":\"RS256\",\"k\":"
        "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
        "{\"kty\":\"EC\",\"kid\":\"f\",\"crv\":\"P-256K\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"XYZ\"},"
        "7]}";
    warnings = 0;
    pc_keyset_t *ks = pc_jwks_parse(doc, strlen(doc), err, sizeof(err), count_warning, NULL);
    CHECK(ks != NULL);
    CHECK_EQ_INT(ks ? ks->n : 0, 1);
    CHECK_EQ_STR(ks ? ks->keys[0].kid : NULL, "a");
    CHECK_EQ_INT(warnings, 7); /* enc, short, HS512 on 32 bytes, RS256 on oct, curve, kty, 7 */
    pc_keyset_unref(ks);
    CHECK(pc_jwks_parse("{\"keys\":{}}", 11, err, sizeof(err), NULL, NULL) == NULL);
    CHECK(strstr(err, "keys") != NULL);
    CHECK(pc_jwks_parse("{\"keys\":[],\"keys\":[]}", 21, err, sizeof(err), NULL, NULL) == NULL);
    CHECK(pc_jwks_parse("[", 1, err, sizeof(err), NULL, NULL) == NULL);
}

/* ---- libjwt as an oracle ---- */

static char *pem_of(EVP_PKEY *k, int private)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (private)
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PUBKEY(b, k);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)n + 1);
    memcpy(out, p, (size_t)n);
    out[n] = 0;
    BIO_free(b);
    return out;
}

static void b64_bn(EVP_PKEY *k, const char *param, char *out)
{
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(k, param, &bn);
    unsigned char buf[600];
    int n = BN_bn2bin(bn, buf);
    out[pc_b64url_encode(buf, (size_t)n, out)] = 0;
    BN_free(bn);
}

/* A JWKS with k's public key under kid. */
static pc_keyset_t *jwks_of(EVP_PKEY *k, const char *kid)
{
    char doc[2000], a[800], b[200], err[200];
    if (EVP_PKEY_is_a(k, "RSA")) {
        b64_bn(k, OSSL_PKEY_PARAM_RSA_N, a);
        b64_bn(k, OSSL_PKEY_PARAM_RSA_E, b);
        snprintf(doc, sizeof(doc),
                 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}]}", kid, a,
                 b);
    } else {
        unsigned char pt[133];
        size_t n = 0;
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n);
        a[pc_b64url_encode(pt + 1, 32, a)] = 0;
        b[pc_b64url_encode(pt + 33, 32, b)] = 0;
        snprintf(doc, sizeof(doc),
                 "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":"
                 "\"%s\"}]}",
                 kid, a, b);
    }
    return pc_jwks_parse(doc, strlen(doc), err, sizeof(err), NULL, NULL);
}

static char *libjwt_mint(jwt_alg_t alg, const unsigned char *key, size_t len, const char *kid)
{
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_add_grant(j, "sub", "oracle");
    jwt_add_grant_int(j, "exp", (long)time(NULL) + 60);
    if (kid)
        jwt_add_header(j, "kid", kid);
    jwt_set_alg(j, alg, key, (int)len);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

static int verify(const char *tok, const pc_keyset_t *ks, uint32_t algs)
{
    pc_jws_t out;
    pc_jws_rc_e rc = pc_jws_verify(tok, strlen(tok), ks, algs, &out);
    if (rc == PC_JWS_OK)
        CHECK_EQ_STR(json_string_value(json_object_get(out.payload, "sub")), "oracle");
    pc_jws_clear(&out);
    return rc;
}

TEST(tokens_minted_by_libjwt_verify)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *rsa_priv = pem_of(rsa, 1), *ec_priv = pem_of(ec, 1);
    pc_keyset_t *rks = jwks_of(rsa, "r"), *eks = jwks_of(ec, "e");
    CHECK(rks && eks);
    const char *secret = "0123456789abcdef0123456789abcdef";
    char err[200];
    pc_keyset_t *hks = pc_keyset_secret(secret, 32, err, sizeof(err));

    char *t = libjwt_mint(JWT_ALG_RS256, (unsigned char *)rsa_priv, strlen(rsa_priv), "r");
    CHECK_EQ_INT(verify(t, rks, ALL_ALGS), PC_JWS_OK);
    CHECK_EQ_INT(verify(t, rks, PC_JWS_BIT(PC_JWS_ES256)), PC_JWS_ALG); /* pinned */
    CHECK_EQ_INT(verify(t, eks, ALL_ALGS), PC_JWS_NO_KEY);
    t[strlen(t) - 2] ^= 1; /* one bit of the signature */
    CHECK(verify(t, rks, ALL_ALGS) != PC_JWS_OK);
    free(t);

    t = libjwt_mint(JWT_ALG_ES256, (unsigned char *)ec_priv, strlen(ec_priv), "e");
    CHECK_EQ_INT(verify(t, eks, ALL_ALGS), PC_JWS_OK);
    free(t);

    t = libjwt_mint(JWT_ALG_HS256, (const unsigned char *)secret, 32, NULL);
    CHECK_EQ_INT(verify(t, hks, ALL_ALGS), PC_JWS_OK);
    CHECK_EQ_INT(verify(t, hks, PC_JWS_BIT(PC_JWS_RS256)), PC_JWS_ALG);
    free(t);

    /* Key confusion: HS256 keyed with the RSA public key's PEM. libjwt's
     * jwt_decode takes the algorithm from the token and accepts it (why it
     * is not our verifier); here no RSA key ever verifies HS256. */
    char *rsa_pub = pem_of(rsa, 0);
    t = libjwt_mint(JWT_ALG_HS256, (unsigned char *)rsa_pub, strlen(rsa_pub), "r");
    jwt_t *j = NULL;
    CHECK_EQ_INT(jwt_decode(&j, t, (unsigned char *)rsa_pub, (int)strlen(rsa_pub)), 0);
    jwt_free(j);
    CHECK_EQ_INT(verify(t, rks, ALL_ALGS), PC_JWS_NO_KEY);
    free(t);

    free(rsa_pub);
    free(rsa_priv);
    free(ec_priv);
    pc_keyset_unref(rks);
    pc_keyset_unref(eks);
    pc_keyset_unref(hks);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

TEST_MAIN(RUN(base64url_is_strict); RUN(algorithm_names); RUN(secrets_need_the_hash_size);
          RUN(jwks_keeps_only_usable_signature_keys); RUN(tokens_minted_by_libjwt_verify))
