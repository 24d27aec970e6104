/* epipolar: fundamental matrices, epipolar distances/masks, 8-point, RANSAC.
 * See epipolar.h for the conventions (p_a^T F_ab p_b = 0, x = column). */
#include "mvead/geometry/epipolar.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- 3x3 helpers */

static void mat3_mul(const double A[9], const double B[9], double C[9]) {
    double T[9];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            T[r * 3 + c] = A[r * 3 + 0] * B[0 * 3 + c] + A[r * 3 + 1] * B[1 * 3 + c] + A[r * 3 + 2] * B[2 * 3 + c];
    memcpy(C, T, sizeof T);
}

static void mat3_transpose(const double A[9], double At[9]) {
    double T[9];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) T[c * 3 + r] = A[r * 3 + c];
    memcpy(At, T, sizeof T);
}

int mvg_inv3(const double A[9], double Ainv[9]) {
    double c00 = A[4] * A[8] - A[5] * A[7];
    double c01 = A[5] * A[6] - A[3] * A[8];
    double c02 = A[3] * A[7] - A[4] * A[6];
    double det = A[0] * c00 + A[1] * c01 + A[2] * c02;
    if (det == 0.0 || !isfinite(det)) return -1;
    double id = 1.0 / det;
    double T[9] = {
        c00 * id, (A[2] * A[7] - A[1] * A[8]) * id, (A[1] * A[5] - A[2] * A[4]) * id,
        c01 * id, (A[0] * A[8] - A[2] * A[6]) * id, (A[2] * A[3] - A[0] * A[5]) * id,
        c02 * id, (A[1] * A[6] - A[0] * A[7]) * id, (A[0] * A[4] - A[1] * A[3]) * id,
    };
    memcpy(Ainv, T, sizeof T);
    return 0;
}

void mvg_normalize_F(double F[9]) {
    double s = 0.0;
    for (int i = 0; i < 9; i++) s += F[i] * F[i];
    s = sqrt(s);
    if (!(s > 0.0) || !isfinite(s)) return;
    if (F[8] < 0.0) s = -s;
    for (int i = 0; i < 9; i++) F[i] /= s;
}

/* ---------------------------------------------------------------- F from cameras */

void mvg_fundamental_from_cameras(const double Ka[9], const double Ra[9], const double ta[3],
                                  const double Kb[9], const double Rb[9], const double tb[3],
                                  double F_ab[9]) {
    double Kai[9], Kbi[9];
    if (mvg_inv3(Ka, Kai) || mvg_inv3(Kb, Kbi)) {
        /* Singular intrinsics: no geometry. A zero F makes every patch valid
         * (the epipole rule); callers that can report errors validate K first. */
        memset(F_ab, 0, 9 * sizeof(double));
        return;
    }
    double Rat[9], R[9];
    mat3_transpose(Ra, Rat);
    mat3_mul(Rb, Rat, R); /* X_b = R X_a + t */
    double t[3];
    for (int r = 0; r < 3; r++) t[r] = tb[r] - (R[r * 3 + 0] * ta[0] + R[r * 3 + 1] * ta[1] + R[r * 3 + 2] * ta[2]);
    double tx[9] = {0, -t[2], t[1], t[2], 0, -t[0], -t[1], t[0], 0};
    double Kbit[9], M[9];
    mat3_transpose(Kbi, Kbit);
    mat3_mul(Kbit, tx, M);
    mat3_mul(M, R, M);
    mat3_mul(M, Kai, M); /* x_b^T M x_a = 0 (Hartley-Zisserman order) */
    mat3_transpose(M, F_ab);
    mvg_normalize_F(F_ab);
}

void mvg_rescale_F(double F_ab[9], double sxa, double sya, double sxb, double syb) {
    /* p = S^-1 p'  =>  p_a'^T (Sa^-1 F Sb^-1) p_b' = 0 */
    const double da[3] = {1.0 / sxa, 1.0 / sya, 1.0};
    const double db[3] = {1.0 / sxb, 1.0 / syb, 1.0};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) F_ab[r * 3 + c] *= da[r] * db[c];
    mvg_normalize_F(F_ab);
}

/* ---------------------------------------------------------------- distances and masks */

void mvg_patch_centre(int j, int w, int P, double *x, double *y) {
    *x = ((double)(j % w) + 0.5) * P;
    *y = ((double)(j / w) + 0.5) * P;
}

void mvg_epipolar_line(const double F_ab[9], double xa, double ya, double l[3]) {
    for (int c = 0; c < 3; c++) l[c] = xa * F_ab[0 * 3 + c] + ya * F_ab[1 * 3 + c] + F_ab[2 * 3 + c];
}

double mvg_point_line_distance(const double l[3], double x, double y) {
    double n = sqrt(l[0] * l[0] + l[1] * l[1]);
    if (n < MVG_EPIPOLE_EPS) return 0.0;
    return fabs(l[0] * x + l[1] * y + l[2]) / n;
}

/* One row block of distances: row j of the N x N matrix goes to dst + j*row_stride. */
static void distance_rows(const double F_ab[9], int h, int w, int P, double *dst, size_t row_stride) {
    const int N = h * w;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < N; j++) {
        double xa, ya, l[3];
        mvg_patch_centre(j, w, P, &xa, &ya);
        mvg_epipolar_line(F_ab, xa, ya, l);
        double *row = dst + (size_t)j * row_stride;
        double n = sqrt(l[0] * l[0] + l[1] * l[1]);
        if (n < MVG_EPIPOLE_EPS) {
            for (int k = 0; k < N; k++) row[k] = 0.0;
            continue;
        }
        for (int k = 0; k < N; k++) {
            double xb, yb;
            mvg_patch_centre(k, w, P, &xb, &yb);
            row[k] = fabs(l[0] * xb + l[1] * yb + l[2]) / n;
        }
    }
}

static void mask_rows(const double F_ab[9], int h, int w, int P, double delta, uint8_t *dst, size_t row_stride) {
    const int N = h * w;
    const double thr = delta * P;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < N; j++) {
        double xa, ya, l[3];
        mvg_patch_centre(j, w, P, &xa, &ya);
        mvg_epipolar_line(F_ab, xa, ya, l);
        uint8_t *row = dst + (size_t)j * row_stride;
        double n = sqrt(l[0] * l[0] + l[1] * l[1]);
        if (n < MVG_EPIPOLE_EPS) {
            memset(row, 1, (size_t)N);
            continue;
        }
        for (int k = 0; k < N; k++) {
            double xb, yb;
            mvg_patch_centre(k, w, P, &xb, &yb);
            /* same expression as distance_rows, so masks agree with distances bit for bit */
            row[k] = (uint8_t)(fabs(l[0] * xb + l[1] * yb + l[2]) / n <= thr);
        }
    }
}

void mvg_epipolar_distances(const double F_ab[9], int h, int w, int P, double *dist) {
    distance_rows(F_ab, h, w, P, dist, (size_t)h * w);
}

void mvg_epipolar_mask(const double F_ab[9], int h, int w, int P, double delta, uint8_t *mask) {
    mask_rows(F_ab, h, w, P, delta, mask, (size_t)h * w);
}

void mvg_support_mask(const double *F, int V, int h, int w, int P, double delta, uint8_t *out) {
    const size_t N = (size_t)h * w;
    const size_t row = (size_t)(V - 1) * N;
    for (int a = 0; a < V; a++) {
        int s = 0;
        for (int b = 0; b < V; b++) {
            if (b == a) continue;
            mask_rows(F + ((size_t)a * V + b) * 9, h, w, P, delta, out + (size_t)a * N * row + (size_t)s * N, row);
            s++;
        }
    }
}

/* ---------------------------------------------------------------- SVD (one-sided Jacobi) */

void mvg_svd_jacobi(double *A, int m, int n, double *S, double *V) {
    for (int i = 0; i < n * n; i++) V[i] = 0.0;
    for (int i = 0; i < n; i++) V[i * n + i] = 1.0;
    for (int sweep = 0; sweep < 80; sweep++) {
        int rotated = 0;
        for (int p = 0; p < n - 1; p++) {
            for (int q = p + 1; q < n; q++) {
                double alpha = 0.0, beta = 0.0, gamma = 0.0;
                for (int i = 0; i < m; i++) {
                    double ap = A[i * n + p], aq = A[i * n + q];
                    alpha += ap * ap;
                    beta += aq * aq;
                    gamma += ap * aq;
                }
                if (gamma == 0.0 || fabs(gamma) <= DBL_EPSILON * sqrt(alpha) * sqrt(beta)) continue;
                rotated = 1;
                double zeta = (beta - alpha) / (2.0 * gamma);
                double t = (zeta >= 0.0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                double c = 1.0 / sqrt(1.0 + t * t), s = c * t;
                for (int i = 0; i < m; i++) {
                    double ap = A[i * n + p], aq = A[i * n + q];
                    A[i * n + p] = c * ap - s * aq;
                    A[i * n + q] = s * ap + c * aq;
                }
                for (int i = 0; i < n; i++) {
                    double vp = V[i * n + p], vq = V[i * n + q];
                    V[i * n + p] = c * vp - s * vq;
                    V[i * n + q] = s * vp + c * vq;
                }
            }
        }
        if (!rotated) break;
    }
    for (int j = 0; j < n; j++) {
        double s = 0.0;
        for (int i = 0; i < m; i++) s += A[i * n + j] * A[i * n + j];
        S[j] = sqrt(s);
    }
}

/* ---------------------------------------------------------------- 8-point */

/* Hartley normalisation: centroid to the origin, mean distance sqrt(2). */
static int hartley_transform(const double *p, int n, double T[9]) {
    double cx = 0.0, cy = 0.0;
    for (int i = 0; i < n; i++) {
        cx += p[2 * i];
        cy += p[2 * i + 1];
    }
    cx /= n;
    cy /= n;
    double md = 0.0;
    for (int i = 0; i < n; i++) md += hypot(p[2 * i] - cx, p[2 * i + 1] - cy);
    md /= n;
    /* coincident points: no scale, no geometry */
    if (!(md > 1e-9 * (1.0 + fabs(cx) + fabs(cy)))) return -1;
    double s = sqrt(2.0) / md;
    double M[9] = {s, 0, -s * cx, 0, s, -s * cy, 0, 0, 1};
    memcpy(T, M, sizeof M);
    return 0;
}

/* Closest rank-2 matrix in Frobenius norm: zero the smallest singular value. */
static void enforce_rank2(double F[9]) {
    double A[9], S[3], V[9];
    memcpy(A, F, sizeof A);
    mvg_svd_jacobi(A, 3, 3, S, V); /* A = U S */
    int mi = 0;
    for (int j = 1; j < 3; j++)
        if (S[j] < S[mi]) mi = j;
    for (int r = 0; r < 3; r++) A[r * 3 + mi] = 0.0;
    double Vt[9];
    mat3_transpose(V, Vt);
    mat3_mul(A, Vt, F);
}

int mvg_eight_point(const double *pa, const double *pb, int n, double F_ab[9]) {
    if (n < 8) return mv_error("eight-point: %d correspondences, at least 8 are needed", n);
    if (!pa || !pb) return mv_error("eight-point: no points given");
    for (int i = 0; i < 2 * n; i++)
        if (!isfinite(pa[i]) || !isfinite(pb[i]))
            return mv_error("eight-point: correspondence %d has a non-finite coordinate", i / 2);
    double Ta[9], Tb[9];
    if (hartley_transform(pa, n, Ta))
        return mv_error("eight-point: degenerate input, the %d points of view a coincide", n);
    if (hartley_transform(pb, n, Tb))
        return mv_error("eight-point: degenerate input, the %d points of view b coincide", n);
    /* Rows of M are outer(a, b) so that M f = a^T F b (f = F row-major).
     * Pad to >= 9 rows with zeros: the Jacobi SVD wants m >= n. */
    const int rows = n < 9 ? 9 : n;
    double *M = calloc((size_t)rows * 9, sizeof(double));
    if (!M) return mv_error("eight-point: out of memory for %d correspondences", n);
    for (int i = 0; i < n; i++) {
        double a[3], b[3];
        for (int r = 0; r < 3; r++) {
            a[r] = Ta[r * 3 + 0] * pa[2 * i] + Ta[r * 3 + 1] * pa[2 * i + 1] + Ta[r * 3 + 2];
            b[r] = Tb[r * 3 + 0] * pb[2 * i] + Tb[r * 3 + 1] * pb[2 * i + 1] + Tb[r * 3 + 2];
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) M[(size_t)i * 9 + r * 3 + c] = a[r] * b[c];
    }
    double S[9], V[81];
    mvg_svd_jacobi(M, rows, 9, S, V);
    free(M);
    int i0 = 0;
    for (int j = 1; j < 9; j++)
        if (S[j] < S[i0]) i0 = j;
    int i1 = -1;
    double smax = 0.0;
    for (int j = 0; j < 9; j++) {
        if (S[j] > smax) smax = S[j];
        if (j != i0 && (i1 < 0 || S[j] < S[i1])) i1 = j;
    }
    /* A second (near) null vector means the points do not pin F down. */
    if (!(S[i1] > 1e-10 * smax))
        return mv_error("eight-point: degenerate configuration of %d correspondences (F is not unique)", n);
    double F[9];
    for (int k = 0; k < 9; k++) F[k] = V[k * 9 + i0];
    enforce_rank2(F);
    /* undo the normalisation: a'^T F b' = a^T (Ta^T F Tb) b */
    double Tat[9];
    mat3_transpose(Ta, Tat);
    mat3_mul(Tat, F, F);
    mat3_mul(F, Tb, F);
    mvg_normalize_F(F);
    for (int k = 0; k < 9; k++)
        if (!isfinite(F[k])) return mv_error("eight-point: non-finite result from %d correspondences", n);
    memcpy(F_ab, F, sizeof F);
    return 0;
}

/* ---------------------------------------------------------------- Sampson error */

double mvg_sampson_error(const double F_ab[9], const double pa[2], const double pb[2]) {
    const double *F = F_ab;
    double Fpb[3], Ftpa[3];
    for (int r = 0; r < 3; r++) Fpb[r] = F[r * 3 + 0] * pb[0] + F[r * 3 + 1] * pb[1] + F[r * 3 + 2];
    for (int c = 0; c < 3; c++) Ftpa[c] = pa[0] * F[0 * 3 + c] + pa[1] * F[1 * 3 + c] + F[2 * 3 + c];
    double e = pa[0] * Fpb[0] + pa[1] * Fpb[1] + Fpb[2];
    double den = Fpb[0] * Fpb[0] + Fpb[1] * Fpb[1] + Ftpa[0] * Ftpa[0] + Ftpa[1] * Ftpa[1];
    if (den <= 0.0) return e == 0.0 ? 0.0 : INFINITY;
    return fabs(e) / sqrt(den);
}

/* ---------------------------------------------------------------- RANSAC */

mvg_ransac_opts mvg_ransac_opts_default(void) {
    mvg_ransac_opts o = {.threshold_px = 1.0, .max_iters = 2000, .confidence = 0.999, .seed = 1};
    return o;
}

/* Uniform in [0, n) without modulo bias. */
static int rand_below(uint64_t *s, int n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)n;
    uint64_t x;
    do x = mvt_splitmix64(s);
    while (x >= lim);
    return (int)(x % (uint64_t)n);
}

/* Inliers of F: writes flags (may be NULL), returns the count and the summed error. */
static int score_model(const double F[9], const double *pa, const double *pb, int n, double thr,
                       uint8_t *flags, double *err_sum) {
    int cnt = 0;
    double es = 0.0;
    for (int i = 0; i < n; i++) {
        double e = mvg_sampson_error(F, pa + 2 * i, pb + 2 * i);
        int in = e <= thr;
        if (flags) flags[i] = (uint8_t)in;
        if (in) {
            cnt++;
            es += e;
        }
    }
    *err_sum = es;
    return cnt;
}

/* Least-squares 8-point on the flagged points. */
static int refit(const double *pa, const double *pb, int n, const uint8_t *flags, int cnt, double *buf,
                 double F[9]) {
    double *qa = buf, *qb = buf + 2 * (size_t)cnt;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!flags[i]) continue;
        qa[2 * m] = pa[2 * i];
        qa[2 * m + 1] = pa[2 * i + 1];
        qb[2 * m] = pb[2 * i];
        qb[2 * m + 1] = pb[2 * i + 1];
        m++;
    }
    return mvg_eight_point(qa, qb, m, F);
}

int mvg_ransac(const double *pa, const double *pb, int n, const mvg_ransac_opts *o, double F_ab[9],
               uint8_t *inlier, int *n_inliers) {
    mvg_ransac_opts opt = o ? *o : mvg_ransac_opts_default();
    if (n < 8) return mv_error("RANSAC: %d correspondences, at least 8 are needed", n);
    if (!pa || !pb) return mv_error("RANSAC: no points given");
    if (!(opt.threshold_px > 0.0) || !isfinite(opt.threshold_px))
        return mv_error("RANSAC: threshold_px must be a positive number of pixels, got %g", opt.threshold_px);
    if (opt.max_iters < 1) return mv_error("RANSAC: max_iters must be >= 1, got %d", opt.max_iters);
    if (!(opt.confidence >= 0.0 && opt.confidence <= 1.0))
        return mv_error("RANSAC: confidence must be in [0, 1], got %g", opt.confidence);
    for (int i = 0; i < 2 * n; i++)
        if (!isfinite(pa[i]) || !isfinite(pb[i]))
            return mv_error("RANSAC: correspondence %d has a non-finite coordinate", i / 2);

    uint8_t *best_flags = malloc((size_t)n), *flags = malloc((size_t)n);
    double *buf = malloc(4 * (size_t)n * sizeof(double));
    if (!best_flags || !flags || !buf) {
        free(best_flags);
        free(flags);
        free(buf);
        return mv_error("RANSAC: out of memory for %d correspondences", n);
    }
    uint64_t rng = opt.seed;
    double best_F[9] = {0}, best_err = INFINITY;
    int best_cnt = -1;
    long needed = opt.max_iters;
    for (long it = 0; it < needed; it++) {
        int idx[8];
        for (int s = 0; s < 8; s++) {
            int dup;
            do {
                idx[s] = rand_below(&rng, n);
                dup = 0;
                for (int u = 0; u < s; u++) dup |= idx[u] == idx[s];
            } while (dup);
        }
        double sa[16], sb[16], F[9];
        for (int s = 0; s < 8; s++) {
            sa[2 * s] = pa[2 * idx[s]];
            sa[2 * s + 1] = pa[2 * idx[s] + 1];
            sb[2 * s] = pb[2 * idx[s]];
            sb[2 * s + 1] = pb[2 * idx[s] + 1];
        }
        if (mvg_eight_point(sa, sb, 8, F)) continue; /* degenerate sample: draw again */
        double es;
        int cnt = score_model(F, pa, pb, n, opt.threshold_px, NULL, &es);
        if (cnt > best_cnt || (cnt == best_cnt && es < best_err)) {
            best_cnt = cnt;
            best_err = es;
            memcpy(best_F, F, sizeof F);
            /* adaptive stop: samples needed so that P(>= 1 all-inlier sample) >= confidence */
            double w = (double)cnt / n, pw = pow(w, 8);
            long k;
            if (pw >= 1.0) k = it + 1;
            else if (pw <= 0.0 || opt.confidence >= 1.0) k = opt.max_iters;
            else {
                double kk = ceil(log(1.0 - opt.confidence) / log(1.0 - pw));
                k = kk < (double)opt.max_iters ? (long)kk : opt.max_iters;
            }
            if (k < it + 1) k = it + 1;
            needed = k;
        }
    }
    mv_error_clear();
    if (best_cnt < 8) {
        free(best_flags);
        free(flags);
        free(buf);
        return mv_error("RANSAC: no model with >= 8 inliers among %d correspondences (threshold %g px)", n,
                        opt.threshold_px);
    }
    double es;
    best_cnt = score_model(best_F, pa, pb, n, opt.threshold_px, best_flags, &es);
    /* Refit on the inliers until the inlier set stops changing. */
    for (int r = 0; r < 10; r++) {
        double F[9];
        if (refit(pa, pb, n, best_flags, best_cnt, buf, F)) {
            mv_error_clear();
            break;
        }
        int cnt = score_model(F, pa, pb, n, opt.threshold_px, flags, &es);
        if (cnt < 8) break;
        int same = cnt == best_cnt && memcmp(flags, best_flags, (size_t)n) == 0;
        memcpy(best_F, F, sizeof F);
        memcpy(best_flags, flags, (size_t)n);
        best_cnt = cnt;
        if (same) break;
    }
    memcpy(F_ab, best_F, sizeof best_F);
    if (inlier) memcpy(inlier, best_flags, (size_t)n);
    if (n_inliers) *n_inliers = best_cnt;
    free(best_flags);
    free(flags);
    free(buf);
    return 0;
}
