/*
 * The training noise schedule, the LCM scheduler and the timestep/guidance
 * embeddings, replicating diffusers' float32 arithmetic (see semd/scheduler.h
 * for what matches bit for bit and why the embeddings cannot).
 */

/*
 * Every expression below mirrors separate torch ops, each rounded to float32.
 * A fused multiply-add would skip a rounding, and GNU C contracts a*b + c
 * across statements by default on FMA targets, so switch contraction off for
 * this file; the one place torch itself fuses (linspace) calls fmaf().
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "semd/scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "semd/status.h"

#define SIGMA_DATA_SQ 0.25f     /* sigma_data = 0.5, the consistency-model constant */
#define MAX_TRAIN_STEPS 1000000 /* far above any real schedule; keeps int/float exact */
#define MAX_PERIOD 10000.0      /* get_timestep_embedding's default max_period */

struct semd_lcm_scheduler {
    semd_lcm_config cfg;
    float *alphas;  /* [N] alphas_cumprod */
    int *timesteps; /* [N]: a strictly descending schedule in [0, N) never needs more */
    int num_steps;
};

/* ---- configuration ---------------------------------------------------------- */

void semd_lcm_config_defaults(semd_lcm_config *cfg)
{
    cfg->num_train_timesteps = 1000;
    cfg->beta_start = 0.00085;
    cfg->beta_end = 0.012;
    cfg->beta_schedule = SEMD_BETA_SCALED_LINEAR;
    cfg->original_inference_steps = 50;
    cfg->timestep_scaling = 10.0f;
    cfg->prediction_type = SEMD_PREDICT_EPSILON;
    cfg->set_alpha_to_one = 0;
}

/* Range checks shared by programmatic configs and files; `where` names the source. */
static int check_config(const semd_lcm_config *c, const char *where, int status)
{
    if (c->num_train_timesteps < 2 || c->num_train_timesteps > MAX_TRAIN_STEPS)
        return semd_error(status, "%s: num_train_timesteps %d is outside 2..%d", where,
                          c->num_train_timesteps, MAX_TRAIN_STEPS);
    if (!(c->beta_start >= 0 && c->beta_start < 1))
        return semd_error(status, "%s: beta_start %g is outside [0, 1)", where, c->beta_start);
    if (!(c->beta_end >= 0 && c->beta_end < 1))
        return semd_error(status, "%s: beta_end %g is outside [0, 1)", where, c->beta_end);
    if (c->beta_schedule != SEMD_BETA_SCALED_LINEAR && c->beta_schedule != SEMD_BETA_LINEAR)
        return semd_error(status, "%s: beta_schedule %d is unknown", where, (int)c->beta_schedule);
    if (c->original_inference_steps < 1 || c->original_inference_steps > c->num_train_timesteps)
        return semd_error(status, "%s: original_inference_steps %d is outside 1..%d "
                          "(num_train_timesteps)", where, c->original_inference_steps,
                          c->num_train_timesteps);
    if (!(c->timestep_scaling > 0 && isfinite(c->timestep_scaling)))
        return semd_error(status, "%s: timestep_scaling %g must be positive", where,
                          (double)c->timestep_scaling);
    if (c->prediction_type < SEMD_PREDICT_EPSILON || c->prediction_type > SEMD_PREDICT_SAMPLE)
        return semd_error(status, "%s: prediction_type %d is unknown", where, (int)c->prediction_type);
    return SEMD_OK;
}

/* An optional number kept in double: Python computes beta_start**0.5 in double. */
static int json_double_opt(const cJSON *obj, const char *path, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return SEMD_OK;
    if (!cJSON_IsNumber(it))
        return semd_error(SEMD_EFORMAT, "%s: field \"%s\" must be a number", path, key);
    *out = it->valuedouble;
    return SEMD_OK;
}

static int json_bool_opt(const cJSON *obj, const char *path, const char *key, int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return SEMD_OK;
    if (!cJSON_IsBool(it))
        return semd_error(SEMD_EFORMAT, "%s: field \"%s\" must be true or false", path, key);
    *out = cJSON_IsTrue(it);
    return SEMD_OK;
}

/* An optional string field; *out stays NULL when absent. */
static int json_string_opt(const cJSON *obj, const char *path, const char *key, const char **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it || cJSON_IsNull(it)) return SEMD_OK;
    return semd_json_string(obj, path, key, out);
}

static int parse_beta_schedule(const cJSON *root, const char *path, semd_lcm_config *c)
{
    const char *s = NULL;
    int rc = json_string_opt(root, path, "beta_schedule", &s);
    if (rc || !s) return rc;
    if (strcmp(s, "scaled_linear") == 0)
        c->beta_schedule = SEMD_BETA_SCALED_LINEAR;
    else if (strcmp(s, "linear") == 0)
        c->beta_schedule = SEMD_BETA_LINEAR;
    else
        return semd_error(SEMD_EUNSUPPORTED, "%s: beta_schedule \"%s\" is not supported "
                          "(only \"scaled_linear\" and \"linear\")", path, s);
    return SEMD_OK;
}

static int parse_prediction_type(const cJSON *root, const char *path, semd_lcm_config *c)
{
    const char *s = NULL;
    int rc = json_string_opt(root, path, "prediction_type", &s);
    if (rc || !s) return rc;
    if (strcmp(s, "epsilon") == 0)
        c->prediction_type = SEMD_PREDICT_EPSILON;
    else if (strcmp(s, "v_prediction") == 0)
        c->prediction_type = SEMD_PREDICT_V;
    else if (strcmp(s, "sample") == 0)
        c->prediction_type = SEMD_PREDICT_SAMPLE;
    else
        return semd_error(SEMD_EUNSUPPORTED, "%s: prediction_type \"%s\" is not supported "
                          "(epsilon, v_prediction or sample)", path, s);
    return SEMD_OK;
}

/* Options that change the sampling math semdraw does not implement must be off. */
static int reject_unsupported(const cJSON *root, const char *path)
{
    static const char *const must_be_false[] = {"clip_sample", "thresholding",
                                                "rescale_betas_zero_snr"};
    for (size_t i = 0; i < sizeof must_be_false / sizeof must_be_false[0]; i++) {
        int on = 0;
        int rc = json_bool_opt(root, path, must_be_false[i], &on);
        if (rc) return rc;
        if (on)
            return semd_error(SEMD_EUNSUPPORTED, "%s: %s true is not supported", path,
                              must_be_false[i]);
    }
    const cJSON *tb = cJSON_GetObjectItemCaseSensitive(root, "trained_betas");
    if (tb && !cJSON_IsNull(tb))
        return semd_error(SEMD_EUNSUPPORTED, "%s: trained_betas is not supported", path);
    return SEMD_OK;
}

static int parse_config(const cJSON *root, const char *path, semd_lcm_config *c)
{
    int rc;
    if ((rc = semd_json_int_opt(root, path, "num_train_timesteps", &c->num_train_timesteps)) ||
        (rc = json_double_opt(root, path, "beta_start", &c->beta_start)) ||
        (rc = json_double_opt(root, path, "beta_end", &c->beta_end)) ||
        (rc = parse_beta_schedule(root, path, c)) ||
        (rc = semd_json_int_opt(root, path, "original_inference_steps",
                                &c->original_inference_steps)) ||
        (rc = semd_json_float_opt(root, path, "timestep_scaling", &c->timestep_scaling)) ||
        (rc = parse_prediction_type(root, path, c)) ||
        (rc = json_bool_opt(root, path, "set_alpha_to_one", &c->set_alpha_to_one)) ||
        (rc = reject_unsupported(root, path)))
        return rc;
    return check_config(c, path, SEMD_EFORMAT);
}

int semd_lcm_config_load(const char *path, semd_lcm_config *cfg)
{
    cJSON *root = NULL;
    int rc = semd_json_load(path, &root);
    if (rc) return rc;
    semd_lcm_config c;
    semd_lcm_config_defaults(&c);
    c.set_alpha_to_one = 1; /* LCMScheduler's own default, which from_config uses */
    rc = parse_config(root, path, &c);
    cJSON_Delete(root);
    if (!rc) *cfg = c;
    return rc;
}

/* ---- training schedule ------------------------------------------------------ */

/*
 * torch.linspace(start, end, n) in float32 as torch's AVX2/AVX-512 kernels
 * compute it: the first half counts up from start, the second half down from
 * end, and the compiler fuses each multiply-add. fmaf gives that single
 * rounding everywhere (torch's non-SIMD "default" build would differ by 1 ulp
 * in a few betas).
 */
static void linspace_f32(float start, float end, int n, float *out)
{
    float step = (end - start) / (float)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++)
        out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - 1 - i), end);
}

int semd_alphas_cumprod(const semd_lcm_config *cfg, float *out)
{
    int rc = check_config(cfg, "scheduler config", SEMD_EINVAL);
    if (rc) return rc;
    int n = cfg->num_train_timesteps;
    if (cfg->beta_schedule == SEMD_BETA_LINEAR) {
        linspace_f32((float)cfg->beta_start, (float)cfg->beta_end, n, out);
    } else {
        /* (beta**0.5 in double, then the float32 linspace) ** 2 */
        linspace_f32((float)sqrt(cfg->beta_start), (float)sqrt(cfg->beta_end), n, out);
        for (int i = 0; i < n; i++) out[i] = out[i] * out[i];
    }
    /* torch.cumprod on the CPU carries the product in double (its acc_type). */
    double acc = 1.0;
    for (int i = 0; i < n; i++) {
        float alpha = 1.0f - out[i];
        acc *= (double)alpha;
        out[i] = (float)acc;
    }
    return SEMD_OK;
}

/* ---- scheduler ---------------------------------------------------------------- */

int semd_lcm_scheduler_new(const semd_lcm_config *cfg, semd_lcm_scheduler **out)
{
    *out = NULL;
    int rc = check_config(cfg, "scheduler config", SEMD_EINVAL);
    if (rc) return rc;
    semd_lcm_scheduler *s = calloc(1, sizeof *s);
    size_t n = (size_t)cfg->num_train_timesteps;
    if (s) s->alphas = malloc(n * sizeof *s->alphas);
    if (s) s->timesteps = malloc(n * sizeof *s->timesteps);
    if (!s || !s->alphas || !s->timesteps) {
        semd_lcm_scheduler_free(s);
        return semd_error(SEMD_ENOMEM, "LCM scheduler: out of memory for %zu timesteps", n);
    }
    s->cfg = *cfg;
    semd_alphas_cumprod(cfg, s->alphas);
    *out = s;
    return SEMD_OK;
}

void semd_lcm_scheduler_free(semd_lcm_scheduler *s)
{
    if (!s) return;
    free(s->alphas);
    free(s->timesteps);
    free(s);
}

const semd_lcm_config *semd_lcm_scheduler_config(const semd_lcm_scheduler *s) { return &s->cfg; }
const float *semd_lcm_alphas(const semd_lcm_scheduler *s) { return s->alphas; }
int semd_lcm_num_steps(const semd_lcm_scheduler *s) { return s->num_steps; }
const int *semd_lcm_timesteps(const semd_lcm_scheduler *s) { return s->timesteps; }

int semd_lcm_set_timesteps(semd_lcm_scheduler *s, int n)
{
    int orig = s->cfg.original_inference_steps;
    if (n < 1 || n > orig)
        return semd_error(SEMD_EINVAL, "LCM set_timesteps: %d steps is outside 1..%d "
                          "(original_inference_steps)", n, orig);
    int k = s->cfg.num_train_timesteps / orig;
    /* numpy's linspace(0, orig, n, endpoint=False) multiplies j by the double step. */
    double spacing = (double)orig / (double)n;
    for (int j = 0; j < n; j++) {
        int idx = (int)floor((double)j * spacing); /* index into the descending grid */
        s->timesteps[j] = (orig - idx) * k - 1;
    }
    s->num_steps = n;
    return SEMD_OK;
}

int semd_lcm_set_custom_timesteps(semd_lcm_scheduler *s, const int *timesteps, int n)
{
    int N = s->cfg.num_train_timesteps;
    if (!timesteps || n < 1)
        return semd_error(SEMD_EINVAL, "LCM custom timesteps: the list is empty");
    for (int j = 0; j < n; j++) {
        if (timesteps[j] < 0 || timesteps[j] >= N)
            return semd_error(SEMD_EINVAL, "LCM custom timesteps: timesteps[%d] = %d is outside "
                              "0..%d", j, timesteps[j], N - 1);
        if (j > 0 && timesteps[j] >= timesteps[j - 1])
            return semd_error(SEMD_EINVAL, "LCM custom timesteps: not strictly descending at "
                              "[%d] = %d after %d", j, timesteps[j], timesteps[j - 1]);
    }
    memcpy(s->timesteps, timesteps, (size_t)n * sizeof *timesteps);
    s->num_steps = n;
    return SEMD_OK;
}

/* The pipeline passes t as an int64 tensor, so t*scaling and all that follows is float32. */
static void scalings(float scaling, int t, float *c_skip, float *c_out)
{
    float st = (float)t * scaling;
    float denom = st * st + SIGMA_DATA_SQ;
    *c_skip = SIGMA_DATA_SQ / denom; /* torch: reciprocal(denom) * 0.25, the same value */
    *c_out = st / sqrtf(denom);
}

int semd_lcm_scalings(const semd_lcm_scheduler *s, int t, float *c_skip, float *c_out)
{
    if (t < 0 || t >= s->cfg.num_train_timesteps)
        return semd_error(SEMD_EINVAL, "LCM scalings: timestep %d is outside 0..%d", t,
                          s->cfg.num_train_timesteps - 1);
    scalings(s->cfg.timestep_scaling, t, c_skip, c_out);
    return SEMD_OK;
}

/* Per-step scalars, each a float32 0-d tensor in diffusers' step. */
int semd_lcm_coefficients(const semd_lcm_scheduler *s, int step_index, semd_lcm_coef *k)
{
    if (s->num_steps == 0)
        return semd_error(SEMD_EINVAL, "LCM step: no schedule (call semd_lcm_set_timesteps)");
    if (step_index < 0 || step_index >= s->num_steps)
        return semd_error(SEMD_EINVAL, "LCM step: step index %d is outside 0..%d", step_index,
                          s->num_steps - 1);
    k->renoise = step_index + 1 < s->num_steps;
    k->t = s->timesteps[step_index];
    k->t_prev = k->renoise ? s->timesteps[step_index + 1] : k->t;
    k->prediction_type = s->cfg.prediction_type;
    float a = s->alphas[k->t], a_prev = s->alphas[k->t_prev];
    k->sqrt_alpha = sqrtf(a);
    k->sqrt_beta = sqrtf(1.0f - a);
    k->sqrt_alpha_prev = sqrtf(a_prev);
    k->sqrt_beta_prev = sqrtf(1.0f - a_prev);
    scalings(s->cfg.timestep_scaling, k->t, &k->c_skip, &k->c_out);
    return SEMD_OK;
}

static inline float predict_x0(const semd_lcm_coef *k, float m, float x)
{
    switch (k->prediction_type) {
    case SEMD_PREDICT_V:
        return k->sqrt_alpha * x - k->sqrt_beta * m;
    case SEMD_PREDICT_SAMPLE:
        return m;
    default:
        return (x - k->sqrt_beta * m) / k->sqrt_alpha;
    }
}

int semd_lcm_apply(const semd_lcm_coef *k, const float *model_output, const float *sample,
                   const float *noise, size_t n, float *denoised, float *prev_sample)
{
    if (!model_output || !sample || !denoised || !prev_sample || (k->renoise && !noise))
        return semd_error(SEMD_EINVAL, "LCM step at t=%d: %s is NULL", k->t,
                          !model_output ? "model_output" : !sample ? "sample"
                          : !denoised ? "denoised" : !prev_sample ? "prev_sample"
                          : "noise (required before the last step)");
    for (size_t i = 0; i < n; i++) {
        /* Read everything first: the outputs may alias the inputs. */
        float x = sample[i], m = model_output[i];
        float z = k->renoise ? noise[i] : 0.0f;
        float d = k->c_out * predict_x0(k, m, x) + k->c_skip * x;
        denoised[i] = d;
        prev_sample[i] = k->renoise ? k->sqrt_alpha_prev * d + k->sqrt_beta_prev * z : d;
    }
    return SEMD_OK;
}

int semd_lcm_step(const semd_lcm_scheduler *s, int step_index, const float *model_output,
                  const float *sample, const float *noise, size_t n, float *denoised,
                  float *prev_sample)
{
    semd_lcm_coef k;
    int rc = semd_lcm_coefficients(s, step_index, &k);
    return rc ? rc : semd_lcm_apply(&k, model_output, sample, noise, n, denoised, prev_sample);
}

/* ---- embeddings ----------------------------------------------------------------- */

/*
 * float32 exp/sin/cos, correctly rounded (via double). torch's own float32
 * results (MKL on the CPU, CUDA's libdevice) are within an ulp of these.
 */
static inline float exp_f32(float x) { return (float)exp((double)x); }
static inline float sin_f32(float x) { return (float)sin((double)x); }
static inline float cos_f32(float x) { return (float)cos((double)x); }

/* out[half] = exp(arange(half) * scale / divisor), each op rounded to float32. */
static void frequencies(int half, float scale, float divisor, float *out)
{
    for (int i = 0; i < half; i++) out[i] = exp_f32((float)i * scale / divisor);
}

/*
 * One embedding row from frequencies: [first, second] halves of sin/cos of
 * value*f_i, then a zero column for odd dims.
 */
static void sinusoid_row(float value, const float *freq, int half, int cos_first, int dim,
                         float *row)
{
    float *sin_half = cos_first ? row + half : row;
    float *cos_half = cos_first ? row : row + half;
    for (int i = 0; i < half; i++) {
        float a = value * freq[i];
        sin_half[i] = sin_f32(a);
        cos_half[i] = cos_f32(a);
    }
    if (dim % 2) row[dim - 1] = 0.0f;
}

/*
 * Both embeddings compute the frequencies once per call; for the dims the
 * UNet uses (<= 1280) they fit on the stack, larger dims fall back to the heap.
 */
#define STACK_FREQS 1024

static int embed(const float *values, int batch, int dim, int cos_first, float scale,
                 float divisor, float *out)
{
    int half = dim / 2;
    float stack[STACK_FREQS];
    float *freq = half <= STACK_FREQS ? stack : malloc((size_t)half * sizeof *freq);
    if (!freq) return semd_error(SEMD_ENOMEM, "embedding: out of memory for dim %d", dim);
    frequencies(half, scale, divisor, freq);
    for (int b = 0; b < batch; b++)
        sinusoid_row(values[b], freq, half, cos_first, dim, out + (size_t)b * (size_t)dim);
    if (freq != stack) free(freq);
    return SEMD_OK;
}

int semd_timestep_embedding(const float *timesteps, int batch, int dim, int flip_sin_to_cos,
                            float downscale_freq_shift, float *out)
{
    if (!timesteps || !out || batch < 1 || dim < 2)
        return semd_error(SEMD_EINVAL, "timestep embedding: batch %d, dim %d (need >= 1, >= 2 "
                          "and non-NULL arrays)", batch, dim);
    /* Python: half_dim - downscale_freq_shift in double, used as a float32 divisor. */
    double divisor = (double)(dim / 2) - (double)downscale_freq_shift;
    if (!(divisor > 0))
        return semd_error(SEMD_EINVAL, "timestep embedding: dim %d with downscale_freq_shift %g "
                          "divides by %g", dim, (double)downscale_freq_shift, divisor);
    /* -math.log(max_period) is a double scalar that torch rounds to float32 for the multiply. */
    return embed(timesteps, batch, dim, flip_sin_to_cos, (float)-log(MAX_PERIOD), (float)divisor,
                 out);
}

int semd_guidance_embedding(const float *w, int batch, int dim, float *out)
{
    if (!w || !out || batch < 1 || dim < 4)
        return semd_error(SEMD_EINVAL, "guidance embedding: batch %d, dim %d (need >= 1, >= 4 "
                          "and non-NULL arrays)", batch, dim);
    int half = dim / 2;
    /* torch.log(tensor(10000.)) / (half - 1), negated, all float32 */
    float step = -((float)log(10000.0) / (float)(half - 1));
    float stack[16];
    float *scaled = batch <= 16 ? stack : malloc((size_t)batch * sizeof *scaled);
    if (!scaled) return semd_error(SEMD_ENOMEM, "guidance embedding: out of memory");
    for (int b = 0; b < batch; b++) scaled[b] = w[b] * 1000.0f;
    int rc = embed(scaled, batch, dim, 0, step, 1.0f, out);
    if (scaled != stack) free(scaled);
    return rc;
}
