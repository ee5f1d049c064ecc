/*
 * semd/vae.h - the image autoencoders: AutoencoderKL (the SD VAE) and
 * AutoencoderTiny (TAESD), both built from their diffusers configs.
 *
 * Decoders take exactly what diffusers' decode() takes: for AutoencoderKL the
 * latent already divided by scaling_factor (post_quant_conv is applied here);
 * for TAESD the raw latent. Both return images in [-1, 1] (roughly), NCHW.
 * Encoders take images in [-1, 1] and return the latent distribution's mean
 * (AutoencoderKL, after quant_conv) or TAESD's latents.
 */
#ifndef SEMD_VAE_H
#define SEMD_VAE_H

#include "semd/backend.h"
#include "semd/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_VAE_MAX_LEVELS 6

typedef struct semd_vae_config {
    int in_channels, out_channels, latent_channels;
    int n_levels;
    int block_out[SEMD_VAE_MAX_LEVELS];
    int layers_per_block;
    int norm_groups;
    int mid_attention;   /* mid_block_add_attention */
    int quant_conv;      /* use_quant_conv */
    int post_quant_conv; /* use_post_quant_conv */
    float scaling_factor;
} semd_vae_config;

void semd_vae_config_sd15(semd_vae_config *cfg);
int semd_vae_config_load(const char *config_json, semd_vae_config *cfg);

typedef struct semd_vae semd_vae;

/* Load the encoder, the decoder or both (the other half's tensors need not exist). */
enum { SEMD_VAE_ENCODER = 1, SEMD_VAE_DECODER = 2 };

int semd_vae_load(semd_backend *be, const semd_vae_config *cfg, const semd_weight_view *view,
                  int parts, semd_vae **out);
void semd_vae_free(semd_vae *v);
const semd_vae_config *semd_vae_config_of(const semd_vae *v);

/* latent [B,L,h,w] -> image [B,out,8h,8w] (for 4 levels). */
int semd_vae_decode(semd_vae *v, const semd_tensor *latent, semd_tensor **image);
/* image [B,in,H,W] -> latent mean [B,L,H/8,W/8]. */
int semd_vae_encode(semd_vae *v, const semd_tensor *image, semd_tensor **latent_mean);

/* ---- TAESD ---- */

#define SEMD_TAESD_MAX_LEVELS 6

typedef struct semd_taesd_config {
    int in_channels, out_channels, latent_channels;
    int n_enc, n_dec;
    int enc_channels[SEMD_TAESD_MAX_LEVELS], enc_blocks[SEMD_TAESD_MAX_LEVELS];
    int dec_channels[SEMD_TAESD_MAX_LEVELS], dec_blocks[SEMD_TAESD_MAX_LEVELS];
} semd_taesd_config;

/* madebyollin/taesd for SD1.x/SD2.x (and the SDXL variant: same shapes). */
void semd_taesd_config_default(semd_taesd_config *cfg);
int semd_taesd_config_load(const char *config_json, semd_taesd_config *cfg);

typedef struct semd_taesd semd_taesd;

/*
 * Weight naming: SEMD_TAESD_DIFFUSERS reads "encoder.layers.N.*" and
 * "decoder.layers.N.*" (an AutoencoderTiny folder); SEMD_TAESD_ORIGINAL reads
 * the original taesd_encoder/taesd_decoder files ("N.*", the decoder's indices
 * shifted by its leading clamp).
 */
typedef enum semd_taesd_naming { SEMD_TAESD_DIFFUSERS, SEMD_TAESD_ORIGINAL } semd_taesd_naming;

/* `enc` and/or `dec` weights (either may be NULL to skip that half). */
int semd_taesd_load(semd_backend *be, const semd_taesd_config *cfg, const semd_weights *enc,
                    const semd_weights *dec, semd_taesd_naming naming, semd_taesd **out);
/*
 * Open TAESD from `path`: an AutoencoderTiny folder (config.json optional), or
 * an original taesd_encoder / taesd_decoder .safetensors file (then `parts`
 * must name that one half).
 */
int semd_taesd_open(const char *path, semd_backend *be, int parts, semd_taesd **out);
/* The default TAESD with random weights built in memory (benchmarks; see semd_weights_random). */
int semd_taesd_random(semd_backend *be, uint64_t seed, semd_taesd **out);
void semd_taesd_free(semd_taesd *t);
int semd_taesd_decode(semd_taesd *t, const semd_tensor *latent, semd_tensor **image);
int semd_taesd_encode(semd_taesd *t, const semd_tensor *image, semd_tensor **latent);

#ifdef __cplusplus
}
#endif
#endif
