/*
 * semd/txt2img.h - single-prompt LCM text-to-image (models.md section 6.3).
 *
 * With an LCM-distilled UNet (time_cond_proj_dim > 0) the guidance scale goes
 * in as the w-embedding and each step is one UNet call; with a plain UNet
 * (e.g. SD1.5 + LCM-LoRA) guidance > 1 runs classifier-free guidance on a
 * [negative, prompt] batch, as diffusers' StableDiffusionPipeline does with an
 * LCMScheduler. Each step predicts x0, and noise is re-injected at the next
 * scheduled timestep; the final denoised latent is decoded by the VAE (after
 * dividing by its scaling factor) or by TAESD.
 *
 * Noise comes from semd_randn with the seed (streams "init_latent" and
 * "step_noise"), or from the caller, so a run can be compared tensor for
 * tensor with diffusers fed the same noise.
 */
#ifndef SEMD_TXT2IMG_H
#define SEMD_TXT2IMG_H

#include "semd/backend.h"
#include "semd/clip.h"
#include "semd/scheduler.h"
#include "semd/tokenizer.h"
#include "semd/unet.h"
#include "semd/vae.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The loaded models a run uses; exactly one of vae / taesd decodes. */
typedef struct semd_sd_models {
    semd_tokenizer *tokenizer;
    semd_clip *clip;
    semd_unet *unet;
    semd_lcm_scheduler *scheduler;
    semd_vae *vae;
    semd_taesd *taesd;
} semd_sd_models;

typedef struct semd_txt2img_params {
    const char *prompt;
    const char *negative;     /* CFG only; NULL means "" */
    int width, height;        /* pixels, multiples of 8 */
    int steps;                /* 1..original_inference_steps */
    float guidance;           /* LCM-distilled: w = guidance - 1; else CFG when > 1 */
    int clip_skip;
    uint64_t seed;
    const float *init_latent; /* optional [1,4,h,w] */
    const float *step_noise;  /* optional [steps-1,4,h,w] (the last step adds none) */
} semd_txt2img_params;

typedef struct semd_txt2img_result {
    semd_tensor *latent; /* final denoised latent [1,4,h,w] */
    semd_tensor *image;  /* decoded [1,3,H,W], about [-1,1] */
} semd_txt2img_result;

int semd_txt2img(const semd_sd_models *m, const semd_txt2img_params *p, semd_txt2img_result *out);
void semd_txt2img_result_free(semd_txt2img_result *r);

#ifdef __cplusplus
}
#endif
#endif
