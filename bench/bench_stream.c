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
    double flops = 2.0 * n * (double)n * n, best = mvead_limit_sgemm_s(n, reps, mvead_now);
    if (best < 0) { fprintf(stderr, "bench_stream: out of memory\n"); return 1; }
    printf("bench_stream: %d threads%s\n", nt, quick ? " (quick)" : "");
    printf("  sgemm %dx%dx%d          best %8.4f s  %8.1f GFLOP/s\n", n, n, n, best, flops / best * 1e-9);
    printf("@bench key=limit_sgemm impl=machine threads=%d size=%dx%dx%d time_s=%.6g flops=%.6g "
           "held_mb=%.1f rss_mb=%.1f\n",
           nt, n, n, n, best, flops, 3.0 * n * (double)n * 4 / 1048576.0, mvead_peak_rss_mib());

    /* ---- copy bandwidth ---- */
    const size_t len = (size_t)(quick ? 32 : 64) << 20;   /* floats per array: 128 / 256 MB */
    double bytes = 2.0 * (double)len * sizeof(float);
    best = mvead_limit_copy_s(len, reps, mvead_now);
    if (best < 0) { fprintf(stderr, "bench_stream: out of memory\n"); return 1; }
    printf("  copy 2 x %zu MB              best %8.4f s  %8.2f GB/s\n", len * sizeof(float) >> 20, best,
           bytes / best * 1e-9);
    printf("@bench key=limit_copy impl=machine threads=%d size=%zuMB time_s=%.6g bytes=%.6g held_mb=%.1f "
           "rss_mb=%.1f\n",
           nt, len * sizeof(float) >> 20, best, bytes, 2.0 * (double)len * 4 / 1048576.0, mvead_peak_rss_mib());
    return 0;
}
