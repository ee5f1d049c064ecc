/* The CLIP tokenizer against models.md section 4 and the reference goldens
 * (tools/reference/gen_tokenizer_goldens.py). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "semd/status.h"
#include "semd/tokenizer.h"

#define CTX SEMD_CLIP_CONTEXT

/* The shipped merges file, found from tests/data (the suite has no asset macro). */
static const char *bpe_path(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/../../daemon/engine/assets/clip/bpe_simple_vocab_16e6.txt.gz",
             semd_test_data_dir());
    return path;
}

static const char *golden_dir(void)
{
    return semd_test_path(semd_test_data_dir(), "tokenizer/clip-vit-large");
}

static semd_tokenizer *load_bpe(void)
{
    semd_tokenizer *tok = NULL;
    ASSERT_OK(semd_tokenizer_load_bpe(bpe_path(), &tok));
    return tok;
}

static semd_tokenizer *load_dir(void)
{
    semd_tokenizer *tok = NULL;
    ASSERT_OK(semd_tokenizer_load_dir(golden_dir(), &tok));
    return tok;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) FAIL("cannot write %s", path);
}

/* Print text with non-printable bytes escaped, for failure messages. */
static void print_escaped(const char *s)
{
    for (size_t i = 0; s[i] && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fputc('\n', stderr);
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* ---- models.md section 4 ---------------------------------------------------- */

static const struct {
    const char *text;
    int32_t ids[12];
} SPEC_TABLE[] = {
    {"a photo of a cat", {49406, 320, 1125, 539, 320, 2368, 49407}},
    {"A Photo of a CAT!!", {49406, 320, 1125, 539, 320, 2368, 748, 49407}},
    {"an astronaut riding a horse on the moon", {49406, 550, 18376, 6765, 320, 4558, 525, 518, 3293, 49407}},
    {"hello world", {49406, 3306, 1002, 49407}},
    {"don't", {49406, 847, 713, 49407}},
    {"1234", {49406, 272, 273, 274, 275, 49407}},
    {"caf\xc3\xa9", {49406, 15304, 49407}},
    {"  multiple   spaces\tand\nnewlines ", {49406, 6470, 9006, 537, 1218, 3418, 49407}},
    {"a lovely cat", {49406, 320, 2165, 2368, 49407}},
};

static void check_spec_table(const semd_tokenizer *tok)
{
    for (size_t k = 0; k < sizeof SPEC_TABLE / sizeof SPEC_TABLE[0]; k++) {
        for (int mode = SEMD_TEXT_HF; mode <= SEMD_TEXT_OPENAI; mode++) {
            int32_t ids[CTX];
            ASSERT_OK(semd_tokenizer_encode_padded(tok, (semd_text_mode)mode, SPEC_TABLE[k].text, ids));
            size_t n = 0;
            while (n < 12 && SPEC_TABLE[k].ids[n]) n++;
            for (size_t i = 0; i < CTX; i++) {
                int32_t want = i < n ? SPEC_TABLE[k].ids[i] : SEMD_CLIP_EOS;
                if (ids[i] != want) {
                    print_escaped(SPEC_TABLE[k].text);
                    FAIL("spec prompt %zu, mode %d: id %zu is %d, expected %d", k, mode, i, ids[i], want);
                }
            }
        }
    }
}

TEST(spec_table_bpe)
{
    semd_tokenizer *tok = load_bpe();
    check_spec_table(tok);
    semd_tokenizer_free(tok);
}

TEST(spec_table_dir)
{
    semd_tokenizer *tok = load_dir();
    check_spec_table(tok);
    semd_tokenizer_free(tok);
}

/* ---- goldens --------------------------------------------------------------- */

static cJSON *load_golden(void)
{
    const char *path = semd_test_path(semd_test_data_dir(), "tokenizer/golden.json");
    FILE *f = fopen(path, "rb");
    if (!f) FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) FAIL("cannot read %s", path);
    fclose(f);
    text[len] = '\0';
    cJSON *json = cJSON_Parse(text);
    free(text);
    if (!json) FAIL("%s is not valid JSON", path);
    return json;
}

static size_t json_ids(const cJSON *array, int32_t *ids, size_t cap)
{
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, array) {
        if (n >= cap) FAIL("golden id list longer than %zu", cap);
        ids[n++] = (int32_t)it->valueint;
    }
    return n;
}

static void expect_ids(int index, const char *text, const char *what, const int32_t *want, size_t n_want,
                       const int32_t *got, size_t n_got)
{
    if (n_want == n_got && memcmp(want, got, n_want * sizeof *want) == 0) return;
    fprintf(stderr, "golden case %d (%s) mismatch for text: ", index, what);
    print_escaped(text);
    print_ids("expected", want, n_want);
    print_ids("got", got, n_got);
    FAIL("golden case %d differs (%s)", index, what);
}

enum { MAX_FULL = 4096 };

static void check_case(const semd_tokenizer *tok, int index, const cJSON *c, int32_t *want, int32_t *got)
{
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    size_t n = json_ids(cJSON_GetObjectItem(c, "hf"), want, MAX_FULL);
    ASSERT_OK(semd_tokenizer_encode_padded(tok, SEMD_TEXT_HF, text, got));
    expect_ids(index, text, "hf", want, n, got, CTX);

    n = json_ids(cJSON_GetObjectItem(c, "openai"), want, MAX_FULL);
    ASSERT_OK(semd_tokenizer_encode_padded(tok, SEMD_TEXT_OPENAI, text, got));
    expect_ids(index, text, "openai", want, n, got, CTX);

    n = json_ids(cJSON_GetObjectItem(c, "hf_full"), want, MAX_FULL);
    size_t n_got = 0;
    ASSERT_OK(semd_tokenizer_encode(tok, SEMD_TEXT_HF, text, got, MAX_FULL, &n_got));
    expect_ids(index, text, "hf_full", want, n, got, n_got);
}

static void check_goldens(const semd_tokenizer *tok)
{
    cJSON *json = load_golden();
    const cJSON *cases = cJSON_GetObjectItem(json, "cases");
    ASSERT(cJSON_GetArraySize(cases) >= 300);
    int32_t *want = malloc(MAX_FULL * sizeof *want), *got = malloc(MAX_FULL * sizeof *got);
    ASSERT(want && got);
    int index = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) check_case(tok, index++, c, want, got);
    printf("%d golden cases match\n", index);
    free(want);
    free(got);
    cJSON_Delete(json);
}

TEST(golden_bpe)
{
    semd_tokenizer *tok = load_bpe();
    check_goldens(tok);
    semd_tokenizer_free(tok);
}

TEST(golden_dir)
{
    semd_tokenizer *tok = load_dir();
    check_goldens(tok);
    semd_tokenizer_free(tok);
}

/* ---- vocabulary, pad ids, default location ------------------------------------- */

static void expect_token(const semd_tokenizer *tok, int32_t id, const char *text)
{
    char buf[64];
    int n = semd_tokenizer_token_text(tok, id, buf, sizeof buf);
    if (n < 0 || strcmp(buf, text) != 0) FAIL("token %d is \"%s\" (%d), expected \"%s\"", id, buf, n, text);
    ASSERT_EQ(n, strlen(text));
}

static void check_vocab(const semd_tokenizer *tok)
{
    ASSERT_EQ(semd_tokenizer_vocab_size(tok), 49408);
    expect_token(tok, 0, "!");
    expect_token(tok, 255, "\xc5\x83"); /* U+0143, the last remapped byte */
    expect_token(tok, 256, "!</w>");
    expect_token(tok, 2368, "cat</w>");
    expect_token(tok, 49405, "jekyll</w>");
    expect_token(tok, SEMD_CLIP_BOS, "<|startoftext|>");
    expect_token(tok, SEMD_CLIP_EOS, "<|endoftext|>");
    char small[4];
    ASSERT_EQ(semd_tokenizer_token_text(tok, 49405, small, sizeof small), strlen("jekyll</w>"));
    ASSERT_STREQ(small, "jek");
    ASSERT_EQ(semd_tokenizer_token_text(tok, 49408, small, sizeof small), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_token_text(tok, -1, small, sizeof small), SEMD_EINVAL);
}

TEST(vocab_facts)
{
    semd_tokenizer *a = load_bpe(), *b = load_dir();
    check_vocab(a);
    check_vocab(b);
    semd_tokenizer_free(a);
    semd_tokenizer_free(b);
}

/* A tokenizer folder sharing the golden vocab/merges, with its own special map. */
static const char *folder_with_special(const char *name, const char *special_json)
{
    const char *dir = semd_test_path(semd_test_tmpdir(), name);
    if (mkdir(dir, 0700) != 0) FAIL("mkdir %s", dir);
    const char *files[] = {"vocab.json", "merges.txt"};
    for (int k = 0; k < 2; k++) {
        char src[1024];
        snprintf(src, sizeof src, "%s/%s", golden_dir(), files[k]);
        if (symlink(src, semd_test_path(dir, files[k])) != 0) FAIL("symlink %s", src);
    }
    if (special_json) write_file(semd_test_path(dir, "special_tokens_map.json"), special_json, strlen(special_json));
    return dir;
}

static int32_t pad_of_folder(const char *dir)
{
    semd_tokenizer *tok = NULL;
    ASSERT_OK(semd_tokenizer_load_dir(dir, &tok));
    int32_t pad = semd_tokenizer_pad_id(tok);
    semd_tokenizer_free(tok);
    return pad;
}

TEST(pad_ids)
{
    ASSERT_EQ(pad_of_folder(golden_dir()), SEMD_CLIP_EOS);
    ASSERT_EQ(pad_of_folder(folder_with_special("pad_bang", "{\"pad_token\": \"!\"}")), 0);
    ASSERT_EQ(pad_of_folder(folder_with_special("pad_object",
                                                "{\"pad_token\": {\"content\": \"!\", \"lstrip\": false}}")),
              0);
    ASSERT_EQ(pad_of_folder(folder_with_special("no_special", NULL)), SEMD_CLIP_EOS);
    ASSERT_EQ(pad_of_folder(folder_with_special("no_pad", "{\"bos_token\": \"<|startoftext|>\"}")), SEMD_CLIP_EOS);

    semd_tokenizer *tok = load_bpe();
    ASSERT_EQ(semd_tokenizer_pad_id(tok), SEMD_CLIP_EOS);
    semd_tokenizer_set_pad_id(tok, 0);
    ASSERT_EQ(semd_tokenizer_pad_id(tok), 0);
    int32_t ids[CTX];
    ASSERT_OK(semd_tokenizer_encode_padded(tok, SEMD_TEXT_HF, "a photo of a cat", ids));
    ASSERT_EQ(ids[5], 2368);
    ASSERT_EQ(ids[6], SEMD_CLIP_EOS);
    for (int i = 7; i < CTX; i++) ASSERT_EQ(ids[i], 0);
    semd_tokenizer_free(tok);
}

TEST(load_default)
{
    semd_tokenizer *tok = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_OK(semd_tokenizer_load_default(&tok));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("load_default: %.1f ms\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    ASSERT_EQ(semd_tokenizer_vocab_size(tok), 49408);
    semd_tokenizer_free(tok);

    /* $SEMDRAW_DATA_DIR comes first: a broken file there is reported, not skipped */
    const char *dir = semd_test_path(semd_test_tmpdir(), "data");
    ASSERT(mkdir(dir, 0700) == 0 && mkdir(semd_test_path(dir, "clip"), 0700) == 0);
    write_file(semd_test_path(dir, "clip/bpe_simple_vocab_16e6.txt.gz"), "#version\n", 9);
    setenv("SEMDRAW_DATA_DIR", dir, 1);
    ASSERT_EQ(semd_tokenizer_load_default(&tok), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), dir);
    /* a data dir without the file falls back to the build tree */
    setenv("SEMDRAW_DATA_DIR", semd_test_path(dir, "nothing-here"), 1);
    ASSERT_OK(semd_tokenizer_load_default(&tok));
    semd_tokenizer_free(tok);
}

/* ---- errors ------------------------------------------------------------------------ */

static const char *write_gz(const char *name, const char *text)
{
    const char *path = semd_test_path(semd_test_tmpdir(), name);
    gzFile f = gzopen(path, "wb");
    if (!f || gzputs(f, text) < 0 || gzclose(f) != Z_OK) FAIL("cannot write %s", path);
    return path;
}

static void expect_load_error(const char *path, int status, const char *needle)
{
    semd_tokenizer *tok = (semd_tokenizer *)&tok; /* must be reset to NULL */
    semd_clear_error();
    ASSERT_EQ(semd_tokenizer_load_bpe(path, &tok), status);
    ASSERT(tok == NULL);
    ASSERT_CONTAINS(semd_last_error(), needle);
}

TEST(errors_bpe_file)
{
    const char *missing = semd_test_path(semd_test_tmpdir(), "missing.txt.gz");
    expect_load_error(missing, SEMD_EIO, missing);

    /* a gzip header followed by garbage */
    const char *corrupt = semd_test_path(semd_test_tmpdir(), "corrupt.gz");
    static const unsigned char junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff,
                                         0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
    write_file(corrupt, junk, sizeof junk);
    expect_load_error(corrupt, SEMD_EFORMAT, "corrupt gzip");

    /* the real file cut short mid-stream */
    FILE *f = fopen(bpe_path(), "rb");
    ASSERT(f);
    static unsigned char head[100000];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    const char *cut = semd_test_path(semd_test_tmpdir(), "cut.gz");
    write_file(cut, head, n);
    expect_load_error(cut, SEMD_EFORMAT, cut);

    const char *few = write_gz("few.txt.gz", "#version: 0.2\ni n\nt h\n");
    expect_load_error(few, SEMD_EFORMAT, "only 2 merges");
    expect_load_error(few, SEMD_EFORMAT, "expected 48894");

    const char *bad = write_gz("bad.txt.gz", "#version: 0.2\ni n\nthree parts here\n");
    expect_load_error(bad, SEMD_EFORMAT, "line 3");
    const char *one = write_gz("one.txt.gz", "#version: 0.2\nlonely\n");
    expect_load_error(one, SEMD_EFORMAT, "line 2: malformed");
}

TEST(errors_dir)
{
    semd_tokenizer *tok = NULL;
    const char *dir = semd_test_path(semd_test_tmpdir(), "badvocab");
    ASSERT(mkdir(dir, 0700) == 0);
    write_file(semd_test_path(dir, "vocab.json"), "[1, 2, 3]", 9);
    ASSERT_EQ(semd_tokenizer_load_dir(dir, &tok), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "expected a JSON object");
    ASSERT_CONTAINS(semd_last_error(), "vocab.json");
    ASSERT(tok == NULL);

    write_file(semd_test_path(dir, "vocab.json"), "{\"a\": \"x\"}", 10);
    ASSERT_EQ(semd_tokenizer_load_dir(dir, &tok), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "\"a\"");

    write_file(semd_test_path(dir, "vocab.json"), "{\"a\": ", 6);
    ASSERT_EQ(semd_tokenizer_load_dir(dir, &tok), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "invalid JSON");

    const char *nomerges = semd_test_path(semd_test_tmpdir(), "nomerges");
    ASSERT(mkdir(nomerges, 0700) == 0);
    char src[1024];
    snprintf(src, sizeof src, "%s/vocab.json", golden_dir());
    ASSERT(symlink(src, semd_test_path(nomerges, "vocab.json")) == 0);
    ASSERT_EQ(semd_tokenizer_load_dir(nomerges, &tok), SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), "merges.txt");

    const char *badpad = folder_with_special("badpad", "{\"pad_token\": \"not-a-token\"}");
    ASSERT_EQ(semd_tokenizer_load_dir(badpad, &tok), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "pad_token");

    ASSERT_EQ(semd_tokenizer_load_dir(semd_test_path(semd_test_tmpdir(), "nowhere"), &tok), SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), "nowhere/vocab.json");
}

TEST(errors_args_and_utf8)
{
    semd_tokenizer *tok = load_bpe();
    int32_t ids[CTX];
    size_t n = 0;
    ASSERT_EQ(semd_tokenizer_load_bpe(NULL, &tok), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_load_bpe(bpe_path(), NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_load_dir(NULL, &tok), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_load_default(NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode(NULL, SEMD_TEXT_HF, "a", ids, CTX, &n), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode(tok, SEMD_TEXT_HF, NULL, ids, CTX, &n), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode(tok, SEMD_TEXT_HF, "a", NULL, CTX, &n), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode(tok, SEMD_TEXT_HF, "a", ids, CTX, NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode(tok, (semd_text_mode)7, "a", ids, CTX, &n), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode_padded(tok, SEMD_TEXT_HF, NULL, ids), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode_padded(tok, SEMD_TEXT_HF, "a", NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_encode_padded(NULL, SEMD_TEXT_HF, "a", ids), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_token_text(NULL, 0, NULL, 0), SEMD_EINVAL);
    ASSERT_EQ(semd_tokenizer_pad_id(NULL), -1);
    ASSERT_EQ(semd_tokenizer_vocab_size(NULL), 0);
    semd_tokenizer_set_pad_id(NULL, 0);
    semd_tokenizer_free(NULL);

    /* a size query needs no buffer */
    ASSERT_OK(semd_tokenizer_encode(tok, SEMD_TEXT_HF, "a photo of a cat", NULL, 0, &n));
    ASSERT_EQ(n, 5);

    static const struct {
        const char *text;
        const char *offset;
    } bad[] = {
        {"ab\xff" "cd", "offset 2"},      {"\xc0\xaf", "offset 0"},     {"x\xed\xa0\x80", "offset 1"},
        {"caf\xc3", "offset 3"},          {"\xf4\x90\x80\x80", "offset 0"}, {"ok \xe2\x82", "offset 3"},
        {"\xc3\xa9\x80", "offset 2"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        for (int mode = SEMD_TEXT_HF; mode <= SEMD_TEXT_OPENAI; mode++) {
            ASSERT_EQ(semd_tokenizer_encode_padded(tok, (semd_text_mode)mode, bad[k].text, ids), SEMD_EINVAL);
            ASSERT_CONTAINS(semd_last_error(), "UTF-8");
            ASSERT_CONTAINS(semd_last_error(), bad[k].offset);
        }
    }
    semd_tokenizer_free(tok);
}

/* ---- long prompts, partial buffers, threads ---------------------------------------- */

TEST(long_prompt)
{
    semd_tokenizer *tok = load_bpe();
    enum { LEN = 100 * 1024 };
    static const char *words[] = {"a ", "photo ", "of ", "&amp; ", "caf\xc3\xa9 ", "\xe7\x8c\xab ",
                                  "supercalifragilistic ", "!!! ", "12 ", "don't "};
    char *text = malloc(LEN + 32);
    ASSERT(text);
    size_t len = 0;
    for (int k = 0; len < LEN; k = (k * 7 + 3) % 10) {
        size_t n = strlen(words[k]);
        memcpy(text + len, words[k], n);
        len += n;
    }
    text[len] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t total = 0;
    ASSERT_OK(semd_tokenizer_encode(tok, SEMD_TEXT_HF, text, NULL, 0, &total));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("100 KB prompt: %zu ids in %.1f ms\n", total,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    ASSERT(total > 10000);

    /* a short buffer gets the first ids and the full count; nothing past cap is touched */
    int32_t *all = malloc(total * sizeof *all), part[11];
    ASSERT(all);
    size_t n = 0;
    ASSERT_OK(semd_tokenizer_encode(tok, SEMD_TEXT_HF, text, all, total, &n));
    ASSERT_EQ(n, total);
    part[10] = -12345;
    ASSERT_OK(semd_tokenizer_encode(tok, SEMD_TEXT_HF, text, part, 10, &n));
    ASSERT_EQ(n, total);
    ASSERT(memcmp(part, all, 10 * sizeof *part) == 0);
    ASSERT_EQ(part[10], -12345);

    int32_t ids[CTX];
    ASSERT_OK(semd_tokenizer_encode_padded(tok, SEMD_TEXT_OPENAI, text, ids));
    ASSERT_EQ(ids[0], SEMD_CLIP_BOS);
    ASSERT_EQ(ids[CTX - 1], SEMD_CLIP_EOS);

    /* one 100 KB letter run: a single BPE word */
    memset(text, 'q', LEN);
    for (size_t i = 0; i < LEN; i += 7) text[i] = (char)('a' + i % 26);
    text[LEN] = '\0';
    ASSERT_OK(semd_tokenizer_encode(tok, SEMD_TEXT_HF, text, NULL, 0, &n));
    ASSERT(n > 1000);
    free(all);
    free(text);
    semd_tokenizer_free(tok);
}

struct thread_job {
    const semd_tokenizer *tok;
    const int32_t *want; /* the ids of every prompt, CTX each */
    int ok;
};

static const char *THREAD_PROMPTS[] = {"a photo of a cat", "caf\xc3\xa9 &amp; \xce\xa3\xce\xa3", "\xef\xbc\xac\xef\xbc\xaf",
                                       "it\xe2\x80\x99s <|endoftext|> ok", "\xf0\x9f\x98\x80 emoji"};
enum { N_THREAD_PROMPTS = sizeof THREAD_PROMPTS / sizeof THREAD_PROMPTS[0] };

static void *thread_main(void *arg)
{
    struct thread_job *job = arg;
    job->ok = 1;
    for (int round = 0; round < 200; round++) {
        int k = round % N_THREAD_PROMPTS;
        int32_t ids[CTX];
        if (semd_tokenizer_encode_padded(job->tok, SEMD_TEXT_HF, THREAD_PROMPTS[k], ids) ||
            memcmp(ids, job->want + k * CTX, sizeof ids) != 0)
            job->ok = 0;
    }
    return NULL;
}

TEST(threads)
{
    semd_tokenizer *tok = load_bpe();
    int32_t want[N_THREAD_PROMPTS * CTX];
    for (int k = 0; k < N_THREAD_PROMPTS; k++)
        ASSERT_OK(semd_tokenizer_encode_padded(tok, SEMD_TEXT_HF, THREAD_PROMPTS[k], want + k * CTX));
    pthread_t th[4];
    struct thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){tok, want, 0};
        ASSERT(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT(jobs[i].ok);
    }
    semd_tokenizer_free(tok);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(spec_table_bpe),
    TEST_ENTRY(spec_table_dir),
    TEST_ENTRY(golden_bpe),
    TEST_ENTRY(golden_dir),
    TEST_ENTRY(vocab_facts),
    TEST_ENTRY(pad_ids),
    TEST_ENTRY(load_default),
    TEST_ENTRY(errors_bpe_file),
    TEST_ENTRY(errors_dir),
    TEST_ENTRY(errors_args_and_utf8),
    TEST_ENTRY(long_prompt),
    TEST_ENTRY(threads),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
