/* Checkpoints: diffusers folders and LDM single files behind one interface. */
#include "semd/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "semd/lora.h"
#include "semd/status.h"

#define LDM_SD1_TEXT "cond_stage_model.transformer."
#define LDM_SD2_TEXT "cond_stage_model.model."
#define LDM_SDXL_TEXT "conditioner.embedders."

struct semd_checkpoint {
    semd_checkpoint_layout layout;
    char *path;
    char *config_dir;        /* diffusers folder holding the configs, or NULL */
    semd_weights *single;    /* the single file, or the random weights */
    int lcm;                 /* random layout: LCM-distilled UNet */
    semd_lora *loras[SEMD_CHECKPOINT_MAX_LORAS];
    int n_loras;
};

int semd_checkpoint_add_lora(semd_checkpoint *ck, const char *path, float multiplier)
{
    if (ck->n_loras == SEMD_CHECKPOINT_MAX_LORAS)
        return semd_error(SEMD_EINVAL, "%s: at most %d LoRAs", path, SEMD_CHECKPOINT_MAX_LORAS);
    int rc = semd_lora_open(path, multiplier, &ck->loras[ck->n_loras]);
    if (!rc) ck->n_loras++;
    return rc;
}

int semd_checkpoint_check_loras(const semd_checkpoint *ck)
{
    static const semd_module targets[] = {SEMD_MODULE_UNET, SEMD_MODULE_TEXT};
    int rc = 0;
    for (int i = 0; !rc && i < ck->n_loras; i++) rc = semd_lora_check_all_used(ck->loras[i], targets, 2);
    return rc;
}

semd_checkpoint_layout semd_checkpoint_layout_of(const semd_checkpoint *ck) { return ck->layout; }

void semd_checkpoint_free(semd_checkpoint *ck)
{
    if (!ck) return;
    semd_weights_free(ck->single);
    for (int i = 0; i < ck->n_loras; i++) semd_lora_free(ck->loras[i]);
    free(ck->path);
    free(ck->config_dir);
    free(ck);
}

static const char *join(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static int check_diffusers_folder(const char *dir)
{
    char p[4096];
    static const char *const parts[] = {"model_index.json", "text_encoder", "unet", "vae"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (semd_is_file(join(p, sizeof p, dir, parts[i])) || semd_is_dir(join(p, sizeof p, dir, parts[i])))
            return SEMD_OK;
    return semd_error(SEMD_EFORMAT, "%s: not a diffusers model folder (no model_index.json, "
                      "text_encoder/, unet/ or vae/)", dir);
}

int semd_checkpoint_open(const char *path, const char *config_dir, semd_checkpoint **out)
{
    *out = NULL;
    if (!path) return semd_error(SEMD_EINVAL, "semd_checkpoint_open: NULL path");
    semd_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = strdup(path)) || (config_dir && !(ck->config_dir = strdup(config_dir)))) {
        semd_checkpoint_free(ck);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    int rc;
    if (semd_is_dir(path)) {
        ck->layout = SEMD_LAYOUT_DIFFUSERS;
        rc = check_diffusers_folder(path);
        if (!rc && !ck->config_dir && !(ck->config_dir = strdup(path)))
            rc = semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    } else {
        ck->layout = SEMD_LAYOUT_SINGLE_FILE;
        rc = semd_weights_open(path, &ck->single);
        if (!rc && config_dir) rc = check_diffusers_folder(config_dir);
    }
    if (rc) {
        semd_checkpoint_free(ck);
        return rc;
    }
    *out = ck;
    return SEMD_OK;
}

int semd_checkpoint_open_random(const char *arch, uint64_t seed, semd_checkpoint **out)
{
    *out = NULL;
    if (!arch || (strcmp(arch, "sd15") != 0 && strcmp(arch, "lcm-sd15") != 0))
        return semd_error(SEMD_EINVAL, "unknown architecture '%s' for random weights (sd15, lcm-sd15)",
                          arch ? arch : "(null)");
    semd_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = strdup(arch))) {
        free(ck);
        return semd_error(SEMD_ENOMEM, "out of memory");
    }
    ck->layout = SEMD_LAYOUT_RANDOM;
    ck->lcm = strcmp(arch, "lcm-sd15") == 0;
    int rc = semd_weights_random(seed, &ck->single);
    if (rc) {
        semd_checkpoint_free(ck);
        return rc;
    }
    *out = ck;
    return SEMD_OK;
}

int semd_checkpoint_tokenizer(const semd_checkpoint *ck, semd_tokenizer **out)
{
    char dir[4096];
    if (ck->config_dir) {
        join(dir, sizeof dir, ck->config_dir, "tokenizer");
        if (semd_is_dir(dir)) return semd_tokenizer_load_dir(dir, out);
        if (ck->layout == SEMD_LAYOUT_DIFFUSERS)
            return semd_error(SEMD_ENOTFOUND, "%s: no tokenizer/ folder", ck->config_dir);
    }
    return semd_tokenizer_load_default(out);
}

/* Which text encoder a single file holds; only SD1.x's is implemented so far. */
static int single_file_text_prefix(const semd_checkpoint *ck, const char **prefix)
{
    const semd_weights *w = ck->single;
    if (semd_weights_find(w, LDM_SD1_TEXT, "text_model.embeddings.token_embedding.weight")) {
        *prefix = LDM_SD1_TEXT;
        return SEMD_OK;
    }
    if (semd_weights_find(w, LDM_SD2_TEXT, "token_embedding.weight"))
        return semd_error(SEMD_EUNSUPPORTED, "%s: SD2.x OpenCLIP text encoders are not supported "
                          "yet", ck->path);
    if (semd_weights_find(w, LDM_SDXL_TEXT, "0.transformer.text_model.embeddings.token_embedding.weight"))
        return semd_error(SEMD_EUNSUPPORTED, "%s: SDXL text encoders are not supported yet", ck->path);
    return semd_error(SEMD_ENOTFOUND, "%s: no text encoder tensors (expected names under '%s')",
                      ck->path, LDM_SD1_TEXT);
}

/* A diffusers component folder: <config_dir>/<name>/config.json and its weights. */
static int component(const semd_checkpoint *ck, const char *name, char *cfg_path, size_t cap,
                     semd_weights **w)
{
    char dir[4096];
    join(dir, sizeof dir, ck->config_dir, name);
    if (!semd_is_dir(dir)) return semd_error(SEMD_ENOTFOUND, "%s: no %s/ folder", ck->config_dir, name);
    join(cfg_path, cap, dir, "config.json");
    return semd_weights_open(dir, w);
}

/* A module's config.json from the configs folder, when there is one. */
static int config_path(const semd_checkpoint *ck, const char *module, char *out, size_t cap)
{
    if (!ck->config_dir) return 0;
    snprintf(out, cap, "%s/%s/config.json", ck->config_dir, module);
    return 1;
}

static int clip_from_folder(const semd_checkpoint *ck, semd_backend *be, semd_clip **out)
{
    char cfg_path[4200];
    semd_clip_config cfg;
    semd_weights *w = NULL;
    int rc = component(ck, "text_encoder", cfg_path, sizeof cfg_path, &w);
    if (!rc) rc = semd_clip_config_load(cfg_path, &cfg);
    semd_weight_view view = {.w = w, .prefix = "", .loras = ck->loras, .n_loras = ck->n_loras};
    if (!rc) rc = semd_clip_load(be, &cfg, &view, out);
    semd_weights_free(w);
    return rc;
}

static int clip_from_single_file(const semd_checkpoint *ck, semd_backend *be, semd_clip **out)
{
    const char *prefix;
    char p[4200];
    semd_clip_config cfg;
    int rc = single_file_text_prefix(ck, &prefix);
    if (rc) return rc;
    rc = config_path(ck, "text_encoder", p, sizeof p) ? semd_clip_config_load(p, &cfg)
                                                      : semd_clip_config_infer(ck->single, prefix, &cfg);
    semd_weight_view view = {.w = ck->single, .prefix = prefix, .loras = ck->loras, .n_loras = ck->n_loras};
    return rc ? rc : semd_clip_load(be, &cfg, &view, out);
}

int semd_checkpoint_clip(const semd_checkpoint *ck, semd_backend *be, semd_clip **out)
{
    *out = NULL;
    if (ck->layout == SEMD_LAYOUT_RANDOM) {
        semd_clip_config cfg;
        semd_clip_config_sd15(&cfg);
        semd_weight_view view = {.w = ck->single, .prefix = "", .loras = ck->loras, .n_loras = ck->n_loras};
        return semd_clip_load(be, &cfg, &view, out);
    }
    if (ck->layout == SEMD_LAYOUT_DIFFUSERS) return clip_from_folder(ck, be, out);
    return clip_from_single_file(ck, be, out);
}

/* ---- UNet ---- */

#define LDM_UNET "model.diffusion_model."

/* A single file without configs: SD1.x is recognised from its tensors; others need --config. */
static int infer_unet_config(const semd_checkpoint *ck, semd_unet_config *cfg)
{
    const semd_weights *w = ck->single;
    const semd_st_tensor *in = semd_weights_find(w, LDM_UNET, "input_blocks.0.0.weight");
    const semd_st_tensor *k = semd_weights_find(w, LDM_UNET, "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
    const semd_st_tensor *cond = semd_weights_find(w, LDM_UNET, "time_embedding.cond_proj.weight");
    if (!in) return semd_error(SEMD_ENOTFOUND, "%s: no UNet tensors (expected names under '%s')",
                               ck->path, LDM_UNET);
    if (semd_weights_find(w, LDM_UNET, "label_emb.0.0.weight") || !k || k->ndim != 2 || k->shape[1] != 768)
        return semd_error(SEMD_EUNSUPPORTED, "%s: only SD1.x UNets are recognised without a config; "
                          "give a diffusers folder with the model's configs as the config", ck->path);
    semd_unet_config_sd15(cfg);
    cfg->in_channels = in->ndim == 4 ? (int)in->shape[1] : 4;
    if (cond && cond->ndim == 2) cfg->time_cond_proj_dim = (int)cond->shape[1];
    return SEMD_OK;
}

/* The single-file naming of a UNet with this config. */
static void unet_layout(const semd_unet_config *c, semd_name_layout *l)
{
    semd_name_layout_sd15(l);
    l->n_levels = c->n_levels;
    l->layers_per_block = c->layers_per_block;
    for (int i = 0; i < c->n_levels; i++) {
        l->down_has_attn[i] = c->down_attn[i];
        l->up_has_attn[i] = c->up_attn[i];
    }
    l->add_embedding = c->addition_time_embed_dim > 0;
}

int semd_checkpoint_unet(const semd_checkpoint *ck, semd_backend *be, semd_unet **out)
{
    *out = NULL;
    char cfg_path[4200];
    semd_unet_config cfg;
    semd_weights *w = NULL;
    semd_name_layout layout;
    semd_weight_view view = {.prefix = ""};
    int rc;
    if (ck->layout == SEMD_LAYOUT_RANDOM) {
        semd_unet_config_sd15(&cfg);
        cfg.time_cond_proj_dim = ck->lcm ? 256 : 0;
        view.w = ck->single;
        rc = 0;
    } else if (ck->layout == SEMD_LAYOUT_DIFFUSERS) {
        rc = component(ck, "unet", cfg_path, sizeof cfg_path, &w);
        if (!rc) rc = semd_unet_config_load(cfg_path, &cfg);
        view.w = w;
    } else {
        rc = config_path(ck, "unet", cfg_path, sizeof cfg_path) ? semd_unet_config_load(cfg_path, &cfg)
                                                                : infer_unet_config(ck, &cfg);
        view.w = ck->single;
        view.ldm_names = 1;
    }
    if (!rc) {
        unet_layout(&cfg, &layout);
        view.layout = &layout;
        view.loras = ck->loras;
        view.n_loras = ck->n_loras;
        rc = semd_unet_load(be, &cfg, &view, out);
    }
    semd_weights_free(w);
    return rc;
}

/* ---- VAE ---- */

int semd_checkpoint_vae(const semd_checkpoint *ck, semd_backend *be, int parts, semd_vae **out)
{
    *out = NULL;
    char cfg_path[4200];
    semd_vae_config cfg;
    semd_weights *w = NULL;
    semd_name_layout layout;
    semd_weight_view view = {.prefix = ""};
    int rc;
    if (ck->layout == SEMD_LAYOUT_RANDOM) {
        semd_vae_config_sd15(&cfg);
        view.w = ck->single;
        rc = 0;
    } else if (ck->layout == SEMD_LAYOUT_DIFFUSERS) {
        rc = component(ck, "vae", cfg_path, sizeof cfg_path, &w);
        if (!rc) rc = semd_vae_config_load(cfg_path, &cfg);
        view.w = w;
    } else {
        rc = config_path(ck, "vae", cfg_path, sizeof cfg_path) ? semd_vae_config_load(cfg_path, &cfg)
                                                               : (semd_vae_config_sd15(&cfg), 0);
        semd_name_layout_sd15(&layout);
        layout.vae_levels = cfg.n_levels;
        layout.vae_layers_per_block = cfg.layers_per_block;
        view.w = ck->single;
        view.layout = &layout;
        view.ldm_names = 1;
    }
    if (!rc) rc = semd_vae_load(be, &cfg, &view, parts, out);
    semd_weights_free(w);
    return rc;
}

/* ---- scheduler ---- */

int semd_checkpoint_scheduler(const semd_checkpoint *ck, semd_lcm_scheduler **out)
{
    *out = NULL;
    char p[4200];
    semd_lcm_config cfg;
    int rc = 0;
    if (config_path(ck, "scheduler", p, sizeof p)) {
        snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", ck->config_dir);
        if (semd_is_file(p)) rc = semd_lcm_config_load(p, &cfg);
        else semd_lcm_config_defaults(&cfg);
    } else {
        semd_lcm_config_defaults(&cfg);
    }
    return rc ? rc : semd_lcm_scheduler_new(&cfg, out);
}
