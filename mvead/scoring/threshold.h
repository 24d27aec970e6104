/* threshold: one operating point for a run. The rule (what predict's OK / NG
 * and the report's colour bars use): the F1-optimal threshold over the test
 * split's image scores, a view being NG when its score >= the threshold. It
 * looks at the test labels, so the F1 it reaches is optimistic; the report
 * says so next to it. */
#ifndef MVEAD_SCORING_THRESHOLD_H
#define MVEAD_SCORING_THRESHOLD_H

#include <stdint.h>

#define MVS_THRESHOLD_RULE "F1-optimal image-level threshold on the test split (optimistic: chosen with the test labels)"

/* The score t maximising F1 of (score >= t) against labels (nonzero =
 * anomalous); ties go to the higher threshold. *f1 (may be NULL) gets the
 * F1 there. NaN (and *f1 NaN) when there is no anomalous or no normal label,
 * or a score is not finite. */
double mvs_f1_threshold(const double *scores, const uint8_t *labels, int64_t n, double *f1);

#endif
