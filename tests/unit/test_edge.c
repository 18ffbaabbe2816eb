/*
 * test_edge.c — the edge policies at their edges: CORS origin patterns
 * (look-alike domains, schemes, ports, case) and IP rules on mixed IPv4/IPv6
 * CIDR sets.
 */
#include "cidr.h"
#include "filters/cors.h"
#include "test.h"

static int match(const char *origin, const char *pattern)
{
    return pc_cors_origin_matches(pc_str_cstr(origin), pattern);
}

TEST(cors_origins)
{
    const char *exact = "https://app.example.com";
    CHECK(match("https://app.example.com", exact));
    CHECK(match("HTTPS://App.Example.COM", exact)); /* case does not matter */
    CHECK(!match("https://app.example.com:8443", exact));
    CHECK(!match("http://app.example.com", exact));
    CHECK(!match("https://app.example.co", exact));
    CHECK(!match("https://app.example.com.evil.net", exact));
    CHECK(!match("null", exact));
    const char *wild = "https://*.example.com";
    CHECK(match("https://a.example.com", wild));
    CHECK(match("https://a.b.example.com", wild));
    CHECK(match("https://A-1.Example.com", wild));
    CHECK(!match("https://example.com", wild));      /* the apex is not a subdomain */
    CHECK(!match("https://.example.com", wild));     /* an empty label */
    CHECK(!match("https://a..example.com", wild));   /* an empty label inside */
    CHECK(!match("https://evil-example.com", wild)); /* a look-alike */
    CHECK(!match("https://evilexample.com", wild));
    CHECK(!match("https://example.com.evil.net", wild)); /* a suffix trick */
    CHECK(!match("https://a.example.com.evil.net", wild));
    CHECK(!match("http://a.example.com", wild));       /* another scheme */
    CHECK(!match("https://a.example.com:8443", wild)); /* another port */
    CHECK(!match("https://user@a.example.com", wild)); /* not a host label */
    CHECK(!match("https://a/b.example.com", wild));
    CHECK(!match("https:/a.example.com", wild));
    CHECK(!match("", wild));
    CHECK(match("https://a.example.com:8443", "https://*.example.com:8443"));
    CHECK(!match("https://a.example.com", "https://*.example.com:8443"));
}

TEST(ip_rule_sets)
{
    pc_cidr_range_t r[3];
    char err[128];
    CHECK(pc_cidr_parse("203.0.113.0/24", &r[0], err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("2001:db8::/32", &r[1], err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("10.1.2.3", &r[2], err, sizeof(err)) == 0);
    pc_blocks_t cache;
    pc_blocks_init(&cache, 4096, 4);
    pc_arena_t a;
    pc_arena_init(&a, &cache, 0, 1 << 20);
    pc_cidr_set_t set;
    CHECK(pc_cidr_set_build(&set, &a, r, 3) == 0);
    pc_ip_t ip;
    CHECK(pc_ip_parse("203.0.113.77", 12, &ip) == 0 && pc_cidr_set_contains(&set, ip));
    CHECK(pc_ip_parse("203.0.114.1", 11, &ip) == 0 && !pc_cidr_set_contains(&set, ip));
    CHECK(pc_ip_parse("10.1.2.3", 8, &ip) == 0 && pc_cidr_set_contains(&set, ip));
    CHECK(pc_ip_parse("10.1.2.4", 8, &ip) == 0 && !pc_cidr_set_contains(&set, ip));
    CHECK(pc_ip_parse("2001:db8:ffff::1", 16, &ip) == 0 && pc_cidr_set_contains(&set, ip));
    CHECK(pc_ip_parse("2001:db9::1", 11, &ip) == 0 && !pc_cidr_set_contains(&set, ip));
    /* an IPv4-mapped IPv6 address is the IPv4 address */
    CHECK(pc_ip_parse("::ffff:203.0.113.5", 18, &ip) == 0 && pc_cidr_set_contains(&set, ip));
    pc_arena_free(&a);
    pc_blocks_drain(&cache);
}

TEST_MAIN(RUN(cors_origins); RUN(ip_rule_sets))
