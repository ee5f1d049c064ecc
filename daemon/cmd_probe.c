/*
 * semdrawd probe: run one model module on named input tensors from a
 * safetensors file and write its named outputs, so any module can be compared
 * tensor for tensor with the reference implementation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "semd/checkpoint.h"
#include "semd/safetensors.h"
#include "semd/status.h"

static const char *const USAGE =
    "semdrawd probe --model PATH [--config DIR] --module clip --in IN.safetensors "
    "--out OUT.safetensors [--backend cpu] [--clip-skip K]";

typedef struct probe_args {
    const char *model, *config, *module, *in, *out, *backend;
    int clip_skip;
} probe_args;

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
    if (strcmp(a->module, "clip") != 0)
        return cli_usage(USAGE, "unknown module '%s' (known: clip)", a->module);
    return 0;
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
    if (rc) {
        free(*ids);
        *ids = NULL;
    }
    *batch = (int)t->shape[0];
    *len = (int)t->shape[1];
    return rc;
}

static int add_output(semd_st_writer *w, const char *name, const semd_tensor *t)
{
    float *host = malloc((size_t)semd_tensor_numel(t) * sizeof(float));
    if (!host) return semd_error(SEMD_ENOMEM, "out of memory");
    int rc = semd_tensor_get(t, host);
    if (!rc) rc = semd_st_writer_add(w, name, SEMD_ST_F32, t->ndim, t->ne, host);
    free(host);
    return rc;
}

static int write_clip_outputs(const char *path, const semd_tensor *hidden, const semd_tensor *pooled)
{
    semd_st_writer *w = semd_st_writer_new();
    if (!w) return semd_error(SEMD_ENOMEM, "out of memory");
    int rc = add_output(w, "last_hidden_state", hidden);
    if (!rc) rc = add_output(w, "pooler_output", pooled);
    if (!rc) rc = semd_st_writer_metadata(w, "producer", "semdrawd probe --module clip");
    if (!rc) rc = semd_st_writer_save(w, path);
    semd_st_writer_free(w);
    return rc;
}

static int probe_clip(const probe_args *a, semd_backend *be, const semd_st_file *in)
{
    int32_t *ids = NULL;
    int batch, len;
    semd_checkpoint *ck = NULL;
    semd_clip *clip = NULL;
    semd_tensor *hidden = NULL, *pooled = NULL;
    int rc = read_ids(in, &ids, &batch, &len);
    if (!rc) rc = semd_checkpoint_open(a->model, a->config, &ck);
    if (!rc) rc = semd_checkpoint_clip(ck, be, &clip);
    if (!rc) rc = semd_clip_encode(clip, ids, batch, len, a->clip_skip, &hidden, &pooled);
    if (!rc) rc = write_clip_outputs(a->out, hidden, pooled);
    semd_tensor_free(hidden);
    semd_tensor_free(pooled);
    semd_clip_free(clip);
    semd_checkpoint_free(ck);
    free(ids);
    return rc;
}

int cmd_probe(int argc, char **argv)
{
    probe_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status;
    semd_backend *be;
    int rc = semd_backend_new(a.backend, &be);
    if (rc) return cli_fail("cannot start the backend", rc);
    semd_st_file *in;
    rc = semd_st_open(a.in, &in);
    if (rc) {
        semd_backend_free(be);
        return cli_fail("cannot read the inputs", rc);
    }
    rc = probe_clip(&a, be, in);
    semd_st_close(in);
    semd_backend_free(be);
    return rc ? cli_fail("probe failed", rc) : 0;
}
