/*
 * tls.c — see tls.h and docs/internals/tls.md.
 */
#include "tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SESSION_TIMEOUT 7200         /* seconds a session or ticket is good for */
#define SESSION_CACHE   20480        /* TLS 1.2 sessions kept per listener */
#define TICKET_ROTATE   (3600)       /* a new ticket key every hour ... */
#define TICKET_KEYS     3            /* ... and the two before it still decrypt */
#define EXPIRY_WARNING  (30 * 86400) /* -t warns this long before notAfter */

typedef struct {
    char *name; /* lower case; for a wildcard, the suffix ".example.com" */
    int wildcard;
    SSL_CTX *ctx;
} sni_t;

struct pc_tls_s {
    SSL_CTX *def; /* the first pair's context: no SNI, or an unknown name */
    SSL_CTX **ctxs;
    size_t nctx;
    sni_t *names;
    size_t nnames;
    int forward_client_cert;
};

/* ---- session ticket keys, shared by every context ---- */

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t created;
} tkey_t;

static tkey_t ring[TICKET_KEYS];
static int nring;
static pthread_rwlock_t ring_lock = PTHREAD_RWLOCK_INITIALIZER;

static int new_key(tkey_t *k)
{
    k->created = time(NULL);
    return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_bytes(k->aes, sizeof(k->aes)) == 1 &&
                   RAND_bytes(k->hmac, sizeof(k->hmac)) == 1
               ? 0
               : -1;
}

int pc_tls_global_init(void)
{
    pthread_rwlock_wrlock(&ring_lock);
    int rc = nring ? 0 : new_key(&ring[0]);
    if (rc == 0 && !nring)
        nring = 1;
    pthread_rwlock_unlock(&ring_lock);
    return rc;
}

void pc_tls_rotate_ticket_keys(void)
{
    tkey_t k;
    if (nring && time(NULL) - ring[0].created < TICKET_ROTATE)
        return;
    if (new_key(&k) != 0)
        return;
    pthread_rwlock_wrlock(&ring_lock);
    memmove(&ring[1], &ring[0], sizeof(tkey_t) * (TICKET_KEYS - 1));
    ring[0] = k;
    if (nring < TICKET_KEYS)
        nring++;
    pthread_rwlock_unlock(&ring_lock);
}

static int set_hmac(EVP_MAC_CTX *hctx, const unsigned char *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* OpenSSL's ticket-key callback: encrypt new tickets with the newest key,
 * decrypt with any key still in the ring (asking for a fresh ticket when an
 * older one was used). 0 makes the client do a full handshake. */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX *ctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    (void)s;
    int rc = 0;
    pthread_rwlock_rdlock(&ring_lock);
    if (enc) {
        if (nring && RAND_bytes(iv, 16) == 1 &&
            EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, ring[0].aes, iv) == 1 &&
            set_hmac(hctx, ring[0].hmac) == 1) {
            memcpy(key_name, ring[0].name, 16);
            rc = 1;
        } else {
            rc = -1;
        }
    } else {
        for (int i = 0; i < nring; i++) {
            if (memcmp(key_name, ring[i].name, 16) != 0)
                continue;
            if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, ring[i].aes, iv) == 1 &&
                set_hmac(hctx, ring[i].hmac) == 1)
                rc = i == 0 ? 1 : 2;
            else
                rc = -1;
            break;
        }
    }
    pthread_rwlock_unlock(&ring_lock);
    return rc;
}

/* ---- handshake callbacks ---- */

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    /* Only http/1.1 is offered; a client that wants only something else gets
     * the no_application_protocol alert (RFC 7301 §3.2). */
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof(ours) - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *lookup(const pc_tls_t *t, const char *name)
{
    char lower[256];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(lower))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] | 0x20 : name[i]);
    if (lower[n - 1] == '.')
        lower[--n] = '\0';
    for (size_t i = 0; i < t->nnames; i++)
        if (!t->names[i].wildcard && strcmp(t->names[i].name, lower) == 0)
            return t->names[i].ctx;
    /* a wildcard covers exactly one label: *.example.com matches a.example.com */
    const char *dot = strchr(lower, '.');
    for (size_t i = 0; dot && dot != lower && i < t->nnames; i++)
        if (t->names[i].wildcard && strcmp(t->names[i].name, dot) == 0)
            return t->names[i].ctx;
    return NULL;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_CTX *ctx = name ? lookup(arg, name) : NULL;
    if (ctx && ctx != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

/* ---- building ---- */

typedef struct {
    const char *file;
    const char *path;
    pc_errlist_t *errs;
} ectx_t;

static void ossl_error(const ectx_t *e, int line, const char *sub, const char *what,
                       const char *arg)
{
    char detail[256] = "";
    unsigned long code = ERR_peek_last_error();
    /* a failed fopen() is reported as "system lib": say which error it was */
    unsigned long sys = ERR_peek_error();
    if (sys && ERR_GET_LIB(sys) == ERR_LIB_SYS)
        snprintf(detail, sizeof(detail), ":%s", strerror(ERR_GET_REASON(sys)));
    else if (code)
        ERR_error_string_n(code, detail, sizeof(detail));
    ERR_clear_error();
    char path[300];
    snprintf(path, sizeof(path), "%s%s", e->path, sub);
    /* strip OpenSSL's "error:0A00008C:SSL routines::" prefix, keep the reason */
    const char *reason = strrchr(detail, ':');
    pc_errlist_add(e->errs, e->file, line, path, "%s '%s'%s%s", what, arg, code ? ": " : "",
                   code ? (reason ? reason + 1 : detail) : "");
}

/* The names a certificate serves: its DNS subjectAltNames, else its CN. */
static int cert_names(X509 *x, char names[][256], int max)
{
    int n = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && n < max; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int len = ASN1_STRING_length(g->d.dNSName);
        if (len > 0 && len < 256 && !memchr(d, '\0', (size_t)len)) {
            memcpy(names[n], d, (size_t)len);
            names[n++][len] = '\0';
        }
    }
    GENERAL_NAMES_free(sans);
    if (n == 0) {
        X509_NAME *subj = X509_get_subject_name(x);
        if (X509_NAME_get_text_by_NID(subj, NID_commonName, names[0], 256) > 0)
            n = 1;
    }
    for (int i = 0; i < n; i++)
        for (char *p = names[i]; *p; p++)
            *p = (char)((*p >= 'A' && *p <= 'Z') ? *p | 0x20 : *p);
    return n;
}

static void check_expiry(const ectx_t *e, int line, const char *sub, const char *file, X509 *x)
{
    const ASN1_TIME *na = X509_get0_notAfter(x);
    int days = 0, secs = 0;
    if (!na || ASN1_TIME_diff(&days, &secs, NULL, na) != 1)
        return;
    char path[300];
    snprintf(path, sizeof(path), "%s%s", e->path, sub);
    if (days < 0 || (days == 0 && secs < 0))
        pc_errlist_warn(e->errs, e->file, line, path, "certificate '%s' has expired", file);
    else if ((long)days * 86400 + secs < EXPIRY_WARNING)
        pc_errlist_warn(e->errs, e->file, line, path, "certificate '%s' expires in %d day%s", file,
                        days, days == 1 ? "" : "s");
}

static SSL_CTX *new_ctx(const pc_tls_conf_t *conf, const ectx_t *e, pc_tls_t *t)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    int min = (conf->protocols & PC_TLS_V12) ? TLS1_2_VERSION : TLS1_3_VERSION;
    int max = (conf->protocols & PC_TLS_V13) ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    /* idle connections give their 34 KiB of record buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
    int failed = 0;
    if (SSL_CTX_set_cipher_list(ctx, conf->ciphers ? conf->ciphers : PC_TLS_DEFAULT_CIPHERS) != 1) {
        ossl_error(e, conf->ciphers_line, ".ciphers", "no usable cipher in", conf->ciphers);
        failed = 1;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"portcullis", 10);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE);
    SSL_CTX_set_timeout(ctx, SESSION_TIMEOUT);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    if (conf->client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, conf->client_ca, NULL) != 1) {
            ossl_error(e, conf->client_ca_line, ".client_ca", "cannot load CA certificates from",
                       conf->client_ca);
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            failed = 1;
        } else {
            SSL_CTX_set_client_CA_list(ctx, names);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
            SSL_CTX_set_verify_depth(ctx, 8);
        }
    }
    if (failed) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int add_name(pc_tls_t *t, const char *name, SSL_CTX *ctx)
{
    sni_t *n = realloc(t->names, (t->nnames + 1) * sizeof(*n));
    if (!n)
        return -1;
    t->names = n;
    int wild = name[0] == '*' && name[1] == '.';
    n[t->nnames].wildcard = wild;
    n[t->nnames].name = strdup(wild ? name + 1 : name);
    n[t->nnames].ctx = ctx;
    if (!n[t->nnames].name)
        return -1;
    t->nnames++;
    return 0;
}

/* Loads pair i into a context: one shared with the earlier pair serving the
 * same names with another key type (ECDSA and RSA side by side), else a new
 * one. Returns 0 or -1 (error reported). */
static int load_pair(pc_tls_t *t, const pc_tls_conf_t *conf, size_t i, const ectx_t *e,
                     char (*seen)[8][256], int *nseen)
{
    const pc_tls_pair_t *p = &conf->pairs[i];
    char sub[64];
    snprintf(sub, sizeof(sub), ".certificates[%zu]", i);
    BIO *b = BIO_new_file(p->cert, "r");
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        char s2[80];
        snprintf(s2, sizeof(s2), "%s.cert", sub);
        ossl_error(e, p->line, s2, "cannot read a certificate from", p->cert);
        return -1;
    }
    char names[8][256];
    int nn = cert_names(x, names, 8);
    int type = EVP_PKEY_get_base_id(X509_get0_pubkey(x));
    char s2[80];
    snprintf(s2, sizeof(s2), "%s.cert", sub);
    check_expiry(e, p->line, s2, p->cert, x);
    X509_free(x);
    /* the earlier context with the same names, if it lacks this key type */
    SSL_CTX *ctx = NULL;
    for (size_t k = 0; k < t->nctx && !ctx; k++) {
        if (nseen[k] != nn || memcmp(seen[k], names, sizeof(names[0]) * (size_t)nn) != 0)
            continue;
        EVP_PKEY *have = SSL_CTX_get0_privatekey(t->ctxs[k]);
        if (!have || EVP_PKEY_get_base_id(have) != type)
            ctx = t->ctxs[k];
    }
    int fresh = ctx == NULL;
    if (fresh) {
        if (!(ctx = new_ctx(conf, e, t)))
            return -1;
        t->ctxs[t->nctx] = ctx;
        memcpy(seen[t->nctx], names, sizeof(names[0]) * 8);
        nseen[t->nctx] = nn;
        t->nctx++;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, p->cert) != 1) {
        ossl_error(e, p->line, s2, "cannot use the certificate chain in", p->cert);
        return -1;
    }
    snprintf(s2, sizeof(s2), "%s.key", sub);
    if (SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM) != 1) {
        ossl_error(e, p->line, s2, "cannot read a private key from", p->key);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        char path[300];
        snprintf(path, sizeof(path), "%s%s", e->path, s2);
        pc_errlist_add(e->errs, e->file, p->line, path, "key '%s' does not match certificate '%s'",
                       p->key, p->cert);
        return -1;
    }
    for (int k = 0; fresh && k < nn; k++)
        if (add_name(t, names[k], ctx) != 0)
            return -1;
    return 0;
}

pc_tls_t *pc_tls_new(const pc_tls_conf_t *conf, const char *file, const char *path,
                     pc_errlist_t *errs)
{
    ectx_t e = {file, path, errs};
    pc_tls_t *t = calloc(1, sizeof(*t));
    char(*seen)[8][256] = calloc(conf->npairs ? conf->npairs : 1, sizeof(*seen));
    int *nseen = calloc(conf->npairs ? conf->npairs : 1, sizeof(int));
    if (t)
        t->ctxs = calloc(conf->npairs ? conf->npairs : 1, sizeof(SSL_CTX *));
    if (!t || !t->ctxs || !seen || !nseen || pc_tls_global_init() != 0) {
        pc_errlist_add(errs, file, 0, path, "out of memory");
        free(seen);
        free(nseen);
        pc_tls_free(t);
        return NULL;
    }
    t->forward_client_cert = conf->forward_client_cert;
    if (conf->npairs == 0) {
        /* nothing to serve (already reported), but the settings can be checked */
        SSL_CTX_free(new_ctx(conf, &e, t));
        pc_tls_free(t);
        free(seen);
        free(nseen);
        return NULL;
    }
    int failed = 0;
    for (size_t i = 0; i < conf->npairs; i++)
        failed |= load_pair(t, conf, i, &e, seen, nseen) != 0;
    free(seen);
    free(nseen);
    if (failed || t->nctx == 0) {
        pc_tls_free(t);
        return NULL;
    }
    t->def = t->ctxs[0];
    return t;
}

void pc_tls_free(pc_tls_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nctx; i++)
        SSL_CTX_free(t->ctxs[i]);
    for (size_t i = 0; i < t->nnames; i++)
        free(t->names[i].name);
    free(t->names);
    free(t->ctxs);
    free(t);
}

SSL *pc_tls_accept(pc_tls_t *t, int fd)
{
    SSL *ssl = SSL_new(t->def);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

int pc_tls_forwards_client_cert(const pc_tls_t *t)
{
    return t->forward_client_cert;
}

size_t pc_tls_client_subject(SSL *ssl, char *out, size_t cap)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x || SSL_get_verify_result(ssl) != X509_V_OK || cap == 0)
        return 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return 0;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, out, (int)cap - 1);
    BIO_free(b);
    if (n <= 0)
        return 0;
    /* a header value: no control bytes */
    for (int i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '?';
    out[n] = '\0';
    return (size_t)n;
}
