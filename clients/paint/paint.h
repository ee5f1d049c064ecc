/*
 * paint.h - semdraw-paint: an SDL2 drawing tool for semdrawd (docs/paint.md).
 *
 * The window shows the painted canvas (each layer's mask as a coloured
 * overlay) beside the live image the daemon generates from it, a toolbar, a
 * layer panel and a status bar. The pieces:
 *
 *   doc.c      the document: size, seed, background, layers and their masks;
 *              brush and eraser painting; the overlay composite
 *   app.c      the actions mouse, keyboard and script share; the status bar
 *   session.c  everything that talks to libsemdraw: a control thread with the
 *              connection and the canvas, edits handed to it in rate-limited
 *              batches, frames read on the UI thread
 *   ui.c       layout, drawing and input handling of the controls
 *   text.c     SDL2_ttf text with a small texture cache
 *   scene_io.c scenes (docs/scene-format.md) in and out
 *   (PNG output: clients/common/png_io.c)
 *   script.c   the --script driver, which feeds the same input paths
 *   main.c     options, the main loop
 *
 * The UI thread owns the document and never waits on the daemon; only
 * session.c's control thread makes requests.
 */
#ifndef SEMDRAW_PAINT_H
#define SEMDRAW_PAINT_H

#include <SDL.h>
#include <stddef.h>
#include <stdint.h>

#include "png_io.h"
#include "semdraw/semdraw.h"

#define PAINT_MAX_LAYERS 64   /* = SEMD_SCENE_MAX_LAYERS */
#define PAINT_TEXT_MAX 1024   /* bytes of a prompt (the daemon caps prompts itself) */
#define PAINT_PATH_MAX 1024
#define PAINT_COMMIT_HZ 15    /* at most this many edit batches (commits) a second */

/* ---- text (text.c) ---- */

typedef struct paint_text paint_text;

int text_open(SDL_Renderer *ren, const char *font_path, int point_size, paint_text **out);
void text_close(paint_text *t);
/* Draw UTF-8 text with its top-left corner at (x, y); returns its width in pixels. */
int text_draw(paint_text *t, const char *s, int x, int y, SDL_Color color);
int text_width(paint_text *t, const char *s);
int text_line_height(paint_text *t);
/* Forget cached textures not drawn for a while; once per rendered frame. */
void text_frame_done(paint_text *t);

/* ---- the document (doc.c) ---- */

typedef struct paint_layer {
    uint8_t *mask;                 /* [height][width], 255 = inside */
    char prompt[PAINT_TEXT_MAX];
    char negative[PAINT_TEXT_MAX];
    float mask_std, mask_strength, prompt_strength;
    uint8_t color[3];              /* its overlay colour in the canvas pane */
    uint32_t uid;                  /* names it to the control thread (the daemon's ids are its business) */
    unsigned dirty;                /* SEMDRAW_LAYER_* fields not sent yet */
} paint_layer;

/* Scene settings the tool keeps but does not edit (from a loaded scene). */
typedef struct paint_settings {
    int from_scene;                /* 0: a new document, the daemon's defaults */
    int profile;                   /* semdraw_profile */
    int n_timesteps;
    int timesteps[SEMDRAW_MAX_TIMESTEPS];
    float guidance_scale, embedded_guidance_scale, bootstrap_mix_steps, cover_alpha;
    int bootstrap_steps, mask_type, decoder, autoflush;
    char *suffix;                  /* NULL: none */
} paint_settings;

typedef struct paint_doc {
    int width, height;
    uint64_t seed;
    char bg_prompt[PAINT_TEXT_MAX];
    char bg_negative[PAINT_TEXT_MAX];
    uint8_t bg_color[3];
    uint8_t *bg_image;             /* [height][width][3] or NULL: the plain colour */
    paint_settings settings;
    int n_layers;                  /* bottom first */
    paint_layer *layers[PAINT_MAX_LAYERS];
    int selected;                  /* index into layers, -1 when there are none */
    int next_color;
    uint32_t next_uid;
} paint_doc;

int doc_init(paint_doc *d, int width, int height, uint64_t seed);
void doc_free(paint_doc *d);
/* A new empty layer on top (NULL when full); it is not selected. */
paint_layer *doc_add_layer(paint_doc *d, const char *prompt);
void doc_remove_layer(paint_doc *d, int index);
/*
 * Stamp a round brush of radius r (canvas pixels) along the segment
 * (x0,y0)-(x1,y1) into a mask, writing value; grows *dirty (x, y, w, h) by
 * the pixels touched. Returns whether any pixel changed.
 */
int doc_paint_segment(const paint_doc *d, uint8_t *mask, float x0, float y0, float x1, float y1, float r,
                      uint8_t value, SDL_Rect *dirty);
/* The canvas pane's pixels (ARGB8888, [height][width]) in the rectangle r. */
void doc_composite(const paint_doc *d, uint32_t *argb, SDL_Rect r);

/* ---- the daemon session (session.c) ---- */

enum paint_conn_state {
    PAINT_OFFLINE = 0,   /* not connected */
    PAINT_CONNECTED = 1,
    PAINT_GONE = 2       /* connected, but the daemon stopped answering */
};

enum paint_sync_dirty {
    PAINT_DIRTY_BG_TEXT = 1u << 0,
    PAINT_DIRTY_BG_PIXELS = 1u << 1,
    PAINT_DIRTY_SEED = 1u << 2
};

/* What the control thread reports; the UI copies it once per main-loop iteration. */
typedef struct paint_daemon_view {
    int state;                     /* paint_conn_state */
    int connect_failed;            /* the first connection attempt failed */
    int model_state;               /* semdraw_model_state */
    float load_progress;
    int has_canvas, streaming;
    uint64_t commits, stroke_commits, errors; /* stroke_commits: edits sent while a stroke was drawn */
    float daemon_fps, daemon_latency_ms; /* the daemon's own view of our canvas */
    uint32_t clients, max_clients;       /* clients of the daemon: now, most seen */
    int unresponsive;              /* a request timed out: requests held until the daemon is heard */
    uint32_t restarts;             /* daemon restarts after which a new canvas was made */
} paint_daemon_view;

typedef struct paint_link paint_link; /* the control thread and what it shares */

typedef struct paint_session {
    const char *runtime_dir;
    float target_fps;
    paint_link *link;
    paint_daemon_view view;
    int want_stream;               /* play (1) or pause (0) */
    /* edits not handed to the control thread yet (besides each layer's dirty bits) */
    unsigned dirty;                /* paint_sync_dirty */
    uint32_t removed[PAINT_MAX_LAYERS]; /* uids */
    int n_removed;
    int full_pending;              /* hand over the whole document: a new canvas */
    uint64_t last_post_ms;
    /* frames, read here from the canvas the control thread publishes */
    uint8_t *frame;                /* RGBA [height][width] of the latest frame */
    int frame_w, frame_h, have_frame, frame_new;
    uint64_t canvas_gen, last_seq, last_input_seq;
    uint64_t frames, dropped;      /* frames received (by sequence number) and never read */
    uint64_t last_frame_poll_ms;
    int last_frame_rc;
    float edit_latency_ms;         /* an edit handed over -> the first frame that shows it */
    uint64_t fps_t0;
    int fps_count;
    float fps;
    uint64_t status_seq;           /* the control thread's last message shown */
} paint_session;

/* ---- the application ---- */

enum paint_tool { PAINT_BRUSH = 0, PAINT_ERASER = 1 };

/* Controls, for hit-testing, focus and the script driver. */
enum paint_ctl {
    CTL_NONE = 0,
    CTL_PLAY,
    CTL_BRUSH,
    CTL_ERASER,
    CTL_SIZE,            /* slider */
    CTL_SEED,            /* field */
    CTL_SEED_RANDOM,
    CTL_SAVE_IMAGE,
    CTL_SAVE_SCENE,
    CTL_LOAD_SCENE,
    CTL_PATH,            /* field: the scene file */
    CTL_BG_PROMPT,       /* field */
    CTL_BG_NEGATIVE,     /* field */
    CTL_ADD_LAYER,
    CTL_REMOVE_LAYER,
    CTL_LAYER_PROMPT,    /* field */
    CTL_LAYER_NEGATIVE,  /* field */
    CTL_MASK_STD,        /* slider */
    CTL_MASK_STRENGTH,   /* slider */
    CTL_PROMPT_STRENGTH, /* slider */
    CTL_CANVAS,          /* the canvas pane */
    CTL_IMAGE,           /* the generated image pane */
    CTL_LAYER_ROW,       /* + visible row index */
    CTL_COUNT = CTL_LAYER_ROW + PAINT_MAX_LAYERS
};

typedef struct paint_script paint_script;

typedef struct paint_app {
    SDL_Window *win;
    SDL_Renderer *ren;
    paint_text *text;
    SDL_Texture *canvas_tex, *image_tex;
    uint32_t *canvas_argb;
    SDL_Rect canvas_dirty;         /* w == 0: clean */
    int tex_w, tex_h;              /* the size the textures were made for */

    paint_doc doc;
    paint_session ses;
    paint_script *script;

    /* layout (ui_layout), in window pixels */
    int win_w, win_h;
    SDL_Rect ctl[CTL_COUNT];
    SDL_Rect canvas_view, image_view; /* where the canvas and the image are drawn */
    SDL_Rect panel, status_bar;
    int first_row, n_rows;         /* layer rows shown */

    /* input state */
    int tool;
    float brush_radius;            /* canvas pixels */
    int drawing;                   /* a stroke is in progress */
    float last_cx, last_cy;
    int drag;                      /* the slider being dragged, or CTL_NONE */
    int focus;                     /* the field being edited, or CTL_NONE */
    char edit[PAINT_TEXT_MAX];     /* its text while edited */
    int mouse_x, mouse_y, mouse_in;

    char file_path[PAINT_PATH_MAX]; /* the scene file of Save/Load scene */
    char status[512];              /* the status bar's message */
    int status_error;
    uint64_t status_ms;

    char *screenshot_path;         /* taken at the next render */
    int screenshot_rc;             /* 0, or -1 after a failed screenshot */
    int screenshot_done;

    int redraw;
    int quit;
    int exit_code;
} paint_app;

/* Milliseconds since start (SDL_GetTicks64). */
uint64_t paint_now_ms(void);

/* With SEMDRAW_PAINT_DEBUG set in the environment: a time-stamped line on stderr. */
void paint_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The status bar: an informational or an error message (errors also go to stderr). */
void app_status(paint_app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void app_error(paint_app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Actions shared by the mouse, the keyboard and the script. */
void app_select_layer(paint_app *a, int index);
void app_add_layer(paint_app *a);
void app_remove_layer(paint_app *a, int index);
void app_set_brush_radius(paint_app *a, float r);
void app_toggle_play(paint_app *a);
int app_save_image(paint_app *a, const char *path);
int app_save_scene(paint_app *a, const char *path);
int app_load_scene(paint_app *a, const char *path);
/* The document changed size or was replaced: new textures, layout, pane; -1 when out of memory. */
int app_doc_replaced(paint_app *a);
/* The brush radius slider's largest value (canvas pixels). */
float app_max_brush(const paint_app *a);
/* Repaint part of the canvas pane (x, y, w, h in canvas pixels). */
void app_canvas_dirty(paint_app *a, SDL_Rect r);

/*
 * The session runs libsemdraw on a control thread of its own (the SDK's rule
 * 1): connecting, sending edits, committing, play/pause, status requests,
 * heartbeats and events all happen there, so a daemon that answers slowly
 * never stalls the window. The UI thread only reads frames (the semdraw_frame_*
 * calls may run beside the control thread) and hands over edits.
 */
int session_start(paint_app *a);
/* Stop the control thread: the canvas is closed and the client disconnected. */
void session_stop(paint_app *a);
/*
 * Once per main-loop iteration: copy the control thread's state and status
 * message, read a new frame, hand over pending edits (at most PAINT_COMMIT_HZ
 * batches a second).
 */
void session_update(paint_app *a);
/* Send the whole document again (a new canvas): after a scene was loaded. */
void session_resend_all(paint_app *a);
/* A layer with this uid was removed from the document. */
void session_layer_removed(paint_app *a, uint32_t uid);
/* Reconnect and make the canvas again (F5). */
void session_reconnect(paint_app *a);
/* The SDL event type the control thread wakes the window with (a frame is ready). */
uint32_t session_wake_event(void);

/* ---- UI (ui.c) ---- */

void ui_layout(paint_app *a);
void ui_render(paint_app *a);
void ui_handle_event(paint_app *a, const SDL_Event *ev);
/* Field and slider access, shared with the script. */
void ui_focus(paint_app *a, int ctl);
void ui_slider_set(paint_app *a, int ctl, float value);
/* Scroll the layer list so that the selected layer's row shows. */
void ui_show_selected(paint_app *a);
/* The rectangle of the i-th layer's row, or NULL when not shown. */
const SDL_Rect *ui_layer_row(paint_app *a, int index);
/* Canvas pixel <-> window pixel. */
void ui_canvas_to_window(const paint_app *a, float cx, float cy, int *wx, int *wy);

/* ---- files (scene_io.c; PNG output is clients/common/png_io.h) ---- */

/* Scene files: 0, or -1 with a message in err. */
int scene_save(const paint_doc *d, const char *path, char *err, size_t err_size);
int scene_load(const char *path, paint_doc *out, char *warn, size_t warn_size, char *err, size_t err_size);

/* ---- the script driver (script.c) ---- */

int script_load(const char *path, paint_script **out);
void script_free(paint_script *s);
/* Run the script's next step; once per main-loop iteration. */
void script_step(paint_app *a);
/* Whether the script runs (the loop then does not sleep long). */
int script_active(const paint_script *s);

#endif
