/* check_report: the run report and the run comparison on a hand-made run
 * folder (metrics.json, scores.h5, loss.csv, config.json, one heatmap): the
 * page is self-contained (no script, no external URL, images inline), its
 * table and curves carry the expected numbers (AUROC/AP of known scores, with
 * ties), the gallery picks the worst views, and missing inputs are errors
 * naming the file. No fixtures needed. */
#include "data/h5io.h"
#include "data/image.h"
#include "mvead/run/stages.h"
#include "mvead/run/paths.h"
#include "mvead/run/run_config.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[256];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t r = fread(b, 1, (size_t)n, f);
    b[r] = 0;
    fclose(f);
    return b;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* 4 samples x 2 views, category "widget": samples 0, 1 good, 2, 3 defective.
 * Sample scores 0.1 0.4 0.35 0.8 -> AUROC 3/4, AP (1 + 2/3)/2. Image scores
 * with a tie between a good and a defective view. */
static void make_run(const mvead_config *c) {
    char dir[512], path[600];
    ck_assert_int_eq(mvead_run_dir(c, dir, sizeof dir, true), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    ck_assert_int_eq(mvead_config_write_json(c, path), 0);
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    write_text(path, "{\"setting\": \"single-class\", \"mean_over_categories\": {\"image_auroc\": 0.915, \"image_ap\": 0.887,"
                     " \"sample_auroc\": 0.962, \"sample_ap\": 0.98, \"pixel_auroc\": 0.5, \"pixel_ap\": null, \"pixel_aupro\": 0.25},"
                     " \"per_category\": {\"widget\": {\"image_auroc\": 0.915, \"image_ap\": 0.887, \"sample_auroc\": 0.962,"
                     " \"sample_ap\": 0.98, \"pixel_auroc\": 0.5, \"pixel_ap\": null, \"pixel_aupro\": 0.25}},"
                     " \"run\": {\"fusion\": \"eam\", \"objective\": \"mcp+reg\", \"init\": \"copy\", \"bank_mode\": \"per-view\", \"epochs\": 3}}");
    snprintf(path, sizeof path, "%s/loss.csv", dir);
    write_text(path, "step,epoch,pos,neg,total\n0,0,2.0,-1.0,1.9\n1,0,1.5,-1.2,1.38\n2,1,1.2,-1.3,1.07\n");
    snprintf(path, sizeof path, "%s/scores.h5", dir);
    mvd_h5_writer w;
    ck_assert_int_eq(mvd_h5_create(&w, path, "scores", MVEAD_SCORES_FORMAT), 0);
    double img[8] = {0.1, 0.05, 0.4, 0.3, 0.35, 0.3, 0.8, 0.2}, smp[4] = {0.1, 0.4, 0.35, 0.8};
    int64_t vl[8] = {0, 0, 0, 0, 1, 1, 1, 0}, sl[4] = {0, 0, 1, 1}, s2[2] = {4, 2}, s1[1] = {4};
    const char *cat[4] = {"widget", "widget", "widget", "widget"}, *sid[4] = {"S0001", "S0002", "S0003", "S0004"};
    const char *acl[4] = {"OK", "OK", "AK", "QS"};
    ck_assert_int_eq(mvd_h5_write_f64(w.file, "image_scores", 2, s2, img), 0);
    ck_assert_int_eq(mvd_h5_write_f64(w.file, "sample_scores", 1, s1, smp), 0);
    ck_assert_int_eq(mvd_h5_write_i64(w.file, "view_label", 2, s2, vl), 0);
    ck_assert_int_eq(mvd_h5_write_i64(w.file, "sample_label", 1, s1, sl), 0);
    ck_assert_int_eq(mvd_h5_write_strings(w.file, "category", 4, cat), 0);
    ck_assert_int_eq(mvd_h5_write_strings(w.file, "sample_id", 4, sid), 0);
    ck_assert_int_eq(mvd_h5_write_strings(w.file, "anomaly_class", 4, acl), 0);
    ck_assert_int_eq(mvd_h5_commit(&w), 0);
    /* heatmaps: the worst false positive (S0002 C1, 0.4) and an unrelated one */
    snprintf(path, sizeof path, "%s/heatmaps", dir);
    ck_assert_int_eq(mvead_mkdirs(path), 0);
    mvd_image im;
    ck_assert_int_eq(mvd_image_alloc(&im, 8, 4, 3), 0);
    for (int i = 0; i < 8 * 4 * 3; i++) im.data[i] = (uint8_t)(i * 7);
    snprintf(path, sizeof path, "%s/heatmaps/widget_S0002_OK_C1.png", dir);
    ck_assert_int_eq(mvd_image_write_png(path, &im), 0);
    snprintf(path, sizeof path, "%s/heatmaps/widget_S0004_QS_C2.png", dir);
    ck_assert_int_eq(mvd_image_write_png(path, &im), 0);
    mvd_image_free(&im);
}

static void setup_config(mvead_config *c, const char *name) {
    mvead_config_defaults(c);
    snprintf(c->runs, sizeof c->runs, "%s/runs", root);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->quiet = true;
}

START_TEST(test_report_page) {
    mvead_config c;
    setup_config(&c, "r1");
    make_run(&c);
    ck_assert_msg(mvead_stage_report(&c) == 0, "report failed: %s", mv_error_last());
    char path[600];
    snprintf(path, sizeof path, "%s/runs/r1/report.html", root);
    char *h = slurp(path);
    ck_assert_ptr_nonnull(h);
    ck_assert(!strncmp(h, "<!DOCTYPE html>", 15));
    ck_assert_ptr_nonnull(strstr(h, "</html>"));
    /* self-contained: no script, no external resource */
    ck_assert_ptr_null(strstr(h, "<script"));
    ck_assert_ptr_null(strstr(h, "src=\"http"));
    ck_assert_ptr_null(strstr(h, "href=\"http"));
    ck_assert_ptr_null(strstr(h, "@import"));
    /* table: percentages with one decimal, null shown as a dash */
    ck_assert_ptr_nonnull(strstr(h, "<td>96.2</td>"));
    ck_assert_ptr_nonnull(strstr(h, "<td>91.5</td>"));
    ck_assert_ptr_nonnull(strstr(h, "widget"));
    /* curves computed from scores.h5: sample level AUROC 75.0, AP 83.3; image
     * level: 8 views, 3 defective, a tie at 0.3 between labels 0 and 1 */
    ck_assert_ptr_nonnull(strstr(h, "AUROC 75.0%"));
    ck_assert_ptr_nonnull(strstr(h, "AP 83.3%"));
    ck_assert_ptr_nonnull(strstr(h, "ROC, image level (n = 8)"));
    /* image AUROC by pairs: defective {0.35, 0.3, 0.8} vs good {0.1, 0.05, 0.4, 0.3, 0.2}: 12.5/15 */
    ck_assert_ptr_nonnull(strstr(h, "AUROC 83.3%"));
    ck_assert_ptr_nonnull(strstr(h, "<svg"));
    ck_assert_ptr_nonnull(strstr(h, "<polyline"));
    /* gallery: the worst false positive's heatmap inline, base64 of a PNG */
    ck_assert_ptr_nonnull(strstr(h, "data:image/png;base64,iVBORw0KGgo"));
    ck_assert_ptr_nonnull(strstr(h, "S0002 / OK / C1"));
    ck_assert_ptr_nonnull(strstr(h, "S0004 / QS / C2"));
    /* loss curve and configuration */
    ck_assert_ptr_nonnull(strstr(h, "Training loss per step"));
    ck_assert_ptr_nonnull(strstr(h, "coreset_ratio"));
    /* the threshold: F1 over the 8 views is best at 0.3 (the tie): 3 defective
     * views of 4 called NG plus the good one tied, F1 2*3/(2*3+2) = 75.0 */
    ck_assert_ptr_nonnull(strstr(h, "image score is &ge; <b>0.3</b>"));
    ck_assert_ptr_nonnull(strstr(h, "F1 75.0%"));
    /* per view: C1 has 2 good and 2 defective views, C2 3 and 1 */
    ck_assert_ptr_nonnull(strstr(h, "id=\"per-view-table\""));
    ck_assert_ptr_nonnull(strstr(h, "<tr><td class=\"k\">C1</td><td>2</td><td>2</td>"));
    ck_assert_ptr_nonnull(strstr(h, "<tr><td class=\"k\">C2</td><td>3</td><td>1</td>"));
    /* per defect: AK (S0003, both views defective) and QS (S0004, one view) */
    ck_assert_ptr_nonnull(strstr(h, "<tr><td class=\"k\">AK</td><td>1</td><td>2</td>"));
    ck_assert_ptr_nonnull(strstr(h, "<tr><td class=\"k\">QS</td><td>1</td><td>1</td>"));
    /* a file without the recorded colour scale and curves says so */
    ck_assert_ptr_nonnull(strstr(h, "Pixel-level curves: not recorded"));
    ck_assert_ptr_nonnull(strstr(h, "id=\"provenance-table\""));
    free(h);
    snprintf(path, sizeof path, "%s/runs/r1/report.md", root);
    char *md = slurp(path);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_nonnull(strstr(md, "| widget | 96.2 | 98.0 | 91.5 | 88.7 | 50.0 |"));
    ck_assert_ptr_nonnull(strstr(md, "report.html"));
    free(md);
}
END_TEST

START_TEST(test_report_missing_inputs) {
    mvead_config c;
    setup_config(&c, "nothing_here");
    ck_assert_int_eq(mvead_stage_report(&c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "metrics.json"));
    /* metrics present, scores.h5 missing */
    setup_config(&c, "r2");
    make_run(&c);
    char path[600];
    snprintf(path, sizeof path, "%s/runs/r2/scores.h5", root);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mvead_stage_report(&c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "scores.h5"));
    /* a corrupt metrics.json */
    snprintf(path, sizeof path, "%s/runs/r2/metrics.json", root);
    write_text(path, "{\"oops\": ");
    ck_assert_int_eq(mvead_stage_report(&c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "metrics.json"));
}
END_TEST

START_TEST(test_compare) {
    mvead_config c;
    setup_config(&c, "cmpA");
    make_run(&c);
    setup_config(&c, "cmpB");
    make_run(&c);
    char a[600], b[600], out[600];
    snprintf(a, sizeof a, "%s/runs/cmpA", root);
    snprintf(b, sizeof b, "%s/runs/cmpB/", root);
    snprintf(out, sizeof out, "%s/compare.txt", root);
    const char *dirs[2] = {a, b};
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    int rc = mvead_report_compare(dirs, 2, root);
    fflush(stdout);
    dup2(saved, 1);
    close(fd);
    close(saved);
    ck_assert_int_eq(rc, 0);
    char *t = slurp(out);
    ck_assert_ptr_nonnull(strstr(t, "cmpA"));
    ck_assert_ptr_nonnull(strstr(t, "cmpB"));
    ck_assert_ptr_nonnull(strstr(t, "sample_auroc"));
    ck_assert_ptr_nonnull(strstr(t, "96.2"));
    ck_assert_ptr_nonnull(strstr(t, "pixel_ap"));
    free(t);
    snprintf(b, sizeof b, "%s/runs/does_not_exist", root);
    ck_assert_int_eq(mvead_report_compare(dirs, 2, root), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "does_not_exist/metrics.json"));
}
END_TEST

static Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_add_test(tc, test_report_page);
    tcase_add_test(tc, test_report_missing_inputs);
    tcase_add_test(tc, test_compare);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/check_report.XXXXXX");
    if (!mkdtemp(root)) return 1;
    mvd_h5_quiet();
    mvead_progress_set_quiet(true);
    SRunner *sr = srunner_create(report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (!failed && system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
