/* Control-message validation: each rule rejects with a message naming the field. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "semd/status.h"
#include "validate.h"

static semd_limits limits(void)
{
    semd_limits l;
    semd_limits_default(&l);
    return l;
}

#define REJECT(expr, code, text)                   \
    do {                                           \
        ASSERT_EQ((expr), (code));                 \
        ASSERT_CONTAINS(semd_last_error(), (text)); \
    } while (0)

TEST(text)
{
    semd_limits l = limits();
    ASSERT_OK(semd_validate_text("p", "a café, 猫 and 🐱", &l));
    ASSERT_OK(semd_validate_text("p", NULL, &l));
    REJECT(semd_validate_text("layer.prompt", "ok \xff bad", &l), SEMD_EINVAL, "layer.prompt: invalid UTF-8 at byte 3");
    REJECT(semd_validate_text("p", "\xc0\xaf", &l), SEMD_EINVAL, "byte 0");           /* overlong '/' */
    REJECT(semd_validate_text("p", "\xed\xa0\x80", &l), SEMD_EINVAL, "byte 0");       /* a surrogate */
    REJECT(semd_validate_text("p", "\xf4\x90\x80\x80", &l), SEMD_EINVAL, "byte 0");   /* > U+10FFFF */
    REJECT(semd_validate_text("p", "abc\xe2\x82", &l), SEMD_EINVAL, "byte 3");        /* truncated */
    char *big = malloc(l.max_text + 2);
    memset(big, 'a', l.max_text + 1);
    big[l.max_text + 1] = '\0';
    REJECT(semd_validate_text("p", big, &l), SEMD_EINVAL, "at most 4096");
    free(big);
}

TEST(create_canvas)
{
    semd_limits l = limits();
    Semdraw__V1__CreateCanvas m = SEMDRAW__V1__CREATE_CANVAS__INIT;
    REJECT(semd_validate_create(&m, &l), SEMD_EINVAL, "width and height are required");
    m.has_width = m.has_height = 1, m.width = 512, m.height = 512;
    ASSERT_OK(semd_validate_create(&m, &l));
    m.width = 500;
    REJECT(semd_validate_create(&m, &l), SEMD_ESHAPE, "500x512");
    m.width = 4096;
    REJECT(semd_validate_create(&m, &l), SEMD_ESHAPE, "8..2048");
    m.width = 512;
    uint32_t ts[3] = {0, 12, 9};
    m.timesteps = ts, m.n_timesteps = 3;
    REJECT(semd_validate_create(&m, &l), SEMD_EINVAL, "timesteps[2] = 9");
    ts[2] = 50;
    REJECT(semd_validate_create(&m, &l), SEMD_EINVAL, "timesteps[2] = 50");
    ts[2] = 37;
    ASSERT_OK(semd_validate_create(&m, &l));
    m.has_ring_slots = 1, m.ring_slots = 1;
    REJECT(semd_validate_create(&m, &l), SEMD_EINVAL, "ring_slots");
    m.ring_slots = 4, m.has_profile = 1, m.profile = (Semdraw__V1__Profile)7;
    REJECT(semd_validate_create(&m, &l), SEMD_EINVAL, "unknown profile");
}

TEST(masks)
{
    uint8_t alpha[64 * 64] = {0}, out[64 * 64];
    Semdraw__V1__Mask m = SEMDRAW__V1__MASK__INIT;
    m.has_width = m.has_height = 1, m.width = 64, m.height = 64;
    REJECT(semd_mask_decode(&m, 64, 64, out), SEMD_EINVAL, "exactly one of alpha and rle");
    m.has_alpha = 1, m.alpha.data = alpha, m.alpha.len = sizeof alpha;
    alpha[5] = 200;
    ASSERT_OK(semd_mask_decode(&m, 64, 64, out));
    ASSERT_EQ(out[5], 200);
    REJECT(semd_mask_decode(&m, 64, 48, out), SEMD_ESHAPE, "the canvas is 64x48");
    m.alpha.len = 100;
    REJECT(semd_mask_decode(&m, 64, 64, out), SEMD_ESHAPE, "mask.alpha: 100 bytes");
    m.has_alpha = 0, m.has_rle = 1;
    uint8_t rle[40];
    for (int i = 0; i < 16; i++) rle[2 * i] = 255, rle[2 * i + 1] = (uint8_t)i; /* 16 x 255 = 4080 */
    rle[32] = 16, rle[33] = 9;                                                   /* + 16 = 4096 */
    m.rle.data = rle, m.rle.len = 34;
    ASSERT_OK(semd_mask_decode(&m, 64, 64, out));
    ASSERT(out[0] == 0 && out[255] == 1 && out[4095] == 9);
    m.rle.len = 32;
    REJECT(semd_mask_decode(&m, 64, 64, out), SEMD_ESHAPE, "expands to 4080 bytes, needs 4096");
    rle[34] = 1, rle[35] = 0, m.rle.len = 36;
    REJECT(semd_mask_decode(&m, 64, 64, out), SEMD_ESHAPE, "expands past 4096");
    rle[0] = 0, m.rle.len = 34;
    REJECT(semd_mask_decode(&m, 64, 64, out), SEMD_EINVAL, "zero count at byte 0");
    m.rle.len = 33;
    REJECT(semd_mask_decode(&m, 64, 64, out), SEMD_EINVAL, "odd length");
}

TEST(layers_backgrounds_params_streams)
{
    semd_limits l = limits();
    Semdraw__V1__SetLayer s = SEMDRAW__V1__SET_LAYER__INIT;
    REJECT(semd_validate_set_layer(&s, 64, 64, &l), SEMD_EINVAL, "a new layer needs a prompt");
    s.prompt = "a cat";
    s.has_mask_strength = 1, s.mask_strength = 1.5f;
    REJECT(semd_validate_set_layer(&s, 64, 64, &l), SEMD_EINVAL, "set_layer.mask_strength: 1.5");
    s.mask_strength = NAN;
    REJECT(semd_validate_set_layer(&s, 64, 64, &l), SEMD_EINVAL, "mask_strength");
    s.mask_strength = 0.9f, s.has_prompt_strength = 1, s.prompt_strength = -0.1f;
    REJECT(semd_validate_set_layer(&s, 64, 64, &l), SEMD_EINVAL, "prompt_strength");
    s.prompt_strength = 0.95f;
    ASSERT_OK(semd_validate_set_layer(&s, 64, 64, &l));

    Semdraw__V1__SetBackground b = SEMDRAW__V1__SET_BACKGROUND__INIT;
    uint8_t rgb[10];
    b.has_rgb = 1, b.rgb.data = rgb, b.rgb.len = sizeof rgb;
    REJECT(semd_validate_background(&b, 64, 64, &l), SEMD_ESHAPE, "set_background.rgb: 10 bytes");
    b.has_rgb = 0, b.has_color = 1, b.color = 0x1000000;
    REJECT(semd_validate_background(&b, 64, 64, &l), SEMD_EINVAL, "0xRRGGBB");

    Semdraw__V1__SetCanvasParams p = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
    p.has_bootstrap_steps = 1, p.bootstrap_steps = 6;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "exceeds the canvas's 5 timesteps");
    p.bootstrap_steps = 2, p.has_cover_alpha = 1, p.cover_alpha = 2;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "cover_alpha");
    p.cover_alpha = 0.3f;
    ASSERT_OK(semd_validate_params(&p, 5));

    Semdraw__V1__StartStream st = SEMDRAW__V1__START_STREAM__INIT;
    st.has_target_fps = 1, st.target_fps = 1000;
    REJECT(semd_validate_start(&st, &l), SEMD_EINVAL, "target_fps");
    st.target_fps = 30;
    ASSERT_OK(semd_validate_start(&st, &l));
}

/* Every live canvas parameter is range-checked before it becomes an edit. */
TEST(live_params)
{
    Semdraw__V1__SetCanvasParams p = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
    ASSERT_OK(semd_validate_params(&p, 5)); /* nothing to change */
    p.has_guidance_scale = 1, p.guidance_scale = 31;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "set_params.guidance_scale: 31 outside [0, 30]");
    p.guidance_scale = -1;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "set_params.guidance_scale");
    p.guidance_scale = 7.5f, p.has_embedded_guidance_scale = 1, p.embedded_guidance_scale = INFINITY;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "set_params.embedded_guidance_scale");
    p.embedded_guidance_scale = 8.5f, p.has_bootstrap_mix_steps = 1, p.bootstrap_mix_steps = NAN;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "set_params.bootstrap_mix_steps");
    p.bootstrap_mix_steps = 2.5f, p.has_mask_type = 1, p.mask_type = (Semdraw__V1__MaskType)3;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "set_params.mask_type: unknown value 3");
    p.mask_type = (Semdraw__V1__MaskType)-1;
    REJECT(semd_validate_params(&p, 5), SEMD_EINVAL, "set_params.mask_type: unknown value -1");
    p.mask_type = SEMDRAW__V1__MASK_TYPE__MASK_DISCRETE, p.has_bootstrap_steps = 1, p.bootstrap_steps = 5;
    p.has_cover_alpha = 1, p.cover_alpha = 1.0f, p.has_autoflush = 1, p.autoflush = 1;
    ASSERT_OK(semd_validate_params(&p, 5)); /* every bound is inclusive */
}

static const struct semd_test tests[] = {
    TEST_ENTRY(text),
    TEST_ENTRY(create_canvas),
    TEST_ENTRY(masks),
    TEST_ENTRY(layers_backgrounds_params_streams),
    TEST_ENTRY(live_params),
    {0},
};

SEMD_TEST_MAIN(tests)
