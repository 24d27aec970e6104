/* ops_reduce: sums, means, max/min and row norms along an axis (forward/backward
 * pairs). Shapes: a [..., L, ...] -> y [..., 1, ...] (keepdim) or [..., ...];
 * the backward broadcasts dy back over the reduced axis. */
#include "autograd/op.h"

static mva_var *apply_axis(mva_op op, mva_var *a, int axis, bool keepdim) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to %s", mva_op_table[op].name);
    mva_op_params p = {0};
    p.axis = mva_norm_axis(axis, a->value->ndim);
    p.keepdim = keepdim;
    return mva_apply(op, &a, 1, &p);
}

/* dy with the reduced axis put back as size 1 (a view), so it broadcasts to the input. */
static mvt_tensor *dy_keepdim(const mva_node *n, const mvt_tensor *dy) {
    return n->p.keepdim ? mvt_retain((mvt_tensor *)dy) : mvt_unsqueeze(dy, n->p.axis);
}

/* ---- sum / mean ------------------------------------------------------------ */
mva_var *mva_sum(mva_var *a, int axis, bool keepdim) { return apply_axis(MVA_OP_SUM, a, axis, keepdim); }
mvt_tensor *mva_fwd_sum(mva_node *n, mvt_tensor *const *x) { return mvt_sum(x[0], n->p.axis, n->p.keepdim); }
void mva_bwd_sum(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], dy_keepdim(n, dy), 1.0);
}

mva_var *mva_mean(mva_var *a, int axis, bool keepdim) { return apply_axis(MVA_OP_MEAN, a, axis, keepdim); }
mvt_tensor *mva_fwd_mean(mva_node *n, mvt_tensor *const *x) { return mvt_mean(x[0], n->p.axis, n->p.keepdim); }
void mva_bwd_mean(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (mva_needs_grad(a)) mva_accum(a, dy_keepdim(n, dy), 1.0 / (double)a->value->shape[n->p.axis]);
}

static const mva_op_params no_params;

mva_var *mva_sum_all(mva_var *a) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to sum_all");
    return mva_apply(MVA_OP_SUM_ALL, &a, 1, &no_params);
}
mvt_tensor *mva_fwd_sum_all(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_sum_all(x[0]); }
void mva_bwd_sum_all(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_retain((mvt_tensor *)dy), 1.0);
}

mva_var *mva_mean_all(mva_var *a) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to mean_all");
    return mva_apply(MVA_OP_MEAN_ALL, &a, 1, &no_params);
}
mvt_tensor *mva_fwd_mean_all(mva_node *n, mvt_tensor *const *x) {
    (void)n;
    mvt_tensor *s = mvt_sum_all(x[0]);
    mvt_tensor *m = mvt_scale(s, 1.0 / (double)mvt_numel(x[0]));
    mvt_release(s);
    return m;
}
void mva_bwd_mean_all(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (mva_needs_grad(a)) mva_accum(a, mvt_retain((mvt_tensor *)dy), 1.0 / (double)mvt_numel(a->value));
}

/* ---- max / min --------------------------------------------------------------- */
/* The forward saves the argmax (lowest index on ties); the backward adds dy at
 * that position only: G[o, arg[o, i], i] += dy[o, i]. */
mva_var *mva_max(mva_var *a, int axis, bool keepdim) { return apply_axis(MVA_OP_MAX, a, axis, keepdim); }
mvt_tensor *mva_fwd_max(mva_node *n, mvt_tensor *const *x) {
    return mvt_max(x[0], n->p.axis, n->p.keepdim, &n->saved[0]);
}
mva_var *mva_min(mva_var *a, int axis, bool keepdim) { return apply_axis(MVA_OP_MIN, a, axis, keepdim); }
mvt_tensor *mva_fwd_min(mva_node *n, mvt_tensor *const *x) {
    return mvt_min(x[0], n->p.axis, n->p.keepdim, &n->saved[0]);
}

static void scatter_to_arg(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (!mva_needs_grad(a)) return;
    mvt_tensor *G = mva_grad_buf(a);              /* contiguous, a's shape */
    mvt_tensor *d = mvt_contiguous(dy);
    mvt_tensor *arg = mvt_contiguous(n->saved[0]);
    const int axis = n->p.axis;
    int64_t outer = 1, inner = 1, L = G->shape[axis];
    for (int k = 0; k < axis; k++) outer *= G->shape[k];
    for (int k = axis + 1; k < G->ndim; k++) inner *= G->shape[k];
    const int64_t *ai = mvt_i64(arg);
    MVT_ASSERT(mvt_numel(arg) == outer * inner && mvt_numel(d) == outer * inner,
               "autograd max/min backward: argmax has %lld elements, expected %lld",
               (long long)mvt_numel(arg), (long long)(outer * inner));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t j = ai[o * inner + i];
            MVT_ASSERT(j >= 0 && j < L, "autograd max/min backward: argmax %lld out of [0, %lld)",
                       (long long)j, (long long)L);
            int64_t dst = (o * L + j) * inner + i, src = o * inner + i;
            if (G->dtype == MVT_F64) mvt_f64(G)[dst] += mvt_f64(d)[src];
            else mvt_f32(G)[dst] += mvt_f32(d)[src];
        }
    mvt_release(arg);
    mvt_release(d);
}
void mva_bwd_max(mva_node *n, const mvt_tensor *dy) { scatter_to_arg(n, dy); }
void mva_bwd_min(mva_node *n, const mvt_tensor *dy) { scatter_to_arg(n, dy); }

/* ---- norm -------------------------------------------------------------------- */
/* y = sqrt(sum(x^2, axis) + eps); dx = x * dy / y (dy, y broadcast over axis). */
mva_var *mva_norm(mva_var *a, int axis, bool keepdim, double eps) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to norm");
    mva_op_params p = {0};
    p.axis = mva_norm_axis(axis, a->value->ndim);
    p.keepdim = keepdim;
    p.eps = eps;
    return mva_apply(MVA_OP_NORM, &a, 1, &p);
}
mvt_tensor *mva_fwd_norm(mva_node *n, mvt_tensor *const *x) {
    mvt_tensor *sq = mvt_unary(MVT_SQUARE, x[0]);
    mvt_tensor *s = mvt_sum(sq, n->p.axis, n->p.keepdim);
    mvt_release(sq);
    mvt_tensor *se = mvt_add_scalar(s, n->p.eps);
    mvt_release(s);
    mvt_tensor *y = mvt_unary(MVT_SQRT, se);
    mvt_release(se);
    return y;
}
void mva_bwd_norm(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (!mva_needs_grad(a)) return;
    mvt_tensor *dyk = dy_keepdim(n, dy);
    mvt_tensor *yk = dy_keepdim(n, n->out->value);
    mvt_tensor *t = mvt_div(dyk, yk);
    mva_accum(a, mvt_mul(a->value, t), 1.0);
    mvt_release(t);
    mvt_release(yk);
    mvt_release(dyk);
}
