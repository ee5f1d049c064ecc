/*
 * semd/lora.h - LoRA files, merged into the weights they target as those load.
 *
 * A LoRA holds, for some Linear and convolution layers, a low-rank pair:
 * down D [r, in] (convolution: [r, in, kh, kw]) and up U [out, r] (or
 * [out, r, 1, 1]). Merging adds scale * U @ D to the layer's weight, with
 * scale = multiplier * alpha / r (models.md section 8.3; no alpha: alpha = r),
 * in fp32 before the weight is uploaded. A convolution's delta is
 * U[out, r] @ D[r, in*kh*kw] reshaped; a 1x1 convolution and a Linear accept
 * each other's factors. Several LoRAs stack: apply each in turn.
 *
 * Formats read (section 8.1), F32/F16/BF16 tensors, mixed freely in one file:
 *   kohya   lora_unet_<path>.lora_down.weight / .lora_up.weight / .alpha
 *           (alpha 0-d or 1 element), lora_te_<path>... for the text encoder;
 *           <path> is the diffusers module path or, for the UNet, the original
 *           LDM one (input_blocks_1_1_proj_in, ..._in_layers_2, ..._op), with
 *           '.' written '_'
 *   PEFT    unet.<path>.lora_A.weight (down) / .lora_B.weight (up),
 *           text_encoder.<path>...; alpha from the __metadata__ entry
 *           "lora_adapter_metadata": a JSON LoraConfig per component, its keys
 *           "unet.lora_alpha" (diffusers >= 0.34), nested {"unet": {...}} or
 *           unprefixed; alpha_pattern keys (literal module-name suffixes) before
 *           lora_alpha; no metadata: alpha = r for every module (section
 *           8.1; diffusers 0.32.2 writes none, and for files whose ranks
 *           differ its loader may take another module's rank as the alpha)
 *   old     unet.<attention>.processor.to_q_lora.down.weight / .up.weight
 *           (to_k, to_v; to_out_lora is to_out.0), alpha = r
 * SDXL's lora_te1_/lora_te2_, LyCORIS (LoHa, LoKr, lora_mid), DoRA and
 * rsLoRA are refused with SEMD_EUNSUPPORTED naming the key.
 *
 * Matching is exact: for the tensor being loaded the candidate keys are built
 * from its name (diffusers spelling, and for the UNet its LDM spelling from
 * name_map.h) and looked up; underscores are never guessed back into dots.
 *
 * A semd_lora keeps a "used" flag per entry so that, after a model load, a
 * LoRA entry that matched no weight (a typo, a LoRA for another base model)
 * is reported instead of silently ignored. Not thread-safe: one model load at
 * a time per handle.
 */
#ifndef SEMD_LORA_H
#define SEMD_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "semd/name_map.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct semd_lora semd_lora;

/*
 * Map and validate `path`: every tensor is a known LoRA key, each entry has
 * both its down and up weight, ranks agree (down.shape[0] == up.shape[1] > 0),
 * factors are 2-D or 4-D (up 4-D only as [out, r, 1, 1]), alphas are finite
 * scalars (0-d or one element), the metadata is valid JSON. Errors name the
 * file and the key: SEMD_EIO / SEMD_EFORMAT (not a safetensors file, broken
 * pairs, bad metadata), SEMD_ESHAPE (ranks, dims, alpha), SEMD_EUNSUPPORTED.
 */
int semd_lora_open(const char *path, float multiplier, semd_lora **out);
void semd_lora_free(semd_lora *l);

const char *semd_lora_path(const semd_lora *l);
float semd_lora_multiplier(const semd_lora *l);
/* Number of entries (down/up pairs) in the file. */
size_t semd_lora_count(const semd_lora *l);

/*
 * Add this LoRA's delta to the tensor `name` of `module` (a diffusers name,
 * e.g. "down_blocks.0.resnets.0.conv1.weight" of the UNet, or
 * "text_model.encoder.layers.0.self_attn.q_proj.weight" of the text encoder),
 * whose fp32 values `w` (row-major, `ndim` dims of sizes `shape`) are about to
 * be uploaded. `layout` (may be NULL) lets kohya keys spelled with LDM paths
 * match UNet tensors. Returns 1 when a delta was added, 0 when no entry
 * targets the tensor (biases never are), or a negative status: SEMD_ESHAPE
 * naming the LoRA key, the delta's shape and the weight's; SEMD_EFORMAT when
 * two entries target the tensor or an entry was already merged into another
 * tensor during this load.
 */
int semd_lora_apply(semd_lora *l, semd_module module, const char *name,
                    const semd_name_layout *layout, float *w, int ndim, const int64_t *shape);

/*
 * After a model is loaded: SEMD_EINVAL when entries matched no tensor, with
 * their count and the first few keys in the message; SEMD_OK otherwise. Only
 * entries of the modules in `modules[n_modules]` are checked (a LoRA's text
 * encoder part is unused when only the UNet was loaded); NULL checks all.
 */
int semd_lora_check_all_used(const semd_lora *l, const semd_module *modules, int n_modules);

/* Forget which entries were used, to merge the same LoRA into another load. */
void semd_lora_reset_used(semd_lora *l);

#ifdef __cplusplus
}
#endif
#endif
