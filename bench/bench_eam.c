/* bench_eam: speed of the Epipolar Attention Module on our engine, against
 * bench/peers/eam.py (the same module in PyTorch, same shapes and mask).
 *
 *   fwdbwd : O = EAM(Z); backward of sum(O * R) to every EAM parameter
 *            (Z is a cached feature, no gradient), as one training batch sees it
 *   step   : one whole MCP+Reg training step: objective forward (EAM on Z and on
 *            the negatives' Zm, multi-centre + negative losses, K centres),
 *            backward, AdamW update
 *
 * Paper sizes: V = 5 views, N = 256 patches (16 x 16), D = 768, 12 heads,
 * batch 8. The mask is a synthetic epipolar band, the same formula as the
 * peer: query patch j of view a keeps patch k of support b when their grid
 * rows differ by at most 1 (rectified-pair epipolar lines, delta = 1 patch),
 * about 3/16 of the keys at N = 256.
 *
 * Usage: bench_eam [--batch B] [--patches N] [--reps R] [--what fwdbwd|step|both]
 *                  [--attention sparse|dense|both]
 * Defaults: batch 8 (MVEAD_BENCH_QUICK=1: 1), N 256, reps 3 (quick: 2), both,
 * both attentions (sparse first, so the peak RSS printed after its workloads
 * is its own; dense second). Prints a human line and an "@bench key=..."
 * record per workload (best of reps after one warm-up; GFLOP/s over the flops
 * of the dense VN x VN attention both sides compute, the peer's count, and
 * over the flops the method needs: the kept keys only, and for the step the
 * negatives' pass on the rows that can change), then, with both attentions,
 * the dense / sparse time ratios of the same run and the needed GFLOP/s as a
 * share of a square sgemm's measured here (human lines only: the records keep
 * bench/peers/collect.py's fields). Asserts nothing. */
#include "bench/bench_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include <cblas.h>

#include "mvead/method/eam.h"
#include "mvead/method/objective.h"
#include "nn/adamw.h"
#include "tensor/error.h"

enum { V = 5, D = 768, HEADS = 12, K_CENTERS = 20 };

/* support [V][N][(V-1)N]: the band mask described at the top (grid side w). */
static uint8_t *band_support(int N) {
    int w = (int)lround(sqrt((double)N));
    uint8_t *s = malloc((size_t)V * N * (V - 1) * N);
    if (!s) return NULL;
    for (int a = 0; a < V; a++)
        for (int j = 0; j < N; j++)
            for (int bs = 0; bs < V - 1; bs++)
                for (int k = 0; k < N; k++)
                    s[((size_t)a * N + j) * (size_t)((V - 1) * N) + (size_t)bs * N + k] = abs(j / w - k / w) <= 1;
    return s;
}

/* Forward FLOPs of one EAM call on B samples: q/k/v/out projections
 * 4 x 2 VN D^2, scores and A V 2 x 2 (VN)^2 D (all heads together). */
static double eam_fwd_flops(int B, int N) {
    double vn = (double)V * N;
    return (double)B * (8.0 * vn * D * D + 4.0 * vn * vn * D);
}

/* Bytes a straightforward backward must hold: Z, R, params + grads, and the
 * saved activations Y, Q, K, Vv, attention output (5 x BVND) plus the
 * softmax probabilities (B heads (VN)^2). The peer uses the same formula. */
static double eam_held_bytes(int B, int N) {
    double bvnd = (double)B * V * N * D, vn = (double)V * N;
    double params = 4.0 * D * D + 6.0 * D;
    return 4.0 * (2.0 * bvnd + 2.0 * params + 5.0 * bvnd + (double)B * HEADS * vn * vn);
}

/* Forward FLOPs the method needs on B samples: the projections and, per
 * kept (query, key) pair of the mask (nnz of them), the score and the
 * weighted value (4 D). */
static double eam_needed_fwd_flops(int B, int N, double nnz) {
    return (double)B * (8.0 * V * N * (double)D * D + 4.0 * nnz * D);
}

/* FLOPs of the incremental negatives' pass per sample: the rows that can
 * change (r* and the ~nnz/VN rows keeping it) each attend over ~nnz/VN keys
 * and go through Wo; r*'s q, k, v. Its backward (a few rows) is negligible. */
static double eam_needed_neg_flops(int B, int N, double nnz) {
    double per_row = nnz / ((double)V * N);
    return (double)B * ((1.0 + per_row) * (2.0 * D * D + 4.0 * per_row * D) + 6.0 * D * D);
}

static void report(const char *key, const char *att, int nt, int B, int N, double best, double flops,
                   double needed, double held) {
    printf("  %-8s %-6s B=%d V=%d N=%d D=%d heads=%d  best %8.4f s  %7.1f GFLOP/s (dense count)  %7.1f GFLOP/s "
           "(needed)  held %8.1f MB  peak RSS %8.1f MB\n",
           key, att, B, V, N, D, HEADS, best, flops / best * 1e-9, needed / best * 1e-9, held / 1048576.0,
           mvead_peak_rss_mib());
    /* the default path keeps the keys the peer's records are joined on */
    printf("@bench key=eam_%s%s impl=ours threads=%d size=B%dxN%d time_s=%.6g flops=%.6g needed_flops=%.6g "
           "held_mb=%.1f rss_mb=%.1f\n",
           key, strcmp(att, "dense") ? "" : "_dense", nt, B, N, best, flops, needed, held / 1048576.0,
           mvead_peak_rss_mib());
    fflush(stdout);
}

/* Best GFLOP/s of a square sgemm with BLAS threads = nt (bench_stream's limit). */
static double sgemm_peak(int nt, int n) {
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n);
    float *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 13) * 0.1f - 0.6f; b[i] = (float)(i % 11) * 0.1f - 0.5f; }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    int prev = openblas_get_num_threads();
    openblas_set_num_threads(nt);
#endif
    double best = 1e30;
    for (int r = -1; r < 3; r++) {
        double t0 = mvead_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = mvead_now() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(prev);
#endif
    free(a); free(b); free(c);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

int main(int argc, char **argv) {
    int quick = env_flag("MVEAD_BENCH_QUICK");
    int B = quick ? 1 : 8, N = 256, reps = quick ? 2 : 3;
    const char *what = "both", *attn = "both";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--batch")) B = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--patches")) N = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--what")) what = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--attention")) attn = argv[++i];
        else {
            fprintf(stderr, "bench_eam: unknown argument '%s' (expected --batch B, --patches N, --reps R, "
                            "--what fwdbwd|step|both, --attention sparse|dense|both)\n", argv[i]);
            return 2;
        }
    }
    int w = (int)lround(sqrt((double)N));
    if (B < 1 || N < 1 || w * w != N || reps < 1) {
        fprintf(stderr, "bench_eam: need batch >= 1, reps >= 1 and a square patch count, got B=%d N=%d reps=%d\n",
                B, N, reps);
        return 2;
    }
    int do_fwdbwd = !strcmp(what, "fwdbwd") || !strcmp(what, "both");
    int do_step = !strcmp(what, "step") || !strcmp(what, "both");
    int nt = mvt_get_num_threads();
    mvt_set_num_threads(nt);
    printf("bench_eam: float32, %d threads%s, best of %d\n", nt, quick ? " (quick)" : "", reps);

    mvead_eam m = {0};
    if (mvead_eam_init_random(&m, D, HEADS, MVT_F32, 1)) {
        fprintf(stderr, "bench_eam: %s\n", mv_error_last());
        return 1;
    }
    uint8_t *support = band_support(N);
    mvt_tensor *mask = support ? mvead_attn_mask_from_support(support, V, N, MVT_F32) : NULL;
    if (!mask) { fprintf(stderr, "bench_eam: cannot build the mask\n"); return 1; }
    mvt_rng rng;
    mvt_rng_seed(&rng, 7);
    int64_t zshape[4] = {B, V, N, D};
    mvt_tensor *Z = mvt_empty(MVT_F32, 4, zshape), *R = mvt_empty(MVT_F32, 4, zshape);
    mvt_fill_normal(Z, &rng, 0.0, 1.0);
    mvt_fill_uniform(R, &rng, -1.0, 1.0);
    mva_var *params[MVEAD_EAM_NPARAMS];
    mvead_eam_params(&m, params);
    mva_set_keep_intermediate_grads(false);   /* as the trainer runs */
    mva_set_grad_enabled(true);

    int64_t VN = (int64_t)V * N;
    double nnz = 0;   /* kept (query, key) pairs of the mask */
    for (int64_t k = 0; k < VN * VN; k++) nnz += mvt_f32(mask)[k] != 0;
    printf("  mask keeps %.4f of the VN x VN pairs (%.4f of the other views' keys)\n", nnz / ((double)VN * VN),
           nnz / ((double)VN * (V - 1) * N));
    mvt_tensor *aidx = mva_attn_index(mask);   /* what the sparse path computes: each block's key union */
    printf("  sparse path computes %.4f of the VN x VN pairs (query blocks of %d rows)\n",
           mva_attn_index_density(aidx), MVA_ATTN_QBLOCK);
    mvt_release(aidx);
    mvead_attention atts[2] = {MVEAD_ATTN_SPARSE, MVEAD_ATTN_DENSE};
    double t_fb[2] = {0, 0}, t_step[2] = {0, 0}, rss[2] = {0, 0};
    for (int ai = 0; ai < 2; ai++) {
        const char *an = mvead_attention_name(atts[ai]);
        if (strcmp(attn, "both") && strcmp(attn, an)) continue;
        if (do_fwdbwd) {
            double best = 1e30;
            for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
                double t0 = mvead_now();
                mva_var *O = mvead_eam_forward_attn(&m, mva_const(mvt_retain(Z)), mask, atts[ai], true, NULL);
                mva_backward(mva_sum_all(mva_mul(O, mva_const(mvt_retain(R)))), NULL);
                double dt = mvead_now() - t0;
                mva_tape_clear();
                for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mva_zero_grad(params[i]);
                if (r >= 0 && dt < best) best = dt;
            }
            t_fb[ai] = best;
            report("fwdbwd", an, nt, B, N, best, 3.0 * eam_fwd_flops(B, N), 3.0 * eam_needed_fwd_flops(B, N, nnz),
                   eam_held_bytes(B, N));
        }
        if (do_step) {
            mvead_objective_opts o;
            mvead_objective_opts_default(&o);   /* MCP+Reg, K 20, n_k 1, lambda 0.1 */
            mvead_fusion_opts f;
            mvead_fusion_opts_default(&f);      /* EAM */
            f.attention = atts[ai];
            int64_t cshape[3] = {V, K_CENTERS, D};
            mvt_tensor *centers = mvt_empty(MVT_F32, 3, cshape);
            mvt_fill_normal(centers, &rng, 0.0, 1.0);
            int64_t *neg_view = malloc(sizeof(int64_t) * (size_t)B), *neg_patch = malloc(sizeof(int64_t) * (size_t)B);
            mvn_adamw *opt = mvn_adamw_new(params, MVEAD_EAM_NPARAMS);
            if (!opt || !neg_view || !neg_patch) { fprintf(stderr, "bench_eam: %s\n", mv_error_last()); return 1; }
            double best = 1e30;
            for (int r = -1; r < reps; r++) {
                mvead_draw_negatives(&rng, B, V, N, neg_view, neg_patch);
                double t0 = mvead_now();
                mvead_loss loss;
                if (mvead_objective_forward(&o, &m, &f, mva_const(mvt_retain(Z)), mask, centers, neg_view, neg_patch,
                                            &loss)) {
                    fprintf(stderr, "bench_eam: %s\n", mv_error_last());
                    return 1;
                }
                mva_backward(loss.total, NULL);
                mvn_adamw_step(opt);
                double dt = mvead_now() - t0;
                mva_tape_clear();
                mvn_adamw_zero_grad(opt);
                if (r >= 0 && dt < best) best = dt;
            }
            t_step[ai] = best;
            /* two EAM forwards (Z and Zm) and their backwards; the losses are small next to them */
            double params_bytes = 4.0 * (4.0 * D * D + 6.0 * D);
            report("step", an, nt, B, N, best, 6.0 * eam_fwd_flops(B, N),
                   3.0 * eam_needed_fwd_flops(B, N, nnz) + eam_needed_neg_flops(B, N, nnz),
                   2.0 * eam_held_bytes(B, N) + 2.0 * params_bytes);
            mvn_adamw_free(opt);
            free(neg_view); free(neg_patch);
            mvt_release(centers);
        }
        rss[ai] = mvead_peak_rss_mib();
    }
    if (!strcmp(attn, "both")) {
        double peak = sgemm_peak(nt, quick ? 1024 : 2048);
        double need_fb = 3.0 * eam_needed_fwd_flops(B, N, nnz);
        double need_step = need_fb + eam_needed_neg_flops(B, N, nnz);
        printf("  same run: sgemm peak %.1f GFLOP/s (%d threads); peak RSS after sparse %.1f MB, after dense %.1f MB\n",
               peak, nt, rss[0], rss[1]);
        if (do_fwdbwd)
            printf("  fwdbwd: dense / sparse = %.2fx; sparse %.1f GFLOP/s needed = %.0f%% of the sgemm peak\n",
                   t_fb[1] / t_fb[0], need_fb / t_fb[0] * 1e-9, 100.0 * need_fb / t_fb[0] * 1e-9 / peak);
        if (do_step)
            printf("  step:   dense / sparse = %.2fx; sparse %.1f GFLOP/s needed = %.0f%% of the sgemm peak\n",
                   t_step[1] / t_step[0], need_step / t_step[0] * 1e-9, 100.0 * need_step / t_step[0] * 1e-9 / peak);
    }

    mvt_release(Z); mvt_release(R); mvt_release(mask);
    free(support);
    mvead_eam_free(&m);
    return 0;
}
