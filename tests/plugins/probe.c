/*
 * probe.c — a test plugin that exercises the host functions and reports
 * what it saw in headers the tests can read (tests/e2e/test_plugins.py).
 *
 * Config:
 *   respond_at   headers | body | response: answer there with status/error
 *   status       the status to answer with (default 403)
 *   error        the error code (default: the status's standard name)
 *   tags         a list of strings, sent upstream joined as X-Probe-Tags
 *   env          a string (typically ${env:...}), sent upstream as X-Probe-Env
 *   rc           a return code to give from request_headers (tests odd codes)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <portcullis/plugin.h>

typedef struct {
    const portcullis_host_t *host;
    char respond_at[16];
    int status;
    char error[64];
    char tags[256];
    char env[256];
    int rc;
    portcullis_counter_t *requests;
} conf_t;

typedef struct {
    unsigned long long body;
    int slices;
} state_t;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int init(const portcullis_host_t *host, const portcullis_node_t *config, void **out,
                char *err, size_t errlen)
{
    if (host->abi != PORTCULLIS_PLUGIN_ABI || host->size < sizeof(*host)) {
        snprintf(err, errlen, "unexpected host table");
        return -1;
    }
    if (host->node_type(config) != PORTCULLIS_NODE_MAP &&
        host->node_type(config) != PORTCULLIS_NODE_NULL) {
        snprintf(err, errlen, "config must be a mapping");
        return -1;
    }
    conf_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->host = host;
    copy(c->respond_at, sizeof(c->respond_at),
         host->node_str(host->node_get(config, "respond_at")));
    const char *st = host->node_str(host->node_get(config, "status"));
    c->status = st ? atoi(st) : 403;
    copy(c->error, sizeof(c->error), host->node_str(host->node_get(config, "error")));
    copy(c->env, sizeof(c->env), host->node_str(host->node_get(config, "env")));
    const char *rc = host->node_str(host->node_get(config, "rc"));
    c->rc = rc ? atoi(rc) : PORTCULLIS_CONTINUE;
    const portcullis_node_t *tags = host->node_get(config, "tags");
    if (tags && host->node_type(tags) != PORTCULLIS_NODE_SEQ) {
        snprintf(err, errlen, "tags: expected a list (line %d)", host->node_line(tags));
        free(c);
        return -1;
    }
    for (size_t i = 0; i < host->node_len(tags); i++) {
        size_t n = strlen(c->tags);
        snprintf(c->tags + n, sizeof(c->tags) - n, "%s%s", i ? "," : "",
                 host->node_str(host->node_at(tags, i)));
    }
    c->requests = host->counter(host, "requests");
    if (host->counter(host, "Bad-Name") != NULL) {
        snprintf(err, errlen, "counter accepted an invalid event name");
        free(c);
        return -1;
    }
    host->log(host, NULL, PORTCULLIS_LOG_INFO, "probe initialised (respond_at '%s')",
              c->respond_at);
    *out = c;
    return 0;
}

static void fini(void *conf)
{
    free(conf);
}

static portcullis_rc_t answer(portcullis_req_t *r, const conf_t *c)
{
    if (c->host->respond(r, c->status, c->error[0] ? c->error : NULL) != 0)
        return PORTCULLIS_ERROR;
    /* a second reply is refused */
    return c->host->respond(r, 400, NULL) == -1 ? PORTCULLIS_RESPOND : PORTCULLIS_ERROR;
}

static portcullis_rc_t on_headers(portcullis_req_t *r, const void *conf, void *state)
{
    const conf_t *c = conf;
    const portcullis_host_t *h = c->host;
    (void)state;
    h->count(c->requests, 1);
    size_t n;
    const char *m = h->request_method(r, &n);
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s", (int)n, m);
    h->request_header_add(r, "X-Probe-Method", buf);
    const char *p = h->request_path(r, &n);
    snprintf(buf, sizeof(buf), "%.*s", (int)n, p);
    h->request_header_add(r, "X-Probe-Path", buf);
    const char *q = h->request_query(r, &n);
    snprintf(buf, sizeof(buf), "%.*s", q ? (int)n : 6, q ? q : "(none)");
    h->request_header_add(r, "X-Probe-Query", buf);
    h->request_header_add(r, "X-Probe-Route", h->route_name(r));
    h->request_header_add(r, "X-Probe-Client", h->client_address(r));
    h->request_header_add(r, "X-Probe-Id", h->request_id(r));
    const char *jwt_sub = h->jwt_claim(r, "sub");
    h->request_header_add(r, "X-Probe-Jwt", jwt_sub ? jwt_sub : "none");
    h->request_header_add(r, "X-Probe-Tags", c->tags);
    h->request_header_add(r, "X-Probe-Env", c->env);
    /* the second X-Dup the client sent, if any */
    const char *d = h->request_header(r, "x-dup", 1, &n);
    snprintf(buf, sizeof(buf), "%.*s", d ? (int)n : 4, d ? d : "none");
    h->request_header_add(r, "X-Probe-Dup2", buf);
    /* refusals: owned fields, bad names and values, framing removal */
    int refused = h->request_header_add(r, "Content-Length", "0") == -1 &&
                  h->request_header_add(r, "X-Forwarded-For", "1.2.3.4") == -1 &&
                  h->request_header_add(r, "Bad Name", "x") == -1 &&
                  h->request_header_add(r, "X-Ok", "a\r\nX-Injected: 1") == -1 &&
                  h->request_header_remove(r, "Host") == -1 &&
                  h->response_header(r, "X-Anything", 0, &n) == NULL &&
                  h->response_status(r) == 0 && h->set_identity(r, "") == -1 &&
                  h->respond(r, 302, NULL) == -1 && h->respond(r, 403, "Bad-Code") == -1;
    h->request_header_add(r, "X-Probe-Refusals", refused ? "ok" : "FAILED");
    snprintf(buf, sizeof(buf), "%d", h->request_header_remove(r, "X-Remove-Me"));
    h->request_header_add(r, "X-Probe-Removed", buf);
    h->set_identity(r, "probe-user");
    h->response_header_add(r, "X-Probe-Early", "yes");
    if (strcmp(c->respond_at, "headers") == 0)
        return answer(r, c);
    return (portcullis_rc_t)c->rc;
}

static portcullis_rc_t on_body(portcullis_req_t *r, const void *conf, void *state, const char *data,
                               size_t len, int last)
{
    const conf_t *c = conf;
    state_t *st = state;
    (void)data;
    st->body += len;
    st->slices++;
    /* too late to change the request head */
    if (c->host->request_header_add(r, "X-Late", "1") != -1)
        return PORTCULLIS_ERROR;
    if (last && strcmp(c->respond_at, "body") == 0)
        return answer(r, c);
    return PORTCULLIS_CONTINUE;
}

static portcullis_rc_t on_response(portcullis_req_t *r, const void *conf, void *state)
{
    const conf_t *c = conf;
    const portcullis_host_t *h = c->host;
    const state_t *st = state;
    char buf[64];
    snprintf(buf, sizeof(buf), "%d", h->response_status(r));
    h->response_header_add(r, "X-Probe-Status", buf);
    snprintf(buf, sizeof(buf), "%llu", st->body);
    h->response_header_add(r, "X-Probe-Body-Bytes", buf);
    size_t n;
    const char *srv = h->response_header(r, "server", 0, &n);
    snprintf(buf, sizeof(buf), "%.*s", srv ? (int)n : 4, srv ? srv : "none");
    h->response_header_add(r, "X-Probe-Upstream-Server", buf);
    h->response_header_remove(r, "content-type");
    if (h->response_header_add(r, "Content-Length", "1") != -1 ||
        h->response_header_remove(r, "Content-Length") != -1)
        return PORTCULLIS_ERROR;
    if (strcmp(c->respond_at, "response") == 0)
        return answer(r, c);
    return PORTCULLIS_CONTINUE;
}

static void on_log(portcullis_req_t *r, const void *conf, void *state)
{
    const conf_t *c = conf;
    const state_t *st = state;
    /* nothing may be changed any more */
    if (c->host->respond(r, 403, NULL) != -1 || c->host->response_header_add(r, "X-A", "b") != -1)
        c->host->log(c->host, r, PORTCULLIS_LOG_ERROR, "log phase accepted a change");
    c->host->log(c->host, r, PORTCULLIS_LOG_INFO, "probe done: %llu body bytes in %d slices",
                 st->body, st->slices);
}

const portcullis_plugin_t portcullis_plugin = {
    .abi = PORTCULLIS_PLUGIN_ABI,
    .name = "probe",
    .state_size = sizeof(state_t),
    .init = init,
    .fini = fini,
    .request_headers = on_headers,
    .request_body = on_body,
    .response_headers = on_response,
    .log = on_log,
};
