/* transform: separable resampling through per-axis tap tables, crops and the
 * ImageNet normalisation; conventions in transform.h. */
#include "data/transform.h"
#include "tensor/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const float mvd_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float mvd_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* Taps of one axis: output o reads in[idx[o*K + k]] with weight w[o*K + k]. */
typedef struct {
    int K;
    int *idx;
    double *w;
} axis_taps;

static void axis_taps_free(axis_taps *t) {
    free(t->idx);
    free(t->w);
    t->idx = NULL;
    t->w = NULL;
}

/* PyTorch upsample_bicubic2d's cubic convolution, A = -0.75. */
static double cubic_near(double x, double A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
static double cubic_far(double x, double A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

/* PIL's filters (ImagingResample): triangle and the a = -0.5 cubic. */
static double pil_triangle(double x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}
static double pil_bicubic(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

static int axis_taps_alloc(axis_taps *t, int out, int K) {
    t->K = K;
    t->idx = calloc((size_t)out * K, sizeof *t->idx);
    t->w = calloc((size_t)out * K, sizeof *t->w);
    if (!t->idx || !t->w) {
        axis_taps_free(t);
        return mv_error("resize: out of memory for the tap table");
    }
    return 0;
}

/* Builds the taps for resizing an axis of `in` samples to `out`. */
static int axis_taps_make(axis_taps *t, int in, int out, mvd_resize_mode mode, mvd_antialias aa) {
    memset(t, 0, sizeof *t);
    double scale = (double)in / out;
    if (mode == MVD_RESIZE_NEAREST) {
        if (axis_taps_alloc(t, out, 1)) return -1;
        float fscale = (float)in / (float)out; /* PyTorch computes this scale in float */
        for (int o = 0; o < out; o++) {
            int s = (int)floorf((float)o * fscale);
            t->idx[o] = s < in - 1 ? s : in - 1;
            t->w[o] = 1.0;
        }
        return 0;
    }
    int use_pil = aa == MVD_AA_PIL || (aa == MVD_AA_SHRINK && out < in);
    if (use_pil) {
        double filterscale = scale > 1 ? scale : 1;
        double support = (mode == MVD_RESIZE_BICUBIC ? 2.0 : 1.0) * filterscale;
        int K = (int)ceil(support) * 2 + 1;
        if (axis_taps_alloc(t, out, K)) return -1;
        double ss = 1.0 / filterscale;
        for (int o = 0; o < out; o++) {
            double center = (o + 0.5) * scale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > in) xmax = in;
            int n = xmax - xmin;
            if (n > K) n = K;
            double total = 0;
            for (int k = 0; k < n; k++) {
                double x = (k + xmin - center + 0.5) * ss;
                double wk = mode == MVD_RESIZE_BICUBIC ? pil_bicubic(x) : pil_triangle(x);
                t->idx[o * K + k] = xmin + k;
                t->w[o * K + k] = wk;
                total += wk;
            }
            if (total != 0)
                for (int k = 0; k < n; k++) t->w[o * K + k] /= total;
        }
        return 0;
    }
    if (mode == MVD_RESIZE_BILINEAR) {
        if (axis_taps_alloc(t, out, 2)) return -1;
        for (int o = 0; o < out; o++) {
            double src = scale * (o + 0.5) - 0.5;
            if (src < 0) src = 0;
            int i0 = (int)src;
            if (i0 > in - 1) i0 = in - 1;
            int i1 = i0 + (i0 < in - 1 ? 1 : 0);
            double l1 = src - i0;
            t->idx[2 * o] = i0;
            t->idx[2 * o + 1] = i1;
            t->w[2 * o] = 1 - l1;
            t->w[2 * o + 1] = l1;
        }
        return 0;
    }
    /* bicubic, PyTorch */
    if (axis_taps_alloc(t, out, 4)) return -1;
    const double A = -0.75;
    for (int o = 0; o < out; o++) {
        double src = scale * (o + 0.5) - 0.5;
        int i0 = (int)floor(src);
        double tt = src - i0;
        double wk[4] = {cubic_far(tt + 1, A), cubic_near(tt, A), cubic_near(1 - tt, A),
                        cubic_far(2 - tt, A)};
        for (int k = 0; k < 4; k++) {
            int i = i0 - 1 + k;
            t->idx[4 * o + k] = i < 0 ? 0 : (i > in - 1 ? in - 1 : i);
            t->w[4 * o + k] = wk[k];
        }
    }
    return 0;
}

static int check_resize_args(int w, int h, int c, int ow, int oh, mvd_resize_mode mode) {
    if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0 || c <= 0 || w > MVD_IMAGE_MAX_SIDE ||
        h > MVD_IMAGE_MAX_SIDE || ow > MVD_IMAGE_MAX_SIDE || oh > MVD_IMAGE_MAX_SIDE)
        return mv_error("resize: bad sizes %d x %d x %d -> %d x %d", w, h, c, ow, oh);
    if (mode != MVD_RESIZE_NEAREST && mode != MVD_RESIZE_BILINEAR && mode != MVD_RESIZE_BICUBIC)
        return mv_error("resize: unknown mode %d", (int)mode);
    return 0;
}

/* Both passes in double: horizontal into tmp [h, ow, c], then vertical.
 * Exactly one of src_u8/src_f32 and one of dst_u8/dst_f32 is set. */
static int resize_generic(const uint8_t *src_u8, const float *src_f32, int w, int h, int c,
                          uint8_t *dst_u8, float *dst_f32, int ow, int oh, mvd_resize_mode mode,
                          mvd_antialias aa) {
    if (check_resize_args(w, h, c, ow, oh, mode)) return -1;
    axis_taps tx, ty;
    if (axis_taps_make(&tx, w, ow, mode, aa)) return -1;
    if (axis_taps_make(&ty, h, oh, mode, aa)) {
        axis_taps_free(&tx);
        return -1;
    }
    double *tmp = malloc((size_t)h * ow * c * sizeof *tmp);
    if (!tmp) {
        axis_taps_free(&tx);
        axis_taps_free(&ty);
        return mv_error("resize: out of memory");
    }
    for (int y = 0; y < h; y++) {
        size_t row = (size_t)y * w * c;
        for (int ox = 0; ox < ow; ox++) {
            const int *ix = tx.idx + (size_t)ox * tx.K;
            const double *wx = tx.w + (size_t)ox * tx.K;
            for (int ch = 0; ch < c; ch++) {
                double s = 0;
                if (src_u8)
                    for (int k = 0; k < tx.K; k++) s += wx[k] * src_u8[row + (size_t)ix[k] * c + ch];
                else
                    for (int k = 0; k < tx.K; k++) s += wx[k] * src_f32[row + (size_t)ix[k] * c + ch];
                tmp[((size_t)y * ow + ox) * c + ch] = s;
            }
        }
    }
    size_t orow = (size_t)ow * c;
    for (int oy = 0; oy < oh; oy++) {
        const int *iy = ty.idx + (size_t)oy * ty.K;
        const double *wy = ty.w + (size_t)oy * ty.K;
        for (size_t j = 0; j < orow; j++) {
            double s = 0;
            for (int k = 0; k < ty.K; k++) s += wy[k] * tmp[(size_t)iy[k] * orow + j];
            if (dst_u8)
                dst_u8[(size_t)oy * orow + j] = s <= 0 ? 0 : (s >= 255 ? 255 : (uint8_t)(s + 0.5));
            else
                dst_f32[(size_t)oy * orow + j] = (float)s;
        }
    }
    free(tmp);
    axis_taps_free(&tx);
    axis_taps_free(&ty);
    return 0;
}

/* PIL's 8-bit resampling (ImagingResample): 22-bit fixed-point weights,
 * horizontal pass first, each pass rounded and clipped to uint8, a pass
 * skipped when its size does not change. Bit-exact with Pillow. */
#define PIL_PRECISION_BITS (32 - 8 - 2)

static uint8_t pil_clip8(int64_t v) {
    if (v >= ((int64_t)1 << PIL_PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PIL_PRECISION_BITS);
}

static int *pil_fixed_weights(const axis_taps *t, int out) {
    size_t n = (size_t)out * t->K;
    int *k = malloc(n * sizeof *k);
    if (!k) return NULL;
    for (size_t i = 0; i < n; i++)
        k[i] = t->w[i] < 0 ? (int)(-0.5 + t->w[i] * (1 << PIL_PRECISION_BITS))
                           : (int)(0.5 + t->w[i] * (1 << PIL_PRECISION_BITS));
    return k;
}

/* One pass along x (dir 0) or y (dir 1): src [h, w, c] -> dst [h, ow, c] or
 * [oh, w, c]. PIL's taps are contiguous from idx[o*K] (zero weights pad the
 * end), so the inner loops walk plain pointers. */
static int pil_pass(const uint8_t *src, int w, int h, int c, uint8_t *dst, int out, int dir,
                    mvd_resize_mode mode) {
    axis_taps t;
    if (axis_taps_make(&t, dir ? h : w, out, mode, MVD_AA_PIL)) return -1;
    int *k = pil_fixed_weights(&t, out);
    int *ntaps = malloc((size_t)out * sizeof *ntaps);
    int64_t *acc = malloc((size_t)(dir ? (size_t)w * c : (size_t)c) * sizeof *acc);
    if (!k || !ntaps || !acc) {
        free(k), free(ntaps), free(acc);
        axis_taps_free(&t);
        return mv_error("resize: out of memory");
    }
    int in = dir ? h : w;
    for (int o = 0; o < out; o++) { /* taps actually inside the image */
        int n = t.K;
        if (t.idx[o * t.K] + n > in) n = in - t.idx[o * t.K];
        ntaps[o] = n;
    }
    const int64_t half = (int64_t)1 << (PIL_PRECISION_BITS - 1);
    if (dir == 0) {
        for (int y = 0; y < h; y++) {
            const uint8_t *row = src + (size_t)y * w * c;
            for (int o = 0; o < out; o++) {
                const uint8_t *p = row + (size_t)t.idx[o * t.K] * c;
                const int *kk = k + (size_t)o * t.K;
                for (int ch = 0; ch < c; ch++) acc[ch] = half;
                for (int j = 0; j < ntaps[o]; j++, p += c)
                    for (int ch = 0; ch < c; ch++) acc[ch] += (int64_t)p[ch] * kk[j];
                for (int ch = 0; ch < c; ch++) dst[((size_t)y * out + o) * c + ch] = pil_clip8(acc[ch]);
            }
        }
    } else {
        size_t row = (size_t)w * c;
        for (int o = 0; o < out; o++) {
            const uint8_t *p = src + (size_t)t.idx[o * t.K] * row;
            const int *kk = k + (size_t)o * t.K;
            for (size_t i = 0; i < row; i++) acc[i] = half;
            for (int j = 0; j < ntaps[o]; j++, p += row)
                for (size_t i = 0; i < row; i++) acc[i] += (int64_t)p[i] * kk[j];
            for (size_t i = 0; i < row; i++) dst[o * row + i] = pil_clip8(acc[i]);
        }
    }
    free(k), free(ntaps), free(acc);
    axis_taps_free(&t);
    return 0;
}

static int resize_u8_pil(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh,
                         mvd_resize_mode mode) {
    if (ow == w && oh == h) {
        memcpy(dst, src, (size_t)w * h * c);
        return 0;
    }
    if (ow == w) return pil_pass(src, w, h, c, dst, oh, 1, mode);
    if (oh == h) return pil_pass(src, w, h, c, dst, ow, 0, mode);
    uint8_t *tmp = malloc((size_t)h * ow * c);
    if (!tmp) return mv_error("resize: out of memory");
    int rc = pil_pass(src, w, h, c, tmp, ow, 0, mode);
    if (!rc) rc = pil_pass(tmp, ow, h, c, dst, oh, 1, mode);
    free(tmp);
    return rc;
}

int mvd_resize_u8(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh,
                  mvd_resize_mode mode, mvd_antialias aa) {
    if (check_resize_args(w, h, c, ow, oh, mode)) return -1;
    /* PIL's arithmetic whenever every resized axis uses PIL's filter */
    int pil_x = aa == MVD_AA_PIL || (aa == MVD_AA_SHRINK && ow <= w);
    int pil_y = aa == MVD_AA_PIL || (aa == MVD_AA_SHRINK && oh <= h);
    if (mode != MVD_RESIZE_NEAREST && pil_x && pil_y)
        return resize_u8_pil(src, w, h, c, dst, ow, oh, mode);
    return resize_generic(src, NULL, w, h, c, dst, NULL, ow, oh, mode, aa);
}

int mvd_resize_f32(const float *src, int w, int h, int c, float *dst, int ow, int oh,
                   mvd_resize_mode mode, mvd_antialias aa) {
    return resize_generic(NULL, src, w, h, c, NULL, dst, ow, oh, mode, aa);
}

int mvd_image_resize(const mvd_image *in, int ow, int oh, mvd_resize_mode mode, mvd_antialias aa,
                     mvd_image *out) {
    memset(out, 0, sizeof *out);
    if (!in->data) return mv_error("resize: empty input image");
    if (check_resize_args(in->width, in->height, in->channels, ow, oh, mode)) return -1;
    if (mvd_image_alloc(out, ow, oh, in->channels)) return -1;
    if (mvd_resize_u8(in->data, in->width, in->height, in->channels, out->data, ow, oh, mode, aa)) {
        mvd_image_free(out);
        return -1;
    }
    return 0;
}

int mvd_image_center_crop(const mvd_image *in, int cw, int ch, mvd_image *out) {
    memset(out, 0, sizeof *out);
    if (!in->data) return mv_error("center crop: empty input image");
    if (cw <= 0 || ch <= 0 || cw > in->width || ch > in->height)
        return mv_error("center crop: %d x %d does not fit in a %d x %d image", cw, ch, in->width,
                        in->height);
    int top = (int)rint((in->height - ch) / 2.0); /* rint: half to even, as Python's round */
    int left = (int)rint((in->width - cw) / 2.0);
    if (mvd_image_alloc(out, cw, ch, in->channels)) return -1;
    size_t rowbytes = (size_t)cw * in->channels;
    for (int y = 0; y < ch; y++)
        memcpy(out->data + y * rowbytes,
               in->data + ((size_t)(top + y) * in->width + left) * in->channels, rowbytes);
    return 0;
}

int mvd_image_to_chw_normalized(const mvd_image *img, float *dst) {
    if (!img->data || (img->channels != 1 && img->channels != 3))
        return mv_error("normalise: image with %d channels, expected 1 or 3", img->channels);
    size_t np = (size_t)img->width * img->height;
    int c = img->channels;
    for (int ch = 0; ch < 3; ch++) {
        const float mean = mvd_imagenet_mean[ch], sd = mvd_imagenet_std[ch];
        const uint8_t *s = img->data + (c == 3 ? ch : 0);
        float *d = dst + (size_t)ch * np;
        for (size_t i = 0; i < np; i++) {
            float x = (float)s[i * c] / 255.0f;
            d[i] = (x - mean) / sd;
        }
    }
    return 0;
}

void mvd_preprocess_opts_default(mvd_preprocess_opts *o) {
    memset(o, 0, sizeof *o);
    o->height = 224;
    o->width = 224;
    o->mode = MVD_RESIZE_BILINEAR;
    o->antialias = MVD_AA_SHRINK;
    o->resize_short = 0;
}

/* Resizes (and crops) img to the output geometry of o; out is a new image,
 * or a copy of img's pointer (*owned = 0) when nothing changes. */
static int geometry_apply(const mvd_image *img, const mvd_preprocess_opts *o, mvd_resize_mode mode,
                          mvd_image *out, int *owned) {
    *owned = 0;
    if (o->height <= 0 || o->width <= 0 || o->height > MVD_IMAGE_MAX_SIDE ||
        o->width > MVD_IMAGE_MAX_SIDE)
        return mv_error("preprocess: output size %d x %d out of range", o->height, o->width);
    if (o->resize_short <= 0) {
        if (img->width == o->width && img->height == o->height) {
            *out = *img;
            return 0;
        }
        *owned = 1;
        return mvd_image_resize(img, o->width, o->height, mode, o->antialias, out);
    }
    /* torchvision Resize(int): shorter side -> resize_short, the other truncated */
    int rw, rh;
    if (img->width <= img->height) {
        rw = o->resize_short;
        rh = (int)((long long)o->resize_short * img->height / img->width);
    } else {
        rh = o->resize_short;
        rw = (int)((long long)o->resize_short * img->width / img->height);
    }
    mvd_image resized;
    if (mvd_image_resize(img, rw, rh, mode, o->antialias, &resized)) return -1;
    int rc = mvd_image_center_crop(&resized, o->width, o->height, out);
    mvd_image_free(&resized);
    if (rc) return -1;
    *owned = 1;
    return 0;
}

int mvd_preprocess_image(const mvd_image *img, const mvd_preprocess_opts *o, float *out) {
    mvd_image g;
    int owned;
    if (geometry_apply(img, o, o->mode, &g, &owned)) return -1;
    int rc = mvd_image_to_chw_normalized(&g, out);
    if (owned) mvd_image_free(&g);
    return rc;
}

int mvd_preprocess_file_opts(const char *path, const mvd_preprocess_opts *o, float *out) {
    mvd_image img;
    if (mvd_image_read_as(path, 3, &img)) return -1;
    int rc = mvd_preprocess_image(&img, o, out);
    mvd_image_free(&img);
    if (rc) return mv_error_prefix("%s", path);
    return 0;
}

int mvd_preprocess_file(const char *path, int height, int width, float *out) {
    mvd_preprocess_opts o;
    mvd_preprocess_opts_default(&o);
    o.height = height;
    o.width = width;
    return mvd_preprocess_file_opts(path, &o, out);
}

int mvd_preprocess_mask_opts(const char *path, const mvd_preprocess_opts *o, uint8_t *out,
                             int *any_nonzero) {
    if (any_nonzero) *any_nonzero = 0;
    if (o->height <= 0 || o->width <= 0)
        return mv_error("mask: output size %d x %d out of range", o->height, o->width);
    if (!path) {
        memset(out, 0, (size_t)o->height * o->width);
        return 0;
    }
    mvd_image raw, bin;
    if (mvd_image_read(path, &raw)) return -1;
    if (mvd_image_alloc(&bin, raw.width, raw.height, 1)) {
        mvd_image_free(&raw);
        return mv_error_prefix("%s", path);
    }
    size_t np = (size_t)raw.width * raw.height;
    int c = raw.channels, any = 0;
    for (size_t i = 0; i < np; i++) {
        uint8_t v = 0;
        for (int k = 0; k < c; k++) v |= raw.data[i * c + k];
        bin.data[i] = v != 0;
        any |= v != 0;
    }
    mvd_image_free(&raw);
    mvd_image g;
    int owned;
    if (geometry_apply(&bin, o, MVD_RESIZE_NEAREST, &g, &owned)) {
        mvd_image_free(&bin);
        return mv_error_prefix("%s", path);
    }
    memcpy(out, g.data, (size_t)o->height * o->width);
    if (owned) mvd_image_free(&g);
    mvd_image_free(&bin);
    if (any_nonzero) *any_nonzero = any;
    return 0;
}

int mvd_preprocess_mask(const char *path, int height, int width, uint8_t *out, int *any_nonzero) {
    mvd_preprocess_opts o;
    mvd_preprocess_opts_default(&o);
    o.height = height;
    o.width = width;
    return mvd_preprocess_mask_opts(path, &o, out, any_nonzero);
}
