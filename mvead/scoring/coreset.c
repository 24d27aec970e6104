/* coreset: exact and projected greedy k-center selection.
 * Template file: the bottom half is compiled for real = double and float. */
#ifndef MVS_CORESET_TEMPLATE
#include "mvead/scoring/coreset.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Multiply-adds per greedy pass below which one thread is faster. */
#define CORESET_MIN_PARALLEL_WORK (1 << 17)
/* Most passes between two tries of the pruning where it did not pay. */
#define CORESET_PRUNE_BACKOFF 64
/* Rows per projection GEMM call. */
#define CORESET_PROJ_BLOCK 8192

int64_t mvs_coreset_size(int64_t n, double ratio) {
    if (n <= 0) return mv_error("coreset: no points to subsample (n = %lld)", (long long)n);
    if (!(ratio > 0.0 && ratio <= 1.0))
        return mv_error("coreset: ratio %g out of range: expected 0 < ratio <= 1", ratio);
    int64_t m = (int64_t)floor(ratio * (double)n);
    if (m < 1) m = 1;
    if (m > n) m = n;
    return m;
}

/* Box-Muller over mvt_splitmix64: the projection must be reproducible from
 * the seed alone, independent of any other RNG stream in the program. */
static double coreset_uniform_open(uint64_t *state) { /* (0, 1) */
    return ((double)(mvt_splitmix64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
/* out (n) ~ N(0, 1) */
static void coreset_fill_normal(double *out, int64_t n, uint64_t seed) {
    uint64_t st = seed;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = coreset_uniform_open(&st), u2 = coreset_uniform_open(&st);
        double r = sqrt(-2.0 * log(u1));
        out[i] = r * cos(2.0 * M_PI * u2);
        if (i + 1 < n) out[i + 1] = r * sin(2.0 * M_PI * u2);
    }
}

#define MVS_CORESET_TEMPLATE
#define real double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#include "mvead/scoring/coreset.c"
#undef real
#undef SFX
#undef GEMM

#define real float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#include "mvead/scoring/coreset.c"
#undef real
#undef SFX
#undef GEMM

#else /* ---------------- template body: real, SFX, GEMM ---------------- */

#include "mvead/scoring/sqdist_tmpl.h"


int SFX(mvs_coreset_greedy_stats)(const real *x, int64_t n, int64_t dim, int64_t m, int64_t start,
                                  int64_t *selected, real *min_dist, int64_t *n_dist) {
    if (n <= 0 || dim <= 0)
        return mv_error("coreset: bad feature matrix (%lld x %lld)", (long long)n, (long long)dim);
    if (m < 1 || m > n)
        return mv_error("coreset: cannot select %lld of %lld points (need 1 <= m <= n)", (long long)m,
                        (long long)n);
    if (start < 0 || start >= n)
        return mv_error("coreset: start index %lld outside [0, %lld)", (long long)start, (long long)n);
    /* Squared distance to the chosen set, in double whatever real is: the
     * order must not flip on rounding. near[i]: the selection step of the
     * centre mind[i] was computed against (see mvs_prune_bound). */
    double *mind = malloc((size_t)n * sizeof(double));
    int32_t *near = malloc((size_t)n * sizeof(int32_t));
    if (!mind || !near) {
        free(mind); free(near);
        return mv_error("coreset: out of memory for %lld distances", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) mind[i] = INFINITY;
    selected[0] = start;
    int prune = dim <= MVS_PRUNE_MAX_DIM && m <= INT32_MAX;
    /* Threads only when a pass is worth a barrier: small problems run on one
     * thread (a barrier on a loaded machine can cost a scheduler slice). The
     * order does not depend on the thread count either way. */
    int max_threads = 1;
#ifdef _OPENMP
    if (n * dim >= CORESET_MIN_PARALLEL_WORK) max_threads = omp_get_max_threads();
#endif
    /* Two slots per thread, alternating between passes, so one barrier per
     * pass suffices: nobody overwrites a slot another thread may still read. */
    double *thread_max = malloc((size_t)(2 * max_threads) * sizeof(double));
    int64_t *thread_arg = malloc((size_t)(2 * max_threads) * sizeof(int64_t));
    int64_t *thread_nd = calloc((size_t)max_threads, sizeof(int64_t));
    /* Per thread: the distance from the newest centre to centre j, computed
     * when one of the thread's points first needs it in a pass (cc_pass[j]
     * says in which), so no barrier is spent on it. */
    double *cc = prune ? malloc((size_t)max_threads * (size_t)m * sizeof(double)) : NULL;
    int32_t *cc_pass = prune ? malloc((size_t)max_threads * (size_t)m * sizeof(int32_t)) : NULL;
    if (!thread_max || !thread_arg || !thread_nd || (prune && (!cc || !cc_pass))) {
        free(mind); free(near); free(thread_max); free(thread_arg); free(thread_nd); free(cc); free(cc_pass);
        return mv_error("coreset: out of memory");
    }
    SFX(mvs_sqdist_fn) sqdist = SFX(mvs_sqdist_pick)();

    /* One parallel region for the whole loop: each thread owns a fixed
     * contiguous range, updates it with the newest centre and reports its
     * first maximum; after the barrier every thread combines the reports in
     * thread order (the same answer everywhere), so the global result is the
     * first maximum for any thread count. Pruned points keep their distance,
     * which is what the full update would have left (mvs_prune_bound), so the
     * pruning changes no bit of the order or of the distances. */
#pragma omp parallel num_threads(max_threads)
    {
        int nt = 1, t = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        t = omp_get_thread_num();
#endif
        int64_t lo = n * t / nt, hi = n * (t + 1) / nt, nd = 0;
        double *my_cc = prune ? cc + (size_t)t * (size_t)m : NULL;
        int32_t *my_pass = prune ? cc_pass + (size_t)t * (size_t)m : NULL;
        if (prune)
            for (int64_t j = 0; j < m; j++) my_pass[j] = -1;
        /* Pruning pays when it skips more rows than the centre-centre
         * distances it computes; a thread where it did not (iid features in
         * high dimension) tries again after 2, 4, ... CORESET_PRUNE_BACKOFF
         * passes, using meanwhile only the free test against gfar. This
         * changes what is computed, never the result. */
        int64_t next_try = 2, backoff = 1;
        int64_t newest = start;
        /* gbest of the last pass: the newest centre's own squared distance
         * to every earlier centre is at least this (it was the farthest). */
        double gfar = -1.0;
        for (int64_t s = 1; s <= m; s++) {
            const real *c = x + newest * dim;
            double best = -1.0;
            int64_t arg = lo;
            int32_t step = (int32_t)(s - 1); /* selected[step] == newest */
            int try_cc = prune && s >= next_try;
            int64_t n_skip = 0, n_cc = 0;
            for (int64_t i = lo; i < hi; i++) {
                double d = mind[i];
                if (s > 1 && prune) {
                    double bound = mvs_prune_bound(d);
                    int skip = bound < gfar; /* every centre is >= gfar from the newest */
                    if (!skip && try_cc) {
                        int32_t j = near[i];
                        if (my_pass[j] != step) {
                            my_cc[j] = sqdist(x + selected[j] * dim, c, dim);
                            my_pass[j] = step;
                            n_cc++;
                        }
                        skip = my_cc[j] > bound;
                    }
                    if (skip) {
                        n_skip++;
                        if (d > best) { best = d; arg = i; }
                        continue;
                    }
                }
                double acc = sqdist(x + i * dim, c, dim);
                nd++;
                if (!(d < acc)) { d = acc; near[i] = step; } /* d = min(d, acc), as before */
                mind[i] = d;
                if (d > best) { best = d; arg = i; }
            }
            nd += n_cc;
            if (try_cc) {
                backoff = n_skip > n_cc ? 1 : (2 * backoff < CORESET_PRUNE_BACKOFF ? 2 * backoff : CORESET_PRUNE_BACKOFF);
                next_try = s + backoff;
            }
            if (s == m) break; /* last pass only finalises the distances */
            int slot = (int)(s & 1) * nt;
            thread_max[slot + t] = best;
            thread_arg[slot + t] = arg;
#pragma omp barrier
            double gbest = -1.0;
            for (int u = 0; u < nt; u++)
                if (thread_max[slot + u] > gbest) { gbest = thread_max[slot + u]; newest = thread_arg[slot + u]; }
            gfar = gbest;
            if (t == 0) selected[s] = newest; /* read by the others from pass s + 2 on */
        }
        thread_nd[t] = nd;
    }
    if (min_dist)
        for (int64_t i = 0; i < n; i++) min_dist[i] = (real)sqrt(mind[i]);
    if (n_dist) {
        *n_dist = 0;
        for (int u = 0; u < max_threads; u++) *n_dist += thread_nd[u];
    }
    free(mind); free(near); free(thread_max); free(thread_arg); free(thread_nd); free(cc); free(cc_pass);
    return 0;
}

int SFX(mvs_coreset_greedy)(const real *x, int64_t n, int64_t dim, int64_t m, int64_t start,
                            int64_t *selected, real *min_dist) {
    return SFX(mvs_coreset_greedy_stats)(x, n, dim, m, start, selected, min_dist, NULL);
}

int SFX(mvs_coreset_projected)(const real *x, int64_t n, int64_t dim, int64_t proj_dim,
                               uint64_t seed, int64_t m, int64_t start, int64_t *selected) {
    if (proj_dim <= 0)
        return mv_error("coreset: projection dimension %lld must be positive", (long long)proj_dim);
    if (proj_dim >= dim) return SFX(mvs_coreset_greedy)(x, n, dim, m, start, selected, NULL);
    if (n <= 0 || dim <= 0)
        return mv_error("coreset: bad feature matrix (%lld x %lld)", (long long)n, (long long)dim);
    double *g64 = malloc((size_t)(proj_dim * dim) * sizeof(double));
    real *g = malloc((size_t)(proj_dim * dim) * sizeof(real));
    real *proj = malloc((size_t)n * (size_t)proj_dim * sizeof(real));
    if (!g64 || !g || !proj) {
        free(g64); free(g); free(proj);
        return mv_error("coreset: out of memory for a %lld x %lld projection", (long long)n,
                        (long long)proj_dim);
    }
    /* Johnson-Lindenstrauss scaling 1/sqrt(proj_dim) keeps distances comparable. */
    coreset_fill_normal(g64, proj_dim * dim, seed);
    double scale = 1.0 / sqrt((double)proj_dim);
    for (int64_t i = 0; i < proj_dim * dim; i++) g[i] = (real)(g64[i] * scale);
    free(g64);
    /* proj (n, proj_dim) = x (n, dim) g^T (dim, proj_dim), in row blocks:
     * one call over all rows made OpenBLAS hold ~2.5x the output extra. */
    int64_t nblk = (n + CORESET_PROJ_BLOCK - 1) / CORESET_PROJ_BLOCK;
    int prev = mvt_blas_threads_single();   /* fixed blocks, one BLAS thread each: thread-count independent */
#pragma omp parallel for schedule(dynamic, 1) if (nblk > 1)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t r0 = blk * CORESET_PROJ_BLOCK, rn = n - r0 < CORESET_PROJ_BLOCK ? n - r0 : CORESET_PROJ_BLOCK;
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rn, (int)proj_dim, (int)dim, (real)1.0, x + r0 * dim,
             (int)dim, g, (int)dim, (real)0.0, proj + r0 * proj_dim, (int)proj_dim);
    }
    mvt_blas_threads_restore(prev);
    free(g);
    int rc = SFX(mvs_coreset_greedy)(proj, n, proj_dim, m, start, selected, NULL);
    free(proj);
    return rc;
}

void SFX(mvs_gather_rows)(const real *x, int64_t dim, const int64_t *selected, int64_t m, real *out) {
#pragma omp parallel for schedule(static) if (m * dim >= CORESET_MIN_PARALLEL_WORK)
    for (int64_t i = 0; i < m; i++)
        memcpy(out + i * dim, x + selected[i] * dim, (size_t)dim * sizeof(real));
}

#endif
