#include "mvead/run/report_html.h"
#include "data/fileio.h"
#include "mvead/run/scoremaps.h"
#include "tensor/error.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const mvead_html_css =
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}"
    "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}"
    "h3{font-size:14px;margin:14px 0 6px}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:8px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}"
    "th{background:#f4f4f4}td.k,th.k{text-align:left}tr.mean td{font-weight:bold;background:#fafafa}"
    "td.up{color:#1a7f37}td.down{color:#cf222e}"
    ".cfg{columns:3;column-gap:24px;font-size:12px;font-family:monospace}.cfg div{break-inside:avoid;overflow-wrap:anywhere}"
    ".muted{color:#777;font-size:12px}.plots{display:flex;flex-wrap:wrap;gap:12px}"
    ".verdict{font-size:15px}.tables{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}"
    "svg.plot{background:#fff;border:1px solid #eee;max-width:100%;height:auto}svg .frame{fill:none;stroke:#888}svg .grid{stroke:#eee}"
    "svg text{font-size:10px;fill:#333}svg .t{font-size:12px;text-anchor:middle;font-weight:bold}"
    "svg .xt{text-anchor:middle}svg .yt{text-anchor:end}svg .xl,svg .yl{text-anchor:middle;font-size:11px}"
    ".gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;border:1px solid #ddd;padding:4px;font-size:11px;max-width:460px}"
    ".gallery img{display:block;max-width:448px;width:100%;height:auto;image-rendering:pixelated}"
    ".sample{border:1px solid #ddd;padding:6px;margin-bottom:10px}.views{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:6px}"
    ".views figure{margin:0;font-size:11px;text-align:center}.views img{width:100%;height:auto;image-rendering:pixelated}"
    ".wide img{max-width:100%;height:auto}code{overflow-wrap:anywhere}";

void mvead_html_escape(FILE *f, const char *s) {
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

void mvead_html_base64(FILE *f, const unsigned char *b, size_t n) {
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
        if (!buf) { fclose(fp); return NULL; }
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

bool mvead_html_png(FILE *f, const char *path, const char *alt, const char *cls) {
    size_t nb;
    unsigned char *png = read_file(path, &nb);
    if (!png) return false;
    fputs("<img alt=\"", f);
    mvead_html_escape(f, alt);
    fprintf(f, "\"%s%s%s src=\"data:image/png;base64,", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    mvead_html_base64(f, png, nb);
    fputs("\"/>", f);
    free(png);
    return true;
}

const char *mvead_html_pct(double v, char *buf) {
    if (isfinite(v)) snprintf(buf, 16, "%.1f", 100.0 * v);
    else snprintf(buf, 16, "\xe2\x80\x93");
    return buf;
}

const char *mvead_html_config_value(json_object *v, char *buf, size_t n) {
    if (!v) snprintf(buf, n, "null");
    else if (json_object_is_type(v, json_type_double)) {
        /* the shortest decimal that reads back as the same double */
        double x = json_object_get_double(v);
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, n, "%.*g", prec, x);
            if (strtod(buf, NULL) == x) break;
        }
    } else if (json_object_is_type(v, json_type_string)) snprintf(buf, n, "%s", json_object_get_string(v));
    else snprintf(buf, n, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    return buf;
}

int mvead_html_commit(FILE *fp, const char *tmp, const char *path) { return mvd_file_commit(fp, tmp, path); }

int mvead_pages_open(mvead_pages *pg, const char *html_path, const char *md_path) {
    memset(pg, 0, sizeof *pg);
    pg->html_path = html_path;
    pg->md_path = md_path;
    snprintf(pg->html_tmp, sizeof pg->html_tmp, "%s.tmp", html_path);
    snprintf(pg->md_tmp, sizeof pg->md_tmp, "%s.tmp", md_path);
    pg->html = fopen(pg->html_tmp, "w");
    pg->md = pg->html ? fopen(pg->md_tmp, "w") : NULL;
    if (pg->html && pg->md) return 0;
    int e = errno;
    if (pg->html) fclose(pg->html), unlink(pg->html_tmp);
    return mv_error("%s: cannot write: %s", pg->html ? pg->md_tmp : pg->html_tmp, strerror(e));
}

int mvead_pages_commit(mvead_pages *pg) {
    if (mvead_html_commit(pg->html, pg->html_tmp, pg->html_path)) {
        fclose(pg->md);
        unlink(pg->md_tmp);
        return -1;
    }
    return mvead_html_commit(pg->md, pg->md_tmp, pg->md_path);
}

json_object *mvead_metrics_load(const char *path) {
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

double mvead_metric_of(json_object *row, const char *key) {
    json_object *v;
    if (!row || !json_object_object_get_ex(row, key, &v) || !v) return NAN;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) return NAN;
    return json_object_get_double(v);
}

void mvead_loss_free(mvead_loss_log *l) {
    free(l->step);
    free(l->pos);
    free(l->neg);
    free(l->total);
    memset(l, 0, sizeof *l);
}

int mvead_loss_load(const char *path, mvead_loss_log *l) {
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
            double *p[4] = {realloc(l->step, sizeof(double) * (size_t)cap), NULL, NULL, NULL};
            if (p[0]) l->step = p[0];
            p[1] = realloc(l->pos, sizeof(double) * (size_t)cap);
            if (p[1]) l->pos = p[1];
            p[2] = realloc(l->neg, sizeof(double) * (size_t)cap);
            if (p[2]) l->neg = p[2];
            p[3] = realloc(l->total, sizeof(double) * (size_t)cap);
            if (p[3]) l->total = p[3];
            if (!p[0] || !p[1] || !p[2] || !p[3]) {
                fclose(fp);
                mvead_loss_free(l);
                return mv_error("%s: out of memory", path);
            }
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

/* ---- SVG --------------------------------------------------------------------------- */

double mvead_nice_step(double lo, double hi, int want, double *first, double *last) {
    if (!(hi > lo)) hi = lo + 1;
    double raw = (hi - lo) / (want > 1 ? want : 1), mag = pow(10, floor(log10(raw))), r = raw / mag;
    double step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
    *first = floor(lo / step + 1e-9) * step;
    *last = ceil(hi / step - 1e-9) * step;
    return step;
}

/* A tick label with the decimals the step needs (0.25 -> 2, 50 -> 0). */
static void tick_label(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    if (step >= 1e5 || step < 1e-4) {
        snprintf(buf, n, "%.2g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, n, "%.*f", dec, v);
}

#define PLOT_W 380
#define PLOT_H 270
#define PLOT_L 52
#define PLOT_R 14
#define PLOT_T 26
#define PLOT_B 38
#define LEGEND_ROW 15

void mvead_svg_plot(FILE *f, const char *title, const char *xlabel, const char *ylabel, double x0, double x1, double y0,
                    double y1, bool fixed, const mvead_svg_series *s, int ns) {
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    double xs, ys, xf, xl, yf, yl;
    xs = mvead_nice_step(x0, x1, 5, &xf, &xl);
    ys = mvead_nice_step(y0, y1, 5, &yf, &yl);
    if (!fixed) x0 = xf, x1 = xl, y0 = yf, y1 = yl;
    int per_row = 3, rows = (ns + per_row - 1) / per_row, H = PLOT_H + rows * LEGEND_ROW;
    double pw = PLOT_W - PLOT_L - PLOT_R, ph = PLOT_H - PLOT_T - PLOT_B;
#define SX(x) (PLOT_L + ((x) - x0) / (x1 - x0) * pw)
#define SY(y) (PLOT_T + ph - ((y) - y0) / (y1 - y0) * ph)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" class=\"plot\">\n",
            PLOT_W, H, PLOT_W, H);
    fprintf(f, "<text x=\"%d\" y=\"16\" class=\"t\">", PLOT_W / 2);
    mvead_html_escape(f, title);
    fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%g\" class=\"frame\"/>\n", PLOT_L, PLOT_T, pw, ph);
    char b[32];
    for (double xv = ceil(x0 / xs - 1e-9) * xs; xv <= x1 + xs * 1e-9; xv += xs) {
        tick_label(b, sizeof b, xv, xs);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", SX(xv), PLOT_T, SX(xv), PLOT_T + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xt\">%s</text>\n", SX(xv), PLOT_T + ph + 13, b);
    }
    for (double yv = ceil(y0 / ys - 1e-9) * ys; yv <= y1 + ys * 1e-9; yv += ys) {
        tick_label(b, sizeof b, yv, ys);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", PLOT_L, SY(yv), PLOT_L + pw, SY(yv));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"yt\">%s</text>\n", PLOT_L - 4, SY(yv) + 4, b);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">", PLOT_L + pw / 2, PLOT_T + ph + 28);
    mvead_html_escape(f, xlabel);
    fprintf(f, "</text><text x=\"12\" y=\"%.1f\" class=\"yl\" transform=\"rotate(-90 12 %.1f)\">", PLOT_T + ph / 2, PLOT_T + ph / 2);
    mvead_html_escape(f, ylabel);
    fputs("</text>\n", f);
    for (int i = 0; i < ns; i++) {
        if (s[i].n < 1) continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", s[i].color,
                s[i].dashed ? " stroke-dasharray=\"4 3\"" : "");
        /* points closer than ~0.5 px to the last drawn one are dropped so huge curves stay small */
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
    }
    /* the legend: rows under the axis label, outside the data */
    for (int i = 0; i < ns; i++) {
        double lx0 = 8 + (i % per_row) * ((PLOT_W - 16.0) / per_row), ly0 = PLOT_H + (i / per_row) * LEGEND_ROW + 2;
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\" class=\"lg\">",
                lx0, ly0 - 4, s[i].color, lx0 + 16, ly0);
        mvead_html_escape(f, s[i].name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef SX
#undef SY
}

void mvead_svg_colorbar(FILE *f, double lo, double hi, double threshold, const char *label) {
    const int W = 420, H = 34, L = 12, R = 12, bar_h = 12, top = 6;
    static int id;
    if (!(hi > lo)) hi = lo + 1;
    double bw = W - L - R;
    id++;
    fprintf(f, "<div class=\"cbar\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
               "<defs><linearGradient id=\"cb%d\">", W, H, W, H, id);
    for (int k = 0; k <= 10; k++) {
        uint8_t rgb[3];
        mvead_heatmap_color(k / 10.0, rgb);
        fprintf(f, "<stop offset=\"%d%%\" stop-color=\"#%02x%02x%02x\"/>", k * 10, rgb[0], rgb[1], rgb[2]);
    }
    fprintf(f, "</linearGradient></defs><rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%d\" fill=\"url(#cb%d)\" stroke=\"#888\"/>",
            L, top, bw, bar_h, id);
    double first, last, step = mvead_nice_step(lo, hi, 4, &first, &last);
    char b[32];
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
        double x = L + (v - lo) / (hi - lo) * bw;
        tick_label(b, sizeof b, v, step);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/><text x=\"%.1f\" y=\"%d\" class=\"xt\">%s</text>",
                x, top + bar_h, x, top + bar_h + 3, x, top + bar_h + 13, b);
    }
    if (isfinite(threshold) && threshold >= lo && threshold <= hi) {
        double x = L + (threshold - lo) / (hi - lo) * bw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\" stroke-width=\"2\"/>", x, top - 3, x,
                top + bar_h + 3);
    }
    fputs("</svg><div class=\"muted\">", f);
    mvead_html_escape(f, label);
    if (isfinite(threshold)) fprintf(f, "; the black mark is the threshold, %.4g", threshold);
    fputs("</div></div>\n", f);
}
