/*
 * slots.h - per-slot schedule and text embedding shared by the SemanticDraw
 * stream (canvas.c) and the single-call mode (single_call.c). Internal.
 */
#ifndef SEMD_SLOTS_H
#define SEMD_SLOTS_H

#include "semd/txt2img.h"

typedef struct semd_slots {
    int T;
    float tau[16], a[17], b[17], c_skip[16], c_out[16]; /* a[T] = 1, b[T] = 0 */
} semd_slots;

/*
 * Slot k sits at timestep grid[tidx[k]] of the original_inference_steps LCM
 * grid; a, b, c_skip, c_out are computed in double from the float32 alphas
 * and rounded (the reference computes them the same way).
 */
int semd_slots_build(semd_lcm_scheduler *s, int T, const int *tidx, semd_slots *out);

/*
 * z = scaling_factor * encode(2 rgb/255 - 1) [4][h][w] with TAESD (when
 * `use_taesd`) or the VAE's posterior mean (S6); rgb NULL: the all-ones image.
 */
int semd_encode_rgb(const semd_sd_models *m, semd_backend *be, int use_taesd, const uint8_t *rgb,
                    int width, int height, float *z);

/* image [3][H][W] = clip(decode(z / scaling_factor) / 2 + 0.5, 0, 1) (section 10). */
int semd_decode_unit(const semd_sd_models *m, semd_backend *be, int use_taesd, const float *z,
                     int width, int height, float *image);

/* The text encoder's last hidden state for one prompt, [77][D] host floats (caller frees). */
int semd_embed_prompt(const semd_sd_models *m, const char *text, float **out);

#endif
