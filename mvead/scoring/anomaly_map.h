/* anomaly_map: patch-score grid -> pixel anomaly map, as in method.md
 * "Memory bank and scoring": bilinear upsampling (PyTorch
 * F.interpolate(mode='bilinear', align_corners=False): half-pixel centres,
 * source index clamped at 0) of the h x w patch scores to H x W, then a
 * Gaussian blur as scipy.ndimage.gaussian_filter(sigma, mode='reflect',
 * truncate): kernel radius int(truncate * sigma + 0.5), weights
 * exp(-x^2 / (2 sigma^2)) normalised to sum 1, separable (rows axis first,
 * then columns), borders reflected half-sample symmetric (d c b a | a b c d).
 * Called by the scoring/eval commands before the pixel metrics, and by tests.
 * Row-major, _f64 / _f32 variants; the blur accumulates in double.
 */
#ifndef MVEAD_ANOMALY_MAP_H
#define MVEAD_ANOMALY_MAP_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MVS_MAP_SIGMA 4.0
#define MVS_MAP_TRUNCATE 4.0

/* grid (h, w) -> out (H, W). Returns 0 or -1 with mv_error on bad sizes. */
int mvs_upsample_bilinear_f64(const double *grid, int64_t h, int64_t w, double *out, int64_t H, int64_t W);
int mvs_upsample_bilinear_f32(const float *grid, int64_t h, int64_t w, float *out, int64_t H, int64_t W);

/* in (H, W) -> out (H, W) (out may equal in). sigma > 0, truncate > 0;
 * sigma == 0 copies. Returns 0 or -1 with mv_error. */
int mvs_gaussian_blur_f64(const double *in, int64_t H, int64_t W, double sigma, double truncate, double *out);
int mvs_gaussian_blur_f32(const float *in, int64_t H, int64_t W, double sigma, double truncate, float *out);

/* The whole pipeline for n_maps grids: grids (n_maps, h, w) -> maps
 * (n_maps, H, W), upsample then blur(sigma, truncate). Parallel over maps. */
int mvs_anomaly_maps_f64(const double *grids, int64_t n_maps, int64_t h, int64_t w, int64_t H, int64_t W,
                         double sigma, double truncate, double *maps);
int mvs_anomaly_maps_f32(const float *grids, int64_t n_maps, int64_t h, int64_t w, int64_t H, int64_t W,
                         double sigma, double truncate, float *maps);

#ifdef __cplusplus
}
#endif
#endif
