/*
 * fuzz_lora: a LoRA file (safetensors) through semd_lora_open, which sorts
 * every tensor name into kohya, PEFT or attention-processor keys, pairs the
 * factors, checks shapes and alphas and reads the PEFT adapter metadata. A
 * LoRA that opens is then merged into the weights its own down factors name,
 * at the shapes the factors imply, so that key building, lookup and the merge
 * run on what the parser accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "semd/lora.h"
#include "semd/safetensors.h"

/* Weights larger than this are not merged (keeps a run short; the merge is plain sgemm). */
#define MAX_MERGED (1u << 16)

/* How a down factor's name maps to the weight it targets. */
typedef struct down_form {
    const char *prefix, *down_suffix, *up_suffix;
    semd_module module;
} down_form;

static const down_form forms[] = {
    {"lora_unet_", ".lora_down.weight", ".lora_up.weight", SEMD_MODULE_UNET},
    {"lora_te_", ".lora_down.weight", ".lora_up.weight", SEMD_MODULE_TEXT},
    {"unet.", ".lora_A.weight", ".lora_B.weight", SEMD_MODULE_UNET},
    {"text_encoder.", ".lora_A.weight", ".lora_B.weight", SEMD_MODULE_TEXT},
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Merge the delta of `down` and `up` into a zero weight `name` of the shape the factors imply. */
static void apply(semd_lora *l, semd_module module, const char *name, const semd_st_tensor *down,
                  const semd_st_tensor *up)
{
    if (!up || up->ndim < 1 || down->ndim < 2) return;
    int64_t shape[4] = {up->shape[0], down->shape[1], 1, 1};
    int ndim = 2;
    if (down->ndim == 4) ndim = 4, shape[2] = down->shape[2], shape[3] = down->shape[3];
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || (uint64_t)shape[i] > MAX_MERGED) return;
        numel *= (uint64_t)shape[i];
        if (numel > MAX_MERGED) return;
    }
    float *w = calloc((size_t)numel, sizeof *w);
    if (!w) abort();
    semd_clear_error();
    int rc = semd_lora_apply(l, module, name, NULL, w, ndim, shape);
    if (rc != 1) fuzz_check_status("semd_lora_apply", rc); /* 1: merged */
    free(w);
}

/*
 * The weight a down factor targets, and its up factor. A kohya name keeps its
 * underscores: semd_lora_apply builds the kohya key by turning the weight
 * name's dots into underscores, which leaves such a name as it is. An old
 * attention-processor name "unet.<attn>.processor.to_q_lora.down.weight"
 * targets "<attn>.to_q.weight" (to_out_lora: "<attn>.to_out.0.weight").
 */
static void merge_one(semd_lora *l, const semd_st_file *f, const semd_st_tensor *down)
{
    const size_t len = strlen(down->name);
    char up_name[1024], weight[1024];
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        const down_form *fm = &forms[k];
        const size_t plen = strlen(fm->prefix), slen = strlen(fm->down_suffix);
        if (strncmp(down->name, fm->prefix, plen) != 0 || !ends_with(down->name, fm->down_suffix) ||
            len <= plen + slen)
            continue;
        const int body = (int)(len - plen - slen);
        if (snprintf(up_name, sizeof up_name, "%s%.*s%s", fm->prefix, body, down->name + plen,
                     fm->up_suffix) >= (int)sizeof up_name ||
            snprintf(weight, sizeof weight, "%.*s.weight", body, down->name + plen) >= (int)sizeof weight)
            return;
        apply(l, fm->module, weight, down, semd_st_find(f, up_name));
        return;
    }
    const char *proc = strstr(down->name, ".processor.to_");
    if (strncmp(down->name, "unet.", 5) != 0 || !proc || proc < down->name + 5 ||
        !ends_with(down->name, "_lora.down.weight"))
        return;
    const char *proj = proc + strlen(".processor.to_"), *proj_end = down->name + len - strlen("_lora.down.weight");
    if (proj >= proj_end) return;
    const int attn = (int)(proc - (down->name + 5)), plen = (int)(proj_end - proj);
    const int is_out = plen == 3 && strncmp(proj, "out", 3) == 0;
    if (snprintf(up_name, sizeof up_name, "%.*s_lora.up.weight", (int)(proj_end - down->name), down->name) >=
            (int)sizeof up_name ||
        snprintf(weight, sizeof weight, "%.*s.to_%.*s%s.weight", attn, down->name + 5, plen, proj,
                 is_out ? ".0" : "") >= (int)sizeof weight)
        return;
    apply(l, SEMD_MODULE_UNET, weight, down, semd_st_find(f, up_name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    semd_lora *l = NULL;
    semd_clear_error();
    int rc = semd_lora_open(path, 0.75f, &l);
    fuzz_check_status("semd_lora_open", rc);
    if (rc) {
        if (l) abort();
        return 0;
    }
    if (semd_lora_count(l) == 0) abort(); /* an empty file is not a LoRA */
    /* The harness reads the names itself (the handle does not list its entries). */
    semd_st_file *f = NULL;
    if (semd_st_open(path, &f)) abort(); /* semd_lora_open read the same file */
    for (size_t i = 0; i < semd_st_count(f); i++) merge_one(l, f, semd_st_at(f, i));
    /* A bias is never a target; then the used flags. */
    float w[4] = {0};
    const int64_t shape[2] = {2, 2};
    semd_clear_error();
    rc = semd_lora_apply(l, SEMD_MODULE_UNET, "conv_in.bias", NULL, w, 2, shape);
    if (rc != 0) abort();
    semd_clear_error();
    fuzz_check_status("semd_lora_check_all_used", semd_lora_check_all_used(l, NULL, 0));
    semd_lora_reset_used(l);
    semd_st_close(f);
    semd_lora_free(l);
    return 0;
}
