/* config: the DINOv2 ViT hyper-parameters, read from a HuggingFace
 * config.json or taken from a preset (ViT-S/B/L/g with patch 14, as DINOv2
 * defines them). Called by nn/weights.c, nn/vit.c, the mvead commands and
 * the tests. */
#ifndef MVEAD_NN_CONFIG_H
#define MVEAD_NN_CONFIG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How position embeddings are resized when the patch grid is not the trained
 * one (see docs/method.md "Backbone parity"). */
typedef enum {
    MVN_POS_SIZE = 0,   /* HF: bicubic to size (h, w), step M/h */
    MVN_POS_HUB = 1,    /* torch hub: scale factors ((h + 0.1)/M, (w + 0.1)/M) */
} mvn_pos_interp;

typedef struct {
    int hidden_size;            /* D */
    int num_hidden_layers;      /* L */
    int num_attention_heads;
    double mlp_ratio;
    int patch_size;             /* P */
    int image_size;             /* trained grid M = image_size / P */
    int num_channels;           /* 3 */
    double layer_norm_eps;
    bool use_swiglu_ffn;
    int num_register_tokens;    /* 0 when absent */
    bool layerscale;            /* blocks carry LayerScale (lambda1) parameters */
    double layerscale_value;    /* init value (random models) */
    bool qkv_bias;
    bool use_mask_token;        /* the model holds embeddings.mask_token */
    mvn_pos_interp pos_interp;  /* not part of HF config.json; default size */
} mvn_vit_config;

/* Parses a HF config.json. Keys absent from the file keep DINOv2 defaults
 * (those of HF Dinov2Config). -1 + mv_error naming the file and key on a bad
 * value. */
int mvn_config_load_json(const char *path, mvn_vit_config *cfg);
/* Same from a JSON string (`what` names the source in errors). */
int mvn_config_parse_json(const char *json, const char *what, mvn_vit_config *cfg);
/* Writes cfg as a HF-compatible config.json. */
int mvn_config_save_json(const char *path, const mvn_vit_config *cfg);

/* Presets: "vits14", "vitb14", "vitl14", "vitg14" (also "dinov2_vits14",
 * "small", "base", "large", "giant", "S", "B", "L", "G"). -1 + mv_error when unknown. */
int mvn_config_preset(const char *name, mvn_vit_config *cfg);
void mvn_config_defaults(mvn_vit_config *cfg);   /* HF Dinov2Config defaults (ViT-B/14-like) */

/* Checks internal consistency (D divisible by heads, sizes positive,
 * image_size a multiple of the patch). -1 + mv_error naming `what`. */
int mvn_config_validate(const mvn_vit_config *cfg, const char *what);

/* Hidden width of the feed-forward: int(D * mlp_ratio), or for SwiGLU the
 * HF/hub rule (int(int(D * mlp_ratio) * 2 / 3) + 7) / 8 * 8. */
int mvn_config_mlp_hidden(const mvn_vit_config *cfg);
/* Trained patch grid side M = image_size / patch_size. */
int mvn_config_grid(const mvn_vit_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
