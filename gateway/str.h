/*
 * str.h — byte slices and the few string primitives the gateway needs.
 *
 * A pc_str_t never owns its bytes: it points into a buffer owned by someone
 * else (a connection buffer, an arena, the config pool) and is valid only as
 * long as that owner keeps the bytes in place.
 */
#ifndef PC_STR_H
#define PC_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pc_str_s {
    const char *p;
    size_t n;
} pc_str_t;

#define PC_STR(lit) ((pc_str_t){(lit), sizeof(lit) - 1})
#define PC_STR_NULL ((pc_str_t){NULL, 0})

static inline pc_str_t pc_str_make(const char *p, size_t n)
{
    return (pc_str_t){p, n};
}

static inline pc_str_t pc_str_cstr(const char *s)
{
    return (pc_str_t){s, s ? strlen(s) : 0};
}

static inline int pc_str_eq(pc_str_t a, pc_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline unsigned char pc_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* dst[0..n) = src[0..n) with ASCII letters lowered, eight bytes a step:
 * a byte's top bit marks A-Z (at least 'A' and not past 'Z', computed
 * on its low seven bits so no carry crosses bytes; bytes >= 0x80 stay),
 * and moves to 0x20. */
static inline void pc_lower_copy(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, low;
        memcpy(&x, src + i, 8);
        low = x & 0x7f7f7f7f7f7f7f7full;
        x |= (((low + 0x3f3f3f3f3f3f3f3full) ^ (low + 0x2525252525252525ull)) & ~x &
              0x8080808080808080ull) >>
             2;
        memcpy(dst + i, &x, 8);
    }
    for (; i < n; i++)
        dst[i] = (char)pc_lower((unsigned char)src[i]);
}

/* ASCII case-insensitive equality of two slices. */
int pc_str_ieq(pc_str_t a, pc_str_t b);

/* ASCII case-insensitive equality of a slice and a NUL-terminated literal. */
int pc_str_ieq_c(pc_str_t a, const char *lit);

/* 1 when a starts with prefix (case-sensitive). */
static inline int pc_str_has_prefix(pc_str_t a, pc_str_t prefix)
{
    return a.n >= prefix.n && memcmp(a.p, prefix.p, prefix.n) == 0;
}

/* Parses a non-empty run of decimal digits into *out; 0 on success, -1 on any
 * other byte, emptiness or overflow past max. */
int pc_str_to_u64(pc_str_t s, uint64_t max, uint64_t *out);

/* Levenshtein distance between two short NUL-terminated strings, capped at
 * 255; used for "did you mean" hints. */
unsigned pc_edit_distance(const char *a, const char *b);

/* "Did you mean": offer the candidates one by one, then take the closest if
 * it is within max_dist edits (NULL otherwise). Start from {NULL, 255}. */
typedef struct pc_suggest_s {
    const char *best;
    unsigned dist;
} pc_suggest_t;
#define PC_SUGGEST_INIT \
    {                   \
        NULL, 255       \
    }
void pc_suggest_offer(pc_suggest_t *s, const char *want, const char *candidate);
const char *pc_suggest_best(const pc_suggest_t *s, unsigned max_dist);

/* Writes v in decimal into out (at least 20 bytes, no NUL); returns the
 * length. The request path's replacement for snprintf("%llu"). */
size_t pc_u64_dec(uint64_t v, char *out);

/* The value of a hexadecimal digit, or -1. */
static inline int pc_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The index of the name equal to s (case-sensitive) among count names,
 * or -1: the lookup behind every "name -> enum" table. */
int pc_str_index(const char *const *names, int count, pc_str_t s);

/* A 64-bit hash keyed with a per-process random seed: for tables whose keys
 * clients choose (token cache, rate-limit keys), so that nobody can aim
 * collisions at one slot. Not cryptographic: compare keys in full. */
uint64_t pc_hash_keyed(const void *p, size_t n);

/* Writes the lowercase hex form of n bytes into out (2n chars, no NUL). */
void pc_hex_encode(const unsigned char *in, size_t n, char *out);

/* Appends s to out as JSON string contents (no surrounding quotes), escaping
 * quotes, backslashes, control bytes and bytes >= 0x80 that are not valid
 * UTF-8. Writes at most cap bytes; returns the number written. Output is
 * truncated at a character boundary when cap is reached. */
size_t pc_json_escape(const char *s, size_t n, char *out, size_t cap);

/*
 * A saturating writer into a buffer born with its size: writes past the
 * capacity are dropped and remembered, so a caller builds a whole message
 * and checks pc_wb_ok() once. Used for the heads the gateway writes, its
 * local replies and its log lines.
 */
typedef struct pc_wbuf_s {
    char *p;
    size_t n; /* bytes written (may exceed cap: overflow) */
    size_t cap;
} pc_wbuf_t;

static inline void pc_wb_put(pc_wbuf_t *w, const void *s, size_t n)
{
    if (n && n <= w->cap && w->n <= w->cap - n) /* n == 0: s may be NULL */
        memcpy(w->p + w->n, s, n);
    w->n += n;
}

static inline void pc_wb_str(pc_wbuf_t *w, pc_str_t s)
{
    pc_wb_put(w, s.p, s.n);
}

static inline void pc_wb_cstr(pc_wbuf_t *w, const char *s)
{
    pc_wb_put(w, s, strlen(s));
}

static inline int pc_wb_ok(const pc_wbuf_t *w)
{
    return w->n <= w->cap;
}

void pc_wb_u64(pc_wbuf_t *w, uint64_t v);

/* Appends the first max bytes (at most) of s JSON-escaped, without quotes.
 * Overflows when the escaped text might not fit. */
void pc_wb_json(pc_wbuf_t *w, const char *s, size_t n, size_t max);

#endif
