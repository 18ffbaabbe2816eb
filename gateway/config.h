/*
 * config.h — the configuration snapshot: typed, immutable once built, and
 * reference-counted.
 *
 * pc_config_load() reads the YAML file, applies the selected stage, expands
 * ${env:NAME} / ${file:PATH}, converts every key through the schema tables in
 * config_schema.c, validates cross-references and builds each route's filter
 * chain. Every problem is collected as "FILE:LINE: key.path: message"; the
 * snapshot is returned only when there is none.
 *
 * Ownership: a snapshot and everything it points to live in its pool. The
 * main thread holds one reference; each worker holds one on the snapshot it
 * serves new requests with; in-flight requests are counted per worker (see
 * worker.h), so the atomic count is touched only when a worker switches
 * snapshots, never per request.
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "arena.h"
#include "cidr.h"
#include "errlist.h"
#include "filter.h"
#include "str.h"

/* A pointer and a count, laid out so the schema walker can fill both. */
#define PC_ARRAY(type, name) \
    type *name;              \
    size_t n_##name

typedef struct pc_sockaddr_s {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
} pc_sockaddr_t;

typedef struct pc_rate_s {
    int64_t count;     /* events ... */
    int64_t period_ms; /* ... per this many milliseconds (bytes for min_body_rate) */
} pc_rate_t;

typedef struct pc_limits_conf_s {
    int64_t max_uri;
    int64_t max_header_bytes;
    int64_t max_headers;
    int64_t max_body;
    int64_t header_timeout; /* ms, like every duration below */
    int64_t body_timeout;
    int64_t idle_timeout;
    int64_t max_connections;
    int64_t max_connections_per_ip;
    pc_rate_t min_body_rate; /* bytes per period */
} pc_limits_conf_t;

typedef struct pc_tls_cert_conf_s {
    const char *cert;
    const char *key;
} pc_tls_cert_conf_t;

typedef struct pc_listener_tls_conf_s {
    PC_ARRAY(pc_tls_cert_conf_t, certificates);
    PC_ARRAY(int64_t, protocols); /* indexes into "TLSv1.2", "TLSv1.3" */
    const char *ciphers;
    const char *client_ca;
    int64_t forward_client_cert;
    struct pc_tls_s *tls; /* the contexts built from the above (owned) */
} pc_listener_tls_conf_t;

typedef struct pc_listener_conf_s {
    const char *name;
    const char *address;
    pc_sockaddr_t addr;
    pc_listener_tls_conf_t *tls; /* NULL: plain HTTP */
} pc_listener_conf_t;

typedef enum { PC_BALANCE_ROUND_ROBIN = 0, PC_BALANCE_LEAST_CONN } pc_balance_e;

typedef struct pc_server_conf_s {
    const char *address;        /* as written */
    pc_sockaddr_t addr;         /* resolved when the config was loaded */
    struct pc_health_s *health; /* shared state, bound by the server before use */
} pc_server_conf_t;

typedef struct pc_health_check_conf_s {
    const char *path;
    int64_t interval;
    int64_t timeout;
    int64_t healthy_threshold;
    int64_t unhealthy_threshold;
} pc_health_check_conf_t;

typedef struct pc_breaker_conf_s {
    int64_t failures;
    int64_t cooldown;
} pc_breaker_conf_t;

typedef struct pc_admin_conf_s {
    const char *address;
    pc_sockaddr_t addr;
    const char *token; /* NULL or empty: the /admin/ endpoints disabled */
} pc_admin_conf_t;

/* redis: shared state for every gateway instance (revocation list now,
 * rate limits later). */
typedef enum { PC_FAIL_OPEN = 0, PC_FAIL_CLOSED, PC_FAIL_LOCAL } pc_on_failure_e;

typedef struct pc_redis_conf_s {
    const char *address;
    pc_sockaddr_t addr;
    int64_t timeout;    /* ms a command may take */
    int64_t on_failure; /* pc_on_failure_e: what rate limits do while Redis is unusable */
} pc_redis_conf_t;

/* rate_limits.<name> (ratelimit.c). */
typedef enum { PC_RLK_IP = 0, PC_RLK_CLAIM, PC_RLK_HEADER, PC_RLK_ROUTE } pc_rl_key_kind_e;
#define PC_RL_KEY_PARTS 4

typedef struct pc_rl_policy_conf_s {
    const char *name;
    const char *key;   /* as written: "ip", "claim:sub", "header:X-Api-Key", "ip+route" */
    pc_rate_t rate;    /* count per period_ms */
    int64_t burst;     /* requests allowed at once beyond the rate's count */
    int64_t headers;   /* RateLimit fields on admitted responses too */
    int64_t fail_mode; /* pc_on_failure_e: as written, else redis.on_failure */
    /* derived */
    struct {
        uint8_t kind;  /* pc_rl_key_kind_e */
        pc_str_t name; /* claim or header name (NUL-terminated) */
    } parts[PC_RL_KEY_PARTS];
    unsigned nparts;
    int fail_mode_given; /* on_failure was written on the policy */
    int64_t interval_us; /* emission interval: period / count */
    int64_t tau_us;      /* tolerance: (count + burst - 1) * interval */
    uint32_t index;
} pc_rl_policy_conf_t;

typedef struct pc_upstream_conf_s {
    const char *name;
    PC_ARRAY(pc_server_conf_t, servers);
    int64_t balance; /* pc_balance_e */
    int64_t keepalive;
    int64_t keepalive_timeout;
    int64_t connect_timeout;
    int64_t response_timeout;
    pc_health_check_conf_t *health_check; /* NULL: no active checks */
    pc_breaker_conf_t *circuit_breaker;   /* NULL: no circuit breaker */
    uint32_t index;                       /* position in pc_config_t.upstreams */
    uint32_t metric_id;                   /* bound by the server before use */
} pc_upstream_conf_t;

/* ip_rules (top level and per route). */
typedef struct pc_ip_rules_conf_s {
    PC_ARRAY(pc_cidr_range_t, allow);
    PC_ARRAY(pc_cidr_range_t, deny);
    pc_cidr_set_t allow_set; /* built from the lists */
    pc_cidr_set_t deny_set;
} pc_ip_rules_conf_t;

/* A named CORS policy. */
typedef struct pc_cors_conf_s {
    const char *name;
    PC_ARRAY(const char *, origins);
    PC_ARRAY(const char *, methods);
    PC_ARRAY(const char *, headers);
    PC_ARRAY(const char *, expose);
    int64_t credentials;
    int64_t max_age; /* ms; 0: no Access-Control-Max-Age */
    /* derived when loaded */
    int any_origin;             /* "*" is listed */
    const char *allow_methods;  /* "GET, POST" */
    const char *allow_headers;  /* "authorization, content-type" (lower case), or NULL */
    const char *expose_headers; /* or NULL */
} pc_cors_conf_t;

/* security_headers: each value is sent as is; NULL (written "off") sends
 * nothing. */
typedef struct pc_sechdr_conf_s {
    const char *hsts;
    const char *content_type_options;
    const char *frame_options;
    const char *referrer_policy;
    const char *content_security_policy;
    PC_ARRAY(const char *, remove);
    /* derived: the header lines to add, without and with HSTS, and the
     * upstream response fields dropped (remove, and those the gateway sets) */
    pc_str_t block;
    pc_str_t block_tls;
    pc_str_t *drop;
    size_t ndrop;
} pc_sechdr_conf_t;

/* jwt.providers.<name>.forward_claims: one claim -> upstream header. */
typedef struct pc_claim_header_s {
    const char *claim;
    const char *header;
} pc_claim_header_t;

/* A JWT provider (jwt.c). Keys come from jwks_file or secret (parsed with
 * the configuration) or from jwks_url (fetched by the control thread). */
typedef struct pc_jwt_provider_conf_s {
    const char *name;
    const char *issuer; /* NULL: iss not checked */
    PC_ARRAY(const char *, audiences);
    PC_ARRAY(int64_t, algorithms); /* pc_jws_alg_e */
    const char *jwks_file;
    const char *jwks_url;
    const char *jwks_ca; /* CA bundle for an https jwks_url (NULL: the system's) */
    const char *secret;  /* HS* shared secret */
    int64_t jwks_refresh;
    int64_t leeway;
    int64_t cache_ttl;
    PC_ARRAY(pc_claim_header_t, forward_claims);
    int64_t revocation;
    int64_t strip_token;
    /* derived */
    uint32_t alg_mask;         /* PC_JWS_BIT()s of algorithms */
    struct pc_keyset_s *keys;  /* from jwks_file / secret (a reference), or NULL */
    struct pc_jwks_src_s *src; /* key source, bound by the server before use */
} pc_jwt_provider_conf_t;

/* A route's auth: { jwt: NAME, require: {...} } (NULL in the route: none). */
typedef struct pc_claim_value_s {
    const char *claim;
    const char *value;
} pc_claim_value_t;

typedef struct pc_route_auth_s {
    const char *jwt;
    const pc_jwt_provider_conf_t *provider; /* resolved */
    struct {
        PC_ARRAY(const char *, scope);  /* every one required */
        PC_ARRAY(const char *, groups); /* any one required */
        PC_ARRAY(pc_claim_value_t, claims);
    } require;
} pc_route_auth_t;

/* waf (filters/waf.c). */
typedef enum { PC_WAF_BLOCK = 0, PC_WAF_DETECT, PC_WAF_OFF } pc_waf_mode_e;
typedef enum { PC_WAF_OVER_REJECT = 0, PC_WAF_OVER_PASS } pc_waf_over_e;

typedef struct pc_waf_conf_s {
    int64_t mode;                  /* pc_waf_mode_e */
    PC_ARRAY(const char *, rules); /* rule files or globs (empty: the shipped set) */
    int64_t paranoia_level;
    int64_t anomaly_threshold;
    int64_t body_inspect_limit;
    int64_t on_body_over_limit;  /* pc_waf_over_e */
    struct pc_waf_ruleset_s *rs; /* loaded when some route inspects (owned) */
} pc_waf_conf_t;

/* routes[].waf as written, and what the route's filter runs with. */
typedef struct pc_route_waf_s {
    int64_t mode;                            /* -1: the global mode */
    PC_ARRAY(const char *, exclude_rules);   /* "942100" or "942100-942199" */
    PC_ARRAY(const char *, exclude_targets); /* "[RULE_ID[-RULE_ID]:]TARGET" */
    /* resolved */
    const pc_waf_conf_t *g;
    struct pc_waf_exclusion_s *excl; /* rules, then targets */
    size_t nexcl;
    int64_t max_body; /* the route's limits.max_body: what a multipart body may take */
} pc_route_waf_t;

/* plugins[]: a plugin to load (plugin.c). */
typedef struct pc_plugin_conf_s {
    const char *path;
    const struct pc_ynode_s *config; /* the `config:` mapping as written, or NULL */
    struct pc_plugin_s *loaded;      /* loaded and initialised, or NULL */
} pc_plugin_conf_t;

typedef struct pc_route_match_s {
    const char *host; /* exact, or "*.example.com"; NULL: any */
    const char *path_prefix;
    const char *path; /* exact path */
    PC_ARRAY(const char *, methods);
    uint32_t method_mask; /* bit (1 << pc_method_e) for known methods */
} pc_route_match_t;

typedef struct pc_route_conf_s {
    const char *name;
    pc_route_match_t match;
    const char *upstream;
    const pc_upstream_conf_t *up; /* resolved */
    pc_limits_conf_t limits;      /* the global limits with this route's overrides */
    pc_limits_conf_t *limits_set; /* as written under the route (NULL: none) */
    pc_ip_rules_conf_t *ip_rules; /* the route's own, checked after the global ones */
    const char *cors;             /* policy name */
    const pc_cors_conf_t *cors_policy;
    pc_sechdr_conf_t *security_headers_set;   /* as written under the route */
    const pc_sechdr_conf_t *security_headers; /* in effect: the global ones or the route's merge */
    int64_t dry_run;
    pc_route_auth_t *auth;               /* NULL: no authentication (auth: none or absent) */
    PC_ARRAY(const char *, rate_limits); /* policy names */
    const pc_rl_policy_conf_t **rl;      /* resolved, n_rate_limits of them */
    pc_route_waf_t *waf_set;             /* routes[].waf as written (NULL: none) */
    pc_route_waf_t *waf;                 /* in effect (NULL: the WAF is off here) */
    PC_ARRAY(const char *, plugins);     /* plugin names, run after the built-in controls */
    struct pc_plugin_s **plugin_refs;    /* resolved, n_plugins of them */
    pc_chain_t chain;                    /* request filters, built once per snapshot */
    uint32_t index;
    uint32_t metric_id; /* bound by the server before use */
#ifdef PC_TESTING
    int64_t test_suspend; /* ms a test filter suspends the request for; 0: none */
    int64_t test_respond; /* status the test filter answers with after resuming; 0: none */
#endif
} pc_route_conf_t;

typedef enum { PC_LOG_FORMAT_JSON = 0 } pc_log_format_e;

typedef struct pc_logging_conf_s {
    struct {
        const char *path;
        int64_t format;
    } access;
    struct {
        const char *path;
    } security;
    struct {
        const char *path;
        int64_t level; /* pc_log_level_e */
    } error;
} pc_logging_conf_t;

typedef struct pc_config_s {
    int refs; /* atomic */
    pc_arena_t pool;
    const char *file;
    const char *stage;
    uint64_t generation;

    int64_t workers;
    int64_t shutdown_timeout;
    PC_ARRAY(pc_listener_conf_t, listeners);
    pc_limits_conf_t limits;
    PC_ARRAY(pc_cidr_range_t, trusted_proxies);
    pc_cidr_set_t trusted;
    PC_ARRAY(pc_upstream_conf_t, upstreams);
    PC_ARRAY(pc_route_conf_t, routes);
    pc_logging_conf_t logging;
    pc_admin_conf_t *admin; /* NULL: no admin listener */
    pc_redis_conf_t *redis; /* NULL: everything in process */
    pc_ip_rules_conf_t *ip_rules;
    PC_ARRAY(pc_cors_conf_t, cors);
    pc_sechdr_conf_t security_headers;
    pc_limits_conf_t scan_limits; /* head limits the parser applies: the largest of any route */
    PC_ARRAY(pc_plugin_conf_t, plugins); /* released (fini, dlclose) with the snapshot */
    PC_ARRAY(pc_jwt_provider_conf_t, jwt_providers);
    PC_ARRAY(pc_rl_policy_conf_t, rate_limits);
    pc_waf_conf_t waf;
    PC_ARRAY(pc_str_t, health_paths); /* upstream health-check paths: never rate-limited */
    pc_str_t *claim_headers;          /* every forward_claims header: client copies are dropped */
    size_t n_claim_headers;
} pc_config_t;

typedef struct pc_config_opts_s {
    const char *stage; /* --stage, overrides the file's "stage:" key; NULL: none */
} pc_config_opts_t;

/*
 * Loads and validates path. Returns a snapshot with one reference, or NULL
 * with every problem in errs (which may also hold warnings on success).
 */
pc_config_t *pc_config_load(const char *path, const pc_config_opts_t *opts, pc_errlist_t *errs);

void pc_config_ref(pc_config_t *c);
/* Drops a reference; the last one frees the snapshot. */
void pc_config_unref(pc_config_t *c);

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (any address) into addr,
 * resolving host names; 0 or -1 with a message in err. */
int pc_parse_hostport(const char *s, pc_sockaddr_t *addr, char *err, size_t errlen);

/* The address as text without brackets ("1.2.3.4", "::1") into host (at
 * least INET6_ADDRSTRLEN bytes); returns the port. */
int pc_sockaddr_host(const pc_sockaddr_t *a, char *host, size_t len);

/* Formats an address as "1.2.3.4:80" / "[::1]:80". */
void pc_sockaddr_str(const pc_sockaddr_t *a, char *out, size_t len);

/* Value parsers shared with the schema walker and tests: 0 on success. */
int pc_parse_duration(const char *s, int64_t *ms);
int pc_parse_size(const char *s, int64_t *bytes);
int pc_parse_rate(const char *s, int size_units, pc_rate_t *r);

/* Writes the schema as Markdown-ish text: one line per key path with its
 * type and default (used by a test that checks docs/configuration.md lists
 * every key). */
void pc_config_dump_keys(void (*emit)(const char *path, const char *type, const char *def,
                                      void *arg),
                         void *arg);

#endif
