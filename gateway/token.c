/*
 * token.c — `portcullis token`: mints a signed JWT for development and tests.
 *
 * HS*, RS* and ES* tokens are signed by libjwt (a second implementation
 * next to the gateway's own verifier); libjwt 1.10 has no PS* or EdDSA, so
 * those are signed here with OpenSSL. Keys: a PEM private key, a private
 * JWK, or for HS* a file holding the secret (or an "oct" JWK).
 */
#include "token.h"

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "jose.h"

#define MAX_CLAIMS 64
#define KEY_MAX    (1 << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: portcullis token --key FILE --alg ALG [--kid ID] [--sub S] [--ttl 1h]\n"
            "                        [--claim NAME=VALUE]...\n"
            "  ALG: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 "
            "ES512 EdDSA\n"
            "  --key: a PEM private key or a private JWK; for HS*, a file holding the secret\n"
            "         (one final newline ignored) or an \"oct\" JWK\n"
            "  --claim: VALUE is JSON when it parses as JSON (7, true, [\"a\"]), else a string\n");
}

static int fail(const char *what)
{
    fprintf(stderr, "portcullis token: %s\n", what);
    return 1;
}

/* The whole file, NUL-terminated (n excludes the NUL). */
static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = f ? malloc(KEY_MAX + 1) : NULL;
    size_t got = buf ? fread(buf, 1, KEY_MAX + 1, f) : 0;
    if (f)
        fclose(f);
    if (!buf || got == 0 || got > KEY_MAX) {
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    *n = got;
    return buf;
}

static BIGNUM *jwk_bn(json_t *k, const char *name)
{
    const char *s = json_string_value(json_object_get(k, name));
    size_t n = s ? strlen(s) : 0;
    unsigned char *b = s ? malloc(pc_b64url_max(n) + 1) : NULL;
    long m = b ? pc_b64url_decode(s, n, b) : -1;
    BIGNUM *bn = m > 0 ? BN_bin2bn(b, (int)m, NULL) : NULL;
    free(b);
    return bn;
}

/* A private key from a JWK (RSA, EC, OKP); NULL when malformed. */
static EVP_PKEY *jwk_private(json_t *k)
{
    const char *kty = json_string_value(json_object_get(k, "kty"));
    const char *crv = json_string_value(json_object_get(k, "crv"));
    EVP_PKEY *pkey = NULL;
    if (kty && strcmp(kty, "OKP") == 0) {
        const char *d = json_string_value(json_object_get(k, "d"));
        unsigned char raw[64];
        if (crv && strcmp(crv, "Ed25519") == 0 && d && strlen(d) <= 64 &&
            pc_b64url_decode(d, strlen(d), raw) == 32)
            pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
        OPENSSL_cleanse(raw, sizeof(raw));
        return pkey;
    }
    static const char *const rsa_names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const rsa_params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    BIGNUM *bn[8] = {0};
    unsigned char pub[1 + 2 * 66]; /* the builder keeps a pointer to it until to_param */
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int ok = b != NULL;
    const char *type = NULL;
    if (ok && kty && strcmp(kty, "RSA") == 0) {
        type = "RSA";
        for (int i = 0; i < 8 && ok; i++)
            ok = (bn[i] = jwk_bn(k, rsa_names[i])) != NULL &&
                 OSSL_PARAM_BLD_push_BN(b, rsa_params[i], bn[i]);
    } else if (ok && kty && strcmp(kty, "EC") == 0) {
        type = "EC";
        const char *group = crv && strcmp(crv, "P-256") == 0   ? "prime256v1"
                            : crv && strcmp(crv, "P-384") == 0 ? "secp384r1"
                            : crv && strcmp(crv, "P-521") == 0 ? "secp521r1"
                                                               : NULL;
        size_t size = group ? (strcmp(crv, "P-521") == 0   ? 66
                               : strcmp(crv, "P-384") == 0 ? 48
                                                           : 32)
                            : 0;
        BIGNUM *x = jwk_bn(k, "x"), *y = jwk_bn(k, "y");
        pub[0] = 4;
        ok = group && x && y && (bn[0] = jwk_bn(k, "d")) != NULL &&
             BN_bn2binpad(x, pub + 1, (int)size) == (int)size &&
             BN_bn2binpad(y, pub + 1 + size, (int)size) == (int)size &&
             OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
             OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * size) &&
             OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn[0]);
        BN_free(x);
        BN_free(y);
    } else {
        ok = 0;
    }
    if (ok && (params = OSSL_PARAM_BLD_to_param(b)) != NULL &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) != NULL &&
        EVP_PKEY_fromdata_init(ctx) > 0)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    for (int i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    return pkey;
}

/* Does the key fit the algorithm? NULL, or why not. */
static const char *key_fits(EVP_PKEY *k, int alg)
{
    if (alg <= PC_JWS_PS512)
        return EVP_PKEY_is_a(k, "RSA") ? NULL : "RS* and PS* need an RSA key";
    if (alg == PC_JWS_EDDSA)
        return EVP_PKEY_is_a(k, "ED25519") ? NULL : "EdDSA needs an Ed25519 key";
    static const char *const groups[] = {"prime256v1", "secp384r1", "secp521r1"};
    char g[64] = "";
    size_t gl = 0;
    if (!EVP_PKEY_is_a(k, "EC") ||
        !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), &gl) ||
        strcmp(g, groups[alg - PC_JWS_ES256]) != 0)
        return "ES256, ES384 and ES512 need an EC key on P-256, P-384 and P-521";
    return NULL;
}

/* PS* and EdDSA, signed here: header.payload.signature. */
static char *sign_openssl(EVP_PKEY *k, int alg, const char *header, const char *payload)
{
    size_t hl = strlen(header), pl = strlen(payload);
    char *out = malloc((hl + pl + 2) / 3 * 4 + 16 + 2048);
    size_t n = pc_b64url_encode((const unsigned char *)header, hl, out);
    out[n++] = '.';
    n += pc_b64url_encode((const unsigned char *)payload, pl, out + n);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = alg == PC_JWS_EDDSA   ? NULL
                       : alg == PC_JWS_PS256 ? EVP_sha256()
                       : alg == PC_JWS_PS384 ? EVP_sha384()
                                             : EVP_sha512();
    unsigned char sig[1100];
    size_t sl = sizeof(sig);
    int ok = ctx && EVP_DigestSignInit(ctx, &pctx, md, NULL, k) == 1 &&
             (alg == PC_JWS_EDDSA ||
              (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0)) &&
             EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)out, n) == 1 &&
             sl <= sizeof(sig) && (sl + 2) / 3 * 4 < 2048 - 2;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        free(out);
        return NULL;
    }
    out[n++] = '.';
    n += pc_b64url_encode(sig, sl, out + n);
    out[n] = 0;
    return out;
}

/* HS*, RS*, ES* through libjwt. key: the secret, or a PEM private key. */
static char *sign_libjwt(int alg, const unsigned char *key, size_t keylen, const char *kid,
                         const char *payload)
{
    static const jwt_alg_t map[PC_JWS_COUNT] = {
        [PC_JWS_RS256] = JWT_ALG_RS256, [PC_JWS_RS384] = JWT_ALG_RS384,
        [PC_JWS_RS512] = JWT_ALG_RS512, [PC_JWS_ES256] = JWT_ALG_ES256,
        [PC_JWS_ES384] = JWT_ALG_ES384, [PC_JWS_ES512] = JWT_ALG_ES512,
        [PC_JWS_HS256] = JWT_ALG_HS256, [PC_JWS_HS384] = JWT_ALG_HS384,
        [PC_JWS_HS512] = JWT_ALG_HS512};
    jwt_t *j = NULL;
    char *tok = NULL;
    if (jwt_new(&j) == 0 && jwt_add_grants_json(j, payload) == 0 &&
        (!kid || jwt_add_header(j, "kid", kid) == 0) &&
        jwt_set_alg(j, map[alg], key, (int)keylen) == 0)
        tok = jwt_encode_str(j);
    jwt_free(j);
    return tok;
}

static char *pem_of(EVP_PKEY *k, size_t *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    long len;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (len = BIO_get_mem_data(b, &p)) > 0 && (out = malloc((size_t)len + 1)) != NULL) {
        memcpy(out, p, (size_t)len);
        out[len] = 0;
        *n = (size_t)len;
    }
    BIO_free(b);
    return out;
}

int pc_token_main(int argc, char **argv)
{
    const char *keyfile = NULL, *algname = NULL, *kid = NULL, *sub = NULL, *ttl = "1h";
    const char *claims[MAX_CLAIMS];
    size_t nclaims = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "portcullis token: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--key") == 0)
            keyfile = v;
        else if (strcmp(a, "--alg") == 0)
            algname = v;
        else if (strcmp(a, "--kid") == 0)
            kid = v;
        else if (strcmp(a, "--sub") == 0)
            sub = v;
        else if (strcmp(a, "--ttl") == 0)
            ttl = v;
        else if (strcmp(a, "--claim") == 0 && nclaims < MAX_CLAIMS && strchr(v, '=') && v[0] != '=')
            claims[nclaims++] = v;
        else {
            fprintf(stderr, "portcullis token: unknown or incomplete argument '%s %s'\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    int alg = algname ? pc_jws_alg_parse(pc_str_cstr(algname)) : -1;
    int64_t ttl_ms = 0;
    if (!keyfile || alg < 0 || pc_parse_duration(ttl, &ttl_ms) != 0 || ttl_ms < 1000) {
        fprintf(stderr, "portcullis token: %s\n",
                !keyfile  ? "--key FILE is required"
                : alg < 0 ? "--alg must be one of the algorithms below"
                          : "--ttl must be a duration of at least 1s (90s, 15m, 1h)");
        usage(stderr);
        return 2;
    }
    size_t keylen = 0;
    unsigned char *key = read_file(keyfile, &keylen);
    if (!key)
        return fail("cannot read the key file (or it is empty, or over 1 MiB)");

    /* the claims: iat, exp, sub, then each --claim (which may override) */
    json_t *payload = json_object();
    time_t now = time(NULL);
    json_object_set_new(payload, "iat", json_integer((json_int_t)now));
    json_object_set_new(payload, "exp", json_integer((json_int_t)now + ttl_ms / 1000));
    if (sub)
        json_object_set_new(payload, "sub", json_string(sub));
    for (size_t i = 0; i < nclaims; i++) {
        const char *eq = strchr(claims[i], '=');
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - claims[i]), claims[i]);
        json_t *v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        json_object_set_new(payload, name, v ? v : json_string(eq + 1));
    }
    char *pl = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);

    int rc = 1;
    char *tok = NULL, *pem = NULL;
    EVP_PKEY *pk = NULL;
    json_t *jwk = NULL;
    const unsigned char *p = key;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    if (*p == '{') {
        jwk = json_loadb((const char *)key, keylen, JSON_REJECT_DUPLICATES, NULL);
        if (!kid)
            kid = json_string_value(json_object_get(jwk, "kid"));
    }
    if (alg >= PC_JWS_HS256) {
        unsigned char *secret = key;
        size_t sl = keylen;
        if (jwk) {
            const char *k = json_string_value(json_object_get(jwk, "k"));
            const char *kty = json_string_value(json_object_get(jwk, "kty"));
            long m = k && kty && strcmp(kty, "oct") == 0 && strlen(k) <= 2 * KEY_MAX
                         ? pc_b64url_decode(k, strlen(k), key)
                         : -1; /* decodes in place: shorter than the text */
            sl = m > 0 ? (size_t)m : 0;
            if (!sl) {
                fprintf(stderr, "portcullis token: the JWK is not an \"oct\" key with \"k\"\n");
                goto out;
            }
        } else if (sl && secret[sl - 1] == '\n') {
            sl -= sl > 1 && secret[sl - 2] == '\r' ? 2 : 1;
        }
        static const size_t need[] = {32, 48, 64};
        if (sl < need[alg - PC_JWS_HS256]) {
            fprintf(stderr,
                    "portcullis token: %s needs a secret of at least %zu bytes (RFC 7518)\n",
                    pc_jws_alg_name(alg), need[alg - PC_JWS_HS256]);
            goto out;
        }
        tok = sign_libjwt(alg, secret, sl, kid, pl);
    } else {
        if (jwk) {
            pk = jwk_private(jwk);
        } else {
            BIO *b = BIO_new_mem_buf(key, (int)keylen);
            pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
            BIO_free(b);
        }
        const char *why = pk ? key_fits(pk, alg) : "the key file is not a private key (PEM or JWK)";
        if (why) {
            fprintf(stderr, "portcullis token: %s\n", why);
            goto out;
        }
        if ((alg >= PC_JWS_PS256 && alg <= PC_JWS_PS512) || alg == PC_JWS_EDDSA) {
            json_t *h = json_pack("{s:s,s:s}", "alg", pc_jws_alg_name(alg), "typ", "JWT");
            if (h && kid)
                json_object_set_new(h, "kid", json_string(kid));
            char *header = h ? json_dumps(h, JSON_COMPACT) : NULL;
            json_decref(h);
            tok = header ? sign_openssl(pk, alg, header, pl) : NULL;
            free(header);
        } else {
            size_t pn = 0;
            pem = pem_of(pk, &pn);
            tok = pem ? sign_libjwt(alg, (const unsigned char *)pem, pn, kid, pl) : NULL;
        }
    }
    if (!tok) {
        fprintf(stderr, "portcullis token: signing failed\n");
        goto out;
    }
    printf("%s\n", tok);
    rc = 0;
out:
    free(tok); /* libjwt 1.10's strings are malloc'ed */
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    EVP_PKEY_free(pk);
    json_decref(jwk);
    free(pl);
    OPENSSL_cleanse(key, keylen);
    free(key);
    return rc;
}
