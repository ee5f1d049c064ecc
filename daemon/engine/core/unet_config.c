/* UNet2DConditionModel configuration: SD1.5 defaults and unet/config.json. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json_util.h"
#include "semd/status.h"
#include "semd/unet.h"

void semd_unet_config_sd15(semd_unet_config *c)
{
    *c = (semd_unet_config){
        .in_channels = 4, .out_channels = 4, .n_levels = 4,
        .block_out = {320, 640, 1280, 1280},
        .down_attn = {1, 1, 1, 0}, .up_attn = {0, 1, 1, 1},
        .heads = {8, 8, 8, 8}, .depth = {1, 1, 1, 1}, .up_depth = {1, 1, 1, 1},
        .layers_per_block = 2, .cross_attention_dim = 768, .norm_groups = 32, .norm_eps = 1e-5f,
        .flip_sin_to_cos = 1,
    };
}

/* A string field that must hold one accepted value (absent or null means the default). */
static int expect_string(const cJSON *root, const char *path, const char *key, const char *want)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return SEMD_OK;
    if (cJSON_IsString(it) && want && strcmp(it->valuestring, want) == 0) return SEMD_OK;
    return semd_error(SEMD_EUNSUPPORTED, "%s: %s = %s is not supported%s%s", path, key,
                      cJSON_IsString(it) ? it->valuestring : "(non-string)",
                      want ? " (only " : "", want ? want : "");
}

static int expect_false(const cJSON *root, const char *path, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it) || cJSON_IsFalse(it)) return SEMD_OK;
    return semd_error(SEMD_EUNSUPPORTED, "%s: %s = true is not supported", path, key);
}

static int expect_number(const cJSON *root, const char *path, const char *key, double want)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return SEMD_OK;
    if (cJSON_IsNumber(it) && fabs(it->valuedouble - want) < 1e-12) return SEMD_OK;
    return semd_error(SEMD_EUNSUPPORTED, "%s: %s must be %g", path, key, want);
}

/* An int or a list of n ints; absent/null leaves out[] alone and sets *given = 0. */
static int int_or_list(const cJSON *root, const char *path, const char *key, int n, int *out,
                       int *given)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *given = 0;
    if (!it || cJSON_IsNull(it)) return SEMD_OK;
    if (cJSON_IsNumber(it)) {
        for (int i = 0; i < n; i++) out[i] = it->valueint;
    } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == n) {
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(it, i);
            if (!cJSON_IsNumber(e)) return semd_error(SEMD_EFORMAT, "%s: %s[%d] must be a number", path, key, i);
            out[i] = e->valueint;
        }
    } else {
        return semd_error(SEMD_EFORMAT, "%s: %s must be a number or a list of %d", path, key, n);
    }
    for (int i = 0; i < n; i++)
        if (out[i] <= 0) return semd_error(SEMD_EFORMAT, "%s: %s must be positive", path, key);
    *given = 1;
    return SEMD_OK;
}

static int block_types(const cJSON *root, const char *path, const char *key, const char *attn_name,
                       const char *plain_name, int n, int *attn)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != n)
        return semd_error(SEMD_EFORMAT, "%s: %s must list %d block types", path, key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        if (cJSON_IsString(e) && strcmp(e->valuestring, attn_name) == 0) attn[i] = 1;
        else if (cJSON_IsString(e) && strcmp(e->valuestring, plain_name) == 0) attn[i] = 0;
        else
            return semd_error(SEMD_EUNSUPPORTED, "%s: %s[%d] = %s is not supported (%s, %s)", path,
                              key, i, cJSON_IsString(e) ? e->valuestring : "?", attn_name, plain_name);
    }
    return SEMD_OK;
}

static int block_out(const cJSON *root, const char *path, semd_unet_config *c)
{
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(root, "block_out_channels");
    int n = cJSON_IsArray(boc) ? cJSON_GetArraySize(boc) : 0;
    if (n < 1 || n > SEMD_UNET_MAX_LEVELS)
        return semd_error(SEMD_EFORMAT, "%s: block_out_channels must list 1..%d sizes", path,
                          SEMD_UNET_MAX_LEVELS);
    c->n_levels = n;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(boc, i);
        if (!cJSON_IsNumber(e) || e->valueint <= 0)
            return semd_error(SEMD_EFORMAT, "%s: block_out_channels[%d] must be positive", path, i);
        c->block_out[i] = e->valueint;
    }
    return SEMD_OK;
}

/* Features of UNet2DConditionModel this engine does not implement are named, not ignored. */
static int unsupported_features(const cJSON *r, const char *p)
{
    int rc = expect_string(r, p, "act_fn", "silu");
    if (!rc) rc = expect_string(r, p, "resnet_time_scale_shift", "default");
    if (!rc) rc = expect_string(r, p, "class_embed_type", NULL);
    if (!rc) rc = expect_string(r, p, "time_embedding_type", "positional");
    if (!rc) rc = expect_string(r, p, "mid_block_type", "UNetMidBlock2DCrossAttn");
    if (!rc) rc = expect_string(r, p, "encoder_hid_dim_type", NULL);
    if (!rc) rc = expect_string(r, p, "time_embedding_act_fn", NULL);
    if (!rc) rc = expect_string(r, p, "timestep_post_act", NULL);
    if (!rc) rc = expect_string(r, p, "attention_type", "default");
    if (!rc) rc = expect_string(r, p, "addition_embed_type", "text_time");
    if (!rc) rc = expect_false(r, p, "only_cross_attention");
    if (!rc) rc = expect_false(r, p, "dual_cross_attention");
    if (!rc) rc = expect_false(r, p, "center_input_sample");
    if (!rc) rc = expect_false(r, p, "resnet_skip_time_act");
    if (!rc) rc = expect_false(r, p, "class_embeddings_concat");
    if (!rc) rc = expect_number(r, p, "conv_in_kernel", 3);
    if (!rc) rc = expect_number(r, p, "conv_out_kernel", 3);
    if (!rc) rc = expect_number(r, p, "downsample_padding", 1);
    if (!rc) rc = expect_number(r, p, "mid_block_scale_factor", 1);
    if (!rc) rc = expect_number(r, p, "resnet_out_scale_factor", 1);
    if (!rc && cJSON_GetObjectItemCaseSensitive(r, "time_embedding_dim") &&
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "time_embedding_dim")))
        rc = semd_error(SEMD_EUNSUPPORTED, "%s: time_embedding_dim is not supported", p);
    return rc;
}

static int addition_embedding(const cJSON *r, const char *p, semd_unet_config *c)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "addition_embed_type");
    if (!t || cJSON_IsNull(t)) return SEMD_OK;
    int rc = semd_json_int(r, p, "addition_time_embed_dim", &c->addition_time_embed_dim);
    if (!rc) rc = semd_json_int(r, p, "projection_class_embeddings_input_dim", &c->addition_input_dim);
    if (!rc && (c->addition_time_embed_dim <= 0 || c->addition_input_dim <= 6 * c->addition_time_embed_dim))
        rc = semd_error(SEMD_EFORMAT, "%s: projection_class_embeddings_input_dim must exceed 6 x "
                        "addition_time_embed_dim", p);
    return rc;
}

/* diffusers: heads = num_attention_heads or attention_head_dim (which is misnamed). */
static int heads_and_depths(const cJSON *r, const char *p, semd_unet_config *c)
{
    const int n = c->n_levels;
    int given = 0, rc = 0;
    for (int i = 0; i < n; i++) c->heads[i] = 8, c->depth[i] = 1;
    rc = int_or_list(r, p, "num_attention_heads", n, c->heads, &given);
    if (!rc && !given) rc = int_or_list(r, p, "attention_head_dim", n, c->heads, &given);
    if (!rc) rc = int_or_list(r, p, "transformer_layers_per_block", n, c->depth, &given);
    for (int i = 0; i < n; i++) c->up_depth[i] = c->depth[n - 1 - i];
    if (!rc) rc = int_or_list(r, p, "reverse_transformer_layers_per_block", n, c->up_depth, &given);
    for (int i = 0; !rc && i < n; i++)
        if (c->block_out[i] % c->heads[i])
            rc = semd_error(SEMD_EFORMAT, "%s: %d heads do not divide %d channels at level %d", p,
                            c->heads[i], c->block_out[i], i);
    return rc;
}

static int numbers(const cJSON *r, const char *p, semd_unet_config *c)
{
    int rc = semd_json_int_opt(r, p, "in_channels", &c->in_channels);
    if (!rc) rc = semd_json_int_opt(r, p, "out_channels", &c->out_channels);
    if (!rc) rc = semd_json_int_opt(r, p, "layers_per_block", &c->layers_per_block);
    if (!rc) rc = semd_json_int_opt(r, p, "cross_attention_dim", &c->cross_attention_dim);
    if (!rc) rc = semd_json_int_opt(r, p, "norm_num_groups", &c->norm_groups);
    if (!rc) rc = semd_json_float_opt(r, p, "norm_eps", &c->norm_eps);
    if (!rc) rc = semd_json_float_opt(r, p, "freq_shift", &c->freq_shift);
    if (!rc) rc = semd_json_int_opt(r, p, "time_cond_proj_dim", &c->time_cond_proj_dim);
    const cJSON *flip = cJSON_GetObjectItemCaseSensitive(r, "flip_sin_to_cos");
    if (cJSON_IsBool(flip)) c->flip_sin_to_cos = cJSON_IsTrue(flip);
    const cJSON *lin = cJSON_GetObjectItemCaseSensitive(r, "use_linear_projection");
    if (cJSON_IsBool(lin)) c->linear_projection = cJSON_IsTrue(lin);
    if (!rc && (c->in_channels <= 0 || c->out_channels <= 0 || c->cross_attention_dim <= 0 ||
                c->layers_per_block <= 0 || c->layers_per_block > 4 || c->norm_groups <= 0 ||
                c->time_cond_proj_dim < 0))
        rc = semd_error(SEMD_EFORMAT, "%s: channel counts, layers_per_block (1..4), "
                        "cross_attention_dim and norm_num_groups must be positive", p);
    for (int i = 0; !rc && i < c->n_levels; i++)
        if (c->block_out[i] % c->norm_groups)
            rc = semd_error(SEMD_EFORMAT, "%s: norm_num_groups %d does not divide %d channels", p,
                            c->norm_groups, c->block_out[i]);
    return rc;
}

int semd_unet_config_load(const char *path, semd_unet_config *c)
{
    cJSON *r;
    int rc = semd_json_load(path, &r);
    if (rc) return rc;
    semd_unet_config_sd15(c);
    rc = unsupported_features(r, path);
    if (!rc && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(r, "cross_attention_dim")))
        rc = semd_error(SEMD_EUNSUPPORTED, "%s: per-block cross_attention_dim lists are not supported", path);
    if (!rc) rc = block_out(r, path, c);
    if (!rc) rc = block_types(r, path, "down_block_types", "CrossAttnDownBlock2D", "DownBlock2D",
                              c->n_levels, c->down_attn);
    if (!rc) rc = block_types(r, path, "up_block_types", "CrossAttnUpBlock2D", "UpBlock2D",
                              c->n_levels, c->up_attn);
    if (!rc) rc = numbers(r, path, c);
    if (!rc) rc = heads_and_depths(r, path, c);
    if (!rc) rc = addition_embedding(r, path, c);
    cJSON_Delete(r);
    return rc;
}
