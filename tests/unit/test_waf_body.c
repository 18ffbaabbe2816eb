/*
 * test_waf_body.c — the WAF's request-data parsers: urlencoded pairs and
 * their decoding, cookies, JSON flattened to json.a.b.0 with its limits,
 * multipart fields, files and part headers, and what makes each malformed.
 */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "waf_body.h"

static char got[8192];
static size_t gn;

static int collect(void *arg, int kind, const char *name, size_t nlen, const char *value,
                   size_t vlen)
{
    (void)arg;
    static const char *const kinds[] = {"A", "C", "F", "H"};
    if (gn > sizeof(got) - 600)
        return 0; /* full: the test only counts from here */
    gn += (size_t)snprintf(got + gn, sizeof(got) - gn, "%s[%.*s]=[%.*s] ", kinds[kind], (int)nlen,
                           name, (int)vlen, value);
    return 0;
}

static char out[8192];

#define RESET() (gn = 0, got[0] = 0)

TEST(urlencoded)
{
    RESET();
    const char *q = "a=1&b=%41+b&&c&=v&d=%zz%2";
    CHECK_EQ_INT(pc_wafb_urlencoded(q, strlen(q), out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "A[a]=[1] A[b]=[A b] A[c]=[] A[]=[v] A[d]=[%zz%2] ");
    RESET();
    CHECK_EQ_INT(pc_wafb_urlencoded("%27or%201%3D1=x", 15, out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "A['or 1=1]=[x] ");
    char many[PC_WAFB_MAX_ARGS * 4 + 10];
    size_t n = 0;
    for (int i = 0; i <= PC_WAFB_MAX_ARGS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "a=%d&", i % 10);
    RESET();
    CHECK_EQ_INT(pc_wafb_urlencoded(many, n, out, collect, NULL), PC_WAFB_TOO_MANY);
}

TEST(cookies)
{
    RESET();
    const char *c = "session=abc; theme=\"dark\";flag; ;x=1=2 ";
    CHECK_EQ_INT(pc_wafb_cookies(c, strlen(c), collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "C[session]=[abc] C[theme]=[\"dark\"] C[flag]=[] C[x]=[1=2] ");
}

TEST(json)
{
    RESET();
    const char *j = "{\"a\":{\"b\":[1,\"x\",true,null,2.5]},\"q\":\"' or 1=1\",\"e\":{},\"n\":-3}";
    CHECK_EQ_INT(pc_wafb_json(j, strlen(j), out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "A[json.a.b.0]=[1] A[json.a.b.1]=[x] A[json.a.b.2]=[true] "
                      "A[json.a.b.3]=[null] A[json.a.b.4]=[2.5] A[json.q]=[' or 1=1] "
                      "A[json.e]=[] A[json.n]=[-3] ");
    RESET(); /* empty containers are arguments: their names are inspected */
    CHECK_EQ_INT(pc_wafb_json("{\"u\":{\"$nin\":[]},\"l\":[[],{}]}", 29, out, collect, NULL),
                 PC_WAFB_OK);
    CHECK_EQ_STR(got, "A[json.u.$nin]=[] A[json.l.0]=[] A[json.l.1]=[] ");
    RESET();
    CHECK_EQ_INT(pc_wafb_json(" [ ] ", 5, out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "A[json]=[] ");
    RESET();
    CHECK_EQ_INT(pc_wafb_json("\"<script>\"", 10, out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "A[json]=[<script>] ");
    CHECK_EQ_INT(pc_wafb_json("{\"a\":1,\"a\":2}", 13, out, collect, NULL), PC_WAFB_MALFORMED);
    CHECK_EQ_INT(pc_wafb_json("{\"a\":", 5, out, collect, NULL), PC_WAFB_MALFORMED);
    CHECK_EQ_INT(pc_wafb_json("", 0, out, collect, NULL), PC_WAFB_MALFORMED);
    char deep[200];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        deep[n++] = '[';
    for (int i = 0; i < 40; i++)
        deep[n++] = ']';
    CHECK_EQ_INT(pc_wafb_json(deep, n, out, collect, NULL), PC_WAFB_TOO_DEEP); /* even empty */
    n = 0;
    for (int i = 0; i < 40; i++)
        deep[n++] = '[';
    deep[n++] = '1';
    for (int i = 0; i < 40; i++)
        deep[n++] = ']';
    CHECK_EQ_INT(pc_wafb_json(deep, n, out, collect, NULL), PC_WAFB_TOO_DEEP);
}

#define MP(s) s, sizeof(s) - 1

TEST(multipart)
{
    const char *b;
    size_t bl;
    CHECK(pc_wafb_boundary(MP("multipart/form-data; boundary=XyZ"), &b, &bl) == 0 && bl == 3 &&
          memcmp(b, "XyZ", 3) == 0);
    CHECK(pc_wafb_boundary(MP("multipart/form-data; charset=x; boundary=\"a b\""), &b, &bl) == 0 &&
          bl == 3);
    CHECK(pc_wafb_boundary(MP("multipart/form-data"), &b, &bl) == -1);
    CHECK(pc_wafb_boundary(MP("multipart/form-data; boundary="), &b, &bl) == -1);
    const char body[] =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"q\"\r\n"
        "\r\n"
        "' union select 1--\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"upload\"; filename=\"../../x.php\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "<?php system($_GET['c']); ?>\r\n"
        "--XyZ--\r\n";
    RESET();
    CHECK_EQ_INT(pc_wafb_multipart(MP(body), "XyZ", 3, out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got,
                 "H[Content-Disposition]=[form-data; name=\"q\"] A[q]=[' union select 1--] "
                 "H[Content-Disposition]=[form-data; name=\"upload\"; filename=\"../../x.php\"] "
                 "H[Content-Type]=[application/octet-stream] F[upload]=[../../x.php] ");
    /* a parameter inside another's quoted value is not a parameter */
    const char quoted[] = "--XyZ\r\nContent-Disposition: form-data; name=\"a; filename=b\\\"c\"\r\n"
                          "\r\nv\r\n--XyZ--";
    RESET();
    CHECK_EQ_INT(pc_wafb_multipart(MP(quoted), "XyZ", 3, out, collect, NULL), PC_WAFB_OK);
    CHECK_EQ_STR(got, "H[Content-Disposition]=[form-data; name=\"a; filename=b\\\"c\"] "
                      "A[a; filename=b\"c]=[v] ");
    static const char *const bad[] = {
        "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n", /* no end */
        "--XyZ\r\nContent-Type: text/plain\r\n\r\n1\r\n--XyZ--",            /* no disposition */
        "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n1\r\n--XyZ--", /* not form-data
                                                                                     */
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\n1\r\n--XyZ--",    /* quote */
        "--XyZ\r\nNoColonHere\r\n\r\n1\r\n--XyZ--",
        "--XyZ\nContent-Disposition: form-data; name=\"a\"\n\n1\n--XyZ--",             /* bare LF */
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--junk", /* epilogue
                                                                                        */
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; "
        "name=\"b\"\r\n\r\n1\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\n1\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\n1\r\n--XyZ--", /* no name */
        "--XyZ\r\nContent-Disposition: form-data name=\"a\"\r\n\r\n1\r\n--XyZ--",      /* no ';' */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        RESET();
        CHECK_EQ_INT(pc_wafb_multipart(bad[i], strlen(bad[i]), "XyZ", 3, out, collect, NULL),
                     PC_WAFB_MALFORMED);
    }
}

TEST_MAIN(RUN(urlencoded); RUN(cookies); RUN(json); RUN(multipart))
