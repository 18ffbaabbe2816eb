/*
 * test_cidr.c — address parsing, CIDR blocks and set lookups at their edges.
 */
#include "cidr.h"
#include "test.h"

static pc_ip_t ip(const char *s)
{
    pc_ip_t v = {0, 0};
    CHECK(pc_ip_parse(s, strlen(s), &v) == 0);
    return v;
}

static int in(const pc_cidr_set_t *set, const char *s)
{
    return pc_cidr_set_contains(set, ip(s));
}

TEST(parse)
{
    pc_ip_t v;
    char out[46];
    CHECK(pc_ip_parse("1.2.3.4", 7, &v) == 0);
    pc_ip_format(v, out);
    CHECK_EQ_STR(out, "1.2.3.4");
    static const char *const v4[] = {"0.0.0.0", "255.255.255.255", "10.100.9.199", "100.0.10.1"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(pc_ip_parse(v4[i], strlen(v4[i]), &v) == 0);
        CHECK_EQ_INT(pc_ip_format(v, out), strlen(v4[i]));
        CHECK_EQ_STR(out, v4[i]);
    }
    CHECK(pc_ip_parse("2001:db8::1", 11, &v) == 0);
    pc_ip_format(v, out);
    CHECK_EQ_STR(out, "2001:db8::1");
    CHECK(pc_ip_parse("1.2.3", 5, &v) != 0);
    CHECK(pc_ip_parse("1.2.3.256", 9, &v) != 0);
    CHECK(pc_ip_parse("", 0, &v) != 0);
    CHECK(pc_ip_parse("::1%eth0", 8, &v) != 0);
    CHECK(pc_ip_parse(" 1.2.3.4", 8, &v) != 0);
}

TEST(blocks)
{
    pc_cidr_range_t r;
    char err[200];
    CHECK(pc_cidr_parse("10.0.0.0/8", &r, err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("10.0.0.1/8", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "did you mean 10.0.0.0/8") != NULL);
    CHECK(pc_cidr_parse("0.0.0.0/0", &r, err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("::/0", &r, err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("1.2.3.4/32", &r, err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("1.2.3.4/33", &r, err, sizeof(err)) != 0);
    CHECK(pc_cidr_parse("1.2.3.4/", &r, err, sizeof(err)) != 0);
    CHECK(pc_cidr_parse("1.2.3.4/-1", &r, err, sizeof(err)) != 0);
    CHECK(pc_cidr_parse("fe80::/10", &r, err, sizeof(err)) == 0);
    CHECK(pc_cidr_parse("fe80::/129", &r, err, sizeof(err)) != 0);
}

TEST(sets)
{
    pc_arena_t pool;
    pc_arena_init(&pool, NULL, 4096, 0);
    const char *blocks[] = {"10.0.0.0/8",    "192.168.1.0/24", "192.168.2.0/24", "10.1.0.0/16",
                            "2001:db8::/32", "203.0.113.7",    "0.0.0.0/32"};
    pc_cidr_range_t r[7];
    char err[200];
    for (int i = 0; i < 7; i++)
        CHECK(pc_cidr_parse(blocks[i], &r[i], err, sizeof(err)) == 0);
    pc_cidr_set_t set;
    CHECK(pc_cidr_set_build(&set, &pool, r, 7) == 0);
    CHECK_EQ_INT(set.n, 5); /* nested 10.1/16 and adjacent 192.168.1-2 merge */
    CHECK(in(&set, "10.0.0.0") && in(&set, "10.255.255.255") && in(&set, "10.1.2.3"));
    CHECK(!in(&set, "9.255.255.255") && !in(&set, "11.0.0.0"));
    CHECK(in(&set, "192.168.1.0") && in(&set, "192.168.2.255") && !in(&set, "192.168.3.0"));
    CHECK(!in(&set, "192.168.0.255"));
    CHECK(in(&set, "203.0.113.7") && !in(&set, "203.0.113.8") && !in(&set, "203.0.113.6"));
    CHECK(in(&set, "2001:db8::") && in(&set, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(!in(&set, "2001:db9::") && !in(&set, "::1"));
    CHECK(in(&set, "0.0.0.0") && !in(&set, "0.0.0.1"));
    /* an IPv4 block never matches an IPv6 address with the same bits */
    CHECK(!in(&set, "::a00:1"));
    pc_cidr_set_t empty;
    CHECK(pc_cidr_set_build(&empty, &pool, NULL, 0) == 0 && !in(&empty, "10.0.0.1"));
    pc_arena_free(&pool);
}

TEST_MAIN(RUN(parse); RUN(blocks); RUN(sets))
