/*
 * semdrawd probe: run one model module on named input tensors from a
 * safetensors file and write its named outputs, so any module can be compared
 * tensor for tensor with the reference implementation.
 *
 *   module          inputs                                         outputs
 *   clip            input_ids [B,L] (I64/I32)                      last_hidden_state, pooler_output
 *   unet            sample, timestep ([] or [B]),                  sample
 *                   encoder_hidden_states, timestep_cond?,
 *                   text_embeds?, time_ids?
 *   vae-decoder     latent (what AutoencoderKL.decode takes)       sample
 *   vae-encoder     sample                                         latent_mean
 *   taesd-decoder   latent                                         sample
 *   taesd-encoder   sample                                         latent_mean
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "semd/checkpoint.h"
#include "semd/safetensors.h"
#include "semd/status.h"

static const char *const USAGE =
    "semdrawd probe --model PATH [--config DIR] --module "
    "clip|unet|vae-decoder|vae-encoder|taesd-decoder|taesd-encoder "
    "--in IN.safetensors --out OUT.safetensors [--backend cpu] [--clip-skip K]";

typedef struct probe_args {
    const char *model, *config, *module, *in, *out, *backend;
    int clip_skip;
} probe_args;

/* What a module run produces: up to two named outputs. */
typedef struct outputs {
    const char *name[2];
    semd_tensor *t[2];
} outputs;

typedef struct probe_ctx {
    const probe_args *a;
    semd_backend *be;
    const semd_st_file *in;
    outputs out;
} probe_ctx;

static int parse_args(int argc, char **argv, probe_args *a)
{
    *a = (probe_args){.backend = "cpu"};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char **dst = strcmp(opt, "--model") == 0     ? &a->model
                           : strcmp(opt, "--config") == 0  ? &a->config
                           : strcmp(opt, "--module") == 0  ? &a->module
                           : strcmp(opt, "--in") == 0      ? &a->in
                           : strcmp(opt, "--out") == 0     ? &a->out
                           : strcmp(opt, "--backend") == 0 ? &a->backend
                                                           : NULL;
        if (strcmp(opt, "--clip-skip") == 0) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_int(v, 0, 64, &a->clip_skip))
                return cli_usage(USAGE, "--clip-skip needs an integer 0..64");
            continue;
        }
        if (!dst) return cli_usage(USAGE, "unknown argument %s", opt);
        if (!(*dst = cli_value(argc, argv, &i))) return cli_usage(USAGE, "%s needs a value", opt);
    }
    if (!a->model || !a->module || !a->in || !a->out)
        return cli_usage(USAGE, "--model, --module, --in and --out are required");
    return 0;
}

/* ---- inputs ---- */

static const semd_st_tensor *find_input(const semd_st_file *f, const char *name, int optional,
                                        int *rc)
{
    const semd_st_tensor *t = semd_st_find(f, name);
    if (!t && !optional)
        *rc = semd_error(SEMD_ENOTFOUND, "%s: no tensor '%s'", semd_st_path(f), name);
    return t;
}

/* A float input uploaded with its own shape; NULL (and rc untouched) if optional and absent. */
static int input_tensor(const probe_ctx *c, const char *name, int ndim, int optional,
                        semd_tensor **out)
{
    int rc = 0;
    *out = NULL;
    const semd_st_tensor *t = find_input(c->in, name, optional, &rc);
    if (!t) return rc;
    if (t->ndim != ndim || t->numel == 0 || t->numel > ((uint64_t)1 << 32))
        return semd_error(SEMD_ESHAPE, "%s: '%s' must be a non-empty %d-dimensional tensor",
                          semd_st_path(c->in), name, ndim);
    float *host = malloc(t->numel * sizeof(float));
    rc = host ? semd_st_read_f32(t, host) : semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) rc = semd_tensor_new(c->be, ndim, t->shape, out);
    if (!rc) rc = semd_tensor_set(*out, host);
    if (rc) semd_tensor_free(*out), *out = NULL;
    free(host);
    return rc;
}

/* Host floats of an input with exactly `n` elements, or one element broadcast to n. */
static int input_floats(const probe_ctx *c, const char *name, uint64_t n, int broadcast,
                        int optional, float **out)
{
    int rc = 0;
    *out = NULL;
    const semd_st_tensor *t = find_input(c->in, name, optional, &rc);
    if (!t) return rc;
    if (t->numel != n && !(broadcast && t->numel == 1))
        return semd_error(SEMD_ESHAPE, "%s: '%s' must have %llu values%s", semd_st_path(c->in), name,
                          (unsigned long long)n, broadcast ? " (or one)" : "");
    float *v = malloc(n * sizeof(float) + sizeof(float));
    if (!v) return semd_error(SEMD_ENOMEM, "out of memory");
    rc = semd_st_read_f32(t, v);
    for (uint64_t i = 1; !rc && t->numel == 1 && i < n; i++) v[i] = v[0];
    if (rc) free(v), v = NULL;
    *out = v;
    return rc;
}

/* input_ids: I64 or I32, [B, L]; converted to int32 for the engine. */
static int read_ids(const semd_st_file *f, int32_t **ids, int *batch, int *len)
{
    const char *path = semd_st_path(f);
    const semd_st_tensor *t = semd_st_find(f, "input_ids");
    if (!t) return semd_error(SEMD_ENOTFOUND, "%s: no tensor 'input_ids'", path);
    if ((t->dtype != SEMD_ST_I64 && t->dtype != SEMD_ST_I32) || t->ndim != 2 || t->numel == 0)
        return semd_error(SEMD_ESHAPE, "%s: 'input_ids' must be a non-empty I64 or I32 [B,L] "
                          "tensor, not %s with %d dims", path, semd_st_dtype_name(t->dtype), t->ndim);
    if (t->shape[0] > 4096 || t->shape[1] > 4096)
        return semd_error(SEMD_ESHAPE, "%s: 'input_ids' [%lld,%lld] is too large", path,
                          (long long)t->shape[0], (long long)t->shape[1]);
    int64_t *wide = malloc(t->numel * sizeof *wide);
    *ids = malloc(t->numel * sizeof **ids);
    int rc = (!wide || !*ids) ? semd_error(SEMD_ENOMEM, "out of memory") : semd_st_read_i64(t, wide);
    for (uint64_t i = 0; !rc && i < t->numel; i++) {
        if (wide[i] < 0 || wide[i] > INT32_MAX)
            rc = semd_error(SEMD_EINVAL, "%s: input_ids[%llu] = %lld is not a token id", path,
                            (unsigned long long)i, (long long)wide[i]);
        (*ids)[i] = (int32_t)wide[i];
    }
    free(wide);
    if (rc) free(*ids), *ids = NULL;
    *batch = (int)t->shape[0];
    *len = (int)t->shape[1];
    return rc;
}

/* ---- modules ---- */

static int run_clip(probe_ctx *c, semd_checkpoint *ck)
{
    int32_t *ids = NULL;
    int batch = 0, len = 0;
    semd_clip *clip = NULL;
    int rc = read_ids(c->in, &ids, &batch, &len);
    if (!rc) rc = semd_checkpoint_clip(ck, c->be, &clip);
    c->out.name[0] = "last_hidden_state";
    c->out.name[1] = "pooler_output";
    if (!rc) rc = semd_clip_encode(clip, ids, batch, len, c->a->clip_skip, &c->out.t[0], &c->out.t[1]);
    semd_clip_free(clip);
    free(ids);
    return rc;
}

static int run_unet(probe_ctx *c, semd_checkpoint *ck)
{
    semd_unet *unet = NULL;
    semd_tensor *x = NULL, *ctx = NULL, *cond = NULL, *text = NULL;
    float *t = NULL, *ids = NULL;
    int rc = input_tensor(c, "sample", 4, 0, &x);
    if (!rc) rc = input_tensor(c, "encoder_hidden_states", 3, 0, &ctx);
    if (!rc) rc = input_tensor(c, "timestep_cond", 2, 1, &cond);
    if (!rc) rc = input_tensor(c, "text_embeds", 2, 1, &text);
    if (!rc) rc = input_floats(c, "timestep", (uint64_t)x->ne[0], 1, 0, &t);
    if (!rc) rc = input_floats(c, "time_ids", (uint64_t)x->ne[0] * 6, 0, 1, &ids);
    if (!rc) rc = semd_checkpoint_unet(ck, c->be, &unet);
    semd_unet_inputs in = {.sample = x, .timesteps = t, .encoder_hidden_states = ctx,
                           .timestep_cond = cond, .text_embeds = text, .time_ids = ids};
    c->out.name[0] = "sample";
    if (!rc) rc = semd_unet_forward(unet, &in, &c->out.t[0]);
    semd_unet_free(unet);
    semd_tensor_free(x), semd_tensor_free(ctx), semd_tensor_free(cond), semd_tensor_free(text);
    free(t), free(ids);
    return rc;
}

static int run_vae(probe_ctx *c, semd_checkpoint *ck, int encode)
{
    semd_vae *vae = NULL;
    semd_tensor *x = NULL;
    int rc = input_tensor(c, encode ? "sample" : "latent", 4, 0, &x);
    if (!rc) rc = semd_checkpoint_vae(ck, c->be, encode ? SEMD_VAE_ENCODER : SEMD_VAE_DECODER, &vae);
    c->out.name[0] = encode ? "latent_mean" : "sample";
    if (!rc) rc = encode ? semd_vae_encode(vae, x, &c->out.t[0]) : semd_vae_decode(vae, x, &c->out.t[0]);
    semd_vae_free(vae);
    semd_tensor_free(x);
    return rc;
}

static int run_taesd(probe_ctx *c, int encode)
{
    semd_taesd *t = NULL;
    semd_tensor *x = NULL;
    int rc = input_tensor(c, encode ? "sample" : "latent", 4, 0, &x);
    if (!rc) rc = semd_taesd_open(c->a->model, c->be, encode ? SEMD_VAE_ENCODER : SEMD_VAE_DECODER, &t);
    c->out.name[0] = encode ? "latent_mean" : "sample";
    if (!rc) rc = encode ? semd_taesd_encode(t, x, &c->out.t[0]) : semd_taesd_decode(t, x, &c->out.t[0]);
    semd_taesd_free(t);
    semd_tensor_free(x);
    return rc;
}

static int run_module(probe_ctx *c)
{
    const char *m = c->a->module;
    if (strcmp(m, "taesd-decoder") == 0) return run_taesd(c, 0);
    if (strcmp(m, "taesd-encoder") == 0) return run_taesd(c, 1);
    semd_checkpoint *ck;
    int rc = semd_checkpoint_open(c->a->model, c->a->config, &ck);
    if (rc) return rc;
    if (strcmp(m, "clip") == 0) rc = run_clip(c, ck);
    else if (strcmp(m, "unet") == 0) rc = run_unet(c, ck);
    else if (strcmp(m, "vae-decoder") == 0) rc = run_vae(c, ck, 0);
    else rc = run_vae(c, ck, 1);
    semd_checkpoint_free(ck);
    return rc;
}

/* ---- outputs ---- */

static int add_output(semd_st_writer *w, const char *name, const semd_tensor *t)
{
    float *host = malloc((size_t)semd_tensor_numel(t) * sizeof(float));
    if (!host) return semd_error(SEMD_ENOMEM, "out of memory");
    int rc = semd_tensor_get(t, host);
    if (!rc) rc = semd_st_writer_add(w, name, SEMD_ST_F32, t->ndim, t->ne, host);
    free(host);
    return rc;
}

static int write_outputs(const probe_ctx *c)
{
    semd_st_writer *w = semd_st_writer_new();
    if (!w) return semd_error(SEMD_ENOMEM, "out of memory");
    char producer[128];
    snprintf(producer, sizeof producer, "semdrawd probe --module %s", c->a->module);
    int rc = semd_st_writer_metadata(w, "producer", producer);
    for (int i = 0; !rc && i < 2 && c->out.t[i]; i++) rc = add_output(w, c->out.name[i], c->out.t[i]);
    if (!rc) rc = semd_st_writer_save(w, c->a->out);
    semd_st_writer_free(w);
    return rc;
}

static int known_module(const char *m)
{
    static const char *const known[] = {"clip", "unet", "vae-decoder", "vae-encoder",
                                        "taesd-decoder", "taesd-encoder"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(m, known[i]) == 0) return 1;
    return 0;
}

int cmd_probe(int argc, char **argv)
{
    probe_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status;
    if (!known_module(a.module)) return cli_usage(USAGE, "unknown module '%s'", a.module);
    probe_ctx c = {.a = &a};
    int rc = semd_backend_new(a.backend, &c.be);
    if (rc) return cli_fail("cannot start the backend", rc);
    semd_st_file *in;
    rc = semd_st_open(a.in, &in);
    if (rc) {
        semd_backend_free(c.be);
        return cli_fail("cannot read the inputs", rc);
    }
    c.in = in;
    rc = run_module(&c);
    if (!rc) rc = write_outputs(&c);
    semd_tensor_free(c.out.t[0]), semd_tensor_free(c.out.t[1]);
    semd_st_close(in);
    semd_backend_free(c.be);
    return rc ? cli_fail("probe failed", rc) : 0;
}
