/* Frame rings, writer side: file creation and the seqlock publish protocol. */
#define _GNU_SOURCE
#include "ring_writer.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "semd/status.h"
#include "semdraw/v1/ring_abi.h"

struct semd_ring {
    char *path;
    semdraw_ring_header *h;
    uint8_t *base;
    size_t size;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t page_round(size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

static void fill_header(semdraw_ring_header *h, uint64_t instance_id, uint64_t canvas_id,
                        uint32_t generation, int width, int height, int slots, size_t header,
                        size_t slot_size, size_t total)
{
    memcpy(h->magic, SEMDRAW_RING_MAGIC, 8);
    h->abi_version = SEMDRAW_RING_ABI_VERSION;
    h->header_size = (uint32_t)(sizeof *h + (size_t)slots * sizeof(semdraw_ring_slot));
    h->total_size = total;
    h->instance_id = instance_id, h->canvas_id = canvas_id, h->generation = generation;
    h->width = (uint32_t)width, h->height = (uint32_t)height, h->stride = (uint32_t)width * 4;
    h->format = SEMDRAW_FOURCC_AB24;
    h->slot_count = (uint32_t)slots;
    h->slot_size = slot_size, h->slots_offset = header;
    atomic_store_explicit(&h->writer_heartbeat_ns, now_ns(), memory_order_relaxed);
    atomic_store_explicit(&h->latest_seq, 0, memory_order_relaxed);
    atomic_store_explicit(&h->state, SEMDRAW_RING_RUNNING, memory_order_release);
}

int semd_ring_create(const char *dir, uint64_t instance_id, uint64_t canvas_id, uint32_t generation,
                     int width, int height, int slots, semd_ring **out)
{
    *out = NULL;
    if (width < 1 || height < 1 || width > 16384 || height > 16384 || slots < 2 || slots > 64)
        return semd_error(SEMD_EINVAL, "ring: %dx%d with %d slots (sizes 1..16384, 2..64 slots)",
                          width, height, slots);
    semd_ring *r = calloc(1, sizeof *r);
    if (!r || asprintf(&r->path, "%s/canvas-%llu-%u.ring", dir, (unsigned long long)canvas_id, generation) < 0) {
        free(r);
        return semd_error(SEMD_ENOMEM, "ring: out of memory");
    }
    const size_t header = page_round(sizeof(semdraw_ring_header) + (size_t)slots * sizeof(semdraw_ring_slot));
    const size_t slot_size = page_round((size_t)width * height * 4);
    r->size = header + (size_t)slots * slot_size;
    int fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    int rc = fd < 0 ? semd_error(SEMD_EIO, "%s: cannot create: %s", r->path, strerror(errno)) : 0;
    if (!rc && ftruncate(fd, (off_t)r->size) != 0)
        rc = semd_error(SEMD_EIO, "%s: cannot size to %zu bytes: %s", r->path, r->size, strerror(errno));
    /*
     * Reserve the pages now: on a full tmpfs a sparse file maps fine and the
     * first frame written into it kills the daemon with SIGBUS.
     */
    int err = rc ? 0 : posix_fallocate(fd, 0, (off_t)r->size);
    if (err && err != EOPNOTSUPP && err != EINVAL)
        rc = semd_error(SEMD_EIO, "%s: cannot reserve %zu bytes: %s", r->path, r->size, strerror(err));
    if (!rc && (r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
        r->base = NULL, rc = semd_error(SEMD_EIO, "%s: cannot map: %s", r->path, strerror(errno));
    if (fd >= 0) close(fd);
    if (rc) {
        if (fd >= 0) unlink(r->path);
        free(r->path), free(r);
        return rc;
    }
    r->h = (semdraw_ring_header *)r->base;
    fill_header(r->h, instance_id, canvas_id, generation, width, height, slots, header, slot_size, r->size);
    *out = r;
    return SEMD_OK;
}

const char *semd_ring_path(const semd_ring *r) { return r->path; }

uint8_t *semd_ring_begin(semd_ring *r, uint64_t seq)
{
    const uint32_t slot = (uint32_t)(seq % r->h->slot_count);
    atomic_store_explicit(&r->h->slots[slot].lock, 2 * seq - 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* readers see the odd lock before any pixel */
    return r->base + r->h->slots_offset + (size_t)slot * r->h->slot_size;
}

void semd_ring_commit(semd_ring *r, uint64_t seq, uint64_t input_seq, uint64_t t_render_ns,
                      uint32_t flags)
{
    semdraw_ring_slot *s = &r->h->slots[seq % r->h->slot_count];
    atomic_store_explicit(&s->frame_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&s->input_seq, input_seq, memory_order_relaxed);
    atomic_store_explicit(&s->t_render_ns, t_render_ns, memory_order_relaxed);
    atomic_store_explicit(&s->flags, flags, memory_order_relaxed);
    atomic_store_explicit(&s->lock, 2 * seq, memory_order_release);
    atomic_store_explicit(&r->h->latest_seq, seq, memory_order_release);
    atomic_fetch_add_explicit(&r->h->futex_word, 1, memory_order_release);
    atomic_store_explicit(&r->h->writer_heartbeat_ns, now_ns(), memory_order_relaxed);
    /* wake every reader blocked in semdraw_frame_wait (a shared futex: other processes map the file) */
    syscall(SYS_futex, &r->h->futex_word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void semd_ring_heartbeat(semd_ring *r)
{
    atomic_store_explicit(&r->h->writer_heartbeat_ns, now_ns(), memory_order_relaxed);
}

void semd_ring_set_state(semd_ring *r, uint32_t state)
{
    atomic_store_explicit(&r->h->state, state, memory_order_release);
}

void semd_ring_retire(semd_ring *r)
{
    if (!r) return;
    semd_ring_set_state(r, SEMDRAW_RING_RETIRED);
    unlink(r->path);
    munmap(r->base, r->size);
    free(r->path);
    free(r);
}
