/*
 * semdraw: the command-line client of semdrawd, built on libsemdraw.
 *
 * Canvases made with `canvas create` are detached: they outlive the command
 * and stay until `canvas close` (or the daemon stops). Their edit key is kept
 * in a file readable only by the user ($XDG_RUNTIME_DIR/semdraw-cli, else
 * /tmp/semdraw-cli-UID), so that later commands of the same user may edit them.
 * Every edit command commits, so its change reaches the next frame.
 *
 * Exit status: 0 success; 1 the daemon refused or failed (the message names
 * the problem); 2 bad usage; 3 no daemon answers; 4 timed out waiting for a
 * frame or the model.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "png_io.h"
#include "scene_canvas.h"
#include "semd/scene.h"
#include "semdraw/semdraw.h"

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_NO_DAEMON = 3, EXIT_TIMEOUT = 4 };

static const char *runtime_dir;
static int timeout_s = 60;

static int usage(void)
{
    fputs("usage: semdraw [--runtime-dir DIR] [--timeout S] COMMAND ...\n"
          "  status                                   the daemon, its model and every canvas\n"
          "  wait-ready                               wait until the model is loaded\n"
          "  run SCENE.json --frames N --out DIR      stream a scene with its edit timeline into PNGs\n"
          "  canvas create [--width W] [--height H] [--seed S] [--profile default|reference] [--scene FILE]\n"
          "  canvas attach ID                         check that ID exists and print it\n"
          "  canvas list\n"
          "  canvas close ID\n"
          "  layer set ID [--layer N] [--prompt P] [--negative P] [--mask FILE.png] [--mask-std X]\n"
          "               [--mask-strength X] [--prompt-strength X]   (no --layer: add one)\n"
          "  layer remove ID N\n"
          "  background set ID [--prompt P] [--negative P] [--image FILE.png | --color RRGGBB]\n"
          "  params set ID [--seed S] [--guidance G] [--bootstrap-steps N] [--mask-type continuous|\n"
          "               semi-continuous|discrete] [--cover-alpha A] [--reset-latent]\n"
          "  stream start ID [--fps F]\n"
          "  stream stop ID\n"
          "  snapshot ID -o FILE.png\n"
          "  watch [ID] [--count N] [--interval S]     fps and latency, one line per canvas per interval\n",
          stderr);
    return EXIT_USAGE;
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("semdraw: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* A failed SDK call as an exit status and a message. */
static int sdk_failed(const char *what, int rc)
{
    const int code = rc == SEMDRAW_E_TIMEDOUT ? EXIT_TIMEOUT : EXIT_REFUSED;
    return fail(code, "%s: %s (%s)", what, semdraw_last_error(), semdraw_strerror(rc));
}

static int connect_to(semdraw_client **c, int wait_model)
{
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = runtime_dir, .client_name = "semdraw-cli",
                              .timeout_ms = (uint32_t)timeout_s * 1000};
    int rc = semdraw_connect(&o, c);
    if (rc == SEMDRAW_E_TIMEDOUT) return fail(EXIT_NO_DAEMON, "%s", semdraw_last_error());
    if (rc) return sdk_failed("connect", rc);
    if (wait_model && (rc = semdraw_wait_ready(*c, timeout_s * 1000))) {
        semdraw_disconnect(*c);
        *c = NULL;
        return sdk_failed("waiting for the model", rc);
    }
    return 0;
}

/* ---- the key files of detached canvases ---- */

static int key_path(uint64_t instance, uint64_t id, char *out, size_t cap, int make_dir)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char dir[4096];
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/semdraw-cli", xdg);
    else snprintf(dir, sizeof dir, "/tmp/semdraw-cli-%u", (unsigned)getuid());
    if (make_dir && mkdir(dir, 0700) != 0 && errno != EEXIST) return fail(EXIT_REFUSED, "%s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_uid != getuid() || (st.st_mode & 077)))
        return fail(EXIT_REFUSED, "%s: not a private directory of this user", dir);
    snprintf(out, cap, "%s/%016llx-%llu.key", dir, (unsigned long long)instance, (unsigned long long)id);
    return 0;
}

static int save_key(semdraw_client *c, semdraw_canvas *cv, uint64_t id)
{
    semdraw_client_info ci = {.struct_size = sizeof ci};
    uint8_t key[SEMDRAW_KEY_SIZE];
    char path[4300];
    if (semdraw_client_info_get(c, &ci) || semdraw_canvas_key(cv, key)) return sdk_failed("canvas key", SEMDRAW_E_PERM);
    int rc = key_path(ci.instance_id, id, path, sizeof path, 1);
    if (rc) return rc;
    FILE *f = fopen(path, "wx");
    if (f) fchmod(fileno(f), 0600);
    if (!f || fwrite(key, 1, sizeof key, f) != sizeof key || fclose(f) != 0)
        return fail(EXIT_REFUSED, "%s: cannot save the canvas key: %s", path, strerror(errno));
    return 0;
}

/* Attach as an editor (with the saved key) or, for read-only commands, as a viewer. */
static int open_canvas(semdraw_client *c, const char *arg, int edit, semdraw_canvas **cv)
{
    char *end;
    errno = 0;
    const unsigned long long id = strtoull(arg, &end, 10);
    if (errno || *end || !*arg) return fail(EXIT_USAGE, "'%s' is not a canvas id", arg);
    uint8_t key[SEMDRAW_KEY_SIZE], *k = NULL;
    if (edit) {
        semdraw_client_info ci = {.struct_size = sizeof ci};
        char path[4300];
        semdraw_client_info_get(c, &ci);
        int rc = key_path(ci.instance_id, id, path, sizeof path, 0);
        if (rc) return rc;
        FILE *f = fopen(path, "rb");
        if (!f || fread(key, 1, sizeof key, f) != sizeof key) {
            if (f) fclose(f);
            return fail(EXIT_REFUSED, "canvas %llu: no edit key here (was it made by `semdraw canvas create` of "
                                      "this user, since the daemon started?)", id);
        }
        fclose(f);
        k = key;
    }
    int rc = semdraw_canvas_attach(c, id, k, cv);
    return rc ? sdk_failed("attach", rc) : 0;
}

/* ---- option parsing: --name value pairs after the positional arguments ---- */

typedef struct opt {
    const char *name, *value;
    int flag; /* takes no value */
} opt;

static int parse_opts(int argc, char **argv, int first, opt *opts, int n)
{
    for (int i = first; i < argc; i++) {
        int k = 0;
        while (k < n && strcmp(argv[i], opts[k].name) != 0) k++;
        if (k == n) return fail(EXIT_USAGE, "unknown option '%s'", argv[i]);
        if (opts[k].flag) opts[k].value = "1";
        else if (i + 1 >= argc) return fail(EXIT_USAGE, "%s needs a value", argv[i]);
        else opts[k].value = argv[++i];
    }
    return 0;
}

static int to_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    *out = strtof(s, &end);
    return errno || *end || !*s ? fail(EXIT_USAGE, "'%s' is not a number", s) : 0;
}

static int to_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno || *end || !*s || *s == '-' ? fail(EXIT_USAGE, "'%s' is not a non-negative integer", s) : 0;
}

/* ---- status, list, watch ---- */

static const char *model_name(uint32_t s)
{
    return s == SEMDRAW_MODEL_READY ? "ready" : s == SEMDRAW_MODEL_LOADING ? "loading" : "failed";
}

static int cmd_status(semdraw_client *c, int list_only)
{
    semdraw_status_info st = {.struct_size = sizeof st};
    semdraw_client_info ci = {.struct_size = sizeof ci};
    int rc = semdraw_status_get(c, &st);
    if (rc) return sdk_failed("status", rc);
    semdraw_client_info_get(c, &ci);
    if (!list_only) {
        printf("daemon %016llx: model %s", (unsigned long long)ci.instance_id, model_name(st.model_state));
        if (st.model_state == SEMDRAW_MODEL_LOADING) printf(" (%.0f%%)", 100.0 * st.load_progress);
        printf(", %u clients, %u canvases, %u commits queued, %.1f MiB on the device\n", st.clients, st.n_canvases,
               st.queue_depth, (double)st.device_memory_bytes / (1024.0 * 1024.0));
    }
    for (uint32_t i = 0; i < st.n_canvases; i++) {
        const semdraw_status_canvas *s = &st.canvases[i];
        printf("%scanvas %llu %ux%u seed %llu %s, %.1f fps, latency %.1f ms\n", list_only ? "" : "  ",
               (unsigned long long)s->canvas_id, s->width, s->height, (unsigned long long)s->seed,
               s->streaming ? "streaming" : "idle", s->fps, s->latency_ms);
    }
    semdraw_status_free(&st);
    return 0;
}

static int cmd_watch(semdraw_client *c, int argc, char **argv, int i)
{
    uint64_t only = 0, count = 0;
    float interval = 1.0f;
    if (i < argc && argv[i][0] != '-' && to_u64(argv[i++], &only)) return EXIT_USAGE;
    opt o[] = {{"--count", NULL, 0}, {"--interval", NULL, 0}};
    if (parse_opts(argc, argv, i, o, 2) || (o[0].value && to_u64(o[0].value, &count)) ||
        (o[1].value && to_float(o[1].value, &interval)))
        return EXIT_USAGE;
    if (!(interval >= 0.05f)) return fail(EXIT_USAGE, "--interval must be at least 0.05 s");
    for (uint64_t n = 0; !count || n < count; n++) {
        semdraw_status_info st = {.struct_size = sizeof st};
        int rc = semdraw_status_get(c, &st);
        if (rc) return sdk_failed("watch", rc);
        int shown = 0;
        for (uint32_t k = 0; k < st.n_canvases; k++) {
            const semdraw_status_canvas *s = &st.canvases[k];
            if (only && s->canvas_id != only) continue;
            printf("canvas %llu %s fps %.2f latency %.1f ms\n", (unsigned long long)s->canvas_id,
                   s->streaming ? "streaming" : "idle", s->fps, s->latency_ms);
            shown++;
        }
        semdraw_status_free(&st);
        if (only && !shown) return fail(EXIT_REFUSED, "canvas %llu: no such canvas", (unsigned long long)only);
        fflush(stdout);
        if (!count || n + 1 < count) {
            const double ns = (double)interval * 1e9;
            nanosleep(&(struct timespec){(time_t)(ns / 1e9), (long)((long long)ns % 1000000000LL)}, NULL);
            semdraw_dispatch(c); /* heartbeats */
        }
    }
    return 0;
}

/* ---- canvases ---- */

static int cmd_canvas_create(semdraw_client *c, int argc, char **argv, int i)
{
    opt o[] = {{"--width", NULL, 0}, {"--height", NULL, 0}, {"--seed", NULL, 0}, {"--profile", NULL, 0},
               {"--scene", NULL, 0}};
    if (parse_opts(argc, argv, i, o, 5)) return EXIT_USAGE;
    semd_scene *scene = NULL;
    semdraw_canvas_desc d = {.struct_size = sizeof d, .width = 512, .height = 512};
    if (o[4].value) {
        if (semd_scene_load(o[4].value, &scene) || semd_scene_resolve_defaults(scene, SEMD_SCENE_STREAM)) {
            semd_scene_free(scene);
            return fail(EXIT_REFUSED, "%s: cannot load the scene", o[4].value);
        }
        scene_canvas_desc(scene, 0, &d);
    }
    uint64_t v;
    if (o[0].value && (to_u64(o[0].value, &v) || v > 65535)) return EXIT_USAGE;
    if (o[0].value) d.width = (uint32_t)v;
    if (o[1].value && (to_u64(o[1].value, &v) || v > 65535)) return EXIT_USAGE;
    if (o[1].value) d.height = (uint32_t)v;
    if (o[2].value && to_u64(o[2].value, &d.seed)) return EXIT_USAGE;
    if (o[2].value) d.flags |= SEMDRAW_CANVAS_SEED;
    if (o[3].value && strcmp(o[3].value, "default") && strcmp(o[3].value, "reference"))
        return fail(EXIT_USAGE, "--profile is default or reference");
    if (o[3].value) d.profile = strcmp(o[3].value, "reference") == 0 ? SEMDRAW_PROFILE_REFERENCE : SEMDRAW_PROFILE_DEFAULT;
    d.flags |= SEMDRAW_CANVAS_DETACHED;
    semdraw_canvas *cv = NULL;
    int rc = semdraw_canvas_create(c, &d, &cv);
    if (rc) {
        semd_scene_free(scene);
        return sdk_failed("canvas create", rc);
    }
    if (scene && (rc = scene_canvas_fill(cv, scene)) == 0) rc = semdraw_canvas_commit(cv, NULL);
    semd_scene_free(scene);
    semdraw_canvas_info info = {.struct_size = sizeof info};
    semdraw_canvas_info_get(cv, &info);
    int out = rc ? sdk_failed("canvas create: the scene", rc) : save_key(c, cv, info.canvas_id);
    if (out) semdraw_canvas_close(cv);
    else printf("canvas %llu %ux%u seed %llu\n", (unsigned long long)info.canvas_id, info.width, info.height,
                (unsigned long long)info.seed);
    semdraw_canvas_release(cv);
    return out;
}

static int cmd_canvas_attach(semdraw_client *c, const char *id)
{
    semdraw_canvas *cv;
    int rc = open_canvas(c, id, 0, &cv);
    if (rc) return rc;
    semdraw_canvas_info info = {.struct_size = sizeof info};
    semdraw_canvas_info_get(cv, &info);
    printf("canvas %llu %ux%u seed %llu\n", (unsigned long long)info.canvas_id, info.width, info.height,
           (unsigned long long)info.seed);
    semdraw_canvas_release(cv);
    return 0;
}

static int cmd_canvas_close(semdraw_client *c, const char *id)
{
    semdraw_canvas *cv;
    int rc = open_canvas(c, id, 1, &cv);
    if (rc) return rc;
    rc = semdraw_canvas_close(cv);
    semdraw_canvas_release(cv);
    if (rc) return sdk_failed("canvas close", rc);
    semdraw_client_info ci = {.struct_size = sizeof ci};
    char path[4300];
    semdraw_client_info_get(c, &ci);
    if (key_path(ci.instance_id, strtoull(id, NULL, 10), path, sizeof path, 0) == 0) unlink(path);
    return 0;
}

/* ---- edits: each command attaches, sends, commits ---- */

static int commit_and_release(semdraw_canvas *cv, int rc, const char *what)
{
    uint64_t seq = 0;
    if (!rc) rc = semdraw_canvas_commit(cv, &seq);
    semdraw_canvas_release(cv);
    if (rc) return sdk_failed(what, rc);
    printf("committed input %llu\n", (unsigned long long)seq);
    return 0;
}

static int cmd_layer_set(semdraw_client *c, int argc, char **argv, int i)
{
    if (i >= argc) return usage();
    const char *id = argv[i++];
    opt o[] = {{"--layer", NULL, 0},         {"--prompt", NULL, 0},        {"--negative", NULL, 0},
               {"--mask", NULL, 0},          {"--mask-std", NULL, 0},      {"--mask-strength", NULL, 0},
               {"--prompt-strength", NULL, 0}};
    if (parse_opts(argc, argv, i, o, 7)) return EXIT_USAGE;
    semdraw_layer l = {.struct_size = sizeof l};
    uint64_t layer = 0;
    if (o[0].value && (to_u64(o[0].value, &layer) || layer > UINT32_MAX)) return EXIT_USAGE;
    if (o[1].value) l.fields |= SEMDRAW_LAYER_PROMPT, l.prompt = o[1].value;
    if (o[2].value) l.fields |= SEMDRAW_LAYER_NEGATIVE, l.negative = o[2].value;
    if (o[4].value && to_float(o[4].value, &l.mask_std)) return EXIT_USAGE;
    if (o[5].value && to_float(o[5].value, &l.mask_strength)) return EXIT_USAGE;
    if (o[6].value && to_float(o[6].value, &l.prompt_strength)) return EXIT_USAGE;
    l.fields |= (o[4].value ? SEMDRAW_LAYER_MASK_STD : 0) | (o[5].value ? SEMDRAW_LAYER_MASK_STRENGTH : 0) |
                (o[6].value ? SEMDRAW_LAYER_PROMPT_STRENGTH : 0);
    semdraw_canvas *cv;
    int rc = open_canvas(c, id, 1, &cv);
    if (rc) return rc;
    uint8_t *mask = NULL;
    if (o[3].value) {
        semdraw_canvas_info info = {.struct_size = sizeof info};
        semdraw_canvas_info_get(cv, &info);
        if (semd_png_read_mask(o[3].value, (int)info.width, (int)info.height, &mask)) {
            semdraw_canvas_release(cv);
            return fail(EXIT_REFUSED, "%s: cannot use it as a mask for a %ux%u canvas", o[3].value, info.width,
                        info.height);
        }
        l.fields |= SEMDRAW_LAYER_MASK, l.mask = mask;
    }
    uint32_t added = 0;
    rc = o[0].value ? semdraw_layer_set(cv, (uint32_t)layer, &l) : semdraw_layer_add(cv, &l, &added);
    free(mask);
    if (!rc && !o[0].value) printf("layer %u\n", added);
    return commit_and_release(cv, rc, "layer set");
}

static int cmd_layer_remove(semdraw_client *c, int argc, char **argv, int i)
{
    uint64_t layer;
    if (i + 2 != argc || to_u64(argv[i + 1], &layer) || layer > UINT32_MAX) return usage();
    semdraw_canvas *cv;
    int rc = open_canvas(c, argv[i], 1, &cv);
    if (rc) return rc;
    return commit_and_release(cv, semdraw_layer_remove(cv, (uint32_t)layer), "layer remove");
}

static int cmd_background_set(semdraw_client *c, int argc, char **argv, int i)
{
    if (i >= argc) return usage();
    const char *id = argv[i++];
    opt o[] = {{"--prompt", NULL, 0}, {"--negative", NULL, 0}, {"--image", NULL, 0}, {"--color", NULL, 0}};
    if (parse_opts(argc, argv, i, o, 4)) return EXIT_USAGE;
    if (o[2].value && o[3].value) return fail(EXIT_USAGE, "--image and --color exclude each other");
    uint64_t color = 0;
    if (o[3].value) {
        char *end;
        color = strtoull(o[3].value, &end, 16);
        if (*end || strlen(o[3].value) != 6) return fail(EXIT_USAGE, "--color takes RRGGBB in hex");
    }
    semdraw_canvas *cv;
    int rc = open_canvas(c, id, 1, &cv);
    if (rc) return rc;
    uint8_t *rgb = NULL;
    if (o[2].value) {
        semdraw_canvas_info info = {.struct_size = sizeof info};
        semdraw_canvas_info_get(cv, &info);
        if (semd_png_read_rgb(o[2].value, (int)info.width, (int)info.height, &rgb)) {
            semdraw_canvas_release(cv);
            return fail(EXIT_REFUSED, "%s: cannot use it as the background of a %ux%u canvas", o[2].value,
                        info.width, info.height);
        }
    }
    if (o[0].value || o[1].value || rgb) rc = semdraw_canvas_set_background(cv, o[0].value, o[1].value, rgb, 0);
    if (!rc && o[3].value) rc = semdraw_canvas_set_background_color(cv, (uint32_t)color);
    free(rgb);
    return commit_and_release(cv, rc, "background set");
}

static int cmd_params_set(semdraw_client *c, int argc, char **argv, int i)
{
    if (i >= argc) return usage();
    const char *id = argv[i++];
    opt o[] = {{"--seed", NULL, 0},       {"--guidance", NULL, 0},    {"--bootstrap-steps", NULL, 0},
               {"--mask-type", NULL, 0},  {"--cover-alpha", NULL, 0}, {"--reset-latent", NULL, 1}};
    if (parse_opts(argc, argv, i, o, 6)) return EXIT_USAGE;
    semdraw_canvas_params p = {.struct_size = sizeof p};
    uint64_t v;
    if (o[0].value && to_u64(o[0].value, &p.seed)) return EXIT_USAGE;
    if (o[1].value && to_float(o[1].value, &p.guidance_scale)) return EXIT_USAGE;
    if (o[2].value && (to_u64(o[2].value, &v) || v > 64)) return EXIT_USAGE;
    p.bootstrap_steps = (uint32_t)(o[2].value ? v : 0);
    if (o[3].value) {
        static const char *names[] = {"continuous", "semi-continuous", "discrete"};
        int k = 0;
        while (k < 3 && strcmp(o[3].value, names[k]) != 0) k++;
        if (k == 3) return fail(EXIT_USAGE, "--mask-type is continuous, semi-continuous or discrete");
        p.mask_type = (uint32_t)k;
    }
    if (o[4].value && to_float(o[4].value, &p.cover_alpha)) return EXIT_USAGE;
    p.fields = (o[0].value ? SEMDRAW_PARAM_SEED : 0) | (o[1].value ? SEMDRAW_PARAM_GUIDANCE : 0) |
               (o[2].value ? SEMDRAW_PARAM_BOOTSTRAP_STEPS : 0) | (o[3].value ? SEMDRAW_PARAM_MASK_TYPE : 0) |
               (o[4].value ? SEMDRAW_PARAM_COVER_ALPHA : 0);
    semdraw_canvas *cv;
    int rc = open_canvas(c, id, 1, &cv);
    if (rc) return rc;
    rc = p.fields ? semdraw_canvas_set_params(cv, &p) : 0;
    if (!rc && o[5].value) rc = semdraw_canvas_reset_latent(cv);
    return commit_and_release(cv, rc, "params set");
}

static int cmd_stream(semdraw_client *c, int argc, char **argv, int i, int start)
{
    if (i >= argc) return usage();
    const char *id = argv[i++];
    opt o[] = {{"--fps", NULL, 0}};
    float fps = 0.0f;
    if (parse_opts(argc, argv, i, o, start ? 1 : 0) || (o[0].value && to_float(o[0].value, &fps))) return EXIT_USAGE;
    semdraw_canvas *cv;
    int rc = open_canvas(c, id, 1, &cv);
    if (rc) return rc;
    rc = start ? semdraw_stream_start(cv, fps) : semdraw_stream_stop(cv);
    semdraw_canvas_release(cv);
    return rc ? sdk_failed(start ? "stream start" : "stream stop", rc) : 0;
}

static int save_frame(semdraw_canvas *cv, const char *path, semdraw_frame *f)
{
    semdraw_canvas_info info = {.struct_size = sizeof info};
    semdraw_canvas_info_get(cv, &info);
    const size_t bytes = (size_t)info.width * info.height * 4;
    uint8_t *buf = malloc(bytes);
    if (!buf) return fail(EXIT_REFUSED, "out of memory");
    f->struct_size = sizeof *f;
    int rc = semdraw_frame_copy(cv, buf, bytes, info.width * 4, f);
    if (rc) rc = sdk_failed("frame", rc);
    else {
        char err[512];
        if (png_save(path, buf, (int)info.width, (int)info.height, (int)info.width * 4, 4, err, sizeof err))
            rc = fail(EXIT_REFUSED, "%s", err);
    }
    free(buf);
    return rc;
}

static int cmd_snapshot(semdraw_client *c, int argc, char **argv, int i)
{
    if (i + 3 != argc || strcmp(argv[i + 1], "-o") != 0) return usage();
    semdraw_canvas *cv;
    int rc = open_canvas(c, argv[i], 1, &cv);
    if (rc) return rc;
    semdraw_frame f = {.struct_size = sizeof f};
    rc = semdraw_canvas_snapshot(cv, timeout_s * 1000);
    rc = rc ? sdk_failed("snapshot", rc) : save_frame(cv, argv[i + 2], &f);
    if (!rc) printf("frame %llu input %llu -> %s\n", (unsigned long long)f.seq, (unsigned long long)f.input_seq, argv[i + 2]);
    semdraw_canvas_release(cv);
    return rc;
}

/* ---- run: a scene streamed through the daemon ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Frames as they come; the timeline's edits are committed before the frame they are timed for. */
static int stream_frames(semdraw_canvas *cv, const semd_scene *s, int frames, const char *out)
{
    uint64_t last = 0;
    int next = 0, rc = 0;
    for (int f = 0; !rc && f < frames; f++) {
        int edited = 0, sdk = 0;
        for (; !sdk && next < s->n_edits && s->edits[next].frame <= f; next++, edited = 1)
            sdk = scene_canvas_edit(cv, s, &s->edits[next]);
        if (!sdk && edited) sdk = semdraw_canvas_commit(cv, NULL);
        if (!sdk) sdk = semdraw_frame_wait(cv, last, timeout_s * 1000);
        if (sdk) return sdk_failed("run", sdk);
        char path[4200];
        semdraw_frame fr;
        snprintf(path, sizeof path, "%s/frame_%04d.png", out, f);
        if ((rc = save_frame(cv, path, &fr))) break;
        last = fr.seq;
        printf("frame %d seq %llu input %llu latency %.1f ms%s\n", f, (unsigned long long)fr.seq,
               (unsigned long long)fr.input_seq, (now_ns() - fr.t_render_ns) / 1e6,
               (fr.flags & SEMDRAW_FRAME_WARMUP) ? " warm-up" : "");
        fflush(stdout);
    }
    return rc;
}

static int cmd_run(semdraw_client *c, int argc, char **argv, int i)
{
    if (i + 5 != argc || strcmp(argv[i + 1], "--frames") != 0 || strcmp(argv[i + 3], "--out") != 0) return usage();
    const char *scene_path = argv[i], *out = argv[i + 4];
    const int frames = atoi(argv[i + 2]);
    if (frames < 1) return usage();
    semd_scene *s = NULL;
    if (semd_scene_load(scene_path, &s) || semd_scene_resolve_defaults(s, SEMD_SCENE_STREAM)) {
        semd_scene_free(s);
        return fail(EXIT_REFUSED, "%s: cannot load the scene", scene_path);
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        semd_scene_free(s);
        return fail(EXIT_REFUSED, "%s: %s", out, strerror(errno));
    }
    semdraw_canvas_desc d;
    scene_canvas_desc(s, 0, &d);
    semdraw_canvas *cv = NULL;
    int rc = semdraw_canvas_create(c, &d, &cv);
    if (!rc) rc = scene_canvas_fill(cv, s);
    if (!rc) rc = semdraw_canvas_commit(cv, NULL);
    if (!rc) rc = semdraw_stream_start(cv, 0);
    rc = rc ? sdk_failed("run", rc) : stream_frames(cv, s, frames, out);
    semdraw_canvas_release(cv); /* closes it: it is not detached */
    semd_scene_free(s);
    return rc;
}

/* ---- main ---- */

static int dispatch_command(semdraw_client **c, int argc, char **argv, int i)
{
    const char *cmd = argv[i++], *sub = i < argc ? argv[i] : "";
    const int is_status = strcmp(cmd, "status") == 0 || strcmp(cmd, "wait-ready") == 0;
    int rc = connect_to(c, !is_status);
    if (rc) return rc;
    if (strcmp(cmd, "status") == 0) return i == argc ? cmd_status(*c, 0) : usage();
    if (strcmp(cmd, "wait-ready") == 0) {
        if (i != argc) return usage();
        rc = semdraw_wait_ready(*c, timeout_s * 1000);
        return rc ? sdk_failed("wait-ready", rc) : 0;
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(*c, argc, argv, i);
    if (strcmp(cmd, "watch") == 0) return cmd_watch(*c, argc, argv, i);
    if (strcmp(cmd, "snapshot") == 0) return cmd_snapshot(*c, argc, argv, i);
    i++;
    if (strcmp(cmd, "canvas") == 0) {
        if (strcmp(sub, "create") == 0) return cmd_canvas_create(*c, argc, argv, i);
        if (strcmp(sub, "list") == 0) return i == argc ? cmd_status(*c, 1) : usage();
        if (strcmp(sub, "attach") == 0) return i + 1 == argc ? cmd_canvas_attach(*c, argv[i]) : usage();
        if (strcmp(sub, "close") == 0) return i + 1 == argc ? cmd_canvas_close(*c, argv[i]) : usage();
    } else if (strcmp(cmd, "layer") == 0) {
        if (strcmp(sub, "set") == 0) return cmd_layer_set(*c, argc, argv, i);
        if (strcmp(sub, "remove") == 0) return cmd_layer_remove(*c, argc, argv, i);
    } else if (strcmp(cmd, "background") == 0 && strcmp(sub, "set") == 0) {
        return cmd_background_set(*c, argc, argv, i);
    } else if (strcmp(cmd, "params") == 0 && strcmp(sub, "set") == 0) {
        return cmd_params_set(*c, argc, argv, i);
    } else if (strcmp(cmd, "stream") == 0) {
        if (strcmp(sub, "start") == 0) return cmd_stream(*c, argc, argv, i, 1);
        if (strcmp(sub, "stop") == 0) return cmd_stream(*c, argc, argv, i, 0);
    }
    return usage();
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
        if (strcmp(argv[i], "--runtime-dir") == 0) runtime_dir = argv[i + 1];
        else if (strcmp(argv[i], "--timeout") == 0 && (timeout_s = atoi(argv[i + 1])) > 0) continue;
        else return usage();
    }
    if (i >= argc || strcmp(argv[i], "--help") == 0) return usage();
    semdraw_client *c = NULL;
    const int rc = dispatch_command(&c, argc, argv, i);
    semdraw_disconnect(c);
    return rc;
}
