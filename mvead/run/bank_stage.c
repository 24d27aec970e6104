/* bank_stage: the multi-view memory bank. Fused (EAM) features of every
 * training patch, per view (or pooled), subsampled by greedy coreset, saved
 * with their provenance. */
#include "data/cache.h"
#include "data/h5io.h"
#include "mvead/method/eam.h"
#include "mvead/run/checkpoint.h"
#include "mvead/run/run_config.h"
#include "mvead/run/fuse.h"
#include "mvead/run/interrupt.h"
#include "mvead/run/mpi.h"
#include "mvead/run/paths.h"
#include "mvead/run/progress.h"
#include "mvead/run/scoremaps.h"
#include "mvead/run/scratch.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/coreset.h"
#include "tensor/error.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The approximate coreset without holding the fused features: pass 1 fuses
 * each sample and keeps only its rows projected to pd <= 128 dimensions
 * (seeded Gaussian, 1/sqrt(pd)), the greedy k-center runs on the projections,
 * pass 2 fuses the samples again and copies the chosen rows. Memory: pd/D of
 * the full features; cost: two EAM passes. Rows are ordered as in the full
 * path: bank b holds view v = b (or all views, pooled) as [v][i*N + j]. */
static int approx_bank_streaming(const mvead_config *c, const mvead_state *st, const mvead_fusion_opts *fo,
                                 const mvt_tensor *mask, mvd_cache *cache, bool pooled, mvd_h5_writer *w) {
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D, n_banks = pooled ? 1 : V;
    int64_t S = in->S, rows = pooled ? S * V * N : S * N, m = mvs_coreset_size(rows, c->coreset_ratio);
    int pd = D < 128 ? D : 128, rc = -1;
    size_t per = (size_t)V * N * D;
    float *z = malloc(sizeof(float) * per), *o = malloc(sizeof(float) * per);
    float *G = malloc(sizeof(float) * (size_t)D * pd), *proj = malloc(sizeof(float) * (size_t)n_banks * rows * pd);
    float *bank = malloc(sizeof(float) * (size_t)n_banks * m * D);
    int64_t *sel = malloc(sizeof(int64_t) * (size_t)n_banks * m);
    if (!z || !o || !G || !proj || !bank || !sel) { mv_error("bank: out of memory for %lld projected rows", (long long)(n_banks * rows)); goto done; }
    mvt_rng rng;
    mvt_rng_seed(&rng, c->seed ^ 0x9e3779b97f4a7c15ull);
    for (size_t k = 0; k < (size_t)D * pd; k++) G[k] = (float)(mvt_rng_normal(&rng) / sqrt((double)pd));
    mvead_progress pr;
    mvead_progress_start(&pr, "bank: project", S);
    for (int64_t i = 0; i < S; i++) {
        if (mvd_cache_read(cache, i, z) || mvead_fuse_sample(st, fo, mask, z, V, N, D, o)) goto done;
        for (int v = 0; v < V; v++) {
            /* rows of view v of sample i: their place in the bank's row order */
            int64_t row0 = (int64_t)v * S * N + i * N, b = pooled ? 0 : v;
            if (!pooled) row0 = i * N;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, pd, D, 1.0f, o + (size_t)v * N * D, D, G, pd, 0.0f,
                        proj + ((size_t)b * rows + (size_t)row0) * pd, pd);
        }
        mvead_progress_update(&pr, i + 1, NULL);
    }
    mvead_progress_finish(&pr);
    for (int b = 0; b < n_banks; b++)
        if (mvs_coreset_greedy_f32(proj + (size_t)b * rows * pd, rows, pd, m, 0, sel + (size_t)b * m, NULL)) goto done;
    mvead_progress_start(&pr, "bank: gather", S);
    for (int64_t i = 0; i < S; i++) {
        if (mvd_cache_read(cache, i, z) || mvead_fuse_sample(st, fo, mask, z, V, N, D, o)) goto done;
        for (int b = 0; b < n_banks; b++)
            for (int64_t k = 0; k < m; k++) {
                int64_t r = sel[(size_t)b * m + k];
                int64_t v = pooled ? r / (S * N) : b, rest = pooled ? r % (S * N) : r;
                if (rest / N != i) continue;
                memcpy(bank + ((size_t)b * m + k) * D, o + ((size_t)v * N + rest % N) * D, sizeof(float) * D);
            }
        mvead_progress_update(&pr, i + 1, NULL);
    }
    mvead_progress_finish(&pr);
    for (int b = 0; b < n_banks; b++) {
        char name[32], sname[32];
        int64_t shp[2] = {m, D}, s1[1] = {m};
        snprintf(name, sizeof name, "bank/%d", b);
        snprintf(sname, sizeof sname, "selected/%d", b);
        if (mvd_h5_write_f32(w->file, name, 2, shp, bank + (size_t)b * m * D) ||
            mvd_h5_write_i64(w->file, sname, 1, s1, sel + (size_t)b * m)) goto done;
    }
    rc = 0;
done:
    free(z); free(o); free(G); free(proj); free(bank); free(sel);
    return rc;
}

int mvead_stage_bank(const mvead_config *c) {
    mvead_paths p;
    if (mvead_paths_init(c, &p, true)) return -1;
    mvd_cache *cache = mvd_cache_open(p.train_cache);
    if (!cache) return mv_error_prefix("bank (run `mvead extract` first)");
    const mvd_cache_info *in = &cache->info;
    int V = (int)in->V, N = (int)in->N, D = (int)in->D;
    int64_t S = in->S;
    int rc = -1, R = mvead_mpi_rank(), ranks = mvead_mpi_size();
    mvead_state st = {0};
    mvt_tensor *static_mask = NULL;
    mvead_scratch all = {0};
    bool pooled = !strcmp(c->bank_mode, "pooled");
    int n_banks = pooled ? 1 : V;
    mvead_fusion_opts fo;
    mvd_h5_writer w = {.file = -1};
    if (mvead_checkpoint_load(p.checkpoint, &st, NULL)) { mv_error_prefix("bank (run `mvead train` first)"); goto done; }
    if (mvead_pipeline_fusion(c, &p, in, &fo, &static_mask)) goto done;
    if (ranks == 1 && !strcmp(c->coreset_mode, "approx") && c->coreset_ratio < 1.0) {
        /* large training sets: never hold the fused features (approx_bank_streaming) */
        int64_t rows = pooled ? S * V * N : S * N;
        if (mvd_h5_create(&w, p.bank, "bank", MVEAD_BANK_FORMAT) ||
            approx_bank_streaming(c, &st, &fo, static_mask, cache, pooled, &w)) goto done;
        int64_t m = mvs_coreset_size(rows, c->coreset_ratio);
        if (mvd_h5_attr_set_int(w.file, ".", "n_banks", n_banks) || mvd_h5_attr_set_str(w.file, ".", "mode", c->bank_mode) ||
            mvd_h5_attr_set_int(w.file, ".", "dim", D) || mvd_h5_attr_set_int(w.file, ".", "source_rows", rows) ||
            mvd_h5_attr_set_double(w.file, ".", "coreset_ratio", c->coreset_ratio) ||
            mvd_h5_attr_set_str(w.file, ".", "coreset_mode", "approx-streaming") ||
            mvd_h5_attr_set_str(w.file, ".", "fusion", c->fusion) ||
            mvd_h5_attr_set_str(w.file, ".", "checkpoint", p.checkpoint) ||
            mvd_h5_attr_set_str(w.file, ".", "cache", p.train_cache) ||
            mvd_h5_attr_set_str(w.file, ".", "backbone_hash", in->backbone_hash) || mvd_h5_commit(&w)) goto done;
        w.file = -1;
        mvead_log("bank: %d bank(s) of %lld of %lld patches (approximate coreset %.3g, streamed) -> %s (peak RSS %.0f MiB)",
                  n_banks, (long long)m, (long long)rows, c->coreset_ratio, p.bank, mvead_peak_rss_mib());
        rc = 0;
        goto done;
    }
    /* all[v][i*N + j][:] : view-major so each view's bank is one block; on
     * rank 0 only, in a scratch file in the run folder past --memory_mb (the
     * exact coreset needs every row at each step). Under MPI each rank fuses
     * a block of the samples (bitwise what one process builds); rank 0 runs
     * the coreset and writes bank.h5; the search over the bank is sharded in
     * eval (eval_stage.c) */
    if (mvead_fuse_training_set(&st, &fo, static_mask, cache, c->memory_mb, p.run, "bank: fuse", &all)) goto done;
    if (R > 0) { rc = 0; goto done; }
    mvead_progress pr;
    if (mvd_h5_create(&w, p.bank, "bank", MVEAD_BANK_FORMAT)) goto done;
    int64_t rows = pooled ? S * V * N : S * N;
    int64_t m = mvs_coreset_size(rows, c->coreset_ratio);
    int64_t *sel = malloc(sizeof(int64_t) * (size_t)m);
    float *bank = malloc(sizeof(float) * (size_t)m * D);
    mvead_progress_start(&pr, "bank: coreset", n_banks);
    for (int b = 0; b < n_banks; b++) {
        const float *x = all.data + (size_t)b * rows * D;
        int e;
        if (c->coreset_ratio >= 1.0) {
            for (int64_t k = 0; k < m; k++) sel[k] = k;
            e = 0;
        } else if (!strcmp(c->coreset_mode, "approx")) {
            e = mvs_coreset_projected_f32(x, rows, D, D < 128 ? D : 128, c->seed, m, 0, sel);
        } else {
            e = mvs_coreset_greedy_f32(x, rows, D, m, 0, sel, NULL);
        }
        if (e) { free(sel); free(bank); goto done; }
        mvs_gather_rows_f32(x, D, sel, m, bank);
        char name[64];
        int64_t shp[2] = {m, D}, s1[1] = {m};
        snprintf(name, sizeof name, "bank/%d", b);
        snprintf(name + 32, 32, "selected/%d", b);
        if (mvd_h5_write_f32(w.file, name, 2, shp, bank) || mvd_h5_write_i64(w.file, name + 32, 1, s1, sel)) { free(sel); free(bank); goto done; }
        mvead_progress_update(&pr, b + 1, NULL);
        if (mvead_interrupt_check("after bank %d (bank.h5 not written; the previous one, if any, is unchanged); rerun bank", b + 1)) {
            free(sel);
            free(bank);
            goto done;
        }
    }
    mvead_progress_finish(&pr);
    free(sel);
    free(bank);
    if (mvd_h5_attr_set_int(w.file, ".", "n_banks", n_banks) || mvd_h5_attr_set_str(w.file, ".", "mode", c->bank_mode) ||
        mvd_h5_attr_set_int(w.file, ".", "dim", D) || mvd_h5_attr_set_int(w.file, ".", "source_rows", rows) ||
        mvd_h5_attr_set_double(w.file, ".", "coreset_ratio", c->coreset_ratio) ||
        mvd_h5_attr_set_str(w.file, ".", "coreset_mode", c->coreset_mode) ||
        mvd_h5_attr_set_str(w.file, ".", "fusion", c->fusion) ||
        mvd_h5_attr_set_str(w.file, ".", "checkpoint", p.checkpoint) ||
        mvd_h5_attr_set_str(w.file, ".", "cache", p.train_cache) ||
        mvd_h5_attr_set_str(w.file, ".", "backbone_hash", in->backbone_hash)) goto done;
    if (mvd_h5_commit(&w)) goto done;
    w.file = -1;
    mvead_log("bank: %d bank(s) of %lld of %lld patches (%s coreset %.3g) -> %s (peak RSS %.0f MiB)", n_banks, (long long)m,
              (long long)rows, c->coreset_mode, c->coreset_ratio, p.bank, mvead_peak_rss_mib());
    rc = 0;
done:
    if (w.file >= 0) mvd_h5_abort(&w);
    mvead_state_free(&st);
    mvt_release(static_mask);
    mvd_cache_close(cache);
    mvead_scratch_free(&all);
    /* eval may read bank.h5 on any rank: wait for rank 0's commit (a failed
     * rank returns at once and main ends the job) */
    if (ranks > 1 && (rc == 0 || R == 0)) {
        int64_t rc0 = rc;
        mvead_mpi_bcast(&rc0, sizeof rc0, 0);
        if (rc0 && !rc) rc = mv_error("bank: rank 0 failed (see its message)");
    }
    return rc;
}
