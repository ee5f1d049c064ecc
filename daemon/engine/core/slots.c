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
