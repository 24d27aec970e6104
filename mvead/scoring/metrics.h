/* metrics: evaluation metrics as Real-IAD's official tool / scikit-learn /
 * the MVTec-AD AUPRO code compute them (method.md "Evaluation").
 * Called by the eval command (image-, sample- and pixel-level tables), by
 * bench and tests. Scores are double, labels uint8 (nonzero = anomalous).
 *
 *  - AUROC: exact area under the ROC curve; tied scores form one threshold
 *    (the trapezoid through a tie = counting a tied pos/neg pair as 1/2), as
 *    sklearn.metrics.roc_auc_score.
 *  - AP: step-wise average precision sum_t (R_t - R_{t-1}) P_t over distinct
 *    thresholds, as sklearn.metrics.average_precision_score (not trapezoidal).
 *  - AUPRO: the MVTec-AD implementation (pro_curve_util / generic_util):
 *    ground-truth regions are the 8-connected components of each mask
 *    (scipy.ndimage.label with a 3x3 structure of ones, also what anomalib's
 *    connected components give); at each distinct score threshold (highest
 *    first) PRO = mean over ALL regions of all images of the fraction of the
 *    region above the threshold, FPR = fraction of all normal pixels above it;
 *    the curve starts at (0, 0), the area up to fpr_limit (0.3) is taken by
 *    trapezoids with linear interpolation at the limit, then divided by
 *    fpr_limit so a perfect detector scores 1.
 *
 * Degenerate input (only one class present; AUPRO: no normal pixel or no
 * region) returns NaN and sets *status = MVS_METRIC_DEGENERATE. Bad input (NaN
 * scores, n <= 0) returns NaN, *status = MVS_METRIC_ERROR and sets mv_error.
 * status may be NULL. Sorting is an O(n) LSD radix sort on the score bits, so
 * pixel-level metrics over ~1e8 pixels take seconds; memory ~16 bytes/pixel
 * (AUPRO ~28), from mvs_metrics_set_allocator's allocator.
 */
#ifndef MVEAD_METRICS_H
#define MVEAD_METRICS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The metrics of a run (metrics.json, the report, ablate, compare): the one
 * list of their keys and titles. Rows are in the order metrics.json writes
 * them; `column` is the paper's table order (sample, image, pixel). */
#define MVS_METRIC_KEYS(X) \
    /* id            key             title          column */ \
    X(IMAGE_AUROC,  "image_auroc",  "Image AUROC",  2) \
    X(IMAGE_AP,     "image_ap",     "Image AP",     3) \
    X(SAMPLE_AUROC, "sample_auroc", "Sample AUROC", 0) \
    X(SAMPLE_AP,    "sample_ap",    "Sample AP",    1) \
    X(PIXEL_AUROC,  "pixel_auroc",  "Pixel AUROC",  4) \
    X(PIXEL_AP,     "pixel_ap",     "Pixel AP",     5) \
    X(PIXEL_AUPRO,  "pixel_aupro",  "AUPRO",        6)
typedef enum {
#define MVS_KEY_ENUM(id, key, title, column) MVS_KEY_##id,
    MVS_METRIC_KEYS(MVS_KEY_ENUM)
#undef MVS_KEY_ENUM
    MVS_KEY_COUNT
} mvs_metric_key;
typedef struct {
    const char *key, *title;
    int column;
} mvs_metric_key_info;
extern const mvs_metric_key_info mvs_metric_keys[MVS_KEY_COUNT];
/* The metric shown in table column c (0 .. MVS_KEY_COUNT - 1). */
mvs_metric_key mvs_metric_key_at_column(int c);

enum { MVS_METRIC_ERROR = -1, MVS_METRIC_OK = 0, MVS_METRIC_DEGENERATE = 1 };

/* Where the per-score working arrays (sort keys, weights) come from: malloc
 * by default. eval installs one that keeps them in a scratch file past
 * --memory_mb (mvead/run/scratch.h). alloc returns NULL on failure. Process-wide:
 * set it around a computation, not while another thread computes metrics. */
typedef struct {
    void *(*alloc)(size_t bytes, void *ctx);
    void (*release)(void *mem, void *ctx);
    void *ctx;
} mvs_allocator;
/* NULL: back to malloc/free. */
void mvs_metrics_set_allocator(const mvs_allocator *a);
typedef enum { MVS_AUROC = 0, MVS_AP = 1 } mvs_metric_kind;

double mvs_auroc(const double *scores, const uint8_t *labels, int64_t n, int *status);
double mvs_average_precision(const double *scores, const uint8_t *labels, int64_t n, int *status);
double mvs_metric(mvs_metric_kind kind, const double *scores, const uint8_t *labels, int64_t n, int *status);

/* maps (n_images, H, W) anomaly scores, masks (n_images, H, W) nonzero =
 * defect. fpr_limit in (0, 1] (0.3 as standard). */
double mvs_aupro(const double *maps, const uint8_t *masks, int64_t n_images, int64_t H, int64_t W,
                 double fpr_limit, int *status);

/* The same over images of different sizes laid one after another: image m
 * is sizes[2m] x sizes[2m + 1] (H, W). */
double mvs_aupro_sizes(const double *maps, const uint8_t *masks, int64_t n_images, const int64_t *sizes,
                       double fpr_limit, int *status);

/* 8-connected components of mask (H, W) (nonzero = foreground):
 * component (H, W) = 0 for background, 1..count for regions in raster order
 * of their first pixel. Returns the count, or -1 with mv_error (out of memory). */
int64_t mvs_label_components(const uint8_t *mask, int64_t H, int64_t W, int32_t *component);

/* Sample level: group g's score = max of its members' scores, label = max of
 * their labels. group (n) in [0, n_groups); groups with no member get score
 * -inf and label 0 (and are reported as an error). Returns 0 or -1. */
int mvs_group_max(const double *scores, const uint8_t *labels, const int64_t *group, int64_t n,
                  int64_t n_groups, double *group_scores, uint8_t *group_labels);

/* Mean of values (n) skipping NaN entries (degenerate categories);
 * *n_used (may be NULL) = how many were averaged; NaN when none. */
double mvs_mean_over_categories(const double *values, int64_t n, int64_t *n_used);

/* The metric computed per category (category (n) in [0, n_categories)):
 * per_category (n_categories) (NaN for a degenerate/empty category), and the
 * mean over the non-NaN categories in *mean (may be NULL).
 * Returns the number of categories averaged, or -1 with mv_error. */
int64_t mvs_metric_per_category(mvs_metric_kind kind, const double *scores, const uint8_t *labels,
                                const int64_t *category, int64_t n, int64_t n_categories,
                                double *per_category, double *mean);

#ifdef __cplusplus
}
#endif
#endif
