/*
 * semd/name_map.h - tensor names: original LDM single files <-> diffusers.
 *
 * An LDM single file (v1-5-pruned-emaonly.safetensors, ...) holds every module
 * under its own prefix and with the original CompVis names; a diffusers folder
 * holds one file per module with diffusers' names (models.md section 7.3):
 *
 *   model.diffusion_model.input_blocks.1.1.proj_in.weight      (single file)
 *   down_blocks.0.attentions.0.proj_in.weight                   (unet/)
 *   first_stage_model.decoder.up.3.upsample.conv.weight         (single file)
 *   decoder.up_blocks.0.upsamplers.0.conv.weight                (vae/)
 *   cond_stage_model.transformer.text_model.final_layer_norm.weight
 *   text_model.final_layer_norm.weight                          (text_encoder/)
 *
 * The engine's modules ask for diffusers names; this map lets the loader find
 * them in a single file and name them in messages. The UNet part depends on
 * the layout (levels, ResNets per level, which levels have attention), so it
 * covers SD1.x, SD2.x and SDXL from their configs. Text encoders: SD1.x's
 * CLIP (transformers names under "cond_stage_model.transformer."); OpenCLIP
 * (SD2, SDXL's second encoder) needs tensor splitting and is not a name map.
 *
 * Only names of parameters the modules use are mapped ("...weight"/"...bias"
 * of known layers); anything else is SEMD_ENOTFOUND with the name in the
 * message. Buffers and copies that loaders skip are recognised separately by
 * semd_name_is_ignored().
 */
#ifndef SEMD_NAME_MAP_H
#define SEMD_NAME_MAP_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum semd_module {
    SEMD_MODULE_UNET,  /* unet/          <-> "model.diffusion_model." */
    SEMD_MODULE_VAE,   /* vae/           <-> "first_stage_model." */
    SEMD_MODULE_TEXT   /* text_encoder/  <-> "cond_stage_model.transformer." */
} semd_module;

/* "unet", "vae", "text_encoder" (the diffusers folder), or "?" */
const char *semd_module_name(semd_module module);
/* The single-file prefix of a module ("model.diffusion_model.", ...), or NULL. */
const char *semd_module_ldm_prefix(semd_module module);

#define SEMD_NAME_MAX_LEVELS 8

/*
 * The layout the names depend on. The UNet part comes from unet/config.json:
 * n_levels = len(block_out_channels), layers_per_block, and whether each down
 * block (in order) and each up block (in diffusers' order, deepest first) has
 * attentions. The middle block is always ResNet, Transformer, ResNet. The VAE
 * part (4 levels of 2 ResNets for every SD family) only matters for the
 * decoder's reversed level numbering and for rejecting out-of-range indices.
 */
typedef struct semd_name_layout {
    int n_levels;
    int layers_per_block;
    bool down_has_attn[SEMD_NAME_MAX_LEVELS];
    bool up_has_attn[SEMD_NAME_MAX_LEVELS];
    bool add_embedding;        /* addition_embed_type "text_time" (SDXL): label_emb.0.* */
    int vae_levels;            /* len(block_out_channels) of vae/config.json */
    int vae_layers_per_block;  /* encoder ResNets per level; the decoder has one more */
} semd_name_layout;

/* SD1.x (and SD2.x): 4 levels, 2 ResNets, attention in down 0-2 and up 1-3. */
void semd_name_layout_sd15(semd_name_layout *out);

/*
 * From the values of a UNet config: down/up_block_types hold n_levels strings
 * each ("CrossAttnDownBlock2D"/"DownBlock2D", "CrossAttnUpBlock2D"/"UpBlock2D";
 * other block types have no LDM counterpart: SEMD_EUNSUPPORTED), and
 * `addition_embed_type` may be NULL. The VAE part is set to SD's 4 x 2.
 * SDXL: 3 levels, down [D, CA, CA], up [CA, CA, U], "text_time".
 */
int semd_name_layout_from_unet_config(semd_name_layout *out, int n_levels, int layers_per_block,
                                      const char *const *down_block_types,
                                      const char *const *up_block_types,
                                      const char *addition_embed_type);

/*
 * A full single-file name -> the module it belongs to (*which, may be NULL)
 * and its diffusers name inside that module's folder (no prefix), written to
 * out[cap]. SEMD_ENOTFOUND for names outside the map (ignored names
 * included), SEMD_EINVAL when `out` is too small.
 */
int semd_ldm_to_diffusers(const semd_name_layout *layout, const char *ldm, char *out, size_t cap,
                          semd_module *which);

/*
 * A diffusers name of `module` -> the full single-file name. Also accepts the
 * deprecated VAE attention names query/key/value/proj_attn (for to_q, to_k,
 * to_v, to_out.0), which older diffusers files hold.
 */
int semd_diffusers_to_ldm(const semd_name_layout *layout, semd_module module, const char *name,
                          char *out, size_t cap);

/*
 * Whether a tensor is to be skipped by loaders rather than reported as
 * unexpected: LDM diffusion buffers (betas, alphas_cumprod, sqrt_*, posterior_*,
 * log_one_minus_alphas_cumprod, logvar, ...), EMA copies (model_ema.*), CLIP's
 * position_ids buffer (with or without a module prefix), SD2's unused OpenCLIP
 * logit_scale and text_projection. Takes single-file or diffusers names.
 */
bool semd_name_is_ignored(const char *name);

/*
 * Whether the diffusers tensor `name` of `module` is a Linear weight [o, i]
 * whose single-file counterpart is a 1x1 convolution [o, i, 1, 1]: the VAE
 * mid-block attention q/k/v/proj_out weights (deprecated names included).
 * UNet proj_in/proj_out are not listed: exporters store either shape.
 */
bool semd_name_is_conv1x1_linear(semd_module module, const char *name);

#ifdef __cplusplus
}
#endif
#endif
