/*
 * semdrawd render: single-prompt LCM text-to-image to a PNG file.
 *
 * --noise FILE feeds `init_latent` [1,4,h,w] and `step_noise` [>=N-1,4,h,w]
 * instead of the seeded generator, and --dump FILE writes `final_latent` and
 * the decoded `image` (F32, [1,3,H,W] in about [-1,1]), so a run can be
 * compared tensor for tensor with diffusers fed the same noise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "png_write.h"
#include "semd/checkpoint.h"
#include "semd/safetensors.h"
#include "semd/status.h"
#include "semd/txt2img.h"

static const char *const USAGE =
    "semdrawd render (--model PATH [--config DIR] | --random-weights sd15|lcm-sd15) "
    "[--lora FILE[:SCALE]]... --prompt TEXT [--negative TEXT] [--width W --height H] [--steps N] "
    "[--guidance G] [--seed S] [--clip-skip K] [--decoder vae|taesd] [--taesd PATH] "
    "[--backend cpu] [--noise FILE] [--dump FILE] -o OUT.png";

#define MAX_LORAS 16

typedef struct render_args {
    const char *model, *config, *random, *backend, *decoder, *taesd, *noise, *dump, *out;
    const char *loras[MAX_LORAS];
    int n_loras;
    semd_txt2img_params p;
} render_args;

static int parse_number(const char *opt, const char *v, render_args *a)
{
    char *end;
    if (strcmp(opt, "--guidance") == 0) {
        a->p.guidance = strtof(v, &end);
        return *end || end == v;
    }
    if (strcmp(opt, "--seed") == 0) {
        a->p.seed = strtoull(v, &end, 10);
        return *end || end == v;
    }
    if (strcmp(opt, "--width") == 0) return cli_int(v, 8, 8192, &a->p.width);
    if (strcmp(opt, "--height") == 0) return cli_int(v, 8, 8192, &a->p.height);
    if (strcmp(opt, "--steps") == 0) return cli_int(v, 1, 1000, &a->p.steps);
    if (strcmp(opt, "--clip-skip") == 0) return cli_int(v, 0, 64, &a->p.clip_skip);
    return -1;
}

static const char **string_option(render_args *a, const char *opt)
{
    static const char *const names[] = {"--model", "--config", "--random-weights", "--backend",
                                        "--decoder", "--taesd", "--noise", "--dump", "-o",
                                        "--prompt", "--negative"};
    const char **dst[] = {&a->model, &a->config, &a->random, &a->backend, &a->decoder, &a->taesd,
                          &a->noise, &a->dump, &a->out, &a->p.prompt, &a->p.negative};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(opt, names[i]) == 0) return dst[i];
    return NULL;
}

static int parse_args(int argc, char **argv, render_args *a)
{
    *a = (render_args){.backend = "cpu", .decoder = "vae",
                       .p = {.width = 512, .height = 512, .steps = 4, .guidance = 8.5f}};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = cli_value(argc, argv, &i), **dst = string_option(a, opt);
        if (!v) return cli_usage(USAGE, "%s needs a value", opt);
        if (dst) *dst = v;
        else if (strcmp(opt, "--lora") == 0 && a->n_loras < MAX_LORAS) a->loras[a->n_loras++] = v;
        else if (parse_number(opt, v, a)) return cli_usage(USAGE, "bad option %s %s", opt, v);
    }
    if (!a->model == !a->random) return cli_usage(USAGE, "give --model or --random-weights");
    if (!a->p.prompt || !a->out) return cli_usage(USAGE, "--prompt and -o are required");
    if (strcmp(a->decoder, "vae") != 0 && strcmp(a->decoder, "taesd") != 0)
        return cli_usage(USAGE, "--decoder must be vae or taesd");
    if (strcmp(a->decoder, "taesd") == 0 && !a->taesd)
        return cli_usage(USAGE, "--decoder taesd needs --taesd PATH");
    return 0;
}

/* "FILE[:SCALE]": a trailing ":number" is the multiplier (default 1). */
static int add_lora(semd_checkpoint *ck, const char *spec)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", spec);
    float scale = 1.0f;
    char *colon = strrchr(path, ':'), *end;
    if (colon && colon[1]) {
        float v = strtof(colon + 1, &end);
        if (!*end) scale = v, *colon = '\0';
    }
    return semd_checkpoint_add_lora(ck, path, scale);
}

/* --noise: init_latent [1,4,h,w] and step_noise [k,4,h,w] with k >= steps - 1. */
static int read_noise(const char *path, const semd_txt2img_params *p, float **init, float **steps)
{
    semd_st_file *f;
    int rc = semd_st_open(path, &f);
    if (rc) return rc;
    const uint64_t n = 4ull * (p->height / 8) * (p->width / 8), k = p->steps > 1 ? p->steps - 1 : 0;
    const semd_st_tensor *a = semd_st_find(f, "init_latent"), *b = semd_st_find(f, "step_noise");
    if (!a || a->numel != n)
        rc = semd_error(SEMD_ESHAPE, "%s: needs init_latent with %llu values for %dx%d", path,
                        (unsigned long long)n, p->width, p->height);
    else if (k && (!b || b->numel < k * n))
        rc = semd_error(SEMD_ESHAPE, "%s: needs step_noise with at least %llu x %llu values", path,
                        (unsigned long long)k, (unsigned long long)n);
    if (!rc) {
        *init = malloc(n * sizeof(float));
        *steps = malloc((b ? b->numel : 1) * sizeof(float));
        rc = (!*init || !*steps) ? semd_error(SEMD_ENOMEM, "out of memory") : semd_st_read_f32(a, *init);
        if (!rc && b) rc = semd_st_read_f32(b, *steps);
    }
    semd_st_close(f);
    return rc;
}

static int host_copy(const semd_tensor *t, float **out)
{
    *out = malloc((size_t)semd_tensor_numel(t) * sizeof(float));
    return *out ? semd_tensor_get(t, *out) : semd_error(SEMD_ENOMEM, "out of memory");
}

static int write_outputs(const render_args *a, const semd_txt2img_result *r)
{
    float *img = NULL, *lat = NULL;
    int rc = host_copy(r->image, &img);
    if (!rc) rc = png_write_rgb(a->out, img, (int)r->image->ne[3], (int)r->image->ne[2], PNG_SIGNED_ROUND);
    if (!rc && a->dump) {
        semd_st_writer *w = semd_st_writer_new();
        rc = w ? host_copy(r->latent, &lat) : semd_error(SEMD_ENOMEM, "out of memory");
        if (!rc) rc = semd_st_writer_add(w, "final_latent", SEMD_ST_F32, 4, r->latent->ne, lat);
        if (!rc) rc = semd_st_writer_add(w, "image", SEMD_ST_F32, 4, r->image->ne, img);
        if (!rc) rc = semd_st_writer_save(w, a->dump);
        semd_st_writer_free(w);
    }
    free(img), free(lat);
    return rc;
}

static int load_models(const render_args *a, semd_backend *be, semd_checkpoint *ck, semd_sd_models *m)
{
    int rc = 0;
    for (int i = 0; !rc && i < a->n_loras; i++) rc = add_lora(ck, a->loras[i]);
    if (!rc) rc = semd_checkpoint_tokenizer(ck, &m->tokenizer);
    if (!rc) rc = semd_checkpoint_clip(ck, be, &m->clip);
    if (!rc) rc = semd_checkpoint_unet(ck, be, &m->unet);
    if (!rc) rc = semd_checkpoint_check_loras(ck);
    if (!rc) rc = semd_checkpoint_scheduler(ck, &m->scheduler);
    if (!rc && strcmp(a->decoder, "taesd") == 0) rc = semd_taesd_open(a->taesd, be, SEMD_VAE_DECODER, &m->taesd);
    else if (!rc) rc = semd_checkpoint_vae(ck, be, SEMD_VAE_DECODER, &m->vae);
    return rc;
}

static void free_models(semd_sd_models *m)
{
    semd_tokenizer_free(m->tokenizer);
    semd_clip_free(m->clip);
    semd_unet_free(m->unet);
    semd_lcm_scheduler_free(m->scheduler);
    semd_vae_free(m->vae);
    semd_taesd_free(m->taesd);
}

int cmd_render(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--scene") == 0) return cmd_render_scene(argc, argv);
    render_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status;
    semd_backend *be = NULL;
    semd_checkpoint *ck = NULL;
    semd_sd_models m = {0};
    semd_txt2img_result r = {0};
    float *init = NULL, *steps = NULL;
    int rc = semd_backend_new(a.backend, &be);
    if (!rc) rc = a.random ? semd_checkpoint_open_random(a.random, a.p.seed, &ck)
                           : semd_checkpoint_open(a.model, a.config, &ck);
    if (!rc && a.noise) rc = read_noise(a.noise, &a.p, &init, &steps);
    a.p.init_latent = init;
    a.p.step_noise = steps;
    if (!rc) rc = load_models(&a, be, ck, &m);
    if (!rc) rc = semd_txt2img(&m, &a.p, &r);
    if (!rc) rc = write_outputs(&a, &r);
    semd_txt2img_result_free(&r);
    free_models(&m);
    free(init), free(steps);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
    return rc ? cli_fail("render failed", rc) : 0;
}
