/*
 * fuzz_safetensors: the safetensors reader on an arbitrary file. A file that
 * opens must keep the promises of semd/safetensors.h: every tensor inside the
 * data area, its size that of its dtype and shape, names findable, tensors in
 * offset order without overlaps; small tensors are converted element by
 * element so that ASan sees every byte the conversions read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "semd/safetensors.h"

/* Conversions are checked on tensors up to this many elements (keeps a run well under a millisecond). */
#define MAX_CONVERTED (1u << 16)

static void check_tensor(const semd_st_file *f, const semd_st_tensor *t)
{
    if (!t || !t->name || t->ndim < 0 || t->ndim > SEMD_ST_MAX_DIMS) abort();
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) abort();
        numel *= (uint64_t)t->shape[i]; /* cannot wrap: open checked the product */
    }
    if (numel != t->numel || t->nbytes != numel * semd_st_dtype_size(t->dtype)) abort();
    if (semd_st_find(f, t->name) != t) abort();
    if (t->numel > MAX_CONVERTED) return;
    const size_t n = (size_t)(t->numel ? t->numel : 1);
    float *v = malloc(n * sizeof *v);
    int64_t *iv = malloc(n * sizeof *iv);
    if (!v || !iv) abort();
    semd_clear_error();
    fuzz_check_status("semd_st_read_f32", semd_st_read_f32(t, v));
    semd_clear_error();
    fuzz_check_status("semd_st_read_i64", semd_st_read_i64(t, iv));
    free(v);
    free(iv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    semd_st_file *f = NULL;
    semd_clear_error();
    int rc = semd_st_open(path, &f);
    fuzz_check_status("semd_st_open", rc);
    if (rc) {
        if (f) abort(); /* a failed open hands out nothing */
        return 0;
    }
    /*
     * Tensors come in offset order and a non-empty one starts where no earlier one still runs.
     * The mapping is private to the reader, but the data area is the input less its 8-byte length
     * and N-byte header, so all tensors together span at most that many bytes. (ASan does not
     * guard mappings: a range past the end would read another page silently.)
     */
    const semd_st_tensor *last = NULL;
    const uint8_t *first = NULL;
    for (size_t i = 0; i < semd_st_count(f); i++) {
        const semd_st_tensor *t = semd_st_at(f, i);
        check_tensor(f, t);
        if (t->nbytes == 0) continue;
        if (last && last->data + last->nbytes > t->data) abort();
        if (!first) first = t->data;
        last = t;
    }
    uint64_t hdr = 0;
    for (int i = 7; i >= 0; i--) hdr = hdr << 8 | data[i];
    if (last && (size_t)(last->data + last->nbytes - first) > size - 8 - hdr) abort();
    if (semd_st_at(f, semd_st_count(f)) != NULL) abort();
    /* Metadata lookups walk the key list; a few keys real files carry. */
    (void)semd_st_metadata(f, "format");
    (void)semd_st_metadata(f, "lora_adapter_metadata");
    (void)semd_st_find(f, "");
    semd_st_close(f);
    return 0;
}
