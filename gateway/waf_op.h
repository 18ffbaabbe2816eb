/*
 * waf_op.h — the WAF's operators (SecLang `@op param`), compiled once per
 * rule set and evaluated per value. Groundwork for the rule engine
 * (issue 9).
 *
 * Compiled operators are immutable and shared by every worker; what a
 * match needs per worker (PCRE2 match data and match context with the
 * match and depth limits, the JIT stack) is a pc_op_ctx_t each worker
 * owns. @rx patterns are compiled with PCRE2 JIT. A regex that hits its
 * match or depth limit counts as a match — an attacker must never turn a
 * costly input into a pass — and is flagged so the engine can log it.
 */
#ifndef PC_WAF_OP_H
#define PC_WAF_OP_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

#define PC_OP_LIST(X)                                 \
    X(RX, "rx")                                       \
    X(PM, "pm")                                       \
    X(PM_FROM_FILE, "pmFromFile")                     \
    X(CONTAINS, "contains")                           \
    X(CONTAINS_WORD, "containsWord")                  \
    X(STREQ, "streq")                                 \
    X(BEGINS_WITH, "beginsWith")                      \
    X(ENDS_WITH, "endsWith")                          \
    X(WITHIN, "within")                               \
    X(EQ, "eq")                                       \
    X(GE, "ge")                                       \
    X(GT, "gt")                                       \
    X(LE, "le")                                       \
    X(LT, "lt")                                       \
    X(IP_MATCH, "ipMatch")                            \
    X(VALIDATE_BYTE_RANGE, "validateByteRange")       \
    X(VALIDATE_URL_ENCODING, "validateUrlEncoding")   \
    X(VALIDATE_UTF8_ENCODING, "validateUtf8Encoding") \
    X(UNCONDITIONAL_MATCH, "unconditionalMatch")

typedef enum {
#define X(id, name) PC_OP_##id,
    PC_OP_LIST(X)
#undef X
        PC_OP_COUNT
} pc_op_e;

#define PC_OP_MATCH_LIMIT 100000 /* PCRE2 match and depth limits */
#define PC_OP_CAPTURES    10     /* TX:0 .. TX:9 */

typedef struct pc_ac_s pc_ac_t;

typedef struct pc_op_s {
    uint8_t kind;   /* pc_op_e */
    uint8_t negate; /* "!@op" */
    uint8_t macro;  /* param starts with '%': expanded per request (numeric operators) */
    char *param;    /* as written (macros not expanded) */
    size_t plen;
    int64_t num;                  /* numeric operators with a constant */
    struct pcre2_real_code_8 *re; /* @rx */
    uint8_t rx_jit;               /* compiled by the JIT: matched through its fast path */
    uint8_t rx_anchored;          /* every match starts at the subject's start */
    uint8_t rx_has_first;         /* rx_first holds the bytes a match can start with */
    uint32_t rx_minlen;           /* no shorter subject matches */
    uint8_t rx_first[32];         /* bitmap, from PCRE2's own start-of-match analysis */
    uint8_t rx_first_lc[32];      /* the bytes whose lower case is in rx_first */
    uint8_t *rx_pairs;   /* anchored: [first byte][32-byte bitmap of second bytes], or NULL */
    uint8_t *rx_triples; /* anchored, with pairs: a bitmap of hashed first three bytes, or NULL */
    pc_ac_t *ac;         /* @pm, @pmFromFile */
    const char **ph; /* @pm, @pmFromFile: the phrases (into param or phbuf), for the prefilter */
    size_t *phlen;
    size_t nph;
    char *phbuf;       /* @pmFromFile: the file's phrases, one per line */
    pc_cidr_set_t ips; /* @ipMatch, built in pool */
    pc_arena_t pool;
    uint8_t bytes_ok[32]; /* @validateByteRange: the allowed bytes */
    uint8_t needs;        /* PC_TFF_* (waf_tf.h): a value without one cannot match; 0: any may */
} pc_op_t;

/* Per worker: what matching needs and may not share. */
typedef struct pc_op_ctx_s {
    void *pf_cache; /* waf_eval.c's cache of the prefilter's scans (one allocation) */
    struct pcre2_real_match_data_8 *md;
    struct pcre2_real_match_context_8 *mctx;
    struct pcre2_real_jit_stack_8 *jit;
    /* results of the last match */
    int limit_hit; /* the regex ran into its limits (counted as a match) */
    struct {
        size_t off, len;
    } caps[PC_OP_CAPTURES];
    unsigned ncaps;
} pc_op_ctx_t;

/* Aho-Corasick over phrases (case-insensitive): phrase i belongs to set
 * set[i] (< nsets). NULL when out of memory, empty, or too many distinct
 * bytes. */
pc_ac_t *pc_ac_new(const char *const *phrases, const size_t *lens, const uint32_t *set, size_t n,
                   uint32_t nsets);
void pc_ac_free(pc_ac_t *ac);
/* Sets into out (nsets bits, (nsets + 63) / 64 words) the sets that have a
 * phrase in v. */
void pc_ac_sets(const pc_ac_t *ac, const unsigned char *v, size_t n, uint64_t *out);

/* The operator named name (without '@'), or -1. */
int pc_op_parse_name(const char *name, size_t n);
const char *pc_op_name(int op);

/* Compiles "@name param" (op given by kind) into op. dir resolves the
 * relative file name of @pmFromFile. 0, or -1 with err. */
int pc_op_compile(pc_op_t *op, int kind, int negate, const char *param, size_t plen,
                  const char *dir, char *err, size_t errlen);
void pc_op_free(pc_op_t *op);

/* 0, or -1 when out of memory. */
int pc_op_ctx_init(pc_op_ctx_t *ctx);
void pc_op_ctx_free(pc_op_ctx_t *ctx);

/* 0 when the operator cannot match v, or v in lower case (lowered), by
 * the checks pc_op_match makes before a regex runs (its minimum length
 * and first bytes); else 1. Lets a caller skip making the lower-case
 * copy of a value the regex is then never run on. */
int pc_op_may_match(const pc_op_t *op, const unsigned char *v, size_t n, int lowered);

/* 1 when the operator matches the value (negation applied), else 0.
 * Numeric operators whose parameter is a macro take it in num_param. */
int pc_op_match(const pc_op_t *op, pc_op_ctx_t *ctx, const unsigned char *v, size_t n,
                int64_t num_param);

#endif
