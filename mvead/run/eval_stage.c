/* eval_stage: scores every test view against the memory bank (exact kNN by
 * blocked GEMM), builds anomaly maps, computes the Real-IAD metrics per
 * category and averaged like the paper's tables, in two sets (exact, and the
 * official tool's rules, pixels at --eval_size: eval_pixels.h), and writes
 * scores.h5, metrics.json and heatmap overlays. */
#include "data/cache.h"
#include "data/fileio.h"
#include "data/h5io.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/method/eam.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/eval_pixels.h"
#include "mvead/run/fuse.h"
#include "mvead/run/interrupt.h"
#include "mvead/run/mpi.h"
#include "mvead/run/paths.h"
#include "mvead/run/run_config.h"
#include "mvead/run/scoremaps.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/adeval.h"
#include "mvead/scoring/anomaly_map.h"
#include "mvead/scoring/knn.h"
#include "mvead/scoring/metrics.h"
#include "mvead/run/progress.h"
#include "mvead/run/scratch.h"
#include "tensor/error.h"
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* img auroc, ap, sample auroc, ap, pixel auroc, ap, aupro: v by the exact
 * rules (scikit-learn's), a by Real-IAD's official tool's (adeval.h; its
 * "ap" is ADEval's trapezoidal AUPR) */
typedef struct { double v[MVS_KEY_COUNT], a[MVS_KEY_COUNT]; } metric_row;   /* indexed by mvs_metric_key */

static json_object *set_json(const double *v) {
    json_object *o = json_object_new_object();
    for (int k = 0; k < MVS_KEY_COUNT; k++)
        json_object_object_add(o, mvs_metric_keys[k].key, isfinite(v[k]) ? json_object_new_double(v[k]) : NULL);
    return o;
}

/* Both sets, "exact" and "adeval"; the flat keys repeat the exact set, so
 * readers of files from before issue 18 read what they read then. */
static json_object *row_json(const metric_row *r) {
    json_object *o = set_json(r->v);
    json_object_object_add(o, "exact", set_json(r->v));
    json_object_object_add(o, "adeval", set_json(r->a));
    return o;
}

/* Metrics of the samples in sel (n_sel of them); pixel level over px (the
 * evaluation size). The exact pixel arrays come from pool, so past
 * --memory_mb they live in scratch files. 0, or -1 + mv_error (a failure,
 * not a degenerate category, which gives NaN). */
static int compute_metrics(int64_t n_sel, const int64_t *sel, int V, const double *image_scores,
                           const int64_t *view_label, const double *sample_scores, const int64_t *sample_label,
                           const mvead_eval_pixels *px, mvead_scratch_pool *pool, metric_row *out) {
    double *is = malloc(sizeof(double) * (size_t)(n_sel * V + 1)), *ss = malloc(sizeof(double) * (size_t)(n_sel + 1));
    uint8_t *il = malloc((size_t)(n_sel * V + 1)), *sl = malloc((size_t)(n_sel + 1));
    int64_t *views = malloc(sizeof(int64_t) * (size_t)(n_sel * V + 1));
    int st[4], rc = -1;
    if (!is || !ss || !il || !sl || !views) { mv_error("eval: out of memory for %lld scores", (long long)n_sel); goto done; }
    for (int64_t a = 0; a < n_sel; a++) {
        int64_t i = sel[a];
        for (int v = 0; v < V; v++) {
            is[a * V + v] = image_scores[i * V + v];
            il[a * V + v] = view_label[i * V + v] != 0;
            views[a * V + v] = i * V + v;
        }
        ss[a] = sample_scores[i];
        sl[a] = sample_label[i] != 0;
    }
    out->v[MVS_KEY_IMAGE_AUROC] = mvs_auroc(is, il, n_sel * V, &st[0]);
    out->v[MVS_KEY_IMAGE_AP] = mvs_average_precision(is, il, n_sel * V, &st[1]);
    out->v[MVS_KEY_SAMPLE_AUROC] = mvs_auroc(ss, sl, n_sel, &st[2]);
    out->v[MVS_KEY_SAMPLE_AP] = mvs_average_precision(ss, sl, n_sel, &st[3]);
    for (int k = 0; k < 4; k++)
        if (st[k] == MVS_METRIC_ERROR) goto done;   /* mv_error says which */
    /* the pixel keys follow each other in the table: AUROC, AP, AUPRO */
    if (mvs_adeval_scores(is, il, n_sel * V, MVS_ADEVAL_STRIPS, &out->a[MVS_KEY_IMAGE_AUROC], &out->a[MVS_KEY_IMAGE_AP], NULL) ||
        mvs_adeval_scores(ss, sl, n_sel, MVS_ADEVAL_STRIPS, &out->a[MVS_KEY_SAMPLE_AUROC], &out->a[MVS_KEY_SAMPLE_AP], NULL) ||
        mvead_pixel_metrics_exact(px, views, n_sel * V, pool, out->v + MVS_KEY_PIXEL_AUROC) ||
        mvead_pixel_metrics_adeval(px, views, n_sel * V, out->a + MVS_KEY_PIXEL_AUROC)) goto done;
    rc = 0;
done:
    free(views);
    free(is);
    free(ss);
    free(il);
    free(sl);
    return rc;
}

/* pixel_roc (n, 2: fpr, tpr) and pixel_pro (n, 2: fpr, PRO) into scores.h5,
 * from the official tool's 1000-strip histograms of every test pixel. */
static int write_pixel_curves(hid_t file, const mvead_eval_pixels *px) {
    int64_t *views = malloc(sizeof(int64_t) * (size_t)(px->n + 1));
    if (!views) return mv_error("eval: out of memory");
    for (int64_t i = 0; i < px->n; i++) views[i] = i;
    mvead_pixel_curve cv;
    int rc = mvead_pixel_curves(px, views, px->n, &cv);
    free(views);
    if (rc) return -1;
    if (cv.n == 0) return 0;   /* one class only: no curve to draw */
    double *roc = malloc(sizeof(double) * 2 * (size_t)cv.n), *pro = malloc(sizeof(double) * 2 * (size_t)cv.n);
    if (!roc || !pro) rc = mv_error("eval: out of memory");
    for (int64_t k = 0; !rc && k < cv.n; k++) {
        roc[2 * k] = pro[2 * k] = cv.fpr[k];
        roc[2 * k + 1] = cv.tpr[k];
        pro[2 * k + 1] = cv.pro[k];
    }
    int64_t shp[2] = {cv.n, 2};
    if (!rc && (mvd_h5_write_f64(file, "pixel_roc", 2, shp, roc) || mvd_h5_write_f64(file, "pixel_pro", 2, shp, pro))) rc = -1;
    free(roc);
    free(pro);
    mvead_pixel_curve_free(&cv);
    return rc;
}

/* Under MPI the bank is sharded (banks_load) and the test samples go in
 * rounds of P: rank r fuses sample base + r, every fused sample is broadcast,
 * each rank searches its shard of the bank for all P samples, and the
 * element-wise minimum of the distances is reduced to rank 0, which builds
 * the maps and writes every file. The nearest neighbour's exact distance is
 * the minimum of the shards' ones, so the scores equal the one-process ones
 * (up to GEMM near-ties, see docs/cluster.md). One process: rounds of one
 * sample, the whole bank, no messages. */
int mvead_stage_eval(const mvead_config *c) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, true)) return -1;
    mvd_cache *cache = mvd_cache_open(p.test_cache);
    if (!cache) return mv_error_prefix("eval (run `mvead extract` first)");
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D, H = in->H, W = in->W;
    int64_t S = in->S, HW = (int64_t)H * W;
    int rc = -1, R = mvead_mpi_rank(), ranks = mvead_mpi_size();
    mvead_state st = {0};
    mvt_tensor *static_mask = NULL;
    mvead_banks banks = {0};
    float *round_feat = NULL, *round_dist = NULL;
    float *z = NULL, *o = NULL, *patch = NULL, *maps = NULL;
    double *image_scores = NULL, *sample_scores = NULL;
    uint8_t *masks = NULL;
    mvead_scratch_pool pool;   /* maps, masks and the pixel metrics' arrays, up to --memory_mb in memory */
    mvead_scratch_pool_init(&pool, mvead_memory_budget(c->memory_mb), p.run);
    mvd_h5_writer w = {.file = -1};
    json_object *root = NULL;
    mvead_fusion_opts fo;
    if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) { mv_error_prefix("eval (run `mvead train` first)"); goto done; }
    if (mvead_banks_load(p.bank, D, V, in->backbone_hash, true, &banks)) { mv_error_prefix("eval (run `mvead bank` first)"); goto done; }
    if (mvead_pipeline_fusion(c, &p, in, &fo, &static_mask)) goto done;
    if (!in->has_masks) { mv_error("%s: the test cache has no masks", p.test_cache); goto done; }
    z = malloc(sizeof(float) * (size_t)V * N * D);
    o = malloc(sizeof(float) * (size_t)V * N * D);
    /* scores and maps live on rank 0 only */
    patch = malloc(R == 0 ? sizeof(float) * (size_t)S * V * N + 1 : 1);
    maps = mvead_scratch_pool_alloc(&pool, R == 0 ? sizeof(float) * (size_t)(S * V * HW) : 1, "eval: anomaly maps");
    masks = maps ? mvead_scratch_pool_alloc(&pool, R == 0 ? (size_t)(S * V * HW) : 1, "eval: masks") : NULL;
    if (!maps || !masks) goto done;
    if (R == 0 && pool.items[0].mapped)
        mvead_log("eval: anomaly maps (%.1f MiB) over --memory_mb: in a scratch file in %s", S * V * HW * 4.0 / 1048576.0, p.run);
    image_scores = malloc(sizeof(double) * (size_t)(S * V) + 1);
    sample_scores = malloc(sizeof(double) * (size_t)S + 1);
    if (!z || !o || !patch || !maps || !masks || !image_scores || !sample_scores) { mv_error("eval: out of memory"); goto done; }
    /* one round: the fused features and the distances of up to `ranks` samples */
    size_t per = (size_t)V * N * D;
    round_feat = malloc(sizeof(float) * per * (size_t)ranks);
    round_dist = malloc(sizeof(float) * (size_t)ranks * V * N);
    if (!round_feat || !round_dist) { mv_error("eval: out of memory"); goto done; }
    mvead_progress pr;
    mvead_progress_start(&pr, "eval", S);
    for (int64_t base = 0; base < S; base += ranks) {
        int n_round = (int)(S - base < ranks ? S - base : ranks);
        if (base + R < S && (mvd_cache_read(cache, base + R, z) ||
                             mvead_fuse_sample(&st, &fo, static_mask, z, V, N, D, round_feat + (size_t)R * per))) goto done;
        for (int q = 0; q < n_round; q++) mvead_mpi_bcast(round_feat + (size_t)q * per, sizeof(float) * per, q);
        for (int q = 0; q < n_round; q++)
            for (int v = 0; v < V; v++) {
                int b = banks.count == 1 ? 0 : v;
                float *dist = round_dist + ((size_t)q * V + v) * N;
                if (banks.n[b] == 0) {   /* an empty shard: no candidate */
                    for (int j = 0; j < N; j++) dist[j] = INFINITY;
                    continue;
                }
                if (mvs_knn_f32(round_feat + (size_t)q * per + (size_t)v * N * D, N, banks.rows[b], banks.n[b], D, dist, NULL)) goto done;
            }
        mvead_mpi_reduce_min_f32(round_dist, (int64_t)n_round * V * N, 0);
        if (R > 0) continue;
        for (int q = 0; q < n_round; q++) {
            int64_t i = base + q;
            if (mvd_cache_read_masks(cache, i, masks + i * V * HW)) goto done;
            double smax = -INFINITY;
            for (int v = 0; v < V; v++) {
                const float *dist = round_dist + ((size_t)q * V + v) * N;
                double imax = -INFINITY;
                for (int j = 0; j < N; j++) {
                    patch[(i * V + v) * N + j] = dist[j];
                    if (dist[j] > imax) imax = dist[j];
                }
                image_scores[i * V + v] = imax;
                if (imax > smax) smax = imax;
            }
            sample_scores[i] = smax;
            if (mvs_anomaly_maps_f32(patch + i * V * N, V, in->grid_h, in->grid_w, H, W, c->sigma, 4.0, maps + i * V * HW)) goto done;
            /* in scratch files: to disk now, so memory pressure can drop the pages */
            if (mvead_scratch_pool_writeback(&pool, maps, sizeof(float) * (size_t)(i * V * HW), sizeof(float) * (size_t)(V * HW)) ||
                mvead_scratch_pool_writeback(&pool, masks, (size_t)(i * V * HW), (size_t)(V * HW))) goto done;
            mvead_progress_update(&pr, i + 1, NULL);
            if (mvead_interrupt_check("after test sample %lld of %lld (scores.h5 and metrics.json not written; the "
                                      "previous ones, if any, are unchanged); rerun eval", (long long)i + 1, (long long)S))
                goto done;
        }
    }
    mvead_progress_finish(&pr);
    if (R > 0) { rc = 0; goto done; }   /* rank 0 writes every output */

    /* the heatmaps' one colour scale for the run (recorded in scores.h5 for the report) */
    double map_lo = INFINITY, map_hi = -INFINITY;
    for (int64_t k = 0; k < S * V * HW; k++) { if (maps[k] < map_lo) map_lo = maps[k]; if (maps[k] > map_hi) map_hi = maps[k]; }

    /* scores.h5, committed after the metrics have added the pixel curves */
    if (mvd_h5_create(&w, p.scores, "scores", MVEAD_SCORES_FORMAT)) goto done;
    {
        int64_t s3[3] = {S, V, N}, s2[2] = {S, V}, s1[1] = {S};
        if (mvd_h5_write_f32(w.file, "patch_scores", 3, s3, patch) || mvd_h5_write_f64(w.file, "image_scores", 2, s2, image_scores) ||
            mvd_h5_write_f64(w.file, "sample_scores", 1, s1, sample_scores) ||
            mvd_h5_write_i64(w.file, "view_label", 2, s2, cache->view_label) ||
            mvd_h5_write_i64(w.file, "sample_label", 1, s1, cache->sample_label) ||
            mvd_h5_write_strings(w.file, "category", S, (const char *const *)cache->category) ||
            mvd_h5_write_strings(w.file, "sample_id", S, (const char *const *)cache->sample_id) ||
            mvd_h5_write_strings(w.file, "anomaly_class", S, (const char *const *)cache->anomaly_class) ||
            mvd_h5_write_strings(w.file, "image_path", S * V, (const char *const *)cache->image_path) ||
            mvd_h5_attr_set_int(w.file, ".", "grid_h", in->grid_h) || mvd_h5_attr_set_int(w.file, ".", "grid_w", in->grid_w) ||
            mvd_h5_attr_set_int(w.file, ".", "image_h", H) || mvd_h5_attr_set_int(w.file, ".", "image_w", W) ||
            mvd_h5_attr_set_double(w.file, ".", "map_lo", map_lo) || mvd_h5_attr_set_double(w.file, ".", "map_hi", map_hi))
            goto done;
    }

    /* metrics per category and averaged over categories (the paper's tables) */
    {
        int64_t *cat_of = malloc(sizeof(int64_t) * (size_t)S + 8);
        char **cats = calloc((size_t)S + 1, sizeof(char *));
        int n_cat = 0;
        for (int64_t i = 0; i < S; i++) {
            int k = 0;
            while (k < n_cat && strcmp(cats[k], cache->category[i])) k++;
            if (k == n_cat) cats[n_cat++] = cache->category[i];
            cat_of[i] = k;
        }
        root = json_object_new_object();
        json_object *per = json_object_new_object();
        metric_row mean = {{0}, {0}}, all;
        int used[MVS_KEY_COUNT] = {0}, used_a[MVS_KEY_COUNT] = {0};
        mvead_eval_pixels px;
        int eval_size = mvead_eval_size(c);
        if (eval_size < 0 || mvead_eval_pixels_build(eval_size, S * V, (const char *const *)cache->image_path,
                                                     (const char *const *)cache->mask_path, maps, H, W, &pool, &px)) {
            json_object_put(root);
            root = NULL;
            json_object_put(per);
            free(cats); free(cat_of);
            goto done;
        }
        mvead_log("eval: pixel metrics at %s: %lld pixels (%.1f MiB of maps and masks)", eval_size ? c->eval_size : "the masks' original size",
                  (long long)px.off[px.n], px.off[px.n] * 5.0 / 1048576.0);
        if (c->save_maps) {
            const char *mp = p.anomaly_maps;
            if (mvead_eval_pixels_save(mp, &px, (const char *const *)cache->image_path, (const char *const *)cache->mask_path,
                                       image_scores, c->eval_size)) {
                mvead_eval_pixels_free(&px, &pool);
                json_object_put(per);
                free(cats); free(cat_of);
                goto done;
            }
            mvead_log("eval: anomaly maps at the evaluation size -> %s", mp);
        }
        int64_t *sel = malloc(sizeof(int64_t) * (size_t)S + 8);
        for (int k = 0; k < n_cat; k++) {
            int64_t n_sel = 0;
            for (int64_t i = 0; i < S; i++) if (cat_of[i] == k) sel[n_sel++] = i;
            metric_row r;
            if (compute_metrics(n_sel, sel, V, image_scores, cache->view_label, sample_scores, cache->sample_label, &px,
                                &pool, &r)) {
                mv_error_prefix("eval: metrics of category %s", cats[k]);
                json_object_put(per);
                mvead_eval_pixels_free(&px, &pool);
                free(sel); free(cats); free(cat_of);
                goto done;
            }
            json_object_object_add(per, cats[k], row_json(&r));
            for (int m = 0; m < MVS_KEY_COUNT; m++) {
                if (isfinite(r.v[m])) { mean.v[m] += r.v[m]; used[m]++; }
                if (isfinite(r.a[m])) { mean.a[m] += r.a[m]; used_a[m]++; }
            }
        }
        for (int m = 0; m < MVS_KEY_COUNT; m++) {
            mean.v[m] = used[m] ? mean.v[m] / used[m] : NAN;
            mean.a[m] = used_a[m] ? mean.a[m] / used_a[m] : NAN;
        }
        for (int64_t i = 0; i < S; i++) sel[i] = i;
        int prc = compute_metrics(S, sel, V, image_scores, cache->view_label, sample_scores, cache->sample_label, &px, &pool, &all);
        /* the report's pixel ROC and PRO curves: the official tool's strips over every view */
        if (!prc) prc = write_pixel_curves(w.file, &px);
        mvead_eval_pixels_free(&px, &pool);
        if (prc) {
            mv_error_prefix("eval: pooled metrics");
            json_object_put(per);
            free(sel); free(cats); free(cat_of);
            goto done;
        }
        json_object_object_add(root, "setting", json_object_new_string(n_cat == 1 ? "single-class" : "multi-class"));
        json_object_object_add(root, "mean_over_categories", row_json(&mean));
        json_object_object_add(root, "pooled", row_json(&all));
        json_object_object_add(root, "per_category", per);
        json_object_object_add(root, "eval_size", json_object_new_string(c->eval_size));
        json_object *sets = json_object_new_object();
        json_object_object_add(sets, "exact", json_object_new_string(
            "scikit-learn's rules: exact ROC area, step-wise average precision; AUPRO over every distinct threshold to FPR 0.3 (the flat keys repeat this set)"));
        json_object_object_add(sets, "adeval", json_object_new_string(
            "Real-IAD's official evaluator (ADEval) rules: 1000 histogram strips, trapezoidal AUROC, trapezoidal AUPR as 'ap', region-weighted AUPRO to FPR 0.3"));
        json_object_object_add(root, "metric_sets", sets);
        json_object *cfg = json_object_new_object();
        json_object_object_add(cfg, "fusion", json_object_new_string(c->fusion));
        json_object_object_add(cfg, "init", json_object_new_string(c->init));
        json_object_object_add(cfg, "objective", json_object_new_string(c->objective));
        json_object_object_add(cfg, "bank_mode", json_object_new_string(c->bank_mode));
        json_object_object_add(cfg, "centers", json_object_new_int(c->centers));
        json_object_object_add(cfg, "epochs", json_object_new_int(st.epochs_done));
        json_object_object_add(cfg, "backbone", json_object_new_string(in->backbone));
        json_object_object_add(cfg, "layer", json_object_new_int(in->layer));
        json_object_object_add(root, "run", cfg);
        json_object_object_add(root, "test_samples", json_object_new_int64(S));
        json_object_object_add(root, "views", json_object_new_int(V));
        const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
        int wrc = mvd_file_write_atomic(p.metrics, txt, strlen(txt));
        mvead_log("eval: %lld samples, %d categories: sample AUROC %.4f AP %.4f | image AUROC %.4f AP %.4f | pixel AUROC %.4f AUPRO %.4f -> %s (peak RSS %.0f MiB)",
                  (long long)S, n_cat, mean.v[MVS_KEY_SAMPLE_AUROC], mean.v[MVS_KEY_SAMPLE_AP], mean.v[MVS_KEY_IMAGE_AUROC],
                  mean.v[MVS_KEY_IMAGE_AP], mean.v[MVS_KEY_PIXEL_AUROC], mean.v[MVS_KEY_PIXEL_AUPRO], p.metrics, mvead_peak_rss_mib());
        mvead_log("eval: ADEval rules: sample AUROC %.4f AUPR %.4f | image AUROC %.4f AUPR %.4f | pixel AUROC %.4f AUPR %.4f AUPRO %.4f",
                  mean.a[MVS_KEY_SAMPLE_AUROC], mean.a[MVS_KEY_SAMPLE_AP], mean.a[MVS_KEY_IMAGE_AUROC], mean.a[MVS_KEY_IMAGE_AP],
                  mean.a[MVS_KEY_PIXEL_AUROC], mean.a[MVS_KEY_PIXEL_AP], mean.a[MVS_KEY_PIXEL_AUPRO]);
        free(sel);
        free(cats);
        free(cat_of);
        if (wrc) goto done;
    }
    if (mvd_h5_commit(&w)) goto done;
    w.file = -1;

    /* heatmaps: every anomalous sample and a few good ones, one colour scale for the run */
    if (c->heatmaps) {
        if (mvead_mkdirs(p.heatmaps)) goto done;
        int good = 0;
        for (int64_t i = 0; i < S; i++) {
            if (!cache->sample_label[i] && good >= 6) continue;
            if (!cache->sample_label[i]) good++;
            for (int v = 0; v < V; v++) {
                char out[1400];
                if (mvead_paths_heatmap(&p, cache->category[i], cache->sample_id[i], cache->anomaly_class[i], v, out, sizeof out) ||
                    mvead_heatmap_overlay(out, cache->image_path[i * V + v], maps + (i * V + v) * HW, masks + (i * V + v) * HW, H, W, map_lo, map_hi)) {
                    mvead_log("eval: warning: no heatmap for %s: %s", cache->image_path[i * V + v], mv_error_last());
                    goto heat_done;
                }
            }
        }
    heat_done:;
    }
    rc = 0;
done:
    if (root) json_object_put(root);
    if (w.file >= 0) mvd_h5_abort(&w);
    mvead_banks_free(&banks);
    mvead_state_free(&st);
    mvt_release(static_mask);
    mvd_cache_close(cache);
    free(z);
    free(o);
    free(patch);
    mvead_scratch_pool_free(&pool);
    free(image_scores);
    free(sample_scores);
    free(round_feat);
    free(round_dist);
    return rc;
}
