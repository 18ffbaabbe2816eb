/*
 * cidr.c — see cidr.h.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pc_ip_t from_bytes(const unsigned char b[16])
{
    pc_ip_t ip = {0, 0};
    for (int i = 0; i < 8; i++)
        ip.hi = ip.hi << 8 | b[i];
    for (int i = 8; i < 16; i++)
        ip.lo = ip.lo << 8 | b[i];
    return ip;
}

static void to_bytes(pc_ip_t ip, unsigned char b[16])
{
    for (int i = 7; i >= 0; i--, ip.hi >>= 8)
        b[i] = (unsigned char)ip.hi;
    for (int i = 15; i >= 8; i--, ip.lo >>= 8)
        b[i] = (unsigned char)ip.lo;
}

static int is_v4_mapped(pc_ip_t ip)
{
    return ip.hi == 0 && (ip.lo >> 32) == 0xffff;
}

int pc_ip_parse(const char *p, size_t n, pc_ip_t *out)
{
    char tmp[64];
    unsigned char b[16] = {0};
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (memchr(tmp, ':', n)) {
        if (inet_pton(AF_INET6, tmp, b) != 1)
            return -1;
    } else {
        b[10] = b[11] = 0xff;
        if (inet_pton(AF_INET, tmp, b + 12) != 1)
            return -1;
    }
    *out = from_bytes(b);
    return 0;
}

int pc_cidr_parse(const char *s, pc_cidr_range_t *out, char *err, size_t errlen)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    pc_ip_t ip;
    if (pc_ip_parse(s, alen, &ip) != 0) {
        snprintf(err, errlen, "'%s' is not an IP address or CIDR block", s);
        return -1;
    }
    int v4 = memchr(s, ':', alen) == NULL;
    unsigned max = v4 ? 32 : 128, len = max;
    if (slash) {
        char *end;
        unsigned long l = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || l > max) {
            snprintf(err, errlen, "'%s': prefix length must be 0..%u", s, max);
            return -1;
        }
        len = (unsigned)l;
    }
    unsigned bits = v4 ? len + 96 : len; /* prefix within the 128-bit form */
    pc_ip_t mask;
    mask.hi = bits >= 64 ? ~0ULL : (bits ? ~0ULL << (64 - bits) : 0);
    mask.lo = bits <= 64 ? 0 : (bits >= 128 ? ~0ULL : ~0ULL << (128 - bits));
    if ((ip.hi & ~mask.hi) || (ip.lo & ~mask.lo)) {
        pc_ip_t net = {ip.hi & mask.hi, ip.lo & mask.lo};
        char a[46];
        pc_ip_format(net, a);
        snprintf(err, errlen, "'%s' has host bits set (did you mean %s/%u?)", s, a, len);
        return -1;
    }
    out->first = ip;
    out->last.hi = ip.hi | ~mask.hi;
    out->last.lo = ip.lo | ~mask.lo;
    return 0;
}

static int ip_cmp(pc_ip_t a, pc_ip_t b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    return ip_cmp(((const pc_cidr_range_t *)a)->first, ((const pc_cidr_range_t *)b)->first);
}

int pc_cidr_set_build(pc_cidr_set_t *set, pc_arena_t *pool, const pc_cidr_range_t *ranges, size_t n)
{
    set->r = NULL;
    set->n = 0;
    if (n == 0)
        return 0;
    pc_cidr_range_t *r = pc_arena_alloc(pool, n * sizeof(*r));
    if (!r)
        return -1;
    memcpy(r, ranges, n * sizeof(*r));
    qsort(r, n, sizeof(*r), range_cmp);
    size_t m = 0;
    for (size_t i = 1; i < n; i++) {
        /* merge when overlapping or adjacent */
        pc_ip_t next = r[m].last;
        if (++next.lo == 0)
            next.hi++;
        if (ip_cmp(r[i].first, r[m].last) <= 0 || ip_cmp(r[i].first, next) == 0) {
            if (ip_cmp(r[i].last, r[m].last) > 0)
                r[m].last = r[i].last;
        } else {
            r[++m] = r[i];
        }
    }
    set->r = r;
    set->n = m + 1;
    return 0;
}

int pc_cidr_set_contains(const pc_cidr_set_t *set, pc_ip_t ip)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) { /* first range whose first > ip */
        size_t mid = lo + (hi - lo) / 2;
        if (ip_cmp(set->r[mid].first, ip) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && ip_cmp(ip, set->r[lo - 1].last) <= 0;
}

pc_ip_t pc_ip_from_sockaddr(const struct sockaddr *sa)
{
    unsigned char b[16] = {0};
    if (sa->sa_family == AF_INET6) {
        memcpy(b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        b[10] = b[11] = 0xff;
        memcpy(b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
    return from_bytes(b);
}

size_t pc_ip_format(pc_ip_t ip, char *out)
{
    unsigned char b[16];
    to_bytes(ip, b);
    if (is_v4_mapped(ip)) { /* by hand: every request logs (and may count) its address */
        size_t n = 0;
        for (int i = 12; i < 16; i++) {
            unsigned v = b[i];
            if (v >= 100)
                out[n++] = (char)('0' + v / 100);
            if (v >= 10)
                out[n++] = (char)('0' + v / 10 % 10);
            out[n++] = (char)('0' + v % 10);
            out[n++] = i < 15 ? '.' : '\0';
        }
        return n - 1;
    }
    if (!inet_ntop(AF_INET6, b, out, 46))
        out[0] = '\0';
    return strlen(out);
}
