/*
 * fuzz_cors.c — libFuzzer target for the CORS configuration (the origins,
 * methods, headers and expose lists of a policy, checked and joined when the
 * configuration is loaded) and for Origin matching (pc_cors_origin_matches).
 *
 * The input's first byte holds flags (bit 0 credentials, bits 1-3: give the
 * methods / headers / expose lists); each following line is an entry, its
 * first byte naming the list ('o' origins, 'm' methods, 'h' headers, 'e'
 * expose, '?' an Origin value to match; other lines are ignored). Entries reach the
 * YAML as double-quoted scalars with every byte escaped, so any byte but NUL
 * and '$' (interpolation) below 0x80 can reach the checks.
 *
 * Invariants (abort on violation):
 *  - the configuration loads exactly when a reference check written here
 *    accepts the lists: origins non-empty, each "*" or scheme://host[:port]
 *    in lower case (optionally with a "*." label after the scheme), "*" not with
 *    credentials, methods non-empty when given and each a method name,
 *    every headers and expose entry a field name (1*tchar);
 *    a refused configuration reports at least one error;
 *  - loaded: any_origin is set exactly when "*" is listed; the joined
 *    Allow-Methods, Allow-Headers and Expose-Headers values are the lists
 *    joined with ", " (headers in lower case), and hold nothing but field
 *    name characters and ", " (they are sent as response fields);
 *  - every listed origin matches itself and its upper-case form; a wildcard
 *    one matches a subdomain and not its bare domain; for every Origin line
 *    and every pattern, pc_cors_origin_matches agrees with a reference.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "errlist.h"
#include "filters/cors.h"
#include "fuzz_common.h"
#include "http1.h"

#define MAXE 16

typedef struct {
    char *v[MAXE];
    size_t n;
} list_t;

static int lower_or_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int ref_origin(const char *o)
{
    if (strcmp(o, "*") == 0)
        return 1;
    const char *h = strstr(o, "://");
    if (!h || h == o || !(o[0] >= 'a' && o[0] <= 'z'))
        return 0;
    for (const char *p = o + 1; p < h; p++)
        if (!lower_or_digit(*p) && !strchr("+-.", *p))
            return 0;
    h += 3;
    if (h[0] == '*' && h[1] == '.')
        h += 2;
    if (!*h || *h == '.' || *h == ':')
        return 0;
    for (; *h; h++)
        if (!lower_or_digit(*h) && !strchr("-.:[]", *h))
            return 0;
    return 1;
}

static int ref_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 32)
        return 0;
    for (; *m; m++)
        if (!((*m >= 'A' && *m <= 'Z') || *m == '-' || *m == '_'))
            return 0;
    return 1;
}

static int ref_match(const char *o, size_t on, const char *p)
{
    const char *w = strstr(p, "://*.");
    if (!w)
        return strlen(p) == on && strncasecmp(o, p, on) == 0;
    size_t sch = (size_t)(w - p) + 3;
    const char *suf = w + 4;
    size_t sn = strlen(suf);
    if (on < sch + sn + 1)
        return 0;
    if (strncasecmp(o, p, sch) != 0 || strncasecmp(o + on - sn, suf, sn) != 0)
        return 0;
    const char *a = o + sch, *b = o + on - sn; /* the labels the '*' stands for */
    if (a[0] == '.' || b[-1] == '.')
        return 0;
    for (const char *c = a; c < b; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
            return 0;
    return 1;
}

static void yaml_list(FILE *f, const char *key, const list_t *l)
{
    fprintf(f, "    %s: [", key);
    for (size_t i = 0; i < l->n; i++) {
        fputs(i ? ", \"" : "\"", f);
        for (const unsigned char *c = (const unsigned char *)l->v[i]; *c; c++)
            fprintf(f, "\\x%02x", *c);
        fputc('"', f);
    }
    fputs("]\n", f);
}

static int field_name_list(const char *s)
{
    /* "a, b, c": tchar runs separated by ", " */
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++) {
        if (fz_is_tchar((unsigned char)*p))
            continue;
        if (p[0] == ',' && p[1] == ' ' && p > s && fz_is_tchar((unsigned char)p[-1]) &&
            fz_is_tchar((unsigned char)p[2])) {
            p++;
            continue;
        }
        return 0;
    }
    return 1;
}

static void check_joined(const char *got, const list_t *l, int lower)
{
    char want[8192];
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            want[w++] = ',', want[w++] = ' ';
        for (const char *c = l->v[i]; *c; c++)
            want[w++] = lower ? (char)tolower((unsigned char)*c) : *c;
    }
    want[w] = 0;
    FZ_ASSERT(got && strcmp(got, want) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 2048)
        return 0;
    int cred = data[0] & 1, give_m = data[0] & 2, give_h = data[0] & 4, give_e = data[0] & 8;
    char buf[2048];
    size_t bn = 0;
    for (size_t i = 1; i < size; i++)
        if (data[i] && data[i] != '$' && data[i] < 0x80)
            buf[bn++] = (char)data[i];
    buf[bn] = 0;

    list_t org = {0}, meth = {0}, hdr = {0}, exp = {0}, probe = {0};
    for (char *line = buf, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!*line)
            continue;
        list_t *l = *line == 'o'   ? &org
                    : *line == 'm' ? &meth
                    : *line == 'h' ? &hdr
                    : *line == 'e' ? &exp
                    : *line == '?' ? &probe
                                   : NULL;
        if (l && l->n < MAXE)
            l->v[l->n++] = line + 1;
    }

    int fd = memfd_create("fuzz-cors.yaml", 0);
    FZ_ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    FZ_ASSERT(f);
    fputs("listeners: [{address: '127.0.0.1:1'}]\n"
          "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
          "routes: [{match: {path_prefix: /}, upstream: app, cors: p}]\n"
          "waf: {mode: off}\n"
          "cors:\n  p:\n",
          f);
    fprintf(f, "    credentials: %s\n", cred ? "true" : "false");
    yaml_list(f, "origins", &org);
    if (give_m)
        yaml_list(f, "methods", &meth);
    if (give_h)
        yaml_list(f, "headers", &hdr);
    if (give_e)
        yaml_list(f, "expose", &exp);
    fflush(f);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    int want = org.n > 0, star = 0;
    for (size_t i = 0; i < org.n; i++) {
        want &= ref_origin(org.v[i]);
        star |= strcmp(org.v[i], "*") == 0;
    }
    if (star && cred)
        want = 0;
    for (size_t i = 0; give_h && i < hdr.n; i++)
        want &= fz_is_token(hdr.v[i]);
    for (size_t i = 0; give_e && i < exp.n; i++)
        want &= fz_is_token(exp.v[i]);
    if (give_m) {
        want &= meth.n > 0;
        for (size_t i = 0; i < meth.n; i++)
            want &= ref_method(meth.v[i]);
    }

    pc_errlist_t errs = {0};
    pc_config_t *cfg = pc_config_load(path, NULL, &errs);
    fclose(f);
    if (!cfg)
        FZ_ASSERT(errs.n > 0);
    if (getenv("FZ_VERBOSE"))
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "config: %s\n", errs.msgs[i]);
    FZ_ASSERT((cfg != NULL) == want);
    if (cfg) {
        FZ_ASSERT(cfg->n_cors == 1);
        const pc_cors_conf_t *p = &cfg->cors[0];
        FZ_ASSERT(p->any_origin == star);
        static char *safelisted[] = {"GET", "HEAD", "POST"};
        list_t m3 = {{safelisted[0], safelisted[1], safelisted[2]}, 3};
        check_joined(p->allow_methods, give_m ? &meth : &m3, 0);
        if (give_h && hdr.n)
            check_joined(p->allow_headers, &hdr, 1);
        else
            FZ_ASSERT(p->allow_headers == NULL);
        if (give_e && exp.n)
            check_joined(p->expose_headers, &exp, 0);
        else
            FZ_ASSERT(p->expose_headers == NULL);
        FZ_ASSERT(field_name_list(p->allow_methods));
        FZ_ASSERT(!p->allow_headers || field_name_list(p->allow_headers));
        FZ_ASSERT(!p->expose_headers || field_name_list(p->expose_headers));

        for (size_t i = 0; i < org.n; i++) {
            const char *o = org.v[i];
            if (strcmp(o, "*") == 0)
                continue;
            char up[2048], sub[2100];
            size_t on = strlen(o);
            for (size_t k = 0; k <= on; k++)
                up[k] = (char)toupper((unsigned char)o[k]);
            const char *w = strstr(o, "://*.");
            if (!w) {
                FZ_ASSERT(pc_cors_origin_matches(pc_str_make(o, on), o));
                FZ_ASSERT(pc_cors_origin_matches(pc_str_make(up, on), o));
            } else {
                size_t sch = (size_t)(w - o) + 3;
                /* a wildcard pattern matches one label in front of its domain,
                 * not the bare domain */
                int sn = snprintf(sub, sizeof(sub), "%.*sa%s", (int)sch, o, w + 4);
                FZ_ASSERT(pc_cors_origin_matches(pc_str_make(sub, (size_t)sn), o));
                sn = snprintf(sub, sizeof(sub), "%.*s%s", (int)sch, o, w + 5);
                FZ_ASSERT(!pc_cors_origin_matches(pc_str_make(sub, (size_t)sn), o));
            }
        }
        pc_config_unref(cfg);
    }
    pc_errlist_free(&errs);

    /* matching on its own, every probe against every pattern (listed or not) */
    for (size_t k = 0; k < probe.n; k++) {
        size_t on = strlen(probe.v[k]);
        for (size_t i = 0; i < org.n; i++)
            FZ_ASSERT(pc_cors_origin_matches(pc_str_make(probe.v[k], on), org.v[i]) ==
                      ref_match(probe.v[k], on, org.v[i]));
        for (size_t i = 0; i < probe.n; i++)
            FZ_ASSERT(pc_cors_origin_matches(pc_str_make(probe.v[k], on), probe.v[i]) ==
                      ref_match(probe.v[k], on, probe.v[i]));
    }
    return 0;
}
