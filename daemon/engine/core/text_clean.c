/* Prompt clean-up before CLIP pre-tokenisation: an ftfy subset, html.unescape,
 * whitespace_clean and Python's str.lower(), on UTF-8. See text_clean.h. */
#include "text_clean.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "semd/status.h"

enum { ENT_HTML5 = 1, ENT_FTFY = 2 };

struct html_entity {
    const char *name; /* without the '&'; html5 keys may lack the ';' */
    const char *value;
    int flags;        /* ENT_HTML5: a key of html.entities.html5; ENT_FTFY: ftfy decodes it */
};

struct html_charref {
    uint32_t num;
    const char *value;
};

struct html_cp_range {
    uint32_t lo, hi;
};

#include "html_entities.inc"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- buffers and UTF-8 ---------------------------------------------------- */

void semd_strbuf_free(semd_strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int strbuf_reserve(semd_strbuf *b, size_t extra)
{
    if (b->cap - b->len > extra) return SEMD_OK; /* keep room for a NUL */
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) return semd_error(SEMD_ENOMEM, "text too large");
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return semd_error(SEMD_ENOMEM, "out of memory for %zu bytes of text", cap);
    b->data = p;
    b->cap = cap;
    return SEMD_OK;
}

int semd_strbuf_append(semd_strbuf *b, const char *s, size_t n)
{
    int rc = strbuf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return SEMD_OK;
}

int semd_strbuf_set(semd_strbuf *b, const char *s, size_t n)
{
    b->len = 0;
    return semd_strbuf_append(b, s, n);
}

/* Empty b, making sure it holds a (NUL-terminated) allocation. */
static int strbuf_clear(semd_strbuf *b) { return semd_strbuf_set(b, "", 0); }

static int append_cp(semd_strbuf *b, uint32_t cp)
{
    char tmp[4];
    return semd_strbuf_append(b, tmp, semd_utf8_put(cp, tmp));
}

/* Length of the valid sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    uint32_t min, cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (avail < n) return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

size_t semd_utf8_check(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq_len(u + i, len - i);
        if (!n) return i;
        i += n;
    }
    return len;
}

uint32_t semd_utf8_next(const char *s, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    uint32_t c = u[0];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    uint32_t cp = c & (0x7F >> n);
    for (size_t k = 1; k < n; k++) cp = cp << 6 | (u[k] & 0x3F);
    *i += n;
    return cp;
}

/* Decode the code point that ends just before s[*i] and move *i to its start. */
static uint32_t utf8_prev(const char *s, size_t *i)
{
    size_t j = *i - 1;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    *i = j;
    return semd_utf8_next(s, &j);
}

size_t semd_utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static bool in_ranges(uint32_t cp, const struct html_cp_range *r, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (cp >= r[k].lo && cp <= r[k].hi) return true;
    return false;
}

/* ---- Unicode predicates as CPython / the regex module define them --------- */

/*
 * Code points assigned in Unicode 15.0-16.0, unknown to Python 3.11's
 * unicodedata (Unicode 14.0) but possibly known to utf8proc: Python treats
 * them as unassigned (no case, combining class 0, never composed), so we do.
 * (unicodedata.category == "Cn" but not regex's \p{Cn}, regex 2024.11.6.)
 */
static const struct html_cp_range post_unicode14[] = {
        {0x897, 0x897}, {0xCF3, 0xCF3}, {0xECE, 0xECE}, {0x1B4E, 0x1B4F}, {0x1B7F, 0x1B7F},
        {0x1C89, 0x1C8A}, {0x2427, 0x2429}, {0x2FFC, 0x2FFF}, {0x31E4, 0x31E5}, {0x31EF, 0x31EF},
        {0xA7CB, 0xA7CD}, {0xA7DA, 0xA7DC}, {0x105C0, 0x105F3}, {0x10D40, 0x10D65},
        {0x10D69, 0x10D85}, {0x10D8E, 0x10D8F}, {0x10EC2, 0x10EC4}, {0x10EFC, 0x10EFF},
        {0x1123F, 0x11241}, {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E},
        {0x11390, 0x113B5}, {0x113B7, 0x113C0}, {0x113C2, 0x113C2}, {0x113C5, 0x113C5},
        {0x113C7, 0x113CA}, {0x113CC, 0x113D5}, {0x113D7, 0x113D8}, {0x113E1, 0x113E2},
        {0x116D0, 0x116E3}, {0x11B00, 0x11B09}, {0x11BC0, 0x11BE1}, {0x11BF0, 0x11BF9},
        {0x11F00, 0x11F10}, {0x11F12, 0x11F3A}, {0x11F3E, 0x11F5A}, {0x1342F, 0x1342F},
        {0x13439, 0x13455}, {0x13460, 0x143FA}, {0x16100, 0x16139}, {0x16D40, 0x16D79},
        {0x18CFF, 0x18CFF}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1CC00, 0x1CCF9},
        {0x1CD00, 0x1CEB3}, {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D},
        {0x1E08F, 0x1E08F}, {0x1E4D0, 0x1E4F9}, {0x1E5D0, 0x1E5FA}, {0x1E5FF, 0x1E5FF},
        {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F}, {0x1F7D9, 0x1F7D9},
        {0x1F8B2, 0x1F8BB}, {0x1F8C0, 0x1F8C1}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA89},
        {0x1FA8F, 0x1FA8F}, {0x1FAAD, 0x1FAAF}, {0x1FABB, 0x1FABF}, {0x1FAC6, 0x1FAC6},
        {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADC}, {0x1FADF, 0x1FADF}, {0x1FAE8, 0x1FAE9},
        {0x1FAF7, 0x1FAF8}, {0x1FBCB, 0x1FBEF}, {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D},
        {0x31350, 0x323AF},
};

static bool unknown_to_python(uint32_t c)
{
    if (c < 0x897) return false;
    size_t lo = 0, hi = N_ELEMS(post_unicode14);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < post_unicode14[mid].lo) hi = mid;
        else if (c > post_unicode14[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

/* The general category as Python 3.11 sees it. */
static utf8proc_category_t py_category(uint32_t c)
{
    return unknown_to_python(c) ? UTF8PROC_CATEGORY_CN : utf8proc_category((utf8proc_int32_t)c);
}

/* regex's \s: the White_Space property. */
static bool is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* str.isspace(): bidi class WS/B/S or category Zs, which adds U+001C..U+001F. */
static bool is_py_space(uint32_t c)
{
    return is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

/* Case_Ignorable (DerivedCoreProperties): these categories plus the
 * MidLetter / MidNumLet / Single_Quote word-break characters. */
static bool is_case_ignorable(uint32_t c)
{
    static const uint32_t word_break[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                          0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                          0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    switch (py_category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK: return true;
    default: break;
    }
    for (size_t k = 0; k < N_ELEMS(word_break); k++)
        if (c == word_break[k]) return true;
    return false;
}

/* Cased, asked only of characters that are not case-ignorable: Lu/Ll/Lt plus
 * the Other_Lowercase / Other_Uppercase characters outside Lm/Mn. */
static bool is_cased(uint32_t c)
{
    static const struct html_cp_range other[] = {
        {0xAA, 0xAA},       {0xBA, 0xBA},       {0x2160, 0x217F},   {0x24B6, 0x24E9},
        {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
    };
    switch (py_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT: return true;
    default: return in_ranges(c, other, N_ELEMS(other));
    }
}

/* ---- rewriting text ------------------------------------------------------- */

/* Copies s to out with some stretches replaced, copying the unchanged text
 * between replacements in one go. */
typedef struct splicer {
    const char *s;
    size_t kept; /* s[0..kept) has been dealt with */
    semd_strbuf *out;
} splicer;

static int splice_begin(splicer *sp, const char *s, semd_strbuf *out)
{
    *sp = (splicer){s, 0, out};
    return strbuf_clear(out);
}

/* Replace s[at..end) with rep[0..n). */
static int splice(splicer *sp, size_t at, size_t end, const char *rep, size_t n)
{
    int rc = semd_strbuf_append(sp->out, sp->s + sp->kept, at - sp->kept);
    if (!rc) rc = semd_strbuf_append(sp->out, rep, n);
    sp->kept = end;
    return rc;
}

static int splice_end(splicer *sp, size_t len)
{
    return semd_strbuf_append(sp->out, sp->s + sp->kept, len - sp->kept);
}

/* ---- ftfy's per-character fixes ------------------------------------------- */

/* A fixer maps one code point to a replacement (returning its length, 0 to
 * delete) or returns -1 to keep it. */
typedef int (*cp_mapper)(uint32_t cp, char *buf);

static int map_cps(const char *s, size_t len, semd_strbuf *out, cp_mapper map)
{
    splicer sp;
    int rc = splice_begin(&sp, s, out);
    for (size_t i = 0; i < len && !rc;) {
        size_t start = i;
        char buf[16];
        int n = map(semd_utf8_next(s, &i), buf);
        if (n >= 0) rc = splice(&sp, start, i, buf, (size_t)n);
    }
    return rc ? rc : splice_end(&sp, len);
}

static const char *charref_value(uint32_t num)
{
    size_t lo = 0, hi = N_ELEMS(html_invalid_charrefs);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (html_invalid_charrefs[mid].num == num) return html_invalid_charrefs[mid].value;
        if (html_invalid_charrefs[mid].num < num) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int copy_str(const char *v, char *buf)
{
    size_t n = strlen(v);
    memcpy(buf, v, n);
    return (int)n;
}

/* fix_c1_controls: U+0080..U+009F read as sloppy windows-1252 (the same
 * table HTML5 uses for numeric references to them). */
static int map_c1(uint32_t cp, char *buf)
{
    if (cp < 0x80 || cp > 0x9F) return -1;
    return copy_str(charref_value(cp), buf);
}

static int map_ligature(uint32_t cp, char *buf)
{
    static const struct { uint32_t cp; const char *to; } lig[] = {
        {0x132, "IJ"}, {0x133, "ij"}, {0x149, "\xCA\xBCn"}, {0x1C4, "D\xC5\xBD"},
        {0x1C5, "D\xC5\xBE"}, {0x1C6, "d\xC5\xBE"}, {0x1C7, "LJ"}, {0x1C8, "Lj"},
        {0x1C9, "lj"}, {0x1CA, "NJ"}, {0x1CB, "Nj"}, {0x1CC, "nj"}, {0x1F1, "DZ"},
        {0x1F2, "Dz"}, {0x1F3, "dz"}, {0xFB00, "ff"}, {0xFB01, "fi"}, {0xFB02, "fl"},
        {0xFB03, "ffi"}, {0xFB04, "ffl"}, {0xFB05, "\xC5\xBFt"}, {0xFB06, "st"},
    };
    if (cp < 0x132 || (cp > 0x1F3 && cp < 0xFB00) || cp > 0xFB06) return -1;
    for (size_t k = 0; k < N_ELEMS(lig); k++)
        if (lig[k].cp == cp) return copy_str(lig[k].to, buf);
    return -1;
}

/* fix_character_width: U+3000 and the NFKC forms of U+FF01..U+FFEF (for which
 * NFKC equals NFKD). */
static int map_width(uint32_t cp, char *buf)
{
    if (cp == 0x3000) return copy_str(" ", buf);
    if (cp < 0xFF01 || cp > 0xFFEF) return -1;
    utf8proc_int32_t d[4];
    int boundclass = UTF8PROC_BOUNDCLASS_START;
    utf8proc_ssize_t n = utf8proc_decompose_char(
        (utf8proc_int32_t)cp, d, 4, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, &boundclass);
    if (n < 1 || n > 4 || (n == 1 && (uint32_t)d[0] == cp)) return -1;
    size_t len = 0;
    for (utf8proc_ssize_t k = 0; k < n; k++) len += semd_utf8_put((uint32_t)d[k], buf + len);
    return (int)len;
}

static int map_quote(uint32_t cp, char *buf)
{
    if (cp == 0x2BC || (cp >= 0x2018 && cp <= 0x201B)) return copy_str("'", buf);
    if (cp >= 0x201C && cp <= 0x201F) return copy_str("\"", buf);
    return -1;
}

static int map_control(uint32_t cp, char *buf)
{
    bool drop = cp <= 0x08 || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F ||
                (cp >= 0x206A && cp <= 0x206F) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFC);
    return drop ? 0 : -1;
}

static int fix_c1_controls(const char *s, size_t n, semd_strbuf *o) { return map_cps(s, n, o, map_c1); }
static int fix_latin_ligatures(const char *s, size_t n, semd_strbuf *o) { return map_cps(s, n, o, map_ligature); }
static int fix_character_width(const char *s, size_t n, semd_strbuf *o) { return map_cps(s, n, o, map_width); }
static int uncurl_quotes(const char *s, size_t n, semd_strbuf *o) { return map_cps(s, n, o, map_quote); }
static int remove_control_chars(const char *s, size_t n, semd_strbuf *o) { return map_cps(s, n, o, map_control); }

/* fix_line_breaks: CRLF, CR, U+2028, U+2029 and U+0085 become LF. */
static int fix_line_breaks(const char *s, size_t len, semd_strbuf *out)
{
    splicer sp;
    int rc = splice_begin(&sp, s, out);
    for (size_t i = 0; i < len && !rc;) {
        size_t start = i;
        uint32_t cp = semd_utf8_next(s, &i);
        if (cp != '\r' && cp != 0x2028 && cp != 0x2029 && cp != 0x85) continue;
        if (cp == '\r' && i < len && s[i] == '\n') i++;
        rc = splice(&sp, start, i, "\n", 1);
    }
    return rc ? rc : splice_end(&sp, len);
}

/* remove_terminal_escapes: ESC '[' (\d|;)* [a-zA-Z], with \d any Unicode
 * decimal digit as Python's re has it. */
static size_t terminal_escape_len(const char *s, size_t len)
{
    if (len < 3 || s[0] != 0x1B || s[1] != '[') return 0;
    size_t i = 2;
    while (i < len) {
        size_t next = i;
        uint32_t cp = semd_utf8_next(s, &next);
        if (cp != ';' && py_category(cp) != UTF8PROC_CATEGORY_ND) break;
        i = next;
    }
    if (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) return i + 1;
    return 0;
}

static int remove_terminal_escapes(const char *s, size_t len, semd_strbuf *out)
{
    splicer sp;
    int rc = splice_begin(&sp, s, out);
    for (size_t i = 0; i < len && !rc;) {
        size_t n = s[i] == 0x1B ? terminal_escape_len(s + i, len - i) : 0;
        if (n) rc = splice(&sp, i, i + n, "", 0);
        i += n ? n : 1;
    }
    return rc ? rc : splice_end(&sp, len);
}

static int append_nfc(const char *s, size_t len, semd_strbuf *out)
{
    if (is_ascii(s, len)) return semd_strbuf_append(out, s, len);
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return semd_error(SEMD_ENOMEM, "NFC normalisation failed: %s", utf8proc_errmsg(n));
    int rc = semd_strbuf_append(out, (const char *)dst, (size_t)n);
    free(dst);
    return rc;
}

/* NFC as Python 3.11 does it: characters it does not know are starters that
 * never compose, so the text is normalised in the stretches between them. */
static int normalize_nfc(const char *s, size_t len, semd_strbuf *out)
{
    int rc = strbuf_clear(out);
    size_t i = 0, start = 0;
    while (i < len && !rc) {
        size_t at = i;
        if (!unknown_to_python(semd_utf8_next(s, &i))) continue;
        rc = append_nfc(s + start, at - start, out);
        if (!rc) rc = semd_strbuf_append(out, s + at, i - at);
        start = i;
    }
    return rc ? rc : append_nfc(s + start, len - start, out);
}

/* ---- HTML character references -------------------------------------------- */

static const struct html_entity *find_entity(const char *name, size_t len, int flag)
{
    size_t lo = 0, hi = N_ELEMS(html_entities);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *key = html_entities[mid].name;
        int c = strncmp(key, name, len);
        if (c == 0) c = key[len] ? 1 : 0;
        if (c == 0) return (html_entities[mid].flags & flag) ? &html_entities[mid] : NULL;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* What html.unescape makes of the numeric reference num (UTF-8 into buf). */
static size_t numeric_charref(uint32_t num, char buf[4])
{
    const char *v = charref_value(num);
    if (v) return (size_t)copy_str(v, buf);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return semd_utf8_put(0xFFFD, buf);
    if (in_ranges(num, html_invalid_codepoints, N_ELEMS(html_invalid_codepoints))) return 0;
    return semd_utf8_put(num, buf);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_xdigit(char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static bool is_alnum(char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

static int hex_value(char c) { return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

/* Parse the digits at s (base 10 or 16), saturating above U+10FFFF; returns
 * how many characters were digits. */
static size_t parse_number(const char *s, size_t len, int base, uint32_t *num)
{
    size_t i = 0;
    uint32_t v = 0;
    while (i < len && (base == 16 ? is_xdigit(s[i]) : is_digit(s[i]))) {
        v = v * (uint32_t)base + (uint32_t)hex_value(s[i]);
        if (v > 0x10FFFF) v = 0x110000;
        i++;
    }
    *num = v;
    return i;
}

/* ftfy's decoding of one "&#?[0-9A-Za-z]{1,24};" match; body is what lies
 * between "&" and ";". Returns the replacement length, or -1 to keep it. */
static int ftfy_entity(const char *body, size_t len, char *buf)
{
    char key[32];
    memcpy(key, body, len);
    key[len] = ';';
    const struct html_entity *e = find_entity(key, len + 1, ENT_FTFY);
    if (e) return copy_str(e->value, buf);
    if (body[0] != '#') return -1;
    /* html.unescape of the whole match; kept unless it decodes completely
     * to something other than ';' */
    int base = (body[1] | 0x20) == 'x' ? 16 : 10;
    size_t start = base == 16 ? 2 : 1;
    uint32_t num;
    if (start >= len || parse_number(body + start, len - start, base, &num) != len - start) return -1;
    size_t n = numeric_charref(num, buf);
    return (n == 1 && buf[0] == ';') ? -1 : (int)n;
}

/* Length of an ftfy entity match at s ("&#?[0-9A-Za-z]{1,24};"), or 0. */
static size_t ftfy_entity_len(const char *s, size_t len)
{
    size_t j = (len > 1 && s[1] == '#') ? 2 : 1;
    size_t k = j;
    while (k < len && k - j <= 24 && is_alnum(s[k])) k++;
    if (k == j || k - j > 24 || k >= len || s[k] != ';') return 0;
    return k + 1;
}

static int ftfy_unescape_html(const char *s, size_t len, semd_strbuf *out)
{
    splicer sp;
    int rc = splice_begin(&sp, s, out);
    for (size_t i = 0; i < len && !rc;) {
        size_t n = s[i] == '&' ? ftfy_entity_len(s + i, len - i) : 0;
        char buf[16];
        int r = n ? ftfy_entity(s + i + 1, n - 2, buf) : -1;
        if (r >= 0) rc = splice(&sp, i, i + n, buf, (size_t)r);
        i += n ? n : 1;
    }
    return rc ? rc : splice_end(&sp, len);
}

/* Room for what html.unescape makes of one match: a value (at most two code
 * points) and the rest of a 32-character name. */
#define CHARREF_MAX (8 + 32 * 4)

/* html.unescape's "&#[0-9]+;?" / "&#[xX][0-9a-fA-F]+;?" at s ('&' at s[0]);
 * returns the match length (0: none) and the replacement in buf/n. */
static size_t html_numeric(const char *s, size_t len, char *buf, size_t *n)
{
    size_t start = 2;
    int base = 10;
    if (len > 3 && (s[2] | 0x20) == 'x' && is_xdigit(s[3])) start = 3, base = 16;
    else if (len < 3 || !is_digit(s[2])) return 0;
    uint32_t num;
    size_t end = start + parse_number(s + start, len - start, base, &num);
    if (end < len && s[end] == ';') end++;
    *n = numeric_charref(num, buf);
    return end;
}

static size_t join2(char *buf, const char *a, const char *b, size_t nb)
{
    size_t na = strlen(a);
    memcpy(buf, a, na);
    memcpy(buf + na, b, nb);
    return na + nb;
}

/* html.unescape's "[^\t\n\f <&#;]{1,32};?" name at s ('&' at s[0]); returns
 * the match length (0: none) and the replacement in buf/n. */
static size_t html_named(const char *s, size_t len, char *buf, size_t *n)
{
    size_t i = 1, ncp = 0, ascii = 0; /* ascii: how many leading code points are ASCII */
    while (i < len && ncp < 32 && !memchr("\t\n\f <&#;", s[i], 8)) {
        if ((unsigned char)s[i] < 0x80 && ascii == ncp) ascii++;
        semd_utf8_next(s, &i);
        ncp++;
    }
    if (ncp == 0) return 0;
    if (i < len && s[i] == ';') {
        if (ascii == ncp) ascii++;
        i++;
        ncp++;
    }
    const char *name = s + 1;
    size_t name_len = i - 1;
    const struct html_entity *e = find_entity(name, name_len, ENT_HTML5);
    if (e) {
        *n = join2(buf, e->value, "", 0);
        return i;
    }
    /* the longest prefix (at least 2 characters) that is a name; names are ASCII */
    for (size_t x = ascii < ncp - 1 ? ascii : ncp - 1; x >= 2; x--) {
        if ((e = find_entity(name, x, ENT_HTML5))) {
            *n = join2(buf, e->value, name + x, name_len - x);
            return i;
        }
    }
    *n = join2(buf, "&", name, name_len);
    return i;
}

int semd_html_unescape(const char *s, size_t len, semd_strbuf *out)
{
    splicer sp;
    int rc = splice_begin(&sp, s, out);
    for (size_t i = 0; i < len && !rc;) {
        char buf[CHARREF_MAX];
        size_t n = 0, m = 0;
        if (s[i] == '&' && i + 1 < len && s[i + 1] == '#') m = html_numeric(s + i, len - i, buf, &n);
        else if (s[i] == '&') m = html_named(s + i, len - i, buf, &n);
        if (m) rc = splice(&sp, i, i + m, buf, n);
        i += m ? m : 1;
    }
    return rc ? rc : splice_end(&sp, len);
}

/* ---- ftfy.fix_text --------------------------------------------------------- */

typedef int (*text_fixer)(const char *s, size_t len, semd_strbuf *out);

/* What kinds of bytes a text holds: a fixer only runs when it could act. */
enum { HAS_AMP = 1, HAS_CR = 2, HAS_ESC = 4, HAS_CONTROL = 8, HAS_NON_ASCII = 16 };

static unsigned text_traits(const char *s, size_t len)
{
    unsigned t = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) t |= HAS_NON_ASCII;
        else if (c == '&') t |= HAS_AMP;
        else if (c == '\r') t |= HAS_CR;
        else if (c == 0x1B) t |= HAS_ESC | HAS_CONTROL;
        else if (c == 0x7F || (c < 0x20 && c != '\t' && c != '\n' && c != '\f')) t |= HAS_CONTROL;
    }
    return t;
}

/* ftfy's fixers in its order (without fix_encoding; fix_surrogates has
 * nothing to do on valid UTF-8), each with the traits it acts on. */
static const struct {
    text_fixer fn;
    unsigned needs;
} FIXERS[] = {
    {ftfy_unescape_html, HAS_AMP},          {fix_c1_controls, HAS_NON_ASCII},
    {fix_latin_ligatures, HAS_NON_ASCII},   {fix_character_width, HAS_NON_ASCII},
    {uncurl_quotes, HAS_NON_ASCII},         {fix_line_breaks, HAS_CR | HAS_NON_ASCII},
    {remove_terminal_escapes, HAS_ESC},     {remove_control_chars, HAS_CONTROL | HAS_NON_ASCII},
    {normalize_nfc, HAS_NON_ASCII},
};

/* fix_and_explain's loop on one segment: every fix, repeated until the text
 * stops changing. */
static int fix_segment(const char *seg, size_t len, bool unescape, semd_strbuf *out,
                       semd_strbuf work[3])
{
    semd_strbuf *orig = &work[0];
    int rc = semd_strbuf_set(orig, seg, len);
    while (!rc) {
        const semd_strbuf *cur = orig;
        unsigned traits = text_traits(cur->data, cur->len);
        int flip = 1;
        for (size_t k = unescape ? 0 : 1; k < N_ELEMS(FIXERS) && !rc; k++) {
            if (!(traits & FIXERS[k].needs)) continue;
            semd_strbuf *dst = &work[flip];
            rc = FIXERS[k].fn(cur->data, cur->len, dst);
            cur = dst;
            flip = 3 - flip;
            traits = text_traits(cur->data, cur->len);
        }
        if (rc) return rc;
        if (cur == orig || (cur->len == orig->len && memcmp(cur->data, orig->data, cur->len) == 0)) break;
        rc = semd_strbuf_set(orig, cur->data, cur->len);
    }
    return rc ? rc : semd_strbuf_append(out, orig->data, orig->len);
}

/* End of the segment starting at pos: after the next '\n', or after
 * ftfy's max_decode_length (1,000,000 code points). */
static size_t segment_end(const char *s, size_t len, size_t pos)
{
    size_t ncp = 0, i = pos;
    while (i < len && ncp < 1000000) {
        unsigned char c = (unsigned char)s[i++];
        if ((c & 0xC0) != 0x80) ncp++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        if (c == '\n') break;
    }
    return i;
}

int semd_ftfy_fix_text(const char *s, size_t len, semd_strbuf *out)
{
    semd_strbuf work[3] = {{0}};
    bool unescape = true; /* "auto": off for good from the first segment with '<' */
    int rc = semd_strbuf_set(out, "", 0);
    for (size_t pos = 0; pos < len && !rc;) {
        size_t end = segment_end(s, len, pos);
        if (unescape && memchr(s + pos, '<', end - pos)) unescape = false;
        rc = fix_segment(s + pos, end - pos, unescape, out, work);
        pos = end;
    }
    for (int k = 0; k < 3; k++) semd_strbuf_free(&work[k]);
    return rc;
}

/* ---- whitespace, strip, lower ---------------------------------------------- */

/* str.strip(): the byte range of s without leading/trailing isspace(). */
static void py_strip(const char *s, size_t len, size_t *start, size_t *end)
{
    size_t i = 0, j = len;
    while (i < len) {
        size_t next = i;
        if (!is_py_space(semd_utf8_next(s, &next))) break;
        i = next;
    }
    while (j > i) {
        size_t prev = j;
        if (!is_py_space(utf8_prev(s, &prev))) break;
        j = prev;
    }
    *start = i;
    *end = j;
}

int semd_whitespace_clean(const char *s, size_t len, semd_strbuf *out)
{
    semd_strbuf tmp = {0};
    int rc = semd_strbuf_set(&tmp, "", 0);
    bool in_space = false;
    for (size_t i = 0; i < len && !rc;) {
        size_t start = i;
        bool space = is_white_space(semd_utf8_next(s, &i));
        if (!space) rc = semd_strbuf_append(&tmp, s + start, i - start);
        else if (!in_space) rc = semd_strbuf_append(&tmp, " ", 1);
        in_space = space;
    }
    size_t a = 0, b = 0;
    if (!rc) py_strip(tmp.data, tmp.len, &a, &b);
    if (!rc) rc = semd_strbuf_set(out, tmp.data + a, b - a);
    semd_strbuf_free(&tmp);
    return rc;
}

/* CPython's final-sigma rule: U+03A3 at byte i lowercases to final sigma
 * when a cased letter precedes it and none follows, skipping case-ignorables. */
static bool is_final_sigma(const char *s, size_t len, size_t i, size_t after)
{
    size_t j = i;
    uint32_t c = 0;
    bool found = false;
    while (j > 0) {
        c = utf8_prev(s, &j);
        if (!is_case_ignorable(c)) {
            found = true;
            break;
        }
    }
    if (!found || !is_cased(c)) return false;
    for (j = after; j < len;) {
        c = semd_utf8_next(s, &j);
        if (!is_case_ignorable(c)) return !is_cased(c);
    }
    return true;
}

int semd_py_lower(const char *s, size_t len, semd_strbuf *out)
{
    int rc = semd_strbuf_set(out, "", 0);
    for (size_t i = 0; i < len && !rc;) {
        size_t start = i;
        uint32_t cp = semd_utf8_next(s, &i);
        if (cp < 0x80) {
            char c = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            rc = semd_strbuf_append(out, &c, 1);
        } else if (cp == 0x130) { /* the one unconditional multi-character lowercase */
            rc = semd_strbuf_append(out, "i\xCC\x87", 3);
        } else if (cp == 0x3A3) {
            rc = append_cp(out, is_final_sigma(s, len, start, i) ? 0x3C2 : 0x3C3);
        } else {
            rc = append_cp(out, unknown_to_python(cp) ? cp : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
        }
    }
    return rc;
}

/* ---- the pipelines --------------------------------------------------------- */

int semd_text_clean(semd_text_mode mode, const char *s, size_t len, semd_strbuf *out)
{
    semd_strbuf a = {0}, b = {0};
    int rc = semd_ftfy_fix_text(s, len, &a);
    if (!rc && mode == SEMD_TEXT_OPENAI) {
        rc = semd_html_unescape(a.data, a.len, &b);
        if (!rc) rc = semd_html_unescape(b.data, b.len, &a);
        size_t lo = 0, hi = 0;
        if (!rc) py_strip(a.data, a.len, &lo, &hi);
        if (!rc) rc = semd_strbuf_set(&b, a.data + lo, hi - lo);
        if (!rc) rc = semd_strbuf_set(&a, b.data, b.len);
    }
    if (!rc) rc = semd_whitespace_clean(a.data, a.len, &b);
    if (!rc) rc = semd_py_lower(b.data, b.len, out);
    semd_strbuf_free(&a);
    semd_strbuf_free(&b);
    return rc;
}
