/* ops_nn: matmul, linear, masked softmax, layernorm and pairwise squared
 * distances (forward/backward pairs). All products go through mvt_matmul /
 * mvt_gemm with transposed views, never transposed copies. */
#include "autograd/op.h"

/* last two dims swapped (a view) */
static mvt_tensor *tr(const mvt_tensor *t) { return mvt_transpose(t, t->ndim - 2, t->ndim - 1); }

/* ---- matmul -------------------------------------------------------------------- */
/* a [..., M, K] x b [..., K, N] -> y [..., M, N] (batch dims broadcast).
 * da = dy b^T (summed to a's batch shape), db = a^T dy (summed to b's). */
mva_var *mva_matmul(mva_var *a, mva_var *b) {
    MVT_ASSERT(a != NULL && b != NULL, "autograd: NULL input to matmul");
    MVT_ASSERT(a->value->ndim >= 2 && b->value->ndim >= 2,
               "mva_matmul: operands need >= 2 dims (got %d and %d)", a->value->ndim, b->value->ndim);
    MVT_ASSERT(a->value->dtype == b->value->dtype, "mva_matmul: operands must share one dtype");
    mva_var *in[2] = {a, b};
    mva_op_params p = {0};
    return mva_apply(MVA_OP_MATMUL, in, 2, &p);
}
mvt_tensor *mva_fwd_matmul(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_matmul(x[0], x[1]); }
void mva_bwd_matmul(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0], *b = n->inputs[1];
    if (mva_needs_grad(a)) {
        mvt_tensor *bt = tr(b->value);
        mva_accum_reduce(a, mvt_matmul(dy, bt), 1.0);
        mvt_release(bt);
    }
    if (mva_needs_grad(b)) {
        mvt_tensor *at = tr(a->value);
        mva_accum_reduce(b, mvt_matmul(at, dy), 1.0);
        mvt_release(at);
    }
}

/* ---- linear --------------------------------------------------------------------- */
/* y = x W^T + b: x [..., in] viewed as x2 [R, in], w [out, in], b [out] -> y [..., out].
 * dx2 = dy2 W, dW += dy2^T x2, db += sum_rows(dy2); all GEMMs accumulate
 * straight into the gradient buffers (beta = 1). */
mva_var *mva_linear(mva_var *x, mva_var *w, mva_var *b) {
    MVT_ASSERT(x != NULL && w != NULL, "autograd: NULL input to linear");
    MVT_ASSERT(w->value->ndim == 2, "mva_linear: weight must be [out, in] (got %d dims)", w->value->ndim);
    MVT_ASSERT(x->value->ndim >= 1 && x->value->shape[x->value->ndim - 1] == w->value->shape[1],
               "mva_linear: x last dim must equal weight in = %lld", (long long)w->value->shape[1]);
    MVT_ASSERT(x->value->dtype == w->value->dtype && (!b || b->value->dtype == w->value->dtype),
               "mva_linear: x, weight and bias must share one dtype");
    MVT_ASSERT(!b || (b->value->ndim == 1 && b->value->shape[0] == w->value->shape[0]),
               "mva_linear: bias must be [out] = [%lld]", (long long)w->value->shape[0]);
    mva_var *in[3] = {x, w, b};
    mva_op_params p = {0};
    return mva_apply(MVA_OP_LINEAR, in, 3, &p);
}

static int64_t rows_of(const mvt_tensor *x) {
    return x->shape[x->ndim - 1] ? mvt_numel(x) / x->shape[x->ndim - 1] : 0;
}

mvt_tensor *mva_fwd_linear(mva_node *n, mvt_tensor *const *x) {
    const mvt_tensor *X = x[0], *W = x[1], *B = x[2];
    int64_t in = W->shape[1], out = W->shape[0], R = rows_of(X);
    int64_t s2[2] = {R, in};
    mvt_tensor *x2 = mvt_reshape(X, 2, s2);
    mvt_tensor *Wc = mvt_contiguous(W);
    int64_t ys[MVT_MAX_DIMS];
    for (int k = 0; k < X->ndim - 1; k++) ys[k] = X->shape[k];
    ys[X->ndim - 1] = out;
    int64_t y2s[2] = {R, out};
    mvt_tensor *y2;
    if (B) {
        y2 = mvt_empty(X->dtype, 2, y2s);
        mvt_copy_(y2, B);     /* rows of b; the GEMM adds x W^T on top */
        mvt_gemm(false, true, 1.0, x2, Wc, 1.0, y2);
    } else {
        y2 = mvt_zeros(X->dtype, 2, y2s);
        mvt_gemm(false, true, 1.0, x2, Wc, 0.0, y2);
    }
    mvt_tensor *y = mvt_view(y2, X->ndim, ys);
    mvt_release(y2);
    n->saved[0] = x2;
    n->saved[1] = Wc;
    return y;
}

void mva_bwd_linear(mva_node *n, const mvt_tensor *dy) {
    mva_var *x = n->inputs[0], *w = n->inputs[1], *b = n->inputs[2];
    const mvt_tensor *x2 = n->saved[0], *Wc = n->saved[1];
    int64_t R = x2->shape[0], in = x2->shape[1], out = Wc->shape[0];
    int64_t s2[2] = {R, out};
    mvt_tensor *dy2 = mvt_reshape(dy, 2, s2);
    if (mva_needs_grad(x)) {
        int64_t xs[2] = {R, in};
        mvt_tensor *gx = mvt_view(mva_grad_buf(x), 2, xs);   /* grad buffers are contiguous */
        MVT_ASSERT(gx != NULL, "mva_linear backward: gradient of x is not contiguous");
        mvt_gemm(false, false, 1.0, dy2, Wc, 1.0, gx);
        mvt_release(gx);
    }
    if (mva_needs_grad(w)) mvt_gemm(true, false, 1.0, dy2, x2, 1.0, mva_grad_buf(w));
    if (mva_needs_grad(b)) mva_accum(b, mvt_sum(dy2, 0, false), 1.0);
    mvt_release(dy2);
}

/* ---- softmax ---------------------------------------------------------------------- */
/* y = softmax(s x) over the last axis with a constant mask (s = p.s, one
 * pass: attention's 1/sqrt(d) costs nothing extra); dx = s y (dy - sum(dy y)).
 * Masked entries and fully masked rows have y = 0, hence zero gradient. */
mva_var *mva_softmax_scaled(mva_var *x, double scale, const mvt_tensor *mask) {
    MVT_ASSERT(x != NULL, "autograd: NULL input to softmax");
    mva_op_params p = {0};
    p.mask = mask;
    p.s = scale;
    return mva_apply(MVA_OP_SOFTMAX, &x, 1, &p);
}
mva_var *mva_softmax(mva_var *x, const mvt_tensor *mask) { return mva_softmax_scaled(x, 1.0, mask); }
mvt_tensor *mva_fwd_softmax(mva_node *n, mvt_tensor *const *x) { return mvt_softmax_scaled(x[0], n->p.s, n->p.mask); }
void mva_bwd_softmax(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_softmax_backward(n->out->value, dy), n->p.s);
}

/* ---- layernorm --------------------------------------------------------------------- */
/* x [..., D], w/b [D] (either may be NULL) -> y [..., D]; saves mean/rstd [...]. */
mva_var *mva_layernorm(mva_var *x, mva_var *w, mva_var *b, double eps) {
    MVT_ASSERT(x != NULL, "autograd: NULL input to layernorm");
    mva_var *in[3] = {x, w, b};
    mva_op_params p = {0};
    p.eps = eps;
    return mva_apply(MVA_OP_LAYERNORM, in, 3, &p);
}
mvt_tensor *mva_fwd_layernorm(mva_node *n, mvt_tensor *const *x) {
    return mvt_layernorm(x[0], x[1], x[2], n->p.eps, &n->saved[0], &n->saved[1]);
}
void mva_bwd_layernorm(mva_node *n, const mvt_tensor *dy) {
    mva_var *x = n->inputs[0], *w = n->inputs[1], *b = n->inputs[2];
    mvt_tensor *dx = mva_needs_grad(x) ? mva_grad_buf(x) : NULL;
    mvt_tensor *dw = mva_needs_grad(w) ? mva_grad_buf(w) : NULL;
    mvt_tensor *db = mva_needs_grad(b) ? mva_grad_buf(b) : NULL;
    mvt_layernorm_backward(dy, x->value, w ? w->value : NULL, n->saved[0], n->saved[1], dx, dw, db);
}

/* ---- pairwise squared distances ------------------------------------------------------ */
/* a [M, D], b [N, D] -> y [M, N] = ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j, clamped at 0.
 * With G = dy where y > 0 (the clamp, and coincident points, pass no gradient):
 * da = 2 (rowsum(G) a - G b), db = 2 (colsum(G) b - G^T a). */
mva_var *mva_pairwise_sqdist(mva_var *a, mva_var *b) {
    MVT_ASSERT(a != NULL && b != NULL, "autograd: NULL input to pairwise_sqdist");
    MVT_ASSERT(a->value->ndim == 2 && b->value->ndim == 2 && a->value->shape[1] == b->value->shape[1],
               "mva_pairwise_sqdist: expects a [M, D] and b [N, D]");
    mva_var *in[2] = {a, b};
    mva_op_params p = {0};
    return mva_apply(MVA_OP_PAIRWISE_SQDIST, in, 2, &p);
}
mvt_tensor *mva_fwd_pairwise_sqdist(mva_node *n, mvt_tensor *const *x) {
    (void)n;
    return mvt_pairwise_sqdist(x[0], x[1]);
}
void mva_bwd_pairwise_sqdist(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0], *b = n->inputs[1];
    const mvt_tensor *y = n->out->value;
    mvt_tensor *G = mvt_clone(dy);
    int64_t cnt = mvt_numel(G);
    if (G->dtype == MVT_F64) {
        double *g = mvt_f64(G);
        const double *yy = mvt_f64(y);
        for (int64_t i = 0; i < cnt; i++) if (!(yy[i] > 0)) g[i] = 0;
    } else {
        float *g = mvt_f32(G);
        const float *yy = mvt_f32(y);
        for (int64_t i = 0; i < cnt; i++) if (!(yy[i] > 0)) g[i] = 0;
    }
    if (mva_needs_grad(a)) {
        mvt_tensor *rs = mvt_sum(G, 1, true);          /* [M, 1] */
        mva_accum(a, mvt_mul(a->value, rs), 2.0);
        mvt_release(rs);
        mva_accum(a, mvt_matmul(G, b->value), -2.0);
    }
    if (mva_needs_grad(b)) {
        mvt_tensor *cs = mvt_sum(G, 0, false);         /* [N] */
        int64_t s2[2] = {cs->shape[0], 1};
        mvt_tensor *cs2 = mvt_view(cs, 2, s2);
        mva_accum(b, mvt_mul(b->value, cs2), 2.0);
        mvt_release(cs2);
        mvt_release(cs);
        mvt_tensor *Gt = tr(G);
        mva_accum(b, mvt_matmul(Gt, a->value), -2.0);
        mvt_release(Gt);
    }
    mvt_release(G);
}
