/*
 * Load and soak: N client processes each stream their own canvas and send
 * edits (a moving mask, a prompt) and commits as fast as the daemon takes
 * them, while this process measures how long Status requests take, the
 * daemon's queue depth and its resident memory.
 *
 *   test_load [--clients N] [--seconds S] [--side PX] [--p99-ms MS] [--runtime-dir DIR]
 *
 * Without --runtime-dir it starts a private daemon (daemon_fixture.h). It
 * fails when Status's 99th percentile exceeds --p99-ms, when the queue grows
 * past what backpressure allows, when a client makes no progress or gets no
 * frame, or (runs of 60 s and more) when the daemon's memory keeps growing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "golden_util.h"
#include "daemon_fixture.h"
#include "semdraw/semdraw.h"

/* The daemon's bound on commits waiting per canvas (SEMD_HOST_MAX_PENDING in engine_host.h). */
#define SEMD_LOAD_MAX_PENDING 32

typedef struct client_result {
    uint64_t edits, commits, busy, frames, errors;
} client_result;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void set_rect(uint8_t *m, int side, int x0, int w)
{
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) m[y * side + x] = (x >= x0 && x < x0 + w) ? 255 : 0;
}

/* One client: its own canvas, streaming, edited and committed as fast as the daemon takes it. */
static client_result run_client(const char *dir, int index, int side, double seconds)
{
    client_result r = {0};
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = dir, .client_name = "load", .timeout_ms = 30000};
    semdraw_client *c = NULL;
    semdraw_canvas *cv = NULL;
    uint8_t *mask = calloc((size_t)side * side, 1);
    semdraw_canvas_desc d = {.struct_size = sizeof d, .width = (uint32_t)side, .height = (uint32_t)side,
                             .flags = SEMDRAW_CANVAS_SEED, .seed = (uint64_t)index + 1};
    semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK,
                       .prompt = "a red fox", .mask = mask};
    set_rect(mask, side, 0, side / 2);
    if (semdraw_connect(&o, &c) || semdraw_wait_ready(c, 60000) || semdraw_canvas_create(c, &d, &cv) ||
        semdraw_layer_add(cv, &l, NULL) || semdraw_canvas_commit(cv, NULL) || semdraw_stream_start(cv, 0)) {
        fprintf(stderr, "client %d: %s\n", index, semdraw_last_error());
        r.errors++;
        goto out;
    }
    const double end = now_ms() + seconds * 1000.0;
    for (uint64_t k = 0; now_ms() < end; k++) {
        semdraw_dispatch(c); /* heartbeats */
        set_rect(mask, side, (int)(k % (uint64_t)(side / 2)), side / 2);
        l.fields = SEMDRAW_LAYER_MASK | (k % 8 == 0 ? SEMDRAW_LAYER_PROMPT : 0);
        l.prompt = k % 16 == 0 ? "a white fox" : "a red fox";
        int rc = semdraw_layer_set(cv, 0, &l);
        r.edits += rc == SEMDRAW_OK;
        if (rc == SEMDRAW_OK || rc == SEMDRAW_E_BUSY) rc = semdraw_canvas_commit(cv, NULL);
        if (rc == SEMDRAW_OK) r.commits++;
        else if (rc == SEMDRAW_E_BUSY) { /* the daemon pushes back: give the canvas a frame's time */
            r.busy++;
            usleep(5000);
        } else {
            fprintf(stderr, "client %d: %s\n", index, semdraw_last_error());
            r.errors++;
            break;
        }
    }
    /* no canvas starves: a slow (sanitized) engine may still owe the first frame when the flood stops */
    semdraw_frame f = {.struct_size = sizeof f};
    uint8_t *px = malloc((size_t)side * side * 4);
    int waited = SEMDRAW_E_TIMEDOUT;
    for (int i = 0; i < 120 && waited == SEMDRAW_E_TIMEDOUT; i++) { /* heartbeats between the waits */
        semdraw_dispatch(c);
        waited = semdraw_frame_wait(cv, 0, 1000);
    }
    if (waited == SEMDRAW_OK && semdraw_frame_copy(cv, px, (size_t)side * side * 4, 0, &f) == SEMDRAW_OK)
        r.frames = f.seq;
    free(px);
out:
    semdraw_canvas_release(cv);
    semdraw_disconnect(c);
    free(mask);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    int clients = 64, side = 32;
    double seconds = 15, p99_limit = 50;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--clients") == 0) clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--side") == 0) side = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--p99-ms") == 0) p99_limit = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--runtime-dir") == 0) dir = argv[i + 1];
        else FAIL("unknown option %s", argv[i]);
    }
    if (clients < 1 || clients > 1024 || side < 8 || side % 8 || !(seconds > 0)) FAIL("bad arguments");
    pid_t daemon = 0;
    static char own[600];
    if (!dir) {
        snprintf(own, sizeof own, "%s/run", semd_test_tmpdir());
        const char *const limits[] = {"--max-canvases-per-client", "4", NULL};
        daemon = fixture_start_daemon_with(own, 5000, limits);
        dir = own;
    }
    int pipes[2];
    ASSERT(pipe(pipes) == 0);
    for (int i = 0; i < clients; i++) {
        pid_t p = fork();
        ASSERT(p >= 0);
        if (p == 0) {
            close(pipes[0]);
            client_result r = run_client(dir, i, side, seconds);
            ASSERT(write(pipes[1], &r, sizeof r) == (ssize_t)sizeof r);
            _exit(0);
        }
    }
    close(pipes[1]);

    /* the prober: Status as a client sees it, the queue, the daemon's memory */
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = dir, .client_name = "prober", .timeout_ms = 30000};
    semdraw_client *c = NULL;
    if (semdraw_connect(&o, &c) || semdraw_wait_ready(c, 60000)) FAIL("prober: %s", semdraw_last_error());
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    uint32_t max_queue = 0, max_canvases = 0;
    long rss_start = -1, rss_end = -1, rss_max = -1;
    const double t0 = now_ms(), warm = t0 + 0.2 * seconds * 1000.0, end = t0 + seconds * 1000.0;
    double next_rss = t0;
    while (now_ms() < end) {
        semdraw_status_info st = {.struct_size = sizeof st};
        const double a = now_ms();
        if (semdraw_status_get(c, &st)) FAIL("status: %s", semdraw_last_error());
        const double b = now_ms();
        if (a > warm && n < cap) lat[n++] = b - a; /* after the clients have connected and created */
        if (st.queue_depth > max_queue) max_queue = st.queue_depth;
        if (st.n_canvases > max_canvases) max_canvases = st.n_canvases;
        semdraw_status_free(&st);
        semdraw_dispatch(c);
        if (daemon && b >= next_rss) {
            const long kib = rss_kib(daemon);
            if (b > warm && rss_start < 0) rss_start = kib;
            if (kib > rss_max) rss_max = kib;
            rss_end = kib;
            next_rss = b + 1000;
        }
        usleep(10000);
    }
    client_result total = {0};
    int failed_clients = 0, starved = 0;
    for (int i = 0; i < clients; i++) {
        client_result r;
        if (read(pipes[0], &r, sizeof r) != (ssize_t)sizeof r) FAIL("a client died");
        total.edits += r.edits, total.commits += r.commits, total.busy += r.busy, total.errors += r.errors;
        failed_clients += r.errors > 0 || r.commits == 0;
        starved += r.frames == 0;
    }
    for (int i = 0; i < clients; i++) wait(NULL);
    semdraw_disconnect(c);
    qsort(lat, n, sizeof *lat, cmp_double);
    const double p50 = n ? lat[n / 2] : 0, p99 = n ? lat[(size_t)(0.99 * (double)(n - 1))] : 0, mx = n ? lat[n - 1] : 0;
    printf("load: %d clients, %.0f s, %dx%d canvases (%u at once)\n", clients, seconds, side, side, max_canvases);
    printf("load: %.0f edits/s, %.0f commits/s, %llu busy replies, %d clients failed, %d got no frame\n",
           (double)total.edits / seconds, (double)total.commits / seconds, (unsigned long long)total.busy,
           failed_clients, starved);
    printf("load: status %zu samples: p50 %.2f ms, p99 %.2f ms, max %.2f ms; queue depth max %u\n", n, p50, p99, mx,
           max_queue);
    if (daemon) printf("load: daemon RSS %ld KiB after warm-up, %ld KiB at the end, %ld KiB max\n", rss_start, rss_end, rss_max);
    free(lat);
    if (daemon) ASSERT_EQ(fixture_stop_daemon(daemon, SIGTERM), 0);
    ASSERT(n > 10 && failed_clients == 0 && starved == 0);
    if (p99 > p99_limit) FAIL("status p99 %.2f ms over %.0f ms", p99, p99_limit);
    if (max_queue > (uint32_t)clients * SEMD_LOAD_MAX_PENDING) FAIL("queue depth %u: unbounded", max_queue);
    /* memory flat: after warm-up the daemon may not keep growing (long runs only: short ones are noise) */
    if (daemon && seconds >= 60 && rss_end > rss_start + rss_start / 10 + 16384)
        FAIL("daemon RSS grew from %ld to %ld KiB", rss_start, rss_end);
    return 0;
}
