/*
 * Tests for the safetensors reader and writer. Malformed files are written
 * byte by byte; every rejection must carry the right status and a message
 * naming both the file and the problem.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "semd/safetensors.h"
#include "semd/status.h"

#include <dirent.h>
#include <float.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* ---- helpers ---- */

static const char *tmp_path(const char *name) { return semd_test_path(semd_test_tmpdir(), name); }

static const char *write_bytes(const char *name, const void *p, size_t n)
{
    const char *path = tmp_path(name);
    FILE *fp = fopen(path, "wb");
    if (!fp) FAIL("cannot create %s", path);
    if (n && fwrite(p, 1, n, fp) != n) FAIL("cannot write %s", path);
    fclose(fp);
    return path;
}

static void *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) FAIL("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    void *p = malloc(*n + 1);
    ASSERT(p && fread(p, 1, *n, fp) == *n);
    fclose(fp);
    return p;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Write a file from a header (single quotes stand for double quotes, to keep
 * the JSON readable here) followed by `data` (zeros when NULL).
 */
static const char *write_st(const char *name, const char *json, const void *data, size_t data_len)
{
    size_t hlen = strlen(json);
    uint8_t *buf = calloc(1, 8 + hlen + data_len + 1);
    put_le64(buf, hlen);
    for (size_t i = 0; i < hlen; i++) buf[8 + i] = json[i] == '\'' ? '"' : (uint8_t)json[i];
    if (data) memcpy(buf + 8 + hlen, data, data_len);
    const char *path = write_bytes(name, buf, 8 + hlen + data_len);
    free(buf);
    return path;
}

/* Opening must fail with `code`, and the message must name the file and `word`. */
static void expect_open_fails(const char *path, const char *name, int code, const char *word)
{
    semd_st_file *f = (semd_st_file *)1;
    semd_clear_error();
    int rc = semd_st_open(path, &f);
    if (rc != code) FAIL("%s: expected status %d, got %d (%s)", name, code, rc, semd_last_error());
    ASSERT(f == NULL);
    ASSERT_CONTAINS(semd_last_error(), name);
    ASSERT_CONTAINS(semd_last_error(), word);
}

static void expect_header_fails(const char *name, const char *json, size_t data_len, int code, const char *word)
{
    expect_open_fails(write_st(name, json, NULL, data_len), name, code, word);
}

static semd_st_file *open_ok(const char *path)
{
    semd_st_file *f = NULL;
    ASSERT_OK(semd_st_open(path, &f));
    ASSERT(f != NULL);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- writer -> reader round trips ---- */

struct sample {
    const char *name;
    semd_st_dtype dtype;
    int ndim;
    int64_t shape[3];
    const void *data;
};

static const uint8_t u8_vals[3] = {0, 7, 255};
static const float f32_vals[6] = {1.5f, -2.25f, 0.0f, 3e38f, -1e-30f, 42.0f};
static const double f64_vals[2] = {-1.0 / 3.0, 1e300};
static const uint16_t f16_vals[5] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000}; /* 1 -2 2^-24 65504 -0 */
static const uint16_t bf16_vals[3] = {0x3f80, 0xbfc0, 0x4049};               /* 1 -1.5 3.140625 */
static const int64_t i64_scalar[1] = {-9007199254740993LL};
static const int32_t i32_vals[4] = {INT32_MIN, -1, 0, INT32_MAX};
static const int16_t i16_vals[3] = {-32768, 12, 32767};
static const int8_t i8_vals[3] = {-128, -1, 127};
static const uint8_t bool_vals[2] = {1, 0};
static const float f32_scalar[1] = {-7.5f};

static const struct sample samples[] = {
    {"u8", SEMD_ST_U8, 1, {3}, u8_vals},  /* odd size first, so later starts need care */
    {"f32", SEMD_ST_F32, 2, {2, 3}, f32_vals},
    {"f64", SEMD_ST_F64, 1, {2}, f64_vals},
    {"f16", SEMD_ST_F16, 1, {5}, f16_vals},
    {"bf16", SEMD_ST_BF16, 1, {3}, bf16_vals},
    {"i64.scalar", SEMD_ST_I64, 0, {0}, i64_scalar},
    {"i32", SEMD_ST_I32, 1, {4}, i32_vals},
    {"i16", SEMD_ST_I16, 3, {1, 3, 1}, i16_vals},
    {"i8", SEMD_ST_I8, 1, {3}, i8_vals},
    {"bool", SEMD_ST_BOOL, 1, {2}, bool_vals},
    {"empty", SEMD_ST_F32, 2, {0, 4}, NULL},
    {"f32.scalar", SEMD_ST_F32, 0, {0}, f32_scalar},
};
#define NSAMPLES (sizeof samples / sizeof samples[0])

static const char *write_samples(const char *name)
{
    semd_st_writer *w = semd_st_writer_new();
    ASSERT(w);
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct sample *s = &samples[i];
        ASSERT_OK(semd_st_writer_add(w, s->name, s->dtype, s->ndim, s->shape, s->data));
    }
    ASSERT_OK(semd_st_writer_metadata(w, "format", "pt"));
    ASSERT_OK(semd_st_writer_metadata(w, "note", "quote \" backslash \\ newline \n tab \t"));
    const char *path = tmp_path(name);
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    return path;
}

TEST(roundtrip_every_dtype)
{
    semd_st_file *f = open_ok(write_samples("all.safetensors"));
    ASSERT_EQ(semd_st_count(f), NSAMPLES);
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct sample *s = &samples[i];
        const semd_st_tensor *t = semd_st_find(f, s->name);
        if (!t) FAIL("tensor %s missing", s->name);
        ASSERT_STREQ(t->name, s->name);
        ASSERT_EQ(t->dtype, s->dtype);
        ASSERT_EQ(t->ndim, s->ndim);
        uint64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            ASSERT_EQ(t->shape[d], s->shape[d]);
            numel *= (uint64_t)s->shape[d];
        }
        ASSERT_EQ(t->numel, numel);
        ASSERT_EQ(t->nbytes, numel * semd_st_dtype_size(s->dtype));
        if (t->nbytes) ASSERT(memcmp(t->data, s->data, t->nbytes) == 0);
    }
    ASSERT_STREQ(semd_st_metadata(f, "format"), "pt");
    ASSERT_STREQ(semd_st_metadata(f, "note"), "quote \" backslash \\ newline \n tab \t");
    ASSERT(semd_st_metadata(f, "absent") == NULL);
    ASSERT(semd_st_find(f, "nope") == NULL);
    ASSERT(semd_st_at(f, NSAMPLES) == NULL);
    ASSERT_STREQ(semd_st_path(f), tmp_path("all.safetensors"));
    semd_st_close(f);
}

/* Header padded to 8, data contiguous, each tensor aligned to its element size. */
TEST(writer_layout_is_aligned_and_contiguous)
{
    const char *path = write_samples("layout.safetensors");
    size_t n;
    uint8_t *raw = read_bytes(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | raw[i];
    ASSERT_EQ((8 + hlen) % 8, 0);
    ASSERT_EQ(raw[8], '{');
    free(raw);

    semd_st_file *f = open_ok(path);
    const uint8_t *base = NULL;
    size_t expect = 0;
    for (size_t i = 0; i < semd_st_count(f); i++) {
        const semd_st_tensor *t = semd_st_at(f, i);
        if (!base) base = t->data; /* the first tensor starts the data area */
        ASSERT_EQ((size_t)(t->data - base), expect);
        ASSERT_EQ((uintptr_t)t->data % semd_st_dtype_size(t->dtype), 0);
        expect += t->nbytes;
    }
    ASSERT_EQ(8 + hlen + expect, n);
    semd_st_close(f);
}

TEST(read_f32_converts_every_dtype)
{
    semd_st_file *f = open_ok(write_samples("conv.safetensors"));
    float out[8];
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "f32"), out));
    for (int i = 0; i < 6; i++) ASSERT(f32_bits(out[i]) == f32_bits(f32_vals[i]));
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "f64"), out));
    ASSERT(out[0] == (float)(-1.0 / 3.0) && isinf(out[1]));
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "f16"), out));
    ASSERT(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1, -24) && out[3] == 65504.0f);
    ASSERT(out[4] == 0.0f && signbit(out[4]));
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "bf16"), out));
    ASSERT(out[0] == 1.0f && out[1] == -1.5f && out[2] == 3.140625f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "i8"), out));
    ASSERT(out[0] == -128.0f && out[1] == -1.0f && out[2] == 127.0f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "u8"), out));
    ASSERT(out[0] == 0.0f && out[1] == 7.0f && out[2] == 255.0f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "i16"), out));
    ASSERT(out[0] == -32768.0f && out[2] == 32767.0f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "i32"), out));
    ASSERT(out[0] == -2147483648.0f && out[1] == -1.0f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "bool"), out));
    ASSERT(out[0] == 1.0f && out[1] == 0.0f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "f32.scalar"), out));
    ASSERT(out[0] == -7.5f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "empty"), NULL)); /* zero elements need no buffer */
    semd_st_close(f);
}

TEST(read_i64_integers_only)
{
    semd_st_file *f = open_ok(write_samples("ints.safetensors"));
    int64_t out[4];
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "i64.scalar"), out));
    ASSERT(out[0] == -9007199254740993LL);
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "i32"), out));
    ASSERT(out[0] == INT32_MIN && out[3] == INT32_MAX);
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "i8"), out));
    ASSERT(out[0] == -128 && out[2] == 127);
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "u8"), out));
    ASSERT(out[2] == 255);
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "i16"), out));
    ASSERT(out[0] == -32768 && out[1] == 12);
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "bool"), out));
    ASSERT(out[0] == 1 && out[1] == 0);
    semd_clear_error();
    ASSERT_EQ(semd_st_read_i64(semd_st_find(f, "bf16"), out), SEMD_ESHAPE);
    ASSERT_CONTAINS(semd_last_error(), "'bf16'");
    ASSERT_CONTAINS(semd_last_error(), "not an integer");
    semd_st_close(f);
}

TEST(writer_empty_and_metadata_replace)
{
    semd_st_writer *w = semd_st_writer_new();
    ASSERT_OK(semd_st_writer_metadata(w, "k", "first"));
    ASSERT_OK(semd_st_writer_metadata(w, "k", "second"));
    const char *path = tmp_path("empty.safetensors");
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    semd_st_file *f = open_ok(path);
    ASSERT_EQ(semd_st_count(f), 0);
    ASSERT_STREQ(semd_st_metadata(f, "k"), "second");
    semd_st_close(f);
}

TEST(writer_escapes_names)
{
    const char *names[] = {"quo\"te", "back\\slash", "new\nline", "ctl\x01", "caf\xc3\xa9 \xe2\x82\xac"};
    semd_st_writer *w = semd_st_writer_new();
    float v = 1.0f;
    int64_t one = 1;
    for (int i = 0; i < 5; i++) ASSERT_OK(semd_st_writer_add(w, names[i], SEMD_ST_F32, 1, &one, &v));
    const char *path = tmp_path("names.safetensors");
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    semd_st_file *f = open_ok(path);
    for (int i = 0; i < 5; i++) ASSERT(semd_st_find(f, names[i]) != NULL);
    semd_st_close(f);
}

TEST(writer_overwrites_and_leaves_no_temp_files)
{
    const char *dir = semd_test_path(semd_test_tmpdir(), "out");
    ASSERT(mkdir(dir, 0755) == 0);
    const char *path = semd_test_path(dir, "m.safetensors");
    write_bytes("out/m.safetensors", "old contents", 12);
    semd_st_writer *w = semd_st_writer_new();
    uint8_t b = 9;
    ASSERT_OK(semd_st_writer_add(w, "b", SEMD_ST_U8, 0, NULL, &b));
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') files++;
    closedir(d);
    ASSERT_EQ(files, 1);
    semd_st_file *f = open_ok(path);
    ASSERT_EQ(semd_st_find(f, "b")->data[0], 9);
    semd_st_close(f);
}

TEST(writer_rejects_bad_tensors)
{
    semd_st_writer *w = semd_st_writer_new();
    float v[4] = {0};
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -2};
    ASSERT_OK(semd_st_writer_add(w, "x", SEMD_ST_F32, 1, shape, v));
    struct {
        const char *name;
        int dtype, ndim;
        const int64_t *shape;
        const void *data;
        const char *word;
    } bad[] = {
        {"", SEMD_ST_F32, 1, shape, v, "empty"},
        {NULL, SEMD_ST_F32, 1, shape, v, "empty"},
        {"x", SEMD_ST_F32, 1, shape, v, "duplicate"},
        {"__metadata__", SEMD_ST_F32, 1, shape, v, "reserved"},
        {"deep", SEMD_ST_F32, 9, shape, v, "9 dims"},
        {"minus", SEMD_ST_F32, -1, shape, v, "-1 dims"},
        {"neg", SEMD_ST_F32, 2, neg, v, "negative"},
        {"dt", 99, 1, shape, v, "dtype"},
        {"nodata", SEMD_ST_F32, 1, shape, NULL, "NULL"},
        {"bad\xff", SEMD_ST_F32, 1, shape, v, "UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        semd_clear_error();
        int rc = semd_st_writer_add(w, bad[i].name, (semd_st_dtype)bad[i].dtype, bad[i].ndim, bad[i].shape,
                                    bad[i].data);
        if (rc != SEMD_EINVAL) FAIL("case %zu: expected EINVAL, got %d", i, rc);
        ASSERT_CONTAINS(semd_last_error(), bad[i].word);
        if (bad[i].name && *bad[i].name) ASSERT_CONTAINS(semd_last_error(), bad[i].name);
    }
    semd_st_writer_free(w);
}

TEST(writer_save_reports_io_errors)
{
    semd_st_writer *w = semd_st_writer_new();
    const char *path = tmp_path("no-such-dir/model.safetensors");
    semd_clear_error();
    ASSERT_EQ(semd_st_writer_save(w, path), SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), path);
    ASSERT_CONTAINS(semd_last_error(), "No such file or directory");
    semd_st_writer_free(w);
}

TEST(many_tensors_found_by_name)
{
    enum { N = 2000 };
    semd_st_writer *w = semd_st_writer_new();
    char name[64];
    for (int i = 0; i < N; i++) {
        int32_t v = i * 7;
        snprintf(name, sizeof name, "model.layers.%d.weight", (i * 997) % N); /* scrambled order */
        ASSERT_OK(semd_st_writer_add(w, name, SEMD_ST_I32, 0, NULL, &v));
    }
    const char *path = tmp_path("many.safetensors");
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    semd_st_file *f = open_ok(path);
    ASSERT_EQ(semd_st_count(f), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "model.layers.%d.weight", (i * 997) % N);
        const semd_st_tensor *t = semd_st_find(f, name);
        if (!t) FAIL("%s not found", name);
        int64_t v;
        ASSERT_OK(semd_st_read_i64(t, &v));
        ASSERT_EQ(v, i * 7);
    }
    for (size_t i = 1; i < N; i++) ASSERT(semd_st_at(f, i - 1)->data < semd_st_at(f, i)->data);
    ASSERT(semd_st_find(f, "model.layers.2000.weight") == NULL);
    semd_st_close(f);
}

/* ---- hand-made files that are valid ---- */

/* Data starting at odd file offsets must still read correctly. */
TEST(unaligned_data)
{
    /* 8 + header length is odd, so data offset 0 is at an odd address too */
    const char *json = "{'f32':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                       "'f16':{'dtype':'F16','shape':[2],'data_offsets':[9,13]},"
                       "'bf16':{'dtype':'BF16','shape':[1],'data_offsets':[13,15]},"
                       "'f64':{'dtype':'F64','shape':[1],'data_offsets':[15,23]},"
                       "'i32':{'dtype':'I32','shape':[1],'data_offsets':[23,27]}}";
    char padded[512];
    snprintf(padded, sizeof padded, "%s", json);
    if ((8 + strlen(padded)) % 2 == 0) strcat(padded, " ");
    uint8_t data[27] = {0};
    float a[2] = {3.25f, -0.5f};
    uint16_t h[2] = {0x3555, 0xfc00}, bf = 0xc0a0; /* 0.333251953125, -inf; -5 */
    double d = 2.5;
    int32_t i = -123456;
    memcpy(data, a, 8);
    data[8] = 0xee; /* a hole, which is tolerated */
    memcpy(data + 9, h, 4);
    memcpy(data + 13, &bf, 2);
    memcpy(data + 15, &d, 8);
    memcpy(data + 23, &i, 4);
    semd_st_file *f = open_ok(write_st("odd.safetensors", padded, data, sizeof data));
    const semd_st_tensor *t = semd_st_find(f, "f32");
    ASSERT((uintptr_t)t->data % 2 == 1);
    float out[2];
    ASSERT_OK(semd_st_read_f32(t, out));
    ASSERT(out[0] == 3.25f && out[1] == -0.5f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "f16"), out));
    ASSERT(out[0] == 0.333251953125f && isinf(out[1]) && out[1] < 0);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "bf16"), out));
    ASSERT(out[0] == -5.0f);
    ASSERT_OK(semd_st_read_f32(semd_st_find(f, "f64"), out));
    ASSERT(out[0] == 2.5f);
    int64_t iv;
    ASSERT_OK(semd_st_read_i64(semd_st_find(f, "i32"), &iv));
    ASSERT_EQ(iv, -123456);
    semd_st_close(f);
}

/* Tensors listed out of offset order come back sorted; holes and zero-size tensors are fine. */
TEST(order_holes_and_empty_tensors)
{
    const char *json = "{'c':{'dtype':'U8','shape':[4],'data_offsets':[12,16]},"
                       "'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                       "'z':{'dtype':'F32','shape':[0],'data_offsets':[2,2]},"
                       "'b':{'dtype':'I16','shape':[2],'data_offsets':[8,12]},"
                       "'e':{'dtype':'BOOL','shape':[],'data_offsets':[16,17]}}";
    semd_st_file *f = open_ok(write_st("holes.safetensors", json, NULL, 20));
    const char *order = "azbce";
    ASSERT_EQ(semd_st_count(f), 5);
    for (size_t i = 0; i < 5; i++) ASSERT_EQ(semd_st_at(f, i)->name[0], order[i]);
    ASSERT_EQ(semd_st_find(f, "z")->numel, 0);
    ASSERT_EQ(semd_st_find(f, "e")->ndim, 0);
    ASSERT_EQ(semd_st_find(f, "e")->numel, 1);
    semd_st_close(f);
}

TEST(header_padding_and_null_metadata_accepted)
{
    semd_st_file *f = open_ok(write_st("pad.safetensors", "  {'__metadata__':null}     \n  ", NULL, 0));
    ASSERT_EQ(semd_st_count(f), 0);
    ASSERT(semd_st_metadata(f, "x") == NULL);
    semd_st_close(f);
}

/* ---- conversions ---- */

TEST(f16_special_values)
{
    ASSERT(semd_f16_to_f32(0x0001) == ldexpf(1, -24));   /* smallest subnormal */
    ASSERT(semd_f16_to_f32(0x03ff) == ldexpf(1023, -24)); /* largest subnormal */
    ASSERT(semd_f16_to_f32(0x0400) == ldexpf(1, -14));   /* smallest normal */
    ASSERT(semd_f16_to_f32(0x7bff) == 65504.0f);
    ASSERT(semd_f16_to_f32(0x3c00) == 1.0f);
    ASSERT(isinf(semd_f16_to_f32(0x7c00)) && semd_f16_to_f32(0x7c00) > 0);
    ASSERT(isinf(semd_f16_to_f32(0xfc00)) && semd_f16_to_f32(0xfc00) < 0);
    ASSERT(isnan(semd_f16_to_f32(0x7e00)) && isnan(semd_f16_to_f32(0xfc01)));
    float nz = semd_f16_to_f32(0x8000);
    ASSERT(nz == 0.0f && signbit(nz));

    ASSERT_EQ(semd_f32_to_f16(ldexpf(1, -24)), 0x0001);
    ASSERT_EQ(semd_f32_to_f16(ldexpf(1, -25)), 0x0000);       /* tie, to even */
    ASSERT_EQ(semd_f32_to_f16(ldexpf(3, -26)), 0x0001);       /* 0.75 ulp */
    ASSERT_EQ(semd_f32_to_f16(ldexpf(3, -25)), 0x0002);       /* 1.5 ulp: tie, to even */
    ASSERT_EQ(semd_f32_to_f16(ldexpf(1, -30)), 0x0000);
    ASSERT_EQ(semd_f32_to_f16(ldexpf(1023, -24)), 0x03ff);
    ASSERT_EQ(semd_f32_to_f16(ldexpf(2047, -25)), 0x0400);    /* rounds up into the normals */
    ASSERT_EQ(semd_f32_to_f16(65504.0f), 0x7bff);
    ASSERT_EQ(semd_f32_to_f16(65519.0f), 0x7bff);
    ASSERT_EQ(semd_f32_to_f16(65520.0f), 0x7c00);             /* tie past max, to inf */
    ASSERT_EQ(semd_f32_to_f16(1e10f), 0x7c00);
    ASSERT_EQ(semd_f32_to_f16(-INFINITY), 0xfc00);
    ASSERT_EQ(semd_f32_to_f16(-0.0f), 0x8000);
    ASSERT_EQ(semd_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie, to even */
    ASSERT_EQ(semd_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3c02); /* tie, to even */
    ASSERT_EQ(semd_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
    uint16_t n = semd_f32_to_f16(NAN);
    ASSERT((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    n = semd_f32_to_f16(bits_f32(0xff800001)); /* signalling NaN whose payload sits below bit 13 */
    ASSERT((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0 && (n & 0x8000));
}

/* Every half survives half -> float -> half; NaNs stay NaN. */
TEST(f16_exhaustive_roundtrip)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = semd_f16_to_f32((uint16_t)h);
        uint16_t back = semd_f32_to_f16(f);
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan) ASSERT(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        else if (back != h) FAIL("half 0x%04x -> %g -> 0x%04x", h, (double)f, back);
    }
}

/* float -> half picks the nearest half, ties to even, across the whole finite range. */
TEST(f16_rounding_is_nearest_even)
{
    for (uint32_t bits = 0; bits < 0x477ff000u; bits += 997) {
        float x = bits_f32(bits);
        uint16_t h = semd_f32_to_f16(x);
        double v = semd_f16_to_f32(h), err = fabs((double)x - v);
        double lo = h > 0 ? fabs((double)x - semd_f16_to_f32((uint16_t)(h - 1))) : INFINITY;
        double hi = h < 0x7bff ? fabs((double)x - semd_f16_to_f32((uint16_t)(h + 1))) : INFINITY;
        if (err > lo || err > hi || ((err == lo || err == hi) && (h & 1)))
            FAIL("%.9g -> 0x%04x is not the nearest even half", (double)x, h);
    }
}

TEST(bf16_rounding)
{
    ASSERT_EQ(semd_f32_to_bf16(1.0f), 0x3f80);
    ASSERT_EQ(semd_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);                  /* tie, to even */
    ASSERT_EQ(semd_f32_to_bf16(1.0f + ldexpf(3, -8)), 0x3f82);                  /* tie, to even */
    ASSERT_EQ(semd_f32_to_bf16(1.0f + ldexpf(1, -8) + ldexpf(1, -20)), 0x3f81); /* above the tie */
    ASSERT_EQ(semd_f32_to_bf16(-0.0f), 0x8000);
    ASSERT_EQ(semd_f32_to_bf16(INFINITY), 0x7f80);
    ASSERT_EQ(semd_f32_to_bf16(FLT_MAX), 0x7f80); /* rounds past the largest bf16 */
    uint16_t n = semd_f32_to_bf16(bits_f32(0x7f800001)); /* would become inf if truncated */
    ASSERT((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    ASSERT(isnan(semd_bf16_to_f32(semd_f32_to_bf16(-NAN))));
    ASSERT(semd_bf16_to_f32(0x4049) == 3.140625f);
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = semd_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) ASSERT_EQ(semd_f32_to_bf16(f), h);
    }
}

/* ---- malformed files: the file itself ---- */

TEST(missing_file)
{
    expect_open_fails(tmp_path("absent.safetensors"), "absent.safetensors", SEMD_EIO, "No such file");
}

TEST(directory_is_not_a_model)
{
    expect_open_fails(semd_test_tmpdir(), semd_test_tmpdir(), SEMD_EIO, "not a regular file");
}

TEST(empty_file)
{
    expect_open_fails(write_bytes("empty0.safetensors", "", 0), "empty0.safetensors", SEMD_EFORMAT, "empty");
}

TEST(file_shorter_than_8_bytes)
{
    expect_open_fails(write_bytes("short.safetensors", "\x02\0\0\0\0", 5), "short.safetensors", SEMD_EFORMAT,
                      "5 bytes");
}

TEST(header_length_zero)
{
    uint8_t b[16] = {0};
    expect_open_fails(write_bytes("zero.safetensors", b, sizeof b), "zero.safetensors", SEMD_EFORMAT,
                      "header length is 0");
}

TEST(header_length_past_end_of_file)
{
    uint8_t b[8 + 20];
    put_le64(b, 100);
    memset(b + 8, ' ', 20);
    b[8] = '{';
    expect_open_fails(write_bytes("past.safetensors", b, sizeof b), "past.safetensors", SEMD_EFORMAT,
                      "header length 100 exceeds the 20 bytes");
}

/* Absurd lengths are refused from the 8 bytes alone, before any allocation. */
TEST(header_length_huge)
{
    const uint64_t lens[] = {1ull << 63, 200ull << 20, UINT64_MAX, SEMD_ST_MAX_HEADER + 1ull};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t b[8 + 8] = "........{}      ";
        put_le64(b, lens[i]);
        char word[64];
        snprintf(word, sizeof word, "header length %llu exceeds", (unsigned long long)lens[i]);
        expect_open_fails(write_bytes("huge.safetensors", b, sizeof b), "huge.safetensors", SEMD_EFORMAT, word);
        ASSERT_CONTAINS(semd_last_error(), "limit");
    }
}

TEST(truncated_copy_rejected)
{
    semd_st_writer *w = semd_st_writer_new();
    float v[256] = {0};
    int64_t shape[2] = {16, 16};
    ASSERT_OK(semd_st_writer_add(w, "w", SEMD_ST_F32, 2, shape, v));
    const char *path = tmp_path("full.safetensors");
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    size_t n;
    uint8_t *raw = read_bytes(path, &n);
    expect_open_fails(write_bytes("cut.safetensors", raw, n - 100), "cut.safetensors", SEMD_EFORMAT,
                      "truncated");
    ASSERT_CONTAINS(semd_last_error(), "'w'");
    expect_open_fails(write_bytes("cut2.safetensors", raw, 30), "cut2.safetensors", SEMD_EFORMAT, "exceeds");
    free(raw);
}

/* ---- malformed files: the JSON ---- */

TEST(header_not_json)
{
    expect_header_fails("text.safetensors", "hello, world", 0, SEMD_EFORMAT, "not a JSON object");
    expect_header_fails("brace.safetensors", "{hello}", 0, SEMD_EFORMAT, "not valid JSON");
}

TEST(header_truncated_json)
{
    expect_header_fails("trunc.safetensors", "{'a':{'dtype':'F32','shape':[1],'data_off", 4, SEMD_EFORMAT,
                        "not valid JSON");
}

TEST(header_json_array)
{
    expect_header_fails("array.safetensors", "[{'dtype':'F32'}]", 0, SEMD_EFORMAT, "not a JSON object");
}

TEST(header_trailing_garbage)
{
    expect_header_fails("trail.safetensors", "{}   x", 0, SEMD_EFORMAT, "trailing garbage");
    expect_header_fails("trail2.safetensors", "{}{}", 0, SEMD_EFORMAT, "trailing garbage");
    const uint8_t nul[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0}; /* NULs inside the header */
    expect_open_fails(write_bytes("trail3.safetensors", nul, sizeof nul), "trail3.safetensors", SEMD_EFORMAT,
                      "trailing garbage");
}

/* ---- malformed files: tensor entries ---- */

TEST(missing_fields)
{
    expect_header_fails("nodtype.safetensors", "{'a':{'shape':[1],'data_offsets':[0,4]}}", 4, SEMD_EFORMAT,
                        "'a' has no dtype");
    expect_header_fails("noshape.safetensors", "{'a':{'dtype':'F32','data_offsets':[0,4]}}", 4, SEMD_EFORMAT,
                        "'a' has no shape");
    expect_header_fails("nooffs.safetensors", "{'a':{'dtype':'F32','shape':[1]}}", 4, SEMD_EFORMAT,
                        "'a' has no data_offsets");
    expect_header_fails("notobj.safetensors", "{'a':[1,2]}", 4, SEMD_EFORMAT, "'a' entry is not an object");
    expect_header_fails("dtnum.safetensors", "{'a':{'dtype':4,'shape':[1],'data_offsets':[0,4]}}", 4,
                        SEMD_EFORMAT, "dtype is not a string");
}

TEST(unknown_dtype)
{
    expect_header_fails("q4.safetensors", "{'a':{'dtype':'Q4','shape':[1],'data_offsets':[0,1]}}", 4,
                        SEMD_EFORMAT, "'a' has unknown dtype 'Q4'");
    expect_header_fails("lower.safetensors", "{'a':{'dtype':'f32','shape':[1],'data_offsets':[0,4]}}", 4,
                        SEMD_EFORMAT, "unknown dtype 'f32'");
    expect_header_fails("fp8.safetensors", "{'a':{'dtype':'F8_E4M3','shape':[1],'data_offsets':[0,1]}}", 4,
                        SEMD_EUNSUPPORTED, "'a' has dtype F8_E4M3");
    expect_header_fails("u16.safetensors", "{'a':{'dtype':'U16','shape':[1],'data_offsets':[0,2]}}", 4,
                        SEMD_EUNSUPPORTED, "U16");
}

TEST(bad_shape_values)
{
    expect_header_fails("negshape.safetensors", "{'a':{'dtype':'U8','shape':[-1],'data_offsets':[0,0]}}", 4,
                        SEMD_EFORMAT, "shape entry 0 is not a non-negative integer");
    expect_header_fails("fracshape.safetensors", "{'a':{'dtype':'U8','shape':[2,1.5],'data_offsets':[0,3]}}",
                        4, SEMD_EFORMAT, "shape entry 1");
    expect_header_fails("strshape.safetensors", "{'a':{'dtype':'U8','shape':['2'],'data_offsets':[0,2]}}", 4,
                        SEMD_EFORMAT, "shape entry 0");
    expect_header_fails("bigshape.safetensors",
                        "{'a':{'dtype':'U8','shape':[18014398509481984],'data_offsets':[0,2]}}", 4, SEMD_EFORMAT,
                        "shape entry 0");
    expect_header_fails("objshape.safetensors", "{'a':{'dtype':'U8','shape':{},'data_offsets':[0,2]}}", 4,
                        SEMD_EFORMAT, "shape is not an array");
}

TEST(too_many_dims)
{
    expect_header_fails("dims.safetensors",
                        "{'a':{'dtype':'U8','shape':[1,1,1,1,1,1,1,1,1],'data_offsets':[0,1]}}", 4, SEMD_EFORMAT,
                        "9 dims");
}

TEST(shape_product_overflow)
{
    expect_header_fails("ovf.safetensors",
                        "{'a':{'dtype':'F32','shape':[4503599627370496,4503599627370496],'data_offsets':[0,4]}}",
                        4, SEMD_EFORMAT, "overflows");
    expect_header_fails("ovf2.safetensors",
                        "{'a':{'dtype':'F64','shape':[4294967296,1048576,1024],'data_offsets':[0,4]}}", 4,
                        SEMD_EFORMAT, "overflows");
    /* a zero dimension makes the product 0, however large the others */
    semd_st_file *f = open_ok(write_st(
        "zero_dim.safetensors",
        "{'a':{'dtype':'F32','shape':[4503599627370496,4503599627370496,0],'data_offsets':[0,0]}}", NULL, 0));
    ASSERT_EQ(semd_st_at(f, 0)->numel, 0);
    semd_st_close(f);
}

TEST(data_offsets_out_of_range)
{
    expect_header_fails("range.safetensors", "{'a':{'dtype':'F32','shape':[100],'data_offsets':[0,400]}}", 16,
                        SEMD_EFORMAT, "past the data area of 16 bytes");
    expect_header_fails("range2.safetensors", "{'a':{'dtype':'U8','shape':[0],'data_offsets':[17,17]}}", 16,
                        SEMD_EFORMAT, "past the data area");
    expect_header_fails("range3.safetensors",
                        "{'a':{'dtype':'U8','shape':[1],'data_offsets':[0,18446744073709551615]}}", 16,
                        SEMD_EFORMAT, "data_offsets entry 1");
}

TEST(data_offsets_malformed)
{
    expect_header_fails("three.safetensors", "{'a':{'dtype':'U8','shape':[1],'data_offsets':[0,1,2]}}", 4,
                        SEMD_EFORMAT, "array of 2 integers");
    expect_header_fails("negoff.safetensors", "{'a':{'dtype':'U8','shape':[1],'data_offsets':[-1,0]}}", 4,
                        SEMD_EFORMAT, "data_offsets entry 0 is not a non-negative integer");
    expect_header_fails("fracoff.safetensors", "{'a':{'dtype':'U8','shape':[1],'data_offsets':[0,0.5]}}", 4,
                        SEMD_EFORMAT, "data_offsets entry 1");
}

TEST(begin_after_end)
{
    expect_header_fails("rev.safetensors", "{'a':{'dtype':'F32','shape':[1],'data_offsets':[8,4]}}", 16,
                        SEMD_EFORMAT, "[8, 4] begin is past end");
}

TEST(wrong_byte_size)
{
    expect_header_fails("size.safetensors", "{'a.weight':{'dtype':'F32','shape':[2,2],'data_offsets':[0,12]}}",
                        16, SEMD_EFORMAT, "'a.weight' data_offsets [0, 12] give 12 bytes but F32 [2,2] needs 16");
    expect_header_fails("size2.safetensors", "{'s':{'dtype':'BF16','shape':[],'data_offsets':[0,0]}}", 16,
                        SEMD_EFORMAT, "BF16 [] needs 2");
}

TEST(overlapping_tensors)
{
    expect_header_fails("overlap.safetensors",
                        "{'first':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                        "'second':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}",
                        16, SEMD_EFORMAT, "'first' [0, 8] and 'second' [4, 12] overlap");
    expect_header_fails("alias.safetensors",
                        "{'x':{'dtype':'U8','shape':[4],'data_offsets':[0,4]},"
                        "'y':{'dtype':'I32','shape':[1],'data_offsets':[0,4]}}",
                        16, SEMD_EFORMAT, "overlap");
}

TEST(duplicate_names)
{
    expect_header_fails("dup.safetensors",
                        "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                        "'w':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}",
                        16, SEMD_EFORMAT, "duplicate tensor name 'w'");
    expect_header_fails("dupmeta.safetensors", "{'__metadata__':{},'__metadata__':{}}", 0, SEMD_EFORMAT,
                        "more than one __metadata__");
}

TEST(metadata_must_be_strings)
{
    expect_header_fails("metanum.safetensors", "{'__metadata__':{'ok':'1','epoch':3}}", 0, SEMD_EFORMAT,
                        "value for key 'epoch' is not a string");
    expect_header_fails("metaarr.safetensors", "{'__metadata__':['a']}", 0, SEMD_EFORMAT,
                        "__metadata__ is not an object");
}

static const struct semd_test tests[] = {
    TEST_ENTRY(roundtrip_every_dtype),
    TEST_ENTRY(writer_layout_is_aligned_and_contiguous),
    TEST_ENTRY(read_f32_converts_every_dtype),
    TEST_ENTRY(read_i64_integers_only),
    TEST_ENTRY(writer_empty_and_metadata_replace),
    TEST_ENTRY(writer_escapes_names),
    TEST_ENTRY(writer_overwrites_and_leaves_no_temp_files),
    TEST_ENTRY(writer_rejects_bad_tensors),
    TEST_ENTRY(writer_save_reports_io_errors),
    TEST_ENTRY(many_tensors_found_by_name),
    TEST_ENTRY(unaligned_data),
    TEST_ENTRY(order_holes_and_empty_tensors),
    TEST_ENTRY(header_padding_and_null_metadata_accepted),
    TEST_ENTRY(f16_special_values),
    TEST_ENTRY(f16_exhaustive_roundtrip),
    TEST_ENTRY(f16_rounding_is_nearest_even),
    TEST_ENTRY(bf16_rounding),
    TEST_ENTRY(missing_file),
    TEST_ENTRY(directory_is_not_a_model),
    TEST_ENTRY(empty_file),
    TEST_ENTRY(file_shorter_than_8_bytes),
    TEST_ENTRY(header_length_zero),
    TEST_ENTRY(header_length_past_end_of_file),
    TEST_ENTRY(header_length_huge),
    TEST_ENTRY(truncated_copy_rejected),
    TEST_ENTRY(header_not_json),
    TEST_ENTRY(header_truncated_json),
    TEST_ENTRY(header_json_array),
    TEST_ENTRY(header_trailing_garbage),
    TEST_ENTRY(missing_fields),
    TEST_ENTRY(unknown_dtype),
    TEST_ENTRY(bad_shape_values),
    TEST_ENTRY(too_many_dims),
    TEST_ENTRY(shape_product_overflow),
    TEST_ENTRY(data_offsets_out_of_range),
    TEST_ENTRY(data_offsets_malformed),
    TEST_ENTRY(begin_after_end),
    TEST_ENTRY(wrong_byte_size),
    TEST_ENTRY(overlapping_tensors),
    TEST_ENTRY(duplicate_names),
    TEST_ENTRY(metadata_must_be_strings),
    {0},
};

SEMD_TEST_MAIN(tests)
