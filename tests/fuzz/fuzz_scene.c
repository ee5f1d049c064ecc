/*
 * fuzz_scene: the scene parser on arbitrary JSON, then the mode defaults of
 * both render modes. Relative PNG paths resolve against tests/data/scenes, so
 * "masks/<name>.png" (64x48 and 48x64 masks) and "../scene_parse/<name>.png"
 * (16x8 PNGs of every colour type, 16-bit and not-a-PNG ones) reach the PNG
 * readers with real files, as the seed corpus spells them.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "semd/mask.h"
#include "semd/scene.h"

#define SCENE_DIR SEMD_FUZZ_DATA "/scenes"

/* Read every byte of a buffer the parser handed out, so that ASan checks its size. The sum goes to
 * a volatile: otherwise the compiler drops the reads, and the checks with them. */
static void touch(const uint8_t *p, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += p[i];
    volatile unsigned sink = sum;
    (void)sink;
}

/* What semd/scene.h promises of a scene that loaded. */
static void check_layer(const semd_scene *s, const semd_scene_layer *L, int resolved)
{
    if (L->mask_path && !L->mask) abort(); /* a path that loaded has its pixels */
    if (resolved && (isnan(L->mask_std) || isnan(L->prompt_strength))) abort();
    if (L->mask) touch(L->mask, (size_t)s->width * (size_t)s->height);
}

static void check_scene(const semd_scene *s)
{
    if (s->width < SEMD_SCENE_MIN_SIDE || s->width > SEMD_SCENE_MAX_SIDE || s->width % 8 ||
        s->height < SEMD_SCENE_MIN_SIDE || s->height > SEMD_SCENE_MAX_SIDE || s->height % 8)
        abort();
    if (s->n_timesteps < 1 || s->n_timesteps > SEMD_SCENE_MAX_TIMESTEPS) abort();
    for (int i = 0; i < s->n_timesteps; i++)
        if (s->timesteps[i] < 0 || s->timesteps[i] >= SEMD_SCENE_TIMESTEP_GRID ||
            (i && s->timesteps[i] <= s->timesteps[i - 1]))
            abort();
    if (s->mask_type == SEMD_SCENE_UNSET || s->decoder == SEMD_SCENE_UNSET || !s->background.prompt) abort();
    if (s->n_layers < 0 || s->n_layers > SEMD_SCENE_MAX_LAYERS) abort();
    for (int i = 0; i < s->n_layers; i++) {
        if (!s->layers[i].prompt || !s->layers[i].negative) abort();
        check_layer(s, &s->layers[i], 1);
    }
    if (s->background.image) touch(s->background.image, (size_t)s->width * (size_t)s->height * 3);
    for (int i = 0; i < s->n_edits; i++) {
        const semd_scene_edit *e = &s->edits[i];
        if (e->frame < 0 || (i && e->frame < s->edits[i - 1].frame)) abort();
        if (e->kind == SEMD_EDIT_LAYER || e->kind == SEMD_EDIT_ADD_LAYER)
            check_layer(s, &e->changes, e->kind == SEMD_EDIT_ADD_LAYER);
    }
}

/* Parse, resolve for `mode`, check; a scene that fails to parse fails the same way in both modes. */
static int run(const uint8_t *data, size_t size, semd_scene_mode mode)
{
    semd_scene *s = NULL;
    semd_clear_error();
    int rc = semd_scene_parse((const char *)data, size, "fuzz.json", SCENE_DIR, &s);
    fuzz_check_status("semd_scene_parse", rc);
    if (rc) {
        if (s) abort();
        return rc;
    }
    semd_clear_error();
    rc = semd_scene_resolve_defaults(s, mode);
    fuzz_check_status("semd_scene_resolve_defaults", rc);
    if (!rc) check_scene(s);
    semd_scene_free(s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes a length, not a string: pass the bytes as they are (no terminator). */
    if (run(data, size, SEMD_SCENE_STREAM) == 0) run(data, size, SEMD_SCENE_SINGLE);
    return 0;
}
