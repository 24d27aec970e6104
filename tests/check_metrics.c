/* check_metrics: AUROC / AP against scikit-learn (metrics.h5) and brute-force
 * references, AUPRO against a naive per-threshold implementation, the
 * degenerate-input flags, the grouping / per-category helpers and the
 * pluggable allocator of the working arrays. */
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include "tests/fixtures.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;
static double rnd(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------- brute-force references ---------------- */

/* Mann-Whitney: P(s_pos > s_neg) + 0.5 P(equal), over all pairs. */
static double auroc_pairs(const double *s, const uint8_t *y, int64_t n) {
    double wins = 0.0, pairs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!y[i]) continue;
        for (int64_t j = 0; j < n; j++) {
            if (y[j]) continue;
            pairs += 1.0;
            if (s[i] > s[j]) wins += 1.0;
            else if (s[i] == s[j]) wins += 0.5;
        }
    }
    return wins / pairs;
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Step-wise AP by scanning every distinct threshold with an O(n) count. */
static double ap_thresholds(const double *s, const uint8_t *y, int64_t n) {
    double *t = malloc((size_t)n * sizeof(double));
    memcpy(t, s, (size_t)n * sizeof(double));
    qsort(t, (size_t)n, sizeof(double), cmp_desc);
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) P += y[i] != 0;
    double ap = 0.0, r_prev = 0.0;
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && t[k] == t[k - 1]) continue;
        int64_t tp = 0, fp = 0;
        for (int64_t i = 0; i < n; i++)
            if (s[i] >= t[k]) { if (y[i]) tp++; else fp++; }
        double r = (double)tp / (double)P, p = (double)tp / (double)(tp + fp);
        ap += (r - r_prev) * p;
        r_prev = r;
    }
    free(t);
    return ap;
}

/* 8-connected labelling by repeated min-propagation until stable; labels are
 * arbitrary ints (pixel index + 1 of the region's minimum). */
static void naive_components(const uint8_t *mask, int H, int W, int *lab) {
    for (int p = 0; p < H * W; p++) lab[p] = mask[p] ? p + 1 : 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++) {
                int p = r * W + c;
                if (!lab[p]) continue;
                for (int dr = -1; dr <= 1; dr++)
                    for (int dc = -1; dc <= 1; dc++) {
                        int rr = r + dr, cc = c + dc;
                        if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
                        int q = rr * W + cc;
                        if (lab[q] && lab[q] < lab[p]) { lab[p] = lab[q]; changed = 1; }
                    }
            }
    }
}

/* AUPRO the slow way: at every distinct threshold recount FPR and every
 * region's overlap; trapezoid up to the limit with interpolation. */
static double aupro_naive(const double *maps, const uint8_t *masks, int n_img, int H, int W, double limit) {
    int npix = H * W, total = n_img * npix;
    int *lab = malloc((size_t)total * sizeof(int));
    for (int m = 0; m < n_img; m++) naive_components(masks + m * npix, H, W, lab + m * npix);
    /* region id: (image, label) -> make labels globally unique */
    for (int m = 0; m < n_img; m++)
        for (int p = 0; p < npix; p++)
            if (lab[m * npix + p]) lab[m * npix + p] += m * npix;
    int n_ok = 0;
    for (int i = 0; i < total; i++) n_ok += masks[i] == 0;
    double *t = malloc((size_t)total * sizeof(double));
    memcpy(t, maps, (size_t)total * sizeof(double));
    qsort(t, (size_t)total, sizeof(double), cmp_desc);
    int *size = malloc((size_t)(total + 1) * sizeof(int)), *hit = malloc((size_t)(total + 1) * sizeof(int));
    double x0 = 0.0, y0 = 0.0, area = 0.0;
    for (int k = 0; k < total; k++) {
        if (k > 0 && t[k] == t[k - 1]) continue;
        int fp = 0;
        for (int i = 0; i < total; i++) fp += masks[i] == 0 && maps[i] >= t[k];
        /* mean over regions of (pixels >= t) / size */
        double pro_sum = 0.0;
        int n_regions = 0;
        memset(size, 0, (size_t)(total + 1) * sizeof(int));
        memset(hit, 0, (size_t)(total + 1) * sizeof(int));
        for (int i = 0; i < total; i++)
            if (lab[i]) { size[lab[i]]++; hit[lab[i]] += maps[i] >= t[k]; }
        for (int id = 1; id <= total; id++)
            if (size[id]) { n_regions++; pro_sum += (double)hit[id] / size[id]; }
        double x1 = (double)fp / n_ok, y1 = pro_sum / n_regions;
        if (x1 > limit) {
            double ya = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
            area += 0.5 * (ya + y0) * (limit - x0);
            break;
        }
        area += 0.5 * (y0 + y1) * (x1 - x0);
        x0 = x1;
        y0 = y1;
    }
    free(lab); free(t); free(size); free(hit);
    return area / limit;
}

/* ---------------- tests ---------------- */

START_TEST(test_fixture_cases) {
    hid_t f = fx_open("method/metrics.h5");
    if (f < 0) return;
    char **names;
    int ncase = fx_list(f, "/", &names);
    int checked = 0;
    for (int c = 0; c < ncase; c++) {
        char p_lab[256], p_sc[256], p_auc[256], p_ap[256];
        snprintf(p_lab, sizeof p_lab, "%s/labels", names[c]);
        snprintf(p_sc, sizeof p_sc, "%s/scores", names[c]);
        snprintf(p_auc, sizeof p_auc, "%s/auroc", names[c]);
        snprintf(p_ap, sizeof p_ap, "%s/ap", names[c]);
        if (!fx_has(f, p_lab) || !fx_has(f, p_sc)) continue;
        int nd;
        int64_t shape[8];
        int64_t *lab64 = fx_read_i64(f, p_lab, &nd, shape);
        int64_t n = fx_numel(nd, shape);
        double *scores = fx_read(f, p_sc, &nd, shape);
        ck_assert_int_eq(fx_numel(nd, shape), n);
        uint8_t *lab = malloc((size_t)n);
        for (int64_t i = 0; i < n; i++) lab[i] = lab64[i] != 0;
        double *ref_auc = fx_read(f, p_auc, &nd, shape);
        double *ref_ap = fx_read(f, p_ap, &nd, shape);
        int st;
        double auc = mvs_auroc(scores, lab, n, &st);
        ck_assert_int_eq(st, MVS_METRIC_OK);
        double ap = mvs_average_precision(scores, lab, n, &st);
        ck_assert_int_eq(st, MVS_METRIC_OK);
        char what[300];
        snprintf(what, sizeof what, "%s auroc", names[c]);
        ck_assert(fx_compare(what, &auc, ref_auc, 1, 0.0, 1e-9, 0));
        snprintf(what, sizeof what, "%s ap", names[c]);
        ck_assert(fx_compare(what, &ap, ref_ap, 1, 0.0, 1e-9, 0));
        /* and the brute-force references agree on the fixture data too (small cases) */
        if (n <= 5000) {
            ck_assert(fabs(auc - auroc_pairs(scores, lab, n)) < 1e-12);
            ck_assert(fabs(ap - ap_thresholds(scores, lab, n)) < 1e-12);
        }
        checked++;
        free(lab64); free(scores); free(lab); free(ref_auc); free(ref_ap);
    }
    fx_free_list(names, ncase);
    fx_close(f);
    ck_assert_int_gt(checked, 0);
}
END_TEST

START_TEST(test_hand_cases_and_ties) {
    /* scikit-learn doc example: roc_auc 0.75, AP 0.8333... */
    double s1[] = {0.1, 0.4, 0.35, 0.8};
    uint8_t y1[] = {0, 0, 1, 1};
    ck_assert(fabs(mvs_auroc(s1, y1, 4, NULL) - 0.75) < 1e-15);
    ck_assert(fabs(mvs_average_precision(s1, y1, 4, NULL) - 5.0 / 6.0) < 1e-15);
    /* all tied: AUROC 0.5, AP = prevalence */
    double s2[] = {1, 1, 1, 1, 1};
    uint8_t y2[] = {0, 1, 0, 1, 0};
    ck_assert(fabs(mvs_auroc(s2, y2, 5, NULL) - 0.5) < 1e-15);
    ck_assert(fabs(mvs_average_precision(s2, y2, 5, NULL) - 0.4) < 1e-15);
    /* a tie across classes: pos {0.5, 1.0}, neg {0.5, 0.5} -> (2 + 2 * 0.5) / 4 */
    double s3[] = {0.5, 0.5, 0.5, 1.0};
    uint8_t y3[] = {0, 0, 1, 1};
    ck_assert(fabs(mvs_auroc(s3, y3, 4, NULL) - 0.75) < 1e-15);
    ck_assert(fabs(mvs_average_precision(s3, y3, 4, NULL) - 0.75) < 1e-15);
    /* -0.0 and +0.0 are the same score */
    double s4[] = {-0.0, 0.0};
    uint8_t y4[] = {0, 1};
    ck_assert(fabs(mvs_auroc(s4, y4, 2, NULL) - 0.5) < 1e-15);
    /* negative scores, perfect and inverted */
    double s5[] = {-3, -2, -1, 5};
    uint8_t y5[] = {0, 0, 1, 1}, y6[] = {1, 1, 0, 0};
    ck_assert(mvs_auroc(s5, y5, 4, NULL) == 1.0);
    ck_assert(mvs_auroc(s5, y6, 4, NULL) == 0.0);
    ck_assert(mvs_average_precision(s5, y5, 4, NULL) == 1.0);
}
END_TEST

START_TEST(test_random_vs_bruteforce) {
    rng_state = 12345;
    for (int trial = 0; trial < 6; trial++) {
        int64_t n = 300 + 97 * trial;
        double *s = malloc((size_t)n * sizeof(double));
        uint8_t *y = malloc((size_t)n);
        for (int64_t i = 0; i < n; i++) {
            y[i] = rnd() < 0.3 + 0.1 * trial;
            double v = rnd() * 4.0 - 2.0 + 0.7 * y[i];
            /* odd trials: coarse rounding -> many ties */
            s[i] = (trial & 1) ? round(v * 5.0) / 5.0 : v;
        }
        int st;
        double auc = mvs_auroc(s, y, n, &st);
        ck_assert_int_eq(st, MVS_METRIC_OK);
        ck_assert_msg(fabs(auc - auroc_pairs(s, y, n)) < 1e-12, "trial %d auroc %.17g vs %.17g", trial, auc,
                      auroc_pairs(s, y, n));
        double ap = mvs_average_precision(s, y, n, &st);
        ck_assert_msg(fabs(ap - ap_thresholds(s, y, n)) < 1e-12, "trial %d ap %.17g vs %.17g", trial, ap,
                      ap_thresholds(s, y, n));
        free(s); free(y);
    }
}
END_TEST

START_TEST(test_degenerate_and_bad_input) {
    double s[] = {0.3, 0.1, 0.2};
    uint8_t all_neg[] = {0, 0, 0}, all_pos[] = {1, 1, 1}, mixed[] = {0, 1, 0};
    int st = 12;
    ck_assert(isnan(mvs_auroc(s, all_neg, 3, &st)));
    ck_assert_int_eq(st, MVS_METRIC_DEGENERATE);
    ck_assert(isnan(mvs_average_precision(s, all_pos, 3, &st)));
    ck_assert_int_eq(st, MVS_METRIC_DEGENERATE);
    double bad[] = {0.3, NAN, 0.2};
    ck_assert(isnan(mvs_auroc(bad, mixed, 3, &st)));
    ck_assert_int_eq(st, MVS_METRIC_ERROR);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "NaN"));
    ck_assert(isnan(mvs_auroc(s, mixed, 0, &st)));
    ck_assert_int_eq(st, MVS_METRIC_ERROR);
    /* AUPRO: no defect pixel / no normal pixel */
    double map[4] = {1, 2, 3, 4};
    uint8_t m0[4] = {0}, m1[4] = {1, 1, 1, 1};
    ck_assert(isnan(mvs_aupro(map, m0, 1, 2, 2, 0.3, &st)));
    ck_assert_int_eq(st, MVS_METRIC_DEGENERATE);
    ck_assert(isnan(mvs_aupro(map, m1, 1, 2, 2, 0.3, &st)));
    ck_assert_int_eq(st, MVS_METRIC_DEGENERATE);
    ck_assert(isnan(mvs_aupro(map, m1, 1, 2, 2, 0.0, &st)));
    ck_assert_int_eq(st, MVS_METRIC_ERROR);
}
END_TEST

START_TEST(test_components) {
    /* two blobs touching only diagonally are ONE region (8-connectivity);
     * a separate blob is another. */
    const uint8_t mask[5 * 6] = {
        1, 1, 0, 0, 0, 0,
        1, 1, 0, 0, 0, 1,
        0, 0, 1, 0, 0, 1,
        0, 0, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 0,
    };
    int32_t comp[30];
    ck_assert_int_eq(mvs_label_components(mask, 5, 6, comp), 2);
    ck_assert_int_eq(comp[0], 1);
    ck_assert_int_eq(comp[3 * 6 + 3], 1);
    ck_assert_int_eq(comp[1 * 6 + 5], 2);
    ck_assert_int_eq(comp[2 * 6 + 5], 2);
    ck_assert_int_eq(comp[2 * 6 + 4], 0);
}
END_TEST

START_TEST(test_aupro_perfect_and_naive) {
    enum { NI = 3, H = 14, W = 13 };
    static double maps[NI * H * W];
    static uint8_t masks[NI * H * W];
    rng_state = 777;
    memset(masks, 0, sizeof masks);
    /* blobs of different sizes; image 2 has none (all normal) */
    for (int r = 2; r < 6; r++) for (int c = 1; c < 5; c++) masks[0 * H * W + r * W + c] = 1;
    masks[0 * H * W + 9 * W + 9] = 1;
    masks[0 * H * W + 10 * W + 10] = 1; /* diagonal neighbour: same region */
    for (int r = 5; r < 12; r++) for (int c = 6; c < 8; c++) masks[1 * H * W + r * W + c] = 1;
    masks[1 * H * W + 0 * W + 12] = 1;
    int st;
    /* perfect separation -> 1 */
    for (int i = 0; i < NI * H * W; i++) maps[i] = masks[i] ? 2.0 + rnd() : rnd();
    double perfect = mvs_aupro(maps, masks, NI, H, W, 0.3, &st);
    ck_assert_int_eq(st, MVS_METRIC_OK);
    ck_assert_msg(fabs(perfect - 1.0) < 1e-12, "perfect aupro %.17g", perfect);
    /* noisy scores with ties vs the naive per-threshold implementation */
    for (int trial = 0; trial < 3; trial++) {
        for (int i = 0; i < NI * H * W; i++) {
            double v = rnd() + (masks[i] ? 0.3 + 0.2 * trial : 0.0);
            maps[i] = trial == 1 ? round(v * 8.0) / 8.0 : v;
        }
        for (int li = 0; li < 2; li++) {
            double limit = li ? 1.0 : 0.3;
            double got = mvs_aupro(maps, masks, NI, H, W, limit, &st);
            double ref = aupro_naive(maps, masks, NI, H, W, limit);
            ck_assert_int_eq(st, MVS_METRIC_OK);
            ck_assert_msg(fabs(got - ref) < 1e-12, "trial %d limit %g: aupro %.17g vs naive %.17g", trial, limit,
                          got, ref);
            ck_assert(got > 0.0 && got <= 1.0);
        }
    }
    /* images of different sizes one after another: with every image H x W
     * the same bits; image 2 (no region) reshaped to 2 x 91 changes nothing
     * either (only its pixels' count and scores matter), while a region
     * image reshaped does change its regions */
    {
        int64_t sizes[2 * NI] = {H, W, H, W, H, W};
        double a = mvs_aupro(maps, masks, NI, H, W, 0.3, &st);
        ck_assert(mvs_aupro_sizes(maps, masks, NI, sizes, 0.3, &st) == a);
        sizes[4] = 2; sizes[5] = H * W / 2;
        ck_assert(mvs_aupro_sizes(maps, masks, NI, sizes, 0.3, &st) == a);
        sizes[0] = 7; sizes[1] = 26;   /* image 0: the 4x4 blob splits across rows */
        double b = mvs_aupro_sizes(maps, masks, NI, sizes, 0.3, &st);
        ck_assert_int_eq(st, MVS_METRIC_OK);
        ck_assert(b != a);
        sizes[3] = 0;
        ck_assert(isnan(mvs_aupro_sizes(maps, masks, NI, sizes, 0.3, &st)));
        ck_assert_int_eq(st, MVS_METRIC_ERROR);
        mv_error_clear();
    }
    /* constant map: the only point jumps to (1, 1); interpolation at 0.3 gives 0.3 * 0.3 / 2 / 0.3 */
    for (int i = 0; i < NI * H * W; i++) maps[i] = 1.0;
    ck_assert(fabs(mvs_aupro(maps, masks, NI, H, W, 0.3, &st) - 0.15) < 1e-12);
}
END_TEST

/* An allocator that counts, can be told to fail, and poisons what it hands
 * out (the metrics must not read working memory before writing it). */
typedef struct { int allocs, releases, live, fail_after; } counting_ctx;
static void *counting_alloc(size_t bytes, void *ctx) {
    counting_ctx *c = ctx;
    if (c->fail_after >= 0 && c->allocs >= c->fail_after) return NULL;
    c->allocs++;
    c->live++;
    void *p = malloc(bytes ? bytes : 1);
    if (p) memset(p, 0xA5, bytes);
    return p;
}
static void counting_release(void *mem, void *ctx) {
    counting_ctx *c = ctx;
    c->releases++;
    c->live--;
    free(mem);
}

START_TEST(test_allocator) {
    enum { NI = 4, H = 9, W = 11, N = NI * H * W };
    static double maps[N];
    static uint8_t masks[N];
    rng_state = 4242;
    for (int i = 0; i < N; i++) {
        masks[i] = (i % 17) < 3;
        maps[i] = rnd() + 0.4 * masks[i];
    }
    int st;
    double ref[3] = {mvs_auroc(maps, masks, N, &st), mvs_average_precision(maps, masks, N, &st),
                     mvs_aupro(maps, masks, NI, H, W, 0.3, &st)};
    counting_ctx cc = {0, 0, 0, -1};
    mvs_allocator al = {counting_alloc, counting_release, &cc};
    mvs_metrics_set_allocator(&al);
    double got[3] = {mvs_auroc(maps, masks, N, &st), mvs_average_precision(maps, masks, N, &st),
                     mvs_aupro(maps, masks, NI, H, W, 0.3, &st)};
    for (int k = 0; k < 3; k++) ck_assert_msg(got[k] == ref[k], "metric %d: %.17g with the allocator, %.17g without", k, got[k], ref[k]);
    ck_assert_int_ge(cc.allocs, 3 * 2 + 3);   /* pos/neg (+ sort buffers) per metric, AUPRO's three arrays */
    ck_assert_int_eq(cc.live, 0);
    ck_assert_int_eq(cc.allocs, cc.releases);
    /* every allocation failing in turn: an error, never a crash or a leak */
    for (int f = 0; f < 8; f++) {
        counting_ctx fc = {0, 0, 0, f};
        mvs_allocator fa = {counting_alloc, counting_release, &fc};
        mvs_metrics_set_allocator(&fa);
        double v = mvs_aupro(maps, masks, NI, H, W, 0.3, &st);
        if (st == MVS_METRIC_OK) ck_assert(v == ref[2]);
        else {
            ck_assert_int_eq(st, MVS_METRIC_ERROR);
            ck_assert_ptr_nonnull(strstr(mv_error_last(), "out of memory"));
        }
        ck_assert_int_eq(fc.live, 0);
        v = mvs_auroc(maps, masks, N, &st);
        ck_assert(st == MVS_METRIC_OK ? v == ref[0] : st == MVS_METRIC_ERROR);
    }
    mvs_metrics_set_allocator(NULL);
    ck_assert(mvs_auroc(maps, masks, N, &st) == ref[0]);
}
END_TEST

START_TEST(test_group_and_categories) {
    /* 6 views in 3 samples of 2 views; categories of the samples */
    double s[] = {0.1, 0.7, 0.4, 0.2, 0.9, 0.3};
    uint8_t y[] = {0, 0, 0, 1, 1, 0};
    int64_t g[] = {0, 0, 1, 1, 2, 2};
    double gs[4];   /* room for the 4-group call below */
    uint8_t gl[4];
    ck_assert_int_eq(mvs_group_max(s, y, g, 6, 3, gs, gl), 0);
    ck_assert(gs[0] == 0.7 && gs[1] == 0.4 && gs[2] == 0.9);
    ck_assert(gl[0] == 0 && gl[1] == 1 && gl[2] == 1);
    int64_t bad_g[] = {0, 0, 1, 1, 5, 2};
    ck_assert_int_eq(mvs_group_max(s, y, bad_g, 6, 3, gs, gl), -1);
    ck_assert_int_eq(mvs_group_max(s, y, g, 6, 4, gs, gl), -1); /* group 3 empty */

    /* per category: cat 0 = items {0,1,2,3}, cat 1 = {4,5}, cat 2 = {} */
    int64_t cat[] = {0, 0, 0, 0, 1, 1};
    double per[3], mean;
    int64_t used = mvs_metric_per_category(MVS_AUROC, s, y, cat, 6, 3, per, &mean);
    ck_assert_int_eq(used, 2);
    /* cat 0: pos {0.2}, neg {0.1, 0.7, 0.4} -> 1/3; cat 1: pos 0.9 > neg 0.3 -> 1 */
    ck_assert(fabs(per[0] - 1.0 / 3.0) < 1e-15);
    ck_assert(per[1] == 1.0);
    ck_assert(isnan(per[2]));
    ck_assert(fabs(mean - (1.0 / 3.0 + 1.0) / 2.0) < 1e-15);
    double vals[] = {0.5, NAN, 1.0};
    ck_assert(fabs(mvs_mean_over_categories(vals, 3, &used) - 0.75) < 1e-15);
    ck_assert_int_eq(used, 2);
    double nans[] = {NAN};
    ck_assert(isnan(mvs_mean_over_categories(nans, 1, &used)));
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixture_cases);
    tcase_add_test(tc, test_hand_cases_and_ties);
    tcase_add_test(tc, test_random_vs_bruteforce);
    tcase_add_test(tc, test_degenerate_and_bad_input);
    tcase_add_test(tc, test_components);
    tcase_add_test(tc, test_aupro_perfect_and_naive);
    tcase_add_test(tc, test_group_and_categories);
    tcase_add_test(tc, test_allocator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
