/*
 * test_config.c — value parsers, YAML loading and merging, interpolation,
 * the walker's errors, and the check that docs/configuration.md documents
 * every key of the schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "test.h"
#include "yaml.h"

TEST(durations)
{
    int64_t v;
    CHECK(pc_parse_duration("250ms", &v) == 0 && v == 250);
    CHECK(pc_parse_duration("10s", &v) == 0 && v == 10000);
    CHECK(pc_parse_duration("15m", &v) == 0 && v == 900000);
    CHECK(pc_parse_duration("1h", &v) == 0 && v == 3600000);
    CHECK(pc_parse_duration("2d", &v) == 0 && v == 172800000);
    CHECK(pc_parse_duration("0", &v) == 0 && v == 0);
    CHECK(pc_parse_duration("10", &v) != 0);
    CHECK(pc_parse_duration("1.5s", &v) != 0);
    CHECK(pc_parse_duration("-1s", &v) != 0);
    CHECK(pc_parse_duration("s", &v) != 0);
    CHECK(pc_parse_duration("10 s", &v) != 0);
    CHECK(pc_parse_duration("10S", &v) != 0);
    CHECK(pc_parse_duration("", &v) != 0);
    CHECK(pc_parse_duration("99999999999999999999ms", &v) != 0);
    CHECK(pc_parse_duration("9223372036854775807d", &v) != 0);
}

TEST(sizes)
{
    int64_t v;
    CHECK(pc_parse_size("512", &v) == 0 && v == 512);
    CHECK(pc_parse_size("512B", &v) == 0 && v == 512);
    CHECK(pc_parse_size("16KiB", &v) == 0 && v == 16384);
    CHECK(pc_parse_size("10MiB", &v) == 0 && v == 10485760);
    CHECK(pc_parse_size("1GiB", &v) == 0 && v == 1073741824);
    CHECK(pc_parse_size("2TiB", &v) == 0 && v == 2199023255552LL);
    CHECK(pc_parse_size("10MB", &v) != 0);
    CHECK(pc_parse_size("10kib", &v) != 0);
    CHECK(pc_parse_size("1.5MiB", &v) != 0);
    CHECK(pc_parse_size("-5", &v) != 0);
    CHECK(pc_parse_size("9999999999TiB", &v) != 0);
}

TEST(rates)
{
    pc_rate_t r;
    CHECK(pc_parse_rate("100/15m", 0, &r) == 0 && r.count == 100 && r.period_ms == 900000);
    CHECK(pc_parse_rate("5/1s", 0, &r) == 0 && r.count == 5 && r.period_ms == 1000);
    CHECK(pc_parse_rate("5/s", 0, &r) == 0 && r.period_ms == 1000);
    CHECK(pc_parse_rate("1KiB/10s", 1, &r) == 0 && r.count == 1024 && r.period_ms == 10000);
    CHECK(pc_parse_rate("1KiB/10s", 0, &r) != 0);
    CHECK(pc_parse_rate("100", 0, &r) != 0);
    CHECK(pc_parse_rate("100/0s", 0, &r) != 0);
    CHECK(pc_parse_rate("/1s", 0, &r) != 0);
    CHECK(pc_parse_rate("x/1s", 0, &r) != 0);
}

TEST(hostport)
{
    pc_sockaddr_t a;
    char err[256], s[64];
    CHECK(pc_parse_hostport("127.0.0.1:8080", &a, err, sizeof(err)) == 0);
    pc_sockaddr_str(&a, s, sizeof(s));
    CHECK_EQ_STR(s, "127.0.0.1:8080");
    CHECK(pc_parse_hostport("[::1]:443", &a, err, sizeof(err)) == 0);
    pc_sockaddr_str(&a, s, sizeof(s));
    CHECK_EQ_STR(s, "[::1]:443");
    CHECK(pc_parse_hostport(":80", &a, err, sizeof(err)) == 0);
    pc_sockaddr_str(&a, s, sizeof(s));
    CHECK_EQ_STR(s, "0.0.0.0:80");
    CHECK(pc_parse_hostport("localhost:1", &a, err, sizeof(err)) == 0);
    CHECK(pc_parse_hostport("127.0.0.1", &a, err, sizeof(err)) != 0);
    CHECK(pc_parse_hostport("127.0.0.1:65536", &a, err, sizeof(err)) != 0);
    CHECK(pc_parse_hostport("127.0.0.1:-1", &a, err, sizeof(err)) != 0);
    CHECK(pc_parse_hostport("::1:80", &a, err, sizeof(err)) != 0);
    CHECK(pc_parse_hostport("[::1]80", &a, err, sizeof(err)) != 0);
    CHECK(pc_parse_hostport("1.2.3.4:080000", &a, err, sizeof(err)) != 0);
}

static pc_ynode_t *load(pc_arena_t *pool, pc_errlist_t *e, const char *text)
{
    return pc_yaml_load_buffer("t.yaml", text, strlen(text), pool, e);
}

TEST(yaml_tree)
{
    pc_arena_t pool;
    pc_errlist_t e = {0};
    pc_arena_init(&pool, NULL, 4096, 0);
    pc_ynode_t *n = load(&pool, &e, "a: 1\nb:\n  - x\n  - 'null'\nc: ~\nd: &D {k: v}\ne: *D\n");
    CHECK(n && n->type == PC_Y_MAP && n->n == 5);
    CHECK(e.n == 0);
    pc_ynode_t *b = pc_ymap_get(n, "b");
    CHECK(b && b->type == PC_Y_SEQ && b->n == 2 && b->line == 3);
    CHECK(!pc_ynode_is_null(b->u.items[1])); /* quoted 'null' is a string */
    CHECK(pc_ynode_is_null(pc_ymap_get(n, "c")));
    CHECK(pc_ymap_get(n, "e") == pc_ymap_get(n, "d")); /* aliases share the node */
    CHECK(load(&pool, &e, "a: 1\na: 2\n") == NULL);
    CHECK(e.n == 1 && strstr(e.msgs[0], "t.yaml:2: duplicate key 'a'"));
    pc_errlist_free(&e);
    CHECK(load(&pool, &e, "a: [1, 2\n") == NULL);
    CHECK(e.n == 1 && strstr(e.msgs[0], "invalid YAML"));
    pc_errlist_free(&e);
    CHECK(load(&pool, &e, "a: 1\n---\nb: 2\n") == NULL);
    CHECK(e.n == 1 && strstr(e.msgs[0], "more than one YAML document"));
    pc_errlist_free(&e);
    CHECK(load(&pool, &e, "x: *nope\n") == NULL);
    pc_errlist_free(&e);
    /* an alias bomb is refused by its expanded size, not expanded in memory */
    const char *bomb =
        "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
    CHECK(load(&pool, &e, bomb) == NULL);
    CHECK(e.n == 1 && strstr(e.msgs[0], "too large"));
    pc_errlist_free(&e);
    char deep[400] = "";
    memset(deep, '[', 100); /* nested 100 deep */
    CHECK(load(&pool, &e, deep) == NULL);
    pc_errlist_free(&e);
    pc_ynode_t *empty = load(&pool, &e, "");
    CHECK(empty && empty->type == PC_Y_MAP && empty->n == 0);
    pc_arena_free(&pool);
}

TEST(yaml_merge)
{
    pc_arena_t pool;
    pc_errlist_t e = {0};
    pc_arena_init(&pool, NULL, 4096, 0);
    pc_ynode_t *base = load(&pool, &e, "a: {x: 1, y: 2}\nl: [1, 2, 3]\ns: base\n");
    pc_ynode_t *over = load(&pool, &e, "a: {y: 20, z: 30}\nl: [9]\nn: new\n");
    pc_ynode_t *m = pc_yaml_merge(base, over, &pool);
    CHECK(m && m->n == 4);
    pc_ynode_t *a = pc_ymap_get(m, "a");
    CHECK(a && a->n == 3);
    CHECK_EQ_STR(pc_ymap_get(a, "x")->u.str, "1");
    CHECK_EQ_STR(pc_ymap_get(a, "y")->u.str, "20");
    CHECK_EQ_STR(pc_ymap_get(a, "z")->u.str, "30");
    CHECK(pc_ymap_get(m, "l")->n == 1); /* lists replace */
    CHECK_EQ_STR(pc_ymap_get(m, "s")->u.str, "base");
    CHECK(pc_ymap_get(base, "a")->n == 2); /* inputs untouched */
    pc_arena_free(&pool);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

TEST(load_and_defaults)
{
    const char *path = "/tmp/pc-unit-config.yaml";
    write_file(path, "listeners: [{address: '127.0.0.1:1'}]\n"
                     "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
                     "routes: [{match: {path_prefix: /}, upstream: app}]\n");
    pc_errlist_t e = {0};
    pc_config_t *c = pc_config_load(path, NULL, &e);
    CHECK(c != NULL && e.n == 0);
    if (!c)
        return;
    CHECK(c->workers >= 1);
    CHECK(c->shutdown_timeout == 30000);
    CHECK(c->limits.max_uri == 8192 && c->limits.max_header_bytes == 32768);
    CHECK(c->limits.max_headers == 100 && c->limits.max_body == 10485760);
    CHECK(c->limits.header_timeout == 10000 && c->limits.body_timeout == 30000);
    CHECK(c->limits.idle_timeout == 60000 && c->limits.max_connections == 10000);
    CHECK(c->limits.max_connections_per_ip == 256);
    CHECK(c->limits.min_body_rate.count == 1024 && c->limits.min_body_rate.period_ms == 10000);
    CHECK(c->upstreams[0].keepalive == 64 && c->upstreams[0].connect_timeout == 2000);
    CHECK(c->upstreams[0].response_timeout == 30000);
    CHECK_EQ_STR(c->listeners[0].name, "listener0");
    CHECK_EQ_STR(c->routes[0].name, "routes[0]");
    CHECK(c->routes[0].up == &c->upstreams[0]);
    CHECK_EQ_STR(c->logging.access.path, "stdout");
    CHECK_EQ_STR(c->logging.error.path, "stderr");
    pc_config_unref(c);
    unlink(path);
}

TEST(interpolation)
{
    const char *path = "/tmp/pc-unit-interp.yaml";
    write_file("/tmp/pc-unit-secret", "s3cret\r\n");
    setenv("PC_UNIT_ADDR", "127.0.0.1:7", 1);
    write_file(path, "listeners: [{name: 'n-${file:/tmp/pc-unit-secret}-$${x}', "
                     "address: '${env:PC_UNIT_ADDR}'}]\n"
                     "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
                     "routes: [{match: {path_prefix: /}, upstream: app}]\n");
    pc_errlist_t e = {0};
    pc_config_t *c = pc_config_load(path, NULL, &e);
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ_STR(c->listeners[0].name, "n-s3cret-${x}");
        CHECK_EQ_STR(c->listeners[0].address, "127.0.0.1:7");
        pc_config_unref(c);
    }
    unlink(path);
    unlink("/tmp/pc-unit-secret");
}

TEST(unselected_stage_leaves_no_trace)
{
    const char *path = "/tmp/pc-unit-stage.yaml";
    write_file(path, "listeners: [{address: '127.0.0.1:1'}]\n"
                     "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
                     "routes: [{match: {path_prefix: /}, upstream: app}]\n"
                     "stages: {prod: {trusted_proxies: [10.0.0.0/8, 1.2.3.4]}}\n");
    pc_errlist_t e = {0};
    pc_config_t *c = pc_config_load(path, NULL, &e);
    CHECK(c != NULL);
    if (c) {
        /* checking prod's keys must not have filled the live configuration */
        CHECK_EQ_INT(c->n_trusted_proxies, 0);
        CHECK_EQ_INT(c->trusted.n, 0);
        pc_config_unref(c);
    }
    pc_config_opts_t prod = {"prod"};
    c = pc_config_load(path, &prod, &e);
    CHECK(c != NULL && c->n_trusted_proxies == 2);
    if (c)
        pc_config_unref(c);
    unlink(path);
}

/* Every key path the schema knows appears in docs/configuration.md, written
 * as `path` (with NAME for map entries and [] for list elements). */
static int docs_missing;
static char *docs_text;

static void check_documented(const char *path, const char *type, const char *def, void *arg)
{
    (void)type;
    (void)def;
    (void)arg;
    char needle[300];
    snprintf(needle, sizeof(needle), "`%s`", path);
    if (!strstr(docs_text, needle)) {
        fprintf(stderr, "docs/configuration.md does not document %s\n", needle);
        docs_missing++;
    }
}

TEST(docs_cover_every_key)
{
    FILE *f = fopen("docs/configuration.md", "r");
    CHECK(f != NULL);
    if (!f)
        return;
    docs_text = calloc(1, 1 << 20);
    size_t n = fread(docs_text, 1, (1 << 20) - 1, f);
    fclose(f);
    CHECK(n > 0);
    pc_config_dump_keys(check_documented, NULL);
    CHECK_EQ_INT(docs_missing, 0);
    free(docs_text);
}

TEST_MAIN(RUN(durations); RUN(sizes); RUN(rates); RUN(hostport); RUN(yaml_tree); RUN(yaml_merge);
          RUN(load_and_defaults); RUN(interpolation); RUN(unselected_stage_leaves_no_trace);
          RUN(docs_cover_every_key))
