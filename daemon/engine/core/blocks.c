/* Layers shared by the UNet, the VAE and TAESD. */
#include "blocks.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>

#include "semd/lora.h"
#include "semd/status.h"

#define NAME_MAX_LEN 256

static void format_name(char *buf, const char *fmt, va_list ap)
{
    vsnprintf(buf, NAME_MAX_LEN, fmt, ap);
}

/* The name the weight set knows a diffusers-named tensor by. */
static int stored_name(const semd_loader *ld, const char *name, char *out, size_t cap)
{
    const semd_weight_view *v = ld->view;
    if (v->ldm_names) return semd_diffusers_to_ldm(v->layout, ld->module, name, out, cap);
    if (snprintf(out, cap, "%s%s", v->prefix ? v->prefix : "", name) >= (int)cap)
        return semd_error(SEMD_EINVAL, "tensor name too long: %s", name);
    return SEMD_OK;
}

static int load_named(const semd_loader *ld, const char *name, int ndim, const int64_t *shape,
                      semd_tensor **out)
{
    char stored[NAME_MAX_LEN + 64];
    float *host = NULL;
    int64_t ne[SEMD_MAX_DIMS];
    *out = NULL;
    int rc = stored_name(ld, name, stored, sizeof stored);
    if (!rc) rc = semd_weights_read(ld->view->w, "", stored, ndim, shape, &host, ne);
    for (int i = 0; !rc && i < ld->view->n_loras; i++) {
        int applied = semd_lora_apply(ld->view->loras[i], ld->module, name, ld->view->layout, host,
                                      ndim, ne);
        rc = applied < 0 ? applied : 0;
    }
    if (!rc) rc = semd_tensor_new(ld->be, ndim, ne, out);
    if (!rc && (rc = semd_tensor_set(*out, host))) semd_tensor_free(*out), *out = NULL;
    free(host);
    return rc;
}

static int load(const semd_loader *ld, const char *base, const char *suffix, int ndim,
                const int64_t *shape, semd_tensor **out)
{
    char name[NAME_MAX_LEN + 16];
    snprintf(name, sizeof name, "%s.%s", base, suffix);
    return load_named(ld, name, ndim, shape, out);
}

int semd_load_tensor(const semd_loader *ld, semd_tensor **out, int ndim, const int64_t *shape,
                     const char *fmt, ...)
{
    char name[NAME_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    format_name(name, fmt, ap);
    va_end(ap);
    return load_named(ld, name, ndim, shape, out);
}

int semd_has_weight(const semd_loader *ld, const char *fmt, ...)
{
    char name[NAME_MAX_LEN], stored[NAME_MAX_LEN + 64];
    va_list ap;
    va_start(ap, fmt);
    format_name(name, fmt, ap);
    va_end(ap);
    return stored_name(ld, name, stored, sizeof stored) == SEMD_OK &&
           semd_weights_find(ld->view->w, "", stored) != NULL;
}

static int load_linear(const semd_loader *ld, semd_linear *l, int out, int in, int bias,
                       const char *base)
{
    int64_t shape[2] = {out, in};
    *l = (semd_linear){0};
    int rc = load(ld, base, "weight", 2, shape, &l->w);
    if (!rc && bias) rc = load(ld, base, "bias", 1, shape, &l->b);
    if (rc) semd_linear_free(l);
    return rc;
}

int semd_load_linear(const semd_loader *ld, semd_linear *l, int out, int in, int bias,
                     const char *fmt, ...)
{
    char base[NAME_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    format_name(base, fmt, ap);
    va_end(ap);
    return load_linear(ld, l, out, in, bias, base);
}

static int load_conv(const semd_loader *ld, semd_conv *c, int out, int in, int k, int bias,
                     semd_conv_params p, const char *base)
{
    int64_t shape[4] = {out, in, k, k};
    *c = (semd_conv){.p = p};
    int rc = load(ld, base, "weight", 4, shape, &c->w);
    if (!rc && bias) rc = load(ld, base, "bias", 1, shape, &c->b);
    if (rc) semd_conv_free(c);
    return rc;
}

int semd_load_conv(const semd_loader *ld, semd_conv *c, int out, int in, int k, int bias,
                   semd_conv_params p, const char *fmt, ...)
{
    char base[NAME_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    format_name(base, fmt, ap);
    va_end(ap);
    return load_conv(ld, c, out, in, k, bias, p, base);
}

static int load_norm(const semd_loader *ld, semd_norm *n, int ch, const char *base)
{
    int64_t shape[1] = {ch};
    *n = (semd_norm){0};
    int rc = load(ld, base, "weight", 1, shape, &n->g);
    if (!rc) rc = load(ld, base, "bias", 1, shape, &n->b);
    if (rc) semd_norm_free(n);
    return rc;
}

int semd_load_norm(const semd_loader *ld, semd_norm *n, int ch, const char *fmt, ...)
{
    char base[NAME_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    format_name(base, fmt, ap);
    va_end(ap);
    return load_norm(ld, n, ch, base);
}

static const semd_conv_params SAME3 = {1, 1, 1, 1, 1}, POINT = {1, 0, 0, 0, 0};

int semd_load_resnet(const semd_loader *ld, semd_resnet *r, int cin, int cout, int temb_dim,
                     int groups, float eps, const char *fmt, ...)
{
    char base[NAME_MAX_LEN], sub[NAME_MAX_LEN + 32];
    va_list ap;
    va_start(ap, fmt);
    format_name(base, fmt, ap);
    va_end(ap);
    *r = (semd_resnet){.groups = groups, .eps = eps};
    int rc = 0;
#define SUB(s) (snprintf(sub, sizeof sub, "%s.%s", base, s), sub)
    if (!rc) rc = load_norm(ld, &r->n1, cin, SUB("norm1"));
    if (!rc) rc = load_conv(ld, &r->c1, cout, cin, 3, 1, SAME3, SUB("conv1"));
    if (!rc && temb_dim) rc = load_linear(ld, &r->temb, cout, temb_dim, 1, SUB("time_emb_proj"));
    if (!rc) rc = load_norm(ld, &r->n2, cout, SUB("norm2"));
    if (!rc) rc = load_conv(ld, &r->c2, cout, cout, 3, 1, SAME3, SUB("conv2"));
    if (!rc && cin != cout) rc = load_conv(ld, &r->shortcut, cout, cin, 1, 1, POINT, SUB("conv_shortcut"));
#undef SUB
    if (rc) semd_resnet_free(r);
    return rc;
}

int semd_load_attn(const semd_loader *ld, semd_attn *a, int dim, int kv_dim, int heads, int qkv_bias,
                   const char *fmt, ...)
{
    char base[NAME_MAX_LEN], sub[NAME_MAX_LEN + 32];
    va_list ap;
    va_start(ap, fmt);
    format_name(base, fmt, ap);
    va_end(ap);
    *a = (semd_attn){.heads = heads};
    int rc = 0;
#define SUB(s) (snprintf(sub, sizeof sub, "%s.%s", base, s), sub)
    if (!rc) rc = load_linear(ld, &a->q, dim, dim, qkv_bias, SUB("to_q"));
    if (!rc) rc = load_linear(ld, &a->k, dim, kv_dim, qkv_bias, SUB("to_k"));
    if (!rc) rc = load_linear(ld, &a->v, dim, kv_dim, qkv_bias, SUB("to_v"));
    if (!rc) rc = load_linear(ld, &a->out, dim, dim, 1, SUB("to_out.0"));
#undef SUB
    if (rc) semd_attn_free(a);
    return rc;
}

void semd_linear_free(semd_linear *l)
{
    semd_tensor_free(l->w);
    semd_tensor_free(l->b);
    l->w = l->b = NULL;
}

void semd_conv_free(semd_conv *c)
{
    semd_tensor_free(c->w);
    semd_tensor_free(c->b);
    c->w = c->b = NULL;
}

void semd_norm_free(semd_norm *n)
{
    semd_tensor_free(n->g);
    semd_tensor_free(n->b);
    n->g = n->b = NULL;
}

void semd_resnet_free(semd_resnet *r)
{
    semd_norm_free(&r->n1);
    semd_norm_free(&r->n2);
    semd_conv_free(&r->c1);
    semd_conv_free(&r->c2);
    semd_conv_free(&r->shortcut);
    semd_linear_free(&r->temb);
}

void semd_attn_free(semd_attn *a)
{
    semd_linear_free(&a->q);
    semd_linear_free(&a->k);
    semd_linear_free(&a->v);
    semd_linear_free(&a->out);
}

/* ---- forward ---- */

int semd_new(semd_backend *be, semd_tensor **out, int ndim, int64_t d0, int64_t d1, int64_t d2,
             int64_t d3)
{
    int64_t ne[4] = {d0, d1, d2, d3};
    return semd_tensor_new(be, ndim, ne, out);
}

void semd_replace(semd_tensor **x, semd_tensor *y)
{
    semd_tensor_free(*x);
    *x = y;
}

/* Free *y and clear it when rc reports a failure; pass rc through. */
static int settle(int rc, semd_tensor **y)
{
    if (rc) {
        semd_tensor_free(*y);
        *y = NULL;
    }
    return rc;
}

int semd_linear_fwd(const semd_linear *l, const semd_tensor *x, semd_tensor **y)
{
    int64_t ne[SEMD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) ne[i] = x->ne[i];
    ne[x->ndim - 1] = l->w->ne[0];
    int rc = semd_tensor_new(x->be, x->ndim, ne, y);
    if (!rc) rc = semd_op_linear(*y, x, l->w, l->b);
    return settle(rc, y);
}

int semd_conv_fwd(const semd_conv *c, const semd_tensor *x, semd_tensor **y)
{
    *y = NULL;
    if (x->ndim != 4) return semd_error(SEMD_ESHAPE, "conv: input must be [B,C,H,W]");
    const semd_conv_params p = c->p;
    const int64_t ho = (x->ne[2] + p.pad_top + p.pad_bottom - c->w->ne[2]) / p.stride + 1;
    const int64_t wo = (x->ne[3] + p.pad_left + p.pad_right - c->w->ne[3]) / p.stride + 1;
    int rc = semd_new(x->be, y, 4, x->ne[0], c->w->ne[0], ho, wo);
    if (!rc) rc = semd_op_conv2d(*y, x, c->w, c->b, p);
    return settle(rc, y);
}

int semd_norm_fwd(const semd_norm *n, const semd_tensor *x, int groups, float eps, int silu,
                  semd_tensor **y)
{
    int rc = semd_tensor_new(x->be, x->ndim, x->ne, y);
    if (!rc) rc = semd_op_group_norm(*y, x, n->g, n->b, groups, eps, silu);
    return settle(rc, y);
}

int semd_resnet_fwd(const semd_resnet *r, const semd_tensor *x, const semd_tensor *silu_emb,
                    semd_tensor **y)
{
    semd_tensor *h = NULL, *t = NULL, *tmp = NULL, *skip = NULL;
    *y = NULL;
    int rc = semd_norm_fwd(&r->n1, x, r->groups, r->eps, 1, &h);
    if (!rc) rc = semd_conv_fwd(&r->c1, h, &tmp);
    if (!rc) semd_replace(&h, tmp), tmp = NULL;
    if (!rc && r->temb.w && silu_emb) {
        rc = semd_linear_fwd(&r->temb, silu_emb, &t);
        if (!rc) rc = semd_op_add_channel_bias(h, h, t);
    }
    if (!rc) rc = semd_norm_fwd(&r->n2, h, r->groups, r->eps, 1, &tmp);
    if (!rc) semd_replace(&h, tmp), tmp = NULL;
    if (!rc) rc = semd_conv_fwd(&r->c2, h, &tmp);
    if (!rc) semd_replace(&h, tmp), tmp = NULL;
    if (!rc && r->shortcut.w) rc = semd_conv_fwd(&r->shortcut, x, &skip);
    if (!rc) rc = semd_op_add(h, h, skip ? skip : x);
    semd_tensor_free(t);
    semd_tensor_free(skip);
    semd_tensor_free(tmp);
    if (rc) {
        semd_tensor_free(h);
        return rc;
    }
    *y = h;
    return SEMD_OK;
}

int semd_attn_fwd(const semd_attn *a, const semd_tensor *xq, const semd_tensor *xkv,
                  semd_tensor **y)
{
    semd_tensor *q = NULL, *k = NULL, *v = NULL, *o = NULL;
    *y = NULL;
    int rc = semd_linear_fwd(&a->q, xq, &q);
    if (!rc) rc = semd_linear_fwd(&a->k, xkv, &k);
    if (!rc) rc = semd_linear_fwd(&a->v, xkv, &v);
    if (!rc) rc = semd_tensor_new(q->be, 3, q->ne, &o);
    if (!rc) rc = semd_op_attention(o, q, k, v, a->heads, 0);
    if (!rc) rc = semd_linear_fwd(&a->out, o, y);
    semd_tensor_free(q);
    semd_tensor_free(k);
    semd_tensor_free(v);
    semd_tensor_free(o);
    return rc;
}
