/*
 * test_core.c — the small modules at their edges: arena caps, buffer pinning
 * and compaction, string helpers, route matching, the per-address connection
 * counter, and the relay's re-framing over real socketpairs.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "connlimit.h"
#include "http1.h"
#include "log.h"
#include "relay.h"
#include "request.h"
#include "router.h"
#include "str.h"
#include "test.h"

TEST(arena_cap_and_cache)
{
    pc_blocks_t cache;
    pc_blocks_init(&cache, 4096, 4);
    pc_arena_t a;
    pc_arena_init(&a, &cache, 0, 16384);
    void *p1 = pc_arena_alloc(&a, 100);
    void *p2 = pc_arena_alloc(&a, 100);
    CHECK(p1 && p2 && p1 != p2);
    CHECK(((uintptr_t)p1 & 15) == 0 && ((uintptr_t)p2 & 15) == 0);
    CHECK(pc_arena_alloc(&a, 8000) != NULL);  /* a larger block, still under the cap */
    CHECK(pc_arena_alloc(&a, 20000) == NULL); /* over the cap */
    CHECK(pc_arena_alloc(&a, (size_t)1 << 50) == NULL);
    char *s = pc_arena_strndup(&a, "hello world", 5);
    CHECK_EQ_STR(s, "hello");
    unsigned char *z = pc_arena_calloc(&a, 64);
    CHECK(z && z[0] == 0 && z[63] == 0);
    pc_arena_free(&a);
    CHECK(cache.count == 1); /* the standard block went back to the cache */
    pc_arena_init(&a, &cache, 0, 0);
    CHECK(pc_arena_alloc(&a, 10) != NULL);
    CHECK(cache.count == 0); /* and was reused */
    pc_arena_free(&a);
    pc_blocks_drain(&cache);
    CHECK(cache.count == 0 && cache.free == NULL);
}

TEST(buffers)
{
    pc_blocks_t cache;
    pc_blocks_init(&cache, 64, 2);
    pc_buf_t b = {0};
    CHECK(pc_buf_ensure(&b, &cache) == 0 && b.cap == 64);
    memcpy(b.data, "HEADbodyNEXT", 12);
    b.wpos = 12;
    b.pin = b.rpos = 4; /* "HEAD" pinned, "body" being consumed */
    b.rpos += 4;
    pc_buf_compact(&b); /* unread "NEXT" moves down to the pin, the head stays */
    CHECK(b.rpos == 4 && b.wpos == 8 && memcmp(b.data, "HEADNEXT", 8) == 0);
    pc_buf_unpin(&b); /* the request is over: "NEXT" moves to the front */
    CHECK(b.pin == 0 && b.rpos == 0 && b.wpos == 4 && memcmp(b.data, "NEXT", 4) == 0);
    CHECK(pc_buf_grow(&b, 200, &cache) == 0 && b.cap == 200 && memcmp(b.data, "NEXT", 4) == 0);
    pc_buf_release(&b, &cache, 0); /* not empty: kept */
    CHECK(b.data != NULL);
    b.rpos = b.wpos;
    pc_buf_release(&b, &cache, 0);
    CHECK(b.data == NULL && b.cap == 0);
    pc_blocks_drain(&cache);
}

TEST(strings)
{
    char out[64];
    CHECK(pc_u64_dec(0, out) == 1 && out[0] == '0');
    size_t n = pc_u64_dec(18446744073709551615ULL, out);
    CHECK_SLICE(out, n, "18446744073709551615");
    uint64_t v;
    CHECK(pc_str_to_u64(PC_STR("65535"), 65535, &v) == 0 && v == 65535);
    CHECK(pc_str_to_u64(PC_STR("65536"), 65535, &v) != 0);
    CHECK(pc_str_to_u64(PC_STR(""), 10, &v) != 0);
    CHECK(pc_str_to_u64(PC_STR("1a"), 100, &v) != 0);
    CHECK(pc_str_to_u64(PC_STR("18446744073709551616"), UINT64_MAX, &v) != 0);
    CHECK(pc_str_ieq(PC_STR("Content-Length"), PC_STR("content-LENGTH")));
    CHECK(!pc_str_ieq(PC_STR("abc"), PC_STR("abd")));
    CHECK(pc_edit_distance("listners", "listeners") == 1);
    CHECK(pc_edit_distance("abc", "abc") == 0);
    CHECK(pc_edit_distance("kitten", "sitting") == 3);
    /* JSON escaping: quotes, controls, valid UTF-8 kept, invalid bytes escaped */
    n = pc_json_escape("a\"b\\c\n\x01", 7, out, sizeof(out));
    CHECK_SLICE(out, n, "a\\\"b\\\\c\\n\\u0001");
    n = pc_json_escape("\xc3\xa9t\xc3\xa9", 5, out, sizeof(out));
    CHECK_SLICE(out, n, "\xc3\xa9t\xc3\xa9");
    n = pc_json_escape("\xff\xc0\xaf", 3, out, sizeof(out));
    CHECK_SLICE(out, n, "\\u00ff\\u00c0\\u00af"); /* overlong '/' is not UTF-8 */
    n = pc_json_escape("\xed\xa0\x80", 3, out, sizeof(out));
    CHECK_SLICE(out, n, "\\u00ed\\u00a0\\u0080"); /* a surrogate is not either */
    n = pc_json_escape("abcdef", 6, out, 4);
    CHECK_SLICE(out, n, "abcd"); /* truncated at the cap */
    n = pc_json_escape("ab\n", 3, out, 3);
    CHECK_SLICE(out, n, "ab"); /* never half an escape */
    n = pc_json_escape(" ~\x7f!#[]", 7, out, sizeof(out));
    CHECK_SLICE(out, n, " ~\\u007f!#[]"); /* the edges of the plain range */
    /* ISO timestamps, with the per-second cache */
    char ts[32];
    struct timeval tv = {1795388645, 123456}; /* 2026-11-22T23:04:05 */
    CHECK_SLICE(ts, pc_time_iso(&tv, ts), "2026-11-22T23:04:05.123Z");
    tv.tv_usec = 7000;
    CHECK_SLICE(ts, pc_time_iso(&tv, ts), "2026-11-22T23:04:05.007Z");
    tv.tv_sec = 946684799, tv.tv_usec = 999999;
    CHECK_SLICE(ts, pc_time_iso(&tv, ts), "1999-12-31T23:59:59.999Z");
}

static pc_config_t *config_from(const char *yaml)
{
    const char *path = "/tmp/pc-unit-core.yaml";
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    pc_errlist_t e = {0};
    pc_config_t *c = pc_config_load(path, NULL, &e);
    for (size_t i = 0; i < e.n; i++)
        fprintf(stderr, "%s\n", e.msgs[i]);
    pc_errlist_free(&e);
    unlink(path);
    return c;
}

static const char *route_for(pc_config_t *cfg, const char *method, const char *host,
                             const char *path)
{
    pc_req_t r;
    memset(&r, 0, sizeof(r));
    r.http.method = pc_str_cstr(method);
    r.http.method_id = strcmp(method, "GET") == 0    ? PC_M_GET
                       : strcmp(method, "POST") == 0 ? PC_M_POST
                                                     : PC_M_OTHER;
    r.http.host = pc_str_cstr(host);
    r.path = pc_str_cstr(path);
    char stripped[256];
    r.route_path = pc_str_make(stripped, pc_http_strip_params(r.path, stripped));
    const pc_route_conf_t *rt = pc_route_match(cfg, &r);
    return rt ? rt->name : "none";
}

/* pc_lower_copy against pc_lower on every byte, at every length and
 * offset around its eight-byte steps. */
TEST(lower_copy)
{
    unsigned char all[256 + 24];
    char out[sizeof(all)], want[sizeof(all)];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)(i * 7 + 3); /* every byte value, shuffled */
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; off + n <= sizeof(all); n += n < 40 ? 1 : 37) {
            memset(out, 'x', sizeof(out));
            pc_lower_copy(out, (const char *)all + off, n);
            for (size_t i = 0; i < n; i++)
                want[i] = (char)pc_lower(all[off + i]);
            CHECK(memcmp(out, want, n) == 0);
            CHECK(n == sizeof(out) || out[n] == 'x');
        }
}

TEST(router)
{
    pc_config_t *cfg = config_from(
        "listeners: [{address: '127.0.0.1:1'}]\n"
        "upstreams: {app: {servers: ['127.0.0.1:2']}}\n"
        "routes:\n"
        "  - {name: login, match: {path: /login, methods: [POST]}, upstream: app}\n"
        "  - {name: wild, match: {host: '*.example.com', path_prefix: /api/}, upstream: app}\n"
        "  - {name: exact-host, match: {host: Example.COM}, upstream: app}\n"
        "  - {name: dav, match: {methods: [PROPFIND]}, upstream: app}\n"
        "  - {name: api, match: {path_prefix: /api}, upstream: app}\n");
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK_EQ_STR(route_for(cfg, "POST", "a", "/login"), "login");
    CHECK_EQ_STR(route_for(cfg, "GET", "a", "/login"), "none");
    CHECK_EQ_STR(route_for(cfg, "POST", "a", "/login/x"), "none"); /* exact path */
    CHECK_EQ_STR(route_for(cfg, "GET", "v1.example.com", "/api/x"), "wild");
    CHECK_EQ_STR(route_for(cfg, "GET", "a.b.example.com:8443", "/api/x"), "wild");
    CHECK_EQ_STR(route_for(cfg, "GET", "V1.EXAMPLE.COM", "/api/x"), "wild");
    CHECK_EQ_STR(route_for(cfg, "GET", "example.com", "/api/x"), "exact-host");
    CHECK_EQ_STR(route_for(cfg, "GET", "evil-example.com", "/api/x"), "api");
    CHECK_EQ_STR(route_for(cfg, "GET", "example.com.evil.net", "/api/x"), "api");
    CHECK_EQ_STR(route_for(cfg, "GET", "example.com:80", "/"), "exact-host");
    CHECK_EQ_STR(route_for(cfg, "PROPFIND", "a", "/"), "dav");
    CHECK_EQ_STR(route_for(cfg, "GET", "a", "/apix"), "api"); /* a plain string prefix */
    CHECK_EQ_STR(route_for(cfg, "GET", "a", "/ap"), "none");
    CHECK_EQ_STR(route_for(cfg, "GET", "", "/api"), "api"); /* HTTP/1.0 without Host */
    /* what a backend serves decides: ";params" do not hide a route, nor a
     * fully qualified host name */
    CHECK_EQ_STR(route_for(cfg, "POST", "a", "/login;jsessionid=1"), "login");
    CHECK_EQ_STR(route_for(cfg, "GET", "v1.example.com.", "/api;x/y"), "wild");
    CHECK_EQ_STR(route_for(cfg, "GET", "example.com.:80", "/"), "exact-host");
    pc_str_t hp = pc_route_host_part(PC_STR("[::1]:8080"));
    CHECK_SLICE(hp.p, hp.n, "[::1]");
    hp = pc_route_host_part(PC_STR("a.b:1"));
    CHECK_SLICE(hp.p, hp.n, "a.b");
    hp = pc_route_host_part(PC_STR("a.b.:1"));
    CHECK_SLICE(hp.p, hp.n, "a.b");
    char sp[64];
    size_t sn = pc_http_strip_params(PC_STR("/a;x=1/b;c/;d"), sp);
    CHECK_SLICE(sp, sn, "/a/b/");
    pc_config_unref(cfg);
}

TEST(connlimit)
{
    pc_connlimit_t *t = pc_connlimit_new();
    pc_ip_t a, b;
    pc_ip_parse("10.0.0.1", 8, &a);
    pc_ip_parse("10.0.0.2", 8, &b);
    CHECK(pc_connlimit_acquire(t, a, 2) == 0);
    CHECK(pc_connlimit_acquire(t, a, 2) == 0);
    CHECK(pc_connlimit_acquire(t, a, 2) != 0);
    CHECK(pc_connlimit_acquire(t, b, 2) == 0); /* per address */
    pc_connlimit_release(t, a);
    CHECK(pc_connlimit_acquire(t, a, 2) == 0);
    pc_connlimit_release(t, a);
    pc_connlimit_release(t, a);
    pc_connlimit_release(t, b);
    /* every entry gone: a fresh address starts at zero again */
    CHECK(pc_connlimit_acquire(t, a, 1) == 0 && pc_connlimit_acquire(t, a, 1) != 0);
    pc_connlimit_free(t);
}

/* Runs one relay between two socketpairs until done: src_w -> [src_r] relay
 * [dst_w] -> dst_r. Returns the relay's final code; *out gets what the
 * destination received. */
static int relay_once(const char *input, size_t inlen, int in, int64_t cl, int out_kind,
                      const char *pre, int64_t limit, char *out, size_t *outlen)
{
    int s[2], d[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    socketpair(AF_UNIX, SOCK_STREAM, 0, d);
    fcntl(s[1], F_SETFL, O_NONBLOCK);
    fcntl(d[0], F_SETFL, O_NONBLOCK);
    if (inlen)
        CHECK(write(s[0], input, inlen) == (ssize_t)inlen);
    shutdown(s[0], SHUT_WR);
    struct event_base *base = event_base_new();
    pc_sock_t src, dst;
    pc_sock_init(&src, base, s[1], NULL, NULL);
    pc_sock_init(&dst, base, d[0], NULL, NULL);
    src.rd_ready = dst.wr_ready = 1;
    pc_blocks_t cache;
    pc_blocks_init(&cache, 16, 1); /* a tiny buffer: many passes through the loop */
    pc_buf_t buf = {0};
    pc_buf_ensure(&buf, &cache);
    pc_relay_t rl;
    pc_relay_init(&rl, &src, &buf, &dst, in, cl, out_kind, pre, pre ? strlen(pre) : 0);
    rl.limit = limit;
    int rc = PC_RELAY_AGAIN;
    for (int i = 0; i < 10000 && rc == PC_RELAY_AGAIN; i++) {
        rc = pc_relay_step(&rl);
        src.rd_ready = dst.wr_ready = 1; /* no event loop here: pretend readiness */
    }
    close(d[0]);
    *outlen = (size_t)read(d[1], out, 4096);
    if (*outlen == (size_t)-1)
        *outlen = 0;
    out[*outlen] = '\0';
    close(s[0]);
    close(s[1]);
    close(d[1]);
    pc_buf_release(&buf, &cache, 1);
    pc_blocks_drain(&cache);
    event_base_free(base);
    return rc;
}

TEST(relay_reframing)
{
    char out[4200];
    size_t n;
    const char *chunked = "5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n";
    /* chunked in, chunked out: framing rewritten, extensions and trailers gone */
    CHECK(relay_once(chunked, strlen(chunked), PC_BODY_CHUNKED, 0, PC_BODY_CHUNKED, "HEAD|", -1,
                     out, &n) == PC_RELAY_DONE);
    CHECK(strncmp(out, "HEAD|", 5) == 0);
    CHECK(strstr(out, "hello") && strstr(out, " world") && !strstr(out, "x=1") &&
          !strstr(out, "T: v"));
    CHECK(n >= 5 && strcmp(out + n - 5, "0\r\n\r\n") == 0);
    /* chunked in, close-delimited out (an HTTP/1.0 client) */
    CHECK(relay_once(chunked, strlen(chunked), PC_BODY_CHUNKED, 0, PC_BODY_CLOSE, NULL, -1, out,
                     &n) == PC_RELAY_DONE);
    CHECK_EQ_STR(out, "hello world");
    /* length in, length out; bytes after the body are left alone */
    CHECK(relay_once("abcdefXYZ", 9, PC_BODY_LENGTH, 6, PC_BODY_LENGTH, NULL, -1, out, &n) ==
          PC_RELAY_DONE);
    CHECK_EQ_STR(out, "abcdef");
    /* close-delimited in, chunked out */
    CHECK(relay_once("until the end", 13, PC_BODY_CLOSE, 0, PC_BODY_CHUNKED, NULL, -1, out, &n) ==
          PC_RELAY_DONE);
    CHECK(strstr(out, "until") && strcmp(out + n - 5, "0\r\n\r\n") == 0);
    /* a short Content-Length body is a source error, not a completed message */
    CHECK(relay_once("abc", 3, PC_BODY_LENGTH, 10, PC_BODY_LENGTH, NULL, -1, out, &n) ==
          PC_RELAY_E_SRC);
    /* a chunked body cut before its last chunk too */
    CHECK(relay_once("5\r\nhello\r\n", 10, PC_BODY_CHUNKED, 0, PC_BODY_CHUNKED, NULL, -1, out,
                     &n) == PC_RELAY_E_SRC);
    CHECK(strstr(out, "0\r\n\r\n") == NULL); /* never a terminated body */
    /* bad framing */
    CHECK(relay_once("zz\r\n", 4, PC_BODY_CHUNKED, 0, PC_BODY_CHUNKED, NULL, -1, out, &n) ==
          PC_RELAY_E_FRAMING);
    /* the limit stops the body before the byte that crosses it is written */
    CHECK(relay_once(chunked, strlen(chunked), PC_BODY_CHUNKED, 0, PC_BODY_CHUNKED, NULL, 10, out,
                     &n) == PC_RELAY_E_LIMIT);
    CHECK(strstr(out, "world") == NULL);
    CHECK(relay_once(chunked, strlen(chunked), PC_BODY_CHUNKED, 0, PC_BODY_CHUNKED, NULL, 11, out,
                     &n) == PC_RELAY_DONE);
    /* no body: only the head */
    CHECK(relay_once("", 0, PC_BODY_NONE, 0, PC_BODY_NONE, "only-head", -1, out, &n) ==
          PC_RELAY_DONE);
    CHECK_EQ_STR(out, "only-head");
}

TEST_MAIN(RUN(arena_cap_and_cache); RUN(buffers); RUN(strings); RUN(lower_copy); RUN(router);
          RUN(connlimit); RUN(relay_reframing))
