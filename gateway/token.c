/*
 * token.c — `portcullis token`: mints a signed JWT for development and tests.
 *
 * HS*, RS* and ES* tokens are signed by libjwt (a second implementation
 * next to the gateway's own verifier); libjwt 1.10 has no PS* or EdDSA, so
 * those are signed here with OpenSSL. libjwt 1.10 already writes ECDSA
 * signatures in the JOSE form (r || s, each left-padded to the curve size),
 * not DER; the e2e tests check that on every curve.
 *
 * Keys: a PEM private key or a private JWK ({"kty":"RSA"|"EC"|"OKP"...});
 * for HS*, the file holding the secret or an "oct" JWK. A file whose first
 * non-space byte is '{' is a JWK. The key is checked against the algorithm
 * before anything is signed.
 *
 * Ownership: everything is freed before pc_token_main returns; the key
 * file's bytes, a decoded secret and a PEM made from a JWK are wiped first.
 */
#include "token.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "jose.h"

#define KEY_MAX     (1 << 20) /* bytes of a key file */
#define ERR_MAX     256
#define WHY_MAX     160  /* a reason, which the caller prefixes with the file name */
#define RSA_MIN_BIT 2048 /* the gateway refuses smaller moduli (RFC 7518 §3.3) */

/* The algorithms, as the verifier knows them (jose.h): how each is signed
 * and which key fits it. */
typedef pc_jws_alg_info_t tok_alg_t;

/* libjwt 1.10 signs HS*, RS* and ES*; PS* and EdDSA (JWT_ALG_NONE here)
 * are signed with OpenSSL. */
static jwt_alg_t libjwt_alg(const tok_alg_t *a)
{
    static const jwt_alg_t ids[PC_JWS_COUNT] = {
        [PC_JWS_HS256] = JWT_ALG_HS256, [PC_JWS_HS384] = JWT_ALG_HS384,
        [PC_JWS_HS512] = JWT_ALG_HS512, [PC_JWS_RS256] = JWT_ALG_RS256,
        [PC_JWS_RS384] = JWT_ALG_RS384, [PC_JWS_RS512] = JWT_ALG_RS512,
        [PC_JWS_ES256] = JWT_ALG_ES256, [PC_JWS_ES384] = JWT_ALG_ES384,
        [PC_JWS_ES512] = JWT_ALG_ES512};
    return ids[a - pc_jws_algs];
}

/* The command line, as given (every string borrowed from argv). */
typedef struct tok_opts_s {
    const char *key;
    const tok_alg_t *alg;
    const char *kid; /* NULL: the JWK's, if any */
    const char *sub;
    int64_t ttl_s;
    const char **claims; /* "NAME=VALUE", owned array */
    size_t nclaims;
} tok_opts_t;

/* A key file's contents: an HMAC secret or a private key. */
typedef struct tok_key_s {
    unsigned char *secret; /* HS*: owned, wiped when freed */
    size_t secret_len;
    EVP_PKEY *pkey; /* the others */
    json_t *jwk;    /* the file was a JWK; kid points into it */
    const char *kid;
} tok_key_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: portcullis token --key FILE --alg ALG [--kid ID] [--sub S] [--ttl 1h]\n"
               "                        [--claim NAME=VALUE]...\n"
               "  ALG: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 "
               "ES512 EdDSA\n"
               "  --key: a PEM private key or a private JWK; for HS*, a file holding the secret\n"
               "         (one final newline ignored) or an \"oct\" JWK\n"
               "  --ttl: exp = now + TTL (90s, 15m, 1h, 2d)\n"
               "  --claim: VALUE is JSON when it parses as JSON (7, true, [\"a\"], \"7\"),\n"
               "           else a string; it may override iat, exp and sub\n");
}

static int usage_error(const char *msg, const char *arg)
{
    if (arg)
        fprintf(stderr, "portcullis token: %s '%s'\n", msg, arg);
    else
        fprintf(stderr, "portcullis token: %s\n", msg);
    usage(stderr);
    return 2;
}

/* JSON strings are UTF-8: jansson refuses anything else. */
static int is_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

static const tok_alg_t *alg_find(const char *name)
{
    int i = pc_jws_alg_parse(pc_str_cstr(name));
    return i < 0 ? NULL : &pc_jws_algs[i];
}

/*
 * Fills o from argv (argv[0] is "token"). Returns 0, 1 when help was
 * printed, or 2 after a usage error was printed. o->claims is allocated
 * even on failure.
 */
static int parse_args(int argc, char **argv, tok_opts_t *o)
{
    const char *ttl = "1h";
    o->claims = calloc((size_t)argc, sizeof(*o->claims));
    if (!o->claims)
        return usage_error("out of memory", NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        size_t an = strlen(a);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0) {
            return usage_error("unknown argument", a);
        } else if (eq) { /* --name=value */
            an = (size_t)(eq - a);
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            return usage_error("incomplete argument", a);
        }
#define IS(name) (an == sizeof(name) - 1 && memcmp(a, name, an) == 0)
        if ((IS("--kid") || IS("--sub") || IS("--claim")) && !is_utf8(v))
            return usage_error("not UTF-8: the value of", a);
        if (IS("--key")) {
            o->key = v;
        } else if (IS("--alg")) {
            if (!(o->alg = alg_find(v)))
                return usage_error("unknown algorithm", v);
        } else if (IS("--kid")) {
            o->kid = v;
        } else if (IS("--sub")) {
            o->sub = v;
        } else if (IS("--ttl")) {
            ttl = v;
        } else if (IS("--claim")) {
            if (v[0] == '=' || !strchr(v, '='))
                return usage_error("--claim wants NAME=VALUE, not", v);
            o->claims[o->nclaims++] = v;
        } else {
            return usage_error("unknown argument", a);
        }
#undef IS
    }
    int64_t ms = 0;
    if (!o->key)
        return usage_error("--key FILE is required", NULL);
    if (!o->alg)
        return usage_error("--alg ALG is required", NULL);
    if (pc_parse_duration(ttl, &ms) != 0 || ms < 1000)
        return usage_error("--ttl wants a duration of at least 1s (90s, 15m, 1h, 2d), not", ttl);
    o->ttl_s = ms / 1000;
    return 0;
}

/* The claims as compact JSON (malloc'ed), or NULL when out of memory. */
static char *payload_json(const tok_opts_t *o)
{
    json_t *c = json_object();
    char *out = NULL;
    int ok = c != NULL;
    json_int_t now = (json_int_t)time(NULL);
    ok = ok && json_object_set_new(c, "iat", json_integer(now)) == 0 &&
         json_object_set_new(c, "exp", json_integer(now + o->ttl_s)) == 0 &&
         (!o->sub || json_object_set_new(c, "sub", json_string(o->sub)) == 0);
    for (size_t i = 0; ok && i < o->nclaims; i++) {
        const char *eq = strchr(o->claims[i], '=');
        size_t nl = (size_t)(eq - o->claims[i]);
        json_t *v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!v)
            v = json_string(eq + 1);
        /* the name: the bytes before the first '=' */
        ok = v && json_object_setn_new(c, o->claims[i], nl, v) == 0;
    }
    if (ok)
        out = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return out;
}

/* The whole file (n excludes the NUL added after it); NULL with err. */
static unsigned char *read_file(const char *path, size_t *n, char *err)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t got = 0;
    if (!f) {
        snprintf(err, ERR_MAX, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!(buf = malloc(KEY_MAX + 1))) {
        snprintf(err, ERR_MAX, "out of memory");
    } else {
        got = fread(buf, 1, KEY_MAX + 1, f);
        if (ferror(f))
            snprintf(err, ERR_MAX, "%s: cannot read: %s", path, strerror(errno));
        else if (got == 0)
            snprintf(err, ERR_MAX, "%s: the key file is empty", path);
        else if (got > KEY_MAX)
            snprintf(err, ERR_MAX, "%s: the key file is over 1 MiB", path);
    }
    fclose(f);
    if (err[0]) {
        if (buf)
            OPENSSL_cleanse(buf, got);
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    *n = got;
    return buf;
}

/* A JWK member decoded from base64url into out (at most cap bytes); the
 * length, or -1 when absent, malformed or too long. */
static long jwk_bytes(json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    size_t n = s ? strlen(s) : 0;
    if (!s || pc_b64url_max(n) > cap)
        return -1;
    return pc_b64url_decode(s, n, out);
}

/* A JWK member as a big number (at most 1024 bytes: an RSA-8192 modulus). */
static BIGNUM *jwk_bn(json_t *jwk, const char *name)
{
    unsigned char b[1024 + 3];
    long m = jwk_bytes(jwk, name, b, sizeof(b));
    BIGNUM *bn = m > 0 ? BN_bin2bn(b, (int)m, NULL) : NULL;
    OPENSSL_cleanse(b, sizeof(b));
    return bn;
}

static EVP_PKEY *jwk_okp(json_t *jwk, char *why)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char d[35], x[35], pub[32];
    size_t pl = sizeof(pub);
    EVP_PKEY *pkey = NULL;
    if (!crv || strcmp(crv, "Ed25519") != 0)
        snprintf(why, WHY_MAX, "an OKP JWK must have \"crv\": \"Ed25519\"");
    else if (jwk_bytes(jwk, "d", d, sizeof(d)) != 32 || jwk_bytes(jwk, "x", x, sizeof(x)) != 32)
        snprintf(why, WHY_MAX, "an Ed25519 JWK needs \"x\" and \"d\" of 32 bytes each");
    else if (!(pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, 32)) ||
             EVP_PKEY_get_raw_public_key(pkey, pub, &pl) != 1 || pl != 32 ||
             memcmp(pub, x, 32) != 0)
        snprintf(why, WHY_MAX, "the Ed25519 JWK's \"x\" is not the public half of its \"d\"");
    OPENSSL_cleanse(d, sizeof(d));
    if (why[0]) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/* 1 when what the key signs its public half verifies. A JWK whose public
 * members do not match its private ones would mint tokens that the key it
 * publishes cannot verify. */
static int pair_matches(EVP_PKEY *k)
{
    static const unsigned char msg[] = "portcullis token: key pair check";
    unsigned char sig[1100];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
             EVP_DigestSign(ctx, sig, &sl, msg, sizeof(msg)) == 1 && EVP_MD_CTX_reset(ctx) == 1 &&
             EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
             EVP_DigestVerify(ctx, sig, sl, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* RSA (n, e, d, p, q, dp, dq, qi) and EC (crv, x, y, d):
 * the members go through an OpenSSL parameter builder. */
static EVP_PKEY *jwk_rsa_ec(json_t *jwk, int is_rsa, char *why)
{
    static const char *const rsa_names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const rsa_params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    BIGNUM *bn[8] = {0};
    /* the point 04 || x || y; the builder keeps a pointer to it until to_param */
    unsigned char pub[1 + 2 * 66], x[66 + 3], y[66 + 3];
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (!b) {
        snprintf(why, WHY_MAX, "out of memory");
    } else if (is_rsa) {
        int n = 0;
        while (n < 8 && (bn[n] = jwk_bn(jwk, rsa_names[n])) != NULL)
            n++;
        /* all eight: OpenSSL cannot write a PEM (for libjwt) without the factors */
        if (n != 8)
            snprintf(why, WHY_MAX,
                     "an RSA JWK needs n, e, d, p, q, dp, dq and qi; \"%s\" is missing or "
                     "malformed",
                     rsa_names[n]);
        for (int i = 0; i < n && !why[0]; i++)
            if (!OSSL_PARAM_BLD_push_BN(b, rsa_params[i], bn[i]))
                snprintf(why, WHY_MAX, "out of memory");
    } else {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        const tok_alg_t *a = NULL;
        for (int i = 0; i < PC_JWS_COUNT && crv; i++)
            if (pc_jws_algs[i].crv && strcmp(pc_jws_algs[i].crv, crv) == 0)
                a = &pc_jws_algs[i];
        size_t size = a ? a->size : 0;
        if (!a)
            snprintf(why, WHY_MAX, "an EC JWK's \"crv\" must be P-256, P-384 or P-521");
        else if (jwk_bytes(jwk, "x", x, sizeof(x)) != (long)size ||
                 jwk_bytes(jwk, "y", y, sizeof(y)) != (long)size || !(bn[0] = jwk_bn(jwk, "d")))
            snprintf(why, WHY_MAX, "an EC JWK on %s needs \"x\" and \"y\" of %zu bytes and \"d\"",
                     crv, size);
        if (!why[0]) {
            pub[0] = 4;
            memcpy(pub + 1, x, size);
            memcpy(pub + 1 + size, y, size);
            if (!OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, a->group, 0) ||
                !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * size) ||
                !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn[0]))
                snprintf(why, WHY_MAX, "out of memory");
        }
    }
    if (!why[0] && (!(params = OSSL_PARAM_BLD_to_param(b)) ||
                    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, is_rsa ? "RSA" : "EC", NULL)) ||
                    EVP_PKEY_fromdata_init(ctx) <= 0 ||
                    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0))
        snprintf(why, WHY_MAX, "the %s JWK is not a valid private key", is_rsa ? "RSA" : "EC");
    if (!why[0] && !pair_matches(pkey))
        snprintf(why, WHY_MAX, "the %s JWK's members do not form a consistent key pair",
                 is_rsa ? "RSA" : "EC");
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    for (int i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    if (why[0]) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/* PEM_read_bio_PrivateKey would otherwise ask for a passphrase on the
 * terminal: an encrypted key is simply refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return 0;
}

/* Does the key fit the algorithm? 0, or -1 with why. */
static int key_fits(EVP_PKEY *k, const tok_alg_t *a, char *why)
{
    char g[64] = "";
    size_t gl = 0;
    switch (a->family) {
    case PC_JWS_FAM_RSA:
    case PC_JWS_FAM_PSS:
        if (!EVP_PKEY_is_a(k, "RSA"))
            snprintf(why, WHY_MAX, "%s needs an RSA key", a->name);
        else if (EVP_PKEY_get_bits(k) < RSA_MIN_BIT)
            snprintf(why, WHY_MAX, "%s needs an RSA key of at least %d bits, not %d", a->name,
                     RSA_MIN_BIT, EVP_PKEY_get_bits(k));
        break;
    case PC_JWS_FAM_EC:
        if (!EVP_PKEY_is_a(k, "EC") ||
            !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), &gl) ||
            strcmp(g, a->group) != 0)
            snprintf(why, WHY_MAX, "%s needs an EC key on %s", a->name, a->crv);
        break;
    case PC_JWS_FAM_OKP:
        if (!EVP_PKEY_is_a(k, "ED25519"))
            snprintf(why, WHY_MAX, "EdDSA needs an Ed25519 key");
        break;
    case PC_JWS_FAM_HMAC:
        break;
    }
    return why[0] ? -1 : 0;
}

/*
 * Reads the key file into k for algorithm a: the secret for HS*, a private
 * key that fits a otherwise. 0, or -1 with err.
 */
static int load_key(const char *path, const tok_alg_t *a, tok_key_t *k, char *err)
{
    char why[WHY_MAX] = "";
    size_t n = 0;
    unsigned char *buf = read_file(path, &n, err);
    const unsigned char *p = buf;
    if (!buf)
        return -1;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p == '{') {
        json_error_t je;
        const char *kty, *jalg;
        k->jwk = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
        kty = json_string_value(json_object_get(k->jwk, "kty"));
        jalg = json_string_value(json_object_get(k->jwk, "alg"));
        k->kid = json_string_value(json_object_get(k->jwk, "kid"));
        if (!k->jwk)
            /* not je.text: it quotes the file, which may be a secret */
            snprintf(err, ERR_MAX, "%s: not a JWK: invalid JSON at line %d, column %d", path,
                     je.line, je.column);
        else if (!json_is_object(k->jwk) || !kty)
            snprintf(err, ERR_MAX, "%s: not a JWK (an object with \"kty\")", path);
        else if (jalg && strcmp(jalg, a->name) != 0)
            snprintf(err, ERR_MAX, "%s: the JWK is for \"alg\": \"%.16s\", not %s", path, jalg,
                     a->name);
        else if ((a->family == PC_JWS_FAM_HMAC) != (strcmp(kty, "oct") == 0))
            snprintf(err, ERR_MAX, "%s: %s needs %s, not a \"%.8s\" JWK", path, a->name,
                     a->family == PC_JWS_FAM_HMAC ? "an \"oct\" JWK" : "a private key", kty);
        else if (a->family == PC_JWS_FAM_HMAC) {
            const char *ks = json_string_value(json_object_get(k->jwk, "k"));
            size_t kl = ks ? strlen(ks) : 0;
            long m = -1;
            if ((k->secret = malloc(pc_b64url_max(kl))) != NULL)
                m = jwk_bytes(k->jwk, "k", k->secret, pc_b64url_max(kl));
            if (m <= 0) {
                if (k->secret)
                    OPENSSL_cleanse(k->secret, pc_b64url_max(kl));
                free(k->secret);
                k->secret = NULL;
                snprintf(err, ERR_MAX, "%s: the \"oct\" JWK has no valid \"k\"", path);
            }
            k->secret_len = m > 0 ? (size_t)m : 0;
        } else if (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
            k->pkey = kty[0] == 'O' ? jwk_okp(k->jwk, why) : jwk_rsa_ec(k->jwk, kty[0] == 'R', why);
            if (!k->pkey)
                snprintf(err, ERR_MAX, "%s: %s", path, why);
        } else {
            snprintf(err, ERR_MAX, "%s: unsupported JWK \"kty\": \"%.8s\"", path, kty);
        }
    } else if (a->family == PC_JWS_FAM_HMAC) {
        /* the file's bytes, but for one final newline an editor may add */
        k->secret_len = n;
        if (n && buf[n - 1] == '\n')
            k->secret_len -= n > 1 && buf[n - 2] == '\r' ? 2 : 1;
        if ((k->secret = malloc(k->secret_len + 1)) != NULL)
            memcpy(k->secret, buf, k->secret_len);
        else
            snprintf(err, ERR_MAX, "out of memory");
    } else {
        BIO *bio = BIO_new_mem_buf(buf, (int)n);
        k->pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
        BIO_free(bio);
        if (!k->pkey)
            snprintf(err, ERR_MAX,
                     "%s: not an unencrypted private key (PEM: PKCS#8, RSA or EC) nor a JWK", path);
    }
    if (!err[0] && a->family == PC_JWS_FAM_HMAC && k->secret_len < a->size)
        snprintf(err, ERR_MAX, "%s: %s needs a secret of at least %zu bytes, not %zu", path,
                 a->name, a->size, k->secret_len);
    else if (!err[0] && a->family != PC_JWS_FAM_HMAC && key_fits(k->pkey, a, why) != 0)
        snprintf(err, ERR_MAX, "%s: %s", path, why);
    OPENSSL_cleanse(buf, n);
    free(buf);
    return err[0] ? -1 : 0;
}

static void key_free(tok_key_t *k)
{
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    EVP_PKEY_free(k->pkey);
    json_decref(k->jwk);
}

/* The private key as PKCS#8 PEM (malloc'ed, *n bytes), for libjwt. */
static char *pem_of(EVP_PKEY *k, size_t *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    long len = 0;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (len = BIO_get_mem_data(b, &p)) > 0 && (out = malloc((size_t)len + 1)) != NULL) {
        memcpy(out, p, (size_t)len);
        out[len] = 0;
        *n = (size_t)len;
    }
    if (p && len > 0)
        OPENSSL_cleanse(p, (size_t)len);
    BIO_free(b);
    return out;
}

/* HS*, RS*, ES* through libjwt (its header: alg, typ, and kid when given).
 * key: the secret, or a PEM private key. The token (malloc'ed) or NULL. */
static char *sign_libjwt(const tok_alg_t *a, const unsigned char *key, size_t keylen,
                         const char *kid, const char *payload)
{
    jwt_t *j = NULL;
    char *tok = NULL;
    if (keylen <= INT32_MAX && jwt_new(&j) == 0 && jwt_add_grants_json(j, payload) == 0 &&
        (!kid || jwt_add_header(j, "kid", kid) == 0) &&
        jwt_set_alg(j, libjwt_alg(a), key, (int)keylen) == 0)
        tok = jwt_encode_str(j);
    jwt_free(j);
    return tok;
}

/* PS* (RSA-PSS, MGF1 with the same digest, salt as long as the digest) and
 * EdDSA (Ed25519), signed with OpenSSL. The token (malloc'ed) or NULL. */
static char *sign_openssl(EVP_PKEY *k, const tok_alg_t *a, const char *kid, const char *payload)
{
    json_t *h = json_pack("{s:s,s:s}", "alg", a->name, "typ", "JWT");
    char *header = NULL, *out = NULL;
    unsigned char *sig = NULL;
    size_t sl = 0, n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = h && ctx && (!kid || json_object_set_new(h, "kid", json_string(kid)) == 0) &&
             (header = json_dumps(h, JSON_COMPACT)) != NULL;
    size_t hl = header ? strlen(header) : 0, pl = strlen(payload);
    size_t cap = (hl + 2) / 3 * 4 + 1 + (pl + 2) / 3 * 4 + 1 +
                 ((size_t)EVP_PKEY_get_size(k) + 2) / 3 * 4 + 1;
    ok = ok && (out = malloc(cap)) != NULL;
    if (ok) {
        n = pc_b64url_encode((const unsigned char *)header, hl, out);
        out[n++] = '.';
        n += pc_b64url_encode((const unsigned char *)payload, pl, out + n);
    }
    ok = ok && EVP_DigestSignInit_ex(ctx, &pctx, a->md, NULL, NULL, k, NULL) == 1 &&
         (a->family != PC_JWS_FAM_PSS ||
          (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->md, NULL) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0)) &&
         EVP_DigestSign(ctx, NULL, &sl, (const unsigned char *)out, n) == 1 &&
         sl <= (size_t)EVP_PKEY_get_size(k) && (sig = malloc(sl)) != NULL &&
         EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)out, n) == 1;
    if (ok) {
        out[n++] = '.';
        n += pc_b64url_encode(sig, sl, out + n);
        out[n] = 0;
    } else {
        free(out);
        out = NULL;
    }
    free(sig);
    free(header);
    json_decref(h);
    EVP_MD_CTX_free(ctx);
    return out;
}

int pc_token_main(int argc, char **argv)
{
    tok_opts_t o = {0};
    tok_key_t k = {0};
    char err[ERR_MAX] = "";
    char *payload = NULL, *tok = NULL, *pem = NULL;
    size_t pem_len = 0;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        rc = rc == 1 ? 0 : rc; /* --help */
        goto out;
    }
    rc = 1;
    if (load_key(o.key, o.alg, &k, err) != 0)
        goto out;
    if (!o.kid)
        o.kid = k.kid;
    if (!(payload = payload_json(&o))) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    if (o.alg->family == PC_JWS_FAM_HMAC)
        tok = sign_libjwt(o.alg, k.secret, k.secret_len, o.kid, payload);
    else if (libjwt_alg(o.alg) != JWT_ALG_NONE)
        tok = (pem = pem_of(k.pkey, &pem_len)) != NULL
                  ? sign_libjwt(o.alg, (const unsigned char *)pem, pem_len, o.kid, payload)
                  : NULL;
    else
        tok = sign_openssl(k.pkey, o.alg, o.kid, payload);
    if (!tok) {
        snprintf(err, sizeof(err), "signing with %s failed", o.alg->name);
        goto out;
    }
    printf("%s\n", tok);
    if (fflush(stdout) != 0) {
        snprintf(err, sizeof(err), "cannot write the token: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (err[0])
        fprintf(stderr, "portcullis token: %s\n", err);
    free(tok); /* libjwt 1.10's strings come from malloc */
    if (pem) {
        OPENSSL_cleanse(pem, pem_len);
        free(pem);
    }
    free(payload);
    key_free(&k);
    free(o.claims);
    return rc;
}
