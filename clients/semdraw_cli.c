/*
 * semdraw: the command-line client of semdrawd.
 *
 *   semdraw [--runtime-dir DIR] status
 *   semdraw [--runtime-dir DIR] run SCENE.json --frames N --out DIR
 *
 * `run` creates a canvas from a scene file (docs/scene-format.md), applies its
 * edit timeline as frames arrive, streams N frames into DIR/frame_NNNN.png and
 * prints one line per frame: its sequence number, the commit it reflects and
 * its latency (render to receipt).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "semdraw/ring_reader.h"
#include "semd/scene.h"
#include "semdraw/v1/control.pb-c.h"

typedef Semdraw__V1__Envelope Envelope;

typedef struct conn {
    void *ctx, *sock;
    uint64_t next_request;
} conn;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("semdraw: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int connect_daemon(conn *c, const char *dir)
{
    char ep[4200];
    snprintf(ep, sizeof ep, "ipc://%s/control.sock", dir);
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    char path[4200];
    snprintf(path, sizeof path, "%s/control.sock", dir);
    if (access(path, F_OK) != 0) return fail("no daemon at %s", path);
    return zmq_connect(c->sock, ep) == 0 ? 0 : fail("%s: %s", ep, zmq_strerror(zmq_errno()));
}

static void disconnect(conn *c)
{
    if (c->sock) zmq_close(c->sock);
    if (c->ctx) zmq_ctx_term(c->ctx);
}

/* Send a request and wait (bounded) for its reply; an Error reply is printed and NULL returned. */
static Envelope *call(conn *c, Envelope *e)
{
    e->has_request_id = 1, e->request_id = ++c->next_request;
    size_t n = semdraw__v1__envelope__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    semdraw__v1__envelope__pack(e, buf);
    int sent = zmq_send(c->sock, buf, n, 0);
    free(buf);
    zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
    if (sent < 0 || zmq_poll(&item, 1, 60000) != 1) {
        fail("the daemon did not answer");
        return NULL;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, c->sock, 0);
    Envelope *r = semdraw__v1__envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (r && r->body_case == SEMDRAW__V1__ENVELOPE__BODY_ERROR) {
        fail("daemon: %s", r->error->message ? r->error->message : "error");
        semdraw__v1__envelope__free_unpacked(r, NULL);
        return NULL;
    }
    if (!r || r->body_case != SEMDRAW__V1__ENVELOPE__BODY_REPLY) {
        fail("unexpected answer from the daemon");
        if (r) semdraw__v1__envelope__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

/* A request whose reply carries nothing we need. */
static int call_ok(conn *c, Envelope *e)
{
    Envelope *r = call(c, e);
    if (!r) return 1;
    semdraw__v1__envelope__free_unpacked(r, NULL);
    return 0;
}

/* ---- status ---- */

static int cmd_status(conn *c)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__GetStatus g = SEMDRAW__V1__GET_STATUS__INIT;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_GET_STATUS, e.get_status = &g;
    Envelope *r = call(c, &e);
    if (!r) return 1;
    Semdraw__V1__Status *st = r->reply->status;
    printf("daemon %016llx: model %s, %u clients, %zu canvases, %u commits queued, %.1f MiB on the device\n",
           (unsigned long long)r->instance_id,
           st->model_state == SEMDRAW__V1__MODEL_STATE__MODEL_READY ? "ready" : "loading", st->clients,
           st->n_canvases, st->queue_depth, (double)st->device_memory_bytes / (1024.0 * 1024.0));
    for (size_t i = 0; i < st->n_canvases; i++) {
        const Semdraw__V1__CanvasInfo *ci = st->canvases[i];
        printf("  canvas %llu %ux%u %s, %.1f fps, latency %.1f ms, %s\n", (unsigned long long)ci->canvas_id,
               ci->width, ci->height, ci->streaming ? "streaming" : "idle", ci->fps, ci->latency_ms,
               ci->ring_path);
    }
    semdraw__v1__envelope__free_unpacked(r, NULL);
    return 0;
}

/* ---- run: a scene through the daemon ---- */

static int send_layer(conn *c, uint64_t canvas, int id, const semd_scene_layer *l, int w, int h)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetLayer sl = SEMDRAW__V1__SET_LAYER__INIT;
    Semdraw__V1__Mask mask = SEMDRAW__V1__MASK__INIT;
    sl.has_canvas_id = 1, sl.canvas_id = canvas;
    if (id >= 0) sl.has_layer_id = 1, sl.layer_id = (uint32_t)id;
    if (l->fields & SEMD_SCENE_LAYER_PROMPT) sl.prompt = l->prompt;
    if (l->fields & SEMD_SCENE_LAYER_NEGATIVE) sl.negative = l->negative;
    if ((l->fields & SEMD_SCENE_LAYER_MASK_STD) && l->mask_std == l->mask_std) sl.has_mask_std = 1, sl.mask_std = l->mask_std;
    if (l->fields & SEMD_SCENE_LAYER_MASK_STRENGTH) sl.has_mask_strength = 1, sl.mask_strength = l->mask_strength;
    if ((l->fields & SEMD_SCENE_LAYER_PROMPT_STRENGTH) && l->prompt_strength == l->prompt_strength)
        sl.has_prompt_strength = 1, sl.prompt_strength = l->prompt_strength;
    uint8_t *zeros = NULL;
    if (l->fields & SEMD_SCENE_LAYER_MASK) { /* a null mask is an all-zero one */
        zeros = l->mask ? NULL : calloc((size_t)w * h, 1);
        mask.has_width = mask.has_height = 1, mask.width = (uint32_t)w, mask.height = (uint32_t)h;
        mask.has_alpha = 1, mask.alpha.data = l->mask ? l->mask : zeros, mask.alpha.len = (size_t)w * h;
        sl.mask = &mask;
    }
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER, e.set_layer = &sl;
    int rc = call_ok(c, &e);
    free(zeros);
    return rc;
}

static int send_background(conn *c, uint64_t canvas, const semd_scene_background *b, int w, int h)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetBackground sb = SEMDRAW__V1__SET_BACKGROUND__INIT;
    sb.has_canvas_id = 1, sb.canvas_id = canvas;
    if (b->fields & SEMD_BG_PROMPT) sb.prompt = b->prompt;
    if (b->fields & SEMD_BG_NEGATIVE) sb.negative = b->negative;
    if (b->fields & SEMD_BG_IMAGE) sb.has_rgb = 1, sb.rgb.data = b->image, sb.rgb.len = (size_t)w * h * 3;
    if (b->fields & SEMD_BG_COLOR)
        sb.has_color = 1, sb.color = (uint32_t)b->color[0] << 16 | (uint32_t)b->color[1] << 8 | b->color[2];
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_BACKGROUND, e.set_background = &sb;
    return call_ok(c, &e);
}

static int commit(conn *c, uint64_t canvas)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Commit cm = SEMDRAW__V1__COMMIT__INIT;
    cm.has_canvas_id = 1, cm.canvas_id = canvas;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_COMMIT, e.commit = &cm;
    return call_ok(c, &e);
}

static int send_edit(conn *c, uint64_t canvas, const semd_scene *s, const semd_scene_edit *ed)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    switch (ed->kind) {
    case SEMD_EDIT_LAYER: return send_layer(c, canvas, ed->layer, &ed->changes, s->width, s->height);
    case SEMD_EDIT_ADD_LAYER: return send_layer(c, canvas, -1, &ed->changes, s->width, s->height);
    case SEMD_EDIT_BACKGROUND: return send_background(c, canvas, &ed->background, s->width, s->height);
    case SEMD_EDIT_REMOVE: {
        Semdraw__V1__RemoveLayer rl = SEMDRAW__V1__REMOVE_LAYER__INIT;
        rl.has_canvas_id = 1, rl.canvas_id = canvas, rl.has_layer_id = 1, rl.layer_id = (uint32_t)ed->layer;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_REMOVE_LAYER, e.remove_layer = &rl;
        return call_ok(c, &e);
    }
    case SEMD_EDIT_SEED: {
        Semdraw__V1__SetCanvasParams sp = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
        sp.has_canvas_id = 1, sp.canvas_id = canvas, sp.has_seed = 1, sp.seed = ed->seed;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_PARAMS, e.set_params = &sp;
        return call_ok(c, &e);
    }
    }
    return fail("unknown edit");
}

static int create_canvas(conn *c, const semd_scene *s, uint64_t *canvas, char **ring)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__CreateCanvas cc = SEMDRAW__V1__CREATE_CANVAS__INIT;
    uint32_t ts[16];
    cc.has_width = cc.has_height = 1, cc.width = (uint32_t)s->width, cc.height = (uint32_t)s->height;
    cc.has_seed = 1, cc.seed = s->seed;
    cc.has_profile = 1, cc.profile = s->profile == SEMD_SCENE_PROFILE_REFERENCE ? SEMDRAW__V1__PROFILE__PROFILE_REFERENCE
                                                                                : SEMDRAW__V1__PROFILE__PROFILE_DEFAULT;
    for (int k = 0; k < s->n_timesteps; k++) ts[k] = (uint32_t)s->timesteps[k];
    cc.timesteps = ts, cc.n_timesteps = (size_t)s->n_timesteps;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_CREATE_CANVAS, e.create_canvas = &cc;
    Envelope *r = call(c, &e);
    if (!r) return 1;
    *canvas = r->reply->canvas->canvas_id;
    *ring = strdup(r->reply->canvas->ring_path);
    semdraw__v1__envelope__free_unpacked(r, NULL);
    return 0;
}

static int write_png(const char *path, const uint8_t *rgba, int w, int h)
{
    FILE *f = fopen(path, "wb");
    if (!f) return fail("%s: %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return fail("%s: cannot write", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgba + (size_t)y * w * 4));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : fail("%s: %s", path, strerror(errno));
}

/* Frames as they come; the timeline's edits are committed before the frame they are timed for. */
static int stream_frames(conn *c, const semd_scene *s, uint64_t canvas, semdraw_ring_reader *rd, int frames,
                         const char *out)
{
    const size_t bytes = (size_t)s->width * s->height * 4;
    uint8_t *buf = malloc(bytes);
    uint64_t last = 0;
    int next = 0, rc = buf ? 0 : fail("out of memory");
    for (int f = 0; !rc && f < frames; f++) {
        int edited = 0;
        for (; !rc && next < s->n_edits && s->edits[next].frame <= f; next++, edited = 1)
            rc = send_edit(c, canvas, s, &s->edits[next]);
        if (!rc && edited) rc = commit(c, canvas);
        semdraw_ring_frame fr = {0};
        int got = 0;
        for (int i = 0; !rc && !got && i < 60000; i++) { /* up to 10 minutes for a slow CPU frame */
            got = semdraw_ring_copy_latest(rd, buf, bytes, &fr) == SEMDRAW_RING_OK && fr.seq > last;
            if (!got) usleep(10000);
        }
        if (!rc && !got) rc = fail("no frame from the daemon");
        if (rc) break;
        last = fr.seq;
        char path[4200];
        snprintf(path, sizeof path, "%s/frame_%04d.png", out, f);
        rc = write_png(path, buf, s->width, s->height);
        printf("frame %d seq %llu input %llu latency %.1f ms%s\n", f, (unsigned long long)fr.seq,
               (unsigned long long)fr.input_seq, (now_ns() - fr.t_render_ns) / 1e6,
               (fr.flags & 1u) ? " warm-up" : "");
        fflush(stdout);
    }
    free(buf);
    return rc;
}

static int cmd_run(conn *c, const char *scene_path, int frames, const char *out)
{
    semd_scene *s = NULL;
    if (semd_scene_load(scene_path, &s) || semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM)) {
        semd_scene_free(s);
        return fail("%s: cannot load the scene", scene_path);
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) return fail("%s: %s", out, strerror(errno));
    uint64_t canvas = 0;
    char *ring = NULL;
    semdraw_ring_reader *rd = NULL;
    int rc = create_canvas(c, s, &canvas, &ring);
    if (!rc && s->background.fields) rc = send_background(c, canvas, &s->background, s->width, s->height);
    for (int i = 0; !rc && i < s->n_layers; i++) rc = send_layer(c, canvas, -1, &s->layers[i], s->width, s->height);
    if (!rc) rc = commit(c, canvas);
    if (!rc) {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__StartStream st = SEMDRAW__V1__START_STREAM__INIT;
        st.has_canvas_id = 1, st.canvas_id = canvas;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_START_STREAM, e.start_stream = &st;
        rc = call_ok(c, &e);
    }
    if (!rc && semdraw_ring_open(ring, &rd) != SEMDRAW_RING_OK) rc = fail("%s: cannot open the ring", ring);
    if (!rc) rc = stream_frames(c, s, canvas, rd, frames, out);
    if (canvas) {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__CloseCanvas cl = SEMDRAW__V1__CLOSE_CANVAS__INIT;
        cl.has_canvas_id = 1, cl.canvas_id = canvas;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_CLOSE_CANVAS, e.close_canvas = &cl;
        call_ok(c, &e);
    }
    semdraw_ring_close(rd);
    free(ring);
    semd_scene_free(s);
    return rc;
}

static int usage(void)
{
    fputs("usage: semdraw [--runtime-dir DIR] status\n"
          "       semdraw [--runtime-dir DIR] run SCENE.json --frames N --out DIR\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *env = getenv("SEMDRAW_RUNTIME_DIR"), *dir = env && *env ? env : "/run/semdraw";
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--runtime-dir") == 0) dir = argv[i + 1], i += 2;
    if (i >= argc) return usage();
    conn c = {0};
    int rc;
    if (strcmp(argv[i], "status") == 0 && i + 1 == argc) {
        rc = connect_daemon(&c, dir) || cmd_status(&c);
    } else if (strcmp(argv[i], "run") == 0 && i + 6 == argc && strcmp(argv[i + 2], "--frames") == 0 &&
               strcmp(argv[i + 4], "--out") == 0) {
        const int frames = atoi(argv[i + 3]);
        if (frames < 1) return usage();
        rc = connect_daemon(&c, dir) || cmd_run(&c, argv[i + 1], frames, argv[i + 5]);
    } else {
        return usage();
    }
    disconnect(&c);
    return rc ? 1 : 0;
}
