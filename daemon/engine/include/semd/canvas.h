/*
 * semd/canvas.h - a SemanticDraw canvas: regions painted with prompts, streamed
 * as frames (semanticdraw.md sections 5-10; the scene format in
 * docs/scene-format.md names the same parameters).
 *
 * A canvas holds its own seed, noises, latent buffer and caches; several
 * canvases share one set of loaded models. Every edit (background, layers,
 * seed, noise, parameters) takes effect at the next frame and costs only what
 * it must: a mask edit re-runs the mask preprocessing (never the text
 * encoder), a prompt edit re-encodes that one prompt, a background image is
 * encoded once.
 * Everything that depends only on the inputs (quantised masks, counts,
 * centering shifts, blended embeddings) is computed at edit time.
 *
 * Each frame runs the T-slot stream batch once: slot 0 gets fresh noise, each
 * slot's x0 estimates are aggregated over the layers with the quantised masks
 * (latent pre-averaging), composited with the background, re-noised with the
 * slot's fixed noise and passed to the next slot; the last slot is decoded.
 */
#ifndef SEMD_CANVAS_H
#define SEMD_CANVAS_H

#include <stdint.h>

#include "semd/mask.h"
#include "semd/txt2img.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_CANVAS_MAX_SLOTS 16
#define SEMD_CANVAS_MAX_LAYERS 32

typedef enum semd_profile {
    SEMD_PROFILE_DEFAULT,  /* the paper's intent (semanticdraw.md D1) */
    SEMD_PROFILE_REFERENCE /* the published code, quirks P1-P4 kept, for parity */
} semd_profile;

typedef enum semd_decoder_kind { SEMD_DECODER_TAESD, SEMD_DECODER_VAE } semd_decoder_kind;

/*
 * Fixed at creation: size, timesteps, profile and decoder (S10), and so far the
 * suffix and the P4 mask defaults. The seed has its own setter; the CFG,
 * bootstrap, mask and autoflush fields change live with semd_canvas_set_params.
 */
typedef struct semd_canvas_params {
    int width, height;        /* pixels, multiples of 8 */
    uint64_t seed;
    semd_profile profile;
    int n_timesteps;          /* T */
    int timesteps[SEMD_CANVAS_MAX_SLOTS]; /* t_index_list on the 50-step LCM grid */
    float guidance_scale;     /* CFG with negative prompts iff > 1 (D3) */
    float embedded_guidance_scale; /* LCM-distilled UNets' w-embedding (S5) */
    int bootstrap_steps;
    float bootstrap_mix_steps;
    semd_mask_type mask_type;
    float cover_alpha;
    float default_mask_std;   /* used by the reference profile's single-layer mask edits (P4) */
    float default_mask_strength;
    semd_decoder_kind decoder;
    int autoflush;
    const char *suffix;       /* NULL: none (section 6.2) */
} semd_canvas_params;

/* The streaming defaults of semanticdraw.md section 12. */
void semd_canvas_params_default(semd_canvas_params *p);

typedef struct semd_canvas semd_canvas;

/*
 * `m` needs tokenizer, clip, unet and scheduler, plus taesd (encoder and
 * decoder) or vae (encoder and decoder) for the chosen decoder. The models
 * must outlive the canvas. The canvas starts with the white background and
 * the prompt "simple white background" (S2) and no layers.
 */
int semd_canvas_new(const semd_sd_models *m, const semd_canvas_params *p, semd_canvas **out);
void semd_canvas_free(semd_canvas *c);
const semd_canvas_params *semd_canvas_params_of(const semd_canvas *c);

/* ---- background ---- */

/*
 * Any argument may be NULL to keep the current value. `rgb` is 8-bit RGB
 * [height][width][3] at the canvas size. An image without a prompt, when no
 * prompt was set before, gets the empty prompt (S2).
 */
int semd_canvas_set_background(semd_canvas *c, const char *prompt, const char *negative,
                               const uint8_t *rgb);

/*
 * A plain-colour background: like an image of that colour, except that a
 * colour is not an image for S2 (without a prompt the current prompt stays).
 */
int semd_canvas_set_background_color(semd_canvas *c, const char *prompt, const char *negative,
                                     const uint8_t rgb[3]);

/* ---- layers ---- */

typedef struct semd_layer_desc {
    const char *prompt;       /* required */
    const char *negative;     /* NULL: "" */
    const uint8_t *mask;      /* 8-bit alpha [height][width], NULL: all zero */
    float mask_std, mask_strength, prompt_strength;
} semd_layer_desc;

/* Which fields of a semd_layer_desc an update changes. */
enum {
    SEMD_LAYER_PROMPT = 1 << 0,
    SEMD_LAYER_NEGATIVE = 1 << 1,
    SEMD_LAYER_MASK = 1 << 2,
    SEMD_LAYER_MASK_STD = 1 << 3,
    SEMD_LAYER_MASK_STRENGTH = 1 << 4,
    SEMD_LAYER_PROMPT_STRENGTH = 1 << 5
};

/* Add a layer on top; *id is its stable id. */
int semd_canvas_add_layer(semd_canvas *c, const semd_layer_desc *d, int *id);
/* Change the fields named by `fields` (SEMD_LAYER_* bits). */
int semd_canvas_update_layer(semd_canvas *c, int id, const semd_layer_desc *d, unsigned fields);
int semd_canvas_remove_layer(semd_canvas *c, int id);
int semd_canvas_layer_count(const semd_canvas *c);

/* ---- randomness ---- */

/* New fixed per-slot noises from `seed`; the stock noise restarts at zero. */
int semd_canvas_set_seed(semd_canvas *c, uint64_t seed);
/* Parity runs: replace the fixed per-slot noises with `noise` [T][4][h][w]. */
int semd_canvas_set_slot_noise(semd_canvas *c, const float *noise);
/* Parity runs: the slot-0 noise of the next frame [4][h][w] (else drawn from the seed). */
int semd_canvas_set_frame_noise(semd_canvas *c, const float *noise);

/* Zero the latent buffer and the stock noise: the next T-1 frames are warm-up again. */
int semd_canvas_reset_latent(semd_canvas *c);

/* ---- live parameters ---- */

/* Which fields of a semd_canvas_params semd_canvas_set_params changes. */
enum {
    SEMD_CANVAS_PARAM_GUIDANCE_SCALE = 1 << 0,
    SEMD_CANVAS_PARAM_EMBEDDED_GUIDANCE_SCALE = 1 << 1,
    SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS = 1 << 2,
    SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS = 1 << 3,
    SEMD_CANVAS_PARAM_MASK_TYPE = 1 << 4,
    SEMD_CANVAS_PARAM_COVER_ALPHA = 1 << 5,
    SEMD_CANVAS_PARAM_AUTOFLUSH = 1 << 6,
    SEMD_CANVAS_PARAM_ALL = (1 << 7) - 1
};

/*
 * Change the fields of `p` named by `fields` (SEMD_CANVAS_PARAM_* bits; the
 * other fields of `p` are not read) from the next frame on (section 9.1).
 * The values are checked as semd_canvas_new checks them; an invalid value or
 * an unknown bit is SEMD_EINVAL naming the field, and any failure leaves the
 * canvas as it was. A value equal to the current one costs nothing.
 *
 *   guidance_scale   crossing 1 turns CFG on or off (D3): the UNet batch
 *                    doubles or halves from the next frame. Turning it on
 *                    encodes the negative prompts not encoded yet (background
 *                    and layers) now, blended against the current background
 *                    negative; encoded negatives stay cached while CFG is off.
 *                    (So in the reference profile a layer added before a
 *                    background-negative change, with CFG off until after it,
 *                    is blended against the new background negative, where a
 *                    canvas with CFG on throughout keeps the old blend, P3.)
 *   embedded_guidance_scale  the guidance embedding of the next frame (S5).
 *   bootstrap_steps  read every frame (beta_k and the P1 centering).
 *   bootstrap_mix_steps  rebuilds the bootstrap latents from the cached white
 *                    and background latents (no VAE pass).
 *   mask_type, cover_alpha  re-run the mask preprocessing of every layer from
 *                    its cached normalised mask (S7; in the reference profile
 *                    too, which replaces any P4 incremental counts).
 *   autoflush        on: the next step flushes first unless the canvas is
 *                    flushed (S1, section 7.5).
 *
 * None of these clears "flushed", and none touches the stream: the latent
 * buffer and the fixed and stock noises are kept, so the in-flight slots
 * finish their remaining steps under the new values, as after a prompt or mask
 * edit (section 7.4), and the change has converged T frames later. This holds
 * for a CFG switch as well: the buffer holds re-noised x0 estimates, which do
 * not depend on how the UNet batch is laid out (the batch is rebuilt from the
 * buffer every frame). Follow with semd_canvas_reset_latent to start over.
 */
int semd_canvas_set_params(semd_canvas *c, const semd_canvas_params *p, unsigned fields);

/* ---- frames ---- */

typedef struct semd_frame {
    float *latent; /* [4][h][w], Y[T-1]; owned by the canvas, valid until its next frame */
    float *image;  /* [3][height][width] in [0,1]; NULL when the step did not decode */
    int warmup;    /* produced before the stream was full (the first T-1 frames after a reset) */
} semd_frame;

/*
 * Advance `n` canvases by one frame each; same-size canvases run in one UNet
 * batch. `decode` 0 skips decoding (flushes, benchmarks of the stream alone).
 * frames[i] receives canvas i's frame.
 *
 * All or nothing: when any part fails (out of host or device memory, say),
 * no canvas advances; each is left as it was, so the caller may step them
 * again, alone or together, and get the frames it would have got. (The
 * autoflush warm-up that a first step runs is the exception: flush frames
 * that succeeded stay done.)
 */
int semd_canvas_step(semd_canvas *const *canvases, int n, int decode, semd_frame *frames);

/* Time spent and work done, accumulated since creation (or the last reset). */
typedef struct semd_canvas_stats {
    double ms_text, ms_mask, ms_encode, ms_unet, ms_aggregate, ms_decode;
    long text_encodes;  /* prompts through the text encoder */
    long mask_updates;  /* mask preprocessing runs */
    long frames;
} semd_canvas_stats;

void semd_canvas_stats_get(const semd_canvas *c, semd_canvas_stats *s);

/*
 * Bytes the canvas holds between frames: its slot latents and noises, layer
 * masks and embeddings, the UNet context of its batch, its output buffers.
 * Grows with layers (and CFG). Tensors of the backend (the batch's context)
 * are counted by semd_backend_memory instead, and the transient activations
 * of a UNet call by neither. The daemon's memory limit counts both.
 */
size_t semd_canvas_memory(const semd_canvas *c);
void semd_canvas_stats_reset(semd_canvas *c);

#ifdef __cplusplus
}
#endif
#endif
