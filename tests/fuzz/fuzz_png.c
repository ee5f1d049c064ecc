/*
 * fuzz_png: the scene PNG readers (semd_png_read_mask, semd_png_read_rgb) on
 * an arbitrary file. The readers insist on the canvas size, so the harness
 * asks for the size the file's IHDR states (when it is small), letting
 * libpng and our conversion decode the pixels instead of every input stopping
 * at the size check; other inputs are read at a fixed size.
 *
 * libpng rejects a critical chunk whose CRC does not match, and a mutation
 * almost never keeps a CRC right, so each input is read twice: as it is (the
 * CRC checks), then, when that differs, with every chunk's CRC recomputed,
 * which lets the mutations reach the decoder behind the checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz_util.h"
#include "semd/scene.h"

/* Sides the harness asks for; larger IHDR sizes are read as 16x8 (the size check refuses them). */
#define MAX_FUZZ_SIDE 512

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* IHDR's width and height: the chunk always comes first, at bytes 16..23 after the signature. */
static void requested_size(const uint8_t *data, size_t size, int *w, int *h)
{
    *w = 16, *h = 8;
    if (size < 24 || memcmp(data + 12, "IHDR", 4) != 0) return;
    uint32_t iw = be32(data + 16), ih = be32(data + 20);
    if (iw >= 1 && iw <= MAX_FUZZ_SIDE && ih >= 1 && ih <= MAX_FUZZ_SIDE) *w = (int)iw, *h = (int)ih;
}

/* The input with the CRC of every whole chunk after the signature recomputed; 1 if any changed. */
static int fix_crcs(uint8_t *p, size_t size)
{
    int changed = 0;
    for (size_t at = 8; size >= 12 && at <= size - 12;) {
        const uint32_t len = be32(p + at);
        if (len > size - 12 - at) break; /* a truncated chunk: leave the rest as it is */
        const uint32_t crc = (uint32_t)crc32(0, p + at + 4, (uInt)len + 4);
        uint8_t *c = p + at + 8 + len;
        if (be32(c) != crc) {
            c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
            changed = 1;
        }
        at += 12 + (size_t)len;
    }
    return changed;
}

/* Both readers on one file; they decode the same files and fail on the same ones. */
static void read_both(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    int w, h;
    requested_size(data, size, &w, &h);
    const size_t n = (size_t)w * (size_t)h;

    uint8_t *mask = NULL;
    semd_clear_error();
    int rc = semd_png_read_mask(path, w, h, &mask);
    fuzz_check_status("semd_png_read_mask", rc);
    if (rc ? mask != NULL : mask == NULL) abort(); /* a buffer exactly when it worked */
    unsigned sum = 0;
    for (size_t i = 0; mask && i < n; i++) sum += mask[i]; /* all H x W bytes are there */
    free(mask);

    uint8_t *rgb = NULL;
    semd_clear_error();
    int rc2 = semd_png_read_rgb(path, w, h, &rgb);
    fuzz_check_status("semd_png_read_rgb", rc2);
    if (rc2 ? rgb != NULL : rgb == NULL) abort();
    if ((rc == 0) != (rc2 == 0)) abort();
    for (size_t i = 0; rgb && i < 3 * n; i++) sum += rgb[i];
    free(rgb);
    volatile unsigned keep = sum; /* the reads above must not be optimised away */
    (void)keep;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_both(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) abort();
    memcpy(fixed, data, size);
    if (fix_crcs(fixed, size)) read_both(fixed, size);
    free(fixed);
    return 0;
}
