/*
 * semd/scheduler.h - the training noise schedule, the LCM scheduler, and the
 * UNet's timestep and guidance-scale embeddings.
 *
 * Everything here runs on the host on float arrays and reproduces diffusers
 * 0.32.2 (LCMScheduler, get_timestep_embedding, the LCM pipeline's
 * get_guidance_scale_embedding) in the float32 arithmetic torch uses,
 * operation by operation, with IEEE-correct elementary functions:
 *
 *   - alphas_cumprod, the timestep lists and c_skip are bit-exact against
 *     torch's CPU results on x86-64 with AVX2/AVX-512 (what any current CPU
 *     build runs): torch.linspace there rounds start + step*i with a fused
 *     multiply-add and torch.cumprod carries the product in double; both are
 *     replicated.
 *   - c_out and the step take square roots. torch's CPU sqrt (MKL) is not
 *     correctly rounded (about one result in five is an ulp off; CUDA's is
 *     correct), so against the CPU reference those scalars differ by <= 2 ulps
 *     and step outputs by ~1e-7 relative. Given the reference's scalars
 *     (semd_lcm_apply) the step is bit-exact.
 *   - the embeddings use correctly rounded float32 exp/sin/cos. torch's exp
 *     (MKL on the CPU, libdevice on CUDA) is within an ulp of that but not
 *     reproducible; since sin(t*f) amplifies an ulp of the frequency f by t,
 *     entries at large t*f can differ from torch by about t*f*2^-23 (up to
 *     ~6e-5 at t = 999, ~4e-4 in the guidance embedding at w = 7.5) - far
 *     below what the UNet resolves.
 *
 * Errors are negative codes from semd/status.h; semd_last_error() names the
 * file, field or argument at fault.
 */
#ifndef SEMD_SCHEDULER_H
#define SEMD_SCHEDULER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration -------------------------------------------------------- */

typedef enum semd_beta_schedule {
    SEMD_BETA_SCALED_LINEAR = 0, /* betas = linspace(sqrt(start), sqrt(end), N)^2 (SD) */
    SEMD_BETA_LINEAR = 1         /* betas = linspace(start, end, N) */
} semd_beta_schedule;

typedef enum semd_prediction_type {
    SEMD_PREDICT_EPSILON = 0, /* the model predicts the noise */
    SEMD_PREDICT_V = 1,       /* "v_prediction": v = sqrt(a)*eps - sqrt(1-a)*x0 */
    SEMD_PREDICT_SAMPLE = 2   /* "sample": the model predicts x0 directly */
} semd_prediction_type;

/*
 * The LCMScheduler settings semdraw honours. diffusers' other keys either
 * have no effect on LCM sampling (steps_offset, timestep_spacing,
 * clip_sample_range, ...) or must be off (clip_sample, thresholding,
 * rescale_betas_zero_snr, trained_betas) - the loader rejects them otherwise.
 */
typedef struct semd_lcm_config {
    int num_train_timesteps;            /* N, 1000; 2..1000000 */
    double beta_start, beta_end;        /* 0.00085, 0.012; in [0, 1); double as Python's */
    semd_beta_schedule beta_schedule;   /* scaled_linear */
    int original_inference_steps;       /* 50; 1..N: the distillation grid */
    float timestep_scaling;             /* 10.0; > 0 */
    semd_prediction_type prediction_type; /* epsilon */
    /*
     * Parsed for completeness: it only picks alpha_prev for a step whose next
     * timestep is negative, which an LCM schedule never has.
     */
    int set_alpha_to_one;
} semd_lcm_config;

/*
 * The SD1.5 LCM values (LCM_Dreamshaper_v7's scheduler_config.json), for
 * single-file checkpoints that carry no scheduler config: N 1000,
 * scaled_linear 0.00085..0.012, original_inference_steps 50, timestep_scaling
 * 10, epsilon, set_alpha_to_one false.
 */
void semd_lcm_config_defaults(semd_lcm_config *cfg);

/*
 * Read a diffusers scheduler/scheduler_config.json (an LCMScheduler's, or
 * another scheduler's as LCMScheduler.from_config would: unknown keys are
 * ignored, absent or null keys take LCMScheduler's defaults, which differ from
 * semd_lcm_config_defaults() only in set_alpha_to_one = true). Errors name
 * `path` and the field:
 *   SEMD_EIO          the file cannot be read
 *   SEMD_EFORMAT      malformed JSON, a field of the wrong type, a number out of range
 *   SEMD_EUNSUPPORTED beta_schedule other than scaled_linear/linear, an unknown
 *                     prediction_type, trained_betas, clip_sample, thresholding or
 *                     rescale_betas_zero_snr set
 * *cfg is written only on success.
 */
int semd_lcm_config_load(const char *path, semd_lcm_config *cfg);

/* ---- the training noise schedule ----------------------------------------- */

/*
 * alphas_cumprod[t] = prod_{i<=t} (1 - beta_i) for t = 0..N-1 into out[N],
 * computed as torch does: betas in float32 (linspace with fused
 * multiply-adds, squared for scaled_linear), 1 - beta in float32, the running
 * product in double, each element rounded to float32. Only N and the beta
 * fields matter, but cfg must be valid as a whole (SEMD_EINVAL naming the
 * field, as semd_lcm_scheduler_new).
 */
int semd_alphas_cumprod(const semd_lcm_config *cfg, float *out);

/* ---- the LCM scheduler ----------------------------------------------------- */

typedef struct semd_lcm_scheduler semd_lcm_scheduler;

/*
 * Validate cfg (SEMD_EINVAL naming the field) and build a scheduler: it holds
 * alphas_cumprod and room for any schedule, so nothing later allocates. It
 * starts with no schedule; call semd_lcm_set_timesteps first.
 */
int semd_lcm_scheduler_new(const semd_lcm_config *cfg, semd_lcm_scheduler **out);
void semd_lcm_scheduler_free(semd_lcm_scheduler *s);

const semd_lcm_config *semd_lcm_scheduler_config(const semd_lcm_scheduler *s);
/* num_train_timesteps floats, valid for the scheduler's lifetime. */
const float *semd_lcm_alphas(const semd_lcm_scheduler *s);

/*
 * The LCM schedule for n steps (strength 1): with k = N / orig
 * (orig = original_inference_steps), the distillation grid is
 * [orig*k-1, ..., 2k-1, k-1] and step j takes its element floor(j*orig/n)
 * (evaluated as numpy's floor(linspace(0, orig, n, endpoint=False)) does).
 * SD1.5, n = 4: [999, 759, 499, 259]. SEMD_EINVAL unless 1 <= n <= orig; a
 * failed call keeps the previous schedule.
 */
int semd_lcm_set_timesteps(semd_lcm_scheduler *s, int n);

/*
 * Use the given schedule instead (e.g. semanticdraw's [999, 919, 759, 499,
 * 259]): n >= 1 timesteps, strictly descending, each in [0, N). Timesteps off
 * the distillation grid are allowed (diffusers only warns). SEMD_EINVAL
 * naming the offending entry; a failed call keeps the previous schedule.
 */
int semd_lcm_set_custom_timesteps(semd_lcm_scheduler *s, const int *timesteps, int n);

/* The current schedule: its length (0 before any set_*), and its timesteps. */
int semd_lcm_num_steps(const semd_lcm_scheduler *s);
const int *semd_lcm_timesteps(const semd_lcm_scheduler *s);

/*
 * Consistency-model boundary scalings for timestep t in [0, N): with
 * s = t*timestep_scaling and sigma_data = 0.5,
 *   c_skip = 0.25 / (s^2 + 0.25),  c_out = s / sqrt(s^2 + 0.25),
 * in float32 as the pipeline computes them (it passes t as a tensor).
 * t = 999: c_skip 2.505e-9, c_out 1. SEMD_EINVAL for t out of range.
 */
int semd_lcm_scalings(const semd_lcm_scheduler *s, int t, float *c_skip, float *c_out);

/*
 * One LCMScheduler.step on n elements, for step `step_index` of the current
 * schedule (t = timesteps[step_index]; t_prev = the next timestep, or t on the
 * last step):
 *   x0       = (x - sqrt(1-a_t)*m) / sqrt(a_t)       epsilon
 *            = sqrt(a_t)*x - sqrt(1-a_t)*m           v_prediction
 *            = m                                     sample
 *   denoised = c_out*x0 + c_skip*x
 *   prev     = sqrt(a_prev)*denoised + sqrt(1-a_prev)*noise   (not the last step)
 *            = denoised                                       (the last step)
 * with m = model_output, x = sample, a = alphas_cumprod; every operation is
 * one float32 rounding, as torch's. `noise` (standard normal, the caller's)
 * is required except on the last step, where it is ignored and may be NULL.
 * The outputs may be the same arrays as the inputs (it works element by
 * element), e.g. prev_sample == sample for an in-place loop. SEMD_EINVAL with
 * no schedule, step_index out of range, or a NULL array.
 */
int semd_lcm_step(const semd_lcm_scheduler *s, int step_index, const float *model_output,
                  const float *sample, const float *noise, size_t n, float *denoised,
                  float *prev_sample);

/*
 * The same step split in two, for callers that run the elementwise part
 * elsewhere (a GPU kernel, a fused aggregation): the per-step scalars, and
 * the host loop that applies them.
 */
typedef struct semd_lcm_coef {
    int t, t_prev;                  /* the timestep and the one noise is re-injected at */
    int renoise;                    /* 0 on the last step: prev = denoised */
    semd_prediction_type prediction_type;
    float sqrt_alpha, sqrt_beta;    /* sqrt(a_t), sqrt(1 - a_t) */
    float sqrt_alpha_prev, sqrt_beta_prev; /* the same at t_prev */
    float c_skip, c_out;            /* semd_lcm_scalings(t) */
} semd_lcm_coef;

/* SEMD_EINVAL with no schedule or step_index out of range. */
int semd_lcm_coefficients(const semd_lcm_scheduler *s, int step_index, semd_lcm_coef *k);

/* The step's elementwise part; same contract as semd_lcm_step (noise only if k->renoise). */
int semd_lcm_apply(const semd_lcm_coef *k, const float *model_output, const float *sample,
                   const float *noise, size_t n, float *denoised, float *prev_sample);

/* ---- embeddings ------------------------------------------------------------ */

/*
 * The UNet's timestep sinusoid, diffusers' Timesteps(dim, flip_sin_to_cos,
 * downscale_freq_shift) (max_period 10000, scale 1), for `batch` timesteps
 * into out[batch][dim]: with half = dim/2,
 *   f_i = exp(-ln(10000) * i / (half - shift)),  a_i = t * f_i,  i < half,
 *   row = [sin a, cos a], or [cos a, sin a] when flip_sin_to_cos,
 * zero-padded by one column when dim is odd. SD's UNets use (320, 1, 0).
 * Timesteps may be fractional (torch converts them to float32 too).
 * SEMD_EINVAL if batch < 1, dim < 2, or half - shift <= 0.
 */
int semd_timestep_embedding(const float *timesteps, int batch, int dim, int flip_sin_to_cos,
                            float downscale_freq_shift, float *out);

/*
 * The LCM guidance-scale embedding (pipeline get_guidance_scale_embedding)
 * for `batch` values w = guidance_scale - 1 (8.5 -> 7.5) into
 * out[batch][dim]: with half = dim/2,
 *   f_i = exp(-i * ln(10000) / (half - 1)),  a_i = 1000*w * f_i,
 *   row = [sin a, cos a] (never flipped), zero-padded when dim is odd.
 * LCM-distilled SD1.5 UNets use dim = time_cond_proj_dim = 256.
 * SEMD_EINVAL if batch < 1 or dim < 4.
 */
int semd_guidance_embedding(const float *w, int batch, int dim, float *out);

#ifdef __cplusplus
}
#endif
#endif
