/* eam: Epipolar Attention Module (see eam.h for the formulas). */
#include "mvead/method/eam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/error.h"

const char *const mvead_eam_param_names[MVEAD_EAM_NPARAMS] = {
    "ln_w", "ln_b", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"};

/* Field i of the module in mvead_eam_param_names order. */
static mva_var **eam_slot(mvead_eam *m, int i) {
    mva_var **slots[MVEAD_EAM_NPARAMS] = {&m->ln_w, &m->ln_b, &m->wq, &m->bq, &m->wk,
                                          &m->bk,   &m->wv,   &m->bv, &m->wo, &m->bo};
    return slots[i];
}

void mvead_eam_params(const mvead_eam *m, mva_var *out[MVEAD_EAM_NPARAMS]) {
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) out[i] = *eam_slot((mvead_eam *)m, i);
}

static bool param_is_matrix(int i) { return i >= 2 && (i % 2) == 0; }

void mvead_eam_free(mvead_eam *m) {
    if (!m) return;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        mva_var **s = eam_slot(m, i);
        if (*s) mva_leaf_free(*s);
        *s = NULL;
    }
}

static int check_dims(int dim, int heads, mvt_dtype dtype) {
    if (dtype != MVT_F32 && dtype != MVT_F64)
        return mv_error("eam: dtype must be f32 or f64, got %s", mvt_dtype_name(dtype));
    if (dim <= 0 || heads <= 0 || dim % heads != 0)
        return mv_error("eam: channels D = %d must be a positive multiple of heads = %d", dim, heads);
    return 0;
}

int mvead_eam_init_random(mvead_eam *m, int dim, int heads, mvt_dtype dtype, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (check_dims(dim, heads, dtype) < 0) return -1;
    m->dim = dim;
    m->heads = heads;
    m->dtype = dtype;
    mvt_rng rng;
    mvt_rng_seed(&rng, seed);
    /* PyTorch nn.Linear: kaiming_uniform(a = sqrt 5) gives bound 1/sqrt(fan_in)
     * for the weight, and the bias uses the same bound. */
    double bound = 1.0 / sqrt((double)dim);
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        int64_t shape[2] = {dim, dim};
        mvt_tensor *t = mvt_empty(dtype, param_is_matrix(i) ? 2 : 1, shape);
        if (i == 0) mvt_fill(t, 1.0);
        else if (i == 1) mvt_fill(t, 0.0);
        else mvt_fill_uniform(t, &rng, -bound, bound);
        *eam_slot(m, i) = mva_leaf(t, true, mvead_eam_param_names[i]);
    }
    return 0;
}

int mvead_eam_init_copy(mvead_eam *m, int heads, mvt_dtype dtype,
                        const mvead_eam_weights *src, const mvt_tensor *ls_gamma) {
    memset(m, 0, sizeof *m);
    const mvt_tensor *in[MVEAD_EAM_NPARAMS] = {src->ln_w, src->ln_b, src->wq, src->bq, src->wk,
                                               src->bk,   src->wv,   src->bv, src->wo, src->bo};
    if (!src->wq || src->wq->ndim != 2)
        return mv_error("eam copy: query weight missing or not 2-D [D, D]");
    int dim = (int)src->wq->shape[0];
    if (check_dims(dim, heads, dtype) < 0) return -1;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        const mvt_tensor *t = in[i];
        int nd = param_is_matrix(i) ? 2 : 1;
        if (!t) return mv_error("eam copy: tensor %s missing", mvead_eam_param_names[i]);
        bool ok = t->ndim == nd && t->shape[0] == dim && (nd == 1 || t->shape[1] == dim) &&
                  t->dtype != MVT_I64;
        if (!ok) {
            char buf[64];
            return mv_error("eam copy: %s has shape %s, expected %s of D = %d floats",
                            mvead_eam_param_names[i], mvt_shape_str(t, buf, sizeof buf),
                            nd == 2 ? "[D, D]" : "[D]", dim);
        }
    }
    if (ls_gamma && (ls_gamma->ndim != 1 || ls_gamma->shape[0] != dim || ls_gamma->dtype == MVT_I64))
        return mv_error("eam copy: layer scale must be [D = %d] floats", dim);
    m->dim = dim;
    m->heads = heads;
    m->dtype = dtype;
    for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
        mvt_tensor *t = mvt_empty(dtype, in[i]->ndim, in[i]->shape);
        mvt_copy_(t, in[i]);
        if (ls_gamma && i >= 8) {
            /* LayerScale multiplies the output channels: rows of wo and bo. */
            for (int64_t r = 0; r < dim; r++) {
                int64_t ir = r;
                double g = mvt_get(ls_gamma, &ir);
                if (i == 8) {
                    for (int64_t c = 0; c < dim; c++) {
                        int64_t idx[2] = {r, c};
                        mvt_set(t, idx, g * mvt_get(t, idx));
                    }
                } else {
                    mvt_set(t, &ir, g * mvt_get(t, &ir));
                }
            }
        }
        *eam_slot(m, i) = mva_leaf(t, true, mvead_eam_param_names[i]);
    }
    return 0;
}

/* ---- masks ----------------------------------------------------------------- */

mvt_tensor *mvead_attn_mask_from_support(const uint8_t *support, int V, int N, mvt_dtype dt) {
    int64_t VN = (int64_t)V * N;
    int64_t shape[2] = {VN, VN};
    mvt_tensor *M = mvt_zeros(MVT_F64, 2, shape);
    double *m = mvt_f64(M);
    int64_t row_len = (int64_t)(V - 1) * N;
    for (int a = 0; a < V; a++)
        for (int j = 0; j < N; j++) {
            const uint8_t *src = support + ((int64_t)a * N + j) * row_len;
            double *dst = m + ((int64_t)a * N + j) * VN;
            for (int b = 0; b < V; b++) {
                if (b == a) continue;
                int slot = b - (b > a);   /* position of b among the supports of a */
                for (int k = 0; k < N; k++) dst[(int64_t)b * N + k] = src[(int64_t)slot * N + k] ? 1.0 : 0.0;
            }
        }
    if (dt == MVT_F64) return M;
    mvt_tensor *out = mvt_to_dtype(M, dt);
    mvt_release(M);
    return out;
}

mvt_tensor *mvead_attn_mask_full(int V, int N, mvt_dtype dt) {
    int64_t VN = (int64_t)V * N;
    int64_t shape[2] = {VN, VN};
    mvt_tensor *M = mvt_full(dt, 2, shape, 1.0);
    for (int a = 0; a < V; a++)
        for (int j = 0; j < N; j++)
            for (int k = 0; k < N; k++) {
                int64_t idx[2] = {(int64_t)a * N + j, (int64_t)a * N + k};
                mvt_set(M, idx, 0.0);
            }
    return M;
}

/* One sample of the mvas selection: z [V][N][D] (f64, contiguous) -> m [VN][VN].
 * As MVAD's MVAS + TopK: the grid is zero-padded at the bottom/right to a
 * multiple of n_win and cut into n_win x n_win windows of wh x ww cells; a
 * window's descriptor is the mean over its cells, padding included. */
static void mvas_mask_one(const double *z, int V, int N, int D, int h, int w, int n_win, int topk,
                          double *m) {
    int wh = (h + n_win - 1) / n_win, ww = (w + n_win - 1) / n_win, nW = n_win * n_win;
    int n_keys = (V - 1) * nW;
    int64_t VN = (int64_t)V * N;
    if (topk > n_keys) topk = n_keys;
    double *mean = calloc((size_t)V * nW * D, sizeof(double));
    int *win_of = malloc(sizeof(int) * (size_t)N);   /* patch -> its window (raster order) */
    for (int j = 0; j < N; j++) win_of[j] = (j / w / wh) * n_win + (j % w) / ww;
    const double inv_cells = 1.0 / ((double)wh * ww), scale = pow((double)D, -0.5);
    for (int v = 0; v < V; v++) {
        for (int j = 0; j < N; j++) {
            double *dst = mean + ((int64_t)v * nW + win_of[j]) * D;
            const double *src = z + ((int64_t)v * N + j) * D;
            for (int c = 0; c < D; c++) dst[c] += src[c];
        }
        for (int64_t k = 0; k < (int64_t)nW * D; k++) mean[(int64_t)v * nW * D + k] *= inv_cells;
    }
    size_t nk = (size_t)(n_keys > 0 ? n_keys : 1);
    double *logit = malloc(nk * sizeof(double)), *q = malloc(sizeof(double) * (size_t)D);
    uint8_t *keep = malloc(nk);
    memset(m, 0, (size_t)(VN * VN) * sizeof(double));
    for (int a = 0; a < V; a++)
        for (int qw = 0; qw < nW; qw++) {
            /* scaled dot product (q D^-1/2) . k against the windows of all
             * supports b != a jointly, views in increasing order */
            for (int c = 0; c < D; c++) q[c] = mean[((int64_t)a * nW + qw) * D + c] * scale;
            for (int key = 0; key < n_keys; key++) {
                int b = key / nW + (key / nW >= a);
                const double *mk = mean + ((int64_t)b * nW + key % nW) * D;
                double dot = 0;
                for (int c = 0; c < D; c++) dot += q[c] * mk[c];
                logit[key] = dot;
            }
            memset(keep, 0, nk);
            for (int t = 0; t < topk; t++) {   /* one top-k over all keys: largest first, ties to the lower index */
                int best = -1;
                for (int key = 0; key < n_keys; key++)
                    if (!keep[key] && (best < 0 || logit[key] > logit[best])) best = key;
                keep[best] = 1;
            }
            /* every patch of the query window keeps every real patch of the kept windows */
            for (int j = 0; j < N; j++) {
                if (win_of[j] != qw) continue;
                double *row = m + ((int64_t)a * N + j) * VN;
                for (int key = 0; key < n_keys; key++) {
                    if (!keep[key]) continue;
                    int b = key / nW + (key / nW >= a);
                    for (int k = 0; k < N; k++)
                        if (win_of[k] == key % nW) row[(int64_t)b * N + k] = 1.0;
                }
            }
        }
    free(logit);
    free(q);
    free(keep);
    free(mean);
    free(win_of);
}

mvt_tensor *mvead_attn_mask_mvas(const mvt_tensor *Z, int h, int w, int win, int topk, mvt_dtype dt) {
    MVT_ASSERT(Z->ndim == 3 || Z->ndim == 4, "mvas mask: Z must be [V,N,D] or [B,V,N,D]");
    int batched = Z->ndim == 4;
    int64_t B = batched ? Z->shape[0] : 1;
    int V = (int)Z->shape[batched], N = (int)Z->shape[batched + 1], D = (int)Z->shape[batched + 2];
    MVT_ASSERT((int64_t)h * w == N, "mvas mask: grid %d x %d does not match N = %d", h, w, N);
    MVT_ASSERT(win >= 1 && topk >= 1, "mvas mask: window count and topk must be >= 1");
    int64_t VN = (int64_t)V * N;
    mvt_tensor *z64 = mvt_empty(MVT_F64, Z->ndim, Z->shape);
    mvt_copy_(z64, Z);
    int64_t shape4[4] = {B, 1, VN, VN}, shape2[2] = {VN, VN};
    mvt_tensor *M = batched ? mvt_empty(MVT_F64, 4, shape4) : mvt_empty(MVT_F64, 2, shape2);
    const double *zd = mvt_f64(z64);
    double *md = mvt_f64(M);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B; i++)
        mvas_mask_one(zd + i * VN * D, V, N, D, h, w, win, topk, md + i * VN * VN);
    mvt_release(z64);
    if (dt == MVT_F64) return M;
    mvt_tensor *out = mvt_to_dtype(M, dt);
    mvt_release(M);
    return out;
}

/* ---- forward --------------------------------------------------------------- */

mva_var *mvead_eam_forward(const mvead_eam *m, mva_var *Z, const mvt_tensor *mask) {
    return mvead_eam_forward_attn(m, Z, mask, MVEAD_ATTN_DENSE, false, NULL);
}

/* ---- the sparse path ------------------------------------------------------------ */

static const char *const attention_names[MVEAD_ATTN_COUNT] = {
#define MVEAD_ATTN_NAME(id, name) name,
    MVEAD_ATTENTIONS(MVEAD_ATTN_NAME)
#undef MVEAD_ATTN_NAME
};

int mvead_attention_parse(const char *s, mvead_attention *out) {
    for (int i = 0; i < MVEAD_ATTN_COUNT; i++)
        if (s && strcmp(s, attention_names[i]) == 0) { *out = (mvead_attention)i; return 0; }
    return mv_error("attention: unknown '%s' (expected one of %s)", s ? s : "(null)", MVEAD_ATTENTION_CHOICES);
}

const char *mvead_attention_name(mvead_attention a) {
    return (unsigned)a < MVEAD_ATTN_COUNT ? attention_names[a] : "?";
}

/* Indexes of the last few masks. A mask is recognised by identity (the entry
 * holds a reference, so the address cannot be reused by another tensor) and
 * by a hash of its bytes (a mask edited in place gets a new index). Building
 * the index reads the whole mask twice; the hash reads it once. */
#define INDEX_CACHE 4
static struct {
    mvt_tensor *mask, *index;
    uint64_t hash;
} index_cache[INDEX_CACHE];

static uint64_t mask_hash(const mvt_tensor *mask) {
    mvt_tensor *c = mvt_contiguous(mask);
    const uint8_t *p = mvt_data(c);
    size_t n = (size_t)mvt_numel(c) * mvt_dtype_size(c->dtype), i = 0;
    uint64_t h = 1469598103934665603ULL ^ n;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ULL;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    mvt_release(c);
    return h;
}

/* The index of mask (a new reference). */
static mvt_tensor *index_for(const mvt_tensor *mask, bool cache) {
    if (!cache) return mva_attn_index(mask);
    uint64_t h = mask_hash(mask);
    for (int i = 0; i < INDEX_CACHE; i++)
        if (index_cache[i].mask == mask && index_cache[i].hash == h) return mvt_retain(index_cache[i].index);
    /* evict the oldest (the last slot), newest first */
    mvt_release(index_cache[INDEX_CACHE - 1].mask);
    mvt_release(index_cache[INDEX_CACHE - 1].index);
    memmove(&index_cache[1], &index_cache[0], sizeof index_cache[0] * (INDEX_CACHE - 1));
    index_cache[0].mask = mvt_retain((mvt_tensor *)mask);
    index_cache[0].index = mva_attn_index(mask);
    index_cache[0].hash = h;
    return mvt_retain(index_cache[0].index);
}

mva_var *mvead_eam_forward_attn(const mvead_eam *m, mva_var *Z, const mvt_tensor *mask, mvead_attention att,
                                bool cache_index, mvead_eam_trace *trace) {
    const mvt_tensor *z = Z->value;
    MVT_ASSERT(z->ndim == 3 || z->ndim == 4, "eam: Z must be [V,N,D] or [B,V,N,D]");
    int batched = z->ndim == 4;
    int64_t B = batched ? z->shape[0] : 1;
    int64_t V = z->shape[batched], N = z->shape[batched + 1], D = z->shape[batched + 2];
    int64_t H = m->heads, d = D / H, VN = V * N;
    MVT_ASSERT(D == m->dim, "eam: Z has %lld channels, module has %d", (long long)D, m->dim);
    MVT_ASSERT(mask && mask->shape[mask->ndim - 1] == VN && mask->shape[mask->ndim - 2] == VN,
               "eam: mask must be [VN, VN] or [B, 1, VN, VN] with VN = %lld", (long long)VN);
    int64_t s3[3] = {B, VN, D};
    mva_var *z3 = mva_reshape(Z, 3, s3);
    /* [B, VN, D] each, heads side by side in the channels as the sparse op wants them */
    mva_var *q, *k, *v, *a;
    if (att == MVEAD_ATTN_DENSE) {
        mva_var *y = mva_layernorm(z3, m->ln_w, m->ln_b, MVEAD_EAM_LN_EPS);
        q = mva_linear(y, m->wq, m->bq);
        k = mva_linear(y, m->wk, m->bk);
        v = mva_linear(y, m->wv, m->bv);
    } else {
        /* one op: its backward skips d(LN output) when Z needs no gradient */
        mva_var *w[3] = {m->wq, m->wk, m->wv}, *b[3] = {m->bq, m->bk, m->bv};
        mva_var *qkv = mva_layernorm_linears(z3, m->ln_w, m->ln_b, MVEAD_EAM_LN_EPS, 3, w, b);   /* [3, B, VN, D] */
        q = mva_select(qkv, 0, 0);
        k = mva_select(qkv, 0, 1);
        v = mva_select(qkv, 0, 2);
    }
    if (att == MVEAD_ATTN_DENSE) {
        int64_t s4[4] = {B, VN, H, d};
        int to_heads[4] = {0, 2, 1, 3};
        mva_var *qh = mva_permute(mva_reshape(mva_scale(q, 1.0 / sqrt((double)d)), 4, s4), to_heads);
        mva_var *kh = mva_permute(mva_reshape(k, 4, s4), to_heads), *vh = mva_permute(mva_reshape(v, 4, s4), to_heads);
        mva_var *o = mva_matmul(mva_softmax(mva_matmul(qh, mva_transpose(kh, 2, 3)), mask), vh);   /* empty rows stay zero */
        a = mva_reshape(mva_contiguous(mva_permute(o, to_heads)), 3, s3);
    } else {
        mvt_tensor *index = index_for(mask, cache_index);
        a = mva_sparse_attention(q, k, v, index, (int)H, 1.0 / sqrt((double)d));   /* [B, VN, D] */
        mvt_release(index);   /* the node keeps its own reference */
    }
    mva_var *out3 = mva_add(z3, mva_linear(a, m->wo, m->bo));
    if (trace) *trace = (mvead_eam_trace){z3, q, k, v, out3};
    return mva_reshape(out3, z->ndim, z->shape);
}

void mvead_fusion_opts_default(mvead_fusion_opts *o) {
    memset(o, 0, sizeof *o);
    o->mode = MVEAD_FUSION_EAM;
    o->mvas_window = 6;   /* MVAD's n_win and top-k at its 16 x 16 level */
    o->mvas_topk = 4;
    o->attention = MVEAD_ATTN_SPARSE;
}

/* ---- fusion modes (rows of MVEAD_FUSION_MODES) ---------------------------------- */

/* A mode's mask: from the support mask (static modes; Z NULL) or from Z
 * (per-call modes; support NULL). V, N: the grid of one sample. */
typedef mvt_tensor *fusion_mask_fn(const mvead_fusion_opts *o, const uint8_t *support, const mvt_tensor *Z,
                                   int V, int N, mvt_dtype dt);

static mvt_tensor *fusion_mask_full(const mvead_fusion_opts *o, const uint8_t *support, const mvt_tensor *Z,
                                    int V, int N, mvt_dtype dt) {
    (void)o, (void)support, (void)Z;
    return mvead_attn_mask_full(V, N, dt);
}

static mvt_tensor *fusion_mask_eam(const mvead_fusion_opts *o, const uint8_t *support, const mvt_tensor *Z,
                                   int V, int N, mvt_dtype dt) {
    (void)o, (void)Z;
    if (!support) { mv_error("fusion eam: no epipolar support mask given"); return NULL; }
    return mvead_attn_mask_from_support(support, V, N, dt);
}

static mvt_tensor *fusion_mask_mvas(const mvead_fusion_opts *o, const uint8_t *support, const mvt_tensor *Z,
                                    int V, int N, mvt_dtype dt) {
    (void)support, (void)V, (void)N;
    return mvead_attn_mask_mvas(Z, o->h, o->w, o->mvas_window, o->mvas_topk, dt);
}

static const struct {
    const char *name;
    fusion_mask_fn *mask;
    bool per_call, epipolar;
} fusion_modes[MVEAD_FUSION_COUNT] = {
#define MVEAD_FUSION_ROW(id, name, mask, per_call, epipolar) {name, mask, per_call, epipolar},
    MVEAD_FUSION_MODES(MVEAD_FUSION_ROW)
#undef MVEAD_FUSION_ROW
};

int mvead_fusion_parse(const char *s, mvead_fusion *out) {
    for (int i = 0; i < MVEAD_FUSION_COUNT; i++)
        if (s && strcmp(s, fusion_modes[i].name) == 0) { *out = (mvead_fusion)i; return 0; }
    return mv_error("fusion: unknown mode '%s' (expected one of %s)", s ? s : "(null)", MVEAD_FUSION_CHOICES);
}

const char *mvead_fusion_name(mvead_fusion f) {
    return (unsigned)f < MVEAD_FUSION_COUNT ? fusion_modes[f].name : "?";
}

bool mvead_fusion_attends(mvead_fusion f) { return (unsigned)f < MVEAD_FUSION_COUNT && fusion_modes[f].mask; }
bool mvead_fusion_needs_calibration(mvead_fusion f) { return (unsigned)f < MVEAD_FUSION_COUNT && fusion_modes[f].epipolar; }
bool mvead_fusion_per_call(mvead_fusion f) { return (unsigned)f < MVEAD_FUSION_COUNT && fusion_modes[f].per_call; }

mvt_tensor *mvead_fusion_static_mask(const mvead_fusion_opts *o, const uint8_t *support,
                                     int V, int N, mvt_dtype dt) {
    if (!mvead_fusion_attends(o->mode) || mvead_fusion_per_call(o->mode)) return NULL;
    return fusion_modes[o->mode].mask(o, support, NULL, V, N, dt);
}

mvt_tensor *mvead_fusion_call_mask(const mvead_fusion_opts *o, const mvt_tensor *Z, mvt_dtype dt) {
    if (!mvead_fusion_per_call(o->mode)) {
        mv_error("fusion %s: its mask does not depend on Z", mvead_fusion_name(o->mode));
        return NULL;
    }
    int64_t V = Z->shape[Z->ndim - 3], N = Z->shape[Z->ndim - 2];
    return fusion_modes[o->mode].mask(o, NULL, Z, (int)V, (int)N, dt);
}

mva_var *mvead_fuse(const mvead_eam *m, const mvead_fusion_opts *o, mva_var *Z,
                    const mvt_tensor *static_mask) {
    if (!mvead_fusion_attends(o->mode)) return Z;
    if (!mvead_fusion_per_call(o->mode)) return mvead_eam_forward_attn(m, Z, static_mask, o->attention, true, NULL);
    /* a mask made for this call: its index is not worth remembering */
    mvt_tensor *mask = mvead_fusion_call_mask(o, Z->value, m->dtype);
    mva_var *out = mvead_eam_forward_attn(m, Z, mask, o->attention, false, NULL);
    mvt_release(mask);   /* neither attention's backward needs it */
    return out;
}

/* x [M, D] W^T + b, plain kernels. */
static mvt_tensor *plain_linear(const mvt_tensor *x, const mvt_tensor *w, const mvt_tensor *b) {
    mvt_tensor *wt = mvt_transpose(w, 0, 1);
    mvt_tensor *y = mvt_matmul(x, wt);
    mvt_tensor *out = mvt_add(y, b);
    mvt_release(wt);
    mvt_release(y);
    return out;
}

mvt_tensor *mvead_eam_attention(const mvead_eam *m, const mvt_tensor *Z, const mvt_tensor *mask,
                                int view, int patch) {
    MVT_ASSERT(Z->ndim == 3, "eam attention: Z must be [V, N, D]");
    int64_t V = Z->shape[0], N = Z->shape[1], D = Z->shape[2], H = m->heads, d = D / H;
    int64_t VN = V * N, r = (int64_t)view * N + patch;
    MVT_ASSERT(view >= 0 && view < V && patch >= 0 && patch < N, "eam attention: bad query");
    MVT_ASSERT(mask->ndim == 2 && mask->shape[0] == VN && mask->shape[1] == VN,
               "eam attention: mask must be [VN, VN]");
    int64_t s2[2] = {VN, D};
    mvt_tensor *zc = mvt_empty(m->dtype, 3, Z->shape);
    mvt_copy_(zc, Z);
    mvt_tensor *z2 = mvt_reshape(zc, 2, s2);
    mvt_tensor *y = mvt_layernorm(z2, m->ln_w->value, m->ln_b->value, MVEAD_EAM_LN_EPS, NULL, NULL);
    mvt_tensor *yr = mvt_narrow(y, 0, r, 1);
    mvt_tensor *q = plain_linear(yr, m->wq->value, m->bq->value);     /* [1, D] */
    mvt_tensor *k = plain_linear(y, m->wk->value, m->bk->value);      /* [VN, D] */
    int64_t sq[3] = {1, H, d}, sk[3] = {VN, H, d};
    int pq[3] = {1, 0, 2}, pk[3] = {1, 2, 0};
    mvt_tensor *q3r = mvt_reshape(q, 3, sq), *k3r = mvt_reshape(k, 3, sk);
    mvt_tensor *q3 = mvt_permute(q3r, pq);                            /* [H, 1, d] */
    mvt_tensor *k3 = mvt_permute(k3r, pk);                            /* [H, d, VN] */
    mvt_tensor *s = mvt_matmul(q3, k3);                               /* [H, 1, VN] */
    mvt_tensor *ss = mvt_scale(s, 1.0 / sqrt((double)d));
    mvt_tensor *mrow = mvt_narrow(mask, 0, r, 1);                     /* [1, VN] */
    mvt_tensor *p = mvt_softmax(ss, mrow);
    mvt_tensor *out = mvt_reshape(p, 3, (int64_t[]){H, V, N});
    mvt_tensor *tmp[] = {zc, z2, y, yr, q, k, q3r, k3r, q3, k3, s, ss, mrow, p};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mvt_release(tmp[i]);
    return out;
}
