/* epilines: a picture to check a calibration by eye. For chosen points in
 * view a it marks the points, draws their epipolar lines in every other view
 * and tints the patches the EAM mask lets each point attend to.
 * Called by the `calibrate`/`epilines` command (which writes the canvas as PNG)
 * and tests/check_epipolar.c. */
#ifndef MVEAD_EPILINES_H
#define MVEAD_EPILINES_H
#include <stdint.h>
#include "mvead/geometry/calibration.h"
#ifdef __cplusplus
extern "C" {
#endif

/* images: V RGB uint8 buffers (row-major, 3 bytes per pixel) of width x height,
 * the same size for every view (an image pointer may be NULL: grey). The
 * calibration is rescaled to width x height. pts: npts x 2 pixel coordinates
 * (x, y) in view a. P: patch size in these pixels (patch grid (height/P) x
 * (width/P)); delta: mask threshold in patches. Output: *canvas (malloc'd,
 * caller frees) of *cw = V*width by *ch = height RGB pixels, views side by side
 * in view order. Point i gets colour i of a fixed palette: a cross at the
 * point in view a; in each view b != a its line and, tinted, the patches with
 * M_ab = 1. Returns -1 (mv_error) on bad arguments. */
int mvg_draw_epilines(const mvg_calibration *c, const uint8_t *const *images, int width, int height, int a,
                      const double *pts, int npts, int P, double delta, uint8_t **canvas, int *cw, int *ch);

#ifdef __cplusplus
}
#endif
#endif
