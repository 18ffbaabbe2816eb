/*
 * jwks.c — see jwks.h.
 */
#include "jwks.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "health.h"
#include "log.h"

#define FETCH_TIMEOUT_S 10
#define JWKS_MAX_BODY   (1 << 20)
#define RETRY_MAX_MS    30000
#define KID_REFETCH_MS  60000

typedef struct fetch_s fetch_t;

struct pc_jwks_src_s {
    pc_jwks_src_t *next;
    char *url;
    char *ca;
    pthread_mutex_t lock; /* guards keys */
    pc_keyset_t *keys;
    uint64_t gen;   /* atomic: bumped when keys change */
    int kid_wanted; /* atomic: set by workers */
    /* control thread only */
    int64_t refresh_ms;
    int64_t next_ms;
    int64_t last_kid_fetch_ms;
    unsigned fails;
    uint64_t fetches, failures;
    unsigned char digest[SHA256_DIGEST_LENGTH]; /* of the body last loaded */
    char last_error[160];
    fetch_t *f;                     /* in flight */
    struct evhttp_connection *done; /* finished, freed at the next tick */
    SSL_CTX *ssl;
};

struct fetch_s {
    pc_jwks_src_t *s;
    struct evhttp_connection *conn;
    int cancelled;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pc_jwks_src_t *sources;
static struct evdns_base *dns; /* the control thread's */

int pc_jwks_url_check(const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    int ok = u && evhttp_uri_get_host(u) && *evhttp_uri_get_host(u) && !evhttp_uri_get_userinfo(u);
    if (u)
        evhttp_uri_free(u);
    return ok ? 0 : -1;
}

static int same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

pc_jwks_src_t *pc_jwks_src_get(const char *url, const char *ca)
{
    pthread_mutex_lock(&reg_lock);
    pc_jwks_src_t *s = sources;
    while (s && !(same(s->url, url) && same(s->ca, ca)))
        s = s->next;
    if (!s && (s = calloc(1, sizeof(*s))) != NULL) {
        s->url = strdup(url);
        s->ca = ca ? strdup(ca) : NULL;
        if (!s->url || (ca && !s->ca)) {
            free(s->url);
            free(s->ca);
            free(s);
            s = NULL;
        } else {
            pthread_mutex_init(&s->lock, NULL);
            s->next = sources;
            sources = s;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return s;
}

pc_keyset_t *pc_jwks_src_keys(pc_jwks_src_t *s, uint64_t *gen)
{
    pthread_mutex_lock(&s->lock);
    pc_keyset_t *ks = s->keys;
    if (ks)
        pc_keyset_ref(ks);
    *gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&s->lock);
    return ks;
}

uint64_t pc_jwks_src_generation(pc_jwks_src_t *s)
{
    return __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
}

void pc_jwks_src_unknown_kid(pc_jwks_src_t *s)
{
    if (!__atomic_load_n(&s->kid_wanted, __ATOMIC_RELAXED))
        __atomic_store_n(&s->kid_wanted, 1, __ATOMIC_RELAXED);
}

static void set_keys(pc_jwks_src_t *s, pc_keyset_t *ks)
{
    pthread_mutex_lock(&s->lock);
    pc_keyset_t *old = s->keys;
    s->keys = ks;
    __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->lock);
    pc_keyset_unref(old);
}

static size_t key_count(pc_jwks_src_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->keys ? s->keys->n : 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- fetching (control thread) ---- */

static void fetch_failed(pc_jwks_src_t *s, const char *why)
{
    int64_t now = pc_mono_ms(), wait;
    size_t n = key_count(s);
    s->failures++;
    snprintf(s->last_error, sizeof(s->last_error), "%s", why);
    if (!n)
        wait = s->fails >= 5 ? RETRY_MAX_MS : 1000 << s->fails;
    else
        wait = s->refresh_ms < RETRY_MAX_MS ? s->refresh_ms : RETRY_MAX_MS;
    s->fails++;
    s->next_ms = now + wait;
    if (n)
        pc_log(PC_LOG_WARN, "jwt", "JWKS fetch from %s failed: %s (keeping the %zu keys loaded)",
               s->url, why, n);
    else
        pc_log(PC_LOG_ERROR, "jwt",
               "JWKS fetch from %s failed: %s (no key set yet: its routes answer 503)", s->url,
               why);
}

static void warn_skipped(void *arg, const char *msg)
{
    pc_log(PC_LOG_WARN, "jwt", "JWKS from %s: %s", (const char *)arg, msg);
}

static void fetch_done(struct evhttp_request *req, void *arg)
{
    fetch_t *f = arg;
    if (f->cancelled)
        return;
    pc_jwks_src_t *s = f->s;
    s->f = NULL;
    s->done = f->conn;
    free(f);
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code != 200) {
        char why[64];
        if (code)
            snprintf(why, sizeof(why), "status %d", code);
        else
            snprintf(why, sizeof(why), "no response (connection, TLS or timeout)");
        fetch_failed(s, why);
        return;
    }
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    const char *body = (const char *)evbuffer_pullup(b, -1);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(body ? body : ""), len, digest);
    if (key_count(s) && memcmp(digest, s->digest, sizeof(digest)) == 0) {
        s->fails = 0; /* unchanged: the cached verifications stay good */
        s->next_ms = pc_mono_ms() + s->refresh_ms;
        s->last_error[0] = 0;
        return;
    }
    char err[256];
    pc_keyset_t *ks = pc_jwks_parse(body ? body : "", len, err, sizeof(err), warn_skipped, s->url);
    if (!ks) {
        fetch_failed(s, err);
        return;
    }
    memcpy(s->digest, digest, sizeof(digest));
    size_t n = ks->n;
    set_keys(s, ks);
    s->fails = 0;
    s->next_ms = pc_mono_ms() + s->refresh_ms;
    s->last_error[0] = 0;
    pc_log(PC_LOG_INFO, "jwt", "loaded %zu key%s from %s", n, n == 1 ? "" : "s", s->url);
}

static SSL *new_ssl(pc_jwks_src_t *s, const char *host)
{
    if (!s->ssl) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
            return NULL;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if ((s->ca ? SSL_CTX_load_verify_locations(ctx, s->ca, NULL)
                   : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        s->ssl = ctx;
    }
    SSL *ssl = SSL_new(s->ssl);
    if (!ssl)
        return NULL;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1
              : SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void fetch_start(struct event_base *base, pc_jwks_src_t *s)
{
    struct evhttp_uri *u = evhttp_uri_parse(s->url);
    fetch_t *f = calloc(1, sizeof(*f));
    struct bufferevent *bev = NULL;
    struct evhttp_request *req = NULL;
    const char *why = "out of memory";
    s->fetches++;
    if (!u || !f)
        goto fail;
    const char *host = evhttp_uri_get_host(u), *path = evhttp_uri_get_path(u);
    const char *query = evhttp_uri_get_query(u);
    int https = strcmp(evhttp_uri_get_scheme(u), "https") == 0;
    int port = evhttp_uri_get_port(u);
    char target[2048], hosthdr[300];
    char bare[256]; /* the host without IPv6 brackets */
    snprintf(bare, sizeof(bare), "%s", host);
    if (bare[0] == '[' && strlen(bare) > 2) {
        memmove(bare, bare + 1, strlen(bare));
        bare[strlen(bare) - 1] = 0;
    }
    if (port < 0)
        port = https ? 443 : 80;
    if (snprintf(target, sizeof(target), "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                 query ? query : "") >= (int)sizeof(target)) {
        why = "URL too long";
        goto fail;
    }
    snprintf(hosthdr, sizeof(hosthdr),
             (port == 443 && https) || (port == 80 && !https) ? "%s" : "%s:%d", host, port);
    if (!dns && !(dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS)))
        dns = evdns_base_new(base, 0);
    if (https) {
        SSL *ssl = new_ssl(s, bare);
        if (!ssl) {
            why = s->ca ? "cannot load jwks_ca" : "TLS set-up failed";
            goto fail;
        }
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!bev)
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev || !(f->conn = evhttp_connection_base_bufferevent_new(base, dns, bev, bare,
                                                                   (unsigned short)port))) {
        if (bev)
            bufferevent_free(bev);
        goto fail;
    }
    evhttp_connection_set_timeout(f->conn, FETCH_TIMEOUT_S);
    evhttp_connection_set_retries(f->conn, 0);
    evhttp_connection_set_max_body_size(f->conn, JWKS_MAX_BODY);
    evhttp_connection_set_max_headers_size(f->conn, 16384);
    f->s = s;
    if (!(req = evhttp_request_new(fetch_done, f)))
        goto fail;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", hosthdr);
    evhttp_add_header(h, "Accept", "application/json, application/jwk-set+json");
    evhttp_add_header(h, "User-Agent", "portcullis-jwks");
    evhttp_add_header(h, "Connection", "close");
    if (evhttp_make_request(f->conn, req, EVHTTP_REQ_GET, target) != 0) {
        req = NULL; /* freed by evhttp on failure */
        goto fail;
    }
    s->f = f;
    evhttp_uri_free(u);
    return;
fail:
    if (req)
        evhttp_request_free(req);
    if (f && f->conn)
        evhttp_connection_free(f->conn);
    free(f);
    if (u)
        evhttp_uri_free(u);
    fetch_failed(s, why);
}

void pc_jwks_tick(struct event_base *base, const pc_config_t *cfg)
{
    int64_t now = pc_mono_ms();
    for (size_t i = 0; i < cfg->n_jwt_providers; i++) {
        pc_jwks_src_t *s = cfg->jwt_providers[i].src;
        if (!s)
            continue;
        if (s->done) {
            evhttp_connection_free(s->done);
            s->done = NULL;
        }
        s->refresh_ms = cfg->jwt_providers[i].jwks_refresh;
        if (s->f)
            continue;
        int due = now >= s->next_ms;
        if (__atomic_load_n(&s->kid_wanted, __ATOMIC_RELAXED)) {
            __atomic_store_n(&s->kid_wanted, 0, __ATOMIC_RELAXED);
            if (!s->last_kid_fetch_ms || now - s->last_kid_fetch_ms >= KID_REFETCH_MS) {
                s->last_kid_fetch_ms = now;
                due = 1;
            }
        }
        if (due)
            fetch_start(base, s);
    }
}

void pc_jwks_stop(void)
{
    pthread_mutex_lock(&reg_lock);
    for (pc_jwks_src_t *s = sources; s; s = s->next) {
        if (s->f) {
            s->f->cancelled = 1;
            evhttp_connection_free(s->f->conn);
            free(s->f);
            s->f = NULL;
        }
        if (s->done) {
            evhttp_connection_free(s->done);
            s->done = NULL;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    if (dns) {
        evdns_base_free(dns, 0);
        dns = NULL;
    }
}

void pc_jwks_src_stats(pc_jwks_src_t *s, pc_jwks_stats_t *out)
{
    out->url = s->url;
    out->keys = key_count(s);
    out->generation = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
    out->fetches = s->fetches;
    out->failures = s->failures;
    out->last_error = s->last_error[0] ? s->last_error : NULL;
}

void pc_jwks_free_all(void)
{
    pthread_mutex_lock(&reg_lock);
    while (sources) {
        pc_jwks_src_t *s = sources;
        sources = s->next;
        pc_keyset_unref(s->keys);
        if (s->ssl)
            SSL_CTX_free(s->ssl);
        pthread_mutex_destroy(&s->lock);
        free(s->url);
        free(s->ca);
        free(s);
    }
    pthread_mutex_unlock(&reg_lock);
}
