/* Scenes sent to the daemon through libsemdraw. */
#include "scene_canvas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void scene_canvas_desc(const semd_scene *s, uint32_t flags, semdraw_canvas_desc *d)
{
    memset(d, 0, sizeof *d);
    d->struct_size = sizeof *d;
    d->width = (uint32_t)s->width, d->height = (uint32_t)s->height;
    d->flags = flags | SEMDRAW_CANVAS_SEED, d->seed = s->seed;
    d->profile = s->profile == SEMD_SCENE_PROFILE_REFERENCE ? SEMDRAW_PROFILE_REFERENCE : SEMDRAW_PROFILE_DEFAULT;
    d->n_timesteps = (uint32_t)s->n_timesteps;
    for (int k = 0; k < s->n_timesteps && k < SEMDRAW_MAX_TIMESTEPS; k++) d->timesteps[k] = (uint32_t)s->timesteps[k];
}

static int send_background(semdraw_canvas *cv, const semd_scene_background *b)
{
    int rc = SEMDRAW_OK;
    const char *prompt = (b->fields & SEMD_BG_PROMPT) ? b->prompt : NULL;
    const char *negative = (b->fields & SEMD_BG_NEGATIVE) ? b->negative : NULL;
    if (prompt || negative || (b->fields & SEMD_BG_IMAGE))
        rc = semdraw_canvas_set_background(cv, prompt, negative, (b->fields & SEMD_BG_IMAGE) ? b->image : NULL, 0);
    if (!rc && (b->fields & SEMD_BG_COLOR))
        rc = semdraw_canvas_set_background_color(cv, (uint32_t)b->color[0] << 16 | (uint32_t)b->color[1] << 8 |
                                                         b->color[2]);
    return rc;
}

/* A scene layer (or a layer edit) as the SDK's layer struct; *zeros is an all-zero mask to free. */
static void to_layer(const semd_scene_layer *l, int w, int h, semdraw_layer *out, uint8_t **zeros)
{
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    *zeros = NULL;
    if (l->fields & SEMD_SCENE_LAYER_PROMPT) out->fields |= SEMDRAW_LAYER_PROMPT, out->prompt = l->prompt;
    if (l->fields & SEMD_SCENE_LAYER_NEGATIVE) out->fields |= SEMDRAW_LAYER_NEGATIVE, out->negative = l->negative;
    if ((l->fields & SEMD_SCENE_LAYER_MASK_STD) && !isnan(l->mask_std))
        out->fields |= SEMDRAW_LAYER_MASK_STD, out->mask_std = l->mask_std;
    if (l->fields & SEMD_SCENE_LAYER_MASK_STRENGTH)
        out->fields |= SEMDRAW_LAYER_MASK_STRENGTH, out->mask_strength = l->mask_strength;
    if ((l->fields & SEMD_SCENE_LAYER_PROMPT_STRENGTH) && !isnan(l->prompt_strength))
        out->fields |= SEMDRAW_LAYER_PROMPT_STRENGTH, out->prompt_strength = l->prompt_strength;
    if (l->fields & SEMD_SCENE_LAYER_MASK) { /* a null mask is an all-zero one */
        out->fields |= SEMDRAW_LAYER_MASK;
        out->mask = l->mask ? l->mask : (*zeros = calloc((size_t)w * h, 1));
    }
}

static int send_layer(semdraw_canvas *cv, int id, const semd_scene_layer *l, int w, int h)
{
    semdraw_layer d;
    uint8_t *zeros;
    to_layer(l, w, h, &d, &zeros);
    if ((d.fields & SEMDRAW_LAYER_MASK) && !d.mask) return SEMDRAW_E_NOMEM;
    int rc = id < 0 ? semdraw_layer_add(cv, &d, NULL) : semdraw_layer_set(cv, (uint32_t)id, &d);
    free(zeros);
    return rc;
}

int scene_canvas_fill(semdraw_canvas *cv, const semd_scene *s)
{
    int rc = s->background.fields ? send_background(cv, &s->background) : SEMDRAW_OK;
    for (int i = 0; !rc && i < s->n_layers; i++) rc = send_layer(cv, -1, &s->layers[i], s->width, s->height);
    semdraw_canvas_params p = {.struct_size = sizeof p};
    if (s->guidance_scale != 1.0f) p.fields |= SEMDRAW_PARAM_GUIDANCE, p.guidance_scale = s->guidance_scale;
    if (s->bootstrap_steps != 1) p.fields |= SEMDRAW_PARAM_BOOTSTRAP_STEPS, p.bootstrap_steps = (uint32_t)s->bootstrap_steps;
    if (s->bootstrap_mix_steps != 1.0f)
        p.fields |= SEMDRAW_PARAM_BOOTSTRAP_MIX, p.bootstrap_mix_steps = s->bootstrap_mix_steps;
    if (s->mask_type >= 0 && s->mask_type != SEMDRAW_MASK_CONTINUOUS)
        p.fields |= SEMDRAW_PARAM_MASK_TYPE, p.mask_type = (uint32_t)s->mask_type;
    if (s->cover_alpha != 0.3f) p.fields |= SEMDRAW_PARAM_COVER_ALPHA, p.cover_alpha = s->cover_alpha;
    if (s->embedded_guidance_scale != 8.5f)
        p.fields |= SEMDRAW_PARAM_EMBEDDED_GUIDANCE, p.embedded_guidance_scale = s->embedded_guidance_scale;
    if (s->autoflush) p.fields |= SEMDRAW_PARAM_AUTOFLUSH, p.autoflush = 1;
    if (!rc && p.fields) rc = semdraw_canvas_set_params(cv, &p);
    return rc;
}

int scene_canvas_edit(semdraw_canvas *cv, const semd_scene *s, const semd_scene_edit *e)
{
    switch (e->kind) {
    case SEMD_EDIT_LAYER: return send_layer(cv, e->layer, &e->changes, s->width, s->height);
    case SEMD_EDIT_ADD_LAYER: return send_layer(cv, -1, &e->changes, s->width, s->height);
    case SEMD_EDIT_BACKGROUND: return send_background(cv, &e->background);
    case SEMD_EDIT_REMOVE: return semdraw_layer_remove(cv, (uint32_t)e->layer);
    case SEMD_EDIT_SEED: {
        semdraw_canvas_params p = {.struct_size = sizeof p, .fields = SEMDRAW_PARAM_SEED, .seed = e->seed};
        return semdraw_canvas_set_params(cv, &p);
    }
    }
    return SEMDRAW_E_INVAL;
}
