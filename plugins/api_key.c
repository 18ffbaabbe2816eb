/*
 * api_key.c — admits requests that carry a known API key.
 *
 * Keys are never stored: the keys file lists, one per line, a name and the
 * SHA-256 (hex) of that client's key,
 *
 *     # name        sha256 of the key
 *     billing-svc   2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
 *
 * (blank lines and lines starting with # are ignored). The file is read when
 * the configuration loads, so a SIGHUP picks up an edited file. A request
 * without the key header, with more than one, or with a key whose digest is
 * not listed is answered 401. A known key sets the request's identity to
 * the key's name (the access log's `user`) and, unless forward_name is off,
 * sends the name upstream in X-Api-Key-Name; a client-sent copy of that
 * header is always removed.
 *
 * Lookup is a binary search over the sorted digests: its timing depends on
 * the SHA-256 of what the client sent, which tells an attacker nothing about
 * any listed key.
 *
 * Config:
 *   keys_file     (required) the file described above
 *   header        the header carrying the key, default X-Api-Key
 *   forward_name  the header that carries the name upstream, default
 *                 X-Api-Key-Name; off to send none
 *   hide_key      true: the key header is not forwarded upstream (default false)
 *
 * Counters: accepted, missing_key, unknown_key.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <portcullis/plugin.h>

#define DIGEST_LEN   32
#define NAME_MAX_LEN 64
#define LINE_MAX_LEN 512

typedef struct {
    unsigned char digest[DIGEST_LEN];
    char name[NAME_MAX_LEN + 1];
    unsigned line;
} api_key_t;

typedef struct {
    const portcullis_host_t *host;
    char *header;
    char *forward_name; /* NULL: off */
    int hide_key;
    api_key_t *keys; /* sorted by digest */
    size_t nkeys;
    portcullis_counter_t *accepted, *missing, *unknown;
} conf_t;

static void conf_free(conf_t *c)
{
    if (!c)
        return;
    free(c->header);
    free(c->forward_name);
    free(c->keys);
    free(c);
}

static void fini(void *conf)
{
    conf_free(conf);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == '@' || ch == ':';
}

static int by_digest(const void *a, const void *b)
{
    return memcmp(((const api_key_t *)a)->digest, ((const api_key_t *)b)->digest, DIGEST_LEN);
}

/* Parses one line into k: 1 for a key, 0 for a blank or comment line, -1
 * when malformed. */
static int parse_line(char *s, api_key_t *k)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || *s == '#')
        return 0;
    size_t n = 0;
    while (name_char(s[n]))
        n++;
    if (n == 0 || n > NAME_MAX_LEN || (s[n] != ' ' && s[n] != '\t'))
        return -1;
    memcpy(k->name, s, n);
    k->name[n] = '\0';
    s += n;
    while (*s == ' ' || *s == '\t')
        s++;
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int hi = hexval(s[2 * i]), lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        k->digest[i] = (unsigned char)(hi << 4 | lo);
    }
    s += 2 * DIGEST_LEN;
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0' ? 1 : -1;
}

/* Reads path into c->keys; 0, or -1 with a message naming path:line. */
static int load_keys(conf_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "keys_file: cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[LINE_MAX_LEN + 2];
    size_t cap = 0;
    unsigned no = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        no++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        else if (!feof(f)) {
            snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, no, LINE_MAX_LEN);
            rc = -1;
            break;
        }
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        api_key_t k;
        int got = parse_line(line, &k);
        if (got < 0) {
            snprintf(err, errlen,
                     "%s:%u: expected NAME SHA256-HEX (a name of [A-Za-z0-9_.@:-] and "
                     "the 64 hex digits of the key's SHA-256)",
                     path, no);
            rc = -1;
        } else if (got > 0) {
            if (c->nkeys == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                api_key_t *nk = realloc(c->keys, ncap * sizeof(*nk));
                if (!nk) {
                    snprintf(err, errlen, "out of memory");
                    rc = -1;
                    break;
                }
                c->keys = nk;
                cap = ncap;
            }
            k.line = no;
            c->keys[c->nkeys++] = k;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "keys_file: cannot read '%s'", path);
        rc = -1;
    }
    fclose(f);
    if (rc != 0 || c->nkeys == 0)
        return rc;
    qsort(c->keys, c->nkeys, sizeof(*c->keys), by_digest);
    for (size_t i = 1; i < c->nkeys; i++) {
        if (memcmp(c->keys[i - 1].digest, c->keys[i].digest, DIGEST_LEN) == 0) {
            const api_key_t *a = &c->keys[i - 1], *b = &c->keys[i];
            snprintf(err, errlen, "%s:%u: the same key is already listed on line %u", path,
                     a->line > b->line ? a->line : b->line, a->line < b->line ? a->line : b->line);
            return -1;
        }
    }
    return 0;
}

static int init(const portcullis_host_t *host, const portcullis_node_t *config, void **out,
                char *err, size_t errlen)
{
    static const char *const known[] = {"keys_file", "header", "forward_name", "hide_key"};
    for (size_t i = 0; i < host->node_len(config); i++) {
        const char *k = host->node_key(config, i);
        int ok = 0;
        for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
            ok |= strcmp(k, known[j]) == 0;
        if (!ok) {
            snprintf(err, errlen,
                     "unknown key '%s' (expected keys_file, header, forward_name, "
                     "hide_key)",
                     k);
            return -1;
        }
    }
    const char *file = host->node_str(host->node_get(config, "keys_file"));
    const char *header = host->node_str(host->node_get(config, "header"));
    const char *fwd = host->node_str(host->node_get(config, "forward_name"));
    const char *hide = host->node_str(host->node_get(config, "hide_key"));
    if (!file || !*file) {
        snprintf(err, errlen, "keys_file is required");
        return -1;
    }
    if ((host->node_get(config, "header") && (!header || !portcullis_is_token(header))) ||
        (host->node_get(config, "forward_name") && (!fwd || !portcullis_is_token(fwd)))) {
        snprintf(err, errlen,
                 "header and forward_name must be header names (tokens, e.g. X-Api-Key)");
        return -1;
    }
    if (hide && strcmp(hide, "true") != 0 && strcmp(hide, "false") != 0) {
        snprintf(err, errlen, "hide_key: '%s' is not a boolean (true or false)", hide);
        return -1;
    }
    conf_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->host = host;
    c->hide_key = hide && strcmp(hide, "true") == 0;
    c->header = strdup(header ? header : "X-Api-Key");
    if (!fwd)
        fwd = "X-Api-Key-Name";
    c->forward_name = strcmp(fwd, "off") == 0 ? NULL : strdup(fwd);
    if (!c->header || (strcmp(fwd, "off") != 0 && !c->forward_name)) {
        snprintf(err, errlen, "out of memory");
        conf_free(c);
        return -1;
    }
    if (load_keys(c, file, err, errlen) != 0) {
        conf_free(c);
        return -1;
    }
    if (c->nkeys == 0)
        host->log(host, NULL, PORTCULLIS_LOG_WARN, "%s lists no key: every request is refused",
                  file);
    c->accepted = host->counter(host, "accepted");
    c->missing = host->counter(host, "missing_key");
    c->unknown = host->counter(host, "unknown_key");
    *out = c;
    return 0;
}

static const api_key_t *lookup(const conf_t *c, const unsigned char *digest)
{
    size_t lo = 0, hi = c->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(digest, c->keys[mid].digest, DIGEST_LEN);
        if (cmp == 0)
            return &c->keys[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static portcullis_rc_t refuse(portcullis_req_t *r, const conf_t *c, portcullis_counter_t *why,
                              const char *error)
{
    c->host->count(why, 1);
    return c->host->respond(r, 401, error) == 0 ? PORTCULLIS_RESPOND : PORTCULLIS_ERROR;
}

static portcullis_rc_t on_headers(portcullis_req_t *r, const void *conf, void *state)
{
    const conf_t *c = conf;
    const portcullis_host_t *h = c->host;
    (void)state;
    size_t n, n2;
    const char *key = h->request_header(r, c->header, 0, &n);
    if (!key || n == 0)
        return refuse(r, c, c->missing, "missing_api_key");
    if (h->request_header(r, c->header, 1, &n2))
        return refuse(r, c, c->unknown, "invalid_api_key");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (!EVP_Digest(key, n, digest, &dl, EVP_sha256(), NULL) || dl != DIGEST_LEN)
        return PORTCULLIS_ERROR;
    const api_key_t *k = lookup(c, digest);
    if (!k)
        return refuse(r, c, c->unknown, "invalid_api_key");
    if (c->forward_name) {
        h->request_header_remove(r, c->forward_name);
        if (h->request_header_add(r, c->forward_name, k->name) != 0)
            return PORTCULLIS_ERROR;
    }
    if (c->hide_key)
        h->request_header_remove(r, c->header);
    if (h->set_identity(r, k->name) != 0)
        return PORTCULLIS_ERROR;
    h->count(c->accepted, 1);
    return PORTCULLIS_CONTINUE;
}

const portcullis_plugin_t portcullis_plugin = {
    .abi = PORTCULLIS_PLUGIN_ABI,
    .name = "api_key",
    .state_size = 0,
    .init = init,
    .fini = fini,
    .request_headers = on_headers,
};
