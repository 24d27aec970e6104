/* check_synth: the synthetic multi-view dataset (data/synth.h).
 * Geometry: rays and projections agree, and every visible surface point
 * satisfies the written F. Defects: masks are exact (non-empty for bad
 * samples, empty for good ones, the masked pixels are the ones the defect
 * changed). Files: same seed -> byte-identical whatever the thread count,
 * another seed -> different; the split jsons match the files on disk and
 * read back through the Real-IAD index. */
#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include "tensor/tensor.h"
#endif

#include "data/image.h"
#include "data/realiad.h"
#include "data/synth.h"
#include "tests/fixtures.h"
#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epipolar.h"
#include "tensor/error.h"

/* ------------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}
static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *make_tmpdir(void) {
    char *d = strdup("/tmp/check_synth_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void small_opts(mvd_synth_opts *o, int size) {
    mvd_synth_default_opts(o);
    o->categories = 1;
    o->train = 2;
    o->test_good = 1;
    o->test_bad = 2;
    o->size = size;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* Compares every regular file under dir a with the same relative path under b
 * (and the file counts). Returns the number of differing/missing files. */
static const char *cmp_root_a, *cmp_root_b;
static int cmp_n_files, cmp_n_diff;
static bool cmp_only_jpg;
static int cmp_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)ftw;
    if (flag != FTW_F) return 0;
    if (cmp_only_jpg && (strlen(path) < 4 || strcmp(path + strlen(path) - 4, ".jpg"))) return 0;
    char other[4096];
    snprintf(other, sizeof other, "%s%s", cmp_root_b, path + strlen(cmp_root_a));
    size_t na, nb;
    unsigned char *a = slurp(path, &na), *b = slurp(other, &nb);
    cmp_n_files++;
    if (!a || !b || na != nb || memcmp(a, b, na) != 0) cmp_n_diff++;
    free(a);
    free(b);
    return 0;
}
static int count_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)path; (void)sb; (void)ftw;
    if (flag == FTW_F) cmp_n_files++;
    return 0;
}
static int compare_trees(const char *a, const char *b, int *n_files) {
    cmp_root_a = a;
    cmp_root_b = b;
    cmp_n_files = cmp_n_diff = 0;
    nftw(a, cmp_entry, 16, FTW_PHYS);
    int files_a = cmp_n_files, diff = cmp_n_diff;
    cmp_n_files = 0;
    nftw(b, count_entry, 16, FTW_PHYS);
    if (cmp_n_files != files_a) diff += abs(cmp_n_files - files_a);
    *n_files = files_a;
    return diff;
}

static int generate_with_threads(const mvd_synth_opts *o, const char *dir, int threads) {
#ifdef _OPENMP
    int saved = mvt_get_num_threads();
    mvt_set_num_threads(threads);
#else
    (void)threads;
#endif
    int rc = mvd_synth_generate(o, dir);
#ifdef _OPENMP
    mvt_set_num_threads(saved);
#endif
    if (rc) fprintf(stderr, "generate: %s\n", mv_error_last());
    return rc;
}

/* ------------------------------------------------------------- geometry */

/* Reads F_ab for every ordered pair from calibration.json (pairs a < b;
 * F_ba = F_ab^T), independently of the calibration reader. */
static void read_calibration_F(const char *path, int V, double F[MVD_SYNTH_MAX_VIEWS][MVD_SYNTH_MAX_VIEWS][9],
                               int *width) {
    json_object *root = json_object_from_file(path);
    ck_assert_msg(root != NULL, "cannot parse %s", path);
    json_object *jv, *pairs, *jw;
    ck_assert(json_object_object_get_ex(root, "views", &jv));
    ck_assert_int_eq(json_object_get_int(jv), V);
    ck_assert(json_object_object_get_ex(root, "width", &jw));
    *width = json_object_get_int(jw);
    ck_assert(json_object_object_get_ex(root, "pairs", &pairs));
    int n = (int)json_object_array_length(pairs);
    ck_assert_int_eq(n, V * (V - 1) / 2);
    for (int i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(pairs, i), *ja, *jb, *jf;
        ck_assert(json_object_object_get_ex(p, "a", &ja) && json_object_object_get_ex(p, "b", &jb) &&
                  json_object_object_get_ex(p, "F", &jf));
        int a = json_object_get_int(ja), b = json_object_get_int(jb);
        ck_assert(a >= 0 && a < V && b >= 0 && b < V && a != b);
        ck_assert_int_eq((int)json_object_array_length(jf), 9);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) {
                double v = json_object_get_double(json_object_array_get_idx(jf, r * 3 + c));
                F[a][b][r * 3 + c] = v;
                F[b][a][c * 3 + r] = v;
            }
    }
    json_object_put(root);
}

START_TEST(test_cameras) {
    mvd_synth_opts o;
    mvd_synth_default_opts(&o);
    o.size = 112;
    double K[5 * 9], R[5 * 9], t[5 * 3];
    ck_assert_int_eq(mvd_synth_cameras(&o, K, R, t), 0);
    /* C1 looks straight down; C2..C5 look down at 45 degrees from four azimuths. */
    ck_assert(fabs(R[6] - 0) < 1e-12 && fabs(R[7] - 0) < 1e-12 && fabs(R[8] + 1) < 1e-12);
    double az_dir[4][2] = {{-1, 0}, {0, -1}, {1, 0}, {0, 1}}; /* viewing direction in xy */
    for (int v = 1; v < 5; v++) {
        const double *z = R + 9 * v + 6;
        ck_assert_msg(fabs(z[2] + sqrt(0.5)) < 1e-9, "view %d elevation: z_c.z = %g", v + 1, z[2]);
        ck_assert(fabs(z[0] - az_dir[v - 1][0] * sqrt(0.5)) < 1e-9 && fabs(z[1] - az_dir[v - 1][1] * sqrt(0.5)) < 1e-9);
    }
    /* R is a rotation; the principal point is the image centre. */
    for (int v = 0; v < 5; v++) {
        const double *r = R + 9 * v;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                double d = r[3 * i] * r[3 * j] + r[3 * i + 1] * r[3 * j + 1] + r[3 * i + 2] * r[3 * j + 2];
                ck_assert(fabs(d - (i == j)) < 1e-12);
            }
        ck_assert(fabs(K[9 * v + 2] - 56.0) < 1e-12 && fabs(K[9 * v + 5] - 56.0) < 1e-12);
        /* The object (near the origin) is seen near the middle of every view. */
        double X[3] = {0, 0, 0.3}, p[2];
        ck_assert_int_eq(mvd_synth_project(&o, v, X, p), 1);
        ck_assert(fabs(p[0] - 56) < 3 && fabs(p[1] - 56) < 3);
    }
    double X[3] = {0, 0, 0}, p[2];
    ck_assert_int_eq(mvd_synth_project(&o, 7, X, p), -1);
}
END_TEST

/* Surface points hit by pixel-centre rays in view a, projected into every view
 * b that sees them, satisfy p_a^T F_ab p_b = 0 with the F of calibration.json. */
START_TEST(test_epipolar_consistency) {
    mvd_synth_opts o;
    small_opts(&o, 112);
    o.train = 1;
    o.test_good = 1;
    o.test_bad = 0;
    char *dir = make_tmpdir();
    ck_assert_int_eq(generate_with_threads(&o, dir, 2), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/calibration.json", dir);
    static double F[MVD_SYNTH_MAX_VIEWS][MVD_SYNTH_MAX_VIEWS][9];
    int width = 0;
    read_calibration_F(path, o.views, F, &width);
    ck_assert_int_eq(width, o.size);

    /* The calibration reader must accept the file and agree with the cameras. */
    mvg_calibration calib;
    ck_assert_msg(mvg_calibration_read_json(path, &calib) == 0, "%s", mv_error_last());
    double K[5 * 9], R[5 * 9], t[5 * 3];
    ck_assert_int_eq(mvd_synth_cameras(&o, K, R, t), 0);

    for (int cat = 0; cat < 2; cat++) {
        mvd_synth_render r;
        ck_assert_int_eq(mvd_synth_render_sample(&o, cat, 3, MVD_SYNTH_CHUNK, true, &r), 0);
        const int S = o.size, V = o.views;
        int n_checked = 0, n_object = 0;
        double worst = 0, worst_self = 0;
        for (int a = 0; a < V; a++) {
            for (int pix = 0; pix < S * S; pix += 3) {
                uint8_t h = r.hit[a * S * S + pix];
                if (h == MVD_SYNTH_HIT_NOTHING) continue;
                const double *X = r.xyz + ((size_t)a * S * S + pix) * 3;
                double pa[2] = {pix % S + 0.5, pix / S + 0.5}, q[2];
                /* The ray caster and the projection use the same camera. */
                ck_assert_int_eq(mvd_synth_project(&o, a, X, q), 1);
                worst_self = fmax(worst_self, fmax(fabs(q[0] - pa[0]), fabs(q[1] - pa[1])));
                if (h == MVD_SYNTH_HIT_OBJECT) n_object++;
                for (int b = 0; b < V; b++) {
                    if (b == a) continue;
                    double pb[2];
                    if (mvd_synth_project(&o, b, X, pb) != 1) continue;
                    if (pb[0] < 0 || pb[1] < 0 || pb[0] >= S || pb[1] >= S) continue;
                    /* Visible in b: b's centre ray at that pixel hits (nearly) the same point. */
                    int qb = (int)pb[1] * S + (int)pb[0];
                    if (r.hit[b * S * S + qb] == MVD_SYNTH_HIT_NOTHING) continue;
                    const double *Y = r.xyz + ((size_t)b * S * S + qb) * 3;
                    double dx = X[0] - Y[0], dy = X[1] - Y[1], dz = X[2] - Y[2];
                    if (sqrt(dx * dx + dy * dy + dz * dz) > 0.05) continue;
                    double l[3];
                    mvg_epipolar_line(F[a][b], pa[0], pa[1], l);
                    double d = mvg_point_line_distance(l, pb[0], pb[1]);
                    worst = fmax(worst, d);
                    n_checked++;
                    /* The F from the cameras (epipolar.c) agrees too. */
                    if (pix % 97 == 0) {
                        double Fc[9], lc[3];
                        mvg_fundamental_from_cameras(K + 9 * a, R + 9 * a, t + 3 * a, K + 9 * b, R + 9 * b, t + 3 * b, Fc);
                        mvg_epipolar_line(Fc, pa[0], pa[1], lc);
                        ck_assert(mvg_point_line_distance(lc, pb[0], pb[1]) < 0.01);
                    }
                }
            }
        }
        mvd_synth_render_free(&r);
        printf("synth epipolar cat %d: %d visible correspondences, %d object pixels, worst point-line "
               "distance %.2e px, worst reprojection %.2e px\n", cat, n_checked, n_object, worst, worst_self);
        ck_assert_msg(n_object > 500, "object too small: %d pixels", n_object);
        ck_assert_msg(n_checked > 2000, "only %d visible correspondences", n_checked);
        ck_assert_msg(worst_self < 1e-6, "ray/projection mismatch %g px", worst_self);
        ck_assert_msg(worst < 0.01, "epipolar distance %g px", worst);
    }
    rm_tree(dir);
    free(dir);
}
END_TEST

/* --------------------------------------------------------------- masks */

/* For every defect kind: the defective render's mask is non-empty in some
 * view, the good render's masks are empty, the masked pixels are (mostly)
 * those the defect changed, and nothing far from the mask changed. */
START_TEST(test_masks_exact) {
    mvd_synth_opts o;
    mvd_synth_default_opts(&o);
    o.size = 112;
    o.supersample = 1;
    for (int kind = 0; kind < MVD_SYNTH_N_KINDS; kind++) {
        /* The first category with this kind. */
        int cat = -1;
        for (int c = 0; c < mvd_synth_max_categories() && cat < 0; c++) {
            int kinds[MVD_SYNTH_N_KINDS], n = mvd_synth_category_defects(c, kinds);
            for (int i = 0; i < n; i++)
                if (kinds[i] == kind) cat = c;
        }
        ck_assert_int_ge(cat, 0);
        for (int sample = 40; sample < (fx_reduced() ? 41 : 42); sample++) {
            mvd_synth_render bad, good;
            ck_assert_int_eq(mvd_synth_render_sample(&o, cat, sample, kind, true, &bad), 0);
            ck_assert_int_eq(mvd_synth_render_sample(&o, cat, sample, MVD_SYNTH_NONE, false, &good), 0);
            const int S = o.size, V = o.views;
            long n_mask = 0, n_mask_changed = 0, n_far = 0, n_far_changed = 0, n_object = 0;
            double sum_diff = 0;
            for (int v = 0; v < V; v++) {
                const uint8_t *m = bad.masks[v].data;
                for (int i = 0; i < S * S; i++) ck_assert_int_eq(good.masks[v].data[i], 0);
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        int i = y * S + x;
                        ck_assert(m[i] == 0 || m[i] == 255);
                        int diff = 0;
                        for (int k = 0; k < 3; k++)
                            diff = fmax(diff, abs((int)bad.images[v].data[i * 3 + k] - (int)good.images[v].data[i * 3 + k]));
                        if (bad.hit[v * S * S + i] == MVD_SYNTH_HIT_OBJECT) n_object++;
                        if (m[i]) {
                            n_mask++;
                            sum_diff += diff;
                            if (diff > 6) n_mask_changed++;
                            continue;
                        }
                        /* Far from the mask: no mask pixel within 2 pixels. */
                        bool near = false;
                        for (int dy = -2; dy <= 2 && !near; dy++)
                            for (int dx = -2; dx <= 2 && !near; dx++) {
                                int xx = x + dx, yy = y + dy;
                                if (xx >= 0 && yy >= 0 && xx < S && yy < S && m[yy * S + xx]) near = true;
                            }
                        if (near) continue;
                        n_far++;
                        if (diff > 3) n_far_changed++;
                    }
            }
            printf("synth mask %s (cat %s, sample %d): %ld mask px (%.2f%% of object), %.0f%% changed "
                   "(mean diff %.1f), %ld of %ld far pixels changed\n",
                   mvd_synth_defect_code(kind), mvd_synth_category_name(cat), sample, n_mask,
                   100.0 * n_mask / (double)(n_object ? n_object : 1), 100.0 * n_mask_changed / (n_mask ? n_mask : 1),
                   sum_diff / (n_mask ? n_mask : 1), n_far_changed, n_far);
            ck_assert_msg(n_mask >= 8, "%s: mask has only %ld pixels", mvd_synth_defect_code(kind), n_mask);
            ck_assert_msg(n_mask < n_object / 4, "%s: mask too large (%ld of %ld object px)",
                          mvd_synth_defect_code(kind), n_mask, n_object);
            /* A bulge's mask is its whole footprint, where the tilt of the
             * normals (not the colour) changes: a weaker bound there. */
            long need = kind == MVD_SYNTH_BULGE ? n_mask / 3 : n_mask / 2;
            ck_assert_msg(n_mask_changed >= need, "%s: only %ld of %ld masked pixels changed",
                          mvd_synth_defect_code(kind), n_mask_changed, n_mask);
            ck_assert_msg(n_far_changed <= n_far / 1000, "%s: %ld pixels away from the mask changed",
                          mvd_synth_defect_code(kind), n_far_changed);
            mvd_synth_render_free(&bad);
            mvd_synth_render_free(&good);
        }
    }
}
END_TEST

/* Antialiasing changes colours only: masks and geometry come from the centre ray. */
START_TEST(test_supersample_keeps_masks) {
    mvd_synth_opts o;
    mvd_synth_default_opts(&o);
    o.size = 80;
    mvd_synth_render r1, r2;
    o.supersample = 1;
    ck_assert_int_eq(mvd_synth_render_sample(&o, 2, 7, MVD_SYNTH_CHUNK, true, &r1), 0);
    o.supersample = 2;
    ck_assert_int_eq(mvd_synth_render_sample(&o, 2, 7, MVD_SYNTH_CHUNK, true, &r2), 0);
    const size_t n = (size_t)o.size * o.size;
    long n_mask = 0, n_colour_diff = 0;
    for (int v = 0; v < o.views; v++) {
        ck_assert(memcmp(r1.masks[v].data, r2.masks[v].data, n) == 0);
        for (size_t i = 0; i < n; i++) n_mask += r1.masks[v].data[i] != 0;
        for (size_t i = 0; i < 3 * n; i++) n_colour_diff += abs((int)r1.images[v].data[i] - (int)r2.images[v].data[i]) > 8;
    }
    ck_assert(memcmp(r1.hit, r2.hit, o.views * n) == 0);
    ck_assert(memcmp(r1.xyz, r2.xyz, o.views * n * 3 * sizeof(double)) == 0);
    ck_assert_int_gt(n_mask, 0);
    ck_assert_int_gt(n_colour_diff, 0); /* edges were antialiased */
    mvd_synth_render_free(&r1);
    mvd_synth_render_free(&r2);
}
END_TEST

/* ------------------------------------------------------- determinism */

START_TEST(test_deterministic) {
    mvd_synth_opts o;
    small_opts(&o, 96);
    char *a = make_tmpdir(), *b = make_tmpdir(), *c = make_tmpdir(), *d = make_tmpdir();
    ck_assert_int_eq(generate_with_threads(&o, a, 1), 0);
    ck_assert_int_eq(generate_with_threads(&o, b, 2), 0);
    ck_assert_int_eq(generate_with_threads(&o, d, 2), 0);
    o.seed = 2;
    ck_assert_int_eq(generate_with_threads(&o, c, 2), 0);
    int n = 0, diff;
    diff = compare_trees(b, d, &n);
    ck_assert_msg(diff == 0, "same seed, same threads: %d of %d files differ", diff, n);
    ck_assert_int_gt(n, 20);
    diff = compare_trees(a, b, &n);
    ck_assert_msg(diff == 0, "1 vs 2 threads: %d of %d files differ", diff, n);
    /* Another seed: every image differs (calibration.json, the split jsons and
     * all-zero masks of hidden views need not: the cameras and names are fixed). */
    cmp_only_jpg = true;
    cmp_root_a = a;
    cmp_root_b = c;
    cmp_n_files = cmp_n_diff = 0;
    nftw(a, cmp_entry, 16, FTW_PHYS);
    cmp_only_jpg = false;
    ck_assert_int_eq(cmp_n_files, (o.train + o.test_good + o.test_bad) * o.views);
    ck_assert_msg(cmp_n_diff == cmp_n_files, "seed 1 vs 2: only %d of %d images differ", cmp_n_diff, cmp_n_files);
    rm_tree(a); rm_tree(b); rm_tree(c); rm_tree(d);
    free(a); free(b); free(c); free(d);
}
END_TEST

/* ------------------------------------------------------------ layout */

static int layout_n_files;
static int progress_calls, progress_last, progress_total;
static void on_progress(void *ctx, int done, int total) {
    (*(int *)ctx)++;
    ck_assert_int_eq(done, progress_last + 1);
    progress_last = done;
    progress_total = total;
}
static int layout_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)ftw;
    size_t n = strlen(path);
    if (flag == FTW_F && n > 4 && (!strcmp(path + n - 4, ".jpg") || !strcmp(path + n - 4, ".png"))) layout_n_files++;
    return 0;
}

START_TEST(test_json_split) {
    mvd_synth_opts o;
    small_opts(&o, 64);
    o.categories = 2;
    o.train = 3;
    o.test_good = 2;
    o.test_bad = 5;
    o.supersample = 1;
    o.progress = on_progress;
    o.progress_ctx = &progress_calls;
    progress_calls = progress_last = progress_total = 0;
    char *dir = make_tmpdir();
    ck_assert_int_eq(generate_with_threads(&o, dir, 2), 0);
    int n_samples = o.categories * (o.train + o.test_good + o.test_bad);
    ck_assert_int_eq(progress_calls, n_samples);
    ck_assert_int_eq(progress_total, n_samples);
    for (int c = 0; c < o.categories; c++) {
        const char *cat = mvd_synth_category_name(c);
        char path[8300], root[4096];
        snprintf(path, sizeof path, "%s/realiad_jsons/%s.json", dir, cat);
        snprintf(root, sizeof root, "%s/realiad_1024/%s", dir, cat);
        json_object *js = json_object_from_file(path);
        ck_assert_msg(js != NULL, "cannot parse %s", path);
        json_object *meta, *jx;
        ck_assert(json_object_object_get_ex(js, "meta", &meta));
        ck_assert(json_object_object_get_ex(meta, "prefix", &jx) && !strcmp(json_object_get_string(jx), ""));
        ck_assert(json_object_object_get_ex(meta, "normal_class", &jx) && !strcmp(json_object_get_string(jx), "OK"));
        int n_refs = 0;
        for (int split = 0; split < 2; split++) {
            json_object *list;
            ck_assert(json_object_object_get_ex(js, split ? "test" : "train", &list));
            int n = (int)json_object_array_length(list);
            int samples = split ? o.test_good + o.test_bad : o.train;
            ck_assert_int_eq(n, samples * o.views);
            int n_bad_views = 0;
            for (int i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(list, i), *jc, *ja, *ji, *jm;
                ck_assert_int_eq(json_object_object_length(e), 4);
                ck_assert(json_object_object_get_ex(e, "category", &jc) && !strcmp(json_object_get_string(jc), cat));
                ck_assert(json_object_object_get_ex(e, "anomaly_class", &ja));
                ck_assert(json_object_object_get_ex(e, "image_path", &ji));
                ck_assert(json_object_object_get_ex(e, "mask_path", &jm));
                const char *cls = json_object_get_string(ja), *img = json_object_get_string(ji);
                /* Views of a sample are consecutive, C1..C5, sample ids count up. */
                int sample = i / o.views + 1 + (split ? o.train : 0), view = i % o.views + 1;
                char expect[64];
                snprintf(expect, sizeof expect, "_%04d_", sample);
                ck_assert_msg(strstr(img, expect) != NULL, "%s: expected sample %d", img, sample);
                snprintf(expect, sizeof expect, "_C%d_", view);
                ck_assert_msg(strstr(img, expect) != NULL, "%s: expected view %d", img, view);
                snprintf(path, sizeof path, "%s/%s", root, img);
                ck_assert_msg(file_exists(path), "missing %s", path);
                n_refs++;
                bool ok = !strcmp(cls, "OK");
                ck_assert(ok == (sample <= o.train + o.test_good));
                if (ok) {
                    ck_assert(json_object_is_type(jm, json_type_null));
                    ck_assert_msg(strncmp(img, "OK/", 3) == 0, "%s", img);
                } else {
                    ck_assert(mvd_synth_defect_code(mvd_synth_bad_kind(c, sample - o.train - o.test_good - 1)) != NULL);
                    ck_assert_str_eq(cls, mvd_synth_defect_code(mvd_synth_bad_kind(c, sample - o.train - o.test_good - 1)));
                    const char *mp = json_object_get_string(jm);
                    ck_assert_ptr_nonnull(mp);
                    snprintf(expect, sizeof expect, "NG/%s/S%04d/", cls, sample);
                    ck_assert_msg(strncmp(img, expect, strlen(expect)) == 0, "%s", img);
                    /* Same name as the image, .png. */
                    ck_assert(strlen(mp) == strlen(img) && !strncmp(mp, img, strlen(img) - 4) &&
                              !strcmp(mp + strlen(mp) - 4, ".png"));
                    snprintf(path, sizeof path, "%s/%s", root, mp);
                    ck_assert_msg(file_exists(path), "missing %s", path);
                    n_refs++;
                    mvd_image m;
                    ck_assert_int_eq(mvd_image_read(path, &m), 0);
                    ck_assert(m.channels == 1 && m.width == o.size && m.height == o.size);
                    long on = 0;
                    for (int k = 0; k < m.width * m.height; k++) {
                        ck_assert(m.data[k] == 0 || m.data[k] == 255);
                        on += m.data[k] != 0;
                    }
                    n_bad_views += on > 0;
                    mvd_image_free(&m);
                }
            }
            /* Every defective sample shows its defect in at least one view. */
            if (split) ck_assert_int_ge(n_bad_views, o.test_bad);
        }
        /* Nothing on disk that the json does not list. */
        layout_n_files = 0;
        nftw(root, layout_entry, 16, FTW_PHYS);
        ck_assert_int_eq(layout_n_files, n_refs);
        json_object_put(js);
    }

    /* The project's Real-IAD index reads it back with the right labels. */
    mvd_dataset ds;
    ck_assert_msg(mvd_realiad_open(dir, "all", "test", &ds) == 0, "%s", mv_error_last());
    ck_assert_int_eq(ds.n_samples, o.categories * (o.test_good + o.test_bad));
    ck_assert_int_eq(mvd_dataset_count_label(&ds, 1), o.categories * o.test_bad);
    ck_assert_int_eq(mvd_dataset_count_label(&ds, 0), o.categories * o.test_good);
    mvd_dataset_free(&ds);
    ck_assert_msg(mvd_realiad_open(dir, "all", "train", &ds) == 0, "%s", mv_error_last());
    ck_assert_int_eq(ds.n_samples, o.categories * o.train);
    ck_assert_int_eq(ds.n_views, o.views);
    mvd_dataset_free(&ds);
    rm_tree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------ errors */

START_TEST(test_bad_options) {
    mvd_synth_opts o;
    mvd_synth_default_opts(&o);
    ck_assert_int_eq(mvd_synth_check_opts(&o), 0);
    mvd_synth_opts b = o;
    b.categories = 0;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "categories"));
    b = o; b.categories = mvd_synth_max_categories() + 1;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    b = o; b.size = 8;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "size"));
    b = o; b.views = 9;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "views"));
    b = o; b.supersample = 3;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    b = o; b.jpeg_quality = 0;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "jpeg_quality"));
    b = o; b.test_good = 0; b.test_bad = 0;
    ck_assert_int_eq(mvd_synth_check_opts(&b), -1);
    b = o; b.train = -1;
    ck_assert_int_eq(mvd_synth_generate(&b, "/tmp/never_written"), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "train"));

    /* Output under a regular file: a message naming the path, no crash. */
    char *dir = make_tmpdir();
    char file[4096], sub[4200];
    snprintf(file, sizeof file, "%s/plain_file", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/out", file);
    small_opts(&b, 64);
    ck_assert_int_eq(mvd_synth_generate(&b, sub), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "plain_file"));
    rm_tree(dir);
    free(dir);

    mvd_synth_render r;
    ck_assert_int_eq(mvd_synth_render_sample(&o, 99, 1, MVD_SYNTH_NONE, false, &r), -1);
    ck_assert_int_eq(mvd_synth_render_sample(&o, 0, 1, 42, false, &r), -1);
    ck_assert_int_eq(mvd_synth_render_sample(&o, 0, 0, MVD_SYNTH_NONE, false, &r), -1);
    ck_assert_ptr_null(mvd_synth_category_name(-1));
    ck_assert_str_eq(mvd_synth_defect_code(MVD_SYNTH_NONE), "OK");
    ck_assert_str_eq(mvd_synth_defect_code(MVD_SYNTH_SPOT), "ZW");
    ck_assert_str_eq(mvd_synth_defect_code(MVD_SYNTH_PIT), "AK");
}
END_TEST

static Suite *synth_suite(void) {
    Suite *s = suite_create("synth");
    TCase *tc = tcase_create("synth");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cameras);
    tcase_add_test(tc, test_epipolar_consistency);
    tcase_add_test(tc, test_masks_exact);
    tcase_add_test(tc, test_supersample_keeps_masks);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_json_split);
    tcase_add_test(tc, test_bad_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(synth_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
