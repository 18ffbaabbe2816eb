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
        if (m)
            e->msgs = m;
        unsigned char *w = m ? realloc(e->is_warning, cap) : NULL;
        if (w)
            e->is_warning = w;
        int *l = w ? realloc(e->lines, cap * sizeof(int)) : NULL;
        if (!l) {
            e->lost += !warning;
            return;
        }
        e->lines = l;
        e->cap = cap;
    }
    char *copy = strdup(msg);
    if (!copy) {
        e->lost += !warning;
        return;
    }
    e->is_warning[e->n] = (unsigned char)warning;
    e->lines[e->n] = line;
    e->msgs[e->n++] = copy;
    e->warnings += (size_t)warning;
}

void pc_errlist_add(pc_errlist_t *e, const char *file, int line, const char *path, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(e, 0, file, line, path, fmt, ap);
    va_end(ap);
}

void pc_errlist_warn(pc_errlist_t *e, const char *file, int line, const char *path, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(e, 1, file, line, path, fmt, ap);
    va_end(ap);
}

void pc_errlist_sort(pc_errlist_t *e)
{
    for (size_t i = 1; i < e->n; i++) { /* insertion sort: stable, lists are short */
        for (size_t j = i; j > 0 && e->lines[j - 1] > e->lines[j]; j--) {
            char *m = e->msgs[j];
            unsigned char w = e->is_warning[j];
            int l = e->lines[j];
            e->msgs[j] = e->msgs[j - 1], e->is_warning[j] = e->is_warning[j - 1];
            e->lines[j] = e->lines[j - 1];
            e->msgs[j - 1] = m, e->is_warning[j - 1] = w, e->lines[j - 1] = l;
        }
    }
}

size_t pc_errlist_errors(const pc_errlist_t *e)
{
    return e->n - e->warnings + e->lost;
}

void pc_errlist_free(pc_errlist_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    free(e->is_warning);
    free(e->lines);
    memset(e, 0, sizeof(*e));
}
