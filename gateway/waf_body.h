/*
 * waf_body.h — what the WAF inspects, taken out of a request: arguments
 * from a query string or an urlencoded body, cookies, JSON bodies
 * flattened into arguments, multipart bodies into arguments and file
 * names. Groundwork for the rule engine (issue 9).
 *
 * Each parser hands every (name, value) pair to a callback; names and
 * values are valid during the callback only (decoded into the caller's
 * buffer out, at least as long as the input: decoding never grows, or
 * pointing into the input), so nothing is allocated per pair. A
 * parser stops with an error when the input is not what it claims to be
 * (a body that fails to parse is blocked, never passed uninspected) or
 * when a limit is crossed.
 */
#ifndef PC_WAF_BODY_H
#define PC_WAF_BODY_H

#include <stddef.h>

typedef enum {
    PC_WAFB_ARG = 0,    /* an argument (query string, urlencoded, JSON, multipart field) */
    PC_WAFB_COOKIE,     /* a cookie */
    PC_WAFB_FILE,       /* a multipart file: name is the field, value the file name */
    PC_WAFB_PART_HEADER /* a multipart part's header line (name: value) */
} pc_wafb_kind_e;

/* Returns 0 to go on, non-zero to stop (that value is returned). */
typedef int (*pc_wafb_cb)(void *arg, int kind, const char *name, size_t nlen, const char *value,
                          size_t vlen);

#define PC_WAFB_MAX_ARGS  1024 /* pairs per request part */
#define PC_WAFB_MAX_DEPTH 32   /* JSON nesting */

typedef enum {
    PC_WAFB_OK = 0,
    PC_WAFB_MALFORMED = -1, /* not valid for its declared type */
    PC_WAFB_TOO_MANY = -2,  /* more pairs than PC_WAFB_MAX_ARGS */
    PC_WAFB_TOO_DEEP = -3,  /* JSON nested deeper than PC_WAFB_MAX_DEPTH */
    PC_WAFB_NOMEM = -4
} pc_wafb_rc_e;

/* a=1&b=%41+b — query strings and application/x-www-form-urlencoded.
 * out: at least n bytes; each pair is decoded into a place of its own
 * there, so they all stay valid as long as out does. Empty pairs ("a&&b")
 * are skipped. */
int pc_wafb_urlencoded(const char *p, size_t n, char *out, pc_wafb_cb cb, void *arg);

/* Cookie: a=1; b=2 (values as sent, quotes kept; pointing into p). */
int pc_wafb_cookies(const char *p, size_t n, pc_wafb_cb cb, void *arg);

/* A JSON document flattened: {"a":{"b":[1,"x"]}} gives json.a.b.0 = 1 and
 * json.a.b.1 = x; scalars as written (true, null, numbers), strings
 * decoded into out (at least n bytes; they stay valid as long as out
 * does); a top-level scalar is the argument "json"; an empty object or
 * array is an argument valued "" ({"a":{"$nin":[]}} gives json.a.$nin),
 * so that its name is inspected like any other. Two members of an
 * object with one name are malformed; so is more than 8 x
 * PC_WAFB_MAX_ARGS names in the objects open at once (too many). */
int pc_wafb_json(const char *p, size_t n, char *out, pc_wafb_cb cb, void *arg);

/* multipart/form-data with the boundary from the Content-Type. Fields with
 * a filename are files (their contents are not handed over); the headers
 * of every part are. out: at least n bytes. */
int pc_wafb_multipart(const char *p, size_t n, const char *boundary, size_t blen, char *out,
                      pc_wafb_cb cb, void *arg);

/* The boundary parameter of a multipart Content-Type value; 0 or -1. */
int pc_wafb_boundary(const char *ctype, size_t n, const char **b, size_t *blen);

#endif
