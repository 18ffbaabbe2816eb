/*
 * fuzz_waf_pf.c — libFuzzer target for the prefilter's literal extraction
 * (gateway/waf_pf.c), checked against PCRE2 itself.
 *
 * Input: a pattern, a NUL byte, then subjects separated by NUL bytes. For
 * a pattern PCRE2 compiles (as the WAF compiles @rx) and for which the
 * extraction gives literals, every subject the pattern matches must
 * contain one of them, ignoring ASCII case — else the prefilter would skip
 * a rule that matches, and the WAF would miss an attack.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "fuzz_common.h"
#include "str.h"
#include "waf_pf.h"

static int contains(const char *s, size_t n, const char *lit, size_t ln)
{
    for (size_t i = 0; i + ln <= n; i++) {
        size_t k = 0;
        while (k < ln && pc_lower((unsigned char)s[i + k]) == (unsigned char)lit[k])
            k++;
        if (k == ln)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, 0, size);
    size_t plen = nul ? (size_t)(nul - p) : size;
    pc_pf_lits_t lits;
    if (pc_pf_regex(p, plen, &lits) != 0)
        return 0;
    FZ_ASSERT(lits.n > 0 && lits.n <= PC_PF_MAX_LITS);
    for (unsigned i = 0; i < lits.n; i++) {
        FZ_ASSERT(lits.len[i] > 0 && lits.len[i] <= PC_PF_LIT_MAX);
        for (unsigned k = 0; k < lits.len[i]; k++) /* lower case ASCII */
            FZ_ASSERT(pc_lower((unsigned char)lits.s[i][k]) == (unsigned char)lits.s[i][k] &&
                      (unsigned char)lits.s[i][k] < 0x80);
    }
    int code;
    PCRE2_SIZE at;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)p, plen, PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
    if (!re)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, 10000);
    pcre2_set_depth_limit(mc, 1000);
    /* the subjects: after the pattern, NUL-separated; and the pattern's
     * own text, a subject that often matches */
    const char *s = nul ? nul + 1 : p + size;
    const char *end = p + size;
    for (int own = 1; own >= 0; own--) {
        const char *sub = own ? p : s;
        size_t sl = own ? plen : 0;
        while (own || sub <= end) {
            if (!own) {
                const char *z = memchr(sub, 0, (size_t)(end - sub));
                sl = z ? (size_t)(z - sub) : (size_t)(end - sub);
            }
            int rc = pcre2_match(re, (PCRE2_SPTR)sub, sl, 0, 0, md, mc);
            if (rc >= 0) {
                int found = 0;
                for (unsigned i = 0; i < lits.n && !found; i++)
                    found = contains(sub, sl, lits.s[i], lits.len[i]);
                FZ_ASSERT(found);
            }
            if (own)
                break;
            sub += sl + 1;
        }
    }
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return 0;
}
