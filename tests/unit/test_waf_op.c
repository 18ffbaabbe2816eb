/*
 * test_waf_op.c — the WAF operators: regex with captures and its limits
 * (a ReDoS input is a match, not a pass), Aho-Corasick phrase matching,
 * the string, number and address operators, the validators, negation and
 * the compile errors.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "str.h"
#include "test.h"
#include "waf_op.h"
#include "waf_tf.h"

static pc_op_ctx_t ctx;
static char err[256];

static int compile(pc_op_t *op, const char *name, const char *param)
{
    int neg = name[0] == '!';
    int kind = pc_op_parse_name(name + neg, strlen(name + neg));
    CHECK(kind >= 0);
    return pc_op_compile(op, kind, neg, param, strlen(param), "/tmp", err, sizeof(err));
}

/* Compiles, matches one value, frees. */
static int m(const char *name, const char *param, const char *v)
{
    pc_op_t op;
    if (compile(&op, name, param) != 0) {
        fprintf(stderr, "compile %s %s: %s\n", name, param, err);
        return -1;
    }
    int r = pc_op_match(&op, &ctx, (const unsigned char *)v, strlen(v), 0);
    pc_op_free(&op);
    return r;
}

TEST(regex)
{
    CHECK_EQ_INT(m("rx", "(?i)union\\s+select", "1 UNION  SELECT 2"), 1);
    CHECK_EQ_INT(m("rx", "^admin$", "admin\n"), 0); /* $ is the very end */
    CHECK_EQ_INT(m("rx", "a.b", "a\nb"), 1);        /* . matches newlines */
    CHECK_EQ_INT(m("!rx", "^[a-z]+$", "abc"), 0);
    CHECK_EQ_INT(m("!rx", "^[a-z]+$", "ab1"), 1);
    pc_op_t op;
    CHECK(compile(&op, "rx", "(\\w+)=(\\d+)") == 0);
    const char *v = "x: id=42;";
    CHECK_EQ_INT(pc_op_match(&op, &ctx, (const unsigned char *)v, strlen(v), 0), 1);
    CHECK_EQ_INT(ctx.ncaps, 3);
    CHECK_SLICE(v + ctx.caps[1].off, ctx.caps[1].len, "id");
    CHECK_SLICE(v + ctx.caps[2].off, ctx.caps[2].len, "42");
    pc_op_free(&op);
    /* catastrophic backtracking: bounded, and counted as a match */
    char evil[64];
    memset(evil, 'a', 40);
    strcpy(evil + 40, "!");
    CHECK(compile(&op, "rx", "^(a+)+$") == 0);
    CHECK_EQ_INT(pc_op_match(&op, &ctx, (const unsigned char *)evil, strlen(evil), 0), 1);
    CHECK_EQ_INT(ctx.limit_hit, 1);
    pc_op_free(&op);
    CHECK(compile(&op, "!rx", "^(a+)+$") == 0); /* negated: still a match */
    CHECK_EQ_INT(pc_op_match(&op, &ctx, (const unsigned char *)evil, strlen(evil), 0), 1);
    pc_op_free(&op);
    CHECK_EQ_INT(compile(&op, "rx", "(unclosed"), -1);
    CHECK(strstr(err, "invalid regular expression") && strstr(err, "offset"));
}

/* Subjects ruled out before PCRE2 is called (too short, or no byte a match
 * can start with) get PCRE2's own verdict; the edges of those checks. */
TEST(regex_prechecks)
{
    /* anchored: only the first byte counts */
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls)\\b", "  id"), 1);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls)\\b", "xid"), 0);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls)\\b", "'ls"), 1);
    CHECK_EQ_INT(m("!rx", "^(?:id|ls)\\b", "xid"), 1);
    /* minimum length: one byte short, exactly long enough */
    CHECK_EQ_INT(m("rx", "abc|[xy]z{3}", "yzz"), 0);
    CHECK_EQ_INT(m("rx", "abc|[xy]z{3}", "yzzz"), 1);
    CHECK_EQ_INT(m("rx", "abc|[xy]z{3}", "--abc"), 1);
    /* a start set scanned for: a byte of it anywhere */
    CHECK_EQ_INT(m("rx", "[<>]\\s*script", "a < script"), 1);
    CHECK_EQ_INT(m("rx", "[<>]\\s*script", "script"), 0);
    /* a branch anchored, another not: the whole subject is searched */
    CHECK_EQ_INT(m("rx", "^select|union", "a union b"), 1);
    CHECK_EQ_INT(m("rx", "^select|union", "a select"), 0);
    /* case-insensitive patterns: both cases of a first byte */
    CHECK_EQ_INT(m("rx", "(?i)^(?:id|ls)$", "LS"), 1);
    /* patterns that match the empty subject */
    CHECK_EQ_INT(m("rx", "^$", ""), 1);
    CHECK_EQ_INT(m("rx", "x*", ""), 1);
    CHECK_EQ_INT(m("rx", "^a", ""), 0);
    /* anchored: the second byte too, from PCRE2's partial matches; at the
     * second byte's edges (a word boundary, the end, a lookahead, a class
     * that may match nothing) the pair is kept */
    pc_op_t op;
    CHECK(compile(&op, "rx", "^[\\s'\"]*(?:id|ls|netstat)\\b") == 0);
    CHECK(op.rx_pairs != NULL && op.rx_triples != NULL); /* triples: below */
    pc_op_free(&op);
    CHECK(compile(&op, "rx", "^.a") == 0); /* every first byte: no table */
    CHECK(op.rx_pairs == NULL);
    pc_op_free(&op);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "ne"), 0);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "nu"), 0);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "netstat -an"), 1);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "nitstat"), 0);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", " \"id"), 1);
    CHECK_EQ_INT(m("rx", "^i\\b", "i-"), 1);
    CHECK_EQ_INT(m("rx", "^i\\b", "ix"), 0);
    CHECK_EQ_INT(m("rx", "^i$", "i\n"), 0); /* $ is the very end (PCRE2_DOLLAR_ENDONLY) */
    CHECK_EQ_INT(m("rx", "^i(?=\\d)", "i7"), 1);
    CHECK_EQ_INT(m("rx", "^i(?=\\d)", "ia"), 0);
    CHECK_EQ_INT(m("rx", "^ab*c", "ac"), 1);
    CHECK_EQ_INT(m("rx", "^ab*c", "abbbc"), 1);
    CHECK_EQ_INT(m("rx", "^ab*c", "ad"), 0);
    /* and the third byte, through the JIT's partial matching, at its edges */
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "neu"), 0);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "net"), 0);
    CHECK_EQ_INT(m("rx", "^[\\s'\"]*(?:id|ls|netstat)\\b", "  netstat"), 1);
    CHECK_EQ_INT(m("rx", "^(?:abc|abd)x", "abdx"), 1);
    CHECK_EQ_INT(m("rx", "^(?:abc|abd)x", "abex"), 0);
    CHECK_EQ_INT(m("rx", "^ab\\b", "ab-"), 1);
    CHECK_EQ_INT(m("rx", "^ab\\b", "abc"), 0);
    CHECK_EQ_INT(m("rx", "^ab$", "ab"), 1);
    CHECK_EQ_INT(m("rx", "^ab$", "ab\n"), 0);
    CHECK_EQ_INT(m("rx", "^ab(?=\\d)", "ab7"), 1);
    CHECK_EQ_INT(m("rx", "^ab(?=\\d)", "abx"), 0);
    CHECK_EQ_INT(m("rx", "^ab(?:c|)d", "abd"), 1);
    CHECK_EQ_INT(m("rx", "^ab(?:c|)d", "abcd"), 1);
    CHECK_EQ_INT(m("rx", "(?i)^(?:ab|cd)c", "ABC"), 1);
}

/* pc_op_may_match on a value as it is, or as it will be once lowered:
 * 0 only when pc_op_match on that value is 0, and the lowered checks read
 * the bytes in lower case (the raw ones would rule out "NEtstat"). */
static int may(const char *name, const char *param, const char *v, int lowered)
{
    pc_op_t op;
    CHECK(compile(&op, name, param) == 0);
    size_t n = strlen(v);
    char low[64];
    CHECK(n < sizeof(low));
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)pc_lower((unsigned char)v[i]);
    const char *s = lowered ? low : v;
    int r = pc_op_may_match(&op, (const unsigned char *)v, n, lowered);
    if (!r) /* never ruled out when it would match */
        CHECK_EQ_INT(pc_op_match(&op, &ctx, (const unsigned char *)s, n, 0), 0);
    pc_op_free(&op);
    return r;
}

TEST(may_match_before_lowering)
{
    const char *cmd = "^[\\s'\"]*(?:id|ls|netstat)\\b";
    CHECK_EQ_INT(may("rx", cmd, "NEtstat -an", 1), 1);
    CHECK_EQ_INT(may("rx", cmd, "NEtstat -an", 0), 0);
    CHECK_EQ_INT(may("rx", cmd, "NUtstat", 1), 0); /* the second byte, lowered */
    CHECK_EQ_INT(may("rx", cmd, "nUtstat", 1), 0);
    CHECK_EQ_INT(may("rx", cmd, "nEtstat", 1), 1);
    CHECK_EQ_INT(may("rx", cmd, "nEUstat", 1), 0); /* the third byte, lowered */
    CHECK_EQ_INT(may("rx", cmd, "XID", 1), 0);
    CHECK_EQ_INT(may("rx", cmd, " 'ID", 1), 1);
    CHECK_EQ_INT(may("rx", cmd, "I", 1), 0); /* shorter than any match */
    /* unanchored: a first byte anywhere, in either case */
    CHECK_EQ_INT(may("rx", "union|select", "a UNION b", 1), 1);
    CHECK_EQ_INT(may("rx", "union|select", "a UNION b", 0), 0);
    CHECK_EQ_INT(may("rx", "union|select", "a JOIN b", 1), 0);
    CHECK_EQ_INT(may("rx", "[<>]\\s*script", "SCRIPT", 1), 0);
    /* negated, or not a regex: never ruled out here */
    CHECK_EQ_INT(may("!rx", cmd, "XID", 1), 1);
    CHECK_EQ_INT(may("contains", "zz", "XID", 1), 1);
}

/* The features a value must have for an operator to match it: only
 * when every match needs a byte of theirs. */
static unsigned needs_of(const char *name, const char *param)
{
    pc_op_t op;
    CHECK(compile(&op, name, param) == 0);
    unsigned n = op.needs;
    pc_op_free(&op);
    return n;
}

TEST(operator_needs)
{
    CHECK_EQ_INT(needs_of("validateUtf8Encoding", ""), PC_TFF_OTHER);
    CHECK_EQ_INT(needs_of("validateUrlEncoding", ""), PC_TFF_URL);
    CHECK_EQ_INT(needs_of("!validateUtf8Encoding", ""), 0);
    CHECK_EQ_INT(needs_of("rx", "[\\x00-\\x08\\x0a-\\x1f]|\\\\x0"), PC_TFF_OTHER | PC_TFF_ESCAPE);
    CHECK_EQ_INT(needs_of("rx", "%[0-9a-f]{2}|\\+\\d"), PC_TFF_URL);
    CHECK_EQ_INT(needs_of("rx", "^[\\x80-\\xff]x"), PC_TFF_OTHER);
    CHECK_EQ_INT(needs_of("rx", "\\x00|a"), 0);   /* an ordinary first byte */
    CHECK_EQ_INT(needs_of("rx", "&lt;|&gt;"), 0); /* an '&' alone is no feature */
    CHECK_EQ_INT(needs_of("rx", "\\x00*"), 0);    /* matches the empty value */
    CHECK_EQ_INT(needs_of("!rx", "\\x00"), 0);
    CHECK_EQ_INT(needs_of("contains", "%"), 0);
}

TEST(phrases)
{
    CHECK_EQ_INT(m("pm", "he she hers", "USHERS"), 1);
    CHECK_EQ_INT(m("pm", "select union", "UnIoN"), 1);
    CHECK_EQ_INT(m("pm", "select union", "selec unio"), 0);
    CHECK_EQ_INT(m("pm", "passwd shadow", "/etc/pass wd"), 0);
    CHECK_EQ_INT(m("pm", "ab bab", "xbabx"), 1);
    CHECK_EQ_INT(m("!pm", "ab", "xyz"), 1);
    pc_op_t op;
    CHECK_EQ_INT(compile(&op, "pm", "   "), -1);
    FILE *f = fopen("/tmp/pc_test_phrases.txt", "w");
    fputs("# scanners\nsqlmap\n  nikto  \n\nacunetix scanner\n", f);
    fclose(f);
    CHECK_EQ_INT(m("pmFromFile", "pc_test_phrases.txt", "Mozilla (Nikto/2.1)"), 1);
    CHECK_EQ_INT(m("pmFromFile", "pc_test_phrases.txt", "an ACUNETIX SCANNER run"), 1);
    CHECK_EQ_INT(m("pmFromFile", "pc_test_phrases.txt", "acunetix"), 0); /* the whole phrase */
    CHECK_EQ_INT(m("pmFromFile", "pc_test_phrases.txt", "curl/8"), 0);
    unlink("/tmp/pc_test_phrases.txt");
    CHECK_EQ_INT(compile(&op, "pmFromFile", "missing.txt"), -1);
    CHECK(strstr(err, "cannot read") != NULL);
}

/* pc_ac_sets (the prefilter's automaton) against a naive search: phrases
 * of 2 to 9 bytes over a small alphabet, so that they occur, overlap and
 * repeat, one set with two phrases, sets past the first word. */
TEST(automaton_sets)
{
    static const char *const ph[] = {"a",    "ab'",     "b%b%",      "''",
                                     "%aab", "baba'ab", "abab'baba", "AB"};
    static const uint32_t set[] = {0, 1, 2, 3, 4, 65, 66, 1};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(ph[i]);
    pc_ac_t *ac = pc_ac_new(ph + 1, lens + 1, set + 1, 7, 70); /* "a" aside: too common */
    CHECK(ac != NULL);
    if (!ac)
        return;
    uint32_t seed = 12345;
    unsigned char v[400];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)round % 400;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = (unsigned char)"abAB'%x"[(seed >> 16) % 7];
        }
        uint64_t got[2] = {0, 0}, want[2] = {0, 0};
        pc_ac_sets(ac, v, n, got);
        for (int p = 1; p < 8; p++)
            for (size_t i = 0; i + lens[p] <= n; i++)
                if (strncasecmp((const char *)v + i, ph[p], lens[p]) == 0)
                    want[set[p] / 64] |= (uint64_t)1 << (set[p] % 64);
        CHECK(got[0] == want[0] && got[1] == want[1]);
    }
    pc_ac_free(ac);
}

TEST(strings)
{
    CHECK_EQ_INT(m("contains", "<script", "a<script>b"), 1);
    CHECK_EQ_INT(m("contains", "<script", "<scrip"), 0);
    CHECK_EQ_INT(m("containsWord", "select", "select * from"), 1);
    CHECK_EQ_INT(m("containsWord", "select", "preselected"), 0);
    CHECK_EQ_INT(m("containsWord", "select", "a,select;"), 1);
    CHECK_EQ_INT(m("containsWord", "or", "for or"), 1);
    CHECK_EQ_INT(m("streq", "GET", "GET"), 1);
    CHECK_EQ_INT(m("streq", "GET", "GETX"), 0);
    CHECK_EQ_INT(m("beginsWith", "/admin", "/admin/x"), 1);
    CHECK_EQ_INT(m("endsWith", ".php", "index.php"), 1);
    CHECK_EQ_INT(m("endsWith", ".php", "php"), 0);
    CHECK_EQ_INT(m("within", "GET HEAD POST", "HEAD"), 1);
    CHECK_EQ_INT(m("within", "GET HEAD POST", "PUT"), 0);
    CHECK_EQ_INT(m("!within", "GET HEAD POST", "PUT"), 1);
}

TEST(numbers)
{
    CHECK_EQ_INT(m("eq", "0", "abc"), 1); /* not a number: 0 */
    CHECK_EQ_INT(m("gt", "5", "6"), 1);
    CHECK_EQ_INT(m("ge", "5", "5"), 1);
    CHECK_EQ_INT(m("lt", "5", "-7"), 1);
    CHECK_EQ_INT(m("le", "5", "12x"), 0);
    pc_op_t op;
    CHECK(compile(&op, "ge", "%{tx.inbound_anomaly_score_threshold}") == 0);
    CHECK_EQ_INT(pc_op_match(&op, &ctx, (const unsigned char *)"5", 1, 5), 1);
    CHECK_EQ_INT(pc_op_match(&op, &ctx, (const unsigned char *)"4", 1, 5), 0);
    pc_op_free(&op);
    CHECK_EQ_INT(compile(&op, "gt", "five"), -1);
}

TEST(addresses_and_validators)
{
    CHECK_EQ_INT(m("ipMatch", "192.0.2.0/24,2001:db8::/32, 10.1.2.3", "192.0.2.77"), 1);
    CHECK_EQ_INT(m("ipMatch", "192.0.2.0/24,2001:db8::/32", "2001:db8::1"), 1);
    CHECK_EQ_INT(m("ipMatch", "192.0.2.0/24", "192.0.3.1"), 0);
    CHECK_EQ_INT(m("ipMatch", "192.0.2.0/24", "not an ip"), 0);
    pc_op_t op;
    CHECK_EQ_INT(compile(&op, "ipMatch", "300.1.1.1"), -1);
    CHECK_EQ_INT(m("validateByteRange", "32-126,9", "ok\ttext"), 0);
    CHECK_EQ_INT(m("validateByteRange", "32-126", "bad\x01"), 1);
    CHECK_EQ_INT(m("validateByteRange", "32-126", "caf\xc3\xa9"), 1);
    CHECK_EQ_INT(compile(&op, "validateByteRange", "10-5"), -1);
    CHECK_EQ_INT(compile(&op, "validateByteRange", "1,256"), -1);
    CHECK_EQ_INT(m("validateUrlEncoding", "", "a%20b%2F"), 0);
    CHECK_EQ_INT(m("validateUrlEncoding", "", "a%2"), 1);
    CHECK_EQ_INT(m("validateUrlEncoding", "", "%zz"), 1);
    CHECK_EQ_INT(m("validateUtf8Encoding", "", "caf\xc3\xa9 \xf0\x9f\x98\x80"), 0);
    CHECK_EQ_INT(m("validateUtf8Encoding", "", "\xc0\xaf"), 1);     /* overlong */
    CHECK_EQ_INT(m("validateUtf8Encoding", "", "\xe0\x80\xaf"), 1); /* overlong */
    CHECK_EQ_INT(m("validateUtf8Encoding", "", "\xed\xa0\x80"), 1); /* surrogate */
    CHECK_EQ_INT(m("validateUtf8Encoding", "", "\xf4\x90\x80\x80"), 1);
    CHECK_EQ_INT(m("validateUtf8Encoding", "", "\xc3"), 1); /* truncated */
    CHECK_EQ_INT(m("unconditionalMatch", "", ""), 1);
    CHECK_EQ_INT(pc_op_parse_name("detectSQLi", 10), -1);
}

TEST_MAIN(CHECK(pc_op_ctx_init(&ctx) == 0); RUN(regex); RUN(regex_prechecks);
          RUN(may_match_before_lowering); RUN(operator_needs); RUN(phrases); RUN(automaton_sets);
          RUN(strings); RUN(numbers); RUN(addresses_and_validators); pc_op_ctx_free(&ctx))
