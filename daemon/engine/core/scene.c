/* Scene files (docs/scene-format.md): JSON + PNG masks into semd_scene. */
#include "semd/scene.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "semd/mask.h"
#include "semd/status.h"

_Static_assert((int)SEMD_SCENE_MAX_STD == (int)SEMD_MASK_MAX_STD, "scene and mask std limits differ");

#define PATH_BUF 256 /* JSON paths: "edits[12345].add_layer.prompt_strength" */

/* ---- PNG ---------------------------------------------------------------------- */

typedef struct png_err_ctx {
    char msg[200];
} png_err_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_err_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/*
 * Decode an 8-bit PNG of exactly width x height to 1-4 channels (grey, grey +
 * alpha, RGB, RGBA), expanding palettes (their tRNS to alpha) and low-depth
 * grey. Returns the pixels [H][W][*channels].
 */
static int png_decode(const char *path, int width, int height, uint8_t **out, int *channels)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return semd_error(SEMD_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(f);
        return semd_error(SEMD_EFORMAT, "%s: not a PNG file", path);
    }
    png_err_ctx ctx = {""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(pix);
        free(rows);
        return semd_error(SEMD_EFORMAT, "%s: corrupt PNG: %s", path, ctx.msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    /*
     * Only IHDR, PLTE, tRNS, IDAT and IEND matter here; skip every other chunk
     * unread. libpng allocates a text or ICC chunk's claimed length before it
     * reads it, so a 100-byte file claiming a 1.7 GB zTXt made it take 1.7 GB
     * (found by tests/fuzz/fuzz_png); skipped chunks are read through a small
     * buffer, and compressed ones are never inflated.
     */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
    int rc = SEMD_OK;
    if (depth == 16)
        rc = semd_error(SEMD_EFORMAT, "%s: 16-bit PNGs are not supported (save it as 8-bit)", path);
    else if (w != (png_uint_32)width || h != (png_uint_32)height)
        rc = semd_error(SEMD_EFORMAT, "%s is %ux%u, the canvas is %dx%d", path, (unsigned)w,
                        (unsigned)h, width, height);
    if (rc) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return rc;
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
        /* A palette's transparency is its alpha; on grey or RGB a tRNS colour key is ignored. */
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    }
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)ch * (size_t)width) png_error(png, "unexpected row size");
    pix = malloc(stride * (size_t)height);
    rows = malloc((size_t)height * sizeof *rows);
    if (!pix || !rows) png_error(png, "out of memory");
    for (int y = 0; y < height; y++) rows[y] = pix + (size_t)y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(rows);
    *out = pix;
    *channels = ch;
    return SEMD_OK;
}

int semd_png_read_mask(const char *path, int width, int height, uint8_t **out)
{
    *out = NULL;
    uint8_t *pix = NULL;
    int ch = 0, rc = png_decode(path, width, height, &pix, &ch);
    if (rc) return rc;
    size_t n = (size_t)width * (size_t)height;
    uint8_t *m = malloc(n);
    if (!m) {
        free(pix);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    /* Alpha when there is one (the last channel of GA and RGBA), else grey or red. */
    int src = (ch == 2 || ch == 4) ? ch - 1 : 0;
    for (size_t j = 0; j < n; j++) m[j] = pix[j * (size_t)ch + (size_t)src];
    free(pix);
    *out = m;
    return SEMD_OK;
}

int semd_png_read_rgb(const char *path, int width, int height, uint8_t **out)
{
    *out = NULL;
    uint8_t *pix = NULL;
    int ch = 0, rc = png_decode(path, width, height, &pix, &ch);
    if (rc) return rc;
    size_t n = (size_t)width * (size_t)height;
    uint8_t *rgb = malloc(3 * n);
    if (!rgb) {
        free(pix);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    for (size_t j = 0; j < n; j++)
        for (int c = 0; c < 3; c++)
            rgb[3 * j + (size_t)c] = pix[j * (size_t)ch + (size_t)(ch >= 3 ? c : 0)];
    free(pix);
    *out = rgb;
    return SEMD_OK;
}

/* ---- the parser's context and error reporting ---------------------------------- */

typedef struct parser {
    const char *name;     /* the scene in messages */
    const char *base_dir; /* relative paths resolve here; NULL: the working directory */
    int width, height;
} parser;

/* SEMD_EFORMAT with "<scene>: <json path> <what>". */
static int bad(const parser *ps, const char *jpath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const parser *ps, const char *jpath, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return semd_error(SEMD_EFORMAT, "%s: %s %s", ps->name, jpath, what);
}

/* "parent.key", or "key" at the top level. */
static const char *join(char *buf, const char *parent, const char *key)
{
    snprintf(buf, PATH_BUF, "%s%s%s", parent, *parent ? "." : "", key);
    return buf;
}

static const char *index_path(char *buf, const char *parent, int i)
{
    snprintf(buf, PATH_BUF, "%s[%d]", parent, i);
    return buf;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int oom(const parser *ps) { return semd_error(SEMD_ENOMEM, "%s: out of memory", ps->name); }

/*
 * Unknown keys are errors (a typo must not fall back to a default), and so
 * are duplicates, which cJSON would silently resolve to the first.
 */
static int check_keys(const parser *ps, const cJSON *obj, const char *jpath,
                      const char *const *allowed)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++) known = strcmp(*a, it->string) == 0;
        char kp[PATH_BUF];
        if (!known) return bad(ps, join(kp, jpath, it->string), "is not a known key");
        for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, it->string) == 0)
                return bad(ps, join(kp, jpath, it->string), "appears twice");
    }
    return SEMD_OK;
}

static const char *type_name(const cJSON *it)
{
    if (cJSON_IsNull(it)) return "null";
    if (cJSON_IsBool(it)) return "a boolean";
    if (cJSON_IsNumber(it)) return "a number";
    if (cJSON_IsString(it)) return "a string";
    if (cJSON_IsArray(it)) return "a list";
    return "an object";
}

/* ---- typed values --------------------------------------------------------------- */

static int get_number(const parser *ps, const cJSON *it, const char *jpath, double *out)
{
    if (!cJSON_IsNumber(it)) return bad(ps, jpath, "must be a number (got %s)", type_name(it));
    if (!isfinite(it->valuedouble)) return bad(ps, jpath, "must be a finite number");
    *out = it->valuedouble;
    return SEMD_OK;
}

/* An integer in [lo, hi] (doubles: seeds go up to 2^53). */
static int get_integer(const parser *ps, const cJSON *it, const char *jpath, double lo, double hi,
                       double *out)
{
    int rc = get_number(ps, it, jpath, out);
    if (rc) return rc;
    if (*out != floor(*out)) return bad(ps, jpath, "must be an integer (got %g)", *out);
    if (*out < lo && hi >= (double)INT_MAX) return bad(ps, jpath, "must be >= %.0f (got %.0f)", lo, *out);
    if (*out < lo || *out > hi) return bad(ps, jpath, "must be in %.0f..%.0f (got %.0f)", lo, hi, *out);
    return SEMD_OK;
}

static int get_int(const parser *ps, const cJSON *it, const char *jpath, int lo, int hi, int *out)
{
    double v = 0;
    int rc = get_integer(ps, it, jpath, lo, hi, &v);
    if (!rc) *out = (int)v;
    return rc;
}

/* A number >= lo, and <= hi unless hi is INFINITY. */
static int get_float(const parser *ps, const cJSON *it, const char *jpath, double lo, double hi,
                     float *out)
{
    double v = 0;
    int rc = get_number(ps, it, jpath, &v);
    if (rc) return rc;
    if (v < lo || v > hi) {
        if (isinf(hi)) return bad(ps, jpath, "must be >= %g (got %g)", lo, v);
        if (isinf(lo)) return bad(ps, jpath, "must be at most %g (got %g)", hi, v);
        return bad(ps, jpath, "must be in [%g, %g] (got %g)", lo, hi, v);
    }
    *out = (float)v;
    return SEMD_OK;
}

static int get_seed(const parser *ps, const cJSON *it, const char *jpath, uint64_t *out)
{
    double v = 0;
    int rc = get_integer(ps, it, jpath, 0, SEMD_SCENE_MAX_SEED, &v);
    if (!rc) *out = (uint64_t)v;
    return rc;
}

static int get_string(const parser *ps, const cJSON *it, const char *jpath, char **out)
{
    if (!cJSON_IsString(it)) return bad(ps, jpath, "must be a string (got %s)", type_name(it));
    free(*out);
    if (!(*out = dup_str(it->valuestring))) return oom(ps);
    return SEMD_OK;
}

static int get_enum(const parser *ps, const cJSON *it, const char *jpath,
                    const char *const *names, int *out)
{
    if (!cJSON_IsString(it)) return bad(ps, jpath, "must be a string (got %s)", type_name(it));
    char list[200] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], it->valuestring) == 0) {
            *out = i;
            return SEMD_OK;
        }
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", names[i]);
    }
    return bad(ps, jpath, "must be one of %s (got \"%.64s\")", list, it->valuestring);
}

/* A PNG path, resolved against the scene's folder. */
static int get_path(const parser *ps, const cJSON *it, const char *jpath, char **out)
{
    if (!cJSON_IsString(it)) return bad(ps, jpath, "must be a PNG path (got %s)", type_name(it));
    const char *p = it->valuestring;
    if (!*p) return bad(ps, jpath, "must be a PNG path (got \"\")");
    int rel = p[0] != '/' && ps->base_dir && *ps->base_dir;
    size_t n = strlen(p) + (rel ? strlen(ps->base_dir) + 1 : 0) + 1;
    free(*out);
    if (!(*out = malloc(n))) return oom(ps);
    snprintf(*out, n, "%s%s%s", rel ? ps->base_dir : "", rel ? "/" : "", p);
    return SEMD_OK;
}

/* Put the scene and JSON path in front of a PNG reader's message. */
static int png_failed(const parser *ps, const char *jpath, int rc)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", semd_last_error());
    return semd_error(rc, "%s: %s: %s", ps->name, jpath, msg);
}

/* ---- layers ---------------------------------------------------------------------- */

static void layer_free(semd_scene_layer *L)
{
    free(L->prompt);
    free(L->negative);
    free(L->mask);
    free(L->mask_path);
}

static void layer_init(semd_scene_layer *L)
{
    memset(L, 0, sizeof *L);
    L->mask_std = NAN;
    L->mask_strength = NAN;
    L->prompt_strength = NAN;
}

static const char *const LAYER_KEYS[] = {"prompt",        "negative",        "mask", "mask_std",
                                         "mask_strength", "prompt_strength", NULL};

/*
 * The layer fields of obj into L. A new layer (an entry of "layers" or an
 * add_layer) needs a prompt and gets the mode-independent defaults; a change
 * sets only what it names.
 */
static int parse_layer_fields(const parser *ps, const cJSON *obj, const char *jpath, int is_new,
                              semd_scene_layer *L)
{
    char kp[PATH_BUF];
    const cJSON *it;
    int rc = SEMD_OK;
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "prompt"))) {
        L->fields |= SEMD_SCENE_LAYER_PROMPT;
        if ((rc = get_string(ps, it, join(kp, jpath, "prompt"), &L->prompt))) return rc;
    } else if (is_new) {
        return bad(ps, jpath, "needs a \"prompt\"");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "negative"))) {
        L->fields |= SEMD_SCENE_LAYER_NEGATIVE;
        if ((rc = get_string(ps, it, join(kp, jpath, "negative"), &L->negative))) return rc;
    } else if (is_new && !(L->negative = dup_str(""))) {
        return oom(ps);
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "mask"))) {
        L->fields |= SEMD_SCENE_LAYER_MASK;
        join(kp, jpath, "mask");
        if (!cJSON_IsNull(it)) {
            if ((rc = get_path(ps, it, kp, &L->mask_path))) return rc;
            if ((rc = semd_png_read_mask(L->mask_path, ps->width, ps->height, &L->mask)))
                return png_failed(ps, kp, rc);
        }
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "mask_std"))) {
        L->fields |= SEMD_SCENE_LAYER_MASK_STD;
        rc = get_float(ps, it, join(kp, jpath, "mask_std"), 0, INFINITY, &L->mask_std);
        if (!rc && L->mask_std > SEMD_SCENE_MAX_STD)
            rc = bad(ps, kp, "must be at most %g pixels (got %g)", (double)SEMD_SCENE_MAX_STD,
                     (double)L->mask_std);
        if (rc) return rc;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "mask_strength"))) {
        L->fields |= SEMD_SCENE_LAYER_MASK_STRENGTH;
        if ((rc = get_float(ps, it, join(kp, jpath, "mask_strength"), 0, 1, &L->mask_strength)))
            return rc;
    } else if (is_new) {
        L->mask_strength = 1.0f;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "prompt_strength"))) {
        L->fields |= SEMD_SCENE_LAYER_PROMPT_STRENGTH;
        if ((rc = get_float(ps, it, join(kp, jpath, "prompt_strength"), 0, 1, &L->prompt_strength)))
            return rc;
    }
    return SEMD_OK;
}

/* A whole layer object ("layers" entry or add_layer). */
static int parse_layer(const parser *ps, const cJSON *obj, const char *jpath, semd_scene_layer *L)
{
    if (!cJSON_IsObject(obj)) return bad(ps, jpath, "must be an object (got %s)", type_name(obj));
    int rc = check_keys(ps, obj, jpath, LAYER_KEYS);
    return rc ? rc : parse_layer_fields(ps, obj, jpath, 1, L);
}

/* ---- background -------------------------------------------------------------------- */

static void background_free(semd_scene_background *bg)
{
    free(bg->prompt);
    free(bg->negative);
    free(bg->image);
    free(bg->image_path);
}

static void background_init(semd_scene_background *bg)
{
    memset(bg, 0, sizeof *bg);
    bg->color[0] = bg->color[1] = bg->color[2] = 255;
}

static const char *const BACKGROUND_KEYS[] = {"prompt", "negative", "image", "color", NULL};

static int parse_color(const parser *ps, const cJSON *it, const char *jpath, uint8_t rgb[3])
{
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 3)
        return bad(ps, jpath, "must be a list [r, g, b] of three integers 0..255");
    char ip[PATH_BUF];
    for (int c = 0; c < 3; c++) {
        int v = 0;
        int rc = get_int(ps, cJSON_GetArrayItem(it, c), index_path(ip, jpath, c), 0, 255, &v);
        if (rc) return rc;
        rgb[c] = (uint8_t)v;
    }
    return SEMD_OK;
}

static int parse_background(const parser *ps, const cJSON *obj, const char *jpath, int is_edit,
                            semd_scene_background *bg)
{
    if (!cJSON_IsObject(obj)) return bad(ps, jpath, "must be an object (got %s)", type_name(obj));
    int rc = check_keys(ps, obj, jpath, BACKGROUND_KEYS);
    if (rc) return rc;
    char kp[PATH_BUF];
    const cJSON *it;
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "prompt"))) {
        bg->fields |= SEMD_BG_PROMPT;
        if ((rc = get_string(ps, it, join(kp, jpath, "prompt"), &bg->prompt))) return rc;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(obj, "negative"))) {
        bg->fields |= SEMD_BG_NEGATIVE;
        if ((rc = get_string(ps, it, join(kp, jpath, "negative"), &bg->negative))) return rc;
    } else if (!is_edit && !(bg->negative = dup_str(""))) {
        return oom(ps);
    }
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(obj, "image");
    const cJSON *color = cJSON_GetObjectItemCaseSensitive(obj, "color");
    if (image && color) return bad(ps, jpath, "has both \"image\" and \"color\"; give one");
    if (image) {
        bg->fields |= SEMD_BG_IMAGE;
        join(kp, jpath, "image");
        if ((rc = get_path(ps, image, kp, &bg->image_path))) return rc;
        if ((rc = semd_png_read_rgb(bg->image_path, ps->width, ps->height, &bg->image)))
            return png_failed(ps, kp, rc);
    }
    if (color) {
        bg->fields |= SEMD_BG_COLOR;
        if ((rc = parse_color(ps, color, join(kp, jpath, "color"), bg->color))) return rc;
    }
    if (is_edit && !bg->fields) return bad(ps, jpath, "changes nothing");
    return SEMD_OK;
}

/* ---- edits -------------------------------------------------------------------------- */

/* Layer ids through the timeline: which exist, and which edit removed one. */
typedef struct id_table {
    int n;        /* ids 0..n-1 were created */
    int live;     /* how many are live */
    int *removed; /* [SEMD_SCENE_MAX_LAYERS + edits] the removing edit + 1, or 0 */
} id_table;

static int check_live(const parser *ps, const id_table *ids, int id, int frame, const char *jpath)
{
    if (id >= ids->n)
        return bad(ps, jpath, "names layer %d, which does not exist at frame %d (never created)", id,
                   frame);
    if (ids->removed[id])
        return bad(ps, jpath, "names layer %d, which does not exist at frame %d (removed by edits[%d])",
                   id, frame, ids->removed[id] - 1);
    return SEMD_OK;
}

static const char *const EDIT_FORMS[] = {"layer", "add_layer", "background", "seed", NULL};

static int parse_layer_edit(const parser *ps, const cJSON *obj, const char *jpath, id_table *ids,
                            int index, semd_scene_edit *e)
{
    static const char *const keys[] = {"frame",    "layer",         "remove",
                                       "prompt",   "negative",      "mask",
                                       "mask_std", "mask_strength", "prompt_strength",
                                       NULL};
    char kp[PATH_BUF];
    int rc = check_keys(ps, obj, jpath, keys);
    if (!rc) rc = get_int(ps, cJSON_GetObjectItemCaseSensitive(obj, "layer"), join(kp, jpath, "layer"),
                          0, INT_MAX, &e->layer);
    if (!rc) rc = check_live(ps, ids, e->layer, e->frame, kp);
    if (rc) return rc;
    const cJSON *remove = cJSON_GetObjectItemCaseSensitive(obj, "remove");
    if (remove) {
        if (!cJSON_IsTrue(remove)) return bad(ps, join(kp, jpath, "remove"), "must be true");
        if (cJSON_GetArraySize(obj) != 3)
            return bad(ps, jpath, "removes layer %d and cannot change it too", e->layer);
        e->kind = SEMD_EDIT_REMOVE;
        ids->removed[e->layer] = index + 1;
        ids->live--;
        return SEMD_OK;
    }
    e->kind = SEMD_EDIT_LAYER;
    if ((rc = parse_layer_fields(ps, obj, jpath, 0, &e->changes))) return rc;
    if (!e->changes.fields) return bad(ps, jpath, "names layer %d but changes nothing", e->layer);
    return SEMD_OK;
}

static int parse_edit(const parser *ps, const cJSON *obj, const char *jpath, id_table *ids,
                      int index, semd_scene_edit *e)
{
    if (!cJSON_IsObject(obj)) return bad(ps, jpath, "must be an object (got %s)", type_name(obj));
    char kp[PATH_BUF];
    const cJSON *frame = cJSON_GetObjectItemCaseSensitive(obj, "frame");
    if (!frame) return bad(ps, jpath, "needs a \"frame\"");
    int rc = get_int(ps, frame, join(kp, jpath, "frame"), 0, INT_MAX, &e->frame);
    if (rc) return rc;
    int form = -1;
    for (int f = 0; EDIT_FORMS[f]; f++) {
        if (!cJSON_GetObjectItemCaseSensitive(obj, EDIT_FORMS[f])) continue;
        if (form >= 0)
            return bad(ps, jpath, "combines \"%s\" and \"%s\"; an edit makes one change",
                       EDIT_FORMS[form], EDIT_FORMS[f]);
        form = f;
    }
    if (form < 0)
        return bad(ps, jpath, "needs one of \"layer\", \"add_layer\", \"background\" or \"seed\"");
    if (form == 0) return parse_layer_edit(ps, obj, jpath, ids, index, e);
    const char *keys[] = {"frame", EDIT_FORMS[form], NULL};
    if ((rc = check_keys(ps, obj, jpath, keys))) return rc;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, EDIT_FORMS[form]);
    join(kp, jpath, EDIT_FORMS[form]);
    if (form == 1) {
        e->kind = SEMD_EDIT_ADD_LAYER;
        if ((rc = parse_layer(ps, it, kp, &e->changes))) return rc;
        if (ids->live >= SEMD_SCENE_MAX_LAYERS)
            return bad(ps, kp, "would make %d layers; at most %d are supported", ids->live + 1,
                       SEMD_SCENE_MAX_LAYERS);
        e->layer = ids->n++;
        ids->live++;
        return SEMD_OK;
    }
    if (form == 2) {
        e->kind = SEMD_EDIT_BACKGROUND;
        return parse_background(ps, it, kp, 1, &e->background);
    }
    e->kind = SEMD_EDIT_SEED;
    return get_seed(ps, it, kp, &e->seed);
}

static void edit_init(semd_scene_edit *e)
{
    memset(e, 0, sizeof *e);
    layer_init(&e->changes);
    background_init(&e->background);
}

static int parse_edits(const parser *ps, const cJSON *list, semd_scene *s)
{
    if (!cJSON_IsArray(list)) return bad(ps, "edits", "must be a list (got %s)", type_name(list));
    int n = cJSON_GetArraySize(list);
    if (n == 0) return SEMD_OK;
    s->edits = malloc((size_t)n * sizeof *s->edits);
    id_table ids = {s->n_layers, s->n_layers, calloc((size_t)s->n_layers + (size_t)n, sizeof(int))};
    if (!s->edits || !ids.removed) {
        free(ids.removed);
        return oom(ps);
    }
    int rc = SEMD_OK;
    const cJSON *it = list->child;
    for (int i = 0; i < n && !rc; i++, it = it->next) {
        char ip[PATH_BUF];
        semd_scene_edit *e = &s->edits[i];
        edit_init(e);
        s->n_edits = i + 1; /* so that semd_scene_free releases a half-parsed edit */
        index_path(ip, "edits", i);
        rc = parse_edit(ps, it, ip, &ids, i, e);
        if (!rc && i > 0 && e->frame < s->edits[i - 1].frame)
            rc = bad(ps, ip, "has frame %d, before the frame %d of edits[%d]; edits must be sorted by frame",
                     e->frame, s->edits[i - 1].frame, i - 1);
    }
    free(ids.removed);
    return rc;
}

/* ---- the canvas ----------------------------------------------------------------------- */

static const char *const CANVAS_KEYS[] = {
    "width",       "height",      "seed",    "profile",   "timesteps",  "guidance_scale",
    "embedded_guidance_scale",    "bootstrap_steps",      "bootstrap_mix_steps",
    "mask_type",   "cover_alpha", "decoder", "autoflush", "suffix",     "background",
    "layers",      "edits",       NULL};

static const char *const PROFILE_NAMES[] = {"default", "reference", NULL};
/* In semd_mask_type order. */
static const char *const MASK_TYPE_NAMES[] = {"continuous", "semi-continuous", "discrete", NULL};
static const char *const DECODER_NAMES[] = {"taesd", "vae", NULL};

static int parse_side(const parser *ps, const cJSON *root, const char *key, int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) return SEMD_OK;
    double v = 0;
    int rc = get_integer(ps, it, key, SEMD_SCENE_MIN_SIDE, SEMD_SCENE_MAX_SIDE, &v);
    if (!rc && (int)v % 8)
        rc = bad(ps, key, "must be a multiple of 8 (got %d)", (int)v);
    if (!rc) *out = (int)v;
    return rc;
}

static int parse_timesteps(const parser *ps, const cJSON *it, semd_scene *s)
{
    if (!cJSON_IsArray(it))
        return bad(ps, "timesteps", "must be a list of timestep indices (got %s)", type_name(it));
    int n = cJSON_GetArraySize(it);
    if (n < 1 || n > SEMD_SCENE_MAX_TIMESTEPS)
        return bad(ps, "timesteps", "must have 1..%d entries (got %d)", SEMD_SCENE_MAX_TIMESTEPS, n);
    char ip[PATH_BUF];
    const cJSON *v = it->child;
    for (int i = 0; i < n; i++, v = v->next) {
        int rc = get_int(ps, v, index_path(ip, "timesteps", i), 0, SEMD_SCENE_TIMESTEP_GRID - 1,
                         &s->timesteps[i]);
        if (rc) return rc;
        if (i > 0 && s->timesteps[i] <= s->timesteps[i - 1])
            return bad(ps, ip, "= %d must be greater than timesteps[%d] = %d (strictly increasing)",
                       s->timesteps[i], i - 1, s->timesteps[i - 1]);
    }
    s->n_timesteps = n;
    return SEMD_OK;
}

static void canvas_defaults(semd_scene *s)
{
    static const int t_default[] = {0, 4, 12, 25, 37};
    s->width = s->height = 512;
    s->seed = 2024;
    s->profile = SEMD_SCENE_PROFILE_DEFAULT;
    s->n_timesteps = 5;
    memcpy(s->timesteps, t_default, sizeof t_default);
    s->guidance_scale = 1.0f;
    s->embedded_guidance_scale = 8.5f;
    s->bootstrap_steps = 1;
    s->bootstrap_mix_steps = 1.0f;
    s->mask_type = SEMD_SCENE_UNSET;
    s->cover_alpha = 0.3f;
    s->decoder = SEMD_SCENE_UNSET;
    s->autoflush = 0;
    background_init(&s->background);
}

/* The scalar canvas settings (not width/height, background, layers, edits). */
static int parse_settings(const parser *ps, const cJSON *root, semd_scene *s)
{
    const cJSON *it;
    int rc = SEMD_OK, v = 0;
#define FIELD(key) (!rc && (it = cJSON_GetObjectItemCaseSensitive(root, key)))
    if (FIELD("seed")) rc = get_seed(ps, it, "seed", &s->seed);
    if (FIELD("profile") && !(rc = get_enum(ps, it, "profile", PROFILE_NAMES, &v)))
        s->profile = (semd_scene_profile)v;
    if (FIELD("timesteps")) rc = parse_timesteps(ps, it, s);
    if (FIELD("guidance_scale")) rc = get_float(ps, it, "guidance_scale", 0, INFINITY, &s->guidance_scale);
    if (FIELD("embedded_guidance_scale"))
        rc = get_float(ps, it, "embedded_guidance_scale", -INFINITY, INFINITY,
                       &s->embedded_guidance_scale);
    if (FIELD("bootstrap_steps")) rc = get_int(ps, it, "bootstrap_steps", 0, INT_MAX, &s->bootstrap_steps);
    if (FIELD("bootstrap_mix_steps"))
        rc = get_float(ps, it, "bootstrap_mix_steps", 0, INFINITY, &s->bootstrap_mix_steps);
    if (FIELD("mask_type")) rc = get_enum(ps, it, "mask_type", MASK_TYPE_NAMES, &s->mask_type);
    if (FIELD("cover_alpha")) rc = get_float(ps, it, "cover_alpha", 0, 1, &s->cover_alpha);
    if (FIELD("decoder")) rc = get_enum(ps, it, "decoder", DECODER_NAMES, &s->decoder);
    if (FIELD("autoflush")) {
        if (!cJSON_IsBool(it)) rc = bad(ps, "autoflush", "must be true or false (got %s)", type_name(it));
        s->autoflush = cJSON_IsTrue(it);
    }
    if (FIELD("suffix") && !cJSON_IsNull(it)) rc = get_string(ps, it, "suffix", &s->suffix);
#undef FIELD
    return rc;
}

static int parse_layers(const parser *ps, const cJSON *list, semd_scene *s)
{
    if (!cJSON_IsArray(list)) return bad(ps, "layers", "must be a list (got %s)", type_name(list));
    int n = cJSON_GetArraySize(list);
    if (n > SEMD_SCENE_MAX_LAYERS)
        return bad(ps, "layers", "has %d layers; at most %d are supported", n, SEMD_SCENE_MAX_LAYERS);
    if (n == 0) return SEMD_OK;
    if (!(s->layers = malloc((size_t)n * sizeof *s->layers))) return oom(ps);
    const cJSON *it = list->child;
    for (int i = 0; i < n; i++, it = it->next) {
        char ip[PATH_BUF];
        layer_init(&s->layers[i]);
        s->n_layers = i + 1;
        int rc = parse_layer(ps, it, index_path(ip, "layers", i), &s->layers[i]);
        if (rc) return rc;
    }
    return SEMD_OK;
}

static int parse_root(const parser *ps0, const cJSON *root, semd_scene *s)
{
    parser ps = *ps0;
    canvas_defaults(s);
    int rc = check_keys(&ps, root, "", CANVAS_KEYS);
    if (!rc) rc = parse_side(&ps, root, "width", &s->width);
    if (!rc) rc = parse_side(&ps, root, "height", &s->height);
    if (rc) return rc;
    ps.width = s->width;
    ps.height = s->height;
    if ((rc = parse_settings(&ps, root, s))) return rc;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "background");
    if (!it) {
        if (!(s->background.negative = dup_str(""))) return oom(&ps);
    } else if ((rc = parse_background(&ps, it, "background", 0, &s->background))) {
        return rc;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "layers")) && (rc = parse_layers(&ps, it, s)))
        return rc;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "edits"))) rc = parse_edits(&ps, it, s);
    return rc;
}

/* ---- entry points ----------------------------------------------------------------------- */

static int parse_tree(const cJSON *root, const char *name, const char *base_dir, semd_scene **out)
{
    semd_scene *s = calloc(1, sizeof *s);
    if (!s || !(s->path = dup_str(name))) {
        free(s);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", name);
    }
    parser ps = {name, base_dir, 0, 0};
    int rc = parse_root(&ps, root, s);
    if (rc) {
        semd_scene_free(s);
        return rc;
    }
    *out = s;
    return SEMD_OK;
}

int semd_scene_parse(const char *json, size_t len, const char *name, const char *base_dir,
                     semd_scene **out)
{
    if (!out) return semd_error(SEMD_EINVAL, "semd_scene_parse: out is NULL");
    *out = NULL;
    if (!json) return semd_error(SEMD_EINVAL, "semd_scene_parse: json is NULL");
    if (!name) name = "scene";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root)
        return semd_error(SEMD_EFORMAT, "%s: invalid JSON near byte %ld", name,
                          end ? (long)(end - json) : 0L);
    int rc = cJSON_IsObject(root)
                 ? parse_tree(root, name, base_dir, out)
                 : semd_error(SEMD_EFORMAT, "%s: expected a JSON object at the top level", name);
    cJSON_Delete(root);
    return rc;
}

int semd_scene_load(const char *path, semd_scene **out)
{
    if (!out) return semd_error(SEMD_EINVAL, "semd_scene_load: out is NULL");
    *out = NULL;
    if (!path) return semd_error(SEMD_EINVAL, "semd_scene_load: path is NULL");
    cJSON *root = NULL;
    int rc = semd_json_load(path, &root);
    if (rc) return rc;
    char *dir = dup_str(path);
    if (!dir) {
        cJSON_Delete(root);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    rc = parse_tree(root, path, slash ? dir : NULL, out);
    free(dir);
    cJSON_Delete(root);
    return rc;
}

void semd_scene_free(semd_scene *s)
{
    if (!s) return;
    free(s->path);
    free(s->suffix);
    background_free(&s->background);
    for (int i = 0; i < s->n_layers; i++) layer_free(&s->layers[i]);
    free(s->layers);
    for (int i = 0; i < s->n_edits; i++) {
        layer_free(&s->edits[i].changes);
        background_free(&s->edits[i].background);
    }
    free(s->edits);
    free(s);
}

/* ---- mode defaults ------------------------------------------------------------------------ */

static void resolve_layer(semd_scene_layer *L, semd_scene_mode mode)
{
    if (isnan(L->mask_std)) L->mask_std = mode == SEMD_SCENE_STREAM ? 8.0f : 1.0f;
    if (isnan(L->prompt_strength)) L->prompt_strength = mode == SEMD_SCENE_STREAM ? 0.95f : 1.0f;
}

int semd_scene_resolve_defaults(semd_scene *s, semd_scene_mode mode)
{
    if (!s) return semd_error(SEMD_EINVAL, "semd_scene_resolve_defaults: scene is NULL");
    if (mode != SEMD_SCENE_STREAM && mode != SEMD_SCENE_SINGLE)
        return semd_error(SEMD_EINVAL, "semd_scene_resolve_defaults: unknown mode %d", (int)mode);
    int stream = mode == SEMD_SCENE_STREAM;
    if (s->mask_type == SEMD_SCENE_UNSET) s->mask_type = stream ? SEMD_MASK_CONTINUOUS : SEMD_MASK_DISCRETE;
    if (s->decoder == SEMD_SCENE_UNSET) s->decoder = stream ? SEMD_SCENE_DECODER_TAESD : SEMD_SCENE_DECODER_VAE;
    for (int i = 0; i < s->n_layers; i++) resolve_layer(&s->layers[i], mode);
    for (int i = 0; i < s->n_edits; i++)
        if (s->edits[i].kind == SEMD_EDIT_ADD_LAYER) resolve_layer(&s->edits[i].changes, mode);
    if (!s->background.prompt) {
        /* S2: no captioner; an image without a prompt gets "". */
        const char *p = s->background.image ? ""
                        : stream            ? "simple white background"
                                            : "simple white background image";
        if (!(s->background.prompt = dup_str(p)))
            return semd_error(SEMD_ENOMEM, "%s: out of memory", s->path);
    }
    return SEMD_OK;
}
