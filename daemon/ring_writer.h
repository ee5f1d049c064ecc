/*
 * ring_writer.h - the daemon's side of a frame ring (proto/semdraw/v1/ring_abi.h):
 * create the file, publish frames under the per-slot seqlock, keep the
 * heartbeat, retire. The writer never waits for readers.
 */
#ifndef SEMDRAWD_RING_WRITER_H
#define SEMDRAWD_RING_WRITER_H

#include <stdint.h>

typedef struct semd_ring semd_ring;

/*
 * Create <dir>/canvas-<canvas_id>-<generation>.ring (O_EXCL, mode 0640) for
 * width x height RGBA8 frames in `slots` slots, state RUNNING, no frame yet.
 */
int semd_ring_create(const char *dir, uint64_t instance_id, uint64_t canvas_id, uint32_t generation,
                     int width, int height, int slots, semd_ring **out);
const char *semd_ring_path(const semd_ring *r);

/*
 * Write frame `seq` (1, 2, ... increasing): begin returns the slot's pixels
 * (stride = 4 x width) with its lock taken; commit publishes it.
 */
uint8_t *semd_ring_begin(semd_ring *r, uint64_t seq);
void semd_ring_commit(semd_ring *r, uint64_t seq, uint64_t input_seq, uint64_t t_render_ns,
                      uint32_t flags);

void semd_ring_heartbeat(semd_ring *r);
void semd_ring_set_state(semd_ring *r, uint32_t state);
/* Mark RETIRED, unlink the file and unmap it (readers keep their mappings). */
void semd_ring_retire(semd_ring *r);

#endif
