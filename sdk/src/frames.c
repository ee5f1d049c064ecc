/*
 * Frames: reads from the canvas's shared-memory ring, never a request. These
 * calls may run on one thread other than the control thread (semdraw.h rule
 * 1): they touch the ring through an atomic pointer that a restore swaps
 * (the old mapping stays valid until the handle is released) and the
 * frame-bookkeeping fields, which only the reading thread writes.
 */
#include <string.h>

#include "internal.h"
#include "semdraw/v1/ring_abi.h"

static int ring_status(int rc, const char *what)
{
    switch (rc) {
    case SEMDRAW_RING_OK: return SEMDRAW_OK;
    case SEMDRAW_RING_EAGAIN: return sdk_fail(SEMDRAW_E_AGAIN, "%s: no frame yet", what);
    case SEMDRAW_RING_ESTALE: return sdk_fail(SEMDRAW_E_STALE, "%s: the daemon kept overwriting the frame", what);
    case SEMDRAW_RING_ERETIRED: return sdk_fail(SEMDRAW_E_CLOSED, "%s: the canvas is closed", what);
    case SEMDRAW_RING_ENOSPC: return sdk_fail(SEMDRAW_E_NOSPC, "%s: the buffer is too small", what);
    default: return sdk_fail(SEMDRAW_E_IO, "%s: the ring cannot be read", what);
    }
}

static semdraw_ring_reader *ring_of(semdraw_canvas *cv, const char *what, int *rc)
{
    semdraw_ring_reader *r = cv ? atomic_load(&cv->ring) : NULL;
    *rc = r ? SEMDRAW_OK : sdk_fail(cv ? SEMDRAW_E_CLOSED : SEMDRAW_E_INVAL, "%s: no canvas", what);
    return r;
}

static void fill(semdraw_frame *f, semdraw_ring_reader *r, const semdraw_ring_frame *rf, uint64_t last_read)
{
    semdraw_ring_info info;
    semdraw_ring_get_info(r, &info);
    f->width = info.width, f->height = info.height, f->stride = info.stride, f->format = info.format;
    f->seq = rf->seq, f->input_seq = rf->input_seq, f->t_render_ns = rf->t_render_ns;
    f->flags = rf->flags & SEMDRAW_FRAME_WARMUP;
    f->dropped = last_read && rf->seq > last_read + 1 ? (uint32_t)(rf->seq - last_read - 1) : 0;
}

SEMDRAW_API int semdraw_frame_acquire(semdraw_canvas *cv, semdraw_frame *f)
{
    int rc;
    semdraw_ring_reader *r = ring_of(cv, "semdraw_frame_acquire", &rc);
    if (!r) return rc;
    if (!f || f->struct_size < sizeof *f) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_frame_acquire: bad frame struct");
    if (cv->held_ring) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_frame_acquire: the previous frame is not released");
    const uint64_t last = atomic_load(&cv->last_read_seq);
    if (semdraw_ring_state(r) == SEMDRAW_RING_RETIRED) return ring_status(SEMDRAW_RING_ERETIRED, "semdraw_frame_acquire");
    if (semdraw_ring_latest(r) <= last && last) return sdk_fail(SEMDRAW_E_AGAIN, "no newer frame");
    semdraw_ring_frame rf = {0};
    const uint8_t *px = NULL;
    if ((rc = ring_status(semdraw_ring_peek(r, &rf, &px), "semdraw_frame_acquire"))) return rc;
    if (rf.seq <= last) return sdk_fail(SEMDRAW_E_AGAIN, "no newer frame");
    fill(f, r, &rf, last);
    f->pixels = px;
    cv->held_ring = r, cv->held_seq = rf.seq;
    atomic_store(&cv->last_read_seq, rf.seq);
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_frame_release(semdraw_canvas *cv, semdraw_frame *f)
{
    if (!cv || !f) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_frame_release: NULL argument");
    if (!cv->held_ring || f->seq != cv->held_seq)
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_frame_release: this frame is not held");
    const int intact = semdraw_ring_still_valid(cv->held_ring, cv->held_seq);
    cv->held_ring = NULL, cv->held_seq = 0;
    f->pixels = NULL;
    return intact ? SEMDRAW_OK : sdk_fail(SEMDRAW_E_STALE, "frame %llu was overwritten while held",
                                          (unsigned long long)f->seq);
}

SEMDRAW_API int semdraw_frame_copy(semdraw_canvas *cv, void *dst, size_t dst_size, uint32_t dst_stride,
                                   semdraw_frame *info)
{
    int rc;
    semdraw_ring_reader *r = ring_of(cv, "semdraw_frame_copy", &rc);
    if (!r) return rc;
    if (!dst || (info && info->struct_size < sizeof *info))
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_frame_copy: NULL buffer or bad frame struct");
    semdraw_ring_info ri;
    semdraw_ring_get_info(r, &ri);
    semdraw_ring_frame rf = {0};
    rc = ring_status(semdraw_ring_copy_rows(r, dst, dst_size, dst_stride ? dst_stride : 4u * ri.width, &rf),
                     "semdraw_frame_copy");
    if (rc) return rc;
    const uint64_t last = atomic_load(&cv->last_read_seq);
    if (info) {
        fill(info, r, &rf, last);
        info->pixels = NULL;
        info->stride = dst_stride ? dst_stride : 4u * ri.width;
    }
    if (rf.seq > last) atomic_store(&cv->last_read_seq, rf.seq);
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_frame_wait(semdraw_canvas *cv, uint64_t after_seq, int timeout_ms)
{
    if (!cv) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_frame_wait: canvas is NULL");
    const double deadline = sdk_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        semdraw_ring_reader *r = atomic_load(&cv->ring); /* a restore may swap it while we wait */
        if (!r) return sdk_fail(SEMDRAW_E_CLOSED, "semdraw_frame_wait: no ring");
        const uint32_t seen = semdraw_ring_wake_count(r);
        if (semdraw_ring_latest(r) > after_seq) return SEMDRAW_OK;
        if (semdraw_ring_state(r) == SEMDRAW_RING_RETIRED && atomic_load(&cv->ring) == r)
            return sdk_fail(SEMDRAW_E_CLOSED, "the canvas was closed while waiting for a frame");
        const double left = deadline - sdk_now_ms();
        if (timeout_ms >= 0 && left <= 0)
            return sdk_fail(SEMDRAW_E_TIMEDOUT, "no frame after %llu within %d ms", (unsigned long long)after_seq,
                            timeout_ms);
        /* short slices: a daemon killed without retiring the ring never wakes us */
        semdraw_ring_wait(r, seen, timeout_ms < 0 || left > 100 ? 100 : (int)left + 1);
    }
}
