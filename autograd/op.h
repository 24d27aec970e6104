/* op: the autograd op table and graph node, shared by the autograd sources only.
 *
 * Like ggml, every op is one row: an enum value, a name, one forward (value
 * from input values, through tensor kernels) and one backward (adds into the
 * gradients of the inputs that require grad). The list below is the single
 * place where ops are enumerated; op_table.c builds the table from it.
 *
 * Callers outside autograd/ use autograd.h; this header is internal (nn/ and
 * mvead/ never need it) and is not installed: a new op is a row here.
 */
#ifndef MVEAD_AUTOGRAD_OP_H
#define MVEAD_AUTOGRAD_OP_H

#include "autograd/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(ENUM_SUFFIX, function_suffix): forward mva_fwd_<suffix>, backward mva_bwd_<suffix>. */
#define MVA_OP_LIST(X)                                                          \
    X(ADD, add) X(SUB, sub) X(MUL, mul) X(DIV, div)                             \
    X(SCALE, scale) X(ADD_SCALAR, add_scalar) X(NEG, neg) X(EXP, exp)           \
    X(LOG, log) X(SQRT, sqrt) X(TANH, tanh) X(GELU, gelu) X(SQUARE, square)     \
    X(SUM, sum) X(SUM_ALL, sum_all) X(MEAN, mean) X(MEAN_ALL, mean_all)         \
    X(MAX, max) X(MIN, min) X(NORM, norm)                                       \
    X(MATMUL, matmul) X(LINEAR, linear) X(LINEAR_GELU, linear_gelu)                \
    X(ADD_SCALED, add_scaled) X(SOFTMAX, softmax)                     \
    X(LAYERNORM, layernorm) X(PAIRWISE_SQDIST, pairwise_sqdist)                 \
    X(LAYERNORM_LINEARS, layernorm_linears)                                     \
    X(RESHAPE, reshape) X(PERMUTE, permute) X(TRANSPOSE, transpose)             \
    X(NARROW, narrow) X(SELECT, select) X(CONTIGUOUS, contiguous)               \
    X(CONCAT, concat) X(INDEX_SELECT, index_select) X(IM2COL, im2col)           \
    X(RESIZE, resize) X(SPARSE_ATTENTION, sparse_attention)

typedef enum {
#define MVA_X_ENUM(E, f) MVA_OP_##E,
    MVA_OP_LIST(MVA_X_ENUM)
#undef MVA_X_ENUM
    MVA_OP_COUNT
} mva_op;

/* Non-tensor arguments of an op (only the fields the op uses are set).
 * Axes are normalised to [0, ndim) by the op's builder. */
typedef struct {
    int axis;                       /* sum/mean/max/min/norm/narrow/select/concat/index_select */
    int axis2;                      /* transpose: second dim */
    bool keepdim;
    double s;                       /* scale / add_scalar / sparse_attention's score scale */
    double eps;                     /* layernorm / norm */
    int64_t start, len;             /* narrow; select uses start as the index */
    int ndim;                       /* reshape target / permute rank; sparse_attention: heads;
                                       layernorm_linears: number of maps */
    int64_t shape[MVT_MAX_DIMS];    /* reshape target; im2col: B, C, H, W */
    int perm[MVT_MAX_DIMS];         /* permute */
    int P;                          /* im2col patch size */
    int64_t oh, ow;                 /* resize */
    int mode;                       /* resize: mvt_resample_mode */
    bool align_corners;
    double scale_h, scale_w;
    const mvt_tensor *mask;         /* softmax (borrowed, forward only) */
    const mvt_tensor *idx;          /* index_select, sparse_attention's mask index (borrowed; the
                                       forward saves a reference) */
} mva_op_params;

#define MVA_MAX_SAVED 4
#define MVA_INLINE_INPUTS 4

/* A recorded op application. Owned by its output var (out->node); freed after
 * a backward has run through it (out->node then points at mva_spent_node). */
struct mva_node {
    mva_op op;
    mva_op_params p;
    int n_inputs;
    mva_var **inputs;               /* entries may be NULL (optional inputs) */
    mva_var *inline_inputs[MVA_INLINE_INPUTS];
    mvt_tensor *saved[MVA_MAX_SAVED];   /* derived tensors the backward needs */
    mva_var *out;
    bool recording;                 /* set before the forward: false when the node is thrown away after it
                                       (no-grad), so the forward may work in place and save nothing */
    uint64_t visit;                 /* topological-sort stamp */
};

/* x: input values (NULL where the input is NULL). Returns the output value
 * (new reference); may store new references in n->saved. */
typedef mvt_tensor *(*mva_forward_fn)(mva_node *n, mvt_tensor *const *x);
/* dy: gradient of n->out (contiguous, same shape as n->out->value). Adds
 * into the .grad of each input that requires grad, and only those. */
typedef void (*mva_backward_fn)(mva_node *n, const mvt_tensor *dy);

typedef struct {
    const char *name;
    mva_forward_fn forward;
    mva_backward_fn backward;
} mva_op_info;

extern const mva_op_info mva_op_table[MVA_OP_COUNT];

#define MVA_X_DECL(E, f)                                                 \
    mvt_tensor *mva_fwd_##f(mva_node *n, mvt_tensor *const *x);          \
    void mva_bwd_##f(mva_node *n, const mvt_tensor *dy);
MVA_OP_LIST(MVA_X_DECL)
#undef MVA_X_DECL

/* Marks a var whose node was consumed by a backward (second backward: panic). */
extern mva_node mva_spent_node;

/* ---- used by the op builders (graph.c) ---------------------------------- */
/* Runs the forward of op on inputs[0..n) (entries may be NULL) and returns a
 * new tape var; records a node when grad mode is on and an input requires grad. */
mva_var *mva_apply(mva_op op, mva_var *const *inputs, int n, const mva_op_params *p);
int mva_norm_axis(int axis, int ndim);       /* negative -> from the end; panics when out of range */

/* ---- used by the backward functions (graph.c) ---------------------------- */
static inline bool mva_needs_grad(const mva_var *v) { return v && v->requires_grad; }
/* v->grad, created as zeros (contiguous, v's shape and dtype) when absent. Borrowed. */
mvt_tensor *mva_grad_buf(mva_var *v);
/* v->grad += alpha * g (g broadcasts to v's shape). Takes ownership of g;
 * adopts g as the gradient buffer when it is fresh, contiguous and fits. */
void mva_accum(mva_var *v, mvt_tensor *g, double alpha);
/* Like mva_accum, but first sums g down to v's shape (broadcasting backward). */
void mva_accum_reduce(mva_var *v, mvt_tensor *g, double alpha);

#ifdef __cplusplus
}
#endif
#endif
