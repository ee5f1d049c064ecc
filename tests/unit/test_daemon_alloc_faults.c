/*
 * semdrawd itself out of memory. The daemon under test is a build whose own
 * allocations (its loop thread, its engine thread and their code; not those
 * inside libzmq, libuv or protobuf-c) go through failing_alloc.c, armed from
 * here over SIGUSR2. For each n, the daemon's n-th allocation after arming
 * fails once while a client runs a session: connect, create a canvas, add a
 * layer, set a background, commit, take a snapshot, close. Every call must
 * come back within its timeout, either done or with an error that says what
 * happened; none may hang for want of a reply. Another client's canvas,
 * made before, must stay and render after each round, and the daemon must
 * stop cleanly at the end (exit 0: no leak in the sanitizer build).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "golden_util.h"
#include "daemon_fixture.h"
#include "semdraw/semdraw.h"

#define SIDE 64

static const char *run_dir(void)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/run", semd_test_tmpdir());
    return dir;
}

static const char *report_path(void)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/alloc-report", semd_test_tmpdir());
    return path;
}

static void arm(pid_t daemon, int nth)
{
    ASSERT(sigqueue(daemon, SIGUSR2, (union sigval){.sival_int = nth}) == 0);
}

/* Disarm; returns the allocations counted since arming, and whether the failure happened. */
static long disarm(pid_t daemon, int *fired)
{
    unlink(report_path());
    arm(daemon, 0);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(report_path(), "r");
        long count = -1;
        if (f && fscanf(f, "%ld %d", &count, fired) == 2) {
            fclose(f);
            return count;
        }
        if (f) fclose(f);
        usleep(10000);
    }
    FAIL("the daemon never reported its allocations");
}

static semdraw_client *connect_to(const char *name, int *rc)
{
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = run_dir(), .client_name = name,
                              .timeout_ms = 10000};
    semdraw_client *c = NULL;
    *rc = semdraw_connect(&o, &c);
    return c;
}

/* A call's outcome: done, or an error that is not a lost reply. */
static void allowed(int rc, const char *what, int nth)
{
    if (rc == SEMDRAW_OK || rc == SEMDRAW_E_NOMEM) return;
    if (rc == SEMDRAW_E_CLOSED) return; /* the canvas was lost to a failed edit and closed, with the reason */
    FAIL("allocation %d: %s: %d (%s): %s", nth, what, rc, semdraw_strerror(rc), semdraw_last_error());
}

static uint8_t mask[SIDE * SIDE];

typedef struct session_result {
    int failed; /* calls that returned an error */
    int complete;
} session_result;

static session_result session(int nth)
{
    session_result r = {0};
    int rc;
    semdraw_client *c = connect_to("victim", &rc);
    allowed(rc, "connect", nth);
    if (rc) {
        r.failed = 1;
        return r;
    }
    semdraw_canvas_desc d = {.struct_size = sizeof d, .width = SIDE, .height = SIDE, .flags = SEMDRAW_CANVAS_SEED,
                             .seed = 3};
    semdraw_canvas *cv = NULL;
    rc = semdraw_canvas_create(c, &d, &cv);
    allowed(rc, "create", nth);
    r.failed += rc != 0;
    if (!rc) {
        semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK,
                           .prompt = "a red apple", .mask = mask};
        uint32_t id;
        const int steps[] = {semdraw_layer_add(cv, &l, &id), semdraw_canvas_set_background(cv, "a meadow", NULL, NULL, 0),
                             semdraw_canvas_commit(cv, NULL), semdraw_canvas_snapshot(cv, 30000)};
        const char *names[] = {"layer add", "background", "commit", "snapshot"};
        int all = 1;
        for (int i = 0; i < 4; i++) {
            allowed(steps[i], names[i], nth);
            r.failed += steps[i] != 0, all &= steps[i] == 0;
        }
        r.complete = all;
        rc = semdraw_canvas_close(cv);
        if (!(rc == SEMDRAW_E_NOTFOUND && r.failed)) /* a canvas lost to a failed edit is closed already */
            allowed(rc, "close", nth);
        semdraw_canvas_release(cv);
    }
    semdraw_disconnect(c);
    return r;
}

/* The bystander renders, and so keeps its canvas and its session. */
static void bystander_renders(semdraw_client *b, semdraw_canvas *cv, int nth)
{
    ASSERT(semdraw_dispatch(b) >= 0);
    const int rc = semdraw_canvas_snapshot(cv, 30000);
    if (rc) FAIL("after allocation %d: the bystander's snapshot: %d: %s", nth, rc, semdraw_last_error());
}

TEST(the_daemon_out_of_memory_answers_every_call)
{
    setenv("SEMD_FAILING_ALLOC_REPORT", report_path(), 1);
    for (int i = 0; i < SIDE * SIDE; i++) mask[i] = (i % SIDE) < SIDE / 2 ? 255 : 0;
    const pid_t d = fixture_start_daemon(run_dir(), 30000); /* a long lease: the bystander dispatches between rounds */
    int rc;
    semdraw_client *b = connect_to("bystander", &rc);
    ASSERT_EQ(rc, SEMDRAW_OK);
    ASSERT_EQ(semdraw_wait_ready(b, 60000), SEMDRAW_OK);
    semdraw_canvas_desc desc = {.struct_size = sizeof desc, .width = SIDE, .height = SIDE};
    semdraw_canvas *keep = NULL;
    ASSERT_EQ(semdraw_canvas_create(b, &desc, &keep), SEMDRAW_OK);
    bystander_renders(b, keep, 0);

    int fired;
    arm(d, -1);
    session_result r = session(0);
    const long total = disarm(d, &fired);
    ASSERT(r.complete && !r.failed && !fired);
    fprintf(stderr, "a session makes %ld allocations in the daemon\n", total);
    ASSERT(total > 100);

    /* Every one of the first 48 (the loop's, the create's), then 40 spread over the rest. */
    int tried = 0, hit = 0, told = 0;
    for (int k = 1; k <= 88; k++) {
        const int nth = k <= 48 ? k : 48 + (int)((k - 48) * (total - 48) / 40);
        arm(d, nth);
        r = session(nth);
        disarm(d, &fired);
        tried++, hit += fired, told += r.failed > 0;
        bystander_renders(b, keep, nth);
    }
    fprintf(stderr, "%d allocations failed on purpose out of %d tries; %d sessions were told of it, the others "
            "lost nothing\n", hit, tried, told);
    ASSERT(hit > tried / 2);
    semdraw_canvas_release(keep);
    semdraw_disconnect(b);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(the_daemon_out_of_memory_answers_every_call),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
