/* AutoencoderKL: config, weights, encoder and decoder (models.md section 5). */
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "json_util.h"
#include "semd/status.h"
#include "semd/vae.h"

#define VAE_EPS 1e-6f
#define MAX_RES 5

typedef struct level {
    int n_res;
    semd_resnet res[MAX_RES];
    semd_conv sampler; /* w NULL when the level has none */
} level;

/* Mid block: ResNet, single-head self-attention with a residual, ResNet. */
typedef struct mid {
    semd_resnet res[2];
    semd_norm attn_norm;
    semd_attn attn;
    int has_attn;
} mid;

typedef struct half {
    semd_conv conv_in, conv_out;
    semd_norm norm_out;
    mid mid;
    level levels[SEMD_VAE_MAX_LEVELS];
} half;

struct semd_vae {
    semd_backend *be;
    semd_vae_config cfg;
    int parts;
    half enc, dec;
    semd_conv quant, post_quant;
};

void semd_vae_config_sd15(semd_vae_config *c)
{
    *c = (semd_vae_config){
        .in_channels = 3, .out_channels = 3, .latent_channels = 4, .n_levels = 4,
        .block_out = {128, 256, 512, 512}, .layers_per_block = 2, .norm_groups = 32,
        .mid_attention = 1, .quant_conv = 1, .post_quant_conv = 1, .scaling_factor = 0.18215f,
    };
}

static int read_bool(const cJSON *r, const char *key, int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r, key);
    if (cJSON_IsBool(it)) *out = cJSON_IsTrue(it);
    return SEMD_OK;
}

static int read_levels(const cJSON *r, const char *p, semd_vae_config *c)
{
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(r, "block_out_channels");
    int n = cJSON_IsArray(boc) ? cJSON_GetArraySize(boc) : 0;
    if (n < 1 || n > SEMD_VAE_MAX_LEVELS)
        return semd_error(SEMD_EFORMAT, "%s: block_out_channels must list 1..%d sizes", p, SEMD_VAE_MAX_LEVELS);
    c->n_levels = n;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(boc, i);
        if (!cJSON_IsNumber(e) || e->valueint <= 0 || e->valueint % c->norm_groups)
            return semd_error(SEMD_EFORMAT, "%s: block_out_channels[%d] must be a positive multiple "
                              "of norm_num_groups %d", p, i, c->norm_groups);
        c->block_out[i] = e->valueint;
    }
    return SEMD_OK;
}

static int check_block_types(const cJSON *r, const char *p, const char *key, const char *want, int n)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(r, key);
    if (!list) return SEMD_OK;
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != n)
        return semd_error(SEMD_EFORMAT, "%s: %s must list %d block types", p, key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        if (!cJSON_IsString(e) || strcmp(e->valuestring, want) != 0)
            return semd_error(SEMD_EUNSUPPORTED, "%s: %s[%d] must be %s", p, key, i, want);
    }
    return SEMD_OK;
}

int semd_vae_config_load(const char *path, semd_vae_config *c)
{
    cJSON *r;
    int rc = semd_json_load(path, &r);
    if (rc) return rc;
    semd_vae_config_sd15(c);
    rc = semd_json_int_opt(r, path, "in_channels", &c->in_channels);
    if (!rc) rc = semd_json_int_opt(r, path, "out_channels", &c->out_channels);
    if (!rc) rc = semd_json_int_opt(r, path, "latent_channels", &c->latent_channels);
    if (!rc) rc = semd_json_int_opt(r, path, "layers_per_block", &c->layers_per_block);
    if (!rc) rc = semd_json_int_opt(r, path, "norm_num_groups", &c->norm_groups);
    if (!rc) rc = semd_json_float_opt(r, path, "scaling_factor", &c->scaling_factor);
    if (!rc && (c->in_channels <= 0 || c->out_channels <= 0 || c->latent_channels <= 0 ||
                c->layers_per_block <= 0 || c->layers_per_block >= MAX_RES || c->norm_groups <= 0))
        rc = semd_error(SEMD_EFORMAT, "%s: channel counts, layers_per_block (1..%d) and "
                        "norm_num_groups must be positive", path, MAX_RES - 1);
    if (!rc) rc = read_levels(r, path, c);
    if (!rc) rc = check_block_types(r, path, "down_block_types", "DownEncoderBlock2D", c->n_levels);
    if (!rc) rc = check_block_types(r, path, "up_block_types", "UpDecoderBlock2D", c->n_levels);
    read_bool(r, "mid_block_add_attention", &c->mid_attention);
    read_bool(r, "use_quant_conv", &c->quant_conv);
    read_bool(r, "use_post_quant_conv", &c->post_quant_conv);
    cJSON_Delete(r);
    return rc;
}

const semd_vae_config *semd_vae_config_of(const semd_vae *v) { return &v->cfg; }

static void half_free(half *h)
{
    semd_conv_free(&h->conv_in), semd_conv_free(&h->conv_out), semd_norm_free(&h->norm_out);
    semd_resnet_free(&h->mid.res[0]), semd_resnet_free(&h->mid.res[1]);
    semd_norm_free(&h->mid.attn_norm), semd_attn_free(&h->mid.attn);
    for (int i = 0; i < SEMD_VAE_MAX_LEVELS; i++) {
        for (int j = 0; j < MAX_RES; j++) semd_resnet_free(&h->levels[i].res[j]);
        semd_conv_free(&h->levels[i].sampler);
    }
}

void semd_vae_free(semd_vae *v)
{
    if (!v) return;
    half_free(&v->enc), half_free(&v->dec);
    semd_conv_free(&v->quant), semd_conv_free(&v->post_quant);
    free(v);
}

static const semd_conv_params SAME3 = {1, 1, 1, 1, 1}, POINT = {1, 0, 0, 0, 0};
/* The VAE encoder pads only right and bottom before its stride-2 convs (pitfall 7). */
static const semd_conv_params DOWN_RB = {2, 0, 0, 1, 1};

static int load_mid(const semd_loader *ld, const semd_vae_config *c, mid *m, int ch, const char *side)
{
    int rc = 0;
    for (int j = 0; !rc && j < 2; j++)
        rc = semd_load_resnet(ld, &m->res[j], ch, ch, 0, c->norm_groups, VAE_EPS,
                              "%s.mid_block.resnets.%d", side, j);
    m->has_attn = c->mid_attention;
    if (!rc && m->has_attn) {
        rc = semd_load_norm(ld, &m->attn_norm, ch, "%s.mid_block.attentions.0.group_norm", side);
        if (!rc) rc = semd_load_attn(ld, &m->attn, ch, ch, 1, 1, "%s.mid_block.attentions.0", side);
    }
    return rc;
}

static int load_encoder(const semd_loader *ld, const semd_vae_config *c, half *e)
{
    const int n = c->n_levels, top = c->block_out[n - 1];
    int ch = c->block_out[0];
    int rc = semd_load_conv(ld, &e->conv_in, ch, c->in_channels, 3, 1, SAME3, "encoder.conv_in");
    for (int i = 0; !rc && i < n; i++) {
        level *l = &e->levels[i];
        const int out = c->block_out[i];
        l->n_res = c->layers_per_block;
        for (int j = 0; !rc && j < l->n_res; j++)
            rc = semd_load_resnet(ld, &l->res[j], j ? out : ch, out, 0, c->norm_groups, VAE_EPS,
                                  "encoder.down_blocks.%d.resnets.%d", i, j);
        if (!rc && i < n - 1)
            rc = semd_load_conv(ld, &l->sampler, out, out, 3, 1, DOWN_RB,
                                "encoder.down_blocks.%d.downsamplers.0.conv", i);
        ch = out;
    }
    if (!rc) rc = load_mid(ld, c, &e->mid, top, "encoder");
    if (!rc) rc = semd_load_norm(ld, &e->norm_out, top, "encoder.conv_norm_out");
    if (!rc) rc = semd_load_conv(ld, &e->conv_out, 2 * c->latent_channels, top, 3, 1, SAME3, "encoder.conv_out");
    return rc;
}

static int load_decoder(const semd_loader *ld, const semd_vae_config *c, half *d)
{
    const int n = c->n_levels, top = c->block_out[n - 1];
    int ch = top;
    int rc = semd_load_conv(ld, &d->conv_in, top, c->latent_channels, 3, 1, SAME3, "decoder.conv_in");
    if (!rc) rc = load_mid(ld, c, &d->mid, top, "decoder");
    for (int i = 0; !rc && i < n; i++) {
        level *l = &d->levels[i];
        const int out = c->block_out[n - 1 - i];
        l->n_res = c->layers_per_block + 1;
        for (int j = 0; !rc && j < l->n_res; j++)
            rc = semd_load_resnet(ld, &l->res[j], j ? out : ch, out, 0, c->norm_groups, VAE_EPS,
                                  "decoder.up_blocks.%d.resnets.%d", i, j);
        if (!rc && i < n - 1)
            rc = semd_load_conv(ld, &l->sampler, out, out, 3, 1, SAME3,
                                "decoder.up_blocks.%d.upsamplers.0.conv", i);
        ch = out;
    }
    if (!rc) rc = semd_load_norm(ld, &d->norm_out, c->block_out[0], "decoder.conv_norm_out");
    if (!rc) rc = semd_load_conv(ld, &d->conv_out, c->out_channels, c->block_out[0], 3, 1, SAME3, "decoder.conv_out");
    return rc;
}

int semd_vae_load(semd_backend *be, const semd_vae_config *cfg, const semd_weight_view *view,
                  int parts, semd_vae **out)
{
    *out = NULL;
    if (!(parts & (SEMD_VAE_ENCODER | SEMD_VAE_DECODER)))
        return semd_error(SEMD_EINVAL, "vae: load the encoder, the decoder or both");
    semd_vae *v = calloc(1, sizeof *v);
    if (!v) return semd_error(SEMD_ENOMEM, "vae: out of memory");
    v->be = be;
    v->cfg = *cfg;
    v->parts = parts;
    const int lat2 = 2 * cfg->latent_channels, lat = cfg->latent_channels;
    semd_loader ld = {view, SEMD_MODULE_VAE, be};
    int rc = 0;
    if (parts & SEMD_VAE_ENCODER) {
        rc = load_encoder(&ld, cfg, &v->enc);
        if (!rc && cfg->quant_conv) rc = semd_load_conv(&ld, &v->quant, lat2, lat2, 1, 1, POINT, "quant_conv");
    }
    if (!rc && (parts & SEMD_VAE_DECODER)) {
        rc = load_decoder(&ld, cfg, &v->dec);
        if (!rc && cfg->post_quant_conv)
            rc = semd_load_conv(&ld, &v->post_quant, lat, lat, 1, 1, POINT, "post_quant_conv");
    }
    if (rc) {
        semd_vae_free(v);
        return rc;
    }
    *out = v;
    return SEMD_OK;
}

/* ---- forward ---- */

/* Replace *h with f's output, keeping `keep` (the caller's input) alive. */
static void step(semd_tensor **h, semd_tensor *y, const semd_tensor *keep)
{
    if (*h != keep) semd_tensor_free(*h);
    *h = y;
}

static int mid_attention(const mid *m, int groups, semd_tensor **h, const semd_tensor *keep)
{
    const semd_tensor *x = *h;
    const int64_t b = x->ne[0], ch = x->ne[1], hw = x->ne[2] * x->ne[3];
    semd_tensor *n = NULL, *tok = NULL, *a = NULL, *y = NULL;
    int rc = semd_norm_fwd(&m->attn_norm, x, groups, VAE_EPS, 0, &n);
    if (!rc) rc = semd_new(x->be, &tok, 3, b, hw, ch, 0);
    if (!rc) rc = semd_op_to_tokens(tok, n);
    if (!rc) rc = semd_attn_fwd(&m->attn, tok, tok, &a);
    if (!rc) rc = semd_tensor_new(x->be, 4, x->ne, &y);
    if (!rc) rc = semd_op_from_tokens(y, a);
    if (!rc) rc = semd_op_add(y, y, x);
    semd_tensor_free(n), semd_tensor_free(tok), semd_tensor_free(a);
    if (rc) semd_tensor_free(y);
    else step(h, y, keep);
    return rc;
}

static int mid_fwd(const mid *m, int groups, semd_tensor **h, const semd_tensor *keep)
{
    semd_tensor *y = NULL;
    int rc = semd_resnet_fwd(&m->res[0], *h, NULL, &y);
    if (!rc) step(h, y, keep);
    if (!rc && m->has_attn) rc = mid_attention(m, groups, h, keep);
    if (!rc) rc = semd_resnet_fwd(&m->res[1], *h, NULL, &y);
    if (!rc) step(h, y, keep);
    return rc;
}

static int level_fwd(const level *l, semd_tensor **h, const semd_tensor *keep, int upsample)
{
    semd_tensor *y = NULL;
    int rc = 0;
    for (int j = 0; !rc && j < l->n_res; j++) {
        rc = semd_resnet_fwd(&l->res[j], *h, NULL, &y);
        if (!rc) step(h, y, keep);
    }
    if (!rc && l->sampler.w && upsample) {
        semd_tensor *big = NULL;
        rc = semd_new((*h)->be, &big, 4, (*h)->ne[0], (*h)->ne[1], 2 * (*h)->ne[2], 2 * (*h)->ne[3]);
        if (!rc) rc = semd_op_upsample_nearest(big, *h);
        if (!rc) rc = semd_conv_fwd(&l->sampler, big, &y);
        if (!rc) step(h, y, keep);
        semd_tensor_free(big);
    } else if (!rc && l->sampler.w) {
        rc = semd_conv_fwd(&l->sampler, *h, &y);
        if (!rc) step(h, y, keep);
    }
    return rc;
}

/* GroupNorm + SiLU + conv_out, the tail both halves share. */
static int tail(const half *hf, int groups, semd_tensor **h, const semd_tensor *keep)
{
    semd_tensor *y = NULL;
    int rc = semd_norm_fwd(&hf->norm_out, *h, groups, VAE_EPS, 1, &y);
    if (!rc) step(h, y, keep), rc = semd_conv_fwd(&hf->conv_out, *h, &y);
    if (!rc) step(h, y, keep);
    return rc;
}

static int check_input(const char *what, const semd_tensor *x, int channels)
{
    if (!x || x->ndim != 4 || x->ne[1] != channels)
        return semd_error(SEMD_ESHAPE, "vae %s: input must be [B,%d,h,w]", what, channels);
    return SEMD_OK;
}

int semd_vae_decode(semd_vae *v, const semd_tensor *latent, semd_tensor **image)
{
    *image = NULL;
    if (!(v->parts & SEMD_VAE_DECODER)) return semd_error(SEMD_EINVAL, "vae: decoder not loaded");
    int rc = check_input("decode", latent, v->cfg.latent_channels);
    semd_tensor *h = (semd_tensor *)latent, *y = NULL;
    if (!rc && v->post_quant.w) {
        rc = semd_conv_fwd(&v->post_quant, h, &y);
        if (!rc) step(&h, y, latent);
    }
    if (!rc) rc = semd_conv_fwd(&v->dec.conv_in, h, &y);
    if (!rc) step(&h, y, latent);
    if (!rc) rc = mid_fwd(&v->dec.mid, v->cfg.norm_groups, &h, latent);
    for (int i = 0; !rc && i < v->cfg.n_levels; i++) rc = level_fwd(&v->dec.levels[i], &h, latent, 1);
    if (!rc) rc = tail(&v->dec, v->cfg.norm_groups, &h, latent);
    if (rc) {
        if (h != latent) semd_tensor_free(h);
        return rc;
    }
    *image = h;
    return SEMD_OK;
}

/* The mean: the first latent_channels channels of the moments [B, 2L, h, w]. */
static int take_mean(const semd_tensor *moments, int lat, semd_tensor **mean)
{
    const int64_t b = moments->ne[0], hw = moments->ne[2] * moments->ne[3];
    int rc = semd_new(moments->be, mean, 4, b, lat, moments->ne[2], moments->ne[3]);
    float *host = rc ? NULL : malloc((size_t)semd_tensor_numel(moments) * sizeof(float));
    if (!rc && !host) rc = semd_error(SEMD_ENOMEM, "vae: out of memory");
    if (!rc) rc = semd_tensor_get(moments, host);
    for (int64_t i = 1; !rc && i < b; i++)
        memmove(host + i * lat * hw, host + i * 2 * lat * hw, (size_t)(lat * hw) * sizeof(float));
    if (!rc) rc = semd_tensor_set(*mean, host);
    free(host);
    if (rc) semd_tensor_free(*mean), *mean = NULL;
    return rc;
}

int semd_vae_encode(semd_vae *v, const semd_tensor *image, semd_tensor **latent_mean)
{
    *latent_mean = NULL;
    if (!(v->parts & SEMD_VAE_ENCODER)) return semd_error(SEMD_EINVAL, "vae: encoder not loaded");
    int rc = check_input("encode", image, v->cfg.in_channels);
    semd_tensor *h = (semd_tensor *)image, *y = NULL;
    if (!rc) rc = semd_conv_fwd(&v->enc.conv_in, h, &y);
    if (!rc) step(&h, y, image);
    for (int i = 0; !rc && i < v->cfg.n_levels; i++) rc = level_fwd(&v->enc.levels[i], &h, image, 0);
    if (!rc) rc = mid_fwd(&v->enc.mid, v->cfg.norm_groups, &h, image);
    if (!rc) rc = tail(&v->enc, v->cfg.norm_groups, &h, image);
    if (!rc && v->quant.w) {
        rc = semd_conv_fwd(&v->quant, h, &y);
        if (!rc) step(&h, y, image);
    }
    if (!rc) rc = take_mean(h, v->cfg.latent_channels, latent_mean);
    if (h != image) semd_tensor_free(h);
    return rc;
}
