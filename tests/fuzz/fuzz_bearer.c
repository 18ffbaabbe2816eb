/*
 * fuzz_bearer.c — libFuzzer target for the bearer token taken from a
 * request's Authorization fields (pc_jwt_bearer). Each input line is a
 * header field line; the head goes through pc_http_parse_request first, so
 * the fields reach the extractor as the gateway sees them.
 *
 * Invariants (abort on violation):
 *  - a token comes back exactly when there is one Authorization field
 *    (any case of the name), its value starts with "Bearer " in any case,
 *    and something other than spaces follows;
 *  - the token is a non-empty suffix of that field's value, does not start
 *    with a space, and holds every byte after the scheme's spaces;
 *  - without a token, the slice is empty and a reason is given.
 */
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "http1.h"
#include "jwt.h"

#define MAXF 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    static char head[8192];
    const char *first = "GET / HTTP/1.1\r\nHost: gw\r\n";
    size_t hl = strlen(first);
    memcpy(head, first, hl);
    unsigned lines = 0;
    for (size_t i = 0, s = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t n = i - s;
        if (n && data[i - 1] == '\r')
            n--;
        if (lines < MAXF && n && !memchr(data + s, '\r', n)) {
            memcpy(head + hl, data + s, n);
            hl += n;
            head[hl++] = '\r', head[hl++] = '\n';
            lines++;
        }
        s = i + 1;
    }
    head[hl++] = '\r', head[hl++] = '\n';

    pc_http_header_t hdrs[MAXF + 1];
    pc_http_request_t r;
    if (pc_http_parse_request(head, hl, NULL, hdrs, MAXF + 1, &r) != PC_HTTP_OK)
        return 0;

    const pc_http_header_t *auth = NULL;
    unsigned nauth = 0;
    for (uint32_t i = 0; i < r.nheaders; i++)
        if (r.headers[i].name.n == 13 && strncasecmp(r.headers[i].name.p, "authorization", 13) == 0)
            auth = &r.headers[i], nauth++;
    int want = nauth == 1 && auth->value.n > 7 &&
               strncasecmp(auth->value.p, "bearer ", 7) == 0;
    size_t skip = 7;
    if (want) {
        while (skip < auth->value.n && auth->value.p[skip] == ' ')
            skip++;
        want = skip < auth->value.n;
    }

    const char *why = NULL;
    pc_str_t tok = pc_jwt_bearer(r.headers, r.nheaders, &why);
    FZ_ASSERT(!!tok.p == want);
    if (want) {
        FZ_ASSERT(tok.n > 0 && tok.p == auth->value.p + skip && tok.n == auth->value.n - skip);
        FZ_ASSERT(fz_inside(tok.p, tok.n, auth->value.p, auth->value.n));
        FZ_ASSERT(tok.p[0] != ' ' && tok.p[tok.n - 1] != ' ' && tok.p[tok.n - 1] != '\t');
    } else {
        FZ_ASSERT(tok.n == 0 && why && *why);
    }
    return 0;
}
