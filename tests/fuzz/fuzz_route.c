/*
 * fuzz_route.c — libFuzzer target for routing by Host: the routes'
 * match.host patterns (checked and lower-cased when the configuration is
 * loaded) and pc_route_match choosing a route for a request's Host value.
 *
 * The input is lines: "R<pattern>" adds a route matching that host
 * (written as a double-quoted YAML scalar, every byte escaped; NUL, '$' and
 * bytes from 0x80 left out), a route without a host comes last, and
 * "Q<value>" is a Host value to route (a field value: CR, LF and other
 * controls are dropped, so it could have come through the parser).
 *
 * Invariants (abort on violation):
 *  - the configuration loads exactly when every pattern, lower-cased, is
 *    a host name of [a-z0-9._-] or "*." followed by one (no port, no
 *    scheme); a refused one reports errors; loaded patterns are lower case,
 *    without a final dot (a Host value loses it before matching);
 *  - for each Host value the route chosen is the first whose pattern
 *    matches the value's host part (port and final dot removed) in a
 *    reference written here: equal without regard to case, or for "*.d"
 *    at least one byte in front of ".d"; the host-less route otherwise;
 *  - a subdomain of a wildcard pattern's domain, in any case, is routed
 *    to it or to an earlier route, and its bare domain never to it.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "errlist.h"
#include "fuzz_common.h"
#include "request.h"
#include "router.h"

#define MAXR 12
#define MAXQ 12

static int ref_pattern(const char *h)
{
    if (h[0] == '*') {
        if (h[1] != '.' || !h[2])
            return 0;
        h += 2;
    }
    for (; *h; h++)
        if (!(islower((unsigned char)*h) || isdigit((unsigned char)*h) || strchr("-._", *h)))
            return 0;
    return 1;
}

static int ref_matches(const char *pat, pc_str_t host)
{
    if (pat[0] == '*') {
        size_t sl = strlen(pat + 1);
        return host.n > sl && strncasecmp(host.p + host.n - sl, pat + 1, sl) == 0;
    }
    return host.n == strlen(pat) && strncasecmp(host.p, pat, host.n) == 0;
}

static const pc_route_conf_t *route_for(const pc_config_t *cfg, pc_str_t host)
{
    static pc_req_t r; /* only http and route_path are read */
    memset(&r, 0, sizeof(r));
    r.http.host = host;
    r.http.method_id = PC_M_GET;
    r.http.method = PC_STR("GET");
    r.route_path = PC_STR("/");
    return pc_route_match(cfg, &r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048)
        return 0;
    char buf[2049];
    memcpy(buf, data, size);
    buf[size] = 0;
    char *pat[MAXR], *q[MAXQ];
    size_t np = 0, nq = 0;
    for (char *line = buf, *next; line; line = next) {
        next = memchr(line, '\n', (size_t)(buf + size - line));
        if (next)
            *next++ = 0;
        char *w = line + 1, *o = line + 1;
        if (line[0] == 'R' && np < MAXR) {
            for (; w < buf + size && *w; w++)
                if (*w != '$' && (unsigned char)*w < 0x80)
                    *o++ = *w;
            *o = 0;
            pat[np++] = line + 1;
        } else if (line[0] == 'Q' && nq < MAXQ) {
            for (; w < buf + size && *w; w++)
                if ((unsigned char)*w >= 0x20 && *w != 0x7f)
                    *o++ = *w;
            *o = 0;
            q[nq++] = line + 1;
        }
    }

    int fd = memfd_create("fuzz-route.yaml", 0);
    FZ_ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    FZ_ASSERT(f);
    fputs("listeners: [{address: '127.0.0.1:1'}]\n"
          "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
          "waf: {mode: off}\n"
          "routes:\n",
          f);
    for (size_t i = 0; i < np; i++) {
        fprintf(f, "  - {name: r%zu, upstream: app, match: {path_prefix: /, host: \"", i);
        for (const char *c = pat[i]; *c; c++)
            fprintf(f, "\\x%02x", (unsigned char)*c);
        fputs("\"}}\n", f);
    }
    fputs("  - {name: any, upstream: app, match: {path_prefix: /}}\n", f);
    fflush(f);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    char low[MAXR][2049];
    int want = 1;
    for (size_t i = 0; i < np; i++) {
        size_t k = 0;
        for (; pat[i][k]; k++)
            low[i][k] = (char)tolower((unsigned char)pat[i][k]);
        if (k > 1 && low[i][k - 1] == '.')
            k--; /* matched as a Host value is: without a final dot */
        low[i][k] = 0;
        want &= ref_pattern(low[i]);
    }

    pc_errlist_t errs = {0};
    pc_config_t *cfg = pc_config_load(path, NULL, &errs);
    fclose(f);
    if (!cfg)
        FZ_ASSERT(errs.n > 0);
    FZ_ASSERT((cfg != NULL) == want);
    if (cfg) {
        FZ_ASSERT(cfg->n_routes == np + 1);
        for (size_t i = 0; i < np; i++)
            FZ_ASSERT(strcmp(cfg->routes[i].match.host, low[i]) == 0);
        for (size_t k = 0; k < nq; k++) {
            pc_str_t hv = pc_str_make(q[k], strlen(q[k]));
            pc_str_t hp = pc_route_host_part(hv);
            size_t expect = np;
            for (size_t i = 0; i < np && expect == np; i++)
                if (ref_matches(low[i], hp))
                    expect = i;
            FZ_ASSERT(route_for(cfg, hv) == &cfg->routes[expect]);
        }
        for (size_t i = 0; i < np; i++) {
            if (low[i][0] != '*')
                continue;
            char sub[2100];
            /* a pattern still ending in '.' ("*.a.." stored as "*.a.") is
             * met by a Host with one more, which pc_route_host_part drops */
            size_t ln = strlen(low[i]);
            int n = snprintf(sub, sizeof(sub), "Sub%s%s", low[i] + 1,
                             low[i][ln - 1] == '.' ? "." : "");
            for (int c = 0; c < n; c++)
                sub[c] = (char)toupper((unsigned char)sub[c]);
            const pc_route_conf_t *rt = route_for(cfg, pc_str_make(sub, (size_t)n));
            FZ_ASSERT(rt && rt <= &cfg->routes[i]);
            rt = route_for(cfg, pc_str_cstr(low[i] + 2));
            FZ_ASSERT(rt != &cfg->routes[i]);
        }
        pc_config_unref(cfg);
    }
    pc_errlist_free(&errs);
    return 0;
}
