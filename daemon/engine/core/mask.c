/* Mask preprocessing (semanticdraw.md section 5) and centering shifts (8.2). */
#include "semd/mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "semd/status.h"

/* The blur std used for a layer whose std is 0 while another layer blurs (5.2 step 2). */
#define ZERO_STD 1e-5

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static float clip01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

/* a mod m in [0, m) for any int a (m > 0). */
static int modi(long a, int m)
{
    long r = a % m;
    return (int)(r < 0 ? r + m : r);
}

/* ---- argument checks -------------------------------------------------------- */

static int check_params(const char *fn, const semd_mask_params *p)
{
    if (!p) return semd_error(SEMD_EINVAL, "%s: params is NULL", fn);
    if (p->width <= 0 || p->height <= 0 || p->width % 8 || p->height % 8 ||
        p->width > SEMD_MASK_MAX_SIDE || p->height > SEMD_MASK_MAX_SIDE)
        return semd_error(SEMD_EINVAL, "%s: image size %dx%d must be positive multiples of 8 up to %d",
                          fn, p->width, p->height, SEMD_MASK_MAX_SIDE);
    if (p->n_slots < 1) return semd_error(SEMD_EINVAL, "%s: n_slots %d must be >= 1", fn, p->n_slots);
    if (!p->noise_levels) return semd_error(SEMD_EINVAL, "%s: noise_levels is NULL", fn);
    for (int k = 0; k < p->n_slots; k++) {
        float b = p->noise_levels[k];
        /* Strictly decreasing and positive, so every quantisation denominator is > 0. */
        if (!(b > 0.0f && b <= 1.0f) || (k > 0 && !(b < p->noise_levels[k - 1])))
            return semd_error(SEMD_EINVAL,
                              "%s: noise_levels[%d] = %g: levels must be strictly decreasing in (0, 1]",
                              fn, k, (double)b);
    }
    if (p->type != SEMD_MASK_CONTINUOUS && p->type != SEMD_MASK_SEMI_CONTINUOUS &&
        p->type != SEMD_MASK_DISCRETE)
        return semd_error(SEMD_EINVAL, "%s: unknown mask type %d", fn, (int)p->type);
    if (!(p->cover_alpha >= 0.0f && p->cover_alpha <= 1.0f))
        return semd_error(SEMD_EINVAL, "%s: cover_alpha %g must be in [0, 1]", fn,
                          (double)p->cover_alpha);
    return SEMD_OK;
}

static int check_layers(const char *fn, const semd_mask_params *p, int n_layers, const float *masks,
                        const float *std, const float *strength, int need_strength)
{
    if (n_layers < 0) return semd_error(SEMD_EINVAL, "%s: n_layers %d is negative", fn, n_layers);
    if (n_layers == 0) return SEMD_OK;
    if (!masks || !std || (need_strength && !strength))
        return semd_error(SEMD_EINVAL, "%s: %s is NULL", fn,
                          !masks ? "masks" : !std ? "std" : "strength");
    for (int i = 0; i < n_layers; i++) {
        if (!(std[i] >= 0.0f && std[i] <= SEMD_MASK_MAX_STD))
            return semd_error(SEMD_EINVAL, "%s: std[%d] = %g must be in [0, %g]", fn, i,
                              (double)std[i], (double)SEMD_MASK_MAX_STD);
        if (need_strength && !(strength[i] >= 0.0f && strength[i] <= 1.0f))
            return semd_error(SEMD_EINVAL, "%s: strength[%d] = %g must be in [0, 1]", fn, i,
                              (double)strength[i]);
    }
    size_t plane = (size_t)p->width * (size_t)p->height;
    for (int i = 0; i < n_layers; i++) {
        const float *m = masks + (size_t)i * plane;
        for (size_t j = 0; j < plane; j++)
            if (!(m[j] >= 0.0f && m[j] <= 1.0f))
                return semd_error(SEMD_EINVAL, "%s: masks[%d] pixel (%zu, %zu) = %g is outside [0, 1]",
                                  fn, i, j / (size_t)p->width, j % (size_t)p->width, (double)m[j]);
    }
    return SEMD_OK;
}

/* ---- the blur --------------------------------------------------------------- */

int semd_mask_window(int n_layers, const float *std)
{
    float max = 0.0f;
    for (int i = 0; i < n_layers; i++)
        if (std[i] > max) max = std[i];
    if (!(max > 0.0f)) return 0;
    return 2 * (int)ceil(3.0 * (double)max) + 1;
}

/*
 * The normalised 1-D kernel g[0 .. 2R] (offset d at g[d + R]) of a std on a
 * window of 2R + 1 taps. The 2-D kernel of 5.2 is g(dy)*g(dx): the Gaussian
 * factorises, and so does its sum. Returns the reach: the largest |d| whose
 * weight did not underflow to 0 (the zero taps add exact zeros, so skipping
 * them changes nothing).
 */
static int make_kernel(double std, int R, double *g)
{
    double sum = 0.0;
    for (int d = -R; d <= R; d++) {
        /* The expression of 5.2 (and of the PyTorch reference), evaluated in the same order. */
        g[d + R] = exp(-((double)d * (double)d) / (2.0 * std * std));
        sum += g[d + R];
    }
    int reach = 0;
    for (int d = -R; d <= R; d++) {
        g[d + R] /= sum;
        if (g[d + R] != 0.0 && abs(d) > reach) reach = abs(d);
    }
    return reach;
}

/*
 * Blur `in` [H][W] with the separable kernel g (centre c, taps -r..r) and
 * replicate borders, evaluated only at rows and columns that are multiples of
 * `step` (1: the full image; 8: the pixels the nearest downsample keeps).
 * out is [H/step][W/step]; row is W doubles of scratch. Vertical pass first,
 * each pass accumulated in float64 in tap order, one cast to float32 at the end.
 */
static void blur_strided(const float *in, int H, int W, const double *g, int c, int r, int step,
                         float *out, double *row)
{
    int ho = H / step, wo = W / step;
    for (int oy = 0; oy < ho; oy++) {
        int y = oy * step;
        for (int x = 0; x < W; x++) row[x] = 0.0;
        for (int d = -r; d <= r; d++) {
            const float *src = in + (size_t)clampi(y + d, 0, H - 1) * (size_t)W;
            double wgt = g[c + d];
            for (int x = 0; x < W; x++) row[x] += wgt * (double)src[x];
        }
        for (int ox = 0; ox < wo; ox++) {
            int x = ox * step;
            double s = 0.0;
            for (int d = -r; d <= r; d++) s += g[c + d] * row[clampi(x + d, 0, W - 1)];
            out[(size_t)oy * (size_t)wo + (size_t)ox] = (float)s;
        }
    }
}

int semd_mask_blur(const float *in, float *out, int height, int width, double std, int window)
{
    if (!in || !out) return semd_error(SEMD_EINVAL, "semd_mask_blur: %s is NULL", !in ? "in" : "out");
    if (height < 1 || width < 1)
        return semd_error(SEMD_EINVAL, "semd_mask_blur: size %dx%d must be positive", width, height);
    if (!(std > 0.0 && std <= SEMD_MASK_MAX_STD))
        return semd_error(SEMD_EINVAL, "semd_mask_blur: std %g must be in (0, %g]", std,
                          (double)SEMD_MASK_MAX_STD);
    if (window < 1 || window % 2 == 0 || window > 6 * (int)SEMD_MASK_MAX_STD + 3)
        return semd_error(SEMD_EINVAL, "semd_mask_blur: window %d must be odd and positive", window);
    int R = window / 2;
    double *g = malloc((size_t)window * sizeof *g);
    double *row = malloc((size_t)width * sizeof *row);
    if (!g || !row) {
        free(g);
        free(row);
        return semd_error(SEMD_ENOMEM, "semd_mask_blur: out of memory");
    }
    int reach = make_kernel(std, R, g);
    blur_strided(in, height, width, g, R, reach, 1, out, row);
    free(g);
    free(row);
    return SEMD_OK;
}

/* ---- steps 1-2 for one layer at a time -------------------------------------- */

/*
 * Cover alpha couples a layer to every layer above it, so the layers are
 * visited top down, keeping a map of the pixels some higher layer covers.
 */
typedef struct layer_pass {
    const semd_mask_params *p;
    const float *masks;
    int R;                  /* window / 2; -1 when nothing blurs */
    double *kern;           /* [P][2R+1] normalised 1-D kernels */
    int *reach;             /* [P] */
    float *eff;             /* [H][W] the current layer after cover alpha */
    unsigned char *covered; /* [H][W] a higher layer is non-zero here */
    double *row;            /* [W] scratch of the vertical pass */
} layer_pass;

static void pass_free(layer_pass *lp)
{
    free(lp->kern);
    free(lp->reach);
    free(lp->eff);
    free(lp->covered);
    free(lp->row);
}

static int pass_init(layer_pass *lp, const char *fn, const semd_mask_params *p, int n_layers,
                     const float *masks, const float *std)
{
    memset(lp, 0, sizeof *lp);
    lp->p = p;
    lp->masks = masks;
    size_t plane = (size_t)p->width * (size_t)p->height;
    int window = semd_mask_window(n_layers, std);
    lp->R = window ? window / 2 : -1;
    lp->eff = malloc(plane * sizeof *lp->eff);
    lp->covered = calloc(plane, 1);
    lp->row = malloc((size_t)p->width * sizeof *lp->row);
    if (window) {
        lp->kern = malloc((size_t)n_layers * (size_t)window * sizeof *lp->kern);
        lp->reach = malloc((size_t)n_layers * sizeof *lp->reach);
    }
    if (!lp->eff || !lp->covered || !lp->row || (window && (!lp->kern || !lp->reach))) {
        pass_free(lp);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", fn);
    }
    for (int i = 0; window && i < n_layers; i++) {
        double s = std[i] > 0.0f ? (double)std[i] : ZERO_STD;
        lp->reach[i] = make_kernel(s, lp->R, lp->kern + (size_t)i * (size_t)window);
    }
    return SEMD_OK;
}

/*
 * Layer i after steps 1-2, sampled every `step` pixels into vals
 * [H/step][W/step]. Call for i = P-1 down to 0.
 */
static void pass_layer(layer_pass *lp, int i, int step, float *vals)
{
    int H = lp->p->height, W = lp->p->width;
    size_t plane = (size_t)W * (size_t)H;
    const float *m = lp->masks + (size_t)i * plane;
    float alpha = lp->p->cover_alpha;
    for (size_t j = 0; j < plane; j++) {
        lp->eff[j] = lp->covered[j] ? m[j] * alpha : m[j];
        /* The published code tests the sum of the original higher masks. */
        if (m[j] > 0.0f) lp->covered[j] = 1;
    }
    if (lp->R < 0) {
        int ho = H / step, wo = W / step;
        for (int y = 0; y < ho; y++)
            for (int x = 0; x < wo; x++)
                vals[(size_t)y * (size_t)wo + (size_t)x] =
                    lp->eff[(size_t)y * (size_t)step * (size_t)W + (size_t)x * (size_t)step];
        return;
    }
    const double *g = lp->kern + (size_t)i * (size_t)(2 * lp->R + 1);
    blur_strided(lp->eff, H, W, g, lp->R, lp->reach[i], step, vals, lp->row);
}

/* ---- quantisation, counts, shifts ------------------------------------------- */

/* Step 4 for slot k of values v[n] (after strength) into q[n]. */
static void quantise(const semd_mask_params *p, int k, const float *v, float *q, size_t n)
{
    const float *b = p->noise_levels;
    int T = p->n_slots;
    int discrete = p->type == SEMD_MASK_DISCRETE ||
                   (p->type == SEMD_MASK_SEMI_CONTINUOUS && k < T - 1);
    if (discrete) {
        for (size_t j = 0; j < n; j++) q[j] = v[j] > b[k] ? 1.0f : 0.0f;
        return;
    }
    /* Semi-continuous' last slot, clip(m / b_{T-1}), is this with b_T = 0. */
    float next = k + 1 < T ? b[k + 1] : 0.0f;
    float den = b[k] - next;
    for (size_t j = 0; j < n; j++) q[j] = clip01((v[j] - next) / den);
}

void semd_mask_shift(const float *mask, int h, int w, int *dy, int *dx)
{
    int t = -1, b = 0, l = w, r = -1;
    for (int y = 0; y < h; y++) {
        const float *row = mask + (size_t)y * (size_t)w;
        int any = 0;
        for (int x = 0; x < w; x++) {
            if (row[x] == 0.0f) continue;
            any = 1;
            if (x < l) l = x;
            if (x > r) r = x;
        }
        if (!any) continue;
        if (t < 0) t = y;
        b = y;
    }
    if (t < 0) t = b = l = r = 0; /* empty: the published argmax over zeros gives 0 */
    *dy = h / 2 - (t + b + 1) / 2;
    *dx = w / 2 - (l + r + 1) / 2;
}

void semd_mask_update_counts(long n, float *cnt, float *G, const float *M_old, const float *M_new)
{
    for (long j = 0; j < n; j++) {
        float c = M_old ? cnt[j] - M_old[j] : cnt[j];
        cnt[j] = c + M_new[j];
        if (G) G[j] = clip01(1.0f - cnt[j]);
    }
}

/* ---- the public passes ------------------------------------------------------ */

int semd_mask_process(const semd_mask_params *p, int n_layers, const float *masks,
                      const float *std, const float *strength, float *M, float *cnt, float *G,
                      int *shifts)
{
    static const char fn[] = "semd_mask_process";
    int rc = check_params(fn, p);
    if (!rc) rc = check_layers(fn, p, n_layers, masks, std, strength, 1);
    if (rc) return rc;
    if (n_layers > 0 && !M) return semd_error(SEMD_EINVAL, "%s: M is NULL", fn);

    int T = p->n_slots, h = p->height / 8, w = p->width / 8;
    size_t lat = (size_t)h * (size_t)w;
    if (n_layers > 0) {
        layer_pass lp;
        if ((rc = pass_init(&lp, fn, p, n_layers, masks, std))) return rc;
        float *vals = malloc(lat * sizeof *vals);
        if (!vals) {
            pass_free(&lp);
            return semd_error(SEMD_ENOMEM, "%s: out of memory", fn);
        }
        for (int i = n_layers - 1; i >= 0; i--) {
            pass_layer(&lp, i, 8, vals);
            for (size_t j = 0; j < lat; j++) vals[j] *= strength[i];
            for (int k = 0; k < T; k++) {
                float *q = M + ((size_t)i * (size_t)T + (size_t)k) * lat;
                quantise(p, k, vals, q, lat);
                if (shifts) {
                    int *s = shifts + 2 * ((size_t)i * (size_t)T + (size_t)k);
                    semd_mask_shift(q, h, w, &s[0], &s[1]);
                }
            }
        }
        free(vals);
        pass_free(&lp);
    }
    /* Cnt sums the layers bottom up, as torch's sum over dim 0 does for small P. */
    for (size_t j = 0; j < (size_t)T * lat; j++) {
        float c = 0.0f;
        for (int i = 0; i < n_layers; i++) c += M[(size_t)i * (size_t)T * lat + j];
        if (cnt) cnt[j] = c;
        if (G) G[j] = clip01(1.0f - c);
    }
    return SEMD_OK;
}

int semd_mask_blurred(const semd_mask_params *p, int n_layers, const float *masks,
                      const float *std, float *out)
{
    static const char fn[] = "semd_mask_blurred";
    int rc = check_params(fn, p);
    if (!rc) rc = check_layers(fn, p, n_layers, masks, std, NULL, 0);
    if (rc) return rc;
    if (n_layers == 0) return SEMD_OK;
    if (!out) return semd_error(SEMD_EINVAL, "%s: out is NULL", fn);
    layer_pass lp;
    if ((rc = pass_init(&lp, fn, p, n_layers, masks, std))) return rc;
    size_t plane = (size_t)p->width * (size_t)p->height;
    for (int i = n_layers - 1; i >= 0; i--) pass_layer(&lp, i, 1, out + (size_t)i * plane);
    pass_free(&lp);
    return SEMD_OK;
}

/* ---- small helpers ---------------------------------------------------------- */

void semd_roll(const float *in, float *out, int channels, int h, int w, int dy, int dx)
{
    int sy = modi(dy, h), sx = modi(dx, w);
    for (int c = 0; c < channels; c++) {
        const float *ip = in + (size_t)c * (size_t)h * (size_t)w;
        float *op = out + (size_t)c * (size_t)h * (size_t)w;
        for (int y = 0; y < h; y++) {
            const float *src = ip + (size_t)modi((long)y - sy, h) * (size_t)w;
            float *dst = op + (size_t)y * (size_t)w;
            /* out[x] = src[(x - sx) mod w]: two contiguous runs. */
            memcpy(dst, src + (w - sx), (size_t)sx * sizeof *dst);
            memcpy(dst + sx, src, (size_t)(w - sx) * sizeof *dst);
        }
    }
}

void semd_mask_normalize(const unsigned char *alpha, float *m, long n)
{
    for (long j = 0; j < n; j++) m[j] = (float)alpha[j] / 255.0f;
}
