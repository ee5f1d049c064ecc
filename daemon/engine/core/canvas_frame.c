/*
 * SemanticDraw canvas, frame side: one step of the T-slot stream batch for any
 * number of canvases (semanticdraw.md sections 7.2 and 7.6). Same-size
 * canvases share one UNet call; everything else is per canvas.
 */
#include <stdlib.h>
#include <string.h>

#include "canvas_internal.h"
#include "slots.h"
#include "semd/rng.h"
#include "semd/status.h"

/* Per-canvas scratch of one frame. */
typedef struct frame_work {
    semd_canvas *c;
    int B, cfg;             /* samples this canvas adds to the UNet batch */
    float *x;               /* X[k] [T][n] */
    float *x_in, *eps;      /* [B][n]: UNet inputs (uncentered copy) and outputs */
    int offset;             /* first sample in the shared batch */
    /* A frame changes the canvas only once every canvas of the step succeeded: until
     * then what load_slots moved can be put back (undo), and the buffer update waits. */
    int loaded;
    float *stock_tail;      /* [n]: the stock slot the shift pushed out */
    float *taken_noise;     /* the canvas's frame_noise, consumed by this frame */
    float *y;               /* [T][n]: the denoised slots, for the buffer update */
} frame_work;

/* Steps 2-3: X[0] fresh, X[k] from the buffer; the stock noise shifts by one (undo_slots reverts). */
static void load_slots(frame_work *fw)
{
    semd_canvas *c = fw->c;
    const size_t n = c->n;
    float *x = fw->x;
    if (c->frame_noise) {
        memcpy(x, c->frame_noise, n * sizeof(float));
        fw->taken_noise = c->frame_noise, c->frame_noise = NULL;
    } else {
        semd_randn(c->p.seed, semd_rng_stream("frame_noise"), c->frame_index * n, x, n);
    }
    c->frame_index++;
    memcpy(x + n, c->buf + n, (size_t)(c->T - 1) * n * sizeof(float));
    memcpy(fw->stock_tail, c->stock + (size_t)(c->T - 1) * n, n * sizeof(float));
    memmove(c->stock + n, c->stock, (size_t)(c->T - 1) * n * sizeof(float));
    memcpy(c->stock, c->noise, n * sizeof(float));
    fw->loaded = 1;
}

/* A step failed: the canvas as it was before load_slots. */
static void undo_slots(frame_work *fw)
{
    semd_canvas *c = fw->c;
    const size_t n = c->n;
    if (!fw->loaded) return;
    memmove(c->stock, c->stock + n, (size_t)(c->T - 1) * n * sizeof(float));
    memcpy(c->stock + (size_t)(c->T - 1) * n, fw->stock_tail, n * sizeof(float));
    c->frame_index--;
    if (fw->taken_noise) c->frame_noise = fw->taken_noise, fw->taken_noise = NULL;
    fw->loaded = 0;
}

/* Does sample (k, i) get the centering roll?  P1. */
static int centred(const semd_canvas *c, int k)
{
    if (c->p.bootstrap_steps < 1) return 0;
    return c->p.profile == SEMD_PROFILE_REFERENCE || k < c->p.bootstrap_steps;
}

/* Step 4-5 for one sample: replicate, bootstrap, center. */
static void build_input(const semd_canvas *c, const float *xk, int k, int i, float *dst, float *tmp)
{
    const size_t n = c->n, hw = c->hw;
    memcpy(tmp, xk, n * sizeof(float));
    if (c->p.bootstrap_steps >= 1 && k < c->p.bootstrap_steps) {
        const float *M = c->M + ((size_t)i * c->T + k) * hw, *boot = c->boot + k * n, *S = c->stock + k * n;
        for (size_t e = 0; e < n; e++) {
            const float m = M[e % hw], Bk = c->a[k] * boot[e] + c->b[k] * S[e];
            tmp[e] = (1.0f - m) * Bk + m * tmp[e];
        }
    }
    if (centred(c, k)) {
        const int *sh = c->shifts + ((size_t)i * c->T + k) * 2;
        semd_roll(tmp, dst, 4, c->h, c->w, sh[0], sh[1]);
    } else {
        memcpy(dst, tmp, n * sizeof(float));
    }
}

/* Fills the canvas's part of the shared UNet input, timesteps and guidance; keeps x_in uncentered. */
static int stage_inputs(frame_work *fw, float *batch_x, float *batch_t)
{
    semd_canvas *c = fw->c;
    const size_t n = c->n;
    float *tmp = malloc(n * sizeof(float));
    if (!tmp) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    for (int half = 0; half <= fw->cfg; half++)
        for (int k = 0; k < c->T; k++)
            for (int i = 0; i < c->P; i++) {
                const int s = (half * c->T + k) * c->P + i;
                float *dst = batch_x + (size_t)(fw->offset + s) * n;
                build_input(c, fw->x + k * n, k, i, dst, tmp);
                batch_t[fw->offset + s] = c->tau[k];
                if (centred(c, k)) { /* keep the uncentered input for step 7 */
                    const int *sh = c->shifts + ((size_t)i * c->T + k) * 2;
                    semd_roll(dst, fw->x_in + (size_t)s * n, 4, c->h, c->w, -sh[0], -sh[1]);
                } else {
                    memcpy(fw->x_in + (size_t)s * n, dst, n * sizeof(float));
                }
            }
    free(tmp);
    return SEMD_OK;
}

/* Step 7 for eps (the inputs were kept uncentered) and step 8 (CFG). */
static void collect_eps(frame_work *fw, const float *batch_eps)
{
    semd_canvas *c = fw->c;
    const size_t n = c->n;
    const int PT = c->P * c->T;
    for (int s = 0; s < fw->B; s++) {
        const int k = (s % PT) / c->P, i = s % c->P;
        const float *src = batch_eps + (size_t)(fw->offset + s) * n;
        if (centred(c, k)) {
            const int *sh = c->shifts + ((size_t)i * c->T + k) * 2;
            semd_roll(src, fw->eps + (size_t)s * n, 4, c->h, c->w, -sh[0], -sh[1]);
        } else {
            memcpy(fw->eps + (size_t)s * n, src, n * sizeof(float));
        }
    }
    if (!fw->cfg) return;
    const float g = c->p.guidance_scale;
    for (size_t e = 0; e < (size_t)PT * n; e++) { /* the conditional half lands in the first PT */
        const float u = fw->eps[e], cond = fw->eps[(size_t)PT * n + e];
        fw->eps[e] = u + g * (cond - u);
        fw->x_in[e] = fw->x_in[(size_t)PT * n + e];
    }
}

/* Background target Bg[k] (step 10, P2). */
static void background_target(const semd_canvas *c, int k, float *bg)
{
    const size_t n = c->n;
    if (c->p.profile == SEMD_PROFILE_REFERENCE && k < c->T - 1) {
        const float *S = c->stock + (k + 1) * n;
        for (size_t e = 0; e < n; e++) bg[e] = c->p2a[k] * c->z_bg[e] + c->p2b[k] * S[e];
    } else {
        memcpy(bg, c->z_bg, n * sizeof(float));
    }
}

/* Steps 9-13: denoise, pre-average over the layers, composite, re-noise, shift. */
static int aggregate(frame_work *fw)
{
    semd_canvas *c = fw->c;
    const size_t n = c->n, hw = c->hw;
    float *Y = fw->y, *bg = malloc(n * sizeof(float)), *acc = malloc(n * sizeof(float));
    if (!bg || !acc) {
        free(bg), free(acc);
        return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    }
    for (int k = 0; k < c->T; k++) {
        memset(acc, 0, n * sizeof(float));
        for (int i = 0; i < c->P; i++) {
            const float *x = fw->x_in + (size_t)(k * c->P + i) * n, *eps = fw->eps + (size_t)(k * c->P + i) * n;
            const float *M = c->M + ((size_t)i * c->T + k) * hw;
            for (size_t e = 0; e < n; e++) {
                const float F = (x[e] - c->b[k] * eps[e]) / c->a[k];
                const float D = c->c_out[k] * F + c->c_skip[k] * x[e];
                acc[e] += M[e % hw] * D;
            }
        }
        background_target(c, k, bg);
        const float *cnt = c->cnt + (size_t)k * hw, *G = c->G + (size_t)k * hw;
        for (size_t e = 0; e < n; e++) {
            const float A = cnt[e % hw] > 0.0f ? acc[e] / cnt[e % hw] : 0.0f;
            Y[k * n + e] = (1.0f - G[e % hw]) * A + G[e % hw] * bg[e];
        }
    }
    memcpy(c->out_latent, Y + (size_t)(c->T - 1) * n, n * sizeof(float));
    free(bg), free(acc);
    return SEMD_OK;
}

/* Step 13's buffer update, once the whole step succeeded. */
static void renoise_into_buffer(frame_work *fw)
{
    semd_canvas *c = fw->c;
    const size_t n = c->n;
    for (int k = 0; k + 1 < c->T; k++)
        for (size_t e = 0; e < n; e++)
            c->buf[(k + 1) * n + e] = c->a[k + 1] * fw->y[k * n + e] + c->b[k + 1] * c->noise[(k + 1) * n + e];
}

static int decode(semd_canvas *c)
{
    const double t0 = semd_canvas_now_ms();
    int rc = semd_decode_unit(c->m, c->be, c->p.decoder == SEMD_DECODER_TAESD, c->out_latent, c->W,
                              c->H, c->out_image);
    c->stats.ms_decode += semd_canvas_now_ms() - t0;
    return rc;
}

/* ---- the shared UNet call ---- */

typedef struct group {
    frame_work *fw[64];
    int n, B;
} group;

static int guidance_rows(const semd_canvas *c, int rows, float *out)
{
    const int dim = semd_unet_config_of(c->m->unet)->time_cond_proj_dim;
    float w = c->p.embedded_guidance_scale - 1.0f;
    int rc = semd_guidance_embedding(&w, 1, dim, out);
    for (int r = 1; !rc && r < rows; r++) memcpy(out + (size_t)r * dim, out, (size_t)dim * sizeof(float));
    return rc;
}

static int upload(semd_backend *be, int ndim, const int64_t *ne, const float *host, semd_tensor **t)
{
    int rc = semd_tensor_new(be, ndim, ne, t);
    if (!rc) rc = semd_tensor_set(*t, host);
    return rc;
}

/* Concatenate the group's contexts (a single canvas uses its cached tensor as is). */
static int group_context(const group *g, semd_tensor **ctx, int *owned)
{
    semd_canvas *c0 = g->fw[0]->c;
    *owned = g->n > 1;
    if (!*owned) {
        *ctx = c0->ctx;
        return SEMD_OK;
    }
    const size_t e = (size_t)(c0->ctx_len * c0->dim);
    float *host = malloc((size_t)g->B * e * sizeof(float));
    if (!host) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    for (int j = 0; j < g->n; j++)
        memcpy(host + (size_t)g->fw[j]->offset * e, g->fw[j]->c->ctx_host, (size_t)g->fw[j]->B * e * sizeof(float));
    int64_t ne[3] = {g->B, c0->ctx_len, c0->dim};
    int rc = upload(c0->be, 3, ne, host, ctx);
    free(host);
    return rc;
}

static int run_group(group *g)
{
    semd_canvas *c0 = g->fw[0]->c;
    const size_t n = c0->n;
    const int dim = semd_unet_config_of(c0->m->unet)->time_cond_proj_dim;
    float *x = malloc((size_t)g->B * n * sizeof(float)), *t = malloc((size_t)g->B * sizeof(float));
    float *wrows = dim ? malloc((size_t)g->B * dim * sizeof(float)) : NULL;
    semd_tensor *xt = NULL, *ctx = NULL, *wemb = NULL, *eps = NULL;
    int owned = 0;
    int rc = (!x || !t || (dim && !wrows)) ? semd_error(SEMD_ENOMEM, "canvas: out of memory") : 0;
    const double t0 = semd_canvas_now_ms();
    for (int j = 0; !rc && j < g->n; j++) rc = stage_inputs(g->fw[j], x, t);
    for (int j = 0; !rc && dim && j < g->n; j++)
        rc = guidance_rows(g->fw[j]->c, g->fw[j]->B, wrows + (size_t)g->fw[j]->offset * dim);
    const double t1 = semd_canvas_now_ms();
    int64_t xs[4] = {g->B, 4, c0->h, c0->w}, ws[2] = {g->B, dim};
    if (!rc) rc = upload(c0->be, 4, xs, x, &xt);
    if (!rc && dim) rc = upload(c0->be, 2, ws, wrows, &wemb);
    if (!rc) rc = group_context(g, &ctx, &owned);
    semd_unet_inputs in = {.sample = xt, .timesteps = t, .encoder_hidden_states = ctx, .timestep_cond = wemb};
    if (!rc) rc = semd_unet_forward(c0->m->unet, &in, &eps);
    if (!rc) rc = semd_tensor_get(eps, x);
    const double t2 = semd_canvas_now_ms();
    for (int j = 0; !rc && j < g->n; j++) collect_eps(g->fw[j], x);
    const double t3 = semd_canvas_now_ms();
    for (int j = 0; j < g->n; j++) { /* each canvas is charged its share of the shared call */
        const double share = (double)g->fw[j]->B / g->B;
        g->fw[j]->c->stats.ms_unet += (t2 - t1) * share;
        g->fw[j]->c->stats.ms_aggregate += (t1 - t0 + t3 - t2) * share;
    }
    if (owned) semd_tensor_free(ctx);
    semd_tensor_free(xt), semd_tensor_free(wemb), semd_tensor_free(eps);
    free(x), free(t), free(wrows);
    return rc;
}

/* ---- step ---- */

static int begin(frame_work *fw, semd_canvas *c)
{
    fw->c = c;
    fw->cfg = semd_canvas_cfg(c);
    int rc = semd_canvas_prepare_context(c);
    fw->B = c->P * c->T * (1 + fw->cfg);
    fw->x = malloc((size_t)c->T * c->n * sizeof(float));
    fw->x_in = malloc((size_t)(fw->B ? fw->B : 1) * c->n * sizeof(float));
    fw->eps = malloc((size_t)(fw->B ? fw->B : 1) * c->n * sizeof(float));
    fw->stock_tail = malloc(c->n * sizeof(float));
    fw->y = malloc((size_t)c->T * c->n * sizeof(float));
    if (!rc && (!fw->x || !fw->x_in || !fw->eps || !fw->stock_tail || !fw->y))
        rc = semd_error(SEMD_ENOMEM, "canvas: out of memory");
    if (!rc) load_slots(fw);
    return rc;
}

/* ok: the frame counts (the buffer moves on); otherwise the canvas is put back as it was. */
static void end(frame_work *fw, int ok)
{
    if (ok) {
        renoise_into_buffer(fw);
        fw->c->stats.frames++;
        fw->c->since_reset++;
    } else if (fw->c) {
        undo_slots(fw);
    }
    free(fw->x), free(fw->x_in), free(fw->eps), free(fw->stock_tail), free(fw->y), free(fw->taken_noise);
}

static int same_group(const semd_canvas *a, const semd_canvas *b)
{
    return a->m->unet == b->m->unet && a->h == b->h && a->w == b->w;
}

/* Group same-size canvases with work into shared UNet calls. */
static int run_unets(frame_work *fw, int n)
{
    int rc = 0;
    char *done = calloc((size_t)(n > 0 ? n : 1), 1);
    if (!done) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    for (int i = 0; !rc && i < n; i++) {
        if (done[i] || !fw[i].B) continue;
        group g = {.n = 0};
        for (int j = i; j < n && g.n < 64; j++) {
            if (done[j] || !fw[j].B || !same_group(fw[i].c, fw[j].c)) continue;
            fw[j].offset = g.B;
            g.B += fw[j].B;
            g.fw[g.n++] = &fw[j];
            done[j] = 1;
        }
        rc = run_group(&g);
    }
    free(done);
    return rc;
}

static int finish(frame_work *fw, int decode_it, semd_frame *out)
{
    semd_canvas *c = fw->c;
    const double t0 = semd_canvas_now_ms();
    int rc = aggregate(fw);
    c->stats.ms_aggregate += semd_canvas_now_ms() - t0;
    if (!rc && decode_it) rc = decode(c);
    out->latent = c->out_latent;
    out->image = decode_it ? c->out_image : NULL;
    out->warmup = c->since_reset < c->T - 1;
    return rc;
}

static int step(semd_canvas *const *canvases, int n, int decode_it, semd_frame *frames);

/* Section 7.5: T frames that are neither decoded nor published. */
static int flush(semd_canvas *c)
{
    semd_frame f;
    int rc = 0;
    for (int k = 0; !rc && k < c->T; k++) rc = step(&c, 1, 0, &f);
    if (!rc) c->flushed = 1;
    return rc;
}

int semd_canvas_step(semd_canvas *const *canvases, int n, int decode_it, semd_frame *frames)
{
    if (n < 1 || !canvases || !frames) return semd_error(SEMD_EINVAL, "canvas_step: nothing to step");
    int rc = 0;
    for (int i = 0; !rc && i < n; i++)
        if (canvases[i] && canvases[i]->p.autoflush && !canvases[i]->flushed) rc = flush(canvases[i]);
    return rc ? rc : step(canvases, n, decode_it, frames);
}

static int step(semd_canvas *const *canvases, int n, int decode_it, semd_frame *frames)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (canvases[i] == canvases[j])
                return semd_error(SEMD_EINVAL, "canvas_step: canvas %d is listed twice", i);
    frame_work *fw = calloc((size_t)(n > 0 ? n : 1), sizeof *fw);
    if (!fw) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) rc = begin(&fw[i], canvases[i]);
    if (!rc) rc = run_unets(fw, n);
    for (int i = 0; !rc && i < n; i++) rc = finish(&fw[i], decode_it, &frames[i]);
    for (int i = 0; i < n; i++) end(&fw[i], rc == SEMD_OK);
    free(fw);
    return rc;
}
