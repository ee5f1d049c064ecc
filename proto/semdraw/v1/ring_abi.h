/*
 * semdraw/v1/ring_abi.h - the shared-memory frame ring, as laid out in memory.
 *
 * This layout is wire ABI, like the .proto files beside it: the daemon writes
 * it, any local process maps it read-only. One file per canvas in the runtime
 * directory, canvas-<canvas_id>-<generation>.ring, sized once and never
 * shrunk while live:
 *
 *   page 0..      header (semdraw_ring_header) followed by slot_count
 *                 semdraw_ring_slot records
 *   slots_offset  slot_count pixel slots of slot_size bytes each, page aligned
 *
 * Frames are RGBA8 (format = SEMDRAW_FOURCC_AB24: bytes R, G, B, A in memory),
 * rows of `stride` bytes. Each slot is guarded by a seqlock: while frame s is
 * written its lock holds 2s-1, afterwards 2s; latest_seq names the newest
 * complete frame and lives in slot latest_seq % slot_count. The writer never
 * waits for readers; a reader that sees the lock change while copying retries.
 * Multi-byte fields are little-endian (the machine's order on every supported
 * host). The atomics are lock-free 64-bit and so valid across processes.
 */
#ifndef SEMDRAW_V1_RING_ABI_H
#define SEMDRAW_V1_RING_ABI_H

#include <stdatomic.h>
#include <stdint.h>

#define SEMDRAW_RING_MAGIC "SDRING\0\1" /* 8 bytes, compared with memcmp */
#define SEMDRAW_RING_ABI_VERSION 1u
#define SEMDRAW_FOURCC_AB24 0x34324241u /* 'A' 'B' '2' '4' */

enum semdraw_ring_state {
    SEMDRAW_RING_RUNNING = 1,
    SEMDRAW_RING_STOPPED = 2, /* the canvas stopped streaming; frames stay readable */
    SEMDRAW_RING_RETIRED = 3  /* the canvas is gone; unmap and forget this file */
};

#define SEMDRAW_RING_FLAG_WARMUP 1u /* one of the first T-1 frames after a reset */

/* One slot's seqlock and the metadata of the frame in it (64 bytes). */
typedef struct semdraw_ring_slot {
    _Atomic uint64_t lock;        /* 2s - 1 while frame s is written, 2s when complete */
    _Atomic uint64_t frame_seq;   /* s */
    _Atomic uint64_t input_seq;   /* the last client commit the frame reflects */
    _Atomic uint64_t t_render_ns; /* CLOCK_MONOTONIC when the frame was rendered */
    _Atomic uint32_t flags;       /* SEMDRAW_RING_FLAG_* */
    uint32_t reserved0;
    uint64_t reserved[3];
} semdraw_ring_slot;

typedef struct semdraw_ring_header {
    char magic[8];
    uint32_t abi_version;
    uint32_t header_size;         /* bytes before slots_offset that the header and slot records use */
    uint64_t total_size;          /* the file size */
    uint64_t instance_id;         /* random per daemon start: a new value means a restart */
    uint64_t canvas_id;
    uint32_t generation;
    uint32_t width, height, stride, format, slot_count;
    uint64_t slot_size, slots_offset;
    _Atomic uint32_t state;       /* semdraw_ring_state */
    uint32_t reserved1;
    _Atomic uint64_t latest_seq;  /* 0: no frame yet */
    _Atomic uint64_t writer_heartbeat_ns; /* CLOCK_MONOTONIC, at least once a second */
    _Atomic uint32_t futex_word;  /* bumped with each frame, for blocking waits */
    uint32_t reserved2;
    uint64_t reserved[6];
    semdraw_ring_slot slots[];    /* slot_count records */
} semdraw_ring_header;

_Static_assert(sizeof(semdraw_ring_slot) == 64, "ring slot record is 64 bytes");
_Static_assert(sizeof(semdraw_ring_header) == 160, "ring header is 160 bytes");
_Static_assert(__builtin_offsetof(semdraw_ring_header, slot_size) == 64, "no hidden padding");
_Static_assert(__builtin_offsetof(semdraw_ring_header, latest_seq) == 88, "no hidden padding");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared");

#endif
