/*
 * waf_op.c — see waf_op.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "waf_op.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "waf_tf.h"

static const char *const names[PC_OP_COUNT] = {
#define X(id, name) name,
    PC_OP_LIST(X)
#undef X
};

int pc_op_parse_name(const char *name, size_t n)
{
    return pc_str_index(names, PC_OP_COUNT, pc_str_make(name, n));
}

const char *pc_op_name(int op)
{
    return op >= 0 && op < PC_OP_COUNT ? names[op] : "?";
}

/* ---- Aho-Corasick: case-insensitive, a DFA over the bytes the phrases
 * use (every other byte is one class). Each phrase belongs to a set; a
 * search reports which sets have a phrase in the value (@pm: one set; the
 * rule-set prefilter: one set per rule).
 *
 * A step is one load: an edge holds the offset of its target's row, and
 * the rows of the states where a phrase ends come last, each followed by
 * the sets of those phrases, so the offset alone says whether one did and
 * where to find which. ---- */

struct pc_ac_s {
    uint8_t cls[256]; /* byte -> class; 0: a byte no phrase has */
    unsigned nclass;
    unsigned nstates;
    unsigned words; /* 64-bit words of a set mask */
    unsigned width; /* a row's edges: nclass, made even (a row's sets stay aligned) */
    uint32_t *next; /* the rows: edges (as row offsets), and sets after accepting ones */
    uint32_t acc;   /* the offset of the first accepting row */
};

void pc_ac_free(pc_ac_t *ac)
{
    if (!ac)
        return;
    free(ac->next);
    free(ac);
}

/* The states of a trie turned into a DFA (next: edges as state numbers,
 * nclass per state) into ac's layout: the root first, then the states
 * accepting nothing, then the others, each part in breadth-first order
 * (bfs: every state but the root), so that the shallow states, where a
 * scan of ordinary text stays, share cache lines. */
static int ac_layout(pc_ac_t *ac, const int32_t *next, const uint8_t *accept, const uint64_t *sets,
                     const int32_t *bfs, int32_t *off)
{
    size_t w = ac->width = (ac->nclass + 1) & ~1u, at = w, nc = ac->nclass;
    off[0] = 0;
    for (size_t i = 0; i + 1 < ac->nstates; i++)
        if (!accept[bfs[i]]) {
            off[bfs[i]] = (int32_t)at;
            at += w;
        }
    ac->acc = (uint32_t)at;
    for (size_t i = 0; i + 1 < ac->nstates; i++)
        if (accept[bfs[i]]) {
            off[bfs[i]] = (int32_t)at;
            at += w + 2 * ac->words;
        }
    if (at > INT32_MAX || !(ac->next = calloc(at, sizeof(*ac->next))))
        return -1;
    for (size_t s = 0; s < ac->nstates; s++) {
        uint32_t *row = ac->next + off[s];
        for (size_t c = 0; c < nc; c++)
            row[c] = (uint32_t)off[next[s * nc + c]];
        if (accept[s])
            memcpy(row + w, sets + s * ac->words, ac->words * sizeof(*sets));
    }
    return 0;
}

pc_ac_t *pc_ac_new(const char *const *phrases, const size_t *lens, const uint32_t *set, size_t n,
                   uint32_t nsets)
{
    pc_ac_t *ac = calloc(1, sizeof(*ac));
    size_t chars = 0;
    if (!ac)
        return NULL;
    ac->nclass = 1;
    ac->words = (nsets + 63) / 64;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < lens[i]; j++) {
            unsigned char c = pc_lower((unsigned char)phrases[i][j]);
            chars++;
            if (!ac->cls[c])
                ac->cls[c] = (uint8_t)ac->nclass++;
        }
    for (int c = 'A'; c <= 'Z'; c++)
        ac->cls[c] = ac->cls[c + 32];
    size_t cap = chars + 1;
    int32_t *next = calloc(cap * ac->nclass, sizeof(int32_t));
    uint8_t *accept = calloc(cap, 1);
    uint64_t *sets = calloc(cap * ac->words, sizeof(uint64_t));
    int32_t *fail = calloc(cap, sizeof(int32_t)), *queue = calloc(cap, sizeof(int32_t));
    int ok = next && accept && sets && fail && queue && chars && nsets && ac->nclass <= 255;
    if (ok) {
        /* the trie; -1 marks a missing edge while building */
        for (size_t i = 0; i < cap * ac->nclass; i++)
            next[i] = -1;
        ac->nstates = 1;
        for (size_t i = 0; i < n; i++) {
            int32_t s = 0;
            for (size_t j = 0; j < lens[i]; j++) {
                unsigned k = ac->cls[(unsigned char)phrases[i][j]];
                int32_t *e = &next[(size_t)s * ac->nclass + k];
                if (*e < 0)
                    *e = (int32_t)ac->nstates++;
                s = *e;
            }
            if (s && set[i] < nsets) {
                accept[s] = 1;
                sets[(size_t)s * ac->words + set[i] / 64] |= (uint64_t)1 << (set[i] % 64);
            }
        }
        /* failure links breadth first, turning the trie into a DFA; a
         * state also reports what its failure state reports */
        size_t head = 0, tail = 0;
        for (unsigned k = 0; k < ac->nclass; k++) {
            int32_t *e = &next[k];
            if (*e < 0) {
                *e = 0;
            } else {
                fail[*e] = 0;
                queue[tail++] = *e;
            }
        }
        while (head < tail) {
            int32_t s = queue[head++];
            if (accept[fail[s]]) {
                accept[s] = 1;
                for (unsigned w = 0; w < ac->words; w++)
                    sets[(size_t)s * ac->words + w] |= sets[(size_t)fail[s] * ac->words + w];
            }
            for (unsigned k = 0; k < ac->nclass; k++) {
                int32_t *e = &next[(size_t)s * ac->nclass + k];
                int32_t f = next[(size_t)fail[s] * ac->nclass + k];
                if (*e < 0) {
                    *e = f;
                } else {
                    fail[*e] = f;
                    queue[tail++] = *e;
                }
            }
        }
        ok = ac_layout(ac, next, accept, sets, queue, fail) == 0;
    }
    free(next);
    free(accept);
    free(sets);
    free(fail);
    free(queue);
    if (!ok) {
        pc_ac_free(ac);
        return NULL;
    }
    return ac;
}

void pc_ac_sets(const pc_ac_t *ac, const unsigned char *v, size_t n, uint64_t *out)
{
    const uint32_t *next = ac->next;
    uint32_t s = 0, acc = ac->acc;
    for (size_t i = 0; i < n; i++) {
        s = next[s + ac->cls[v[i]]];
        if (s >= acc) {
            const uint64_t *sets = (const uint64_t *)(next + s + ac->width);
            for (unsigned w = 0; w < ac->words; w++)
                out[w] |= sets[w];
        }
    }
}

/* @pm, @pmFromFile: the phrases of list, separated by sep (empty ones
 * skipped), into op->ph (pointing into list) and one automaton. -1 when
 * out of memory or there are none. */
static int phrases(pc_op_t *op, const char *list, size_t n, char sep)
{
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++)
        cnt += list[i] != sep && (i == 0 || list[i - 1] == sep);
    op->ph = calloc(cnt + 1, sizeof(*op->ph));
    op->phlen = calloc(cnt + 1, sizeof(*op->phlen));
    uint32_t *set = calloc(cnt + 1, sizeof(*set)); /* all one set */
    if (op->ph && op->phlen && set)
        for (size_t i = 0; i < n; i++) {
            if (list[i] == sep)
                continue;
            size_t s = i;
            while (i < n && list[i] != sep)
                i++;
            op->ph[op->nph] = list + s;
            op->phlen[op->nph++] = i - s;
        }
    op->ac = op->nph ? pc_ac_new(op->ph, op->phlen, set, op->nph, 1) : NULL;
    free(set);
    return op->ac ? 0 : -1;
}

static int ac_match(const pc_ac_t *ac, const unsigned char *v, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        if ((s = ac->next[s + ac->cls[v[i]]]) >= ac->acc)
            return 1;
    return 0;
}

/* ---- compiling ---- */

/* Bit b of a byte bitmap. */
static inline int bit_of(const uint8_t *map, unsigned b)
{
    return (map[b / 8] >> (b % 8)) & 1;
}

static inline void set_bit(uint8_t *map, unsigned b)
{
    map[b / 8] |= (uint8_t)(1u << (b % 8));
}

/* Can a subject that starts with s[0..n) match? Matching s alone with
 * PCRE2_PARTIAL_HARD fails only when none can; anything else (a match, a
 * partial one, a limit, an error) says it may. jit: through the JIT's
 * partial mode (compiled for it), else the interpreter. */
static int may_start(const pc_op_t *op, const unsigned char *s, size_t n, int jit,
                     pcre2_match_data *md, pcre2_match_context *mc)
{
    int rc = jit ? pcre2_jit_match(op->re, s, n, 0, PCRE2_PARTIAL_HARD, md, mc)
                 : pcre2_match(op->re, s, n, 0, PCRE2_PARTIAL_HARD | PCRE2_NO_JIT, md, mc);
    return rc != PCRE2_ERROR_NOMATCH;
}

#define RX_TRIPLE_BITS 65536

/* Where the first three bytes of a subject go in rx_triples. */
static unsigned triple_ix(unsigned a, unsigned b, unsigned c)
{
    return ((a << 16 | b << 8 | c) * 2654435761u) >> 16;
}

/* With the pairs known (npairs of them): which third bytes can follow
 * each, through the JIT's partial mode compiled for it, at most 512 x 256
 * matches (~20 ms for 932105, whose values mostly pass two bytes:
 * "fields", "leave", "Mozilla" start like "find", "less", "more"). The
 * triples are hashed into a bitmap: two that collide only keep each other. */
static void rx_triples(pc_op_t *op, unsigned npairs, pcre2_match_data *md, pcre2_match_context *mc)
{
    if (!op->rx_jit || npairs > 512 || pcre2_jit_compile(op->re, PCRE2_JIT_PARTIAL_HARD) != 0)
        return;
    uint8_t *t = calloc(RX_TRIPLE_BITS / 8, 1);
    if (!t)
        return;
    for (unsigned ab = 0; ab < 256 * 256; ab++) { /* rx_pairs' bit a * 256 + b */
        if (!bit_of(op->rx_pairs, ab))
            continue;
        for (unsigned c = 0; c < 256; c++) {
            unsigned char s[3] = {(unsigned char)(ab >> 8), (unsigned char)ab, (unsigned char)c};
            if (may_start(op, s, 3, 1, md, mc))
                set_bit(t, triple_ix(s[0], s[1], c));
        }
    }
    op->rx_triples = t;
}

/* An anchored regex with few first bytes: which second bytes can follow
 * each of them in a match (may_start, interpreted: at most 64 x 256
 * matches, once per rule set). Then the third bytes (rx_triples). */
static void rx_pairs(pc_op_t *op)
{
    unsigned nfirst = 0, npairs = 0;
    for (unsigned c = 0; c < 256; c++)
        nfirst += (unsigned)bit_of(op->rx_first, c);
    if (nfirst > 64)
        return;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(op->re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    uint8_t *pairs = calloc(256, 32);
    if (!md || !mc || !pairs) {
        pcre2_match_data_free(md);
        pcre2_match_context_free(mc);
        free(pairs);
        return;
    }
    pcre2_set_match_limit(mc, 1000); /* a few bytes; a limit keeps the prefix */
    for (unsigned c = 0; c < 256; c++) {
        if (!bit_of(op->rx_first, c))
            continue;
        for (unsigned x = 0; x < 256; x++) {
            unsigned char s[2] = {(unsigned char)c, (unsigned char)x};
            if (may_start(op, s, 2, 0, md, mc)) {
                set_bit(pairs, c * 256 + x);
                npairs++;
            }
        }
    }
    op->rx_pairs = pairs;
    rx_triples(op, npairs, md, mc);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
}

/* What PCRE2 worked out about where a match can start and how short a
 * subject can be, so that a subject ruled out by it costs a bit test
 * instead of a call: most values reach most regexes only to fail. These
 * are the checks pcre2_match makes first itself (unless told not to
 * optimise), so the verdicts are the same; rx_pairs adds one of its own. */
static void rx_study(pc_op_t *op)
{
    uint32_t minlen = 0, opts = 0;
    const uint8_t *bits = NULL;
    if (pcre2_pattern_info(op->re, PCRE2_INFO_MINLENGTH, &minlen) == 0)
        op->rx_minlen = minlen;
    if (pcre2_pattern_info(op->re, PCRE2_INFO_ALLOPTIONS, &opts) == 0)
        op->rx_anchored = (opts & PCRE2_ANCHORED) != 0;
    if (pcre2_pattern_info(op->re, PCRE2_INFO_FIRSTBITMAP, &bits) == 0 && bits) {
        memcpy(op->rx_first, bits, sizeof(op->rx_first));
        for (unsigned c = 0; c < 256; c++)
            if (bit_of(bits, pc_lower((unsigned char)c)))
                set_bit(op->rx_first_lc, c);
        op->rx_has_first = 1;
        if (op->rx_anchored)
            rx_pairs(op);
    }
}

/* Can the regex match v (lowered: v in lower case) at all, by its
 * minimum length and first bytes (anchored: and second and third bytes)?
 * Lowering keeps the length. */
static int rx_may_match(const pc_op_t *op, const unsigned char *v, size_t n, int lowered)
{
    if (n < op->rx_minlen)
        return 0;
    if (!op->rx_has_first || !n)
        return 1;
    if (op->rx_anchored) {
        unsigned a = lowered ? pc_lower(v[0]) : v[0];
        if (!bit_of(op->rx_first, a))
            return 0;
        if (n < 2 || !op->rx_pairs)
            return 1;
        unsigned b = lowered ? pc_lower(v[1]) : v[1];
        if (!bit_of(op->rx_pairs + a * 32, b))
            return 0;
        return n < 3 || !op->rx_triples ||
               bit_of(op->rx_triples, triple_ix(a, b, lowered ? pc_lower(v[2]) : v[2]));
    }
    const uint8_t *first = lowered ? op->rx_first_lc : op->rx_first;
    for (size_t i = 0; i < n; i++)
        if (bit_of(first, v[i]))
            return 1;
    return 0;
}

int pc_op_may_match(const pc_op_t *op, const unsigned char *v, size_t n, int lowered)
{
    return op->kind != PC_OP_RX || op->negate || rx_may_match(op, v, n, lowered);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static char *read_phrases(const char *dir, const char *name, size_t nlen, size_t *out_len,
                          char *err, size_t errlen)
{
    char path[1024];
    if (name[0] == '/')
        snprintf(path, sizeof(path), "%.*s", (int)nlen, name);
    else
        snprintf(path, sizeof(path), "%s/%.*s", dir ? dir : ".", (int)nlen, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, errlen, "cannot read '%s'", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap), line[4096];
    if (!buf) {
        fclose(f);
        fail(err, errlen, "%s", "out of memory");
        return NULL;
    }
    while (fgets(line, sizeof(line), f)) {
        size_t l = strcspn(line, "\r\n");
        size_t s = 0;
        while (s < l && (line[s] == ' ' || line[s] == '\t'))
            s++;
        if (s == l || line[s] == '#')
            continue;
        while (l > s && (line[l - 1] == ' ' || line[l - 1] == '\t'))
            l--;
        if (n + l - s + 1 > cap) {
            char *nb = realloc(buf, cap = (n + l - s + 1) * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                fail(err, errlen, "%s", "out of memory");
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + n, line + s, l - s); /* a line is one phrase, spaces and all */
        n += l - s;
        buf[n++] = '\n';
    }
    fclose(f);
    *out_len = n;
    return buf;
}

/* "32-126,9,10,13" */
static int byte_ranges(pc_op_t *op, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned lo = 0, hi;
        size_t s = i;
        while (i < n && p[i] >= '0' && p[i] <= '9' && lo < 1000)
            lo = lo * 10 + (unsigned)(p[i++] - '0');
        if (i == s || lo > 255)
            return -1;
        hi = lo;
        if (i < n && p[i] == '-') {
            hi = 0;
            s = ++i;
            while (i < n && p[i] >= '0' && p[i] <= '9' && hi < 1000)
                hi = hi * 10 + (unsigned)(p[i++] - '0');
            if (i == s || hi > 255 || hi < lo)
                return -1;
        }
        for (unsigned b = lo; b <= hi; b++)
            set_bit(op->bytes_ok, b);
        while (i < n && (p[i] == ',' || p[i] == ' '))
            i++;
    }
    return 0;
}

static int compile(pc_op_t *op, int kind, int negate, const char *param, size_t plen,
                   const char *dir, char *err, size_t errlen)
{
    op->kind = (uint8_t)kind;
    op->negate = (uint8_t) !!negate;
    if (!(op->param = malloc(plen + 1)))
        return fail(err, errlen, "%s", "out of memory");
    memcpy(op->param, param, plen);
    op->param[plen] = 0;
    op->plen = plen;
    op->macro = plen && param[0] == '%';
    switch (kind) {
    case PC_OP_RX: {
        int code;
        PCRE2_SIZE at;
        op->re = pcre2_compile((PCRE2_SPTR)param, plen, PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY, &code,
                               &at, NULL);
        if (!op->re) {
            char msg[160], where[200];
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
            snprintf(where, sizeof(where), "%s at offset %zu", msg, (size_t)at);
            return fail(err, errlen, "invalid regular expression: %s", where);
        }
        op->rx_jit = pcre2_jit_compile(op->re, PCRE2_JIT_COMPLETE) == 0; /* else the interpreter */
        rx_study(op);
        return 0;
    }
    case PC_OP_PM:
    case PC_OP_PM_FROM_FILE: {
        size_t n = plen;
        if (kind == PC_OP_PM_FROM_FILE &&
            !(op->phbuf = read_phrases(dir, param, plen, &n, err, errlen)))
            return -1;
        if (kind == PC_OP_PM ? phrases(op, op->param, plen, ' ') : phrases(op, op->phbuf, n, '\n'))
            return fail(err, errlen, "%s", "no phrases (or out of memory)");
        return 0;
    }
    case PC_OP_EQ:
    case PC_OP_GE:
    case PC_OP_GT:
    case PC_OP_LE:
    case PC_OP_LT: {
        if (plen >= 2 && param[0] == '%' && param[1] == '{')
            return 0; /* a macro, expanded per request */
        char *end;
        op->num = strtoll(op->param, &end, 10);
        if (!plen || *end)
            return fail(err, errlen, "'%s' is not an integer", op->param);
        return 0;
    }
    case PC_OP_IP_MATCH: {
        size_t count = 1;
        for (size_t i = 0; i < plen; i++)
            count += param[i] == ',';
        pc_arena_init(&op->pool, NULL, 1024, 0);
        pc_cidr_range_t *ranges = pc_arena_alloc(&op->pool, count * sizeof(*ranges));
        if (!ranges)
            return fail(err, errlen, "%s", "out of memory");
        size_t k = 0;
        for (char *s = op->param; s && *s;) {
            char *comma = strchr(s, ',');
            if (comma)
                *comma = 0;
            while (*s == ' ')
                s++;
            char msg[200];
            if (pc_cidr_parse(s, &ranges[k++], msg, sizeof(msg)) != 0)
                return fail(err, errlen, "%s", msg);
            if (comma)
                *comma = ',';
            s = comma ? comma + 1 : NULL;
        }
        if (pc_cidr_set_build(&op->ips, &op->pool, ranges, k) != 0)
            return fail(err, errlen, "%s", "out of memory");
        return 0;
    }
    case PC_OP_VALIDATE_BYTE_RANGE:
        if (byte_ranges(op, param, plen) != 0)
            return fail(err, errlen, "'%s' is not a list of bytes and ranges (e.g. 9,10,32-126)",
                        op->param);
        return 0;
    default:
        return 0;
    }
}

/* The features (waf_tf.h) one of which a value must have for op to match
 * it, when a match needs bytes that only those have: a control or
 * non-ASCII byte for @validateUtf8Encoding, a '%' for @validateUrlEncoding,
 * and for @rx each byte a match can start with. 0 when any value may. */
static unsigned needs(const pc_op_t *op)
{
    if (op->negate)
        return 0;
    switch (op->kind) {
    case PC_OP_VALIDATE_UTF8_ENCODING:
        return PC_TFF_OTHER;
    case PC_OP_VALIDATE_URL_ENCODING:
        return PC_TFF_URL;
    case PC_OP_RX: {
        unsigned f = 0;
        if (!op->rx_has_first || !op->rx_minlen)
            return 0;
        for (unsigned c = 0; c < 256; c++) {
            if (!bit_of(op->rx_first, c))
                continue;
            unsigned b = pc_tf_byte_features((unsigned char)c);
            if (!b)
                return 0; /* an ordinary byte can start a match */
            f |= b;
        }
        return f;
    }
    default:
        return 0;
    }
}

int pc_op_compile(pc_op_t *op, int kind, int negate, const char *param, size_t plen,
                  const char *dir, char *err, size_t errlen)
{
    memset(op, 0, sizeof(*op));
    int rc = compile(op, kind, negate, param, plen, dir, err, errlen);
    if (rc != 0)
        pc_op_free(op); /* whatever was built before the error */
    else
        op->needs = (uint8_t)needs(op);
    return rc;
}

void pc_op_free(pc_op_t *op)
{
    if (op->re)
        pcre2_code_free(op->re);
    free(op->rx_pairs);
    free(op->rx_triples);
    pc_ac_free(op->ac);
    free(op->ph);
    free(op->phlen);
    free(op->phbuf);
    pc_arena_free(&op->pool);
    free(op->param);
    memset(op, 0, sizeof(*op));
}

int pc_op_ctx_init(pc_op_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->md = pcre2_match_data_create(PC_OP_CAPTURES, NULL);
    ctx->mctx = pcre2_match_context_create(NULL);
    ctx->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
    if (!ctx->md || !ctx->mctx || !ctx->jit) {
        pc_op_ctx_free(ctx);
        return -1;
    }
    pcre2_set_match_limit(ctx->mctx, PC_OP_MATCH_LIMIT);
    pcre2_set_depth_limit(ctx->mctx, PC_OP_MATCH_LIMIT);
    pcre2_jit_stack_assign(ctx->mctx, NULL, ctx->jit);
    return 0;
}

void pc_op_ctx_free(pc_op_ctx_t *ctx)
{
    free(ctx->pf_cache);
    if (ctx->md)
        pcre2_match_data_free(ctx->md);
    if (ctx->mctx)
        pcre2_match_context_free(ctx->mctx);
    if (ctx->jit)
        pcre2_jit_stack_free(ctx->jit);
    memset(ctx, 0, sizeof(*ctx));
}

/* ---- matching ---- */

static int word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int contains_word(const unsigned char *v, size_t n, const char *w, size_t wl)
{
    if (!wl)
        return 1;
    for (const unsigned char *p = v; n >= wl && (p = memmem(p, n - (size_t)(p - v), w, wl)); p++) {
        size_t at = (size_t)(p - v);
        if ((at == 0 || !word_char(v[at - 1])) && (at + wl == n || !word_char(v[at + wl])))
            return 1;
        if (at + 1 > n - wl)
            break;
    }
    return 0;
}

/* ModSecurity's reading of a number: optional sign and leading digits;
 * anything else is 0. */
static int64_t to_num(const unsigned char *v, size_t n)
{
    size_t i = 0;
    int neg = 0;
    int64_t x = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i < n && (v[i] == '-' || v[i] == '+'))
        neg = v[i++] == '-';
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++)
        x = x > INT64_MAX / 10 - 10 ? INT64_MAX : x * 10 + (v[i] - '0');
    return neg ? -x : x;
}

static int bad_url_encoding(const unsigned char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '%' && (i + 2 >= n || pc_hex_value(v[i + 1]) < 0 || pc_hex_value(v[i + 2]) < 0))
            return 1;
    return 0;
}

/* Not UTF-8: invalid bytes, truncated or overlong sequences, surrogates,
 * code points past U+10FFFF. */
static int bad_utf8(const unsigned char *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = v[i];
        size_t len;
        unsigned long cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1fu, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07u, min = 0x10000;
        } else {
            return 1;
        }
        if (i + len > n)
            return 1;
        for (size_t k = 1; k < len; k++) {
            if ((v[i + k] & 0xc0) != 0x80)
                return 1;
            cp = cp << 6 | (v[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 1;
        i += len;
    }
    return 0;
}

static int match(const pc_op_t *op, pc_op_ctx_t *ctx, const unsigned char *v, size_t n,
                 int64_t num_param)
{
    int64_t x;
    switch (op->kind) {
    case PC_OP_RX: {
        if (!rx_may_match(op, v, n, 0))
            return 0;
        int rc = op->rx_jit ? pcre2_jit_match(op->re, v, n, 0, 0, ctx->md, ctx->mctx)
                            : pcre2_match(op->re, v, n, 0, 0, ctx->md, ctx->mctx);
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
            ctx->limit_hit = 1;
            return 1; /* never a pass */
        }
        if (rc < 0)
            return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ctx->md);
        ctx->ncaps = (unsigned)(rc < PC_OP_CAPTURES ? rc : PC_OP_CAPTURES);
        for (unsigned i = 0; i < ctx->ncaps; i++) {
            int set = ov[2 * i] != PCRE2_UNSET;
            ctx->caps[i].off = set ? ov[2 * i] : 0;
            ctx->caps[i].len = set ? ov[2 * i + 1] - ov[2 * i] : 0;
        }
        return 1;
    }
    case PC_OP_PM:
    case PC_OP_PM_FROM_FILE:
        return ac_match(op->ac, v, n);
    case PC_OP_CONTAINS:
        return !op->plen || (n >= op->plen && memmem(v, n, op->param, op->plen) != NULL);
    case PC_OP_CONTAINS_WORD:
        return contains_word(v, n, op->param, op->plen);
    case PC_OP_STREQ:
        return n == op->plen && memcmp(v, op->param, n) == 0;
    case PC_OP_BEGINS_WITH:
        return n >= op->plen && memcmp(v, op->param, op->plen) == 0;
    case PC_OP_ENDS_WITH:
        return n >= op->plen && memcmp(v + n - op->plen, op->param, op->plen) == 0;
    case PC_OP_WITHIN:
        return !n || (op->plen >= n && memmem(op->param, op->plen, v, n) != NULL);
    case PC_OP_EQ:
    case PC_OP_GE:
    case PC_OP_GT:
    case PC_OP_LE:
    case PC_OP_LT: {
        int64_t p = op->param[0] == '%' ? num_param : op->num;
        x = to_num(v, n);
        return op->kind == PC_OP_EQ   ? x == p
               : op->kind == PC_OP_GE ? x >= p
               : op->kind == PC_OP_GT ? x > p
               : op->kind == PC_OP_LE ? x <= p
                                      : x < p;
    }
    case PC_OP_IP_MATCH: {
        pc_ip_t ip;
        return pc_ip_parse((const char *)v, n, &ip) == 0 && pc_cidr_set_contains(&op->ips, ip);
    }
    case PC_OP_VALIDATE_BYTE_RANGE:
        for (size_t i = 0; i < n; i++)
            if (!bit_of(op->bytes_ok, v[i]))
                return 1;
        return 0;
    case PC_OP_VALIDATE_URL_ENCODING:
        return bad_url_encoding(v, n);
    case PC_OP_VALIDATE_UTF8_ENCODING:
        return bad_utf8(v, n);
    case PC_OP_UNCONDITIONAL_MATCH:
        return 1;
    default:
        return 0;
    }
}

int pc_op_match(const pc_op_t *op, pc_op_ctx_t *ctx, const unsigned char *v, size_t n,
                int64_t num_param)
{
    ctx->limit_hit = 0;
    ctx->ncaps = 0;
    int m = match(op, ctx, v, n, num_param);
    if (ctx->limit_hit)
        return 1; /* a limit is a match even under negation */
    return op->negate ? !m : m;
}
