/*
 * blocks.h - the layers UNet, VAE and TAESD are assembled from (internal to
 * the engine): weight loading by diffusers name and forward passes that
 * allocate their outputs. Every function returns a semd status; on failure
 * outputs are NULL and nothing leaks.
 */
#ifndef SEMD_BLOCKS_H
#define SEMD_BLOCKS_H

#include "semd/backend.h"
#include "semd/weights.h"

/* Where a module's weights come from, and the backend they go to. */
typedef struct semd_loader {
    const semd_weight_view *view;
    semd_module module;
    semd_backend *be;
} semd_loader;

/* Any tensor by diffusers name (printf format), e.g. an embedding table. */
int semd_load_tensor(const semd_loader *ld, semd_tensor **out, int ndim, const int64_t *shape,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef struct semd_linear {
    semd_tensor *w, *b; /* b may be NULL */
} semd_linear;

typedef struct semd_conv {
    semd_tensor *w, *b; /* b may be NULL */
    semd_conv_params p;
} semd_conv;

typedef struct semd_norm {
    semd_tensor *g, *b;
} semd_norm;

/* ResnetBlock2D: GN-SiLU-conv1 (+ time projection) GN-SiLU-conv2, plus the skip. */
typedef struct semd_resnet {
    semd_norm n1, n2;
    semd_conv c1, c2, shortcut; /* shortcut.w NULL when Cin == Cout */
    semd_linear temb;           /* temb.w NULL in the VAE */
    int groups;
    float eps;
} semd_resnet;

/* diffusers Attention: to_q/to_k/to_v (bias optional), to_out.0 with bias. */
typedef struct semd_attn {
    semd_linear q, k, v, out;
    int heads;
} semd_attn;

/* ---- loading: names are printf formats under the loader's prefix ---- */

int semd_load_linear(const semd_loader *ld, semd_linear *l, int out, int in, int bias,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int semd_load_conv(const semd_loader *ld, semd_conv *c, int out, int in, int k, int bias,
                   semd_conv_params p, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
int semd_load_norm(const semd_loader *ld, semd_norm *n, int ch, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* temb_dim 0: no time projection (VAE). */
int semd_load_resnet(const semd_loader *ld, semd_resnet *r, int cin, int cout, int temb_dim,
                     int groups, float eps, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
int semd_load_attn(const semd_loader *ld, semd_attn *a, int dim, int kv_dim, int heads, int qkv_bias,
                   const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Does "<prefix><formatted name>" exist? */
int semd_has_weight(const semd_loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void semd_linear_free(semd_linear *l);
void semd_conv_free(semd_conv *c);
void semd_norm_free(semd_norm *n);
void semd_resnet_free(semd_resnet *r);
void semd_attn_free(semd_attn *a);

/* ---- forward ---- */

/* New uninitialised tensor of a given shape on be. */
int semd_new(semd_backend *be, semd_tensor **out, int ndim, int64_t d0, int64_t d1, int64_t d2,
             int64_t d3);

int semd_linear_fwd(const semd_linear *l, const semd_tensor *x, semd_tensor **y);
int semd_conv_fwd(const semd_conv *c, const semd_tensor *x, semd_tensor **y);
int semd_norm_fwd(const semd_norm *n, const semd_tensor *x, int groups, float eps, int silu,
                  semd_tensor **y);
/* silu_emb: SiLU(time embedding) [B,T], or NULL for the VAE's resnets. */
int semd_resnet_fwd(const semd_resnet *r, const semd_tensor *x, const semd_tensor *silu_emb,
                    semd_tensor **y);
/* xq [B,Lq,C], xkv [B,Lk,Ckv] -> [B,Lq,C] */
int semd_attn_fwd(const semd_attn *a, const semd_tensor *xq, const semd_tensor *xkv,
                  semd_tensor **y);

/* Replace *x by y (freeing the old tensor): the pattern of sequential layers. */
void semd_replace(semd_tensor **x, semd_tensor *y);

#endif
