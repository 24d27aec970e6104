/* bench_stream: the two machine limits that bench/run.sh measures every
 * workload against, taken in the same run and at the same thread count:
 *   - sgemm peak: best GFLOP/s of one large square cblas_sgemm (BLAS threads =
 *     the run's thread count; raw BLAS, no determinism tiling);
 *   - copy bandwidth: best GB/s of a STREAM-like copy b[i] = a[i] over arrays
 *     far larger than the caches, static OpenMP partition (bytes counted as
 *     STREAM does: one read + one write per element).
 * Prints one human line per limit and one machine line ("@bench key=..."),
 * the record format bench/peers/collect.py reads.
 * MVEAD_BENCH_QUICK=1: smaller matrix and arrays, fewer reps. Asserts nothing. */
#include "bench/bench_util.h"
#include "config.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int main(void) {
    int quick = env_flag("MVEAD_BENCH_QUICK");
    int nt = omp_get_max_threads();
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(nt);
#endif
    int reps = quick ? 3 : 5;

    /* ---- sgemm peak ---- */
    const int n = quick ? 2048 : 3072;
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)n);
    float *b = malloc(sizeof(float) * (size_t)n * (size_t)n);
    float *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    if (!a || !b || !c) { fprintf(stderr, "bench_stream: out of memory\n"); return 1; }
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
        a[i] = (float)((i * 7u) % 13u) * 0.1f - 0.6f;
        b[i] = (float)((i * 5u) % 11u) * 0.1f - 0.5f;
    }
    double flops = 2.0 * n * (double)n * n, best = 1e30;
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up (BLAS thread start) */
        double t0 = mvead_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = mvead_now() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    printf("bench_stream: %d threads%s\n", nt, quick ? " (quick)" : "");
    printf("  sgemm %dx%dx%d          best %8.4f s  %8.1f GFLOP/s\n", n, n, n, best, flops / best * 1e-9);
    printf("@bench key=limit_sgemm impl=machine threads=%d size=%dx%dx%d time_s=%.6g flops=%.6g "
           "held_mb=%.1f rss_mb=%.1f\n",
           nt, n, n, n, best, flops, 3.0 * n * (double)n * 4 / 1048576.0, mvead_peak_rss_mib());
    free(a); free(b); free(c);

    /* ---- copy bandwidth ---- */
    const size_t len = (size_t)(quick ? 32 : 64) << 20;   /* floats per array: 128 / 256 MB */
    float *src = malloc(sizeof(float) * len), *dst = malloc(sizeof(float) * len);
    if (!src || !dst) { fprintf(stderr, "bench_stream: out of memory\n"); return 1; }
    /* first touch by the same static partition as the copy (NUMA placement) */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < len; i++) { src[i] = (float)(i & 1023); dst[i] = 0.0f; }
    double bytes = 2.0 * (double)len * sizeof(float);
    best = 1e30;
    for (int r = -1; r < reps; r++) {
        double t0 = mvead_now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < len; i++) dst[i] = src[i];
        double dt = mvead_now() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    /* keep the copy observable so it is not optimised away */
    double check = (double)dst[len / 3] + (double)dst[len - 1];
    printf("  copy 2 x %zu MB              best %8.4f s  %8.2f GB/s   (check %.0f)\n",
           len * sizeof(float) >> 20, best, bytes / best * 1e-9, check);
    printf("@bench key=limit_copy impl=machine threads=%d size=%zuMB time_s=%.6g bytes=%.6g held_mb=%.1f "
           "rss_mb=%.1f\n",
           nt, len * sizeof(float) >> 20, best, bytes, 2.0 * (double)len * 4 / 1048576.0, mvead_peak_rss_mib());
    free(src); free(dst);
    return 0;
}
