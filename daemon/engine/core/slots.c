/* Slot schedules and prompt embeddings for the SemanticDraw pipelines. */
#include "slots.h"

#include <math.h>
#include <stdlib.h>

#include "semd/status.h"

int semd_slots_build(semd_lcm_scheduler *s, int T, const int *tidx, semd_slots *out)
{
    const semd_lcm_config *cfg = semd_lcm_scheduler_config(s);
    if (T < 1 || T > 16) return semd_error(SEMD_EINVAL, "slots: %d timesteps (1..16)", T);
    int rc = semd_lcm_set_timesteps(s, cfg->original_inference_steps);
    if (rc) return rc;
    const int *grid = semd_lcm_timesteps(s);
    const float *abar = semd_lcm_alphas(s);
    out->T = T;
    for (int k = 0; k < T; k++) {
        const int t = grid[tidx[k]];
        const double ab = abar[t], scaled = (double)t * cfg->timestep_scaling;
        out->tau[k] = (float)t;
        out->a[k] = (float)sqrt(ab);
        out->b[k] = (float)sqrt(1.0 - ab);
        out->c_skip[k] = (float)(0.25 / (scaled * scaled + 0.25));
        out->c_out[k] = (float)(scaled / sqrt(scaled * scaled + 0.25));
    }
    out->a[T] = 1.0f;
    out->b[T] = 0.0f;
    return SEMD_OK;
}

int semd_embed_prompt(const semd_sd_models *m, const char *text, float **out)
{
    int32_t ids[SEMD_CLIP_CONTEXT];
    semd_tensor *h = NULL;
    *out = NULL;
    int rc = semd_tokenizer_encode_padded(m->tokenizer, SEMD_TEXT_HF, text, ids);
    if (!rc) rc = semd_clip_encode(m->clip, ids, 1, SEMD_CLIP_CONTEXT, 0, &h, NULL);
    if (!rc && !(*out = malloc((size_t)semd_tensor_numel(h) * sizeof(float))))
        rc = semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) rc = semd_tensor_get(h, *out);
    semd_tensor_free(h);
    if (rc) free(*out), *out = NULL;
    return rc;
}

int semd_encode_rgb(const semd_sd_models *m, semd_backend *be, int use_taesd, const uint8_t *rgb,
                    int width, int height, float *z)
{
    const size_t plane = (size_t)width * height;
    int64_t ne[4] = {1, 3, height, width};
    semd_tensor *img = NULL, *lat = NULL;
    float *host = malloc(3 * plane * sizeof(float));
    int rc = host ? semd_tensor_new(be, 4, ne, &img) : semd_error(SEMD_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < plane; i++)
        for (int c = 0; c < 3; c++) host[c * plane + i] = rgb ? rgb[i * 3 + c] / 255.0f * 2.0f - 1.0f : 1.0f;
    if (!rc) rc = semd_tensor_set(img, host);
    if (!rc && use_taesd) rc = semd_taesd_encode(m->taesd, img, &lat);
    else if (!rc) {
        rc = semd_vae_encode(m->vae, img, &lat);
        if (!rc) rc = semd_op_scale(lat, lat, semd_vae_config_of(m->vae)->scaling_factor, 0.0f);
    }
    if (!rc) rc = semd_tensor_get(lat, z);
    semd_tensor_free(img), semd_tensor_free(lat), free(host);
    return rc;
}

int semd_decode_unit(const semd_sd_models *m, semd_backend *be, int use_taesd, const float *z,
                     int width, int height, float *image)
{
    int64_t ne[4] = {1, 4, height / 8, width / 8};
    semd_tensor *t = NULL, *img = NULL;
    int rc = semd_tensor_new(be, 4, ne, &t);
    if (!rc) rc = semd_tensor_set(t, z);
    if (!rc && use_taesd) rc = semd_taesd_decode(m->taesd, t, &img); /* TAESD: scaling 1 */
    else if (!rc) {
        rc = semd_op_scale(t, t, 1.0f / semd_vae_config_of(m->vae)->scaling_factor, 0.0f);
        if (!rc) rc = semd_vae_decode(m->vae, t, &img);
    }
    if (!rc) rc = semd_tensor_get(img, image);
    for (size_t i = 0; !rc && i < (size_t)3 * width * height; i++) {
        const float v = image[i] * 0.5f + 0.5f;
        image[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    semd_tensor_free(t), semd_tensor_free(img);
    return rc;
}
