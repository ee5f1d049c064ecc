/*
 * SemanticDraw frame by frame (and, for the single-call mode, image by image)
 * against the reference implementation
 * (tools/reference/semanticdraw_ref.py; goldens from gen_semanticdraw_goldens.py
 * with the networks in float64, so the target is near exact), on the tiny
 * model with injected noise, in both profiles.
 *
 * Tolerances. The streamed frames (all but the canvas's warm-up frames) must
 * match as a tensor to relative L2 1e-4 (semanticdraw.md 16.2); each frame's
 * own error is printed. The first T-1 frames of a stream come from
 * zero-initialised slots (warm-up frames, flagged and never shown): their UNet
 * inputs are exact zeros, where the tiny UNet's GroupNorms divide by
 * variances that are themselves rounding noise, so no float32 implementation
 * pins them down (the float32 reference run differs from the float64 one by
 * up to 2.8e-2 there). They are held to 2e-2 each. The tiny UNet's 1x1
 * bottleneck (two values per GroupNorm group) also makes single streamed
 * frames scatter more than the stream as a whole; that is why the stream is
 * judged as a tensor.
 */
#include "golden_util.h"
#include "semd/checkpoint.h"
#include "semd/scene_run.h"

#define TOL_STREAM 1e-4
#define TOL_WARMUP 2e-2

typedef struct run {
    const semd_st_file *g;
    float *want;   /* frame_latents [F][n] */
    size_t n;
    int frames, checked;
    double worst_stream, worst_warmup;
    double num, den; /* squared error and norm over the streamed frames of frame_latents */
} run;

static int compare_frame(void *ctx, int f, const semd_frame *fr)
{
    run *r = ctx;
    const float *want = r->want + (size_t)f * r->n;
    const double e = semd_rel_l2(fr->latent, want, r->n);
    for (size_t i = 0; !fr->warmup && i < r->n; i++) {
        const double d = (double)fr->latent[i] - want[i];
        r->num += d * d;
        r->den += (double)want[i] * want[i];
    }
    printf("frame %d%s: relative L2 error %.3g\n", f, fr->warmup ? " (warm-up)" : "", e);
    if (fr->warmup) {
        if (e > r->worst_warmup) r->worst_warmup = e;
        if (!(e <= TOL_WARMUP)) FAIL("warm-up frame %d: relative L2 error %.3g > %g", f, e, TOL_WARMUP);
    } else {
        if (e > r->worst_stream) r->worst_stream = e;
        (void)0;
    }
    r->checked++;
    return 0;
}

static void load_models(const char *model, int vae, semd_backend *be, semd_checkpoint **ck,
                        semd_sd_models *m)
{
    char dir[256];
    snprintf(dir, sizeof dir, "models/%s", model);
    ASSERT_OK(semd_checkpoint_open(golden_data(dir), NULL, ck));
    ASSERT_OK(semd_checkpoint_tokenizer(*ck, &m->tokenizer));
    ASSERT_OK(semd_checkpoint_clip(*ck, be, &m->clip));
    ASSERT_OK(semd_checkpoint_unet(*ck, be, &m->unet));
    ASSERT_OK(semd_checkpoint_scheduler(*ck, &m->scheduler));
    if (vae) ASSERT_OK(semd_checkpoint_vae(*ck, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &m->vae));
    else ASSERT_OK(semd_taesd_open(golden_data("models/taesd"), be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &m->taesd));
}

/* Run the golden's scene in the golden's profile with its noise; compare every frame. */
static void check_golden(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/semanticdraw/%s.safetensors", name);
    semd_st_file *g = golden_open(rel);
    const char *scene_rel = semd_st_metadata(g, "scene"), *model = semd_st_metadata(g, "model");
    const char *profile = semd_st_metadata(g, "profile"), *frames = semd_st_metadata(g, "frames");
    ASSERT(scene_rel && model && profile && frames);
    ASSERT(strncmp(scene_rel, "tests/data/", 11) == 0);
    semd_scene *s;
    ASSERT_OK(semd_scene_load(golden_data(scene_rel + 11), &s));
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM));
    s->profile = strcmp(profile, "reference") == 0 ? SEMD_SCENE_PROFILE_REFERENCE : SEMD_SCENE_PROFILE_DEFAULT;

    semd_backend *be;
    semd_checkpoint *ck;
    semd_sd_models m = {0};
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    load_models(model, s->decoder == SEMD_SCENE_DECODER_VAE, be, &ck, &m);

    uint64_t n_init, n_frames, n_want;
    float *init = golden_floats(g, "init_noise", &n_init), *fnoise = golden_floats(g, "frame_noise", &n_frames);
    run r = {.g = g, .frames = atoi(frames), .n = 4 * (size_t)(s->width / 8) * (s->height / 8)};
    r.want = golden_floats(g, "frame_latents", &n_want);
    ASSERT_EQ(n_want, (uint64_t)r.frames * r.n);
    semd_scene_noise noise = {.slots = init, .n_sets = (int)(n_init / (r.n * s->n_timesteps)), .frames = fnoise};
    ASSERT_OK(semd_scene_stream(s, &m, r.frames, &noise, compare_frame, &r));
    ASSERT_EQ(r.checked, r.frames);
    const double streamed = sqrt(r.num / r.den);
    printf("%s: streamed frames %.3g (worst single frame %.3g), worst warm-up frame %.3g\n", name,
           streamed, r.worst_stream, r.worst_warmup);
    if (!(streamed <= TOL_STREAM)) FAIL("streamed frames: relative L2 error %.3g > %g", streamed, TOL_STREAM);

    free(init), free(fnoise), free(r.want);
    semd_tokenizer_free(m.tokenizer), semd_clip_free(m.clip), semd_unet_free(m.unet);
    semd_lcm_scheduler_free(m.scheduler), semd_taesd_free(m.taesd), semd_vae_free(m.vae);
    semd_checkpoint_free(ck), semd_backend_free(be), semd_scene_free(s), semd_st_close(g);
}

/* The single-call mode: one image from a scene with injected noise; no warm-up, so 1e-4 throughout. */
static void check_single(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/semanticdraw/%s.safetensors", name);
    semd_st_file *g = golden_open(rel);
    const char *scene_rel = semd_st_metadata(g, "scene"), *model = semd_st_metadata(g, "model");
    ASSERT(scene_rel && model && strncmp(scene_rel, "tests/data/", 11) == 0);
    semd_scene *s;
    ASSERT_OK(semd_scene_load(golden_data(scene_rel + 11), &s));
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_SINGLE));
    semd_backend *be;
    semd_checkpoint *ck;
    semd_sd_models m = {0};
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    load_models(model, s->decoder == SEMD_SCENE_DECODER_VAE, be, &ck, &m);
    float *init = golden_floats(g, "init_latent", NULL), *boot = golden_floats(g, "boot_noise", NULL);
    float *steps = golden_floats(g, "step_noise", NULL);
    semd_single_noise z = {.init_latent = init, .boot_noise = boot, .step_noise = steps};
    semd_single_result r;
    ASSERT_OK(semd_scene_single(s, &m, &z, &r));
    int64_t ls[4] = {1, 4, s->height / 8, s->width / 8}, is[4] = {1, 3, s->height, s->width};
    semd_tensor *lat, *img;
    ASSERT_OK(semd_tensor_new(be, 4, ls, &lat));
    ASSERT_OK(semd_tensor_new(be, 4, is, &img));
    ASSERT_OK(semd_tensor_set(lat, r.latent));
    ASSERT_OK(semd_tensor_set(img, r.image));
    golden_expect(g, "final_latent", lat, TOL_STREAM);
    golden_expect(g, "image", img, TOL_STREAM);
    semd_tensor_free(lat), semd_tensor_free(img);
    free(r.latent), free(r.image), free(init), free(boot), free(steps);
    semd_tokenizer_free(m.tokenizer), semd_clip_free(m.clip), semd_unet_free(m.unet);
    semd_lcm_scheduler_free(m.scheduler), semd_taesd_free(m.taesd), semd_vae_free(m.vae);
    semd_checkpoint_free(ck), semd_backend_free(be), semd_scene_free(s), semd_st_close(g);
}

TEST(single_generated_background) { check_single("single_generated_bg"); }
TEST(single_image_background) { check_single("single_image_bg"); }
TEST(single_white_background) { check_single("single_white"); }
TEST(single_cfg_colour_background) { check_single("single_cfg"); }

#define PARITY(scene)                                                       \
    TEST(scene##_default) { check_golden(#scene ".default"); }              \
    TEST(scene##_reference) { check_golden(#scene ".reference"); }

PARITY(one_layer)
PARITY(one_layer_vae)
PARITY(three_layers_blur)
PARITY(discrete)
PARITY(bootstrap2)
PARITY(background_image)
PARITY(cfg_negative)
PARITY(edits)
PARITY(zero_layers)

#define ENTRIES(scene) TEST_ENTRY(scene##_default), TEST_ENTRY(scene##_reference)

static const struct semd_test tests[] = {
    ENTRIES(one_layer),  ENTRIES(one_layer_vae),    ENTRIES(three_layers_blur),
    ENTRIES(discrete),   ENTRIES(bootstrap2),       ENTRIES(background_image),
    ENTRIES(cfg_negative), ENTRIES(edits),          ENTRIES(zero_layers),
    TEST_ENTRY(single_generated_background), TEST_ENTRY(single_image_background),
    TEST_ENTRY(single_white_background), TEST_ENTRY(single_cfg_colour_background),
    {0},
};

SEMD_TEST_MAIN(tests)
