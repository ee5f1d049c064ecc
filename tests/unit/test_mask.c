/*
 * Tests for the mask preprocessing (semanticdraw.md section 5.2) and the
 * centering shifts (8.2): the worked example and sanity values of 5.2 and
 * 16.1, the blur against a brute-force 2-D kernel in float64, the nearest
 * downsample, cover alpha, shifts, roll and argument errors.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "semd/mask.h"
#include "semd/status.h"

#include <float.h>
#include <time.h>

/* The SD1.5 LCM noise levels of t_index_list [0, 4, 12, 25, 37] (16.1). */
static const float B5[5] = {0.99767f, 0.99419f, 0.97354f, 0.84990f, 0.58397f};

static semd_mask_params params(int W, int H, semd_mask_type type)
{
    semd_mask_params p = {W, H, 5, B5, type, 0.3f};
    return p;
}

static float *alloc_f(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    ASSERT(p);
    return p;
}

/* A deterministic pseudo-random value in [0, 1). */
static float rnd(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f;
}

static void fill_rect(float *m, int W, int y0, int y1, int x0, int x1, float v)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) m[y * W + x] = v;
}

/* M of a constant mask m on an 8x8 image (one latent pixel), std 0. */
static void constant_M(semd_mask_type type, float m, float out[5])
{
    semd_mask_params p = params(8, 8, type);
    float masks[64], std = 0.0f, strength = 1.0f;
    for (int j = 0; j < 64; j++) masks[j] = m;
    ASSERT_OK(semd_mask_process(&p, 1, masks, &std, &strength, out, NULL, NULL, NULL));
}

static void assert_near(const float *got, const float *want, int n, double tol)
{
    for (int j = 0; j < n; j++)
        if (!(fabs((double)got[j] - (double)want[j]) <= tol))
            FAIL("element %d: %.7g != %.7g (tol %g)", j, (double)got[j], (double)want[j], tol);
}

/* ---- section 5.2 worked example and quantisation modes ---------------------- */

TEST(worked_example_continuous)
{
    float M[5];
    constant_M(SEMD_MASK_CONTINUOUS, 0.9f, M);
    assert_near(M, (const float[]){0, 0, 0.405f, 1, 1}, 5, 5e-4);
    /* Exactly the float32 formula of step 4. */
    ASSERT(M[2] == (0.9f - B5[3]) / (B5[2] - B5[3]));
    constant_M(SEMD_MASK_CONTINUOUS, 0.3f, M);
    assert_near(M, (const float[]){0, 0, 0, 0, 0.514f}, 5, 5e-4);
    ASSERT(M[4] == 0.3f / B5[4]);
    constant_M(SEMD_MASK_CONTINUOUS, 1.0f, M);
    assert_near(M, (const float[]){1, 1, 1, 1, 1}, 5, 0);
    constant_M(SEMD_MASK_CONTINUOUS, 0.0f, M);
    assert_near(M, (const float[]){0, 0, 0, 0, 0}, 5, 0);
}

TEST(discrete_and_semi_continuous)
{
    float M[5];
    constant_M(SEMD_MASK_DISCRETE, 0.9f, M);
    assert_near(M, (const float[]){0, 0, 0, 1, 1}, 5, 0);
    constant_M(SEMD_MASK_DISCRETE, 0.3f, M);
    assert_near(M, (const float[]){0, 0, 0, 0, 0}, 5, 0);
    constant_M(SEMD_MASK_DISCRETE, 1.0f, M);
    assert_near(M, (const float[]){1, 1, 1, 1, 1}, 5, 0);
    /* m == b_k is not > b_k. */
    constant_M(SEMD_MASK_DISCRETE, B5[3], M);
    assert_near(M, (const float[]){0, 0, 0, 0, 1}, 5, 0);

    constant_M(SEMD_MASK_SEMI_CONTINUOUS, 0.9f, M);
    assert_near(M, (const float[]){0, 0, 0, 1, 1}, 5, 0);
    constant_M(SEMD_MASK_SEMI_CONTINUOUS, 0.3f, M);
    assert_near(M, (const float[]){0, 0, 0, 0, 0.514f}, 5, 5e-4);
    ASSERT(M[4] == 0.3f / B5[4]);
}

TEST(strength_scales_before_quantisation)
{
    semd_mask_params p = params(8, 8, SEMD_MASK_CONTINUOUS);
    float masks[64], std = 0.0f, strength = 0.9f, M[5];
    for (int j = 0; j < 64; j++) masks[j] = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 1, masks, &std, &strength, M, NULL, NULL, NULL));
    float m = 1.0f * 0.9f;
    ASSERT(M[2] == (m - B5[3]) / (B5[2] - B5[3]));
    assert_near(M, (const float[]){0, 0, 0.405f, 1, 1}, 5, 5e-4);
}

/* 16.1: a binary mask with std 0 and strength 1 gives the same M for every slot. */
TEST(binary_mask_same_every_slot)
{
    int W = 64, H = 48, w = 8, h = 6;
    semd_mask_params p = params(W, H, SEMD_MASK_CONTINUOUS);
    float *m = alloc_f((size_t)W * H), *M = alloc_f(5 * (size_t)w * h);
    fill_rect(m, W, 9, 30, 17, 50, 1.0f);
    float std = 0.0f, strength = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 1, m, &std, &strength, M, NULL, NULL, NULL));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float want = m[8 * y * W + 8 * x];
            for (int k = 0; k < 5; k++) ASSERT(M[(k * h + y) * w + x] == want);
        }
    free(m);
    free(M);
}

/* 16.1: std 8 continuous masks widen monotonically from slot 0 to slot T-1. */
TEST(std8_widens_monotonically)
{
    int W = 128, H = 128, w = 16, h = 16;
    size_t lat = (size_t)w * h;
    semd_mask_params p = params(W, H, SEMD_MASK_CONTINUOUS);
    float *m = alloc_f((size_t)W * H), *M = alloc_f(5 * lat);
    fill_rect(m, W, 24, 104, 24, 104, 1.0f);
    float std = 8.0f, strength = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 1, m, &std, &strength, M, NULL, NULL, NULL));
    double prev = 0.0;
    for (int k = 0; k < 5; k++) {
        double area = 0.0;
        for (size_t j = 0; j < lat; j++) {
            area += M[k * lat + j];
            if (k > 0) ASSERT(M[k * lat + j] >= M[(k - 1) * lat + j]);
        }
        /* The core is covered at slot 0 and every slot adds some skirt. */
        ASSERT(area > prev);
        prev = area;
    }
    ASSERT(M[0 * lat + 8 * w + 8] == 1.0f);
    free(m);
    free(M);
}

/* ---- cover alpha ------------------------------------------------------------ */

TEST(cover_alpha_drops_covered_pixels_discrete)
{
    int W = 32, H = 32, w = 4, h = 4;
    size_t plane = (size_t)W * H, lat = (size_t)w * h;
    semd_mask_params p = params(W, H, SEMD_MASK_DISCRETE);
    float *m = alloc_f(2 * plane), *M = alloc_f(2 * 5 * lat), cnt[5 * 16], G[5 * 16];
    fill_rect(m, W, 0, H, 0, W, 1.0f);                 /* layer 0: the whole canvas */
    fill_rect(m + plane, W, 8, 24, 16, 32, 1.0f);      /* layer 1, on top: latent rows 1-2, cols 2-3 */
    float std[2] = {0, 0}, strength[2] = {1, 1};
    ASSERT_OK(semd_mask_process(&p, 2, m, std, strength, M, cnt, G, NULL));
    for (int k = 0; k < 5; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int inside = y >= 1 && y <= 2 && x >= 2;
                size_t j = (size_t)(k * h + y) * w + x;
                ASSERT(M[j] == (inside ? 0.0f : 1.0f));       /* 0.3 < every level */
                ASSERT(M[5 * lat + j] == (inside ? 1.0f : 0.0f));
                ASSERT(cnt[j] == 1.0f);
                ASSERT(G[j] == 0.0f);
            }
    /* cover_alpha 1 keeps the lower layer: Cnt 2 under the top layer, G still 0. */
    p.cover_alpha = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 2, m, std, strength, M, cnt, G, NULL));
    for (size_t j = 0; j < 5 * lat; j++) {
        ASSERT(M[j] == 1.0f);
        ASSERT(cnt[j] == 1.0f + M[5 * lat + j]);
        ASSERT(G[j] == 0.0f);
    }
    free(m);
    free(M);
}

TEST(cover_alpha_continuous_value)
{
    /* Covered pixels become 0.3*m: with m = 1 that is 0.3 -> the m = 0.3 example. */
    semd_mask_params p = params(8, 8, SEMD_MASK_CONTINUOUS);
    float m[128], M[10], std[2] = {0, 0}, strength[2] = {1, 1};
    for (int j = 0; j < 128; j++) m[j] = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 2, m, std, strength, M, NULL, NULL, NULL));
    assert_near(M, (const float[]){0, 0, 0, 0, 0.514f}, 5, 5e-4);
    ASSERT(M[4] == (1.0f * 0.3f) / B5[4]);
    assert_near(M + 5, (const float[]){1, 1, 1, 1, 1}, 5, 0);
}

/* ---- the blur --------------------------------------------------------------- */

/* 5.2 step 2 by the book: one 2-D kernel, replicate padding, float64. */
static void brute_blur(const float *in, double *out, int H, int W, double std, int ws)
{
    int R = ws / 2;
    double *k = malloc((size_t)ws * ws * sizeof *k), sum = 0.0;
    ASSERT(k);
    for (int dy = -R; dy <= R; dy++)
        for (int dx = -R; dx <= R; dx++)
            sum += k[(dy + R) * ws + dx + R] = exp(-(double)(dx * dx + dy * dy) / (2.0 * std * std));
    for (int j = 0; j < ws * ws; j++) k[j] /= sum;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double s = 0.0;
            for (int dy = -R; dy <= R; dy++)
                for (int dx = -R; dx <= R; dx++) {
                    int yy = y + dy < 0 ? 0 : y + dy >= H ? H - 1 : y + dy;
                    int xx = x + dx < 0 ? 0 : x + dx >= W ? W - 1 : x + dx;
                    s += k[(dy + R) * ws + dx + R] * (double)in[yy * W + xx];
                }
            out[y * W + x] = s;
        }
    free(k);
}

TEST(blur_matches_bruteforce_2d)
{
    int H = 37, W = 45; /* any size; small enough for the brute force */
    unsigned seed = 7;
    float *in = alloc_f((size_t)H * W), *out = alloc_f((size_t)H * W);
    double *want = malloc((size_t)H * W * sizeof *want);
    ASSERT(want);
    for (int j = 0; j < H * W; j++) in[j] = rnd(&seed);
    fill_rect(in, W, 5, 20, 3, 30, 1.0f);
    const double stds[] = {0.7, 2.5, 8.0};
    for (int s = 0; s < 3; s++) {
        int ws = 2 * (int)ceil(3.0 * stds[s]) + 1;
        ASSERT_OK(semd_mask_blur(in, out, H, W, stds[s], ws));
        brute_blur(in, want, H, W, stds[s], ws);
        for (int j = 0; j < H * W; j++)
            if (!(fabs((double)out[j] - want[j]) <= 1e-6))
                FAIL("std %g pixel %d: %.9g != %.9g", stds[s], j, (double)out[j], want[j]);
    }
    /* A wider window than 6 std (the shared window of 5.2) changes the kernel a little. */
    ASSERT_OK(semd_mask_blur(in, out, H, W, 0.7, 49));
    brute_blur(in, want, H, W, 0.7, 49);
    for (int j = 0; j < H * W; j++) ASSERT(fabs((double)out[j] - want[j]) <= 1e-6);
    free(in);
    free(out);
    free(want);
}

TEST(blurred_layers_share_one_window)
{
    int W = 48, H = 40;
    size_t plane = (size_t)W * H;
    semd_mask_params p = params(W, H, SEMD_MASK_CONTINUOUS);
    p.cover_alpha = 1.0f;
    unsigned seed = 3;
    float *m = alloc_f(3 * plane), *out = alloc_f(3 * plane);
    double *want = malloc(plane * sizeof *want);
    ASSERT(want);
    for (size_t j = 0; j < 3 * plane; j++) m[j] = rnd(&seed);
    float std[3] = {0.0f, 1.5f, 3.0f};
    ASSERT_EQ(semd_mask_window(3, std), 19);
    ASSERT_OK(semd_mask_blurred(&p, 3, m, std, out));
    /* std 0 next to a blurring layer: 1e-5, a delta kernel - the mask is unchanged. */
    for (size_t j = 0; j < plane; j++) ASSERT(out[j] == m[j]);
    for (int i = 1; i < 3; i++) {
        brute_blur(m + i * plane, want, H, W, std[i], 19);
        for (size_t j = 0; j < plane; j++) ASSERT(fabs((double)out[i * plane + j] - want[j]) <= 1e-6);
    }
    /* No std > 0: no blur at all, the cover-alpha output. */
    float zero[3] = {0, 0, 0};
    ASSERT_EQ(semd_mask_window(3, zero), 0);
    p.cover_alpha = 0.5f;
    ASSERT_OK(semd_mask_blurred(&p, 3, m, zero, out));
    for (size_t j = 0; j < plane; j++) {
        ASSERT(out[2 * plane + j] == m[2 * plane + j]);
        ASSERT(out[j] == (m[plane + j] > 0 || m[2 * plane + j] > 0 ? m[j] * 0.5f : m[j]));
    }
    free(m);
    free(out);
    free(want);
}

TEST(window_size)
{
    ASSERT_EQ(semd_mask_window(1, (const float[]){8.0f}), 49);
    ASSERT_EQ(semd_mask_window(2, (const float[]){1.0f, 0.0f}), 7);
    ASSERT_EQ(semd_mask_window(1, (const float[]){0.1f}), 3);
    /* 3*std in float64: 1/3 as a float is slightly above 1/3, so ceil gives 2. */
    ASSERT_EQ(semd_mask_window(1, (const float[]){1.0f / 3.0f}), 5);
    ASSERT_EQ(semd_mask_window(0, NULL), 0);
}

/* ---- downsample ------------------------------------------------------------- */

/*
 * With one slot at level 1.0, continuous quantisation is clip(m / 1) = m, so
 * M shows exactly the value the nearest downsample picked.
 */
TEST(nearest_downsample_picks_top_left)
{
    int W = 40, H = 24, w = 5, h = 3;
    size_t plane = (size_t)W * H;
    const float one = 1.0f;
    semd_mask_params p = {W, H, 1, &one, SEMD_MASK_CONTINUOUS, 1.0f};
    unsigned seed = 11;
    float *m = alloc_f(plane), *M = alloc_f((size_t)w * h), *full = alloc_f(plane);
    for (size_t j = 0; j < plane; j++) m[j] = rnd(&seed);
    float std = 0.0f, strength = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 1, m, &std, &strength, M, NULL, NULL, NULL));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) ASSERT(M[y * w + x] == m[8 * y * W + 8 * x]);
    /* Blurred: the strided evaluation equals the full-resolution blur at (8y, 8x). */
    std = 2.0f;
    ASSERT_OK(semd_mask_process(&p, 1, m, &std, &strength, M, NULL, NULL, NULL));
    ASSERT_OK(semd_mask_blurred(&p, 1, m, &std, full));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) ASSERT(M[y * w + x] == full[8 * y * W + 8 * x]);
    free(m);
    free(M);
    free(full);
}

/* The whole pipeline against the brute force: blur, strength, quantise, sample. */
TEST(process_matches_bruteforce_pipeline)
{
    int W = 32, H = 32, w = 4, h = 4;
    size_t plane = (size_t)W * H;
    semd_mask_params p = params(W, H, SEMD_MASK_DISCRETE);
    float *m = alloc_f(plane), *M = alloc_f(5 * (size_t)w * h);
    double *blur = malloc(plane * sizeof *blur);
    ASSERT(blur);
    fill_rect(m, W, 6, 26, 10, 30, 1.0f);
    float std = 3.0f, strength = 0.98f;
    ASSERT_OK(semd_mask_process(&p, 1, m, &std, &strength, M, NULL, NULL, NULL));
    brute_blur(m, blur, H, W, 3.0, 19);
    for (int k = 0; k < 5; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = (float)blur[8 * y * W + 8 * x] * strength;
                ASSERT(M[(k * h + y) * w + x] == (v > B5[k] ? 1.0f : 0.0f));
            }
    free(m);
    free(M);
    free(blur);
}

/* ---- counts, shifts, roll --------------------------------------------------- */

TEST(counts_and_background_weight)
{
    int W = 16, H = 16;
    size_t plane = (size_t)W * H;
    semd_mask_params p = params(W, H, SEMD_MASK_CONTINUOUS);
    p.cover_alpha = 1.0f;
    float *m = alloc_f(2 * plane), M[2 * 5 * 4], cnt[20], G[20];
    for (size_t j = 0; j < plane; j++) m[j] = 0.9f, m[plane + j] = j < plane / 2 ? 0.3f : 0.0f;
    float std[2] = {0, 0}, strength[2] = {1, 1};
    ASSERT_OK(semd_mask_process(&p, 2, m, std, strength, M, cnt, G, NULL));
    for (int j = 0; j < 20; j++) {
        ASSERT(cnt[j] == M[j] + M[20 + j]);
        float g = 1.0f - cnt[j];
        ASSERT(G[j] == (g < 0 ? 0.0f : g > 1 ? 1.0f : g));
    }
    /* P4's incremental update: replace layer 1 by its own single-layer result. */
    for (size_t j = 0; j < plane; j++) m[plane + j] = 1.0f;
    float Mnew[20];
    ASSERT_OK(semd_mask_process(&p, 1, m + plane, std, strength, Mnew, NULL, NULL, NULL));
    float want[20];
    for (int j = 0; j < 20; j++) want[j] = (cnt[j] - M[20 + j]) + Mnew[j];
    semd_mask_update_counts(20, cnt, G, M + 20, Mnew);
    for (int j = 0; j < 20; j++) {
        ASSERT(cnt[j] == want[j]);
        ASSERT(G[j] == 0.0f); /* cnt >= 1 everywhere now */
    }
    /* Adding a layer: no old mask. */
    float c2[2] = {0.25f, 0.5f}, g2[2], add[2] = {0.5f, 1.0f};
    semd_mask_update_counts(2, c2, g2, NULL, add);
    ASSERT(c2[0] == 0.75f && c2[1] == 1.5f && g2[0] == 0.25f && g2[1] == 0.0f);
    free(m);
}

TEST(zero_layers)
{
    semd_mask_params p = params(16, 8, SEMD_MASK_CONTINUOUS);
    float cnt[10], G[10];
    ASSERT_OK(semd_mask_process(&p, 0, NULL, NULL, NULL, NULL, cnt, G, NULL));
    for (int j = 0; j < 10; j++) ASSERT(cnt[j] == 0.0f && G[j] == 1.0f);
}

TEST(shifts_of_hand_made_masks)
{
    int h = 8, w = 10, dy, dx;
    float m[80] = {0};
    semd_mask_shift(m, h, w, &dy, &dx); /* empty: t = b = l = r = 0, centre (0, 0) */
    ASSERT_EQ(dy, 4 - 0);
    ASSERT_EQ(dx, 5 - 0);
    m[3 * w + 7] = 0.25f; /* one pixel: cy = (3+3+1)/2 = 3, cx = (7+7+1)/2 = 7 */
    semd_mask_shift(m, h, w, &dy, &dx);
    ASSERT_EQ(dy, 1);
    ASSERT_EQ(dx, -2);
    m[6 * w + 2] = 1.0f; /* rows 3..6, cols 2..7: cy = 5, cx = 5 */
    semd_mask_shift(m, h, w, &dy, &dx);
    ASSERT_EQ(dy, -1);
    ASSERT_EQ(dx, 0);
    for (int j = 0; j < 80; j++) m[j] = 1.0f; /* full: cy = (0+7+1)/2 = 4, cx = (0+9+1)/2 = 5 */
    semd_mask_shift(m, h, w, &dy, &dx);
    ASSERT_EQ(dy, 0);
    ASSERT_EQ(dx, 0);
    memset(m, 0, sizeof m); /* top-left corner pixel */
    m[0] = 1.0f;
    semd_mask_shift(m, h, w, &dy, &dx);
    ASSERT_EQ(dy, 4);
    ASSERT_EQ(dx, 5);
}

TEST(process_reports_shifts_per_slot)
{
    int W = 64, H = 64, w = 8, h = 8;
    size_t lat = (size_t)w * h;
    semd_mask_params p = params(W, H, SEMD_MASK_CONTINUOUS);
    float *m = alloc_f((size_t)W * H), *M = alloc_f(5 * lat);
    int shifts[10];
    fill_rect(m, W, 0, 24, 40, 64, 1.0f);
    float std = 8.0f, strength = 1.0f;
    ASSERT_OK(semd_mask_process(&p, 1, m, &std, &strength, M, NULL, NULL, shifts));
    int differ = 0;
    for (int k = 0; k < 5; k++) {
        int dy, dx;
        semd_mask_shift(M + k * lat, h, w, &dy, &dx);
        ASSERT_EQ(shifts[2 * k], dy);
        ASSERT_EQ(shifts[2 * k + 1], dx);
        if (k && (dy != shifts[0] || dx != shifts[1])) differ = 1;
    }
    /* The support grows with k, so the bbox of slot 4 is not that of slot 0. */
    ASSERT(differ);
    free(m);
    free(M);
}

TEST(roll_round_trip)
{
    int C = 2, h = 5, w = 7;
    size_t n = (size_t)C * h * w;
    unsigned seed = 5;
    float *in = alloc_f(n), *a = alloc_f(n), *b = alloc_f(n);
    for (size_t j = 0; j < n; j++) in[j] = rnd(&seed);
    const int cases[][2] = {{3, -9}, {0, 0}, {-1, 1}, {12, 14}, {-5, -7}};
    for (int c = 0; c < 5; c++) {
        int dy = cases[c][0], dx = cases[c][1];
        semd_roll(in, a, C, h, w, dy, dx);
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int sy = ((y - dy) % h + h) % h, sx = ((x - dx) % w + w) % w;
                    ASSERT(a[(ch * h + y) * w + x] == in[(ch * h + sy) * w + sx]);
                }
        semd_roll(a, b, C, h, w, -dy, -dx);
        ASSERT(memcmp(b, in, n * sizeof *in) == 0);
    }
    free(in);
    free(a);
    free(b);
}

TEST(normalize)
{
    unsigned char a[4] = {0, 1, 128, 255};
    float m[4];
    semd_mask_normalize(a, m, 4);
    ASSERT(m[0] == 0.0f && m[1] == 1.0f / 255.0f && m[2] == 128.0f / 255.0f && m[3] == 1.0f);
}

/* ---- errors ----------------------------------------------------------------- */

static void expect_error(int rc, int code, const char *needle)
{
    if (rc != code) FAIL("expected %d, got %d (%s)", code, rc, semd_last_error());
    ASSERT_CONTAINS(semd_last_error(), needle);
}

TEST(errors)
{
    float m[64 * 2] = {0}, M[2 * 5], std[2] = {0, 0}, strength[2] = {1, 1};
    semd_mask_params p = params(8, 8, SEMD_MASK_CONTINUOUS);

    expect_error(semd_mask_process(NULL, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "params is NULL");
    p.width = 12;
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "12x8");
    p.width = 0;
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "multiples of 8");
    p = params(8, 8, SEMD_MASK_CONTINUOUS);
    p.n_slots = 0;
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "n_slots");
    p = params(8, 8, SEMD_MASK_CONTINUOUS);
    p.noise_levels = (const float[]){0.5f, 0.9f, 0.3f, 0.2f, 0.1f};
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "noise_levels[1]");
    p = params(8, 8, SEMD_MASK_CONTINUOUS);
    p.noise_levels = NULL;
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "noise_levels is NULL");
    p = params(8, 8, (semd_mask_type)7);
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "mask type 7");
    p = params(8, 8, SEMD_MASK_CONTINUOUS);
    p.cover_alpha = 1.5f;
    expect_error(semd_mask_process(&p, 1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "cover_alpha");
    p = params(8, 8, SEMD_MASK_CONTINUOUS);
    expect_error(semd_mask_process(&p, -1, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "n_layers -1");
    expect_error(semd_mask_process(&p, 1, NULL, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "masks is NULL");
    expect_error(semd_mask_process(&p, 1, m, NULL, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "std is NULL");
    expect_error(semd_mask_process(&p, 1, m, std, NULL, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "strength is NULL");
    expect_error(semd_mask_process(&p, 1, m, std, strength, NULL, NULL, NULL, NULL), SEMD_EINVAL,
                 "M is NULL");
    std[1] = -1.0f;
    expect_error(semd_mask_process(&p, 2, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "std[1] = -1");
    std[1] = NAN;
    expect_error(semd_mask_process(&p, 2, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "std[1]");
    std[1] = 2000.0f;
    expect_error(semd_mask_process(&p, 2, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "std[1] = 2000");
    std[1] = 0.0f;
    strength[0] = 1.5f;
    expect_error(semd_mask_process(&p, 2, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "strength[0] = 1.5");
    strength[0] = 1.0f;
    m[64 + 9] = 1.25f;
    expect_error(semd_mask_process(&p, 2, m, std, strength, M, NULL, NULL, NULL), SEMD_EINVAL,
                 "masks[1] pixel (1, 1) = 1.25");
    m[64 + 9] = NAN;
    expect_error(semd_mask_blurred(&p, 2, m, std, M), SEMD_EINVAL, "masks[1]");
    m[64 + 9] = 0.0f;
    expect_error(semd_mask_blurred(&p, 2, m, std, NULL), SEMD_EINVAL, "out is NULL");

    expect_error(semd_mask_blur(m, M, 8, 8, 0.0, 3), SEMD_EINVAL, "std 0");
    expect_error(semd_mask_blur(m, M, 8, 8, 1.0, 4), SEMD_EINVAL, "window 4");
    expect_error(semd_mask_blur(m, M, 0, 8, 1.0, 3), SEMD_EINVAL, "size 8x0");
    expect_error(semd_mask_blur(NULL, M, 8, 8, 1.0, 3), SEMD_EINVAL, "in is NULL");
}

/* ---- speed -------------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 512x512, three std-8 layers, T = 5: a mask update must cost a few ms. */
TEST(timing_512_three_layers)
{
    int W = 512, H = 512, w = 64, h = 64;
    size_t plane = (size_t)W * H, lat = (size_t)w * h;
    semd_mask_params p = params(W, H, SEMD_MASK_CONTINUOUS);
    float *m = alloc_f(3 * plane), *M = alloc_f(3 * 5 * lat), *cnt = alloc_f(5 * lat),
          *G = alloc_f(5 * lat);
    int shifts[30];
    fill_rect(m, W, 0, H, 0, W, 1.0f);
    fill_rect(m + plane, W, 64, 320, 40, 300, 1.0f);
    fill_rect(m + 2 * plane, W, 200, 480, 256, 500, 0.8f);
    float std[3] = {8, 8, 8}, strength[3] = {1, 1, 1};
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        ASSERT_OK(semd_mask_process(&p, 3, m, std, strength, M, cnt, G, shifts));
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("mask processing 512x512, 3 layers, std 8, T 5: %.2f ms (best of 5)\n", best * 1e3);
    ASSERT(best < 1.0); /* generous: sanitizer builds are several times slower */
    free(m);
    free(M);
    free(cnt);
    free(G);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(worked_example_continuous),
    TEST_ENTRY(discrete_and_semi_continuous),
    TEST_ENTRY(strength_scales_before_quantisation),
    TEST_ENTRY(binary_mask_same_every_slot),
    TEST_ENTRY(std8_widens_monotonically),
    TEST_ENTRY(cover_alpha_drops_covered_pixels_discrete),
    TEST_ENTRY(cover_alpha_continuous_value),
    TEST_ENTRY(blur_matches_bruteforce_2d),
    TEST_ENTRY(blurred_layers_share_one_window),
    TEST_ENTRY(window_size),
    TEST_ENTRY(nearest_downsample_picks_top_left),
    TEST_ENTRY(process_matches_bruteforce_pipeline),
    TEST_ENTRY(counts_and_background_weight),
    TEST_ENTRY(zero_layers),
    TEST_ENTRY(shifts_of_hand_made_masks),
    TEST_ENTRY(process_reports_shifts_per_slot),
    TEST_ENTRY(roll_round_trip),
    TEST_ENTRY(normalize),
    TEST_ENTRY(errors),
    TEST_ENTRY(timing_512_three_layers),
    {NULL, NULL}};

SEMD_TEST_MAIN(tests)
