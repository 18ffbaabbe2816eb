/*
 * portcullis/plugin.h — the plugin ABI of Portcullis, version 1.
 *
 * This is the only header a plugin includes. A plugin is a shared object
 * (cc -shared -fPIC -I gateway/include) that exports one symbol,
 *
 *     const portcullis_plugin_t portcullis_plugin = { PORTCULLIS_PLUGIN_ABI, "name", ... };
 *
 * listed under the top-level `plugins:` of the configuration and run by the
 * routes that name it (`routes[].plugins`), after the built-in controls.
 *
 * The plugin calls the gateway only through the function table it is given
 * (portcullis_host_t): the gateway exports no symbols to plugins.
 *
 * Lifecycle: the file is opened (dlopen, RTLD_NOW | RTLD_LOCAL) and init()
 * runs each time a configuration is loaded — at start, on SIGHUP, and by
 * `portcullis -t` — on the main thread. The configuration snapshot owns what
 * init() returns in *conf; fini(conf) runs once the last request of that
 * snapshot has ended, on whichever thread drops it. During a reload two
 * snapshots (two confs of the same plugin) are alive at once: keep every
 * piece of state in conf, none in globals.
 *
 * Threading: the phase callbacks run on the gateway's worker threads,
 * concurrently for different requests. conf is shared and must be treated
 * as read-only; `state` is per request (state_size bytes, zeroed, aligned
 * to 16), touched by one thread at a time.
 *
 * Versioning: abi is the first member of the descriptor; a gateway refuses
 * a plugin whose abi differs from its own PORTCULLIS_PLUGIN_ABI and reads
 * nothing else from it. Functions added to the host table in later,
 * compatible revisions are appended; host->size tells which are there.
 *
 * See docs/plugins.md for a walkthrough.
 */
#ifndef PORTCULLIS_PLUGIN_H
#define PORTCULLIS_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PORTCULLIS_PLUGIN_ABI    1
#define PORTCULLIS_PLUGIN_SYMBOL "portcullis_plugin"

/* A request, valid only during the callback it is passed to. */
typedef struct portcullis_req portcullis_req_t;
/* A node of the plugin's `config:` YAML tree, valid until fini(). */
typedef struct portcullis_node portcullis_node_t;
/* A counter registered by counter(); valid for the life of the process. */
typedef struct portcullis_counter portcullis_counter_t;
typedef struct portcullis_host portcullis_host_t;

/* What a phase callback returns. */
typedef enum {
    PORTCULLIS_CONTINUE = 0, /* go on to the next filter (or the upstream) */
    PORTCULLIS_RESPOND = 1,  /* the plugin called host->respond(); stop here */
    /* 2 is reserved: built-in filters may suspend a request, plugins may not
     * in ABI 1 (a returned 2 is treated as PORTCULLIS_ERROR) */
    PORTCULLIS_ERROR = 3 /* internal failure: the client gets 500 */
} portcullis_rc_t;

/* Kinds of configuration nodes. */
enum {
    PORTCULLIS_NODE_NULL = 0, /* absent, or null / ~ / empty */
    PORTCULLIS_NODE_SCALAR,
    PORTCULLIS_NODE_MAP,
    PORTCULLIS_NODE_SEQ
};

/* Log levels (the error log's). */
enum { PORTCULLIS_LOG_DEBUG = 0, PORTCULLIS_LOG_INFO, PORTCULLIS_LOG_WARN, PORTCULLIS_LOG_ERROR };

/*
 * The gateway's functions. Each plugin (each loaded configuration) gets its
 * own table: pass the pointer init() received, never a copy.
 *
 * Request functions take the request handle of the running callback and
 * fail (NULL or -1) when called with any other, or from another thread.
 * Strings returned for a request live until the request ends; header values
 * are NOT NUL-terminated (use the length).
 */
struct portcullis_host {
    unsigned abi; /* PORTCULLIS_PLUGIN_ABI of the gateway */
    size_t size;  /* sizeof(portcullis_host_t) as the gateway knows it */
    const char *plugin_name;
    void *gateway_private; /* the gateway's; do not touch */

    /* ---- configuration nodes (init and later; read-only) ---- */
    /* PORTCULLIS_NODE_* (NULL n: PORTCULLIS_NODE_NULL). */
    int (*node_type)(const portcullis_node_t *n);
    /* The value of key in a map, or NULL. */
    const portcullis_node_t *(*node_get)(const portcullis_node_t *map, const char *key);
    /* Items of a sequence, pairs of a map, bytes of a scalar; 0 otherwise. */
    size_t (*node_len)(const portcullis_node_t *n);
    /* The i-th item of a sequence or the i-th value of a map, or NULL. */
    const portcullis_node_t *(*node_at)(const portcullis_node_t *n, size_t i);
    /* The i-th key of a map, or NULL. */
    const char *(*node_key)(const portcullis_node_t *map, size_t i);
    /* A scalar's text, with ${env:NAME} and ${file:PATH} already expanded
     * (NUL-terminated); NULL for anything else, null scalars included. */
    const char *(*node_str)(const portcullis_node_t *n);
    /* The line of the node in the configuration file (0 if unknown). */
    int (*node_line)(const portcullis_node_t *n);

    /* ---- the request (any phase) ---- */
    const char *(*request_method)(portcullis_req_t *r, size_t *len);
    /* The normalised path, without the query. */
    const char *(*request_path)(portcullis_req_t *r, size_t *len);
    /* The query string without '?', or NULL when there is none. */
    const char *(*request_query)(portcullis_req_t *r, size_t *len);
    /* The value of the nth (0: first) client request field named name
     * (case-insensitive) among those forwarded upstream, or NULL. */
    const char *(*request_header)(portcullis_req_t *r, const char *name, unsigned nth, size_t *len);
    /* The client's address after trusted proxies ("192.0.2.7", "2001:db8::1"). */
    const char *(*client_address)(portcullis_req_t *r);
    /* The route's name (routes[].name, or "routes[N]"). */
    const char *(*route_name)(portcullis_req_t *r);
    /* The request id (X-Request-Id as sent upstream and logged). */
    const char *(*request_id)(portcullis_req_t *r);
    /* A claim of the request's verified JWT as text (strings as they are,
     * numbers and booleans written out, arrays and objects as compact
     * JSON), or NULL when the route verified no token or there is no such
     * claim. Plugins run after the built-in controls, so the token is
     * verified by then. */
    const char *(*jwt_claim)(portcullis_req_t *r, const char *claim);

    /* ---- changing the request and the response ---- */
    /* Adds a field to the request sent upstream (request_headers phase only).
     * Refused (-1): invalid name or value, or a field the gateway owns
     * (Host, framing, hop-by-hop, X-Forwarded-*, X-Request-Id,
     * X-Client-Cert-Subject). 0 on success. */
    int (*request_header_add)(portcullis_req_t *r, const char *name, const char *value);
    /* Drops every client field named name from the request sent upstream
     * (request_headers phase only); returns how many, or -1 (Host and
     * framing fields cannot be removed). */
    int (*request_header_remove)(portcullis_req_t *r, const char *name);
    /* The upstream's response status (response_headers phase), else 0. */
    int (*response_status)(portcullis_req_t *r);
    /* The nth field of the upstream's response (response_headers phase). */
    const char *(*response_header)(portcullis_req_t *r, const char *name, unsigned nth,
                                   size_t *len);
    /* Adds a field to the response, proxied or a local reply (any phase
     * before the response is sent; same refusals as request_header_add). */
    int (*response_header_add)(portcullis_req_t *r, const char *name, const char *value);
    /* Drops the upstream's fields named name (response_headers phase). */
    int (*response_header_remove)(portcullis_req_t *r, const char *name);

    /* Answers the request with the gateway's JSON error body,
     * {"error":"<error>","status":N,"request_id":"..."}; then return
     * PORTCULLIS_RESPOND. status: 400, 401, 403, 404, 413, 429, 500 or 503.
     * error: [a-z0-9_], 1 to 48 bytes, or NULL for the status's standard
     * name (unauthorized, forbidden, too_many_requests, ...). Allowed in
     * request_headers, request_body and response_headers. 0, or -1 when
     * refused (then nothing was sent). */
    int (*respond)(portcullis_req_t *r, int status, const char *error);
    /* Who the client is (an API key's name, a user): shown as the access
     * log's `user` field, and meant as a rate-limit key once rate limits
     * exist. Copied; 1 to 256 bytes. 0 or -1. */
    int (*set_identity)(portcullis_req_t *r, const char *identity);

    /* ---- the plugin's own (any thread, any time after init begins) ---- */
    /* One error-log line, subsystem "plugin:NAME"; r may be NULL (then no
     * request id is added). */
    void (*log)(const portcullis_host_t *host, portcullis_req_t *r, int level, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
    /* The counter portcullis_plugin_events_total{plugin=NAME,event=event},
     * registered on first use (event: [a-z0-9_], 1 to 63 bytes). Counters
     * keep their values across reloads. NULL when refused or when the
     * gateway's table is full (count() then does nothing). Call it from
     * init() and keep the handle in conf. */
    portcullis_counter_t *(*counter)(const portcullis_host_t *host, const char *event);
    void (*count)(portcullis_counter_t *c, unsigned long long n);
};

/* The descriptor a plugin exports as `portcullis_plugin`. */
typedef struct portcullis_plugin {
    unsigned abi;      /* PORTCULLIS_PLUGIN_ABI: must stay the first member */
    const char *name;  /* what routes[].plugins refer to: [A-Za-z0-9_.-], 1..64 */
    size_t state_size; /* per-request state, at most 64 KiB (0: none, NULL passed) */

    /* Parses config (NULL when the entry has no `config:`) into *conf.
     * 0 on success; otherwise non-zero with a message in err, reported as
     * "FILE:LINE: plugins[N].config: init failed: <err>" and the whole
     * configuration refused. */
    int (*init)(const portcullis_host_t *host, const portcullis_node_t *config, void **conf,
                char *err, size_t errlen);
    /* Releases conf (only after init succeeded). May be NULL. */
    void (*fini)(void *conf);

    /* Phase callbacks; any may be NULL. */
    /* The request head is parsed, routed and passed the built-in controls;
     * no body byte has been read. */
    portcullis_rc_t (*request_headers)(portcullis_req_t *r, const void *conf, void *state);
    /* The body as it streams, in slices, before each is forwarded; a last
     * call has last = 1 (possibly with len 0; also for requests without a
     * body). RESPOND here aborts the upstream request, which is then never
     * completed: the final bytes are withheld and its connection closed. */
    portcullis_rc_t (*request_body)(portcullis_req_t *r, const void *conf, void *state,
                                    const char *data, size_t len, int last);
    /* The upstream's response head is parsed; nothing was sent yet. */
    portcullis_rc_t (*response_headers)(portcullis_req_t *r, const void *conf, void *state);
    /* The request is over (answered, failed or abandoned): release what
     * state holds. Called for every request whose route's filters started
     * (its state exists), even when this plugin's other callbacks did not
     * run because an earlier filter answered. */
    void (*log)(portcullis_req_t *r, const void *conf, void *state);
} portcullis_plugin_t;

/* 1 when s is a header field name (an RFC 9110 token), for plugins that
 * take header names in their configuration: a name outside that grammar
 * would never match a request's field, nor could it be sent. */
static inline int portcullis_is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        for (const char *t = "!#$%&'*+-.^_`|~"; !ok && *t; t++)
            ok = c == (unsigned char)*t;
        if (!ok)
            return 0;
    }
    return 1;
}

#ifdef __cplusplus
}
#endif

#endif
