/*
 * Frame rings: the daemon's writer and libsemdraw's reader on a real shared
 * file, including a writer process racing a reader process.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring_reader.h"
#include "harness.h"
#include "ring_writer.h"
#include "semd/status.h"
#include "semdraw/v1/ring_abi.h"

#define W 64
#define H 48
#define BIG 512 /* the race test's frames: large enough that copies and writes overlap */

static void paint(uint8_t *px, uint64_t seq, size_t bytes)
{
    memset(px, (int)(seq & 0xff), bytes);
}

static semd_ring *make_ring_sized(uint64_t canvas, int size_w, int size_h, int slots)
{
    semd_ring *r;
    ASSERT_OK(semd_ring_create(semd_test_tmpdir(), 42, canvas, 1, size_w, size_h, slots, &r));
    return r;
}

static semd_ring *make_ring(uint64_t canvas, int slots) { return make_ring_sized(canvas, W, H, slots); }

static void publish_sized(semd_ring *r, uint64_t seq, uint64_t input, size_t bytes)
{
    paint(semd_ring_begin(r, seq), seq, bytes);
    semd_ring_commit(r, seq, input, seq * 1000, seq < 3 ? SEMDRAW_RING_FLAG_WARMUP : 0);
}

static void publish(semd_ring *r, uint64_t seq, uint64_t input) { publish_sized(r, seq, input, (size_t)W * H * 4); }

TEST(write_then_read)
{
    semd_ring *w = make_ring(7, 3);
    semdraw_ring_reader *r;
    ASSERT_EQ(semdraw_ring_open(semd_ring_path(w), &r), SEMDRAW_RING_OK);
    semdraw_ring_info info;
    semdraw_ring_get_info(r, &info);
    ASSERT_EQ(info.instance_id, 42);
    ASSERT_EQ(info.canvas_id, 7);
    ASSERT_EQ(info.width, W);
    ASSERT_EQ(info.stride, W * 4);
    ASSERT_EQ(info.format, SEMDRAW_FOURCC_AB24);
    ASSERT_EQ(info.slot_count, 3);
    uint8_t *buf = malloc(W * H * 4);
    semdraw_ring_frame f;
    ASSERT_EQ(semdraw_ring_copy_latest(r, buf, W * H * 4, &f), SEMDRAW_RING_EAGAIN);
    for (uint64_t s = 1; s <= 10; s++) { /* wraps the 3 slots three times */
        publish(w, s, 100 + s);
        ASSERT_EQ(semdraw_ring_copy_latest(r, buf, W * H * 4, &f), SEMDRAW_RING_OK);
        ASSERT_EQ(f.seq, s);
        ASSERT_EQ(f.input_seq, 100 + s);
        ASSERT_EQ(f.flags, s < 3 ? SEMDRAW_RING_FLAG_WARMUP : 0);
        ASSERT(buf[0] == (uint8_t)s && buf[W * H * 4 - 1] == (uint8_t)s);
    }
    ASSERT_EQ(semdraw_ring_copy_latest(r, buf, 16, &f), SEMDRAW_RING_ENOSPC);
    char *path = strdup(semd_ring_path(w));
    semd_ring_retire(w);
    ASSERT_EQ(semdraw_ring_state(r), SEMDRAW_RING_RETIRED);      /* the mapping outlives the file */
    ASSERT_EQ(semdraw_ring_copy_latest(r, buf, W * H * 4, &f), SEMDRAW_RING_ERETIRED);
    ASSERT(access(path, F_OK) != 0);
    semdraw_ring_close(r);
    free(buf), free(path);
}

/* A writer process publishes as fast as it can; every copy the reader gets is one whole frame. */
TEST(reader_never_sees_a_torn_frame)
{
    const size_t bytes = (size_t)BIG * BIG * 4;
    semd_ring *w = make_ring_sized(8, BIG, BIG, 2); /* two slots: the writer laps the reader often */
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        for (uint64_t s = 1; s <= 20000; s++) publish_sized(w, s, s, bytes);
        _exit(0);
    }
    semdraw_ring_reader *r;
    ASSERT_EQ(semdraw_ring_open(semd_ring_path(w), &r), SEMDRAW_RING_OK);
    uint8_t *buf = malloc(bytes);
    uint64_t last = 0;
    long copies = 0, stale = 0, distinct = 0;
    int status = 0, done = 0;
    while (!done) { /* read for as long as the writer writes */
        done = waitpid(pid, &status, WNOHANG) == pid;
        semdraw_ring_frame f;
        int rc = semdraw_ring_copy_latest(r, buf, bytes, &f);
        if (rc == SEMDRAW_RING_EAGAIN) continue;
        if (rc == SEMDRAW_RING_ESTALE) {
            stale++;
            continue;
        }
        ASSERT_EQ(rc, SEMDRAW_RING_OK);
        for (size_t b = 0; b < bytes; b += 97)
            if (buf[b] != (uint8_t)f.seq) FAIL("frame %llu torn at byte %zu", (unsigned long long)f.seq, b);
        ASSERT(f.seq >= last); /* latest never goes backwards */
        ASSERT_EQ(f.input_seq, f.seq);
        distinct += f.seq != last;
        last = f.seq;
        copies++;
    }
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("%ld whole copies of %ld distinct frames, %ld stale, last frame %llu\n", copies, distinct,
           stale, (unsigned long long)last);
    ASSERT(distinct >= 2); /* frames changed under the reader (a sanitizer build reads far fewer) */
    semdraw_ring_close(r);
    semd_ring_retire(w);
    free(buf);
}

static const char *write_file(const char *name, const void *data, size_t n)
{
    const char *path = semd_test_path(semd_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    ASSERT(f && fwrite(data, 1, n, f) == n);
    fclose(f);
    return path;
}

TEST(foreign_and_damaged_files_are_refused)
{
    semdraw_ring_reader *r;
    ASSERT_EQ(semdraw_ring_open(semd_test_path(semd_test_tmpdir(), "absent.ring"), &r), SEMDRAW_RING_EIO);
    ASSERT_EQ(semdraw_ring_open(write_file("short.ring", "SDRING", 6), &r), SEMDRAW_RING_EFORMAT);
    semd_ring *w = make_ring(9, 2);
    FILE *f = fopen(semd_ring_path(w), "rb");
    size_t size = (size_t)lseek(fileno(f), 0, SEEK_END);
    uint8_t *copy = malloc(size);
    ASSERT(pread(fileno(f), copy, size, 0) == (ssize_t)size);
    fclose(f);
    semdraw_ring_header *h = (semdraw_ring_header *)copy;
    h->abi_version = 2;
    ASSERT_EQ(semdraw_ring_open(write_file("abi.ring", copy, size), &r), SEMDRAW_RING_EFORMAT);
    h->abi_version = SEMDRAW_RING_ABI_VERSION;
    h->slot_count = 500; /* slots that would run past the end of the file */
    ASSERT_EQ(semdraw_ring_open(write_file("slots.ring", copy, size), &r), SEMDRAW_RING_EFORMAT);
    h->slot_count = 2;
    ASSERT_EQ(semdraw_ring_open(write_file("truncated.ring", copy, size / 2), &r), SEMDRAW_RING_EFORMAT);
    ASSERT_EQ(semdraw_ring_open(write_file("good.ring", copy, size), &r), SEMDRAW_RING_OK);
    semdraw_ring_close(r);
    semd_ring *dup;
    ASSERT_EQ(semd_ring_create(semd_test_tmpdir(), 42, 9, 1, W, H, 2, &dup), SEMD_EIO); /* O_EXCL */
    ASSERT_CONTAINS(semd_last_error(), "canvas-9-1.ring");
    ASSERT_EQ(semd_ring_create(semd_test_tmpdir(), 42, 10, 1, 0, H, 2, &dup), SEMD_EINVAL);
    semd_ring_retire(w);
    free(copy);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(write_then_read),
    TEST_ENTRY(reader_never_sees_a_torn_frame),
    TEST_ENTRY(foreign_and_damaged_files_are_refused),
    {0},
};

SEMD_TEST_MAIN(tests)
