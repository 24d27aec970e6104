/* Tests for data/image (JPEG/PNG I/O, corrupt files) and data/transform
 * (resizing against naive formulas, crops, normalisation, preprocessing). */
#include <check.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/image.h"
#include "data/transform.h"
#include "tensor/error.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static unsigned rng_state = 12345;
static unsigned rng(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) & 0xffffff;
}

/* A smooth colour pattern (JPEG-friendly). */
static void fill_smooth(mvd_image *img) {
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < img->channels; c++)
                img->data[((size_t)y * img->width + x) * img->channels + c] =
                    (uint8_t)(40 + (x * 150) / img->width + (y * 50) / img->height + 10 * c);
}

static void fill_random(mvd_image *img) {
    size_t n = (size_t)img->width * img->height * img->channels;
    for (size_t i = 0; i < n; i++) img->data[i] = (uint8_t)rng();
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* ---- I/O ---------------------------------------------------------------------- */

START_TEST(test_png_roundtrip_grey_rgb) {
    for (int ch = 1; ch <= 3; ch += 2) {
        mvd_image img, back;
        ck_assert_int_eq(mvd_image_alloc(&img, 37, 23, ch), 0);
        fill_random(&img);
        const char *p = tmp_path(ch == 1 ? "g.png" : "rgb.png");
        ck_assert_int_eq(mvd_image_write_png(p, &img), 0);
        ck_assert_int_eq(mvd_image_read(p, &back), 0);
        ck_assert_int_eq(back.width, 37);
        ck_assert_int_eq(back.height, 23);
        ck_assert_int_eq(back.channels, ch);
        ck_assert_int_eq(memcmp(back.data, img.data, 37 * 23 * ch), 0);
        mvd_image_free(&back);
        /* forced conversions */
        ck_assert_int_eq(mvd_image_read_as(p, 3, &back), 0);
        ck_assert_int_eq(back.channels, 3);
        for (int i = 0; i < 37 * 23; i++) {
            if (ch == 1) {
                ck_assert_int_eq(back.data[3 * i], img.data[i]);
                ck_assert_int_eq(back.data[3 * i + 2], img.data[i]);
            } else {
                ck_assert_int_eq(back.data[3 * i + 1], img.data[3 * i + 1]);
            }
        }
        mvd_image_free(&back);
        ck_assert_int_eq(mvd_image_read_as(p, 1, &back), 0);
        ck_assert_int_eq(back.channels, 1);
        if (ch == 3) { /* PIL "L": (299 R + 587 G + 114 B) / 1000, rounded */
            for (int i = 0; i < 37 * 23; i++) {
                double l = (299.0 * img.data[3 * i] + 587.0 * img.data[3 * i + 1] +
                            114.0 * img.data[3 * i + 2]) / 1000.0;
                ck_assert_int_le(abs(back.data[i] - (int)floor(l + 0.5)), 1);
            }
        }
        mvd_image_free(&back);
        ck_assert_int_eq(mvd_image_read_as(p, 2, &back), -1);
        mvd_image_free(&img);
    }
}
END_TEST

START_TEST(test_jpeg_roundtrip) {
    for (int ch = 1; ch <= 3; ch += 2) {
        mvd_image img, back;
        ck_assert_int_eq(mvd_image_alloc(&img, 64, 48, ch), 0);
        fill_smooth(&img);
        const char *p = tmp_path(ch == 1 ? "g.jpg" : "rgb.jpg");
        ck_assert_int_eq(mvd_image_write_jpeg(p, &img, 95), 0);
        ck_assert_int_eq(mvd_image_read(p, &back), 0);
        ck_assert_int_eq(back.width, 64);
        ck_assert_int_eq(back.height, 48);
        ck_assert_int_eq(back.channels, ch);
        double sum = 0;
        int worst = 0;
        size_t n = (size_t)64 * 48 * ch;
        for (size_t i = 0; i < n; i++) {
            int d = abs((int)back.data[i] - (int)img.data[i]);
            sum += d;
            if (d > worst) worst = d;
        }
        ck_assert_msg(sum / n < 2.0 && worst <= 12, "JPEG round trip: mean %g worst %d", sum / n, worst);
        mvd_image_free(&back);
        mvd_image_free(&img);
    }
    mvd_image img;
    ck_assert_int_eq(mvd_image_alloc(&img, 8, 8, 3), 0);
    ck_assert_int_eq(mvd_image_write_jpeg(tmp_path("q.jpg"), &img, 0), -1);
    ck_assert_int_eq(mvd_image_write_jpeg(tmp_path("q.jpg"), &img, 101), -1);
    mvd_image_free(&img);
}
END_TEST

START_TEST(test_write_deterministic) {
    mvd_image img;
    ck_assert_int_eq(mvd_image_alloc(&img, 50, 31, 3), 0);
    fill_random(&img);
    const char *names[4] = {"d1.png", "d2.png", "d1.jpg", "d2.jpg"};
    for (int k = 0; k < 2; k++) {
        const char *a = tmp_path(names[2 * k]), *b = tmp_path(names[2 * k + 1]);
        if (k == 0) {
            ck_assert_int_eq(mvd_image_write_png(a, &img), 0);
            ck_assert_int_eq(mvd_image_write_png(b, &img), 0);
        } else {
            ck_assert_int_eq(mvd_image_write_jpeg(a, &img, 90), 0);
            ck_assert_int_eq(mvd_image_write_jpeg(b, &img, 90), 0);
        }
        size_t na, nb;
        unsigned char *ba = slurp(a, &na), *bb = slurp(b, &nb);
        ck_assert_uint_gt(na, 0);
        ck_assert_uint_eq(na, nb);
        ck_assert_int_eq(memcmp(ba, bb, na), 0);
        free(ba);
        free(bb);
    }
    /* no temporary left behind */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", tmp_path("d1.png"), (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    /* bad images are refused */
    mvd_image bad = img;
    bad.channels = 4;
    ck_assert_int_eq(mvd_image_write_png(tmp_path("bad.png"), &bad), -1);
    ck_assert_int_eq(mvd_image_write_png("/nonexistent_dir/x.png", &img), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "/nonexistent_dir/x.png"));
    mvd_image_free(&img);
}
END_TEST

/* Writes a PNG of any libpng colour type with raw rows (test helper). */
static void write_png_raw(const char *path, int w, int h, int color_type, int bit_depth,
                          const unsigned char *rows, size_t rowbytes, const png_color *palette,
                          int npal) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) ck_abort_msg("libpng failed writing %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, npal);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)(rows + rowbytes * y));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

START_TEST(test_png_variants) {
    const int w = 5, h = 3;
    mvd_image img;
    /* RGBA: alpha dropped */
    unsigned char rgba[5 * 3 * 4];
    for (int i = 0; i < w * h * 4; i++) rgba[i] = (unsigned char)(i * 7);
    write_png_raw(tmp_path("rgba.png"), w, h, PNG_COLOR_TYPE_RGBA, 8, rgba, w * 4, NULL, 0);
    ck_assert_int_eq(mvd_image_read(tmp_path("rgba.png"), &img), 0);
    ck_assert_int_eq(img.channels, 3);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) ck_assert_int_eq(img.data[3 * i + c], rgba[4 * i + c]);
    mvd_image_free(&img);
    /* 16-bit grey: scaled to 8 bits */
    unsigned char g16[5 * 3 * 2];
    unsigned vals[15];
    for (int i = 0; i < w * h; i++) {
        vals[i] = (unsigned)(i * 4681) & 0xffff;
        g16[2 * i] = (unsigned char)(vals[i] >> 8);
        g16[2 * i + 1] = (unsigned char)(vals[i] & 0xff);
    }
    write_png_raw(tmp_path("g16.png"), w, h, PNG_COLOR_TYPE_GRAY, 16, g16, w * 2, NULL, 0);
    ck_assert_int_eq(mvd_image_read(tmp_path("g16.png"), &img), 0);
    ck_assert_int_eq(img.channels, 1);
    for (int i = 0; i < w * h; i++)
        ck_assert_int_le(abs((int)img.data[i] - (int)floor(vals[i] * 255.0 / 65535.0 + 0.5)), 1);
    mvd_image_free(&img);
    /* palette: expanded to RGB */
    png_color pal[3] = {{10, 20, 30}, {200, 100, 0}, {0, 0, 255}};
    unsigned char idx[5 * 3];
    for (int i = 0; i < w * h; i++) idx[i] = (unsigned char)(i % 3);
    write_png_raw(tmp_path("pal.png"), w, h, PNG_COLOR_TYPE_PALETTE, 8, idx, w, pal, 3);
    ck_assert_int_eq(mvd_image_read(tmp_path("pal.png"), &img), 0);
    ck_assert_int_eq(img.channels, 3);
    for (int i = 0; i < w * h; i++) {
        ck_assert_int_eq(img.data[3 * i], pal[i % 3].red);
        ck_assert_int_eq(img.data[3 * i + 1], pal[i % 3].green);
        ck_assert_int_eq(img.data[3 * i + 2], pal[i % 3].blue);
    }
    mvd_image_free(&img);
    /* grey + alpha: grey */
    unsigned char ga[5 * 3 * 2];
    for (int i = 0; i < w * h; i++) ga[2 * i] = (unsigned char)(i * 11), ga[2 * i + 1] = 3;
    write_png_raw(tmp_path("ga.png"), w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, w * 2, NULL, 0);
    ck_assert_int_eq(mvd_image_read(tmp_path("ga.png"), &img), 0);
    ck_assert_int_eq(img.channels, 1);
    for (int i = 0; i < w * h; i++) ck_assert_int_eq(img.data[i], i * 11);
    mvd_image_free(&img);
    /* 1-bit grey: 0/255 */
    unsigned char bits[3] = {0xA0, 0x40, 0xF8}; /* rows: 10100, 01000, 11111 */
    write_png_raw(tmp_path("g1.png"), w, h, PNG_COLOR_TYPE_GRAY, 1, bits, 1, NULL, 0);
    ck_assert_int_eq(mvd_image_read(tmp_path("g1.png"), &img), 0);
    ck_assert_int_eq(img.data[0], 255);
    ck_assert_int_eq(img.data[1], 0);
    ck_assert_int_eq(img.data[5 + 1], 255);
    ck_assert_int_eq(img.data[14], 255);
    mvd_image_free(&img);
}
END_TEST

/* Any read of path must fail cleanly with a message naming it. */
static void expect_read_error(const char *path) {
    mvd_image img;
    mv_error_clear();
    ck_assert_int_eq(mvd_image_read(path, &img), -1);
    ck_assert_ptr_null(img.data);
    ck_assert_msg(strstr(mv_error_last(), path) != NULL, "message '%s' does not name %s",
                  mv_error_last(), path);
    int any;
    ck_assert_int_eq(mvd_image_any_nonzero(path, &any), -1);
}

START_TEST(test_corrupt_files) {
    mvd_image img;
    ck_assert_int_eq(mvd_image_alloc(&img, 40, 30, 3), 0);
    fill_smooth(&img);
    ck_assert_int_eq(mvd_image_write_jpeg(tmp_path("ok.jpg"), &img, 90), 0);
    ck_assert_int_eq(mvd_image_write_png(tmp_path("ok.png"), &img), 0);
    mvd_image_free(&img);
    const char *good[2] = {"ok.jpg", "ok.png"};
    for (int k = 0; k < 2; k++) {
        size_t n;
        unsigned char *b = slurp(tmp_path(good[k]), &n);
        ck_assert_ptr_nonnull(b);
        /* truncated at several points */
        size_t cuts[4] = {n / 2, n - 20, 10, 3};
        for (int c = 0; c < 4; c++) {
            spit(tmp_path("trunc"), b, cuts[c]);
            expect_read_error(tmp_path("trunc"));
        }
        /* bit flips: must not crash; either an error or a well-formed image */
        for (int trial = 0; trial < 40; trial++) {
            unsigned char *c = malloc(n);
            memcpy(c, b, n);
            for (int f = 0; f < 4; f++) {
                size_t at = 2 + rng() % (n - 2);
                c[at] ^= (unsigned char)(1u << (rng() % 8));
            }
            spit(tmp_path("flip"), c, n);
            mvd_image out;
            mv_error_clear();
            int rc = mvd_image_read(tmp_path("flip"), &out);
            if (rc == 0) {
                ck_assert(out.width > 0 && out.height > 0 && out.data);
                mvd_image_free(&out);
            } else {
                ck_assert_ptr_nonnull(strstr(mv_error_last(), tmp_path("flip")));
            }
            free(c);
        }
        free(b);
    }
    spit(tmp_path("empty.png"), NULL, 0);
    expect_read_error(tmp_path("empty.png"));
    const char *text = "hello, this is not an image\n";
    spit(tmp_path("text.jpg"), (const unsigned char *)text, strlen(text));
    expect_read_error(tmp_path("text.jpg"));
    /* right magic, garbage after */
    unsigned char fake[64] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10};
    spit(tmp_path("fake.jpg"), fake, sizeof fake);
    expect_read_error(tmp_path("fake.jpg"));
    unsigned char fakepng[40] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    spit(tmp_path("fake.png"), fakepng, sizeof fakepng);
    expect_read_error(tmp_path("fake.png"));
    expect_read_error(tmp_path("does_not_exist.png"));
    expect_read_error(tmpdir); /* a directory */
}
END_TEST

START_TEST(test_any_nonzero) {
    mvd_image m;
    ck_assert_int_eq(mvd_image_alloc(&m, 30, 20, 1), 0);
    ck_assert_int_eq(mvd_image_write_png(tmp_path("m0.png"), &m), 0);
    m.data[19 * 30 + 29] = 1; /* last pixel */
    ck_assert_int_eq(mvd_image_write_png(tmp_path("m1.png"), &m), 0);
    int any = -1;
    ck_assert_int_eq(mvd_image_any_nonzero(tmp_path("m0.png"), &any), 0);
    ck_assert_int_eq(any, 0);
    ck_assert_int_eq(mvd_image_any_nonzero(tmp_path("m1.png"), &any), 0);
    ck_assert_int_eq(any, 1);
    mvd_image_free(&m);
}
END_TEST

/* ---- resize -------------------------------------------------------------------- */

/* PyTorch upsample_bilinear2d (align_corners=False), written out in 2-D. */
static double ref_bilinear(const float *in, int w, int h, int ox, int oy, int ow, int oh) {
    double sy = (double)h / oh * (oy + 0.5) - 0.5, sx = (double)w / ow * (ox + 0.5) - 0.5;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int y0 = (int)sy, x0 = (int)sx;
    int y1 = y0 + (y0 < h - 1), x1 = x0 + (x0 < w - 1);
    double ly = sy - y0, lx = sx - x0;
    return (1 - ly) * ((1 - lx) * in[y0 * w + x0] + lx * in[y0 * w + x1]) +
           ly * ((1 - lx) * in[y1 * w + x0] + lx * in[y1 * w + x1]);
}

static double ref_cubic_w(double x) { /* A = -0.75 */
    const double A = -0.75;
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

static double ref_bicubic(const float *in, int w, int h, int ox, int oy, int ow, int oh) {
    double sy = (double)h / oh * (oy + 0.5) - 0.5, sx = (double)w / ow * (ox + 0.5) - 0.5;
    int fy = (int)floor(sy), fx = (int)floor(sx);
    double s = 0;
    for (int j = -1; j <= 2; j++)
        for (int i = -1; i <= 2; i++) {
            int yy = fy + j, xx = fx + i;
            yy = yy < 0 ? 0 : (yy >= h ? h - 1 : yy);
            xx = xx < 0 ? 0 : (xx >= w ? w - 1 : xx);
            s += ref_cubic_w(sy - (fy + j)) * ref_cubic_w(sx - (fx + i)) * in[yy * w + xx];
        }
    return s;
}

START_TEST(test_resize_upsample_vs_pytorch) {
    const int sizes[][4] = {{5, 7, 13, 11}, {4, 4, 9, 16}, {3, 6, 3, 10}, {1, 5, 4, 8}};
    for (int s = 0; s < 4; s++) {
        int w = sizes[s][0], h = sizes[s][1], ow = sizes[s][2], oh = sizes[s][3];
        float *in = malloc(sizeof(float) * w * h), *out = malloc(sizeof(float) * ow * oh);
        for (int i = 0; i < w * h; i++) in[i] = (float)(rng() % 1000) / 100.0f - 5.0f;
        for (int mode = MVD_RESIZE_BILINEAR; mode <= MVD_RESIZE_BICUBIC; mode++)
            for (int aa = 0; aa < 2; aa++) { /* upsampling: the same with and without antialias */
                ck_assert_int_eq(mvd_resize_f32(in, w, h, 1, out, ow, oh, (mvd_resize_mode)mode,
                                                aa ? MVD_AA_NONE : MVD_AA_SHRINK), 0);
                for (int y = 0; y < oh; y++)
                    for (int x = 0; x < ow; x++) {
                        double r = mode == MVD_RESIZE_BILINEAR ? ref_bilinear(in, w, h, x, y, ow, oh)
                                                               : ref_bicubic(in, w, h, x, y, ow, oh);
                        ck_assert_msg(fabs(out[y * ow + x] - r) < 1e-5,
                                      "mode %d %dx%d->%dx%d at (%d,%d): %g vs %g", mode, w, h, ow,
                                      oh, x, y, out[y * ow + x], r);
                    }
            }
        free(in);
        free(out);
    }
}
END_TEST

START_TEST(test_resize_nearest) {
    const int sizes[][2] = {{10, 3}, {3, 10}, {7, 7}, {224, 1024}, {1024, 224}, {5, 17}};
    for (int s = 0; s < 6; s++) {
        int in_w = sizes[s][0], out_w = sizes[s][1];
        float *in = malloc(sizeof(float) * in_w * 2), *out = malloc(sizeof(float) * out_w * 2);
        for (int i = 0; i < in_w * 2; i++) in[i] = (float)i;
        ck_assert_int_eq(mvd_resize_f32(in, in_w, 2, 1, out, out_w, 2, MVD_RESIZE_NEAREST, MVD_AA_SHRINK), 0);
        float scale = (float)in_w / (float)out_w;
        for (int x = 0; x < out_w; x++) {
            int src = (int)floorf(x * scale);
            if (src > in_w - 1) src = in_w - 1;
            ck_assert_float_eq(out[x], in[src]);
            ck_assert_float_eq(out[out_w + x], in[in_w + src]);
        }
        free(in);
        free(out);
    }
    /* uint8 with channels */
    uint8_t src[4 * 2 * 3], dst[8 * 4 * 3];
    for (int i = 0; i < 24; i++) src[i] = (uint8_t)(i * 10);
    ck_assert_int_eq(mvd_resize_u8(src, 4, 2, 3, dst, 8, 4, MVD_RESIZE_NEAREST, MVD_AA_SHRINK), 0);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++)
            for (int c = 0; c < 3; c++)
                ck_assert_int_eq(dst[(y * 8 + x) * 3 + c], src[((y / 2) * 4 + x / 2) * 3 + c]);
}
END_TEST

START_TEST(test_resize_downsample_antialias) {
    for (int mode = MVD_RESIZE_BILINEAR; mode <= MVD_RESIZE_BICUBIC; mode++) {
        /* constant stays constant */
        const int w = 101, h = 64, ow = 23, oh = 13;
        float *in = malloc(sizeof(float) * w * h), *out = malloc(sizeof(float) * ow * oh);
        for (int i = 0; i < w * h; i++) in[i] = 3.25f;
        ck_assert_int_eq(mvd_resize_f32(in, w, h, 1, out, ow, oh, (mvd_resize_mode)mode, MVD_AA_SHRINK), 0);
        for (int i = 0; i < ow * oh; i++) ck_assert_msg(fabsf(out[i] - 3.25f) < 1e-5, "%g", out[i]);
        /* ramp in x with an integer factor: the interior stays exactly a ramp
         * at the output pixel centres (x_src = (ox + 0.5) * scale - 0.5) */
        const int rw = 64, rh = 4, row = 16, roh = 4;
        float *ramp = malloc(sizeof(float) * rw * rh), *rout = malloc(sizeof(float) * row * roh);
        for (int y = 0; y < rh; y++)
            for (int x = 0; x < rw; x++) ramp[y * rw + x] = 2.0f * x + 1.0f;
        ck_assert_int_eq(mvd_resize_f32(ramp, rw, rh, 1, rout, row, roh, (mvd_resize_mode)mode, MVD_AA_SHRINK), 0);
        for (int x = 2; x < row - 2; x++) {
            double ideal = 2.0 * ((x + 0.5) * 4.0 - 0.5) + 1.0;
            ck_assert_msg(fabs(rout[x] - ideal) < 1e-4, "mode %d ramp x=%d: %g vs %g", mode, x, rout[x], ideal);
            ck_assert_msg(fabs(rout[3 * row + x] - ideal) < 1e-4, "ramp row 3");
        }
        /* non-integer factor: monotone and within a small fraction of the ideal */
        const int nw = 100, now = 37;
        float *nr = malloc(sizeof(float) * nw), *nout = malloc(sizeof(float) * now);
        for (int x = 0; x < nw; x++) nr[x] = (float)x;
        ck_assert_int_eq(mvd_resize_f32(nr, nw, 1, 1, nout, now, 1, (mvd_resize_mode)mode, MVD_AA_SHRINK), 0);
        for (int x = 3; x < now - 3; x++) {
            double ideal = (x + 0.5) * nw / (double)now - 0.5;
            ck_assert_msg(fabs(nout[x] - ideal) < 0.05, "mode %d ramp 100->37 x=%d: %g vs %g", mode, x, nout[x], ideal);
            ck_assert(nout[x] > nout[x - 1]);
        }
        /* antialias removes a pixel-level checkerboard; plain interpolation aliases it */
        float *cb = malloc(sizeof(float) * 64 * 64), *cbo = malloc(sizeof(float) * 20 * 20);
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) cb[y * 64 + x] = ((x + y) & 1) ? 255.0f : 0.0f;
        ck_assert_int_eq(mvd_resize_f32(cb, 64, 64, 1, cbo, 16, 16, (mvd_resize_mode)mode, MVD_AA_SHRINK), 0);
        for (int y = 2; y < 14; y++)
            for (int x = 2; x < 14; x++) ck_assert_msg(fabsf(cbo[y * 16 + x] - 127.5f) < 1.0f, "aa %g", cbo[y * 16 + x]);
        /* factor 3: plain interpolation samples single pixels (src = 3 o + 1) */
        for (int y = 0; y < 60; y++)
            for (int x = 0; x < 60; x++) cb[y * 60 + x] = ((x + y) & 1) ? 255.0f : 0.0f;
        ck_assert_int_eq(mvd_resize_f32(cb, 60, 60, 1, cbo, 20, 20, (mvd_resize_mode)mode, MVD_AA_NONE), 0);
        double dev = 0;
        for (int i = 0; i < 400; i++) dev = fmax(dev, fabs(cbo[i] - 127.5));
        ck_assert_msg(dev > 50, "without antialias the checkerboard should alias (dev %g)", dev);
        free(in), free(out), free(ramp), free(rout), free(nr), free(nout), free(cb), free(cbo);
    }
}
END_TEST

/* Reference values from Pillow 9.4 Image.resize (BILINEAR / BICUBIC) of the
 * pattern below: the uint8 PIL path must be bit-exact. */
static void pil_pattern(mvd_image *img) {
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < 3; c++)
                img->data[(y * img->width + x) * 3 + c] = (uint8_t)((x * 37 + y * 91 + c * 50 + x * y * 13) % 256);
}

START_TEST(test_resize_pil_exact) {
    static const uint8_t pil_bil[36] = {
        107, 133, 141, 138, 137, 143, 139, 138, 131, 131, 121, 104, 122, 146, 118, 148, 123, 122, 137, 113, 142, 124, 116, 137,
        109, 159, 144, 142, 113, 157, 137, 124, 128, 150, 117, 133,
    };
    static const uint8_t pil_bic[36] = {
        103, 130, 142, 139, 141, 144, 140, 140, 133, 130, 120, 101, 128, 149, 114, 148, 124, 117, 137, 107, 143, 124, 118, 140,
        103, 163, 146, 142, 109, 161, 137, 122, 128, 151, 117, 133,
    };
    static const uint8_t pil_bicup[297] = {
        0, 39, 89, 0, 45, 95, 12, 62, 110, 30, 80, 131, 47, 95, 160, 63, 113, 187, 78, 140, 205, 95, 169, 220,
        123, 190, 238, 152, 205, 255, 164, 211, 255, 9, 56, 109, 14, 64, 117, 31, 83, 136, 51, 104, 152, 70, 124, 154,
        89, 139, 157, 108, 142, 172, 125, 144, 192, 132, 159, 213, 133, 179, 232, 134, 187, 240, 46, 93, 163, 54, 107, 174,
        73, 136, 205, 98, 166, 205, 127, 198, 138, 155, 205, 81, 186, 148, 88, 202, 81, 120, 156, 82, 150, 86, 112, 180,
        57, 123, 193, 91, 142, 183, 103, 151, 197, 126, 170, 235, 152, 194, 229, 170, 233, 125, 189, 239, 36, 226, 150, 41,
        245, 46, 81, 171, 40, 104, 64, 78, 123, 18, 92, 133, 147, 210, 103, 161, 191, 117, 195, 143, 150, 206, 115, 163,
        160, 147, 125, 122, 172, 94, 144, 141, 118, 177, 102, 150, 157, 115, 122, 117, 149, 74, 100, 162, 55, 177, 251, 23,
        193, 208, 36, 237, 106, 65, 237, 38, 97, 138, 61, 124, 54, 104, 151, 65, 131, 194, 109, 158, 218, 142, 190, 149,
        169, 219, 47, 182, 232, 4, 117, 184, 44, 134, 160, 59, 175, 102, 95, 189, 69, 121, 134, 103, 111, 88, 138, 106,
        112, 133, 141, 153, 123, 175, 157, 149, 142, 147, 185, 84, 143, 200, 60, 30, 83, 98, 46, 92, 116, 81, 109, 163,
        116, 136, 173, 134, 184, 95, 154, 204, 30, 199, 139, 50, 231, 61, 98, 181, 71, 126, 100, 118, 143, 65, 136, 151,
        0, 42, 119, 10, 64, 138, 43, 111, 189, 87, 162, 194, 134, 216, 89, 180, 230, 0, 233, 141, 14, 255, 36, 68,
        190, 41, 119, 81, 92, 166, 35, 111, 188,
    };
    struct { int w, h, ow, oh; mvd_resize_mode mode; mvd_antialias aa; const uint8_t *want; } cases[] = {
        {9, 7, 4, 3, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, pil_bil},
        {9, 7, 4, 3, MVD_RESIZE_BICUBIC, MVD_AA_SHRINK, pil_bic},
        {9, 7, 4, 3, MVD_RESIZE_BICUBIC, MVD_AA_PIL, pil_bic},
        {5, 4, 11, 9, MVD_RESIZE_BICUBIC, MVD_AA_PIL, pil_bicup},
    };
    for (int k = 0; k < 4; k++) {
        mvd_image img, out;
        ck_assert_int_eq(mvd_image_alloc(&img, cases[k].w, cases[k].h, 3), 0);
        pil_pattern(&img);
        ck_assert_int_eq(mvd_image_resize(&img, cases[k].ow, cases[k].oh, cases[k].mode, cases[k].aa, &out), 0);
        for (int i = 0; i < cases[k].ow * cases[k].oh * 3; i++)
            ck_assert_msg(out.data[i] == cases[k].want[i], "case %d element %d: %d vs PIL %d", k, i,
                          out.data[i], cases[k].want[i]);
        mvd_image_free(&out);
        /* the float path agrees up to PIL's per-pass rounding and clipping */
        if (cases[k].mode == MVD_RESIZE_BILINEAR) {
            int n = cases[k].w * cases[k].h * 3;
            float *f = malloc(sizeof(float) * n), *fo = malloc(sizeof(float) * cases[k].ow * cases[k].oh * 3);
            for (int i = 0; i < n; i++) f[i] = img.data[i];
            ck_assert_int_eq(mvd_resize_f32(f, cases[k].w, cases[k].h, 3, fo, cases[k].ow, cases[k].oh, cases[k].mode, cases[k].aa), 0);
            for (int i = 0; i < cases[k].ow * cases[k].oh * 3; i++) ck_assert(fabsf(fo[i] - cases[k].want[i]) <= 1.0f);
            free(f), free(fo);
        }
        mvd_image_free(&img);
    }
}
END_TEST

START_TEST(test_resize_identity_and_u8) {
    mvd_image img, out;
    ck_assert_int_eq(mvd_image_alloc(&img, 19, 11, 3), 0);
    fill_random(&img);
    for (int mode = 0; mode <= 2; mode++)
        for (int aa = 0; aa <= 2; aa++) {
            ck_assert_int_eq(mvd_image_resize(&img, 19, 11, (mvd_resize_mode)mode, (mvd_antialias)aa, &out), 0);
            ck_assert_int_eq(memcmp(out.data, img.data, 19 * 11 * 3), 0);
            mvd_image_free(&out);
        }
    /* uint8 = float result rounded and clamped */
    size_t n = 19 * 11 * 3;
    float *f = malloc(sizeof(float) * n), *fo = malloc(sizeof(float) * 7 * 30 * 3);
    for (size_t i = 0; i < n; i++) f[i] = img.data[i];
    for (int mode = 1; mode <= 2; mode++) {
        ck_assert_int_eq(mvd_image_resize(&img, 7, 30, (mvd_resize_mode)mode, MVD_AA_SHRINK, &out), 0);
        ck_assert_int_eq(mvd_resize_f32(f, 19, 11, 3, fo, 7, 30, (mvd_resize_mode)mode, MVD_AA_SHRINK), 0);
        for (int i = 0; i < 7 * 30 * 3; i++) {
            float v = fo[i] < 0 ? 0 : (fo[i] > 255 ? 255 : fo[i]);
            ck_assert_int_le(abs((int)out.data[i] - (int)lrintf(v)), 1);
            ck_assert_float_eq_tol(out.data[i], v, 0.5001);
        }
        mvd_image_free(&out);
    }
    free(f), free(fo);
    /* bad arguments */
    ck_assert_int_eq(mvd_image_resize(&img, 0, 5, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &out), -1);
    ck_assert_int_eq(mvd_image_resize(&img, 5, 5, (mvd_resize_mode)7, MVD_AA_SHRINK, &out), -1);
    mvd_image_free(&img);
}
END_TEST

START_TEST(test_center_crop) {
    mvd_image img, out;
    ck_assert_int_eq(mvd_image_alloc(&img, 10, 9, 1), 0);
    for (int i = 0; i < 90; i++) img.data[i] = (uint8_t)i;
    /* (10 - 5) / 2 = 2.5 -> 2 (half to even), (9 - 4) / 2 = 2.5 -> 2 */
    ck_assert_int_eq(mvd_image_center_crop(&img, 5, 4, &out), 0);
    ck_assert_int_eq(out.width, 5);
    ck_assert_int_eq(out.height, 4);
    ck_assert_int_eq(out.data[0], 2 * 10 + 2);
    ck_assert_int_eq(out.data[4 * 5 - 1], (2 + 3) * 10 + 2 + 4);
    mvd_image_free(&out);
    /* (10 - 7) / 2 = 1.5 -> 2 ; (9 - 2) / 2 = 3.5 -> 4 */
    ck_assert_int_eq(mvd_image_center_crop(&img, 7, 2, &out), 0);
    ck_assert_int_eq(out.data[0], 4 * 10 + 2);
    mvd_image_free(&out);
    ck_assert_int_eq(mvd_image_center_crop(&img, 11, 2, &out), -1);
    mvd_image_free(&img);
}
END_TEST

START_TEST(test_normalisation) {
    mvd_image img;
    ck_assert_int_eq(mvd_image_alloc(&img, 2, 1, 3), 0);
    const uint8_t px[6] = {0, 128, 255, 255, 7, 64};
    memcpy(img.data, px, 6);
    float out[6];
    ck_assert_int_eq(mvd_image_to_chw_normalized(&img, out), 0);
    const double mean[3] = {0.485, 0.456, 0.406}, sd[3] = {0.229, 0.224, 0.225};
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 2; x++) {
            double want = (px[x * 3 + c] / 255.0 - mean[c]) / sd[c];
            ck_assert_msg(fabs(out[c * 2 + x] - want) < 1e-5, "c %d x %d: %g vs %g", c, x, out[c * 2 + x], want);
        }
    ck_assert(fabs(out[1 * 2 + 0] - (128 / 255.0 - 0.456) / 0.224) < 1e-6);
    ck_assert(fabs(out[0 * 2 + 1] - (1.0 - 0.485) / 0.229) < 1e-6);
    mvd_image_free(&img);
    /* grey is replicated with each channel's own statistics */
    ck_assert_int_eq(mvd_image_alloc(&img, 1, 1, 1), 0);
    img.data[0] = 200;
    float g[3];
    ck_assert_int_eq(mvd_image_to_chw_normalized(&img, g), 0);
    for (int c = 0; c < 3; c++) ck_assert(fabs(g[c] - (200 / 255.0 - mean[c]) / sd[c]) < 1e-5);
    mvd_image_free(&img);
}
END_TEST

START_TEST(test_preprocess_file_and_mask) {
    mvd_image img, small;
    ck_assert_int_eq(mvd_image_alloc(&img, 64, 48, 3), 0);
    fill_random(&img);
    ck_assert_int_eq(mvd_image_write_png(tmp_path("pre.png"), &img), 0);
    float *got = malloc(sizeof(float) * 3 * 20 * 28), *want = malloc(sizeof(float) * 3 * 20 * 28);
    ck_assert_int_eq(mvd_preprocess_file(tmp_path("pre.png"), 20, 28, got), 0);
    ck_assert_int_eq(mvd_image_resize(&img, 28, 20, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &small), 0);
    ck_assert_int_eq(mvd_image_to_chw_normalized(&small, want), 0);
    ck_assert_int_eq(memcmp(got, want, sizeof(float) * 3 * 20 * 28), 0);
    mvd_image_free(&small);
    /* resize_short + centre crop */
    mvd_preprocess_opts o;
    mvd_preprocess_opts_default(&o);
    ck_assert_int_eq(o.height, 224);
    o.height = 20, o.width = 20, o.resize_short = 24, o.mode = MVD_RESIZE_BICUBIC;
    ck_assert_int_eq(mvd_preprocess_file_opts(tmp_path("pre.png"), &o, got), 0);
    mvd_image r, c;
    ck_assert_int_eq(mvd_image_resize(&img, 32, 24, MVD_RESIZE_BICUBIC, MVD_AA_SHRINK, &r), 0);
    ck_assert_int_eq(mvd_image_center_crop(&r, 20, 20, &c), 0);
    ck_assert_int_eq(mvd_image_to_chw_normalized(&c, want), 0);
    ck_assert_int_eq(memcmp(got, want, sizeof(float) * 3 * 20 * 20), 0);
    mvd_image_free(&r), mvd_image_free(&c), mvd_image_free(&img);
    ck_assert_int_eq(mvd_preprocess_file(tmp_path("missing.png"), 20, 20, got), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "missing.png"));
    free(got), free(want);

    /* mask: a single tiny defect pixel (value 7) that nearest resizing drops */
    mvd_image m;
    ck_assert_int_eq(mvd_image_alloc(&m, 100, 100, 1), 0);
    m.data[1 * 100 + 1] = 7;
    ck_assert_int_eq(mvd_image_write_png(tmp_path("mask1.png"), &m), 0);
    uint8_t mo[10 * 10];
    int lab = -1;
    ck_assert_int_eq(mvd_preprocess_mask(tmp_path("mask1.png"), 10, 10, mo, &lab), 0);
    ck_assert_int_eq(lab, 1);
    for (int i = 0; i < 100; i++) ck_assert_int_eq(mo[i], 0);
    /* a block: binarised to 1, nearest-resized */
    for (int y = 50; y < 100; y++)
        for (int x = 0; x < 30; x++) m.data[y * 100 + x] = 255;
    ck_assert_int_eq(mvd_image_write_png(tmp_path("mask2.png"), &m), 0);
    ck_assert_int_eq(mvd_preprocess_mask(tmp_path("mask2.png"), 10, 10, mo, &lab), 0);
    ck_assert_int_eq(lab, 1);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++) ck_assert_int_eq(mo[y * 10 + x], (y >= 5 && x < 3) ? 1 : 0);
    mvd_image_free(&m);
    memset(mo, 9, sizeof mo);
    ck_assert_int_eq(mvd_preprocess_mask(NULL, 10, 10, mo, &lab), 0);
    ck_assert_int_eq(lab, 0);
    for (int i = 0; i < 100; i++) ck_assert_int_eq(mo[i], 0);
    ck_assert_int_eq(mvd_preprocess_mask(tmp_path("nomask.png"), 10, 10, mo, &lab), -1);
}
END_TEST

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_image_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_png_roundtrip_grey_rgb);
    tcase_add_test(tc, test_jpeg_roundtrip);
    tcase_add_test(tc, test_write_deterministic);
    tcase_add_test(tc, test_png_variants);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_any_nonzero);
    tcase_add_test(tc, test_resize_upsample_vs_pytorch);
    tcase_add_test(tc, test_resize_nearest);
    tcase_add_test(tc, test_resize_downsample_antialias);
    tcase_add_test(tc, test_resize_pil_exact);
    tcase_add_test(tc, test_resize_identity_and_u8);
    tcase_add_test(tc, test_center_crop);
    tcase_add_test(tc, test_normalisation);
    tcase_add_test(tc, test_preprocess_file_and_mask);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree(tmpdir);
    return failed ? 1 : 0;
}
