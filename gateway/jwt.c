/*
 * jwt.c — see jwt.h: providers, the auth filter and the token cache.
 */
#include "jwt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http1.h"
#include "jose.h"
#include "jwks.h"
#include "request.h"
#include "worker.h"

#define CACHE_SLOTS     4096 /* per worker, direct-mapped */
#define CLAIM_VALUE_MAX 1024 /* longest claim value forwarded as a header */

/* ---- configuration ---- */

/* An error at node's key (at node when the key is absent). */
static void key_error(pc_cctx_t *c, const pc_ynode_t *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void key_error(pc_cctx_t *c, const pc_ynode_t *node, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mark = pc_cfg_push_key(c, key);
    pc_cfg_error(c, pc_ymap_get(node, key) ? pc_ymap_get(node, key) : node, "%s", msg);
    pc_cfg_pop(c, mark);
}

typedef struct {
    pc_cctx_t *c;
    const pc_ynode_t *at;
} warn_ctx_t;

static void warn_key(void *arg, const char *msg)
{
    warn_ctx_t *w = arg;
    size_t mark = pc_cfg_push_key(w->c, "jwks_file");
    pc_cfg_warn(w->c, w->at, "%s", msg);
    pc_cfg_pop(w->c, mark);
}

static pc_keyset_t *load_jwks_file(pc_cctx_t *c, const pc_ynode_t *node, const char *path)
{
    const pc_ynode_t *at = pc_ymap_get(node, "jwks_file");
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(1 << 20) : NULL;
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    int big = buf && n == 1 << 20 && fgetc(f) != EOF;
    char err[256];
    pc_keyset_t *ks = NULL;
    warn_ctx_t w = {c, at};
    if (!f)
        key_error(c, node, "jwks_file", "cannot read '%s'", path);
    else if (!buf || ferror(f))
        key_error(c, node, "jwks_file", "cannot read '%s'", path);
    else if (big)
        key_error(c, node, "jwks_file", "'%s' is over 1 MiB", path);
    else if (!(ks = pc_jwks_parse(buf, n, err, sizeof(err), warn_key, &w)))
        key_error(c, node, "jwks_file", "%s", err);
    free(buf);
    if (f)
        fclose(f);
    return ks;
}

static int header_name_ok(const char *h)
{
    if (!*h)
        return 0;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            return 0;
    static const char *const reserved[] = {"host",
                                           "content-length",
                                           "transfer-encoding",
                                           "connection",
                                           "te",
                                           "upgrade",
                                           "trailer",
                                           "x-forwarded-for",
                                           "x-forwarded-proto",
                                           "x-request-id",
                                           "keep-alive",
                                           "x-forwarded-host",
                                           "x-client-cert-subject",
                                           "authorization",
                                           "cookie",
                                           "expect"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(h, reserved[i]) == 0)
            return 0;
    return 1;
}

void pc_jwt_check_provider(pc_cctx_t *c, const pc_ynode_t *node, void *obj)
{
    pc_jwt_provider_conf_t *p = obj;
    int sources = !!p->jwks_file + !!p->jwks_url + !!p->secret;
    if (sources != 1) {
        pc_cfg_error(c, node,
                     sources ? "jwks_file, jwks_url and secret are exclusive: set one"
                             : "no keys: set jwks_file, jwks_url or secret");
        return;
    }
    for (size_t i = 0; i < p->n_algorithms; i++)
        p->alg_mask |= PC_JWS_BIT(p->algorithms[i]);
    if (!p->n_algorithms) /* the default: what the key source can carry */
        p->alg_mask = p->secret ? PC_JWS_HMAC_ALGS : ((1u << PC_JWS_COUNT) - 1) & ~PC_JWS_HMAC_ALGS;
    if ((p->alg_mask & PC_JWS_HMAC_ALGS) && p->jwks_url)
        key_error(c, node, "algorithms", "%s",
                  "HS256/384/512 need a shared secret: a remote JWKS must not carry one");
    if (p->secret && (p->alg_mask & ~PC_JWS_HMAC_ALGS))
        key_error(c, node, "algorithms", "%s",
                  "a secret verifies HS256/384/512 only: list those, or use a JWKS");
    if (p->jwks_url && strncmp(p->jwks_url, "http://", 7) != 0 &&
        strncmp(p->jwks_url, "https://", 8) != 0)
        key_error(c, node, "jwks_url", "'%s' is not an http:// or https:// URL", p->jwks_url);
    else if (p->jwks_url && pc_jwks_url_check(p->jwks_url) != 0)
        key_error(c, node, "jwks_url", "'%s' is not a valid URL", p->jwks_url);
    if (p->jwks_ca && !p->jwks_url)
        key_error(c, node, "jwks_ca", "%s", "only applies to an https jwks_url");
    for (size_t i = 0; i < p->n_forward_claims; i++) {
        if (!header_name_ok(p->forward_claims[i].header)) {
            size_t mark = pc_cfg_push_key(c, "forward_claims");
            key_error(c, pc_ymap_get(node, "forward_claims"), p->forward_claims[i].claim,
                      "'%s' cannot carry a claim: a header name of letters, digits and '-' that "
                      "the gateway does not set itself",
                      p->forward_claims[i].header);
            pc_cfg_pop(c, mark);
        }
    }
    char err[256];
    if (p->secret) {
        if (!(p->keys = pc_keyset_secret(p->secret, strlen(p->secret), err, sizeof(err))))
            key_error(c, node, "secret", "%s", err);
    } else if (p->jwks_file) {
        p->keys = load_jwks_file(c, node, p->jwks_file);
    }
    if (p->keys) {
        uint32_t usable = 0;
        for (size_t i = 0; i < p->keys->n; i++)
            usable |= p->keys->keys[i].algs;
        if (!(usable & p->alg_mask))
            key_error(c, node, p->secret ? "secret" : "jwks_file", "%s",
                      "no key can verify any of the provider's algorithms");
    }
}

void pc_jwt_finish(pc_cctx_t *c)
{
    pc_config_t *cfg = c->cfg;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_jwt_providers; i++)
        n += cfg->jwt_providers[i].n_forward_claims;
    if (!n)
        return;
    cfg->claim_headers = pc_arena_calloc(c->pool, n * sizeof(pc_str_t));
    for (size_t i = 0; cfg->claim_headers && i < cfg->n_jwt_providers; i++)
        for (size_t j = 0; j < cfg->jwt_providers[i].n_forward_claims; j++)
            cfg->claim_headers[cfg->n_claim_headers++] =
                pc_str_cstr(cfg->jwt_providers[i].forward_claims[j].header);
}

void pc_jwt_resolve_route(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn)
{
    pc_route_auth_t *a = r->auth;
    if (!a || !a->jwt)
        return;
    const pc_config_t *cfg = c->cfg;
    pc_suggest_t sg = PC_SUGGEST_INIT;
    for (size_t i = 0; i < cfg->n_jwt_providers; i++) {
        if (strcmp(cfg->jwt_providers[i].name, a->jwt) == 0) {
            a->provider = &cfg->jwt_providers[i];
            return;
        }
        pc_suggest_offer(&sg, a->jwt, cfg->jwt_providers[i].name);
    }
    const char *best = pc_suggest_best(&sg, 2);
    size_t mark = pc_cfg_push_key(c, "auth");
    size_t m2 = pc_cfg_push_key(c, "jwt");
    const pc_ynode_t *at = pc_ymap_get(pc_ymap_get(rn, "auth"), "jwt");
    if (best)
        pc_cfg_error(c, at, "unknown JWT provider '%s' (did you mean '%s'?)", a->jwt, best);
    else
        pc_cfg_error(c, at, "unknown JWT provider '%s'%s", a->jwt,
                     cfg->n_jwt_providers ? "" : " (there is no jwt.providers section)");
    pc_cfg_pop(c, m2);
    pc_cfg_pop(c, mark);
}

void pc_jwt_release(pc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_jwt_providers; i++)
        pc_keyset_unref(cfg->jwt_providers[i].keys);
}

/* ---- the verified-token cache (per worker) ---- */

typedef struct {
    uint64_t hash;
    uint64_t provider; /* provider_id() */
    uint64_t keygen;   /* the key source's generation it was verified with */
    uint64_t revgen;   /* the revocation list's generation when last found clean */
    int64_t until_ms;  /* wall clock: min(verified + cache_ttl, the end of exp + leeway) */
    char *tok;
    size_t len;
    json_t *claims;
} centry_t;

static __thread centry_t *cache;

static void centry_clear(centry_t *e)
{
    free(e->tok);
    json_decref(e->claims);
    memset(e, 0, sizeof(*e));
}

void pc_jwt_thread_done(void)
{
    for (size_t i = 0; cache && i < CACHE_SLOTS; i++)
        centry_clear(&cache[i]);
    free(cache);
    cache = NULL;
}

/* Unique across snapshots (pointers may be reused after a reload). */
static uint64_t provider_id(const pc_req_t *r, const pc_jwt_provider_conf_t *p)
{
    return r->cfg->generation << 16 | (uint64_t)(p - r->cfg->jwt_providers);
}

/* ---- claims ---- */

/* A NumericDate as whole seconds (clamped: no overflow on absurd values);
 * -1 when v is not a number. */
static int num_date(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        *out = d > 1e15 ? (int64_t)1e15 : d < -1e15 ? (int64_t)-1e15 : (int64_t)d;
        return 0;
    }
    return -1;
}

/* Checks the registered claims; NULL when valid, else why. */
static const char *check_claims(const pc_jwt_provider_conf_t *p, json_t *c, int64_t now,
                                int64_t *exp)
{
    int64_t leeway = p->leeway / 1000, t;
    json_t *v;
    if (num_date(json_object_get(c, "exp"), exp) != 0)
        return json_object_get(c, "exp") ? "exp is not a number" : "no exp claim";
    if (now > *exp + leeway)
        return "token expired";
    if ((v = json_object_get(c, "nbf")) && (num_date(v, &t) != 0 || now + leeway < t))
        return "token not yet valid";
    if ((v = json_object_get(c, "iat")) && (num_date(v, &t) != 0 || t > now + leeway))
        return "token issued in the future";
    if (p->issuer) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        if (!iss || strcmp(iss, p->issuer) != 0)
            return "wrong issuer";
    }
    if (p->n_audiences) {
        json_t *aud = json_object_get(c, "aud"), *one;
        size_t i, j;
        int found = 0;
        for (j = 0; j < p->n_audiences && !found; j++) {
            if (json_is_string(aud))
                found = strcmp(json_string_value(aud), p->audiences[j]) == 0;
            json_array_foreach(aud, i, one) if (json_is_string(one) &&
                                                strcmp(json_string_value(one), p->audiences[j]) ==
                                                    0) found = 1;
        }
        if (!found)
            return "wrong audience";
    }
    v = json_object_get(c, "sub");
    if (v && !json_is_string(v))
        return "sub is not a string";
    v = json_object_get(c, "jti");
    if (v && !json_is_string(v))
        return "jti is not a string";
    return NULL;
}

/* Does the claim (a space-separated string or an array of strings) hold
 * the word? */
static int claim_has_word(json_t *v, const char *word)
{
    size_t wl = strlen(word), i;
    json_t *one;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (const char *p = s; (p = strstr(p, word)) != NULL; p++)
            if ((p == s || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == 0))
                return 1;
        return 0;
    }
    json_array_foreach(v, i, one) if (json_is_string(one) &&
                                      strcmp(json_string_value(one), word) == 0) return 1;
    return 0;
}

/* A claim's value as text: a string as is, a number or a boolean written
 * out; NULL for anything else. buf holds at least 32 bytes. */
static const char *scalar_text(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return buf;
}

static int claim_equals(json_t *v, const char *want)
{
    char buf[40];
    size_t i;
    json_t *one;
    const char *t = scalar_text(v, buf, sizeof(buf));
    if (t)
        return strcmp(t, want) == 0;
    json_array_foreach(v, i, one)
    {
        t = scalar_text(one, buf, sizeof(buf));
        if (t && strcmp(t, want) == 0)
            return 1;
    }
    return 0;
}

/* The route's require section; NULL when met, else what is missing. */
static const char *check_require(const pc_route_auth_t *a, json_t *c)
{
    json_t *scope = json_object_get(c, "scope");
    if (!scope)
        scope = json_object_get(c, "scp");
    for (size_t i = 0; i < a->require.n_scope; i++)
        if (!scope || !claim_has_word(scope, a->require.scope[i]))
            return "missing scope";
    if (a->require.n_groups) {
        json_t *g = json_object_get(c, "groups");
        if (!g)
            g = json_object_get(c, "cognito:groups");
        size_t i = 0;
        while (i < a->require.n_groups && !(g && claim_has_word(g, a->require.groups[i])))
            i++;
        if (i == a->require.n_groups)
            return "not in a required group";
    }
    for (size_t i = 0; i < a->require.n_claims; i++) {
        json_t *v = json_object_get(c, a->require.claims[i].claim);
        if (!v || !claim_equals(v, a->require.claims[i].value))
            return "required claim missing or different";
    }
    return NULL;
}

/* A forwarded claim's header value: scalars as text, arrays of scalars
 * joined with ","; nothing (0) for objects or values with control bytes. */
static size_t claim_header_value(json_t *v, char *out, size_t cap)
{
    char buf[40];
    size_t n = 0, i;
    json_t *one;
    const char *t = scalar_text(v, buf, sizeof(buf));
    if (t) {
        n = strlen(t);
        if (n >= cap)
            return 0;
        memcpy(out, t, n);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, one)
        {
            if (!(t = scalar_text(one, buf, sizeof(buf))))
                return 0;
            size_t l = strlen(t);
            if (n + l + 1 >= cap)
                return 0;
            if (i)
                out[n++] = ',';
            memcpy(out + n, t, l);
            n += l;
        }
    }
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)out[k] < 0x20 || out[k] == 0x7f)
            return 0;
    return n;
}

/* ---- the filter ---- */

static pc_filter_rc_e refuse(pc_req_t *r, pc_reply_e reply, const char *error, const char *why)
{
    /* RFC 6750's challenge, on the refusals it defines (never in dry-run
     * mode: the proxied response would carry it) */
    int challenge = reply == PC_REPLY_unauthorized ||
                    (reply == PC_REPLY_forbidden && strcmp(error, "insufficient_scope") == 0);
    if (challenge && !pc_req_dry_run(r)) {
        char h[200];
        int n = snprintf(h, sizeof(h),
                         "Bearer realm=\"portcullis\", error=\"%s\", error_description=\"%s\"",
                         error, why);
        if (pc_req_add_response_header(r, "WWW-Authenticate", pc_str_make(h, (size_t)n)) != 0)
            return PC_FILTER_ERROR;
    }
    return pc_req_block_as(r, reply, error, "jwt", why) ? PC_FILTER_RESPOND : PC_FILTER_CONTINUE;
}

pc_str_t pc_jwt_bearer(const pc_http_header_t *hdrs, uint32_t n, const char **why)
{
    const pc_http_header_t *h = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (hdrs[i].id != PC_HDR_AUTHORIZATION)
            continue;
        if (h) {
            *why = "several Authorization fields";
            return PC_STR_NULL;
        }
        h = &hdrs[i];
    }
    if (!h) {
        *why = "missing bearer token";
        return PC_STR_NULL;
    }
    pc_str_t v = h->value;
    if (v.n < 7 || !pc_str_ieq(pc_str_make(v.p, 7), PC_STR("Bearer "))) {
        *why = "not a bearer token";
        return PC_STR_NULL;
    }
    size_t i = 7;
    while (i < v.n && v.p[i] == ' ')
        i++;
    if (i == v.n) {
        *why = "missing bearer token";
        return PC_STR_NULL;
    }
    return pc_str_make(v.p + i, v.n - i);
}

/* Verifies tok (not in the cache); on success fills e (claims owned). */
static pc_filter_rc_e verify(pc_req_t *r, const pc_jwt_provider_conf_t *p, pc_str_t tok,
                             int64_t now_ms, centry_t *e)
{
    uint64_t gen = 0;
    pc_keyset_t *ks = p->keys;
    if (!ks) {
        ks = pc_jwks_src_keys(p->src, &gen);
        if (!ks) /* the control thread logs why */
            return refuse(r, PC_REPLY_service_unavailable, "jwks_unavailable", "JWKS unavailable");
    }
    pc_jws_t j;
    pc_jws_rc_e rc = pc_jws_verify(tok.p, tok.n, ks, p->alg_mask, &j);
    if (rc == PC_JWS_NO_KEY && j.kid && p->src)
        pc_jwks_src_unknown_kid(p->src);
    if (ks != p->keys)
        pc_keyset_unref(ks);
    if (rc == PC_JWS_INTERNAL) {
        pc_jws_clear(&j);
        return PC_FILTER_ERROR;
    }
    if (rc != PC_JWS_OK) {
        const char *why = j.why;
        pc_jws_clear(&j);
        return refuse(r, PC_REPLY_unauthorized, "invalid_token", why);
    }
    int64_t exp = 0;
    const char *why = check_claims(p, j.payload, now_ms / 1000, &exp);
    if (why) {
        pc_jws_clear(&j);
        return refuse(r, PC_REPLY_unauthorized, "invalid_token", why);
    }
    e->claims = j.payload;
    j.payload = NULL;
    pc_jws_clear(&j);
    e->keygen = gen;
    /* the first millisecond at which check_claims would say "expired": a
     * cached token is therefore never used past its exp, and nbf/iat,
     * checked once, only get truer with time */
    int64_t until = (exp + p->leeway / 1000 + 1) * 1000;
    e->until_ms = p->cache_ttl && now_ms + p->cache_ttl < until ? now_ms + p->cache_ttl : until;
    return PC_FILTER_CONTINUE;
}

static pc_filter_rc_e jwt_request(pc_req_t *r, const void *conf, void *state)
{
    const pc_route_auth_t *a = conf;
    const pc_jwt_provider_conf_t *p = a->provider;
    (void)state;
    const char *why = NULL;
    pc_str_t tok = pc_jwt_bearer(r->http.headers, r->http.nheaders, &why);
    if (!tok.p)
        return refuse(r, PC_REPLY_unauthorized, "invalid_token", why);
    if (tok.n > PC_JWT_MAX_LEN)
        return refuse(r, PC_REPLY_unauthorized, "invalid_token", "token too large");
    int64_t now_ms = pc_worker_now_ms(r->w);
    if (!cache && !(cache = calloc(CACHE_SLOTS, sizeof(*cache))))
        return PC_FILTER_ERROR;
    uint64_t h = pc_hash_keyed(tok.p, tok.n), pid = provider_id(r, p);
    centry_t *e = &cache[h & (CACHE_SLOTS - 1)];
    int hit = e->tok && e->hash == h && e->provider == pid && e->len == tok.n &&
              memcmp(e->tok, tok.p, tok.n) == 0 && now_ms < e->until_ms &&
              (!p->src || e->keygen == pc_jwks_src_generation(p->src));
    if (hit) { /* until_ms keeps it inside exp + leeway: no claim to check again */
        json_incref(e->claims);
        r->jwt_claims = e->claims;
    } else {
        centry_t n = {0};
        pc_filter_rc_e rc = verify(r, p, tok, now_ms, &n);
        if (!n.claims)
            return rc;            /* refused (or flagged in dry-run mode) */
        r->jwt_claims = n.claims; /* the reference verify took */
        e = p->cache_ttl && (n.tok = malloc(tok.n)) ? e : NULL;
        if (e) {
            memcpy(n.tok, tok.p, tok.n);
            n.len = tok.n;
            n.hash = h;
            n.provider = pid;
            n.revgen = UINT64_MAX; /* not checked yet */
            json_incref(n.claims);
            centry_clear(e);
            *e = n;
        }
    }
    json_t *c = r->jwt_claims;
    const char *sub = json_string_value(json_object_get(c, "sub"));
    if (sub) /* the access log's user, also when refused below */
        r->user = pc_arena_strndup(&r->arena, sub, strlen(sub) > 256 ? 256 : strlen(sub));
    if (p->revocation) {
        /* a "not revoked" stays good until the list changes */
        uint64_t g = pc_revoke_generation();
        const char *jti = json_string_value(json_object_get(c, "jti"));
        if (!e || e->revgen != g) {
            if (jti && pc_revoke_has(jti, strlen(jti))) {
                if (refuse(r, PC_REPLY_forbidden, "token_revoked", "token revoked") !=
                    PC_FILTER_CONTINUE)
                    return PC_FILTER_RESPOND;
            } else if (e) {
                e->revgen = g;
            }
        }
    }
    if ((why = check_require(a, c)) != NULL &&
        refuse(r, PC_REPLY_forbidden, "insufficient_scope", why) != PC_FILTER_CONTINUE)
        return PC_FILTER_RESPOND;
    char val[CLAIM_VALUE_MAX];
    for (size_t i = 0; i < p->n_forward_claims; i++) {
        json_t *v = json_object_get(c, p->forward_claims[i].claim);
        size_t n = v ? claim_header_value(v, val, sizeof(val)) : 0;
        if (n &&
            pc_req_add_request_header(r, p->forward_claims[i].header, pc_str_make(val, n)) != 0)
            return PC_FILTER_ERROR;
    }
    if (p->strip_token)
        for (uint32_t i = 0; i < r->http.nheaders; i++)
            if (r->http.headers[i].id == PC_HDR_AUTHORIZATION)
                r->http.headers[i].flags |= PC_HDR_F_DROP;
    return PC_FILTER_CONTINUE;
}

static void jwt_log(pc_req_t *r, const void *conf, void *state)
{
    (void)conf;
    (void)state;
    json_decref(r->jwt_claims);
    r->jwt_claims = NULL;
}

const pc_filter_ops_t pc_jwt_filter_ops = {
    .name = "jwt", .request_headers = jwt_request, .log = jwt_log};

/* ---- runtime ---- */

int pc_jwt_bind(pc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_jwt_providers; i++) {
        pc_jwt_provider_conf_t *p = &cfg->jwt_providers[i];
        if (p->jwks_url && !(p->src = pc_jwks_src_get(p->jwks_url, p->jwks_ca)))
            return -1;
    }
    return 0;
}

void pc_jwt_free_all(void)
{
    pc_jwks_free_all();
    pc_revoke_expire(INT64_MAX);
}

const char *pc_jwt_claim_text(pc_req_t *r, const char *name)
{
    json_t *v = r->jwt_claims ? json_object_get(r->jwt_claims, name) : NULL;
    char buf[40];
    const char *t = v ? scalar_text(v, buf, sizeof(buf)) : NULL;
    if (t)
        return pc_arena_strndup(&r->arena, t, strlen(t));
    char *js = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *out = js ? pc_arena_strndup(&r->arena, js, strlen(js)) : NULL;
    free(js);
    return out;
}
