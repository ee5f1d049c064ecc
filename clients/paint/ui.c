/*
 * ui.c - the window: layout, drawing, and what mouse and keyboard do.
 *
 *  +---------------------------------------------------------------------+
 *  | [Pause] [Brush] [Eraser] Size[----] Seed[....][Random] [Save...] ... |  toolbar
 *  | Canvas caption             | Generated caption       | Background   |
 *  | +-----------------------+  | +---------------------+ | [prompt]     |
 *  | | masks as colour       |  | | the daemon's frames | | Layers [+][-]|
 *  | | overlays              |  | |                     | | #1 ...       |
 *  | +-----------------------+  | +---------------------+ | layer editor |
 *  | status message                       fps, latency, frames, commits  |
 *  +---------------------------------------------------------------------+
 *
 * Controls are identified by enum paint_ctl; ui_layout() gives each its
 * rectangle, the renderer draws them from their current values and the input
 * handler hit-tests them. The script driver feeds synthetic SDL events into
 * ui_handle_event(), so it takes the same paths as a person.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paint.h"

#define MARGIN 8
#define TOOLBAR_H 28
#define CAPTION_H 22
#define STATUS_H 26
#define PANEL_W 340
#define ROW_H 24
#define LABEL_H 18

static const SDL_Color C_TEXT = {230, 231, 235, 255};
static const SDL_Color C_DIM = {150, 156, 168, 255};
static const SDL_Color C_ERROR = {255, 125, 110, 255};
static const SDL_Color C_OK = {140, 220, 140, 255};

static void set_color(SDL_Renderer *r, uint8_t cr, uint8_t cg, uint8_t cb)
{
    SDL_SetRenderDrawColor(r, cr, cg, cb, 255);
}

static int is_field(int ctl)
{
    return ctl == CTL_SEED || ctl == CTL_PATH || ctl == CTL_BG_PROMPT || ctl == CTL_BG_NEGATIVE ||
           ctl == CTL_LAYER_PROMPT || ctl == CTL_LAYER_NEGATIVE;
}

static int is_slider(int ctl)
{
    return ctl == CTL_SIZE || ctl == CTL_MASK_STD || ctl == CTL_MASK_STRENGTH || ctl == CTL_PROMPT_STRENGTH;
}

static paint_layer *selected_layer(paint_app *a)
{
    int i = a->doc.selected;
    return i >= 0 && i < a->doc.n_layers ? a->doc.layers[i] : NULL;
}

/* ---- layout ---- */

static float view_scale(const paint_app *a)
{
    return a->canvas_view.w / (float)a->doc.width;
}

static SDL_Rect fit(SDL_Rect box, int w, int h)
{
    float s = fminf(box.w / (float)w, box.h / (float)h);
    int vw = (int)(w * s), vh = (int)(h * s);
    return (SDL_Rect){box.x + (box.w - vw) / 2, box.y + (box.h - vh) / 2, vw, vh};
}

void ui_layout(paint_app *a)
{
    SDL_GetRendererOutputSize(a->ren, &a->win_w, &a->win_h);
    int W = a->win_w, H = a->win_h;
    memset(a->ctl, 0, sizeof a->ctl);

    /* toolbar */
    int x = MARGIN, y = MARGIN;
#define PLACE(id, w) (a->ctl[id] = (SDL_Rect){x, y, (w), TOOLBAR_H}, x += (w) + 6)
    PLACE(CTL_PLAY, 76);
    PLACE(CTL_BRUSH, 62);
    PLACE(CTL_ERASER, 62);
    x += 6;
    PLACE(CTL_SIZE, 150);
    x += 6 + 40; /* "Seed" */
    PLACE(CTL_SEED, 120);
    PLACE(CTL_SEED_RANDOM, 70);
    x += 6;
    PLACE(CTL_SAVE_IMAGE, 94);
    PLACE(CTL_SAVE_SCENE, 94);
    PLACE(CTL_LOAD_SCENE, 94);
    PLACE(CTL_PATH, SDL_max(120, W - MARGIN - x));
#undef PLACE

    /* panes */
    int top = MARGIN + TOOLBAR_H + MARGIN;
    int pane_y = top + CAPTION_H;
    int bottom = H - STATUS_H - MARGIN;
    int avail = W - PANEL_W - 3 * MARGIN;
    int side = SDL_max(32, SDL_min((avail - MARGIN) / 2, bottom - pane_y));
    SDL_Rect box_l = {MARGIN, pane_y, side, side}, box_r = {MARGIN + side + MARGIN, pane_y, side, side};
    a->canvas_view = fit(box_l, a->doc.width, a->doc.height);
    a->image_view = fit(box_r, a->doc.width, a->doc.height);
    a->ctl[CTL_CANVAS] = a->canvas_view;
    a->ctl[CTL_IMAGE] = a->image_view;

    /* the panel */
    int px = W - PANEL_W, pw = PANEL_W - MARGIN;
    a->panel = (SDL_Rect){px, top, pw, bottom - top};
    y = top + LABEL_H;
    a->ctl[CTL_BG_PROMPT] = (SDL_Rect){px, y, pw, ROW_H};
    y += ROW_H + LABEL_H;
    a->ctl[CTL_BG_NEGATIVE] = (SDL_Rect){px, y, pw, ROW_H};
    y += ROW_H + 10;
    a->ctl[CTL_ADD_LAYER] = (SDL_Rect){px + pw - 160, y, 76, ROW_H};
    a->ctl[CTL_REMOVE_LAYER] = (SDL_Rect){px + pw - 78, y, 78, ROW_H};
    y += ROW_H + 4;
    int help_h = 3 * 16 + 4;
    int editor_h = LABEL_H + ROW_H + LABEL_H + ROW_H + 8 + 3 * (ROW_H + 4);
    int rows_h = bottom - help_h - editor_h - 8 - y;
    a->n_rows = SDL_max(1, rows_h / ROW_H);
    if (a->n_rows > PAINT_MAX_LAYERS) a->n_rows = PAINT_MAX_LAYERS;
    /* rows show the top layer first (ui_show_selected scrolls them) */
    int n = a->doc.n_layers;
    a->first_row = SDL_max(0, SDL_min(a->first_row, n - a->n_rows));
    for (int r = 0; r < a->n_rows && a->first_row + r < n; r++)
        a->ctl[CTL_LAYER_ROW + r] = (SDL_Rect){px, y + r * ROW_H, pw, ROW_H - 2};
    y += a->n_rows * ROW_H + 8;
    y += LABEL_H;
    a->ctl[CTL_LAYER_PROMPT] = (SDL_Rect){px, y, pw, ROW_H};
    y += ROW_H + LABEL_H;
    a->ctl[CTL_LAYER_NEGATIVE] = (SDL_Rect){px, y, pw, ROW_H};
    y += ROW_H + 8;
    a->ctl[CTL_MASK_STD] = (SDL_Rect){px, y, pw, ROW_H};
    y += ROW_H + 4;
    a->ctl[CTL_MASK_STRENGTH] = (SDL_Rect){px, y, pw, ROW_H};
    y += ROW_H + 4;
    a->ctl[CTL_PROMPT_STRENGTH] = (SDL_Rect){px, y, pw, ROW_H};
    a->status_bar = (SDL_Rect){0, H - STATUS_H, W, STATUS_H};
}

void ui_show_selected(paint_app *a)
{
    int k = a->doc.n_layers - 1 - a->doc.selected;
    if (a->doc.selected < 0) return;
    if (k < a->first_row) a->first_row = k;
    if (k >= a->first_row + a->n_rows) a->first_row = k - a->n_rows + 1;
    ui_layout(a);
}

const SDL_Rect *ui_layer_row(paint_app *a, int index)
{
    int k = a->doc.n_layers - 1 - index - a->first_row;
    if (index < 0 || index >= a->doc.n_layers || k < 0 || k >= a->n_rows) return NULL;
    return &a->ctl[CTL_LAYER_ROW + k];
}

void ui_canvas_to_window(const paint_app *a, float cx, float cy, int *wx, int *wy)
{
    float s = view_scale(a);
    *wx = a->canvas_view.x + (int)floorf(cx * s);
    *wy = a->canvas_view.y + (int)floorf(cy * s);
}

static void window_to_canvas(const paint_app *a, int wx, int wy, float *cx, float *cy)
{
    float s = view_scale(a);
    *cx = (wx - a->canvas_view.x + 0.5f) / s;
    *cy = (wy - a->canvas_view.y + 0.5f) / s;
}

static int inside(const SDL_Rect *r, int x, int y)
{
    return r->w > 0 && x >= r->x && x < r->x + r->w && y >= r->y && y < r->y + r->h;
}

static int hit(paint_app *a, int x, int y)
{
    for (int c = CTL_NONE + 1; c < CTL_COUNT; c++)
        if (inside(&a->ctl[c], x, y)) return c;
    return CTL_NONE;
}

/* ---- values ---- */

static void slider_range(const paint_app *a, int ctl, float *lo, float *hi, float *step)
{
    switch (ctl) {
    case CTL_SIZE:
        *lo = 1, *hi = app_max_brush(a), *step = 1;
        break;
    case CTL_MASK_STD: *lo = 0, *hi = 64, *step = 0.5f; break;
    default: *lo = 0, *hi = 1, *step = 0.01f; break;
    }
}

static float slider_value(paint_app *a, int ctl)
{
    paint_layer *l = selected_layer(a);
    switch (ctl) {
    case CTL_SIZE: return a->brush_radius;
    case CTL_MASK_STD: return l ? l->mask_std : 0;
    case CTL_MASK_STRENGTH: return l ? l->mask_strength : 0;
    case CTL_PROMPT_STRENGTH: return l ? l->prompt_strength : 0;
    default: return 0;
    }
}

void ui_slider_set(paint_app *a, int ctl, float v)
{
    float lo, hi, step;
    slider_range(a, ctl, &lo, &hi, &step);
    v = roundf(v / step) * step;
    v = v < lo ? lo : v > hi ? hi : v;
    paint_layer *l = selected_layer(a);
    a->redraw = 1;
    if (ctl == CTL_SIZE) {
        app_set_brush_radius(a, v);
        return;
    }
    if (!l) return;
    float *field = ctl == CTL_MASK_STD ? &l->mask_std : ctl == CTL_MASK_STRENGTH ? &l->mask_strength
                                                                                 : &l->prompt_strength;
    unsigned bit = ctl == CTL_MASK_STD ? SEMDRAW_LAYER_MASK_STD
                   : ctl == CTL_MASK_STRENGTH ? SEMDRAW_LAYER_MASK_STRENGTH
                                              : SEMDRAW_LAYER_PROMPT_STRENGTH;
    if (*field != v) {
        *field = v;
        l->dirty |= bit;
    }
}

static void slider_from_x(paint_app *a, int ctl, int x)
{
    float lo, hi, step;
    slider_range(a, ctl, &lo, &hi, &step);
    const SDL_Rect *r = &a->ctl[ctl];
    float t = r->w > 1 ? (x - r->x) / (float)(r->w - 1) : 0;
    ui_slider_set(a, ctl, lo + (hi - lo) * (t < 0 ? 0 : t > 1 ? 1 : t));
}

/* The committed text of a field (not the text being edited). */
static const char *field_value(paint_app *a, int ctl, char *buf, size_t size)
{
    paint_layer *l = selected_layer(a);
    switch (ctl) {
    case CTL_SEED: snprintf(buf, size, "%llu", (unsigned long long)a->doc.seed); return buf;
    case CTL_PATH: return a->file_path;
    case CTL_BG_PROMPT: return a->doc.bg_prompt;
    case CTL_BG_NEGATIVE: return a->doc.bg_negative;
    case CTL_LAYER_PROMPT: return l ? l->prompt : "";
    case CTL_LAYER_NEGATIVE: return l ? l->negative : "";
    default: return "";
    }
}

static void set_text(paint_app *a, const char *what, char *dst, const char *src, unsigned *dirty, unsigned bit)
{
    if (strcmp(dst, src) == 0) return;
    snprintf(dst, PAINT_TEXT_MAX, "%s", src);
    *dirty |= bit;
    app_status(a, "%s: %s", what, *src ? src : "(empty)");
}

/* Enter: the edited text becomes the field's value. */
static void field_apply(paint_app *a)
{
    int ctl = a->focus;
    paint_layer *l = selected_layer(a);
    switch (ctl) {
    case CTL_SEED: {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(a->edit, &end, 10);
        if (!*a->edit || *end || errno || a->edit[0] == '-' || v > (1ull << 53)) {
            app_error(a, "the seed must be a whole number from 0 to 2^53");
        } else if (v != a->doc.seed) {
            a->doc.seed = v;
            a->ses.dirty |= PAINT_DIRTY_SEED;
            app_status(a, "seed %llu", v);
        }
        break;
    }
    case CTL_PATH: snprintf(a->file_path, sizeof a->file_path, "%s", a->edit); break;
    case CTL_BG_PROMPT:
        set_text(a, "background", a->doc.bg_prompt, a->edit, &a->ses.dirty, PAINT_DIRTY_BG_TEXT);
        break;
    case CTL_BG_NEGATIVE:
        set_text(a, "background negative", a->doc.bg_negative, a->edit, &a->ses.dirty, PAINT_DIRTY_BG_TEXT);
        break;
    case CTL_LAYER_PROMPT:
        if (l) set_text(a, "layer prompt", l->prompt, a->edit, &l->dirty, SEMDRAW_LAYER_PROMPT);
        break;
    case CTL_LAYER_NEGATIVE:
        if (l) set_text(a, "layer negative prompt", l->negative, a->edit, &l->dirty, SEMDRAW_LAYER_NEGATIVE);
        break;
    default: break;
    }
}

void ui_focus(paint_app *a, int ctl)
{
    if (a->focus == ctl) return;
    if (a->focus != CTL_NONE) field_apply(a);
    a->focus = CTL_NONE;
    a->redraw = 1;
    if (!is_field(ctl) || ((ctl == CTL_LAYER_PROMPT || ctl == CTL_LAYER_NEGATIVE) && !selected_layer(a))) {
        SDL_StopTextInput();
        return;
    }
    char buf[32];
    snprintf(a->edit, sizeof a->edit, "%s", field_value(a, ctl, buf, sizeof buf));
    a->focus = ctl;
    SDL_SetTextInputRect(&a->ctl[ctl]);
    SDL_StartTextInput();
}

static void field_cancel(paint_app *a)
{
    a->focus = CTL_NONE;
    a->redraw = 1;
    SDL_StopTextInput();
}

static void field_backspace(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && ((uint8_t)s[n - 1] & 0xc0) == 0x80) n--; /* UTF-8 continuation bytes */
    if (n > 0) n--;
    s[n] = '\0';
}

static void field_insert(paint_app *a, const char *text)
{
    size_t n = strlen(a->edit), m = 0;
    for (const char *p = text; *p; p++) /* one line: newlines from a paste become spaces */
        if (n + m + 1 < sizeof a->edit) a->edit[n + m++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    a->edit[n + m] = '\0';
    /* never leave half a UTF-8 sequence at the end */
    size_t end = n + m, k = end;
    while (k > 0 && ((uint8_t)a->edit[k - 1] & 0xc0) == 0x80) k--;
    if (k > 0) {
        uint8_t lead = (uint8_t)a->edit[k - 1];
        size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (end - (k - 1) < need) a->edit[k - 1] = '\0';
    }
    a->redraw = 1;
}

/* ---- painting ---- */

static void stroke_to(paint_app *a, int wx, int wy)
{
    paint_layer *l = selected_layer(a);
    if (!l) return;
    float cx, cy;
    window_to_canvas(a, wx, wy, &cx, &cy);
    SDL_Rect dirty = {0, 0, 0, 0};
    uint8_t value = a->drawing == 2 || a->tool == PAINT_ERASER ? 0 : 255;
    if (a->drawing == 3) value = 255; /* right button with the eraser selected paints */
    if (doc_paint_segment(&a->doc, l->mask, a->last_cx, a->last_cy, cx, cy, a->brush_radius, value, &dirty)) {
        l->dirty |= SEMDRAW_LAYER_MASK;
        app_canvas_dirty(a, dirty);
    }
    a->last_cx = cx, a->last_cy = cy;
}

static void stroke_begin(paint_app *a, int wx, int wy, int right_button)
{
    if (!selected_layer(a)) app_add_layer(a); /* painting needs a layer: make one */
    if (!selected_layer(a)) return;
    ui_focus(a, CTL_NONE);
    /* the right button does the opposite of the tool */
    a->drawing = right_button ? (a->tool == PAINT_ERASER ? 3 : 2) : 1;
    window_to_canvas(a, wx, wy, &a->last_cx, &a->last_cy);
    stroke_to(a, wx, wy);
}

/* ---- actions ---- */

static void random_seed(paint_app *a)
{
    uint64_t x = SDL_GetPerformanceCounter() ^ (a->doc.seed * 0x9e3779b97f4a7c15ull);
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    a->doc.seed = x & 0x7fffffffu;
    a->ses.dirty |= PAINT_DIRTY_SEED;
    app_status(a, "seed %llu", (unsigned long long)a->doc.seed);
}

static void image_path(const paint_app *a, char *out, size_t size)
{
    size_t n = strlen(a->file_path);
    if (n > 5 && strcmp(a->file_path + n - 5, ".json") == 0) n -= 5;
    snprintf(out, size, "%.*s.png", (int)n, a->file_path);
}

static void click(paint_app *a, int ctl, int x)
{
    if (ctl != a->focus && a->focus != CTL_NONE) ui_focus(a, CTL_NONE);
    if (is_field(ctl)) {
        ui_focus(a, ctl);
        return;
    }
    if (is_slider(ctl)) {
        a->drag = ctl;
        slider_from_x(a, ctl, x);
        return;
    }
    if (ctl >= CTL_LAYER_ROW) {
        int index = a->doc.n_layers - 1 - (a->first_row + ctl - CTL_LAYER_ROW);
        app_select_layer(a, index);
        return;
    }
    char path[PAINT_PATH_MAX + 8];
    switch (ctl) {
    case CTL_PLAY: app_toggle_play(a); break;
    case CTL_BRUSH: a->tool = PAINT_BRUSH; break;
    case CTL_ERASER: a->tool = PAINT_ERASER; break;
    case CTL_SEED_RANDOM: random_seed(a); break;
    case CTL_SAVE_IMAGE:
        image_path(a, path, sizeof path);
        app_save_image(a, path);
        break;
    case CTL_SAVE_SCENE: app_save_scene(a, a->file_path); break;
    case CTL_LOAD_SCENE: app_load_scene(a, a->file_path); break;
    case CTL_ADD_LAYER: app_add_layer(a); break;
    case CTL_REMOVE_LAYER: app_remove_layer(a, a->doc.selected); break;
    default: break;
    }
    a->redraw = 1;
}

static const int field_order[] = {CTL_BG_PROMPT, CTL_BG_NEGATIVE, CTL_LAYER_PROMPT, CTL_LAYER_NEGATIVE, CTL_SEED,
                                  CTL_PATH};

static void field_key(paint_app *a, const SDL_KeyboardEvent *k)
{
    int ctrl = (k->keysym.mod & KMOD_CTRL) != 0;
    switch (k->keysym.sym) {
    case SDLK_BACKSPACE: field_backspace(a->edit); break;
    case SDLK_RETURN:
    case SDLK_KP_ENTER: ui_focus(a, CTL_NONE); break;
    case SDLK_ESCAPE: field_cancel(a); break;
    case SDLK_TAB: {
        int n = (int)(sizeof field_order / sizeof field_order[0]), i = 0;
        while (i < n && field_order[i] != a->focus) i++;
        int next = field_order[(i + ((k->keysym.mod & KMOD_SHIFT) ? n - 1 : 1)) % n];
        ui_focus(a, CTL_NONE);
        ui_focus(a, next);
        break;
    }
    case SDLK_u:
        if (ctrl) a->edit[0] = '\0';
        break;
    case SDLK_v:
        if (ctrl && SDL_HasClipboardText()) {
            char *clip = SDL_GetClipboardText();
            if (clip) field_insert(a, clip);
            SDL_free(clip);
        }
        break;
    default: break;
    }
    a->redraw = 1;
}

static void shortcut(paint_app *a, const SDL_KeyboardEvent *k)
{
    int ctrl = (k->keysym.mod & KMOD_CTRL) != 0;
    char path[PAINT_PATH_MAX + 8];
    SDL_Keycode sym = k->keysym.sym;
    if (ctrl) {
        if (sym == SDLK_s) {
            app_save_scene(a, a->file_path);
        } else if (sym == SDLK_e) {
            image_path(a, path, sizeof path);
            app_save_image(a, path);
        } else if (sym == SDLK_o) {
            app_load_scene(a, a->file_path);
        } else if (sym == SDLK_q) {
            a->quit = 1;
        }
        return;
    }
    switch (sym) {
    case SDLK_SPACE: app_toggle_play(a); break;
    case SDLK_b: a->tool = PAINT_BRUSH; break;
    case SDLK_e: a->tool = PAINT_ERASER; break;
    case SDLK_LEFTBRACKET: app_set_brush_radius(a, a->brush_radius - SDL_max(1.0f, roundf(a->brush_radius / 8))); break;
    case SDLK_RIGHTBRACKET: app_set_brush_radius(a, a->brush_radius + SDL_max(1.0f, roundf(a->brush_radius / 8))); break;
    case SDLK_n: app_add_layer(a); break;
    case SDLK_DELETE: app_remove_layer(a, a->doc.selected); break;
    case SDLK_UP: app_select_layer(a, a->doc.selected + 1); break;
    case SDLK_DOWN: app_select_layer(a, a->doc.selected - 1); break;
    case SDLK_r: random_seed(a); break;
    case SDLK_RETURN: ui_focus(a, CTL_LAYER_PROMPT); break;
    case SDLK_F5: session_reconnect(a); break;
    default:
        if (sym >= SDLK_1 && sym <= SDLK_9) app_select_layer(a, (int)(sym - SDLK_1));
        break;
    }
}

void ui_handle_event(paint_app *a, const SDL_Event *ev)
{
    switch (ev->type) {
    case SDL_QUIT: a->quit = 1; break;
    case SDL_WINDOWEVENT:
        if (ev->window.event == SDL_WINDOWEVENT_SIZE_CHANGED) ui_layout(a);
        if (ev->window.event == SDL_WINDOWEVENT_LEAVE) a->mouse_in = 0;
        a->redraw = 1;
        break;
    case SDL_MOUSEMOTION:
        a->mouse_x = ev->motion.x, a->mouse_y = ev->motion.y;
        a->mouse_in = inside(&a->canvas_view, a->mouse_x, a->mouse_y);
        if (a->drawing) stroke_to(a, ev->motion.x, ev->motion.y);
        if (a->drag) slider_from_x(a, a->drag, ev->motion.x);
        a->redraw = 1;
        break;
    case SDL_MOUSEBUTTONDOWN: {
        int x = ev->button.x, y = ev->button.y, ctl = hit(a, x, y);
        a->mouse_x = x, a->mouse_y = y;
        if (ctl == CTL_CANVAS && (ev->button.button == SDL_BUTTON_LEFT || ev->button.button == SDL_BUTTON_RIGHT))
            stroke_begin(a, x, y, ev->button.button == SDL_BUTTON_RIGHT);
        else if (ev->button.button == SDL_BUTTON_LEFT)
            click(a, ctl, x);
        a->redraw = 1;
        break;
    }
    case SDL_MOUSEBUTTONUP:
        if (a->drawing) stroke_to(a, ev->button.x, ev->button.y);
        a->drawing = 0;
        a->drag = CTL_NONE;
        break;
    case SDL_MOUSEWHEEL: {
        int dy = ev->wheel.y * (ev->wheel.direction == SDL_MOUSEWHEEL_FLIPPED ? -1 : 1);
        if (inside(&a->canvas_view, a->mouse_x, a->mouse_y))
            app_set_brush_radius(a, a->brush_radius + (float)dy);
        else if (inside(&a->panel, a->mouse_x, a->mouse_y) && dy) {
            a->first_row = SDL_max(0, a->first_row - dy);
            ui_layout(a);
        }
        a->redraw = 1;
        break;
    }
    case SDL_TEXTINPUT:
        if (a->focus) field_insert(a, ev->text.text);
        break;
    case SDL_KEYDOWN:
        if (a->focus) field_key(a, &ev->key);
        else shortcut(a, &ev->key);
        a->redraw = 1;
        break;
    default: break;
    }
}

/* ---- drawing ---- */

static void fill(paint_app *a, const SDL_Rect *r, uint8_t cr, uint8_t cg, uint8_t cb)
{
    set_color(a->ren, cr, cg, cb);
    SDL_RenderFillRect(a->ren, r);
}

static void outline(paint_app *a, const SDL_Rect *r, uint8_t cr, uint8_t cg, uint8_t cb)
{
    set_color(a->ren, cr, cg, cb);
    SDL_RenderDrawRect(a->ren, r);
}

static int text_y(paint_app *a, const SDL_Rect *r)
{
    return r->y + (r->h - text_line_height(a->text)) / 2;
}

static void label(paint_app *a, const char *s, int x, int y, SDL_Color c)
{
    text_draw(a->text, s, x, y, c);
}

static void draw_button(paint_app *a, int ctl, const char *s, int active)
{
    const SDL_Rect *r = &a->ctl[ctl];
    int hover = inside(r, a->mouse_x, a->mouse_y);
    if (active) fill(a, r, 62, 104, 190);
    else if (hover) fill(a, r, 74, 79, 90);
    else fill(a, r, 58, 62, 71);
    int tw = text_width(a->text, s);
    label(a, s, r->x + (r->w - tw) / 2, text_y(a, r), C_TEXT);
}

static void draw_slider(paint_app *a, int ctl, const char *s, int enabled)
{
    const SDL_Rect *r = &a->ctl[ctl];
    float lo, hi, step;
    slider_range(a, ctl, &lo, &hi, &step);
    float t = enabled ? (slider_value(a, ctl) - lo) / (hi - lo) : 0;
    fill(a, r, 30, 32, 37);
    SDL_Rect bar = {r->x, r->y, (int)(r->w * (t < 0 ? 0 : t > 1 ? 1 : t)), r->h};
    fill(a, &bar, 52, 88, 160);
    outline(a, r, a->drag == ctl ? 120 : 70, a->drag == ctl ? 150 : 75, a->drag == ctl ? 220 : 86);
    label(a, s, r->x + 6, text_y(a, r), enabled ? C_TEXT : C_DIM);
}

static void draw_field(paint_app *a, int ctl, const char *placeholder, int enabled)
{
    const SDL_Rect *r = &a->ctl[ctl];
    int focused = a->focus == ctl;
    fill(a, r, 24, 26, 30);
    outline(a, r, focused ? 90 : 64, focused ? 140 : 68, focused ? 230 : 78);
    char buf[32];
    const char *s = focused ? a->edit : field_value(a, ctl, buf, sizeof buf);
    SDL_Rect clip = {r->x + 4, r->y + 1, r->w - 8, r->h - 2};
    SDL_RenderSetClipRect(a->ren, &clip);
    int tw = text_width(a->text, s);
    int x = clip.x;
    if (focused && tw + 3 > clip.w) x = clip.x + clip.w - 3 - tw; /* show the end being typed */
    if (*s) label(a, s, x, text_y(a, r), enabled ? C_TEXT : C_DIM);
    else if (!focused && placeholder) label(a, placeholder, x, text_y(a, r), C_DIM);
    if (focused) {
        set_color(a->ren, 200, 210, 255);
        int cx = x + tw + 1;
        SDL_RenderDrawLine(a->ren, cx, r->y + 4, cx, r->y + r->h - 5);
    }
    SDL_RenderSetClipRect(a->ren, NULL);
}

static void draw_circle(paint_app *a, int cx, int cy, float radius)
{
    SDL_Point pts[65];
    for (int i = 0; i <= 64; i++) {
        float t = (float)i / 64 * 6.2831853f;
        pts[i] = (SDL_Point){cx + (int)lroundf(radius * cosf(t)), cy + (int)lroundf(radius * sinf(t))};
    }
    SDL_RenderDrawLines(a->ren, pts, 65);
}

static void draw_toolbar(paint_app *a)
{
    char s[96];
    draw_button(a, CTL_PLAY, a->ses.want_stream ? "Pause" : "Play", 0);
    draw_button(a, CTL_BRUSH, "Brush", a->tool == PAINT_BRUSH);
    draw_button(a, CTL_ERASER, "Eraser", a->tool == PAINT_ERASER);
    snprintf(s, sizeof s, "Size %.0f px", a->brush_radius);
    draw_slider(a, CTL_SIZE, s, 1);
    label(a, "Seed", a->ctl[CTL_SEED].x - 40, text_y(a, &a->ctl[CTL_SEED]), C_DIM);
    draw_field(a, CTL_SEED, NULL, 1);
    draw_button(a, CTL_SEED_RANDOM, "Random", 0);
    draw_button(a, CTL_SAVE_IMAGE, "Save image", 0);
    draw_button(a, CTL_SAVE_SCENE, "Save scene", 0);
    draw_button(a, CTL_LOAD_SCENE, "Load scene", 0);
    draw_field(a, CTL_PATH, "scene file (.json)", 1);
}

static void draw_panes(paint_app *a)
{
    char s[160];
    int cap_y = a->canvas_view.y - CAPTION_H + 2;
    paint_layer *l = selected_layer(a);
    if (l)
        snprintf(s, sizeof s, "Canvas %dx%d  -  layer #%d, %s %.0f px", a->doc.width, a->doc.height,
                 a->doc.selected, a->tool == PAINT_ERASER ? "eraser" : "brush", a->brush_radius);
    else
        snprintf(s, sizeof s, "Canvas %dx%d  -  no layer: paint to add one", a->doc.width, a->doc.height);
    label(a, s, a->canvas_view.x, cap_y, C_DIM);
    const paint_session *ss = &a->ses;
    const paint_daemon_view *v = &a->ses.view;
    if (ss->have_frame)
        snprintf(s, sizeof s, "Generated  -  frame %llu, edit %llu%s", (unsigned long long)ss->last_seq,
                 (unsigned long long)ss->last_input_seq, ss->want_stream ? "" : "  (paused)");
    else
        snprintf(s, sizeof s, "Generated");
    label(a, s, a->image_view.x, cap_y, C_DIM);

    SDL_RenderCopy(a->ren, a->canvas_tex, NULL, &a->canvas_view);
    outline(a, &a->canvas_view, 70, 75, 86);
    if (a->mouse_in && !a->focus) {
        set_color(a->ren, 20, 20, 20);
        draw_circle(a, a->mouse_x, a->mouse_y, a->brush_radius * view_scale(a));
    }

    if (ss->have_frame) {
        SDL_RenderCopy(a->ren, a->image_tex, NULL, &a->image_view);
    } else {
        fill(a, &a->image_view, 24, 26, 30);
        const char *msg = "waiting for the first frame...";
        if (v->state == PAINT_OFFLINE) msg = "not connected to semdrawd (retrying; F5: now)";
        else if (v->state == PAINT_GONE) msg = "the daemon is not answering";
        else if (v->model_state == SEMDRAW_MODEL_LOADING) {
            snprintf(s, sizeof s, "the model is loading: %.0f%%", 100.0f * v->load_progress);
            msg = s;
        } else if (v->model_state == SEMDRAW_MODEL_FAILED) msg = "the daemon's model failed to load";
        else if (!ss->want_stream) msg = "paused: press Play or Space";
        int tw = text_width(a->text, msg);
        label(a, msg, a->image_view.x + (a->image_view.w - tw) / 2, a->image_view.y + a->image_view.h / 2 - 8, C_DIM);
    }
    outline(a, &a->image_view, 70, 75, 86);
}

static void draw_panel(paint_app *a)
{
    char s[PAINT_TEXT_MAX + 32];
    int px = a->panel.x;
    label(a, "Background prompt", px, a->ctl[CTL_BG_PROMPT].y - LABEL_H, C_DIM);
    draw_field(a, CTL_BG_PROMPT, "background prompt", 1);
    label(a, "Background negative prompt", px, a->ctl[CTL_BG_NEGATIVE].y - LABEL_H, C_DIM);
    draw_field(a, CTL_BG_NEGATIVE, "", 1);
    snprintf(s, sizeof s, "Layers (%d)", a->doc.n_layers);
    label(a, s, px, text_y(a, &a->ctl[CTL_ADD_LAYER]), C_TEXT);
    draw_button(a, CTL_ADD_LAYER, "+ Add", 0);
    draw_button(a, CTL_REMOVE_LAYER, "Remove", 0);

    int n = a->doc.n_layers;
    for (int r = 0; r < a->n_rows && a->first_row + r < n; r++) {
        int i = n - 1 - (a->first_row + r);
        const SDL_Rect *row = &a->ctl[CTL_LAYER_ROW + r];
        const paint_layer *l = a->doc.layers[i];
        if (i == a->doc.selected) fill(a, row, 52, 70, 110);
        else if (inside(row, a->mouse_x, a->mouse_y)) fill(a, row, 50, 54, 62);
        SDL_Rect sw = {row->x + 4, row->y + 4, row->h - 8, row->h - 8};
        fill(a, &sw, l->color[0], l->color[1], l->color[2]);
        snprintf(s, sizeof s, "#%d", i);
        label(a, s, sw.x + sw.w + 6, text_y(a, row), C_DIM);
        SDL_Rect clip = {sw.x + sw.w + 34, row->y, row->w - sw.w - 42, row->h};
        SDL_RenderSetClipRect(a->ren, &clip);
        label(a, *l->prompt ? l->prompt : "(no prompt)", clip.x, text_y(a, row), *l->prompt ? C_TEXT : C_DIM);
        SDL_RenderSetClipRect(a->ren, NULL);
    }
    if (!n) label(a, "no layers: paint on the canvas or press + Add", px, a->ctl[CTL_ADD_LAYER].y + ROW_H + 6, C_DIM);

    paint_layer *l = selected_layer(a);
    if (l) snprintf(s, sizeof s, "Layer #%d prompt", a->doc.selected);
    else snprintf(s, sizeof s, "Layer prompt");
    label(a, s, px, a->ctl[CTL_LAYER_PROMPT].y - LABEL_H, C_DIM);
    draw_field(a, CTL_LAYER_PROMPT, l ? "type the layer's prompt, Enter applies" : "", l != NULL);
    label(a, "Negative prompt", px, a->ctl[CTL_LAYER_NEGATIVE].y - LABEL_H, C_DIM);
    draw_field(a, CTL_LAYER_NEGATIVE, "", l != NULL);
    snprintf(s, sizeof s, "Mask blur %.1f px", l ? l->mask_std : 0);
    draw_slider(a, CTL_MASK_STD, s, l != NULL);
    snprintf(s, sizeof s, "Mask strength %.2f", l ? l->mask_strength : 0);
    draw_slider(a, CTL_MASK_STRENGTH, s, l != NULL);
    snprintf(s, sizeof s, "Prompt strength %.2f", l ? l->prompt_strength : 0);
    draw_slider(a, CTL_PROMPT_STRENGTH, s, l != NULL);

    int y = a->ctl[CTL_PROMPT_STRENGTH].y + ROW_H + 8;
    label(a, "B/E brush/eraser, [ ] size, right button: opposite", px, y, C_DIM);
    label(a, "Space play/pause, N add, Del remove, 1-9 select", px, y + 16, C_DIM);
    label(a, "Ctrl+S/O/E scene save/load, image; F5 reconnect", px, y + 32, C_DIM);
}

static void draw_status(paint_app *a)
{
    fill(a, &a->status_bar, 26, 28, 32);
    const paint_session *s = &a->ses;
    const paint_daemon_view *v = &s->view;
    char right[256];
    const char *conn = v->state == PAINT_OFFLINE ? "offline"
                       : v->state == PAINT_GONE  ? "daemon gone"
                       : v->unresponsive         ? "not answering"
                                                 : "connected";
    int n = snprintf(right, sizeof right, "%.1f fps", s->fps);
    if (v->daemon_latency_ms > 0)
        n += snprintf(right + n, sizeof right - n, " | daemon %.1f fps, %.0f ms", v->daemon_fps, v->daemon_latency_ms);
    if (s->edit_latency_ms > 0) n += snprintf(right + n, sizeof right - n, " | edit->frame %.0f ms", s->edit_latency_ms);
    snprintf(right + n, sizeof right - n, " | frames %llu | commits %llu | clients %u | %s",
             (unsigned long long)s->frames, (unsigned long long)v->commits, v->clients, conn);
    int rw = text_width(a->text, right);
    int ty = text_y(a, &a->status_bar);
    label(a, right, a->win_w - MARGIN - rw, ty, v->state == PAINT_CONNECTED && !v->unresponsive ? C_OK : C_ERROR);
    SDL_Rect clip = {MARGIN, a->status_bar.y, SDL_max(0, a->win_w - 3 * MARGIN - rw), STATUS_H};
    SDL_RenderSetClipRect(a->ren, &clip);
    label(a, a->status, MARGIN, ty, a->status_error ? C_ERROR : C_TEXT);
    SDL_RenderSetClipRect(a->ren, NULL);
}

static void take_screenshot(paint_app *a)
{
    int w = 0, h = 0;
    char err[512] = "";
    a->screenshot_rc = -1;
    SDL_GetRendererOutputSize(a->ren, &w, &h);
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) {
        app_error(a, "screenshot: out of memory");
    } else if (SDL_RenderReadPixels(a->ren, NULL, SDL_PIXELFORMAT_RGB24, px, w * 3) != 0) {
        app_error(a, "screenshot: %s", SDL_GetError());
    } else if (png_save(a->screenshot_path, px, w, h, w * 3, 3, err, sizeof err) != 0) {
        app_error(a, "screenshot: %s", err);
    } else {
        a->screenshot_rc = 0;
        app_status(a, "screenshot saved to %s", a->screenshot_path);
    }
    free(px);
    free(a->screenshot_path);
    a->screenshot_path = NULL;
    a->screenshot_done = 1;
}

void ui_render(paint_app *a)
{
    if (a->canvas_dirty.w > 0 && a->canvas_dirty.h > 0) {
        SDL_Rect r = a->canvas_dirty;
        doc_composite(&a->doc, a->canvas_argb, r);
        SDL_UpdateTexture(a->canvas_tex, &r, a->canvas_argb + (size_t)r.y * a->doc.width + r.x, a->doc.width * 4);
        a->canvas_dirty = (SDL_Rect){0, 0, 0, 0};
    }
    if (a->ses.frame_new && a->ses.frame_w == a->doc.width && a->ses.frame_h == a->doc.height) {
        SDL_UpdateTexture(a->image_tex, NULL, a->ses.frame, a->doc.width * 4);
        a->ses.frame_new = 0;
    }
    set_color(a->ren, 36, 38, 43);
    SDL_RenderClear(a->ren);
    draw_toolbar(a);
    draw_panes(a);
    draw_panel(a);
    draw_status(a);
    if (a->screenshot_path) take_screenshot(a);
    SDL_RenderPresent(a->ren);
    text_frame_done(a->text);
}
