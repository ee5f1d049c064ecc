/*
 * The engine thread with the tiny model: canvases stream into their rings,
 * commits show up as input sequence numbers, two canvases advance together,
 * closing retires the ring. Frames are read back with libsemdraw's reader.
 */
#define _GNU_SOURCE
#include <time.h>
#include <unistd.h>

#include "ring_reader.h"
#include "engine_host.h"
#include "tiny_models.h"
#include "semdraw/v1/ring_abi.h"

/* Wait (bounded) for a frame with seq > after; returns it. */
static semdraw_ring_frame wait_frame(semdraw_ring_reader *r, uint8_t *buf, size_t cap, uint64_t after)
{
    semdraw_ring_frame f = {0};
    for (int i = 0; i < 3000; i++) {
        int rc = semdraw_ring_copy_latest(r, buf, cap, &f);
        if (rc == SEMDRAW_RING_OK && f.seq > after) return f;
        ASSERT(rc == SEMDRAW_RING_OK || rc == SEMDRAW_RING_EAGAIN || rc == SEMDRAW_RING_ESTALE);
        usleep(10000);
    }
    FAIL("no frame after %llu within 30 s", (unsigned long long)after);
}

static uint8_t *disc(int w, int h)
{
    uint8_t *m = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) m[y * w + x] = (x - w / 2) * (x - w / 2) + (y - h / 2) * (y - h / 2) < 200 ? 255 : 0;
    return m;
}

/* What the error callback heard (engine thread). */
static struct {
    int calls, kind, code;
    uint64_t canvas, input_seq;
} heard;

static void on_error(void *ctx, uint64_t canvas_id, semd_host_error_kind kind, int code, uint64_t input_seq,
                     const char *message)
{
    (void)ctx, (void)message;
    heard.canvas = canvas_id, heard.kind = (int)kind, heard.code = code, heard.input_seq = input_seq;
    __atomic_add_fetch(&heard.calls, 1, __ATOMIC_SEQ_CST);
}

TEST(stream_commit_and_close)
{
    models s = tiny_models_load(1);
    semd_host *h;
    ASSERT_OK(semd_host_start(&s.m, semd_test_tmpdir(), 77, NULL, NULL, &h));
    semd_host_set_error_fn(h, on_error, NULL);
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = 64, p.height = 48;
    uint64_t a, b;
    char *path_a, *path_b;
    ASSERT_OK(semd_host_create_canvas(h, &p, 3, &a, &path_a));
    p.width = 48, p.height = 64;
    ASSERT_OK(semd_host_create_canvas(h, &p, 3, &b, &path_b));
    ASSERT(a != b);

    uint8_t *mask = disc(64, 48);
    semd_host_edit add = {.kind = SEMD_HOST_SET_LAYER, .layer_id = -1,
                          .layer = {.prompt = "a red apple", .mask = mask, .mask_std = 8,
                                    .mask_strength = 1, .prompt_strength = 0.95f}};
    uint64_t seq1, seq2;
    ASSERT_OK(semd_host_commit(h, a, &add, 1, &seq1));
    ASSERT_EQ(seq1, 1);
    ASSERT_OK(semd_host_start_stream(h, a, 0));
    ASSERT_OK(semd_host_start_stream(h, b, 0));

    semdraw_ring_reader *ra, *rb;
    ASSERT_EQ(semdraw_ring_open(path_a, &ra), SEMDRAW_RING_OK);
    ASSERT_EQ(semdraw_ring_open(path_b, &rb), SEMDRAW_RING_OK);
    semdraw_ring_info info;
    semdraw_ring_get_info(ra, &info);
    ASSERT_EQ(info.instance_id, 77);
    ASSERT_EQ(info.canvas_id, a);
    uint8_t *buf = malloc(64 * 48 * 4);
    semdraw_ring_frame f = wait_frame(ra, buf, 64 * 48 * 4, 0);
    ASSERT_EQ(f.input_seq, 1);                   /* the first frame already reflects commit 1 */
    ASSERT(f.flags & SEMDRAW_RING_FLAG_WARMUP);
    ASSERT_EQ(buf[3], 255);                      /* RGBA, opaque */
    wait_frame(rb, buf, 64 * 48 * 4, 0);         /* the other canvas streams too */

    semd_host_edit prompt = {.kind = SEMD_HOST_SET_LAYER, .layer_id = 0, .fields = SEMD_LAYER_PROMPT,
                             .layer = {.prompt = "a green pear"}};
    ASSERT_OK(semd_host_commit(h, a, &prompt, 1, &seq2));
    ASSERT_EQ(seq2, 2);
    uint64_t last = f.seq;
    for (int i = 0; i < 50 && f.input_seq < 2; i++) {
        f = wait_frame(ra, buf, 64 * 48 * 4, last);
        ASSERT(f.seq > last && f.input_seq >= 1);  /* increasing frames, inputs never go back */
        last = f.seq;
    }
    ASSERT_EQ(f.input_seq, 2);
    semd_host_canvas_stats st;
    ASSERT_OK(semd_host_get_stats(h, a, &st));
    ASSERT(st.streaming && st.target_fps == 0.0f && st.frames >= 2 && st.input_seq >= 1);
    ASSERT(st.fps > 0.0f && st.latency_ms > 0.0f && st.pending_commits == 0);
    ASSERT_EQ(semd_host_get_stats(h, 999, &st), SEMD_ENOTFOUND);

    for (int i = 0; i < 50 && (f.flags & SEMDRAW_RING_FLAG_WARMUP); i++) f = wait_frame(ra, buf, 64 * 48 * 4, f.seq);
    ASSERT(!(f.flags & SEMDRAW_RING_FLAG_WARMUP));     /* warmed up ... */
    semd_host_edit reset = {.kind = SEMD_HOST_RESET_LATENT};
    uint64_t seq_reset;
    ASSERT_OK(semd_host_stop_stream(h, a));
    ASSERT_OK(semd_host_commit(h, a, &reset, 1, &seq_reset));
    ASSERT_OK(semd_host_start_stream(h, a, 5)); /* slow enough that no frame goes unseen */
    for (int i = 0; i < 50 && f.input_seq < seq_reset; i++) f = wait_frame(ra, buf, 64 * 48 * 4, f.seq);
    ASSERT_EQ(f.input_seq, seq_reset);
    ASSERT(f.flags & SEMDRAW_RING_FLAG_WARMUP);        /* ... and warming up again after the reset */
    ASSERT_OK(semd_host_start_stream(h, a, 0));

    semd_host_edit bad = {.kind = SEMD_HOST_REMOVE_LAYER, .layer_id = 9};
    uint64_t seq3;
    ASSERT_OK(semd_host_commit(h, a, &bad, 1, &seq3));
    for (int i = 0; i < 50 && f.input_seq < seq3; i++) f = wait_frame(ra, buf, 64 * 48 * 4, f.seq);
    char err[256];
    ASSERT_OK(semd_host_canvas_error(h, a, err, sizeof err));
    ASSERT_CONTAINS(err, "no layer 9");           /* reported, and the stream goes on */
    ASSERT_EQ(__atomic_load_n(&heard.calls, __ATOMIC_SEQ_CST), 1); /* through the callback, once */
    ASSERT(heard.canvas == a && heard.kind == SEMD_HOST_EDIT_REFUSED && heard.code == SEMD_ENOTFOUND);
    ASSERT_EQ(heard.input_seq, seq3);
    f = wait_frame(ra, buf, 64 * 48 * 4, f.seq);

    ASSERT_OK(semd_host_close_canvas(h, a));
    ASSERT_EQ(semdraw_ring_state(ra), SEMDRAW_RING_RETIRED);
    ASSERT(access(path_a, F_OK) != 0);
    ASSERT_EQ(semd_host_commit(h, a, &prompt, 1, &seq2), SEMD_ENOTFOUND);
    ASSERT_EQ(semd_host_close_canvas(h, a), SEMD_ENOTFOUND);
    semd_host_stop(h);                            /* retires b's ring too */
    ASSERT_EQ(semdraw_ring_state(rb), SEMDRAW_RING_RETIRED);
    semdraw_ring_close(ra), semdraw_ring_close(rb);
    free(buf), free(mask), free(path_a), free(path_b);
    tiny_models_unload(&s);
}

TEST(paced_stream)
{
    models s = tiny_models_load(1);
    semd_host *h;
    ASSERT_OK(semd_host_start(&s.m, semd_test_tmpdir(), 5, NULL, NULL, &h));
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = p.height = 64;
    uint64_t id;
    char *path;
    ASSERT_OK(semd_host_create_canvas(h, &p, 2, &id, &path));
    ASSERT_OK(semd_host_start_stream(h, id, 5)); /* 5 fps: 200 ms apart */
    semdraw_ring_reader *r;
    ASSERT_EQ(semdraw_ring_open(path, &r), SEMDRAW_RING_OK);
    uint8_t *buf = malloc(64 * 64 * 4);
    semdraw_ring_frame f1 = wait_frame(r, buf, 64 * 64 * 4, 0), f2 = wait_frame(r, buf, 64 * 64 * 4, f1.seq);
    ASSERT(f2.t_render_ns - f1.t_render_ns >= 150000000ull); /* paced, with slack for jitter */
    wait_frame(r, buf, 64 * 64 * 4, f2.seq); /* by now f2 is in the stats as well as the ring */
    ASSERT_OK(semd_host_stop_stream(h, id));
    semd_host_canvas_stats st;
    ASSERT_OK(semd_host_get_stats(h, id, &st));
    ASSERT(!st.streaming && st.target_fps == 5.0f && st.fps > 0.0f && st.fps < 7.0f);
    ASSERT_EQ(semd_host_start_stream(h, id, -1), SEMD_EINVAL);
    semd_host_stop(h);
    semdraw_ring_close(r);
    free(buf), free(path);
    tiny_models_unload(&s);
}

/* More canvases due at once than one round takes (64): every one still gets frames, in turn. */
TEST(round_robin_beyond_one_round)
{
    enum { N = 70 };
    models s = tiny_models_load(1);
    semd_host *h;
    ASSERT_OK(semd_host_start(&s.m, semd_test_tmpdir(), 78, NULL, NULL, &h));
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = p.height = 32;
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        char *path;
        ASSERT_OK(semd_host_create_canvas(h, &p, 2, &ids[i], &path));
        free(path);
    }
    for (int i = 0; i < N; i++) ASSERT_OK(semd_host_start_stream(h, ids[i], 0)); /* all due all the time */
    int starved = N;
    for (int t = 0; t < 6000 && starved; t++) {
        usleep(10000);
        starved = 0;
        for (int i = 0; i < N; i++) {
            semd_host_canvas_stats st;
            ASSERT_OK(semd_host_get_stats(h, ids[i], &st));
            starved += st.frames < 2;
        }
    }
    ASSERT_EQ(starved, 0);
    semd_host_stop(h);
    tiny_models_unload(&s);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(round_robin_beyond_one_round),
    TEST_ENTRY(stream_commit_and_close),
    TEST_ENTRY(paced_stream),
    {0},
};

SEMD_TEST_MAIN(tests)
