/*
 * fuzz_rate_limit.c — libFuzzer target for a rate-limit policy's
 * configuration: its key ("ip", "route", "claim:NAME", "header:NAME",
 * joined with '+'), its rate ("100/s", through pc_parse_rate) and burst,
 * and the GCRA interval and tolerance derived from them
 * (pc_rl_check_policy, reached through pc_config_load).
 *
 * The input's lines are the key, the rate and the burst (each optional),
 * written into a configuration as double-quoted YAML scalars with every
 * byte escaped (NUL, '$' and bytes from 0x80 left out).
 *
 * Invariants (abort on violation; run with UBSAN_OPTIONS=halt_on_error=1 so
 * that arithmetic overflow counts too):
 *  - a policy loads exactly when its key and rate are valid, its burst is
 *    0..1000000, and interval and tolerance fit the 2^62 µs horizon below;
 *    a refused one reports errors;
 *  - loaded: the key's parts are the reference split of the key, in order,
 *    with claim and header names as written; interval = period / count
 *    (µs) is at least 1, tolerance = (count + burst - 1) * interval, both
 *    computed here without overflow, and tolerance + interval stays far
 *    from INT64_MAX so that adding either to a timestamp cannot wrap.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "errlist.h"
#include "fuzz_common.h"

typedef struct {
    int kind; /* pc_rl_key_kind_e */
    const char *name;
    size_t n;
} part_t;

static int ref_key(const char *k, part_t *parts, unsigned *np)
{
    *np = 0;
    int ok = 1;
    for (const char *s = k;;) {
        const char *e = strchr(s, '+');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        part_t p = {-1, NULL, 0};
        if (n == 2 && memcmp(s, "ip", 2) == 0)
            p.kind = PC_RLK_IP;
        else if (n == 5 && memcmp(s, "route", 5) == 0)
            p.kind = PC_RLK_ROUTE;
        else if (n > 6 && memcmp(s, "claim:", 6) == 0)
            p = (part_t){PC_RLK_CLAIM, s + 6, n - 6};
        else if (n > 7 && memcmp(s, "header:", 7) == 0)
            p = (part_t){PC_RLK_HEADER, s + 7, n - 7};
        if (p.kind < 0 || *np == PC_RL_KEY_PARTS)
            ok = 0;
        else
            parts[(*np)++] = p;
        if (!e)
            break;
        s = e + 1;
    }
    return ok;
}

static void yaml_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        fprintf(f, "\\x%02x", (unsigned char)*s);
    fputc('"', f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char buf[1025];
    size_t bn = 0;
    for (size_t i = 0; i < size; i++)
        if (data[i] && data[i] != '$' && data[i] < 0x80)
            buf[bn++] = (char)data[i];
    buf[bn] = 0;
    char *line[3] = {NULL, NULL, NULL};
    char *p = buf;
    for (int i = 0; i < 3 && p; i++) {
        line[i] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = 0;
    }
    const char *key = line[0] && *line[0] ? line[0] : "ip";
    const char *rate = line[1] && *line[1] ? line[1] : "10/s";
    int64_t burst = 0;
    int burst_given = 0;
    if (line[2] && *line[2]) {
        burst_given = 1;
        for (const char *c = line[2]; *c && burst >= 0 && burst <= 10000000; c++)
            burst = *c >= '0' && *c <= '9' ? burst * 10 + (*c - '0') : -1;
    }

    int fd = memfd_create("fuzz-rl.yaml", 0);
    FZ_ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    FZ_ASSERT(f);
    fputs("listeners: [{address: '127.0.0.1:1'}]\n"
          "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
          "waf: {mode: off}\n"
          "routes: [{match: {path_prefix: /}, upstream: app, rate_limits: [p]}]\n"
          "rate_limits:\n  p:\n    key: ",
          f);
    yaml_str(f, key);
    fputs("\n    rate: ", f);
    yaml_str(f, rate);
    if (burst_given)
        fprintf(f, "\n    burst: %s", burst >= 0 && burst <= 10000000 ? line[2] : "-1");
    fputs("\n", f);
    fflush(f);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    part_t parts[PC_RL_KEY_PARTS];
    unsigned np;
    int key_ok = ref_key(key, parts, &np);
    pc_rate_t r;
    int rate_ok = pc_parse_rate(rate, 0, &r) == 0 && r.count >= 1;
    int burst_ok = !burst_given || (burst >= 0 && burst <= 1000000);

    pc_errlist_t errs = {0};
    pc_config_t *cfg = pc_config_load(path, NULL, &errs);
    fclose(f);
    if (!cfg)
        FZ_ASSERT(errs.n > 0);
    int want = key_ok && rate_ok && burst_ok && r.period_ms <= ((int64_t)1 << 62) / 1000;
    if (want) {
        __int128 iv = (__int128)r.period_ms * 1000 / r.count;
        want = iv >= 1 && ((__int128)r.count + (burst_given ? burst : 0)) * iv <= (int64_t)1 << 62;
    }
    FZ_ASSERT((cfg != NULL) == want);
    if (cfg) {
        FZ_ASSERT(cfg->n_rate_limits == 1);
        const pc_rl_policy_conf_t *pol = &cfg->rate_limits[0];
        FZ_ASSERT(pol->nparts == np);
        for (unsigned i = 0; i < np; i++) {
            FZ_ASSERT(pol->parts[i].kind == parts[i].kind);
            if (parts[i].name)
                FZ_ASSERT(pol->parts[i].name.n == parts[i].n &&
                          memcmp(pol->parts[i].name.p, parts[i].name, parts[i].n) == 0 &&
                          pol->parts[i].name.p[parts[i].n] == 0);
        }
        FZ_ASSERT(pol->rate.count == r.count && pol->rate.period_ms == r.period_ms);
        __int128 interval = (__int128)r.period_ms * 1000 / r.count;
        __int128 tau = ((__int128)r.count + pol->burst - 1) * interval;
        FZ_ASSERT(interval >= 1 && pol->interval_us == interval);
        FZ_ASSERT(pol->tau_us == tau);
        FZ_ASSERT(tau + interval <= ((__int128)1 << 62));
        pc_config_unref(cfg);
    }
    pc_errlist_free(&errs);
    return 0;
}
