/* report: one self-contained HTML page (inline CSS, inline SVG, images as
 * base64 data URIs; no script, no external resource) and a Markdown summary
 * of a finished run, built from the files the stages left in the run folder:
 * config.json, metrics.json, scores.h5, loss.csv and heatmaps/. Also the
 * side-by-side comparison of several runs (`mvead report --compare`).
 * Called by mvead/cli/main.c (report, run, demo) and mvead/cli/ablate.c. */
#include "data/fileio.h"
#include "data/h5io.h"
#include "mvead/run/run_config.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Table columns in the paper's order (mvs_metric_keys' `column`). */
static const char *column_key(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].key; }
static const char *column_title(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].title; }

/* ---- small helpers ------------------------------------------------------------ */

static void html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Standard base64 (RFC 4648, with padding), streamed to f. */
static void base64_write(FILE *f, const unsigned char *b, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (unsigned)b[i + 1] << 8 | b[i + 2];
        fputc(tab[v >> 18], f), fputc(tab[(v >> 12) & 63], f), fputc(tab[(v >> 6) & 63], f), fputc(tab[v & 63], f);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)b[i] << 16;
        fputc(tab[v >> 18], f), fputc(tab[(v >> 12) & 63], f), fputs("==", f);
    } else if (n - i == 2) {
        unsigned v = (unsigned)b[i] << 16 | (unsigned)b[i + 1] << 8;
        fputc(tab[v >> 18], f), fputc(tab[(v >> 12) & 63], f), fputc(tab[(v >> 6) & 63], f), fputc('=', f);
    }
}

/* Whole file into memory (NULL when unreadable). */
static unsigned char *read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); fclose(fp); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, fp);
        len += r;
        if (r == 0) break;
    }
    fclose(fp);
    *n = len;
    return buf;
}

/* A metric of a metrics.json row; NaN when absent or null (degenerate). */
static double metric_of(json_object *row, const char *key) {
    json_object *v;
    if (!row || !json_object_object_get_ex(row, key, &v) || !v) return NAN;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) return NAN;
    return json_object_get_double(v);
}

/* "96.2" or an en dash for a missing value; buf >= 16. */
static const char *pct(double v, char *buf) {
    if (isfinite(v)) snprintf(buf, 16, "%.1f", 100.0 * v);
    else snprintf(buf, 16, "\xe2\x80\x93");
    return buf;
}

static json_object *load_metrics(const char *path) {
    json_object *root = json_object_from_file(path);
    if (!root) {
        mv_error("%s: cannot read metrics (missing or invalid JSON; run `mvead eval` first)", path);
        return NULL;
    }
    json_object *m;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "mean_over_categories", &m)) {
        json_object_put(root);
        mv_error("%s: not an mvead metrics file (no 'mean_over_categories')", path);
        return NULL;
    }
    return root;
}

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

/* ---- SVG plots ---------------------------------------------------------------------- */

typedef struct {
    const char *name, *color;
    int64_t n;
    const double *x, *y;
    bool step;   /* PR curves: horizontal then vertical segments */
} series;

#define PLOT_W 380
#define PLOT_H 280
#define PLOT_L 52
#define PLOT_R 12
#define PLOT_T 28
#define PLOT_B 40

static void tick_label(char *buf, size_t n, double v) {
    if (fabs(v) >= 1e4 || (fabs(v) < 1e-2 && v != 0)) snprintf(buf, n, "%.1e", v);
    else snprintf(buf, n, "%.3g", v);
}

/* A line plot as an inline <svg>. Points closer than ~0.5 px to the last drawn
 * one are dropped so huge curves stay small. */
typedef enum { LEGEND_TOP_RIGHT, LEGEND_BOTTOM_RIGHT, LEGEND_BOTTOM_LEFT } legend_pos;

static void svg_plot(FILE *f, const char *title, const char *xlabel, const char *ylabel, double x0, double x1, double y0,
                     double y1, const series *s, int ns, legend_pos legend) {
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    double pw = PLOT_W - PLOT_L - PLOT_R, ph = PLOT_H - PLOT_T - PLOT_B;
#define SX(x) (PLOT_L + ((x) - x0) / (x1 - x0) * pw)
#define SY(y) (PLOT_T + ph - ((y) - y0) / (y1 - y0) * ph)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" class=\"plot\">\n",
            PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    fprintf(f, "<text x=\"%d\" y=\"16\" class=\"t\">", PLOT_W / 2);
    html_escape(f, title);
    fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%g\" class=\"frame\"/>\n", PLOT_L, PLOT_T, pw, ph);
    for (int k = 0; k <= 4; k++) {
        double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
        char b[32];
        tick_label(b, sizeof b, xv);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", SX(xv), PLOT_T, SX(xv), PLOT_T + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xt\">%s</text>\n", SX(xv), PLOT_T + ph + 14, b);
        tick_label(b, sizeof b, yv);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", PLOT_L, SY(yv), PLOT_L + pw, SY(yv));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"yt\">%s</text>\n", PLOT_L - 4, SY(yv) + 4, b);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">", PLOT_L + pw / 2, PLOT_H - 6);
    html_escape(f, xlabel);
    fprintf(f, "</text><text x=\"12\" y=\"%.1f\" class=\"yl\" transform=\"rotate(-90 12 %.1f)\">", PLOT_T + ph / 2, PLOT_T + ph / 2);
    html_escape(f, ylabel);
    fputs("</text>\n", f);
    for (int i = 0; i < ns; i++) {
        if (s[i].n < 1) continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", s[i].color);
        double lx = NAN, ly = NAN;
        for (int64_t k = 0; k < s[i].n; k++) {
            double px = SX(s[i].x[k]), py = SY(s[i].y[k]);
            if (!isfinite(px) || !isfinite(py)) continue;
            bool last = k == s[i].n - 1;
            if (!last && isfinite(lx) && fabs(px - lx) < 0.5 && fabs(py - ly) < 0.5) continue;
            if (s[i].step && isfinite(lx)) fprintf(f, "%.1f,%.1f ", px, ly);
            fprintf(f, "%.1f,%.1f ", px, py);
            lx = px, ly = py;
        }
        fputs("\"/>\n", f);
        /* legend in the corner the curves usually leave empty */
        double lx0 = legend == LEGEND_BOTTOM_LEFT ? PLOT_L + 8.0 : PLOT_L + pw - 110.0;
        double ly0 = legend == LEGEND_TOP_RIGHT ? PLOT_T + 10.0 + 14 * i : PLOT_T + ph - 8.0 - 14 * (ns - 1 - i);
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"3\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\" class=\"lg\">",
                lx0, ly0 - 4, s[i].color, lx0 + 14, ly0);
        html_escape(f, s[i].name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef SX
#undef SY
}

/* ---- inputs ------------------------------------------------------------------------- */

typedef struct {
    int64_t S, V;
    double *image_scores, *sample_scores;   /* [S*V], [S] */
    int64_t *view_label, *sample_label;     /* [S*V], [S] */
    char **category, **sample_id, **anomaly_class;
} scores_file;

static void scores_free(scores_file *s) {
    free(s->image_scores);
    free(s->sample_scores);
    free(s->view_label);
    free(s->sample_label);
    if (s->category) mvd_h5_free_strings(s->category, s->S);
    if (s->sample_id) mvd_h5_free_strings(s->sample_id, s->S);
    if (s->anomaly_class) mvd_h5_free_strings(s->anomaly_class, s->S);
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
    rc = 0;
done:
    H5Fclose(f);
    if (rc) scores_free(s);
    return rc;
}

typedef struct {
    int64_t n;
    double *step, *pos, *neg, *total;
} loss_log;

static void loss_free(loss_log *l) {
    free(l->step);
    free(l->pos);
    free(l->neg);
    free(l->total);
    memset(l, 0, sizeof *l);
}

/* loss.csv (step,epoch,pos,neg,total); a missing file is an empty log. */
static int loss_load(const char *path, loss_log *l) {
    memset(l, 0, sizeof *l);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    char line[512];
    int64_t cap = 0;
    bool header = true;
    while (fgets(line, sizeof line, fp)) {
        if (header) { header = false; continue; }
        long long st, ep;
        double a, b, c;
        if (sscanf(line, "%lld,%lld,%lf,%lf,%lf", &st, &ep, &a, &b, &c) != 5) continue;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 256;
            l->step = realloc(l->step, sizeof(double) * (size_t)cap);
            l->pos = realloc(l->pos, sizeof(double) * (size_t)cap);
            l->neg = realloc(l->neg, sizeof(double) * (size_t)cap);
            l->total = realloc(l->total, sizeof(double) * (size_t)cap);
        }
        l->step[l->n] = (double)st;
        l->pos[l->n] = a;
        l->neg[l->n] = b;
        l->total[l->n] = c;
        l->n++;
    }
    fclose(fp);
    return 0;
}

/* ---- the page ----------------------------------------------------------------------- */

static const char *CSS =
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}"
    "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}"
    "th{background:#f4f4f4}td.k,th.k{text-align:left}tr.mean td{font-weight:bold;background:#fafafa}"
    ".cfg{columns:3;column-gap:24px;font-size:12px;font-family:monospace}.cfg div{break-inside:avoid}"
    ".muted{color:#777;font-size:12px}.plots{display:flex;flex-wrap:wrap;gap:12px}"
    "svg.plot{background:#fff;border:1px solid #eee}svg .frame{fill:none;stroke:#888}svg .grid{stroke:#eee}"
    "svg text{font-size:10px;fill:#333}svg .t{font-size:12px;text-anchor:middle;font-weight:bold}"
    "svg .xt{text-anchor:middle}svg .yt{text-anchor:end}svg .xl,svg .yl{text-anchor:middle;font-size:11px}"
    ".gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;border:1px solid #ddd;padding:4px;font-size:11px;max-width:460px}"
    ".gallery img{display:block;max-width:448px;height:auto;image-rendering:pixelated}";

static void write_metric_table_html(FILE *f, json_object *metrics) {
    char b[16];
    fputs("<table><tr><th class=\"k\">Category</th>", f);
    for (int k = 0; k < MVS_KEY_COUNT; k++) fprintf(f, "<th>%s</th>", column_title(k));
    fputs("</tr>\n", f);
    json_object *per = NULL, *mean = NULL;
    json_object_object_get_ex(metrics, "per_category", &per);
    json_object_object_get_ex(metrics, "mean_over_categories", &mean);
    if (per && json_object_is_type(per, json_type_object)) {
        json_object_object_foreach(per, cat, row) {
            fputs("<tr><td class=\"k\">", f);
            html_escape(f, cat);
            fputs("</td>", f);
            for (int k = 0; k < MVS_KEY_COUNT; k++) fprintf(f, "<td>%s</td>", pct(metric_of(row, column_key(k)), b));
            fputs("</tr>\n", f);
        }
    }
    fputs("<tr class=\"mean\"><td class=\"k\">mean</td>", f);
    for (int k = 0; k < MVS_KEY_COUNT; k++) fprintf(f, "<td>%s</td>", pct(metric_of(mean, column_key(k)), b));
    fputs("</tr></table>\n", f);
}

static void write_metric_table_md(FILE *f, json_object *metrics) {
    char b[16];
    fputs("| Category |", f);
    for (int k = 0; k < MVS_KEY_COUNT; k++) fprintf(f, " %s |", column_title(k));
    fputs("\n|---|", f);
    for (int k = 0; k < MVS_KEY_COUNT; k++) fputs("---:|", f);
    fputc('\n', f);
    json_object *per = NULL, *mean = NULL;
    json_object_object_get_ex(metrics, "per_category", &per);
    json_object_object_get_ex(metrics, "mean_over_categories", &mean);
    if (per && json_object_is_type(per, json_type_object)) {
        json_object_object_foreach(per, cat, row) {
            fprintf(f, "| %s |", cat);
            for (int k = 0; k < MVS_KEY_COUNT; k++) fprintf(f, " %s |", pct(metric_of(row, column_key(k)), b));
            fputc('\n', f);
        }
    }
    fputs("| **mean** |", f);
    for (int k = 0; k < MVS_KEY_COUNT; k++) fprintf(f, " **%s** |", pct(metric_of(mean, column_key(k)), b));
    fputc('\n', f);
}

static void write_config_html(FILE *f, const char *cfg_path) {
    json_object *cfg = json_object_from_file(cfg_path);
    if (!cfg || !json_object_is_type(cfg, json_type_object)) {
        fputs("<p class=\"muted\">", f);
        html_escape(f, cfg_path);
        fputs(" not found.</p>\n", f);
        if (cfg) json_object_put(cfg);
        return;
    }
    fputs("<div class=\"cfg\">\n", f);
    json_object_object_foreach(cfg, key, val) {
        fputs("<div><b>", f);
        html_escape(f, key);
        fputs("</b> = ", f);
        html_escape(f, val ? json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN) : "null");
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    json_object_put(cfg);
}

static void write_loss_html(FILE *f, const loss_log *l) {
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
    double pad = (hi - lo) * 0.05 + 1e-12;
    series s[3] = {{"pos", "#1f77b4", l->n, l->step, l->pos, false},
                   {"neg", "#d62728", l->n, l->step, l->neg, false},
                   {"total", "#2ca02c", l->n, l->step, l->total, false}};
    double x1 = l->n > 1 ? l->step[l->n - 1] : l->step[0] + 1;
    svg_plot(f, "Training loss per step", "step", "loss", l->step[0], x1, lo - pad, hi + pad, s, 3, LEGEND_TOP_RIGHT);
    fprintf(f, "<p class=\"muted\">%lld steps; final total %.5g (pos %.5g, neg %.5g).</p>\n", (long long)l->n,
            l->total[l->n - 1], l->pos[l->n - 1], l->neg[l->n - 1]);
}

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
    series s = {name, "#1f77b4", roc.n, roc.x, roc.y, false};
    double diag[2] = {0, 1};
    series d = {"chance", "#bbbbbb", 2, diag, diag, false};
    series rs[2] = {s, d};
    snprintf(title, sizeof title, "ROC, %s level (n = %lld)", level, (long long)n);
    svg_plot(f, title, "false positive rate", "true positive rate", 0, 1, 0, 1, rs, 2, LEGEND_BOTTOM_RIGHT);
    snprintf(name, sizeof name, "AP %.1f%%", 100 * ap);
    series p = {name, "#d62728", pr.n, pr.x, pr.y, true};
    snprintf(title, sizeof title, "Precision-recall, %s level", level);
    svg_plot(f, title, "recall", "precision", 0, 1, 0, 1, &p, 1, LEGEND_BOTTOM_LEFT);
    curve_free(&roc);
    curve_free(&pr);
    free(lab);
}

typedef struct {
    int64_t idx;   /* s * V + v */
    double score;
} view_ref;

static int by_view_desc(const void *a, const void *b) {
    double x = ((const view_ref *)a)->score, y = ((const view_ref *)b)->score;
    if (x != y) return x > y ? -1 : 1;
    int64_t i = ((const view_ref *)a)->idx, j = ((const view_ref *)b)->idx;
    return i < j ? -1 : i > j;
}

/* Up to `max` views of the given label, most wrong first (good: highest score;
 * defective: lowest), that have a heatmap PNG. */
static void write_gallery(FILE *f, const mvead_paths *p, const scores_file *s, int want_label, int max) {
    int64_t n = 0;
    view_ref *v = malloc(sizeof(view_ref) * (size_t)(s->S * s->V + 1));
    for (int64_t i = 0; i < s->S * s->V; i++)
        if ((s->view_label[i] != 0) == (want_label != 0))
            v[n++] = (view_ref){i, want_label ? -s->image_scores[i] : s->image_scores[i]};
    qsort(v, (size_t)n, sizeof *v, by_view_desc);
    int shown = 0;
    fputs("<div class=\"gallery\">\n", f);
    for (int64_t k = 0; k < n && shown < max; k++) {
        int64_t i = v[k].idx / s->V;
        int view = (int)(v[k].idx % s->V);
        char path[2048];
        size_t nb;
        if (mvead_paths_heatmap(p, s->category[i], s->sample_id[i], s->anomaly_class[i], view, path, sizeof path)) continue;
        unsigned char *png = read_file(path, &nb);
        if (!png) continue;
        fputs("<figure><img alt=\"heatmap\" src=\"data:image/png;base64,", f);
        base64_write(f, png, nb);
        free(png);
        fputs("\"/><figcaption>", f);
        html_escape(f, s->category[i]);
        fputs(" / ", f);
        html_escape(f, s->sample_id[i]);
        fputs(" / ", f);
        html_escape(f, s->anomaly_class[i]);
        fprintf(f, " / C%d: image score %.4g (sample %.4g)</figcaption></figure>\n", view + 1, s->image_scores[v[k].idx],
                s->sample_scores[i]);
        shown++;
    }
    fputs("</div>\n", f);
    if (!shown) fputs("<p class=\"muted\">No heatmap PNG available for these views (eval --heatmaps writes them).</p>\n", f);
    free(v);
}

static int commit_file(FILE *fp, const char *tmp, const char *path) {
    if (mvd_file_commit(fp, tmp, path)) return -1;
    return 0;
}

int mvead_stage_report(const mvead_config *c) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, false)) return -1;
    json_object *metrics = load_metrics(p.metrics);
    if (!metrics) return -1;
    scores_file sc;
    if (scores_load(p.scores, &sc)) {
        json_object_put(metrics);
        return -1;
    }
    loss_log loss;
    loss_load(p.loss_csv, &loss);
    char tmp[1200];
    const char *cfg_path = p.config, *html = p.report_html, *md = p.report_md;
    snprintf(tmp, sizeof tmp, "%s.tmp", html);
    int rc = -1;
    FILE *f = fopen(tmp, "w");
    if (!f) { mv_error("%s: cannot write: %s", tmp, strerror(errno)); goto done; }
    const char *setting = "";
    json_object *v;
    if (json_object_object_get_ex(metrics, "setting", &v) && v) setting = json_object_get_string(v);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mvead report: ", f);
    html_escape(f, c->name);
    fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>mvead run <code>", CSS);
    html_escape(f, c->name);
    fputs("</code></h1>\n<p class=\"muted\">", f);
    html_escape(f, p.run);
    fprintf(f, " &middot; %s &middot; %lld test samples x %lld views</p>\n", setting, (long long)sc.S, (long long)sc.V);

    fputs("<h2>Results (%, mean over categories as in the paper's tables)</h2>\n", f);
    write_metric_table_html(f, metrics);

    fputs("<h2>ROC and precision-recall curves</h2>\n<div class=\"plots\">\n", f);
    write_curves_html(f, "sample", sc.sample_scores, sc.sample_label, sc.S);
    write_curves_html(f, "image", sc.image_scores, sc.view_label, sc.S * sc.V);
    fputs("</div>\n<p class=\"muted\">Curves pool every test sample (all categories); the table averages per category.</p>\n", f);

    fputs("<h2>Training loss</h2>\n", f);
    write_loss_html(f, &loss);

    fputs("<h2>Worst false positives (highest-scored good views)</h2>\n", f);
    write_gallery(f, &p, &sc, 0, 6);
    fputs("<h2>Worst false negatives (lowest-scored defective views)</h2>\n", f);
    write_gallery(f, &p, &sc, 1, 6);
    fputs("<p class=\"muted\">Each picture: the view | its anomaly map over it (one colour scale per run), the ground-truth outline in white.</p>\n", f);

    fputs("<h2>Configuration</h2>\n", f);
    write_config_html(f, cfg_path);
    fputs("</body></html>\n", f);
    if (commit_file(f, tmp, html)) goto done;

    snprintf(tmp, sizeof tmp, "%s.tmp", md);
    f = fopen(tmp, "w");
    if (!f) { mv_error("%s: cannot write: %s", tmp, strerror(errno)); goto done; }
    fprintf(f, "# mvead run `%s`\n\n%s, %lld test samples x %lld views. Values in %%, mean over categories.\n\n", c->name,
            setting, (long long)sc.S, (long long)sc.V);
    write_metric_table_md(f, metrics);
    if (loss.n)
        fprintf(f, "\nTraining: %lld steps, final loss %.5g (pos %.5g, neg %.5g).\n", (long long)loss.n, loss.total[loss.n - 1],
                loss.pos[loss.n - 1], loss.neg[loss.n - 1]);
    fprintf(f, "\nFiles:\n\n- report: `%s`\n- metrics: `%s`\n- scores: `%s`\n- checkpoint: `%s`\n- bank: `%s`\n"
               "- loss log: `%s`\n- heatmaps: `%s/`\n- configuration: `%s`\n",
            html, p.metrics, p.scores, p.checkpoint, p.bank, p.loss_csv, p.heatmaps, cfg_path);
    if (commit_file(f, tmp, md)) goto done;
    mvead_log("report: %s, %s", html, md);
    rc = 0;
done:
    json_object_put(metrics);
    scores_free(&sc);
    loss_free(&loss);
    return rc;
}

/* ---- compare ------------------------------------------------------------------------ */

static const char *run_label(const char *dir, char *buf, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(buf, n, "%.*s", (int)(len - start), dir + start);
    return buf;
}

int mvead_report_compare(const char *const *run_dirs, int n) {
    if (n < 1) return mv_error("report --compare: give one or more run directories");
    json_object **m = calloc((size_t)n, sizeof *m);
    int rc = -1;
    for (int i = 0; i < n; i++) {
        mvead_paths rp;
        if (mvead_paths_of_dir(run_dirs[i], &rp) || !(m[i] = load_metrics(rp.metrics))) goto done;
    }
    /* rows: metrics (and what distinguishes the runs), columns: runs */
    int w = 14;
    char lab[256];
    for (int i = 0; i < n; i++) {
        int l = (int)strlen(run_label(run_dirs[i], lab, sizeof lab));
        if (l + 2 > w) w = l + 2;
    }
    if (w > 40) w = 40;
    printf("%-14s", "metric (%)");
    for (int i = 0; i < n; i++) printf(" %*.*s", w, w, run_label(run_dirs[i], lab, sizeof lab));
    printf("\n");
    const char *info[] = {"fusion", "objective", "init", "bank_mode", "epochs"};
    for (int k = 0; k < 5; k++) {
        printf("%-14s", info[k]);
        for (int i = 0; i < n; i++) {
            json_object *run = NULL, *v = NULL;
            json_object_object_get_ex(m[i], "run", &run);
            const char *s = run && json_object_object_get_ex(run, info[k], &v) && v ? json_object_get_string(v) : "?";
            printf(" %*.*s", w, w, s);
        }
        printf("\n");
    }
    for (int k = 0; k < MVS_KEY_COUNT; k++) {
        printf("%-14s", column_key(k));
        for (int i = 0; i < n; i++) {
            json_object *mean = NULL;
            json_object_object_get_ex(m[i], "mean_over_categories", &mean);
            char b[16];
            double x = metric_of(mean, column_key(k));
            printf(" %*s", w, isfinite(x) ? pct(x, b) : "-");
        }
        printf("\n");
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        if (m[i]) json_object_put(m[i]);
    free(m);
    return rc;
}
