/* UNet2DConditionModel: weights and forward pass (models.md section 2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "semd/scheduler.h"
#include "semd/status.h"
#include "semd/unet.h"

#define MAX_RESNETS 5 /* layers_per_block (<= 4) + 1 in up blocks */
#define MAX_SKIPS (1 + SEMD_UNET_MAX_LEVELS * MAX_RESNETS)

typedef struct tblock {
    semd_norm ln1, ln2, ln3;
    semd_attn self_attn, cross_attn;
    semd_linear ff_in, ff_out;
} tblock;

/* Transformer2DModel; proj_in/out are applied on tokens whether stored as 1x1 convs or Linears. */
typedef struct transformer {
    semd_norm gn;
    semd_linear proj_in, proj_out;
    int depth;
    tblock *blocks;
} transformer;

typedef struct stage {
    int n_res;
    semd_resnet res[MAX_RESNETS];
    transformer *attn[MAX_RESNETS]; /* NULL in plain blocks */
    semd_conv sampler;              /* downsampler or upsampler conv; w NULL if none */
} stage;

struct semd_unet {
    semd_backend *be;
    semd_unet_config cfg;
    semd_conv conv_in, conv_out;
    semd_norm norm_out;
    semd_linear time1, time2, cond_proj, add1, add2;
    stage down[SEMD_UNET_MAX_LEVELS], up[SEMD_UNET_MAX_LEVELS];
    semd_resnet mid_res[2];
    transformer *mid_attn;
};

const semd_unet_config *semd_unet_config_of(const semd_unet *u) { return &u->cfg; }

semd_backend *semd_unet_backend(const semd_unet *u) { return u->be; }

/* ---- teardown ---- */

static void transformer_free(transformer *t)
{
    if (!t) return;
    for (int i = 0; t->blocks && i < t->depth; i++) {
        tblock *b = &t->blocks[i];
        semd_norm_free(&b->ln1), semd_norm_free(&b->ln2), semd_norm_free(&b->ln3);
        semd_attn_free(&b->self_attn), semd_attn_free(&b->cross_attn);
        semd_linear_free(&b->ff_in), semd_linear_free(&b->ff_out);
    }
    free(t->blocks);
    semd_norm_free(&t->gn);
    semd_linear_free(&t->proj_in), semd_linear_free(&t->proj_out);
    free(t);
}

static void stage_free(stage *s)
{
    for (int i = 0; i < MAX_RESNETS; i++) {
        semd_resnet_free(&s->res[i]);
        transformer_free(s->attn[i]);
        s->attn[i] = NULL;
    }
    semd_conv_free(&s->sampler);
}

void semd_unet_free(semd_unet *u)
{
    if (!u) return;
    semd_conv_free(&u->conv_in), semd_conv_free(&u->conv_out), semd_norm_free(&u->norm_out);
    semd_linear_free(&u->time1), semd_linear_free(&u->time2), semd_linear_free(&u->cond_proj);
    semd_linear_free(&u->add1), semd_linear_free(&u->add2);
    for (int i = 0; i < SEMD_UNET_MAX_LEVELS; i++) stage_free(&u->down[i]), stage_free(&u->up[i]);
    semd_resnet_free(&u->mid_res[0]), semd_resnet_free(&u->mid_res[1]);
    transformer_free(u->mid_attn);
    free(u);
}

/* ---- loading ---- */

static int load_tblock(const semd_loader *ld, const semd_unet_config *c, tblock *b, int ch, int heads,
                       const char *base, int k)
{
    const int ctx = c->cross_attention_dim, inner = 4 * ch;
    int rc = semd_load_norm(ld, &b->ln1, ch, "%s.transformer_blocks.%d.norm1", base, k);
    if (!rc) rc = semd_load_attn(ld, &b->self_attn, ch, ch, heads, 0, "%s.transformer_blocks.%d.attn1", base, k);
    if (!rc) rc = semd_load_norm(ld, &b->ln2, ch, "%s.transformer_blocks.%d.norm2", base, k);
    if (!rc) rc = semd_load_attn(ld, &b->cross_attn, ch, ctx, heads, 0, "%s.transformer_blocks.%d.attn2", base, k);
    if (!rc) rc = semd_load_norm(ld, &b->ln3, ch, "%s.transformer_blocks.%d.norm3", base, k);
    if (!rc) rc = semd_load_linear(ld, &b->ff_in, 2 * inner, ch, 1, "%s.transformer_blocks.%d.ff.net.0.proj", base, k);
    if (!rc) rc = semd_load_linear(ld, &b->ff_out, ch, inner, 1, "%s.transformer_blocks.%d.ff.net.2", base, k);
    return rc;
}

static int load_transformer(const semd_loader *ld, const semd_unet_config *c, transformer **out,
                            int ch, int heads, int depth, const char *base)
{
    transformer *t = calloc(1, sizeof *t);
    if (!t || !(t->blocks = calloc((size_t)depth, sizeof *t->blocks))) {
        free(t);
        return semd_error(SEMD_ENOMEM, "unet: out of memory");
    }
    t->depth = depth;
    *out = t;
    int rc = semd_load_norm(ld, &t->gn, ch, "%s.norm", base);
    if (!rc) rc = semd_load_linear(ld, &t->proj_in, ch, ch, 1, "%s.proj_in", base);
    for (int k = 0; !rc && k < depth; k++) rc = load_tblock(ld, c, &t->blocks[k], ch, heads, base, k);
    if (!rc) rc = semd_load_linear(ld, &t->proj_out, ch, ch, 1, "%s.proj_out", base);
    return rc;
}

static const semd_conv_params SAME3 = {1, 1, 1, 1, 1}, DOWN3 = {2, 1, 1, 1, 1};

static int load_down(const semd_loader *ld, const semd_unet_config *c, int i, stage *s, int *ch)
{
    const int out = c->block_out[i], temb = 4 * c->block_out[0];
    char base[96];
    int rc = 0;
    s->n_res = c->layers_per_block;
    for (int j = 0; !rc && j < s->n_res; j++) {
        rc = semd_load_resnet(ld, &s->res[j], j ? out : *ch, out, temb, c->norm_groups, c->norm_eps,
                              "down_blocks.%d.resnets.%d", i, j);
        snprintf(base, sizeof base, "down_blocks.%d.attentions.%d", i, j);
        if (!rc && c->down_attn[i])
            rc = load_transformer(ld, c, &s->attn[j], out, c->heads[i], c->depth[i], base);
    }
    if (!rc && i < c->n_levels - 1)
        rc = semd_load_conv(ld, &s->sampler, out, out, 3, 1, DOWN3, "down_blocks.%d.downsamplers.0.conv", i);
    *ch = out;
    return rc;
}

/* Up block i: ResNet j takes (prev or out) + (skip width) channels, per diffusers. */
static int load_up(const semd_loader *ld, const semd_unet_config *c, int i, stage *s)
{
    const int n = c->n_levels, temb = 4 * c->block_out[0];
    const int out = c->block_out[n - 1 - i], prev = c->block_out[n - 1 - (i ? i - 1 : 0)];
    const int in = c->block_out[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
    char base[96];
    int rc = 0;
    s->n_res = c->layers_per_block + 1;
    for (int j = 0; !rc && j < s->n_res; j++) {
        const int cin = (j ? out : prev) + (j == s->n_res - 1 ? in : out);
        rc = semd_load_resnet(ld, &s->res[j], cin, out, temb, c->norm_groups, c->norm_eps,
                              "up_blocks.%d.resnets.%d", i, j);
        snprintf(base, sizeof base, "up_blocks.%d.attentions.%d", i, j);
        if (!rc && c->up_attn[i])
            rc = load_transformer(ld, c, &s->attn[j], out, c->heads[n - 1 - i], c->up_depth[i], base);
    }
    if (!rc && i < n - 1)
        rc = semd_load_conv(ld, &s->sampler, out, out, 3, 1, SAME3, "up_blocks.%d.upsamplers.0.conv", i);
    return rc;
}

static int load_embeddings(const semd_loader *ld, const semd_unet_config *c, semd_unet *u)
{
    const int base = c->block_out[0], temb = 4 * base;
    int rc = semd_load_linear(ld, &u->time1, temb, base, 1, "time_embedding.linear_1");
    if (!rc) rc = semd_load_linear(ld, &u->time2, temb, temb, 1, "time_embedding.linear_2");
    if (!rc && c->time_cond_proj_dim)
        rc = semd_load_linear(ld, &u->cond_proj, base, c->time_cond_proj_dim, 0, "time_embedding.cond_proj");
    if (!rc && c->addition_time_embed_dim) {
        rc = semd_load_linear(ld, &u->add1, temb, c->addition_input_dim, 1, "add_embedding.linear_1");
        if (!rc) rc = semd_load_linear(ld, &u->add2, temb, temb, 1, "add_embedding.linear_2");
    }
    return rc;
}

static int load_all(const semd_loader *ld, const semd_unet_config *c, semd_unet *u)
{
    const int n = c->n_levels, top = c->block_out[n - 1], temb = 4 * c->block_out[0];
    int ch = c->block_out[0];
    int rc = load_embeddings(ld, c, u);
    if (!rc) rc = semd_load_conv(ld, &u->conv_in, ch, c->in_channels, 3, 1, SAME3, "conv_in");
    for (int i = 0; !rc && i < n; i++) rc = load_down(ld, c, i, &u->down[i], &ch);
    for (int j = 0; !rc && j < 2; j++)
        rc = semd_load_resnet(ld, &u->mid_res[j], top, top, temb, c->norm_groups, c->norm_eps,
                              "mid_block.resnets.%d", j);
    if (!rc) rc = load_transformer(ld, c, &u->mid_attn, top, c->heads[n - 1], c->depth[n - 1],
                                   "mid_block.attentions.0");
    for (int i = 0; !rc && i < n; i++) rc = load_up(ld, c, i, &u->up[i]);
    if (!rc) rc = semd_load_norm(ld, &u->norm_out, c->block_out[0], "conv_norm_out");
    if (!rc) rc = semd_load_conv(ld, &u->conv_out, c->out_channels, c->block_out[0], 3, 1, SAME3, "conv_out");
    return rc;
}

int semd_unet_load(semd_backend *be, const semd_unet_config *cfg, const semd_weight_view *view,
                   semd_unet **out)
{
    *out = NULL;
    semd_unet *u = calloc(1, sizeof *u);
    if (!u) return semd_error(SEMD_ENOMEM, "unet: out of memory");
    u->be = be;
    u->cfg = *cfg;
    semd_loader ld = {view, SEMD_MODULE_UNET, be};
    int rc = load_all(&ld, cfg, u);
    if (rc) {
        semd_unet_free(u);
        return rc;
    }
    *out = u;
    return SEMD_OK;
}

/* ---- forward: embeddings ---- */

static int upload(semd_backend *be, int64_t rows, int64_t cols, const float *host, semd_tensor **t)
{
    int rc = semd_new(be, t, 2, rows, cols, 0, 0);
    if (!rc && (rc = semd_tensor_set(*t, host))) {
        semd_tensor_free(*t);
        *t = NULL;
    }
    return rc;
}

/* linear_2(SiLU(linear_1(x))), the TimestepEmbedding MLP. */
static int embedding_mlp(const semd_linear *l1, const semd_linear *l2, const semd_tensor *x,
                         semd_tensor **y)
{
    semd_tensor *h = NULL;
    int rc = semd_linear_fwd(l1, x, &h);
    if (!rc) rc = semd_op_unary(h, h, SEMD_UNARY_SILU);
    if (!rc) rc = semd_linear_fwd(l2, h, y);
    semd_tensor_free(h);
    return rc;
}

/* SDXL: [text_embeds, sinusoid(time_ids) for each of the 6 ids] through add_embedding. */
static int addition_embedding(semd_unet *u, const semd_unet_inputs *in, int64_t batch,
                              semd_tensor **aug)
{
    const semd_unet_config *c = &u->cfg;
    const int64_t pooled = c->addition_input_dim - 6 * c->addition_time_embed_dim;
    if (!in->text_embeds || !in->time_ids || in->text_embeds->ndim != 2 ||
        in->text_embeds->ne[0] != batch || in->text_embeds->ne[1] != pooled)
        return semd_error(SEMD_EINVAL, "unet: this SDXL-style UNet needs text_embeds [%lld,%lld] "
                          "and time_ids [%lld,6]", (long long)batch, (long long)pooled, (long long)batch);
    float *host = malloc((size_t)(batch * c->addition_input_dim) * sizeof(float));
    float *text = malloc((size_t)(batch * pooled) * sizeof(float));
    int rc = (!host || !text) ? semd_error(SEMD_ENOMEM, "unet: out of memory")
                              : semd_tensor_get(in->text_embeds, text);
    for (int64_t b = 0; !rc && b < batch; b++) {
        float *row = host + b * c->addition_input_dim;
        memcpy(row, text + b * pooled, (size_t)pooled * sizeof(float));
        rc = semd_timestep_embedding(in->time_ids + b * 6, 6, c->addition_time_embed_dim,
                                     c->flip_sin_to_cos, c->freq_shift, row + pooled);
    }
    semd_tensor *x = NULL;
    if (!rc) rc = upload(u->be, batch, c->addition_input_dim, host, &x);
    if (!rc) rc = embedding_mlp(&u->add1, &u->add2, x, aug);
    semd_tensor_free(x);
    free(host);
    free(text);
    return rc;
}

/* SiLU(emb) [B, 4 C0]: what every ResNet's time projection consumes. */
static int time_embedding(semd_unet *u, const semd_unet_inputs *in, int64_t batch, semd_tensor **out)
{
    const semd_unet_config *c = &u->cfg;
    const int dim = c->block_out[0];
    semd_tensor *t = NULL, *cond = NULL, *aug = NULL;
    float *host = malloc((size_t)(batch * dim) * sizeof(float));
    if (!host) return semd_error(SEMD_ENOMEM, "unet: out of memory");
    int rc = semd_timestep_embedding(in->timesteps, (int)batch, dim, c->flip_sin_to_cos,
                                     c->freq_shift, host);
    if (!rc) rc = upload(u->be, batch, dim, host, &t);
    free(host);
    if (!rc && c->time_cond_proj_dim && in->timestep_cond) {
        rc = semd_linear_fwd(&u->cond_proj, in->timestep_cond, &cond);
        if (!rc) rc = semd_op_add(t, t, cond);
    }
    if (!rc) rc = embedding_mlp(&u->time1, &u->time2, t, out);
    if (!rc && c->addition_time_embed_dim) {
        rc = addition_embedding(u, in, batch, &aug);
        if (!rc) rc = semd_op_add(*out, *out, aug);
    }
    if (!rc) rc = semd_op_unary(*out, *out, SEMD_UNARY_SILU);
    semd_tensor_free(t), semd_tensor_free(cond), semd_tensor_free(aug);
    if (rc) semd_tensor_free(*out), *out = NULL;
    return rc;
}

/* ---- forward: blocks ---- */

static int layer_norm(const semd_norm *n, const semd_tensor *x, semd_tensor **y)
{
    int rc = semd_tensor_new(x->be, x->ndim, x->ne, y);
    if (!rc) rc = semd_op_layer_norm(*y, x, n->g, n->b, 1e-5f);
    if (rc) semd_tensor_free(*y), *y = NULL;
    return rc;
}

/* h += f(LayerNorm(h)) for the three sub-layers of a BasicTransformerBlock. */
static int tblock_fwd(const tblock *b, semd_tensor *h, const semd_tensor *ctx)
{
    semd_tensor *n = NULL, *a = NULL, *p = NULL, *g = NULL;
    int rc = layer_norm(&b->ln1, h, &n);
    if (!rc) rc = semd_attn_fwd(&b->self_attn, n, n, &a);
    if (!rc) rc = semd_op_add(h, h, a);
    semd_tensor_free(n), semd_tensor_free(a), n = a = NULL;
    if (!rc) rc = layer_norm(&b->ln2, h, &n);
    if (!rc) rc = semd_attn_fwd(&b->cross_attn, n, ctx, &a);
    if (!rc) rc = semd_op_add(h, h, a);
    semd_tensor_free(n), semd_tensor_free(a), n = a = NULL;
    if (!rc) rc = layer_norm(&b->ln3, h, &n);
    if (!rc) rc = semd_linear_fwd(&b->ff_in, n, &p);
    if (!rc) rc = semd_new(h->be, &g, 3, p->ne[0], p->ne[1], p->ne[2] / 2, 0);
    if (!rc) rc = semd_op_geglu(g, p);
    if (!rc) rc = semd_linear_fwd(&b->ff_out, g, &a);
    if (!rc) rc = semd_op_add(h, h, a);
    semd_tensor_free(n), semd_tensor_free(a), semd_tensor_free(p), semd_tensor_free(g);
    return rc;
}

static int transformer_fwd(const transformer *t, const semd_unet_config *c, const semd_tensor *x,
                           const semd_tensor *ctx, semd_tensor **y)
{
    const int64_t b = x->ne[0], ch = x->ne[1], hw = x->ne[2] * x->ne[3];
    semd_tensor *n = NULL, *tok = NULL, *h = NULL, *o = NULL;
    *y = NULL;
    int rc = semd_norm_fwd(&t->gn, x, c->norm_groups, 1e-6f, 0, &n);
    if (!rc) rc = semd_new(x->be, &tok, 3, b, hw, ch, 0);
    if (!rc) rc = semd_op_to_tokens(tok, n);
    if (!rc) rc = semd_linear_fwd(&t->proj_in, tok, &h);
    for (int k = 0; !rc && k < t->depth; k++) rc = tblock_fwd(&t->blocks[k], h, ctx);
    if (!rc) rc = semd_linear_fwd(&t->proj_out, h, &o);
    if (!rc) rc = semd_tensor_new(x->be, 4, x->ne, y);
    if (!rc) rc = semd_op_from_tokens(*y, o);
    if (!rc) rc = semd_op_add(*y, *y, x);
    semd_tensor_free(n), semd_tensor_free(tok), semd_tensor_free(h), semd_tensor_free(o);
    if (rc) semd_tensor_free(*y), *y = NULL;
    return rc;
}

/* The tensors the down path leaves for the up path (owned here), LIFO. */
typedef struct skips {
    int n;
    semd_tensor *t[MAX_SKIPS];
} skips;

static void skips_free(skips *s)
{
    for (int i = 0; i < s->n; i++) semd_tensor_free(s->t[i]);
    s->n = 0;
}

/* Run f on *h, replacing it; `keep` tensors belong to the skip stack and are not freed. */
static void advance(semd_tensor **h, semd_tensor *next, const skips *s)
{
    if (!(s->n && s->t[s->n - 1] == *h)) semd_tensor_free(*h);
    *h = next;
}

typedef struct pass {
    semd_unet *u;
    const semd_tensor *emb, *ctx;
    skips stack;
} pass;

/* ResNet, then the Transformer2D when the stage has one. */
static int res_attn(pass *p, const stage *s, int j, semd_tensor **h)
{
    semd_tensor *y = NULL;
    int rc = semd_resnet_fwd(&s->res[j], *h, p->emb, &y);
    if (!rc) advance(h, y, &p->stack);
    if (!rc && s->attn[j]) {
        rc = transformer_fwd(s->attn[j], &p->u->cfg, *h, p->ctx, &y);
        if (!rc) advance(h, y, &p->stack);
    }
    return rc;
}

static int push(pass *p, semd_tensor *h)
{
    if (p->stack.n == MAX_SKIPS) return semd_error(SEMD_EINVAL, "unet: skip stack overflow");
    p->stack.t[p->stack.n++] = h;
    return SEMD_OK;
}

static int down_path(pass *p, semd_tensor **h)
{
    const semd_unet_config *c = &p->u->cfg;
    int rc = push(p, *h);
    for (int i = 0; !rc && i < c->n_levels; i++) {
        const stage *s = &p->u->down[i];
        for (int j = 0; !rc && j < s->n_res; j++) {
            rc = res_attn(p, s, j, h);
            if (!rc) rc = push(p, *h);
        }
        if (!rc && s->sampler.w) {
            semd_tensor *y = NULL;
            rc = semd_conv_fwd(&s->sampler, *h, &y);
            if (!rc) advance(h, y, &p->stack), rc = push(p, *h);
        }
    }
    return rc;
}

static int mid_path(pass *p, semd_tensor **h)
{
    semd_tensor *y = NULL;
    int rc = semd_resnet_fwd(&p->u->mid_res[0], *h, p->emb, &y);
    if (!rc) advance(h, y, &p->stack);
    if (!rc) rc = transformer_fwd(p->u->mid_attn, &p->u->cfg, *h, p->ctx, &y);
    if (!rc) advance(h, y, &p->stack);
    if (!rc) rc = semd_resnet_fwd(&p->u->mid_res[1], *h, p->emb, &y);
    if (!rc) advance(h, y, &p->stack);
    return rc;
}

/* Nearest resize to the size of the skip tensor the next block meets, then the conv. */
static int upsample(pass *p, const stage *s, semd_tensor **h)
{
    const semd_tensor *next = p->stack.t[p->stack.n - 1];
    semd_tensor *big = NULL, *y = NULL;
    int rc = semd_new((*h)->be, &big, 4, (*h)->ne[0], (*h)->ne[1], next->ne[2], next->ne[3]);
    if (!rc) rc = semd_op_upsample_nearest(big, *h);
    if (!rc) rc = semd_conv_fwd(&s->sampler, big, &y);
    if (!rc) advance(h, y, &p->stack);
    semd_tensor_free(big);
    return rc;
}

static int up_path(pass *p, semd_tensor **h)
{
    const semd_unet_config *c = &p->u->cfg;
    int rc = 0;
    for (int i = 0; !rc && i < c->n_levels; i++) {
        const stage *s = &p->u->up[i];
        for (int j = 0; !rc && j < s->n_res; j++) {
            semd_tensor *skip = p->stack.t[--p->stack.n], *cat = NULL;
            rc = semd_new((*h)->be, &cat, 4, (*h)->ne[0], (*h)->ne[1] + skip->ne[1], skip->ne[2],
                          skip->ne[3]);
            if (!rc) rc = semd_op_concat_channels(cat, *h, skip);
            if (*h != skip) semd_tensor_free(*h);
            semd_tensor_free(skip);
            *h = cat;
            if (!rc) rc = res_attn(p, s, j, h);
        }
        if (!rc && s->sampler.w) rc = upsample(p, s, h);
    }
    return rc;
}

static int check_inputs(const semd_unet *u, const semd_unet_inputs *in)
{
    const semd_unet_config *c = &u->cfg;
    const semd_tensor *x = in->sample, *ctx = in->encoder_hidden_states;
    if (!x || !ctx || !in->timesteps) return semd_error(SEMD_EINVAL, "unet: sample, timesteps and "
                                                        "encoder_hidden_states are required");
    if (x->ndim != 4 || x->ne[1] != c->in_channels)
        return semd_error(SEMD_ESHAPE, "unet: sample must be [B,%d,h,w]", c->in_channels);
    if (ctx->ndim != 3 || ctx->ne[0] != x->ne[0] || ctx->ne[2] != c->cross_attention_dim)
        return semd_error(SEMD_ESHAPE, "unet: encoder_hidden_states must be [%lld,L,%d]",
                          (long long)x->ne[0], c->cross_attention_dim);
    if (in->timestep_cond && (!c->time_cond_proj_dim || in->timestep_cond->ndim != 2 ||
                              in->timestep_cond->ne[0] != x->ne[0] ||
                              in->timestep_cond->ne[1] != c->time_cond_proj_dim))
        return semd_error(SEMD_ESHAPE, "unet: timestep_cond must be [%lld,%d] (time_cond_proj_dim)",
                          (long long)x->ne[0], c->time_cond_proj_dim);
    return SEMD_OK;
}

int semd_unet_forward(semd_unet *u, const semd_unet_inputs *in, semd_tensor **out)
{
    *out = NULL;
    int rc = check_inputs(u, in);
    if (rc) return rc;
    pass p = {.u = u, .ctx = in->encoder_hidden_states};
    semd_tensor *emb = NULL, *h = NULL, *y = NULL;
    rc = time_embedding(u, in, in->sample->ne[0], &emb);
    p.emb = emb;
    if (!rc) rc = semd_conv_fwd(&u->conv_in, in->sample, &h);
    if (!rc) rc = down_path(&p, &h);
    if (!rc) rc = mid_path(&p, &h);
    if (!rc) rc = up_path(&p, &h);
    if (!rc) rc = semd_norm_fwd(&u->norm_out, h, u->cfg.norm_groups, u->cfg.norm_eps, 1, &y);
    if (!rc) advance(&h, y, &p.stack), rc = semd_conv_fwd(&u->conv_out, h, out);
    if (!(p.stack.n && p.stack.t[p.stack.n - 1] == h)) semd_tensor_free(h);
    skips_free(&p.stack);
    semd_tensor_free(emb);
    return rc;
}
