/*
 * semd/scene.h - scene files (docs/scene-format.md): one SemanticDraw canvas,
 * its background, its layers and a timeline of edits, parsed into plain
 * structs the renderer walks.
 *
 * The parser checks everything the format constrains - unknown keys, types,
 * ranges, enum values, PNG sizes, layer ids of the edits - so a scene that
 * loads is one the renderer can run. Every error is SEMD_EFORMAT (the JSON is
 * wrong), SEMD_EIO (a file cannot be read) or SEMD_ENOMEM, with a message
 * that names the scene file and the JSON path of the problem, e.g.
 *   "scenes/cat.json: layers[2].mask_std must be >= 0 (got -1)".
 *
 * Mode-dependent defaults. Some defaults differ between a streaming render and
 * a single-call render (mask_type, decoder, mask_std, prompt_strength, and
 * per semanticdraw.md S2 the background prompt). The parser leaves those
 * "unset": enum fields SEMD_SCENE_UNSET, float fields NAN (test with isnan),
 * the background prompt NULL. semd_scene_resolve_defaults() fills them in for
 * a mode. Every other default is applied by the parser.
 *
 * Images. Masks are 8-bit [H][W]: the alpha channel when the PNG has one
 * (grey+alpha, RGBA, or a palette with a tRNS chunk), else the grey or red
 * channel; a tRNS colour key on a grey or RGB PNG is ignored. The background
 * image is 8-bit RGB [H][W][3] (alpha dropped; grey PNGs are replicated to
 * RGB). Palette PNGs are expanded; 16-bit PNGs are rejected (save masks as
 * 8-bit: the format is 8-bit alpha, D2). Every PNG must have the canvas size
 * (S8: no resizing).
 */
#ifndef SEMD_SCENE_H
#define SEMD_SCENE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_SCENE_MAX_LAYERS 64    /* live layers at any point (the renderer may allow fewer) */
#define SEMD_SCENE_MAX_TIMESTEPS 16 /* T */
#define SEMD_SCENE_TIMESTEP_GRID 50 /* timesteps index the 50-step LCM grid: 0..49 */
#define SEMD_SCENE_MIN_SIDE 8
#define SEMD_SCENE_MAX_SIDE 4096
#define SEMD_SCENE_MAX_STD 1024.0f  /* = SEMD_MASK_MAX_STD */
#define SEMD_SCENE_MAX_SEED 9007199254740992.0 /* 2^53: every larger JSON number is inexact */

/* An enum field the scene did not set (its default depends on the render mode). */
#define SEMD_SCENE_UNSET (-1)

typedef enum semd_scene_profile {
    SEMD_SCENE_PROFILE_DEFAULT = 0,  /* "default": the paper's intent (D1) */
    SEMD_SCENE_PROFILE_REFERENCE = 1 /* "reference": the published code */
} semd_scene_profile;

/* Values of semd_scene.mask_type are semd_mask_type (semd/mask.h) or SEMD_SCENE_UNSET. */

typedef enum semd_scene_decoder {
    SEMD_SCENE_DECODER_TAESD = 0,
    SEMD_SCENE_DECODER_VAE = 1
} semd_scene_decoder;

typedef enum semd_scene_mode {
    SEMD_SCENE_STREAM = 0, /* render --frames N */
    SEMD_SCENE_SINGLE = 1  /* a single-call render */
} semd_scene_mode;

/*
 * Which keys a layer object carried (semd_scene_layer.fields). The bits equal
 * semd/canvas.h's SEMD_LAYER_* field bits, so an edit's fields can be passed
 * to semd_canvas_update_layer as they are (tests/unit/test_scene.c checks).
 */
enum {
    SEMD_SCENE_LAYER_PROMPT = 1 << 0,
    SEMD_SCENE_LAYER_NEGATIVE = 1 << 1,
    SEMD_SCENE_LAYER_MASK = 1 << 2, /* "mask": a path or null */
    SEMD_SCENE_LAYER_MASK_STD = 1 << 3,
    SEMD_SCENE_LAYER_MASK_STRENGTH = 1 << 4,
    SEMD_SCENE_LAYER_PROMPT_STRENGTH = 1 << 5
};

/*
 * A layer (an entry of "layers", an "add_layer", or the changes of a layer
 * edit). In a layer or add_layer, prompt is set, negative defaults to "" and
 * mask_strength to 1; mask_std and prompt_strength stay NAN until resolved. In
 * a layer edit only the fields flagged in `fields` mean anything (the others
 * are NULL / NAN); a flagged mask with mask == NULL sets an all-zero mask.
 */
typedef struct semd_scene_layer {
    unsigned fields;       /* SEMD_SCENE_LAYER_* bits of the keys present */
    char *prompt;
    char *negative;
    uint8_t *mask;         /* [H][W] alpha, 255 = inside; NULL = all zero */
    char *mask_path;       /* the PNG as resolved against the scene folder, or NULL */
    float mask_std;        /* >= 0, or NAN: stream 8.0, single-call 1.0 */
    float mask_strength;   /* [0, 1] */
    float prompt_strength; /* [0, 1], or NAN: stream 0.95, single-call 1.0 */
} semd_scene_layer;

/* Which keys a background object carried (semd_scene_background.fields). */
enum {
    SEMD_BG_PROMPT = 1 << 0,
    SEMD_BG_NEGATIVE = 1 << 1,
    SEMD_BG_IMAGE = 1 << 2, /* "image": a PNG path */
    SEMD_BG_COLOR = 1 << 3
};

/*
 * The background (the canvas's, or the changes of a background edit). image
 * and color exclude each other; without an image the background is the
 * plain colour (white unless given). In an edit, an image replaces the
 * current image or colour and a colour replaces the current image or colour.
 * prompt NULL = not given: the canvas's is filled in by
 * semd_scene_resolve_defaults (S2; the SEMD_BG_PROMPT bit still tells whether
 * the scene gave one, which the single-call mode needs), an edit's keeps the
 * current prompt. negative is "" when absent from the canvas background, NULL
 * when absent from an edit.
 */
typedef struct semd_scene_background {
    unsigned fields;   /* SEMD_BG_* bits of the keys present */
    char *prompt;
    char *negative;
    uint8_t *image;    /* [H][W][3] RGB, or NULL */
    char *image_path;  /* resolved path, or NULL */
    uint8_t color[3];  /* r, g, b; 255, 255, 255 unless given */
} semd_scene_background;

typedef enum semd_scene_edit_kind {
    SEMD_EDIT_LAYER = 0,      /* change fields of layer `layer` (edit.changes) */
    SEMD_EDIT_REMOVE = 1,     /* remove layer `layer` */
    SEMD_EDIT_ADD_LAYER = 2,  /* add edit.changes on top; it gets id `layer` */
    SEMD_EDIT_BACKGROUND = 3, /* change the background (edit.background) */
    SEMD_EDIT_SEED = 4        /* change the seed to edit.seed */
} semd_scene_edit_kind;

/*
 * One edit, applied before frame `frame` is computed. Layer ids are stable:
 * the initial layers are 0..n_layers-1, each add_layer takes the next unused
 * id, and a removed id is never reused, so after a removal an id is no longer
 * the layer's position in the stack. The parser has checked that every id an
 * edit names is live at that point.
 */
typedef struct semd_scene_edit {
    int frame;                        /* >= 0; the list is sorted by frame */
    semd_scene_edit_kind kind;
    int layer;                        /* LAYER, REMOVE, ADD_LAYER: the layer id */
    semd_scene_layer changes;         /* LAYER, ADD_LAYER */
    semd_scene_background background; /* BACKGROUND */
    uint64_t seed;                    /* SEED */
} semd_scene_edit;

typedef struct semd_scene {
    char *path;                      /* the scene's name in messages */
    int width, height;               /* multiples of 8 in 8..4096 */
    uint64_t seed;
    semd_scene_profile profile;
    int n_timesteps;                 /* T, 1..16 */
    int timesteps[SEMD_SCENE_MAX_TIMESTEPS]; /* strictly increasing, 0..49 */
    float guidance_scale;            /* >= 0 */
    float embedded_guidance_scale;
    int bootstrap_steps;             /* >= 0 */
    float bootstrap_mix_steps;       /* >= 0 */
    int mask_type;                   /* semd_mask_type or SEMD_SCENE_UNSET */
    float cover_alpha;               /* [0, 1] */
    int decoder;                     /* semd_scene_decoder or SEMD_SCENE_UNSET */
    int autoflush;                   /* 0 or 1 */
    char *suffix;                    /* NULL: none */
    semd_scene_background background;
    int n_layers;                    /* initial layers, bottom first; ids 0..n_layers-1 */
    semd_scene_layer *layers;
    int n_edits;
    semd_scene_edit *edits;
} semd_scene;

/* Read and check a scene file; paths inside resolve against its folder. */
int semd_scene_load(const char *path, semd_scene **out);

/*
 * The same from memory: `json` (len bytes) named `name` in messages, with
 * relative paths resolved against `base_dir` (NULL: the current directory).
 */
int semd_scene_parse(const char *json, size_t len, const char *name, const char *base_dir,
                     semd_scene **out);

/* Free a scene and everything it owns; NULL is fine. */
void semd_scene_free(semd_scene *scene);

/*
 * Fill the mode-dependent defaults the scene left unset: mask_type
 * (continuous / discrete), decoder (taesd / vae), mask_std (8.0 / 1.0) and
 * prompt_strength (0.95 / 1.0) of the initial layers and of every add_layer,
 * and the canvas background prompt (S2): "" with an image, else "simple white
 * background" (stream) or "simple white background image" (single-call).
 * Layer edits keep NAN / NULL for the fields they do not change.
 */
int semd_scene_resolve_defaults(semd_scene *scene, semd_scene_mode mode);

/*
 * The PNG readers behind the scene loader, for other callers. Each checks the
 * size against width x height and returns a malloc'd buffer: a mask [H][W]
 * (alpha, else grey or red, as above) or an RGB image [H][W][3], or NULL on
 * error. Errors (SEMD_EIO, SEMD_EFORMAT, SEMD_ENOMEM) name `path`.
 */
int semd_png_read_mask(const char *path, int width, int height, uint8_t **out);
int semd_png_read_rgb(const char *path, int width, int height, uint8_t **out);

#ifdef __cplusplus
}
#endif
#endif
