/*
 * config.c — loading a configuration snapshot: YAML, stages, interpolation
 * and the schema walker (the tables themselves are in config_schema.c).
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "filters/waf.h"
#include "jwt.h"
#include "plugin.h"
#include "tls.h"

#define MAX_FILE_VALUE (1u << 20) /* ${file:...} contents */

static void vreport(pc_cctx_t *c, int warn, const pc_ynode_t *node, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (warn)
        pc_errlist_warn(c->errs, c->file, node ? node->line : 0, c->path, "%s", msg);
    else
        pc_errlist_add(c->errs, c->file, node ? node->line : 0, c->path, "%s", msg);
}

void pc_cfg_error(pc_cctx_t *c, const pc_ynode_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, 0, node, fmt, ap);
    va_end(ap);
}

void pc_cfg_warn(pc_cctx_t *c, const pc_ynode_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, 1, node, fmt, ap);
    va_end(ap);
}

size_t pc_cfg_push_key(pc_cctx_t *c, const char *key)
{
    size_t mark = c->pathlen;
    int n = snprintf(c->path + c->pathlen, sizeof(c->path) - c->pathlen, "%s%s",
                     c->pathlen ? "." : "", key);
    if (n > 0)
        c->pathlen = strnlen(c->path, sizeof(c->path) - 1);
    return mark;
}

size_t pc_cfg_push_index(pc_cctx_t *c, size_t i)
{
    size_t mark = c->pathlen;
    snprintf(c->path + c->pathlen, sizeof(c->path) - c->pathlen, "[%zu]", i);
    c->pathlen = strnlen(c->path, sizeof(c->path) - 1);
    return mark;
}

void pc_cfg_pop(pc_cctx_t *c, size_t mark)
{
    c->pathlen = mark;
    c->path[mark] = '\0';
}

/* ---- value parsers ---- */

static int parse_i64(const char *s, const char **end, int64_t *out)
{
    int64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    *end = p;
    return 0;
}

static int scale(int64_t v, int64_t mul, int64_t *out)
{
    if (v > INT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

int pc_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *end;
    int64_t v;
    if (parse_i64(s, &end, &v) != 0)
        return -1;
    if (*end == '\0')
        return v == 0 ? (*ms = 0, 0) : -1; /* a bare number is ambiguous, except 0 */
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].unit) == 0)
            return scale(v, units[i].ms, ms);
    return -1;
}

int pc_parse_size(const char *s, int64_t *bytes)
{
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1 << 10},
                 {"MiB", 1 << 20},
                 {"GiB", (int64_t)1 << 30},
                 {"TiB", (int64_t)1 << 40}};
    const char *end;
    int64_t v;
    if (parse_i64(s, &end, &v) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].unit) == 0)
            return scale(v, units[i].mul, bytes);
    return -1;
}

int pc_parse_rate(const char *s, int size_units, pc_rate_t *r)
{
    const char *slash = strchr(s, '/');
    char num[64];
    if (!slash || (size_t)(slash - s) >= sizeof(num))
        return -1;
    memcpy(num, s, (size_t)(slash - s));
    num[slash - s] = '\0';
    const char *end;
    if (size_units ? pc_parse_size(num, &r->count) != 0
                   : (parse_i64(num, &end, &r->count) != 0 || *end != '\0'))
        return -1;
    const char *per = slash + 1;
    char buf[64];
    if (*per >= 'a' && *per <= 'z') { /* "100/s" means "100/1s" */
        snprintf(buf, sizeof(buf), "1%s", per);
        per = buf;
    }
    return pc_parse_duration(per, &r->period_ms) != 0 || r->period_ms <= 0 ? -1 : 0;
}

int pc_parse_hostport(const char *s, pc_sockaddr_t *addr, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    memset(addr, 0, sizeof(*addr));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host)) {
            snprintf(err, errlen, "'%s' is not [IPV6]:PORT", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        port = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host) || strchr(s, ':') != colon) {
            snprintf(err, errlen, "'%s' is not HOST:PORT", s);
            return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    uint64_t p;
    if (pc_str_to_u64(pc_str_cstr(port), 65535, &p) != 0 || strlen(port) > 5) {
        snprintf(err, errlen, "'%s': port must be 0..65535", s);
        return -1;
    }
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        addr->u.in4.sin_family = AF_INET;
        addr->u.in4.sin_addr.s_addr = htonl(INADDR_ANY);
        addr->u.in4.sin_port = htons((uint16_t)p);
        addr->len = sizeof(addr->u.in4);
        return 0;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&addr->u, res->ai_addr, res->ai_addrlen);
    addr->len = res->ai_addrlen;
    if (addr->u.sa.sa_family == AF_INET6)
        addr->u.in6.sin6_port = htons((uint16_t)p);
    else
        addr->u.in4.sin_port = htons((uint16_t)p);
    freeaddrinfo(res);
    return 0;
}

int pc_sockaddr_host(const pc_sockaddr_t *a, char *host, size_t len)
{
    snprintf(host, len, "?");
    if (a->u.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, (socklen_t)len);
        return ntohs(a->u.in6.sin6_port);
    }
    inet_ntop(AF_INET, &a->u.in4.sin_addr, host, (socklen_t)len);
    return ntohs(a->u.in4.sin_port);
}

void pc_sockaddr_str(const pc_sockaddr_t *a, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    int port = pc_sockaddr_host(a, ip, sizeof(ip));
    snprintf(out, len, a->u.sa.sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* ---- interpolation ---- */

/* Appends n bytes to a growing malloc'd string. */
static int sb_add(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return -1;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static char *read_value_file(pc_cctx_t *c, const pc_ynode_t *node, const char *path, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pc_cfg_error(c, node, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *data = malloc(MAX_FILE_VALUE + 1);
    size_t n = data ? fread(data, 1, MAX_FILE_VALUE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!data || bad || n > MAX_FILE_VALUE) {
        pc_cfg_error(c, node, "cannot read '%s': %s", path,
                     n > MAX_FILE_VALUE ? "larger than 1 MiB" : "read error");
        free(data);
        return NULL;
    }
    /* A secret file usually ends with one newline that is not part of it. */
    if (n && data[n - 1] == '\n')
        n--;
    if (n && data[n - 1] == '\r')
        n--;
    *outlen = n;
    return data;
}

const char *pc_cfg_scalar(pc_cctx_t *c, const pc_ynode_t *node, const char *what)
{
    if (!node || node->type != PC_Y_SCALAR) {
        pc_cfg_error(c, node, "expected %s", what);
        return NULL;
    }
    const char *s = node->u.str;
    if (!strchr(s, '$'))
        return s;
    char *out = NULL;
    size_t len = 0, cap = 0;
    const char *p = s;
    int ok = 1;
    while (ok && *p) {
        const char *d = strstr(p, "${");
        if (!d) {
            ok = sb_add(&out, &len, &cap, p, strlen(p)) == 0;
            break;
        }
        if (d > p && d[-1] == '$') { /* "$${" is a literal "${" */
            ok = sb_add(&out, &len, &cap, p, (size_t)(d - p - 1)) == 0 &&
                 sb_add(&out, &len, &cap, "${", 2) == 0;
            p = d + 2;
            continue;
        }
        ok = sb_add(&out, &len, &cap, p, (size_t)(d - p)) == 0;
        const char *close = strchr(d, '}');
        char ref[512];
        size_t rl = close ? (size_t)(close - d - 2) : 0;
        if (!close || rl >= sizeof(ref)) {
            pc_cfg_error(c, node, "unterminated '${' (expected ${env:NAME} or ${file:PATH})");
            ok = 0;
            break;
        }
        memcpy(ref, d + 2, rl);
        ref[rl] = '\0';
        if (strncmp(ref, "env:", 4) == 0 && ref[4]) {
            const char *v = getenv(ref + 4);
            if (!v) {
                pc_cfg_error(c, node, "environment variable %s is not set", ref + 4);
                ok = 0;
            } else {
                ok = sb_add(&out, &len, &cap, v, strlen(v)) == 0;
            }
        } else if (strncmp(ref, "file:", 5) == 0 && ref[5]) {
            size_t fl;
            char *fv = read_value_file(c, node, ref + 5, &fl);
            if (!fv)
                ok = 0;
            else if (memchr(fv, '\0', fl)) {
                pc_cfg_error(c, node, "'%s' contains a NUL byte", ref + 5);
                ok = 0;
            } else {
                ok = sb_add(&out, &len, &cap, fv, fl) == 0;
            }
            free(fv);
        } else {
            pc_cfg_error(c, node,
                         "unknown reference '${%s}' (expected ${env:NAME} or ${file:PATH})", ref);
            ok = 0;
        }
        p = close + 1;
    }
    char *res = ok ? pc_arena_strndup(c->pool, out ? out : "", len) : NULL;
    free(out);
    return res;
}

/* ---- the walker ---- */

static const pc_ckey_t *find_key(const pc_cschema_t *s, const char *name)
{
    for (const pc_ckey_t *k = s->keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static const char *suggest(const pc_cschema_t *s, const char *name)
{
    pc_suggest_t sg = PC_SUGGEST_INIT;
    for (const pc_ckey_t *k = s->keys; k->name; k++)
        pc_suggest_offer(&sg, name, k->name);
    size_t len = strlen(name);
    return pc_suggest_best(&sg, len <= 4 ? 1 : len <= 8 ? 2 : 3);
}

static void set_value(pc_cctx_t *c, const pc_ckey_t *k, const pc_ynode_t *node, void *dst);

static void walk_list(pc_cctx_t *c, const pc_ckey_t *k, const pc_ynode_t *node, void *dst)
{
    const pc_ckey_t *elem = k->sub;
    if (node->type != PC_Y_SEQ) {
        pc_cfg_error(c, node, "expected a list");
        return;
    }
    if ((k->flags & PC_K_NONEMPTY) && node->n == 0 && !c->shape_only)
        pc_cfg_error(c, node, "must not be empty");
    size_t esz = elem->type == PC_CT_STRUCT   ? ((const pc_cschema_t *)elem->sub)->size
                 : elem->type == PC_CT_CUSTOM ? elem->size
                 : elem->type == PC_CT_STR    ? sizeof(const char *)
                                              : sizeof(int64_t);
    char *arr = pc_arena_calloc(c->pool, (node->n ? node->n : 1) * esz);
    if (!arr) {
        pc_cfg_error(c, node, "out of memory");
        return;
    }
    for (size_t i = 0; i < node->n; i++) {
        size_t mark = pc_cfg_push_index(c, i);
        set_value(c, elem, node->u.items[i], arr + i * esz);
        pc_cfg_pop(c, mark);
    }
    *(void **)dst = arr;
    *(size_t *)((char *)dst + sizeof(void *)) = node->n;
}

static void walk_named(pc_cctx_t *c, const pc_ckey_t *k, const pc_ynode_t *node, void *dst)
{
    const pc_cschema_t *s = k->sub;
    if (node->type != PC_Y_MAP) {
        pc_cfg_error(c, node, "expected a mapping of names to sections");
        return;
    }
    if ((k->flags & PC_K_NONEMPTY) && node->n == 0 && !c->shape_only)
        pc_cfg_error(c, node, "must not be empty");
    char *arr = pc_arena_calloc(c->pool, (node->n ? node->n : 1) * s->size);
    if (!arr) {
        pc_cfg_error(c, node, "out of memory");
        return;
    }
    for (size_t i = 0; i < node->n; i++) {
        const pc_ypair_t *p = &node->u.pairs[i];
        size_t mark = pc_cfg_push_key(c, p->key);
        *(const char **)(arr + i * s->size) = p->key;
        pc_cfg_walk(c, s, p->value, arr + i * s->size);
        pc_cfg_pop(c, mark);
    }
    *(void **)dst = arr;
    *(size_t *)((char *)dst + sizeof(void *)) = node->n;
}

/* Formats v as the key's type is written in the config (10s, 16KiB). */
static void fmt_value(pc_ctype_e t, int64_t v, char *out, size_t len)
{
    static const struct {
        int64_t mul;
        const char *unit;
    } dur[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}},
      size[] = {{(int64_t)1 << 40, "TiB"},
                {(int64_t)1 << 30, "GiB"},
                {1 << 20, "MiB"},
                {1 << 10, "KiB"},
                {1, ""}};
    const void *tab = t == PC_CT_DURATION ? (const void *)dur
                      : t == PC_CT_SIZE   ? (const void *)size
                                          : NULL;
    if (tab && v > 0) {
        const typeof(dur[0]) *u = tab;
        for (int i = 0; i < 5; i++) {
            if (v % u[i].mul == 0) {
                snprintf(out, len, "%lld%s", (long long)(v / u[i].mul), u[i].unit);
                return;
            }
        }
    }
    snprintf(out, len, "%lld", (long long)v);
}

static void set_scalar(pc_cctx_t *c, const pc_ckey_t *k, const pc_ynode_t *node, void *dst)
{
    if (c->shape_only) {
        if (node->type != PC_Y_SCALAR)
            pc_cfg_error(c, node, "expected %s", k->what);
        return;
    }
    const char *s = pc_cfg_scalar(c, node, k->what);
    if (!s)
        return;
    int64_t v = 0;
    int bad = 0;
    switch (k->type) {
    case PC_CT_STR:
        *(const char **)dst = s;
        return;
    case PC_CT_BOOL:
        if (strcmp(s, "true") == 0)
            v = 1;
        else if (strcmp(s, "false") != 0)
            bad = 1;
        break;
    case PC_CT_INT: {
        const char *end;
        bad = parse_i64(s, &end, &v) != 0 || *end != '\0';
        break;
    }
    case PC_CT_DURATION:
        bad = pc_parse_duration(s, &v) != 0;
        break;
    case PC_CT_SIZE:
        bad = pc_parse_size(s, &v) != 0;
        break;
    case PC_CT_RATE:
    case PC_CT_SIZE_RATE: {
        pc_rate_t r;
        if (pc_parse_rate(s, k->type == PC_CT_SIZE_RATE, &r) != 0) {
            pc_cfg_error(c, node, "'%s' is not %s", s, k->what);
            return;
        }
        *(pc_rate_t *)dst = r;
        return;
    }
    case PC_CT_ENUM: {
        const char *const *names = k->sub;
        char list[256] = "";
        size_t ll = 0;
        for (int64_t i = 0; names[i]; i++) {
            if (strcmp(names[i], s) == 0) {
                *(int64_t *)dst = i;
                return;
            }
            ll += (size_t)snprintf(list + ll, sizeof(list) - ll, "%s%s", i ? ", " : "", names[i]);
            if (ll >= sizeof(list))
                ll = sizeof(list) - 1;
        }
        pc_cfg_error(c, node, "'%s' is not one of: %s", s, list);
        return;
    }
    default:
        return;
    }
    if (bad) {
        const char *hint = "";
        if (k->type == PC_CT_SIZE && strpbrk(s, "kKmMgG"))
            hint = " (sizes use binary units: 512, 16KiB, 10MiB, 1GiB)";
        else if (k->type == PC_CT_DURATION)
            hint = " (durations need a unit: 250ms, 10s, 15m, 1h, 1d)";
        else if (k->type == PC_CT_BOOL)
            hint = " (use true or false)";
        pc_cfg_error(c, node, "'%s' is not %s%s", s, k->what, hint);
        return;
    }
    if ((k->min || k->max) && (v < k->min || v > k->max)) {
        char lo[32], hi[32];
        fmt_value(k->type, k->min, lo, sizeof(lo));
        fmt_value(k->type, k->max, hi, sizeof(hi));
        pc_cfg_error(c, node, "'%s' is out of range (%s to %s)", s, lo, hi);
        return;
    }
    *(int64_t *)dst = v;
}

static void set_value(pc_cctx_t *c, const pc_ckey_t *k, const pc_ynode_t *node, void *dst)
{
    switch (k->type) {
    case PC_CT_STRUCT:
        pc_cfg_walk(c, k->sub, node, dst);
        return;
    case PC_CT_OPTIONAL: {
        /* in shape-only mode too: the walk writes into it, never into dst's
         * owner (which is scratch then anyway) */
        const pc_cschema_t *s = k->sub;
        void *obj = pc_arena_calloc(c->pool, s->size);
        if (!obj) {
            pc_cfg_error(c, node, "out of memory");
            return;
        }
        pc_cfg_walk(c, s, node, obj);
        *(void **)dst = obj;
        return;
    }
    case PC_CT_LIST:
        walk_list(c, k, node, dst);
        return;
    case PC_CT_NAMED:
        walk_named(c, k, node, dst);
        return;
    case PC_CT_CUSTOM:
        if (!c->shape_only)
            k->custom(c, node, dst);
        return;
    default:
        set_scalar(c, k, node, dst);
        return;
    }
}

static void set_default(pc_cctx_t *c, const pc_ckey_t *k, void *dst)
{
    if (k->type == PC_CT_STRUCT) {
        pc_cfg_walk(c, k->sub, NULL, dst);
        return;
    }
    if (!k->def)
        return;
    pc_ynode_t n = {0};
    n.type = PC_Y_SCALAR;
    n.plain = 1;
    n.u.str = (char *)k->def;
    n.n = strlen(k->def);
    set_value(c, k, &n, dst);
}

void pc_cfg_walk(pc_cctx_t *c, const pc_cschema_t *s, const pc_ynode_t *node, void *obj)
{
    const pc_ynode_t *where = node; /* a null node still has a line */
    if (node && pc_ynode_is_null(node))
        node = NULL;
    if (node && node->type != PC_Y_MAP) {
        pc_cfg_error(c, node, "expected a mapping");
        node = NULL;
        if (c->shape_only)
            return;
    }
    for (size_t i = 0; node && i < node->n; i++) {
        const pc_ypair_t *p = &node->u.pairs[i];
        if (find_key(s, p->key))
            continue;
        const char *hint = suggest(s, p->key);
        size_t mark = pc_cfg_push_key(c, p->key);
        pc_ynode_t at = {.line = p->key_line};
        if (hint)
            pc_cfg_error(c, &at, "unknown key (did you mean '%s'?)", hint);
        else
            pc_cfg_error(c, &at, "unknown key");
        pc_cfg_pop(c, mark);
    }
    for (const pc_ckey_t *k = s->keys; k->name; k++) {
        const pc_ynode_t *v = pc_ymap_get(node, k->name);
        void *dst = (char *)obj + k->off;
        size_t mark = pc_cfg_push_key(c, k->name);
        if (pc_ynode_is_null(v)) {
            if (!c->shape_only) {
                if (k->flags & PC_K_REQUIRED)
                    pc_cfg_error(c, v ? v : where, "missing (required)");
                else
                    set_default(c, k, dst);
            }
        } else {
            set_value(c, k, v, dst);
        }
        pc_cfg_pop(c, mark);
    }
    if (s->check && !c->shape_only)
        s->check(c, node, obj);
}

/* ---- loading ---- */

static pc_config_t *config_new(void)
{
    pc_config_t *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    pc_arena_init(&cfg->pool, NULL, 16384, 0);
    cfg->refs = 1;
    return cfg;
}

static void config_free(pc_config_t *cfg)
{
    pc_plugins_release(cfg); /* their conf may point into the pool */
    pc_jwt_release(cfg);
    pc_waf_release(cfg);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].tls)
            pc_tls_free(cfg->listeners[i].tls->tls);
    pc_arena_free(&cfg->pool);
    free(cfg);
}

/* Applies stages.<name> over the top level; checks the other stages' shape. */
static pc_ynode_t *apply_stage(pc_cctx_t *c, pc_ynode_t *root, const char *stage,
                               const pc_ynode_t *stage_key)
{
    const pc_ynode_t *stages = pc_ymap_get(root, "stages");
    const pc_ynode_t *sel = NULL;
    if (stages && !pc_ynode_is_null(stages)) {
        size_t mark = pc_cfg_push_key(c, "stages");
        if (stages->type != PC_Y_MAP) {
            pc_cfg_error(c, stages, "expected a mapping of stage names to overrides");
        } else {
            for (size_t i = 0; i < stages->n; i++) {
                const pc_ypair_t *p = &stages->u.pairs[i];
                size_t m2 = pc_cfg_push_key(c, p->key);
                if (pc_ymap_get(p->value, "stages") || pc_ymap_get(p->value, "stage")) {
                    pc_ynode_t at = {.line = p->key_line};
                    pc_cfg_error(c, &at, "a stage cannot contain 'stage' or 'stages'");
                }
                if (stage && strcmp(p->key, stage) == 0) {
                    sel = p->value;
                } else {
                    /* Keys of stages not selected are still checked, so a typo
                     * in prod is caught while running dev (into a scratch
                     * object: nothing of it may reach the configuration). */
                    pc_config_t scratch;
                    memset(&scratch, 0, sizeof(scratch));
                    c->shape_only = 1;
                    pc_cfg_walk(c, &pc_root_schema, p->value, &scratch);
                    c->shape_only = 0;
                }
                pc_cfg_pop(c, m2);
            }
        }
        pc_cfg_pop(c, mark);
    }
    if (!stage)
        return root;
    if (!sel) {
        char known[256] = "";
        size_t kl = 0;
        for (size_t i = 0; stages && stages->type == PC_Y_MAP && i < stages->n; i++) {
            kl += (size_t)snprintf(known + kl, sizeof(known) - kl, "%s%s", i ? ", " : "",
                                   stages->u.pairs[i].key);
            if (kl >= sizeof(known))
                kl = sizeof(known) - 1;
        }
        /* named by the file's stage key, or by --stage */
        size_t mark = pc_cfg_push_key(c, stage_key ? "stage" : "stages");
        pc_cfg_error(c,
                     stage_key ? stage_key
                     : stages  ? stages
                               : root,
                     "'%s' is not a stage defined under stages%s%s%s", stage,
                     kl ? " (defined: " : " (none are)", known, kl ? ")" : "");
        pc_cfg_pop(c, mark);
        return root;
    }
    if (pc_ynode_is_null(sel) || sel->type != PC_Y_MAP)
        return root; /* empty: nothing to apply; not a map: reported above */
    pc_ynode_t *merged = pc_yaml_merge(root, sel, c->pool);
    if (!merged) {
        pc_cfg_error(c, root, "out of memory");
        return root;
    }
    return merged;
}

pc_config_t *pc_config_load(const char *path, const pc_config_opts_t *opts, pc_errlist_t *errs)
{
    pc_config_t *cfg = config_new();
    if (!cfg) {
        pc_errlist_add(errs, path, 0, NULL, "out of memory");
        return NULL;
    }
    size_t before = pc_errlist_errors(errs);
    pc_cctx_t c = {0};
    c.cfg = cfg;
    c.pool = &cfg->pool;
    c.errs = errs;
    c.file = pc_arena_strndup(&cfg->pool, path, strlen(path));
    cfg->file = c.file;
    pc_ynode_t *root = pc_yaml_load_file(path, &cfg->pool, errs);
    if (!root)
        goto fail;
    if (root->type != PC_Y_MAP) {
        pc_cfg_error(&c, root, "the configuration must be a mapping of keys");
        goto fail;
    }
    const char *stage = opts ? opts->stage : NULL;
    const pc_ynode_t *sk = pc_ymap_get(root, "stage");
    if (stage || pc_ynode_is_null(sk)) {
        sk = NULL;
    } else {
        size_t mark = pc_cfg_push_key(&c, "stage");
        stage = pc_cfg_scalar(&c, sk, "a stage name");
        pc_cfg_pop(&c, mark);
    }
    root = apply_stage(&c, root, stage, sk);
    pc_cfg_walk(&c, &pc_root_schema, root, cfg);
    cfg->stage = stage ? pc_arena_strndup(&cfg->pool, stage, strlen(stage)) : NULL;
    pc_cfg_finish(&c, root); /* also after errors: -t reports every problem */
    if (pc_errlist_errors(errs) != before)
        goto fail;
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

void pc_config_ref(pc_config_t *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void pc_config_unref(pc_config_t *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        config_free(c);
}

static const char *type_name(const pc_ckey_t *k)
{
    switch (k->type) {
    case PC_CT_STRUCT:
        return "section";
    case PC_CT_LIST:
        return "list";
    case PC_CT_NAMED:
        return "map of sections";
    case PC_CT_OPTIONAL:
        return "optional section";
    default:
        return k->what;
    }
}

static void dump(const pc_cschema_t *s, char *path, size_t len,
                 void (*emit)(const char *, const char *, const char *, void *), void *arg)
{
    for (const pc_ckey_t *k = s->keys; k->name; k++) {
        size_t n = len + (size_t)snprintf(path + len, 256 - len, "%s%s", len ? "." : "", k->name);
        emit(path, type_name(k), k->def ? k->def : "", arg);
        if (k->type == PC_CT_STRUCT || k->type == PC_CT_OPTIONAL)
            dump(k->sub, path, n, emit, arg);
        else if (k->type == PC_CT_NAMED)
            dump(k->sub, path, n + (size_t)snprintf(path + n, 256 - n, ".NAME"), emit, arg);
        else if (k->type == PC_CT_LIST && ((const pc_ckey_t *)k->sub)->type == PC_CT_STRUCT)
            dump(((const pc_ckey_t *)k->sub)->sub, path,
                 n + (size_t)snprintf(path + n, 256 - n, "[]"), emit, arg);
        path[len] = '\0';
    }
}

void pc_config_dump_keys(void (*emit)(const char *path, const char *type, const char *def,
                                      void *arg),
                         void *arg)
{
    char path[256] = "";
    dump(&pc_root_schema, path, 0, emit, arg);
}
