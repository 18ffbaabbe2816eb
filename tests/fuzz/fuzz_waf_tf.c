/*
 * fuzz_waf_tf.c — libFuzzer target for the WAF transformations: every
 * transformation on the input, and a chain of them picked by the input.
 *
 * Invariants (abort on violation):
 *  - no transformation writes past PC_TF_OUT_MAX(n) bytes (each output
 *    buffer is exactly that long: ASan sees any overrun) or returns more;
 *  - shrinking ones never grow their input; "length" writes the length;
 *  - case folding, trimming, path normalising and removals are idempotent;
 *  - on a value without the features (pc_tf_features) a transformation
 *    triggers on (pc_tf_triggers), those pc_tf_plain_effect calls the
 *    identity are, and lowercase only lowers.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "str.h"
#include "waf_tf.h"

static int shrinks(int tf)
{
    return tf != PC_TF_UTF8_TO_UNICODE && tf != PC_TF_LENGTH && tf != PC_TF_HTML_ENTITY_DECODE &&
           tf != PC_TF_URL_DECODE_UNI && tf != PC_TF_JS_DECODE && tf != PC_TF_CSS_DECODE &&
           tf != PC_TF_ESCAPE_SEQ_DECODE && tf != PC_TF_REPLACE_COMMENTS;
}

static int idempotent(int tf)
{
    return tf == PC_TF_LOWERCASE || tf == PC_TF_UPPERCASE || tf == PC_TF_TRIM ||
           tf == PC_TF_TRIM_LEFT || tf == PC_TF_TRIM_RIGHT || tf == PC_TF_NORMALIZE_PATH ||
           tf == PC_TF_REMOVE_WHITESPACE || tf == PC_TF_REMOVE_NULLS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int tf = 0; tf < PC_TF_COUNT; tf++) {
        unsigned char *out = malloc(PC_TF_OUT_MAX(size));
        size_t n = pc_tf_apply(tf, data, size, out);
        FZ_ASSERT(n <= PC_TF_OUT_MAX(size));
        FZ_ASSERT(!shrinks(tf) || n <= size);
        if (idempotent(tf)) {
            unsigned char *again = malloc(PC_TF_OUT_MAX(n));
            size_t m = pc_tf_apply(tf, out, n, again);
            FZ_ASSERT(m == n && memcmp(again, out, n) == 0);
            free(again);
        }
        /* on a value without its triggers, what pc_tf_plain_effect says
         * (the engine skips running such transformations) */
        int eff = pc_tf_plain_effect(tf);
        if (eff && !(pc_tf_features(data, size) & pc_tf_triggers(tf))) {
            FZ_ASSERT(n == size);
            for (size_t i = 0; i < n; i++)
                FZ_ASSERT(out[i] == (eff == 2 ? pc_lower(data[i]) : data[i]));
        }
        free(out);
    }
    /* a chain of up to four, named by the first bytes */
    unsigned char *a = malloc(PC_TF_OUT_MAX(size)), *b;
    memcpy(a, data, size);
    size_t n = size;
    for (size_t k = 0; k < 4 && k < size; k++) {
        b = malloc(PC_TF_OUT_MAX(n));
        size_t m = pc_tf_apply(data[k] % PC_TF_COUNT, a, n, b);
        FZ_ASSERT(m <= PC_TF_OUT_MAX(n));
        free(a);
        a = b;
        n = m;
    }
    free(a);
    return 0;
}
