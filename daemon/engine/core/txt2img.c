/* Single-prompt LCM text-to-image: text encoding, the sampling loop, decoding. */
#include "semd/txt2img.h"

#include <stdlib.h>
#include <string.h>

#include "semd/rng.h"
#include "semd/status.h"

typedef struct run {
    const semd_sd_models *m;
    const semd_txt2img_params *p;
    semd_backend *be;
    int cfg;                 /* classifier-free guidance: batch [negative, prompt] */
    int64_t lat_h, lat_w;
    size_t n;                /* elements of one latent */
    semd_tensor *ctx, *wemb;
} run;

static int check_params(const semd_sd_models *m, const semd_txt2img_params *p)
{
    const semd_unet_config *u = semd_unet_config_of(m->unet);
    if (!p->prompt) return semd_error(SEMD_EINVAL, "txt2img: no prompt");
    if (p->width < 8 || p->height < 8 || p->width % 8 || p->height % 8 || p->width > 8192 || p->height > 8192)
        return semd_error(SEMD_EINVAL, "txt2img: %dx%d: width and height must be multiples of 8 "
                          "in 8..8192", p->width, p->height);
    if (u->addition_time_embed_dim)
        return semd_error(SEMD_EUNSUPPORTED, "txt2img: SDXL-style UNets are not supported yet");
    if (u->time_cond_proj_dim && p->negative)
        return semd_error(SEMD_EINVAL, "txt2img: an LCM-distilled UNet takes the guidance as an "
                          "embedding and no negative prompt");
    if (!m->vae == !m->taesd) return semd_error(SEMD_EINVAL, "txt2img: give exactly one decoder");
    if (!(p->guidance >= 0.0f && p->guidance < 100.0f))
        return semd_error(SEMD_EINVAL, "txt2img: guidance %g outside [0, 100)", p->guidance);
    return SEMD_OK;
}

/* Prompt (and, under CFG, negative first) -> encoder hidden states [B,77,D]. */
static int encode_text(run *r)
{
    int32_t ids[2 * SEMD_CLIP_CONTEXT];
    const char *texts[2] = {r->p->negative ? r->p->negative : "", r->p->prompt};
    const int batch = r->cfg ? 2 : 1; /* spelled out, so the compiler sees ids cannot overflow */
    int rc = 0;
    for (int b = 0; !rc && b < batch; b++)
        rc = semd_tokenizer_encode_padded(r->m->tokenizer, SEMD_TEXT_HF, texts[batch == 2 ? b : 1],
                                          ids + b * SEMD_CLIP_CONTEXT);
    if (!rc) rc = semd_clip_encode(r->m->clip, ids, batch, SEMD_CLIP_CONTEXT, r->p->clip_skip, &r->ctx, NULL);
    return rc;
}

static int guidance_embedding(run *r)
{
    const int dim = semd_unet_config_of(r->m->unet)->time_cond_proj_dim;
    if (!dim) return SEMD_OK;
    float w = r->p->guidance - 1.0f, *host = malloc((size_t)dim * sizeof(float));
    int64_t ne[2] = {1, dim};
    int rc = host ? semd_guidance_embedding(&w, 1, dim, host) : semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) rc = semd_tensor_new(r->be, 2, ne, &r->wemb);
    if (!rc) rc = semd_tensor_set(r->wemb, host);
    free(host);
    return rc;
}

/* eps for the current x: one UNet call (batch 2 under CFG), guidance combined on the host. */
static int predict(run *r, const float *x, int t, float *eps)
{
    const int64_t b = 1 + r->cfg;
    int64_t ne[4] = {b, 4, r->lat_h, r->lat_w};
    semd_tensor *xt = NULL, *out = NULL;
    float ts[2] = {(float)t, (float)t};
    float *host = malloc(r->n * (size_t)b * sizeof(float));
    int rc = host ? semd_tensor_new(r->be, 4, ne, &xt) : semd_error(SEMD_ENOMEM, "out of memory");
    for (int64_t i = 0; !rc && i < b; i++) memcpy(host + i * r->n, x, r->n * sizeof(float));
    if (!rc) rc = semd_tensor_set(xt, host);
    semd_unet_inputs in = {.sample = xt, .timesteps = ts, .encoder_hidden_states = r->ctx,
                           .timestep_cond = r->wemb};
    if (!rc) rc = semd_unet_forward(r->m->unet, &in, &out);
    if (!rc) rc = semd_tensor_get(out, host);
    for (size_t i = 0; !rc && i < r->n; i++)
        eps[i] = r->cfg ? host[i] + r->p->guidance * (host[r->n + i] - host[i]) : host[i];
    semd_tensor_free(xt), semd_tensor_free(out);
    free(host);
    return rc;
}

static int sample(run *r, float *x, float *denoised)
{
    semd_lcm_scheduler *s = r->m->scheduler;
    int rc = semd_lcm_set_timesteps(s, r->p->steps);
    const int steps = semd_lcm_num_steps(s);
    const int *ts = semd_lcm_timesteps(s);
    float *eps = malloc(r->n * sizeof(float)), *noise = malloc(r->n * sizeof(float));
    if (!rc && (!eps || !noise)) rc = semd_error(SEMD_ENOMEM, "out of memory");
    for (int j = 0; !rc && j < steps; j++) {
        rc = predict(r, x, ts[j], eps);
        const int last = j == steps - 1;
        if (!rc && !last && r->p->step_noise) memcpy(noise, r->p->step_noise + (size_t)j * r->n, r->n * sizeof(float));
        else if (!rc && !last) semd_randn(r->p->seed, semd_rng_stream("step_noise"), (uint64_t)j * r->n, noise, r->n);
        if (!rc) rc = semd_lcm_step(s, j, eps, x, last ? NULL : noise, r->n, denoised, x);
    }
    free(eps), free(noise);
    return rc;
}

static int decode(run *r, const float *denoised, semd_txt2img_result *out)
{
    int64_t ne[4] = {1, 4, r->lat_h, r->lat_w};
    semd_tensor *scaled = NULL;
    int rc = semd_tensor_new(r->be, 4, ne, &out->latent);
    if (!rc) rc = semd_tensor_set(out->latent, denoised);
    if (!rc && r->m->taesd) return semd_taesd_decode(r->m->taesd, out->latent, &out->image);
    if (!rc) rc = semd_tensor_new(r->be, 4, ne, &scaled);
    if (!rc) rc = semd_op_scale(scaled, out->latent, 1.0f / semd_vae_config_of(r->m->vae)->scaling_factor, 0.0f);
    if (!rc) rc = semd_vae_decode(r->m->vae, scaled, &out->image);
    semd_tensor_free(scaled);
    return rc;
}

int semd_txt2img(const semd_sd_models *m, const semd_txt2img_params *p, semd_txt2img_result *out)
{
    *out = (semd_txt2img_result){0};
    int rc = check_params(m, p);
    if (rc) return rc;
    run r = {.m = m, .p = p, .lat_h = p->height / 8, .lat_w = p->width / 8};
    r.be = semd_unet_backend(m->unet);
    r.cfg = !semd_unet_config_of(m->unet)->time_cond_proj_dim && p->guidance > 1.0f;
    r.n = (size_t)(4 * r.lat_h * r.lat_w);
    float *x = malloc(r.n * sizeof(float)), *denoised = malloc(r.n * sizeof(float));
    if (!x || !denoised) rc = semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc && p->init_latent) memcpy(x, p->init_latent, r.n * sizeof(float));
    else if (!rc) semd_randn(p->seed, semd_rng_stream("init_latent"), 0, x, r.n); /* init_noise_sigma 1 */
    if (!rc) rc = encode_text(&r);
    if (!rc) rc = guidance_embedding(&r);
    if (!rc) rc = sample(&r, x, denoised);
    if (!rc) rc = decode(&r, denoised, out);
    semd_tensor_free(r.ctx), semd_tensor_free(r.wemb);
    free(x), free(denoised);
    if (rc) semd_txt2img_result_free(out);
    return rc;
}

void semd_txt2img_result_free(semd_txt2img_result *r)
{
    semd_tensor_free(r->latent);
    semd_tensor_free(r->image);
    r->latent = r->image = NULL;
}
