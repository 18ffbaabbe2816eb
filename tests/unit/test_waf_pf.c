/*
 * test_waf_pf.c — the prefilter's literal extraction: what it requires of
 * common rule shapes, and "unknown" for every construct it does not model
 * (a wrong literal would make the WAF miss attacks).
 */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "waf_pf.h"

/* The literals of re joined with '|' (in order), or "?" when unknown. */
static const char *lits(const char *re)
{
    static char out[PC_PF_MAX_LITS * (PC_PF_LIT_MAX + 1) + 1];
    pc_pf_lits_t l;
    if (pc_pf_regex(re, strlen(re), &l) != 0)
        return "?";
    size_t o = 0;
    for (unsigned i = 0; i < l.n; i++) {
        if (i)
            out[o++] = '|';
        memcpy(out + o, l.s[i], l.len[i]);
        o += l.len[i];
    }
    out[o] = 0;
    return out;
}

TEST(sequences_take_the_longest_literal)
{
    CHECK_EQ_STR(lits("union\\s+select"), "select");
    CHECK_EQ_STR(lits("(?i)UNION\\s+ALL"), "union");
    CHECK_EQ_STR(lits("<script[\\s>]"), "<script");
    /* a repeated character touches what precedes and what follows, not both */
    CHECK_EQ_STR(lits("xa+b{2,}c"), "xa");
    CHECK_EQ_STR(lits("ab+cd"), "bcd");
    CHECK_EQ_STR(lits("abb{1}c"), "abbc");
    CHECK_EQ_STR(lits("ab?cd"), "cd");    /* an optional character splits */
    CHECK_EQ_STR(lits("\\.\\./"), "../"); /* escaped punctuation */
    CHECK_EQ_STR(lits("etc[/\\\\]passwd"), "etc/passwd|etc\\passwd"); /* a small class multiplies */
    CHECK_EQ_STR(lits("[sS][eE][lL]ect"), "select"); /* case pairs are one character */
    CHECK_EQ_STR(lits("\\x3cscript"), "<script");
    CHECK_EQ_STR(lits("^javascript:"), "javascript:");
    CHECK_EQ_STR(lits("x{0,3}yz"), "yz");
    CHECK_EQ_STR(lits("ab{x"), "ab{x"); /* a brace that is no quantifier is a literal */
}

TEST(alternations_unite)
{
    CHECK_EQ_STR(lits("(?:sleep|benchmark)\\s*\\("), "sleep|benchmark");
    CHECK_EQ_STR(lits("on(?:load|error)="), "onload=|onerror="); /* exact groups extend */
    CHECK_EQ_STR(lits("\\$(?:ne|gt)\\b"), "$ne|$gt");
    CHECK_EQ_STR(lits("(?:ab|cd)+x"), "abx|cdx"); /* the last repetition touches x */
    CHECK_EQ_STR(lits("a(?:b|c+)d"), "a");        /* c+ is not exact: the strings end */
    CHECK_EQ_STR(lits("x(?:|ab)y"), "xy|xaby");   /* an empty alternative is a string too */
    CHECK_EQ_STR(lits("exec|system"), "exec|system");
    CHECK_EQ_STR(lits("['\"]\\s*or\\s"), "or");
    CHECK_EQ_STR(lits("['\"`]"), "'|\"|`"); /* a small class: any of its characters */
    CHECK_EQ_STR(lits("(?<n>abc)d"), "abcd");
    CHECK_EQ_STR(lits("(?i:abc)"), "abc");
    CHECK_EQ_STR(lits("(?#note)abc"), "abc");
}

TEST(unknown_when_nothing_is_required)
{
    CHECK_EQ_STR(lits(""), "?");
    CHECK_EQ_STR(lits(".*"), "?");
    CHECK_EQ_STR(lits("\\d+"), "?");
    CHECK_EQ_STR(lits("[a-z]+"), "?");
    CHECK_EQ_STR(lits("[^<]"), "?");
    CHECK_EQ_STR(lits("(?:abc)?"), "?");
    CHECK_EQ_STR(lits("abc|"), "?"); /* an empty branch matches anything */
    CHECK_EQ_STR(lits("abc|\\d"), "?");
    CHECK_EQ_STR(lits("(?=abc)"), "?"); /* lookarounds consume nothing */
    /* a quantifier after a comment or an option setting repeats the item
     * before them (found by fuzz_waf_pf: "{3}" was taken as text) */
    CHECK_EQ_STR(lits("(?<![a-z])(?#c){3}|localhost"), "?");
    CHECK_EQ_STR(lits("xa(?#c)*"), "?");
    CHECK_EQ_STR(lits("xa(?i)+b"), "?");
    CHECK_EQ_STR(lits("x?(?!abc)y?"), "?");
    CHECK_EQ_STR(lits("(?<!ab){0,3}cd"), "cd"); /* found by fuzz_waf_pf: a quantified assertion */
    /* found by fuzz_waf_pf: "[:" not followed by "name:]" is two characters,
     * and the class ends at the first "]" */
    CHECK_EQ_STR(lits("[x[:]abc|(?:|def)"), "?");
    CHECK_EQ_STR(lits("[[:alpha:]x]yz"), "yz");
    CHECK_EQ_STR(lits("[abcdefghi]"), "?"); /* too many characters to be useful */
}

TEST(unknown_for_what_is_not_modelled)
{
    CHECK_EQ_STR(lits("(?x) a b c"), "?"); /* extended mode */
    CHECK_EQ_STR(lits("(*UTF)abc"), "?");  /* verbs */
    CHECK_EQ_STR(lits("\\Qabc\\E"), "?");
    CHECK_EQ_STR(lits("(a)\\1"), "?");    /* back-references */
    CHECK_EQ_STR(lits("(?(1)a|b)"), "?"); /* conditionals */
    CHECK_EQ_STR(lits("(?R)"), "?");
    /* bytes over 0x7f require nothing (their case folding is not modelled) */
    CHECK_EQ_STR(lits("\xc3\xa9t\xc3\xa9"), "t");
    CHECK_EQ_STR(lits("\\x{e9}\\xe9"), "?");
    /* found by fuzz_waf_pf: eight hex digits overflowed an int into a "character" */
    CHECK_EQ_STR(lits("\\x{FFFFFFFF}ab"), "ab");
    CHECK_EQ_STR(lits("abc)"), "?"); /* unbalanced */
    CHECK_EQ_STR(lits("(abc"), "?");
    CHECK_EQ_STR(lits("+a"), "?");
    CHECK_EQ_STR(lits("[abc"), "?");
}

TEST(many_alternatives_and_long_literals)
{
    char re[4096] = "";
    for (int i = 0; i < PC_PF_MAX_LITS + 1; i++)
        snprintf(re + strlen(re), sizeof(re) - strlen(re), "%sw%02d", i ? "|" : "", i);
    CHECK_EQ_STR(lits(re), "?");
    *strrchr(re, '|') = 0; /* one alternative fewer: fits */
    CHECK(strcmp(lits(re), "?") != 0);
    /* a literal longer than PC_PF_LIT_MAX is cut to its start */
    CHECK_EQ_STR(lits("abcdefghijklmnopqrstuvwxyz0123456789"), "abcdefghijklmnop");
}

TEST_MAIN(RUN(sequences_take_the_longest_literal); RUN(alternations_unite);
          RUN(unknown_when_nothing_is_required); RUN(unknown_for_what_is_not_modelled);
          RUN(many_alternatives_and_long_literals))
