/*
 * log.c — see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pc_logfile_t stderr_file = {"stderr", 2, 0};
static pc_logfile_t *error_file = &stderr_file;
static pc_log_level_e error_level = PC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int open_path(const char *path)
{
    if (strcmp(path, "stdout") == 0)
        return dup(1);
    if (strcmp(path, "stderr") == 0)
        return dup(2);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int pc_logfile_open(pc_logfile_t *f, const char *path)
{
    snprintf(f->path, sizeof(f->path), "%s", path);
    if (strcmp(path, "off") == 0) {
        f->fd = -1;
        return 0;
    }
    f->fd = open_path(path);
    if (f->fd < 0)
        return -1;
    struct stat st;
    f->is_pipe = fstat(f->fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
    return 0;
}

int pc_logfile_reopen(pc_logfile_t *f)
{
    if (f->fd < 0 || strcmp(f->path, "stdout") == 0 || strcmp(f->path, "stderr") == 0)
        return 0;
    int fd = open_path(f->path);
    if (fd < 0)
        return -1;
    int rc = dup2(fd, f->fd) < 0 ? -1 : 0;
    close(fd);
    return rc;
}

void pc_logfile_close(pc_logfile_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

void pc_log_set_error(pc_logfile_t *f, pc_log_level_e level)
{
    error_file = f ? f : &stderr_file;
    error_level = level;
}

size_t pc_time_iso(const struct timeval *tv, char *out)
{
    /* Formatting the date is most of the cost, and it changes once a
     * second: each thread keeps its last one. */
    static __thread time_t last_sec = -1;
    static __thread char last[20]; /* "2026-11-22T23:04:05" */
    if (tv->tv_sec != last_sec) {
        struct tm tm;
        time_t t = tv->tv_sec;
        gmtime_r(&t, &tm);
        int v[6] = {(tm.tm_year + 1900) % 10000,
                    tm.tm_mon + 1,
                    tm.tm_mday,
                    tm.tm_hour,
                    tm.tm_min,
                    tm.tm_sec};
        char *p = last;
        *p++ = (char)('0' + v[0] / 1000);
        *p++ = (char)('0' + v[0] / 100 % 10);
        for (int i = 0; i < 6; i++) {
            *p++ = (char)('0' + v[i] / 10 % 10);
            *p++ = (char)('0' + v[i] % 10);
            if (i < 5)
                *p++ = "--T::"[i]; /* 19 characters in all */
        }
        last_sec = tv->tv_sec;
    }
    int ms = (int)(tv->tv_usec / 1000);
    memcpy(out, last, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = 0;
    return 24;
}

size_t pc_time_http(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    return strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void pc_log(pc_log_level_e level, const char *subsys, const char *fmt, ...)
{
    if (level < error_level || error_file->fd < 0)
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    size_t n = pc_time_iso(&tv, line);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s [%s] ", level_names[level], subsys);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* one write per line: lines from different threads never interleave */
    ssize_t w = write(error_file->fd, line, n);
    (void)w;
}

int pc_logbuf_init(pc_logbuf_t *b, pc_logfile_t *file, size_t cap)
{
    b->file = file;
    b->len = 0;
    b->cap = cap;
    b->buf = malloc(cap);
    return b->buf ? 0 : -1;
}

void pc_logbuf_free(pc_logbuf_t *b)
{
    pc_logbuf_flush(b);
    free(b->buf);
    b->buf = NULL;
}

/* Writes buf[0, n) fully (a full disk or closed pipe loses lines, never
 * requests). */
static void write_all(int fd, const char *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

void pc_logbuf_flush(pc_logbuf_t *b)
{
    int fd = b->file->fd;
    if (fd >= 0 && !b->file->is_pipe) {
        /* O_APPEND: each write lands whole at the end of the file */
        write_all(fd, b->buf, b->len);
    } else if (fd >= 0) {
        /* Only writes of at most PIPE_BUF are atomic on a pipe: send whole
         * lines in such pieces, so workers' lines never interleave. */
        size_t off = 0;
        while (off < b->len) {
            size_t n = b->len - off;
            if (n > PIPE_BUF) {
                const char *cut = b->buf + off + PIPE_BUF;
                while (cut > b->buf + off && cut[-1] != '\n')
                    cut--;
                n = cut > b->buf + off ? (size_t)(cut - (b->buf + off)) : PIPE_BUF;
            }
            write_all(fd, b->buf + off, n);
            off += n;
        }
    }
    b->len = 0;
}

char *pc_logbuf_reserve(pc_logbuf_t *b, size_t n)
{
    if (!b->buf || n > b->cap)
        return NULL;
    if (b->cap - b->len < n)
        pc_logbuf_flush(b);
    return b->buf + b->len;
}

void pc_logbuf_commit(pc_logbuf_t *b, size_t n)
{
    b->len += n;
}
