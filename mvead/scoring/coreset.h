/* coreset: greedy k-center subsampling of a memory bank (PatchCore style).
 * Called when building the multi-view memory banks (one bank per view, or a
 * pooled bank) from the EAM outputs of the training patches, and by
 * bench_bank / tests. Raw row-major pointers, _f64 / _f32 variants.
 *
 * Exact mode: start at `start`, then repeatedly add the point farthest (in
 * Euclidean distance) from the chosen set; the argmax takes the first (lowest
 * index) maximum. A min-distance array makes each step O(n * dim), parallel
 * over n with static partitions; the order is independent of OMP_NUM_THREADS.
 * Distances are computed from difference vectors (accumulated in double), not
 * via GEMM, so the order matches a direct reference. A pass skips the rows
 * that the triangle inequality proves cannot come closer to the new centre
 * (sqdist_tmpl.h: with a margin for rounding), which changes no bit of the
 * result; on clustered features most rows are skipped.
 *
 * Projected mode (approximate, faster for large dim): features are projected
 * with a seeded Gaussian random matrix (dim -> proj_dim, by GEMM) and the
 * exact greedy runs on the projections. Same seed -> same selection.
 */
#ifndef MVEAD_CORESET_H
#define MVEAD_CORESET_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of points kept for a ratio in (0, 1]: floor(ratio * n), at least 1
 * (and at most n). Returns -1 with mv_error for a bad ratio or n <= 0. */
int64_t mvs_coreset_size(int64_t n, double ratio);

/* x (n, dim) -> selected (m) indices in selection order, selected[0] = start.
 * min_dist (n), optional: on return each point's Euclidean distance to the
 * chosen set of all m points. If m exceeds the number of distinct points the
 * tail repeats already-chosen points (all distances 0). 1 <= m <= n.
 * Returns 0 or -1 with mv_error. */
int mvs_coreset_greedy_f64(const double *x, int64_t n, int64_t dim, int64_t m, int64_t start,
                           int64_t *selected, double *min_dist);
int mvs_coreset_greedy_f32(const float *x, int64_t n, int64_t dim, int64_t m, int64_t start,
                           int64_t *selected, float *min_dist);

/* The same, and *n_dist (may be NULL) gets the number of distances computed
 * (point-centre and centre-centre): n * m without any pruning. */
int mvs_coreset_greedy_stats_f64(const double *x, int64_t n, int64_t dim, int64_t m, int64_t start,
                                 int64_t *selected, double *min_dist, int64_t *n_dist);
int mvs_coreset_greedy_stats_f32(const float *x, int64_t n, int64_t dim, int64_t m, int64_t start,
                                 int64_t *selected, float *min_dist, int64_t *n_dist);

/* Approximate greedy on a random Gaussian projection to proj_dim dimensions
 * (proj_dim >= dim runs the exact mode). Indices refer to rows of x. */
int mvs_coreset_projected_f64(const double *x, int64_t n, int64_t dim, int64_t proj_dim,
                              uint64_t seed, int64_t m, int64_t start, int64_t *selected);
int mvs_coreset_projected_f32(const float *x, int64_t n, int64_t dim, int64_t proj_dim,
                              uint64_t seed, int64_t m, int64_t start, int64_t *selected);

/* Copies the selected rows: out (m, dim) = x[selected[i]]. */
void mvs_gather_rows_f64(const double *x, int64_t dim, const int64_t *selected, int64_t m, double *out);
void mvs_gather_rows_f32(const float *x, int64_t dim, const int64_t *selected, int64_t m, float *out);

#ifdef __cplusplus
}
#endif
#endif
