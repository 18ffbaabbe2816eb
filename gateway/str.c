/*
 * str.c — byte-slice helpers shared by the parser, config and logs.
 */
#include "str.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <time.h>

int pc_str_ieq(pc_str_t a, pc_str_t b)
{
    if (a.n != b.n)
        return 0;
    for (size_t i = 0; i < a.n; i++)
        if (a.p[i] != b.p[i] && pc_lower((unsigned char)a.p[i]) != pc_lower((unsigned char)b.p[i]))
            return 0;
    return 1;
}

int pc_str_ieq_c(pc_str_t a, const char *lit)
{
    return pc_str_ieq(a, pc_str_cstr(lit));
}

int pc_str_to_u64(pc_str_t s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0)
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return -1;
        if (d > max || v > (max - d) / 10) /* d > max: max - d would wrap */
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

void pc_suggest_offer(pc_suggest_t *s, const char *want, const char *candidate)
{
    unsigned d = pc_edit_distance(want, candidate);
    if (d < s->dist) {
        s->dist = d;
        s->best = candidate;
    }
}

const char *pc_suggest_best(const pc_suggest_t *s, unsigned max_dist)
{
    return s->dist <= max_dist ? s->best : NULL;
}

unsigned pc_edit_distance(const char *a, const char *b)
{
    unsigned char row[65];
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 255;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned char diag = row[0];
        row[0] = (unsigned char)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned char up = row[j];
            unsigned cost = pc_lower((unsigned char)a[i - 1]) != pc_lower((unsigned char)b[j - 1]);
            unsigned v = diag + cost;
            if (up + 1u < v)
                v = up + 1u;
            if (row[j - 1] + 1u < v)
                v = row[j - 1] + 1u;
            row[j] = (unsigned char)(v > 255 ? 255 : v);
            diag = up;
        }
    }
    return row[lb];
}

size_t pc_u64_dec(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int pc_str_index(const char *const *names, int count, pc_str_t s)
{
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == s.n && memcmp(names[i], s.p, s.n) == 0)
            return i;
    return -1;
}

static uint64_t hash_seed;

static void seed_once(void)
{
    if (RAND_bytes((unsigned char *)&hash_seed, sizeof(hash_seed)) != 1)
        hash_seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
}

uint64_t pc_hash_keyed(const void *data, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, seed_once);
    const unsigned char *p = data;
    uint64_t h = hash_seed ^ (n * 0x9E3779B97F4A7C15ull);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

void pc_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0xc2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xe0)
        len = 2, cp = c & 0x1f;
    else if (c < 0xf0)
        len = 3, cp = c & 0x0f;
    else if (c < 0xf5)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Printable ASCII that JSON strings carry as is: most of what is logged. */
static const unsigned char json_plain[256] = {
    ['\x20' ... '\x21'] = 1, /* not '"' (0x22) */
    ['\x23' ... '\x5b'] = 1, /* not '\\' (0x5c) */
    ['\x5d' ... '\x7e'] = 1,
};

size_t pc_json_escape(const char *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        /* a run of plain bytes is copied in one go */
        size_t j = i;
        while (j < n && json_plain[(unsigned char)s[j]])
            j++;
        if (j > i) {
            size_t run = j - i <= cap - o ? j - i : cap - o;
            memcpy(out + o, s + i, run);
            o += run;
            i += run;
            if (i < j)
                break; /* out of room */
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t el = 0, adv = 1;
        const char *src = esc;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, el = 2;
        } else if (c == '\n') {
            esc[0] = '\\', esc[1] = 'n', el = 2;
        } else if (c == '\r') {
            esc[0] = '\\', esc[1] = 'r', el = 2;
        } else if (c == '\t') {
            esc[0] = '\\', esc[1] = 't', el = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], el = 6;
        } else if (c < 0x80) {
            esc[0] = (char)c, el = 1;
        } else if ((adv = utf8_len((const unsigned char *)s + i, n - i)) > 0) {
            src = s + i, el = adv;
        } else {
            /* not UTF-8: show the byte, never emit invalid JSON */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], el = 6, adv = 1;
        }
        if (o + el > cap)
            break;
        memcpy(out + o, src, el);
        o += el;
        i += adv;
    }
    return o;
}

void pc_wb_u64(pc_wbuf_t *w, uint64_t v)
{
    char d[20];
    pc_wb_put(w, d, pc_u64_dec(v, d));
}

void pc_wb_json(pc_wbuf_t *w, const char *s, size_t n, size_t max)
{
    if (n > max)
        n = max;
    size_t room = w->n < w->cap ? w->cap - w->n : 0;
    if (room / 6 >= n) /* an escaped byte takes at most 6 */
        w->n += pc_json_escape(s, n, w->p + w->n, room);
    else
        w->n = w->cap + 1; /* may not fit: overflow rather than cut an escape */
}
