/*
 * semdrawd render --scene: a SemanticDraw scene (docs/scene-format.md). With
 * --frames N the stream runs N frames on a canvas, applying the scene's edit
 * timeline at frame boundaries, and OUT is a folder of numbered PNGs; without
 * it the single-call mode renders one image (OUT is a PNG file).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "png_write.h"
#include "semd/canvas.h"
#include "semd/checkpoint.h"
#include "semd/safetensors.h"
#include "semd/scene_run.h"
#include "semd/status.h"

static const char *const USAGE =
    "semdrawd render --model PATH [--config DIR] --scene SCENE.json [--frames N] [--taesd PATH] "
    "[--backend cpu] [--noise FILE] [--dump FILE] -o OUT_DIR|OUT.png";

typedef struct scene_args {
    const char *model, *config, *scene, *taesd, *backend, *noise, *dump, *out;
    int frames;
} scene_args;

static int parse_args(int argc, char **argv, scene_args *a)
{
    *a = (scene_args){.backend = "cpu"};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = cli_value(argc, argv, &i);
        if (!v) return cli_usage(USAGE, "%s needs a value", opt);
        if (strcmp(opt, "--model") == 0) a->model = v;
        else if (strcmp(opt, "--config") == 0) a->config = v;
        else if (strcmp(opt, "--scene") == 0) a->scene = v;
        else if (strcmp(opt, "--taesd") == 0) a->taesd = v;
        else if (strcmp(opt, "--backend") == 0) a->backend = v;
        else if (strcmp(opt, "--noise") == 0) a->noise = v;
        else if (strcmp(opt, "--dump") == 0) a->dump = v;
        else if (strcmp(opt, "-o") == 0) a->out = v;
        else if (strcmp(opt, "--frames") == 0 && !cli_int(v, 1, 100000, &a->frames)) continue;
        else return cli_usage(USAGE, "bad option %s %s", opt, v);
    }
    if (!a->model || !a->scene || !a->out) return cli_usage(USAGE, "--model, --scene and -o are required");
    return 0;
}

/* ---- models ---- */

static int load_models(const scene_args *a, const semd_scene *s, semd_backend *be,
                       semd_checkpoint *ck, semd_sd_models *m)
{
    int rc = semd_checkpoint_tokenizer(ck, &m->tokenizer);
    if (!rc) rc = semd_checkpoint_clip(ck, be, &m->clip);
    if (!rc) rc = semd_checkpoint_unet(ck, be, &m->unet);
    if (!rc) rc = semd_checkpoint_scheduler(ck, &m->scheduler);
    if (rc) return rc;
    if (s->decoder == SEMD_SCENE_DECODER_VAE)
        return semd_checkpoint_vae(ck, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &m->vae);
    if (!a->taesd) return semd_error(SEMD_EINVAL, "%s: the scene decodes with TAESD: give --taesd PATH", s->path);
    return semd_taesd_open(a->taesd, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &m->taesd);
}

static void free_models(semd_sd_models *m)
{
    semd_tokenizer_free(m->tokenizer), semd_clip_free(m->clip), semd_unet_free(m->unet);
    semd_lcm_scheduler_free(m->scheduler), semd_vae_free(m->vae), semd_taesd_free(m->taesd);
}

/* ---- injected noise ---- */

typedef struct noise {
    semd_st_file *f;
    float *slots, *frames; /* [S][T][n], [F][n] */
    int n_sets;
} noise;

static int read_noise(const char *path, const semd_scene *s, int frames, noise *z)
{
    const uint64_t n = 4ull * (s->width / 8) * (s->height / 8), tn = n * (uint64_t)s->n_timesteps;
    int rc = semd_st_open(path, &z->f);
    if (rc) return rc;
    const semd_st_tensor *a = semd_st_find(z->f, "init_noise"), *b = semd_st_find(z->f, "frame_noise");
    if (!a || a->numel % tn || !a->numel)
        return semd_error(SEMD_ESHAPE, "%s: needs init_noise [T,4,h,w] or [S,T,4,h,w] with T = %d "
                          "and a %dx%d latent", path, s->n_timesteps, s->height / 8, s->width / 8);
    if (!b || b->numel < (uint64_t)frames * n)
        return semd_error(SEMD_ESHAPE, "%s: needs frame_noise with at least %d x 4 x %d x %d values",
                          path, frames, s->height / 8, s->width / 8);
    z->n_sets = (int)(a->numel / tn);
    z->slots = malloc(a->numel * sizeof(float));
    z->frames = malloc(b->numel * sizeof(float));
    if (!z->slots || !z->frames) return semd_error(SEMD_ENOMEM, "out of memory");
    rc = semd_st_read_f32(a, z->slots);
    return rc ? rc : semd_st_read_f32(b, z->frames);
}

static void free_noise(noise *z)
{
    semd_st_close(z->f);
    free(z->slots), free(z->frames);
}

/* ---- output ---- */

typedef struct outputs {
    float *latents, *images; /* [F][n], [F][3HW] for --dump */
} outputs;

static int write_frame(const scene_args *a, const semd_scene *s, int f, const semd_frame *fr, outputs *o)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/frame_%04d.png", a->out, f);
    int rc = png_write_rgb(path, fr->image, s->width, s->height, PNG_UNIT_TRUNCATE);
    const size_t n = 4 * (size_t)(s->width / 8) * (s->height / 8), img = 3 * (size_t)s->width * s->height;
    if (o->latents) memcpy(o->latents + (size_t)f * n, fr->latent, n * sizeof(float));
    if (o->images) memcpy(o->images + (size_t)f * img, fr->image, img * sizeof(float));
    return rc;
}

static int write_dump(const char *path, const semd_scene *s, int frames, const outputs *o)
{
    semd_st_writer *w = semd_st_writer_new();
    int64_t ls[4] = {frames, 4, s->height / 8, s->width / 8}, is[4] = {frames, 3, s->height, s->width};
    int rc = w ? semd_st_writer_add(w, "frame_latents", SEMD_ST_F32, 4, ls, o->latents)
               : semd_error(SEMD_ENOMEM, "out of memory");
    if (!rc) rc = semd_st_writer_add(w, "frames", SEMD_ST_F32, 4, is, o->images);
    if (!rc) rc = semd_st_writer_save(w, path);
    semd_st_writer_free(w);
    return rc;
}

typedef struct sink {
    const scene_args *a;
    const semd_scene *s;
    outputs o;
} sink;

static int on_frame(void *ctx, int f, const semd_frame *fr)
{
    sink *k = ctx;
    return write_frame(k->a, k->s, f, fr, &k->o);
}

static int stream(const scene_args *a, const semd_scene *s, const semd_sd_models *m, const noise *z)
{
    sink k = {.a = a, .s = s};
    const size_t n = 4 * (size_t)(s->width / 8) * (s->height / 8), img = 3 * (size_t)s->width * s->height;
    int rc = 0;
    if (a->dump) {
        k.o.latents = malloc((size_t)a->frames * n * sizeof(float));
        k.o.images = malloc((size_t)a->frames * img * sizeof(float));
        if (!k.o.latents || !k.o.images) rc = semd_error(SEMD_ENOMEM, "out of memory");
    }
    semd_scene_noise sn = {.slots = z->slots, .n_sets = z->n_sets, .frames = z->frames};
    if (!rc) rc = semd_scene_stream(s, m, a->frames, &sn, on_frame, &k);
    if (!rc && a->dump) rc = write_dump(a->dump, s, a->frames, &k.o);
    free(k.o.latents), free(k.o.images);
    return rc;
}

/* ---- the single-call mode ---- */

static const float *noise_tensor(const semd_st_file *f, const char *name, uint64_t want, float **buf, int *rc)
{
    const semd_st_tensor *t = semd_st_find(f, name);
    if (*rc || !t) return NULL;
    if (t->numel < want) {
        *rc = semd_error(SEMD_ESHAPE, "%s: '%s' has %llu values, needs %llu", semd_st_path(f), name,
                         (unsigned long long)t->numel, (unsigned long long)want);
        return NULL;
    }
    if (!(*buf = malloc(t->numel * sizeof(float)))) *rc = semd_error(SEMD_ENOMEM, "out of memory");
    if (!*rc) *rc = semd_st_read_f32(t, *buf);
    return *rc ? NULL : *buf;
}

static int single(const scene_args *a, const semd_scene *s, const semd_sd_models *m)
{
    const uint64_t n = 4ull * (s->width / 8) * (s->height / 8);
    semd_st_file *f = NULL;
    float *b1 = NULL, *b2 = NULL, *b3 = NULL;
    semd_single_noise z = {0};
    semd_single_result r = {0};
    int rc = a->noise ? semd_st_open(a->noise, &f) : 0;
    if (f) {
        z.init_latent = noise_tensor(f, "init_latent", n, &b1, &rc);
        z.boot_noise = noise_tensor(f, "boot_noise", n * (uint64_t)s->bootstrap_steps, &b2, &rc);
        z.step_noise = noise_tensor(f, "step_noise", n * (uint64_t)(s->n_timesteps - 1), &b3, &rc);
    }
    if (!rc) rc = semd_scene_single(s, m, &z, &r);
    if (!rc) rc = png_write_rgb(a->out, r.image, s->width, s->height, PNG_UNIT_TRUNCATE);
    if (!rc && a->dump) {
        semd_st_writer *w = semd_st_writer_new();
        int64_t ls[4] = {1, 4, s->height / 8, s->width / 8}, is[4] = {1, 3, s->height, s->width};
        rc = w ? semd_st_writer_add(w, "final_latent", SEMD_ST_F32, 4, ls, r.latent) : semd_error(SEMD_ENOMEM, "out of memory");
        if (!rc) rc = semd_st_writer_add(w, "image", SEMD_ST_F32, 4, is, r.image);
        if (!rc) rc = semd_st_writer_save(w, a->dump);
        semd_st_writer_free(w);
    }
    free(r.latent), free(r.image), free(b1), free(b2), free(b3);
    semd_st_close(f);
    return rc;
}

int cmd_render_scene(int argc, char **argv)
{
    scene_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status;
    semd_scene *s = NULL;
    semd_backend *be = NULL;
    semd_checkpoint *ck = NULL;
    semd_sd_models m = {0};
    noise z = {0};
    int rc = semd_scene_load(a.scene, &s);
    if (!rc) rc = semd_scene_resolve_defaults(s, a.frames ? SEMD_SCENE_STREAM : SEMD_SCENE_SINGLE);
    if (!rc && a.frames && mkdir(a.out, 0755) != 0 && errno != EEXIST)
        rc = semd_error(SEMD_EIO, "%s: cannot create the output folder: %s", a.out, strerror(errno));
    if (!rc && a.noise && a.frames) rc = read_noise(a.noise, s, a.frames, &z);
    if (!rc) rc = semd_backend_new(a.backend, &be);
    if (!rc) rc = semd_checkpoint_open(a.model, a.config, &ck);
    if (!rc) rc = load_models(&a, s, be, ck, &m);
    if (!rc) rc = a.frames ? stream(&a, s, &m, &z) : single(&a, s, &m);
    free_models(&m);
    free_noise(&z);
    semd_checkpoint_free(ck);
    semd_backend_free(be);
    semd_scene_free(s);
    return rc ? cli_fail("render failed", rc) : 0;
}
