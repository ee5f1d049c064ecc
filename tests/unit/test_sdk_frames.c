/*
 * libsemdraw's frame calls against a ring written in this process by the
 * daemon's own ring writer, from a thread that keeps overwriting slots:
 * copies are never torn, held frames that were overwritten are reported
 * stale, drops are counted, waits time out and wake.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "ring_writer.h"
#include "semd/status.h"
#include "semdraw/v1/ring_abi.h"

#define W 64
#define H 32

typedef struct writer {
    semd_ring *ring;
    _Atomic int stop;
    _Atomic uint64_t published;
    int row_pause_us; /* slow writes make torn reads likely */
} writer;

/* Every byte of frame s is (s & 0xff): a torn copy mixes two values. */
static void write_frame(writer *w, uint64_t s)
{
    uint8_t *px = semd_ring_begin(w->ring, s);
    for (int y = 0; y < H; y++) {
        memset(px + (size_t)y * W * 4, (int)(s & 0xff), W * 4);
        if (w->row_pause_us) usleep((useconds_t)w->row_pause_us);
        else if (y % 8 == 0) sched_yield();
    }
    semd_ring_commit(w->ring, s, s, 0, 0);
    atomic_store(&w->published, s);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    for (uint64_t s = atomic_load(&w->published) + 1; !atomic_load(&w->stop); s++) write_frame(w, s);
    return NULL;
}

/* A canvas handle over a ring, without a client: the frame calls need only the ring. */
static semdraw_canvas *canvas_over(const char *path)
{
    semdraw_canvas *cv = calloc(1, sizeof *cv);
    semdraw_ring_reader *r = NULL;
    ASSERT(semdraw_ring_open(path, &r) == SEMDRAW_RING_OK);
    atomic_store(&cv->ring, r);
    return cv;
}

static void free_canvas(semdraw_canvas *cv)
{
    semdraw_ring_close(atomic_load(&cv->ring));
    free(cv);
}

static semd_ring *new_ring(int slots)
{
    semd_ring *r = NULL;
    ASSERT_OK(semd_ring_create(semd_test_tmpdir(), 42, 7, 1, W, H, slots, &r));
    return r;
}

static int uniform(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

TEST(copies_are_never_torn_while_the_writer_laps)
{
    writer w = {.ring = new_ring(2)};
    semdraw_canvas *cv = canvas_over(semd_ring_path(w.ring));
    uint8_t buf[W * H * 4];
    semdraw_frame f = {.struct_size = sizeof f};
    ASSERT_EQ(semdraw_frame_copy(cv, buf, sizeof buf, 0, &f), SEMDRAW_E_AGAIN); /* nothing published yet */
    write_frame(&w, 1); /* the writer thread goes on from here: frames are there from the start */
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    while (atomic_load(&w.published) < 3) sched_yield(); /* and it is lapping */
    int ok = 0, stale = 0;
    uint64_t last = 0;
    for (int i = 0; i < 100000 && ok < 2000; i++) {
        const int rc = semdraw_frame_copy(cv, buf, sizeof buf, 0, &f);
        if (rc == SEMDRAW_E_STALE) {
            stale++;
            continue;
        }
        ASSERT_EQ(rc, SEMDRAW_OK);
        if (!uniform(buf, sizeof buf, (uint8_t)f.seq)) FAIL("frame %llu copied torn", (unsigned long long)f.seq);
        ASSERT(f.seq >= last && f.input_seq == f.seq && f.width == W && f.height == H && f.stride == W * 4);
        last = f.seq, ok++;
    }
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    if (ok <= 100) FAIL("%d copies, %d stale", ok, stale);
    fprintf(stderr, "%d clean copies, %d gave up (stale) while the writer lapped a 2-slot ring\n", ok, stale);
    /* a destination stride wider than a row: rows land where asked, padding untouched */
    static uint8_t wide[(W * 4 + 16) * H];
    memset(wide, 0xee, sizeof wide);
    ASSERT_EQ(semdraw_frame_copy(cv, wide, sizeof wide, W * 4 + 16, &f), SEMDRAW_OK);
    ASSERT(uniform(wide, W * 4, (uint8_t)f.seq) && uniform(wide + W * 4, 16, 0xee) && f.stride == W * 4 + 16);
    ASSERT_EQ(semdraw_frame_copy(cv, buf, sizeof buf - 1, 0, &f), SEMDRAW_E_NOSPC);
    free_canvas(cv);
    semd_ring_retire(w.ring);
}

TEST(held_frames_overwritten_are_stale)
{
    writer w = {.ring = new_ring(3)};
    semdraw_canvas *cv = canvas_over(semd_ring_path(w.ring));
    semdraw_frame f = {.struct_size = sizeof f};
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_E_AGAIN);
    write_frame(&w, 1);
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_OK);
    ASSERT(f.seq == 1 && f.pixels && uniform(f.pixels, W * 4 * H, 1));
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_E_INVAL); /* one held frame at a time */
    write_frame(&w, 2);                                         /* another slot: the held one is intact */
    ASSERT_EQ(semdraw_frame_release(cv, &f), SEMDRAW_OK);
    ASSERT_EQ(semdraw_frame_release(cv, &f), SEMDRAW_E_INVAL); /* not held any more */
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_OK);
    ASSERT(f.seq == 2 && f.dropped == 0);
    ASSERT_EQ(semdraw_frame_release(cv, &f), SEMDRAW_OK);
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_E_AGAIN); /* nothing newer */
    write_frame(&w, 3);
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_OK);
    for (uint64_t s = 4; s <= 6; s++) write_frame(&w, s); /* 3 slots: frame 6 lands on frame 3's slot */
    ASSERT_EQ(semdraw_frame_release(cv, &f), SEMDRAW_E_STALE);
    ASSERT_CONTAINS(semdraw_last_error(), "overwritten");
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_OK);
    ASSERT(f.seq == 6 && f.dropped == 2); /* 4 and 5 were never read */
    ASSERT_EQ(semdraw_frame_release(cv, &f), SEMDRAW_OK);
    /* a retired ring: the canvas is gone */
    semd_ring_set_state(w.ring, SEMDRAW_RING_RETIRED);
    ASSERT_EQ(semdraw_frame_acquire(cv, &f), SEMDRAW_E_CLOSED);
    ASSERT_EQ(semdraw_frame_wait(cv, 6, 1000), SEMDRAW_E_CLOSED);
    free_canvas(cv);
    semd_ring_retire(w.ring);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *publish_later(void *arg)
{
    writer *w = arg;
    usleep(150 * 1000);
    write_frame(w, atomic_load(&w->published) + 1);
    return NULL;
}

TEST(waits_time_out_and_wake_on_a_frame)
{
    writer w = {.ring = new_ring(2)};
    semdraw_canvas *cv = canvas_over(semd_ring_path(w.ring));
    write_frame(&w, 1);
    ASSERT_EQ(semdraw_frame_wait(cv, 0, 0), SEMDRAW_OK); /* already there */
    double t0 = now_ms();
    ASSERT_EQ(semdraw_frame_wait(cv, 1, 120), SEMDRAW_E_TIMEDOUT);
    const double waited = now_ms() - t0;
    ASSERT(waited >= 115 && waited < 2000);
    pthread_t t;
    pthread_create(&t, NULL, publish_later, &w);
    t0 = now_ms();
    ASSERT_EQ(semdraw_frame_wait(cv, 1, 10000), SEMDRAW_OK);
    const double woke = now_ms() - t0;
    pthread_join(t, NULL);
    ASSERT(woke >= 100 && woke < 2000); /* woken by the frame, long before the timeout */
    free_canvas(cv);
    semd_ring_retire(w.ring);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(copies_are_never_torn_while_the_writer_laps),
    TEST_ENTRY(held_frames_overwritten_are_stale),
    TEST_ENTRY(waits_time_out_and_wake_on_a_frame),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
