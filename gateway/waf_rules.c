/*
 * waf_rules.c — see waf_rules.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "waf_rules.h"

#include <glob.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "str.h"
#include "waf_pf.h"

#define MAX_INCLUDE_DEPTH 8
#define RULE_FILE_MAX     (4 << 20)
#define MAX_ARGS          4

static const char *const var_names[PC_WV_COUNT] = {
#define X(id, name) name,
    PC_WAF_VARS(X)
#undef X
};

typedef struct {
    pc_waf_ruleset_t *rs;
    pc_errlist_t *errs;
    const char *file; /* owned by rs->files */
    int line;
    int depth;
    int failed;
} lctx_t;

static void err(lctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(lctx_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pc_errlist_add(c->errs, c->file, c->line, NULL, "%s", msg);
    c->failed = 1;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

const char *pc_waf_var_name(int v)
{
    return v >= 0 && v < PC_WV_COUNT ? var_names[v] : "?";
}

/* ---- variables ---- */

void pc_waf_var_free(pc_waf_var_t *v)
{
    free(v->sel);
    if (v->sel_re)
        pcre2_code_free(v->sel_re);
    memset(v, 0, sizeof(*v));
}

/* One target: [!|&]NAME[:selector]. */
static int parse_var(lctx_t *c, const char *p, size_t n, pc_waf_var_t *v)
{
    memset(v, 0, sizeof(*v));
    if (n && (p[0] == '!' || p[0] == '&')) {
        v->exclude = p[0] == '!';
        v->count = p[0] == '&';
        p++, n--;
    }
    const char *colon = memchr(p, ':', n);
    size_t nl = colon ? (size_t)(colon - p) : n;
    int kind = -1;
    for (int i = 0; i < PC_WV_COUNT; i++)
        if (strlen(var_names[i]) == nl && strncasecmp(var_names[i], p, nl) == 0)
            kind = i;
    if (kind < 0) {
        err(c, "unsupported variable '%.*s'", (int)nl, p);
        return -1;
    }
    v->kind = (uint8_t)kind;
    if (colon) {
        const char *s = colon + 1;
        size_t sl = n - nl - 1;
        if (!sl) {
            err(c, "variable '%.*s': empty selector", (int)n, p);
            return -1;
        }
        if (sl >= 2 && s[0] == '/' && s[sl - 1] == '/') {
            int code;
            PCRE2_SIZE at;
            v->sel_re = pcre2_compile((PCRE2_SPTR)s + 1, sl - 2, PCRE2_CASELESS, &code, &at, NULL);
            if (!v->sel_re) {
                char msg[160];
                pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
                err(c, "variable '%.*s': invalid selector regex: %s", (int)n, p, msg);
                return -1;
            }
        } else if (!(v->sel = dupn(s, sl))) {
            err(c, "out of memory");
            return -1;
        } else {
            v->sel_len = sl;
            if (kind != PC_WV_ARGS && kind != PC_WV_ARGS_GET && kind != PC_WV_ARGS_POST &&
                kind != PC_WV_REQUEST_COOKIES && kind != PC_WV_FILES)
                for (char *q = v->sel; *q; q++) /* header and TX names are case-insensitive */
                    *q = (char)pc_lower((unsigned char)*q);
        }
    } else if (v->exclude) {
        err(c, "'!%.*s' excludes nothing: name what to exclude (e.g. !ARGS:password)", (int)n, p);
        return -1;
    }
    return 0;
}

int pc_waf_parse_target(const char *s, size_t n, pc_waf_var_t *v, char *err, size_t errlen)
{
    pc_errlist_t errs = {0};
    lctx_t c = {NULL, &errs, NULL, 0, 0, 0};
    int rc = 0;
    if (n && (s[0] == '&' || s[0] == '!')) {
        snprintf(err, errlen, "a target cannot start with '%c'", s[0]);
        return -1;
    }
    if (parse_var(&c, s, n, v) != 0) {
        /* the message without the "-: " file prefix */
        const char *m = errs.n ? errs.msgs[0] : "invalid target";
        snprintf(err, errlen, "%s", strncmp(m, "-: ", 3) == 0 ? m + 3 : m);
        rc = -1;
    }
    pc_errlist_free(&errs);
    return rc;
}

/* ---- counters ---- */

#define STATS_CAP 8192 /* rule ids with counters; later ones share `overflow` */

static pc_waf_stat_t stats[STATS_CAP], overflow = {0, STATS_CAP};
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

/* A thread's counters, one per slot (the overflow's last). Blocks are
 * never freed: a thread that ends leaves its counts to the sum. A thread
 * that cannot get one counts in `shared`, with atomic additions. The hits
 * have an array of their own: some rules match every request (the
 * paranoia-level skips), and a rule set's hit counters then share a few
 * cache lines instead of spreading over three times as many. */
typedef struct counts_block_s {
    struct counts_block_s *next;
    uint64_t hits[STATS_CAP + 1];
    struct {
        uint64_t evals, ns;
    } timed[STATS_CAP + 1];
} counts_block_t;

static counts_block_t *blocks, shared; /* blocks: under stats_lock to add */
static __thread counts_block_t *mine;

static counts_block_t *my_block(void)
{
    if (!mine) {
        counts_block_t *b = calloc(1, sizeof(*b));
        if (!b)
            return &shared;
        pthread_mutex_lock(&stats_lock);
        b->next = blocks;
        __atomic_store_n(&blocks, b, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&stats_lock);
        mine = b;
    }
    return mine;
}

/* Only this thread writes its block: a plain addition, stored whole so a
 * reader never sees half of it. */
static void count(uint64_t *v, uint64_t n, counts_block_t *b)
{
    if (b == &shared)
        __atomic_add_fetch(v, n, __ATOMIC_RELAXED);
    else
        __atomic_store_n(v, *v + n, __ATOMIC_RELAXED);
}

void pc_waf_stat_hit(uint32_t slot)
{
    counts_block_t *b = my_block();
    count(&b->hits[slot], 1, b);
}

void pc_waf_stat_timed(const pc_waf_stat_t *s, uint64_t ns)
{
    counts_block_t *b = my_block();
    count(&b->timed[s->slot].evals, 1, b);
    count(&b->timed[s->slot].ns, ns, b);
}

pc_waf_counts_t pc_waf_stat_read(const pc_waf_stat_t *s)
{
    pc_waf_counts_t sum = {0, 0, 0};
    for (counts_block_t *b = __atomic_load_n(&blocks, __ATOMIC_ACQUIRE);; b = b->next) {
        if (!b)
            b = &shared; /* last */
        sum.hits += __atomic_load_n(&b->hits[s->slot], __ATOMIC_RELAXED);
        sum.evals += __atomic_load_n(&b->timed[s->slot].evals, __ATOMIC_RELAXED);
        sum.ns += __atomic_load_n(&b->timed[s->slot].ns, __ATOMIC_RELAXED);
        if (b == &shared)
            return sum;
    }
}

pc_waf_stat_t *pc_waf_stat(uint32_t id)
{
    /* Looked up at load time only (rules keep the pointer): a lock is fine. */
    pthread_mutex_lock(&stats_lock);
    size_t i = (id * 2654435761u) % STATS_CAP, k = 0;
    while (k < STATS_CAP && stats[i].id && stats[i].id != id) {
        i = (i + 1) % STATS_CAP;
        k++;
    }
    static uint32_t nslots; /* in order of first use: a rule set's counters share cache lines */
    pc_waf_stat_t *s = &overflow;
    if (id && k < STATS_CAP) {
        if (!stats[i].id) {
            stats[i].slot = nslots++;
            __atomic_store_n(&stats[i].id, id, __ATOMIC_RELEASE);
        }
        s = &stats[i];
    }
    pthread_mutex_unlock(&stats_lock);
    return s;
}

void pc_waf_stats_each(void (*fn)(const pc_waf_stat_t *s, void *arg), void *arg)
{
    for (size_t i = 0; i < STATS_CAP; i++)
        if (__atomic_load_n(&stats[i].id, __ATOMIC_ACQUIRE))
            fn(&stats[i], arg);
}

/* VAR|VAR|... into the rule's list (appended). */
static int parse_vars(lctx_t *c, pc_waf_rule_t *r, const char *p, size_t n)
{
    size_t count = 1;
    for (size_t i = 0; i < n; i++)
        count += p[i] == '|';
    pc_waf_var_t *vs = realloc(r->vars, (r->nvars + count) * sizeof(*vs));
    if (!vs) {
        err(c, "out of memory");
        return -1;
    }
    r->vars = vs;
    int rc = 0;
    for (size_t i = 0; i <= n;) {
        size_t s = i;
        /* a '|' inside a /regex/ selector does not separate */
        int in_re = 0;
        while (i < n && (p[i] != '|' || in_re)) {
            if (p[i] == '/' && (i == 0 || p[i - 1] == ':' || in_re))
                in_re = !in_re;
            i++;
        }
        if (i == s) {
            err(c, "empty variable in '%.*s'", (int)n, p);
            rc = -1;
        } else if (parse_var(c, p + s, i - s, &r->vars[r->nvars]) == 0) {
            r->nvars++;
        } else {
            rc = -1;
        }
        i++;
    }
    return rc;
}

/* ---- actions ---- */

int pc_waf_parse_ids(const char *s, size_t n, uint32_t *lo, uint32_t *hi)
{
    uint64_t a, b;
    const char *dash = memchr(s, '-', n);
    if (pc_str_to_u64(pc_str_make(s, dash ? (size_t)(dash - s) : n), UINT32_MAX, &a) != 0 ||
        (dash &&
         pc_str_to_u64(pc_str_make(dash + 1, n - (size_t)(dash - s) - 1), UINT32_MAX, &b) != 0) ||
        !a || (dash && b < a))
        return -1;
    *lo = (uint32_t)a;
    *hi = dash ? (uint32_t)b : (uint32_t)a;
    return 0;
}

static int parse_ids(lctx_t *c, const char *s, size_t n, uint32_t *lo, uint32_t *hi)
{
    if (pc_waf_parse_ids(s, n, lo, hi) == 0)
        return 0;
    err(c, "'%.*s' is not a rule id or id range", (int)n, s);
    return -1;
}

static int parse_setvar(lctx_t *c, pc_waf_rule_t *r, const char *v, size_t n)
{
    pc_waf_setvar_t sv = {0};
    int del = n && v[0] == '!';
    if (del)
        v++, n--;
    if (n < 4 || strncasecmp(v, "tx.", 3) != 0) {
        err(c, "setvar:'%.*s': only tx.NAME variables are supported", (int)n, v);
        return -1;
    }
    v += 3, n -= 3;
    const char *eq = memchr(v, '=', n);
    size_t nl = eq ? (size_t)(eq - v) : n;
    if (!nl || (del && eq)) {
        err(c, "setvar: malformed '%.*s'", (int)n, v);
        return -1;
    }
    sv.op = del ? PC_SV_DEL : PC_SV_SET;
    sv.name = dupn(v, nl);
    for (char *q = sv.name; q && *q; q++)
        *q = (char)pc_lower((unsigned char)*q);
    if (eq) {
        const char *val = eq + 1;
        size_t vl = n - nl - 1;
        if (vl && (val[0] == '+' || val[0] == '-')) {
            sv.op = val[0] == '+' ? PC_SV_ADD : PC_SV_SUB;
            val++, vl--;
        }
        sv.value = dupn(val, vl);
    } else if (!del) {
        sv.value = dupn("1", 1); /* setvar:tx.flag */
    }
    pc_waf_setvar_t *a = !sv.name || (!del && !sv.value)
                             ? NULL
                             : realloc(r->setvars, (r->nsetvars + 1) * sizeof(*a));
    if (!a) {
        free(sv.name);
        free(sv.value);
        err(c, "out of memory");
        return -1;
    }
    r->setvars = a;
    r->setvars[r->nsetvars++] = sv;
    return 0;
}

static int parse_ctl(lctx_t *c, pc_waf_rule_t *r, const char *v, size_t n)
{
    pc_waf_ctl_t ctl;
    memset(&ctl, 0, sizeof(ctl));
    const char *eq = memchr(v, '=', n);
    size_t nl = eq ? (size_t)(eq - v) : n;
    const char *arg = eq ? eq + 1 : "";
    size_t al = eq ? n - nl - 1 : 0;
    if (nl == 14 && strncmp(v, "ruleRemoveById", 14) == 0) {
        ctl.kind = PC_CTL_RULE_REMOVE_BY_ID;
        if (parse_ids(c, arg, al, &ctl.id_lo, &ctl.id_hi) != 0)
            return -1;
    } else if (nl == 20 && strncmp(v, "ruleRemoveTargetById", 20) == 0) {
        const char *semi = memchr(arg, ';', al);
        ctl.kind = PC_CTL_RULE_REMOVE_TARGET_BY_ID;
        if (!semi) {
            err(c, "ctl:ruleRemoveTargetById needs ID;TARGET");
            return -1;
        }
        if (parse_ids(c, arg, (size_t)(semi - arg), &ctl.id_lo, &ctl.id_hi) != 0 ||
            parse_var(c, semi + 1, al - (size_t)(semi - arg) - 1, &ctl.target) != 0)
            return -1;
    } else if (nl == 10 && strncmp(v, "ruleEngine", 10) == 0) {
        ctl.kind = PC_CTL_RULE_ENGINE;
        if (al == 2 && strncasecmp(arg, "on", 2) == 0)
            ctl.engine = PC_WE_ON;
        else if (al == 3 && strncasecmp(arg, "off", 3) == 0)
            ctl.engine = PC_WE_OFF;
        else if (al == 13 && strncasecmp(arg, "detectiononly", 13) == 0)
            ctl.engine = PC_WE_DETECTION_ONLY;
        else {
            err(c, "ctl:ruleEngine=%.*s: expected On, Off or DetectionOnly", (int)al, arg);
            return -1;
        }
    } else {
        err(c,
            "unsupported ctl '%.*s' (supported: ruleRemoveById, ruleRemoveTargetById, "
            "ruleEngine)",
            (int)nl, v);
        return -1;
    }
    pc_waf_ctl_t *a = realloc(r->ctls, (r->nctls + 1) * sizeof(*a));
    if (!a) {
        pc_waf_var_free(&ctl.target);
        err(c, "out of memory");
        return -1;
    }
    r->ctls = a;
    r->ctls[r->nctls++] = ctl;
    return 0;
}

static int set_text(lctx_t *c, char **dst, const char *name, const char *v, size_t n)
{
    if (*dst) {
        err(c, "action '%s' given twice", name);
        return -1;
    }
    if (!(*dst = dupn(v, n))) {
        err(c, "out of memory");
        return -1;
    }
    return 0;
}

/* One action: name[:value]. chained: the rule continues a chain. */
static int action(lctx_t *c, pc_waf_rule_t *r, const char *name, size_t nl, const char *v,
                  size_t vl, int has_value, int chained)
{
#define IS(s) (nl == sizeof(s) - 1 && memcmp(name, s, nl) == 0)
    static const char *const flow_only[] = {"id", "phase", "skipAfter"};
    for (int i = 0; i < 3; i++)
        if (chained && nl == strlen(flow_only[i]) && memcmp(name, flow_only[i], nl) == 0) {
            err(c, "a chained rule cannot have '%s' (it belongs to the first rule of the chain)",
                flow_only[i]);
            return -1;
        }
    uint64_t x;
    if (IS("id")) {
        if (!has_value || pc_str_to_u64(pc_str_make(v, vl), UINT32_MAX, &x) != 0 || !x) {
            err(c, "id:%.*s is not a rule id (1 to 4294967295)", (int)vl, v);
            return -1;
        }
        r->id = (uint32_t)x;
    } else if (IS("phase")) {
        if (vl == 7 && memcmp(v, "request", 7) == 0)
            x = 2;
        else if (vl == 8 && memcmp(v, "response", 8) == 0)
            x = 4;
        else if (vl == 7 && memcmp(v, "logging", 7) == 0)
            x = 5;
        else if (pc_str_to_u64(pc_str_make(v, vl), 5, &x) != 0 || !x) {
            err(c, "phase:%.*s: expected 1 to 5 (or request, response, logging)", (int)vl, v);
            return -1;
        }
        r->phase = (uint8_t)x;
    } else if (IS("msg")) {
        return set_text(c, &r->msg, "msg", v, vl);
    } else if (IS("logdata")) {
        return set_text(c, &r->logdata, "logdata", v, vl);
    } else if (IS("ver")) {
        return set_text(c, &r->ver, "ver", v, vl);
    } else if (IS("severity")) {
        static const char *const sev[] = {"EMERGENCY", "ALERT",  "CRITICAL", "ERROR",
                                          "WARNING",   "NOTICE", "INFO",     "DEBUG"};
        int ok = 0;
        for (int i = 0; i < 8; i++)
            ok |= (vl == strlen(sev[i]) && strncasecmp(v, sev[i], vl) == 0) ||
                  (vl == 1 && v[0] == '0' + i);
        if (!ok) {
            err(c, "severity:%.*s: expected EMERGENCY .. DEBUG or 0 .. 7", (int)vl, v);
            return -1;
        }
        return set_text(c, &r->severity, "severity", v, vl);
    } else if (IS("tag")) {
        char **t = realloc(r->tags, (r->ntags + 1) * sizeof(*t));
        if (t)
            r->tags = t;
        if (!t || !(t[r->ntags] = dupn(v, vl))) {
            err(c, "out of memory");
            return -1;
        }
        r->ntags++;
    } else if (IS("block") || IS("deny") || IS("pass") || IS("allow")) {
        if (chained) {
            err(c, "a chained rule cannot have the disruptive action '%.*s'", (int)nl, name);
            return -1;
        }
        r->disruptive = IS("block")  ? PC_WA_BLOCK
                        : IS("deny") ? PC_WA_DENY
                        : IS("pass") ? PC_WA_PASS
                                     : PC_WA_ALLOW;
    } else if (IS("log") || IS("nolog")) {
        r->log = IS("log");
    } else if (IS("status")) {
        if (pc_str_to_u64(pc_str_make(v, vl), 599, &x) != 0 || x < 100) {
            err(c, "status:%.*s is not an HTTP status", (int)vl, v);
            return -1;
        }
        r->status = (int)x;
    } else if (IS("t")) {
        int tf = pc_tf_parse(v, vl);
        if (tf < 0) {
            err(c, "unsupported transformation 't:%.*s'", (int)vl, v);
            return -1;
        }
        if (tf == PC_TF_NONE) {
            r->ntfs = 0;
        } else if (r->ntfs == sizeof(r->tfs)) {
            err(c, "more than %zu transformations", sizeof(r->tfs));
            return -1;
        } else {
            r->tfs[r->ntfs++] = (uint8_t)tf;
        }
    } else if (IS("chain")) {
        r->chain = 1;
    } else if (IS("capture")) {
        r->capture = 1;
    } else if (IS("setvar")) {
        return parse_setvar(c, r, v, vl);
    } else if (IS("skipAfter")) {
        return set_text(c, &r->skip_after, "skipAfter", v, vl);
    } else if (IS("ctl")) {
        return parse_ctl(c, r, v, vl);
    } else {
        err(c, "unsupported action '%.*s'", (int)nl, name);
        return -1;
    }
    return 0;
#undef IS
}

/* "a,b:c,d:'e,f'" */
static int parse_actions(lctx_t *c, pc_waf_rule_t *r, const char *p, size_t n, int chained)
{
    int rc = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        if (i == n)
            break;
        size_t s = i;
        while (i < n && p[i] != ':' && p[i] != ',')
            i++;
        size_t nl = i;
        while (nl > s && (p[nl - 1] == ' ' || p[nl - 1] == '\t'))
            nl--;
        const char *v = NULL;
        size_t vl = 0;
        int has = i < n && p[i] == ':';
        if (has) {
            i++;
            while (i < n && p[i] == ' ')
                i++;
            if (i < n && p[i] == '\'') {
                v = p + ++i;
                while (i < n && !(p[i] == '\'' && p[i - 1] != '\\'))
                    i++;
                if (i == n) {
                    err(c, "unterminated quote in action '%.*s'", (int)(nl - s), p + s);
                    return -1;
                }
                vl = (size_t)(p + i - v);
                i++;
            } else {
                v = p + i;
                while (i < n && p[i] != ',')
                    i++;
                vl = (size_t)(p + i - v);
                while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                    vl--;
            }
        }
        if (action(c, r, p + s, nl - s, v ? v : "", vl, has, chained) != 0)
            rc = -1;
    }
    return rc;
}

/* ---- rules ---- */

static void rule_free(pc_waf_rule_t *r)
{
    while (r) {
        pc_waf_rule_t *next = r->chained;
        for (size_t i = 0; i < r->nvars; i++)
            pc_waf_var_free(&r->vars[i]);
        free(r->vars);
        pc_op_free(&r->op);
        free(r->msg);
        free(r->logdata);
        free(r->severity);
        free(r->ver);
        for (size_t i = 0; i < r->ntags; i++)
            free(r->tags[i]);
        free(r->tags);
        for (size_t i = 0; i < r->nsetvars; i++) {
            free(r->setvars[i].name);
            free(r->setvars[i].value);
        }
        free(r->setvars);
        for (size_t i = 0; i < r->nctls; i++)
            pc_waf_var_free(&r->ctls[i].target);
        free(r->ctls);
        free(r->skip_after);
        free(r->marker);
        free(r);
        r = next;
    }
}

static pc_waf_rule_t *new_rule(lctx_t *c)
{
    pc_waf_rule_t *r = calloc(1, sizeof(*r));
    if (!r) {
        err(c, "out of memory");
        return NULL;
    }
    r->file = c->file;
    r->line = c->line;
    r->log = 1;
    r->pf = -1;
    return r;
}

static int add_rule(lctx_t *c, pc_waf_rule_t *r)
{
    pc_waf_ruleset_t *rs = c->rs;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        pc_waf_rule_t **a = realloc(rs->rules, cap * sizeof(*a));
        if (!a) {
            err(c, "out of memory");
            rule_free(r);
            return -1;
        }
        rs->rules = a;
        rs->cap = cap;
    }
    r->stat = pc_waf_stat(r->id);
    r->stat_slot = r->stat->slot;
    rs->rules[rs->n++] = r;
    return 0;
}

pc_waf_rule_t *pc_waf_find(const pc_waf_ruleset_t *rs, uint32_t id)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rules[i]->id == id && !rs->rules[i]->marker)
            return rs->rules[i];
    return NULL;
}

/* The operator argument: [!]@name param, or a bare regex. */
static int parse_operator(lctx_t *c, pc_waf_rule_t *r, const char *p, size_t n)
{
    int neg = n && p[0] == '!';
    const char *q = p + neg;
    size_t qn = n - (size_t)neg;
    int kind = PC_OP_RX;
    if (qn && q[0] == '@') {
        size_t nl = 1;
        while (nl < qn && q[nl] != ' ' && q[nl] != '\t')
            nl++;
        kind = pc_op_parse_name(q + 1, nl - 1);
        if (kind < 0) {
            err(c, "unsupported operator '%.*s'", (int)nl, q);
            return -1;
        }
        q += nl, qn -= nl;
        while (qn && (q[0] == ' ' || q[0] == '\t'))
            q++, qn--;
    }
    char msg[300], dir[1024];
    const char *slash = c->file ? strrchr(c->file, '/') : NULL;
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - c->file) : 1, slash ? c->file : ".");
    if (pc_op_compile(&r->op, kind, neg, q, qn, dir, msg, sizeof(msg)) != 0) {
        err(c, "operator '@%s': %s", pc_op_name(kind), msg);
        return -1;
    }
    return 0;
}

/* Checks a completed rule (head of a chain). */
static void check_rule(lctx_t *c, pc_waf_rule_t *r)
{
    if (!r->id) {
        err(c, "rule without an id (id:N is required)");
        return;
    }
    pc_waf_rule_t *dup = pc_waf_find(c->rs, r->id);
    if (dup && dup != r)
        err(c, "duplicate rule id %u (first at %s:%d)", r->id, dup->file, dup->line);
    if (!r->phase)
        r->phase = 2;
}

/* One logical line split into its directive and up to MAX_ARGS arguments
 * (quoted with "...": \" is a quote, every other backslash stays). */
static int split(lctx_t *c, char *p, char **args, size_t *lens)
{
    int n = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == MAX_ARGS + 1) {
            err(c, "too many arguments");
            return -1;
        }
        if (*p == '"') {
            char *o = ++p;
            args[n] = o;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1] == '"')
                    p++;
                *o++ = *p++;
            }
            if (*p != '"') {
                err(c, "unterminated quote");
                return -1;
            }
            lens[n] = (size_t)(o - args[n]);
            *o = 0; /* at or before the closing quote */
            p++;
        } else {
            args[n] = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
            lens[n] = (size_t)(p - args[n]);
            if (*p)
                *p++ = 0;
        }
        n++;
    }
    return n;
}

static int load_file(lctx_t *c, const char *path);

static const char *keep_name(lctx_t *c, const char *name)
{
    char **f = realloc(c->rs->files, (c->rs->nfiles + 1) * sizeof(*f));
    if (!f)
        return NULL;
    c->rs->files = f;
    return f[c->rs->nfiles++] = strdup(name);
}

static void directive(lctx_t *c, char *line)
{
    char *a[MAX_ARGS + 1];
    size_t l[MAX_ARGS + 1];
    int n = split(c, line, a, l);
    if (n <= 0)
        return;
    const char *d = a[0];
    pc_waf_rule_t *open = c->rs->open_chain;
    if (open && strcmp(d, "SecRule") != 0) {
        err(c, "the rule at line %d ends with 'chain' but '%s' follows instead of a SecRule",
            open->line, d);
        c->rs->open_chain = NULL;
        open = NULL;
    }
    if (strcmp(d, "SecRule") == 0 || strcmp(d, "SecAction") == 0) {
        int is_action = d[3] == 'A';
        int want = is_action ? 2 : 4;
        if (n != want && !(n == want - 1 && !is_action)) {
            err(c, is_action ? "SecAction takes one argument: \"ACTIONS\""
                             : "SecRule takes VARIABLES \"OPERATOR\" [\"ACTIONS\"]");
            return;
        }
        pc_waf_rule_t *r = new_rule(c);
        if (!r)
            return;
        int bad = 0;
        if (is_action) {
            r->action_only = 1;
            pc_op_compile(&r->op, PC_OP_UNCONDITIONAL_MATCH, 0, "", 0, NULL, NULL, 0);
            bad |= parse_actions(c, r, a[1], l[1], 0) != 0;
        } else {
            bad |= parse_vars(c, r, a[1], l[1]) != 0;
            bad |= parse_operator(c, r, a[2], l[2]) != 0;
            if (n == 4)
                bad |= parse_actions(c, r, a[3], l[3], open != NULL) != 0;
        }
        if (open) { /* this rule continues the chain */
            open->chained = r;
            c->rs->open_chain = r->chain ? r : NULL;
            return;
        }
        if (add_rule(c, r) != 0)
            return;
        if (!bad)
            check_rule(c, r);
        c->rs->open_chain = r->chain ? r : NULL;
    } else if (strcmp(d, "SecMarker") == 0) {
        if (n != 2) {
            err(c, "SecMarker takes one argument: a name");
            return;
        }
        pc_waf_rule_t *r = new_rule(c);
        if (r && !(r->marker = dupn(a[1], l[1]))) {
            err(c, "out of memory");
            rule_free(r);
        } else if (r) {
            add_rule(c, r);
        }
    } else if (strcmp(d, "SecDefaultAction") == 0) {
        pc_waf_rule_t *t = n == 2 ? new_rule(c) : NULL;
        if (n != 2)
            err(c, "SecDefaultAction takes one argument: \"ACTIONS\"");
        else if (t && parse_actions(c, t, a[1], l[1], 0) == 0) {
            if (!t->phase || !t->disruptive) {
                err(c, "SecDefaultAction needs a phase and a disruptive action (e.g. "
                       "phase:2,log,pass)");
            } else {
                pc_waf_rule_t *dst = &c->rs->defaults[t->phase - 1];
                dst->phase = t->phase;
                dst->disruptive = t->disruptive;
                dst->log = t->log;
                dst->status = t->status;
                memcpy(dst->tfs, t->tfs, sizeof(t->tfs));
                dst->ntfs = t->ntfs;
            }
        }
        rule_free(t);
    } else if (strcmp(d, "SecRuleRemoveById") == 0) {
        if (n < 2)
            err(c, "SecRuleRemoveById takes rule ids or ranges");
        for (int i = 1; i < n; i++) {
            uint32_t lo, hi;
            if (parse_ids(c, a[i], l[i], &lo, &hi) != 0)
                continue;
            size_t k = 0;
            for (size_t j = 0; j < c->rs->n; j++) {
                pc_waf_rule_t *r = c->rs->rules[j];
                if (!r->marker && r->id >= lo && r->id <= hi)
                    rule_free(r);
                else
                    c->rs->rules[k++] = r;
            }
            c->rs->n = k;
        }
    } else if (strcmp(d, "SecRuleUpdateTargetById") == 0) {
        uint32_t lo, hi;
        if (n != 3) {
            err(c, "SecRuleUpdateTargetById takes an id and \"TARGETS\"");
            return;
        }
        if (parse_ids(c, a[1], l[1], &lo, &hi) != 0)
            return;
        int found = 0;
        for (size_t j = 0; j < c->rs->n; j++) {
            pc_waf_rule_t *r = c->rs->rules[j];
            if (!r->marker && !r->action_only && r->id >= lo && r->id <= hi) {
                found = 1;
                parse_vars(c, r, a[2], l[2]);
            }
        }
        if (!found)
            err(c, "SecRuleUpdateTargetById: no rule %.*s is loaded yet", (int)l[1], a[1]);
    } else if (strcmp(d, "SecRuleEngine") == 0) {
        if (n == 2 && strcasecmp(a[1], "On") == 0)
            c->rs->engine = PC_WE_ON;
        else if (n == 2 && strcasecmp(a[1], "Off") == 0)
            c->rs->engine = PC_WE_OFF;
        else if (n == 2 && strcasecmp(a[1], "DetectionOnly") == 0)
            c->rs->engine = PC_WE_DETECTION_ONLY;
        else
            err(c, "SecRuleEngine takes On, Off or DetectionOnly");
    } else if (strcmp(d, "Include") == 0) {
        if (n != 2) {
            err(c, "Include takes one path (globs allowed)");
            return;
        }
        char pattern[1024];
        const char *slash = strrchr(c->file, '/');
        if (a[1][0] == '/' || !slash)
            snprintf(pattern, sizeof(pattern), "%s", a[1]);
        else
            snprintf(pattern, sizeof(pattern), "%.*s/%s", (int)(slash - c->file), c->file, a[1]);
        glob_t g;
        int rc = glob(pattern, 0, NULL, &g);
        if (rc != 0) {
            err(c, "Include %s: no such file", a[1]);
        } else {
            lctx_t sub = *c;
            sub.depth++;
            for (size_t i = 0; i < g.gl_pathc; i++)
                load_file(&sub, g.gl_pathv[i]);
            c->failed |= sub.failed;
        }
        if (rc == 0)
            globfree(&g);
    } else {
        err(c, "unsupported directive '%s'", d);
    }
}

/* Logical lines: a final backslash continues a line; blank lines and
 * lines starting with # are skipped. Each is one directive, reported at
 * the line it starts on. */
static void parse_text(lctx_t *c, const char *text, size_t n)
{
    char *buf = malloc(n + 1);
    size_t bl = 0, i = 0;
    int start = 0, line = 0;
    if (!buf) {
        err(c, "out of memory");
        return;
    }
    while (i < n) {
        size_t s = i;
        while (i < n && text[i] != '\n')
            i++;
        size_t e = i;
        if (i < n)
            i++;
        line++;
        if (e > s && text[e - 1] == '\r')
            e--;
        if (!bl) {
            size_t k = s;
            while (k < e && (text[k] == ' ' || text[k] == '\t'))
                k++;
            if (k == e || text[k] == '#')
                continue;
            start = line;
        }
        int cont = e > s && text[e - 1] == '\\';
        memcpy(buf + bl, text + s, e - s - (size_t)cont);
        bl += e - s - (size_t)cont;
        if (!cont) {
            buf[bl] = 0;
            c->line = start;
            directive(c, buf);
            bl = 0;
        }
    }
    if (bl) { /* a continuation at the end of the file */
        buf[bl] = 0;
        c->line = start;
        directive(c, buf);
    }
    free(buf);
}

static int load_file(lctx_t *c, const char *path)
{
    if (c->depth > MAX_INCLUDE_DEPTH) {
        err(c, "Include nested more than %d deep (a loop?)", MAX_INCLUDE_DEPTH);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f && (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))) {
        fclose(f); /* a FIFO or a device would hang or flood the load */
        err(c, "'%s' is not a regular file", path);
        return -1;
    }
    if (f && st.st_size > RULE_FILE_MAX) { /* read in part, rules would be missing */
        fclose(f);
        err(c, "rule file '%s' is larger than %d MiB", path, RULE_FILE_MAX >> 20);
        return -1;
    }
    char *text = f ? malloc((size_t)st.st_size + 1) : NULL;
    size_t n = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
    if (f)
        fclose(f);
    if (!text) {
        err(c, "cannot read rule file '%s'", path);
        return -1;
    }
    lctx_t sub = *c;
    sub.file = keep_name(c, path);
    sub.line = 0;
    if (!sub.file) { /* not skipped in silence: a rule set short of a file may block nothing */
        free(text);
        err(c, "out of memory");
        return -1;
    }
    parse_text(&sub, text, n);
    free(text);
    c->failed |= sub.failed;
    return 0;
}

/* The slot of a name in collection kind (case-insensitive). */
static unsigned name_hash(int kind, const char *name, size_t len)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((unsigned char)name[i] | 0x20u)) * 16777619u; /* letters of either case alike */
    return (h ^ h >> 16) & 255;
}

unsigned pc_waf_name_find(const pc_waf_names_t *names, int kind, const char *name, size_t len)
{
    if (!((names->lens[kind] >> (len < 63 ? len : 63)) & 1))
        return 0;
    /* at most PC_WAF_NAMES of 256 slots are taken: a probe meets an empty one */
    for (unsigned s = name_hash(kind, name, len);; s = (s + 1) & 255) {
        unsigned i = names->slot[s];
        if (!i || (names->e[i - 1].kind == kind && names->e[i - 1].len == len &&
                   strncasecmp(names->e[i - 1].name, name, len) == 0))
            return i;
    }
}

/* The bit of (kind, name) in names, added when new; 0 when names is full. */
static uint64_t name_bit(pc_waf_names_t *names, int kind, const char *name, size_t len)
{
    unsigned i = pc_waf_name_find(names, kind, name, len);
    if (!i) {
        if (names->n == PC_WAF_NAMES)
            return 0;
        unsigned s = name_hash(kind, name, len);
        while (names->slot[s])
            s = (s + 1) & 255;
        names->e[names->n].kind = (uint8_t)kind;
        names->e[names->n].len = len;
        names->e[names->n].name = name;
        names->lens[kind] |= (uint64_t)1 << (len < 63 ? len : 63);
        i = names->slot[s] = (uint8_t)++names->n;
    }
    return (uint64_t)1 << (i - 1);
}

/* A variable's sel_bits, and what it adds to its rule's exclusions. */
static void name_bits(pc_waf_names_t *names, pc_waf_rule_t *r, pc_waf_var_t *x)
{
    int args = x->exclude && x->kind == PC_WV_ARGS; /* !ARGS:x also excludes from ARGS_GET, _POST */
    x->sel_bits = 0;
    if (x->sel && !x->sel_re) {
        uint64_t a = name_bit(names, x->kind, x->sel, x->sel_len);
        uint64_t g = args ? name_bit(names, PC_WV_ARGS_GET, x->sel, x->sel_len) : a;
        uint64_t p = args ? name_bit(names, PC_WV_ARGS_POST, x->sel, x->sel_len) : a;
        x->sel_bits = a && g && p ? a | g | p : 0;
    }
    if (x->exclude) {
        uint32_t kinds = args ? (1u << PC_WV_ARGS | 1u << PC_WV_ARGS_GET | 1u << PC_WV_ARGS_POST)
                              : 1u << x->kind;
        r->excl_kinds |= kinds;
        r->excl_bits |= x->sel_bits;
        r->excl_slow |= x->sel_bits ? 0 : kinds;
    }
}

/* What evaluation needs to know of every rule and chained link: its
 * transformation chain's number (a value keeps one result per chain, and
 * what the chain does to a plain value), which collections it excludes
 * names from, and whether any rule reads MATCHED_VAR_NAME & co. */
static int prepare_links(pc_waf_ruleset_t *rs)
{
    size_t links = 0;
    for (size_t i = 0; i < rs->n; i++)
        for (pc_waf_rule_t *r = rs->rules[i]; r; r = r->chained)
            links++;
    const pc_waf_rule_t **first = malloc((links + 1) * sizeof(*first));
    if (!first)
        return -1;
    rs->nchains = 0;
    rs->reads_matched_names = 0;
    memset(&rs->names, 0, sizeof(rs->names));
    free(rs->chains);
    if (!(rs->chains = calloc(links + 1, sizeof(*rs->chains)))) {
        free(first);
        return -1;
    }
    for (size_t i = 0; i < rs->n; i++)
        for (pc_waf_rule_t *r = rs->rules[i]; r; r = r->chained) {
            unsigned k = 0;
            while (k < rs->nchains &&
                   !(first[k]->ntfs == r->ntfs && memcmp(first[k]->tfs, r->tfs, r->ntfs) == 0))
                k++;
            if (k == rs->nchains) {
                if (k == UINT16_MAX) {
                    free(first);
                    return -1;
                }
                /* what the chain does to a value without its triggers */
                uint8_t eff = 1, trig = 0;
                for (unsigned s = 0; s < r->ntfs && eff; s++) {
                    int e = pc_tf_plain_effect(r->tfs[s]);
                    eff = e == 0 ? 0 : e == 2 ? 2 : eff;
                    trig |= (uint8_t)pc_tf_triggers(r->tfs[s]);
                }
                rs->chains[k] = (pc_waf_chain_t){eff, trig};
                first[rs->nchains++] = r;
            }
            r->tfchain = (uint16_t)k;
            for (size_t v = 0; v < r->nvars; v++)
                rs->reads_matched_names |= r->vars[v].kind == PC_WV_MATCHED_VAR_NAME ||
                                           r->vars[v].kind == PC_WV_MATCHED_VARS ||
                                           r->vars[v].kind == PC_WV_MATCHED_VARS_NAMES;
            r->excl_kinds = 0;
            r->excl_bits = 0;
            r->excl_slow = 0;
            r->ntargets = 0;
            for (size_t v = 0; v < r->nvars; v++) {
                name_bits(&rs->names, r, &r->vars[v]);
                if (!r->vars[v].exclude) { /* the targets first, in their order */
                    pc_waf_var_t t = r->vars[v];
                    memmove(&r->vars[r->ntargets + 1], &r->vars[r->ntargets],
                            (v - r->ntargets) * sizeof(t));
                    r->vars[r->ntargets++] = t;
                }
            }
        }
    free(first);
    return 0;
}

/* The evaluation loops of phases 1 and 2 (after the prefilter, which
 * gives rules their pf). */
static int make_steps(pc_waf_ruleset_t *rs)
{
    for (int p = 0; p < 2; p++) {
        free(rs->steps[p]);
        rs->nsteps[p] = 0;
        if (!(rs->steps[p] = calloc(rs->n + 1, sizeof(*rs->steps[p]))))
            return -1;
        pc_waf_step_t *st = rs->steps[p];
        for (size_t i = 0; i < rs->n; i++) {
            const pc_waf_rule_t *r = rs->rules[i];
            if (r->marker || r->phase == p + 1)
                st[rs->nsteps[p]++] = (pc_waf_step_t){r, r->marker, r->pf, r->id, 0};
        }
        /* skipAfter goes to the first marker of its name that follows */
        for (size_t k = 0; k < rs->nsteps[p]; k++) {
            const char *to = st[k].r->skip_after;
            size_t j = k + 1;
            while (to && j < rs->nsteps[p] && !(st[j].marker && strcmp(st[j].marker, to) == 0))
                j++;
            st[k].skip_to = (uint32_t)j;
        }
    }
    return 0;
}

/* After everything loaded: a chain still open, skipAfter targets, then
 * what evaluation precomputes. */
static void finish(lctx_t *c)
{
    pc_pf_free(c->rs);
    if (c->rs->open_chain) {
        c->line = c->rs->open_chain->line;
        err(c, "the last rule ends with 'chain' but no rule follows");
        c->rs->open_chain = NULL;
    }
    for (size_t i = 0; i < c->rs->n; i++) {
        pc_waf_rule_t *r = c->rs->rules[i];
        if (!r->skip_after)
            continue;
        size_t j = i + 1;
        while (j < c->rs->n &&
               !(c->rs->rules[j]->marker && strcmp(c->rs->rules[j]->marker, r->skip_after) == 0))
            j++;
        if (j == c->rs->n) {
            lctx_t at = *c;
            at.file = r->file;
            at.line = r->line;
            err(&at, "skipAfter:%s: no SecMarker of that name follows the rule", r->skip_after);
            c->failed = 1;
        }
    }
    if (prepare_links(c->rs) != 0)
        err(c, "out of memory");
    pc_pf_build(c->rs);
    if (make_steps(c->rs) != 0)
        err(c, "out of memory");
}

int pc_waf_load(pc_waf_ruleset_t *rs, const char *path, pc_errlist_t *errs)
{
    lctx_t c = {rs, errs, path, 0, 0, 0};
    load_file(&c, path);
    finish(&c);
    return c.failed ? -1 : 0;
}

int pc_waf_load_text(pc_waf_ruleset_t *rs, const char *name, const char *text, size_t n,
                     pc_errlist_t *errs)
{
    lctx_t c = {rs, errs, name, 0, 0, 0};
    c.file = keep_name(&c, name);
    if (!c.file) {
        c.file = name;
        err(&c, "out of memory");
        return -1;
    }
    parse_text(&c, text, n);
    finish(&c);
    return c.failed ? -1 : 0;
}

void pc_waf_ruleset_free(pc_waf_ruleset_t *rs)
{
    pc_pf_free(rs);
    free(rs->chains);
    free(rs->steps[0]);
    free(rs->steps[1]);
    for (size_t i = 0; i < rs->n; i++)
        rule_free(rs->rules[i]);
    free(rs->rules);
    for (size_t i = 0; i < rs->nfiles; i++)
        free(rs->files[i]);
    free(rs->files);
    memset(rs, 0, sizeof(*rs));
}
