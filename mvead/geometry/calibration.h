/* calibration: the per-rig epipolar geometry a run needs, on disk as JSON.
 * Holds V views' fundamental matrices (at the calibration image size) and,
 * when known, the cameras they came from; or the RANSAC statistics when F was
 * estimated from correspondences (Real-IAD ships no calibration).
 * Called by the `calibrate` command (writes), training/scoring (read, then
 * mvg_calibration_F_for_size for the network input size, then
 * mvg_support_mask), epilines.c and tests/check_epipolar.c.
 *
 * Calibration file (JSON, written by mvg_calibration_write_json):
 *   {
 *     "format": "mvead-calibration", "version": 1,
 *     "views": V,                      2 .. MVG_MAX_VIEWS
 *     "width": W, "height": H,         image size (pixels) the F below refer to
 *     "source": "cameras" | "correspondences" | ... (string, < 64 chars)
 *     "cameras": [ {"K": [9], "R": [9], "t": [3]} x V ]    optional; row-major,
 *                                       X_cam = R X_world + t
 *     "pairs": [ {"a": a, "b": b, "F": [9], "n_corr": int, "n_inliers": int,
 *                 "rms_px": number} for every a < b ]
 *   }
 * F is F_ab (p_a^T F_ab p_b = 0, see epipolar.h), row-major; F_ba = F_ab^T is
 * not stored. On reading, every key is checked (type, length, range, finite
 * numbers, every pair exactly once, F not zero, F consistent with cameras when
 * both are present); errors name the file and the key, e.g.
 * "calib.json: key 'pairs[2].F': expected an array of 9 numbers".
 *
 * Correspondence file (input of mvg_calibrate_from_correspondences, JSON):
 *   {
 *     "views": V, "width": W, "height": H,
 *     "pairs": [ {"a": a, "b": b, "points_a": [[x, y], ...], "points_b": [[x, y], ...]} ]
 *   }
 * points_a[i] in view a matches points_b[i] in view b; coordinates are pixels of
 * the W x H images in the project's convention (x = column, origin at the
 * top-left CORNER of the top-left pixel: add 0.5 to integer pixel-centre
 * coordinates). Every unordered pair {a, b}, a != b, must appear exactly once
 * (either order) with >= 8 correspondences. */
#ifndef MVEAD_CALIBRATION_H
#define MVEAD_CALIBRATION_H
#include <stdbool.h>
#include <stdint.h>
#include "mvead/geometry/epipolar.h"
#ifdef __cplusplus
extern "C" {
#endif

#define MVG_MAX_VIEWS 8
#define MVG_CALIBRATION_VERSION 1

typedef struct {
    int V;
    int width, height; /* image size the F refer to */
    bool has_cameras;
    double K[MVG_MAX_VIEWS][9], R[MVG_MAX_VIEWS][9], t[MVG_MAX_VIEWS][3];
    double F[MVG_MAX_VIEWS][MVG_MAX_VIEWS][9]; /* F[a][b] = F_ab; F[a][a] = 0 */
    int n_corr[MVG_MAX_VIEWS][MVG_MAX_VIEWS], n_inliers[MVG_MAX_VIEWS][MVG_MAX_VIEWS]; /* 0 from cameras */
    double rms_px[MVG_MAX_VIEWS][MVG_MAX_VIEWS]; /* RMS Sampson error of the inliers; 0 from cameras */
    char source[64];
} mvg_calibration;

/* Fills c from V cameras (K, R: V*9 row-major, t: V*3). -1 (mv_error) when
 * V is out of range, the size is not positive, or a K is singular/non-finite. */
int mvg_calibration_from_cameras(mvg_calibration *c, int V, int width, int height, const double *K,
                                 const double *R, const double *t);
/* Writes JSON to path via path.tmp.<pid> + rename. -1 (mv_error) on failure. */
int mvg_calibration_write_json(const char *path, const mvg_calibration *c);
/* Reads and validates; on failure c is untouched and mv_error names path and key. */
int mvg_calibration_read_json(const char *path, mvg_calibration *c);
/* All V*V F rescaled to images resized to width x height (e.g. the network
 * input); F[(a*V + b)*9 ..] = F_ab, the layout of mvg_support_mask; diagonal 0. */
void mvg_calibration_F_for_size(const mvg_calibration *c, int width, int height, double *F);
/* Estimates every pair's F by RANSAC (o may be NULL for defaults) from the
 * correspondence file described above; source = "correspondences".
 * -1 (mv_error naming the file, the key or the pair) on failure. */
int mvg_calibrate_from_correspondences(const char *corr_path, mvg_calibration *out, const mvg_ransac_opts *o);

#ifdef __cplusplus
}
#endif
/* Automatic calibration from a feature cache (train split; calibrate_auto.c):
 * mutual nearest neighbours between the patch features of views a and b of
 * each sample, patch centres as correspondences, RANSAC per pair. */
int mvead_calibrate_from_cache(const char *cache_path, const mvg_ransac_opts *o, mvg_calibration *out);
#endif
