/*
 * fuzz_waf_rules.c — libFuzzer target for the SecLang loader and the rule
 * evaluator: the input is a rule file; what loads is then run against a
 * fixed request (phases 1 and 2).
 *
 * Invariants (abort on violation):
 *  - every message names a file and a line ("FILE:N:", N >= 1); for the
 *    input itself, N is at most its number of lines;
 *  - a load that reports no error leaves every rule with an id and a phase
 *    in 1..5 (markers aside);
 *  - evaluation ends with a known verdict, at most PC_WAF_MAX_HITS hits;
 *  - everything is freed (LeakSanitizer).
 *
 * The input's file lives in an empty temporary directory, and inputs
 * whose Include or *FromFile paths leave it (absolute, "..", "~") are
 * skipped: they would load whatever the machine has (a glob two levels
 * down from the root parsed every large binary in /bin, minutes per
 * input). Those paths are the loader's unit tests' business.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "waf_eval.h"

/* Does a path after "Include" or "FromFile" (any case) leave the
 * input's directory? */
static int leaves_dir(const uint8_t *d, size_t n)
{
    static const char *const keys[] = {"include", "fromfile"};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 2; k++) {
            size_t kl = strlen(keys[k]);
            if (i + kl > n || strncasecmp((const char *)d + i, keys[k], kl) != 0)
                continue;
            size_t j = i + kl;
            while (j < n && (d[j] == ' ' || d[j] == '\t' || d[j] == '"' || d[j] == '\''))
                j++;
            if (j < n && (d[j] == '/' || d[j] == '~'))
                return 1;
            for (; j + 1 < n && d[j] != '\n' && d[j] != '"' && d[j] != ' '; j++)
                if (d[j] == '.' && d[j + 1] == '.')
                    return 1;
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pc_op_ctx_t ctx;
    static char name[64];
    if (!name[0]) {
        /* the file "lives" in an empty directory: relative Includes find
         * nothing; absolute ones may load system files (their messages
         * name those files) */
        char dir[] = "/tmp/pc_fuzz_rules_XXXXXX";
        if (!mkdtemp(dir) || pc_op_ctx_init(&ctx) != 0)
            abort();
        snprintf(name, sizeof(name), "%s/fuzz.conf", dir);
    }
    if (leaves_dir(data, size))
        return 0;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    pc_waf_ruleset_t rs;
    pc_errlist_t e;
    memset(&rs, 0, sizeof(rs));
    memset(&e, 0, sizeof(e));
    int rc = pc_waf_load_text(&rs, name, (const char *)data, size, &e);
    size_t nl = strlen(name);
    for (size_t i = 0; i < e.n; i++) {
        const char *colon = strchr(e.msgs[i], ':');
        FZ_ASSERT(colon && colon > e.msgs[i]);
        long line = strtol(colon + 1, NULL, 10);
        FZ_ASSERT(line >= 1);
        if (strncmp(e.msgs[i], name, nl) == 0 && e.msgs[i][nl] == ':')
            FZ_ASSERT((size_t)line <= lines);
    }
    FZ_ASSERT(rc == 0 || e.n > 0);
    if (rc == 0) {
        for (size_t i = 0; i < rs.n; i++)
            FZ_ASSERT(rs.rules[i]->marker ||
                      (rs.rules[i]->id && rs.rules[i]->phase >= 1 && rs.rules[i]->phase <= 5));
        pc_arena_t a;
        pc_waf_tx_t tx;
        pc_arena_init(&a, NULL, 4096, 1 << 24);
        pc_waf_tx_init(&tx, &a, &ctx);
        pc_waf_add(&tx, PC_WV_REQUEST_METHOD, "REQUEST_METHOD", 14, "POST", 4);
        pc_waf_add(&tx, PC_WV_REQUEST_URI, "REQUEST_URI", 11, "/a/b?x=1", 8);
        pc_waf_add(&tx, PC_WV_REQUEST_HEADERS, "User-Agent", 10, "sqlmap/1.7", 10);
        pc_waf_add(&tx, PC_WV_ARGS_GET, "x", 1, "1' union select 2--", 19);
        pc_waf_add(&tx, PC_WV_ARGS_POST, "json.a.0", 8, "<script>alert(1)</script>", 25);
        pc_waf_add(&tx, PC_WV_REQUEST_COOKIES, "s", 1, "%uff1c", 6);
        for (int phase = 1; phase <= 2; phase++) {
            int d = pc_waf_eval(&rs, &tx, phase);
            FZ_ASSERT(d == 0 || d == PC_WA_DENY);
        }
        FZ_ASSERT(tx.nhits <= PC_WAF_MAX_HITS);
        pc_arena_free(&a);
    }
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&e);
    return 0;
}
