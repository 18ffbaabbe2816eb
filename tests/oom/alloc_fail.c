/*
 * alloc_fail.c — allocation failures on demand, for the allocation-failure
 * build of the gateway (build/san/portcullis-oom, docs/internals/memory.md).
 *
 * That build links the gateway's objects with -Wl,--wrap=malloc (and calloc,
 * realloc, strdup, strndup): every call the gateway's own code makes to one
 * of them lands here, while the libraries' internal allocations (libevent,
 * OpenSSL, jansson, libyaml, PCRE2, hiredis) go straight to the allocator.
 * A block taken from a worker's block cache (arena.h) counts as an
 * allocation too. Nothing fails unless the environment asks for it:
 *
 *   PORTCULLIS_FAIL_ALLOC_EVERY=N  once the gateway serves (pc_test_serving),
 *                                  every Nth allocation fails
 *   PORTCULLIS_FAIL_ALLOC_AT=K     the Kth allocation since the process
 *                                  started fails (once): start-up and its
 *                                  error paths
 *   PORTCULLIS_FAIL_ALLOC_TRACE=1  each failure prints its call stack
 *
 * A failed call returns NULL with errno ENOMEM, as the allocator would. At
 * exit one line on stderr says how many calls were made and how many failed,
 * so that a test can tell the failures did happen.
 */
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "arena.h"
#include "server.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static unsigned long fail_every; /* 0: never */
static unsigned long fail_at;    /* 0: never */
static int trace;
static unsigned long calls;  /* every allocation (atomic) */
static unsigned long served; /* allocations once serving (atomic) */
static unsigned long failed; /* allocations made to fail (atomic) */

/* Whether this allocation is one to fail; counts it either way. */
static int should_fail(void)
{
    unsigned long k = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    int fail = k == fail_at;
    if (__atomic_load_n(&pc_test_serving, __ATOMIC_ACQUIRE)) {
        unsigned long s = __atomic_add_fetch(&served, 1, __ATOMIC_RELAXED);
        fail |= fail_every && s % fail_every == 0;
    }
    if (fail) {
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
        if (trace) {
            fprintf(stderr, "alloc-fail: allocation %lu fails here:\n", k);
            __sanitizer_print_stack_trace();
        }
        errno = ENOMEM;
    }
    return fail;
}

static unsigned long env_count(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end) {
        fprintf(stderr, "alloc-fail: %s=%s is not a count, ignored\n", name, v);
        return 0;
    }
    return n;
}

__attribute__((constructor)) static void alloc_fail_init(void)
{
    fail_every = env_count("PORTCULLIS_FAIL_ALLOC_EVERY");
    fail_at = env_count("PORTCULLIS_FAIL_ALLOC_AT");
    trace = env_count("PORTCULLIS_FAIL_ALLOC_TRACE") != 0;
    pc_test_block_fails = should_fail;
}

__attribute__((destructor)) static void alloc_fail_report(void)
{
    if (fail_every || fail_at)
        fprintf(stderr, "alloc-fail: %lu of %lu allocations failed (%lu while serving)\n",
                __atomic_load_n(&failed, __ATOMIC_RELAXED),
                __atomic_load_n(&calls, __ATOMIC_RELAXED),
                __atomic_load_n(&served, __ATOMIC_RELAXED));
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    /* realloc(p, 0) frees: not an allocation that can fail */
    if (n && should_fail())
        return NULL;
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return should_fail() ? NULL : __real_strndup(s, n);
}
