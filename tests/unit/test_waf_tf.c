/*
 * test_waf_tf.c — every WAF transformation, with the decodes attackers use
 * to slip past them: overlong UTF-8, %u escapes, fullwidth forms, HTML
 * entities without semicolons, nested and unterminated comments.
 */
#include <string.h>

#include "test.h"
#include "str.h"
#include "waf_tf.h"

static char outbuf[4096];

static const char *tf(const char *name, const char *in, size_t n)
{
    int t = pc_tf_parse(name, strlen(name));
    CHECK(t >= 0);
    size_t o = pc_tf_apply(t, (const unsigned char *)in, n, (unsigned char *)outbuf);
    CHECK(o <= PC_TF_OUT_MAX(n));
    outbuf[o] = 0;
    return outbuf;
}

#define T(name, in, want) CHECK_EQ_STR(tf(name, in, sizeof(in) - 1), want)

TEST(names)
{
    CHECK_EQ_INT(pc_tf_parse("urlDecodeUni", 12), PC_TF_URL_DECODE_UNI);
    CHECK_EQ_INT(pc_tf_parse("normalisePath", 13), PC_TF_NORMALIZE_PATH);
    CHECK_EQ_INT(pc_tf_parse("urldecode", 9), -1); /* names are case-sensitive, as in SecLang */
    CHECK_EQ_STR(pc_tf_name(PC_TF_CMD_LINE), "cmdLine");
}

TEST(case_and_whitespace)
{
    T("lowercase", "SeLeCt ÄB", "select Äb");
    T("uppercase", "union", "UNION");
    T("removeWhitespace", " a \t b\r\n\v\fc\xa0", "abc");
    T("compressWhitespace", "a  \t\n b \xa0 c", "a b c");
    T("trim", " \t x y \n", "x y");
    T("trimLeft", "  x ", "x ");
    T("trimRight", "  x ", "  x");
    CHECK_EQ_STR(tf("removeNulls", "a\0b\0", 4), "ab");
    CHECK(memcmp(tf("replaceNulls", "a\0b", 3), "a b", 3) == 0);
    T("length", "hello", "5");
    T("none", "as is", "as is");
}

TEST(url_decodes)
{
    T("urlDecode", "%27%20or%201%3D1--+x", "' or 1=1-- x");
    T("urlDecode", "%zz%2%", "%zz%2%"); /* invalid escapes stay */
    T("urlDecode", "%u0027", "%u0027");
    T("urlDecodeUni", "%u0027%U003C", "'<");
    T("urlDecodeUni", "%uFF1Cscript%uff1e", "<script>"); /* fullwidth */
    T("urlDecodeUni", "%u00e9", "\xc3\xa9");
    T("urlDecodeUni", "%u12", "%u12");
    T("urlDecode", "%2525", "%25"); /* once: double encoding needs two steps */
}

TEST(overlong_utf8)
{
    T("utf8toUnicode", "\xc0\xaf..\xc0\xaf", "/../"); /* overlong '/' */
    T("utf8toUnicode", "\xe0\x80\xaf", "/");
    T("utf8toUnicode", "\xf0\x80\x80\xaf", "/");
    T("utf8toUnicode", "caf\xc3\xa9", "caf%u00e9");
    T("utf8toUnicode", "\xe2\x80\xa8", "%u2028");
    T("utf8toUnicode", "\xc3", "\xc3");         /* truncated: kept */
    T("utf8toUnicode", "\xff\xfe", "\xff\xfe"); /* never UTF-8: kept */
}

TEST(html_entities)
{
    T("htmlEntityDecode", "&lt;script&gt;", "<script>");
    T("htmlEntityDecode", "&#60;&#x3C;&#X3c;&#0000060", "<<<<");
    T("htmlEntityDecode", "&#60script&#62", "<script>"); /* no semicolons */
    T("htmlEntityDecode", "&ltimg src=x onerror&equals;alert&lpar;1&rpar;",
      "<img src=x onerror=alert(1)");
    T("htmlEntityDecode", "javascript&colon;alert(1)", "javascript:alert(1)");
    T("htmlEntityDecode", "&LT;&QUOT;", "<\"");
    T("htmlEntityDecode", "AT&T &unknown; &# &#x;", "AT&T &unknown; &# &#x;");
    T("htmlEntityDecode", "&#xff1c;", "<"); /* fullwidth folded */
    T("htmlEntityDecode", "&#99999999999;", "\xef\xbf\xbd");
    /* every named one, those sharing a first letter side by side */
    T("htmlEntityDecode", "&semi;&sol;&SEMI&Sol&lt&lpar&lsqb&lcub&lowbar&rpar&rsqb&rcub",
      ";/;/<([{_)]}");
    T("htmlEntityDecode", "&comma&colon&quot&quest&percnt&period&plus&excl&equals&grave&gt",
      ",:\"?%.+!=`>");
    T("htmlEntityDecode", "&Hat&amp&apos&ast&bsol&num&dollar&vert&tab&newline&nbsp",
      "^&'*\\#$|\t\n\xa0");
    T("htmlEntityDecode", "?page=2&size=20&sort=id&z&", "?page=2&size=20&sort=id&z&");
}

TEST(js_css_escape)
{
    T("jsDecode", "\\x3cscript\\u003e\\141\\n\\'\\q", "<script>a\n'q");
    T("jsDecode", "\\u00", "u00");
    T("escapeSeqDecode", "a\\tb\\x41\\101\\\\", "a\tbAA\\");
    T("cssDecode", "\\6a\\61 vascript\\3a", "javascript:");
    T("cssDecode", "ex\\pression", "expression");
    T("cssDecode", "\\000065 x", "ex");
}

TEST(base64_hex)
{
    T("base64Decode", "PHNjcmlwdD4=", "<script>");
    T("base64Decode", "PHNjcmlwdD4", "<script>");
    T("base64Decode", "PHNj cmlw\ndD4=!ignored", "<script>");
    T("hexDecode", "3c73637269707420", "<script ");
    T("hexDecode", "41zz42", "A");
    T("sqlHexDecode", "select 0x61646d696e, 0X41", "select admin, A");
    T("sqlHexDecode", "0x", "0x");
}

TEST(comments)
{
    T("removeComments", "un/**/ion sel/*x*/ect", "union select");
    T("removeComments", "a/*/**/*/b", "a*/b"); /* no nesting in SQL: the first close ends it */
    T("removeComments", "x /* unterminated", "x ");
    T("removeComments", "1 or 1=1-- rest\nnext", "1 or 1=1\nnext");
    T("removeComments", "1 #comment\n2", "1 \n2");
    T("removeComments", "a<!-- c -->b", "ab");
    T("replaceComments", "union/**/select", "union select");
    T("replaceComments", "a/*x", "a ");
    T("removeCommentsChar", "un/*io*/n", "union");
    T("removeCommentsChar", "a--b#c", "abc");
}

TEST(paths_and_commands)
{
    T("normalizePath", "/a/./b/../../../etc/passwd", "/etc/passwd");
    T("normalizePath", "a//b/./c/", "a/b/c/");
    T("normalizePath", "../../x", "x");
    T("normalizePath", "/", "/");
    T("normalizePathWin", "C:\\a\\..\\windows\\.\\win.ini", "C:/windows/win.ini");
    T("cmdLine", "c^at /e\"t\"c/pa''ss\\wd", "cat/etc/passwd");
    T("cmdLine", "WGET  http://x ; id,  uname  (a)", "wget http://x id uname(a)");
}

/* The engine takes a chain's result on a value without the features its
 * transformations trigger on from pc_tf_plain_effect without running it:
 * the claim, checked. */
TEST(plain_values)
{
    static const char *const values[] = {"",
                                         "hello",
                                         "Mozilla/5.0 (X11; Linux x86_64) Gecko",
                                         "a=b;c='d' <e> \"f\" $(g) {h} [i] |j| ~!@#^*_=?,./:",
                                         "SELECT * FROM t WHERE a = 1",
                                         "page=2&size=20&sort=created",
                                         "%41",
                                         "a+b",
                                         "&lt;",
                                         "&LTscript",
                                         "&#65",
                                         "\\x41",
                                         "caf\xc3\xa9",
                                         "a\tb",
                                         "a&b &c"};
    static const struct {
        const char *v;
        unsigned feat;
    } feats[] = {{"page=2&size=20&sort=created", 0},
                 {"a&b &c", 0},
                 {"%41", PC_TFF_URL},
                 {"a+b", PC_TFF_URL},
                 {"&lt;", PC_TFF_ENTITY},
                 {"&LTscript", PC_TFF_ENTITY},
                 {"x&#65", PC_TFF_ENTITY},
                 {"\\x41", PC_TFF_ESCAPE},
                 {"caf\xc3\xa9", PC_TFF_OTHER},
                 {"a\tb", PC_TFF_OTHER}};
    for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++) {
        const unsigned char *v = (const unsigned char *)values[k];
        size_t n = strlen(values[k]);
        unsigned f = pc_tf_features(v, n);
        CHECK(f & PC_TFF_KNOWN);
        for (int tf = 0; tf < PC_TF_COUNT; tf++) {
            int eff = pc_tf_plain_effect(tf);
            unsigned char out[PC_TF_OUT_MAX(64)];
            size_t m = pc_tf_apply(tf, v, n, out);
            if (!eff || (f & pc_tf_triggers(tf)))
                continue;
            CHECK_EQ_INT(m, n);
            for (size_t i = 0; i < n && i < m; i++)
                CHECK(out[i] == (eff == 2 ? pc_lower(v[i]) : v[i]));
        }
    }
    for (size_t k = 0; k < sizeof(feats) / sizeof(feats[0]); k++)
        CHECK_EQ_INT(pc_tf_features((const unsigned char *)feats[k].v, strlen(feats[k].v)),
                     PC_TFF_KNOWN | feats[k].feat);
    CHECK(pc_tf_triggers(PC_TF_HTML_ENTITY_DECODE) & PC_TFF_ENTITY);
    CHECK(!(pc_tf_triggers(PC_TF_URL_DECODE_UNI) & PC_TFF_ENTITY));
    CHECK_EQ_INT(pc_tf_plain_effect(PC_TF_LOWERCASE), 2);
    CHECK_EQ_INT(pc_tf_plain_effect(PC_TF_COMPRESS_WHITESPACE), 0);
    CHECK_EQ_INT(pc_tf_plain_effect(PC_TF_BASE64_DECODE), 0);
}

TEST_MAIN(RUN(names); RUN(case_and_whitespace); RUN(url_decodes); RUN(overlong_utf8);
          RUN(html_entities); RUN(js_css_escape); RUN(base64_hex); RUN(comments);
          RUN(paths_and_commands); RUN(plain_values))
