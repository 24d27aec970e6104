/* init: what a run starts from, before any training step. Called by train
 * and by grads. */
#ifndef MVEAD_RUN_INIT_H
#define MVEAD_RUN_INIT_H

#include "data/cache.h"
#include "mvead/method/objective.h"
#include "mvead/run/checkpoint.h"

/* The EAM a run starts from (--init copy: backbone block layer+1; random:
 * seeded, with the backbone's head count). */
int mvead_eam_init_for_run(const mvead_config *c, int D, mvead_eam *m);

/* The run's initial centres [V, K, D] f64: k-means (deepsvdd: the mean) of
 * st's fused outputs of every training patch, seeded with c->seed; under
 * MPI (collective) computed on rank 0 and broadcast. NULL + mv_error on
 * failure. */
mvt_tensor *mvead_centers_for_run(const mvead_config *c, const mvead_objective_opts *oo, mvd_cache *cache,
                                  const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *mask);

#endif
