/*
 * The CLIP text encoder against transformers' CLIPTextModel (goldens written by
 * tools/reference/gen_models.py), from both checkpoint layouts; the SD1.5
 * name/shape table at full size; and the errors for bad models and inputs.
 */
#include <stdint.h>

#include "golden_util.h"
#include "semd/checkpoint.h"
#include "semd/clip.h"

#define TOL 1e-5

static const char *data(const char *rel) { return golden_data(rel); }

typedef struct golden {
    semd_st_file *f;
    int32_t *ids;
    int batch, len;
} golden;

static golden open_golden(const char *rel)
{
    golden g = {.f = golden_open(rel)};
    const semd_st_tensor *t = semd_st_find(g.f, "input_ids");
    ASSERT(t && t->ndim == 2);
    g.batch = (int)t->shape[0];
    g.len = (int)t->shape[1];
    int64_t *wide = malloc(t->numel * sizeof *wide);
    ASSERT_OK(semd_st_read_i64(t, wide));
    g.ids = malloc(t->numel * sizeof *g.ids);
    for (uint64_t i = 0; i < t->numel; i++) g.ids[i] = (int32_t)wide[i];
    free(wide);
    return g;
}

static void close_golden(golden *g)
{
    semd_st_close(g->f);
    free(g->ids);
}

static void expect(const golden *g, const char *name, const semd_tensor *got)
{
    golden_expect(g->f, name, got, TOL);
}

/* Encode the golden's ids with the checkpoint's text encoder; compare all outputs. */
static void check_checkpoint(const char *model, const char *config, const char *golden_rel,
                             int has_skip)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_clip *clip;
    golden g = open_golden(golden_rel);
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_checkpoint_open(model, config, &ck));
    ASSERT_OK(semd_checkpoint_clip(ck, be, &clip));
    semd_tensor *hidden, *pooled;
    ASSERT_OK(semd_clip_encode(clip, g.ids, g.batch, g.len, 0, &hidden, &pooled));
    expect(&g, "last_hidden_state", hidden);
    expect(&g, "pooler_output", pooled);
    semd_tensor_free(hidden);
    semd_tensor_free(pooled);
    if (has_skip) {
        ASSERT_OK(semd_clip_encode(clip, g.ids, g.batch, g.len, 1, &hidden, &pooled));
        expect(&g, "last_hidden_state_clip_skip_1", hidden);
        expect(&g, "pooler_output", pooled); /* pooling still reads the last layer */
        semd_tensor_free(hidden);
        semd_tensor_free(pooled);
    }
    semd_clip_free(clip);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
    close_golden(&g);
}

TEST(sd15_diffusers_folder)
{
    check_checkpoint(data("models/tiny-sd15"), NULL, "golden/clip_tiny_sd15.safetensors", 1);
}

TEST(sd15_single_file_f16)
{
    check_checkpoint(data("models/tiny-sd15.safetensors"), data("models/tiny-sd15"),
                     "golden/clip_tiny_sd15.safetensors", 1);
}

TEST(gelu_first_eos_pooling)
{
    check_checkpoint(data("models/tiny-clip-gelu"), NULL, "golden/clip_tiny_gelu_L77.safetensors", 1);
}

TEST(short_sequences)
{
    check_checkpoint(data("models/tiny-clip-gelu"), NULL, "golden/clip_tiny_gelu_L20.safetensors", 1);
}

TEST(single_file_needs_config_for_odd_width)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_clip *clip;
    ASSERT_OK(semd_backend_cpu_new(1, &be));
    ASSERT_OK(semd_checkpoint_open(data("models/tiny-sd15.safetensors"), NULL, &ck));
    ASSERT_EQ(semd_checkpoint_clip(ck, be, &clip), SEMD_EUNSUPPORTED);
    ASSERT_CONTAINS(semd_last_error(), "cannot infer the attention head count");
    ASSERT(clip == NULL);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
}

TEST(encode_rejects_bad_input)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_clip *clip;
    semd_tensor *h, *p;
    ASSERT_OK(semd_backend_cpu_new(1, &be));
    ASSERT_OK(semd_checkpoint_open(data("models/tiny-clip-gelu"), NULL, &ck));
    ASSERT_OK(semd_checkpoint_clip(ck, be, &clip));
    int32_t ids[78] = {0};
    ASSERT_EQ(semd_clip_encode(clip, ids, 1, 78, 0, &h, &p), SEMD_EINVAL);
    ASSERT_EQ(semd_clip_encode(clip, ids, 1, 10, 2, &h, &p), SEMD_EINVAL); /* 2 layers */
    ASSERT_CONTAINS(semd_last_error(), "clip_skip 2");
    ids[3] = 1000;
    ASSERT_EQ(semd_clip_encode(clip, ids, 1, 10, 0, &h, &p), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "token id 1000");
    ASSERT(h == NULL && p == NULL);
    semd_clip_free(clip);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs(text, f);
    fclose(f);
}

/* A copy of the tiny gelu encoder with one tensor renamed or reshaped. */
static const char *broken_model(const char *drop, const char *reshape)
{
    const char *root = semd_test_tmpdir();
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s/broken", root);
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s/text_encoder && cp %s %s/text_encoder/",
             dir, dir, data("models/tiny-clip-gelu/text_encoder/config.json"), dir);
    ASSERT(system(cmd) == 0);
    semd_st_file *src;
    ASSERT_OK(semd_st_open(data("models/tiny-clip-gelu/text_encoder/model.safetensors"), &src));
    semd_st_writer *w = semd_st_writer_new();
    for (size_t i = 0; i < semd_st_count(src); i++) {
        const semd_st_tensor *t = semd_st_at(src, i);
        if (drop && strcmp(t->name, drop) == 0) continue;
        int64_t shape[SEMD_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        int ndim = t->ndim;
        if (reshape && strcmp(t->name, reshape) == 0) { /* [48,48] -> [24,96] */
            shape[0] /= 2;
            shape[1] *= 2;
        }
        ASSERT_OK(semd_st_writer_add(w, t->name, t->dtype, ndim, shape, t->data));
    }
    static char out[600];
    snprintf(out, sizeof out, "%s/text_encoder/model.safetensors", dir);
    ASSERT_OK(semd_st_writer_save(w, out));
    semd_st_writer_free(w);
    semd_st_close(src);
    snprintf(out, sizeof out, "%s", dir);
    return out;
}

static int load_clip(const char *model, semd_clip **clip)
{
    semd_backend *be;
    semd_checkpoint *ck;
    ASSERT_OK(semd_backend_cpu_new(1, &be));
    int rc = semd_checkpoint_open(model, NULL, &ck);
    if (!rc) rc = semd_checkpoint_clip(ck, be, clip);
    semd_clip_free(*clip);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
    return rc;
}

TEST(missing_tensor_is_named)
{
    semd_clip *clip = NULL;
    const char *m = broken_model("text_model.encoder.layers.1.mlp.fc2.bias", NULL);
    ASSERT_EQ(load_clip(m, &clip), SEMD_ENOTFOUND);
    ASSERT_CONTAINS(semd_last_error(), "missing tensor 'text_model.encoder.layers.1.mlp.fc2.bias'");
}

TEST(misshaped_tensor_is_named)
{
    semd_clip *clip = NULL;
    const char *m = broken_model(NULL, "text_model.encoder.layers.0.self_attn.k_proj.weight");
    ASSERT_EQ(load_clip(m, &clip), SEMD_ESHAPE);
    ASSERT_CONTAINS(semd_last_error(), "k_proj.weight' has shape [24,96], expected [48,48]");
}

TEST(config_errors_name_the_field)
{
    const char *dir = semd_test_tmpdir();
    const char *path = semd_test_path(dir, "config.json");
    semd_clip_config cfg;
    write_text(path, "{\"hidden_act\": \"relu\"}");
    ASSERT_EQ(semd_clip_config_load(path, &cfg), SEMD_EUNSUPPORTED);
    ASSERT_CONTAINS(semd_last_error(), "hidden_act relu");
    write_text(path, "{\"hidden_size\": \"wide\"}");
    ASSERT_EQ(semd_clip_config_load(path, &cfg), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "\"hidden_size\" must be a number");
    write_text(path, "{\"hidden_size\": 30, \"num_attention_heads\": 4}");
    ASSERT_EQ(semd_clip_config_load(path, &cfg), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "does not divide");
    write_text(path, "{\"hidden_size\": 32,");
    ASSERT_EQ(semd_clip_config_load(path, &cfg), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "invalid JSON");
    ASSERT_EQ(semd_clip_config_load(semd_test_path(dir, "absent.json"), &cfg), SEMD_EIO);
}

TEST(checkpoint_errors)
{
    semd_checkpoint *ck;
    const char *dir = semd_test_tmpdir();
    ASSERT_EQ(semd_checkpoint_open(semd_test_path(dir, "nothing"), NULL, &ck), SEMD_EIO);
    ASSERT_EQ(semd_checkpoint_open(dir, NULL, &ck), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "not a diffusers model folder");
    char te[512];
    snprintf(te, sizeof te, "mkdir -p %s/m/text_encoder && touch %s/m/text_encoder/pytorch_model.bin "
             "&& echo '{}' > %s/m/text_encoder/config.json", dir, dir, dir);
    ASSERT(system(te) == 0);
    semd_clip *clip = NULL;
    ASSERT_EQ(load_clip(semd_test_path(dir, "m"), &clip), SEMD_EUNSUPPORTED);
    ASSERT_CONTAINS(semd_last_error(), "only safetensors");
}

/* ---- the real SD1.5 CLIP-L names and shapes, at full size ---- */

typedef struct row {
    char diffusers[160], ldm[200];
    int ndim;
    int64_t shape[4];
} row;

static int read_clip_rows(row *rows, int cap)
{
    FILE *f = fopen(data("sd15_weight_names.txt"), "r");
    ASSERT(f);
    char line[1024];
    int in_clip = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            in_clip = strstr(line, "### CLIP") != NULL;
            continue;
        }
        if (!in_clip || line[0] == '\n') continue;
        ASSERT(n < cap);
        row *r = &rows[n++];
        char shape[64];
        ASSERT(sscanf(line, "%159s %199s %63[^\n]", r->diffusers, r->ldm, shape) == 3);
        r->ndim = 0;
        for (char *p = shape + 1; *p && *p != ']'; r->ndim++) {
            r->shape[r->ndim] = strtoll(p, &p, 10);
            while (*p == ',' || *p == ' ') p++;
        }
    }
    fclose(f);
    return n;
}

/* Cheap deterministic small weights: norms near 1, everything else near 0. */
static void fill(uint16_t *dst, uint64_t n, int is_norm_weight, uint32_t seed)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)(i * 2654435761u) ^ seed;
        float v = ((h >> 8) % 2001 - 1000) * 2e-5f;
        dst[i] = semd_f32_to_bf16(is_norm_weight ? 1.0f + v : v);
    }
}

static void write_sd15_clip(const row *rows, int n, int ldm, const char *path)
{
    semd_st_writer *w = semd_st_writer_new();
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < rows[i].ndim; d++) numel *= (uint64_t)rows[i].shape[d];
        uint16_t *buf = malloc(numel * 2);
        int norm = strstr(rows[i].diffusers, "norm") && strstr(rows[i].diffusers, ".weight");
        fill(buf, numel, norm, (uint32_t)i);
        ASSERT_OK(semd_st_writer_add(w, ldm ? rows[i].ldm : rows[i].diffusers, SEMD_ST_BF16,
                                     rows[i].ndim, rows[i].shape, buf));
        free(buf);
    }
    int64_t one77[2] = {1, 77}; /* the buffer real files carry and loaders must skip */
    int64_t pos[77];
    for (int i = 0; i < 77; i++) pos[i] = i;
    ASSERT_OK(semd_st_writer_add(w, ldm ? "cond_stage_model.transformer.text_model.embeddings.position_ids"
                                        : "text_model.embeddings.position_ids",
                                 SEMD_ST_I64, 2, one77, pos));
    ASSERT_OK(semd_st_writer_save(w, path));
    semd_st_writer_free(w);
}

static void encode_finite(const char *model, semd_clip_config *cfg_out)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_clip *clip;
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_checkpoint_open(model, NULL, &ck));
    ASSERT_OK(semd_checkpoint_clip(ck, be, &clip));
    *cfg_out = *semd_clip_config_of(clip);
    int32_t ids[8] = {49406, 320, 1125, 539, 320, 2368, 49407, 49407};
    semd_tensor *h, *p;
    ASSERT_OK(semd_clip_encode(clip, ids, 1, 8, 0, &h, &p));
    ASSERT_EQ(h->ne[2], 768);
    float *out = malloc(8 * 768 * sizeof(float));
    ASSERT_OK(semd_tensor_get(h, out));
    for (int i = 0; i < 8 * 768; i++) ASSERT(isfinite(out[i]));
    free(out);
    semd_tensor_free(h), semd_tensor_free(p);
    semd_clip_free(clip), semd_checkpoint_free(ck), semd_backend_free(be);
}

TEST(sd15_names_and_shapes_full_size)
{
    static row rows[256];
    int n = read_clip_rows(rows, 256);
    ASSERT_EQ(n, 196); /* 4 embedding/final-norm tensors + 12 layers x 16 */
    uint64_t params = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < rows[i].ndim; d++) numel *= (uint64_t)rows[i].shape[d];
        params += numel;
        ASSERT_EQ(strncmp(rows[i].ldm, "cond_stage_model.transformer.", 29), 0);
        ASSERT_STREQ(rows[i].ldm + 29, rows[i].diffusers);
    }
    ASSERT_EQ(params, 123060480ull);

    /* An SD1.5 single file: the config is inferred from the shapes alone. */
    const char *single = semd_test_path(semd_test_tmpdir(), "sd15.safetensors");
    write_sd15_clip(rows, n, 1, single);
    semd_clip_config cfg;
    encode_finite(single, &cfg);
    ASSERT_EQ(cfg.num_layers, 12);
    ASSERT_EQ(cfg.num_heads, 12);
    ASSERT_EQ(cfg.intermediate_size, 3072);
    ASSERT_EQ(cfg.vocab_size, 49408);
    ASSERT_EQ(cfg.act, SEMD_UNARY_QUICK_GELU);
    remove(single);

    /* The same tensors as a diffusers folder with SD1.5's config.json. */
    char cmd[700];
    const char *dir = semd_test_path(semd_test_tmpdir(), "sd15");
    snprintf(cmd, sizeof cmd, "mkdir -p %s/text_encoder", dir);
    ASSERT(system(cmd) == 0);
    write_text(semd_test_path(dir, "text_encoder/config.json"),
               "{\"architectures\": [\"CLIPTextModel\"], \"hidden_act\": \"quick_gelu\", "
               "\"hidden_size\": 768, \"intermediate_size\": 3072, \"num_attention_heads\": 12, "
               "\"num_hidden_layers\": 12, \"max_position_embeddings\": 77, \"vocab_size\": 49408, "
               "\"layer_norm_eps\": 1e-05, \"bos_token_id\": 0, \"eos_token_id\": 2, "
               "\"pad_token_id\": 1, \"projection_dim\": 768, \"torch_dtype\": \"float32\"}");
    write_sd15_clip(rows, n, 0, semd_test_path(dir, "text_encoder/model.safetensors"));
    encode_finite(dir, &cfg);
    ASSERT_EQ(cfg.eos_token_id, 2);
}

/* The gelu encoder's weights split over two shards listed by an index, as large models ship. */
TEST(sharded_folder)
{
    const char *dir = semd_test_path(semd_test_tmpdir(), "sharded");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/text_encoder && cp %s %s/text_encoder/", dir,
             data("models/tiny-clip-gelu/text_encoder/config.json"), dir);
    ASSERT(system(cmd) == 0);
    semd_st_file *src;
    ASSERT_OK(semd_st_open(data("models/tiny-clip-gelu/text_encoder/model.safetensors"), &src));
    semd_st_writer *w[2] = {semd_st_writer_new(), semd_st_writer_new()};
    char index[8192] = "{\"metadata\": {}, \"weight_map\": {";
    for (size_t i = 0; i < semd_st_count(src); i++) {
        const semd_st_tensor *t = semd_st_at(src, i);
        ASSERT_OK(semd_st_writer_add(w[i % 2], t->name, t->dtype, t->ndim, t->shape, t->data));
        size_t len = strlen(index);
        snprintf(index + len, sizeof index - len, "%s\"%s\": \"model-0000%zu-of-00002.safetensors\"",
                 i ? ", " : "", t->name, i % 2 + 1);
    }
    strcat(index, "}}");
    char te[1024];
    snprintf(te, sizeof te, "%s/text_encoder", dir);
    ASSERT_OK(semd_st_writer_save(w[0], semd_test_path(te, "model-00001-of-00002.safetensors")));
    ASSERT_OK(semd_st_writer_save(w[1], semd_test_path(te, "model-00002-of-00002.safetensors")));
    write_text(semd_test_path(te, "model.safetensors.index.json"), index);
    semd_st_writer_free(w[0]), semd_st_writer_free(w[1]), semd_st_close(src);
    check_checkpoint(dir, NULL, "golden/clip_tiny_gelu_L20.safetensors", 1);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(sd15_diffusers_folder),
    TEST_ENTRY(sd15_single_file_f16),
    TEST_ENTRY(gelu_first_eos_pooling),
    TEST_ENTRY(short_sequences),
    TEST_ENTRY(single_file_needs_config_for_odd_width),
    TEST_ENTRY(encode_rejects_bad_input),
    TEST_ENTRY(missing_tensor_is_named),
    TEST_ENTRY(misshaped_tensor_is_named),
    TEST_ENTRY(config_errors_name_the_field),
    TEST_ENTRY(checkpoint_errors),
    TEST_ENTRY(sd15_names_and_shapes_full_size),
    TEST_ENTRY(sharded_folder),
    {0},
};

SEMD_TEST_MAIN(tests)
