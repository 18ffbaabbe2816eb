/*
 * waf_check.c — runs raw HTTP requests through the WAF engine exactly as
 * the gateway's waf filter sees them, without a gateway: the rule-test
 * runner (tests/waf/run) and rule authors use it.
 *
 *   waf-check [-n] [-p PARANOIA] [-a THRESHOLD] RULEFILE_OR_GLOB... < requests.jsonl
 *
 * -n evaluates every rule on every value (no prefilter, see waf_pf.h): the
 * verdicts must not change. -T times every rule and prints "id ns hits" per
 * rule to stderr at the end.
 *
 * Input: one JSON object per line, {"request": "<raw HTTP/1.1 request>"}
 * (bytes as code points 0-255). Output: one JSON object per line,
 * {"status": 0 | 403 | ..., "score": N, "hits": [{"id", "msg", "var",
 * "excerpt"}], "error": "..."} — status 0 means the request passes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waf.h"
#include "waf_body.h"

static int latin1(const char *utf8, size_t n, char *out, size_t *outn)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < n) {
            unsigned v = ((c & 0x1Fu) << 6) | ((unsigned char)utf8[++i] & 0x3Fu);
            if (v > 0xFF)
                return -1;
            out[o++] = (char)v;
        } else {
            return -1;
        }
    }
    *outn = o;
    return 0;
}

/* Bytes as code points 0-255 (the input's convention): any byte sequence
 * becomes a valid JSON string. */
static json_t *bytes_string(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *u = malloc(2 * n + 1);
    if (!u)
        return json_null();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            u[o++] = (char)c;
        } else {
            u[o++] = (char)(0xC0 | (c >> 6));
            u[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    json_t *j = json_stringn(u, o);
    free(u);
    return j ? j : json_null();
}

static int timed; /* -T: time every rule, print the costliest at the end */

static void print_stat(const pc_waf_stat_t *s, void *arg)
{
    (void)arg;
    pc_waf_counts_t n = pc_waf_stat_read(s);
    if (n.evals)
        fprintf(stderr, "%u %llu %llu\n", s->id, (unsigned long long)n.ns,
                (unsigned long long)n.hits);
}

static json_t *check(const pc_waf_ruleset_t *rs, pc_op_ctx_t *ctx, const char *raw, size_t n,
                     int paranoia, int threshold)
{
    json_t *out = json_object();
    pc_http_limits_t lim = {65536, 65536, 200};
    pc_http_scan_t scan = {0};
    size_t end;
    int rc = pc_http_scan(&scan, raw, n, &lim, &end);
    if (rc != 0) {
        json_object_set_new(out, "error", json_string("incomplete or invalid request head"));
        return out;
    }
    pc_http_header_t hdrs[200];
    pc_http_request_t h;
    rc = pc_http_parse_request(raw + scan.start, end - scan.start, &lim, hdrs, 200, &h);
    if (rc != 0) {
        json_object_set_new(out, "error", json_string(pc_http_err_detail(rc)));
        json_object_set_new(out, "status", json_integer(pc_http_err_status(rc)));
        return out;
    }
    const char *body = raw + end;
    size_t blen = n - end;
    if (h.body == PC_BODY_LENGTH && (size_t)h.content_length < blen)
        blen = (size_t)h.content_length;
    pc_arena_t a;
    pc_arena_init(&a, NULL, 16384, 0);
    pc_waf_tx_t tx;
    pc_waf_tx_init(&tx, &a, ctx);
    tx.timed = (uint8_t)timed;
    int status = 0;
    int hrc = pc_waf_tx_start(&tx, paranoia, threshold) == 0
                  ? pc_waf_collect_head(&tx, &h, "127.0.0.1")
                  : -1;
    if (hrc == PC_WAFB_TOO_MANY) {
        status = 400;
        json_object_set_new(out, "error", json_string("more query arguments than the WAF takes"));
    } else if (hrc != 0) {
        json_object_set_new(out, "error", json_string("out of memory"));
    } else if (pc_waf_eval(rs, &tx, 1)) {
        status = tx.status ? tx.status : 403;
    } else {
        int kind = pc_waf_body_kind(&h);
        int brc = blen ? pc_waf_collect_body(&tx, &h, kind, body, blen) : 0;
        if (brc != 0) {
            status = 400;
            json_object_set_new(out, "error", json_string("request body does not parse"));
        }
        if (pc_waf_eval(rs, &tx, 2) && !status)
            status = tx.status ? tx.status : 403;
    }
    const char *score = pc_waf_getvar(&tx, "anomaly_score");
    json_object_set_new(out, "status", json_integer(status));
    json_object_set_new(out, "score", json_integer(score ? atoi(score) : 0));
    json_t *hits = json_array();
    for (unsigned i = 0; i < tx.nhits; i++) {
        const pc_waf_hit_t *ht = &tx.hits[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(ht->id));
        if (ht->msg)
            json_object_set_new(o, "msg", bytes_string(ht->msg));
        if (ht->var)
            json_object_set_new(o, "var", bytes_string(ht->var));
        if (ht->excerpt)
            json_object_set_new(o, "excerpt", bytes_string(ht->excerpt));
        json_array_append_new(hits, o);
    }
    json_object_set_new(out, "hits", hits);
    pc_arena_free(&a);
    return out;
}

int main(int argc, char **argv)
{
    int paranoia = 1, threshold = 5, i = 1, no_prefilter = 0;

    for (; i < argc && (strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "-T") == 0); i++)
        *(argv[i][1] == 'n' ? &no_prefilter : &timed) = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-p") == 0)
            paranoia = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-a") == 0)
            threshold = atoi(argv[i + 1]);
        else
            break;
    }
    if (i >= argc) {
        fprintf(
            stderr,
            "usage: waf-check [-n] [-T] [-p PARANOIA] [-a THRESHOLD] RULES... < requests.jsonl\n");
        return 2;
    }
    char text[8192];
    size_t tl = 0;
    for (; i < argc; i++) {
        int k = snprintf(text + tl, sizeof(text) - tl, "Include %s\n", argv[i]);
        if (k < 0 || (size_t)k >= sizeof(text) - tl)
            return 2;
        tl += (size_t)k;
    }
    pc_waf_ruleset_t rs = {0};
    pc_errlist_t errs = {0};
    int lrc = pc_waf_load_text(&rs, "./command-line", text, tl, &errs);
    for (size_t e = 0; e < errs.n; e++)
        fprintf(stderr, "%s\n", errs.msgs[e]);
    if (lrc != 0)
        return 1;
    rs.no_prefilter = no_prefilter;
    pc_op_ctx_t ctx;
    if (pc_op_ctx_init(&ctx) != 0)
        return 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *in = json_loadb(line, (size_t)len, JSON_ALLOW_NUL, &je); /* NUL bytes are data */
        json_t *jr = in ? json_object_get(in, "request") : NULL;
        const char *req = json_string_value(jr);
        size_t reqn = json_string_length(jr);
        json_t *out;
        char *raw = req ? malloc(reqn + 1) : NULL;
        size_t rn;
        if (!raw || latin1(req, reqn, raw, &rn) != 0) {
            out =
                json_pack("{s:s}", "error", "expected {\"request\": \"...\"} (code points < 256)");
        } else {
            out = check(&rs, &ctx, raw, rn, paranoia, threshold);
        }
        char *s = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (!s) {
            fprintf(stderr, "waf-check: cannot write a result\n");
            return 1;
        }
        puts(s);
        fflush(stdout);
        free(s);
        json_decref(out);
        json_decref(in);
        free(raw);
    }
    free(line);
    if (timed) /* "id ns hits" per rule, for sort -k2 -n */
        pc_waf_stats_each(print_stat, NULL);
    pc_op_ctx_free(&ctx);
    pc_waf_ruleset_free(&rs);
    pc_errlist_free(&errs);
    return 0;
}
