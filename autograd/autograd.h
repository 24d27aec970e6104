/* autograd: reverse-mode differentiation over tensor kernels.
 *
 * A variable (mva_var) holds a value tensor, an optional gradient and, when
 * produced by an op while grad mode is on and some input requires grad, the
 * node that made it. Every op is one row of the op table (autograd/op.h):
 * a forward that calls tensor kernels and a backward that ADDS into its
 * inputs' gradients (so shared inputs just work).
 *
 * Ownership (ggml-like context, so model code never frees intermediates):
 *  - leaves made with mva_leaf() belong to the caller (mva_leaf_free).
 *  - every other var (op outputs, mva_const) belongs to the global tape and
 *    is freed by mva_tape_clear(). Keep a result past the clear by taking a
 *    reference to its tensor: mvt_retain(v->value).
 *  - mva_backward() frees the graph's nodes and saved buffers after use.
 *
 * Called by nn/ and mvead/. Includes only tensor/.
 */
#ifndef MVEAD_AUTOGRAD_H
#define MVEAD_AUTOGRAD_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mva_node mva_node;

typedef struct mva_var {
    mvt_tensor *value;
    mvt_tensor *grad;      /* NULL until a backward reaches it; then same shape/dtype as value */
    bool requires_grad;
    bool is_leaf;
    mva_node *node;        /* producing op (NULL for leaves and constants) */
    const char *name;      /* optional, for messages; not owned */
} mva_var;

/* ---- variables ---------------------------------------------------------- */
/* Takes ownership of one reference to `value`. */
mva_var *mva_leaf(mvt_tensor *value, bool requires_grad, const char *name);
void mva_leaf_free(mva_var *v);
/* Tape-owned constant (requires_grad = false); takes one reference to value. */
mva_var *mva_const(mvt_tensor *value);
void mva_zero_grad(mva_var *v);     /* drops/zeros v->grad */

/* ---- tape & modes -------------------------------------------------------- */
void mva_tape_clear(void);            /* frees all non-leaf vars and nodes */
size_t mva_tape_size(void);           /* live tape vars (for leak tests) */
bool mva_grad_enabled(void);
/* Returns the previous mode; no-grad records nothing (inference). */
bool mva_set_grad_enabled(bool enabled);

/* Seeds d(root) = seed (NULL: root must have one element, seed 1) and runs
 * every node reachable from root in reverse topological order, accumulating
 * into .grad of every var that requires grad. Releases the nodes' saved
 * buffers afterwards (a second backward through the same graph is an error). */
void mva_backward(mva_var *root, const mvt_tensor *seed);

/* ---- ops (broadcasting where noted; all differentiable) ----------------- */
mva_var *mva_add(mva_var *a, mva_var *b);          /* broadcast */
mva_var *mva_sub(mva_var *a, mva_var *b);          /* broadcast */
mva_var *mva_mul(mva_var *a, mva_var *b);          /* broadcast */
mva_var *mva_div(mva_var *a, mva_var *b);          /* broadcast */
mva_var *mva_scale(mva_var *a, double s);
mva_var *mva_add_scalar(mva_var *a, double s);
mva_var *mva_neg(mva_var *a);
mva_var *mva_exp(mva_var *a);
mva_var *mva_log(mva_var *a);
mva_var *mva_sqrt(mva_var *a);
mva_var *mva_tanh(mva_var *a);
mva_var *mva_gelu(mva_var *a);                      /* exact erf */
mva_var *mva_square(mva_var *a);

mva_var *mva_sum(mva_var *a, int axis, bool keepdim);
mva_var *mva_sum_all(mva_var *a);
mva_var *mva_mean(mva_var *a, int axis, bool keepdim);
mva_var *mva_mean_all(mva_var *a);
mva_var *mva_max(mva_var *a, int axis, bool keepdim);   /* grad to the argmax (lowest on ties) */
mva_var *mva_min(mva_var *a, int axis, bool keepdim);

mva_var *mva_matmul(mva_var *a, mva_var *b);        /* [..., M, K] x [..., K, N], batch broadcast */
/* y = x W^T + b : x [..., in], w [out, in], b [out] or NULL. */
mva_var *mva_linear(mva_var *x, mva_var *w, mva_var *b);
/* gelu(x W^T + b) as one op: the bias rides in the GEMM, GELU runs in place on
 * its output when nothing is recorded, and the backward takes gelu' from the
 * output (no second erf). b may be NULL. */
mva_var *mva_linear_gelu(mva_var *x, mva_var *w, mva_var *b);
/* x + a * s with s [D] broadcast over the last axis (LayerScale + residual in
 * one pass; s NULL: x + a). x and a have one shape. */
mva_var *mva_add_scaled(mva_var *x, mva_var *a, mva_var *s);
/* Softmax over the last axis; mask is a plain tensor (not differentiated), nonzero = keep, broadcastable. */
mva_var *mva_softmax(mva_var *x, const mvt_tensor *mask);
/* softmax(scale * x) in one op (the scale folded into the kernel's masking pass) */
mva_var *mva_softmax_scaled(mva_var *x, double scale, const mvt_tensor *mask);
mva_var *mva_layernorm(mva_var *x, mva_var *w, mva_var *b, double eps);
/* y[p] = layernorm(x; ln_w, ln_b) w[p]^T + b[p] for p < n (b NULL or b[p] NULL: no bias):
 * x [..., D], w[p] [out, D] -> [n, ..., out]. The values of layernorm then linear; its
 * backward gets the gradients of ln_w, ln_b and w[p] without forming d(layernorm output),
 * which it computes only when x needs a gradient (see ops_nn.c). */
mva_var *mva_layernorm_linears(mva_var *x, mva_var *ln_w, mva_var *ln_b, double eps, int n, mva_var *const *w,
                               mva_var *const *b);
/* sqrt(sum(x^2, axis) + eps): row norms; eps keeps the gradient finite at 0. */
mva_var *mva_norm(mva_var *a, int axis, bool keepdim, double eps);

/* views and shape ops */
mva_var *mva_reshape(mva_var *a, int ndim, const int64_t *shape);
mva_var *mva_permute(mva_var *a, const int *perm);
mva_var *mva_transpose(mva_var *a, int d0, int d1);
mva_var *mva_narrow(mva_var *a, int dim, int64_t start, int64_t len);
mva_var *mva_select(mva_var *a, int dim, int64_t index);
mva_var *mva_contiguous(mva_var *a);
mva_var *mva_concat(mva_var *const *vs, int n, int axis);
mva_var *mva_index_select(mva_var *a, int axis, const mvt_tensor *idx);
mva_var *mva_im2col(mva_var *img, int P);           /* [B,C,H,W] -> [B, hw, C*P*P] */
mva_var *mva_resize(mva_var *x, int64_t oh, int64_t ow, mvt_resample_mode mode,
                    bool align_corners, double scale_h, double scale_w);
mva_var *mva_pairwise_sqdist(mva_var *a, mva_var *b);   /* [M,D],[N,D] -> [M,N] */

/* ---- gradcheck ----------------------------------------------------------- */
/* f builds one output var from the n inputs (float64 leaves with
 * requires_grad). gradcheck draws a fixed random projection R of the output,
 * compares d(sum(f * R))/d(input) from backward with central differences
 * (step eps), element by element: |a - n| <= atol + rtol * |n|. */
typedef mva_var *(*mva_fn)(mva_var *const *inputs, int n, void *ctx);
typedef struct {
    bool ok;
    int worst_input;        /* index of the input holding the worst element */
    int64_t worst_index;    /* flat index within that input */
    double analytic, numeric;
    double worst_abs_err, worst_rel_err;
    char message[256];
} mva_gradcheck_report;
mva_gradcheck_report mva_gradcheck(mva_fn f, mva_var *const *inputs, int n, void *ctx,
                                   double eps, double atol, double rtol, uint64_t seed);

/* ---- additions (autograd engineer) ---------------------------------------- */
/* Tape marks: free only what was recorded after a mark (evaluation loops,
 * gradcheck), leaving older tape vars alive. mva_tape_reset(0) == mva_tape_clear(). */
size_t mva_tape_mark(void);
void mva_tape_reset(size_t mark);
/* Live recorded nodes (grad-mode ops whose graph has not been consumed by a backward). */
size_t mva_tape_node_count(void);
/* Tape constant sharing a's value: the gradient stops here (selection without gradient). */
mva_var *mva_detach(mva_var *a);
/* Off: mva_backward drops the .grad of intermediate (op output) vars once their
 * node has run, keeping only leaf and root gradients; saves memory in training.
 * Default on (every var that requires grad keeps its .grad). Returns the previous. */
bool mva_set_keep_intermediate_grads(bool keep);
/* Name of the op that produced v: "leaf" (no node), "spent" (consumed by a backward), or the op. */
const char *mva_op_name(const mva_var *v);

/* ---- block-sparse masked attention (autograd/ops_attention.c) ----------------- */
/* Query rows per block of the index: a block's scores are one (QB x nk x d) GEMM
 * per head over the union of the keys its rows keep. */
#define MVA_ATTN_QBLOCK 16
/* Compressed index of a mask [T, T] (one for the batch) or [S, T, T] / [S, 1, T, T]
 * (one per sample), any float dtype, nonzero = keep: per block of query rows the
 * union of their kept keys and each row's exact keep bits. An opaque I64 tensor:
 * build it once per mask, release it with mvt_release. */
mvt_tensor *mva_attn_index(const mvt_tensor *mask);
/* Share of the T x T (per mask) score entries the index computes (the unions). */
double mva_attn_index_density(const mvt_tensor *index);
int64_t mva_attn_index_masks(const mvt_tensor *index);   /* S */
/* Multi-head attention over the kept keys only: q, k, v [B, T, H*d] (heads side by
 * side in the channels, as a linear layer writes them) -> [B, T, H*d] with, per head h,
 * softmax over the kept keys of (scale q_h k_h^T) times v_h. The index holds one mask
 * or B. A row with no kept key gives zeros and zero gradient, never NaN. Equals
 * softmax(q k^T scale, mask) v per head (the dense path) up to rounding; results do not
 * depend on the thread count. */
mva_var *mva_sparse_attention(mva_var *q, mva_var *k, mva_var *v, const mvt_tensor *index, int heads,
                              double scale);

#ifdef __cplusplus
}
#endif
#endif
