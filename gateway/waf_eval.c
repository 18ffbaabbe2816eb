/*
 * waf_eval.c — see waf_eval.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "waf_eval.h"

#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "str.h"
#include "waf_pf.h"

#define EXCERPT_MAX 80
#define MACRO_OUT   1024

/* ---- data ---- */

void pc_waf_tx_init(pc_waf_tx_t *tx, pc_arena_t *arena, pc_op_ctx_t *opctx)
{
    memset(tx, 0, offsetof(pc_waf_tx_t, removed)); /* 4 KiB of arrays read up to their counts */
    tx->arena = arena;
    tx->opctx = opctx;
}

int pc_waf_remove(pc_waf_tx_t *tx, uint32_t lo, uint32_t hi, const pc_waf_var_t *target)
{
    if (tx->nremoved == sizeof(tx->removed) / sizeof(tx->removed[0]))
        return -1;
    tx->removed[tx->nremoved].lo = lo;
    tx->removed[tx->nremoved].hi = hi;
    tx->removed[tx->nremoved++].target = target;
    if (target)
        tx->removed_kinds |= 1u << target->kind;
    else
        tx->removed_rules++;
    return 0;
}

static int push(pc_waf_tx_t *tx, int var, const char *name, size_t nlen, const char *value,
                size_t vlen)
{
    typeof(tx->coll[0]) *c = &tx->coll[var];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        pc_waf_kv_t *a = pc_arena_alloc(tx->arena, cap * sizeof(*a));
        if (!a) {
            tx->nomem = 1;
            return -1;
        }
        if (c->n)
            memcpy(a, c->v, c->n * sizeof(*a));
        c->v = a;
        c->cap = cap;
    }
    c->v[c->n++] = (pc_waf_kv_t){name, nlen, value, vlen, NULL, NULL, 0, 0, 0, NULL};
    return 0;
}

int pc_waf_add(pc_waf_tx_t *tx, int var, const char *name, size_t nlen, const char *value,
               size_t vlen)
{
    int also = -1, names = -1;
    if (push(tx, var, name, nlen, value, vlen) != 0)
        return -1;
    switch (var) {
    case PC_WV_ARGS_GET:
        also = PC_WV_ARGS;
        names = PC_WV_ARGS_GET_NAMES;
        break;
    case PC_WV_ARGS_POST:
        also = PC_WV_ARGS;
        names = PC_WV_ARGS_POST_NAMES;
        break;
    case PC_WV_ARGS:
        names = PC_WV_ARGS_NAMES;
        break;
    case PC_WV_REQUEST_HEADERS:
        names = PC_WV_REQUEST_HEADERS_NAMES;
        break;
    case PC_WV_REQUEST_COOKIES:
        names = PC_WV_REQUEST_COOKIES_NAMES;
        break;
    case PC_WV_FILES:
        names = PC_WV_FILES_NAMES;
        break;
    default:
        return 0;
    }
    if (also >= 0 && pc_waf_add(tx, also, name, nlen, value, vlen) != 0)
        return -1;
    return names >= 0 ? push(tx, names, name, nlen, name, nlen) : 0;
}

static char *adup(pc_waf_tx_t *tx, const char *s, size_t n)
{
    char *d = pc_arena_strndup(tx->arena, s, n);
    if (!d)
        tx->nomem = 1;
    return d;
}

/* The index of TX variable name (nl bytes), or -1. The setup rules set
 * some twenty of them per request: lengths first, then the names. */
static ptrdiff_t var_index(const pc_waf_tx_t *tx, const char *name, size_t nl)
{
    for (size_t i = 0; i < tx->nvars; i++)
        if (tx->vars[i].nlen == nl && strcasecmp(tx->vars[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

int pc_waf_setvar(pc_waf_tx_t *tx, const char *name, const char *value)
{
    tx->tx_built = 0;
    size_t nl = strlen(name);
    ptrdiff_t i = var_index(tx, name, nl);
    if (i >= 0) {
        char *v = value ? adup(tx, value, strlen(value)) : NULL;
        if (value && !v)
            return -1;
        tx->vars[i].value = v;
        return 0;
    }
    if (!value)
        return 0;
    if (tx->nvars == tx->capvars) {
        size_t cap = tx->capvars ? tx->capvars * 2 : 16;
        void *a = pc_arena_alloc(tx->arena, cap * sizeof(*tx->vars));
        if (!a) {
            tx->nomem = 1;
            return -1;
        }
        if (tx->nvars)
            memcpy(a, tx->vars, tx->nvars * sizeof(*tx->vars));
        tx->vars = a;
        tx->capvars = cap;
    }
    char *n = adup(tx, name, nl), *v = adup(tx, value, strlen(value));
    if (!n || !v)
        return -1;
    tx->vars[tx->nvars].name = n;
    tx->vars[tx->nvars].value = v;
    tx->vars[tx->nvars].nlen = nl;
    tx->nvars++;
    return 0;
}

const char *pc_waf_getvar(const pc_waf_tx_t *tx, const char *name)
{
    ptrdiff_t i = var_index(tx, name, strlen(name));
    return i >= 0 ? tx->vars[i].value : NULL;
}

/* ---- macros: %{tx.name}, %{MATCHED_VAR}, %{MATCHED_VAR_NAME}, %{rule.id},
 * %{COLLECTION.name} ---- */

typedef struct {
    const pc_waf_rule_t *rule;
    const char *mvar; /* matched variable name ("ARGS:q"), made when first asked for */
    int kind;         /* ... from these */
    const char *kname;
    size_t knlen;
    const char *mval; /* matched value */
    size_t mval_len;
} mctx_t;

/* The matched variable's name, "ARGS:q" (the name cut at 100 bytes). */
static const char *mvar(pc_waf_tx_t *tx, mctx_t *m)
{
    if (!m->mvar && m->kname) {
        const char *coll = pc_waf_var_name(m->kind);
        size_t cl = strlen(coll), kl = m->knlen > 100 ? 100 : m->knlen;
        char vn[160];
        if (cl > sizeof(vn) - 2 - kl)
            cl = sizeof(vn) - 2 - kl;
        memcpy(vn, coll, cl);
        vn[cl] = ':';
        memcpy(vn + cl + 1, m->kname, kl);
        m->mvar = adup(tx, vn, cl + 1 + kl);
    }
    return m->mvar;
}

static const char *lookup(pc_waf_tx_t *tx, mctx_t *m, const char *key, size_t kl, size_t *len,
                          char *num)
{
    if (kl > 3 && strncasecmp(key, "tx.", 3) == 0) {
        char name[128];
        size_t nl = kl - 3 < sizeof(name) - 1 ? kl - 3 : sizeof(name) - 1;
        memcpy(name, key + 3, nl);
        name[nl] = 0;
        const char *v = pc_waf_getvar(tx, name);
        *len = v ? strlen(v) : 0;
        return v;
    }
    if (kl == 11 && strncasecmp(key, "MATCHED_VAR", 11) == 0) {
        *len = m->mval_len;
        return m->mval;
    }
    if (kl == 16 && strncasecmp(key, "MATCHED_VAR_NAME", 16) == 0) {
        const char *v = mvar(tx, m);
        *len = v ? strlen(v) : 0;
        return v;
    }
    if (kl == 7 && strncasecmp(key, "rule.id", 7) == 0) {
        *len = pc_u64_dec(m->rule ? m->rule->id : 0, num);
        return num;
    }
    const char *dot = memchr(key, '.', kl);
    size_t cl = dot ? (size_t)(dot - key) : kl;
    for (int v = 0; v < PC_WV_COUNT; v++) {
        if (strlen(pc_waf_var_name(v)) != cl || strncasecmp(key, pc_waf_var_name(v), cl) != 0)
            continue;
        for (size_t i = 0; i < tx->coll[v].n; i++) {
            const pc_waf_kv_t *kv = &tx->coll[v].v[i];
            if (!dot ||
                (kv->nlen == kl - cl - 1 && strncasecmp(kv->name, dot + 1, kv->nlen) == 0)) {
                *len = kv->vlen;
                return kv->value;
            }
        }
    }
    return NULL;
}

/* s with its macros expanded (in the arena); NULL when s is. */
static char *expand(pc_waf_tx_t *tx, mctx_t *m, const char *s)
{
    if (!s)
        return NULL;
    if (!strstr(s, "%{"))
        return (char *)s;
    char out[MACRO_OUT], num[24];
    size_t o = 0;
    for (const char *p = s; *p && o < sizeof(out) - 1;) {
        const char *close = p[0] == '%' && p[1] == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            out[o++] = *p++;
            continue;
        }
        size_t len = 0;
        const char *v = lookup(tx, m, p + 2, (size_t)(close - p - 2), &len, num);
        if (v && len > sizeof(out) - 1 - o)
            len = sizeof(out) - 1 - o;
        if (v)
            memcpy(out + o, v, len), o += len;
        p = close + 1;
    }
    return adup(tx, out, o);
}

static int64_t as_int(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

static void do_setvars(pc_waf_tx_t *tx, const pc_waf_rule_t *r, mctx_t *m)
{
    for (size_t i = 0; i < r->nsetvars; i++) {
        const pc_waf_setvar_t *sv = &r->setvars[i];
        char *name = expand(tx, m, sv->name);
        if (!name)
            return; /* out of memory (tx->nomem) */
        if (sv->op == PC_SV_DEL) {
            pc_waf_setvar(tx, name, NULL);
            continue;
        }
        const char *val = expand(tx, m, sv->value);
        if (sv->op == PC_SV_SET) {
            pc_waf_setvar(tx, name, val);
        } else {
            char buf[24];
            int64_t x = as_int(pc_waf_getvar(tx, name)), d = as_int(val);
            snprintf(buf, sizeof(buf), "%lld", (long long)(sv->op == PC_SV_ADD ? x + d : x - d));
            pc_waf_setvar(tx, name, buf);
        }
    }
}

/* ---- transformations, once per value and chain ---- */

/* A value's result for each chain of the rule set (rule->chain), made on
 * first use: exact, whatever the number of values and chains. */
typedef struct {
    const char *out;
    size_t len;
} tfres_t;

/* A value's transformation features (pc_tf_features), made once. */
static unsigned value_feat(pc_waf_kv_t *kv)
{
    if (!kv->feat)
        kv->feat = (uint8_t)pc_tf_features((const unsigned char *)kv->value, kv->vlen);
    return kv->feat;
}

/* Most values hold nothing a chain's decoders act on: chain ch then
 * leaves kv as it is (1) or only lowers its case (2); 0 when it must run. */
static inline int plain_effect(const pc_waf_chain_t *ch, pc_waf_kv_t *kv)
{
    return ch->effect && !(value_feat(kv) & ch->triggers) ? ch->effect : 0;
}

/* kv through r's chain, whose plain_effect on kv the caller has (eff). */
static const char *transform(pc_waf_tx_t *tx, const pc_waf_rule_t *r, pc_waf_kv_t *kv, int eff,
                             size_t *outlen)
{
    if (!r->ntfs) {
        *outlen = kv->vlen;
        return kv->value;
    }
    /* a plain value: the value itself, or its lower-case copy (shared by
     * every chain that only lowers it) */
    if (eff) {
        *outlen = kv->vlen;
        if (eff == 1)
            return kv->value;
        if (!kv->lower) {
            if (!(kv->lower = pc_arena_alloc(tx->arena, kv->vlen + 1)))
                return NULL;
            pc_lower_copy(kv->lower, kv->value, kv->vlen);
            kv->lower[kv->vlen] = 0;
        }
        return kv->lower;
    }
    tfres_t *res = kv->tf;
    if (!res && !(res = kv->tf = pc_arena_calloc(tx->arena, tx->nchains * sizeof(*res))))
        return NULL;
    tfres_t *e = &res[r->tfchain];
    if (e->out) {
        *outlen = e->len;
        return e->out;
    }
    /* each step into a buffer sized for what it gets: sizing both for the
     * worst case of every step compounds (3^k) over a chain */
    const unsigned char *in = (const unsigned char *)kv->value;
    size_t len = kv->vlen;
    for (unsigned i = 0; i < r->ntfs; i++) {
        unsigned char *out = pc_arena_alloc(tx->arena, PC_TF_OUT_MAX(len));
        if (!out)
            return NULL;
        len = pc_tf_apply(r->tfs[i], in, len, out);
        in = out;
    }
    *e = (tfres_t){(const char *)in, len};
    *outlen = len;
    return (const char *)in;
}

/* ---- targets ---- */

/* The bit of kv's name (in collection var) among the rule set's names,
 * looked up once per value; 0 when it is none of them. */
static uint64_t name_bit(const pc_waf_tx_t *tx, int var, pc_waf_kv_t *kv)
{
    if (!kv->name_ix) {
        unsigned i = pc_waf_name_find(tx->names, var, kv->name, kv->nlen);
        kv->name_ix = i ? (uint8_t)i : PC_WAF_NO_NAME;
    }
    return kv->name_ix == PC_WAF_NO_NAME ? 0 : (uint64_t)1 << (kv->name_ix - 1);
}

/* Is kv (a value of collection var) one sel names? */
static int name_is(const pc_waf_tx_t *tx, const pc_waf_var_t *sel, int var, pc_waf_kv_t *kv)
{
    if (sel->sel_bits)
        return (name_bit(tx, var, kv) & sel->sel_bits) != 0;
    if (sel->sel_re) {
        int rc = pcre2_match_8(sel->sel_re, (const unsigned char *)kv->name, kv->nlen, 0, 0,
                               tx->opctx->md, NULL);
        return rc >= 0;
    }
    return sel->sel_len == kv->nlen && strncasecmp(sel->sel, kv->name, kv->nlen) == 0;
}

static int removed(const pc_waf_tx_t *tx, const pc_waf_rule_t *head, int var, pc_waf_kv_t *kv)
{
    if (!(tx->removed_kinds & (1u << var)))
        return 0;
    for (unsigned i = 0; i < tx->nremoved; i++) {
        const pc_waf_var_t *t = tx->removed[i].target;
        if (head->id >= tx->removed[i].lo && head->id <= tx->removed[i].hi && t && t->kind == var &&
            (!t->sel && !t->sel_re ? 1 : name_is(tx, t, var, kv)))
            return 1;
    }
    return 0;
}

static int excluded(const pc_waf_tx_t *tx, const pc_waf_rule_t *r, int var, pc_waf_kv_t *kv)
{
    if (!(r->excl_kinds & (1u << var)))
        return 0;
    if (name_bit(tx, var, kv) & r->excl_bits)
        return 1;
    if (!(r->excl_slow & (1u << var)))
        return 0;
    for (size_t i = r->ntargets; i < r->nvars; i++) {
        const pc_waf_var_t *x = &r->vars[i];
        if ((x->kind == var ||
             (x->kind == PC_WV_ARGS && (var == PC_WV_ARGS_GET || var == PC_WV_ARGS_POST))) &&
            name_is(tx, x, var, kv))
            return 1;
    }
    return 0;
}

/* The TX collection as pairs (materialised when a rule targets TX, again
 * only after a change). */
static void tx_collection(pc_waf_tx_t *tx)
{
    if (tx->tx_built)
        return;
    tx->tx_built = 1;
    tx->coll[PC_WV_TX].n = 0;
    for (size_t i = 0; i < tx->nvars; i++)
        if (tx->vars[i].value)
            push(tx, PC_WV_TX, tx->vars[i].name, tx->vars[i].nlen, tx->vars[i].value,
                 strlen(tx->vars[i].value));
}

/* Does rule r (one link) match? On a match, m says what matched. */
static int rule_matches(const pc_waf_rule_t *head, const pc_waf_rule_t *r, pc_waf_tx_t *tx,
                        mctx_t *m, int *limit_hit)
{
    if (r->action_only)
        return 1;
    int64_t numparam = 0;
    if (r->op.macro) {
        mctx_t none = {head, NULL, 0, NULL, 0, NULL, 0};
        numparam = as_int(expand(tx, &none, r->op.param));
    }
    /* the head's prefilter bit: its word and mask */
    int pf = r == head && r->pf >= 0 && tx->pf_on;
    size_t pfw = pf ? (size_t)r->pf / 64 : 0;
    uint64_t pfb = pf ? (uint64_t)1 << (r->pf % 64) : 0;
    for (size_t i = 0; i < r->ntargets; i++) {
        const pc_waf_var_t *t = &r->vars[i];
        if (t->kind == PC_WV_TX)
            tx_collection(tx);
        typeof(tx->coll[0]) *c = &tx->coll[t->kind];
        if (t->count) {
            size_t k = 0;
            for (size_t j = 0; j < c->n; j++)
                k += (!t->sel && !t->sel_re) || name_is(tx, t, t->kind, &c->v[j]);
            char num[24];
            size_t nl = pc_u64_dec(k, num);
            if (pc_op_match(&r->op, tx->opctx, (const unsigned char *)num, nl, numparam)) {
                *m = (mctx_t){head, pc_waf_var_name(t->kind), t->kind, NULL,
                              0,    adup(tx, num, nl),        nl};
                return 1;
            }
            continue;
        }
        /* none of the collection's values has one of the rule's literals
         * (the rule reads it, so its group scanned every value) */
        if (pf && !(tx->pf_coll[(size_t)t->kind * tx->pf_words + pfw] & pfb))
            continue;
        for (size_t j = 0; j < c->n; j++) {
            pc_waf_kv_t *kv = &c->v[j];
            /* the prefilter saw none of its literals in this value */
            if (pf && kv->pf && !(kv->pf[pfw] & pfb))
                continue;
            if ((t->sel || t->sel_re) && !name_is(tx, t, t->kind, kv))
                continue;
            if (excluded(tx, r, t->kind, kv) || removed(tx, head, t->kind, kv))
                continue;
            /* a value the chain leaves as it is (up to case): the operator
             * ruled out by the value's features (no byte it needs), or, not
             * lowered yet, by the regex's first checks, before a copy */
            int eff = tx->chains ? plain_effect(&tx->chains[r->tfchain], kv) : 0;
            if (eff && r->op.needs && !(value_feat(kv) & r->op.needs))
                continue;
            if (eff == 2 && !kv->lower &&
                !pc_op_may_match(&r->op, (const unsigned char *)kv->value, kv->vlen, 1))
                continue;
            size_t tl;
            const char *tv = transform(tx, r, kv, eff, &tl);
            if (!tv) {
                tx->nomem = 1;
                return 1; /* out of memory: never a pass */
            }
            if (pc_op_match(&r->op, tx->opctx, (const unsigned char *)tv, tl, numparam)) {
                *limit_hit |= tx->opctx->limit_hit;
                *m = (mctx_t){head, NULL, t->kind, kv->name, kv->nlen, tv, tl};
                if (r->capture)
                    for (unsigned k = 0; k < tx->opctx->ncaps; k++) {
                        char cn[4] = {(char)('0' + k), 0};
                        char *cv = adup(tx, tv + tx->opctx->caps[k].off, tx->opctx->caps[k].len);
                        if (cv)
                            pc_waf_setvar(tx, cn, cv);
                    }
                return 1;
            }
        }
    }
    return 0;
}

/* ---- the phase ---- */

static int rule_removed(const pc_waf_tx_t *tx, uint32_t id)
{
    if (!tx->removed_rules)
        return 0;
    for (unsigned i = 0; i < tx->nremoved; i++)
        if (!tx->removed[i].target && id >= tx->removed[i].lo && id <= tx->removed[i].hi)
            return 1;
    return 0;
}

static void record(pc_waf_tx_t *tx, const pc_waf_rule_t *head, mctx_t *m, int limit_hit)
{
    if (tx->nhits == PC_WAF_MAX_HITS)
        return;
    pc_waf_hit_t *h = &tx->hits[tx->nhits++];
    h->id = head->id;
    h->msg = expand(tx, m, head->msg);
    h->logdata = expand(tx, m, head->logdata);
    h->var = mvar(tx, m);
    h->excerpt =
        m->mval ? adup(tx, m->mval, m->mval_len > EXCERPT_MAX ? EXCERPT_MAX : m->mval_len) : NULL;
    h->limit_hit = limit_hit;
}

/* The collections some rule of the group still reads after the
 * transaction's removals (ctl:ruleRemoveById, ruleRemoveTargetById and the
 * route's exclusions). A collection nobody reads is not transformed and
 * scanned for the group: the shipped set's setup rule, for one, takes the
 * raw body of form and JSON requests away from every rule but one. */
static uint32_t group_reads(const pc_waf_tx_t *tx, const pc_pf_group_t *pg)
{
    if (!tx->nremoved)
        return pg->colls;
    uint32_t reads = 0;
    for (unsigned k = 0; k < pg->nrules && reads != pg->colls; k++) {
        uint32_t id = pg->rules[k].id, want = pg->rules[k].colls & ~reads;
        if (!want || rule_removed(tx, id))
            continue;
        for (unsigned x = 0; x < tx->nremoved; x++) {
            const pc_waf_var_t *t = tx->removed[x].target;
            if (t && !t->sel && !t->sel_re && id >= tx->removed[x].lo && id <= tx->removed[x].hi)
                want &= ~(1u << t->kind);
        }
        reads |= want;
    }
    return reads;
}

/* Is a chain's result tv for kv the value itself, up to case? */
static int unchanged(const pc_waf_kv_t *kv, const char *tv, size_t tl)
{
    if (tv == kv->value || tv == kv->lower)
        return 1;
    if (tl != kv->vlen)
        return 0;
    for (size_t i = 0; i < tl; i++)
        if (pc_lower((unsigned char)tv[i]) != pc_lower((unsigned char)kv->value[i]))
            return 0;
    return 1;
}

/* ---- a worker's cache of the prefilter's scans ----
 *
 * Names and header values repeat from request to request (the same
 * User-Agent, Accept, argument and JSON key names): the bits pf_all finds
 * in one are kept per worker, keyed by its exact bytes and the rule set's
 * load, and a value found there is not scanned again. The scan is the
 * request's costliest step in time (its table is megabytes and mostly out
 * of the caches between requests). A lookup compares the whole value, so
 * a hit gives the very bits a scan would; argument values, which seldom
 * repeat, are not kept. */

#define PF_CACHE_SLOTS 256 /* direct-mapped */
#define PF_CACHE_KEY   96  /* longer values are scanned every time */
#define PF_CACHE_WORDS 4   /* rule sets with more prefiltered rules: no cache */

typedef struct {
    uint64_t hash;
    uint32_t gen; /* pc_waf_ruleset_t.pf_gen; 0: empty */
    uint32_t len;
    uint64_t bits[PF_CACHE_WORDS];
    char key[PF_CACHE_KEY];
} pf_cached_t;

#define PF_CACHED_COLLS                                                                        \
    ((1u << PC_WV_REQUEST_HEADERS) | (1u << PC_WV_REQUEST_HEADERS_NAMES) |                     \
     (1u << PC_WV_ARGS_NAMES) | (1u << PC_WV_ARGS_GET_NAMES) | (1u << PC_WV_ARGS_POST_NAMES) | \
     (1u << PC_WV_REQUEST_COOKIES_NAMES) | (1u << PC_WV_REQUEST_METHOD) |                      \
     (1u << PC_WV_REQUEST_PROTOCOL))

static uint64_t pf_hash(const unsigned char *v, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n, x;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, v + i, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    x = 0;
    memcpy(&x, v + i, n - i);
    h = (h ^ x) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

/* The bits of the rule set's literals in kv's value itself (pf_all), into
 * raw: scanned once per value, and for a name or header value taken from
 * the worker's cache when it was scanned before. */
static void raw_bits(const pc_waf_ruleset_t *rs, pc_waf_tx_t *tx, int c, pc_waf_kv_t *kv,
                     uint64_t *raw)
{
    if (kv->pf_raw)
        return;
    kv->pf_raw = 1;
    const unsigned char *v = (const unsigned char *)kv->value;
    size_t words = rs->pf_words;
    pf_cached_t *slot = NULL;
    uint64_t h = 0;
    if ((PF_CACHED_COLLS & (1u << c)) && kv->vlen <= PF_CACHE_KEY && words <= PF_CACHE_WORDS) {
        pf_cached_t *cache = tx->opctx->pf_cache;
        if (!cache)
            cache = tx->opctx->pf_cache = calloc(PF_CACHE_SLOTS, sizeof(pf_cached_t));
        if (cache) {
            h = pf_hash(v, kv->vlen);
            slot = &cache[h % PF_CACHE_SLOTS];
            if (slot->gen == rs->pf_gen && slot->hash == h && slot->len == kv->vlen &&
                memcmp(slot->key, v, kv->vlen) == 0) {
                memcpy(raw, slot->bits, words * sizeof(uint64_t));
                return;
            }
        }
    }
    pc_ac_sets(rs->pf_all, v, kv->vlen, raw);
    if (slot) {
        *slot = (pf_cached_t){h, rs->pf_gen, (uint32_t)kv->vlen, {0}, {0}};
        memcpy(slot->bits, raw, words * sizeof(uint64_t));
        memcpy(slot->key, v, kv->vlen);
    }
}

/* Does group pg take a plain value's bits from the value's own scan? (its
 * chain leaves such a value as it is, up to case) */
static int raw_for_plain(const pc_waf_ruleset_t *rs, const pc_pf_group_t *pg)
{
    return rs->pf_all && rs->chains[pg->chain_of->tfchain].effect;
}

/* Scans the values added since the last scan with each of the phase's
 * prefilter groups: a rule is a candidate once one of its literals is in
 * one of the (transformed) values of the collections its group reads.
 *
 * Most values are plain for every chain (nothing a decoder acts on): all
 * the groups whose chain leaves such a value as it is (up to case) then
 * take their bits from the one scan of the value itself (pf_all) at once;
 * the others transform it and scan the result with their own automaton.
 * -1 when out of memory. */
static int prefilter(const pc_waf_ruleset_t *rs, pc_waf_tx_t *tx, int phase)
{
    size_t words = rs->pf_words;
    if (!tx->pf_hit) {
        tx->pf_hit = pc_arena_calloc(tx->arena, words * sizeof(uint64_t));
        tx->pf_coll = pc_arena_calloc(tx->arena, PC_WV_COUNT * words * sizeof(uint64_t));
        tx->pf_plain = pc_arena_alloc(tx->arena, words * sizeof(uint64_t));
        tx->pf_reads = pc_arena_alloc(tx->arena, rs->npf_groups * sizeof(uint32_t));
        tx->pf_words = words;
        if (!tx->pf_hit || !tx->pf_coll || !tx->pf_plain || !tx->pf_reads)
            return -1;
    }
    uint32_t all = 0, *reads = tx->pf_reads;
    for (unsigned g = 0; g < rs->npf_groups; g++) {
        reads[g] = rs->pf_groups[g].phase == phase ? group_reads(tx, &rs->pf_groups[g]) : 0;
        all |= reads[g];
    }
    for (; all; all &= all - 1) {
        int c = __builtin_ctz(all);
        uint32_t *done = &tx->pf_done[phase - 1][c];
        if (*done == tx->coll[c].n)
            continue;
        /* the groups that read c: the bits of those a plain value passes
         * through unchanged, and the features that make it not plain */
        uint64_t *plain = tx->pf_plain;
        unsigned triggers = 0;
        int any_plain = 0, others = 0;
        memset(plain, 0, words * sizeof(uint64_t));
        for (unsigned g = 0; g < rs->npf_groups; g++) {
            const pc_pf_group_t *pg = &rs->pf_groups[g];
            if (!(reads[g] & (1u << c)))
                continue;
            if (raw_for_plain(rs, pg)) {
                for (size_t w = 0; w < words; w++)
                    plain[w] |= pg->mask[w];
                triggers |= rs->chains[pg->chain_of->tfchain].triggers;
                any_plain = 1;
            } else {
                others = 1;
            }
        }
        uint64_t *in_coll = tx->pf_coll + (size_t)c * words;
        for (; *done < tx->coll[c].n; (*done)++) {
            pc_waf_kv_t *kv = &tx->coll[c].v[*done];
            if (!kv->pf && !(kv->pf = pc_arena_calloc(tx->arena, 2 * words * 8)))
                return -1;
            uint64_t *raw = kv->pf + words;
            int is_plain = any_plain && !(value_feat(kv) & triggers);
            if (is_plain) {
                raw_bits(rs, tx, c, kv, raw);
                for (size_t w = 0; w < words; w++)
                    kv->pf[w] |= raw[w] & plain[w];
            }
            for (unsigned g = 0; (!is_plain || others) && g < rs->npf_groups; g++) {
                const pc_pf_group_t *pg = &rs->pf_groups[g];
                const pc_waf_chain_t *ch = &rs->chains[pg->chain_of->tfchain];
                if (!(reads[g] & (1u << c)) || (is_plain && raw_for_plain(rs, pg)))
                    continue;
                /* a plain value is scanned as it is (the automata ignore
                 * case): no transformed copy is made for the prefilter */
                size_t tl = kv->vlen;
                const char *tv = kv->value;
                if (!plain_effect(ch, kv) && !(tv = transform(tx, pg->chain_of, kv, 0, &tl)))
                    return -1;
                if (rs->pf_all && unchanged(kv, tv, tl)) {
                    raw_bits(rs, tx, c, kv, raw);
                    for (size_t w = 0; w < words; w++)
                        kv->pf[w] |= raw[w] & pg->mask[w];
                } else {
                    pc_ac_sets(pg->ac, (const unsigned char *)tv, tl, kv->pf);
                }
            }
            for (size_t w = 0; w < words; w++) {
                tx->pf_hit[w] |= kv->pf[w];
                in_coll[w] |= kv->pf[w];
            }
        }
    }
    return 0;
}

/* Can the rule with prefilter pf match anything? (no prefilter, or one
 * of its literals seen) */
static int candidate(const pc_waf_tx_t *tx, int32_t pf)
{
    if (pf < 0 || !tx->pf_on)
        return 1;
    return (tx->pf_hit[pf / 64] >> (pf % 64)) & 1;
}

int pc_waf_eval(const pc_waf_ruleset_t *rs, pc_waf_tx_t *tx, int phase)
{
    if (tx->allowed || tx->engine == PC_WE_OFF || rs->engine == PC_WE_OFF)
        return 0;
    tx->nchains = rs->nchains;
    tx->chains = rs->chains;
    tx->names = &rs->names;
    tx->pf_on = rs->npf && !rs->no_prefilter;
    if (tx->nomem) /* an earlier phase ran out of memory: never a pass */
        return PC_WA_DENY;
    if (phase < 1 || phase > 2)
        return 0;
    if (tx->pf_on && prefilter(rs, tx, phase) != 0) {
        tx->nomem = 1;
        return PC_WA_DENY; /* out of memory: never a pass */
    }
    const pc_waf_step_t *steps = rs->steps[phase - 1];
    for (size_t i = 0; i < rs->nsteps[phase - 1]; i++) {
        const pc_waf_step_t *st = &steps[i];
        if (st->marker || rule_removed(tx, st->id) || !candidate(tx, st->pf))
            continue;
        const pc_waf_rule_t *r = st->r;
        mctx_t m = {r, NULL, 0, NULL, 0, NULL, 0};
        int limit_hit = 0;
        const pc_waf_rule_t *link = r;
        struct timespec t0;
        if (tx->timed)
            clock_gettime(CLOCK_MONOTONIC, &t0);
        while (link && rule_matches(r, link, tx, &m, &limit_hit) && !tx->nomem) {
            /* the chain's next rule sees this link's match */
            /* (a rule stops at its first match: MATCHED_VARS holds that one) */
            tx->coll[PC_WV_MATCHED_VAR].n = tx->coll[PC_WV_MATCHED_VARS].n = 0;
            push(tx, PC_WV_MATCHED_VAR, "MATCHED_VAR", 11, m.mval, m.mval_len);
            tx->coll[PC_WV_MATCHED_VAR_NAME].n = tx->coll[PC_WV_MATCHED_VARS_NAMES].n = 0;
            /* the names only when a rule may read them (making them costs) */
            const char *mv = link->chained || rs->reads_matched_names ? mvar(tx, &m) : NULL;
            push(tx, PC_WV_MATCHED_VARS, mv ? mv : "", mv ? strlen(mv) : 0, m.mval, m.mval_len);
            if (mv) {
                push(tx, PC_WV_MATCHED_VAR_NAME, "MATCHED_VAR_NAME", 16, mv, strlen(mv));
                push(tx, PC_WV_MATCHED_VARS_NAMES, mv, strlen(mv), mv, strlen(mv));
            }
            link = link->chained;
        }
        if (tx->timed) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            pc_waf_stat_timed(r->stat, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000L +
                                                  (t1.tv_nsec - t0.tv_nsec)));
        }
        if (tx->nomem)
            return PC_WA_DENY;
        if (link)
            continue; /* a link did not match */
        if (!r->action_only)
            pc_waf_stat_hit(r->stat_slot);
        for (link = r; link; link = link->chained) {
            do_setvars(tx, link, &m);
            for (size_t k = 0; k < link->nctls; k++) {
                const pc_waf_ctl_t *ctl = &link->ctls[k];
                if (ctl->kind == PC_CTL_RULE_ENGINE) {
                    tx->engine = ctl->engine;
                } else {
                    /* past 64 exclusions, the rule stays: never less inspection */
                    (void)pc_waf_remove(tx, ctl->id_lo, ctl->id_hi,
                                        ctl->kind == PC_CTL_RULE_REMOVE_TARGET_BY_ID ? &ctl->target
                                                                                     : NULL);
                }
            }
        }
        if (r->log && !r->action_only)
            record(tx, r, &m, limit_hit);
        if (tx->nomem) /* a variable went unset: the score cannot be trusted */
            return PC_WA_DENY;
        int d = r->disruptive ? r->disruptive : rs->defaults[phase - 1].disruptive;
        if (d == PC_WA_BLOCK) /* block: what the phase's SecDefaultAction says */
            d = rs->defaults[phase - 1].disruptive == PC_WA_BLOCK
                    ? PC_WA_PASS
                    : rs->defaults[phase - 1].disruptive;
        if (d == PC_WA_ALLOW) {
            tx->allowed = 1;
            return 0;
        }
        if (d == PC_WA_DENY && tx->engine == PC_WE_ON && rs->engine == PC_WE_ON) {
            tx->disruptive = d;
            tx->status = r->status ? r->status : rs->defaults[phase - 1].status;
            tx->decided_by = r->id;
            return d;
        }
        if (r->skip_after)
            i = st->skip_to; /* its marker: evaluation goes on after it */
        if (tx->engine == PC_WE_OFF)
            return 0;
    }
    return 0;
}
