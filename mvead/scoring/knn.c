/* knn: blocked-GEMM exact nearest neighbour + MVEAD patch/image/sample scores.
 * This file is a template: the bottom half is compiled twice (real = double,
 * real = float) by including itself with different macros. */
#ifndef MVS_KNN_TEMPLATE
#include "mvead/scoring/knn.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Block sizes: a query block x bank block tile is one single-threaded GEMM
 * (0.8 GFLOP at dim 768: near OpenBLAS's one-thread peak, 2 MB of f32 tile),
 * and the tiles are spread over OpenMP threads. Fixed sizes and one BLAS
 * thread per tile keep every bit independent of the thread count (a threaded
 * OpenBLAS call changes bits with its partition), and no OpenBLAS worker is
 * left spinning against the next OpenMP region. */
#define KNN_QUERY_BLOCK 256
#define KNN_BANK_BLOCK 2048

#define MVS_KNN_TEMPLATE
#define real double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#include "mvead/scoring/knn.c"
#undef real
#undef SFX
#undef GEMM

#define real float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#include "mvead/scoring/knn.c"
#undef real
#undef SFX
#undef GEMM

#else /* ---------------- template body: real, SFX, GEMM ---------------- */

/* rows (n, dim) -> sqnorm (n), accumulated in double (each row on its own). */
static void SFX(row_sqnorms)(const real *rows, int64_t n, int64_t dim, real *sqnorm) {
#pragma omp parallel for schedule(static) if (n * dim >= (1 << 18))
    for (int64_t i = 0; i < n; i++) {
        const real *r = rows + i * dim;
        double s = 0.0;
        for (int64_t k = 0; k < dim; k++) s += (double)r[k] * (double)r[k];
        sqnorm[i] = (real)s;
    }
}

int SFX(mvs_knn)(const real *queries, int64_t n_queries, const real *bank, int64_t n_bank,
                 int64_t dim, real *min_dist, int64_t *min_index) {
    if (n_queries < 0 || n_bank <= 0 || dim <= 0)
        return mv_error("knn: need a non-empty bank and dim > 0 (got %lld queries, %lld bank rows, dim %lld)",
                        (long long)n_queries, (long long)n_bank, (long long)dim);
    if (n_queries == 0) return 0;
    int64_t nqb = (n_queries + KNN_QUERY_BLOCK - 1) / KNN_QUERY_BLOCK, nbb = (n_bank + KNN_BANK_BLOCK - 1) / KNN_BANK_BLOCK;
    int64_t qb_max = n_queries < KNN_QUERY_BLOCK ? n_queries : KNN_QUERY_BLOCK;
    int64_t bb_max = n_bank < KNN_BANK_BLOCK ? n_bank : KNN_BANK_BLOCK;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    real *bank_sq = malloc((size_t)n_bank * sizeof(real));
    real *tiles = malloc((size_t)nt * (size_t)qb_max * (size_t)bb_max * sizeof(real));
    /* per (bank block, query): the block's best ||b||^2 - 2 q.b and its index */
    real *part_val = malloc((size_t)nbb * (size_t)n_queries * sizeof(real));
    int64_t *part_idx = malloc((size_t)nbb * (size_t)n_queries * sizeof(int64_t));
    if (!bank_sq || !tiles || !part_val || !part_idx) {
        free(bank_sq); free(tiles); free(part_val); free(part_idx);
        return mv_error("knn: out of memory for %d %lld x %lld distance tiles", nt, (long long)qb_max,
                        (long long)bb_max);
    }
    SFX(row_sqnorms)(bank, n_bank, dim, bank_sq);
    int prev = mvt_blas_threads_single();
    int64_t ntask = nqb * nbb;
#pragma omp parallel for schedule(dynamic, 1) if (ntask > 1)
    for (int64_t task = 0; task < ntask; task++) {
        int64_t qi = task / nbb, bi = task % nbb, q0 = qi * KNN_QUERY_BLOCK, b0 = bi * KNN_BANK_BLOCK;
        int64_t qn = n_queries - q0 < KNN_QUERY_BLOCK ? n_queries - q0 : KNN_QUERY_BLOCK;
        int64_t bn = n_bank - b0 < KNN_BANK_BLOCK ? n_bank - b0 : KNN_BANK_BLOCK;
        real *tile = tiles + (size_t)mvt_thread_num() * (size_t)qb_max * (size_t)bb_max;
        /* tile (qn, bn) = -2 q b^T */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn, (int)bn, (int)dim, (real)-2.0, queries + q0 * dim,
             (int)dim, bank + b0 * dim, (int)dim, (real)0.0, tile, (int)bn);
        /* ||q||^2 is constant per row, so the argmin needs only ||b||^2 - 2 q.b.
         * Strict '<' over increasing j keeps the lowest index on ties. */
        for (int64_t i = 0; i < qn; i++) {
            const real *t = tile + i * bn;
            const real *bs = bank_sq + b0;
            real bv = (real)INFINITY;
            int64_t bix = b0;
            for (int64_t j = 0; j < bn; j++) {
                real d = bs[j] + t[j];
                if (d < bv) { bv = d; bix = b0 + j; }
            }
            part_val[bi * n_queries + q0 + i] = bv;
            part_idx[bi * n_queries + q0 + i] = bix;
        }
    }
    mvt_blas_threads_restore(prev);
    /* the blocks' winners in bank order (strict '<': the lowest index among equal values, as one
     * scan would give), then the exact distance to the winner from the difference vector */
#pragma omp parallel for schedule(static) if (n_queries * dim >= (1 << 18))
    for (int64_t i = 0; i < n_queries; i++) {
        real bv = part_val[i];
        int64_t bix = part_idx[i];
        for (int64_t bi = 1; bi < nbb; bi++)
            if (part_val[bi * n_queries + i] < bv) { bv = part_val[bi * n_queries + i]; bix = part_idx[bi * n_queries + i]; }
        const real *q = queries + i * dim, *b = bank + bix * dim;
        double s = 0.0;
        for (int64_t k = 0; k < dim; k++) {
            double diff = (double)q[k] - (double)b[k];
            s += diff * diff;
        }
        min_dist[i] = (real)sqrt(s);
        if (min_index) min_index[i] = bix;
    }
    free(bank_sq); free(tiles); free(part_val); free(part_idx);
    return 0;
}

int SFX(mvs_score_samples)(const real *queries, int64_t n_samples, int64_t n_views,
                           int64_t n_patches, int64_t dim, const real *const *banks,
                           const int64_t *bank_rows, int64_t n_banks, real *patch_scores,
                           real *image_scores, real *sample_scores) {
    if (n_samples < 0 || n_views <= 0 || n_patches <= 0 || dim <= 0)
        return mv_error("score: bad sizes (samples %lld, views %lld, patches %lld, dim %lld)",
                        (long long)n_samples, (long long)n_views, (long long)n_patches, (long long)dim);
    if (n_banks != 1 && n_banks != n_views)
        return mv_error("score: %lld memory banks for %lld views: expected 1 (pooled) or one per view",
                        (long long)n_banks, (long long)n_views);
    if (!patch_scores) return mv_error("score: patch_scores output is required");
    if (n_samples == 0) return 0;
    int64_t per_sample = n_views * n_patches;
    if (n_banks == 1) {
        /* Pooled: every patch of every view searches the same bank in one call. */
        if (SFX(mvs_knn)(queries, n_samples * per_sample, banks[0], bank_rows[0], dim, patch_scores, NULL))
            return mv_error_prefix("score (pooled bank)");
    } else {
        /* Per-view: gather view v's patches of all samples into one block. */
        int64_t rows = n_samples * n_patches;
        real *gathered = malloc((size_t)rows * (size_t)dim * sizeof(real));
        real *dist = malloc((size_t)rows * sizeof(real));
        if (!gathered || !dist) {
            free(gathered); free(dist);
            return mv_error("score: out of memory gathering %lld query rows", (long long)rows);
        }
        for (int64_t v = 0; v < n_views; v++) {
            for (int64_t s = 0; s < n_samples; s++)
                memcpy(gathered + s * n_patches * dim, queries + (s * n_views + v) * n_patches * dim,
                       (size_t)(n_patches * dim) * sizeof(real));
            if (SFX(mvs_knn)(gathered, rows, banks[v], bank_rows[v], dim, dist, NULL)) {
                free(gathered); free(dist);
                return mv_error_prefix("score (bank of view %lld)", (long long)v);
            }
            for (int64_t s = 0; s < n_samples; s++)
                memcpy(patch_scores + (s * n_views + v) * n_patches, dist + s * n_patches,
                       (size_t)n_patches * sizeof(real));
        }
        free(gathered); free(dist);
    }
    for (int64_t s = 0; s < n_samples; s++) {
        real sample_max = (real)-INFINITY;
        for (int64_t v = 0; v < n_views; v++) {
            const real *p = patch_scores + (s * n_views + v) * n_patches;
            real m = p[0];
            for (int64_t j = 1; j < n_patches; j++) if (p[j] > m) m = p[j];
            if (image_scores) image_scores[s * n_views + v] = m;
            if (m > sample_max) sample_max = m;
        }
        if (sample_scores) sample_scores[s] = sample_max;
    }
    return 0;
}

#endif
