/* The engine thread: canvases, commits at frame boundaries, paced streams into rings. */
#define _GNU_SOURCE
#include "engine_host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring_writer.h"
#include "semd/status.h"
#include "semdraw/v1/ring_abi.h"

/* A commit: deep copies of its edits, applied together before the canvas's next frame. */
typedef struct edit_set {
    semd_host_edit *edits;
    int n;
    uint64_t input_seq;
    double committed_ms; /* when it was handed over, for latency */
    struct edit_set *next;
} edit_set;

typedef struct hcanvas {
    uint64_t id;
    semd_canvas *c;
    semd_ring *ring;
    int width, height;
    edit_set *mail_head, *mail_tail; /* guarded by the host mutex */
    uint64_t committed_seq;          /* guarded: the last input_seq handed out */
    uint64_t applied_seq;            /* engine thread: the last input_seq applied */
    int streaming;
    int snapshot_left; /* guarded: frames still to render for a snapshot of a canvas that is not streaming */
    int n_slots;       /* T */
    int fresh; /* guarded: the next frame is the first since the stream started */
    double interval_ms, next_due_ms;
    uint64_t frame_seq;
    /* engine thread, published under the mutex after each round */
    double applied_commit_ms;  /* when the newest applied commit was made; 0 once measured */
    double last_frame_ms, fps, latency_ms;
    int pending;               /* guarded: commits in the mailbox */
    uint64_t shown_frames, shown_input_seq; /* guarded copies of frame_seq and applied_seq */
    size_t memory;             /* guarded: semd_canvas_memory after the latest round */
    int closing;               /* guarded: an async close is queued: no frames, not counted */
    char error[256];
    struct hcanvas *next;
} hcanvas;

typedef enum cmd_kind { CMD_CREATE, CMD_CLOSE } cmd_kind;

typedef struct cmd {
    cmd_kind kind;
    semd_host_created_fn created; /* async: nobody waits; the engine thread reports and frees */
    void *created_ctx;
    int async;
    semd_canvas_params params;
    int ring_slots;
    uint64_t canvas_id;
    char *ring_path;
    int rc, done;
    char error[512];
    struct cmd *next;
} cmd;

struct semd_host {
    const semd_sd_models *m;
    char *runtime_dir;
    uint64_t instance_id, next_id;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int stopping;
    hcanvas *canvases;
    cmd *cmds;
    semd_host_frame_fn on_frame;
    void *on_frame_ctx;
    semd_host_error_fn on_error; /* guarded */
    void *on_error_ctx;
    uint64_t progress; /* loop passes, read by the watchdog (atomic) */
    int idle;          /* waiting for work (atomic) */
    uint64_t rr_after; /* guarded: the last canvas of the previous round; the next one starts after it */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- edit sets ---- */

static char *dup_opt(const char *s) { return s ? strdup(s) : NULL; }

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *q = p ? malloc(n) : NULL;
    if (q) memcpy(q, p, n);
    return q;
}

static void free_edit(semd_host_edit *e)
{
    free((char *)e->layer.prompt), free((char *)e->layer.negative), free((uint8_t *)e->layer.mask);
    free((char *)e->bg_prompt), free((char *)e->bg_negative), free((uint8_t *)e->bg_rgb);
}

static void free_set(edit_set *s)
{
    while (s) {
        edit_set *next = s->next;
        for (int i = 0; i < s->n; i++) free_edit(&s->edits[i]);
        free(s->edits), free(s);
        s = next;
    }
}

static edit_set *copy_set(const semd_host_edit *edits, int n, int width, int height)
{
    edit_set *s = calloc(1, sizeof *s);
    if (!s || !(s->edits = calloc((size_t)(n ? n : 1), sizeof *s->edits))) {
        free(s);
        return NULL;
    }
    s->n = n;
    const size_t px = (size_t)width * height;
    for (int i = 0; i < n; i++) {
        semd_host_edit *d = &s->edits[i];
        *d = edits[i];
        d->layer.prompt = dup_opt(edits[i].layer.prompt);
        d->layer.negative = dup_opt(edits[i].layer.negative);
        d->layer.mask = dup_bytes(edits[i].layer.mask, px);
        d->bg_prompt = dup_opt(edits[i].bg_prompt);
        d->bg_negative = dup_opt(edits[i].bg_negative);
        d->bg_rgb = dup_bytes(edits[i].bg_rgb, px * 3);
        d->params.suffix = NULL; /* never read by SET_PARAMS: keep no pointer into the caller's memory */
    }
    return s;
}

static int apply_edit(hcanvas *hc, const semd_host_edit *e)
{
    int id;
    switch (e->kind) {
    case SEMD_HOST_SET_LAYER:
        return e->layer_id < 0 ? semd_canvas_add_layer(hc->c, &e->layer, &id)
                               : semd_canvas_update_layer(hc->c, e->layer_id, &e->layer, e->fields);
    case SEMD_HOST_REMOVE_LAYER: return semd_canvas_remove_layer(hc->c, e->layer_id);
    case SEMD_HOST_SET_BACKGROUND: return semd_canvas_set_background(hc->c, e->bg_prompt, e->bg_negative, e->bg_rgb);
    case SEMD_HOST_SET_SEED: return semd_canvas_set_seed(hc->c, e->seed);
    case SEMD_HOST_RESET_LATENT: return semd_canvas_reset_latent(hc->c);
    case SEMD_HOST_SET_PARAMS: return semd_canvas_set_params(hc->c, &e->params, e->fields);
    }
    return semd_error(SEMD_EINVAL, "unknown edit kind %d", (int)e->kind);
}

/* Engine thread: keep the failure for semd_host_canvas_error and tell the host's user. */
static void report(semd_host *h, hcanvas *hc, semd_host_error_kind kind, int code, uint64_t input_seq,
                   const char *what, const char *why)
{
    pthread_mutex_lock(&h->mu);
    snprintf(hc->error, sizeof hc->error, "%s: %s", what, why);
    semd_host_error_fn fn = h->on_error;
    void *ctx = h->on_error_ctx;
    pthread_mutex_unlock(&h->mu);
    if (fn) fn(ctx, hc->id, kind, code, input_seq, hc->error);
}

/*
 * A refused edit was checked before it changed anything (a bad value, an
 * unknown layer); any other failure (out of memory, a backend error) may have
 * stopped an edit half-way, and a canvas in that state is not stepped again.
 */
static int edit_failure_is_harmless(int rc)
{
    return rc == SEMD_EINVAL || rc == SEMD_ENOTFOUND || rc == SEMD_ESHAPE || rc == SEMD_EUNSUPPORTED;
}

/*
 * Engine thread, at the canvas's frame boundary: every commit received since
 * the last frame. Returns 0 when the canvas is lost (an edit failed half-way).
 */
static int apply_mail(semd_host *h, hcanvas *hc, edit_set *mail)
{
    int alive = 1;
    for (edit_set *s = mail; s && alive; s = s->next) {
        for (int i = 0; i < s->n && alive; i++) {
            const int rc = apply_edit(hc, &s->edits[i]);
            if (!rc) continue;
            char what[64];
            snprintf(what, sizeof what, "commit %llu, edit %d", (unsigned long long)s->input_seq, i);
            alive = edit_failure_is_harmless(rc);
            report(h, hc, alive ? SEMD_HOST_EDIT_REFUSED : SEMD_HOST_CANVAS_LOST, rc, s->input_seq, what,
                   semd_last_error());
        }
        hc->applied_seq = s->input_seq;
        hc->applied_commit_ms = s->committed_ms;
    }
    free_set(mail);
    return alive;
}

/* ---- frames ---- */

/* float [3][H][W] in [0,1] -> RGBA8 rows, truncating (semanticdraw.md S9). */
static void to_rgba(const float *img, int w, int h, uint8_t *px)
{
    const size_t plane = (size_t)w * h;
    for (size_t i = 0; i < plane; i++) {
        for (int c = 0; c < 3; c++) {
            float v = img[c * plane + i];
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            px[i * 4 + c] = (uint8_t)(v * 255.0f);
        }
        px[i * 4 + 3] = 255;
    }
}

static void publish(semd_host *h, hcanvas *hc, const semd_frame *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const uint64_t seq = ++hc->frame_seq, t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    to_rgba(f->image, hc->width, hc->height, semd_ring_begin(hc->ring, seq));
    semd_ring_commit(hc->ring, seq, hc->applied_seq, t, f->warmup ? SEMDRAW_RING_FLAG_WARMUP : 0);
    if (h->on_frame) h->on_frame(h->on_frame_ctx, hc->id, seq, hc->applied_seq, t);
}

/* ---- commands (run on the engine thread) ---- */

static void destroy_canvas(hcanvas *hc);

static void run_create(semd_host *h, cmd *c)
{
    hcanvas *hc = calloc(1, sizeof *hc);
    c->rc = hc ? semd_canvas_new(h->m, &c->params, &hc->c) : semd_error(SEMD_ENOMEM, "out of memory");
    if (!c->rc) {
        pthread_mutex_lock(&h->mu);
        hc->id = ++h->next_id;
        pthread_mutex_unlock(&h->mu);
        hc->width = c->params.width, hc->height = c->params.height, hc->n_slots = c->params.n_timesteps;
        c->rc = semd_ring_create(h->runtime_dir, h->instance_id, hc->id, 1, hc->width, hc->height,
                                 c->ring_slots, &hc->ring);
    }
    if (c->rc) {
        snprintf(c->error, sizeof c->error, "%s", semd_last_error());
        if (hc) semd_canvas_free(hc->c);
        free(hc);
        return;
    }
    if (!(c->ring_path = strdup(semd_ring_path(hc->ring)))) {
        c->rc = semd_error(SEMD_ENOMEM, "out of memory");
        snprintf(c->error, sizeof c->error, "%s", semd_last_error());
        destroy_canvas(hc);
        return;
    }
    c->canvas_id = hc->id;
    pthread_mutex_lock(&h->mu);
    hc->memory = semd_canvas_memory(hc->c);
    hc->next = h->canvases, h->canvases = hc;
    pthread_mutex_unlock(&h->mu);
}

static void destroy_canvas(hcanvas *hc)
{
    semd_ring_retire(hc->ring);
    semd_canvas_free(hc->c);
    free_set(hc->mail_head);
    free(hc);
}

static void run_close(semd_host *h, cmd *c)
{
    pthread_mutex_lock(&h->mu);
    hcanvas **p = &h->canvases;
    while (*p && (*p)->id != c->canvas_id) p = &(*p)->next;
    hcanvas *hc = *p;
    if (hc) *p = hc->next;
    pthread_mutex_unlock(&h->mu);
    if (!hc) {
        c->rc = SEMD_ENOTFOUND;
        snprintf(c->error, sizeof c->error, "no canvas %llu", (unsigned long long)c->canvas_id);
        return;
    }
    destroy_canvas(hc);
}

/* ---- the loop ---- */

#define MAX_DUE 64

/* Due now: streaming with its frame time reached, or a snapshot still owing frames. */
static int is_due(const hcanvas *hc, double now, double *wait_ms)
{
    if (!hc->streaming) return hc->snapshot_left > 0;
    if (hc->next_due_ms > now) {
        if (hc->next_due_ms - now < *wait_ms) *wait_ms = hc->next_due_ms - now;
        return 0;
    }
    return 1;
}

/*
 * Under the mutex: the canvases whose next frame is due, with their mail
 * taken, at most MAX_DUE per round. The scan starts after the last canvas of
 * the previous round and wraps, so with more canvases due than a round takes
 * every one gets its turn (round robin) instead of the list's head every time.
 */
static int collect_due(semd_host *h, double now, hcanvas **due, edit_set **mail, double *wait_ms)
{
    *wait_ms = 1000.0; /* heartbeat at least once a second */
    hcanvas *start = h->canvases;
    for (hcanvas *hc = h->canvases; hc; hc = hc->next)
        if (hc->id == h->rr_after) start = hc->next ? hc->next : h->canvases;
    int n = 0;
    for (hcanvas *hc = start; hc && n < MAX_DUE;) {
        if (is_due(hc, now, wait_ms)) {
            mail[n] = hc->mail_head;
            hc->mail_head = hc->mail_tail = NULL;
            hc->pending = 0;
            if (!hc->streaming) hc->snapshot_left--;
            due[n++] = hc;
            h->rr_after = hc->id;
        }
        hc = hc->next ? hc->next : h->canvases;
        if (hc == start) break;
    }
    return n;
}

/* Under the mutex, after a round: the canvas's smoothed rate and its latest commit latency. */
static void note_frame(hcanvas *hc, double now)
{
    if (hc->last_frame_ms > 0.0 && now > hc->last_frame_ms) {
        const double rate = 1000.0 / (now - hc->last_frame_ms);
        hc->fps = hc->fps > 0.0 ? 0.8 * hc->fps + 0.2 * rate : rate;
    }
    hc->last_frame_ms = now;
    hc->shown_frames = hc->frame_seq, hc->shown_input_seq = hc->applied_seq;
    if (hc->applied_commit_ms > 0.0) {
        hc->latency_ms = now - hc->applied_commit_ms;
        hc->applied_commit_ms = 0.0;
    }
}

/* Engine thread: a canvas lost to a failed edit leaves the host at once (the user was told). */
static void drop_lost(semd_host *h, hcanvas *hc)
{
    pthread_mutex_lock(&h->mu);
    hcanvas **p = &h->canvases;
    while (*p && *p != hc) p = &(*p)->next;
    if (*p) *p = hc->next;
    pthread_mutex_unlock(&h->mu);
    destroy_canvas(hc);
}

/*
 * The round's frames in one step; when that fails and several canvases were
 * in it, each again alone (a step fails as a whole and changes nothing), so
 * that one canvas that cannot get its frame (too big for the memory left, say)
 * costs the others nothing. ok[i]: canvas i got its frame.
 */
static void step_round(semd_host *h, hcanvas **go, int n, semd_frame *frames, int *ok)
{
    semd_canvas *cs[MAX_DUE];
    for (int i = 0; i < n; i++) cs[i] = go[i]->c;
    const int rc = n ? semd_canvas_step(cs, n, 1, frames) : SEMD_OK;
    for (int i = 0; i < n; i++) ok[i] = rc == SEMD_OK;
    for (int i = 0; rc && i < n; i++) {
        const int one = n > 1 ? semd_canvas_step(&cs[i], 1, 1, &frames[i]) : rc;
        ok[i] = one == SEMD_OK;
        if (!ok[i]) { /* no more frames until the client asks again: retrying every frame helps nobody */
            pthread_mutex_lock(&h->mu);
            go[i]->streaming = 0, go[i]->snapshot_left = 0;
            pthread_mutex_unlock(&h->mu);
            report(h, go[i], SEMD_HOST_FRAME_FAILED, one, go[i]->applied_seq, "frame", semd_last_error());
        }
    }
}

static void run_round(semd_host *h, hcanvas **due, edit_set **mail, int n)
{
    hcanvas *go[MAX_DUE];
    semd_frame frames[MAX_DUE];
    int ok[MAX_DUE], live = 0;
    for (int i = 0; i < n; i++) {
        if (apply_mail(h, due[i], mail[i])) go[live++] = due[i];
        else drop_lost(h, due[i]);
    }
    step_round(h, go, live, frames, ok);
    for (int i = 0; i < live; i++)
        if (ok[i]) publish(h, go[i], &frames[i]);
    const double now = now_ms();
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < live; i++) {
        hcanvas *hc = go[i];
        if (ok[i]) note_frame(hc, now);
        if (!hc->closing) hc->memory = semd_canvas_memory(hc->c);
        /* the first frame after a start pays one-time setup: pace from its end, not its start */
        if (hc->fresh) hc->next_due_ms = now, hc->fresh = 0;
        hc->next_due_ms += hc->interval_ms;
        if (hc->next_due_ms < now) hc->next_due_ms = now; /* never bank missed frames */
    }
    pthread_mutex_unlock(&h->mu);
}

/* An async command ran (or never will: rc says why): report a create, free the command. */
static void finish_async(cmd *c, int rc)
{
    if (c->created) c->created(c->created_ctx, rc, c->canvas_id, c->ring_path, rc ? c->error : "");
    free(c->ring_path);
    free(c);
}

static void *engine_main(void *arg)
{
    semd_host *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        cmd *c = h->cmds;
        if (c) { /* commands first, off the lock so that commits can still come in */
            h->cmds = c->next;
            pthread_mutex_unlock(&h->mu);
            if (c->kind == CMD_CREATE) run_create(h, c);
            else run_close(h, c);
            if (c->async) {
                finish_async(c, c->rc);
                pthread_mutex_lock(&h->mu);
                continue;
            }
            pthread_mutex_lock(&h->mu);
            c->done = 1;
            pthread_cond_broadcast(&h->done);
            continue;
        }
        __atomic_add_fetch(&h->progress, 1, __ATOMIC_RELAXED);
        hcanvas *due[MAX_DUE];
        edit_set *mail[MAX_DUE];
        double wait_ms;
        const int n = collect_due(h, now_ms(), due, mail, &wait_ms);
        for (hcanvas *hc = h->canvases; hc; hc = hc->next) semd_ring_heartbeat(hc->ring);
        if (!n) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            long ns = until.tv_nsec + (long)(wait_ms * 1e6);
            until.tv_sec += ns / 1000000000L, until.tv_nsec = ns % 1000000000L;
            __atomic_store_n(&h->idle, 1, __ATOMIC_RELAXED);
            pthread_cond_timedwait(&h->wake, &h->mu, &until);
            __atomic_store_n(&h->idle, 0, __ATOMIC_RELAXED);
            continue;
        }
        pthread_mutex_unlock(&h->mu);
        run_round(h, due, mail, n);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- the API (any thread) ---- */

int semd_host_start(const semd_sd_models *models, const char *runtime_dir, uint64_t instance_id,
                    semd_host_frame_fn on_frame, void *ctx, semd_host **out)
{
    *out = NULL;
    semd_host *h = calloc(1, sizeof *h);
    if (!h || !(h->runtime_dir = strdup(runtime_dir))) {
        free(h);
        return semd_error(SEMD_ENOMEM, "out of memory");
    }
    h->m = models, h->instance_id = instance_id;
    h->on_frame = on_frame, h->on_frame_ctx = ctx;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->wake, NULL);
    pthread_cond_init(&h->done, NULL);
    if (pthread_create(&h->thread, NULL, engine_main, h) != 0) {
        free(h->runtime_dir), free(h);
        return semd_error(SEMD_EBACKEND, "cannot start the engine thread");
    }
    *out = h;
    return SEMD_OK;
}

void semd_host_stop(semd_host *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    while (h->cmds) { /* queued and never run: async ones are still owed an answer */
        cmd *c = h->cmds;
        h->cmds = c->next;
        snprintf(c->error, sizeof c->error, "the engine is stopping");
        if (c->async) finish_async(c, SEMD_EBACKEND);
    }
    while (h->canvases) {
        hcanvas *next = h->canvases->next;
        destroy_canvas(h->canvases);
        h->canvases = next;
    }
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->wake);
    pthread_cond_destroy(&h->done);
    free(h->runtime_dir);
    free(h);
}

/* Queue a command for the engine thread and wait until it has run. */
static int run_command(semd_host *h, cmd *c)
{
    pthread_mutex_lock(&h->mu);
    cmd **tail = &h->cmds;
    while (*tail) tail = &(*tail)->next;
    *tail = c;
    pthread_cond_broadcast(&h->wake);
    while (!c->done && !h->stopping) pthread_cond_wait(&h->done, &h->mu);
    pthread_mutex_unlock(&h->mu);
    if (!c->done) return semd_error(SEMD_EBACKEND, "the engine is stopping");
    return c->rc ? semd_error(c->rc, "%s", c->error) : SEMD_OK;
}

int semd_host_create_canvas(semd_host *h, const semd_canvas_params *p, int ring_slots,
                            uint64_t *canvas_id, char **ring_path)
{
    cmd c = {.kind = CMD_CREATE, .params = *p, .ring_slots = ring_slots};
    int rc = run_command(h, &c);
    *canvas_id = c.canvas_id;
    *ring_path = c.ring_path;
    return rc;
}

int semd_host_close_canvas(semd_host *h, uint64_t canvas_id)
{
    cmd c = {.kind = CMD_CLOSE, .canvas_id = canvas_id};
    return run_command(h, &c);
}

static hcanvas *find(semd_host *h, uint64_t id);

/* Queue an async command; the engine thread owns it from here. */
static int queue_async(semd_host *h, cmd *c)
{
    c->async = 1;
    pthread_mutex_lock(&h->mu);
    cmd **tail = &h->cmds;
    while (*tail) tail = &(*tail)->next;
    *tail = c;
    if (c->kind == CMD_CLOSE) { /* no more frames for it, even from a round that starts before the close runs */
        hcanvas *hc = find(h, c->canvas_id);
        if (hc) hc->streaming = 0, hc->snapshot_left = 0, hc->closing = 1;
    }
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->mu);
    return SEMD_OK;
}

int semd_host_create_canvas_async(semd_host *h, const semd_canvas_params *p, int ring_slots,
                                  semd_host_created_fn done, void *ctx)
{
    cmd *c = calloc(1, sizeof *c);
    if (!c) return semd_error(SEMD_ENOMEM, "out of memory");
    *c = (cmd){.kind = CMD_CREATE, .params = *p, .ring_slots = ring_slots, .created = done, .created_ctx = ctx};
    c->params.suffix = NULL; /* the caller's string may not outlive the call */
    return queue_async(h, c);
}

int semd_host_close_canvas_async(semd_host *h, uint64_t canvas_id)
{
    cmd *c = calloc(1, sizeof *c);
    if (!c) return semd_error(SEMD_ENOMEM, "out of memory");
    *c = (cmd){.kind = CMD_CLOSE, .canvas_id = canvas_id};
    return queue_async(h, c);
}

static hcanvas *find(semd_host *h, uint64_t id)
{
    for (hcanvas *hc = h->canvases; hc; hc = hc->next)
        if (hc->id == id) return hc;
    return NULL;
}

int semd_host_commit(semd_host *h, uint64_t canvas_id, const semd_host_edit *edits, int n,
                     uint64_t *input_seq)
{
    pthread_mutex_lock(&h->mu);
    hcanvas *hc = find(h, canvas_id);
    if (hc && hc->pending >= SEMD_HOST_MAX_PENDING) { /* backpressure: the mailbox stays bounded */
        pthread_mutex_unlock(&h->mu);
        return semd_error(SEMDRAW_WIRE_EBUSY, "canvas %llu: %d commits are waiting for its next frame; "
                          "commit again after a frame", (unsigned long long)canvas_id, SEMD_HOST_MAX_PENDING);
    }
    edit_set *s = hc ? copy_set(edits, n, hc->width, hc->height) : NULL;
    int rc = !hc ? semd_error(SEMD_ENOTFOUND, "no canvas %llu", (unsigned long long)canvas_id)
             : !s ? semd_error(SEMD_ENOMEM, "out of memory") : SEMD_OK;
    if (!rc) {
        s->input_seq = *input_seq = ++hc->committed_seq;
        s->committed_ms = now_ms();
        hc->pending++;
        if (hc->mail_tail) hc->mail_tail->next = s;
        else hc->mail_head = s;
        hc->mail_tail = s;
        pthread_cond_broadcast(&h->wake);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int semd_host_start_stream(semd_host *h, uint64_t canvas_id, float target_fps)
{
    if (!(target_fps >= 0.0f && target_fps <= 1000.0f))
        return semd_error(SEMD_EINVAL, "target_fps %g outside [0, 1000]", target_fps);
    pthread_mutex_lock(&h->mu);
    hcanvas *hc = find(h, canvas_id);
    if (hc) {
        hc->streaming = 1;
        hc->interval_ms = target_fps > 0.0f ? 1000.0 / target_fps : 0.0;
        hc->next_due_ms = now_ms();
        hc->fresh = 1;
        pthread_cond_broadcast(&h->wake);
    }
    pthread_mutex_unlock(&h->mu);
    return hc ? SEMD_OK : semd_error(SEMD_ENOTFOUND, "no canvas %llu", (unsigned long long)canvas_id);
}

int semd_host_snapshot(semd_host *h, uint64_t canvas_id, int *frames)
{
    pthread_mutex_lock(&h->mu);
    hcanvas *hc = find(h, canvas_id);
    if (hc) {
        *frames = hc->n_slots;
        if (!hc->streaming) hc->snapshot_left = hc->n_slots; /* a second request restarts the count */
        pthread_cond_broadcast(&h->wake);
    }
    pthread_mutex_unlock(&h->mu);
    return hc ? SEMD_OK : semd_error(SEMD_ENOTFOUND, "no canvas %llu", (unsigned long long)canvas_id);
}

int semd_host_stop_stream(semd_host *h, uint64_t canvas_id)
{
    pthread_mutex_lock(&h->mu);
    hcanvas *hc = find(h, canvas_id);
    if (hc) hc->streaming = 0;
    pthread_mutex_unlock(&h->mu);
    return hc ? SEMD_OK : semd_error(SEMD_ENOTFOUND, "no canvas %llu", (unsigned long long)canvas_id);
}

uint64_t semd_host_memory(semd_host *h)
{
    uint64_t total = 0;
    pthread_mutex_lock(&h->mu);
    for (hcanvas *hc = h->canvases; hc; hc = hc->next)
        if (!hc->closing) total += hc->memory; /* one being closed is as good as gone */
    pthread_mutex_unlock(&h->mu);
    return total;
}

void semd_host_set_error_fn(semd_host *h, semd_host_error_fn fn, void *ctx)
{
    pthread_mutex_lock(&h->mu);
    h->on_error = fn, h->on_error_ctx = ctx;
    pthread_mutex_unlock(&h->mu);
}

int semd_host_canvas_error(semd_host *h, uint64_t canvas_id, char *buf, size_t cap)
{
    pthread_mutex_lock(&h->mu);
    hcanvas *hc = find(h, canvas_id);
    if (hc) snprintf(buf, cap, "%s", hc->error);
    pthread_mutex_unlock(&h->mu);
    return hc ? SEMD_OK : semd_error(SEMD_ENOTFOUND, "no canvas %llu", (unsigned long long)canvas_id);
}

int semd_host_get_stats(semd_host *h, uint64_t canvas_id, semd_host_canvas_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->mu);
    hcanvas *hc = find(h, canvas_id);
    if (hc) {
        out->streaming = hc->streaming;
        out->memory_bytes = hc->memory;
        out->target_fps = hc->interval_ms > 0.0 ? (float)(1000.0 / hc->interval_ms) : 0.0f;
        out->fps = (float)hc->fps, out->latency_ms = (float)hc->latency_ms;
        out->pending_commits = hc->pending;
        out->frames = hc->shown_frames, out->input_seq = hc->shown_input_seq;
    }
    pthread_mutex_unlock(&h->mu);
    return hc ? SEMD_OK : semd_error(SEMD_ENOTFOUND, "no canvas %llu", (unsigned long long)canvas_id);
}

uint64_t semd_host_progress(semd_host *h, int *idle)
{
    *idle = __atomic_load_n(&h->idle, __ATOMIC_RELAXED);
    return __atomic_load_n(&h->progress, __ATOMIC_RELAXED);
}
