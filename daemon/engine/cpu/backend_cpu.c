/*
 * The CPU reference backend: fp32 throughout, GEMMs through OpenBLAS, the
 * element-wise work spread with OpenMP. Clarity over speed where the two
 * conflict: this backend is the oracle the GPU backend is compared with.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "semd/status.h"

/* OpenBLAS's own thread count control (declared in its cblas.h, but not netlib's). */
void openblas_set_num_threads(int num_threads);

typedef struct cpu_ctx {
    int threads;
} cpu_ctx;

static int threads_of(semd_backend *be) { return ((cpu_ctx *)be->ctx)->threads; }

static void cpu_destroy(semd_backend *be)
{
    free(be->ctx);
    free(be);
}

static float *cpu_alloc(semd_backend *be, size_t n)
{
    /* 64-byte alignment keeps BLAS and vector loads on whole cache lines. */
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static void cpu_release(semd_backend *be, float *p) { free(p); }

static int cpu_copy(semd_backend *be, float *dst, const float *src, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
    return SEMD_OK;
}

static int cpu_embed(semd_backend *be, semd_tensor *y, const int32_t *ids, const semd_tensor *table,
                     const semd_tensor *pos)
{
    const int64_t rows = y->ne[0] * y->ne[1], len = y->ne[1], dim = y->ne[2];
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t r = 0; r < rows; r++) {
        const float *e = table->data + (int64_t)ids[r] * dim;
        float *out = y->data + r * dim;
        if (pos) {
            const float *p = pos->data + (r % len) * dim;
            for (int64_t c = 0; c < dim; c++) out[c] = e[c] + p[c];
        } else {
            memcpy(out, e, (size_t)dim * sizeof(float));
        }
    }
    return SEMD_OK;
}

/*
 * One GEMM per sample (outermost dim): OpenBLAS picks its micro-kernels by
 * matrix size, so one GEMM over a whole batch rounds a sample differently
 * than a GEMM over that sample alone. Per-sample GEMMs make every result
 * independent of what else shares the batch (several canvases in one UNet
 * call must give what each gives alone, semanticdraw.md 7.6).
 */
static int cpu_linear(semd_backend *be, semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                      const semd_tensor *b, int64_t rows)
{
    const int64_t out = w->ne[0], in = w->ne[1];
    const int64_t samples = x->ndim > 1 ? x->ne[0] : 1, per = rows / samples;
    for (int64_t s = 0; s < samples; s++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)per, (int)out, (int)in, 1.0f,
                    x->data + s * per * in, (int)in, w->data, (int)in, 0.0f, y->data + s * per * out,
                    (int)out);
    if (b) {
#pragma omp parallel for num_threads(threads_of(be))
        for (int64_t r = 0; r < rows; r++) {
            float *yr = y->data + r * out;
            for (int64_t c = 0; c < out; c++) yr[c] += b->data[c];
        }
    }
    return SEMD_OK;
}

static int cpu_layer_norm(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                          const semd_tensor *gamma, const semd_tensor *beta, float eps)
{
    const int64_t dim = x->ne[x->ndim - 1], rows = semd_tensor_numel(x) / dim;
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * dim;
        float *yr = y->data + r * dim;
        double sum = 0, sq = 0;
        for (int64_t c = 0; c < dim; c++) sum += xr[c];
        const double mean = sum / (double)dim;
        for (int64_t c = 0; c < dim; c++) sq += (xr[c] - mean) * (xr[c] - mean);
        const float inv = (float)(1.0 / sqrt(sq / (double)dim + eps)), m = (float)mean;
        for (int64_t c = 0; c < dim; c++) yr[c] = (xr[c] - m) * inv * gamma->data[c] + beta->data[c];
    }
    return SEMD_OK;
}

static int cpu_add(semd_backend *be, semd_tensor *y, const semd_tensor *a, const semd_tensor *b)
{
    const int64_t n = semd_tensor_numel(y);
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t i = 0; i < n; i++) y->data[i] = a->data[i] + b->data[i];
    return SEMD_OK;
}

static inline float apply_unary(float v, semd_unary f)
{
    switch (f) {
    case SEMD_UNARY_SILU: return v / (1.0f + expf(-v));
    case SEMD_UNARY_GELU: return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    case SEMD_UNARY_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    case SEMD_UNARY_RELU: return v > 0.0f ? v : 0.0f;
    case SEMD_UNARY_TANH_CLAMP3: return 3.0f * tanhf(v / 3.0f);
    }
    return v;
}

static int cpu_unary(semd_backend *be, semd_tensor *y, const semd_tensor *x, semd_unary f)
{
    const int64_t n = semd_tensor_numel(y);
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t i = 0; i < n; i++) y->data[i] = apply_unary(x->data[i], f);
    return SEMD_OK;
}

/* Row-wise softmax in place; with `causal`, row i keeps only columns 0..i. */
static void softmax_rows(float *s, int64_t rows, int64_t cols, int causal, int threads)
{
#pragma omp parallel for num_threads(threads)
    for (int64_t i = 0; i < rows; i++) {
        float *row = s + i * cols;
        const int64_t n = causal ? i + 1 : cols;
        float mx = row[0];
        for (int64_t j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
        float sum = 0;
        for (int64_t j = 0; j < n; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < n; j++) row[j] *= inv;
        for (int64_t j = n; j < cols; j++) row[j] = 0.0f;
    }
}

/*
 * One (batch, head) at a time: S = scale Q_h K_h^T, softmax, O_h = P V_h. The
 * per-head slices are addressed in place with a leading dimension of C, so no
 * transposes or copies are made.
 */
static int cpu_attention(semd_backend *be, semd_tensor *o, const semd_tensor *q,
                         const semd_tensor *k, const semd_tensor *v, int heads, int causal)
{
    const int64_t batch = q->ne[0], lq = q->ne[1], lk = k->ne[1], ch = q->ne[2];
    const int64_t d = ch / heads;
    const float scale = 1.0f / sqrtf((float)d);
    float *s = malloc((size_t)(lq * lk) * sizeof(float));
    if (!s) return semd_error(SEMD_ENOMEM, "attention: cannot allocate %lldx%lld scores",
                              (long long)lq, (long long)lk);
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t h = 0; h < heads; h++) {
            const float *qh = q->data + b * lq * ch + h * d;
            const float *kh = k->data + b * lk * ch + h * d;
            const float *vh = v->data + b * lk * ch + h * d;
            float *oh = o->data + b * lq * ch + h * d;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)lq, (int)lk, (int)d, scale,
                        qh, (int)ch, kh, (int)ch, 0.0f, s, (int)lk);
            softmax_rows(s, lq, lk, causal, threads_of(be));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)lq, (int)d, (int)lk, 1.0f,
                        s, (int)lk, vh, (int)ch, 0.0f, oh, (int)ch);
        }
    }
    free(s);
    return SEMD_OK;
}

static int cpu_take_rows(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                         const int32_t *rows)
{
    const int64_t len = x->ne[1], dim = x->ne[2];
    for (int64_t b = 0; b < x->ne[0]; b++)
        memcpy(y->data + b * dim, x->data + (b * len + rows[b]) * dim, (size_t)dim * sizeof(float));
    return SEMD_OK;
}

/* Unfold one image [Ci,H,W] into col [Ci*kh*kw][Ho*Wo], zeros where padding. */
static void im2col(const float *x, int64_t ci, int64_t h, int64_t w, int64_t kh, int64_t kw,
                   semd_conv_params p, int64_t ho, int64_t wo, float *col, int threads)
{
#pragma omp parallel for collapse(2) num_threads(threads)
    for (int64_t c = 0; c < ci; c++)
        for (int64_t ky = 0; ky < kh; ky++)
            for (int64_t kx = 0; kx < kw; kx++) {
                float *row = col + ((c * kh + ky) * kw + kx) * ho * wo;
                for (int64_t oy = 0; oy < ho; oy++) {
                    const int64_t iy = oy * p.stride - p.pad_top + ky;
                    float *out = row + oy * wo;
                    if (iy < 0 || iy >= h) {
                        memset(out, 0, (size_t)wo * sizeof(float));
                        continue;
                    }
                    const float *in = x + (c * h + iy) * w;
                    for (int64_t ox = 0; ox < wo; ox++) {
                        const int64_t ix = ox * p.stride - p.pad_left + kx;
                        out[ox] = (ix >= 0 && ix < w) ? in[ix] : 0.0f;
                    }
                }
            }
}

/*
 * Convolution as GEMM per image: Y[Co][HoWo] = W[Co][K] . col[K][HoWo]. A 1x1,
 * stride-1, unpadded convolution needs no unfolding: the image is the column
 * matrix already.
 */
static int cpu_conv2d(semd_backend *be, semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                      const semd_tensor *b, semd_conv_params p)
{
    const int64_t batch = x->ne[0], ci = x->ne[1], h = x->ne[2], wd = x->ne[3];
    const int64_t co = w->ne[0], kh = w->ne[2], kw = w->ne[3], ho = y->ne[2], wo = y->ne[3];
    const int64_t k = ci * kh * kw, n = ho * wo;
    const int direct = kh == 1 && kw == 1 && p.stride == 1 && !p.pad_top && !p.pad_left &&
                       !p.pad_bottom && !p.pad_right;
    float *col = direct ? NULL : malloc((size_t)(k * n) * sizeof(float));
    if (!direct && !col)
        return semd_error(SEMD_ENOMEM, "conv2d: cannot allocate a %lldx%lld column buffer",
                          (long long)k, (long long)n);
    for (int64_t bi = 0; bi < batch; bi++) {
        const float *xb = x->data + bi * ci * h * wd;
        float *yb = y->data + bi * co * n;
        if (!direct) im2col(xb, ci, h, wd, kh, kw, p, ho, wo, col, threads_of(be));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)co, (int)n, (int)k, 1.0f,
                    w->data, (int)k, direct ? xb : col, (int)n, 0.0f, yb, (int)n);
        if (b) {
#pragma omp parallel for num_threads(threads_of(be))
            for (int64_t c = 0; c < co; c++)
                for (int64_t i = 0; i < n; i++) yb[c * n + i] += b->data[c];
        }
    }
    free(col);
    return SEMD_OK;
}

static int cpu_group_norm(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                          const semd_tensor *gamma, const semd_tensor *beta, int groups, float eps,
                          int silu)
{
    const int64_t batch = x->ne[0], ch = x->ne[1], sp = semd_tensor_numel(x) / (batch * ch);
    const int64_t per = ch / groups, count = per * sp;
#pragma omp parallel for collapse(2) num_threads(threads_of(be))
    for (int64_t b = 0; b < batch; b++)
        for (int64_t g = 0; g < groups; g++) {
            const float *xg = x->data + (b * ch + g * per) * sp;
            float *yg = y->data + (b * ch + g * per) * sp;
            double sum = 0, sq = 0;
            for (int64_t i = 0; i < count; i++) sum += xg[i];
            const double mean = sum / (double)count;
            for (int64_t i = 0; i < count; i++) sq += (xg[i] - mean) * (xg[i] - mean);
            const float inv = (float)(1.0 / sqrt(sq / (double)count + eps)), m = (float)mean;
            for (int64_t c = 0; c < per; c++) {
                const float ga = gamma->data[g * per + c] * inv, be_ = beta->data[g * per + c];
                for (int64_t i = 0; i < sp; i++) {
                    float v = (xg[c * sp + i] - m) * ga + be_;
                    yg[c * sp + i] = silu ? v / (1.0f + expf(-v)) : v;
                }
            }
        }
    return SEMD_OK;
}

static int cpu_upsample_nearest(semd_backend *be, semd_tensor *y, const semd_tensor *x)
{
    const int64_t planes = x->ne[0] * x->ne[1], h = x->ne[2], w = x->ne[3];
    const int64_t ho = y->ne[2], wo = y->ne[3];
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < ho; oy++) {
            const float *in = x->data + (pl * h + oy * h / ho) * w;
            float *out = y->data + (pl * ho + oy) * wo;
            for (int64_t ox = 0; ox < wo; ox++) out[ox] = in[ox * w / wo];
        }
    return SEMD_OK;
}

static int cpu_concat_channels(semd_backend *be, semd_tensor *y, const semd_tensor *a,
                               const semd_tensor *b)
{
    const int64_t sp = a->ne[2] * a->ne[3], na = a->ne[1] * sp, nb = b->ne[1] * sp;
    for (int64_t bi = 0; bi < a->ne[0]; bi++) {
        memcpy(y->data + bi * (na + nb), a->data + bi * na, (size_t)na * sizeof(float));
        memcpy(y->data + bi * (na + nb) + na, b->data + bi * nb, (size_t)nb * sizeof(float));
    }
    return SEMD_OK;
}

static int cpu_add_channel_bias(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                                const semd_tensor *bias)
{
    const int64_t planes = x->ne[0] * x->ne[1], sp = semd_tensor_numel(x) / planes;
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t i = 0; i < sp; i++) y->data[pl * sp + i] = x->data[pl * sp + i] + bias->data[pl];
    return SEMD_OK;
}

/* Per batch, y[cols][rows] = x[rows][cols]^T, in cache-sized tiles. */
static int cpu_transpose_tokens(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                                int64_t batch, int64_t rows, int64_t cols)
{
    enum { T = 32 };
#pragma omp parallel for collapse(3) num_threads(threads_of(be))
    for (int64_t b = 0; b < batch; b++)
        for (int64_t r0 = 0; r0 < rows; r0 += T)
            for (int64_t c0 = 0; c0 < cols; c0 += T) {
                const float *xb = x->data + b * rows * cols;
                float *yb = y->data + b * rows * cols;
                for (int64_t r = r0; r < r0 + T && r < rows; r++)
                    for (int64_t c = c0; c < c0 + T && c < cols; c++) yb[c * rows + r] = xb[r * cols + c];
            }
    return SEMD_OK;
}

static int cpu_geglu(semd_backend *be, semd_tensor *y, const semd_tensor *x)
{
    const int64_t inner = y->ne[y->ndim - 1], rows = semd_tensor_numel(y) / inner;
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * 2 * inner;
        float *yr = y->data + r * inner;
        for (int64_t i = 0; i < inner; i++)
            yr[i] = xr[i] * apply_unary(xr[inner + i], SEMD_UNARY_GELU);
    }
    return SEMD_OK;
}

static int cpu_scale(semd_backend *be, semd_tensor *y, const semd_tensor *x, float s, float t)
{
    const int64_t n = semd_tensor_numel(y);
#pragma omp parallel for num_threads(threads_of(be))
    for (int64_t i = 0; i < n; i++) y->data[i] = x->data[i] * s + t;
    return SEMD_OK;
}

static const struct semd_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .embed = cpu_embed,
    .linear = cpu_linear,
    .layer_norm = cpu_layer_norm,
    .add = cpu_add,
    .unary = cpu_unary,
    .attention = cpu_attention,
    .take_rows = cpu_take_rows,
    .conv2d = cpu_conv2d,
    .group_norm = cpu_group_norm,
    .upsample_nearest = cpu_upsample_nearest,
    .concat_channels = cpu_concat_channels,
    .add_channel_bias = cpu_add_channel_bias,
    .transpose_tokens = cpu_transpose_tokens,
    .geglu = cpu_geglu,
    .scale = cpu_scale,
};

int semd_backend_cpu_new(int threads, semd_backend **out)
{
    *out = NULL;
    semd_backend *be = calloc(1, sizeof *be);
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return semd_error(SEMD_ENOMEM, "cpu backend: out of memory");
    }
    ctx->threads = threads > 0 ? threads : omp_get_max_threads();
    if (threads > 0) openblas_set_num_threads(threads);
    be->ops = &cpu_ops;
    be->ctx = ctx;
    *out = be;
    return SEMD_OK;
}
