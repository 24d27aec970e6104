/* scoremaps: what eval and predict share: loading the memory banks (whole
 * or this rank's shard) and drawing a heatmap overlay. */
#include "mvead/run/scoremaps.h"
#include "data/h5io.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/run/mpi.h"
#include "tensor/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mvead_banks_free(mvead_banks *b) {
    for (int i = 0; i < b->count; i++) free(b->rows ? b->rows[i] : NULL);
    free(b->rows);
    free(b->n);
    memset(b, 0, sizeof *b);   /* error paths free twice: the second must be a no-op */
}

int mvead_banks_load(const char *path, int D, int V, const char *hash, bool shard, mvead_banks *b) {
    memset(b, 0, sizeof *b);
    int fmt;
    hid_t f = mvd_h5_open_read(path, "bank", MVEAD_BANK_FORMAT, &fmt);
    if (f < 0) return -1;
    int64_t nb, dim;
    int rc = -1;
    if (mvd_h5_attr_get_int(f, ".", "n_banks", &nb, path) || mvd_h5_attr_get_int(f, ".", "dim", &dim, path)) goto done;
    if (dim != D) { mv_error("%s: bank of %lld-dim features, the features have %d", path, (long long)dim, D); goto done; }
    if (nb != 1 && nb != V) { mv_error("%s: %lld banks, expected 1 (pooled) or %d (per view)", path, (long long)nb, V); goto done; }
    if (hash && mvd_h5_attr_exists(f, ".", "backbone_hash")) {
        char bh[64] = "";
        if (mvd_h5_attr_get_str(f, ".", "backbone_hash", bh, sizeof bh, path)) goto done;
        if (strcmp(bh, hash)) {
            mv_error("%s: built from backbone %s, the features come from %s (wrong --runs/--name, cache or config?)", path, bh, hash);
            goto done;
        }
    }
    b->count = (int)nb;
    b->rows = calloc((size_t)nb, sizeof(float *));
    b->n = calloc((size_t)nb, sizeof(int64_t));
    for (int i = 0; i < nb; i++) {
        char name[32];
        snprintf(name, sizeof name, "bank/%d", i);
        int64_t shp[2] = {-1, D};
        mvt_tensor *t = mvd_h5_read_tensor(f, name, MVT_F32, 2, shp, path);
        if (!t) goto done;
        if (t->shape[0] < 1) { mvt_release(t); mv_error("%s: bank %d is empty", path, i); goto done; }
        /* under MPI each rank keeps a contiguous block of rows (maybe empty) */
        int64_t lo = 0, hi = t->shape[0];
        if (shard) mvead_mpi_block(t->shape[0], &lo, &hi);
        b->n[i] = hi - lo;
        b->rows[i] = malloc(sizeof(float) * (size_t)b->n[i] * D + 1);
        memcpy(b->rows[i], mvt_f32(t) + (size_t)lo * D, sizeof(float) * (size_t)b->n[i] * D);
        mvt_release(t);
    }
    rc = 0;
done:
    H5Fclose(f);
    if (rc) mvead_banks_free(b);
    return rc;
}

void mvead_heatmap_color(double t, uint8_t *rgb) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double r = 1.5 - fabs(4 * t - 3), g = 1.5 - fabs(4 * t - 2), b = 1.5 - fabs(4 * t - 1);
    rgb[0] = (uint8_t)(255 * (r < 0 ? 0 : r > 1 ? 1 : r));
    rgb[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
    rgb[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}

int mvead_heatmap_overlay(const char *out, const char *image_path, const float *map, const uint8_t *mask, int H, int W,
                          double lo, double hi) {
    mvd_image src = {0}, img = {0}, canvas = {0};
    int rc = -1;
    if (mvd_image_read_as(image_path, 3, &src)) return -1;
    if (mvd_image_resize(&src, W, H, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &img)) goto done;
    if (mvd_image_alloc(&canvas, 2 * W, H, 3)) goto done;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = img.data + ((size_t)y * W + x) * 3;
            uint8_t *a = canvas.data + ((size_t)y * 2 * W + x) * 3, *b = a + (size_t)W * 3, c[3];
            memcpy(a, p, 3);
            mvead_heatmap_color((map[(size_t)y * W + x] - lo) / (hi > lo ? hi - lo : 1), c);
            for (int k = 0; k < 3; k++) b[k] = (uint8_t)(0.5 * p[k] + 0.5 * c[k]);
            if (mask && mask[(size_t)y * W + x]) {
                bool edge = x == 0 || y == 0 || x == W - 1 || y == H - 1 || !mask[(size_t)y * W + x - 1] ||
                            !mask[(size_t)y * W + x + 1] || !mask[(size_t)(y - 1) * W + x] || !mask[(size_t)(y + 1) * W + x];
                if (edge) memset(b, 255, 3);
            }
        }
    rc = mvd_image_write_png(out, &canvas);
done:
    mvd_image_free(&src);
    mvd_image_free(&img);
    mvd_image_free(&canvas);
    return rc;
}
