/*
 * semd/checkpoint.h - a Stable Diffusion checkpoint, whichever way it is stored.
 *
 * Two layouts are read (models.md section 7):
 *   - a diffusers folder: model_index.json, text_encoder/, tokenizer/, unet/,
 *     vae/, scheduler/, each with its config.json;
 *   - an original LDM single file (.safetensors), every module under its prefix
 *     (SD1.x text encoder: "cond_stage_model.transformer."). A single file holds
 *     no configs and no tokenizer: module sizes are inferred from tensor shapes
 *     and the bundled CLIP merges are used, unless `config_dir` names a diffusers
 *     folder whose configs (and tokenizer) describe the file.
 */
#ifndef SEMD_CHECKPOINT_H
#define SEMD_CHECKPOINT_H

#include "semd/backend.h"
#include "semd/clip.h"
#include "semd/scheduler.h"
#include "semd/tokenizer.h"
#include "semd/unet.h"
#include "semd/vae.h"
#include "semd/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum semd_checkpoint_layout {
    SEMD_LAYOUT_DIFFUSERS,
    SEMD_LAYOUT_SINGLE_FILE,
    SEMD_LAYOUT_RANDOM
} semd_checkpoint_layout;

typedef struct semd_checkpoint semd_checkpoint;

/* `config_dir` may be NULL. */
int semd_checkpoint_open(const char *path, const char *config_dir, semd_checkpoint **out);
/*
 * A full-size model of a known architecture with random weights built in
 * memory (semd_weights_random): "sd15" (SD1.5: CLIP-L, UNet, VAE) or
 * "lcm-sd15" (the same with an LCM-distilled UNet's guidance input, 256).
 */
int semd_checkpoint_open_random(const char *arch, uint64_t seed, semd_checkpoint **out);
void semd_checkpoint_free(semd_checkpoint *ck);
semd_checkpoint_layout semd_checkpoint_layout_of(const semd_checkpoint *ck);

#define SEMD_CHECKPOINT_MAX_LORAS 16

/*
 * Merge a LoRA file into the UNet and text encoder as they load (in the order
 * added; `multiplier` scales its delta). Call before loading those modules.
 */
int semd_checkpoint_add_lora(semd_checkpoint *ck, const char *path, float multiplier);
/* After loading the UNet and the text encoder: every LoRA entry found its weight. */
int semd_checkpoint_check_loras(const semd_checkpoint *ck);

int semd_checkpoint_tokenizer(const semd_checkpoint *ck, semd_tokenizer **out);
int semd_checkpoint_clip(const semd_checkpoint *ck, semd_backend *be, semd_clip **out);
int semd_checkpoint_unet(const semd_checkpoint *ck, semd_backend *be, semd_unet **out);
/* The LCM scheduler: scheduler/scheduler_config.json when there is one, else LCM's defaults. */
int semd_checkpoint_scheduler(const semd_checkpoint *ck, semd_lcm_scheduler **out);
/* parts: SEMD_VAE_ENCODER and/or SEMD_VAE_DECODER. */
int semd_checkpoint_vae(const semd_checkpoint *ck, semd_backend *be, int parts, semd_vae **out);

#ifdef __cplusplus
}
#endif
#endif
