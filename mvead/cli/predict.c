/* predict: scores one multi-view sample (V image files) with a finished run:
 * the run's own configuration (backbone, layer, size, fusion), its EAM
 * checkpoint and memory bank; prints per-view image scores and the sample
 * score, and writes DIR/scores.json and a heatmap overlay DIR/C<v>.png per
 * view. The same preprocessing and features as `extract`, so a test sample's
 * scores equal those of `eval`. Called by mvead/cli/main.c. */
#include "data/cache.h"
#include "data/fileio.h"
#include "data/h5io.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/cli/commands.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/cli/options.h"
#include "mvead/scoring/threshold.h"
#include "mvead/method/eam.h"
#include "mvead/run/backbone.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/run_config.h"
#include "mvead/run/fuse.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/scoremaps.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/anomaly_map.h"
#include "mvead/scoring/knn.h"
#include "nn/vit.h"
#include "tensor/error.h"
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char *const PREDICT_OPTS[] = {"name", "runs", "calib", "threads", "quiet", "sigma", NULL};
static const char *const PREDICT_SUMMARY =
    "Scores one multi-view sample with a finished run (its config.json, backbone,\n"
    "checkpoint.h5 and bank.h5): per-view image scores, the sample score, heatmaps.\n"
    "Synopsis: mvead predict --name RUN [--runs R] --images IMG1,...,IMGV --out DIR";

/* The highest image score of a good test view in the run's scores.h5 (a
 * reference for reading the new scores); NAN when unavailable. */
static double run_good_view_max(const char *scores_path, double *all_max, double *threshold) {
    *all_max = *threshold = NAN;
    if (access(scores_path, R_OK)) return NAN;
    int fmt;
    hid_t f = mvd_h5_open_read(scores_path, "scores", MVEAD_SCORES_FORMAT, &fmt);
    if (f < 0) { mv_error_clear(); return NAN; }
    double good = NAN;
    mvt_tensor *s = mvd_h5_read_tensor(f, "image_scores", MVT_F64, 2, NULL, scores_path);
    mvt_tensor *l = s ? mvd_h5_read_tensor(f, "view_label", MVT_I64, 2, s->shape, scores_path) : NULL;
    if (l) {
        double g = -INFINITY, a = -INFINITY;
        for (int64_t i = 0; i < mvt_numel(s); i++) {
            double x = mvt_f64(s)[i];
            if (x > a) a = x;
            if (!mvt_i64(l)[i] && x > g) g = x;
        }
        if (isfinite(g)) good = g;
        if (isfinite(a)) *all_max = a;
        /* the run's operating threshold, by the rule the report states */
        int64_t n = mvt_numel(s);
        uint8_t *lb = malloc((size_t)n + 1);
        if (lb) {
            for (int64_t i = 0; i < n; i++) lb[i] = mvt_i64(l)[i] != 0;
            *threshold = mvs_f1_threshold(mvt_f64(s), lb, n, NULL);
            free(lb);
        }
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
    char *pos[1];
    int np;
    int r = mvead_config_parse_run(c, cmd, summary, accepted, argc, argv, pos, 0, &np, true);
    if (r == -2) goto fail;
    if (r < 0) {
        fprintf(stderr, "%s\n", mv_error_last());
        return MVEAD_EXIT_USAGE;
    }
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
        return MVEAD_EXIT_USAGE;
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
        return MVEAD_EXIT_USAGE;
    }

    int rc = 1, V = 0;
    char *list = strdup(images), *paths[64];
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (V == 64) { fprintf(stderr, "mvead predict: --images: more than 64 views\n"); free(list); return MVEAD_EXIT_USAGE; }
        paths[V++] = tok;
    }
    if (V < 1) { fprintf(stderr, "mvead predict: --images is empty\n"); free(list); return MVEAD_EXIT_USAGE; }
    mvead_paths p;
    mvn_vit *m = NULL;
    mvead_state st = {0};
    mvead_banks banks = {0};
    mvt_tensor *static_mask = NULL, *px = NULL, *feat = NULL;
    float *fused = NULL, *patch = NULL, *maps = NULL;
    json_object *root = NULL;
    char hash[64];
    if (mvead_paths_init(&c, &p, false)) goto fail;
    if (!(m = mvead_backbone_load(&c, hash, sizeof hash))) goto fail;
    int P = m->cfg.patch_size, H = c.image_size, W = c.image_size, gh = H / P, gw = W / P, N = gh * gw;
    int D = m->cfg.hidden_size;
    {   /* the sample must have the run's views: say so before the bank is blamed */
        hid_t f = access(p.train_cache, F_OK) == 0 ? mvd_h5_open_read(p.train_cache, "cache", 1 << 20, NULL) : -1;
        int64_t rv = 0;
        if (f >= 0 && !mvd_h5_attr_get_int(f, ".", "views", &rv, p.train_cache) && rv != V) {
            mvd_h5_close(f);
            fprintf(stderr, "mvead predict: --images: %d images given, but run '%s' has %lld views (%s); give one image per view, in camera order\n",
                    V, c.name, (long long)rv, p.train_cache);
            rc = MVEAD_EXIT_USAGE;
            goto done;
        }
        if (f >= 0) mvd_h5_close(f);
    }
    if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) { mv_error_prefix("predict (run `mvead train` first)"); goto fail; }
    if (mvead_banks_load(p.bank, D, V, hash, false, &banks)) { mv_error_prefix("predict (run `mvead bank` first)"); goto fail; }
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
    double run_max, threshold, good_max = run_good_view_max(p.scores, &run_max, &threshold);
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
        if (mvead_heatmap_overlay(png, paths[v], maps + (size_t)v * H * W, NULL, H, W, lo, hi)) goto fail;
        json_object_array_add(jimgs, json_object_new_string(paths[v]));
        json_object_array_add(jscores, json_object_new_double(image_score[v]));
        json_object_array_add(jmaps, json_object_new_string(png));
        printf("C%d  image score %.6g  %s  %s\n", v + 1, image_score[v],
               isfinite(threshold) ? (image_score[v] >= threshold ? "NG" : "OK") : "", paths[v]);
    }
    printf("sample score %.6g", sample_score);
    if (isfinite(good_max)) printf("  (highest good test view of the run: %.6g)", good_max);
    printf("\n");
    if (isfinite(threshold))
        printf("verdict: %s (threshold %.6g: %s)\n", sample_score >= threshold ? "NG" : "OK", threshold, MVS_THRESHOLD_RULE);
    else
        printf("verdict: none (the run's test split gives no threshold: one class only, or no scores.h5)\n");
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
    json_object_object_add(root, "threshold", isfinite(threshold) ? json_object_new_double(threshold) : NULL);
    json_object_object_add(root, "threshold_rule", json_object_new_string(MVS_THRESHOLD_RULE));
    json_object_object_add(root, "verdict", isfinite(threshold) ? json_object_new_string(sample_score >= threshold ? "NG" : "OK") : NULL);
    char js[1200], tmp[1300];
    snprintf(js, sizeof js, "%s/scores.json", out);
    snprintf(tmp, sizeof tmp, "%s.tmp", js);
    (void)tmp;
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (mvd_file_write_atomic(js, txt, strlen(txt))) goto fail;
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
    mvead_banks_free(&banks);
    mvead_state_free(&st);
    if (m) mvn_vit_free(m);
    free(fused);
    free(patch);
    free(maps);
    free(list);
    return rc;
}
