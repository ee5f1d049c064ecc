/*
 * semd/unet.h - UNet2DConditionModel, built from its config.
 *
 * One code path serves SD1.x, SD2.x and SDXL shapes (models.md section 2):
 * ResNet blocks, Transformer2D blocks (1x1-conv or linear proj_in/proj_out,
 * GEGLU feed-forward, per-level depth and head counts), down/up sampling, the
 * skip stack, the sinusoidal timestep embedding, the LCM guidance embedding
 * input (`time_cond_proj_dim`) and SDXL's `text_time` addition embedding.
 * Weights use diffusers names ("down_blocks.0.resnets.0.conv1.weight") under a
 * prefix. Latents of any size work: each upsampler resizes to the size of the
 * skip tensor it meets, as diffusers does.
 */
#ifndef SEMD_UNET_H
#define SEMD_UNET_H

#include "semd/backend.h"
#include "semd/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_UNET_MAX_LEVELS 6

typedef struct semd_unet_config {
    int in_channels, out_channels;
    int n_levels;
    int block_out[SEMD_UNET_MAX_LEVELS];
    int down_attn[SEMD_UNET_MAX_LEVELS]; /* CrossAttnDownBlock2D at level i */
    int up_attn[SEMD_UNET_MAX_LEVELS];   /* CrossAttnUpBlock2D at up block i (deepest first) */
    int heads[SEMD_UNET_MAX_LEVELS];     /* per down level; up blocks use them reversed */
    int depth[SEMD_UNET_MAX_LEVELS];     /* transformer blocks per down level */
    int up_depth[SEMD_UNET_MAX_LEVELS];  /* per up block */
    int layers_per_block;
    int cross_attention_dim;
    int linear_projection;
    int norm_groups;
    float norm_eps;
    int flip_sin_to_cos;
    float freq_shift;
    int time_cond_proj_dim;      /* 0: no guidance-embedding input */
    int addition_time_embed_dim; /* SDXL text_time; 0: none */
    int addition_input_dim;      /* projection_class_embeddings_input_dim */
} semd_unet_config;

/* The SD1.5 UNet (time_cond_proj_dim 0). */
void semd_unet_config_sd15(semd_unet_config *cfg);
/* From unet/config.json; unsupported values are errors naming the field. */
int semd_unet_config_load(const char *config_json, semd_unet_config *cfg);

typedef struct semd_unet semd_unet;

int semd_unet_load(semd_backend *be, const semd_unet_config *cfg, const semd_weight_view *view,
                   semd_unet **out);
void semd_unet_free(semd_unet *u);
const semd_unet_config *semd_unet_config_of(const semd_unet *u);
semd_backend *semd_unet_backend(const semd_unet *u);

typedef struct semd_unet_inputs {
    const semd_tensor *sample;                /* [B, in_channels, h, w] */
    const float *timesteps;                   /* host, B values (one per sample) */
    const semd_tensor *encoder_hidden_states; /* [B, L, cross_attention_dim] */
    const semd_tensor *timestep_cond;         /* [B, time_cond_proj_dim] or NULL */
    const semd_tensor *text_embeds;           /* SDXL: [B, pooled dim] */
    const float *time_ids;                    /* SDXL: host, B x 6 values */
} semd_unet_inputs;

/* One UNet evaluation; *out = [B, out_channels, h, w] (the caller frees it). */
int semd_unet_forward(semd_unet *u, const semd_unet_inputs *in, semd_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
