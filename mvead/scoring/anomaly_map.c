/* anomaly_map: bilinear upsampling (PyTorch align_corners=False) and the
 * scipy-compatible Gaussian blur. Template file: compiled for double and float. */
#ifndef MVS_MAP_TEMPLATE
#include "mvead/scoring/anomaly_map.h"
#include "tensor/error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pixel operations below which a loop runs on one thread. */
#define MAP_MIN_PARALLEL_WORK (1 << 17)

/* scipy 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a,
 * periodic with period 2n so it also works when the kernel is wider than n. */
static int64_t map_reflect(int64_t i, int64_t n) {
    int64_t period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

/* Normalised Gaussian weights w[0..radius] (w[j] for offset +-j), as
 * scipy's _gaussian_kernel1d: exp(-0.5 x^2 / sigma^2) / sum. */
static double *map_gaussian_weights(double sigma, double truncate, int64_t *radius_out) {
    int64_t radius = (int64_t)(truncate * sigma + 0.5);
    double *w = malloc((size_t)(radius + 1) * sizeof(double));
    if (!w) return NULL;
    double sum = 0.0;
    for (int64_t j = 0; j <= radius; j++) {
        w[j] = exp(-0.5 / (sigma * sigma) * (double)(j * j));
        sum += j == 0 ? w[j] : 2.0 * w[j];
    }
    for (int64_t j = 0; j <= radius; j++) w[j] /= sum;
    *radius_out = radius;
    return w;
}

/* idx (n + 2 radius): idx[i + radius] = reflected index of i in [-radius, n + radius). */
static int64_t *map_reflect_table(int64_t n, int64_t radius) {
    int64_t *t = malloc((size_t)(n + 2 * radius) * sizeof(int64_t));
    if (!t) return NULL;
    for (int64_t i = -radius; i < n + radius; i++) t[i + radius] = map_reflect(i, n);
    return t;
}

#define MVS_MAP_TEMPLATE
#define real double
#define SFX(name) name##_f64
#include "mvead/scoring/anomaly_map.c"
#undef real
#undef SFX

#define real float
#define SFX(name) name##_f32
#include "mvead/scoring/anomaly_map.c"
#undef real
#undef SFX

#else /* ---------------- template body: real, SFX ---------------- */

int SFX(mvs_upsample_bilinear)(const real *grid, int64_t h, int64_t w, real *out, int64_t H, int64_t W) {
    if (h <= 0 || w <= 0 || H <= 0 || W <= 0)
        return mv_error("anomaly map: bad upsampling sizes %lldx%lld -> %lldx%lld", (long long)h,
                        (long long)w, (long long)H, (long long)W);
    /* PyTorch: scale = in / out; src = scale (dst + 0.5) - 0.5, clamped at 0;
     * i0 = floor(src), i1 = i0 + 1 unless at the last row/column. Computed in
     * real, as PyTorch does in the tensor's own precision. */
    real scale_y = (real)h / (real)H, scale_x = (real)w / (real)W;
#pragma omp parallel for schedule(static) if (H * W >= MAP_MIN_PARALLEL_WORK)
    for (int64_t oy = 0; oy < H; oy++) {
        real sy = scale_y * ((real)oy + (real)0.5) - (real)0.5;
        if (sy < 0) sy = 0;
        int64_t y0 = (int64_t)sy;
        if (y0 > h - 1) y0 = h - 1;
        int64_t y1 = y0 < h - 1 ? y0 + 1 : y0;
        real ly1 = sy - (real)y0, ly0 = (real)1 - ly1;
        for (int64_t ox = 0; ox < W; ox++) {
            real sx = scale_x * ((real)ox + (real)0.5) - (real)0.5;
            if (sx < 0) sx = 0;
            int64_t x0 = (int64_t)sx;
            if (x0 > w - 1) x0 = w - 1;
            int64_t x1 = x0 < w - 1 ? x0 + 1 : x0;
            real lx1 = sx - (real)x0, lx0 = (real)1 - lx1;
            real top = grid[y0 * w + x0] * lx0 + grid[y0 * w + x1] * lx1;
            real bottom = grid[y1 * w + x0] * lx0 + grid[y1 * w + x1] * lx1;
            out[oy * W + ox] = top * ly0 + bottom * ly1;
        }
    }
    return 0;
}

int SFX(mvs_gaussian_blur)(const real *in, int64_t H, int64_t W, double sigma, double truncate, real *out) {
    if (H <= 0 || W <= 0) return mv_error("anomaly map: bad blur size %lldx%lld", (long long)H, (long long)W);
    if (!(sigma >= 0.0) || !(truncate > 0.0))
        return mv_error("anomaly map: blur needs sigma >= 0 and truncate > 0 (got %g, %g)", sigma, truncate);
    if (sigma == 0.0) {
        if (out != in) memcpy(out, in, (size_t)(H * W) * sizeof(real));
        return 0;
    }
    int64_t radius;
    double *wt = map_gaussian_weights(sigma, truncate, &radius);
    int64_t *rows = map_reflect_table(H, radius);
    int64_t *cols = map_reflect_table(W, radius);
    double *tmp = malloc((size_t)(H * W) * sizeof(double));
    if (!wt || !rows || !cols || !tmp) {
        free(wt); free(rows); free(cols); free(tmp);
        return mv_error("anomaly map: out of memory for a %lldx%lld blur", (long long)H, (long long)W);
    }
    /* Axis 0 (down the rows) first, as gaussian_filter; symmetric form
     * w0 a[0] + sum_j w_j (a[-j] + a[+j]) as scipy's correlate1d. */
#pragma omp parallel for schedule(static) if (H * W * radius >= MAP_MIN_PARALLEL_WORK)
    for (int64_t r = 0; r < H; r++) {
        const real *centre = in + r * W;
        double *t = tmp + r * W;
        for (int64_t c = 0; c < W; c++) t[c] = wt[0] * (double)centre[c];
        for (int64_t j = 1; j <= radius; j++) {
            const real *up = in + rows[r - j + radius] * W;
            const real *down = in + rows[r + j + radius] * W;
            for (int64_t c = 0; c < W; c++) t[c] += wt[j] * ((double)up[c] + (double)down[c]);
        }
    }
    /* Axis 1 (along each row). */
#pragma omp parallel for schedule(static) if (H * W * radius >= MAP_MIN_PARALLEL_WORK)
    for (int64_t r = 0; r < H; r++) {
        const double *t = tmp + r * W;
        for (int64_t c = 0; c < W; c++) {
            double acc = wt[0] * t[c];
            for (int64_t j = 1; j <= radius; j++)
                acc += wt[j] * (t[cols[c - j + radius]] + t[cols[c + j + radius]]);
            out[r * W + c] = (real)acc;
        }
    }
    free(wt); free(rows); free(cols); free(tmp);
    return 0;
}

int SFX(mvs_anomaly_maps)(const real *grids, int64_t n_maps, int64_t h, int64_t w, int64_t H, int64_t W,
                          double sigma, double truncate, real *maps) {
    if (n_maps < 0) return mv_error("anomaly map: negative map count");
    /* Validate here: mv_error is thread-local, a worker's message would be lost. */
    if (h <= 0 || w <= 0 || H <= 0 || W <= 0)
        return mv_error("anomaly map: bad sizes %lldx%lld -> %lldx%lld", (long long)h, (long long)w,
                        (long long)H, (long long)W);
    if (!(sigma >= 0.0) || !(truncate > 0.0))
        return mv_error("anomaly map: blur needs sigma >= 0 and truncate > 0 (got %g, %g)", sigma, truncate);
    int failed = 0;
    /* One map per iteration; the kernels' own parallel loops run serially
     * inside (nested parallelism off), so each map is computed identically. */
#pragma omp parallel for schedule(static) reduction(| : failed) if (n_maps > 1)
    for (int64_t i = 0; i < n_maps; i++) {
        real *m = maps + i * H * W;
        if (SFX(mvs_upsample_bilinear)(grids + i * h * w, h, w, m, H, W) ||
            SFX(mvs_gaussian_blur)(m, H, W, sigma, truncate, m))
            failed |= 1;
    }
    return failed ? mv_error("anomaly map: out of memory blurring %lld maps", (long long)n_maps) : 0;
}

#endif
