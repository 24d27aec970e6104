/* knn: exact nearest-neighbour search of query features against a memory
 * bank, and the MVEAD patch / image / sample scores built on it.
 * Called by the scoring stage (mvead score/eval commands), by bench_bank and
 * by tests. Works on raw row-major pointers (llm.c style), float64 and
 * float32 variants (suffix _f64 / _f32).
 *
 * Distances are found with BLOCKED GEMM (||q||^2 + ||b||^2 - 2 q b^T, query
 * blocks x bank blocks, running minimum per query); the winning entry's
 * distance is then recomputed exactly from the difference vector, so the
 * returned value carries no GEMM cancellation error. Returned distances are
 * Euclidean (not squared), as torch.cdist in the reference.
 * Ties (equal GEMM distances) go to the lowest bank index.
 * Results do not depend on OMP_NUM_THREADS (fixed blocks, per-row reductions).
 */
#ifndef MVEAD_KNN_H
#define MVEAD_KNN_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* queries (n_queries, dim), bank (n_bank, dim) -> min_dist (n_queries) and,
 * when min_index != NULL, min_index (n_queries) into bank.
 * Returns 0, or -1 with mv_error set (empty bank, bad sizes, out of memory). */
int mvs_knn_f64(const double *queries, int64_t n_queries, const double *bank, int64_t n_bank,
                int64_t dim, double *min_dist, int64_t *min_index);
int mvs_knn_f32(const float *queries, int64_t n_queries, const float *bank, int64_t n_bank,
                int64_t dim, float *min_dist, int64_t *min_index);

/* MVEAD scores for a batch of multi-view samples.
 * queries (n_samples, n_views, n_patches, dim) row-major.
 * banks[b] (bank_rows[b], dim): n_banks == n_views -> per-view banks (view v's
 * patches search bank v); n_banks == 1 -> pooled single bank for all views.
 * Outputs: patch_scores (n_samples, n_views, n_patches) = NN distance;
 * image_scores (n_samples, n_views) = max over patches (may be NULL);
 * sample_scores (n_samples) = max over views of the image scores (may be NULL).
 * Returns 0 or -1 with mv_error set. */
int mvs_score_samples_f64(const double *queries, int64_t n_samples, int64_t n_views,
                          int64_t n_patches, int64_t dim, const double *const *banks,
                          const int64_t *bank_rows, int64_t n_banks, double *patch_scores,
                          double *image_scores, double *sample_scores);
int mvs_score_samples_f32(const float *queries, int64_t n_samples, int64_t n_views,
                          int64_t n_patches, int64_t dim, const float *const *banks,
                          const int64_t *bank_rows, int64_t n_banks, float *patch_scores,
                          float *image_scores, float *sample_scores);

#ifdef __cplusplus
}
#endif
#endif
