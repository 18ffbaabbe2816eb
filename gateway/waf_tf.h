/*
 * waf_tf.h — the WAF's transformations (SecLang `t:` actions): pure
 * functions from bytes to bytes, written for the rule engine (issue 9) to
 * apply once per value per request and share between the rules that ask
 * for the same chain.
 *
 * Every transformation writes into out, which has room for
 * PC_TF_OUT_MAX(n) bytes, and returns the output length; none allocates.
 * Decoders are lenient the way attackers' targets are (an invalid escape
 * is kept as it is, not dropped), so what a rule sees is at least what
 * the application might decode.
 */
#ifndef PC_WAF_TF_H
#define PC_WAF_TF_H

#include <stddef.h>

/* X(id, name) — the SecLang names. */
#define PC_TF_LIST(X)                             \
    X(NONE, "none")                               \
    X(LOWERCASE, "lowercase")                     \
    X(UPPERCASE, "uppercase")                     \
    X(URL_DECODE, "urlDecode")                    \
    X(URL_DECODE_UNI, "urlDecodeUni")             \
    X(HTML_ENTITY_DECODE, "htmlEntityDecode")     \
    X(JS_DECODE, "jsDecode")                      \
    X(CSS_DECODE, "cssDecode")                    \
    X(BASE64_DECODE, "base64Decode")              \
    X(HEX_DECODE, "hexDecode")                    \
    X(SQL_HEX_DECODE, "sqlHexDecode")             \
    X(ESCAPE_SEQ_DECODE, "escapeSeqDecode")       \
    X(UTF8_TO_UNICODE, "utf8toUnicode")           \
    X(REMOVE_NULLS, "removeNulls")                \
    X(REPLACE_NULLS, "replaceNulls")              \
    X(REMOVE_WHITESPACE, "removeWhitespace")      \
    X(COMPRESS_WHITESPACE, "compressWhitespace")  \
    X(REMOVE_COMMENTS, "removeComments")          \
    X(REPLACE_COMMENTS, "replaceComments")        \
    X(REMOVE_COMMENTS_CHAR, "removeCommentsChar") \
    X(NORMALIZE_PATH, "normalizePath")            \
    X(NORMALIZE_PATH_WIN, "normalizePathWin")     \
    X(CMD_LINE, "cmdLine")                        \
    X(TRIM, "trim")                               \
    X(TRIM_LEFT, "trimLeft")                      \
    X(TRIM_RIGHT, "trimRight")                    \
    X(LENGTH, "length")

typedef enum {
#define X(id, name) PC_TF_##id,
    PC_TF_LIST(X)
#undef X
        PC_TF_COUNT
} pc_tf_e;

/* Aliases accepted by name: normalisePath, normalisePathWin. */
int pc_tf_parse(const char *name, size_t n); /* -1 when unknown */
const char *pc_tf_name(int tf);

/* Room an output needs for an input of n bytes (utf8toUnicode may write
 * 6 bytes for a 2-byte sequence: 3n is enough; "length" writes ≤ 20). */
#define PC_TF_OUT_MAX(n) (3 * (n) + 24)

/* What in a value the decoders act on (pc_tf_features, a mask with
 * PC_TFF_KNOWN set) and what each acts on (pc_tf_triggers): on a value
 * without its triggers a decoder or null removal is the identity
 * (pc_tf_plain_effect 1), lowercase only lowers (2); other transformations
 * may change any value (0). Lets a chain's result be known without
 * running it (waf_eval.c). */
enum {
    PC_TFF_KNOWN = 1,   /* the mask was computed */
    PC_TFF_OTHER = 2,   /* a control byte or a byte over 0x7e */
    PC_TFF_URL = 4,     /* '%' or '+' */
    PC_TFF_ENTITY = 8,  /* an HTML entity htmlEntityDecode decodes ("&lt", "&#65") */
    PC_TFF_ESCAPE = 16, /* '\\' */
};
unsigned pc_tf_features(const unsigned char *v, size_t n);
/* The features byte c alone gives a value (0 for most). */
unsigned pc_tf_byte_features(unsigned char c);
unsigned pc_tf_triggers(int tf);
int pc_tf_plain_effect(int tf);

size_t pc_tf_apply(int tf, const unsigned char *in, size_t n, unsigned char *out);

#endif
