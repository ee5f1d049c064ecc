/*
 * fuzz_util.h - what the libFuzzer harnesses share: a memory-backed file for
 * the engine readers that take a path, and the engine's error contract.
 * (memfd_create needs _GNU_SOURCE, which CMakeLists.txt defines for every harness.)
 */
#ifndef SEMD_FUZZ_UTIL_H
#define SEMD_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "semd/status.h"

/*
 * The input as a file: the safetensors, LoRA and PNG readers open (and map)
 * paths. One memfd per process, rewritten for each input, keeps the disk out
 * of it; /proc/self/fd/N opens it afresh, at offset 0, as a regular file.
 */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("semd_fuzz", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    for (size_t at = 0; at < size;) {
        ssize_t n = pwrite(fd, data + at, size - at, (off_t)at);
        if (n <= 0) abort();
        at += (size_t)n;
    }
    return path;
}

/*
 * status.h: every failure is one of the SEMD_E* codes with a message saying
 * what went wrong. A call that breaks this is a finding like a crash: the
 * daemon would send a client an unknown code or an empty error. Call
 * semd_clear_error() before the call under test.
 */
static inline void fuzz_check_status(const char *what, int rc)
{
    if (rc > 0 || rc < SEMD_EBACKEND) {
        fprintf(stderr, "%s returned %d, not a semd status\n", what, rc);
        abort();
    }
    if (rc < 0 && !*semd_last_error()) {
        fprintf(stderr, "%s failed (%d) without a message\n", what, rc);
        abort();
    }
}

#endif
