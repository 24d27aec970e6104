/* check_adamw: AdamW against torch.optim.AdamW (fixtures/method/adamw.h5: three
 * steps with stored gradients), a hand-computed first step, skipped params and
 * the f32 path. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/adamw.h"
#include "tensor/error.h"
#include "tests/fixtures.h"

static void set_grad(mva_var *p, mvt_tensor *g) {   /* takes g */
    mvt_release(p->grad);
    p->grad = g;
}

START_TEST(test_fixture_three_steps) {
    hid_t f = fx_open("method/adamw.h5");
    if (f < 0) return;
    int nd;
    int64_t s0[8], sg[8], s3[8];
    double *w0 = fx_read(f, "w0", &nd, s0);
    double *grads = fx_read(f, "grads", &nd, sg);
    double *w3 = fx_read(f, "w3", &nd, s3);
    ck_assert(w0 && grads && w3);
    int64_t n = s0[0], steps = sg[0];
    ck_assert_int_eq(sg[1], n);
    for (int dt = 0; dt < 2; dt++) {
        mvt_dtype type = dt == 0 ? MVT_F64 : MVT_F32;
        mvt_tensor *w64 = mvt_from_data(MVT_F64, 1, &n, w0);
        mvt_tensor *w = mvt_empty(type, 1, &n);
        mvt_copy_(w, w64);
        mvt_release(w64);
        mva_var *p = mva_leaf(w, true, "w");
        mvn_adamw *o = mvn_adamw_new(&p, 1);
        ck_assert_ptr_nonnull(o);
        for (int64_t t = 0; t < steps; t++) {
            mvt_tensor *g64 = mvt_from_data(MVT_F64, 1, &n, grads + t * n);
            mvt_tensor *g = mvt_empty(type, 1, &n);
            mvt_copy_(g, g64);
            mvt_release(g64);
            set_grad(p, g);
            mvn_adamw_step(o);
        }
        ck_assert_int_eq(o->step[0], steps);
        mvt_tensor *got = mvt_empty(MVT_F64, 1, &n);
        mvt_copy_(got, p->value);
        /* f64: a few ulps of the parameter scale; f32: float rounding of the update */
        if (type == MVT_F64) ck_assert(fx_compare("adamw w3 f64", mvt_f64(got), w3, n, 1e-13, 0.0, 1));
        else ck_assert(fx_compare("adamw w3 f32", mvt_f64(got), w3, n, 1e-6, 0.0, 1));
        /* and the update itself (w3 - w0), relative to its own size, in f64 */
        if (type == MVT_F64) {
            double *du = malloc((size_t)n * sizeof *du), *dr = malloc((size_t)n * sizeof *dr);
            for (int64_t i = 0; i < n; i++) { du[i] = mvt_f64(got)[i] - w0[i]; dr[i] = w3[i] - w0[i]; }
            ck_assert(fx_compare("adamw w3 - w0 f64", du, dr, n, 1e-9, 0.0, 1));
            free(du); free(dr);
        }
        mvt_release(got);
        mvn_adamw_free(o);
        mva_leaf_free(p);
    }
    free(w0); free(grads); free(w3);
    fx_close(f);
}
END_TEST

/* First step by hand: m = 0.1 g, v = 0.001 g^2, bias-corrected ratio = g / (|g| + eps'). */
START_TEST(test_first_step_by_hand) {
    int64_t n = 3;
    double w0[3] = {1.0, -2.0, 0.5}, g[3] = {0.3, -1e-3, 0.0};
    mva_var *p = mva_leaf(mvt_from_data(MVT_F64, 1, &n, w0), true, "p");
    mva_var *q = mva_leaf(mvt_from_data(MVT_F64, 1, &n, w0), true, "q");   /* no gradient: untouched */
    mva_var *ps[2] = {p, q};
    mvn_adamw *o = mvn_adamw_new(ps, 2);
    o->lr = 0.01;
    o->weight_decay = 0.1;
    set_grad(p, mvt_from_data(MVT_F64, 1, &n, g));
    mvn_adamw_step(o);
    for (int i = 0; i < 3; i++) {
        double decayed = w0[i] * (1 - 0.01 * 0.1);
        double mhat = g[i], vhat = g[i] * g[i];
        double want = decayed - 0.01 * mhat / (sqrt(vhat) + 1e-8);
        ck_assert_msg(fabs(mvt_f64(p->value)[i] - want) < 1e-15, "element %d: %.17g vs %.17g", i,
                      mvt_f64(p->value)[i], want);
        ck_assert(mvt_f64(q->value)[i] == w0[i]);
        ck_assert(fabs(mvt_f64(o->m[0])[i] - 0.1 * g[i]) < 1e-16);
        ck_assert(fabs(mvt_f64(o->v[0])[i] - 0.001 * g[i] * g[i]) < 1e-16);
    }
    ck_assert_int_eq(o->step[0], 1);
    ck_assert_int_eq(o->step[1], 0);
    /* zero_grad drops the gradients; a step without gradients changes nothing */
    mvn_adamw_zero_grad(o);
    ck_assert(p->grad == NULL || mvt_max_abs(p->grad) == 0.0);
    mvt_tensor *before = mvt_clone(p->value);
    if (p->grad == NULL) {
        mvn_adamw_step(o);
        ck_assert(mvt_max_abs_diff(before, p->value, NULL) == 0.0);
        ck_assert_int_eq(o->step[0], 1);
    }
    mvt_release(before);
    mvn_adamw_free(o);
    mva_leaf_free(p);
    mva_leaf_free(q);
}
END_TEST

/* Defaults as in the paper / torch; bad parameters are reported. */
START_TEST(test_defaults_and_errors) {
    int64_t n = 4;
    mva_var *p = mva_leaf(mvt_zeros(MVT_F32, 1, &n), true, "p");
    mvn_adamw *o = mvn_adamw_new(&p, 1);
    ck_assert(o->lr == 1e-4 && o->weight_decay == 1e-4 && o->beta1 == 0.9 && o->beta2 == 0.999 &&
              o->eps == 1e-8);
    ck_assert_int_eq(o->m[0]->dtype, MVT_F32);
    ck_assert(mvt_max_abs(o->m[0]) == 0.0 && mvt_max_abs(o->v[0]) == 0.0);
    mvn_adamw_free(o);
    mva_var *bad = mva_leaf(mvt_zeros(MVT_I64, 1, &n), false, "idx");
    mva_var *ps[2] = {p, bad};
    ck_assert_ptr_null(mvn_adamw_new(ps, 2));
    ck_assert(strstr(mv_error_last(), "idx") != NULL);
    mva_leaf_free(bad);
    mva_leaf_free(p);
}
END_TEST

static Suite *adamw_suite(void) {
    Suite *s = suite_create("adamw");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fixture_three_steps);
    tcase_add_test(tc, test_first_step_by_hand);
    tcase_add_test(tc, test_defaults_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(adamw_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
