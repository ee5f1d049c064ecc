/*
 * semdrawd encode: prompt -> token ids -> text-encoder states, the whole text
 * path of a checkpoint in one command. Prints a summary; optionally writes the
 * tensors (input_ids, last_hidden_state, pooler_output) as safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "semd/checkpoint.h"
#include "semd/safetensors.h"
#include "semd/status.h"

static const char *const USAGE =
    "semdrawd encode --model PATH [--config DIR] [--backend cpu] [--clip-skip K] "
    "[-o OUT.safetensors] PROMPT...";

typedef struct encode_args {
    const char *model, *config, *backend, *out;
    int clip_skip, first_prompt, n_prompts;
} encode_args;

static int parse_args(int argc, char **argv, encode_args *a)
{
    *a = (encode_args){.backend = "cpu"};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        const char **dst = strcmp(opt, "--model") == 0     ? &a->model
                           : strcmp(opt, "--config") == 0  ? &a->config
                           : strcmp(opt, "--backend") == 0 ? &a->backend
                           : strcmp(opt, "-o") == 0        ? &a->out
                                                           : NULL;
        if (strcmp(opt, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(opt, "--clip-skip") == 0) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_int(v, 0, 64, &a->clip_skip))
                return cli_usage(USAGE, "--clip-skip needs an integer 0..64");
            continue;
        }
        if (!dst) return cli_usage(USAGE, "unknown option %s", opt);
        if (!(*dst = cli_value(argc, argv, &i))) return cli_usage(USAGE, "%s needs a value", opt);
    }
    if (!a->model) return cli_usage(USAGE, "--model is required");
    if (i >= argc) return cli_usage(USAGE, "no PROMPT given");
    a->first_prompt = i;
    a->n_prompts = argc - i;
    return 0;
}

static void summarise(const char *prompt, const int32_t *ids, const float *h, int len, int dim)
{
    int n = 0;
    while (n < len && ids[n] != SEMD_CLIP_EOS) n++;
    double sum = 0, sq = 0;
    for (int i = 0; i < len * dim; i++) {
        sum += h[i];
        sq += (double)h[i] * h[i];
    }
    printf("\"%s\": %d tokens -> [%d,%d] mean %.6f rms %.6f\n", prompt, n - 1, len, dim,
           sum / (len * dim), sqrt(sq / (len * dim)));
}

static int save(const char *path, const int32_t *ids, int batch, const semd_tensor *hidden,
                const semd_tensor *pooled)
{
    semd_st_writer *w = semd_st_writer_new();
    if (!w) return semd_error(SEMD_ENOMEM, "out of memory");
    int64_t id_shape[2] = {batch, SEMD_CLIP_CONTEXT};
    float *h = malloc((size_t)semd_tensor_numel(hidden) * sizeof(float));
    float *p = malloc((size_t)semd_tensor_numel(pooled) * sizeof(float));
    int rc = (!h || !p) ? semd_error(SEMD_ENOMEM, "out of memory") : 0;
    if (!rc) rc = semd_tensor_get(hidden, h);
    if (!rc) rc = semd_tensor_get(pooled, p);
    if (!rc) rc = semd_st_writer_add(w, "input_ids", SEMD_ST_I32, 2, id_shape, ids);
    if (!rc) rc = semd_st_writer_add(w, "last_hidden_state", SEMD_ST_F32, 3, hidden->ne, h);
    if (!rc) rc = semd_st_writer_add(w, "pooler_output", SEMD_ST_F32, 2, pooled->ne, p);
    if (!rc) rc = semd_st_writer_save(w, path);
    semd_st_writer_free(w);
    free(h);
    free(p);
    return rc;
}

static int run(const encode_args *a, char **prompts, semd_checkpoint *ck, semd_backend *be)
{
    semd_tokenizer *tok = NULL;
    semd_clip *clip = NULL;
    semd_tensor *hidden = NULL, *pooled = NULL;
    const int batch = a->n_prompts, len = SEMD_CLIP_CONTEXT;
    int32_t *ids = calloc((size_t)batch * len, sizeof *ids);
    float *h = NULL;
    int rc = ids ? semd_checkpoint_tokenizer(ck, &tok) : semd_error(SEMD_ENOMEM, "out of memory");
    for (int b = 0; !rc && b < batch; b++)
        rc = semd_tokenizer_encode_padded(tok, SEMD_TEXT_HF, prompts[b], ids + (size_t)b * len);
    if (!rc) rc = semd_checkpoint_clip(ck, be, &clip);
    if (!rc) rc = semd_clip_encode(clip, ids, batch, len, a->clip_skip, &hidden, &pooled);
    if (!rc && !(h = malloc((size_t)semd_tensor_numel(hidden) * sizeof(float))))
        rc = semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) rc = semd_tensor_get(hidden, h);
    const int dim = rc ? 0 : (int)hidden->ne[2];
    for (int b = 0; !rc && b < batch; b++)
        summarise(prompts[b], ids + (size_t)b * len, h + (size_t)b * len * dim, len, dim);
    if (!rc && a->out) rc = save(a->out, ids, batch, hidden, pooled);
    free(h);
    semd_tensor_free(hidden);
    semd_tensor_free(pooled);
    semd_clip_free(clip);
    semd_tokenizer_free(tok);
    free(ids);
    return rc;
}

int cmd_encode(int argc, char **argv)
{
    encode_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status;
    semd_backend *be;
    semd_checkpoint *ck;
    int rc = semd_backend_new(a.backend, &be);
    if (rc) return cli_fail("cannot start the backend", rc);
    rc = semd_checkpoint_open(a.model, a.config, &ck);
    if (!rc) {
        rc = run(&a, argv + a.first_prompt, ck, be);
        semd_checkpoint_free(ck);
    }
    semd_backend_free(be);
    return rc ? cli_fail("encode failed", rc) : 0;
}
