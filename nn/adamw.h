/* adamw: the AdamW optimiser, exactly as torch.optim.AdamW (decoupled weight
 * decay, bias correction, eps outside the square root):
 *
 *     step += 1
 *     p  -= lr * wd * p
 *     m   = lerp(m, g, 1 - beta1)              (torch's rounding)
 *     v   = beta2 * v + (1 - beta2) * g^2
 *     p  -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 *
 * Works on an array of mva_var leaves (borrowed); a leaf whose grad is NULL
 * is skipped and its step count does not advance (as torch). The state (m,
 * v, step per parameter) is public so the trainer can checkpoint it. Called
 * by the EAM trainer (mvead/run/train.c). Includes autograd/ only.
 */
#ifndef MVEAD_NN_ADAMW_H
#define MVEAD_NN_ADAMW_H

#include "autograd/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MVN_ADAMW_LR 1e-4
#define MVN_ADAMW_WD 1e-4
#define MVN_ADAMW_BETA1 0.9
#define MVN_ADAMW_BETA2 0.999
#define MVN_ADAMW_EPS 1e-8

typedef struct {
    double lr, weight_decay, beta1, beta2, eps;
    int n;                 /* number of parameters */
    mva_var **params;      /* [n], borrowed leaves */
    mvt_tensor **m;        /* [n] first moments, same shape/dtype as the params (zeros at start) */
    mvt_tensor **v;        /* [n] second moments */
    int64_t *step;         /* [n] steps taken per parameter */
} mvn_adamw;

/* Defaults lr 1e-4, weight decay 1e-4, betas (0.9, 0.999), eps 1e-8; change
 * the fields afterwards for other values. NULL (mv_error) if a param is not a
 * float leaf. */
mvn_adamw *mvn_adamw_new(mva_var *const *params, int n);
void mvn_adamw_free(mvn_adamw *o);
/* One update of every parameter with a gradient. */
void mvn_adamw_step(mvn_adamw *o);
/* Drops the gradients of all parameters (mva_zero_grad). */
void mvn_adamw_zero_grad(mvn_adamw *o);

#ifdef __cplusplus
}
#endif
#endif
