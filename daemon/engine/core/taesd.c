/*
 * TAESD (diffusers AutoencoderTiny): a stack of 3x3 convs and residual blocks,
 * laid out as one Sequential per half, so weights are addressed by layer index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "json_util.h"
#include "semd/status.h"
#include "semd/vae.h"

#define MAX_LAYERS 64

typedef enum kind { CONV, BLOCK, RELU, UPSAMPLE } kind;

/* AutoencoderTinyBlock: conv-ReLU-conv-ReLU-conv, plus skip, then ReLU. */
typedef struct layer {
    kind kind;
    semd_conv conv;     /* CONV */
    semd_conv c[3];     /* BLOCK */
    semd_conv skip;     /* BLOCK with in != out; w NULL otherwise */
} layer;

typedef struct stack {
    int n;
    layer l[MAX_LAYERS];
} stack;

struct semd_taesd {
    semd_taesd_config cfg;
    stack enc, dec;
    int has_enc, has_dec;
};

void semd_taesd_config_default(semd_taesd_config *c)
{
    *c = (semd_taesd_config){
        .in_channels = 3, .out_channels = 3, .latent_channels = 4, .n_enc = 4, .n_dec = 4,
        .enc_channels = {64, 64, 64, 64}, .enc_blocks = {1, 3, 3, 3},
        .dec_channels = {64, 64, 64, 64}, .dec_blocks = {3, 3, 3, 1},
    };
}

static int int_list(const cJSON *r, const char *p, const char *key, int *out, int *n)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(r, key);
    if (!list) return SEMD_OK;
    int len = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : -1;
    if (len < 1 || len > SEMD_TAESD_MAX_LEVELS)
        return semd_error(SEMD_EFORMAT, "%s: %s must list 1..%d numbers", p, key, SEMD_TAESD_MAX_LEVELS);
    for (int i = 0; i < len; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        if (!cJSON_IsNumber(e) || e->valueint <= 0)
            return semd_error(SEMD_EFORMAT, "%s: %s[%d] must be positive", p, key, i);
        out[i] = e->valueint;
    }
    *n = len;
    return SEMD_OK;
}

static int expect_string(const cJSON *r, const char *p, const char *key, const char *want)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r, key);
    if (!it || (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)) return SEMD_OK;
    return semd_error(SEMD_EUNSUPPORTED, "%s: %s must be \"%s\"", p, key, want);
}

int semd_taesd_config_load(const char *path, semd_taesd_config *c)
{
    cJSON *r;
    int rc = semd_json_load(path, &r);
    if (rc) return rc;
    semd_taesd_config_default(c);
    int n1 = c->n_enc, n2 = c->n_enc, n3 = c->n_dec, n4 = c->n_dec;
    rc = semd_json_int_opt(r, path, "in_channels", &c->in_channels);
    if (!rc) rc = semd_json_int_opt(r, path, "out_channels", &c->out_channels);
    if (!rc) rc = semd_json_int_opt(r, path, "latent_channels", &c->latent_channels);
    if (!rc) rc = int_list(r, path, "encoder_block_out_channels", c->enc_channels, &n1);
    if (!rc) rc = int_list(r, path, "num_encoder_blocks", c->enc_blocks, &n2);
    if (!rc) rc = int_list(r, path, "decoder_block_out_channels", c->dec_channels, &n3);
    if (!rc) rc = int_list(r, path, "num_decoder_blocks", c->dec_blocks, &n4);
    if (!rc) rc = expect_string(r, path, "act_fn", "relu");
    if (!rc) rc = expect_string(r, path, "upsample_fn", "nearest");
    int up = 2;
    if (!rc) rc = semd_json_int_opt(r, path, "upsampling_scaling_factor", &up);
    if (!rc && up != 2) rc = semd_error(SEMD_EUNSUPPORTED, "%s: upsampling_scaling_factor must be 2", path);
    if (!rc && (n1 != n2 || n3 != n4))
        rc = semd_error(SEMD_EFORMAT, "%s: block channel and block count lists differ in length", path);
    c->n_enc = n1;
    c->n_dec = n3;
    cJSON_Delete(r);
    return rc;
}

static void stack_free(stack *s)
{
    for (int i = 0; i < s->n; i++) {
        semd_conv_free(&s->l[i].conv);
        for (int k = 0; k < 3; k++) semd_conv_free(&s->l[i].c[k]);
        semd_conv_free(&s->l[i].skip);
    }
    s->n = 0;
}

void semd_taesd_free(semd_taesd *t)
{
    if (!t) return;
    stack_free(&t->enc), stack_free(&t->dec);
    free(t);
}

typedef struct builder {
    const semd_loader *ld;
    const char *side; /* "encoder" or "decoder" (diffusers naming), NULL for original files */
    int index_shift;  /* original decoders start with a weightless clamp layer */
    stack *s;
} builder;

static const semd_conv_params SAME3 = {1, 1, 1, 1, 1}, DOWN3 = {2, 1, 1, 1, 1}, POINT = {1, 0, 0, 0, 0};

static layer *next_layer(builder *b, kind k, int *index)
{
    if (b->s->n == MAX_LAYERS) return NULL;
    *index = b->s->n + b->index_shift;
    layer *l = &b->s->l[b->s->n++];
    l->kind = k;
    return l;
}

#define NAME(fmt, ...)                                                                    \
    (b->side ? snprintf(name, sizeof name, "%s.layers." fmt, b->side, __VA_ARGS__)        \
             : snprintf(name, sizeof name, fmt, __VA_ARGS__))

static int add_conv(builder *b, int out, int in, int bias, semd_conv_params p)
{
    int idx;
    char name[96];
    layer *l = next_layer(b, CONV, &idx);
    if (!l) return semd_error(SEMD_EFORMAT, "taesd: too many layers");
    NAME("%d", idx);
    return semd_load_conv(b->ld, &l->conv, out, in, 3, bias, p, "%s", name);
}

static int add_block(builder *b, int in, int out)
{
    int idx, rc = 0;
    char name[96];
    layer *l = next_layer(b, BLOCK, &idx);
    if (!l) return semd_error(SEMD_EFORMAT, "taesd: too many layers");
    for (int k = 0; !rc && k < 3; k++) {
        NAME("%d.conv.%d", idx, 2 * k);
        rc = semd_load_conv(b->ld, &l->c[k], out, k ? out : in, 3, 1, SAME3, "%s", name);
    }
    if (!rc && in != out) {
        NAME("%d.skip", idx);
        rc = semd_load_conv(b->ld, &l->skip, out, in, 1, 0, POINT, "%s", name);
    }
    return rc;
}

static int add_plain(builder *b, kind k)
{
    int idx;
    return next_layer(b, k, &idx) ? SEMD_OK : semd_error(SEMD_EFORMAT, "taesd: too many layers");
}

/* conv(in->c0), blocks; then per level: strided conv (no bias), blocks; conv(-> latent). */
static int build_encoder(builder *b, const semd_taesd_config *c)
{
    int rc = 0;
    for (int i = 0; !rc && i < c->n_enc; i++) {
        const int ch = c->enc_channels[i];
        rc = i ? add_conv(b, ch, ch, 0, DOWN3) : add_conv(b, ch, c->in_channels, 1, SAME3);
        for (int k = 0; !rc && k < c->enc_blocks[i]; k++) rc = add_block(b, ch, ch);
    }
    if (!rc) rc = add_conv(b, c->latent_channels, c->enc_channels[c->n_enc - 1], 1, SAME3);
    return rc;
}

/* conv(latent->c0), ReLU; per level: blocks, then (upsample, conv no bias) or the final conv. */
static int build_decoder(builder *b, const semd_taesd_config *c)
{
    int rc = add_conv(b, c->dec_channels[0], c->latent_channels, 1, SAME3);
    if (!rc) rc = add_plain(b, RELU);
    for (int i = 0; !rc && i < c->n_dec; i++) {
        const int ch = c->dec_channels[i], last = i == c->n_dec - 1;
        for (int k = 0; !rc && k < c->dec_blocks[i]; k++) rc = add_block(b, ch, ch);
        if (!rc && !last) rc = add_plain(b, UPSAMPLE);
        if (!rc) rc = add_conv(b, last ? c->out_channels : ch, ch, last, SAME3);
    }
    return rc;
}

int semd_taesd_load(semd_backend *be, const semd_taesd_config *cfg, const semd_weights *enc,
                    const semd_weights *dec, semd_taesd_naming naming, semd_taesd **out)
{
    *out = NULL;
    if (!enc && !dec) return semd_error(SEMD_EINVAL, "taesd: no weights given");
    semd_taesd *t = calloc(1, sizeof *t);
    if (!t) return semd_error(SEMD_ENOMEM, "taesd: out of memory");
    t->cfg = *cfg;
    const int orig = naming == SEMD_TAESD_ORIGINAL;
    int rc = 0;
    if (enc) {
        semd_weight_view view = {.w = enc, .prefix = ""};
        semd_loader ld = {&view, SEMD_MODULE_VAE, be};
        builder b = {&ld, orig ? NULL : "encoder", 0, &t->enc};
        rc = build_encoder(&b, cfg);
        t->has_enc = 1;
    }
    if (!rc && dec) {
        semd_weight_view view = {.w = dec, .prefix = ""};
        semd_loader ld = {&view, SEMD_MODULE_VAE, be};
        builder b = {&ld, orig ? NULL : "decoder", orig ? 1 : 0, &t->dec};
        rc = build_decoder(&b, cfg);
        t->has_dec = 1;
    }
    if (rc) {
        semd_taesd_free(t);
        return rc;
    }
    *out = t;
    return SEMD_OK;
}

/* ---- forward ---- */

static int block_fwd(const layer *l, const semd_tensor *x, semd_tensor **y)
{
    semd_tensor *h = NULL, *n = NULL, *skip = NULL;
    int rc = semd_conv_fwd(&l->c[0], x, &h);
    for (int k = 1; !rc && k < 3; k++) {
        rc = semd_op_unary(h, h, SEMD_UNARY_RELU);
        if (!rc) rc = semd_conv_fwd(&l->c[k], h, &n);
        if (!rc) semd_replace(&h, n), n = NULL;
    }
    if (!rc && l->skip.w) rc = semd_conv_fwd(&l->skip, x, &skip);
    if (!rc) rc = semd_op_add(h, h, skip ? skip : x);
    if (!rc) rc = semd_op_unary(h, h, SEMD_UNARY_RELU);
    semd_tensor_free(skip);
    if (rc) semd_tensor_free(h), h = NULL;
    *y = h;
    return rc;
}

static int layer_fwd(const layer *l, const semd_tensor *x, semd_tensor **y)
{
    switch (l->kind) {
    case CONV: return semd_conv_fwd(&l->conv, x, y);
    case BLOCK: return block_fwd(l, x, y);
    case RELU: {
        int rc = semd_tensor_new(x->be, x->ndim, x->ne, y);
        if (!rc) rc = semd_op_unary(*y, x, SEMD_UNARY_RELU);
        return rc;
    }
    case UPSAMPLE: {
        int rc = semd_new(x->be, y, 4, x->ne[0], x->ne[1], 2 * x->ne[2], 2 * x->ne[3]);
        if (!rc) rc = semd_op_upsample_nearest(*y, x);
        return rc;
    }
    }
    return semd_error(SEMD_EINVAL, "taesd: bad layer");
}

/* x*pre_s+pre_t, the stack, then *post_s+post_t: TAESD's [0,1] <-> [-1,1] conventions. */
static int run(const stack *s, const semd_tensor *x, float pre_s, float pre_t, semd_unary pre_f,
               int use_pre_f, float post_s, float post_t, semd_tensor **out)
{
    semd_tensor *h = NULL, *y = NULL;
    int rc = semd_tensor_new(x->be, x->ndim, x->ne, &h);
    if (!rc) rc = semd_op_scale(h, x, pre_s, pre_t);
    if (!rc && use_pre_f) rc = semd_op_unary(h, h, pre_f);
    for (int i = 0; !rc && i < s->n; i++) {
        rc = layer_fwd(&s->l[i], h, &y);
        if (!rc) semd_replace(&h, y);
    }
    if (!rc) rc = semd_op_scale(h, h, post_s, post_t);
    if (rc) semd_tensor_free(h), h = NULL;
    *out = h;
    return rc;
}

int semd_taesd_decode(semd_taesd *t, const semd_tensor *latent, semd_tensor **image)
{
    *image = NULL;
    if (!t->has_dec) return semd_error(SEMD_EINVAL, "taesd: decoder not loaded");
    if (!latent || latent->ndim != 4 || latent->ne[1] != t->cfg.latent_channels)
        return semd_error(SEMD_ESHAPE, "taesd decode: latent must be [B,%d,h,w]", t->cfg.latent_channels);
    return run(&t->dec, latent, 1.0f, 0.0f, SEMD_UNARY_TANH_CLAMP3, 1, 2.0f, -1.0f, image);
}

int semd_taesd_encode(semd_taesd *t, const semd_tensor *image, semd_tensor **latent)
{
    *latent = NULL;
    if (!t->has_enc) return semd_error(SEMD_EINVAL, "taesd: encoder not loaded");
    if (!image || image->ndim != 4 || image->ne[1] != t->cfg.in_channels)
        return semd_error(SEMD_ESHAPE, "taesd encode: image must be [B,%d,H,W]", t->cfg.in_channels);
    return run(&t->enc, image, 0.5f, 0.5f, SEMD_UNARY_RELU, 0, 1.0f, 0.0f, latent);
}

int semd_taesd_open(const char *path, semd_backend *be, int parts, semd_taesd **out)
{
    *out = NULL;
    semd_taesd_config cfg;
    semd_weights *w = NULL;
    int rc;
    if (semd_is_dir(path)) {
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", path);
        rc = semd_is_file(cfg_path) ? semd_taesd_config_load(cfg_path, &cfg)
                                    : (semd_taesd_config_default(&cfg), SEMD_OK);
        if (!rc) rc = semd_weights_open(path, &w);
        if (!rc) rc = semd_taesd_load(be, &cfg, (parts & SEMD_VAE_ENCODER) ? w : NULL,
                                      (parts & SEMD_VAE_DECODER) ? w : NULL, SEMD_TAESD_DIFFUSERS, out);
    } else {
        /* An original taesd_encoder / taesd_decoder file holds one half. */
        if (parts != SEMD_VAE_ENCODER && parts != SEMD_VAE_DECODER)
            return semd_error(SEMD_EINVAL, "%s: an original TAESD file holds only an encoder or "
                              "only a decoder", path);
        semd_taesd_config_default(&cfg);
        rc = semd_weights_open(path, &w);
        if (!rc) rc = semd_taesd_load(be, &cfg, parts == SEMD_VAE_ENCODER ? w : NULL,
                                      parts == SEMD_VAE_DECODER ? w : NULL, SEMD_TAESD_ORIGINAL, out);
    }
    semd_weights_free(w);
    return rc;
}

int semd_taesd_random(semd_backend *be, uint64_t seed, semd_taesd **out)
{
    semd_taesd_config cfg;
    semd_weights *w;
    *out = NULL;
    semd_taesd_config_default(&cfg);
    int rc = semd_weights_random(seed, &w);
    if (!rc) rc = semd_taesd_load(be, &cfg, w, w, SEMD_TAESD_DIFFUSERS, out);
    semd_weights_free(w);
    return rc;
}
