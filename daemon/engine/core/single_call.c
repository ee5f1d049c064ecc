/*
 * SemanticDraw's single-call mode (semanticdraw.md section 11): one offline
 * image from a scene. Unlike the stream, each step draws fresh noise, the
 * whole canvas is denoised step by step, and the result is decoded once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semd/mask.h"
#include "semd/rng.h"
#include "semd/scene_run.h"
#include "semd/status.h"
#include "slots.h"

#define LEAK_SENSITIVITY 0.2f
#define MAX_SIDE 768
#define WHITE_PROMPT "simple white background image"

typedef enum bg_kind { BG_IMAGE, BG_WHITE, BG_GENERATED } bg_kind;

typedef struct single {
    const semd_scene *s;
    const semd_sd_models *m;
    semd_backend *be;
    semd_slots sl;
    int T, P, Pp, h, w, cfg;  /* Pp: layers including a generated background layer */
    size_t hw, n;
    bg_kind kind;
    uint8_t *bg_rgb;          /* the background image or colour, when given */
    float *M;                 /* [Pp][T][hw] */
    int *shifts;              /* [Pp][T][2] */
    float *z_white, *z_bg;
    semd_tensor *ctx, *wemb;  /* [B,77,D] with B = Pp (x2 under CFG, unconditional half first) */
} single;

static void free_single(single *g)
{
    free(g->bg_rgb), free(g->M), free(g->shifts), free(g->z_white), free(g->z_bg);
    semd_tensor_free(g->ctx), semd_tensor_free(g->wemb);
}

/* ---- latents ---- */

static int encode(single *g, const uint8_t *rgb, float *z)
{
    return semd_encode_rgb(g->m, g->be, g->m->taesd != NULL, rgb, g->s->width, g->s->height, z);
}

static int decode(single *g, const float *z, float *image)
{
    return semd_decode_unit(g->m, g->be, g->m->taesd != NULL, z, g->s->width, g->s->height, image);
}

/* ---- masks and background ---- */

static int layer_masks(single *g, float **masks, float *std, float *strength)
{
    const semd_scene *s = g->s;
    const size_t img = (size_t)s->width * s->height;
    *masks = calloc((size_t)(g->P ? g->P : 1) * img, sizeof(float));
    if (!*masks) return semd_error(SEMD_ENOMEM, "out of memory");
    for (int i = 0; i < g->P; i++) {
        if (s->layers[i].mask) semd_mask_normalize(s->layers[i].mask, *masks + i * img, (long)img);
        std[i] = s->layers[i].mask_std;
        strength[i] = s->layers[i].mask_strength;
    }
    return SEMD_OK;
}

/* Section 5 for the scene's layers; a generated background layer (bg_mask) goes first. */
static int build_masks(single *g, const float *masks, const float *std, const float *strength)
{
    const size_t slots = (size_t)g->T * g->hw;
    float *M = calloc((size_t)(g->P ? g->P : 1) * slots, sizeof(float)), *cnt = malloc(slots * sizeof(float));
    float *G = malloc(slots * sizeof(float));
    int rc = (!M || !cnt || !G) ? semd_error(SEMD_ENOMEM, "out of memory") : 0;
    semd_mask_params mp = {.width = g->s->width, .height = g->s->height, .n_slots = g->T,
                           .noise_levels = g->sl.b, .type = (semd_mask_type)g->s->mask_type,
                           .cover_alpha = g->s->cover_alpha};
    if (!rc) rc = semd_mask_process(&mp, g->P, masks, std, strength, M, cnt, G, NULL);
    int uncovered = 0;
    for (size_t i = 0; !rc && i < slots; i++) uncovered |= G[i] > 0.0f;
    const semd_scene_background *b = &g->s->background;
    g->kind = (b->fields & (SEMD_BG_IMAGE | SEMD_BG_COLOR)) ? BG_IMAGE
              : (uncovered && (b->fields & SEMD_BG_PROMPT)) ? BG_GENERATED : BG_WHITE;
    g->Pp = g->P + (g->kind == BG_GENERATED);
    g->M = calloc((size_t)(g->Pp ? g->Pp : 1) * slots, sizeof(float));
    g->shifts = calloc((size_t)(g->Pp ? g->Pp : 1) * g->T * 2, sizeof(int));
    if (!rc && (!g->M || !g->shifts)) rc = semd_error(SEMD_ENOMEM, "out of memory");
    const int off = g->kind == BG_GENERATED;
    if (!rc && off) memcpy(g->M, G, slots * sizeof(float));
    if (!rc) memcpy(g->M + off * slots, M, (size_t)g->P * slots * sizeof(float));
    for (int i = 0; !rc && i < g->Pp; i++)
        for (int k = 0; k < g->T; k++)
            semd_mask_shift(g->M + ((size_t)i * g->T + k) * g->hw, g->h, g->w,
                            &g->shifts[(i * g->T + k) * 2], &g->shifts[(i * g->T + k) * 2 + 1]);
    free(M), free(cnt), free(G);
    return rc ? rc : uncovered;
}

static int background(single *g)
{
    const semd_scene_background *b = &g->s->background;
    const size_t px = (size_t)g->s->width * g->s->height;
    g->z_white = malloc(g->n * sizeof(float));
    g->z_bg = malloc(g->n * sizeof(float));
    if (!g->z_white || !g->z_bg) return semd_error(SEMD_ENOMEM, "out of memory");
    int rc = encode(g, NULL, g->z_white);
    if (rc || g->kind != BG_IMAGE) {
        if (!rc) memcpy(g->z_bg, g->z_white, g->n * sizeof(float));
        return rc;
    }
    if (!(g->bg_rgb = malloc(px * 3))) return semd_error(SEMD_ENOMEM, "out of memory");
    if (b->fields & SEMD_BG_IMAGE) memcpy(g->bg_rgb, b->image, px * 3);
    else
        for (size_t i = 0; i < px * 3; i++) g->bg_rgb[i] = b->color[i % 3];
    return encode(g, g->bg_rgb, g->z_bg);
}

/* ---- text ---- */

static const char *background_prompt(const single *g)
{
    const semd_scene_background *b = &g->s->background;
    if (g->kind == BG_WHITE) return WHITE_PROMPT;
    if (b->fields & SEMD_BG_PROMPT) return b->prompt;
    return (b->fields & SEMD_BG_IMAGE) ? "" : WHITE_PROMPT; /* S2 (b); a colour is no photo */
}

static int layer_embedding(single *g, int i, int negative, const float *e_bg, int uncovered, float *dst)
{
    const semd_scene_layer *l = &g->s->layers[i];
    const size_t e = (size_t)SEMD_CLIP_CONTEXT * semd_clip_config_of(g->m->clip)->hidden_size;
    char *text = NULL;
    const char *src = negative ? l->negative : l->prompt;
    if (!negative && g->s->suffix) {
        const char *bgp = background_prompt(g);
        size_t len = strlen(l->prompt) + strlen(g->s->suffix) + strlen(bgp) + 1;
        if (!(text = malloc(len))) return semd_error(SEMD_ENOMEM, "out of memory");
        snprintf(text, len, "%s%s%s", l->prompt, g->s->suffix, bgp);
        src = text;
    }
    float *raw;
    int rc = semd_embed_prompt(g->m, src ? src : "", &raw);
    free(text);
    for (size_t j = 0; !rc && j < e; j++)
        dst[j] = uncovered ? e_bg[j] + l->prompt_strength * (raw[j] - e_bg[j]) : raw[j];
    if (!rc) free(raw);
    return rc;
}

/* Per-sample contexts [uncond half;] cond half, layer order; the generated layer uses E_bg. */
static int contexts(single *g, int uncovered)
{
    const size_t e = (size_t)SEMD_CLIP_CONTEXT * semd_clip_config_of(g->m->clip)->hidden_size;
    const int B = g->Pp * (1 + g->cfg), off = g->kind == BG_GENERATED;
    float *host = malloc((size_t)(B ? B : 1) * e * sizeof(float)), *e_bg = NULL, *e_neg = NULL;
    int rc = host ? semd_embed_prompt(g->m, background_prompt(g), &e_bg) : semd_error(SEMD_ENOMEM, "out of memory");
    const char *bg_neg = (g->s->background.fields & SEMD_BG_NEGATIVE) ? g->s->background.negative : "";
    if (!rc && g->cfg) rc = semd_embed_prompt(g->m, bg_neg, &e_neg);
    for (int half = 0; !rc && half <= g->cfg; half++) {
        const int neg = g->cfg && half == 0;
        float *base = host + (size_t)half * g->Pp * e;
        if (off) memcpy(base, neg ? e_neg : e_bg, e * sizeof(float));
        for (int i = 0; !rc && i < g->P; i++)
            rc = layer_embedding(g, i, neg, neg ? e_neg : e_bg, uncovered, base + (size_t)(off + i) * e);
    }
    int64_t ne[3] = {B, SEMD_CLIP_CONTEXT, (int64_t)(e / SEMD_CLIP_CONTEXT)};
    if (!rc && B) rc = semd_tensor_new(g->be, 3, ne, &g->ctx);
    if (!rc && B) rc = semd_tensor_set(g->ctx, host);
    const int dim = semd_unet_config_of(g->m->unet)->time_cond_proj_dim;
    if (!rc && dim && B) {
        float wv = g->s->embedded_guidance_scale - 1.0f, *rows = malloc((size_t)B * dim * sizeof(float));
        int64_t ws[2] = {B, dim};
        rc = rows ? semd_guidance_embedding(&wv, 1, dim, rows) : semd_error(SEMD_ENOMEM, "out of memory");
        for (int r = 1; !rc && r < B; r++) memcpy(rows + (size_t)r * dim, rows, (size_t)dim * sizeof(float));
        if (!rc) rc = semd_tensor_new(g->be, 2, ws, &g->wemb);
        if (!rc) rc = semd_tensor_set(g->wemb, rows);
        free(rows);
    }
    free(host), free(e_bg), free(e_neg);
    return rc;
}

/* ---- steps ---- */

/* eps for the Pp layer inputs X [Pp][n]; CFG combined. */
static int predict(single *g, int k, const float *X, float *eps)
{
    const int B = g->Pp * (1 + g->cfg);
    int64_t ne[4] = {B, 4, g->h, g->w};
    float *x = malloc((size_t)B * g->n * sizeof(float)), *t = malloc((size_t)B * sizeof(float));
    semd_tensor *xt = NULL, *out = NULL;
    int rc = (!x || !t) ? semd_error(SEMD_ENOMEM, "out of memory") : semd_tensor_new(g->be, 4, ne, &xt);
    for (int half = 0; !rc && half <= g->cfg; half++)
        memcpy(x + (size_t)half * g->Pp * g->n, X, (size_t)g->Pp * g->n * sizeof(float));
    for (int i = 0; !rc && i < B; i++) t[i] = g->sl.tau[k];
    if (!rc) rc = semd_tensor_set(xt, x);
    semd_unet_inputs in = {.sample = xt, .timesteps = t, .encoder_hidden_states = g->ctx, .timestep_cond = g->wemb};
    if (!rc) rc = semd_unet_forward(g->m->unet, &in, &out);
    if (!rc) rc = semd_tensor_get(out, x);
    const size_t half = (size_t)g->Pp * g->n;
    for (size_t e = 0; !rc && e < half; e++)
        eps[e] = g->cfg ? x[e] + g->s->guidance_scale * (x[half + e] - x[e]) : x[e];
    semd_tensor_free(xt), semd_tensor_free(out), free(x), free(t);
    return rc;
}

/* Bootstrap (k < bootstrap_steps): noisy white/background mix outside each mask, then center. */
static void bootstrap(single *g, int k, const float *x, const float *noise, float *bgl, float *X, float *tmp)
{
    float r = g->s->bootstrap_mix_steps - (float)k;
    r = r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
    const float *other = g->kind == BG_GENERATED ? x : g->z_bg;
    for (size_t e = 0; e < g->n; e++) {
        const float mixed = r * g->z_white[e] + (1.0f - r) * other[e];
        bgl[e] = g->sl.a[k] * mixed + g->sl.b[k] * noise[e];
    }
    for (int i = 0; i < g->Pp; i++) {
        const float *M = g->M + ((size_t)i * g->T + k) * g->hw;
        for (size_t e = 0; e < g->n; e++) tmp[e] = (1.0f - M[e % g->hw]) * bgl[e] + M[e % g->hw] * x[e];
        const int *sh = g->shifts + (i * g->T + k) * 2;
        semd_roll(tmp, X + (size_t)i * g->n, 4, g->h, g->w, sh[0], sh[1]);
    }
}

static void uncenter(single *g, int k, float *v, float *tmp)
{
    for (int i = 0; i < g->Pp; i++) {
        const int *sh = g->shifts + (i * g->T + k) * 2;
        memcpy(tmp, v + (size_t)i * g->n, g->n * sizeof(float));
        semd_roll(tmp, v + (size_t)i * g->n, 4, g->h, g->w, -sh[0], -sh[1]);
    }
}

/* x0 estimates, leak-weighted masks, aggregation and the background composite (step 7). */
static void aggregate(single *g, int k, int boot, const float *X, const float *eps, const float *bgl, float *x)
{
    float *count = calloc(g->hw, sizeof(float)), *value = calloc(g->n, sizeof(float));
    float *D = malloc(g->n * sizeof(float)), *W = malloc(g->hw * sizeof(float));
    for (int i = 0; count && value && D && W && i < g->Pp; i++) {
        const float *xi = X + (size_t)i * g->n, *ei = eps + (size_t)i * g->n;
        const float *M = g->M + ((size_t)i * g->T + k) * g->hw;
        for (size_t e = 0; e < g->n; e++)
            D[e] = g->sl.c_out[k] * ((xi[e] - g->sl.b[k] * ei[e]) / g->sl.a[k]) + g->sl.c_skip[k] * xi[e];
        for (size_t p = 0; p < g->hw; p++) {
            W[p] = M[p];
            if (!boot) continue;
            float d[4];
            for (int c = 0; c < 4; c++) d[c] = (D[c * g->hw + p] - bgl[c * g->hw + p]) * (D[c * g->hw + p] - bgl[c * g->hw + p]);
            const float leak = (((d[0] + d[1]) + d[2]) + d[3]) / 4.0f;
            W[p] = W[p] * (2.0f * (1.0f / (1.0f + expf(-(leak / LEAK_SENSITIVITY)))) - 1.0f);
        }
        for (size_t p = 0; p < g->hw; p++) count[p] = count[p] + W[p];
        for (size_t e = 0; e < g->n; e++) value[e] = value[e] + W[e % g->hw] * D[e];
    }
    for (size_t e = 0; count && value && e < g->n; e++) {
        const float c = count[e % g->hw];
        x[e] = c > 0.0f ? value[e] / c : 0.0f;
        if (g->kind != BG_GENERATED) {
            float G = 1.0f - c;
            G = G < 0.0f ? 0.0f : G > 1.0f ? 1.0f : G;
            x[e] = (1.0f - G) * x[e] + G * g->z_bg[e];
        }
    }
    free(count), free(value), free(D), free(W);
}

/* Noise from the caller, else from the scene's seed on its own stream. */
static const float *noise_for(const single *g, const float *given, const char *stream, int k, float *buf)
{
    if (given) return given + (size_t)k * g->n;
    semd_randn(g->s->seed, semd_rng_stream(stream), (uint64_t)k * g->n, buf, g->n);
    return buf;
}

static int steps(single *g, const semd_single_noise *z, float *x)
{
    const size_t pn = (size_t)(g->Pp ? g->Pp : 1) * g->n;
    float *X = malloc(pn * sizeof(float)), *eps = malloc(pn * sizeof(float));
    float *bgl = malloc(g->n * sizeof(float)), *tmp = malloc(g->n * sizeof(float)), *nz = malloc(g->n * sizeof(float));
    int rc = (!X || !eps || !bgl || !tmp || !nz) ? semd_error(SEMD_ENOMEM, "out of memory") : 0;
    const float *init = rc ? NULL : noise_for(g, z ? z->init_latent : NULL, "init_latent", 0, nz);
    if (!rc) memcpy(x, init, g->n * sizeof(float));
    if (!rc && g->sl.tau[0] < 999.0f && g->kind != BG_GENERATED)
        for (size_t e = 0; e < g->n; e++) x[e] = g->sl.a[0] * g->z_bg[e] + g->sl.b[0] * x[e];
    for (int k = 0; !rc && k < g->T; k++) {
        const int boot = k < g->s->bootstrap_steps;
        if (g->Pp && boot) bootstrap(g, k, x, noise_for(g, z ? z->boot_noise : NULL, "boot_noise", k, nz), bgl, X, tmp);
        else for (int i = 0; i < g->Pp; i++) memcpy(X + (size_t)i * g->n, x, g->n * sizeof(float));
        if (g->Pp) rc = predict(g, k, X, eps);
        if (!rc && g->Pp && boot) uncenter(g, k, eps, tmp), uncenter(g, k, X, tmp);
        if (!rc) aggregate(g, k, boot, X, eps, bgl, x);
        if (!rc && k + 1 < g->T) {
            const float *sn = noise_for(g, z ? z->step_noise : NULL, "step_noise", k, nz);
            for (size_t e = 0; e < g->n; e++) x[e] = g->sl.a[k + 1] * x[e] + g->sl.b[k + 1] * sn[e];
        }
    }
    free(X), free(eps), free(bgl), free(tmp), free(nz);
    return rc;
}

/* Step 8: with a given background, keep it where no layer's blurred mask reaches. */
static int blend(single *g, const float *masks, const float *std, float *image)
{
    if (!g->bg_rgb) return SEMD_OK;
    const size_t img = (size_t)g->s->width * g->s->height;
    float *blurred = malloc((size_t)(g->P ? g->P : 1) * img * sizeof(float));
    if (!blurred) return semd_error(SEMD_ENOMEM, "out of memory");
    semd_mask_params mp = {.width = g->s->width, .height = g->s->height, .n_slots = g->T,
                           .noise_levels = g->sl.b, .type = (semd_mask_type)g->s->mask_type,
                           .cover_alpha = g->s->cover_alpha};
    int rc = g->P ? semd_mask_blurred(&mp, g->P, masks, std, blurred) : 0;
    for (size_t p = 0; !rc && p < img; p++) {
        float m = 0.0f;
        for (int i = 0; i < g->P; i++) m += blurred[i * img + p];
        m = m < 0.0f ? 0.0f : m > 1.0f ? 1.0f : m;
        for (int c = 0; c < 3; c++)
            image[c * img + p] = image[c * img + p] * m + (g->bg_rgb[p * 3 + c] / 255.0f) * (1.0f - m);
    }
    free(blurred);
    return rc;
}

int semd_scene_single(const semd_scene *s, const semd_sd_models *m, const semd_single_noise *noise,
                      semd_single_result *out)
{
    *out = (semd_single_result){0};
    if (s->width > MAX_SIDE || s->height > MAX_SIDE)
        return semd_error(SEMD_EUNSUPPORTED, "%s: %dx%d: the single-call mode renders up to %d pixels "
                          "a side (tiling is not implemented)", s->path, s->width, s->height, MAX_SIDE);
    if ((s->decoder == SEMD_SCENE_DECODER_VAE && !m->vae) || (s->decoder != SEMD_SCENE_DECODER_VAE && !m->taesd))
        return semd_error(SEMD_EINVAL, "%s: the scene's decoder is not loaded", s->path);
    single g = {.s = s, .m = m, .be = semd_unet_backend(m->unet), .T = s->n_timesteps, .P = s->n_layers,
                .h = s->height / 8, .w = s->width / 8, .cfg = s->guidance_scale > 1.0f};
    semd_sd_models models = *m; /* only the scene's decoder takes part */
    if (s->decoder == SEMD_SCENE_DECODER_VAE) models.taesd = NULL;
    else models.vae = NULL;
    g.m = &models;
    g.hw = (size_t)g.h * g.w, g.n = 4 * g.hw;
    float *masks = NULL, *std = malloc((size_t)(g.P + 1) * sizeof(float)), *strength = malloc((size_t)(g.P + 1) * sizeof(float));
    out->latent = malloc(g.n * sizeof(float));
    out->image = malloc((size_t)3 * s->width * s->height * sizeof(float));
    int rc = (!std || !strength || !out->latent || !out->image) ? semd_error(SEMD_ENOMEM, "out of memory") : 0;
    if (!rc) rc = semd_slots_build(m->scheduler, g.T, s->timesteps, &g.sl);
    if (!rc) rc = layer_masks(&g, &masks, std, strength);
    int uncovered = rc ? 0 : build_masks(&g, masks, std, strength);
    if (uncovered < 0) rc = uncovered;
    if (!rc) rc = background(&g);
    if (!rc) rc = contexts(&g, uncovered);
    if (!rc) rc = steps(&g, noise, out->latent);
    if (!rc) rc = decode(&g, out->latent, out->image);
    if (!rc) rc = blend(&g, masks, std, out->image);
    free(masks), free(std), free(strength);
    free_single(&g);
    if (rc) free(out->latent), free(out->image), *out = (semd_single_result){0};
    return rc;
}
