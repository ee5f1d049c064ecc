/*
 * LoRA files: parsing the three key formats and merging deltas into weights
 * (models.md section 8).
 *
 * Opening classifies every tensor name into (entry key, part): the entry key is
 * the module as the file spells it ("lora_unet_down_blocks_0_..." for kohya,
 * "unet.down_blocks.0...." for PEFT and the old attention-processor format,
 * whose names are rewritten to the PEFT spelling), the part is down, up or
 * alpha. Entries live in a hash table by key. Applying builds the keys the
 * tensor being loaded would have in each spelling and looks them up, so a key
 * matches exactly one tensor by construction and nothing is guessed from
 * underscores. The tensors stay in the mapped file until a weight needs them.
 */
#include "semd/lora.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semd/safetensors.h"
#include "semd/status.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* Longer than any real key; longer keys are refused at open, so a longer
 * tensor name cannot match anything. */
#define KEY_MAX 512
/* How many unused keys check_all_used names before "...". */
#define MAX_REPORTED 5
#define METADATA_KEY "lora_adapter_metadata"

typedef enum entry_kind { KIND_KOHYA, KIND_PEFT, KIND_ATTNPROC } entry_kind;
typedef enum entry_part { PART_DOWN, PART_UP, PART_ALPHA } entry_part;

typedef struct lora_entry {
    char *key;
    semd_module module;
    entry_kind kind;
    const semd_st_tensor *down, *up, *alpha; /* inside the mapping */
    int rank;
    float scale; /* multiplier * alpha / rank */
    bool used;
} lora_entry;

struct semd_lora {
    char *path;
    float multiplier;
    semd_st_file *file;
    lora_entry *entries;
    size_t n_entries;
    size_t *slots;   /* open addressing: entry index + 1, 0 = empty */
    size_t n_slots;  /* a power of two, more than twice the entries */
    bool kohya_unet; /* whether LDM spellings of UNet names are worth building */
};

/* ---- small helpers ------------------------------------------------------ */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "a.b.c" -> "a_b_c" in place: how kohya spells module paths. */
static void dots_to_underscores(char *s)
{
    for (; *s; s++)
        if (*s == '.') *s = '_';
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
}

/* FNV-1a: keys are short ASCII strings. */
static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

/* The slot holding `key`, or the empty slot where it would go. */
static size_t *find_slot(const semd_lora *l, const char *key)
{
    size_t mask = l->n_slots - 1;
    for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
        size_t *slot = &l->slots[i];
        if (!*slot || strcmp(l->entries[*slot - 1].key, key) == 0) return slot;
    }
}

static lora_entry *find_entry(const semd_lora *l, const char *key)
{
    size_t *slot = find_slot(l, key);
    return *slot ? &l->entries[*slot - 1] : NULL;
}

/* A tensor of the entry, by its name in the file, for messages. */
static const char *entry_name(const lora_entry *e)
{
    if (e->down) return e->down->name;
    if (e->up) return e->up->name;
    return e->alpha ? e->alpha->name : e->key;
}

/* ---- classifying tensor names ------------------------------------------ */

typedef struct key_rule {
    const char *prefix, *suffix;
    entry_kind kind;
    semd_module module;
    entry_part part;
} key_rule;

/* The entry key is the name less the suffix (prefix kept). */
static const key_rule key_rules[] = {
    {"lora_unet_", ".lora_down.weight", KIND_KOHYA, SEMD_MODULE_UNET, PART_DOWN},
    {"lora_unet_", ".lora_up.weight", KIND_KOHYA, SEMD_MODULE_UNET, PART_UP},
    {"lora_unet_", ".alpha", KIND_KOHYA, SEMD_MODULE_UNET, PART_ALPHA},
    {"lora_te_", ".lora_down.weight", KIND_KOHYA, SEMD_MODULE_TEXT, PART_DOWN},
    {"lora_te_", ".lora_up.weight", KIND_KOHYA, SEMD_MODULE_TEXT, PART_UP},
    {"lora_te_", ".alpha", KIND_KOHYA, SEMD_MODULE_TEXT, PART_ALPHA},
    {"unet.", ".lora_A.weight", KIND_PEFT, SEMD_MODULE_UNET, PART_DOWN},
    {"unet.", ".lora_B.weight", KIND_PEFT, SEMD_MODULE_UNET, PART_UP},
    {"text_encoder.", ".lora_A.weight", KIND_PEFT, SEMD_MODULE_TEXT, PART_DOWN},
    {"text_encoder.", ".lora_B.weight", KIND_PEFT, SEMD_MODULE_TEXT, PART_UP},
};

typedef struct parsed_key {
    char key[KEY_MAX];
    entry_kind kind;
    semd_module module;
    entry_part part;
} parsed_key;

/* Old diffusers attention processors: "unet.<attn>.processor.to_q_lora.down.weight"
 * -> "unet.<attn>.to_q" (to_out_lora -> to_out.0), the key PEFT gives the layer. */
static bool parse_attnproc(const char *name, parsed_key *out)
{
    static const char *const projs[][2] = {
        {"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"out", "to_out.0"}};
    size_t len = strlen(name);
    bool down = ends_with(name, len, "_lora.down.weight");
    if (!starts_with(name, "unet.") || (!down && !ends_with(name, len, "_lora.up.weight")))
        return false;
    const char *proc = strstr(name, ".processor.to_");
    if (!proc) return false;
    const char *proj = proc + strlen(".processor.to_");
    for (size_t i = 0; i < COUNT(projs); i++) {
        size_t n = strlen(projs[i][0]);
        if (strncmp(proj, projs[i][0], n) != 0 ||
            strcmp(proj + n, down ? "_lora.down.weight" : "_lora.up.weight"))
            continue;
        int w =
            snprintf(out->key, sizeof out->key, "%.*s.%s", (int)(proc - name), name, projs[i][1]);
        if (w < 0 || (size_t)w >= sizeof out->key) return false;
        out->kind = KIND_ATTNPROC;
        out->module = SEMD_MODULE_UNET;
        out->part = down ? PART_DOWN : PART_UP;
        return true;
    }
    return false;
}

static int parse_key(const char *path, const char *name, parsed_key *out)
{
    size_t len = strlen(name);
    if (len >= KEY_MAX)
        return semd_error(SEMD_EFORMAT, "%s: tensor name too long: %.80s...", path, name);
    for (size_t i = 0; i < COUNT(key_rules); i++) {
        const key_rule *r = &key_rules[i];
        size_t plen = strlen(r->prefix), slen = strlen(r->suffix);
        if (!starts_with(name, r->prefix) || !ends_with(name, len, r->suffix) || len <= plen + slen)
            continue;
        *out = (parsed_key){.kind = r->kind, .module = r->module, .part = r->part};
        memcpy(out->key, name, len - slen); /* zero-filled above: terminated */
        return SEMD_OK;
    }
    if (parse_attnproc(name, out)) return SEMD_OK;
    if (starts_with(name, "lora_te1_") || starts_with(name, "lora_te2_"))
        return semd_error(SEMD_EUNSUPPORTED,
                          "%s: \"%s\": SDXL text-encoder LoRA keys (lora_te1_/lora_te2_) "
                          "are not supported",
                          path, name);
    return semd_error(SEMD_EUNSUPPORTED,
                      "%s: \"%s\" is not a LoRA weight of a supported format (kohya "
                      "lora_down/lora_up/alpha, PEFT lora_A/lora_B, attention-processor to_*_lora "
                      "down/up; LyCORIS and DoRA are not supported)",
                      path, name);
}

/* ---- building the entry table ------------------------------------------ */

static int add_part(semd_lora *l, const semd_st_tensor *t, const parsed_key *pk)
{
    size_t *slot = find_slot(l, pk->key);
    if (!*slot) {
        lora_entry *e = &l->entries[l->n_entries];
        *e = (lora_entry){.key = strdup(pk->key), .module = pk->module, .kind = pk->kind};
        if (!e->key) return semd_error(SEMD_ENOMEM, "%s: out of memory", l->path);
        *slot = ++l->n_entries;
    }
    lora_entry *e = &l->entries[*slot - 1];
    const semd_st_tensor **dst = pk->part == PART_DOWN ? &e->down
                                 : pk->part == PART_UP ? &e->up
                                                       : &e->alpha;
    if (*dst || e->kind != pk->kind)
        return semd_error(SEMD_EFORMAT,
                          "%s: \"%s\" and \"%s\" are the same LoRA weight in two formats", l->path,
                          *dst ? (*dst)->name : entry_name(e), t->name);
    *dst = t;
    return SEMD_OK;
}

static int collect_entries(semd_lora *l)
{
    size_t n = semd_st_count(l->file);
    if (n == 0) return semd_error(SEMD_EFORMAT, "%s: holds no tensors, not a LoRA", l->path);
    l->n_slots = 16;
    while (l->n_slots < 2 * n + 1) l->n_slots *= 2;
    l->entries = calloc(n, sizeof *l->entries);
    l->slots = calloc(l->n_slots, sizeof *l->slots);
    if (!l->entries || !l->slots) return semd_error(SEMD_ENOMEM, "%s: out of memory", l->path);
    for (size_t i = 0; i < n; i++) {
        const semd_st_tensor *t = semd_st_at(l->file, i);
        parsed_key pk;
        int rc = parse_key(l->path, t->name, &pk);
        if (!rc) rc = add_part(l, t, &pk);
        if (rc) return rc;
        if (pk.kind == KIND_KOHYA && pk.module == SEMD_MODULE_UNET) l->kohya_unet = true;
    }
    return SEMD_OK;
}

static bool is_float(semd_st_dtype dt)
{
    return dt == SEMD_ST_F32 || dt == SEMD_ST_F16 || dt == SEMD_ST_BF16 || dt == SEMD_ST_F64;
}

static int check_factor(const semd_lora *l, const semd_st_tensor *t, bool up)
{
    char s[128];
    format_shape(s, sizeof s, t->ndim, t->shape);
    if (!is_float(t->dtype))
        return semd_error(SEMD_ESHAPE, "%s: %s has dtype %s, not a float type", l->path, t->name,
                          semd_st_dtype_name(t->dtype));
    if (t->ndim != 2 && t->ndim != 4)
        return semd_error(SEMD_ESHAPE, "%s: %s has shape [%s], not 2-D or 4-D", l->path, t->name,
                          s);
    if (t->numel == 0)
        return semd_error(SEMD_ESHAPE, "%s: %s is empty ([%s])", l->path, t->name, s);
    if (up && t->ndim == 4 && (t->shape[2] != 1 || t->shape[3] != 1))
        return semd_error(SEMD_EUNSUPPORTED,
                          "%s: %s has shape [%s]: an up weight with a kernel "
                          "(LoCon with lora_mid) is not supported",
                          l->path, t->name, s);
    return SEMD_OK;
}

static int check_alpha(const semd_lora *l, const lora_entry *e)
{
    const semd_st_tensor *t = e->alpha;
    char s[128];
    format_shape(s, sizeof s, t->ndim, t->shape);
    if (t->numel != 1 || !is_float(t->dtype))
        return semd_error(SEMD_ESHAPE,
                          "%s: %s is not a scalar (shape [%s], %s): an alpha is one "
                          "float",
                          l->path, t->name, s, semd_st_dtype_name(t->dtype));
    float a;
    int rc = semd_st_read_f32(t, &a);
    if (rc) return rc;
    if (!isfinite(a)) return semd_error(SEMD_EFORMAT, "%s: %s is %g", l->path, t->name, (double)a);
    return SEMD_OK;
}

/* Both factors present, 2-D or 4-D, ranks equal; the alpha a float scalar. */
static int check_entry(const semd_lora *l, lora_entry *e)
{
    if (!e->down || !e->up)
        return semd_error(SEMD_EFORMAT, "%s: %s has no %s weight", l->path, entry_name(e),
                          e->down ? "up" : "down");
    int rc = check_factor(l, e->down, false);
    if (!rc) rc = check_factor(l, e->up, true);
    if (!rc && e->alpha) rc = check_alpha(l, e);
    if (rc) return rc;
    if (e->down->shape[0] != e->up->shape[1] || e->down->shape[0] > INT32_MAX)
        return semd_error(SEMD_ESHAPE, "%s: rank mismatch: %s has rank %lld, %s has %lld", l->path,
                          e->down->name, (long long)e->down->shape[0], e->up->name,
                          (long long)e->up->shape[1]);
    e->rank = (int)e->down->shape[0];
    return SEMD_OK;
}

/* ---- alphas ------------------------------------------------------------- */

/* A field of a component's LoraConfig in the adapter metadata: nested
 * {"unet": {...}}, prefixed "unet.<field>" (diffusers >= 0.34) or unprefixed
 * (one model's save_lora_adapter). */
static const cJSON *config_field(const cJSON *root, const char *comp, const char *field)
{
    const cJSON *nested = cJSON_GetObjectItemCaseSensitive(root, comp);
    const cJSON *v =
        cJSON_IsObject(nested) ? cJSON_GetObjectItemCaseSensitive(nested, field) : NULL;
    char key[96];
    snprintf(key, sizeof key, "%s.%s", comp, field);
    if (!v) v = cJSON_GetObjectItemCaseSensitive(root, key);
    return v ? v : cJSON_GetObjectItemCaseSensitive(root, field);
}

/* PEFT matches pattern keys as regular expressions against a module-name
 * suffix; plain names (all real exports) are matched literally here. */
static bool is_literal_pattern(const char *k)
{
    for (; *k; k++)
        if (!(*k == '_' || *k == '.' || *k == '-' || (*k >= '0' && *k <= '9') ||
              (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z')))
            return false;
    return true;
}

static bool suffix_matches(const char *module_path, const char *pattern)
{
    size_t n = strlen(module_path), p = strlen(pattern);
    return p <= n && strcmp(module_path + n - p, pattern) == 0 &&
           (p == n || module_path[n - p - 1] == '.');
}

/* The first key of the pattern object `field` matching `module_path`: 1 and
 * *value, 0 when none, <0 on a malformed or unsupported pattern. */
static int pattern_value(const semd_lora *l, const cJSON *root, const char *comp, const char *field,
                         const char *module_path, double *value)
{
    const cJSON *pat = config_field(root, comp, field), *item;
    if (!pat || cJSON_IsNull(pat)) return 0;
    if (!cJSON_IsObject(pat))
        return semd_error(SEMD_EFORMAT, "%s: " METADATA_KEY ": %s.%s is not an object", l->path,
                          comp, field);
    cJSON_ArrayForEach(item, pat) {
        if (!is_literal_pattern(item->string))
            return semd_error(SEMD_EUNSUPPORTED,
                              "%s: " METADATA_KEY ": %s.%s key \"%s\" is a regular "
                              "expression, only module names are supported",
                              l->path, comp, field, item->string);
        if (!suffix_matches(module_path, item->string)) continue;
        if (!cJSON_IsNumber(item))
            return semd_error(SEMD_EFORMAT, "%s: " METADATA_KEY ": %s.%s[\"%s\"] is not a number",
                              l->path, comp, field, item->string);
        *value = item->valuedouble;
        return 1;
    }
    return 0;
}

/* A per-module setting: its pattern entry, else the component's `field`,
 * else `dflt`. */
static int config_value(const semd_lora *l, const cJSON *root, const char *comp,
                        const char *pattern, const char *field, const char *module_path,
                        double dflt, double *out)
{
    int rc = pattern_value(l, root, comp, pattern, module_path, out);
    if (rc) return rc < 0 ? rc : SEMD_OK;
    const cJSON *v = config_field(root, comp, field);
    if (v && !cJSON_IsNull(v) && !cJSON_IsNumber(v))
        return semd_error(SEMD_EFORMAT, "%s: " METADATA_KEY ": %s.%s is not a number", l->path,
                          comp, field);
    *out = cJSON_IsNumber(v) ? v->valuedouble : dflt;
    return SEMD_OK;
}

static int refuse_variant(const semd_lora *l, const cJSON *root, const char *comp, const char *flag)
{
    if (cJSON_IsTrue(config_field(root, comp, flag)))
        return semd_error(SEMD_EUNSUPPORTED, "%s: " METADATA_KEY ": %s.%s is true (not supported)",
                          l->path, comp, flag);
    return SEMD_OK;
}

/* A PEFT entry's alpha from the adapter metadata; its rank must be the one
 * the metadata declares (PEFT itself would refuse the file otherwise). */
static int peft_alpha(const semd_lora *l, const cJSON *root, const lora_entry *e, double *alpha)
{
    const char *comp = semd_module_name(e->module);
    const char *module_path = e->key + strlen(comp) + 1;
    double r;
    int rc = refuse_variant(l, root, comp, "use_dora");
    if (!rc) rc = refuse_variant(l, root, comp, "use_rslora");
    if (!rc) rc = config_value(l, root, comp, "rank_pattern", "r", module_path, e->rank, &r);
    if (!rc && r != e->rank)
        return semd_error(SEMD_EFORMAT, "%s: %s has rank %d, " METADATA_KEY " says %g", l->path,
                          entry_name(e), e->rank, r);
    if (!rc) rc = config_value(l, root, comp, "alpha_pattern", "lora_alpha", module_path, e->rank,
                               alpha);
    if (!rc && !isfinite(*alpha))
        return semd_error(SEMD_EFORMAT, "%s: " METADATA_KEY ": alpha of %s is not finite", l->path,
                          entry_name(e));
    return rc;
}

static int entry_alpha(const semd_lora *l, const cJSON *root, const lora_entry *e, double *alpha)
{
    if (e->kind == KIND_PEFT && root) return peft_alpha(l, root, e, alpha);
    float a = (float)e->rank;
    int rc = e->alpha ? semd_st_read_f32(e->alpha, &a) : SEMD_OK;
    *alpha = a;
    return rc;
}

static int parse_metadata(const semd_lora *l, cJSON **root)
{
    const char *meta = semd_st_metadata(l->file, METADATA_KEY);
    *root = NULL;
    if (!meta) return SEMD_OK;
    *root = cJSON_Parse(meta);
    if (!cJSON_IsObject(*root))
        return semd_error(SEMD_EFORMAT,
                          "%s: __metadata__ \"" METADATA_KEY "\" is not a JSON object", l->path);
    return SEMD_OK;
}

static int compute_scales(semd_lora *l)
{
    cJSON *root;
    int rc = parse_metadata(l, &root);
    for (size_t i = 0; !rc && i < l->n_entries; i++) {
        lora_entry *e = &l->entries[i];
        double alpha;
        rc = entry_alpha(l, root, e, &alpha);
        if (!rc) e->scale = (float)((double)l->multiplier * alpha / e->rank);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- public: open / free ----------------------------------------------- */

int semd_lora_open(const char *path, float multiplier, semd_lora **out)
{
    if (!path || !out) return semd_error(SEMD_EINVAL, "semd_lora_open: NULL argument");
    *out = NULL;
    if (!isfinite(multiplier))
        return semd_error(SEMD_EINVAL, "%s: LoRA multiplier %g is not finite", path,
                          (double)multiplier);
    semd_lora *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    l->multiplier = multiplier;
    int rc = semd_st_open(path, &l->file);
    if (!rc) rc = collect_entries(l);
    for (size_t i = 0; !rc && i < l->n_entries; i++) rc = check_entry(l, &l->entries[i]);
    if (!rc) rc = compute_scales(l);
    if (rc) {
        semd_lora_free(l);
        return rc;
    }
    *out = l;
    return SEMD_OK;
}

void semd_lora_free(semd_lora *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n_entries; i++) free(l->entries[i].key);
    free(l->entries);
    free(l->slots);
    semd_st_close(l->file);
    free(l->path);
    free(l);
}

const char *semd_lora_path(const semd_lora *l) { return l ? l->path : NULL; }
float semd_lora_multiplier(const semd_lora *l) { return l ? l->multiplier : 0.0f; }
size_t semd_lora_count(const semd_lora *l) { return l ? l->n_entries : 0; }

/* ---- public: apply ------------------------------------------------------ */

/* prefix + name less ".weight", optionally with '.' -> '_'; false if too long. */
static bool make_key(char *buf, const char *prefix, const char *name, size_t name_len, bool kohya)
{
    int w = snprintf(buf, KEY_MAX, "%s%.*s", prefix, (int)name_len, name);
    if (w < 0 || w >= KEY_MAX) return false;
    if (kohya) dots_to_underscores(buf + strlen(prefix));
    return true;
}

/* The kohya key of a UNet tensor spelled with its LDM path: 1 when built, 0
 * when the name map has no LDM name for it. */
static int ldm_key(const semd_name_layout *layout, const char *name, char *buf)
{
    char ldm[KEY_MAX];
    int rc = semd_diffusers_to_ldm(layout, SEMD_MODULE_UNET, name, ldm, sizeof ldm);
    if (rc == SEMD_ENOTFOUND) return 0;
    if (rc) return rc;
    const char *prefix = semd_module_ldm_prefix(SEMD_MODULE_UNET);
    size_t len = strlen(ldm);
    if (!starts_with(ldm, prefix) || !ends_with(ldm, len, ".weight")) return 0;
    size_t plen = strlen(prefix);
    return make_key(buf, "lora_unet_", ldm + plen, len - plen - strlen(".weight"), true) ? 1 : 0;
}

/* Every key that could name the tensor in a LoRA file; returns how many. */
static int candidate_keys(const semd_lora *l, semd_module module, const char *name,
                          const semd_name_layout *layout, char keys[][KEY_MAX])
{
    size_t len = strlen(name) - strlen(".weight");
    int n = 0;
    if (module == SEMD_MODULE_UNET) {
        n += make_key(keys[n], "lora_unet_", name, len, true);
        n += make_key(keys[n], "unet.", name, len, false);
        if (layout && l->kohya_unet) {
            int rc = ldm_key(layout, name, keys[n]);
            if (rc < 0) return rc;
            n += rc;
        }
    } else if (module == SEMD_MODULE_TEXT) {
        n += make_key(keys[n], "lora_te_", name, len, true);
        n += make_key(keys[n], "text_encoder.", name, len, false);
    }
    return n;
}

/* The entry targeting `name`: *hit NULL when none, an error when two do. */
static int find_target(const semd_lora *l, semd_module module, const char *name,
                       const semd_name_layout *layout, lora_entry **hit)
{
    char keys[3][KEY_MAX];
    int n = candidate_keys(l, module, name, layout, keys);
    if (n < 0) return n;
    *hit = NULL;
    for (int i = 0; i < n; i++) {
        lora_entry *e = find_entry(l, keys[i]);
        if (e && *hit && e != *hit)
            return semd_error(SEMD_EFORMAT, "%s: both %s and %s target %s %s", l->path,
                              entry_name(*hit), entry_name(e), semd_module_name(module), name);
        if (e) *hit = e;
    }
    return SEMD_OK;
}

/* Whether the delta [out, in(, kh, kw)] fits the weight; a Linear and a 1x1
 * convolution take each other's factors. */
static int check_fit(const semd_lora *l, const lora_entry *e, semd_module module, const char *name,
                     int ndim, const int64_t *shape)
{
    const semd_st_tensor *d = e->down;
    int64_t delta[4] = {e->up->shape[0], d->shape[1], d->ndim == 4 ? d->shape[2] : 1,
                        d->ndim == 4 ? d->shape[3] : 1};
    bool ok = (ndim == 2 || ndim == 4) && delta[0] == shape[0] && delta[1] == shape[1];
    if (ok && ndim == 2) ok = delta[2] == 1 && delta[3] == 1;
    if (ok && ndim == 4) ok = delta[2] == shape[2] && delta[3] == shape[3];
    if (ok) return SEMD_OK;
    char ds[128], ws[128];
    format_shape(ds, sizeof ds, d->ndim, delta);
    format_shape(ws, sizeof ws, ndim, shape);
    return semd_error(SEMD_ESHAPE, "%s: %s: its delta [%s] does not fit %s %s [%s]", l->path,
                      entry_name(e), ds, semd_module_name(module), name, ws);
}

/* w[out, cols] += scale * U[out, r] @ D[r, cols], in fp32 as PEFT merges. */
static int merge(const semd_lora *l, const lora_entry *e, float *w, int64_t out, int64_t cols)
{
    if (out > INT32_MAX || cols > INT32_MAX)
        return semd_error(SEMD_EUNSUPPORTED, "%s: %s: weight too large", l->path, entry_name(e));
    float *u = malloc((size_t)e->up->numel * sizeof *u);
    float *d = malloc((size_t)e->down->numel * sizeof *d);
    int rc = u && d ? SEMD_OK : semd_error(SEMD_ENOMEM, "%s: out of memory", l->path);
    if (!rc) rc = semd_st_read_f32(e->up, u);
    if (!rc) rc = semd_st_read_f32(e->down, d);
    if (!rc)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)cols, e->rank,
                    e->scale, u, e->rank, d, (int)cols, 1.0f, w, (int)cols);
    free(u);
    free(d);
    return rc;
}

int semd_lora_apply(semd_lora *l, semd_module module, const char *name,
                    const semd_name_layout *layout, float *w, int ndim, const int64_t *shape)
{
    if (!l || !name || !w || !shape)
        return semd_error(SEMD_EINVAL, "semd_lora_apply: NULL argument");
    if (!ends_with(name, strlen(name), ".weight")) return 0;
    lora_entry *e;
    int rc = find_target(l, module, name, layout, &e);
    if (rc || !e) return rc;
    if (e->used)
        return semd_error(SEMD_EFORMAT, "%s: %s was already merged into another tensor (now %s %s)",
                          l->path, entry_name(e), semd_module_name(module), name);
    rc = check_fit(l, e, module, name, ndim, shape);
    int64_t cols = 1;
    for (int i = 1; i < ndim; i++) cols *= shape[i];
    if (!rc) rc = merge(l, e, w, shape[0], cols);
    if (rc) return rc;
    e->used = true;
    return 1;
}

/* ---- public: used flags ------------------------------------------------- */

static bool module_listed(semd_module m, const semd_module *modules, int n_modules)
{
    if (!modules) return true;
    for (int i = 0; i < n_modules; i++)
        if (modules[i] == m) return true;
    return false;
}

int semd_lora_check_all_used(const semd_lora *l, const semd_module *modules, int n_modules)
{
    if (!l) return semd_error(SEMD_EINVAL, "semd_lora_check_all_used: NULL argument");
    char names[1024];
    size_t at = 0, unused = 0;
    names[0] = '\0';
    for (size_t i = 0; i < l->n_entries; i++) {
        const lora_entry *e = &l->entries[i];
        if (e->used || !module_listed(e->module, modules, n_modules)) continue;
        if (++unused <= MAX_REPORTED && at < sizeof names)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", unused > 1 ? ", " : "",
                                   entry_name(e));
    }
    if (!unused) return SEMD_OK;
    return semd_error(SEMD_EINVAL,
                      "%s: %zu LoRA entr%s matched no weight of the model (a typo or a "
                      "LoRA for another base model?): %s%s",
                      l->path, unused, unused == 1 ? "y" : "ies", names,
                      unused > MAX_REPORTED ? ", ..." : "");
}

void semd_lora_reset_used(semd_lora *l)
{
    for (size_t i = 0; l && i < l->n_entries; i++) l->entries[i].used = false;
}
