/*
 * SemanticDraw canvas, edit side: creation, background, layers, seeds, masks
 * and text embeddings (semanticdraw.md sections 5, 6, 8, 9). Work here runs at
 * edit time so that frames only do the per-frame arithmetic.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canvas_internal.h"
#include "slots.h"
#include "semd/rng.h"
#include "semd/status.h"

#define WHITE_PROMPT "simple white background"

double semd_canvas_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void semd_canvas_params_default(semd_canvas_params *p)
{
    *p = (semd_canvas_params){
        .width = 512, .height = 512, .seed = 2024, .profile = SEMD_PROFILE_DEFAULT,
        .n_timesteps = 5, .timesteps = {0, 4, 12, 25, 37}, .guidance_scale = 1.0f,
        .embedded_guidance_scale = 8.5f, .bootstrap_steps = 1, .bootstrap_mix_steps = 1.0f,
        .mask_type = SEMD_MASK_CONTINUOUS, .cover_alpha = 0.3f, .default_mask_std = 8.0f,
        .default_mask_strength = 1.0f, .decoder = SEMD_DECODER_TAESD,
    };
}

const semd_canvas_params *semd_canvas_params_of(const semd_canvas *c) { return &c->p; }

int semd_canvas_layer_count(const semd_canvas *c) { return c->P; }

int semd_canvas_cfg(const semd_canvas *c) { return c->p.guidance_scale > 1.0f; }

void semd_canvas_stats_get(const semd_canvas *c, semd_canvas_stats *s) { *s = c->stats; }

void semd_canvas_stats_reset(semd_canvas *c) { memset(&c->stats, 0, sizeof c->stats); }

/* Counted from the buffers the canvas holds now (see semd/canvas.h). */
size_t semd_canvas_memory(const semd_canvas *c)
{
    const size_t T = (size_t)c->T, n = c->n, hw = c->hw, img = (size_t)c->H * c->W, e = (size_t)77 * c->dim;
    const size_t P = (size_t)c->P;
    size_t floats = 4 * T * n           /* noise, stock, buf, boot */
                    + 3 * n             /* z_white, z_bg, out_latent */
                    + 3 * img           /* out_image */
                    + e * (1 + (c->e_bg_neg != NULL))
                    + (P + 2) * T * hw; /* M, cnt, G */
    for (int i = 0; i < c->P; i++) {
        const canvas_layer *l = c->layers[i];
        floats += (l->mask ? img : 0) + e * (size_t)((l->e_raw != NULL) + (l->e_neg_raw != NULL) + (l->e != NULL) +
                                                     (l->e_u != NULL));
    }
    if (c->ctx_host) floats += (size_t)c->ctx_batch * e; /* its backend copy is counted by the backend */
    return floats * sizeof(float) + P * T * 2 * sizeof(int) + sizeof *c;
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

/* *slot = a copy of v; out of memory leaves *slot as it was. */
static int replace_text(char **slot, const char *v)
{
    char *copy = strdup(v ? v : "");
    if (!copy) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    free(*slot);
    *slot = copy;
    return SEMD_OK;
}

/* ---- validation and schedule ---- */

/* The fields that may change live, those named by `fields` (SEMD_CANVAS_PARAM_* bits). */
static int check_live_values(const semd_canvas_params *p, unsigned fields)
{
    if ((fields & SEMD_CANVAS_PARAM_GUIDANCE_SCALE) && !(p->guidance_scale >= 0 && p->guidance_scale < 100))
        return semd_error(SEMD_EINVAL, "canvas: guidance_scale %g outside [0, 100)", p->guidance_scale);
    if ((fields & SEMD_CANVAS_PARAM_EMBEDDED_GUIDANCE_SCALE) && !isfinite(p->embedded_guidance_scale))
        return semd_error(SEMD_EINVAL, "canvas: embedded_guidance_scale %g is not a finite number",
                          p->embedded_guidance_scale);
    if ((fields & SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS) && p->bootstrap_steps < 0)
        return semd_error(SEMD_EINVAL, "canvas: bootstrap_steps %d is negative", p->bootstrap_steps);
    if ((fields & SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS) && !(p->bootstrap_mix_steps >= 0))
        return semd_error(SEMD_EINVAL, "canvas: bootstrap_mix_steps %g is not >= 0", p->bootstrap_mix_steps);
    if ((fields & SEMD_CANVAS_PARAM_MASK_TYPE) && (unsigned)p->mask_type > SEMD_MASK_DISCRETE)
        return semd_error(SEMD_EINVAL, "canvas: mask_type %d is not continuous (0), semi-continuous (1) "
                          "or discrete (2)", (int)p->mask_type);
    if ((fields & SEMD_CANVAS_PARAM_COVER_ALPHA) && !(p->cover_alpha >= 0 && p->cover_alpha <= 1))
        return semd_error(SEMD_EINVAL, "canvas: cover_alpha %g outside [0, 1]", p->cover_alpha);
    return SEMD_OK;
}

static int check_params(const semd_sd_models *m, const semd_canvas_params *p)
{
    if (!m || !m->tokenizer || !m->clip || !m->unet || !m->scheduler)
        return semd_error(SEMD_EINVAL, "canvas: tokenizer, text encoder, UNet and scheduler are required");
    if ((p->decoder == SEMD_DECODER_TAESD && !m->taesd) || (p->decoder == SEMD_DECODER_VAE && !m->vae))
        return semd_error(SEMD_EINVAL, "canvas: the chosen decoder is not loaded");
    if (p->width < 8 || p->height < 8 || p->width % 8 || p->height % 8 || p->width > 4096 || p->height > 4096)
        return semd_error(SEMD_EINVAL, "canvas: %dx%d: sizes must be multiples of 8 in 8..4096",
                          p->width, p->height);
    if (p->n_timesteps < 1 || p->n_timesteps > SEMD_CANVAS_MAX_SLOTS)
        return semd_error(SEMD_EINVAL, "canvas: %d timesteps (1..%d)", p->n_timesteps, SEMD_CANVAS_MAX_SLOTS);
    const int grid = semd_lcm_scheduler_config(m->scheduler)->original_inference_steps;
    for (int k = 0; k < p->n_timesteps; k++)
        if (p->timesteps[k] < 0 || p->timesteps[k] >= grid || (k && p->timesteps[k] <= p->timesteps[k - 1]))
            return semd_error(SEMD_EINVAL, "canvas: timesteps must increase strictly within 0..%d "
                              "(entry %d is %d)", grid - 1, k, p->timesteps[k]);
    int rc = check_live_values(p, SEMD_CANVAS_PARAM_ALL);
    if (rc) return rc;
    if (semd_unet_config_of(m->unet)->addition_time_embed_dim)
        return semd_error(SEMD_EUNSUPPORTED, "canvas: SDXL-style UNets are not supported yet");
    return SEMD_OK;
}

/* The slot schedule, and the P2 coefficients: the next slot's list index read as a timestep. */
static int build_schedule(semd_canvas *c)
{
    semd_slots sl;
    int rc = semd_slots_build(c->m->scheduler, c->T, c->p.timesteps, &sl);
    if (rc) return rc;
    const float *abar = semd_lcm_alphas(c->m->scheduler);
    memcpy(c->tau, sl.tau, sizeof sl.tau), memcpy(c->a, sl.a, sizeof sl.a), memcpy(c->b, sl.b, sizeof sl.b);
    memcpy(c->c_skip, sl.c_skip, sizeof sl.c_skip), memcpy(c->c_out, sl.c_out, sizeof sl.c_out);
    for (int k = 0; k < c->T; k++) {
        const double ap = abar[k + 1 < c->T ? c->p.timesteps[k + 1] : 0];
        c->p2a[k] = (float)sqrt(ap);
        c->p2b[k] = (float)sqrt(1.0 - ap);
    }
    return SEMD_OK;
}

/* ---- text ---- */

static int encode_prompt(semd_canvas *c, const char *text, float **out)
{
    const double t0 = semd_canvas_now_ms();
    float *e;
    int rc = semd_embed_prompt(c->m, text, &e);
    if (!rc) free(*out), *out = e;
    c->stats.text_encodes++;
    c->stats.ms_text += semd_canvas_now_ms() - t0;
    return rc;
}

/* A layer's prompt as encoded: with a suffix, prompt + suffix + background prompt (section 6.2). */
static int encode_layer_prompt(semd_canvas *c, canvas_layer *l)
{
    if (!c->p.suffix) return encode_prompt(c, l->prompt, &l->e_raw);
    size_t len = strlen(l->prompt) + strlen(c->p.suffix) + strlen(c->bg_prompt) + 1;
    char *text = malloc(len);
    if (!text) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    snprintf(text, len, "%s%s%s", l->prompt, c->p.suffix, c->bg_prompt);
    int rc = encode_prompt(c, text, &l->e_raw);
    free(text);
    return rc;
}

/* e = e_bg + s (e_raw - e_bg), for the conditional and (under CFG) the unconditional side. */
static int blend_layer(semd_canvas *c, canvas_layer *l)
{
    const size_t n = (size_t)(c->ctx_len * c->dim);
    if (!l->e && !(l->e = malloc(n * sizeof(float)))) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    for (size_t i = 0; i < n; i++) l->e[i] = c->e_bg[i] + l->prompt_strength * (l->e_raw[i] - c->e_bg[i]);
    if (l->e_neg_raw && c->e_bg_neg) {
        if (!l->e_u && !(l->e_u = malloc(n * sizeof(float)))) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
        for (size_t i = 0; i < n; i++)
            l->e_u[i] = c->e_bg_neg[i] + l->prompt_strength * (l->e_neg_raw[i] - c->e_bg_neg[i]);
    } else {
        /* nothing to blend against (CFG never on, or off since the background negative changed):
         * drop a stale blend, encode_negatives makes a fresh one once CFG needs it */
        free(l->e_u), l->e_u = NULL;
    }
    c->ctx_dirty = 1;
    return SEMD_OK;
}

/* Encode and blend the negatives that are missing (cached ones stay, also while CFG is off). */
static int encode_negatives(semd_canvas *c)
{
    int rc = c->e_bg_neg ? SEMD_OK : encode_prompt(c, c->bg_negative, &c->e_bg_neg);
    for (int i = 0; !rc && i < c->P; i++) {
        canvas_layer *l = c->layers[i];
        if (l->e_neg_raw && l->e_u) continue;
        if (!l->e_neg_raw) rc = encode_prompt(c, l->negative, &l->e_neg_raw);
        if (!rc) rc = blend_layer(c, l);
    }
    return rc;
}

/* Negatives are encoded only once CFG needs them (D3). */
static int ensure_negatives(semd_canvas *c)
{
    return semd_canvas_cfg(c) ? encode_negatives(c) : SEMD_OK;
}

/* ---- masks ---- */

static int mask_params(const semd_canvas *c, semd_mask_params *mp)
{
    *mp = (semd_mask_params){.width = c->W, .height = c->H, .n_slots = c->T,
                             .noise_levels = c->b, .type = c->p.mask_type,
                             .cover_alpha = c->p.cover_alpha};
    return SEMD_OK;
}

static void swap_floats(float **a, float **b)
{
    float *t = *a;
    *a = *b, *b = t;
}

/*
 * Every layer from its cached normalised mask (S7), into fresh arrays that
 * replace M, Cnt, G and the shifts only on success (a failure keeps the old ones).
 */
static int process_all_masks(semd_canvas *c)
{
    const double t0 = semd_canvas_now_ms();
    const size_t img = (size_t)c->H * c->W, slots = (size_t)c->T * c->hw;
    const int P = c->P, Pn = P ? P : 1;
    float *masks = calloc((size_t)Pn * img, sizeof(float));
    float *std = malloc((size_t)Pn * sizeof(float)), *strength = malloc((size_t)Pn * sizeof(float));
    float *M = calloc((size_t)Pn * slots, sizeof(float)), *cnt = calloc(slots, sizeof(float));
    float *G = malloc(slots * sizeof(float));
    int *shifts = calloc((size_t)Pn * c->T * 2, sizeof(int));
    int rc = (!masks || !std || !strength || !M || !cnt || !G || !shifts)
                 ? semd_error(SEMD_ENOMEM, "canvas: out of memory") : 0;
    for (int i = 0; !rc && i < P; i++) {
        if (c->layers[i]->mask) memcpy(masks + i * img, c->layers[i]->mask, img * sizeof(float));
        std[i] = c->layers[i]->std;
        strength[i] = c->layers[i]->strength;
    }
    semd_mask_params mp;
    mask_params(c, &mp);
    if (!rc && P) rc = semd_mask_process(&mp, P, masks, std, strength, M, cnt, G, shifts);
    for (size_t i = 0; !rc && !P && i < slots; i++) G[i] = 1.0f; /* S3: Cnt = 0, G = 1 */
    if (!rc) {
        swap_floats(&c->M, &M), swap_floats(&c->cnt, &cnt), swap_floats(&c->G, &G);
        int *old = c->shifts;
        c->shifts = shifts, shifts = old;
    }
    free(masks), free(std), free(strength), free(M), free(cnt), free(G), free(shifts);
    c->stats.mask_updates++;
    c->stats.ms_mask += semd_canvas_now_ms() - t0;
    return rc;
}

/*
 * The reference profile's single-layer mask edit (P4): the layer alone through
 * section 5, and the counts updated incrementally.
 */
static int process_one_mask(semd_canvas *c, int idx)
{
    const double t0 = semd_canvas_now_ms();
    const size_t img = (size_t)c->H * c->W, slots = (size_t)c->T * c->hw;
    canvas_layer *l = c->layers[idx];
    float *mask = calloc(img, sizeof(float)), *M = malloc(slots * sizeof(float));
    float *cnt = malloc(slots * sizeof(float)), *G = malloc(slots * sizeof(float));
    int rc = (!mask || !M || !cnt || !G) ? semd_error(SEMD_ENOMEM, "canvas: out of memory") : 0;
    if (!rc && l->mask) memcpy(mask, l->mask, img * sizeof(float));
    semd_mask_params mp;
    mask_params(c, &mp);
    if (!rc) rc = semd_mask_process(&mp, 1, mask, &l->std, &l->strength, M, cnt, G, c->shifts + idx * c->T * 2);
    float *old = c->M + idx * slots;
    if (!rc) {
        semd_mask_update_counts((long)slots, c->cnt, c->G, old, M);
        memcpy(old, M, slots * sizeof(float));
    }
    free(mask), free(M), free(cnt), free(G);
    c->stats.mask_updates++;
    c->stats.ms_mask += semd_canvas_now_ms() - t0;
    return rc;
}

static int set_mask(semd_canvas *c, canvas_layer *l, const uint8_t *a)
{
    const size_t img = (size_t)c->H * c->W;
    free(l->mask);
    l->mask = NULL;
    if (!a) return SEMD_OK;
    if (!(l->mask = malloc(img * sizeof(float)))) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    semd_mask_normalize(a, l->mask, (long)img);
    return SEMD_OK;
}

/* ---- latents ---- */

/* z = encode(image) with the canvas's autoencoder; rgb NULL: all-ones (white). */
static int encode_image(semd_canvas *c, const uint8_t *rgb, float *z)
{
    const double t0 = semd_canvas_now_ms();
    int rc = semd_encode_rgb(c->m, c->be, c->p.decoder == SEMD_DECODER_TAESD, rgb, c->W, c->H, z);
    c->stats.ms_encode += semd_canvas_now_ms() - t0;
    return rc;
}

/* boot[k] = r_k z_white + (1 - r_k) z_bg, r_k = clip(mix - k, 0, 1). */
static void build_boot(semd_canvas *c)
{
    for (int k = 0; k < c->T; k++) {
        float r = c->p.bootstrap_mix_steps - (float)k;
        r = r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
        for (size_t i = 0; i < c->n; i++) c->boot[k * c->n + i] = r * c->z_white[i] + (1.0f - r) * c->z_bg[i];
    }
}

static void draw_slot_noise(semd_canvas *c)
{
    semd_randn(c->p.seed, semd_rng_stream("slot_noise"), 0, c->noise, (size_t)c->T * c->n);
    memset(c->stock, 0, (size_t)c->T * c->n * sizeof(float));
}

/* ---- lifecycle ---- */

static int alloc_state(semd_canvas *c)
{
    const size_t tn = (size_t)c->T * c->n, thw = (size_t)c->T * c->hw;
    c->noise = calloc(tn, sizeof(float));
    c->stock = calloc(tn, sizeof(float));
    c->buf = calloc(tn, sizeof(float));
    c->boot = calloc(tn, sizeof(float));
    c->z_white = calloc(c->n, sizeof(float));
    c->z_bg = calloc(c->n, sizeof(float));
    c->cnt = calloc(thw, sizeof(float));
    c->G = calloc(thw, sizeof(float));
    c->out_latent = calloc(c->n, sizeof(float));
    c->out_image = calloc((size_t)3 * c->H * c->W, sizeof(float));
    if (!c->noise || !c->stock || !c->buf || !c->boot || !c->z_white || !c->z_bg || !c->cnt || !c->G ||
        !c->out_latent || !c->out_image)
        return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    return SEMD_OK;
}

int semd_canvas_new(const semd_sd_models *m, const semd_canvas_params *p, semd_canvas **out)
{
    *out = NULL;
    int rc = check_params(m, p);
    if (rc) return rc;
    semd_canvas *c = calloc(1, sizeof *c);
    if (!c) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    c->m = m;
    c->p = *p;
    c->p.suffix = p->suffix ? strdup(p->suffix) : NULL;
    c->be = semd_unet_backend(m->unet);
    c->T = p->n_timesteps;
    c->H = p->height, c->W = p->width, c->h = p->height / 8, c->w = p->width / 8;
    c->hw = (size_t)c->h * c->w;
    c->n = 4 * c->hw;
    c->ctx_len = SEMD_CLIP_CONTEXT;
    c->dim = semd_clip_config_of(m->clip)->hidden_size;
    c->bg_prompt = strdup(WHITE_PROMPT);
    c->bg_negative = strdup("");
    c->ctx_dirty = 1;
    rc = !c->bg_prompt || !c->bg_negative || (p->suffix && !c->p.suffix) ? semd_error(SEMD_ENOMEM, "canvas: out of memory")
                                                                         : alloc_state(c);
    if (!rc) rc = build_schedule(c);
    if (!rc) rc = encode_image(c, NULL, c->z_white);
    if (!rc) memcpy(c->z_bg, c->z_white, c->n * sizeof(float)), build_boot(c), draw_slot_noise(c);
    if (!rc) rc = encode_prompt(c, c->bg_prompt, &c->e_bg);
    if (!rc) rc = process_all_masks(c);
    if (rc) {
        semd_canvas_free(c);
        return rc;
    }
    *out = c;
    return SEMD_OK;
}

static void free_layer(canvas_layer *l)
{
    if (!l) return;
    free(l->prompt), free(l->negative), free(l->mask);
    free(l->e_raw), free(l->e_neg_raw), free(l->e), free(l->e_u);
    free(l);
}

void semd_canvas_free(semd_canvas *c)
{
    if (!c) return;
    for (int i = 0; i < c->P; i++) free_layer(c->layers[i]);
    free(c->noise), free(c->stock), free(c->buf), free(c->boot), free(c->frame_noise);
    free(c->z_white), free(c->z_bg), free(c->e_bg), free(c->e_bg_neg);
    free(c->bg_prompt), free(c->bg_negative);
    free(c->M), free(c->cnt), free(c->G), free(c->shifts), free(c->ctx_host);
    semd_tensor_free(c->ctx), semd_tensor_free(c->wemb);
    free(c->out_latent), free(c->out_image);
    free((char *)c->p.suffix);
    free(c);
}

/* ---- background ---- */

static int reblend_all(semd_canvas *c)
{
    int rc = 0;
    for (int i = 0; !rc && i < c->P; i++) rc = blend_layer(c, c->layers[i]);
    return rc;
}

/* A new background prompt: P3 decides whether layers re-blend (and, with a suffix, re-encode). */
static int background_prompt_changed(semd_canvas *c)
{
    int rc = encode_prompt(c, c->bg_prompt, &c->e_bg);
    if (c->p.profile != SEMD_PROFILE_DEFAULT) return rc;
    for (int i = 0; !rc && c->p.suffix && i < c->P; i++) rc = encode_layer_prompt(c, c->layers[i]);
    if (!rc) rc = reblend_all(c);
    return rc;
}

static int set_background(semd_canvas *c, const char *prompt, const char *negative,
                          const uint8_t *rgb, int is_image)
{
    int rc = 0;
    if (rgb) {
        rc = encode_image(c, rgb, c->z_bg);
        if (!rc) build_boot(c);
        if (!rc && is_image && !prompt && !c->bg_prompt_set) prompt = ""; /* S2 (b) */
    }
    if (!rc && negative) rc = replace_text(&c->bg_negative, negative);
    if (!rc && negative) {
        free(c->e_bg_neg), c->e_bg_neg = NULL;
        if (c->p.profile == SEMD_PROFILE_DEFAULT)
            for (int i = 0; i < c->P; i++) free(c->layers[i]->e_u), c->layers[i]->e_u = NULL;
        rc = ensure_negatives(c);
    }
    if (!rc && prompt) rc = replace_text(&c->bg_prompt, prompt);
    if (!rc && prompt) {
        c->bg_prompt_set = 1;
        rc = background_prompt_changed(c);
    }
    c->flushed = 0;
    c->ctx_dirty = 1;
    return rc;
}

int semd_canvas_set_background(semd_canvas *c, const char *prompt, const char *negative,
                               const uint8_t *rgb)
{
    return set_background(c, prompt, negative, rgb, 1);
}

int semd_canvas_set_background_color(semd_canvas *c, const char *prompt, const char *negative,
                                     const uint8_t rgb[3])
{
    const size_t px = (size_t)c->H * c->W;
    uint8_t *img = malloc(px * 3);
    if (!img) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    for (size_t i = 0; i < px * 3; i++) img[i] = rgb[i % 3];
    int rc = set_background(c, prompt, negative, img, 0);
    free(img);
    return rc;
}

/* ---- layers ---- */

static int find_layer(const semd_canvas *c, int id)
{
    for (int i = 0; i < c->P; i++)
        if (c->layers[i]->id == id) return i;
    return -1;
}

static int check_layer_values(const semd_layer_desc *d, unsigned fields)
{
    if ((fields & SEMD_LAYER_PROMPT) && !d->prompt) return semd_error(SEMD_EINVAL, "layer: no prompt");
    if ((fields & SEMD_LAYER_MASK_STD) && !(d->mask_std >= 0 && d->mask_std <= 1000))
        return semd_error(SEMD_EINVAL, "layer: mask_std %g outside [0, 1000]", d->mask_std);
    if ((fields & SEMD_LAYER_MASK_STRENGTH) && !(d->mask_strength >= 0 && d->mask_strength <= 1))
        return semd_error(SEMD_EINVAL, "layer: mask_strength %g outside [0, 1]", d->mask_strength);
    if ((fields & SEMD_LAYER_PROMPT_STRENGTH) && !(d->prompt_strength >= 0 && d->prompt_strength <= 1))
        return semd_error(SEMD_EINVAL, "layer: prompt_strength %g outside [0, 1]", d->prompt_strength);
    return SEMD_OK;
}

int semd_canvas_add_layer(semd_canvas *c, const semd_layer_desc *d, int *id)
{
    const unsigned all = SEMD_LAYER_PROMPT | SEMD_LAYER_MASK_STD | SEMD_LAYER_MASK_STRENGTH |
                         SEMD_LAYER_PROMPT_STRENGTH;
    int rc = check_layer_values(d, all);
    if (rc) return rc;
    if (c->P == SEMD_CANVAS_MAX_LAYERS)
        return semd_error(SEMD_EINVAL, "canvas: at most %d layers", SEMD_CANVAS_MAX_LAYERS);
    const int new_id = c->next_id++; /* spent even if the add fails: ids are never reused */
    canvas_layer *l = calloc(1, sizeof *l);
    if (!l) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    l->id = new_id;
    l->prompt = strdup(d->prompt);
    l->negative = dup_or_empty(d->negative);
    l->std = d->mask_std, l->strength = d->mask_strength, l->prompt_strength = d->prompt_strength;
    rc = !l->prompt || !l->negative ? semd_error(SEMD_ENOMEM, "canvas: out of memory") : set_mask(c, l, d->mask);
    if (!rc) rc = encode_layer_prompt(c, l);
    if (!rc) rc = blend_layer(c, l);
    if (rc) {
        free_layer(l);
        return rc;
    }
    c->layers[c->P++] = l;
    *id = l->id;
    c->flushed = 0;
    c->ctx_dirty = 1;
    rc = ensure_negatives(c);
    return rc ? rc : process_all_masks(c);
}

int semd_canvas_remove_layer(semd_canvas *c, int id)
{
    const int idx = find_layer(c, id);
    if (idx < 0) return semd_error(SEMD_ENOTFOUND, "canvas: no layer %d", id);
    free_layer(c->layers[idx]);
    memmove(c->layers + idx, c->layers + idx + 1, (size_t)(c->P - idx - 1) * sizeof *c->layers);
    c->P--;
    c->flushed = 0;
    c->ctx_dirty = 1;
    return process_all_masks(c);
}

static int update_text(semd_canvas *c, canvas_layer *l, const semd_layer_desc *d, unsigned fields)
{
    int rc = 0;
    if (fields & SEMD_LAYER_PROMPT) {
        rc = replace_text(&l->prompt, d->prompt);
        if (!rc) rc = encode_layer_prompt(c, l);
    }
    if (!rc && (fields & SEMD_LAYER_NEGATIVE)) rc = replace_text(&l->negative, d->negative);
    if (!rc && (fields & SEMD_LAYER_NEGATIVE)) {
        free(l->e_neg_raw), l->e_neg_raw = NULL;
        free(l->e_u), l->e_u = NULL;
    }
    if (fields & SEMD_LAYER_PROMPT_STRENGTH) l->prompt_strength = d->prompt_strength;
    if (!rc) rc = blend_layer(c, l);
    if (!rc) rc = ensure_negatives(c);
    c->flushed = 0;
    return rc;
}

/* Mask fields: S7 (all layers) or, in the reference profile, P4 (this layer alone). */
static int update_mask(semd_canvas *c, int idx, const semd_layer_desc *d, unsigned fields)
{
    canvas_layer *l = c->layers[idx];
    const int reference = c->p.profile == SEMD_PROFILE_REFERENCE;
    int rc = (fields & SEMD_LAYER_MASK) ? set_mask(c, l, d->mask) : 0;
    if (fields & SEMD_LAYER_MASK_STD) l->std = d->mask_std;
    else if (reference) l->std = c->p.default_mask_std;
    if (fields & SEMD_LAYER_MASK_STRENGTH) l->strength = d->mask_strength;
    else if (reference) l->strength = c->p.default_mask_strength;
    if (rc) return rc;
    return reference ? process_one_mask(c, idx) : process_all_masks(c);
}

int semd_canvas_update_layer(semd_canvas *c, int id, const semd_layer_desc *d, unsigned fields)
{
    const int idx = find_layer(c, id);
    if (idx < 0) return semd_error(SEMD_ENOTFOUND, "canvas: no layer %d", id);
    int rc = check_layer_values(d, fields);
    const unsigned text = SEMD_LAYER_PROMPT | SEMD_LAYER_NEGATIVE | SEMD_LAYER_PROMPT_STRENGTH;
    const unsigned mask = SEMD_LAYER_MASK | SEMD_LAYER_MASK_STD | SEMD_LAYER_MASK_STRENGTH;
    if (!rc && (fields & text)) rc = update_text(c, c->layers[idx], d, fields);
    if (!rc && (fields & mask)) rc = update_mask(c, idx, d, fields);
    return rc;
}

/* ---- randomness ---- */

int semd_canvas_set_seed(semd_canvas *c, uint64_t seed)
{
    c->p.seed = seed;
    draw_slot_noise(c);
    c->flushed = 0;
    return SEMD_OK;
}

int semd_canvas_reset_latent(semd_canvas *c)
{
    memset(c->buf, 0, (size_t)c->T * c->n * sizeof(float));
    memset(c->stock, 0, (size_t)c->T * c->n * sizeof(float));
    c->since_reset = 0;
    c->flushed = 0;
    return SEMD_OK;
}

/* ---- live parameters ---- */

/* Mask settings changed: all layers again (S7), the old settings kept if that fails. */
static int remask(semd_canvas *c, semd_mask_type type, float cover_alpha)
{
    const semd_mask_type old_type = c->p.mask_type;
    const float old_alpha = c->p.cover_alpha;
    c->p.mask_type = type, c->p.cover_alpha = cover_alpha;
    int rc = process_all_masks(c);
    if (rc) c->p.mask_type = old_type, c->p.cover_alpha = old_alpha;
    return rc;
}

static void copy_live_fields(semd_canvas_params *dst, const semd_canvas_params *src, unsigned fields)
{
    if (fields & SEMD_CANVAS_PARAM_GUIDANCE_SCALE) dst->guidance_scale = src->guidance_scale;
    if (fields & SEMD_CANVAS_PARAM_EMBEDDED_GUIDANCE_SCALE) dst->embedded_guidance_scale = src->embedded_guidance_scale;
    if (fields & SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS) dst->bootstrap_steps = src->bootstrap_steps;
    if (fields & SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS) dst->bootstrap_mix_steps = src->bootstrap_mix_steps;
    if (fields & SEMD_CANVAS_PARAM_MASK_TYPE) dst->mask_type = src->mask_type;
    if (fields & SEMD_CANVAS_PARAM_COVER_ALPHA) dst->cover_alpha = src->cover_alpha;
    if (fields & SEMD_CANVAS_PARAM_AUTOFLUSH) dst->autoflush = src->autoflush;
}

int semd_canvas_set_params(semd_canvas *c, const semd_canvas_params *p, unsigned fields)
{
    if (!c || !p) return semd_error(SEMD_EINVAL, "canvas: set_params: no canvas or no parameters");
    if (fields & ~(unsigned)SEMD_CANVAS_PARAM_ALL)
        return semd_error(SEMD_EINVAL, "canvas: set_params: unknown field bits 0x%x (size, timesteps, "
                          "profile and decoder are fixed at creation)", fields & ~(unsigned)SEMD_CANVAS_PARAM_ALL);
    int rc = check_live_values(p, fields);
    if (rc) return rc;
    semd_canvas_params next = c->p;
    copy_live_fields(&next, p, fields);
    /* the work that can fail first, so that a failure changes nothing the next frame would see */
    if (next.guidance_scale > 1.0f) rc = encode_negatives(c);
    if (!rc && (next.mask_type != c->p.mask_type || next.cover_alpha != c->p.cover_alpha))
        rc = remask(c, next.mask_type, next.cover_alpha);
    if (rc) return rc;
    const int cfg_switch = (next.guidance_scale > 1.0f) != semd_canvas_cfg(c);
    const int new_boot = next.bootstrap_mix_steps != c->p.bootstrap_mix_steps;
    c->p = next; /* suffix: the canvas's own copy, carried over from c->p */
    if (new_boot) build_boot(c);
    if (cfg_switch) c->ctx_dirty = 1; /* the batch doubles or halves: per-sample contexts again */
    return SEMD_OK;
}

int semd_canvas_set_slot_noise(semd_canvas *c, const float *noise)
{
    if (!noise) return semd_error(SEMD_EINVAL, "canvas: no noise");
    memcpy(c->noise, noise, (size_t)c->T * c->n * sizeof(float));
    memset(c->stock, 0, (size_t)c->T * c->n * sizeof(float));
    return SEMD_OK;
}

int semd_canvas_set_frame_noise(semd_canvas *c, const float *noise)
{
    if (!noise) return semd_error(SEMD_EINVAL, "canvas: no noise");
    if (!c->frame_noise && !(c->frame_noise = malloc(c->n * sizeof(float))))
        return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    memcpy(c->frame_noise, noise, c->n * sizeof(float));
    return SEMD_OK;
}

/* ---- per-sample context, rebuilt only after edits ---- */

int semd_canvas_prepare_context(semd_canvas *c)
{
    const int cfg = semd_canvas_cfg(c), B = c->P * c->T * (1 + cfg);
    int rc = ensure_negatives(c);
    if (rc || (!c->ctx_dirty && B == c->ctx_batch)) return rc;
    const size_t e = (size_t)(c->ctx_len * c->dim);
    semd_tensor_free(c->ctx), c->ctx = NULL;
    free(c->ctx_host), c->ctx_host = NULL;
    c->ctx_batch = 0;
    c->ctx_dirty = 1; /* until the new context is complete: a failure here is retried next frame */
    if (!B) {
        c->ctx_dirty = 0;
        return SEMD_OK;
    }
    if (!(c->ctx_host = malloc((size_t)B * e * sizeof(float)))) return semd_error(SEMD_ENOMEM, "canvas: out of memory");
    /* slot-major (n = k P + i); under CFG the unconditional half comes first */
    for (int half = 0; half <= cfg; half++)
        for (int k = 0; k < c->T; k++)
            for (int i = 0; i < c->P; i++) {
                const float *src = (cfg && half == 0) ? c->layers[i]->e_u : c->layers[i]->e;
                memcpy(c->ctx_host + ((size_t)(half * c->T + k) * c->P + i) * e, src, e * sizeof(float));
            }
    int64_t ne[3] = {B, c->ctx_len, c->dim};
    rc = semd_tensor_new(c->be, 3, ne, &c->ctx);
    if (!rc) rc = semd_tensor_set(c->ctx, c->ctx_host);
    if (!rc) c->ctx_batch = B, c->ctx_dirty = 0;
    return rc;
}
