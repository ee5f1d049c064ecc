/* Scenes through canvases: settings, background, layers, and the edit timeline. */
#include "semd/scene_run.h"

#include <stdlib.h>
#include <string.h>

#include "semd/status.h"

static void canvas_params(const semd_scene *s, semd_canvas_params *p)
{
    semd_canvas_params_default(p);
    p->width = s->width, p->height = s->height, p->seed = s->seed;
    p->profile = s->profile == SEMD_SCENE_PROFILE_REFERENCE ? SEMD_PROFILE_REFERENCE : SEMD_PROFILE_DEFAULT;
    p->n_timesteps = s->n_timesteps;
    memcpy(p->timesteps, s->timesteps, sizeof s->timesteps);
    p->guidance_scale = s->guidance_scale;
    p->embedded_guidance_scale = s->embedded_guidance_scale;
    p->bootstrap_steps = s->bootstrap_steps;
    p->bootstrap_mix_steps = s->bootstrap_mix_steps;
    p->mask_type = (semd_mask_type)s->mask_type;
    p->cover_alpha = s->cover_alpha;
    p->decoder = s->decoder == SEMD_SCENE_DECODER_VAE ? SEMD_DECODER_VAE : SEMD_DECODER_TAESD;
    p->autoflush = s->autoflush;
    p->suffix = s->suffix;
}

static semd_layer_desc layer_desc(const semd_scene_layer *l)
{
    return (semd_layer_desc){.prompt = l->prompt, .negative = l->negative, .mask = l->mask,
                             .mask_std = l->mask_std, .mask_strength = l->mask_strength,
                             .prompt_strength = l->prompt_strength};
}

/* The background as given: an image, a colour, or just a prompt and negative. */
static int apply_background(semd_canvas *c, const semd_scene *s, const semd_scene_background *b)
{
    const char *prompt = (b->fields & SEMD_BG_PROMPT) ? b->prompt : NULL;
    const char *negative = (b->fields & SEMD_BG_NEGATIVE) ? b->negative : NULL;
    (void)s;
    if (b->fields & SEMD_BG_COLOR) return semd_canvas_set_background_color(c, prompt, negative, b->color);
    return semd_canvas_set_background(c, prompt, negative, (b->fields & SEMD_BG_IMAGE) ? b->image : NULL);
}

int semd_scene_canvas(const semd_scene *s, const semd_sd_models *m, semd_canvas **out)
{
    semd_canvas_params p;
    canvas_params(s, &p);
    int rc = semd_canvas_new(m, &p, out);
    if (!rc && s->background.fields) rc = apply_background(*out, s, &s->background);
    for (int i = 0; !rc && i < s->n_layers; i++) {
        semd_layer_desc d = layer_desc(&s->layers[i]);
        int id;
        rc = semd_canvas_add_layer(*out, &d, &id);
    }
    if (rc) semd_canvas_free(*out), *out = NULL;
    return rc;
}

static int new_seed(semd_canvas *c, const semd_scene *s, const semd_scene_edit *e,
                    const semd_scene_noise *z, int *seed_set)
{
    int rc = semd_canvas_set_seed(c, e->seed);
    if (rc || !z || !z->slots) return rc;
    if (++*seed_set >= z->n_sets)
        return semd_error(SEMD_ESHAPE, "%s: the injected noise holds %d sets; seed edit %d needs one more",
                          s->path, z->n_sets, *seed_set);
    const size_t tn = (size_t)s->n_timesteps * 4 * (s->width / 8) * (s->height / 8);
    return semd_canvas_set_slot_noise(c, z->slots + (size_t)*seed_set * tn);
}

int semd_scene_apply_edit(semd_canvas *c, const semd_scene *s, const semd_scene_edit *e,
                          const semd_scene_noise *noise, int *seed_set)
{
    semd_layer_desc d = layer_desc(&e->changes);
    int id;
    switch (e->kind) {
    case SEMD_EDIT_LAYER: return semd_canvas_update_layer(c, e->layer, &d, e->changes.fields);
    case SEMD_EDIT_REMOVE: return semd_canvas_remove_layer(c, e->layer);
    case SEMD_EDIT_ADD_LAYER: return semd_canvas_add_layer(c, &d, &id);
    case SEMD_EDIT_BACKGROUND: return apply_background(c, s, &e->background);
    case SEMD_EDIT_SEED: return new_seed(c, s, e, noise, seed_set);
    }
    return semd_error(SEMD_EINVAL, "%s: unknown edit kind %d", s->path, (int)e->kind);
}

int semd_scene_stream(const semd_scene *s, const semd_sd_models *m, int frames,
                      const semd_scene_noise *noise, semd_scene_frame_fn fn, void *ctx)
{
    const size_t n = 4 * (size_t)(s->width / 8) * (s->height / 8);
    semd_canvas *c = NULL;
    if (s->autoflush && noise && noise->frames)
        return semd_error(SEMD_EUNSUPPORTED, "%s: autoflush with injected frame noise is not "
                          "supported (flush frames would need their own noise)", s->path);
    int rc = semd_scene_canvas(s, m, &c), next = 0, seed_set = 0;
    if (!rc && noise && noise->slots) rc = semd_canvas_set_slot_noise(c, noise->slots);
    for (int f = 0; !rc && f < frames; f++) {
        for (; !rc && next < s->n_edits && s->edits[next].frame <= f; next++)
            rc = semd_scene_apply_edit(c, s, &s->edits[next], noise, &seed_set);
        if (!rc && noise && noise->frames) rc = semd_canvas_set_frame_noise(c, noise->frames + (size_t)f * n);
        semd_frame fr;
        if (!rc) rc = semd_canvas_step(&c, 1, 1, &fr);
        if (!rc && fn) rc = fn(ctx, f, &fr);
    }
    semd_canvas_free(c);
    return rc;
}
