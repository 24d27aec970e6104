/* kmeans: k-means++ initialisation and Lloyd iterations.
 * Called by the MCP pre-training objective to build the K centres per view
 * (method.md "Pre-training objective"), by bench_bank and by tests.
 * Raw row-major pointers, _f64 / _f32 variants.
 *
 * Assignment uses GEMM distances (||x||^2 + ||c||^2 - 2 x c^T) in blocks of
 * rows; ties go to the lowest centre index. An empty cluster keeps its old
 * centre (the fixture's rule). Centre sums are accumulated in double over
 * 8 fixed row chunks added in a fixed order, so the result is independent
 * of OMP_NUM_THREADS.
 */
#ifndef MVEAD_KMEANS_H
#define MVEAD_KMEANS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* k-means++ (D^2 sampling, one candidate per step) from a private
 * splitmix64 stream seeded with `seed`: x (n, dim) -> centers (k, dim).
 * Deterministic for a seed. Returns 0 or -1 with mv_error (k < 1, k > n). */
int mvs_kmeanspp_init_f64(const double *x, int64_t n, int64_t dim, int64_t k, uint64_t seed,
                          double *centers);
int mvs_kmeanspp_init_f32(const float *x, int64_t n, int64_t dim, int64_t k, uint64_t seed,
                          float *centers);

/* The same, and *n_dist (may be NULL) gets the number of distances computed
 * (point-centre and centre-centre): n (k - 1) without pruning. The update
 * after each centre skips the points the triangle inequality proves it
 * cannot move (sqdist_tmpl.h), which changes no bit of the result. */
int mvs_kmeanspp_init_stats_f64(const double *x, int64_t n, int64_t dim, int64_t k, uint64_t seed,
                                double *centers, int64_t *n_dist);
int mvs_kmeanspp_init_stats_f32(const float *x, int64_t n, int64_t dim, int64_t k, uint64_t seed,
                                float *centers, int64_t *n_dist);

/* Nearest centre of every point: assign (n) and, optionally, dist2 (n) the
 * squared distance from the GEMM expansion (clamped at 0). */
int mvs_kmeans_assign_f64(const double *x, int64_t n, int64_t dim, const double *centers, int64_t k,
                          int64_t *assign, double *dist2);
int mvs_kmeans_assign_f32(const float *x, int64_t n, int64_t dim, const float *centers, int64_t k,
                          int64_t *assign, float *dist2);

/* Lloyd from the given centers (k, dim), updated in place: `iters` times
 * (assign, then move each non-empty centre to the mean of its points); then a
 * final assignment into assign (n) (may be NULL). Stops early when an
 * assignment repeats the previous one (the centres would not change).
 * *iters_run (may be NULL) gets the number of centre updates done. */
int mvs_kmeans_lloyd_f64(const double *x, int64_t n, int64_t dim, int64_t k, int64_t iters,
                         double *centers, int64_t *assign, int64_t *iters_run);
int mvs_kmeans_lloyd_f32(const float *x, int64_t n, int64_t dim, int64_t k, int64_t iters,
                         float *centers, int64_t *assign, int64_t *iters_run);

/* k-means++ init followed by Lloyd. */
int mvs_kmeans_f64(const double *x, int64_t n, int64_t dim, int64_t k, int64_t iters, uint64_t seed,
                   double *centers, int64_t *assign);
int mvs_kmeans_f32(const float *x, int64_t n, int64_t dim, int64_t k, int64_t iters, uint64_t seed,
                   float *centers, int64_t *assign);

#ifdef __cplusplus
}
#endif
#endif
