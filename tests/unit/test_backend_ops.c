/*
 * Every op of every backend against a plain double-precision reference written
 * here, on random inputs; plus each op's shape checks. Backends that are not
 * built or have no device here are skipped.
 */
#include <stdint.h>

#include "harness.h"
#include "semd/backend.h"
#include "semd/status.h"

#define TOL 1e-5

static const char *const backends[] = {"cpu", "cuda"};

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static semd_tensor *rand_tensor(semd_backend *be, int ndim, int64_t a, int64_t b, int64_t c,
                                float scale, float **host)
{
    int64_t ne[3] = {a, b, c};
    semd_tensor *t;
    ASSERT_OK(semd_tensor_new(be, ndim, ne, &t));
    int64_t n = semd_tensor_numel(t);
    *host = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) (*host)[i] = frand() * scale;
    ASSERT_OK(semd_tensor_set(t, *host));
    return t;
}

static semd_tensor *empty_like(semd_backend *be, int ndim, int64_t a, int64_t b, int64_t c)
{
    int64_t ne[3] = {a, b, c};
    semd_tensor *t;
    ASSERT_OK(semd_tensor_new(be, ndim, ne, &t));
    return t;
}

static float *fetch(const semd_tensor *t)
{
    float *h = malloc((size_t)semd_tensor_numel(t) * sizeof(float));
    ASSERT_OK(semd_tensor_get(t, h));
    return h;
}

static void check(const semd_tensor *t, const double *want, const char *what)
{
    size_t n = (size_t)semd_tensor_numel(t);
    float *got = fetch(t), *ref = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) ref[i] = (float)want[i];
    double e = semd_rel_l2(got, ref, n);
    if (!(e <= TOL)) FAIL("%s on %s: relative L2 error %.3g", what, semd_backend_name(t->be), e);
    free(got);
    free(ref);
}

/* Run fn on every available backend. */
static void for_each_backend(void (*fn)(semd_backend *))
{
    int ran = 0;
    for (size_t i = 0; i < sizeof backends / sizeof *backends; i++) {
        semd_backend *be;
        if (semd_backend_new(backends[i], &be) != SEMD_OK) {
            printf("skip %s: %s\n", backends[i], semd_last_error());
            continue;
        }
        fn(be);
        semd_backend_free(be);
        ran++;
    }
    ASSERT(ran >= 1);
}

static void do_linear(semd_backend *be)
{
    float *hx, *hw, *hb;
    semd_tensor *x = rand_tensor(be, 3, 2, 5, 19, 1, &hx), *w = rand_tensor(be, 2, 23, 19, 0, 1, &hw);
    semd_tensor *b = rand_tensor(be, 1, 23, 0, 0, 1, &hb), *y = empty_like(be, 3, 2, 5, 23);
    double *want = calloc(10 * 23, sizeof(double));
    for (int use_bias = 0; use_bias < 2; use_bias++) {
        for (int r = 0; r < 10; r++)
            for (int o = 0; o < 23; o++) {
                double s = use_bias ? hb[o] : 0;
                for (int i = 0; i < 19; i++) s += (double)hx[r * 19 + i] * hw[o * 19 + i];
                want[r * 23 + o] = s;
            }
        ASSERT_OK(semd_op_linear(y, x, w, use_bias ? b : NULL));
        check(y, want, use_bias ? "linear+bias" : "linear");
    }
    /* shape errors name the op */
    semd_tensor *bad = empty_like(be, 3, 2, 5, 22);
    ASSERT_EQ(semd_op_linear(bad, x, w, b), SEMD_ESHAPE);
    ASSERT_CONTAINS(semd_last_error(), "linear");
    ASSERT_EQ(semd_op_linear(y, x, w, x), SEMD_ESHAPE);
    ASSERT_EQ(semd_op_linear(y, w, x, NULL), SEMD_ESHAPE);
    semd_tensor *ts[] = {x, w, b, y, bad};
    for (int i = 0; i < 5; i++) semd_tensor_free(ts[i]);
    free(hx), free(hw), free(hb), free(want);
}

TEST(linear) { for_each_backend(do_linear); }

static void do_layer_norm(semd_backend *be)
{
    float *hx, *hg, *hb;
    semd_tensor *x = rand_tensor(be, 3, 3, 7, 40, 3, &hx), *g = rand_tensor(be, 1, 40, 0, 0, 1, &hg);
    semd_tensor *b = rand_tensor(be, 1, 40, 0, 0, 1, &hb), *y = empty_like(be, 3, 3, 7, 40);
    for (int i = 0; i < 40; i++) hx[i] += 100.0f; /* a row with a large mean */
    ASSERT_OK(semd_tensor_set(x, hx));
    double *want = malloc(21 * 40 * sizeof(double));
    for (int r = 0; r < 21; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < 40; c++) m += hx[r * 40 + c];
        m /= 40;
        for (int c = 0; c < 40; c++) v += (hx[r * 40 + c] - m) * (hx[r * 40 + c] - m);
        v /= 40;
        for (int c = 0; c < 40; c++)
            want[r * 40 + c] = (hx[r * 40 + c] - m) / sqrt(v + 1e-5) * hg[c] + hb[c];
    }
    ASSERT_OK(semd_op_layer_norm(y, x, g, b, 1e-5f));
    check(y, want, "layer_norm");
    ASSERT_OK(semd_op_layer_norm(x, x, g, b, 1e-5f)); /* in place */
    check(x, want, "layer_norm in place");
    ASSERT_EQ(semd_op_layer_norm(y, x, y, b, 1e-5f), SEMD_ESHAPE);
    semd_tensor *ts[] = {x, g, b, y};
    for (int i = 0; i < 4; i++) semd_tensor_free(ts[i]);
    free(hx), free(hg), free(hb), free(want);
}

TEST(layer_norm) { for_each_backend(do_layer_norm); }

static void do_add_unary(semd_backend *be)
{
    float *ha, *hb;
    semd_tensor *a = rand_tensor(be, 2, 17, 33, 0, 4, &ha), *b = rand_tensor(be, 2, 17, 33, 0, 4, &hb);
    semd_tensor *y = empty_like(be, 2, 17, 33, 0);
    const int n = 17 * 33;
    double *want = malloc(n * sizeof(double));
    for (int i = 0; i < n; i++) want[i] = (double)ha[i] + hb[i];
    ASSERT_OK(semd_op_add(y, a, b));
    check(y, want, "add");
    ASSERT_OK(semd_op_add(a, a, b)); /* aliasing the output with an input */
    check(a, want, "add in place");
    ASSERT_OK(semd_tensor_set(a, ha));
    for (int i = 0; i < n; i++) want[i] = ha[i] * 0.25 - 3.0;
    ASSERT_OK(semd_op_scale(y, a, 0.25f, -3.0f));
    check(y, want, "scale");
    const semd_unary fs[] = {SEMD_UNARY_SILU, SEMD_UNARY_GELU, SEMD_UNARY_QUICK_GELU,
                             SEMD_UNARY_RELU, SEMD_UNARY_TANH_CLAMP3};
    for (int f = 0; f < 5; f++) {
        for (int i = 0; i < n; i++) {
            double v = ha[i];
            want[i] = fs[f] == SEMD_UNARY_SILU         ? v / (1 + exp(-v))
                      : fs[f] == SEMD_UNARY_GELU       ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                      : fs[f] == SEMD_UNARY_QUICK_GELU ? v / (1 + exp(-1.702 * v))
                      : fs[f] == SEMD_UNARY_RELU       ? (v > 0 ? v : 0)
                                                       : 3 * tanh(v / 3);
        }
        ASSERT_OK(semd_op_unary(y, a, fs[f]));
        check(y, want, "unary");
    }
    semd_tensor *small = empty_like(be, 1, 5, 0, 0);
    ASSERT_EQ(semd_op_add(small, a, b), SEMD_ESHAPE);
    ASSERT_EQ(semd_op_unary(small, a, SEMD_UNARY_SILU), SEMD_ESHAPE);
    ASSERT_EQ(semd_op_unary(y, a, (semd_unary)99), SEMD_EINVAL);
    semd_tensor *ts[] = {a, b, y, small};
    for (int i = 0; i < 4; i++) semd_tensor_free(ts[i]);
    free(ha), free(hb), free(want);
}

TEST(add_and_unary) { for_each_backend(do_add_unary); }

static void ref_attention(const float *q, const float *k, const float *v, double *o, int B, int lq,
                          int lk, int C, int heads, int causal)
{
    int d = C / heads;
    double *s = malloc((size_t)lk * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < lq; i++) {
                int n = causal ? i + 1 : lk;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < n; j++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++)
                        dot += (double)q[(b * lq + i) * C + h * d + c] * k[(b * lk + j) * C + h * d + c];
                    s[j] = dot / sqrt((double)d);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                for (int c = 0; c < d; c++) {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += s[j] / sum * v[(b * lk + j) * C + h * d + c];
                    o[(b * lq + i) * C + h * d + c] = acc;
                }
            }
    free(s);
}

static void attention_case(semd_backend *be, int B, int lq, int lk, int C, int heads, int causal)
{
    float *hq, *hk, *hv;
    semd_tensor *q = rand_tensor(be, 3, B, lq, C, 2, &hq), *k = rand_tensor(be, 3, B, lk, C, 2, &hk);
    semd_tensor *v = rand_tensor(be, 3, B, lk, C, 1, &hv), *o = empty_like(be, 3, B, lq, C);
    double *want = malloc((size_t)B * lq * C * sizeof(double));
    ref_attention(hq, hk, hv, want, B, lq, lk, C, heads, causal);
    ASSERT_OK(semd_op_attention(o, q, k, v, heads, causal));
    check(o, want, causal ? "causal attention" : "attention");
    semd_tensor *ts[] = {q, k, v, o};
    for (int i = 0; i < 4; i++) semd_tensor_free(ts[i]);
    free(hq), free(hk), free(hv), free(want);
}

static void do_attention(semd_backend *be)
{
    attention_case(be, 2, 77, 77, 32, 4, 1);  /* CLIP-like */
    attention_case(be, 3, 13, 13, 48, 3, 0);
    attention_case(be, 2, 64, 9, 40, 1, 0);   /* cross-attention: Lq != Lk */
    attention_case(be, 1, 5, 77, 64, 8, 0);
    float *h;
    semd_tensor *q = rand_tensor(be, 3, 1, 4, 6, 1, &h), *k = empty_like(be, 3, 1, 5, 6);
    semd_tensor *o = empty_like(be, 3, 1, 4, 6);
    ASSERT_EQ(semd_op_attention(o, q, k, k, 4, 0), SEMD_EINVAL); /* 4 heads do not divide 6 */
    ASSERT_EQ(semd_op_attention(o, q, k, k, 2, 1), SEMD_ESHAPE); /* causal needs Lq == Lk */
    ASSERT_EQ(semd_op_attention(q, q, q, q, 2, 0), SEMD_EINVAL); /* aliasing */
    semd_tensor_free(q), semd_tensor_free(k), semd_tensor_free(o), free(h);
}

TEST(attention) { for_each_backend(do_attention); }

static void do_embed_take(semd_backend *be)
{
    float *ht, *hp;
    semd_tensor *table = rand_tensor(be, 2, 50, 12, 0, 1, &ht), *pos = rand_tensor(be, 2, 9, 12, 0, 1, &hp);
    semd_tensor *y = empty_like(be, 3, 2, 7, 12), *rows_out = empty_like(be, 2, 2, 12, 0);
    int32_t ids[14];
    for (int i = 0; i < 14; i++) ids[i] = (i * 7 + 3) % 50;
    double want[2 * 7 * 12], picked[2 * 12];
    for (int r = 0; r < 14; r++)
        for (int c = 0; c < 12; c++) want[r * 12 + c] = (double)ht[ids[r] * 12 + c] + hp[(r % 7) * 12 + c];
    ASSERT_OK(semd_op_embed(y, ids, table, pos));
    check(y, want, "embed");
    int32_t rows[2] = {6, 2};
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 12; c++) picked[b * 12 + c] = want[(b * 7 + rows[b]) * 12 + c];
    ASSERT_OK(semd_op_take_rows(rows_out, y, rows));
    check(rows_out, picked, "take_rows");
    ids[5] = 50;
    ASSERT_EQ(semd_op_embed(y, ids, table, pos), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "token id 50 at position 5");
    rows[1] = 7;
    ASSERT_EQ(semd_op_take_rows(rows_out, y, rows), SEMD_EINVAL);
    semd_tensor *short_pos = empty_like(be, 2, 6, 12, 0);
    ids[5] = 1;
    ASSERT_EQ(semd_op_embed(y, ids, table, short_pos), SEMD_ESHAPE);
    semd_tensor *ts[] = {table, pos, y, rows_out, short_pos};
    for (int i = 0; i < 5; i++) semd_tensor_free(ts[i]);
    free(ht), free(hp);
}

TEST(embed_and_take_rows) { for_each_backend(do_embed_take); }

TEST(tensor_errors)
{
    semd_backend *be;
    ASSERT_OK(semd_backend_cpu_new(1, &be));
    semd_tensor *t;
    int64_t bad[2] = {3, 0}, five[5] = {1, 1, 1, 1, 1};
    ASSERT_EQ(semd_tensor_new(be, 2, bad, &t), SEMD_EINVAL);
    ASSERT(t == NULL);
    ASSERT_EQ(semd_tensor_new(be, 5, five, &t), SEMD_EINVAL);
    semd_backend *none;
    ASSERT_EQ(semd_backend_new("tpu", &none), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "unknown backend 'tpu'");
    semd_backend *other;
    ASSERT_OK(semd_backend_cpu_new(1, &other));
    int64_t ne[1] = {4};
    semd_tensor *a, *b;
    ASSERT_OK(semd_tensor_new(be, 1, ne, &a));
    ASSERT_OK(semd_tensor_new(other, 1, ne, &b));
    ASSERT_EQ(semd_op_add(a, a, b), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "different backends");
    semd_tensor_free(a), semd_tensor_free(b);
    semd_backend_free(be), semd_backend_free(other);
}

static semd_tensor *rand4(semd_backend *be, int64_t a, int64_t b, int64_t c, int64_t d, float **host)
{
    int64_t ne[4] = {a, b, c, d};
    semd_tensor *t;
    ASSERT_OK(semd_tensor_new(be, 4, ne, &t));
    *host = malloc((size_t)(a * b * c * d) * sizeof(float));
    for (int64_t i = 0; i < a * b * c * d; i++) (*host)[i] = frand();
    ASSERT_OK(semd_tensor_set(t, *host));
    return t;
}

static semd_tensor *empty4(semd_backend *be, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t ne[4] = {a, b, c, d};
    semd_tensor *t;
    ASSERT_OK(semd_tensor_new(be, 4, ne, &t));
    return t;
}

static void conv_case(semd_backend *be, int B, int ci, int h, int w, int co, int k,
                      semd_conv_params p, int bias)
{
    float *hx, *hw, *hb;
    semd_tensor *x = rand4(be, B, ci, h, w, &hx), *wt = rand4(be, co, ci, k, k, &hw);
    semd_tensor *b = rand_tensor(be, 1, co, 0, 0, 1, &hb);
    const int ho = (h + p.pad_top + p.pad_bottom - k) / p.stride + 1;
    const int wo = (w + p.pad_left + p.pad_right - k) / p.stride + 1;
    semd_tensor *y = empty4(be, B, co, ho, wo);
    double *want = malloc((size_t)B * co * ho * wo * sizeof(double));
    for (int n = 0; n < B; n++)
        for (int o = 0; o < co; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double acc = bias ? hb[o] : 0;
                    for (int c = 0; c < ci; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * p.stride - p.pad_top + ky, ix = ox * p.stride - p.pad_left + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                acc += (double)hx[((n * ci + c) * h + iy) * w + ix] *
                                       hw[((o * ci + c) * k + ky) * k + kx];
                            }
                    want[((n * co + o) * ho + oy) * wo + ox] = acc;
                }
    ASSERT_OK(semd_op_conv2d(y, x, wt, bias ? b : NULL, p));
    check(y, want, "conv2d");
    semd_tensor *ts[] = {x, wt, b, y};
    for (int i = 0; i < 4; i++) semd_tensor_free(ts[i]);
    free(hx), free(hw), free(hb), free(want);
}

static void do_conv2d(semd_backend *be)
{
    conv_case(be, 2, 5, 9, 7, 6, 3, (semd_conv_params){1, 1, 1, 1, 1}, 1);   /* UNet 3x3 */
    conv_case(be, 1, 4, 8, 8, 3, 3, (semd_conv_params){2, 1, 1, 1, 1}, 1);   /* UNet downsample */
    conv_case(be, 2, 3, 9, 8, 4, 3, (semd_conv_params){2, 0, 0, 1, 1}, 0);   /* VAE downsample */
    conv_case(be, 2, 7, 5, 6, 9, 1, (semd_conv_params){1, 0, 0, 0, 0}, 1);   /* 1x1, direct GEMM */
    conv_case(be, 1, 2, 6, 6, 2, 1, (semd_conv_params){2, 0, 0, 0, 0}, 0);   /* 1x1 strided */
    float *h;
    semd_tensor *x = rand4(be, 1, 3, 4, 4, &h), *w = empty4(be, 2, 3, 3, 3), *y = empty4(be, 1, 2, 3, 3);
    ASSERT_EQ(semd_op_conv2d(y, x, w, NULL, (semd_conv_params){1, 1, 1, 1, 1}), SEMD_ESHAPE);
    ASSERT_CONTAINS(semd_last_error(), "conv2d");
    ASSERT_EQ(semd_op_conv2d(y, x, w, NULL, (semd_conv_params){0, 1, 1, 1, 1}), SEMD_EINVAL);
    semd_tensor_free(x), semd_tensor_free(w), semd_tensor_free(y), free(h);
}

TEST(conv2d) { for_each_backend(do_conv2d); }

static void do_group_norm(semd_backend *be)
{
    const int B = 2, C = 12, H = 5, W = 3, G = 4, per = C / G, sp = H * W;
    float *hx, *hg, *hb;
    semd_tensor *x = rand4(be, B, C, H, W, &hx), *y = empty4(be, B, C, H, W);
    semd_tensor *g = rand_tensor(be, 1, C, 0, 0, 1, &hg), *b = rand_tensor(be, 1, C, 0, 0, 1, &hb);
    double *want = malloc((size_t)B * C * sp * sizeof(double));
    for (int silu = 0; silu < 2; silu++) {
        for (int n = 0; n < B; n++)
            for (int gr = 0; gr < G; gr++) {
                const float *xs = hx + (n * C + gr * per) * sp;
                double m = 0, v = 0;
                for (int i = 0; i < per * sp; i++) m += xs[i];
                m /= per * sp;
                for (int i = 0; i < per * sp; i++) v += (xs[i] - m) * (xs[i] - m);
                v /= per * sp;
                for (int c = 0; c < per; c++)
                    for (int i = 0; i < sp; i++) {
                        int ch = gr * per + c;
                        double r = (xs[c * sp + i] - m) / sqrt(v + 1e-6) * hg[ch] + hb[ch];
                        want[(n * C + ch) * sp + i] = silu ? r / (1 + exp(-r)) : r;
                    }
            }
        ASSERT_OK(semd_op_group_norm(y, x, g, b, G, 1e-6f, silu));
        check(y, want, silu ? "group_norm+silu" : "group_norm");
    }
    ASSERT_EQ(semd_op_group_norm(y, x, g, b, 5, 1e-6f, 0), SEMD_EINVAL);
    semd_tensor *ts[] = {x, y, g, b};
    for (int i = 0; i < 4; i++) semd_tensor_free(ts[i]);
    free(hx), free(hg), free(hb), free(want);
}

TEST(group_norm) { for_each_backend(do_group_norm); }

static void do_layout_ops(semd_backend *be)
{
    float *ha, *hb, *hbias;
    const int B = 2, C = 3, D = 5, H = 4, W = 3;
    semd_tensor *a = rand4(be, B, C, H, W, &ha), *b = rand4(be, B, D, H, W, &hb);
    /* nearest resize: 2x, and a non-integer ratio (what odd latent sizes need) */
    for (int pass = 0; pass < 2; pass++) {
        const int ho = pass ? 7 : 2 * H, wo = pass ? 5 : 2 * W;
        semd_tensor *up = empty4(be, B, C, ho, wo);
        double *want = malloc((size_t)B * C * ho * wo * sizeof(double));
        for (int p = 0; p < B * C; p++)
            for (int y = 0; y < ho; y++)
                for (int x = 0; x < wo; x++)
                    want[(p * ho + y) * wo + x] = ha[(p * H + y * H / ho) * W + x * W / wo];
        ASSERT_OK(semd_op_upsample_nearest(up, a));
        check(up, want, "upsample_nearest");
        semd_tensor_free(up);
        free(want);
    }
    semd_tensor *cat = empty4(be, B, C + D, H, W);
    double *want = malloc((size_t)B * (C + D) * H * W * sizeof(double));
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C + D; c++)
            for (int i = 0; i < H * W; i++)
                want[(n * (C + D) + c) * H * W + i] =
                    c < C ? ha[(n * C + c) * H * W + i] : hb[(n * D + c - C) * H * W + i];
    ASSERT_OK(semd_op_concat_channels(cat, a, b));
    check(cat, want, "concat_channels");
    ASSERT_EQ(semd_op_concat_channels(cat, a, a), SEMD_ESHAPE);

    semd_tensor *bias = rand_tensor(be, 2, B, C, 0, 1, &hbias), *shifted = empty4(be, B, C, H, W);
    for (int p = 0; p < B * C; p++)
        for (int i = 0; i < H * W; i++) want[p * H * W + i] = (double)ha[p * H * W + i] + hbias[p];
    ASSERT_OK(semd_op_add_channel_bias(shifted, a, bias));
    check(shifted, want, "add_channel_bias");

    semd_tensor *tok = empty_like(be, 3, B, H * W, C), *back = empty4(be, B, C, H, W);
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H * W; i++) want[(n * H * W + i) * C + c] = ha[(n * C + c) * H * W + i];
    ASSERT_OK(semd_op_to_tokens(tok, a));
    check(tok, want, "to_tokens");
    for (int i = 0; i < B * C * H * W; i++) want[i] = ha[i];
    ASSERT_OK(semd_op_from_tokens(back, tok));
    check(back, want, "from_tokens");
    ASSERT_EQ(semd_op_to_tokens(back, a), SEMD_ESHAPE);

    semd_tensor *gx = empty_like(be, 3, B, H * W, 2 * C), *gy = empty_like(be, 3, B, H * W, C);
    float *hg = malloc((size_t)B * H * W * 2 * C * sizeof(float));
    for (int i = 0; i < B * H * W * 2 * C; i++) hg[i] = frand() * 3;
    ASSERT_OK(semd_tensor_set(gx, hg));
    for (int r = 0; r < B * H * W; r++)
        for (int i = 0; i < C; i++) {
            double g = hg[r * 2 * C + C + i];
            want[r * C + i] = hg[r * 2 * C + i] * 0.5 * g * (1 + erf(g / sqrt(2.0)));
        }
    ASSERT_OK(semd_op_geglu(gy, gx));
    check(gy, want, "geglu");
    ASSERT_EQ(semd_op_geglu(gx, gy), SEMD_ESHAPE);

    semd_tensor *ts[] = {a, b, cat, bias, shifted, tok, back, gx, gy};
    for (int i = 0; i < 9; i++) semd_tensor_free(ts[i]);
    free(ha), free(hb), free(hbias), free(hg), free(want);
}

TEST(layout_ops) { for_each_backend(do_layout_ops); }

static const struct semd_test tests[] = {
    TEST_ENTRY(conv2d), TEST_ENTRY(group_norm), TEST_ENTRY(layout_ops),
    TEST_ENTRY(linear),      TEST_ENTRY(layer_norm),          TEST_ENTRY(add_and_unary),
    TEST_ENTRY(attention),   TEST_ENTRY(embed_and_take_rows), TEST_ENTRY(tensor_errors),
    {0},
};

SEMD_TEST_MAIN(tests)
