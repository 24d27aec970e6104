/* scoremaps: what eval and predict need to score a sample: the run's memory
 * banks, and the heatmap pictures of its anomaly maps. */
#ifndef MVEAD_RUN_SCOREMAPS_H
#define MVEAD_RUN_SCOREMAPS_H

#include <stdbool.h>
#include <stdint.h>

#define MVEAD_BANK_FORMAT 1

/* Memory banks as eval and predict use them: every bank of bank.h5 (1 pooled
 * or V per view), or with shard this MPI rank's block of rows. hash (NULL:
 * unchecked) must equal the bank's backbone hash. */
typedef struct {
    int count;
    float **rows;    /* [count][n[i] * D] */
    int64_t *n;
} mvead_banks;
int mvead_banks_load(const char *path, int D, int V, const char *hash, bool shard, mvead_banks *b);
void mvead_banks_free(mvead_banks *b);   /* idempotent */

/* The heatmaps' colour map (jet-like): t in [0, 1] -> rgb[3]. The report's
 * colour bars use it too. */
void mvead_heatmap_color(double t, uint8_t *rgb);
/* PNG: the image beside the map blended over it (jet, lo..hi), at H x W; the
 * ground-truth outline in white when mask is non-NULL. */
int mvead_heatmap_overlay(const char *out, const char *image_path, const float *map, const uint8_t *mask, int H, int W,
                          double lo, double hi);

#endif
