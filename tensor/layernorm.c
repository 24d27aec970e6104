/* LayerNorm over the last axis with saved mean/rstd, and its accumulating
 * backward. Statistics are computed per row in f64, and no sum depends on
 * the thread count. f32 rows go through tensor/vecmath.h: one pass for mean
 * and variance (shifted sums), one for normalise + affine; its backward takes
 * each row once for dx, dw and db, dw/db summed by fixed row blocks (see
 * ln_bwd_f32). f64 keeps the loops below: dw/db by column chunks, each owned
 * by one thread, rows in order. */
#include "config.h"
#include "tensor/tensor.h"
#include "tensor/vecmath.h"

#include <math.h>
#include <string.h>

#define CHUNK 128   /* dw/db column chunks: 768 columns make 6, an even split over 2 or 3 threads */

static mvt_tensor *row_stat_tensor(const mvt_tensor *x) {
    return mvt_empty(x->dtype, x->ndim - 1, x->shape);
}

/* x [R, D] -> y [R, D]; mean/rstd [R] (may be NULL) */
#define DEF_LN_FWD(NAME, T)                                                                        \
    static void NAME(const T *x, const T *w, const T *b, T *y, T *mean, T *rstd, int64_t R,        \
                     int64_t D, double eps) {                                                      \
        _Pragma("omp parallel for schedule(static) if (R * D > 16384)")                            \
        for (int64_t r = 0; r < R; r++) {                                                          \
            const T *xr = x + r * D;                                                               \
            T *yr = y + r * D;                                                                     \
            double s = 0;                                                                          \
            for (int64_t j = 0; j < D; j++) s += xr[j];                                            \
            double mu = s / (double)D, v = 0;                                                      \
            for (int64_t j = 0; j < D; j++) { double d = xr[j] - mu; v += d * d; }                 \
            double rs = 1.0 / sqrt(v / (double)D + eps);                                           \
            for (int64_t j = 0; j < D; j++) {                                                      \
                double o = (xr[j] - mu) * rs;                                                      \
                if (w) o *= w[j];                                                                  \
                if (b) o += b[j];                                                                  \
                yr[j] = (T)o;                                                                      \
            }                                                                                      \
            if (mean) mean[r] = (T)mu;                                                             \
            if (rstd) rstd[r] = (T)rs;                                                             \
        }                                                                                          \
    }

/* f32 rows; w, b in f64 (the caller converts them once, not each row) or NULL */
static void ln_fwd_f32(const float *x, const double *w, const double *b, float *y, float *mean, float *rstd,
                       int64_t R, int64_t D, double eps) {
    const mvv_table *vm = mvv_get();
#pragma omp parallel for schedule(static) if (R * D > 16384)
    for (int64_t r = 0; r < R; r++) {
        double mu, rs;
        vm->ln_row(x + r * D, w, b, y + r * D, D, eps, &mu, &rs);
        if (mean) mean[r] = (float)mu;
        if (rstd) rstd[r] = (float)rs;
    }
}
DEF_LN_FWD(ln_fwd_f64, double)

static void check_param(const mvt_tensor *p, const mvt_tensor *x, const char *what) {
    if (!p) return;
    MVT_ASSERT(p->dtype == x->dtype && mvt_numel(p) == x->shape[x->ndim - 1], "layernorm: %s must be [%lld] %s", what,
               (long long)x->shape[x->ndim - 1], mvt_dtype_name(x->dtype));
}

mvt_tensor *mvt_layernorm(const mvt_tensor *x_in, const mvt_tensor *w_in, const mvt_tensor *b_in, double eps,
                          mvt_tensor **mean, mvt_tensor **rstd) {
    MVT_ASSERT(x_in->ndim >= 1 && (x_in->dtype == MVT_F32 || x_in->dtype == MVT_F64), "layernorm: bad input");
    check_param(w_in, x_in, "weight");
    check_param(b_in, x_in, "bias");
    mvt_tensor *x = mvt_contiguous(x_in);
    mvt_tensor *w = w_in ? mvt_contiguous(w_in) : NULL, *b = b_in ? mvt_contiguous(b_in) : NULL;
    int64_t D = x->shape[x->ndim - 1], R = D > 0 ? mvt_numel(x) / D : 0;
    mvt_tensor *y = mvt_empty_like(x);
    mvt_tensor *mt = mean ? row_stat_tensor(x) : NULL, *rt = rstd ? row_stat_tensor(x) : NULL;
    if (x->dtype == MVT_F32) {
        mvt_tensor *w64 = w ? mvt_to_dtype(w, MVT_F64) : NULL, *b64 = b ? mvt_to_dtype(b, MVT_F64) : NULL;
        ln_fwd_f32(mvt_f32(x), w64 ? mvt_f64(w64) : NULL, b64 ? mvt_f64(b64) : NULL, mvt_f32(y),
                   mt ? mvt_f32(mt) : NULL, rt ? mvt_f32(rt) : NULL, R, D, eps);
        mvt_release(w64);
        mvt_release(b64);
    } else
        ln_fwd_f64(mvt_f64(x), w ? mvt_f64(w) : NULL, b ? mvt_f64(b) : NULL, mvt_f64(y), mt ? mvt_f64(mt) : NULL,
                   rt ? mvt_f64(rt) : NULL, R, D, eps);
    mvt_release(x);
    mvt_release(w);
    mvt_release(b);
    if (mean) *mean = mt;
    if (rstd) *rstd = rt;
    return y;
}

/* dy, x [R, D]; w [D] or NULL; mean, rstd [R]; dx [R, D] +=; dw, db [D] += */
#define DEF_LN_BWD(NAME, T)                                                                        \
    static void NAME(const T *dy, const T *x, const T *w, const T *mean, const T *rstd, T *dx,      \
                     T *dw, T *db, int64_t R, int64_t D) {                                         \
        if (dx) {                                                                                  \
            _Pragma("omp parallel for schedule(static) if (R * D > 16384)")                        \
            for (int64_t r = 0; r < R; r++) {                                                      \
                const T *g = dy + r * D, *xr = x + r * D;                                          \
                double mu = mean[r], rs = rstd[r], m1 = 0, m2 = 0;                                 \
                for (int64_t j = 0; j < D; j++) {                                                  \
                    double gj = w ? (double)g[j] * w[j] : (double)g[j];                            \
                    m1 += gj;                                                                      \
                    m2 += gj * (xr[j] - mu) * rs;                                                  \
                }                                                                                  \
                m1 /= (double)D;                                                                   \
                m2 /= (double)D;                                                                   \
                T *o = dx + r * D;                                                                 \
                for (int64_t j = 0; j < D; j++) {                                                  \
                    double gj = w ? (double)g[j] * w[j] : (double)g[j];                            \
                    double xh = (xr[j] - mu) * rs;                                                 \
                    o[j] += (T)(rs * (gj - m1 - xh * m2));                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        if (dw || db) {                                                                            \
            int64_t nchunks = (D + CHUNK - 1) / CHUNK;                                             \
            _Pragma("omp parallel for schedule(static) if (R * D > 16384)")                        \
            for (int64_t c = 0; c < nchunks; c++) {                                                \
                int64_t j0 = c * CHUNK, j1 = j0 + CHUNK < D ? j0 + CHUNK : D;                      \
                double aw[CHUNK], ab[CHUNK];                                                       \
                for (int64_t j = 0; j < j1 - j0; j++) aw[j] = ab[j] = 0;                           \
                for (int64_t r = 0; r < R; r++) {                                                  \
                    const T *g = dy + r * D, *xr = x + r * D;                                      \
                    double mu = mean[r], rs = rstd[r];                                             \
                    for (int64_t j = j0; j < j1; j++) {                                            \
                        aw[j - j0] += (double)g[j] * ((xr[j] - mu) * rs);                          \
                        ab[j - j0] += g[j];                                                        \
                    }                                                                              \
                }                                                                                  \
                for (int64_t j = j0; j < j1; j++) {                                                \
                    if (dw) dw[j] += (T)aw[j - j0];                                                \
                    if (db) db[j] += (T)ab[j - j0];                                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

/* f32: one call per row does dx and the row's share of dw/db while the row
 * is in L1. dw/db are summed in f64 per block of rows, the blocks fixed by R
 * alone (at most MAX_BLOCKS of them), then block by block in order: the bits
 * do not depend on the thread count. */
#define MIN_BLOCK_ROWS 64
#define MAX_BLOCKS 256
static void ln_bwd_f32(const float *dy, const float *x, const double *w, const float *mean, const float *rstd,
                       float *dx, float *dw, float *db, int64_t R, int64_t D) {
    const mvv_table *vm = mvv_get();
    int64_t rows = (R + MAX_BLOCKS - 1) / MAX_BLOCKS;
    if (rows < MIN_BLOCK_ROWS) rows = MIN_BLOCK_ROWS;
    int64_t nblk = (R + rows - 1) / rows;
    int want = (dw ? 1 : 0) + (db ? 1 : 0);
    int64_t pshape[2] = {nblk, (int64_t)want * D};
    mvt_tensor *pt = want ? mvt_empty(MVT_F64, 2, pshape) : NULL;
    double *part = pt ? mvt_f64(pt) : NULL;
#pragma omp parallel for schedule(static) if (R * D > 16384)
    for (int64_t k = 0; k < nblk; k++) {
        double *aw = NULL, *ab = NULL;
        if (part) {
            double *p = part + k * want * D;
            memset(p, 0, (size_t)(want * D) * sizeof *p);
            aw = dw ? p : NULL;
            ab = db ? p + (dw ? D : 0) : NULL;
        }
        int64_t r1 = (k + 1) * rows < R ? (k + 1) * rows : R;
        for (int64_t r = k * rows; r < r1; r++)
            vm->ln_bwd_row(dy + r * D, x + r * D, w, mean[r], rstd[r], dx ? dx + r * D : NULL, aw, ab, D);
    }
    if (part) {
#pragma omp parallel for schedule(static) if (nblk * D > 16384)
        for (int64_t j = 0; j < want * D; j++) {
            double s = 0;
            for (int64_t k = 0; k < nblk; k++) s += part[k * want * D + j];
            if (dw && j < D) dw[j] += (float)s;
            else db[j - (dw ? D : 0)] += (float)s;
        }
    }
    mvt_release(pt);
}
DEF_LN_BWD(ln_bwd_f64, double)

void mvt_layernorm_backward(const mvt_tensor *dy_in, const mvt_tensor *x_in, const mvt_tensor *w_in,
                            const mvt_tensor *mean_in, const mvt_tensor *rstd_in, mvt_tensor *dx, mvt_tensor *dw,
                            mvt_tensor *db) {
    MVT_ASSERT(mvt_same_shape(dy_in, x_in) && dy_in->dtype == x_in->dtype, "layernorm_backward: dy/x differ");
    check_param(w_in, x_in, "weight");
    if (dx) MVT_ASSERT(mvt_is_contiguous(dx) && mvt_same_shape(dx, x_in) && dx->dtype == x_in->dtype,
                       "layernorm_backward: dx must be contiguous like x");
    if (dw) MVT_ASSERT(mvt_is_contiguous(dw), "layernorm_backward: dw must be contiguous");
    if (db) MVT_ASSERT(mvt_is_contiguous(db), "layernorm_backward: db must be contiguous");
    check_param(dw, x_in, "dw");
    check_param(db, x_in, "db");
    mvt_tensor *x = mvt_contiguous(x_in), *dy = mvt_contiguous(dy_in);
    mvt_tensor *w = w_in ? mvt_contiguous(w_in) : NULL;
    mvt_tensor *mean, *rstd;
    if (mean_in && rstd_in) {
        mean = mvt_contiguous(mean_in);
        rstd = mvt_contiguous(rstd_in);
    } else {
        /* eps is not an argument of the backward, so the statistics cannot be recomputed here */
        mvt_panic(__FILE__, __LINE__, "layernorm_backward: mean and rstd are required");
    }
    int64_t D = x->shape[x->ndim - 1], R = D > 0 ? mvt_numel(x) / D : 0;
    MVT_ASSERT(mvt_numel(mean) == R && mvt_numel(rstd) == R && mean->dtype == x->dtype && rstd->dtype == x->dtype,
               "layernorm_backward: mean/rstd must have one entry per row");
    if (R > 0 && D > 0) {
        if (x->dtype == MVT_F32) {
            mvt_tensor *w64 = w ? mvt_to_dtype(w, MVT_F64) : NULL;
            ln_bwd_f32(mvt_f32(dy), mvt_f32(x), w64 ? mvt_f64(w64) : NULL, mvt_f32(mean), mvt_f32(rstd),
                       dx ? mvt_f32(dx) : NULL, dw ? mvt_f32(dw) : NULL, db ? mvt_f32(db) : NULL, R, D);
            mvt_release(w64);
        } else
            ln_bwd_f64(mvt_f64(dy), mvt_f64(x), w ? mvt_f64(w) : NULL, mvt_f64(mean), mvt_f64(rstd),
                       dx ? mvt_f64(dx) : NULL, dw ? mvt_f64(dw) : NULL, db ? mvt_f64(db) : NULL, R, D);
    }
    mvt_release(x);
    mvt_release(dy);
    mvt_release(w);
    mvt_release(mean);
    mvt_release(rstd);
}

mvt_tensor *mvt_ref_layernorm(const mvt_tensor *x, const mvt_tensor *w, const mvt_tensor *b, double eps) {
    int64_t D = x->shape[x->ndim - 1], R = D > 0 ? mvt_numel(x) / D : 0;
    mvt_tensor *y = mvt_empty(x->dtype, x->ndim, x->shape);
    void *py = mvt_data(y);
    for (int64_t r = 0; r < R; r++) {
        double s = 0, v = 0;
        for (int64_t j = 0; j < D; j++)
            s += mvt_load(mvt_data(x), x->dtype, mvt_offset_of(x->ndim, x->shape, x->stride, r * D + j));
        double mu = s / (double)D;
        for (int64_t j = 0; j < D; j++) {
            double d = mvt_load(mvt_data(x), x->dtype, mvt_offset_of(x->ndim, x->shape, x->stride, r * D + j)) - mu;
            v += d * d;
        }
        double rs = 1.0 / sqrt(v / (double)D + eps);
        for (int64_t j = 0; j < D; j++) {
            double o = (mvt_load(mvt_data(x), x->dtype, mvt_offset_of(x->ndim, x->shape, x->stride, r * D + j)) - mu) * rs;
            if (w) o *= mvt_load(mvt_data(w), w->dtype, mvt_offset_of(w->ndim, w->shape, w->stride, j));
            if (b) o += mvt_load(mvt_data(b), b->dtype, mvt_offset_of(b->ndim, b->shape, b->stride, j));
            mvt_store(py, y->dtype, r * D + j, o);
        }
    }
    return y;
}
