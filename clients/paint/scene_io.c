/*
 * scene_io.c - the document as a scene file (docs/scene-format.md) and back.
 *
 * Saving writes the JSON and, next to it, one 8-bit grey PNG per painted
 * layer mask (and the background image if there is one), named after the
 * JSON file: scene.json, scene_layer0.png, ... Loading goes through the
 * engine's own scene parser (semd/scene.h), so what loads here is exactly
 * what `semdrawd render --scene` accepts, with the stream defaults.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paint.h"
#include "semd/scene.h"
#include "semd/status.h"

static const char *const mask_types[] = {"continuous", "semi-continuous", "discrete"};
static const char *const decoders[] = {"taesd", "vae"};

/* Numbers as people write them: 0.95, not 0.949999988079071. */
static cJSON *num(double v)
{
    return cJSON_CreateNumber(round(v * 1e4) / 1e4);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* "dir/name.json" -> dir "dir/" and stem "name". */
static void split_path(const char *path, char *dir, size_t dir_size, char *stem, size_t stem_size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    snprintf(dir, dir_size, "%.*s", (int)(base - path), path);
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0) n -= 5;
    snprintf(stem, stem_size, "%.*s", (int)n, base);
}

static cJSON *layer_json(const paint_doc *d, int i, const char *dir, const char *stem, char *err, size_t err_size)
{
    const paint_layer *l = d->layers[i];
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddItemToObject(o, "prompt", cJSON_CreateString(l->prompt));
    cJSON_AddItemToObject(o, "negative", cJSON_CreateString(l->negative));
    if (all_zero(l->mask, (size_t)d->width * d->height)) {
        cJSON_AddItemToObject(o, "mask", cJSON_CreateNull());
    } else {
        char name[PAINT_PATH_MAX], file[2 * PAINT_PATH_MAX];
        snprintf(name, sizeof name, "%s_layer%d.png", stem, i);
        snprintf(file, sizeof file, "%s%s", dir, name);
        if (png_save(file, l->mask, d->width, d->height, d->width, 1, err, err_size)) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(o, "mask", cJSON_CreateString(name));
    }
    cJSON_AddItemToObject(o, "mask_std", num(l->mask_std));
    cJSON_AddItemToObject(o, "mask_strength", num(l->mask_strength));
    cJSON_AddItemToObject(o, "prompt_strength", num(l->prompt_strength));
    return o;
}

static void add_settings(cJSON *root, const paint_settings *s)
{
    cJSON_AddItemToObject(root, "profile", cJSON_CreateString(s->profile ? "reference" : "default"));
    cJSON *ts = cJSON_CreateArray();
    for (int i = 0; i < s->n_timesteps; i++) cJSON_AddItemToArray(ts, cJSON_CreateNumber(s->timesteps[i]));
    cJSON_AddItemToObject(root, "timesteps", ts);
    cJSON_AddItemToObject(root, "guidance_scale", num(s->guidance_scale));
    cJSON_AddItemToObject(root, "embedded_guidance_scale", num(s->embedded_guidance_scale));
    cJSON_AddItemToObject(root, "bootstrap_steps", cJSON_CreateNumber(s->bootstrap_steps));
    cJSON_AddItemToObject(root, "bootstrap_mix_steps", num(s->bootstrap_mix_steps));
    if (s->mask_type >= 0 && s->mask_type <= 2)
        cJSON_AddItemToObject(root, "mask_type", cJSON_CreateString(mask_types[s->mask_type]));
    cJSON_AddItemToObject(root, "cover_alpha", num(s->cover_alpha));
    if (s->decoder >= 0 && s->decoder <= 1)
        cJSON_AddItemToObject(root, "decoder", cJSON_CreateString(decoders[s->decoder]));
    cJSON_AddItemToObject(root, "autoflush", cJSON_CreateBool(s->autoflush));
    if (s->suffix) cJSON_AddItemToObject(root, "suffix", cJSON_CreateString(s->suffix));
}

int scene_save(const paint_doc *d, const char *path, char *err, size_t err_size)
{
    char dir[PAINT_PATH_MAX], stem[PAINT_PATH_MAX];
    split_path(path, dir, sizeof dir, stem, sizeof stem);
    if (!*stem) {
        snprintf(err, err_size, "%s: not a file name", path);
        return -1;
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) goto nomem;
    cJSON_AddItemToObject(root, "width", cJSON_CreateNumber(d->width));
    cJSON_AddItemToObject(root, "height", cJSON_CreateNumber(d->height));
    cJSON_AddItemToObject(root, "seed", cJSON_CreateNumber((double)d->seed));
    if (d->settings.from_scene) add_settings(root, &d->settings);

    cJSON *bg = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "background", bg);
    cJSON_AddItemToObject(bg, "prompt", cJSON_CreateString(d->bg_prompt));
    cJSON_AddItemToObject(bg, "negative", cJSON_CreateString(d->bg_negative));
    if (d->bg_image) {
        char name[PAINT_PATH_MAX], file[2 * PAINT_PATH_MAX];
        snprintf(name, sizeof name, "%s_background.png", stem);
        snprintf(file, sizeof file, "%s%s", dir, name);
        if (png_save(file, d->bg_image, d->width, d->height, d->width * 3, 3, err, err_size)) {
            cJSON_Delete(root);
            return -1;
        }
        cJSON_AddItemToObject(bg, "image", cJSON_CreateString(name));
    } else {
        int rgb[3] = {d->bg_color[0], d->bg_color[1], d->bg_color[2]};
        cJSON_AddItemToObject(bg, "color", cJSON_CreateIntArray(rgb, 3));
    }

    cJSON *layers = cJSON_CreateArray();
    cJSON_AddItemToObject(root, "layers", layers);
    for (int i = 0; i < d->n_layers; i++) {
        cJSON *l = layer_json(d, i, dir, stem, err, err_size);
        if (!l) {
            cJSON_Delete(root);
            return -1;
        }
        cJSON_AddItemToArray(layers, l);
    }

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) goto nomem;
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        cJSON_free(text);
        return -1;
    }
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    cJSON_free(text);
    if (fclose(f) != 0 || !ok) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
nomem:
    snprintf(err, err_size, "%s: out of memory", path);
    return -1;
}

/* Copy a string into a fixed buffer; 1 when it had to be cut. */
static int copy_text(char *dst, size_t size, const char *src)
{
    if (!src) src = "";
    snprintf(dst, size, "%s", src);
    return strlen(src) >= size;
}

int scene_load(const char *path, paint_doc *out, char *warn, size_t warn_size, char *err, size_t err_size)
{
    semd_scene *s = NULL;
    if (semd_scene_load(path, &s) || semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM)) {
        snprintf(err, err_size, "%s", semd_last_error());
        semd_scene_free(s);
        return -1;
    }
    if (s->n_layers > PAINT_MAX_LAYERS) { /* the parser allows as many; kept for safety */
        snprintf(err, err_size, "%s: more than %d layers", path, PAINT_MAX_LAYERS);
        semd_scene_free(s);
        return -1;
    }
    paint_doc d;
    doc_init(&d, s->width, s->height, s->seed);
    int cut = 0;
    cut |= copy_text(d.bg_prompt, sizeof d.bg_prompt, s->background.prompt);
    cut |= copy_text(d.bg_negative, sizeof d.bg_negative, s->background.negative);
    memcpy(d.bg_color, s->background.color, 3);
    if (s->background.image) {
        size_t n = (size_t)s->width * s->height * 3;
        d.bg_image = malloc(n);
        if (!d.bg_image) goto nomem;
        memcpy(d.bg_image, s->background.image, n);
    }
    paint_settings *st = &d.settings;
    st->from_scene = 1;
    st->profile = s->profile == SEMD_SCENE_PROFILE_REFERENCE ? SEMDRAW_PROFILE_REFERENCE : SEMDRAW_PROFILE_DEFAULT;
    st->n_timesteps = s->n_timesteps;
    memcpy(st->timesteps, s->timesteps, sizeof st->timesteps);
    st->guidance_scale = s->guidance_scale;
    st->embedded_guidance_scale = s->embedded_guidance_scale;
    st->bootstrap_steps = s->bootstrap_steps;
    st->bootstrap_mix_steps = s->bootstrap_mix_steps;
    st->mask_type = s->mask_type;
    st->cover_alpha = s->cover_alpha;
    st->decoder = s->decoder;
    st->autoflush = s->autoflush;
    if (s->suffix && !(st->suffix = strdup(s->suffix))) goto nomem;

    for (int i = 0; i < s->n_layers; i++) {
        const semd_scene_layer *sl = &s->layers[i];
        paint_layer *l = doc_add_layer(&d, NULL);
        if (!l) goto nomem;
        cut |= copy_text(l->prompt, sizeof l->prompt, sl->prompt);
        cut |= copy_text(l->negative, sizeof l->negative, sl->negative);
        if (sl->mask) memcpy(l->mask, sl->mask, (size_t)s->width * s->height);
        l->mask_std = sl->mask_std, l->mask_strength = sl->mask_strength;
        l->prompt_strength = sl->prompt_strength;
    }
    d.selected = d.n_layers ? 0 : -1;

    /* What the live canvas cannot do: said, kept for saving. */
    warn[0] = '\0';
    size_t w = 0;
#define WARN(...) (w += (size_t)snprintf(warn + SDL_min(w, warn_size - 1), warn_size - SDL_min(w, warn_size - 1), __VA_ARGS__))
    if (s->n_edits) WARN("%d timeline edits ignored; ", s->n_edits);
    if (cut) WARN("long prompts cut to %d bytes; ", PAINT_TEXT_MAX - 1);
    if (st->decoder == SEMD_SCENE_DECODER_VAE) WARN("decoder vae not settable live; ");
    if (st->suffix) WARN("suffix not settable live; ");
    if (st->autoflush) WARN("autoflush not settable live; ");
    if (st->embedded_guidance_scale != 8.5f) WARN("embedded_guidance_scale not settable live; ");
#undef WARN
    semd_scene_free(s);
    *out = d;
    return 0;
nomem:
    snprintf(err, err_size, "%s: out of memory", path);
    doc_free(&d);
    semd_scene_free(s);
    return -1;
}
