/* kmeans: k-means++ init + Lloyd iterations with GEMM assignment.
 * Template file: the bottom half is compiled for real = double and float. */
#ifndef MVS_KMEANS_TEMPLATE
#include "mvead/scoring/kmeans.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Rows per GEMM assignment block: fixed, so results do not depend on threads. */
#define KMEANS_ROW_BLOCK 1024
/* Fixed row chunks of the centre sums (partials added in chunk order). */
#define KMEANS_SUM_CHUNKS 8
/* Multiply-adds below which a loop runs on one thread (not worth a fork/join). */
#define KMEANS_MIN_PARALLEL_WORK (1 << 17)

static double kmeans_uniform(uint64_t *state) { /* [0, 1) */
    return (double)(mvt_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

static int kmeans_check(int64_t n, int64_t dim, int64_t k) {
    if (n <= 0 || dim <= 0)
        return mv_error("kmeans: bad feature matrix (%lld x %lld)", (long long)n, (long long)dim);
    if (k < 1 || k > n)
        return mv_error("kmeans: cannot make %lld clusters from %lld points (need 1 <= K <= n)",
                        (long long)k, (long long)n);
    return 0;
}

#define MVS_KMEANS_TEMPLATE
#define real double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#include "mvead/scoring/kmeans.c"
#undef real
#undef SFX
#undef GEMM

#define real float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#include "mvead/scoring/kmeans.c"
#undef real
#undef SFX
#undef GEMM

#else /* ---------------- template body: real, SFX, GEMM ---------------- */

#include "mvead/scoring/sqdist_tmpl.h"


/* mind2 (n) = min(mind2, ||x_i - centers[c]||^2), differences accumulated in
 * double; near (n) the centre each mind2 was computed against, cc (c) the
 * squared distances from centre c to the earlier ones. A point whose nearest
 * centre is far enough from the new one keeps its distance without reading
 * its row (mvs_prune_bound in sqdist_tmpl.h: exactly what the update would
 * have left). Returns the number of point-centre distances computed. */
static int64_t SFX(kmeans_update_mind)(const real *x, int64_t n, int64_t dim, const real *centers, int64_t c,
                                       double *mind2, int32_t *near, const double *cc,
                                       SFX(mvs_sqdist_fn) sqdist) {
    const real *cen = centers + c * dim;
    int prune = c > 0 && near;
    int64_t nd = 0;
#pragma omp parallel for schedule(static) reduction(+ : nd) if (n * dim >= KMEANS_MIN_PARALLEL_WORK)
    for (int64_t i = 0; i < n; i++) {
        if (prune && cc[near[i]] > mvs_prune_bound(mind2[i])) continue;
        double acc = sqdist(x + i * dim, cen, dim);
        nd++;
        if (acc < mind2[i]) {
            mind2[i] = acc;
            if (near) near[i] = (int32_t)c;
        }
    }
    return nd;
}

int SFX(mvs_kmeanspp_init_stats)(const real *x, int64_t n, int64_t dim, int64_t k, uint64_t seed,
                                 real *centers, int64_t *n_dist) {
    if (kmeans_check(n, dim, k)) return -1;
    int prune = dim <= MVS_PRUNE_MAX_DIM && k <= INT32_MAX && k > 1;
    double *mind2 = malloc((size_t)n * sizeof(double));
    int32_t *near = prune ? calloc((size_t)n, sizeof(int32_t)) : NULL;
    double *cc = prune ? malloc((size_t)k * sizeof(double)) : NULL;
    if (!mind2 || (prune && (!near || !cc))) {
        free(mind2); free(near); free(cc);
        return mv_error("kmeans++: out of memory for %lld distances", (long long)n);
    }
    SFX(mvs_sqdist_fn) sqdist = SFX(mvs_sqdist_pick)();
    int64_t nd = 0;
    for (int64_t i = 0; i < n; i++) mind2[i] = INFINITY;
    uint64_t st = seed;
    int64_t pick = (int64_t)(kmeans_uniform(&st) * (double)n);
    if (pick >= n) pick = n - 1;
    for (int64_t c = 0; c < k; c++) {
        if (c > 0) {
            /* D^2 sampling; the sum and the scan run serially in index order
             * (O(n), cheap next to the O(n dim) update) to stay deterministic. */
            double total = 0.0;
            for (int64_t i = 0; i < n; i++) total += mind2[i];
            double u = kmeans_uniform(&st);
            if (!(total > 0.0)) {
                pick = (int64_t)(u * (double)n); /* all points coincide with centres */
                if (pick >= n) pick = n - 1;
            } else {
                double r = u * total, cum = 0.0;
                pick = -1;
                int64_t last_positive = 0;
                for (int64_t i = 0; i < n; i++) {
                    if (mind2[i] <= 0.0) continue;
                    last_positive = i;
                    cum += mind2[i];
                    if (cum > r) { pick = i; break; }
                }
                if (pick < 0) pick = last_positive; /* rounding at the top end */
            }
        }
        memcpy(centers + c * dim, x + pick * dim, (size_t)dim * sizeof(real));
        if (c + 1 < k) {
            if (prune) { /* c dim, next to the n dim update */
                for (int64_t j = 0; j < c; j++) cc[j] = sqdist(centers + j * dim, centers + c * dim, dim);
                nd += c;
            }
            nd += SFX(kmeans_update_mind)(x, n, dim, centers, c, mind2, near, cc, sqdist);
        }
    }
    if (n_dist) *n_dist = nd;
    free(mind2); free(near); free(cc);
    return 0;
}

int SFX(mvs_kmeanspp_init)(const real *x, int64_t n, int64_t dim, int64_t k, uint64_t seed,
                           real *centers) {
    return SFX(mvs_kmeanspp_init_stats)(x, n, dim, k, seed, centers, NULL);
}

int SFX(mvs_kmeans_assign)(const real *x, int64_t n, int64_t dim, const real *centers, int64_t k,
                           int64_t *assign, real *dist2) {
    if (kmeans_check(n, dim, 1)) return -1;
    if (k < 1) return mv_error("kmeans: no centres to assign to");
    int64_t rb = n < KMEANS_ROW_BLOCK ? n : KMEANS_ROW_BLOCK, nblk = (n + KMEANS_ROW_BLOCK - 1) / KMEANS_ROW_BLOCK;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    real *tiles = malloc((size_t)nt * (size_t)rb * (size_t)k * sizeof(real));
    real *csq = malloc((size_t)k * sizeof(real));
    if (!tiles || !csq) {
        free(tiles); free(csq);
        return mv_error("kmeans: out of memory for %d %lld x %lld distance tiles", nt, (long long)rb, (long long)k);
    }
    for (int64_t j = 0; j < k; j++) {
        double s = 0.0;
        for (int64_t d = 0; d < dim; d++) s += (double)centers[j * dim + d] * (double)centers[j * dim + d];
        csq[j] = (real)s;
    }
    /* one single-threaded GEMM per fixed row block, blocks over OpenMP threads:
     * the bits do not depend on the thread count */
    int prev = mvt_blas_threads_single();
#pragma omp parallel for schedule(dynamic, 1) if (nblk > 1)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t r0 = blk * KMEANS_ROW_BLOCK, rn = n - r0 < KMEANS_ROW_BLOCK ? n - r0 : KMEANS_ROW_BLOCK;
        real *tile = tiles + (size_t)mvt_thread_num() * (size_t)rb * (size_t)k;
        /* tile (rn, k) = -2 x c^T */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rn, (int)k, (int)dim, (real)-2.0, x + r0 * dim,
             (int)dim, centers, (int)dim, (real)0.0, tile, (int)k);
        for (int64_t i = 0; i < rn; i++) {
            const real *t = tile + i * k;
            real best = csq[0] + t[0];
            int64_t arg = 0;
            for (int64_t j = 1; j < k; j++) {
                real d = csq[j] + t[j];
                if (d < best) { best = d; arg = j; } /* strict: ties keep the lowest index */
            }
            assign[r0 + i] = arg;
            if (dist2) {
                const real *xi = x + (r0 + i) * dim;
                double xs = 0.0;
                for (int64_t d = 0; d < dim; d++) xs += (double)xi[d] * (double)xi[d];
                double v = xs + (double)best;
                dist2[r0 + i] = (real)(v > 0.0 ? v : 0.0);
            }
        }
    }
    mvt_blas_threads_restore(prev);
    free(tiles); free(csq);
    return 0;
}

/* centers (k, dim) = mean of the points assigned to each centre; empty
 * clusters keep their centre. The rows are cut into KMEANS_SUM_CHUNKS fixed
 * chunks (a function of n only); each chunk sums its rows in order into its
 * own partial (streaming x row by row), and the partials are added in chunk
 * order, so the sums do not depend on the thread count. */
static int SFX(kmeans_update_centers)(const real *x, int64_t n, int64_t dim, int64_t k,
                                      const int64_t *assign, real *centers) {
    int64_t n_chunks = n < KMEANS_SUM_CHUNKS ? n : KMEANS_SUM_CHUNKS;
    double *partial = calloc((size_t)(n_chunks * k * dim), sizeof(double));
    int64_t *count = calloc((size_t)k, sizeof(int64_t));
    if (!partial || !count) {
        free(partial); free(count);
        return mv_error("kmeans: out of memory for the centre sums");
    }
    for (int64_t i = 0; i < n; i++) count[assign[i]]++;
#pragma omp parallel for schedule(static) if (n * dim >= KMEANS_MIN_PARALLEL_WORK)
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        double *sum = partial + ch * k * dim;
        for (int64_t i = n * ch / n_chunks; i < n * (ch + 1) / n_chunks; i++) {
            const real *xi = x + i * dim;
            double *s = sum + assign[i] * dim;
            for (int64_t d = 0; d < dim; d++) s[d] += (double)xi[d];
        }
    }
    for (int64_t ch = 1; ch < n_chunks; ch++)
        for (int64_t e = 0; e < k * dim; e++) partial[e] += partial[ch * k * dim + e];
    for (int64_t j = 0; j < k; j++) {
        if (count[j] == 0) continue;
        double inv = 1.0 / (double)count[j];
        for (int64_t d = 0; d < dim; d++) centers[j * dim + d] = (real)(partial[j * dim + d] * inv);
    }
    free(partial); free(count);
    return 0;
}

int SFX(mvs_kmeans_lloyd)(const real *x, int64_t n, int64_t dim, int64_t k, int64_t iters,
                          real *centers, int64_t *assign, int64_t *iters_run) {
    if (kmeans_check(n, dim, k)) return -1;
    if (iters < 0) return mv_error("kmeans: negative iteration count %lld", (long long)iters);
    int64_t *cur = malloc((size_t)n * sizeof(int64_t));
    int64_t *prev = malloc((size_t)n * sizeof(int64_t));
    if (!cur || !prev) {
        free(cur); free(prev);
        return mv_error("kmeans: out of memory for %lld assignments", (long long)n);
    }
    int64_t done = 0;
    int rc = 0;
    for (int64_t it = 0; it < iters; it++) {
        if (SFX(mvs_kmeans_assign)(x, n, dim, centers, k, cur, NULL)) { rc = -1; break; }
        /* Same assignment as last time -> the update would reproduce the same
         * centres bit for bit; every later iteration is a no-op. */
        if (it > 0 && memcmp(cur, prev, (size_t)n * sizeof(int64_t)) == 0) break;
        if (SFX(kmeans_update_centers)(x, n, dim, k, cur, centers)) { rc = -1; break; }
        done++;
        int64_t *t = prev; prev = cur; cur = t;
    }
    if (rc == 0 && assign) rc = SFX(mvs_kmeans_assign)(x, n, dim, centers, k, assign, NULL);
    if (iters_run) *iters_run = done;
    free(cur); free(prev);
    return rc;
}

int SFX(mvs_kmeans)(const real *x, int64_t n, int64_t dim, int64_t k, int64_t iters, uint64_t seed,
                    real *centers, int64_t *assign) {
    if (SFX(mvs_kmeanspp_init)(x, n, dim, k, seed, centers)) return -1;
    return SFX(mvs_kmeans_lloyd)(x, n, dim, k, iters, centers, assign, NULL);
}

#endif
