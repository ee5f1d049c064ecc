/*
 * ring_reader.h - libsemdraw's side of a frame ring (proto/semdraw/v1/ring_abi.h):
 * map a ring read-only, validate it, and copy out the newest complete frame
 * under the per-slot seqlock. Internal: the public frame calls (semdraw.h)
 * are built on it.
 */
#ifndef SEMDRAW_RING_READER_H
#define SEMDRAW_RING_READER_H

#include <stddef.h>
#include <stdint.h>

enum {
    SEMDRAW_RING_OK = 0,
    SEMDRAW_RING_EIO = -1,       /* cannot open or map the file */
    SEMDRAW_RING_EFORMAT = -2,   /* not a ring, another ABI, or inconsistent geometry */
    SEMDRAW_RING_EAGAIN = -3,    /* no frame published yet */
    SEMDRAW_RING_ESTALE = -4,    /* the writer kept overwriting the slot while we copied */
    SEMDRAW_RING_ERETIRED = -5,  /* the canvas is gone */
    SEMDRAW_RING_ENOSPC = -6     /* the destination buffer is too small */
};

typedef struct semdraw_ring_reader semdraw_ring_reader;

typedef struct semdraw_ring_info {
    uint64_t instance_id, canvas_id;
    uint32_t generation, width, height, stride, format, slot_count;
} semdraw_ring_info;

typedef struct semdraw_ring_frame {
    uint64_t seq, input_seq, t_render_ns, heartbeat_ns;
    uint32_t flags;
} semdraw_ring_frame;

int semdraw_ring_open(const char *path, semdraw_ring_reader **out);
void semdraw_ring_close(semdraw_ring_reader *r);
void semdraw_ring_get_info(const semdraw_ring_reader *r, semdraw_ring_info *info);
uint32_t semdraw_ring_state(const semdraw_ring_reader *r);

/*
 * Copy the newest complete frame (height x stride bytes) into dst. Retries
 * a bounded number of times when the writer laps the slot during the copy.
 */
int semdraw_ring_copy_latest(semdraw_ring_reader *r, void *dst, size_t cap, semdraw_ring_frame *frame);

/* The same with rows of dst_stride bytes in dst (at least 4 x width). */
int semdraw_ring_copy_rows(semdraw_ring_reader *r, void *dst, size_t cap, size_t dst_stride,
                           semdraw_ring_frame *frame);

/* The newest published frame's sequence number, 0 before the first. */
uint64_t semdraw_ring_latest(const semdraw_ring_reader *r);

/*
 * Zero copy: the newest complete frame's metadata and a pointer to its pixels
 * in the mapping. The writer may overwrite them at any time;
 * semdraw_ring_still_valid() says afterwards whether it did.
 */
int semdraw_ring_peek(semdraw_ring_reader *r, semdraw_ring_frame *frame, const uint8_t **pixels);
int semdraw_ring_still_valid(const semdraw_ring_reader *r, uint64_t seq);

/*
 * Wait until the writer publishes a frame after `seen` (a value of
 * semdraw_ring_wake_count) or timeout_ms passes; spurious wakeups happen.
 */
uint32_t semdraw_ring_wake_count(const semdraw_ring_reader *r);
void semdraw_ring_wait(const semdraw_ring_reader *r, uint32_t seen, int timeout_ms);

#endif
