/*
 * Tensor names: LDM single files <-> diffusers (models.md section 7.3).
 *
 * Each model is described once, as the list of its blocks in both namings
 * ("input_blocks.4.1" <-> "down_blocks.1.attentions.0", ...) with the kind of
 * layers inside; a lookup walks that list in either direction. Writing the
 * layout down once, instead of a parser per direction, keeps the two
 * directions exact inverses and makes the code read like the rules table.
 */
#include "semd/name_map.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "semd/status.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* Longer than any real name; longer inputs cannot be in the map. */
#define NAME_BUF 256
/* Bounds that keep every block prefix well inside its 64-byte buffer. */
#define MAX_LAYERS_PER_BLOCK 16

static const char *const module_prefix[] = {
    [SEMD_MODULE_UNET] = "model.diffusion_model.",
    [SEMD_MODULE_VAE] = "first_stage_model.",
    [SEMD_MODULE_TEXT] = "cond_stage_model.transformer.",
};

const char *semd_module_name(semd_module module)
{
    switch (module) {
    case SEMD_MODULE_UNET: return "unet";
    case SEMD_MODULE_VAE: return "vae";
    case SEMD_MODULE_TEXT: return "text_encoder";
    }
    return "?";
}

const char *semd_module_ldm_prefix(semd_module module)
{
    if ((unsigned)module >= COUNT(module_prefix)) return NULL;
    return module_prefix[module];
}

/* ---- string helpers ---------------------------------------------------- */

/* s without `prefix`, or NULL when s does not start with it. */
static const char *after_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s && strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* What follows "seg." at the start of s: dotted names match whole segments only. */
static const char *after_segment(const char *s, const char *seg)
{
    const char *rest = after_prefix(s, seg);
    return rest && *rest == '.' ? rest + 1 : NULL;
}

/*
 * What follows "seg.<index>." at the start of s. The index must be written
 * canonically (no sign, no leading zero) so that each tensor has one name.
 */
static const char *after_indexed(const char *s, const char *seg)
{
    const char *p = after_segment(s, seg);
    if (!p || *p < '0' || *p > '9' || (p[0] == '0' && p[1] != '.')) return NULL;
    const char *start = p;
    while (*p >= '0' && *p <= '9' && p - start < 6) p++;
    return *p == '.' ? p + 1 : NULL;
}

static bool is_param(const char *leaf)
{
    return leaf && (strcmp(leaf, "weight") == 0 || strcmp(leaf, "bias") == 0);
}

/* snprintf that reports truncation as failure. */
__attribute__((format(printf, 3, 4)))
static bool print_to(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* ---- layers inside a block --------------------------------------------- */

typedef struct name_pair {
    const char *ldm, *dif;
} name_pair;

/* rest = "<layer>.weight|bias" for a layer of the table: rename the layer. */
static bool map_layer(const name_pair *t, size_t n, bool to_dif, const char *rest, char *buf,
                      size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *leaf = after_segment(rest, to_dif ? t[i].ldm : t[i].dif);
        if (is_param(leaf)) return print_to(buf, cap, "%s.%s", to_dif ? t[i].dif : t[i].ldm, leaf);
    }
    return false;
}

/* Whether rest = "<layer>.weight|bias" for a layer of the list. */
static bool is_layer(const char *const *names, size_t n, const char *rest)
{
    for (size_t i = 0; i < n; i++)
        if (is_param(after_segment(rest, names[i]))) return true;
    return false;
}

/* ResBlock (openaimodel.py) <-> ResnetBlock2D. */
static const name_pair unet_resnet[] = {
    {"in_layers.0", "norm1"},         {"in_layers.2", "conv1"},
    {"emb_layers.1", "time_emb_proj"}, {"out_layers.0", "norm2"},
    {"out_layers.3", "conv2"},        {"skip_connection", "conv_shortcut"},
};

/* The VAE ResnetBlock differs from diffusers' only in the shortcut's name. */
static const name_pair vae_resnet[] = {
    {"norm1", "norm1"}, {"conv1", "conv1"},           {"norm2", "norm2"},
    {"conv2", "conv2"}, {"nin_shortcut", "conv_shortcut"},
};

/*
 * AttnBlock <-> Attention. The current diffusers names come first so that
 * LDM -> diffusers yields them; the deprecated ones are accepted as input.
 */
static const name_pair vae_attn[] = {
    {"norm", "group_norm"}, {"q", "to_q"},   {"k", "to_k"},     {"v", "to_v"},
    {"proj_out", "to_out.0"}, {"q", "query"}, {"k", "key"},     {"v", "value"},
    {"proj_out", "proj_attn"},
};

/* SpatialTransformer and Transformer2DModel share their names. */
static bool unet_attn_known(const char *rest)
{
    static const char *const outer[] = {"norm", "proj_in", "proj_out"};
    static const char *const block[] = {
        "norm1",      "attn1.to_q", "attn1.to_k", "attn1.to_v",     "attn1.to_out.0",
        "norm2",      "attn2.to_q", "attn2.to_k", "attn2.to_v",     "attn2.to_out.0",
        "norm3",      "ff.net.0.proj", "ff.net.2",
    };
    const char *in_block = after_indexed(rest, "transformer_blocks");
    return in_block ? is_layer(block, COUNT(block), in_block) : is_layer(outer, COUNT(outer), rest);
}

/* transformers' CLIPTextModel, the same in both namings. */
static bool clip_known(const char *name)
{
    static const char *const top[] = {
        "text_model.embeddings.token_embedding",
        "text_model.embeddings.position_embedding",
        "text_model.final_layer_norm",
    };
    static const char *const layer[] = {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
        "layer_norm1",      "layer_norm2",      "mlp.fc1",          "mlp.fc2",
    };
    const char *in_layer = after_indexed(name, "text_model.encoder.layers");
    return in_layer ? is_layer(layer, COUNT(layer), in_layer) : is_layer(top, COUNT(top), name);
}

typedef enum inner_kind {
    INNER_PARAM, /* the block is a single layer: "weight" or "bias" */
    INNER_UNET_RESNET,
    INNER_UNET_ATTN,
    INNER_VAE_RESNET,
    INNER_VAE_ATTN
} inner_kind;

static bool map_inner(inner_kind kind, bool to_dif, const char *rest, char *buf, size_t cap)
{
    switch (kind) {
    case INNER_PARAM: return is_param(rest) && print_to(buf, cap, "%s", rest);
    case INNER_UNET_RESNET:
        return map_layer(unet_resnet, COUNT(unet_resnet), to_dif, rest, buf, cap);
    case INNER_UNET_ATTN: return unet_attn_known(rest) && print_to(buf, cap, "%s", rest);
    case INNER_VAE_RESNET:
        return map_layer(vae_resnet, COUNT(vae_resnet), to_dif, rest, buf, cap);
    case INNER_VAE_ATTN: return map_layer(vae_attn, COUNT(vae_attn), to_dif, rest, buf, cap);
    }
    return false;
}

/* ---- blocks ------------------------------------------------------------ */

/* One name being looked up among a module's blocks. */
typedef struct lookup {
    bool to_dif;        /* the name is an LDM name (module-relative) */
    const char *name;
    char out[NAME_BUF]; /* the mapped name, once found */
} lookup;

/* Try one block; true when the name lies in it (the lookup is then done). */
static bool visit(lookup *lk, const char *ldm, const char *dif, inner_kind kind)
{
    const char *rest = after_segment(lk->name, lk->to_dif ? ldm : dif);
    char inner[NAME_BUF];
    if (!rest || !map_inner(kind, lk->to_dif, rest, inner, sizeof inner)) return false;
    return print_to(lk->out, sizeof lk->out, "%s.%s", lk->to_dif ? dif : ldm, inner);
}

/* Whether the name starts with the LDM or diffusers segment (a cheap filter). */
static bool in_part(const lookup *lk, const char *ldm, const char *dif)
{
    return after_segment(lk->name, lk->to_dif ? ldm : dif) != NULL;
}

/* input_blocks.{(L+1)i + j + 1}.{0 resnet, 1 attention}; the downsampler closes the level. */
static bool visit_down_level(lookup *lk, const semd_name_layout *lo, int i)
{
    int L = lo->layers_per_block;
    char ldm[64], dif[64];
    for (int j = 0; j < L; j++) {
        int n = (L + 1) * i + j + 1;
        snprintf(ldm, sizeof ldm, "input_blocks.%d.0", n);
        snprintf(dif, sizeof dif, "down_blocks.%d.resnets.%d", i, j);
        if (visit(lk, ldm, dif, INNER_UNET_RESNET)) return true;
        if (!lo->down_has_attn[i]) continue;
        snprintf(ldm, sizeof ldm, "input_blocks.%d.1", n);
        snprintf(dif, sizeof dif, "down_blocks.%d.attentions.%d", i, j);
        if (visit(lk, ldm, dif, INNER_UNET_ATTN)) return true;
    }
    if (i == lo->n_levels - 1) return false; /* the deepest level keeps its resolution */
    snprintf(ldm, sizeof ldm, "input_blocks.%d.0.op", (L + 1) * (i + 1));
    snprintf(dif, sizeof dif, "down_blocks.%d.downsamplers.0.conv", i);
    return visit(lk, ldm, dif, INNER_PARAM);
}

/*
 * output_blocks.{(L+1)i + j}: up blocks have L+1 ResNets. The upsampler sits
 * in the level's last output block after the ResNet and the attention if
 * there is one, so its index is 2 with attention and 1 without.
 */
static bool visit_up_level(lookup *lk, const semd_name_layout *lo, int i)
{
    int L = lo->layers_per_block;
    bool attn = lo->up_has_attn[i];
    char ldm[64], dif[64];
    for (int j = 0; j <= L; j++) {
        int n = (L + 1) * i + j;
        snprintf(ldm, sizeof ldm, "output_blocks.%d.0", n);
        snprintf(dif, sizeof dif, "up_blocks.%d.resnets.%d", i, j);
        if (visit(lk, ldm, dif, INNER_UNET_RESNET)) return true;
        if (!attn) continue;
        snprintf(ldm, sizeof ldm, "output_blocks.%d.1", n);
        snprintf(dif, sizeof dif, "up_blocks.%d.attentions.%d", i, j);
        if (visit(lk, ldm, dif, INNER_UNET_ATTN)) return true;
    }
    if (i == lo->n_levels - 1) return false; /* the last level is at full resolution */
    snprintf(ldm, sizeof ldm, "output_blocks.%d.%d.conv", (L + 1) * i + L, attn ? 2 : 1);
    snprintf(dif, sizeof dif, "up_blocks.%d.upsamplers.0.conv", i);
    return visit(lk, ldm, dif, INNER_PARAM);
}

static bool visit_unet(lookup *lk, const semd_name_layout *lo)
{
    if (visit(lk, "input_blocks.0.0", "conv_in", INNER_PARAM) ||
        visit(lk, "time_embed.0", "time_embedding.linear_1", INNER_PARAM) ||
        visit(lk, "time_embed.2", "time_embedding.linear_2", INNER_PARAM) ||
        /* LCM-distilled UNets: single files keep the diffusers name. */
        visit(lk, "time_embedding.cond_proj", "time_embedding.cond_proj", INNER_PARAM))
        return true;
    if (lo->add_embedding && (visit(lk, "label_emb.0.0", "add_embedding.linear_1", INNER_PARAM) ||
                              visit(lk, "label_emb.0.2", "add_embedding.linear_2", INNER_PARAM)))
        return true;
    if (in_part(lk, "input_blocks", "down_blocks"))
        for (int i = 0; i < lo->n_levels; i++)
            if (visit_down_level(lk, lo, i)) return true;
    if (visit(lk, "middle_block.0", "mid_block.resnets.0", INNER_UNET_RESNET) ||
        visit(lk, "middle_block.1", "mid_block.attentions.0", INNER_UNET_ATTN) ||
        visit(lk, "middle_block.2", "mid_block.resnets.1", INNER_UNET_RESNET))
        return true;
    if (in_part(lk, "output_blocks", "up_blocks"))
        for (int i = 0; i < lo->n_levels; i++)
            if (visit_up_level(lk, lo, i)) return true;
    return visit(lk, "out.0", "conv_norm_out", INNER_PARAM) ||
           visit(lk, "out.2", "conv_out", INNER_PARAM);
}

/* `coder` is "encoder" or "decoder": both have the same middle block. */
static bool visit_vae_mid(lookup *lk, const char *coder)
{
    static const char *const part[][2] = {
        {"mid.block_1", "mid_block.resnets.0"},
        {"mid.attn_1", "mid_block.attentions.0"},
        {"mid.block_2", "mid_block.resnets.1"},
    };
    static const inner_kind kind[] = {INNER_VAE_RESNET, INNER_VAE_ATTN, INNER_VAE_RESNET};
    char ldm[64], dif[64];
    for (size_t k = 0; k < COUNT(part); k++) {
        snprintf(ldm, sizeof ldm, "%s.%s", coder, part[k][0]);
        snprintf(dif, sizeof dif, "%s.%s", coder, part[k][1]);
        if (visit(lk, ldm, dif, kind[k])) return true;
    }
    return false;
}

static bool visit_vae_down_level(lookup *lk, const semd_name_layout *lo, int i)
{
    char ldm[64], dif[64];
    for (int j = 0; j < lo->vae_layers_per_block; j++) {
        snprintf(ldm, sizeof ldm, "encoder.down.%d.block.%d", i, j);
        snprintf(dif, sizeof dif, "encoder.down_blocks.%d.resnets.%d", i, j);
        if (visit(lk, ldm, dif, INNER_VAE_RESNET)) return true;
    }
    if (i == lo->vae_levels - 1) return false;
    snprintf(ldm, sizeof ldm, "encoder.down.%d.downsample.conv", i);
    snprintf(dif, sizeof dif, "encoder.down_blocks.%d.downsamplers.0.conv", i);
    return visit(lk, ldm, dif, INNER_PARAM);
}

/* LDM numbers decoder levels by resolution (up.0 is the last, full-size one). */
static bool visit_vae_up_level(lookup *lk, const semd_name_layout *lo, int i)
{
    int level = lo->vae_levels - 1 - i;
    char ldm[64], dif[64];
    for (int j = 0; j <= lo->vae_layers_per_block; j++) {
        snprintf(ldm, sizeof ldm, "decoder.up.%d.block.%d", level, j);
        snprintf(dif, sizeof dif, "decoder.up_blocks.%d.resnets.%d", i, j);
        if (visit(lk, ldm, dif, INNER_VAE_RESNET)) return true;
    }
    if (level == 0) return false;
    snprintf(ldm, sizeof ldm, "decoder.up.%d.upsample.conv", level);
    snprintf(dif, sizeof dif, "decoder.up_blocks.%d.upsamplers.0.conv", i);
    return visit(lk, ldm, dif, INNER_PARAM);
}

static bool visit_vae(lookup *lk, const semd_name_layout *lo)
{
    static const char *const same[] = {
        "encoder.conv_in", "encoder.conv_out", "quant_conv",
        "post_quant_conv", "decoder.conv_in",  "decoder.conv_out",
    };
    for (size_t k = 0; k < COUNT(same); k++)
        if (visit(lk, same[k], same[k], INNER_PARAM)) return true;
    if (visit(lk, "encoder.norm_out", "encoder.conv_norm_out", INNER_PARAM) ||
        visit(lk, "decoder.norm_out", "decoder.conv_norm_out", INNER_PARAM) ||
        visit_vae_mid(lk, "encoder") || visit_vae_mid(lk, "decoder"))
        return true;
    for (int i = 0; i < lo->vae_levels; i++)
        if (visit_vae_down_level(lk, lo, i) || visit_vae_up_level(lk, lo, i)) return true;
    return false;
}

/* ---- public API -------------------------------------------------------- */

void semd_name_layout_sd15(semd_name_layout *out)
{
    *out = (semd_name_layout){
        .n_levels = 4,
        .layers_per_block = 2,
        .down_has_attn = {true, true, true, false},
        .up_has_attn = {false, true, true, true},
        .vae_levels = 4,
        .vae_layers_per_block = 2,
    };
}

/* 1 with attentions, 0 without, -1 for a block type with no LDM counterpart. */
static int block_attn(const char *type, const char *with_attn, const char *without)
{
    if (type && strcmp(type, with_attn) == 0) return 1;
    if (type && strcmp(type, without) == 0) return 0;
    return -1;
}

int semd_name_layout_from_unet_config(semd_name_layout *out, int n_levels, int layers_per_block,
                                      const char *const *down_block_types,
                                      const char *const *up_block_types,
                                      const char *addition_embed_type)
{
    if (!out || !down_block_types || !up_block_types)
        return semd_error(SEMD_EINVAL, "semd_name_layout_from_unet_config: NULL argument");
    if (n_levels < 1 || n_levels > SEMD_NAME_MAX_LEVELS)
        return semd_error(SEMD_EUNSUPPORTED, "UNet config: %d levels (block_out_channels); 1 to %d "
                          "are supported", n_levels, SEMD_NAME_MAX_LEVELS);
    if (layers_per_block < 1 || layers_per_block > MAX_LAYERS_PER_BLOCK)
        return semd_error(SEMD_EUNSUPPORTED, "UNet config: layers_per_block %d; 1 to %d are "
                          "supported", layers_per_block, MAX_LAYERS_PER_BLOCK);
    semd_name_layout lo = {.n_levels = n_levels, .layers_per_block = layers_per_block,
                           .vae_levels = 4, .vae_layers_per_block = 2};
    for (int i = 0; i < n_levels; i++) {
        int down = block_attn(down_block_types[i], "CrossAttnDownBlock2D", "DownBlock2D");
        int up = block_attn(up_block_types[i], "CrossAttnUpBlock2D", "UpBlock2D");
        if (down < 0 || up < 0) {
            const char *type = down < 0 ? down_block_types[i] : up_block_types[i];
            return semd_error(SEMD_EUNSUPPORTED, "UNet config: block type \"%s\" has no "
                              "single-file naming (CrossAttn{Down,Up}Block2D and {Down,Up}Block2D "
                              "have)", type ? type : "null");
        }
        lo.down_has_attn[i] = down;
        lo.up_has_attn[i] = up;
    }
    if (addition_embed_type && strcmp(addition_embed_type, "text_time") != 0)
        return semd_error(SEMD_EUNSUPPORTED, "UNet config: addition_embed_type \"%s\" (only "
                          "\"text_time\" is supported)", addition_embed_type);
    lo.add_embedding = addition_embed_type != NULL;
    *out = lo;
    return SEMD_OK;
}

static int check_layout(const semd_name_layout *lo)
{
    if (lo->n_levels < 1 || lo->n_levels > SEMD_NAME_MAX_LEVELS || lo->layers_per_block < 1 ||
        lo->layers_per_block > MAX_LAYERS_PER_BLOCK || lo->vae_levels < 1 ||
        lo->vae_levels > SEMD_NAME_MAX_LEVELS || lo->vae_layers_per_block < 1 ||
        lo->vae_layers_per_block > MAX_LAYERS_PER_BLOCK)
        return semd_error(SEMD_EINVAL, "invalid name layout (%d levels x %d, VAE %d x %d)",
                          lo->n_levels, lo->layers_per_block, lo->vae_levels,
                          lo->vae_layers_per_block);
    return SEMD_OK;
}

/* Map a module-relative name; false when it is not one of the module's. */
static bool map_module(lookup *lk, const semd_name_layout *lo, semd_module module)
{
    switch (module) {
    case SEMD_MODULE_UNET: return visit_unet(lk, lo);
    case SEMD_MODULE_VAE: return visit_vae(lk, lo);
    case SEMD_MODULE_TEXT: /* the transformers names, under a prefix */
        return clip_known(lk->name) && print_to(lk->out, sizeof lk->out, "%s", lk->name);
    }
    return false;
}

static int copy_out(char *out, size_t cap, const char *prefix, const char *name)
{
    if (!print_to(out, cap, "%s%s", prefix, name))
        return semd_error(SEMD_EINVAL, "%s%s: output buffer of %zu bytes is too small", prefix,
                          name, cap);
    return SEMD_OK;
}

int semd_ldm_to_diffusers(const semd_name_layout *layout, const char *ldm, char *out, size_t cap,
                          semd_module *which)
{
    if (!layout || !ldm || !out || !cap)
        return semd_error(SEMD_EINVAL, "semd_ldm_to_diffusers: NULL argument");
    int rc = check_layout(layout);
    if (rc) return rc;
    for (int m = 0; m < (int)COUNT(module_prefix); m++) {
        lookup lk = {.to_dif = true, .name = after_prefix(ldm, module_prefix[m])};
        if (!lk.name || !map_module(&lk, layout, (semd_module)m)) continue;
        if (which) *which = (semd_module)m;
        return copy_out(out, cap, "", lk.out);
    }
    return semd_error(SEMD_ENOTFOUND, "%s: not a known single-file tensor name (UNet, VAE or SD1 "
                      "text encoder)", ldm);
}

int semd_diffusers_to_ldm(const semd_name_layout *layout, semd_module module, const char *name,
                          char *out, size_t cap)
{
    if (!layout || !name || !out || !cap)
        return semd_error(SEMD_EINVAL, "semd_diffusers_to_ldm: NULL argument");
    if ((unsigned)module >= COUNT(module_prefix))
        return semd_error(SEMD_EINVAL, "semd_diffusers_to_ldm: unknown module %d", (int)module);
    int rc = check_layout(layout);
    if (rc) return rc;
    lookup lk = {.to_dif = false, .name = name};
    if (!map_module(&lk, layout, module))
        return semd_error(SEMD_ENOTFOUND, "%s: not a known %s tensor name", name,
                          semd_module_name(module));
    return copy_out(out, cap, module_prefix[module], lk.out);
}

bool semd_name_is_ignored(const char *name)
{
    /* LDM's DDPM buffers and SD2's unused OpenCLIP parts. */
    static const char *const exact[] = {
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "log_one_minus_alphas_cumprod",
        "logvar", "lvlb_weights", "cond_stage_model.model.logit_scale",
        "cond_stage_model.model.text_projection",
    };
    /* sqrt_alphas_cumprod, posterior_variance, ...: top-level buffers only. */
    static const char *const buffer_prefix[] = {"sqrt_", "posterior_"};
    if (!name) return false;
    for (size_t i = 0; i < COUNT(exact); i++)
        if (strcmp(name, exact[i]) == 0) return true;
    for (size_t i = 0; i < COUNT(buffer_prefix); i++)
        if (after_prefix(name, buffer_prefix[i]) && !strchr(name, '.')) return true;
    /* Non-pruned files: EMA copies named model_ema.<name without dots>, decay, num_updates. */
    if (after_prefix(name, "model_ema.")) return true;
    /* transformers' CLIP position_ids buffer: an index table, not a weight. */
    static const char suffix[] = "text_model.embeddings.position_ids";
    size_t n = strlen(name), k = sizeof suffix - 1;
    return n >= k && strcmp(name + n - k, suffix) == 0 && (n == k || name[n - k - 1] == '.');
}

bool semd_name_is_conv1x1_linear(semd_module module, const char *name)
{
    static const char *const linear[] = {"to_q", "to_k", "to_v", "to_out.0",
                                         "query", "key", "value", "proj_attn"};
    if (module != SEMD_MODULE_VAE || !name) return false;
    const char *attn = after_segment(name, "encoder.mid_block.attentions.0");
    if (!attn) attn = after_segment(name, "decoder.mid_block.attentions.0");
    if (!attn) return false;
    for (size_t i = 0; i < COUNT(linear); i++) {
        const char *leaf = after_segment(attn, linear[i]);
        if (leaf && strcmp(leaf, "weight") == 0) return true;
    }
    return false;
}
