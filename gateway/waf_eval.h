/*
 * waf_eval.h — evaluates a rule set against one request's data (groundwork
 * for the WAF filter, issue 9).
 *
 * A pc_waf_tx_t holds what the rules may look at — collections of (name,
 * value) pairs, filled by the caller from the request (pc_waf_add) — and
 * what evaluation produces: TX variables, the rules that matched with
 * their messages, and the verdict. Values are not copied: they must stay
 * valid while the transaction is used. Everything the transaction
 * allocates comes from its arena; a transformation chain applied to a
 * value is computed once and shared by every rule that asks for the same
 * chain on the same value.
 */
#ifndef PC_WAF_EVAL_H
#define PC_WAF_EVAL_H

#include "arena.h"
#include "waf_rules.h"

#define PC_WAF_NO_NAME 255

typedef struct pc_waf_kv_s {
    const char *name;
    size_t nlen;
    const char *value;
    size_t vlen;
    void *tf;        /* its transformations, per chain of the rule set (made on first use) */
    uint64_t *pf;    /* the prefilter's bits for it (NULL: not scanned), see waf_pf.h;
                        then those of every group's literals in the value itself */
    int8_t pf_raw;   /* the value itself was scanned */
    uint8_t feat;    /* pc_tf_features, made when first asked for (0: not yet) */
    uint8_t name_ix; /* 1 + the index of its name in the rule set's names (pc_waf_names_t),
                      PC_WAF_NO_NAME when not there, 0: not looked up yet */
    char *lower;     /* its lower-case copy, when plain and asked for */
} pc_waf_kv_t;

typedef struct pc_waf_hit_s {
    uint32_t id;
    const char *msg;     /* expanded, or NULL */
    const char *logdata; /* expanded, or NULL */
    const char *var;     /* the matched variable: "ARGS:q" */
    const char *excerpt; /* the matched value after transformations (cut) */
    int limit_hit;       /* a regex ran into its limits */
} pc_waf_hit_t;

#define PC_WAF_MAX_HITS 64

typedef struct pc_waf_tx_s {
    pc_arena_t *arena;
    pc_op_ctx_t *opctx; /* the worker's */
    struct {
        pc_waf_kv_t *v;
        size_t n, cap;
    } coll[PC_WV_COUNT];
    struct {
        char *name, *value;
        size_t nlen;
    } * vars; /* TX */
    size_t nvars, capvars;
    unsigned nremoved;      /* removed[] in use */
    unsigned removed_rules; /* of those, whole rules */
    uint32_t removed_kinds; /* of those, the collections of targets (1u << PC_WV_*) */
    uint8_t engine;         /* pc_waf_engine_e, may change by ctl */
    uint8_t timed;          /* time each rule into its counters (a sample of requests) */
    uint8_t tx_built;       /* coll[PC_WV_TX] holds the TX variables as they are */
    /* results */
    unsigned nhits;
    int disruptive; /* pc_waf_disruptive_e of the rule that decided, or 0 */
    int status;     /* its status (0: the caller's default) */
    int nomem;      /* an allocation failed: evaluation ends in a deny, never a pass */
    uint32_t decided_by;
    int allowed;                  /* an allow action ended evaluation */
    unsigned nchains;             /* the rule set's (pc_waf_eval) */
    const pc_waf_chain_t *chains; /* the rule set's */
    const pc_waf_names_t *names;  /* the rule set's */
    int pf_on;                    /* the prefilter is in use */
    /* the prefilter (waf_pf.h): rules with a candidate value, and how many
     * values of each collection each phase has scanned */
    uint64_t *pf_hit;
    uint64_t *pf_coll; /* the same per collection (PC_WV_COUNT x pf_words) */
    size_t pf_words;
    uint64_t *pf_plain; /* scratch: pf_words */
    uint32_t *pf_reads; /* scratch: per group, what it reads */
    uint32_t pf_done[2][PC_WV_COUNT];
    /* last, not cleared by pc_waf_tx_init: read only up to nremoved, nhits */
    struct {
        uint32_t lo, hi;
        const pc_waf_var_t *target; /* NULL: the whole rule */
    } removed[64];                  /* runtime exclusions (ctl, a route's): pc_waf_remove */
    pc_waf_hit_t hits[PC_WAF_MAX_HITS];
} pc_waf_tx_t;

/* Prepares tx (its memory from arena). */
void pc_waf_tx_init(pc_waf_tx_t *tx, pc_arena_t *arena, pc_op_ctx_t *opctx);

/* Excludes target (NULL: the whole rule) from the rules lo..hi for the
 * rest of the transaction. 0, or -1 when 64 exclusions are in place. */
int pc_waf_remove(pc_waf_tx_t *tx, uint32_t lo, uint32_t hi, const pc_waf_var_t *target);

/* Adds a value to a collection; ARGS_GET/ARGS_POST also feed ARGS, and
 * every collection with a *_NAMES twin feeds it. 0, or -1 out of memory. */
int pc_waf_add(pc_waf_tx_t *tx, int var, const char *name, size_t nlen, const char *value,
               size_t vlen);

/* TX variables (names case-insensitive). */
int pc_waf_setvar(pc_waf_tx_t *tx, const char *name, const char *value);
const char *pc_waf_getvar(const pc_waf_tx_t *tx, const char *name);

/* Runs the rules of phase (1 or 2; others have none to run). Returns the
 * disruptive action that ends the request (PC_WA_DENY, or PC_WA_BLOCK when
 * the phase's default is deny), or 0 to go on. Out of memory (now or while
 * values were added) it returns PC_WA_DENY with tx->nomem set. */
int pc_waf_eval(const pc_waf_ruleset_t *rs, pc_waf_tx_t *tx, int phase);

#endif
