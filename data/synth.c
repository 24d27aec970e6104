/* synth: options and the dataset writer of data/synth.h (the renderer is in
 * synth_render.c). Writes the Real-IAD layout, the split jsons, the exact
 * calibration and a small provenance file. */
#include "data/synth.h"
#include "data/fileio.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "mvead/geometry/calibration.h"
#include "tensor/error.h"

void mvd_synth_default_opts(mvd_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->categories = 3;
    o->train = 12;
    o->test_good = 6;
    o->test_bad = 6;
    o->size = 224;
    o->views = 5;
    o->supersample = 2;
    o->seed = 1;
    o->jpeg_quality = 95;
}

int mvd_synth_check_opts(const mvd_synth_opts *o) {
    if (!o) return mv_error("synth: options are NULL");
    int nc = mvd_synth_max_categories();
    if (o->categories < 1 || o->categories > nc)
        return mv_error("synth: option 'categories' = %d: expected 1..%d", o->categories, nc);
    if (o->train < 1 || o->train > 9999)
        return mv_error("synth: option 'train' = %d: expected 1..9999 good training samples", o->train);
    if (o->test_good < 0 || o->test_bad < 0 || o->test_good + o->test_bad < 1)
        return mv_error("synth: options 'test_good' = %d, 'test_bad' = %d: expected >= 0 each and at "
                        "least one test sample", o->test_good, o->test_bad);
    if ((long)o->train + o->test_good + o->test_bad > 9999)
        return mv_error("synth: train + test_good + test_bad = %ld: expected <= 9999 (4-digit sample ids)",
                        (long)o->train + o->test_good + o->test_bad);
    if (o->size < 32 || o->size > 4096)
        return mv_error("synth: option 'size' = %d: expected 32..4096 pixels", o->size);
    if (o->views < 2 || o->views > MVD_SYNTH_MAX_VIEWS)
        return mv_error("synth: option 'views' = %d: expected 2..%d", o->views, MVD_SYNTH_MAX_VIEWS);
    if (o->supersample != 1 && o->supersample != 2)
        return mv_error("synth: option 'supersample' = %d: expected 1 or 2", o->supersample);
    if (o->jpeg_quality < 1 || o->jpeg_quality > 100)
        return mv_error("synth: option 'jpeg_quality' = %d: expected 1..100", o->jpeg_quality);
    return 0;
}

/* mkdir -p. */
static int make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return mv_error("synth: output path '%s': empty or too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return mv_error("synth: cannot create directory '%s': %s", buf, strerror(errno));
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return mv_error("synth: '%s' exists and is not a directory", buf);
        buf[i] = saved;
    }
    return 0;
}

/* A plausible, deterministic capture time: one day per category, 41 s per
 * sample, 3 s between cameras. */
static void fake_timestamp(int category, int sample_id, int view, char out[16]) {
    time_t t = (time_t)1709283600 /* 2024-03-01 09:00:00 UTC */ + (time_t)category * 86400 +
               (time_t)sample_id * 41 + (time_t)view * 3;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

static int write_text_file(const char *path, const char *text) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return mv_error("synth: path too long: '%s'", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return mv_error("synth: cannot write '%s': %s", tmp, strerror(errno));
    size_t n = strlen(text);
    fwrite(text, 1, n, f);
    fputc('\n', f);
    return mvd_file_commit(f, tmp, path);   /* checks every write above */
}

static int write_json(const char *path, json_object *obj) {
    const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    return write_text_file(path, text);
}

static json_object *json_entry(const char *cat, const char *cls, const char *image, const char *mask) {
    json_object *e = json_object_new_object();
    json_object_object_add(e, "category", json_object_new_string(cat));
    json_object_object_add(e, "anomaly_class", json_object_new_string(cls));
    json_object_object_add(e, "image_path", json_object_new_string(image));
    json_object_object_add(e, "mask_path", mask ? json_object_new_string(mask) : NULL);
    return e;
}

/* Renders one sample and writes its views (and masks) under cat_dir; appends
 * the entries to list. */
static int write_sample(const mvd_synth_opts *o, const char *out_root, int cat, int sample_id, int kind,
                        json_object *list) {
    const char *name = mvd_synth_category_name(cat);
    const char *code = mvd_synth_defect_code(kind);
    char rel_dir[256], dir[4096], rel[600], path[4600];
    if (kind == MVD_SYNTH_NONE) snprintf(rel_dir, sizeof rel_dir, "OK/S%04d", sample_id);
    else snprintf(rel_dir, sizeof rel_dir, "NG/%s/S%04d", code, sample_id);
    if (snprintf(dir, sizeof dir, "%s/realiad_1024/%s/%s", out_root, name, rel_dir) >= (int)sizeof dir)
        return mv_error("synth: output path too long under '%s'", out_root);
    if (make_dirs(dir)) return -1;

    mvd_synth_render r;
    if (mvd_synth_render_sample(o, cat, sample_id, kind, false, &r)) return -1;
    int rc = 0;
    for (int v = 0; v < o->views && rc == 0; v++) {
        char ts[16], base[256];
        fake_timestamp(cat, sample_id, v, ts);
        if (kind == MVD_SYNTH_NONE) snprintf(base, sizeof base, "%s_%04d_OK_C%d_%s", name, sample_id, v + 1, ts);
        else snprintf(base, sizeof base, "%s_%04d_NG_%s_C%d_%s", name, sample_id, code, v + 1, ts);
        snprintf(path, sizeof path, "%s/%s.jpg", dir, base);
        if (mvd_image_write_jpeg(path, &r.images[v], o->jpeg_quality)) { rc = -1; break; }
        char rel_img[600];
        snprintf(rel_img, sizeof rel_img, "%s/%s.jpg", rel_dir, base);
        if (kind == MVD_SYNTH_NONE) {
            json_object_array_add(list, json_entry(name, "OK", rel_img, NULL));
        } else {
            snprintf(path, sizeof path, "%s/%s.png", dir, base);
            if (mvd_image_write_png(path, &r.masks[v])) { rc = -1; break; }
            snprintf(rel, sizeof rel, "%s/%s.png", rel_dir, base);
            json_object_array_add(list, json_entry(name, code, rel_img, rel));
        }
    }
    mvd_synth_render_free(&r);
    return rc;
}

static int write_calibration(const mvd_synth_opts *o, const char *out_root) {
    double K[MVD_SYNTH_MAX_VIEWS * 9], R[MVD_SYNTH_MAX_VIEWS * 9], t[MVD_SYNTH_MAX_VIEWS * 3];
    if (mvd_synth_cameras(o, K, R, t)) return -1;
    mvg_calibration *c = calloc(1, sizeof *c);
    if (!c) return mv_error("synth: out of memory");
    int rc = mvg_calibration_from_cameras(c, o->views, o->size, o->size, K, R, t);
    if (rc == 0) {
        snprintf(c->source, sizeof c->source, "synth");
        char path[4200];
        snprintf(path, sizeof path, "%s/calibration.json", out_root);
        rc = mvg_calibration_write_json(path, c);
    }
    free(c);
    return rc;
}

/* Provenance: the options that made the set. */
static int write_meta(const mvd_synth_opts *o, const char *out_root) {
    json_object *m = json_object_new_object();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    json_object_object_add(m, "generator", json_object_new_string("mvead synth"));
    json_object_object_add(m, "version", json_object_new_int(1));
    json_object_object_add(m, "seed", json_object_new_string(seed));
    json_object_object_add(m, "size", json_object_new_int(o->size));
    json_object_object_add(m, "views", json_object_new_int(o->views));
    json_object_object_add(m, "supersample", json_object_new_int(o->supersample));
    json_object_object_add(m, "train", json_object_new_int(o->train));
    json_object_object_add(m, "test_good", json_object_new_int(o->test_good));
    json_object_object_add(m, "test_bad", json_object_new_int(o->test_bad));
    json_object_object_add(m, "jpeg_quality", json_object_new_int(o->jpeg_quality));
    json_object *cats = json_object_new_array();
    for (int c = 0; c < o->categories; c++) {
        json_object *e = json_object_new_object();
        json_object *codes = json_object_new_array();
        int kinds[MVD_SYNTH_N_KINDS];
        int n = mvd_synth_category_defects(c, kinds);
        for (int i = 0; i < n; i++) json_object_array_add(codes, json_object_new_string(mvd_synth_defect_code(kinds[i])));
        json_object_object_add(e, "name", json_object_new_string(mvd_synth_category_name(c)));
        json_object_object_add(e, "defects", codes);
        json_object_array_add(cats, e);
    }
    json_object_object_add(m, "categories", cats);
    char path[4200];
    snprintf(path, sizeof path, "%s/synth.json", out_root);
    int rc = write_json(path, m);
    json_object_put(m);
    return rc;
}

int mvd_synth_generate(const mvd_synth_opts *o, const char *out_dir) {
    if (mvd_synth_check_opts(o)) return -1;
    if (!out_dir || !*out_dir) return mv_error("synth: output directory is empty");
    if (strlen(out_dir) > 3000) return mv_error("synth: output directory name too long");
    char jdir[4200];
    snprintf(jdir, sizeof jdir, "%s/realiad_jsons", out_dir);
    if (make_dirs(out_dir) || make_dirs(jdir)) return -1;

    const int per_cat = o->train + o->test_good + o->test_bad;
    const int total = o->categories * per_cat;
    int done = 0;
    for (int c = 0; c < o->categories; c++) {
        json_object *root = json_object_new_object();
        json_object *meta = json_object_new_object();
        json_object_object_add(meta, "prefix", json_object_new_string(""));
        json_object_object_add(meta, "normal_class", json_object_new_string("OK"));
        json_object_object_add(root, "meta", meta);
        json_object *train = json_object_new_array();
        json_object *test = json_object_new_array();
        json_object_object_add(root, "train", train);
        json_object_object_add(root, "test", test);
        int rc = 0;
        for (int i = 0; i < per_cat && rc == 0; i++) {
            int id = i + 1;
            int kind = MVD_SYNTH_NONE;
            if (i >= o->train + o->test_good) kind = mvd_synth_bad_kind(c, i - o->train - o->test_good);
            rc = write_sample(o, out_dir, c, id, kind, i < o->train ? train : test);
            if (rc == 0 && o->progress) o->progress(o->progress_ctx, ++done, total);
        }
        if (rc == 0) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s.json", jdir, mvd_synth_category_name(c));
            rc = write_json(path, root);
        }
        json_object_put(root);
        if (rc) return mv_error_prefix("synth: category '%s'", mvd_synth_category_name(c));
    }
    if (write_calibration(o, out_dir)) return mv_error_prefix("synth: %s/calibration.json", out_dir);
    return write_meta(o, out_dir);
}
