/* bench_util: what every bench program shares. Timing and peak memory come
 * from the library's own clock and RSS reader (mvead/run/progress.h), so benches
 * and the `mvead` stages report the same quantities. */
#ifndef MVEAD_BENCH_UTIL_H
#define MVEAD_BENCH_UTIL_H
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "mvead/run/progress.h"

/* An environment switch such as MVEAD_BENCH_QUICK: set, non-empty and not "0". */
static inline int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* The machine limits (bench_stream prints them; bench_kernels rates its rows
 * against them). Best seconds of reps runs after one warm-up, timed by clock
 * (mvead_now, or bench_kernels' CPU clock so that its rows and limits agree). */

/* one square n^3 cblas_sgemm, BLAS threads as set by the caller (2 n^3 flops) */
static inline double mvead_limit_sgemm_s(int n, int reps, double (*clock)(void)) {
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn), *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) { free(a); free(b); free(c); return -1; }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7u) % 13u) * 0.1f - 0.6f;
        b[i] = (float)((i * 5u) % 11u) * 0.1f - 0.5f;
    }
    double best = 1e30;
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up (BLAS thread start) */
        double t0 = clock();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = clock() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    free(a); free(b); free(c);
    return best;
}

/* STREAM-like copy dst[i] = src[i] of len floats, static OpenMP partition
 * (first touch by the same partition); STREAM counts 2 len 4 bytes */
static inline double mvead_limit_copy_s(size_t len, int reps, double (*clock)(void)) {
    float *src = malloc(sizeof(float) * len), *dst = malloc(sizeof(float) * len);
    if (!src || !dst) { free(src); free(dst); return -1; }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < len; i++) { src[i] = (float)(i & 1023); dst[i] = 0.0f; }
    double best = 1e30;
    for (int r = -1; r < reps; r++) {
        double t0 = clock();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < len; i++) dst[i] = src[i];
        double dt = clock() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    volatile float keep = dst[len / 3] + dst[len - 1];   /* the copy stays observable */
    (void)keep;
    free(src); free(dst);
    return best;
}
#endif
