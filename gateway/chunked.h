/*
 * chunked.h — strict, zero-copy decoder of the chunked transfer coding
 * (RFC 9112 §7.1).
 *
 * The decoder is a byte-level state machine, so a chunk-size line, a CRLF or
 * a trailer may be split across reads at any byte. It never copies payload:
 * each call returns the next run of data as a slice of the caller's buffer.
 * Chunk extensions are validated and dropped; trailer fields are validated
 * and dropped (the gateway re-frames bodies and does not forward trailers).
 */
#ifndef PC_CHUNKED_H
#define PC_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

/* Return values of pc_chunked_next, besides negative pc_http_err_e codes. */
#define PC_CHUNK_AGAIN 0 /* all input consumed, need more */
#define PC_CHUNK_DATA  1 /* data and dlen hold the next payload bytes */
#define PC_CHUNK_DONE  2 /* the last chunk and trailer section are complete */

/* Longest chunk-size line accepted, extensions and CRLF included (the size
 * itself is at most 15 hex digits). */
#define PC_CHUNK_MAX_LINE 4096

typedef struct pc_chunked_s {
    uint64_t remaining;     /* payload bytes left in the current chunk */
    uint64_t total;         /* payload bytes decoded so far */
    uint32_t line_len;      /* bytes in the current size line or trailer field */
    uint32_t trailer_bytes; /* bytes of trailer section so far */
    uint32_t max_trailer;   /* trailer section cap (0: PC_CHUNK_MAX_LINE) */
    uint8_t state;
    uint8_t digits;
} pc_chunked_t;

/* Resets d to decode a new body; max_trailer caps the trailer section. */
void pc_chunked_init(pc_chunked_t *d, uint32_t max_trailer);

/*
 * Consumes framing from buf[0..len) until it reaches payload, the end of the
 * body, or the end of the input. *used receives the number of bytes consumed
 * (framing plus any payload returned). On PC_CHUNK_DATA, *data points into buf
 * and *dlen > 0. On PC_CHUNK_DONE, bytes after *used belong to the next
 * message. On error the input is unusable and the connection must close.
 */
int pc_chunked_next(pc_chunked_t *d, const char *buf, size_t len, size_t *used, const char **data,
                    size_t *dlen);

#endif
