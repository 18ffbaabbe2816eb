/*
 * fuzz_webhook_hmac.c — libFuzzer target for the webhook_hmac plugin: its
 * configuration (init: secret, header, unknown keys) and its signature
 * header (parse_signature), then a whole request through the plugin's
 * callbacks. The plugin's source is compiled into the target (its parsers
 * are static); the gateway is replaced by a small host written here.
 *
 * Input: FLAGS CONFIG \0 SIGNATURE \0 BODY. FLAGS bit 0: no `config:` at
 * all (NULL); bits 1-2: how many signature fields the request carries
 * (0, 1, 2; 3 is 1). CONFIG is lines KEY=VALUE (up to 16; a line without
 * '=' is KEY with a null value; VALUE "~" is null, "{}" an empty map, "[]"
 * an empty sequence, anything else a string, "" included).
 *
 * Invariants (abort on violation):
 *  - parse_signature accepts exactly "sha256=" and 64 hex digits of either
 *    case (nothing before or after), and then yields the bytes they spell;
 *  - init succeeds exactly when a reference reading written here accepts
 *    the configuration: a mapping whose keys are only secret and header,
 *    secret a non-empty string, header (if present) a non-empty token; the
 *    header used is that one or X-Hub-Signature-256; a refusal says why;
 *  - a request with no signature field is refused 401 missing_signature,
 *    with two, or one the reference refuses, 401 malformed_signature,
 *    before any body byte; otherwise the body, streamed in slices, is
 *    accepted exactly when the signature equals HMAC-SHA256(secret, body)
 *    as OpenSSL's HMAC() computes it here (else 401 bad_signature): the
 *    input's own signature, the right one in a random mix of cases, and
 *    the right one with one bit flipped; each outcome counts its counter.
 */
#include <ctype.h>
#include <openssl/hmac.h>
#include <strings.h>

#include "../../plugins/webhook_hmac.c"
#include "fuzz_common.h"

/* ---- the host ---- */

#define MAX_PAIRS 16

struct portcullis_node {
    int type;
    const char *str;
    size_t n;
    const char *keys[MAX_PAIRS];
    const struct portcullis_node *vals[MAX_PAIRS];
};

struct portcullis_counter {
    const char *event;
    unsigned long long n;
};

struct portcullis_req {
    const char *name; /* the field name the request carries */
    const char *vals[2];
    size_t lens[2];
    unsigned nvals;
    int responses, status;
    char error[64];
};

static const char *const events[] = {"verified", "missing_signature", "malformed_signature",
                                     "bad_signature"};
static struct portcullis_counter counters[4];

static int h_node_type(const portcullis_node_t *n)
{
    return n ? n->type : PORTCULLIS_NODE_NULL;
}

static const portcullis_node_t *h_node_get(const portcullis_node_t *m, const char *key)
{
    if (!m || m->type != PORTCULLIS_NODE_MAP || !key)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    return NULL;
}

static size_t h_node_len(const portcullis_node_t *n)
{
    if (!n || n->type == PORTCULLIS_NODE_NULL)
        return 0;
    return n->type == PORTCULLIS_NODE_SCALAR ? strlen(n->str) : n->n;
}

static const portcullis_node_t *h_node_at(const portcullis_node_t *n, size_t i)
{
    return n && n->type == PORTCULLIS_NODE_MAP && i < n->n ? n->vals[i] : NULL;
}

static const char *h_node_key(const portcullis_node_t *m, size_t i)
{
    return m && m->type == PORTCULLIS_NODE_MAP && i < m->n ? m->keys[i] : NULL;
}

static const char *h_node_str(const portcullis_node_t *n)
{
    return n && n->type == PORTCULLIS_NODE_SCALAR ? n->str : NULL;
}

static int h_node_line(const portcullis_node_t *n)
{
    return n ? 1 : 0;
}

static const char *h_request_header(portcullis_req_t *r, const char *name, unsigned nth,
                                    size_t *len)
{
    FZ_ASSERT(r && name);
    if (strcasecmp(name, r->name) != 0 || nth >= r->nvals) {
        *len = 0;
        return NULL;
    }
    *len = r->lens[nth];
    return r->vals[nth];
}

static int h_respond(portcullis_req_t *r, int status, const char *error)
{
    FZ_ASSERT(error && strlen(error) < sizeof(r->error));
    r->responses++;
    r->status = status;
    snprintf(r->error, sizeof(r->error), "%s", error);
    return 0;
}

static void h_log(const portcullis_host_t *host, portcullis_req_t *r, int level, const char *fmt,
                  ...)
{
    (void)host;
    (void)r;
    (void)level;
    (void)fmt;
}

static portcullis_counter_t *h_counter(const portcullis_host_t *host, const char *event)
{
    (void)host;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(event, events[i]) == 0)
            return &counters[i];
    FZ_ASSERT(!"unexpected counter");
    return NULL;
}

static void h_count(portcullis_counter_t *c, unsigned long long n)
{
    FZ_ASSERT(c);
    c->n += n;
}

static const portcullis_host_t host = {
    .abi = PORTCULLIS_PLUGIN_ABI,
    .size = sizeof(portcullis_host_t),
    .plugin_name = "webhook_hmac",
    .node_type = h_node_type,
    .node_get = h_node_get,
    .node_len = h_node_len,
    .node_at = h_node_at,
    .node_key = h_node_key,
    .node_str = h_node_str,
    .node_line = h_node_line,
    .request_header = h_request_header,
    .respond = h_respond,
    .log = h_log,
    .counter = h_counter,
    .count = h_count,
};

/* ---- the reference ---- */

#define REF_PREFIX "sha256="
#define REF_SIGLEN (7 + 64)

static int ref_nibble(unsigned char c)
{
    static const char digits[] = "0123456789abcdef";
    if (c >= 'A' && c <= 'F')
        c = (unsigned char)(c - 'A' + 'a');
    const char *p = c ? memchr(digits, c, 16) : NULL;
    return p ? (int)(p - digits) : -1;
}

/* 1 when v[0, n) is a signature, its bytes in out[32] */
static int ref_signature(const char *v, size_t n, unsigned char *out)
{
    if (n != REF_SIGLEN || strncmp(v, REF_PREFIX, 7) != 0)
        return 0;
    for (size_t i = 0; i < 32; i++) {
        int hi = ref_nibble((unsigned char)v[7 + 2 * i]);
        int lo = ref_nibble((unsigned char)v[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(16 * hi + lo);
    }
    return 1;
}

/* the header used, or NULL when the configuration is refused */
static const char *ref_config(const portcullis_node_t *m, const char **secret)
{
    if (!m)
        return NULL;
    const portcullis_node_t *sec = NULL, *hdr = NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], "secret") == 0) {
            if (!sec)
                sec = m->vals[i];
        } else if (strcmp(m->keys[i], "header") == 0) {
            if (!hdr)
                hdr = m->vals[i];
        } else {
            return NULL;
        }
    }
    if (!sec || sec->type != PORTCULLIS_NODE_SCALAR || !sec->str[0])
        return NULL;
    *secret = sec->str;
    if (!hdr)
        return "X-Hub-Signature-256";
    return hdr->type == PORTCULLIS_NODE_SCALAR && fz_is_token(hdr->str) ? hdr->str : NULL;
}

/* ---- one request through the plugin ---- */

static char *exact_copy(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    FZ_ASSERT(c);
    memcpy(c, p, n);
    return c;
}

/* Runs a request carrying nvals signature fields; checks the verdict. */
static void run_request(const void *conf, const char *header, const char *const *vals,
                        const size_t *lens, unsigned nvals, const char *body, size_t blen,
                        const unsigned char *mac, uint64_t *rng)
{
    struct portcullis_req r = {.name = header, .nvals = nvals};
    for (unsigned i = 0; i < nvals; i++) {
        r.vals[i] = exact_copy(vals[i], lens[i]);
        r.lens[i] = lens[i];
    }
    unsigned long long before[4];
    for (size_t i = 0; i < 4; i++)
        before[i] = counters[i].n;
    unsigned char want[32];
    int wellformed = nvals == 1 && ref_signature(vals[0], lens[0], want);
    const char *expect = nvals == 0                          ? "missing_signature"
                         : !wellformed                       ? "malformed_signature"
                         : CRYPTO_memcmp(want, mac, 32) != 0 ? "bad_signature"
                                                             : NULL;

    void *state = calloc(1, portcullis_plugin.state_size);
    FZ_ASSERT(state);
    portcullis_rc_t rc = portcullis_plugin.request_headers(&r, conf, state);
    if (!wellformed) {
        FZ_ASSERT(rc == PORTCULLIS_RESPOND);
    } else {
        FZ_ASSERT(rc == PORTCULLIS_CONTINUE && r.responses == 0);
        size_t off = 0;
        do {
            size_t step = fz_step(rng) - 1;
            if (step > blen - off)
                step = blen - off;
            char *slice = exact_copy(body + off, step);
            off += step;
            rc = portcullis_plugin.request_body(&r, conf, state, slice, step, off == blen);
            free(slice);
            FZ_ASSERT(off == blen || rc == PORTCULLIS_CONTINUE);
        } while (off < blen);
        FZ_ASSERT(rc == (expect ? PORTCULLIS_RESPOND : PORTCULLIS_CONTINUE));
    }
    portcullis_plugin.log(&r, conf, state);
    free(state);

    if (expect) {
        FZ_ASSERT(r.responses == 1 && r.status == 401 && strcmp(r.error, expect) == 0);
    } else {
        FZ_ASSERT(r.responses == 0);
    }
    for (size_t i = 0; i < 4; i++) {
        int hit = expect ? strcmp(events[i], expect) == 0 : i == 0;
        FZ_ASSERT(counters[i].n == before[i] + (unsigned long long)hit);
    }
    for (unsigned i = 0; i < nvals; i++)
        free((void *)r.vals[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    uint64_t rng = fz_seed(data, size);
    unsigned flags = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    const char *z1 = memchr(p, 0, (size_t)(end - p));
    const char *cfg = p, *sig = z1 ? z1 + 1 : end;
    size_t cfglen = (size_t)((z1 ? z1 : end) - p);
    const char *z2 = sig < end ? memchr(sig, 0, (size_t)(end - sig)) : NULL;
    size_t siglen = (size_t)((z2 ? z2 : end) - sig);
    const char *body = z2 ? z2 + 1 : end;
    size_t blen = (size_t)(end - body);

    /* the signature parser alone, on an exact-size copy */
    char *sv = exact_copy(sig, siglen);
    unsigned char got[DIGEST_LEN], want[32];
    memset(got, 0xa5, sizeof(got));
    int ok = ref_signature(sv, siglen, want);
    FZ_ASSERT((parse_signature(sv, siglen, got) == 0) == ok);
    if (ok)
        FZ_ASSERT(memcmp(got, want, 32) == 0);
    free(sv);

    /* the configuration */
    char *text = malloc(cfglen + 1);
    FZ_ASSERT(text);
    memcpy(text, cfg, cfglen);
    text[cfglen] = 0;
    static struct portcullis_node values[MAX_PAIRS], map;
    memset(&map, 0, sizeof(map));
    map.type = PORTCULLIS_NODE_MAP;
    for (char *line = text, *next; line && map.n < MAX_PAIRS; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!*line)
            continue;
        struct portcullis_node *v = &values[map.n];
        memset(v, 0, sizeof(*v));
        char *eq = strchr(line, '=');
        if (eq)
            *eq++ = 0;
        v->type = !eq || strcmp(eq, "~") == 0 ? PORTCULLIS_NODE_NULL
                  : strcmp(eq, "{}") == 0     ? PORTCULLIS_NODE_MAP
                  : strcmp(eq, "[]") == 0     ? PORTCULLIS_NODE_SEQ
                                              : PORTCULLIS_NODE_SCALAR;
        v->str = v->type == PORTCULLIS_NODE_SCALAR ? eq : NULL;
        map.keys[map.n] = line;
        map.vals[map.n++] = v;
    }
    const portcullis_node_t *config = (flags & 1) ? NULL : &map;
    const char *secret = NULL;
    const char *header = ref_config(config, &secret);

    void *conf = NULL;
    char err[256] = "";
    int rc = portcullis_plugin.init(&host, config, &conf, err, sizeof(err));
    FZ_ASSERT((rc == 0) == (header != NULL));
    if (rc != 0) {
        FZ_ASSERT(err[0] && !conf);
        free(text);
        return 0;
    }
    FZ_ASSERT(conf && strcmp(((conf_t *)conf)->header, header) == 0);

    /* requests: the input's signature, the right one, the right one off by a bit */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    FZ_ASSERT(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, blen,
                   mac, &maclen) &&
              maclen == 32);
    char right[REF_SIGLEN + 1], flipped[REF_SIGLEN + 1];
    uint64_t cases = fz_rand(&rng);
    memcpy(right, REF_PREFIX, 7);
    for (size_t i = 0; i < 64; i++) {
        unsigned nib = (i & 1) ? mac[i / 2] & 15 : mac[i / 2] >> 4;
        char c = "0123456789abcdef"[nib];
        right[7 + i] = (cases >> i) & 1 ? (char)toupper((unsigned char)c) : c;
    }
    right[REF_SIGLEN] = 0;
    unsigned char off[32];
    memcpy(off, mac, 32);
    unsigned bit = (unsigned)(fz_rand(&rng) % 256);
    off[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    memcpy(flipped, REF_PREFIX, 7);
    for (size_t i = 0; i < 32; i++)
        snprintf(flipped + 7 + 2 * i, 3, "%02x", off[i]);

    unsigned nfields = (flags >> 1) & 3;
    if (nfields == 3)
        nfields = 1;
    const char *vals[2] = {sig, right};
    size_t lens[2] = {siglen, REF_SIGLEN};
    run_request(conf, header, vals, lens, nfields, body, blen, mac, &rng);
    vals[0] = right;
    lens[0] = REF_SIGLEN;
    run_request(conf, header, vals, lens, 1, body, blen, mac, &rng);
    vals[0] = flipped;
    run_request(conf, header, vals, lens, 1, body, blen, mac, &rng);

    portcullis_plugin.fini(conf);
    free(text);
    return 0;
}
