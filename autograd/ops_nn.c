/* ops_nn: matmul, linear, masked softmax, layernorm, layernorm followed by
 * linear maps (one op) and pairwise squared distances (forward/backward pairs). All products go through mvt_matmul /
 * mvt_gemm with transposed views, never transposed copies. */
#include "autograd/op.h"

#include <stdlib.h>

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
/* x W^T + b as op (linear or linear_gelu), after checking the operands' shapes. */
static mva_var *apply_linear(mva_op op, const char *name, mva_var *x, mva_var *w, mva_var *b) {
    MVT_ASSERT(x != NULL && w != NULL, "autograd: NULL input to %s", name);
    MVT_ASSERT(w->value->ndim == 2, "mva_%s: weight must be [out, in] (got %d dims)", name, w->value->ndim);
    MVT_ASSERT(x->value->ndim >= 1 && x->value->shape[x->value->ndim - 1] == w->value->shape[1],
               "mva_%s: x last dim must equal weight in = %lld", name, (long long)w->value->shape[1]);
    MVT_ASSERT(x->value->dtype == w->value->dtype && (!b || b->value->dtype == w->value->dtype),
               "mva_%s: x, weight and bias must share one dtype", name);
    MVT_ASSERT(!b || (b->value->ndim == 1 && b->value->shape[0] == w->value->shape[0]),
               "mva_%s: bias must be [out] = [%lld]", name, (long long)w->value->shape[0]);
    mva_var *in[3] = {x, w, b};
    mva_op_params p = {0};
    return mva_apply(op, in, 3, &p);
}
mva_var *mva_linear(mva_var *x, mva_var *w, mva_var *b) { return apply_linear(MVA_OP_LINEAR, "linear", x, w, b); }

static int64_t rows_of(const mvt_tensor *x) {
    return x->shape[x->ndim - 1] ? mvt_numel(x) / x->shape[x->ndim - 1] : 0;
}

/* The product x W^T + b; saves x2 and W for the backward (shared with linear_gelu). */
static mvt_tensor *linear_forward(mva_node *n, mvt_tensor *const *x) {
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

mvt_tensor *mva_fwd_linear(mva_node *n, mvt_tensor *const *x) { return linear_forward(n, x); }

/* dx, dW, db of x W^T + b from the gradient dy of its output. */
static void linear_backward(mva_node *n, const mvt_tensor *dy) {
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
void mva_bwd_linear(mva_node *n, const mvt_tensor *dy) { linear_backward(n, dy); }

/* ---- linear + GELU ----------------------------------------------------------------- */
/* y = gelu(h), h = x W^T + b (the MLP's first layer). Recorded: h is saved and
 * dh = dy gelu'(h) comes from h and y (mvt_gelu_backward_y: no second erf);
 * not recorded: GELU runs in place on h, one buffer and one pass fewer. */
mva_var *mva_linear_gelu(mva_var *x, mva_var *w, mva_var *b) {
    return apply_linear(MVA_OP_LINEAR_GELU, "linear_gelu", x, w, b);
}
mvt_tensor *mva_fwd_linear_gelu(mva_node *n, mvt_tensor *const *x) {
    mvt_tensor *h = linear_forward(n, x);
    if (!n->recording) {
        mvt_gelu_(h);
        return h;
    }
    n->saved[2] = h;
    return mvt_gelu(h);
}
void mva_bwd_linear_gelu(mva_node *n, const mvt_tensor *dy) {
    mvt_tensor *dh = mvt_gelu_backward_y(n->saved[2], n->out->value, dy);
    linear_backward(n, dh);
    mvt_release(dh);
}

/* ---- x + a * s (LayerScale + residual) ---------------------------------------------- */
/* dx = dy, da = dy s, ds = sum over rows of dy a. */
mva_var *mva_add_scaled(mva_var *x, mva_var *a, mva_var *s) {
    MVT_ASSERT(x != NULL && a != NULL, "autograd: NULL input to add_scaled");
    mva_var *in[3] = {x, a, s};
    mva_op_params p = {0};
    return mva_apply(MVA_OP_ADD_SCALED, in, 3, &p);
}
mvt_tensor *mva_fwd_add_scaled(mva_node *n, mvt_tensor *const *x) {
    (void)n;
    return mvt_add_scaled(x[0], x[1], x[2]);
}
void mva_bwd_add_scaled(mva_node *n, const mvt_tensor *dy) {
    mva_var *x = n->inputs[0], *a = n->inputs[1], *s = n->inputs[2];
    if (mva_needs_grad(x)) mva_accum(x, mvt_retain((mvt_tensor *)dy), 1.0);
    if (mva_needs_grad(a)) mva_accum(a, s ? mvt_mul(dy, s->value) : mvt_retain((mvt_tensor *)dy), 1.0);
    if (mva_needs_grad(s)) mva_accum_reduce(s, mvt_mul(dy, a->value), 1.0);
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

/* ---- layernorm followed by n linear maps ---------------------------------------------- */
/* x [..., D] -> y [n, ..., out]: y[p] = LN(x; ln_w, ln_b) W_p^T + b_p (EAM's q, k, v).
 * The forward is layernorm then linear, call for call. Why one op: the
 * gradients of ln_w, ln_b and W_p do not need dY = sum_p dP_p W_p. With
 * Xhat = (x - mean) rstd and G_p = dP_p^T Xhat [out, D] (the GEMM dW_p costs anyway):
 *   dW_p = G_p diag(ln_w) + colsum(dP_p) ln_b^T,  d ln_w[c] = sum_e W_p[e, c] G_p[e, c],
 *   d ln_b = sum_p colsum(dP_p)^T W_p,
 * so when x needs no gradient (cached features) the n GEMMs of dY are skipped.
 * Inputs: x, ln_w, ln_b, then W_p, b_p pairs (b_p may be NULL). Saved: x2 [R, D], mean, rstd. */
mva_var *mva_layernorm_linears(mva_var *x, mva_var *ln_w, mva_var *ln_b, double eps, int n, mva_var *const *w,
                               mva_var *const *b) {
    MVT_ASSERT(x && ln_w && ln_b && n >= 1 && n <= 8, "mva_layernorm_linears: x, ln_w, ln_b and 1..8 maps required");
    mva_var *in[3 + 2 * 8];
    in[0] = x;
    in[1] = ln_w;
    in[2] = ln_b;
    for (int p = 0; p < n; p++) {
        MVT_ASSERT(w[p] && w[p]->value->ndim == 2 && w[p]->value->shape[1] == x->value->shape[x->value->ndim - 1] &&
                       w[p]->value->shape[0] == w[0]->value->shape[0] && w[p]->value->dtype == x->value->dtype,
                   "mva_layernorm_linears: weights must be [out, D] of x's dtype, one out for all");
        in[3 + 2 * p] = w[p];
        in[4 + 2 * p] = b ? b[p] : NULL;
    }
    mva_op_params p = {0};
    p.eps = eps;
    p.ndim = n;
    return mva_apply(MVA_OP_LAYERNORM_LINEARS, in, 3 + 2 * n, &p);
}

mvt_tensor *mva_fwd_layernorm_linears(mva_node *n, mvt_tensor *const *x) {
    const mvt_tensor *X = x[0];
    int np = n->p.ndim;
    int64_t D = X->shape[X->ndim - 1], R = rows_of(X), out = x[3]->shape[0];
    int64_t s2[2] = {R, D}, ys[3] = {np, R, out};
    mvt_tensor *x2 = mvt_reshape(X, 2, s2);
    mvt_tensor *y = mvt_layernorm(x2, x[1], x[2], n->p.eps, &n->saved[1], &n->saved[2]);
    mvt_tensor *o = mvt_empty(X->dtype, 3, ys);
    for (int p = 0; p < np; p++) {   /* as mva_fwd_linear */
        mvt_tensor *op = mvt_select(o, 0, p), *Wc = mvt_contiguous(x[3 + 2 * p]);
        if (x[4 + 2 * p]) {
            mvt_copy_(op, x[4 + 2 * p]);
            mvt_gemm(false, true, 1.0, y, Wc, 1.0, op);
        } else {
            mvt_fill(op, 0.0);
            mvt_gemm(false, true, 1.0, y, Wc, 0.0, op);
        }
        mvt_release(op);
        mvt_release(Wc);
    }
    mvt_release(y);
    n->saved[0] = x2;
    int64_t fs[MVT_MAX_DIMS + 1];
    fs[0] = np;
    for (int k = 0; k < X->ndim - 1; k++) fs[1 + k] = X->shape[k];
    fs[X->ndim] = out;
    mvt_tensor *r = mvt_view(o, X->ndim + 1, fs);
    mvt_release(o);
    return r;
}

/* element i of a contiguous f32/f64 buffer, as double */
static inline double ld(const void *p, bool f32, int64_t i) { return f32 ? ((const float *)p)[i] : ((const double *)p)[i]; }

void mva_bwd_layernorm_linears(mva_node *n, const mvt_tensor *dy) {
    mva_var *x = n->inputs[0], *lw = n->inputs[1], *lb = n->inputs[2];
    const mvt_tensor *x2 = n->saved[0];
    int np = n->p.ndim;
    int64_t R = x2->shape[0], D = x2->shape[1], out = n->inputs[3]->value->shape[0];
    bool f32 = x2->dtype == MVT_F32, need_g = mva_needs_grad(lw);
    for (int p = 0; p < np; p++) need_g = need_g || mva_needs_grad(n->inputs[3 + 2 * p]);
    /* Xhat: the same statistics, no affine */
    mvt_tensor *xhat = need_g ? mvt_layernorm(x2, NULL, NULL, n->p.eps, NULL, NULL) : NULL;
    int64_t s2[2] = {R, D}, gs[2] = {out, D}, ds[3] = {np, R, out};
    mvt_tensor *dY = mva_needs_grad(x) ? mvt_zeros(x2->dtype, 2, s2) : NULL;
    mvt_tensor *dy3 = mvt_reshape(dy, 3, ds);
    mvt_tensor *lwc = mvt_contiguous(lw->value), *lbc = mvt_contiguous(lb->value);
    const void *lwp = mvt_data(lwc), *lbp = mvt_data(lbc);
    double *dlw = calloc((size_t)D, sizeof(double)), *dlb = calloc((size_t)D, sizeof(double));
    MVT_ASSERT(dlw && dlb, "mva_layernorm_linears backward: out of memory");
    for (int p = 0; p < np; p++) {
        mva_var *wv = n->inputs[3 + 2 * p], *bv = n->inputs[4 + 2 * p];
        mvt_tensor *dP = mvt_select(dy3, 0, p);                  /* [R, out] */
        mvt_tensor *cs = mvt_sum(dP, 0, false);                  /* [out] */
        mvt_tensor *Wc = mvt_contiguous(wv->value);
        const void *W = mvt_data(Wc), *c = mvt_data(cs);
        if (need_g) {
            mvt_tensor *G = mvt_zeros(x2->dtype, 2, gs);
            mvt_gemm(true, false, 1.0, dP, xhat, 0.0, G);        /* dP^T Xhat */
            void *g = mvt_data(G);
            if (mva_needs_grad(lw))
                for (int64_t e = 0; e < out; e++)
                    for (int64_t k = 0; k < D; k++) dlw[k] += ld(W, f32, e * D + k) * ld(g, f32, e * D + k);
            if (mva_needs_grad(wv)) {
                /* G diag(ln_w) + colsum(dP) ln_b^T, in G's own buffer */
                for (int64_t e = 0; e < out; e++)
                    for (int64_t k = 0; k < D; k++) {
                        double v = ld(g, f32, e * D + k) * ld(lwp, f32, k) + ld(c, f32, e) * ld(lbp, f32, k);
                        if (f32) ((float *)g)[e * D + k] = (float)v;
                        else ((double *)g)[e * D + k] = v;
                    }
                mva_accum(wv, G, 1.0);
            } else mvt_release(G);
        }
        if (mva_needs_grad(lb))
            for (int64_t e = 0; e < out; e++)
                for (int64_t k = 0; k < D; k++) dlb[k] += ld(c, f32, e) * ld(W, f32, e * D + k);
        if (mva_needs_grad(bv)) mva_accum(bv, mvt_retain(cs), 1.0);
        if (dY) mvt_gemm(false, false, 1.0, dP, Wc, 1.0, dY);
        mvt_release(Wc);
        mvt_release(cs);
        mvt_release(dP);
    }
    mva_var *ln[2] = {lw, lb};
    double *dln[2] = {dlw, dlb};
    for (int t = 0; t < 2; t++) {
        if (!mva_needs_grad(ln[t])) continue;
        mvt_tensor *g64 = mvt_from_data(MVT_F64, 1, &D, dln[t]);
        mva_accum(ln[t], mvt_to_dtype(g64, ln[t]->value->dtype), 1.0);
        mvt_release(g64);
    }
    if (dY) {
        mvt_tensor *dx = mvt_view(mva_grad_buf(x), 2, s2);
        MVT_ASSERT(dx != NULL, "mva_layernorm_linears backward: gradient of x is not contiguous");
        /* ln_w, ln_b got theirs above */
        mvt_layernorm_backward(dY, x2, lw->value, n->saved[1], n->saved[2], dx, NULL, NULL);
        mvt_release(dx);
        mvt_release(dY);
    }
    free(dlw);
    free(dlb);
    mvt_release(lwc);
    mvt_release(lbc);
    mvt_release(dy3);
    mvt_release(xhat);
}
