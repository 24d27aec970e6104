/* objective: MCP / MCP+Reg / DeepSVDD losses and centre initialisation (see objective.h). */
#include "mvead/method/objective.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mvead/scoring/kmeans.h"
#include "tensor/error.h"

/* Inside the square roots: keeps the gradient finite when a feature sits
 * exactly on a centre; far below any distance that matters. */
#define MVEAD_DIST_EPS 1e-24

void mvead_objective_opts_default(mvead_objective_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = MVEAD_OBJ_MCP_REG;
    o->K = 20;
    o->n_k = 1;
    o->lambda = 0.1;
    o->lloyd_iters = 50;
}

static const char *const objective_names[MVEAD_OBJ_COUNT] = {
#define MVEAD_OBJ_NAME(id, name) name,
    MVEAD_OBJECTIVES(MVEAD_OBJ_NAME)
#undef MVEAD_OBJ_NAME
};

int mvead_objective_parse(const char *s, mvead_objective_kind *out) {
    for (int i = 0; i < MVEAD_OBJ_COUNT; i++)
        if (s && strcmp(s, objective_names[i]) == 0) { *out = (mvead_objective_kind)i; return 0; }
    return mv_error("objective: unknown '%s' (expected one of %s)", s ? s : "(null)", MVEAD_OBJECTIVE_CHOICES);
}

const char *mvead_objective_name(mvead_objective_kind k) {
    return (unsigned)k < MVEAD_OBJ_COUNT ? objective_names[k] : "?";
}

/* centers converted to dt (new reference). */
static mvt_tensor *centers_as(const mvt_tensor *centers, mvt_dtype dt) {
    mvt_tensor *c = mvt_empty(dt, centers->ndim, centers->shape);
    mvt_copy_(c, centers);
    return c;
}

mva_var *mvead_multi_center_loss(mva_var *O, const mvt_tensor *centers) {
    const mvt_tensor *o = O->value;
    MVT_ASSERT(o->ndim == 3 || o->ndim == 4, "multi-centre loss: O must be [B,V,N,D] or [V,N,D]");
    int batched = o->ndim == 4;
    int64_t B = batched ? o->shape[0] : 1;
    int64_t V = o->shape[batched], N = o->shape[batched + 1], D = o->shape[batched + 2];
    MVT_ASSERT(centers->ndim == 3 && centers->shape[0] == V && centers->shape[2] == D,
               "multi-centre loss: centres must be [V, K, D]");
    int64_t s4[4] = {B, V, N, D}, s2[2] = {B * N, D};
    mva_var *o4 = mva_reshape(O, 4, s4);
    mvt_tensor *c = centers_as(centers, o->dtype);
    mva_var **per_view = malloc((size_t)V * sizeof *per_view);
    for (int64_t v = 0; v < V; v++) {
        /* squared distances through GEMM, then min over the centres, then one sqrt
         * (sqrt is monotone, so min_k sqrt = sqrt min_k). */
        mva_var *ov = mva_reshape(mva_contiguous(mva_select(o4, 1, v)), 2, s2);   /* [BN, D] */
        mvt_tensor *cv = mvt_select(c, 0, v);                                       /* [K, D] */
        mva_var *sq = mva_pairwise_sqdist(ov, mva_const(cv));                       /* [BN, K] */
        per_view[v] = mva_min(sq, 1, false);                                        /* [BN] */
    }
    mva_var *all = mva_concat(per_view, (int)V, 0);                                 /* [V BN] */
    mva_var *dist = mva_sqrt(mva_add_scalar(all, MVEAD_DIST_EPS));
    free(per_view);
    mvt_release(c);
    return mva_mean_all(dist);
}

mva_var *mvead_negative_loss(mva_var *negs, const int64_t *views, const mvt_tensor *centers) {
    const mvt_tensor *z = negs->value;
    MVT_ASSERT(z->ndim == 2, "negative loss: negs must be [M, D]");
    int64_t M = z->shape[0], D = z->shape[1];
    MVT_ASSERT(centers->ndim == 3 && centers->shape[2] == D, "negative loss: centres must be [V, K, D]");
    mvt_tensor *c = centers_as(centers, z->dtype);
    mvt_tensor *idx = mvt_empty(MVT_I64, 1, &M);
    for (int64_t i = 0; i < M; i++) {
        MVT_ASSERT(views[i] >= 0 && views[i] < centers->shape[0], "negative loss: view out of range");
        mvt_i64(idx)[i] = views[i];
    }
    mvt_tensor *cg = mvt_index_select(c, 0, idx);                   /* [M, K, D] */
    int64_t s3[3] = {M, 1, D};
    mva_var *diff = mva_sub(mva_reshape(negs, 3, s3), mva_const(cg));
    mva_var *nrm = mva_norm(diff, 2, false, MVEAD_DIST_EPS);        /* [M, K] */
    mva_var *lg = mva_log(mva_mean(nrm, 1, false));                 /* [M] */
    mvt_release(c);
    mvt_release(idx);
    return mva_neg(mva_sum_all(lg));
}

void mvead_draw_negatives(mvt_rng *rng, int B, int V, int N, int64_t *neg_view, int64_t *neg_patch) {
    for (int i = 0; i < B; i++) {
        /* integer draws from the top bits: uniform up to 2^-64 bias */
        neg_view[i] = (int64_t)(mvt_rng_uniform(rng) * V);
        neg_patch[i] = (int64_t)(mvt_rng_uniform(rng) * N);
        if (neg_view[i] >= V) neg_view[i] = V - 1;
        if (neg_patch[i] >= N) neg_patch[i] = N - 1;
    }
}

int mvead_objective_forward(const mvead_objective_opts *o, const mvead_eam *m,
                            const mvead_fusion_opts *f, mva_var *Z, const mvt_tensor *static_mask,
                            const mvt_tensor *centers, const int64_t *neg_view,
                            const int64_t *neg_patch, mvead_loss *out) {
    memset(out, 0, sizeof *out);
    if (o->kind == MVEAD_OBJ_NONE) return mv_error("objective: kind 'none' has no loss to compute");
    const mvt_tensor *z = Z->value;
    if (z->ndim != 4) return mv_error("objective: Z must be [B, V, N, D]");
    int64_t B = z->shape[0], V = z->shape[1], N = z->shape[2], D = z->shape[3];
    if (!centers || centers->ndim != 3 || centers->shape[0] != V || centers->shape[2] != D)
        return mv_error("objective: centres must be [V = %lld, K, D = %lld]", (long long)V, (long long)D);
    if (o->kind == MVEAD_OBJ_DEEPSVDD && centers->shape[1] != 1)
        return mv_error("objective: deepsvdd expects one centre per view, got %lld", (long long)centers->shape[1]);

    mva_var *O = mvead_fuse(m, f, Z, static_mask);
    out->O = O;
    out->pos = mvead_multi_center_loss(O, centers);
    out->total = out->pos;
    if (o->kind != MVEAD_OBJ_MCP_REG) return 0;

    if (!neg_view || !neg_patch) return mv_error("objective: mcp_reg needs the drawn (view, patch) per sample");
    int n_k = o->n_k < 0 ? 0 : (o->n_k > N ? (int)N : o->n_k);
    for (int64_t i = 0; i < B; i++)
        if (neg_view[i] < 0 || neg_view[i] >= V || neg_patch[i] < 0 || neg_patch[i] >= N)
            return mv_error("objective: negative (view %lld, patch %lld) of sample %lld out of range",
                            (long long)neg_view[i], (long long)neg_patch[i], (long long)i);

    /* Zm = Z with Z_i[b_i, k_i] = 0 for every sample: one batched EAM pass. */
    int64_t sk[4] = {B, V, N, 1};
    mvt_tensor *keep = mvt_full(z->dtype, 4, sk, 1.0);
    for (int64_t i = 0; i < B; i++) {
        int64_t idx[4] = {i, neg_view[i], neg_patch[i], 0};
        mvt_set(keep, idx, 0.0);
    }
    mva_var *Zm = mva_mul(Z, mva_const(keep));   /* the const owns keep */
    mva_var *Om = mvead_fuse(m, f, Zm, static_mask);

    /* No-grad selection of the most altered patches per other view. */
    int64_t M = B * (1 + (V - 1) * n_k);
    mvt_tensor *idx = mvt_empty(MVT_I64, 1, &M);
    int64_t *views = malloc((size_t)M * sizeof *views);
    mvt_tensor *o64 = mvt_empty(MVT_F64, 4, z->shape);
    mvt_tensor *om64 = mvt_empty(MVT_F64, 4, z->shape);
    mvt_copy_(o64, O->value);
    mvt_copy_(om64, Om->value);
    const double *od = mvt_f64(o64), *omd = mvt_f64(om64);
    double *change = malloc((size_t)N * sizeof *change);
    uint8_t *taken = malloc((size_t)N);
    int64_t *ix = mvt_i64(idx), n = 0;
    for (int64_t i = 0; i < B; i++) {
        int64_t b = neg_view[i];
        ix[n] = (i * V + b) * N + neg_patch[i];
        views[n++] = b;
        for (int64_t a = 0; a < V; a++) {
            if (a == b) continue;
            const double *x = od + (i * V + a) * N * D, *y = omd + (i * V + a) * N * D;
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t c = 0; c < D; c++) { double t = x[j * D + c] - y[j * D + c]; s += t * t; }
                change[j] = sqrt(s);
            }
            memset(taken, 0, (size_t)N);
            for (int r = 0; r < n_k; r++) {
                int64_t best = -1;
                for (int64_t j = 0; j < N; j++)   /* strict > keeps the lower index on ties */
                    if (!taken[j] && (best < 0 || change[j] > change[best])) best = j;
                taken[best] = 1;
                ix[n] = (i * V + a) * N + best;
                views[n++] = a;
            }
        }
    }
    int64_t sflat[2] = {B * V * N, D};
    mva_var *negs = mva_index_select(mva_reshape(Om, 2, sflat), 0, idx);   /* [M, D] */
    mva_var *neg_sum = mvead_negative_loss(negs, views, centers);
    out->neg = mva_scale(neg_sum, 1.0 / (double)B);
    out->total = mva_add(out->pos, mva_scale(out->neg, o->lambda));

    free(change);
    free(taken);
    free(views);
    mvt_release(o64);
    mvt_release(om64);
    mvt_release(idx);
    return 0;
}

/* ---- centres ------------------------------------------------------------------ */

/* x is [V][M][D] of dtype dt (F32 or F64); view v is converted to float64 on
 * its own, so the extra memory is one view's. */
static mvt_tensor *centers_init(mvead_objective_kind kind, const void *x, mvt_dtype dt, int64_t V, int64_t M, int64_t D,
                                int K, int iters, uint64_t seed) {
    if (kind == MVEAD_OBJ_DEEPSVDD) K = 1;
    if (K < 1 || M < K) {
        mv_error("centres: need at least K = %d training patches per view, got %lld", K, (long long)M);
        return NULL;
    }
    int64_t cs[3] = {V, K, D};
    mvt_tensor *C = mvt_zeros(MVT_F64, 3, cs);
    double *xv = malloc(sizeof(double) * (size_t)(M * D > 0 ? M * D : 1));
    if (!C || !xv) {
        mvt_release(C);
        free(xv);
        mv_error("centres: out of memory for one view's %lld x %lld features in float64", (long long)M, (long long)D);
        return NULL;
    }
    double *cd = mvt_f64(C);
    for (int64_t v = 0; v < V; v++) {
        size_t n = (size_t)(M * D);
        if (dt == MVT_F64) memcpy(xv, (const double *)x + (size_t)v * n, sizeof(double) * n);
        else
            for (size_t k = 0; k < n; k++) xv[k] = ((const float *)x)[(size_t)v * n + k];
        double *cv = cd + v * K * D;
        if (kind == MVEAD_OBJ_DEEPSVDD) {
            for (int64_t i = 0; i < M; i++)
                for (int64_t d = 0; d < D; d++) cv[d] += xv[i * D + d];
            for (int64_t d = 0; d < D; d++) cv[d] /= (double)M;
        } else if (mvs_kmeans_f64(xv, M, D, K, iters, seed + (uint64_t)v, cv, NULL) < 0) {
            free(xv);
            mvt_release(C);
            mv_error_prefix("centres of view %lld", (long long)v);
            return NULL;
        }
    }
    free(xv);
    return C;
}

mvt_tensor *mvead_centers_init(mvead_objective_kind kind, const mvt_tensor *feats, int K, int iters,
                               uint64_t seed) {
    if (!feats || feats->ndim != 3 || feats->dtype == MVT_I64) {
        mv_error("centres: features must be [V, M, D] floats");
        return NULL;
    }
    mvt_tensor *x = mvt_contiguous(feats);
    if (!x) return NULL;
    mvt_tensor *C = centers_init(kind, x->dtype == MVT_F64 ? (const void *)mvt_f64(x) : (const void *)mvt_f32(x), x->dtype,
                                 x->shape[0], x->shape[1], x->shape[2], K, iters, seed);
    mvt_release(x);
    return C;
}

mvt_tensor *mvead_centers_init_f32(mvead_objective_kind kind, const float *feats, int64_t V, int64_t M, int64_t D,
                                   int K, int iters, uint64_t seed) {
    return centers_init(kind, feats, MVT_F32, V, M, D, K, iters, seed);
}
