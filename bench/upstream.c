/*
 * demo-upstream: a small, fast HTTP/1.1 backend for the Portcullis demo (`make run`)
 * and for load benchmarks, where it must never be the bottleneck.
 *
 *   GET|HEAD /health  200 {"status":"ok"}
 *   /bytes/N          200 application/octet-stream, N bytes (N <= 64 GiB): the 64-byte
 *                     pattern "0-9a-zA-Z+/" repeated from its start, streamed from a
 *                     fixed buffer
 *   /status/NNN       status NNN (200-599) with {"status":NNN,"reason":"..."};
 *                     204 and 304 carry neither body nor Content-Length
 *   anything else     200 {"service":"demo-upstream","method":..,"path":<target>,
 *                     "body_bytes":..,"x_forwarded_for":..,"x_request_id":..}
 *                     (the header values JSON-escaped, null when absent)
 * Request bodies (Content-Length or chunked) are read, counted and discarded.
 * Keep-alive and pipelining are supported, HEAD gets headers only, malformed
 * requests get 400 and a close, heads over 64 KiB get 431 and a close.
 *
 * Usage: demo-upstream [--listen HOST:PORT] [--threads N] [--quiet]
 *   HOST: IPv4 address, [IPv6] or localhost; default 127.0.0.1:9000, 1 thread.
 *   Port 0 picks a free port.  Once bound, "listening on HOST:PORT" is printed on
 *   stdout; --quiet only drops the startup note on stderr.  Nothing is logged per
 *   request.  SIGINT/SIGTERM exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BUF_INIT   (16u << 10)
#define HEAD_MAX   (64u << 10)
#define BUF_MAX    (72u << 10) /* a maximal head stays put while the body is framed behind it */
#define OUT_INIT   (64u << 10)
#define OUT_FLUSH  (32u << 10) /* pipelined answers are batched up to this, then written */
#define PEND_KEEP  (64u << 10) /* larger per-connection backlogs are freed once drained */
#define PAT_LEN    64
#define PAT_BUF    (128u << 10)
#define BYTES_MAX  (64ull << 30)
#define LINGER_MAX (256u << 10)
#define MAX_EVENTS 256
#define ABSENT     UINT32_MAX

enum { PH_HEAD, PH_CL, PH_CSIZE, PH_CDATA, PH_CCRLF, PH_TRAILER, PH_LINGER };
enum { P_MORE, P_FLUSH, P_DEAD };

struct span {
    uint32_t off, len;
}; /* offsets from the start of the request head */

struct conn {
    int fd;
    uint8_t phase;
    bool can_read; /* edge-triggered: set by EPOLLIN, cleared once the socket is drained */
    bool rdhup;    /* the peer's FIN is queued: read until 0 even after a short read */
    bool peer_eof, closing, keep, head_only, v10;
    char *buf;
    size_t cap, len;
    size_t rstart; /* start of the current request */
    size_t hend;   /* end of its head, which is kept until the response is built */
    size_t cur;    /* parse position (in a head: where the search for its end resumes) */
    struct span meth, target, xff, xrid;
    uint64_t left, body_bytes;
    char *pend; /* output the socket would not take yet */
    size_t pend_off, pend_len, pend_cap;
    uint64_t stream_left, stream_pos;
    size_t lingered;
};

struct thr {
    int ep, lfd, spare_fd;
    char *out; /* responses are built here, shared by all connections of the thread */
    size_t olen, ocap;
    time_t date_sec;
    char date[64];
    size_t date_len;
    pthread_t tid;
};

static bool tchar[256];
static char pattern[PAT_BUF + PAT_LEN];

static const char CT_JSON[] = "application/json";
static const char CT_OCTET[] = "application/octet-stream";

static const char *reason(int s)
{
    switch (s) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return s < 300   ? "Success"
           : s < 400 ? "Redirection"
           : s < 500 ? "Client Error"
                     : "Server Error";
}

/* ---- output building (callers reserve room first) ---- */

static bool out_reserve(struct thr *t, size_t n)
{
    if (t->ocap - t->olen >= n)
        return true;
    size_t ncap = t->ocap * 2;
    while (ncap - t->olen < n)
        ncap *= 2;
    char *nb = realloc(t->out, ncap);
    if (!nb)
        return false;
    t->out = nb;
    t->ocap = ncap;
    return true;
}

static void put(struct thr *t, const void *p, size_t n)
{
    memcpy(t->out + t->olen, p, n);
    t->olen += n;
}

#define PUTS(t, s) put((t), (s), sizeof(s) - 1)

static size_t u64_str(char out[24], uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

static void put_u64(struct thr *t, uint64_t v)
{
    char d[24];
    put(t, d, u64_str(d, v));
}

static size_t esc_len(const unsigned char *s, size_t n)
{
    size_t r = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            r += 1;
        else if (s[i] < 0x20 || s[i] >= 0x7f)
            r += 5; /* \u00XX keeps the JSON valid ASCII whatever the bytes were */
    }
    return r;
}

static void put_esc(struct thr *t, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = t->out + t->olen;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[ch >> 4];
            o[5] = hex[ch & 15];
            o += 6;
        } else {
            *o++ = (char)ch;
        }
    }
    t->olen = (size_t)(o - t->out);
}

/* clen < 0: no Content-Length (204/304).  Also reserves `extra` bytes for the body. */
static bool put_head(struct thr *t, struct conn *c, int status, const char *ctype, int64_t clen,
                     size_t extra)
{
    if (!out_reserve(t, 512 + extra))
        return false;
    const char *r = reason(status);
    PUTS(t, "HTTP/1.1 ");
    put_u64(t, (uint64_t)status);
    PUTS(t, " ");
    put(t, r, strlen(r));
    PUTS(t, "\r\nServer: demo-upstream\r\n");
    put(t, t->date, t->date_len);
    if (ctype) {
        PUTS(t, "Content-Type: ");
        put(t, ctype, strlen(ctype));
        PUTS(t, "\r\n");
    }
    if (clen >= 0) {
        PUTS(t, "Content-Length: ");
        put_u64(t, (uint64_t)clen);
        PUTS(t, "\r\n");
    }
    if (c->closing)
        PUTS(t, "Connection: close\r\n");
    else if (c->v10)
        PUTS(t, "Connection: keep-alive\r\n"); /* 1.0 clients assume close otherwise */
    PUTS(t, "\r\n");
    return true;
}

static bool simple(struct thr *t, struct conn *c, int status, const char *body, size_t blen)
{
    if (status == 204 || status == 304)
        return put_head(t, c, status, NULL, -1, 0);
    if (!put_head(t, c, status, CT_JSON, (int64_t)blen, blen))
        return false;
    if (!c->head_only)
        put(t, body, blen);
    return true;
}

/* A request we cannot frame: answer and close, since the stream is out of sync. */
static int fail(struct thr *t, struct conn *c, int status)
{
    char body[80];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", reason(status));
    c->closing = true;
    return simple(t, c, status, body, (size_t)n) ? -1 : -2;
}

static bool respond_echo(struct thr *t, struct conn *c)
{
    static const char e1[] = "{\"service\":\"demo-upstream\",\"method\":\"",
                      e2[] = "\",\"path\":\"", e3[] = "\",\"body_bytes\":",
                      e4[] = ",\"x_forwarded_for\":", e5[] = ",\"x_request_id\":";
    const unsigned char *h = (const unsigned char *)c->buf + c->rstart;
    char num[24];
    size_t nl = u64_str(num, c->body_bytes);
    size_t ml = esc_len(h + c->meth.off, c->meth.len);
    size_t tl = esc_len(h + c->target.off, c->target.len);
    size_t xl = c->xff.off == ABSENT ? 4 : esc_len(h + c->xff.off, c->xff.len) + 2;
    size_t rl = c->xrid.off == ABSENT ? 4 : esc_len(h + c->xrid.off, c->xrid.len) + 2;
    size_t blen =
        sizeof e1 + sizeof e2 + sizeof e3 + sizeof e4 + sizeof e5 - 5 + ml + tl + nl + xl + rl + 1;
    if (!put_head(t, c, 200, CT_JSON, (int64_t)blen, blen))
        return false;
    if (c->head_only)
        return true;
    PUTS(t, e1);
    put_esc(t, h + c->meth.off, c->meth.len);
    PUTS(t, e2);
    put_esc(t, h + c->target.off, c->target.len);
    PUTS(t, e3);
    put(t, num, nl);
    const struct span *opt[2] = {&c->xff, &c->xrid};
    for (int i = 0; i < 2; i++) {
        if (i == 0)
            PUTS(t, e4);
        else
            PUTS(t, e5);
        if (opt[i]->off == ABSENT) {
            PUTS(t, "null");
        } else {
            PUTS(t, "\"");
            put_esc(t, h + opt[i]->off, opt[i]->len);
            PUTS(t, "\"");
        }
    }
    PUTS(t, "}");
    return true;
}

static bool parse_dec(const char *s, size_t n, size_t maxdigits, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > maxdigits)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* The request (head and body) is complete: answer it and move to the next one. */
static int finish(struct thr *t, struct conn *c)
{
    const char *tg = c->buf + c->rstart + c->target.off;
    size_t pl = c->target.len;
    const char *q = memchr(tg, '?', pl);
    bool ok;
    uint64_t n;
    if (q)
        pl = (size_t)(q - tg);
    if (!c->keep)
        c->closing = true;
    bool get = (c->meth.len == 3 && !memcmp(c->buf + c->rstart, "GET", 3)) || c->head_only;
    if (pl == 7 && !memcmp(tg, "/health", 7) && get) {
        ok = simple(t, c, 200, "{\"status\":\"ok\"}", 15);
    } else if (pl >= 7 && !memcmp(tg, "/bytes/", 7)) {
        if (!parse_dec(tg + 7, pl - 7, 12, &n) || n > BYTES_MAX) {
            ok = simple(t, c, 400, "{\"error\":\"N must be 0..68719476736\"}", 36);
        } else {
            ok = put_head(t, c, 200, CT_OCTET, (int64_t)n, 0);
            if (!c->head_only) {
                c->stream_left = n;
                c->stream_pos = 0;
            }
        }
    } else if (pl >= 8 && !memcmp(tg, "/status/", 8)) {
        if (!parse_dec(tg + 8, pl - 8, 3, &n) || n < 200 || n > 599) {
            ok = simple(t, c, 400, "{\"error\":\"status must be 200..599\"}", 35);
        } else {
            char body[96];
            int bl = snprintf(body, sizeof body, "{\"status\":%d,\"reason\":\"%s\"}", (int)n,
                              reason((int)n));
            ok = simple(t, c, (int)n, body, (size_t)bl);
        }
    } else {
        ok = respond_echo(t, c);
    }
    c->phase = PH_HEAD;
    c->rstart = c->cur;
    if (c->rstart == c->len)
        c->rstart = c->cur = c->len = 0;
    return ok ? 1 : -2;
}

/* 1: head handled, 0: need more input, -1: error answered, -2: out of memory */
static int parse_head(struct thr *t, struct conn *c)
{
    char *b = c->buf;
    /* clients may send stray CRLFs between requests (e.g. after a POST body) */
    while (c->rstart < c->len && (b[c->rstart] == '\r' || b[c->rstart] == '\n'))
        c->rstart++;
    if (c->rstart == c->len) {
        c->rstart = c->cur = c->len = 0;
        return 0;
    }
    if (c->cur < c->rstart)
        c->cur = c->rstart;
    for (;;) { /* resumes where the last search stopped, so trickled heads stay linear */
        char *nl = memchr(b + c->cur, '\n', c->len - c->cur);
        if (!nl) {
            c->cur = c->len;
            return c->len - c->rstart > HEAD_MAX ? fail(t, c, 431) : 0;
        }
        size_t i = (size_t)(nl - b);
        c->cur = i + 1;
        if (b[i - 1] == '\n' || (i >= c->rstart + 2 && b[i - 1] == '\r' && b[i - 2] == '\n'))
            break;
    }
    c->hend = c->cur;
    if (c->hend - c->rstart > HEAD_MAX)
        return fail(t, c, 431);

    const unsigned char *h = (const unsigned char *)b + c->rstart;
    size_t hl = c->hend - c->rstart, i = 0;
    const unsigned char *eol = memchr(h, '\n', hl);
    size_t ll = (size_t)(eol - h);
    c->head_only = false;
    if (ll && h[ll - 1] == '\r')
        ll--;
    while (i < ll && tchar[h[i]])
        i++;
    if (i == 0 || i > 32 || i >= ll || h[i] != ' ')
        return fail(t, c, 400);
    c->meth = (struct span){0, (uint32_t)i};
    size_t ts = ++i;
    while (i < ll && h[i] > 0x20 && h[i] < 0x7f)
        i++;
    if (i == ts || i >= ll || h[i] != ' ')
        return fail(t, c, 400);
    c->target = (struct span){(uint32_t)ts, (uint32_t)(i - ts)};
    i++;
    if (ll - i != 8 || memcmp(h + i, "HTTP/1.", 7) || (h[i + 7] != '0' && h[i + 7] != '1'))
        return fail(t, c, 400);
    c->v10 = h[i + 7] == '0';
    c->head_only = c->meth.len == 4 && !memcmp(h, "HEAD", 4);

    bool te = false, has_cl = false, close_tok = false, ka_tok = false, expect = false;
    uint64_t cl = 0;
    size_t pos = ll + 1;
    if (h[pos - 1] == '\r')
        pos++;
    c->xff.off = c->xrid.off = ABSENT;
    for (;;) {
        const unsigned char *ln = h + pos;
        eol = memchr(ln, '\n', hl - pos); /* found: the head ends with a blank line */
        size_t n = (size_t)(eol - ln), k = 0;
        pos += n + 1;
        if (n && ln[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        if (ln[0] == ' ' || ln[0] == '\t')
            return fail(t, c, 400); /* obsolete line folding */
        while (k < n && tchar[ln[k]])
            k++;
        if (k == 0 || k >= n || ln[k] != ':')
            return fail(t, c, 400);
        size_t vs = k + 1, ve = n;
        while (vs < ve && (ln[vs] == ' ' || ln[vs] == '\t'))
            vs++;
        while (ve > vs && (ln[ve - 1] == ' ' || ln[ve - 1] == '\t'))
            ve--;
        for (size_t j = vs; j < ve; j++)
            if ((ln[j] < 0x20 && ln[j] != '\t') || ln[j] == 0x7f)
                return fail(t, c, 400);
        const char *v = (const char *)ln + vs, *name = (const char *)ln;
        size_t vl = ve - vs;
        struct span here = {(uint32_t)(ln - h + vs), (uint32_t)vl};
        if (k == 14 && !strncasecmp(name, "content-length", 14)) {
            uint64_t x;
            if (!parse_dec(v, vl, 18, &x) || (has_cl && x != cl))
                return fail(t, c, 400);
            has_cl = true;
            cl = x;
        } else if (k == 17 && !strncasecmp(name, "transfer-encoding", 17)) {
            /* nothing but chunked can be framed here; anything else is refused */
            if (te || vl != 7 || strncasecmp(v, "chunked", 7))
                return fail(t, c, 400);
            te = true;
        } else if (k == 10 && !strncasecmp(name, "connection", 10)) {
            for (size_t j = 0; j < vl;) {
                while (j < vl && (v[j] == ',' || v[j] == ' ' || v[j] == '\t'))
                    j++;
                size_t s = j;
                while (j < vl && v[j] != ',' && v[j] != ' ' && v[j] != '\t')
                    j++;
                if (j - s == 5 && !strncasecmp(v + s, "close", 5))
                    close_tok = true;
                else if (j - s == 10 && !strncasecmp(v + s, "keep-alive", 10))
                    ka_tok = true;
            }
        } else if (k == 15 && !strncasecmp(name, "x-forwarded-for", 15)) {
            if (c->xff.off == ABSENT)
                c->xff = here;
        } else if (k == 12 && !strncasecmp(name, "x-request-id", 12)) {
            if (c->xrid.off == ABSENT)
                c->xrid = here;
        } else if (k == 6 && !strncasecmp(name, "expect", 6)) {
            expect = vl == 12 && !strncasecmp(v, "100-continue", 12);
        }
    }
    /* both framings at once is the classic smuggling vector: refuse */
    if (te && (has_cl || c->v10))
        return fail(t, c, 400);
    c->keep = c->v10 ? ka_tok && !close_tok : !close_tok;
    c->body_bytes = 0;
    c->cur = c->hend;
    if (te) {
        c->phase = PH_CSIZE;
    } else if (cl) {
        c->phase = PH_CL;
        c->left = cl;
    } else {
        return finish(t, c);
    }
    if (expect && !c->v10) { /* curl waits a second for this before sending large bodies */
        if (!out_reserve(t, 32))
            return -2;
        PUTS(t, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    return 1;
}

/* Takes the next complete line of chunk framing (CRLF stripped); false if incomplete. */
static bool next_line(struct conn *c, const unsigned char **line, size_t *n)
{
    const char *nl = memchr(c->buf + c->cur, '\n', c->len - c->cur);
    if (!nl)
        return false;
    *line = (const unsigned char *)c->buf + c->cur;
    *n = (size_t)(nl - (c->buf + c->cur));
    c->cur += *n + 1;
    if (*n && (*line)[*n - 1] == '\r')
        (*n)--;
    return true;
}

static bool has_ctl(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return true;
    return false;
}

static int chunk_size(struct thr *t, struct conn *c)
{
    const unsigned char *ln;
    size_t n, i = 0;
    uint64_t v = 0;
    if (!next_line(c, &ln, &n))
        return 0;
    for (; i < n; i++) {
        int d = ln[i] >= '0' && ln[i] <= '9'                     ? ln[i] - '0'
                : (ln[i] | 0x20) >= 'a' && (ln[i] | 0x20) <= 'f' ? (ln[i] | 0x20) - 'a' + 10
                                                                 : -1;
        if (d < 0)
            break;
        if (v > (UINT64_MAX >> 4))
            return fail(t, c, 400);
        v = v << 4 | (uint64_t)d;
    }
    if (i == 0)
        return fail(t, c, 400);
    while (i < n && (ln[i] == ' ' || ln[i] == '\t'))
        i++;
    /* chunk extensions are allowed and ignored */
    if ((i < n && ln[i] != ';') || has_ctl(ln + i, n - i))
        return fail(t, c, 400);
    if (v == 0) {
        c->phase = PH_TRAILER;
    } else {
        c->phase = PH_CDATA;
        c->left = v;
    }
    return 1;
}

/* Consumes body bytes in the buffer; true when the current piece is complete. */
static bool eat(struct conn *c)
{
    size_t avail = c->len - c->cur;
    uint64_t take = c->left < avail ? c->left : avail;
    c->cur += (size_t)take;
    c->left -= take;
    c->body_bytes += take;
    if (c->left)
        c->len = c->cur = c->hend; /* all consumed: reuse the space behind the head */
    return c->left == 0;
}

static int process(struct thr *t, struct conn *c)
{
    for (;;) {
        int r = 1;
        const unsigned char *ln;
        size_t n;
        if (c->closing || c->stream_left || t->olen >= OUT_FLUSH)
            return P_FLUSH;
        switch (c->phase) {
        case PH_HEAD:
            r = parse_head(t, c);
            break;
        case PH_CL:
            if (!eat(c))
                return P_MORE;
            r = finish(t, c);
            break;
        case PH_CSIZE:
            r = chunk_size(t, c);
            break;
        case PH_CDATA:
            if (!eat(c))
                return P_MORE;
            c->phase = PH_CCRLF;
            break;
        case PH_CCRLF:
            if (c->len - c->cur < 1 || (c->buf[c->cur] == '\r' && c->len - c->cur < 2))
                return P_MORE;
            if (c->buf[c->cur] == '\r')
                c->cur++;
            if (c->buf[c->cur++] != '\n')
                r = fail(t, c, 400);
            else
                c->phase = PH_CSIZE;
            break;
        case PH_TRAILER:
            if (!next_line(c, &ln, &n))
                return P_MORE;
            if (n == 0)
                r = finish(t, c);
            else if (!memchr(ln, ':', n) || ln[0] == ':' || has_ctl(ln, n))
                r = fail(t, c, 400);
            break;
        default:
            return P_MORE;
        }
        if (r == 0)
            return P_MORE;
        if (r == -2)
            return P_DEAD;
    }
}

/* Buffer full: reclaim consumed bytes, else grow.  False when neither is possible. */
static bool make_room(struct conn *c)
{
    if (c->phase == PH_HEAD) {
        if (c->rstart) {
            size_t n = c->len - c->rstart;
            memmove(c->buf, c->buf + c->rstart, n);
            c->cur -= c->rstart;
            c->len = n;
            c->rstart = 0;
            return true;
        }
    } else if (c->rstart || c->cur > c->hend) {
        size_t hl = c->hend - c->rstart, tail = c->len - c->cur;
        memmove(c->buf, c->buf + c->rstart, hl);
        memmove(c->buf + hl, c->buf + c->cur, tail);
        c->rstart = 0;
        c->hend = c->cur = hl;
        c->len = hl + tail;
        return true;
    }
    if (c->cap >= BUF_MAX)
        return false;
    size_t ncap = c->cap * 2 > BUF_MAX ? BUF_MAX : c->cap * 2;
    char *nb = realloc(c->buf, ncap);
    if (!nb)
        return false;
    c->buf = nb;
    c->cap = ncap;
    return true;
}

static bool keep_pending(struct conn *c, const char *p, size_t n, bool from_pend)
{
    if (from_pend) {
        c->pend_off += c->pend_len - n;
    } else if (n) {
        if (c->pend_cap < n) {
            free(c->pend);
            c->pend = malloc(n);
            c->pend_cap = c->pend ? n : 0;
            if (!c->pend)
                return false;
        }
        memcpy(c->pend, p, n);
        c->pend_off = 0;
    }
    c->pend_len = n;
    return true;
}

/* Writes p[0..n) then any streamed body.  0: all sent, 1: would block (rest kept), -1: error */
static int push(struct conn *c, const char *p, size_t n, bool from_pend)
{
    for (;;) {
        struct iovec iov[2];
        int k = 0;
        if (n)
            iov[k++] = (struct iovec){(void *)p, n};
        if (c->stream_left) {
            uint64_t m = c->stream_left < PAT_BUF ? c->stream_left : PAT_BUF;
            iov[k++] = (struct iovec){pattern + c->stream_pos % PAT_LEN, (size_t)m};
        }
        if (k == 0)
            break;
        ssize_t w = k == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) : writev(c->fd, iov, k);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            return keep_pending(c, p, n, from_pend) ? 1 : -1;
        }
        size_t u = (size_t)w;
        if (u >= n) {
            c->stream_left -= u - n;
            c->stream_pos += u - n;
            n = 0;
        } else {
            p += u;
            n -= u;
        }
    }
    if (from_pend) {
        c->pend_len = 0;
        if (c->pend_cap > PEND_KEEP) {
            free(c->pend);
            c->pend = NULL;
            c->pend_cap = 0;
        }
    }
    return 0;
}

static void conn_free(struct conn *c)
{
    close(c->fd); /* also drops it from the epoll set */
    free(c->buf);
    free(c->pend);
    free(c);
}

static void conn_run(struct thr *t, struct conn *c)
{
    for (;;) {
        if (c->pend_len || c->stream_left) {
            int r = push(c, c->pend_len ? c->pend + c->pend_off : NULL, c->pend_len, true);
            if (r < 0)
                goto dead;
            if (r > 0)
                return;
        }
        if (c->closing) {
            if (c->peer_eof)
                goto dead;
            /* half-close and drain, so unread input does not turn into an RST that
             * could destroy the response before the client reads it */
            shutdown(c->fd, SHUT_WR);
            c->closing = false;
            c->phase = PH_LINGER;
            c->lingered = 0;
        }
        if (c->phase == PH_LINGER) {
            while (c->can_read) {
                ssize_t n = read(c->fd, c->buf, c->cap);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0 && errno == EAGAIN)
                    c->can_read = false;
                else if (n <= 0 || (c->lingered += (size_t)n) > LINGER_MAX)
                    goto dead;
                else if ((size_t)n < c->cap && !c->rdhup)
                    c->can_read = false;
            }
            return;
        }
        t->olen = 0;
        int pr = process(t, c);
        if (pr == P_DEAD)
            goto dead;
        if (t->olen || c->stream_left) {
            int r = push(c, t->out, t->olen, false);
            t->olen = 0;
            if (r < 0)
                goto dead;
            if (r > 0)
                return;
            continue;
        }
        if (pr != P_MORE)
            continue;
        if (c->peer_eof || !c->can_read)
            goto idle;
        if (c->len == c->cap && !make_room(c)) {
            if (fail(t, c, c->phase == PH_HEAD ? 431 : 400) == -2)
                goto dead;
            int r = push(c, t->out, t->olen, false);
            t->olen = 0;
            if (r < 0)
                goto dead;
            if (r > 0)
                return;
            continue;
        }
        size_t space = c->cap - c->len;
        ssize_t n = read(c->fd, c->buf + c->len, space);
        if (n > 0) {
            /* a short read drained the socket; the next arrival raises a new edge */
            if ((size_t)n < space && !c->rdhup)
                c->can_read = false;
            c->len += (size_t)n;
        } else if (n == 0) {
            c->peer_eof = true;
        } else if (errno == EAGAIN) {
            c->can_read = false;
        } else if (errno != EINTR) {
            goto dead;
        }
    }
idle:
    if (!c->peer_eof)
        return;
dead:
    t->olen = 0;
    conn_free(c);
}

static void accept_all(struct thr *t)
{
    for (;;) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && t->spare_fd >= 0) {
                /* out of descriptors: shed the connection instead of letting a
                 * level-triggered listener spin on it */
                close(t->spare_fd);
                fd = accept(t->lfd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        char *buf = malloc(BUF_INIT);
        if (!c || !buf) {
            free(c);
            free(buf);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->buf = buf;
        c->cap = BUF_INIT;
        /* registered once for both directions: no epoll_ctl per request */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_free(c);
    }
}

static void update_date(struct thr *t)
{
    time_t now = time(NULL);
    struct tm tm;
    if (now == t->date_sec)
        return;
    gmtime_r(&now, &tm);
    t->date_len = strftime(t->date, sizeof t->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    t->date_sec = now;
}

static void *worker(void *arg)
{
    struct thr *t = arg;
    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(t->ep, ev, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("demo-upstream: epoll_wait");
            exit(1);
        }
        update_date(t);
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (!c) {
                accept_all(t);
                continue;
            }
            if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->can_read = true;
            if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->rdhup = true;
            conn_run(t, c);
        }
    }
    return NULL;
}

static bool parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[64];
    const char *hs = s, *colon;
    size_t hl;
    bool v6 = s[0] == '[';
    if (v6) {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return false;
        hs = s + 1;
        hl = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return false;
        hl = (size_t)(colon - s);
    }
    uint64_t port;
    if (hl >= sizeof host || !parse_dec(colon + 1, strlen(colon + 1), 5, &port) || port > 65535)
        return false;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *sl = sizeof *a;
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *sl = sizeof *a;
    if (!strcmp(host, "localhost"))
        return inet_pton(AF_INET, "127.0.0.1", &a->sin_addr) == 1;
    if (hl == 0 || !strcmp(host, "*"))
        return true; /* INADDR_ANY */
    return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

static int make_listener(const struct sockaddr_storage *ss, socklen_t sl)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* one listener per thread: the kernel spreads connections without a shared lock */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)ss, sl) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: demo-upstream [--listen HOST:PORT] [--threads N] [--quiet]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen_arg = "127.0.0.1:9000";
    long threads = 1;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strncmp(a, "--listen=", 9) || !strncmp(a, "--threads=", 10))
            val = strchr(a, '=') + 1;
        else if ((!strcmp(a, "--listen") || !strcmp(a, "--threads")) && i + 1 < argc)
            val = argv[++i];
        if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (val && a[2] == 'l') {
            listen_arg = val;
        } else if (val && a[2] == 't') {
            char *end;
            threads = strtol(val, &end, 10);
            if (*end || threads < 1 || threads > 256)
                usage();
        } else {
            usage();
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!parse_addr(listen_arg, &ss, &sl)) {
        fprintf(stderr, "demo-upstream: bad --listen address: %s\n", listen_arg);
        return 2;
    }
    for (int ch = 0; ch < 256; ch++)
        tchar[ch] = (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') ||
                    (ch && strchr("!#$%&'*+-.^_`|~", ch));
    static const char pat[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/";
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = pat[i % PAT_LEN];

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by workers; main waits for them */

    struct thr *ts = calloc((size_t)threads, sizeof *ts);
    if (!ts)
        return 1;
    for (long i = 0; i < threads; i++) {
        ts[i].lfd = make_listener(&ss, sl);
        if (ts[i].lfd < 0) {
            fprintf(stderr, "demo-upstream: cannot listen on %s: %s\n", listen_arg,
                    strerror(errno));
            return 1;
        }
        /* the others must share the port the first one was given */
        if (i == 0 && getsockname(ts[0].lfd, (struct sockaddr *)&ss, &sl) < 0)
            return 1;
    }
    char addr[INET6_ADDRSTRLEN];
    bool v6 = ss.ss_family == AF_INET6;
    const void *ap = v6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    unsigned port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    if (!inet_ntop(ss.ss_family, ap, addr, sizeof addr))
        return 1;
    printf(v6 ? "listening on [%s]:%u\n" : "listening on %s:%u\n", addr, port);
    fflush(stdout);

    for (long i = 0; i < threads; i++) {
        struct thr *t = &ts[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        t->ocap = OUT_INIT;
        t->out = malloc(t->ocap);
        t->date_sec = (time_t)-1;
        update_date(t);
        if (t->ep < 0 || !t->out || epoll_ctl(t->ep, EPOLL_CTL_ADD, t->lfd, &ev) < 0 ||
            pthread_create(&t->tid, NULL, worker, t) != 0) {
            fprintf(stderr, "demo-upstream: thread setup failed\n");
            return 1;
        }
    }
    if (!quiet)
        fprintf(stderr, "demo-upstream: %ld thread%s on %s%s%s:%u\n", threads,
                threads == 1 ? "" : "s", v6 ? "[" : "", addr, v6 ? "]" : "", port);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    fflush(stdout);
    _exit(0); /* workers hold no state worth tearing down */
}
