/*
 * script.c - semdraw-paint --script FILE: scripted sessions for tests and
 * demos. One command a line ('#' starts a comment):
 *
 *   stroke LAYER X0 Y0 X1 Y1 ... RADIUS   paint a polyline (canvas pixels) into a layer
 *   erase LAYER X0 Y0 ... RADIUS           the same with the eraser
 *   prompt LAYER TEXT / negative LAYER TEXT
 *   background TEXT / background-negative TEXT
 *   mask-blur LAYER PX / mask-strength LAYER V / prompt-strength LAYER V
 *   add-layer / remove-layer LAYER / select LAYER / size RADIUS
 *   seed N / play / pause
 *   wait-frames N [TIMEOUT_S]   until N more frames arrived (default timeout 60 s)
 *   wait-ms N
 *   wait-clients N [TIMEOUT_S]  until the daemon has N clients (other windows, say)
 *   wait-restart [TIMEOUT_S]    until the daemon restarted and streams our canvas again
 *   save-image PATH / save-scene PATH / load-scene PATH / screenshot PATH
 *   quit
 *
 * The script runs inside the normal main loop, one step per iteration, so the
 * window keeps rendering and the daemon keeps being served. Its commands go
 * through the same code as a person's input: strokes are synthetic mouse
 * presses and motions over the canvas pane (one point per 16 ms, as from a
 * mouse, so the edits stream while the stroke is drawn), text is typed into the fields
 * with synthetic key and text events, buttons are clicked where they are.
 * A failing command prints "semdraw-paint: FILE:LINE: why" and ends the
 * program with exit status 1.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paint.h"

typedef enum op {
    OP_STROKE, OP_ERASE, OP_PROMPT, OP_NEGATIVE, OP_BACKGROUND, OP_BACKGROUND_NEGATIVE, OP_MASK_BLUR,
    OP_MASK_STRENGTH, OP_PROMPT_STRENGTH, OP_ADD_LAYER, OP_REMOVE_LAYER, OP_SELECT, OP_SIZE, OP_SEED, OP_PLAY,
    OP_PAUSE, OP_WAIT_FRAMES, OP_WAIT_CLIENTS, OP_WAIT_RESTART, OP_WAIT_MS, OP_SAVE_IMAGE, OP_SAVE_SCENE, OP_LOAD_SCENE, OP_SCREENSHOT, OP_QUIT
} op;

/* How each command's arguments look: N numbers (-1: a layer, then 2k+1 numbers), then text or not. */
static const struct {
    const char *name;
    op op;
    int numbers;   /* leading numbers; -1: stroke form; -2: 1 or 2 numbers; -3: 0 or 1 */
    int text;      /* 1: the rest of the line is text (may be empty), 2: required */
} commands[] = {
    {"stroke", OP_STROKE, -1, 0},
    {"erase", OP_ERASE, -1, 0},
    {"prompt", OP_PROMPT, 1, 1},
    {"negative", OP_NEGATIVE, 1, 1},
    {"background", OP_BACKGROUND, 0, 1},
    {"background-negative", OP_BACKGROUND_NEGATIVE, 0, 1},
    {"mask-blur", OP_MASK_BLUR, 2, 0},
    {"mask-strength", OP_MASK_STRENGTH, 2, 0},
    {"prompt-strength", OP_PROMPT_STRENGTH, 2, 0},
    {"add-layer", OP_ADD_LAYER, 0, 0},
    {"remove-layer", OP_REMOVE_LAYER, 1, 0},
    {"select", OP_SELECT, 1, 0},
    {"size", OP_SIZE, 1, 0},
    {"seed", OP_SEED, 0, 2},
    {"play", OP_PLAY, 0, 0},
    {"pause", OP_PAUSE, 0, 0},
    {"wait-frames", OP_WAIT_FRAMES, -2, 0},
    {"wait-clients", OP_WAIT_CLIENTS, -2, 0},
    {"wait-restart", OP_WAIT_RESTART, -3, 0},
    {"wait-ms", OP_WAIT_MS, 1, 0},
    {"save-image", OP_SAVE_IMAGE, 0, 2},
    {"save-scene", OP_SAVE_SCENE, 0, 2},
    {"load-scene", OP_LOAD_SCENE, 0, 2},
    {"screenshot", OP_SCREENSHOT, 0, 2},
    {"quit", OP_QUIT, 0, 0},
};

#define MAX_NUMBERS 512
#define MOVE_MS 16 /* a stroke's points come this far apart, as a mouse's motion events do */

typedef struct cmd {
    int line;
    op op;
    char *source;      /* the line, for messages */
    int n;
    double *v;         /* numbers */
    char *text;
} cmd;

struct paint_script {
    char *path;
    cmd *cmds;
    int n, cap;
    int pc;            /* the command running */
    int phase;         /* its progress */
    int k;
    uint64_t target, deadline;
    uint64_t t_move;   /* strokes: when the last point was fed */
};

void script_free(paint_script *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->cmds[i].source);
        free(s->cmds[i].v);
        free(s->cmds[i].text);
    }
    free(s->cmds);
    free(s->path);
    free(s);
}

static char *trim(char *p)
{
    while (isspace((unsigned char)*p)) p++;
    char *e = p + strlen(p);
    while (e > p && isspace((unsigned char)e[-1])) *--e = '\0';
    return p;
}

/* Parse one line into c; 0, or -1 with a message. */
static int parse_line(char *line, cmd *c, char *err, size_t err_size)
{
    char *p = line;
    size_t wl = strcspn(p, " \t");
    int which = -1;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == wl && strncmp(commands[i].name, p, wl) == 0) which = (int)i;
    if (which < 0) {
        snprintf(err, err_size, "unknown command '%.*s'", (int)wl, p);
        return -1;
    }
    c->op = commands[which].op;
    p += wl;
    int want = commands[which].numbers;
    c->v = calloc(MAX_NUMBERS, sizeof *c->v);
    if (!c->v) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    /* numbers: as many as the command takes (all for strokes) */
    while (c->n < MAX_NUMBERS && (want < 0 || c->n < want)) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || (*end && !isspace((unsigned char)*end)) || errno) {
            if (want < 0 || c->n < want) {
                snprintf(err, err_size, "%s: '%.*s' is not a number", commands[which].name,
                         (int)strcspn(p, " \t"), p);
                return -1;
            }
            break;
        }
        c->v[c->n++] = v;
        p = end;
    }
    if (want == -1 && (c->n < 4 || c->n % 2 != 0)) {
        snprintf(err, err_size, "%s LAYER X0 Y0 [X1 Y1 ...] RADIUS: wrong number of values", commands[which].name);
        return -1;
    }
    if (want == -2 && (c->n < 1 || c->n > 2)) {
        snprintf(err, err_size, "%s N [TIMEOUT_S]", commands[which].name);
        return -1;
    }
    if (want == -3 && c->n > 1) {
        snprintf(err, err_size, "%s [TIMEOUT_S]", commands[which].name);
        return -1;
    }
    if (want >= 0 && c->n != want) {
        snprintf(err, err_size, "%s takes %d number%s", commands[which].name, want, want == 1 ? "" : "s");
        return -1;
    }
    p = trim(p);
    if (!commands[which].text && *p) {
        snprintf(err, err_size, "%s: unexpected '%s'", commands[which].name, p);
        return -1;
    }
    if (commands[which].text == 2 && !*p) {
        snprintf(err, err_size, "%s needs an argument", commands[which].name);
        return -1;
    }
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') p[n - 1] = '\0', p++; /* optional quotes */
    c->text = strdup(p);
    if (!c->text) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

int script_load(const char *path, paint_script **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "semdraw-paint: %s: %s\n", path, strerror(errno));
        return -1;
    }
    paint_script *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        fclose(f);
        return -1;
    }
    char buf[8192];
    int rc = 0;
    for (int line = 1; !rc && fgets(buf, sizeof buf, f); line++) {
        if (!strchr(buf, '\n') && !feof(f)) {
            fprintf(stderr, "semdraw-paint: %s:%d: line too long\n", path, line);
            rc = -1;
            break;
        }
        char *p = trim(buf);
        if (!*p || *p == '#') continue;
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 32;
            cmd *c = realloc(s->cmds, (size_t)cap * sizeof *c);
            if (!c) {
                rc = -1;
                break;
            }
            s->cmds = c, s->cap = cap;
        }
        cmd *c = &s->cmds[s->n];
        memset(c, 0, sizeof *c);
        c->line = line;
        c->source = strdup(p);
        s->n++;
        char err[256];
        if (!c->source || parse_line(p, c, err, sizeof err)) {
            fprintf(stderr, "semdraw-paint: %s:%d: %s\n", path, line, c->source ? err : "out of memory");
            rc = -1;
        }
    }
    fclose(f);
    if (rc) {
        script_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int script_active(const paint_script *s) { return s && s->pc < s->n; }

/* ---- running ---- */

static void fail(paint_app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(paint_app *a, const char *fmt, ...)
{
    paint_script *s = a->script;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "semdraw-paint: %s:%d: %s: %s\n", s->path, s->cmds[s->pc].line, s->cmds[s->pc].source, msg);
    a->exit_code = 1;
    a->quit = 1;
    s->pc = s->n;
}

static void done(paint_script *s)
{
    s->pc++;
    s->phase = 0;
    s->k = 0;
}

static void mouse(paint_app *a, Uint32 type, int x, int y, Uint8 button)
{
    SDL_Event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    if (type == SDL_MOUSEMOTION) {
        ev.motion.windowID = SDL_GetWindowID(a->win);
        ev.motion.state = button ? SDL_BUTTON(button) : 0;
        ev.motion.xrel = x - a->mouse_x, ev.motion.yrel = y - a->mouse_y;
        ev.motion.x = x, ev.motion.y = y;
    } else {
        ev.button.windowID = SDL_GetWindowID(a->win);
        ev.button.button = button;
        ev.button.state = type == SDL_MOUSEBUTTONDOWN ? SDL_PRESSED : SDL_RELEASED;
        ev.button.clicks = 1;
        ev.button.x = x, ev.button.y = y;
    }
    ui_handle_event(a, &ev);
}

static void click_at(paint_app *a, const SDL_Rect *r)
{
    int x = r->x + r->w / 2, y = r->y + r->h / 2;
    mouse(a, SDL_MOUSEMOTION, x, y, 0);
    mouse(a, SDL_MOUSEBUTTONDOWN, x, y, SDL_BUTTON_LEFT);
    mouse(a, SDL_MOUSEBUTTONUP, x, y, SDL_BUTTON_LEFT);
}

static void key(paint_app *a, SDL_Keycode sym, Uint16 mod)
{
    SDL_Event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = SDL_KEYDOWN;
    ev.key.windowID = SDL_GetWindowID(a->win);
    ev.key.state = SDL_PRESSED;
    ev.key.keysym.sym = sym;
    ev.key.keysym.scancode = SDL_GetScancodeFromKey(sym);
    ev.key.keysym.mod = mod;
    ui_handle_event(a, &ev);
}

/* Click into a field, clear it, type text (as text-input events), press Enter. */
static int type_into(paint_app *a, int ctl, const char *text)
{
    click_at(a, &a->ctl[ctl]);
    if (a->focus != ctl) return -1;
    key(a, SDLK_u, KMOD_LCTRL);
    size_t n = strlen(text), i = 0;
    while (i < n) {
        /* SDL's text events hold up to 31 bytes: cut between UTF-8 sequences */
        size_t m = SDL_min(n - i, (size_t)SDL_TEXTINPUTEVENT_TEXT_SIZE - 1);
        while (m > 0 && i + m < n && ((uint8_t)text[i + m] & 0xc0) == 0x80) m--;
        SDL_Event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = SDL_TEXTINPUT;
        ev.text.windowID = SDL_GetWindowID(a->win);
        memcpy(ev.text.text, text + i, m);
        ui_handle_event(a, &ev);
        i += m;
    }
    key(a, SDLK_RETURN, KMOD_NONE);
    return 0;
}

static int layer_arg(paint_app *a, double v)
{
    int i = (int)v;
    if ((double)i != v || i < 0 || i >= a->doc.n_layers) {
        fail(a, "no layer %g (there are %d)", v, a->doc.n_layers);
        return -1;
    }
    const SDL_Rect *row = ui_layer_row(a, i);
    if (row) click_at(a, row);
    else app_select_layer(a, i);
    if (a->doc.selected != i) {
        fail(a, "could not select layer %d", i);
        return -1;
    }
    return 0;
}

static void run_stroke(paint_app *a, cmd *c)
{
    paint_script *s = a->script;
    int n_points = (c->n - 2) / 2;
    const double *pt = c->v + 1;
    int x, y;
    if (s->phase == 0) {
        if (layer_arg(a, c->v[0])) return;
        click_at(a, &a->ctl[c->op == OP_ERASE ? CTL_ERASER : CTL_BRUSH]);
        app_set_brush_radius(a, (float)c->v[c->n - 1]);
        ui_canvas_to_window(a, (float)pt[0], (float)pt[1], &x, &y);
        mouse(a, SDL_MOUSEMOTION, x, y, 0);
        mouse(a, SDL_MOUSEBUTTONDOWN, x, y, SDL_BUTTON_LEFT);
        if (!a->drawing) {
            fail(a, "the stroke did not start (is the point on the canvas?)");
            return;
        }
        s->phase = 1, s->k = 1;
        s->t_move = paint_now_ms();
        return;
    }
    uint64_t now = paint_now_ms();
    if (now - s->t_move < MOVE_MS) return;
    s->t_move = now;
    if (s->k < n_points) { /* one point per display frame, like a mouse */
        ui_canvas_to_window(a, (float)pt[2 * s->k], (float)pt[2 * s->k + 1], &x, &y);
        mouse(a, SDL_MOUSEMOTION, x, y, SDL_BUTTON_LEFT);
        s->k++;
        return;
    }
    mouse(a, SDL_MOUSEBUTTONUP, a->mouse_x, a->mouse_y, SDL_BUTTON_LEFT);
    done(s);
}

static void run_text(paint_app *a, cmd *c, int ctl)
{
    if (type_into(a, ctl, c->text)) {
        fail(a, "could not edit the field");
        return;
    }
    done(a->script);
}

static void run_slider(paint_app *a, cmd *c, int ctl)
{
    if (layer_arg(a, c->v[0])) return;
    ui_slider_set(a, ctl, (float)c->v[1]);
    done(a->script);
}

void script_step(paint_app *a)
{
    paint_script *s = a->script;
    if (!s || s->pc >= s->n || a->quit) return;
    cmd *c = &s->cmds[s->pc];
    uint64_t now = paint_now_ms();
    if (s->phase == 0 && s->k == 0) {
        printf("semdraw-paint: script: %6.2f s: %s\n", now / 1000.0, c->source);
        fflush(stdout);
    }
    switch (c->op) {
    case OP_STROKE:
    case OP_ERASE: run_stroke(a, c); break;
    case OP_PROMPT:
    case OP_NEGATIVE:
        if (layer_arg(a, c->v[0])) return;
        run_text(a, c, c->op == OP_PROMPT ? CTL_LAYER_PROMPT : CTL_LAYER_NEGATIVE);
        break;
    case OP_BACKGROUND: run_text(a, c, CTL_BG_PROMPT); break;
    case OP_BACKGROUND_NEGATIVE: run_text(a, c, CTL_BG_NEGATIVE); break;
    case OP_MASK_BLUR: run_slider(a, c, CTL_MASK_STD); break;
    case OP_MASK_STRENGTH: run_slider(a, c, CTL_MASK_STRENGTH); break;
    case OP_PROMPT_STRENGTH: run_slider(a, c, CTL_PROMPT_STRENGTH); break;
    case OP_ADD_LAYER: {
        int before = a->doc.n_layers;
        click_at(a, &a->ctl[CTL_ADD_LAYER]);
        if (a->doc.n_layers != before + 1) {
            fail(a, "no layer was added");
            return;
        }
        done(s);
        break;
    }
    case OP_REMOVE_LAYER: {
        int before = a->doc.n_layers;
        if (layer_arg(a, c->v[0])) return;
        click_at(a, &a->ctl[CTL_REMOVE_LAYER]);
        if (a->doc.n_layers != before - 1) {
            fail(a, "the layer was not removed");
            return;
        }
        done(s);
        break;
    }
    case OP_SELECT:
        if (layer_arg(a, c->v[0])) return;
        done(s);
        break;
    case OP_SIZE:
        ui_slider_set(a, CTL_SIZE, (float)c->v[0]);
        done(s);
        break;
    case OP_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(c->text, &end, 10);
        if (type_into(a, CTL_SEED, c->text)) {
            fail(a, "could not edit the seed");
            return;
        }
        if (*end || errno || a->doc.seed != v) {
            fail(a, "the seed was refused");
            return;
        }
        done(s);
        break;
    }
    case OP_PLAY:
    case OP_PAUSE: {
        /* click, then wait until the control thread has told the daemon (or failed to) */
        int want = c->op == OP_PLAY;
        if (s->phase == 0) {
            if (a->ses.want_stream != want) click_at(a, &a->ctl[CTL_PLAY]);
            if (a->ses.want_stream != want) {
                fail(a, "the button did not toggle");
                return;
            }
            s->target = a->ses.view.errors;
            s->deadline = now + 60000;
            s->phase = 1;
        }
        if (a->ses.view.streaming == want) {
            done(s);
        } else if (a->ses.view.errors > s->target) {
            fail(a, "the daemon refused: %s", a->status);
        } else if (now > s->deadline) {
            fail(a, "timed out: no canvas streams (status: %s)", a->status);
        }
        break;
    }
    case OP_WAIT_FRAMES:
        if (s->phase == 0) {
            s->target = a->ses.frames + (uint64_t)c->v[0];
            s->deadline = now + (uint64_t)(1000 * (c->n > 1 ? c->v[1] : 60));
            s->phase = 1;
        }
        if (a->ses.frames >= s->target) {
            done(s);
        } else if (now > s->deadline) {
            fail(a, "timed out with %llu of %llu frames (status: %s)",
                 (unsigned long long)(a->ses.frames + (uint64_t)c->v[0] - s->target), (unsigned long long)c->v[0],
                 a->status);
        }
        break;
    case OP_WAIT_CLIENTS:
        if (s->phase == 0) {
            s->deadline = now + (uint64_t)(1000 * (c->n > 1 ? c->v[1] : 60));
            s->phase = 1;
        }
        if (a->ses.view.clients >= c->v[0]) {
            done(s);
        } else if (now > s->deadline) {
            fail(a, "timed out: the daemon has %u clients", a->ses.view.clients);
        }
        break;
    case OP_WAIT_RESTART:
        if (s->phase == 0) {
            s->target = a->ses.view.restarts + 1;
            s->deadline = now + (uint64_t)(1000 * (c->n > 0 ? c->v[0] : 60));
            s->phase = 1;
        }
        if (a->ses.view.restarts >= s->target && a->ses.view.streaming == a->ses.want_stream &&
            a->ses.view.has_canvas) {
            done(s);
        } else if (now > s->deadline) {
            fail(a, "timed out: %s", a->ses.view.restarts >= s->target ? "no new canvas" : "no restart seen");
        }
        break;
    case OP_WAIT_MS:
        if (s->phase == 0) s->deadline = now + (uint64_t)c->v[0], s->phase = 1;
        if (now >= s->deadline) done(s);
        break;
    case OP_SAVE_IMAGE:
        if (app_save_image(a, c->text)) {
            fail(a, "%s", a->status);
            return;
        }
        done(s);
        break;
    case OP_SAVE_SCENE:
        if (app_save_scene(a, c->text)) {
            fail(a, "%s", a->status);
            return;
        }
        done(s);
        break;
    case OP_LOAD_SCENE:
        if (app_load_scene(a, c->text)) {
            fail(a, "%s", a->status);
            return;
        }
        done(s);
        break;
    case OP_SCREENSHOT:
        if (s->phase == 0) {
            free(a->screenshot_path);
            a->screenshot_path = strdup(c->text);
            a->screenshot_done = 0;
            a->redraw = 1;
            s->phase = 1;
            if (!a->screenshot_path) {
            fail(a, "out of memory");
            return;
        }
            return;
        }
        if (!a->screenshot_done) return;
        if (a->screenshot_rc) {
            fail(a, "%s", a->status);
            return;
        }
        done(s);
        break;
    case OP_QUIT: {
        SDL_Event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = SDL_QUIT;
        SDL_PushEvent(&ev);
        done(s);
        break;
    }
    }
}
