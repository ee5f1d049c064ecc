/* Weight sets: one file, a diffusers component folder, or a sharded folder. */
#include "semd/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "semd/rng.h"
#include "semd/status.h"

#define MAX_SHARDS 64

struct semd_weights {
    int random;
    uint64_t seed;
    char *source;
    size_t n_files;
    semd_st_file *files[MAX_SHARDS];
};

const char *semd_weights_source(const semd_weights *w) { return w->source; }

void semd_weights_free(semd_weights *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_files; i++) semd_st_close(w->files[i]);
    free(w->source);
    free(w);
}

static int add_file(semd_weights *w, const char *path)
{
    for (size_t i = 0; i < w->n_files; i++)
        if (strcmp(semd_st_path(w->files[i]), path) == 0) return SEMD_OK;
    if (w->n_files == MAX_SHARDS)
        return semd_error(SEMD_EUNSUPPORTED, "%s: more than %d shards", w->source, MAX_SHARDS);
    int rc = semd_st_open(path, &w->files[w->n_files]);
    if (!rc) w->n_files++;
    return rc;
}

/* Shards named by an index's "weight_map" values, relative to its folder. */
static int open_index(semd_weights *w, const char *dir, const char *index_path)
{
    cJSON *root;
    int rc = semd_json_load(index_path, &root);
    if (rc) return rc;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return semd_error(SEMD_EFORMAT, "%s: missing object \"weight_map\"", index_path);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, map) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/')) {
            rc = semd_error(SEMD_EFORMAT, "%s: weight_map entry \"%s\" must name a file in the "
                            "same folder", index_path, it->string);
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        if ((rc = add_file(w, path))) break;
    }
    cJSON_Delete(root);
    return rc;
}

static const char *const folder_files[] = {
    "model.safetensors", "diffusion_pytorch_model.safetensors",
    "model.fp16.safetensors", "diffusion_pytorch_model.fp16.safetensors",
};
static const char *const folder_indexes[] = {
    "model.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json",
    "model.safetensors.index.fp16.json", "diffusion_pytorch_model.safetensors.index.fp16.json",
};
static const char *const pickle_files[] = {
    "pytorch_model.bin", "diffusion_pytorch_model.bin", "model.ckpt",
};

static int open_folder(semd_weights *w, const char *dir)
{
    char path[4096];
    for (size_t i = 0; i < sizeof folder_files / sizeof *folder_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, folder_files[i]);
        if (semd_is_file(path)) return add_file(w, path);
    }
    for (size_t i = 0; i < sizeof folder_indexes / sizeof *folder_indexes; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, folder_indexes[i]);
        if (semd_is_file(path)) return open_index(w, dir, path);
    }
    for (size_t i = 0; i < sizeof pickle_files / sizeof *pickle_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, pickle_files[i]);
        if (semd_is_file(path))
            return semd_error(SEMD_EUNSUPPORTED, "%s: PyTorch pickle weights are not read (only "
                              "safetensors); convert the model with save_pretrained("
                              "safe_serialization=True)", path);
    }
    return semd_error(SEMD_ENOTFOUND, "%s: no model.safetensors or "
                      "diffusion_pytorch_model.safetensors (or shard index) in this folder", dir);
}

int semd_weights_open(const char *path, semd_weights **out)
{
    *out = NULL;
    if (!path) return semd_error(SEMD_EINVAL, "semd_weights_open: NULL path");
    semd_weights *w = calloc(1, sizeof *w);
    if (!w || !(w->source = strdup(path))) {
        free(w);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    int rc;
    if (semd_is_dir(path)) rc = open_folder(w, path);
    else if (semd_is_file(path)) rc = add_file(w, path);
    else rc = semd_error(SEMD_EIO, "%s: no such file or folder", path);
    if (rc) {
        semd_weights_free(w);
        return rc;
    }
    *out = w;
    return SEMD_OK;
}

int semd_weights_random(uint64_t seed, semd_weights **out)
{
    char src[64];
    snprintf(src, sizeof src, "random weights (seed %llu)", (unsigned long long)seed);
    semd_weights *w = calloc(1, sizeof *w);
    if (!w || !(w->source = strdup(src))) {
        free(w);
        return semd_error(SEMD_ENOMEM, "out of memory");
    }
    w->random = 1;
    w->seed = seed;
    *out = w;
    return SEMD_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int synthesize(const semd_weights *w, const char *full, int ndim, const int64_t *shape,
                      float **host, int64_t *ne)
{
    uint64_t numel = 1, fan_in = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return semd_error(SEMD_EINVAL, "%s: '%s' needs a full shape", w->source, full);
        ne[i] = shape[i];
        numel *= (uint64_t)shape[i];
        if (i) fan_in *= (uint64_t)shape[i];
    }
    if (!(*host = malloc(numel * sizeof(float))))
        return semd_error(SEMD_ENOMEM, "%s: no memory for '%s'", w->source, full);
    const int bias = ends_with(full, ".bias"), norm = ndim == 1 && strstr(full, "norm") != NULL;
    if (bias || norm) {
        for (uint64_t i = 0; i < numel; i++) (*host)[i] = bias ? 0.0f : 1.0f;
        return SEMD_OK;
    }
    /* Uniform in [-sqrt3 s, sqrt3 s) has std s, and is far cheaper to draw than normals. */
    semd_randu(w->seed, semd_rng_stream(full), 0, *host, numel);
    const float std = sqrtf(3.0f) / sqrtf((float)(ndim > 1 ? fan_in : numel));
    for (uint64_t i = 0; i < numel; i++) (*host)[i] *= std;
    return SEMD_OK;
}

const semd_st_tensor *semd_weights_find(const semd_weights *w, const char *prefix,
                                        const char *name)
{
    if (w->random) return NULL;
    char full[1024];
    if (snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name) >= (int)sizeof full)
        return NULL;
    for (size_t i = 0; i < w->n_files; i++) {
        const semd_st_tensor *t = semd_st_find(w->files[i], full);
        if (t) return t;
    }
    return NULL;
}

static const char *dims_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

static int dims_match(int ndim, const int64_t *want, int got_ndim, const int64_t *got)
{
    if (ndim != got_ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (want[i] >= 0 && want[i] != got[i]) return 0;
    return 1;
}

/* [o,i] <-> [o,i,1,1]: the same numbers, stored either way by different exporters. */
static int linear_conv1x1_match(int ndim, const int64_t *want, int got_ndim, const int64_t *got)
{
    if (ndim == 2 && got_ndim == 4 && got[2] == 1 && got[3] == 1)
        return dims_match(2, want, 2, got);
    if (ndim == 4 && got_ndim == 2 && (want[2] == 1 || want[2] < 0) && (want[3] == 1 || want[3] < 0))
        return dims_match(2, want, 2, got);
    return 0;
}

int semd_weights_read(const semd_weights *w, const char *prefix, const char *name, int ndim,
                      const int64_t *shape, float **host, int64_t *ne)
{
    *host = NULL;
    const char *pre = prefix ? prefix : "";
    if (ndim < 1 || ndim > SEMD_MAX_DIMS)
        return semd_error(SEMD_EINVAL, "%s: '%s%s' requested with %d dims", w->source, pre, name, ndim);
    if (w->random) {
        char full[1024];
        snprintf(full, sizeof full, "%s%s", pre, name);
        return synthesize(w, full, ndim, shape, host, ne);
    }
    const semd_st_tensor *t = semd_weights_find(w, pre, name);
    if (!t) return semd_error(SEMD_ENOTFOUND, "%s: missing tensor '%s%s'", w->source, pre, name);
    char a[128], b[128];
    if (!dims_match(ndim, shape, t->ndim, t->shape) &&
        !linear_conv1x1_match(ndim, shape, t->ndim, t->shape))
        return semd_error(SEMD_ESHAPE, "%s: tensor '%s%s' has shape %s, expected %s", w->source, pre,
                          name, dims_str(t->ndim, t->shape, a, sizeof a),
                          dims_str(ndim, shape, b, sizeof b));
    if (t->dtype != SEMD_ST_F32 && t->dtype != SEMD_ST_F16 && t->dtype != SEMD_ST_BF16)
        return semd_error(SEMD_ESHAPE, "%s: tensor '%s%s' is %s; weights must be F32, F16 or BF16",
                          w->source, pre, name, semd_st_dtype_name(t->dtype));
    for (int i = 0; i < ndim; i++) ne[i] = shape[i] >= 0 ? shape[i] : t->shape[i];
    *host = malloc((size_t)t->numel * sizeof(float) + 1);
    if (!*host) return semd_error(SEMD_ENOMEM, "%s: no memory for '%s%s'", w->source, pre, name);
    int rc = semd_st_read_f32(t, *host);
    if (rc) free(*host), *host = NULL;
    return rc;
}

int semd_weights_load(const semd_weights *w, const char *prefix, const char *name, int ndim,
                      const int64_t *shape, semd_backend *be, semd_tensor **out)
{
    float *host;
    int64_t ne[SEMD_MAX_DIMS];
    *out = NULL;
    int rc = semd_weights_read(w, prefix, name, ndim, shape, &host, ne);
    if (!rc) rc = semd_tensor_new(be, ndim, ne, out);
    if (!rc && (rc = semd_tensor_set(*out, host))) {
        semd_tensor_free(*out);
        *out = NULL;
    }
    free(host);
    return rc;
}
