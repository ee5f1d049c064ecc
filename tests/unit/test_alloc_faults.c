/*
 * Out of memory on the engine thread, on purpose (failing_alloc.h): for each
 * n, the n-th allocation of a scenario fails once (a canvas created, a layer
 * and a background committed, snapshots of it and of a second canvas that
 * shares its rounds), and whatever it hit must come back as an error that
 * says so: the create's answer, the commit's status or an error callback.
 * Never a crash (the sanitizer build runs this too), never a leak, never a
 * silent loss. Afterwards the other canvas is still there and renders, and the
 * canvas of the scenario renders too unless the host said it was lost.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "engine_host.h"
#include "failing_alloc.h"
#include "tiny_models.h"

#define SIDE 64
#define MAX_IDS 4096

/* What the engine thread reported; its callbacks must not allocate (they run unexempted). */
static struct {
    pthread_mutex_t mu;
    int n_errors;
    struct {
        uint64_t canvas;
        semd_host_error_kind kind;
        int code;
        char message[256];
    } errors[16];
    int created, create_rc;
    uint64_t created_id;
    char create_error[256];
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Atomic uint64_t frames[MAX_IDS]; /* the newest frame per canvas id */

static void on_frame(void *ctx, uint64_t canvas_id, uint64_t seq, uint64_t input_seq, uint64_t t_ns)
{
    (void)ctx, (void)input_seq, (void)t_ns;
    if (canvas_id < MAX_IDS) atomic_store(&frames[canvas_id], seq);
}

static void on_error(void *ctx, uint64_t canvas_id, semd_host_error_kind kind, int code, uint64_t input_seq,
                     const char *message)
{
    (void)ctx, (void)input_seq;
    pthread_mutex_lock(&seen.mu);
    if (seen.n_errors < 16) {
        seen.errors[seen.n_errors].canvas = canvas_id, seen.errors[seen.n_errors].kind = kind;
        seen.errors[seen.n_errors].code = code;
        snprintf(seen.errors[seen.n_errors].message, sizeof seen.errors[0].message, "%s", message);
    }
    seen.n_errors++;
    pthread_mutex_unlock(&seen.mu);
}

static void on_created(void *ctx, int rc, uint64_t canvas_id, const char *ring_path, const char *error)
{
    (void)ctx, (void)ring_path;
    pthread_mutex_lock(&seen.mu);
    seen.create_rc = rc, seen.created_id = canvas_id;
    snprintf(seen.create_error, sizeof seen.create_error, "%s", error);
    seen.created = 1;
    pthread_mutex_unlock(&seen.mu);
}

static void forget(void)
{
    pthread_mutex_lock(&seen.mu);
    seen.n_errors = 0, seen.created = 0, seen.create_error[0] = 0;
    pthread_mutex_unlock(&seen.mu);
}

static int errors_for(uint64_t canvas, semd_host_error_kind kind)
{
    int n = 0;
    pthread_mutex_lock(&seen.mu);
    for (int i = 0; i < seen.n_errors && i < 16; i++) n += seen.errors[i].canvas == canvas && seen.errors[i].kind == kind;
    pthread_mutex_unlock(&seen.mu);
    return n;
}

static int any_error_for(uint64_t canvas)
{
    return errors_for(canvas, SEMD_HOST_EDIT_REFUSED) + errors_for(canvas, SEMD_HOST_FRAME_FAILED) +
           errors_for(canvas, SEMD_HOST_CANVAS_LOST);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Until the canvas has published frame `seq` or the engine reported a failure on it. */
static void wait_frames_or_error(uint64_t canvas, uint64_t seq)
{
    const double until = now_ms() + 120000;
    while (atomic_load(&frames[canvas]) < seq && !any_error_for(canvas)) {
        if (now_ms() > until) FAIL("canvas %llu: no frame %llu and no error", (unsigned long long)canvas,
                                   (unsigned long long)seq);
        usleep(1000);
    }
}

/* A canvas through the async create; 0 when it failed (*rc says how). */
static uint64_t create(semd_host *h, int *rc_out)
{
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = SIDE, p.height = SIDE, p.seed = 5;
    pthread_mutex_lock(&seen.mu);
    seen.created = 0;
    pthread_mutex_unlock(&seen.mu);
    failing_alloc_exempt(0);
    const int rc = semd_host_create_canvas_async(h, &p, 3, on_created, NULL);
    failing_alloc_exempt(1);
    *rc_out = rc;
    if (rc) { /* refused at once: the message is this thread's */
        snprintf(seen.create_error, sizeof seen.create_error, "%s", semd_last_error());
        return 0;
    }
    for (const double until = now_ms() + 60000;; usleep(1000)) {
        pthread_mutex_lock(&seen.mu);
        const int done = seen.created;
        pthread_mutex_unlock(&seen.mu);
        if (done) break;
        if (now_ms() > until) FAIL("the create never finished");
    }
    *rc_out = seen.create_rc;
    return seen.create_rc ? 0 : seen.created_id;
}

typedef struct outcome {
    uint64_t b;          /* the scenario's canvas, 0 when its create failed */
    int create_rc, commit_rc, snapshot_rc;
    int complete;        /* both canvases got every frame of their snapshots */
} outcome;

static uint8_t mask[SIDE * SIDE];

/*
 * The scenario: a canvas made and edited, then a snapshot of it, with one of
 * `a` in the same rounds when `with_a` (a round's failure is then retried
 * canvas by canvas; alone, it fails the canvas's frame).
 */
static outcome scenario(semd_host *h, uint64_t a, int with_a)
{
    outcome o = {0};
    o.b = create(h, &o.create_rc);
    if (!o.b) return o;
    semd_host_edit edits[2] = {
        {.kind = SEMD_HOST_SET_LAYER, .layer_id = -1,
         .layer = {.prompt = "a red apple", .mask = mask, .mask_std = 4, .mask_strength = 1, .prompt_strength = 0.9f}},
        {.kind = SEMD_HOST_SET_BACKGROUND, .bg_prompt = "a meadow"},
    };
    uint64_t seq;
    int frames_b = 0, frames_a = 0;
    const uint64_t a0 = atomic_load(&frames[a]);
    failing_alloc_exempt(0);
    o.commit_rc = semd_host_commit(h, o.b, edits, 2, &seq);
    o.snapshot_rc = semd_host_snapshot(h, o.b, &frames_b);
    if (!o.snapshot_rc && with_a) o.snapshot_rc = semd_host_snapshot(h, a, &frames_a);
    failing_alloc_exempt(1);
    if (!o.snapshot_rc) {
        wait_frames_or_error(o.b, (uint64_t)frames_b);
        wait_frames_or_error(a, a0 + (uint64_t)frames_a);
        o.complete = atomic_load(&frames[o.b]) >= (uint64_t)frames_b && atomic_load(&frames[a]) >= a0 + (uint64_t)frames_a;
    }
    return o;
}

/* With nothing failing: a snapshot of the canvas renders its T frames. */
static void renders(semd_host *h, uint64_t canvas)
{
    int t = 0;
    const uint64_t before = atomic_load(&frames[canvas]);
    ASSERT_OK(semd_host_snapshot(h, canvas, &t));
    wait_frames_or_error(canvas, before + (uint64_t)t);
    pthread_mutex_lock(&seen.mu);
    for (int i = 0; i < seen.n_errors && i < 16; i++)
        FAIL("canvas %llu, failing nothing: kind %d, code %d: %s", (unsigned long long)seen.errors[i].canvas,
             (int)seen.errors[i].kind, seen.errors[i].code, seen.errors[i].message);
    pthread_mutex_unlock(&seen.mu);
}

/* How the failures came out, for the summary. */
static struct { int create, commit, edit_lost, frame, absorbed; } tally;

/*
 * Every failure was told, as out of memory, or cost nothing (a round that
 * failed as a whole and whose canvases then got their frames one by one), and
 * nothing is left half-done.
 */
static void check(semd_host *h, uint64_t a, const outcome *o, long nth)
{
    const int told = (o->create_rc != 0) + (o->commit_rc != 0) + (o->snapshot_rc != 0) + seen.n_errors;
    if (!told && !o->complete) {
        if (failing_alloc_fired()) failing_alloc_print_site();
        FAIL("allocation %ld: the scenario stopped short and nobody was told", nth);
    }
    if (o->create_rc) {
        if (o->create_rc != SEMD_ENOMEM || !seen.create_error[0])
            FAIL("allocation %ld: the create said %d: \"%s\"", nth, o->create_rc, seen.create_error);
    }
    if (o->commit_rc) ASSERT_EQ(o->commit_rc, SEMD_ENOMEM);
    if (o->snapshot_rc) ASSERT_EQ(o->snapshot_rc, SEMD_ENOMEM);
    for (int i = 0; i < seen.n_errors && i < 16; i++) {
        if (seen.errors[i].code != SEMD_ENOMEM || seen.errors[i].kind == SEMD_HOST_EDIT_REFUSED)
            FAIL("allocation %ld: canvas %llu: kind %d, code %d: %s", nth, (unsigned long long)seen.errors[i].canvas,
                 (int)seen.errors[i].kind, seen.errors[i].code, seen.errors[i].message);
        ASSERT(seen.errors[i].message[0]);
    }
    ASSERT_EQ(errors_for(a, SEMD_HOST_CANVAS_LOST), 0); /* the bystander had no edits to lose it by */
    const int b_lost = o->b && errors_for(o->b, SEMD_HOST_CANVAS_LOST), troubled = told > 0;
    if (failing_alloc_fired()) {
        tally.create += o->create_rc != 0, tally.commit += o->commit_rc != 0, tally.edit_lost += b_lost;
        tally.frame += errors_for(o->b, SEMD_HOST_FRAME_FAILED) + errors_for(a, SEMD_HOST_FRAME_FAILED);
        tally.absorbed += !told;
    }
    forget();
    if (troubled) renders(h, a); /* (otherwise it just rendered) */
    if (!o->b) return;
    semd_host_canvas_stats st;
    const int b_there = semd_host_get_stats(h, o->b, &st) == SEMD_OK;
    ASSERT_EQ(b_there, !b_lost); /* lost means closed, and only then */
    if (b_there && troubled) renders(h, o->b);
    if (b_there) ASSERT_OK(semd_host_close_canvas(h, o->b));
}

TEST(every_allocation_of_a_canvas_may_fail)
{
    failing_alloc_exempt(1);
    for (int i = 0; i < SIDE * SIDE; i++) mask[i] = (i % SIDE) < SIDE / 2 ? 255 : 0;
    models s = tiny_models_load(1);
    semd_host *h;
    ASSERT_OK(semd_host_start(&s.m, semd_test_tmpdir(), 9, on_frame, NULL, &h));
    semd_host_set_error_fn(h, on_error, NULL);
    int rc;
    const uint64_t a = create(h, &rc);
    ASSERT(a);
    renders(h, a);

    failing_alloc_arm(1L << 40); /* counts, never fails: how many allocations the scenario makes */
    outcome o = scenario(h, a, 1);
    const long total = failing_alloc_disarm();
    ASSERT(o.b && !o.commit_rc && seen.n_errors == 0);
    check(h, a, &o, 0);
    fprintf(stderr, "the scenario makes %ld allocations\n", total);
    ASSERT(total > 100);

    /*
     * Every one of the first 48 (the create's), every 8th up to 400 (the
     * edits': text encoding), then 40 spread over the frames.
     */
    const char *env = getenv("SEMD_ALLOC_FAULT_SPREAD");
    const long first = 48, edits = 44, spread = env ? atol(env) : 40;
    long tried = 0, fired = 0;
    for (long k = 1; k <= first + edits + spread; k++) {
        const long nth = k <= first ? k
                         : k <= first + edits ? first + (k - first) * 8
                                              : 400 + (k - first - edits) * (total - 400) / spread;
        if (getenv("SEMD_ALLOC_FAULT_VERBOSE")) fprintf(stderr, "failing allocation %ld\n", nth);
        failing_alloc_arm(nth);
        o = scenario(h, a, k % 2);
        failing_alloc_disarm();
        fired += failing_alloc_fired(), tried++;
        check(h, a, &o, nth);
    }
    fprintf(stderr, "%ld allocations failed on purpose out of %ld tries: %d creates refused, %d commits refused, "
            "%d canvases lost to a failed edit, %d frames failed, %d absorbed by a round retried canvas by canvas\n",
            fired, tried, tally.create, tally.commit, tally.edit_lost, tally.frame, tally.absorbed);
    ASSERT(fired > tried / 2);
    semd_host_stop(h);
    tiny_models_unload(&s);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(every_allocation_of_a_canvas_may_fail),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
