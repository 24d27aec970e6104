/* adeval: Real-IAD's official evaluator's histogram metrics and OpenCV's
 * linear resize; the rules are in adeval.h. */
#include "mvead/scoring/adeval.h"
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void set_status(int *status, int v) { if (status) *status = v; }

void mvs_adeval_free(mvs_adeval_hist *h) {
    free(h->edges);
    free(h->pos);
    memset(h, 0, sizeof *h);
}

int mvs_adeval_init(mvs_adeval_hist *h, double min, double max, int nstrips) {
    memset(h, 0, sizeof *h);
    if (nstrips < 1) return mv_error("ADEval histogram: %d strips, expected at least 1", nstrips);
    if (!isfinite(min) || !isfinite(max) || min > max)
        return mv_error("ADEval histogram: score range [%g, %g], expected finite min <= max", min, max);
    int nb = nstrips + 2;
    h->edges = malloc(sizeof(float) * (size_t)(nstrips + 1));
    h->pos = calloc((size_t)nb * 4, sizeof(double));   /* pos, neg, wpos, wneg in one block */
    if (!h->edges || !h->pos) { mvs_adeval_free(h); return mv_error("ADEval histogram: out of memory"); }
    h->neg = h->pos + nb;
    h->wpos = h->neg + nb;
    h->wneg = h->wpos + nb;
    h->nstrips = nstrips;
    h->min = min;
    h->max = max;
    h->degenerate = !(max > min);   /* ADEval refuses an empty range */
    /* numpy.linspace(0, 1, n + 1, dtype=float32) (k * step in float64, the
     * last one exactly 1, then rounded to float32), scaled and shifted in
     * float32 as `bins * (max - min) + min` does. volatile: no fused
     * multiply-add, whatever -march says, so each operation rounds. */
    const double step = 1.0 / nstrips;
    const float range = (float)(max - min), lo = (float)min;
    for (int k = 0; k <= nstrips; k++) {
        float t = k == nstrips ? 1.0f : (float)((double)k * step);
        volatile float scaled = t * range;
        h->edges[k] = scaled + lo;
    }
    return 0;
}

/* the same first-pass loop over double or float scores */
#define RANGE_LOOP(scores, n, lo, hi, what)                                                           \
    for (int64_t i = 0; i < (n); i++) {                                                               \
        double s = (scores)[i];                                                                       \
        if (isnan(s)) return mv_error("%s: score %lld is NaN", (what) ? (what) : "ADEval metrics", (long long)i); \
        if (s < *(lo)) *(lo) = s;                                                                     \
        if (s > *(hi)) *(hi) = s;                                                                     \
    }                                                                                                 \
    return 0

int mvs_adeval_range(const double *scores, int64_t n, double *lo, double *hi, const char *what) {
    RANGE_LOOP(scores, n, lo, hi, what);
}

int mvs_adeval_range_f32(const float *scores, int64_t n, double *lo, double *hi, const char *what) {
    RANGE_LOOP(scores, n, lo, hi, what);
}

/* Bin of x: the number of edges <= x, in [0, nstrips + 1] (bin 0 is the
 * -inf overflow, nstrips + 1 the +inf one). The linear guess is corrected
 * against the float32 edges, so the answer is exact whatever the guess. */
static inline int bin_of(const mvs_adeval_hist *h, double x) {
    const int ns = h->nstrips;
    const float *e = h->edges;
    double g = h->max > h->min ? (x - h->min) / (h->max - h->min) * ns + 1.0 : 0.0;
    int b = g <= 0.0 ? 0 : g >= ns + 1.0 ? ns + 1 : (int)g;
    while (b > 0 && (double)e[b - 1] > x) b--;
    while (b <= ns && (double)e[b] <= x) b++;
    return b;
}

int mvs_adeval_add(mvs_adeval_hist *h, const double *scores, const uint8_t *labels, int64_t n) {
    if (!h->edges) return mv_error("ADEval histogram: not initialised");
    for (int64_t i = 0; i < n; i++) {
        if (isnan(scores[i])) return mv_error("ADEval metrics: score %lld is NaN", (long long)i);
        int b = bin_of(h, scores[i]);
        if (labels[i]) { h->pos[b] += 1.0; h->wpos[b] += 1.0; }
        else { h->neg[b] += 1.0; h->wneg[b] += 1.0; }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int mvs_adeval_add_map(mvs_adeval_hist *h, const float *map, const uint8_t *mask, int64_t H, int64_t W) {
    if (!h->edges) return mv_error("ADEval histogram: not initialised");
    if (H <= 0 || W <= 0) return mv_error("ADEval AUPRO: bad map size %lldx%lld", (long long)H, (long long)W);
    int64_t npix = H * W, n_def = 0;
    for (int64_t p = 0; p < npix; p++) n_def += mask[p] != 0;
    int rc = -1;
    int32_t *comp = NULL;
    int64_t *area = NULL, *group = NULL;
    float *wt = NULL, *uniq = NULL;
    uint64_t *keys = NULL;
    if (n_def) {
        comp = malloc(sizeof(int32_t) * (size_t)npix);
        if (!comp) { mv_error("ADEval AUPRO: out of memory for a %lldx%lld mask", (long long)H, (long long)W); goto done; }
        int64_t nc = mvs_label_components(mask, H, W, comp);
        if (nc < 0) goto done;
        area = calloc((size_t)nc + 1, sizeof(int64_t));
        group = malloc(sizeof(int64_t) * ((size_t)nc + 1));
        wt = malloc(sizeof(float) * ((size_t)nc + 1));
        uniq = malloc(sizeof(float) * ((size_t)nc + 1));
        keys = malloc(sizeof(uint64_t) * (size_t)n_def);
        if (!area || !group || !wt || !uniq || !keys) { mv_error("ADEval AUPRO: out of memory"); goto done; }
        for (int64_t p = 0; p < npix; p++) area[comp[p]]++;
        /* a region's weight is 1 / area rounded to float32 (ADEval keeps the
         * weight map in float32); regions of equal weight form one group */
        for (int64_t c = 1; c <= nc; c++) uniq[c - 1] = wt[c] = (float)(1.0 / (double)area[c]);
        qsort(uniq, (size_t)nc, sizeof(float), cmp_float);
        int64_t ng = 0;
        for (int64_t c = 0; c < nc; c++)
            if (c == 0 || uniq[c] != uniq[ng - 1]) uniq[ng++] = uniq[c];
        for (int64_t c = 1; c <= nc; c++) {
            int64_t lo = 0, hi = ng - 1;   /* wt[c] is in uniq: binary search */
            while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (uniq[mid] < wt[c]) lo = mid + 1;
                else hi = mid;
            }
            group[c] = lo;
        }
    }
    int64_t k = 0;
    for (int64_t p = 0; p < npix; p++) {
        if (isnan(map[p])) { mv_error("ADEval metrics: anomaly map value %lld is NaN", (long long)p); goto done; }
        int b = bin_of(h, map[p]);
        if (mask[p]) {
            h->pos[b] += 1.0;
            keys[k++] = ((uint64_t)group[comp[p]] << 32) | (uint64_t)b;
        } else {
            h->neg[b] += 1.0;
            h->wneg[b] += 1.0;   /* normal pixels weigh 1: exact integer sums */
        }
    }
    /* ADEval adds count * weight per (weight, bin), weights ascending; sorted
     * (group, bin) keys give the counts in that order */
    if (n_def) {
        qsort(keys, (size_t)n_def, sizeof(uint64_t), cmp_u64);
        for (int64_t i = 0; i < n_def;) {
            int64_t j = i;
            while (j < n_def && keys[j] == keys[i]) j++;
            h->wpos[keys[i] & 0xFFFFFFFFu] += (double)(j - i) * (double)uniq[keys[i] >> 32];
            i = j;
        }
    }
    rc = 0;
done:
    free(comp); free(area); free(group); free(wt); free(uniq); free(keys);
    return rc;
}

/* numpy's pairwise summation (add.reduce on a contiguous float64 array,
 * blocks of 128 with 8 accumulators), so the trapezoid sums round as
 * numpy.trapz's do. */
static double pairwise_sum(const double *a, int64_t n) {
    if (n < 8) {
        double r = 0.0;
        for (int64_t i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* numpy.trapz(y[::-1], x[::-1]) over the points lo..hi (inclusive) of the
 * curve (indexed by edge, so reversed = from the highest edge down). tmp
 * holds at least hi - lo entries. */
static double trapz_rev(const double *y, const double *x, int lo, int hi, double *tmp) {
    int m = 0;
    for (int k = hi; k > lo; k--) tmp[m++] = (x[k - 1] - x[k]) * (y[k - 1] + y[k]) / 2.0;
    return 0.0 + pairwise_sum(tmp, m);
}

/* The curve at the nstrips + 1 edges from per-bin counts: positive rate
 * tp / (tp + fn) into rate, and (when prec) tp / (tp + fp) with 1 where
 * nothing is predicted positive. */
typedef struct { double *tpr, *fpr, *prec, *wtpr, *tmp; } curve;

static void rates(const double *pos, const double *neg, int ns, double *tpr, double *fpr, double *prec) {
    double cp = 0.0, cn = 0.0, P = 0.0, N = 0.0;
    for (int j = 0; j < ns + 2; j++) { P += pos[j]; N += neg[j]; }
    for (int k = 0; k <= ns; k++) {
        cp += pos[k];
        cn += neg[k];
        double fn = cp, tn = cn, tp = P - fn, fp = N - tn;
        tpr[k] = tp / (tp + fn);
        if (fpr) fpr[k] = fp / (fp + tn);
        if (prec) prec[k] = tp + fp > 0 ? tp / (tp + fp) : 1.0;
    }
}

static int curve_make(const mvs_adeval_hist *h, bool weighted, curve *c) {
    int n = h->nstrips + 1;
    double *buf = malloc(sizeof(double) * (size_t)n * 5);
    if (!buf) return mv_error("ADEval metrics: out of memory");
    c->tpr = buf; c->fpr = buf + n; c->prec = buf + 2 * n; c->wtpr = buf + 3 * n; c->tmp = buf + 4 * n;
    rates(h->pos, h->neg, h->nstrips, c->tpr, c->fpr, c->prec);
    if (weighted) rates(h->wpos, h->wneg, h->nstrips, c->wtpr, NULL, NULL);
    return 0;
}

/* One class missing (or no range): NaN, degenerate. */
static bool hist_degenerate(const mvs_adeval_hist *h, bool weighted) {
    double P = 0.0, N = 0.0, WP = 0.0;
    for (int j = 0; j < h->nstrips + 2; j++) { P += h->pos[j]; N += h->neg[j]; WP += h->wpos[j]; }
    return h->degenerate || P == 0.0 || N == 0.0 || (weighted && WP == 0.0);
}

static double area_of(const mvs_adeval_hist *h, int which, int *status) {
    set_status(status, MVS_METRIC_ERROR);
    if (!h->edges) { mv_error("ADEval metrics: histogram not initialised"); return NAN; }
    if (hist_degenerate(h, false)) { set_status(status, MVS_METRIC_DEGENERATE); return NAN; }
    curve c;
    if (curve_make(h, false, &c)) return NAN;
    double r = which == 0 ? trapz_rev(c.tpr, c.fpr, 0, h->nstrips, c.tmp) : trapz_rev(c.prec, c.tpr, 0, h->nstrips, c.tmp);
    free(c.tpr);
    set_status(status, MVS_METRIC_OK);
    return r;
}

double mvs_adeval_auroc(const mvs_adeval_hist *h, int *status) { return area_of(h, 0, status); }
double mvs_adeval_aupr(const mvs_adeval_hist *h, int *status) { return area_of(h, 1, status); }

double mvs_adeval_aupro(const mvs_adeval_hist *h, double fpr_limit, int *status) {
    set_status(status, MVS_METRIC_ERROR);
    if (!h->edges) { mv_error("ADEval AUPRO: histogram not initialised"); return NAN; }
    if (!(fpr_limit > 0.0 && fpr_limit <= 1.0)) {
        mv_error("ADEval AUPRO: FPR limit %g out of range: expected 0 < limit <= 1", fpr_limit);
        return NAN;
    }
    if (hist_degenerate(h, true)) { set_status(status, MVS_METRIC_DEGENERATE); return NAN; }
    curve c;
    if (curve_make(h, true, &c)) return NAN;
    const int ns = h->nstrips;
    /* fpr falls with the edge index: the points at or below the limit are
     * the edges k0..ns; the strip between k0 - 1 and k0 straddles it */
    int k0 = ns + 1;
    while (k0 > 0 && c.fpr[k0 - 1] <= fpr_limit) k0--;
    double r = NAN;
    if (k0 == 0 || k0 == ns + 1) {   /* no point on one side of the limit */
        set_status(status, MVS_METRIC_DEGENERATE);
        goto done;
    }
    {
        double lo = trapz_rev(c.wtpr, c.fpr, k0, ns, c.tmp);
        double hi = trapz_rev(c.wtpr, c.fpr, 0, k0 - 1, c.tmp);
        double tot = trapz_rev(c.wtpr, c.fpr, 0, ns, c.tmp);
        /* the straddling trapezoid, as ADEval gets it: the whole area less
         * both sides; a rectangle of height y1 scaled by t and the triangle
         * above it by t^2, t = where the limit falls along the strip */
        double area = tot - (lo + hi), y1 = c.wtpr[k0], y2 = c.wtpr[k0 - 1];
        double t = (fpr_limit - c.fpr[k0]) / (c.fpr[k0 - 1] - c.fpr[k0]);
        double den = y1 + 0.5 * (y2 - y1), part = 0.0;
        if (den > 0.0) {   /* y1 = y2 = 0: an empty trapezoid (ADEval divides 0 by 0 there) */
            double rect_ratio = y1 / den;
            double rect = area * rect_ratio, tri = area * (1 - rect_ratio);
            part = rect * t + tri * t * t;
        }
        r = (lo + part) / fpr_limit;
        set_status(status, MVS_METRIC_OK);
    }
done:
    free(c.tpr);
    return r;
}

int mvs_adeval_scores(const double *scores, const uint8_t *labels, int64_t n, int nstrips, double *auroc, double *aupr,
                      int *status) {
    *auroc = *aupr = NAN;
    set_status(status, MVS_METRIC_ERROR);
    if (n <= 0) return mv_error("ADEval metrics: no scores");
    double lo = INFINITY, hi = -INFINITY;
    if (mvs_adeval_range(scores, n, &lo, &hi, "ADEval metrics")) return -1;
    if (!isfinite(lo) || !isfinite(hi)) return mv_error("ADEval metrics: infinite score (range [%g, %g])", lo, hi);
    mvs_adeval_hist h;
    if (mvs_adeval_init(&h, lo, hi, nstrips)) return -1;
    int st1, st2, rc = -1;
    if (mvs_adeval_add(&h, scores, labels, n)) goto done;
    *auroc = mvs_adeval_auroc(&h, &st1);
    *aupr = mvs_adeval_aupr(&h, &st2);
    if (st1 == MVS_METRIC_ERROR || st2 == MVS_METRIC_ERROR) goto done;
    set_status(status, st1 == MVS_METRIC_OK && st2 == MVS_METRIC_OK ? MVS_METRIC_OK : MVS_METRIC_DEGENERATE);
    rc = 0;
done:
    mvs_adeval_free(&h);
    return rc;
}

/* ---------------- OpenCV INTER_LINEAR resize (float32) ---------------- */

/* Source index and weights of each output coordinate along one axis, as
 * cv::resize computes them: centre (d + 0.5) * scale - 0.5 rounded to float,
 * scale = 1 / (dst / src) (OpenCV inverts the inverse scale). clamp: the
 * horizontal pass clamps at both borders (fx = 0); the vertical pass keeps
 * the raw weights and clamps the row indices instead. */
static void axis_coeffs(int s, int d, bool clamp, int *idx, float *a) {
    double scale = 1.0 / ((double)d / s);
    for (int i = 0; i < d; i++) {
        float f = (float)((i + 0.5) * scale - 0.5);
        int si = (int)floorf(f);
        f -= (float)si;
        if (clamp) {
            if (si < 0) { f = 0.0f; si = 0; }
            if (si >= s - 1) { f = 0.0f; si = s - 1; }
        }
        idx[i] = si;
        a[2 * i] = 1.0f - f;
        a[2 * i + 1] = f;
    }
}

/* a * b + c * d in float with each product rounded (OpenCV's baseline
 * build has no fused multiply-add; volatile keeps the compiler from fusing) */
static inline float mad2(float a, float b, float c, float d) {
    volatile float p = a * b, q = c * d;
    return p + q;
}

int mvs_resize_linear_cv(const float *src, int sh, int sw, float *dst, int dh, int dw) {
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0)
        return mv_error("resize: bad sizes %dx%d -> %dx%d", sh, sw, dh, dw);
    if (sh == dh && sw == dw) {
        memcpy(dst, src, sizeof(float) * (size_t)sh * sw);
        return 0;
    }
    if (sh == 2 * dh && sw == 2 * dw) {
        /* cv::resize turns an exact halving into INTER_AREA: the 2x2 mean.
         * Its sum order: blocks of 4 outputs in SIMD (each row's pair, then
         * the two rows), the outputs past the last block one by one (left
         * to right, top row first); float rounding tells them apart */
        const int simd_end = dw / 4 * 4;
#pragma omp parallel for schedule(static)
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                const float *r0 = src + (size_t)(2 * y) * sw + 2 * x, *r1 = r0 + sw;
                float sum;
                if (x < simd_end) {
                    float top = r0[0] + r0[1], bottom = r1[0] + r1[1];
                    sum = top + bottom;
                } else {
                    sum = r0[0] + r0[1];
                    sum += r1[0];
                    sum += r1[1];
                }
                dst[(size_t)y * dw + x] = sum * 0.25f;
            }
        return 0;
    }
    int *xi = malloc(sizeof(int) * (size_t)dw), *yi = malloc(sizeof(int) * (size_t)dh);
    float *xa = malloc(sizeof(float) * 2 * (size_t)dw), *ya = malloc(sizeof(float) * 2 * (size_t)dh);
    if (!xi || !yi || !xa || !ya) { free(xi); free(yi); free(xa); free(ya); return mv_error("resize: out of memory"); }
    axis_coeffs(sw, dw, true, xi, xa);
    axis_coeffs(sh, dh, false, yi, ya);
    int bad = 0;
    /* each output row from two horizontally resized source rows; rows are
     * independent, so the thread count does not change a value */
#pragma omp parallel
    {
        float *r0 = malloc(sizeof(float) * (size_t)dw), *r1 = malloc(sizeof(float) * (size_t)dw);
        if (!r0 || !r1) {
#pragma omp atomic write
            bad = 1;
        }
#pragma omp for schedule(static)
        for (int y = 0; y < dh; y++) {
            if (!r0 || !r1) continue;
            int s0 = yi[y], s1 = yi[y] + 1;
            s0 = s0 < 0 ? 0 : s0 >= sh ? sh - 1 : s0;
            s1 = s1 < 0 ? 0 : s1 >= sh ? sh - 1 : s1;
            for (int k = 0; k < 2; k++) {
                const float *S = src + (size_t)(k ? s1 : s0) * sw;
                float *D = k ? r1 : r0;
                for (int x = 0; x < dw; x++) {
                    int sx = xi[x];
                    /* at the right border OpenCV copies the last pixel */
                    if (sx + 1 >= sw) { D[x] = S[sx]; continue; }
                    D[x] = mad2(S[sx], xa[2 * x], S[sx + 1], xa[2 * x + 1]);
                }
            }
            float b0 = ya[2 * y], b1 = ya[2 * y + 1];
            float *out = dst + (size_t)y * dw;
            for (int x = 0; x < dw; x++) out[x] = mad2(r0[x], b0, r1[x], b1);
        }
        free(r0);
        free(r1);
    }
    free(xi); free(yi); free(xa); free(ya);
    if (bad) return mv_error("resize: out of memory");
    return 0;
}
