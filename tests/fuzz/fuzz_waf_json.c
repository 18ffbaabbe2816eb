/*
 * fuzz_waf_json.c — libFuzzer target for the WAF's JSON body parser
 * (pc_wafb_json), checked against jansson, the parser it replaced:
 *
 *  - a document jansson refuses is malformed for us too, and one we find
 *    malformed jansson refuses (except a number out of jansson's range,
 *    which we keep as written, and a NUL byte after the document, which
 *    jansson takes for its end and we for what it is);
 *  - on a document both accept, the flattened pairs are jansson's, in its
 *    order: the same names, the same strings, literals and numbers (the
 *    numbers compared by value, since we keep their text);
 *  - every value handed over lies inside the output buffer, as long as
 *    the input, or inside the input.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "waf_body.h"

#define MAXP 1100

typedef struct {
    char *name[MAXP], *value[MAXP];
    size_t nlen[MAXP], vlen[MAXP];
    size_t n;
    const char *in, *out;
    size_t size;
} pairs_t;

static int cb(void *arg, int kind, const char *name, size_t nlen, const char *value, size_t vlen)
{
    pairs_t *p = arg;
    FZ_ASSERT(kind == PC_WAFB_ARG && p->n < MAXP && nlen < 1024);
    FZ_ASSERT(!vlen || fz_inside(value, vlen, p->in, p->size) ||
              fz_inside(value, vlen, p->out, p->size) || vlen <= 5 /* a literal */);
    p->name[p->n] = malloc(nlen + 1);
    p->value[p->n] = malloc(vlen + 1);
    memcpy(p->name[p->n], name, nlen);
    memcpy(p->value[p->n], value, vlen);
    p->nlen[p->n] = nlen;
    p->vlen[p->n++] = vlen;
    return 0;
}

/* Walks jansson's document as the flattening does, comparing pair k on. */
static void same(const pairs_t *p, size_t *k, json_t *v, char *name, size_t nlen)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *x;
        if (!json_object_size(v))
            break; /* an argument valued "" */
        json_object_foreach(v, key, x)
        {
            size_t kl = strlen(key);
            name[nlen] = '.';
            memcpy(name + nlen + 1, key, kl);
            same(p, k, x, name, nlen + 1 + kl);
        }
        return;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        if (!json_array_size(v))
            break;
        json_array_foreach(v, i, x)
        {
            int kl = snprintf(name + nlen, 64, ".%zu", i);
            same(p, k, x, name, nlen + (size_t)kl);
        }
        return;
    }
    default:
        break;
    }
    FZ_ASSERT(*k < p->n);
    FZ_ASSERT(p->nlen[*k] == nlen && memcmp(p->name[*k], name, nlen) == 0);
    const char *s = p->value[*k];
    size_t sl = p->vlen[*k];
    switch (json_typeof(v)) {
    case JSON_STRING:
        FZ_ASSERT(sl == json_string_length(v) && memcmp(s, json_string_value(v), sl) == 0);
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        p->value[*k][sl] = 0;
        FZ_ASSERT(strtod(s, NULL) == json_number_value(v));
        break;
    case JSON_TRUE:
        FZ_ASSERT(sl == 4 && memcmp(s, "true", 4) == 0);
        break;
    case JSON_FALSE:
        FZ_ASSERT(sl == 5 && memcmp(s, "false", 5) == 0);
        break;
    case JSON_OBJECT:
    case JSON_ARRAY: /* empty */
        FZ_ASSERT(sl == 0);
        break;
    default:
        FZ_ASSERT(sl == 4 && memcmp(s, "null", 4) == 0);
        break;
    }
    (*k)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pairs_t p;
    char *out = malloc(size ? size : 1);
    p.n = 0;
    p.in = (const char *)data;
    p.out = out;
    p.size = size;
    int rc = pc_wafb_json((const char *)data, size, out, cb, &p);
    FZ_ASSERT(rc <= 0 && rc >= PC_WAFB_TOO_DEEP);
    json_error_t err;
    json_t *doc = json_loadb((const char *)data, size,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    int range = !doc && (strstr(err.text, "too big") || strstr(err.text, "overflow"));
    if (rc == PC_WAFB_MALFORMED)
        FZ_ASSERT(!doc || memchr(data, 0, size));
    if (rc == PC_WAFB_OK)
        FZ_ASSERT(doc || range);
    if (!rc && doc && !range) {
        static char name[1 << 16];
        size_t k = 0;
        memcpy(name, "json", 4);
        same(&p, &k, doc, name, 4);
        FZ_ASSERT(k == p.n);
    }
    json_decref(doc);
    for (size_t i = 0; i < p.n; i++) {
        free(p.name[i]);
        free(p.value[i]);
    }
    free(out);
    return 0;
}
