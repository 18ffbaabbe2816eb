/*
 * test_waf_eval.c — the rule evaluator on a small anomaly-scoring rule set:
 * matches through transformations, exclusions, counts, captures, chains,
 * skipAfter, runtime ctl removals, macros in messages and setvar, the final
 * threshold rule, and a ReDoS pattern counted as a match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "waf_eval.h"

static const char rules[] =
    "SecDefaultAction \"phase:1,log,pass\"\n"
    "SecDefaultAction \"phase:2,log,pass\"\n"
    "SecAction \"id:900000,phase:1,nolog,pass,setvar:tx.anomaly_score=0,setvar:tx.threshold=5,"
    "setvar:tx.critical=5\"\n"
    "SecRule REQUEST_URI \"@beginsWith /search\" \"id:1001,phase:1,pass,nolog,"
    "ctl:ruleRemoveById=942100\"\n"
    "SecRule REQUEST_HEADERS:User-Agent \"@pm sqlmap nikto\" \"id:913100,phase:1,block,"
    "msg:'scanner',setvar:'tx.anomaly_score=+%{tx.critical}'\"\n"
    "SecRule ARGS|!ARGS:password \"@rx union\\s+select\" \"id:942100,phase:2,block,"
    "t:urlDecodeUni,t:lowercase,msg:'SQLi in %{MATCHED_VAR_NAME}',logdata:'%{MATCHED_VAR}',"
    "setvar:'tx.anomaly_score=+%{tx.critical}'\"\n"
    "SecRule ARGS \"@rx ^(a+)+$\" \"id:942200,phase:2,block,msg:'redos',"
    "setvar:'tx.anomaly_score=+%{tx.critical}'\"\n"
    "SecRule &ARGS \"@gt 3\" \"id:920300,phase:2,block,msg:'too many args',"
    "setvar:'tx.anomaly_score=+2'\"\n"
    "SecRule ARGS:id \"@rx ^(\\d+)$\" "
    "\"id:100,phase:2,pass,nolog,capture,setvar:tx.the_id=%{tx.1}\"\n"
    "SecRule REQUEST_METHOD \"@streq DELETE\" \"id:101,phase:2,pass,nolog,chain\"\n"
    "  SecRule ARGS:force \"@streq yes\" \"setvar:tx.anomaly_score=+5\"\n"
    "SecRule REQUEST_URI \"@beginsWith /health\" \"id:102,phase:2,pass,nolog,skipAfter:END\"\n"
    "SecRule ARGS \"@contains never-after-skip\" \"id:103,phase:2,deny,status:418\"\n"
    "SecMarker END\n"
    "SecRule TX:ANOMALY_SCORE \"@ge %{tx.threshold}\" \"id:949110,phase:2,deny,status:403,"
    "msg:'Anomaly score %{tx.anomaly_score}'\"\n";

static pc_waf_ruleset_t rs;
static pc_op_ctx_t ctx;

typedef struct {
    const char *method, *uri, *ua;
    const char *args[8][2];
} req_t;

/* Runs phases 1 and 2 with at most cap bytes of memory (0: no cap);
 * returns the status (0: passed) and leaves tx. */
static int run_in(const req_t *q, pc_waf_tx_t *tx, pc_arena_t *a, size_t cap)
{
    pc_arena_init(a, NULL, cap ? 256 : 4096, cap);
    pc_waf_tx_init(tx, a, &ctx);
    pc_waf_add(tx, PC_WV_REQUEST_METHOD, "REQUEST_METHOD", 14, q->method, strlen(q->method));
    pc_waf_add(tx, PC_WV_REQUEST_URI, "REQUEST_URI", 11, q->uri, strlen(q->uri));
    if (q->ua)
        pc_waf_add(tx, PC_WV_REQUEST_HEADERS, "User-Agent", 10, q->ua, strlen(q->ua));
    for (int i = 0; i < 8 && q->args[i][0]; i++)
        pc_waf_add(tx, PC_WV_ARGS_GET, q->args[i][0], strlen(q->args[i][0]), q->args[i][1],
                   strlen(q->args[i][1]));
    if (pc_waf_eval(&rs, tx, 1) || pc_waf_eval(&rs, tx, 2))
        return tx->status;
    return 0;
}

static int run(const req_t *q, pc_waf_tx_t *tx, pc_arena_t *a)
{
    return run_in(q, tx, a, 0);
}

static int hit(const pc_waf_tx_t *tx, uint32_t id)
{
    for (unsigned i = 0; i < tx->nhits; i++)
        if (tx->hits[i].id == id)
            return (int)i + 1;
    return 0;
}

TEST(benign_passes)
{
    pc_waf_tx_t tx;
    pc_arena_t a;
    req_t q = {"GET", "/api/items", "curl/8", {{"q", "select a union of sets"}, {"page", "2"}}};
    CHECK_EQ_INT(run(&q, &tx, &a), 0);
    CHECK_EQ_INT(tx.nhits, 0);
    CHECK_EQ_STR(pc_waf_getvar(&tx, "anomaly_score"), "0");
    pc_arena_free(&a);
}

TEST(sqli_scores_and_blocks)
{
    pc_waf_tx_t tx;
    pc_arena_t a;
    req_t q = {"GET", "/api/items", NULL, {{"q", "1%20UNION%0aSeLeCt%20pass"}}};
    CHECK_EQ_INT(run(&q, &tx, &a), 403);
    CHECK_EQ_INT(tx.decided_by, 949110);
    int h = hit(&tx, 942100);
    CHECK(h > 0);
    if (h) {
        CHECK_EQ_STR(tx.hits[h - 1].msg, "SQLi in ARGS:q");
        CHECK_EQ_STR(tx.hits[h - 1].logdata, "1 union\nselect pass");
    }
    h = hit(&tx, 949110);
    CHECK(h && strcmp(tx.hits[h - 1].msg, "Anomaly score 5") == 0);
    pc_arena_free(&a);
}

TEST(exclusions_counts_captures)
{
    pc_waf_tx_t tx;
    pc_arena_t a;
    req_t q = {"POST", "/login", NULL, {{"password", "x' union select 1"}}};
    CHECK_EQ_INT(run(&q, &tx, &a), 0); /* !ARGS:password */
    pc_arena_free(&a);
    req_t many = {"GET", "/x", NULL, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"id", "42"}}};
    CHECK_EQ_INT(run(&many, &tx, &a), 0); /* 2 points: under the threshold */
    CHECK(hit(&tx, 920300));
    CHECK_EQ_STR(pc_waf_getvar(&tx, "anomaly_score"), "2");
    CHECK_EQ_STR(pc_waf_getvar(&tx, "the_id"), "42");
    pc_arena_free(&a);
}

TEST(chains_skips_and_ctl)
{
    pc_waf_tx_t tx;
    pc_arena_t a;
    req_t del = {"DELETE", "/x", NULL, {{"force", "yes"}}};
    CHECK_EQ_INT(run(&del, &tx, &a), 403);
    pc_arena_free(&a);
    req_t del2 = {"DELETE", "/x", NULL, {{"force", "no"}}};
    CHECK_EQ_INT(run(&del2, &tx, &a), 0);
    pc_arena_free(&a);
    req_t get = {"GET", "/x", NULL, {{"force", "yes"}}};
    CHECK_EQ_INT(run(&get, &tx, &a), 0);
    pc_arena_free(&a);
    req_t health = {"GET", "/health", NULL, {{"x", "never-after-skip"}}};
    CHECK_EQ_INT(run(&health, &tx, &a), 0);
    pc_arena_free(&a);
    req_t other = {"GET", "/other", NULL, {{"x", "never-after-skip"}}};
    CHECK_EQ_INT(run(&other, &tx, &a), 418);
    pc_arena_free(&a);
    req_t search = {"GET", "/search", NULL, {{"q", "union select"}}};
    CHECK_EQ_INT(run(&search, &tx, &a), 0); /* 942100 removed for /search */
    pc_arena_free(&a);
    req_t scanner = {"GET", "/x", "Mozilla (Nikto/2.1.6)", {{"q", "x"}}};
    CHECK_EQ_INT(run(&scanner, &tx, &a), 403);
    CHECK(hit(&tx, 913100));
    pc_arena_free(&a);
}

TEST(redos_is_a_match)
{
    pc_waf_tx_t tx;
    pc_arena_t a;
    req_t q = {"GET", "/x", NULL, {{"v", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"}}};
    CHECK_EQ_INT(run(&q, &tx, &a), 403);
    int h = hit(&tx, 942200);
    CHECK(h && tx.hits[h - 1].limit_hit);
    pc_arena_free(&a);
}

TEST(long_transformation_chains)
{
    /* buffers sized per step: a chain of 15 used to ask for 3^16 times the
     * value and, failing, count as a match */
    static const char chain[] =
        "SecRule ARGS \"@streq never\" \"id:1,phase:2,deny,status:403,t:lowercase,t:trim,"
        "t:lowercase,t:trim,t:lowercase,t:trim,t:lowercase,t:trim,t:lowercase,t:trim,t:lowercase,"
        "t:trim,t:lowercase,t:trim,t:utf8toUnicode\"\n";
    pc_waf_ruleset_t set = {0};
    pc_errlist_t e = {0};
    CHECK(pc_waf_load_text(&set, "c.conf", chain, sizeof(chain) - 1, &e) == 0);
    char value[4096];
    memset(value, 'A', sizeof(value));
    pc_arena_t a;
    pc_waf_tx_t tx;
    pc_arena_init(&a, NULL, 4096, 1 << 24);
    pc_waf_tx_init(&tx, &a, &ctx);
    pc_waf_add(&tx, PC_WV_ARGS_GET, "v", 1, value, sizeof(value));
    CHECK_EQ_INT(pc_waf_eval(&set, &tx, 2), 0);
    CHECK_EQ_INT(tx.nhits, 0);
    pc_arena_free(&a);
    pc_waf_ruleset_free(&set);
    pc_errlist_free(&e);
}

/* Selectors and exclusions by name: each value's name is looked up once
 * among the rule set's plain selectors (a bit each, the first
 * PC_WAF_NAMES of them); past those, and for /regex/ ones, names are
 * compared as strings. Either way: case-insensitive, per collection, and
 * an exclusion from ARGS also holds in ARGS_GET and ARGS_POST. */
TEST(names_by_bit_and_by_string)
{
    char text[16384];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n,
                          "SecRule ARGS_GET|!ARGS:Secret|REQUEST_HEADERS:X-Probe|"
                          "REQUEST_COOKIES|!REQUEST_COOKIES:/^_ga/ \"@contains evil\" "
                          "\"id:1,phase:2,pass,log\"\n");
    /* 70 more distinct selectors: the last ones do not get a bit */
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "SecRule ARGS_POST:field%d|!ARGS_POST:Field%dX \"@contains evil\" "
                              "\"id:%d,phase:2,pass,log\"\n",
                              i, i, 100 + i);
    pc_waf_ruleset_t set = {0};
    pc_errlist_t e = {0};
    CHECK(pc_waf_load_text(&set, "n.conf", text, n, &e) == 0);
    CHECK_EQ_INT(set.names.n, PC_WAF_NAMES);
    CHECK(set.rules[0]->ntargets == 3 && set.rules[0]->nvars == 5);         /* targets first */
    CHECK(set.rules[0]->vars[3].exclude && set.rules[0]->vars[3].sel_bits); /* !ARGS:Secret */
    CHECK(set.rules[70]->vars[0].sel_bits == 0); /* field69: compared as a string */
    CHECK(set.rules[0]->excl_slow == 1u << PC_WV_REQUEST_COOKIES);
    static const struct {
        int var;
        const char *name;
        uint32_t id; /* the rule it must hit, 0: none */
    } cases[] = {
        {PC_WV_ARGS_GET, "SECRET", 0},         {PC_WV_ARGS_GET, "secrets", 1},
        {PC_WV_REQUEST_HEADERS, "x-probe", 1}, {PC_WV_REQUEST_HEADERS, "X-Probe-2", 0},
        {PC_WV_REQUEST_COOKIES, "_gauges", 0}, {PC_WV_REQUEST_COOKIES, "sid", 1},
        {PC_WV_ARGS_POST, "FIELD3", 103},      {PC_WV_ARGS_POST, "field3x", 0},
        {PC_WV_ARGS_POST, "Field69", 169},     {PC_WV_ARGS_POST, "field69X", 0},
        {PC_WV_ARGS_POST, "field70", 0},       {PC_WV_ARGS_GET, "field3", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pc_arena_t a;
        pc_waf_tx_t tx;
        pc_arena_init(&a, NULL, 4096, 1 << 24);
        pc_waf_tx_init(&tx, &a, &ctx);
        pc_waf_add(&tx, cases[i].var, cases[i].name, strlen(cases[i].name), "evil", 4);
        CHECK_EQ_INT(pc_waf_eval(&set, &tx, 2), 0);
        CHECK_EQ_INT(tx.nhits, cases[i].id ? 1 : 0);
        if (tx.nhits)
            CHECK_EQ_INT(tx.hits[0].id, cases[i].id);
        pc_arena_free(&a);
    }
    pc_waf_ruleset_free(&set);
    pc_errlist_free(&e);
}

/* @pmFromFile is prefiltered by its phrases (a file phrase's own spaces
 * included): the rule runs on a value only when one is in it, and the
 * verdicts are those without the prefilter. */
TEST(pm_from_file_prefiltered)
{
    char dir[] = "/tmp/pc_test_pmf_XXXXXX", path[64], text[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/agents.data", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("# scanners\nevil scanner\nbadbot\n", f);
    fclose(f);
    int n = snprintf(text, sizeof(text),
                     "SecRule REQUEST_HEADERS:User-Agent \"@pmFromFile %s\" "
                     "\"id:5,phase:1,block,t:none,t:lowercase\"\n",
                     path);
    static const struct {
        const char *ua;
        int hit;
    } cases[] = {{"Evil Scanner/2.0", 1}, {"evil  scanner", 0}, {"x-BADBOT", 1}, {"curl/8", 0}};
    for (int no_pf = 0; no_pf < 2; no_pf++) {
        pc_waf_ruleset_t set = {0};
        pc_errlist_t e = {0};
        CHECK(pc_waf_load_text(&set, "p.conf", text, (size_t)n, &e) == 0);
        CHECK(no_pf || set.rules[0]->pf >= 0);
        set.no_prefilter = no_pf;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            pc_arena_t a;
            pc_waf_tx_t tx;
            pc_arena_init(&a, NULL, 4096, 1 << 24);
            pc_waf_tx_init(&tx, &a, &ctx);
            pc_waf_add(&tx, PC_WV_REQUEST_HEADERS, "User-Agent", 10, cases[i].ua,
                       strlen(cases[i].ua));
            pc_waf_eval(&set, &tx, 1);
            CHECK_EQ_INT(tx.nhits, cases[i].hit);
            pc_arena_free(&a);
        }
        pc_waf_ruleset_free(&set);
        pc_errlist_free(&e);
    }
    unlink(path);
    rmdir(dir);
}

/* One request with the single query argument q=v through phases 1 and 2:
 * the rules that hit, as bits of their ids (1 to 31). */
static unsigned arg_hits(const pc_waf_ruleset_t *set, const char *v)
{
    pc_arena_t a;
    pc_waf_tx_t tx;
    unsigned bits = 0;
    pc_arena_init(&a, NULL, 4096, 1 << 24);
    pc_waf_tx_init(&tx, &a, &ctx);
    pc_waf_add(&tx, PC_WV_ARGS_GET, "q", 1, v, strlen(v));
    pc_waf_eval(set, &tx, 1);
    pc_waf_eval(set, &tx, 2);
    for (unsigned i = 0; i < tx.nhits; i++)
        bits |= tx.hits[i].id < 32 ? 1u << tx.hits[i].id : 0;
    pc_arena_free(&a);
    return bits;
}

#define R1 (1u << 1)
#define R2 (1u << 2)
#define R3 (1u << 3)

/* The prefilter's two ways through a collection: a value plain for every
 * chain takes the bits of the groups whose chain leaves it as it is from
 * one scan of the value itself, and still goes through the groups whose
 * chain changes it whatever it holds (t:removeWhitespace); a value with
 * an escape goes through every group. Hits with and without it. */
TEST(prefilter_plain_and_decoded_values)
{
    static const char text[] =
        "SecRule ARGS \"@rx union\\s+select\" "
        "\"id:1,phase:2,block,t:none,t:urlDecode,t:lowercase\"\n"
        "SecRule ARGS \"@contains unionselect\" \"id:2,phase:2,block,t:none,t:removeWhitespace\"\n";
    static const struct {
        const char *v;
        unsigned hits;
    } cases[] = {{"1 union select 2", R1 | R2}, /* plain: both groups */
                 {"1 %75nion %73elect", R1},    /* the literals only once decoded */
                 {"1 UNION%20select", R1},      /* not plain, literal there */
                 {"un ion sel ect", R2},        /* only the other chain's result */
                 {"page=2", 0}};
    for (int no_pf = 0; no_pf < 2; no_pf++) {
        pc_waf_ruleset_t set = {0};
        pc_errlist_t e = {0};
        CHECK(pc_waf_load_text(&set, "p.conf", text, sizeof(text) - 1, &e) == 0);
        CHECK(no_pf || (set.rules[0]->pf >= 0 && set.rules[1]->pf >= 0));
        set.no_prefilter = no_pf;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            CHECK_EQ_INT(arg_hits(&set, cases[i].v), cases[i].hits);
        pc_waf_ruleset_free(&set);
        pc_errlist_free(&e);
    }
}

/* Operators a value's features rule out before its chain runs (no byte
 * they need); values that have the feature, or that the chain decodes,
 * still reach them. */
TEST(ruled_out_by_features)
{
    static const char text[] =
        "SecRule ARGS \"@validateUtf8Encoding\" \"id:1,phase:2,block,t:none\"\n"
        "SecRule ARGS \"@validateUrlEncoding\" \"id:2,phase:2,block,t:none\"\n"
        "SecRule ARGS \"@rx [\\x00-\\x08\\x0a-\\x1f]\" "
        "\"id:3,phase:2,block,t:none,t:urlDecodeUni\"\n";
    static const struct {
        const char *v;
        unsigned hits;
    } cases[] = {{"cafe", 0},   {"caf\xc3", R1}, {"caf\xc3\xa9", 0}, {"100% sure", R2},
                 {"a%0ab", R3}, {"a\x01b", R3},  {"tab\there", 0}};
    pc_waf_ruleset_t set = {0};
    pc_errlist_t e = {0};
    CHECK(pc_waf_load_text(&set, "f.conf", text, sizeof(text) - 1, &e) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_EQ_INT(arg_hits(&set, cases[i].v), cases[i].hits);
    pc_waf_ruleset_free(&set);
    pc_errlist_free(&e);
}

/* One header value through three transactions and two rule sets with the
 * same worker context: the second transaction takes the value's bits from
 * the worker's cache, and a rule set loaded later never does (its bit i is
 * another rule, its literals others). */
static int header_hits(const char *text, const char *value)
{
    pc_waf_ruleset_t set = {0};
    pc_errlist_t e = {0};
    CHECK(pc_waf_load_text(&set, "c.conf", text, strlen(text), &e) == 0);
    CHECK(set.rules[0]->pf >= 0);
    pc_arena_t a;
    pc_waf_tx_t tx;
    pc_arena_init(&a, NULL, 4096, 1 << 24);
    pc_waf_tx_init(&tx, &a, &ctx);
    pc_waf_add(&tx, PC_WV_REQUEST_HEADERS, "X-Note", 6, value, strlen(value));
    pc_waf_eval(&set, &tx, 1);
    int hits = (int)tx.nhits;
    pc_arena_free(&a);
    pc_waf_ruleset_free(&set);
    pc_errlist_free(&e);
    return hits;
}

TEST(prefilter_cache_across_requests_and_loads)
{
    static const char evil[] =
        "SecRule REQUEST_HEADERS \"@contains evil\" \"id:1,phase:1,block\"\n",
                      value[] =
                          "SecRule REQUEST_HEADERS \"@contains value\" \"id:1,phase:1,block\"\n";
    CHECK_EQ_INT(header_hits(evil, "an evil value"), 1);
    CHECK(ctx.pf_cache != NULL);
    CHECK_EQ_INT(header_hits(evil, "an evil value"), 1);    /* from the cache */
    CHECK_EQ_INT(header_hits(evil, "a harmless value"), 0); /* cached: no literal of this load */
    CHECK_EQ_INT(header_hits(value, "a harmless value"), 1);
    CHECK_EQ_INT(header_hits(value, "a harmless valu"), 0);
    CHECK_EQ_INT(header_hits(evil, "a harmless value"), 0);
}

/* Runtime exclusions (a route's, ctl's): a target's only in its
 * collection, a whole rule's everywhere; at most 64 of them. */
TEST(runtime_exclusions)
{
    pc_waf_var_t q, hdr;
    char err[128];
    CHECK(pc_waf_parse_target("ARGS:q", 6, &q, err, sizeof(err)) == 0);
    CHECK(pc_waf_parse_target("REQUEST_HEADERS:q", 17, &hdr, err, sizeof(err)) == 0);
    req_t in_q = {"GET", "/x", NULL, {{"q", "1 union select 2"}}};
    req_t in_r = {"GET", "/x", NULL, {{"r", "1 union select 2"}}};
    for (int k = 0; k < 4; k++) {
        pc_arena_t a;
        pc_waf_tx_t tx;
        const req_t *rq = k & 1 ? &in_r : &in_q;
        pc_arena_init(&a, NULL, 4096, 1 << 24);
        pc_waf_tx_init(&tx, &a, &ctx);
        CHECK(pc_waf_remove(&tx, 942000, 942199, &hdr) == 0); /* another collection */
        CHECK(pc_waf_remove(&tx, 942100, 942100, k < 2 ? &q : NULL) == 0);
        pc_waf_add(&tx, PC_WV_REQUEST_METHOD, "REQUEST_METHOD", 14, rq->method, 3);
        pc_waf_add(&tx, PC_WV_REQUEST_URI, "REQUEST_URI", 11, rq->uri, 2);
        pc_waf_add(&tx, PC_WV_ARGS_GET, rq->args[0][0], 1, rq->args[0][1], strlen(rq->args[0][1]));
        CHECK_EQ_INT(pc_waf_eval(&rs, &tx, 1), 0);
        pc_waf_eval(&rs, &tx, 2);
        CHECK_EQ_INT(hit(&tx, 942100) != 0, k == 1); /* only ARGS:r with ARGS:q removed */
        for (int i = 2; i < 64; i++)
            CHECK(pc_waf_remove(&tx, 1, 1, NULL) == 0);
        CHECK(pc_waf_remove(&tx, 1, 1, NULL) == -1);
        pc_arena_free(&a);
    }
    pc_waf_var_free(&q);
    pc_waf_var_free(&hdr);
}

/* Memory running out anywhere in a transaction (values, transformations,
 * setvar, macros, captures, chains) ends it in a deny marked nomem: never a
 * pass, and not a rule's verdict. */
TEST(out_of_memory_is_never_a_pass)
{
    req_t attack = {"DELETE",
                    "/items",
                    "sqlmap/1.0",
                    {{"id", "42"}, {"q", "1 UNION%20SELECT x"}, {"force", "yes"}, {"a", "b"}}};
    req_t benign = {"GET", "/api/items", "curl/8", {{"id", "42"}, {"page", "2"}}};
    int short_attack = 0, short_benign = 0;
    for (size_t cap = 256; cap <= 64 * 1024; cap += 256) {
        pc_waf_tx_t tx;
        pc_arena_t a;
        int st = run_in(&attack, &tx, &a, cap);
        CHECK(tx.nomem ? tx.decided_by == 0 : st == 403);
        short_attack += tx.nomem;
        pc_arena_free(&a);
        st = run_in(&benign, &tx, &a, cap);
        CHECK(tx.nomem || st == 0);
        short_benign += tx.nomem;
        pc_arena_free(&a);
    }
    /* both ran short at first and had enough in the end */
    CHECK(short_attack > 0 && short_attack < 64 * 4);
    CHECK(short_benign > 0 && short_benign < 64 * 4);
}

static void setup(void)
{
    pc_errlist_t e = {0};
    CHECK(pc_waf_load_text(&rs, "t.conf", rules, sizeof(rules) - 1, &e) == 0);
    for (size_t i = 0; i < e.n; i++)
        fprintf(stderr, "%s\n", e.msgs[i]);
    pc_errlist_free(&e);
    CHECK(pc_op_ctx_init(&ctx) == 0);
}

TEST_MAIN(setup(); RUN(benign_passes); RUN(sqli_scores_and_blocks); RUN(exclusions_counts_captures);
          RUN(chains_skips_and_ctl); RUN(redos_is_a_match); RUN(long_transformation_chains);
          RUN(out_of_memory_is_never_a_pass); RUN(names_by_bit_and_by_string);
          RUN(runtime_exclusions); RUN(pm_from_file_prefiltered);
          RUN(prefilter_plain_and_decoded_values); RUN(ruled_out_by_features);
          RUN(prefilter_cache_across_requests_and_loads); pc_op_ctx_free(&ctx);
          pc_waf_ruleset_free(&rs))
