/*
 * Tensor-name map tests: every row of the SD1.5 table (tests/data/
 * sd15_weight_names.txt, regenerated from diffusers' own models and converters
 * by tools/reference/gen_weight_names.py) in both directions, the ignored
 * names, unknown names, and an SDXL-shaped layout checked by hand (the same
 * pairs are asserted against diffusers' converter by the generator).
 */
#include "harness.h"

#include <stdbool.h>
#include <stdint.h>

#include "semd/name_map.h"
#include "semd/status.h"

/* ---- the table --------------------------------------------------------- */

typedef struct row {
    int line;
    semd_module module;
    const char *dif, *ldm;
    int ndim;
    long long numel;
    bool conv_note; /* "(LDM: 1x1 conv, ...)": stored as [o,i,1,1] in single files */
} row;

typedef struct totals {
    int rows[3];
    long long params[3];
} totals;

/* "[a, b, c]" -> ndim and element count; false when malformed. */
static bool parse_shape(const char *s, int *ndim, long long *numel)
{
    if (*s++ != '[') return false;
    *ndim = 0;
    *numel = 1;
    while (*s != ']') {
        char *end;
        long long d = strtoll(s, &end, 10);
        if (end == s || d <= 0) return false;
        *numel *= d;
        ++*ndim;
        s = end;
        if (*s == ',') s += 2;
        else if (*s != ']') return false;
    }
    return true;
}

/* Split the line at two-space separators; fields point into it. */
static int split_fields(char *line, char **field, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        field[n++] = p;
        char *sep = strstr(p, "  ");
        if (!sep) break;
        *sep = '\0';
        p = sep + 2;
    }
    return n;
}

static void parse_row(char *line, int lineno, semd_module module, row *r)
{
    char *f[4];
    int n = split_fields(line, f, 4);
    if (n < 3) FAIL("table line %d: expected 3 or 4 fields, got %d", lineno, n);
    *r = (row){.line = lineno, .module = module, .dif = f[0], .ldm = f[1]};
    if (!parse_shape(f[2], &r->ndim, &r->numel)) FAIL("table line %d: bad shape %s", lineno, f[2]);
    if (n == 4) {
        if (strcmp(f[3], "(LDM: 1x1 conv, shape [512, 512, 1, 1])") != 0)
            FAIL("table line %d: unexpected note %s", lineno, f[3]);
        r->conv_note = true;
    }
}

static bool section_module(const char *line, semd_module *m)
{
    if (strcmp(line, "### UNet") == 0) *m = SEMD_MODULE_UNET;
    else if (strcmp(line, "### VAE") == 0) *m = SEMD_MODULE_VAE;
    else if (strcmp(line, "### CLIP") == 0) *m = SEMD_MODULE_TEXT;
    else FAIL("unknown table section %s", line);
    return true;
}

/* Call fn for every row of the table; returns the number of rows. */
static int for_each_row(void (*fn)(const row *, void *), void *ctx)
{
    const char *path = semd_test_path(semd_test_data_dir(), "sd15_weight_names.txt");
    FILE *fp = fopen(path, "r");
    if (!fp) FAIL("cannot open %s", path);
    char line[1024];
    int lineno = 0, rows = 0;
    bool in_section = false;
    semd_module module = SEMD_MODULE_UNET;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "### ", 4) == 0) {
            in_section = section_module(line, &module);
            continue;
        }
        if (line[0] == '#' || line[0] == '\0') continue;
        if (!in_section) FAIL("table line %d: a row before any section", lineno);
        row r;
        parse_row(line, lineno, module, &r);
        fn(&r, ctx);
        rows++;
    }
    fclose(fp);
    return rows;
}

/* ---- the SD1.5 table --------------------------------------------------- */

static void check_row(const row *r, void *ctx)
{
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    char buf[256];
    semd_module m = (semd_module)-1;
    if (semd_ldm_to_diffusers(&lo, r->ldm, buf, sizeof buf, &m) != SEMD_OK)
        FAIL("line %d: %s", r->line, semd_last_error());
    if (m != r->module || strcmp(buf, r->dif) != 0)
        FAIL("line %d: %s -> %s %s, expected %s %s", r->line, r->ldm, semd_module_name(m), buf,
             semd_module_name(r->module), r->dif);
    if (semd_diffusers_to_ldm(&lo, r->module, r->dif, buf, sizeof buf) != SEMD_OK)
        FAIL("line %d: %s", r->line, semd_last_error());
    if (strcmp(buf, r->ldm) != 0)
        FAIL("line %d: %s -> %s, expected %s", r->line, r->dif, buf, r->ldm);
    if (semd_name_is_conv1x1_linear(r->module, r->dif) != r->conv_note)
        FAIL("line %d: %s: conv1x1/linear pair is %d in the table", r->line, r->dif, r->conv_note);
    /* The noted rows are the Linear side: a [o, i] weight. */
    if (r->conv_note && r->ndim != 2) FAIL("line %d: %s is not 2-D", r->line, r->dif);
    if (semd_name_is_ignored(r->ldm) || semd_name_is_ignored(r->dif))
        FAIL("line %d: %s is taken for an ignored tensor", r->line, r->ldm);
    totals *t = ctx;
    t->rows[r->module]++;
    t->params[r->module] += r->numel;
}

TEST(sd15_table_maps_both_ways)
{
    totals t = {0};
    ASSERT_EQ(for_each_row(check_row, &t), 1130);
    ASSERT_EQ(t.rows[SEMD_MODULE_UNET], 686);
    ASSERT_EQ(t.rows[SEMD_MODULE_VAE], 248);
    ASSERT_EQ(t.rows[SEMD_MODULE_TEXT], 196);
    ASSERT_EQ(t.params[SEMD_MODULE_UNET], 859520964LL);
    ASSERT_EQ(t.params[SEMD_MODULE_VAE], 83653863LL);
    ASSERT_EQ(t.params[SEMD_MODULE_TEXT], 123060480LL);
}

static void count_conv_notes(const row *r, void *ctx)
{
    if (r->conv_note) ++*(int *)ctx;
}

TEST(sd15_table_has_eight_conv_linear_rows)
{
    int n = 0;
    for_each_row(count_conv_notes, &n);
    ASSERT_EQ(n, 8);
}

/* ---- helpers for single names ------------------------------------------ */

static void expect_pair(const semd_name_layout *lo, semd_module module, const char *ldm,
                        const char *dif)
{
    char buf[256];
    semd_module m = (semd_module)-1;
    if (semd_ldm_to_diffusers(lo, ldm, buf, sizeof buf, &m) != SEMD_OK)
        FAIL("%s: %s", ldm, semd_last_error());
    if (m != module || strcmp(buf, dif) != 0)
        FAIL("%s -> %s %s, expected %s %s", ldm, semd_module_name(m), buf, semd_module_name(module),
             dif);
    if (semd_diffusers_to_ldm(lo, module, dif, buf, sizeof buf) != SEMD_OK)
        FAIL("%s: %s", dif, semd_last_error());
    if (strcmp(buf, ldm) != 0) FAIL("%s -> %s, expected %s", dif, buf, ldm);
}

static void expect_ldm_unknown(const semd_name_layout *lo, const char *ldm)
{
    char buf[256];
    semd_clear_error();
    int rc = semd_ldm_to_diffusers(lo, ldm, buf, sizeof buf, NULL);
    if (rc != SEMD_ENOTFOUND) FAIL("%s: expected SEMD_ENOTFOUND, got %d (%s)", ldm, rc, buf);
    ASSERT_CONTAINS(semd_last_error(), ldm);
}

static void expect_dif_unknown(const semd_name_layout *lo, semd_module module, const char *dif)
{
    char buf[256];
    semd_clear_error();
    int rc = semd_diffusers_to_ldm(lo, module, dif, buf, sizeof buf);
    if (rc != SEMD_ENOTFOUND) FAIL("%s: expected SEMD_ENOTFOUND, got %d (%s)", dif, rc, buf);
    ASSERT_CONTAINS(semd_last_error(), dif);
    ASSERT_CONTAINS(semd_last_error(), semd_module_name(module));
}

/* ---- single names ------------------------------------------------------ */

TEST(lcm_cond_proj)
{
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    expect_pair(&lo, SEMD_MODULE_UNET, "model.diffusion_model.time_embedding.cond_proj.weight",
                "time_embedding.cond_proj.weight");
}

TEST(ignored_names)
{
    static const char *const ignored[] = {
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod", "log_one_minus_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
        "logvar", "model_ema.decay", "model_ema.num_updates",
        "model_ema.diffusion_modelinput_blocks00weight",
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "text_model.embeddings.position_ids", "cond_stage_model.model.logit_scale",
        "cond_stage_model.model.text_projection",
    };
    static const char *const kept[] = {
        "model.diffusion_model.input_blocks.0.0.weight", "betas.weight", "sqrt_x.weight",
        "xtext_model.embeddings.position_ids", "model_ema", "",
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",
        "conditioner.embedders.1.model.text_projection",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (!semd_name_is_ignored(ignored[i])) FAIL("%s is not ignored", ignored[i]);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (semd_name_is_ignored(kept[i])) FAIL("%s is ignored", kept[i]);
    ASSERT(!semd_name_is_ignored(NULL));
    /* Ignored names are not in the map: loaders check the predicate first. */
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    expect_ldm_unknown(&lo, "cond_stage_model.transformer.text_model.embeddings.position_ids");
}

TEST(unknown_ldm_names)
{
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    static const char *const unknown[] = {
        "foo.bar",
        "model.diffusion_model.",
        "model.diffusion_model.input_blocks.12.0.in_layers.0.weight", /* 12 input blocks: 0..11 */
        "model.diffusion_model.input_blocks.3.0.in_layers.0.weight",  /* a downsampler slot */
        "model.diffusion_model.input_blocks.10.1.norm.weight",        /* level 3 has no attention */
        "model.diffusion_model.input_blocks.9.0.op.weight.extra",
        "model.diffusion_model.input_blocks.01.0.in_layers.0.weight", /* not canonical */
        "model.diffusion_model.input_blocks.1.0.in_layers.1.weight",  /* SiLU: no parameters */
        "model.diffusion_model.input_blocks.1.0.in_layers.0.running_mean",
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.00.norm1.weight",
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn3.to_q.weight",
        "model.diffusion_model.output_blocks.2.2.conv.weight",        /* SD1.5 up 0: index 1 */
        "model.diffusion_model.output_blocks.11.2.conv.weight",       /* no upsampler at the end */
        "model.diffusion_model.output_blocks.12.0.in_layers.0.weight",
        "model.diffusion_model.label_emb.0.0.weight",                 /* SDXL only */
        "model.diffusion_model.conv_in.weight",                       /* a diffusers name */
        "first_stage_model.encoder.down.3.downsample.conv.weight",
        "first_stage_model.decoder.up.0.upsample.conv.weight",
        "first_stage_model.encoder.down.0.block.2.norm1.weight",      /* encoder: 2 per level */
        "first_stage_model.decoder.up.0.block.3.norm1.weight",        /* decoder: 3 per level */
        "first_stage_model.decoder.up.4.block.0.norm1.weight",
        "first_stage_model.encoder.mid.attn_1.to_q.weight",
        "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q.weight",
        "cond_stage_model.transformer.encoder.layers.0.mlp.fc1.weight",
        "cond_stage_model.model.transformer.resblocks.0.ln_1.weight",
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        expect_ldm_unknown(&lo, unknown[i]);
}

TEST(unknown_diffusers_names)
{
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "down_blocks.3.attentions.0.norm.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "down_blocks.3.downsamplers.0.conv.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "up_blocks.3.upsamplers.0.conv.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "up_blocks.0.attentions.0.norm.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "down_blocks.0.resnets.2.norm1.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "up_blocks.4.resnets.0.norm1.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "add_embedding.linear_1.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "model.diffusion_model.conv_in.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "encoder.conv_in.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_VAE, "conv_in.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_VAE, "decoder.up_blocks.3.upsamplers.0.conv.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_VAE, "encoder.mid_block.attentions.0.q.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_TEXT, "text_model.encoder.layers.0.self_attn.q_proj");
    expect_dif_unknown(&lo, SEMD_MODULE_TEXT, "text_model.encoder.layers.x.mlp.fc1.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_TEXT, "text_model.embeddings.position_ids");
}

TEST(deprecated_vae_attention_names)
{
    static const char *const pairs[][2] = {
        {"encoder.mid_block.attentions.0.query.weight", "encoder.mid.attn_1.q.weight"},
        {"encoder.mid_block.attentions.0.key.bias", "encoder.mid.attn_1.k.bias"},
        {"decoder.mid_block.attentions.0.value.weight", "decoder.mid.attn_1.v.weight"},
        {"decoder.mid_block.attentions.0.proj_attn.weight", "decoder.mid.attn_1.proj_out.weight"},
    };
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    char buf[256], want[256];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        ASSERT_OK(semd_diffusers_to_ldm(&lo, SEMD_MODULE_VAE, pairs[i][0], buf, sizeof buf));
        snprintf(want, sizeof want, "first_stage_model.%s", pairs[i][1]);
        ASSERT_STREQ(buf, want);
    }
    ASSERT(semd_name_is_conv1x1_linear(SEMD_MODULE_VAE, pairs[0][0]));
    ASSERT(!semd_name_is_conv1x1_linear(SEMD_MODULE_VAE, pairs[1][0])); /* a bias */
    ASSERT(semd_name_is_conv1x1_linear(SEMD_MODULE_VAE, pairs[3][0]));
    ASSERT(!semd_name_is_conv1x1_linear(SEMD_MODULE_UNET,
                                        "encoder.mid_block.attentions.0.to_q.weight"));
    ASSERT(!semd_name_is_conv1x1_linear(SEMD_MODULE_VAE,
                                        "encoder.mid_block.attentions.0.group_norm.weight"));
    ASSERT(!semd_name_is_conv1x1_linear(SEMD_MODULE_VAE, NULL));
    /* LDM -> diffusers always gives the current names. */
    semd_module m;
    ASSERT_OK(semd_ldm_to_diffusers(&lo, "first_stage_model.decoder.mid.attn_1.proj_out.weight",
                                    buf, sizeof buf, &m));
    ASSERT_EQ(m, SEMD_MODULE_VAE);
    ASSERT_STREQ(buf, "decoder.mid_block.attentions.0.to_out.0.weight");
}

/* ---- SDXL -------------------------------------------------------------- */

static void sdxl_layout(semd_name_layout *lo)
{
    static const char *const down[] = {"DownBlock2D", "CrossAttnDownBlock2D",
                                       "CrossAttnDownBlock2D"};
    static const char *const up[] = {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"};
    ASSERT_OK(semd_name_layout_from_unet_config(lo, 3, 2, down, up, "text_time"));
}

/* The same pairs are asserted against diffusers' converter by gen_weight_names.py. */
TEST(sdxl_layout_hand_checked)
{
    static const char *const pairs[][2] = {
        {"output_blocks.2.2.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"},
        {"output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"},
        {"input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight",
         "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"},
        {"input_blocks.7.1.transformer_blocks.9.ff.net.2.weight",
         "down_blocks.2.attentions.0.transformer_blocks.9.ff.net.2.weight"},
        {"label_emb.0.0.weight", "add_embedding.linear_1.weight"},
        {"label_emb.0.2.bias", "add_embedding.linear_2.bias"},
        {"input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight"},
        {"input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"},
        {"input_blocks.6.0.op.bias", "down_blocks.1.downsamplers.0.conv.bias"},
        {"input_blocks.8.1.proj_in.weight", "down_blocks.2.attentions.1.proj_in.weight"},
        {"middle_block.1.transformer_blocks.9.attn2.to_k.weight",
         "mid_block.attentions.0.transformer_blocks.9.attn2.to_k.weight"},
        {"middle_block.2.emb_layers.1.weight", "mid_block.resnets.1.time_emb_proj.weight"},
        {"output_blocks.2.1.proj_out.weight", "up_blocks.0.attentions.2.proj_out.weight"},
        {"output_blocks.8.0.skip_connection.weight", "up_blocks.2.resnets.2.conv_shortcut.weight"},
        {"out.2.weight", "conv_out.weight"},
    };
    semd_name_layout lo;
    sdxl_layout(&lo);
    char ldm[256];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        snprintf(ldm, sizeof ldm, "model.diffusion_model.%s", pairs[i][0]);
        expect_pair(&lo, SEMD_MODULE_UNET, ldm, pairs[i][1]);
    }
    /* Not in an SDXL UNet. */
    expect_ldm_unknown(&lo, "model.diffusion_model.input_blocks.1.1.norm.weight");
    expect_ldm_unknown(&lo, "model.diffusion_model.input_blocks.9.0.in_layers.0.weight");
    expect_ldm_unknown(&lo, "model.diffusion_model.output_blocks.2.1.conv.weight");
    expect_ldm_unknown(&lo, "model.diffusion_model.output_blocks.8.1.norm.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "down_blocks.2.downsamplers.0.conv.weight");
    expect_dif_unknown(&lo, SEMD_MODULE_UNET, "up_blocks.2.upsamplers.0.conv.weight");
    /* The VAE and the CLIP-L names are SD1.5's. */
    expect_pair(&lo, SEMD_MODULE_VAE, "first_stage_model.decoder.up.1.upsample.conv.weight",
                "decoder.up_blocks.2.upsamplers.0.conv.weight");
}

/* Every SD1.5 row maps the same through a layout built from the SD1.5 config. */
static void check_row_config_layout(const row *r, void *ctx)
{
    const semd_name_layout *lo = ctx;
    char buf[256];
    if (semd_diffusers_to_ldm(lo, r->module, r->dif, buf, sizeof buf) != SEMD_OK ||
        strcmp(buf, r->ldm) != 0)
        FAIL("line %d: %s: %s", r->line, r->dif, semd_last_error());
}

TEST(layout_from_sd15_config)
{
    static const char *const down[] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                       "CrossAttnDownBlock2D", "DownBlock2D"};
    static const char *const up[] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                     "CrossAttnUpBlock2D"};
    semd_name_layout lo, ref;
    ASSERT_OK(semd_name_layout_from_unet_config(&lo, 4, 2, down, up, NULL));
    semd_name_layout_sd15(&ref);
    ASSERT_EQ(lo.n_levels, ref.n_levels);
    ASSERT_EQ(lo.layers_per_block, ref.layers_per_block);
    ASSERT_EQ(lo.add_embedding, ref.add_embedding);
    ASSERT_EQ(lo.vae_levels, ref.vae_levels);
    ASSERT_EQ(lo.vae_layers_per_block, ref.vae_layers_per_block);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(lo.down_has_attn[i], ref.down_has_attn[i]);
        ASSERT_EQ(lo.up_has_attn[i], ref.up_has_attn[i]);
    }
    ASSERT_EQ(for_each_row(check_row_config_layout, &lo), 1130);
}

TEST(layout_config_errors)
{
    static const char *const down[] = {"CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"};
    static const char *const up[] = {"UpBlock2D", "CrossAttnUpBlock2D"};
    static const char *const ok_down[] = {"CrossAttnDownBlock2D", "DownBlock2D"};
    static const char *const null_up[] = {"UpBlock2D", NULL};
    semd_name_layout lo;
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, 2, 2, down, up, NULL), SEMD_EUNSUPPORTED);
    ASSERT_CONTAINS(semd_last_error(), "SimpleCrossAttnDownBlock2D");
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, 2, 2, ok_down, null_up, NULL),
              SEMD_EUNSUPPORTED);
    ASSERT_CONTAINS(semd_last_error(), "null");
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, 2, 2, ok_down, up, "image"),
              SEMD_EUNSUPPORTED);
    ASSERT_CONTAINS(semd_last_error(), "addition_embed_type");
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, 0, 2, ok_down, up, NULL), SEMD_EUNSUPPORTED);
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, SEMD_NAME_MAX_LEVELS + 1, 2, ok_down, up,
                                                NULL),
              SEMD_EUNSUPPORTED);
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, 2, 0, ok_down, up, NULL), SEMD_EUNSUPPORTED);
    ASSERT_EQ(semd_name_layout_from_unet_config(NULL, 2, 2, ok_down, up, NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_name_layout_from_unet_config(&lo, 2, 2, NULL, up, NULL), SEMD_EINVAL);
    ASSERT_OK(semd_name_layout_from_unet_config(&lo, 2, 1, ok_down, up, NULL));
    /* A tiny 2-level, 1-ResNet UNet (diffusers' test configs). */
    expect_pair(&lo, SEMD_MODULE_UNET, "model.diffusion_model.input_blocks.2.0.op.weight",
                "down_blocks.0.downsamplers.0.conv.weight");
    expect_pair(&lo, SEMD_MODULE_UNET, "model.diffusion_model.input_blocks.3.0.in_layers.0.weight",
                "down_blocks.1.resnets.0.norm1.weight");
    expect_pair(&lo, SEMD_MODULE_UNET, "model.diffusion_model.output_blocks.1.1.conv.weight",
                "up_blocks.0.upsamplers.0.conv.weight");
    expect_pair(&lo, SEMD_MODULE_UNET, "model.diffusion_model.output_blocks.3.1.norm.weight",
                "up_blocks.1.attentions.1.norm.weight");
}

TEST(bad_arguments)
{
    semd_name_layout lo;
    semd_name_layout_sd15(&lo);
    const char *ldm =
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
    char small[16], buf[256];
    ASSERT_EQ(semd_ldm_to_diffusers(&lo, ldm, small, sizeof small, NULL), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "too small");
    ASSERT_EQ(semd_diffusers_to_ldm(&lo, SEMD_MODULE_UNET, "conv_in.weight", small, sizeof small),
              SEMD_EINVAL);
    ASSERT_EQ(semd_ldm_to_diffusers(NULL, ldm, buf, sizeof buf, NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_ldm_to_diffusers(&lo, NULL, buf, sizeof buf, NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_ldm_to_diffusers(&lo, ldm, NULL, 0, NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_diffusers_to_ldm(&lo, (semd_module)7, "conv_in.weight", buf, sizeof buf),
              SEMD_EINVAL);
    semd_name_layout bad = lo;
    bad.n_levels = 0;
    ASSERT_EQ(semd_ldm_to_diffusers(&bad, ldm, buf, sizeof buf, NULL), SEMD_EINVAL);
    bad = lo;
    bad.vae_layers_per_block = 0;
    ASSERT_EQ(semd_diffusers_to_ldm(&bad, SEMD_MODULE_UNET, "conv_in.weight", buf, sizeof buf),
              SEMD_EINVAL);
    /* Exactly fitting output works. */
    char exact[sizeof "input_blocks.0.0.weight" + sizeof "model.diffusion_model." - 1];
    ASSERT_OK(semd_diffusers_to_ldm(&lo, SEMD_MODULE_UNET, "conv_in.weight", exact, sizeof exact));
    ASSERT_STREQ(exact, "model.diffusion_model.input_blocks.0.0.weight");
}

TEST(module_names)
{
    ASSERT_STREQ(semd_module_name(SEMD_MODULE_UNET), "unet");
    ASSERT_STREQ(semd_module_name(SEMD_MODULE_VAE), "vae");
    ASSERT_STREQ(semd_module_name(SEMD_MODULE_TEXT), "text_encoder");
    ASSERT_STREQ(semd_module_ldm_prefix(SEMD_MODULE_UNET), "model.diffusion_model.");
    ASSERT_STREQ(semd_module_ldm_prefix(SEMD_MODULE_VAE), "first_stage_model.");
    ASSERT_STREQ(semd_module_ldm_prefix(SEMD_MODULE_TEXT), "cond_stage_model.transformer.");
    ASSERT(semd_module_ldm_prefix((semd_module)3) == NULL);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(sd15_table_maps_both_ways),
    TEST_ENTRY(sd15_table_has_eight_conv_linear_rows),
    TEST_ENTRY(lcm_cond_proj),
    TEST_ENTRY(ignored_names),
    TEST_ENTRY(unknown_ldm_names),
    TEST_ENTRY(unknown_diffusers_names),
    TEST_ENTRY(deprecated_vae_attention_names),
    TEST_ENTRY(sdxl_layout_hand_checked),
    TEST_ENTRY(layout_from_sd15_config),
    TEST_ENTRY(layout_config_errors),
    TEST_ENTRY(bad_arguments),
    TEST_ENTRY(module_names),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
