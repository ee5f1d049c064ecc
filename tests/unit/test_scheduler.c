/*
 * Tests for the noise schedule, the LCM scheduler and the timestep/guidance
 * embeddings against goldens from diffusers 0.32.2
 * (tools/reference/gen_scheduler_goldens.py) and the closed-form values of
 * models.md §2.7, §6.1 and §6.2.
 *
 * Tolerances: alphas_cumprod, the timesteps and c_skip replicate torch's
 * float32 operations one for one and must match bit for bit; so must the
 * step's elementwise arithmetic when fed torch's own per-step scalars. Those
 * scalars involve sqrt, and torch's CPU sqrt (MKL) is not correctly rounded,
 * so semdraw's (IEEE) sqrt, c_out and step results may differ by an ulp per
 * scalar: checked as <= 1-2 ulps and relative L2 <= 1e-6 (measured <= 1e-7).
 * The embeddings depend on float32 exp, where the same holds for MKL's exp;
 * see check_embedding() for the bound that follows from that.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "semd/safetensors.h"
#include "semd/scheduler.h"
#include "semd/status.h"

#include <float.h>
#include <limits.h>
#include <stdint.h>

/* ---- helpers ---- */

static semd_st_file *golden(void)
{
    semd_st_file *f = NULL;
    ASSERT_OK(semd_st_open(semd_test_path(semd_test_data_dir(), "golden/lcm_scheduler.safetensors"), &f));
    return f;
}

static const semd_st_tensor *tensor(semd_st_file *f, const char *name, uint64_t numel)
{
    const semd_st_tensor *t = semd_st_find(f, name);
    if (!t) FAIL("golden tensor %s is missing", name);
    if (numel && t->numel != numel)
        FAIL("golden tensor %s has %llu elements, expected %llu", name,
             (unsigned long long)t->numel, (unsigned long long)numel);
    return t;
}

/* A golden F32 tensor as a malloc'd array (numel 0: any size, returned in *n). */
static float *load_f32(semd_st_file *f, const char *name, uint64_t numel, size_t *n)
{
    const semd_st_tensor *t = tensor(f, name, numel);
    float *p = malloc((t->numel ? t->numel : 1) * sizeof *p);
    ASSERT(p);
    ASSERT_OK(semd_st_read_f32(t, p));
    if (n) *n = (size_t)t->numel;
    return p;
}

/* A golden I64 tensor as a malloc'd int array. */
static int *load_ints(semd_st_file *f, const char *name, uint64_t numel, size_t *n)
{
    const semd_st_tensor *t = tensor(f, name, numel);
    int64_t *tmp = malloc((t->numel ? t->numel : 1) * sizeof *tmp);
    int *p = malloc((t->numel ? t->numel : 1) * sizeof *p);
    ASSERT(tmp && p);
    ASSERT_OK(semd_st_read_i64(t, tmp));
    for (uint64_t i = 0; i < t->numel; i++) p[i] = (int)tmp[i];
    free(tmp);
    if (n) *n = (size_t)t->numel;
    return p;
}

/* Bit-exact float comparison; on failure say where and by how much. */
static void assert_same(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            FAIL("%s[%zu]: %.9g != %.9g (relative L2 over all %zu: %.3g)", what, i,
                 (double)got[i], (double)want[i], n, semd_rel_l2(got, want, n));
    }
}

/* Distance in units in the last place between two finite floats of the same sign. */
static long ulps_apart(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    if ((ia < 0) != (ib < 0)) return a == b ? 0 : LONG_MAX;
    return labs((long)ia - (long)ib);
}

static void assert_ulps(const char *what, const float *got, const float *want, size_t n, long max_ulps)
{
    for (size_t i = 0; i < n; i++) {
        if (ulps_apart(got[i], want[i]) > max_ulps)
            FAIL("%s[%zu]: %.9g vs %.9g is more than %ld ulps", what, i, (double)got[i],
                 (double)want[i], max_ulps);
    }
    ASSERT_REL_L2(got, want, n, 1e-6);
}

static void assert_same_ints(const char *what, const int *got, const int *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) FAIL("%s[%zu]: %d != %d", what, i, got[i], want[i]);
}

static void assert_close(const char *what, double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        FAIL("%s: %.9g is not within %.1e relative of %.9g", what, got, rel, want);
}

static semd_lcm_scheduler *sd15_scheduler(void)
{
    semd_lcm_config cfg;
    semd_lcm_config_defaults(&cfg);
    semd_lcm_scheduler *s = NULL;
    ASSERT_OK(semd_lcm_scheduler_new(&cfg, &s));
    return s;
}

static const char *write_text(const char *name, const char *text)
{
    const char *path = semd_test_path(semd_test_tmpdir(), name);
    FILE *fp = fopen(path, "w");
    if (!fp) FAIL("cannot create %s", path);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Load `json` as a scheduler_config.json: expect `status` and a message holding `needle`. */
static void expect_config_error(const char *json, int status, const char *needle)
{
    const char *path = write_text("scheduler_config.json", json);
    semd_lcm_config cfg;
    semd_clear_error();
    int rc = semd_lcm_config_load(path, &cfg);
    if (rc != status) FAIL("config %s: got %d (%s), expected %d", json, rc, semd_last_error(), status);
    ASSERT_CONTAINS(semd_last_error(), "scheduler_config.json");
    ASSERT_CONTAINS(semd_last_error(), needle);
}

/* ---- the training schedule ---- */

static void check_alphas(const char *meta_key, const char *golden_name)
{
    semd_st_file *f = golden();
    const char *json = semd_st_metadata(f, meta_key);
    ASSERT(json);
    semd_lcm_config cfg;
    ASSERT_OK(semd_lcm_config_load(write_text("scheduler_config.json", json), &cfg));
    float *want = load_f32(f, golden_name, 1000, NULL);
    float got[1000];
    ASSERT_OK(semd_alphas_cumprod(&cfg, got));
    assert_same(golden_name, got, want, 1000);
    free(want);
    semd_st_close(f);
}

TEST(alphas_cumprod_scaled_linear) { check_alphas("config_a", "a_alphas_cumprod"); }
TEST(alphas_cumprod_linear) { check_alphas("config_b", "b_alphas_cumprod"); }

/* models.md §6.1 [computed, float64]; float32 betas and products drift ~1e-6 from these. */
TEST(alphas_cumprod_anchors)
{
    semd_lcm_scheduler *s = sd15_scheduler();
    const float *a = semd_lcm_alphas(s);
    static const struct { int t; double v; } anchors[] = {
        {0, 0.99915000}, {19, 0.98224399}, {259, 0.65897553},
        {499, 0.27766965}, {759, 0.05221293}, {999, 0.00466010},
    };
    char what[32];
    for (size_t i = 0; i < sizeof anchors / sizeof anchors[0]; i++) {
        snprintf(what, sizeof what, "alphas_cumprod[%d]", anchors[i].t);
        assert_close(what, a[anchors[i].t], anchors[i].v, 2e-6);
    }
    /* k-diffusion sigmas */
    assert_close("sigma_999", sqrt((1 - a[999]) / a[999]), 14.6146, 1e-5);
    assert_close("sigma_0", sqrt((1 - a[0]) / a[0]), 0.029167, 2e-5);
    semd_lcm_scheduler_free(s);
}

/* ---- timesteps ---- */

TEST(timesteps_anchors)
{
    static const int n1[] = {999}, n2[] = {999, 499}, n3[] = {999, 679, 339},
                     n4[] = {999, 759, 499, 259}, n5[] = {999, 799, 599, 399, 199},
                     n6[] = {999, 839, 679, 499, 339, 179},
                     n8[] = {999, 879, 759, 639, 499, 379, 259, 139};
    static const struct { const int *t; int n; } cases[] = {
        {n1, 1}, {n2, 2}, {n3, 3}, {n4, 4}, {n5, 5}, {n6, 6}, {n8, 8},
    };
    semd_lcm_scheduler *s = sd15_scheduler();
    ASSERT_EQ(semd_lcm_num_steps(s), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_OK(semd_lcm_set_timesteps(s, cases[i].n));
        ASSERT_EQ(semd_lcm_num_steps(s), cases[i].n);
        assert_same_ints("timesteps", semd_lcm_timesteps(s), cases[i].t, (size_t)cases[i].n);
    }
    ASSERT_OK(semd_lcm_set_timesteps(s, 50));
    for (int j = 0; j < 50; j++) ASSERT_EQ(semd_lcm_timesteps(s)[j], 999 - 20 * j);
    semd_lcm_scheduler_free(s);
}

TEST(timesteps_golden)
{
    semd_st_file *f = golden();
    semd_lcm_scheduler *s = sd15_scheduler();
    char name[32];
    for (int n = 1; n <= 50; n++) {
        snprintf(name, sizeof name, "timesteps_n%d", n);
        int *want = load_ints(f, name, (uint64_t)n, NULL);
        ASSERT_OK(semd_lcm_set_timesteps(s, n));
        assert_same_ints(name, semd_lcm_timesteps(s), want, (size_t)n);
        free(want);
    }
    semd_lcm_scheduler_free(s);
    semd_st_close(f);
}

/* Other distillation grids: every n for original_inference_steps 37 (k = 27) and 100 (k = 10). */
TEST(timesteps_other_grids)
{
    semd_st_file *f = golden();
    static const int origs[] = {37, 100};
    for (size_t g = 0; g < 2; g++) {
        int orig = origs[g];
        char name[32];
        snprintf(name, sizeof name, "timesteps_o%d_all", orig);
        size_t total = 0;
        int *want = load_ints(f, name, (uint64_t)(orig * (orig + 1) / 2), &total);
        semd_lcm_config cfg;
        semd_lcm_config_defaults(&cfg);
        cfg.original_inference_steps = orig;
        semd_lcm_scheduler *s = NULL;
        ASSERT_OK(semd_lcm_scheduler_new(&cfg, &s));
        for (int n = 1; n <= orig; n++) {
            ASSERT_OK(semd_lcm_set_timesteps(s, n));
            assert_same_ints(name, semd_lcm_timesteps(s), want + n * (n - 1) / 2, (size_t)n);
        }
        ASSERT_EQ(semd_lcm_set_timesteps(s, orig + 1), SEMD_EINVAL);
        semd_lcm_scheduler_free(s);
        free(want);
    }
    semd_st_close(f);
}

TEST(timesteps_errors)
{
    semd_lcm_scheduler *s = sd15_scheduler();
    ASSERT_OK(semd_lcm_set_timesteps(s, 4));
    static const int bad_n[] = {0, -1, 51, 1000};
    for (size_t i = 0; i < 4; i++) {
        semd_clear_error();
        ASSERT_EQ(semd_lcm_set_timesteps(s, bad_n[i]), SEMD_EINVAL);
        ASSERT_CONTAINS(semd_last_error(), "original_inference_steps");
        ASSERT_CONTAINS(semd_last_error(), "1..50");
    }
    /* A failed call keeps the previous schedule. */
    ASSERT_EQ(semd_lcm_num_steps(s), 4);
    ASSERT_EQ(semd_lcm_timesteps(s)[1], 759);
    semd_lcm_scheduler_free(s);
}

TEST(custom_timesteps)
{
    semd_lcm_scheduler *s = sd15_scheduler();
    static const int stream[] = {999, 919, 759, 499, 259};
    ASSERT_OK(semd_lcm_set_custom_timesteps(s, stream, 5));
    ASSERT_EQ(semd_lcm_num_steps(s), 5);
    assert_same_ints("custom", semd_lcm_timesteps(s), stream, 5);
    /* off the distillation grid and not starting at 999: allowed, as diffusers only warns */
    static const int odd[] = {500, 3, 0};
    ASSERT_OK(semd_lcm_set_custom_timesteps(s, odd, 3));
    ASSERT_EQ(semd_lcm_timesteps(s)[2], 0);

    static const struct { int t[3]; int n; const char *needle; } bad[] = {
        {{999, 999, 1}, 3, "not strictly descending at [1] = 999 after 999"},
        {{500, 700, 1}, 3, "not strictly descending at [1] = 700 after 500"},
        {{1000, 500, 1}, 3, "timesteps[0] = 1000 is outside 0..999"},
        {{999, 500, -1}, 3, "timesteps[2] = -1 is outside 0..999"},
        {{999}, 0, "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        semd_clear_error();
        ASSERT_EQ(semd_lcm_set_custom_timesteps(s, bad[i].t, bad[i].n), SEMD_EINVAL);
        ASSERT_CONTAINS(semd_last_error(), bad[i].needle);
    }
    ASSERT_EQ(semd_lcm_set_custom_timesteps(s, NULL, 3), SEMD_EINVAL);
    ASSERT_EQ(semd_lcm_num_steps(s), 3); /* still the last good schedule */
    ASSERT_EQ(semd_lcm_timesteps(s)[0], 500);
    semd_lcm_scheduler_free(s);
}

/* ---- boundary scalings ---- */

TEST(scalings_golden)
{
    semd_st_file *f = golden();
    float *want_skip = load_f32(f, "c_skip", 1000, NULL);
    float *want_out = load_f32(f, "c_out", 1000, NULL);
    semd_lcm_scheduler *s = sd15_scheduler();
    float skip[1000], out[1000];
    for (int t = 0; t < 1000; t++) ASSERT_OK(semd_lcm_scalings(s, t, &skip[t], &out[t]));
    assert_same("c_skip", skip, want_skip, 1000);
    assert_ulps("c_out", out, want_out, 1000, 2); /* through sqrt; measured rel L2 1.5e-8 */
    /* t = 0 is the identity boundary: denoised = x. */
    ASSERT(skip[0] == 1.0f && out[0] == 0.0f);
    semd_lcm_scheduler_free(s);
    free(want_skip);
    free(want_out);
    semd_st_close(f);
}

/* models.md §6.2 [computed]: the float32 values are within 1e-7 relative of these. */
TEST(scalings_anchors)
{
    semd_lcm_scheduler *s = sd15_scheduler();
    float skip, out;
    ASSERT_OK(semd_lcm_scalings(s, 999, &skip, &out));
    assert_close("c_skip(999)", skip, 0.25 / (9990.0 * 9990.0 + 0.25), 2e-7);
    assert_close("c_skip(999) spec", skip, 2.505e-9, 2e-4);
    assert_close("c_out(999)", out, 0.9999999987, 1e-7);
    ASSERT_OK(semd_lcm_scalings(s, 259, &skip, &out));
    assert_close("c_skip(259)", skip, 3.727e-8, 1e-4);
    ASSERT_OK(semd_lcm_scalings(s, 19, &skip, &out));
    assert_close("c_skip(19)", skip, 6.925e-6, 1e-4);
    semd_clear_error();
    ASSERT_EQ(semd_lcm_scalings(s, 1000, &skip, &out), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "timestep 1000 is outside 0..999");
    ASSERT_EQ(semd_lcm_scalings(s, -1, &skip, &out), SEMD_EINVAL);
    semd_lcm_scheduler_free(s);
}

/* ---- sampling loops ---- */

#define LATENT 256 /* [1,4,8,8] */

/* Our per-step scalars against torch's: c_skip exact, the square roots and c_out within an ulp or two. */
static void check_coefficients(const char *loop, const semd_lcm_coef *k, const float *want)
{
    const float got[6] = {k->sqrt_alpha, k->sqrt_beta, k->sqrt_alpha_prev, k->sqrt_beta_prev,
                          k->c_skip, k->c_out};
    static const char *const names[6] = {"sqrt(a)", "sqrt(1-a)", "sqrt(a_prev)", "sqrt(1-a_prev)",
                                         "c_skip", "c_out"};
    for (int i = 0; i < 6; i++) {
        long limit = i == 4 ? 0 : i == 5 ? 2 : 1;
        if (ulps_apart(got[i], want[i]) > limit)
            FAIL("%s t=%d %s: %.9g vs torch %.9g", loop, k->t, names[i], (double)got[i], (double)want[i]);
    }
}

/*
 * Replay a golden loop: its schedule, initial latent, fixed model outputs and
 * noises. (1) Fed torch's per-step scalars, semd_lcm_apply must reproduce
 * every denoised and prev_sample bit for bit. (2) The whole loop with
 * semdraw's own scalars (semd_lcm_step) stays within relative L2 1e-6 of it,
 * and in place (prev_sample == sample) gives the same bits as out of place.
 */
static void run_loop(const char *loop, const char *meta_config, semd_prediction_type pred)
{
    semd_st_file *f = golden();
    char name[64];
    size_t steps = 0;
#define LOOP_NAME(suffix) (snprintf(name, sizeof name, "%s_%s", loop, suffix), name)
    int *ts = load_ints(f, LOOP_NAME("timesteps"), 0, &steps);
    float *x0 = load_f32(f, LOOP_NAME("sample"), LATENT, NULL);
    float *eps = load_f32(f, LOOP_NAME("model_output"), steps * LATENT, NULL);
    float *noise = load_f32(f, LOOP_NAME("noise"), steps * LATENT, NULL);
    float *want_prev = load_f32(f, LOOP_NAME("prev_sample"), steps * LATENT, NULL);
    float *want_den = load_f32(f, LOOP_NAME("denoised"), steps * LATENT, NULL);
    float *coef = load_f32(f, LOOP_NAME("coef"), steps * 6, NULL);
#undef LOOP_NAME

    semd_lcm_config cfg;
    ASSERT_OK(semd_lcm_config_load(write_text("scheduler_config.json", semd_st_metadata(f, meta_config)), &cfg));
    cfg.prediction_type = pred;
    semd_lcm_scheduler *s = NULL;
    ASSERT_OK(semd_lcm_scheduler_new(&cfg, &s));
    ASSERT_OK(semd_lcm_set_custom_timesteps(s, ts, (int)steps));

    float x[LATENT], inplace[LATENT], prev[LATENT], den[LATENT], den2[LATENT];
    memcpy(x, x0, sizeof x);
    memcpy(inplace, x0, sizeof inplace);
    for (size_t j = 0; j < steps; j++) {
        int last = j + 1 == steps;
        const float *z = last ? NULL : noise + j * LATENT; /* the last step takes no noise */
        const float *in = j ? want_prev + (j - 1) * LATENT : x0;

        semd_lcm_coef k;
        ASSERT_OK(semd_lcm_coefficients(s, (int)j, &k));
        ASSERT_EQ(k.t, ts[j]);
        ASSERT_EQ(k.t_prev, last ? ts[j] : ts[j + 1]);
        ASSERT_EQ(k.renoise, !last);
        check_coefficients(loop, &k, coef + j * 6);
        k.sqrt_alpha = coef[j * 6 + 0], k.sqrt_beta = coef[j * 6 + 1];
        k.sqrt_alpha_prev = coef[j * 6 + 2], k.sqrt_beta_prev = coef[j * 6 + 3];
        k.c_skip = coef[j * 6 + 4], k.c_out = coef[j * 6 + 5];
        ASSERT_OK(semd_lcm_apply(&k, eps + j * LATENT, in, z, LATENT, den, prev));
        snprintf(name, sizeof name, "%s step %zu denoised", loop, j);
        assert_same(name, den, want_den + j * LATENT, LATENT);
        snprintf(name, sizeof name, "%s step %zu prev_sample", loop, j);
        assert_same(name, prev, want_prev + j * LATENT, LATENT);

        ASSERT_OK(semd_lcm_step(s, (int)j, eps + j * LATENT, x, z, LATENT, den, prev));
        ASSERT_REL_L2(den, want_den + j * LATENT, LATENT, 1e-6);
        ASSERT_REL_L2(prev, want_prev + j * LATENT, LATENT, 1e-6);
        ASSERT_OK(semd_lcm_step(s, (int)j, eps + j * LATENT, inplace, z, LATENT, den2, inplace));
        assert_same("in-place prev_sample", inplace, prev, LATENT);
        assert_same("in-place denoised", den2, den, LATENT);
        if (last) assert_same("last prev_sample == denoised", prev, den, LATENT);
        memcpy(x, prev, sizeof x);
    }
    semd_lcm_scheduler_free(s);
    free(ts), free(x0), free(eps), free(noise), free(want_prev), free(want_den), free(coef);
    semd_st_close(f);
}

TEST(loop_epsilon_4_steps) { run_loop("eps4", "config_a", SEMD_PREDICT_EPSILON); }
TEST(loop_epsilon_1_step) { run_loop("eps1", "config_a", SEMD_PREDICT_EPSILON); }
TEST(loop_v_prediction_2_steps) { run_loop("v2", "config_a", SEMD_PREDICT_V); }
TEST(loop_sample_2_steps) { run_loop("x2", "config_a", SEMD_PREDICT_SAMPLE); }
TEST(loop_linear_betas_4_steps) { run_loop("lin_eps4", "config_b", SEMD_PREDICT_EPSILON); }
TEST(loop_custom_5_steps) { run_loop("custom5", "config_a", SEMD_PREDICT_EPSILON); }

/* The golden loops' schedules are what set_timesteps gives. */
TEST(loop_schedules)
{
    semd_st_file *f = golden();
    semd_lcm_scheduler *s = sd15_scheduler();
    static const struct { const char *name; int n; } loops[] = {
        {"eps4_timesteps", 4}, {"eps1_timesteps", 1}, {"v2_timesteps", 2}, {"lin_eps4_timesteps", 4},
    };
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        int *want = load_ints(f, loops[i].name, (uint64_t)loops[i].n, NULL);
        ASSERT_OK(semd_lcm_set_timesteps(s, loops[i].n));
        assert_same_ints(loops[i].name, semd_lcm_timesteps(s), want, (size_t)loops[i].n);
        free(want);
    }
    semd_lcm_scheduler_free(s);
    semd_st_close(f);
}

TEST(step_errors)
{
    semd_lcm_scheduler *s = sd15_scheduler();
    float a[4] = {0}, b[4] = {0}, c[4], d[4];
    semd_clear_error();
    ASSERT_EQ(semd_lcm_step(s, 0, a, b, a, 4, c, d), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "no schedule");
    ASSERT_OK(semd_lcm_set_timesteps(s, 2));
    ASSERT_EQ(semd_lcm_step(s, 2, a, b, a, 4, c, d), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "step index 2 is outside 0..1");
    ASSERT_EQ(semd_lcm_step(s, -1, a, b, a, 4, c, d), SEMD_EINVAL);
    ASSERT_EQ(semd_lcm_step(s, 0, a, b, NULL, 4, c, d), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "noise");
    ASSERT_EQ(semd_lcm_step(s, 0, NULL, b, a, 4, c, d), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "model_output");
    ASSERT_OK(semd_lcm_step(s, 1, a, b, NULL, 4, c, d)); /* the last step needs none */
    semd_lcm_scheduler_free(s);
}

/* ---- configuration ---- */

TEST(config_defaults_match_lcm_dreamshaper)
{
    semd_st_file *f = golden();
    semd_lcm_config loaded, defaults;
    ASSERT_OK(semd_lcm_config_load(write_text("scheduler_config.json", semd_st_metadata(f, "config_a")), &loaded));
    semd_lcm_config_defaults(&defaults);
    ASSERT_EQ(loaded.num_train_timesteps, defaults.num_train_timesteps);
    ASSERT(loaded.beta_start == defaults.beta_start && loaded.beta_end == defaults.beta_end);
    ASSERT_EQ(loaded.beta_schedule, defaults.beta_schedule);
    ASSERT_EQ(loaded.original_inference_steps, defaults.original_inference_steps);
    ASSERT(loaded.timestep_scaling == defaults.timestep_scaling);
    ASSERT_EQ(loaded.prediction_type, defaults.prediction_type);
    ASSERT_EQ(loaded.set_alpha_to_one, 0);
    ASSERT_EQ(defaults.set_alpha_to_one, 0);
    semd_st_close(f);
}

TEST(config_load_files)
{
    /* the tiny test pipeline's LCMScheduler config */
    semd_lcm_config c;
    ASSERT_OK(semd_lcm_config_load(semd_test_path(semd_test_data_dir(),
                                                  "models/tiny-sd15/scheduler/scheduler_config.json"), &c));
    ASSERT_EQ(c.num_train_timesteps, 1000);
    ASSERT_EQ(c.beta_schedule, SEMD_BETA_SCALED_LINEAR);
    ASSERT_EQ(c.set_alpha_to_one, 1);
    /* SD1.5's own PNDM config, as LCMScheduler.from_config reads it: extra keys ignored */
    ASSERT_OK(semd_lcm_config_load(write_text("scheduler_config.json",
        "{\"_class_name\": \"PNDMScheduler\", \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\","
        " \"beta_start\": 0.00085, \"clip_sample\": false, \"num_train_timesteps\": 1000,"
        " \"set_alpha_to_one\": false, \"skip_prk_steps\": true, \"steps_offset\": 1,"
        " \"trained_betas\": null}"), &c));
    ASSERT_EQ(c.set_alpha_to_one, 0);
    ASSERT_EQ(c.original_inference_steps, 50);
    ASSERT(c.timestep_scaling == 10.0f);
    /* an empty object is all LCMScheduler defaults */
    ASSERT_OK(semd_lcm_config_load(write_text("scheduler_config.json", "{}"), &c));
    ASSERT_EQ(c.set_alpha_to_one, 1);
    ASSERT(c.beta_start == 0.00085);
    ASSERT_OK(semd_lcm_config_load(write_text("scheduler_config.json",
        "{\"prediction_type\": \"v_prediction\", \"original_inference_steps\": 25,"
        " \"timestep_scaling\": 5.0, \"num_train_timesteps\": 500}"), &c));
    ASSERT_EQ(c.prediction_type, SEMD_PREDICT_V);
    ASSERT_EQ(c.original_inference_steps, 25);
    ASSERT_EQ(c.num_train_timesteps, 500);
    ASSERT(c.timestep_scaling == 5.0f);
}

TEST(config_errors)
{
    expect_config_error("{\"beta_schedule\": \"squaredcos_cap_v2\"}", SEMD_EUNSUPPORTED,
                        "beta_schedule \"squaredcos_cap_v2\" is not supported");
    expect_config_error("{\"clip_sample\": true}", SEMD_EUNSUPPORTED, "clip_sample true is not supported");
    expect_config_error("{\"thresholding\": true}", SEMD_EUNSUPPORTED, "thresholding true");
    expect_config_error("{\"rescale_betas_zero_snr\": true}", SEMD_EUNSUPPORTED, "rescale_betas_zero_snr");
    expect_config_error("{\"trained_betas\": [0.1, 0.2]}", SEMD_EUNSUPPORTED, "trained_betas");
    expect_config_error("{\"prediction_type\": \"flow\"}", SEMD_EUNSUPPORTED,
                        "prediction_type \"flow\" is not supported");
    expect_config_error("{\"beta_start\": 0.00085,", SEMD_EFORMAT, "invalid JSON");
    expect_config_error("[1, 2]", SEMD_EFORMAT, "JSON object");
    expect_config_error("{\"beta_start\": \"0.1\"}", SEMD_EFORMAT, "\"beta_start\" must be a number");
    expect_config_error("{\"beta_end\": 1.5}", SEMD_EFORMAT, "beta_end 1.5 is outside [0, 1)");
    expect_config_error("{\"clip_sample\": 0}", SEMD_EFORMAT, "\"clip_sample\" must be true or false");
    expect_config_error("{\"beta_schedule\": 3}", SEMD_EFORMAT, "\"beta_schedule\" must be a string");
    expect_config_error("{\"num_train_timesteps\": 999.5}", SEMD_EFORMAT,
                        "\"num_train_timesteps\" must be an integer");
    expect_config_error("{\"original_inference_steps\": 0}", SEMD_EFORMAT,
                        "original_inference_steps 0 is outside 1..1000");
    expect_config_error("{\"original_inference_steps\": 2000}", SEMD_EFORMAT,
                        "original_inference_steps 2000 is outside 1..1000");
    expect_config_error("{\"timestep_scaling\": -1}", SEMD_EFORMAT, "timestep_scaling -1 must be positive");

    semd_lcm_config cfg;
    semd_clear_error();
    const char *missing = semd_test_path(semd_test_tmpdir(), "absent/scheduler_config.json");
    ASSERT_EQ(semd_lcm_config_load(missing, &cfg), SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), "absent/scheduler_config.json");
}

TEST(scheduler_new_rejects_bad_config)
{
    semd_lcm_config cfg;
    static char dummy;
    semd_lcm_scheduler *s = (semd_lcm_scheduler *)(void *)&dummy; /* must be reset to NULL */
    semd_lcm_config_defaults(&cfg);
    cfg.num_train_timesteps = 1;
    ASSERT_EQ(semd_lcm_scheduler_new(&cfg, &s), SEMD_EINVAL);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(semd_last_error(), "num_train_timesteps 1");
    semd_lcm_config_defaults(&cfg);
    cfg.beta_schedule = (semd_beta_schedule)7;
    ASSERT_EQ(semd_lcm_scheduler_new(&cfg, &s), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "beta_schedule");
    float out[4];
    ASSERT_EQ(semd_alphas_cumprod(&cfg, out), SEMD_EINVAL);
}

/* ---- embeddings ---- */

/*
 * An embedding row against torch's. Both compute the same float32 arguments
 * a_i = v * f_i except that torch's exp (MKL) may return f_i one ulp away from
 * the correctly rounded value semdraw uses; sin/cos then move by up to
 * |a_i| * 2^-23, plus a rounding of a_i and of the result each:
 *   |got - want| <= (|a_i| + 1) * 2^-22   per element.
 * Rows whose arguments stay small (|a| < 32: t <= 19, w = 0) must also meet
 * relative L2 <= 1e-6; measured: <= 2e-7 for those, 5.4e-6 at t = 999 (dim 320)
 * and 4.3e-5 for the guidance embedding at w = 7.5 (max |a| = 7500).
 */
static void check_embedding(const char *what, const float *got, const float *want, int dim,
                            int cos_first, double value, double shift)
{
    int half = dim / 2;
    double max_arg = 0;
    for (int i = 0; i < half; i++) {
        double f = exp(-log(10000.0) * i / (half - shift));
        double bound = (fabs(value * f) + 1) * ldexp(1.0, -22);
        if (fabs(value * f) > max_arg) max_arg = fabs(value * f);
        int si = cos_first ? half + i : i, ci = cos_first ? i : half + i;
        if (!(fabs((double)got[si] - want[si]) <= bound) || !(fabs((double)got[ci] - want[ci]) <= bound))
            FAIL("%s: frequency %d (argument %.6g): sin %.9g vs %.9g, cos %.9g vs %.9g, bound %.3g",
                 what, i, value * f, (double)got[si], (double)want[si], (double)got[ci],
                 (double)want[ci], bound);
    }
    if (dim % 2) ASSERT(got[dim - 1] == 0.0f && want[dim - 1] == 0.0f);
    if (max_arg < 32 && !(semd_rel_l2(got, want, (size_t)dim) <= 1e-6))
        FAIL("%s: relative L2 %.3g > 1e-6", what, semd_rel_l2(got, want, (size_t)dim));
}

static void check_timestep_golden(const char *name, int dim, int flip, float shift)
{
    semd_st_file *f = golden();
    size_t nt = 0;
    int *t_int = load_ints(f, "temb_t", 0, &nt);
    float t[8];
    ASSERT(nt <= 8);
    for (size_t b = 0; b < nt; b++) t[b] = (float)t_int[b];
    float *want = load_f32(f, name, nt * (size_t)dim, NULL);
    float *got = malloc(nt * (size_t)dim * sizeof *got);
    ASSERT_OK(semd_timestep_embedding(t, (int)nt, dim, flip, shift, got));
    char what[64];
    for (size_t b = 0; b < nt; b++) {
        snprintf(what, sizeof what, "%s t=%d", name, t_int[b]);
        check_embedding(what, got + b * (size_t)dim, want + b * (size_t)dim, dim, flip, t[b], shift);
    }
    free(t_int), free(want), free(got);
    semd_st_close(f);
}

TEST(timestep_embedding_320) { check_timestep_golden("temb_d320", 320, 1, 0); }
TEST(timestep_embedding_256) { check_timestep_golden("temb_d256", 256, 1, 0); }
TEST(timestep_embedding_odd_dim) { check_timestep_golden("temb_d7", 7, 1, 0); }
TEST(timestep_embedding_noflip_shift1) { check_timestep_golden("temb_d320_noflip_shift1", 320, 0, 1); }

/* models.md §2.2/§2.7 [computed, float64]: float32 arguments near 999 move by ~1e-4. */
TEST(timestep_embedding_anchors)
{
    float t = 999, e[320];
    ASSERT_OK(semd_timestep_embedding(&t, 1, 320, 1, 0, e));
    static const struct { int i; double v; } anchors[] = {
        {0, 0.999650}, {1, 0.802681}, {2, -0.278114}, {3, 0.176778}, {160, -0.026461},
        {161, 0.596409}, {162, -0.960548}, {163, -0.984251}, {319, 0.105622},
    };
    for (size_t k = 0; k < sizeof anchors / sizeof anchors[0]; k++)
        if (!(fabs(e[anchors[k].i] - anchors[k].v) <= 1e-4))
            FAIL("e[%d] = %.6f, expected %.6f", anchors[k].i, (double)e[anchors[k].i], anchors[k].v);
    /* t = 0: cos 1, sin 0 */
    t = 0;
    ASSERT_OK(semd_timestep_embedding(&t, 1, 320, 1, 0, e));
    for (int i = 0; i < 160; i++) ASSERT(e[i] == 1.0f && e[160 + i] == 0.0f);
}

static void check_guidance_golden(const char *name, int dim)
{
    semd_st_file *f = golden();
    size_t nw = 0;
    float *w = load_f32(f, "gemb_w", 0, &nw);
    float *want = load_f32(f, name, nw * (size_t)dim, NULL);
    float *got = malloc(nw * (size_t)dim * sizeof *got);
    ASSERT_OK(semd_guidance_embedding(w, (int)nw, dim, got));
    char what[64];
    for (size_t b = 0; b < nw; b++) {
        snprintf(what, sizeof what, "%s w=%g", name, (double)w[b]);
        /* the guidance embedding is sin-first with frequencies over (half - 1) */
        check_embedding(what, got + b * (size_t)dim, want + b * (size_t)dim, dim, 0,
                        1000.0 * w[b], 1);
    }
    free(w), free(want), free(got);
    semd_st_close(f);
}

TEST(guidance_embedding_256) { check_guidance_golden("gemb_d256", 256); }
TEST(guidance_embedding_32) { check_guidance_golden("gemb_d32", 32); }

/* models.md §2.7 [computed, float64] for guidance 8.5; fp32 sin(7500 f) is good to ~5e-4. */
TEST(guidance_embedding_anchors)
{
    float w = 7.5f, e[256];
    ASSERT_OK(semd_guidance_embedding(&w, 1, 256, e));
    static const struct { int i; double v; } anchors[] = {
        {0, -0.851236}, {1, 0.842228}, {2, 0.011820}, {127, 0.681639},
        {128, -0.524783}, {129, 0.539121}, {130, -0.999930}, {255, 0.731689},
    };
    for (size_t k = 0; k < sizeof anchors / sizeof anchors[0]; k++)
        if (!(fabs(e[anchors[k].i] - anchors[k].v) <= 1e-3))
            FAIL("w_emb[%d] = %.6f, expected %.6f", anchors[k].i, (double)e[anchors[k].i], anchors[k].v);
    /* odd dims are zero-padded like the pipeline's */
    float odd[9];
    ASSERT_OK(semd_guidance_embedding(&w, 1, 9, odd));
    ASSERT(odd[8] == 0.0f);
}

TEST(embedding_errors)
{
    float t = 1, out[16];
    semd_clear_error();
    ASSERT_EQ(semd_timestep_embedding(&t, 0, 8, 1, 0, out), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "batch 0");
    ASSERT_EQ(semd_timestep_embedding(&t, 1, 1, 1, 0, out), SEMD_EINVAL);
    ASSERT_EQ(semd_timestep_embedding(&t, 1, 2, 1, 1, out), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "downscale_freq_shift");
    ASSERT_EQ(semd_timestep_embedding(NULL, 1, 8, 1, 0, out), SEMD_EINVAL);
    ASSERT_EQ(semd_guidance_embedding(&t, 1, 3, out), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "dim 3");
    ASSERT_EQ(semd_guidance_embedding(&t, -1, 8, out), SEMD_EINVAL);
    /* large dims and batches take the heap path */
    float *big = malloc(20 * 4096 * sizeof *big), ts[20];
    ASSERT(big);
    for (int b = 0; b < 20; b++) ts[b] = (float)b;
    ASSERT_OK(semd_timestep_embedding(ts, 20, 4096, 1, 0, big));
    ASSERT(big[0] == 1.0f && big[2048] == 0.0f);
    ASSERT_OK(semd_guidance_embedding(ts, 20, 4096, big));
    ASSERT(big[0] == 0.0f && big[2048] == 1.0f);
    free(big);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(alphas_cumprod_scaled_linear),
    TEST_ENTRY(alphas_cumprod_linear),
    TEST_ENTRY(alphas_cumprod_anchors),
    TEST_ENTRY(timesteps_anchors),
    TEST_ENTRY(timesteps_golden),
    TEST_ENTRY(timesteps_other_grids),
    TEST_ENTRY(timesteps_errors),
    TEST_ENTRY(custom_timesteps),
    TEST_ENTRY(scalings_golden),
    TEST_ENTRY(scalings_anchors),
    TEST_ENTRY(loop_epsilon_4_steps),
    TEST_ENTRY(loop_epsilon_1_step),
    TEST_ENTRY(loop_v_prediction_2_steps),
    TEST_ENTRY(loop_sample_2_steps),
    TEST_ENTRY(loop_linear_betas_4_steps),
    TEST_ENTRY(loop_custom_5_steps),
    TEST_ENTRY(loop_schedules),
    TEST_ENTRY(step_errors),
    TEST_ENTRY(config_defaults_match_lcm_dreamshaper),
    TEST_ENTRY(config_load_files),
    TEST_ENTRY(config_errors),
    TEST_ENTRY(scheduler_new_rejects_bad_config),
    TEST_ENTRY(timestep_embedding_320),
    TEST_ENTRY(timestep_embedding_256),
    TEST_ENTRY(timestep_embedding_odd_dim),
    TEST_ENTRY(timestep_embedding_noflip_shift1),
    TEST_ENTRY(timestep_embedding_anchors),
    TEST_ENTRY(guidance_embedding_256),
    TEST_ENTRY(guidance_embedding_32),
    TEST_ENTRY(guidance_embedding_anchors),
    TEST_ENTRY(embedding_errors),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
