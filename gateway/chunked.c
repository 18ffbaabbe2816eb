/*
 * chunked.c — the chunked transfer-coding decoder (see chunked.h).
 *
 * Grammar accepted (RFC 9112 §7.1, minus the looseness):
 *   chunk-size  = 1*15HEXDIG          (no sign, no whitespace, no "0x")
 *   chunk-ext   = *( ";" token [ "=" ( token / quoted-string ) ] )   (no BWS)
 *   each line ends in CRLF; chunk data is followed by exactly CRLF;
 *   trailer fields are "token ':' value" lines, no obs-fold.
 * Whitespace around extensions is refused on purpose: parsers disagree on
 * it, and a disagreement with a proxy in front of us is how smuggling works.
 */
#include "chunked.h"

#include "http1.h"

enum {
    S_SIZE_FIRST = 0,
    S_SIZE,
    S_EXT_NAME_FIRST,
    S_EXT_NAME,
    S_EXT_VAL_FIRST,
    S_EXT_VAL_TOKEN,
    S_EXT_QUOTED,
    S_EXT_QUOTED_ESC,
    S_EXT_AFTER_QUOTED,
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TRAILER_START,
    S_TRAILER_NAME,
    S_TRAILER_VALUE,
    S_TRAILER_LF,
    S_END_LF,
    S_DONE
};

static int tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

void pc_chunked_init(pc_chunked_t *d, uint32_t max_trailer)
{
    memset(d, 0, sizeof(*d));
    d->max_trailer = max_trailer ? max_trailer : PC_CHUNK_MAX_LINE;
}

int pc_chunked_next(pc_chunked_t *d, const char *buf, size_t len, size_t *used, const char **data,
                    size_t *dlen)
{
    size_t i = 0;
    *data = NULL;
    *dlen = 0;
    *used = 0; /* on error nothing is consumed: the stream is unusable anyway */
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        switch (d->state) {
        case S_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > d->remaining)
                n = (size_t)d->remaining;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0)
                d->state = S_DATA_CR;
            *data = buf + i;
            *dlen = n;
            *used = i + n;
            return PC_CHUNK_DATA;
        }
        case S_SIZE_FIRST:
        case S_SIZE: {
            int v = pc_hex_value(c);
            if (v >= 0) {
                if (++d->digits > 15)
                    return PC_HTTP_ERR(PC_HTTP_E_CHUNK_SIZE);
                d->remaining = d->remaining * 16 + (uint64_t)v;
                d->state = S_SIZE;
            } else if (d->state == S_SIZE && c == ';') {
                d->state = S_EXT_NAME_FIRST;
            } else if (d->state == S_SIZE && c == '\r') {
                d->state = S_SIZE_LF;
            } else {
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_SIZE);
            }
            break;
        }
        case S_EXT_NAME_FIRST:
            if (!tchar(c))
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_EXT);
            d->state = S_EXT_NAME;
            break;
        case S_EXT_NAME:
        case S_EXT_VAL_TOKEN:
        case S_EXT_AFTER_QUOTED:
            if (d->state != S_EXT_AFTER_QUOTED && tchar(c))
                break;
            if (d->state == S_EXT_NAME && c == '=')
                d->state = S_EXT_VAL_FIRST;
            else if (c == ';')
                d->state = S_EXT_NAME_FIRST;
            else if (c == '\r')
                d->state = S_SIZE_LF;
            else
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_EXT);
            break;
        case S_EXT_VAL_FIRST:
            if (c == '"')
                d->state = S_EXT_QUOTED;
            else if (tchar(c))
                d->state = S_EXT_VAL_TOKEN;
            else
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_EXT);
            break;
        case S_EXT_QUOTED:
            /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
            if (c == '"')
                d->state = S_EXT_AFTER_QUOTED;
            else if (c == '\\')
                d->state = S_EXT_QUOTED_ESC;
            else if (c < 0x20 ? c != '\t' : c == 0x7f)
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_EXT);
            break;
        case S_EXT_QUOTED_ESC:
            if (c < 0x20 ? c != '\t' : c == 0x7f)
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_EXT);
            d->state = S_EXT_QUOTED;
            break;
        case S_SIZE_LF:
            if (c != '\n')
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_SIZE);
            d->line_len = 0;
            d->digits = 0;
            d->state = d->remaining ? S_DATA : S_TRAILER_START;
            i++;
            continue;
        case S_DATA_CR:
            if (c != '\r')
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_DATA_END);
            d->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (c != '\n')
                return PC_HTTP_ERR(PC_HTTP_E_CHUNK_DATA_END);
            d->state = S_SIZE_FIRST;
            d->line_len = 0;
            i++;
            continue;
        case S_TRAILER_START:
            if (c == '\r') {
                d->state = S_END_LF;
            } else if (tchar(c)) {
                d->state = S_TRAILER_NAME;
            } else {
                return PC_HTTP_ERR(PC_HTTP_E_TRAILER); /* obs-fold, bad name */
            }
            break;
        case S_TRAILER_NAME:
            if (c == ':')
                d->state = S_TRAILER_VALUE;
            else if (!tchar(c))
                return PC_HTTP_ERR(PC_HTTP_E_TRAILER);
            break;
        case S_TRAILER_VALUE:
            if (c == '\r')
                d->state = S_TRAILER_LF;
            else if (c < 0x20 ? c != '\t' : c == 0x7f)
                return PC_HTTP_ERR(PC_HTTP_E_TRAILER);
            break;
        case S_TRAILER_LF:
            if (c != '\n')
                return PC_HTTP_ERR(PC_HTTP_E_TRAILER);
            d->state = S_TRAILER_START;
            break;
        case S_END_LF:
            if (c != '\n')
                return PC_HTTP_ERR(PC_HTTP_E_TRAILER);
            d->state = S_DONE;
            *used = i + 1;
            return PC_CHUNK_DONE;
        case S_DONE:
            *used = i;
            return PC_CHUNK_DONE;
        }
        /* Framing bytes: bound the size line and the trailer section. */
        if (d->state >= S_TRAILER_START) {
            if (++d->trailer_bytes > d->max_trailer)
                return PC_HTTP_ERR(PC_HTTP_E_TRAILER);
        } else if (++d->line_len > PC_CHUNK_MAX_LINE) {
            return PC_HTTP_ERR(d->state <= S_SIZE ? PC_HTTP_E_CHUNK_SIZE : PC_HTTP_E_CHUNK_EXT);
        }
        i++;
    }
    *used = i;
    return d->state == S_DONE ? PC_CHUNK_DONE : PC_CHUNK_AGAIN;
}
