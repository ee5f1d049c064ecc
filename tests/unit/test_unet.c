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

static void check_unet(const char *model, const char *golden)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_unet *unet;
    semd_st_file *g = golden_open(golden);
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_checkpoint_open(golden_data(model), NULL, &ck));
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

TEST(sd15_shape) { check_unet("models/tiny-unet-sd15", "golden/unet_tiny_sd15.safetensors"); }
TEST(lcm_guidance_input) { check_unet("models/tiny-sd15", "golden/unet_tiny_lcm.safetensors"); }
TEST(sdxl_shape) { check_unet("models/tiny-unet-sdxl", "golden/unet_tiny_sdxl.safetensors"); }

static const struct semd_test tests[] = {
    TEST_ENTRY(sd15_shape),
    TEST_ENTRY(lcm_guidance_input),
    TEST_ENTRY(sdxl_shape),
    {0},
};

SEMD_TEST_MAIN(tests)
