/*
 * test.h — the unit-test harness: each test file defines TEST(name) functions
 * and one RUN_TESTS(...) list. Failures print FILE:LINE and the expression,
 * and the binary exits non-zero if any check failed.
 */
#ifndef PC_TEST_H
#define PC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;
static const char *test_current;

#define TEST(name) static void test_##name(void)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(expr)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, test_current,     \
                    #expr);                                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        test_checks++;                                                                             \
        if (va_ != vb_) {                                                                          \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__,   \
                    test_current, #a, va_, #b, vb_);                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        test_checks++;                                                                             \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                               \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__,     \
                    test_current, #a, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                 \
        }                                                                                          \
    } while (0)

/* Compares a (pointer, length) slice with a C string. */
#define CHECK_SLICE(p, n, s)                                                                       \
    do {                                                                                           \
        const char *sp_ = (const char *)(p), *ss_ = (s);                                           \
        size_t sn_ = (size_t)(n);                                                                  \
        test_checks++;                                                                             \
        if (strlen(ss_) != sn_ || (sn_ && memcmp(sp_, ss_, sn_) != 0)) {                           \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s: slice \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__,   \
                    test_current, (int)sn_, sp_ ? sp_ : "", ss_);                                  \
        }                                                                                          \
    } while (0)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        test_current = #name;                                                                      \
        test_##name();                                                                             \
    } while (0)

#define TEST_MAIN(...)                                                                             \
    int main(void)                                                                                 \
    {                                                                                              \
        __VA_ARGS__;                                                                               \
        printf("%s: %d checks, %d failures\n", __FILE__, test_checks, test_failures);              \
        return test_failures ? 1 : 0;                                                              \
    }

#endif
