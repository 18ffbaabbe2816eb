/*
 * errlist.h — collects every configuration error ("FILE:LINE: key.path:
 * message") so that -t and a failed reload report all of them, not only the
 * first. Identical messages are kept once.
 */
#ifndef PC_ERRLIST_H
#define PC_ERRLIST_H

#include <stddef.h>

typedef struct pc_errlist_s {
    char **msgs;
    size_t n;
    size_t cap;
    size_t warnings; /* messages that are warnings, not errors */
    size_t lost;     /* errors whose message could not be kept (out of memory): still errors */
    unsigned char *is_warning;
    int *lines; /* line of each message (0: none) */
} pc_errlist_t;

/* Adds "file:line: path: message". path may be NULL or empty (then omitted). */
void pc_errlist_add(pc_errlist_t *e, const char *file, int line, const char *path, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

/* Same, recorded as a warning: it does not make the configuration invalid. */
void pc_errlist_warn(pc_errlist_t *e, const char *file, int line, const char *path, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* Orders the messages by line number, keeping the order of equal lines. */
void pc_errlist_sort(pc_errlist_t *e);

/* Number of errors (warnings excluded). */
size_t pc_errlist_errors(const pc_errlist_t *e);

void pc_errlist_free(pc_errlist_t *e);

#endif
