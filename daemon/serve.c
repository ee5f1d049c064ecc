/*
 * semdrawd serve: the daemon. One libuv loop thread owns the ZeroMQ ROUTER
 * socket (ipc:// in the runtime directory), the sessions and their leases,
 * validation, and each canvas's pending edits; the engine thread
 * (engine_host.c) owns the models and the canvases and streams frames into
 * the rings. Every request gets a Reply or an Error; a bad request never
 * disturbs anyone else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <uv.h>
#include <zmq.h>

#include "cli.h"
#include "config.h"
#include "engine_host.h"
#include "notify.h"
#include "proto_budget.h"
#include "semd/checkpoint.h"
#include "semd/rng.h"
#include "semd/status.h"
#include "semdraw/v1/wire_status.h"
#include "validate.h"

#define PROTOCOL_VERSION 1
#define MAX_MESSAGE (64u << 20)
#define DECODE_BUDGET (96u << 20)
#define MAX_IDENTITY 256

typedef Semdraw__V1__Envelope Envelope;

typedef struct session {
    uint8_t id[MAX_IDENTITY];
    size_t id_len;
    uint64_t session_id;
    double last_seen_ms;
    struct session *next;
} session;

#define KEY_SIZE 16
#define MAX_EDITORS 8

typedef struct canvas_rec {
    uint64_t canvas_id, owner, seed;
    uint64_t editors[MAX_EDITORS]; /* sessions that attached with the key (a ring: the oldest goes) */
    int n_editors, next_editor;
    uint8_t key[KEY_SIZE];         /* lets another session edit the canvas */
    int detached;                  /* outlives its owner's session */
    int width, height, n_slots, next_layer_id;
    int *layer_ids, n_layers, cap_layers; /* live layers as requests see them (edits included) */
    char *ring_path;
    char *last_error; /* the engine's latest failure on it, for status */
    semd_host_edit *pending;
    int n_pending, cap_pending;
    struct canvas_rec *next;
} canvas_rec;

/* A create on its way through the engine thread: the loop never waits for it; the reply goes out when it is done. */
typedef struct pending_create {
    struct server *s;
    uint8_t id[MAX_IDENTITY];
    size_t id_len;
    uint64_t req, session_id;
    canvas_rec *c;                        /* filled in, listed once made */
    int rc;                               /* set on the engine thread */
    char error[256];
    struct pending_create *next, *next_done;
} pending_create;

#define MAX_HINTS 1024

typedef struct hint {
    uint64_t canvas_id, seq, input_seq, t_ns;
} hint;

/* A failure the engine thread met on a canvas, on its way to the loop (CanvasError, or a close). */
#define MAX_ENGINE_ERRORS 256

typedef struct engine_error {
    uint64_t canvas_id, input_seq;
    semd_host_error_kind kind;
    int code;
    char message[256];
} engine_error;

typedef struct server {
    uv_loop_t *loop;
    pending_create *creating;             /* loop thread: creates in flight */
    pthread_mutex_t created_mu;
    pending_create *created;              /* engine thread -> loop: finished creates */
    uv_async_t created_async;
    uv_poll_t poll;
    uv_async_t frames_async;
    pthread_mutex_t hints_mu;
    hint hints[MAX_HINTS]; /* newest wins per canvas when the loop falls behind */
    int n_hints;
    engine_error errors[MAX_ENGINE_ERRORS]; /* also under hints_mu, drained with the hints */
    int n_errors, errors_dropped;
    void *pub;
    char *events_path;
    uv_timer_t lease_timer;
    uv_timer_t watchdog_timer;
    uint64_t watchdog_progress; /* the engine's progress count at the last ping */
    uv_signal_t sig_term, sig_int;
    void *zctx, *router;
    char *control_path;
    int lock_fd; /* holds the runtime directory's lock */
    semd_config cfg;
    semd_limits limits;
    semd_host *host;  /* NULL until the model is loaded */
    semd_backend *be; /* for its memory count */
    /* Loading runs on its own thread so that the socket answers (with the progress) meanwhile. */
    semd_checkpoint *ck;
    semd_sd_models models;
    pthread_t loader;
    int loader_running, load_rc;
    _Atomic int load_permille;
    Semdraw__V1__ModelState model_state;
    char load_status[256]; /* what status and refused requests say while not ready */
    uv_async_t loaded_async;
    uint64_t instance_id, next_session;
    session *sessions;
    canvas_rec *canvases;
    int n_canvases;
} server;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- replies ---- */

static void send_envelope(server *s, const uint8_t *id, size_t id_len, Envelope *e)
{
    e->has_protocol_version = 1, e->protocol_version = PROTOCOL_VERSION;
    e->has_instance_id = 1, e->instance_id = s->instance_id;
    uint8_t small[1024];
    size_t n = semdraw__v1__envelope__get_packed_size(e);
    uint8_t *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) { /* out of memory for a big reply (a status): say so rather than leave the client waiting */
        Envelope oom = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Error err = SEMDRAW__V1__ERROR__INIT;
        err.has_code = 1, err.code = SEMD_ENOMEM, err.message = "semdrawd: out of memory for the reply";
        oom.has_protocol_version = 1, oom.protocol_version = PROTOCOL_VERSION;
        oom.has_instance_id = 1, oom.instance_id = s->instance_id;
        oom.has_request_id = e->has_request_id, oom.request_id = e->request_id;
        oom.body_case = SEMDRAW__V1__ENVELOPE__BODY_ERROR, oom.error = &err;
        n = semdraw__v1__envelope__get_packed_size(&oom); /* a few dozen bytes */
        semdraw__v1__envelope__pack(&oom, buf = small);
    } else {
        semdraw__v1__envelope__pack(e, buf);
    }
    if (zmq_send(s->router, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(s->router, buf, n, ZMQ_DONTWAIT); /* a client that cannot take it loses the reply */
    if (buf != small) free(buf);
}

static void reply(server *s, const uint8_t *id, size_t id_len, uint64_t request_id, Semdraw__V1__Reply *r)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    e.has_request_id = 1, e.request_id = request_id;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_REPLY, e.reply = r;
    send_envelope(s, id, id_len, &e);
}

static void reply_error(server *s, const uint8_t *id, size_t id_len, uint64_t request_id, int code,
                        const char *message)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__Error err = SEMDRAW__V1__ERROR__INIT;
    err.has_code = 1, err.code = code;
    err.message = (char *)message;
    e.has_request_id = 1, e.request_id = request_id;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_ERROR, e.error = &err;
    send_envelope(s, id, id_len, &e);
}

static void reply_done(server *s, const uint8_t *id, size_t id_len, uint64_t request_id)
{
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__Done done = SEMDRAW__V1__DONE__INIT;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_DONE, r.done = &done;
    reply(s, id, id_len, request_id, &r);
}

/* ---- sessions and canvases ---- */

static session *find_session(server *s, const uint8_t *id, size_t len)
{
    for (session *x = s->sessions; x; x = x->next)
        if (x->id_len == len && memcmp(x->id, id, len) == 0) return x;
    session *x = calloc(1, sizeof *x);
    if (!x || len > MAX_IDENTITY) {
        free(x);
        return NULL;
    }
    memcpy(x->id, id, len);
    x->id_len = len;
    x->session_id = ++s->next_session;
    x->next = s->sessions, s->sessions = x;
    return x;
}

static canvas_rec *find_canvas(server *s, uint64_t id)
{
    for (canvas_rec *c = s->canvases; c; c = c->next)
        if (c->canvas_id == id) return c;
    return NULL;
}

static void free_pending(canvas_rec *c)
{
    for (int i = 0; i < c->n_pending; i++) {
        semd_host_edit *e = &c->pending[i];
        free((char *)e->layer.prompt), free((char *)e->layer.negative), free((uint8_t *)e->layer.mask);
        free((char *)e->bg_prompt), free((char *)e->bg_negative), free((uint8_t *)e->bg_rgb);
    }
    c->n_pending = 0;
}

/* ---- events (PUB): topic "C<canvas id>" for a canvas's events, "M" for the model's ---- */

static void publish_event(server *s, uint64_t canvas_id, Semdraw__V1__Event *ev)
{
    if (!s->pub) return;
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_EVENT, e.event = ev;
    e.has_protocol_version = 1, e.protocol_version = PROTOCOL_VERSION;
    e.has_instance_id = 1, e.instance_id = s->instance_id;
    char topic[32];
    int tn = canvas_id ? snprintf(topic, sizeof topic, "C%llu", (unsigned long long)canvas_id)
                       : snprintf(topic, sizeof topic, "M");
    uint8_t small[256], *buf = small;
    const size_t n = semdraw__v1__envelope__get_packed_size(&e);
    if (n > sizeof small && !(buf = malloc(n))) return;
    semdraw__v1__envelope__pack(&e, buf);
    if (zmq_send(s->pub, topic, (size_t)tn, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(s->pub, buf, n, ZMQ_DONTWAIT); /* PUB drops for slow subscribers: hints only */
    if (buf != small) free(buf);
}

static void publish_model_state(server *s, Semdraw__V1__ModelState state, const char *message)
{
    Semdraw__V1__Event ev = SEMDRAW__V1__EVENT__INIT;
    Semdraw__V1__ModelEvent me = SEMDRAW__V1__MODEL_EVENT__INIT;
    me.has_state = 1, me.state = state;
    me.has_progress = 1, me.progress = atomic_load(&s->load_permille) / 1000.0f;
    me.message = (char *)message;
    ev.kind_case = SEMDRAW__V1__EVENT__KIND_MODEL, ev.model = &me;
    publish_event(s, 0, &ev);
}

/* Closes the canvas and tells its viewers why (topic C<id>). */
static void drop_canvas(server *s, canvas_rec *c, const char *reason)
{
    Semdraw__V1__Event ev = SEMDRAW__V1__EVENT__INIT;
    Semdraw__V1__CanvasClosed cc = SEMDRAW__V1__CANVAS_CLOSED__INIT;
    cc.has_canvas_id = 1, cc.canvas_id = c->canvas_id;
    cc.reason = (char *)reason;
    ev.kind_case = SEMDRAW__V1__EVENT__KIND_CANVAS_CLOSED, ev.canvas_closed = &cc;
    publish_event(s, c->canvas_id, &ev);
    semd_host_close_canvas_async(s->host, c->canvas_id); /* the loop does not wait for the engine's round */
    canvas_rec **p = &s->canvases;
    while (*p != c) p = &(*p)->next;
    *p = c->next;
    free_pending(c);
    free(c->pending), free(c->ring_path), free(c->layer_ids), free(c->last_error), free(c);
    s->n_canvases--;
}

/* Edits waiting for a commit, per canvas: a client that never commits cannot grow the daemon. */
#define MAX_UNCOMMITTED 256

static semd_host_edit *new_edit(canvas_rec *c)
{
    if (c->n_pending >= MAX_UNCOMMITTED) return NULL;
    if (c->n_pending == c->cap_pending) {
        int cap = c->cap_pending ? 2 * c->cap_pending : 8;
        semd_host_edit *p = realloc(c->pending, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        c->pending = p, c->cap_pending = cap;
    }
    semd_host_edit *e = &c->pending[c->n_pending++];
    memset(e, 0, sizeof *e);
    return e;
}

static int may_edit(const canvas_rec *c, const session *who)
{
    if (c->owner == who->session_id) return 1;
    for (int i = 0; i < c->n_editors && i < MAX_EDITORS; i++)
        if (c->editors[i] == who->session_id) return 1;
    return 0;
}

/* A new edit could not be held: the canvas is at MAX_UNCOMMITTED, or memory ran out. */
static void edit_refused(server *s, const canvas_rec *c, const uint8_t *id, size_t id_len, uint64_t req)
{
    if (c->n_pending < MAX_UNCOMMITTED) return reply_error(s, id, id_len, req, SEMD_ENOMEM, "out of memory");
    char msg[160];
    snprintf(msg, sizeof msg, "canvas %llu: %d edits are waiting for a commit", (unsigned long long)c->canvas_id,
             MAX_UNCOMMITTED);
    reply_error(s, id, id_len, req, SEMDRAW_WIRE_EBUSY, msg);
}

/* The canvas a request names, if this session may edit it (viewers may not). */
static canvas_rec *owned(server *s, session *who, int has, uint64_t id, const uint8_t *rid, size_t rlen,
                         uint64_t req)
{
    if (!s->host) {
        reply_error(s, rid, rlen, req, SEMDRAW_WIRE_ENOMODEL, "the model is not loaded yet");
        return NULL;
    }
    canvas_rec *c = has ? find_canvas(s, id) : NULL;
    if (!c) reply_error(s, rid, rlen, req, SEMD_ENOTFOUND, "no such canvas");
    else if (!may_edit(c, who)) {
        reply_error(s, rid, rlen, req, SEMDRAW_WIRE_EPERM,
                    "the canvas belongs to another session (attach with its key to edit it)");
        c = NULL;
    }
    return c;
}

/* ---- requests ---- */

typedef struct request {
    server *s;
    session *who;
    const uint8_t *id;
    size_t id_len;
    uint64_t req;
} request;

#define ERR(q, code) reply_error((q)->s, (q)->id, (q)->id_len, (q)->req, (code), semd_last_error())

static void on_hello(request *q, const Semdraw__V1__Hello *m)
{
    if ((m->has_min_version && m->min_version > PROTOCOL_VERSION) ||
        (m->has_max_version && m->max_version < PROTOCOL_VERSION)) {
        semd_error(SEMD_EUNSUPPORTED, "this daemon speaks protocol version %d", PROTOCOL_VERSION);
        ERR(q, SEMD_EUNSUPPORTED);
        return;
    }
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__HelloReply h = SEMDRAW__V1__HELLO_REPLY__INIT;
    h.has_chosen_version = 1, h.chosen_version = PROTOCOL_VERSION;
    h.has_instance_id = 1, h.instance_id = q->s->instance_id;
    h.has_session_id = 1, h.session_id = q->who->session_id;
    h.has_lease_ms = 1, h.lease_ms = (uint32_t)q->s->cfg.lease_ms;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_HELLO, r.hello = &h;
    reply(q->s, q->id, q->id_len, q->req, &r);
}

/* What a client sees of a canvas: geometry, ring, and how its stream is doing; returns its pending commits. */
static int fill_canvas_info(server *s, const canvas_rec *c, Semdraw__V1__CanvasInfo *info)
{
    semdraw__v1__canvas_info__init(info);
    info->has_canvas_id = 1, info->canvas_id = c->canvas_id;
    info->has_width = 1, info->width = (uint32_t)c->width;
    info->has_height = 1, info->height = (uint32_t)c->height;
    info->has_seed = 1, info->seed = c->seed;
    info->ring_path = c->ring_path;
    info->has_generation = 1, info->generation = 1;
    semd_host_canvas_stats st;
    if (semd_host_get_stats(s->host, c->canvas_id, &st)) return 0;
    info->has_streaming = 1, info->streaming = st.streaming != 0;
    info->has_fps = 1, info->fps = st.fps;
    info->has_latency_ms = 1, info->latency_ms = st.latency_ms;
    info->last_error = c->last_error;
    return st.pending_commits;
}

/* Create and attach replies: editors also get the key. */
static void canvas_info_reply(request *q, canvas_rec *c)
{
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__CanvasInfo info;
    fill_canvas_info(q->s, c, &info);
    info.has_detached = 1, info.detached = c->detached != 0;
    info.has_editable = 1, info.editable = may_edit(c, q->who);
    if (info.editable) info.has_key = 1, info.key.data = c->key, info.key.len = KEY_SIZE;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_CANVAS, r.canvas = &info;
    reply(q->s, q->id, q->id_len, q->req, &r);
}

/* What the daemon holds: the backend's tensors (weights, batch contexts) and the canvases' state. */
static uint64_t held_memory(server *s)
{
    uint64_t in_use = 0;
    semd_backend_memory(s->be, &in_use, NULL);
    return in_use + (s->host ? semd_host_memory(s->host) : 0);
}

/* max_device_memory_mib: refuse what would grow the daemon past it (0: no limit). */
static int over_memory_limit(request *q, const char *what)
{
    const uint64_t limit = (uint64_t)q->s->cfg.max_device_memory_mib << 20, held = held_memory(q->s);
    if (!limit || held <= limit) return 0;
    semd_error(SEMD_ENOMEM, "%s: the daemon would hold %.1f MiB, over its limit of %d MiB (max_device_memory_mib)",
               what, (double)held / (1 << 20), q->s->cfg.max_device_memory_mib);
    ERR(q, SEMD_ENOMEM);
    return 1;
}

/* What an ENOMEM says when the daemon has a memory limit: the setting to raise. */
static const char *memory_limit_hint(server *s, int code)
{
    static char text[96];
    if (code != SEMD_ENOMEM || !s->cfg.max_device_memory_mib) return "";
    snprintf(text, sizeof text, " (the daemon's limit, max_device_memory_mib, is %d MiB)", s->cfg.max_device_memory_mib);
    return text;
}

/* Engine thread: a create finished; hand it to the loop. */
static void on_canvas_created(void *ctx, int rc, uint64_t canvas_id, const char *ring_path, const char *error)
{
    pending_create *pc = ctx;
    server *s = pc->s;
    pc->rc = rc;
    pc->c->canvas_id = canvas_id;
    if (!rc && !(pc->c->ring_path = strdup(ring_path))) pc->rc = SEMD_ENOMEM;
    snprintf(pc->error, sizeof pc->error, "%s", pc->rc == SEMD_ENOMEM && !rc ? "out of memory" : error);
    pthread_mutex_lock(&s->created_mu);
    pc->next_done = s->created, s->created = pc;
    pthread_mutex_unlock(&s->created_mu);
    uv_async_send(&s->created_async);
}

static void on_create(request *q, const Semdraw__V1__CreateCanvas *m)
{
    server *s = q->s;
    if (!s->host) return (void)reply_error(s, q->id, q->id_len, q->req, SEMDRAW_WIRE_ENOMODEL, s->load_status);
    if (semd_validate_create(m, &s->limits)) return (void)ERR(q, SEMD_EINVAL);
    int mine = 0;
    for (canvas_rec *c = s->canvases; c; c = c->next) mine += c->owner == q->who->session_id;
    for (pending_create *pc = s->creating; pc; pc = pc->next) mine += pc->session_id == q->who->session_id;
    if (mine >= s->cfg.max_canvases_per_client) {
        semd_error(SEMD_EINVAL, "at most %d canvases per client", s->cfg.max_canvases_per_client);
        return (void)ERR(q, SEMD_EINVAL);
    }
    semd_canvas_params p;
    semd_canvas_params_default(&p);
    p.width = (int)m->width, p.height = (int)m->height;
    p.seed = m->has_seed ? m->seed : semd_rng_stream("seed") ^ (uint64_t)now_ms() ^ s->instance_id;
    p.profile = m->has_profile && m->profile == SEMDRAW__V1__PROFILE__PROFILE_REFERENCE ? SEMD_PROFILE_REFERENCE
                                                                                   : SEMD_PROFILE_DEFAULT;
    if (m->n_timesteps) {
        p.n_timesteps = (int)m->n_timesteps;
        for (size_t k = 0; k < m->n_timesteps; k++) p.timesteps[k] = (int)m->timesteps[k];
    }
    const int slots = m->has_ring_slots ? (int)m->ring_slots : s->cfg.ring_slots;
    if (over_memory_limit(q, "create")) return;
    canvas_rec *c = calloc(1, sizeof *c);
    pending_create *pc = c ? calloc(1, sizeof *pc) : NULL;
    if (!pc) {
        free(c);
        return (void)reply_error(s, q->id, q->id_len, q->req, SEMD_ENOMEM, "out of memory");
    }
    c->owner = q->who->session_id, c->seed = p.seed;
    c->detached = m->has_detached && m->detached;
    if (getrandom(c->key, KEY_SIZE, 0) != KEY_SIZE) /* getrandom never fails this small after boot */
        for (int i = 0; i < KEY_SIZE; i++) c->key[i] = (uint8_t)(semd_rng_stream("key") >> (8 * (i % 8)));
    c->width = p.width, c->height = p.height, c->n_slots = p.n_timesteps;
    *pc = (pending_create){.s = s, .id_len = q->id_len, .req = q->req, .session_id = q->who->session_id, .c = c};
    memcpy(pc->id, q->id, q->id_len);
    if (semd_host_create_canvas_async(s->host, &p, slots, on_canvas_created, pc)) {
        free(c), free(pc);
        return (void)ERR(q, SEMD_ENOMEM);
    }
    pc->next = s->creating, s->creating = pc; /* answered in on_created */
}

static session *session_by_id(server *s, uint64_t id)
{
    for (session *x = s->sessions; x; x = x->next)
        if (x->session_id == id) return x;
    return NULL;
}

/* Loop thread: creates the engine thread finished, answered now. */
static void on_created(uv_async_t *a)
{
    server *s = a->data;
    pthread_mutex_lock(&s->created_mu);
    pending_create *done = s->created;
    s->created = NULL;
    pthread_mutex_unlock(&s->created_mu);
    for (pending_create *pc, *next; (pc = done); done = next) {
        next = pc->next_done;
        for (pending_create **p = &s->creating; *p; p = &(*p)->next)
            if (*p == pc) {
                *p = pc->next;
                break;
            }
        canvas_rec *c = pc->c;
        request q = {.s = s, .who = session_by_id(s, pc->session_id), .id = pc->id, .id_len = pc->id_len, .req = pc->req};
        if (pc->rc) {
            char message[400];
            snprintf(message, sizeof message, "%s%s", pc->error, memory_limit_hint(s, pc->rc));
            reply_error(s, pc->id, pc->id_len, pc->req, pc->rc, message);
        } else if (!q.who || over_memory_limit(&q, "create")) { /* its client left, or it does not fit */
            semd_host_close_canvas_async(s->host, c->canvas_id);
        } else {
            c->next = s->canvases, s->canvases = c, s->n_canvases++;
            canvas_info_reply(&q, c);
            c = NULL;
        }
        if (c) free(c->ring_path), free(c);
        free(pc);
    }
}

static char *dup_opt(const char *t) { return t ? strdup(t) : NULL; }

static int layer_index(const canvas_rec *c, uint32_t id)
{
    for (int i = 0; i < c->n_layers; i++)
        if ((uint32_t)c->layer_ids[i] == id) return i;
    return -1;
}

/* A layer id the request names must be live; an added layer must fit under max_layers. */
static int check_layer(request *q, canvas_rec *c, int has_id, uint32_t id)
{
    if (has_id && layer_index(c, id) < 0) {
        semd_error(SEMD_ENOTFOUND, "canvas %llu has no layer %u", (unsigned long long)c->canvas_id, id);
        return ERR(q, SEMD_ENOTFOUND), -1;
    }
    if (!has_id && c->n_layers >= q->s->cfg.max_layers) {
        semd_error(SEMD_EINVAL, "at most %d layers per canvas", q->s->cfg.max_layers);
        return ERR(q, SEMD_EINVAL), -1;
    }
    if (!has_id && c->n_layers == c->cap_layers) {
        const int cap = c->cap_layers ? 2 * c->cap_layers : 8;
        int *p = realloc(c->layer_ids, (size_t)cap * sizeof *p);
        if (!p) return reply_error(q->s, q->id, q->id_len, q->req, SEMD_ENOMEM, "out of memory"), -1;
        c->layer_ids = p, c->cap_layers = cap;
    }
    return 0;
}

static void on_set_layer(request *q, const Semdraw__V1__SetLayer *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    if (semd_validate_set_layer(m, c->width, c->height, &q->s->limits)) return (void)ERR(q, SEMD_EINVAL);
    if (check_layer(q, c, m->has_layer_id, m->layer_id)) return;
    if (!m->has_layer_id && over_memory_limit(q, "add layer")) return;
    uint8_t *mask = m->mask ? malloc((size_t)c->width * c->height) : NULL;
    semd_host_edit *e = (m->mask && !mask) ? NULL : new_edit(c);
    if (!e) {
        free(mask);
        return (void)edit_refused(q->s, c, q->id, q->id_len, q->req);
    }
    if (mask) semd_mask_decode(m->mask, c->width, c->height, mask);
    e->kind = SEMD_HOST_SET_LAYER;
    const int add = !m->has_layer_id;
    e->layer_id = add ? -1 : (int)m->layer_id;
    e->layer = (semd_layer_desc){.prompt = dup_opt(m->prompt), .negative = dup_opt(m->negative), .mask = mask,
                                 .mask_std = m->has_mask_std ? m->mask_std : 8.0f,
                                 .mask_strength = m->has_mask_strength ? m->mask_strength : 1.0f,
                                 .prompt_strength = m->has_prompt_strength ? m->prompt_strength : 0.95f};
    e->fields = (m->prompt ? SEMD_LAYER_PROMPT : 0) | (m->negative ? SEMD_LAYER_NEGATIVE : 0) |
                (m->mask ? SEMD_LAYER_MASK : 0) | (m->has_mask_std ? SEMD_LAYER_MASK_STD : 0) |
                (m->has_mask_strength ? SEMD_LAYER_MASK_STRENGTH : 0) |
                (m->has_prompt_strength ? SEMD_LAYER_PROMPT_STRENGTH : 0);
    if (!add) return reply_done(q->s, q->id, q->id_len, q->req);
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__LayerAdded la = SEMDRAW__V1__LAYER_ADDED__INIT;
    la.has_layer_id = 1, la.layer_id = (uint32_t)c->next_layer_id++;
    c->layer_ids[c->n_layers++] = (int)la.layer_id;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_LAYER_ADDED, r.layer_added = &la;
    reply(q->s, q->id, q->id_len, q->req, &r);
}

static void on_remove_layer(request *q, const Semdraw__V1__RemoveLayer *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    if (!m->has_layer_id) return reply_error(q->s, q->id, q->id_len, q->req, SEMD_EINVAL, "remove_layer: layer_id is required");
    const int at = layer_index(c, m->layer_id);
    if (at < 0) return (void)(check_layer(q, c, 1, m->layer_id));
    semd_host_edit *e = new_edit(c);
    if (!e) return (void)edit_refused(q->s, c, q->id, q->id_len, q->req);
    e->kind = SEMD_HOST_REMOVE_LAYER, e->layer_id = (int)m->layer_id;
    c->layer_ids[at] = c->layer_ids[--c->n_layers];
    reply_done(q->s, q->id, q->id_len, q->req);
}

static void on_background(request *q, const Semdraw__V1__SetBackground *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    if (semd_validate_background(m, c->width, c->height, &q->s->limits)) return (void)ERR(q, SEMD_EINVAL);
    const size_t px = (size_t)c->width * c->height;
    uint8_t *rgb = (m->has_rgb || m->has_color) ? malloc(px * 3) : NULL;
    semd_host_edit *e = ((m->has_rgb || m->has_color) && !rgb) ? NULL : new_edit(c);
    if (!e) {
        free(rgb);
        return (void)edit_refused(q->s, c, q->id, q->id_len, q->req);
    }
    if (m->has_rgb) memcpy(rgb, m->rgb.data, px * 3);
    for (size_t i = 0; m->has_color && i < px * 3; i++) rgb[i] = (uint8_t)(m->color >> (16 - 8 * (i % 3)));
    e->kind = SEMD_HOST_SET_BACKGROUND;
    e->bg_prompt = dup_opt(m->prompt), e->bg_negative = dup_opt(m->negative), e->bg_rgb = rgb;
    reply_done(q->s, q->id, q->id_len, q->req);
}

/*
 * Live parameters, applied with the rest of the commit at the canvas's next
 * frame boundary: the canvas parameters as one edit (the engine does what
 * each change needs, semd_canvas_set_params), then the seed, then a latent
 * reset, so that a fresh start uses the new seed and the new parameters.
 */
static void on_params(request *q, const Semdraw__V1__SetCanvasParams *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    if (semd_validate_params(m, c->n_slots)) return (void)ERR(q, SEMD_EINVAL);
    semd_canvas_params p = {0}; /* only the fields named in `f` are read */
    unsigned f = 0;
    if (m->has_guidance_scale) p.guidance_scale = m->guidance_scale, f |= SEMD_CANVAS_PARAM_GUIDANCE_SCALE;
    if (m->has_embedded_guidance_scale)
        p.embedded_guidance_scale = m->embedded_guidance_scale, f |= SEMD_CANVAS_PARAM_EMBEDDED_GUIDANCE_SCALE;
    if (m->has_bootstrap_steps) p.bootstrap_steps = (int)m->bootstrap_steps, f |= SEMD_CANVAS_PARAM_BOOTSTRAP_STEPS;
    if (m->has_bootstrap_mix_steps)
        p.bootstrap_mix_steps = m->bootstrap_mix_steps, f |= SEMD_CANVAS_PARAM_BOOTSTRAP_MIX_STEPS;
    if (m->has_mask_type) /* the wire enum has the engine's values (validated above) */
        p.mask_type = (semd_mask_type)m->mask_type, f |= SEMD_CANVAS_PARAM_MASK_TYPE;
    if (m->has_cover_alpha) p.cover_alpha = m->cover_alpha, f |= SEMD_CANVAS_PARAM_COVER_ALPHA;
    if (m->has_autoflush) p.autoflush = m->autoflush != 0, f |= SEMD_CANVAS_PARAM_AUTOFLUSH;
    if (f) {
        semd_host_edit *e = new_edit(c);
        if (!e) return edit_refused(q->s, c, q->id, q->id_len, q->req);
        e->kind = SEMD_HOST_SET_PARAMS, e->params = p, e->fields = f;
    }
    if (m->has_seed) {
        semd_host_edit *e = new_edit(c);
        if (!e) return edit_refused(q->s, c, q->id, q->id_len, q->req);
        e->kind = SEMD_HOST_SET_SEED, e->seed = m->seed;
    }
    if (m->has_reset_latent && m->reset_latent) { /* after the seed, so the fresh start uses it */
        semd_host_edit *e = new_edit(c);
        if (!e) return edit_refused(q->s, c, q->id, q->id_len, q->req);
        e->kind = SEMD_HOST_RESET_LATENT;
    }
    reply_done(q->s, q->id, q->id_len, q->req);
}

static void on_commit(request *q, const Semdraw__V1__Commit *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    uint64_t seq;
    int rc = semd_host_commit(q->s->host, c->canvas_id, c->pending, c->n_pending, &seq);
    if (rc == SEMDRAW_WIRE_EBUSY) return (void)ERR(q, rc); /* the edits wait here for the retry */
    free_pending(c); /* the host copied what it needs */
    if (rc) return (void)ERR(q, rc);
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__Committed done = SEMDRAW__V1__COMMITTED__INIT;
    done.has_input_seq = 1, done.input_seq = seq;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_COMMITTED, r.committed = &done;
    reply(q->s, q->id, q->id_len, q->req, &r);
}

static void on_stream(request *q, int has, uint64_t id, int start, const Semdraw__V1__StartStream *m)
{
    canvas_rec *c = owned(q->s, q->who, has, id, q->id, q->id_len, q->req);
    if (!c) return;
    if (start && semd_validate_start(m, &q->s->limits)) return (void)ERR(q, SEMD_EINVAL);
    int rc = start ? semd_host_start_stream(q->s->host, id, m->has_target_fps ? m->target_fps : 0.0f)
                   : semd_host_stop_stream(q->s->host, id);
    if (rc) return (void)ERR(q, rc);
    reply_done(q->s, q->id, q->id_len, q->req);
}

static void on_snapshot(request *q, const Semdraw__V1__Snapshot *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    int frames = 0;
    int rc = semd_host_snapshot(q->s->host, c->canvas_id, &frames);
    if (rc) return (void)ERR(q, rc);
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__SnapshotQueued sq = SEMDRAW__V1__SNAPSHOT_QUEUED__INIT;
    sq.has_frames = 1, sq.frames = (uint32_t)frames;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_SNAPSHOT, r.snapshot = &sq;
    reply(q->s, q->id, q->id_len, q->req, &r);
}

static void on_close(request *q, const Semdraw__V1__CloseCanvas *m)
{
    canvas_rec *c = owned(q->s, q->who, m->has_canvas_id, m->canvas_id, q->id, q->id_len, q->req);
    if (!c) return;
    drop_canvas(q->s, c, "closed by its owner");
    reply_done(q->s, q->id, q->id_len, q->req);
}

/* Equal keys, in time that does not depend on where they differ. */
static int same_key(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (int i = 0; i < KEY_SIZE; i++) diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static void on_attach(request *q, const Semdraw__V1__AttachCanvas *m)
{
    if (!q->s->host)
        return reply_error(q->s, q->id, q->id_len, q->req, SEMDRAW_WIRE_ENOMODEL, q->s->load_status);
    canvas_rec *c = m->has_canvas_id ? find_canvas(q->s, m->canvas_id) : NULL;
    if (!c) return reply_error(q->s, q->id, q->id_len, q->req, SEMD_ENOTFOUND, "no such canvas");
    if (m->has_key) { /* an editor; without a key a viewer, who only reads the ring */
        if (m->key.len != KEY_SIZE || !same_key(m->key.data, c->key))
            return reply_error(q->s, q->id, q->id_len, q->req, SEMDRAW_WIRE_EPERM, "attach: wrong key for this canvas");
        if (!may_edit(c, q->who)) {
            c->editors[c->next_editor] = q->who->session_id;
            c->next_editor = (c->next_editor + 1) % MAX_EDITORS;
            if (c->n_editors < MAX_EDITORS) c->n_editors++;
        }
    }
    canvas_info_reply(q, c);
}

/* A client leaving: its session and the canvases it did not detach go now, not at the lease's end. */
static void on_goodbye(request *q)
{
    server *s = q->s;
    for (canvas_rec *c = s->canvases, *next; c; c = next) {
        next = c->next;
        if (c->owner == q->who->session_id && !c->detached) drop_canvas(s, c, "its owner disconnected");
    }
    for (session **p = &s->sessions; *p; p = &(*p)->next)
        if (*p == q->who) {
            *p = q->who->next;
            free(q->who);
            q->who = NULL;
            break;
        }
    reply_done(s, q->id, q->id_len, q->req);
}

static void on_status(request *q)
{
    server *s = q->s;
    Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
    Semdraw__V1__Status st = SEMDRAW__V1__STATUS__INIT;
    Semdraw__V1__CanvasInfo *infos = calloc((size_t)(s->n_canvases ? s->n_canvases : 1), sizeof *infos);
    Semdraw__V1__CanvasInfo **ptrs = calloc((size_t)(s->n_canvases ? s->n_canvases : 1), sizeof *ptrs);
    if (!infos || !ptrs) {
        free(infos), free(ptrs);
        return reply_error(s, q->id, q->id_len, q->req, SEMD_ENOMEM, "out of memory");
    }
    size_t n = 0;
    uint32_t queued = 0;
    for (canvas_rec *c = s->canvases; c; c = c->next, n++) {
        queued += (uint32_t)fill_canvas_info(s, c, &infos[n]);
        ptrs[n] = &infos[n];
    }
    st.has_device_memory_bytes = 1, st.device_memory_bytes = held_memory(s);
    st.has_queue_depth = 1, st.queue_depth = queued;
    int clients = 0;
    for (session *x = s->sessions; x; x = x->next) clients++;
    st.has_model_state = 1, st.model_state = s->model_state;
    st.has_load_progress = 1, st.load_progress = atomic_load(&s->load_permille) / 1000.0f;
    st.has_clients = 1, st.clients = (uint32_t)clients;
    st.n_canvases = n, st.canvases = ptrs;
    r.result_case = SEMDRAW__V1__REPLY__RESULT_STATUS, r.status = &st;
    reply(s, q->id, q->id_len, q->req, &r);
    free(infos), free(ptrs);
}

static void dispatch(request *q, const Envelope *e)
{
    switch (e->body_case) {
    case SEMDRAW__V1__ENVELOPE__BODY_HELLO: return on_hello(q, e->hello);
    case SEMDRAW__V1__ENVELOPE__BODY_CREATE_CANVAS: return on_create(q, e->create_canvas);
    case SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER: return on_set_layer(q, e->set_layer);
    case SEMDRAW__V1__ENVELOPE__BODY_REMOVE_LAYER: return on_remove_layer(q, e->remove_layer);
    case SEMDRAW__V1__ENVELOPE__BODY_SET_BACKGROUND: return on_background(q, e->set_background);
    case SEMDRAW__V1__ENVELOPE__BODY_COMMIT: return on_commit(q, e->commit);
    case SEMDRAW__V1__ENVELOPE__BODY_SET_PARAMS: return on_params(q, e->set_params);
    case SEMDRAW__V1__ENVELOPE__BODY_START_STREAM:
        return on_stream(q, e->start_stream->has_canvas_id, e->start_stream->canvas_id, 1, e->start_stream);
    case SEMDRAW__V1__ENVELOPE__BODY_STOP_STREAM:
        return on_stream(q, e->stop_stream->has_canvas_id, e->stop_stream->canvas_id, 0, NULL);
    case SEMDRAW__V1__ENVELOPE__BODY_CLOSE_CANVAS: return on_close(q, e->close_canvas);
    case SEMDRAW__V1__ENVELOPE__BODY_SNAPSHOT: return on_snapshot(q, e->snapshot);
    case SEMDRAW__V1__ENVELOPE__BODY_ATTACH_CANVAS: return on_attach(q, e->attach_canvas);
    case SEMDRAW__V1__ENVELOPE__BODY_GET_STATUS:
    case SEMDRAW__V1__ENVELOPE__BODY_LIST_CANVASES: return on_status(q);
    case SEMDRAW__V1__ENVELOPE__BODY_HEARTBEAT: return reply_done(q->s, q->id, q->id_len, q->req);
    case SEMDRAW__V1__ENVELOPE__BODY_GOODBYE: return on_goodbye(q);
    default:
        return reply_error(q->s, q->id, q->id_len, q->req, SEMD_EUNSUPPORTED,
                           "this request is not supported by this daemon");
    }
}

/* ---- the socket ---- */

#define ENVELOPE_REQUEST_ID_FIELD 2 /* control.proto: Envelope.request_id */

/* One [identity, payload] message; anything else gets an Error and is discarded whole. */
static void handle_message(server *s)
{
    uint8_t id[MAX_IDENTITY];
    int id_len = zmq_recv(s->router, id, sizeof id, ZMQ_DONTWAIT);
    if (id_len < 0) return;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    int more = 0, extra = 0;
    size_t more_len = sizeof more;
    zmq_getsockopt(s->router, ZMQ_RCVMORE, &more, &more_len);
    if (!more || zmq_msg_recv(&msg, s->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    zmq_getsockopt(s->router, ZMQ_RCVMORE, &more, &more_len);
    while (more) { /* drain a multi-part message */
        zmq_msg_t rest;
        zmq_msg_init(&rest);
        zmq_msg_recv(&rest, s->router, ZMQ_DONTWAIT);
        zmq_msg_close(&rest);
        zmq_getsockopt(s->router, ZMQ_RCVMORE, &more, &more_len);
        extra = 1;
    }
    const size_t id_n = (size_t)(id_len > MAX_IDENTITY ? MAX_IDENTITY : id_len);
    session *who = find_session(s, id, id_n);
    if (who) who->last_seen_ms = now_ms();
    semd_proto_budget budget;
    semd_proto_budget_init(&budget, DECODE_BUDGET);
    Envelope *e = extra || !who ? NULL
                  : semdraw__v1__envelope__unpack(&budget.allocator, zmq_msg_size(&msg), zmq_msg_data(&msg));
    uint64_t req = e && e->has_request_id ? e->request_id : 0;
    if (!e && !extra) /* still answer under the request's id, so that its client does not wait for a reply */
        semd_proto_peek_varint(zmq_msg_data(&msg), zmq_msg_size(&msg), ENVELOPE_REQUEST_ID_FIELD, &req);
    request q = {.s = s, .who = who, .id = id, .id_len = id_n, .req = req};
    if (extra) reply_error(s, id, id_n, 0, SEMD_EFORMAT, "one message per request: extra frames were discarded");
    else if (!who || budget.out_of_memory) reply_error(s, id, id_n, req, SEMD_ENOMEM, "semdrawd: out of memory");
    else if (!e) reply_error(s, id, id_n, req, SEMD_EFORMAT, "the message is not a valid Envelope");
    else dispatch(&q, e);
    if (e) semdraw__v1__envelope__free_unpacked(e, &budget.allocator);
    zmq_msg_close(&msg);
}

/* ZMQ_FD is edge-triggered: read until ZMQ_EVENTS says nothing is left, sends included. */
static void on_readable(uv_poll_t *p, int status, int events)
{
    server *s = p->data;
    for (;;) {
        int ev = 0;
        size_t len = sizeof ev;
        if (zmq_getsockopt(s->router, ZMQ_EVENTS, &ev, &len) != 0 || !(ev & ZMQ_POLLIN)) break;
        handle_message(s);
    }
}

/* A stuck engine thread stops the pings, and systemd restarts the daemon. */
static void on_watchdog(uv_timer_t *t)
{
    server *s = t->data;
    int idle;
    if (!s->host) return; /* loading: systemd's watchdog starts at READY=1; TimeoutStartSec covers the load */
    const uint64_t now = semd_host_progress(s->host, &idle);
    if (idle || now != s->watchdog_progress) semd_notify("WATCHDOG=1");
    s->watchdog_progress = now;
}

/* Sessions silent for longer than the lease lose their canvases. */
static void on_lease(uv_timer_t *t)
{
    server *s = t->data;
    const double now = now_ms();
    for (session **p = &s->sessions; *p;) {
        session *x = *p;
        int creating = 0; /* a create in flight is the session waiting on us, not silence */
        for (pending_create *pc = s->creating; pc; pc = pc->next) creating |= pc->session_id == x->session_id;
        if (creating) x->last_seen_ms = now;
        if (now - x->last_seen_ms <= s->cfg.lease_ms) {
            p = &x->next;
            continue;
        }
        for (canvas_rec *c = s->canvases, *next; c; c = next) {
            next = c->next;
            if (c->owner == x->session_id && !c->detached) drop_canvas(s, c, "its owner stopped heartbeating");
        }
        *p = x->next;
        free(x);
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    server *s = sig->data;
    semd_notify("STOPPING=1");
    uv_stop(s->loop);
}

/* ---- frame-ready hints: engine thread -> loop -> PUB ---- */

static void on_frame(void *ctx, uint64_t canvas_id, uint64_t seq, uint64_t input_seq, uint64_t t_ns)
{
    server *s = ctx;
    pthread_mutex_lock(&s->hints_mu);
    int i = 0;
    while (i < s->n_hints && s->hints[i].canvas_id != canvas_id) i++;
    if (i < MAX_HINTS) {
        s->hints[i] = (hint){canvas_id, seq, input_seq, t_ns};
        if (i == s->n_hints) s->n_hints++;
    }
    pthread_mutex_unlock(&s->hints_mu);
    uv_async_send(&s->frames_async);
}

static void publish_hint(server *s, const hint *h)
{
    Semdraw__V1__Event ev = SEMDRAW__V1__EVENT__INIT;
    Semdraw__V1__FrameReady fr = SEMDRAW__V1__FRAME_READY__INIT;
    fr.has_canvas_id = 1, fr.canvas_id = h->canvas_id;
    fr.has_seq = 1, fr.seq = h->seq;
    fr.has_input_seq = 1, fr.input_seq = h->input_seq;
    fr.has_t_ns = 1, fr.t_ns = h->t_ns;
    ev.kind_case = SEMDRAW__V1__EVENT__KIND_FRAME_READY, ev.frame_ready = &fr;
    publish_event(s, h->canvas_id, &ev);
}

/* Engine thread: queue the failure for the loop (a full queue drops it; semd_host_canvas_error keeps the latest). */
static void on_engine_error(void *ctx, uint64_t canvas_id, semd_host_error_kind kind, int code, uint64_t input_seq,
                            const char *message)
{
    server *s = ctx;
    pthread_mutex_lock(&s->hints_mu);
    if (s->n_errors < MAX_ENGINE_ERRORS) {
        engine_error *e = &s->errors[s->n_errors++];
        *e = (engine_error){.canvas_id = canvas_id, .input_seq = input_seq, .kind = kind, .code = code};
        snprintf(e->message, sizeof e->message, "%s", message);
    } else {
        s->errors_dropped++;
    }
    pthread_mutex_unlock(&s->hints_mu);
    uv_async_send(&s->frames_async);
}

/* Loop thread: tell the canvas's viewers (topic C<id>) and keep it for status; a lost canvas is closed. */
static void publish_engine_error(server *s, const engine_error *e)
{
    canvas_rec *c = find_canvas(s, e->canvas_id);
    if (!c) return; /* closed meanwhile */
    char message[400];
    snprintf(message, sizeof message, "%s%s", e->message, memory_limit_hint(s, e->code));
    fprintf(stderr, "semdrawd: canvas %llu: %s\n", (unsigned long long)e->canvas_id, message);
    if (e->kind == SEMD_HOST_CANVAS_LOST) {
        char reason[480];
        snprintf(reason, sizeof reason, "%s; the canvas could not be kept", message);
        return drop_canvas(s, c, reason);
    }
    free(c->last_error);
    c->last_error = strdup(message);
    Semdraw__V1__Event ev = SEMDRAW__V1__EVENT__INIT;
    Semdraw__V1__CanvasError ce = SEMDRAW__V1__CANVAS_ERROR__INIT;
    ce.has_canvas_id = 1, ce.canvas_id = e->canvas_id;
    ce.has_kind = 1, ce.kind = e->kind == SEMD_HOST_FRAME_FAILED ? SEMDRAW__V1__CANVAS_ERROR_KIND__CANVAS_ERROR_FRAME
                                                               : SEMDRAW__V1__CANVAS_ERROR_KIND__CANVAS_ERROR_EDIT;
    ce.has_code = 1, ce.code = e->code;
    ce.has_input_seq = 1, ce.input_seq = e->input_seq;
    ce.message = message;
    ev.kind_case = SEMDRAW__V1__EVENT__KIND_CANVAS_ERROR, ev.canvas_error = &ce;
    publish_event(s, e->canvas_id, &ev);
}

static void on_frames(uv_async_t *a)
{
    server *s = a->data;
    hint batch[MAX_HINTS];
    static engine_error errors[MAX_ENGINE_ERRORS]; /* the loop thread's alone; too big for its stack */
    pthread_mutex_lock(&s->hints_mu);
    const int n = s->n_hints, n_errors = s->n_errors, dropped = s->errors_dropped;
    memcpy(batch, s->hints, (size_t)n * sizeof *batch);
    memcpy(errors, s->errors, (size_t)n_errors * sizeof *errors);
    s->n_hints = 0, s->n_errors = 0, s->errors_dropped = 0;
    pthread_mutex_unlock(&s->hints_mu);
    for (int i = 0; i < n; i++) publish_hint(s, &batch[i]);
    for (int i = 0; i < n_errors; i++) publish_engine_error(s, &errors[i]);
    if (dropped) fprintf(stderr, "semdrawd: %d canvas errors came faster than they could be told\n", dropped);
}

/* ---- start and stop ---- */

/*
 * One daemon per runtime directory: a lock held for the daemon's life. Ring
 * files left by one that died (SIGKILL) are unlinked: clients that still map
 * them keep valid mappings, and the names are free for new canvases.
 */
static int claim_runtime_dir(server *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/semdrawd.lock", s->cfg.runtime_dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (s->lock_fd < 0) return semd_error(SEMD_EIO, "%s: %s", path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return semd_error(SEMD_EIO, "another semdrawd serves %s (%s is locked)", s->cfg.runtime_dir, path);
    DIR *d = opendir(s->cfg.runtime_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "canvas-", 7) == 0 && n > 5 && strcmp(e->d_name + n - 5, ".ring") == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d) closedir(d);
    return SEMD_OK;
}

static int bind_control(server *s)
{
    if (mkdir(s->cfg.runtime_dir, 0750) != 0 && errno != EEXIST)
        return semd_error(SEMD_EIO, "%s: cannot create the runtime directory: %s", s->cfg.runtime_dir, strerror(errno));
    int rc = claim_runtime_dir(s);
    if (rc) return rc;
    if (asprintf(&s->control_path, "%s/control.sock", s->cfg.runtime_dir) < 0)
        return semd_error(SEMD_ENOMEM, "out of memory");
    char endpoint[4200];
    snprintf(endpoint, sizeof endpoint, "ipc://%s", s->control_path);
    unlink(s->control_path); /* a stale socket of a daemon that died */
    s->zctx = zmq_ctx_new();
    s->router = s->zctx ? zmq_socket(s->zctx, ZMQ_ROUTER) : NULL;
    int linger = 0;
    int64_t maxmsg = MAX_MESSAGE;
    if (!s->router) return semd_error(SEMD_EIO, "zmq: %s", zmq_strerror(zmq_errno()));
    zmq_setsockopt(s->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s->router, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s->router, endpoint) != 0)
        return semd_error(SEMD_EIO, "%s: cannot bind: %s", endpoint, zmq_strerror(zmq_errno()));
    chmod(s->control_path, 0660);
    if (asprintf(&s->events_path, "%s/events.sock", s->cfg.runtime_dir) < 0)
        return semd_error(SEMD_ENOMEM, "out of memory");
    snprintf(endpoint, sizeof endpoint, "ipc://%s", s->events_path);
    unlink(s->events_path);
    if (!(s->pub = zmq_socket(s->zctx, ZMQ_PUB))) return semd_error(SEMD_EIO, "zmq: %s", zmq_strerror(zmq_errno()));
    zmq_setsockopt(s->pub, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s->pub, endpoint) != 0)
        return semd_error(SEMD_EIO, "%s: cannot bind: %s", endpoint, zmq_strerror(zmq_errno()));
    chmod(s->events_path, 0660);
    return SEMD_OK;
}

static int start_loop(server *s)
{
    int fd;
    size_t len = sizeof fd;
    if (zmq_getsockopt(s->router, ZMQ_FD, &fd, &len) != 0) return semd_error(SEMD_EIO, "zmq: no ZMQ_FD");
    uv_poll_init(s->loop, &s->poll, fd);
    s->poll.data = s;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    const uint64_t wd_usec = semd_notify_watchdog_usec();
    if (wd_usec) { /* ping at half the interval, and only while the engine moves */
        const uint64_t every_ms = wd_usec / 2000 ? wd_usec / 2000 : 1;
        uv_timer_init(s->loop, &s->watchdog_timer);
        s->watchdog_timer.data = s;
        uv_timer_start(&s->watchdog_timer, on_watchdog, every_ms, every_ms);
    }
    uv_timer_init(s->loop, &s->lease_timer);
    s->lease_timer.data = s;
    uv_timer_start(&s->lease_timer, on_lease, 250, 250);
    uv_signal_init(s->loop, &s->sig_term);
    uv_signal_init(s->loop, &s->sig_int);
    s->sig_term.data = s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    return SEMD_OK;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void shutdown_server(server *s)
{
    if (s->loader_running) { /* stopped while loading: let the loader finish (it cannot be interrupted) */
        pthread_join(s->loader, NULL);
        s->loader_running = 0;
    }
    while (s->canvases) drop_canvas(s, s->canvases, "the daemon is shutting down");
    semd_host_stop(s->host); /* answers every create still queued (into s->created) */
    for (pending_create *pc; (pc = s->creating);) { /* made or not, nobody is told any more */
        s->creating = pc->next;
        free(pc->c->ring_path), free(pc->c), free(pc);
    }
    s->created = NULL;
    pthread_mutex_destroy(&s->created_mu);
    if (s->loop) {
        uv_walk(s->loop, close_handle, NULL);
        uv_run(s->loop, UV_RUN_DEFAULT);
        uv_loop_close(s->loop);
    }
    if (s->router) zmq_close(s->router);
    if (s->pub) zmq_close(s->pub);
    if (s->zctx) zmq_ctx_term(s->zctx);
    if (s->control_path) unlink(s->control_path);
    if (s->lock_fd >= 0) close(s->lock_fd); /* last: no other daemon may take the directory while we clean it */
    if (s->events_path) unlink(s->events_path);
    free(s->events_path);
    pthread_mutex_destroy(&s->hints_mu);
    while (s->sessions) {
        session *next = s->sessions->next;
        free(s->sessions);
        s->sessions = next;
    }
    free(s->control_path);
}

/* Loading steps, for the progress status reports: open, LoRAs, tokenizer, CLIP, UNet, scheduler, TAESD. */
#define LOAD_STEPS 7
static void loaded_step(_Atomic int *permille, int step) { atomic_store(permille, step * 1000 / LOAD_STEPS); }

static int load_models(const semd_config *c, semd_backend *be, semd_checkpoint **ck, semd_sd_models *m,
                       _Atomic int *permille)
{
    int rc = semd_checkpoint_open(c->model, c->config, ck);
    loaded_step(permille, 1);
    for (int i = 0; !rc && i < c->n_loras; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s", c->loras[i]);
        char *colon = strrchr(path, ':'), *end;
        float scale = 1.0f;
        if (colon && colon[1]) {
            float v = strtof(colon + 1, &end);
            if (!*end) scale = v, *colon = '\0';
        }
        rc = semd_checkpoint_add_lora(*ck, path, scale);
    }
    loaded_step(permille, 2);
    if (!rc) rc = semd_checkpoint_tokenizer(*ck, &m->tokenizer);
    loaded_step(permille, 3);
    if (!rc) rc = semd_checkpoint_clip(*ck, be, &m->clip);
    loaded_step(permille, 4);
    if (!rc) rc = semd_checkpoint_unet(*ck, be, &m->unet);
    loaded_step(permille, 5);
    if (!rc) rc = semd_checkpoint_check_loras(*ck);
    if (!rc) rc = semd_checkpoint_scheduler(*ck, &m->scheduler);
    loaded_step(permille, 6);
    if (!rc && !c->taesd) rc = semd_error(SEMD_EINVAL, "the stream decodes with TAESD: set taesd (or --taesd)");
    if (!rc) rc = semd_taesd_open(c->taesd, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &m->taesd);
    return rc;
}

static void free_models(semd_sd_models *m)
{
    semd_tokenizer_free(m->tokenizer), semd_clip_free(m->clip), semd_unet_free(m->unet);
    semd_lcm_scheduler_free(m->scheduler), semd_taesd_free(m->taesd);
}

/* --key value, or --config-file PATH (read before the other options apply). */
static int parse_args(int argc, char **argv, semd_config *c)
{
    const char *file = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config-file") == 0) file = argv[i + 1];
    int rc = file ? semd_config_load(c, file)
             : access(SEMD_CONFIG_DEFAULT_PATH, R_OK) == 0 ? semd_config_load(c, SEMD_CONFIG_DEFAULT_PATH) : 0;
    for (int i = 1; !rc && i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc)
            return semd_error(SEMD_EINVAL, "expected --key value, got '%s'", argv[i]);
        if (strcmp(argv[i], "--config-file") == 0) {
            i++;
            continue;
        }
        char key[128];
        snprintf(key, sizeof key, "%s", argv[i] + 2);
        for (char *k = key; *k; k++) *k = *k == '-' ? '_' : *k;
        rc = semd_config_set(c, key, argv[i + 1], argv[i]);
        i++;
    }
    return rc ? rc : semd_config_check(c);
}

/* ---- the model: loaded on its own thread while the socket already answers ---- */

static void *load_thread(void *arg)
{
    server *s = arg;
    int rc = load_models(&s->cfg, s->be, &s->ck, &s->models, &s->load_permille);
    if (rc) snprintf(s->load_status, sizeof s->load_status, "the model failed to load: %s", semd_last_error());
    s->load_rc = rc;
    uv_async_send(&s->loaded_async); /* the loop thread takes over in on_loaded */
    return NULL;
}

static void on_loaded(uv_async_t *a)
{
    server *s = a->data;
    if (!s->loader_running) return;
    pthread_join(s->loader, NULL);
    s->loader_running = 0;
    int rc = s->load_rc;
    if (!rc) rc = semd_host_start(&s->models, s->cfg.runtime_dir, s->instance_id, on_frame, s, &s->host);
    if (!rc) semd_host_set_error_fn(s->host, on_engine_error, s);
    if (rc) {
        if (!s->load_rc) snprintf(s->load_status, sizeof s->load_status, "%s", semd_last_error());
        fprintf(stderr, "semdrawd: serve: %s\n", s->load_status);
        char line[300];
        snprintf(line, sizeof line, "STATUS=%s", s->load_status);
        semd_notify(line);
        s->model_state = SEMDRAW__V1__MODEL_STATE__MODEL_FAILED;
        publish_model_state(s, s->model_state, s->load_status);
        s->load_rc = rc ? rc : SEMD_EINVAL;
        uv_stop(s->loop); /* exit non-zero: systemd's restart policy takes it from here */
        return;
    }
    atomic_store(&s->load_permille, 1000);
    s->model_state = SEMDRAW__V1__MODEL_STATE__MODEL_READY;
    snprintf(s->load_status, sizeof s->load_status, "serving");
    fprintf(stderr, "semdrawd: model loaded, serving canvases\n");
    semd_notify("READY=1\nSTATUS=serving");
    publish_model_state(s, s->model_state, "serving");
}

static int start_loading(server *s)
{
    s->model_state = SEMDRAW__V1__MODEL_STATE__MODEL_LOADING;
    snprintf(s->load_status, sizeof s->load_status, "the model is still loading");
    uv_async_init(s->loop, &s->loaded_async, on_loaded);
    s->loaded_async.data = s;
    if (pthread_create(&s->loader, NULL, load_thread, s) != 0)
        return semd_error(SEMD_ENOMEM, "cannot start the model loader thread");
    s->loader_running = 1;
    return SEMD_OK;
}

int cmd_serve(int argc, char **argv)
{
    server s = {.lock_fd = -1};
    int rc = semd_config_init(&s.cfg);
    if (!rc) rc = parse_args(argc, argv, &s.cfg);
    if (rc) {
        semd_config_free(&s.cfg);
        return cli_fail("serve", rc);
    }
    semd_limits_default(&s.limits);
    s.limits.max_side = s.cfg.max_side, s.limits.max_text = (size_t)s.cfg.max_prompt_bytes;
    if (getrandom(&s.instance_id, sizeof s.instance_id, 0) != sizeof s.instance_id)
        s.instance_id = (uint64_t)now_ms() * 2654435761u ^ (uint64_t)getpid();
    s.instance_id |= 1; /* never 0: clients read 0 as "unknown" */
    semd_notify("STATUS=loading the model");
    pthread_mutex_init(&s.hints_mu, NULL);
    s.loop = uv_default_loop();
    uv_async_init(s.loop, &s.frames_async, on_frames); /* before the engine thread can call on_frame */
    s.frames_async.data = &s;
    pthread_mutex_init(&s.created_mu, NULL);
    uv_async_init(s.loop, &s.created_async, on_created);
    s.created_async.data = &s;
    rc = semd_backend_new(s.cfg.backend, &s.be);
    /* The limit caps the backend too: a frame whose working memory does not fit fails cleanly. */
    if (!rc) semd_backend_set_memory_limit(s.be, (uint64_t)s.cfg.max_device_memory_mib << 20);
    if (!rc) rc = bind_control(&s);
    if (!rc) rc = start_loop(&s);
    if (!rc) rc = start_loading(&s);
    if (!rc) {
        fprintf(stderr, "semdrawd: listening on %s (instance %016llx), loading the model\n", s.control_path,
                (unsigned long long)s.instance_id);
        uv_run(s.loop, UV_RUN_DEFAULT);
        rc = s.load_rc;
    } else {
        cli_fail("serve", rc);
    }
    shutdown_server(&s);
    free_models(&s.models);
    semd_checkpoint_free(s.ck);
    semd_backend_free(s.be);
    semd_config_free(&s.cfg);
    return rc ? 1 : 0;
}
