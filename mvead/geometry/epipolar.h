/* epipolar: two-view geometry for the Epipolar Attention Module.
 * Fundamental matrices from cameras or from point correspondences (normalised
 * 8-point, RANSAC), their rescaling when images are resized, and the
 * patch-to-line distances and masks that restrict EAM attention.
 * Called by calibration.c (calibrate command), eam/objective code (support
 * masks), epilines.c (pictures) and tests/check_epipolar.c.
 *
 * Conventions (docs/method.md "Epipolar geometry"):
 *   pixel p = [x, y, 1], x = column, y = row, origin at the top-left corner
 *   of the top-left pixel of the (resized) image;
 *   p_a^T F_ab p_b = 0, the line in view b is l_b = F_ab^T p_a, F_ba = F_ab^T
 *   (Hartley-Zisserman / OpenCV write x_b^T F x_a = 0: their F is our F^T);
 *   matrices are row-major double[9]; F is stored with unit Frobenius norm and
 *   F[8] >= 0;
 *   patch j of an h x w grid (patch size P) has centre
 *   ((j mod w + 0.5) P, (j / w + 0.5) P);
 *   M_ab[j, k] = 1 iff the distance from patch k's centre to l_b(centre j)
 *   is <= delta * P; when l_b has (l1, l2) = 0 (centre j is the epipole)
 *   every k is valid (distance 0). */
#ifndef MVEAD_EPIPOLAR_H
#define MVEAD_EPIPOLAR_H
#include <stdbool.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Line norms sqrt(l1^2 + l2^2) below this count as "the query is the epipole"
 * (same constant as the fixture generator; F has unit Frobenius norm). */
#define MVG_EPIPOLE_EPS 1e-12

/* F_ab from cameras with X_cam = R X_world + t:
 * F_ab = (K_b^-T [t]x R K_a^-1)^T, R = R_b R_a^T, t = t_b - R t_a; normalised. */
void mvg_fundamental_from_cameras(const double Ka[9], const double Ra[9], const double ta[3],
                                  const double Kb[9], const double Rb[9], const double tb[3],
                                  double F_ab[9]);
/* Unit Frobenius norm and F[8] >= 0 (an all-zero F is left as it is). */
void mvg_normalize_F(double F[9]);
/* Images resized so that x' = sx * x, y' = sy * y (view a by (sxa, sya), view b
 * by (sxb, syb)): F' = diag(1/sxa, 1/sya, 1) F diag(1/sxb, 1/syb, 1), normalised. */
void mvg_rescale_F(double F_ab[9], double sxa, double sya, double sxb, double syb);
/* Centre of patch j in a grid w patches wide. */
void mvg_patch_centre(int j, int w, int P, double *x, double *y);

/* Epipolar line in view b of point (xa, ya) in view a: l = F_ab^T [xa, ya, 1]. */
void mvg_epipolar_line(const double F_ab[9], double xa, double ya, double l[3]);
/* Distance of (x, y) to line l; 0 when (l1, l2) = 0 (every point is consistent). */
double mvg_point_line_distance(const double l[3], double x, double y);

/* dist: N x N with N = h*w, dist[j*N + k] = distance of centre k (view b) to l_b(centre j). */
void mvg_epipolar_distances(const double F_ab[9], int h, int w, int P, double *dist);
/* mask: N x N uint8, mask[j*N + k] = dist[j*N + k] <= delta * P. */
void mvg_epipolar_mask(const double F_ab[9], int h, int w, int P, double delta, uint8_t *mask);
/* Support mask for V views, the EAM's layout: F is V*V*9 with F[(a*V + b)*9 ..] = F_ab
 * (diagonal unused). out: V x N x (V-1)N,
 * out[(a*N + j)*(V-1)*N + s*N + k] = M_ab[j, k] for the s-th support b != a
 * in increasing order. */
void mvg_support_mask(const double *F, int V, int h, int w, int P, double delta, uint8_t *out);

/* Normalised 8-point (Hartley): pa, pb are n x 2 (x, y) with pa[i] <-> pb[i].
 * Least squares over all n >= 8 points, rank 2 by SVD, normalised.
 * Returns -1 (mv_error) when n < 8, a point is not finite, or the points are
 * degenerate (coincident, or the linear system has more than one solution). */
int mvg_eight_point(const double *pa, const double *pb, int n, double F_ab[9]);

/* Sampson error in pixels: sqrt( (pa^T F pb)^2 / ((F pb)_1^2 + (F pb)_2^2 +
 * (F^T pa)_1^2 + (F^T pa)_2^2) ), the first-order geometric distance of the
 * correspondence to the epipolar constraint. INFINITY when the denominator is 0
 * and the constraint is violated, 0 when both are 0. */
double mvg_sampson_error(const double F_ab[9], const double pa[2], const double pb[2]);

typedef struct {
    double threshold_px; /* inlier when mvg_sampson_error <= threshold_px (default 1.0) */
    int max_iters;       /* upper bound on minimal samples drawn (default 2000) */
    double confidence;   /* stop when P(an all-inlier sample was drawn) >= this (default 0.999) */
    uint64_t seed;       /* sample stream; same seed, same result */
} mvg_ransac_opts;

mvg_ransac_opts mvg_ransac_opts_default(void);

/* RANSAC over 8-point minimal samples. Scores a model by its inlier count
 * (ties: lower summed inlier error), adapts the number of iterations to the best
 * inlier ratio so far, then refits on the inliers (repeated while the inlier
 * set changes, at most 10 times). o may be NULL (defaults). inlier (n bytes)
 * and n_inliers may be NULL. Single-threaded and deterministic for a seed.
 * Returns -1 (mv_error) when n < 8, options are invalid, or no
 * non-degenerate model with >= 8 inliers is found. */
int mvg_ransac(const double *pa, const double *pb, int n, const mvg_ransac_opts *o,
               double F_ab[9], uint8_t *inlier, int *n_inliers);

/* Small dense linear algebra used above, exposed for tests.
 * One-sided Jacobi SVD of A (m x n row-major, m >= n): on return A holds U*S
 * (columns orthogonal), S the n singular values (unsorted, >= 0) and V (n x n
 * row-major) the right singular vectors as columns, so A_in = (U S) V^T. */
void mvg_svd_jacobi(double *A, int m, int n, double *S, double *V);
/* 3x3 inverse via the adjugate; returns -1 (no message) when singular. */
int mvg_inv3(const double A[9], double Ainv[9]);

#ifdef __cplusplus
}
#endif
#endif
