/* adamw: torch.optim.AdamW (see adamw.h). */
#include "nn/adamw.h"

#include <math.h>
#include <stdlib.h>

#include "tensor/error.h"

mvn_adamw *mvn_adamw_new(mva_var *const *params, int n) {
    for (int i = 0; i < n; i++) {
        const mva_var *p = params[i];
        if (!p || !p->is_leaf || (p->value->dtype != MVT_F32 && p->value->dtype != MVT_F64) ||
            !mvt_is_contiguous(p->value)) {
            mv_error("adamw: parameter %d (%s) must be a contiguous f32/f64 leaf", i,
                     p && p->name ? p->name : "?");
            return NULL;
        }
    }
    mvn_adamw *o = calloc(1, sizeof *o);
    o->lr = MVN_ADAMW_LR;
    o->weight_decay = MVN_ADAMW_WD;
    o->beta1 = MVN_ADAMW_BETA1;
    o->beta2 = MVN_ADAMW_BETA2;
    o->eps = MVN_ADAMW_EPS;
    o->n = n;
    o->params = malloc((size_t)(n > 0 ? n : 1) * sizeof *o->params);
    o->m = malloc((size_t)(n > 0 ? n : 1) * sizeof *o->m);
    o->v = malloc((size_t)(n > 0 ? n : 1) * sizeof *o->v);
    o->step = calloc((size_t)(n > 0 ? n : 1), sizeof *o->step);
    for (int i = 0; i < n; i++) {
        o->params[i] = params[i];
        o->m[i] = mvt_zeros_like(params[i]->value);
        o->v[i] = mvt_zeros_like(params[i]->value);
    }
    return o;
}

void mvn_adamw_free(mvn_adamw *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        mvt_release(o->m[i]);
        mvt_release(o->v[i]);
    }
    free(o->params);
    free(o->m);
    free(o->v);
    free(o->step);
    free(o);
}

/* The update for one parameter of type T (float or double). Arithmetic is done
 * in T where torch does it in the parameter dtype, so f32 follows torch's f32. */
#define ADAMW_UPDATE(T, SQRT)                                                             \
    do {                                                                                  \
        T *p = (T *)mvt_data(o->params[i]->value);                                        \
        const T *g = (const T *)mvt_data(grad);                                           \
        T *m = (T *)mvt_data(o->m[i]), *v = (T *)mvt_data(o->v[i]);                       \
        const T decay = (T)(1.0 - o->lr * o->weight_decay);                               \
        const T w1 = (T)(1.0 - o->beta1), b2 = (T)o->beta2, w2 = (T)(1.0 - o->beta2);    \
        const T neg_step = (T)(-(o->lr / bias1)), c2 = (T)sqrt(bias2), eps = (T)o->eps;     \
        _Pragma("omp parallel for schedule(static)")                                      \
        for (int64_t e = 0; e < count; e++) {                                             \
            T pe = p[e] * decay;                                                          \
            /* torch's lerp(m, g, w1): m + w1 (g - m) for w1 < 0.5 */                    \
            T me = w1 < (T)0.5 ? m[e] + w1 * (g[e] - m[e]) : g[e] - (g[e] - m[e]) * ((T)1 - w1); \
            T ve = v[e] * b2 + w2 * g[e] * g[e];   /* addcmul: self + value*t1*t2 */         \
            m[e] = me;                                                                    \
            v[e] = ve;                                                                    \
            p[e] = pe + neg_step * me / (SQRT(ve) / c2 + eps);   /* addcdiv */               \
        }                                                                                 \
    } while (0)

void mvn_adamw_step(mvn_adamw *o) {
    for (int i = 0; i < o->n; i++) {
        mva_var *param = o->params[i];
        if (!param->grad) continue;
        MVT_ASSERT(param->grad->dtype == param->value->dtype && mvt_same_shape(param->grad, param->value),
                   "adamw: gradient of %s does not match its parameter", param->name ? param->name : "?");
        mvt_tensor *grad = mvt_contiguous(param->grad);
        int64_t count = mvt_numel(param->value);
        int64_t t = ++o->step[i];
        double bias1 = 1.0 - pow(o->beta1, (double)t);
        double bias2 = 1.0 - pow(o->beta2, (double)t);
        if (param->value->dtype == MVT_F64) ADAMW_UPDATE(double, sqrt);
        else ADAMW_UPDATE(float, sqrtf);
        mvt_release(grad);
    }
}

void mvn_adamw_zero_grad(mvn_adamw *o) {
    for (int i = 0; i < o->n; i++) mva_zero_grad(o->params[i]);
}
