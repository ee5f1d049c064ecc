/*
 * tests/unit/tiny_models.h - the bundled tiny SD1.5 (with TAESD) loaded on the
 * CPU backend, as the canvas and engine-host suites stream from it.
 */
#ifndef SEMD_TEST_TINY_MODELS_H
#define SEMD_TEST_TINY_MODELS_H

#include "golden_util.h"
#include "semd/checkpoint.h"
#include "semd/txt2img.h"
#include "semd/vae.h"

typedef struct models {
    semd_backend *be;
    semd_checkpoint *ck;
    semd_sd_models m;
} models;

/* threads <= 0: the backend's default. */
static inline models tiny_models_load(int threads)
{
    models s = {0};
    ASSERT_OK(semd_backend_cpu_new(threads, &s.be));
    ASSERT_OK(semd_checkpoint_open(golden_data("models/tiny-sd15"), NULL, &s.ck));
    ASSERT_OK(semd_checkpoint_tokenizer(s.ck, &s.m.tokenizer));
    ASSERT_OK(semd_checkpoint_clip(s.ck, s.be, &s.m.clip));
    ASSERT_OK(semd_checkpoint_unet(s.ck, s.be, &s.m.unet));
    ASSERT_OK(semd_checkpoint_scheduler(s.ck, &s.m.scheduler));
    ASSERT_OK(semd_taesd_open(golden_data("models/taesd"), s.be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &s.m.taesd));
    return s;
}

static inline void tiny_models_unload(models *s)
{
    semd_tokenizer_free(s->m.tokenizer), semd_clip_free(s->m.clip), semd_unet_free(s->m.unet);
    semd_lcm_scheduler_free(s->m.scheduler), semd_taesd_free(s->m.taesd);
    semd_checkpoint_free(s->ck), semd_backend_free(s->be);
}

#endif
