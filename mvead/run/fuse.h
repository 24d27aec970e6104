/* fuse: the fusion a run uses and the fused features it gives. The mode and
 * its mask come from the run's options and calibration; train, bank, eval,
 * predict, grads and attention all set it up here. */
#ifndef MVEAD_RUN_FUSE_H
#define MVEAD_RUN_FUSE_H

#include "data/cache.h"
#include "mvead/method/eam.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/paths.h"
#include "mvead/run/scratch.h"

/* Support mask [V][N][(V-1)N] for the cache's grid, from the calibration. */
uint8_t *mvead_support_mask(const mvead_config *c, const char *calib_path, int V, int H, int W, int P);

/* Fusion options and the static attention mask (EAM: from the calibration;
 * full: all-ones; none/mvas: NULL) for the cache's grid. */
int mvead_pipeline_fusion(const mvead_config *c, const mvead_paths *p, const mvd_cache_info *in,
                          mvead_fusion_opts *fo, mvt_tensor **static_mask);

/* Fused features (no grad) of one sample's Z [V, N, D] f32 -> out [V*N*D]. */
int mvead_fuse_sample(const mvead_state *s, const mvead_fusion_opts *f, const mvt_tensor *static_mask,
                      const float *z, int V, int N, int D, float *out);

/* Fused features (no grad) of every training sample of the cache in the
 * view-major layout all[V][S*N][D] (row i*N + j of view v = patch j of
 * sample i), the layout of the per-view banks and of the centres' k-means.
 * On rank 0 `all` is allocated here (S V N D floats: in memory up to
 * memory_mb, see mvead_memory_budget, else a scratch file under dir, written
 * back as it fills; the caller frees it with mvead_scratch_free); on the
 * other ranks it stays empty. Under MPI (collective) each rank fuses a
 * contiguous block of the samples and sends them to rank 0: bitwise the
 * one-process result. `label` names the progress line, the log and errors.
 * Returns 0, or -1 (mv_error, `all` freed) on every rank when any rank
 * failed. Called by train (centres) and bank. */
int mvead_fuse_training_set(const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *static_mask,
                            mvd_cache *cache, double memory_mb, const char *dir, const char *label, mvead_scratch *all);

#endif
