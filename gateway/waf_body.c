/*
 * waf_body.c — see waf_body.h.
 */
#include "waf_body.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* ---- JSON ---- */

typedef struct {
    pc_wafb_cb cb;
    void *arg;
    size_t count;
    char name[1024];
} jwalk_t;

static int jwalk(jwalk_t *w, json_t *v, size_t nlen, int depth)
{
    if (depth > PC_WAFB_MAX_DEPTH)
        return PC_WAFB_TOO_DEEP;
    char buf[40];
    const char *s = buf;
    size_t sl;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            size_t kl = strlen(k);
            if (nlen + 1 + kl >= sizeof(w->name))
                return PC_WAFB_TOO_DEEP;
            w->name[nlen] = '.';
            memcpy(w->name + nlen + 1, k, kl);
            int rc = jwalk(w, x, nlen + 1 + kl, depth + 1);
            if (rc)
                return rc;
        }
        return PC_WAFB_OK;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            int kl = snprintf(w->name + nlen, sizeof(w->name) - nlen, ".%zu", i);
            if (kl < 0 || nlen + (size_t)kl >= sizeof(w->name))
                return PC_WAFB_TOO_DEEP;
            int rc = jwalk(w, x, nlen + (size_t)kl, depth + 1);
            if (rc)
                return rc;
        }
        return PC_WAFB_OK;
    }
    case JSON_STRING:
        s = json_string_value(v);
        sl = json_string_length(v);
        break;
    case JSON_INTEGER:
        sl = (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        sl = (size_t)snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        s = "true", sl = 4;
        break;
    case JSON_FALSE:
        s = "false", sl = 5;
        break;
    default:
        s = "null", sl = 4;
        break;
    }
    if (++w->count > PC_WAFB_MAX_ARGS)
        return PC_WAFB_TOO_MANY;
    return w->cb(w->arg, PC_WAFB_ARG, w->name, nlen, s, sl);
}

int pc_wafb_json(const char *p, size_t n, pc_wafb_cb cb, void *arg)
{
    json_t *doc = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!doc)
        return PC_WAFB_MALFORMED;
    jwalk_t w;
    w.cb = cb;
    w.arg = arg;
    w.count = 0;
    memcpy(w.name, "json", 4);
    int rc = jwalk(&w, doc, 4, 0);
    json_decref(doc);
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
