/*
 * canvas_internal.h - the state of a SemanticDraw canvas, shared by the edit
 * side (canvas.c) and the frame side (canvas_frame.c). Latents and masks are
 * host float arrays: they are small (4 x h x w per slot) and the per-frame
 * arithmetic on them is elementwise; only the UNet and the decoder run on the
 * backend.
 */
#ifndef SEMD_CANVAS_INTERNAL_H
#define SEMD_CANVAS_INTERNAL_H

#include "semd/canvas.h"

typedef struct canvas_layer {
    int id;
    char *prompt, *negative;
    float *mask;               /* normalised a/255 [H*W], NULL: all zero */
    float std, strength, prompt_strength;
    float *e_raw, *e_neg_raw;  /* text encoder outputs [77*D]; e_neg_raw NULL until CFG needs it */
    float *e, *e_u;            /* blended against the background (section 6.2) */
} canvas_layer;

struct semd_canvas {
    const semd_sd_models *m;
    semd_backend *be;
    semd_canvas_params p;
    int T, H, W, h, w, ctx_len, dim;
    size_t hw, n;              /* latent pixels, latent elements (4 h w) */

    /* schedule per slot (b[T] = 0, a[T] = 1) and the reference profile's P2 coefficients */
    float tau[SEMD_CANVAS_MAX_SLOTS], a[SEMD_CANVAS_MAX_SLOTS + 1], b[SEMD_CANVAS_MAX_SLOTS + 1];
    float c_skip[SEMD_CANVAS_MAX_SLOTS], c_out[SEMD_CANVAS_MAX_SLOTS];
    float p2a[SEMD_CANVAS_MAX_SLOTS], p2b[SEMD_CANVAS_MAX_SLOTS];

    float *noise, *stock, *buf; /* N, S [T][n]; buf [T][n] (slot 0 unused) */
    float *frame_noise;         /* injected slot-0 noise for the next frame, or NULL */
    uint64_t frame_index;       /* counter of the slot-0 noise stream */

    char *bg_prompt, *bg_negative;
    int bg_prompt_set;
    float *z_white, *z_bg, *boot; /* [n], [n], [T][n] */
    float *e_bg, *e_bg_neg;     /* [77*D]; e_bg_neg NULL until CFG needs it */

    canvas_layer *layers[SEMD_CANVAS_MAX_LAYERS];
    int P, next_id;
    float *M, *cnt, *G;         /* [P][T][hw], [T][hw], [T][hw] */
    int *shifts;                /* [P][T][2] */

    float *ctx_host;            /* [B][77][D], B = P T (x2 under CFG) */
    semd_tensor *ctx, *wemb;
    int ctx_dirty, ctx_batch;

    int flushed, since_reset;
    float *out_latent, *out_image;
    semd_canvas_stats stats;
};

/* canvas.c, used by the frame side */
int semd_canvas_cfg(const semd_canvas *c);
int semd_canvas_prepare_context(semd_canvas *c);
double semd_canvas_now_ms(void);

#endif
