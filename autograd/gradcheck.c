/* gradcheck: compares mva_backward with central differences on float64
 * inputs. loss = sum(f(x) * R) for a fixed random R drawn from the seed, so
 * every output element contributes with a generic weight.
 *
 * f runs on private copies of the inputs (fresh leaves), so the caller's
 * values and gradients are never touched; everything f puts on the tape is
 * freed (back to the mark taken on entry) and the grad mode is restored. */
#include "autograd/op.h"
#include "tensor/error.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sum(y * R) in float64, fixed (row-major) order; NAN on a shape mismatch. */
static double project(const mva_var *y, const mvt_tensor *R) {
    if (!y || !mvt_same_shape(y->value, R)) return NAN;
    mvt_tensor *yc = mvt_contiguous(y->value);
    mvt_tensor *y64 = yc->dtype == MVT_F64 ? mvt_retain(yc) : mvt_to_dtype(yc, MVT_F64);
    const double *a = mvt_f64(y64), *r = mvt_f64(R);
    double s = 0;
    for (int64_t i = 0, n = mvt_numel(R); i < n; i++) s += a[i] * r[i];
    mvt_release(y64);
    mvt_release(yc);
    return s;
}

static double eval_loss(mva_fn f, mva_var *const *xs, int n, void *ctx, const mvt_tensor *R, size_t mark) {
    mva_var *y = f(xs, n, ctx);
    double s = project(y, R);
    mva_tape_reset(mark);
    return s;
}

mva_gradcheck_report mva_gradcheck(mva_fn f, mva_var *const *inputs, int n, void *ctx, double eps, double atol,
                                   double rtol, uint64_t seed) {
    mva_gradcheck_report rep;
    memset(&rep, 0, sizeof rep);
    rep.worst_input = -1;
    rep.worst_index = -1;

    if (!f || n < 1 || !inputs || !(eps > 0)) {
        snprintf(rep.message, sizeof rep.message,
                 "gradcheck: needs a function, at least one input and eps > 0 (got n = %d, eps = %g)", n, eps);
        mv_error("%s", rep.message);
        return rep;
    }
    for (int i = 0; i < n; i++) {
        if (!inputs[i] || !inputs[i]->value || inputs[i]->value->dtype != MVT_F64) {
            snprintf(rep.message, sizeof rep.message, "gradcheck: input %d (%s) is %s; expected float64", i,
                     inputs[i] && inputs[i]->name ? inputs[i]->name : "unnamed",
                     inputs[i] && inputs[i]->value ? mvt_dtype_name(inputs[i]->value->dtype) : "NULL");
            mv_error("%s", rep.message);
            return rep;
        }
    }

    bool prev_mode = mva_set_grad_enabled(true);
    size_t mark = mva_tape_mark();
    mva_var **xs = calloc((size_t)n, sizeof *xs);
    mvt_tensor **analytic = calloc((size_t)n, sizeof *analytic);
    MVT_ASSERT(xs && analytic, "gradcheck: out of memory");
    for (int i = 0; i < n; i++)
        xs[i] = mva_leaf(mvt_clone(inputs[i]->value), inputs[i]->requires_grad, inputs[i]->name);

    /* analytic: one backward with seed R = d(loss)/dy */
    mvt_tensor *R = NULL;
    mva_var *y = f(xs, n, ctx);
    if (!y || y->value->dtype != MVT_F64) {
        snprintf(rep.message, sizeof rep.message, "gradcheck: f returned %s; expected a float64 var",
                 y ? mvt_dtype_name(y->value->dtype) : "NULL");
        mv_error("%s", rep.message);
        goto done;
    }
    mvt_rng rng;
    mvt_rng_seed(&rng, seed);
    R = mvt_empty(MVT_F64, y->value->ndim, y->value->shape);
    mvt_fill_normal(R, &rng, 0.0, 1.0);
    if (y->requires_grad) mva_backward(y, R);
    for (int i = 0; i < n; i++) {
        analytic[i] = xs[i]->grad ? mvt_contiguous(xs[i]->grad) : NULL;
    }
    mva_tape_reset(mark);

    /* numeric: central differences, nothing recorded */
    mva_set_grad_enabled(false);
    rep.ok = true;
    double worst_ratio = -1;
    for (int i = 0; i < n; i++) {
        if (!xs[i]->requires_grad) continue;
        double *x = mvt_f64(xs[i]->value);   /* a fresh clone: contiguous */
        const double *g = analytic[i] ? mvt_f64(analytic[i]) : NULL;
        for (int64_t j = 0, m = mvt_numel(xs[i]->value); j < m; j++) {
            double orig = x[j];
            x[j] = orig + eps;
            double lp = eval_loss(f, xs, n, ctx, R, mark);
            x[j] = orig - eps;
            double lm = eval_loss(f, xs, n, ctx, R, mark);
            x[j] = orig;
            double num = (lp - lm) / (2 * eps);
            double ana = g ? g[j] : 0.0;
            double err = fabs(ana - num);
            double tol = atol + rtol * fabs(num);
            bool good = err <= tol;   /* false on NaN */
            double ratio = isnan(err) ? INFINITY : err / fmax(tol, DBL_MIN);   /* > 1 means failing */
            if (!good) rep.ok = false;
            if (ratio > worst_ratio) {
                worst_ratio = ratio;
                rep.worst_input = i;
                rep.worst_index = j;
                rep.analytic = ana;
                rep.numeric = num;
                rep.worst_abs_err = err;
                rep.worst_rel_err = num != 0 ? err / fabs(num) : (err == 0 ? 0 : INFINITY);
            }
        }
    }
    if (rep.worst_input < 0) {
        snprintf(rep.message, sizeof rep.message, "gradcheck: no input requires grad; nothing checked");
    } else {
        snprintf(rep.message, sizeof rep.message,
                 "gradcheck %s: worst at input %d (%s) flat index %lld: analytic %.12g numeric %.12g "
                 "abs err %.3g rel err %.3g (atol %g, rtol %g, eps %g)",
                 rep.ok ? "ok" : "FAILED", rep.worst_input,
                 inputs[rep.worst_input]->name ? inputs[rep.worst_input]->name : "unnamed",
                 (long long)rep.worst_index, rep.analytic, rep.numeric, rep.worst_abs_err, rep.worst_rel_err,
                 atol, rtol, eps);
    }

done:
    mva_tape_reset(mark);
    mva_set_grad_enabled(prev_mode);
    for (int i = 0; i < n; i++) {
        mvt_release(analytic[i]);
        mva_leaf_free(xs[i]);
    }
    mvt_release(R);
    free(analytic);
    free(xs);
    return rep;
}
