/*
 * log.h — the error log (levels, subsystem, thread-safe) and the buffered
 * line writers behind the access and security logs.
 *
 * Log files are opened once by the main thread. Workers never open or close
 * them: reopening (SIGUSR1) dup2()s the new file onto the same descriptor, so
 * a worker writing concurrently writes to either the old or the new file,
 * never to a closed or reused descriptor.
 */
#ifndef PC_LOG_H
#define PC_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

typedef enum { PC_LOG_DEBUG = 0, PC_LOG_INFO, PC_LOG_WARN, PC_LOG_ERROR } pc_log_level_e;

/* A log destination: "stdout", "stderr", "off", or a file path (appended). */
typedef struct pc_logfile_s {
    char path[512];
    int fd;      /* -1 when off */
    int is_pipe; /* writes over PIPE_BUF could interleave between workers */
} pc_logfile_t;

/* Opens path into f; 0 on success, -1 with errno set. */
int pc_logfile_open(pc_logfile_t *f, const char *path);
/* Reopens a file path onto the same descriptor (after logrotate moved it). */
int pc_logfile_reopen(pc_logfile_t *f);
void pc_logfile_close(pc_logfile_t *f);

/* Directs the error log to f (borrowed; must outlive logging) at level. */
void pc_log_set_error(pc_logfile_t *f, pc_log_level_e level);

/* Writes one error-log line: "TIME LEVEL [subsys] message". */
void pc_log(pc_log_level_e level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats tv as "2026-11-22T23:04:05.123Z" into out (at least 25 bytes);
 * returns the length. */
size_t pc_time_iso(const struct timeval *tv, char *out);

/* Formats tv as an IMF-fixdate for the Date header into out (30 bytes). */
size_t pc_time_http(time_t t, char *out);

/*
 * A per-worker line buffer in front of a log file. Lines are appended whole;
 * the buffer is written with one write() when it fills or when the worker's
 * flush timer fires. Only the owning worker touches it.
 */
typedef struct pc_logbuf_s {
    pc_logfile_t *file; /* borrowed */
    char *buf;
    size_t len;
    size_t cap;
} pc_logbuf_t;

int pc_logbuf_init(pc_logbuf_t *b, pc_logfile_t *file, size_t cap);
void pc_logbuf_free(pc_logbuf_t *b);
/* Space for a line of up to n bytes, flushing first when needed; NULL if the
 * line can never fit. Commit what was written with pc_logbuf_commit. */
char *pc_logbuf_reserve(pc_logbuf_t *b, size_t n);
void pc_logbuf_commit(pc_logbuf_t *b, size_t n);
void pc_logbuf_flush(pc_logbuf_t *b);

#endif
