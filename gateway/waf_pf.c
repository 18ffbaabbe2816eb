/*
 * waf_pf.c — see waf_pf.h.
 *
 * A recursive descent over the pattern computes, for each part, the
 * literal set it requires ("top" when nothing is known):
 *   - a sequence requires the best of its parts' sets, where consecutive
 *     single characters that must occur (x, x+, x{2,}, [xX], \.) form one
 *     literal;
 *   - an alternation requires the union of its branches' sets (top if any
 *     branch is top, or the union grows too large);
 *   - a group repeated at least once requires what its contents require;
 *   - anything optional, any class of more than a few bytes, `.`, \d \w
 *     \s..., back-references and lookarounds require nothing.
 * Constructs that change what the pattern means in ways this does not
 * model (extended mode, \Q..\E, verbs such as (*UTF), conditionals,
 * recursion, bytes over 0x7f whose case folding depends on the mode) make
 * the whole result unknown.
 */
#include "waf_pf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "waf_op.h"
#include "waf_rules.h"

#define MAX_DEPTH 32

typedef struct {
    const char *p;
    size_t i, n;
    int abort;
    int depth;
} st_t;

/* A literal set. exact: every match of the part is one of the strings
 * (then a sequence can extend them with what follows). */
typedef struct {
    int top;
    int exact;
    pc_pf_lits_t l;
} set_t;

enum { A_CHAR, A_SET, A_ANY, A_ZERO, A_NONE };

static unsigned shortest(const set_t *s)
{
    unsigned m = PC_PF_LIT_MAX;
    for (unsigned i = 0; i < s->l.n; i++)
        if (s->l.len[i] < m)
            m = s->l.len[i];
    return m;
}

/* Keeps in *best the more selective of the two (a set with the empty
 * string requires nothing). */
static void better(set_t *best, const set_t *c)
{
    if (c->top || c->l.n == 0 || shortest(c) == 0)
        return;
    if (best->top) {
        *best = *c;
        return;
    }
    unsigned a = shortest(best), b = shortest(c);
    if (b > a || (b == a && c->l.n < best->l.n))
        *best = *c;
}

static void add_union(set_t *a, const set_t *b)
{
    a->exact = a->exact && b->exact;
    if (a->top)
        return;
    if (b->top || a->l.n + b->l.n > PC_PF_MAX_LITS) {
        a->top = 1;
        return;
    }
    for (unsigned i = 0; i < b->l.n; i++) {
        unsigned k = a->l.n++;
        a->l.len[k] = b->l.len[i];
        memcpy(a->l.s[k], b->l.s[i], b->l.len[i]);
    }
}

/* Sets without zeroing their (large) string arrays: only n strings are read. */
static void init(set_t *s, int top, int exact, unsigned n)
{
    s->top = top;
    s->exact = exact;
    s->l.n = n;
    if (n)
        s->l.len[0] = 0; /* {""}: the empty string */
}

static void one(set_t *s, const char *lit, size_t n)
{
    s->top = 0;
    s->exact = 0;
    s->l.n = 1;
    s->l.len[0] = (unsigned char)(n > PC_PF_LIT_MAX ? PC_PF_LIT_MAX : n);
    memcpy(s->l.s[0], lit, s->l.len[0]);
}

static set_t parse_alt(st_t *st);

static int peek(const st_t *st, size_t k)
{
    return st->i + k < st->n ? (unsigned char)st->p[st->i + k] : -1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* An escape after the backslash (st->i at the letter). Returns A_CHAR
 * with *c, A_ANY or A_ZERO. */
static int escape(st_t *st, int *c)
{
    int e = peek(st, 0);
    st->i++;
    switch (e) {
    case 't':
        *c = '\t';
        return A_CHAR;
    case 'n':
        *c = '\n';
        return A_CHAR;
    case 'r':
        *c = '\r';
        return A_CHAR;
    case 'f':
        *c = '\f';
        return A_CHAR;
    case 'e':
        *c = 27;
        return A_CHAR;
    case 'a':
        *c = 7;
        return A_CHAR;
    case 'x': {
        long v = 0; /* 8 hex digits at most: no overflow */
        int k = 0;
        if (peek(st, 0) == '{') {
            st->i++;
            while (peek(st, 0) >= 0 && peek(st, 0) != '}' && hexval(peek(st, 0)) >= 0 && k < 8)
                v = v * 16 + hexval(peek(st, 0)), st->i++, k++;
            if (peek(st, 0) != '}') {
                st->abort = 1;
                return A_ANY;
            }
            st->i++;
        } else {
            while (k < 2 && hexval(peek(st, 0)) >= 0)
                v = v * 16 + hexval(peek(st, 0)), st->i++, k++;
        }
        *c = (int)(v < 0x80 ? v : 0);
        return v < 0x80 ? A_CHAR : A_ANY;
    }
    case 'b':
    case 'B':
    case 'A':
    case 'z':
    case 'Z':
    case 'G':
    case 'K':
        return A_ZERO;
    case 'p':
    case 'P':
        if (peek(st, 0) == '{') {
            while (peek(st, 0) >= 0 && peek(st, 0) != '}')
                st->i++;
            st->i++;
        } else {
            st->i++;
        }
        return A_ANY;
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S':
    case 'h':
    case 'H':
    case 'v':
    case 'V':
    case 'N':
    case 'R':
    case 'X':
    case 'C':
        return A_ANY;
    case -1:
        st->abort = 1;
        return A_ANY;
    default:
        /* digits (back-references, octal), \c, \o, \g, \k, \Q, \E, \u...:
         * not modelled */
        if ((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
            st->abort = 1;
            return A_ANY;
        }
        *c = e; /* an escaped punctuation character is itself */
        return e < 0x80 ? A_CHAR : A_ANY;
    }
}

/* [...]: a single character, a small set of single characters, or any. */
static int char_class(st_t *st, int *c, set_t *s)
{
    int neg = 0, big = 0;
    unsigned char seen[8];
    unsigned nseen = 0;
    st->i++; /* [ */
    if (peek(st, 0) == '^')
        neg = 1, st->i++;
    int first = 1;
    for (;;) {
        int ch = peek(st, 0);
        if (ch < 0) {
            st->abort = 1;
            return A_ANY;
        }
        if (ch == ']' && !first) {
            st->i++;
            break;
        }
        first = 0;
        int v;
        if (ch == '[' && (peek(st, 1) == ':' || peek(st, 1) == '.' || peek(st, 1) == '=')) {
            /* [:alpha:] (only that exact form: "[:" alone is two literal
             * characters — found by fuzz_waf_pf); [.x.] [=x=] not modelled */
            size_t j = st->i + 2;
            while (j < st->n && ((st->p[j] >= 'a' && st->p[j] <= 'z') || st->p[j] == '^'))
                j++;
            if (peek(st, 1) != ':') {
                st->abort = 1;
                return A_ANY;
            }
            if (j + 1 < st->n && st->p[j] == ':' && st->p[j + 1] == ']') {
                st->i = j + 2;
                big = 1;
                continue;
            }
        }
        if (ch == '\\') {
            st->i++;
            int k = escape(st, &v);
            if (k != A_CHAR) {
                big = 1;
                continue;
            }
        } else {
            v = ch;
            st->i++;
        }
        if (peek(st, 0) == '-' && peek(st, 1) >= 0 && peek(st, 1) != ']') { /* a range */
            st->i++;
            if (peek(st, 0) == '\\') {
                st->i++;
                int w;
                escape(st, &w);
            } else {
                st->i++;
            }
            big = 1;
            continue;
        }
        if (v >= 0x80) {
            big = 1;
            continue;
        }
        unsigned char lv = pc_lower((unsigned char)v);
        int dup = 0;
        for (unsigned k = 0; k < nseen; k++)
            dup |= seen[k] == lv;
        if (!dup) {
            if (nseen == sizeof(seen))
                big = 1;
            else
                seen[nseen++] = lv;
        }
    }
    if (neg || big || nseen == 0)
        return A_ANY;
    if (nseen == 1) {
        *c = seen[0];
        return A_CHAR;
    }
    s->top = 0;
    s->exact = 1; /* the class matches exactly one of its characters */
    s->l.n = nseen;
    for (unsigned k = 0; k < nseen; k++) {
        s->l.len[k] = 1;
        s->l.s[k][0] = (char)seen[k];
    }
    return A_SET;
}

/* After a comment or an option setting, which match nothing: a quantifier
 * there applies, for PCRE2, to the item before them ("a(?#x)*" is "a*",
 * "(?<!x)(?#)+" repeats the lookbehind), which the caller has already
 * taken as it was: not modelled. */
static int nothing_then(st_t *st)
{
    int q = peek(st, 0);
    if (q == '*' || q == '+' || q == '?' || q == '{') {
        st->abort = 1;
        return A_ANY;
    }
    return A_NONE;
}

/* (...) and its (?...) forms, st->i at '('. */
static int group(st_t *st, set_t *s)
{
    int kind = A_SET;
    st->i++;
    if (peek(st, 0) == '*') { /* (*UTF), (*SKIP)...: changes the rules */
        st->abort = 1;
        return A_ANY;
    }
    if (peek(st, 0) == '?') {
        st->i++;
        int c = peek(st, 0);
        if (c == '=' || c == '!') {
            st->i++;
            kind = A_ZERO;
        } else if (c == '<' && (peek(st, 1) == '=' || peek(st, 1) == '!')) {
            st->i += 2;
            kind = A_ZERO;
        } else if (c == ':' || c == '>' || c == '|') {
            st->i++;
        } else if (c == '#') {
            while (peek(st, 0) >= 0 && peek(st, 0) != ')')
                st->i++;
            st->i++;
            return nothing_then(st);
        } else if (c == '<' || c == '\'' || (c == 'P' && peek(st, 1) == '<')) {
            int close = c == '\'' ? '\'' : '>';
            while (peek(st, 0) >= 0 && peek(st, 0) != close)
                st->i++;
            st->i++;
        } else {
            /* inline options: (?i) (?-i) (?s:...) ...; extended mode and
             * anything else (conditionals, recursion) are not modelled */
            while (peek(st, 0) >= 0 && strchr("imsnUJ-^", peek(st, 0)))
                st->i++;
            if (peek(st, 0) == ')') {
                st->i++;
                return nothing_then(st);
            }
            if (peek(st, 0) != ':') {
                st->abort = 1;
                return A_ANY;
            }
            st->i++;
        }
    }
    if (++st->depth > MAX_DEPTH) {
        st->abort = 1;
        return A_ANY;
    }
    *s = parse_alt(st);
    st->depth--;
    if (peek(st, 0) != ')') {
        st->abort = 1;
        return A_ANY;
    }
    st->i++;
    if (kind == A_ZERO)
        return A_ZERO;
    return s->top ? A_ANY : A_SET;
}

/* A quantifier after an atom: its minimum (1 when there is none); *rep is
 * set when the atom may occur more than once. */
static long quantifier(st_t *st, int *rep)
{
    long min = 1;
    int c = peek(st, 0);
    *rep = 0;
    if (c == '*' || c == '?') {
        st->i++;
        min = 0;
        *rep = c == '*';
    } else if (c == '+') {
        st->i++;
        *rep = 1;
    } else if (c == '{') {
        size_t j = st->i + 1;
        long a = 0;
        int digits = 0;
        while (j < st->n && st->p[j] >= '0' && st->p[j] <= '9' && digits < 9)
            a = a * 10 + (st->p[j++] - '0'), digits++;
        if (!digits)
            return 1; /* "{" not starting a quantifier is a literal */
        long b = a;
        if (j < st->n && st->p[j] == ',') {
            j++;
            b = j < st->n && st->p[j] >= '0' && st->p[j] <= '9' ? 0 : -1; /* -1: no maximum */
            while (j < st->n && st->p[j] >= '0' && st->p[j] <= '9' && b < 1000000)
                b = b * 10 + (st->p[j++] - '0');
            while (j < st->n && st->p[j] >= '0' && st->p[j] <= '9')
                j++;
        }
        if (j >= st->n || st->p[j] != '}')
            return 1;
        st->i = j + 1;
        min = a;
        *rep = b < 0 || b > 1;
    } else {
        return 1;
    }
    if (peek(st, 0) == '?' || peek(st, 0) == '+') /* lazy, possessive */
        st->i++;
    return min;
}

/* a = a x b (each string of a followed by each of b); -1 when the product
 * has too many or too long strings (a unchanged). */
static int product(set_t *a, const set_t *b)
{
    if ((size_t)a->l.n * b->l.n > PC_PF_MAX_LITS)
        return -1;
    for (unsigned i = 0; i < a->l.n; i++)
        for (unsigned j = 0; j < b->l.n; j++)
            if (a->l.len[i] + b->l.len[j] > PC_PF_LIT_MAX)
                return -1;
    set_t t;
    init(&t, 0, a->exact && b->exact, 0);
    for (unsigned i = 0; i < a->l.n; i++)
        for (unsigned j = 0; j < b->l.n; j++) {
            unsigned k = t.l.n++;
            memcpy(t.l.s[k], a->l.s[i], a->l.len[i]);
            memcpy(t.l.s[k] + a->l.len[i], b->l.s[j], b->l.len[j]);
            t.l.len[k] = (unsigned char)(a->l.len[i] + b->l.len[j]);
        }
    *a = t;
    return 0;
}

/* A sequence. `cur` holds strings one of which every match of the part
 * read so far ends with, touching whatever comes next: a single character
 * or an exact set (a small class, an exact group) extends each of them;
 * anything else ends them (they become a candidate) and starts afresh. */
static set_t parse_seq(st_t *st)
{
    set_t best, cur;
    init(&best, 1, 0, 0);
    init(&cur, 0, 1, 1); /* the empty string: an empty sequence matches it */
    int exact = 1;
    while (!st->abort && st->i < st->n && peek(st, 0) != '|' && peek(st, 0) != ')') {
        int c = peek(st, 0), ch = 0, kind;
        set_t sub;
        init(&sub, 1, 0, 0);
        if (c == '(') {
            kind = group(st, &sub);
        } else if (c == '[') {
            kind = char_class(st, &ch, &sub);
        } else if (c == '\\') {
            st->i++;
            kind = escape(st, &ch);
        } else if (c == '.') {
            st->i++;
            kind = A_ANY;
        } else if (c == '^' || c == '$') {
            st->i++;
            kind = A_ZERO;
        } else if (c == '*' || c == '+' || c == '?') {
            st->abort = 1; /* a quantifier with nothing to repeat */
            break;
        } else {
            st->i++;
            ch = c;
            kind = c < 0x80 ? A_CHAR : A_ANY;
        }
        if (kind == A_NONE)
            continue;
        int rep = 0;
        long min = quantifier(st, &rep); /* (an assertion may have one too: (?!x){0,3}) */
        if (kind == A_CHAR) {
            char lc = (char)pc_lower((unsigned char)ch);
            one(&sub, &lc, 1);
            sub.exact = 1;
            kind = A_SET;
        }
        if (kind == A_SET && sub.exact && min >= 1) {
            if (product(&cur, &sub) != 0) { /* too many or too long: a candidate, restart */
                better(&best, &cur);
                cur = sub;
                exact = 0;
            }
            if (rep) {
                /* x+ : what precedes touches the first x, what follows the
                 * last: the strings end here and the last x starts new ones */
                better(&best, &cur);
                cur = sub;
                exact = 0;
            }
            continue;
        }
        /* anything else: the strings end here */
        exact = 0;
        better(&best, &cur);
        init(&cur, 0, 1, 1);
        if (kind == A_SET && min >= 1)
            better(&best, &sub);
    }
    if (exact && !st->abort)
        return cur;
    better(&best, &cur);
    best.exact = 0;
    return best;
}

static set_t parse_alt(st_t *st)
{
    set_t all = parse_seq(st);
    while (!st->abort && peek(st, 0) == '|') {
        st->i++;
        set_t b = parse_seq(st);
        add_union(&all, &b);
    }
    return all;
}

int pc_pf_regex(const char *re, size_t n, pc_pf_lits_t *out)
{
    st_t st = {re, 0, n, 0, 0};
    set_t s = parse_alt(&st);
    if (st.abort || st.i != n || s.top || s.l.n == 0 || shortest(&s) == 0)
        return -1; /* (a set with the empty string requires nothing) */
    *out = s.l;
    return 0;
}

/* ---- the rule set's prefilter ---- */

/* The literals of a rule's operator, as for pc_pf_regex. */
static int op_literals(const pc_op_t *op, pc_pf_lits_t *out)
{
    if (op->negate || !op->param)
        return -1;
    switch (op->kind) {
    case PC_OP_RX:
        return pc_pf_regex(op->param, op->plen, out);
    case PC_OP_PM:
    case PC_OP_PM_FROM_FILE: /* phrases: one of them is in the value */
        if (!op->nph || op->nph > PC_PF_MAX_LITS)
            return -1;
        for (out->n = 0; out->n < op->nph; out->n++) {
            size_t l = op->phlen[out->n] > PC_PF_LIT_MAX ? PC_PF_LIT_MAX : op->phlen[out->n];
            for (size_t k = 0; k < l; k++)
                out->s[out->n][k] = (char)pc_lower((unsigned char)op->ph[out->n][k]);
            out->len[out->n] = (unsigned char)l;
        }
        return 0;
    case PC_OP_CONTAINS:
    case PC_OP_CONTAINS_WORD:
    case PC_OP_STREQ:
    case PC_OP_BEGINS_WITH:
    case PC_OP_ENDS_WITH: {
        if (!op->plen || memmem(op->param, op->plen, "%{", 2))
            return -1; /* macros are expanded per request */
        size_t l = op->plen > PC_PF_LIT_MAX ? PC_PF_LIT_MAX : op->plen;
        out->n = 1;
        out->len[0] = (unsigned char)l;
        for (size_t k = 0; k < l; k++)
            out->s[0][k] = (char)pc_lower((unsigned char)op->param[k]);
        return 0;
    }
    default:
        return -1;
    }
}

/* A single letter or digit as a literal: a rule that needs just one of its
 * literals is then a candidate on nearly every value, so the prefilter
 * would cost without sparing it anything — and the literal would make most
 * states of the automaton accepting. Such a rule is evaluated on every
 * value. (Common punctuation and two-letter words were tried as well: the
 * rules they exclude then run on values the prefilter spared them, which
 * costs more than it saves.) */
static int weak(const pc_pf_lits_t *l)
{
    for (unsigned i = 0; i < l->n; i++)
        if (l->len[i] == 1 && isalnum((unsigned char)l->s[i][0]))
            return 1;
    return 0;
}

_Static_assert(PC_WV_COUNT <= 32, "collection masks are uint32_t");

/* Collections whose values are all known before a phase runs. */
static uint32_t scanned_colls(const pc_waf_rule_t *r)
{
    uint32_t m = 0;
    for (size_t i = 0; i < r->nvars; i++) {
        const pc_waf_var_t *v = &r->vars[i];
        if (v->exclude)
            continue;
        if (v->count || v->kind == PC_WV_TX || v->kind == PC_WV_MATCHED_VAR ||
            v->kind == PC_WV_MATCHED_VAR_NAME || v->kind == PC_WV_MATCHED_VARS ||
            v->kind == PC_WV_MATCHED_VARS_NAMES)
            return 0;
        m |= 1u << v->kind;
    }
    return m;
}

static int same_chain(const pc_waf_rule_t *a, const pc_waf_rule_t *b)
{
    return a->ntfs == b->ntfs && memcmp(a->tfs, b->tfs, a->ntfs) == 0;
}

void pc_pf_free(pc_waf_ruleset_t *rs)
{
    for (unsigned g = 0; g < rs->npf_groups; g++) {
        pc_ac_free(rs->pf_groups[g].ac);
        free(rs->pf_groups[g].mask);
        free(rs->pf_groups[g].rules);
    }
    free(rs->pf_groups);
    rs->pf_groups = NULL;
    pc_ac_free(rs->pf_all);
    rs->pf_all = NULL;
    rs->npf_groups = 0;
    rs->npf = 0;
    rs->pf_words = 0;
    for (size_t i = 0; i < rs->n; i++)
        rs->rules[i]->pf = -1;
}

/* Do rule i's literals go into group g's automaton (g < 0: into the one
 * of every group, if its own group got one)? */
static int in_automaton(const pc_waf_ruleset_t *rs, const int *group, size_t i, int g)
{
    return group[i] >= 0 && (g < 0 ? rs->rules[i]->pf >= 0 : group[i] == g);
}

/* The automaton of group g's literals (-1: of every group that has one),
 * a rule's phrases in the set of its pf index. NULL when out of memory. */
static pc_ac_t *automaton(const pc_waf_ruleset_t *rs, const pc_pf_lits_t *lits, const int *group,
                          int g)
{
    size_t nph = 0, k = 0;
    for (size_t i = 0; i < rs->n; i++)
        nph += in_automaton(rs, group, i, g) ? lits[i].n : 0;
    const char **ph = calloc(nph + 1, sizeof(*ph));
    size_t *len = calloc(nph + 1, sizeof(*len));
    uint32_t *set = calloc(nph + 1, sizeof(*set));
    pc_ac_t *ac = NULL;
    if (ph && len && set) {
        for (size_t i = 0; i < rs->n; i++) {
            if (!in_automaton(rs, group, i, g))
                continue;
            for (unsigned j = 0; j < lits[i].n; j++, k++) {
                ph[k] = lits[i].s[j];
                len[k] = lits[i].len[j];
                set[k] = (uint32_t)rs->rules[i]->pf;
            }
        }
        ac = pc_ac_new(ph, len, set, k, rs->npf);
    }
    free(ph);
    free(len);
    free(set);
    return ac;
}

void pc_pf_build(pc_waf_ruleset_t *rs)
{
    pc_pf_free(rs);
    pc_pf_lits_t *lits = calloc(rs->n ? rs->n : 1, sizeof(*lits));
    int *group = calloc(rs->n ? rs->n : 1, sizeof(*group));
    if (!lits || !group || !(rs->pf_groups = calloc(rs->n ? rs->n : 1, sizeof(*rs->pf_groups)))) {
        free(lits);
        free(group);
        return; /* no prefilter: every rule on every value, as designed to work */
    }
    /* which rules, and their groups */
    for (size_t i = 0; i < rs->n; i++) {
        pc_waf_rule_t *r = rs->rules[i];
        uint32_t colls;
        group[i] = -1;
        if (r->marker || r->action_only || !(colls = scanned_colls(r)) ||
            op_literals(&r->op, &lits[i]) != 0 || weak(&lits[i]))
            continue;
        unsigned g = 0;
        while (g < rs->npf_groups &&
               !(rs->pf_groups[g].phase == r->phase && same_chain(rs->pf_groups[g].chain_of, r)))
            g++;
        if (g == rs->npf_groups) {
            rs->pf_groups[g].phase = r->phase;
            rs->pf_groups[g].chain_of = r;
            rs->npf_groups++;
        }
        rs->pf_groups[g].colls |= colls;
        rs->pf_groups[g].nrules++;
        group[i] = (int)g;
        r->pf = (int32_t)rs->npf++;
    }
    /* one automaton per group; a group without one (out of memory, or
     * too many distinct bytes) has its rules evaluated on every value */
    rs->pf_words = (rs->npf + 63) / 64;
    for (unsigned g = 0; g < rs->npf_groups; g++) {
        pc_pf_group_t *pg = &rs->pf_groups[g];
        pg->mask = calloc(rs->pf_words, sizeof(*pg->mask));
        pg->rules = calloc(pg->nrules, sizeof(*pg->rules));
        if (pg->mask && pg->rules) {
            unsigned k = 0;
            for (size_t i = 0; i < rs->n; i++)
                if (group[i] == (int)g) {
                    pg->rules[k].id = rs->rules[i]->id;
                    pg->rules[k++].colls = scanned_colls(rs->rules[i]);
                    pg->mask[rs->rules[i]->pf / 64] |= (uint64_t)1 << (rs->rules[i]->pf % 64);
                }
            pg->ac = automaton(rs, lits, group, (int)g);
        }
        if (!pg->ac) {
            for (size_t i = 0; i < rs->n; i++)
                if (group[i] == (int)g)
                    rs->rules[i]->pf = -1;
            pg->colls = 0;
        }
    }
    rs->pf_all = automaton(rs, lits, group, -1); /* without it, each group scans its own */
    static uint32_t loads;
    rs->pf_gen = __atomic_add_fetch(&loads, 1, __ATOMIC_RELAXED);
    free(lits);
    free(group);
}
