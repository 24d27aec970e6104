/* check_threshold: the run's operating threshold (mvead/scoring/threshold.h)
 * against a brute-force search over every candidate threshold, on random
 * scores with ties, and its degenerate cases. */
#include "mvead/scoring/threshold.h"
#include "tensor/tensor.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>

/* F1 of (score >= t) against the labels. */
static double f1_at(const double *s, const uint8_t *y, int64_t n, double t) {
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        bool ng = s[i] >= t;
        if (ng && y[i]) tp++;
        else if (ng) fp++;
        else if (y[i]) fn++;
    }
    return 2.0 * tp / (double)(2 * tp + fp + fn);
}

START_TEST(test_brute_force) {
    uint64_t st = 7;
    for (int trial = 0; trial < 200; trial++) {
        int64_t n = 2 + (int64_t)(mvt_splitmix64(&st) % 60);
        double *s = malloc(sizeof(double) * (size_t)n);
        uint8_t *y = malloc((size_t)n);
        int levels = 1 + (int)(mvt_splitmix64(&st) % 12);   /* few levels: many ties */
        int64_t P = 0;
        for (int64_t i = 0; i < n; i++) {
            y[i] = mvt_splitmix64(&st) % 3 == 0;
            P += y[i];
            /* defects score higher on average, with overlap */
            s[i] = (double)(mvt_splitmix64(&st) % (uint64_t)levels) + (y[i] ? 0.4 * levels : 0);
        }
        if (P == 0) y[0] = 1, P = 1;
        if (P == n) y[0] = 0;
        /* brute force: every score as a threshold, ties to the higher one */
        double best = -1, best_t = NAN;
        for (int64_t i = 0; i < n; i++) {
            double f = f1_at(s, y, n, s[i]);
            if (f > best || (f == best && s[i] > best_t)) best = f, best_t = s[i];
        }
        double f1;
        double t = mvs_f1_threshold(s, y, n, &f1);
        ck_assert_msg(t == best_t, "trial %d: threshold %g, brute force %g", trial, t, best_t);
        ck_assert_msg(fabs(f1 - best) < 1e-15, "trial %d: F1 %g, brute force %g", trial, f1, best);
        ck_assert_double_eq_tol(f1_at(s, y, n, t), f1, 1e-15);
        free(s);
        free(y);
    }
}
END_TEST

START_TEST(test_degenerate) {
    double s[4] = {0.1, 0.2, 0.3, 0.4};
    uint8_t none[4] = {0, 0, 0, 0}, all[4] = {1, 1, 1, 1}, y[4] = {0, 0, 1, 1};
    double f1 = 0;
    ck_assert(isnan(mvs_f1_threshold(s, none, 4, &f1)) && isnan(f1));
    ck_assert(isnan(mvs_f1_threshold(s, all, 4, &f1)));
    /* separable: the lowest defect score, F1 1 */
    ck_assert_double_eq(mvs_f1_threshold(s, y, 4, &f1), 0.3);
    ck_assert_double_eq(f1, 1.0);
    double bad[4] = {0.1, NAN, 0.3, 0.4};
    ck_assert(isnan(mvs_f1_threshold(bad, y, 4, NULL)));
}
END_TEST

static Suite *threshold_suite(void) {
    Suite *s = suite_create("threshold");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_brute_force);
    tcase_add_test(tc, test_degenerate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(threshold_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
