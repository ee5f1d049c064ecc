/*
 * Tensors, backend selection, and the op wrappers: shape validation lives here
 * once, so each backend only computes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "semd/status.h"

int semd_backend_new(const char *name, semd_backend **out)
{
    if (!name || !out) return semd_error(SEMD_EINVAL, "semd_backend_new: NULL argument");
    if (strcmp(name, "cpu") == 0) return semd_backend_cpu_new(0, out);
    if (strcmp(name, "cuda") == 0)
        return semd_error(SEMD_EUNSUPPORTED, "backend 'cuda' is not built into this engine yet");
    return semd_error(SEMD_EINVAL, "unknown backend '%s' (known: cpu)", name);
}

void semd_backend_free(semd_backend *be)
{
    if (be) be->ops->destroy(be);
}

const char *semd_backend_name(const semd_backend *be) { return be ? be->ops->name : "(null)"; }

uint64_t semd_backend_flops(const semd_backend *be) { return be->flops; }

void semd_backend_reset_flops(semd_backend *be) { be->flops = 0; }

void semd_backend_memory(const semd_backend *be, uint64_t *in_use, uint64_t *peak)
{
    if (in_use) *in_use = __atomic_load_n(&be->bytes_in_use, __ATOMIC_RELAXED);
    if (peak) *peak = __atomic_load_n(&be->bytes_peak, __ATOMIC_RELAXED);
}

void semd_backend_set_memory_limit(semd_backend *be, uint64_t bytes)
{
    __atomic_store_n(&be->bytes_limit, bytes, __ATOMIC_RELAXED);
}

/* Tensors are made on the loader and engine threads alike, hence the atomics. */
static void count_bytes(semd_backend *be, int64_t delta)
{
    const uint64_t now = __atomic_add_fetch(&be->bytes_in_use, (uint64_t)delta, __ATOMIC_RELAXED);
    uint64_t peak = __atomic_load_n(&be->bytes_peak, __ATOMIC_RELAXED);
    while (now > peak &&
           !__atomic_compare_exchange_n(&be->bytes_peak, &peak, now, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/*
 * Takes `bytes` of the backend's memory before allocating them, so that
 * threads allocating at once cannot pass the limit together.
 */
static int reserve_bytes(semd_backend *be, uint64_t bytes)
{
    const uint64_t limit = __atomic_load_n(&be->bytes_limit, __ATOMIC_RELAXED);
    const uint64_t now = __atomic_add_fetch(&be->bytes_in_use, bytes, __ATOMIC_RELAXED);
    if (limit && now > limit) {
        __atomic_sub_fetch(&be->bytes_in_use, bytes, __ATOMIC_RELAXED);
        return semd_error(SEMD_ENOMEM, "%s: out of device memory: %.1f MiB more would pass the limit of %.1f MiB (%.1f MiB in use)",
                          be->ops->name, (double)bytes / (1 << 20), (double)limit / (1 << 20),
                          (double)(now - bytes) / (1 << 20));
    }
    count_bytes(be, 0); /* the peak */
    return SEMD_OK;
}

int64_t semd_tensor_numel(const semd_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

const char *semd_tensor_shape_str(const semd_tensor *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ",%lld" : "%lld", (long long)t->ne[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

int semd_tensor_new(semd_backend *be, int ndim, const int64_t *ne, semd_tensor **out)
{
    *out = NULL;
    if (!be || ndim < 1 || ndim > SEMD_MAX_DIMS)
        return semd_error(SEMD_EINVAL, "semd_tensor_new: %d dimensions (1..%d allowed)", ndim,
                          SEMD_MAX_DIMS);
    semd_tensor *t = calloc(1, sizeof *t);
    if (!t) return semd_error(SEMD_ENOMEM, "semd_tensor_new: out of memory");
    t->be = be;
    t->ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (ne[i] <= 0 || ne[i] > ((int64_t)1 << 40) / n) {
            free(t);
            return semd_error(SEMD_EINVAL, "semd_tensor_new: bad dimension %d = %lld", i,
                              (long long)ne[i]);
        }
        t->ne[i] = ne[i];
        n *= ne[i];
    }
    const uint64_t bytes = (uint64_t)n * sizeof(float);
    int rc = reserve_bytes(be, bytes);
    if (rc) {
        free(t);
        return rc;
    }
    t->data = be->ops->alloc(be, (size_t)n);
    if (!t->data) {
        __atomic_sub_fetch(&be->bytes_in_use, bytes, __ATOMIC_RELAXED);
        free(t);
        return semd_error(SEMD_ENOMEM, "%s: cannot allocate %lld floats", be->ops->name,
                          (long long)n);
    }
    *out = t;
    return SEMD_OK;
}

void semd_tensor_free(semd_tensor *t)
{
    if (!t) return;
    count_bytes(t->be, -semd_tensor_numel(t) * (int64_t)sizeof(float));
    t->be->ops->release(t->be, t->data);
    free(t);
}

int semd_tensor_set(semd_tensor *t, const float *src)
{
    return t->be->ops->upload(t->be, t->data, src, (size_t)semd_tensor_numel(t));
}

int semd_tensor_get(const semd_tensor *t, float *dst)
{
    return t->be->ops->download(t->be, dst, t->data, (size_t)semd_tensor_numel(t));
}

/* ---- shape checks ---- */

static int shape_error(const char *op, const char *what, const semd_tensor *a,
                       const semd_tensor *b)
{
    char sa[96], sb[96];
    return semd_error(SEMD_ESHAPE, "%s: %s (%s vs %s)", op, what, semd_tensor_shape_str(a, sa, 96),
                      b ? semd_tensor_shape_str(b, sb, 96) : "-");
}

static int same_backend(const char *op, const semd_tensor *a, const semd_tensor *b)
{
    if (b && a->be != b->be)
        return semd_error(SEMD_EINVAL, "%s: tensors live on different backends", op);
    return SEMD_OK;
}

static int last_dim(const semd_tensor *t) { return (int)t->ne[t->ndim - 1]; }

static int64_t leading(const semd_tensor *t) { return semd_tensor_numel(t) / t->ne[t->ndim - 1]; }

static int is_vector(const semd_tensor *t, int64_t n) { return t->ndim == 1 && t->ne[0] == n; }

int semd_op_embed(semd_tensor *y, const int32_t *ids, const semd_tensor *table,
                  const semd_tensor *pos)
{
    if (!y || !ids || !table) return semd_error(SEMD_EINVAL, "embed: NULL argument");
    if (y->ndim != 3 || table->ndim != 2 || y->ne[2] != table->ne[1])
        return shape_error("embed", "want y [B,L,D] and table [V,D]", y, table);
    if (pos && (pos->ndim != 2 || pos->ne[1] != y->ne[2] || pos->ne[0] < y->ne[1]))
        return shape_error("embed", "positions must be [P>=L, D]", pos, y);
    int rc = same_backend("embed", y, table);
    if (!rc && pos) rc = same_backend("embed", y, pos);
    if (rc) return rc;
    int64_t n = y->ne[0] * y->ne[1];
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= table->ne[0])
            return semd_error(SEMD_EINVAL, "embed: token id %d at position %lld is outside the "
                              "vocabulary of %lld", ids[i], (long long)i, (long long)table->ne[0]);
    return y->be->ops->embed(y->be, y, ids, table, pos);
}

int semd_op_linear(semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                   const semd_tensor *b)
{
    if (!y || !x || !w) return semd_error(SEMD_EINVAL, "linear: NULL argument");
    if (w->ndim != 2 || last_dim(x) != w->ne[1])
        return shape_error("linear", "x's last dim must equal W's in-features", x, w);
    if (last_dim(y) != w->ne[0] || leading(y) != leading(x))
        return shape_error("linear", "y must be x's leading dims x out-features", y, x);
    if (b && !is_vector(b, w->ne[0])) return shape_error("linear", "bias must be [out]", b, w);
    if (y == x) return semd_error(SEMD_EINVAL, "linear: y must not alias x");
    int rc = same_backend("linear", y, x);
    if (!rc) rc = same_backend("linear", y, w);
    if (!rc) rc = same_backend("linear", y, b);
    if (rc) return rc;
    y->be->flops += 2ull * (uint64_t)leading(x) * (uint64_t)w->ne[0] * (uint64_t)w->ne[1];
    return y->be->ops->linear(y->be, y, x, w, b, leading(x));
}

int semd_op_layer_norm(semd_tensor *y, const semd_tensor *x, const semd_tensor *gamma,
                       const semd_tensor *beta, float eps)
{
    if (!y || !x || !gamma || !beta) return semd_error(SEMD_EINVAL, "layer_norm: NULL argument");
    if (semd_tensor_numel(y) != semd_tensor_numel(x) || last_dim(y) != last_dim(x))
        return shape_error("layer_norm", "y and x differ", y, x);
    if (!is_vector(gamma, last_dim(x)) || !is_vector(beta, last_dim(x)))
        return shape_error("layer_norm", "gamma/beta must be [C]", gamma, x);
    int rc = same_backend("layer_norm", y, x);
    if (!rc) rc = same_backend("layer_norm", y, gamma);
    if (!rc) rc = same_backend("layer_norm", y, beta);
    if (rc) return rc;
    return y->be->ops->layer_norm(y->be, y, x, gamma, beta, eps);
}

int semd_op_add(semd_tensor *y, const semd_tensor *a, const semd_tensor *b)
{
    if (!y || !a || !b) return semd_error(SEMD_EINVAL, "add: NULL argument");
    if (semd_tensor_numel(y) != semd_tensor_numel(a) || semd_tensor_numel(a) != semd_tensor_numel(b))
        return shape_error("add", "element counts differ", a, b);
    int rc = same_backend("add", y, a);
    if (!rc) rc = same_backend("add", y, b);
    if (rc) return rc;
    return y->be->ops->add(y->be, y, a, b);
}

int semd_op_unary(semd_tensor *y, const semd_tensor *x, semd_unary f)
{
    if (!y || !x) return semd_error(SEMD_EINVAL, "unary: NULL argument");
    if (semd_tensor_numel(y) != semd_tensor_numel(x))
        return shape_error("unary", "element counts differ", y, x);
    if ((int)f < SEMD_UNARY_SILU || (int)f > SEMD_UNARY_TANH_CLAMP3)
        return semd_error(SEMD_EINVAL, "unary: unknown function %d", (int)f);
    int rc = same_backend("unary", y, x);
    if (rc) return rc;
    return y->be->ops->unary(y->be, y, x, f);
}

int semd_op_attention(semd_tensor *o, const semd_tensor *q, const semd_tensor *k,
                      const semd_tensor *v, int heads, int causal)
{
    if (!o || !q || !k || !v) return semd_error(SEMD_EINVAL, "attention: NULL argument");
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || o->ndim != 3)
        return shape_error("attention", "q, k, v and o must be [B,L,C]", q, k);
    if (k->ne[0] != q->ne[0] || k->ne[2] != q->ne[2] || v->ne[0] != k->ne[0] ||
        v->ne[1] != k->ne[1] || v->ne[2] != k->ne[2])
        return shape_error("attention", "k/v must be [B,Lk,C] matching q", q, v);
    if (o->ne[0] != q->ne[0] || o->ne[1] != q->ne[1] || o->ne[2] != q->ne[2])
        return shape_error("attention", "o must match q", o, q);
    if (heads <= 0 || q->ne[2] % heads)
        return semd_error(SEMD_EINVAL, "attention: %d heads do not divide %lld channels", heads,
                          (long long)q->ne[2]);
    if (causal && q->ne[1] != k->ne[1])
        return shape_error("attention", "causal attention needs Lq == Lk", q, k);
    if (o == q || o == k || o == v) return semd_error(SEMD_EINVAL, "attention: o aliases an input");
    int rc = same_backend("attention", o, q);
    if (!rc) rc = same_backend("attention", o, k);
    if (!rc) rc = same_backend("attention", o, v);
    if (rc) return rc;
    o->be->flops += 4ull * (uint64_t)q->ne[0] * (uint64_t)q->ne[1] * (uint64_t)k->ne[1] * (uint64_t)q->ne[2];
    return o->be->ops->attention(o->be, o, q, k, v, heads, causal);
}

int semd_op_take_rows(semd_tensor *y, const semd_tensor *x, const int32_t *rows)
{
    if (!y || !x || !rows) return semd_error(SEMD_EINVAL, "take_rows: NULL argument");
    if (x->ndim != 3 || y->ndim != 2 || y->ne[0] != x->ne[0] || y->ne[1] != x->ne[2])
        return shape_error("take_rows", "want x [B,L,D] and y [B,D]", x, y);
    for (int64_t b = 0; b < x->ne[0]; b++)
        if (rows[b] < 0 || rows[b] >= x->ne[1])
            return semd_error(SEMD_EINVAL, "take_rows: row %d of batch %lld outside [0,%lld)",
                              rows[b], (long long)b, (long long)x->ne[1]);
    int rc = same_backend("take_rows", y, x);
    if (rc) return rc;
    return y->be->ops->take_rows(y->be, y, x, rows);
}

/* ---- image ops (NCHW) ---- */

static int is_nchw(const semd_tensor *t) { return t->ndim == 4; }

int semd_op_conv2d(semd_tensor *y, const semd_tensor *x, const semd_tensor *w,
                   const semd_tensor *b, semd_conv_params p)
{
    if (!y || !x || !w) return semd_error(SEMD_EINVAL, "conv2d: NULL argument");
    if (!is_nchw(x) || !is_nchw(y) || !is_nchw(w) || w->ne[1] != x->ne[1])
        return shape_error("conv2d", "want x [B,Ci,H,W] and w [Co,Ci,kh,kw]", x, w);
    if (p.stride < 1 || p.pad_top < 0 || p.pad_left < 0 || p.pad_bottom < 0 || p.pad_right < 0)
        return semd_error(SEMD_EINVAL, "conv2d: stride %d / negative padding", p.stride);
    const int64_t hp = x->ne[2] + p.pad_top + p.pad_bottom, wp = x->ne[3] + p.pad_left + p.pad_right;
    if (hp < w->ne[2] || wp < w->ne[3])
        return shape_error("conv2d", "kernel larger than the padded input", x, w);
    const int64_t ho = (hp - w->ne[2]) / p.stride + 1, wo = (wp - w->ne[3]) / p.stride + 1;
    if (y->ne[0] != x->ne[0] || y->ne[1] != w->ne[0] || y->ne[2] != ho || y->ne[3] != wo)
        return shape_error("conv2d", "y must be [B,Co,Ho,Wo]", y, x);
    if (b && !is_vector(b, w->ne[0])) return shape_error("conv2d", "bias must be [Co]", b, w);
    if (y == x) return semd_error(SEMD_EINVAL, "conv2d: y must not alias x");
    int rc = same_backend("conv2d", y, x);
    if (!rc) rc = same_backend("conv2d", y, w);
    if (!rc) rc = same_backend("conv2d", y, b);
    if (rc) return rc;
    y->be->flops += 2ull * (uint64_t)semd_tensor_numel(y) * (uint64_t)(w->ne[1] * w->ne[2] * w->ne[3]);
    return y->be->ops->conv2d(y->be, y, x, w, b, p);
}

int semd_op_group_norm(semd_tensor *y, const semd_tensor *x, const semd_tensor *gamma,
                       const semd_tensor *beta, int groups, float eps, int silu)
{
    if (!y || !x || !gamma || !beta) return semd_error(SEMD_EINVAL, "group_norm: NULL argument");
    if (x->ndim < 2 || semd_tensor_numel(y) != semd_tensor_numel(x) || y->ne[1] != x->ne[1])
        return shape_error("group_norm", "want matching [B,C,...] x and y", x, y);
    if (groups <= 0 || x->ne[1] % groups)
        return semd_error(SEMD_EINVAL, "group_norm: %d groups do not divide %lld channels", groups,
                          (long long)x->ne[1]);
    if (!is_vector(gamma, x->ne[1]) || !is_vector(beta, x->ne[1]))
        return shape_error("group_norm", "gamma/beta must be [C]", gamma, x);
    int rc = same_backend("group_norm", y, x);
    if (!rc) rc = same_backend("group_norm", y, gamma);
    if (!rc) rc = same_backend("group_norm", y, beta);
    if (rc) return rc;
    return y->be->ops->group_norm(y->be, y, x, gamma, beta, groups, eps, silu);
}

int semd_op_upsample_nearest(semd_tensor *y, const semd_tensor *x)
{
    if (!y || !x) return semd_error(SEMD_EINVAL, "upsample: NULL argument");
    if (!is_nchw(x) || !is_nchw(y) || y->ne[0] != x->ne[0] || y->ne[1] != x->ne[1])
        return shape_error("upsample", "want [B,C,H,W] in and out", x, y);
    if (y == x) return semd_error(SEMD_EINVAL, "upsample: y must not alias x");
    int rc = same_backend("upsample", y, x);
    return rc ? rc : y->be->ops->upsample_nearest(y->be, y, x);
}

int semd_op_concat_channels(semd_tensor *y, const semd_tensor *a, const semd_tensor *b)
{
    if (!y || !a || !b) return semd_error(SEMD_EINVAL, "concat: NULL argument");
    if (!is_nchw(a) || !is_nchw(b) || !is_nchw(y) || a->ne[0] != b->ne[0] || a->ne[2] != b->ne[2] ||
        a->ne[3] != b->ne[3])
        return shape_error("concat", "inputs must be [B,*,H,W] alike", a, b);
    if (y->ne[0] != a->ne[0] || y->ne[1] != a->ne[1] + b->ne[1] || y->ne[2] != a->ne[2] ||
        y->ne[3] != a->ne[3])
        return shape_error("concat", "y must be [B,Ca+Cb,H,W]", y, a);
    if (y == a || y == b) return semd_error(SEMD_EINVAL, "concat: y aliases an input");
    int rc = same_backend("concat", y, a);
    if (!rc) rc = same_backend("concat", y, b);
    return rc ? rc : y->be->ops->concat_channels(y->be, y, a, b);
}

int semd_op_add_channel_bias(semd_tensor *y, const semd_tensor *x, const semd_tensor *bias)
{
    if (!y || !x || !bias) return semd_error(SEMD_EINVAL, "add_channel_bias: NULL argument");
    if (x->ndim < 2 || semd_tensor_numel(y) != semd_tensor_numel(x) || bias->ndim != 2 ||
        bias->ne[0] != x->ne[0] || bias->ne[1] != x->ne[1])
        return shape_error("add_channel_bias", "want x [B,C,...] and bias [B,C]", x, bias);
    int rc = same_backend("add_channel_bias", y, x);
    if (!rc) rc = same_backend("add_channel_bias", y, bias);
    return rc ? rc : y->be->ops->add_channel_bias(y->be, y, x, bias);
}

int semd_op_to_tokens(semd_tensor *y, const semd_tensor *x)
{
    if (!y || !x) return semd_error(SEMD_EINVAL, "to_tokens: NULL argument");
    if (!is_nchw(x) || y->ndim != 3 || y->ne[0] != x->ne[0] || y->ne[1] != x->ne[2] * x->ne[3] ||
        y->ne[2] != x->ne[1])
        return shape_error("to_tokens", "want x [B,C,H,W] and y [B,H*W,C]", x, y);
    if (y == x) return semd_error(SEMD_EINVAL, "to_tokens: y must not alias x");
    int rc = same_backend("to_tokens", y, x);
    return rc ? rc : y->be->ops->transpose_tokens(y->be, y, x, x->ne[0], x->ne[1], y->ne[1]);
}

int semd_op_from_tokens(semd_tensor *y, const semd_tensor *x)
{
    if (!y || !x) return semd_error(SEMD_EINVAL, "from_tokens: NULL argument");
    if (!is_nchw(y) || x->ndim != 3 || x->ne[0] != y->ne[0] || x->ne[1] != y->ne[2] * y->ne[3] ||
        x->ne[2] != y->ne[1])
        return shape_error("from_tokens", "want x [B,H*W,C] and y [B,C,H,W]", x, y);
    if (y == x) return semd_error(SEMD_EINVAL, "from_tokens: y must not alias x");
    int rc = same_backend("from_tokens", y, x);
    return rc ? rc : y->be->ops->transpose_tokens(y->be, y, x, x->ne[0], x->ne[1], x->ne[2]);
}

int semd_op_geglu(semd_tensor *y, const semd_tensor *x)
{
    if (!y || !x) return semd_error(SEMD_EINVAL, "geglu: NULL argument");
    if (last_dim(x) % 2 || last_dim(y) * 2 != last_dim(x) || leading(y) != leading(x))
        return shape_error("geglu", "want x [...,2I] and y [...,I]", x, y);
    if (y == x) return semd_error(SEMD_EINVAL, "geglu: y must not alias x");
    int rc = same_backend("geglu", y, x);
    return rc ? rc : y->be->ops->geglu(y->be, y, x);
}

int semd_op_scale(semd_tensor *y, const semd_tensor *x, float s, float t)
{
    if (!y || !x) return semd_error(SEMD_EINVAL, "scale: NULL argument");
    if (semd_tensor_numel(y) != semd_tensor_numel(x))
        return shape_error("scale", "element counts differ", y, x);
    int rc = same_backend("scale", y, x);
    return rc ? rc : y->be->ops->scale(y->be, y, x, s, t);
}
