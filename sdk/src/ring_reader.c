/* Frame rings, reader side: validation and the seqlock copy protocol. */
#define _GNU_SOURCE
#include "ring_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "semdraw/v1/ring_abi.h"

#define COPY_RETRIES 64

struct semdraw_ring_reader {
    const semdraw_ring_header *h;
    const uint8_t *base;
    size_t size;
};

/* Geometry that does not fit the file is treated as a foreign or damaged file. */
static int check_header(const semdraw_ring_header *h, size_t size)
{
    if (memcmp(h->magic, SEMDRAW_RING_MAGIC, 8) != 0 || h->abi_version != SEMDRAW_RING_ABI_VERSION)
        return SEMDRAW_RING_EFORMAT;
    if (h->total_size != size || h->slot_count < 1 || h->slot_count > 1024 || h->width < 1 ||
        h->height < 1 || h->stride < 4 * (uint64_t)h->width || h->format != SEMDRAW_FOURCC_AB24)
        return SEMDRAW_RING_EFORMAT;
    const uint64_t records = sizeof *h + (uint64_t)h->slot_count * sizeof(semdraw_ring_slot);
    if (h->slots_offset < records || h->slot_size < (uint64_t)h->stride * h->height ||
        h->slots_offset > size || (size - h->slots_offset) / h->slot_count < h->slot_size)
        return SEMDRAW_RING_EFORMAT;
    return SEMDRAW_RING_OK;
}

int semdraw_ring_open(const char *path, semdraw_ring_reader **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SEMDRAW_RING_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(semdraw_ring_header)) {
        close(fd);
        return SEMDRAW_RING_EFORMAT; /* not even a header */
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return SEMDRAW_RING_EIO;
    int rc = check_header(base, (size_t)st.st_size);
    semdraw_ring_reader *r = rc ? NULL : calloc(1, sizeof *r);
    if (!r) {
        munmap(base, (size_t)st.st_size);
        return rc ? rc : SEMDRAW_RING_EIO;
    }
    r->h = base, r->base = base, r->size = (size_t)st.st_size;
    *out = r;
    return SEMDRAW_RING_OK;
}

void semdraw_ring_close(semdraw_ring_reader *r)
{
    if (!r) return;
    munmap((void *)r->base, r->size);
    free(r);
}

void semdraw_ring_get_info(const semdraw_ring_reader *r, semdraw_ring_info *i)
{
    const semdraw_ring_header *h = r->h;
    *i = (semdraw_ring_info){h->instance_id, h->canvas_id, h->generation, h->width, h->height,
                             h->stride, h->format, h->slot_count};
}

uint32_t semdraw_ring_state(const semdraw_ring_reader *r)
{
    return atomic_load_explicit(&((semdraw_ring_header *)r->h)->state, memory_order_acquire);
}

int semdraw_ring_copy_latest(semdraw_ring_reader *r, void *dst, size_t cap, semdraw_ring_frame *f)
{
    return semdraw_ring_copy_rows(r, dst, cap, r->h->stride, f);
}

/*
 * The newest complete frame under its slot's seqlock: metadata, then (dst)
 * its rows copied or (pixels) a pointer to them, then the re-check that the
 * writer did not touch the slot meanwhile. Retries a bounded number of times.
 */
static int read_latest(semdraw_ring_reader *r, semdraw_ring_frame *f, uint8_t *dst, size_t dst_stride,
                       const uint8_t **pixels)
{
    semdraw_ring_header *h = (semdraw_ring_header *)r->h;
    const size_t row = (size_t)h->width * 4;
    if (semdraw_ring_state(r) == SEMDRAW_RING_RETIRED) return SEMDRAW_RING_ERETIRED;
    for (int attempt = 0; attempt < COPY_RETRIES; attempt++) {
        const uint64_t s = atomic_load_explicit(&h->latest_seq, memory_order_acquire);
        if (!s) return SEMDRAW_RING_EAGAIN;
        semdraw_ring_slot *slot = &h->slots[s % h->slot_count];
        if (atomic_load_explicit(&slot->lock, memory_order_acquire) != 2 * s) continue;
        f->seq = s;
        f->input_seq = atomic_load_explicit(&slot->input_seq, memory_order_relaxed);
        f->t_render_ns = atomic_load_explicit(&slot->t_render_ns, memory_order_relaxed);
        f->flags = atomic_load_explicit(&slot->flags, memory_order_relaxed);
        f->heartbeat_ns = atomic_load_explicit(&h->writer_heartbeat_ns, memory_order_relaxed);
        const uint8_t *src = r->base + h->slots_offset + (s % h->slot_count) * h->slot_size;
        if (dst && dst_stride == h->stride && dst_stride == row)
            memcpy(dst, src, row * h->height);
        else
            for (uint32_t y = 0; dst && y < h->height; y++) memcpy(dst + y * dst_stride, src + (size_t)y * h->stride, row);
        atomic_thread_fence(memory_order_acquire); /* the reads happen before the re-check */
        if (atomic_load_explicit(&slot->lock, memory_order_relaxed) != 2 * s) continue; /* lapped: torn */
        if (pixels) *pixels = src;
        return SEMDRAW_RING_OK;
    }
    return SEMDRAW_RING_ESTALE;
}

int semdraw_ring_copy_rows(semdraw_ring_reader *r, void *dst, size_t cap, size_t dst_stride, semdraw_ring_frame *f)
{
    const size_t row = (size_t)r->h->width * 4;
    if (dst_stride < row || cap < dst_stride * (r->h->height - 1) + row) return SEMDRAW_RING_ENOSPC;
    return read_latest(r, f, dst, dst_stride, NULL);
}

uint64_t semdraw_ring_latest(const semdraw_ring_reader *r)
{
    return atomic_load_explicit(&((semdraw_ring_header *)r->h)->latest_seq, memory_order_acquire);
}

int semdraw_ring_peek(semdraw_ring_reader *r, semdraw_ring_frame *f, const uint8_t **pixels)
{
    return read_latest(r, f, NULL, 0, pixels);
}

int semdraw_ring_still_valid(const semdraw_ring_reader *r, uint64_t seq)
{
    semdraw_ring_header *h = (semdraw_ring_header *)r->h;
    atomic_thread_fence(memory_order_acquire); /* the caller's reads of the pixels happen before */
    return atomic_load_explicit(&h->slots[seq % h->slot_count].lock, memory_order_relaxed) == 2 * seq;
}

uint32_t semdraw_ring_wake_count(const semdraw_ring_reader *r)
{
    return atomic_load_explicit(&((semdraw_ring_header *)r->h)->futex_word, memory_order_acquire);
}

void semdraw_ring_wait(const semdraw_ring_reader *r, uint32_t seen, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    /* a shared futex (no FUTEX_PRIVATE_FLAG): the writer is another process; reading is enough to wait */
    if (syscall(SYS_futex, &((semdraw_ring_header *)r->h)->futex_word, FUTEX_WAIT, seen, &ts, NULL, 0) != 0 &&
        errno != EAGAIN && errno != ETIMEDOUT && errno != EINTR)
        nanosleep(&(struct timespec){0, 2000000L}, NULL); /* no futex on this mapping: poll */
}
