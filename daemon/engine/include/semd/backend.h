/*
 * semd/backend.h - tensors and the compute backends behind one small interface.
 *
 * A backend owns the memory of its tensors and implements a fixed set of ops.
 * Models are written once against the semd_op_* functions below; the CPU
 * backend is the reference every other backend is tested against
 * (tests/unit/test_backend_ops.c).
 *
 * Layout conventions (models.md section 0): tensors are dense, row-major, with
 * shapes in PyTorch order (ne[0] is the outermost dimension). Token sequences
 * are [B, L, C]. Every op checks shapes before it touches memory and returns
 * SEMD_ESHAPE with a message naming the op and the offending shapes.
 */
#ifndef SEMD_BACKEND_H
#define SEMD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_MAX_DIMS 4

typedef struct semd_backend semd_backend;

typedef struct semd_tensor {
    semd_backend *be;
    int ndim;
    int64_t ne[SEMD_MAX_DIMS];
    float *data; /* backend memory: host memory for the CPU backend */
} semd_tensor;

/* ---- backends ---- */

/* The CPU reference backend (fp32, BLAS GEMMs, OpenMP). `threads` <= 0: default. */
int semd_backend_cpu_new(int threads, semd_backend **out);
/* By name: "cpu" (and "cuda" where built and a GPU is present). */
int semd_backend_new(const char *name, semd_backend **out);
void semd_backend_free(semd_backend *be);
const char *semd_backend_name(const semd_backend *be);
/* Floating-point operations issued so far (2 per multiply-add of GEMMs,
 * convolutions and attention; element-wise work not counted), and a reset. */
uint64_t semd_backend_flops(const semd_backend *be);
void semd_backend_reset_flops(semd_backend *be);
/* Bytes held by live tensors of this backend (device memory for a GPU
 * backend), and the most held at once; safe to read from any thread. */
void semd_backend_memory(const semd_backend *be, uint64_t *in_use, uint64_t *peak);
/*
 * At most `bytes` of live tensors (0: no limit, the default): a tensor that
 * would pass it is refused with SEMD_ENOMEM, as a full GPU refuses it. The
 * daemon sets it from max_device_memory_mib so that a frame whose working
 * memory does not fit fails cleanly instead of growing the daemon, and tests
 * use it to run out of device memory on purpose. Tensors already held stay.
 */
void semd_backend_set_memory_limit(semd_backend *be, uint64_t bytes);

/* ---- tensors ---- */

/* Allocate an uninitialised tensor of the given shape (1..SEMD_MAX_DIMS dims). */
int semd_tensor_new(semd_backend *be, int ndim, const int64_t *ne, semd_tensor **out);
void semd_tensor_free(semd_tensor *t);
int64_t semd_tensor_numel(const semd_tensor *t);
/* "[2,77,768]" into buf; returns buf. */
const char *semd_tensor_shape_str(const semd_tensor *t, char *buf, size_t cap);
/* Copy numel floats from host memory into the tensor, and back. */
int semd_tensor_set(semd_tensor *t, const float *src);
int semd_tensor_get(const semd_tensor *t, float *dst);

/* ---- ops ---- */

typedef enum semd_unary {
    SEMD_UNARY_SILU,       /* x * sigmoid(x) */
    SEMD_UNARY_GELU,       /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    SEMD_UNARY_QUICK_GELU, /* x * sigmoid(1.702 x), OpenAI CLIP */
    SEMD_UNARY_RELU,       /* max(x, 0), TAESD */
    SEMD_UNARY_TANH_CLAMP3 /* 3 tanh(x / 3), TAESD's soft clamp of latents */
} semd_unary;

/*
 * y[b,l,:] = table[ids[b*L+l], :] + pos[l, :]   (pos may be NULL)
 * y: [B,L,D]; table: [V,D]; pos: [P,D] with P >= L; ids: host memory, B*L
 * entries, each in [0,V) (SEMD_EINVAL naming the first bad id otherwise).
 */
int semd_op_embed(semd_tensor *y, const int32_t *ids, const semd_tensor *table,
                  const semd_tensor *pos);

/* y[..., out] = x[..., in] W^T + b. W: [out,in]; b: [out] or NULL. */
int semd_op_linear(semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                   const semd_tensor *b);

/* LayerNorm over the last dimension (biased variance). gamma, beta: [C]. */
int semd_op_layer_norm(semd_tensor *y, const semd_tensor *x, const semd_tensor *gamma,
                       const semd_tensor *beta, float eps);

/* y = a + b, same element count; y may alias a or b. */
int semd_op_add(semd_tensor *y, const semd_tensor *a, const semd_tensor *b);

/* y = f(x), same element count; y may alias x. */
int semd_op_unary(semd_tensor *y, const semd_tensor *x, semd_unary f);

/*
 * Multi-head scaled dot-product attention on [B, L, C] sequences:
 * head h uses channels [h*C/heads, (h+1)*C/heads); scale (C/heads)^-1/2;
 * `causal` masks key j > query i (needs Lq == Lk).
 * o, q: [B,Lq,C]; k, v: [B,Lk,C]. o must not alias q, k or v.
 */
int semd_op_attention(semd_tensor *o, const semd_tensor *q, const semd_tensor *k,
                      const semd_tensor *v, int heads, int causal);

/*
 * 2-D convolution (cross-correlation), NCHW: x [B,Ci,H,W], w [Co,Ci,kh,kw],
 * b [Co] or NULL, y [B,Co,Ho,Wo] with Ho = (H + pad_top + pad_bottom - kh) /
 * stride + 1 (likewise Wo). Zero padding; asymmetric padding serves the VAE
 * encoder's right/bottom-only downsampling.
 */
typedef struct semd_conv_params {
    int stride;
    int pad_top, pad_left, pad_bottom, pad_right;
} semd_conv_params;

int semd_op_conv2d(semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                   const semd_tensor *b, semd_conv_params p);

/*
 * GroupNorm over [B,C,...]: C split into `groups` contiguous groups, biased
 * variance over each group's channels x spatial positions; then per-channel
 * gamma, beta [C]; then SiLU when `silu` (the ResNet pattern, fused).
 */
int semd_op_group_norm(semd_tensor *y, const semd_tensor *x, const semd_tensor *gamma,
                       const semd_tensor *beta, int groups, float eps, int silu);

/* Nearest-neighbour resize of [B,C,H,W] to y's [B,C,Ho,Wo]: src = floor(dst * in / out). */
int semd_op_upsample_nearest(semd_tensor *y, const semd_tensor *x);

/* Channel concat of [B,Ca,H,W] and [B,Cb,H,W] into [B,Ca+Cb,H,W], a first. */
int semd_op_concat_channels(semd_tensor *y, const semd_tensor *a, const semd_tensor *b);

/* y[b,c,...] = x[b,c,...] + bias[b,c]: a per-sample, per-channel shift. bias: [B,C]. */
int semd_op_add_channel_bias(semd_tensor *y, const semd_tensor *x, const semd_tensor *bias);

/* [B,C,H,W] <-> [B,H*W,C] (the "token" view), either direction by y's rank. */
int semd_op_to_tokens(semd_tensor *y, const semd_tensor *x);
int semd_op_from_tokens(semd_tensor *y, const semd_tensor *x);

/* GEGLU: x [..., 2I] -> y [..., I] = x[..., :I] * GELU(x[..., I:]). */
int semd_op_geglu(semd_tensor *y, const semd_tensor *x);

/* y = x * s + t, elementwise with scalars; y may alias x. */
int semd_op_scale(semd_tensor *y, const semd_tensor *x, float s, float t);

/* y[b,:] = x[b, rows[b], :]. x: [B,L,D]; y: [B,D]; rows: host memory, B entries. */
int semd_op_take_rows(semd_tensor *y, const semd_tensor *x, const int32_t *rows);

#ifdef __cplusplus
}
#endif
#endif
