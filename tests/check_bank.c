/* check_bank: memory-bank pieces against memory_bank.h5 (coreset order,
 * Lloyd iterations, kNN patch/image/sample scores, anomaly-map pipeline) in
 * float64 and float32, kNN and coreset against naive loops on random data,
 * bitwise determinism between 1 and 2 OpenMP threads, and the pruned exact
 * coreset and k-means++ against unpruned loops bit for bit. */
#include "mvead/scoring/anomaly_map.h"
#include "mvead/scoring/coreset.h"
#include "mvead/scoring/kmeans.h"
#include "mvead/scoring/knn.h"
#include "tensor/error.h"
#include "tests/fixtures.h"
#include <check.h>
#include <math.h>
#include "tensor/tensor.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;
static double rnd(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
static double *random_f64(int64_t n, double lo, double hi) {
    double *x = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rnd();
    return x;
}
static float *to_f32(const double *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* to_f32, freeing the f64 original */
static float *to_f32_free(double *x, int64_t n) {
    float *y = to_f32(x, n);
    free(x);
    return y;
}
static double *to_f64(const float *x, int64_t n) {
    double *y = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* ---------------- fixtures ---------------- */

START_TEST(test_coreset_fixture) {
    hid_t f = fx_open("method/memory_bank.h5");
    if (f < 0) return;
    int nd;
    int64_t sx[8], ss[8];
    double *x = fx_read(f, "coreset/features", &nd, sx);
    ck_assert_int_eq(nd, 2);
    int64_t *sel_ref = fx_read_i64(f, "coreset/selected", &nd, ss);
    int64_t n = sx[0], d = sx[1], m = ss[0];
    int64_t *sel = malloc((size_t)m * sizeof(int64_t));
    /* the rule attribute says the start index; it is the first selected entry */
    ck_assert_int_eq(mvs_coreset_greedy_f64(x, n, d, m, sel_ref[0], sel, NULL), 0);
    for (int64_t i = 0; i < m; i++) ck_assert_msg(sel[i] == sel_ref[i], "f64 selected[%lld] = %lld, want %lld", (long long)i, (long long)sel[i], (long long)sel_ref[i]);
    float *x32 = to_f32(x, n * d);
    ck_assert_int_eq(mvs_coreset_greedy_f32(x32, n, d, m, sel_ref[0], sel, NULL), 0);
    for (int64_t i = 0; i < m; i++) ck_assert_msg(sel[i] == sel_ref[i], "f32 selected[%lld] = %lld, want %lld", (long long)i, (long long)sel[i], (long long)sel_ref[i]);
    free(x); free(x32); free(sel_ref); free(sel);
    fx_close(f);
}
END_TEST

START_TEST(test_kmeans_fixture) {
    hid_t f = fx_open("method/memory_bank.h5");
    if (f < 0) return;
    int nd;
    int64_t sx[8], sc[8], sa[8], si[8];
    double *x = fx_read(f, "kmeans/features", &nd, sx);
    double *c0 = fx_read(f, "kmeans/init_centers", &nd, sc);
    double *c_ref = fx_read(f, "kmeans/centers", &nd, sc);
    int64_t *a_ref = fx_read_i64(f, "kmeans/assign", &nd, sa);
    int64_t *iters = fx_read_i64(f, "kmeans/iters", &nd, si);
    int64_t n = sx[0], d = sx[1], k = sc[0];
    double *c = malloc((size_t)(k * d) * sizeof(double));
    int64_t *a = malloc((size_t)n * sizeof(int64_t));
    memcpy(c, c0, (size_t)(k * d) * sizeof(double));
    ck_assert_int_eq(mvs_kmeans_lloyd_f64(x, n, d, k, iters[0], c, a, NULL), 0);
    ck_assert(fx_compare("kmeans f64 centers", c, c_ref, k * d, 1e-9, 1e-12, 1));
    for (int64_t i = 0; i < n; i++) ck_assert_msg(a[i] == a_ref[i], "f64 assign[%lld] = %lld, want %lld", (long long)i, (long long)a[i], (long long)a_ref[i]);

    float *x32 = to_f32(x, n * d), *c32 = to_f32(c0, k * d);
    ck_assert_int_eq(mvs_kmeans_lloyd_f32(x32, n, d, k, iters[0], c32, a, NULL), 0);
    ck_assert(fx_compare_f32("kmeans f32 centers", c32, c_ref, k * d, 1e-4, 1e-5, 1));
    for (int64_t i = 0; i < n; i++) ck_assert_msg(a[i] == a_ref[i], "f32 assign[%lld] = %lld, want %lld", (long long)i, (long long)a[i], (long long)a_ref[i]);
    free(x); free(c0); free(c_ref); free(a_ref); free(iters); free(c); free(a); free(x32); free(c32);
    fx_close(f);
}
END_TEST

START_TEST(test_knn_fixture) {
    hid_t f = fx_open("method/memory_bank.h5");
    if (f < 0) return;
    int nd_b, nd_q, nd;
    int64_t sb[8], sq[8], sp[8], s1[8];
    double *bank = fx_read(f, "knn_score/bank", &nd_b, sb);
    double *q = fx_read(f, "knn_score/queries", &nd_q, sq);
    double *p_ref = fx_read(f, "knn_score/patch_scores", &nd, sp);
    double *img_ref = fx_read(f, "knn_score/image_scores", &nd, s1);
    double *smp_ref = fx_read(f, "knn_score/sample_score", &nd, s1);
    ck_assert_int_eq(nd_q, 3);
    int64_t V = sq[0], N = sq[1], D = sq[2];
    /* bank (M, D): pooled; bank (V, M, D): one per view */
    int64_t n_banks = nd_b == 3 ? sb[0] : 1, M = nd_b == 3 ? sb[1] : sb[0];
    ck_assert_int_eq(sb[nd_b - 1], D);
    const double *banks[16];
    int64_t rows[16];
    for (int64_t b = 0; b < n_banks; b++) { banks[b] = bank + b * M * D; rows[b] = M; }
    double *patch = malloc((size_t)(V * N) * sizeof(double)), *img = malloc((size_t)V * sizeof(double)), smp;
    ck_assert_int_eq(mvs_score_samples_f64(q, 1, V, N, D, banks, rows, n_banks, patch, img, &smp), 0);
    ck_assert(fx_compare("knn f64 patch", patch, p_ref, V * N, 1e-9, 0, 0));
    ck_assert(fx_compare("knn f64 image", img, img_ref, V, 1e-9, 0, 0));
    ck_assert(fx_compare("knn f64 sample", &smp, smp_ref, 1, 1e-9, 0, 0));

    float *bank32 = to_f32(bank, n_banks * M * D), *q32 = to_f32(q, V * N * D);
    float *patch32 = malloc((size_t)(V * N) * sizeof(float)), *img32 = malloc((size_t)V * sizeof(float)), smp32;
    const float *banks32[16];
    for (int64_t b = 0; b < n_banks; b++) banks32[b] = bank32 + b * M * D;
    ck_assert_int_eq(mvs_score_samples_f32(q32, 1, V, N, D, banks32, rows, n_banks, patch32, img32, &smp32), 0);
    ck_assert(fx_compare_f32("knn f32 patch", patch32, p_ref, V * N, 1e-4, 0, 0));
    ck_assert(fx_compare_f32("knn f32 image", img32, img_ref, V, 1e-4, 0, 0));
    ck_assert(fx_compare_f32("knn f32 sample", &smp32, smp_ref, 1, 1e-4, 0, 0));
    free(bank); free(q); free(p_ref); free(img_ref); free(smp_ref); free(patch); free(img);
    free(bank32); free(q32); free(patch32); free(img32);
    fx_close(f);
}
END_TEST

START_TEST(test_anomaly_map_fixture) {
    hid_t f = fx_open("method/memory_bank.h5");
    if (f < 0) return;
    int nd;
    int64_t sg[8], so[8];
    double *grid = fx_read(f, "anomaly_map/patch_grid", &nd, sg);
    double *up_ref = fx_read(f, "anomaly_map/upsampled", &nd, so);
    double *bl_ref = fx_read(f, "anomaly_map/blurred", &nd, so);
    int64_t h = sg[0], w = sg[1], H = so[0], W = so[1];
    double *up = malloc((size_t)(H * W) * sizeof(double)), *bl = malloc((size_t)(H * W) * sizeof(double));
    ck_assert_int_eq(mvs_upsample_bilinear_f64(grid, h, w, up, H, W), 0);
    ck_assert(fx_compare("upsampled f64", up, up_ref, H * W, 1e-9, 1e-12, 0));
    ck_assert_int_eq(mvs_gaussian_blur_f64(up_ref, H, W, MVS_MAP_SIGMA, MVS_MAP_TRUNCATE, bl), 0);
    ck_assert(fx_compare("blurred f64", bl, bl_ref, H * W, 1e-9, 1e-12, 0));
    ck_assert_int_eq(mvs_anomaly_maps_f64(grid, 1, h, w, H, W, MVS_MAP_SIGMA, MVS_MAP_TRUNCATE, bl), 0);
    ck_assert(fx_compare("pipeline f64", bl, bl_ref, H * W, 1e-9, 1e-12, 0));
    float *grid32 = to_f32(grid, h * w), *m32 = malloc((size_t)(H * W) * sizeof(float));
    ck_assert_int_eq(mvs_upsample_bilinear_f32(grid32, h, w, m32, H, W), 0);
    ck_assert(fx_compare_f32("upsampled f32", m32, up_ref, H * W, 1e-5, 1e-6, 1));
    ck_assert_int_eq(mvs_anomaly_maps_f32(grid32, 1, h, w, H, W, MVS_MAP_SIGMA, MVS_MAP_TRUNCATE, m32), 0);
    ck_assert(fx_compare_f32("pipeline f32", m32, bl_ref, H * W, 1e-5, 1e-6, 1));
    free(grid); free(up_ref); free(bl_ref); free(up); free(bl); free(grid32); free(m32);
    fx_close(f);
}
END_TEST

/* ---------------- naive references on random data ---------------- */

START_TEST(test_knn_vs_naive) {
    /* sizes cross the query (256) and bank (2048) block edges */
    rng_state = 99;
    int64_t nq = 1100, nb = 4500, d = 13;
    double *q = random_f64(nq * d, -1, 1), *b = random_f64(nb * d, -1, 1);
    double *dist = malloc((size_t)nq * sizeof(double));
    int64_t *idx = malloc((size_t)nq * sizeof(int64_t));
    ck_assert_int_eq(mvs_knn_f64(q, nq, b, nb, d, dist, idx), 0);
    float *q32 = to_f32(q, nq * d), *b32 = to_f32(b, nb * d);
    float *dist32 = malloc((size_t)nq * sizeof(float));
    int64_t *idx32 = malloc((size_t)nq * sizeof(int64_t));
    ck_assert_int_eq(mvs_knn_f32(q32, nq, b32, nb, d, dist32, idx32), 0);
    int64_t idx_mismatch32 = 0;
    for (int64_t i = 0; i < nq; i++) {
        double best = INFINITY;
        int64_t arg = -1;
        for (int64_t j = 0; j < nb; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++) { double t = q[i * d + k] - b[j * d + k]; s += t * t; }
            if (s < best) { best = s; arg = j; }
        }
        ck_assert_msg(fabs(dist[i] - sqrt(best)) <= 1e-12 * sqrt(best) + 1e-14, "query %lld: %.17g vs %.17g", (long long)i, dist[i], sqrt(best));
        ck_assert_msg(idx[i] == arg, "query %lld: index %lld vs %lld", (long long)i, (long long)idx[i], (long long)arg);
        ck_assert_msg(fabs(dist32[i] - sqrt(best)) <= 1e-5 * sqrt(best) + 1e-6, "f32 query %lld: %g vs %g", (long long)i, dist32[i], sqrt(best));
        idx_mismatch32 += idx32[i] != arg; /* float near-ties may pick another entry at ~equal distance */
    }
    ck_assert_int_le(idx_mismatch32, nq / 100);
    /* exact duplicates in the bank: the lowest index wins */
    memcpy(b + 7 * d, b + 3 * d, (size_t)d * sizeof(double));
    memcpy(q, b + 3 * d, (size_t)d * sizeof(double));
    ck_assert_int_eq(mvs_knn_f64(q, 1, b, nb, d, dist, idx), 0);
    ck_assert_int_eq(idx[0], 3);
    ck_assert(dist[0] == 0.0);
    /* bad input reports an error instead of crashing */
    ck_assert_int_eq(mvs_knn_f64(q, 1, b, 0, d, dist, idx), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "bank"));
    free(q); free(b); free(dist); free(idx); free(q32); free(b32); free(dist32); free(idx32);
}
END_TEST

/* kNN tiles and k-means assignment blocks are single-threaded GEMMs spread over
 * threads: 1 and 2 threads give the same bits (a threaded BLAS call would not). */
START_TEST(test_knn_kmeans_thread_count_independent) {
    rng_state = 321;
    int64_t nq = 1029, nb = 4133, d = 77, k = 7;
    float *q = to_f32_free(random_f64(nq * d, -1, 1), nq * d), *b = to_f32_free(random_f64(nb * d, -1, 1), nb * d);
    float *dist[2], *c = malloc((size_t)(k * d) * sizeof(float)), *d2[2];
    int64_t *idx[2], *as[2];
    memcpy(c, b, (size_t)(k * d) * sizeof(float));
    int saved = mvt_get_num_threads();
    for (int t = 0; t < 2; t++) {
        mvt_set_num_threads(t + 1);
        dist[t] = malloc((size_t)nq * sizeof(float));
        idx[t] = malloc((size_t)nq * sizeof(int64_t));
        d2[t] = malloc((size_t)nb * sizeof(float));
        as[t] = malloc((size_t)nb * sizeof(int64_t));
        ck_assert_int_eq(mvs_knn_f32(q, nq, b, nb, d, dist[t], idx[t]), 0);
        ck_assert_int_eq(mvs_kmeans_assign_f32(b, nb, d, c, k, as[t], d2[t]), 0);
    }
    mvt_set_num_threads(saved);
    ck_assert_msg(memcmp(dist[0], dist[1], (size_t)nq * sizeof(float)) == 0, "knn distances differ between 1 and 2 threads");
    ck_assert_msg(memcmp(idx[0], idx[1], (size_t)nq * sizeof(int64_t)) == 0, "knn indices differ between 1 and 2 threads");
    ck_assert_msg(memcmp(as[0], as[1], (size_t)nb * sizeof(int64_t)) == 0, "k-means assignment differs between 1 and 2 threads");
    ck_assert_msg(memcmp(d2[0], d2[1], (size_t)nb * sizeof(float)) == 0, "k-means distances differ between 1 and 2 threads");
    for (int t = 0; t < 2; t++) { free(dist[t]); free(idx[t]); free(d2[t]); free(as[t]); }
    free(q); free(b); free(c);
}
END_TEST

START_TEST(test_score_per_view_banks) {
    /* 2 samples x 3 views, each view its own bank of different size */
    rng_state = 5;
    int64_t S = 2, V = 3, N = 7, D = 5, rows[3] = {20, 31, 9};
    double *q = random_f64(S * V * N * D, -2, 2);
    double *bk[3];
    for (int v = 0; v < 3; v++) bk[v] = random_f64(rows[v] * D, -2, 2);
    double patch[2 * 3 * 7], img[6], smp[2];
    const double *banks[3] = {bk[0], bk[1], bk[2]};
    ck_assert_int_eq(mvs_score_samples_f64(q, S, V, N, D, banks, rows, 3, patch, img, smp), 0);
    for (int64_t s = 0; s < S; s++) {
        double sm = -1;
        for (int64_t v = 0; v < V; v++) {
            double im = -1;
            for (int64_t j = 0; j < N; j++) {
                const double *x = q + ((s * V + v) * N + j) * D;
                double best = INFINITY;
                for (int64_t r = 0; r < rows[v]; r++) {
                    double t = 0;
                    for (int64_t k = 0; k < D; k++) t += (x[k] - bk[v][r * D + k]) * (x[k] - bk[v][r * D + k]);
                    if (t < best) best = t;
                }
                ck_assert(fabs(patch[(s * V + v) * N + j] - sqrt(best)) < 1e-12);
                if (sqrt(best) > im) im = sqrt(best);
            }
            ck_assert(fabs(img[s * V + v] - im) < 1e-12);
            if (im > sm) sm = im;
        }
        ck_assert(fabs(smp[s] - sm) < 1e-12);
    }
    ck_assert_int_eq(mvs_score_samples_f64(q, S, V, N, D, banks, rows, 2, patch, img, smp), -1);
    for (int v = 0; v < 3; v++) free(bk[v]);
    free(q);
}
END_TEST

START_TEST(test_coreset_vs_naive) {
    rng_state = 2024;
    int64_t n = 700, d = 9, m = 90;
    double *x = random_f64(n * d, 0, 1);
    int64_t *sel = malloc((size_t)m * sizeof(int64_t)), ref[90];
    double *mind = malloc((size_t)n * sizeof(double));
    ck_assert_int_eq(mvs_coreset_greedy_f64(x, n, d, m, 17, sel, mind), 0);
    /* naive: recompute the distance of each point to the whole chosen set */
    ref[0] = 17;
    for (int64_t s = 1; s < m; s++) {
        double best = -1;
        for (int64_t i = 0; i < n; i++) {
            double dm = INFINITY;
            for (int64_t c = 0; c < s; c++) {
                double t = 0;
                for (int64_t k = 0; k < d; k++) t += (x[i * d + k] - x[ref[c] * d + k]) * (x[i * d + k] - x[ref[c] * d + k]);
                if (t < dm) dm = t;
            }
            if (dm > best) { best = dm; ref[s] = i; }
        }
    }
    for (int64_t s = 0; s < m; s++) ck_assert_int_eq(sel[s], ref[s]);
    for (int64_t i = 0; i < n; i++) {
        double dm = INFINITY;
        for (int64_t c = 0; c < m; c++) {
            double t = 0;
            for (int64_t k = 0; k < d; k++) t += (x[i * d + k] - x[ref[c] * d + k]) * (x[i * d + k] - x[ref[c] * d + k]);
            if (t < dm) dm = t;
        }
        ck_assert(fabs(mind[i] - sqrt(dm)) < 1e-12);
    }
    /* ties: all points equal -> first maximum = lowest index each time */
    double same[6 * 2] = {0};
    int64_t s6[3];
    ck_assert_int_eq(mvs_coreset_greedy_f64(same, 6, 2, 3, 4, s6, NULL), 0);
    ck_assert(s6[0] == 4 && s6[1] == 0 && s6[2] == 0);
    /* projection: deterministic by seed, distinct indices, proj_dim >= dim = exact */
    int64_t *p1 = malloc((size_t)m * sizeof(int64_t)), *p2 = malloc((size_t)m * sizeof(int64_t));
    ck_assert_int_eq(mvs_coreset_projected_f64(x, n, d, 4, 7, m, 0, p1), 0);
    ck_assert_int_eq(mvs_coreset_projected_f64(x, n, d, 4, 7, m, 0, p2), 0);
    ck_assert(memcmp(p1, p2, (size_t)m * sizeof(int64_t)) == 0);
    for (int64_t a = 0; a < m; a++)
        for (int64_t b = a + 1; b < m; b++) ck_assert(p1[a] != p1[b]);
    ck_assert_int_eq(mvs_coreset_projected_f64(x, n, d, d, 7, m, 17, p2), 0);
    ck_assert(memcmp(p2, ref, (size_t)m * sizeof(int64_t)) == 0);
    /* sizes and bad input */
    ck_assert_int_eq(mvs_coreset_size(1000, 0.1), 100);
    ck_assert_int_eq(mvs_coreset_size(5, 0.1), 1);
    ck_assert_int_eq(mvs_coreset_size(5, 1.5), -1);
    ck_assert_int_eq(mvs_coreset_greedy_f64(x, n, d, m, n, sel, NULL), -1);
    ck_assert_int_eq(mvs_coreset_greedy_f64(x, n, d, n + 1, 0, sel, NULL), -1);
    free(x); free(sel); free(mind); free(p1); free(p2);
}
END_TEST

START_TEST(test_kmeanspp) {
    rng_state = 31;
    int64_t n = 500, d = 6, k = 5;
    double *x = random_f64(n * d, -1, 1);
    for (int64_t i = 0; i < n; i++) x[i * d] += 10.0 * (double)(i % 5); /* 5 separated clusters */
    double *c1 = malloc((size_t)(k * d) * sizeof(double)), *c2 = malloc((size_t)(k * d) * sizeof(double));
    ck_assert_int_eq(mvs_kmeanspp_init_f64(x, n, d, k, 42, c1), 0);
    ck_assert_int_eq(mvs_kmeanspp_init_f64(x, n, d, k, 42, c2), 0);
    ck_assert(memcmp(c1, c2, (size_t)(k * d) * sizeof(double)) == 0);
    /* every centre is a data row, and D^2 sampling finds all 5 clusters */
    int seen[5] = {0};
    for (int64_t c = 0; c < k; c++) {
        int64_t row = -1;
        for (int64_t i = 0; i < n && row < 0; i++)
            if (memcmp(c1 + c * d, x + i * d, (size_t)d * sizeof(double)) == 0) row = i;
        ck_assert_int_ge(row, 0);
        seen[row % 5] = 1;
    }
    for (int c = 0; c < 5; c++) ck_assert(seen[c]);
    int64_t *a = malloc((size_t)n * sizeof(int64_t));
    ck_assert_int_eq(mvs_kmeans_f64(x, n, d, k, 20, 42, c1, a), 0);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(a[i], a[i % 5]);
    ck_assert_int_eq(mvs_kmeans_f64(x, n, d, n + 1, 20, 42, c1, a), -1);
    free(x); free(c1); free(c2); free(a);
}
END_TEST

/* ---------------- pruned builders against unpruned loops, bit for bit ---------------- */

/* ||a - b||^2 in the library's rounding order (sqdist_tmpl.h): lane k % 8 of
 * 8 double sums over the 8-aligned head, a tail sum, a fixed combination.
 * Plain C, no vector code: the library's AVX2 build must match it. */
static double ref_sqdist(const double *a, const double *b, int64_t dim) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0.0;
    int64_t k = 0;
    for (; k + 8 <= dim; k += 8)
        for (int l = 0; l < 8; l++) s[l] += (a[k + l] - b[k + l]) * (a[k + l] - b[k + l]);
    for (; k < dim; k++) tail += (a[k] - b[k]) * (a[k] - b[k]);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

/* The greedy k-center with every distance computed each pass; mind (n) the
 * squared distances to the chosen set. */
static void ref_coreset(const double *x, int64_t n, int64_t d, int64_t m, int64_t start, int64_t *sel, double *mind) {
    for (int64_t i = 0; i < n; i++) mind[i] = INFINITY;
    sel[0] = start;
    for (int64_t s = 1; s <= m; s++) {
        const double *c = x + sel[s - 1] * d;
        double best = -1.0;
        int64_t arg = 0;
        for (int64_t i = 0; i < n; i++) {
            double acc = ref_sqdist(x + i * d, c, d);
            if (acc < mind[i]) mind[i] = acc;
            if (mind[i] > best) { best = mind[i]; arg = i; }
        }
        if (s < m) sel[s] = arg;
    }
}

/* k-means++ with every distance computed after each centre (the library's
 * stream and sampling rule). */
static double ref_uniform(uint64_t *st) { return (double)(mvt_splitmix64(st) >> 11) * (1.0 / 9007199254740992.0); }
static void ref_kmeanspp(const double *x, int64_t n, int64_t d, int64_t k, uint64_t seed, double *centers) {
    double *mind = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) mind[i] = INFINITY;
    uint64_t st = seed;
    int64_t pick = (int64_t)(ref_uniform(&st) * (double)n);
    if (pick >= n) pick = n - 1;
    for (int64_t c = 0; c < k; c++) {
        if (c > 0) {
            double total = 0.0;
            for (int64_t i = 0; i < n; i++) total += mind[i];
            double u = ref_uniform(&st);
            if (!(total > 0.0)) {
                pick = (int64_t)(u * (double)n);
                if (pick >= n) pick = n - 1;
            } else {
                double r = u * total, cum = 0.0;
                int64_t last = 0;
                pick = -1;
                for (int64_t i = 0; i < n && pick < 0; i++) {
                    if (mind[i] <= 0.0) continue;
                    last = i;
                    cum += mind[i];
                    if (cum > r) pick = i;
                }
                if (pick < 0) pick = last;
            }
        }
        memcpy(centers + c * d, x + pick * d, (size_t)d * sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            double acc = ref_sqdist(x + i * d, centers + c * d, d);
            if (acc < mind[i]) mind[i] = acc;
        }
    }
    free(mind);
}

/* n points in n_clusters tight, well separated clusters (the pruning fires);
 * every 7th point a copy of an earlier one (exact duplicates: ties). Values
 * rounded to float so the f32 and f64 runs see the same numbers. */
static double *clustered_f64(int64_t n, int64_t d, int64_t n_clusters, double spread) {
    double *mu = random_f64(n_clusters * d, -10, 10);
    double *x = malloc((size_t)(n * d) * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        int64_t z = (int64_t)(rnd() * (double)n_clusters);
        for (int64_t k = 0; k < d; k++) x[i * d + k] = (double)(float)(mu[z * d + k] + spread * (rnd() - 0.5));
        if (i % 7 == 6) memcpy(x + i * d, x + (int64_t)(rnd() * (double)i) * d, (size_t)d * sizeof(double));
    }
    free(mu);
    return x;
}

/* n rows, only n_distinct of them different (row i = distinct (i * step) %
 * n_distinct, the distinct ones clustered). */
static double *repeated_rows(int64_t n, int64_t d, int64_t n_distinct, int64_t step) {
    double *base = clustered_f64(n_distinct, d, n_distinct / 2, 1.0);
    double *x = malloc((size_t)(n * d) * sizeof(double));
    for (int64_t i = 0; i < n; i++) memcpy(x + i * d, base + ((i * step) % n_distinct) * d, (size_t)d * sizeof(double));
    free(base);
    return x;
}

/* The library's coreset, f64 and f32, at 1 and 2 threads, equals ref_coreset
 * bit for bit (order and distances); returns the fewest distances computed. */
static int64_t check_coreset_exact(const double *x, int64_t n, int64_t d, int64_t m, int64_t start) {
    int64_t *ref = malloc((size_t)m * sizeof(int64_t)), *sel = malloc((size_t)m * sizeof(int64_t));
    double *rmind = malloc((size_t)n * sizeof(double)), *mind = malloc((size_t)n * sizeof(double));
    float *x32 = to_f32(x, n * d), *mind32 = malloc((size_t)n * sizeof(float));
    ref_coreset(x, n, d, m, start, ref, rmind);
    int64_t fewest = INT64_MAX;
    int saved = mvt_get_num_threads();
    for (int threads = 1; threads <= 2; threads++) {
        mvt_set_num_threads(threads);
        int64_t nd = -1;
        ck_assert_int_eq(mvs_coreset_greedy_stats_f64(x, n, d, m, start, sel, mind, &nd), 0);
        for (int64_t s = 0; s < m; s++)
            ck_assert_msg(sel[s] == ref[s], "f64 %d threads: selected[%lld] = %lld, want %lld", threads, (long long)s,
                          (long long)sel[s], (long long)ref[s]);
        for (int64_t i = 0; i < n; i++) {
            double want = sqrt(rmind[i]);
            ck_assert_msg(memcmp(&mind[i], &want, sizeof want) == 0, "f64 %d threads: min_dist[%lld] = %.17g, want %.17g",
                          threads, (long long)i, mind[i], want);
        }
        if (nd < fewest) fewest = nd;
        ck_assert_int_eq(mvs_coreset_greedy_stats_f32(x32, n, d, m, start, sel, mind32, &nd), 0);
        for (int64_t s = 0; s < m; s++)
            ck_assert_msg(sel[s] == ref[s], "f32 %d threads: selected[%lld] = %lld, want %lld", threads, (long long)s,
                          (long long)sel[s], (long long)ref[s]);
        for (int64_t i = 0; i < n; i++) {
            float want = (float)sqrt(rmind[i]);
            ck_assert_msg(memcmp(&mind32[i], &want, sizeof want) == 0, "f32 %d threads: min_dist[%lld] = %.9g, want %.9g",
                          threads, (long long)i, mind32[i], want);
        }
        if (nd < fewest) fewest = nd;
    }
    mvt_set_num_threads(saved);
    free(ref); free(sel); free(rmind); free(mind); free(x32); free(mind32);
    return fewest;
}

START_TEST(test_coreset_pruned_exact) {
    rng_state = 77;
    /* 5003 x 29: n not a multiple of 2, dim with a tail of 5, n * dim above
     * the one-thread threshold so 2 threads really split the passes */
    int64_t n = 5003, d = 29, m = 400;
    double *x = clustered_f64(n, d, 12, 1.0);
    int64_t nd = check_coreset_exact(x, n, d, m, 11);
    ck_assert_msg(nd < n * m / 4, "pruning should skip most rows: %lld of %lld distances", (long long)nd,
                  (long long)(n * m));
    free(x);
    /* fewer distinct points (40) than selections (90): the tail repeats
     * chosen points at distance 0, ties everywhere */
    rng_state = 78;
    n = 4801; d = 32; m = 90;
    x = repeated_rows(n, d, 40, 17);
    nd = check_coreset_exact(x, n, d, m, n - 1);
    ck_assert_int_lt(nd, n * m / 4);
    free(x);
    /* iid data (little to prune): still the same bits */
    rng_state = 79;
    n = 2501; d = 61; m = 150;
    x = random_f64(n * d, -1, 1);
    for (int64_t i = 0; i < n * d; i++) x[i] = (double)(float)x[i];
    check_coreset_exact(x, n, d, m, 0);
    free(x);
}
END_TEST

static void check_kmeanspp_exact(const double *x, int64_t n, int64_t d, int64_t k, uint64_t seed, int64_t max_nd) {
    double *ref = malloc((size_t)(k * d) * sizeof(double)), *c = malloc((size_t)(k * d) * sizeof(double));
    float *x32 = to_f32(x, n * d), *c32 = malloc((size_t)(k * d) * sizeof(float));
    ref_kmeanspp(x, n, d, k, seed, ref);
    float *ref32 = to_f32(ref, k * d);
    int saved = mvt_get_num_threads();
    for (int threads = 1; threads <= 2; threads++) {
        mvt_set_num_threads(threads);
        int64_t nd = -1, nd32 = -1;
        ck_assert_int_eq(mvs_kmeanspp_init_stats_f64(x, n, d, k, seed, c, &nd), 0);
        ck_assert_msg(memcmp(c, ref, (size_t)(k * d) * sizeof(double)) == 0, "f64 centres differ (%d threads)", threads);
        ck_assert_int_eq(mvs_kmeanspp_init_stats_f32(x32, n, d, k, seed, c32, &nd32), 0);
        ck_assert_msg(memcmp(c32, ref32, (size_t)(k * d) * sizeof(float)) == 0, "f32 centres differ (%d threads)", threads);
        ck_assert_msg(nd <= max_nd && nd32 <= max_nd, "pruning should skip rows: %lld / %lld distances, at most %lld",
                      (long long)nd, (long long)nd32, (long long)max_nd);
    }
    mvt_set_num_threads(saved);
    free(ref); free(c); free(x32); free(c32); free(ref32);
}

START_TEST(test_kmeanspp_pruned_exact) {
    rng_state = 91;
    int64_t n = 6007, d = 27, k = 40;
    double *x = clustered_f64(n, d, 10, 1.0);
    for (uint64_t seed = 1; seed <= 3; seed++) check_kmeanspp_exact(x, n, d, k, seed, n * (k - 1) / 3);
    free(x);
    /* only 6 distinct points for 12 centres: D^2 runs out of mass (total 0) */
    rng_state = 92;
    n = 5000; d = 30; k = 12;
    x = repeated_rows(n, d, 6, 5);
    check_kmeanspp_exact(x, n, d, k, 5, n * (k - 1) / 2);
    free(x);
    /* iid: the same bits, whatever is pruned */
    rng_state = 93;
    n = 3001; d = 45; k = 15;
    x = random_f64(n * d, -1, 1);
    check_kmeanspp_exact(x, n, d, k, 8, n * (k - 1) + k * k);
    free(x);
}
END_TEST

/* ---------------- determinism: 1 vs 2 threads, bitwise ---------------- */

/* Sizes: n * d above the libraries' one-thread thresholds (2^17), so the
 * 2-thread runs really split the work. */
#define DET_M 120
typedef struct {
    int64_t sel[DET_M], sel_proj[DET_M];
    float mind[5000];
    float centers[12 * 40];
    int64_t assign[5000];
    float dist[1500];
    int64_t idx[1500];
    double map[2 * 60 * 70];
} run_out;

static void run_all(run_out *o, const float *x, int64_t n, int64_t d, const float *q, int64_t nq, const double *grids) {
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(mvs_coreset_greedy_f32(x, n, d, DET_M, 3, o->sel, o->mind), 0);
    ck_assert_int_eq(mvs_coreset_projected_f32(x, n, d, 8, 1, DET_M, 3, o->sel_proj), 0);
    ck_assert_int_eq(mvs_kmeans_f32(x, n, d, 12, 15, 9, o->centers, o->assign), 0);
    ck_assert_int_eq(mvs_knn_f32(q, nq, x, n, d, o->dist, o->idx), 0);
    ck_assert_int_eq(mvs_anomaly_maps_f64(grids, 2, 6, 7, 60, 70, 4.0, 4.0, o->map), 0);
}

START_TEST(test_thread_determinism) {
    rng_state = 8;
    int64_t n = 5000, d = 40, nq = 1500;
    double *x64 = random_f64(n * d, -1, 1), *q64 = random_f64(nq * d, -1, 1), *grids = random_f64(2 * 42, 0, 1);
    float *x = to_f32(x64, n * d), *q = to_f32(q64, nq * d);
    run_out *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    int saved = mvt_get_num_threads();
    mvt_set_num_threads(1);
    run_all(a, x, n, d, q, nq, grids);
    mvt_set_num_threads(2);
    run_all(b, x, n, d, q, nq, grids);
    mvt_set_num_threads(saved);
    ck_assert(memcmp(a->sel, b->sel, sizeof a->sel) == 0);
    ck_assert(memcmp(a->sel_proj, b->sel_proj, sizeof a->sel_proj) == 0);
    ck_assert(memcmp(a->mind, b->mind, sizeof a->mind) == 0);
    ck_assert(memcmp(a->centers, b->centers, sizeof a->centers) == 0);
    ck_assert(memcmp(a->assign, b->assign, sizeof a->assign) == 0);
    ck_assert(memcmp(a->dist, b->dist, sizeof a->dist) == 0);
    ck_assert(memcmp(a->idx, b->idx, sizeof a->idx) == 0);
    ck_assert(memcmp(a->map, b->map, sizeof a->map) == 0);
    /* f32 and f64 coreset agree on well-separated random data */
    int64_t sel64[DET_M];
    ck_assert_int_eq(mvs_coreset_greedy_f64(NULL, 0, d, 1, 0, sel64, NULL), -1);
    double *xb = to_f64(x, n * d);
    ck_assert_int_eq(mvs_coreset_greedy_f64(xb, n, d, DET_M, 3, sel64, NULL), 0);
    ck_assert(memcmp(sel64, a->sel, sizeof sel64) == 0);
    free(xb); free(x64); free(q64); free(grids); free(x); free(q); free(a); free(b);
}
END_TEST

static Suite *bank_suite(void) {
    Suite *s = suite_create("bank");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_coreset_fixture);
    tcase_add_test(tc, test_kmeans_fixture);
    tcase_add_test(tc, test_knn_fixture);
    tcase_add_test(tc, test_anomaly_map_fixture);
    tcase_add_test(tc, test_knn_vs_naive);
    tcase_add_test(tc, test_knn_kmeans_thread_count_independent);
    tcase_add_test(tc, test_score_per_view_banks);
    tcase_add_test(tc, test_coreset_vs_naive);
    tcase_add_test(tc, test_kmeanspp);
    tcase_add_test(tc, test_thread_determinism);
    tcase_add_test(tc, test_coreset_pruned_exact);
    tcase_add_test(tc, test_kmeanspp_pruned_exact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(bank_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
