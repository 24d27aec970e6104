/* attention: where the EAM looks, as a picture. For one query patch of one
 * view of a cached sample: the attention weights (mean over heads) over the
 * patches of every support view as heat, the epipolar band (the keys the
 * run's mask keeps for that query) outlined, the query patch outlined in its
 * own dimmed view. Used by `mvead attention` and the run report. */
#ifndef MVEAD_RUN_ATTENTION_H
#define MVEAD_RUN_ATTENTION_H

#include "data/cache.h"
#include "mvead/run/paths.h"
#include "mvead/run/run_config.h"

/* Writes the PNG `out` for sample (index in cache), view0 (0-based), patch.
 * *kept (may be NULL): support patches with weight > 0. 0, or -1 with
 * mv_error (a run without EAM has nothing to draw). */
int mvead_attention_picture(const mvead_config *c, const mvead_paths *p, mvd_cache *cache, int64_t sample, int view0,
                            int patch, const char *out, double *kept);

#endif
