/* graph: variables, the global tape that owns non-leaf vars, the grad-mode
 * switch, op recording (mva_apply) and mva_backward (topological sort, then
 * every node's backward in reverse order, accumulating into .grad). */
#include "autograd/op.h"
#include "tensor/error.h"

#include <stdlib.h>
#include <string.h>

/* The tape is not thread-safe: one thread builds and runs graphs. */
static mva_var **tape;
static size_t tape_len, tape_cap;
static size_t live_nodes;
static bool grad_enabled = true;
static bool keep_intermediate_grads = true;
static uint64_t visit_epoch;

mva_node mva_spent_node;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    MVT_ASSERT(p != NULL, "autograd: out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    MVT_ASSERT(p != NULL, "autograd: out of memory (%zu x %zu bytes)", n, size);
    return p;
}

int mva_norm_axis(int axis, int ndim) {
    int a = axis < 0 ? axis + ndim : axis;
    MVT_ASSERT(a >= 0 && a < ndim, "autograd: axis %d out of range for %d dims", axis, ndim);
    return a;
}

/* ---- nodes ---------------------------------------------------------------- */

static void node_release_saved(mva_node *n) {
    for (int i = 0; i < MVA_MAX_SAVED; i++) {
        mvt_release(n->saved[i]);
        n->saved[i] = NULL;
    }
}

static void node_free(mva_node *n) {
    if (!n || n == &mva_spent_node) return;
    node_release_saved(n);
    if (n->inputs != n->inline_inputs) free(n->inputs);
    free(n);
    live_nodes--;
}

/* ---- variables and tape --------------------------------------------------- */

static void tape_push(mva_var *v) {
    if (tape_len == tape_cap) {
        size_t cap = tape_cap ? 2 * tape_cap : 1024;
        mva_var **t = realloc(tape, cap * sizeof *t);
        MVT_ASSERT(t != NULL, "autograd: out of memory growing the tape to %zu vars", cap);
        tape = t;
        tape_cap = cap;
    }
    tape[tape_len++] = v;
}

static void var_free(mva_var *v) {
    if (!v) return;
    node_free(v->node);
    mvt_release(v->value);
    mvt_release(v->grad);
    free(v);
}

mva_var *mva_leaf(mvt_tensor *value, bool requires_grad, const char *name) {
    MVT_ASSERT(value != NULL, "mva_leaf: NULL value (%s)", name ? name : "unnamed");
    mva_var *v = xcalloc(1, sizeof *v);
    v->value = value;
    v->requires_grad = requires_grad;
    v->is_leaf = true;
    v->name = name;
    return v;
}

void mva_leaf_free(mva_var *v) {
    if (!v) return;
    MVT_ASSERT(v->is_leaf, "mva_leaf_free: %s is a tape var (freed by mva_tape_clear)",
               v->name ? v->name : "var");
    var_free(v);
}

static mva_var *tape_var(mvt_tensor *value, bool requires_grad) {
    mva_var *v = xcalloc(1, sizeof *v);
    v->value = value;
    v->requires_grad = requires_grad;
    tape_push(v);
    return v;
}

mva_var *mva_const(mvt_tensor *value) {
    MVT_ASSERT(value != NULL, "mva_const: NULL value");
    return tape_var(value, false);
}

mva_var *mva_detach(mva_var *a) {
    return mva_const(mvt_retain(a->value));
}

void mva_zero_grad(mva_var *v) {
    if (v && v->grad) mvt_fill(v->grad, 0.0);
}

size_t mva_tape_mark(void) { return tape_len; }

void mva_tape_reset(size_t mark) {
    MVT_ASSERT(mark <= tape_len, "mva_tape_reset: mark %zu beyond tape size %zu", mark, tape_len);
    /* newest first: a var's node points only at older vars */
    while (tape_len > mark) var_free(tape[--tape_len]);
    if (tape_len == 0) {
        free(tape);
        tape = NULL;
        tape_cap = 0;
    }
}

void mva_tape_clear(void) { mva_tape_reset(0); }
size_t mva_tape_size(void) { return tape_len; }
size_t mva_tape_node_count(void) { return live_nodes; }

bool mva_grad_enabled(void) { return grad_enabled; }

bool mva_set_keep_intermediate_grads(bool keep) {
    bool prev = keep_intermediate_grads;
    keep_intermediate_grads = keep;
    return prev;
}

bool mva_set_grad_enabled(bool enabled) {
    bool prev = grad_enabled;
    grad_enabled = enabled;
    return prev;
}

const char *mva_op_name(const mva_var *v) {
    if (!v || !v->node) return "leaf";
    if (v->node == &mva_spent_node) return "spent";
    return mva_op_table[v->node->op].name;
}

/* ---- recording ------------------------------------------------------------ */

mva_var *mva_apply(mva_op op, mva_var *const *inputs, int n, const mva_op_params *p) {
    MVT_ASSERT(op >= 0 && op < MVA_OP_COUNT, "mva_apply: bad op %d", (int)op);
    bool any_grad = false;
    for (int i = 0; i < n; i++) any_grad = any_grad || mva_needs_grad(inputs[i]);
    bool record = grad_enabled && any_grad;

    mva_node tmp;
    mva_node *node = record ? xcalloc(1, sizeof *node) : &tmp;
    if (!record) memset(&tmp, 0, sizeof tmp);
    node->op = op;
    node->p = *p;
    node->n_inputs = n;
    node->recording = record;
    node->inputs = n <= MVA_INLINE_INPUTS ? node->inline_inputs : xmalloc((size_t)n * sizeof(mva_var *));
    for (int i = 0; i < n; i++) node->inputs[i] = inputs[i];

    mvt_tensor *xs_inline[MVA_INLINE_INPUTS] = {0};
    mvt_tensor **xs = n <= MVA_INLINE_INPUTS ? xs_inline : xmalloc((size_t)n * sizeof(mvt_tensor *));
    for (int i = 0; i < n; i++) xs[i] = inputs[i] ? inputs[i]->value : NULL;
    mvt_tensor *y = mva_op_table[op].forward(node, xs);
    if (xs != xs_inline) free(xs);
    MVT_ASSERT(y != NULL, "autograd: forward of %s returned NULL", mva_op_table[op].name);
    node->p.mask = NULL;   /* borrowed: not valid after the call */
    node->p.idx = NULL;

    mva_var *out = tape_var(y, record);
    if (record) {
        node->out = out;
        out->node = node;
        live_nodes++;
    } else {
        node_release_saved(node);
        if (node->inputs != node->inline_inputs) free(node->inputs);
    }
    return out;
}

/* ---- gradient accumulation ------------------------------------------------ */

mvt_tensor *mva_grad_buf(mva_var *v) {
    if (!v->grad) v->grad = mvt_zeros(v->value->dtype, v->value->ndim, v->value->shape);
    return v->grad;
}

/* A tensor nobody else references (not a view of a live buffer). */
static bool is_fresh(const mvt_tensor *g) {
    return g->refcount == 1 && g->storage && g->storage->refcount == 1 && mvt_is_contiguous(g);
}

void mva_accum(mva_var *v, mvt_tensor *g, double alpha) {
    if (!v->grad && alpha == 1.0 && g->dtype == v->value->dtype && mvt_same_shape(g, v->value) &&
        is_fresh(g)) {
        v->grad = g;
        return;
    }
    mvt_axpy_(mva_grad_buf(v), alpha, g);
    mvt_release(g);
}

void mva_accum_reduce(mva_var *v, mvt_tensor *g, double alpha) {
    if (!mvt_same_shape(g, v->value)) {
        mvt_tensor *r = mvt_sum_to_shape(g, v->value->ndim, v->value->shape);
        mvt_release(g);
        g = r;
    }
    mva_accum(v, g, alpha);
}

/* ---- backward --------------------------------------------------------------- */

/* Post-order DFS from root's node over inputs that require grad. Iterative so
 * deep graphs (a ViT has thousands of nodes) cannot overflow the stack.
 * Returns the nodes in post-order: order[i] comes after the nodes of all of
 * its inputs, so running it from the end visits every consumer first. */
static mva_node **topo_sort(mva_var *root, size_t *count) {
    size_t cap = 256, len = 0, sp = 0, scap = 256;
    mva_node **order = xmalloc(cap * sizeof *order);
    struct frame { mva_node *n; int next; } *stack = xmalloc(scap * sizeof *stack);
    uint64_t epoch = ++visit_epoch;

    if (root->node) {
        MVT_ASSERT(root->node != &mva_spent_node,
                   "mva_backward: the graph of %s was already consumed by a backward", root->name ? root->name : "root");
        root->node->visit = epoch;
        stack[sp++] = (struct frame){root->node, 0};
    }
    while (sp > 0) {
        struct frame *f = &stack[sp - 1];
        if (f->next < f->n->n_inputs) {
            mva_var *in = f->n->inputs[f->next++];
            if (!mva_needs_grad(in) || !in->node) continue;
            MVT_ASSERT(in->node != &mva_spent_node,
                       "mva_backward: part of this graph (%s) was already consumed by a backward; "
                       "build the graph again", in->name ? in->name : "an intermediate");
            if (in->node->visit == epoch) continue;
            in->node->visit = epoch;
            if (sp == scap) {
                scap *= 2;
                stack = realloc(stack, scap * sizeof *stack);
                MVT_ASSERT(stack != NULL, "mva_backward: out of memory");
            }
            stack[sp++] = (struct frame){in->node, 0};
        } else {
            if (len == cap) {
                cap *= 2;
                order = realloc(order, cap * sizeof *order);
                MVT_ASSERT(order != NULL, "mva_backward: out of memory");
            }
            order[len++] = f->n;
            sp--;
        }
    }
    free(stack);
    *count = len;
    return order;
}

void mva_backward(mva_var *root, const mvt_tensor *seed) {
    MVT_ASSERT(root != NULL, "mva_backward: NULL root");
    if (!root->requires_grad) {
        mv_error("mva_backward: %s does not require grad (no input requires grad, or built in no-grad mode)",
                 root->name ? root->name : "root");
        return;
    }
    size_t count = 0;
    mva_node **order = topo_sort(root, &count);   /* panics on a consumed graph before touching grads */

    if (seed) {
        /* the seed may be of another dtype (an f64 projection on an f32 output) */
        mvt_tensor *s = seed->dtype == root->value->dtype ? mvt_retain((mvt_tensor *)seed)
                                                          : mvt_to_dtype(seed, root->value->dtype);
        mvt_axpy_(mva_grad_buf(root), 1.0, s);
        mvt_release(s);
    } else {
        MVT_ASSERT(mvt_numel(root->value) == 1,
                   "mva_backward: root has %lld elements; pass a seed for non-scalar roots",
                   (long long)mvt_numel(root->value));
        mvt_tensor *one = mvt_full(root->value->dtype, root->value->ndim, root->value->shape, 1.0);
        mva_accum(root, one, 1.0);
    }

    /* order is post-order (inputs first): run it backwards */
    for (size_t i = count; i-- > 0;) {
        mva_node *n = order[i];
        if (n->out->grad) mva_op_table[n->op].backward(n, n->out->grad);
        if (!keep_intermediate_grads && n->out != root) {
            /* consumed: nothing reads it again in this backward */
            mvt_release(n->out->grad);
            n->out->grad = NULL;
        }
    }
    for (size_t i = 0; i < count; i++) {
        mva_var *out = order[i]->out;
        node_free(order[i]);
        out->node = &mva_spent_node;
    }
    free(order);
}
