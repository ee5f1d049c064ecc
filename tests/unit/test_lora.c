/*
 * LoRA tests: every format merged into the tiny SD1.5 pipeline's weights and
 * compared with what diffusers itself fused (tests/data/lora, made by
 * tools/reference/gen_lora_goldens.py), stacking, the Linear / 1x1 conv
 * reshapes, adapter metadata layouts, and every refusal (unused keys, broken
 * pairs, ranks, shapes, non-safetensors files, non-scalar alphas, unknown
 * formats).
 */
#include "harness.h"

#include <stdbool.h>
#include <stdint.h>

#include "semd/lora.h"
#include "semd/name_map.h"
#include "semd/safetensors.h"
#include "semd/status.h"

/* Exact math in fp32 on both sides: only summation order differs. */
#define TOL 1e-5
#define MAX_LORAS 2

static const char *lora_data(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "lora/%s", name);
    return semd_test_path(semd_test_data_dir(), rel);
}

static const char *tmp_path(const char *name) { return semd_test_path(semd_test_tmpdir(), name); }

static semd_lora *open_lora(const char *path, float mult)
{
    semd_lora *l;
    ASSERT_OK(semd_lora_open(path, mult, &l));
    return l;
}

static float *read_tensor(const semd_st_tensor *t)
{
    float *v = malloc(t->numel * sizeof *v + sizeof *v);
    ASSERT(v);
    ASSERT_OK(semd_st_read_f32(t, v));
    return v;
}

/* ---- merging the tiny model's weights against the goldens ---------------- */

typedef struct golden_run {
    const semd_st_file *golden;
    semd_lora *loras[MAX_LORAS];
    int n_loras;
    semd_name_layout layout;
    int compared;
    double worst;
} golden_run;

/* Merge every LoRA into one base tensor; compare with the golden if it has it,
 * otherwise no LoRA may have touched it. */
static void merge_one(golden_run *run, semd_module module, const semd_st_tensor *t)
{
    char key[512];
    snprintf(key, sizeof key, "%s.%s", semd_module_name(module), t->name);
    float *w = read_tensor(t);
    int applied = 0;
    for (int i = 0; i < run->n_loras; i++) {
        int rc =
            semd_lora_apply(run->loras[i], module, t->name, &run->layout, w, t->ndim, t->shape);
        if (rc < 0) FAIL("apply %s: %d: %s", key, rc, semd_last_error());
        applied += rc;
    }
    const semd_st_tensor *g = semd_st_find(run->golden, key);
    if (!g) {
        if (applied) FAIL("%s: a LoRA changed a tensor the golden does not list", key);
    } else {
        if (!applied) FAIL("%s: no LoRA applied to a golden tensor", key);
        ASSERT_EQ(g->numel, t->numel);
        float *want = read_tensor(g);
        double err = semd_rel_l2(w, want, t->numel);
        if (!(err <= TOL)) FAIL("%s: relative L2 error %.3g > %g", key, err, TOL);
        if (err > run->worst) run->worst = err;
        run->compared++;
        free(want);
    }
    free(w);
}

static void merge_module(golden_run *run, semd_module module, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "models/tiny-sd15/%s", rel);
    semd_st_file *base;
    ASSERT_OK(semd_st_open(semd_test_path(semd_test_data_dir(), path), &base));
    for (size_t i = 0; i < semd_st_count(base); i++) merge_one(run, module, semd_st_at(base, i));
    semd_st_close(base);
}

/* Merge `files` (at `mults`) into the UNet and text encoder; every golden
 * tensor must match and every LoRA entry must have been used. */
static void check_golden(const char *golden, const char *const *files, const float *mults, int n)
{
    golden_run run = {.n_loras = n};
    semd_st_file *g;
    ASSERT_OK(semd_st_open(lora_data(golden), &g));
    run.golden = g;
    semd_name_layout_sd15(&run.layout);
    for (int i = 0; i < n; i++) run.loras[i] = open_lora(lora_data(files[i]), mults[i]);
    merge_module(&run, SEMD_MODULE_UNET, "unet/diffusion_pytorch_model.safetensors");
    merge_module(&run, SEMD_MODULE_TEXT, "text_encoder/model.safetensors");
    ASSERT_EQ(run.compared, semd_st_count(g));
    for (int i = 0; i < n; i++) {
        ASSERT_OK(semd_lora_check_all_used(run.loras[i], NULL, 0));
        semd_lora_free(run.loras[i]);
    }
    printf("%s: %d tensors, worst relative L2 %.3g\n", golden, run.compared, run.worst);
    semd_st_close(g);
}

static void check_one(const char *golden, const char *file)
{
    const float mult = 0.7f;
    check_golden(golden, &file, &mult, 1);
}

TEST(kohya_diffusers_paths)
{
    check_one("golden_kohya.safetensors", "kohya_diffusers.safetensors");
}
TEST(kohya_ldm_paths) { check_one("golden_kohya.safetensors", "kohya_ldm.safetensors"); }
TEST(peft_f16_no_alpha) { check_one("golden_peft.safetensors", "peft.safetensors"); }
TEST(peft_adapter_metadata) { check_one("golden_peft_meta.safetensors", "peft_meta.safetensors"); }
TEST(old_attn_processor) { check_one("golden_attnproc.safetensors", "attnproc.safetensors"); }

TEST(two_loras_stack)
{
    const char *files[] = {"kohya_diffusers.safetensors", "peft.safetensors"};
    const float mults[] = {0.7f, -0.3f};
    check_golden("golden_stack.safetensors", files, mults, 2);
}

/* ---- hand-made LoRA files ------------------------------------------------ */

typedef struct factor {
    const char *name;
    semd_st_dtype dtype;
    int ndim;
    int64_t shape[4];
    const float *data; /* NULL: a seeded pattern */
} factor;

static float pattern_value(size_t i, size_t salt)
{
    return (float)((int)((i * 7919 + salt * 104729) % 201) - 100) / 256.0f;
}

/* Write F32 tensors (F16 data converted) to a temporary file. */
static const char *write_lora(const char *file, const factor *fs, int n, const char *meta_json)
{
    semd_st_writer *w = semd_st_writer_new();
    ASSERT(w);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < fs[i].ndim; d++) numel *= (size_t)fs[i].shape[d];
        float *v = malloc(numel * sizeof *v + sizeof *v);
        for (size_t k = 0; k < numel; k++)
            v[k] = fs[i].data ? fs[i].data[k] : pattern_value(k, (size_t)i);
        if (fs[i].dtype == SEMD_ST_F32) {
            ASSERT_OK(semd_st_writer_add(w, fs[i].name, SEMD_ST_F32, fs[i].ndim, fs[i].shape, v));
        } else {
            int64_t *iv = malloc(numel * sizeof *iv + sizeof *iv);
            for (size_t k = 0; k < numel; k++) iv[k] = (int64_t)k;
            ASSERT_OK(semd_st_writer_add(w, fs[i].name, fs[i].dtype, fs[i].ndim, fs[i].shape, iv));
            free(iv);
        }
        free(v);
    }
    if (meta_json) ASSERT_OK(semd_st_writer_metadata(w, "lora_adapter_metadata", meta_json));
    const char *path = tmp_path(file);
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
    return path;
}

static void expect_open_fails(const char *path, int status, const char *needle)
{
    semd_lora *l = (semd_lora *)1;
    semd_clear_error();
    int rc = semd_lora_open(path, 1.0f, &l);
    if (rc != status) FAIL("open %s: %d, expected %d (%s)", path, rc, status, semd_last_error());
    ASSERT(l == NULL);
    ASSERT_CONTAINS(semd_last_error(), needle);
    ASSERT_CONTAINS(semd_last_error(), path);
}

#define Q "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
#define Q_NAME "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
#define KQ "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"

/* The delta a LoRA adds to a zero [out, cols] weight. */
static float *delta_of(semd_lora *l, semd_module m, const char *name, int ndim,
                       const int64_t *shape)
{
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    float *w = calloc(numel + 1, sizeof *w);
    int rc = semd_lora_apply(l, m, name, NULL, w, ndim, shape);
    if (rc != 1) FAIL("apply %s: %d: %s", name, rc, semd_last_error());
    return w;
}

/* scale * U @ D in double, for the hand-made factors. */
static void expect_delta(const float *got, const float *up, const float *down, int64_t out,
                         int64_t rank, int64_t cols, double scale)
{
    float *want = malloc((size_t)(out * cols) * sizeof *want);
    for (int64_t o = 0; o < out; o++)
        for (int64_t c = 0; c < cols; c++) {
            double acc = 0;
            for (int64_t a = 0; a < rank; a++) acc += (double)up[o * rank + a] * down[a * cols + c];
            want[o * cols + c] = (float)(scale * acc);
        }
    ASSERT_REL_L2(got, want, (size_t)(out * cols), TOL);
    free(want);
}

static float *pattern(size_t n, size_t salt)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = pattern_value(i, salt);
    return v;
}

/* The delta of a rank-2 [32, 32] PEFT LoRA on attn1.to_q must be
 * mult * alpha / 2 * U @ D with alpha taken from `meta` (NULL: none). */
static void check_peft_scale(const char *meta, double alpha)
{
    float *down = pattern(2 * 32, 1), *up = pattern(32 * 2, 2);
    factor fs[] = {{Q ".lora_A.weight", SEMD_ST_F32, 2, {2, 32}, down},
                   {Q ".lora_B.weight", SEMD_ST_F32, 2, {32, 2}, up}};
    semd_lora *l = open_lora(write_lora("meta.safetensors", fs, 2, meta), 0.5f);
    const int64_t shape[] = {32, 32};
    float *d = delta_of(l, SEMD_MODULE_UNET, Q_NAME, 2, shape);
    expect_delta(d, up, down, 32, 2, 32, 0.5 * alpha / 2);
    free(d);
    free(down);
    free(up);
    semd_lora_free(l);
}

TEST(peft_metadata_layouts)
{
    check_peft_scale(NULL, 2.0); /* no metadata: alpha = rank */
    check_peft_scale("{\"unet.lora_alpha\": 8, \"unet.r\": 2, \"text_encoder.lora_alpha\": 3}",
                     8.0);
    check_peft_scale("{\"unet\": {\"lora_alpha\": 6, \"r\": 2}}", 6.0);
    check_peft_scale("{\"lora_alpha\": 5, \"r\": 2}", 5.0);
    check_peft_scale("{\"text_encoder.lora_alpha\": 5}", 2.0); /* other component only */
    check_peft_scale(
        "{\"unet.lora_alpha\": 8, \"unet.r\": 4, \"unet.rank_pattern\": {\"attn1.to_q\": 2},"
        " \"unet.alpha_pattern\": {\"transformer_blocks.0.attn1.to_q\": 3}}",
        3.0);
    /* a pattern matches whole name segments only */
    check_peft_scale("{\"unet.lora_alpha\": 8, \"unet.alpha_pattern\": {\"n1.to_q\": 3}}", 8.0);
}

TEST(peft_metadata_errors)
{
    float *down = pattern(2 * 32, 1), *up = pattern(32 * 2, 2);
    factor fs[] = {{Q ".lora_A.weight", SEMD_ST_F32, 2, {2, 32}, down},
                   {Q ".lora_B.weight", SEMD_ST_F32, 2, {32, 2}, up}};
    expect_open_fails(write_lora("m1.safetensors", fs, 2, "{not json"), SEMD_EFORMAT,
                      "lora_adapter_metadata");
    expect_open_fails(write_lora("m2.safetensors", fs, 2, "{\"unet.r\": 4}"), SEMD_EFORMAT,
                      "says 4");
    expect_open_fails(
        write_lora("m3.safetensors", fs, 2, "{\"unet.alpha_pattern\": {\"^.*to_q$\": 2}}"),
        SEMD_EUNSUPPORTED, "regular");
    expect_open_fails(write_lora("m4.safetensors", fs, 2, "{\"unet.use_dora\": true}"),
                      SEMD_EUNSUPPORTED, "use_dora");
    expect_open_fails(write_lora("m5.safetensors", fs, 2, "{\"unet.lora_alpha\": \"8\"}"),
                      SEMD_EFORMAT, "lora_alpha");
    free(down);
    free(up);
}

/* Factors of kohya_diffusers.safetensors' entry `key`, reshaped to 2-D or 4-D. */
static void reshaped_lora(const char *file, const char *key, int ndim)
{
    semd_st_file *src;
    ASSERT_OK(semd_st_open(lora_data("kohya_diffusers.safetensors"), &src));
    char names[3][256];
    const char *suffixes[] = {".lora_down.weight", ".lora_up.weight", ".alpha"};
    factor fs[3];
    float *data[3];
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", key, suffixes[i]);
        const semd_st_tensor *t = semd_st_find(src, names[i]);
        ASSERT(t);
        data[i] = read_tensor(t);
        fs[i] = (factor){.name = names[i],
                         .dtype = SEMD_ST_F32,
                         .ndim = i < 2 ? ndim : 0,
                         .shape = {t->shape[0], i < 2 ? t->shape[1] : 0, 1, 1},
                         .data = data[i]};
    }
    write_lora(file, fs, 3, NULL);
    for (int i = 0; i < 3; i++) free(data[i]);
    semd_st_close(src);
}

/* Merge one tensor of the tiny UNet with `file` at 0.7; compare with golden_kohya. */
static void expect_kohya_golden(const char *file, const char *name)
{
    semd_st_file *base, *golden;
    ASSERT_OK(
        semd_st_open(semd_test_path(semd_test_data_dir(),
                                    "models/tiny-sd15/unet/diffusion_pytorch_model.safetensors"),
                     &base));
    ASSERT_OK(semd_st_open(lora_data("golden_kohya.safetensors"), &golden));
    const semd_st_tensor *t = semd_st_find(base, name);
    char key[256];
    snprintf(key, sizeof key, "unet.%s", name);
    const semd_st_tensor *g = semd_st_find(golden, key);
    ASSERT(t && g);
    float *w = read_tensor(t), *want = read_tensor(g);
    semd_lora *l = open_lora(tmp_path(file), 0.7f);
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, name, NULL, w, t->ndim, t->shape), 1);
    ASSERT_REL_L2(w, want, t->numel, TOL);
    ASSERT_OK(semd_lora_check_all_used(l, NULL, 0));
    semd_lora_free(l);
    free(w);
    free(want);
    semd_st_close(base);
    semd_st_close(golden);
}

TEST(linear_and_conv1x1_take_each_others_factors)
{
    /* proj_in is a [32, 32, 1, 1] convolution: 2-D factors fit it */
    reshaped_lora("proj_in_2d.safetensors", "lora_unet_down_blocks_0_attentions_0_proj_in", 2);
    expect_kohya_golden("proj_in_2d.safetensors", "down_blocks.0.attentions.0.proj_in.weight");
    /* to_q is a [32, 32] Linear: [r, in, 1, 1] / [out, r, 1, 1] factors fit it */
    reshaped_lora("to_q_4d.safetensors", KQ, 4);
    expect_kohya_golden("to_q_4d.safetensors", Q_NAME);
}

/* ---- refusals ------------------------------------------------------------ */

TEST(unused_entries_are_named)
{
    factor fs[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {2, 32}, NULL},
                   {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 2}, NULL},
                   {"lora_unet_down_blocks_0_attentions_0_proj_inn.lora_down.weight",
                    SEMD_ST_F32,
                    4,
                    {2, 32, 1, 1},
                    NULL},
                   {"lora_unet_down_blocks_0_attentions_0_proj_inn.lora_up.weight",
                    SEMD_ST_F32,
                    4,
                    {32, 2, 1, 1},
                    NULL},
                   {"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                    SEMD_ST_F32,
                    2,
                    {2, 32},
                    NULL},
                   {"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
                    SEMD_ST_F32,
                    2,
                    {37, 2},
                    NULL}};
    semd_lora *l = open_lora(write_lora("typo.safetensors", fs, 6, NULL), 1.0f);
    ASSERT_EQ(semd_lora_count(l), 3);
    const int64_t shape[] = {32, 32};
    free(delta_of(l, SEMD_MODULE_UNET, Q_NAME, 2, shape));
    ASSERT_EQ(semd_lora_check_all_used(l, NULL, 0), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "2 LoRA entries");
    ASSERT_CONTAINS(semd_last_error(),
                    "lora_unet_down_blocks_0_attentions_0_proj_inn.lora_down.weight");
    ASSERT_CONTAINS(semd_last_error(), "lora_te_text_model_encoder_layers_0_mlp_fc1");
    ASSERT_CONTAINS(semd_last_error(), "typo.safetensors");
    /* only the modules that were loaded are checked */
    const semd_module text = SEMD_MODULE_TEXT, unet = SEMD_MODULE_UNET;
    ASSERT_EQ(semd_lora_check_all_used(l, &text, 1), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "1 LoRA entry ");
    ASSERT_EQ(semd_lora_check_all_used(l, &unet, 1), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "proj_inn");
    semd_lora_free(l);
}

TEST(pairs_must_be_complete)
{
    factor no_up[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {2, 32}, NULL},
                      {KQ ".alpha", SEMD_ST_F32, 0, {0}, NULL}};
    expect_open_fails(write_lora("no_up.safetensors", no_up, 2, NULL), SEMD_EFORMAT,
                      "no up weight");
    ASSERT_CONTAINS(semd_last_error(), KQ);
    factor no_down[] = {{Q ".lora_B.weight", SEMD_ST_F32, 2, {32, 2}, NULL}};
    expect_open_fails(write_lora("no_down.safetensors", no_down, 1, NULL), SEMD_EFORMAT,
                      "no down weight");
    ASSERT_CONTAINS(semd_last_error(), Q ".lora_B.weight");
    factor alpha_only[] = {{KQ ".alpha", SEMD_ST_F32, 0, {0}, NULL}};
    expect_open_fails(write_lora("alpha_only.safetensors", alpha_only, 1, NULL), SEMD_EFORMAT,
                      "no down weight");
}

TEST(ranks_must_agree)
{
    factor fs[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {4, 32}, NULL},
                   {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 3}, NULL}};
    expect_open_fails(write_lora("rank.safetensors", fs, 2, NULL), SEMD_ESHAPE, "rank mismatch");
    ASSERT_CONTAINS(semd_last_error(), KQ ".lora_down.weight");
    ASSERT_CONTAINS(semd_last_error(), KQ ".lora_up.weight");
}

TEST(factor_shapes_and_dtypes)
{
    factor three_d[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 3, {4, 32, 1}, NULL},
                        {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 4}, NULL}};
    expect_open_fails(write_lora("3d.safetensors", three_d, 2, NULL), SEMD_ESHAPE,
                      "not 2-D or 4-D");
    factor ints[] = {{KQ ".lora_down.weight", SEMD_ST_I64, 2, {4, 32}, NULL},
                     {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 4}, NULL}};
    expect_open_fails(write_lora("int.safetensors", ints, 2, NULL), SEMD_ESHAPE, "I64");
    factor mid[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 4, {4, 32, 1, 1}, NULL},
                    {KQ ".lora_up.weight", SEMD_ST_F32, 4, {32, 4, 3, 3}, NULL}};
    expect_open_fails(write_lora("upkernel.safetensors", mid, 2, NULL), SEMD_EUNSUPPORTED,
                      "up weight");
}

TEST(alpha_must_be_a_scalar)
{
    factor fs[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {4, 32}, NULL},
                   {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 4}, NULL},
                   {KQ ".alpha", SEMD_ST_F32, 1, {2}, NULL}};
    expect_open_fails(write_lora("alpha2.safetensors", fs, 3, NULL), SEMD_ESHAPE, "not a scalar");
    ASSERT_CONTAINS(semd_last_error(), KQ ".alpha");
    /* one element, 0-d or [1], is a scalar */
    const float eight = 8.0f;
    fs[2] = (factor){KQ ".alpha", SEMD_ST_F32, 1, {1}, &eight};
    semd_lora *l = open_lora(write_lora("alpha1.safetensors", fs, 3, NULL), 1.0f);
    const int64_t shape[] = {32, 32};
    float *d = delta_of(l, SEMD_MODULE_UNET, Q_NAME, 2, shape);
    float *down = pattern(4 * 32, 0), *up = pattern(32 * 4, 1);
    expect_delta(d, up, down, 32, 4, 32, 8.0 / 4);
    free(d);
    free(down);
    free(up);
    semd_lora_free(l);
}

TEST(delta_must_fit_the_weight)
{
    factor fs[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {4, 32}, NULL},
                   {KQ ".lora_up.weight", SEMD_ST_F32, 2, {64, 4}, NULL},
                   {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                    SEMD_ST_F32,
                    4,
                    {4, 32, 3, 3},
                    NULL},
                   {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
                    SEMD_ST_F32,
                    4,
                    {32, 4, 1, 1},
                    NULL}};
    semd_lora *l = open_lora(write_lora("fit.safetensors", fs, 4, NULL), 1.0f);
    float w[32 * 32] = {0};
    const int64_t lin[] = {32, 32}, conv[] = {32, 32, 1, 1};
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, Q_NAME, NULL, w, 2, lin), SEMD_ESHAPE);
    ASSERT_CONTAINS(semd_last_error(), KQ ".lora_down.weight");
    ASSERT_CONTAINS(semd_last_error(), "[64, 32]");
    ASSERT_CONTAINS(semd_last_error(), "[32, 32]");
    ASSERT_CONTAINS(semd_last_error(), "fit.safetensors");
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, "down_blocks.0.attentions.0.proj_in.weight",
                              NULL, w, 4, conv),
              SEMD_ESHAPE);
    ASSERT_CONTAINS(semd_last_error(), "[32, 32, 3, 3]");
    ASSERT_CONTAINS(semd_last_error(), "[32, 32, 1, 1]");
    for (int i = 0; i < 32 * 32; i++) ASSERT(w[i] == 0.0f); /* nothing half-applied */
    semd_lora_free(l);
}

TEST(not_a_safetensors_file)
{
    const char *path = tmp_path("lora.txt");
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs("this is not a safetensors file, just some words", f);
    fclose(f);
    semd_lora *l;
    ASSERT_EQ(semd_lora_open(path, 1.0f, &l), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), path);
    ASSERT_EQ(semd_lora_open(tmp_path("missing.safetensors"), 1.0f, &l), SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), "missing.safetensors");
    expect_open_fails(write_lora("empty.safetensors", NULL, 0, NULL), SEMD_EFORMAT, "no tensors");
    ASSERT_EQ(semd_lora_open(path, NAN, &l), SEMD_EINVAL);
}

TEST(unknown_formats_are_refused)
{
    factor loha[] = {
        {"lora_unet_down_blocks_0_resnets_0_conv1.hada_w1_a", SEMD_ST_F32, 2, {32, 4}, NULL}};
    expect_open_fails(write_lora("loha.safetensors", loha, 1, NULL), SEMD_EUNSUPPORTED,
                      "hada_w1_a");
    factor te1[] = {{"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                     SEMD_ST_F32,
                     2,
                     {4, 32},
                     NULL}};
    expect_open_fails(write_lora("te1.safetensors", te1, 1, NULL), SEMD_EUNSUPPORTED, "lora_te1_");
    factor dora[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {4, 32}, NULL},
                     {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 4}, NULL},
                     {KQ ".dora_scale", SEMD_ST_F32, 2, {1, 32}, NULL}};
    expect_open_fails(write_lora("dora.safetensors", dora, 3, NULL), SEMD_EUNSUPPORTED,
                      "dora_scale");
    /* the old processor format and PEFT naming one layer twice */
    factor twice[] = {{Q ".lora_A.weight", SEMD_ST_F32, 2, {4, 32}, NULL},
                      {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_"
                       "lora.down.weight",
                       SEMD_ST_F32,
                       2,
                       {4, 32},
                       NULL}};
    expect_open_fails(write_lora("twice.safetensors", twice, 2, NULL), SEMD_EFORMAT, "two formats");
}

TEST(two_spellings_of_one_target)
{
    const char *ldm = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q";
    char down[128], up[128];
    snprintf(down, sizeof down, "%s.lora_down.weight", ldm);
    snprintf(up, sizeof up, "%s.lora_up.weight", ldm);
    factor fs[] = {{KQ ".lora_down.weight", SEMD_ST_F32, 2, {4, 32}, NULL},
                   {KQ ".lora_up.weight", SEMD_ST_F32, 2, {32, 4}, NULL},
                   {down, SEMD_ST_F32, 2, {4, 32}, NULL},
                   {up, SEMD_ST_F32, 2, {32, 4}, NULL}};
    semd_lora *l = open_lora(write_lora("both.safetensors", fs, 4, NULL), 1.0f);
    semd_name_layout layout;
    semd_name_layout_sd15(&layout);
    float w[32 * 32] = {0};
    const int64_t shape[] = {32, 32};
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, Q_NAME, &layout, w, 2, shape), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), ldm);
    ASSERT_CONTAINS(semd_last_error(), KQ);
    /* without a layout only the diffusers spelling is seen; the LDM one stays unused */
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, Q_NAME, NULL, w, 2, shape), 1);
    ASSERT_EQ(semd_lora_check_all_used(l, NULL, 0), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), ldm);
    semd_lora_free(l);
}

TEST(each_entry_merges_once_per_load)
{
    semd_lora *l = open_lora(lora_data("kohya_diffusers.safetensors"), 1.0f);
    ASSERT_EQ(semd_lora_count(l), 32);
    ASSERT_STREQ(semd_lora_path(l), lora_data("kohya_diffusers.safetensors"));
    ASSERT(semd_lora_multiplier(l) == 1.0f);
    float w[32 * 32] = {0};
    const int64_t shape[] = {32, 32};
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, Q_NAME, NULL, w, 2, shape), 1);
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, Q_NAME, NULL, w, 2, shape), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "already merged");
    semd_lora_reset_used(l);
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, Q_NAME, NULL, w, 2, shape), 1);
    /* biases, untargeted weights and other modules are left alone */
    const int64_t bias[] = {32};
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET,
                              "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias",
                              NULL, w, 1, bias),
              0);
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_UNET, "conv_in.weight", NULL, w, 2, shape), 0);
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_VAE, Q_NAME, NULL, w, 2, shape), 0);
    ASSERT_EQ(semd_lora_apply(l, SEMD_MODULE_TEXT, Q_NAME, NULL, w, 2, shape), 0);
    semd_lora_free(l);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(kohya_diffusers_paths),
    TEST_ENTRY(kohya_ldm_paths),
    TEST_ENTRY(peft_f16_no_alpha),
    TEST_ENTRY(peft_adapter_metadata),
    TEST_ENTRY(old_attn_processor),
    TEST_ENTRY(two_loras_stack),
    TEST_ENTRY(peft_metadata_layouts),
    TEST_ENTRY(peft_metadata_errors),
    TEST_ENTRY(linear_and_conv1x1_take_each_others_factors),
    TEST_ENTRY(unused_entries_are_named),
    TEST_ENTRY(pairs_must_be_complete),
    TEST_ENTRY(ranks_must_agree),
    TEST_ENTRY(factor_shapes_and_dtypes),
    TEST_ENTRY(alpha_must_be_a_scalar),
    TEST_ENTRY(delta_must_fit_the_weight),
    TEST_ENTRY(not_a_safetensors_file),
    TEST_ENTRY(unknown_formats_are_refused),
    TEST_ENTRY(two_spellings_of_one_target),
    TEST_ENTRY(each_entry_merges_once_per_load),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
