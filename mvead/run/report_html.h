/* report_html: what the run report, the comparison pages and the ablation
 * table share: HTML escaping and inline images, the metrics file, the loss
 * log, SVG charts (round ticks, legend outside the data) and colour bars.
 * Internal to mvead/run and mvead/cli (not installed). */
#ifndef MVEAD_RUN_REPORT_HTML_H
#define MVEAD_RUN_REPORT_HTML_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern const char *const mvead_html_css;

void mvead_html_escape(FILE *f, const char *s);
/* Standard base64 (RFC 4648, with padding), streamed to f. */
void mvead_html_base64(FILE *f, const unsigned char *b, size_t n);
/* <img> with a PNG file inlined as a data URI; false when unreadable. */
bool mvead_html_png(FILE *f, const char *path, const char *alt, const char *cls);
/* "96.2" (a fraction as %, one decimal, as the paper) or an en dash; buf >= 16. */
const char *mvead_html_pct(double v, char *buf);
/* A value of a config.json for people: numbers shortest-exact (%.15g),
 * strings as they are; buf >= 64. */
const char *mvead_html_config_value(json_object *v, char *buf, size_t n);
/* Closes fp and renames tmp onto path; -1 (mv_error, tmp removed) on failure. */
int mvead_html_commit(FILE *fp, const char *tmp, const char *path);

/* An HTML page and its Markdown twin, written to temporary names and
 * published together by mvead_pages_commit (either failure removes both
 * temporaries; nothing half-written is published). */
typedef struct {
    FILE *html, *md;
    const char *html_path, *md_path;
    char html_tmp[1200], md_tmp[1200];
} mvead_pages;
int mvead_pages_open(mvead_pages *pg, const char *html_path, const char *md_path);
int mvead_pages_commit(mvead_pages *pg);

/* metrics.json, checked to be one (mv_error naming it otherwise). */
json_object *mvead_metrics_load(const char *path);
/* A metric of a metrics.json row; NaN when absent or null (degenerate). */
double mvead_metric_of(json_object *row, const char *key);

/* loss.csv (step,epoch,pos,neg,total[,grad_norm]); a missing file is an empty log. */
typedef struct {
    int64_t n;
    double *step, *pos, *neg, *total;
} mvead_loss_log;
int mvead_loss_load(const char *path, mvead_loss_log *l);
void mvead_loss_free(mvead_loss_log *l);

/* ---- SVG charts ---- */
typedef struct {
    const char *name, *color;
    int64_t n;
    const double *x, *y;
    bool step;      /* PR curves: horizontal then vertical segments */
    bool dashed;
} mvead_svg_series;
/* A line chart as inline <svg>. The axes span [x0, x1] x [y0, y1] widened
 * to round ticks (1, 2 or 5 times a power of ten) unless fixed; the legend
 * is a row under the axes, never over the data. */
void mvead_svg_plot(FILE *f, const char *title, const char *xlabel, const char *ylabel, double x0, double x1, double y0,
                    double y1, bool fixed, const mvead_svg_series *s, int ns);
/* A horizontal colour bar of the heatmaps' colour map from lo to hi, in
 * score units, with round ticks and the threshold marked (NaN: none). */
void mvead_svg_colorbar(FILE *f, double lo, double hi, double threshold, const char *label);
/* Round tick positions for [lo, hi]: the step and the first and last tick. */
double mvead_nice_step(double lo, double hi, int want, double *first, double *last);

#endif
