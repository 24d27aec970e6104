/* check_epipolar: fundamental matrices, distances/masks, 8-point, RANSAC,
 * support masks (against method/epipolar.h5 and method/eam.h5), calibration
 * JSON round trip and error messages, calibration from correspondences, and
 * the epilines picture. Fixture-free tests use a synthetic rig. */
#include <check.h>
#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epilines.h"
#include "mvead/geometry/epipolar.h"
#include "tensor/error.h"
#include "tests/fixtures.h"

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 12345;
static double urand(void) { /* [0, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2.0 * log(1.0 - urand())) * cos(6.283185307179586 * urand()); }

/* max |F - G| over both signs. */
static double f_diff(const double *F, const double *G) {
    double dp = 0, dm = 0;
    for (int i = 0; i < 9; i++) {
        dp = fmax(dp, fabs(F[i] - G[i]));
        dm = fmax(dm, fabs(F[i] + G[i]));
    }
    return fmin(dp, dm);
}

/* Mean distance of pb[i] to the line of pa[i] under F (exact points: small when F is right). */
static double mean_line_distance(const double *F, const double *pa, const double *pb, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        double l[3];
        mvg_epipolar_line(F, pa[2 * i], pa[2 * i + 1], l);
        s += mvg_point_line_distance(l, pb[2 * i], pb[2 * i + 1]);
    }
    return s / n;
}

/* V cameras on an arc looking at the origin from ~3 units: K (f = 0.9 W), R rows = camera axes. */
static void make_rig(int V, int W, int H, double *K, double *R, double *t) {
    for (int v = 0; v < V; v++) {
        double th = -0.6 + 1.2 * v / (V > 1 ? V - 1 : 1);
        double C[3] = {3.0 * sin(th), -0.8 + 0.35 * v, -3.0 * cos(th)};
        double z[3] = {-C[0], -C[1], -C[2]}, nz = sqrt(z[0] * z[0] + z[1] * z[1] + z[2] * z[2]);
        for (int i = 0; i < 3; i++) z[i] /= nz;
        double up[3] = {0.05 * v, 1.0, 0.0};
        double x[3] = {z[1] * up[2] - z[2] * up[1], z[2] * up[0] - z[0] * up[2], z[0] * up[1] - z[1] * up[0]};
        double nx = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
        for (int i = 0; i < 3; i++) x[i] /= nx;
        double y[3] = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]};
        double *Rv = R + 9 * v, *Kv = K + 9 * v;
        for (int i = 0; i < 3; i++) {
            Rv[i] = x[i];
            Rv[3 + i] = y[i];
            Rv[6 + i] = z[i];
        }
        for (int r = 0; r < 3; r++) t[3 * v + r] = -(Rv[3 * r] * C[0] + Rv[3 * r + 1] * C[1] + Rv[3 * r + 2] * C[2]);
        double f = 0.9 * W + 10 * v;
        double Kt[9] = {f, 0.3 * v, W / 2.0 + 3 * v, 0, f * 1.02, H / 2.0 - 2 * v, 0, 0, 1};
        memcpy(Kv, Kt, sizeof Kt);
    }
}

static void project(const double *K, const double *R, const double *t, const double X[3], double p[2]) {
    double c[3], q[3];
    for (int r = 0; r < 3; r++) c[r] = R[3 * r] * X[0] + R[3 * r + 1] * X[1] + R[3 * r + 2] * X[2] + t[r];
    for (int r = 0; r < 3; r++) q[r] = K[3 * r] * c[0] + K[3 * r + 1] * c[1] + K[3 * r + 2] * c[2];
    p[0] = q[0] / q[2];
    p[1] = q[1] / q[2];
}

static char tmpdir[256];
/* Path in a per-process temporary directory; a ring of buffers so a few can be held at once. */
static const char *tmp_path(const char *name) {
    static char ring[8][512];
    static int next;
    char *buf = ring[next++ % 8];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/check_epipolar.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    }
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

/* Removes the temporary directory (run after each test in its own process). */
static void tmp_cleanup(void) {
    if (!tmpdir[0]) return;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[800];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

/* ---------------------------------------------------------------- basics */

START_TEST(test_svd_and_inverse) {
    double A[5 * 4], A0[5 * 4], S[4], V[16];
    for (int i = 0; i < 20; i++) A0[i] = A[i] = nrand();
    mvg_svd_jacobi(A, 5, 4, S, V);
    /* A0 = (U S) V^T and V orthogonal */
    double worst = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += A[i * 4 + k] * V[j * 4 + k];
            worst = fmax(worst, fabs(s - A0[i * 4 + j]));
        }
    ck_assert_double_le(worst, 1e-12);
    for (int p = 0; p < 4; p++)
        for (int q = 0; q < 4; q++) {
            double s = 0, u = 0;
            for (int k = 0; k < 4; k++) s += V[k * 4 + p] * V[k * 4 + q];
            for (int k = 0; k < 5; k++) u += A[k * 4 + p] * A[k * 4 + q];
            ck_assert_double_le(fabs(s - (p == q)), 1e-12);
            if (p != q) ck_assert_double_le(fabs(u), 1e-12 * (1 + S[p] * S[q]));
        }
    double M[9] = {2, 1, 0, 0, 3, 1, 1, 0, 4}, Mi[9];
    ck_assert_int_eq(mvg_inv3(M, Mi), 0);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += M[r * 3 + k] * Mi[k * 3 + c];
            ck_assert_double_le(fabs(s - (r == c)), 1e-14);
        }
    double Z[9] = {1, 2, 3, 2, 4, 6, 0, 0, 1};
    ck_assert_int_eq(mvg_inv3(Z, Mi), -1);
}
END_TEST

START_TEST(test_patch_centre_and_normalize) {
    double x, y;
    mvg_patch_centre(0, 16, 14, &x, &y);
    ck_assert_double_eq(x, 7.0);
    ck_assert_double_eq(y, 7.0);
    mvg_patch_centre(17, 16, 14, &x, &y); /* row 1, column 1 */
    ck_assert_double_eq(x, 21.0);
    ck_assert_double_eq(y, 21.0);
    mvg_patch_centre(5, 4, 10, &x, &y); /* row 1, column 1 of a 4-wide grid */
    ck_assert_double_eq(x, 15.0);
    ck_assert_double_eq(y, 15.0);
    double F[9] = {1, 2, 3, 4, 5, 6, 7, 8, -9};
    mvg_normalize_F(F);
    double s = 0;
    for (int i = 0; i < 9; i++) s += F[i] * F[i];
    ck_assert_double_le(fabs(s - 1), 1e-15);
    ck_assert_double_gt(F[8], 0);
    ck_assert_double_lt(F[0], 0);
    /* the epipole rule: a zero line makes every patch valid */
    double Fz[9] = {0};
    uint8_t m[4 * 4];
    double d[4 * 4];
    mvg_epipolar_mask(Fz, 2, 2, 14, 1.0, m);
    mvg_epipolar_distances(Fz, 2, 2, 14, d);
    for (int i = 0; i < 16; i++) {
        ck_assert_int_eq(m[i], 1);
        ck_assert_double_eq(d[i], 0.0);
    }
}
END_TEST

/* Synthetic rig: F from cameras satisfies the constraint on projections; rescaling F equals
 * F from rescaled intrinsics; F_ba = F_ab^T. */
START_TEST(test_synthetic_constraint_and_rescale) {
    const int V = 3, W = 320, H = 240;
    double K[27], R[27], t[9];
    make_rig(V, W, H, K, R, t);
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++) {
            if (a == b) continue;
            double F[9], Fba[9];
            mvg_fundamental_from_cameras(K + 9 * a, R + 9 * a, t + 3 * a, K + 9 * b, R + 9 * b, t + 3 * b, F);
            mvg_fundamental_from_cameras(K + 9 * b, R + 9 * b, t + 3 * b, K + 9 * a, R + 9 * a, t + 3 * a, Fba);
            double Ft[9];
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) Ft[c * 3 + r] = F[r * 3 + c];
            ck_assert_double_le(f_diff(Ft, Fba), 1e-12);
            for (int i = 0; i < 20; i++) {
                double X[3] = {urand() - 0.5, urand() - 0.5, urand() - 0.5}, pa[2], pb[2];
                project(K + 9 * a, R + 9 * a, t + 3 * a, X, pa);
                project(K + 9 * b, R + 9 * b, t + 3 * b, X, pb);
                ck_assert_double_le(mvg_sampson_error(F, pa, pb), 1e-9);
                double l[3];
                mvg_epipolar_line(F, pa[0], pa[1], l);
                ck_assert_double_le(mvg_point_line_distance(l, pb[0], pb[1]), 1e-9);
            }
            /* resize view a by (0.5, 0.75), view b by (0.7, 0.7): same as scaling K rows */
            double Ka[9], Kb[9], G[9];
            memcpy(Ka, K + 9 * a, sizeof Ka);
            memcpy(Kb, K + 9 * b, sizeof Kb);
            for (int c = 0; c < 3; c++) {
                Ka[c] *= 0.5;
                Ka[3 + c] *= 0.75;
                Kb[c] *= 0.7;
                Kb[3 + c] *= 0.7;
            }
            mvg_fundamental_from_cameras(Ka, R + 9 * a, t + 3 * a, Kb, R + 9 * b, t + 3 * b, G);
            mvg_rescale_F(F, 0.5, 0.75, 0.7, 0.7);
            ck_assert_double_le(f_diff(F, G), 1e-12);
        }
}
END_TEST

/* ---------------------------------------------------------------- epipolar.h5 */

/* Opens epipolar.h5 and lists its case groups; returns -1 (skip) when missing. */
static hid_t open_cases(const char *rel, char ***names, int *n) {
    hid_t f = fx_open(rel);
    if (f < 0) return -1;
    *n = fx_list(f, "/", names);
    ck_assert_int_gt(*n, 0);
    return f;
}

START_TEST(test_fixture_F_dist_mask) {
    char **names;
    int ncase;
    hid_t f = open_cases("method/epipolar.h5", &names, &ncase);
    if (f < 0) return;
    for (int ci = 0; ci < ncase; ci++) {
        const char *g = names[ci];
        char p[256];
        int nd;
        int64_t sK[8], sR[8], st[8], sF[8], sD[8], sM[8];
        const int H = (int)fx_attr_f64(f, g, "H"), W = (int)fx_attr_f64(f, g, "W"), P = (int)fx_attr_f64(f, g, "P");
        const double delta = fx_attr_f64(f, g, "delta");
        snprintf(p, sizeof p, "%s/K", g);
        double *K = fx_read(f, p, &nd, sK);
        snprintf(p, sizeof p, "%s/R", g);
        double *R = fx_read(f, p, &nd, sR);
        snprintf(p, sizeof p, "%s/t", g);
        double *t = fx_read(f, p, &nd, st);
        snprintf(p, sizeof p, "%s/F", g);
        double *Fref = fx_read(f, p, &nd, sF);
        snprintf(p, sizeof p, "%s/dist", g);
        double *Dref = fx_read(f, p, &nd, sD);
        snprintf(p, sizeof p, "%s/mask", g);
        double *Mref = fx_read(f, p, &nd, sM);
        ck_assert(K && R && t && Fref && Dref && Mref);
        const int V = (int)sK[0], h = H / P, w = W / P, N = h * w;
        ck_assert_int_eq((int)sD[2], N);
        ck_assert_int_eq((int)sD[0], V);
        double *d = malloc(sizeof(double) * N * N);
        uint8_t *m = malloc((size_t)N * N);
        double thr = delta * P;
        for (int a = 0; a < V; a++)
            for (int b = 0; b < V; b++) {
                if (a == b) continue;
                double F[9];
                mvg_fundamental_from_cameras(K + 9 * a, R + 9 * a, t + 3 * a, K + 9 * b, R + 9 * b, t + 3 * b, F);
                const double *Fr = Fref + (a * V + b) * 9;
                if (f_diff(F, Fr) > 1e-9) {
                    fx_compare("F_ab", F, Fr, 9, 0, 1e-9, 1);
                    ck_abort_msg("%s: F[%d][%d] differs from the fixture by %g", g, a, b, f_diff(F, Fr));
                }
                mvg_epipolar_distances(F, h, w, P, d);
                snprintf(p, sizeof p, "%s dist[%d][%d]", g, a, b);
                ck_assert_msg(fx_compare(p, d, Dref + (size_t)(a * V + b) * N * N, (int64_t)N * N, 1e-9, 1e-8, 1),
                              "%s", p);
                mvg_epipolar_mask(F, h, w, P, delta, m);
                long bad = 0, ones = 0;
                for (long i = 0; i < (long)N * N; i++) {
                    double dr = Dref[(size_t)(a * V + b) * N * N + i];
                    ones += m[i];
                    if (fabs(dr - thr) <= 1e-4) continue; /* on the threshold: either answer is fine */
                    bad += m[i] != (uint8_t)Mref[(size_t)(a * V + b) * N * N + i];
                    bad += m[i] != (d[i] <= thr);
                }
                ck_assert_msg(bad == 0, "%s mask[%d][%d]: %ld entries differ", g, a, b, bad);
                ck_assert_msg(ones > 0 && ones < (long)N * N, "%s mask[%d][%d] is trivial", g, a, b);
            }
        free(d);
        free(m);
        free(K);
        free(R);
        free(t);
        free(Fref);
        free(Dref);
        free(Mref);
    }
    fx_free_list(names, ncase);
    fx_close(f);
}
END_TEST

static double *read_pts(hid_t f, const char *g, const char *name, int *n) {
    char p[256];
    int nd;
    int64_t s[8];
    snprintf(p, sizeof p, "%s/%s", g, name);
    double *x = fx_read(f, p, &nd, s);
    ck_assert_msg(x != NULL, "missing %s", p);
    ck_assert_int_eq((int)s[1], 2);
    *n = (int)s[0];
    return x;
}

/* F01 from the fixture's cameras (the truth for the correspondences). */
static void fixture_F01(hid_t f, const char *g, double F[9]) {
    char p[256];
    int nd;
    int64_t s[8];
    snprintf(p, sizeof p, "%s/F", g);
    double *Fa = fx_read(f, p, &nd, s);
    ck_assert_ptr_nonnull(Fa);
    const int V = (int)s[0];
    memcpy(F, Fa + (0 * V + 1) * 9, 9 * sizeof(double));
    free(Fa);
}

START_TEST(test_fixture_eight_point) {
    char **names;
    int ncase;
    hid_t f = open_cases("method/epipolar.h5", &names, &ncase);
    if (f < 0) return;
    for (int ci = 0; ci < ncase; ci++) {
        const char *g = names[ci];
        int n, n2;
        double Ftrue[9], F[9];
        fixture_F01(f, g, Ftrue);
        double *pa = read_pts(f, g, "pts_view0", &n), *pb = read_pts(f, g, "pts_view1", &n2);
        double *qa = read_pts(f, g, "pts_view0_noisy", &n), *qb = read_pts(f, g, "pts_view1_noisy", &n2);
        ck_assert_int_eq(n, n2);
        /* exact correspondences: the true F */
        ck_assert_int_eq(mvg_eight_point(pa, pb, n, F), 0);
        ck_assert_msg(f_diff(F, Ftrue) < 1e-6, "%s: 8-point on exact points off by %g", g, f_diff(F, Ftrue));
        /* noisy: close to the truth in pixels, and equal to the reference implementation */
        ck_assert_int_eq(mvg_eight_point(qa, qb, n, F), 0);
        double md = mean_line_distance(F, pa, pb, n);
        ck_assert_msg(md < 1.0, "%s: noisy 8-point mean epipolar distance %g px", g, md);
        char p[256];
        snprintf(p, sizeof p, "%s/F01_eight_point_noisy", g);
        if (fx_has(f, p)) {
            int nd;
            int64_t s[8];
            double *Fe = fx_read(f, p, &nd, s);
            ck_assert_msg(f_diff(F, Fe) < 1e-8, "%s: 8-point differs from the reference by %g", g, f_diff(F, Fe));
            free(Fe);
        }
        /* rank 2 */
        double det = F[0] * (F[4] * F[8] - F[5] * F[7]) - F[1] * (F[3] * F[8] - F[5] * F[6]) +
                     F[2] * (F[3] * F[7] - F[4] * F[6]);
        ck_assert_double_le(fabs(det), 1e-12);
        free(pa);
        free(pb);
        free(qa);
        free(qb);
    }
    fx_free_list(names, ncase);
    fx_close(f);
}
END_TEST

START_TEST(test_fixture_ransac_outliers) {
    char **names;
    int ncase;
    hid_t f = open_cases("method/epipolar.h5", &names, &ncase);
    if (f < 0) return;
    for (int ci = 0; ci < ncase; ci++) {
        const char *g = names[ci];
        int n, n2, nd;
        int64_t s[8];
        double Ftrue[9], F[9];
        fixture_F01(f, g, Ftrue);
        double *pa = read_pts(f, g, "pts_view0", &n), *pb = read_pts(f, g, "pts_view1", &n2);
        double *oa = read_pts(f, g, "pts_view0_outliers", &n), *ob = read_pts(f, g, "pts_view1_outliers", &n2);
        char p[256];
        snprintf(p, sizeof p, "%s/outlier_index", g);
        int64_t *oi = fx_read_i64(f, p, &nd, s);
        ck_assert_ptr_nonnull(oi);
        const int nout = (int)s[0];
        uint8_t *is_out = calloc(n, 1), *inl = malloc(n);
        for (int i = 0; i < nout; i++) is_out[oi[i]] = 1;
        mvg_ransac_opts o = mvg_ransac_opts_default();
        o.threshold_px = 1.0;
        o.seed = 7;
        int ninl = -1;
        ck_assert_msg(mvg_ransac(oa, ob, n, &o, F, inl, &ninl) == 0, "%s: %s", g, mv_error_last());
        int cnt = 0, missed = 0, false_out = 0;
        for (int i = 0; i < n; i++) {
            cnt += inl[i];
            if (is_out[i] && inl[i]) {
                /* an outlier may land on its epipolar line by chance: only then may it pass */
                if (mvg_sampson_error(Ftrue, oa + 2 * i, ob + 2 * i) > o.threshold_px) missed++;
            }
            if (!is_out[i] && !inl[i]) false_out++;
        }
        ck_assert_int_eq(cnt, ninl);
        ck_assert_msg(missed == 0, "%s: %d real outliers taken as inliers", g, missed);
        ck_assert_msg(false_out <= 1, "%s: %d inliers rejected", g, false_out);
        double md = mean_line_distance(F, pa, pb, n);
        ck_assert_msg(md < 1.0, "%s: RANSAC F mean epipolar distance %g px", g, md);
        free(is_out);
        free(inl);
        free(oi);
        free(pa);
        free(pb);
        free(oa);
        free(ob);
    }
    fx_free_list(names, ncase);
    fx_close(f);
}
END_TEST

/* ---------------------------------------------------------------- eam.h5 support masks */

START_TEST(test_fixture_support_mask) {
    char **names;
    int ncase, checked = 0;
    hid_t f = open_cases("method/eam.h5", &names, &ncase);
    if (f < 0) return;
    for (int ci = 0; ci < ncase; ci++) {
        const char *g = names[ci];
        if (strstr(g, "emptyrows")) continue; /* mask overridden by hand there */
        const int V = (int)fx_attr_f64(f, g, "V"), H = (int)fx_attr_f64(f, g, "H"), W = (int)fx_attr_f64(f, g, "W");
        const int P = (int)fx_attr_f64(f, g, "P");
        const double delta = fx_attr_f64(f, g, "delta");
        const int h = H / P, w = W / P, N = h * w;
        char p[256];
        int nd;
        int64_t s[8];
        snprintf(p, sizeof p, "%s/F", g);
        double *F = fx_read(f, p, &nd, s);
        snprintf(p, sizeof p, "%s/support_mask", g);
        double *Mref = fx_read(f, p, &nd, s);
        ck_assert(F && Mref);
        ck_assert_int_eq((int)s[0], V);
        ck_assert_int_eq((int)s[1], N);
        ck_assert_int_eq((int)s[2], (V - 1) * N);
        uint8_t *m = malloc((size_t)V * N * (V - 1) * N);
        double *d = malloc(sizeof(double) * N * N);
        mvg_support_mask(F, V, h, w, P, delta, m);
        long bad = 0;
        for (int a = 0; a < V; a++) {
            int si = 0;
            for (int b = 0; b < V; b++) {
                if (b == a) continue;
                mvg_epipolar_distances(F + (a * V + b) * 9, h, w, P, d);
                for (int j = 0; j < N; j++)
                    for (int k = 0; k < N; k++) {
                        size_t idx = ((size_t)a * N + j) * (V - 1) * N + (size_t)si * N + k;
                        if (fabs(d[j * N + k] - delta * P) <= 1e-4) continue;
                        bad += m[idx] != (uint8_t)Mref[idx];
                    }
                si++;
            }
        }
        ck_assert_msg(bad == 0, "%s: %ld support-mask entries differ", g, bad);
        checked++;
        free(m);
        free(d);
        free(F);
        free(Mref);
    }
    ck_assert_int_gt(checked, 0);
    fx_free_list(names, ncase);
    fx_close(f);
}
END_TEST

/* ---------------------------------------------------------------- errors, determinism */

START_TEST(test_degenerate_inputs) {
    double pa[32], pb[32], F[9];
    for (int i = 0; i < 32; i++) {
        pa[i] = 100 * urand();
        pb[i] = 100 * urand();
    }
    mv_error_clear();
    ck_assert_int_eq(mvg_eight_point(pa, pb, 7, F), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "8"));
    ck_assert_int_eq(mvg_ransac(pa, pb, 7, NULL, F, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "8"));
    for (int i = 0; i < 16; i++) {
        pa[2 * i] = 10;
        pa[2 * i + 1] = 20;
    }
    mv_error_clear();
    ck_assert_int_eq(mvg_eight_point(pa, pb, 16, F), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "degenerate"));
    mvg_ransac_opts o = mvg_ransac_opts_default();
    o.max_iters = 50;
    ck_assert_int_eq(mvg_ransac(pa, pb, 16, &o, F, NULL, NULL), -1);
    /* all points on one line in both views: the linear system has many solutions */
    for (int i = 0; i < 16; i++) {
        pa[2 * i] = i;
        pa[2 * i + 1] = 2 * i;
        pb[2 * i] = 3 * i;
        pb[2 * i + 1] = i;
    }
    ck_assert_int_eq(mvg_eight_point(pa, pb, 16, F), -1);
    pa[3] = NAN;
    ck_assert_int_eq(mvg_eight_point(pa, pb, 16, F), -1);
    o.threshold_px = -1;
    ck_assert_int_eq(mvg_ransac(pa, pb, 16, &o, F, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "threshold"));
}
END_TEST

/* Synthetic correspondences between views a and b of a rig: n points, noise sigma, every
 * outlier_every-th point in b replaced by a random point (flags in is_out). */
static void synth_corr(const double *K, const double *R, const double *t, int a, int b, int W, int H, int n,
                       double sigma, int outlier_every, double *pa, double *pb, double *xa, double *xb,
                       uint8_t *is_out) {
    for (int i = 0; i < n; i++) {
        double X[3] = {1.2 * urand() - 0.6, 1.2 * urand() - 0.6, 1.2 * urand() - 0.6};
        project(K + 9 * a, R + 9 * a, t + 3 * a, X, xa + 2 * i);
        project(K + 9 * b, R + 9 * b, t + 3 * b, X, xb + 2 * i);
        for (int k = 0; k < 2; k++) {
            pa[2 * i + k] = xa[2 * i + k] + sigma * nrand();
            pb[2 * i + k] = xb[2 * i + k] + sigma * nrand();
        }
        is_out[i] = outlier_every > 0 && i % outlier_every == 0;
        if (is_out[i]) {
            pb[2 * i] = W * urand();
            pb[2 * i + 1] = H * urand();
        }
    }
}

START_TEST(test_ransac_deterministic) {
    const int V = 2, W = 320, H = 240, n = 200;
    double K[18], R[18], t[6];
    make_rig(V, W, H, K, R, t);
    double pa[400], pb[400], xa[400], xb[400];
    uint8_t is_out[200], in1[200], in2[200];
    synth_corr(K, R, t, 0, 1, W, H, n, 0.3, 3, pa, pb, xa, xb, is_out);
    mvg_ransac_opts o = mvg_ransac_opts_default();
    o.seed = 99;
    double F1[9], F2[9];
    int c1, c2;
    ck_assert_int_eq(mvg_ransac(pa, pb, n, &o, F1, in1, &c1), 0);
    ck_assert_int_eq(mvg_ransac(pa, pb, n, &o, F2, in2, &c2), 0);
    ck_assert_int_eq(c1, c2);
    ck_assert_int_eq(memcmp(F1, F2, sizeof F1), 0);
    ck_assert_int_eq(memcmp(in1, in2, sizeof in1), 0);
    ck_assert_double_lt(mean_line_distance(F1, xa, xb, n), 0.5);
    o.seed = 100;
    ck_assert_int_eq(mvg_ransac(pa, pb, n, &o, F2, in2, &c2), 0);
    ck_assert_double_lt(mean_line_distance(F2, xa, xb, n), 0.5);
}
END_TEST

/* ---------------------------------------------------------------- calibration JSON */

static void rig_calibration(mvg_calibration *c, int V, int W, int H) {
    double K[MVG_MAX_VIEWS * 9], R[MVG_MAX_VIEWS * 9], t[MVG_MAX_VIEWS * 3];
    make_rig(V, W, H, K, R, t);
    ck_assert_int_eq(mvg_calibration_from_cameras(c, V, W, H, K, R, t), 0);
}

START_TEST(test_json_round_trip) {
    mvg_calibration c, d;
    rig_calibration(&c, 4, 640, 480);
    c.n_corr[1][2] = c.n_corr[2][1] = 57;
    c.n_inliers[1][2] = c.n_inliers[2][1] = 50;
    c.rms_px[1][2] = c.rms_px[2][1] = 0.123456789012345;
    const char *path = tmp_path("calib.json");
    ck_assert_msg(mvg_calibration_write_json(path, &c) == 0, "%s", mv_error_last());
    memset(&d, 0xab, sizeof d);
    ck_assert_msg(mvg_calibration_read_json(path, &d) == 0, "%s", mv_error_last());
    ck_assert_int_eq(d.V, 4);
    ck_assert_int_eq(d.width, 640);
    ck_assert_int_eq(d.height, 480);
    ck_assert(d.has_cameras);
    ck_assert_str_eq(d.source, "cameras");
    for (int a = 0; a < 4; a++) {
        ck_assert_int_eq(memcmp(c.K[a], d.K[a], sizeof c.K[a]), 0);
        ck_assert_int_eq(memcmp(c.R[a], d.R[a], sizeof c.R[a]), 0);
        ck_assert_int_eq(memcmp(c.t[a], d.t[a], sizeof c.t[a]), 0);
        for (int b = 0; b < 4; b++) {
            if (a == b) continue;
            ck_assert_double_le(f_diff(c.F[a][b], d.F[a][b]), 1e-15);
            ck_assert_int_eq(c.n_corr[a][b], d.n_corr[a][b]);
            ck_assert_int_eq(c.n_inliers[a][b], d.n_inliers[a][b]);
            ck_assert_double_eq(c.rms_px[a][b], d.rms_px[a][b]);
        }
    }
    /* rescaled to a network size: equal to F from cameras with scaled intrinsics */
    double Fs[4 * 4 * 9];
    mvg_calibration_F_for_size(&d, 224, 168, Fs);
    double K[4 * 9], R[4 * 9], t[4 * 3];
    make_rig(4, 640, 480, K, R, t);
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < 3; k++) {
            K[9 * v + k] *= 224.0 / 640;
            K[9 * v + 3 + k] *= 168.0 / 480;
        }
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            if (a == b) continue;
            double G[9];
            mvg_fundamental_from_cameras(K + 9 * a, R + 9 * a, t + 3 * a, K + 9 * b, R + 9 * b, t + 3 * b, G);
            ck_assert_double_le(f_diff(Fs + (a * 4 + b) * 9, G), 1e-12);
        }
    /* without cameras */
    c.has_cameras = false;
    snprintf(c.source, sizeof c.source, "hand");
    ck_assert_int_eq(mvg_calibration_write_json(path, &c), 0);
    ck_assert_int_eq(mvg_calibration_read_json(path, &d), 0);
    ck_assert(!d.has_cameras);
    ck_assert_str_eq(d.source, "hand");
    ck_assert_double_le(f_diff(c.F[3][0], d.F[3][0]), 1e-15);
    /* temp file gone */
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    ck_assert_int_ne(access(tmpname, F_OK), 0);
}
END_TEST

/* Writes the JSON object to path after edit(); expects the read to fail with `needle` in the message. */
static void expect_read_error(json_object *root, const char *name, const char *needle) {
    const char *path = tmp_path(name);
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    write_text(path, text, strlen(text));
    mvg_calibration d;
    mv_error_clear();
    ck_assert_int_eq(mvg_calibration_read_json(path, &d), -1);
    const char *msg = mv_error_last();
    ck_assert_msg(strstr(msg, needle) != NULL, "message \"%s\" lacks \"%s\"", msg, needle);
    ck_assert_msg(strstr(msg, path) != NULL, "message \"%s\" lacks the path", msg);
}

START_TEST(test_json_corrupt) {
    mvg_calibration c;
    rig_calibration(&c, 3, 320, 240);
    char good[512];
    snprintf(good, sizeof good, "%s", tmp_path("good.json"));
    ck_assert_int_eq(mvg_calibration_write_json(good, &c), 0);
    json_object *root;

    root = json_object_from_file(good);
    json_object_object_del(root, "width");
    expect_read_error(root, "nowidth.json", "'width'");
    json_object_put(root);

    root = json_object_from_file(good);
    json_object_object_add(root, "views", json_object_new_string("three"));
    expect_read_error(root, "views_type.json", "'views'");
    json_object_put(root);

    root = json_object_from_file(good);
    json_object *pairs, *p1, *cams, *cam0;
    json_object_object_get_ex(root, "pairs", &pairs);
    p1 = json_object_array_get_idx(pairs, 1);
    json_object_object_add(p1, "F", json_object_new_string("not a matrix"));
    expect_read_error(root, "F_type.json", "'pairs[1].F'");
    json_object_put(root);

    root = json_object_from_file(good);
    json_object_object_get_ex(root, "pairs", &pairs);
    p1 = json_object_array_get_idx(pairs, 2);
    json_object_object_del(p1, "n_inliers");
    expect_read_error(root, "no_ninl.json", "'pairs[2].n_inliers'");
    json_object_put(root);

    root = json_object_from_file(good);
    json_object_object_get_ex(root, "cameras", &cams);
    cam0 = json_object_array_get_idx(cams, 1);
    json_object *tt = json_object_new_array();
    json_object_array_add(tt, json_object_new_double(1.0));
    json_object_object_add(cam0, "t", tt);
    expect_read_error(root, "t_len.json", "'cameras[1].t'");
    json_object_put(root);

    root = json_object_from_file(good); /* a camera moved: F no longer agrees */
    json_object_object_get_ex(root, "cameras", &cams);
    cam0 = json_object_array_get_idx(cams, 2);
    tt = json_object_new_array();
    for (int i = 0; i < 3; i++) json_object_array_add(tt, json_object_new_double(0.5 * i + 0.1));
    json_object_object_add(cam0, "t", tt);
    expect_read_error(root, "inconsistent.json", "disagrees");
    json_object_put(root);

    root = json_object_from_file(good);
    json_object_object_get_ex(root, "pairs", &pairs);
    json_object_array_del_idx(pairs, 0, 1);
    expect_read_error(root, "missing_pair.json", "'pairs'");
    json_object_put(root);

    root = json_object_from_file(good);
    json_object_object_add(root, "format", json_object_new_string("something-else"));
    expect_read_error(root, "format.json", "'format'");
    json_object_put(root);

    /* truncated text */
    FILE *fp = fopen(good, "rb");
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    ck_assert_uint_gt(len, 100);
    char tr[512];
    snprintf(tr, sizeof tr, "%s", tmp_path("truncated.json"));
    write_text(tr, buf, len / 2);
    mvg_calibration d;
    ck_assert_int_eq(mvg_calibration_read_json(tr, &d), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), tr));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "JSON"));
    ck_assert_int_eq(mvg_calibration_read_json(tmp_path("does_not_exist.json"), &d), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "does_not_exist.json"));
}
END_TEST

/* ---------------------------------------------------------------- calibrate from correspondences */

static json_object *points_json(const double *p, int n) {
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *pt = json_object_new_array();
        json_object_array_add(pt, json_object_new_double(p[2 * i]));
        json_object_array_add(pt, json_object_new_double(p[2 * i + 1]));
        json_object_array_add(arr, pt);
    }
    return arr;
}

START_TEST(test_calibrate_from_correspondences) {
    const int V = 3, W = 640, H = 480, n = 120;
    double K[27], R[27], t[9];
    make_rig(V, W, H, K, R, t);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "views", json_object_new_int(V));
    json_object_object_add(root, "width", json_object_new_int(W));
    json_object_object_add(root, "height", json_object_new_int(H));
    json_object *pairs = json_object_new_array();
    static double pa[3][240], pb[3][240], xa[3][240], xb[3][240];
    uint8_t is_out[120];
    int pi = 0;
    const int pair_ab[3][2] = {{0, 1}, {2, 0}, {1, 2}}; /* one pair in reverse order */
    for (pi = 0; pi < 3; pi++) {
        int a = pair_ab[pi][0], b = pair_ab[pi][1];
        synth_corr(K, R, t, a, b, W, H, n, 0.3, 5, pa[pi], pb[pi], xa[pi], xb[pi], is_out);
        json_object *p = json_object_new_object();
        json_object_object_add(p, "a", json_object_new_int(a));
        json_object_object_add(p, "b", json_object_new_int(b));
        json_object_object_add(p, "points_a", points_json(pa[pi], n));
        json_object_object_add(p, "points_b", points_json(pb[pi], n));
        json_object_array_add(pairs, p);
    }
    json_object_object_add(root, "pairs", pairs);
    const char *path = tmp_path("corr.json");
    const char *text = json_object_to_json_string(root);
    write_text(path, text, strlen(text));
    mvg_calibration c;
    mvg_ransac_opts o = mvg_ransac_opts_default();
    ck_assert_msg(mvg_calibrate_from_correspondences(path, &c, &o) == 0, "%s", mv_error_last());
    ck_assert_int_eq(c.V, V);
    ck_assert_int_eq(c.width, W);
    ck_assert(!c.has_cameras);
    ck_assert_str_eq(c.source, "correspondences");
    for (pi = 0; pi < 3; pi++) {
        int a = pair_ab[pi][0], b = pair_ab[pi][1];
        ck_assert_int_eq(c.n_corr[a][b], n);
        ck_assert_int_eq(c.n_corr[b][a], n);
        ck_assert_int_ge(c.n_inliers[a][b], n - n / 5 - 3);
        ck_assert_int_le(c.n_inliers[a][b], n - n / 5 + 3);
        ck_assert_double_lt(c.rms_px[a][b], 1.0);
        ck_assert_double_lt(mean_line_distance(c.F[a][b], xa[pi], xb[pi], n), 0.5);
        ck_assert_double_lt(mean_line_distance(c.F[b][a], xb[pi], xa[pi], n), 0.5);
    }
    /* and it round-trips through the calibration file */
    const char *cpath = tmp_path("from_corr.json");
    ck_assert_int_eq(mvg_calibration_write_json(cpath, &c), 0);
    mvg_calibration d;
    ck_assert_msg(mvg_calibration_read_json(cpath, &d) == 0, "%s", mv_error_last());
    ck_assert_double_le(f_diff(c.F[2][0], d.F[2][0]), 1e-15);
    ck_assert_int_eq(d.n_inliers[0][2], c.n_inliers[0][2]);

    /* a missing pair is an error naming it */
    json_object_array_del_idx(pairs, 2, 1);
    text = json_object_to_json_string(root);
    write_text(path, text, strlen(text));
    ck_assert_int_eq(mvg_calibrate_from_correspondences(path, &c, &o), -1);
    ck_assert_msg(strstr(mv_error_last(), "(1, 2)") != NULL, "%s", mv_error_last());
    /* too few points names the key */
    json_object *p0 = json_object_array_get_idx(pairs, 0);
    json_object_object_add(p0, "points_a", points_json(pa[0], 5));
    json_object_object_add(p0, "points_b", points_json(pb[0], 5));
    text = json_object_to_json_string(root);
    write_text(path, text, strlen(text));
    ck_assert_int_eq(mvg_calibrate_from_correspondences(path, &c, &o), -1);
    ck_assert_msg(strstr(mv_error_last(), "pairs[0].points_a") != NULL, "%s", mv_error_last());
    json_object_put(root);
}
END_TEST

/* ---------------------------------------------------------------- epilines picture */

START_TEST(test_draw_epilines) {
    const int V = 3, W = 224, H = 168, P = 14;
    mvg_calibration c;
    rig_calibration(&c, V, 448, 336); /* calibrated at twice the size: exercises rescaling */
    uint8_t *img[3];
    for (int v = 0; v < V; v++) {
        img[v] = malloc((size_t)W * H * 3);
        memset(img[v], 20 + 40 * v, (size_t)W * H * 3);
    }
    const double pts[4] = {100.5, 80.5, 60.25, 40.75};
    uint8_t *canvas = NULL;
    int cw = 0, ch = 0;
    ck_assert_msg(mvg_draw_epilines(&c, (const uint8_t *const *)img, W, H, 1, pts, 2, P, 1.0, &canvas, &cw, &ch) == 0,
                  "%s", mv_error_last());
    ck_assert_int_eq(cw, V * W);
    ck_assert_int_eq(ch, H);
    /* the cross centre in view 1 has point 0's colour (palette entry 0: 230, 25, 75) */
    const uint8_t *q = canvas + ((size_t)80 * cw + W + 100) * 3;
    ck_assert_int_eq(q[0], 230);
    ck_assert_int_eq(q[1], 25);
    ck_assert_int_eq(q[2], 75);
    /* in view 0, some pixel lies on point 0's line and is drawn, and tinted pixels exist */
    double Fs[9 * 9];
    mvg_calibration_F_for_size(&c, W, H, Fs);
    double l[3];
    mvg_epipolar_line(Fs + (1 * V + 0) * 9, pts[0], pts[1], l);
    int drawn = 0, tinted = 0, untouched_far = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *r = canvas + ((size_t)y * cw + x) * 3;
            double dist = mvg_point_line_distance(l, x + 0.5, y + 0.5);
            if (dist < 0.5 && r[0] == 230 && r[1] == 25 && r[2] == 75) drawn++;
            if (r[0] != 20 || r[1] != 20 || r[2] != 20) tinted++;
            else if (dist > 3 * P) untouched_far++;
        }
    ck_assert_int_gt(drawn, 20);
    ck_assert_int_gt(tinted, drawn);
    ck_assert_int_gt(untouched_far, 0);
    free(canvas);
    ck_assert_int_eq(mvg_draw_epilines(&c, (const uint8_t *const *)img, W, H, 5, pts, 2, P, 1.0, &canvas, &cw, &ch), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "view 5"));
    for (int v = 0; v < V; v++) free(img[v]);
}
END_TEST

static Suite *epipolar_suite(void) {
    Suite *s = suite_create("epipolar");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, tmp_cleanup);
    tcase_add_test(tc, test_svd_and_inverse);
    tcase_add_test(tc, test_patch_centre_and_normalize);
    tcase_add_test(tc, test_synthetic_constraint_and_rescale);
    tcase_add_test(tc, test_fixture_F_dist_mask);
    tcase_add_test(tc, test_fixture_eight_point);
    tcase_add_test(tc, test_fixture_ransac_outliers);
    tcase_add_test(tc, test_fixture_support_mask);
    tcase_add_test(tc, test_degenerate_inputs);
    tcase_add_test(tc, test_ransac_deterministic);
    tcase_add_test(tc, test_json_round_trip);
    tcase_add_test(tc, test_json_corrupt);
    tcase_add_test(tc, test_calibrate_from_correspondences);
    tcase_add_test(tc, test_draw_epilines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(epipolar_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
