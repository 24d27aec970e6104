/* eval_pixels: the test views' anomaly maps and masks at the evaluation size
 * (--eval_size) and the pixel-level metrics of both sets over them. Called by
 * the eval stage (eval_stage.c).
 *
 * Evaluation size, as Real-IAD's official tool (ADEval's command) does it:
 *  - original: each view at its image file's size (read from the header);
 *  - N: every view at N x N.
 * The map (network size) is resized with OpenCV's INTER_LINEAR
 * (mvs_resize_linear_cv); the mask file is read as grey, binarised at > 127
 * (method.md "Evaluation") and, if its size differs, resized with OpenCV's
 * INTER_NEAREST. A view without a mask (OK) is all normal.
 */
#ifndef MVEAD_EVAL_PIXELS_H
#define MVEAD_EVAL_PIXELS_H
#include "mvead/run/scratch.h"
#include <stdint.h>

typedef struct {
    int64_t n;          /* views */
    int64_t *size;      /* (n, 2) H, W of each view at the evaluation size */
    int64_t *off;       /* (n + 1) offset of each view's pixels */
    float *maps;        /* (off[n]) from the scratch pool */
    uint8_t *masks;     /* (off[n]) 0 / 1 */
} mvead_eval_pixels;

/* eval_size: 0 = original, else N. maps (n, H, W) at the network size;
 * image_path / mask_path (n) ("" or NULL: no mask). The arrays come from pool
 * (scratch files past its budget). 0, or -1 with mv_error naming the file. */
int mvead_eval_pixels_build(int eval_size, int64_t n, const char *const *image_path, const char *const *mask_path,
                            const float *maps, int H, int W, mvead_scratch_pool *pool, mvead_eval_pixels *px);
void mvead_eval_pixels_free(mvead_eval_pixels *px, mvead_scratch_pool *pool);

/* Pixel AUROC, AP, AUPRO (fpr 0.3) over the views listed in views (nv):
 * exact = metrics.h's rules (arrays from pool), adeval = adeval.h's
 * (O(strips) memory, one view at a time). NaN where degenerate.
 * 0, or -1 with mv_error. */
int mvead_pixel_metrics_exact(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, mvead_scratch_pool *pool,
                              double out[3]);
int mvead_pixel_metrics_adeval(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, double out[3]);

/* The pixel ROC (fpr, tpr) and PRO (fpr, region-weighted tpr) curves over
 * the views listed, from the official tool's strips: one point per strip
 * edge, from (0, 0) to (1, 1) in increasing FPR. n 0 when one class is
 * missing. For the report's pictures; the metrics come from the functions
 * above. 0, or -1 with mv_error. */
typedef struct {
    int64_t n;
    double *fpr, *tpr, *pro;
} mvead_pixel_curve;
int mvead_pixel_curves(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, mvead_pixel_curve *cv);
void mvead_pixel_curve_free(mvead_pixel_curve *cv);
/* --save_maps: every view's map at the evaluation size to path (kind
 * "anomaly_maps"): `maps` (n, H, W) float32 chunked one view per chunk when
 * all views share a size, else `views/<i>` (H_i, W_i) each; `size` (n, 2),
 * `image_score` (n), `image_path`, `mask_path` ("" for none). Atomic write.
 * 0, or -1 with mv_error. */
int mvead_eval_pixels_save(const char *path, const mvead_eval_pixels *px, const char *const *image_path,
                           const char *const *mask_path, const double *image_score, const char *eval_size);

/* Width and height from a PNG or JPEG header (no decoding). 0 or -1. */
int mvead_image_header_size(const char *path, int *width, int *height);

#endif
