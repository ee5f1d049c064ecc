/*
 * semdrawd bench: time UNet evaluations at real scale and put the achieved
 * FLOP rate next to the backend's GEMM rate measured in the same run (the
 * ceiling a GEMM-bound UNet can approach).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "semd/canvas.h"
#include "semd/checkpoint.h"
#include "semd/rng.h"
#include "semd/status.h"

static const char *const USAGE =
    "semdrawd bench [--backend cpu] (--random-weights sd15|lcm-sd15 | --model PATH [--config DIR]) "
    "[--size PX] [--batch B] [--iters N] [--threads N] [--stream --layers P [--taesd PATH]]";

typedef struct bench_args {
    const char *backend, *random, *model, *config, *taesd;
    int size, batch, iters, threads, stream, layers;
} bench_args;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_args(int argc, char **argv, bench_args *a)
{
    *a = (bench_args){.backend = "cpu", .size = 512, .batch = 1, .iters = 3, .layers = 3};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stream") == 0) {
            a->stream = 1;
            continue;
        }
        const char *opt = argv[i], *v = cli_value(argc, argv, &i);
        if (!v) return cli_usage(USAGE, "%s needs a value", opt);
        if (strcmp(opt, "--backend") == 0) a->backend = v;
        else if (strcmp(opt, "--random-weights") == 0) a->random = v;
        else if (strcmp(opt, "--model") == 0) a->model = v;
        else if (strcmp(opt, "--config") == 0) a->config = v;
        else if (strcmp(opt, "--taesd") == 0) a->taesd = v;
        else if (strcmp(opt, "--layers") == 0 && !cli_int(v, 0, 32, &a->layers)) continue;
        else if (strcmp(opt, "--size") == 0 && !cli_int(v, 64, 4096, &a->size) && a->size % 8 == 0) continue;
        else if (strcmp(opt, "--batch") == 0 && !cli_int(v, 1, 64, &a->batch)) continue;
        else if (strcmp(opt, "--iters") == 0 && !cli_int(v, 1, 1000, &a->iters)) continue;
        else if (strcmp(opt, "--threads") == 0 && !cli_int(v, 1, 1024, &a->threads)) continue;
        else return cli_usage(USAGE, "bad option %s %s (--size: a multiple of 8 in 64..4096)", opt, v);
    }
    if (!a->random == !a->model) return cli_usage(USAGE, "give --random-weights or --model");
    return 0;
}

static int random_tensor(semd_backend *be, int ndim, const int64_t *ne, uint64_t stream,
                         semd_tensor **out)
{
    int rc = semd_tensor_new(be, ndim, ne, out);
    if (rc) return rc;
    size_t n = (size_t)semd_tensor_numel(*out);
    float *host = malloc(n * sizeof(float));
    if (!host) rc = semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) semd_randn(7, stream, 0, host, n), rc = semd_tensor_set(*out, host);
    free(host);
    if (rc) semd_tensor_free(*out), *out = NULL;
    return rc;
}

/* The backend's GEMM rate: Y[n,n] = X[n,n] W[n,n]^T, one sample through semd_op_linear. */
static int gemm_rate(semd_backend *be, int n, double *gflops)
{
    int64_t sq[2] = {n, n}, one[3] = {1, n, n};
    semd_tensor *x = NULL, *w = NULL, *y = NULL;
    int rc = random_tensor(be, 3, one, 1, &x);
    if (!rc) rc = random_tensor(be, 2, sq, 2, &w);
    if (!rc) rc = semd_tensor_new(be, 3, one, &y);
    if (!rc) rc = semd_op_linear(y, x, w, NULL); /* warm-up */
    double t0 = now_ms();
    const int reps = 5;
    for (int i = 0; !rc && i < reps; i++) rc = semd_op_linear(y, x, w, NULL);
    float *sync = rc ? NULL : malloc((size_t)n * n * sizeof(float));
    if (sync) rc = semd_tensor_get(y, sync); /* waits for an asynchronous backend */
    free(sync);
    *gflops = 2.0 * n * (double)n * n * reps / ((now_ms() - t0) * 1e6);
    semd_tensor_free(x), semd_tensor_free(w), semd_tensor_free(y);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct unet_run {
    semd_tensor *x, *ctx, *cond;
    float *t;
} unet_run;

static int make_inputs(semd_backend *be, const semd_unet_config *c, const bench_args *a, unet_run *r)
{
    const int64_t lat = a->size / 8;
    int64_t xs[4] = {a->batch, c->in_channels, lat, lat}, cs[3] = {a->batch, 77, c->cross_attention_dim};
    int64_t ws[2] = {a->batch, c->time_cond_proj_dim};
    int rc = random_tensor(be, 4, xs, 3, &r->x);
    if (!rc) rc = random_tensor(be, 3, cs, 4, &r->ctx);
    if (!rc && c->time_cond_proj_dim) rc = random_tensor(be, 2, ws, 5, &r->cond);
    if (!rc && !(r->t = malloc((size_t)a->batch * sizeof(float)))) rc = semd_error(SEMD_ENOMEM, "out of memory");
    for (int b = 0; !rc && b < a->batch; b++) r->t[b] = 999.0f - 260.0f * (b % 4);
    return rc;
}

static int run(const bench_args *a, semd_backend *be, semd_checkpoint *ck)
{
    semd_unet *unet = NULL;
    unet_run r = {0};
    double t0 = now_ms(), gemm = 0;
    int rc = semd_checkpoint_unet(ck, be, &unet);
    if (rc) return rc;
    printf("backend %s, UNet loaded in %.0f ms, latent %dx%d, batch %d\n", semd_backend_name(be),
           now_ms() - t0, a->size / 8, a->size / 8, a->batch);
    rc = make_inputs(be, semd_unet_config_of(unet), a, &r);
    semd_unet_inputs in = {.sample = r.x, .timesteps = r.t, .encoder_hidden_states = r.ctx,
                           .timestep_cond = r.cond};
    double *ms = calloc((size_t)a->iters, sizeof *ms);
    semd_tensor *out = NULL;
    if (!rc) rc = semd_unet_forward(unet, &in, &out); /* warm-up */
    semd_tensor_free(out), out = NULL;
    semd_backend_reset_flops(be);
    for (int i = 0; !rc && i < a->iters; i++) {
        t0 = now_ms();
        rc = semd_unet_forward(unet, &in, &out);
        ms[i] = now_ms() - t0;
        semd_tensor_free(out), out = NULL;
    }
    const double gflop = semd_backend_flops(be) / 1e9 / a->iters; /* before the GEMM probe adds its own */
    if (!rc) rc = gemm_rate(be, 2048, &gemm);
    if (!rc) {
        qsort(ms, (size_t)a->iters, sizeof *ms, cmp_double);
        const double med = ms[a->iters / 2], rate = gflop / (med / 1e3);
        printf("UNet evaluation: %.1f ms median of %d (min %.1f, max %.1f), %.1f GFLOP\n", med,
               a->iters, ms[0], ms[a->iters - 1], gflop);
        printf("achieved %.1f GFLOP/s; backend GEMM 2048^3 %.1f GFLOP/s; ratio %.0f%%\n", rate,
               gemm, 100.0 * rate / gemm);
    }
    free(ms);
    semd_tensor_free(r.x), semd_tensor_free(r.ctx), semd_tensor_free(r.cond), free(r.t);
    semd_unet_free(unet);
    return rc;
}

/* ---- the stream: one canvas, P layers, a mask edit before every frame (a brush stroke) ---- */

static void circle_mask(uint8_t *m, int size, int layer, int frame)
{
    const double cx = size * (0.3 + 0.2 * layer) + frame, cy = size * (0.4 + 0.1 * layer), r = size * 0.25;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            m[y * size + x] = ((x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r) ? 255 : 0;
}

static int stream_models(const bench_args *a, semd_backend *be, semd_checkpoint *ck, semd_sd_models *m)
{
    int rc = semd_checkpoint_tokenizer(ck, &m->tokenizer);
    if (!rc) rc = semd_checkpoint_clip(ck, be, &m->clip);
    if (!rc) rc = semd_checkpoint_unet(ck, be, &m->unet);
    if (!rc) rc = semd_checkpoint_scheduler(ck, &m->scheduler);
    if (!rc) rc = a->taesd ? semd_taesd_open(a->taesd, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &m->taesd)
                           : semd_taesd_random(be, 3, &m->taesd);
    return rc;
}

static void report_stream(const semd_canvas_stats *s, int frames, double wall)
{
    const double f = frames, total = wall / f;
    const double other = (s->ms_text + s->ms_mask + s->ms_aggregate + s->ms_encode) / f;
    printf("stream frame: %.1f ms (%d frames, one mask edit before each)\n", total, frames);
    printf("  text encode %8.2f ms  mask preprocessing %8.2f ms  UNet %10.1f ms\n", s->ms_text / f,
           s->ms_mask / f, s->ms_unet / f);
    printf("  aggregation %8.2f ms  decode %8.1f ms  encode %6.2f ms\n", s->ms_aggregate / f,
           s->ms_decode / f, s->ms_encode / f);
    printf("  everything but the UNet and the decoder: %.2f%% of the frame\n", 100.0 * other / total);
}

static int bench_stream(const bench_args *a, semd_backend *be, semd_checkpoint *ck)
{
    semd_sd_models m = {0};
    semd_canvas *c = NULL;
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = p.height = a->size;
    uint8_t *mask = malloc((size_t)a->size * a->size);
    int rc = mask ? stream_models(a, be, ck, &m) : semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) rc = semd_canvas_new(&m, &p, &c);
    static const char *const prompts[] = {"a red apple", "a blue vase", "a wooden table", "a cat"};
    for (int i = 0; !rc && i < a->layers; i++) {
        int id;
        circle_mask(mask, a->size, i, 0);
        semd_layer_desc d = {.prompt = prompts[i % 4], .mask = mask, .mask_std = 8.0f,
                             .mask_strength = 1.0f, .prompt_strength = 0.95f};
        rc = semd_canvas_add_layer(c, &d, &id);
    }
    semd_frame f;
    if (!rc) rc = semd_canvas_step(&c, 1, 1, &f); /* warm-up */
    if (!rc) semd_canvas_stats_reset(c);
    double t0 = now_ms();
    for (int i = 0; !rc && i < a->iters; i++) {
        for (int l = 0; !rc && l < a->layers; l++) {
            circle_mask(mask, a->size, l, i + 1);
            semd_layer_desc d = {.mask = mask};
            rc = semd_canvas_update_layer(c, l, &d, SEMD_LAYER_MASK);
        }
        if (!rc) rc = semd_canvas_step(&c, 1, 1, &f);
    }
    semd_canvas_stats s;
    if (!rc) semd_canvas_stats_get(c, &s), report_stream(&s, a->iters, now_ms() - t0);
    semd_canvas_free(c);
    semd_tokenizer_free(m.tokenizer), semd_clip_free(m.clip), semd_unet_free(m.unet);
    semd_lcm_scheduler_free(m.scheduler), semd_taesd_free(m.taesd);
    free(mask);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    bench_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status;
    semd_backend *be = NULL;
    semd_checkpoint *ck = NULL;
    int rc = strcmp(a.backend, "cpu") == 0 ? semd_backend_cpu_new(a.threads, &be)
                                           : semd_backend_new(a.backend, &be);
    if (!rc) rc = a.random ? semd_checkpoint_open_random(a.random, 1, &ck)
                           : semd_checkpoint_open(a.model, a.config, &ck);
    if (!rc) rc = a.stream ? bench_stream(&a, be, ck) : run(&a, be, ck);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
    return rc ? cli_fail("bench failed", rc) : 0;
}
