/* The CLIP byte-level BPE tokenizer (models.md section 4), exact to
 * transformers' CLIPTokenizer (with ftfy) and openai/CLIP's SimpleTokenizer. */
#include "semd/tokenizer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <zlib.h>

#include "json_util.h"
#include "semd/status.h"
#include "text_clean.h"

#define CLIP_N_MERGES 48894 /* the merges both references read (lines 1..48894) */
#define NO_RANK INT32_MAX
#define NO_SYM UINT32_MAX
#define MAX_VOCAB_ID (1 << 24) /* bounds the id -> token table */

static const char BOS_TEXT[] = "<|startoftext|>";
static const char EOS_TEXT[] = "<|endoftext|>";

/* One BPE merge: the pair (a, b) of symbols, its rank and the merged symbol. */
typedef struct merge_slot {
    uint32_t a, b; /* a == NO_SYM: empty slot */
    int32_t rank;
    uint32_t result;
} merge_slot;

/*
 * Symbols are the byte-level strings BPE works on (base characters, their
 * "</w>" forms, merge results). Each is interned once; vid is its vocabulary
 * id, or -1 for a merge result missing from a vocab.json (it encodes as unk,
 * as in transformers).
 */
struct semd_tokenizer {
    char *pool; /* symbol strings, back to back */
    size_t pool_len, pool_cap;
    uint32_t *sym_off, *sym_len;
    int32_t *sym_vid;
    uint32_t n_sym, cap_sym;
    uint32_t *str_slots; /* string hash: symbol + 1, 0 = empty */
    uint32_t str_mask;
    merge_slot *merges; /* pair hash */
    uint32_t merge_mask;
    int32_t *id_sym; /* vocabulary id -> symbol, -1 for holes */
    size_t n_ids, vocab_size;
    uint32_t byte_sym[256], byte_end_sym[256];
    int32_t bos, eos, unk, pad;
    pcre2_code *re;
};

/* ---- hashing and interning ------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint32_t hash_pair(uint32_t a, uint32_t b)
{
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static const char *sym_str(const semd_tokenizer *t, uint32_t s) { return t->pool + t->sym_off[s]; }

static bool sym_equals(const semd_tokenizer *t, uint32_t s, const char *str, size_t n)
{
    return t->sym_len[s] == n && memcmp(sym_str(t, s), str, n) == 0;
}

static uint32_t sym_find(const semd_tokenizer *t, const char *s, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->str_mask;
    for (; t->str_slots[i]; i = (i + 1) & t->str_mask)
        if (sym_equals(t, t->str_slots[i] - 1, s, n)) return t->str_slots[i] - 1;
    return NO_SYM;
}

static int grow_str_table(semd_tokenizer *t)
{
    uint32_t cap = (t->str_mask + 1) * 2;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    free(t->str_slots);
    t->str_slots = slots;
    t->str_mask = cap - 1;
    for (uint32_t s = 0; s < t->n_sym; s++) {
        uint32_t i = (uint32_t)hash_bytes(sym_str(t, s), t->sym_len[s]) & t->str_mask;
        while (t->str_slots[i]) i = (i + 1) & t->str_mask;
        t->str_slots[i] = s + 1;
    }
    return SEMD_OK;
}

static int grow_syms(semd_tokenizer *t, size_t extra_bytes)
{
    if (t->pool_len + extra_bytes > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
        while (cap < t->pool_len + extra_bytes) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
        t->pool = p;
        t->pool_cap = cap;
    }
    if (t->n_sym == t->cap_sym) {
        uint32_t cap = t->cap_sym ? t->cap_sym * 2 : 1024;
        uint32_t *off = realloc(t->sym_off, cap * sizeof *off);
        if (off) t->sym_off = off;
        uint32_t *len = realloc(t->sym_len, cap * sizeof *len);
        if (len) t->sym_len = len;
        int32_t *vid = realloc(t->sym_vid, cap * sizeof *vid);
        if (vid) t->sym_vid = vid;
        if (!off || !len || !vid) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
        t->cap_sym = cap;
    }
    if ((t->n_sym + 1) * 2 > t->str_mask + 1) return grow_str_table(t);
    return SEMD_OK;
}

/* Intern s; a vid >= 0 (re)assigns its vocabulary id: the later entry wins,
 * as when Python builds a dict. */
static int sym_add(semd_tokenizer *t, const char *s, size_t n, int32_t vid, uint32_t *out)
{
    uint32_t sym = sym_find(t, s, n);
    if (sym == NO_SYM) {
        if (n > UINT32_MAX / 2) return semd_error(SEMD_EFORMAT, "tokenizer: token too long");
        int rc = grow_syms(t, n);
        if (rc) return rc;
        sym = t->n_sym++;
        memcpy(t->pool + t->pool_len, s, n);
        t->sym_off[sym] = (uint32_t)t->pool_len;
        t->sym_len[sym] = (uint32_t)n;
        t->sym_vid[sym] = -1;
        t->pool_len += n;
        uint32_t i = (uint32_t)hash_bytes(s, n) & t->str_mask;
        while (t->str_slots[i]) i = (i + 1) & t->str_mask;
        t->str_slots[i] = sym + 1;
    }
    if (vid >= 0) t->sym_vid[sym] = vid;
    if (out) *out = sym;
    return SEMD_OK;
}

static int32_t merge_rank(const semd_tokenizer *t, uint32_t a, uint32_t b, uint32_t *result)
{
    for (uint32_t i = hash_pair(a, b) & t->merge_mask; t->merges[i].a != NO_SYM;
         i = (i + 1) & t->merge_mask) {
        if (t->merges[i].a == a && t->merges[i].b == b) {
            if (result) *result = t->merges[i].result;
            return t->merges[i].rank;
        }
    }
    return NO_RANK;
}

/* A repeated pair keeps its later rank, as Python's dict(zip(merges, ranks)). */
static void merge_put(semd_tokenizer *t, uint32_t a, uint32_t b, int32_t rank, uint32_t result)
{
    uint32_t i = hash_pair(a, b) & t->merge_mask;
    while (t->merges[i].a != NO_SYM && !(t->merges[i].a == a && t->merges[i].b == b))
        i = (i + 1) & t->merge_mask;
    t->merges[i] = (merge_slot){a, b, rank, result};
}

/* ---- the byte alphabet ----------------------------------------------------- */

static bool byte_is_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

/* bytes_to_unicode: printable bytes stand for themselves, the other 68 (in
 * increasing order) for U+0100 onwards. Also gives the byte's vocabulary id:
 * the printable ones first, then the others. */
static uint32_t byte_char(int b, int32_t *vid)
{
    int printable_before = 0, others_before = 0;
    for (int c = 0; c < b; c++) byte_is_printable(c) ? printable_before++ : others_before++;
    if (byte_is_printable(b)) {
        *vid = printable_before;
        return (uint32_t)b;
    }
    *vid = 188 + others_before;
    return 256u + (uint32_t)others_before;
}

/* The UTF-8 text of byte b's symbol (with "</w>" when end is set). */
static size_t byte_symbol_text(int b, bool end, char buf[8], int32_t *vid)
{
    size_t n = semd_utf8_put(byte_char(b, vid), buf);
    if (end) {
        memcpy(buf + n, "</w>", 4);
        n += 4;
        *vid += 256;
    }
    return n;
}

/* ---- the merges file --------------------------------------------------------- */

typedef struct merge_list {
    char *text; /* "a\0b\0" per merge */
    size_t len, cap;
    uint32_t *off; /* start of merge k's "a" */
    uint32_t n;
} merge_list;

static void merge_list_free(merge_list *m)
{
    free(m->text);
    free(m->off);
}

/* Split a merges line into its two symbols (ASCII blanks between). */
static int split_merge_line(char *line, char **a, char **b)
{
    static const char blanks[] = " \t\r\n\v\f";
    char *p = line + strspn(line, blanks);
    *a = p;
    p += strcspn(p, blanks);
    if (p == *a || !*p) return -1;
    *p++ = '\0';
    p += strspn(p, blanks);
    *b = p;
    p += strcspn(p, blanks);
    if (p == *b) return -1;
    char *end = p + strspn(p, blanks);
    if (*end) return -1;
    *p = '\0';
    return 0;
}

static int merge_list_add(merge_list *m, const char *a, const char *b)
{
    size_t la = strlen(a) + 1, lb = strlen(b) + 1;
    if (m->len + la + lb > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1 << 19;
        while (cap < m->len + la + lb) cap *= 2;
        char *p = realloc(m->text, cap);
        if (!p) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
        m->text = p;
        m->cap = cap;
    }
    m->off[m->n++] = (uint32_t)m->len;
    memcpy(m->text + m->len, a, la);
    memcpy(m->text + m->len + la, b, lb);
    m->len += la + lb;
    return SEMD_OK;
}

static int gz_read_error(gzFile f, const char *path)
{
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err == Z_OK || err == Z_STREAM_END) return SEMD_OK;
    if (err == Z_ERRNO) return semd_error(SEMD_EIO, "%s: read error: %s", path, strerror(errno));
    size_t n = strlen(path); /* zlib prefixes its message with the path */
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0) msg += n + 2;
    return semd_error(SEMD_EFORMAT, "%s: corrupt gzip data: %s", path, msg);
}

static int read_merge_line(gzFile f, const char *path, int line, merge_list *m)
{
    char buf[1024];
    if (!gzgets(f, buf, sizeof buf)) {
        int rc = gz_read_error(f, path);
        if (rc) return rc;
        return semd_error(SEMD_EFORMAT, "%s: only %u merges (ends at line %d), expected %d", path,
                          m->n, line - 1, CLIP_N_MERGES);
    }
    size_t n = strlen(buf);
    if (n == sizeof buf - 1 && buf[n - 1] != '\n')
        return semd_error(SEMD_EFORMAT, "%s: line %d: too long", path, line);
    if (line == 1) return SEMD_OK; /* the "#version" header */
    char *a, *b;
    if (split_merge_line(buf, &a, &b))
        return semd_error(SEMD_EFORMAT, "%s: line %d: malformed merge (expected two symbols)",
                          path, line);
    return merge_list_add(m, a, b);
}

/* Read the first CLIP_N_MERGES merges after the header line (gzip or plain). */
static int read_merges(const char *path, merge_list *m)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return semd_error(SEMD_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    int rc = SEMD_OK;
    m->off = malloc(CLIP_N_MERGES * sizeof *m->off);
    if (!m->off) rc = semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    for (int line = 1; !rc && m->n < CLIP_N_MERGES; line++) rc = read_merge_line(f, path, line, m);
    gzclose(f);
    return rc;
}

/* ---- building the tables --------------------------------------------------- */

static int alloc_tables(semd_tokenizer *t)
{
    t->str_mask = (1u << 17) - 1;
    t->merge_mask = (1u << 17) - 1;
    t->str_slots = calloc(t->str_mask + 1, sizeof *t->str_slots);
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    if (!t->str_slots || !t->merges) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    for (uint32_t i = 0; i <= t->merge_mask; i++) t->merges[i].a = NO_SYM;
    return SEMD_OK;
}

static int add_joined(semd_tokenizer *t, const char *a, const char *b, int32_t vid, uint32_t *out)
{
    size_t la = strlen(a), lb = strlen(b);
    char stack[256], *buf = la + lb <= sizeof stack ? stack : malloc(la + lb);
    if (!buf) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    int rc = sym_add(t, buf, la + lb, vid, out);
    if (buf != stack) free(buf);
    return rc;
}

/* Intern the 512 base symbols (already there when the vocabulary has them). */
static int add_base_symbols(semd_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t vid;
        size_t n = byte_symbol_text(b, false, buf, &vid);
        int rc = sym_add(t, buf, n, -1, &t->byte_sym[b]);
        n = byte_symbol_text(b, true, buf, &vid);
        if (!rc) rc = sym_add(t, buf, n, -1, &t->byte_end_sym[b]);
        if (rc) return rc;
    }
    return SEMD_OK;
}

/* Rank the merges: pair (a, b) of merge k gets rank k. Results are interned
 * first so that a merge may use a symbol only a later merge creates. */
static int add_merges(semd_tokenizer *t, const merge_list *m)
{
    int rc = add_base_symbols(t);
    for (uint32_t k = 0; k < m->n && !rc; k++) {
        const char *a = m->text + m->off[k];
        rc = add_joined(t, a, a + strlen(a) + 1, -1, NULL);
    }
    for (uint32_t k = 0; k < m->n && !rc; k++) {
        const char *a = m->text + m->off[k], *b = a + strlen(a) + 1;
        uint32_t sa = sym_find(t, a, strlen(a)), sb = sym_find(t, b, strlen(b)), res;
        if (sa == NO_SYM || sb == NO_SYM) continue; /* such a pair can never form */
        rc = add_joined(t, a, b, -1, &res);
        if (!rc) merge_put(t, sa, sb, (int32_t)k, res);
    }
    return rc;
}

/* The openai/CLIP vocabulary: bytes, bytes + "</w>", merges joined, specials. */
static int add_derived_vocab(semd_tokenizer *t, const merge_list *m)
{
    int rc = SEMD_OK;
    for (int end = 0; end < 2 && !rc; end++) {
        for (int b = 0; b < 256 && !rc; b++) {
            char buf[8];
            int32_t vid;
            size_t n = byte_symbol_text(b, end, buf, &vid);
            rc = sym_add(t, buf, n, vid, NULL);
        }
    }
    int32_t id = 512;
    for (uint32_t k = 0; k < m->n && !rc; k++) {
        const char *a = m->text + m->off[k];
        rc = add_joined(t, a, a + strlen(a) + 1, id++, NULL);
    }
    if (!rc) rc = sym_add(t, BOS_TEXT, strlen(BOS_TEXT), id++, NULL);
    if (!rc) rc = sym_add(t, EOS_TEXT, strlen(EOS_TEXT), id, NULL);
    return rc;
}

/* id -> symbol table, the vocabulary size and the special ids. */
static int index_vocab(semd_tokenizer *t, const char *path)
{
    int32_t max_id = -1;
    for (uint32_t s = 0; s < t->n_sym; s++)
        if (t->sym_vid[s] > max_id) max_id = t->sym_vid[s];
    t->n_ids = (size_t)max_id + 1;
    t->id_sym = malloc((t->n_ids ? t->n_ids : 1) * sizeof *t->id_sym);
    if (!t->id_sym) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < t->n_ids; i++) t->id_sym[i] = -1;
    t->vocab_size = 0;
    for (uint32_t s = 0; s < t->n_sym; s++) {
        if (t->sym_vid[s] < 0) continue;
        t->id_sym[t->sym_vid[s]] = (int32_t)s;
        t->vocab_size++;
    }
    uint32_t bos = sym_find(t, BOS_TEXT, strlen(BOS_TEXT)), eos = sym_find(t, EOS_TEXT, strlen(EOS_TEXT));
    if (bos == NO_SYM || eos == NO_SYM || t->sym_vid[bos] < 0 || t->sym_vid[eos] < 0)
        return semd_error(SEMD_EFORMAT, "%s: the vocabulary lacks %s or %s", path, BOS_TEXT, EOS_TEXT);
    t->bos = t->sym_vid[bos];
    t->eos = t->unk = t->pad = t->sym_vid[eos];
    return SEMD_OK;
}

/* ---- the pre-tokeniser ------------------------------------------------------- */

/*
 * CLIP's pattern, run by the regex module with IGNORECASE. Two differences from
 * PCRE2 are bridged: regex (2024.11.6) has Unicode 16 letter/number classes
 * while PCRE2 10.42 has Unicode 14, so the newer ranges are listed; and under
 * IGNORECASE regex matches U+0345 (which case-folds to a letter) with none of
 * the classes, so it is excluded from the last one. \s is spelt out as the
 * White_Space set (PCRE2's \s also takes U+180E).
 */
#define NEW_LETTERS                                                                       \
    "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}"      \
    "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}\\x{1123F}-\\x{11240}" \
    "\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}"  \
    "\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}" \
    "\\x{1342F}\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}"           \
    "\\x{16D40}-\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}"            \
    "\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{2B739}" \
    "\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}"
#define NEW_NUMBERS                                                                       \
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11F50}-\\x{11F59}" \
    "\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}" \
    "\\x{1E4F0}-\\x{1E4F9}\\x{1E5F1}-\\x{1E5FA}"
#define WHITE_SPACE \
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static const char CLIP_PATTERN[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d"
    "|[\\p{L}" NEW_LETTERS "]+"
    "|[\\p{N}" NEW_NUMBERS "]"
    "|[^" WHITE_SPACE "\\p{L}\\p{N}" NEW_LETTERS NEW_NUMBERS "\\x{345}]+";

static int compile_pattern(semd_tokenizer *t)
{
    int err;
    PCRE2_SIZE at;
    t->re = pcre2_compile((PCRE2_SPTR)CLIP_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &err, &at, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(err, msg, sizeof msg);
        return semd_error(SEMD_EUNSUPPORTED, "tokenizer: PCRE2 rejects the CLIP pattern at %zu: %s",
                          (size_t)at, (const char *)msg);
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* optional: the interpreter also works */
    return SEMD_OK;
}

/* ---- loading ----------------------------------------------------------------- */

void semd_tokenizer_free(semd_tokenizer *tok)
{
    if (!tok) return;
    pcre2_code_free(tok->re);
    free(tok->pool);
    free(tok->sym_off);
    free(tok->sym_len);
    free(tok->sym_vid);
    free(tok->str_slots);
    free(tok->merges);
    free(tok->id_sym);
    free(tok);
}

/* Shared tail of both loaders: merges, id index, pattern. */
static int finish_load(semd_tokenizer *t, const merge_list *m, const char *path)
{
    int rc = add_merges(t, m);
    if (!rc) rc = index_vocab(t, path);
    if (!rc) rc = compile_pattern(t);
    return rc;
}

int semd_tokenizer_load_bpe(const char *gz_path, semd_tokenizer **out)
{
    if (!gz_path || !out) return semd_error(SEMD_EINVAL, "semd_tokenizer_load_bpe: NULL argument");
    *out = NULL;
    merge_list m = {0};
    semd_tokenizer *t = calloc(1, sizeof *t);
    int rc = t ? alloc_tables(t) : semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    if (!rc) rc = read_merges(gz_path, &m);
    if (!rc) rc = add_derived_vocab(t, &m);
    if (!rc) rc = finish_load(t, &m, gz_path);
    merge_list_free(&m);
    if (rc) semd_tokenizer_free(t);
    else *out = t;
    return rc;
}

static int add_json_vocab(semd_tokenizer *t, const char *path)
{
    cJSON *json = NULL;
    int rc = semd_json_load(path, &json);
    if (rc) return rc;
    for (const cJSON *it = json->child; it && !rc; it = it->next) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (v < 0 || v >= MAX_VOCAB_ID || v != (double)(int32_t)v)
            rc = semd_error(SEMD_EFORMAT, "%s: \"%s\" has no valid id", path, it->string);
        else rc = sym_add(t, it->string, strlen(it->string), (int32_t)v, NULL);
    }
    cJSON_Delete(json);
    return rc;
}

/* special_tokens_map.json's "pad_token" (a string or {"content": ...}). */
static int read_pad_token(semd_tokenizer *t, const char *path)
{
    if (!semd_is_file(path)) return SEMD_OK; /* optional: the pad stays <|endoftext|> */
    cJSON *json = NULL;
    int rc = semd_json_load(path, &json);
    if (rc) return rc;
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(json, "pad_token");
    if (cJSON_IsObject(pad)) pad = cJSON_GetObjectItemCaseSensitive(pad, "content");
    if (pad && !cJSON_IsNull(pad)) {
        uint32_t s = cJSON_IsString(pad) ? sym_find(t, pad->valuestring, strlen(pad->valuestring)) : NO_SYM;
        if (s == NO_SYM || t->sym_vid[s] < 0)
            rc = semd_error(SEMD_EFORMAT, "%s: pad_token is not a string in the vocabulary", path);
        else t->pad = t->sym_vid[s];
    }
    cJSON_Delete(json);
    return rc;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int semd_tokenizer_load_dir(const char *dir, semd_tokenizer **out)
{
    if (!dir || !out) return semd_error(SEMD_EINVAL, "semd_tokenizer_load_dir: NULL argument");
    *out = NULL;
    char *vocab = join_path(dir, "vocab.json"), *merges = join_path(dir, "merges.txt");
    char *special = join_path(dir, "special_tokens_map.json");
    merge_list m = {0};
    semd_tokenizer *t = calloc(1, sizeof *t);
    int rc = (t && vocab && merges && special) ? alloc_tables(t)
                                               : semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    if (!rc) rc = add_json_vocab(t, vocab);
    if (!rc) rc = read_merges(merges, &m);
    if (!rc) rc = finish_load(t, &m, vocab);
    if (!rc) rc = read_pad_token(t, special);
    merge_list_free(&m);
    free(vocab);
    free(merges);
    free(special);
    if (rc) semd_tokenizer_free(t);
    else *out = t;
    return rc;
}

static int try_load(const char *dir, const char *rel, semd_tokenizer **out, bool *tried)
{
    char *path = join_path(dir, rel);
    if (!path) return semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    int rc = SEMD_ENOTFOUND;
    if (semd_is_file(path)) {
        *tried = true;
        rc = semd_tokenizer_load_bpe(path, out);
    }
    free(path);
    return rc;
}

int semd_tokenizer_load_default(semd_tokenizer **out)
{
    static const char rel[] = "clip/bpe_simple_vocab_16e6.txt.gz";
    if (!out) return semd_error(SEMD_EINVAL, "semd_tokenizer_load_default: NULL argument");
    const char *dirs[3] = {getenv("SEMDRAW_DATA_DIR"), NULL, NULL};
#ifdef SEMD_ASSET_DIR_BUILD
    dirs[1] = SEMD_ASSET_DIR_BUILD;
#endif
#ifdef SEMD_ASSET_DIR_INSTALL
    dirs[2] = SEMD_ASSET_DIR_INSTALL;
#endif
    for (int k = 0; k < 3; k++) {
        bool tried = false;
        if (!dirs[k] || !*dirs[k]) continue;
        int rc = try_load(dirs[k], rel, out, &tried);
        if (tried || rc != SEMD_ENOTFOUND) return rc;
    }
    return semd_error(SEMD_ENOTFOUND, "%s not found (set SEMDRAW_DATA_DIR to the folder holding clip/)",
                      rel);
}

/* ---- accessors ----------------------------------------------------------------- */

int32_t semd_tokenizer_pad_id(const semd_tokenizer *tok) { return tok ? tok->pad : -1; }

void semd_tokenizer_set_pad_id(semd_tokenizer *tok, int32_t pad_id)
{
    if (tok) tok->pad = pad_id;
}

size_t semd_tokenizer_vocab_size(const semd_tokenizer *tok) { return tok ? tok->vocab_size : 0; }

int semd_tokenizer_token_text(const semd_tokenizer *tok, int32_t id, char *buf, size_t cap)
{
    if (!tok || (!buf && cap)) return semd_error(SEMD_EINVAL, "semd_tokenizer_token_text: NULL argument");
    if (id < 0 || (size_t)id >= tok->n_ids || tok->id_sym[id] < 0)
        return semd_error(SEMD_EINVAL, "token id %d is not in the vocabulary", (int)id);
    uint32_t s = (uint32_t)tok->id_sym[id];
    size_t n = tok->sym_len[s];
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, sym_str(tok, s), k);
        buf[k] = '\0';
    }
    return (int)n;
}

/* ---- encoding ------------------------------------------------------------------- */

/* Per-call state: the output and the BPE scratch arrays. */
typedef struct encoder {
    const semd_tokenizer *tok;
    int32_t *ids;
    size_t cap, n;
    uint32_t *sym;
    int32_t *rank;
    unsigned char *merged;
    size_t work_cap;
} encoder;

static void emit(encoder *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

static int reserve_work(encoder *e, size_t n)
{
    if (n <= e->work_cap) return SEMD_OK;
    size_t cap = e->work_cap ? e->work_cap : 64;
    while (cap < n) cap *= 2;
    free(e->sym);
    free(e->rank);
    free(e->merged);
    e->sym = malloc(cap * sizeof *e->sym);
    e->rank = malloc(cap * sizeof *e->rank);
    e->merged = malloc(cap);
    e->work_cap = e->sym && e->rank && e->merged ? cap : 0;
    return e->work_cap ? SEMD_OK : semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
}

static int32_t pair_rank(const semd_tokenizer *t, const uint32_t *sym, size_t i, size_t n)
{
    return i + 1 < n ? merge_rank(t, sym[i], sym[i + 1], NULL) : NO_RANK;
}

/* Merge every occurrence of (a, b), left to right, in place; rank[i] stays
 * the rank of pair (i, i+1), recomputed only next to merged symbols. */
static size_t merge_pass(encoder *e, size_t n, uint32_t a, uint32_t b, uint32_t res)
{
    uint32_t *sym = e->sym;
    size_t w = 0;
    for (size_t i = 0; i < n; w++) {
        if (i + 1 < n && sym[i] == a && sym[i + 1] == b) {
            sym[w] = res;
            e->merged[w] = 1;
            i += 2;
        } else {
            sym[w] = sym[i];
            e->rank[w] = e->rank[i];
            e->merged[w] = 0;
            i++;
        }
    }
    for (size_t k = 0; k < w; k++) {
        if (!e->merged[k]) continue;
        if (k > 0) e->rank[k - 1] = pair_rank(e->tok, sym, k - 1, w);
        e->rank[k] = pair_rank(e->tok, sym, k, w);
    }
    return w;
}

/* BPE as CLIPTokenizer.bpe does it: while some adjacent pair has a rank,
 * merge all occurrences of the lowest-ranked one. */
static size_t bpe(encoder *e, size_t n)
{
    for (size_t i = 0; i < n; i++) e->rank[i] = pair_rank(e->tok, e->sym, i, n);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (e->rank[i] < e->rank[best]) best = i;
        if (e->rank[best] == NO_RANK) break;
        uint32_t a = e->sym[best], b = e->sym[best + 1], res = 0;
        merge_rank(e->tok, a, b, &res);
        n = merge_pass(e, n, a, b, res);
    }
    return n;
}

static int encode_piece(encoder *e, const char *p, size_t len)
{
    const semd_tokenizer *t = e->tok;
    /* the special pieces skip BPE (the references' cache holds them as they are) */
    bool bos = len == strlen(BOS_TEXT) && memcmp(p, BOS_TEXT, len) == 0;
    bool eos = len == strlen(EOS_TEXT) && memcmp(p, EOS_TEXT, len) == 0;
    if (bos || eos) {
        emit(e, bos ? t->bos : t->eos);
        return SEMD_OK;
    }
    int rc = reserve_work(e, len);
    if (rc) return rc;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        e->sym[i] = i + 1 < len ? t->byte_sym[c] : t->byte_end_sym[c];
    }
    size_t n = bpe(e, len);
    for (size_t i = 0; i < n; i++) {
        int32_t vid = t->sym_vid[e->sym[i]];
        emit(e, vid >= 0 ? vid : t->unk);
    }
    return SEMD_OK;
}

/* Clean one stretch of text, split it with the CLIP pattern, BPE each piece. */
static int encode_text(encoder *e, semd_text_mode mode, const char *s, size_t len)
{
    semd_strbuf clean = {0};
    int rc = semd_text_clean(mode, s, len, &clean);
    pcre2_match_data *md = rc ? NULL : pcre2_match_data_create(1, NULL);
    if (!rc && !md) rc = semd_error(SEMD_ENOMEM, "tokenizer: out of memory");
    for (size_t off = 0; !rc && off < clean.len;) {
        int m = pcre2_match(e->tok->re, (PCRE2_SPTR)clean.data, clean.len, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            rc = semd_error(SEMD_EBACKEND, "tokenizer: PCRE2 match failed (%d)", m);
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        rc = encode_piece(e, clean.data + ov[0], ov[1] - ov[0]);
        off = ov[1]; /* every alternative consumes at least one character */
    }
    pcre2_match_data_free(md);
    semd_strbuf_free(&clean);
    return rc;
}

/* The leftmost special token in s (HF's added-tokens trie), or NULL. */
static const char *find_special(const char *s, int32_t *id, size_t *len, const semd_tokenizer *t)
{
    const char *b = strstr(s, BOS_TEXT), *e = strstr(s, EOS_TEXT);
    if (b && (!e || b < e)) {
        *id = t->bos;
        *len = strlen(BOS_TEXT);
        return b;
    }
    if (e) {
        *id = t->eos;
        *len = strlen(EOS_TEXT);
    }
    return e;
}

static int encode_all(encoder *e, semd_text_mode mode, const char *text, size_t len)
{
    if (mode == SEMD_TEXT_OPENAI) return encode_text(e, mode, text, len);
    /* transformers splits the special tokens out before anything else */
    const char *p = text;
    for (;;) {
        int32_t id = 0;
        size_t n = 0;
        const char *sp = find_special(p, &id, &n, e->tok);
        size_t chunk = sp ? (size_t)(sp - p) : len - (size_t)(p - text);
        int rc = chunk ? encode_text(e, mode, p, chunk) : SEMD_OK;
        if (rc || !sp) return rc;
        emit(e, id);
        p = sp + n;
    }
}

int semd_tokenizer_encode(const semd_tokenizer *tok, semd_text_mode mode, const char *text,
                          int32_t *ids, size_t cap, size_t *n_ids)
{
    if (!tok || !text || !n_ids || (!ids && cap))
        return semd_error(SEMD_EINVAL, "semd_tokenizer_encode: NULL argument");
    if (mode != SEMD_TEXT_HF && mode != SEMD_TEXT_OPENAI)
        return semd_error(SEMD_EINVAL, "semd_tokenizer_encode: unknown text mode %d", (int)mode);
    size_t len = strlen(text), bad = semd_utf8_check(text, len);
    if (bad < len) return semd_error(SEMD_EINVAL, "prompt is not valid UTF-8 at byte offset %zu", bad);
    encoder e = {.tok = tok, .ids = ids, .cap = cap};
    int rc = encode_all(&e, mode, text, len);
    free(e.sym);
    free(e.rank);
    free(e.merged);
    if (!rc) *n_ids = e.n;
    return rc;
}

int semd_tokenizer_encode_padded(const semd_tokenizer *tok, semd_text_mode mode, const char *text,
                                 int32_t ids[SEMD_CLIP_CONTEXT])
{
    if (!tok || !text || !ids) return semd_error(SEMD_EINVAL, "semd_tokenizer_encode_padded: NULL argument");
    enum { MAX_CONTENT = SEMD_CLIP_CONTEXT - 2 };
    size_t n = 0;
    int rc = semd_tokenizer_encode(tok, mode, text, ids + 1, MAX_CONTENT, &n);
    if (rc) return rc;
    if (n > MAX_CONTENT) n = MAX_CONTENT;
    ids[0] = tok->bos;
    ids[n + 1] = tok->eos;
    for (size_t i = n + 2; i < SEMD_CLIP_CONTEXT; i++) ids[i] = tok->pad;
    return SEMD_OK;
}
