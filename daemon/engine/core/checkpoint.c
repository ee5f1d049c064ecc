/* Checkpoints: diffusers folders and LDM single files behind one interface. */
#include "semd/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "semd/status.h"

#define LDM_SD1_TEXT "cond_stage_model.transformer."
#define LDM_SD2_TEXT "cond_stage_model.model."
#define LDM_SDXL_TEXT "conditioner.embedders."

struct semd_checkpoint {
    semd_checkpoint_layout layout;
    char *path;
    char *config_dir;        /* diffusers folder holding the configs, or NULL */
    semd_weights *single;    /* the single file, when that is the layout */
};

semd_checkpoint_layout semd_checkpoint_layout_of(const semd_checkpoint *ck) { return ck->layout; }

void semd_checkpoint_free(semd_checkpoint *ck)
{
    if (!ck) return;
    semd_weights_free(ck->single);
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

static int clip_from_folder(const semd_checkpoint *ck, semd_backend *be, semd_clip **out)
{
    char dir[4096], cfg_path[4200];
    semd_clip_config cfg;
    join(dir, sizeof dir, ck->config_dir, "text_encoder");
    int rc = semd_clip_config_load(join(cfg_path, sizeof cfg_path, dir, "config.json"), &cfg);
    if (rc) return rc;
    semd_weights *w;
    if ((rc = semd_weights_open(dir, &w))) return rc;
    rc = semd_clip_load(be, &cfg, w, "", out);
    semd_weights_free(w);
    return rc;
}

static int clip_from_single_file(const semd_checkpoint *ck, semd_backend *be, semd_clip **out)
{
    const char *prefix;
    semd_clip_config cfg;
    int rc = single_file_text_prefix(ck, &prefix);
    if (rc) return rc;
    if (ck->config_dir) {
        char p[4096];
        rc = semd_clip_config_load(join(p, sizeof p, ck->config_dir, "text_encoder/config.json"), &cfg);
    } else {
        rc = semd_clip_config_infer(ck->single, prefix, &cfg);
    }
    return rc ? rc : semd_clip_load(be, &cfg, ck->single, prefix, out);
}

int semd_checkpoint_clip(const semd_checkpoint *ck, semd_backend *be, semd_clip **out)
{
    *out = NULL;
    if (ck->layout == SEMD_LAYOUT_DIFFUSERS) return clip_from_folder(ck, be, out);
    return clip_from_single_file(ck, be, out);
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

int semd_checkpoint_unet(const semd_checkpoint *ck, semd_backend *be, semd_unet **out)
{
    *out = NULL;
    if (ck->layout != SEMD_LAYOUT_DIFFUSERS)
        return semd_error(SEMD_EUNSUPPORTED, "%s: UNets from single-file checkpoints are not "
                          "supported yet", ck->path);
    char cfg_path[4200];
    semd_unet_config cfg;
    semd_weights *w = NULL;
    int rc = component(ck, "unet", cfg_path, sizeof cfg_path, &w);
    if (!rc) rc = semd_unet_config_load(cfg_path, &cfg);
    if (!rc) rc = semd_unet_load(be, &cfg, w, "", out);
    semd_weights_free(w);
    return rc;
}

int semd_checkpoint_vae(const semd_checkpoint *ck, semd_backend *be, int parts, semd_vae **out)
{
    *out = NULL;
    if (ck->layout != SEMD_LAYOUT_DIFFUSERS)
        return semd_error(SEMD_EUNSUPPORTED, "%s: VAEs from single-file checkpoints are not "
                          "supported yet", ck->path);
    char cfg_path[4200];
    semd_vae_config cfg;
    semd_weights *w = NULL;
    int rc = component(ck, "vae", cfg_path, sizeof cfg_path, &w);
    if (!rc) rc = semd_vae_config_load(cfg_path, &cfg);
    if (!rc) rc = semd_vae_load(be, &cfg, w, "", parts, out);
    semd_weights_free(w);
    return rc;
}
