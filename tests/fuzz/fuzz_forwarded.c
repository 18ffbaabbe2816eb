/*
 * fuzz_forwarded.c — libFuzzer target for the client address taken from
 * X-Forwarded-For behind trusted proxies (pc_req_forwarded_client).
 *
 * The input is lines: "T<cidr>" adds a trusted block, "P<addr>" sets the
 * peer (default 10.0.0.1), "X<value>" is an X-Forwarded-For field, any other
 * line an unrelated field. The fields go through pc_http_parse_request
 * first, so they reach the walk as the gateway sees them (trimmed, ids set).
 *
 * Invariants (abort on violation):
 *  - the answer is the reference's: the peer when it is not trusted; else,
 *    over the entries of every non-empty X-Forwarded-For field, last field
 *    first and right to left, the first entry that is not trusted, or the
 *    last address read before an entry that is not one, or the left-most
 *    entry when all are trusted (the peer when there are none);
 *  - the answer is the peer or one of the entries; it is untrusted unless
 *    every address on the way was trusted or the walk stopped at garbage;
 *  - fields other than X-Forwarded-For change nothing.
 */
#include <string.h>

#include "fuzz_common.h"
#include "http1.h"
#include "request.h"

#define MAXR 32
#define MAXF 24

static pc_cidr_range_t ranges[MAXR];
static size_t nranges;

static int in_ranges(pc_ip_t ip)
{
    for (size_t i = 0; i < nranges; i++) {
        const pc_cidr_range_t *r = &ranges[i];
        int ge = ip.hi > r->first.hi || (ip.hi == r->first.hi && ip.lo >= r->first.lo);
        int le = ip.hi < r->last.hi || (ip.hi == r->last.hi && ip.lo <= r->last.lo);
        if (ge && le)
            return 1;
    }
    return 0;
}

static int same(pc_ip_t a, pc_ip_t b)
{
    return a.hi == b.hi && a.lo == b.lo;
}

/* Reference: collect each field's comma-separated entries, then read the
 * whole list backwards. */
enum { W_PEER, W_UNTRUSTED, W_GARBAGE, W_ALL_TRUSTED };

static pc_ip_t reference(const pc_http_header_t *h, uint32_t n, pc_ip_t peer, int *why)
{
    *why = W_PEER;
    if (nranges == 0 || !in_ranges(peer))
        return peer;
    pc_str_t ent[1024];
    size_t ne = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (h[i].id != PC_HDR_X_FORWARDED_FOR || h[i].value.n == 0)
            continue;
        const char *p = h[i].value.p, *e = p + h[i].value.n;
        for (const char *s = p;;) {
            const char *c = memchr(s, ',', (size_t)(e - s));
            const char *end = c ? c : e;
            const char *a = s, *b = end;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            FZ_ASSERT(ne < 1024);
            ent[ne++] = pc_str_make(a, (size_t)(b - a));
            if (!c)
                break;
            s = c + 1;
        }
    }
    pc_ip_t client = peer;
    while (ne-- > 0) {
        pc_ip_t ip;
        if (pc_ip_parse(ent[ne].p, ent[ne].n, &ip) != 0) {
            *why = W_GARBAGE;
            return client;
        }
        client = ip;
        if (!in_ranges(ip)) {
            *why = W_UNTRUSTED;
            return client;
        }
    }
    *why = W_ALL_TRUSTED;
    return client;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char in[4097];
    memcpy(in, data, size);
    in[size] = 0;

    static char head[8192];
    size_t hl = 0;
    const char *first = "GET / HTTP/1.1\r\nHost: gw\r\n";
    memcpy(head, first, strlen(first));
    hl = strlen(first);
    pc_ip_t peer = {0, 0xffff0a000001ULL};
    nranges = 0;
    unsigned nfields = 0;
    for (char *line = in, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t ln = strlen(line);
        if (ln && line[ln - 1] == '\r')
            line[--ln] = 0;
        if (line[0] == 'T') {
            char err[128];
            if (nranges < MAXR && pc_cidr_parse(line + 1, &ranges[nranges], err, sizeof(err)) == 0)
                nranges++;
        } else if (line[0] == 'P') {
            pc_ip_t ip;
            if (pc_ip_parse(line + 1, ln - 1, &ip) == 0)
                peer = ip;
        } else if (nfields < MAXF && !memchr(line, '\r', ln)) {
            const char *name = line[0] == 'X' ? "X-Forwarded-For: " : "X-Other: ";
            size_t nn = strlen(name), vn = line[0] ? ln - 1 : 0;
            memcpy(head + hl, name, nn);
            memcpy(head + hl + nn, line + (line[0] ? 1 : 0), vn);
            hl += nn + vn;
            head[hl++] = '\r', head[hl++] = '\n';
            nfields++;
        }
    }
    head[hl++] = '\r', head[hl++] = '\n';

    pc_http_header_t hdrs[MAXF + 1];
    pc_http_request_t r;
    if (pc_http_parse_request(head, hl, NULL, hdrs, MAXF + 1, &r) != PC_HTTP_OK)
        return 0;

    pc_arena_t pool;
    pc_arena_init(&pool, NULL, 4096, 0);
    pc_cidr_set_t set = {NULL, 0};
    if (nranges)
        FZ_ASSERT(pc_cidr_set_build(&set, &pool, ranges, nranges) == 0);

    pc_ip_t got = pc_req_forwarded_client(r.headers, r.nheaders, &set, peer);
    int why;
    pc_ip_t want = reference(r.headers, r.nheaders, peer, &why);
    FZ_ASSERT(same(got, want));
    if (why == W_PEER)
        FZ_ASSERT(same(got, peer) && !(nranges && in_ranges(peer)));
    else if (why == W_UNTRUSTED)
        FZ_ASSERT(!in_ranges(got) && pc_cidr_set_contains(&set, got) == 0);
    else if (why == W_ALL_TRUSTED)
        FZ_ASSERT(in_ranges(got) && pc_cidr_set_contains(&set, got));
    else
        FZ_ASSERT(in_ranges(got)); /* the peer or a trusted entry */

    /* the same fields without the unrelated ones */
    pc_http_header_t only[MAXF + 1];
    uint32_t k = 0;
    for (uint32_t i = 0; i < r.nheaders; i++)
        if (r.headers[i].id == PC_HDR_X_FORWARDED_FOR)
            only[k++] = r.headers[i];
    FZ_ASSERT(same(pc_req_forwarded_client(only, k, &set, peer), got));

    pc_arena_free(&pool);
    return 0;
}
