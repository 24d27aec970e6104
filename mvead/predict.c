/* predict: scores one multi-view sample (V image files) with a finished run:
 * the run's own configuration (backbone, layer, size, fusion), its EAM
 * checkpoint and memory bank; prints per-view image scores and the sample
 * score, and writes DIR/scores.json and a heatmap overlay DIR/C<v>.png per
 * view. The same preprocessing and features as `extract`, so a test sample's
 * scores equal those of `eval`. Called by mvead/main.c. */
#include "mvead/commands.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/anomaly_map.h"
#include "mvead/knn.h"
#include "mvead/pipeline.h"
#include "mvead/progress.h"
#include "nn/vit.h"
#include "tensor/error.h"
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *const PREDICT_OPTS[] = {"name", "runs", "calib", "threads", "quiet", "sigma", NULL};
static const char *const PREDICT_SUMMARY =
    "Scores one multi-view sample with a finished run (its config.json, backbone,\n"
    "checkpoint.h5 and bank.h5): per-view image scores, the sample score, heatmaps.\n"
    "Synopsis: mvead predict --name RUN [--runs R] --images IMG1,...,IMGV --out DIR";

/* jet-like colour map for t in [0, 1] (the one eval uses for its overlays) */
static void colormap(double t, uint8_t *rgb) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double r = 1.5 - fabs(4 * t - 3), g = 1.5 - fabs(4 * t - 2), b = 1.5 - fabs(4 * t - 1);
    rgb[0] = (uint8_t)(255 * (r < 0 ? 0 : r > 1 ? 1 : r));
    rgb[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
    rgb[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}

/* image | map blended over it, at the network size H x W. */
static int write_overlay(const char *out, const char *image_path, const float *map, int H, int W, double lo, double hi) {
    mvd_image src = {0}, img = {0}, canvas = {0};
    int rc = -1;
    if (mvd_image_read_as(image_path, 3, &src)) return -1;
    if (mvd_image_resize(&src, W, H, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &img)) goto done;
    if (mvd_image_alloc(&canvas, 2 * W, H, 3)) goto done;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = img.data + ((size_t)y * W + x) * 3;
            uint8_t *a = canvas.data + ((size_t)y * 2 * W + x) * 3, *b = a + (size_t)W * 3, c[3];
            memcpy(a, p, 3);
            colormap((map[(size_t)y * W + x] - lo) / (hi > lo ? hi - lo : 1), c);
            for (int k = 0; k < 3; k++) b[k] = (uint8_t)(0.5 * p[k] + 0.5 * c[k]);
        }
    rc = mvd_image_write_png(out, &canvas);
done:
    mvd_image_free(&src);
    mvd_image_free(&img);
    mvd_image_free(&canvas);
    return rc;
}

typedef struct {
    int count;
    float **rows;
    int64_t *n;
} bank_set;

static void bank_set_free(bank_set *b) {
    for (int i = 0; i < b->count; i++) free(b->rows ? b->rows[i] : NULL);
    free(b->rows);
    free(b->n);
    memset(b, 0, sizeof *b);
}

/* bank.h5: attrs n_banks, dim, backbone_hash; bank/<i> [M, D] f32. */
static int bank_set_load(const char *path, int D, const char *hash, bank_set *b) {
    memset(b, 0, sizeof *b);
    int fmt;
    hid_t f = mvh5_open_read(path, "bank", MVEAD_BANK_FORMAT, &fmt);
    if (f < 0) return -1;
    int rc = -1;
    int64_t nb, dim;
    if (mvh5_attr_get_int(f, ".", "n_banks", &nb, path) || mvh5_attr_get_int(f, ".", "dim", &dim, path)) goto done;
    if (dim != D) { mv_error("%s: bank of %lld-dim features, the backbone gives %d", path, (long long)dim, D); goto done; }
    if (nb < 1 || nb > 64) { mv_error("%s: n_banks = %lld is out of range", path, (long long)nb); goto done; }
    if (mvh5_attr_exists(f, ".", "backbone_hash")) {
        char bh[64] = "";
        if (mvh5_attr_get_str(f, ".", "backbone_hash", bh, sizeof bh, path)) goto done;
        if (strcmp(bh, hash)) {
            mv_error("%s: built from backbone %s, the run's config loads %s (wrong --runs/--name or edited config.json?)", path, bh, hash);
            goto done;
        }
    }
    b->count = (int)nb;
    b->rows = calloc((size_t)nb, sizeof(float *));
    b->n = calloc((size_t)nb, sizeof(int64_t));
    for (int i = 0; i < nb; i++) {
        char name[32];
        snprintf(name, sizeof name, "bank/%d", i);
        int64_t shp[2] = {-1, D};
        mvt_tensor *t = mvh5_read_tensor(f, name, MVT_F32, 2, shp, path);
        if (!t) goto done;
        b->n[i] = t->shape[0];
        if (b->n[i] < 1) { mvt_release(t); mv_error("%s: bank %d is empty", path, i); goto done; }
        b->rows[i] = malloc(sizeof(float) * (size_t)b->n[i] * D);
        memcpy(b->rows[i], mvt_f32(t), sizeof(float) * (size_t)b->n[i] * D);
        mvt_release(t);
    }
    rc = 0;
done:
    H5Fclose(f);
    if (rc) bank_set_free(b);
    return rc;
}

/* The highest image score of a good test view in the run's scores.h5 (a
 * reference for reading the new scores); NAN when unavailable. */
static double run_good_view_max(const char *scores_path, double *all_max) {
    *all_max = NAN;
    if (access(scores_path, R_OK)) return NAN;
    int fmt;
    hid_t f = mvh5_open_read(scores_path, "scores", MVEAD_SCORES_FORMAT, &fmt);
    if (f < 0) { mv_error_clear(); return NAN; }
    double good = NAN;
    mvt_tensor *s = mvh5_read_tensor(f, "image_scores", MVT_F64, 2, NULL, scores_path);
    mvt_tensor *l = s ? mvh5_read_tensor(f, "view_label", MVT_I64, 2, s->shape, scores_path) : NULL;
    if (l) {
        double g = -INFINITY, a = -INFINITY;
        for (int64_t i = 0; i < mvt_numel(s); i++) {
            double x = mvt_f64(s)[i];
            if (x > a) a = x;
            if (!mvt_i64(l)[i] && x > g) g = x;
        }
        if (isfinite(g)) good = g;
        if (isfinite(a)) *all_max = a;
    }
    mvt_release(s);
    mvt_release(l);
    mv_error_clear();
    H5Fclose(f);
    return good;
}

/* Parses the command line on top of the run's config.json (found through
 * --runs/--name). Returns -1 to continue, else the exit code. */
static int parse_on_run_config(const char *cmd, const char *summary, const char *const *accepted, int argc, char **argv,
                               const char *extra_help, mvead_config *c) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            mvead_config_usage(cmd, summary, accepted);
            fputs(extra_help, stdout);
            return 0;
        }
    mvead_config first;
    mvead_config_defaults(&first);
    char *pos[1];
    int np;
    if (mvead_config_parse(&first, cmd, summary, accepted, argc, argv, pos, 0, &np) < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return EXIT_USAGE;
    }
    char dir[1024], path[1100];
    if (mvead_run_dir(&first, dir, sizeof dir, false)) goto fail;
    snprintf(path, sizeof path, "%s/config.json", dir);
    mvead_config_defaults(c);
    if (access(path, R_OK)) {
        mv_error("%s: no run configuration here (is --runs/--name right? run `mvead run` first)", path);
        goto fail;
    }
    if (mvead_config_load_json(c, path)) goto fail;
    if (mvead_config_parse(c, cmd, summary, accepted, argc, argv, pos, 0, &np) < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return EXIT_USAGE;
    }
    /* the files are where we found them, whatever config.json remembers */
    snprintf(c->runs, sizeof c->runs, "%s", first.runs);
    snprintf(c->name, sizeof c->name, "%s", first.name);
    if (c->threads > 0) mvt_set_num_threads(c->threads);
    mvead_progress_set_quiet(c->quiet);
    return -1;
fail:
    fprintf(stderr, "mvead %s: error: %s\n", cmd, mv_error_last());
    return 1;
}

/* Takes "--opt VALUE" / "--opt=VALUE" out of argv (compacting it). Returns
 * 1 found, 0 absent, -1 missing value. */
static int take_opt(int *argc, char **argv, const char *opt, const char **value) {
    size_t n = strlen(opt);
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        int used = 0;
        if (!strcmp(a, opt)) {
            if (i + 1 >= *argc) return -1;
            *value = argv[i + 1];
            used = 2;
        } else if (!strncmp(a, opt, n) && a[n] == '=') {
            *value = a + n + 1;
            used = 1;
        }
        if (used) {
            for (int j = i; j + used < *argc; j++) argv[j] = argv[j + used];
            *argc -= used;
            return 1;
        }
    }
    return 0;
}

int mvead_cmd_predict(int argc, char **argv) {
    const char *images = NULL, *out = NULL;
    char **args = malloc(sizeof(char *) * (size_t)(argc + 1));
    memcpy(args, argv, sizeof(char *) * (size_t)argc);
    int na = argc;
    if (take_opt(&na, args, "--images", &images) < 0 || take_opt(&na, args, "--out", &out) < 0) {
        fprintf(stderr, "mvead predict: --images and --out need a value\n");
        free(args);
        return EXIT_USAGE;
    }
    mvead_config c;
    int r = parse_on_run_config("predict", PREDICT_SUMMARY, PREDICT_OPTS, na, args,
                                "  --images LIST     the V view images of one sample, comma-separated, in camera order\n"
                                "  --out DIR         where scores.json and the heatmaps C<v>.png go (created)\n",
                                &c);
    free(args);
    if (r >= 0) return r;
    if (!images || !out) {
        fprintf(stderr, "mvead predict: needs --images IMG1,...,IMGV and --out DIR (see mvead predict --help)\n");
        return EXIT_USAGE;
    }

    int rc = 1, V = 0;
    char *list = strdup(images), *paths[64];
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (V == 64) { fprintf(stderr, "mvead predict: --images: more than 64 views\n"); free(list); return EXIT_USAGE; }
        paths[V++] = tok;
    }
    if (V < 1) { fprintf(stderr, "mvead predict: --images is empty\n"); free(list); return EXIT_USAGE; }
    mvead_paths p;
    mvn_vit *m = NULL;
    mvead_state st = {0};
    bank_set banks = {0};
    mvt_tensor *static_mask = NULL, *px = NULL, *feat = NULL;
    float *fused = NULL, *patch = NULL, *maps = NULL;
    json_object *root = NULL;
    char hash[64];
    if (mvead_paths_init(&c, &p, false)) goto fail;
    if (!(m = mvead_backbone_load(&c, hash, sizeof hash))) goto fail;
    int P = m->cfg.patch_size, H = c.image_size, W = c.image_size, gh = H / P, gw = W / P, N = gh * gw;
    int D = m->cfg.hidden_size;
    if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) { mv_error_prefix("predict (run `mvead train` first)"); goto fail; }
    if (bank_set_load(p.bank, D, hash, &banks)) { mv_error_prefix("predict (run `mvead bank` first)"); goto fail; }
    if (banks.count != 1 && banks.count != V) {
        mv_error("%s has %d per-view banks, --images gives %d views", p.bank, banks.count, V);
        goto fail;
    }
    mvd_cache_info in = {.S = 1, .V = V, .N = N, .D = D, .H = H, .W = W, .P = P, .grid_h = gh, .grid_w = gw, .layer = c.layer};
    snprintf(in.backbone, sizeof in.backbone, "%.255s", c.backbone);
    mvead_fusion_opts fo;
    if (mvead_pipeline_fusion(&c, &p, &in, &fo, &static_mask)) goto fail;

    int64_t shp[4] = {V, 3, H, W};
    px = mvt_empty(MVT_F32, 4, shp);
    for (int v = 0; v < V; v++)
        if (mvd_preprocess_file(paths[v], H, W, mvt_f32(px) + (size_t)v * 3 * H * W)) goto fail;
    if (!(feat = mvn_vit_features(m, px, c.layer, c.final_norm))) goto fail;
    mvt_tensor *fc = mvt_contiguous(feat);
    mvt_release(feat);
    feat = fc;
    fused = malloc(sizeof(float) * (size_t)V * N * D);
    patch = malloc(sizeof(float) * (size_t)V * N);
    maps = malloc(sizeof(float) * (size_t)V * H * W);
    if (mvead_fuse_sample(&st, &fo, static_mask, mvt_f32(feat), V, N, D, fused)) goto fail;
    double image_score[64], sample_score = -INFINITY;
    for (int v = 0; v < V; v++) {
        int b = banks.count == 1 ? 0 : v;
        if (mvs_knn_f32(fused + (size_t)v * N * D, N, banks.rows[b], banks.n[b], D, patch + (size_t)v * N, NULL)) goto fail;
        double mx = -INFINITY;
        for (int j = 0; j < N; j++) if (patch[(size_t)v * N + j] > mx) mx = patch[(size_t)v * N + j];
        image_score[v] = mx;
        if (mx > sample_score) sample_score = mx;
    }
    if (mvs_anomaly_maps_f32(patch, V, gh, gw, H, W, c.sigma, MVS_MAP_TRUNCATE, maps)) goto fail;

    /* colour scale: from this sample's lowest map value to the run's highest
     * test score, so a normal sample does not light up by itself */
    double run_max, good_max = run_good_view_max(p.scores, &run_max);
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t k = 0; k < (int64_t)V * H * W; k++) {
        if (maps[k] < lo) lo = maps[k];
        if (maps[k] > hi) hi = maps[k];
    }
    if (isfinite(run_max) && run_max > hi) hi = run_max;
    if (mvead_mkdirs(out)) goto fail;
    root = json_object_new_object();
    json_object *jimgs = json_object_new_array(), *jscores = json_object_new_array(), *jmaps = json_object_new_array();
    for (int v = 0; v < V; v++) {
        char png[1200];
        snprintf(png, sizeof png, "%s/C%d.png", out, v + 1);
        if (write_overlay(png, paths[v], maps + (size_t)v * H * W, H, W, lo, hi)) goto fail;
        json_object_array_add(jimgs, json_object_new_string(paths[v]));
        json_object_array_add(jscores, json_object_new_double(image_score[v]));
        json_object_array_add(jmaps, json_object_new_string(png));
        printf("C%d  image score %.6g  %s\n", v + 1, image_score[v], paths[v]);
    }
    printf("sample score %.6g", sample_score);
    if (isfinite(good_max)) printf("  (highest good test view of the run: %.6g)", good_max);
    printf("\n");
    char run_dir[1024];
    snprintf(run_dir, sizeof run_dir, "%s", p.run);
    json_object_object_add(root, "run", json_object_new_string(run_dir));
    json_object_object_add(root, "images", jimgs);
    json_object_object_add(root, "image_scores", jscores);
    json_object_object_add(root, "sample_score", json_object_new_double(sample_score));
    json_object_object_add(root, "heatmaps", jmaps);
    json_object *scale = json_object_new_array();
    json_object_array_add(scale, json_object_new_double(lo));
    json_object_array_add(scale, json_object_new_double(hi));
    json_object_object_add(root, "heatmap_scale", scale);
    json_object_object_add(root, "run_good_view_max", isfinite(good_max) ? json_object_new_double(good_max) : NULL);
    char js[1200], tmp[1300];
    snprintf(js, sizeof js, "%s/scores.json", out);
    snprintf(tmp, sizeof tmp, "%s.tmp", js);
    if (json_object_to_file_ext(tmp, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE) || rename(tmp, js)) {
        mv_error("%s: cannot write", js);
        goto fail;
    }
    mvead_log("predict: %d views -> %s", V, js);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "mvead predict: error: %s\n", mv_error_last());
done:
    if (root) json_object_put(root);
    mvt_release(px);
    mvt_release(feat);
    mvt_release(static_mask);
    bank_set_free(&banks);
    mvead_state_free(&st);
    if (m) mvn_vit_free(m);
    free(fused);
    free(patch);
    free(maps);
    free(list);
    return rc;
}
