/*
 * semdraw/semdraw.h - libsemdraw, the client SDK of semdrawd.
 *
 * semdrawd holds a SemanticDraw model on the GPU and streams region-controlled
 * images for many canvases at once. This library is how a local program uses
 * it: connect, create a canvas (or attach to someone else's as a viewer),
 * describe it as a background plus layers (an 8-bit alpha mask and a prompt
 * each), commit edits, start a stream, and read frames straight out of the
 * canvas's shared-memory ring. This header is the whole public API and its
 * documentation; anything not declared here is private.
 *
 * A minimal client (see examples/minimal.c):
 *
 *     semdraw_client *c;
 *     semdraw_canvas *cv;
 *     semdraw_connect(NULL, &c);                      // $SEMDRAW_RUNTIME_DIR or /run/semdraw
 *     semdraw_canvas_desc d = {.struct_size = sizeof d, .width = 512, .height = 512};
 *     semdraw_canvas_create(c, &d, &cv);
 *     semdraw_layer l = {.struct_size = sizeof l, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK,
 *                        .prompt = "a red fox", .mask = alpha};
 *     semdraw_layer_add(cv, &l, NULL);
 *     semdraw_canvas_commit(cv, NULL);
 *     semdraw_stream_start(cv, 0);
 *     semdraw_frame_wait(cv, 0, 5000);
 *     semdraw_frame_copy(cv, rgba, sizeof rgba, 512 * 4, &info);
 *
 * Rules
 *  1. Threads. A client and its canvases are used by one thread at a time.
 *     The semdraw_frame_* calls only read the canvas's read-only mapping and
 *     the caller's own structs, so one other thread (a renderer) may call them
 *     while the control thread uses the client. libsemdraw starts no threads
 *     of its own apart from libzmq's I/O thread. Do not use a client across
 *     fork().
 *  2. Requests block until the daemon answers or the client's timeout
 *     (semdraw_connect_opts.timeout_ms) passes. Over the local socket an
 *     answer takes well under a millisecond; rendering never delays it,
 *     except semdraw_canvas_create, which is answered once the engine has
 *     built the canvas (after the round of frames in progress, then its
 *     encoders: seconds for a large canvas on a CPU backend).
 *  3. Events (a frame is ready, the model's state, a canvas closed or its work
 *     failed, the daemon restarted or went away) are delivered to the event callback, only from
 *     inside semdraw_dispatch(). Put semdraw_get_fd() in your poll/epoll set
 *     (readable: call semdraw_dispatch()) and wake up at least every
 *     semdraw_get_timeout_ms(): dispatch also sends the heartbeats that keep
 *     the session, and so its canvases, alive.
 *  4. Errors. Every call that can fail returns 0 or a negative SEMDRAW_E_*
 *     code; semdraw_strerror() names the code and semdraw_last_error() says
 *     what exactly went wrong (the daemon's own message for refused requests).
 *     Calls on a closed client or a closed canvas return SEMDRAW_E_CLOSED.
 *  5. ABI. Option structs start with struct_size (set it to sizeof the struct
 *     you compiled against): newer libraries accept older, shorter structs.
 *     Enums have explicit values. The SONAME is libsemdraw.so.0.
 *     SEMDRAW_VERSION_HEX is this header's version, semdraw_version() the
 *     loaded library's; cautious programs check that they agree.
 *  6. Frames. semdraw_frame_acquire() hands out a pointer into the ring
 *     without copying; the daemon never waits for readers and may overwrite
 *     that slot after about ring_slots - 1 frame intervals, so
 *     semdraw_frame_release() reports SEMDRAW_E_STALE when it did, and the
 *     pixels read meanwhile must be discarded. semdraw_frame_copy() never
 *     returns torn pixels.
 *  7. Restarts. The daemon has an instance id that changes when it restarts.
 *     The client notices (any reply or event with a new id) and raises
 *     SEMDRAW_EVENT_DAEMON_RESTARTED. With SEMDRAW_CONNECT_AUTO_RESTORE the
 *     client then recreates its canvases from what it sent (same size, seed,
 *     layers and layer ids, background, parameters and streaming state; new
 *     canvas ids and rings, the same handles) and
 *     raises SEMDRAW_EVENT_CANVAS_RESTORED for each; otherwise, and for
 *     attached (viewer) canvases, calls on those canvases return
 *     SEMDRAW_E_DAEMON_RESTARTED.
 */
#ifndef SEMDRAW_SEMDRAW_H
#define SEMDRAW_SEMDRAW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SEMDRAW_BUILDING_LIBRARY)
#define SEMDRAW_API __attribute__((visibility("default")))
#else
#define SEMDRAW_API
#endif

/* ---- versions ---- */

#define SEMDRAW_VERSION_MAJOR 0
#define SEMDRAW_VERSION_MINOR 2
#define SEMDRAW_VERSION_PATCH 0
#define SEMDRAW_VERSION_HEX ((SEMDRAW_VERSION_MAJOR << 16) | (SEMDRAW_VERSION_MINOR << 8) | SEMDRAW_VERSION_PATCH)

/* The loaded library's SEMDRAW_VERSION_HEX, and the same as "0.2.0". */
SEMDRAW_API unsigned semdraw_version(void);
SEMDRAW_API const char *semdraw_version_string(void);

/* ---- status codes ---- */

/*
 * -1 .. -11 travel on the wire: they are the codes the daemon puts in its
 * error replies (proto/semdraw/v1/wire_status.h). The others are the SDK's own.
 */
enum semdraw_status {
    SEMDRAW_OK = 0,
    SEMDRAW_E_INVAL = -1,       /* an argument or a value in a request is invalid */
    SEMDRAW_E_NOMEM = -2,       /* out of memory, here or in the daemon */
    SEMDRAW_E_IO = -3,          /* a file, socket or mapping failed */
    SEMDRAW_E_FORMAT = -4,      /* a malformed message or file */
    SEMDRAW_E_NOTFOUND = -5,    /* no such canvas or layer */
    SEMDRAW_E_UNSUPPORTED = -6, /* valid, but this daemon does not do it */
    SEMDRAW_E_SHAPE = -7,       /* a mask or image of the wrong size */
    SEMDRAW_E_BACKEND = -8,     /* the daemon's compute backend failed */
    SEMDRAW_E_NOMODEL = -9,     /* the model is still loading, or failed to load */
    SEMDRAW_E_PERM = -10,       /* not allowed: an edit on a canvas attached as a viewer, a wrong key */
    SEMDRAW_E_BUSY = -11,       /* the canvas has too much waiting: retry the commit after its next frame */
    SEMDRAW_E_AGAIN = -20,      /* nothing new yet: no newer frame, no event */
    SEMDRAW_E_TIMEDOUT = -21,   /* the daemon did not answer, or no frame came, in time */
    SEMDRAW_E_CLOSED = -22,     /* the client or canvas was closed (or the daemon closed the canvas) */
    SEMDRAW_E_STALE = -23,      /* the frame was overwritten while it was held: discard its pixels */
    SEMDRAW_E_DAEMON_RESTARTED = -24, /* the daemon restarted; this canvas did not survive it */
    SEMDRAW_E_PROTO = -25,      /* the daemon answered something this library does not understand */
    SEMDRAW_E_VERSION = -26,    /* no protocol version in common with the daemon */
    SEMDRAW_E_NOSPC = -27       /* the destination buffer is too small */
};

/* A short static description of a status code ("request timed out", ...). */
SEMDRAW_API const char *semdraw_strerror(int status);

/*
 * The detailed message of the last failing call on this thread: which field
 * the daemon refused and why, which file could not be opened. Valid until the
 * next call on this thread.
 */
SEMDRAW_API const char *semdraw_last_error(void);

/* ---- connection ---- */

typedef struct semdraw_client semdraw_client;

enum semdraw_connect_flags {
    SEMDRAW_CONNECT_AUTO_RESTORE = 1u << 0 /* recreate owned canvases after a daemon restart (rule 7) */
};

typedef struct semdraw_connect_opts {
    uint32_t struct_size;
    const char *runtime_dir;   /* NULL: $SEMDRAW_RUNTIME_DIR, else /run/semdraw */
    const char *client_name;   /* shown in the daemon's logs; NULL: "libsemdraw" */
    uint32_t timeout_ms;       /* per request; 0: 30000 (creating a large canvas on a CPU backend takes seconds) */
    uint32_t flags;            /* SEMDRAW_CONNECT_* */
} semdraw_connect_opts;

/*
 * Connect to the daemon of opts->runtime_dir (opts may be NULL) and say hello;
 * fails with SEMDRAW_E_TIMEDOUT when no daemon answers within the timeout and
 * with SEMDRAW_E_VERSION when it speaks no protocol version this library does.
 * The model may still be loading: see semdraw_client_info().
 */
SEMDRAW_API int semdraw_connect(const semdraw_connect_opts *opts, semdraw_client **out);

/*
 * End the session and close the connection. Canvas handles of the client stay
 * allocated until each is released with semdraw_canvas_release(); until then
 * every call on them returns SEMDRAW_E_CLOSED. NULL is a no-op.
 */
SEMDRAW_API void semdraw_disconnect(semdraw_client *c);

enum semdraw_model_state {
    SEMDRAW_MODEL_LOADING = 0,
    SEMDRAW_MODEL_READY = 1,
    SEMDRAW_MODEL_FAILED = 2
};

typedef struct semdraw_client_info {
    uint32_t struct_size;
    uint32_t protocol_version;  /* negotiated in the hello */
    uint64_t instance_id;       /* the daemon's; changes when it restarts */
    uint64_t session_id;
    uint32_t lease_ms;          /* the daemon forgets a client silent this long */
    uint32_t model_state;       /* semdraw_model_state, as last heard */
    float load_progress;        /* 0..1 while loading */
} semdraw_client_info;

SEMDRAW_API int semdraw_client_info_get(semdraw_client *c, semdraw_client_info *info);

/*
 * Block until the daemon's model is loaded (0), failed to load
 * (SEMDRAW_E_NOMODEL, with the daemon's reason) or timeout_ms passes
 * (SEMDRAW_E_TIMEDOUT; negative: no limit). Canvases can be created only once
 * the model is ready; a daemon answers from the moment it starts.
 */
SEMDRAW_API int semdraw_wait_ready(semdraw_client *c, int timeout_ms);

/* ---- events and the event loop ---- */

enum semdraw_event_type {
    SEMDRAW_EVENT_FRAME_READY = 1,      /* canvas, seq, input_seq: a new frame is in the ring */
    SEMDRAW_EVENT_MODEL_STATE = 2,      /* model_state, progress, message */
    SEMDRAW_EVENT_CANVAS_CLOSED = 3,    /* canvas, message (why): the daemon closed it; the handle stays until released */
    SEMDRAW_EVENT_DAEMON_RESTARTED = 4, /* the daemon has a new instance id */
    SEMDRAW_EVENT_DISCONNECTED = 5,     /* no answer for longer than the lease: the daemon is gone */
    SEMDRAW_EVENT_CANVAS_RESTORED = 6,  /* canvas: recreated after a restart (AUTO_RESTORE), new canvas_id */
    SEMDRAW_EVENT_ERROR = 7,            /* status, message: a failure found outside any call, e.g. a restore that failed */
    SEMDRAW_EVENT_CANVAS_ERROR = 8      /* canvas, error_kind, status, input_seq, message: the daemon's work on the
                                           canvas failed after the call that asked for it returned */
};

/*
 * SEMDRAW_EVENT_CANVAS_ERROR's kinds. Edits are applied, and frames made, at
 * the canvas's next frame boundary, so their failures arrive as events:
 * - EDIT: an edit of commit input_seq was refused; the canvas goes on
 *   without it.
 * - FRAME: a frame failed (the daemon ran out of memory, say). The canvas is
 *   as it was before that frame and its stream has stopped; start it again
 *   (semdraw_stream_start) once the cause is gone. A snapshot waiting for
 *   the frame returns the failure.
 * A canvas the daemon cannot keep after a failure is closed instead
 * (SEMDRAW_EVENT_CANVAS_CLOSED, with the reason).
 */
enum semdraw_canvas_error_kind {
    SEMDRAW_CANVAS_ERROR_EDIT = 1,
    SEMDRAW_CANVAS_ERROR_FRAME = 2
};

typedef struct semdraw_canvas semdraw_canvas;

typedef struct semdraw_event {
    uint32_t struct_size;
    uint32_t type;             /* semdraw_event_type */
    semdraw_canvas *canvas;    /* the handle the event is about, or NULL */
    uint64_t canvas_id;
    uint64_t seq, input_seq;   /* FRAME_READY */
    uint32_t model_state;      /* MODEL_STATE */
    float progress;            /* MODEL_STATE */
    int status;                /* ERROR, CANVAS_ERROR */
    const char *message;       /* valid during the callback; may be "" */
    uint32_t error_kind;       /* CANVAS_ERROR: semdraw_canvas_error_kind */
} semdraw_event;

typedef void (*semdraw_event_fn)(void *user, const semdraw_event *ev);

/* The callback runs only inside semdraw_dispatch() and may call any function of this API. */
SEMDRAW_API int semdraw_set_event_callback(semdraw_client *c, semdraw_event_fn fn, void *user);

/* One fd to poll for reading (level-triggered): when it is readable, call semdraw_dispatch(). */
SEMDRAW_API int semdraw_get_fd(semdraw_client *c);

/* Milliseconds until semdraw_dispatch() must run again for heartbeats (>= 0). */
SEMDRAW_API int semdraw_get_timeout_ms(semdraw_client *c);

/*
 * Never blocks: reads everything the daemon sent, sends a heartbeat when one
 * is due, notices restarts, and runs the event callback for each event.
 * Returns the number of events delivered, or a negative status.
 */
SEMDRAW_API int semdraw_dispatch(semdraw_client *c);

/* ---- canvases ---- */

enum semdraw_profile {
    SEMDRAW_PROFILE_DEFAULT = 0,   /* the fast stream settings */
    SEMDRAW_PROFILE_REFERENCE = 1  /* the reference implementation's settings, for comparisons */
};

enum semdraw_canvas_flags {
    SEMDRAW_CANVAS_SEED = 1u << 0,     /* desc.seed is set; otherwise the daemon picks one */
    SEMDRAW_CANVAS_DETACHED = 1u << 1  /* the canvas outlives this client's session until it is
                                          closed; other clients edit it after attaching with its key */
};

#define SEMDRAW_MAX_TIMESTEPS 16
#define SEMDRAW_KEY_SIZE 16

typedef struct semdraw_canvas_desc {
    uint32_t struct_size;
    uint32_t width, height;    /* multiples of 8 */
    uint32_t flags;            /* SEMDRAW_CANVAS_* */
    uint64_t seed;
    uint32_t profile;          /* semdraw_profile */
    uint32_t ring_slots;       /* 0: the daemon's default */
    uint32_t n_timesteps;      /* 0: the default list */
    uint32_t timesteps[SEMDRAW_MAX_TIMESTEPS]; /* indices on the 50-step grid, increasing */
} semdraw_canvas_desc;

/* A new canvas owned by this client; *out is released with semdraw_canvas_release(). */
SEMDRAW_API int semdraw_canvas_create(semdraw_client *c, const semdraw_canvas_desc *d, semdraw_canvas **out);

/*
 * Attach to an existing canvas. Without a key (NULL) the handle is a viewer:
 * it reads frames and gets events, and edits fail with SEMDRAW_E_PERM. With
 * the canvas's key (semdraw_canvas_key() of its creator) this client may edit
 * it too.
 */
SEMDRAW_API int semdraw_canvas_attach(semdraw_client *c, uint64_t canvas_id, const uint8_t key[SEMDRAW_KEY_SIZE],
                                      semdraw_canvas **out);

/* Ask the daemon to close the canvas (owners only); the handle stays valid until released. */
SEMDRAW_API int semdraw_canvas_close(semdraw_canvas *cv);

/*
 * Free the handle. A canvas this client owns and did not create DETACHED is
 * closed in the daemon too; a viewer just stops watching. NULL is a no-op.
 */
SEMDRAW_API void semdraw_canvas_release(semdraw_canvas *cv);

typedef struct semdraw_canvas_info {
    uint32_t struct_size;
    uint64_t canvas_id;        /* changes when AUTO_RESTORE recreates the canvas */
    uint32_t width, height;
    uint64_t seed;
    int is_owner;              /* 0 for viewers */
    int streaming;
    float fps, latency_ms;     /* as of the last status or info request */
    /* since 0.2: */
    char last_error[256];      /* the daemon's latest failure on this canvas (SEMDRAW_EVENT_CANVAS_ERROR,
                                  or a status request), "" if none */
} semdraw_canvas_info;

/* What the handle knows (no request is sent). Structs without last_error are accepted (rule 5). */
SEMDRAW_API int semdraw_canvas_info_get(semdraw_canvas *cv, semdraw_canvas_info *info);

/* The secret that lets another client edit this canvas (owners only; SEMDRAW_KEY_SIZE bytes). */
SEMDRAW_API int semdraw_canvas_key(semdraw_canvas *cv, uint8_t key[SEMDRAW_KEY_SIZE]);

/*
 * Edits below are held by the daemon and take effect together at the next
 * semdraw_canvas_commit(), at one frame boundary.
 */

/* Background: any argument may be NULL to keep it; rgb is 8-bit RGB at canvas size. */
SEMDRAW_API int semdraw_canvas_set_background(semdraw_canvas *cv, const char *prompt, const char *negative,
                                              const uint8_t *rgb, uint32_t stride);
/* A plain 0xRRGGBB background image. */
SEMDRAW_API int semdraw_canvas_set_background_color(semdraw_canvas *cv, uint32_t rgb);

enum semdraw_mask_type {
    SEMDRAW_MASK_CONTINUOUS = 0,
    SEMDRAW_MASK_SEMI_CONTINUOUS = 1,
    SEMDRAW_MASK_DISCRETE = 2
};

enum semdraw_param_fields {
    SEMDRAW_PARAM_GUIDANCE = 1u << 0,
    SEMDRAW_PARAM_BOOTSTRAP_STEPS = 1u << 1,
    SEMDRAW_PARAM_BOOTSTRAP_MIX = 1u << 2,
    SEMDRAW_PARAM_MASK_TYPE = 1u << 3,
    SEMDRAW_PARAM_COVER_ALPHA = 1u << 4,
    SEMDRAW_PARAM_SEED = 1u << 5,
    SEMDRAW_PARAM_EMBEDDED_GUIDANCE = 1u << 6, /* LCM-distilled UNets' guidance embedding */
    SEMDRAW_PARAM_AUTOFLUSH = 1u << 7
};

typedef struct semdraw_canvas_params {
    uint32_t struct_size;
    uint32_t fields;           /* SEMDRAW_PARAM_*: which of the values below to change */
    float guidance_scale;
    uint32_t bootstrap_steps;
    float bootstrap_mix_steps;
    uint32_t mask_type;        /* semdraw_mask_type */
    float cover_alpha;
    uint64_t seed;
    float embedded_guidance_scale;
    uint32_t autoflush;        /* 0 or 1 */
} semdraw_canvas_params;

/* Some daemons change only some parameters on a live canvas; the others fail with SEMDRAW_E_UNSUPPORTED. */
SEMDRAW_API int semdraw_canvas_set_params(semdraw_canvas *cv, const semdraw_canvas_params *p);

/* Start over from fresh noise at the next commit (the next frames are warm-up frames again). */
SEMDRAW_API int semdraw_canvas_reset_latent(semdraw_canvas *cv);

enum semdraw_layer_fields {
    SEMDRAW_LAYER_PROMPT = 1u << 0,
    SEMDRAW_LAYER_NEGATIVE = 1u << 1,
    SEMDRAW_LAYER_MASK = 1u << 2,
    SEMDRAW_LAYER_MASK_STD = 1u << 3,
    SEMDRAW_LAYER_MASK_STRENGTH = 1u << 4,
    SEMDRAW_LAYER_PROMPT_STRENGTH = 1u << 5
};

typedef struct semdraw_layer {
    uint32_t struct_size;
    uint32_t fields;           /* SEMDRAW_LAYER_*: which of the values below to set */
    const char *prompt;        /* UTF-8 */
    const char *negative;
    const uint8_t *mask;       /* 8-bit alpha at canvas size, 255 = inside */
    uint32_t mask_stride;      /* bytes per row; 0: the canvas width */
    float mask_std;            /* blur of the mask edge, in pixels (default 8) */
    float mask_strength;       /* 0..1 (default 1) */
    float prompt_strength;     /* 0..1 (default 0.95) */
} semdraw_layer;

/* Add a layer on top; fields not set take their defaults. *layer_id may be NULL. */
SEMDRAW_API int semdraw_layer_add(semdraw_canvas *cv, const semdraw_layer *l, uint32_t *layer_id);
/* Change the fields of an existing layer that l->fields names. */
SEMDRAW_API int semdraw_layer_set(semdraw_canvas *cv, uint32_t layer_id, const semdraw_layer *l);
SEMDRAW_API int semdraw_layer_remove(semdraw_canvas *cv, uint32_t layer_id);

/*
 * Apply every edit since the last commit at the canvas's next frame boundary.
 * Frames that reflect the commit carry *input_seq (may be NULL) or a later one.
 * SEMDRAW_E_BUSY: commits are arriving faster than the canvas renders and
 * the daemon's queue for it is full; the edits stay with the daemon, so call
 * commit again after the next frame (SEMDRAW_EVENT_FRAME_READY). Edits
 * themselves fail with SEMDRAW_E_BUSY when too many wait for a commit.
 */
SEMDRAW_API int semdraw_canvas_commit(semdraw_canvas *cv, uint64_t *input_seq);

/* ---- streaming ---- */

/* Render frames continuously, at most target_fps a second (0: as fast as the daemon can). */
SEMDRAW_API int semdraw_stream_start(semdraw_canvas *cv, float target_fps);
SEMDRAW_API int semdraw_stream_stop(semdraw_canvas *cv);
/*
 * Render until a frame has gone through every denoising step under the edits
 * committed so far (T frames; a streaming canvas just streams on), and wait
 * for it up to timeout_ms (negative: no limit). semdraw_frame_copy() then
 * returns that frame. When one of its frames fails (SEMDRAW_EVENT_CANVAS_ERROR,
 * kind FRAME), the wait ends with that failure's status and message.
 */
SEMDRAW_API int semdraw_canvas_snapshot(semdraw_canvas *cv, int timeout_ms);

/* ---- frames (rule 1: callable from one other thread) ---- */

#define SEMDRAW_FORMAT_RGBA8 0x34324241u /* bytes R, G, B, A ('AB24') */
#define SEMDRAW_FRAME_WARMUP 1u          /* one of the first frames after a reset */

typedef struct semdraw_frame {
    uint32_t struct_size;
    const uint8_t *pixels;     /* acquire: into the ring, read-only; copy: NULL */
    uint32_t width, height, stride, format;
    uint64_t seq;              /* 1, 2, ... per canvas */
    uint64_t input_seq;        /* the newest commit the frame reflects */
    uint64_t t_render_ns;      /* CLOCK_MONOTONIC when it was rendered */
    uint32_t dropped;          /* frames published since the previous acquire or copy that were never read */
    uint32_t flags;            /* SEMDRAW_FRAME_* */
} semdraw_frame;

/*
 * Hold the newest frame without copying it. SEMDRAW_E_AGAIN when there is no
 * frame newer than the last one acquired or copied through this handle.
 * Every successful acquire is followed by one semdraw_frame_release().
 */
SEMDRAW_API int semdraw_frame_acquire(semdraw_canvas *cv, semdraw_frame *f);
/* 0 when the pixels stayed intact while held; SEMDRAW_E_STALE when they must be discarded. */
SEMDRAW_API int semdraw_frame_release(semdraw_canvas *cv, semdraw_frame *f);

/*
 * Copy the newest frame (newer or not) into dst as RGBA8 rows of dst_stride
 * bytes, retrying while the daemon overwrites it. SEMDRAW_E_AGAIN before the
 * first frame, SEMDRAW_E_NOSPC when dst is too small.
 */
SEMDRAW_API int semdraw_frame_copy(semdraw_canvas *cv, void *dst, size_t dst_size, uint32_t dst_stride,
                                   semdraw_frame *info);

/*
 * Block until the canvas has a frame with seq > after_seq, or timeout_ms passes
 * (SEMDRAW_E_TIMEDOUT; negative: wait forever). Returns SEMDRAW_E_CLOSED when
 * the daemon closes the canvas meanwhile.
 */
SEMDRAW_API int semdraw_frame_wait(semdraw_canvas *cv, uint64_t after_seq, int timeout_ms);

/* ---- daemon status ---- */

typedef struct semdraw_status_canvas {
    uint64_t canvas_id;
    uint32_t width, height;
    uint64_t seed;
    int streaming;
    float fps, latency_ms;
} semdraw_status_canvas;

typedef struct semdraw_status_info {
    uint32_t struct_size;
    uint32_t model_state;      /* semdraw_model_state */
    float load_progress;
    uint32_t clients;
    uint32_t queue_depth;      /* commits waiting for their canvas's next frame */
    uint64_t device_memory_bytes;
    uint32_t n_canvases;
    semdraw_status_canvas *canvases; /* every canvas of the daemon; freed by semdraw_status_free */
} semdraw_status_info;

SEMDRAW_API int semdraw_status_get(semdraw_client *c, semdraw_status_info *st);
SEMDRAW_API void semdraw_status_free(semdraw_status_info *st);

#ifdef __cplusplus
}
#endif
#endif
