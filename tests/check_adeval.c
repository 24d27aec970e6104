/* check_adeval: the official-evaluator rules (adeval.h) against ADEval's own
 * outputs in method/adeval.h5: every case found in the file (scores cases:
 * AUROC and AUPR; pixel cases: AUROC, AUPR and AUPRO over maps and masks;
 * resize: OpenCV INTER_LINEAR to every target stored), to 1e-9. Sizes and
 * cases come from the file, so other seeds and shapes work. Plus: batches
 * and thread counts do not change a value, and degenerate input. */
#include "mvead/scoring/adeval.h"
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include "tests/fixtures.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double scalar(hid_t f, const char *grp, const char *name) {
    char p[300];
    snprintf(p, sizeof p, "%s/%s", grp, name);
    int nd;
    int64_t shape[8];
    double *v = fx_read(f, p, &nd, shape);
    ck_assert_msg(v != NULL, "%s missing", p);
    double r = v[0];
    free(v);
    return r;
}

static int nstrips_of(hid_t f, const char *grp) {
    return fx_has_attr(f, grp, "nstrips") ? (int)fx_attr_f64(f, grp, "nstrips") : MVS_ADEVAL_STRIPS;
}

static uint8_t *read_u8(hid_t f, const char *p, int *nd, int64_t *shape) {
    int64_t *v = fx_read_i64(f, p, nd, shape);
    ck_assert_msg(v != NULL, "%s missing", p);
    int64_t n = fx_numel(*nd, shape);
    uint8_t *u = malloc((size_t)n + 1);
    for (int64_t i = 0; i < n; i++) u[i] = (uint8_t)v[i];
    free(v);
    return u;
}

static bool check_scores_case(hid_t f, const char *g) {
    char p[300];
    int nd;
    int64_t shape[8];
    snprintf(p, sizeof p, "%s/scores", g);
    double *s = fx_read(f, p, &nd, shape);
    int64_t n = fx_numel(nd, shape);
    snprintf(p, sizeof p, "%s/labels", g);
    uint8_t *lab = read_u8(f, p, &nd, shape);
    ck_assert_int_eq(fx_numel(nd, shape), n);
    int ns = nstrips_of(f, g), st;
    double au, ap, ref_au = scalar(f, g, "auroc"), ref_ap = scalar(f, g, "aupr");
    ck_assert_int_eq(mvs_adeval_scores(s, lab, n, ns, &au, &ap, &st), 0);
    ck_assert_int_eq(st, MVS_METRIC_OK);
    char what[300];
    snprintf(what, sizeof what, "%s ADEval auroc", g);
    bool ok = fx_compare(what, &au, &ref_au, 1, 0.0, 1e-9, 0);
    snprintf(what, sizeof what, "%s ADEval aupr", g);
    ok = fx_compare(what, &ap, &ref_ap, 1, 0.0, 1e-9, 0) && ok;
    /* the exact set is scikit-learn's, stored beside for contrast */
    if (fx_has(f, (snprintf(p, sizeof p, "%s/sklearn_ap", g), p))) {
        double ref_sk = scalar(f, g, "sklearn_ap"), sk = mvs_average_precision(s, lab, n, &st);
        snprintf(what, sizeof what, "%s sklearn ap", g);
        ok = fx_compare(what, &sk, &ref_sk, 1, 0.0, 1e-9, 0) && ok;
    }
    /* streaming in uneven batches gives the same histogram */
    double lo = INFINITY, hi = -INFINITY;
    ck_assert_int_eq(mvs_adeval_range(s, n, &lo, &hi, "test"), 0);
    mvs_adeval_hist h;
    ck_assert_int_eq(mvs_adeval_init(&h, lo, hi, ns), 0);
    for (int64_t i = 0; i < n;) {
        int64_t m = 1 + (i * 7) % 13;
        if (i + m > n) m = n - i;
        ck_assert_int_eq(mvs_adeval_add(&h, s + i, lab + i, m), 0);
        i += m;
    }
    double au2 = mvs_adeval_auroc(&h, &st), ap2 = mvs_adeval_aupr(&h, &st);
    mvs_adeval_free(&h);
    ck_assert(au2 == au && ap2 == ap);
    free(s);
    free(lab);
    return ok;
}

static bool check_pixel_case(hid_t f, const char *g) {
    char p[300];
    int nd;
    int64_t shape[8];
    snprintf(p, sizeof p, "%s/maps", g);
    double *m64 = fx_read(f, p, &nd, shape);
    ck_assert_int_eq(nd, 3);
    int64_t n = shape[0], H = shape[1], W = shape[2], hw = H * W;
    float *maps = malloc(sizeof(float) * (size_t)(n * hw));
    for (int64_t i = 0; i < n * hw; i++) maps[i] = (float)m64[i];   /* stored as float32: exact */
    free(m64);
    snprintf(p, sizeof p, "%s/masks", g);
    uint8_t *masks = read_u8(f, p, &nd, shape);
    ck_assert_int_eq(fx_numel(nd, shape), n * hw);
    double limit = fx_has_attr(f, g, "fpr_limit") ? fx_attr_f64(f, g, "fpr_limit") : MVS_ADEVAL_FPR_LIMIT;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(mvs_adeval_range_f32(maps + i * hw, hw, &lo, &hi, "test"), 0);
    mvs_adeval_hist h;
    ck_assert_int_eq(mvs_adeval_init(&h, lo, hi, nstrips_of(f, g)), 0);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(mvs_adeval_add_map(&h, maps + i * hw, masks + i * hw, H, W), 0);
    int st;
    double got[3] = {mvs_adeval_auroc(&h, &st), mvs_adeval_aupr(&h, &st), mvs_adeval_aupro(&h, limit, &st)};
    ck_assert_int_eq(st, MVS_METRIC_OK);
    double ref[3] = {scalar(f, g, "auroc"), scalar(f, g, "aupr"), scalar(f, g, "aupro")};
    const char *names[3] = {"auroc", "aupr", "aupro"};
    bool ok = true;
    for (int k = 0; k < 3; k++) {
        char what[300];
        snprintf(what, sizeof what, "%s ADEval pixel %s", g, names[k]);
        ok = fx_compare(what, &got[k], &ref[k], 1, 0.0, 1e-9, 0) && ok;
    }
    mvs_adeval_free(&h);
    free(maps);
    free(masks);
    return ok;
}

/* Every dataset to_<H>x<W> of the group is map resized to that size. */
static bool check_resize(hid_t f, const char *g, int *n_targets) {
    char p[300];
    int nd;
    int64_t shape[8];
    snprintf(p, sizeof p, "%s/map", g);
    double *m64 = fx_read(f, p, &nd, shape);
    ck_assert_int_eq(nd, 2);
    int sh = (int)shape[0], sw = (int)shape[1];
    float *src = malloc(sizeof(float) * (size_t)sh * sw);
    for (int64_t i = 0; i < (int64_t)sh * sw; i++) src[i] = (float)m64[i];
    free(m64);
    char **names;
    int nn = fx_list(f, g, &names);
    bool ok = true;
    for (int k = 0; k < nn; k++) {
        if (strncmp(names[k], "to_", 3)) continue;
        snprintf(p, sizeof p, "%s/%s", g, names[k]);
        double *ref = fx_read(f, p, &nd, shape);
        ck_assert_int_eq(nd, 2);
        int dh = (int)shape[0], dw = (int)shape[1];
        float *dst = malloc(sizeof(float) * (size_t)dh * dw);
        ck_assert_int_eq(mvs_resize_linear_cv(src, sh, sw, dst, dh, dw), 0);
        char what[400];
        snprintf(what, sizeof what, "%s (%dx%d -> %dx%d)", p, sh, sw, dh, dw);
        ok = fx_compare_f32(what, dst, ref, (int64_t)dh * dw, 0.0, 0.0, 0) && ok;
#ifdef _OPENMP
        /* rows are independent: one thread gives the same bits */
        float *one = malloc(sizeof(float) * (size_t)dh * dw);
        int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        ck_assert_int_eq(mvs_resize_linear_cv(src, sh, sw, one, dh, dw), 0);
        omp_set_num_threads(nt);
        ck_assert(!memcmp(one, dst, sizeof(float) * (size_t)dh * dw));
        free(one);
#endif
        free(dst);
        free(ref);
        (*n_targets)++;
    }
    fx_free_list(names, nn);
    free(src);
    return ok;
}

START_TEST(test_fixture_cases) {
    hid_t f = fx_open("method/adeval.h5");
    if (f < 0) return;
    char **names;
    int ncase = fx_list(f, "/", &names);
    int n_scores = 0, n_pixel = 0, n_resize = 0;
    bool ok = true;
    for (int c = 0; c < ncase; c++) {
        char p[300];
        if (fx_has(f, (snprintf(p, sizeof p, "%s/scores", names[c]), p))) { ok = check_scores_case(f, names[c]) && ok; n_scores++; }
        else if (fx_has(f, (snprintf(p, sizeof p, "%s/maps", names[c]), p))) { ok = check_pixel_case(f, names[c]) && ok; n_pixel++; }
        else if (fx_has(f, (snprintf(p, sizeof p, "%s/map", names[c]), p))) ok = check_resize(f, names[c], &n_resize) && ok;
    }
    fx_free_list(names, ncase);
    fx_close(f);
    printf("adeval.h5: %d score cases, %d pixel cases, %d resize targets\n", n_scores, n_pixel, n_resize);
    ck_assert(ok);
    ck_assert_int_gt(n_scores, 0);
    ck_assert_int_gt(n_pixel, 0);
    ck_assert_int_gt(n_resize, 0);
}
END_TEST

/* Hand case: 2 positives above 2 negatives, separated: AUROC 1. AUPR 1/2:
 * the top edge equals the maximum, so the last bin (closed at +inf) holds
 * the score 1 and the binned PR curve starts at recall 1/2, not 0: ADEval
 * integrates recall 1/2..1 only. */
START_TEST(test_hand_and_degenerate) {
    double s[4] = {0.0, 0.25, 0.75, 1.0}, au, ap;
    uint8_t y[4] = {0, 0, 1, 1};
    int st;
    ck_assert_int_eq(mvs_adeval_scores(s, y, 4, 1000, &au, &ap, &st), 0);
    ck_assert_int_eq(st, MVS_METRIC_OK);
    ck_assert(fabs(au - 1.0) < 1e-12);
    ck_assert(fabs(ap - 0.5) < 1e-12);
    /* reversed labels: AUROC 0 */
    uint8_t yr[4] = {1, 1, 0, 0};
    ck_assert_int_eq(mvs_adeval_scores(s, yr, 4, 1000, &au, &ap, &st), 0);
    ck_assert(fabs(au) < 1e-12);
    /* one class only, or all scores equal: NaN, degenerate */
    uint8_t y0[4] = {0, 0, 0, 0};
    ck_assert_int_eq(mvs_adeval_scores(s, y0, 4, 1000, &au, &ap, &st), 0);
    ck_assert_int_eq(st, MVS_METRIC_DEGENERATE);
    ck_assert(isnan(au));
    double same[4] = {2, 2, 2, 2};
    ck_assert_int_eq(mvs_adeval_scores(same, y, 4, 1000, &au, &ap, &st), 0);
    ck_assert_int_eq(st, MVS_METRIC_DEGENERATE);
    /* NaN score: an error naming it */
    double bad[4] = {0, NAN, 1, 2};
    ck_assert_int_eq(mvs_adeval_scores(bad, y, 4, 1000, &au, &ap, &st), -1);
    ck_assert(strstr(mv_error_last(), "NaN") != NULL);
    mv_error_clear();
    /* bad sizes for the resize */
    float src[4] = {0}, dst[4];
    ck_assert_int_eq(mvs_resize_linear_cv(src, 0, 2, dst, 2, 2), -1);
    mv_error_clear();
}
END_TEST

/* A perfect map: PRO 1 everywhere below the limit -> AUPRO ~1, and the
 * weights: one big region and one single pixel count equally. */
START_TEST(test_aupro_weights) {
    enum { H = 20, W = 20 };
    float map[H * W];
    uint8_t mask[H * W];
    memset(mask, 0, sizeof mask);
    for (int r = 2; r < 10; r++)
        for (int c = 2; c < 10; c++) mask[r * W + c] = 255;
    mask[15 * W + 15] = 255;
    for (int p = 0; p < H * W; p++) map[p] = mask[p] ? 1.0f + 0.001f * (float)(p % 7) : 0.01f * (float)(p % 50);
    mvs_adeval_hist h;
    ck_assert_int_eq(mvs_adeval_init(&h, 0.0, 1.006, 1000), 0);
    ck_assert_int_eq(mvs_adeval_add_map(&h, map, mask, H, W), 0);
    int st;
    double pro = mvs_adeval_aupro(&h, 0.3, &st);
    ck_assert_int_eq(st, MVS_METRIC_OK);
    ck_assert_msg(pro > 0.99 && pro <= 1.0 + 1e-12, "perfect map: AUPRO %g", pro);
    /* each region weighs 1 in total: the weighted positives sum to 2 */
    double wsum = 0.0, psum = 0.0;
    for (int b = 0; b < h.nstrips + 2; b++) { wsum += h.wpos[b]; psum += h.pos[b]; }
    ck_assert(fabs(wsum - 2.0) < 1e-6);
    ck_assert(psum == 65.0);
    mvs_adeval_free(&h);
}
END_TEST

/* The strip that straddles FPR 0.3, by hand (4 strips, counts set
 * directly): points (fpr, pro) from the top edge down: (0, 0), (.1, .25),
 * (.2, .5), (.5, .75), (1, 1). Below the limit: .05; the straddling strip
 * from (.2, .5) to (.5, .75) cut at t = 1/3: .3 t .5 + .3 t^2 .25 / 2 =
 * .05 + .0375 / 9; AUPRO = (.1 + .0375 / 9) / .3. (The adeval.h5 cases have
 * PRO flat around the limit, so they do not pin this.) */
START_TEST(test_aupro_interpolation) {
    mvs_adeval_hist h;
    ck_assert_int_eq(mvs_adeval_init(&h, 0.0, 1.0, 4), 0);
    const double neg[6] = {0, 5, 3, 1, 1, 0}, pos[6] = {0, 1, 1, 1, 1, 0};
    for (int b = 0; b < 6; b++) { h.neg[b] = h.wneg[b] = neg[b]; h.pos[b] = h.wpos[b] = pos[b]; }
    int st;
    double pro = mvs_adeval_aupro(&h, 0.3, &st);
    ck_assert_int_eq(st, MVS_METRIC_OK);
    double want = (0.1 + 0.0375 / 9.0) / 0.3;
    ck_assert_msg(fabs(pro - want) < 1e-12, "AUPRO %.15g, expected %.15g", pro, want);
    /* the weighted positives, not the counts, give PRO */
    h.wpos[1] = 3.0;   /* pro at the edges: (6-fn)/6 -> 1, .5, 1/3, 1/6, 0 */
    pro = mvs_adeval_aupro(&h, 0.3, &st);
    want = (0.1 * (1.0 / 6) / 2 + 0.1 * (1.0 / 6 + 1.0 / 3) / 2 + 0.1 * (1.0 / 3) + 0.3 / 9 * (0.5 - 1.0 / 3) / 2) / 0.3;
    ck_assert_msg(fabs(pro - want) < 1e-12, "weighted AUPRO %.15g, expected %.15g", pro, want);
    mvs_adeval_free(&h);
}
END_TEST

/* An exact halving is OpenCV's 2x2 area mean, summed in its order: blocks of
 * 4 outputs as (a + b) + (c + d), the rest as ((a + b) + c) + d. With
 * a = 1e8, b = 1, c = -1e8, d = 1 in float32 the first gives 0, the second
 * 1/4 (cv2.resize of 4.6 on x86: [0 0 0 0 .25 .25] for 6 outputs). */
START_TEST(test_resize_halving_order) {
    enum { DW = 6 };
    float src[2 * 2 * DW], dst[DW];
    for (int x = 0; x < DW; x++) {
        src[2 * x] = 1e8f;
        src[2 * x + 1] = 1.0f;
        src[2 * DW + 2 * x] = -1e8f;
        src[2 * DW + 2 * x + 1] = 1.0f;
    }
    ck_assert_int_eq(mvs_resize_linear_cv(src, 2, 2 * DW, dst, 1, DW), 0);
    for (int x = 0; x < DW; x++) ck_assert_msg(dst[x] == (x < 4 ? 0.0f : 0.25f), "output %d: %g", x, dst[x]);
}
END_TEST

static Suite *adeval_suite(void) {
    Suite *s = suite_create("adeval");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixture_cases);
    tcase_add_test(tc, test_hand_and_degenerate);
    tcase_add_test(tc, test_aupro_weights);
    tcase_add_test(tc, test_aupro_interpolation);
    tcase_add_test(tc, test_resize_halving_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(adeval_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
