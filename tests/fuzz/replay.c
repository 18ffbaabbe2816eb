/*
 * replay.c — runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs
 * without libFuzzer, so every corpus file is a regression test in a plain
 * gcc build (link this file with one target and the gateway sources).
 *
 * Usage: replay FILE|DIR...   (directories are read one level deep; hidden
 * files are skipped). A target signals a failed invariant by aborting, so
 * reaching the end means no input crashed: prints the count and exits 0.
 * Exits 2 on usage or I/O errors.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_HAS_ASAN 1
#endif
#endif
#ifndef REPLAY_HAS_ASAN
#define REPLAY_HAS_ASAN 0
#endif

/* The input being replayed, named by the crash handler. */
static const char *current;

static void on_crash(int sig)
{
    static const char msg[] = "replay: crashed on input ";
    if (current) {
        ssize_t rc = write(2, msg, sizeof(msg) - 1);
        rc = write(2, current, strlen(current));
        rc = write(2, "\n", 1);
        (void)rc;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            fprintf(stderr, "%s: out of memory\n", path);
            return -1;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *grown = realloc(buf, cap);
        if (!grown)
            free(buf);
        buf = grown;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return -1;
    }
    /* an exact-size copy, so a sanitizer build catches reads past the end */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    current = path;
    LLVMFuzzerTestOneInput(exact, n);
    current = NULL;
    free(exact);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file in dir, in name order; returns the count or -1. */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (nn == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof(*names));
            if (!grown)
                break;
            names = grown;
        }
        names[nn] = strdup(e->d_name);
        if (names[nn])
            nn++;
    }
    closedir(d);
    if (nn)
        qsort(names, nn, sizeof(*names), cmp_names);
    int count = 0;
    for (size_t i = 0; i < nn; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        struct stat st;
        if (path) {
            snprintf(path, len, "%s/%s", dir, names[i]);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path) != 0)
                    count = -1;
                else if (count >= 0)
                    count++;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    int total = 0, failed = 0;
    signal(SIGABRT, on_crash);
#if !defined(__SANITIZE_ADDRESS__) && !REPLAY_HAS_ASAN
    /* AddressSanitizer reports these itself, with more to say */
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
#endif
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int n = replay_dir(argv[i]);
            if (n < 0)
                failed = 1;
            else
                total += n;
        } else if (replay_file(argv[i]) == 0) {
            total++;
        } else {
            failed = 1;
        }
    }
    printf("%s: replayed %d inputs, none crashed\n", argv[0], total);
    return failed ? 2 : 0;
}
