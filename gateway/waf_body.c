/*
 * waf_body.c — see waf_body.h.
 */
#include "waf_body.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "waf_tf.h"

/* %XX and '+', invalid escapes kept: the urlDecode transformation. */
static size_t form_decode(const char *p, size_t n, char *out)
{
    return pc_tf_apply(PC_TF_URL_DECODE, (const unsigned char *)p, n, (unsigned char *)out);
}

int pc_wafb_urlencoded(const char *p, size_t n, char *out, pc_wafb_cb cb, void *arg)
{
    size_t o = 0, count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = i;
        while (i < n && p[i] != '&')
            i++;
        if (i == s)
            continue;
        const char *eq = memchr(p + s, '=', i - s);
        size_t nl = eq ? (size_t)(eq - (p + s)) : i - s;
        if (++count > PC_WAFB_MAX_ARGS)
            return PC_WAFB_TOO_MANY;
        char *name = out + o;
        size_t dn = form_decode(p + s, nl, name);
        char *value = name + dn;
        size_t dv = eq ? form_decode(eq + 1, i - s - nl - 1, value) : 0;
        o += dn + dv;
        int rc = cb(arg, PC_WAFB_ARG, name, dn, value, dv);
        if (rc)
            return rc;
    }
    return PC_WAFB_OK;
}

int pc_wafb_cookies(const char *p, size_t n, pc_wafb_cb cb, void *arg)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t s = i;
        while (i < n && p[i] != ';')
            i++;
        size_t e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        const char *eq = memchr(p + s, '=', e - s);
        size_t nl = eq ? (size_t)(eq - (p + s)) : e - s;
        if (++count > PC_WAFB_MAX_ARGS)
            return PC_WAFB_TOO_MANY;
        int rc = cb(arg, PC_WAFB_COOKIE, p + s, nl, eq ? eq + 1 : p + e, eq ? e - s - nl - 1 : 0);
        if (rc)
            return rc;
    }
    return PC_WAFB_OK;
}

/* ---- JSON ----
 *
 * One pass over the text, recursive descent bounded by PC_WAFB_MAX_DEPTH,
 * handing over each scalar as it is read: strings decoded into out at the
 * offset where they start in the input (decoding never grows, so they
 * never overlap), numbers and literals as written. Strict RFC 8259, as
 * jansson (used before, and still the reference of the fuzz target) is:
 * UTF-8 only, no control bytes in strings, surrogates in pairs, no two
 * members of an object with one name, \u0000 in values but not in names. */

typedef struct {
    const char *k;
    size_t n;
} jkey_t;

#define JKEYS_MAX (8 * PC_WAFB_MAX_ARGS) /* names of the objects open at once */

typedef struct {
    const unsigned char *base, *p, *end;
    char *out;
    pc_wafb_cb cb;
    void *arg;
    size_t count;
    jkey_t *keys; /* the names of the members of every object open */
    size_t nkeys, capkeys;
    jkey_t keys0[64];
    char name[1024];
} jp_t;

static void jws(jp_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(const unsigned char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* The length of the UTF-8 sequence at p (p < end, *p >= 0x80), 0 when
 * it is not one: overlong, a surrogate, past U+10FFFF, or cut. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    size_t len = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
    if (*p < 0xC2 || *p > 0xF4 || (size_t)(end - p) < len)
        return 0;
    unsigned cp = *p & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* The string at j->p (a '"'), decoded. */
static int jstring(jp_t *j, const char **s, size_t *n, int is_name)
{
    const unsigned char *p = ++j->p, *end = j->end;
    char *o = j->out + (p - j->base), *start = o;
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            j->p = p + 1;
            *s = start;
            *n = (size_t)(o - start);
            return PC_WAFB_OK;
        }
        if (c < 0x20)
            return PC_WAFB_MALFORMED;
        if (c >= 0x80) {
            size_t l = utf8_seq(p, end);
            if (!l)
                return PC_WAFB_MALFORMED;
            memcpy(o, p, l);
            o += l, p += l;
            continue;
        }
        p++;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (p == end)
            return PC_WAFB_MALFORMED;
        static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
        const char *e = memchr(esc, *p, sizeof(esc) - 1);
        if (e && (e - esc) % 2 == 0) {
            *o++ = e[1];
            p++;
            continue;
        }
        unsigned cp, lo;
        if (*p != 'u' || end - p < 5 || hex4(p + 1, &cp) != 0)
            return PC_WAFB_MALFORMED;
        p += 5;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return PC_WAFB_MALFORMED;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return PC_WAFB_MALFORMED;
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0 && is_name)
            return PC_WAFB_MALFORMED;
        o = put_utf8(o, cp);
    }
    return PC_WAFB_MALFORMED;
}

static int jscalar(jp_t *j, size_t nlen, const char *v, size_t vl)
{
    if (++j->count > PC_WAFB_MAX_ARGS)
        return PC_WAFB_TOO_MANY;
    return j->cb(j->arg, PC_WAFB_ARG, j->name, nlen, v, vl);
}

static int jnumber(jp_t *j, size_t nlen)
{
    const unsigned char *s = j->p, *p = s, *end = j->end;
#define DIGIT(q) ((q) < end && *(q) >= '0' && *(q) <= '9')
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (DIGIT(p))
        while (DIGIT(p))
            p++;
    else
        return PC_WAFB_MALFORMED;
    if (p < end && *p == '.') {
        p++;
        if (!DIGIT(p))
            return PC_WAFB_MALFORMED;
        while (DIGIT(p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (!DIGIT(p))
            return PC_WAFB_MALFORMED;
        while (DIGIT(p))
            p++;
    }
#undef DIGIT
    j->p = p;
    return jscalar(j, nlen, (const char *)s, (size_t)(p - s));
}

static int key_cmp(const void *a, const void *b)
{
    const jkey_t *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return memcmp(x->k, y->k, x->n);
}

/* Do two of the n names repeat? (may sort them) */
static int repeated(jkey_t *k, size_t n)
{
    if (n <= 8) {
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++)
                if (key_cmp(&k[a], &k[b]) == 0)
                    return 1;
        return 0;
    }
    qsort(k, n, sizeof(*k), key_cmp);
    for (size_t a = 1; a < n; a++)
        if (key_cmp(&k[a - 1], &k[a]) == 0)
            return 1;
    return 0;
}

static int push_key(jp_t *j, const char *k, size_t n)
{
    if (j->nkeys == j->capkeys) {
        if (j->capkeys >= JKEYS_MAX)
            return PC_WAFB_TOO_MANY;
        size_t cap = j->capkeys * 2;
        jkey_t *nk = malloc(cap * sizeof(*nk));
        if (!nk)
            return PC_WAFB_NOMEM;
        memcpy(nk, j->keys, j->nkeys * sizeof(*nk));
        if (j->keys != j->keys0)
            free(j->keys);
        j->keys = nk, j->capkeys = cap;
    }
    j->keys[j->nkeys++] = (jkey_t){k, n};
    return PC_WAFB_OK;
}

static int jvalue(jp_t *j, size_t nlen, int depth);

/* The members or elements of the object or array at j->p, each named
 * name.KEY or name.INDEX. */
static int jcontainer(jp_t *j, size_t nlen, int depth)
{
    int object = *j->p++ == '{';
    unsigned char close = object ? '}' : ']';
    size_t first = j->nkeys, index = 0;
    int rc;
    jws(j);
    if (j->p < j->end && *j->p == close) { /* empty: its name is an argument, valued "" */
        j->p++;
        return jscalar(j, nlen, "", 0);
    }
    for (;; index++) {
        size_t kl;
        jws(j);
        if (object) {
            const char *k;
            if (j->p == j->end || *j->p != '"')
                return PC_WAFB_MALFORMED;
            if ((rc = jstring(j, &k, &kl, 1)) != 0 || (rc = push_key(j, k, kl)) != 0)
                return rc;
            jws(j);
            if (j->p == j->end || *j->p++ != ':')
                return PC_WAFB_MALFORMED;
            if (nlen + 1 + kl >= sizeof(j->name))
                return PC_WAFB_TOO_DEEP;
            j->name[nlen] = '.';
            memcpy(j->name + nlen + 1, k, kl);
        } else {
            char num[24];
            kl = pc_u64_dec(index, num);
            if (nlen + 1 + kl >= sizeof(j->name))
                return PC_WAFB_TOO_DEEP;
            j->name[nlen] = '.';
            memcpy(j->name + nlen + 1, num, kl);
        }
        if ((rc = jvalue(j, nlen + 1 + kl, depth + 1)) != 0)
            return rc;
        jws(j);
        if (j->p == j->end)
            return PC_WAFB_MALFORMED;
        if (*j->p == close)
            break;
        if (*j->p++ != ',')
            return PC_WAFB_MALFORMED;
    }
    j->p++;
    if (object && repeated(j->keys + first, j->nkeys - first))
        return PC_WAFB_MALFORMED;
    j->nkeys = first;
    return PC_WAFB_OK;
}

static int jvalue(jp_t *j, size_t nlen, int depth)
{
    if (depth > PC_WAFB_MAX_DEPTH)
        return PC_WAFB_TOO_DEEP;
    jws(j);
    if (j->p == j->end)
        return PC_WAFB_MALFORMED;
    static const char *const lits[] = {"true", "false", "null"};
    switch (*j->p) {
    case '{':
    case '[':
        return jcontainer(j, nlen, depth);
    case '"': {
        const char *s;
        size_t sl;
        int rc = jstring(j, &s, &sl, 0);
        return rc ? rc : jscalar(j, nlen, s, sl);
    }
    case 't':
    case 'f':
    case 'n': {
        const char *lit = lits[*j->p == 't' ? 0 : *j->p == 'f' ? 1 : 2];
        size_t l = strlen(lit);
        if ((size_t)(j->end - j->p) < l || memcmp(j->p, lit, l) != 0)
            return PC_WAFB_MALFORMED;
        j->p += l;
        return jscalar(j, nlen, lit, l);
    }
    default:
        return jnumber(j, nlen);
    }
}

int pc_wafb_json(const char *p, size_t n, char *out, pc_wafb_cb cb, void *arg)
{
    jp_t *j = malloc(sizeof(*j));
    if (!j)
        return PC_WAFB_NOMEM;
    j->base = j->p = (const unsigned char *)p;
    j->end = j->p + n;
    j->out = out;
    j->cb = cb;
    j->arg = arg;
    j->count = 0;
    j->keys = j->keys0;
    j->nkeys = 0;
    j->capkeys = sizeof(j->keys0) / sizeof(j->keys0[0]);
    memcpy(j->name, "json", 4);
    int rc = jvalue(j, 4, 0);
    if (rc == PC_WAFB_OK) {
        jws(j);
        if (j->p != j->end)
            rc = PC_WAFB_MALFORMED;
    }
    if (j->keys != j->keys0)
        free(j->keys);
    free(j);
    return rc;
}

/* ---- multipart ---- */

int pc_wafb_boundary(const char *ct, size_t n, const char **b, size_t *blen)
{
    /* multipart/form-data; boundary=XYZ  or  boundary="XYZ" */
    for (size_t i = 0; i + 9 <= n; i++) {
        if (strncasecmp(ct + i, "boundary=", 9) != 0 || (i && ct[i - 1] != ';' && ct[i - 1] != ' '))
            continue;
        const char *s = ct + i + 9;
        size_t left = n - i - 9, l = 0;
        if (left && s[0] == '"') {
            s++, left--;
            while (l < left && s[l] != '"')
                l++;
            if (l == left)
                return -1;
        } else {
            while (l < left && s[l] != ';' && s[l] != ' ' && s[l] != '\t')
                l++;
        }
        if (l == 0 || l > 70) /* RFC 2046: 1 to 70 characters */
            return -1;
        *b = s;
        *blen = l;
        return 0;
    }
    return -1;
}

/* The parameters of a Content-Disposition value after "form-data", in
 * order: ; key=token or ; key="quoted \" string". name and filename are
 * unquoted into out (cap bytes; name first, filename after it); their
 * lengths are -1 when absent. -1 when malformed (or repeated). */
static int disp_params(const char *v, size_t n, char *out, size_t cap, long *name_len,
                       long *file_len)
{
    size_t i = 9, o = 0; /* after "form-data" */
    *name_len = *file_len = -1;
    for (;;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i == n)
            return 0;
        if (v[i++] != ';')
            return -1;
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t k = i;
        while (i < n && v[i] != '=' && v[i] != ';' && v[i] != ' ')
            i++;
        if (i == k || i == n || v[i] != '=')
            return -1;
        size_t kl = i - k;
        long *len = kl == 4 && strncasecmp(v + k, "name", 4) == 0       ? name_len
                    : kl == 8 && strncasecmp(v + k, "filename", 8) == 0 ? file_len
                                                                        : NULL;
        if (len && *len >= 0)
            return -1; /* the same parameter twice: which one would the backend take? */
        size_t start = o;
        i++;
        if (i < n && v[i] == '"') {
            for (i++; i < n && v[i] != '"'; i++) {
                if (v[i] == '\\' && i + 1 < n)
                    i++;
                if (len && o == cap)
                    return -1;
                if (len)
                    out[o++] = v[i];
            }
            if (i == n)
                return -1; /* unterminated */
            i++;
        } else {
            for (; i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t'; i++) {
                if (len && o == cap)
                    return -1;
                if (len)
                    out[o++] = v[i];
            }
        }
        if (len)
            *len = (long)(o - start);
    }
}

static const char *find(const char *p, size_t n, const char *needle, size_t nl)
{
    if (nl > n)
        return NULL;
    return memmem(p, n, needle, nl);
}

int pc_wafb_multipart(const char *p, size_t n, const char *bnd, size_t blen, char *out,
                      pc_wafb_cb cb, void *arg)
{
    char delim[80];
    if (blen == 0 || blen > 70)
        return PC_WAFB_MALFORMED;
    /* "\r\n--BOUNDARY": the body starts with the first one minus its CRLF */
    delim[0] = '\r', delim[1] = '\n', delim[2] = '-', delim[3] = '-';
    memcpy(delim + 4, bnd, blen);
    size_t dl = blen + 4, count = 0;
    if (n < dl - 2 || memcmp(p, delim + 2, dl - 2) != 0)
        return PC_WAFB_MALFORMED;
    size_t i = dl - 2;
    for (;;) {
        /* after a delimiter: "--" ends the body, CRLF starts a part */
        if (i + 2 <= n && p[i] == '-' && p[i + 1] == '-') {
            for (i += 2; i < n; i++) /* only line ends may follow */
                if (p[i] != '\r' && p[i] != '\n')
                    return PC_WAFB_MALFORMED;
            return PC_WAFB_OK;
        }
        if (i + 2 > n || p[i] != '\r' || p[i + 1] != '\n')
            return PC_WAFB_MALFORMED;
        i += 2;
        const char *hend = find(p + i, n - i, "\r\n\r\n", 4);
        const char *next = hend ? find(hend + 4, n - (size_t)(hend + 4 - p), delim, dl) : NULL;
        /* a part with no header is not form data */
        if (!hend || !next)
            return PC_WAFB_MALFORMED;
        if (++count > PC_WAFB_MAX_ARGS)
            return PC_WAFB_TOO_MANY;
        long name_len = -1, file_len = -1;
        int seen_disp = 0;
        char *name = out;
        for (const char *h = p + i; h < hend + 2;) {
            const char *eol = find(h, (size_t)(hend + 2 - h), "\r\n", 2);
            const char *colon = memchr(h, ':', (size_t)(eol - h));
            if (!colon || colon == h)
                return PC_WAFB_MALFORMED;
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            int rc = cb(arg, PC_WAFB_PART_HEADER, h, (size_t)(colon - h), v, (size_t)(eol - v));
            if (rc)
                return rc;
            if ((size_t)(colon - h) == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
                size_t vl = (size_t)(eol - v);
                if (seen_disp || vl < 9 || strncasecmp(v, "form-data", 9) != 0 ||
                    disp_params(v, vl, out, n, &name_len, &file_len) != 0 || name_len < 0)
                    return PC_WAFB_MALFORMED; /* twice, not form data, or no name */
                seen_disp = 1;
            }
            h = eol + 2;
        }
        if (name_len < 0)
            return PC_WAFB_MALFORMED; /* no Content-Disposition */
        const char *data = hend + 4;
        const char *file = name + name_len; /* disp_params put it after the name */
        int rc = file_len >= 0
                     ? cb(arg, PC_WAFB_FILE, name, (size_t)name_len, file, (size_t)file_len)
                     : cb(arg, PC_WAFB_ARG, name, (size_t)name_len, data, (size_t)(next - data));
        if (rc)
            return rc;
        i = (size_t)(next - p) + dl;
    }
}
