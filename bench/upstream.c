/*
 * upstream.c — demo-upstream: the fast HTTP/1.1 backend behind `make run`
 * and the load-test harness. It must never be the bottleneck of a benchmark.
 *
 *   demo-upstream [--listen HOST:PORT] [--threads N]
 *
 * Default 127.0.0.1:9000, one thread (one epoll loop and one SO_REUSEPORT
 * socket per thread). Port 0 picks a free port. Prints "listening on
 * HOST:PORT" once bound. Answers, with keep-alive and pipelining:
 *   GET /health        200 {"status":"ok"}
 *   /bytes/N           N bytes of "0123456789abcdef" repeated (streamed)
 *   /status/NNN        that status with a small JSON body (none for 204/304)
 *   anything else      200 with a JSON description of the request (method,
 *                      target, body size, X-Forwarded-For, X-Request-Id)
 * Request bodies (Content-Length or chunked) are read and discarded. It is a
 * demo and benchmark peer, not a conforming server: it is lenient, and
 * anything it cannot make sense of gets 400 and a closed connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUF_SIZE  16384
#define HEAD_MAX  65536
#define MAX_BYTES (64ULL << 30)

static const char pattern[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static char fill[65536 + 64]; /* the /bytes pattern, prebuilt */

/* What the answer needs from a request head, copied out of the buffer so it
 * survives while the body is read. */
typedef struct {
    char method[32], target[200], xff[64], rid[64];
    size_t mlen, tlen, xff_len, rid_len;
    int has_xff, has_rid, head;
} reqinfo_t;

typedef struct conn {
    int fd;
    char *buf;
    size_t cap, len;    /* unread bytes are buf[0, len) */
    uint64_t body_left; /* Content-Length body bytes still to discard */
    int chunked;        /* discarding a chunked body */
    int chunk_state;    /* 0 size, 1 ext, 2 data, 3 data CRLF, 4 trailers, 5 trailer line */
    uint64_t chunk_left;
    uint64_t body_bytes;
    uint64_t stream_left; /* /bytes/N still to send */
    uint64_t stream_sent;
    int close_after;
    int waiting_out;
    reqinfo_t pending; /* the request whose body is being read */
    int have_pending;
    /* the request being answered once its body is read */
    char resp[1024];
    size_t resp_len, resp_off;
} conn_t;

static struct sockaddr_storage listen_addr;
static socklen_t listen_len;

static void conn_free(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Case-insensitive "name:" at the start of a header line. */
static int header_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

static const char *header_value(const char *line, size_t n, size_t name_len, size_t *vlen)
{
    const char *v = line + name_len + 1, *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *vlen = (size_t)(e - v);
    return v;
}

/* Copies s as JSON string contents, escaping what must be. */
static size_t json_copy(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

static size_t copy_field(char *dst, size_t cap, const char *src, size_t n)
{
    if (n > cap)
        n = cap;
    memcpy(dst, src, n);
    return n;
}

/* Builds the response head (and small body) for a request into c->resp. */
static void prepare(conn_t *c, const reqinfo_t *q)
{
    char body[768];
    size_t bl = 0;
    int status = 200;
    const char *ctype = "application/json";
    uint64_t stream = 0;
    if (q->tlen >= 7 && memcmp(q->target, "/health", 7) == 0 &&
        (q->tlen == 7 || q->target[7] == '?')) {
        bl = (size_t)snprintf(body, sizeof(body), "{\"status\":\"ok\"}");
    } else if (q->tlen > 7 && memcmp(q->target, "/bytes/", 7) == 0) {
        stream = strtoull(q->target + 7, NULL, 10);
        if (stream > MAX_BYTES)
            stream = MAX_BYTES;
        ctype = "application/octet-stream";
    } else if (q->tlen > 8 && memcmp(q->target, "/status/", 8) == 0) {
        status = atoi(q->target + 8);
        if (status < 200 || status > 599)
            status = 400;
        if (status != 204 && status != 304)
            bl = (size_t)snprintf(body, sizeof(body), "{\"status\":%d}", status);
    } else {
        bl = (size_t)snprintf(body, sizeof(body), "{\"service\":\"demo-upstream\",\"method\":\"");
        bl += json_copy(body + bl, sizeof(body) - bl, q->method, q->mlen);
        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "\",\"path\":\"");
        bl += json_copy(body + bl, sizeof(body) - bl - 160, q->target, q->tlen);
        bl += (size_t)snprintf(
            body + bl, sizeof(body) - bl,
            "\",\"body_bytes\":%llu,\"x_forwarded_for\":", (unsigned long long)c->body_bytes);
        if (q->has_xff) {
            body[bl++] = '"';
            bl += json_copy(body + bl, sizeof(body) - bl - 90, q->xff, q->xff_len);
            body[bl++] = '"';
        } else {
            bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "null");
        }
        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, ",\"x_request_id\":");
        if (q->has_rid) {
            body[bl++] = '"';
            bl += json_copy(body + bl, sizeof(body) - bl - 10, q->rid, q->rid_len);
            body[bl++] = '"';
        } else {
            bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "null");
        }
        body[bl++] = '}';
        body[bl++] = '\n';
    }
    int n = snprintf(c->resp, sizeof(c->resp), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status,
                     status == 200 ? "OK" : "Status", ctype);
    if (status != 204)
        n += snprintf(c->resp + n, sizeof(c->resp) - (size_t)n, "Content-Length: %llu\r\n",
                      (unsigned long long)(stream ? stream : bl));
    n += snprintf(c->resp + n, sizeof(c->resp) - (size_t)n, "%s\r\n",
                  c->close_after ? "Connection: close\r\n" : "");
    if (!q->head && !stream && (size_t)n + bl <= sizeof(c->resp)) {
        memcpy(c->resp + n, body, bl);
        n += (int)bl;
    }
    c->resp_len = (size_t)n;
    c->resp_off = 0;
    c->stream_left = q->head ? 0 : stream;
    c->stream_sent = 0;
}

/* Writes the pending response; 1 when done, 0 when blocked, -1 on error. */
static int flush(conn_t *c)
{
    while (c->resp_off < c->resp_len || c->stream_left) {
        struct iovec iov[2];
        int cnt = 0;
        if (c->resp_off < c->resp_len) {
            iov[cnt].iov_base = c->resp + c->resp_off;
            iov[cnt++].iov_len = c->resp_len - c->resp_off;
        }
        if (c->stream_left) {
            /* fill holds the pattern with 64 bytes to spare: any phase fits */
            size_t n = sizeof(fill) - 64;
            if (c->stream_left < n)
                n = (size_t)c->stream_left;
            iov[cnt].iov_base = fill + c->stream_sent % 64;
            iov[cnt++].iov_len = n;
        }
        ssize_t w = writev(c->fd, iov, cnt);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        size_t h = c->resp_len - c->resp_off;
        if ((size_t)w <= h) {
            c->resp_off += (size_t)w;
        } else {
            c->resp_off = c->resp_len;
            c->stream_left -= (uint64_t)w - h;
            c->stream_sent += (uint64_t)w - h;
        }
    }
    return 1;
}

/* Discards body bytes from buf[*i..len); 1 when the body is complete. */
static int discard_body(conn_t *c, size_t *i)
{
    if (!c->chunked) {
        size_t n = c->len - *i;
        if (n > c->body_left)
            n = (size_t)c->body_left;
        *i += n;
        c->body_left -= n;
        c->body_bytes += n;
        return c->body_left == 0;
    }
    while (*i < c->len) {
        char ch = c->buf[*i];
        switch (c->chunk_state) {
        case 0: /* size */
            if (ch >= '0' && ch <= '9')
                c->chunk_left = c->chunk_left * 16 + (uint64_t)(ch - '0');
            else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
                c->chunk_left = c->chunk_left * 16 + (uint64_t)((ch | 0x20) - 'a' + 10);
            else if (ch == '\n')
                c->chunk_state = c->chunk_left ? 2 : 4;
            else if (ch == ';')
                c->chunk_state = 1;
            (*i)++;
            break;
        case 1: /* extension */
            if (ch == '\n')
                c->chunk_state = c->chunk_left ? 2 : 4;
            (*i)++;
            break;
        case 2: { /* data */
            size_t n = c->len - *i;
            if (n > c->chunk_left)
                n = (size_t)c->chunk_left;
            *i += n;
            c->chunk_left -= n;
            c->body_bytes += n;
            if (c->chunk_left == 0)
                c->chunk_state = 3;
            break;
        }
        case 3: /* CRLF after data */
            if (ch == '\n')
                c->chunk_state = 0;
            (*i)++;
            break;
        case 4: /* start of a trailer line or the final CRLF */
            (*i)++;
            if (ch == '\n')
                return 1;
            if (ch != '\r')
                c->chunk_state = 5;
            break;
        case 5: /* trailer line */
            (*i)++;
            if (ch == '\n')
                c->chunk_state = 4;
            break;
        }
    }
    return 0;
}

/* Handles everything buffered. Returns -1 to close the connection. */
static int process(conn_t *c)
{
    size_t i = 0;
    for (;;) {
        if (c->have_pending) {
            if (!discard_body(c, &i))
                break;
            prepare(c, &c->pending);
            c->have_pending = 0;
            int f = flush(c);
            if (f < 0)
                return -1;
            if (f == 0) {
                c->waiting_out = 1;
                break;
            }
            if (c->close_after)
                return -1;
        }
        /* the next head */
        char *start = c->buf + i;
        size_t avail = c->len - i;
        char *end = avail >= 4 ? memmem(start, avail, "\r\n\r\n", 4) : NULL;
        if (!end) {
            if (avail >= HEAD_MAX)
                return -1;
            break;
        }
        size_t head_len = (size_t)(end - start) + 4;
        reqinfo_t *q = &c->pending;
        memset(q, 0, sizeof(*q));
        char *eol = memchr(start, '\r', head_len);
        char *sp1 = memchr(start, ' ', (size_t)(eol - start));
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
        if (!sp1 || !sp2)
            return -1;
        q->mlen = copy_field(q->method, sizeof(q->method), start, (size_t)(sp1 - start));
        q->tlen = copy_field(q->target, sizeof(q->target), sp1 + 1, (size_t)(sp2 - sp1 - 1));
        q->head = q->mlen == 4 && memcmp(q->method, "HEAD", 4) == 0;
        int http10 = (size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
        int keep = !http10, close_hdr = 0;
        c->body_left = 0;
        c->chunked = 0;
        c->chunk_state = 0;
        c->chunk_left = 0;
        c->body_bytes = 0;
        for (char *line = eol + 2; line < end + 2;) {
            char *le = memchr(line, '\r', (size_t)(end + 2 - line));
            size_t n = (size_t)(le - line);
            size_t vl;
            const char *v;
            if (header_is(line, n, "content-length")) {
                v = header_value(line, n, 14, &vl);
                c->body_left = strtoull(v, NULL, 10);
            } else if (header_is(line, n, "transfer-encoding")) {
                v = header_value(line, n, 17, &vl);
                c->chunked = vl == 7 && strncasecmp(v, "chunked", 7) == 0;
            } else if (header_is(line, n, "connection")) {
                v = header_value(line, n, 10, &vl);
                if (vl == 5 && strncasecmp(v, "close", 5) == 0)
                    close_hdr = 1;
                else if (vl == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                    keep = 1;
            } else if (header_is(line, n, "x-forwarded-for")) {
                v = header_value(line, n, 15, &vl);
                q->xff_len = copy_field(q->xff, sizeof(q->xff), v, vl);
                q->has_xff = 1;
            } else if (header_is(line, n, "x-request-id")) {
                v = header_value(line, n, 12, &vl);
                q->rid_len = copy_field(q->rid, sizeof(q->rid), v, vl);
                q->has_rid = 1;
            }
            line = le + 2;
        }
        c->close_after = close_hdr || !keep;
        i += head_len;
        c->have_pending = 1;
    }
    memmove(c->buf, c->buf + i, c->len - i);
    c->len -= i;
    return 0;
}

typedef struct {
    int ep, lfd;
} loop_t;

static int listen_socket(void)
{
    int fd = socket(listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&listen_addr, listen_len) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *loop_main(void *arg)
{
    loop_t *l = arg;
    struct epoll_event evs[256];
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->lfd, &lev);
    for (;;) {
        int n = epoll_wait(l->ep, evs, 256, -1);
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    c = calloc(1, sizeof(*c));
                    if (!c || !(c->buf = malloc(BUF_SIZE))) {
                        free(c);
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->cap = BUF_SIZE;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                             .data.ptr = c};
                    epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            int dead = 0, rdhup = (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            if (c->waiting_out) {
                int f = flush(c);
                if (f < 0 || (f == 1 && c->close_after))
                    dead = 1;
                else if (f == 1)
                    c->waiting_out = 0;
            }
            /* ET: read until the socket is drained (a short read, unless the
             * peer's FIN is queued, which raises no edge of its own) */
            while (!dead && !c->waiting_out) {
                if (c->len == c->cap) {
                    size_t nc = c->cap * 2;
                    char *nb = nc <= HEAD_MAX * 2 ? realloc(c->buf, nc) : NULL;
                    if (!nb) {
                        dead = 1;
                        break;
                    }
                    c->buf = nb;
                    c->cap = nc;
                }
                size_t want = c->cap - c->len;
                ssize_t r = read(c->fd, c->buf + c->len, want);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    dead = 1;
                    break;
                }
                if (r < 0)
                    break;
                c->len += (size_t)r;
                if (process(c) != 0) {
                    dead = 1;
                    break;
                }
                if ((size_t)r < want && !rdhup)
                    break;
            }
            /* bytes left behind a response that was blocked */
            if (!dead && !c->waiting_out && c->len && process(c) != 0)
                dead = 1;
            if (dead)
                conn_free(l->ep, c);
        }
    }
    return NULL;
}

static int parse_listen(const char *s)
{
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        port = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res) != 0)
        return -1;
    memcpy(&listen_addr, res->ai_addr, res->ai_addrlen);
    listen_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:9000";
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quiet") == 0)
            continue;
        else {
            fprintf(stderr, "usage: demo-upstream [--listen HOST:PORT] [--threads N]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || parse_listen(listen_at) != 0) {
        fprintf(stderr, "demo-upstream: bad --listen or --threads\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(fill); i++)
        fill[i] = pattern[i % 64];
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    loop_t *loops = calloc((size_t)threads, sizeof(*loops));
    for (int t = 0; t < threads; t++) {
        loops[t].lfd = listen_socket();
        if (loops[t].lfd < 0) {
            fprintf(stderr, "demo-upstream: cannot listen on %s: %s\n", listen_at, strerror(errno));
            return 1;
        }
        if (t == 0) { /* port 0: the other threads share the port the first got */
            listen_len = sizeof(listen_addr);
            getsockname(loops[0].lfd, (struct sockaddr *)&listen_addr, &listen_len);
        }
        loops[t].ep = epoll_create1(EPOLL_CLOEXEC);
    }
    char host[64] = "?";
    unsigned port = 0;
    if (listen_addr.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&listen_addr)->sin6_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&listen_addr)->sin6_port);
        printf("listening on [%s]:%u\n", host, port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&listen_addr)->sin_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&listen_addr)->sin_port);
        printf("listening on %s:%u\n", host, port);
    }
    fflush(stdout);
    pthread_t tid;
    for (int t = 1; t < threads; t++)
        pthread_create(&tid, NULL, loop_main, &loops[t]);
    loop_main(&loops[0]);
    return 0;
}
