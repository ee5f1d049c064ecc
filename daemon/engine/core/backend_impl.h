/*
 * backend_impl.h - what a backend implements. Shapes are validated by the
 * semd_op_* wrappers in tensor.c before any of these is called, so a backend
 * only computes.
 */
#ifndef SEMD_BACKEND_IMPL_H
#define SEMD_BACKEND_IMPL_H

#include "semd/backend.h"

struct semd_backend_ops {
    const char *name;
    void (*destroy)(semd_backend *be);
    float *(*alloc)(semd_backend *be, size_t n_floats);
    void (*release)(semd_backend *be, float *p);
    int (*upload)(semd_backend *be, float *dst, const float *src, size_t n);
    int (*download)(semd_backend *be, float *dst, const float *src, size_t n);

    int (*embed)(semd_backend *be, semd_tensor *y, const int32_t *ids, const semd_tensor *table,
                 const semd_tensor *pos);
    /* rows = product of x's leading dims */
    int (*linear)(semd_backend *be, semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                  const semd_tensor *b, int64_t rows);
    int (*layer_norm)(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                      const semd_tensor *gamma, const semd_tensor *beta, float eps);
    int (*add)(semd_backend *be, semd_tensor *y, const semd_tensor *a, const semd_tensor *b);
    int (*unary)(semd_backend *be, semd_tensor *y, const semd_tensor *x, semd_unary f);
    int (*attention)(semd_backend *be, semd_tensor *o, const semd_tensor *q, const semd_tensor *k,
                     const semd_tensor *v, int heads, int causal);
    int (*take_rows)(semd_backend *be, semd_tensor *y, const semd_tensor *x, const int32_t *rows);
    int (*conv2d)(semd_backend *be, semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                  const semd_tensor *b, semd_conv_params p);
    int (*group_norm)(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                      const semd_tensor *gamma, const semd_tensor *beta, int groups, float eps,
                      int silu);
    int (*upsample_nearest)(semd_backend *be, semd_tensor *y, const semd_tensor *x);
    int (*concat_channels)(semd_backend *be, semd_tensor *y, const semd_tensor *a,
                           const semd_tensor *b);
    int (*add_channel_bias)(semd_backend *be, semd_tensor *y, const semd_tensor *x,
                            const semd_tensor *bias);
    /* to_tokens: [B,C,N] -> [B,N,C]; from_tokens: [B,N,C] -> [B,C,N] */
    int (*transpose_tokens)(semd_backend *be, semd_tensor *y, const semd_tensor *x, int64_t batch,
                            int64_t rows, int64_t cols);
    int (*geglu)(semd_backend *be, semd_tensor *y, const semd_tensor *x);
    int (*scale)(semd_backend *be, semd_tensor *y, const semd_tensor *x, float s, float t);
};

struct semd_backend {
    const struct semd_backend_ops *ops;
    void *ctx;
    uint64_t flops; /* counted by the op wrappers, for benchmarks */
    uint64_t bytes_in_use, bytes_peak; /* tensor memory, updated atomically */
    uint64_t bytes_limit;              /* 0: none (semd_backend_set_memory_limit) */
};

#endif
