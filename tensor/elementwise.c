/* Elementwise kernels with numpy broadcasting: binary ops, in-place axpy,
 * unary maths, scale/add-scalar and the exact (erf) GELU with its backward.
 * Work is split into fixed blocks of rows/elements (static schedule); no
 * reductions, so any thread count gives identical bits. f32 exp, tanh and
 * GELU go through SLEEF's vector functions (tensor/vecmath.h); f64 stays on
 * libm, which the gradchecks and fixtures were built on. */
#include "config.h"
#include "tensor/tensor.h"
#include "tensor/vecmath.h"

#include <string.h>
#include <tgmath.h>   /* exp/log/erf pick the float versions for float operands */

#define BLOCK 16384

/* o[i*so] = EXPR(x = a[i*sa], y = b[i*sb], alpha), n elements. */
typedef void (*ew_fn)(void *o, const void *a, const void *b, int64_t n, int64_t so, int64_t sa,
                      int64_t sb, double alpha);

#define DEF_EW(NAME, T, EXPR)                                                                      \
    static void NAME(void *o_, const void *a_, const void *b_, int64_t n, int64_t so, int64_t sa,  \
                     int64_t sb, double alpha_) {                                                  \
        T *o = o_;                                                                                 \
        const T *a = a_, *b = b_;                                                                  \
        const T alpha = (T)alpha_;                                                                 \
        (void)alpha;                                                                               \
        if (so == 1 && sa == 1 && sb == 1) {                                                       \
            for (int64_t i = 0; i < n; i++) { T x = a[i], y = b[i]; (void)y; o[i] = (EXPR); }      \
        } else if (so == 1 && sa == 1 && sb == 0) {                                                \
            T y = b[0]; (void)y;                                                                   \
            for (int64_t i = 0; i < n; i++) { T x = a[i]; o[i] = (EXPR); }                         \
        } else if (so == 1 && sa == 0 && sb == 1) {                                                \
            T x = a[0];                                                                            \
            for (int64_t i = 0; i < n; i++) { T y = b[i]; (void)y; o[i] = (EXPR); }                \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i * sa], y = b[i * sb]; (void)y;                                           \
                o[i * so] = (EXPR);                                                                \
            }                                                                                      \
        }                                                                                          \
    }

#define DEF_EW_BOTH(NAME, EXPR_F, EXPR_D) DEF_EW(NAME##_f32, float, EXPR_F) DEF_EW(NAME##_f64, double, EXPR_D)

DEF_EW_BOTH(ew_add, x + y, x + y)
DEF_EW_BOTH(ew_sub, x - y, x - y)
DEF_EW_BOTH(ew_mul, x * y, x * y)
DEF_EW_BOTH(ew_div, x / y, x / y)
DEF_EW_BOTH(ew_maximum, (x > y || x != x) ? x : y, (x > y || x != x) ? x : y)
DEF_EW_BOTH(ew_axpy, x + alpha * y, x + alpha * y)
DEF_EW_BOTH(ew_neg, -x, -x)
DEF_EW(ew_exp_f64, double, exp(x))
DEF_EW_BOTH(ew_log, log(x), log(x))
DEF_EW_BOTH(ew_sqrt, sqrt(x), sqrt(x))
DEF_EW(ew_tanh_f64, double, tanh(x))
DEF_EW(ew_gelu_f64, double, 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)))
DEF_EW_BOTH(ew_square, x * x, x * x)
DEF_EW_BOTH(ew_abs, fabs(x), fabs(x))
DEF_EW_BOTH(ew_recip, 1.0f / x, 1.0 / x)
DEF_EW_BOTH(ew_scale, x * alpha, x * alpha)
DEF_EW_BOTH(ew_add_scalar, x + alpha, x + alpha)
/* gelu'(x) = Phi(x) + x phi(x); x = a, dy = b */
DEF_EW(ew_gelu_bwd_f64, double,
       y * (0.5 * (1.0 + erf(x * 0.70710678118654752440)) + x * 0.39894228040143267794 * exp(-0.5 * x * x)))

/* f32 exp/tanh/GELU (and GELU's backward) through vecmath. A strided operand
 * is gathered into a small buffer first, so an element gets the same bits
 * whatever the layout of its tensor. */
#define VBUF 256
#define DEF_EW_VEC1(NAME, FIELD)                                                                   \
    static void NAME(void *o_, const void *a_, const void *b_, int64_t n, int64_t so, int64_t sa,  \
                     int64_t sb, double alpha) {                                                   \
        (void)b_; (void)sb; (void)alpha;                                                           \
        float *o = o_;                                                                             \
        const float *a = a_;                                                                       \
        const mvv_table *vm = mvv_get();                                                           \
        if (so == 1 && sa == 1) { vm->FIELD(o, a, n); return; }                                    \
        float bx[VBUF], by[VBUF];                                                                  \
        for (int64_t i0 = 0; i0 < n; i0 += VBUF) {                                                 \
            int64_t k = n - i0 < VBUF ? n - i0 : VBUF;                                             \
            for (int64_t i = 0; i < k; i++) bx[i] = a[(i0 + i) * sa];                              \
            vm->FIELD(by, bx, k);                                                                  \
            for (int64_t i = 0; i < k; i++) o[(i0 + i) * so] = by[i];                              \
        }                                                                                          \
    }
DEF_EW_VEC1(ew_exp_f32v, vexp)
DEF_EW_VEC1(ew_tanh_f32v, vtanh)
DEF_EW_VEC1(ew_gelu_f32v, gelu)

/* x = a, dy = b */
static void ew_gelu_bwd_f32v(void *o_, const void *a_, const void *b_, int64_t n, int64_t so, int64_t sa,
                             int64_t sb, double alpha) {
    (void)alpha;
    float *o = o_;
    const float *a = a_, *b = b_;
    const mvv_table *vm = mvv_get();
    if (so == 1 && sa == 1 && sb == 1) { vm->gelu_bwd(o, a, b, n); return; }
    float bx[VBUF], bg[VBUF], by[VBUF];
    for (int64_t i0 = 0; i0 < n; i0 += VBUF) {
        int64_t k = n - i0 < VBUF ? n - i0 : VBUF;
        for (int64_t i = 0; i < k; i++) { bx[i] = a[(i0 + i) * sa]; bg[i] = b[(i0 + i) * sb]; }
        vm->gelu_bwd(by, bx, bg, k);
        for (int64_t i = 0; i < k; i++) o[(i0 + i) * so] = by[i];
    }
}

/* out (any strides) = f(a, b) with a, b broadcast to out's shape (b may be NULL). */
static void run_ew(mvt_tensor *out, const mvt_tensor *a, const mvt_tensor *b, ew_fn f32, ew_fn f64,
                   double alpha) {
    MVT_ASSERT(out->dtype == MVT_F32 || out->dtype == MVT_F64, "elementwise: %s not supported",
               mvt_dtype_name(out->dtype));
    MVT_ASSERT(a->dtype == out->dtype && (!b || b->dtype == out->dtype),
               "elementwise: dtypes differ (%s, %s, %s)", mvt_dtype_name(out->dtype),
               mvt_dtype_name(a->dtype), b ? mvt_dtype_name(b->dtype) : "-");
    mvt_tensor *ea = mvt_expand(a, out->ndim, out->shape);
    mvt_tensor *eb = b ? mvt_expand(b, out->ndim, out->shape) : mvt_retain(ea);
    int nd = out->ndim;
    int64_t shape[MVT_MAX_DIMS], so[MVT_MAX_DIMS], sa[MVT_MAX_DIMS], sb[MVT_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        shape[d] = out->shape[d]; so[d] = out->stride[d]; sa[d] = ea->stride[d]; sb[d] = eb->stride[d];
    }
    if (nd == 0) { nd = 1; shape[0] = 1; so[0] = sa[0] = sb[0] = 1; }
    int64_t *strides[3] = {so, sa, sb};
    nd = mvt_coalesce(nd, shape, 3, strides);
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) numel *= shape[d];
    if (numel > 0) {
        ew_fn f = out->dtype == MVT_F32 ? f32 : f64;
        size_t es = mvt_dtype_size(out->dtype);
        int64_t n = shape[nd - 1], rows = numel / n;
        int64_t bpr = (n + BLOCK - 1) / BLOCK, nblk = rows * bpr;
        char *po = mvt_data(out);
        const char *pa = mvt_data(ea), *pb = mvt_data(eb);
        int64_t sol = so[nd - 1], sal = sa[nd - 1], sbl = sb[nd - 1];
#pragma omp parallel for schedule(static) if (numel > 32768)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t row = blk / bpr, j0 = (blk % bpr) * BLOCK, j1 = j0 + BLOCK < n ? j0 + BLOCK : n;
            int64_t oo = mvt_offset_of(nd - 1, shape, so, row) + j0 * sol;
            int64_t oa = mvt_offset_of(nd - 1, shape, sa, row) + j0 * sal;
            int64_t ob = mvt_offset_of(nd - 1, shape, sb, row) + j0 * sbl;
            f(po + oo * (int64_t)es, pa + oa * (int64_t)es, pb + ob * (int64_t)es, j1 - j0, sol, sal, sbl, alpha);
        }
    }
    mvt_release(ea);
    mvt_release(eb);
}

static mvt_tensor *binary_new(const mvt_tensor *a, const mvt_tensor *b, ew_fn f32, ew_fn f64, double alpha) {
    int nd;
    int64_t shape[MVT_MAX_DIMS];
    char sa[128], sb[128];
    MVT_ASSERT(mvt_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &nd, shape),
               "cannot broadcast %s with %s", mvt_shape_str(a, sa, sizeof sa), mvt_shape_str(b, sb, sizeof sb));
    mvt_tensor *out = mvt_empty(a->dtype, nd, shape);
    run_ew(out, a, b, f32, f64, alpha);
    return out;
}

mvt_tensor *mvt_binary(mvt_binop op, const mvt_tensor *a, const mvt_tensor *b) {
    switch (op) {
    case MVT_ADD: return binary_new(a, b, ew_add_f32, ew_add_f64, 0);
    case MVT_SUB: return binary_new(a, b, ew_sub_f32, ew_sub_f64, 0);
    case MVT_MUL: return binary_new(a, b, ew_mul_f32, ew_mul_f64, 0);
    case MVT_DIV: return binary_new(a, b, ew_div_f32, ew_div_f64, 0);
    case MVT_MAXIMUM: return binary_new(a, b, ew_maximum_f32, ew_maximum_f64, 0);
    }
    mvt_panic(__FILE__, __LINE__, "bad binop %d", (int)op);
}

mvt_tensor *mvt_add(const mvt_tensor *a, const mvt_tensor *b) { return mvt_binary(MVT_ADD, a, b); }
mvt_tensor *mvt_sub(const mvt_tensor *a, const mvt_tensor *b) { return mvt_binary(MVT_SUB, a, b); }
mvt_tensor *mvt_mul(const mvt_tensor *a, const mvt_tensor *b) { return mvt_binary(MVT_MUL, a, b); }
mvt_tensor *mvt_div(const mvt_tensor *a, const mvt_tensor *b) { return mvt_binary(MVT_DIV, a, b); }

void mvt_axpy_(mvt_tensor *dst, double alpha, const mvt_tensor *src) {
    run_ew(dst, dst, src, ew_axpy_f32, ew_axpy_f64, alpha);
}

static mvt_tensor *unary_new(const mvt_tensor *a, ew_fn f32, ew_fn f64, double alpha) {
    mvt_tensor *out = mvt_empty(a->dtype, a->ndim, a->shape);
    run_ew(out, a, NULL, f32, f64, alpha);
    return out;
}

mvt_tensor *mvt_unary(mvt_unop op, const mvt_tensor *a) {
    switch (op) {
    case MVT_NEG: return unary_new(a, ew_neg_f32, ew_neg_f64, 0);
    case MVT_EXP: return unary_new(a, ew_exp_f32v, ew_exp_f64, 0);
    case MVT_LOG: return unary_new(a, ew_log_f32, ew_log_f64, 0);
    case MVT_SQRT: return unary_new(a, ew_sqrt_f32, ew_sqrt_f64, 0);
    case MVT_TANH: return unary_new(a, ew_tanh_f32v, ew_tanh_f64, 0);
    case MVT_GELU: return unary_new(a, ew_gelu_f32v, ew_gelu_f64, 0);
    case MVT_SQUARE: return unary_new(a, ew_square_f32, ew_square_f64, 0);
    case MVT_ABS: return unary_new(a, ew_abs_f32, ew_abs_f64, 0);
    case MVT_RECIP: return unary_new(a, ew_recip_f32, ew_recip_f64, 0);
    }
    mvt_panic(__FILE__, __LINE__, "bad unop %d", (int)op);
}

mvt_tensor *mvt_scale(const mvt_tensor *a, double s) { return unary_new(a, ew_scale_f32, ew_scale_f64, s); }
mvt_tensor *mvt_add_scalar(const mvt_tensor *a, double s) {
    return unary_new(a, ew_add_scalar_f32, ew_add_scalar_f64, s);
}
mvt_tensor *mvt_gelu(const mvt_tensor *x) { return mvt_unary(MVT_GELU, x); }

mvt_tensor *mvt_gelu_backward(const mvt_tensor *x, const mvt_tensor *dy) {
    return binary_new(x, dy, ew_gelu_bwd_f32v, ew_gelu_bwd_f64, 0);
}

/* ---- GELU without a second erf, in place, and x + a * s ---------------------------- */

/* Contiguous f32 copies (new references) of tensors the kernels below read flat. */
static mvt_tensor *flat(const mvt_tensor *t) { return mvt_contiguous(t); }

mvt_tensor *mvt_gelu_backward_y(const mvt_tensor *x, const mvt_tensor *y, const mvt_tensor *dy) {
    MVT_ASSERT(mvt_same_shape(x, y) && mvt_same_shape(x, dy) && x->dtype == y->dtype && x->dtype == dy->dtype,
               "gelu_backward_y: x, y and dy must share one shape and dtype");
    if (x->dtype != MVT_F32) return mvt_gelu_backward(x, dy);   /* f64 keeps the exact erf formula */
    mvt_tensor *xc = flat(x), *yc = flat(y), *gc = flat(dy);
    mvt_tensor *dx = mvt_empty(MVT_F32, x->ndim, x->shape);
    const float *px = mvt_f32(xc), *py = mvt_f32(yc), *pg = mvt_f32(gc);
    float *pd = mvt_f32(dx);
    int64_t n = mvt_numel(x), nblk = (n + BLOCK - 1) / BLOCK;
    const mvv_table *vm = mvv_get();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t i0 = b * BLOCK, k = n - i0 < BLOCK ? n - i0 : BLOCK;
        vm->gelu_bwd_y(pd + i0, px + i0, py + i0, pg + i0, k);
    }
    mvt_release(xc);
    mvt_release(yc);
    mvt_release(gc);
    return dx;
}

void mvt_gelu_(mvt_tensor *x) {
    MVT_ASSERT(mvt_is_contiguous(x) && (x->dtype == MVT_F32 || x->dtype == MVT_F64),
               "gelu_: in place needs a contiguous f32/f64 tensor");
    run_ew(x, x, NULL, ew_gelu_f32v, ew_gelu_f64, 0);   /* each element is read before it is written */
}

/* y = x + a * s, s broadcast over the last axis (LayerScale then the residual add). */
#define DEF_ADD_SCALED(NAME, T)                                                                    \
    static void NAME(T *y, const T *x, const T *a, const T *s, int64_t R, int64_t D) {             \
        _Pragma("omp parallel for schedule(static) if (R * D > 32768)")                            \
        for (int64_t r = 0; r < R; r++) {                                                          \
            const T *xr = x + r * D, *ar = a + r * D;                                              \
            T *yr = y + r * D;                                                                     \
            if (s)                                                                                 \
                for (int64_t j = 0; j < D; j++) { T p = ar[j] * s[j]; yr[j] = xr[j] + p; }         \
            else                                                                                   \
                for (int64_t j = 0; j < D; j++) yr[j] = xr[j] + ar[j];                             \
        }                                                                                          \
    }
DEF_ADD_SCALED(add_scaled_f32, float)
DEF_ADD_SCALED(add_scaled_f64, double)

mvt_tensor *mvt_add_scaled(const mvt_tensor *x, const mvt_tensor *a, const mvt_tensor *s) {
    char sx[128], sa[128];
    MVT_ASSERT(mvt_same_shape(x, a) && x->dtype == a->dtype && x->ndim >= 1 &&
                   (x->dtype == MVT_F32 || x->dtype == MVT_F64),
               "add_scaled: x %s and a %s must share one shape and float dtype", mvt_shape_str(x, sx, sizeof sx),
               mvt_shape_str(a, sa, sizeof sa));
    int64_t D = x->shape[x->ndim - 1], R = D > 0 ? mvt_numel(x) / D : 0;
    MVT_ASSERT(!s || (s->dtype == x->dtype && mvt_numel(s) == D), "add_scaled: the scale must be [%lld] %s",
               (long long)D, mvt_dtype_name(x->dtype));
    mvt_tensor *xc = flat(x), *ac = flat(a), *sc = s ? flat(s) : NULL;
    mvt_tensor *y = mvt_empty(x->dtype, x->ndim, x->shape);
    if (x->dtype == MVT_F32)
        add_scaled_f32(mvt_f32(y), mvt_f32(xc), mvt_f32(ac), sc ? mvt_f32(sc) : NULL, R, D);
    else
        add_scaled_f64(mvt_f64(y), mvt_f64(xc), mvt_f64(ac), sc ? mvt_f64(sc) : NULL, R, D);
    mvt_release(xc);
    mvt_release(ac);
    mvt_release(sc);
    return y;
}
