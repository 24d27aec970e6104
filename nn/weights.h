/* weights: named parameter sets ("state") of the DINOv2 backbone and the files
 * that hold them: HF model.safetensors (HF or torch-hub key names) and the
 * project's own HDF5 checkpoint (one dataset per parameter under its HF name,
 * the model config and a format version as attributes, a CRC32 checksum;
 * written to a temporary name, fsync'd and renamed).
 *
 * Every loader checks the set against the config: a missing, extra or
 * mis-shaped tensor is an error naming it. Loading a safetensors file or the
 * HDF5 made from it gives the same model.
 *
 * Called by nn/vit.c (model construction), the `mvead import-weights`
 * command (mvn_import_weights) and tests. */
#ifndef MVEAD_NN_WEIGHTS_H
#define MVEAD_NN_WEIGHTS_H

#include "tensor/tensor.h"
#include "nn/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MVN_WEIGHTS_FORMAT "mvead-vit-weights"
#define MVN_WEIGHTS_FORMAT_VERSION 1

/* A list of (name, tensor) pairs; the state owns one reference to each tensor. */
typedef struct {
    int n, cap;
    char **names;
    mvt_tensor **tensors;
} mvn_state;

mvn_state *mvn_state_new(void);
void mvn_state_free(mvn_state *s);
/* Adds or replaces `name`; takes ownership of one reference to t. */
void mvn_state_put(mvn_state *s, const char *name, mvt_tensor *t);
int mvn_state_find(const mvn_state *s, const char *name);          /* index or -1 */
mvt_tensor *mvn_state_get(const mvn_state *s, const char *name);   /* borrowed; NULL if absent */

/* The parameters a model with this config has: HF names and shapes, in HF
 * named_parameters() order. Returns the count; *names (malloc'd array of
 * malloc'd strings, free with mvn_param_specs_free) and *shapes (n x 4, unused
 * trailing dims 0) and *ndims. */
typedef struct { char name[96]; int ndim; int64_t shape[4]; } mvn_param_spec;
int mvn_param_specs(const mvn_vit_config *cfg, mvn_param_spec **specs);
/* Is `name` a parameter that may be absent? (mask_token when !use_mask_token) */
int mvn_param_optional(const mvn_vit_config *cfg, const char *name);

/* Checks s against cfg: every expected tensor present with its shape, no
 * others. -1 + mv_error "<what>: missing tensor 'x'" / "unexpected tensor
 * 'x'" / "tensor 'x' has shape [..], expected [..]". */
int mvn_state_check(const mvn_state *s, const mvn_vit_config *cfg, const char *what);

/* Does s use torch-hub key names (cls_token, pos_embed, blocks.N.*)? */
int mvn_state_is_hub(const mvn_state *s);
/* Renames torch-hub keys to HF names in place (qkv split in q, k, v order;
 * ls1.gamma -> layer_scale1.lambda1; w12/w3 -> weights_in/weights_out; chunked
 * blocks.C.N.* accepted). -1 + mv_error naming an unknown key. */
int mvn_state_hub_to_hf(mvn_state *s, const char *what);
/* The inverse: HF keys to torch-hub keys in place (q, k, v concatenated into
 * blocks.L.attn.qkv.*; plain blocks.L.*, never the chunked form), e.g. to
 * hand our weights to a torch.hub DINOv2. -1 + mv_error naming a key that is
 * not a DINOv2 HF key. */
int mvn_state_hf_to_hub(mvn_state *s, const char *what);

/* All tensors of a safetensors file, names as stored, converted to dt. */
mvn_state *mvn_state_load_safetensors(const char *path, mvt_dtype dt);

/* Infers a config from tensor shapes (HF names) when no config.json exists:
 * D, L, P, image size, SwiGLU, registers from the shapes; heads = D / 64 as in
 * every DINOv2 model. */
int mvn_config_infer(const mvn_state *s, mvn_vit_config *cfg, const char *what);

/* HDF5 checkpoint. */
int mvn_weights_save_h5(const char *path, const mvn_vit_config *cfg, const mvn_state *s);
/* Loads and checks; *cfg receives the stored config. Tensors converted to dt. */
mvn_state *mvn_weights_load_h5(const char *path, mvn_vit_config *cfg, mvt_dtype dt);

/* Loads weights from an HDF5 checkpoint or a safetensors file (chosen by the
 * file's signature). For safetensors the config comes from config_json, or
 * when NULL from config.json next to the file, or inferred from shapes if
 * that is absent. Hub names are mapped. The result is checked against the
 * config. NULL + mv_error on failure. */
mvn_state *mvn_weights_load(const char *path, const char *config_json_or_NULL, mvt_dtype dt,
                            mvn_vit_config *cfg);

/* `mvead import-weights`: safetensors (+ config) -> checked HDF5 checkpoint.
 * Stores float64 when any source tensor is F64, float32 otherwise. */
int mvn_import_weights(const char *src_safetensors, const char *config_json_or_NULL, const char *dst_h5);

#ifdef __cplusplus
}
#endif
#endif
