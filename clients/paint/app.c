/*
 * app.c - the actions the mouse, the keyboard and the script share: layer
 * management, the brush, play/pause, saving and loading, and the status bar.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paint.h"

uint64_t paint_now_ms(void) { return SDL_GetTicks64(); }

void paint_debug(const char *fmt, ...)
{
    if (!getenv("SEMDRAW_PAINT_DEBUG")) return; /* read each time: both threads call this */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "semdraw-paint: [%7.3f] ", paint_now_ms() / 1000.0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void vstatus(paint_app *a, int error, const char *fmt, va_list ap)
{
    vsnprintf(a->status, sizeof a->status, fmt, ap);
    a->status_error = error;
    a->status_ms = paint_now_ms();
    a->redraw = 1;
    if (error) fprintf(stderr, "semdraw-paint: %s\n", a->status);
}

void app_status(paint_app *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vstatus(a, 0, fmt, ap);
    va_end(ap);
}

void app_error(paint_app *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vstatus(a, 1, fmt, ap);
    va_end(ap);
}

void app_canvas_dirty(paint_app *a, SDL_Rect r)
{
    SDL_Rect *d = &a->canvas_dirty;
    if (d->w <= 0 || d->h <= 0) *d = r;
    else SDL_UnionRect(d, &r, d);
    a->redraw = 1;
}

static void commit_layer_edit(paint_app *a)
{
    if (a->focus == CTL_LAYER_PROMPT || a->focus == CTL_LAYER_NEGATIVE) ui_focus(a, CTL_NONE);
}

void app_select_layer(paint_app *a, int index)
{
    if (index < 0 || index >= a->doc.n_layers) return;
    commit_layer_edit(a);
    a->doc.selected = index;
    ui_show_selected(a);
    a->redraw = 1;
}

void app_add_layer(paint_app *a)
{
    commit_layer_edit(a);
    paint_layer *l = doc_add_layer(&a->doc, "");
    if (!l) {
        app_error(a, "cannot add a layer: at most %d", PAINT_MAX_LAYERS);
        return;
    }
    app_select_layer(a, a->doc.n_layers - 1);
    app_status(a, "layer #%d added: type its prompt, Enter applies", a->doc.n_layers - 1);
    ui_focus(a, CTL_LAYER_PROMPT);
}

void app_remove_layer(paint_app *a, int index)
{
    if (index < 0 || index >= a->doc.n_layers) return;
    commit_layer_edit(a);
    session_layer_removed(a, a->doc.layers[index]->uid);
    doc_remove_layer(&a->doc, index);
    app_canvas_dirty(a, (SDL_Rect){0, 0, a->doc.width, a->doc.height});
    ui_layout(a);
    app_status(a, "layer #%d removed", index);
}

float app_max_brush(const paint_app *a)
{
    return (float)SDL_max(32, SDL_max(a->doc.width, a->doc.height) / 8);
}

void app_set_brush_radius(paint_app *a, float r)
{
    float hi = app_max_brush(a);
    a->brush_radius = r < 1 ? 1 : r > hi ? hi : r;
    a->redraw = 1;
}

void app_toggle_play(paint_app *a)
{
    a->ses.want_stream = !a->ses.want_stream; /* session_update() tells the control thread */
    app_status(a, "%s", a->ses.want_stream ? "playing" : "paused");
}

int app_save_image(paint_app *a, const char *path)
{
    const paint_session *s = &a->ses;
    if (!s->have_frame || s->frame_w != a->doc.width || s->frame_h != a->doc.height) {
        app_error(a, "save image: no frame yet");
        return -1;
    }
    size_t n = (size_t)s->frame_w * s->frame_h;
    uint8_t *rgb = malloc(n * 3);
    if (!rgb) {
        app_error(a, "save image: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) memcpy(rgb + 3 * i, s->frame + 4 * i, 3);
    char err[512];
    int rc = png_save(path, rgb, s->frame_w, s->frame_h, s->frame_w * 3, 3, err, sizeof err);
    free(rgb);
    if (rc) app_error(a, "save image: %s", err);
    else app_status(a, "saved frame %llu to %s", (unsigned long long)s->last_seq, path);
    return rc;
}

int app_save_scene(paint_app *a, const char *path)
{
    if (!path || !*path) {
        app_error(a, "save scene: type a file name (scene.json) in the file field");
        return -1;
    }
    char err[1024];
    if (scene_save(&a->doc, path, err, sizeof err)) {
        app_error(a, "save scene: %s", err);
        return -1;
    }
    app_status(a, "saved the scene to %s (%d layers)", path, a->doc.n_layers);
    return 0;
}

int app_load_scene(paint_app *a, const char *path)
{
    if (!path || !*path) {
        app_error(a, "load scene: type a file name in the file field");
        return -1;
    }
    char err[1024], warn[512];
    paint_doc d;
    if (scene_load(path, &d, warn, sizeof warn, err, sizeof err)) {
        app_error(a, "load scene: %s", err);
        return -1;
    }
    ui_focus(a, CTL_NONE);
    a->drawing = 0, a->drag = CTL_NONE;
    doc_free(&a->doc);
    a->doc = d;
    if (path != a->file_path) snprintf(a->file_path, sizeof a->file_path, "%s", path);
    if (app_doc_replaced(a)) return -1;
    session_resend_all(a); /* a new canvas */
    if (*warn) app_status(a, "loaded %s: %s", path, warn);
    else app_status(a, "loaded %s (%d layers)", path, a->doc.n_layers);
    return 0;
}

int app_doc_replaced(paint_app *a)
{
    paint_doc *d = &a->doc;
    if (!a->canvas_tex || a->tex_w != d->width || a->tex_h != d->height) {
        if (a->canvas_tex) SDL_DestroyTexture(a->canvas_tex);
        if (a->image_tex) SDL_DestroyTexture(a->image_tex);
        free(a->canvas_argb);
        free(a->ses.frame);
        size_t n = (size_t)d->width * d->height;
        a->canvas_argb = malloc(n * 4);
        a->ses.frame = calloc(n, 4);
        a->canvas_tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_STREAMING, d->width,
                                          d->height);
        a->image_tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_RGBA32, SDL_TEXTUREACCESS_STREAMING, d->width,
                                         d->height);
        a->tex_w = d->width, a->tex_h = d->height;
        if (!a->canvas_argb || !a->ses.frame || !a->canvas_tex || !a->image_tex) {
            app_error(a, "cannot make a %dx%d canvas: %s", d->width, d->height, SDL_GetError());
            return -1;
        }
        SDL_SetTextureScaleMode(a->canvas_tex, SDL_ScaleModeNearest); /* see the painted pixels */
        SDL_SetTextureScaleMode(a->image_tex, SDL_ScaleModeLinear);
        SDL_SetTextureBlendMode(a->image_tex, SDL_BLENDMODE_NONE);
    }
    a->ses.have_frame = a->ses.frame_new = 0;
    a->canvas_dirty = (SDL_Rect){0, 0, d->width, d->height};
    if (a->brush_radius <= 0) a->brush_radius = (float)SDL_max(2, SDL_min(d->width, d->height) / 16);
    app_set_brush_radius(a, a->brush_radius);
    a->first_row = 0;
    ui_layout(a);
    a->redraw = 1;
    return 0;
}
