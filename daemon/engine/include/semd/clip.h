/*
 * semd/clip.h - the CLIP text transformer (transformers' CLIPTextModel).
 *
 * x = token_embedding[ids] + position_embedding[0..L-1]; per layer a pre-norm
 * causal self-attention block and a pre-norm MLP (fc1, quick_gelu or GELU,
 * fc2), each with a residual; then final_layer_norm. SD1.x conditions the UNet
 * on all 77 positions of the result. Weights use the transformers names
 * ("text_model.encoder.layers.0.self_attn.q_proj.weight", ...) under a prefix.
 */
#ifndef SEMD_CLIP_H
#define SEMD_CLIP_H

#include "semd/backend.h"
#include "semd/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct semd_clip_config {
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int num_layers;
    int num_heads;
    int max_positions;
    semd_unary act;        /* SEMD_UNARY_QUICK_GELU (SD1.x) or SEMD_UNARY_GELU (OpenCLIP) */
    float layer_norm_eps;
    /* 2 (the legacy value in SD1.x configs) pools at argmax(ids), like transformers;
     * any other value pools at the first occurrence of that id (position 0 if absent). */
    int eos_token_id;
} semd_clip_config;

/* CLIP ViT-L/14 as used by SD1.x. */
void semd_clip_config_sd15(semd_clip_config *cfg);
/* From a text_encoder/config.json; unsupported values are errors naming the field. */
int semd_clip_config_load(const char *config_json, semd_clip_config *cfg);
/*
 * For single files without a config: sizes from the tensor shapes, the rest
 * SD1.x defaults. Fails when the head count cannot be inferred (width not a
 * multiple of 64), naming the remedy.
 */
int semd_clip_config_infer(const semd_weights *w, const char *prefix, semd_clip_config *cfg);

typedef struct semd_clip semd_clip;

int semd_clip_load(semd_backend *be, const semd_clip_config *cfg, const semd_weight_view *view,
                   semd_clip **out);
void semd_clip_free(semd_clip *m);
const semd_clip_config *semd_clip_config_of(const semd_clip *m);

/*
 * Encode `batch` sequences of `len` ids (1 <= len <= max_positions) from host
 * memory. *hidden = [batch, len, hidden_size]: the final LayerNorm applied to
 * the output of layer num_layers - clip_skip (diffusers' clip_skip; 0 = last
 * layer). *pooled (if not NULL) = [batch, hidden_size] at the EOS position of
 * the last layer's normalised output. The caller frees both tensors.
 */
int semd_clip_encode(semd_clip *m, const int32_t *ids, int batch, int len, int clip_skip,
                     semd_tensor **hidden, semd_tensor **pooled);

#ifdef __cplusplus
}
#endif
#endif
