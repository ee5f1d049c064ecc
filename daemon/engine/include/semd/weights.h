/*
 * semd/weights.h - a set of safetensors files seen as one name -> tensor map.
 *
 * Opens what checkpoints are made of: a single .safetensors file (an LDM
 * single-file checkpoint holds every module under its own prefix), or a
 * diffusers component folder (unet/, vae/, text_encoder/) holding
 * model.safetensors or diffusion_pytorch_model.safetensors, their .fp16
 * variants, or shards listed by a *.safetensors.index.json. Tensors are read
 * through a name prefix, so one open file serves several modules.
 *
 * Loading converts F32/F16/BF16 to fp32 and checks the shape; a missing tensor
 * or a shape mismatch is an error naming the file, the tensor and both shapes.
 * A 1x1 convolution weight [o,i,1,1] and a Linear weight [o,i] are accepted for
 * each other (checkpoint families store either).
 */
#ifndef SEMD_WEIGHTS_H
#define SEMD_WEIGHTS_H

#include "semd/backend.h"
#include "semd/name_map.h"
#include "semd/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct semd_weights semd_weights;

int semd_weights_open(const char *path, semd_weights **out);

/*
 * A weight set with no file behind it: any tensor a model asks for exists,
 * with deterministic values from (seed, name): norm scales 1, biases 0, other
 * weights uniform with std 1/sqrt(fan_in) (fan_in = product of all dims but the
 * first), so activations stay finite at full size. For benchmarks and memory
 * checks at real scale without weight files. Shapes must be fully given.
 */
int semd_weights_random(uint64_t seed, semd_weights **out);
void semd_weights_free(semd_weights *w);
/* What was opened (the file or folder), for messages. */
const char *semd_weights_source(const semd_weights *w);

/* prefix + name, or NULL when absent. `prefix` may be NULL or "". */
const semd_st_tensor *semd_weights_find(const semd_weights *w, const char *prefix,
                                        const char *name);

/*
 * Read prefix + name as fp32 host memory (*host, freed by the caller),
 * checking it has `ndim` dims of sizes `shape` (a negative size matches
 * anything); the actual sizes go to ne[ndim].
 */
int semd_weights_read(const semd_weights *w, const char *prefix, const char *name, int ndim,
                      const int64_t *shape, float **host, int64_t *ne);

/* semd_weights_read, then upload into a new tensor on `be`. */
int semd_weights_load(const semd_weights *w, const char *prefix, const char *name, int ndim,
                      const int64_t *shape, semd_backend *be, semd_tensor **out);

typedef struct semd_lora semd_lora; /* semd/lora.h */

/*
 * How a model finds its tensors: diffusers names under `prefix` (a component
 * folder: ""), or, with `ldm_names`, the original single-file names that
 * name_map.h derives from the diffusers names with `layout`. LoRAs listed here
 * are merged into the weights they target as those load; `layout` (when set)
 * also lets them match kohya keys written with LDM paths.
 */
typedef struct semd_weight_view {
    const semd_weights *w;
    const char *prefix;
    const semd_name_layout *layout;
    int ldm_names;
    semd_lora *const *loras;
    int n_loras;
} semd_weight_view;

#ifdef __cplusplus
}
#endif
#endif
