/* vit: the DINOv2 Vision Transformer backbone (HuggingFace Dinov2Model
 * semantics, see docs/method.md "Backbone parity") built from autograd ops,
 * so every layer's backward comes from the op table.
 *
 * Layers: patch embedding (im2col + linear with the conv weight as
 * [D, C*P*P]), CLS token, optional mask-token substitution, position
 * embeddings (bicubic interpolation in float32, modes size/hub), optional
 * register tokens, pre-norm blocks (LayerNorm, multi-head self-attention with
 * separate q/k/v, LayerScale, erf-GELU MLP or SwiGLU FFN), final LayerNorm.
 *
 * Parameters are autograd leaves (float32 or float64) named by their HF
 * names; they do not require grad unless mvn_vit_set_requires_grad() says so.
 * Inference: mva_set_grad_enabled(false) (the forward then also frees each
 * block's intermediates as it goes).
 *
 * Called by mvead/ (feature extraction, EAM `copy` init), bench and tests. */
#ifndef MVEAD_NN_VIT_H
#define MVEAD_NN_VIT_H

#include "autograd/autograd.h"
#include "nn/config.h"
#include "nn/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    mva_var *norm1_w, *norm1_b;                 /* [D] */
    mva_var *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [D, D], [D] (biases NULL without qkv_bias) */
    mva_var *proj_w, *proj_b;                   /* attention.output.dense [D, D], [D] */
    mva_var *ls1, *ls2;                         /* LayerScale lambda1 [D] (NULL without layerscale) */
    mva_var *norm2_w, *norm2_b;                 /* [D] */
    mva_var *fc1_w, *fc1_b;                     /* MLP fc1 [Hd, D] or SwiGLU weights_in [2 Hd, D] */
    mva_var *fc2_w, *fc2_b;                     /* MLP fc2 / SwiGLU weights_out [D, Hd] */
} mvn_vit_block;

typedef struct {
    mvn_vit_config cfg;
    mvt_dtype dtype;                 /* of every parameter and of the activations */
    mva_var *cls_token;              /* [1, 1, D] */
    mva_var *mask_token;             /* [1, D] (NULL when the weights had none) */
    mva_var *register_tokens;        /* [1, R, D] or NULL */
    mva_var *pos_embed;              /* [1, 1 + M*M, D] */
    mva_var *patch_w, *patch_b;      /* [D, C, P, P], [D] */
    mvn_vit_block *blocks;           /* [L] */
    mva_var *norm_w, *norm_b;        /* final layernorm [D] */
    int n_params;                    /* every leaf, in HF named_parameters() order */
    char **param_names;
    mva_var **params;
} mvn_vit;

/* Builds a model from a checked state (HF names); tensors are copied into
 * leaves of dtype dt (MVT_F32 or MVT_F64). NULL + mv_error on a mismatch. */
mvn_vit *mvn_vit_from_state(const mvn_vit_config *cfg, const mvn_state *s, mvt_dtype dt);
/* Loads weights (HDF5 checkpoint or safetensors, HF or hub names; config as
 * in mvn_weights_load) into a model of dtype dt. */
mvn_vit *mvn_vit_load(const char *weights_path, const char *config_json_or_NULL, mvt_dtype dt);
/* Random weights (benchmarks, tests): N(0, 1/fan_in) matrices, LayerNorm
 * weights 1, biases 0, tokens N(0, 0.02^2), LayerScale = cfg->layerscale_value. */
mvn_vit *mvn_vit_new_random(const mvn_vit_config *cfg, mvt_dtype dt, uint64_t seed);
void mvn_vit_free(mvn_vit *m);

/* The leaf called `hf_name`, or NULL. */
mva_var *mvn_vit_param(const mvn_vit *m, const char *hf_name);
void mvn_vit_set_requires_grad(mvn_vit *m, bool requires_grad);
/* Current parameters as a state (shares the tensors; free with mvn_state_free). */
mvn_state *mvn_vit_state(const mvn_vit *m);
/* Saves the parameters as the project's HDF5 weights checkpoint. */
int mvn_vit_save(const mvn_vit *m, const char *path);
/* Parameter count. */
int64_t mvn_vit_num_params(const mvn_vit *m);

/* Forward. pixels: [B, C, H, W] of the model's dtype, H and W multiples of the
 * patch (square or not). bool_masked_pos: NULL, or [B, (H/P)(W/P)] of any
 * dtype, nonzero = replace that patch embedding by mask_token (ignored, as in
 * HF, when cfg.use_mask_token is false).
 * Runs the embeddings and blocks 1..n_blocks (0 <= n_blocks <= L) and stops.
 * hidden_states (NULL or an array of n_blocks + 1): [0] the embeddings
 * output, [i] the output of block i, each [B, 1 + R + hw, D] (CLS, registers,
 * patches). last_hidden_state (NULL or out): the final LayerNorm of the last
 * computed hidden state (HF's last_hidden_state when n_blocks == L).
 * Outputs are tape vars. Returns 0, or -1 + mv_error for bad input shapes. */
int mvn_vit_forward(mvn_vit *m, mva_var *pixels, const mvt_tensor *bool_masked_pos, int n_blocks,
                    mva_var **hidden_states, mva_var **last_hidden_state);

/* Position embeddings for an h x w patch grid: [1, 1 + h*w, D] (the stored
 * ones when h == w == M, else the bicubic interpolation of the patch part in
 * float32 by cfg.pos_interp). */
mva_var *mvn_vit_pos_embed(mvn_vit *m, int64_t h, int64_t w);

/* Feature extraction without gradient: the patch tokens (no CLS, no
 * registers) of hidden_states[layer] (1 <= layer <= L; 0 = embeddings),
 * optionally passed through the final LayerNorm: [B, hw, D], new reference,
 * in the model's dtype. pixels may be float32 or float64 (converted). Frees
 * every intermediate before returning. NULL + mv_error on bad input. */
mvt_tensor *mvn_vit_features(mvn_vit *m, const mvt_tensor *pixels, int layer, bool final_norm);

/* Approximate forward FLOPs (multiply-adds x 2) for B images of H x W through n_blocks. */
double mvn_vit_flops(const mvn_vit_config *cfg, int64_t B, int64_t H, int64_t W, int n_blocks);

#ifdef __cplusplus
}
#endif
#endif
