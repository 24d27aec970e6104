/* Reductions (sum/mean/max/min along one axis, sum of all, reverse
 * broadcasting), concat and index_select / index_add_.
 * Fixed order everywhere: each output element is accumulated by exactly one
 * thread, in increasing index order (f64 accumulators); sum_all adds fixed
 * 4096-element block partials in block order. */
#include "config.h"
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

#define CHUNK 256            /* inner columns per work item */
#define SUM_ALL_BLOCK 4096

/* Viewing contiguous x as [outer, n, inner] around axis. */
static void split_axis(const mvt_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
    *outer = 1; *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->shape[d];
    *n = x->shape[axis];
    for (int d = axis + 1; d < x->ndim; d++) *inner *= x->shape[d];
}

static mvt_tensor *reduced_empty(const mvt_tensor *x, int axis, bool keepdim, mvt_dtype dt) {
    int64_t shape[MVT_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d == axis) { if (keepdim) shape[nd++] = 1; }
        else shape[nd++] = x->shape[d];
    }
    return mvt_empty(dt, nd, shape);
}

typedef enum { RED_SUM, RED_MAX, RED_MIN } red_kind;

/* Reduce contiguous x [outer, n, inner] -> out [outer, inner] (and arg). */
#define DEF_REDUCE(NAME, T)                                                                        \
    static void NAME(const T *x, T *out, int64_t *arg, int64_t outer, int64_t n, int64_t inner,    \
                     red_kind kind, double post_scale) {                                           \
        int64_t nchunks = (inner + CHUNK - 1) / CHUNK, items = outer * nchunks;                    \
        _Pragma("omp parallel for schedule(static) if (outer * n * inner > 32768)")                \
        for (int64_t it = 0; it < items; it++) {                                                   \
            int64_t o = it / nchunks, c0 = (it % nchunks) * CHUNK;                                 \
            int64_t c1 = c0 + CHUNK < inner ? c0 + CHUNK : inner, w = c1 - c0;                     \
            const T *src = x + o * n * inner + c0;                                                 \
            if (kind == RED_SUM) {                                                                 \
                if (inner == 1) {                                                                  \
                    double acc = 0;                                                                \
                    const T *r = x + o * n;                                                        \
                    for (int64_t k = 0; k < n; k++) acc += r[k];                                   \
                    out[o] = (T)(acc * post_scale);                                                \
                    continue;                                                                      \
                }                                                                                  \
                double acc[CHUNK];                                                                 \
                for (int64_t j = 0; j < w; j++) acc[j] = 0;                                        \
                for (int64_t k = 0; k < n; k++) {                                                  \
                    const T *r = src + k * inner;                                                  \
                    for (int64_t j = 0; j < w; j++) acc[j] += r[j];                                \
                }                                                                                  \
                for (int64_t j = 0; j < w; j++) out[o * inner + c0 + j] = (T)(acc[j] * post_scale); \
            } else {                                                                               \
                int sign = kind == RED_MAX ? 1 : -1;                                               \
                for (int64_t j = 0; j < w; j++) {                                                  \
                    T best = src[j];                                                               \
                    int64_t bi = 0;                                                                \
                    for (int64_t k = 1; k < n; k++) {                                              \
                        T v = src[k * inner + j];                                                  \
                        /* NaN wins (propagates); ties keep the lowest index */                    \
                        if (best == best && (v != v || (sign > 0 ? v > best : v < best))) {        \
                            best = v;                                                              \
                            bi = k;                                                                \
                        }                                                                          \
                    }                                                                              \
                    out[o * inner + c0 + j] = best;                                                \
                    if (arg) arg[o * inner + c0 + j] = bi;                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEF_REDUCE(reduce_f32, float)
DEF_REDUCE(reduce_f64, double)

static mvt_tensor *reduce_axis(const mvt_tensor *a, int axis, bool keepdim, red_kind kind,
                               bool mean, mvt_tensor **arg) {
    MVT_ASSERT(a->dtype == MVT_F32 || a->dtype == MVT_F64, "reduce: %s not supported", mvt_dtype_name(a->dtype));
    if (a->ndim == 0) {   /* reducing a scalar: identity */
        if (arg) *arg = mvt_zeros(MVT_I64, 0, NULL);
        return mvt_clone(a);
    }
    axis = mvt_norm_axis(axis, a->ndim);
    MVT_ASSERT(kind == RED_SUM || a->shape[axis] > 0, "max/min over an empty axis");
    mvt_tensor *x = mvt_contiguous(a);
    mvt_tensor *out = reduced_empty(a, axis, keepdim, a->dtype);
    mvt_tensor *ai = NULL;
    if (arg) ai = reduced_empty(a, axis, keepdim, MVT_I64);
    int64_t outer, n, inner;
    split_axis(x, axis, &outer, &n, &inner);
    double post = mean ? (n > 0 ? 1.0 / (double)n : NAN) : 1.0;
    if (outer * inner > 0) {
        if (a->dtype == MVT_F32)
            reduce_f32(mvt_f32(x), mvt_f32(out), ai ? mvt_i64(ai) : NULL, outer, n, inner, kind, post);
        else
            reduce_f64(mvt_f64(x), mvt_f64(out), ai ? mvt_i64(ai) : NULL, outer, n, inner, kind, post);
    }
    mvt_release(x);
    if (arg) *arg = ai;
    return out;
}

mvt_tensor *mvt_sum(const mvt_tensor *a, int axis, bool keepdim) {
    return reduce_axis(a, axis, keepdim, RED_SUM, false, NULL);
}
mvt_tensor *mvt_mean(const mvt_tensor *a, int axis, bool keepdim) {
    return reduce_axis(a, axis, keepdim, RED_SUM, true, NULL);
}
mvt_tensor *mvt_max(const mvt_tensor *a, int axis, bool keepdim, mvt_tensor **argmax) {
    return reduce_axis(a, axis, keepdim, RED_MAX, false, argmax);
}
mvt_tensor *mvt_min(const mvt_tensor *a, int axis, bool keepdim, mvt_tensor **argmin) {
    return reduce_axis(a, axis, keepdim, RED_MIN, false, argmin);
}

mvt_tensor *mvt_sum_all(const mvt_tensor *a) {
    MVT_ASSERT(a->dtype == MVT_F32 || a->dtype == MVT_F64, "sum_all: %s not supported", mvt_dtype_name(a->dtype));
    mvt_tensor *x = mvt_contiguous(a);
    int64_t n = mvt_numel(x), nblk = (n + SUM_ALL_BLOCK - 1) / SUM_ALL_BLOCK;
    double partial_stack[64];
    double *partial = nblk <= 64 ? partial_stack : NULL;
    mvt_tensor *ptens = NULL;
    if (!partial) {
        int64_t s = nblk;
        ptens = mvt_empty(MVT_F64, 1, &s);
        partial = mvt_f64(ptens);
    }
    bool f32 = x->dtype == MVT_F32;
    const void *p = mvt_data(x);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t i0 = b * SUM_ALL_BLOCK, i1 = i0 + SUM_ALL_BLOCK < n ? i0 + SUM_ALL_BLOCK : n;
        double acc = 0;
        if (f32) { const float *q = p; for (int64_t i = i0; i < i1; i++) acc += q[i]; }
        else { const double *q = p; for (int64_t i = i0; i < i1; i++) acc += q[i]; }
        partial[b] = acc;
    }
    double total = 0;
    for (int64_t b = 0; b < nblk; b++) total += partial[b];
    mvt_release(ptens);
    mvt_release(x);
    return mvt_scalar(a->dtype, total);
}

mvt_tensor *mvt_sum_to_shape(const mvt_tensor *src, int ndim, const int64_t *shape) {
    MVT_ASSERT(ndim <= src->ndim, "sum_to_shape: target has more dims than source");
    int lead = src->ndim - ndim;
    mvt_tensor *cur = mvt_retain((mvt_tensor *)src);
    /* sum the extra leading dims, then every dim where the target has 1 */
    for (int d = 0; d < lead; d++) {
        mvt_tensor *n = mvt_sum(cur, 0, false);
        mvt_release(cur);
        cur = n;
    }
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == cur->shape[d]) continue;
        MVT_ASSERT(shape[d] == 1, "sum_to_shape: size %lld cannot reduce to %lld in dim %d",
                   (long long)cur->shape[d], (long long)shape[d], d);
        mvt_tensor *n = mvt_sum(cur, d, true);
        mvt_release(cur);
        cur = n;
    }
    if (cur == src) {   /* nothing reduced: still return a fresh contiguous tensor */
        mvt_tensor *c = mvt_clone(cur);
        mvt_release(cur);
        return c;
    }
    return cur;
}

mvt_tensor *mvt_concat(const mvt_tensor *const *ts, int n, int axis) {
    MVT_ASSERT(n > 0, "concat of zero tensors");
    const mvt_tensor *t0 = ts[0];
    axis = mvt_norm_axis(axis, t0->ndim);
    int64_t shape[MVT_MAX_DIMS];
    for (int d = 0; d < t0->ndim; d++) shape[d] = t0->shape[d];
    shape[axis] = 0;
    for (int i = 0; i < n; i++) {
        MVT_ASSERT(ts[i]->ndim == t0->ndim && ts[i]->dtype == t0->dtype, "concat: tensor %d differs in ndim/dtype", i);
        for (int d = 0; d < t0->ndim; d++)
            MVT_ASSERT(d == axis || ts[i]->shape[d] == t0->shape[d], "concat: tensor %d differs in dim %d", i, d);
        shape[axis] += ts[i]->shape[axis];
    }
    mvt_tensor *out = mvt_empty(t0->dtype, t0->ndim, shape);
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        mvt_tensor *dst = mvt_narrow(out, axis, start, ts[i]->shape[axis]);
        mvt_copy_(dst, ts[i]);
        mvt_release(dst);
        start += ts[i]->shape[axis];
    }
    return out;
}

mvt_tensor *mvt_index_select(const mvt_tensor *a, int axis, const mvt_tensor *idx) {
    MVT_ASSERT(idx->dtype == MVT_I64 && idx->ndim == 1, "index_select: idx must be 1-D i64");
    axis = mvt_norm_axis(axis, a->ndim);
    mvt_tensor *x = mvt_contiguous(a);
    mvt_tensor *ix = mvt_contiguous(idx);
    int64_t outer, n, inner, m = ix->shape[0];
    split_axis(x, axis, &outer, &n, &inner);
    int64_t shape[MVT_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) shape[d] = a->shape[d];
    shape[axis] = m;
    mvt_tensor *out = mvt_empty(a->dtype, a->ndim, shape);
    const int64_t *ip = mvt_i64(ix);
    for (int64_t i = 0; i < m; i++)
        MVT_ASSERT(ip[i] >= 0 && ip[i] < n, "index_select: index %lld out of range [0, %lld)", (long long)ip[i], (long long)n);
    size_t es = mvt_dtype_size(a->dtype);
    const char *src = mvt_data(x);
    char *dst = mvt_data(out);
#pragma omp parallel for schedule(static) if (outer * m * inner > 32768)
    for (int64_t r = 0; r < outer * m; r++) {
        int64_t o = r / m, i = r % m;
        memcpy(dst + (size_t)r * inner * es, src + (size_t)(o * n + ip[i]) * inner * es, (size_t)inner * es);
    }
    mvt_release(x);
    mvt_release(ix);
    return out;
}

void mvt_index_add_(mvt_tensor *dst, int axis, const mvt_tensor *idx, const mvt_tensor *src) {
    MVT_ASSERT(idx->dtype == MVT_I64 && idx->ndim == 1, "index_add_: idx must be 1-D i64");
    MVT_ASSERT(mvt_is_contiguous(dst), "index_add_: dst must be contiguous");
    MVT_ASSERT(dst->dtype == src->dtype && (dst->dtype == MVT_F32 || dst->dtype == MVT_F64),
               "index_add_: dtypes must match (f32/f64)");
    axis = mvt_norm_axis(axis, dst->ndim);
    MVT_ASSERT(src->ndim == dst->ndim, "index_add_: ndim differs");
    for (int d = 0; d < dst->ndim; d++)
        MVT_ASSERT(d == axis ? src->shape[d] == idx->shape[0] : src->shape[d] == dst->shape[d],
                   "index_add_: src shape does not match in dim %d", d);
    mvt_tensor *s = mvt_contiguous(src);
    mvt_tensor *ix = mvt_contiguous(idx);
    int64_t outer, n, inner, m = ix->shape[0];
    split_axis(dst, axis, &outer, &n, &inner);
    const int64_t *ip = mvt_i64(ix);
    for (int64_t i = 0; i < m; i++)
        MVT_ASSERT(ip[i] >= 0 && ip[i] < n, "index_add_: index %lld out of range [0, %lld)", (long long)ip[i], (long long)n);
    int64_t nchunks = (inner + CHUNK - 1) / CHUNK, items = outer * nchunks;
    bool f32 = dst->dtype == MVT_F32;
    char *pd = mvt_data(dst);
    const char *ps = mvt_data(s);
    /* each (outer, column chunk) item is owned by one thread; i runs in order */
#pragma omp parallel for schedule(static) if (outer * m * inner > 32768)
    for (int64_t it = 0; it < items; it++) {
        int64_t o = it / nchunks, c0 = (it % nchunks) * CHUNK, c1 = c0 + CHUNK < inner ? c0 + CHUNK : inner;
        for (int64_t i = 0; i < m; i++) {
            int64_t od = (o * n + ip[i]) * inner, os = (o * m + i) * inner;
            if (f32) {
                float *d = (float *)pd + od;
                const float *x = (const float *)ps + os;
                for (int64_t j = c0; j < c1; j++) d[j] += x[j];
            } else {
                double *d = (double *)pd + od;
                const double *x = (const double *)ps + os;
                for (int64_t j = c0; j < c1; j++) d[j] += x[j];
            }
        }
    }
    mvt_release(s);
    mvt_release(ix);
}
