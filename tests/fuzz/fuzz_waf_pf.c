/*
 * fuzz_waf_pf.c — libFuzzer target for the prefilter's literal extraction
 * (gateway/waf_pf.c), checked against PCRE2 itself.
 *
 * Input: a pattern, a NUL byte, then subjects separated by NUL bytes. For
 * a pattern PCRE2 compiles (as the WAF compiles @rx) and for which the
 * extraction gives literals, every subject the pattern matches must
 * contain one of them, ignoring ASCII case — else the prefilter would skip
 * a rule that matches, and the WAF would miss an attack.
 *
 * And for every pattern PCRE2 compiles, @rx (pc_op_match: the JIT, with
 * the minimum-length and first-byte checks made before calling it) must
 * give each subject the verdict of PCRE2's interpreter with its
 * start-of-match optimisations off, whenever neither runs into a limit;
 * those checks alone (pc_op_may_match), on a subject or its lower case,
 * may rule out only subjects the interpreter does not match.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "fuzz_common.h"
#include "str.h"
#include "waf_op.h"
#include "waf_pf.h"

static int contains(const char *s, size_t n, const char *lit, size_t ln)
{
    for (size_t i = 0; i + ln <= n; i++) {
        size_t k = 0;
        while (k < ln && pc_lower((unsigned char)s[i + k]) == (unsigned char)lit[k])
            k++;
        if (k == ln)
            return 1;
    }
    return 0;
}

/* Calls fn(sub, len, arg) on each subject: the pattern's own text (a
 * subject that often matches), then the NUL-separated ones after it. */
static void each_subject(const char *p, size_t plen, size_t size,
                         void (*fn)(const char *, size_t, void *), void *arg)
{
    fn(p, plen, arg);
    if (plen == size) {
        fn(p + size, 0, arg); /* the empty subject */
        return;
    }
    const char *sub = p + plen + 1, *end = p + size;
    while (sub <= end) {
        const char *z = memchr(sub, 0, (size_t)(end - sub));
        size_t sl = z ? (size_t)(z - sub) : (size_t)(end - sub);
        fn(sub, sl, arg);
        sub += sl + 1;
    }
}

typedef struct {
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pc_pf_lits_t *lits;
    pc_op_t *op;
    pc_op_ctx_t *ctx;
} check_t;

static int limit(int rc)
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
           rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* A subject the pattern matches holds one of the literals. */
static void check_lits(const char *sub, size_t sl, void *arg)
{
    const check_t *c = arg;
    if (pcre2_match(c->re, (PCRE2_SPTR)sub, sl, 0, 0, c->md, c->mc) < 0)
        return;
    int found = 0;
    for (unsigned i = 0; i < c->lits->n && !found; i++)
        found = contains(sub, sl, c->lits->s[i], c->lits->len[i]);
    FZ_ASSERT(found);
}

/* @rx says what the plain interpreter says; and pc_op_may_match, on the
 * subject as it is or as it will be lowered, rules out only subjects the
 * interpreter does not match. */
static void check_op(const char *sub, size_t sl, void *arg)
{
    const check_t *c = arg;
    int want = pcre2_match(c->re, (PCRE2_SPTR)sub, sl, 0, 0, c->md, c->mc);
    c->ctx->limit_hit = 0;
    int got = pc_op_match(c->op, c->ctx, (const unsigned char *)sub, sl, 0);
    if (!limit(want) && !c->ctx->limit_hit)
        FZ_ASSERT(got == (want >= 0));
    if (!pc_op_may_match(c->op, (const unsigned char *)sub, sl, 0))
        FZ_ASSERT(want < 0);
    char low[4096];
    if (sl <= sizeof(low) && !pc_op_may_match(c->op, (const unsigned char *)sub, sl, 1)) {
        pc_lower_copy(low, sub, sl);
        int rc = pcre2_match(c->re, (PCRE2_SPTR)low, sl, 0, 0, c->md, c->mc);
        FZ_ASSERT(rc < 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, 0, size);
    size_t plen = nul ? (size_t)(nul - p) : size;
    static pc_op_ctx_t ctx;
    static int ready;
    if (!ready && pc_op_ctx_init(&ctx) == 0)
        ready = 1;
    FZ_ASSERT(ready);
    int code;
    PCRE2_SIZE at;
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, 10000);
    pcre2_set_depth_limit(mc, 1000);
    check_t c = {NULL, NULL, mc, NULL, NULL, &ctx};

    pc_op_t op;
    char err[256];
    int kind = pc_op_parse_name("rx", 2);
    if (pc_op_compile(&op, kind, 0, p, plen, ".", err, sizeof(err)) == 0) {
        c.re = pcre2_compile((PCRE2_SPTR)p, plen,
                             PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_START_OPTIMIZE, &code,
                             &at, NULL);
        FZ_ASSERT(c.re); /* the same pattern compiled for the operator */
        c.md = pcre2_match_data_create_from_pattern(c.re, NULL);
        c.op = &op;
        each_subject(p, plen, size, check_op, &c);
        pcre2_match_data_free(c.md);
        pcre2_code_free(c.re);
        pc_op_free(&op);
    }

    pc_pf_lits_t lits;
    if (pc_pf_regex(p, plen, &lits) == 0) {
        FZ_ASSERT(lits.n > 0 && lits.n <= PC_PF_MAX_LITS);
        for (unsigned i = 0; i < lits.n; i++) {
            FZ_ASSERT(lits.len[i] > 0 && lits.len[i] <= PC_PF_LIT_MAX);
            for (unsigned k = 0; k < lits.len[i]; k++) /* lower case ASCII */
                FZ_ASSERT(pc_lower((unsigned char)lits.s[i][k]) == (unsigned char)lits.s[i][k] &&
                          (unsigned char)lits.s[i][k] < 0x80);
        }
        c.re = pcre2_compile((PCRE2_SPTR)p, plen, PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY, &code, &at,
                             NULL);
        if (c.re) {
            c.md = pcre2_match_data_create_from_pattern(c.re, NULL);
            c.lits = &lits;
            each_subject(p, plen, size, check_lits, &c);
            pcre2_match_data_free(c.md);
            pcre2_code_free(c.re);
        }
    }
    pcre2_match_context_free(mc);
    return 0;
}
