#include "mvead/scoring/threshold.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
    double s;
    uint8_t l;
} scored;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return x > y ? -1 : x < y ? 1 : 0;
}

double mvs_f1_threshold(const double *scores, const uint8_t *labels, int64_t n, double *f1) {
    if (f1) *f1 = NAN;
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(scores[i])) return NAN;
        P += labels[i] != 0;
    }
    if (P == 0 || P == n) return NAN;
    scored *v = malloc(sizeof(scored) * (size_t)n);
    if (!v) return NAN;
    for (int64_t i = 0; i < n; i++) v[i] = (scored){scores[i], labels[i] != 0};
    qsort(v, (size_t)n, sizeof *v, by_score_desc);
    /* step the threshold down through the distinct scores: at v[i].s every
     * view scored >= it is NG */
    double best = -1, best_t = NAN;
    int64_t tp = 0, fp = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        for (; j < n && v[j].s == v[i].s; j++) v[j].l ? tp++ : fp++;
        double f = 2.0 * tp / (double)(2 * tp + fp + (P - tp));
        if (f > best) best = f, best_t = v[i].s;
        i = j;
    }
    free(v);
    if (f1) *f1 = best;
    return best_t;
}
