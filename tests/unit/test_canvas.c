/*
 * The SemanticDraw canvas on the tiny model: edit costs, several canvases in
 * one step, the zero-layer limit, live parameters and the errors. Frame-by-frame parity with
 * the reference implementation is in tests/cli (render --scene) and
 * test_semanticdraw.
 */
#include "tiny_models.h"
#include "semd/canvas.h"

#include <math.h>

static semd_canvas *canvas(models *s, int w, int h, uint64_t seed)
{
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = w, p.height = h, p.seed = seed;
    semd_canvas *c;
    ASSERT_OK(semd_canvas_new(&s->m, &p, &c));
    return c;
}

static int add_disc(semd_canvas *c, const char *prompt, int w, int h, int cx, int cy, int r)
{
    uint8_t *m = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) m[y * w + x] = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r ? 255 : 0;
    semd_layer_desc d = {.prompt = prompt, .mask = m, .mask_std = 8, .mask_strength = 1, .prompt_strength = 0.95f};
    int id;
    ASSERT_OK(semd_canvas_add_layer(c, &d, &id));
    free(m);
    return id;
}

TEST(mask_edits_never_encode_text)
{
    models s = tiny_models_load(0);
    semd_canvas *c = canvas(&s, 64, 64, 1);
    int a = add_disc(c, "a red apple", 64, 64, 20, 30, 16);
    add_disc(c, "a blue vase", 64, 64, 40, 30, 16);
    semd_canvas_stats before, after;
    semd_frame f;
    ASSERT_OK(semd_canvas_step(&c, 1, 1, &f));
    semd_canvas_stats_get(c, &before);
    uint8_t *m = calloc(64 * 64, 1);
    memset(m + 64 * 10, 255, 64 * 20);
    semd_layer_desc d = {.mask = m, .mask_std = 4, .mask_strength = 0.9f};
    ASSERT_OK(semd_canvas_update_layer(c, a, &d, SEMD_LAYER_MASK | SEMD_LAYER_MASK_STD | SEMD_LAYER_MASK_STRENGTH));
    ASSERT_OK(semd_canvas_step(&c, 1, 1, &f));
    semd_canvas_stats_get(c, &after);
    ASSERT_EQ(after.text_encodes, before.text_encodes);      /* the proof: no text encoder pass */
    ASSERT_EQ(after.mask_updates, before.mask_updates + 1);
    d.prompt = "a green pear";
    ASSERT_OK(semd_canvas_update_layer(c, a, &d, SEMD_LAYER_PROMPT));
    semd_canvas_stats_get(c, &after);
    ASSERT_EQ(after.text_encodes, before.text_encodes + 1);  /* a prompt edit: that one prompt */
    ASSERT_EQ(after.mask_updates, before.mask_updates + 1);  /* and no mask work */
    free(m);
    semd_canvas_free(c);
    tiny_models_unload(&s);
}

/* Three canvases in one step (two share a UNet call) give what each gives alone (section 7.6). */
TEST(canvases_stepped_together_equal_alone)
{
    models s = tiny_models_load(0);
    semd_canvas *a1 = canvas(&s, 64, 64, 7), *b1 = canvas(&s, 64, 64, 9), *c1 = canvas(&s, 48, 32, 3);
    semd_canvas *a2 = canvas(&s, 64, 64, 7), *b2 = canvas(&s, 64, 64, 9), *c2 = canvas(&s, 48, 32, 3);
    semd_canvas *pairs[3][2] = {{a1, a2}, {b1, b2}, {c1, c2}};
    for (int j = 0; j < 2; j++) {
        add_disc(pairs[0][j], "a red apple", 64, 64, 20, 30, 16);
        add_disc(pairs[1][j], "a cat", 64, 64, 32, 32, 20);
        add_disc(pairs[1][j], "a hat", 64, 64, 32, 16, 10);
        add_disc(pairs[2][j], "a boat", 48, 32, 24, 16, 12);
    }
    for (int frame = 0; frame < 6; frame++) {
        semd_canvas *together[3] = {a1, b1, c1};
        semd_frame ft[3], fa[3];
        ASSERT_OK(semd_canvas_step(together, 3, 1, ft));
        for (int i = 0; i < 3; i++) {
            ASSERT_OK(semd_canvas_step(&pairs[i][1], 1, 1, &fa[i]));
            const size_t n = (size_t)4 * semd_canvas_params_of(pairs[i][0])->width / 8 *
                             semd_canvas_params_of(pairs[i][0])->height / 8;
            /* Not bitwise: OpenBLAS picks other micro-kernels for other batch sizes (a single
             * shared call already differs by ~1e-6, with one thread too), and the tiny random
             * UNet amplifies that; 1e-4 is the fp32 parity tolerance of semanticdraw.md 16.2. */
            ASSERT_REL_L2(ft[i].latent, fa[i].latent, n, 1e-4);
            ASSERT_EQ(ft[i].warmup, frame < 4);
        }
    }
    for (int i = 0; i < 3; i++) semd_canvas_free(pairs[i][0]), semd_canvas_free(pairs[i][1]);
    tiny_models_unload(&s);
}

/* With no layers every slot is the background (S3): the output is the background latent. */
TEST(zero_layers_give_the_background)
{
    models s = tiny_models_load(0);
    semd_canvas *c = canvas(&s, 64, 48, 2);
    uint8_t *rgb = malloc(64 * 48 * 3);
    for (int i = 0; i < 64 * 48 * 3; i++) rgb[i] = (uint8_t)(i * 7);
    ASSERT_OK(semd_canvas_set_background(c, "a meadow", NULL, rgb));
    semd_frame f1, f2;
    ASSERT_OK(semd_canvas_step(&c, 1, 1, &f1));
    float *first = malloc(4 * 8 * 6 * sizeof(float));
    memcpy(first, f1.latent, 4 * 8 * 6 * sizeof(float));
    int id = add_disc(c, "a cow", 64, 48, 32, 24, 10);
    ASSERT_OK(semd_canvas_remove_layer(c, id));
    ASSERT_EQ(semd_canvas_layer_count(c), 0);
    ASSERT_OK(semd_canvas_step(&c, 1, 1, &f2));
    ASSERT_REL_L2(f2.latent, first, 4 * 8 * 6, 0); /* the same background latent */
    free(first), free(rgb);
    semd_canvas_free(c);
    tiny_models_unload(&s);
}

TEST(errors)
{
    models s = tiny_models_load(0);
    semd_canvas_params p;
    semd_canvas *c;
    semd_canvas_params_default(&p);
    p.width = p.height = 64;
    p.timesteps[2] = 3; /* [0,4,3,...]: not increasing */
    ASSERT_EQ(semd_canvas_new(&s.m, &p, &c), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "timesteps must increase");
    semd_canvas_params_default(&p);
    p.width = 60;
    ASSERT_EQ(semd_canvas_new(&s.m, &p, &c), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "multiples of 8");
    semd_canvas_params_default(&p);
    p.width = p.height = 64;
    p.decoder = SEMD_DECODER_VAE;
    ASSERT_EQ(semd_canvas_new(&s.m, &p, &c), SEMD_EINVAL);
    c = canvas(&s, 64, 64, 1);
    semd_layer_desc bad = {.prompt = "x", .mask_std = -1, .mask_strength = 1, .prompt_strength = 1};
    int id;
    ASSERT_EQ(semd_canvas_add_layer(c, &bad, &id), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "mask_std");
    ASSERT_EQ(semd_canvas_remove_layer(c, 5), SEMD_ENOTFOUND);
    semd_layer_desc ok = {.prompt = "x", .mask_std = 1, .mask_strength = 1, .prompt_strength = 1};
    for (int i = 0; i < SEMD_CANVAS_MAX_LAYERS; i++) ASSERT_OK(semd_canvas_add_layer(c, &ok, &id));
    ASSERT_EQ(semd_canvas_add_layer(c, &ok, &id), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "at most");
    semd_frame f;
    semd_canvas *twice[2] = {c, c};
    ASSERT_EQ(semd_canvas_step(twice, 2, 0, (semd_frame[2]){f, f}), SEMD_EINVAL);
    semd_canvas_free(c);
    tiny_models_unload(&s);
}

/* ---- live parameters (semd_canvas_set_params) ---- */

#define LW 64
#define LH 48
#define LN ((size_t)4 * (LW / 8) * (LH / 8))

static semd_canvas *canvas_with(models *s, const semd_canvas_params *p)
{
    semd_canvas *c;
    ASSERT_OK(semd_canvas_new(&s->m, p, &c));
    return c;
}

static semd_canvas_params live_base(void)
{
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = LW, p.height = LH, p.seed = 11;
    return p;
}

/* A disc layer with a sharp edge (std 2) and a negative prompt. */
static void add_sharp_disc(semd_canvas *c, const char *prompt, const char *negative, int cx, int cy, int r)
{
    uint8_t *m = malloc((size_t)LW * LH);
    for (int y = 0; y < LH; y++)
        for (int x = 0; x < LW; x++) m[y * LW + x] = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r ? 255 : 0;
    semd_layer_desc d = {.prompt = prompt, .negative = negative, .mask = m, .mask_std = 2, .mask_strength = 1,
                         .prompt_strength = 0.95f};
    int id;
    ASSERT_OK(semd_canvas_add_layer(c, &d, &id));
    free(m);
}

/*
 * Two overlapping layers with negatives on a coloured background, so that
 * every live parameter shows: cover alpha needs the overlap, the mix steps a
 * background that is not white, CFG the negatives, and bootstrapping masks
 * that reach the slots k >= 1 (on so small a canvas a std-8 disc stays below
 * their noise levels and quantises to zero there). Layers are only added: no
 * reference-profile P4 edit, whose incremental counts a full re-run replaces.
 */
static void live_scene(semd_canvas *c)
{
    const uint8_t sky[3] = {70, 130, 210};
    ASSERT_OK(semd_canvas_set_background_color(c, "a blue sky", "fog", sky));
    add_sharp_disc(c, "a red kite", "blurry", 24, 24, 16);
    add_sharp_disc(c, "a white bird", NULL, 42, 22, 14);
}

static void step1(semd_canvas *c, semd_frame *f) { ASSERT_OK(semd_canvas_step(&c, 1, 0, f)); }

static void expect_same_live_fields(const semd_canvas_params *a, const semd_canvas_params *b)
{
    ASSERT(a->guidance_scale == b->guidance_scale && a->embedded_guidance_scale == b->embedded_guidance_scale);
    ASSERT_EQ(a->bootstrap_steps, b->bootstrap_steps);
    ASSERT(a->bootstrap_mix_steps == b->bootstrap_mix_steps && a->cover_alpha == b->cover_alpha);
    ASSERT_EQ(a->mask_type, b->mask_type);
    ASSERT_EQ(a->autoflush, b->autoflush);
}

/*
 * A canvas created with `base` and streamed a little, then changed live to
 * `changed` (the fields named by `fields`) and restarted, gives exactly the
 * frames of a canvas created with `changed` (restarted alike), and not those
 * of an unchanged one once the work of every slot has reached the output. Each canvas steps alone: the same batch sizes, so the
 * same arithmetic.
 */
static void live_equals_created(models *s, const semd_canvas_params *base, const semd_canvas_params *changed,
                                unsigned fields)
{
    semd_canvas *live = canvas_with(s, base), *made = canvas_with(s, changed), *same = canvas_with(s, base);
    semd_canvas *all[3] = {live, made, same};
    semd_frame f[3];
    for (int i = 0; i < 3; i++) live_scene(all[i]);
    for (int frame = 0; frame < 2; frame++)
        for (int i = 0; i < 3; i++) step1(all[i], &f[i]);
    ASSERT_OK(semd_canvas_set_params(live, changed, fields));
    expect_same_live_fields(semd_canvas_params_of(live), changed);
    for (int i = 0; i < 3; i++) ASSERT_OK(semd_canvas_reset_latent(all[i]));
    double moved = 0.0;
    for (int frame = 0; frame < base->n_timesteps; frame++) { /* until slot 0's work is out */
        for (int i = 0; i < 3; i++) step1(all[i], &f[i]);
        ASSERT_REL_L2(f[0].latent, f[1].latent, LN, 0);
        moved = semd_rel_l2(f[2].latent, f[1].latent, LN);
    }
    if (!(moved > 1e-3)) FAIL("the change had no effect (relative L2 %.3g against the unchanged canvas)", moved);
    for (int i = 0; i < 3; i++) semd_canvas_free(all[i]);
}

TEST(live_guidance_switches_cfg_like_created)
{
    models s = tiny_models_load(0);
    semd_canvas_params off = live_base(), on = off, stronger = off;
    on.guidance_scale = 3.0f;
    live_equals_created(&s, &off, &on, SEMD_CANVAS_PARAM_GUIDANCE_SCALE);  /* CFG on: negatives encoded now */
    live_equals_created(&s, &on, &off, SEMD_CANVAS_PARAM_GUIDANCE_SCALE);  /* CFG off: the batch halves */
    stronger.guidance_scale = 6.0f;
    live_equals_created(&s, &on, &stronger, SEMD_CANVAS_PARAM_GUIDANCE_SCALE); /* CFG stays on */
    tiny_models_unload(&s);
}

TEST(live_embedded_guidance_like_created)
{
    models s = tiny_models_load(0);
    semd_canvas_params base = live_base(), changed = base;
    changed.embedded_guidance_scale = 3.0f; /* the tiny UNet has time_cond_proj */
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_EMBEDDED_GUIDANCE_SCALE);
    tiny_models_unload(&s);
}

TEST(live_bootstrap_like_created)
{
    models s = tiny_models_load(0);
    semd_canvas_params base = live_base(), changed = base;
    changed.bootstrap_steps = 3;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS);
    changed.bootstrap_steps = 0; /* neither bootstrapping nor centering */
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS);
    base.bootstrap_steps = changed.bootstrap_steps = 3; /* the mix reaches the slots k >= 1 only */
    changed.bootstrap_mix_steps = 2.5f;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS);
    tiny_models_unload(&s);
}

TEST(live_masks_like_created)
{
    models s = tiny_models_load(0);
    semd_canvas_params base = live_base(), changed = base;
    changed.mask_type = SEMD_MASK_DISCRETE;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_MASK_TYPE);
    changed.mask_type = SEMD_MASK_SEMI_CONTINUOUS;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_MASK_TYPE);
    changed = base, changed.cover_alpha = 0.9f;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_COVER_ALPHA);
    base.profile = changed.profile = SEMD_PROFILE_REFERENCE, changed.cover_alpha = 0.0f;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_COVER_ALPHA);
    tiny_models_unload(&s);
}

TEST(live_params_together_like_created)
{
    models s = tiny_models_load(0);
    semd_canvas_params base = live_base(), changed = base;
    changed.guidance_scale = 2.5f, changed.embedded_guidance_scale = 4.0f, changed.bootstrap_steps = 2;
    changed.bootstrap_mix_steps = 1.5f, changed.mask_type = SEMD_MASK_DISCRETE, changed.cover_alpha = 0.6f;
    live_equals_created(&s, &base, &changed, SEMD_CANVAS_PARAM_ALL);
    tiny_models_unload(&s);
}

/* Autoflush on: the next step flushes (T unpublished frames) unless the canvas is flushed (S1, 7.5). */
TEST(live_autoflush)
{
    models s = tiny_models_load(0);
    semd_canvas_params base = live_base(), changed = base;
    changed.autoflush = 1;
    semd_canvas *live = canvas_with(&s, &base), *made = canvas_with(&s, &changed);
    semd_frame f[2];
    ASSERT_OK(semd_canvas_set_params(live, &changed, SEMD_CANVAS_PARAM_AUTOFLUSH)); /* before any frame */
    for (int frame = 0; frame < 3; frame++) {
        step1(live, &f[0]), step1(made, &f[1]);
        ASSERT_REL_L2(f[0].latent, f[1].latent, LN, 0);
    }
    semd_canvas_free(live), semd_canvas_free(made);

    const long T = base.n_timesteps;
    semd_canvas *c = canvas_with(&s, &base);
    semd_canvas_stats st;
    live_scene(c);
    step1(c, &f[0]), step1(c, &f[0]);
    ASSERT_OK(semd_canvas_set_params(c, &changed, SEMD_CANVAS_PARAM_AUTOFLUSH)); /* never flushed yet */
    step1(c, &f[0]);
    semd_canvas_stats_get(c, &st);
    ASSERT_EQ(st.frames, 2 + T + 1);
    ASSERT_EQ(f[0].warmup, 0);
    changed.cover_alpha = 0.7f; /* parameter changes do not clear "flushed" (section 9.1) */
    ASSERT_OK(semd_canvas_set_params(c, &changed, SEMD_CANVAS_PARAM_COVER_ALPHA));
    step1(c, &f[0]);
    semd_canvas_stats_get(c, &st);
    ASSERT_EQ(st.frames, 2 + T + 2);
    ASSERT_OK(semd_canvas_reset_latent(c));
    ASSERT_OK(semd_canvas_set_params(c, &base, SEMD_CANVAS_PARAM_AUTOFLUSH)); /* off again: no flush */
    step1(c, &f[0]);
    semd_canvas_stats_get(c, &st);
    ASSERT_EQ(st.frames, 2 + T + 3);
    ASSERT_EQ(f[0].warmup, 1);
    semd_canvas_free(c);
    tiny_models_unload(&s);
}

/* A live change keeps the in-flight slots: the very next frame shows it and is no warm-up frame. */
TEST(live_params_keep_the_stream)
{
    models s = tiny_models_load(0);
    semd_canvas_params base = live_base(), changed = base;
    changed.guidance_scale = 3.0f, changed.mask_type = SEMD_MASK_DISCRETE, changed.bootstrap_steps = 2;
    semd_canvas *a = canvas_with(&s, &base), *b = canvas_with(&s, &base);
    semd_frame fa, fb;
    live_scene(a), live_scene(b);
    for (int frame = 0; frame < base.n_timesteps; frame++) step1(a, &fa), step1(b, &fb);
    ASSERT_EQ(fa.warmup, 0);
    ASSERT_REL_L2(fa.latent, fb.latent, LN, 0);
    ASSERT_OK(semd_canvas_set_params(a, &changed, SEMD_CANVAS_PARAM_ALL));
    step1(a, &fa), step1(b, &fb);
    ASSERT_EQ(fa.warmup, 0);
    ASSERT(semd_rel_l2(fa.latent, fb.latent, LN) > 1e-3);
    semd_canvas_stats st;
    semd_canvas_stats_get(a, &st);
    ASSERT_EQ(st.frames, base.n_timesteps + 1);
    semd_canvas_free(a), semd_canvas_free(b);
    tiny_models_unload(&s);
}

/* Only what a change needs: negatives once when CFG first goes on, masks for mask settings, nothing twice. */
TEST(live_param_costs)
{
    models s = tiny_models_load(0);
    semd_canvas_params p = live_base();
    semd_canvas *c = canvas_with(&s, &p);
    live_scene(c);
    semd_canvas_stats a, b;
    semd_canvas_stats_get(c, &a);
    p.guidance_scale = 3.0f;
    ASSERT_OK(semd_canvas_set_params(c, &p, SEMD_CANVAS_PARAM_GUIDANCE_SCALE));
    semd_canvas_stats_get(c, &b);
    ASSERT_EQ(b.text_encodes, a.text_encodes + 3); /* the background's negative and the two layers' */
    ASSERT_EQ(b.mask_updates, a.mask_updates);
    p.guidance_scale = 1.0f;
    ASSERT_OK(semd_canvas_set_params(c, &p, SEMD_CANVAS_PARAM_GUIDANCE_SCALE));
    p.guidance_scale = 2.0f; /* back on: the negatives were kept */
    ASSERT_OK(semd_canvas_set_params(c, &p, SEMD_CANVAS_PARAM_GUIDANCE_SCALE));
    p.bootstrap_mix_steps = 3.0f, p.embedded_guidance_scale = 5.0f, p.bootstrap_steps = 2;
    ASSERT_OK(semd_canvas_set_params(c, &p, SEMD_CANVAS_PARAM_ALL)); /* mask settings unchanged */
    semd_canvas_stats_get(c, &a);
    ASSERT_EQ(a.text_encodes, b.text_encodes);
    ASSERT_EQ(a.mask_updates, b.mask_updates);
    p.mask_type = SEMD_MASK_DISCRETE, p.cover_alpha = 0.5f;
    ASSERT_OK(semd_canvas_set_params(c, &p, SEMD_CANVAS_PARAM_MASK_TYPE | SEMD_CANVAS_PARAM_COVER_ALPHA));
    semd_canvas_stats_get(c, &b);
    ASSERT_EQ(b.mask_updates, a.mask_updates + 1); /* one run for both */
    ASSERT_EQ(b.text_encodes, a.text_encodes);
    semd_frame f;
    step1(c, &f);
    semd_canvas_free(c);
    tiny_models_unload(&s);
}

typedef struct bad_value {
    unsigned field;
    void (*spoil)(semd_canvas_params *p);
    const char *message;
} bad_value;

static void guidance_negative(semd_canvas_params *p) { p->guidance_scale = -0.5f; }
static void guidance_huge(semd_canvas_params *p) { p->guidance_scale = 100.0f; }
static void guidance_nan(semd_canvas_params *p) { p->guidance_scale = NAN; }
static void embedded_inf(semd_canvas_params *p) { p->embedded_guidance_scale = INFINITY; }
static void steps_negative(semd_canvas_params *p) { p->bootstrap_steps = -1; }
static void mix_nan(semd_canvas_params *p) { p->bootstrap_mix_steps = NAN; }
static void mix_negative(semd_canvas_params *p) { p->bootstrap_mix_steps = -0.5f; }
static void mask_type_unknown(semd_canvas_params *p) { p->mask_type = (semd_mask_type)3; }
static void cover_above(semd_canvas_params *p) { p->cover_alpha = 1.5f; }
static void cover_nan(semd_canvas_params *p) { p->cover_alpha = NAN; }

/* Invalid values: refused as semd_canvas_new refuses them, naming the field, and nothing changes. */
TEST(live_params_refused)
{
    static const bad_value bad[] = {
        {SEMD_CANVAS_PARAM_GUIDANCE_SCALE, guidance_negative, "guidance_scale -0.5 outside [0, 100)"},
        {SEMD_CANVAS_PARAM_GUIDANCE_SCALE, guidance_huge, "guidance_scale 100"},
        {SEMD_CANVAS_PARAM_GUIDANCE_SCALE, guidance_nan, "guidance_scale nan"},
        {SEMD_CANVAS_PARAM_EMBEDDED_GUIDANCE_SCALE, embedded_inf, "embedded_guidance_scale inf is not a finite"},
        {SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS, steps_negative, "bootstrap_steps -1 is negative"},
        {SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS, mix_nan, "bootstrap_mix_steps nan"},
        {SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS, mix_negative, "bootstrap_mix_steps -0.5"},
        {SEMD_CANVAS_PARAM_MASK_TYPE, mask_type_unknown, "mask_type 3 is not"},
        {SEMD_CANVAS_PARAM_COVER_ALPHA, cover_above, "cover_alpha 1.5 outside [0, 1]"},
        {SEMD_CANVAS_PARAM_COVER_ALPHA, cover_nan, "cover_alpha nan"},
    };
    models s = tiny_models_load(0);
    const semd_canvas_params base = live_base();
    semd_canvas *c = canvas_with(&s, &base), *twin = canvas_with(&s, &base), *made;
    live_scene(c), live_scene(twin);
    semd_canvas_stats before, after;
    semd_canvas_stats_get(c, &before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        semd_canvas_params p = base; /* valid changes of every other field ride along, and must not land */
        p.guidance_scale = 3.0f, p.embedded_guidance_scale = 2.0f, p.bootstrap_steps = 2;
        p.bootstrap_mix_steps = 2.0f, p.mask_type = SEMD_MASK_DISCRETE, p.cover_alpha = 0.8f, p.autoflush = 1;
        bad[i].spoil(&p);
        ASSERT_EQ(semd_canvas_set_params(c, &p, SEMD_CANVAS_PARAM_ALL), SEMD_EINVAL);
        ASSERT_CONTAINS(semd_last_error(), bad[i].message);
        ASSERT_EQ(semd_canvas_set_params(c, &p, bad[i].field), SEMD_EINVAL);
        expect_same_live_fields(semd_canvas_params_of(c), &base);
        p.width = LW, p.height = LH; /* semd_canvas_new refuses the same value with the same words */
        ASSERT_EQ(semd_canvas_new(&s.m, &p, &made), SEMD_EINVAL);
        ASSERT_CONTAINS(semd_last_error(), bad[i].message);
    }
    semd_canvas_params p = base;
    ASSERT_EQ(semd_canvas_set_params(c, &p, 1u << 12), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "unknown field bits 0x1000");
    ASSERT_EQ(semd_canvas_set_params(c, NULL, SEMD_CANVAS_PARAM_ALL), SEMD_EINVAL);
    semd_canvas_stats_get(c, &after);
    ASSERT_EQ(after.text_encodes, before.text_encodes);
    ASSERT_EQ(after.mask_updates, before.mask_updates);
    semd_frame f1, f2;
    for (int frame = 0; frame < 3; frame++) {
        step1(c, &f1), step1(twin, &f2);
        ASSERT_REL_L2(f1.latent, f2.latent, LN, 0); /* the same canvas as one never asked */
    }
    semd_canvas_free(c), semd_canvas_free(twin);
    tiny_models_unload(&s);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(mask_edits_never_encode_text),
    TEST_ENTRY(canvases_stepped_together_equal_alone),
    TEST_ENTRY(zero_layers_give_the_background),
    TEST_ENTRY(errors),
    TEST_ENTRY(live_guidance_switches_cfg_like_created),
    TEST_ENTRY(live_embedded_guidance_like_created),
    TEST_ENTRY(live_bootstrap_like_created),
    TEST_ENTRY(live_masks_like_created),
    TEST_ENTRY(live_params_together_like_created),
    TEST_ENTRY(live_autoflush),
    TEST_ENTRY(live_params_keep_the_stream),
    TEST_ENTRY(live_param_costs),
    TEST_ENTRY(live_params_refused),
    {0},
};

SEMD_TEST_MAIN(tests)
