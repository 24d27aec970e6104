/* seedgen: writes the small valid inputs the fuzz seed corpora start from
 * (fuzz/corpus/<target>/seed-*). Run by `fuzz/run.sh seeds` only when the
 * corpora are regenerated (the outputs are committed); not part of any test.
 * Usage: seedgen OUTDIR   (makes OUTDIR/<target>/seed-*) */
#include "data/cache.h"
#include "data/image.h"
#include "mvead/geometry/calibration.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/run_config.h"
#include "nn/adamw.h"
#include "autograd/autograd.h"
#include "mvead/method/eam.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include <stdio.h>
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char out_dir[512];

static const char *seed_path(const char *target, const char *name) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", out_dir, target);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", out_dir, target, name);
    return p;
}

static void die(const char *what) {
    fprintf(stderr, "seedgen: %s: %s\n", what, mv_error_last());
    exit(1);
}

/* ---- safetensors: one file per dtype, plus a 0-d and an empty tensor ---- */
static void seeds_safetensors(void) {
    int64_t s2[2] = {2, 3}, s1[1] = {4}, s0[1] = {0};
    mvt_tensor *a = mvt_zeros(MVT_F32, 2, s2), *b = mvt_zeros(MVT_F32, 1, s1), *e = mvt_zeros(MVT_F32, 1, s0);
    for (int i = 0; i < 6; i++) mvt_f32(a)[i] = 0.5f * (float)i - 1.0f;
    for (int i = 0; i < 4; i++) mvt_f32(b)[i] = (float)(i * i);
    const char *names[3] = {"embeddings.weight", "layer.0.bias", "empty"};
    const mvt_tensor *ts[3] = {a, b, e};
    const mvn_st_dtype dts[4] = {MVN_ST_F32, MVN_ST_F16, MVN_ST_BF16, MVN_ST_F64};
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "seed-%s.safetensors", mvn_st_dtype_name(dts[k]));
        if (mvn_st_write(seed_path("fuzz_safetensors", name), k == 0 ? 3 : 2, names, ts, dts[k])) die("safetensors");
    }
    mvt_release(a);
    mvt_release(b);
    mvt_release(e);
}

/* ---- calibration: from cameras (with the cameras) and a pairs-only copy ---- */
static void seeds_calibration(void) {
    enum { V = 3 };
    double K[V * 9], R[V * 9], t[V * 3];
    for (int v = 0; v < V; v++) {
        double f = 100 + 10 * v, ang = 0.4 * v, c = 1, s = 0;
        c = __builtin_cos(ang);
        s = __builtin_sin(ang);
        double k[9] = {f, 0, 32, 0, f, 32, 0, 0, 1};
        double r[9] = {c, 0, s, 0, 1, 0, -s, 0, c};
        memcpy(K + 9 * v, k, sizeof k);
        memcpy(R + 9 * v, r, sizeof r);
        t[3 * v] = 0.1 * v;
        t[3 * v + 1] = -0.05 * v;
        t[3 * v + 2] = 4.0;
    }
    mvg_calibration c;
    if (mvg_calibration_from_cameras(&c, V, 64, 48, K, R, t)) die("calibration");
    snprintf(c.source, sizeof c.source, "cameras");
    if (mvg_calibration_write_json(seed_path("fuzz_calibration", "seed-cameras.json"), &c)) die("calibration");
    c.has_cameras = false;
    snprintf(c.source, sizeof c.source, "correspondences");
    c.n_corr[0][1] = 40;
    c.n_inliers[0][1] = 37;
    c.rms_px[0][1] = 0.3;
    if (mvg_calibration_write_json(seed_path("fuzz_calibration", "seed-pairs.json"), &c)) die("calibration");
}

/* ---- feature caches: train (float32, no masks) and test (float16, masks) ---- */
static void write_cache(const char *name, bool half, bool masks) {
    enum { S = 2, V = 2, GH = 2, GW = 2, N = GH * GW, D = 4, P = 4, H = GH * P, W = GW * P };
    mvd_cache_info in;
    memset(&in, 0, sizeof in);
    in.S = S; in.V = V; in.N = N; in.D = D; in.H = H; in.W = W; in.P = P;
    in.grid_h = GH; in.grid_w = GW; in.layer = 1; in.half = half; in.has_masks = masks;
    snprintf(in.backbone, sizeof in.backbone, "tiny");
    snprintf(in.backbone_hash, sizeof in.backbone_hash, "0123abcd");
    snprintf(in.split, sizeof in.split, masks ? "test" : "train");
    const char *cat[S] = {"toy", "toy"}, *sid[S] = {"0001", "0002"}, *acl[S] = {"OK", masks ? "AK" : "OK"};
    const char *ip[S * V] = {"a/1_C1.jpg", "a/1_C2.jpg", "a/2_C1.jpg", "a/2_C2.jpg"};
    const char *mp[S * V] = {"", "", masks ? "m/2_C1.png" : "", ""};
    int64_t vl[S * V] = {0, 0, masks, 0}, sl[S] = {0, masks};
    mvd_cache_meta meta = {cat, sid, acl, ip, mp, vl, sl};
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/tmp-%s", out_dir, name);
    int64_t done = 0;
    mvd_cache_writer *w = mvd_cache_begin(tmp, &in, &meta, &done);
    if (!w) die("cache");
    float feat[V * N * D];
    uint8_t m[V * H * W];
    for (int i = 0; i < S; i++) {
        for (int k = 0; k < V * N * D; k++) feat[k] = 0.25f * (float)((k * 7 + i) % 11) - 1.0f;
        for (int k = 0; k < V * H * W; k++) m[k] = (uint8_t)(i == 1 && k < H * W && (k % W) < 3 ? 255 : 0);
        if (mvd_cache_write(w, i, feat, masks ? m : NULL)) die("cache");
    }
    if (mvd_cache_finish(w)) die("cache");
    if (rename(tmp, seed_path("fuzz_cache", name))) die("cache rename");
}

/* ---- checkpoint: an 8-dim, 2-head EAM, centres, AdamW moments, a short log ---- */
static void seeds_checkpoint(void) {
    mvead_config c;
    mvead_config_defaults(&c);
    mvead_state s;
    memset(&s, 0, sizeof s);
    if (mvead_eam_init_random(&s.eam, 8, 2, MVT_F32, 7)) die("eam");
    s.has_eam = true;
    int64_t cs[3] = {2, 2, 8};
    s.centers = mvt_zeros(MVT_F64, 3, cs);
    for (int i = 0; i < 32; i++) mvt_f64(s.centers)[i] = 0.1 * i;
    s.epochs_done = 1;
    s.steps = 2;
    s.log_pos = calloc(2, sizeof(double));
    s.log_neg = calloc(2, sizeof(double));
    s.log_total = calloc(2, sizeof(double));
    s.log_epoch = calloc(2, sizeof(int64_t));
    s.log_total[0] = 1.5;
    s.log_total[1] = 1.25;
    mva_var *p[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&s.eam, p);
    mvn_adamw *opt = mvn_adamw_new(p, MVEAD_EAM_NPARAMS);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/tmp-checkpoint.h5", out_dir);
    if (mvead_checkpoint_save(tmp, &c, &s, opt)) die("checkpoint");
    if (rename(tmp, seed_path("fuzz_checkpoint", "seed-eam.h5"))) die("checkpoint rename");
    mvn_adamw_free(opt);
    mvead_state_free(&s);
    /* no EAM (fusion none), no optimiser */
    memset(&s, 0, sizeof s);
    snprintf(c.fusion, sizeof c.fusion, "none");
    if (mvead_checkpoint_save(tmp, &c, &s, NULL)) die("checkpoint");
    if (rename(tmp, seed_path("fuzz_checkpoint", "seed-none.h5"))) die("checkpoint rename");
}

/* ---- images: our writers plus libpng/libjpeg variants the writers never make ---- */
static void write_png_raw(const char *name, int w, int h, int color_type, int depth, int interlace) {
    FILE *f = fopen(seed_path("fuzz_image", name), "wb");
    png_structp pp = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = png_create_info_struct(pp);
    if (setjmp(png_jmpbuf(pp))) { fprintf(stderr, "seedgen: png %s\n", name); exit(1); }
    png_init_io(pp, f);
    png_set_IHDR(pp, pi, (png_uint_32)w, (png_uint_32)h, depth, color_type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(pp, pi, pal, 4);
    }
    png_write_info(pp, pi);
    int ch = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGBA ? 4 : color_type == PNG_COLOR_TYPE_GA ? 2 : 1;
    size_t rowbytes = png_get_rowbytes(pp, pi);
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) {
        rows[y] = calloc(rowbytes, 1);
        for (size_t x = 0; x < rowbytes; x++) rows[y][x] = (png_byte)((color_type == PNG_COLOR_TYPE_PALETTE) ? ((x + y) % 4) * (depth == 8) : (x * 13 + y * 7 + ch));
    }
    png_set_rows(pp, pi, rows);
    png_write_image(pp, rows);
    png_write_end(pp, NULL);
    png_destroy_write_struct(&pp, &pi);
    fclose(f);
    for (int y = 0; y < h; y++) free(rows[y]);
    free(rows);
}

static void write_jpeg_raw(const char *name, int w, int h, int ch, int progressive) {
    FILE *f = fopen(seed_path("fuzz_image", name), "wb");
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = ch;
    ci.in_color_space = ch == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 75, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * ch);
    while (ci.next_scanline < ci.image_height) {
        for (int x = 0; x < w * ch; x++) row[x] = (unsigned char)(x * 5 + ci.next_scanline * 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    fclose(f);
}

static void seeds_image(void) {
    mvd_image img;
    if (mvd_image_alloc(&img, 8, 6, 3)) die("image");
    for (int i = 0; i < 8 * 6 * 3; i++) img.data[i] = (uint8_t)(i * 11);
    if (mvd_image_write_png(seed_path("fuzz_image", "seed-rgb.png"), &img)) die("png");
    if (mvd_image_write_jpeg(seed_path("fuzz_image", "seed-rgb.jpg"), &img, 90)) die("jpeg");
    mvd_image_free(&img);
    write_png_raw("seed-grey16.png", 5, 4, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE);
    write_png_raw("seed-palette.png", 5, 4, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE);
    write_png_raw("seed-rgba-adam7.png", 9, 7, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_ADAM7);
    write_png_raw("seed-ga.png", 4, 4, PNG_COLOR_TYPE_GA, 8, PNG_INTERLACE_NONE);
    write_png_raw("seed-grey1.png", 10, 3, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE);
    write_jpeg_raw("seed-grey.jpg", 9, 9, 1, 0);
    write_jpeg_raw("seed-progressive.jpg", 17, 9, 3, 1);
}

/* ---- config.json: the defaults as the program writes them ---- */
static void seeds_config(void) {
    mvead_config c;
    mvead_config_defaults(&c);
    if (mvead_config_write_json(&c, seed_path("fuzz_config", "seed-defaults.json"))) die("config");
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: seedgen OUTDIR\n"); return 2; }
    snprintf(out_dir, sizeof out_dir, "%s", argv[1]);
    mkdir(out_dir, 0755);
    seeds_safetensors();
    seeds_calibration();
    write_cache("seed-train.h5", false, false);
    write_cache("seed-test-f16.h5", true, true);
    seeds_checkpoint();
    seeds_image();
    seeds_config();
    return 0;
}
