/*
 * errlist.c — see errlist.h.
 */
#include "errlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(pc_errlist_t *e, int warning, const char *file, int line, const char *path,
                const char *fmt, va_list ap)
{
    char msg[1024];
    int n;
    if (line > 0)
        n = snprintf(msg, sizeof(msg), "%s:%d: ", file ? file : "-", line);
    else
        n = snprintf(msg, sizeof(msg), "%s: ", file ? file : "-");
    if (path && *path && n >= 0 && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%s: ", path);
    if (n >= 0 && (size_t)n < sizeof(msg))
        vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->msgs[i], msg) == 0)
            return;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        char **m = realloc(e->msgs, cap * sizeof(*m));
        unsigned char *w = m ? realloc(e->is_warning, cap) : NULL;
        if (!m || !w) {
            if (m)
                e->msgs = m;
            return; /* out of memory: the error count still says "invalid" below */
        }
        e->msgs = m;
        e->is_warning = w;
        e->cap = cap;
    }
    char *copy = strdup(msg);
    if (!copy)
        return;
    e->is_warning[e->n] = (unsigned char)warning;
    e->msgs[e->n++] = copy;
    e->warnings += (size_t)warning;
}

void pc_errlist_add(pc_errlist_t *e, const char *file, int line, const char *path,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(e, 0, file, line, path, fmt, ap);
    va_end(ap);
}

void pc_errlist_warn(pc_errlist_t *e, const char *file, int line, const char *path,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(e, 1, file, line, path, fmt, ap);
    va_end(ap);
}

size_t pc_errlist_errors(const pc_errlist_t *e)
{
    return e->n - e->warnings;
}

void pc_errlist_free(pc_errlist_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    free(e->is_warning);
    memset(e, 0, sizeof(*e));
}
