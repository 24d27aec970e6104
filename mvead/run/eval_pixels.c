/* eval_pixels: maps and masks at the evaluation size, and the pixel metrics
 * of both sets; see eval_pixels.h. */
#include "mvead/run/eval_pixels.h"
#include "data/h5io.h"
#include "data/image.h"
#include "mvead/scoring/adeval.h"
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int mvead_image_header_size(const char *path, int *width, int *height) {
    FILE *f = fopen(path, "rb");
    if (!f) return mv_error("%s: cannot open", path);
    uint8_t b[24];
    int rc = -1;
    if (fread(b, 1, 2, f) != 2) goto bad;
    if (b[0] == 0x89 && b[1] == 'P') {   /* PNG: signature, then the IHDR chunk */
        if (fread(b + 2, 1, 22, f) != 22 || memcmp(b + 12, "IHDR", 4)) goto bad;
        *width = (int)be32(b + 16);
        *height = (int)be32(b + 20);
        rc = 0;
    } else if (b[0] == 0xFF && b[1] == 0xD8) {   /* JPEG: walk the segments to a start-of-frame */
        for (;;) {
            int c = fgetc(f);
            if (c == EOF) goto bad;
            if (c != 0xFF) continue;
            int m;
            while ((m = fgetc(f)) == 0xFF) {}
            if (m == EOF) goto bad;
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;   /* no length */
            if (fread(b, 1, 2, f) != 2) goto bad;
            int len = b[0] << 8 | b[1];
            if (len < 2) goto bad;
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if (fread(b, 1, 5, f) != 5) goto bad;
                *height = b[1] << 8 | b[2];
                *width = b[3] << 8 | b[4];
                rc = 0;
                break;
            }
            if (fseek(f, len - 2, SEEK_CUR)) goto bad;
        }
    }
bad:
    fclose(f);
    if (rc || *width <= 0 || *height <= 0 || *width > MVD_IMAGE_MAX_SIDE || *height > MVD_IMAGE_MAX_SIDE)
        return mv_error("%s: not a PNG or JPEG with a readable size", path);
    return 0;
}

/* One view's mask at h x w: the file as grey, > 127, OpenCV INTER_NEAREST
 * (source index floor(d * src / dst), clamped) when its size differs. */
static int mask_at(const char *path, int h, int w, uint8_t *out) {
    if (!path || !*path) {
        memset(out, 0, (size_t)h * w);
        return 0;
    }
    mvd_image g;
    if (mvd_image_read_as(path, 1, &g)) return -1;
    double sy = 1.0 / ((double)h / g.height), sx = 1.0 / ((double)w / g.width);
    for (int y = 0; y < h; y++) {
        int r = g.height == h ? y : (int)floor(y * sy);
        if (r > g.height - 1) r = g.height - 1;
        for (int x = 0; x < w; x++) {
            int c = g.width == w ? x : (int)floor(x * sx);
            if (c > g.width - 1) c = g.width - 1;
            out[(size_t)y * w + x] = g.data[(size_t)r * g.width + c] > 127;
        }
    }
    mvd_image_free(&g);
    return 0;
}

void mvead_eval_pixels_free(mvead_eval_pixels *px, mvead_scratch_pool *pool) {
    mvead_scratch_pool_release(pool, px->masks);
    mvead_scratch_pool_release(pool, px->maps);
    free(px->size);
    free(px->off);
    memset(px, 0, sizeof *px);
}

int mvead_eval_pixels_build(int eval_size, int64_t n, const char *const *image_path, const char *const *mask_path,
                            const float *maps, int H, int W, mvead_scratch_pool *pool, mvead_eval_pixels *px) {
    memset(px, 0, sizeof *px);
    px->n = n;
    px->size = malloc(sizeof(int64_t) * 2 * (size_t)(n + 1));
    px->off = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!px->size || !px->off) { mvead_eval_pixels_free(px, pool); return mv_error("eval: out of memory"); }
    px->off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int w = eval_size, h = eval_size;
        if (!eval_size && mvead_image_header_size(image_path[i], &w, &h)) {
            mvead_eval_pixels_free(px, pool);
            return mv_error_prefix("eval --eval_size original");
        }
        px->size[2 * i] = h;
        px->size[2 * i + 1] = w;
        px->off[i + 1] = px->off[i] + (int64_t)h * w;
    }
    int64_t total = px->off[n];
    px->maps = mvead_scratch_pool_alloc(pool, sizeof(float) * (size_t)total, "eval: anomaly maps at the evaluation size");
    px->masks = px->maps ? mvead_scratch_pool_alloc(pool, (size_t)total, "eval: masks at the evaluation size") : NULL;
    if (!px->maps || !px->masks) { mvead_eval_pixels_free(px, pool); return -1; }
    /* views in parallel: each writes its own slice; the first failure (in
     * view order) is reported with its message */
    int64_t first_bad = n;
    char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < n; i++) {
        int h = (int)px->size[2 * i], w = (int)px->size[2 * i + 1];
        float *m = px->maps + px->off[i];
        uint8_t *k = px->masks + px->off[i];
        int rc = mvs_resize_linear_cv(maps + (size_t)i * H * W, H, W, m, h, w);
        if (!rc) rc = mask_at(mask_path ? mask_path[i] : NULL, h, w, k);
        if (!rc) rc = mvead_scratch_pool_writeback(pool, px->maps, sizeof(float) * (size_t)px->off[i], sizeof(float) * (size_t)h * w) ||
                      mvead_scratch_pool_writeback(pool, px->masks, (size_t)px->off[i], (size_t)h * w) ? -1 : 0;
        if (rc) {
#pragma omp critical(eval_pixels_error)
            if (i < first_bad) {
                first_bad = i;
                snprintf(msg, sizeof msg, "%s", mv_error_last());
            }
        }
    }
    if (first_bad < n) {
        mvead_eval_pixels_free(px, pool);
        return mv_error("eval: view %s at the evaluation size: %s", image_path[first_bad], msg);
    }
    return 0;
}

/* The metrics' sort keys come from eval's scratch pool (mvs_metrics_set_allocator). */
static void *pool_alloc(size_t bytes, void *ctx) { return mvead_scratch_pool_alloc(ctx, bytes, "eval: pixel metrics"); }
static void pool_release(void *mem, void *ctx) { mvead_scratch_pool_release(ctx, mem); }

int mvead_pixel_metrics_exact(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, mvead_scratch_pool *pool,
                              double out[3]) {
    int64_t np = 0;
    bool uniform = true;
    for (int64_t a = 0; a < nv; a++) {
        int64_t i = views[a];
        np += px->off[i + 1] - px->off[i];
        uniform = uniform && px->size[2 * i] == px->size[2 * views[0]] && px->size[2 * i + 1] == px->size[2 * views[0] + 1];
    }
    int rc = -1, st[3];
    double *ps = mvead_scratch_pool_alloc(pool, sizeof(double) * (size_t)np + 1, "eval: pixel scores");
    uint8_t *pl = ps ? mvead_scratch_pool_alloc(pool, (size_t)np + 1, "eval: pixel labels") : NULL;
    int64_t *sizes = malloc(sizeof(int64_t) * 2 * (size_t)nv + 1);
    if (!ps || !pl || !sizes) { if (!sizes) mv_error("eval: out of memory"); goto done; }
    for (int64_t a = 0, o = 0; a < nv; a++) {
        int64_t i = views[a];
        for (int64_t k = px->off[i]; k < px->off[i + 1]; k++, o++) {
            ps[o] = px->maps[k];
            pl[o] = px->masks[k];
        }
        sizes[2 * a] = px->size[2 * i];
        sizes[2 * a + 1] = px->size[2 * i + 1];
    }
    mvs_allocator al = {pool_alloc, pool_release, pool};
    mvs_metrics_set_allocator(&al);
    out[0] = mvs_auroc(ps, pl, np, &st[0]);
    out[1] = mvs_average_precision(ps, pl, np, &st[1]);
    out[2] = uniform ? mvs_aupro(ps, pl, nv, sizes[0], sizes[1], 0.3, &st[2]) : mvs_aupro_sizes(ps, pl, nv, sizes, 0.3, &st[2]);
    mvs_metrics_set_allocator(NULL);
    rc = st[0] == MVS_METRIC_ERROR || st[1] == MVS_METRIC_ERROR || st[2] == MVS_METRIC_ERROR ? -1 : 0;   /* mv_error says which */
done:
    mvead_scratch_pool_release(pool, pl);
    mvead_scratch_pool_release(pool, ps);
    free(sizes);
    return rc;
}

/* The official tool's histogram of every pixel of the views listed: a first
 * pass for the range of the strips, then the maps with their regions'
 * weights. 1 when there is nothing to count (no pixel, an infinite score or
 * one value only: every metric NaN), 0, or -1 with mv_error. */
static int pixel_hist(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, mvs_adeval_hist *h) {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t a = 0; a < nv; a++) {
        int64_t i = views[a];
        if (mvs_adeval_range_f32(px->maps + px->off[i], px->off[i + 1] - px->off[i], &lo, &hi, "eval: ADEval pixel metrics"))
            return -1;
    }
    if (!isfinite(lo) || !isfinite(hi)) return 1;
    if (mvs_adeval_init(h, lo, hi, MVS_ADEVAL_STRIPS)) return -1;
    for (int64_t a = 0; a < nv; a++) {
        int64_t i = views[a];
        if (mvs_adeval_add_map(h, px->maps + px->off[i], px->masks + px->off[i], px->size[2 * i], px->size[2 * i + 1])) {
            mvs_adeval_free(h);
            return -1;
        }
    }
    return 0;
}

int mvead_pixel_metrics_adeval(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, double out[3]) {
    out[0] = out[1] = out[2] = NAN;
    mvs_adeval_hist h;
    int r = pixel_hist(px, views, nv, &h);
    if (r) return r < 0 ? -1 : 0;   /* nothing to count: NaN */
    int st[3];
    out[0] = mvs_adeval_auroc(&h, &st[0]);
    out[1] = mvs_adeval_aupr(&h, &st[1]);
    out[2] = mvs_adeval_aupro(&h, MVS_ADEVAL_FPR_LIMIT, &st[2]);
    mvs_adeval_free(&h);
    return st[0] == MVS_METRIC_ERROR || st[1] == MVS_METRIC_ERROR || st[2] == MVS_METRIC_ERROR ? -1 : 0;
}

void mvead_pixel_curve_free(mvead_pixel_curve *cv) {
    free(cv->fpr);
    free(cv->tpr);
    free(cv->pro);
    memset(cv, 0, sizeof *cv);
}

int mvead_pixel_curves(const mvead_eval_pixels *px, const int64_t *views, int64_t nv, mvead_pixel_curve *cv) {
    memset(cv, 0, sizeof *cv);
    mvs_adeval_hist h;
    int r = pixel_hist(px, views, nv, &h);
    if (r) return r < 0 ? -1 : 0;
    if (h.degenerate) {
        mvs_adeval_free(&h);
        return 0;
    }
    int nb = h.nstrips + 2;
    double P = 0, N = 0, WP = 0;
    for (int b = 0; b < nb; b++) P += h.pos[b], N += h.neg[b], WP += h.wpos[b];
    int rc = 0;
    if (P > 0 && N > 0 && WP > 0) {
        /* at edge k a pixel is called defective when it lies in a bin above k;
         * walking k down from the top edge, the rates only grow */
        cv->fpr = malloc(sizeof(double) * (size_t)(nb + 1));
        cv->tpr = malloc(sizeof(double) * (size_t)(nb + 1));
        cv->pro = malloc(sizeof(double) * (size_t)(nb + 1));
        if (!cv->fpr || !cv->tpr || !cv->pro) {
            mvead_pixel_curve_free(cv);
            rc = mv_error("eval: out of memory for the pixel curves");
        } else {
            double tp = 0, fp = 0, wtp = 0;
            cv->fpr[0] = cv->tpr[0] = cv->pro[0] = 0;
            cv->n = 1;
            for (int b = nb - 1; b >= 0; b--) {
                tp += h.pos[b], fp += h.neg[b], wtp += h.wpos[b];
                cv->fpr[cv->n] = fp / N, cv->tpr[cv->n] = tp / P, cv->pro[cv->n] = wtp / WP;
                cv->n++;
            }
        }
    }
    mvs_adeval_free(&h);
    return rc;
}

/* One chunked float32 dataset written view by view (hyperslabs along dim 0
 * when 3-D), with the crc32 attribute h5io's readers check. */
static int write_maps(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *data, int64_t n_views,
                      int64_t view_px) {
    hid_t space = H5Screate_simple(ndim, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
    hsize_t chunk[3] = {1, dims[ndim - 2], dims[ndim - 1]};
    H5Pset_chunk(dcpl, ndim, ndim == 3 ? chunk : dims);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
    int rc = d < 0 ? mv_error("dataset %s: cannot create", name) : 0;
    uLong crc = crc32(0L, Z_NULL, 0);
    hsize_t one[3] = {1, dims[ndim - 2], dims[ndim - 1]};
    hid_t mem = H5Screate_simple(ndim, one, NULL);
    for (int64_t i = 0; !rc && i < n_views; i++) {
        const float *v = data + (size_t)i * view_px;
        hsize_t start[3] = {(hsize_t)i, 0, 0};
        if (ndim == 3) H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, one, NULL);
        if (H5Dwrite(d, H5T_NATIVE_FLOAT, ndim == 3 ? mem : H5S_ALL, ndim == 3 ? space : H5S_ALL, H5P_DEFAULT, v) < 0)
            rc = mv_error("dataset %s: write failed", name);
        crc = crc32_z(crc, (const Bytef *)v, sizeof(float) * (size_t)view_px);
    }
    if (!rc) {
        hid_t as = H5Screate(H5S_SCALAR), a = H5Acreate2(d, "crc32", H5T_STD_U32LE, as, H5P_DEFAULT, H5P_DEFAULT);
        uint32_t c32 = (uint32_t)crc;
        if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT32, &c32) < 0) rc = mv_error("dataset %s: cannot write checksum", name);
        if (a >= 0) H5Aclose(a);
        H5Sclose(as);
    }
    if (d >= 0) H5Dclose(d);
    H5Sclose(mem);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    return rc;
}

int mvead_eval_pixels_save(const char *path, const mvead_eval_pixels *px, const char *const *image_path,
                           const char *const *mask_path, const double *image_score, const char *eval_size) {
    mvd_h5_writer w = {.file = -1};
    if (mvd_h5_create(&w, path, "anomaly_maps", 1)) return -1;
    int64_t n = px->n;
    bool uniform = true;
    for (int64_t i = 1; i < n; i++)
        uniform = uniform && px->size[2 * i] == px->size[0] && px->size[2 * i + 1] == px->size[1];
    const char **mp = malloc(sizeof(char *) * (size_t)(n + 1));
    if (!mp) { mvd_h5_abort(&w); return mv_error("%s: out of memory", path); }
    for (int64_t i = 0; i < n; i++) mp[i] = mask_path && mask_path[i] ? mask_path[i] : "";
    int64_t s2[2] = {n, 2}, s1[1] = {n};
    int rc = mvd_h5_write_i64(w.file, "size", 2, s2, px->size) || mvd_h5_write_f64(w.file, "image_score", 1, s1, image_score) ||
             mvd_h5_write_strings(w.file, "image_path", n, image_path) || mvd_h5_write_strings(w.file, "mask_path", n, mp) ||
             mvd_h5_attr_set_str(w.file, ".", "eval_size", eval_size) ||
             mvd_h5_attr_set_str(w.file, ".", "layout", uniform ? "maps (n, H, W), one chunk per view" : "views/<i> (H_i, W_i)");
    free(mp);
    if (!rc && uniform && n > 0) {
        hsize_t dims[3] = {(hsize_t)n, (hsize_t)px->size[0], (hsize_t)px->size[1]};
        rc = write_maps(w.file, "maps", 3, dims, px->maps, n, px->size[0] * px->size[1]);
    }
    for (int64_t i = 0; !rc && !uniform && i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "views/%lld", (long long)i);
        hsize_t dims[2] = {(hsize_t)px->size[2 * i], (hsize_t)px->size[2 * i + 1]};
        rc = write_maps(w.file, name, 2, dims, px->maps + px->off[i], 1, px->off[i + 1] - px->off[i]);
    }
    if (rc) {
        mvd_h5_abort(&w);
        return mv_error_prefix("%s", path);
    }
    return mvd_h5_commit(&w) ? mv_error_prefix("%s", path) : 0;
}
