/* CLIP text transformer: config, weight loading, forward pass. */
#include "semd/clip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "json_util.h"
#include "semd/status.h"

typedef struct clip_layer {
    semd_norm ln1, ln2;
    semd_linear q, k, v, o, fc1, fc2;
} clip_layer;

struct semd_clip {
    semd_backend *be;
    semd_clip_config cfg;
    semd_tensor *tok_emb, *pos_emb;
    semd_norm final_ln;
    clip_layer *layers;
};

void semd_clip_config_sd15(semd_clip_config *cfg)
{
    *cfg = (semd_clip_config){
        .vocab_size = 49408, .hidden_size = 768, .intermediate_size = 3072, .num_layers = 12,
        .num_heads = 12, .max_positions = 77, .act = SEMD_UNARY_QUICK_GELU,
        .layer_norm_eps = 1e-5f, .eos_token_id = 2,
    };
}

static int check_config(const semd_clip_config *c, const char *src)
{
    if (c->vocab_size <= 0 || c->hidden_size <= 0 || c->intermediate_size <= 0 ||
        c->num_layers <= 0 || c->max_positions <= 0 || c->num_heads <= 0)
        return semd_error(SEMD_EFORMAT, "%s: CLIP sizes must be positive", src);
    if (c->hidden_size % c->num_heads)
        return semd_error(SEMD_EFORMAT, "%s: num_attention_heads %d does not divide hidden_size %d",
                          src, c->num_heads, c->hidden_size);
    if (!(c->layer_norm_eps > 0))
        return semd_error(SEMD_EFORMAT, "%s: layer_norm_eps must be positive", src);
    return SEMD_OK;
}

static int parse_act(const cJSON *root, const char *path, semd_unary *act)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (!it) return SEMD_OK;
    if (cJSON_IsString(it) && strcmp(it->valuestring, "quick_gelu") == 0)
        *act = SEMD_UNARY_QUICK_GELU;
    else if (cJSON_IsString(it) && strcmp(it->valuestring, "gelu") == 0)
        *act = SEMD_UNARY_GELU;
    else
        return semd_error(SEMD_EUNSUPPORTED, "%s: hidden_act %s is not supported (quick_gelu, gelu)",
                          path, cJSON_IsString(it) ? it->valuestring : "(not a string)");
    return SEMD_OK;
}

int semd_clip_config_load(const char *path, semd_clip_config *cfg)
{
    cJSON *root;
    int rc = semd_json_load(path, &root);
    if (rc) return rc;
    semd_clip_config_sd15(cfg);
    /* Defaults are transformers' CLIPTextConfig defaults where a config omits a key. */
    cfg->hidden_size = 512;
    cfg->intermediate_size = 2048;
    cfg->num_heads = 8;
    cfg->eos_token_id = 49407;
    if (!rc) rc = semd_json_int_opt(root, path, "vocab_size", &cfg->vocab_size);
    if (!rc) rc = semd_json_int_opt(root, path, "hidden_size", &cfg->hidden_size);
    if (!rc) rc = semd_json_int_opt(root, path, "intermediate_size", &cfg->intermediate_size);
    if (!rc) rc = semd_json_int_opt(root, path, "num_hidden_layers", &cfg->num_layers);
    if (!rc) rc = semd_json_int_opt(root, path, "num_attention_heads", &cfg->num_heads);
    if (!rc) rc = semd_json_int_opt(root, path, "max_position_embeddings", &cfg->max_positions);
    if (!rc) rc = semd_json_float_opt(root, path, "layer_norm_eps", &cfg->layer_norm_eps);
    if (!rc) rc = semd_json_int_opt(root, path, "eos_token_id", &cfg->eos_token_id);
    if (!rc) rc = parse_act(root, path, &cfg->act);
    cJSON_Delete(root);
    return rc ? rc : check_config(cfg, path);
}

static int count_layers(const semd_weights *w, const char *prefix)
{
    char name[128];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.layer_norm1.weight", n);
        if (!semd_weights_find(w, prefix, name)) return n;
    }
}

int semd_clip_config_infer(const semd_weights *w, const char *prefix, semd_clip_config *cfg)
{
    const char *src = semd_weights_source(w);
    const semd_st_tensor *tok = semd_weights_find(w, prefix, "text_model.embeddings.token_embedding.weight");
    const semd_st_tensor *pos = semd_weights_find(w, prefix, "text_model.embeddings.position_embedding.weight");
    const semd_st_tensor *fc1 = semd_weights_find(w, prefix, "text_model.encoder.layers.0.mlp.fc1.weight");
    if (!tok || !pos || !fc1 || tok->ndim != 2 || pos->ndim != 2 || fc1->ndim != 2)
        return semd_error(SEMD_ENOTFOUND, "%s: no CLIP text encoder under '%s'", src, prefix);
    semd_clip_config_sd15(cfg);
    cfg->vocab_size = (int)tok->shape[0];
    cfg->hidden_size = (int)tok->shape[1];
    cfg->max_positions = (int)pos->shape[0];
    cfg->intermediate_size = (int)fc1->shape[0];
    cfg->num_layers = count_layers(w, prefix);
    if (cfg->hidden_size % 64)
        return semd_error(SEMD_EUNSUPPORTED, "%s: cannot infer the attention head count of a CLIP "
                          "text encoder %d wide (not a multiple of 64); give a diffusers folder "
                          "with text_encoder/config.json as the config", src, cfg->hidden_size);
    cfg->num_heads = cfg->hidden_size / 64;
    return check_config(cfg, src);
}

const semd_clip_config *semd_clip_config_of(const semd_clip *m) { return &m->cfg; }

static void free_layer(clip_layer *l)
{
    semd_norm_free(&l->ln1), semd_norm_free(&l->ln2);
    semd_linear_free(&l->q), semd_linear_free(&l->k), semd_linear_free(&l->v);
    semd_linear_free(&l->o), semd_linear_free(&l->fc1), semd_linear_free(&l->fc2);
}

void semd_clip_free(semd_clip *m)
{
    if (!m) return;
    if (m->layers)
        for (int i = 0; i < m->cfg.num_layers; i++) free_layer(&m->layers[i]);
    free(m->layers);
    semd_tensor_free(m->tok_emb);
    semd_tensor_free(m->pos_emb);
    semd_norm_free(&m->final_ln);
    free(m);
}

static int load_layer(const semd_loader *ld, const semd_clip_config *c, int i, clip_layer *l)
{
    const int d = c->hidden_size, f = c->intermediate_size;
    const char *base = "text_model.encoder.layers";
    int rc = semd_load_norm(ld, &l->ln1, d, "%s.%d.layer_norm1", base, i);
    if (!rc) rc = semd_load_linear(ld, &l->q, d, d, 1, "%s.%d.self_attn.q_proj", base, i);
    if (!rc) rc = semd_load_linear(ld, &l->k, d, d, 1, "%s.%d.self_attn.k_proj", base, i);
    if (!rc) rc = semd_load_linear(ld, &l->v, d, d, 1, "%s.%d.self_attn.v_proj", base, i);
    if (!rc) rc = semd_load_linear(ld, &l->o, d, d, 1, "%s.%d.self_attn.out_proj", base, i);
    if (!rc) rc = semd_load_norm(ld, &l->ln2, d, "%s.%d.layer_norm2", base, i);
    if (!rc) rc = semd_load_linear(ld, &l->fc1, f, d, 1, "%s.%d.mlp.fc1", base, i);
    if (!rc) rc = semd_load_linear(ld, &l->fc2, d, f, 1, "%s.%d.mlp.fc2", base, i);
    return rc;
}

static int load_embeddings(const semd_loader *ld, const semd_clip_config *c, semd_clip *m)
{
    int64_t tok[2] = {c->vocab_size, c->hidden_size}, pos[2] = {c->max_positions, c->hidden_size};
    int rc = semd_load_tensor(ld, &m->tok_emb, 2, tok, "text_model.embeddings.token_embedding.weight");
    if (!rc) rc = semd_load_tensor(ld, &m->pos_emb, 2, pos, "text_model.embeddings.position_embedding.weight");
    if (!rc) rc = semd_load_norm(ld, &m->final_ln, c->hidden_size, "text_model.final_layer_norm");
    return rc;
}

int semd_clip_load(semd_backend *be, const semd_clip_config *cfg, const semd_weight_view *view,
                   semd_clip **out)
{
    *out = NULL;
    int rc = check_config(cfg, semd_weights_source(view->w));
    if (rc) return rc;
    semd_clip *m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc((size_t)cfg->num_layers, sizeof *m->layers))) {
        free(m);
        return semd_error(SEMD_ENOMEM, "clip: out of memory");
    }
    m->be = be;
    m->cfg = *cfg;
    semd_loader ld = {view, SEMD_MODULE_TEXT, be};
    rc = load_embeddings(&ld, cfg, m);
    for (int i = 0; !rc && i < cfg->num_layers; i++) rc = load_layer(&ld, cfg, i, &m->layers[i]);
    if (rc) {
        semd_clip_free(m);
        return rc;
    }
    *out = m;
    return SEMD_OK;
}

/* ---- forward ---- */

typedef struct scratch {
    semd_tensor *h, *norm, *q, *k, *v, *attn, *proj, *mlp;
} scratch;

static void free_scratch(scratch *s)
{
    semd_tensor **all = (semd_tensor **)s;
    for (size_t i = 0; i < sizeof *s / sizeof(semd_tensor *); i++) semd_tensor_free(all[i]);
}

static int alloc_scratch(semd_backend *be, const semd_clip_config *c, int batch, int len,
                         scratch *s)
{
    int64_t seq[3] = {batch, len, c->hidden_size}, wide[3] = {batch, len, c->intermediate_size};
    semd_tensor **narrow[] = {&s->h, &s->norm, &s->q, &s->k, &s->v, &s->attn, &s->proj};
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof narrow / sizeof *narrow; i++)
        rc = semd_tensor_new(be, 3, seq, narrow[i]);
    if (!rc) rc = semd_tensor_new(be, 3, wide, &s->mlp);
    return rc;
}

/* h += out_proj(attention(q(ln1 h), k(ln1 h), v(ln1 h))), causal. */
static int attention_block(const semd_clip_config *c, const clip_layer *l, scratch *s)
{
    int rc = semd_op_layer_norm(s->norm, s->h, l->ln1.g, l->ln1.b, c->layer_norm_eps);
    if (!rc) rc = semd_op_linear(s->q, s->norm, l->q.w, l->q.b);
    if (!rc) rc = semd_op_linear(s->k, s->norm, l->k.w, l->k.b);
    if (!rc) rc = semd_op_linear(s->v, s->norm, l->v.w, l->v.b);
    if (!rc) rc = semd_op_attention(s->attn, s->q, s->k, s->v, c->num_heads, 1);
    if (!rc) rc = semd_op_linear(s->proj, s->attn, l->o.w, l->o.b);
    if (!rc) rc = semd_op_add(s->h, s->h, s->proj);
    return rc;
}

/* h += fc2(act(fc1(ln2 h))). */
static int mlp_block(const semd_clip_config *c, const clip_layer *l, scratch *s)
{
    int rc = semd_op_layer_norm(s->norm, s->h, l->ln2.g, l->ln2.b, c->layer_norm_eps);
    if (!rc) rc = semd_op_linear(s->mlp, s->norm, l->fc1.w, l->fc1.b);
    if (!rc) rc = semd_op_unary(s->mlp, s->mlp, c->act);
    if (!rc) rc = semd_op_linear(s->proj, s->mlp, l->fc2.w, l->fc2.b);
    if (!rc) rc = semd_op_add(s->h, s->h, s->proj);
    return rc;
}

/* The pooled position per sequence, as transformers picks it. */
static void eos_rows(const semd_clip_config *c, const int32_t *ids, int batch, int len,
                     int32_t *rows)
{
    for (int b = 0; b < batch; b++) {
        const int32_t *r = ids + (size_t)b * len;
        int32_t at = 0;
        for (int i = 1; i < len && c->eos_token_id == 2; i++)
            if (r[i] > r[at]) at = i;
        for (int i = 0; i < len && c->eos_token_id != 2; i++)
            if (r[i] == c->eos_token_id) {
                at = i;
                break;
            }
        rows[b] = at;
    }
}

static int pool(semd_clip *m, const int32_t *ids, int batch, int len, const semd_tensor *normed,
                semd_tensor **pooled)
{
    int32_t *rows = malloc((size_t)batch * sizeof *rows);
    if (!rows) return semd_error(SEMD_ENOMEM, "clip: out of memory");
    eos_rows(&m->cfg, ids, batch, len, rows);
    int64_t shape[2] = {batch, m->cfg.hidden_size};
    int rc = semd_tensor_new(m->be, 2, shape, pooled);
    if (!rc) rc = semd_op_take_rows(*pooled, normed, rows);
    free(rows);
    return rc;
}

static int run_layers(semd_clip *m, int from, int to, scratch *s)
{
    int rc = 0;
    for (int i = from; !rc && i < to; i++) {
        rc = attention_block(&m->cfg, &m->layers[i], s);
        if (!rc) rc = mlp_block(&m->cfg, &m->layers[i], s);
    }
    return rc;
}

static int final_norm(semd_clip *m, const scratch *s, semd_tensor **out)
{
    int rc = semd_tensor_new(m->be, s->h->ndim, s->h->ne, out);
    if (!rc) rc = semd_op_layer_norm(*out, s->h, m->final_ln.g, m->final_ln.b, m->cfg.layer_norm_eps);
    return rc;
}

int semd_clip_encode(semd_clip *m, const int32_t *ids, int batch, int len, int clip_skip,
                     semd_tensor **hidden, semd_tensor **pooled)
{
    const semd_clip_config *c = &m->cfg;
    *hidden = NULL;
    if (pooled) *pooled = NULL;
    if (batch <= 0 || len <= 0 || len > c->max_positions)
        return semd_error(SEMD_EINVAL, "clip: %d sequences of %d tokens (1..%d tokens allowed)",
                          batch, len, c->max_positions);
    if (clip_skip < 0 || clip_skip >= c->num_layers)
        return semd_error(SEMD_EINVAL, "clip: clip_skip %d outside 0..%d", clip_skip,
                          c->num_layers - 1);
    scratch s = {0};
    semd_tensor *last = NULL;
    int rc = alloc_scratch(m->be, c, batch, len, &s);
    if (!rc) rc = semd_op_embed(s.h, ids, m->tok_emb, m->pos_emb);
    if (!rc) rc = run_layers(m, 0, c->num_layers - clip_skip, &s);
    if (!rc) rc = final_norm(m, &s, hidden);
    if (!rc && pooled) {
        /* Pooling always reads the last layer, whatever clip_skip selected. */
        if (clip_skip) rc = run_layers(m, c->num_layers - clip_skip, c->num_layers, &s);
        if (!rc) rc = clip_skip ? final_norm(m, &s, &last) : 0;
        if (!rc) rc = pool(m, ids, batch, len, clip_skip ? last : *hidden, pooled);
    }
    semd_tensor_free(last);
    free_scratch(&s);
    if (rc) {
        semd_tensor_free(*hidden);
        *hidden = NULL;
        if (pooled) {
            semd_tensor_free(*pooled);
            *pooled = NULL;
        }
    }
    return rc;
}
