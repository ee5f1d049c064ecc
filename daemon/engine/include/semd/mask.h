/*
 * semd/mask.h - SemanticDraw mask preprocessing ("quantised masks",
 * semanticdraw.md section 5) and the bounding-box centering shifts (8.2).
 *
 * Pure host code on float32 arrays: every function here is a function of its
 * arguments only (no global state, no backend), so the renderer can run it on
 * a mask update and upload the results.
 *
 * Layout. Images are row-major [H][W]; latents [h][w] with h = H/8, w = W/8.
 * Layers are ordered bottom first (a higher index is on top), slots k = 0 is
 * the noisiest. The outputs are
 *
 *   M      [P][T][h][w]  quantised mask of layer i at slot k
 *   Cnt    [T][h][w]     sum over the layers of M
 *   G      [T][h][w]     background weight clip(1 - Cnt, 0, 1)
 *   shifts [P][T][2]     centering roll (dy, dx) of M[i,k]
 *
 * Arithmetic. The blur is computed in float64 (kernel and accumulation) and
 * rounded to float32 once, as the project's PyTorch reference does; cover
 * alpha, strength and quantisation are float32 operations in the order of
 * section 5.2. The separable blur sums in a different order than a 2-D
 * convolution, so a blurred value can differ from the reference's by an ulp of
 * the float64 result; after the cast to float32 the two agree except when the
 * float64 value falls within ~1e-16 of a float32 rounding boundary.
 *
 * Only the pixels the nearest downsample keeps, (8y, 8x), are blurred and
 * quantised (steps 3-5 are pointwise, so this is exact): a 512x512 canvas with
 * three std-8 layers and T = 5 takes about 3 ms at -O2 on one core.
 *
 * Errors are negative codes from semd/status.h (SEMD_EINVAL for bad
 * arguments); semd_last_error() names the argument at fault.
 */
#ifndef SEMD_MASK_H
#define SEMD_MASK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Quantisation of a blurred mask against the noise levels (5.2 step 4). */
typedef enum semd_mask_type {
    SEMD_MASK_CONTINUOUS = 0,      /* clip((m - b_{k+1}) / (b_k - b_{k+1}), 0, 1), b_T = 0 */
    SEMD_MASK_SEMI_CONTINUOUS = 1, /* discrete for k < T-1, clip(m / b_{T-1}, 0, 1) at k = T-1 */
    SEMD_MASK_DISCRETE = 2         /* 1[m > b_k] */
} semd_mask_type;

/* Largest image side the mask functions accept (keeps every size in an int). */
#define SEMD_MASK_MAX_SIDE 16384
/*
 * Largest blur std in pixels: the window (6*std + 1 taps) bounds the cost, and
 * beyond a few hundred pixels the blur is a plain average anyway.
 */
#define SEMD_MASK_MAX_STD 1024.0f

/* Settings shared by every layer of a canvas. */
typedef struct semd_mask_params {
    int width, height;         /* image size in pixels: positive multiples of 8 */
    int n_slots;               /* T >= 1 */
    const float *noise_levels; /* b_k for k < T: strictly decreasing, in (0, 1]; b_T = 0 implied */
    semd_mask_type type;
    float cover_alpha;         /* in [0, 1] */
} semd_mask_params;

/*
 * Run section 5.2 on P = n_layers layers (steps 1-5) and derive Cnt, G and
 * the centering shifts.
 *
 *   masks    [P][H][W] normalised masks m = a/255, values in [0, 1]
 *   std      [P] blur std in image pixels, 0 .. SEMD_MASK_MAX_STD
 *   strength [P] mask strength in [0, 1]
 *   M        [P][T][h][w] out
 *   cnt, G   [T][h][w] out, each may be NULL
 *   shifts   [P][T][2] out (dy, dx), may be NULL
 *
 * P = 0 is valid (S3): Cnt = 0, G = 1, and the layer arrays may be NULL.
 *
 * The reference profile's single-layer mask edit (P4) is this call with
 * n_layers = 1 on that layer alone: the last layer is never damped by cover
 * alpha, and the blur window comes from that layer's std only. Update the
 * counts of the whole canvas with semd_mask_update_counts.
 */
int semd_mask_process(const semd_mask_params *p, int n_layers, const float *masks,
                      const float *std, const float *strength, float *M, float *cnt, float *G,
                      int *shifts);

/*
 * Steps 1-2 alone at image resolution: the cover-alpha-ordered, blurred,
 * pre-strength masks [P][H][W] the single-call mode composites with (section
 * 11 step 8). Without any std > 0 this is the cover-alpha output.
 */
int semd_mask_blurred(const semd_mask_params *p, int n_layers, const float *masks,
                      const float *std, float *out);

/*
 * One Gaussian blur (5.2 step 2) of one [height][width] image: kernel
 * exp(-(dx^2 + dy^2) / (2 std^2)) normalised to sum 1 on offsets
 * -window/2 .. window/2, replicate borders, float64 arithmetic, float32
 * result. window is odd and >= 1 (section 5.2 uses 2*ceil(3*max std) + 1 for
 * all layers, see semd_mask_window); std > 0. in and out must not overlap.
 * Any height and width >= 1.
 */
int semd_mask_blur(const float *in, float *out, int height, int width, double std, int window);

/*
 * The blur window of a set of layers: 2*ceil(3*max std) + 1, computed in
 * float64; 0 when no std is > 0 (no blur at all). The stds must be valid
 * (0 .. SEMD_MASK_MAX_STD).
 */
int semd_mask_window(int n_layers, const float *std);

/*
 * The P4 incremental count update after one layer's masks change from M_old
 * to M_new ([T][h][w] each): Cnt <- (Cnt - M_old) + M_new, G = clip(1 - Cnt,
 * 0, 1), in float32 as the published update_single_layer does. n = T*h*w.
 * G may be NULL; M_old NULL means an all-zero old mask (a layer being added).
 */
void semd_mask_update_counts(long n, float *cnt, float *G, const float *M_old, const float *M_new);

/*
 * The centering shift of one quantised latent mask [h][w] (section 8.2):
 * the support's rows t..b and columns l..r (all 0 for an empty mask), centre
 * cy = (t + b + 1) / 2, cx = (l + r + 1) / 2, shift (h/2 - cy, w/2 - cx).
 */
void semd_mask_shift(const float *mask, int h, int w, int *dy, int *dx);

/*
 * Circular roll of `channels` planes of [h][w]:
 * out[c][y][x] = in[c][(y - dy) mod h][(x - dx) mod w]. Any integer shifts
 * (negative, larger than the plane); (-dy, -dx) undoes (dy, dx). in and out
 * must not overlap.
 */
void semd_roll(const float *in, float *out, int channels, int h, int w, int dy, int dx);

/* Normalise n 8-bit alpha values to m = a / 255 in float32 (D2). */
void semd_mask_normalize(const unsigned char *alpha, float *m, long n);

#ifdef __cplusplus
}
#endif
#endif
