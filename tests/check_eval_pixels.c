/* check_eval_pixels: eval's pixels at the evaluation size (eval_pixels.h):
 * image sizes from PNG/JPEG headers, masks read as grey and binarised at
 * > 127 (nearest-resized when their size differs), maps resized as OpenCV
 * does, and both pixel metric sets over views of different sizes. */
#include "data/image.h"
#include "mvead/run/eval_pixels.h"
#include "mvead/scoring/adeval.h"
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void write_grey(const char *path, int w, int h, const uint8_t *px, bool jpeg) {
    mvd_image img;
    ck_assert_int_eq(mvd_image_alloc(&img, w, h, 1), 0);
    memcpy(img.data, px, (size_t)w * h);
    ck_assert_int_eq(jpeg ? mvd_image_write_jpeg(path, &img, 95) : mvd_image_write_png(path, &img), 0);
    mvd_image_free(&img);
}

START_TEST(test_header_size) {
    uint8_t px[37 * 23] = {0};
    char p[300];
    int w = 0, h = 0;
    snprintf(p, sizeof p, "%s/a.png", dir);
    write_grey(p, 37, 23, px, false);
    ck_assert_int_eq(mvead_image_header_size(p, &w, &h), 0);
    ck_assert(w == 37 && h == 23);
    snprintf(p, sizeof p, "%s/a.jpg", dir);
    write_grey(p, 37, 23, px, true);
    ck_assert_int_eq(mvead_image_header_size(p, &w, &h), 0);
    ck_assert(w == 37 && h == 23);
    snprintf(p, sizeof p, "%s/junk.jpg", dir);
    FILE *f = fopen(p, "wb");
    fputs("not an image", f);
    fclose(f);
    ck_assert_int_eq(mvead_image_header_size(p, &w, &h), -1);
    ck_assert(strstr(mv_error_last(), "junk.jpg") != NULL);
    mv_error_clear();
}
END_TEST

/* Two views: 0 with a 12 x 10 image and a mask of grey levels 0 / 100 / 200
 * (only 200 is a defect), 1 an OK view with a 6 x 8 image. Network maps 4 x 4. */
START_TEST(test_build_and_metrics) {
    char img0[300], img1[300], mask0[300];
    uint8_t m0[12 * 10], blank[12 * 10] = {0};
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 12; x++) m0[y * 12 + x] = x < 4 ? 0 : x < 8 ? 100 : 200;
    snprintf(img0, sizeof img0, "%s/v0.jpg", dir);
    snprintf(img1, sizeof img1, "%s/v1.png", dir);
    snprintf(mask0, sizeof mask0, "%s/v0_mask.png", dir);
    write_grey(img0, 12, 10, blank, true);
    write_grey(img1, 6, 8, blank, false);
    write_grey(mask0, 12, 10, m0, false);
    const char *images[2] = {img0, img1}, *masks[2] = {mask0, ""};
    float maps[2 * 16];
    for (int k = 0; k < 32; k++) maps[k] = (float)((k * 7) % 11) + (k % 4 == 3 ? 5.0f : 0.0f);
    mvead_scratch_pool pool;
    mvead_scratch_pool_init(&pool, 1 << 20, dir);
    mvead_eval_pixels px;
    /* original: each view at its image's size */
    ck_assert_msg(mvead_eval_pixels_build(0, 2, images, masks, maps, 4, 4, &pool, &px) == 0, "%s", mv_error_last());
    ck_assert(px.size[0] == 10 && px.size[1] == 12 && px.size[2] == 8 && px.size[3] == 6);
    ck_assert_int_eq(px.off[2], 120 + 48);
    for (int k = 0; k < 120; k++) ck_assert_int_eq(px.masks[k], m0[k] > 127);
    for (int k = 120; k < 168; k++) ck_assert_int_eq(px.masks[k], 0);
    float want[120];
    ck_assert_int_eq(mvs_resize_linear_cv(maps, 4, 4, want, 10, 12), 0);
    ck_assert(!memcmp(want, px.maps, sizeof want));
    /* both sets over the two views (different sizes) */
    int64_t views[2] = {0, 1};
    double ex[3], ad[3];
    ck_assert_int_eq(mvead_pixel_metrics_exact(&px, views, 2, &pool, ex), 0);
    ck_assert_int_eq(mvead_pixel_metrics_adeval(&px, views, 2, ad), 0);
    double s[168];
    uint8_t l[168];
    for (int k = 0; k < 168; k++) { s[k] = px.maps[k]; l[k] = px.masks[k]; }
    int st;
    ck_assert(ex[0] == mvs_auroc(s, l, 168, &st));
    ck_assert(ex[1] == mvs_average_precision(s, l, 168, &st));
    int64_t sizes[4] = {10, 12, 8, 6};
    ck_assert(ex[2] == mvs_aupro_sizes(s, l, 2, sizes, 0.3, &st));
    mvs_adeval_hist h;
    double lo = INFINITY, hi = -INFINITY;
    ck_assert_int_eq(mvs_adeval_range(s, 168, &lo, &hi, "test"), 0);
    ck_assert_int_eq(mvs_adeval_init(&h, lo, hi, MVS_ADEVAL_STRIPS), 0);
    ck_assert_int_eq(mvs_adeval_add_map(&h, px.maps, px.masks, 10, 12), 0);
    ck_assert_int_eq(mvs_adeval_add_map(&h, px.maps + 120, px.masks + 120, 8, 6), 0);
    ck_assert(ad[0] == mvs_adeval_auroc(&h, &st) && ad[1] == mvs_adeval_aupr(&h, &st));
    ck_assert(ad[2] == mvs_adeval_aupro(&h, 0.3, &st));
    mvs_adeval_free(&h);
    mvead_eval_pixels_free(&px, &pool);
    /* N: every view N x N; the mask nearest-resized (OpenCV: floor(d * src / dst)) */
    ck_assert_int_eq(mvead_eval_pixels_build(6, 2, images, masks, maps, 4, 4, &pool, &px), 0);
    ck_assert(px.size[0] == 6 && px.size[1] == 6 && px.off[2] == 72);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) ck_assert_int_eq(px.masks[y * 6 + x], m0[(y * 10 / 6) * 12 + x * 2] > 127);
    mvead_eval_pixels_free(&px, &pool);
    /* a missing mask file: an error naming the view */
    const char *bad_masks[2] = {"/nonexistent/mask.png", ""};
    ck_assert_int_eq(mvead_eval_pixels_build(6, 2, images, bad_masks, maps, 4, 4, &pool, &px), -1);
    ck_assert(strstr(mv_error_last(), "v0.jpg") != NULL);
    mv_error_clear();
    mvead_scratch_pool_free(&pool);
}
END_TEST

static Suite *eval_pixels_suite(void) {
    Suite *s = suite_create("eval_pixels");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_header_size);
    tcase_add_test(tc, test_build_and_metrics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/check_eval_pixels_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return EXIT_FAILURE;
    SRunner *sr = srunner_create(eval_pixels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
