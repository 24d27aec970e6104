/* backbone: the frozen feature extractor a run names (a DINOv2 preset with
 * random weights, the built-in `tiny`, or a weights file), and the block
 * whose weights `--init copy` gives the EAM. */
#include "mvead/run/backbone.h"
#include "nn/config.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Random backbones use a fixed seed so every run (and every ablation) that
 * names the same preset sees the same features. */
#define MVEAD_BACKBONE_SEED 20240601u

/* `tiny`: the default for the synthetic data on 2 cores (random weights). */
static void tiny_config(mvn_vit_config *cfg) {
    mvn_config_defaults(cfg);
    cfg->hidden_size = 96;
    cfg->num_hidden_layers = 8;
    cfg->num_attention_heads = 4;
    cfg->mlp_ratio = 4;
    cfg->patch_size = 14;
    cfg->image_size = 224;
}

static bool is_file_backbone(const char *b) {
    size_t n = strlen(b);
    return (n > 12 && !strcmp(b + n - 12, ".safetensors")) || (n > 3 && !strcmp(b + n - 3, ".h5")) || strchr(b, '/');
}

mvn_vit *mvead_backbone_load(const mvead_config *c, char *hash, size_t hash_n) {
    mvn_vit *m = NULL;
    mvn_vit_config cfg;
    if (is_file_backbone(c->backbone)) {
        m = mvn_vit_load(c->backbone, NULL, MVT_F32);
        if (!m) { mv_error_prefix("--backbone %s", c->backbone); return NULL; }
        /* hash of the weights: crc32 over every parameter's bytes, in order */
        uLong crc = crc32(0L, Z_NULL, 0);
        for (int i = 0; i < m->n_params; i++) {
            mvt_tensor *t = mvt_contiguous(m->params[i]->value);
            crc = crc32_z(crc, (const Bytef *)mvt_data(t), (size_t)mvt_numel(t) * mvt_dtype_size(t->dtype));
            mvt_release(t);
        }
        snprintf(hash, hash_n, "file-%08lx", (unsigned long)crc);
    } else {
        if (!strcmp(c->backbone, "tiny")) tiny_config(&cfg);
        else if (mvn_config_preset(c->backbone, &cfg)) { mv_error_prefix("--backbone"); return NULL; }
        m = mvn_vit_new_random(&cfg, MVT_F32, MVEAD_BACKBONE_SEED);
        if (!m) return NULL;
        snprintf(hash, hash_n, "random-%s-%u", c->backbone, MVEAD_BACKBONE_SEED);
    }
    m->cfg.pos_interp = !strcmp(c->pos_interp, "hub") ? MVN_POS_HUB : MVN_POS_SIZE;
    if (c->layer > m->cfg.num_hidden_layers) {
        mv_error("--layer %d: the backbone has %d blocks", c->layer, m->cfg.num_hidden_layers);
        mvn_vit_free(m);
        return NULL;
    }
    if (c->image_size % m->cfg.patch_size) {
        mv_error("--image_size %d is not a multiple of the patch size %d", c->image_size, m->cfg.patch_size);
        mvn_vit_free(m);
        return NULL;
    }
    return m;
}

int mvead_backbone_copy_weights(const mvead_config *c, int dim_expected, int *heads,
                                mvead_eam_weights *src, void **keep) {
    char hash[64];
    mvn_vit *m = mvead_backbone_load(c, hash, sizeof hash);
    if (!m) return -1;
    if (m->cfg.hidden_size != dim_expected) {
        mv_error("backbone %s has width %d, the cached features %d", c->backbone, m->cfg.hidden_size, dim_expected);
        mvn_vit_free(m);
        return -1;
    }
    /* hidden_states[k] is the output of block k (1-based); block k+1 is encoder.layer.k */
    if (c->layer >= m->cfg.num_hidden_layers) {
        mv_error("--init copy needs block %d, the backbone has %d blocks", c->layer + 1, m->cfg.num_hidden_layers);
        mvn_vit_free(m);
        return -1;
    }
    const mvn_vit_block *b = &m->blocks[c->layer];
    if (!b->q_b || !b->k_b || !b->v_b || !b->proj_b) {
        mv_error("backbone %s has no attention biases; --init copy needs them", c->backbone);
        mvn_vit_free(m);
        return -1;
    }
    src->ln_w = b->norm1_w->value; src->ln_b = b->norm1_b->value;
    src->wq = b->q_w->value; src->bq = b->q_b->value;
    src->wk = b->k_w->value; src->bk = b->k_b->value;
    src->wv = b->v_w->value; src->bv = b->v_b->value;
    src->wo = b->proj_w->value; src->bo = b->proj_b->value;
    *heads = m->cfg.num_attention_heads;
    *keep = m;
    return 0;
}

void mvead_backbone_release(void *keep) { if (keep) mvn_vit_free((mvn_vit *)keep); }
