/*
 * semd/scene_run.h - run a scene (semd/scene.h) through a canvas: build the
 * canvas from the scene's settings, background and layers, then stream
 * frames, applying the scene's edit timeline at frame boundaries.
 */
#ifndef SEMD_SCENE_RUN_H
#define SEMD_SCENE_RUN_H

#include "semd/canvas.h"
#include "semd/scene.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Injected randomness for parity runs (docs/scene-format.md); all NULL: the canvas's own. */
typedef struct semd_scene_noise {
    const float *slots; /* [n_sets][T][4][h][w]: set 0 from the start, set s after the s-th seed edit */
    int n_sets;
    const float *frames; /* [frames][4][h][w]: slot-0 noise per frame */
} semd_scene_noise;

/* Called with each frame; a non-zero return stops the run with that status. */
typedef int (*semd_scene_frame_fn)(void *ctx, int index, const semd_frame *frame);

/* The canvas a scene describes (defaults resolved for the stream: semd_scene_resolve_defaults). */
int semd_scene_canvas(const semd_scene *s, const semd_sd_models *m, semd_canvas **out);

/* Apply one edit of the timeline. `seed_set` counts seed edits for noise injection. */
int semd_scene_apply_edit(semd_canvas *c, const semd_scene *s, const semd_scene_edit *e,
                          const semd_scene_noise *noise, int *seed_set);

/* Stream `frames` frames of the scene on a new canvas, edits applied as timed. */
int semd_scene_stream(const semd_scene *s, const semd_sd_models *m, int frames,
                      const semd_scene_noise *noise, semd_scene_frame_fn fn, void *ctx);

/* ---- the single-call mode (semanticdraw.md section 11, D6) ---- */

/* Injected noise for a single-call render; NULL members: drawn from the scene's seed. */
typedef struct semd_single_noise {
    const float *init_latent; /* [4][h][w] */
    const float *boot_noise;  /* [bootstrap_steps][4][h][w] */
    const float *step_noise;  /* [T-1][4][h][w] */
} semd_single_noise;

typedef struct semd_single_result {
    float *latent; /* [4][h][w], the final denoised latent */
    float *image;  /* [3][H][W] in [0,1], after the background blend */
} semd_single_result;

/*
 * One offline render of a scene (defaults resolved for SEMD_SCENE_SINGLE; the
 * edits are ignored): fresh noise per step, bootstrapping with leak
 * suppression (sensitivity 0.2), centering on the bootstrap steps only, x0
 * aggregation, and a pixel-space blend with a given background image or
 * colour. The background prompt becomes a generated bottom layer when no
 * image is given and the layers leave area uncovered. No tiling: canvases up
 * to 768 pixels. The caller frees out->latent and out->image.
 */
int semd_scene_single(const semd_scene *s, const semd_sd_models *m, const semd_single_noise *noise,
                      semd_single_result *out);

#ifdef __cplusplus
}
#endif
#endif
