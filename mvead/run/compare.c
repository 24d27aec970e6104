/* compare: several runs side by side (`mvead report --compare A B ...`): a
 * table on stdout, and compare.html / compare.md in out_dir with the metric
 * tables and the differences to the first run, every setting in which the
 * runs differ, and their loss curves overlaid. */
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/report_html.h"
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

static const char *column_key(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].key; }
static const char *column_title(int c) { return mvs_metric_keys[mvs_metric_key_at_column(c)].title; }

/* Settings that say how a run was computed, not what it computed. */
static bool incidental(const char *key) {
    static const char *const keys[] = {"name", "runs", "threads", "quiet", "resume", NULL};
    for (int i = 0; keys[i]; i++) if (!strcmp(keys[i], key)) return true;
    return false;
}

typedef struct {
    const char *dir;
    char label[256];
    mvead_paths p;
    json_object *metrics, *config;   /* config: NULL when the run has none */
    mvead_loss_log loss;
    bool trained;                    /* an EAM was trained: an objective applies */
} run_info;

static const char *run_label(const char *dir, char *buf, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(buf, n, "%.*s", (int)(len - start), dir + start);
    return buf;
}

/* A setting of a run as shown: "–" for the objective of a run that trained nothing. */
static const char *setting(const run_info *r, const char *key, char *buf, size_t n) {
    json_object *v = NULL;
    if (!strcmp(key, "objective") && !r->trained) return "\xe2\x80\x93";
    if (!r->config || !json_object_object_get_ex(r->config, key, &v)) return "?";
    return mvead_html_config_value(v, buf, n);
}

static json_object *mean_set(const run_info *r, const char *set) {
    json_object *mean = NULL, *v;
    json_object_object_get_ex(r->metrics, "mean_over_categories", &mean);
    if (mean && set && json_object_object_get_ex(mean, set, &v) && v) return v;
    return mean;
}

static void metric_tables(FILE *f, FILE *md, const run_info *r, int n, const char *set) {
    char b[16];
    fputs("<table class=\"compare\"><tr><th class=\"k\">metric (%)</th>", f);
    fputs("| metric (%) |", md);
    for (int i = 0; i < n; i++) {
        fputs("<th>", f);
        mvead_html_escape(f, r[i].label);
        fputs("</th>", f);
        fprintf(md, " %s |", r[i].label);
        if (i) {
            fputs("<th>&Delta;</th>", f);
            fputs(" Δ |", md);
        }
    }
    fputs("</tr>\n", f);
    fputs("\n|---|", md);
    for (int i = 0; i < n; i++) fputs(i ? "---:|---:|" : "---:|", md);
    fputc('\n', md);
    for (int k = 0; k < MVS_KEY_COUNT; k++) {
        fprintf(f, "<tr><td class=\"k\">%s</td>", column_title(k));
        fprintf(md, "| %s |", column_title(k));
        double x0 = mvead_metric_of(mean_set(&r[0], set), column_key(k));
        for (int i = 0; i < n; i++) {
            double x = mvead_metric_of(mean_set(&r[i], set), column_key(k));
            fprintf(f, "<td>%s</td>", mvead_html_pct(x, b));
            fprintf(md, " %s |", b);
            if (i) {
                double d = 100 * (x - x0);
                if (isfinite(d)) {
                    fprintf(f, "<td class=\"%s\">%+.1f</td>", d > 0.05 ? "up" : d < -0.05 ? "down" : "", d);
                    fprintf(md, " %+.1f |", d);
                } else {
                    fputs("<td>\xe2\x80\x93</td>", f);
                    fputs(" \xe2\x80\x93 |", md);
                }
            }
        }
        fputs("</tr>\n", f);
        fputc('\n', md);
    }
    fputs("</table>\n", f);
}

/* Every setting whose value is not the same in all runs. */
static int settings_table(FILE *f, FILE *md, const run_info *r, int n) {
    int rows = 0;
    fputs("<table id=\"settings-diff\"><tr><th class=\"k\">setting</th>", f);
    fputs("\n| setting |", md);
    for (int i = 0; i < n; i++) {
        fputs("<th>", f);
        mvead_html_escape(f, r[i].label);
        fputs("</th>", f);
        fprintf(md, " %s |", r[i].label);
    }
    fputs("</tr>\n", f);
    fputs("\n|---|", md);
    for (int i = 0; i < n; i++) fputs("---|", md);
    fputc('\n', md);
    /* keys in the order of the first run that has them */
    for (int i = 0; i < n; i++) {
        if (!r[i].config) continue;
        json_object_object_foreach(r[i].config, key, val) {
            (void)val;
            if (incidental(key)) continue;
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) seen = r[j].config && json_object_object_get_ex(r[j].config, key, NULL);
            if (seen) continue;
            char a[1100], b[1100];
            bool differ = false;
            const char *first = setting(&r[0], key, a, sizeof a);
            for (int j = 1; j < n && !differ; j++) differ = strcmp(first, setting(&r[j], key, b, sizeof b)) != 0;
            if (!differ) continue;
            fputs("<tr><td class=\"k\">", f);
            mvead_html_escape(f, key);
            fputs("</td>", f);
            fprintf(md, "| %s |", key);
            for (int j = 0; j < n; j++) {
                const char *s = setting(&r[j], key, b, sizeof b);
                fputs("<td class=\"k\">", f);
                mvead_html_escape(f, s);
                fputs("</td>", f);
                fprintf(md, " %s |", s);
            }
            fputs("</tr>\n", f);
            fputc('\n', md);
            rows++;
        }
    }
    fputs("</table>\n", f);
    if (!rows) {
        fputs("<p class=\"muted\">The runs were made with the same settings.</p>\n", f);
        fputs("\nThe runs were made with the same settings.\n", md);
    }
    return rows;
}

static void loss_overlay(FILE *f, const run_info *r, int n) {
    static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
    mvead_svg_series *s = calloc((size_t)n, sizeof *s);
    if (!s) return;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int ns = 0;
    for (int i = 0; i < n; i++) {
        const mvead_loss_log *l = &r[i].loss;
        if (!l->n) continue;
        s[ns++] = (mvead_svg_series){r[i].label, colors[i % 8], l->n, l->step, l->total, false, false};
        for (int64_t k = 0; k < l->n; k++) {
            if (l->step[k] < x0) x0 = l->step[k];
            if (l->step[k] > x1) x1 = l->step[k];
            if (isfinite(l->total[k]) && l->total[k] < y0) y0 = l->total[k];
            if (isfinite(l->total[k]) && l->total[k] > y1) y1 = l->total[k];
        }
    }
    if (ns) mvead_svg_plot(f, "Training loss (total) per step", "step", "loss", x0, x1, y0, y1, false, s, ns);
    else fputs("<p class=\"muted\">None of the runs trained (no loss.csv steps).</p>\n", f);
    free(s);
}

/* The table of the terminal: settings that tell runs apart, then the metrics. */
static void print_table(const run_info *r, int n) {
    int w = 14;
    for (int i = 0; i < n; i++) {
        int l = (int)strlen(r[i].label);
        if (l + 2 > w) w = l + 2;
    }
    if (w > 40) w = 40;
    printf("%-14s", "metric (%)");
    for (int i = 0; i < n; i++) printf(" %*.*s", w, w, r[i].label);
    printf("\n");
    const char *info[] = {"fusion", "objective", "init", "bank_mode", "epochs"};
    for (int k = 0; k < 5; k++) {
        printf("%-14s", info[k]);
        for (int i = 0; i < n; i++) {
            char b[1100];
            printf(" %*.*s", w, w, setting(&r[i], info[k], b, sizeof b));
        }
        printf("\n");
    }
    for (int k = 0; k < MVS_KEY_COUNT; k++) {
        printf("%-14s", column_key(k));
        for (int i = 0; i < n; i++) {
            char b[16];
            double x = mvead_metric_of(mean_set(&r[i], "exact"), column_key(k));
            printf(" %*s", w, isfinite(x) ? mvead_html_pct(x, b) : "-");
        }
        printf("\n");
    }
}

int mvead_report_compare(const char *const *run_dirs, int n, const char *out_dir) {
    if (n < 1) return mv_error("report --compare: give one or more run folders");
    run_info *r = calloc((size_t)n, sizeof *r);
    if (!r) return mv_error("report --compare: out of memory");
    int rc = -1;
    for (int i = 0; i < n; i++) {
        r[i].dir = run_dirs[i];
        run_label(run_dirs[i], r[i].label, sizeof r[i].label);
        if (mvead_paths_of_dir(run_dirs[i], &r[i].p) || !(r[i].metrics = mvead_metrics_load(r[i].p.metrics))) goto done;
        r[i].config = json_object_from_file(r[i].p.config);
        if (r[i].config && !json_object_is_type(r[i].config, json_type_object)) {
            json_object_put(r[i].config);
            r[i].config = NULL;
        }
        if (mvead_loss_load(r[i].p.loss_csv, &r[i].loss)) goto done;
        json_object *v = NULL;
        const char *fusion = r[i].config && json_object_object_get_ex(r[i].config, "fusion", &v) && v ? json_object_get_string(v) : "";
        const char *obj = r[i].config && json_object_object_get_ex(r[i].config, "objective", &v) && v ? json_object_get_string(v) : "";
        r[i].trained = r[i].loss.n > 0 && strcmp(fusion, "none") && strcmp(obj, "none");
    }
    print_table(r, n);
    mvead_paths out;
    if (mvead_mkdirs(out_dir) || mvead_paths_of_dir(out_dir, &out)) goto done;
    mvead_pages pg;
    if (mvead_pages_open(&pg, out.compare_html, out.compare_md)) goto done;
    FILE *f = pg.html, *md = pg.md;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mvead: %d runs compared</title>\n"
               "<style>%s</style></head><body>\n<h1>%d runs compared</h1>\n<ul>\n", n, mvead_html_css, n);
    fprintf(md, "# %d runs compared\n\n", n);
    for (int i = 0; i < n; i++) {
        fputs("<li><a href=\"", f);
        mvead_html_escape(f, r[i].p.report_html);
        fputs("\">", f);
        mvead_html_escape(f, r[i].label);
        fputs("</a> <span class=\"muted\">", f);
        mvead_html_escape(f, r[i].dir);
        fputs("</span></li>\n", f);
        fprintf(md, "- [%s](%s)\n", r[i].label, r[i].p.report_html);
    }
    fputs("</ul>\n<h2 id=\"metrics\">Metrics (%, mean over categories; &Delta;: points against the first run)</h2>\n", f);
    fputs("\n## Metrics (%, mean over categories; Δ: points against the first run)\n", md);
    bool adeval = true;
    for (int i = 0; i < n; i++) {
        json_object *mean = NULL;
        json_object_object_get_ex(r[i].metrics, "mean_over_categories", &mean);
        adeval &= mean && json_object_object_get_ex(mean, "adeval", NULL);
    }
    fputs("<h3>exact rules</h3>\n", f);
    fputs("\n### exact rules\n\n", md);
    metric_tables(f, md, r, n, "exact");
    if (adeval) {
        fputs("<h3>Real-IAD's official evaluator (ADEval)</h3>\n", f);
        fputs("\n### Real-IAD's official evaluator (ADEval)\n\n", md);
        metric_tables(f, md, r, n, "adeval");
    }
    fputs("<h2 id=\"settings\">Settings in which the runs differ</h2>\n", f);
    fputs("\n## Settings in which the runs differ\n", md);
    settings_table(f, md, r, n);
    fputs("<h2 id=\"loss\">Training loss</h2>\n", f);
    loss_overlay(f, r, n);
    fputs("</body></html>\n", f);
    if (mvead_pages_commit(&pg)) goto done;
    mvead_log("report --compare: %s, %s", out.compare_html, out.compare_md);
    rc = 0;
done:
    for (int i = 0; i < n; i++) {
        if (r[i].metrics) json_object_put(r[i].metrics);
        if (r[i].config) json_object_put(r[i].config);
        mvead_loss_free(&r[i].loss);
    }
    free(r);
    return rc;
}
