/* epilines: draw epipolar lines and masked patches into an RGB canvas. */
#include "mvead/geometry/epilines.h"
#include "tensor/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t PALETTE[8][3] = {
    {230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {255, 225, 25},
    {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
};

typedef struct {
    uint8_t *px;
    int cw, ch;   /* canvas size */
    int x0, w, h; /* panel: columns x0 .. x0+w-1 */
} panel;

static void put(const panel *p, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= p->w || y >= p->h) return;
    uint8_t *q = p->px + ((size_t)y * p->cw + p->x0 + x) * 3;
    q[0] = rgb[0];
    q[1] = rgb[1];
    q[2] = rgb[2];
}

/* Blend a colour into the patch rectangle at 35% (so the image stays visible). */
static void tint_rect(const panel *p, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    for (int y = y0; y < y1 && y < p->h; y++)
        for (int x = x0; x < x1 && x < p->w; x++) {
            uint8_t *q = p->px + ((size_t)y * p->cw + p->x0 + x) * 3;
            for (int k = 0; k < 3; k++) q[k] = (uint8_t)((65 * q[k] + 35 * rgb[k] + 50) / 100);
        }
}

/* Line l = (l0, l1, l2): l0 x + l1 y + l2 = 0 in pixel coordinates (corner
 * origin); pixel (i, j) has centre (i + 0.5, j + 0.5). Two pixels thick. */
static void draw_line(const panel *p, const double l[3], const uint8_t rgb[3]) {
    if (fabs(l[0]) < 1e-300 && fabs(l[1]) < 1e-300) return; /* epipole: no line */
    if (fabs(l[1]) >= fabs(l[0])) {
        for (int i = 0; i < p->w; i++) {
            double y = -(l[0] * (i + 0.5) + l[2]) / l[1] - 0.5;
            if (!isfinite(y) || y < -2 || y > p->h + 2) continue;
            int j = (int)floor(y);
            put(p, i, j, rgb);
            put(p, i, j + 1, rgb);
        }
    } else {
        for (int j = 0; j < p->h; j++) {
            double x = -(l[1] * (j + 0.5) + l[2]) / l[0] - 0.5;
            if (!isfinite(x) || x < -2 || x > p->w + 2) continue;
            int i = (int)floor(x);
            put(p, i, j, rgb);
            put(p, i + 1, j, rgb);
        }
    }
}

static void draw_cross(const panel *p, double x, double y, const uint8_t rgb[3]) {
    int cx = (int)floor(x), cy = (int)floor(y);
    for (int d = -6; d <= 6; d++) {
        put(p, cx + d, cy, rgb);
        put(p, cx, cy + d, rgb);
        put(p, cx + d, cy + 1, rgb);
        put(p, cx + 1, cy + d, rgb);
    }
}

int mvg_draw_epilines(const mvg_calibration *c, const uint8_t *const *images, int width, int height, int a,
                      const double *pts, int npts, int P, double delta, uint8_t **canvas, int *cw, int *ch) {
    if (!c || c->V < 2 || c->V > MVG_MAX_VIEWS)
        return mv_error("epilines: calibration missing or with an invalid number of views");
    const int V = c->V;
    if (width <= 0 || height <= 0) return mv_error("epilines: image size %d x %d is not positive", width, height);
    if (a < 0 || a >= V) return mv_error("epilines: view %d out of range 0 .. %d", a, V - 1);
    if (npts < 0 || (npts > 0 && !pts)) return mv_error("epilines: %d points but no coordinates", npts);
    if (P <= 0 || P > width || P > height)
        return mv_error("epilines: patch size %d does not fit a %d x %d image", P, width, height);
    if (!(delta >= 0.0) || !isfinite(delta)) return mv_error("epilines: delta %g must be >= 0", delta);
    if ((long long)V * width * height * 3 > (1LL << 31))
        return mv_error("epilines: canvas %d x %d is too large", V * width, height);
    double *F = malloc(sizeof(double) * 9 * (size_t)V * V);
    uint8_t *px = malloc((size_t)V * width * height * 3);
    if (!F || !px) {
        free(F);
        free(px);
        return mv_error("epilines: out of memory for a %d x %d canvas", V * width, height);
    }
    mvg_calibration_F_for_size(c, width, height, F);
    const int W = V * width;
    for (int v = 0; v < V; v++)
        for (int y = 0; y < height; y++) {
            uint8_t *dst = px + ((size_t)y * W + (size_t)v * width) * 3;
            if (images && images[v]) memcpy(dst, images[v] + (size_t)y * width * 3, (size_t)width * 3);
            else memset(dst, 128, (size_t)width * 3);
        }
    const int gh = height / P, gw = width / P;
    /* tints first, then lines and crosses on top so they stay crisp */
    for (int b = 0; b < V; b++) {
        if (b == a) continue;
        panel pb = {px, W, height, b * width, width, height};
        const double *Fab = F + ((size_t)a * V + b) * 9;
        for (int i = 0; i < npts; i++) {
            double l[3];
            mvg_epipolar_line(Fab, pts[2 * i], pts[2 * i + 1], l);
            for (int k = 0; k < gh * gw; k++) {
                double x, y;
                mvg_patch_centre(k, gw, P, &x, &y);
                if (mvg_point_line_distance(l, x, y) <= delta * P)
                    tint_rect(&pb, (k % gw) * P, (k / gw) * P, (k % gw + 1) * P, (k / gw + 1) * P, PALETTE[i % 8]);
            }
        }
    }
    for (int i = 0; i < npts; i++) {
        panel pa = {px, W, height, a * width, width, height};
        draw_cross(&pa, pts[2 * i], pts[2 * i + 1], PALETTE[i % 8]);
        for (int b = 0; b < V; b++) {
            if (b == a) continue;
            panel pb = {px, W, height, b * width, width, height};
            double l[3];
            mvg_epipolar_line(F + ((size_t)a * V + b) * 9, pts[2 * i], pts[2 * i + 1], l);
            draw_line(&pb, l, PALETTE[i % 8]);
        }
    }
    free(F);
    *canvas = px;
    *cw = W;
    *ch = height;
    return 0;
}
