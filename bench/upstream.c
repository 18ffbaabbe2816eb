/*
 * demo-upstream: a small, fast HTTP/1.1 backend for the Portcullis demo (`make run`)
 * and for load benchmarks, where it must never be the bottleneck.
 *
 *   GET|HEAD /health  200 {"status":"ok"}
 *   /bytes/N          200 application/octet-stream, N bytes (N <= 64 GiB) of the 64-byte
 *                     pattern "0123456789a..zA..Z+/" repeated from its start, streamed
 *                     from a fixed buffer at any size
 *   /status/NNN       status NNN (200-599) with {"status":NNN,"reason":"..."};
 *                     204 and 304 carry neither body nor Content-Length
 *   anything else     200 {"service":"demo-upstream","method":..,"path":<target, query too>,
 *                     "body_bytes":..,"x_forwarded_for":..,"x_request_id":..}
 *                     (header values JSON-escaped, null when absent)
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
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

#define BUF_INIT    (16u << 10)
#define HEAD_MAX    (64u << 10)
#define BUF_MAX     (72u << 10) /* a maximal head stays put while the body is framed behind it */
#define OUT_INIT    (64u << 10)
#define OUT_FLUSH   (32u << 10) /* pipelined answers are batched up to this, then written */
#define PEND_KEEP   (64u << 10) /* larger per-connection backlogs are freed once drained */
#define PAT_LEN     64
#define PAT_BUF     (128u << 10)
#define BYTES_MAX   (64ull << 30)
#define LINGER_MAX  (256u << 10)
#define MAX_EVENTS  256
#define TURN_STEPS  32 /* steps one connection may take before the others get a turn */
#define TURN_WRITES 8  /* likewise for writes of a stream: 1 MiB */
#define CONN_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define ABSENT      UINT32_MAX

enum { PH_HEAD, PH_CL, PH_CSIZE, PH_CDATA, PH_CCRLF, PH_TRAILER, PH_LINGER };
enum { P_MORE, P_FLUSH, P_DEAD };

struct span {
    uint32_t off, len; /* from the start of the request head */
};

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

static const char CT_JSON[] = "Content-Type: application/json\r\n";
static const char CT_OCTET[] = "Content-Type: application/octet-stream\r\n";

/* "|NNNReason" entries; the ones a benchmark hits come first. */
static const char reasons[] =
    "|200OK|204No Content|400Bad Request|404Not Found|201Created|202Accepted|206Partial Content"
    "|301Moved Permanently|302Found|303See Other|304Not Modified|307Temporary Redirect"
    "|308Permanent Redirect|401Unauthorized|403Forbidden|405Method Not Allowed"
    "|408Request Timeout|409Conflict|410Gone|413Content Too Large|415Unsupported Media Type"
    "|418I'm a teapot|422Unprocessable Content|429Too Many Requests"
    "|431Request Header Fields Too Large|500Internal Server Error|501Not Implemented"
    "|502Bad Gateway|503Service Unavailable|504Gateway Timeout|";

static int reason(int s, const char **text)
{
    char key[5] = {'|', (char)('0' + s / 100 % 10), (char)('0' + s / 10 % 10), (char)('0' + s % 10),
                   0};
    const char *p = strstr(reasons, key);
    if (p) {
        *text = p + 4;
        return (int)strcspn(p + 4, "|");
    }
    *text = s < 300   ? "Success"
            : s < 400 ? "Redirection"
            : s < 500 ? "Client Error"
                      : "Server Error";
    return (int)strlen(*text);
}

/* ---- output, built in the thread's buffer (callers reserve room first) ---- */

static bool out_reserve(struct thr *t, size_t n)
{
    size_t ncap = t->ocap;
    while (ncap - t->olen < n)
        ncap *= 2;
    char *nb = ncap == t->ocap ? t->out : realloc(t->out, ncap);
    if (!nb)
        return false;
    t->out = nb;
    t->ocap = ncap;
    return true;
}

/* Copies s to o + at unless o is NULL (a measuring pass); returns n. */
static size_t cpy(char *o, size_t at, const char *s, size_t n)
{
    if (o)
        memcpy(o + at, s, n);
    return n;
}

static void put(struct thr *t, const char *s, size_t n)
{
    t->olen += cpy(t->out, t->olen, s, n);
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

/* JSON-escapes s to o + at (or only measures); \u00XX keeps the output ASCII. */
static size_t esc(char *o, size_t at, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            if (o)
                o[at + r] = (char)ch;
            r++;
            continue;
        }
        char e[6] = {'\\', (char)ch, 0, 0, 0, 0};
        size_t k = 2;
        if (ch < 0x20 || ch >= 0x7f) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[ch >> 4];
            e[5] = hex[ch & 15];
            k = 6;
        }
        r += cpy(o, at + r, e, k);
    }
    return r;
}

/* clen < 0: neither Content-Type nor Content-Length (204/304).  Reserves `extra` more. */
static bool put_head(struct thr *t, struct conn *c, int status, const char *ctype, int64_t clen,
                     size_t extra)
{
    char num[24];
    const char *r;
    size_t rl = (size_t)reason(status, &r);
    if (!out_reserve(t, 512 + extra))
        return false;
    PUTS(t, "HTTP/1.1 ");
    put(t, num, u64_str(num, (uint64_t)status));
    PUTS(t, " ");
    put(t, r, rl);
    PUTS(t, "\r\nServer: demo-upstream\r\n");
    put(t, t->date, t->date_len);
    if (clen >= 0) {
        put(t, ctype, strlen(ctype));
        PUTS(t, "Content-Length: ");
        put(t, num, u64_str(num, (uint64_t)clen));
        PUTS(t, "\r\n");
    }
    if (c->closing)
        PUTS(t, "Connection: close\r\n");
    else if (c->v10)
        PUTS(t, "Connection: keep-alive\r\n"); /* 1.0 clients assume close otherwise */
    PUTS(t, "\r\n");
    return true;
}

#define SIMPLE(t, c, status, lit) simple((t), (c), (status), (lit), sizeof(lit) - 1)

static bool simple(struct thr *t, struct conn *c, int status, const char *body, size_t blen)
{
    bool nobody = status == 204 || status == 304;
    if (!put_head(t, c, status, CT_JSON, nobody ? -1 : (int64_t)blen, blen))
        return false;
    if (!c->head_only && !nobody)
        put(t, body, blen);
    return true;
}

/* A request we cannot frame: answer and close, since the stream is out of sync. */
static int fail(struct thr *t, struct conn *c, int status)
{
    char body[80];
    const char *r;
    int rl = reason(status, &r), n = snprintf(body, sizeof body, "{\"error\":\"%.*s\"}", rl, r);
    c->closing = true;
    return simple(t, c, status, body, (size_t)n) ? -1 : -2;
}

static bool respond_echo(struct thr *t, struct conn *c)
{
    static const char *const keys[] = {"{\"service\":\"demo-upstream\",\"method\":", ",\"path\":",
                                       ",\"x_forwarded_for\":", ",\"x_request_id\":"};
    const struct span *vals[] = {&c->meth, &c->target, &c->xff, &c->xrid};
    const unsigned char *h = (const unsigned char *)c->buf + c->rstart;
    char num[40] = ",\"body_bytes\":";
    size_t nl = 14 + u64_str(num + 14, c->body_bytes);
    /* pass 0 measures for Content-Length, pass 1 writes: no allocation, one buffer */
    for (int pass = 0; pass < 2; pass++) {
        char *o = pass ? t->out + t->olen : NULL;
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
            n += cpy(o, n, keys[i], strlen(keys[i]));
            if (vals[i]->off == ABSENT) {
                n += cpy(o, n, "null", 4);
            } else {
                n += cpy(o, n, "\"", 1);
                n += esc(o, n, h + vals[i]->off, vals[i]->len);
                n += cpy(o, n, "\"", 1);
            }
            if (i == 1)
                n += cpy(o, n, num, nl);
        }
        n += cpy(o, n, "}", 1);
        if (pass == 1)
            t->olen += n;
        else if (!put_head(t, c, 200, CT_JSON, (int64_t)n, n))
            return false;
        else if (c->head_only)
            return true;
    }
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

/* The request (head and body) is complete: answer it and move on to the next one. */
static int finish(struct thr *t, struct conn *c)
{
    const char *tg = c->buf + c->rstart + c->target.off, *q = memchr(tg, '?', c->target.len);
    size_t pl = q ? (size_t)(q - tg) : c->target.len;
    bool ok, get = (c->meth.len == 3 && !memcmp(c->buf + c->rstart, "GET", 3)) || c->head_only;
    uint64_t n;
    if (!c->keep)
        c->closing = true;
    if (pl == 7 && !memcmp(tg, "/health", 7) && get) {
        ok = SIMPLE(t, c, 200, "{\"status\":\"ok\"}");
    } else if (pl >= 7 && !memcmp(tg, "/bytes/", 7)) {
        if (!parse_dec(tg + 7, pl - 7, 12, &n) || n > BYTES_MAX) {
            ok = SIMPLE(t, c, 400, "{\"error\":\"N must be 0..68719476736\"}");
        } else {
            ok = put_head(t, c, 200, CT_OCTET, (int64_t)n, 0);
            c->stream_left = c->head_only ? 0 : n;
            c->stream_pos = 0;
        }
    } else if (pl >= 8 && !memcmp(tg, "/status/", 8)) {
        if (!parse_dec(tg + 8, pl - 8, 3, &n) || n < 200 || n > 599) {
            ok = SIMPLE(t, c, 400, "{\"error\":\"status must be 200..599\"}");
        } else {
            char body[96];
            const char *r;
            int s = (int)n, rl = reason(s, &r);
            int bl = snprintf(body, sizeof body, "{\"status\":%d,\"reason\":\"%.*s\"}", s, rl, r);
            ok = simple(t, c, s, body, (size_t)bl);
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

static bool has_ctl(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return true;
    return false;
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
    size_t hl = c->hend - c->rstart, i = 0,
           ll = (size_t)((const unsigned char *)memchr(h, '\n', hl) - h);
    size_t pos = ll + 1;
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
    c->xff.off = c->xrid.off = ABSENT;
    for (;;) {
        const unsigned char *ln = h + pos;
        /* always found: the head ends with a blank line */
        size_t n = (size_t)((const unsigned char *)memchr(ln, '\n', hl - pos) - ln), k = 0;
        pos += n + 1;
        if (n && ln[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        while (k < n && tchar[ln[k]])
            k++;
        /* rejects obsolete line folding too: a leading space is not a token */
        if (k == 0 || k >= n || ln[k] != ':')
            return fail(t, c, 400);
        size_t vs = k + 1, ve = n;
        while (vs < ve && (ln[vs] == ' ' || ln[vs] == '\t'))
            vs++;
        while (ve > vs && (ln[ve - 1] == ' ' || ln[ve - 1] == '\t'))
            ve--;
        if (has_ctl(ln + vs, ve - vs))
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
            for (size_t s = 0; s < vl;) {
                const char *comma = memchr(v + s, ',', vl - s);
                size_t e = comma ? (size_t)(comma - v) : vl, z = e;
                while (s < z && (v[s] == ' ' || v[s] == '\t'))
                    s++;
                while (z > s && (v[z - 1] == ' ' || v[z - 1] == '\t'))
                    z--;
                close_tok |= z - s == 5 && !strncasecmp(v + s, "close", 5);
                ka_tok |= z - s == 10 && !strncasecmp(v + s, "keep-alive", 10);
                s = e + 1;
            }
        } else if (k == 15 && !strncasecmp(name, "x-forwarded-for", 15)) {
            c->xff = c->xff.off == ABSENT ? here : c->xff;
        } else if (k == 12 && !strncasecmp(name, "x-request-id", 12)) {
            c->xrid = c->xrid.off == ABSENT ? here : c->xrid;
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
    c->left = cl;
    c->phase = te ? PH_CSIZE : PH_CL;
    if (!te && !cl)
        return finish(t, c);
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

static int chunk_size(struct thr *t, struct conn *c, const unsigned char *ln, size_t n)
{
    size_t i = 0;
    uint64_t v = 0;
    for (; i < n; i++) {
        int ch = ln[i], lo = ch | 0x20;
        int d = ch >= '0' && ch <= '9' ? ch - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
        if (d < 0)
            break;
        if (v > (UINT64_MAX >> 4))
            return fail(t, c, 400);
        v = v << 4 | (uint64_t)d;
    }
    size_t digits = i;
    while (i < n && (ln[i] == ' ' || ln[i] == '\t'))
        i++;
    /* chunk extensions are allowed and ignored */
    if (digits == 0 || (i < n && ln[i] != ';') || has_ctl(ln + i, n - i))
        return fail(t, c, 400);
    c->phase = v ? PH_CDATA : PH_TRAILER;
    c->left = v;
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

/* Buffer full: reclaim consumed bytes, else grow.  False when neither is possible. */
static bool make_room(struct conn *c)
{
    if (c->phase == PH_HEAD && c->rstart) {
        memmove(c->buf, c->buf + c->rstart, c->len - c->rstart);
        c->cur -= c->rstart;
        c->len -= c->rstart;
        c->rstart = 0;
        return true;
    }
    if (c->phase != PH_HEAD && (c->rstart || c->cur > c->hend)) {
        size_t hl = c->hend - c->rstart, tail = c->len - c->cur;
        memmove(c->buf, c->buf + c->rstart, hl);
        memmove(c->buf + hl, c->buf + c->cur, tail);
        c->rstart = 0;
        c->hend = c->cur = hl;
        c->len = hl + tail;
        return true;
    }
    size_t ncap = c->cap * 2 > BUF_MAX ? BUF_MAX : c->cap * 2;
    char *nb = c->cap < BUF_MAX ? realloc(c->buf, ncap) : NULL;
    if (!nb)
        return false;
    c->buf = nb;
    c->cap = ncap;
    return true;
}

/* Parses and answers what the buffer holds, appending responses to t->out. */
static int process(struct thr *t, struct conn *c)
{
    for (;;) {
        const unsigned char *ln;
        size_t n;
        int r = 0;
        if (c->closing || c->stream_left || t->olen >= OUT_FLUSH)
            return P_FLUSH;
        if (c->phase == PH_HEAD) {
            r = parse_head(t, c);
        } else if (c->phase == PH_CL) {
            r = eat(c) ? finish(t, c) : 0;
        } else if (c->phase == PH_CDATA) {
            r = eat(c);
            c->phase = r ? PH_CCRLF : PH_CDATA;
        } else if (c->phase == PH_LINGER || !next_line(c, &ln, &n)) {
            r = 0;
        } else if (c->phase == PH_CSIZE) {
            r = chunk_size(t, c, ln, n);
        } else if (c->phase == PH_CCRLF) {
            r = n ? fail(t, c, 400) : 1;
            c->phase = PH_CSIZE;
        } else if (n == 0) {
            r = finish(t, c); /* end of the trailer section */
        } else {
            r = !memchr(ln, ':', n) || ln[0] == ':' || has_ctl(ln, n) ? fail(t, c, 400) : 1;
        }
        if (r == 0 && c->len == c->cap && !make_room(c))
            r = fail(t, c, c->phase == PH_HEAD ? 431 : 400);
        if (r == -2)
            return P_DEAD;
        if (r == 0)
            return P_MORE;
    }
}

/* Writes p[0..n) then any streamed body; what is left is kept in c->pend.
 * 0: all sent, 1: would block, 2: turn used up, -1: error */
static int push(struct conn *c, const char *p, size_t n, bool from_pend)
{
    for (int writes = 0;; writes++) {
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
        ssize_t w = writes == TURN_WRITES ? -2
                    : k == 1              ? write(c->fd, iov[0].iov_base, iov[0].iov_len)
                                          : writev(c->fd, iov, k);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1 && errno != EAGAIN)
            return -1;
        if (w < 0) {
            if (from_pend) {
                c->pend_off += c->pend_len - n;
            } else if (n) { /* the rest moves out of the shared buffer */
                if (c->pend_cap < n) {
                    free(c->pend);
                    c->pend_cap = (c->pend = malloc(n)) ? n : 0;
                    if (!c->pend)
                        return -1;
                }
                memcpy(c->pend, p, n);
                c->pend_off = 0;
            }
            c->pend_len = n;
            return w == -1 ? 1 : 2;
        }
        size_t u = (size_t)w, head = u < n ? u : n;
        c->stream_left -= u - head;
        c->stream_pos += u - head;
        if (head) {
            p += head;
            n -= head;
        }
    }
    c->pend_len = from_pend ? 0 : c->pend_len;
    if (from_pend && c->pend_cap > PEND_KEEP) {
        free(c->pend);
        c->pend = NULL;
        c->pend_cap = 0;
    }
    return 0;
}

static void conn_run(struct thr *t, struct conn *c)
{
    int r = 0;
    for (int steps = 0;; steps++) {
        if (steps == TURN_STEPS) {
            r = 2;
            goto stop;
        }
        if (c->pend_len || c->stream_left)
            r = push(c, c->pend_len ? c->pend + c->pend_off : NULL, c->pend_len, true);
        if (r)
            goto stop;
        if (c->closing && c->peer_eof)
            goto dead;
        if (c->closing) {
            /* half-close and drain, so unread input does not turn into an RST that
             * could destroy the response before the client reads it */
            shutdown(c->fd, SHUT_WR);
            c->closing = false;
            c->phase = PH_LINGER;
        }
        while (c->phase == PH_LINGER && c->can_read) {
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
        if (c->phase == PH_LINGER)
            return;
        t->olen = 0;
        int pr = process(t, c);
        if (pr == P_DEAD)
            goto dead;
        if (t->olen || c->stream_left) {
            r = push(c, t->out, t->olen, false);
            t->olen = 0;
            if (r)
                goto stop;
            continue;
        }
        if (pr != P_MORE)
            continue;
        if (c->peer_eof)
            goto dead;
        if (!c->can_read)
            return;
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
stop:
    if (r == 1)
        return; /* would block: EPOLLOUT resumes us */
    /* turn used up: a fast stream or a pipelining flood must not starve the thread's other
     * connections; re-arming the still-ready fd queues a fresh edge behind theirs */
    struct epoll_event ev = {.events = CONN_EVENTS, .data.ptr = c};
    if (r == 2 && epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        return;
dead:
    t->olen = 0;
    close(c->fd); /* also drops it from the epoll set */
    free(c->buf);
    free(c->pend);
    free(c);
}

static void accept_all(struct thr *t)
{
    for (;;) {
        int one = 1, fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && t->spare_fd >= 0) {
            /* out of descriptors: shed the connection rather than spin on it */
            close(t->spare_fd);
            fd = accept(t->lfd, NULL, NULL);
            if (fd >= 0)
                close(fd);
            t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            continue;
        }
        if (fd < 0)
            return;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        char *buf = malloc(BUF_INIT);
        /* registered once for both directions: no epoll_ctl per request */
        struct epoll_event ev = {.events = CONN_EVENTS, .data.ptr = c};
        if (!c || !buf || epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            free(buf);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->buf = buf;
        c->cap = BUF_INIT;
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
        if (n < 0 && errno != EINTR) {
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
            c->can_read |= (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            c->rdhup |= (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            conn_run(t, c);
        }
    }
    return NULL;
}

static bool parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[64];
    bool br = s[0] == '[';
    const char *end = br ? strchr(s, ']') : strrchr(s, ':'), *port = end ? end + 1 + br : NULL;
    uint64_t pn;
    if (!end || (br && end[1] != ':') || !parse_dec(port, strlen(port), 5, &pn) || pn > 65535)
        return false;
    size_t hl = (size_t)(end - s) - br;
    if (hl >= sizeof host)
        return false;
    memcpy(host, s + br, hl);
    host[hl] = '\0';
    const char *h = !strcmp(host, "localhost") ? "127.0.0.1" : hl ? host : "0.0.0.0";
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_family = br ? AF_INET6 : AF_INET,
                             .ai_socktype = SOCK_STREAM},
                    *ai;
    if (getaddrinfo(h, port, &hints, &ai) != 0)
        return false;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return true;
}

/* shared: SO_REUSEPORT, one listener per thread, so the kernel spreads connections without
 * a shared accept lock; otherwise an unlistened probe of whether the port is free at all */
static int make_listener(const struct sockaddr_storage *ss, socklen_t sl, bool shared)
{
    int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        bind(fd, (const struct sockaddr *)ss, sl) < 0 || (shared && listen(fd, 4096) < 0))
        return -1;
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
        char *end;
        if (!strncmp(a, "--listen=", 9) || !strncmp(a, "--threads=", 10))
            val = strchr(a, '=') + 1;
        else if ((!strcmp(a, "--listen") || !strcmp(a, "--threads")) && i + 1 < argc)
            val = argv[++i];
        if (!strcmp(a, "--quiet"))
            quiet = true;
        else if (val && a[2] == 'l')
            listen_arg = val;
        else if (!val || (threads = strtol(val, &end, 10)) < 1 || threads > 256 || *end)
            usage();
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
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] =
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"[i % PAT_LEN];

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the workers; main waits */

    struct thr *ts = calloc((size_t)threads, sizeof *ts);
    char host[64], port[8];
    /* SO_REUSEPORT alone would silently share the port with a stale instance */
    int probe = make_listener(&ss, sl, false);
    for (long i = 0; ts && i < threads; i++) {
        ts[i].lfd = probe < 0 ? -1 : make_listener(&ss, sl, true);
        if (ts[i].lfd < 0) {
            fprintf(stderr, "demo-upstream: cannot listen on %s: %s\n", listen_arg,
                    strerror(errno));
            return 1;
        }
        /* the others must share the port the first one was given */
        if (i == 0 && getsockname(ts[0].lfd, (struct sockaddr *)&ss, &sl) < 0)
            return 1;
    }
    close(probe);
    if (!ts || getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port,
                           NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return 1;
    bool v6 = ss.ss_family == AF_INET6;
    printf("listening on %s%s%s:%s\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
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
        fprintf(stderr, "demo-upstream: %ld thread%s on %s%s%s:%s\n", threads,
                threads == 1 ? "" : "s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    _exit(0); /* workers hold no state worth tearing down; stdout is already flushed */
}
