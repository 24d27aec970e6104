/* fuse: the fusion a run uses (mode, mask from the calibration) and the fused
 * features of one sample or of the whole training set (centres, bank). */
#include "mvead/run/fuse.h"
#include "mvead/geometry/calibration.h"
#include "mvead/geometry/epipolar.h"
#include "mvead/run/interrupt.h"
#include "mvead/run/mpi.h"
#include "mvead/run/progress.h"
#include "tensor/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *mvead_support_mask(const mvead_config *c, const char *calib_path, int V, int H, int W, int P) {
    mvg_calibration cal;
    if (mvg_calibration_read_json(calib_path, &cal)) return NULL;
    if (cal.V != V) {
        mv_error("%s: calibration has %d views, the features have %d", calib_path, cal.V, V);
        return NULL;
    }
    double *F = malloc(sizeof(double) * 9 * (size_t)(V * V));
    mvg_calibration_F_for_size(&cal, W, H, F);
    int h = H / P, w = W / P, N = h * w;
    uint8_t *m = malloc((size_t)V * N * (size_t)(V - 1) * N);
    mvg_support_mask(F, V, h, w, P, c->delta, m);
    free(F);
    return m;
}

int mvead_pipeline_fusion(const mvead_config *c, const mvead_paths *p, const mvd_cache_info *in,
                          mvead_fusion_opts *fo, mvt_tensor **static_mask) {
    mvead_fusion_opts_default(fo);
    if (mvead_fusion_parse(c->fusion, &fo->mode) || mvead_attention_parse(c->attention, &fo->attention)) return -1;
    fo->h = in->grid_h;
    fo->w = in->grid_w;
    fo->mvas_window = c->mvas_window;
    fo->mvas_topk = c->mvas_topk;
    *static_mask = NULL;
    uint8_t *support = NULL;
    if (mvead_fusion_needs_calibration(fo->mode)) {
        support = mvead_support_mask(c, p->calib, (int)in->V, in->H, in->W, in->P);
        if (!support) return -1;
    }
    if (mvead_fusion_attends(fo->mode) && !mvead_fusion_per_call(fo->mode)) {
        *static_mask = mvead_fusion_static_mask(fo, support, (int)in->V, (int)in->N, MVT_F32);
        if (!*static_mask) { free(support); return -1; }
    }
    free(support);
    return 0;
}

int mvead_fuse_sample(const mvead_state *s, const mvead_fusion_opts *f, const mvt_tensor *static_mask,
                      const float *z, int V, int N, int D, float *out) {
    size_t n = (size_t)V * N * D;
    if (!s->has_eam || !mvead_fusion_attends(f->mode)) {
        memcpy(out, z, n * sizeof(float));
        return 0;
    }
    bool prev = mva_set_grad_enabled(false);
    int64_t shape[3] = {V, N, D};
    mva_var *Z = mva_const(mvt_from_data(MVT_F32, 3, shape, z));
    mva_var *O = mvead_fuse(&s->eam, f, Z, static_mask);
    int rc = 0;
    if (!O) rc = -1;
    else {
        mvt_tensor *c = mvt_contiguous(O->value);
        memcpy(out, mvt_f32(c), n * sizeof(float));
        mvt_release(c);
    }
    mva_tape_clear();
    mva_set_grad_enabled(prev);
    return rc;
}

/* ---- fused features of the training set ---------------------------------------------- */

/* Sample i's features [V][N][D] into the view-major all[V][S*N][D]. */
static int scatter_view_major(const float *sample, int64_t i, int64_t S, int V, int N, int D, mvead_scratch *all) {
    if (mvead_interrupt_check("while fusing training sample %lld of %lld (nothing written; the run's files are as "
                              "they were); rerun the command", (long long)i + 1, (long long)S)) return -1;
    for (int v = 0; v < V; v++) {
        size_t off = ((size_t)v * S * N + (size_t)i * N) * D;
        memcpy(all->data + off, sample + (size_t)v * N * D, sizeof(float) * N * D);
        if (mvead_scratch_writeback(all, off * sizeof(float), sizeof(float) * N * D)) return -1;
    }
    return 0;
}

/* Under MPI each rank fuses a contiguous block of the samples and rank 0
 * receives them rank by rank, one sample per message, into their places
 * (rank order = sample order, so `all` is bitwise what one process builds);
 * rank 0 never holds more than `all` and one sample, the others their block.
 * One process scatters each sample straight into `all`. */
int mvead_fuse_training_set(const mvead_state *st, const mvead_fusion_opts *fo, const mvt_tensor *static_mask,
                            mvd_cache *cache, double memory_mb, const char *dir, const char *label, mvead_scratch *all) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D, R = mvead_mpi_rank(), P = mvead_mpi_size();
    int64_t S = in->S, lo, hi;
    size_t per = (size_t)V * N * D;
    bool shared = P > 1;
    memset(all, 0, sizeof *all);
    mvead_mpi_block(S, &lo, &hi);
    float *z = malloc(sizeof(float) * per), *o = malloc(sizeof(float) * per);
    float *mine = shared && R > 0 ? malloc(sizeof(float) * per * (size_t)(hi - lo) + 1) : NULL;
    int64_t bad = !z || !o || (shared && R > 0 && !mine);
    if (bad) mv_error("%s: out of memory for %lld fused samples", label, (long long)(shared ? hi - lo : 1));
    else if (R == 0) {
        bad = mvead_scratch_alloc(all, (size_t)S * per, mvead_memory_budget(memory_mb), dir, label);
        if (!bad && all->mapped)
            mvead_log("%s: %.1f MiB of fused features over --memory_mb: in a scratch file in %s", label, all->n * 4.0 / 1048576.0, dir);
    }
    mvead_progress pr;
    mvead_progress_start(&pr, label, hi - lo);
    for (int64_t i = lo; !bad && i < hi; i++) {
        float *dst = mine ? mine + (size_t)(i - lo) * per : o;
        bad = mvd_cache_read(cache, i, z) || mvead_fuse_sample(st, fo, static_mask, z, V, N, D, dst);
        if (!bad && !mine) bad = scatter_view_major(o, i, S, V, N, D, all);
        mvead_progress_update(&pr, i - lo + 1, NULL);
    }
    mvead_progress_finish(&pr);
    free(z);
    int64_t any_bad = bad;
    mvead_mpi_allreduce_max_i64(&any_bad, 1);   /* nobody starts sending if a rank failed */
    if (any_bad) {
        free(o);
        free(mine);
        mvead_scratch_free(all);
        return bad ? -1 : mv_error("%s: another rank failed fusing its samples (see its message)", label);
    }
    int e = 0;
    if (shared && R > 0) {
        for (int64_t i = lo; i < hi && !e; i++) e = mvead_mpi_send(mine + (size_t)(i - lo) * per, sizeof(float) * per, 0, 7);
    } else if (shared) {
        for (int r = 1; r < P && !e; r++) {
            int64_t rlo, rhi;
            mvead_mpi_block_of(S, r, P, &rlo, &rhi);
            for (int64_t i = rlo; i < rhi && !e; i++) {
                e = mvead_mpi_recv(o, sizeof(float) * per, r, 7);
                if (!e && scatter_view_major(o, i, S, V, N, D, all)) e = -2;   /* rank 0 fails; main ends the job */
            }
        }
    }
    free(o);
    free(mine);
    if (e) {
        mvead_scratch_free(all);
        return e == -2 ? -1 : mv_error("%s: sending the fused samples to rank 0 failed", label);
    }
    return 0;
}
