/* Resampling of the last two dims (PyTorch F.interpolate: nearest, bilinear,
 * bicubic A = -0.75) with its adjoint, and im2col/col2im for the stride =
 * kernel patch embedding.
 *
 * Index/weight arithmetic follows PyTorch's CPU kernels (UpSample.h,
 * UpSampleKernel.cpp) in the tensor's own precision (float for f32), since
 * the fixtures interpolate position embeddings in float32:
 *   scale = align_corners ? (in-1)/(out-1) : (scale_factor ? 1/scale_factor : in/out)
 *   src   = align_corners ? scale*dst : scale*(dst+0.5) - 0.5
 *   bilinear: src < 0 -> 0; i0 = min(floor(src), in-1), l = clamp(src-i0, 0, 1),
 *             taps i0, i0 + (i0 < in-1)
 *   bicubic: src not clamped; taps i0-1..i0+2 clamped to [0, in-1]
 *   nearest: i = min(floor(dst*scale), in-1) (scale = in/out or 1/scale_factor)
 * Output = sum_i wy_i * (sum_j wx_j * x[y_i, x_j]) (width first, as PyTorch). */
#include "config.h"
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

#define MAXTAPS 4
#define CUBIC_A (-0.75)

static int ntaps_of(mvt_resample_mode m) { return m == MVT_BICUBIC ? 4 : m == MVT_BILINEAR ? 2 : 1; }

/* taps for one axis: idx[o*4 + t], wt[o*4 + t] */
#define DEF_TAPS(NAME, T)                                                                          \
    static void NAME(int64_t in, int64_t out, mvt_resample_mode mode, bool ac, double sf, int64_t *idx, \
                     T *wt) {                                                                      \
        for (int64_t o = 0; o < out; o++)                                                          \
            for (int t = 0; t < MAXTAPS; t++) { idx[o * MAXTAPS + t] = 0; wt[o * MAXTAPS + t] = 0; } \
        if (mode == MVT_NEAREST) {                                                                 \
            float sc = sf > 0 ? (float)(1.0 / sf) : (float)in / (float)out;                        \
            for (int64_t o = 0; o < out; o++) {                                                    \
                int64_t i;                                                                         \
                if (out == in) i = o;                                                              \
                else if (out == 2 * in) i = o >> 1;                                                \
                else {                                                                             \
                    i = (int64_t)floorf((float)o * sc);                                            \
                    if (i > in - 1) i = in - 1;                                                    \
                }                                                                                  \
                idx[o * MAXTAPS] = i;                                                              \
                wt[o * MAXTAPS] = 1;                                                               \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        T sc;                                                                                      \
        if (ac) sc = out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0;                                  \
        else sc = sf > 0 ? (T)(1.0 / sf) : (T)in / (T)out;                                         \
        bool cubic = mode == MVT_BICUBIC;                                                          \
        for (int64_t o = 0; o < out; o++) {                                                        \
            T src;                                                                                 \
            if (ac) src = sc * (T)o;                                                               \
            else {                                                                                 \
                src = sc * ((T)o + (T)0.5) - (T)0.5;                                               \
                if (!cubic && src < 0) src = 0;                                                    \
            }                                                                                      \
            int64_t i0 = (int64_t)floor(src);                                                      \
            if (i0 > in - 1) i0 = in - 1;                                                          \
            T l = src - (T)i0;                                                                     \
            if (l < 0) l = 0;                                                                      \
            if (l > 1) l = 1;                                                                      \
            int64_t *ix = idx + o * MAXTAPS;                                                       \
            T *w = wt + o * MAXTAPS;                                                               \
            if (!cubic) {                                                                          \
                ix[0] = i0;                                                                        \
                ix[1] = i0 + (i0 < in - 1 ? 1 : 0);                                                \
                w[0] = (T)1 - l;                                                                   \
                w[1] = l;                                                                          \
            } else {                                                                               \
                const T A = (T)CUBIC_A;                                                            \
                T x1 = l + (T)1, x2 = l, x3 = (T)1 - l, x4 = (T)2 - l;                             \
                w[0] = ((A * x1 - (T)5 * A) * x1 + (T)8 * A) * x1 - (T)4 * A;                      \
                w[1] = ((A + (T)2) * x2 - (A + (T)3)) * x2 * x2 + (T)1;                            \
                w[2] = ((A + (T)2) * x3 - (A + (T)3)) * x3 * x3 + (T)1;                            \
                w[3] = ((A * x4 - (T)5 * A) * x4 + (T)8 * A) * x4 - (T)4 * A;                      \
                for (int t = 0; t < 4; t++) {                                                      \
                    int64_t j = i0 - 1 + t;                                                        \
                    ix[t] = j < 0 ? 0 : (j > in - 1 ? in - 1 : j);                                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEF_TAPS(taps_f32, float)
DEF_TAPS(taps_f64, double)

/* x [P, H, W] -> y [P, oh, ow] */
#define DEF_RESIZE_FWD(NAME, T)                                                                    \
    static void NAME(const T *x, T *y, int64_t P, int64_t H, int64_t W, int64_t oh, int64_t ow,    \
                     int nt, const int64_t *iy, const T *wy, const int64_t *ix, const T *wx) {     \
        _Pragma("omp parallel for schedule(static) if (P * oh * ow > 16384)")                      \
        for (int64_t r = 0; r < P * oh; r++) {                                                     \
            int64_t p = r / oh, oy = r % oh;                                                       \
            const T *xp = x + p * H * W;                                                           \
            T *yr = y + r * ow;                                                                    \
            for (int64_t ox = 0; ox < ow; ox++) {                                                  \
                T acc = 0;                                                                         \
                for (int i = 0; i < nt; i++) {                                                     \
                    const T *row = xp + iy[oy * MAXTAPS + i] * W;                                  \
                    T t = row[ix[ox * MAXTAPS]] * wx[ox * MAXTAPS];                                \
                    for (int j = 1; j < nt; j++) t += row[ix[ox * MAXTAPS + j]] * wx[ox * MAXTAPS + j]; \
                    if (i == 0) acc = t * wy[oy * MAXTAPS];                                        \
                    else acc += t * wy[oy * MAXTAPS + i];                                          \
                }                                                                                  \
                yr[ox] = acc;                                                                      \
            }                                                                                      \
        }                                                                                          \
    }

DEF_RESIZE_FWD(resize_fwd_f32, float)
DEF_RESIZE_FWD(resize_fwd_f64, double)

/* dy [P, oh, ow] -> dx [P, H, W] (zeroed by caller); one plane per thread */
#define DEF_RESIZE_BWD(NAME, T)                                                                    \
    static void NAME(const T *dy, T *dx, int64_t P, int64_t H, int64_t W, int64_t oh, int64_t ow,  \
                     int nt, const int64_t *iy, const T *wy, const int64_t *ix, const T *wx) {     \
        _Pragma("omp parallel for schedule(static) if (P * oh * ow > 16384)")                      \
        for (int64_t p = 0; p < P; p++) {                                                          \
            T *xp = dx + p * H * W;                                                                \
            const T *gp = dy + p * oh * ow;                                                        \
            for (int64_t oy = 0; oy < oh; oy++)                                                    \
                for (int64_t ox = 0; ox < ow; ox++) {                                              \
                    T g = gp[oy * ow + ox];                                                        \
                    for (int i = 0; i < nt; i++) {                                                 \
                        T gi = g * wy[oy * MAXTAPS + i];                                           \
                        T *row = xp + iy[oy * MAXTAPS + i] * W;                                    \
                        for (int j = 0; j < nt; j++) row[ix[ox * MAXTAPS + j]] += gi * wx[ox * MAXTAPS + j]; \
                    }                                                                              \
                }                                                                                  \
        }                                                                                          \
    }

DEF_RESIZE_BWD(resize_bwd_f32, float)
DEF_RESIZE_BWD(resize_bwd_f64, double)

static mvt_tensor *resize_common(const mvt_tensor *in_t, int64_t H, int64_t W, int64_t oh, int64_t ow,
                                 mvt_resample_mode mode, bool ac, double sh, double sw, bool backward) {
    MVT_ASSERT(in_t->ndim >= 2 && (in_t->dtype == MVT_F32 || in_t->dtype == MVT_F64), "resize: needs [..., H, W] f32/f64");
    MVT_ASSERT(H > 0 && W > 0 && oh > 0 && ow > 0, "resize: sizes must be positive");
    mvt_tensor *x = mvt_contiguous(in_t);
    int nd = x->ndim;
    int64_t P = 1;
    for (int d = 0; d < nd - 2; d++) P *= x->shape[d];
    int64_t shape[MVT_MAX_DIMS];
    for (int d = 0; d < nd - 2; d++) shape[d] = x->shape[d];
    shape[nd - 2] = backward ? H : oh;
    shape[nd - 1] = backward ? W : ow;
    mvt_tensor *out = backward ? mvt_zeros(x->dtype, nd, shape) : mvt_empty(x->dtype, nd, shape);
    int nt = ntaps_of(mode);
    size_t es = mvt_dtype_size(x->dtype);
    mvt_tensor *tap_idx = mvt_empty(MVT_I64, 1, (int64_t[]){(oh + ow) * MAXTAPS});
    mvt_tensor *tap_w = mvt_empty(MVT_F64, 1, (int64_t[]){(oh + ow) * MAXTAPS});   /* room for either type */
    int64_t *iy = mvt_i64(tap_idx), *ix = iy + oh * MAXTAPS;
    void *wy = mvt_data(tap_w), *wx = (char *)wy + (size_t)(oh * MAXTAPS) * es;
    if (x->dtype == MVT_F32) {
        taps_f32(H, oh, mode, ac, sh, iy, wy);
        taps_f32(W, ow, mode, ac, sw, ix, wx);
        if (backward) resize_bwd_f32(mvt_f32(x), mvt_f32(out), P, H, W, oh, ow, nt, iy, wy, ix, wx);
        else resize_fwd_f32(mvt_f32(x), mvt_f32(out), P, H, W, oh, ow, nt, iy, wy, ix, wx);
    } else {
        taps_f64(H, oh, mode, ac, sh, iy, wy);
        taps_f64(W, ow, mode, ac, sw, ix, wx);
        if (backward) resize_bwd_f64(mvt_f64(x), mvt_f64(out), P, H, W, oh, ow, nt, iy, wy, ix, wx);
        else resize_fwd_f64(mvt_f64(x), mvt_f64(out), P, H, W, oh, ow, nt, iy, wy, ix, wx);
    }
    mvt_release(tap_idx);
    mvt_release(tap_w);
    mvt_release(x);
    return out;
}

mvt_tensor *mvt_resize(const mvt_tensor *x, int64_t oh, int64_t ow, mvt_resample_mode mode, bool align_corners,
                       double scale_h, double scale_w) {
    return resize_common(x, x->shape[x->ndim - 2], x->shape[x->ndim - 1], oh, ow, mode, align_corners, scale_h,
                         scale_w, false);
}

mvt_tensor *mvt_resize_backward(const mvt_tensor *dy, int64_t H, int64_t W, mvt_resample_mode mode,
                                bool align_corners, double scale_h, double scale_w) {
    return resize_common(dy, H, W, dy->shape[dy->ndim - 2], dy->shape[dy->ndim - 1], mode, align_corners, scale_h,
                         scale_w, true);
}

/* ---- reference: per output pixel, straight from the formulas, in f64 ---- */

static double ref_cubic_w(double d) {   /* Keys kernel with A = -0.75, d = |distance| */
    const double A = CUBIC_A;
    d = fabs(d);
    if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
    if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
    return 0;
}

static double ref_src(int64_t in, int64_t out, int64_t o, bool ac, double sf) {
    if (ac) return out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0.0;
    double step = sf > 0 ? 1.0 / sf : (double)in / (double)out;
    return ((double)o + 0.5) * step - 0.5;
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

mvt_tensor *mvt_ref_resize(const mvt_tensor *x, int64_t oh, int64_t ow, mvt_resample_mode mode, bool ac,
                           double sh, double sw) {
    int nd = x->ndim;
    int64_t H = x->shape[nd - 2], W = x->shape[nd - 1], P = mvt_numel(x) / (H * W);
    int64_t shape[MVT_MAX_DIMS];
    for (int d = 0; d < nd; d++) shape[d] = x->shape[d];
    shape[nd - 2] = oh;
    shape[nd - 1] = ow;
    mvt_tensor *y = mvt_empty(x->dtype, nd, shape);
    for (int64_t p = 0; p < P; p++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                double v = 0;
#define X(yy, xx) mvt_load(mvt_data(x), x->dtype, mvt_offset_of(nd, x->shape, x->stride, (p * H + (yy)) * W + (xx)))
                if (mode == MVT_NEAREST) {
                    double sy = sh > 0 ? 1.0 / sh : (double)H / oh, sx = sw > 0 ? 1.0 / sw : (double)W / ow;
                    v = X(clampi((int64_t)floor(oy * sy), 0, H - 1), clampi((int64_t)floor(ox * sx), 0, W - 1));
                } else if (mode == MVT_BILINEAR) {
                    double fy = ref_src(H, oh, oy, ac, sh), fx = ref_src(W, ow, ox, ac, sw);
                    if (fy < 0) fy = 0;
                    if (fx < 0) fx = 0;
                    int64_t y0 = clampi((int64_t)floor(fy), 0, H - 1), x0 = clampi((int64_t)floor(fx), 0, W - 1);
                    int64_t y1 = clampi(y0 + 1, 0, H - 1), x1 = clampi(x0 + 1, 0, W - 1);
                    double ly = fy - y0, lx = fx - x0;
                    if (ly > 1) ly = 1;
                    if (lx > 1) lx = 1;
                    v = (1 - ly) * ((1 - lx) * X(y0, x0) + lx * X(y0, x1)) + ly * ((1 - lx) * X(y1, x0) + lx * X(y1, x1));
                } else {
                    double fy = ref_src(H, oh, oy, ac, sh), fx = ref_src(W, ow, ox, ac, sw);
                    int64_t y0 = (int64_t)floor(fy), x0 = (int64_t)floor(fx);
                    for (int i = -1; i <= 2; i++)
                        for (int j = -1; j <= 2; j++)
                            v += ref_cubic_w(fy - (double)(y0 + i)) * ref_cubic_w(fx - (double)(x0 + j)) *
                                 X(clampi(y0 + i, 0, H - 1), clampi(x0 + j, 0, W - 1));
                }
#undef X
                mvt_store(mvt_data(y), y->dtype, (p * oh + oy) * ow + ox, v);
            }
    return y;
}

/* ---- im2col / col2im (stride = kernel = P) -------------------------------- */

mvt_tensor *mvt_im2col(const mvt_tensor *img_in, int P) {
    MVT_ASSERT(img_in->ndim == 4 && P > 0, "im2col: expects [B, C, H, W] and P > 0");
    mvt_tensor *img = mvt_contiguous(img_in);
    int64_t B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3];
    int64_t gh = H / P, gw = W / P, L = C * P * P;
    mvt_tensor *cols = mvt_empty(img->dtype, 3, (int64_t[]){B, gh * gw, L});
    size_t es = mvt_dtype_size(img->dtype);
    const char *src = mvt_data(img);
    char *dst = mvt_data(cols);
#pragma omp parallel for schedule(static) if (B * gh * gw * L > 32768)
    for (int64_t q = 0; q < B * gh * gw; q++) {
        int64_t b = q / (gh * gw), py = (q / gw) % gh, px = q % gw;
        for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < P; ky++)
                memcpy(dst + (size_t)(q * L + (c * P + ky) * P) * es,
                       src + (size_t)(((b * C + c) * H + py * P + ky) * W + px * P) * es, (size_t)P * es);
    }
    mvt_release(img);
    return cols;
}

mvt_tensor *mvt_col2im(const mvt_tensor *cols_in, int64_t B, int64_t C, int64_t H, int64_t W, int P) {
    int64_t gh = H / P, gw = W / P, L = C * P * P;
    MVT_ASSERT(cols_in->ndim == 3 && cols_in->shape[0] == B && cols_in->shape[1] == gh * gw && cols_in->shape[2] == L,
               "col2im: cols must be [B, (H/P)(W/P), C*P*P]");
    mvt_tensor *cols = mvt_contiguous(cols_in);
    mvt_tensor *img = mvt_zeros(cols->dtype, 4, (int64_t[]){B, C, H, W});
    size_t es = mvt_dtype_size(cols->dtype);
    const char *src = mvt_data(cols);
    char *dst = mvt_data(img);
    /* patches do not overlap, so the adjoint is a plain scatter */
#pragma omp parallel for schedule(static) if (B * gh * gw * L > 32768)
    for (int64_t q = 0; q < B * gh * gw; q++) {
        int64_t b = q / (gh * gw), py = (q / gw) % gh, px = q % gw;
        for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < P; ky++)
                memcpy(dst + (size_t)(((b * C + c) * H + py * P + ky) * W + px * P) * es,
                       src + (size_t)(q * L + (c * P + ky) * P) * es, (size_t)P * es);
    }
    mvt_release(cols);
    return img;
}
