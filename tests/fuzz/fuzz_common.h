/*
 * fuzz_common.h — helpers shared by the libFuzzer targets: an invariant check
 * that aborts (so libFuzzer and the replay driver both see a crash), and a
 * small deterministic PRNG seeded from the input, used to pick limits and
 * split points so that one input always takes the same path.
 */
#ifndef PC_FUZZ_COMMON_H
#define PC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_ASSERT(x)                                                                  \
    do {                                                                              \
        if (!(x)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #x); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* FNV-1a of the input: the seed of every choice the target makes. */
static inline uint64_t fz_seed(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ULL;
    return h | 1;
}

/* xorshift64* */
static inline uint64_t fz_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Next split step: mostly small, sometimes large, so both byte-level and
 * bulk arrival are exercised. */
static inline size_t fz_step(uint64_t *s)
{
    uint64_t r = fz_rand(s);
    switch (r & 3) {
    case 0:
        return 1;
    case 1:
        return 1 + (size_t)((r >> 8) % 8);
    case 2:
        return 1 + (size_t)((r >> 8) % 64);
    default:
        return 1 + (size_t)((r >> 8) % 1024);
    }
}

static inline int fz_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

/* A non-empty string of tchars: a header field name. */
static inline int fz_is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!fz_is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* 1 when [p, p+n) lies inside [base, base+len) (an empty slice always does). */
static inline int fz_inside(const char *p, size_t n, const char *base, size_t len)
{
    return n == 0 || (p >= base && p <= base + len && n <= (size_t)(base + len - p));
}

#endif
