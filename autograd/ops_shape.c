/* ops_shape: views (reshape, permute, transpose, narrow, select), copies
 * (contiguous, concat, index_select), patch extraction and resampling
 * (forward/backward pairs). The view ops share the input's storage in the
 * forward; their backward maps dy back onto the input's shape. */
#include "autograd/op.h"

static mva_var *apply1(mva_op op, mva_var *a, const mva_op_params *p) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to %s", mva_op_table[op].name);
    return mva_apply(op, &a, 1, p);
}

/* ---- reshape ---------------------------------------------------------------------- */
/* a [S] -> y [shape] (one entry may be -1); a view when the strides allow. */
mva_var *mva_reshape(mva_var *a, int ndim, const int64_t *shape) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to reshape");
    MVT_ASSERT(ndim >= 0 && ndim <= MVT_MAX_DIMS, "mva_reshape: %d dims (max %d)", ndim, MVT_MAX_DIMS);
    mva_op_params p = {0};
    p.ndim = ndim;
    int64_t known = 1;
    int infer = -1;
    for (int k = 0; k < ndim; k++) {
        p.shape[k] = shape[k];
        if (shape[k] == -1) {
            MVT_ASSERT(infer < 0, "mva_reshape: more than one -1 in the shape");
            infer = k;
        } else {
            known *= shape[k];
        }
    }
    int64_t numel = mvt_numel(a->value);
    if (infer >= 0) {
        MVT_ASSERT(known > 0 && numel % known == 0, "mva_reshape: cannot infer -1 for %lld elements",
                   (long long)numel);
        p.shape[infer] = numel / known;
        known *= p.shape[infer];
    }
    MVT_ASSERT(known == numel, "mva_reshape: %lld elements cannot become %lld", (long long)numel,
               (long long)known);
    return apply1(MVA_OP_RESHAPE, a, &p);
}
mvt_tensor *mva_fwd_reshape(mva_node *n, mvt_tensor *const *x) { return mvt_reshape(x[0], n->p.ndim, n->p.shape); }
void mva_bwd_reshape(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (mva_needs_grad(a)) mva_accum(a, mvt_reshape(dy, a->value->ndim, a->value->shape), 1.0);
}

/* ---- permute / transpose ------------------------------------------------------------- */
/* y dim k = a dim perm[k]; backward permutes dy by the inverse. */
mva_var *mva_permute(mva_var *a, const int *perm) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to permute");
    mva_op_params p = {0};
    p.ndim = a->value->ndim;
    unsigned seen = 0;
    for (int k = 0; k < p.ndim; k++) {
        p.perm[k] = mva_norm_axis(perm[k], p.ndim);
        MVT_ASSERT(!(seen & (1u << p.perm[k])), "mva_permute: dim %d repeated", p.perm[k]);
        seen |= 1u << p.perm[k];
    }
    return apply1(MVA_OP_PERMUTE, a, &p);
}
mvt_tensor *mva_fwd_permute(mva_node *n, mvt_tensor *const *x) { return mvt_permute(x[0], n->p.perm); }
void mva_bwd_permute(mva_node *n, const mvt_tensor *dy) {
    if (!mva_needs_grad(n->inputs[0])) return;
    int inv[MVT_MAX_DIMS];
    for (int k = 0; k < n->p.ndim; k++) inv[n->p.perm[k]] = k;
    mva_accum(n->inputs[0], mvt_permute(dy, inv), 1.0);
}

mva_var *mva_transpose(mva_var *a, int d0, int d1) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to transpose");
    mva_op_params p = {0};
    p.axis = mva_norm_axis(d0, a->value->ndim);
    p.axis2 = mva_norm_axis(d1, a->value->ndim);
    return apply1(MVA_OP_TRANSPOSE, a, &p);
}
mvt_tensor *mva_fwd_transpose(mva_node *n, mvt_tensor *const *x) {
    return mvt_transpose(x[0], n->p.axis, n->p.axis2);
}
void mva_bwd_transpose(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_transpose(dy, n->p.axis, n->p.axis2), 1.0);
}

/* ---- narrow / select ---------------------------------------------------------------- */
/* The backward adds dy into the matching slice of the (zero-initialised)
 * gradient buffer of the input's shape. */
mva_var *mva_narrow(mva_var *a, int dim, int64_t start, int64_t len) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to narrow");
    mva_op_params p = {0};
    p.axis = mva_norm_axis(dim, a->value->ndim);
    MVT_ASSERT(start >= 0 && len >= 0 && start + len <= a->value->shape[p.axis],
               "mva_narrow: [%lld, %lld) outside dim %d of size %lld", (long long)start,
               (long long)(start + len), p.axis, (long long)a->value->shape[p.axis]);
    p.start = start;
    p.len = len;
    return apply1(MVA_OP_NARROW, a, &p);
}
mvt_tensor *mva_fwd_narrow(mva_node *n, mvt_tensor *const *x) {
    return mvt_narrow(x[0], n->p.axis, n->p.start, n->p.len);
}
void mva_bwd_narrow(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (!mva_needs_grad(a)) return;
    mvt_tensor *slice = mvt_narrow(mva_grad_buf(a), n->p.axis, n->p.start, n->p.len);
    mvt_axpy_(slice, 1.0, dy);
    mvt_release(slice);
}

mva_var *mva_select(mva_var *a, int dim, int64_t index) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to select");
    mva_op_params p = {0};
    p.axis = mva_norm_axis(dim, a->value->ndim);
    MVT_ASSERT(index >= 0 && index < a->value->shape[p.axis], "mva_select: index %lld outside dim %d of size %lld",
               (long long)index, p.axis, (long long)a->value->shape[p.axis]);
    p.start = index;
    return apply1(MVA_OP_SELECT, a, &p);
}
mvt_tensor *mva_fwd_select(mva_node *n, mvt_tensor *const *x) { return mvt_select(x[0], n->p.axis, n->p.start); }
void mva_bwd_select(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (!mva_needs_grad(a)) return;
    mvt_tensor *slice = mvt_select(mva_grad_buf(a), n->p.axis, n->p.start);
    mvt_axpy_(slice, 1.0, dy);
    mvt_release(slice);
}

/* ---- contiguous ---------------------------------------------------------------------- */
static const mva_op_params no_params;
mva_var *mva_contiguous(mva_var *a) { return apply1(MVA_OP_CONTIGUOUS, a, &no_params); }
mvt_tensor *mva_fwd_contiguous(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_contiguous(x[0]); }
void mva_bwd_contiguous(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_retain((mvt_tensor *)dy), 1.0);
}

/* ---- concat ------------------------------------------------------------------------------ */
/* vs[i] [..., L_i, ...] -> y [..., sum L_i, ...]; input i gets the slice of dy at its offset. */
mva_var *mva_concat(mva_var *const *vs, int n, int axis) {
    MVT_ASSERT(vs != NULL && n >= 1, "mva_concat: needs at least one input");
    for (int i = 0; i < n; i++) MVT_ASSERT(vs[i] != NULL, "mva_concat: input %d is NULL", i);
    mva_op_params p = {0};
    p.axis = mva_norm_axis(axis, vs[0]->value->ndim);
    return mva_apply(MVA_OP_CONCAT, vs, n, &p);
}
mvt_tensor *mva_fwd_concat(mva_node *n, mvt_tensor *const *x) {
    return mvt_concat((const mvt_tensor *const *)x, n->n_inputs, n->p.axis);
}
void mva_bwd_concat(mva_node *n, const mvt_tensor *dy) {
    int64_t off = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        mva_var *v = n->inputs[i];
        int64_t len = v->value->shape[n->p.axis];
        if (mva_needs_grad(v)) mva_accum(v, mvt_narrow(dy, n->p.axis, off, len), 1.0);
        off += len;
    }
}

/* ---- index_select ----------------------------------------------------------------------- */
/* y = a.index_select(axis, idx) (idx MVT_I64 1-D, repeats allowed); the
 * backward index_adds dy into the gradient buffer in a fixed order. */
mva_var *mva_index_select(mva_var *a, int axis, const mvt_tensor *idx) {
    MVT_ASSERT(a != NULL && idx != NULL, "autograd: NULL input to index_select");
    MVT_ASSERT(idx->dtype == MVT_I64 && idx->ndim == 1, "mva_index_select: idx must be 1-D int64");
    mva_op_params p = {0};
    p.axis = mva_norm_axis(axis, a->value->ndim);
    p.idx = idx;
    return apply1(MVA_OP_INDEX_SELECT, a, &p);
}
mvt_tensor *mva_fwd_index_select(mva_node *n, mvt_tensor *const *x) {
    n->saved[0] = mvt_retain((mvt_tensor *)n->p.idx);
    return mvt_index_select(x[0], n->p.axis, n->p.idx);
}
void mva_bwd_index_select(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (mva_needs_grad(a)) mvt_index_add_(mva_grad_buf(a), n->p.axis, n->saved[0], dy);
}

/* ---- im2col ------------------------------------------------------------------------------ */
/* img [B, C, H, W] -> cols [B, (H/P)(W/P), C*P*P]; backward is col2im (its adjoint). */
mva_var *mva_im2col(mva_var *img, int P) {
    MVT_ASSERT(img != NULL, "autograd: NULL input to im2col");
    const mvt_tensor *t = img->value;
    MVT_ASSERT(t->ndim == 4 && P > 0 && t->shape[2] % P == 0 && t->shape[3] % P == 0,
               "mva_im2col: expects [B, C, H, W] with H, W multiples of P = %d", P);
    mva_op_params p = {0};
    p.P = P;
    for (int k = 0; k < 4; k++) p.shape[k] = t->shape[k];
    return apply1(MVA_OP_IM2COL, img, &p);
}
mvt_tensor *mva_fwd_im2col(mva_node *n, mvt_tensor *const *x) { return mvt_im2col(x[0], n->p.P); }
void mva_bwd_im2col(mva_node *n, const mvt_tensor *dy) {
    if (!mva_needs_grad(n->inputs[0])) return;
    const int64_t *s = n->p.shape;
    mva_accum(n->inputs[0], mvt_col2im(dy, s[0], s[1], s[2], s[3], n->p.P), 1.0);
}

/* ---- resize ------------------------------------------------------------------------------- */
/* x [..., H, W] -> y [..., oh, ow] (mvt_resize semantics); backward mvt_resize_backward. */
mva_var *mva_resize(mva_var *x, int64_t oh, int64_t ow, mvt_resample_mode mode, bool align_corners,
                    double scale_h, double scale_w) {
    MVT_ASSERT(x != NULL, "autograd: NULL input to resize");
    MVT_ASSERT(x->value->ndim >= 2 && oh > 0 && ow > 0, "mva_resize: expects [..., H, W] and a positive size");
    mva_op_params p = {0};
    p.oh = oh;
    p.ow = ow;
    p.mode = (int)mode;
    p.align_corners = align_corners;
    p.scale_h = scale_h;
    p.scale_w = scale_w;
    return apply1(MVA_OP_RESIZE, x, &p);
}
mvt_tensor *mva_fwd_resize(mva_node *n, mvt_tensor *const *x) {
    const mva_op_params *p = &n->p;
    return mvt_resize(x[0], p->oh, p->ow, (mvt_resample_mode)p->mode, p->align_corners, p->scale_h, p->scale_w);
}
void mva_bwd_resize(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (!mva_needs_grad(a)) return;
    const mva_op_params *p = &n->p;
    const mvt_tensor *v = a->value;
    mva_accum(a, mvt_resize_backward(dy, v->shape[v->ndim - 2], v->shape[v->ndim - 1], (mvt_resample_mode)p->mode,
                                     p->align_corners, p->scale_h, p->scale_w), 1.0);
}
