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
    const semd_unary fs[] = {SEMD_UNARY_SILU, SEMD_UNARY_GELU, SEMD_UNARY_QUICK_GELU};
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < n; i++) {
            double v = ha[i];
            want[i] = fs[f] == SEMD_UNARY_SILU   ? v / (1 + exp(-v))
                      : fs[f] == SEMD_UNARY_GELU ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                                                 : v / (1 + exp(-1.702 * v));
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

static const struct semd_test tests[] = {
    TEST_ENTRY(linear),      TEST_ENTRY(layer_norm),          TEST_ENTRY(add_and_unary),
    TEST_ENTRY(attention),   TEST_ENTRY(embed_and_take_rows), TEST_ENTRY(tensor_errors),
    {0},
};

SEMD_TEST_MAIN(tests)
