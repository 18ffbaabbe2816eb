/*
 * waf_pf.h — the rule set's prefilter: literals a value must contain for
 * an operator to match it.
 *
 * Most values of most requests match no rule, and most rules cannot match
 * a value that lacks some literal: `union\s+select` needs "union", a rule
 * on `<script` needs "<script". At load time each operator gets the set of
 * literals one of which is in every value it can match (from the regex's
 * structure, or the operator's phrases), or none when that cannot be known;
 * the engine then runs one Aho-Corasick pass per value and transformation
 * chain for all the rules that share the chain, and evaluates a rule only
 * when one of its literals is there (see waf_eval.c).
 *
 * The extraction is conservative: any construct it does not fully
 * understand gives "unknown", and the rule is evaluated on every value as
 * without a prefilter. `tests/waf/run --no-prefilter` checks that verdicts
 * are identical either way.
 */
#ifndef PC_WAF_PF_H
#define PC_WAF_PF_H

#include <stddef.h>
#include <stdint.h>

#define PC_PF_MAX_LITS 128 /* more alternatives than this: unknown */
#define PC_PF_LIT_MAX  16  /* a longer literal is cut (a part of it is required too) */

typedef struct pc_pf_lits_s {
    unsigned n;
    unsigned char len[PC_PF_MAX_LITS];
    char s[PC_PF_MAX_LITS][PC_PF_LIT_MAX]; /* lower case ASCII */
} pc_pf_lits_t;

struct pc_waf_ruleset_s;
struct pc_waf_rule_s;
struct pc_ac_s;

/* Rules of one phase that share a transformation chain: one Aho-Corasick
 * over all their literals, run on the transformed values of the
 * collections they target. Most values come out of most chains unchanged
 * (up to case): those are scanned once, whatever the number of groups,
 * with the rule set's automaton of every group's literals (pf_all). */
typedef struct pc_pf_group_s {
    uint8_t phase;
    const struct pc_waf_rule_s *chain_of; /* a rule with the group's t: chain */
    uint32_t colls;                       /* collections scanned (1u << PC_WV_*) */
    struct pc_ac_s *ac;                   /* phrase set i: the rule with pf i */
    uint64_t *mask;                       /* its rules' pf bits (pf_words) */
    struct {
        uint32_t id;
        uint32_t colls; /* the collections the rule reads */
    } * rules;          /* (compact: what a transaction's removals are checked against) */
    unsigned nrules;
} pc_pf_group_t;

/* Gives every rule it can a prefilter (rule->pf, an index into a
 * transaction's candidate bits; -1 for none) and builds rs->pf_groups.
 * Never fails: short of memory, fewer rules (or none) get one. */
void pc_pf_build(struct pc_waf_ruleset_s *rs);
void pc_pf_free(struct pc_waf_ruleset_s *rs);

/* The literals one of which (compared ignoring ASCII case) is in every
 * subject the PCRE2 pattern (compiled without UTF) matches. 0 with them in
 * out, -1 when they cannot be determined. */
int pc_pf_regex(const char *re, size_t n, pc_pf_lits_t *out);

#endif
