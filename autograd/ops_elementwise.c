/* ops_elementwise: broadcasting binary ops and unary maps (forward/backward
 * pairs). Shapes: binary a [...], b [...] -> y [broadcast(a, b)]; the
 * backward of a broadcast input sums dy down to that input's shape. */
#include "autograd/op.h"

static mva_var *apply1(mva_op op, mva_var *a, const mva_op_params *p) {
    MVT_ASSERT(a != NULL, "autograd: NULL input to %s", mva_op_table[op].name);
    return mva_apply(op, &a, 1, p);
}

static mva_var *apply2(mva_op op, mva_var *a, mva_var *b) {
    MVT_ASSERT(a != NULL && b != NULL, "autograd: NULL input to %s", mva_op_table[op].name);
    mva_var *in[2] = {a, b};
    mva_op_params p = {0};
    return mva_apply(op, in, 2, &p);
}

/* ---- add / sub ------------------------------------------------------------ */
mva_var *mva_add(mva_var *a, mva_var *b) { return apply2(MVA_OP_ADD, a, b); }
mvt_tensor *mva_fwd_add(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_add(x[0], x[1]); }
void mva_bwd_add(mva_node *n, const mvt_tensor *dy) {
    for (int i = 0; i < 2; i++)
        if (mva_needs_grad(n->inputs[i])) mva_accum_reduce(n->inputs[i], mvt_retain((mvt_tensor *)dy), 1.0);
}

mva_var *mva_sub(mva_var *a, mva_var *b) { return apply2(MVA_OP_SUB, a, b); }
mvt_tensor *mva_fwd_sub(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_sub(x[0], x[1]); }
void mva_bwd_sub(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum_reduce(n->inputs[0], mvt_retain((mvt_tensor *)dy), 1.0);
    if (mva_needs_grad(n->inputs[1])) mva_accum_reduce(n->inputs[1], mvt_retain((mvt_tensor *)dy), -1.0);
}

/* ---- mul / div ------------------------------------------------------------ */
mva_var *mva_mul(mva_var *a, mva_var *b) { return apply2(MVA_OP_MUL, a, b); }
mvt_tensor *mva_fwd_mul(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_mul(x[0], x[1]); }
/* da = dy * b, db = dy * a (each summed to its input's shape) */
void mva_bwd_mul(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0], *b = n->inputs[1];
    if (mva_needs_grad(a)) mva_accum_reduce(a, mvt_mul(dy, b->value), 1.0);
    if (mva_needs_grad(b)) mva_accum_reduce(b, mvt_mul(dy, a->value), 1.0);
}

mva_var *mva_div(mva_var *a, mva_var *b) { return apply2(MVA_OP_DIV, a, b); }
mvt_tensor *mva_fwd_div(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_div(x[0], x[1]); }
/* y = a / b: da = dy / b, db = -dy * y / b */
void mva_bwd_div(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0], *b = n->inputs[1];
    mvt_tensor *dy_over_b = mvt_div(dy, b->value);
    if (mva_needs_grad(b)) mva_accum_reduce(b, mvt_mul(dy_over_b, n->out->value), -1.0);
    if (mva_needs_grad(a)) mva_accum_reduce(a, dy_over_b, 1.0);
    else mvt_release(dy_over_b);
}

/* ---- scalar ops ------------------------------------------------------------- */
mva_var *mva_scale(mva_var *a, double s) {
    mva_op_params p = {0};
    p.s = s;
    return apply1(MVA_OP_SCALE, a, &p);
}
mvt_tensor *mva_fwd_scale(mva_node *n, mvt_tensor *const *x) { return mvt_scale(x[0], n->p.s); }
void mva_bwd_scale(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_retain((mvt_tensor *)dy), n->p.s);
}

mva_var *mva_add_scalar(mva_var *a, double s) {
    mva_op_params p = {0};
    p.s = s;
    return apply1(MVA_OP_ADD_SCALAR, a, &p);
}
mvt_tensor *mva_fwd_add_scalar(mva_node *n, mvt_tensor *const *x) { return mvt_add_scalar(x[0], n->p.s); }
void mva_bwd_add_scalar(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_retain((mvt_tensor *)dy), 1.0);
}

/* ---- unary maps ------------------------------------------------------------ */
static const mva_op_params no_params;

mva_var *mva_neg(mva_var *a) { return apply1(MVA_OP_NEG, a, &no_params); }
mvt_tensor *mva_fwd_neg(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_unary(MVT_NEG, x[0]); }
void mva_bwd_neg(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_retain((mvt_tensor *)dy), -1.0);
}

mva_var *mva_exp(mva_var *a) { return apply1(MVA_OP_EXP, a, &no_params); }
mvt_tensor *mva_fwd_exp(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_unary(MVT_EXP, x[0]); }
/* dx = dy * y */
void mva_bwd_exp(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_mul(dy, n->out->value), 1.0);
}

mva_var *mva_log(mva_var *a) { return apply1(MVA_OP_LOG, a, &no_params); }
mvt_tensor *mva_fwd_log(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_unary(MVT_LOG, x[0]); }
/* dx = dy / x */
void mva_bwd_log(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_div(dy, n->inputs[0]->value), 1.0);
}

mva_var *mva_sqrt(mva_var *a) { return apply1(MVA_OP_SQRT, a, &no_params); }
mvt_tensor *mva_fwd_sqrt(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_unary(MVT_SQRT, x[0]); }
/* dx = dy / (2 y) */
void mva_bwd_sqrt(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_div(dy, n->out->value), 0.5);
}

mva_var *mva_tanh(mva_var *a) { return apply1(MVA_OP_TANH, a, &no_params); }
mvt_tensor *mva_fwd_tanh(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_unary(MVT_TANH, x[0]); }
/* dx = dy (1 - y^2) = dy - (dy y) y */
void mva_bwd_tanh(mva_node *n, const mvt_tensor *dy) {
    mva_var *a = n->inputs[0];
    if (!mva_needs_grad(a)) return;
    mvt_tensor *dyy = mvt_mul(dy, n->out->value);
    mvt_tensor *dyyy = mvt_mul(dyy, n->out->value);
    mvt_release(dyy);
    mva_accum(a, mvt_retain((mvt_tensor *)dy), 1.0);
    mva_accum(a, dyyy, -1.0);
}

mva_var *mva_gelu(mva_var *a) { return apply1(MVA_OP_GELU, a, &no_params); }
mvt_tensor *mva_fwd_gelu(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_gelu(x[0]); }
void mva_bwd_gelu(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0]))
        mva_accum(n->inputs[0], mvt_gelu_backward_y(n->inputs[0]->value, n->out->value, dy), 1.0);
}

mva_var *mva_square(mva_var *a) { return apply1(MVA_OP_SQUARE, a, &no_params); }
mvt_tensor *mva_fwd_square(mva_node *n, mvt_tensor *const *x) { (void)n; return mvt_unary(MVT_SQUARE, x[0]); }
/* dx = 2 x dy */
void mva_bwd_square(mva_node *n, const mvt_tensor *dy) {
    if (mva_needs_grad(n->inputs[0])) mva_accum(n->inputs[0], mvt_mul(dy, n->inputs[0]->value), 2.0);
}
