/*
 * semdrawd serve as a real process: a private daemon on the CPU backend with
 * the tiny model in a temporary runtime directory, driven over its ZeroMQ
 * control socket, frames read from the shared-memory rings.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ring_reader.h"
#include "golden_util.h"
#include "daemon_fixture.h"
#include "semdraw/v1/control.pb-c.h"
#include "semdraw/v1/ring_abi.h"

typedef Semdraw__V1__Envelope Envelope;

typedef struct daemon {
    pid_t pid;
    char dir[512];
    void *ctx;
} daemon_t;

static daemon_t start_daemon(int lease_ms)
{
    daemon_t d = {0};
    snprintf(d.dir, sizeof d.dir, "%s/run", semd_test_tmpdir());
    d.pid = fixture_start_daemon(d.dir, lease_ms);
    d.ctx = zmq_ctx_new();
    return d;
}

static int stop_daemon(daemon_t *d)
{
    const int rc = fixture_stop_daemon(d->pid, SIGTERM);
    zmq_ctx_term(d->ctx);
    return rc;
}

static void wait_ready(void *s);

/* A DEALER on the daemon's control socket, once the daemon's model is loaded. */
static void *client(daemon_t *d)
{
    void *s = zmq_socket(d->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    char ep[600];
    snprintf(ep, sizeof ep, "ipc://%s/control.sock", d->dir);
    ASSERT(zmq_connect(s, ep) == 0);
    wait_ready(s);
    return s;
}

static uint64_t next_request = 1;

static Envelope *call_raw(void *s, const void *buf, size_t n)
{
    ASSERT(zmq_send(s, buf, n, 0) == (int)n);
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    ASSERT(zmq_poll(&item, 1, 30000) == 1); /* every request gets an answer */
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    ASSERT(zmq_msg_recv(&msg, s, 0) >= 0);
    Envelope *e = semdraw__v1__envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    ASSERT(e);
    return e;
}

static Envelope *call(void *s, Envelope *e)
{
    e->has_request_id = 1, e->request_id = next_request++;
    size_t n = semdraw__v1__envelope__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    semdraw__v1__envelope__pack(e, buf);
    Envelope *r = call_raw(s, buf, n);
    ASSERT_EQ(r->request_id, e->request_id);
    free(buf);
    return r;
}

static Semdraw__V1__Reply *expect_reply(Envelope *r)
{
    if (r->body_case == SEMDRAW__V1__ENVELOPE__BODY_ERROR)
        FAIL("error reply %d: %s", r->error->code, r->error->message);
    ASSERT_EQ(r->body_case, SEMDRAW__V1__ENVELOPE__BODY_REPLY);
    return r->reply;
}

static void expect_error(Envelope *r, const char *text)
{
    ASSERT_EQ(r->body_case, SEMDRAW__V1__ENVELOPE__BODY_ERROR);
    ASSERT_CONTAINS(r->error->message, text);
    semdraw__v1__envelope__free_unpacked(r, NULL);
}

#define BODY(env, field, CASE, value) ((env).body_case = SEMDRAW__V1__ENVELOPE__BODY_##CASE, (env).field = (value))

/* The socket answers while the model loads (status says LOADING); canvases wait for READY. */
static void wait_ready(void *s)
{
    for (int i = 0; i < 600; i++) {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__GetStatus gs = SEMDRAW__V1__GET_STATUS__INIT;
        BODY(e, get_status, GET_STATUS, &gs);
        Envelope *r = call(s, &e);
        const Semdraw__V1__Status *st = expect_reply(r)->status;
        ASSERT(st->model_state != SEMDRAW__V1__MODEL_STATE__MODEL_FAILED);
        const int ready = st->model_state == SEMDRAW__V1__MODEL_STATE__MODEL_READY;
        ASSERT(st->load_progress >= 0.0f && st->load_progress <= 1.0f && (!ready || st->load_progress == 1.0f));
        semdraw__v1__envelope__free_unpacked(r, NULL);
        if (ready) return;
        usleep(50000);
    }
    FAIL("the model did not load in 30 s");
}

static uint64_t create(void *s, char **ring)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__CreateCanvas cc = SEMDRAW__V1__CREATE_CANVAS__INIT;
    cc.has_width = cc.has_height = 1, cc.width = 64, cc.height = 64;
    cc.has_seed = 1, cc.seed = 5;
    BODY(e, create_canvas, CREATE_CANVAS, &cc);
    Envelope *r = call(s, &e);
    Semdraw__V1__CanvasInfo *info = expect_reply(r)->canvas;
    ASSERT(info && info->ring_path);
    uint64_t id = info->canvas_id;
    *ring = strdup(info->ring_path);
    semdraw__v1__envelope__free_unpacked(r, NULL);
    return id;
}

static uint64_t add_layer_and_commit(void *s, uint64_t canvas)
{
    uint8_t rle[2 * 17];
    for (int i = 0; i < 16; i++) rle[2 * i] = 255, rle[2 * i + 1] = i < 8 ? 0 : 255;
    rle[32] = 16, rle[33] = 255; /* 16 x 255 + 16 = 4096 = 64 x 64 */
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetLayer sl = SEMDRAW__V1__SET_LAYER__INIT;
    Semdraw__V1__Mask mask = SEMDRAW__V1__MASK__INIT;
    mask.has_width = mask.has_height = 1, mask.width = mask.height = 64;
    mask.has_rle = 1, mask.rle.data = rle, mask.rle.len = sizeof rle;
    sl.has_canvas_id = 1, sl.canvas_id = canvas, sl.prompt = "a red apple", sl.mask = &mask;
    BODY(e, set_layer, SET_LAYER, &sl);
    Envelope *r = call(s, &e);
    ASSERT_EQ(expect_reply(r)->layer_added->layer_id, 0);
    semdraw__v1__envelope__free_unpacked(r, NULL);
    Envelope c = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Commit cm = SEMDRAW__V1__COMMIT__INIT;
    cm.has_canvas_id = 1, cm.canvas_id = canvas;
    BODY(c, commit, COMMIT, &cm);
    r = call(s, &c);
    uint64_t seq = expect_reply(r)->committed->input_seq;
    semdraw__v1__envelope__free_unpacked(r, NULL);
    return seq;
}

static void start_stream(void *s, uint64_t canvas)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__StartStream st = SEMDRAW__V1__START_STREAM__INIT;
    st.has_canvas_id = 1, st.canvas_id = canvas;
    BODY(e, start_stream, START_STREAM, &st);
    semdraw__v1__envelope__free_unpacked(call(s, &e), NULL);
}

static void hello(void *s, uint64_t *instance);

/* A frame newer than `after`; with a socket, saying hello now and then as live clients do. */
static semdraw_ring_frame wait_frame_on(semdraw_ring_reader *r, uint64_t after, void *heartbeat)
{
    static uint8_t buf[64 * 64 * 4];
    semdraw_ring_frame f = {0};
    for (int i = 0; i < 3000; i++) {
        if (semdraw_ring_copy_latest(r, buf, sizeof buf, &f) == SEMDRAW_RING_OK && f.seq > after) return f;
        if (heartbeat && i % 10 == 0) {
            uint64_t ignored;
            hello(heartbeat, &ignored);
        }
        usleep(10000);
    }
    FAIL("no frame after %llu", (unsigned long long)after);
}

static semdraw_ring_frame wait_frame(semdraw_ring_reader *r, uint64_t after) { return wait_frame_on(r, after, NULL); }

TEST(session_canvas_stream_and_shutdown)
{
    daemon_t d = start_daemon(10000);
    void *a = client(&d);
    Envelope hello = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Hello h = SEMDRAW__V1__HELLO__INIT;
    h.client_name = "test";
    BODY(hello, hello, HELLO, &h);
    Envelope *r = call(a, &hello);
    Semdraw__V1__HelloReply *hr = expect_reply(r)->hello;
    ASSERT_EQ(hr->chosen_version, 1);
    const uint64_t instance = hr->instance_id;
    ASSERT(instance != 0 && r->instance_id == instance);
    semdraw__v1__envelope__free_unpacked(r, NULL);

    char *ring;
    uint64_t canvas = create(a, &ring);
    ASSERT_EQ(add_layer_and_commit(a, canvas), 1);
    start_stream(a, canvas);
    semdraw_ring_reader *rd;
    ASSERT_EQ(semdraw_ring_open(ring, &rd), SEMDRAW_RING_OK);
    semdraw_ring_info info;
    semdraw_ring_get_info(rd, &info);
    ASSERT_EQ(info.instance_id, instance);
    semdraw_ring_frame f1 = wait_frame(rd, 0), f2 = wait_frame(rd, f1.seq);
    ASSERT(f2.seq > f1.seq && f1.input_seq == 1 && f2.input_seq == 1);

    /* frame-ready hints on the PUB socket, topic C<canvas> */
    void *sub = zmq_socket(d.ctx, ZMQ_SUB);
    char ep[600], topic[32];
    snprintf(ep, sizeof ep, "ipc://%s/events.sock", d.dir);
    snprintf(topic, sizeof topic, "C%llu", (unsigned long long)canvas);
    ASSERT(zmq_connect(sub, ep) == 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    ASSERT(zmq_poll(&item, 1, 30000) == 1);
    char got_topic[32] = {0};
    ASSERT(zmq_recv(sub, got_topic, sizeof got_topic - 1, 0) > 0);
    ASSERT_STREQ(got_topic, topic);
    uint8_t hbuf[256];
    int hn = zmq_recv(sub, hbuf, sizeof hbuf, 0);
    Envelope *hint = semdraw__v1__envelope__unpack(NULL, (size_t)hn, hbuf);
    ASSERT(hint && hint->body_case == SEMDRAW__V1__ENVELOPE__BODY_EVENT);
    ASSERT(hint->event->frame_ready->canvas_id == canvas && hint->event->frame_ready->seq > 0);
    ASSERT_EQ(hint->event->frame_ready->input_seq, 1);
    semdraw__v1__envelope__free_unpacked(hint, NULL);
    zmq_close(sub);

    /* status: the model's memory, and how the canvas streams */
    Envelope ge = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__GetStatus gs = SEMDRAW__V1__GET_STATUS__INIT;
    BODY(ge, get_status, GET_STATUS, &gs);
    Envelope *sr = call(a, &ge);
    Semdraw__V1__Status *st = expect_reply(sr)->status;
    ASSERT(st->model_state == SEMDRAW__V1__MODEL_STATE__MODEL_READY && st->clients == 1);
    ASSERT(st->device_memory_bytes > 100000 && st->has_queue_depth);
    ASSERT(st->n_canvases == 1 && st->canvases[0]->canvas_id == canvas && st->canvases[0]->streaming);
    ASSERT(st->canvases[0]->fps > 0.0f && st->canvases[0]->latency_ms > 0.0f);
    semdraw__v1__envelope__free_unpacked(sr, NULL);

    /* hostile input: each gets an Error, and the daemon keeps serving */
    expect_error(call_raw(a, "\xff\xff\xff garbage", 12), "not a valid Envelope");
    ASSERT(zmq_send(a, "x", 1, ZMQ_SNDMORE) == 1);
    expect_error(call_raw(a, "y", 1), "one message per request");
    Envelope bad = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetLayer sl = SEMDRAW__V1__SET_LAYER__INIT;
    sl.has_canvas_id = 1, sl.canvas_id = canvas, sl.prompt = "caf\xe9";
    BODY(bad, set_layer, SET_LAYER, &sl);
    expect_error(call(a, &bad), "invalid UTF-8");
    Semdraw__V1__Mask small = SEMDRAW__V1__MASK__INIT;
    small.has_width = small.has_height = 1, small.width = small.height = 8;
    sl.prompt = "ok", sl.mask = &small;
    expect_error(call(a, &bad), "the canvas is 64x64");
    Envelope big = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__CreateCanvas cc = SEMDRAW__V1__CREATE_CANVAS__INIT;
    cc.has_width = cc.has_height = 1, cc.width = 100000, cc.height = 64;
    BODY(big, create_canvas, CREATE_CANVAS, &cc);
    expect_error(call(a, &big), "100000x64");

    /* a second client may watch but not edit */
    void *b = client(&d);
    Envelope att = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__AttachCanvas ac = SEMDRAW__V1__ATTACH_CANVAS__INIT;
    ac.has_canvas_id = 1, ac.canvas_id = canvas;
    BODY(att, attach_canvas, ATTACH_CANVAS, &ac);
    r = call(b, &att);
    ASSERT_STREQ(expect_reply(r)->canvas->ring_path, ring);
    semdraw__v1__envelope__free_unpacked(r, NULL);
    sl.mask = NULL;
    expect_error(call(b, &bad), "belongs to another session");

    wait_frame(rd, wait_frame(rd, 0).seq); /* still streaming after all that */
    zmq_close(a), zmq_close(b);
    ASSERT_EQ(stop_daemon(&d), 0);                       /* SIGTERM: a clean exit */
    ASSERT_EQ(semdraw_ring_state(rd), SEMDRAW_RING_RETIRED);
    ASSERT(access(ring, F_OK) != 0);                      /* rings and socket removed */
    char sock[600];
    snprintf(sock, sizeof sock, "%s/control.sock", d.dir);
    ASSERT(access(sock, F_OK) != 0);
    semdraw_ring_close(rd);
    free(ring);
}

TEST(silent_clients_lose_their_canvases)
{
    daemon_t d = start_daemon(400);
    void *a = client(&d);
    char *ring;
    uint64_t canvas = create(a, &ring);
    semdraw_ring_reader *rd;
    ASSERT_EQ(semdraw_ring_open(ring, &rd), SEMDRAW_RING_OK);
    void *sub = zmq_socket(d.ctx, ZMQ_SUB); /* viewers hear why the canvas went away */
    char ep[600], topic[32];
    snprintf(ep, sizeof ep, "ipc://%s/events.sock", d.dir);
    snprintf(topic, sizeof topic, "C%llu", (unsigned long long)canvas);
    ASSERT(zmq_connect(sub, ep) == 0);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    for (int i = 0; i < 100 && semdraw_ring_state(rd) != SEMDRAW_RING_RETIRED; i++) usleep(50000);
    ASSERT_EQ(semdraw_ring_state(rd), SEMDRAW_RING_RETIRED); /* the lease ran out */
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    ASSERT(zmq_poll(&item, 1, 5000) == 1);
    char got[32] = {0};
    ASSERT(zmq_recv(sub, got, sizeof got - 1, 0) > 0);
    uint8_t buf[512];
    int n = zmq_recv(sub, buf, sizeof buf, 0);
    Envelope *ev = semdraw__v1__envelope__unpack(NULL, (size_t)n, buf);
    ASSERT(ev && ev->body_case == SEMDRAW__V1__ENVELOPE__BODY_EVENT);
    ASSERT_EQ(ev->event->kind_case, SEMDRAW__V1__EVENT__KIND_CANVAS_CLOSED);
    ASSERT_EQ(ev->event->canvas_closed->canvas_id, canvas);
    ASSERT_CONTAINS(ev->event->canvas_closed->reason, "heartbeat");
    semdraw__v1__envelope__free_unpacked(ev, NULL);
    zmq_close(sub);
    zmq_close(a);
    ASSERT_EQ(stop_daemon(&d), 0);
    semdraw_ring_close(rd);
    free(ring);
}

static void hello(void *s, uint64_t *instance)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Hello h = SEMDRAW__V1__HELLO__INIT;
    BODY(e, hello, HELLO, &h);
    Envelope *r = call(s, &e);
    *instance = expect_reply(r)->hello->instance_id;
    semdraw__v1__envelope__free_unpacked(r, NULL);
}

/*
 * One client process: its own canvas and edits, a viewer on a neighbour's
 * canvas; every frame it reads must be newer than the last and reflect a
 * commit it made. Exits 0 when it saw `frames` frames of its own.
 */
static void client_process(daemon_t *d, int index, int frames, const char *neighbour_ring)
{
    void *ctx = zmq_ctx_new();
    daemon_t mine = *d;
    mine.ctx = ctx;
    void *s = client(&mine);
    char *ring;
    uint64_t canvas = create(s, &ring);
    uint64_t committed = add_layer_and_commit(s, canvas);
    start_stream(s, canvas);
    semdraw_ring_reader *rd, *nb = NULL;
    ASSERT_EQ(semdraw_ring_open(ring, &rd), SEMDRAW_RING_OK);
    if (neighbour_ring) semdraw_ring_open(neighbour_ring, &nb); /* it may be gone already */
    uint64_t last = 0;
    for (int f = 0; f < frames; f++) {
        semdraw_ring_frame fr = wait_frame_on(rd, last, s);
        ASSERT(fr.seq > last && fr.input_seq >= 1 && fr.input_seq <= committed);
        last = fr.seq;
        if (f == frames / 2) { /* an edit mid-stream */
            Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
            Semdraw__V1__SetLayer sl = SEMDRAW__V1__SET_LAYER__INIT;
            sl.has_canvas_id = 1, sl.canvas_id = canvas, sl.has_layer_id = 1, sl.layer_id = 0;
            sl.has_mask_std = 1, sl.mask_std = 2.0f + (float)index;
            BODY(e, set_layer, SET_LAYER, &sl);
            semdraw__v1__envelope__free_unpacked(call(s, &e), NULL);
            Envelope c = SEMDRAW__V1__ENVELOPE__INIT;
            Semdraw__V1__Commit cm = SEMDRAW__V1__COMMIT__INIT;
            cm.has_canvas_id = 1, cm.canvas_id = canvas;
            BODY(c, commit, COMMIT, &cm);
            Envelope *r = call(s, &c);
            committed = expect_reply(r)->committed->input_seq;
            semdraw__v1__envelope__free_unpacked(r, NULL);
        }
        if (nb) {
            uint8_t tmp[64 * 64 * 4];
            semdraw_ring_frame nf;
            int rc = semdraw_ring_copy_latest(nb, tmp, sizeof tmp, &nf);
            ASSERT(rc == SEMDRAW_RING_OK || rc == SEMDRAW_RING_EAGAIN || rc == SEMDRAW_RING_ESTALE ||
                   rc == SEMDRAW_RING_ERETIRED);
        }
    }
    ASSERT(last >= (uint64_t)frames);
    _exit(0);
}

/* Eight clients at once, one of them killed with SIGKILL; nobody else stalls. */
TEST(eight_clients_and_a_killed_one)
{
    daemon_t d = start_daemon(1500);
    void *probe = client(&d);
    uint64_t instance;
    hello(probe, &instance);
    char *victim_ring;
    const uint64_t victim = create(probe, &victim_ring); /* stands for the client we will kill */
    (void)victim;
    pid_t killed = fork();
    ASSERT(killed >= 0);
    if (killed == 0) { /* a client that streams and is then killed without a goodbye */
        /* a forked child must not touch the parent's ZeroMQ context, not even to end it */
        daemon_t mine = d;
        mine.ctx = zmq_ctx_new();
        void *s = client(&mine);
        char *ring;
        uint64_t canvas = create(s, &ring);
        add_layer_and_commit(s, canvas);
        start_stream(s, canvas);
        FILE *f = fopen(semd_test_path(semd_test_tmpdir(), "victim_ring"), "w");
        fputs(ring, f);
        fclose(f);
        for (;;) pause();
    }
    pid_t kids[8];
    for (int i = 0; i < 8; i++) {
        kids[i] = fork();
        ASSERT(kids[i] >= 0);
        if (kids[i] == 0) {
            alarm(120); /* a stuck client fails the test instead of hanging it */
            client_process(&d, i, 8, victim_ring);
        }
    }
    /* kill the victim once its ring exists, then check the lease reclaims it */
    char ring[600] = {0};
    for (int i = 0; i < 600 && !ring[0]; i++) {
        FILE *f = fopen(semd_test_path(semd_test_tmpdir(), "victim_ring"), "r");
        if (f) {
            if (!fgets(ring, sizeof ring, f)) ring[0] = '\0';
            fclose(f);
        }
        if (!ring[0]) usleep(50000);
    }
    ASSERT(ring[0]);
    semdraw_ring_reader *vr;
    ASSERT_EQ(semdraw_ring_open(ring, &vr), SEMDRAW_RING_OK);
    kill(killed, SIGKILL);
    waitpid(killed, NULL, 0);
    for (int i = 0; i < 8; i++) {
        int status;
        ASSERT(waitpid(kids[i], &status, 0) == kids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("client %d failed", i);
    }
    for (int i = 0; i < 100 && semdraw_ring_state(vr) != SEMDRAW_RING_RETIRED; i++) usleep(50000);
    ASSERT_EQ(semdraw_ring_state(vr), SEMDRAW_RING_RETIRED); /* reclaimed after the lease */
    semdraw_ring_close(vr);
    zmq_close(probe);
    ASSERT_EQ(stop_daemon(&d), 0);

    /* a restarted daemon has a new instance id, which is how clients notice */
    daemon_t again = start_daemon(600);
    void *c2 = client(&again);
    uint64_t instance2;
    hello(c2, &instance2);
    ASSERT(instance2 != instance);
    zmq_close(c2);
    ASSERT_EQ(stop_daemon(&again), 0);
    free(victim_ring);
}

/* Under systemd's watchdog the daemon says READY=1 and then pings while its engine runs. */
TEST(watchdog_pings_while_the_engine_runs)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/notify.sock", semd_test_tmpdir());
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    setenv("NOTIFY_SOCKET", addr.sun_path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    daemon_t d = start_daemon(10000);
    int ready = 0, pings = 0;
    for (int i = 0; i < 100 && pings < 3; i++) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char msg[512];
        ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
        if (n <= 0) continue;
        msg[n] = 0;
        ready |= strstr(msg, "READY=1") != NULL;
        if (strstr(msg, "WATCHDOG=1")) {
            ASSERT(ready); /* no pings before the model is up */
            pings++;
        }
    }
    ASSERT(ready);
    ASSERT_EQ(pings, 3); /* every 100 ms: an idle engine is a healthy one */
    ASSERT_EQ(stop_daemon(&d), 0);
    close(fd);
}

/* set_params on a canvas: done, or the error's message. */
static void set_params(void *s, Semdraw__V1__SetCanvasParams *m, const char *error)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    BODY(e, set_params, SET_PARAMS, m);
    Envelope *r = call(s, &e);
    if (error) return expect_error(r, error);
    ASSERT_EQ(expect_reply(r)->result_case, SEMDRAW__V1__REPLY__RESULT_DONE);
    semdraw__v1__envelope__free_unpacked(r, NULL);
}

static uint64_t commit(void *s, uint64_t canvas)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Commit cm = SEMDRAW__V1__COMMIT__INIT;
    cm.has_canvas_id = 1, cm.canvas_id = canvas;
    BODY(e, commit, COMMIT, &cm);
    Envelope *r = call(s, &e);
    const uint64_t seq = expect_reply(r)->committed->input_seq;
    semdraw__v1__envelope__free_unpacked(r, NULL);
    return seq;
}

/* A snapshot of a canvas that is not streaming: its last frame's pixels (64 x 64 RGBA) and input_seq. */
static uint64_t snapshot_pixels(void *s, uint64_t canvas, const char *ring, uint8_t *px)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Snapshot sn = SEMDRAW__V1__SNAPSHOT__INIT;
    sn.has_canvas_id = 1, sn.canvas_id = canvas;
    BODY(e, snapshot, SNAPSHOT, &sn);
    Envelope *r = call(s, &e);
    const uint64_t frames = expect_reply(r)->snapshot->frames;
    semdraw__v1__envelope__free_unpacked(r, NULL);
    semdraw_ring_reader *rd;
    ASSERT_EQ(semdraw_ring_open(ring, &rd), SEMDRAW_RING_OK);
    semdraw_ring_frame f = {0};
    for (int i = 0; i < 3000; i++) {
        if (semdraw_ring_copy_latest(rd, px, 64 * 64 * 4, &f) == SEMDRAW_RING_OK && f.seq >= frames) break;
        usleep(10000);
    }
    ASSERT(f.seq == frames); /* a fresh canvas: exactly the snapshot's frames */
    semdraw_ring_close(rd);
    return f.input_seq;
}

/*
 * Every live parameter changes at the next commit: three canvases with the
 * same seed and layer, snapshotted one after another (so that each runs alone
 * and the same arithmetic gives the same pixels). Setting the defaults changes
 * nothing; other values show in the frames made after the commit. Values out
 * of range are refused before they become an edit.
 */
TEST(live_params_change_at_the_next_commit)
{
    daemon_t d = start_daemon(10000);
    void *a = client(&d);
    char *ring[3];
    uint64_t canvas[3];
    for (int i = 0; i < 3; i++) {
        canvas[i] = create(a, &ring[i]);
        ASSERT_EQ(add_layer_and_commit(a, canvas[i]), 1);
    }

    Semdraw__V1__SetCanvasParams m = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
    m.has_canvas_id = 1, m.canvas_id = canvas[0];
    m.has_guidance_scale = 1, m.guidance_scale = 50.0f;
    set_params(a, &m, "set_params.guidance_scale: 50 outside [0, 30]");
    m.guidance_scale = 3.0f, m.has_mask_type = 1, m.mask_type = (Semdraw__V1__MaskType)7;
    set_params(a, &m, "set_params.mask_type: unknown value 7");
    m.mask_type = SEMDRAW__V1__MASK_TYPE__MASK_DISCRETE, m.has_bootstrap_steps = 1, m.bootstrap_steps = 6;
    set_params(a, &m, "exceeds the canvas's 5 timesteps");
    m.bootstrap_steps = 2, m.has_cover_alpha = 1, m.cover_alpha = -0.5f;
    set_params(a, &m, "set_params.cover_alpha");
    m.cover_alpha = 0.6f, m.has_embedded_guidance_scale = 1, m.embedded_guidance_scale = 4.0f;
    m.has_bootstrap_mix_steps = 1, m.bootstrap_mix_steps = 1.5f, m.has_autoflush = 1, m.autoflush = 1;
    set_params(a, &m, NULL); /* CFG on, and every other parameter changed */
    ASSERT_EQ(commit(a, canvas[0]), 2);

    Semdraw__V1__SetCanvasParams defaults = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
    defaults.has_canvas_id = 1, defaults.canvas_id = canvas[1];
    defaults.has_guidance_scale = 1, defaults.guidance_scale = 1.0f;
    defaults.has_embedded_guidance_scale = 1, defaults.embedded_guidance_scale = 8.5f;
    defaults.has_bootstrap_steps = 1, defaults.bootstrap_steps = 1;
    defaults.has_bootstrap_mix_steps = 1, defaults.bootstrap_mix_steps = 1.0f;
    defaults.has_mask_type = 1, defaults.mask_type = SEMDRAW__V1__MASK_TYPE__MASK_CONTINUOUS;
    defaults.has_cover_alpha = 1, defaults.cover_alpha = 0.3f, defaults.has_autoflush = 1;
    set_params(a, &defaults, NULL);
    ASSERT_EQ(commit(a, canvas[1]), 2);

    static uint8_t px[3][64 * 64 * 4];
    ASSERT_EQ(snapshot_pixels(a, canvas[0], ring[0], px[0]), 2); /* the frames reflect the commit */
    ASSERT_EQ(snapshot_pixels(a, canvas[1], ring[1], px[1]), 2);
    ASSERT_EQ(snapshot_pixels(a, canvas[2], ring[2], px[2]), 1);
    ASSERT(memcmp(px[1], px[2], sizeof px[1]) == 0); /* the defaults: the same canvas, so any difference */
    size_t moved = 0; /* ... is the new parameters' (the tiny model's frames move little: ~9% of bytes) */
    for (size_t i = 0; i < sizeof px[0]; i++) moved += px[0][i] != px[2][i];
    if (moved < sizeof px[0] / 100) FAIL("the new parameters hardly show: %zu bytes of %zu differ", moved, sizeof px[0]);

    zmq_close(a);
    ASSERT_EQ(stop_daemon(&d), 0);
    for (int i = 0; i < 3; i++) free(ring[i]);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(session_canvas_stream_and_shutdown),
    TEST_ENTRY(silent_clients_lose_their_canvases),
    TEST_ENTRY(eight_clients_and_a_killed_one),
    TEST_ENTRY(watchdog_pings_while_the_engine_runs),
    TEST_ENTRY(live_params_change_at_the_next_commit),
    {0},
};

SEMD_TEST_MAIN(tests)
