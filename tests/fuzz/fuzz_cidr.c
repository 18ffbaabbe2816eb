/*
 * fuzz_cidr.c — libFuzzer target for the address and CIDR parsers and CIDR
 * sets (ip_rules, trusted_proxies, X-Forwarded-For, @ipMatch).
 *
 * Invariants (abort on violation):
 *  - an address pc_ip_parse accepts, inet_pton accepts too and reads as
 *    the same address (IPv4 as IPv4-mapped); its text form parses back to
 *    it;
 *  - a block pc_cidr_parse accepts is a block: first <= last, and the
 *    range is aligned on its size;
 *  - a set built from the input's blocks (one per line) contains an
 *    address exactly when one of the blocks does, for each block's ends,
 *    their neighbours and addresses taken from the input.
 */
#include <arpa/inet.h>
#include <string.h>

#include "cidr.h"
#include "fuzz_common.h"

static int ip_le(pc_ip_t a, pc_ip_t b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo <= b.lo);
}

static pc_ip_t ip_add(pc_ip_t a, int d)
{
    pc_ip_t r = a;
    if (d > 0) {
        r.lo = a.lo + 1;
        r.hi = a.hi + (r.lo == 0);
    } else {
        r.lo = a.lo - 1;
        r.hi = a.hi - (a.lo == 0);
    }
    return r;
}

static void check_ip(const char *s, size_t n)
{
    pc_ip_t ip;
    if (pc_ip_parse(s, n, &ip) != 0)
        return;
    char z[64];
    FZ_ASSERT(n < sizeof(z));
    memcpy(z, s, n);
    z[n] = 0;
    unsigned char b[16];
    pc_ip_t ref;
    if (inet_pton(AF_INET, z, b) == 1) {
        ref.hi = 0;
        ref.lo = 0xffff00000000ULL | (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 |
                 (uint64_t)b[2] << 8 | b[3];
    } else {
        FZ_ASSERT(inet_pton(AF_INET6, z, b) == 1);
        ref.hi = ref.lo = 0;
        for (int i = 0; i < 8; i++)
            ref.hi = ref.hi << 8 | b[i];
        for (int i = 8; i < 16; i++)
            ref.lo = ref.lo << 8 | b[i];
    }
    FZ_ASSERT(ref.hi == ip.hi && ref.lo == ip.lo);
    char out[46];
    size_t m = pc_ip_format(ip, out);
    pc_ip_t back;
    FZ_ASSERT(m < sizeof(out) && pc_ip_parse(out, m, &back) == 0);
    FZ_ASSERT(back.hi == ip.hi && back.lo == ip.lo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char buf[4097];
    memcpy(buf, data, size);
    buf[size] = 0;
    pc_cidr_range_t ranges[64];
    pc_ip_t probes[64];
    size_t nr = 0, np = 0;
    for (char *line = buf, *next; line && nr < 64; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t n = strlen(line);
        if (n < 64) {
            check_ip(line, n);
            pc_ip_t ip;
            if (pc_ip_parse(line, n, &ip) == 0 && np < 64)
                probes[np++] = ip;
        }
        char err[128];
        pc_cidr_range_t r;
        if (pc_cidr_parse(line, &r, err, sizeof(err)) != 0)
            continue;
        FZ_ASSERT(ip_le(r.first, r.last));
        /* size - 1 = last - first, all ones; first has those bits clear */
        pc_ip_t span = {r.last.hi - r.first.hi - (r.last.lo < r.first.lo), r.last.lo - r.first.lo};
        pc_ip_t up = ip_add(span, 1);
        FZ_ASSERT((up.hi & span.hi) == 0 && (up.lo & span.lo) == 0);
        FZ_ASSERT((r.first.hi & span.hi) == 0 && (r.first.lo & span.lo) == 0);
        ranges[nr++] = r;
    }
    pc_arena_t pool;
    pc_arena_init(&pool, NULL, 4096, 0);
    pc_cidr_set_t set;
    if (nr && pc_cidr_set_build(&set, &pool, ranges, nr) == 0) {
        for (size_t i = 0; i < nr && np + 4 <= 64; i++) {
            probes[np++] = ranges[i].first;
            probes[np++] = ranges[i].last;
            probes[np++] = ip_add(ranges[i].first, -1);
            probes[np++] = ip_add(ranges[i].last, 1);
        }
        for (size_t k = 0; k < np; k++) {
            int in = 0;
            for (size_t i = 0; i < nr; i++)
                in |= ip_le(ranges[i].first, probes[k]) && ip_le(probes[k], ranges[i].last);
            FZ_ASSERT(pc_cidr_set_contains(&set, probes[k]) == in);
        }
    }
    pc_arena_free(&pool);
    return 0;
}
