/*
 * webhook_hmac.c — verifies GitHub-style webhook signatures.
 *
 * The sender signs the raw request body with HMAC-SHA256 under a shared
 * secret and sends "sha256=<64 hex digits>" in a header (X-Hub-Signature-256
 * by default). A request whose header is missing, repeated or malformed is
 * answered 401 before any body byte is read. The body is hashed as it
 * streams; when its last byte has arrived, a wrong signature is answered
 * 401 and the upstream request is aborted — the upstream has seen part of
 * the body but never a complete request.
 *
 * Config:
 *   secret  (required) the shared secret; use ${env:NAME} or ${file:PATH}
 *   header  the signature header, default X-Hub-Signature-256
 *
 * Counters (portcullis_plugin_events_total{plugin="webhook_hmac"}):
 * verified, missing_signature, malformed_signature, bad_signature.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <portcullis/plugin.h>

#define DIGEST_LEN 32
#define PREFIX     "sha256="

typedef struct {
    const portcullis_host_t *host;
    char *header;
    EVP_MAC *mac;
    EVP_MAC_CTX *keyed; /* initialised with the secret; duplicated per request */
    portcullis_counter_t *verified, *missing, *malformed, *bad;
} conf_t;

typedef struct {
    EVP_MAC_CTX *ctx;
    unsigned char want[DIGEST_LEN];
} state_t;

static void conf_free(conf_t *c)
{
    if (!c)
        return;
    EVP_MAC_CTX_free(c->keyed);
    EVP_MAC_free(c->mac);
    free(c->header);
    free(c);
}

static void fini(void *conf)
{
    conf_free(conf);
}

static int init(const portcullis_host_t *host, const portcullis_node_t *config, void **out,
                char *err, size_t errlen)
{
    const char *secret = host->node_str(host->node_get(config, "secret"));
    const char *header = host->node_str(host->node_get(config, "header"));
    for (size_t i = 0; i < host->node_len(config); i++) {
        const char *k = host->node_key(config, i);
        if (strcmp(k, "secret") != 0 && strcmp(k, "header") != 0) {
            snprintf(err, errlen, "unknown key '%s' (expected secret, header)", k);
            return -1;
        }
    }
    if (!secret || !*secret) {
        snprintf(err, errlen, "secret is required (a string; use ${env:NAME} or ${file:PATH})");
        return -1;
    }
    if (host->node_get(config, "header") && (!header || !portcullis_is_token(header))) {
        snprintf(err, errlen, "header must be a header name (a token, e.g. X-Hub-Signature-256)");
        return -1;
    }
    conf_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->host = host;
    c->header = strdup(header ? header : "X-Hub-Signature-256");
    c->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    c->keyed = c->mac ? EVP_MAC_CTX_new(c->mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!c->header || !c->keyed ||
        !EVP_MAC_init(c->keyed, (const unsigned char *)secret, strlen(secret), params)) {
        snprintf(err, errlen, "cannot set up HMAC-SHA256");
        conf_free(c);
        return -1;
    }
    c->verified = host->counter(host, "verified");
    c->missing = host->counter(host, "missing_signature");
    c->malformed = host->counter(host, "malformed_signature");
    c->bad = host->counter(host, "bad_signature");
    *out = c;
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "sha256=" and 64 hex digits into out; 0, or -1 when malformed. */
static int parse_signature(const char *v, size_t n, unsigned char *out)
{
    size_t pl = sizeof(PREFIX) - 1;
    if (n != pl + 2 * DIGEST_LEN || memcmp(v, PREFIX, pl) != 0)
        return -1;
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int hi = hexval(v[pl + 2 * i]), lo = hexval(v[pl + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static portcullis_rc_t unauthorized(portcullis_req_t *r, const conf_t *c, portcullis_counter_t *why,
                                    const char *error)
{
    c->host->count(why, 1);
    return c->host->respond(r, 401, error) == 0 ? PORTCULLIS_RESPOND : PORTCULLIS_ERROR;
}

static portcullis_rc_t on_headers(portcullis_req_t *r, const void *conf, void *state)
{
    const conf_t *c = conf;
    state_t *st = state;
    size_t n, n2;
    const char *v = c->host->request_header(r, c->header, 0, &n);
    if (!v)
        return unauthorized(r, c, c->missing, "missing_signature");
    /* two signatures: which one the upstream would believe is anyone's guess */
    if (c->host->request_header(r, c->header, 1, &n2) || parse_signature(v, n, st->want) != 0)
        return unauthorized(r, c, c->malformed, "malformed_signature");
    st->ctx = EVP_MAC_CTX_dup(c->keyed);
    return st->ctx ? PORTCULLIS_CONTINUE : PORTCULLIS_ERROR;
}

static portcullis_rc_t on_body(portcullis_req_t *r, const void *conf, void *state, const char *data,
                               size_t len, int last)
{
    const conf_t *c = conf;
    state_t *st = state;
    if (!st->ctx)
        return PORTCULLIS_ERROR;
    if (len && !EVP_MAC_update(st->ctx, (const unsigned char *)data, len))
        return PORTCULLIS_ERROR;
    if (!last)
        return PORTCULLIS_CONTINUE;
    unsigned char got[EVP_MAX_MD_SIZE];
    size_t gl = 0;
    if (!EVP_MAC_final(st->ctx, got, &gl, sizeof(got)) || gl != DIGEST_LEN)
        return PORTCULLIS_ERROR;
    if (CRYPTO_memcmp(got, st->want, DIGEST_LEN) != 0)
        return unauthorized(r, c, c->bad, "bad_signature");
    c->host->count(c->verified, 1);
    return PORTCULLIS_CONTINUE;
}

static void on_log(portcullis_req_t *r, const void *conf, void *state)
{
    state_t *st = state;
    (void)r;
    (void)conf;
    EVP_MAC_CTX_free(st->ctx);
    st->ctx = NULL;
}

const portcullis_plugin_t portcullis_plugin = {
    .abi = PORTCULLIS_PLUGIN_ABI,
    .name = "webhook_hmac",
    .state_size = sizeof(state_t),
    .init = init,
    .fini = fini,
    .request_headers = on_headers,
    .request_body = on_body,
    .log = on_log,
};
