/*
 * libsemdraw against a private semdrawd (daemon_fixture.h): connecting,
 * events through the client's fd, canvases, layers and commits reaching the
 * frames, viewers and editors, snapshots, closed clients and canvases,
 * daemon restarts with and without auto-restore, a daemon that goes away.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "golden_util.h"
#include "daemon_fixture.h"
#include "semdraw/semdraw.h"

#define SIDE 64

#define ASSERT_SD(expr)                                                                           \
    do {                                                                                          \
        int rc_ = (expr);                                                                         \
        if (rc_ != SEMDRAW_OK) FAIL("%s: %d (%s): %s", #expr, rc_, semdraw_strerror(rc_), semdraw_last_error()); \
    } while (0)

static const char *run_dir(void)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/run", semd_test_tmpdir());
    return dir;
}

static semdraw_client *connect_to(uint32_t flags, const char *name)
{
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = run_dir(), .client_name = name,
                              .timeout_ms = 20000, .flags = flags};
    semdraw_client *c = NULL;
    ASSERT_SD(semdraw_connect(&o, &c));
    ASSERT_SD(semdraw_wait_ready(c, 30000));
    return c;
}

/* What the event callback saw. */
typedef struct seen {
    int frames, closed, restarted, restored, disconnected, model_ready, errors, canvas_errors;
    int error_status;
    uint32_t error_kind;
    char error_message[512];
    uint64_t last_seq, last_input, last_canvas;
    semdraw_canvas *restored_canvas;
    char closed_reason[256];
} seen;

static void on_event(void *user, const semdraw_event *ev)
{
    seen *s = user;
    switch (ev->type) {
    case SEMDRAW_EVENT_FRAME_READY:
        s->frames++, s->last_seq = ev->seq, s->last_input = ev->input_seq, s->last_canvas = ev->canvas_id;
        break;
    case SEMDRAW_EVENT_CANVAS_CLOSED:
        s->closed++;
        snprintf(s->closed_reason, sizeof s->closed_reason, "%s", ev->message);
        break;
    case SEMDRAW_EVENT_DAEMON_RESTARTED: s->restarted++; break;
    case SEMDRAW_EVENT_CANVAS_RESTORED: s->restored++, s->restored_canvas = ev->canvas; break;
    case SEMDRAW_EVENT_DISCONNECTED: s->disconnected++; break;
    case SEMDRAW_EVENT_MODEL_STATE: s->model_ready += ev->model_state == SEMDRAW_MODEL_READY; break;
    case SEMDRAW_EVENT_ERROR: s->errors++; break;
    case SEMDRAW_EVENT_CANVAS_ERROR:
        s->canvas_errors++, s->error_status = ev->status, s->error_kind = ev->error_kind;
        snprintf(s->error_message, sizeof s->error_message, "%s", ev->message);
        break;
    }
}

/* The application's loop: poll the client's fd, dispatch, until cond holds or the time is up. */
#define LOOP_UNTIL(c, cond, ms)                                                                   \
    do {                                                                                          \
        struct timespec t0_, t1_;                                                                 \
        clock_gettime(CLOCK_MONOTONIC, &t0_);                                                     \
        for (;;) {                                                                                \
            ASSERT(semdraw_dispatch(c) >= 0);                                                     \
            if (cond) break;                                                                      \
            clock_gettime(CLOCK_MONOTONIC, &t1_);                                                 \
            if ((t1_.tv_sec - t0_.tv_sec) * 1000 + (t1_.tv_nsec - t0_.tv_nsec) / 1000000 > (ms))  \
                FAIL("timed out waiting for %s", #cond);                                          \
            struct pollfd p_ = {semdraw_get_fd(c), POLLIN, 0};                                    \
            poll(&p_, 1, semdraw_get_timeout_ms(c));                                              \
        }                                                                                         \
    } while (0)

static uint8_t *half_mask(int left)
{
    uint8_t *m = calloc(SIDE * SIDE, 1);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) m[y * SIDE + x] = (x < SIDE / 2) == left ? 255 : 0;
    return m;
}

static semdraw_canvas *new_canvas(semdraw_client *c, uint64_t seed, uint32_t flags)
{
    semdraw_canvas_desc d = {.struct_size = sizeof d, .width = SIDE, .height = SIDE,
                             .flags = SEMDRAW_CANVAS_SEED | flags, .seed = seed};
    semdraw_canvas *cv = NULL;
    ASSERT_SD(semdraw_canvas_create(c, &d, &cv));
    return cv;
}

static uint32_t add_layer(semdraw_canvas *cv, const char *prompt, const uint8_t *mask)
{
    semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK,
                       .prompt = prompt, .mask = mask};
    uint32_t id = 99;
    ASSERT_SD(semdraw_layer_add(cv, &l, &id));
    return id;
}

TEST(versions_and_errors)
{
    ASSERT_EQ(semdraw_version(), SEMDRAW_VERSION_HEX);
    ASSERT_STREQ(semdraw_version_string(), "0.2.0");
    ASSERT_STREQ(semdraw_strerror(SEMDRAW_E_STALE), "the frame was overwritten while held");
    ASSERT_STREQ(semdraw_strerror(12345), "unknown status");
    /* nobody serves this directory: a clear timeout that names the socket */
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = semd_test_tmpdir(), .timeout_ms = 300};
    semdraw_client *c = (semdraw_client *)&o;
    ASSERT_EQ(semdraw_connect(&o, &c), SEMDRAW_E_TIMEDOUT);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(semdraw_last_error(), "control.sock");
    o.struct_size = 4;
    ASSERT_EQ(semdraw_connect(&o, &c), SEMDRAW_E_INVAL);
    ASSERT_CONTAINS(semdraw_last_error(), "struct_size");
    ASSERT_EQ(semdraw_connect(&o, NULL), SEMDRAW_E_INVAL);
    /* NULL handles are refused, not dereferenced */
    ASSERT_EQ(semdraw_dispatch(NULL), SEMDRAW_E_INVAL);
    ASSERT_EQ(semdraw_get_fd(NULL), SEMDRAW_E_INVAL);
    ASSERT_EQ(semdraw_canvas_commit(NULL, NULL), SEMDRAW_E_INVAL);
    ASSERT_EQ(semdraw_frame_wait(NULL, 0, 0), SEMDRAW_E_INVAL);
    semdraw_disconnect(NULL);
    semdraw_canvas_release(NULL);
}

TEST(edits_reach_frames_through_events)
{
    const pid_t d = fixture_start_daemon(run_dir(), 5000);
    semdraw_client *c = connect_to(0, "test-sdk");
    seen s = {0};
    ASSERT_SD(semdraw_set_event_callback(c, on_event, &s));
    semdraw_client_info ci = {.struct_size = sizeof ci};
    ASSERT_SD(semdraw_client_info_get(c, &ci));
    ASSERT(ci.instance_id != 0 && ci.protocol_version == 1 && ci.lease_ms == 5000 && ci.model_state == SEMDRAW_MODEL_READY);

    semdraw_canvas *cv = new_canvas(c, 7, 0);
    semdraw_canvas_info info = {.struct_size = sizeof info};
    ASSERT_SD(semdraw_canvas_info_get(cv, &info));
    ASSERT(info.canvas_id > 0 && info.width == SIDE && info.seed == 7 && info.is_owner);
    uint8_t *left = half_mask(1), *right = half_mask(0);
    ASSERT_EQ(add_layer(cv, "a red fox", left), 0);
    ASSERT_SD(semdraw_canvas_set_background_color(cv, 0x336699));
    uint64_t seq = 0;
    ASSERT_SD(semdraw_canvas_commit(cv, &seq));
    ASSERT_EQ(seq, 1);
    ASSERT_SD(semdraw_stream_start(cv, 0));
    LOOP_UNTIL(c, s.frames > 0 && s.last_input >= 1, 60000);
    ASSERT_EQ(s.last_canvas, info.canvas_id);

    /* the newest frame, copied and zero-copy */
    uint8_t rgba[SIDE * SIDE * 4];
    semdraw_frame f = {.struct_size = sizeof f};
    ASSERT_SD(semdraw_frame_copy(cv, rgba, sizeof rgba, 0, &f));
    ASSERT(f.seq >= 1 && f.input_seq == 1 && f.width == SIDE && f.format == SEMDRAW_FORMAT_RGBA8 && rgba[3] == 255);
    ASSERT_SD(semdraw_frame_wait(cv, f.seq, 30000));
    ASSERT_SD(semdraw_frame_acquire(cv, &f));
    ASSERT(f.pixels && f.pixels[3] == 255);
    semdraw_frame_release(cv, &f); /* may be stale at full speed: either answer is valid here */

    /* a second layer and a prompt change: later frames carry the new input_seq */
    ASSERT_EQ(add_layer(cv, "a blue bird", right), 1);
    semdraw_layer edit = {.struct_size = sizeof edit, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK_STD,
                          .prompt = "a white fox", .mask_std = 4};
    ASSERT_SD(semdraw_layer_set(cv, 0, &edit));
    ASSERT_EQ(semdraw_layer_set(cv, 5, &edit), SEMDRAW_E_NOTFOUND);
    ASSERT_SD(semdraw_canvas_commit(cv, &seq));
    ASSERT_EQ(seq, 2);
    LOOP_UNTIL(c, s.last_input >= 2, 60000);
    /* refused edits name the problem and change nothing */
    semdraw_layer bad = {.struct_size = sizeof bad, .fields = SEMDRAW_LAYER_MASK_STRENGTH, .mask_strength = 7};
    ASSERT_EQ(semdraw_layer_set(cv, 1, &bad), SEMDRAW_E_INVAL);
    ASSERT_CONTAINS(semdraw_last_error(), "mask_strength");
    ASSERT_SD(semdraw_layer_remove(cv, 0));
    ASSERT_EQ(semdraw_layer_remove(cv, 0), SEMDRAW_E_NOTFOUND);

    /* status sees the stream */
    semdraw_status_info st = {.struct_size = sizeof st};
    ASSERT_SD(semdraw_status_get(c, &st));
    ASSERT(st.model_state == SEMDRAW_MODEL_READY && st.n_canvases == 1 && st.canvases[0].streaming &&
           st.canvases[0].fps > 0 && st.device_memory_bytes > 0);
    semdraw_status_free(&st);

    /* a snapshot of a stopped canvas: T frames, the last one complete under every commit */
    ASSERT_SD(semdraw_stream_stop(cv));
    ASSERT_SD(semdraw_canvas_commit(cv, &seq));
    uint64_t before = 0; /* a frame in flight when the stream stopped lands first */
    for (int i = 0; i < 100; i++) {
        ASSERT_SD(semdraw_frame_copy(cv, rgba, sizeof rgba, 0, &f));
        if (f.seq == before) break;
        before = f.seq;
        usleep(300 * 1000);
    }
    ASSERT_SD(semdraw_canvas_snapshot(cv, 60000));
    ASSERT_SD(semdraw_frame_copy(cv, rgba, sizeof rgba, 0, &f));
    ASSERT(f.seq == before + 5 && f.input_seq == seq && !(f.flags & SEMDRAW_FRAME_WARMUP));

    semdraw_canvas_release(cv);
    free(left), free(right);
    semdraw_disconnect(c);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

TEST(viewers_read_and_editors_need_the_key)
{
    const pid_t d = fixture_start_daemon(run_dir(), 5000);
    semdraw_client *owner = connect_to(0, "owner"), *other = connect_to(0, "other");
    seen s = {0};
    semdraw_set_event_callback(other, on_event, &s);
    semdraw_canvas *cv = new_canvas(owner, 3, 0);
    uint8_t *left = half_mask(1);
    add_layer(cv, "a cat", left);
    ASSERT_SD(semdraw_canvas_commit(cv, NULL));
    ASSERT_SD(semdraw_stream_start(cv, 0));
    semdraw_canvas_info info = {.struct_size = sizeof info};
    semdraw_canvas_info_get(cv, &info);

    /* a viewer: frames and events, no edits, no key */
    semdraw_canvas *view = NULL;
    ASSERT_SD(semdraw_canvas_attach(other, info.canvas_id, NULL, &view));
    semdraw_canvas_info vi = {.struct_size = sizeof vi};
    semdraw_canvas_info_get(view, &vi);
    ASSERT(vi.canvas_id == info.canvas_id && !vi.is_owner && vi.width == SIDE);
    ASSERT_SD(semdraw_frame_wait(view, 0, 60000));
    LOOP_UNTIL(other, s.frames > 0, 60000);
    semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT, .prompt = "a dog"};
    ASSERT_EQ(semdraw_layer_set(view, 0, &l), SEMDRAW_E_PERM);
    ASSERT_EQ(semdraw_canvas_commit(view, NULL), SEMDRAW_E_PERM);
    uint8_t key[SEMDRAW_KEY_SIZE];
    ASSERT_EQ(semdraw_canvas_key(view, key), SEMDRAW_E_PERM);
    semdraw_canvas *bad = NULL;
    ASSERT_EQ(semdraw_canvas_attach(other, 999, NULL, &bad), SEMDRAW_E_NOTFOUND);

    /* with the owner's key the other client edits too; a wrong key is refused */
    ASSERT_SD(semdraw_canvas_key(cv, key));
    key[0] ^= 1;
    ASSERT_EQ(semdraw_canvas_attach(other, info.canvas_id, key, &bad), SEMDRAW_E_PERM);
    ASSERT_CONTAINS(semdraw_last_error(), "wrong key");
    key[0] ^= 1;
    semdraw_canvas *ed = NULL;
    ASSERT_SD(semdraw_canvas_attach(other, info.canvas_id, key, &ed));
    ASSERT_SD(semdraw_layer_set(ed, 0, &l)); /* the daemon's layer id, passed through */
    uint64_t seq = 0;
    ASSERT_SD(semdraw_canvas_commit(ed, &seq));
    ASSERT_EQ(seq, 2);
    semdraw_canvas_release(ed); /* an editor's release does not close the owner's canvas */
    ASSERT_SD(semdraw_frame_wait(view, 0, 1000));

    /* the owner closes it: the viewer hears why, and its calls fail cleanly */
    ASSERT_SD(semdraw_canvas_close(cv));
    LOOP_UNTIL(other, s.closed == 1, 10000);
    ASSERT_CONTAINS(s.closed_reason, "closed by its owner");
    ASSERT_EQ(semdraw_frame_wait(view, UINT64_MAX - 1, 5000), SEMDRAW_E_CLOSED);
    ASSERT_EQ(semdraw_canvas_snapshot(view, 100), SEMDRAW_E_CLOSED);
    ASSERT_EQ(semdraw_stream_start(cv, 0), SEMDRAW_E_CLOSED);
    semdraw_canvas_release(view);
    semdraw_canvas_release(cv);
    free(left);
    semdraw_disconnect(other);
    semdraw_disconnect(owner);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

TEST(calls_on_a_disconnected_client_fail_cleanly)
{
    const pid_t d = fixture_start_daemon(run_dir(), 5000);
    semdraw_client *c = connect_to(0, "closing");
    semdraw_canvas *cv = new_canvas(c, 1, 0);
    semdraw_disconnect(c); /* closes the canvas in the daemon; the handle lives on */
    semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT, .prompt = "x"};
    ASSERT_EQ(semdraw_layer_add(cv, &l, NULL), SEMDRAW_E_CLOSED);
    ASSERT_EQ(semdraw_canvas_commit(cv, NULL), SEMDRAW_E_CLOSED);
    ASSERT_EQ(semdraw_stream_start(cv, 0), SEMDRAW_E_CLOSED);
    ASSERT_EQ(semdraw_canvas_close(cv), SEMDRAW_E_CLOSED);
    ASSERT_CONTAINS(semdraw_last_error(), "disconnected");
    semdraw_canvas_info info = {.struct_size = sizeof info};
    ASSERT_EQ(semdraw_canvas_info_get(cv, &info), SEMDRAW_E_CLOSED);
    semdraw_canvas_release(cv); /* frees the client too: it was its last handle */
    /* the daemon dropped the canvas and the session at once (goodbye), not after the lease */
    semdraw_client *probe = connect_to(0, "probe");
    semdraw_status_info st = {.struct_size = sizeof st};
    ASSERT_SD(semdraw_status_get(probe, &st));
    ASSERT(st.n_canvases == 0 && st.clients == 1);
    semdraw_status_free(&st);
    semdraw_disconnect(probe);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

TEST(daemon_restart_is_detected_and_canvases_restored)
{
    pid_t d = fixture_start_daemon(run_dir(), 5000);
    semdraw_client *c = connect_to(SEMDRAW_CONNECT_AUTO_RESTORE, "restoring");
    semdraw_client *plain = connect_to(0, "plain");
    seen s = {0}, ps = {0};
    semdraw_set_event_callback(c, on_event, &s);
    semdraw_set_event_callback(plain, on_event, &ps);
    semdraw_canvas *cv = new_canvas(c, 11, 0), *pcv = new_canvas(plain, 12, 0);
    uint8_t *left = half_mask(1), *right = half_mask(0);
    ASSERT_EQ(add_layer(cv, "first", left), 0);
    ASSERT_EQ(add_layer(cv, "second", right), 1);
    ASSERT_SD(semdraw_layer_remove(cv, 0)); /* after the restore the daemon calls layer 1 "0" */
    ASSERT_SD(semdraw_canvas_commit(cv, NULL));
    ASSERT_SD(semdraw_stream_start(cv, 0));
    ASSERT_SD(semdraw_frame_wait(cv, 0, 60000));
    semdraw_client_info before = {.struct_size = sizeof before};
    semdraw_client_info_get(c, &before);

    ASSERT_EQ(fixture_stop_daemon(d, SIGKILL), 128 + SIGKILL); /* mid-stream, rings left behind */
    d = fixture_start_daemon(run_dir(), 5000);
    LOOP_UNTIL(c, s.restarted == 1 && s.restored == 1, 60000);
    ASSERT(s.restored_canvas == cv && s.errors == 0);
    semdraw_client_info after = {.struct_size = sizeof after};
    semdraw_client_info_get(c, &after);
    ASSERT(after.instance_id != before.instance_id);
    /* the restored canvas streams again from its new ring, with its seed and layers */
    ASSERT_SD(semdraw_frame_wait(cv, 0, 60000));
    semdraw_canvas_info info = {.struct_size = sizeof info};
    ASSERT_SD(semdraw_canvas_info_get(cv, &info));
    ASSERT_EQ(info.seed, 11);
    semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT, .prompt = "second, renamed"};
    ASSERT_SD(semdraw_layer_set(cv, 1, &l));
    ASSERT_EQ(semdraw_layer_set(cv, 0, &l), SEMDRAW_E_NOTFOUND);
    ASSERT_SD(semdraw_canvas_commit(cv, NULL));

    /* without auto-restore the canvas is gone, and says so */
    LOOP_UNTIL(plain, ps.restarted == 1, 30000);
    ASSERT_EQ(semdraw_canvas_commit(pcv, NULL), SEMDRAW_E_DAEMON_RESTARTED);
    ASSERT_CONTAINS(semdraw_last_error(), "restart");
    semdraw_canvas_release(pcv);
    semdraw_canvas *fresh = new_canvas(plain, 13, 0); /* the client itself carries on */
    semdraw_canvas_release(fresh);

    semdraw_canvas_release(cv);
    free(left), free(right);
    semdraw_disconnect(plain);
    semdraw_disconnect(c);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

TEST(a_vanished_daemon_is_reported)
{
    const pid_t d = fixture_start_daemon(run_dir(), 400);
    semdraw_client *c = connect_to(0, "orphan");
    seen s = {0};
    semdraw_set_event_callback(c, on_event, &s);
    semdraw_canvas *cv = new_canvas(c, 1, 0);
    ASSERT_EQ(fixture_stop_daemon(d, SIGKILL), 128 + SIGKILL);
    LOOP_UNTIL(c, s.disconnected == 1, 10000);
    ASSERT_EQ(semdraw_canvas_commit(cv, NULL), SEMDRAW_E_TIMEDOUT);
    semdraw_canvas_release(cv);
    semdraw_disconnect(c); /* bounded: no daemon to say goodbye to */
}

TEST(memory_limit_refuses_what_does_not_fit)
{
    /* the tiny model holds ~25 MiB; a 64x64 canvas's frames need ~3 MiB more, a 512x512 one's ~190 */
    const char *const limit[] = {"--max-device-memory-mib", "30", NULL};
    const pid_t d = fixture_start_daemon_with(run_dir(), 5000, limit);
    semdraw_client *c = connect_to(0, "big");
    semdraw_status_info st = {.struct_size = sizeof st};
    ASSERT_SD(semdraw_status_get(c, &st));
    const uint64_t weights = st.device_memory_bytes;
    semdraw_status_free(&st);
    semdraw_canvas *small = new_canvas(c, 1, 0), *big = NULL;
    ASSERT_SD(semdraw_status_get(c, &st));
    ASSERT(st.device_memory_bytes > weights); /* a canvas's state counts */
    semdraw_status_free(&st);
    semdraw_canvas_desc d512 = {.struct_size = sizeof d512, .width = 512, .height = 512};
    ASSERT_EQ(semdraw_canvas_create(c, &d512, &big), SEMDRAW_E_NOMEM);
    ASSERT_CONTAINS(semdraw_last_error(), "max_device_memory_mib");
    ASSERT(big == NULL);
    ASSERT_SD(semdraw_status_get(c, &st));
    ASSERT(st.n_canvases == 1); /* the refused canvas is gone, the other one serves on */
    semdraw_status_free(&st);
    uint8_t *left = half_mask(1);
    add_layer(small, "a cat", left);
    ASSERT_SD(semdraw_canvas_commit(small, NULL));
    ASSERT_SD(semdraw_canvas_snapshot(small, 60000));
    free(left);
    semdraw_canvas_release(small);
    semdraw_disconnect(c);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

/*
 * Device memory running out mid-frame (max_device_memory_mib caps the
 * backend): 16 layers make a 64x64 canvas's frame need ~39 MiB of a 30 MiB
 * limit, while one layer needs ~28. That canvas's frame fails with a clear
 * error and its stream stops; another client's canvas, which shared the
 * round, streams on; the failed canvas is intact and renders once it fits.
 */
TEST(device_memory_running_out_fails_a_frame_not_the_daemon)
{
    const char *const limit[] = {"--max-device-memory-mib", "30", NULL};
    const pid_t d = fixture_start_daemon_with(run_dir(), 5000, limit);
    semdraw_client *ca = connect_to(0, "modest"), *cb = connect_to(0, "greedy");
    seen sa = {0}, sb = {0};
    ASSERT_SD(semdraw_set_event_callback(ca, on_event, &sa));
    ASSERT_SD(semdraw_set_event_callback(cb, on_event, &sb));
    semdraw_canvas *a = new_canvas(ca, 1, 0), *b = new_canvas(cb, 2, 0);
    uint8_t *left = half_mask(1);
    add_layer(a, "a cat", left);
    ASSERT_SD(semdraw_canvas_commit(a, NULL));
    ASSERT_SD(semdraw_stream_start(a, 0));
    LOOP_UNTIL(ca, sa.frames >= 2, 60000);

    uint32_t ids[16];
    for (int i = 0; i < 16; i++) ids[i] = add_layer(b, "a dog", left);
    ASSERT_SD(semdraw_canvas_commit(b, NULL));
    ASSERT_EQ(semdraw_canvas_snapshot(b, 60000), SEMDRAW_E_NOMEM);
    ASSERT_CONTAINS(semdraw_last_error(), "out of device memory");
    ASSERT_CONTAINS(semdraw_last_error(), "max_device_memory_mib");
    LOOP_UNTIL(cb, sb.canvas_errors == 1, 10000);
    ASSERT_EQ(sb.error_kind, SEMDRAW_CANVAS_ERROR_FRAME);
    ASSERT_EQ(sb.error_status, SEMDRAW_E_NOMEM);
    ASSERT_CONTAINS(sb.error_message, "frame: cpu: out of device memory");
    semdraw_frame f = {.struct_size = sizeof f};
    ASSERT_EQ(semdraw_frame_acquire(b, &f), SEMDRAW_E_AGAIN); /* nothing was published for it */
    semdraw_canvas_info info = {.struct_size = sizeof info};
    ASSERT_SD(semdraw_canvas_info_get(b, &info));
    ASSERT(!info.streaming);
    ASSERT_CONTAINS(info.last_error, "out of device memory");
    semdraw_canvas_info old = {.struct_size = (uint32_t)offsetof(semdraw_canvas_info, last_error)};
    old.last_error[0] = 'x'; /* a caller built against 0.1: nothing past its struct is written */
    ASSERT_SD(semdraw_canvas_info_get(b, &old));
    ASSERT(old.canvas_id == info.canvas_id && old.last_error[0] == 'x');
    semdraw_canvas *viewer = NULL; /* attached after the event: it learns of the failure from the daemon's status */
    ASSERT_SD(semdraw_canvas_attach(ca, info.canvas_id, NULL, &viewer));
    semdraw_status_info st = {.struct_size = sizeof st};
    ASSERT_SD(semdraw_status_get(ca, &st));
    semdraw_status_free(&st);
    semdraw_canvas_info seen_by_viewer = {.struct_size = sizeof seen_by_viewer};
    ASSERT_SD(semdraw_canvas_info_get(viewer, &seen_by_viewer));
    ASSERT_STREQ(seen_by_viewer.last_error, info.last_error);
    semdraw_canvas_release(viewer);

    const int before = sa.frames;
    LOOP_UNTIL(ca, sa.frames >= before + 3, 60000); /* the other canvas never stopped */
    ASSERT_EQ(sa.canvas_errors, 0);
    ASSERT_EQ(sa.closed, 0);

    for (int i = 1; i < 16; i++) ASSERT_SD(semdraw_layer_remove(b, ids[i]));
    ASSERT_SD(semdraw_canvas_commit(b, NULL));
    ASSERT_SD(semdraw_canvas_snapshot(b, 60000)); /* it fits again, and the canvas was kept */
    ASSERT_SD(semdraw_frame_acquire(b, &f));
    ASSERT(f.seq >= 4 && !(f.flags & SEMDRAW_FRAME_WARMUP));
    ASSERT_SD(semdraw_frame_release(b, &f));
    free(left);
    semdraw_canvas_release(a), semdraw_canvas_release(b);
    semdraw_disconnect(ca), semdraw_disconnect(cb);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

/* In a child: become `nobody`, in the group `gid` or in no group; then run `fn`, whose status is the exit code. */
static int as_other_user(gid_t gid, int in_group, int (*fn)(const char *ring, uint64_t canvas), const char *ring,
                         uint64_t canvas)
{
    pid_t p = fork();
    ASSERT(p >= 0);
    if (p == 0) {
        const gid_t groups[1] = {gid};
        if (setgroups(in_group ? 1 : 0, groups) || setgid(65534) || setuid(65534)) _exit(99);
        _exit(fn(ring, canvas));
    }
    int status = 0;
    ASSERT(waitpid(p, &status, 0) == p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* An outsider: no connection, no ring. */
static int outsider(const char *ring, uint64_t canvas)
{
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = run_dir(), .timeout_ms = 500};
    semdraw_client *c = NULL;
    if (semdraw_connect(&o, &c) != SEMDRAW_E_TIMEDOUT) return 1;
    int fd = open(ring, O_RDONLY);
    if (fd >= 0 || errno != EACCES) return 2;
    (void)canvas;
    return 0;
}

/* A member of the semdraw group: connects, watches, cannot edit someone else's canvas. */
static int member(const char *ring, uint64_t canvas)
{
    semdraw_connect_opts o = {.struct_size = sizeof o, .runtime_dir = run_dir(), .timeout_ms = 20000};
    semdraw_client *c = NULL;
    semdraw_canvas *view = NULL;
    if (semdraw_connect(&o, &c)) return 1;
    if (semdraw_canvas_attach(c, canvas, NULL, &view) || semdraw_frame_wait(view, 0, 20000)) return 2;
    if (semdraw_canvas_commit(view, NULL) != SEMDRAW_E_PERM) return 3;
    int fd = open(ring, O_RDONLY);
    if (fd < 0) return 4;
    close(fd);
    if (open(ring, O_RDWR) >= 0) return 5; /* read-only to everyone but the daemon */
    semdraw_canvas_release(view);
    semdraw_disconnect(c);
    return 0;
}

TEST(other_users_need_the_group)
{
    if (getuid() != 0) SKIP("needs root to test with other uids"); /* CI runs as root */
    const gid_t group = 47110; /* stands for the semdraw group */
    ASSERT(chmod(semd_test_tmpdir(), 0711) == 0); /* only the runtime directory's own mode protects it */
    ASSERT(mkdir(run_dir(), 0750) == 0 && chown(run_dir(), 0, group) == 0 && chmod(run_dir(), 02750) == 0);
    const pid_t d = fixture_start_daemon(run_dir(), 5000);
    semdraw_client *c = connect_to(0, "owner");
    semdraw_canvas *cv = new_canvas(c, 1, 0);
    ASSERT_SD(semdraw_stream_start(cv, 0));
    ASSERT_SD(semdraw_frame_wait(cv, 0, 60000));
    semdraw_canvas_info info = {.struct_size = sizeof info};
    semdraw_canvas_info_get(cv, &info);
    char ring[700];
    snprintf(ring, sizeof ring, "%s/canvas-%llu-1.ring", run_dir(), (unsigned long long)info.canvas_id);
    struct stat st;
    ASSERT(stat(ring, &st) == 0 && (st.st_mode & 0777) == 0640 && st.st_gid == group);
    char sock[700];
    snprintf(sock, sizeof sock, "%s/control.sock", run_dir());
    ASSERT(stat(sock, &st) == 0 && (st.st_mode & 0777) == 0660 && st.st_gid == group);
    ASSERT_EQ(as_other_user(group, 0, outsider, ring, info.canvas_id), 0);
    ASSERT_EQ(as_other_user(group, 1, member, ring, info.canvas_id), 0);
    semdraw_canvas_release(cv);
    semdraw_disconnect(c);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

static void unmount_run(void) { umount2(run_dir(), MNT_DETACH); }

TEST(a_full_runtime_directory_refuses_canvases)
{
    ASSERT(mkdir(run_dir(), 0750) == 0);
    if (getuid() != 0 || mount("tmpfs", run_dir(), "tmpfs", 0, "size=1m,mode=0750") != 0)
        SKIP("cannot mount a small tmpfs here (%s)", strerror(errno));
    atexit(unmount_run); /* also when an assertion ends the test early */
    const pid_t d = fixture_start_daemon(run_dir(), 5000);
    semdraw_client *c = connect_to(0, "full");
    semdraw_canvas *small = new_canvas(c, 1, 0), *big = NULL; /* a 64x64 ring: ~50 KiB */
    ASSERT_SD(semdraw_stream_start(small, 0));
    semdraw_canvas_desc d512 = {.struct_size = sizeof d512, .width = 512, .height = 512}; /* a 3 MiB ring */
    ASSERT_EQ(semdraw_canvas_create(c, &d512, &big), SEMDRAW_E_IO);
    ASSERT_CONTAINS(semdraw_last_error(), "No space left on device");
    /* the daemon is alive and the other canvas streams on */
    semdraw_frame f = {.struct_size = sizeof f};
    uint8_t px[SIDE * SIDE * 4];
    ASSERT_SD(semdraw_frame_wait(small, 0, 60000));
    ASSERT_SD(semdraw_frame_copy(small, px, sizeof px, 0, &f));
    ASSERT_SD(semdraw_frame_wait(small, f.seq + 2, 60000));
    semdraw_canvas_release(small);
    semdraw_disconnect(c);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

/* Child: a canvas of its own, then a frame held while the test kills it. */
static void holder(int out)
{
    semdraw_client *c = connect_to(0, "holder");
    semdraw_canvas *cv = new_canvas(c, 2, 0);
    semdraw_frame f = {.struct_size = sizeof f};
    if (semdraw_stream_start(cv, 0) || semdraw_frame_wait(cv, 0, 60000) || semdraw_frame_acquire(cv, &f)) _exit(2);
    ASSERT(write(out, "h", 1) == 1);
    pause(); /* SIGKILLed while holding the frame */
    _exit(3);
}

/* Child: a canvas of its own, then it stops (SIGSTOP: no reads, no heartbeats); continued, it finds the canvas gone. */
static void staller(int out)
{
    semdraw_client *c = connect_to(0, "staller");
    seen s = {0};
    semdraw_set_event_callback(c, on_event, &s);
    semdraw_canvas *cv = new_canvas(c, 3, 0);
    if (semdraw_stream_start(cv, 0) || semdraw_frame_wait(cv, 0, 60000)) _exit(2);
    ASSERT(write(out, "s", 1) == 1);
    raise(SIGSTOP);
    LOOP_UNTIL(c, s.closed == 1, 10000);
    ASSERT_CONTAINS(s.closed_reason, "stopped heartbeating");
    ASSERT_EQ(semdraw_canvas_commit(cv, NULL), SEMDRAW_E_CLOSED);
    semdraw_canvas_release(cv);
    semdraw_disconnect(c);
    _exit(0);
}

TEST(clients_that_die_or_stall_hurt_nobody)
{
    const pid_t d = fixture_start_daemon(run_dir(), 1000);
    int fds[2];
    ASSERT(pipe(fds) == 0);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        ASSERT((kids[i] = fork()) >= 0);
        if (kids[i] == 0) {
            close(fds[0]);
            i == 0 ? holder(fds[1]) : staller(fds[1]);
        }
    }
    char got[2];
    ASSERT(read(fds[0], got, 1) == 1 && read(fds[0], got + 1, 1) == 1);
    int status = 0;
    ASSERT(waitpid(kids[1], &status, WUNTRACED) == kids[1] && WIFSTOPPED(status));
    kill(kids[0], SIGKILL);
    ASSERT(waitpid(kids[0], &status, 0) == kids[0]);

    /* this client streams on meanwhile, and the other two canvases are reclaimed after the lease */
    semdraw_client *c = connect_to(0, "survivor");
    semdraw_canvas *cv = new_canvas(c, 1, 0);
    ASSERT_SD(semdraw_stream_start(cv, 0));
    uint64_t seq = 0;
    semdraw_status_info st = {.struct_size = sizeof st};
    for (int i = 0; i < 200; i++) {
        ASSERT_SD(semdraw_frame_wait(cv, seq, 30000));
        semdraw_frame f = {.struct_size = sizeof f};
        uint8_t px[SIDE * SIDE * 4];
        ASSERT_SD(semdraw_frame_copy(cv, px, sizeof px, 0, &f));
        seq = f.seq;
        semdraw_dispatch(c);
        ASSERT_SD(semdraw_status_get(c, &st));
        const uint32_t n = st.n_canvases;
        semdraw_status_free(&st);
        if (n == 1) break;
        usleep(50000);
    }
    ASSERT_SD(semdraw_status_get(c, &st));
    ASSERT(st.n_canvases == 1 && st.canvases[0].canvas_id != 0);
    semdraw_status_free(&st);
    kill(kids[1], SIGCONT);
    ASSERT(waitpid(kids[1], &status, 0) == kids[1]);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    semdraw_canvas_release(cv);
    semdraw_disconnect(c);
    ASSERT_EQ(fixture_stop_daemon(d, SIGTERM), 0);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(clients_that_die_or_stall_hurt_nobody),
    TEST_ENTRY(a_full_runtime_directory_refuses_canvases),
    TEST_ENTRY(other_users_need_the_group),
    TEST_ENTRY(memory_limit_refuses_what_does_not_fit),
    TEST_ENTRY(device_memory_running_out_fails_a_frame_not_the_daemon),
    TEST_ENTRY(versions_and_errors),
    TEST_ENTRY(edits_reach_frames_through_events),
    TEST_ENTRY(viewers_read_and_editors_need_the_key),
    TEST_ENTRY(calls_on_a_disconnected_client_fail_cleanly),
    TEST_ENTRY(daemon_restart_is_detected_and_canvases_restored),
    TEST_ENTRY(a_vanished_daemon_is_reported),
    {NULL, NULL},
};

SEMD_TEST_MAIN(tests)
