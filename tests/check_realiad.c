/* Tests for data/realiad (json index, grouping, labels, errors) and
 * data/loader (prefetching, order, errors, shutdown) on a tiny fake Real-IAD
 * tree written with the project's own image writers. */
#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/image.h"
#include "data/loader.h"
#include "data/realiad.h"
#include "data/synth.h"
#include "data/transform.h"
#include "tensor/error.h"

enum {
    FAULT_DROP_VIEW = 1,    /* toy_brick test NG 0010: no C3 entry */
    FAULT_EXTRA_KEY = 2,    /* toy_brick test entry 2 gets "extra" */
    FAULT_MISSING_KEY = 4,  /* toy_brick test entry 4 has no mask_path */
    FAULT_BAD_JSON = 8,     /* toy_brick.json truncated */
    FAULT_MISSING_FILE = 16 /* toy_brick OK 0003 C2 image not written */
};

typedef struct {
    const char *cat, *split, *id, *defect; /* defect NULL: OK */
    int defect_views;                      /* bit v-1: view v has defect pixels */
} fake_sample;

static const fake_sample fake_samples[] = {
    {"toy_brick", "train", "0001", NULL, 0},
    {"toy_brick", "train", "0002", NULL, 0},
    {"toy_brick", "test", "0003", NULL, 0},
    {"toy_brick", "test", "0010", "AK", (1 << 1) | (1 << 3)}, /* C2 and C4 */
    {"toy_brick", "test", "0011", "HS", 0},                   /* NG with empty masks */
    {"pcb", "train", "0001", NULL, 0},
    {"pcb", "test", "0002", NULL, 0},
    {"pcb", "test", "0005", "QS", 1 << 0}, /* C1: a single pixel */
};
#define N_FAKE ((int)(sizeof fake_samples / sizeof fake_samples[0]))
static const int json_camera_order[5] = {3, 1, 5, 2, 4};
#define IMG_W 24
#define IMG_H 18

static void mkdirs(const char *path) {
    char buf[1200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

static void rel_paths(const fake_sample *s, int cam, char *img, char *mask, size_t n) {
    if (!s->defect) {
        snprintf(img, n, "OK/S%s/%s_%s_OK_C%d_20231021130222.jpg", s->id, s->cat, s->id, cam);
        mask[0] = 0;
    } else {
        snprintf(img, n, "NG/%s/S%s/%s_%s_NG_%s_C%d_20231021140311.jpg", s->defect, s->id, s->cat,
                 s->id, s->defect, cam);
        snprintf(mask, n, "NG/%s/S%s/%s_%s_NG_%s_C%d_20231021140311.png", s->defect, s->id, s->cat,
                 s->id, s->defect, cam);
    }
}

static void write_file_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Builds <root>/realiad_1024 and <root>/realiad_jsons. */
static void build_tree(const char *root, int faults) {
    char dir[1200], path[1200], img_rel[256], mask_rel[256];
    for (int k = 0; k < N_FAKE; k++) {
        const fake_sample *s = &fake_samples[k];
        for (int cam = 1; cam <= 5; cam++) {
            rel_paths(s, cam, img_rel, mask_rel, sizeof img_rel);
            snprintf(path, sizeof path, "%s/realiad_1024/%s/%s", root, s->cat, img_rel);
            snprintf(dir, sizeof dir, "%s", path);
            *strrchr(dir, '/') = 0;
            mkdirs(dir);
            mvd_image im;
            ck_assert_int_eq(mvd_image_alloc(&im, IMG_W, IMG_H, 3), 0);
            for (int y = 0; y < IMG_H; y++)
                for (int x = 0; x < IMG_W; x++)
                    for (int c = 0; c < 3; c++)
                        im.data[(y * IMG_W + x) * 3 + c] =
                            (uint8_t)(20 * k + 30 * cam + 4 * x + 3 * y + 40 * c);
            int skip = (faults & FAULT_MISSING_FILE) && strcmp(s->cat, "toy_brick") == 0 &&
                       strcmp(s->id, "0003") == 0 && cam == 2;
            if (!skip) ck_assert_int_eq(mvd_image_write_jpeg(path, &im, 90), 0);
            mvd_image_free(&im);
            if (s->defect) {
                mvd_image m;
                ck_assert_int_eq(mvd_image_alloc(&m, IMG_W, IMG_H, 1), 0);
                if (s->defect_views & (1 << (cam - 1))) {
                    if (strcmp(s->cat, "pcb") == 0) {
                        m.data[5 * IMG_W + 7] = 1; /* tiny: dropped by nearest resizing */
                    } else {
                        for (int y = 6; y < 12; y++)
                            for (int x = 8; x < 16; x++) m.data[y * IMG_W + x] = 255;
                    }
                }
                snprintf(path, sizeof path, "%s/realiad_1024/%s/%s", root, s->cat, mask_rel);
                ck_assert_int_eq(mvd_image_write_png(path, &m), 0);
                mvd_image_free(&m);
            }
        }
    }
    snprintf(dir, sizeof dir, "%s/realiad_jsons", root);
    mkdirs(dir);
    const char *cats[2] = {"toy_brick", "pcb"};
    for (int c = 0; c < 2; c++) {
        size_t cap = 1 << 16, len = 0;
        char *js = malloc(cap);
        len += snprintf(js + len, cap - len, "{\"meta\": {\"prefix\": \"\", \"normal_class\": \"OK\"}");
        const char *splits[2] = {"train", "test"};
        for (int sp = 0; sp < 2; sp++) {
            len += snprintf(js + len, cap - len, ",\n \"%s\": [", splits[sp]);
            int entry = 0;
            for (int k = 0; k < N_FAKE; k++) {
                const fake_sample *s = &fake_samples[k];
                if (strcmp(s->cat, cats[c]) || strcmp(s->split, splits[sp])) continue;
                for (int j = 0; j < 5; j++) {
                    int cam = json_camera_order[j];
                    int faulty_split = c == 0 && sp == 1;
                    if ((faults & FAULT_DROP_VIEW) && faulty_split && !strcmp(s->id, "0010") && cam == 3)
                        continue;
                    rel_paths(s, cam, img_rel, mask_rel, sizeof img_rel);
                    char mask_json[300];
                    if (s->defect) snprintf(mask_json, sizeof mask_json, "\"%s\"", mask_rel);
                    else snprintf(mask_json, sizeof mask_json, "null");
                    len += snprintf(js + len, cap - len,
                                    "%s\n  {\"category\": \"%s\", \"anomaly_class\": \"%s\", "
                                    "\"image_path\": \"%s\"",
                                    entry ? "," : "", s->cat, s->defect ? s->defect : "OK", img_rel);
                    if (!((faults & FAULT_MISSING_KEY) && faulty_split && entry == 4))
                        len += snprintf(js + len, cap - len, ", \"mask_path\": %s", mask_json);
                    if ((faults & FAULT_EXTRA_KEY) && faulty_split && entry == 2)
                        len += snprintf(js + len, cap - len, ", \"extra\": 1");
                    len += snprintf(js + len, cap - len, "}");
                    entry++;
                }
            }
            len += snprintf(js + len, cap - len, "]");
        }
        len += snprintf(js + len, cap - len, "}\n");
        if ((faults & FAULT_BAD_JSON) && c == 0) js[len / 2] = 0;
        snprintf(path, sizeof path, "%s/realiad_jsons/%s.json", root, cats[c]);
        write_file_text(path, js);
        free(js);
    }
}

static char base_dir[256];

/* A fresh tree with the given faults; returns its root (static buffer). */
static const char *make_root(int faults) {
    static char root[512];
    static int counter = 0;
    snprintf(root, sizeof root, "%s/t%d_%d", base_dir, faults, counter++);
    mkdirs(root);
    build_tree(root, faults);
    return root;
}

static const char *ends_with_camera(const char *path, int cam) {
    char want[16];
    snprintf(want, sizeof want, "_C%d_", cam);
    return strstr(path, want);
}

START_TEST(test_grouping_and_labels) {
    const char *root = make_root(0);
    mvd_dataset ds;
    ck_assert_msg(mvd_realiad_open(root, "toy_brick", "test", &ds) == 0, "%s", mv_error_last());
    ck_assert_int_eq(ds.n_samples, 3);
    ck_assert_int_eq(ds.n_views, 5);
    ck_assert_int_eq(ds.n_categories, 1);
    ck_assert_str_eq(ds.categories[0], "toy_brick");
    const char *ids[3] = {"0003", "0010", "0011"}, *cls[3] = {"OK", "AK", "HS"};
    const int labels[3] = {0, 1, 0};
    for (int i = 0; i < 3; i++) {
        const mvd_sample *s = &ds.samples[i];
        ck_assert_str_eq(s->category, "toy_brick");
        ck_assert_str_eq(s->sample_id, ids[i]);
        ck_assert_str_eq(s->anomaly_class, cls[i]);
        ck_assert_int_eq(s->n_views, 5);
        ck_assert_int_eq(s->label, labels[i]);
        for (int v = 0; v < 5; v++) {
            ck_assert_int_eq(s->views[v].camera, v + 1);
            ck_assert_ptr_nonnull(ends_with_camera(s->views[v].image_path, v + 1));
            ck_assert_ptr_nonnull(strstr(s->views[v].image_path, "/realiad_1024/toy_brick/"));
            if (i == 0) ck_assert_ptr_null(s->views[v].mask_path);
            else ck_assert_ptr_nonnull(ends_with_camera(s->views[v].mask_path, v + 1));
            int want = i == 1 && (v == 1 || v == 3);
            ck_assert_int_eq(s->views[v].label, want);
        }
    }
    ck_assert_int_eq(mvd_dataset_count_label(&ds, 1), 1);
    mvd_dataset_free(&ds);
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "train", &ds), 0);
    ck_assert_int_eq(ds.n_samples, 2);
    ck_assert_int_eq(mvd_dataset_count_label(&ds, 0), 2);
    mvd_dataset_free(&ds);
    /* the pcb defect is one pixel: still a label 1 */
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "test", &ds), 0);
    ck_assert_int_eq(ds.n_samples, 2);
    ck_assert_int_eq(ds.samples[1].label, 1);
    ck_assert_int_eq(ds.samples[1].views[0].label, 1);
    ck_assert_int_eq(ds.samples[1].views[1].label, 0);
    mvd_dataset_free(&ds);
}
END_TEST

START_TEST(test_multiclass) {
    const char *root = make_root(0);
    mvd_dataset ds;
    const char *modes[2] = {NULL, "all"};
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(mvd_realiad_open(root, modes[m], "test", &ds), 0);
        ck_assert_int_eq(ds.n_categories, 2);
        ck_assert_str_eq(ds.categories[0], "pcb"); /* sorted */
        ck_assert_str_eq(ds.categories[1], "toy_brick");
        ck_assert_int_eq(ds.n_samples, 5);
        ck_assert_str_eq(ds.samples[0].category, "pcb");
        ck_assert_str_eq(ds.samples[4].category, "toy_brick");
        ck_assert_int_eq(mvd_dataset_count_label(&ds, 1), 2);
        mvd_dataset_free(&ds);
    }
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick, pcb", "test", &ds), 0);
    ck_assert_int_eq(ds.n_samples, 5);
    ck_assert_str_eq(ds.samples[0].category, "toy_brick"); /* given order */
    ck_assert_str_eq(ds.samples[3].category, "pcb");
    mvd_dataset_free(&ds);
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick,nope", "test", &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "nope.json"));
    ck_assert_int_eq(mvd_realiad_open(root, "pcb,pcb", "test", &ds), -1);
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "val", &ds), -1);
    ck_assert_int_eq(mvd_realiad_open("/nonexistent_root", NULL, "test", &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "/nonexistent_root"));
}
END_TEST

/* ADEval's command groups views into samples by a regular expression on the
 * image path (its README's pattern for Real-IAD); mvead groups by category,
 * sample id, OK/NG and defect code. Every view must match, and two views must
 * share the pattern's key exactly when mvead puts them in one sample. */
static void check_adeval_groups(const mvd_dataset *ds) {
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "([a-zA-Z][a-zA-Z0-9_]*_[0-9]{4}_[A-Z][A-Z_]*[A-Z])_C[0-9]_", REG_EXTENDED), 0);
    int n = 0;
    for (int i = 0; i < ds->n_samples; i++) n += ds->samples[i].n_views;
    char(*key)[128] = calloc((size_t)n, sizeof *key);
    int *owner = calloc((size_t)n, sizeof(int)), k = 0;
    for (int i = 0; i < ds->n_samples; i++)
        for (int v = 0; v < ds->samples[i].n_views; v++, k++) {
            const char *p = ds->samples[i].views[v].image_path;
            regmatch_t m[2];
            ck_assert_msg(regexec(&re, p, 2, m, 0) == 0, "ADEval's sample pattern does not match %s", p);
            snprintf(key[k], sizeof key[k], "%.*s", (int)(m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
            owner[k] = i;
        }
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            ck_assert_msg((strcmp(key[a], key[b]) == 0) == (owner[a] == owner[b]), "views %d (%s, sample %d) and %d (%s, sample %d)",
                          a, key[a], owner[a], b, key[b], owner[b]);
    free(key);
    free(owner);
    regfree(&re);
}

START_TEST(test_grouping_as_adeval) {
    mvd_dataset ds;
    const char *root = make_root(0);
    ck_assert_msg(mvd_realiad_open(root, NULL, "test", &ds) == 0, "%s", mv_error_last());
    ck_assert_int_gt(ds.n_samples, 2);
    check_adeval_groups(&ds);
    mvd_dataset_free(&ds);
    /* the synthetic set: two categories, good and defective samples */
    mvd_synth_opts o;
    mvd_synth_default_opts(&o);
    o.categories = 2;
    o.train = 1;
    o.test_good = 2;
    o.test_bad = 2;
    o.size = 32;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/synth_groups", base_dir);
    ck_assert_msg(mvd_synth_generate(&o, dir) == 0, "%s", mv_error_last());
    ck_assert_msg(mvd_realiad_open(dir, NULL, "test", &ds) == 0, "%s", mv_error_last());
    ck_assert_int_eq(ds.n_samples, 8);
    check_adeval_groups(&ds);
    mvd_dataset_free(&ds);
}
END_TEST

START_TEST(test_parse_name) {
    char id[32], def[16];
    int ok, cam;
    ck_assert_int_eq(mvd_realiad_parse_name("OK/S0001/rolled_strip_base_0001_OK_C4_20231021.jpg", id,
                                            sizeof id, &ok, def, sizeof def, &cam), 0);
    ck_assert_str_eq(id, "0001");
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(cam, 4);
    ck_assert_int_eq(mvd_realiad_parse_name("sim_card_set_0123_NG_ZW_C2_2023.png", id, sizeof id, &ok,
                                            def, sizeof def, &cam), 0);
    ck_assert_str_eq(id, "0123");
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(def, "ZW");
    ck_assert_int_eq(cam, 2);
    ck_assert_int_eq(mvd_realiad_parse_name("x_0001_XX_C1_1.jpg", id, sizeof id, &ok, def, sizeof def, &cam), -1);
    ck_assert_int_eq(mvd_realiad_parse_name("x_0001_OK_1_1.jpg", id, sizeof id, &ok, def, sizeof def, &cam), -1);
    ck_assert_int_eq(mvd_realiad_parse_name("x_ab_OK_C1_1.jpg", id, sizeof id, &ok, def, sizeof def, &cam), -1);
    ck_assert_int_eq(mvd_realiad_parse_name("noise.jpg", id, sizeof id, &ok, def, sizeof def, &cam), -1);
}
END_TEST

START_TEST(test_missing_view) {
    const char *root = make_root(FAULT_DROP_VIEW);
    mvd_dataset ds;
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "test", &ds), -1);
    const char *msg = mv_error_last();
    ck_assert_msg(strstr(msg, "0010") && strstr(msg, "missing view C3") && strstr(msg, "toy_brick.json"),
                  "message: %s", msg);
    mvd_realiad_opts o;
    mvd_realiad_opts_default(&o);
    o.skip_incomplete = 1;
    ck_assert_int_eq(mvd_realiad_open_opts(root, "toy_brick", "test", &o, &ds), 0);
    ck_assert_int_eq(ds.n_samples, 2);
    ck_assert_str_eq(ds.samples[0].sample_id, "0003");
    ck_assert_str_eq(ds.samples[1].sample_id, "0011");
    ck_assert_ptr_nonnull(ends_with_camera(ds.samples[1].views[4].image_path, 5));
    mvd_dataset_free(&ds);
    /* the other split is fine */
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "train", &ds), 0);
    mvd_dataset_free(&ds);
    /* fewer expected views: C5 is then unexpected */
    o.skip_incomplete = 0;
    o.n_views = 4;
    ck_assert_int_eq(mvd_realiad_open_opts(root, "toy_brick", "train", &o, &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "unexpected view C5"));
}
END_TEST

START_TEST(test_missing_file) {
    const char *root = make_root(FAULT_MISSING_FILE);
    mvd_dataset ds;
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "test", &ds), -1);
    const char *msg = mv_error_last();
    ck_assert_msg(strstr(msg, "toy_brick_0003_OK_C2_20231021130222.jpg") && strstr(msg, "not found"),
                  "message: %s", msg);
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "test", &ds), 0);
    mvd_dataset_free(&ds);
}
END_TEST

START_TEST(test_json_errors) {
    mvd_dataset ds;
    const char *root = make_root(FAULT_EXTRA_KEY);
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "test", &ds), -1);
    const char *msg = mv_error_last();
    ck_assert_msg(strstr(msg, "toy_brick.json") && strstr(msg, "entry 2") && strstr(msg, "extra"),
                  "message: %s", msg);
    root = make_root(FAULT_MISSING_KEY);
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "test", &ds), -1);
    msg = mv_error_last();
    ck_assert_msg(strstr(msg, "toy_brick.json") && strstr(msg, "entry 4") && strstr(msg, "mask_path"),
                  "message: %s", msg);
    root = make_root(FAULT_BAD_JSON);
    ck_assert_int_eq(mvd_realiad_open(root, NULL, "train", &ds), -1);
    msg = mv_error_last();
    ck_assert_msg(strstr(msg, "toy_brick.json") && strstr(msg, "invalid JSON"), "message: %s", msg);
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "train", &ds), 0);
    mvd_dataset_free(&ds);
    /* wrong types and mismatched classes */
    char path[700];
    snprintf(path, sizeof path, "%s/realiad_jsons/pcb.json", root);
    write_file_text(path, "{\"meta\": {}, \"train\": [{\"category\": \"pcb\", \"anomaly_class\": 3, "
                          "\"image_path\": \"a\", \"mask_path\": null}]}");
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "train", &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "anomaly_class"));
    write_file_text(path, "{\"train\": [{\"category\": \"pcb\", \"anomaly_class\": \"AK\", "
                          "\"image_path\": \"OK/S0001/pcb_0001_OK_C1_1.jpg\", \"mask_path\": null}]}");
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "train", &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "does not match"));
    write_file_text(path, "[1, 2]");
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "train", &ds), -1);
    write_file_text(path, "{\"train\": []} trailing");
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "train", &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "pcb.json"));
    write_file_text(path, "{\"test\": []}");
    ck_assert_int_eq(mvd_realiad_open(root, "pcb", "train", &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "\"train\""));
}
END_TEST

START_TEST(test_json_dir_layouts) {
    const char *root = make_root(0);
    char cmd[2000], dir[700];
    /* the official archive's nested realiad_jsons/realiad_jsons/ */
    snprintf(cmd, sizeof cmd, "cd '%s/realiad_jsons' && mkdir realiad_jsons && mv *.json realiad_jsons/", root);
    ck_assert_int_eq(system(cmd), 0);
    mvd_dataset ds;
    ck_assert_msg(mvd_realiad_open(root, NULL, "test", &ds) == 0, "%s", mv_error_last());
    ck_assert_int_eq(ds.n_samples, 5);
    mvd_dataset_free(&ds);
    /* an explicit json dir (relative to root), and an image dir that does not exist */
    snprintf(cmd, sizeof cmd, "cd '%s' && mv realiad_jsons/realiad_jsons realiad_jsons_sv", root);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(mvd_realiad_open(root, NULL, "test", &ds), -1);
    mvd_realiad_opts o;
    mvd_realiad_opts_default(&o);
    o.json_dir = "realiad_jsons_sv";
    ck_assert_int_eq(mvd_realiad_open_opts(root, "pcb", "test", &o, &ds), 0);
    ck_assert_int_eq(ds.n_samples, 2);
    mvd_dataset_free(&ds);
    snprintf(dir, sizeof dir, "%s/realiad_jsons_sv", root);
    o.json_dir = dir; /* absolute */
    ck_assert_int_eq(mvd_realiad_open_opts(root, "pcb", "test", &o, &ds), 0);
    mvd_dataset_free(&ds);
    o.image_dir = "realiad_256";
    ck_assert_int_eq(mvd_realiad_open_opts(root, "pcb", "test", &o, &ds), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "realiad_256"));
}
END_TEST

static const mvd_loader_opts *small_loader_opts(int threads, int depth) {
    static mvd_loader_opts o;
    mvd_loader_opts_default(&o);
    o.pre.height = 14;
    o.pre.width = 14;
    o.n_threads = threads;
    o.depth = depth;
    return &o;
}

/* Runs a loader over `order` and compares every item with direct preprocessing. */
static void check_loader_matches(const mvd_dataset *ds, const int *order, int n, int threads, int depth) {
    const mvd_loader_opts *o = small_loader_opts(threads, depth);
    mvd_loader *ld = mvd_loader_open(ds, order, n, o);
    ck_assert_msg(ld != NULL, "%s", mv_error_last());
    size_t hw = 14 * 14;
    float *views = malloc(sizeof(float) * 5 * 3 * hw);
    uint8_t *masks = malloc(5 * hw);
    int labels[MVD_MAX_VIEWS];
    int count = order ? n : ds->n_samples;
    for (int p = 0; p < count; p++) {
        const mvd_loader_item *it;
        ck_assert_msg(mvd_loader_next(ld, &it) == 1, "threads %d position %d: %s", threads, p, mv_error_last());
        int idx = order ? order[p] : p;
        ck_assert_int_eq(it->position, p);
        ck_assert_int_eq(it->index, idx);
        ck_assert_ptr_eq(it->sample, &ds->samples[idx]);
        ck_assert_int_eq(it->n_views, 5);
        ck_assert_int_eq(it->height, 14);
        ck_assert_int_eq(it->width, 14);
        ck_assert_int_eq(mvd_load_sample(&ds->samples[idx], &o->pre, views, masks, labels), 0);
        ck_assert_int_eq(memcmp(views, it->views, sizeof(float) * 5 * 3 * hw), 0);
        ck_assert_int_eq(memcmp(masks, it->masks, 5 * hw), 0);
        for (int v = 0; v < 5; v++) {
            ck_assert_int_eq(it->view_labels[v], labels[v]);
            ck_assert_int_eq(it->view_labels[v], ds->samples[idx].views[v].label);
        }
        ck_assert_int_eq(it->label, ds->samples[idx].label);
    }
    const mvd_loader_item *it;
    ck_assert_int_eq(mvd_loader_next(ld, &it), 0);
    ck_assert_int_eq(mvd_loader_next(ld, &it), 0);
    mvd_loader_close(ld);
    free(views);
    free(masks);
}

START_TEST(test_loader_order_and_data) {
    const char *root = make_root(0);
    mvd_dataset ds;
    ck_assert_int_eq(mvd_realiad_open(root, NULL, "test", &ds), 0);
    /* masks were binarised: a defect view has some 1s at 14 x 14 (not the 1-pixel pcb one) */
    const int threads[3] = {0, 1, 3}, depths[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++)
        for (int d = 0; d < 3; d++) check_loader_matches(&ds, NULL, 0, threads[t], depths[d]);
    int rev[5] = {4, 3, 2, 1, 0}, rep[7] = {2, 2, 0, 4, 4, 1, 3};
    check_loader_matches(&ds, rev, 5, 3, 2);
    check_loader_matches(&ds, rep, 7, 3, 3);
    /* mask content of the toy_brick AK sample (index 3: pcb first) view C2 */
    mvd_loader *ld = mvd_loader_open(&ds, (const int[]){3}, 1, small_loader_opts(1, 2));
    const mvd_loader_item *it;
    ck_assert_int_eq(mvd_loader_next(ld, &it), 1);
    ck_assert_str_eq(it->sample->sample_id, "0010");
    int ones = 0;
    for (int i = 0; i < 14 * 14; i++) ones += it->masks[1 * 14 * 14 + i];
    ck_assert_int_gt(ones, 0);
    for (int i = 0; i < 14 * 14; i++) ck_assert_int_eq(it->masks[0 * 14 * 14 + i], 0);
    mvd_loader_close(ld);
    /* bad options */
    ck_assert_ptr_null(mvd_loader_open(&ds, (const int[]){7}, 1, small_loader_opts(1, 2)));
    ck_assert_ptr_null(mvd_loader_open(&ds, NULL, 0, small_loader_opts(1, 0)));
    mvd_dataset_free(&ds);
}
END_TEST

START_TEST(test_loader_deferred_labels) {
    const char *root = make_root(0);
    mvd_dataset ds;
    mvd_realiad_opts o;
    mvd_realiad_opts_default(&o);
    o.labels = MVD_LABELS_DEFER;
    ck_assert_int_eq(mvd_realiad_open_opts(root, "toy_brick", "test", &o, &ds), 0);
    ck_assert_int_eq(ds.samples[0].label, 0);
    ck_assert_int_eq(ds.samples[1].label, -1);
    ck_assert_int_eq(ds.samples[1].views[0].label, -1);
    mvd_loader *ld = mvd_loader_open(&ds, NULL, 0, small_loader_opts(2, 2));
    const mvd_loader_item *it;
    const int want[3] = {0, 1, 0};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mvd_loader_next(ld, &it), 1);
        ck_assert_int_eq(it->label, want[i]);
    }
    ck_assert_int_eq(mvd_loader_next(ld, &it), 0);
    mvd_loader_close(ld);
    mvd_dataset_free(&ds);
}
END_TEST

START_TEST(test_loader_errors_and_shutdown) {
    const char *root = make_root(0);
    mvd_dataset ds;
    ck_assert_int_eq(mvd_realiad_open(root, "toy_brick", "test", &ds), 0);
    /* shut down mid-stream, with workers busy */
    for (int t = 1; t <= 3; t++) {
        mvd_loader *ld = mvd_loader_open(&ds, NULL, 0, small_loader_opts(t, 3));
        const mvd_loader_item *it;
        ck_assert_int_eq(mvd_loader_next(ld, &it), 1);
        mvd_loader_close(ld);
        ld = mvd_loader_open(&ds, NULL, 0, small_loader_opts(t, 2));
        mvd_loader_close(ld); /* before any next */
    }
    mvd_loader_close(NULL);
    /* corrupt the image of sample 1 view C3 after opening: items before it come out,
     * then the error (naming the file), then the error again */
    const char *bad = ds.samples[1].views[2].image_path;
    write_file_text(bad, "not a jpeg at all");
    const int threads[3] = {0, 1, 3};
    for (int t = 0; t < 3; t++) {
        mvd_loader *ld = mvd_loader_open(&ds, NULL, 0, small_loader_opts(threads[t], 2));
        const mvd_loader_item *it;
        ck_assert_int_eq(mvd_loader_next(ld, &it), 1);
        ck_assert_int_eq(it->index, 0);
        mv_error_clear();
        ck_assert_int_eq(mvd_loader_next(ld, &it), -1);
        ck_assert_ptr_null(it);
        const char *msg = mv_error_last();
        ck_assert_msg(strstr(msg, bad) && strstr(msg, "0010") && strstr(msg, "C3"), "message: %s", msg);
        ck_assert_int_eq(mvd_loader_next(ld, &it), -1);
        mvd_loader_close(ld);
    }
    mvd_dataset_free(&ds);
}
END_TEST

int main(void) {
    snprintf(base_dir, sizeof base_dir, "/tmp/check_realiad_XXXXXX");
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("realiad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_name);
    tcase_add_test(tc, test_grouping_and_labels);
    tcase_add_test(tc, test_multiclass);
    tcase_add_test(tc, test_missing_view);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_json_errors);
    tcase_add_test(tc, test_json_dir_layouts);
    tcase_add_test(tc, test_loader_order_and_data);
    tcase_add_test(tc, test_loader_deferred_labels);
    tcase_add_test(tc, test_loader_errors_and_shutdown);
    tcase_add_test(tc, test_grouping_as_adeval);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", base_dir);
    return failed ? 1 : 0;
}
