/*
 * jose.h — JSON Web Keys and JSON Web Signatures (RFC 7515/7517/7518/8037),
 * verified with OpenSSL on keys parsed once.
 *
 * This is the hot-path verifier: a key set is parsed from JWKS JSON (or a
 * shared secret) into EVP_PKEYs once, and a token is checked against it
 * without parsing any key material. The key decides which algorithms may be
 * used with it (its type, its curve, its size, its own "alg"), the caller
 * decides which algorithms it accepts at all; the token's "alg" only selects
 * among what both allow. "none" is never an algorithm here.
 *
 * Strictness: base64url without padding and with zero unused bits; JSON
 * objects with duplicate names refused; any "crit" header refused (no
 * extension is understood); "jku", "x5u", "jwk" and "x5c" never consulted;
 * ECDSA signatures in JOSE r||s form of the exact length, with r and s in
 * [1, n-1]. Thread safety: a key set is immutable once built and may be used
 * by several threads at once; it is reference-counted.
 */
#ifndef PC_JOSE_H
#define PC_JOSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

#define PC_JWT_MAX_LEN   16384 /* longer tokens are refused unread */
#define PC_JWKS_MAX_KEYS 64

typedef enum {
    PC_JWS_FAM_RSA = 0, /* RSASSA-PKCS1-v1_5 */
    PC_JWS_FAM_PSS,     /* RSASSA-PSS, salt = hash length */
    PC_JWS_FAM_EC,      /* ECDSA, JOSE r||s */
    PC_JWS_FAM_OKP,     /* EdDSA (Ed25519) */
    PC_JWS_FAM_HMAC
} pc_jws_family_e;

/* X(id, name, family, digest, JOSE curve, OpenSSL group, size) in the order
 * bits are assigned. size: ES*, bytes of a coordinate (and of r, s); HS*,
 * the least secret length, the hash size (RFC 7518 §3.2). */
#define PC_JWS_ALGS(X)                                                    \
    X(RS256, "RS256", PC_JWS_FAM_RSA, "SHA256", NULL, NULL, 0)            \
    X(RS384, "RS384", PC_JWS_FAM_RSA, "SHA384", NULL, NULL, 0)            \
    X(RS512, "RS512", PC_JWS_FAM_RSA, "SHA512", NULL, NULL, 0)            \
    X(PS256, "PS256", PC_JWS_FAM_PSS, "SHA256", NULL, NULL, 0)            \
    X(PS384, "PS384", PC_JWS_FAM_PSS, "SHA384", NULL, NULL, 0)            \
    X(PS512, "PS512", PC_JWS_FAM_PSS, "SHA512", NULL, NULL, 0)            \
    X(ES256, "ES256", PC_JWS_FAM_EC, "SHA256", "P-256", "prime256v1", 32) \
    X(ES384, "ES384", PC_JWS_FAM_EC, "SHA384", "P-384", "secp384r1", 48)  \
    X(ES512, "ES512", PC_JWS_FAM_EC, "SHA512", "P-521", "secp521r1", 66)  \
    X(EDDSA, "EdDSA", PC_JWS_FAM_OKP, NULL, NULL, NULL, 0)                \
    X(HS256, "HS256", PC_JWS_FAM_HMAC, "SHA256", NULL, NULL, 32)          \
    X(HS384, "HS384", PC_JWS_FAM_HMAC, "SHA384", NULL, NULL, 48)          \
    X(HS512, "HS512", PC_JWS_FAM_HMAC, "SHA512", NULL, NULL, 64)

typedef enum {
#define X(id, name, fam, md, crv, group, size) PC_JWS_##id,
    PC_JWS_ALGS(X)
#undef X
        PC_JWS_COUNT
} pc_jws_alg_e;

/* What the verifier and `portcullis token` know of each algorithm. */
typedef struct pc_jws_alg_info_s {
    const char *name;
    pc_jws_family_e family;
    const char *md;    /* digest (and PSS's MGF1 digest); NULL for EdDSA */
    const char *crv;   /* ES*: the curve as JOSE names it */
    const char *group; /* ES*: ... and as OpenSSL does */
    size_t size;
} pc_jws_alg_info_t;

extern const pc_jws_alg_info_t pc_jws_algs[PC_JWS_COUNT];

#define PC_JWS_BIT(a) (1u << (a))
#define PC_JWS_HMAC_ALGS \
    (PC_JWS_BIT(PC_JWS_HS256) | PC_JWS_BIT(PC_JWS_HS384) | PC_JWS_BIT(PC_JWS_HS512))

/* The algorithm named exactly s, or -1. */
int pc_jws_alg_parse(pc_str_t s);
const char *pc_jws_alg_name(int alg);

typedef struct pc_jwk_s {
    char *kid;                /* NULL: the key has none */
    uint32_t algs;            /* PC_JWS_BIT()s this key may verify */
    struct evp_pkey_st *pkey; /* RSA, EC, Ed25519 */
    struct bignum_st *order;  /* EC: the group order (for the r, s range check) */
    size_t ec_size;           /* EC: bytes of r (and s) */
    unsigned char *secret;    /* oct */
    size_t secret_len;
} pc_jwk_t;

typedef struct pc_keyset_s {
    int refs; /* atomic */
    size_t n;
    pc_jwk_t keys[];
} pc_keyset_t;

/*
 * Parses a JWKS document ({"keys":[...]}) into a key set with one
 * reference. Keys that are not for signatures ("use" other than "sig"),
 * of a type or curve not supported, or malformed are skipped, each with a
 * line in warn (NULL: no warnings; warn_cb called per line). NULL (with err)
 * when the document is not a JWKS or has no usable key.
 */
pc_keyset_t *pc_jwks_parse(const char *json, size_t len, char *err, size_t errlen,
                           void (*warn_cb)(void *arg, const char *msg), void *warn_arg);

/* A key set of one shared secret (HS* by its length, RFC 7518 §3.2: at
 * least as many bytes as the hash). NULL (with err) when too short. */
pc_keyset_t *pc_keyset_secret(const void *secret, size_t len, char *err, size_t errlen);

void pc_keyset_ref(pc_keyset_t *ks);
void pc_keyset_unref(pc_keyset_t *ks);

/* Strict base64url: returns the decoded length, or -1. out must have
 * room for pc_b64url_max(n) bytes. */
static inline size_t pc_b64url_max(size_t n)
{
    return n / 4 * 3 + 3;
}
long pc_b64url_decode(const char *in, size_t n, unsigned char *out);
/* Encodes without padding; out needs (n + 2) / 3 * 4 bytes; returns length. */
size_t pc_b64url_encode(const unsigned char *in, size_t n, char *out);

typedef enum {
    PC_JWS_OK = 0,
    PC_JWS_MALFORMED, /* not a compact JWS, bad base64url or JSON, duplicate names */
    PC_JWS_TOO_LARGE,
    PC_JWS_ALG,       /* alg absent, unknown, "none", or not allowed */
    PC_JWS_CRIT,      /* a "crit" header */
    PC_JWS_NO_KEY,    /* no key with this kid (or none for this alg) */
    PC_JWS_SIGNATURE, /* the signature does not verify */
    PC_JWS_INTERNAL   /* out of memory */
} pc_jws_rc_e;

typedef struct pc_jws_s {
    json_t *header;  /* owned */
    json_t *payload; /* owned; an object */
    int alg;
    const char *kid; /* in header, or NULL */
    const char *why; /* static text for error_description when rc != OK */
} pc_jws_t;

/*
 * Verifies a compact JWS against ks, accepting only the algorithms in
 * allowed_algs. On PC_JWS_OK, out->payload is the verified claims object
 * (release with pc_jws_clear). On failure, out->why says why (static);
 * out->kid is set when the token named one (PC_JWS_NO_KEY: the caller may
 * want fresher keys).
 */
pc_jws_rc_e pc_jws_verify(const char *tok, size_t len, const pc_keyset_t *ks, uint32_t allowed_algs,
                          pc_jws_t *out);
void pc_jws_clear(pc_jws_t *j);

/* JSON parsing as used for tokens and key sets: one value, no duplicate
 * names, no NUL in strings (jansson's own nesting limit applies). NULL when
 * invalid. */
json_t *pc_json_strict(const char *s, size_t n);

#endif
