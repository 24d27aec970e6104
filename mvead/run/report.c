/* report: one self-contained HTML page (inline CSS, inline SVG, images as
 * base64 data URIs; no script, no external resource) and a Markdown summary
 * of a finished run, built from the files the stages left in the run folder
 * (config.json, metrics.json, scores.h5, loss.csv, heatmaps/, the test
 * cache): the operating threshold, the metric tables (category x level, per
 * view, per defect type), ROC / PR / PRO curves, the loss, every view of the
 * top samples, where the EAM looks, a calibration check, the worst views,
 * provenance and configuration. docs/cmd/report.md describes each section.
 * Called by mvead/cli (report, run, demo, ablate). */
#include "config.h"
#include "data/cache.h"
#include "data/h5io.h"
#include "data/image.h"
#include "data/transform.h"
#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epilines.h"
#include "mvead/run/attention.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/report_html.h"
#include "mvead/run/run_config.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/metrics.h"
#include "mvead/scoring/threshold.h"
#include "tensor/error.h"
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Table columns in the paper's order (mvs_metric_keys' `column`). */
static const char *column_key(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].key; }
static const char *column_title(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].title; }

/* ---- curves ---------------------------------------------------------------------- */

typedef struct {
    int64_t n;
    double *x, *y;
} curve;

static void curve_free(curve *c) {
    free(c->x);
    free(c->y);
    memset(c, 0, sizeof *c);
}

static void curve_push(curve *c, double x, double y) {
    c->x[c->n] = x;
    c->y[c->n] = y;
    c->n++;
}

typedef struct {
    double s;
    uint8_t l;
} scored;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return x > y ? -1 : x < y ? 1 : 0;
}

/* ROC (fpr, tpr) from (0, 0) and PR (recall, precision) from (0, 1): sort by
 * score, step the threshold down through the distinct scores, tied scores
 * forming one step (as scikit-learn). auroc (trapezoids) and ap (step-wise)
 * of the same curves are returned for the legend. -1 when only one class is
 * present (no curve). */
static int build_curves(const double *score, const uint8_t *label, int64_t n, curve *roc, curve *pr, double *auroc,
                        double *ap) {
    memset(roc, 0, sizeof *roc);
    memset(pr, 0, sizeof *pr);
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) P += label[i] != 0;
    int64_t Nn = n - P;
    if (P == 0 || Nn == 0) return -1;
    scored *v = malloc(sizeof(scored) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = (scored){score[i], label[i] != 0};
    qsort(v, (size_t)n, sizeof *v, by_score_desc);
    roc->x = malloc(sizeof(double) * (size_t)(n + 1));
    roc->y = malloc(sizeof(double) * (size_t)(n + 1));
    pr->x = malloc(sizeof(double) * (size_t)(n + 1));
    pr->y = malloc(sizeof(double) * (size_t)(n + 1));
    curve_push(roc, 0, 0);
    curve_push(pr, 0, 1);
    int64_t tp = 0, fp = 0;
    double area = 0, avg = 0, last_fpr = 0, last_tpr = 0, last_rec = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && v[j].s == v[i].s) {
            tp += v[j].l;
            fp += !v[j].l;
            j++;
        }
        double fpr = (double)fp / Nn, tpr = (double)tp / P, prec = (double)tp / (tp + fp);
        area += (fpr - last_fpr) * (tpr + last_tpr) / 2;
        avg += (tpr - last_rec) * prec;
        last_fpr = fpr, last_tpr = tpr, last_rec = tpr;
        curve_push(roc, fpr, tpr);
        curve_push(pr, tpr, prec);
        i = j;
    }
    free(v);
    *auroc = area;
    *ap = avg;
    return 0;
}

/* ---- inputs ------------------------------------------------------------------------- */

typedef struct {
    int64_t S, V;
    double *image_scores, *sample_scores;   /* [S*V], [S] */
    int64_t *view_label, *sample_label;     /* [S*V], [S] */
    char **category, **sample_id, **anomaly_class;
    float *patch_scores;                    /* [S*V*N] */
    int64_t N;
    double map_lo, map_hi;                  /* the heatmaps' colour scale (NaN: not recorded) */
    /* pixel-level curves, when eval recorded them (NULL otherwise) */
    int64_t n_pix_roc, n_pro;
    double *pix_fpr, *pix_tpr, *pro_fpr, *pro;
} scores_file;

static void scores_free(scores_file *s) {
    free(s->image_scores);
    free(s->sample_scores);
    free(s->view_label);
    free(s->sample_label);
    if (s->category) mvd_h5_free_strings(s->category, s->S);
    if (s->sample_id) mvd_h5_free_strings(s->sample_id, s->S);
    if (s->anomaly_class) mvd_h5_free_strings(s->anomaly_class, s->S);
    free(s->patch_scores);
    free(s->pix_fpr);
    free(s->pix_tpr);
    free(s->pro_fpr);
    free(s->pro);
    memset(s, 0, sizeof *s);
}

static void *take_data(mvt_tensor *t) {
    size_t nb = (size_t)mvt_numel(t) * mvt_dtype_size(t->dtype);
    void *p = malloc(nb + 8);
    memcpy(p, mvt_data(t), nb);
    mvt_release(t);
    return p;
}

static int scores_load(const char *path, scores_file *s) {
    memset(s, 0, sizeof *s);
    int fmt;
    hid_t f = mvd_h5_open_read(path, "scores", MVEAD_SCORES_FORMAT, &fmt);
    if (f < 0) return mv_error_prefix("report (run `mvead eval` first)");
    int rc = -1;
    mvt_tensor *is = mvd_h5_read_tensor(f, "image_scores", MVT_F64, 2, NULL, path);
    if (!is) goto done;
    s->S = is->shape[0];
    s->V = is->shape[1];
    s->image_scores = take_data(is);
    int64_t s1[1] = {s->S}, s2[2] = {s->S, s->V};
    mvt_tensor *t = mvd_h5_read_tensor(f, "sample_scores", MVT_F64, 1, s1, path);
    if (!t) goto done;
    s->sample_scores = take_data(t);
    if (!(t = mvd_h5_read_tensor(f, "view_label", MVT_I64, 2, s2, path))) goto done;
    s->view_label = take_data(t);
    if (!(t = mvd_h5_read_tensor(f, "sample_label", MVT_I64, 1, s1, path))) goto done;
    s->sample_label = take_data(t);
    int64_t n;
    const char *names[3] = {"category", "sample_id", "anomaly_class"};
    char ***dst[3] = {&s->category, &s->sample_id, &s->anomaly_class};
    for (int k = 0; k < 3; k++) {
        *dst[k] = mvd_h5_read_strings(f, names[k], &n, path);
        if (!*dst[k]) goto done;
        if (n != s->S) {
            mvd_h5_free_strings(*dst[k], n);
            *dst[k] = NULL;
            mv_error("%s: '%s' has %lld entries, expected %lld", path, names[k], (long long)n, (long long)s->S);
            goto done;
        }
    }
    if (mvd_h5_exists(f, "patch_scores")) {   /* absent in hand-made files: the pictures take the centre patch */
        if (!(t = mvd_h5_read_tensor(f, "patch_scores", MVT_F32, 3, NULL, path))) goto done;
        if (t->shape[0] != s->S || t->shape[1] != s->V) {
            mv_error("%s: 'patch_scores' is not [%lld, %lld, N]", path, (long long)s->S, (long long)s->V);
            mvt_release(t);
            goto done;
        }
        s->N = t->shape[2];
        s->patch_scores = take_data(t);
    }
    s->map_lo = s->map_hi = NAN;
    if (mvd_h5_attr_exists(f, ".", "map_lo") && mvd_h5_attr_exists(f, ".", "map_hi") &&
        (mvd_h5_attr_get_double(f, ".", "map_lo", &s->map_lo, path) || mvd_h5_attr_get_double(f, ".", "map_hi", &s->map_hi, path)))
        goto done;
    /* optional curves: [n, 2] (x, y) */
    const char *cn[2] = {"pixel_roc", "pixel_pro"};
    int64_t *cnt[2] = {&s->n_pix_roc, &s->n_pro};
    double **cx[2] = {&s->pix_fpr, &s->pro_fpr}, **cy[2] = {&s->pix_tpr, &s->pro};
    for (int k = 0; k < 2; k++) {
        if (!mvd_h5_exists(f, cn[k])) continue;
        mvt_tensor *c = mvd_h5_read_tensor(f, cn[k], MVT_F64, 2, NULL, path);
        if (!c) goto done;
        int64_t n = c->shape[0];
        if (c->shape[1] != 2) { mvt_release(c); mv_error("%s: '%s' is not [n, 2]", path, cn[k]); goto done; }
        *cx[k] = malloc(sizeof(double) * (size_t)(n + 1));
        *cy[k] = malloc(sizeof(double) * (size_t)(n + 1));
        if (!*cx[k] || !*cy[k]) { mvt_release(c); mv_error("%s: out of memory", path); goto done; }
        for (int64_t i = 0; i < n; i++) (*cx[k])[i] = mvt_f64(c)[2 * i], (*cy[k])[i] = mvt_f64(c)[2 * i + 1];
        *cnt[k] = n;
        mvt_release(c);
    }
    rc = 0;
done:
    H5Fclose(f);
    if (rc) scores_free(s);
    return rc;
}

/* ---- tables ------------------------------------------------------------------------- */

/* The metrics of one set in a metrics.json row: rows carry the sets as
 * sub-objects ("exact", "adeval") or, in files of earlier versions, the
 * exact metrics directly. */
static json_object *row_set(json_object *row, const char *set) {
    json_object *v;
    if (row && set && json_object_object_get_ex(row, set, &v) && v && json_object_is_type(v, json_type_object)) return v;
    return row;
}

static bool has_set(json_object *metrics, const char *set) {
    json_object *mean = NULL, *v;
    json_object_object_get_ex(metrics, "mean_over_categories", &mean);
    return mean && json_object_object_get_ex(mean, set, &v) && v;
}

/* Category x level: AUROC, AP (and AUPRO at the pixel level), as the paper's tables. */
static void metric_table(FILE *f, FILE *md, json_object *metrics, const char *set) {
    char b[16];
    json_object *per = NULL, *mean = NULL;
    json_object_object_get_ex(metrics, "per_category", &per);
    json_object_object_get_ex(metrics, "mean_over_categories", &mean);
    fputs("<table><tr><th class=\"k\">Category</th>", f);
    fputs("| Category |", md);
    for (int k = 0; k < MVS_KEY_COUNT; k++) {
        fprintf(f, "<th>%s</th>", column_title(k));
        fprintf(md, " %s |", column_title(k));
    }
    fputs("</tr>\n", f);
    fputs("\n|---|", md);
    for (int k = 0; k < MVS_KEY_COUNT; k++) fputs("---:|", md);
    fputc('\n', md);
    if (per && json_object_is_type(per, json_type_object)) {
        json_object_object_foreach(per, cat, row) {
            json_object *r = row_set(row, set);
            fputs("<tr><td class=\"k\">", f);
            mvead_html_escape(f, cat);
            fputs("</td>", f);
            fprintf(md, "| %s |", cat);
            for (int k = 0; k < MVS_KEY_COUNT; k++) {
                fprintf(f, "<td>%s</td>", mvead_html_pct(mvead_metric_of(r, column_key(k)), b));
                fprintf(md, " %s |", mvead_html_pct(mvead_metric_of(r, column_key(k)), b));
            }
            fputs("</tr>\n", f);
            fputc('\n', md);
        }
    }
    json_object *m = row_set(mean, set);
    fputs("<tr class=\"mean\"><td class=\"k\">mean</td>", f);
    fputs("| **mean** |", md);
    for (int k = 0; k < MVS_KEY_COUNT; k++) {
        fprintf(f, "<td>%s</td>", mvead_html_pct(mvead_metric_of(m, column_key(k)), b));
        fprintf(md, " **%s** |", mvead_html_pct(mvead_metric_of(m, column_key(k)), b));
    }
    fputs("</tr></table>\n", f);
    fputc('\n', md);
}

/* AUROC and AP of the selected scores (NaN when one class is missing). */
static void auroc_ap(const double *score, const uint8_t *label, int64_t n, double *auroc, double *ap) {
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) P += label[i] != 0;
    if (n == 0 || P == 0 || P == n) {
        *auroc = *ap = NAN;
        return;
    }
    *auroc = mvs_auroc(score, label, n, NULL);
    *ap = mvs_average_precision(score, label, n, NULL);
}

/* Image level per view C1..CV: AUROC and AP of each category's views v, then
 * the mean over categories (as the main table). */
static void per_view_table(FILE *f, FILE *md, const scores_file *s) {
    double *sc = malloc(sizeof(double) * (size_t)(s->S + 1));
    uint8_t *lb = malloc((size_t)s->S + 1);
    if (!sc || !lb) { free(sc); free(lb); return; }
    fputs("<table id=\"per-view-table\"><tr><th class=\"k\">View</th><th>good views</th><th>defective views</th>"
          "<th>Image AUROC</th><th>Image AP</th></tr>\n", f);
    fputs("| View | good views | defective views | Image AUROC | Image AP |\n|---|---:|---:|---:|---:|\n", md);
    for (int64_t v = 0; v < s->V; v++) {
        double sum_auc = 0, sum_ap = 0;
        int n_auc = 0, n_ap = 0;
        int64_t good = 0, bad = 0;
        for (int64_t i = 0; i < s->S; i++) {
            if (s->view_label[i * s->V + v]) bad++;
            else good++;
        }
        /* categories in order of first appearance */
        for (int64_t i = 0; i < s->S; i++) {
            bool first = true;
            for (int64_t j = 0; j < i && first; j++) first = strcmp(s->category[j], s->category[i]) != 0;
            if (!first) continue;
            int64_t n = 0;
            for (int64_t j = 0; j < s->S; j++)
                if (!strcmp(s->category[j], s->category[i])) {
                    sc[n] = s->image_scores[j * s->V + v];
                    lb[n++] = s->view_label[j * s->V + v] != 0;
                }
            double auc, ap;
            auroc_ap(sc, lb, n, &auc, &ap);
            if (isfinite(auc)) sum_auc += auc, n_auc++;
            if (isfinite(ap)) sum_ap += ap, n_ap++;
        }
        char b1[16], b2[16];
        mvead_html_pct(n_auc ? sum_auc / n_auc : NAN, b1);
        mvead_html_pct(n_ap ? sum_ap / n_ap : NAN, b2);
        fprintf(f, "<tr><td class=\"k\">C%lld</td><td>%lld</td><td>%lld</td><td>%s</td><td>%s</td></tr>\n", (long long)v + 1,
                (long long)good, (long long)bad, b1, b2);
        fprintf(md, "| C%lld | %lld | %lld | %s | %s |\n", (long long)v + 1, (long long)good, (long long)bad, b1, b2);
    }
    fputs("</table>\n", f);
    free(sc);
    free(lb);
}

/* Per defect type (Real-IAD's codes): each type's defective samples against
 * every good sample, pooled over categories; image level: their defective
 * views against the good samples' views. */
static void per_defect_table(FILE *f, FILE *md, const scores_file *s) {
    int64_t SV = s->S * s->V;
    double *sc = malloc(sizeof(double) * (size_t)(SV + 1));
    uint8_t *lb = malloc((size_t)SV + 1);
    if (!sc || !lb) { free(sc); free(lb); return; }
    fputs("<table id=\"per-defect-table\"><tr><th class=\"k\">Defect</th><th>samples</th><th>defective views</th>"
          "<th>Sample AUROC</th><th>Sample AP</th><th>Image AUROC</th><th>Image AP</th></tr>\n", f);
    fputs("| Defect | samples | defective views | Sample AUROC | Sample AP | Image AUROC | Image AP |\n"
          "|---|---:|---:|---:|---:|---:|---:|\n", md);
    int64_t good = 0;
    for (int64_t i = 0; i < s->S; i++) good += !s->sample_label[i];
    int rows = 0;
    for (int64_t i = 0; i < s->S; i++) {
        if (!s->sample_label[i]) continue;
        bool first = true;
        for (int64_t j = 0; j < i && first; j++) first = !(s->sample_label[j] && !strcmp(s->anomaly_class[j], s->anomaly_class[i]));
        if (!first) continue;
        const char *code = s->anomaly_class[i];
        int64_t n = 0, n_samples = 0, n_views = 0;
        for (int64_t j = 0; j < s->S; j++) {
            bool mine = s->sample_label[j] && !strcmp(s->anomaly_class[j], code);
            if (!mine && s->sample_label[j]) continue;
            sc[n] = s->sample_scores[j];
            lb[n++] = mine;
            n_samples += mine;
        }
        double sauc, sap, iauc, iap;
        auroc_ap(sc, lb, n, &sauc, &sap);
        n = 0;
        for (int64_t j = 0; j < s->S; j++) {
            bool mine = s->sample_label[j] && !strcmp(s->anomaly_class[j], code);
            if (!mine && s->sample_label[j]) continue;
            for (int64_t v = 0; v < s->V; v++) {
                bool bad = mine && s->view_label[j * s->V + v];
                if (mine && !bad) continue;   /* a defective sample's clean views are neither */
                sc[n] = s->image_scores[j * s->V + v];
                lb[n++] = bad;
                n_views += bad;
            }
        }
        auroc_ap(sc, lb, n, &iauc, &iap);
        char b[4][16];
        fputs("<tr><td class=\"k\">", f);
        mvead_html_escape(f, code);
        fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", (long long)n_samples,
                (long long)n_views, mvead_html_pct(sauc, b[0]), mvead_html_pct(sap, b[1]), mvead_html_pct(iauc, b[2]),
                mvead_html_pct(iap, b[3]));
        fprintf(md, "| %s | %lld | %lld | %s | %s | %s | %s |\n", code, (long long)n_samples, (long long)n_views, b[0], b[1],
                b[2], b[3]);
        rows++;
    }
    fputs("</table>\n", f);
    fprintf(f, "<p class=\"muted\">Each type's defective samples (and their defective views) against all %lld good samples"
               " (and their views), pooled over categories.</p>\n", (long long)good);
    if (!rows) fputs("<p class=\"muted\">No defective sample in the test split.</p>\n", f);
    free(sc);
    free(lb);
}

/* ---- the run's threshold --------------------------------------------------------------- */

typedef struct {
    double t, f1;
    int64_t tp, fp, fn, tn;
} threshold_info;

static threshold_info run_threshold(const scores_file *s) {
    threshold_info r = {NAN, NAN, 0, 0, 0, 0};
    int64_t n = s->S * s->V;
    uint8_t *lb = malloc((size_t)n + 1);
    if (!lb) return r;
    for (int64_t i = 0; i < n; i++) lb[i] = s->view_label[i] != 0;
    r.t = mvs_f1_threshold(s->image_scores, lb, n, &r.f1);
    for (int64_t i = 0; i < n && isfinite(r.t); i++) {
        bool ng = s->image_scores[i] >= r.t;
        if (ng) lb[i] ? r.tp++ : r.fp++;
        else lb[i] ? r.fn++ : r.tn++;
    }
    free(lb);
    return r;
}

/* ---- curves ---------------------------------------------------------------------------- */

static void write_curves_html(FILE *f, const char *level, const double *score, const int64_t *label64, int64_t n) {
    uint8_t *lab = malloc((size_t)n + 1);
    for (int64_t i = 0; i < n; i++) lab[i] = label64[i] != 0;
    curve roc, pr;
    double auroc, ap;
    if (build_curves(score, lab, n, &roc, &pr, &auroc, &ap)) {
        fprintf(f, "<p class=\"muted\">%s level: only one class in the test set, no curves.</p>\n", level);
        free(lab);
        return;
    }
    char title[96], name[64];
    snprintf(name, sizeof name, "AUROC %.1f%%", 100 * auroc);
    double diag[2] = {0, 1};
    mvead_svg_series rs[2] = {{name, "#1f77b4", roc.n, roc.x, roc.y, false, false},
                              {"chance", "#bbbbbb", 2, diag, diag, false, true}};
    snprintf(title, sizeof title, "ROC, %s level (n = %lld)", level, (long long)n);
    mvead_svg_plot(f, title, "false positive rate", "true positive rate", 0, 1, 0, 1, true, rs, 2);
    snprintf(name, sizeof name, "AP %.1f%%", 100 * ap);
    mvead_svg_series p = {name, "#d62728", pr.n, pr.x, pr.y, true, false};
    snprintf(title, sizeof title, "Precision-recall, %s level", level);
    mvead_svg_plot(f, title, "recall", "precision", 0, 1, 0, 1, true, &p, 1);
    curve_free(&roc);
    curve_free(&pr);
    free(lab);
}

/* Pixel ROC and the PRO curve up to the FPR limit AUPRO integrates. */
static void write_pixel_curves_html(FILE *f, const scores_file *s) {
    if (!s->n_pix_roc || !s->n_pro) {
        fputs("<p class=\"muted\">Pixel-level curves: not recorded in scores.h5 (eval of an earlier version).</p>\n", f);
        return;
    }
    double diag[2] = {0, 1};
    mvead_svg_series rs[2] = {{"pixels", "#9467bd", s->n_pix_roc, s->pix_fpr, s->pix_tpr, false, false},
                              {"chance", "#bbbbbb", 2, diag, diag, false, true}};
    mvead_svg_plot(f, "ROC, pixel level", "false positive rate", "true positive rate", 0, 1, 0, 1, true, rs, 2);
    /* the PRO curve up to FPR 0.3 */
    int64_t m = 0;
    while (m < s->n_pro && s->pro_fpr[m] <= 0.3 + 1e-12) m++;
    mvead_svg_series ps = {"PRO (region-weighted TPR)", "#8c564b", m, s->pro_fpr, s->pro, false, false};
    mvead_svg_plot(f, "PRO curve (AUPRO integrates to FPR 0.3)", "false positive rate", "per-region overlap", 0, 0.3, 0, 1,
                   true, &ps, 1);
}

static void write_loss_html(FILE *f, const mvead_loss_log *l) {
    if (l->n == 0) {
        fputs("<p class=\"muted\">No training steps (objective none, fusion none, or no loss.csv).</p>\n", f);
        return;
    }
    double lo = INFINITY, hi = -INFINITY;
    const double *ys[3] = {l->pos, l->neg, l->total};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < l->n; i++)
            if (isfinite(ys[k][i])) {
                if (ys[k][i] < lo) lo = ys[k][i];
                if (ys[k][i] > hi) hi = ys[k][i];
            }
    if (!isfinite(lo)) lo = 0, hi = 1;
    mvead_svg_series s[3] = {{"pos (multi-centre)", "#1f77b4", l->n, l->step, l->pos, false, false},
                             {"neg (negatives)", "#d62728", l->n, l->step, l->neg, false, false},
                             {"total", "#2ca02c", l->n, l->step, l->total, false, false}};
    double x1 = l->n > 1 ? l->step[l->n - 1] : l->step[0] + 1;
    mvead_svg_plot(f, "Training loss per step", "step", "loss", l->step[0], x1, lo, hi, false, s, 3);
    fprintf(f, "<p class=\"muted\">%lld steps; final total %.5g (pos %.5g, neg %.5g).</p>\n", (long long)l->n,
            l->total[l->n - 1], l->pos[l->n - 1], l->neg[l->n - 1]);
}

/* ---- pictures ------------------------------------------------------------------------- */

typedef struct {
    int64_t idx;   /* s * V + v, or s */
    double score;
} ranked;

static int by_rank_desc(const void *a, const void *b) {
    double x = ((const ranked *)a)->score, y = ((const ranked *)b)->score;
    if (x != y) return x > y ? -1 : 1;
    int64_t i = ((const ranked *)a)->idx, j = ((const ranked *)b)->idx;
    return i < j ? -1 : i > j;
}

static void heatmap_figure(FILE *f, const mvead_paths *p, const scores_file *s, int64_t i, int v, double t) {
    char path[2048];
    int64_t k = i * s->V + v;
    fputs("<figure>", f);
    bool shown = !mvead_paths_heatmap(p, s->category[i], s->sample_id[i], s->anomaly_class[i], v, path, sizeof path) &&
                 mvead_html_png(f, path, "heatmap", NULL);
    if (!shown) fputs("<p class=\"muted\">no heatmap</p>", f);
    fprintf(f, "<figcaption><b>C%d</b> %s &middot; %.4g%s</figcaption></figure>\n", v + 1,
            s->view_label[k] ? "defective" : "good", s->image_scores[k],
            isfinite(t) ? (s->image_scores[k] >= t ? " &middot; <b>NG</b>" : " &middot; OK") : "");
}

/* Samples with all their views side by side: the highest-scored defective
 * samples and the highest-scored good one. */
static void write_samples(FILE *f, const mvead_paths *p, const scores_file *s, double t) {
    ranked *r = malloc(sizeof(ranked) * (size_t)(s->S + 1));
    if (!r) return;
    for (int want = 1; want >= 0; want--) {
        int64_t n = 0;
        for (int64_t i = 0; i < s->S; i++)
            if ((s->sample_label[i] != 0) == want) r[n++] = (ranked){i, s->sample_scores[i]};
        qsort(r, (size_t)n, sizeof *r, by_rank_desc);
        for (int64_t k = 0; k < n && k < (want ? 3 : 1); k++) {
            int64_t i = r[k].idx;
            fprintf(f, "<div class=\"sample\"><div>%s sample <b>", want ? "Defective" : "Good");
            mvead_html_escape(f, s->category[i]);
            fputs(" / ", f);
            mvead_html_escape(f, s->sample_id[i]);
            fputs("</b> (", f);
            mvead_html_escape(f, s->anomaly_class[i]);
            fprintf(f, "), sample score %.4g%s</div><div class=\"views\">\n", s->sample_scores[i],
                    isfinite(t) ? (s->sample_scores[i] >= t ? ": <b>NG</b>" : ": OK") : "");
            for (int v = 0; v < s->V; v++) heatmap_figure(f, p, s, i, v, t);
            fputs("</div></div>\n", f);
        }
    }
    free(r);
    if (isfinite(s->map_lo) && isfinite(s->map_hi))
        mvead_svg_colorbar(f, s->map_lo, s->map_hi, t, "anomaly score (kNN distance), one scale for the run");
    else
        fputs("<p class=\"muted\">The colour scale of these heatmaps was not recorded (eval of an earlier version).</p>\n", f);
    fputs("<p class=\"muted\">Each view: the image | its anomaly map over it, the ground-truth outline in white. "
          "NG / OK: the view's image score against the run's threshold.</p>\n", f);
}

/* Up to `max` views of the given label, most wrong first (good: highest
 * score; defective: lowest), that have a heatmap PNG. */
static void write_gallery(FILE *f, const mvead_paths *p, const scores_file *s, int want_label, int max) {
    int64_t n = 0;
    ranked *v = malloc(sizeof(ranked) * (size_t)(s->S * s->V + 1));
    if (!v) return;
    for (int64_t i = 0; i < s->S * s->V; i++)
        if ((s->view_label[i] != 0) == (want_label != 0))
            v[n++] = (ranked){i, want_label ? -s->image_scores[i] : s->image_scores[i]};
    qsort(v, (size_t)n, sizeof *v, by_rank_desc);
    int shown = 0;
    fputs("<div class=\"gallery\">\n", f);
    for (int64_t k = 0; k < n && shown < max; k++) {
        int64_t i = v[k].idx / s->V;
        int view = (int)(v[k].idx % s->V);
        char path[2048];
        if (mvead_paths_heatmap(p, s->category[i], s->sample_id[i], s->anomaly_class[i], view, path, sizeof path)) continue;
        fputs("<figure>", f);
        if (!mvead_html_png(f, path, "heatmap", NULL)) { fputs("</figure>\n", f); continue; }
        fputs("<figcaption>", f);
        mvead_html_escape(f, s->category[i]);
        fputs(" / ", f);
        mvead_html_escape(f, s->sample_id[i]);
        fputs(" / ", f);
        mvead_html_escape(f, s->anomaly_class[i]);
        fprintf(f, " / C%d: image score %.4g (sample %.4g)</figcaption></figure>\n", view + 1, s->image_scores[v[k].idx],
                s->sample_scores[i]);
        shown++;
    }
    fputs("</div>\n", f);
    if (!shown) fputs("<p class=\"muted\">No heatmap PNG available for these views (eval --heatmaps writes them).</p>\n", f);
    free(v);
}

/* The highest-scored defective sample, its highest-scored defective view and
 * that view's highest-scored patch: where the pictures look. -1 when none. */
static int64_t top_defect(const scores_file *s, int *view, int *patch) {
    int64_t best = -1;
    for (int64_t i = 0; i < s->S; i++)
        if (s->sample_label[i] && (best < 0 || s->sample_scores[i] > s->sample_scores[best])) best = i;
    if (best < 0) return -1;
    int bv = -1;
    for (int v = 0; v < s->V; v++) {
        int64_t k = best * s->V + v;
        if (s->view_label[k] && (bv < 0 || s->image_scores[k] > s->image_scores[best * s->V + bv])) bv = v;
    }
    if (bv < 0) bv = 0;
    int bp = -1;   /* no patch scores: the caller takes the centre patch */
    if (s->patch_scores) {
        const float *ps = s->patch_scores + (best * s->V + bv) * s->N;
        bp = 0;
        for (int j = 1; j < s->N; j++) if (ps[j] > ps[bp]) bp = j;
    }
    *view = bv;
    *patch = bp;
    return best;
}

/* C1..CV under a picture of the views side by side; `query` marks one. */
static void view_labels(FILE *f, int V, int query, const char *what) {
    fprintf(f, "<div class=\"views\" style=\"grid-template-columns:repeat(%d,minmax(0,1fr))\">", V);
    for (int v = 0; v < V; v++)
        fprintf(f, "<figure><figcaption><b>C%d</b>%s</figcaption></figure>", v + 1, v == query ? what : "");
    fputs("</div>\n", f);
}

/* The EAM attention of the top defect's top patch, and an epilines check of
 * the run's calibration on the same sample. */
static void write_geometry_pictures(FILE *f, const mvead_config *c, const mvead_paths *p, const scores_file *s) {
    int view, patch;
    int64_t i = top_defect(s, &view, &patch);
    fputs("<h2 id=\"attention\">Where the EAM looks</h2>\n", f);
    if (i < 0) {
        fputs("<p class=\"muted\">No defective test sample.</p>\n<h2 id=\"epilines\">Calibration check</h2>\n"
              "<p class=\"muted\">No defective test sample to draw on.</p>\n", f);
        return;
    }
    mvd_cache *cache = mvd_cache_open(p->test_cache);
    if (!cache || i >= cache->info.S || strcmp(cache->sample_id[i], s->sample_id[i]) ||
        strcmp(cache->category[i], s->category[i])) {
        fprintf(f, "<p class=\"muted\">The test feature cache is not readable (%s); no attention or epiline pictures.</p>\n",
                cache ? "another sample order" : "missing");
        if (cache) mvd_cache_close(cache);
        return;
    }
    const mvd_cache_info *in = &cache->info;
    if (patch < 0 || patch >= in->N) patch = (in->grid_h / 2) * in->grid_w + in->grid_w / 2;
    double kept = 0;
    if (mvead_attention_picture(c, p, cache, i, view, patch, p->report_attention, &kept)) {
        fputs("<p class=\"muted\">", f);
        mvead_html_escape(f, mv_error_last());
        fputs("</p>\n", f);
    } else {
        fputs("<div class=\"wide\">", f);
        mvead_html_png(f, p->report_attention, "attention", NULL);
        fputs("</div>\n", f);
        view_labels(f, (int)in->V, view, " (query)");
        fputs("<p class=\"muted\">The highest-scored defect, ", f);
        mvead_html_escape(f, s->category[i]);
        fputs(" / ", f);
        mvead_html_escape(f, s->sample_id[i]);
        fprintf(f, ": query patch %d (its highest patch score) of C%d, outlined in cyan in its dimmed view. Every other "
                   "view: the attention weights (mean over heads) as heat, the keys the %s mask keeps for this query "
                   "outlined in white; %.0f patches get a weight.</p>\n", patch, view + 1, c->fusion, kept);
    }
    fputs("<h2 id=\"epilines\">Calibration check</h2>\n", f);
    mvg_calibration cal;
    mvd_image imgs[MVG_MAX_VIEWS] = {{0}};
    const uint8_t *ptrs[MVG_MAX_VIEWS] = {0};
    bool ok = !mvg_calibration_read_json(p->calib, &cal) && cal.V == in->V;
    for (int v = 0; ok && v < in->V; v++) {
        mvd_image raw = {0};
        ok = !mvd_image_read_as(cache->image_path[i * in->V + v], 3, &raw) &&
             !mvd_image_resize(&raw, in->W, in->H, MVD_RESIZE_BILINEAR, MVD_AA_SHRINK, &imgs[v]);
        mvd_image_free(&raw);
        ptrs[v] = imgs[v].data;
    }
    /* the query patch's centre and two more points across the view */
    int gw = in->grid_w, P = in->P;
    double pts[6] = {(patch % gw + 0.5) * P, (patch / gw + 0.5) * P, in->W * 0.25, in->H * 0.3, in->W * 0.7, in->H * 0.75};
    uint8_t *canvas = NULL;
    int cw, ch;
    if (ok && !mvg_draw_epilines(&cal, ptrs, in->W, in->H, view, pts, 3, P, c->delta, &canvas, &cw, &ch)) {
        mvd_image ci = {cw, ch, 3, canvas};
        ok = !mvd_image_write_png(p->report_epilines, &ci);
        free(canvas);
    } else ok = false;
    if (ok) {
        fputs("<div class=\"wide\">", f);
        mvead_html_png(f, p->report_epilines, "epipolar lines", NULL);
        fputs("</div>\n", f);
        view_labels(f, (int)in->V, view, " (points)");
        fprintf(f, "<p class=\"muted\">Three points of C%d (the first: the query patch above) and, in every other "
                   "view, their epipolar lines from the run's calibration (", view + 1);
        mvead_html_escape(f, p->calib);
        fprintf(f, ") with the patches the EAM keeps (band half-width %g patches) tinted. A good calibration puts the "
                   "lines through the same surface points.</p>\n", c->delta);
    } else {
        fputs("<p class=\"muted\">No epiline picture: ", f);
        mvead_html_escape(f, mv_error_last());
        fputs("</p>\n", f);
    }
    for (int v = 0; v < MVG_MAX_VIEWS; v++) mvd_image_free(&imgs[v]);
    mvd_cache_close(cache);
}

static void write_config_html(FILE *f, const char *cfg_path) {
    json_object *cfg = json_object_from_file(cfg_path);
    if (!cfg || !json_object_is_type(cfg, json_type_object)) {
        fputs("<p class=\"muted\">", f);
        mvead_html_escape(f, cfg_path);
        fputs(" not found.</p>\n", f);
        if (cfg) json_object_put(cfg);
        return;
    }
    fputs("<div class=\"cfg\">\n", f);
    json_object_object_foreach(cfg, key, val) {
        char b[1100];
        fputs("<div><b>", f);
        mvead_html_escape(f, key);
        fputs("</b> = ", f);
        mvead_html_escape(f, mvead_html_config_value(val, b, sizeof b));
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    json_object_put(cfg);
}

static const char *js_str(json_object *o, const char *key) {
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

/* history.jsonl: a row per command that ran stages: when, the command line,
 * the version, each stage's time and peak RSS, and where the inputs came from. */
static void write_history(FILE *f, FILE *md, const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fputs("<p class=\"muted\">No history.jsonl (a run from before the stages recorded themselves).</p>\n", f);
        return;
    }
    fputs("<table id=\"history-table\"><tr><th class=\"k\">time (UTC)</th><th class=\"k\">command</th>"
          "<th class=\"k\">version</th><th class=\"k\">stages (s, peak RSS MiB)</th><th class=\"k\">inputs</th></tr>\n", f);
    fputs("\n| time (UTC) | command | version | stages (s, peak RSS MiB) | inputs |\n|---|---|---|---|---|\n", md);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!o) continue;
        char cmd[2048] = "", stages[1024] = "", inputs[1536] = "";
        json_object *a, *st, *pv;
        if (json_object_object_get_ex(o, "argv", &a) && json_object_is_type(a, json_type_array))
            for (size_t i = 0; i < json_object_array_length(a); i++) {
                size_t l = strlen(cmd);
                snprintf(cmd + l, sizeof cmd - l, "%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(a, i)));
            }
        if (json_object_object_get_ex(o, "stages", &st) && json_object_is_type(st, json_type_array))
            for (size_t i = 0; i < json_object_array_length(st); i++) {
                json_object *s = json_object_array_get_idx(st, i), *v;
                double sec = json_object_object_get_ex(s, "seconds", &v) ? json_object_get_double(v) : NAN;
                double rss = json_object_object_get_ex(s, "peak_rss_mib", &v) ? json_object_get_double(v) : NAN;
                size_t l = strlen(stages);
                snprintf(stages + l, sizeof stages - l, "%s%s %.1f s, %.0f MiB", i ? "; " : "", js_str(s, "stage"), sec, rss);
            }
        if (json_object_object_get_ex(o, "provenance", &pv)) {
            json_object *sm;
            const char *bb = js_str(pv, "backbone"), *cal = js_str(pv, "calibration_sha256");
            snprintf(inputs, sizeof inputs, "data %s", js_str(pv, "data"));
            if (json_object_object_get_ex(pv, "samples", &sm) && sm) {
                size_t l = strlen(inputs);
                snprintf(inputs + l, sizeof inputs - l, " (train %s, test %s)", js_str(sm, "train"), js_str(sm, "test"));
            }
            size_t l = strlen(inputs);
            if (*bb) snprintf(inputs + l, sizeof inputs - l, "; backbone %.80s", bb), l = strlen(inputs);
            if (*cal) snprintf(inputs + l, sizeof inputs - l, "; calibration sha256 %.16s…", cal);
        }
        char ver[256];
        snprintf(ver, sizeof ver, "%s (%s)", js_str(o, "version"), js_str(o, "commit"));
        const char *cells[5] = {js_str(o, "time"), cmd, ver, stages, inputs};
        fputs("<tr>", f);
        fputc('|', md);
        for (int k = 0; k < 5; k++) {
            fputs("<td class=\"k\">", f);
            mvead_html_escape(f, cells[k]);
            fputs("</td>", f);
            fputc(' ', md);
            for (const char *c = cells[k]; *c; c++) fputc(*c == '|' ? '/' : *c, md);   /* keep the table's columns */
            fputs(" |", md);
        }
        fputs("</tr>\n", f);
        fputc('\n', md);
        json_object_put(o);
    }
    free(line);
    fclose(fp);
    fputs("</table>\n", f);
}

/* What produced the run: the stages' records (history.jsonl), then the files
 * of its folder with their times. */
static void write_provenance(FILE *f, FILE *md, const mvead_paths *p) {
    fprintf(md, "\n## Provenance\n\nThis report: mvead %s. The commands that made the run (history.jsonl):\n", PACKAGE_VERSION);
    fprintf(f, "<p>This report: mvead %s. The commands that made the run (<code>history.jsonl</code>):</p>\n", PACKAGE_VERSION);
    write_history(f, md, p->history);
    fputs("<p>Files of the run folder:</p>\n<table id=\"provenance-table\"><tr><th class=\"k\">file</th>"
          "<th class=\"k\">written</th><th>bytes</th></tr>\n", f);
    fputs("\n| file | written | bytes |\n|---|---|---:|\n", md);
    const char *files[] = {p->config, p->loss_csv, p->checkpoint, p->bank, p->scores, p->metrics};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        struct stat st;
        if (stat(files[k], &st)) continue;
        char when[64];
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&st.st_mtime, &tm));
        const char *base = strrchr(files[k], '/');
        base = base ? base + 1 : files[k];
        fputs("<tr><td class=\"k\">", f);
        mvead_html_escape(f, base);
        fprintf(f, "</td><td class=\"k\">%s</td><td>%lld</td></tr>\n", when, (long long)st.st_size);
        fprintf(md, "| %s | %s | %lld |\n", base, when, (long long)st.st_size);
    }
    fputs("</table>\n", f);
}

int mvead_stage_report(const mvead_config *c) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, false)) return -1;
    json_object *metrics = mvead_metrics_load(p.metrics);
    if (!metrics) return -1;
    scores_file sc;
    if (scores_load(p.scores, &sc)) {
        json_object_put(metrics);
        return -1;
    }
    mvead_loss_log loss;
    if (mvead_loss_load(p.loss_csv, &loss)) {
        json_object_put(metrics);
        scores_free(&sc);
        return -1;
    }
    int rc = -1;
    mvead_pages pg;
    if (mvead_pages_open(&pg, p.report_html, p.report_md)) goto done;
    FILE *f = pg.html, *md = pg.md;
    const char *setting = "";
    json_object *v;
    if (json_object_object_get_ex(metrics, "setting", &v) && v) setting = json_object_get_string(v);
    bool trained = loss.n > 0;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mvead report: ", f);
    mvead_html_escape(f, c->name);
    fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>mvead run <code>", mvead_html_css);
    mvead_html_escape(f, c->name);
    fputs("</code></h1>\n<p class=\"muted\">", f);
    mvead_html_escape(f, p.run);
    fprintf(f, " &middot; %s &middot; %lld test samples x %lld views &middot; fusion %s", setting, (long long)sc.S,
            (long long)sc.V, c->fusion);
    if (trained) fprintf(f, ", objective %s", c->objective);
    fputs("</p>\n", f);
    fprintf(md, "# mvead run `%s`\n\n%s, %lld test samples x %lld views, fusion %s%s%s. Values in %%.\n", c->name, setting,
            (long long)sc.S, (long long)sc.V, c->fusion, trained ? ", objective " : "", trained ? c->objective : "");

    threshold_info th = run_threshold(&sc);
    fputs("<h2 id=\"threshold\">Operating threshold</h2>\n", f);
    if (isfinite(th.t)) {
        fprintf(f, "<p class=\"verdict\">A view is <b>NG</b> when its image score is &ge; <b>%.6g</b>.</p>\n"
                   "<p class=\"muted\">Rule: " MVS_THRESHOLD_RULE ". There: F1 %.1f%%, %lld true and %lld false NG, "
                   "%lld missed defective views, %lld correct OK. <code>mvead predict</code> uses it.</p>\n",
                th.t, 100 * th.f1, (long long)th.tp, (long long)th.fp, (long long)th.fn, (long long)th.tn);
        fprintf(md, "\n## Operating threshold\n\nNG when the image score is >= %.6g (rule: " MVS_THRESHOLD_RULE
                    "; F1 %.1f%%).\n", th.t, 100 * th.f1);
    } else {
        fputs("<p class=\"muted\">No threshold: the test split has only one class of views.</p>\n", f);
    }

    const char *sets[2] = {"exact", "adeval"};
    const char *set_title[2] = {"exact rules (scikit-learn's AUROC and step-wise AP, MVTec AUPRO)",
                                "Real-IAD's official evaluator (ADEval: 1000-strip histograms, trapezoidal AUPR)"};
    fputs("<h2 id=\"results\">Results (%, mean over categories as in the paper's tables)</h2>\n", f);
    fputs("\n## Results (%, mean over categories)\n\n", md);
    int n_sets = has_set(metrics, "adeval") ? 2 : 1;
    const char *eval_size = "";
    if (json_object_object_get_ex(metrics, "eval_size", &v) && v) eval_size = json_object_get_string(v);
    for (int k = 0; k < n_sets; k++) {
        fprintf(f, "<h3>%s</h3>\n", set_title[k]);
        fprintf(md, "### %s\n\n", set_title[k]);
        if (eval_size[0]) {
            fputs("<p class=\"muted\">Pixel level at --eval_size ", f);
            mvead_html_escape(f, eval_size);
            fprintf(f, "%s</p>\n", k == 1 ? ". Compare these with published Real-IAD numbers." : ".");
        }
        metric_table(f, md, metrics, n_sets > 1 ? sets[k] : NULL);
    }
    fputs("<h2 id=\"per-view\">Per view (image level)</h2>\n", f);
    fputs("\n## Per view (image level, mean over categories)\n\n", md);
    per_view_table(f, md, &sc);
    fputs("<h2 id=\"per-defect\">Per defect type</h2>\n", f);
    fputs("\n## Per defect type (pooled over categories)\n\n", md);
    per_defect_table(f, md, &sc);

    fputs("<h2 id=\"curves\">Curves</h2>\n<div class=\"plots\">\n", f);
    write_curves_html(f, "sample", sc.sample_scores, sc.sample_label, sc.S);
    write_curves_html(f, "image", sc.image_scores, sc.view_label, sc.S * sc.V);
    write_pixel_curves_html(f, &sc);
    fputs("</div>\n<p class=\"muted\">Curves pool every test sample (all categories); the tables average per category.</p>\n", f);

    fputs("<h2 id=\"loss\">Training loss</h2>\n", f);
    write_loss_html(f, &loss);
    if (loss.n)
        fprintf(md, "\nTraining: %lld steps, final loss %.5g (pos %.5g, neg %.5g).\n", (long long)loss.n,
                loss.total[loss.n - 1], loss.pos[loss.n - 1], loss.neg[loss.n - 1]);

    fputs("<h2 id=\"samples\">Samples, every view</h2>\n", f);
    write_samples(f, &p, &sc, th.t);
    write_geometry_pictures(f, c, &p, &sc);

    fputs("<h2 id=\"worst-fp\">Worst false positives (highest-scored good views)</h2>\n", f);
    write_gallery(f, &p, &sc, 0, 6);
    fputs("<h2 id=\"worst-fn\">Worst false negatives (lowest-scored defective views)</h2>\n", f);
    write_gallery(f, &p, &sc, 1, 6);
    if (isfinite(sc.map_lo) && isfinite(sc.map_hi))
        mvead_svg_colorbar(f, sc.map_lo, sc.map_hi, th.t, "anomaly score of both galleries (the same scale as above)");

    fputs("<h2 id=\"provenance\">Provenance</h2>\n", f);
    write_provenance(f, md, &p);
    fputs("<h2 id=\"config\">Configuration</h2>\n", f);
    write_config_html(f, p.config);
    fputs("</body></html>\n", f);
    fprintf(md, "\nFiles:\n\n- report: `%s`\n- metrics: `%s`\n- scores: `%s`\n- checkpoint: `%s`\n- bank: `%s`\n"
                "- loss log: `%s`\n- heatmaps: `%s/`\n- configuration: `%s`\n",
            p.report_html, p.metrics, p.scores, p.checkpoint, p.bank, p.loss_csv, p.heatmaps, p.config);
    if (mvead_pages_commit(&pg)) goto done;
    mvead_log("report: %s, %s", p.report_html, p.report_md);
    rc = 0;
done:
    json_object_put(metrics);
    scores_free(&sc);
    mvead_loss_free(&loss);
    return rc;
}
