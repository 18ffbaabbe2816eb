/*
 * fuzz_config_values.c — libFuzzer target for the configuration's scalar
 * value parsers: pc_parse_duration ("250ms", "30s"), pc_parse_size ("10MiB"),
 * pc_parse_rate ("100/s", "1KiB/10s"), pc_parse_hostport ("HOST:PORT",
 * "[V6]:PORT", ":PORT") and pc_str_to_u64. The input is one value (up to its
 * first NUL); every parser reads it.
 *
 * Invariants (abort on violation):
 *  - duration, size, rate and u64 agree with a reference parser written
 *    here from the documented grammar (1*DIGIT then one of the units, the
 *    product fitting an int64; a bare number is a size in bytes, and a
 *    duration only when it is 0): same verdict, same value;
 *  - what they accept prints back ("<ms>ms", "<bytes>B", "<n>/<ms>ms") and
 *    parses to the same value;
 *  - a hostport is only tried when its host part is empty, "*" or numeric
 *    (no DNS from a fuzzer); it is then accepted exactly when the reference
 *    split and port check accept it, to the address getaddrinfo gives for a
 *    numeric host and to the port written; its printed form parses back to
 *    the same address and port.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

/* 1*DIGIT at s, fitting an int64; *end after the digits. */
static int ref_digits(const char *s, const char **end, int64_t *v)
{
    __int128 x = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        x = x * 10 + (*p - '0');
        if (x > INT64_MAX)
            return -1;
        p++;
    }
    if (p == s)
        return -1;
    *end = p;
    *v = (int64_t)x;
    return 0;
}

static int ref_scaled(const char *s, const char *const *units, const int64_t *muls, size_t nu,
                      int bare_zero_only, int64_t *out)
{
    const char *end;
    int64_t v;
    if (ref_digits(s, &end, &v) != 0)
        return -1;
    if (*end == 0 && bare_zero_only) {
        if (v != 0)
            return -1;
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < nu; i++) {
        if (strcmp(end, units[i]) != 0)
            continue;
        __int128 x = (__int128)v * muls[i];
        if (x > INT64_MAX)
            return -1;
        *out = (int64_t)x;
        return 0;
    }
    return -1;
}

static const char *const dur_units[] = {"ms", "s", "m", "h", "d"};
static const int64_t dur_muls[] = {1, 1000, 60000, 3600000, 86400000};
static const char *const size_units[] = {"", "B", "KiB", "MiB", "GiB", "TiB"};
static const int64_t size_muls[] = {1, 1, 1024, 1048576, 1073741824, 1099511627776};

static int ref_duration(const char *s, int64_t *out)
{
    return ref_scaled(s, dur_units, dur_muls, 5, 1, out);
}

static int ref_size(const char *s, int64_t *out)
{
    return ref_scaled(s, size_units, size_muls, 6, 0, out);
}

static int ref_rate(const char *s, int size_units_, pc_rate_t *r)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return -1;
    char num[4096];
    size_t nn = (size_t)(slash - s);
    if (nn >= 64) /* the gateway's number buffer; longer is never a number anyway */
        return -1;
    memcpy(num, s, nn);
    num[nn] = 0;
    const char *end;
    if (size_units_) {
        if (ref_size(num, &r->count) != 0)
            return -1;
    } else if (ref_digits(num, &end, &r->count) != 0 || *end) {
        return -1;
    }
    const char *per = slash + 1;
    char one[4200];
    if (*per >= 'a' && *per <= 'z') {
        snprintf(one, sizeof(one), "1%s", per);
        per = one;
    }
    return ref_duration(per, &r->period_ms) != 0 || r->period_ms <= 0 ? -1 : 0;
}

static void check_numbers(const char *s)
{
    int64_t a = -7, b = -7;
    int ra = pc_parse_duration(s, &a), rb = ref_duration(s, &b);
    FZ_ASSERT(ra == rb);
    char re[64];
    if (ra == 0) {
        FZ_ASSERT(a == b && a >= 0);
        snprintf(re, sizeof(re), "%lldms", (long long)a);
        int64_t c;
        FZ_ASSERT(pc_parse_duration(re, &c) == 0 && c == a);
    }

    ra = pc_parse_size(s, &a), rb = ref_size(s, &b);
    FZ_ASSERT(ra == rb);
    if (ra == 0) {
        FZ_ASSERT(a == b && a >= 0);
        snprintf(re, sizeof(re), "%lldB", (long long)a);
        int64_t c;
        FZ_ASSERT(pc_parse_size(re, &c) == 0 && c == a);
    }

    for (int su = 0; su < 2; su++) {
        pc_rate_t x, y;
        ra = pc_parse_rate(s, su, &x), rb = ref_rate(s, su, &y);
        FZ_ASSERT(ra == rb);
        if (ra == 0) {
            FZ_ASSERT(x.count == y.count && x.period_ms == y.period_ms);
            FZ_ASSERT(x.count >= 0 && x.period_ms > 0);
            char rr[96];
            snprintf(rr, sizeof(rr), "%lld/%lldms", (long long)x.count, (long long)x.period_ms);
            pc_rate_t z;
            FZ_ASSERT(pc_parse_rate(rr, su, &z) == 0);
            FZ_ASSERT(z.count == x.count && z.period_ms == x.period_ms);
        }
    }

    size_t n = strlen(s);
    uint64_t maxes[] = {0, 9, 10, 65535, (uint64_t)INT64_MAX, UINT64_MAX};
    for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
        uint64_t v = 0;
        int rc = pc_str_to_u64(pc_str_make(s, n), maxes[k], &v);
        unsigned __int128 x = 0;
        int ok = n > 0;
        for (size_t i = 0; ok && i < n; i++) {
            ok = s[i] >= '0' && s[i] <= '9';
            x = x * 10 + (unsigned)(s[i] - '0');
            if (x > maxes[k])
                ok = 0;
        }
        FZ_ASSERT((rc == 0) == ok);
        if (ok)
            FZ_ASSERT(v == (uint64_t)x);
    }
}

static int same_addr(const pc_sockaddr_t *a, const struct sockaddr *b)
{
    if (a->u.sa.sa_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&a->u.in6.sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static void check_hostport(const char *s)
{
    size_t n = strlen(s);
    char host[4096];
    const char *port;
    int split = 0;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb && rb[1] == ':' && (size_t)(rb - s - 1) < 256) {
            memcpy(host, s + 1, (size_t)(rb - s - 1));
            host[rb - s - 1] = 0;
            port = rb + 2;
            split = 1;
        }
    } else {
        const char *c = strchr(s, ':');
        if (c && !strchr(c + 1, ':') && (size_t)(c - s) < 256) {
            memcpy(host, s, (size_t)(c - s));
            host[c - s] = 0;
            port = c + 1;
            split = 1;
        }
    }
    int any = split && (host[0] == 0 || strcmp(host, "*") == 0);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    if (split && !any && getaddrinfo(host, NULL, &hints, &res) != 0) {
        if (res)
            freeaddrinfo(res);
        return; /* a name: resolving it is not this target's business */
    }
    uint64_t pv = 0;
    int port_ok = split && strlen(port) <= 5 &&
                  pc_str_to_u64(pc_str_make(port, strlen(port)), 65535, &pv) == 0;
    int want = port_ok && (any || res);
    pc_sockaddr_t a;
    char err[512];
    int rc = pc_parse_hostport(s, &a, err, sizeof(err));
    FZ_ASSERT((rc == 0) == want);
    if (rc != 0) {
        FZ_ASSERT(memchr(err, 0, sizeof(err)) && err[0]);
    } else {
        char h[INET6_ADDRSTRLEN + 8];
        int p = pc_sockaddr_host(&a, h, sizeof(h));
        FZ_ASSERT(p == (int)pv);
        if (any)
            FZ_ASSERT(a.u.sa.sa_family == AF_INET && a.u.in4.sin_addr.s_addr == 0);
        else
            FZ_ASSERT(same_addr(&a, res->ai_addr));
        FZ_ASSERT(a.len == (a.u.sa.sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                        : sizeof(struct sockaddr_in6)));
        char text[80];
        pc_sockaddr_str(&a, text, sizeof(text));
        pc_sockaddr_t b;
        FZ_ASSERT(pc_parse_hostport(text, &b, err, sizeof(err)) == 0);
        FZ_ASSERT(b.u.sa.sa_family == a.u.sa.sa_family && pc_sockaddr_host(&b, h, sizeof(h)) == p);
        if (a.u.sa.sa_family == AF_INET)
            FZ_ASSERT(b.u.in4.sin_addr.s_addr == a.u.in4.sin_addr.s_addr);
        else
            FZ_ASSERT(memcmp(&b.u.in6.sin6_addr, &a.u.in6.sin6_addr, 16) == 0);
    }
    (void)n;
    if (res)
        freeaddrinfo(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char s[1025];
    memcpy(s, data, size);
    s[size] = 0;
    check_numbers(s);
    check_hostport(s);
    return 0;
}
