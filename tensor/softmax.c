/* Softmax over the last axis, optionally scaled and masked, and its backward.
 * x [..., N] (rows R = numel / N), mask broadcastable to x (nonzero = keep).
 * Rows are independent: one thread per row, sums in f64, fixed order.
 * f32: scale and mask are applied in one pass that writes the logits
 * (masked = -inf, a select, no branch) into y, then SLEEF's vector exp
 * finishes the row in place while it is in L1 (tensor/vecmath.h). */
#include "config.h"
#include "tensor/tensor.h"
#include "tensor/vecmath.h"

#include <math.h>
#include <string.h>
#include <tgmath.h>

/* mask element j of row r (stride-aware, any dtype) */
static inline bool mask_keep(const void *m, mvt_dtype dt, int64_t off) {
    switch (dt) {
    case MVT_F32: return ((const float *)m)[off] != 0;
    case MVT_F64: return ((const double *)m)[off] != 0;
    case MVT_I64: return ((const int64_t *)m)[off] != 0;
    }
    return true;
}

/* z_j = keep_j ? scale x_j : -inf for one row (mask element j at mo + j msl) */
static void masked_logits_f32(const float *xr, float *yr, int64_t N, float scale, const void *mp, mvt_dtype mdt,
                              int64_t mo, int64_t msl) {
    switch (mdt) {
    case MVT_F32: {
        const float *m = (const float *)mp + mo;
        for (int64_t j = 0; j < N; j++) yr[j] = m[j * msl] != 0 ? xr[j] * scale : -INFINITY;
        break;
    }
    case MVT_F64: {
        const double *m = (const double *)mp + mo;
        for (int64_t j = 0; j < N; j++) yr[j] = m[j * msl] != 0 ? xr[j] * scale : -INFINITY;
        break;
    }
    case MVT_I64: {
        const int64_t *m = (const int64_t *)mp + mo;
        for (int64_t j = 0; j < N; j++) yr[j] = m[j * msl] != 0 ? xr[j] * scale : -INFINITY;
        break;
    }
    }
}

static void softmax_f32(const float *x, float *y, int64_t R, int64_t N, double scale_, const mvt_tensor *mask,
                        int mnd, const int64_t *mshape, const int64_t *mstride) {
    const void *mp = mask ? mvt_data(mask) : NULL;
    mvt_dtype mdt = mask ? mask->dtype : MVT_F32;
    int64_t msl = mask ? mstride[mnd - 1] : 0;
    const float scale = (float)scale_;
    const mvv_table *vm = mvv_get();
#pragma omp parallel for schedule(static) if (R * N > 16384)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * N;
        float *yr = y + r * N;
        if (!mask && scale > 0.0f) { vm->softmax_row_scaled(yr, xr, scale, N); continue; }   /* one read of x */
        if (mask) masked_logits_f32(xr, yr, N, scale, mp, mdt, mvt_offset_of(mnd - 1, mshape, mstride, r), msl);
        else for (int64_t j = 0; j < N; j++) yr[j] = xr[j] * scale;
        vm->softmax_row(yr, N);
    }
}

#define DEF_SOFTMAX(NAME, T)                                                                       \
    static void NAME(const T *x, T *y, int64_t R, int64_t N, double scale, const mvt_tensor *mask,   \
                     int mnd, const int64_t *mshape, const int64_t *mstride) {                     \
        const void *mp = mask ? mvt_data(mask) : NULL;                                             \
        mvt_dtype mdt = mask ? mask->dtype : MVT_F32;                                              \
        int64_t msl = mask ? mstride[mnd - 1] : 0;                                                 \
        _Pragma("omp parallel for schedule(static) if (R * N > 16384)")                            \
        for (int64_t r = 0; r < R; r++) {                                                          \
            const T *xr = x + r * N;                                                               \
            T *yr = y + r * N;                                                                     \
            int64_t mo = mask ? mvt_offset_of(mnd - 1, mshape, mstride, r) : 0;                    \
            T mx = -INFINITY;                                                                      \
            bool any = false;                                                                      \
            for (int64_t j = 0; j < N; j++) {                                                      \
                if (mask && !mask_keep(mp, mdt, mo + j * msl)) continue;                           \
                any = true;                                                                        \
                if (scale * xr[j] > mx) mx = scale * xr[j];                                        \
            }                                                                                      \
            if (!any || mx == -INFINITY) { /* nothing to attend to: zero row, never NaN */         \
                for (int64_t j = 0; j < N; j++) yr[j] = 0;                                         \
                continue;                                                                          \
            }                                                                                      \
            double sum = 0;                                                                        \
            for (int64_t j = 0; j < N; j++) {                                                      \
                T e = (mask && !mask_keep(mp, mdt, mo + j * msl)) ? (T)0 : exp(scale * xr[j] - mx);\
                yr[j] = e;                                                                         \
                sum += e;                                                                          \
            }                                                                                      \
            T inv = (T)(1.0 / sum);                                                                \
            for (int64_t j = 0; j < N; j++) yr[j] *= inv;                                          \
        }                                                                                          \
    }

DEF_SOFTMAX(softmax_f64, double)

/* Shared setup: contiguous x, rows/cols, mask expanded to x's shape. */
static mvt_tensor *softmax_impl(const mvt_tensor *x_in, double scale, const mvt_tensor *mask, bool ref) {
    MVT_ASSERT(x_in->dtype == MVT_F32 || x_in->dtype == MVT_F64, "softmax: %s not supported",
               mvt_dtype_name(x_in->dtype));
    mvt_tensor *x = mvt_contiguous(x_in);
    int nd = x->ndim > 0 ? x->ndim : 1;
    int64_t N = x->ndim > 0 ? x->shape[x->ndim - 1] : 1;
    int64_t numel = mvt_numel(x), R = N > 0 ? numel / N : 0;
    mvt_tensor *y = mvt_empty_like(x);
    mvt_tensor *em = NULL;
    int64_t mshape[MVT_MAX_DIMS], mstride[MVT_MAX_DIMS];
    if (mask) {
        em = mvt_expand(mask, x->ndim, x->shape);
        for (int d = 0; d < x->ndim; d++) { mshape[d] = x->shape[d]; mstride[d] = em->stride[d]; }
        if (x->ndim == 0) { mshape[0] = 1; mstride[0] = 0; }
    }
    if (R > 0 && N > 0) {
        if (ref) {
            const void *px = mvt_data(x);
            void *py = mvt_data(y);
            for (int64_t r = 0; r < R; r++) {
                int64_t mo = em ? mvt_offset_of(nd - 1, mshape, mstride, r) : 0;
                double mx = -INFINITY;
                for (int64_t j = 0; j < N; j++) {
                    bool keep = !em || mvt_load(mvt_data(em), em->dtype, mo + j * mstride[nd - 1]) != 0;
                    double v = scale * mvt_load(px, x->dtype, r * N + j);
                    if (keep && v > mx) mx = v;
                }
                double sum = 0;
                for (int64_t j = 0; j < N; j++) {
                    bool keep = !em || mvt_load(mvt_data(em), em->dtype, mo + j * mstride[nd - 1]) != 0;
                    if (keep && mx > -INFINITY) sum += exp(scale * mvt_load(px, x->dtype, r * N + j) - mx);
                }
                for (int64_t j = 0; j < N; j++) {
                    bool keep = !em || mvt_load(mvt_data(em), em->dtype, mo + j * mstride[nd - 1]) != 0;
                    double v = (keep && sum > 0) ? exp(scale * mvt_load(px, x->dtype, r * N + j) - mx) / sum : 0.0;
                    mvt_store(py, y->dtype, r * N + j, v);
                }
            }
        } else if (x->dtype == MVT_F32) {
            softmax_f32(mvt_f32(x), mvt_f32(y), R, N, scale, em, nd, mshape, mstride);
        } else {
            softmax_f64(mvt_f64(x), mvt_f64(y), R, N, scale, em, nd, mshape, mstride);
        }
    }
    mvt_release(em);
    mvt_release(x);
    return y;
}

mvt_tensor *mvt_softmax(const mvt_tensor *x, const mvt_tensor *mask) { return softmax_impl(x, 1.0, mask, false); }
mvt_tensor *mvt_softmax_scaled(const mvt_tensor *x, double scale, const mvt_tensor *mask) {
    return softmax_impl(x, scale, mask, false);
}
mvt_tensor *mvt_ref_softmax(const mvt_tensor *x, const mvt_tensor *mask) { return softmax_impl(x, 1.0, mask, true); }
mvt_tensor *mvt_ref_softmax_scaled(const mvt_tensor *x, double scale, const mvt_tensor *mask) {
    return softmax_impl(x, scale, mask, true);
}

#define DEF_SOFTMAX_BWD(NAME, T)                                                                   \
    static void NAME(const T *y, const T *dy, T *dx, int64_t R, int64_t N) {                       \
        _Pragma("omp parallel for schedule(static) if (R * N > 16384)")                            \
        for (int64_t r = 0; r < R; r++) {                                                          \
            const T *yr = y + r * N, *gr = dy + r * N;                                             \
            T *o = dx + r * N;                                                                     \
            double s = 0;                                                                          \
            for (int64_t j = 0; j < N; j++) s += (double)gr[j] * yr[j];                            \
            T st = (T)s;                                                                           \
            for (int64_t j = 0; j < N; j++) o[j] = yr[j] * (gr[j] - st);                           \
        }                                                                                          \
    }

/* Each row is read twice (its dot, then dx) and the second read hits L1, so
 * the pass streams y and dy once and is bound by that stream: a variant
 * without the dot took the same time. Asking for the next row's lines while
 * this one computes took 3 % off at 1 thread (257-wide rows from L3, four
 * alternated pairs, every pair faster); it changes no value. Past 4096
 * floats the next row's lines (over 2 x 16 KB) would crowd L1, so longer rows
 * are left to the hardware prefetcher (a bound chosen, not measured: only
 * 257-wide rows were timed). The step of 16 floats is a 64-byte line. */
static void softmax_bwd_f32(const float *y, const float *dy, float *dx, int64_t R, int64_t N) {
    const mvv_table *vm = mvv_get();
#pragma omp parallel for schedule(static) if (R * N > 16384)
    for (int64_t r = 0; r < R; r++) {
        if (r + 1 < R && N <= 4096)
            for (int64_t j = 0; j < N; j += 16) {
                __builtin_prefetch(y + (r + 1) * N + j);
                __builtin_prefetch(dy + (r + 1) * N + j);
            }
        vm->softmax_bwd_row(y + r * N, dy + r * N, dx + r * N, N);
    }
}
DEF_SOFTMAX_BWD(softmax_bwd_f64, double)

mvt_tensor *mvt_softmax_backward(const mvt_tensor *y_in, const mvt_tensor *dy_in) {
    MVT_ASSERT(mvt_same_shape(y_in, dy_in) && y_in->dtype == dy_in->dtype, "softmax_backward: y/dy differ");
    mvt_tensor *y = mvt_contiguous(y_in), *dy = mvt_contiguous(dy_in);
    mvt_tensor *dx = mvt_empty_like(y);
    int64_t N = y->ndim > 0 ? y->shape[y->ndim - 1] : 1, numel = mvt_numel(y), R = N > 0 ? numel / N : 0;
    if (R > 0) {
        if (y->dtype == MVT_F32) softmax_bwd_f32(mvt_f32(y), mvt_f32(dy), mvt_f32(dx), R, N);
        else softmax_bwd_f64(mvt_f64(y), mvt_f64(dy), mvt_f64(dx), R, N);
    }
    mvt_release(y);
    mvt_release(dy);
    return dx;
}
