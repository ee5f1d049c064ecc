/*
 * internal.h - libsemdraw's private structures, shared by its files:
 * errors.c (status strings, the per-thread message), transport.c (the two
 * ZeroMQ sockets, requests and their replies), client.c (connection, events,
 * heartbeats, restarts), canvas.c (canvas handles, edits and the cache that
 * restores them), frames.c (reads from the shared-memory ring).
 */
#ifndef SEMDRAW_SDK_INTERNAL_H
#define SEMDRAW_SDK_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_reader.h"
#include "semdraw/semdraw.h"
#include "semdraw/v1/control.pb-c.h"

typedef Semdraw__V1__Envelope Envelope;

#define SDK_PROTOCOL_VERSION 1
#define SDK_DEFAULT_TIMEOUT_MS 30000 /* a canvas create runs encoders: seconds on a CPU backend */

/* ---- errors.c ---- */

/* Record the message for semdraw_last_error() and return status. */
int sdk_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double sdk_now_ms(void);

/* ---- events waiting for the next dispatch ---- */

typedef struct sdk_event {
    semdraw_event ev;
    char *message; /* owned; ev.message points here or to "" */
} sdk_event;

/* ---- canvases ---- */

typedef struct sdk_layer {
    uint32_t app_id;    /* the id the application knows */
    uint32_t daemon_id; /* the daemon's id (differs after a restore) */
    int live;
    char *prompt, *negative;
    uint8_t *mask;      /* width x height, or NULL */
    int has_std, has_strength, has_pstrength;
    float mask_std, mask_strength, prompt_strength;
} sdk_layer;

typedef struct sdk_retired_ring {
    semdraw_ring_reader *ring;
    struct sdk_retired_ring *next;
} sdk_retired_ring;

struct semdraw_canvas {
    semdraw_client *client;
    struct semdraw_canvas *next;
    uint64_t id;
    int editable, created, detached, dead; /* dead: SEMDRAW_E_CLOSED or _DAEMON_RESTARTED */
    int dead_status;
    uint8_t key[SEMDRAW_KEY_SIZE];
    semdraw_canvas_desc desc;              /* as created, for a restore */
    uint32_t width, height;
    uint64_t seed;
    int streaming;
    float target_fps, fps, latency_ms;
    uint64_t frame_failures;               /* CANVAS_ERROR FRAME events seen, for a snapshot waiting */
    int frame_failure_status;
    char *frame_failure;                   /* the latest one's message */
    char last_error[256];                  /* the daemon's latest failure on it, as semdraw_canvas_info says */
    /* what was sent, replayed after a daemon restart */
    sdk_layer *layers;
    int n_layers, cap_layers;
    uint32_t next_app_layer;
    char *bg_prompt, *bg_negative;
    uint8_t *bg_rgb;                       /* width x height x 3, or NULL */
    int has_bg_color;
    uint32_t bg_color;
    semdraw_canvas_params params;          /* fields: every field ever set */
    /* frames: the ring may be swapped by a restore while another thread reads */
    _Atomic(semdraw_ring_reader *) ring;
    sdk_retired_ring *old_rings;
    _Atomic uint64_t last_read_seq;        /* the newest frame acquired or copied */
    uint64_t held_seq;                     /* the frame between acquire and release */
    semdraw_ring_reader *held_ring;
};

/* ---- the client ---- */

struct semdraw_client {
    int connected;                         /* 0 after semdraw_disconnect */
    int n_handles;                         /* canvases not yet released: they keep the struct alive */
    void *zctx, *dealer, *sub;
    int epfd, timerfd, wakefd;
    char *runtime_dir, *name;
    uint32_t timeout_ms, flags;
    uint64_t instance_id, session_id;
    uint32_t lease_ms, protocol_version, model_state;
    float load_progress;
    char *model_message;
    uint64_t next_request;
    double heartbeat_due_ms, last_heard_ms;
    int heartbeat_outstanding, disconnected_reported;
    int restart_pending;                   /* a new instance id was seen; handle it at the next chance */
    semdraw_event_fn fn;
    void *user;
    semdraw_canvas *canvases;
    sdk_event *events;
    int n_events, cap_events;
};

/* ---- transport.c ---- */

int sdk_transport_open(semdraw_client *c);
void sdk_transport_close(semdraw_client *c);
/*
 * Send a request and wait for its reply (or error). Other messages met
 * meanwhile are handled (heartbeat replies). *reply is freed with
 * sdk_envelope_free. Error replies become their status with the daemon's
 * message; a reply from a restarted daemon flags the restart.
 */
int sdk_call(semdraw_client *c, Envelope *req, Envelope **reply);
/* Send without waiting (heartbeats). */
int sdk_send(semdraw_client *c, Envelope *req);
void sdk_envelope_free(Envelope *e);
/* Handle every message waiting on both sockets without blocking. */
void sdk_drain(semdraw_client *c);
void sdk_subscribe(semdraw_client *c, uint64_t canvas_id, int on);

/* ---- client.c ---- */

/* A message from the daemon arrived: liveness, and restart detection by instance id. */
void sdk_heard(semdraw_client *c, uint64_t instance_id);
/* Queue an event for the next dispatch (frame hints for a canvas coalesce). */
void sdk_queue_event(semdraw_client *c, const semdraw_event *ev, const char *message);
void sdk_on_event(semdraw_client *c, const Semdraw__V1__Event *ev);
/* Deal with a restart seen earlier: mark or restore the canvases. */
void sdk_handle_restart(semdraw_client *c);
/* Free the client struct once it is disconnected and no canvas handle is left. */
void sdk_client_unref(semdraw_client *c);

/* ---- canvas.c ---- */

semdraw_canvas *sdk_find_canvas(semdraw_client *c, uint64_t id);
/* Recreate an owned canvas in a restarted daemon from its cache. */
int sdk_canvas_restore(semdraw_canvas *cv);
void sdk_canvas_mark_dead(semdraw_canvas *cv, int status);
int sdk_canvas_map_ring(semdraw_canvas *cv, const char *path);

#endif
