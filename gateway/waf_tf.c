/*
 * waf_tf.c — see waf_tf.h.
 */
#include "waf_tf.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "str.h"

static const char *const names[PC_TF_COUNT] = {
#define X(id, name) name,
    PC_TF_LIST(X)
#undef X
};

int pc_tf_parse(const char *name, size_t n)
{
    int i = pc_str_index(names, PC_TF_COUNT, pc_str_make(name, n));
    if (i >= 0)
        return i;
    if (n == 13 && memcmp(name, "normalisePath", 13) == 0)
        return PC_TF_NORMALIZE_PATH;
    if (n == 16 && memcmp(name, "normalisePathWin", 16) == 0)
        return PC_TF_NORMALIZE_PATH_WIN;
    return -1;
}

const char *pc_tf_name(int tf)
{
    return tf >= 0 && tf < PC_TF_COUNT ? names[tf] : "?";
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0xa0;
}

/* A code point as the rules should see it: ASCII as itself (also when it
 * came in a long form), fullwidth ASCII (U+FF01..FF5E) folded to ASCII, the
 * rest as UTF-8. */
static size_t put_cp(unsigned char *o, unsigned long cp)
{
    if (cp > 0x10ffff)
        cp = 0xfffd;
    if (cp >= 0xff01 && cp <= 0xff5e)
        cp -= 0xfee0;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* %XX and '+' (form encoding); %uXXXX too when uni. */
static size_t url_decode(const unsigned char *in, size_t n, unsigned char *out, int uni)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '+') {
            out[o++] = ' ';
        } else if (in[i] == '%' && i + 2 < n && pc_hex_value(in[i + 1]) >= 0 &&
                   pc_hex_value(in[i + 2]) >= 0) {
            out[o++] = (unsigned char)(pc_hex_value(in[i + 1]) << 4 | pc_hex_value(in[i + 2]));
            i += 2;
        } else if (uni && in[i] == '%' && i + 5 < n && (in[i + 1] | 0x20) == 'u' &&
                   pc_hex_value(in[i + 2]) >= 0 && pc_hex_value(in[i + 3]) >= 0 &&
                   pc_hex_value(in[i + 4]) >= 0 && pc_hex_value(in[i + 5]) >= 0) {
            unsigned long cp =
                (unsigned long)(pc_hex_value(in[i + 2]) << 12 | pc_hex_value(in[i + 3]) << 8 |
                                pc_hex_value(in[i + 4]) << 4 | pc_hex_value(in[i + 5]));
            o += put_cp(out + o, cp);
            i += 5;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

#define E(name, c)                \
    {                             \
        name, sizeof(name) - 1, c \
    }
static const struct {
    const char *name;
    unsigned char len;
    unsigned char c;
} entities[] = {E("quot", '"'),     E("amp", '&'),    E("lt", '<'),    E("gt", '>'),
                E("apos", '\''),    E("nbsp", 0xa0),  E("colon", ':'), E("lpar", '('),
                E("rpar", ')'),     E("sol", '/'),    E("bsol", '\\'), E("tab", '\t'),
                E("newline", '\n'), E("excl", '!'),   E("num", '#'),   E("dollar", '$'),
                E("percnt", '%'),   E("lsqb", '['),   E("rsqb", ']'),  E("lcub", '{'),
                E("rcub", '}'),     E("period", '.'), E("comma", ','), E("semi", ';'),
                E("equals", '='),   E("plus", '+'),   E("grave", '`'), E("Hat", '^'),
                E("ast", '*'),      E("quest", '?'),  E("vert", '|'),  E("lowbar", '_')};
#undef E
#define NENTITIES (sizeof(entities) / sizeof(entities[0]))
_Static_assert(NENTITIES <= 32, "by_first holds the entities as bits of a uint32_t");

#define AMP 0x80 /* an '&': an entity perhaps */

/* Tables made once: the feature each byte is (AMP for '&'), and the
 * entities whose name starts with each letter, as bits of entities[] (the
 * query string's "&size=" tries two names, not thirty-two). */
static uint8_t byte_feature[256];
static uint32_t by_first[26];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
    for (unsigned c = 0; c < 256; c++)
        byte_feature[c] = c < 0x20 || c >= 0x7f  ? PC_TFF_OTHER
                          : c == '%' || c == '+' ? PC_TFF_URL
                          : c == '\\'            ? PC_TFF_ESCAPE
                          : c == '&'             ? AMP
                                                 : 0;
    for (unsigned k = 0; k < NENTITIES; k++)
        by_first[(entities[k].name[0] | 0x20) - 'a'] |= (uint32_t)1 << k;
}

/* The entity at in[i] (an '&'): &#DDD; &#xHH; &name; — the semicolon
 * optional, as browsers allow. Its length (0: none is there), and what it
 * stands for: a code point (*named 0) or a byte (*named 1). */
static size_t entity_at(const unsigned char *in, size_t n, size_t i, unsigned long *cp, int *named)
{
    size_t j = i + 1;
    if (j >= n)
        return 0;
    if (in[j] == '#') {
        int hex = j + 1 < n && (in[j + 1] | 0x20) == 'x';
        j += 1 + hex;
        size_t digits = 0;
        *cp = 0;
        while (j < n && (hex ? pc_hex_value(in[j]) >= 0 : in[j] >= '0' && in[j] <= '9')) {
            if (*cp < 0x110000)
                *cp = *cp * (hex ? 16 : 10) +
                      (unsigned long)(hex ? pc_hex_value(in[j]) : in[j] - '0');
            j++;
            digits++;
        }
        *named = 0;
        return digits ? (j < n && in[j] == ';' ? j + 1 : j) - i : 0;
    }
    size_t m = 0;
    while (j + m < n && m < 8 && ((in[j + m] | 0x20) >= 'a' && (in[j + m] | 0x20) <= 'z'))
        m++;
    if (!m)
        return 0;
    pthread_once(&tables_once, tables_init);
    for (uint32_t b = by_first[(in[j] | 0x20) - 'a'], el; b; b &= b - 1) {
        unsigned k = (unsigned)__builtin_ctz(b);
        if ((el = entities[k].len) <= m &&
            strncasecmp((const char *)in + j, entities[k].name, el) == 0) {
            /* a prefix is enough ("&ltscript"): browsers decode the
             * legacy ones so, and the rules should see more, not less */
            *cp = entities[k].c;
            *named = 1;
            return (j + el < n && in[j + el] == ';' ? j + el + 1 : j + el) - i;
        }
    }
    return 0;
}

static size_t html_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0, l;
    for (size_t i = 0; i < n; i++) {
        unsigned long cp;
        int named;
        if (in[i] != '&' || !(l = entity_at(in, n, i, &cp, &named))) {
            out[o++] = in[i];
            continue;
        }
        if (named)
            out[o++] = (unsigned char)cp;
        else
            o += put_cp(out + o, cp);
        i += l - 1;
    }
    return o;
}

/* \xHH \uHHHH \ooo \n \t ... and \c -> c (JavaScript string escapes). */
static size_t js_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '\\' || i + 1 >= n) {
            out[o++] = in[i];
            continue;
        }
        unsigned char c = in[i + 1];
        if ((c == 'x' || c == 'X') && i + 3 < n && pc_hex_value(in[i + 2]) >= 0 &&
            pc_hex_value(in[i + 3]) >= 0) {
            out[o++] = (unsigned char)(pc_hex_value(in[i + 2]) << 4 | pc_hex_value(in[i + 3]));
            i += 3;
        } else if ((c == 'u' || c == 'U') && i + 5 < n && pc_hex_value(in[i + 2]) >= 0 &&
                   pc_hex_value(in[i + 3]) >= 0 && pc_hex_value(in[i + 4]) >= 0 &&
                   pc_hex_value(in[i + 5]) >= 0) {
            o += put_cp(out + o,
                        (unsigned long)(pc_hex_value(in[i + 2]) << 12 |
                                        pc_hex_value(in[i + 3]) << 8 |
                                        pc_hex_value(in[i + 4]) << 4 | pc_hex_value(in[i + 5])));
            i += 5;
        } else if (c >= '0' && c <= '7') {
            unsigned v = 0, d = 0;
            while (d < 3 && i + 1 + d < n && in[i + 1 + d] >= '0' && in[i + 1 + d] <= '7' &&
                   v * 8 + (unsigned)(in[i + 1 + d] - '0') < 256) {
                v = v * 8 + (unsigned)(in[i + 1 + d] - '0');
                d++;
            }
            out[o++] = (unsigned char)v;
            i += d;
        } else {
            static const char from[] = "abfnrtv", to[] = "\a\b\f\n\r\t\v";
            const char *p = c ? strchr(from, c) : NULL;
            out[o++] = p ? (unsigned char)to[p - from] : c;
            i++;
        }
    }
    return o;
}

/* CSS escapes: \ and 1-6 hex digits (one following space eaten), \c -> c,
 * backslash-newline removed. */
static size_t css_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '\\' || i + 1 >= n) {
            if (in[i] != '\\')
                out[o++] = in[i];
            continue;
        }
        size_t j = i + 1, d = 0;
        unsigned long cp = 0;
        while (d < 6 && j < n && pc_hex_value(in[j]) >= 0) {
            cp = cp * 16 + (unsigned long)pc_hex_value(in[j++]);
            d++;
        }
        if (d) {
            o += put_cp(out + o, cp);
            if (j < n && is_space(in[j]))
                j++;
            i = j - 1;
        } else if (in[j] == '\n') {
            i = j;
        } else {
            out[o++] = in[j];
            i = j;
        }
    }
    return o;
}

static size_t b64_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+' || c == '-' ? 62
                : c == '/' || c == '_' ? 63
                                       : -1;
        if (v < 0) {
            if (c == '=' || is_space(c))
                continue;
            break; /* the encoded text ends here */
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

static size_t hex_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (pc_hex_value(in[i]) < 0 || pc_hex_value(in[i + 1]) < 0)
            break;
        out[o++] = (unsigned char)(pc_hex_value(in[i]) << 4 | pc_hex_value(in[i + 1]));
    }
    return o;
}

/* 0x414243 -> ABC, wherever a run of hex digit pairs follows 0x. */
static size_t sql_hex_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '0' && i + 3 < n && (in[i + 1] | 0x20) == 'x' &&
            pc_hex_value(in[i + 2]) >= 0 && pc_hex_value(in[i + 3]) >= 0) {
            size_t j = i + 2;
            while (j + 1 < n && pc_hex_value(in[j]) >= 0 && pc_hex_value(in[j + 1]) >= 0) {
                out[o++] = (unsigned char)(pc_hex_value(in[j]) << 4 | pc_hex_value(in[j + 1]));
                j += 2;
            }
            i = j - 1;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

/* UTF-8 sequences as %uHHHH; ASCII in a long (overlong) form as the ASCII
 * character itself; invalid bytes kept. */
static size_t utf8_to_unicode(const unsigned char *in, size_t n, unsigned char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        size_t len = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (c >= 0xf8)
            len = 1;
        unsigned long cp = len == 4 ? c & 0x07u : len == 3 ? c & 0x0fu : c & 0x1fu;
        size_t k = 1;
        while (len > 1 && k < len && i + k < n && (in[i + k] & 0xc0) == 0x80)
            cp = cp << 6 | (in[i + k++] & 0x3fu);
        if (len == 1 || k < len) {
            out[o++] = c;
            continue;
        }
        i += len - 1;
        if (cp < 0x80) { /* an overlong form: the character it stands for */
            out[o++] = (unsigned char)cp;
            continue;
        }
        if (cp > 0xffff)
            cp = 0xfffd;
        out[o++] = '%';
        out[o++] = 'u';
        out[o++] = (unsigned char)hx[cp >> 12 & 15];
        out[o++] = (unsigned char)hx[cp >> 8 & 15];
        out[o++] = (unsigned char)hx[cp >> 4 & 15];
        out[o++] = (unsigned char)hx[cp & 15];
    }
    return o;
}

/* The comment markers themselves dropped, the text between kept. */
static size_t comment_chars(const unsigned char *in, size_t n, unsigned char *out)
{
    static const char *const marks[] = {"<!--", "-->", "/*", "*/", "--", "#"};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        while (k < 6 &&
               !(i + strlen(marks[k]) <= n && memcmp(in + i, marks[k], strlen(marks[k])) == 0))
            k++;
        if (k < 6)
            i += strlen(marks[k]);
        else
            out[o++] = in[i++];
    }
    return o;
}

/* mode 0: remove comments; 1: replace each with a space. C comments
 * (unterminated: to the end), HTML comments, and "--" / "#" to the end of
 * the line. */
static size_t comments(const unsigned char *in, size_t n, unsigned char *out, int mode)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t open = 0, close = 0;
        const char *end = NULL;
        if (in[i] == '/' && i + 1 < n && in[i + 1] == '*') {
            open = 2;
            end = "*/";
            close = 2;
        } else if (in[i] == '<' && i + 3 < n && memcmp(in + i, "<!--", 4) == 0) {
            open = 4;
            end = "-->";
            close = 3;
        } else if ((in[i] == '-' && i + 1 < n && in[i + 1] == '-') || in[i] == '#') {
            open = in[i] == '#' ? 1 : 2;
            end = "\n";
            close = 0; /* the newline stays */
        }
        if (!open) {
            out[o++] = in[i];
            continue;
        }
        size_t j = i + open;
        while (j < n && !(j + strlen(end) <= n && memcmp(in + j, end, strlen(end)) == 0))
            j++;
        if (mode == 1) {
            out[o++] = ' ';
        }
        i = j < n ? j + close - 1 : n;
        if (j < n && close == 0)
            i = j - 1;
    }
    return o;
}

/* Removes "." segments and resolves ".." against the path before it;
 * merges "//". A leading "/" is kept; ".." above the root is dropped. */
static size_t normalize_path(const unsigned char *in, size_t n, unsigned char *out, int win)
{
    size_t o = 0;
    int absolute = n && (in[0] == '/' || (win && in[0] == '\\'));
    size_t i = 0;
    if (absolute) {
        out[o++] = '/';
        i = 1;
    }
    while (i <= n) {
        size_t s = i;
        while (i < n && in[i] != '/' && !(win && in[i] == '\\'))
            i++;
        size_t len = i - s;
        int last = i >= n;
        if (len == 0 || (len == 1 && in[s] == '.')) {
            /* nothing */
        } else if (len == 2 && in[s] == '.' && in[s + 1] == '.') {
            if (o > (size_t)absolute) {
                o--; /* the '/' after the previous segment */
                while (o > (size_t)absolute && out[o - 1] != '/')
                    o--;
            }
        } else {
            for (size_t k = s; k < i; k++)
                out[o++] = win && in[k] == '\\' ? '/' : in[k];
            if (!last)
                out[o++] = '/';
        }
        if (last)
            break;
        i++;
    }
    return o;
}

/* What a shell would run: no \ " ' ^, no spaces before / and (, , and ;
 * as spaces, whitespace compressed, lower case. */
static size_t cmd_line(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (c == '\\' || c == '"' || c == '\'' || c == '^')
            continue;
        if (is_space(c) || c == ',' || c == ';') {
            space = 1;
            continue;
        }
        if (space && o && c != '/' && c != '(')
            out[o++] = ' ';
        space = 0;
        out[o++] = pc_lower(c);
    }
    return o;
}

unsigned pc_tf_byte_features(unsigned char c)
{
    pthread_once(&tables_once, tables_init);
    return byte_feature[c] & ~(unsigned)AMP; /* an '&' alone is no entity */
}

unsigned pc_tf_features(const unsigned char *v, size_t n)
{
    pthread_once(&tables_once, tables_init);
    unsigned f = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) /* every value of every request passes here */
        f |= byte_feature[v[i]] | byte_feature[v[i + 1]] | byte_feature[v[i + 2]] |
             byte_feature[v[i + 3]];
    for (; i < n; i++)
        f |= byte_feature[v[i]];
    if (f & AMP) {
        f &= ~(unsigned)AMP;
        unsigned long cp;
        int named;
        for (const unsigned char *p = v; (p = memchr(p, '&', n - (size_t)(p - v))) != NULL; p++)
            if (entity_at(v, n, (size_t)(p - v), &cp, &named)) {
                f |= PC_TFF_ENTITY;
                break;
            }
    }
    return f | PC_TFF_KNOWN;
}

unsigned pc_tf_triggers(int tf)
{
    switch (tf) {
    case PC_TF_URL_DECODE:
    case PC_TF_URL_DECODE_UNI:
        return PC_TFF_OTHER | PC_TFF_URL;
    case PC_TF_HTML_ENTITY_DECODE:
        return PC_TFF_OTHER | PC_TFF_ENTITY;
    case PC_TF_JS_DECODE:
    case PC_TF_CSS_DECODE:
    case PC_TF_ESCAPE_SEQ_DECODE:
        return PC_TFF_OTHER | PC_TFF_ESCAPE;
    case PC_TF_UTF8_TO_UNICODE:
    case PC_TF_REMOVE_NULLS:
    case PC_TF_REPLACE_NULLS:
        return PC_TFF_OTHER;
    default: /* none, lowercase; and those pc_tf_plain_effect says 0 for */
        return 0;
    }
}

int pc_tf_plain_effect(int tf)
{
    switch (tf) {
    case PC_TF_NONE:
    case PC_TF_URL_DECODE:
    case PC_TF_URL_DECODE_UNI:
    case PC_TF_HTML_ENTITY_DECODE:
    case PC_TF_JS_DECODE:
    case PC_TF_CSS_DECODE:
    case PC_TF_ESCAPE_SEQ_DECODE:
    case PC_TF_UTF8_TO_UNICODE:
    case PC_TF_REMOVE_NULLS:
    case PC_TF_REPLACE_NULLS:
        return 1;
    case PC_TF_LOWERCASE:
        return 2;
    default:
        return 0;
    }
}

size_t pc_tf_apply(int tf, const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0, i, j;
    switch (tf) {
    case PC_TF_NONE:
        memcpy(out, in, n);
        return n;
    case PC_TF_LOWERCASE:
        pc_lower_copy((char *)out, (const char *)in, n);
        return n;
    case PC_TF_UPPERCASE:
        for (i = 0; i < n; i++)
            out[i] = in[i] >= 'a' && in[i] <= 'z' ? (unsigned char)(in[i] - 32) : in[i];
        return n;
    case PC_TF_URL_DECODE:
        return url_decode(in, n, out, 0);
    case PC_TF_URL_DECODE_UNI:
        return url_decode(in, n, out, 1);
    case PC_TF_HTML_ENTITY_DECODE:
        return html_decode(in, n, out);
    case PC_TF_JS_DECODE:
        return js_decode(in, n, out);
    case PC_TF_CSS_DECODE:
        return css_decode(in, n, out);
    case PC_TF_BASE64_DECODE:
        return b64_decode(in, n, out);
    case PC_TF_HEX_DECODE:
        return hex_decode(in, n, out);
    case PC_TF_SQL_HEX_DECODE:
        return sql_hex_decode(in, n, out);
    case PC_TF_ESCAPE_SEQ_DECODE:
        return js_decode(in, n, out); /* the C escapes are JavaScript's (and \u) */
    case PC_TF_UTF8_TO_UNICODE:
        return utf8_to_unicode(in, n, out);
    case PC_TF_REMOVE_NULLS:
    case PC_TF_REPLACE_NULLS:
        for (i = 0; i < n; i++)
            if (in[i] || tf == PC_TF_REPLACE_NULLS)
                out[o++] = in[i] ? in[i] : ' ';
        return o;
    case PC_TF_REMOVE_WHITESPACE:
        for (i = 0; i < n; i++)
            if (!is_space(in[i]))
                out[o++] = in[i];
        return o;
    case PC_TF_COMPRESS_WHITESPACE:
        for (i = 0; i < n; i++) {
            if (!is_space(in[i]))
                out[o++] = in[i];
            else if (!o || out[o - 1] != ' ' || !is_space(in[i - 1]))
                out[o++] = ' ';
        }
        return o;
    case PC_TF_REMOVE_COMMENTS:
        return comments(in, n, out, 0);
    case PC_TF_REPLACE_COMMENTS:
        return comments(in, n, out, 1);
    case PC_TF_REMOVE_COMMENTS_CHAR:
        return comment_chars(in, n, out);
    case PC_TF_NORMALIZE_PATH:
        return normalize_path(in, n, out, 0);
    case PC_TF_NORMALIZE_PATH_WIN:
        return normalize_path(in, n, out, 1);
    case PC_TF_CMD_LINE:
        return cmd_line(in, n, out);
    case PC_TF_TRIM:
    case PC_TF_TRIM_LEFT:
    case PC_TF_TRIM_RIGHT:
        i = 0;
        j = n;
        if (tf != PC_TF_TRIM_RIGHT)
            while (i < j && is_space(in[i]))
                i++;
        if (tf != PC_TF_TRIM_LEFT)
            while (j > i && is_space(in[j - 1]))
                j--;
        memcpy(out, in + i, j - i);
        return j - i;
    case PC_TF_LENGTH:
        return pc_u64_dec(n, (char *)out);
    default:
        memcpy(out, in, n);
        return n;
    }
}
