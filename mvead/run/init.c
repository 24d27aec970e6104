/* init: what a run starts training from: the EAM (--init copy | random) and
 * the centres (k-means of the initial fused features). Called by train and
 * by grads before any training. */
#include "mvead/run/init.h"
#include "mvead/run/backbone.h"
#include "mvead/run/fuse.h"
#include "mvead/run/mpi.h"
#include "mvead/run/paths.h"
#include "mvead/run/scratch.h"
#include "mvead/scoring/kmeans.h"
#include "tensor/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The EAM a run starts from: copy of backbone block layer+1, or random with
 * the backbone's head count. train and grads (before training) both call it. */
int mvead_eam_init_for_run(const mvead_config *c, int D, mvead_eam *m) {
    int heads = 0;
    mvead_eam_weights src;
    void *keep = NULL;
    if (!strcmp(c->init, "random")) {
        /* heads follow the backbone when it is known; otherwise a divisor of D */
        if (mvead_backbone_copy_weights(c, D, &heads, &src, &keep) == 0) mvead_backbone_release(keep);
        else {
            mv_error_clear();
            heads = D % 12 == 0 ? 12 : D % 8 == 0 ? 8 : D % 4 == 0 ? 4 : 1;
        }
        return mvead_eam_init_random(m, D, heads, MVT_F32, c->seed);
    }
    if (mvead_backbone_copy_weights(c, D, &heads, &src, &keep)) return mv_error_prefix("--init copy");
    int rc = mvead_eam_init_copy(m, heads, MVT_F32, &src, NULL);
    mvead_backbone_release(keep);
    return rc;
}

/* Centres from the initial EAM outputs of every training patch: the fused
 * training set (mvead_fuse_training_set) on rank 0, in memory or in a
 * scratch file in the run folder past --memory_mb, k-means there, the
 * centres broadcast. */
mvt_tensor *mvead_centers_for_run(const mvead_config *c, const mvead_objective_opts *oo, mvd_cache *cache,
                                  const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *mask) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    int64_t S = in->S;
    bool root = mvead_mpi_rank() == 0;
    mvead_scratch feats;
    char dir[1024];
    if (mvead_run_dir(c, dir, sizeof dir, true) ||
        mvead_fuse_training_set(st, fo, mask, cache, c->memory_mb, dir, "centres", &feats)) return NULL;
    int64_t cshape[3] = {0, 0, 0};
    mvt_tensor *centers = NULL;
    if (root) {
        centers = mvead_centers_init_f32(oo->kind, feats.data, V, S * N, D, oo->K, oo->lloyd_iters, c->seed);
        if (centers) memcpy(cshape, centers->shape, sizeof cshape);
    }
    mvead_scratch_free(&feats);
    if (mvead_mpi_size() == 1) return centers;
    mvead_mpi_bcast(cshape, sizeof cshape, 0);
    if (!cshape[0]) {
        if (!root) mv_error("train: rank 0 failed computing the centres (see its message)");
        return NULL;
    }
    if (!centers) centers = mvt_zeros(MVT_F64, 3, cshape);
    mvead_mpi_bcast(mvt_f64(centers), sizeof(double) * (size_t)mvt_numel(centers), 0);
    return centers;
}
