/*
 * test_waf_rules.c — the SecLang loader: what a rule turns into (variables
 * with selectors, exclusions and counts, operators, transformations,
 * actions, chains, markers, defaults, removals and target updates), and an
 * exact FILE:LINE message for every malformed or unsupported construct.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "waf_rules.h"

static int load(pc_waf_ruleset_t *rs, pc_errlist_t *e, const char *text)
{
    memset(rs, 0, sizeof(*rs));
    memset(e, 0, sizeof(*e));
    return pc_waf_load_text(rs, "t.conf", text, strlen(text), e);
}

/* The errors, one per line. */
static const char *errors(pc_errlist_t *e)
{
    static char out[8192];
    pc_errlist_sort(e); /* by line, as portcullis -t prints them */
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < e->n && n < sizeof(out) - 600; i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s\n", e->msgs[i]);
    return out;
}

TEST(a_rule_in_full)
{
    pc_waf_ruleset_t rs;
    pc_errlist_t e;
    const char *text =
        "# comments and blank lines are skipped\n"
        "\n"
        "SecRuleEngine DetectionOnly\n"
        "SecDefaultAction \"phase:2,log,pass,t:none\"\n"
        "SecAction "
        "\"id:900100,phase:1,nolog,pass,setvar:tx.paranoia_level=1,setvar:'tx.score=0'\"\n"
        "SecRule ARGS|ARGS_NAMES|REQUEST_HEADERS:User-Agent|!ARGS:password|&ARGS \\\n"
        "    \"@rx (?i)union\\s+select\" \\\n"
        "    \"id:942001,phase:2,block,capture,t:none,t:urlDecodeUni,t:lowercase,\\\n"
        "    msg:'SQL injection: UNION, SELECT',logdata:'%{MATCHED_VAR}',tag:'attack-sqli',\\\n"
        "    tag:'paranoia-level/1',severity:'CRITICAL',ver:'pc/1',\\\n"
        "    "
        "setvar:'tx.score=+%{tx.critical_score}',ctl:ruleRemoveTargetById=942002;ARGS:q,chain\"\n"
        "    SecRule REQUEST_HEADERS:/^x-/ \"!@streq ok\" \"t:trim,setvar:!tx.flag\"\n"
        "SecRule REQUEST_METHOD \"^(?:PUT|DELETE)$\" \"id:911001,deny,status:405,skipAfter:END\"\n"
        "SecMarker END\n";
    CHECK_EQ_INT(load(&rs, &e, text), 0);
    CHECK_EQ_STR(errors(&e), "");
    CHECK_EQ_INT(rs.engine, PC_WE_DETECTION_ONLY);
    CHECK_EQ_INT(rs.defaults[1].disruptive, PC_WA_PASS);
    CHECK_EQ_INT(rs.n, 4); /* SecAction, the chain's head, 911001, the marker */
    pc_waf_rule_t *a = pc_waf_find(&rs, 900100);
    CHECK(a && a->action_only && a->phase == 1 && !a->log && a->nsetvars == 2);
    CHECK_EQ_STR(a->setvars[0].name, "paranoia_level");
    CHECK_EQ_STR(a->setvars[1].value, "0");
    pc_waf_rule_t *r = pc_waf_find(&rs, 942001);
    CHECK(r != NULL);
    if (!r)
        goto out;
    CHECK_EQ_INT(r->line, 6);
    CHECK_EQ_INT(r->nvars, 5);
    CHECK_EQ_INT(r->vars[2].kind, PC_WV_REQUEST_HEADERS);
    CHECK_EQ_STR(r->vars[2].sel, "user-agent"); /* header names fold */
    /* the targets first, then the exclusions */
    CHECK_EQ_INT(r->ntargets, 4);
    CHECK(r->vars[3].count && r->vars[3].kind == PC_WV_ARGS);
    CHECK(r->vars[4].exclude && strcmp(r->vars[4].sel, "password") == 0);
    CHECK_EQ_INT(r->op.kind, PC_OP_RX);
    CHECK_EQ_STR(r->op.param, "(?i)union\\s+select"); /* backslashes kept */
    CHECK_EQ_INT(r->ntfs, 2);
    CHECK(r->tfs[0] == PC_TF_URL_DECODE_UNI && r->tfs[1] == PC_TF_LOWERCASE);
    CHECK_EQ_STR(r->msg, "SQL injection: UNION, SELECT");
    CHECK_EQ_STR(r->logdata, "%{MATCHED_VAR}");
    CHECK(r->ntags == 2 && strcmp(r->tags[1], "paranoia-level/1") == 0);
    CHECK_EQ_STR(r->severity, "CRITICAL");
    CHECK(r->disruptive == PC_WA_BLOCK && r->capture && r->chain);
    CHECK(r->nsetvars == 1 && r->setvars[0].op == PC_SV_ADD &&
          strcmp(r->setvars[0].value, "%{tx.critical_score}") == 0);
    CHECK(r->nctls == 1 && r->ctls[0].kind == PC_CTL_RULE_REMOVE_TARGET_BY_ID &&
          r->ctls[0].id_lo == 942002 && strcmp(r->ctls[0].target.sel, "q") == 0);
    pc_waf_rule_t *ch = r->chained;
    CHECK(ch && ch->vars[0].sel_re && ch->op.kind == PC_OP_STREQ && ch->op.negate);
    CHECK(ch && ch->nsetvars == 1 && ch->setvars[0].op == PC_SV_DEL);
    pc_waf_rule_t *m = pc_waf_find(&rs, 911001);
    CHECK(m && m->op.kind == PC_OP_RX && m->status == 405 && strcmp(m->skip_after, "END") == 0);
out:
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&e);
}

TEST(removal_and_target_updates)
{
    pc_waf_ruleset_t rs;
    pc_errlist_t e;
    const char *text = "SecRule ARGS \"@contains a\" \"id:10,pass\"\n"
                       "SecRule ARGS \"@contains b\" \"id:11,pass\"\n"
                       "SecRule ARGS \"@contains c\" \"id:20,pass\"\n"
                       "SecRuleRemoveById 11-19\n"
                       "SecRuleUpdateTargetById 20 \"!ARGS:token|REQUEST_COOKIES\"\n";
    CHECK_EQ_INT(load(&rs, &e, text), 0);
    CHECK(pc_waf_find(&rs, 10) && !pc_waf_find(&rs, 11) && pc_waf_find(&rs, 20));
    pc_waf_rule_t *r = pc_waf_find(&rs, 20);
    CHECK(r && r->nvars == 3 && r->vars[1].kind == PC_WV_REQUEST_COOKIES && r->vars[2].exclude);
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&e);
}

TEST(every_mistake_named)
{
    pc_waf_ruleset_t rs;
    pc_errlist_t e;
    const char *text =
        "SecRule ARGS \"@rx a\" \"phase:2,pass\"\n"                            /* 1 */
        "SecRule ARGS \"@rx a\" \"id:5,pass\"\n"                               /* 2 */
        "SecRule ARGS \"@rx a\" \"id:5,pass\"\n"                               /* 3 */
        "SecRule ARGZ \"@rx a\" \"id:6\"\n"                                    /* 4 */
        "SecRule ARGS \"@detectSQLi\" \"id:7\"\n"                              /* 5 */
        "SecRule ARGS \"@rx (open\" \"id:8\"\n"                                /* 6 */
        "SecRule ARGS \"@rx a\" \"id:9,t:lowercas,auditlog,phase:9\"\n"        /* 7 */
        "SecRule ARGS \"@rx a\" \"id:12,msg:'unterminated\"\n"                 /* 8 */
        "SecRule ARGS \"@rx a\" \"id:13,chain\"\n"                             /* 9 */
        "SecMarker X\n"                                                        /* 10 */
        "SecRule ARGS \"@rx a\" \"id:14,chain\"\n"                             /* 11 */
        "SecRule ARGS \"@rx a\" \"id:15,deny\"\n"                              /* 12 */
        "SecFooBar on\n"                                                       /* 13 */
        "SecRule !ARGS \"@rx a\" \"id:16\"\n"                                  /* 14 */
        "SecRule ARGS \"@rx a\" \"id:17,skipAfter:NOWHERE\"\n"                 /* 15 */
        "SecRule ARGS \"@gt x\" \"id:18,status:7,severity:HUGE\"\n"            /* 16 */
        "SecRule ARGS \"@rx a\" \"id:19,setvar:ip.x=1,ctl:auditEngine=Off\"\n" /* 17 */
        "SecRuleEngine Maybe\n"                                                /* 18 */
        "SecRuleUpdateTargetById 999 \"ARGS\"\n"                               /* 19 */
        "SecRule ARGS \"@rx a\n";                                              /* 20 */
    CHECK_EQ_INT(load(&rs, &e, text), -1);
    CHECK_EQ_STR(errors(&e),
                 "t.conf:1: rule without an id (id:N is required)\n"
                 "t.conf:3: duplicate rule id 5 (first at t.conf:2)\n"
                 "t.conf:4: unsupported variable 'ARGZ'\n"
                 "t.conf:5: unsupported operator '@detectSQLi'\n"
                 "t.conf:6: operator '@rx': invalid regular expression: missing closing "
                 "parenthesis at offset 5\n"
                 "t.conf:7: unsupported transformation 't:lowercas'\n"
                 "t.conf:7: unsupported action 'auditlog'\n"
                 "t.conf:7: phase:9: expected 1 to 5 (or request, response, logging)\n"
                 "t.conf:8: unterminated quote in action 'msg'\n"
                 "t.conf:10: the rule at line 9 ends with 'chain' but 'SecMarker' follows "
                 "instead of a SecRule\n"
                 "t.conf:12: a chained rule cannot have 'id' (it belongs to the first rule of "
                 "the chain)\n"
                 "t.conf:12: a chained rule cannot have the disruptive action 'deny'\n"
                 "t.conf:13: unsupported directive 'SecFooBar'\n"
                 "t.conf:14: '!ARGS' excludes nothing: name what to exclude (e.g. "
                 "!ARGS:password)\n"
                 "t.conf:15: skipAfter:NOWHERE: no SecMarker of that name follows the rule\n"
                 "t.conf:16: operator '@gt': 'x' is not an integer\n"
                 "t.conf:16: status:7 is not an HTTP status\n"
                 "t.conf:16: severity:HUGE: expected EMERGENCY .. DEBUG or 0 .. 7\n"
                 "t.conf:17: setvar:'ip.x=1': only tx.NAME variables are supported\n"
                 "t.conf:17: unsupported ctl 'auditEngine' (supported: ruleRemoveById, "
                 "ruleRemoveTargetById, ruleEngine)\n"
                 "t.conf:18: SecRuleEngine takes On, Off or DetectionOnly\n"
                 "t.conf:19: SecRuleUpdateTargetById: no rule 999 is loaded yet\n"
                 "t.conf:20: unterminated quote\n");
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&e);
}

TEST(files_and_includes)
{
    char dir[] = "/tmp/pc_rules_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[256];
    snprintf(p, sizeof(p), "%s/main.conf", dir);
    FILE *f = fopen(p, "w");
    fputs("Include parts/*.conf\nSecRule ARGS \"@pmFromFile words.txt\" \"id:3,pass\"\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/parts", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/parts/a.conf", dir);
    f = fopen(p, "w");
    fputs("SecRule ARGS \"@rx a\" \"id:1,pass\"\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/parts/b.conf", dir);
    f = fopen(p, "w");
    fputs("\nSecRule ARGS \"@rx b\" \"id:2,pass,t:bogus\"\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/words.txt", dir);
    f = fopen(p, "w");
    fputs("nikto\n", f);
    fclose(f);
    pc_waf_ruleset_t rs;
    pc_errlist_t e;
    memset(&rs, 0, sizeof(rs));
    memset(&e, 0, sizeof(e));
    snprintf(p, sizeof(p), "%s/main.conf", dir);
    CHECK_EQ_INT(pc_waf_load(&rs, p, &e), -1);
    CHECK(pc_waf_find(&rs, 1) && pc_waf_find(&rs, 2) && pc_waf_find(&rs, 3));
    char want[300];
    snprintf(want, sizeof(want), "%s/parts/b.conf:2: unsupported transformation 't:bogus'\n", dir);
    CHECK_EQ_STR(errors(&e), want);
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&e);
    /* a file over the 4 MiB limit is refused, not loaded in part */
    snprintf(p, sizeof(p), "%s/big.conf", dir);
    f = fopen(p, "w");
    for (int i = 0; i < 4 * 1024 * 1024 / 32 + 1; i++)
        fputs("# a comment line, 32 bytes long\n", f);
    fputs("SecRule ARGS \"@rx z\" \"id:4,pass\"\n", f);
    fclose(f);
    memset(&rs, 0, sizeof(rs));
    memset(&e, 0, sizeof(e));
    CHECK_EQ_INT(pc_waf_load(&rs, p, &e), -1);
    CHECK(!pc_waf_find(&rs, 4));
    snprintf(want, sizeof(want), "rule file '%s' is larger than 4 MiB", p);
    CHECK(strstr(errors(&e), want) != NULL);
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&e);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST_MAIN(RUN(a_rule_in_full); RUN(removal_and_target_updates); RUN(every_mistake_named);
          RUN(files_and_includes))
