/*
 * session.c - the document mirrored into a semdrawd canvas through
 * libsemdraw, and the frames coming back.
 *
 * Two threads, as the SDK's rule 1 has it. A control thread owns the client
 * and the canvas: it connects, creates the canvas, sends edits and commits,
 * starts and stops the stream, asks for the daemon's status once a second,
 * and runs semdraw_dispatch() for heartbeats and events. Requests block until
 * the daemon answers, and a daemon can be slow to answer (creating or closing
 * a canvas waits for the frame in progress; a busy machine delays everything),
 * so none of that happens on the UI thread. The UI thread reads frames itself
 * (semdraw_frame_copy may run beside the control thread) and hands edits over.
 *
 * Edits travel as batches: the UI marks what changed (per layer
 * SEMDRAW_LAYER_* bits, background, seed, removed layers); session_update()
 * copies the changed parts into a batch and posts it when the previous one
 * was taken and 1/PAINT_COMMIT_HZ has passed, so a stroke is streamed while
 * it is drawn without flooding the daemon; a slow daemon just gets fewer,
 * larger batches. The control thread applies a batch and commits it. A "full"
 * batch carries the whole document and makes a new canvas: at the start,
 * after a scene was loaded, and when the daemon restarted.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "paint.h"

#define REQUEST_TIMEOUT_MS 5000 /* the SDK's default */
#define FRAME_POLL_MS 250       /* read the ring this often even without a FRAME_READY */
#define STATUS_POLL_MS 1000
#define RETRY_MS 10000          /* ask a daemon that did not answer again after this */
#define CONNECT_RETRY_MS 5000   /* try to connect again this often while there is no daemon */
#define MAX_PENDING 32

static const unsigned all_layer_fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_NEGATIVE | SEMDRAW_LAYER_MASK |
                                         SEMDRAW_LAYER_MASK_STD | SEMDRAW_LAYER_MASK_STRENGTH |
                                         SEMDRAW_LAYER_PROMPT_STRENGTH;

/* ---- batches ---- */

typedef struct batch_layer {
    uint32_t uid;
    unsigned fields;               /* SEMDRAW_LAYER_* carried */
    char *prompt, *negative;
    uint8_t *mask;
    float mask_std, mask_strength, prompt_strength;
} batch_layer;

typedef struct batch {
    int full;                      /* a new canvas from this, the whole document */
    int during_stroke;
    uint64_t t_ms;                 /* when it was handed over */
    int width, height;
    uint64_t seed;
    paint_settings settings;       /* suffix not copied (the daemon cannot take it) */
    unsigned dirty;                /* paint_sync_dirty */
    char *bg_prompt, *bg_negative;
    uint8_t *bg_image;             /* when PAINT_DIRTY_BG_PIXELS and the document has one */
    uint8_t bg_color[3];
    int n_removed;
    uint32_t removed[PAINT_MAX_LAYERS];
    int n_layers;
    batch_layer layers[PAINT_MAX_LAYERS]; /* bottom first */
} batch;

static void batch_free(batch *b)
{
    if (!b) return;
    for (int i = 0; i < b->n_layers; i++) {
        free(b->layers[i].prompt);
        free(b->layers[i].negative);
        free(b->layers[i].mask);
    }
    free(b->bg_prompt);
    free(b->bg_negative);
    free(b->bg_image);
    free(b);
}

/* ---- what the threads share ---- */

struct paint_link {
    SDL_mutex *mu;                 /* guards everything below up to "control thread only" */
    SDL_Thread *thread;
    int wake_fd;                   /* eventfd: something was posted, or stop */
    /* UI -> control thread */
    batch *outbox;                 /* at most one batch waits */
    int want_stream, reconnect, stop;
    /* control thread -> UI */
    paint_daemon_view view;
    int need_full;                 /* the UI should send the whole document */
    semdraw_canvas *published;     /* the canvas frames are read from (the UI holds mu while reading) */
    int pub_w, pub_h;              /* its size */
    uint64_t canvas_gen;
    int frame_hint, wake_pending;
    char status[512];
    int status_error;
    uint64_t status_seq;
    struct { uint64_t input_seq, t_ms; } pending[MAX_PENDING]; /* commits waiting for their frame */
    int n_pending;

    /* control thread only */
    char *runtime_dir;
    float target_fps;
    semdraw_client *client;
    semdraw_canvas *canvas;
    uint64_t canvas_id;
    struct { uint32_t uid, id; } ids[PAINT_MAX_LAYERS];
    int n_ids;
    int streaming, rebuild, restarted;
    uint64_t stream_failed_ms;     /* a frame failed and the daemon stopped the stream: play again after RETRY_MS */
    int commit_waiting;            /* a commit refused with SEMDRAW_E_BUSY: again after the next frame */
    int commit_stroke;             /* ... and whether its edits came from a stroke */
    uint64_t commit_t_ms, commit_retry_ms;
    int frame_seen;                /* a FRAME_READY since the last commit attempt */
    uint64_t last_status_ms, last_connect_ms;
};

static uint32_t wake_event_type;

uint32_t session_wake_event(void) { return wake_event_type; }

static void wake(paint_link *l)
{
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof one) < 0) { /* the counter is saturated: it is awake anyway */
    }
}

/* A message for the status bar (errors also on stderr). Control thread. */
static void link_status(paint_link *l, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void link_status(paint_link *l, int error, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (error) fprintf(stderr, "semdraw-paint: %s\n", msg);
    paint_debug("status: %s", msg);
    SDL_LockMutex(l->mu);
    memcpy(l->status, msg, sizeof msg);
    l->status_error = error;
    l->status_seq++;
    SDL_UnlockMutex(l->mu);
}

/* Change the shared view under the lock: VIEW(l, field = value). */
#define VIEW(l, ...)                   \
    do {                               \
        SDL_LockMutex((l)->mu);        \
        (l)->view.__VA_ARGS__;         \
        SDL_UnlockMutex((l)->mu);      \
    } while (0)

static void fail(paint_link *l, const char *what, int status)
{
    const char *detail = semdraw_last_error();
    SDL_LockMutex(l->mu);
    l->view.errors++;
    if (status == SEMDRAW_E_TIMEDOUT) l->view.unresponsive = 1;
    SDL_UnlockMutex(l->mu);
    link_status(l, 1, "%s: %s%s%s", what, semdraw_strerror(status), detail && *detail ? ": " : "",
                detail ? detail : "");
    if (status == SEMDRAW_E_DAEMON_RESTARTED) l->rebuild = 1;
}

/* ---- the canvas (control thread) ---- */

static void publish(paint_link *l, semdraw_canvas *cv, int w, int h)
{
    SDL_LockMutex(l->mu);
    l->published = cv;
    l->pub_w = w, l->pub_h = h;
    l->canvas_gen++;
    l->view.has_canvas = cv != NULL;
    l->view.streaming = 0;
    if (cv && l->restarted) l->view.restarts++, l->restarted = 0;
    l->n_pending = 0;
    SDL_UnlockMutex(l->mu);
}

static void drop_canvas(paint_link *l)
{
    if (!l->canvas) return;
    publish(l, NULL, 0, 0); /* the UI stops reading it before it goes */
    semdraw_canvas_release(l->canvas);
    l->canvas = NULL;
    l->streaming = 0;
    l->n_ids = 0;
    l->commit_waiting = 0;
}

/* The whole document is needed (a new canvas): ask the UI for it. */
static void ask_full(paint_link *l)
{
    drop_canvas(l);
    l->rebuild = 0;
    SDL_LockMutex(l->mu);
    l->need_full = 1;
    SDL_UnlockMutex(l->mu);
}

static int lookup_id(paint_link *l, uint32_t uid, uint32_t *id)
{
    for (int i = 0; i < l->n_ids; i++)
        if (l->ids[i].uid == uid) {
            *id = l->ids[i].id;
            return 1;
        }
    return 0;
}

static void forget_id(paint_link *l, uint32_t uid)
{
    for (int i = 0; i < l->n_ids; i++)
        if (l->ids[i].uid == uid) l->ids[i] = l->ids[--l->n_ids];
}

static void on_event(void *user, const semdraw_event *ev)
{
    paint_link *l = user;
    if (ev->type != SEMDRAW_EVENT_FRAME_READY)
        paint_debug("event %u canvas %llu status %d: %s", ev->type, (unsigned long long)ev->canvas_id, ev->status,
                    ev->message ? ev->message : "");
    const char *msg = ev->message ? ev->message : "";
    switch (ev->type) {
    case SEMDRAW_EVENT_FRAME_READY:
        if (ev->canvas && ev->canvas == l->canvas) {
            l->frame_seen = 1;
            SDL_LockMutex(l->mu);
            l->frame_hint = 1;
            l->view.unresponsive = 0;
            int push = !l->wake_pending;
            l->wake_pending = 1;
            SDL_UnlockMutex(l->mu);
            if (push) { /* wake the window now rather than at its next tick */
                SDL_Event e;
                memset(&e, 0, sizeof e);
                e.type = wake_event_type;
                SDL_PushEvent(&e);
            }
        }
        break;
    case SEMDRAW_EVENT_MODEL_STATE:
        VIEW(l, model_state = (int)ev->model_state);
        VIEW(l, load_progress = ev->progress);
        VIEW(l, unresponsive = 0);
        if (ev->model_state == SEMDRAW_MODEL_READY) {
            if (!l->canvas) l->rebuild = 1;
            link_status(l, 0, "model ready");
        } else if (ev->model_state == SEMDRAW_MODEL_FAILED) {
            link_status(l, 1, "the daemon's model failed to load%s%s", *msg ? ": " : "", msg);
        } else {
            link_status(l, 0, "model loading: %.0f%%", 100.0f * ev->progress);
        }
        break;
    case SEMDRAW_EVENT_CANVAS_CLOSED:
        if (ev->canvas && ev->canvas == l->canvas) {
            /* released after dispatch returns; it may be shutting down: ask again only now and then */
            VIEW(l, unresponsive = 1);
            link_status(l, 1, "the daemon closed the canvas%s%s; it is made again when the daemon answers (F5: now)",
                        *msg ? ": " : "", msg);
            l->canvas_id = 0;
        }
        break;
    case SEMDRAW_EVENT_DAEMON_RESTARTED:
        /*
         * The client restores the canvases it still has (SEMDRAW_CONNECT_AUTO_RESTORE),
         * but the header does not promise that layer ids survive, a canvas the
         * daemon closed on its way down is not among them, and the document is
         * the truth anyway: make the canvas again from it.
         */
        VIEW(l, state = PAINT_CONNECTED);
        VIEW(l, unresponsive = 0);
        l->rebuild = l->restarted = 1;
        link_status(l, 0, "the daemon restarted; sending the document again");
        break;
    case SEMDRAW_EVENT_CANVAS_RESTORED:
        if (ev->canvas && ev->canvas == l->canvas) l->rebuild = 1;
        break;
    case SEMDRAW_EVENT_DISCONNECTED:
        VIEW(l, state = PAINT_GONE);
        link_status(l, 1, "the daemon stopped answering; waiting for it (F5 reconnects)");
        break;
    case SEMDRAW_EVENT_CANVAS_ERROR:
        if (!ev->canvas || ev->canvas != l->canvas) break;
        VIEW(l, errors++);
        if (ev->error_kind == SEMDRAW_CANVAS_ERROR_FRAME) { /* the daemon stopped the stream */
            l->streaming = 0;
            l->stream_failed_ms = paint_now_ms();
            link_status(l, 1, "the daemon could not render: %s (it tries again in %d s)", msg, RETRY_MS / 1000);
        } else {
            link_status(l, 1, "the daemon refused an edit: %s", msg);
        }
        break;
    case SEMDRAW_EVENT_ERROR:
        VIEW(l, errors++);
        link_status(l, 1, "daemon: %s%s%s", semdraw_strerror(ev->status), *msg ? ": " : "", msg);
        break;
    default:
        break;
    }
}

/* Connect; a failure is an error the first time (report), later only the status line says it. */
static int link_connect(paint_link *l, int report)
{
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = l->runtime_dir,
                              .client_name = "semdraw-paint", .timeout_ms = REQUEST_TIMEOUT_MS,
                              .flags = SEMDRAW_CONNECT_AUTO_RESTORE};
    int rc = semdraw_connect(&o, &l->client);
    if (rc) {
        l->client = NULL;
        if (report) {
            fail(l, "connect", rc);
        } else {
            const char *why = semdraw_last_error();
            link_status(l, 0, "not connected: %s; trying again every %d s", *why ? why : semdraw_strerror(rc),
                        CONNECT_RETRY_MS / 1000);
        }
        VIEW(l, state = PAINT_OFFLINE);
        VIEW(l, unresponsive = 0);
        return -1;
    }
    semdraw_set_event_callback(l->client, on_event, l);
    semdraw_client_info ci = {.struct_size = sizeof ci};
    int model = SEMDRAW_MODEL_READY;
    float progress = 1;
    if (semdraw_client_info_get(l->client, &ci) == 0) model = (int)ci.model_state, progress = ci.load_progress;
    SDL_LockMutex(l->mu);
    l->view.state = PAINT_CONNECTED;
    l->view.unresponsive = 0;
    l->view.model_state = model;
    l->view.load_progress = progress;
    SDL_UnlockMutex(l->mu);
    link_status(l, 0, "connected to semdrawd%s", model == SEMDRAW_MODEL_LOADING ? " (the model is loading)" : "");
    ask_full(l);
    return 0;
}

static void link_disconnect(paint_link *l)
{
    drop_canvas(l);
    semdraw_disconnect(l->client);
    l->client = NULL;
    VIEW(l, state = PAINT_OFFLINE);
}

static int create_canvas(paint_link *l, const batch *b)
{
    semdraw_canvas_desc desc = {.struct_size = sizeof desc, .width = (uint32_t)b->width,
                                .height = (uint32_t)b->height, .flags = SEMDRAW_CANVAS_SEED, .seed = b->seed};
    const paint_settings *st = &b->settings;
    if (st->from_scene) {
        desc.profile = (uint32_t)st->profile;
        desc.n_timesteps = (uint32_t)st->n_timesteps;
        for (int i = 0; i < st->n_timesteps; i++) desc.timesteps[i] = (uint32_t)st->timesteps[i];
    }
    paint_debug("creating a %dx%d canvas", b->width, b->height);
    semdraw_canvas *cv = NULL;
    int rc = semdraw_canvas_create(l->client, &desc, &cv);
    paint_debug("create: %d", rc);
    if (rc == SEMDRAW_E_NOMODEL) { /* loading after all: again when the model is ready */
        VIEW(l, model_state = SEMDRAW_MODEL_LOADING);
        link_status(l, 0, "waiting for the daemon's model to load");
        return -1;
    }
    if (rc) {
        fail(l, "create canvas", rc);
        return -1;
    }
    l->canvas = cv;
    semdraw_canvas_info ci = {.struct_size = sizeof ci};
    if (semdraw_canvas_info_get(cv, &ci) == 0) l->canvas_id = ci.canvas_id;
    if (st->from_scene) {
        /*
         * A scene's rendering settings: semdraw_canvas_desc has no fields for
         * them, so they go through set_params right after the create, and only
         * those that differ from the stream defaults (a daemon may refuse
         * them on a live canvas, which is then worth a warning, not an error).
         */
        semdraw_canvas_params p = {.struct_size = sizeof p, .guidance_scale = st->guidance_scale,
                                   .bootstrap_steps = (uint32_t)st->bootstrap_steps,
                                   .bootstrap_mix_steps = st->bootstrap_mix_steps,
                                   .mask_type = (uint32_t)st->mask_type, .cover_alpha = st->cover_alpha};
        if (st->guidance_scale != 1.0f) p.fields |= SEMDRAW_PARAM_GUIDANCE;
        if (st->bootstrap_steps != 1) p.fields |= SEMDRAW_PARAM_BOOTSTRAP_STEPS;
        if (st->bootstrap_mix_steps != 1.0f) p.fields |= SEMDRAW_PARAM_BOOTSTRAP_MIX;
        if (st->mask_type >= 0 && st->mask_type != SEMDRAW_MASK_CONTINUOUS) p.fields |= SEMDRAW_PARAM_MASK_TYPE;
        if (st->cover_alpha != 0.3f) p.fields |= SEMDRAW_PARAM_COVER_ALPHA;
        if (p.fields && (rc = semdraw_canvas_set_params(cv, &p)) != 0) {
            const char *why = semdraw_last_error();
            link_status(l, 0, "the scene's guidance/bootstrap/mask type/cover alpha are not applied: %s%s%s",
                        semdraw_strerror(rc), *why ? ": " : "", why);
            fprintf(stderr, "semdraw-paint: warning: the scene's rendering settings are not applied: %s\n", why);
        }
    }
    publish(l, cv, b->width, b->height);
    return 0;
}

static void commit(paint_link *l);

/* Run one SDK call of a batch; 0 to go on, -1 to give the batch up. */
static int step(paint_link *l, const char *what, int rc)
{
    if (!rc) return 0;
    fail(l, what, rc);
    return rc == SEMDRAW_E_TIMEDOUT || rc == SEMDRAW_E_CLOSED || rc == SEMDRAW_E_DAEMON_RESTARTED ? -1 : 0;
}

static void apply_batch(paint_link *l, batch *b)
{
    if (b->full) {
        drop_canvas(l);
        if (create_canvas(l, b)) {
            ask_full(l); /* try again with the document as it is then */
            return;
        }
    }
    semdraw_canvas *cv = l->canvas;
    if (!cv) return;
    for (int i = 0; i < b->n_removed; i++) {
        uint32_t id;
        if (!lookup_id(l, b->removed[i], &id)) continue; /* never made it to the daemon */
        if (step(l, "remove layer", semdraw_layer_remove(cv, id))) return;
        forget_id(l, b->removed[i]);
    }
    if (b->dirty & (PAINT_DIRTY_BG_TEXT | PAINT_DIRTY_BG_PIXELS)) {
        const uint8_t *rgb = b->dirty & PAINT_DIRTY_BG_PIXELS ? b->bg_image : NULL;
        if (step(l, "background", semdraw_canvas_set_background(cv, b->bg_prompt, b->bg_negative, rgb,
                                                                rgb ? (uint32_t)b->width * 3 : 0)))
            return;
        if ((b->dirty & PAINT_DIRTY_BG_PIXELS) && !b->bg_image) {
            uint32_t c = (uint32_t)b->bg_color[0] << 16 | (uint32_t)b->bg_color[1] << 8 | b->bg_color[2];
            if (step(l, "background colour", semdraw_canvas_set_background_color(cv, c))) return;
        }
    }
    if ((b->dirty & PAINT_DIRTY_SEED) && !b->full) { /* a new canvas has it from its description */
        semdraw_canvas_params p = {.struct_size = sizeof p, .fields = SEMDRAW_PARAM_SEED, .seed = b->seed};
        if (step(l, "seed", semdraw_canvas_set_params(cv, &p))) return;
    }
    for (int i = 0; i < b->n_layers; i++) {
        const batch_layer *bl = &b->layers[i];
        semdraw_layer sl = {.struct_size = sizeof sl, .fields = bl->fields, .prompt = bl->prompt,
                            .negative = bl->negative, .mask = bl->mask, .mask_stride = (uint32_t)b->width,
                            .mask_std = bl->mask_std, .mask_strength = bl->mask_strength,
                            .prompt_strength = bl->prompt_strength};
        uint32_t id;
        if (lookup_id(l, bl->uid, &id)) {
            if (step(l, "layer", semdraw_layer_set(cv, id, &sl))) return;
        } else if ((bl->fields & all_layer_fields) == all_layer_fields && l->n_ids < PAINT_MAX_LAYERS) {
            int rc = semdraw_layer_add(cv, &sl, &id);
            if (step(l, "add layer", rc)) return;
            if (!rc) l->ids[l->n_ids].uid = bl->uid, l->ids[l->n_ids++].id = id;
        }
    }
    l->commit_t_ms = b->t_ms;
    l->commit_stroke = b->during_stroke;
    commit(l);
}

/*
 * Commit what was sent. A canvas that renders slower than edits come gets
 * SEMDRAW_E_BUSY: its edits stay with the daemon and the commit is tried again
 * after its next frame; meanwhile no new batch is taken (the UI gathers the
 * edits, so they go out together).
 */
static void commit(paint_link *l)
{
    uint64_t seq = 0;
    l->frame_seen = 0;
    int rc = semdraw_canvas_commit(l->canvas, &seq);
    l->commit_waiting = rc == SEMDRAW_E_BUSY;
    if (rc == SEMDRAW_E_BUSY) {
        l->commit_retry_ms = paint_now_ms() + 1000; /* or at the next frame, whichever comes first */
        paint_debug("commit: busy, again after the next frame");
        return;
    }
    if (rc) {
        fail(l, "commit", rc);
        return;
    }
    SDL_LockMutex(l->mu);
    l->view.commits++;
    if (l->commit_stroke) l->view.stroke_commits++;
    if (l->n_pending == MAX_PENDING) {
        memmove(&l->pending[0], &l->pending[1], sizeof l->pending - sizeof l->pending[0]);
        l->n_pending--;
    }
    l->pending[l->n_pending].input_seq = seq;
    l->pending[l->n_pending].t_ms = l->commit_t_ms;
    l->n_pending++;
    SDL_UnlockMutex(l->mu);
}

static void apply_play(paint_link *l, int want)
{
    if (!l->canvas || want == l->streaming) return;
    if (want && l->stream_failed_ms && paint_now_ms() - l->stream_failed_ms < RETRY_MS) return;
    l->stream_failed_ms = 0;
    int rc = want ? semdraw_stream_start(l->canvas, l->target_fps) : semdraw_stream_stop(l->canvas);
    if (rc) {
        fail(l, want ? "play" : "pause", rc);
        return;
    }
    l->streaming = want;
    VIEW(l, streaming = want);
}

static void poll_status(paint_link *l, int quiet, uint64_t now)
{
    if (!l->client) return;
    if (l->last_status_ms && now - l->last_status_ms < (uint64_t)(quiet ? RETRY_MS : STATUS_POLL_MS)) return;
    l->last_status_ms = now ? now : 1;
    semdraw_status_info st = {.struct_size = sizeof st};
    int rc = semdraw_status_get(l->client, &st);
    if (rc) {
        if (!quiet) fail(l, "status", rc);
        return;
    }
    if (quiet) {
        link_status(l, 0, "the daemon answers again");
        if (!l->canvas) l->rebuild = 1; /* e.g. a create that timed out */
    }
    SDL_LockMutex(l->mu);
    l->view.state = PAINT_CONNECTED;
    l->view.unresponsive = 0;
    l->view.model_state = (int)st.model_state;
    l->view.load_progress = st.load_progress;
    l->view.clients = st.clients;
    if (st.clients > l->view.max_clients) l->view.max_clients = st.clients;
    l->view.daemon_fps = l->view.daemon_latency_ms = 0;
    for (uint32_t i = 0; i < st.n_canvases; i++) {
        if (l->canvas && st.canvases[i].canvas_id == l->canvas_id) {
            l->view.daemon_fps = st.canvases[i].fps;
            l->view.daemon_latency_ms = st.canvases[i].latency_ms;
        }
    }
    SDL_UnlockMutex(l->mu);
    semdraw_status_free(&st);
}

static int control_thread(void *arg)
{
    paint_link *l = arg;
    l->last_connect_ms = paint_now_ms();
    if (link_connect(l, 1)) VIEW(l, connect_failed = 1);
    for (;;) {
        SDL_LockMutex(l->mu);
        int stop = l->stop, reconnect = l->reconnect, want = l->want_stream;
        int quiet = l->view.unresponsive || l->view.state == PAINT_GONE;
        int loading = l->view.model_state == SEMDRAW_MODEL_LOADING;
        l->reconnect = 0;
        batch *b = NULL;
        if (l->outbox && l->outbox->full && l->client && !quiet && !loading) {
            b = l->outbox, l->outbox = NULL;
        } else if (l->outbox && !l->outbox->full && !l->need_full && (!l->canvas || (!quiet && !l->commit_waiting))) {
            b = l->outbox, l->outbox = NULL;
            if (!l->canvas) { /* nowhere to send it: every new canvas starts from a full batch */
                batch_free(b);
                b = NULL;
            }
        }
        SDL_UnlockMutex(l->mu);
        if (stop) break;

        if (reconnect || (!l->client && paint_now_ms() - l->last_connect_ms >= CONNECT_RETRY_MS)) {
            l->last_connect_ms = paint_now_ms();
            link_disconnect(l);
            link_connect(l, reconnect);
        }
        if (l->rebuild && l->client && !quiet && !loading) ask_full(l);
        if (b) apply_batch(l, b);
        batch_free(b);
        if (l->commit_waiting && l->canvas && !quiet && (l->frame_seen || paint_now_ms() >= l->commit_retry_ms))
            commit(l);
        if (l->canvas && !quiet) apply_play(l, want);
        uint64_t now = paint_now_ms();
        if (l->client) poll_status(l, quiet, now);

        /* sleep until the daemon or the UI has something, or a heartbeat is due */
        struct pollfd fds[2] = {{.fd = l->wake_fd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
        int timeout = 100;
        if (l->client) {
            fds[1].fd = semdraw_get_fd(l->client);
            timeout = SDL_min(timeout, semdraw_get_timeout_ms(l->client));
        }
        if (poll(fds, 2, timeout < 0 ? 0 : timeout) > 0 && (fds[0].revents & POLLIN)) {
            uint64_t n;
            if (read(l->wake_fd, &n, sizeof n) < 0) { /* EAGAIN: another read took it */
            }
        }
        if (l->client) {
            int rc = semdraw_dispatch(l->client);
            if (rc < 0 && rc != SEMDRAW_E_AGAIN) paint_debug("dispatch: %s", semdraw_strerror(rc));
        }
        if (l->canvas) { /* the daemon closed it (CANVAS_CLOSED): let it go */
            semdraw_canvas_info ci = {.struct_size = sizeof ci};
            if (semdraw_canvas_info_get(l->canvas, &ci) != 0) drop_canvas(l);
        }
    }
    link_disconnect(l);
    return 0;
}

/* ---- the UI side ---- */

int session_start(paint_app *a)
{
    paint_session *s = &a->ses;
    if (!wake_event_type) wake_event_type = SDL_RegisterEvents(1);
    paint_link *l = calloc(1, sizeof *l);
    if (!l) return -1;
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->mu = SDL_CreateMutex();
    l->runtime_dir = s->runtime_dir ? strdup(s->runtime_dir) : NULL;
    l->target_fps = s->target_fps;
    l->want_stream = s->want_stream;
    if (l->wake_fd < 0 || !l->mu || (s->runtime_dir && !l->runtime_dir) || wake_event_type == (uint32_t)-1) {
        if (l->wake_fd >= 0) close(l->wake_fd);
        if (l->mu) SDL_DestroyMutex(l->mu);
        free(l->runtime_dir);
        free(l);
        return -1;
    }
    s->link = l;
    l->thread = SDL_CreateThread(control_thread, "semdraw-control", l);
    if (!l->thread) {
        s->link = NULL;
        close(l->wake_fd);
        SDL_DestroyMutex(l->mu);
        free(l->runtime_dir);
        free(l);
        return -1;
    }
    return 0;
}

void session_stop(paint_app *a)
{
    paint_link *l = a->ses.link;
    if (!l) return;
    SDL_LockMutex(l->mu);
    l->stop = 1;
    SDL_UnlockMutex(l->mu);
    wake(l);
    SDL_WaitThread(l->thread, NULL);
    a->ses.view = l->view; /* the final counters */
    batch_free(l->outbox);
    close(l->wake_fd);
    SDL_DestroyMutex(l->mu);
    free(l->runtime_dir);
    free(l);
    a->ses.link = NULL;
}

void session_reconnect(paint_app *a)
{
    paint_link *l = a->ses.link;
    if (!l) return;
    SDL_LockMutex(l->mu);
    l->reconnect = 1;
    SDL_UnlockMutex(l->mu);
    wake(l);
    app_status(a, "reconnecting...");
}

void session_layer_removed(paint_app *a, uint32_t uid)
{
    paint_session *s = &a->ses;
    if (s->n_removed < PAINT_MAX_LAYERS) s->removed[s->n_removed++] = uid;
}

void session_resend_all(paint_app *a)
{
    paint_session *s = &a->ses;
    s->full_pending = 1;
    s->dirty = PAINT_DIRTY_BG_TEXT | PAINT_DIRTY_BG_PIXELS | PAINT_DIRTY_SEED;
    s->n_removed = 0;
    for (int i = 0; i < a->doc.n_layers; i++) a->doc.layers[i]->dirty = all_layer_fields;
}

static int has_edits(const paint_app *a)
{
    if (a->ses.full_pending || a->ses.dirty || a->ses.n_removed) return 1;
    for (int i = 0; i < a->doc.n_layers; i++)
        if (a->doc.layers[i]->dirty) return 1;
    return 0;
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

/* The pending edits as a batch (the dirty marks are cleared only once it is posted). */
static batch *make_batch(paint_app *a, uint64_t now)
{
    const paint_doc *d = &a->doc;
    paint_session *s = &a->ses;
    batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    int oom = 0;
    size_t n = (size_t)d->width * d->height;
    b->full = s->full_pending;
    b->during_stroke = a->drawing != 0;
    b->t_ms = now;
    b->width = d->width, b->height = d->height, b->seed = d->seed;
    b->settings = d->settings;
    b->settings.suffix = NULL;
    b->dirty = s->dirty;
    b->bg_prompt = dup_or_null(d->bg_prompt, &oom);
    b->bg_negative = dup_or_null(d->bg_negative, &oom);
    memcpy(b->bg_color, d->bg_color, 3);
    if ((s->dirty & PAINT_DIRTY_BG_PIXELS) && d->bg_image) {
        if ((b->bg_image = malloc(n * 3))) memcpy(b->bg_image, d->bg_image, n * 3);
        else oom = 1;
    }
    b->n_removed = s->n_removed;
    memcpy(b->removed, s->removed, sizeof b->removed);
    for (int i = 0; i < d->n_layers; i++) {
        const paint_layer *pl = d->layers[i];
        if (!pl->dirty) continue;
        batch_layer *bl = &b->layers[b->n_layers++];
        bl->uid = pl->uid;
        bl->fields = pl->dirty;
        bl->prompt = dup_or_null(pl->prompt, &oom);
        bl->negative = dup_or_null(pl->negative, &oom);
        bl->mask_std = pl->mask_std, bl->mask_strength = pl->mask_strength;
        bl->prompt_strength = pl->prompt_strength;
        if (pl->dirty & SEMDRAW_LAYER_MASK) {
            if ((bl->mask = malloc(n))) memcpy(bl->mask, pl->mask, n);
            else oom = 1;
        }
    }
    if (oom) {
        batch_free(b);
        return NULL;
    }
    return b;
}

static void clear_edits(paint_app *a)
{
    a->ses.full_pending = 0;
    a->ses.dirty = 0;
    a->ses.n_removed = 0;
    for (int i = 0; i < a->doc.n_layers; i++) a->doc.layers[i]->dirty = 0;
}

/* Hand pending edits over when the previous batch was taken (a full one replaces a waiting one). */
static void post_edits(paint_app *a, uint64_t now)
{
    paint_session *s = &a->ses;
    paint_link *l = s->link;
    if (!has_edits(a)) return;
    if (!s->full_pending && now - s->last_post_ms < 1000 / PAINT_COMMIT_HZ) return;
    SDL_LockMutex(l->mu);
    int free_slot = !l->outbox || s->full_pending; /* a full batch replaces a waiting one */
    SDL_UnlockMutex(l->mu);
    if (!free_slot) return; /* the control thread is busy: the edits gather here meanwhile */
    batch *b = make_batch(a, now); /* only this thread posts, so the slot stays free */
    if (!b) {
        app_error(a, "out of memory");
        return;
    }
    SDL_LockMutex(l->mu);
    batch_free(l->outbox); /* a partial batch a full one replaces (it holds everything) */
    l->outbox = b;
    SDL_UnlockMutex(l->mu);
    wake(l);
    clear_edits(a);
    s->last_post_ms = now;
}

static void got_frame(paint_app *a, const semdraw_frame *f, uint64_t now)
{
    paint_session *s = &a->ses;
    paint_link *l = s->link;
    uint64_t n = f->seq > s->last_seq ? f->seq - s->last_seq : 1;
    s->frames += n;
    s->fps_count += (int)n;
    s->dropped += f->dropped;
    s->last_seq = f->seq;
    s->last_input_seq = f->input_seq;
    s->have_frame = s->frame_new = 1;
    s->frame_w = (int)f->width, s->frame_h = (int)f->height;
    /* the newest batch this frame shows: its latency is now minus when it was handed over (l->mu held) */
    int done = 0;
    while (done < l->n_pending && l->pending[done].input_seq <= f->input_seq) done++;
    if (done) {
        s->edit_latency_ms = (float)(now - l->pending[done - 1].t_ms);
        memmove(&l->pending[0], &l->pending[done], (size_t)(l->n_pending - done) * sizeof l->pending[0]);
        l->n_pending -= done;
    }
    a->redraw = 1;
}

void session_update(paint_app *a)
{
    paint_session *s = &a->ses;
    paint_link *l = s->link;
    if (!l) return;
    uint64_t now = paint_now_ms();
    char status[512];
    int status_error = 0, new_status = 0;
    SDL_LockMutex(l->mu);
    if (l->status_seq != s->status_seq) {
        s->status_seq = l->status_seq;
        memcpy(status, l->status, sizeof status);
        status_error = l->status_error;
        new_status = 1;
    }
    if (memcmp(&s->view, &l->view, sizeof s->view) != 0) a->redraw = 1;
    s->view = l->view;
    if (l->need_full) {
        l->need_full = 0;
        session_resend_all(a);
    }
    if (l->want_stream != s->want_stream) {
        l->want_stream = s->want_stream;
        wake(l);
    }
    l->wake_pending = 0;
    /* the frame: copied here, under the lock, so the canvas cannot go meanwhile */
    if (l->canvas_gen != s->canvas_gen) {
        s->canvas_gen = l->canvas_gen;
        s->last_seq = 0, s->last_frame_rc = 0;
    }
    if (l->published && l->pub_w == a->doc.width && l->pub_h == a->doc.height && s->frame &&
        (l->frame_hint || now - s->last_frame_poll_ms >= FRAME_POLL_MS)) {
        l->frame_hint = 0;
        s->last_frame_poll_ms = now;
        size_t stride = (size_t)a->doc.width * 4;
        semdraw_frame f = {.struct_size = sizeof f};
        int rc = semdraw_frame_copy(l->published, s->frame, stride * a->doc.height, (uint32_t)stride, &f);
        if (rc == 0 && f.seq != s->last_seq) got_frame(a, &f, now);
        if (rc && rc != SEMDRAW_E_AGAIN && rc != s->last_frame_rc) {
            l->view.errors++;
            snprintf(status, sizeof status, "frame: %s: %s", semdraw_strerror(rc), semdraw_last_error());
            status_error = new_status = 1;
        }
        s->last_frame_rc = rc == SEMDRAW_E_AGAIN ? 0 : rc;
    }
    SDL_UnlockMutex(l->mu);

    if (new_status) {
        if (status_error) snprintf(a->status, sizeof a->status, "%s", status), a->status_error = 1, a->redraw = 1;
        else app_status(a, "%s", status);
    }
    post_edits(a, now);
    if (now - s->fps_t0 >= 1000) {
        s->fps = s->fps_count * 1000.0f / (float)(now - s->fps_t0);
        s->fps_count = 0;
        s->fps_t0 = now;
        a->redraw = 1;
    }
}
