/*
 * semd/safetensors.h - reading and writing safetensors files.
 *
 * Format: 8 bytes little-endian header length N, N bytes of UTF-8 JSON (an
 * object mapping tensor names to {"dtype", "shape", "data_offsets"}, plus an
 * optional "__metadata__" object of strings), then the data area. Offsets are
 * relative to the data area, end-exclusive.
 *
 * The reader maps the file read-only and validates the whole header before it
 * returns a handle: header length within the file and at most
 * SEMD_ST_MAX_HEADER bytes, JSON well formed, every tensor's dtype known, its
 * byte size equal to sizeof(dtype) x product(shape), its range inside the data
 * area and not overlapping another tensor's. Any failure is SEMD_EFORMAT (or
 * SEMD_EIO for the file itself, SEMD_EUNSUPPORTED for a valid safetensors
 * dtype the engine does not handle, such as F8_E4M3) with a message naming the
 * file and the problem. Gaps between tensors and bytes after the last one are
 * tolerated. Tensor data is never assumed to be aligned.
 */
#ifndef SEMD_SAFETENSORS_H
#define SEMD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_ST_MAX_HEADER (100u * 1024u * 1024u) /* as the reference parser */
#define SEMD_ST_MAX_DIMS 8

typedef enum semd_st_dtype {
    SEMD_ST_F64,
    SEMD_ST_F32,
    SEMD_ST_F16,
    SEMD_ST_BF16,
    SEMD_ST_I64,
    SEMD_ST_I32,
    SEMD_ST_I16,
    SEMD_ST_I8,
    SEMD_ST_U8,
    SEMD_ST_BOOL
} semd_st_dtype;

typedef struct semd_st_tensor {
    const char *name;
    semd_st_dtype dtype;
    int ndim;                         /* 0 for a scalar */
    int64_t shape[SEMD_ST_MAX_DIMS];
    uint64_t numel;
    const uint8_t *data;              /* inside the mapping; possibly unaligned */
    size_t nbytes;
} semd_st_tensor;

typedef struct semd_st_file semd_st_file;

/* Map and validate `path`. On success *out owns the mapping. */
int semd_st_open(const char *path, semd_st_file **out);
void semd_st_close(semd_st_file *f);

const char *semd_st_path(const semd_st_file *f);
size_t semd_st_count(const semd_st_file *f);
/* Tensors in file order of their data offsets; i < semd_st_count(). */
const semd_st_tensor *semd_st_at(const semd_st_file *f, size_t i);
/* NULL when absent (not an error by itself; callers name what they missed). */
const semd_st_tensor *semd_st_find(const semd_st_file *f, const char *name);
/* A "__metadata__" value, or NULL. */
const char *semd_st_metadata(const semd_st_file *f, const char *key);

/* "F32", "BF16", ...; and the size of one element in bytes. */
const char *semd_st_dtype_name(semd_st_dtype dt);
size_t semd_st_dtype_size(semd_st_dtype dt);

/*
 * Convert a tensor's elements to float (F32/F16/BF16/F64 and the integer
 * types). `dst` holds t->numel floats.
 */
int semd_st_read_f32(const semd_st_tensor *t, float *dst);
/* Convert an integer (or BOOL) tensor to int64; SEMD_ESHAPE for float dtypes. */
int semd_st_read_i64(const semd_st_tensor *t, int64_t *dst);

/* IEEE half and bfloat16 conversions (round to nearest even; NaN kept). */
float semd_f16_to_f32(uint16_t h);
uint16_t semd_f32_to_f16(float f);
float semd_bf16_to_f32(uint16_t h);
uint16_t semd_f32_to_bf16(float f);

/*
 * Writer: collect tensors (data is copied), then write them with an 8-byte
 * aligned header listing them in insertion order. The data area holds them by
 * element size, largest first (insertion order within a size), so each one is
 * aligned without gaps: the official reader rejects gaps between tensors.
 * Saving writes a temporary file beside `path` and renames it into place.
 */
typedef struct semd_st_writer semd_st_writer;

semd_st_writer *semd_st_writer_new(void);
void semd_st_writer_free(semd_st_writer *w);
int semd_st_writer_add(semd_st_writer *w, const char *name, semd_st_dtype dtype, int ndim,
                       const int64_t *shape, const void *data);
int semd_st_writer_metadata(semd_st_writer *w, const char *key, const char *value);
int semd_st_writer_save(const semd_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
