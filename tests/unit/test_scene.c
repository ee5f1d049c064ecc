/*
 * Tests for the scene parser (docs/scene-format.md): a scene with every key,
 * the defaults (and the mode-dependent ones left unset until resolved), the
 * PNG channel rules, and each error, checked by code and by the part of the
 * message that names the problem.
 *
 * The PNGs in tests/data/scene_parse are 16x8 with the pattern
 * v(y, x) = 2*(16*y + x) in the channel the format says to use (alpha when
 * there is one, else grey or red) and 255 - v in the others, so reading the
 * wrong channel fails.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "semd/canvas.h"
#include "semd/mask.h"
#include "semd/scene.h"
#include "semd/status.h"

#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

#define W 16
#define H 8

/* Scene edits hand their field bits to the canvas unchanged. */
#define SAME_BIT(f) ((int)SEMD_SCENE_LAYER_##f == (int)SEMD_LAYER_##f)
_Static_assert(SAME_BIT(PROMPT) && SAME_BIT(NEGATIVE) && SAME_BIT(MASK) && SAME_BIT(MASK_STD) &&
                   SAME_BIT(MASK_STRENGTH) && SAME_BIT(PROMPT_STRENGTH),
               "scene and canvas layer field bits differ");

static const char *data_dir(void) { return semd_test_path(semd_test_data_dir(), "scene_parse"); }

static semd_scene *parse_ok(const char *json)
{
    semd_scene *s = NULL;
    ASSERT_OK(semd_scene_parse(json, strlen(json), "inline.json", data_dir(), &s));
    ASSERT(s);
    return s;
}

/* Parsing fails with `code`, and the message names the scene and contains `needle`. */
static void parse_err(const char *json, int code, const char *needle)
{
    semd_scene *s = (semd_scene *)1;
    semd_clear_error();
    int rc = semd_scene_parse(json, strlen(json), "inline.json", data_dir(), &s);
    if (rc != code) FAIL("%s: expected %d, got %d (%s)", json, code, rc, semd_last_error());
    ASSERT(s == NULL);
    ASSERT_CONTAINS(semd_last_error(), "inline.json: ");
    ASSERT_CONTAINS(semd_last_error(), needle);
}

static int pattern(int j) { return 2 * j; } /* j = 16*y + x */

static void assert_mask_pattern(const uint8_t *m)
{
    ASSERT(m);
    for (int j = 0; j < W * H; j++)
        if (m[j] != pattern(j)) FAIL("pixel %d: %d != %d", j, m[j], pattern(j));
}

static void assert_bg_pattern(const uint8_t *rgb)
{
    ASSERT(rgb);
    for (int j = 0; j < W * H; j++) {
        ASSERT_EQ(rgb[3 * j], pattern(j));
        ASSERT_EQ(rgb[3 * j + 1], 255 - pattern(j));
        ASSERT_EQ(rgb[3 * j + 2], 9);
    }
}

/* ---- a scene with every key -------------------------------------------------------- */

TEST(full_scene)
{
    semd_scene *s = NULL;
    const char *path = semd_test_path(data_dir(), "full.json");
    ASSERT_OK(semd_scene_load(path, &s));
    ASSERT_STREQ(s->path, path);
    ASSERT_EQ(s->width, 16);
    ASSERT_EQ(s->height, 8);
    ASSERT_EQ(s->seed, 7);
    ASSERT_EQ(s->profile, SEMD_SCENE_PROFILE_REFERENCE);
    ASSERT_EQ(s->n_timesteps, 6);
    const int t[] = {0, 5, 16, 18, 20, 37};
    for (int i = 0; i < 6; i++) ASSERT_EQ(s->timesteps[i], t[i]);
    ASSERT(s->guidance_scale == 1.5f);
    ASSERT(s->embedded_guidance_scale == 4.0f);
    ASSERT_EQ(s->bootstrap_steps, 2);
    ASSERT(s->bootstrap_mix_steps == 2.3f);
    ASSERT_EQ(s->mask_type, SEMD_MASK_SEMI_CONTINUOUS);
    ASSERT(s->cover_alpha == 0.1f);
    ASSERT_EQ(s->decoder, SEMD_SCENE_DECODER_VAE);
    ASSERT_EQ(s->autoflush, 1);
    ASSERT_STREQ(s->suffix, ", background is ");

    semd_scene_background *bg = &s->background;
    ASSERT_EQ(bg->fields, SEMD_BG_PROMPT | SEMD_BG_NEGATIVE | SEMD_BG_IMAGE);
    ASSERT_STREQ(bg->prompt, "a meadow");
    ASSERT_STREQ(bg->negative, "blurry");
    ASSERT_STREQ(bg->image_path, semd_test_path(data_dir(), "bg.png"));
    assert_bg_pattern(bg->image);

    ASSERT_EQ(s->n_layers, 3);
    semd_scene_layer *L = s->layers;
    ASSERT_EQ(L[0].fields, SEMD_SCENE_LAYER_PROMPT | SEMD_SCENE_LAYER_NEGATIVE | SEMD_SCENE_LAYER_MASK |
                               SEMD_SCENE_LAYER_MASK_STD | SEMD_SCENE_LAYER_MASK_STRENGTH |
                               SEMD_SCENE_LAYER_PROMPT_STRENGTH);
    ASSERT_STREQ(L[0].prompt, "a cat");
    ASSERT_STREQ(L[0].negative, "dog");
    assert_mask_pattern(L[0].mask);
    ASSERT(L[0].mask_std == 4.0f && L[0].mask_strength == 0.97f && L[0].prompt_strength == 0.9f);
    ASSERT_EQ(L[1].fields, SEMD_SCENE_LAYER_PROMPT | SEMD_SCENE_LAYER_MASK);
    ASSERT_STREQ(L[1].negative, "");
    assert_mask_pattern(L[1].mask);
    ASSERT(isnan(L[1].mask_std) && L[1].mask_strength == 1.0f && isnan(L[1].prompt_strength));
    ASSERT_EQ(L[2].fields, SEMD_SCENE_LAYER_PROMPT | SEMD_SCENE_LAYER_MASK);
    ASSERT(L[2].mask == NULL && L[2].mask_path == NULL);

    ASSERT_EQ(s->n_edits, 8);
    semd_scene_edit *e = s->edits;
    ASSERT_EQ(e[0].frame, 0);
    ASSERT_EQ(e[0].kind, SEMD_EDIT_SEED);
    ASSERT_EQ(e[0].seed, 11);

    ASSERT_EQ(e[1].frame, 3);
    ASSERT_EQ(e[1].kind, SEMD_EDIT_LAYER);
    ASSERT_EQ(e[1].layer, 1);
    ASSERT_EQ(e[1].changes.fields, SEMD_SCENE_LAYER_PROMPT | SEMD_SCENE_LAYER_MASK | SEMD_SCENE_LAYER_MASK_STD);
    ASSERT_STREQ(e[1].changes.prompt, "a red hat");
    ASSERT(e[1].changes.negative == NULL);
    assert_mask_pattern(e[1].changes.mask);
    ASSERT(e[1].changes.mask_std == 2.5f);
    ASSERT(isnan(e[1].changes.mask_strength) && isnan(e[1].changes.prompt_strength));

    ASSERT_EQ(e[2].kind, SEMD_EDIT_REMOVE);
    ASSERT_EQ(e[2].layer, 0);

    ASSERT_EQ(e[3].kind, SEMD_EDIT_ADD_LAYER);
    ASSERT_EQ(e[3].frame, 5);
    ASSERT_EQ(e[3].layer, 3); /* the next id, even though layer 0 is gone */
    ASSERT_STREQ(e[3].changes.prompt, "a bird");
    ASSERT_STREQ(e[3].changes.negative, "");
    assert_mask_pattern(e[3].changes.mask);
    ASSERT(e[3].changes.prompt_strength == 0.8f && e[3].changes.mask_strength == 1.0f);

    ASSERT_EQ(e[4].kind, SEMD_EDIT_LAYER);
    ASSERT_EQ(e[4].layer, 3);
    ASSERT_EQ(e[4].changes.fields, SEMD_SCENE_LAYER_MASK_STRENGTH);
    ASSERT(e[4].changes.mask_strength == 0.5f);

    ASSERT_EQ(e[5].kind, SEMD_EDIT_BACKGROUND);
    ASSERT_EQ(e[5].background.fields, SEMD_BG_COLOR);
    ASSERT(e[5].background.color[0] == 10 && e[5].background.color[1] == 20 &&
           e[5].background.color[2] == 30);
    ASSERT(e[5].background.prompt == NULL && e[5].background.negative == NULL);

    ASSERT_EQ(e[6].kind, SEMD_EDIT_BACKGROUND);
    ASSERT_EQ(e[6].background.fields, SEMD_BG_IMAGE);
    assert_bg_pattern(e[6].background.image); /* RGBA: alpha dropped */

    ASSERT_EQ(e[7].kind, SEMD_EDIT_LAYER);
    ASSERT_EQ(e[7].layer, 2);
    ASSERT_EQ(e[7].changes.fields, SEMD_SCENE_LAYER_MASK | SEMD_SCENE_LAYER_NEGATIVE);
    ASSERT(e[7].changes.mask == NULL);
    ASSERT_STREQ(e[7].changes.negative, "");

    /* Everything was given, so resolving changes only the unset layer fields. */
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM));
    ASSERT_EQ(s->mask_type, SEMD_MASK_SEMI_CONTINUOUS);
    ASSERT_EQ(s->decoder, SEMD_SCENE_DECODER_VAE);
    ASSERT_STREQ(bg->prompt, "a meadow");
    ASSERT(L[0].mask_std == 4.0f && L[1].mask_std == 8.0f && L[1].prompt_strength == 0.95f);
    ASSERT(e[3].changes.mask_std == 8.0f && e[3].changes.prompt_strength == 0.8f);
    ASSERT(isnan(e[1].changes.mask_strength)); /* edits keep "not given" */
    semd_scene_free(s);
}

/* ---- defaults ------------------------------------------------------------------------ */

TEST(defaults)
{
    semd_scene *s = parse_ok("{}");
    ASSERT_EQ(s->width, 512);
    ASSERT_EQ(s->height, 512);
    ASSERT_EQ(s->seed, 2024);
    ASSERT_EQ(s->profile, SEMD_SCENE_PROFILE_DEFAULT);
    ASSERT_EQ(s->n_timesteps, 5);
    const int t[] = {0, 4, 12, 25, 37};
    for (int i = 0; i < 5; i++) ASSERT_EQ(s->timesteps[i], t[i]);
    ASSERT(s->guidance_scale == 1.0f);
    ASSERT(s->embedded_guidance_scale == 8.5f);
    ASSERT_EQ(s->bootstrap_steps, 1);
    ASSERT(s->bootstrap_mix_steps == 1.0f);
    ASSERT_EQ(s->mask_type, SEMD_SCENE_UNSET);
    ASSERT(s->cover_alpha == 0.3f);
    ASSERT_EQ(s->decoder, SEMD_SCENE_UNSET);
    ASSERT_EQ(s->autoflush, 0);
    ASSERT(s->suffix == NULL);
    ASSERT_EQ(s->background.fields, 0);
    ASSERT(s->background.prompt == NULL);
    ASSERT_STREQ(s->background.negative, "");
    ASSERT(s->background.image == NULL);
    ASSERT(s->background.color[0] == 255 && s->background.color[1] == 255 &&
           s->background.color[2] == 255);
    ASSERT_EQ(s->n_layers, 0);
    ASSERT_EQ(s->n_edits, 0);
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM));
    ASSERT_EQ(s->mask_type, SEMD_MASK_CONTINUOUS);
    ASSERT_EQ(s->decoder, SEMD_SCENE_DECODER_TAESD);
    ASSERT_STREQ(s->background.prompt, "simple white background");
    semd_scene_free(s);

    s = parse_ok("{\"suffix\": null, \"background\": {}, \"layers\": [], \"edits\": []}");
    ASSERT(s->suffix == NULL);
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_SINGLE));
    ASSERT_EQ(s->mask_type, SEMD_MASK_DISCRETE);
    ASSERT_EQ(s->decoder, SEMD_SCENE_DECODER_VAE);
    ASSERT_STREQ(s->background.prompt, "simple white background image");
    semd_scene_free(s);
}

TEST(layer_defaults_per_mode)
{
    const char *json = "{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"a\"}],"
                       " \"edits\": [{\"frame\": 1, \"add_layer\": {\"prompt\": \"b\"}},"
                       "            {\"frame\": 2, \"layer\": 1, \"prompt\": \"c\"}]}";
    const semd_scene_mode modes[] = {SEMD_SCENE_STREAM, SEMD_SCENE_SINGLE};
    const float std[] = {8.0f, 1.0f}, ps[] = {0.95f, 1.0f};
    for (int m = 0; m < 2; m++) {
        semd_scene *s = parse_ok(json);
        semd_scene_layer *L = &s->layers[0];
        ASSERT_EQ(L->fields, SEMD_SCENE_LAYER_PROMPT);
        ASSERT_STREQ(L->negative, "");
        ASSERT(L->mask == NULL);
        ASSERT(isnan(L->mask_std) && isnan(L->prompt_strength) && L->mask_strength == 1.0f);
        ASSERT_OK(semd_scene_resolve_defaults(s, modes[m]));
        ASSERT(L->mask_std == std[m] && L->prompt_strength == ps[m] && L->mask_strength == 1.0f);
        ASSERT(s->edits[0].changes.mask_std == std[m]);
        ASSERT(s->edits[0].changes.prompt_strength == ps[m]);
        ASSERT(isnan(s->edits[1].changes.mask_std)); /* a change names only what it changes */
        ASSERT(s->edits[1].changes.negative == NULL);
        semd_scene_free(s);
    }
}

TEST(background_image_prompt_defaults)
{
    /* S2: an image without a prompt gets "" in both modes. */
    for (int m = 0; m < 2; m++) {
        semd_scene *s = parse_ok("{\"width\": 16, \"height\": 8, \"background\": {\"image\": \"bg.png\"}}");
        ASSERT_EQ(s->background.fields, SEMD_BG_IMAGE);
        ASSERT(s->background.prompt == NULL);
        ASSERT_OK(semd_scene_resolve_defaults(s, m ? SEMD_SCENE_SINGLE : SEMD_SCENE_STREAM));
        ASSERT_STREQ(s->background.prompt, "");
        ASSERT_EQ(s->background.fields, SEMD_BG_IMAGE); /* still says no prompt was given */
        semd_scene_free(s);
    }
    semd_scene *s = parse_ok("{\"background\": {\"color\": [1, 2, 3]}}");
    ASSERT_EQ(s->background.fields, SEMD_BG_COLOR);
    ASSERT(s->background.color[0] == 1 && s->background.color[1] == 2 && s->background.color[2] == 3);
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM));
    ASSERT_STREQ(s->background.prompt, "simple white background");
    semd_scene_free(s);
}

/* ---- PNG channel rules --------------------------------------------------------------- */

TEST(png_mask_channels)
{
    const char *files[] = {"grey.png", "grey_alpha.png", "rgb.png", "rgba.png", "palette.png",
                           "palette_alpha.png"};
    for (int i = 0; i < 6; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"p\", \"mask\": \"%s\"}]}",
                 files[i]);
        semd_scene *s = parse_ok(json);
        assert_mask_pattern(s->layers[0].mask);
        ASSERT_STREQ(s->layers[0].mask_path, semd_test_path(data_dir(), files[i]));
        semd_scene_free(s);
    }
    /* The reader alone, and an absolute path in a scene. */
    uint8_t *m = NULL;
    ASSERT_OK(semd_png_read_mask(semd_test_path(data_dir(), "rgba.png"), W, H, &m));
    assert_mask_pattern(m);
    free(m);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"p\", \"mask\": \"%s\"}]}",
             semd_test_path(data_dir(), "grey_alpha.png"));
    semd_scene *s = NULL;
    ASSERT_OK(semd_scene_parse(json, strlen(json), "inline.json", "/nonexistent", &s));
    assert_mask_pattern(s->layers[0].mask);
    semd_scene_free(s);
}

TEST(png_background_channels)
{
    uint8_t *rgb = NULL;
    ASSERT_OK(semd_png_read_rgb(semd_test_path(data_dir(), "bg.png"), W, H, &rgb));
    assert_bg_pattern(rgb);
    free(rgb);
    ASSERT_OK(semd_png_read_rgb(semd_test_path(data_dir(), "bg_rgba.png"), W, H, &rgb));
    assert_bg_pattern(rgb);
    free(rgb);
    /* Grey is replicated to RGB. */
    ASSERT_OK(semd_png_read_rgb(semd_test_path(data_dir(), "grey.png"), W, H, &rgb));
    for (int j = 0; j < W * H; j++)
        ASSERT(rgb[3 * j] == pattern(j) && rgb[3 * j + 1] == pattern(j) && rgb[3 * j + 2] == pattern(j));
    free(rgb);
}

/* ---- errors ---------------------------------------------------------------------------- */

TEST(error_malformed_json)
{
    parse_err("{\"width\": 16,, }", SEMD_EFORMAT, "invalid JSON near byte ");
    /* cJSON points at or just after the second comma (byte 13). */
    long at = atol(strstr(semd_last_error(), "near byte ") + 10);
    ASSERT(at >= 13 && at <= 14);
    parse_err("[1, 2]", SEMD_EFORMAT, "expected a JSON object");
    semd_scene *s = NULL;
    int rc = semd_scene_load(semd_test_path(data_dir(), "missing.json"), &s);
    ASSERT_EQ(rc, SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), "missing.json: cannot open");
    ASSERT_EQ(semd_scene_parse(NULL, 0, "x", NULL, &s), SEMD_EINVAL);
    ASSERT_EQ(semd_scene_parse("{}", 2, "x", NULL, NULL), SEMD_EINVAL);
    ASSERT_EQ(semd_scene_load(NULL, &s), SEMD_EINVAL);
    ASSERT_EQ(semd_scene_resolve_defaults(NULL, SEMD_SCENE_STREAM), SEMD_EINVAL);
    semd_scene_free(NULL);
}

TEST(error_unknown_and_duplicate_keys)
{
    parse_err("{\"widht\": 16}", SEMD_EFORMAT, "widht is not a known key");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"colour\": 1}]}", SEMD_EFORMAT,
              "layers[0].colour is not a known key");
    parse_err("{\"background\": {\"prompt\": \"a\", \"img\": \"bg.png\"}}", SEMD_EFORMAT,
              "background.img is not a known key");
    parse_err("{\"edits\": [{\"frame\": 1, \"seed\": 3, \"prompt\": \"x\"}]}", SEMD_EFORMAT,
              "edits[0].prompt is not a known key");
    parse_err("{\"seed\": 1, \"seed\": 2}", SEMD_EFORMAT, "seed appears twice");
}

TEST(error_enums)
{
    parse_err("{\"mask_type\": \"fuzzy\"}", SEMD_EFORMAT,
              "mask_type must be one of \"continuous\", \"semi-continuous\", \"discrete\" (got \"fuzzy\")");
    parse_err("{\"profile\": \"paper\"}", SEMD_EFORMAT, "profile must be one of \"default\", \"reference\"");
    parse_err("{\"decoder\": 1}", SEMD_EFORMAT, "decoder must be a string (got a number)");
    semd_scene *s = parse_ok("{\"mask_type\": \"discrete\", \"decoder\": \"taesd\", \"profile\": \"default\"}");
    ASSERT_EQ(s->mask_type, SEMD_MASK_DISCRETE);
    ASSERT_EQ(s->decoder, SEMD_SCENE_DECODER_TAESD);
    ASSERT_OK(semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM)); /* given values stay */
    ASSERT_EQ(s->mask_type, SEMD_MASK_DISCRETE);
    ASSERT_EQ(s->decoder, SEMD_SCENE_DECODER_TAESD);
    semd_scene_free(s);
}

TEST(error_timesteps)
{
    parse_err("{\"timesteps\": []}", SEMD_EFORMAT, "timesteps must have 1..16 entries (got 0)");
    parse_err("{\"timesteps\": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}", SEMD_EFORMAT,
              "timesteps must have 1..16 entries (got 17)");
    parse_err("{\"timesteps\": [0, 50]}", SEMD_EFORMAT, "timesteps[1] must be in 0..49 (got 50)");
    parse_err("{\"timesteps\": [-1]}", SEMD_EFORMAT, "timesteps[0] must be in 0..49 (got -1)");
    parse_err("{\"timesteps\": [0, 4, 4]}", SEMD_EFORMAT,
              "timesteps[2] = 4 must be greater than timesteps[1] = 4");
    parse_err("{\"timesteps\": [5, 2]}", SEMD_EFORMAT, "timesteps[1] = 2 must be greater");
    parse_err("{\"timesteps\": [1.5]}", SEMD_EFORMAT, "timesteps[0] must be an integer (got 1.5)");
    parse_err("{\"timesteps\": 5}", SEMD_EFORMAT, "timesteps must be a list");
    semd_scene *s = parse_ok("{\"timesteps\": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,49]}");
    ASSERT_EQ(s->n_timesteps, 16);
    ASSERT_EQ(s->timesteps[15], 49);
    semd_scene_free(s);
}

TEST(error_canvas_size)
{
    parse_err("{\"width\": 500}", SEMD_EFORMAT, "width must be a multiple of 8 (got 500)");
    parse_err("{\"height\": 4104}", SEMD_EFORMAT, "height must be in 8..4096 (got 4104)");
    parse_err("{\"height\": 0}", SEMD_EFORMAT, "height must be in 8..4096 (got 0)");
    parse_err("{\"width\": \"512\"}", SEMD_EFORMAT, "width must be a number (got a string)");
    semd_scene *s = parse_ok("{\"width\": 8, \"height\": 4096}");
    ASSERT(s->width == 8 && s->height == 4096);
    semd_scene_free(s);
}

TEST(error_settings_ranges)
{
    parse_err("{\"seed\": -1}", SEMD_EFORMAT, "seed must be >= 0 (got -1)");
    parse_err("{\"seed\": 1e17}", SEMD_EFORMAT, "seed must be in 0..9007199254740992 (got 100000000000000000)");
    parse_err("{\"seed\": 2.5}", SEMD_EFORMAT, "seed must be an integer");
    parse_err("{\"guidance_scale\": -0.5}", SEMD_EFORMAT, "guidance_scale must be >= 0 (got -0.5)");
    parse_err("{\"embedded_guidance_scale\": true}", SEMD_EFORMAT,
              "embedded_guidance_scale must be a number (got a boolean)");
    parse_err("{\"bootstrap_steps\": -1}", SEMD_EFORMAT, "bootstrap_steps must be >= 0 (got -1)");
    parse_err("{\"bootstrap_mix_steps\": -1}", SEMD_EFORMAT, "bootstrap_mix_steps must be >= 0");
    parse_err("{\"cover_alpha\": 1.2}", SEMD_EFORMAT, "cover_alpha must be in [0, 1] (got 1.2)");
    parse_err("{\"autoflush\": \"yes\"}", SEMD_EFORMAT, "autoflush must be true or false");
    parse_err("{\"suffix\": 3}", SEMD_EFORMAT, "suffix must be a string");
    parse_err("{\"guidance_scale\": 1e999}", SEMD_EFORMAT, "guidance_scale must be a finite number");
    semd_scene *s = parse_ok("{\"seed\": 9007199254740992, \"embedded_guidance_scale\": -2}");
    ASSERT(s->seed == 9007199254740992ull && s->embedded_guidance_scale == -2.0f);
    semd_scene_free(s);
}

TEST(error_layers)
{
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"mask_std\": -1}]}", SEMD_EFORMAT,
              "layers[0].mask_std must be >= 0 (got -1)");
    parse_err("{\"layers\": [{\"prompt\": \"a\"}, {\"prompt\": \"b\"}, {\"prompt\": \"c\", \"mask_std\": -1}]}",
              SEMD_EFORMAT, "layers[2].mask_std must be >= 0");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"mask_std\": 5000}]}", SEMD_EFORMAT,
              "layers[0].mask_std must be at most 1024");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"mask_strength\": 1.5}]}", SEMD_EFORMAT,
              "layers[0].mask_strength must be in [0, 1] (got 1.5)");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"prompt_strength\": -0.1}]}", SEMD_EFORMAT,
              "layers[0].prompt_strength must be in [0, 1] (got -0.1)");
    parse_err("{\"layers\": [{\"negative\": \"a\"}]}", SEMD_EFORMAT, "layers[0] needs a \"prompt\"");
    parse_err("{\"layers\": [{\"prompt\": 5}]}", SEMD_EFORMAT, "layers[0].prompt must be a string");
    parse_err("{\"layers\": [\"a cat\"]}", SEMD_EFORMAT, "layers[0] must be an object (got a string)");
    parse_err("{\"layers\": {\"prompt\": \"a\"}}", SEMD_EFORMAT, "layers must be a list");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"mask\": 3}]}", SEMD_EFORMAT,
              "layers[0].mask must be a PNG path (got a number)");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"mask\": \"\"}]}", SEMD_EFORMAT,
              "layers[0].mask must be a PNG path");
}

/* "{"layers": [{"prompt": "p"}, ... n times], <extra>}" */
static char *many_layers(int n, const char *extra)
{
    size_t cap = (size_t)n * 20 + strlen(extra) + 64;
    char *json = malloc(cap);
    ASSERT(json);
    size_t at = (size_t)snprintf(json, cap, "{\"layers\": [");
    for (int i = 0; i < n; i++) at += (size_t)snprintf(json + at, cap - at, "%s{\"prompt\": \"p\"}", i ? ", " : "");
    snprintf(json + at, cap - at, "]%s}", extra);
    return json;
}

TEST(error_layer_limit)
{
    char *json = many_layers(SEMD_SCENE_MAX_LAYERS, "");
    semd_scene *s = parse_ok(json);
    ASSERT_EQ(s->n_layers, SEMD_SCENE_MAX_LAYERS);
    semd_scene_free(s);
    free(json);
    json = many_layers(SEMD_SCENE_MAX_LAYERS + 1, "");
    parse_err(json, SEMD_EFORMAT, "layers has 65 layers; at most 64 are supported");
    free(json);
    /* Live layers count through the edits: a removal makes room for an add. */
    json = many_layers(SEMD_SCENE_MAX_LAYERS, ", \"edits\": [{\"frame\": 1, \"add_layer\": {\"prompt\": \"q\"}}]");
    parse_err(json, SEMD_EFORMAT, "edits[0].add_layer would make 65 layers; at most 64");
    free(json);
    json = many_layers(SEMD_SCENE_MAX_LAYERS, ", \"edits\": [{\"frame\": 1, \"layer\": 5, \"remove\": true},"
                                              " {\"frame\": 1, \"add_layer\": {\"prompt\": \"q\"}}]");
    s = parse_ok(json);
    ASSERT_EQ(s->edits[1].layer, 64);
    semd_scene_free(s);
    free(json);
}

TEST(error_mask_files)
{
    parse_err("{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"a\", \"mask\": \"nope.png\"}]}",
              SEMD_EIO, "layers[0].mask: ");
    ASSERT_CONTAINS(semd_last_error(), "scene_parse/nope.png: cannot open");
    parse_err("{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"a\", \"mask\": \"small.png\"}]}",
              SEMD_EFORMAT, "layers[0].mask: ");
    ASSERT_CONTAINS(semd_last_error(), "small.png is 8x8, the canvas is 16x8");
    parse_err("{\"layers\": [{\"prompt\": \"a\", \"mask\": \"grey.png\"}]}", SEMD_EFORMAT,
              "grey.png is 16x8, the canvas is 512x512");
    parse_err("{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"a\", \"mask\": \"not_png.png\"}]}",
              SEMD_EFORMAT, "not_png.png: not a PNG file");
    parse_err("{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"a\", \"mask\": \"grey16.png\"}]}",
              SEMD_EFORMAT, "grey16.png: 16-bit PNGs are not supported");
    parse_err("{\"width\": 16, \"height\": 8, \"background\": {\"image\": \"small.png\"}}", SEMD_EFORMAT,
              "background.image: ");
    parse_err("{\"width\": 16, \"height\": 8, \"edits\": [{\"frame\": 0, \"background\": {\"image\": \"x.png\"}}]}",
              SEMD_EIO, "edits[0].background.image: ");
}

/* A PNG cut short fails inside libpng: the error comes back through its longjmp. */
TEST(error_truncated_png)
{
    FILE *in = fopen(semd_test_path(data_dir(), "grey.png"), "rb");
    ASSERT(in);
    unsigned char buf[60];
    ASSERT_EQ(fread(buf, 1, sizeof buf, in), sizeof buf);
    fclose(in);
    const char *cut = semd_test_path(semd_test_tmpdir(), "cut.png");
    FILE *out = fopen(cut, "wb");
    ASSERT(out);
    ASSERT_EQ(fwrite(buf, 1, sizeof buf, out), sizeof buf);
    fclose(out);
    char json[512];
    snprintf(json, sizeof json,
             "{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"a\", \"mask\": \"%s\"}]}", cut);
    parse_err(json, SEMD_EFORMAT, "layers[0].mask: ");
    ASSERT_CONTAINS(semd_last_error(), "cut.png: corrupt PNG: ");
    uint8_t *m = (uint8_t *)1;
    ASSERT_EQ(semd_png_read_mask(cut, W, H, &m), SEMD_EFORMAT);
    ASSERT(m == NULL);
}

/* grey.png with `extra` (whole chunks) inserted after IHDR, written to the temporary folder. */
static const char *png_with_chunks(const char *name, const uint8_t *extra, size_t extra_len)
{
    FILE *in = fopen(semd_test_path(data_dir(), "grey.png"), "rb");
    ASSERT(in);
    uint8_t src[256];
    size_t n = fread(src, 1, sizeof src, in);
    fclose(in);
    ASSERT(n > 33 && n < sizeof src);
    const char *path = semd_test_path(semd_test_tmpdir(), name);
    FILE *out = fopen(path, "wb");
    ASSERT(out);
    /* signature (8) + IHDR (4 + 4 + 13 + 4) = 33 bytes */
    ASSERT_EQ(fwrite(src, 1, 33, out), 33);
    ASSERT_EQ(fwrite(extra, 1, extra_len, out), extra_len);
    ASSERT_EQ(fwrite(src + 33, 1, n - 33, out), n - 33);
    fclose(out);
    return path;
}

/* One chunk: length, type, data, CRC over type and data. */
static size_t put_chunk(uint8_t *p, const char *type, const void *data, uint32_t len)
{
    p[0] = (uint8_t)(len >> 24), p[1] = (uint8_t)(len >> 16), p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
    memcpy(p + 4, type, 4);
    memcpy(p + 8, data, len);
    uint32_t crc = (uint32_t)crc32(0, p + 4, len + 4);
    p[8 + len] = (uint8_t)(crc >> 24), p[9 + len] = (uint8_t)(crc >> 16);
    p[10 + len] = (uint8_t)(crc >> 8), p[11 + len] = (uint8_t)crc;
    return 12 + len;
}

/*
 * The reader skips every chunk but IHDR, PLTE, tRNS, IDAT and IEND: text,
 * ICC and other ancillary chunks - here ones libpng would warn about - leave
 * the pixels as they are, and one that claims more bytes than the file has
 * fails as a truncated file rather than being allocated at its claimed size
 * first (tests/fuzz/regression/fuzz_png/ztxt_claims_1p7gb.png claimed 1.7 GB).
 */
TEST(png_skips_ancillary_chunks)
{
    uint8_t extra[256];
    size_t n = 0;
    n += put_chunk(extra + n, "tEXt", "Comment\0a mask", 14);
    n += put_chunk(extra + n, "zTXt", "Title\0\0not zlib data", 20);
    n += put_chunk(extra + n, "iCCP", "icc\0\0\x78\x9c\x01\x02", 9);
    n += put_chunk(extra + n, "gAMA", "\x00\x00\xb1\x8f", 4);
    uint8_t *m = NULL;
    ASSERT_OK(semd_png_read_mask(png_with_chunks("ancillary.png", extra, n), W, H, &m));
    assert_mask_pattern(m);
    free(m);
    /* A zTXt header claiming 0x7ffffff0 bytes, and the file ends inside it. */
    const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xf0, 'z', 'T', 'X', 't', 'T', 'i', 't', 'l', 'e', 0, 0};
    m = (uint8_t *)1;
    ASSERT_EQ(semd_png_read_mask(png_with_chunks("huge_ztxt.png", huge, sizeof huge), W, H, &m), SEMD_EFORMAT);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(semd_last_error(), "huge_ztxt.png: corrupt PNG: ");
}

TEST(error_background)
{
    parse_err("{\"width\": 16, \"height\": 8, \"background\": {\"image\": \"bg.png\", \"color\": [0, 0, 0]}}",
              SEMD_EFORMAT, "background has both \"image\" and \"color\"");
    parse_err("{\"background\": {\"color\": [1, 2]}}", SEMD_EFORMAT,
              "background.color must be a list [r, g, b]");
    parse_err("{\"background\": {\"color\": [0, 0, 256]}}", SEMD_EFORMAT,
              "background.color[2] must be in 0..255 (got 256)");
    parse_err("{\"background\": \"white\"}", SEMD_EFORMAT, "background must be an object");
    parse_err("{\"background\": {\"prompt\": null}}", SEMD_EFORMAT, "background.prompt must be a string (got null)");
}

TEST(error_edit_layer_ids)
{
    const char *base = "{\"layers\": [{\"prompt\": \"a\"}, {\"prompt\": \"b\"}], \"edits\": [%s]}";
    char json[512];
    snprintf(json, sizeof json, base,
             "{\"frame\": 1, \"layer\": 0, \"remove\": true}, {\"frame\": 2, \"layer\": 0, \"prompt\": \"x\"}");
    parse_err(json, SEMD_EFORMAT, "edits[1].layer names layer 0, which does not exist at frame 2 (removed by edits[0])");
    snprintf(json, sizeof json, base, "{\"frame\": 1, \"layer\": 2, \"prompt\": \"x\"}");
    parse_err(json, SEMD_EFORMAT, "edits[0].layer names layer 2, which does not exist at frame 1 (never created)");
    snprintf(json, sizeof json, base,
             "{\"frame\": 1, \"layer\": 1, \"remove\": true}, {\"frame\": 1, \"layer\": 1, \"remove\": true}");
    parse_err(json, SEMD_EFORMAT, "edits[1].layer names layer 1, which does not exist");
    /* An added layer exists from its edit on, under the next id. */
    snprintf(json, sizeof json, base,
             "{\"frame\": 1, \"layer\": 2, \"prompt\": \"x\"}, {\"frame\": 1, \"add_layer\": {\"prompt\": \"c\"}}");
    parse_err(json, SEMD_EFORMAT, "edits[0].layer names layer 2");
    snprintf(json, sizeof json, base,
             "{\"frame\": 1, \"add_layer\": {\"prompt\": \"c\"}}, {\"frame\": 1, \"layer\": 2, \"prompt\": \"x\"}");
    semd_scene *s = parse_ok(json);
    ASSERT_EQ(s->edits[0].layer, 2);
    semd_scene_free(s);
    snprintf(json, sizeof json, base, "{\"frame\": 1, \"layer\": -1, \"prompt\": \"x\"}");
    parse_err(json, SEMD_EFORMAT, "edits[0].layer must be >= 0 (got -1)");
}

TEST(error_edit_forms)
{
    parse_err("{\"edits\": [{\"frame\": 5, \"seed\": 1}, {\"frame\": 1, \"seed\": 2}]}", SEMD_EFORMAT,
              "edits[1] has frame 1, before the frame 5 of edits[0]; edits must be sorted by frame");
    semd_scene *s = parse_ok("{\"edits\": [{\"frame\": 1, \"seed\": 1}, {\"frame\": 1, \"seed\": 2}]}");
    ASSERT_EQ(s->n_edits, 2);
    semd_scene_free(s);
    parse_err("{\"edits\": [{\"frame\": 1}]}", SEMD_EFORMAT,
              "edits[0] needs one of \"layer\", \"add_layer\", \"background\" or \"seed\"");
    parse_err("{\"edits\": [{\"seed\": 1}]}", SEMD_EFORMAT, "edits[0] needs a \"frame\"");
    parse_err("{\"edits\": [{\"frame\": -1, \"seed\": 1}]}", SEMD_EFORMAT, "edits[0].frame must be >= 0");
    parse_err("{\"edits\": [{\"frame\": 1, \"seed\": 1, \"background\": {\"prompt\": \"x\"}}]}", SEMD_EFORMAT,
              "edits[0] combines \"background\" and \"seed\"");
    parse_err("{\"edits\": [{\"frame\": 1, \"seed\": -3}]}", SEMD_EFORMAT, "edits[0].seed must be >= 0 (got -3)");
    parse_err("{\"layers\": [{\"prompt\": \"a\"}], \"edits\": [{\"frame\": 1, \"layer\": 0, \"remove\": false}]}",
              SEMD_EFORMAT, "edits[0].remove must be true");
    parse_err("{\"layers\": [{\"prompt\": \"a\"}], \"edits\": [{\"frame\": 1, \"layer\": 0, \"remove\": true, "
              "\"prompt\": \"b\"}]}",
              SEMD_EFORMAT, "edits[0] removes layer 0 and cannot change it too");
    parse_err("{\"layers\": [{\"prompt\": \"a\"}], \"edits\": [{\"frame\": 1, \"layer\": 0}]}", SEMD_EFORMAT,
              "edits[0] names layer 0 but changes nothing");
    parse_err("{\"layers\": [{\"prompt\": \"a\"}], \"edits\": [{\"frame\": 1, \"layer\": 0, \"mask_std\": -2}]}",
              SEMD_EFORMAT, "edits[0].mask_std must be >= 0");
    parse_err("{\"edits\": [{\"frame\": 1, \"background\": {}}]}", SEMD_EFORMAT,
              "edits[0].background changes nothing");
    parse_err("{\"edits\": [{\"frame\": 1, \"add_layer\": {\"mask_std\": 1}}]}", SEMD_EFORMAT,
              "edits[0].add_layer needs a \"prompt\"");
    parse_err("{\"edits\": [{\"frame\": 1, \"add_layer\": {\"prompt\": \"a\", \"z\": 1}}]}", SEMD_EFORMAT,
              "edits[0].add_layer.z is not a known key");
    parse_err("{\"edits\": {\"frame\": 1}}", SEMD_EFORMAT, "edits must be a list");
    parse_err("{\"edits\": [3]}", SEMD_EFORMAT, "edits[0] must be an object");
}

/* Relative mask paths resolve against the scene's folder, or the working directory. */
TEST(relative_paths)
{
    if (chdir(data_dir()) != 0) FAIL("chdir %s", data_dir());
    semd_scene *s = NULL;
    ASSERT_OK(semd_scene_load("full.json", &s)); /* no folder in the path */
    ASSERT_STREQ(s->layers[0].mask_path, "grey.png");
    semd_scene_free(s);
    const char *json = "{\"width\": 16, \"height\": 8, \"layers\": [{\"prompt\": \"p\", \"mask\": \"grey.png\"}]}";
    ASSERT_OK(semd_scene_parse(json, strlen(json), "x.json", NULL, &s));
    ASSERT_STREQ(s->layers[0].mask_path, "grey.png");
    assert_mask_pattern(s->layers[0].mask);
    semd_scene_free(s);
    /* A scene file elsewhere resolves against its own folder, where grey.png is not. */
    const char *other = semd_test_path(semd_test_tmpdir(), "s.json");
    FILE *f = fopen(other, "w");
    ASSERT(f);
    fputs(json, f);
    fclose(f);
    ASSERT_EQ(semd_scene_load(other, &s), SEMD_EIO);
    ASSERT_CONTAINS(semd_last_error(), "s.json: layers[0].mask: ");
    ASSERT_CONTAINS(semd_last_error(), semd_test_path(semd_test_tmpdir(), "grey.png"));
}

static const struct semd_test tests[] = {
    TEST_ENTRY(full_scene),
    TEST_ENTRY(defaults),
    TEST_ENTRY(layer_defaults_per_mode),
    TEST_ENTRY(background_image_prompt_defaults),
    TEST_ENTRY(png_mask_channels),
    TEST_ENTRY(png_background_channels),
    TEST_ENTRY(error_malformed_json),
    TEST_ENTRY(error_unknown_and_duplicate_keys),
    TEST_ENTRY(error_enums),
    TEST_ENTRY(error_timesteps),
    TEST_ENTRY(error_canvas_size),
    TEST_ENTRY(error_settings_ranges),
    TEST_ENTRY(error_layers),
    TEST_ENTRY(error_layer_limit),
    TEST_ENTRY(error_mask_files),
    TEST_ENTRY(error_truncated_png),
    TEST_ENTRY(png_skips_ancillary_chunks),
    TEST_ENTRY(error_background),
    TEST_ENTRY(error_edit_layer_ids),
    TEST_ENTRY(error_edit_forms),
    TEST_ENTRY(relative_paths),
    {NULL, NULL}};

SEMD_TEST_MAIN(tests)
