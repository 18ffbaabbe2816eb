/*
 * http1.h — the strict, allocation-free HTTP/1.1 message-head parser.
 *
 * Heads are handled in two steps, in the picohttpparser tradition but
 * stricter:
 *
 *   1. pc_http_scan() looks at bytes as they arrive and finds the end of the
 *      head. It is incremental (never re-reads a byte), enforces the size
 *      limits before the head is complete, and rejects bare LF at once.
 *   2. pc_http_parse_request() / pc_http_parse_response() parse a complete
 *      head exactly once into slices that point into the caller's buffer
 *      (zero-copy) and decide the message framing.
 *
 * Everything that could be read two ways is an error: see
 * docs/internals/http-parser.md for the full list and the reasons.
 * Return convention: PC_HTTP_OK (0), PC_HTTP_AGAIN (1, need more bytes), or a
 * negative pc_http_err_e.
 */
#ifndef PC_HTTP1_H
#define PC_HTTP1_H

#include <stdint.h>
#include <stddef.h>

#include "str.h"

#define PC_HTTP_OK    0
#define PC_HTTP_AGAIN 1

/* X(name, status, detail): every way a head can be refused. The status is what
 * the client gets (a response from an upstream is always 502 instead). */
#define PC_HTTP_ERRORS(X)                                                   \
    X(BARE_LF, 400, "line terminated by bare LF")                           \
    X(REQUEST_LINE, 400, "malformed request line")                          \
    X(METHOD, 400, "invalid method")                                        \
    X(TARGET, 400, "invalid request-target")                                \
    X(URI_TOO_LONG, 414, "request-target too long")                         \
    X(VERSION, 400, "malformed HTTP version")                               \
    X(VERSION_UNSUPPORTED, 505, "unsupported HTTP version")                 \
    X(HEADER_NAME, 400, "invalid header field name")                        \
    X(HEADER_VALUE, 400, "invalid byte in header field value")              \
    X(HEADER_NO_COLON, 400, "header field without colon")                   \
    X(WS_BEFORE_COLON, 400, "whitespace between field name and colon")      \
    X(OBS_FOLD, 400, "obsolete line folding")                               \
    X(HEADERS_TOO_LARGE, 431, "header section too large")                   \
    X(TOO_MANY_HEADERS, 431, "too many header fields")                      \
    X(HOST_MISSING, 400, "missing Host")                                    \
    X(HOST_DUPLICATE, 400, "duplicate Host")                                \
    X(HOST_INVALID, 400, "invalid Host")                                    \
    X(HOST_MISMATCH, 400, "absolute-form authority differs from Host")      \
    X(CL_INVALID, 400, "invalid Content-Length")                            \
    X(CL_DUPLICATE, 400, "more than one Content-Length")                    \
    X(CT_DUPLICATE, 400, "more than one Content-Type")                      \
    X(CL_AND_TE, 400, "both Content-Length and Transfer-Encoding")          \
    X(TE_UNSUPPORTED, 400, "Transfer-Encoding other than a single chunked") \
    X(TE_HTTP10, 400, "Transfer-Encoding in an HTTP/1.0 message")           \
    X(CONNECTION_INVALID, 400, "invalid Connection header")                 \
    X(EXPECT_UNSUPPORTED, 417, "unsupported expectation")                   \
    X(PATH_ENCODING, 400, "invalid percent-encoding in path")               \
    X(PATH_DOT_SEGMENT, 400, "dot-segment in path")                         \
    X(PATH_BACKSLASH, 400, "backslash in path")                             \
    X(CONNECT, 405, "CONNECT is not supported")                             \
    X(STATUS_LINE, 502, "malformed status line")                            \
    X(STATUS_UNSUPPORTED, 502, "unexpected status code")                    \
    X(CHUNK_SIZE, 400, "invalid chunk size")                                \
    X(CHUNK_EXT, 400, "invalid chunk extension")                            \
    X(CHUNK_DATA_END, 400, "chunk data not followed by CRLF")               \
    X(TRAILER, 400, "invalid trailer section")

typedef enum {
    PC_HTTP_E_NONE = 0,
#define X(name, status, detail) PC_HTTP_E_##name,
    PC_HTTP_ERRORS(X)
#undef X
        PC_HTTP_E_COUNT
} pc_http_err_e;

/* The negative return value for error e. */
#define PC_HTTP_ERR(e) (-(int)(e))

/* Status code and human-readable detail of a negative return value. */
int pc_http_err_status(int rc);
const char *pc_http_err_detail(int rc);

/* Header fields the gateway recognises; everything else is PC_HDR_OTHER. */
#define PC_HDR_IDS(X)                                       \
    X(HOST, "host")                                         \
    X(CONTENT_LENGTH, "content-length")                     \
    X(TRANSFER_ENCODING, "transfer-encoding")               \
    X(CONNECTION, "connection")                             \
    X(KEEP_ALIVE, "keep-alive")                             \
    X(PROXY_CONNECTION, "proxy-connection")                 \
    X(TE, "te")                                             \
    X(TRAILER, "trailer")                                   \
    X(UPGRADE, "upgrade")                                   \
    X(EXPECT, "expect")                                     \
    X(PROXY_AUTHENTICATE, "proxy-authenticate")             \
    X(X_FORWARDED_FOR, "x-forwarded-for")                   \
    X(X_FORWARDED_PROTO, "x-forwarded-proto")               \
    X(X_FORWARDED_HOST, "x-forwarded-host")                 \
    X(X_REQUEST_ID, "x-request-id")                         \
    X(X_CLIENT_CERT_SUBJECT, "x-client-cert-subject")       \
    X(DATE, "date")                                         \
    X(AUTHORIZATION, "authorization")                       \
    X(ORIGIN, "origin")                                     \
    X(AC_REQUEST_METHOD, "access-control-request-method")   \
    X(AC_REQUEST_HEADERS, "access-control-request-headers") \
    X(CONTENT_TYPE, "content-type")

typedef enum {
    PC_HDR_OTHER = 0,
#define X(name, lower) PC_HDR_##name,
    PC_HDR_IDS(X)
#undef X
        PC_HDR_COUNT
} pc_hdr_id_e;

/* Header flags. HOP: never forwarded to the next hop (hop-by-hop by RFC 9110
 * §7.6.1, or named in Connection, or framing the gateway regenerates).
 * DROP: not forwarded by policy (a name with '_', or removed by a filter). */
#define PC_HDR_F_HOP  0x1
#define PC_HDR_F_DROP 0x2

typedef struct pc_http_header_s {
    pc_str_t name;
    pc_str_t value; /* without leading/trailing whitespace */
    uint16_t id;    /* pc_hdr_id_e */
    uint16_t flags; /* PC_HDR_F_* */
} pc_http_header_t;

typedef enum {
    PC_M_OTHER = 0,
    PC_M_GET,
    PC_M_HEAD,
    PC_M_POST,
    PC_M_PUT,
    PC_M_DELETE,
    PC_M_OPTIONS,
    PC_M_PATCH,
    PC_M_TRACE,
    PC_M_CONNECT
} pc_method_e;

typedef enum { PC_TARGET_ORIGIN = 0, PC_TARGET_ABSOLUTE, PC_TARGET_ASTERISK } pc_target_form_e;

/* How a message body is delimited. */
typedef enum {
    PC_BODY_NONE = 0, /* no body at all */
    PC_BODY_LENGTH,   /* exactly content_length bytes (possibly 0) */
    PC_BODY_CHUNKED,  /* chunked transfer coding */
    PC_BODY_CLOSE     /* until the connection closes (responses only) */
} pc_body_kind_e;

typedef struct pc_http_limits_s {
    size_t max_uri;          /* request-target bytes; more is 414 */
    size_t max_header_bytes; /* header field lines incl. their CRLF; more is 431 */
    uint32_t max_headers;    /* header field lines; more is 431 */
} pc_http_limits_t;

/* Incremental head scanner state; zero it before the first call. */
typedef struct pc_http_scan_s {
    size_t pos;        /* next byte to examine */
    size_t line_start; /* offset of the line being scanned */
    size_t start;      /* offset of the head's first byte (leading CRLFs skipped) */
    size_t hdr_start;  /* offset of the first header line, 0 until known */
    uint32_t lines;    /* complete lines of the head seen so far */
} pc_http_scan_t;

typedef struct pc_http_request_s {
    pc_str_t method;
    pc_str_t target;    /* as received */
    pc_str_t path;      /* path of the target, raw (not normalised) */
    pc_str_t query;     /* after '?', without it; .p is NULL when there is no '?' */
    pc_str_t authority; /* absolute-form only */
    pc_str_t host;      /* the Host field value */
    pc_http_header_t *headers;
    uint32_t nheaders;
    uint32_t header_bytes; /* the header section's size, as max_header_bytes counts it */
    uint8_t method_id;     /* pc_method_e */
    uint8_t minor;         /* HTTP/1.<minor>: 0 or 1 */
    uint8_t target_form;   /* pc_target_form_e */
    uint8_t body;          /* pc_body_kind_e: NONE, LENGTH or CHUNKED */
    int64_t content_length;
    unsigned keep_alive : 1;      /* the client allows the connection to persist */
    unsigned expect_continue : 1; /* Expect: 100-continue */
} pc_http_request_t;

typedef struct pc_http_response_s {
    pc_str_t reason;
    pc_http_header_t *headers;
    uint32_t nheaders;
    uint16_t status;
    uint8_t minor;
    uint8_t body; /* pc_body_kind_e */
    int64_t content_length;
    unsigned keep_alive : 1; /* the upstream allows the connection to persist */
} pc_http_response_t;

/*
 * Scans buf[0..len) for the end of a message head, resuming where the last
 * call stopped (buf may have grown since, but earlier bytes must not have
 * changed). Leading empty lines (CRLF) before a request line are skipped, as
 * RFC 9112 §2.2 allows. On PC_HTTP_OK, s->start is the offset of the head and
 * *end the offset one past its final CRLF. Limits are enforced as soon as
 * they are certain to be exceeded: a first line longer than any acceptable
 * request line is 414, a header section over max_header_bytes or with more
 * than max_headers lines is 431. Pass lim = NULL for responses (no limits
 * other than those the caller imposes on len).
 */
int pc_http_scan(pc_http_scan_t *s, const char *buf, size_t len, const pc_http_limits_t *lim,
                 size_t *end);

/*
 * Parses a complete request head head[0..len) (as found by pc_http_scan,
 * starting at s->start and ending after the final CRLF) into req. hdrs must
 * have room for cap header lines (scan.lines - 1 is always enough). Checks
 * every byte, the framing (Content-Length / Transfer-Encoding), Host,
 * Connection and Expect, and flags hop-by-hop fields with PC_HDR_F_HOP.
 */
int pc_http_parse_request(const char *head, size_t len, const pc_http_limits_t *lim,
                          pc_http_header_t *hdrs, uint32_t cap, pc_http_request_t *req);

/*
 * Parses a complete response head. request_method is the method of the
 * request it answers (HEAD responses and 204/304 have no body). Interim 1xx
 * responses parse successfully with body = PC_BODY_NONE; the caller skips
 * them (101 is refused, the gateway never asks to switch protocols).
 */
int pc_http_parse_response(const char *head, size_t len, pc_method_e request_method,
                           pc_http_header_t *hdrs, uint32_t cap, pc_http_response_t *resp);

/*
 * Normalises a raw origin-form path for routing and forwarding: decodes
 * percent-escapes of unreserved characters (RFC 3986 §2.3), upper-cases the
 * hex digits of the other escapes and merges runs of '/'. A dot-segment ("."
 * or "..", also when percent-encoded or delimited by ';' or an encoded
 * slash), a backslash (raw or encoded: some backends read it as '/'), an
 * invalid escape, an encoded NUL, or a path not starting with '/' is an
 * error. out must have room for in.n bytes; *outn receives the normalised
 * length.
 */
int pc_http_normalize_path(pc_str_t in, char *out, size_t *outn);

/* 1 for a method the gateway accepts: 1 to 32 of [A-Z_-]. Methods are
 * tokens in RFC 9110, but lower-case ones ("get") are refused, as nginx does:
 * a backend that upper-cases them would undo route method restrictions. */
int pc_http_valid_method(pc_str_t m);

/* Copies path into out without its segments' parameters (";jsessionid=1",
 * ";x") — what a Tomcat-style backend routes on — and returns the length.
 * out needs path.n bytes. */
size_t pc_http_strip_params(pc_str_t path, char *out);

/* 1 when the method may be retried safely (RFC 9110 §9.2.2). */
int pc_http_method_idempotent(pc_method_e m);

/* The first header with the given id, or NULL. */
const pc_http_header_t *pc_http_find(const pc_http_header_t *h, uint32_t n, pc_hdr_id_e id);

/* The first header whose name equals name case-insensitively, or NULL. */
const pc_http_header_t *pc_http_find_name(const pc_http_header_t *h, uint32_t n, pc_str_t name);

/* Longest X-Request-Id kept from a client. */
#define PC_REQUEST_ID_MAX 128

/* 1 for a valid X-Request-Id value worth keeping: 1..PC_REQUEST_ID_MAX
 * bytes of [A-Za-z0-9._:-]. */
int pc_http_valid_request_id(pc_str_t v);

/* The standard reason phrase of a status code ("" when unknown). */
const char *pc_http_reason(int status);

#endif
