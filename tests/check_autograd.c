/* check_autograd: every autograd op against a naive (plain-loop, float64)
 * reference in f32 and f64, gradcheck of every op in f64 (and the f32
 * backward against the f64 one), composed models (MLP, masked multi-head
 * attention), and the graph machinery: accumulation, shared inputs,
 * no-grad mode, tape ownership, and that gradcheck can fail; the block-sparse
 * masked attention op against the dense formulation. */
#include "autograd/autograd.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_EPS 1e-6
#define GC_ATOL 1e-8
#define GC_RTOL 1e-6

/* ---- helpers ----------------------------------------------------------------- */

static mvt_tensor *rnd(mvt_dtype dt, int ndim, const int64_t *shape, uint64_t seed, double lo, double hi) {
    mvt_rng r;
    mvt_rng_seed(&r, seed);
    mvt_tensor *t = mvt_empty(MVT_F64, ndim, shape);
    mvt_fill_uniform(t, &r, lo, hi);
    if (dt == MVT_F64) return t;
    mvt_tensor *c = mvt_to_dtype(t, dt);
    mvt_release(t);
    return c;
}

static bool idx_next(int ndim, const int64_t *shape, int64_t *idx) {
    for (int k = ndim - 1; k >= 0; k--) {
        if (++idx[k] < shape[k]) return true;
        idx[k] = 0;
    }
    return false;
}

/* max |got - ref| / (1 + |ref|) over all elements; -1 when the shapes differ */
static double rel_err(const mvt_tensor *got, const mvt_tensor *ref) {
    if (got->ndim != ref->ndim) return -1;
    for (int k = 0; k < ref->ndim; k++)
        if (got->shape[k] != ref->shape[k]) return -1;
    if (mvt_numel(ref) == 0) return 0;
    int64_t idx[MVT_MAX_DIMS] = {0};
    double worst = 0;
    do {
        double g = mvt_get(got, idx), r = mvt_get(ref, idx);
        double e = fabs(g - r) / (1 + fabs(r));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    } while (idx_next(ref->ndim, ref->shape, idx));
    return worst;
}

static mvt_tensor *f64_zeros(int ndim, const int64_t *shape) { return mvt_zeros(MVT_F64, ndim, shape); }

/* ---- naive references (mvt_get/mvt_set, float64) ------------------------------- */

static mvt_tensor *ref_binary(const mvt_tensor *a, const mvt_tensor *b, char op) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t s[MVT_MAX_DIMS], sa[MVT_MAX_DIMS], sb[MVT_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        int ka = k - (nd - a->ndim), kb = k - (nd - b->ndim);
        sa[k] = ka >= 0 ? a->shape[ka] : 1;
        sb[k] = kb >= 0 ? b->shape[kb] : 1;
        s[k] = sa[k] == 1 ? sb[k] : sa[k];
    }
    mvt_tensor *y = f64_zeros(nd, s);
    int64_t idx[MVT_MAX_DIMS] = {0}, ia[MVT_MAX_DIMS], ib[MVT_MAX_DIMS];
    do {
        for (int k = 0; k < nd; k++) {
            int ka = k - (nd - a->ndim), kb = k - (nd - b->ndim);
            if (ka >= 0) ia[ka] = sa[k] == 1 ? 0 : idx[k];
            if (kb >= 0) ib[kb] = sb[k] == 1 ? 0 : idx[k];
        }
        double u = mvt_get(a, ia), v = mvt_get(b, ib), r = 0;
        switch (op) {
        case '+': r = u + v; break;
        case '-': r = u - v; break;
        case '*': r = u * v; break;
        case '/': r = u / v; break;
        }
        mvt_set(y, idx, r);
    } while (idx_next(nd, s, idx));
    return y;
}

static mvt_tensor *ref_map(const mvt_tensor *a, double (*fn)(double, double), double s) {
    mvt_tensor *y = f64_zeros(a->ndim, a->shape);
    int64_t idx[MVT_MAX_DIMS] = {0};
    if (mvt_numel(a) > 0) do {
            mvt_set(y, idx, fn(mvt_get(a, idx), s));
        } while (idx_next(a->ndim, a->shape, idx));
    return y;
}
static double m_scale(double x, double s) { return x * s; }
static double m_add(double x, double s) { return x + s; }
static double m_neg(double x, double s) { (void)s; return -x; }
static double m_exp(double x, double s) { (void)s; return exp(x); }
static double m_log(double x, double s) { (void)s; return log(x); }
static double m_sqrt(double x, double s) { (void)s; return sqrt(x); }
static double m_tanh(double x, double s) { (void)s; return tanh(x); }
static double m_gelu(double x, double s) { (void)s; return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double m_square(double x, double s) { (void)s; return x * x; }

/* kind: 's' sum, 'm' mean, 'M' max, 'n' min, 'N' norm (sqrt(sum x^2 + eps)) */
static mvt_tensor *ref_reduce(const mvt_tensor *a, int axis, bool keepdim, char kind, double eps) {
    if (axis < 0) axis += a->ndim;
    int64_t ks[MVT_MAX_DIMS];
    for (int k = 0; k < a->ndim; k++) ks[k] = k == axis ? 1 : a->shape[k];
    mvt_tensor *y = f64_zeros(a->ndim, ks);
    int64_t idx[MVT_MAX_DIMS] = {0}, ia[MVT_MAX_DIMS];
    int64_t L = a->shape[axis];
    do {
        memcpy(ia, idx, sizeof ia);
        double acc = kind == 'M' ? -INFINITY : kind == 'n' ? INFINITY : 0;
        for (int64_t l = 0; l < L; l++) {
            ia[axis] = l;
            double v = mvt_get(a, ia);
            if (kind == 'M') acc = v > acc ? v : acc;
            else if (kind == 'n') acc = v < acc ? v : acc;
            else if (kind == 'N') acc += v * v;
            else acc += v;
        }
        if (kind == 'm') acc /= (double)L;
        if (kind == 'N') acc = sqrt(acc + eps);
        mvt_set(y, idx, acc);
    } while (idx_next(a->ndim, ks, idx));
    if (keepdim) return y;
    int64_t s[MVT_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < a->ndim; k++)
        if (k != axis) s[nd++] = a->shape[k];
    mvt_tensor *r = mvt_reshape(y, nd, s);
    mvt_release(y);
    return r;
}

static mvt_tensor *ref_all(const mvt_tensor *a, bool mean) {
    double s = 0;
    int64_t idx[MVT_MAX_DIMS] = {0};
    do s += mvt_get(a, idx);
    while (idx_next(a->ndim, a->shape, idx));
    return mvt_scalar(MVT_F64, mean ? s / (double)mvt_numel(a) : s);
}

/* y[..., o] = sum_i x[..., i] w[o, i] + b[o] */
static mvt_tensor *ref_linear(const mvt_tensor *x, const mvt_tensor *w, const mvt_tensor *b) {
    int64_t in = w->shape[1], out = w->shape[0];
    int64_t ys[MVT_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) ys[k] = x->shape[k];
    ys[x->ndim - 1] = out;
    mvt_tensor *y = f64_zeros(x->ndim, ys);
    int64_t idx[MVT_MAX_DIMS] = {0}, ix[MVT_MAX_DIMS];
    do {
        memcpy(ix, idx, sizeof ix);
        int64_t o = idx[x->ndim - 1];
        int64_t wi[2] = {o, 0};
        double acc = b ? mvt_get(b, &o) : 0;
        for (int64_t i = 0; i < in; i++) {
            ix[x->ndim - 1] = i;
            wi[1] = i;
            acc += mvt_get(x, ix) * mvt_get(w, wi);
        }
        mvt_set(y, idx, acc);
    } while (idx_next(x->ndim, ys, idx));
    return y;
}

/* gelu of a reference result (consumes it) */
static mvt_tensor *ref_then_gelu(mvt_tensor *h) {
    mvt_tensor *y = ref_map(h, m_gelu, 0);
    mvt_release(h);
    return y;
}

/* x + a * s (s broadcast over the last axis; NULL: x + a) */
static mvt_tensor *ref_add_scaled(const mvt_tensor *x, const mvt_tensor *a, const mvt_tensor *s) {
    if (!s) return ref_binary(x, a, '+');
    mvt_tensor *as = ref_binary(a, s, '*'), *y = ref_binary(x, as, '+');
    mvt_release(as);
    return y;
}

/* y = a with dims permuted: y dim k = a dim perm[k] */
static mvt_tensor *ref_permute(const mvt_tensor *a, const int *perm) {
    int64_t s[MVT_MAX_DIMS];
    for (int k = 0; k < a->ndim; k++) s[k] = a->shape[perm[k]];
    mvt_tensor *y = f64_zeros(a->ndim, s);
    int64_t idx[MVT_MAX_DIMS] = {0}, ia[MVT_MAX_DIMS];
    do {
        for (int k = 0; k < a->ndim; k++) ia[perm[k]] = idx[k];
        mvt_set(y, idx, mvt_get(a, ia));
    } while (idx_next(a->ndim, s, idx));
    return y;
}

/* row-major element order of a, laid into shape s */
static mvt_tensor *ref_reshape(const mvt_tensor *a, int nd, const int64_t *shape) {
    int64_t n = mvt_numel(a), k = 0, known = 1, s[MVT_MAX_DIMS];
    for (int d = 0; d < nd; d++) known *= shape[d] == -1 ? 1 : shape[d];
    for (int d = 0; d < nd; d++) s[d] = shape[d] == -1 ? n / known : shape[d];
    double *buf = malloc((size_t)n * sizeof *buf);
    int64_t idx[MVT_MAX_DIMS] = {0};
    do buf[k++] = mvt_get(a, idx);
    while (idx_next(a->ndim, a->shape, idx));
    mvt_tensor *y = mvt_from_data(MVT_F64, nd, s, buf);
    free(buf);
    return y;
}

/* narrow (len >= 0) or select (len < 0: drop dim) */
static mvt_tensor *ref_slice(const mvt_tensor *a, int dim, int64_t start, int64_t len) {
    int64_t s[MVT_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < a->ndim; k++) {
        if (k == dim && len < 0) continue;
        s[nd++] = k == dim ? len : a->shape[k];
    }
    mvt_tensor *y = f64_zeros(nd, s);
    int64_t idx[MVT_MAX_DIMS] = {0}, ia[MVT_MAX_DIMS];
    do {
        for (int k = 0, j = 0; k < a->ndim; k++) {
            if (k == dim) ia[k] = start + (len < 0 ? 0 : idx[j++]);
            else ia[k] = idx[j++];
        }
        mvt_set(y, idx, mvt_get(a, ia));
    } while (idx_next(nd, s, idx));
    return y;
}

/* ---- op cases ----------------------------------------------------------------- */

typedef struct {
    int axis, axis2;
    bool keepdim;
    double s, eps;
    int ndim;
    int64_t shape[MVT_MAX_DIMS];
    int perm[MVT_MAX_DIMS];
    int64_t start, len;
    int P;
    int64_t oh, ow;
    mvt_resample_mode mode;
    bool align_corners;
    double scale_h, scale_w;
    int mask_id;           /* 0: none, 1: mask [3, 5] with an empty row */
    bool no_affine;        /* layernorm without w, b */
} cx;

static mvt_tensor *g_mask, *g_idx;

static void setup(void) {
    /* mask [3, 5]: row 1 empty, others partly kept; f32 to test "any dtype" */
    float m[15] = {1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    g_mask = mvt_from_data(MVT_F32, 2, (const int64_t[]){3, 5}, m);
    int64_t id[4] = {2, 0, 2, 3};
    g_idx = mvt_from_data(MVT_I64, 1, (const int64_t[]){4}, id);
}
static void teardown(void) {
    mva_tape_clear();
    mvt_release(g_mask);
    mvt_release(g_idx);
}
static const mvt_tensor *mask_of(const cx *c) { return c->mask_id ? g_mask : NULL; }

#define FN(name, expr)                                                   \
    static mva_var *name(mva_var *const *x, int n, void *vc) {           \
        (void)n;                                                         \
        const cx *c = vc;                                                \
        (void)c;                                                         \
        return (expr);                                                   \
    }
#define REF(name, expr)                                                  \
    static mvt_tensor *name(mvt_tensor *const *x, const cx *c) {         \
        (void)c;                                                         \
        return (expr);                                                   \
    }

FN(f_add, mva_add(x[0], x[1]))                REF(r_add, ref_binary(x[0], x[1], '+'))
FN(f_sub, mva_sub(x[0], x[1]))                REF(r_sub, ref_binary(x[0], x[1], '-'))
FN(f_mul, mva_mul(x[0], x[1]))                REF(r_mul, ref_binary(x[0], x[1], '*'))
FN(f_div, mva_div(x[0], x[1]))                REF(r_div, ref_binary(x[0], x[1], '/'))
FN(f_scale, mva_scale(x[0], c->s))            REF(r_scale, ref_map(x[0], m_scale, c->s))
FN(f_add_scalar, mva_add_scalar(x[0], c->s))  REF(r_add_scalar, ref_map(x[0], m_add, c->s))
FN(f_neg, mva_neg(x[0]))                      REF(r_neg, ref_map(x[0], m_neg, 0))
FN(f_exp, mva_exp(x[0]))                      REF(r_exp, ref_map(x[0], m_exp, 0))
FN(f_log, mva_log(x[0]))                      REF(r_log, ref_map(x[0], m_log, 0))
FN(f_sqrt, mva_sqrt(x[0]))                    REF(r_sqrt, ref_map(x[0], m_sqrt, 0))
FN(f_tanh, mva_tanh(x[0]))                    REF(r_tanh, ref_map(x[0], m_tanh, 0))
FN(f_gelu, mva_gelu(x[0]))                    REF(r_gelu, ref_map(x[0], m_gelu, 0))
FN(f_square, mva_square(x[0]))                REF(r_square, ref_map(x[0], m_square, 0))
FN(f_sum, mva_sum(x[0], c->axis, c->keepdim))   REF(r_sum, ref_reduce(x[0], c->axis, c->keepdim, 's', 0))
FN(f_mean, mva_mean(x[0], c->axis, c->keepdim)) REF(r_mean, ref_reduce(x[0], c->axis, c->keepdim, 'm', 0))
FN(f_max, mva_max(x[0], c->axis, c->keepdim))   REF(r_max, ref_reduce(x[0], c->axis, c->keepdim, 'M', 0))
FN(f_min, mva_min(x[0], c->axis, c->keepdim))   REF(r_min, ref_reduce(x[0], c->axis, c->keepdim, 'n', 0))
FN(f_norm, mva_norm(x[0], c->axis, c->keepdim, c->eps))
REF(r_norm, ref_reduce(x[0], c->axis, c->keepdim, 'N', c->eps))
FN(f_sum_all, mva_sum_all(x[0]))              REF(r_sum_all, ref_all(x[0], false))
FN(f_mean_all, mva_mean_all(x[0]))            REF(r_mean_all, ref_all(x[0], true))
FN(f_matmul, mva_matmul(x[0], x[1]))          REF(r_matmul, mvt_ref_matmul(x[0], x[1]))
FN(f_linear, mva_linear(x[0], x[1], n > 2 ? x[2] : NULL))
REF(r_linear, ref_linear(x[0], x[1], x[2]))
FN(f_linear_gelu, mva_linear_gelu(x[0], x[1], n > 2 ? x[2] : NULL))
REF(r_linear_gelu, ref_then_gelu(ref_linear(x[0], x[1], x[2])))
FN(f_add_scaled, mva_add_scaled(x[0], x[1], n > 2 ? x[2] : NULL))
REF(r_add_scaled, ref_add_scaled(x[0], x[1], x[2]))
FN(f_softmax, mva_softmax(x[0], mask_of(c)))  REF(r_softmax, mvt_ref_softmax(x[0], mask_of(c)))
FN(f_softmax_scaled, mva_softmax_scaled(x[0], c->s, mask_of(c)))
REF(r_softmax_scaled, mvt_ref_softmax_scaled(x[0], c->s, mask_of(c)))
FN(f_layernorm, c->no_affine ? mva_layernorm(x[0], NULL, NULL, c->eps) : mva_layernorm(x[0], x[1], x[2], c->eps))
REF(r_layernorm, c->no_affine ? mvt_ref_layernorm(x[0], NULL, NULL, c->eps)
                              : mvt_ref_layernorm(x[0], x[1], x[2], c->eps))
FN(f_sqdist, mva_pairwise_sqdist(x[0], x[1])) REF(r_sqdist, mvt_ref_pairwise_sqdist(x[0], x[1]))
FN(f_reshape, mva_reshape(x[0], c->ndim, c->shape))
REF(r_reshape, ref_reshape(x[0], c->ndim, c->shape))
/* reshape of a non-contiguous view (a copy in the forward) */
FN(f_reshape_nc, mva_reshape(mva_transpose(x[0], 0, 1), c->ndim, c->shape))
static mvt_tensor *r_reshape_nc(mvt_tensor *const *x, const cx *c) {
    int perm[3] = {1, 0, 2};
    mvt_tensor *t = ref_permute(x[0], perm);
    mvt_tensor *y = ref_reshape(t, c->ndim, c->shape);
    mvt_release(t);
    return y;
}
FN(f_permute, mva_permute(x[0], c->perm))     REF(r_permute, ref_permute(x[0], c->perm))
FN(f_transpose, mva_transpose(x[0], c->axis, c->axis2))
static mvt_tensor *r_transpose(mvt_tensor *const *x, const cx *c) {
    int perm[MVT_MAX_DIMS];
    for (int k = 0; k < x[0]->ndim; k++) perm[k] = k;
    perm[c->axis] = c->axis2;
    perm[c->axis2] = c->axis;
    return ref_permute(x[0], perm);
}
FN(f_narrow, mva_narrow(x[0], c->axis, c->start, c->len))
REF(r_narrow, ref_slice(x[0], c->axis, c->start, c->len))
FN(f_select, mva_select(x[0], c->axis, c->start))  REF(r_select, ref_slice(x[0], c->axis, c->start, -1))
FN(f_contiguous, mva_contiguous(mva_transpose(x[0], c->axis, c->axis2)))
FN(f_concat, mva_concat(x, n, c->axis))
static mvt_tensor *r_concat(mvt_tensor *const *x, const cx *c) {
    /* three inputs along c->axis */
    int64_t s[MVT_MAX_DIMS];
    int nd = x[0]->ndim;
    memcpy(s, x[0]->shape, sizeof s);
    s[c->axis] = x[0]->shape[c->axis] + x[1]->shape[c->axis] + x[2]->shape[c->axis];
    mvt_tensor *y = f64_zeros(nd, s);
    int64_t idx[MVT_MAX_DIMS] = {0}, ia[MVT_MAX_DIMS];
    do {
        memcpy(ia, idx, sizeof ia);
        int i = 0;
        while (ia[c->axis] >= x[i]->shape[c->axis]) ia[c->axis] -= x[i++]->shape[c->axis];
        mvt_set(y, idx, mvt_get(x[i], ia));
    } while (idx_next(nd, s, idx));
    return y;
}
FN(f_index_select, mva_index_select(x[0], c->axis, g_idx))
static mvt_tensor *r_index_select(mvt_tensor *const *x, const cx *c) {
    int64_t s[MVT_MAX_DIMS];
    memcpy(s, x[0]->shape, sizeof s);
    s[c->axis] = mvt_numel(g_idx);
    mvt_tensor *y = f64_zeros(x[0]->ndim, s);
    int64_t idx[MVT_MAX_DIMS] = {0}, ia[MVT_MAX_DIMS];
    do {
        memcpy(ia, idx, sizeof ia);
        ia[c->axis] = mvt_i64(g_idx)[idx[c->axis]];
        mvt_set(y, idx, mvt_get(x[0], ia));
    } while (idx_next(x[0]->ndim, s, idx));
    return y;
}
FN(f_im2col, mva_im2col(x[0], c->P))
static mvt_tensor *r_im2col(mvt_tensor *const *x, const cx *c) {
    const mvt_tensor *a = x[0];
    int64_t B = a->shape[0], C = a->shape[1], H = a->shape[2], W = a->shape[3], P = c->P;
    int64_t w = W / P, s[3] = {B, (H / P) * w, C * P * P};
    mvt_tensor *y = f64_zeros(3, s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < s[1]; j++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t ky = 0; ky < P; ky++)
                    for (int64_t kx = 0; kx < P; kx++) {
                        int64_t ia[4] = {b, ch, (j / w) * P + ky, (j % w) * P + kx};
                        int64_t iy[3] = {b, j, ch * P * P + ky * P + kx};
                        mvt_set(y, iy, mvt_get(a, ia));
                    }
    return y;
}
FN(f_resize, mva_resize(x[0], c->oh, c->ow, c->mode, c->align_corners, c->scale_h, c->scale_w))
REF(r_resize, mvt_ref_resize(x[0], c->oh, c->ow, c->mode, c->align_corners, c->scale_h, c->scale_w))

typedef mvt_tensor *(*ref_fn)(mvt_tensor *const *x, const cx *c);

typedef struct {
    const char *name;
    mva_fn fn;
    ref_fn ref;
    cx c;
    int n;
    int ndim[3];
    int64_t shape[3][MVT_MAX_DIMS];
    double lo, hi;          /* input range (all inputs) */
} op_case;

#define S(...) {__VA_ARGS__}
static const op_case cases[] = {
    {"add_broadcast", f_add, r_add, {0}, 2, {3, 2}, {S(2, 3, 4), S(3, 1)}, -1, 1},
    {"add_same", f_add, r_add, {0}, 2, {2, 2}, {S(3, 4), S(3, 4)}, -1, 1},
    {"sub_broadcast_a", f_sub, r_sub, {0}, 2, {2, 3}, {S(3, 1), S(2, 3, 4)}, -1, 1},
    {"mul_broadcast", f_mul, r_mul, {0}, 2, {3, 2}, {S(2, 3, 4), S(1, 4)}, -1, 1},
    {"div_broadcast", f_div, r_div, {0}, 2, {3, 3}, {S(2, 3, 4), S(2, 1, 4)}, 0.5, 2},
    {"scale", f_scale, r_scale, {.s = -1.7}, 1, {2}, {S(3, 4)}, -1, 1},
    {"add_scalar", f_add_scalar, r_add_scalar, {.s = 0.3}, 1, {2}, {S(3, 4)}, -1, 1},
    {"neg", f_neg, r_neg, {0}, 1, {3}, {S(2, 3, 2)}, -1, 1},
    {"exp", f_exp, r_exp, {0}, 1, {2}, {S(3, 4)}, -1, 1},
    {"log", f_log, r_log, {0}, 1, {2}, {S(3, 4)}, 0.5, 2},
    {"sqrt", f_sqrt, r_sqrt, {0}, 1, {2}, {S(3, 4)}, 0.5, 2},
    {"tanh", f_tanh, r_tanh, {0}, 1, {2}, {S(3, 4)}, -1.5, 1.5},
    {"gelu", f_gelu, r_gelu, {0}, 1, {2}, {S(3, 5)}, -2, 2},
    {"square", f_square, r_square, {0}, 1, {2}, {S(3, 4)}, -1, 1},
    {"sum_axis1", f_sum, r_sum, {.axis = 1}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"sum_last_keepdim", f_sum, r_sum, {.axis = -1, .keepdim = true}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"sum_all", f_sum_all, r_sum_all, {0}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"mean_axis0", f_mean, r_mean, {.axis = 0}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"mean_all", f_mean_all, r_mean_all, {0}, 1, {2}, {S(3, 4)}, -1, 1},
    {"max_axis1", f_max, r_max, {.axis = 1}, 1, {3}, {S(2, 5, 3)}, -1, 1},
    {"min_last_keepdim", f_min, r_min, {.axis = -1, .keepdim = true}, 1, {2}, {S(4, 5)}, -1, 1},
    {"norm_last", f_norm, r_norm, {.axis = -1, .eps = 1e-12}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"norm_axis0_keepdim", f_norm, r_norm, {.axis = 0, .keepdim = true, .eps = 1e-6}, 1, {2}, {S(4, 3)}, -1, 1},
    {"matmul_2d", f_matmul, r_matmul, {0}, 2, {2, 2}, {S(3, 4), S(4, 5)}, -1, 1},
    {"matmul_batch_b2d", f_matmul, r_matmul, {0}, 2, {3, 2}, {S(2, 3, 4), S(4, 5)}, -1, 1},
    {"matmul_batch_broadcast", f_matmul, r_matmul, {0}, 2, {4, 3}, {S(2, 1, 3, 4), S(3, 4, 2)}, -1, 1},
    {"matmul_a2d", f_matmul, r_matmul, {0}, 2, {2, 3}, {S(3, 4), S(2, 4, 5)}, -1, 1},
    {"linear_3d_bias", f_linear, r_linear, {0}, 3, {3, 2, 1}, {S(2, 3, 4), S(5, 4), S(5)}, -1, 1},
    {"linear_2d_nobias", f_linear, r_linear, {0}, 2, {2, 2}, {S(3, 4), S(2, 4)}, -1, 1},
    {"linear_1d", f_linear, r_linear, {0}, 3, {1, 2, 1}, {S(4), S(3, 4), S(3)}, -1, 1},
    {"linear_gelu_3d_bias", f_linear_gelu, r_linear_gelu, {0}, 3, {3, 2, 1}, {S(2, 3, 4), S(5, 4), S(5)}, -1, 1},
    {"linear_gelu_2d_nobias", f_linear_gelu, r_linear_gelu, {0}, 2, {2, 2}, {S(3, 4), S(6, 4)}, -1.5, 1.5},
    {"add_scaled_layerscale", f_add_scaled, r_add_scaled, {0}, 3, {3, 3, 1}, {S(2, 3, 4), S(2, 3, 4), S(4)}, -1, 1},
    {"add_scaled_plain", f_add_scaled, r_add_scaled, {0}, 2, {2, 2}, {S(3, 5), S(3, 5)}, -1, 1},
    {"softmax", f_softmax, r_softmax, {0}, 1, {3}, {S(2, 3, 5)}, -2, 2},
    {"softmax_masked_empty_row", f_softmax, r_softmax, {.mask_id = 1}, 1, {3}, {S(2, 3, 5)}, -2, 2},
    {"softmax_scaled_masked", f_softmax_scaled, r_softmax_scaled, {.s = 0.37, .mask_id = 1}, 1, {3}, {S(2, 3, 5)}, -2, 2},
    {"layernorm", f_layernorm, r_layernorm, {.eps = 1e-5}, 3, {3, 1, 1}, {S(2, 3, 5), S(5), S(5)}, -1, 1},
    {"layernorm_plain", f_layernorm, r_layernorm, {.eps = 1e-6, .no_affine = true}, 1, {2}, {S(4, 6)}, -1, 1},
    {"pairwise_sqdist", f_sqdist, r_sqdist, {0}, 2, {2, 2}, {S(4, 3), S(5, 3)}, -1, 1},
    {"reshape_infer", f_reshape, r_reshape, {.ndim = 2, .shape = {4, -1}}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"reshape_noncontig", f_reshape_nc, r_reshape_nc, {.ndim = 2, .shape = {6, 4}}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"permute", f_permute, r_permute, {.perm = {2, 0, 1}}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"transpose", f_transpose, r_transpose, {.axis = 0, .axis2 = 2}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"narrow", f_narrow, r_narrow, {.axis = 1, .start = 1, .len = 3}, 1, {2}, {S(3, 5)}, -1, 1},
    {"select", f_select, r_select, {.axis = 1, .start = 2}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"contiguous_of_transpose", f_contiguous, r_transpose, {.axis = 0, .axis2 = 1}, 1, {3}, {S(2, 3, 4)}, -1, 1},
    {"concat", f_concat, r_concat, {.axis = 1}, 3, {3, 3, 3}, {S(2, 1, 3), S(2, 2, 3), S(2, 3, 3)}, -1, 1},
    {"index_select", f_index_select, r_index_select, {.axis = 0}, 1, {2}, {S(4, 3)}, -1, 1},
    {"im2col", f_im2col, r_im2col, {.P = 2}, 1, {4}, {S(2, 2, 4, 6)}, -1, 1},
    {"resize_bilinear", f_resize, r_resize, {.oh = 6, .ow = 7, .mode = MVT_BILINEAR}, 1, {4}, {S(1, 2, 4, 5)}, -1, 1},
    {"resize_bilinear_ac_down", f_resize, r_resize, {.oh = 3, .ow = 2, .mode = MVT_BILINEAR, .align_corners = true},
     1, {3}, {S(2, 5, 4)}, -1, 1},
    {"resize_bicubic_ac", f_resize, r_resize, {.oh = 7, .ow = 3, .mode = MVT_BICUBIC, .align_corners = true},
     1, {4}, {S(1, 2, 4, 5)}, -1, 1},
    {"resize_bicubic_scale", f_resize, r_resize,
     {.oh = 6, .ow = 6, .mode = MVT_BICUBIC, .scale_h = 1.5, .scale_w = 1.5}, 1, {4}, {S(1, 1, 4, 4)}, -1, 1},
    {"resize_nearest", f_resize, r_resize, {.oh = 8, .ow = 3, .mode = MVT_NEAREST}, 1, {4}, {S(1, 2, 4, 5)}, -1, 1},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static int make_inputs(const op_case *oc, mvt_dtype dt, uint64_t seed, mva_var **x) {
    for (int i = 0; i < oc->n; i++)
        x[i] = mva_leaf(rnd(dt, oc->ndim[i], oc->shape[i], seed + 101 * (uint64_t)i, oc->lo, oc->hi), true,
                        "x");
    return oc->n;
}

static void free_inputs(mva_var **x, int n) {
    for (int i = 0; i < n; i++) mva_leaf_free(x[i]);
}

/* Forward against the naive reference in f32 and f64; gradcheck in f64; the
 * f32 backward against the f64 one on the same values and projection. */
START_TEST(test_op) {
    const op_case *oc = &cases[_i];
    mva_var *x64[3], *x32[3];
    for (int d = 0; d < 2; d++) {
        mvt_dtype dt = d ? MVT_F64 : MVT_F32;
        mva_var *x[3];
        make_inputs(oc, dt, 1000 + (uint64_t)_i, x);
        mva_var *y = oc->fn(x, oc->n, (void *)&oc->c);
        ck_assert_msg(y && y->value->dtype == dt, "%s: wrong output dtype", oc->name);
        mvt_tensor *xv[3] = {NULL, NULL, NULL};
        for (int i = 0; i < oc->n; i++) xv[i] = x[i]->value;
        mvt_tensor *ref = oc->ref(xv, &oc->c);
        double e = rel_err(y->value, ref);
        double tol = dt == MVT_F64 ? 1e-12 : 2e-6;
        ck_assert_msg(e >= 0 && e <= tol, "%s %s forward: rel err %g (tol %g; -1 = shape mismatch)", oc->name,
                      mvt_dtype_name(dt), e, tol);
        ck_assert_msg(mvt_all_finite(y->value), "%s: non-finite output", oc->name);
        mvt_release(ref);
        free_inputs(x, oc->n);
        mva_tape_clear();
    }

    make_inputs(oc, MVT_F64, 1000 + (uint64_t)_i, x64);
    mva_gradcheck_report r = mva_gradcheck(oc->fn, x64, oc->n, (void *)&oc->c, GC_EPS, GC_ATOL, GC_RTOL, 7);
    ck_assert_msg(r.ok, "%s: %s", oc->name, r.message);
    ck_assert_int_eq((int)mva_tape_size(), 0);

    /* f32 backward vs f64 backward */
    for (int i = 0; i < oc->n; i++) x32[i] = mva_leaf(mvt_to_dtype(x64[i]->value, MVT_F32), true, "x32");
    mva_var *y64 = oc->fn(x64, oc->n, (void *)&oc->c);
    mva_var *y32 = oc->fn(x32, oc->n, (void *)&oc->c);
    mvt_tensor *R = rnd(MVT_F64, y64->value->ndim, y64->value->shape, 99, -1, 1);
    mvt_tensor *R32 = mvt_to_dtype(R, MVT_F32);
    mva_backward(y64, R);
    mva_backward(y32, R32);
    for (int i = 0; i < oc->n; i++) {
        ck_assert_msg(x64[i]->grad && x32[i]->grad, "%s: input %d got no gradient", oc->name, i);
        ck_assert_int_eq(x32[i]->grad->dtype, MVT_F32);
        double e = rel_err(x32[i]->grad, x64[i]->grad);
        ck_assert_msg(e >= 0 && e < 1e-4, "%s: f32 grad of input %d differs from f64 by %g", oc->name, i, e);
    }
    /* a second graph's backward adds onto the first gradient (for every op) */
    mvt_tensor *g1[3];
    for (int i = 0; i < oc->n; i++) g1[i] = mvt_scale(x64[i]->grad, 2.0);
    mva_backward(oc->fn(x64, oc->n, (void *)&oc->c), R);
    for (int i = 0; i < oc->n; i++) {
        double e = rel_err(x64[i]->grad, g1[i]);
        ck_assert_msg(e >= 0 && e < 1e-12, "%s: second backward did not accumulate into input %d (%g)", oc->name,
                      i, e);
        mvt_release(g1[i]);
    }
    mvt_release(R);
    mvt_release(R32);
    mva_tape_clear();
    free_inputs(x64, oc->n);
    free_inputs(x32, oc->n);
}
END_TEST

/* ---- composed models ------------------------------------------------------------ */

/* x [4, 6] -> linear(8) -> gelu -> linear(3) -> mean */
static mva_var *mlp(mva_var *const *p, int n, void *ctx) {
    (void)n;
    (void)ctx;
    mva_var *h = mva_gelu(mva_linear(p[0], p[1], p[2]));
    return mva_mean_all(mva_linear(h, p[3], p[4]));
}

START_TEST(test_mlp_gradcheck) {
    const int64_t shapes[5][2] = {{4, 6}, {8, 6}, {8, 0}, {3, 8}, {3, 0}};
    const char *names[5] = {"x", "w1", "b1", "w2", "b2"};
    mva_var *p[5];
    for (int i = 0; i < 5; i++)
        p[i] = mva_leaf(rnd(MVT_F64, shapes[i][1] ? 2 : 1, shapes[i], 50 + (uint64_t)i, -1, 1), true, names[i]);
    mva_gradcheck_report r = mva_gradcheck(mlp, p, 5, NULL, GC_EPS, GC_ATOL, GC_RTOL, 3);
    ck_assert_msg(r.ok, "mlp: %s", r.message);
    for (int i = 0; i < 5; i++) mva_leaf_free(p[i]);
}
END_TEST

enum { AT_B = 2, AT_T = 5, AT_D = 8, AT_H = 2, AT_EMPTY_ROW = 2 };
static mvt_tensor *g_attn_mask;   /* [T, T], row AT_EMPTY_ROW empty */

/* heads: [B, T, D] -> [B, H, T, D/H] */
static mva_var *split_heads(mva_var *t) {
    int64_t s[4] = {AT_B, AT_T, AT_H, AT_D / AT_H};
    int perm[4] = {0, 2, 1, 3};
    return mva_permute(mva_reshape(t, 4, s), perm);
}

/* p: x, ln_w, ln_b, wq, bq, wk, bk, wv, bv, wo, bo */
static mva_var *attention(mva_var *const *p, int n, void *ctx) {
    (void)n;
    (void)ctx;
    mva_var *y = mva_layernorm(p[0], p[1], p[2], 1e-6);
    mva_var *q = split_heads(mva_linear(y, p[3], p[4]));
    mva_var *k = split_heads(mva_linear(y, p[5], p[6]));
    mva_var *v = split_heads(mva_linear(y, p[7], p[8]));
    mva_var *s = mva_scale(mva_matmul(q, mva_transpose(k, -2, -1)), 1.0 / sqrt((double)(AT_D / AT_H)));
    mva_var *a = mva_softmax(s, g_attn_mask);
    int perm[4] = {0, 2, 1, 3};
    int64_t s3[3] = {AT_B, AT_T, AT_D};
    mva_var *o = mva_reshape(mva_permute(mva_matmul(a, v), perm), 3, s3);
    return mva_add(p[0], mva_linear(o, p[9], p[10]));
}

static void make_attention(mvt_dtype dt, mva_var **p) {
    const char *names[11] = {"x", "ln_w", "ln_b", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"};
    for (int i = 0; i < 11; i++) {
        int64_t s[3] = {AT_B, AT_T, AT_D};
        int nd = 3;
        if (i == 1 || i == 2 || (i >= 3 && i % 2 == 0)) { s[0] = AT_D; nd = 1; }
        else if (i >= 3) { s[0] = AT_D; s[1] = AT_D; nd = 2; }
        double lo = i == 1 ? 0.5 : -1, hi = i == 1 ? 1.5 : 1;
        p[i] = mva_leaf(rnd(dt, nd, s, 200 + (uint64_t)i, lo, hi), true, names[i]);
    }
    float m[AT_T * AT_T];
    for (int r = 0; r < AT_T; r++)
        for (int c = 0; c < AT_T; c++) m[r * AT_T + c] = r == AT_EMPTY_ROW ? 0 : ((r + c) % 3 != 0);
    g_attn_mask = mvt_from_data(MVT_F32, 2, (const int64_t[]){AT_T, AT_T}, m);
}

START_TEST(test_attention_gradcheck) {
    mva_var *p[11];
    make_attention(MVT_F64, p);
    /* the empty row gets no attention term: out = x + bo there */
    mva_var *out = attention(p, 11, NULL);
    for (int b = 0; b < AT_B; b++)
        for (int d = 0; d < AT_D; d++) {
            int64_t i3[3] = {b, AT_EMPTY_ROW, d};
            int64_t i1 = d;
            double want = mvt_get(p[0]->value, i3) + mvt_get(p[10]->value, &i1);
            ck_assert_double_eq_tol(mvt_get(out->value, i3), want, 1e-12);
        }
    ck_assert(mvt_all_finite(out->value));
    mva_tape_clear();
    mva_gradcheck_report r = mva_gradcheck(attention, p, 11, NULL, GC_EPS, GC_ATOL, GC_RTOL, 5);
    ck_assert_msg(r.ok, "attention: %s", r.message);
    for (int i = 0; i < 11; i++) mva_leaf_free(p[i]);
    mvt_release(g_attn_mask);
}
END_TEST

/* ---- graph machinery --------------------------------------------------------------- */

static mva_var *leaf64(int ndim, const int64_t *shape, uint64_t seed, bool rg) {
    return mva_leaf(rnd(MVT_F64, ndim, shape, seed, -1, 1), rg, "leaf");
}

START_TEST(test_accumulates_across_backwards) {
    int64_t s[2] = {2, 3};
    mva_var *x = leaf64(2, s, 1, true);
    mva_backward(mva_sum_all(mva_scale(x, 2.0)), NULL);
    mva_backward(mva_sum_all(mva_scale(x, 3.0)), NULL);
    for (int64_t i = 0; i < 6; i++) ck_assert_double_eq_tol(mvt_f64(x->grad)[i], 5.0, 1e-15);
    mva_zero_grad(x);
    for (int64_t i = 0; i < 6; i++) ck_assert_double_eq(mvt_f64(x->grad)[i], 0.0);
    mva_tape_clear();
    mva_leaf_free(x);
}
END_TEST

START_TEST(test_shared_input_sums_paths) {
    int64_t s[1] = {4};
    mva_var *x = leaf64(1, s, 2, true), *a = leaf64(1, s, 3, false), *b = leaf64(1, s, 4, false);
    /* y = sum(x a + x b + x x): dy/dx = a + b + 2x */
    mva_var *y = mva_sum_all(mva_add(mva_add(mva_mul(x, a), mva_mul(x, b)), mva_mul(x, x)));
    mva_backward(y, NULL);
    for (int64_t i = 0; i < 4; i++) {
        double want = mvt_f64(a->value)[i] + mvt_f64(b->value)[i] + 2 * mvt_f64(x->value)[i];
        ck_assert_double_eq_tol(mvt_f64(x->grad)[i], want, 1e-14);
    }
    /* inputs that do not require grad get none */
    ck_assert_ptr_null(a->grad);
    ck_assert_ptr_null(b->grad);
    mva_tape_clear();
    mva_leaf_free(x);
    mva_leaf_free(a);
    mva_leaf_free(b);
}
END_TEST

START_TEST(test_no_grad_records_nothing) {
    int64_t s[2] = {3, 3};
    mva_var *x = leaf64(2, s, 5, true);
    ck_assert(mva_grad_enabled());
    bool prev = mva_set_grad_enabled(false);
    ck_assert(prev);
    size_t nodes = mva_tape_node_count();
    mva_var *y = mva_sum_all(mva_matmul(x, mva_transpose(x, 0, 1)));
    ck_assert_ptr_null(y->node);
    ck_assert(!y->requires_grad);
    ck_assert_int_eq((int)mva_tape_node_count(), (int)nodes);
    ck_assert_str_eq(mva_op_name(y), "leaf");
    mva_set_grad_enabled(prev);
    mva_var *z = mva_sum_all(x);
    ck_assert_ptr_nonnull(z->node);
    ck_assert(z->requires_grad);
    ck_assert_str_eq(mva_op_name(z), "sum_all");
    mva_tape_clear();
    mva_leaf_free(x);
}
END_TEST

/* linear_gelu works in place when nothing is recorded: the same bits as the
 * recorded forward, in f32 and f64, and the unfused linear -> gelu agrees. */
START_TEST(test_linear_gelu_no_grad_in_place) {
    int64_t sx[2] = {37, 19}, sw[2] = {23, 19}, sb[1] = {23};
    for (int d = 0; d < 2; d++) {
        mvt_dtype dt = d ? MVT_F64 : MVT_F32;
        mva_var *x = mva_leaf(rnd(dt, 2, sx, 71, -3, 3), true, "x");
        mva_var *w = mva_leaf(rnd(dt, 2, sw, 72, -1, 1), true, "w");
        mva_var *b = mva_leaf(rnd(dt, 1, sb, 73, -1, 1), true, "b");
        mva_var *rec = mva_linear_gelu(x, w, b);
        ck_assert_ptr_nonnull(rec->node);
        bool prev = mva_set_grad_enabled(false);
        mva_var *inplace = mva_linear_gelu(x, w, b);
        mva_var *unfused = mva_gelu(mva_linear(x, w, b));
        mva_set_grad_enabled(prev);
        ck_assert_ptr_null(inplace->node);
        size_t nb = (size_t)mvt_numel(rec->value) * mvt_dtype_size(dt);
        ck_assert_msg(memcmp(mvt_data(rec->value), mvt_data(inplace->value), nb) == 0,
                      "linear_gelu %s: in-place (no-grad) forward differs from the recorded one",
                      mvt_dtype_name(dt));
        ck_assert_msg(memcmp(mvt_data(rec->value), mvt_data(unfused->value), nb) == 0,
                      "linear_gelu %s: differs from linear then gelu", mvt_dtype_name(dt));
        mva_tape_clear();
        mva_leaf_free(x);
        mva_leaf_free(w);
        mva_leaf_free(b);
    }
}
END_TEST

START_TEST(test_tape_clear_and_backward_frees_nodes) {
    int64_t s[2] = {2, 4};
    mva_var *x = leaf64(2, s, 6, true);
    mvt_tensor *c = mvt_full(MVT_F64, 2, s, 2.0);
    mva_var *k = mva_const(c);
    ck_assert_int_eq((int)mva_tape_size(), 1);
    size_t mark = mva_tape_mark();
    mva_var *y = mva_mean_all(mva_exp(mva_mul(x, k)));
    ck_assert_int_eq((int)mva_tape_size(), 4);
    ck_assert_int_eq((int)mva_tape_node_count(), 3);
    mva_backward(y, NULL);
    ck_assert_int_eq((int)mva_tape_node_count(), 0);   /* nodes and saved buffers freed */
    ck_assert_str_eq(mva_op_name(y), "spent");
    ck_assert_ptr_nonnull(x->grad);
    mvt_tensor *keep = mvt_retain(y->value);            /* a result can outlive the tape */
    mva_tape_reset(mark);
    ck_assert_int_eq((int)mva_tape_size(), 1);
    mva_var *y2 = mva_detach(x);
    ck_assert(!y2->requires_grad);
    mva_tape_clear();
    ck_assert_int_eq((int)mva_tape_size(), 0);
    ck_assert_int_eq((int)mva_tape_node_count(), 0);
    ck_assert(mvt_all_finite(keep));
    mvt_release(keep);
    mva_leaf_free(x);
}
END_TEST

START_TEST(test_drop_intermediate_grads) {
    int64_t s[2] = {3, 4};
    mva_var *x = leaf64(2, s, 13, true);
    mva_var *h = mva_tanh(x);
    mva_var *y = mva_sum_all(mva_square(h));
    bool prev = mva_set_keep_intermediate_grads(false);
    ck_assert(prev);
    mva_backward(y, NULL);
    mva_set_keep_intermediate_grads(true);
    ck_assert_ptr_null(h->grad);
    ck_assert_ptr_nonnull(y->grad);
    for (int64_t i = 0; i < 12; i++) {   /* d/dx sum(tanh(x)^2) = 2 t (1 - t^2) */
        double t = tanh(mvt_f64(x->value)[i]);
        ck_assert_double_eq_tol(mvt_f64(x->grad)[i], 2 * t * (1 - t * t), 1e-14);
    }
    /* kept by default */
    mva_var *h2 = mva_tanh(x);
    mva_backward(mva_sum_all(h2), NULL);
    ck_assert_ptr_nonnull(h2->grad);
    mva_tape_clear();
    mva_leaf_free(x);
}
END_TEST

/* A graph is consumed by its backward: running it again is a programming error. */
START_TEST(test_second_backward_panics) {
    int64_t s[1] = {3};
    mva_var *x = leaf64(1, s, 14, true);
    mva_var *y = mva_sum_all(mva_exp(x));
    mva_backward(y, NULL);
    mva_backward(y, NULL);   /* aborts */
}
END_TEST

START_TEST(test_views_share_storage) {
    int64_t s[3] = {2, 3, 4};
    mva_var *x = leaf64(3, s, 7, true);
    int64_t rs[2] = {6, 4};
    int perm[3] = {2, 0, 1};
    mva_var *views[5] = {mva_reshape(x, 2, rs), mva_permute(x, perm), mva_transpose(x, 0, 2),
                         mva_narrow(x, 1, 1, 2), mva_select(x, 2, 3)};
    for (int i = 0; i < 5; i++) ck_assert_ptr_eq(views[i]->value->storage, x->value->storage);
    /* narrow + select backward land in the right slices; the rest stays zero */
    mva_var *y = mva_add(mva_sum_all(views[3]), mva_sum_all(views[4]));
    mva_backward(y, NULL);
    int64_t idx[3] = {0, 0, 0};
    do {
        double want = (idx[1] >= 1 && idx[1] < 3) + (idx[2] == 3);
        ck_assert_double_eq(mvt_get(x->grad, idx), want);
    } while (idx_next(3, s, idx));
    mva_tape_clear();
    mva_leaf_free(x);
}
END_TEST

START_TEST(test_max_min_ties_lowest_index) {
    double v[6] = {1, 3, 3, 0, -2, -2};   /* [2, 3]: row 0 max tie at 1,2; row 1 min tie at 1,2 */
    mva_var *x = mva_leaf(mvt_from_data(MVT_F64, 2, (const int64_t[]){2, 3}, v), true, "x");
    mva_var *mx = mva_max(x, 1, false), *mn = mva_min(x, 1, false);
    ck_assert_double_eq(mvt_f64(mx->value)[0], 3);
    ck_assert_double_eq(mvt_f64(mn->value)[1], -2);
    mva_backward(mva_add(mva_sum_all(mx), mva_sum_all(mn)), NULL);
    double want[6] = {1, 1, 0, 1, 1, 0};   /* max: (0,1) (1,0); min: (0,0) (1,1) */
    for (int i = 0; i < 6; i++) ck_assert_double_eq(mvt_f64(x->grad)[i], want[i]);
    mva_tape_clear();
    mva_leaf_free(x);
}
END_TEST

START_TEST(test_softmax_empty_row_zero_grad) {
    int64_t s[2] = {3, 5};
    mva_var *x = leaf64(2, s, 8, true);
    mva_var *y = mva_softmax(x, g_mask);   /* row 1 fully masked */
    mvt_tensor *R = rnd(MVT_F64, 2, s, 9, -1, 1);
    mva_backward(y, R);
    for (int64_t c = 0; c < 5; c++) {
        int64_t i[2] = {1, c};
        ck_assert_double_eq(mvt_get(y->value, i), 0.0);
        ck_assert_double_eq(mvt_get(x->grad, i), 0.0);
        i[0] = 0;
        if (mvt_get(g_mask, i) == 0) ck_assert_double_eq(mvt_get(x->grad, i), 0.0);
    }
    ck_assert(mvt_all_finite(x->grad));
    mvt_release(R);
    mva_tape_clear();
    mva_leaf_free(x);
}
END_TEST

/* ---- gradcheck itself -------------------------------------------------------------- */

/* Wrong on purpose: x * detach(x) has gradient 2x, but backward sees only x. */
static mva_var *wrong_square(mva_var *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return mva_mul(x[0], mva_detach(x[0]));
}

START_TEST(test_gradcheck_can_fail) {
    int64_t s[2] = {2, 3};
    mva_var *x = leaf64(2, s, 10, true);
    mvt_tensor *before = mvt_clone(x->value);
    size_t tape = mva_tape_size();
    mva_gradcheck_report r = mva_gradcheck(wrong_square, &x, 1, NULL, GC_EPS, GC_ATOL, GC_RTOL, 1);
    ck_assert_msg(!r.ok, "a wrong gradient passed: %s", r.message);
    ck_assert_int_eq(r.worst_input, 0);
    ck_assert(r.worst_index >= 0 && r.worst_index < 6);
    ck_assert(r.worst_abs_err > 1e-3);
    /* numeric is twice the analytic for x * x */
    ck_assert_double_eq_tol(r.numeric, 2 * r.analytic, 1e-6 * (1 + fabs(r.numeric)));
    ck_assert_ptr_nonnull(strstr(r.message, "FAILED"));
    /* inputs untouched, tape and mode restored */
    ck_assert_double_eq(mvt_max_abs_diff(before, x->value, NULL), 0.0);
    ck_assert_ptr_null(x->grad);
    ck_assert_int_eq((int)mva_tape_size(), (int)tape);
    ck_assert(mva_grad_enabled());
    /* the right function passes at the same settings */
    mva_gradcheck_report ok = mva_gradcheck(f_square, &x, 1, NULL, GC_EPS, GC_ATOL, GC_RTOL, 1);
    ck_assert_msg(ok.ok, "%s", ok.message);
    mvt_release(before);
    mva_leaf_free(x);
}
END_TEST

START_TEST(test_gradcheck_rejects_f32_and_keeps_mode) {
    int64_t s[1] = {3};
    mva_var *x = mva_leaf(rnd(MVT_F32, 1, s, 11, -1, 1), true, "x32");
    mva_set_grad_enabled(false);
    mva_gradcheck_report r = mva_gradcheck(f_square, &x, 1, NULL, GC_EPS, GC_ATOL, GC_RTOL, 1);
    ck_assert(!r.ok);
    ck_assert_ptr_nonnull(strstr(r.message, "float64"));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "x32"));
    ck_assert(!mva_grad_enabled());
    mva_set_grad_enabled(true);
    /* a valid check run from no-grad mode restores no-grad mode */
    mva_var *y = mva_leaf(rnd(MVT_F64, 1, s, 12, -1, 1), true, "y");
    mva_set_grad_enabled(false);
    r = mva_gradcheck(f_exp, &y, 1, NULL, GC_EPS, GC_ATOL, GC_RTOL, 1);
    ck_assert_msg(r.ok, "%s", r.message);
    ck_assert(!mva_grad_enabled());
    mva_set_grad_enabled(true);
    mva_leaf_free(x);
    mva_leaf_free(y);
}
END_TEST

/* ---- block-sparse masked attention (mva_sparse_attention) ----------------------------
 * Against the dense formulation built from the plain ops (matmul, masked softmax, matmul
 * per head): output and dQ, dK, dV within 1e-12 (f64) / 1e-5 (f32) of the largest
 * reference entry, on random cases (empty rows, one mask for the batch or one per sample,
 * all-ones masks, own-view-blocked full masks, T not a multiple of the query block, B 1
 * and 3); a float64 gradcheck; bitwise independence from the thread count; and that a
 * wrong mask index is caught (the comparison can fail). */

/* max |a - b| / max |b| (0 when both are 0): a tolerance on the tensor's scale,
 * since single entries of a gradient can be rounding noise around 0. */
static double scaled_err(const mvt_tensor *a, const mvt_tensor *b) {
    mvt_tensor *a64 = mvt_to_dtype(a, MVT_F64), *b64 = mvt_to_dtype(b, MVT_F64);
    const double *x = mvt_f64(a64), *y = mvt_f64(b64);
    double md = 0, mb = 0;
    for (int64_t i = 0; i < mvt_numel(a64); i++) {
        if (!isfinite(x[i])) md = INFINITY;
        md = fmax(md, fabs(x[i] - y[i]));
        mb = fmax(mb, fabs(y[i]));
    }
    mvt_release(a64);
    mvt_release(b64);
    return mb > 0 ? md / mb : md;
}

/* Mask kinds: S masks of [T, T] (S = 1 shared, or B per sample). */
enum { MK_RANDOM, MK_PER_SAMPLE, MK_ONES, MK_FULL_FUSION, MK_BAND, MK_EMPTY };

/* V views of N patches (T = V N); full fusion blocks the own view. */
static mvt_tensor *make_mask(int kind, int64_t S, int64_t T, int V, uint64_t seed) {
    int64_t sh[4] = {S, 1, T, T};
    mvt_tensor *m = mvt_zeros(MVT_F64, 4, sh);
    double *d = mvt_f64(m);
    mvt_rng r;
    mvt_rng_seed(&r, seed);
    int64_t N = T / V;
    for (int64_t s = 0; s < S; s++)
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < T; j++) {
                double keep = 0;
                switch (kind) {
                case MK_RANDOM: keep = i % 4 != 1 && mvt_rng_uniform(&r) < 0.2; break;   /* every 4th row empty */
                case MK_PER_SAMPLE: /* windows of 3 rows x 3 keys, a different pattern per sample */
                    keep = ((i / 3 + j / 3 + s) % 4 == 0) && i / N != j / N;
                    break;
                case MK_ONES: keep = 1; break;
                case MK_FULL_FUSION: keep = i / N != j / N; break;
                case MK_BAND: keep = i / N != j / N && llabs((i % N) / 4 - (j % N) / 4) <= 1; break;
                case MK_EMPTY: keep = 0; break;
                }
                d[(s * T + i) * T + j] = keep;
            }
    if (S == 1) {   /* a shared mask as the callers pass it: [T, T] */
        int64_t s2[2] = {T, T};
        mvt_tensor *m2 = mvt_reshape(m, 2, s2);
        mvt_release(m);
        return m2;
    }
    return m;
}

/* The dense reference on plain ops: per head softmax(scale q k^T, mask) v. */
static mva_var *dense_attention(mva_var *q, mva_var *k, mva_var *v, const mvt_tensor *mask, int H, double scale) {
    int64_t B = q->value->shape[0], T = q->value->shape[1], D = q->value->shape[2];
    int64_t s4[4] = {B, T, H, D / H}, s3[3] = {B, T, D};
    int perm[4] = {0, 2, 1, 3};
    mva_var *qh = mva_permute(mva_reshape(q, 4, s4), perm);
    mva_var *kh = mva_permute(mva_reshape(k, 4, s4), perm);
    mva_var *vh = mva_permute(mva_reshape(v, 4, s4), perm);
    mva_var *s = mva_scale(mva_matmul(qh, mva_transpose(kh, 2, 3)), scale);
    mva_var *a = mva_softmax(s, mask);
    mva_var *o = mva_contiguous(mva_permute(mva_matmul(a, vh), perm));
    return mva_reshape(o, 3, s3);
}

typedef struct {
    mvt_tensor *y, *dq, *dk, *dv;
} attn_result;

static void result_free(attn_result *r) {
    mvt_release(r->y);
    mvt_release(r->dq);
    mvt_release(r->dk);
    mvt_release(r->dv);
}

/* Output and the gradients of sum(y * R), sparse or dense. */
static attn_result run_attn(bool sparse, mvt_dtype dt, int64_t B, int64_t T, int64_t D, int H, const mvt_tensor *mask,
                       const mvt_tensor *index, uint64_t seed) {
    int64_t sh[3] = {B, T, D};
    mva_var *q = mva_leaf(rnd(dt, 3, sh, seed, -2, 2), true, "q");
    mva_var *k = mva_leaf(rnd(dt, 3, sh, seed + 1, -2, 2), true, "k");
    mva_var *v = mva_leaf(rnd(dt, 3, sh, seed + 2, -1, 1), true, "v");
    mvt_tensor *R = rnd(dt, 3, sh, seed + 3, -1, 1);
    double scale = 1.0 / sqrt((double)(D / H));
    mva_var *y = sparse ? mva_sparse_attention(q, k, v, index, H, scale) : dense_attention(q, k, v, mask, H, scale);
    mva_backward(mva_sum_all(mva_mul(y, mva_const(R))), NULL);
    attn_result r = {mvt_retain(y->value), mvt_retain(q->grad), mvt_retain(k->grad), mvt_retain(v->grad)};
    mva_tape_clear();
    mva_leaf_free(q);
    mva_leaf_free(k);
    mva_leaf_free(v);
    return r;
}

static void check_case(int kind, mvt_dtype dt, int64_t B, int64_t S, int64_t T, int V, int64_t D, int H) {
    double tol = dt == MVT_F64 ? 1e-12 : 1e-5;
    mvt_tensor *mask = make_mask(kind, S, T, V, 11 + (uint64_t)kind);
    mvt_tensor *index = mva_attn_index(mask);
    ck_assert_int_eq(mva_attn_index_masks(index), S);
    attn_result a = run_attn(true, dt, B, T, D, H, mask, index, 40 + (uint64_t)kind);
    attn_result b = run_attn(false, dt, B, T, D, H, mask, index, 40 + (uint64_t)kind);
    ck_assert(mvt_all_finite(a.y) && mvt_all_finite(a.dq) && mvt_all_finite(a.dk) && mvt_all_finite(a.dv));
    const char *names[4] = {"y", "dq", "dk", "dv"};
    mvt_tensor *ta[4] = {a.y, a.dq, a.dk, a.dv}, *tb[4] = {b.y, b.dq, b.dk, b.dv};
    for (int i = 0; i < 4; i++) {
        double e = scaled_err(ta[i], tb[i]);
        ck_assert_msg(e <= tol, "mask kind %d %s B %lld S %lld T %lld: %s differs from the dense path by %g (tol %g)",
                      kind, mvt_dtype_name(dt), (long long)B, (long long)S, (long long)T, names[i], e, tol);
    }
    result_free(&a);
    result_free(&b);
    mvt_release(index);
    mvt_release(mask);
}

START_TEST(test_sparse_equals_dense) {
    mvt_dtype dts[2] = {MVT_F64, MVT_F32};
    for (int t = 0; t < 2; t++) {
        mvt_dtype dt = dts[t];
        check_case(MK_RANDOM, dt, 3, 1, 40, 4, 16, 2);        /* empty rows, shared mask, B 3 */
        check_case(MK_RANDOM, dt, 1, 1, 37, 1, 12, 3);        /* T not a multiple of the block, B 1 */
        check_case(MK_PER_SAMPLE, dt, 3, 3, 48, 3, 16, 4);    /* one mask per sample (MVAS-like) */
        check_case(MK_ONES, dt, 3, 1, 36, 3, 8, 1);           /* every key: the no-gather path */
        check_case(MK_FULL_FUSION, dt, 1, 1, 48, 3, 16, 2);   /* full fusion: own view blocked */
        check_case(MK_BAND, dt, 3, 1, 96, 3, 16, 2);          /* epipolar-like bands */
        check_case(MK_EMPTY, dt, 3, 1, 20, 2, 8, 2);          /* nothing kept at all */
    }
}
END_TEST

START_TEST(test_sparse_empty_rows_zero) {
    mvt_tensor *mask = make_mask(MK_RANDOM, 1, 40, 4, 3);
    mvt_tensor *index = mva_attn_index(mask);
    attn_result a = run_attn(true, MVT_F64, 2, 40, 8, 2, mask, index, 9);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t i = 1; i < 40; i += 4)   /* rows 1, 5, 9, ... keep nothing */
            for (int64_t c = 0; c < 8; c++) {
                int64_t ix[3] = {b, i, c};
                ck_assert(mvt_get(a.y, ix) == 0.0 && mvt_get(a.dq, ix) == 0.0);
            }
    result_free(&a);
    mvt_release(index);
    mvt_release(mask);
}
END_TEST

/* gradcheck of the op itself (inputs q, k, v) in float64 */
static const mvt_tensor *g_index;
static mva_var *sparse_fn(mva_var *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return mva_sparse_attention(x[0], x[1], x[2], g_index, 2, 0.7);
}

START_TEST(test_sparse_gradcheck) {
    int kinds[3] = {MK_RANDOM, MK_PER_SAMPLE, MK_ONES};
    for (int c = 0; c < 3; c++) {
        int64_t B = 2, T = 20, D = 8;
        mvt_tensor *mask = make_mask(kinds[c], kinds[c] == MK_PER_SAMPLE ? B : 1, T, 2, 5);
        mvt_tensor *index = mva_attn_index(mask);
        g_index = index;
        int64_t sh[3] = {B, T, D};
        mva_var *x[3];
        for (int i = 0; i < 3; i++) x[i] = mva_leaf(rnd(MVT_F64, 3, sh, 70 + (uint64_t)i, -1, 1), true, "x");
        mva_gradcheck_report r = mva_gradcheck(sparse_fn, x, 3, NULL, 1e-6, 1e-8, 1e-6, 3);
        ck_assert_msg(r.ok, "sparse attention gradcheck (mask kind %d): %s", kinds[c], r.message);
        for (int i = 0; i < 3; i++) mva_leaf_free(x[i]);
        mvt_release(index);
        mvt_release(mask);
    }
}
END_TEST

static bool bitwise_equal(const mvt_tensor *a, const mvt_tensor *b) {
    return mvt_numel(a) == mvt_numel(b) &&
           memcmp(mvt_data(a), mvt_data(b), (size_t)mvt_numel(a) * mvt_dtype_size(a->dtype)) == 0;
}

START_TEST(test_sparse_thread_count_independent) {
    mvt_tensor *mask = make_mask(MK_BAND, 1, 96, 3, 1);
    mvt_tensor *index = mva_attn_index(mask);
    int prev = mvt_get_num_threads();
    mvt_set_num_threads(1);
    attn_result a = run_attn(true, MVT_F32, 3, 96, 16, 2, mask, index, 21);
    mvt_set_num_threads(2);
    attn_result b = run_attn(true, MVT_F32, 3, 96, 16, 2, mask, index, 21);
    mvt_set_num_threads(prev);
    ck_assert(bitwise_equal(a.y, b.y) && bitwise_equal(a.dq, b.dq) && bitwise_equal(a.dk, b.dk) &&
              bitwise_equal(a.dv, b.dv));
    result_free(&a);
    result_free(&b);
    mvt_release(index);
    mvt_release(mask);
}
END_TEST

/* The comparison can fail: an index built from another mask is caught. */
START_TEST(test_sparse_wrong_index_detected) {
    mvt_tensor *mask = make_mask(MK_BAND, 1, 96, 3, 1), *other = make_mask(MK_FULL_FUSION, 1, 96, 3, 1);
    mvt_tensor *index = mva_attn_index(other);
    attn_result a = run_attn(true, MVT_F64, 1, 96, 16, 2, mask, index, 5);
    attn_result b = run_attn(false, MVT_F64, 1, 96, 16, 2, mask, index, 5);
    ck_assert(scaled_err(a.y, b.y) > 1e-3);
    ck_assert_double_lt(mva_attn_index_density(index), 0.7);
    result_free(&a);
    result_free(&b);
    mvt_release(index);
    mvt_release(mask);
    mvt_release(other);
}
END_TEST

/* ---- layernorm followed by linear maps, one op (inputs x, ln_w, ln_b, w0, b0, w1, b1, w2, b2;
 * b1 is left out of both paths: a map without a bias) ---------------------------------
 * mva_layernorm_linears against mva_layernorm + mva_linear: the same values (bitwise) and
 * gradients within 1e-12 (f64) / 1e-5 (f32) of the largest, with x needing a gradient and
 * not (the backward then skips d(LN output)); and a float64 gradcheck. */

static mva_var *lnl_fused(mva_var *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    mva_var *w[3] = {x[3], x[5], x[7]}, *b[3] = {x[4], NULL, x[8]};
    return mva_layernorm_linears(x[0], x[1], x[2], 1e-6, 3, w, b);
}

static mva_var *lnl_plain(mva_var *const *x) {
    mva_var *y = mva_layernorm(x[0], x[1], x[2], 1e-6);
    mva_var *o[3] = {mva_linear(y, x[3], x[4]), mva_linear(y, x[5], NULL), mva_linear(y, x[7], x[8])};
    int64_t s[4] = {1, 2, 5, 6};
    for (int p = 0; p < 3; p++) o[p] = mva_reshape(o[p], 4, s);
    return mva_concat(o, 3, 0);
}

static void lnl_make(mvt_dtype dt, bool x_grad, mva_var **x) {
    int64_t xs[3] = {2, 5, 4}, ws[2] = {6, 4}, bs[1] = {6}, ls[1] = {4};
    x[0] = mva_leaf(rnd(dt, 3, xs, 501, -2, 2), x_grad, "x");
    x[1] = mva_leaf(rnd(dt, 1, ls, 502, 0.5, 1.5), true, "ln_w");
    x[2] = mva_leaf(rnd(dt, 1, ls, 503, -1, 1), true, "ln_b");
    for (int p = 0; p < 3; p++) {
        x[3 + 2 * p] = mva_leaf(rnd(dt, 2, ws, 510 + (uint64_t)p, -1, 1), true, "w");
        x[4 + 2 * p] = mva_leaf(rnd(dt, 1, bs, 520 + (uint64_t)p, -1, 1), true, "b");
    }
}

START_TEST(test_layernorm_linears) {
    mvt_dtype dts[2] = {MVT_F64, MVT_F32};
    for (int t = 0; t < 2; t++)
        for (int xg = 0; xg < 2; xg++) {
            mva_var *x[9], *g[2][9];
            lnl_make(dts[t], xg, x);
            mvt_tensor *vals[2];
            for (int path = 0; path < 2; path++) {
                for (int i = 0; i < 9; i++) mva_zero_grad(x[i]);
                mva_var *y = path == 0 ? lnl_fused(x, 9, NULL) : lnl_plain(x);
                mvt_tensor *R = rnd(dts[t], y->value->ndim, y->value->shape, 530, -1, 1);
                mva_backward(y, R);
                vals[path] = mvt_retain(y->value);
                for (int i = 0; i < 9; i++) {
                    g[path][i] = x[i]->grad ? mva_leaf(mvt_clone(x[i]->grad), false, "g") : NULL;
                    mva_zero_grad(x[i]);
                }
                mvt_release(R);
                mva_tape_clear();
            }
            ck_assert(mvt_max_abs_diff(vals[0], vals[1], NULL) == 0.0);
            double tol = dts[t] == MVT_F64 ? 1e-12 : 1e-5;
            for (int i = 0; i < 9; i++) {
                if (i == 6) continue;   /* b1 is not an input of either path */
                ck_assert_msg((g[0][i] != NULL) == (g[1][i] != NULL) && (i > 0 || (g[0][0] != NULL) == xg),
                              "input %d: gradient presence differs", i);
                if (!g[0][i]) continue;
                double e = mvt_max_abs_diff(g[0][i]->value, g[1][i]->value, NULL);
                ck_assert_msg(e <= tol * (1 + mvt_max_abs(g[1][i]->value)), "%s, x grad %d: input %d differs by %g",
                              mvt_dtype_name(dts[t]), xg, i, e);
            }
            for (int path = 0; path < 2; path++) {
                mvt_release(vals[path]);
                for (int i = 0; i < 9; i++) if (g[path][i]) mva_leaf_free(g[path][i]);
            }
            if (dts[t] == MVT_F64) {
                mva_var *in[9];
                for (int i = 0; i < 9; i++) in[i] = x[i];
                mva_gradcheck_report r = mva_gradcheck(lnl_fused, in, 9, NULL, 1e-6, 1e-8, 1e-6, 7);
                ck_assert_msg(r.ok, "layernorm_linears gradcheck (x grad %d): %s", xg, r.message);
            }
            for (int i = 0; i < 9; i++) mva_leaf_free(x[i]);
        }
}
END_TEST

static Suite *autograd_suite(void) {
    Suite *s = suite_create("autograd");
    TCase *ops = tcase_create("ops");
    tcase_add_checked_fixture(ops, setup, teardown);
    tcase_add_loop_test(ops, test_op, 0, NCASES);
    tcase_set_timeout(ops, 120);   /* seconds; tiny ops are slow on a loaded machine */
    suite_add_tcase(s, ops);

    TCase *models = tcase_create("models");
    tcase_add_checked_fixture(models, setup, teardown);
    tcase_set_timeout(models, 120);
    tcase_add_test(models, test_mlp_gradcheck);
    tcase_add_test(models, test_attention_gradcheck);
    suite_add_tcase(s, models);

    TCase *graph = tcase_create("graph");
    tcase_add_checked_fixture(graph, setup, teardown);
    tcase_set_timeout(graph, 120);
    tcase_add_test(graph, test_accumulates_across_backwards);
    tcase_add_test(graph, test_shared_input_sums_paths);
    tcase_add_test(graph, test_no_grad_records_nothing);
    tcase_add_test(graph, test_tape_clear_and_backward_frees_nodes);
    tcase_add_test(graph, test_drop_intermediate_grads);
    const char *fork = getenv("CK_FORK");
    if (!fork || strcmp(fork, "no") != 0) tcase_add_test_raise_signal(graph, test_second_backward_panics, SIGABRT);
    tcase_add_test(graph, test_views_share_storage);
    tcase_add_test(graph, test_max_min_ties_lowest_index);
    tcase_add_test(graph, test_softmax_empty_row_zero_grad);
    tcase_add_test(graph, test_linear_gelu_no_grad_in_place);
    tcase_add_test(graph, test_gradcheck_can_fail);
    tcase_add_test(graph, test_gradcheck_rejects_f32_and_keeps_mode);
    suite_add_tcase(s, graph);

    TCase *sparse = tcase_create("sparse_attention");
    tcase_add_checked_fixture(sparse, setup, teardown);
    tcase_set_timeout(sparse, 300);
    tcase_add_test(sparse, test_sparse_equals_dense);
    tcase_add_test(sparse, test_sparse_empty_rows_zero);
    tcase_add_test(sparse, test_sparse_gradcheck);
    tcase_add_test(sparse, test_sparse_thread_count_independent);
    tcase_add_test(sparse, test_sparse_wrong_index_detected);
    tcase_add_test(sparse, test_layernorm_linears);
    suite_add_tcase(s, sparse);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(autograd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
