/*
 * cors.c — see cors.h.
 */
#include "cors.h"

#include <string.h>

#include "../config.h"
#include "../http1.h"
#include "../request.h"

/* Is o matched by pattern p (without regard to case: browsers send origins
 * in lower case, configurations may not be): exactly ("https://app.example.com"), or, for a
 * pattern with a "*." label after the scheme, one or more labels in front
 * of the rest ("example.com"), same scheme, no port unless the pattern has
 * it? */
int pc_cors_origin_matches(pc_str_t o, const char *p)
{
    const char *star = strstr(p, "://*.");
    if (!star)
        return pc_str_ieq_c(o, p);
    size_t scheme = (size_t)(star - p) + 3; /* "https://" */
    size_t suffix = strlen(star + 4);       /* ".example.com" */
    if (o.n <= scheme + suffix || !pc_str_ieq(pc_str_make(o.p, scheme), pc_str_make(p, scheme)) ||
        !pc_str_ieq_c(pc_str_make(o.p + o.n - suffix, suffix), star + 4))
        return 0;
    /* what the wildcard covers: host labels only */
    for (size_t i = scheme; i < o.n - suffix; i++) {
        char ch = o.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            return 0;
    }
    return o.p[scheme] != '.' && o.p[o.n - suffix - 1] != '.';
}

static int origin_allowed(const pc_cors_conf_t *p, pc_str_t o)
{
    if (p->any_origin)
        return 1;
    for (size_t i = 0; i < p->n_origins; i++)
        if (p->origins[i] && pc_cors_origin_matches(o, p->origins[i]))
            return 1;
    return 0;
}

static int method_allowed(const pc_cors_conf_t *p, pc_str_t m)
{
    for (size_t i = 0; i < p->n_methods; i++)
        if (p->methods[i] && m.n == strlen(p->methods[i]) && memcmp(m.p, p->methods[i], m.n) == 0)
            return 1;
    return 0;
}

static int header_allowed(const pc_cors_conf_t *p, pc_str_t h)
{
    for (size_t i = 0; i < p->n_headers; i++)
        if (p->headers[i] && pc_str_ieq_c(h, p->headers[i]))
            return 1;
    return 0;
}

/* Every name in Access-Control-Request-Headers ("a, b,c") is allowed. */
static int headers_allowed(const pc_cors_conf_t *p, pc_str_t list)
{
    size_t i = 0;
    while (i < list.n) {
        while (i < list.n && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ','))
            i++;
        size_t s = i;
        while (i < list.n && list.p[i] != ',' && list.p[i] != ' ' && list.p[i] != '\t')
            i++;
        if (i > s && !header_allowed(p, pc_str_make(list.p + s, i - s)))
            return 0;
    }
    return 1;
}

static pc_str_t find(const pc_req_t *r, pc_hdr_id_e id)
{
    const pc_http_header_t *h = pc_http_find(r->http.headers, r->http.nheaders, id);
    return h ? h->value : (pc_str_t){NULL, 0};
}

/* Allow-Origin (and Allow-Credentials) for an allowed origin: the origin
 * itself, or "*" when any origin is allowed without credentials. */
static int allow_origin(pc_req_t *r, const pc_cors_conf_t *p, pc_str_t origin)
{
    int echo = !p->any_origin || p->credentials;
    if (pc_req_add_response_header(r, "Access-Control-Allow-Origin",
                                   echo ? origin : pc_str_cstr("*")) != 0)
        return -1;
    if (p->credentials &&
        pc_req_add_response_header(r, "Access-Control-Allow-Credentials", pc_str_cstr("true")) != 0)
        return -1;
    return 0;
}

static pc_filter_rc_e cors_request(pc_req_t *r, const void *conf, void *state)
{
    const pc_cors_conf_t *p = conf;
    (void)state;
    pc_str_t origin = find(r, PC_HDR_ORIGIN);
    if (!origin.p)
        return PC_FILTER_CONTINUE; /* not a cross-origin request */
    int depends = !p->any_origin || p->credentials;
    if (depends && pc_req_add_response_header(r, "Vary", pc_str_cstr("Origin")) != 0)
        return PC_FILTER_ERROR;
    pc_str_t want = find(r, PC_HDR_AC_REQUEST_METHOD);
    int allowed = origin_allowed(p, origin);
    if (r->http.method_id != PC_M_OPTIONS || !want.p) {
        /* an actual request: headers only when the origin is allowed (the
         * browser then withholds the response from a disallowed page) */
        if (!allowed)
            return PC_FILTER_CONTINUE;
        if (allow_origin(r, p, origin) != 0 ||
            (p->expose_headers && pc_req_add_response_header(r, "Access-Control-Expose-Headers",
                                                             pc_str_cstr(p->expose_headers)) != 0))
            return PC_FILTER_ERROR;
        return PC_FILTER_CONTINUE;
    }
    /* a preflight: answered here, never forwarded */
    pc_str_t want_headers = find(r, PC_HDR_AC_REQUEST_HEADERS);
    const char *why = !allowed                                              ? "origin not allowed"
                      : !method_allowed(p, want)                            ? "method not allowed"
                      : want_headers.p && !headers_allowed(p, want_headers) ? "header not allowed"
                                                                            : NULL;
    if (why)
        return pc_req_block(r, PC_REPLY_forbidden, "cors", why) ? PC_FILTER_RESPOND
                                                                : PC_FILTER_CONTINUE;
    char age[24];
    pc_wbuf_t a = {age, 0, sizeof(age)};
    pc_wb_u64(&a, (uint64_t)(p->max_age / 1000));
    if (allow_origin(r, p, origin) != 0 ||
        pc_req_add_response_header(r, "Access-Control-Allow-Methods",
                                   pc_str_cstr(p->allow_methods)) != 0 ||
        (p->allow_headers && pc_req_add_response_header(r, "Access-Control-Allow-Headers",
                                                        pc_str_cstr(p->allow_headers)) != 0) ||
        (p->max_age &&
         pc_req_add_response_header(r, "Access-Control-Max-Age", pc_str_make(age, a.n)) != 0) ||
        pc_req_add_response_header(
            r, "Vary",
            pc_str_cstr("Access-Control-Request-Method, Access-Control-Request-Headers")) != 0)
        return PC_FILTER_ERROR;
    pc_req_respond_empty(r, 204, "CORS preflight");
    return PC_FILTER_RESPOND;
}

const pc_filter_ops_t pc_cors_filter_ops = {.name = "cors", .request_headers = cors_request};
