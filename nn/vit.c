/* DINOv2 ViT on autograd ops; see vit.h. HF Dinov2Model is the reference. */
#include "nn/vit.h"
#include "tensor/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- construction ----------------------------------------------------------- */

mva_var *mvn_vit_param(const mvn_vit *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->param_names[i], name) == 0) return m->params[i];
    return NULL;
}

static mva_var *layer_param(const mvn_vit *m, int l, const char *suffix) {
    char nm[128];
    snprintf(nm, sizeof nm, "encoder.layer.%d.%s", l, suffix);
    return mvn_vit_param(m, nm);
}

/* Points the named fields at the leaves. */
static void bind_fields(mvn_vit *m) {
    m->cls_token = mvn_vit_param(m, "embeddings.cls_token");
    m->mask_token = mvn_vit_param(m, "embeddings.mask_token");
    m->register_tokens = mvn_vit_param(m, "embeddings.register_tokens");
    m->pos_embed = mvn_vit_param(m, "embeddings.position_embeddings");
    m->patch_w = mvn_vit_param(m, "embeddings.patch_embeddings.projection.weight");
    m->patch_b = mvn_vit_param(m, "embeddings.patch_embeddings.projection.bias");
    m->norm_w = mvn_vit_param(m, "layernorm.weight");
    m->norm_b = mvn_vit_param(m, "layernorm.bias");
    const char *ffn = m->cfg.use_swiglu_ffn ? "mlp.weights_in" : "mlp.fc1";
    const char *ffo = m->cfg.use_swiglu_ffn ? "mlp.weights_out" : "mlp.fc2";
    char nm[64];
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) {
        mvn_vit_block *b = &m->blocks[l];
        b->norm1_w = layer_param(m, l, "norm1.weight");
        b->norm1_b = layer_param(m, l, "norm1.bias");
        b->q_w = layer_param(m, l, "attention.attention.query.weight");
        b->q_b = layer_param(m, l, "attention.attention.query.bias");
        b->k_w = layer_param(m, l, "attention.attention.key.weight");
        b->k_b = layer_param(m, l, "attention.attention.key.bias");
        b->v_w = layer_param(m, l, "attention.attention.value.weight");
        b->v_b = layer_param(m, l, "attention.attention.value.bias");
        b->proj_w = layer_param(m, l, "attention.output.dense.weight");
        b->proj_b = layer_param(m, l, "attention.output.dense.bias");
        b->ls1 = layer_param(m, l, "layer_scale1.lambda1");
        b->ls2 = layer_param(m, l, "layer_scale2.lambda1");
        b->norm2_w = layer_param(m, l, "norm2.weight");
        b->norm2_b = layer_param(m, l, "norm2.bias");
        snprintf(nm, sizeof nm, "%s.weight", ffn); b->fc1_w = layer_param(m, l, nm);
        snprintf(nm, sizeof nm, "%s.bias", ffn);   b->fc1_b = layer_param(m, l, nm);
        snprintf(nm, sizeof nm, "%s.weight", ffo); b->fc2_w = layer_param(m, l, nm);
        snprintf(nm, sizeof nm, "%s.bias", ffo);   b->fc2_b = layer_param(m, l, nm);
    }
}

mvn_vit *mvn_vit_from_state(const mvn_vit_config *cfg, const mvn_state *s, mvt_dtype dt) {
    MVT_ASSERT(dt == MVT_F32 || dt == MVT_F64, "mvn_vit: dtype must be f32 or f64");
    if (mvn_config_validate(cfg, "model config") != 0) return NULL;
    if (mvn_state_check(s, cfg, "model weights") != 0) return NULL;
    mvn_param_spec *sp;
    int n = mvn_param_specs(cfg, &sp);
    mvn_vit *m = calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->dtype = dt;
    m->blocks = calloc((size_t)(cfg->num_hidden_layers > 0 ? cfg->num_hidden_layers : 1), sizeof *m->blocks);
    m->param_names = calloc((size_t)n, sizeof *m->param_names);
    m->params = calloc((size_t)n, sizeof *m->params);
    for (int i = 0; i < n; i++) {
        const mvt_tensor *t = mvn_state_get(s, sp[i].name);
        if (!t) continue;   /* optional and absent (checked above) */
        /* the model owns its own contiguous storage (no sharing with the state) */
        mvt_tensor *own = mvt_to_dtype(t, dt);
        if (own->storage == t->storage || !mvt_is_contiguous(own)) {
            mvt_tensor *c = mvt_clone(own);
            mvt_release(own);
            own = c;
        }
        m->param_names[m->n_params] = strdup(sp[i].name);
        m->params[m->n_params] = mva_leaf(own, false, m->param_names[m->n_params]);
        m->n_params++;
    }
    free(sp);
    bind_fields(m);
    return m;
}

mvn_vit *mvn_vit_load(const char *path, const char *config_json, mvt_dtype dt) {
    mvn_vit_config cfg;
    mvn_state *s = mvn_weights_load(path, config_json, dt, &cfg);
    if (!s) return NULL;
    mvn_vit *m = mvn_vit_from_state(&cfg, s, dt);
    mvn_state_free(s);
    return m;
}

mvn_vit *mvn_vit_new_random(const mvn_vit_config *cfg, mvt_dtype dt, uint64_t seed) {
    if (mvn_config_validate(cfg, "model config") != 0) return NULL;
    mvn_param_spec *sp;
    int n = mvn_param_specs(cfg, &sp);
    mvn_state *s = mvn_state_new();
    mvt_rng rng;
    mvt_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        mvt_tensor *t = mvt_zeros(dt, sp[i].ndim, sp[i].shape);
        const char *nm = sp[i].name;
        size_t len = strlen(nm);
        bool is_weight = len > 7 && strcmp(nm + len - 7, ".weight") == 0;
        bool is_norm = strstr(nm, "norm") != NULL;
        if (strstr(nm, "lambda1")) mvt_fill(t, cfg->layerscale_value);
        else if (is_norm && is_weight) mvt_fill(t, 1.0);
        else if (is_weight) {
            int64_t fan_in = mvt_numel(t) / t->shape[0];
            mvt_fill_normal(t, &rng, 0.0, 1.0 / sqrt((double)fan_in));
        } else if (strstr(nm, "_token") || strstr(nm, "position_embeddings"))
            mvt_fill_normal(t, &rng, 0.0, 0.02);
        mvn_state_put(s, nm, t);
    }
    free(sp);
    mvn_vit *m = mvn_vit_from_state(cfg, s, dt);
    mvn_state_free(s);
    return m;
}

void mvn_vit_free(mvn_vit *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) { mva_leaf_free(m->params[i]); free(m->param_names[i]); }
    free(m->params);
    free(m->param_names);
    free(m->blocks);
    free(m);
}

void mvn_vit_set_requires_grad(mvn_vit *m, bool rg) {
    for (int i = 0; i < m->n_params; i++) m->params[i]->requires_grad = rg;
}

mvn_state *mvn_vit_state(const mvn_vit *m) {
    mvn_state *s = mvn_state_new();
    for (int i = 0; i < m->n_params; i++) mvn_state_put(s, m->param_names[i], mvt_retain(m->params[i]->value));
    return s;
}

int mvn_vit_save(const mvn_vit *m, const char *path) {
    mvn_state *s = mvn_vit_state(m);
    int rc = mvn_weights_save_h5(path, &m->cfg, s);
    mvn_state_free(s);
    return rc;
}

int64_t mvn_vit_num_params(const mvn_vit *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += mvt_numel(m->params[i]->value);
    return n;
}

/* ---- layers -------------------------------------------------------------------- */

/* B copies of a [1, T, D] token var along dim 0: [B, T, D] (concat of the same
 * var, so the backward sums the B gradients into it). */
static mva_var *repeat_batch(mva_var *tok, int64_t B) {
    if (B == 1) return tok;
    mva_var **vs = malloc((size_t)B * sizeof *vs);
    for (int64_t i = 0; i < B; i++) vs[i] = tok;
    mva_var *out = mva_concat(vs, (int)B, 0);
    free(vs);
    return out;
}

/* [1, 1 + h*w, D]; see vit.h. HF (and the hub) skip the interpolation only
 * when the grid is the trained one and square; otherwise the M x M patch grid
 * is resampled bicubically in float32, even inside a float64 model. */
mva_var *mvn_vit_pos_embed(mvn_vit *m, int64_t h, int64_t w) {
    int64_t M = mvn_config_grid(&m->cfg), D = m->cfg.hidden_size;
    if (h == M && w == M) return m->pos_embed;
    mva_var *cls_pos = mva_narrow(m->pos_embed, 1, 0, 1);               /* [1, 1, D] */
    mva_var *patch_pos = mva_narrow(m->pos_embed, 1, 1, M * M);         /* [1, M*M, D] */
    int64_t grid_shape[4] = {1, M, M, D};
    mva_var *grid = mva_reshape(patch_pos, 4, grid_shape);
    static const int to_chw[4] = {0, 3, 1, 2};
    grid = mva_permute(grid, to_chw);                                   /* [1, D, M, M] */
    double sh = 0, sw = 0;
    if (m->cfg.pos_interp == MVN_POS_HUB) { sh = (h + 0.1) / (double)M; sw = (w + 0.1) / (double)M; }
    mva_var *r = mva_resize(grid, h, w, MVT_BICUBIC, false, sh, sw);    /* [1, D, h, w] */
    if (m->dtype == MVT_F64) {
        /* Value = the float32 interpolation (as HF computes it); gradient =
         * the float64 adjoint (differs from HF's float32 one by ~1e-7 rel). */
        mvt_tensor *g32 = mvt_to_dtype(grid->value, MVT_F32);
        mvt_tensor *r32 = mvt_resize(g32, h, w, MVT_BICUBIC, false, sh, sw);
        mvt_tensor *r32d = mvt_to_dtype(r32, MVT_F64);
        mvt_tensor *delta = mvt_sub(r32d, r->value);
        r = mva_add(r, mva_const(delta));
        mvt_release(g32);
        mvt_release(r32);
        mvt_release(r32d);
    }
    static const int to_hwc[4] = {0, 2, 3, 1};
    r = mva_permute(r, to_hwc);                                         /* [1, h, w, D] */
    int64_t flat_shape[3] = {1, h * w, D};
    r = mva_reshape(mva_contiguous(r), 3, flat_shape);                  /* [1, h*w, D] */
    mva_var *parts[2] = {cls_pos, r};
    return mva_concat(parts, 2, 1);
}

/* pixels [B, C, H, W] -> [B, 1 + R + hw, D] */
static mva_var *embeddings(mvn_vit *m, mva_var *pixels, const mvt_tensor *bool_masked_pos) {
    const mvn_vit_config *c = &m->cfg;
    int64_t B = pixels->value->shape[0], C = c->num_channels, P = c->patch_size, D = c->hidden_size;
    int64_t h = pixels->value->shape[2] / P, w = pixels->value->shape[3] / P;
    mva_var *cols = mva_im2col(pixels, (int)P);                          /* [B, hw, C*P*P] */
    int64_t wshape[2] = {D, C * P * P};
    mva_var *x = mva_linear(cols, mva_reshape(m->patch_w, 2, wshape), m->patch_b);   /* [B, hw, D] */
    if (bool_masked_pos && c->use_mask_token && m->mask_token) {
        /* torch.where(mask, mask_token, x) as x * (1 - mask) + mask_token * mask */
        int64_t mshape[3] = {B, h * w, 1};
        mvt_tensor *keep = mvt_empty(m->dtype, 3, mshape), *put = mvt_empty(m->dtype, 3, mshape);
        int64_t idx[2];
        for (idx[0] = 0; idx[0] < B; idx[0]++)
            for (idx[1] = 0; idx[1] < h * w; idx[1]++) {
                int64_t o[3] = {idx[0], idx[1], 0};
                bool masked = mvt_get(bool_masked_pos, idx) != 0;
                mvt_set(keep, o, masked ? 0.0 : 1.0);
                mvt_set(put, o, masked ? 1.0 : 0.0);
            }
        x = mva_add(mva_mul(x, mva_const(keep)), mva_mul(m->mask_token, mva_const(put)));
    }
    mva_var *parts[3] = {repeat_batch(m->cls_token, B), x};
    x = mva_concat(parts, 2, 1);                                         /* [B, 1 + hw, D] */
    x = mva_add(x, mvn_vit_pos_embed(m, h, w));
    if (m->register_tokens) {
        /* HF Dinov2WithRegisters: registers go after CLS, after the position embeddings */
        parts[0] = mva_narrow(x, 1, 0, 1);
        parts[1] = repeat_batch(m->register_tokens, B);
        parts[2] = mva_narrow(x, 1, 1, h * w);
        x = mva_concat(parts, 3, 1);                                     /* [B, 1 + R + hw, D] */
    }
    return x;
}

/* silu(x) = x * sigmoid(x) with sigmoid(x) = (1 + tanh(x / 2)) / 2: no exp
 * overflow for large |x|, so the backward stays finite everywhere. */
static mva_var *silu(mva_var *x) {
    mva_var *sig = mva_add_scalar(mva_scale(mva_tanh(mva_scale(x, 0.5)), 0.5), 0.5);
    return mva_mul(x, sig);
}

/* x [B, N, D] -> x + LS1 * Attn(LN1(x)) -> + LS2 * FFN(LN2(.)) */
static mva_var *block_forward(const mvn_vit *m, const mvn_vit_block *b, mva_var *x) {
    const mvn_vit_config *c = &m->cfg;
    int64_t B = x->value->shape[0], N = x->value->shape[1], D = c->hidden_size;
    int64_t H = c->num_attention_heads, d = D / H;
    double eps = c->layer_norm_eps;
    static const int heads_first[4] = {0, 2, 1, 3};   /* [B, N, H, d] <-> [B, H, N, d] */
    int64_t split[4] = {B, N, H, d}, merged[3] = {B, N, D};

    mva_var *y = mva_layernorm(x, b->norm1_w, b->norm1_b, eps);
    mva_var *q = mva_permute(mva_reshape(mva_linear(y, b->q_w, b->q_b), 4, split), heads_first);
    mva_var *k = mva_permute(mva_reshape(mva_linear(y, b->k_w, b->k_b), 4, split), heads_first);
    mva_var *v = mva_permute(mva_reshape(mva_linear(y, b->v_w, b->v_b), 4, split), heads_first);
    mva_var *scores = mva_matmul(q, mva_transpose(k, 2, 3));           /* [B, H, N, N] */
    /* 1/sqrt(d) rides in the softmax's first pass: no extra pass over q */
    mva_var *probs = mva_softmax_scaled(scores, 1.0 / sqrt((double)d), NULL);
    mva_var *ctx = mva_matmul(probs, v);                                /* [B, H, N, d] */
    ctx = mva_reshape(mva_contiguous(mva_permute(ctx, heads_first)), 3, merged);
    mva_var *att = mva_linear(ctx, b->proj_w, b->proj_b);
    x = mva_add_scaled(x, att, b->ls1);                                 /* x + LS1 att, one pass */

    y = mva_layernorm(x, b->norm2_w, b->norm2_b, eps);
    mva_var *ff;
    if (c->use_swiglu_ffn) {
        int64_t Hd = b->fc2_w->value->shape[1];
        mva_var *x12 = mva_linear(y, b->fc1_w, b->fc1_b);               /* [B, N, 2 Hd] */
        mva_var *x1 = mva_narrow(x12, 2, 0, Hd), *x2 = mva_narrow(x12, 2, Hd, Hd);
        ff = mva_linear(mva_mul(silu(x1), x2), b->fc2_w, b->fc2_b);
    } else {
        ff = mva_linear(mva_linear_gelu(y, b->fc1_w, b->fc1_b), b->fc2_w, b->fc2_b);
    }
    return mva_add_scaled(x, ff, b->ls2);
}

/* When nothing was recorded through v (no-grad or frozen inputs), drops the
 * tape entries after `mark` and re-creates v as a constant: inference keeps
 * only the block outputs alive instead of every intermediate. */
static mva_var *compact_tape(mva_var *v, size_t mark) {
    if (v->node != NULL || v->requires_grad || mva_tape_size() <= mark + 1) return v;
    mvt_tensor *val = mvt_retain(v->value);
    mva_tape_reset(mark);
    return mva_const(val);
}

int mvn_vit_forward(mvn_vit *m, mva_var *pixels, const mvt_tensor *bool_masked_pos, int n_blocks,
                    mva_var **hidden_states, mva_var **last_hidden_state) {
    const mvn_vit_config *c = &m->cfg;
    const mvt_tensor *px = pixels->value;
    char sh[96];
    if (px->ndim != 4 || px->shape[1] != c->num_channels)
        return mv_error("backbone input: pixels %s, expected [B, %d, H, W]", mvt_shape_str(px, sh, sizeof sh), c->num_channels);
    if (px->shape[0] <= 0 || px->shape[2] <= 0 || px->shape[3] <= 0 || px->shape[2] % c->patch_size || px->shape[3] % c->patch_size)
        return mv_error("backbone input: pixels %s: H and W must be positive multiples of the patch size %d",
                        mvt_shape_str(px, sh, sizeof sh), c->patch_size);
    if (px->dtype != m->dtype)
        return mv_error("backbone input: pixels are %s, the model is %s", mvt_dtype_name(px->dtype), mvt_dtype_name(m->dtype));
    if (n_blocks < 0 || n_blocks > c->num_hidden_layers)
        return mv_error("backbone: %d blocks requested, the model has %d", n_blocks, c->num_hidden_layers);
    int64_t hw = (px->shape[2] / c->patch_size) * (px->shape[3] / c->patch_size);
    if (bool_masked_pos && (bool_masked_pos->ndim != 2 || bool_masked_pos->shape[0] != px->shape[0] || bool_masked_pos->shape[1] != hw))
        return mv_error("backbone input: bool_masked_pos %s, expected [%lld, %lld]",
                        mvt_shape_str(bool_masked_pos, sh, sizeof sh), (long long)px->shape[0], (long long)hw);

    size_t mark = mva_tape_size();
    mva_var *x = compact_tape(embeddings(m, pixels, bool_masked_pos), mark);
    if (hidden_states) hidden_states[0] = x;
    for (int l = 0; l < n_blocks; l++) {
        mark = mva_tape_size();
        x = compact_tape(block_forward(m, &m->blocks[l], x), mark);
        if (hidden_states) hidden_states[l + 1] = x;
    }
    if (last_hidden_state) *last_hidden_state = mva_layernorm(x, m->norm_w, m->norm_b, c->layer_norm_eps);
    return 0;
}

mvt_tensor *mvn_vit_features(mvn_vit *m, const mvt_tensor *pixels, int layer, bool final_norm) {
    if (pixels->dtype != MVT_F32 && pixels->dtype != MVT_F64) {
        mv_error("backbone input: pixels must be float32 or float64");
        return NULL;
    }
    bool prev = mva_set_grad_enabled(false);
    size_t mark = mva_tape_size();
    mva_var *px = mva_const(mvt_to_dtype(pixels, m->dtype));
    mva_var *out = NULL;
    mvt_tensor *res = NULL;
    if (layer < 0 || layer > m->cfg.num_hidden_layers) {
        mv_error("backbone: features of layer %d requested, the model has %d blocks", layer, m->cfg.num_hidden_layers);
    } else {
        mva_var **hs = malloc((size_t)(layer + 1) * sizeof *hs);
        if (mvn_vit_forward(m, px, NULL, layer, hs, final_norm ? &out : NULL) == 0) {
            mva_var *h = final_norm ? out : hs[layer];
            int64_t skip = 1 + m->cfg.num_register_tokens;
            mvt_tensor *patches = mvt_narrow(h->value, 1, skip, h->value->shape[1] - skip);
            res = mvt_contiguous(patches);
            mvt_release(patches);
        }
        free(hs);
    }
    mva_tape_reset(mark);
    mva_set_grad_enabled(prev);
    return res;
}

double mvn_vit_flops(const mvn_vit_config *c, int64_t B, int64_t H, int64_t W, int n_blocks) {
    double P = c->patch_size, D = c->hidden_size, hw = (double)(H / c->patch_size) * (double)(W / c->patch_size);
    double N = 1 + c->num_register_tokens + hw, Hd = mvn_config_mlp_hidden(c);
    double embed = 2.0 * hw * (c->num_channels * P * P) * D;
    double attn = 2.0 * N * D * D * 4 + 2.0 * 2.0 * N * N * D;            /* q,k,v,proj + QK^T, PV */
    double ffn = c->use_swiglu_ffn ? 2.0 * N * D * 3 * Hd : 2.0 * N * D * 2 * Hd;
    return (double)B * (embed + n_blocks * (attn + ffn));
}
