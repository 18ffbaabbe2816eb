/*
 * fuzz_api_key.c — libFuzzer target for the api_key plugin's keys file
 * (load_keys, parse_line) and its digest lookup. The plugin's source is
 * compiled into the target (its parsers are static); the input, without its
 * NUL bytes, is the file.
 *
 * Invariants (abort on violation):
 *  - the file loads exactly when a reference reading written here accepts
 *    it: every line of at most 512 bytes (a final CR dropped) is blank, a
 *    '#' comment, or NAME SHA256-HEX with a name of 1..64 bytes of
 *    [A-Za-z0-9_.@:-], 64 hex digits in either case and blanks (space, tab)
 *    around them; no digest is listed twice; a refusal says why;
 *  - loaded: the keys are the reference's, sorted by digest, each with its
 *    name and line; lookup finds every listed digest (with its name) and
 *    no digest one bit away from a listed one unless that one is listed.
 */
#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../plugins/api_key.c"
#include "fuzz_common.h"

typedef struct {
    unsigned char d[DIGEST_LEN];
    char name[NAME_MAX_LEN + 1];
    unsigned line;
} ref_key_t;

static int ref_hex(char c)
{
    return (c >= '0' && c <= '9') ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
}

/* 1 key, 0 nothing, -1 malformed; s[0, n) without its line end */
static int ref_line(const char *s, size_t n, ref_key_t *k)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n || s[i] == '#')
        return 0;
    size_t a = i;
    while (i < n && (isalnum((unsigned char)s[i]) || strchr("_-.@:", s[i])))
        i++;
    size_t nl = i - a;
    if (nl == 0 || nl > NAME_MAX_LEN || i == n || (s[i] != ' ' && s[i] != '\t'))
        return -1;
    memcpy(k->name, s + a, nl);
    k->name[nl] = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (n - i < 2 * DIGEST_LEN)
        return -1;
    for (size_t b = 0; b < DIGEST_LEN; b++) {
        int hi = ref_hex(s[i + 2 * b]), lo = ref_hex(s[i + 2 * b + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        k->d[b] = (unsigned char)(hi * 16 + lo);
    }
    i += 2 * DIGEST_LEN;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == n ? 1 : -1;
}

static ref_key_t refs[4096];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    FZ_ASSERT(text);
    size_t tn = 0;
    for (size_t i = 0; i < size; i++)
        if (data[i])
            text[tn++] = (char)data[i];

    /* reference reading */
    size_t nref = 0;
    int want = 1;
    unsigned no = 0;
    for (size_t s = 0; s < tn && want;) {
        const char *nl = memchr(text + s, '\n', tn - s);
        size_t e = nl ? (size_t)(nl - text) : tn;
        size_t n = e - s;
        no++;
        if (n > LINE_MAX_LEN) {
            want = 0;
            break;
        }
        if (n && text[s + n - 1] == '\r')
            n--;
        ref_key_t k;
        int got = ref_line(text + s, n, &k);
        if (got < 0)
            want = 0;
        else if (got > 0) {
            k.line = no;
            refs[nref++] = k;
        }
        s = e + 1;
    }
    for (size_t i = 0; want && i < nref; i++)
        for (size_t j = 0; want && j < i; j++)
            if (memcmp(refs[i].d, refs[j].d, DIGEST_LEN) == 0)
                want = 0;

    int fd = memfd_create("fuzz-keys", 0);
    FZ_ASSERT(fd >= 0);
    FZ_ASSERT(write(fd, text, tn) == (ssize_t)tn);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    conf_t c;
    memset(&c, 0, sizeof(c));
    char err[256] = "";
    int rc = load_keys(&c, path, err, sizeof(err));
    close(fd);
    FZ_ASSERT((rc == 0) == want);
    if (rc != 0) {
        FZ_ASSERT(err[0]);
    } else {
        FZ_ASSERT(c.nkeys == nref);
        for (size_t i = 1; i < c.nkeys; i++)
            FZ_ASSERT(memcmp(c.keys[i - 1].digest, c.keys[i].digest, DIGEST_LEN) < 0);
        for (size_t i = 0; i < nref; i++) {
            const api_key_t *k = lookup(&c, refs[i].d);
            FZ_ASSERT(k && strcmp(k->name, refs[i].name) == 0 && k->line == refs[i].line);
            unsigned char near[DIGEST_LEN];
            memcpy(near, refs[i].d, DIGEST_LEN);
            near[i % DIGEST_LEN] ^= (unsigned char)(1u << (i % 8));
            int listed = 0;
            for (size_t j = 0; j < nref; j++)
                listed |= memcmp(refs[j].d, near, DIGEST_LEN) == 0;
            FZ_ASSERT(!!lookup(&c, near) == listed);
        }
    }
    free(c.keys);
    free(text);
    return 0;
}
