/*
 * text_clean.h - the text clean-up in front of the CLIP tokenizer (internal).
 *
 * Reproduces, on UTF-8, what the two reference tokenizers do to a prompt
 * before pre-tokenisation:
 *   HF (transformers CLIPTokenizer):  whitespace_clean(ftfy.fix_text(t)).lower()
 *   OpenAI (CLIP SimpleTokenizer):    whitespace_clean(html.unescape(
 *                                        html.unescape(ftfy.fix_text(t))).strip()).lower()
 *
 * ftfy.fix_text is reproduced with its default configuration except for
 * mojibake repair: fix_encoding (and its restore_byte_a0,
 * replace_lossy_sequences and decode_inconsistent_utf8 steps) is NOT
 * implemented, so text that ftfy would re-decode (e.g. "sÃ³" -> "só") is left
 * as it is. Everything else runs as ftfy runs it: per line (and per 1,000,000
 * code points), repeated until the line stops changing: unescape_html in
 * "auto" mode (off from the first line containing '<' on), fix_c1_controls,
 * fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
 * remove_terminal_escapes, remove_control_chars, NFC.
 *
 * Python semantics kept: str.lower() is full lowercasing (U+0130 -> "i\u0307",
 * final sigma); regex's \s is Unicode White_Space; str.strip() uses
 * str.isspace(). Unicode data comes from utf8proc, whose version may be newer
 * than Python's (3.11: Unicode 14); code points assigned after Unicode 14 may
 * normalise or lowercase differently. Decimal character references longer
 * than Python's 4300-digit int limit (where Python raises) decode to U+FFFD.
 *
 * All functions take valid UTF-8 (check it with semd_utf8_check first) and
 * return SEMD_OK or SEMD_ENOMEM.
 */
#ifndef SEMD_TEXT_CLEAN_H
#define SEMD_TEXT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "semd/tokenizer.h"

/* A growable byte string; zero-initialise, release with semd_strbuf_free. */
typedef struct semd_strbuf {
    char *data;
    size_t len, cap;
} semd_strbuf;

void semd_strbuf_free(semd_strbuf *b);
int semd_strbuf_append(semd_strbuf *b, const char *s, size_t n);
int semd_strbuf_set(semd_strbuf *b, const char *s, size_t n);

/* Offset of the first byte that is not valid UTF-8 (strict: no overlongs or
 * surrogates, at most U+10FFFF), or len if all of s is valid. */
size_t semd_utf8_check(const char *s, size_t len);
/* Decode the code point at s[*i] (valid UTF-8) and advance *i past it. */
uint32_t semd_utf8_next(const char *s, size_t *i);
/* Encode cp into out, returning the number of bytes (1-4). */
size_t semd_utf8_put(uint32_t cp, char out[4]);

/* ftfy.fix_text(s) (see above for what is left out). */
int semd_ftfy_fix_text(const char *s, size_t len, semd_strbuf *out);
/* Python's html.unescape(s). */
int semd_html_unescape(const char *s, size_t len, semd_strbuf *out);
/* CLIP's whitespace_clean: each run of White_Space becomes one space; strip. */
int semd_whitespace_clean(const char *s, size_t len, semd_strbuf *out);
/* Python's str.lower(). */
int semd_py_lower(const char *s, size_t len, semd_strbuf *out);

/* The whole clean-up of one mode (HF: one chunk between special tokens). */
int semd_text_clean(semd_text_mode mode, const char *s, size_t len, semd_strbuf *out);

#endif
