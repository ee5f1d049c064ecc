/*
 * The UNet against diffusers' UNet2DConditionModel (goldens from
 * tools/reference/gen_models.py): SD1.5 shape, SD1.5 shape with the LCM
 * guidance input, SDXL shape (linear projections, depth 2, text_time), batch 2
 * with a different timestep per sample and latents that are not square.
 */
#include "golden_util.h"
#include "semd/checkpoint.h"
#include "semd/unet.h"

#define TOL 1e-4

static void check_unet(const char *model, const char *config, const char *golden)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_unet *unet;
    semd_st_file *g = golden_open(golden);
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_checkpoint_open(golden_data(model), config ? golden_data(config) : NULL, &ck));
    ASSERT_OK(semd_checkpoint_unet(ck, be, &unet));
    semd_tensor *x = golden_tensor(be, g, "sample", 0);
    semd_tensor *ctx = golden_tensor(be, g, "encoder_hidden_states", 0);
    semd_tensor *cond = golden_tensor(be, g, "timestep_cond", 1);
    semd_tensor *text = golden_tensor(be, g, "text_embeds", 1);
    float *t = golden_floats(g, "timestep", NULL);
    float *ids = semd_st_find(g, "time_ids") ? golden_floats(g, "time_ids", NULL) : NULL;
    semd_unet_inputs in = {.sample = x, .timesteps = t, .encoder_hidden_states = ctx,
                           .timestep_cond = cond, .text_embeds = text, .time_ids = ids};
    semd_tensor *out;
    ASSERT_OK(semd_unet_forward(unet, &in, &out));
    golden_expect(g, "expected_sample", out, TOL);
    semd_tensor *ts[] = {x, ctx, cond, text, out};
    for (int i = 0; i < 5; i++) semd_tensor_free(ts[i]);
    free(t), free(ids);
    semd_unet_free(unet), semd_checkpoint_free(ck), semd_backend_free(be), semd_st_close(g);
}

TEST(sd15_shape) { check_unet("models/tiny-unet-sd15", NULL, "golden/unet_tiny_sd15.safetensors"); }
TEST(lcm_guidance_input) { check_unet("models/tiny-sd15", NULL, "golden/unet_tiny_lcm.safetensors"); }
TEST(sdxl_shape) { check_unet("models/tiny-unet-sdxl", NULL, "golden/unet_tiny_sdxl.safetensors"); }

/* The same LCM UNet from the LDM single file (F16, original names). */
TEST(single_file)
{
    check_unet("models/tiny-sd15.safetensors", "models/tiny-sd15", "golden/unet_tiny_lcm.safetensors");
}

TEST(single_file_without_config)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_unet *unet;
    ASSERT_OK(semd_backend_cpu_new(1, &be));
    ASSERT_OK(semd_checkpoint_open(golden_data("models/tiny-sd15.safetensors"), NULL, &ck));
    ASSERT_EQ(semd_checkpoint_unet(ck, be, &unet), SEMD_EUNSUPPORTED); /* 32-wide context: not SD1.x */
    ASSERT_CONTAINS(semd_last_error(), "only SD1.x UNets are recognised without a config");
    semd_checkpoint_free(ck), semd_backend_free(be);
}

TEST(config_errors)
{
    const char *path = semd_test_path(semd_test_tmpdir(), "config.json");
    semd_unet_config cfg;
    struct { const char *json, *msg; int rc; } cases[] = {
        {"{\"down_block_types\": [\"SimpleCrossAttnDownBlock2D\"], \"block_out_channels\": [32]}",
         "down_block_types[0] = SimpleCrossAttnDownBlock2D", SEMD_EUNSUPPORTED},
        {"{\"resnet_time_scale_shift\": \"scale_shift\"}", "resnet_time_scale_shift", SEMD_EUNSUPPORTED},
        {"{\"block_out_channels\": [32, 64], \"down_block_types\": [\"DownBlock2D\"]}",
         "down_block_types must list 2", SEMD_EFORMAT},
        {"{\"block_out_channels\": [30], \"down_block_types\": [\"DownBlock2D\"], "
         "\"up_block_types\": [\"UpBlock2D\"]}", "does not divide", SEMD_EFORMAT},
        {"{\"addition_embed_type\": \"text\"}", "addition_embed_type = text", SEMD_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].json, f);
        fclose(f);
        int rc = semd_unet_config_load(path, &cfg);
        if (rc != cases[i].rc) FAIL("case %zu: %d: %s", i, rc, semd_last_error());
        ASSERT_CONTAINS(semd_last_error(), cases[i].msg);
    }
}

static const struct semd_test tests[] = {
    TEST_ENTRY(sd15_shape),
    TEST_ENTRY(lcm_guidance_input),
    TEST_ENTRY(sdxl_shape),
    TEST_ENTRY(single_file),
    TEST_ENTRY(single_file_without_config),
    TEST_ENTRY(config_errors),
    {0},
};

SEMD_TEST_MAIN(tests)
