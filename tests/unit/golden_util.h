/*
 * golden_util.h - reading golden safetensors files into engine tensors and
 * comparing results with them (shared by the model test suites).
 */
#ifndef SEMD_GOLDEN_UTIL_H
#define SEMD_GOLDEN_UTIL_H

#include "harness.h"
#include "semd/backend.h"
#include "semd/safetensors.h"
#include "semd/status.h"

static inline const char *golden_data(const char *rel)
{
    return semd_test_path(semd_test_data_dir(), rel);
}

static inline semd_st_file *golden_open(const char *rel)
{
    semd_st_file *f;
    ASSERT_OK(semd_st_open(golden_data(rel), &f));
    return f;
}

/* A golden tensor as host floats (caller frees). */
static inline float *golden_floats(const semd_st_file *f, const char *name, uint64_t *n)
{
    const semd_st_tensor *t = semd_st_find(f, name);
    if (!t) FAIL("golden %s has no tensor '%s'", semd_st_path(f), name);
    float *v = malloc(t->numel * sizeof(float) + 4);
    ASSERT_OK(semd_st_read_f32(t, v));
    if (n) *n = t->numel;
    return v;
}

/* A golden tensor uploaded to the backend with its own shape (NULL if absent and optional). */
static inline semd_tensor *golden_tensor(semd_backend *be, const semd_st_file *f, const char *name,
                                         int optional)
{
    const semd_st_tensor *t = semd_st_find(f, name);
    if (!t && optional) return NULL;
    if (!t) FAIL("golden %s has no tensor '%s'", semd_st_path(f), name);
    semd_tensor *out;
    ASSERT_OK(semd_tensor_new(be, t->ndim, t->shape, &out));
    float *v = golden_floats(f, name, NULL);
    ASSERT_OK(semd_tensor_set(out, v));
    free(v);
    return out;
}

/* Compare a result with the golden's `name`: same shape, relative L2 within tol. */
static inline void golden_expect(const semd_st_file *f, const char *name, const semd_tensor *got,
                                 double tol)
{
    const semd_st_tensor *t = semd_st_find(f, name);
    if (!t) FAIL("golden %s has no tensor '%s'", semd_st_path(f), name);
    if (t->ndim != got->ndim) FAIL("%s: rank %d, expected %d", name, got->ndim, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != got->ne[i]) FAIL("%s: dim %d is %lld, expected %lld", name, i,
                                            (long long)got->ne[i], (long long)t->shape[i]);
    float *want = golden_floats(f, name, NULL), *have = malloc(t->numel * sizeof(float));
    ASSERT_OK(semd_tensor_get(got, have));
    double e = semd_rel_l2(have, want, t->numel);
    printf("%s: relative L2 error %.3g\n", name, e);
    if (!(e <= tol)) FAIL("%s: relative L2 error %.3g > %g", name, e, tol);
    free(want);
    free(have);
}

#endif
