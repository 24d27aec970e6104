/* metrics: AUROC, AP, AUPRO and the grouping / averaging helpers. */
#include "mvead/scoring/metrics.h"
#include "tensor/error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const mvs_metric_key_info mvs_metric_keys[MVS_KEY_COUNT] = {
#define MVS_KEY_ROW(id, key, title, column) {key, title, column},
    MVS_METRIC_KEYS(MVS_KEY_ROW)
#undef MVS_KEY_ROW
};

mvs_metric_key mvs_metric_key_at_column(int c) {
    for (int k = 0; k < MVS_KEY_COUNT; k++)
        if (mvs_metric_keys[k].column == c) return (mvs_metric_key)k;
    return MVS_KEY_COUNT;
}

static void set_status(int *status, int v) { if (status) *status = v; }

static mvs_allocator g_alloc;

void mvs_metrics_set_allocator(const mvs_allocator *a) {
    if (a) g_alloc = *a;
    else memset(&g_alloc, 0, sizeof g_alloc);
}

/* the arrays with one entry per score */
static void *big_alloc(size_t bytes) { return g_alloc.alloc ? g_alloc.alloc(bytes, g_alloc.ctx) : malloc(bytes); }
static void big_free(void *mem) {
    if (!mem) return;
    if (g_alloc.release) g_alloc.release(mem, g_alloc.ctx);
    else free(mem);
}

/* Order-preserving map double -> uint64 (ascending keys = ascending scores).
 * -0.0 is folded into +0.0 first so equal scores get equal keys. */
static uint64_t score_key(double s) {
    s += 0.0;
    uint64_t b;
    memcpy(&b, &s, sizeof b);
    return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
}

/* LSD radix sort of keys (n) ascending, 8 passes of 8 bits (passes where all
 * keys share the byte are skipped), carrying payload (n) when not NULL.
 * Stable, O(n). Returns 0 or -1 (out of memory). */
static int radix_sort(uint64_t *keys, double *payload, int64_t n) {
    if (n < 2) return 0;
    uint64_t *ktmp = big_alloc((size_t)n * sizeof(uint64_t));
    double *ptmp = payload ? big_alloc((size_t)n * sizeof(double)) : NULL;
    if (!ktmp || (payload && !ptmp)) { big_free(ktmp); big_free(ptmp); return -1; }
    uint64_t *src = keys, *dst = ktmp;
    double *psrc = payload, *pdst = ptmp;
    for (int shift = 0; shift < 64; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; i++) count[((src[i] >> shift) & 0xFF) + 1]++;
        int skip = 0;
        for (int b = 1; b <= 256; b++) if (count[b] == n) { skip = 1; break; }
        if (skip) continue;
        for (int b = 1; b <= 256; b++) count[b] += count[b - 1];
        for (int64_t i = 0; i < n; i++) {
            int64_t pos = count[(src[i] >> shift) & 0xFF]++;
            dst[pos] = src[i];
            if (payload) pdst[pos] = psrc[i];
        }
        uint64_t *t = src; src = dst; dst = t;
        double *pt = psrc; psrc = pdst; pdst = pt;
    }
    if (src != keys) {
        memcpy(keys, src, (size_t)n * sizeof(uint64_t));
        if (payload) memcpy(payload, psrc, (size_t)n * sizeof(double));
    }
    big_free(ktmp); big_free(ptmp);
    return 0;
}

/* Splits scores by label into sorted key arrays. Returns 0, 1 (degenerate),
 * or -1 with mv_error. */
static int split_sorted(const char *what, const double *scores, const uint8_t *labels, int64_t n,
                        uint64_t **pos_out, int64_t *n_pos, uint64_t **neg_out, int64_t *n_neg) {
    *pos_out = *neg_out = NULL;
    if (n <= 0 || !scores || !labels) return mv_error("%s: no scores (n = %lld)", what, (long long)n);
    int64_t np = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(scores[i])) return mv_error("%s: score %lld is NaN", what, (long long)i);
        np += labels[i] != 0;
    }
    *n_pos = np;
    *n_neg = n - np;
    if (np == 0 || np == n) return 1;
    uint64_t *pos = big_alloc((size_t)np * sizeof(uint64_t));
    uint64_t *neg = big_alloc((size_t)(n - np) * sizeof(uint64_t));
    if (!pos || !neg) { big_free(pos); big_free(neg); return mv_error("%s: out of memory for %lld scores", what, (long long)n); }
    int64_t ip = 0, in = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i]) pos[ip++] = score_key(scores[i]);
        else neg[in++] = score_key(scores[i]);
    }
    if (radix_sort(pos, NULL, np) || radix_sort(neg, NULL, n - np)) {
        big_free(pos); big_free(neg);
        return mv_error("%s: out of memory sorting %lld scores", what, (long long)n);
    }
    *pos_out = pos;
    *neg_out = neg;
    return 0;
}

/* Walks the distinct thresholds from the highest score down, giving the
 * cumulative true/false positive counts after each (the ROC/PR points). */
typedef struct {
    const uint64_t *pos, *neg;
    int64_t ip, in; /* remaining counts: next items are pos[ip - 1], neg[in - 1] */
    int64_t tp, fp;
} threshold_walk;

static int walk_next(threshold_walk *w) {
    if (w->ip == 0 && w->in == 0) return 0;
    uint64_t top = 0;
    if (w->ip > 0) top = w->pos[w->ip - 1];
    if (w->in > 0 && (w->ip == 0 || w->neg[w->in - 1] > top)) top = w->neg[w->in - 1];
    while (w->ip > 0 && w->pos[w->ip - 1] == top) { w->ip--; w->tp++; }
    while (w->in > 0 && w->neg[w->in - 1] == top) { w->in--; w->fp++; }
    return 1;
}

double mvs_metric(mvs_metric_kind kind, const double *scores, const uint8_t *labels, int64_t n, int *status) {
    const char *what = kind == MVS_AUROC ? "AUROC" : "AP";
    uint64_t *pos, *neg;
    int64_t n_pos = 0, n_neg = 0;
    int rc = split_sorted(what, scores, labels, n, &pos, &n_pos, &neg, &n_neg);
    if (rc != 0) {
        set_status(status, rc < 0 ? MVS_METRIC_ERROR : MVS_METRIC_DEGENERATE);
        return NAN;
    }
    threshold_walk w = {pos, neg, n_pos, n_neg, 0, 0};
    double acc = 0.0;
    int64_t tp_prev = 0, fp_prev = 0;
    while (walk_next(&w)) {
        if (kind == MVS_AUROC) {
            /* trapezoid in count units: dFP * (TP_prev + TP) / 2, scaled at the end */
            acc += (double)(w.fp - fp_prev) * (double)(w.tp + tp_prev);
        } else {
            /* step: dRecall * precision at this threshold */
            if (w.tp != tp_prev) acc += (double)(w.tp - tp_prev) * ((double)w.tp / (double)(w.tp + w.fp));
        }
        tp_prev = w.tp;
        fp_prev = w.fp;
    }
    big_free(pos); big_free(neg);
    set_status(status, MVS_METRIC_OK);
    if (kind == MVS_AUROC) return acc / (2.0 * (double)n_pos * (double)n_neg);
    return acc / (double)n_pos;
}

double mvs_auroc(const double *scores, const uint8_t *labels, int64_t n, int *status) {
    return mvs_metric(MVS_AUROC, scores, labels, n, status);
}

double mvs_average_precision(const double *scores, const uint8_t *labels, int64_t n, int *status) {
    return mvs_metric(MVS_AP, scores, labels, n, status);
}

int64_t mvs_label_components(const uint8_t *mask, int64_t H, int64_t W, int32_t *component) {
    int64_t npix = H * W;
    memset(component, 0, (size_t)npix * sizeof(int32_t));
    int64_t *stack = NULL;
    int64_t count = 0;
    for (int64_t p = 0; p < npix; p++) {
        if (!mask[p] || component[p]) continue;
        if (!stack && !(stack = malloc((size_t)npix * sizeof(int64_t))))
            return mv_error("components: out of memory for a %lldx%lld mask", (long long)H, (long long)W);
        count++;
        /* Flood fill; each pixel is pushed once (labelled when pushed). */
        int64_t top = 0;
        stack[top++] = p;
        component[p] = (int32_t)count;
        while (top > 0) {
            int64_t q = stack[--top];
            int64_t r = q / W, c = q % W;
            for (int64_t dr = -1; dr <= 1; dr++) {
                int64_t rr = r + dr;
                if (rr < 0 || rr >= H) continue;
                for (int64_t dc = -1; dc <= 1; dc++) {
                    int64_t cc = c + dc;
                    if (cc < 0 || cc >= W) continue;
                    int64_t nq = rr * W + cc;
                    if (mask[nq] && !component[nq]) {
                        component[nq] = (int32_t)count;
                        stack[top++] = nq;
                    }
                }
            }
        }
    }
    free(stack);
    return count;
}

/* Image m's size: sizes[2m], sizes[2m + 1] (one per image), or H x W for all
 * (sizes NULL); images lie one after another. */
#define IMG_H(m) (sizes ? sizes[2 * (m)] : H)
#define IMG_W(m) (sizes ? sizes[2 * (m) + 1] : W)

static double aupro_images(const double *maps, const uint8_t *masks, int64_t n_images, int64_t H, int64_t W,
                           const int64_t *sizes, double fpr_limit, int *status) {
    set_status(status, MVS_METRIC_ERROR);
    int64_t total = 0, max_pix = 0, bad = n_images <= 0 ? 0 : -1;
    for (int64_t m = 0; m < n_images && bad < 0; m++) {
        if (IMG_H(m) <= 0 || IMG_W(m) <= 0) bad = m;
        total += IMG_H(m) * IMG_W(m);
        if (IMG_H(m) * IMG_W(m) > max_pix) max_pix = IMG_H(m) * IMG_W(m);
    }
    if (bad >= 0) {
        mv_error("AUPRO: bad sizes (%lld images; image %lld is %lldx%lld)", (long long)n_images, (long long)bad,
                 (long long)(n_images > 0 ? IMG_H(bad) : H), (long long)(n_images > 0 ? IMG_W(bad) : W));
        return NAN;
    }
    if (!(fpr_limit > 0.0 && fpr_limit <= 1.0)) {
        mv_error("AUPRO: FPR limit %g out of range: expected 0 < limit <= 1", fpr_limit);
        return NAN;
    }
    int64_t n_defect = 0;
    for (int64_t i = 0; i < total; i++) {
        if (isnan(maps[i])) { mv_error("AUPRO: anomaly map value %lld is NaN", (long long)i); return NAN; }
        n_defect += masks[i] != 0;
    }
    int64_t n_ok = total - n_defect;
    if (n_ok == 0 || n_defect == 0) { set_status(status, MVS_METRIC_DEGENERATE); return NAN; }

    uint64_t *ok_keys = big_alloc((size_t)n_ok * sizeof(uint64_t));
    uint64_t *def_keys = big_alloc((size_t)n_defect * sizeof(uint64_t));
    double *def_weight = big_alloc((size_t)n_defect * sizeof(double));
    int32_t *comp = malloc((size_t)max_pix * sizeof(int32_t));
    int64_t *comp_size = NULL;
    double result = NAN;
    if (!ok_keys || !def_keys || !def_weight || !comp) { mv_error("AUPRO: out of memory for %lld pixels", (long long)total); goto done; }

    /* Pass 1: count regions (the PRO average spans all regions of all images). */
    int64_t n_regions = 0, max_regions = 0;
    for (int64_t m = 0, o = 0; m < n_images; o += IMG_H(m) * IMG_W(m), m++) {
        int64_t c = mvs_label_components(masks + o, IMG_H(m), IMG_W(m), comp);
        if (c < 0) goto done;
        n_regions += c;
        if (c > max_regions) max_regions = c;
    }
    comp_size = malloc((size_t)(max_regions + 1) * sizeof(int64_t));
    if (!comp_size) { mv_error("AUPRO: out of memory"); goto done; }
    /* Pass 2: each defect pixel carries 1 / (n_regions * |its region|), so the
     * cumulative sum of weights above a threshold is the mean region overlap. */
    int64_t iok = 0, idef = 0;
    for (int64_t m = 0, o = 0; m < n_images; o += IMG_H(m) * IMG_W(m), m++) {
        const uint8_t *mask = masks + o;
        const double *map = maps + o;
        int64_t npix = IMG_H(m) * IMG_W(m);
        int64_t c = mvs_label_components(mask, IMG_H(m), IMG_W(m), comp);
        if (c < 0) goto done;
        memset(comp_size, 0, (size_t)(c + 1) * sizeof(int64_t));
        for (int64_t p = 0; p < npix; p++) comp_size[comp[p]]++;
        for (int64_t p = 0; p < npix; p++) {
            if (mask[p]) {
                def_keys[idef] = score_key(map[p]);
                def_weight[idef++] = 1.0 / ((double)n_regions * (double)comp_size[comp[p]]);
            } else {
                ok_keys[iok++] = score_key(map[p]);
            }
        }
    }
    if (radix_sort(ok_keys, NULL, n_ok) || radix_sort(def_keys, def_weight, n_defect)) {
        mv_error("AUPRO: out of memory sorting %lld pixels", (long long)total);
        goto done;
    }
    /* Walk distinct thresholds downwards; curve points (fpr, pro) from (0, 0);
     * trapezoids up to fpr_limit, interpolating the segment that crosses it. */
    {
        int64_t rem_ok = n_ok, rem_def = n_defect, fp = 0;
        double pro = 0.0, x0 = 0.0, y0 = 0.0, area = 0.0;
        while (rem_ok > 0 || rem_def > 0) {
            uint64_t top = 0;
            if (rem_def > 0) top = def_keys[rem_def - 1];
            if (rem_ok > 0 && (rem_def == 0 || ok_keys[rem_ok - 1] > top)) top = ok_keys[rem_ok - 1];
            while (rem_def > 0 && def_keys[rem_def - 1] == top) pro += def_weight[--rem_def];
            while (rem_ok > 0 && ok_keys[rem_ok - 1] == top) { rem_ok--; fp++; }
            double x1 = (double)fp / (double)n_ok;
            double y1 = pro < 1.0 ? pro : 1.0;
            if (x1 > fpr_limit) {
                double y_at = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0);
                area += 0.5 * (y_at + y0) * (fpr_limit - x0);
                break;
            }
            area += 0.5 * (y0 + y1) * (x1 - x0);
            x0 = x1;
            y0 = y1;
        }
        result = area / fpr_limit;
        set_status(status, MVS_METRIC_OK);
    }
done:
    big_free(ok_keys); big_free(def_keys); big_free(def_weight); free(comp); free(comp_size);
    return result;
}
#undef IMG_H
#undef IMG_W

double mvs_aupro(const double *maps, const uint8_t *masks, int64_t n_images, int64_t H, int64_t W,
                 double fpr_limit, int *status) {
    return aupro_images(maps, masks, n_images, H, W, NULL, fpr_limit, status);
}

double mvs_aupro_sizes(const double *maps, const uint8_t *masks, int64_t n_images, const int64_t *sizes,
                       double fpr_limit, int *status) {
    return aupro_images(maps, masks, n_images, 0, 0, sizes, fpr_limit, status);
}

int mvs_group_max(const double *scores, const uint8_t *labels, const int64_t *group, int64_t n,
                  int64_t n_groups, double *group_scores, uint8_t *group_labels) {
    if (n < 0 || n_groups <= 0) return mv_error("group max: bad sizes (n %lld, groups %lld)", (long long)n, (long long)n_groups);
    for (int64_t g = 0; g < n_groups; g++) { group_scores[g] = -INFINITY; group_labels[g] = 0; }
    int64_t *members = calloc((size_t)n_groups, sizeof(int64_t));
    if (!members) return mv_error("group max: out of memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t g = group[i];
        if (g < 0 || g >= n_groups) {
            free(members);
            return mv_error("group max: item %lld has group %lld outside [0, %lld)", (long long)i, (long long)g, (long long)n_groups);
        }
        if (scores[i] > group_scores[g]) group_scores[g] = scores[i];
        if (labels[i]) group_labels[g] = 1;
        members[g]++;
    }
    for (int64_t g = 0; g < n_groups; g++)
        if (!members[g]) {
            free(members);
            return mv_error("group max: group %lld has no members", (long long)g);
        }
    free(members);
    return 0;
}

double mvs_mean_over_categories(const double *values, int64_t n, int64_t *n_used) {
    double sum = 0.0;
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(values[i])) { sum += values[i]; used++; }
    if (n_used) *n_used = used;
    return used ? sum / (double)used : NAN;
}

int64_t mvs_metric_per_category(mvs_metric_kind kind, const double *scores, const uint8_t *labels,
                                const int64_t *category, int64_t n, int64_t n_categories,
                                double *per_category, double *mean) {
    if (n <= 0 || n_categories <= 0)
        return mv_error("per-category metric: bad sizes (n %lld, categories %lld)", (long long)n, (long long)n_categories);
    for (int64_t i = 0; i < n; i++)
        if (category[i] < 0 || category[i] >= n_categories)
            return mv_error("per-category metric: item %lld has category %lld outside [0, %lld)", (long long)i,
                            (long long)category[i], (long long)n_categories);
    double *s = malloc((size_t)n * sizeof(double));
    uint8_t *l = malloc((size_t)n);
    if (!s || !l) { free(s); free(l); return mv_error("per-category metric: out of memory"); }
    for (int64_t c = 0; c < n_categories; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (category[i] == c) { s[m] = scores[i]; l[m++] = labels[i]; }
        int st;
        per_category[c] = m ? mvs_metric(kind, s, l, m, &st) : NAN;
        if (m && st == MVS_METRIC_ERROR) { free(s); free(l); return mv_error_prefix("category %lld", (long long)c); }
    }
    free(s); free(l);
    int64_t used;
    double mu = mvs_mean_over_categories(per_category, n_categories, &used);
    if (mean) *mean = mu;
    return used;
}
