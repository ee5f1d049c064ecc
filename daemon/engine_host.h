/*
 * engine_host.h - the daemon's engine thread: it owns the loaded models and
 * every canvas, and streams frames into the canvases' rings (service.md
 * section 5). Other threads talk to it only through this API, which is
 * thread-safe: creating and closing canvases waits for the engine thread;
 * edits are handed over at commit and applied together at the next frame
 * boundary of that canvas; streaming is paced per canvas.
 */
#ifndef SEMDRAWD_ENGINE_HOST_H
#define SEMDRAWD_ENGINE_HOST_H

#include <stdint.h>

#include "semd/canvas.h"
#include "semdraw/v1/wire_status.h"

typedef struct semd_host semd_host;

/*
 * Called on the engine thread after each published frame (keep it short: the
 * daemon queues a hint and wakes its loop). May be NULL.
 */
typedef void (*semd_host_frame_fn)(void *ctx, uint64_t canvas_id, uint64_t seq, uint64_t input_seq,
                                   uint64_t t_ns);

/* The models stay owned by the caller and must outlive the host. */
int semd_host_start(const semd_sd_models *models, const char *runtime_dir, uint64_t instance_id,
                    semd_host_frame_fn on_frame, void *ctx, semd_host **out);
/* Stop the thread, retire every ring, free every canvas. */
void semd_host_stop(semd_host *h);

/* A new canvas and its frame ring; ring_path (caller frees) names the ring file. */
int semd_host_create_canvas(semd_host *h, const semd_canvas_params *p, int ring_slots,
                            uint64_t *canvas_id, char **ring_path);
int semd_host_close_canvas(semd_host *h, uint64_t canvas_id);

/*
 * The same without waiting, for threads that must stay responsive (the
 * daemon's loop): the engine thread runs them between rounds, in order.
 * `done` runs on the engine thread once the canvas exists or failed (error:
 * the message; ring_path is only valid during the call); when the host stops
 * first, it runs from semd_host_stop with SEMD_EBACKEND. An async close also
 * stops the canvas's frames at once.
 */
typedef void (*semd_host_created_fn)(void *ctx, int rc, uint64_t canvas_id, const char *ring_path,
                                     const char *error);
int semd_host_create_canvas_async(semd_host *h, const semd_canvas_params *p, int ring_slots,
                                  semd_host_created_fn done, void *ctx);
int semd_host_close_canvas_async(semd_host *h, uint64_t canvas_id);

/* One edit of a commit; the host copies everything it points to. */
typedef enum semd_host_edit_kind {
    SEMD_HOST_SET_LAYER,    /* layer_id < 0: add (ids count up from 0 per canvas) */
    SEMD_HOST_REMOVE_LAYER,
    SEMD_HOST_SET_BACKGROUND,
    SEMD_HOST_SET_SEED,
    SEMD_HOST_RESET_LATENT, /* start over from noise: the next frames are warm-up again */
    SEMD_HOST_SET_PARAMS    /* live canvas parameters (semd_canvas_set_params) */
} semd_host_edit_kind;

typedef struct semd_host_edit {
    semd_host_edit_kind kind;
    int layer_id;
    semd_layer_desc layer;  /* SET_LAYER */
    unsigned fields;        /* SET_LAYER: SEMD_LAYER_* bits; SET_PARAMS: SEMD_CANVAS_PARAM_* bits */
    const char *bg_prompt, *bg_negative;
    const uint8_t *bg_rgb;  /* SET_BACKGROUND: any may be NULL (kept) */
    uint64_t seed;          /* SET_SEED */
    semd_canvas_params params; /* SET_PARAMS: the fields named by `fields` (suffix is not read) */
} semd_host_edit;

/*
 * Hand a batch of edits to the canvas; they apply together before its next
 * frame, and frames made after that carry *input_seq (1, 2, ... per canvas).
 * SEMDRAW_WIRE_EBUSY (nothing taken) when SEMD_HOST_MAX_PENDING commits
 * already wait for the canvas's next frame.
 */
#define SEMD_HOST_MAX_PENDING 32
int semd_host_commit(semd_host *h, uint64_t canvas_id, const semd_host_edit *edits, int n,
                     uint64_t *input_seq);

/* Stream frames into the ring, at most target_fps a second (0: as fast as the engine goes). */
int semd_host_start_stream(semd_host *h, uint64_t canvas_id, float target_fps);
int semd_host_stop_stream(semd_host *h, uint64_t canvas_id);

/*
 * A snapshot: a canvas that is not streaming renders *frames = T frames, the
 * last of which went through every denoising step under the edits committed
 * so far (a streaming canvas just keeps streaming).
 */
int semd_host_snapshot(semd_host *h, uint64_t canvas_id, int *frames);

/* What status reports about one canvas. */
typedef struct semd_host_canvas_stats {
    int streaming;
    float target_fps;      /* 0: as fast as the engine goes */
    float fps;             /* frames a second, smoothed over the last few frames */
    float latency_ms;      /* commit to the first frame reflecting it, the latest one */
    int pending_commits;   /* commits waiting for the canvas's next frame boundary */
    uint64_t frames;       /* frames published so far */
    uint64_t input_seq;    /* the commit the newest frame reflects */
    uint64_t memory_bytes; /* semd_canvas_memory as of its latest round */
} semd_host_canvas_stats;
int semd_host_get_stats(semd_host *h, uint64_t canvas_id, semd_host_canvas_stats *out);

/*
 * Counts the engine thread's passes through its loop (one per round of frames
 * or command) and says whether it is idle, waiting for work. A busy engine whose
 * count stops moving is stuck; the systemd watchdog follows this.
 */
uint64_t semd_host_progress(semd_host *h, int *idle);

/* What all canvases hold between frames (semd_canvas_memory), as of their latest rounds. */
uint64_t semd_host_memory(semd_host *h);

/*
 * Failures the engine thread meets on its own, after the call that caused
 * them returned: the host's user hears of each through the error callback.
 */
typedef enum semd_host_error_kind {
    SEMD_HOST_EDIT_REFUSED = 1, /* an edit of a commit was refused before it changed anything (a bad
                                   value, an unknown layer); the canvas goes on without it */
    SEMD_HOST_FRAME_FAILED = 2, /* the canvas's frame failed (out of host or device memory, say); the
                                   canvas is as it was before that frame, its stream and snapshot stop
                                   until asked again, and the round's other canvases got their frames */
    SEMD_HOST_CANVAS_LOST = 3   /* an edit failed half-way (out of memory, a backend error): the canvas's
                                   state cannot be trusted, and the host has closed it already */
} semd_host_error_kind;

/*
 * Runs on the engine thread (keep it short, like the frame callback); code is
 * the SEMD_E* status, input_seq the commit involved (for frames: the newest
 * applied), message what went wrong. NULL: nobody is told (the last error
 * stays readable below). Set it before creating canvases.
 */
typedef void (*semd_host_error_fn)(void *ctx, uint64_t canvas_id, semd_host_error_kind kind, int code,
                                   uint64_t input_seq, const char *message);
void semd_host_set_error_fn(semd_host *h, semd_host_error_fn fn, void *ctx);

/* The last failure the engine thread met on this canvas, or "". */
int semd_host_canvas_error(semd_host *h, uint64_t canvas_id, char *buf, size_t cap);

#endif
