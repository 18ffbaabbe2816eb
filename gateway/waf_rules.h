/*
 * waf_rules.h — SecLang rule files into a rule set (groundwork for the WAF
 * filter, issue 9): the subset PRODUCT.md lists, every construct checked,
 * every problem reported as "FILE:LINE: message" naming the construct.
 * Nothing is silently ignored.
 *
 * A rule set is built once per configuration snapshot and read-only
 * afterwards; operators are compiled (regexes JIT-compiled) at load time.
 */
#ifndef PC_WAF_RULES_H
#define PC_WAF_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "errlist.h"
#include "waf_op.h"
#include "waf_tf.h"

#define PC_WAF_VARS(X)                                \
    X(ARGS, "ARGS")                                   \
    X(ARGS_NAMES, "ARGS_NAMES")                       \
    X(ARGS_GET, "ARGS_GET")                           \
    X(ARGS_GET_NAMES, "ARGS_GET_NAMES")               \
    X(ARGS_POST, "ARGS_POST")                         \
    X(ARGS_POST_NAMES, "ARGS_POST_NAMES")             \
    X(QUERY_STRING, "QUERY_STRING")                   \
    X(REQUEST_URI, "REQUEST_URI")                     \
    X(REQUEST_URI_RAW, "REQUEST_URI_RAW")             \
    X(REQUEST_FILENAME, "REQUEST_FILENAME")           \
    X(REQUEST_BASENAME, "REQUEST_BASENAME")           \
    X(REQUEST_METHOD, "REQUEST_METHOD")               \
    X(REQUEST_PROTOCOL, "REQUEST_PROTOCOL")           \
    X(REQUEST_LINE, "REQUEST_LINE")                   \
    X(REQUEST_HEADERS, "REQUEST_HEADERS")             \
    X(REQUEST_HEADERS_NAMES, "REQUEST_HEADERS_NAMES") \
    X(REQUEST_COOKIES, "REQUEST_COOKIES")             \
    X(REQUEST_COOKIES_NAMES, "REQUEST_COOKIES_NAMES") \
    X(REQUEST_BODY, "REQUEST_BODY")                   \
    X(FILES, "FILES")                                 \
    X(FILES_NAMES, "FILES_NAMES")                     \
    X(REMOTE_ADDR, "REMOTE_ADDR")                     \
    X(TX, "TX")                                       \
    X(MATCHED_VAR, "MATCHED_VAR")                     \
    X(MATCHED_VAR_NAME, "MATCHED_VAR_NAME")           \
    X(MATCHED_VARS, "MATCHED_VARS")                   \
    X(MATCHED_VARS_NAMES, "MATCHED_VARS_NAMES")       \
    X(REQBODY_ERROR, "REQBODY_ERROR")                 \
    X(MULTIPART_PART_HEADERS, "MULTIPART_PART_HEADERS")

typedef enum {
#define X(id, name) PC_WV_##id,
    PC_WAF_VARS(X)
#undef X
        PC_WV_COUNT
} pc_waf_var_e;

/* One target of a rule: ARGS, ARGS:name, ARGS:/regex/, !ARGS:name, &ARGS. */
typedef struct pc_waf_var_s {
    uint8_t kind;    /* pc_waf_var_e */
    uint8_t count;   /* &VAR: the number of values */
    uint8_t exclude; /* !VAR:sel: removes sel from the rule's targets */
    char *sel;       /* selector (lower case for case-insensitive collections), or NULL */
    size_t sel_len;
    struct pcre2_real_code_8 *sel_re; /* /regex/ selector */
    uint64_t sel_bits;                /* the (collection, sel) names it matches in the rule set's
                                         pc_waf_names_t (an exclusion from ARGS: also in ARGS_GET
                                         and ARGS_POST); 0: compared as a string */
} pc_waf_var_t;

typedef enum {
    PC_WA_NONE = 0,
    PC_WA_PASS,
    PC_WA_BLOCK,
    PC_WA_DENY,
    PC_WA_ALLOW
} pc_waf_disruptive_e;

typedef enum { PC_SV_SET = 0, PC_SV_ADD, PC_SV_SUB, PC_SV_DEL } pc_setvar_op_e;

typedef struct pc_waf_setvar_s {
    char *name;  /* after "tx.", lower case */
    char *value; /* may hold %{...} macros; NULL for "!tx.x" */
    uint8_t op;  /* pc_setvar_op_e */
} pc_waf_setvar_t;

typedef enum {
    PC_CTL_RULE_REMOVE_BY_ID = 0,
    PC_CTL_RULE_REMOVE_TARGET_BY_ID,
    PC_CTL_RULE_ENGINE
} pc_ctl_e;

typedef struct pc_waf_ctl_s {
    uint8_t kind; /* pc_ctl_e */
    uint32_t id_lo, id_hi;
    pc_waf_var_t target; /* ruleRemoveTargetById */
    uint8_t engine;      /* ruleEngine: pc_waf_engine_e */
} pc_waf_ctl_t;

typedef enum { PC_WE_ON = 0, PC_WE_OFF, PC_WE_DETECTION_ONLY } pc_waf_engine_e;

typedef struct pc_waf_rule_s {
    /* what evaluation reads, first (one or two cache lines a rule) */
    uint32_t id;   /* 0 on a chained rule */
    uint8_t phase; /* 1..5 */
    uint8_t disruptive;
    uint8_t log;   /* 1 log, 0 nolog */
    uint8_t chain; /* the next rule is chained to this one */
    uint8_t capture;
    uint8_t action_only; /* SecAction: no variables, always matches */
    uint8_t tfs[16];
    unsigned ntfs;
    int32_t pf;          /* prefilter index (waf_pf.h; its bit in a value's pf bits), -1: none */
    uint16_t tfchain;    /* its transformation chain's index in the rule set */
    uint32_t excl_kinds; /* collections (1u << PC_WV_*) with a !VAR:name exclusion */
    uint32_t excl_slow;  /* of those, collections with an exclusion without sel_bits (/regex/) */
    uint64_t excl_bits;  /* its exclusions' sel_bits */
    pc_waf_var_t *vars;  /* the targets, then the !VAR exclusions (each in file order) */
    size_t nvars;
    size_t ntargets;               /* vars[0..ntargets): the targets */
    struct pc_waf_rule_s *chained; /* the rule evaluated when this one matches */
    struct pc_waf_stat_s *stat;    /* the rule id's counters (pc_waf_stat), shared by reloads */
    uint32_t stat_slot;            /* stat->slot, read on every match without a load of stat */
    pc_op_t op;
    /* what a match or a skip reads */
    int status; /* 0: the default */
    pc_waf_setvar_t *setvars;
    size_t nsetvars;
    pc_waf_ctl_t *ctls;
    size_t nctls;
    char *skip_after; /* a marker name */
    char *marker;     /* SecMarker: this entry is a marker, not a rule */
    char *msg, *logdata, *severity, *ver;
    char **tags;
    size_t ntags;
    const char *file;
    int line;
} pc_waf_rule_t;

/* One request in this many has each rule's evaluation timed. */
#define PC_WAF_TIME_EVERY 32

/* Counters per rule id, kept across reloads (a process-wide table of
 * ids; each thread counts in a block of its own, so that two workers
 * matching the same rule never write the same cache line, and a read adds
 * the blocks up). */
typedef struct pc_waf_stat_s {
    uint32_t id;
    uint32_t slot; /* its counters' index in every block */
} pc_waf_stat_t;

typedef struct {
    uint64_t hits;
    uint64_t evals; /* evaluations timed (a sample of requests) */
    uint64_t ns;    /* time those evaluations took */
} pc_waf_counts_t;

/* The counters of rule id (created on first use; a shared overflow entry,
 * with id 0 and never listed, for id 0 and once the table is full). */
pc_waf_stat_t *pc_waf_stat(uint32_t id);
/* Counts a match of the rule whose counters are in slot (stat->slot); a
 * timed evaluation that took ns. */
void pc_waf_stat_hit(uint32_t slot);
void pc_waf_stat_timed(const pc_waf_stat_t *s, uint64_t ns);
/* Every thread's counts of s added up (each figure may lag by the
 * evaluation in progress). */
pc_waf_counts_t pc_waf_stat_read(const pc_waf_stat_t *s);
/* Calls fn for each rule id that has counters, in no particular order. */
void pc_waf_stats_each(void (*fn)(const pc_waf_stat_t *s, void *arg), void *arg);

/* A rule as its phase's evaluation loop first sees it: enough to pass it
 * by (a marker not skipped to, a rule removed or without a candidate
 * value) without touching the rule itself. */
typedef struct {
    const pc_waf_rule_t *r;
    const char *marker; /* r->marker */
    int32_t pf;         /* r->pf */
    uint32_t id;        /* r->id */
    uint32_t skip_to;   /* r->skip_after: the index of that marker (nsteps: none follows) */
} pc_waf_step_t;

/* What a transformation chain does to a value without the features it
 * triggers on (waf_tf.h): 0 run it, 1 nothing, 2 lower its case. */
typedef struct {
    uint8_t effect;
    uint8_t triggers; /* PC_TFF_* */
} pc_waf_chain_t;

/* The plain selectors of the rule set's variables, per collection, each
 * with a bit: a value's name is looked up once per request (its bit), not
 * compared with every selector of every rule that reads it. */
#define PC_WAF_NAMES 64
typedef struct pc_waf_names_s {
    unsigned n;
    struct {
        uint8_t kind;
        size_t len;
        const char *name; /* a variable's sel */
    } e[PC_WAF_NAMES];
    uint8_t slot[256];          /* a name's hash -> 1 + index into e, 0: empty */
    uint64_t lens[PC_WV_COUNT]; /* per collection, bit min(len, 63): the lengths in e */
} pc_waf_names_t;

/* 1 + the index of (kind, name) in names, 0 when not there. */
unsigned pc_waf_name_find(const pc_waf_names_t *names, int kind, const char *name, size_t len);

typedef struct pc_waf_ruleset_s {
    pc_waf_rule_t **rules; /* in file order; chained rules hang off their head */
    size_t n, cap;
    pc_waf_step_t *steps[2]; /* phases 1 and 2: their rules and every marker, in file order */
    size_t nsteps[2];
    uint8_t engine;            /* SecRuleEngine */
    pc_waf_rule_t defaults[5]; /* SecDefaultAction per phase (disruptive, log, status, tfs) */
    char **files;              /* the file names rules point to (owned) */
    size_t nfiles;
    pc_waf_rule_t *open_chain;       /* while loading: a rule whose chain is still to come */
    struct pc_pf_group_s *pf_groups; /* the prefilter (waf_pf.h) */
    unsigned npf_groups;
    struct pc_ac_s *pf_all;  /* every group's literals (phrase set i: the rule with pf i) */
    uint32_t pf_gen;         /* this load's number (a worker's cache of pf_all results) */
    uint32_t npf;            /* rules with a prefilter */
    uint32_t pf_words;       /* 64-bit words of a set of pf bits */
    unsigned nchains;        /* distinct transformation chains (pc_waf_rule_t.tfchain) */
    pc_waf_chain_t *chains;  /* per chain (pc_waf_rule_t.tfchain) */
    int reads_matched_names; /* a rule targets MATCHED_VAR_NAME or MATCHED_VARS(_NAMES) */
    pc_waf_names_t names;    /* the variables' plain selectors */
    int no_prefilter;        /* evaluate every rule on every value (tests compare) */
} pc_waf_ruleset_t;

/* Loads path (a file; `Include` may pull others, with globs, relative to
 * the including file). Every problem goes to errs as "FILE:LINE: message".
 * 0 when none, else -1; the set holds what parsed either way. */
int pc_waf_load(pc_waf_ruleset_t *rs, const char *path, pc_errlist_t *errs);
/* The same from a string (tests); name stands for the file in messages. */
int pc_waf_load_text(pc_waf_ruleset_t *rs, const char *name, const char *text, size_t n,
                     pc_errlist_t *errs);
void pc_waf_ruleset_free(pc_waf_ruleset_t *rs);

/* "942100" or "942100-942199" (n bytes) into lo..hi; 0 or -1. */
int pc_waf_parse_ids(const char *s, size_t n, uint32_t *lo, uint32_t *hi);

/* Parses one target ("ARGS:password", "REQUEST_COOKIES:/^_ga/") as a rule
 * or ctl:ruleRemoveTargetById would. 0, or -1 with a message in err. */
int pc_waf_parse_target(const char *s, size_t n, pc_waf_var_t *v, char *err, size_t errlen);
void pc_waf_var_free(pc_waf_var_t *v);

/* A variable's SecLang name ("ARGS"). */
const char *pc_waf_var_name(int v);

/* The rule with this id (the head of its chain), or NULL. */
pc_waf_rule_t *pc_waf_find(const pc_waf_ruleset_t *rs, uint32_t id);

#endif
