/*
 * config_schema.c — every configuration key, in one place: the tables the
 * walker in config.c follows, the custom value parsers, and the checks that
 * span several keys. docs/configuration.md documents each row; a unit test
 * checks that it does.
 */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filters/builtin.h"
#include "http1.h"
#include "jose.h"
#include "jwt.h"
#include "plugin.h"
#include "filters/waf.h"
#include "ratelimit.h"
#include "tls.h"

#define KIB  ((int64_t)1 << 10)
#define MIB  ((int64_t)1 << 20)
#define GIB  ((int64_t)1 << 30)
#define SEC  1000
#define HOUR (3600 * SEC)

/* ---- custom values ---- */

/* HOST:PORT as written and resolved: every address key goes through here. */
static int hostport_into(pc_cctx_t *c, const pc_ynode_t *node, const char **address,
                         pc_sockaddr_t *addr)
{
    const char *v = pc_cfg_scalar(c, node, "an address (HOST:PORT)");
    char err[300];
    if (!v)
        return -1;
    if (pc_parse_hostport(v, addr, err, sizeof(err)) != 0) {
        pc_cfg_error(c, node, "%s", err);
        return -1;
    }
    *address = v;
    return 0;
}

static int custom_hostport(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    pc_server_conf_t *s = dst;
    return hostport_into(c, node, &s->address, &s->addr);
}

/* Stored at offset 0 of the listener: receives the whole listener. */
static int custom_listener_address(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    pc_listener_conf_t *l = dst;
    return hostport_into(c, node, &l->address, &l->addr);
}

static int custom_admin_address(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    pc_admin_conf_t *a = dst;
    return hostport_into(c, node, &a->address, &a->addr);
}

static int custom_workers(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    const char *v = pc_cfg_scalar(c, node, "'auto' or a number of threads");
    if (!v)
        return -1;
    uint64_t n;
    if (strcmp(v, "auto") == 0) {
        *(int64_t *)dst = 0;
        return 0;
    }
    if (pc_str_to_u64(pc_str_cstr(v), 1024, &n) != 0 || n < 1 || n > 256) {
        pc_cfg_error(c, node, "'%s' is not 'auto' or a number of threads (1 to 256)", v);
        return -1;
    }
    *(int64_t *)dst = (int64_t)n;
    return 0;
}

static int custom_cidr(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    const char *v = pc_cfg_scalar(c, node, "an IP address or CIDR block");
    char err[300];
    if (!v)
        return -1;
    if (pc_cidr_parse(v, dst, err, sizeof(err)) != 0) {
        pc_cfg_error(c, node, "%s", err);
        return -1;
    }
    return 0;
}

/* plugins[].config: kept as written; plugin.c expands and hands it over. */
static int custom_plugin_config(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    if (node->type != PC_Y_MAP) {
        pc_cfg_error(c, node, "expected a mapping of the plugin's settings");
        return -1;
    }
    *(const pc_ynode_t **)dst = node;
    return 0;
}

/* A map of scalars into an array of (key, value) string pairs
 * (pc_claim_header_t and pc_claim_value_t share that layout). */
static int custom_pairs(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    if (node->type != PC_Y_MAP) {
        pc_cfg_error(c, node, "expected a mapping of claim names to strings");
        return -1;
    }
    pc_claim_value_t *a = pc_arena_calloc(c->pool, (node->n + 1) * sizeof(*a));
    if (!a) {
        pc_cfg_error(c, node, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < node->n; i++) {
        size_t mark = pc_cfg_push_key(c, node->u.pairs[i].key);
        a[i].claim = node->u.pairs[i].key;
        a[i].value = pc_cfg_scalar(c, node->u.pairs[i].value, "a string");
        pc_cfg_pop(c, mark);
        if (!a[i].value)
            return -1;
    }
    *(pc_claim_value_t **)dst = a;
    *(size_t *)((char *)dst + sizeof(void *)) = node->n;
    return 0;
}

/* A space-separated string or a list of strings, into a list of words. */
static int custom_words(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    size_t nitems = node->type == PC_Y_SEQ ? node->n : 1, n = 0, cap = 0;
    const char **items = pc_arena_calloc(c->pool, (nitems + 1) * sizeof(*items));
    for (size_t i = 0; items && i < nitems; i++) {
        size_t mark = pc_cfg_push_index(c, i);
        items[i] = pc_cfg_scalar(c, node->type == PC_Y_SEQ ? node->u.items[i] : node, "a string");
        pc_cfg_pop(c, mark);
        if (!items[i])
            return -1;
        for (const char *p = items[i]; *p; p++)
            cap += *p != ' ' && (p == items[i] || p[-1] == ' ');
    }
    const char **words = items ? pc_arena_calloc(c->pool, (cap + 1) * sizeof(*words)) : NULL;
    if (!words) {
        pc_cfg_error(c, node, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nitems; i++) {
        for (const char *p = items[i]; *p;) {
            while (*p == ' ')
                p++;
            const char *s = p;
            while (*p && *p != ' ')
                p++;
            if (p > s)
                words[n++] = pc_arena_strndup(c->pool, s, (size_t)(p - s));
        }
    }
    if (!n) {
        pc_cfg_error(c, node, "expected at least one word");
        return -1;
    }
    *(const char ***)dst = words;
    *(size_t *)((char *)dst + sizeof(void *)) = n;
    return 0;
}

static const pc_cschema_t auth_schema;

/* A route's auth: "none", or a section naming a provider. */
static int custom_auth(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    if (node->type == PC_Y_SCALAR) {
        const char *v = pc_cfg_scalar(c, node, "none or an auth section");
        if (v && strcmp(v, "none") != 0)
            pc_cfg_error(c, node, "expected none or { jwt: PROVIDER, require: {...} }");
        return v ? 0 : -1;
    }
    pc_route_auth_t *a = pc_arena_calloc(c->pool, sizeof(*a));
    if (!a) {
        pc_cfg_error(c, node, "out of memory");
        return -1;
    }
    pc_cfg_walk(c, &auth_schema, node, a);
    *(pc_route_auth_t **)dst = a;
    return 0;
}

/* For keys the loader handles before the walk (stages). */
static int custom_handled_before(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    (void)c;
    (void)node;
    (void)dst;
    return 0;
}

/* ---- tables ---- */
/* clang-format off */

#define STR(name, type, field, def, what) \
    {name, PC_CT_STR, 0, offsetof(type, field), def, 0, 0, NULL, NULL, 0, what}
#define NUM(name, ct, type, field, def, lo, hi, what) \
    {name, ct, 0, offsetof(type, field), def, lo, hi, NULL, NULL, 0, what}
/* a list element: a nested section, or a custom value of a given size */
#define ELEM_STRUCT(schema, what) {"", PC_CT_STRUCT, 0, 0, NULL, 0, 0, schema, NULL, 0, what}
#define ELEM_CUSTOM(fn, size, what) {"", PC_CT_CUSTOM, 0, 0, NULL, 0, 0, NULL, fn, size, what}
#define END {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL}

static const pc_ckey_t limits_keys[] = {
    NUM("max_uri", PC_CT_SIZE, pc_limits_conf_t, max_uri, "8KiB", 64, 1 * MIB, "a size"),
    NUM("max_header_bytes", PC_CT_SIZE, pc_limits_conf_t, max_header_bytes, "32KiB", 256, 1 * MIB,
        "a size"),
    NUM("max_headers", PC_CT_INT, pc_limits_conf_t, max_headers, "100", 1, 1000, "an integer"),
    NUM("max_body", PC_CT_SIZE, pc_limits_conf_t, max_body, "10MiB", 0, (int64_t)1 << 50, "a size"),
    NUM("header_timeout", PC_CT_DURATION, pc_limits_conf_t, header_timeout, "10s", 1, HOUR,
        "a duration"),
    NUM("body_timeout", PC_CT_DURATION, pc_limits_conf_t, body_timeout, "30s", 1, HOUR,
        "a duration"),
    NUM("idle_timeout", PC_CT_DURATION, pc_limits_conf_t, idle_timeout, "60s", 1, HOUR,
        "a duration"),
    NUM("max_connections", PC_CT_INT, pc_limits_conf_t, max_connections, "10000", 1, 1000000,
        "an integer"),
    NUM("max_connections_per_ip", PC_CT_INT, pc_limits_conf_t, max_connections_per_ip, "256", 1,
        1000000, "an integer"),
    {"min_body_rate", PC_CT_SIZE_RATE, 0, offsetof(pc_limits_conf_t, min_body_rate), "1KiB/10s", 0,
     0, NULL, NULL, 0, "a rate of bytes (SIZE/DURATION, e.g. 1KiB/10s)"},
    END};
static const pc_cschema_t limits_schema = {limits_keys, sizeof(pc_limits_conf_t), NULL};

static void check_tls(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
static const pc_ckey_t tls_cert_keys[] = {
    {"cert", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_tls_cert_conf_t, cert), NULL, 0, 0, NULL, NULL,
     0, "a certificate file (PEM, chain after the leaf)"},
    {"key", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_tls_cert_conf_t, key), NULL, 0, 0, NULL, NULL, 0,
     "a private key file (PEM)"},
    END};
static const pc_cschema_t tls_cert_schema = {tls_cert_keys, sizeof(pc_tls_cert_conf_t), NULL};
static const pc_ckey_t tls_cert_elem = ELEM_STRUCT(&tls_cert_schema, "a certificate and its key");
static const char *const protocol_names[] = {"TLSv1.2", "TLSv1.3", NULL};
static const pc_ckey_t protocol_elem = {"", PC_CT_ENUM, 0, 0, NULL, 0, 0, protocol_names, NULL, 0,
                                        "a protocol"};
static const pc_ckey_t tls_keys[] = {
    {"certificates", PC_CT_LIST, PC_K_REQUIRED | PC_K_NONEMPTY,
     offsetof(pc_listener_tls_conf_t, certificates), NULL, 0, 0, &tls_cert_elem, NULL, 0,
     "a list of certificates"},
    {"protocols", PC_CT_LIST, PC_K_NONEMPTY, offsetof(pc_listener_tls_conf_t, protocols), NULL, 0,
     0, &protocol_elem, NULL, 0, "a list of protocols"},
    STR("ciphers", pc_listener_tls_conf_t, ciphers, NULL, "an OpenSSL cipher list"),
    STR("client_ca", pc_listener_tls_conf_t, client_ca, NULL, "a CA bundle file (PEM)"),
    {"forward_client_cert", PC_CT_BOOL, 0, offsetof(pc_listener_tls_conf_t, forward_client_cert),
     "true", 0, 0, NULL, NULL, 0, "a boolean"},
    END};
static const pc_cschema_t tls_schema = {tls_keys, sizeof(pc_listener_tls_conf_t), check_tls};

static const pc_ckey_t listener_keys[] = {
    STR("name", pc_listener_conf_t, name, NULL, "a name"),
    {"address", PC_CT_CUSTOM, PC_K_REQUIRED, 0, NULL, 0, 0, NULL, custom_listener_address, 0,
     "an address (HOST:PORT)"},
    {"tls", PC_CT_OPTIONAL, 0, offsetof(pc_listener_conf_t, tls), NULL, 0, 0, &tls_schema, NULL, 0,
     "a TLS section"},
    END};
static const pc_cschema_t listener_schema = {listener_keys, sizeof(pc_listener_conf_t), NULL};
static const pc_ckey_t listener_elem = ELEM_STRUCT(&listener_schema, "a listener");

static const char *const balance_names[] = {"round_robin", "least_conn", NULL};
static const pc_ckey_t health_check_keys[] = {
    {"path", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_health_check_conf_t, path), NULL, 0, 0, NULL,
     NULL, 0, "a path starting with /"},
    NUM("interval", PC_CT_DURATION, pc_health_check_conf_t, interval, "5s", 100, HOUR, "a duration"),
    NUM("timeout", PC_CT_DURATION, pc_health_check_conf_t, timeout, "2s", 1, HOUR, "a duration"),
    NUM("healthy_threshold", PC_CT_INT, pc_health_check_conf_t, healthy_threshold, "2", 1, 100,
        "an integer"),
    NUM("unhealthy_threshold", PC_CT_INT, pc_health_check_conf_t, unhealthy_threshold, "2", 1, 100,
        "an integer"),
    END};
static void check_health_check(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
static const pc_cschema_t health_check_schema = {health_check_keys, sizeof(pc_health_check_conf_t),
                                                 check_health_check};
static const pc_ckey_t breaker_keys[] = {
    NUM("failures", PC_CT_INT, pc_breaker_conf_t, failures, "5", 1, 100000, "an integer"),
    NUM("cooldown", PC_CT_DURATION, pc_breaker_conf_t, cooldown, "30s", 1, HOUR, "a duration"),
    END};
static const pc_cschema_t breaker_schema = {breaker_keys, sizeof(pc_breaker_conf_t), NULL};
static const pc_ckey_t server_elem = ELEM_CUSTOM(custom_hostport, sizeof(pc_server_conf_t),
                                                "an address (HOST:PORT)");
static const pc_ckey_t upstream_keys[] = {
    {"servers", PC_CT_LIST, PC_K_REQUIRED | PC_K_NONEMPTY, offsetof(pc_upstream_conf_t, servers),
     NULL, 0, 0, &server_elem, NULL, 0, "a list of addresses"},
    {"balance", PC_CT_ENUM, 0, offsetof(pc_upstream_conf_t, balance), "round_robin", 0, 0,
     balance_names, NULL, 0, "a balancing method"},
    NUM("keepalive", PC_CT_INT, pc_upstream_conf_t, keepalive, "64", 0, 10000, "an integer"),
    NUM("keepalive_timeout", PC_CT_DURATION, pc_upstream_conf_t, keepalive_timeout, "60s", 1, HOUR,
        "a duration"),
    NUM("connect_timeout", PC_CT_DURATION, pc_upstream_conf_t, connect_timeout, "2s", 1, HOUR,
        "a duration"),
    NUM("response_timeout", PC_CT_DURATION, pc_upstream_conf_t, response_timeout, "30s", 1,
        24 * HOUR, "a duration"),
    {"health_check", PC_CT_OPTIONAL, 0, offsetof(pc_upstream_conf_t, health_check), NULL, 0, 0,
     &health_check_schema, NULL, 0, "a health-check section"},
    {"circuit_breaker", PC_CT_OPTIONAL, 0, offsetof(pc_upstream_conf_t, circuit_breaker), NULL, 0,
     0, &breaker_schema, NULL, 0, "a circuit-breaker section"},
    END};
static const pc_cschema_t upstream_schema = {upstream_keys, sizeof(pc_upstream_conf_t), NULL};

static const pc_ckey_t str_elem = {"", PC_CT_STR, 0, 0, NULL, 0, 0, NULL, NULL, 0, "a string"};
static void check_match(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
static const pc_ckey_t match_keys[] = {
    STR("host", pc_route_match_t, host, NULL, "a host name"),
    STR("path_prefix", pc_route_match_t, path_prefix, NULL, "a path prefix"),
    STR("path", pc_route_match_t, path, NULL, "a path"),
    {"methods", PC_CT_LIST, PC_K_NONEMPTY, offsetof(pc_route_match_t, methods), NULL, 0, 0,
     &str_elem, NULL, 0, "a list of methods"},
    END};
static const pc_cschema_t match_schema = {match_keys, sizeof(pc_route_match_t), check_match};

static const pc_ckey_t cidr_elem = ELEM_CUSTOM(custom_cidr, sizeof(pc_cidr_range_t),
                                              "an IP address or CIDR block");
static const pc_ckey_t ip_rules_keys[] = {
    {"allow", PC_CT_LIST, 0, offsetof(pc_ip_rules_conf_t, allow), NULL, 0, 0, &cidr_elem, NULL, 0,
     "a list of CIDR blocks"},
    {"deny", PC_CT_LIST, 0, offsetof(pc_ip_rules_conf_t, deny), NULL, 0, 0, &cidr_elem, NULL, 0,
     "a list of CIDR blocks"},
    END};
static const pc_cschema_t ip_rules_schema = {ip_rules_keys, sizeof(pc_ip_rules_conf_t), NULL};

/* Global security headers have defaults; a route's have none (absent keys
 * inherit). The same fields either way. */
#define SECHDR_KEYS(d_hsts, d_cto, d_fo, d_rp, d_csp)                                                        \
    STR("hsts", pc_sechdr_conf_t, hsts, d_hsts, "a header value or off"),                            \
    STR("content_type_options", pc_sechdr_conf_t, content_type_options, d_cto,                       \
        "a header value or off"),                                                                  \
    STR("frame_options", pc_sechdr_conf_t, frame_options, d_fo, "a header value or off"),            \
    STR("referrer_policy", pc_sechdr_conf_t, referrer_policy, d_rp, "a header value or off"),        \
    STR("content_security_policy", pc_sechdr_conf_t, content_security_policy, d_csp,                 \
        "a header value or off"),                                                                  \
    {"remove", PC_CT_LIST, 0, offsetof(pc_sechdr_conf_t, remove), NULL, 0, 0, &str_elem, NULL, 0,  \
     "a list of header names"}
static const pc_ckey_t sechdr_keys[] = {
    SECHDR_KEYS("max-age=31536000; includeSubDomains", "nosniff", "DENY", "no-referrer",
                "default-src 'none'; frame-ancestors 'none'"),
    END};
static const pc_cschema_t sechdr_schema = {sechdr_keys, sizeof(pc_sechdr_conf_t), NULL};
static const pc_ckey_t route_sechdr_keys[] = {SECHDR_KEYS(NULL, NULL, NULL, NULL, NULL), END};
static const pc_cschema_t route_sechdr_schema = {route_sechdr_keys, sizeof(pc_sechdr_conf_t),
                                                 NULL};

static const pc_ckey_t cors_keys[] = {
    {"origins", PC_CT_LIST, PC_K_REQUIRED | PC_K_NONEMPTY, offsetof(pc_cors_conf_t, origins), NULL,
     0, 0, &str_elem, NULL, 0, "a list of origins"},
    {"methods", PC_CT_LIST, PC_K_NONEMPTY, offsetof(pc_cors_conf_t, methods), NULL, 0, 0,
     &str_elem, NULL, 0, "a list of methods"},
    {"headers", PC_CT_LIST, 0, offsetof(pc_cors_conf_t, headers), NULL, 0, 0, &str_elem, NULL, 0,
     "a list of header names"},
    {"expose", PC_CT_LIST, 0, offsetof(pc_cors_conf_t, expose), NULL, 0, 0, &str_elem, NULL, 0,
     "a list of header names"},
    {"credentials", PC_CT_BOOL, 0, offsetof(pc_cors_conf_t, credentials), "false", 0, 0, NULL,
     NULL, 0, "a boolean"},
    NUM("max_age", PC_CT_DURATION, pc_cors_conf_t, max_age, NULL, 0, 24 * HOUR, "a duration"),
    END};
static void check_cors(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
static const pc_cschema_t cors_schema = {cors_keys, sizeof(pc_cors_conf_t), check_cors};

static const char *const jws_alg_names[] = {
#define X(id, name, fam, md, crv, group, size) name,
    PC_JWS_ALGS(X)
#undef X
    NULL};
static const pc_ckey_t jws_alg_elem = {"", PC_CT_ENUM, 0, 0, NULL, 0, 0, jws_alg_names, NULL, 0,
                                       "an algorithm"};
static const pc_ckey_t provider_keys[] = {
    STR("issuer", pc_jwt_provider_conf_t, issuer, NULL, "the issuer (iss) tokens must carry"),
    {"audiences", PC_CT_LIST, PC_K_NONEMPTY, offsetof(pc_jwt_provider_conf_t, audiences), NULL, 0,
     0, &str_elem, NULL, 0, "a list of audiences"},
    {"algorithms", PC_CT_LIST, PC_K_NONEMPTY, offsetof(pc_jwt_provider_conf_t, algorithms), NULL,
     0, 0, &jws_alg_elem, NULL, 0, "a list of algorithms"},
    STR("jwks_file", pc_jwt_provider_conf_t, jwks_file, NULL, "a JWKS file"),
    STR("jwks_url", pc_jwt_provider_conf_t, jwks_url, NULL, "an http:// or https:// URL"),
    STR("jwks_ca", pc_jwt_provider_conf_t, jwks_ca, NULL, "a CA bundle file (PEM)"),
    STR("secret", pc_jwt_provider_conf_t, secret, NULL, "a shared secret (HS256/384/512)"),
    NUM("jwks_refresh", PC_CT_DURATION, pc_jwt_provider_conf_t, jwks_refresh, "10m", 1 * SEC,
        24 * HOUR, "a duration"),
    NUM("leeway", PC_CT_DURATION, pc_jwt_provider_conf_t, leeway, "30s", 0, 600 * SEC,
        "a duration"),
    NUM("cache_ttl", PC_CT_DURATION, pc_jwt_provider_conf_t, cache_ttl, "60s", 0, HOUR,
        "a duration"),
    {"forward_claims", PC_CT_CUSTOM, 0, offsetof(pc_jwt_provider_conf_t, forward_claims), NULL, 0,
     0, NULL, custom_pairs, 0, "a mapping of claim names to header names"},
    {"revocation", PC_CT_BOOL, 0, offsetof(pc_jwt_provider_conf_t, revocation), "false", 0, 0,
     NULL, NULL, 0, "a boolean"},
    {"strip_token", PC_CT_BOOL, 0, offsetof(pc_jwt_provider_conf_t, strip_token), "false", 0, 0,
     NULL, NULL, 0, "a boolean"},
    END};
static const pc_cschema_t provider_schema = {provider_keys, sizeof(pc_jwt_provider_conf_t),
                                             pc_jwt_check_provider};
/* jwt: its one key is stored relative to the whole configuration */
static const pc_ckey_t jwt_keys[] = {
    {"providers", PC_CT_NAMED, PC_K_NONEMPTY, offsetof(pc_config_t, jwt_providers), NULL, 0, 0,
     &provider_schema, NULL, 0, "a map of JWT providers"},
    END};
static const pc_cschema_t jwt_schema = {jwt_keys, 0, NULL};

static const pc_ckey_t require_keys[] = {
    {"scope", PC_CT_CUSTOM, 0, offsetof(pc_route_auth_t, require.scope), NULL, 0, 0, NULL,
     custom_words, 0, "scopes (a space-separated string or a list), all required"},
    {"groups", PC_CT_CUSTOM, 0, offsetof(pc_route_auth_t, require.groups), NULL, 0, 0, NULL,
     custom_words, 0, "groups (a list), any one required"},
    {"claims", PC_CT_CUSTOM, 0, offsetof(pc_route_auth_t, require.claims), NULL, 0, 0, NULL,
     custom_pairs, 0, "a mapping of claim names to required values"},
    END};
/* stored relative to the auth struct */
static const pc_cschema_t require_schema = {require_keys, 0, NULL};
static const pc_ckey_t auth_keys[] = {
    {"jwt", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_route_auth_t, jwt), NULL, 0, 0, NULL, NULL, 0,
     "a JWT provider name"},
    {"require", PC_CT_STRUCT, 0, 0, NULL, 0, 0, &require_schema, NULL, 0, "a require section"},
    END};
static const pc_cschema_t auth_schema = {auth_keys, sizeof(pc_route_auth_t), NULL};

static const char *const waf_mode_names[] = {"block", "detect", "off", NULL};
static const char *const waf_over_names[] = {"reject", "pass", NULL};
static const pc_ckey_t waf_keys[] = {
    {"mode", PC_CT_ENUM, 0, offsetof(pc_waf_conf_t, mode), "block", 0, 0, waf_mode_names, NULL, 0,
     "block, detect or off"},
    {"rules", PC_CT_LIST, 0, offsetof(pc_waf_conf_t, rules), NULL, 0, 0, &str_elem, NULL, 0,
     "a list of rule files or globs"},
    NUM("paranoia_level", PC_CT_INT, pc_waf_conf_t, paranoia_level, "1", 1, 4, "1 to 4"),
    NUM("anomaly_threshold", PC_CT_INT, pc_waf_conf_t, anomaly_threshold, "5", 1, 1000000,
        "a positive integer"),
    NUM("body_inspect_limit", PC_CT_SIZE, pc_waf_conf_t, body_inspect_limit, "1MiB", 1,
        (int64_t)1 << 30, "a size"),
    {"on_body_over_limit", PC_CT_ENUM, 0, offsetof(pc_waf_conf_t, on_body_over_limit), "reject", 0,
     0, waf_over_names, NULL, 0, "reject or pass"},
    END};
static const pc_cschema_t waf_schema = {waf_keys, sizeof(pc_waf_conf_t), NULL};
static const pc_ckey_t route_waf_keys[] = {
    {"mode", PC_CT_ENUM, 0, offsetof(pc_route_waf_t, mode), NULL, 0, 0, waf_mode_names, NULL, 0,
     "block, detect or off"},
    {"exclude_rules", PC_CT_LIST, 0, offsetof(pc_route_waf_t, exclude_rules), NULL, 0, 0, &str_elem,
     NULL, 0, "a list of rule ids or ranges (942100-942199)"},
    {"exclude_targets", PC_CT_LIST, 0, offsetof(pc_route_waf_t, exclude_targets), NULL, 0, 0,
     &str_elem, NULL, 0, "a list of [RULE_ID:]TARGET (e.g. 942430:ARGS:sort)"},
    END};
static const pc_cschema_t route_waf_schema = {route_waf_keys, sizeof(pc_route_waf_t), NULL};

static const pc_ckey_t route_keys[] = {
    STR("name", pc_route_conf_t, name, NULL, "a name"),
    {"match", PC_CT_STRUCT, PC_K_REQUIRED, offsetof(pc_route_conf_t, match), NULL, 0, 0,
     &match_schema, NULL, 0, "a match section"},
    {"upstream", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_route_conf_t, upstream), NULL, 0, 0, NULL,
     NULL, 0, "an upstream name"},
    {"limits", PC_CT_OPTIONAL, 0, offsetof(pc_route_conf_t, limits_set), NULL, 0, 0,
     &limits_schema, NULL, 0, "a limits section"},
    {"ip_rules", PC_CT_OPTIONAL, 0, offsetof(pc_route_conf_t, ip_rules), NULL, 0, 0,
     &ip_rules_schema, NULL, 0, "an ip_rules section"},
    STR("cors", pc_route_conf_t, cors, NULL, "a CORS policy name"),
    {"security_headers", PC_CT_OPTIONAL, 0, offsetof(pc_route_conf_t, security_headers_set), NULL,
     0, 0, &route_sechdr_schema, NULL, 0, "a security_headers section"},
    {"dry_run", PC_CT_BOOL, 0, offsetof(pc_route_conf_t, dry_run), "false", 0, 0, NULL, NULL, 0,
     "a boolean"},
    {"plugins", PC_CT_LIST, 0, offsetof(pc_route_conf_t, plugins), NULL, 0, 0, &str_elem, NULL, 0,
     "a list of plugin names"},
    {"auth", PC_CT_CUSTOM, 0, offsetof(pc_route_conf_t, auth), NULL, 0, 0, NULL, custom_auth, 0,
     "none or { jwt: PROVIDER, require: {...} }"},
    {"rate_limits", PC_CT_LIST, 0, offsetof(pc_route_conf_t, rate_limits), NULL, 0, 0, &str_elem,
     NULL, 0, "a list of rate-limit policy names"},
    {"waf", PC_CT_OPTIONAL, 0, offsetof(pc_route_conf_t, waf_set), NULL, 0, 0, &route_waf_schema,
     NULL, 0, "a waf section"},
#ifdef PC_TESTING
    NUM("test_suspend", PC_CT_DURATION, pc_route_conf_t, test_suspend, NULL, 0, HOUR, "a duration"),
    NUM("test_respond", PC_CT_INT, pc_route_conf_t, test_respond, NULL, 0, 599, "a status"),
#endif
    END};
static const pc_cschema_t route_schema = {route_keys, sizeof(pc_route_conf_t), NULL};
static const pc_ckey_t route_elem = ELEM_STRUCT(&route_schema, "a route");

static const char *const format_names[] = {"json", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const pc_ckey_t access_keys[] = {
    STR("path", pc_logging_conf_t, access.path, "stdout", "a path, stdout, stderr or off"),
    {"format", PC_CT_ENUM, 0, offsetof(pc_logging_conf_t, access.format), "json", 0, 0,
     format_names, NULL, 0, "a log format"},
    END};
static const pc_ckey_t security_keys[] = {
    STR("path", pc_logging_conf_t, security.path, "stderr", "a path, stdout, stderr or off"), END};
static const pc_ckey_t error_keys[] = {
    STR("path", pc_logging_conf_t, error.path, "stderr", "a path, stdout, stderr or off"),
    {"level", PC_CT_ENUM, 0, offsetof(pc_logging_conf_t, error.level), "info", 0, 0, level_names,
     NULL, 0, "a log level"},
    END};
/* Sub-sections store their fields relative to the whole logging struct, so
 * they are walked with a base of the logging struct (offset 0). */
static const pc_cschema_t access_schema = {access_keys, 0, NULL};
static const pc_cschema_t security_schema = {security_keys, 0, NULL};
static const pc_cschema_t error_schema = {error_keys, 0, NULL};
static const pc_ckey_t logging_keys[] = {
    {"access", PC_CT_STRUCT, 0, 0, NULL, 0, 0, &access_schema, NULL, 0, "a section"},
    {"security", PC_CT_STRUCT, 0, 0, NULL, 0, 0, &security_schema, NULL, 0, "a section"},
    {"error", PC_CT_STRUCT, 0, 0, NULL, 0, 0, &error_schema, NULL, 0, "a section"},
    END};
static const pc_cschema_t logging_schema = {logging_keys, sizeof(pc_logging_conf_t), NULL};

static const pc_ckey_t admin_keys[] = {
    {"address", PC_CT_CUSTOM, PC_K_REQUIRED, 0, NULL, 0, 0, NULL, custom_admin_address, 0,
     "an address (HOST:PORT)"},
    STR("token", pc_admin_conf_t, token, NULL, "a bearer token"),
    END};
static const pc_cschema_t admin_schema = {admin_keys, sizeof(pc_admin_conf_t), NULL};

static const char *const on_failure_names[] = {"fail_open", "fail_closed", "local", NULL};

static int custom_redis_address(pc_cctx_t *c, const pc_ynode_t *node, void *dst)
{
    pc_redis_conf_t *r = dst;
    return hostport_into(c, node, &r->address, &r->addr);
}

static const pc_ckey_t redis_keys[] = {
    {"address", PC_CT_CUSTOM, PC_K_REQUIRED, 0, NULL, 0, 0, NULL, custom_redis_address, 0,
     "an address (HOST:PORT)"},
    NUM("timeout", PC_CT_DURATION, pc_redis_conf_t, timeout, "50ms", 1, 60 * SEC, "a duration"),
    {"on_failure", PC_CT_ENUM, 0, offsetof(pc_redis_conf_t, on_failure), "fail_open", 0, 0,
     on_failure_names, NULL, 0, "a failure mode"},
    END};
static const pc_cschema_t redis_schema = {redis_keys, sizeof(pc_redis_conf_t), NULL};

static const pc_ckey_t rl_policy_keys[] = {
    {"key", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_rl_policy_conf_t, key), NULL, 0, 0, NULL, NULL, 0,
     "ip, claim:NAME, header:NAME, route, or a +-joined combination"},
    {"rate", PC_CT_RATE, PC_K_REQUIRED, offsetof(pc_rl_policy_conf_t, rate), NULL, 0, 0, NULL, NULL,
     0, "a rate (N/DURATION, e.g. 100/15m)"},
    NUM("burst", PC_CT_INT, pc_rl_policy_conf_t, burst, "0", 0, 1000000, "an integer"),
    {"headers", PC_CT_BOOL, 0, offsetof(pc_rl_policy_conf_t, headers), "false", 0, 0, NULL, NULL, 0,
     "a boolean"},
    {"on_failure", PC_CT_ENUM, 0, offsetof(pc_rl_policy_conf_t, fail_mode), NULL, 0, 0,
     on_failure_names, NULL, 0, "a failure mode"},
    END};
static const pc_cschema_t rl_policy_schema = {rl_policy_keys, sizeof(pc_rl_policy_conf_t),
                                              pc_rl_check_policy};

static const pc_ckey_t plugin_keys[] = {
    {"path", PC_CT_STR, PC_K_REQUIRED, offsetof(pc_plugin_conf_t, path), NULL, 0, 0, NULL, NULL, 0,
     "a plugin file (.so)"},
    {"config", PC_CT_CUSTOM, 0, offsetof(pc_plugin_conf_t, config), NULL, 0, 0, NULL,
     custom_plugin_config, 0, "a mapping of the plugin's settings"},
    END};
static const pc_cschema_t plugin_schema = {plugin_keys, sizeof(pc_plugin_conf_t), NULL};
static const pc_ckey_t plugin_elem = ELEM_STRUCT(&plugin_schema, "a plugin");

static const pc_ckey_t root_keys[] = {
    STR("stage", pc_config_t, stage, NULL, "a stage name"),
    {"workers", PC_CT_CUSTOM, 0, offsetof(pc_config_t, workers), NULL, 0, 0, NULL, custom_workers,
     0, "'auto' or a number"},
    NUM("shutdown_timeout", PC_CT_DURATION, pc_config_t, shutdown_timeout, "30s", 0, HOUR,
        "a duration"),
    {"listeners", PC_CT_LIST, PC_K_REQUIRED | PC_K_NONEMPTY, offsetof(pc_config_t, listeners), NULL,
     0, 0, &listener_elem, NULL, 0, "a list of listeners"},
    {"limits", PC_CT_STRUCT, 0, offsetof(pc_config_t, limits), NULL, 0, 0, &limits_schema, NULL, 0,
     "a section"},
    {"trusted_proxies", PC_CT_LIST, 0, offsetof(pc_config_t, trusted_proxies), NULL, 0, 0,
     &cidr_elem, NULL, 0, "a list of CIDR blocks"},
    {"upstreams", PC_CT_NAMED, PC_K_REQUIRED | PC_K_NONEMPTY, offsetof(pc_config_t, upstreams),
     NULL, 0, 0, &upstream_schema, NULL, 0, "a map of upstreams"},
    {"routes", PC_CT_LIST, PC_K_REQUIRED | PC_K_NONEMPTY, offsetof(pc_config_t, routes), NULL, 0, 0,
     &route_elem, NULL, 0, "a list of routes"},
    {"logging", PC_CT_STRUCT, 0, offsetof(pc_config_t, logging), NULL, 0, 0, &logging_schema, NULL,
     0, "a section"},
    {"admin", PC_CT_OPTIONAL, 0, offsetof(pc_config_t, admin), NULL, 0, 0, &admin_schema, NULL, 0,
     "an admin section"},
    {"ip_rules", PC_CT_OPTIONAL, 0, offsetof(pc_config_t, ip_rules), NULL, 0, 0, &ip_rules_schema,
     NULL, 0, "an ip_rules section"},
    {"redis", PC_CT_OPTIONAL, 0, offsetof(pc_config_t, redis), NULL, 0, 0, &redis_schema, NULL, 0,
     "a redis section"},
    {"cors", PC_CT_NAMED, 0, offsetof(pc_config_t, cors), NULL, 0, 0, &cors_schema, NULL, 0,
     "a map of CORS policies"},
    {"security_headers", PC_CT_STRUCT, 0, offsetof(pc_config_t, security_headers), NULL, 0, 0,
     &sechdr_schema, NULL, 0, "a section"},
    {"plugins", PC_CT_LIST, 0, offsetof(pc_config_t, plugins), NULL, 0, 0, &plugin_elem, NULL, 0,
     "a list of plugins"},
    {"jwt", PC_CT_STRUCT, 0, 0, NULL, 0, 0, &jwt_schema, NULL, 0, "a jwt section"},
    {"rate_limits", PC_CT_NAMED, 0, offsetof(pc_config_t, rate_limits), NULL, 0, 0,
     &rl_policy_schema, NULL, 0, "a map of rate-limit policies"},
    {"waf", PC_CT_STRUCT, 0, offsetof(pc_config_t, waf), NULL, 0, 0, &waf_schema, NULL, 0,
     "a waf section"},
    /* handled before the walk (config.c apply_stage); listed so it is known */
    {"stages", PC_CT_CUSTOM, 0, 0, NULL, 0, 0, NULL, custom_handled_before, 0, "a map of stages"},
    END};

const pc_cschema_t pc_root_schema = {root_keys, sizeof(pc_config_t), NULL};

/* clang-format on */

/* ---- checks ---- */

static void check_health_check(pc_cctx_t *c, const pc_ynode_t *node, void *obj)
{
    const pc_health_check_conf_t *h = obj;
    if (h->path && (h->path[0] != '/' || strpbrk(h->path, " \t\r\n"))) {
        size_t mark = pc_cfg_push_key(c, "path");
        pc_cfg_error(c, pc_ymap_get(node, "path"), "expected a path starting with / (no spaces)");
        pc_cfg_pop(c, mark);
    }
}

/* Builds the listener's TLS contexts now, so that -t and a reload see every
 * certificate problem (with the line of its entry). */
static void check_tls(pc_cctx_t *c, const pc_ynode_t *node, void *obj)
{
    pc_listener_tls_conf_t *t = obj;
    const pc_ynode_t *certs = pc_ymap_get(node, "certificates");
    const pc_ynode_t *ca = pc_ymap_get(node, "client_ca");
    const pc_ynode_t *ciphers = pc_ymap_get(node, "ciphers");
    pc_tls_pair_t *pairs = pc_arena_calloc(c->pool, (t->n_certificates + 1) * sizeof(*pairs));
    pc_tls_conf_t tc = {0};
    tc.pairs = pairs;
    tc.npairs = t->n_certificates;
    tc.ciphers = t->ciphers;
    tc.ciphers_line = ciphers ? ciphers->line : 0;
    tc.client_ca = t->client_ca;
    tc.client_ca_line = ca ? ca->line : 0;
    tc.forward_client_cert = (int)t->forward_client_cert;
    if (!pairs)
        return;
    for (size_t i = 0; i < t->n_certificates; i++) {
        if (!t->certificates[i].cert || !t->certificates[i].key)
            return; /* already reported */
        pairs[i].cert = t->certificates[i].cert;
        pairs[i].key = t->certificates[i].key;
        pairs[i].line =
            certs && certs->type == PC_Y_SEQ && i < certs->n ? certs->u.items[i]->line : node->line;
    }
    for (size_t i = 0; i < t->n_protocols; i++)
        tc.protocols |= t->protocols[i] == 0 ? PC_TLS_V12 : PC_TLS_V13;
    if (!tc.protocols)
        tc.protocols = PC_TLS_V12 | PC_TLS_V13;
    t->tls = pc_tls_new(&tc, c->file, c->path, c->errs);
}

static int valid_route_host(const char *h)
{
    const char *p = h;
    if (p[0] == '*') {
        if (p[1] != '.' || !p[2])
            return 0;
        p += 2;
    }
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
              *p == '_'))
            return 0;
    return 1;
}

static void check_match(pc_cctx_t *c, const pc_ynode_t *node, void *obj)
{
    pc_route_match_t *m = obj;
    if (m->host) {
        char *h = pc_arena_strndup(c->pool, m->host, strlen(m->host));
        for (char *p = h; p && *p; p++)
            *p = (char)pc_lower((unsigned char)*p);
        size_t hl = h ? strlen(h) : 0;
        if (hl > 1 && h[hl - 1] == '.')
            h[hl - 1] = '\0'; /* a Host value loses its final dot too (pc_route_host_part) */
        size_t mark = pc_cfg_push_key(c, "host");
        if (!h || !valid_route_host(h))
            pc_cfg_error(c, pc_ymap_get(node, "host"),
                         "'%s' is not a host name or '*.domain' wildcard (no port, no scheme)",
                         m->host);
        pc_cfg_pop(c, mark);
        m->host = h;
    }
    if (m->path_prefix && m->path) {
        pc_cfg_error(c, pc_ymap_get(node, "path"), "use either path or path_prefix, not both");
    }
    const char *keys[2] = {"path_prefix", "path"};
    const char *vals[2] = {m->path_prefix, m->path};
    for (int i = 0; i < 2; i++) {
        if (!vals[i])
            continue;
        char norm[4096];
        size_t nl;
        int rc = 0;
        size_t mark = pc_cfg_push_key(c, keys[i]);
        if (vals[i][0] != '/')
            pc_cfg_error(c, pc_ymap_get(node, keys[i]), "'%s' must start with '/'", vals[i]);
        else if (strlen(vals[i]) >= sizeof(norm))
            pc_cfg_error(c, pc_ymap_get(node, keys[i]), "'%s' is too long", vals[i]);
        else if ((rc = pc_http_normalize_path(pc_str_cstr(vals[i]), norm, &nl)) != 0)
            pc_cfg_error(c, pc_ymap_get(node, keys[i]), "'%s' is not a valid path (%s)", vals[i],
                         pc_http_err_detail(rc));
        else if (nl != strlen(vals[i]) || memcmp(norm, vals[i], nl) != 0)
            /* requests are matched after normalisation, so this could never match */
            pc_cfg_error(c, pc_ymap_get(node, keys[i]),
                         "'%s' is not in normal form (requests are matched as '%.*s')", vals[i],
                         (int)nl, norm);
        pc_cfg_pop(c, mark);
    }
    static const char *const known[] = {"GET",     "HEAD",  "POST",  "PUT",    "DELETE",
                                        "OPTIONS", "PATCH", "TRACE", "CONNECT"};
    static const int ids[] = {PC_M_GET,     PC_M_HEAD,  PC_M_POST,  PC_M_PUT,    PC_M_DELETE,
                              PC_M_OPTIONS, PC_M_PATCH, PC_M_TRACE, PC_M_CONNECT};
    const pc_ynode_t *mn = pc_ymap_get(node, "methods");
    for (size_t i = 0; i < m->n_methods; i++) {
        const char *meth = m->methods[i];
        if (!meth)
            continue; /* its error is already reported */
        size_t mark = pc_cfg_push_key(c, "methods");
        size_t m2 = pc_cfg_push_index(c, i);
        const pc_ynode_t *at = pc_yseq_at(mn, i, node);
        int found = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (strcmp(meth, known[k]) == 0) {
                m->method_mask |= 1u << ids[k];
                found = 1;
            } else if (strcasecmp(meth, known[k]) == 0) {
                pc_cfg_error(c, at, "'%s': methods are case-sensitive (did you mean '%s'?)", meth,
                             known[k]);
                found = 1;
            }
        }
        if (!found && !pc_http_valid_method(pc_str_cstr(meth)))
            pc_cfg_error(c, at, "'%s' is not a method name (A-Z, '-' and '_')", meth);
        pc_cfg_pop(c, m2);
        pc_cfg_pop(c, mark);
    }
}

/* An origin as a browser sends it: scheme://host[:port], scheme and host in
 * lower case, no path; or the same with a "*." label right after the scheme
 * (every subdomain); or a lone "*". */
static int valid_origin(const char *o)
{
    if (strcmp(o, "*") == 0)
        return 1;
    const char *host = strstr(o, "://");
    if (!host || host == o)
        return 0;
    for (const char *p = o; p < host; p++)
        if (!((*p >= 'a' && *p <= 'z') ||
              (p > o && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
            return 0;
    host += 3;
    if (strncmp(host, "*.", 2) == 0)
        host += 2;
    if (!*host || *host == '.' || *host == ':')
        return 0;
    for (const char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
              *p == ':' || *p == '[' || *p == ']'))
            return 0;
    return 1;
}

/* A field name: 1*tchar (RFC 9110 section 5.6.2). */
static int field_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              (*s && strchr("!#$%&'*+-.^_`|~", *s))))
            return 0;
    return 1;
}

/* Joins list with ", " into pool memory, lower-cased when lower is set. */
static const char *join_list(pc_cctx_t *c, const char *const *list, size_t n, int lower)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (list[i] ? strlen(list[i]) : 0) + 2;
    char *s = pc_arena_alloc(c->pool, len + 1), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!list[i])
            continue;
        if (p != s)
            *p++ = ',', *p++ = ' ';
        for (const char *q = list[i]; *q; q++)
            *p++ = lower && *q >= 'A' && *q <= 'Z' ? (char)(*q + 32) : *q;
    }
    *p = 0;
    return s;
}

static void check_cors(pc_cctx_t *c, const pc_ynode_t *node, void *obj)
{
    pc_cors_conf_t *p = obj;
    const pc_ynode_t *on = pc_ymap_get(node, "origins");
    for (size_t i = 0; i < p->n_origins; i++) {
        const char *o = p->origins[i];
        if (!o)
            continue;
        size_t mark = pc_cfg_push_key(c, "origins");
        size_t m2 = pc_cfg_push_index(c, i);
        const pc_ynode_t *at = pc_yseq_at(on, i, node);
        if (strcmp(o, "*") == 0) {
            p->any_origin = 1;
            if (p->credentials)
                pc_cfg_error(c, at,
                             "'*' cannot be used with credentials: true (browsers refuse it; "
                             "list the origins)");
        } else if (!valid_origin(o)) {
            pc_cfg_error(c, at,
                         "'%s' is not an origin (scheme://host[:port] in lower case, "
                         "optionally scheme://*.domain, or '*')",
                         o);
        }
        pc_cfg_pop(c, m2);
        pc_cfg_pop(c, mark);
    }
    static const char *const safelisted[] = {"GET", "HEAD", "POST"};
    const char *const *methods = p->n_methods ? p->methods : safelisted;
    if (!p->n_methods) {
        p->methods = (const char **)safelisted;
        p->n_methods = 3;
    }
    size_t nm = p->n_methods ? p->n_methods : 3;
    for (size_t i = 0; i < nm; i++) {
        if (methods[i] && !pc_http_valid_method(pc_str_cstr(methods[i]))) {
            size_t mark = pc_cfg_push_key(c, "methods");
            pc_cfg_error(c, pc_ymap_get(node, "methods"), "'%s' is not a method name", methods[i]);
            pc_cfg_pop(c, mark);
        }
    }
    /* the lists are sent as response fields: names only, no ", " inside */
    const char *const lists[2] = {"headers", "expose"};
    const char *const *names[2] = {p->headers, p->expose};
    size_t counts[2] = {p->n_headers, p->n_expose};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            if (!names[l][i] || field_name_ok(names[l][i]))
                continue;
            size_t mark = pc_cfg_push_key(c, lists[l]);
            size_t m2 = pc_cfg_push_index(c, i);
            pc_cfg_error(c, pc_yseq_at(pc_ymap_get(node, lists[l]), i, node),
                         "'%s' is not a header field name", names[l][i]);
            pc_cfg_pop(c, m2);
            pc_cfg_pop(c, mark);
        }
    }
    p->allow_methods = join_list(c, methods, nm, 0);
    p->allow_headers = p->n_headers ? join_list(c, p->headers, p->n_headers, 1) : NULL;
    p->expose_headers = p->n_expose ? join_list(c, p->expose, p->n_expose, 0) : NULL;
}

/* Resolves "off" and builds the header lines a response gets. sn: the
 * security_headers mapping whose values are checked (a control byte would
 * end the header line and start another: header injection). */
static void finish_sechdr(pc_cctx_t *c, pc_sechdr_conf_t *s, const pc_ynode_t *sn)
{
    const char **vals[] = {&s->content_type_options, &s->frame_options, &s->referrer_policy,
                           &s->content_security_policy, &s->hsts};
    static const char *const names[] = {"X-Content-Type-Options", "X-Frame-Options",
                                        "Referrer-Policy", "Content-Security-Policy",
                                        "Strict-Transport-Security"};
    static const char *const keys[] = {"content_type_options", "frame_options", "referrer_policy",
                                       "content_security_policy", "hsts"};
    for (size_t i = 0; i < 5; i++) {
        const pc_ynode_t *at = pc_ymap_get(sn, keys[i]);
        for (const char *p = at && *vals[i] ? *vals[i] : ""; *p; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
                pc_cfg_error(
                    c, at,
                    "security_headers.%s: a header value cannot hold control bytes (CR, LF, ...)",
                    keys[i]);
                *vals[i] = NULL;
                break;
            }
    }
    size_t len = 0;
    for (size_t i = 0; i < 5; i++) {
        if (*vals[i] && (strcmp(*vals[i], "off") == 0 || !**vals[i]))
            *vals[i] = NULL;
        if (*vals[i])
            len += strlen(names[i]) + strlen(*vals[i]) + 4;
    }
    char *b = pc_arena_alloc(c->pool, len + 1);
    if (!b)
        return;
    pc_wbuf_t o = {b, 0, len + 1};
    for (size_t i = 0; i < 5; i++) {
        if (i == 4)
            s->block = pc_str_make(b, o.n); /* HSTS last: only TLS listeners get it */
        if (!*vals[i])
            continue;
        pc_wb_cstr(&o, names[i]);
        pc_wb_put(&o, ": ", 2);
        pc_wb_cstr(&o, *vals[i]);
        pc_wb_put(&o, "\r\n", 2);
    }
    s->block_tls = pc_str_make(b, o.n);
    s->drop = pc_arena_alloc(c->pool, (s->n_remove + 5) * sizeof(pc_str_t));
    s->ndrop = 0;
    for (size_t i = 0; s->drop && i < s->n_remove; i++)
        if (s->remove[i])
            s->drop[s->ndrop++] = pc_str_cstr(s->remove[i]);
    for (size_t i = 0; s->drop && i < 5; i++)
        if (*vals[i])
            s->drop[s->ndrop++] = pc_str_cstr(names[i]);
}

/* A route's limits: what it writes, else the global value. Limits that
 * apply before a request is routed cannot be set per route. */
static void finish_route_limits(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn)
{
    const pc_ynode_t *ln = pc_ymap_get(rn, "limits");
    const pc_limits_conf_t *g = &c->cfg->limits, *w = r->limits_set;
    r->limits = *g;
    if (!w || !ln)
        return;
    static const char *const not_per_route[] = {"header_timeout", "idle_timeout", "max_connections",
                                                "max_connections_per_ip"};
    size_t mark = pc_cfg_push_key(c, "limits");
    for (size_t i = 0; i < sizeof(not_per_route) / sizeof(not_per_route[0]); i++) {
        if (pc_ymap_get(ln, not_per_route[i])) {
            size_t m2 = pc_cfg_push_key(c, not_per_route[i]);
            pc_cfg_error(c, pc_ymap_get(ln, not_per_route[i]),
                         "applies before a request is routed: set it in the top-level limits");
            pc_cfg_pop(c, m2);
        }
    }
    pc_cfg_pop(c, mark);
#define TAKE(f)              \
    if (pc_ymap_get(ln, #f)) \
    r->limits.f = w->f
    TAKE(max_uri);
    TAKE(max_header_bytes);
    TAKE(max_headers);
    TAKE(max_body);
    TAKE(body_timeout);
    TAKE(min_body_rate);
#undef TAKE
    pc_limits_conf_t *s = &c->cfg->scan_limits;
    if (r->limits.max_uri > s->max_uri)
        s->max_uri = r->limits.max_uri;
    if (r->limits.max_header_bytes > s->max_header_bytes)
        s->max_header_bytes = r->limits.max_header_bytes;
    if (r->limits.max_headers > s->max_headers)
        s->max_headers = r->limits.max_headers;
    if (r->limits.max_body > s->max_body)
        s->max_body = r->limits.max_body;
}

static int build_ip_rules(pc_cctx_t *c, pc_ip_rules_conf_t *ip)
{
    return ip && (pc_cidr_set_build(&ip->allow_set, c->pool, ip->allow, ip->n_allow) != 0 ||
                  pc_cidr_set_build(&ip->deny_set, c->pool, ip->deny, ip->n_deny) != 0)
               ? -1
               : 0;
}

/* A route's security headers: the global ones, with what the route writes
 * replacing them key by key. */
static void finish_route_sechdr(pc_cctx_t *c, pc_route_conf_t *r, const pc_ynode_t *rn)
{
    const pc_sechdr_conf_t *g = &c->cfg->security_headers;
    pc_sechdr_conf_t *w = r->security_headers_set;
    r->security_headers = g;
    if (!w)
        return;
    const pc_ynode_t *sn = pc_ymap_get(rn, "security_headers");
    pc_sechdr_conf_t *m = pc_arena_calloc(c->pool, sizeof(*m));
    if (!m)
        return;
    *m = *g;
    const char *const *from[] = {&w->hsts, &w->content_type_options, &w->frame_options,
                                 &w->referrer_policy, &w->content_security_policy};
    const char **to[] = {&m->hsts, &m->content_type_options, &m->frame_options, &m->referrer_policy,
                         &m->content_security_policy};
    for (size_t i = 0; i < 5; i++)
        if (*from[i])
            *to[i] = *from[i];
    if (pc_ymap_get(sn, "remove")) {
        m->remove = w->remove;
        m->n_remove = w->n_remove;
    }
    finish_sechdr(c, m, sn);
    r->security_headers = m;
}

static const pc_cors_conf_t *find_cors(const pc_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_cors; i++)
        if (strcmp(cfg->cors[i].name, name) == 0)
            return &cfg->cors[i];
    return NULL;
}

static const pc_upstream_conf_t *find_upstream(const pc_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    return NULL;
}

static const pc_ynode_t *list_item(const pc_ynode_t *root, const char *key, size_t i)
{
    return pc_yseq_at(pc_ymap_get(root, key), i, root);
}

static void finish_listeners(pc_cctx_t *c, const pc_ynode_t *root)
{
    pc_config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        pc_listener_conf_t *l = &cfg->listeners[i];
        char name[32];
        if (!l->name) {
            snprintf(name, sizeof(name), "listener%zu", i);
            l->name = pc_arena_strndup(c->pool, name, strlen(name));
        }
        for (size_t j = 0; j < i; j++) {
            if (!l->address || !cfg->listeners[j].address)
                continue;
            size_t mark = pc_cfg_push_key(c, "listeners");
            size_t m2 = pc_cfg_push_index(c, i);
            if (strcmp(cfg->listeners[j].name, l->name) == 0)
                pc_cfg_error(c, list_item(root, "listeners", i), "duplicate listener name '%s'",
                             l->name);
            if (cfg->listeners[j].addr.len == l->addr.len &&
                memcmp(&cfg->listeners[j].addr.u, &l->addr.u, l->addr.len) == 0)
                pc_cfg_error(c, list_item(root, "listeners", i),
                             "address %s is already used by listener '%s'", l->address,
                             cfg->listeners[j].name);
            pc_cfg_pop(c, m2);
            pc_cfg_pop(c, mark);
        }
    }
}

static void finish_routes(pc_cctx_t *c, const pc_ynode_t *root)
{
    pc_config_t *cfg = c->cfg;
    unsigned char *used = calloc(cfg->n_upstreams + 1, 1);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        pc_route_conf_t *r = &cfg->routes[i];
        const pc_ynode_t *rn = list_item(root, "routes", i);
        size_t mark = pc_cfg_push_key(c, "routes");
        size_t m2 = pc_cfg_push_index(c, i);
        r->index = (uint32_t)i;
        if (!r->name) {
            char name[32];
            snprintf(name, sizeof(name), "routes[%zu]", i);
            r->name = pc_arena_strndup(c->pool, name, strlen(name));
        }
        r->up = r->upstream ? find_upstream(cfg, r->upstream) : NULL;
        /* with no upstreams at all, that error is already reported */
        if (!r->up && r->upstream && cfg->n_upstreams) {
            pc_suggest_t sg = PC_SUGGEST_INIT;
            for (size_t u = 0; u < cfg->n_upstreams; u++)
                pc_suggest_offer(&sg, r->upstream, cfg->upstreams[u].name);
            const char *best = pc_suggest_best(&sg, 2);
            size_t m3 = pc_cfg_push_key(c, "upstream");
            if (best)
                pc_cfg_error(c, pc_ymap_get(rn, "upstream"),
                             "unknown upstream '%s' (did you mean '%s'?)", r->upstream, best);
            else
                pc_cfg_error(c, pc_ymap_get(rn, "upstream"), "unknown upstream '%s'", r->upstream);
            pc_cfg_pop(c, m3);
        } else if (used && r->up) {
            used[r->up->index] = 1;
        }
        finish_route_limits(c, r, rn);
        finish_route_sechdr(c, r, rn);
        if (build_ip_rules(c, r->ip_rules) != 0)
            pc_cfg_error(c, rn, "out of memory");
        if (r->cors && !(r->cors_policy = find_cors(cfg, r->cors))) {
            pc_suggest_t sg = PC_SUGGEST_INIT;
            for (size_t k = 0; k < cfg->n_cors; k++)
                pc_suggest_offer(&sg, r->cors, cfg->cors[k].name);
            const char *best = pc_suggest_best(&sg, 2);
            size_t m3 = pc_cfg_push_key(c, "cors");
            if (best)
                pc_cfg_error(c, pc_ymap_get(rn, "cors"),
                             "unknown CORS policy '%s' (did you mean '%s'?)", r->cors, best);
            else
                pc_cfg_error(c, pc_ymap_get(rn, "cors"), "unknown CORS policy '%s'%s", r->cors,
                             cfg->n_cors ? "" : " (there is no top-level cors section)");
            pc_cfg_pop(c, m3);
        }
        pc_plugins_resolve(c, r, rn);
        pc_jwt_resolve_route(c, r, rn);
        pc_rl_resolve_route(c, r, rn);
        pc_waf_resolve_route(c, r, rn);
        if (pc_builtin_chain(c, r) != 0)
            pc_cfg_error(c, rn, "out of memory");
        pc_cfg_pop(c, m2);
        pc_cfg_pop(c, mark);
    }
    for (size_t u = 0; used && u < cfg->n_upstreams; u++) {
        if (!used[u]) {
            size_t mark = pc_cfg_push_key(c, "upstreams");
            size_t m2 = pc_cfg_push_key(c, cfg->upstreams[u].name);
            pc_cfg_warn(c, pc_ymap_get(pc_ymap_get(root, "upstreams"), cfg->upstreams[u].name),
                        "not used by any route");
            pc_cfg_pop(c, m2);
            pc_cfg_pop(c, mark);
        }
    }
    free(used);
}

void pc_cfg_finish(pc_cctx_t *c, const pc_ynode_t *root)
{
    pc_config_t *cfg = c->cfg;
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > 256 ? 256 : n;
    }
    for (size_t u = 0; u < cfg->n_upstreams; u++)
        cfg->upstreams[u].index = (uint32_t)u;
    finish_listeners(c, root);
    cfg->scan_limits = cfg->limits;
    if (!pc_ymap_get(pc_ymap_get(root, "security_headers"), "remove")) {
        static const char *const dflt[] = {"Server", "X-Powered-By"};
        cfg->security_headers.remove = (const char **)dflt;
        cfg->security_headers.n_remove = 2;
    }
    finish_sechdr(c, &cfg->security_headers, pc_ymap_get(root, "security_headers"));
    if (build_ip_rules(c, cfg->ip_rules) != 0)
        pc_cfg_error(c, root, "out of memory");
    pc_plugins_load(c, root); /* before the routes that name them */
    pc_jwt_finish(c);
    pc_rl_finish(c);
    pc_waf_finish(c, root);
    finish_routes(c, root);
    if (pc_cidr_set_build(&cfg->trusted, c->pool, cfg->trusted_proxies, cfg->n_trusted_proxies) !=
        0)
        pc_cfg_error(c, root, "out of memory");
    const pc_limits_conf_t *l = &cfg->limits;
    if (l->max_connections_per_ip > l->max_connections) {
        size_t mark = pc_cfg_push_key(c, "limits");
        pc_cfg_push_key(c, "max_connections_per_ip");
        pc_cfg_warn(c, pc_ymap_get(pc_ymap_get(root, "limits"), "max_connections_per_ip"),
                    "larger than max_connections, so it never applies");
        pc_cfg_pop(c, mark);
    }
}
