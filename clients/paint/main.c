/*
 * semdraw-paint - paint region masks, type prompts, and watch semdrawd
 * generate the picture live (see docs/paint.md).
 *
 * The main loop never waits on the daemon: it sleeps in SDL_WaitEventTimeout
 * for at most a display frame (or less when libsemdraw wants a heartbeat),
 * handles input, dispatches the SDK's events, copies in a new frame when one
 * is ready, runs a script step, sends pending edits (rate-limited) and draws.
 */
#include <SDL_ttf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paint.h"

#ifndef SEMDRAW_PAINT_FONT
#define SEMDRAW_PAINT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#endif

#define FRAME_MS 16  /* the loop's longest sleep: about the display rate */
#define FONT_PT 13

static const char usage[] =
    "usage: semdraw-paint [--runtime-dir DIR] [--width W --height H] [--seed S] [--scene FILE.json]\n"
    "                     [--font PATH] [--script FILE] [--screenshot OUT.png] [--fps N] [--paused]\n"
    "                     [--window WxH] [--file SCENE.json]\n"
    "Paint layer masks on the left, see semdrawd's live image on the right (docs/paint.md).\n";

typedef struct options {
    const char *runtime_dir, *scene, *font, *script, *screenshot, *file;
    int width, height, win_w, win_h, paused, have_seed;
    uint64_t seed;
    float fps;
} options;

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.width = 512, .height = 512, .win_w = 1280, .win_h = 680, .font = SEMDRAW_PAINT_FONT};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strcmp(opt, "--paused") == 0) {
            o->paused = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "semdraw-paint: %s needs a value\n%s", opt, usage);
            return -1;
        }
        const char *v = argv[++i];
        long n = 0;
        int bad = 0;
        if (strcmp(opt, "--runtime-dir") == 0) o->runtime_dir = v;
        else if (strcmp(opt, "--scene") == 0) o->scene = v;
        else if (strcmp(opt, "--font") == 0) o->font = v;
        else if (strcmp(opt, "--script") == 0) o->script = v;
        else if (strcmp(opt, "--screenshot") == 0) o->screenshot = v;
        else if (strcmp(opt, "--file") == 0) o->file = v;
        else if (strcmp(opt, "--width") == 0) bad = parse_int(v, 8, 4096, &n) || n % 8, o->width = (int)n;
        else if (strcmp(opt, "--height") == 0) bad = parse_int(v, 8, 4096, &n) || n % 8, o->height = (int)n;
        else if (strcmp(opt, "--seed") == 0) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            bad = !*v || *end || errno || *v == '-' || s > (1ull << 53);
            o->seed = s, o->have_seed = 1;
        } else if (strcmp(opt, "--fps") == 0) {
            char *end;
            o->fps = strtof(v, &end);
            bad = !*v || *end || !(o->fps >= 0 && o->fps <= 1000);
        } else if (strcmp(opt, "--window") == 0) {
            int w = 0, h = 0;
            bad = sscanf(v, "%dx%d", &w, &h) != 2 || w < 640 || h < 400 || w > 16384 || h > 16384;
            o->win_w = w, o->win_h = h;
        } else {
            fprintf(stderr, "semdraw-paint: unknown option %s\n%s", opt, usage);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "semdraw-paint: bad value for %s: '%s'%s\n", opt, v,
                    strcmp(opt, "--width") == 0 || strcmp(opt, "--height") == 0 ? " (a multiple of 8, 8..4096)" : "");
            return -1;
        }
    }
    return 0;
}

static SDL_Renderer *make_renderer(SDL_Window *w)
{
    SDL_Renderer *r = SDL_CreateRenderer(w, -1, SDL_RENDERER_ACCELERATED);
    if (!r) r = SDL_CreateRenderer(w, -1, SDL_RENDERER_SOFTWARE);
    return r;
}

/* Returns the longest time one iteration took apart from its sleep: how long the window froze. */
static uint64_t run(paint_app *a)
{
    uint64_t last_render = 0, longest = 0;
    while (!a->quit) {
        /* the control thread wakes the loop early when a frame is ready */
        int timeout = script_active(a->script) ? 2 : FRAME_MS;
        SDL_Event ev;
        int got = SDL_WaitEventTimeout(&ev, timeout);
        uint64_t t[5];
        t[0] = paint_now_ms();
        if (got) {
            ui_handle_event(a, &ev);
            while (!a->quit && SDL_PollEvent(&ev)) ui_handle_event(a, &ev);
        }
        t[1] = paint_now_ms();
        session_update(a);
        if (a->script && a->ses.view.connect_failed && !a->quit) {
            fprintf(stderr, "semdraw-paint: the script needs semdrawd: %s\n", a->status);
            a->exit_code = 1, a->quit = 1;
        }
        t[2] = paint_now_ms();
        script_step(a);
        t[3] = paint_now_ms();
        if ((a->redraw && t[3] - last_render >= FRAME_MS) || t[3] - last_render >= 250 || a->screenshot_path) {
            a->redraw = 0;
            ui_render(a);
            last_render = t[3];
        }
        t[4] = paint_now_ms();
        if (t[4] - t[0] > longest) longest = t[4] - t[0];
        if (t[4] - t[0] > 100)
            paint_debug("slow iteration: %llu ms (input %llu, frames and edits %llu, script %llu, drawing %llu)",
                        (unsigned long long)(t[4] - t[0]), (unsigned long long)(t[1] - t[0]),
                        (unsigned long long)(t[2] - t[1]), (unsigned long long)(t[3] - t[2]),
                        (unsigned long long)(t[4] - t[3]));
    }
    return longest;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;
    static paint_app app;
    paint_app *a = &app;
    a->exit_code = 0;
    a->ses.runtime_dir = o.runtime_dir;
    a->ses.target_fps = o.fps;
    a->ses.want_stream = !o.paused;
    snprintf(a->file_path, sizeof a->file_path, "%s", o.file ? o.file : o.scene ? o.scene : "scene.json");

    if (o.script && script_load(o.script, &a->script)) return 2;
    uint64_t seed = o.have_seed ? o.seed : (uint64_t)time(NULL) % 1000003u;
    doc_init(&a->doc, o.width, o.height, seed);
    if (!o.scene && doc_add_layer(&a->doc, "")) a->doc.selected = 0; /* a new picture starts with one layer */
    if (o.scene) {
        char err[1024], warn[512];
        paint_doc d;
        if (scene_load(o.scene, &d, warn, sizeof warn, err, sizeof err)) {
            fprintf(stderr, "semdraw-paint: %s\n", err);
            script_free(a->script);
            doc_free(&a->doc);
            return 1;
        }
        doc_free(&a->doc);
        a->doc = d;
        if (*warn) fprintf(stderr, "semdraw-paint: %s: %s\n", o.scene, warn);
    }

    int rc = 1;
    SDL_SetHint(SDL_HINT_VIDEO_ALLOW_SCREENSAVER, "1");
    if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_EVENTS) != 0) {
        fprintf(stderr, "semdraw-paint: cannot start SDL: %s\n", SDL_GetError());
        goto out;
    }
    a->win = SDL_CreateWindow("semdraw-paint", SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, o.win_w, o.win_h,
                              SDL_WINDOW_RESIZABLE);
    if (!a->win || !(a->ren = make_renderer(a->win))) {
        fprintf(stderr, "semdraw-paint: cannot open a window: %s\n", SDL_GetError());
        goto out;
    }
    SDL_SetWindowMinimumSize(a->win, 640, 400);
    SDL_RendererInfo ri;
    if (SDL_GetRendererInfo(a->ren, &ri) == 0)
        paint_debug("SDL %s renderer on the %s video driver", ri.name, SDL_GetCurrentVideoDriver());
    SDL_StopTextInput(); /* SDL starts with text input on; fields turn it on while edited */
    if (text_open(a->ren, o.font, FONT_PT, &a->text)) {
        fprintf(stderr, "semdraw-paint: cannot open the font %s: %s (use --font PATH)\n", o.font, TTF_GetError());
        goto out;
    }
    if (app_doc_replaced(a)) goto out;
    if (a->doc.n_layers) app_select_layer(a, 0);
    app_status(a, "connecting to semdrawd...");
    ui_render(a);

    if (session_start(a)) {
        fprintf(stderr, "semdraw-paint: cannot start the control thread\n");
        goto out;
    }
    uint64_t busy = run(a);

    if (o.screenshot) {
        a->screenshot_path = strdup(o.screenshot);
        if (a->screenshot_path) ui_render(a);
        if (a->screenshot_rc) a->exit_code = 1;
    }
    paint_debug("closing");
    session_stop(a); /* the canvas closed, the client disconnected; a->ses.view has the final counters */
    paint_debug("closed");
    const paint_daemon_view *v = &a->ses.view;
    rc = a->exit_code;
    if (a->script && !rc && v->errors) {
        fprintf(stderr, "semdraw-paint: %llu failed SDK calls during the script (last: %s)\n",
                (unsigned long long)v->errors, a->status);
        rc = 1;
    }
    printf("semdraw-paint: frames=%llu commits=%llu stroke_commits=%llu dropped=%llu errors=%llu clients=%u max_busy_ms=%llu window=%dx%d "
           "canvas_view=%d,%d,%d,%d image_view=%d,%d,%d,%d\n",
           (unsigned long long)a->ses.frames, (unsigned long long)v->commits,
           (unsigned long long)v->stroke_commits, (unsigned long long)a->ses.dropped,
           (unsigned long long)v->errors, v->max_clients, (unsigned long long)busy, a->win_w, a->win_h,
           a->canvas_view.x, a->canvas_view.y, a->canvas_view.w, a->canvas_view.h, a->image_view.x,
           a->image_view.y, a->image_view.w, a->image_view.h);
    fflush(stdout);
out:
    session_stop(a);
    script_free(a->script);
    free(a->screenshot_path);
    if (a->canvas_tex) SDL_DestroyTexture(a->canvas_tex);
    if (a->image_tex) SDL_DestroyTexture(a->image_tex);
    text_close(a->text);
    if (a->ren) SDL_DestroyRenderer(a->ren);
    if (a->win) SDL_DestroyWindow(a->win);
    SDL_Quit();
    free(a->canvas_argb);
    free(a->ses.frame);
    doc_free(&a->doc);
    return rc;
}
