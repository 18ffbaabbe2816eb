/*
 * fuzz_health_status.c — libFuzzer target for the status line of an active
 * health check's answer (pc_health_status_code), read from whatever the
 * upstream sent, possibly cut short.
 *
 * Invariants (abort on violation):
 *  - the code is -1 or 0..999, and is the three digits at offset 9 exactly
 *    when the answer has 12 bytes or more, starts "HTTP/1.", and has a
 *    space at offset 8 and digits at 9..11;
 *  - only the first 12 bytes matter: every longer prefix gives the same
 *    answer, and any shorter one -1;
 *  - the parser never reads past n (the input is copied to a buffer of
 *    exactly n bytes).
 */
#include <string.h>

#include "fuzz_common.h"
#include "health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    FZ_ASSERT(s);
    memcpy(s, data, size);
    int want = -1;
    if (size >= 12 && memcmp(s, "HTTP/1.", 7) == 0 && s[8] == ' ') {
        want = 0;
        for (int i = 9; i < 12 && want >= 0; i++)
            want = s[i] >= '0' && s[i] <= '9' ? want * 10 + (s[i] - '0') : -1;
    }
    int got = pc_health_status_code(s, size);
    FZ_ASSERT(got == want);
    FZ_ASSERT(got >= -1 && got <= 999);
    for (size_t n = 0; n < size && n < 16; n++) {
        char *p = malloc(n ? n : 1);
        FZ_ASSERT(p);
        memcpy(p, data, n);
        int g = pc_health_status_code(p, n);
        FZ_ASSERT(n < 12 ? g == -1 : g == got);
        free(p);
    }
    free(s);
    return 0;
}
