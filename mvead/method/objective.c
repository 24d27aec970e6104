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

/* ---- negatives ------------------------------------------------------------------ */

/* change[j] = ||x_j - y_j||_2 for the N rows of D channels (float64). */
static void row_changes(const double *x, const double *y, int64_t N, int64_t D, double *change) {
    for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t c = 0; c < D; c++) { double t = x[j * D + c] - y[j * D + c]; s += t * t; }
        change[j] = sqrt(s);
    }
}

/* THE selection rule (both paths): the n_k rows of largest change, largest
 * first, ties to the lower index, written as base + j into out[0..n_k). */
static void select_most_altered(const double *change, int64_t N, int n_k, int64_t base, int64_t *out) {
    uint8_t *taken = calloc((size_t)N, 1);
    MVT_ASSERT(taken != NULL, "objective: out of memory");
    for (int r = 0; r < n_k; r++) {
        int64_t best = -1;
        for (int64_t j = 0; j < N; j++)   /* strict > keeps the lower index on ties */
            if (!taken[j] && (best < 0 || change[j] > change[best])) best = j;
        taken[best] = 1;
        out[r] = base + best;
    }
    free(taken);
}

/* ||a_ra - b_rb||_2 of two rows of D floats of contiguous tensors (f32 or f64),
 * in float64 as row_changes: float to double is exact, so the same value. */
static double row_dist(const mvt_tensor *a, int64_t ra, const mvt_tensor *b, int64_t rb, int64_t D) {
    double s = 0;
    for (int64_t c = 0; c < D; c++) {
        double x = a->dtype == MVT_F32 ? mvt_f32(a)[ra * D + c] : mvt_f64(a)[ra * D + c];
        double y = b->dtype == MVT_F32 ? mvt_f32(b)[rb * D + c] : mvt_f64(b)[rb * D + c];
        s += (x - y) * (x - y);
    }
    return sqrt(s);
}

/* Attention of m query rows over u keys through the plain ops: qr [m, D],
 * ku, vu [u, D], mask [m, u] (nonzero = keep) -> [m, D], heads side by side. */
static mva_var *rows_attention(mva_var *qr, mva_var *ku, mva_var *vu, const mvt_tensor *mask, int64_t H) {
    int64_t m = qr->value->shape[0], u = ku->value->shape[0], D = qr->value->shape[1], d = D / H;
    int64_t sq[3] = {m, H, d}, sk[3] = {u, H, d}, s2[2] = {m, D};
    int to_heads[3] = {1, 0, 2};   /* [rows, H, d] <-> [H, rows, d] */
    mva_var *qh = mva_permute(mva_reshape(mva_scale(qr, 1.0 / sqrt((double)d)), 3, sq), to_heads);
    mva_var *kh = mva_permute(mva_reshape(ku, 3, sk), to_heads), *vh = mva_permute(mva_reshape(vu, 3, sk), to_heads);
    mva_var *a = mva_softmax(mva_matmul(qh, mva_transpose(kh, 1, 2)), mask);    /* [H, m, u] */
    return mva_reshape(mva_contiguous(mva_permute(mva_matmul(a, vh), to_heads)), 2, s2);
}

/* The incremental negative pass. Zm differs from Z in one row r* = b N + k
 * per sample, and LayerNorm and the projections act per row, so Zm's q, k, v
 * are the first pass's except in row r*. Om can differ from O only in r*
 * and in the rows whose mask keeps r*: only those are computed, and the
 * graph is recorded only for the negatives selected among them. */
typedef struct {
    const mvead_eam *m;
    int64_t B, T, D, H;
    mva_var *q2, *k2, *v2, *z2;   /* [B T, D]: the first pass's rows */
    mva_var *qx, *kx, *vx, *zx;   /* [B, D]: sample i's changed row r* (row i) */
    const void *mask;             /* [T, T] contiguous */
    mvt_dtype mdt;
} inc_ctx;

/* Rows list[0..n) of sample i as one var: the first pass's rows from main
 * (row i T + r) with r* taken from extra (row i) and placed last; pos[t] is the
 * place of list[t] in the result. No copy of the whole first pass. */
static mva_var *gather_rows(const inc_ctx *c, mva_var *main, mva_var *extra, int64_t i, int64_t rs,
                            const int64_t *list, int64_t n, int64_t *pos) {
    int64_t na = 0, has = 0;
    for (int64_t t = 0; t < n; t++) {
        na += list[t] != rs;
        has |= list[t] == rs;
    }
    mva_var *parts[2];
    int np = 0;
    if (na > 0) {
        mvt_tensor *id = mvt_empty(MVT_I64, 1, &na);
        for (int64_t t = 0, a = 0; t < n; t++)
            if (list[t] != rs) { mvt_i64(id)[a] = i * c->T + list[t]; pos[t] = a++; }
        parts[np++] = mva_index_select(main, 0, id);
        mvt_release(id);
    }
    if (has) {
        int64_t one = 1;
        mvt_tensor *id = mvt_empty(MVT_I64, 1, &one);
        mvt_i64(id)[0] = i;
        parts[np++] = mva_index_select(extra, 0, id);
        mvt_release(id);
        for (int64_t t = 0; t < n; t++)
            if (list[t] == rs) pos[t] = na;
    }
    return np == 1 ? parts[0] : mva_concat(parts, np, 0);
}

static inline bool keeps(const inc_ctx *c, int64_t r, int64_t j) {
    int64_t o = r * c->T + j;
    return c->mdt == MVT_F32 ? ((const float *)c->mask)[o] != 0 : ((const double *)c->mask)[o] != 0;
}

/* Om rows[0..n) of sample i (changed row rs): Zm[r] + attention of q'_r over
 * the keys r keeps (row rs of K, V replaced) Wo^T + bo. A graph in grad mode. */
static mva_var *om_rows(const inc_ctx *c, int64_t i, int64_t rs, const int64_t *rows, int64_t n) {
    int64_t T = c->T;
    uint8_t *in = calloc((size_t)T, 1);
    int64_t *keys = malloc(sizeof(int64_t) * (size_t)T), u = 0;
    int64_t *qpos = malloc(sizeof(int64_t) * (size_t)n), *kpos = malloc(sizeof(int64_t) * (size_t)T);
    MVT_ASSERT(in && keys && qpos && kpos, "objective: out of memory");
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < T; j++) in[j] |= keeps(c, rows[r], j);
    for (int64_t j = 0; j < T; j++)
        if (in[j]) keys[u++] = j;
    if (u == 0) keys[u++] = 0;   /* no kept key at all: one masked column keeps the shapes non-empty */
    mva_var *qr = gather_rows(c, c->q2, c->qx, i, rs, rows, n, qpos);
    mva_var *zr = gather_rows(c, c->z2, c->zx, i, rs, rows, n, qpos);
    mva_var *ku = gather_rows(c, c->k2, c->kx, i, rs, keys, u, kpos);
    mva_var *vu = gather_rows(c, c->v2, c->vx, i, rs, keys, u, kpos);
    /* the mask in the gathered order: query qpos[r], key kpos[j] */
    int64_t ms[2] = {n, u};
    mvt_tensor *mask = mvt_zeros(MVT_F64, 2, ms), *back = mvt_empty(MVT_I64, 1, &n);
    for (int64_t r = 0; r < n; r++) {
        mvt_i64(back)[r] = qpos[r];
        for (int64_t j = 0; j < u; j++) mvt_f64(mask)[qpos[r] * u + kpos[j]] = keeps(c, rows[r], keys[j]);
    }
    mva_var *att = rows_attention(qr, ku, vu, mask, c->H);
    mva_var *om = mva_add(zr, mva_linear(att, c->m->wo, c->m->bo));
    bool ordered = true;   /* r* was already last (or absent): no reordering */
    for (int64_t r = 0; r < n; r++) ordered = ordered && qpos[r] == r;
    if (!ordered) om = mva_index_select(om, 0, back);
    mvt_release(mask);
    mvt_release(back);
    free(in);
    free(keys);
    free(qpos);
    free(kpos);
    return om;
}

/* [B T, D] view of a [B, T, D] var. */
static mva_var *flat_rows(mva_var *x) {
    int64_t s2[2] = {x->value->shape[0] * x->value->shape[1], x->value->shape[2]};
    return mva_reshape(x, 2, s2);
}

/* Negatives [M, D] of the batch in the dense path's order (rows ix, views),
 * from the first pass's trace; mask [VN, VN]. */
static mva_var *incremental_negatives(const mvead_eam *m, const mvead_eam_trace *tr, const mvt_tensor *static_mask,
                                      int64_t V, const int64_t *neg_view, const int64_t *neg_patch, int n_k,
                                      int64_t *ix, int64_t *views) {
    const mvt_tensor *q = tr->q->value;
    int64_t B = q->shape[0], T = q->shape[1], D = q->shape[2], N = T / V, per = 1 + (V - 1) * n_k;
    mvt_dtype dt = q->dtype;
    /* Zm's row r* is 0: its LayerNorm output (ln_b) and projections, in the graph */
    int64_t s0[2] = {B, D};
    mva_var *zero = mva_const(mvt_zeros(dt, 2, s0));
    mva_var *ym = mva_layernorm(zero, m->ln_w, m->ln_b, MVEAD_EAM_LN_EPS);
    mvt_tensor *mc = mvt_contiguous(static_mask);
    inc_ctx c = {m, B, T, D, m->heads, flat_rows(tr->q), flat_rows(tr->k), flat_rows(tr->v), flat_rows(tr->z3),
                 mva_linear(ym, m->wq, m->bq), mva_linear(ym, m->wk, m->bk), mva_linear(ym, m->wv, m->bv), zero,
                 mvt_data(mc), mc->dtype};
    mvt_tensor *oc = mvt_contiguous(tr->out3->value);   /* [B, T, D] */
    int64_t *cand = malloc(sizeof(int64_t) * (size_t)T), *sel = malloc(sizeof(int64_t) * (size_t)per);
    uint8_t *is_cand = malloc((size_t)T);
    double *change = malloc(sizeof(double) * (size_t)T);
    mva_var **pieces = malloc(sizeof(mva_var *) * (size_t)(B + 1));
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(B * per)), *orows = malloc(sizeof(int64_t) * (size_t)(B * per));
    MVT_ASSERT(cand && sel && is_cand && change && pieces && order && orows, "objective: out of memory");
    int64_t n = 0, np = 0, placed = 0, no = 0;
    for (int64_t i = 0; i < B; i++) {
        int64_t b = neg_view[i], rs = b * N + neg_patch[i], nc = 0;
        /* rows that can change: r* and the rows of the other views whose mask keeps r* */
        memset(is_cand, 0, (size_t)T);
        cand[nc++] = rs;
        is_cand[rs] = 1;
        for (int64_t r = 0; r < T; r++)
            if (r / N != b && keeps(&c, r, rs)) { cand[nc++] = r; is_cand[r] = 1; }
        /* their change, without a graph; every other row's is 0 */
        bool prev = mva_set_grad_enabled(false);
        size_t mark = mva_tape_mark();
        mva_var *omc = om_rows(&c, i, rs, cand, nc);
        mvt_tensor *omv = mvt_contiguous(omc->value);
        memset(change, 0, sizeof(double) * (size_t)T);
        for (int64_t t = 1; t < nc; t++) change[cand[t]] = row_dist(oc, i * T + cand[t], omv, t, D);
        mvt_release(omv);
        mva_tape_reset(mark);
        mva_set_grad_enabled(prev);
        /* the dense rule over all N rows of each other view */
        int64_t *rows = ix + n;
        rows[0] = rs;
        for (int64_t a = 0, k = 1; a < V; a++) {
            if (a == b) continue;
            select_most_altered(change + a * N, N, n_k, a * N, rows + k);
            k += n_k;
        }
        views[n] = b;
        for (int64_t a = 0, k = 1; a < V; a++)
            for (int r = 0; a != b && r < n_k; r++) views[n + k++] = a;
        /* graph: Om for the selected rows that can change, O's own rows for the others */
        int64_t ns = 0;
        for (int64_t t = 0; t < per; t++)
            if (is_cand[rows[t]]) { sel[ns++] = rows[t]; order[n + t] = placed++; }
        for (int64_t t = 0; t < per; t++)
            if (!is_cand[rows[t]]) { orows[no] = i * T + rows[t]; order[n + t] = -1 - no++; }
        pieces[np++] = om_rows(&c, i, rs, sel, ns);
        for (int64_t t = 0; t < per; t++) rows[t] += i * T;   /* as rows of the batch: (i V + v) N + j */
        n += per;
    }
    if (no > 0) {
        mvt_tensor *oid = mvt_from_data(MVT_I64, 1, &no, orows);
        int64_t s2[2] = {B * T, D};
        pieces[np++] = mva_index_select(mva_reshape(tr->out3, 2, s2), 0, oid);
        mvt_release(oid);
    }
    /* back to the dense order: the O rows come after the Om ones */
    int64_t M = n;
    mvt_tensor *perm = mvt_empty(MVT_I64, 1, &M);
    for (int64_t t = 0; t < M; t++) mvt_i64(perm)[t] = order[t] >= 0 ? order[t] : placed + (-1 - order[t]);
    mva_var *negs = mva_index_select(np == 1 ? pieces[0] : mva_concat(pieces, (int)np, 0), 0, perm);
    mvt_release(perm);
    mvt_release(oc);
    mvt_release(mc);
    free(cand); free(sel); free(is_cand); free(change); free(pieces); free(order); free(orows);
    return negs;
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

    /* The incremental negative pass needs a mask that does not depend on Z
     * (mvas rebuilds its mask from Zm) and the first pass's q, k, v. */
    bool incremental = o->kind == MVEAD_OBJ_MCP_REG && f->attention == MVEAD_ATTN_SPARSE && static_mask &&
                       static_mask->ndim == 2 && mvead_fusion_attends(f->mode) && !mvead_fusion_per_call(f->mode);
    mvead_eam_trace trace = {0};
    mva_var *O = incremental ? mvead_eam_forward_attn(m, Z, static_mask, f->attention, true, &trace)
                             : mvead_fuse(m, f, Z, static_mask);
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

    int64_t M = B * (1 + (V - 1) * n_k);
    int64_t *views = malloc((size_t)M * sizeof *views);
    mvt_tensor *rows = mvt_empty(MVT_I64, 1, &M);   /* negatives as rows (i V + v) N + j */
    mva_var *negs;
    if (trace.q) negs = incremental_negatives(m, &trace, static_mask, V, neg_view, neg_patch, n_k, mvt_i64(rows), views);
    else {
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
        mvt_tensor *o64 = mvt_empty(MVT_F64, 4, z->shape), *om64 = mvt_empty(MVT_F64, 4, z->shape);
        mvt_copy_(o64, O->value);
        mvt_copy_(om64, Om->value);
        double *change = malloc((size_t)N * sizeof *change);
        int64_t *ix = mvt_i64(rows), n = 0;
        for (int64_t i = 0; i < B; i++) {
            int64_t b = neg_view[i];
            ix[n] = (i * V + b) * N + neg_patch[i];
            views[n++] = b;
            for (int64_t a = 0; a < V; a++) {
                if (a == b) continue;
                row_changes(mvt_f64(o64) + (i * V + a) * N * D, mvt_f64(om64) + (i * V + a) * N * D, N, D, change);
                select_most_altered(change, N, n_k, (i * V + a) * N, ix + n);
                for (int r = 0; r < n_k; r++) views[n++] = a;
            }
        }
        free(change);
        mvt_release(o64);
        mvt_release(om64);
        int64_t sflat[2] = {B * V * N, D};
        negs = mva_index_select(mva_reshape(Om, 2, sflat), 0, rows);   /* [M, D] */
    }
    mva_var *neg_sum = mvead_negative_loss(negs, views, centers);
    out->neg = mva_scale(neg_sum, 1.0 / (double)B);
    out->total = mva_add(out->pos, mva_scale(out->neg, o->lambda));
    out->neg_rows = mva_const(rows);   /* the const owns rows */
    free(views);
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
