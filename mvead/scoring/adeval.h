/* adeval: the metrics as Real-IAD's official evaluator (ADEval, the public
 * repository winggan/adeval, its default fast routines) computes them, beside
 * the exact rules of metrics.h (method.md "Evaluation"). Called by the eval
 * stage (the `adeval` set of metrics.json) and the tests.
 *
 * The rules, written from ADEval's behaviour (no code of it is copied):
 *  - Histogram: nstrips (1000) equal strips between the minimum and the
 *    maximum score. The nstrips + 1 edges are float32:
 *        e_k = f32(f32(f32(k / nstrips) * f32(max - min)) + f32(min))
 *    plus a -inf and a +inf edge (overflow bins), nstrips + 2 bins. A score x
 *    falls in bin b = #{k : e_k <= x} (numpy.histogram with explicit edges:
 *    half-open bins, the last one closed at +inf).
 *  - Curve at each edge e_k: fn = positives in bins <= k, tp = P - fn (and
 *    the same for negatives); tpr = tp / (tp + fn), fpr = fp / (fp + tn),
 *    precision = tp / (tp + fp), set to 1 where tp + fp = 0.
 *  - AUROC = trapezoids over (fpr, tpr); "AUPR" = trapezoids over
 *    (recall, precision): not scikit-learn's step-wise AP.
 *  - AUPRO: every defect pixel weighs 1 / area of its 8-connected mask region
 *    (the weight stored as float32), normal pixels 1; PRO = weighted tpr. The
 *    area under (fpr, PRO) up to fpr_limit (0.3): the trapezoids below the
 *    limit plus a share of the trapezoid that straddles it (a rectangle part
 *    scaled by t and a triangle part by t^2, t = where the limit falls in
 *    that strip), divided by fpr_limit.
 *  - Resize: OpenCV's cv2.resize INTER_LINEAR on float32 (half-pixel centres,
 *    clamped borders, float coefficients), which ADEval's command applies to
 *    a map before scoring it at its mask's size.
 *
 * Memory is O(nstrips): scores stream in any number of batches once the range
 * is known (a first pass gives it). Counts are integers, so the result does
 * not depend on how the batches are split or on the thread count.
 * Degenerate input (one class only, max == min, AUPRO without a normal pixel
 * or a region) gives NaN and status MVS_METRIC_DEGENERATE (metrics.h).
 */
#ifndef MVEAD_ADEVAL_H
#define MVEAD_ADEVAL_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { MVS_ADEVAL_STRIPS = 1000 };
#define MVS_ADEVAL_FPR_LIMIT 0.3

typedef struct {
    int nstrips;
    double min, max;        /* the range the edges were built from */
    float *edges;           /* (nstrips + 1) interior edges */
    double *pos, *neg;      /* (nstrips + 2) counts per bin */
    double *wpos, *wneg;    /* (nstrips + 2) the same weighted (AUPRO) */
    int degenerate;         /* max <= min: every metric is NaN */
} mvs_adeval_hist;

/* Edges for scores in [min, max] (both finite). 0, or -1 with mv_error. */
int mvs_adeval_init(mvs_adeval_hist *h, double min, double max, int nstrips);
void mvs_adeval_free(mvs_adeval_hist *h);

/* Running minimum and maximum of a first pass: start with lo = +inf, hi =
 * -inf. Returns -1 with mv_error on a NaN score (named by `what`). */
int mvs_adeval_range(const double *scores, int64_t n, double *lo, double *hi, const char *what);
int mvs_adeval_range_f32(const float *scores, int64_t n, double *lo, double *hi, const char *what);

/* Adds scores (n) with labels (nonzero = positive), weight 1. */
int mvs_adeval_add(mvs_adeval_hist *h, const double *scores, const uint8_t *labels, int64_t n);
/* Adds one anomaly map (H, W) and its mask (nonzero = defect) with the AUPRO
 * weights of the mask's 8-connected regions. Working memory O(H W). */
int mvs_adeval_add_map(mvs_adeval_hist *h, const float *map, const uint8_t *mask, int64_t H, int64_t W);

double mvs_adeval_auroc(const mvs_adeval_hist *h, int *status);
double mvs_adeval_aupr(const mvs_adeval_hist *h, int *status);
/* Only meaningful after mvs_adeval_add_map (weighted counts). */
double mvs_adeval_aupro(const mvs_adeval_hist *h, double fpr_limit, int *status);

/* One call for scores in memory: AUROC and AUPR as ADEval's auroc_and_aupr.
 * Returns 0 (status says OK or degenerate) or -1 with mv_error. */
int mvs_adeval_scores(const double *scores, const uint8_t *labels, int64_t n, int nstrips, double *auroc, double *aupr,
                      int *status);

/* OpenCV INTER_LINEAR resize of src (sh, sw) float32 to dst (dh, dw) (an
 * exact halving takes OpenCV's 2x2 area mean, as cv2.resize does).
 * 0, or -1 with mv_error on bad sizes. */
int mvs_resize_linear_cv(const float *src, int sh, int sw, float *dst, int dh, int dw);

#ifdef __cplusplus
}
#endif
#endif
