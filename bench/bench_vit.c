/* bench_vit: DINOv2 ViT-B/14 (random weights, float32) on a batch of 5
 * 224 x 224 images through block 8: no-grad throughput (images/s, achieved
 * GFLOP/s), forward + backward time (gradients w.r.t. pixels and every
 * parameter), and peak RSS per image. MVEAD_BENCH_QUICK=1: fewer reps. */
#include "bench/bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nn/vit.h"
#include "tensor/error.h"

int main(void) {
    const char *q = getenv("MVEAD_BENCH_QUICK");
    bool quick = q && *q && strcmp(q, "0") != 0;
    const int B = 5, HW = 224, depth = 8;
    int reps_fwd = quick ? 2 : 5, reps_bwd = quick ? 1 : 3;

    mvn_vit_config cfg;
    mvn_config_preset("vitb14", &cfg);
    double rss0 = mvead_peak_rss_mib();
    mvn_vit *m = mvn_vit_new_random(&cfg, MVT_F32, 1234);
    if (!m) { fprintf(stderr, "bench_vit: %s\n", mv_error_last()); return 1; }
    double rss_model = mvead_peak_rss_mib();

    int64_t shape[4] = {B, 3, HW, HW};
    mvt_tensor *px = mvt_empty(MVT_F32, 4, shape);
    mvt_rng rng;
    mvt_rng_seed(&rng, 7);
    mvt_fill_normal(px, &rng, 0.0, 1.0);
    double flops = mvn_vit_flops(&cfg, B, HW, HW, depth);

    /* no-grad forward */
    bool prev = mva_set_grad_enabled(false);
    mva_var **hs = calloc((size_t)depth + 1, sizeof *hs);
    double best = 1e30, total = 0;
    for (int r = -1; r < reps_fwd; r++) {   /* r = -1: warm-up */
        double t0 = mvead_now();
        mvn_vit_forward(m, mva_const(mvt_retain(px)), NULL, depth, hs, NULL);
        double dt = mvead_now() - t0;
        mva_tape_clear();
        if (r < 0) continue;
        total += dt;
        if (dt < best) best = dt;
    }
    double rss_fwd = mvead_peak_rss_mib();
    mva_set_grad_enabled(prev);

    /* forward + backward (all parameters and the pixels require grad) */
    mvn_vit_set_requires_grad(m, true);
    mva_set_grad_enabled(true);
    double best_fb = 1e30;
    for (int r = 0; r < reps_bwd; r++) {
        mva_var *x = mva_leaf(mvt_retain(px), true, "pixels");
        double t0 = mvead_now();
        mvn_vit_forward(m, x, NULL, depth, hs, NULL);
        mva_backward(mva_sum_all(hs[depth]), NULL);
        double dt = mvead_now() - t0;
        mva_tape_clear();
        mva_leaf_free(x);
        for (int i = 0; i < m->n_params; i++) mva_zero_grad(m->params[i]);
        if (dt < best_fb) best_fb = dt;
    }
    double rss_bwd = mvead_peak_rss_mib();
    mva_set_grad_enabled(prev);

    printf("bench_vit: DINOv2 ViT-B/14, float32, batch %d x 3 x %d x %d, blocks 1..%d, %d threads%s\n",
           B, HW, HW, depth, mvt_get_num_threads(), quick ? " (quick)" : "");
    printf("  %-34s %12s\n", "measure", "value");
    printf("  %-34s %12.1f\n", "params (M)", (double)mvn_vit_num_params(m) / 1e6);
    printf("  %-34s %12.2f\n", "forward FLOPs per image (G)", flops / B / 1e9);
    printf("  %-34s %12.3f\n", "no-grad forward, best (s)", best);
    printf("  %-34s %12.3f\n", "no-grad forward, mean (s)", total / reps_fwd);
    printf("  %-34s %12.2f\n", "no-grad images/s", B / best);
    printf("  %-34s %12.2f\n", "no-grad achieved GFLOP/s", flops / best / 1e9);
    printf("  %-34s %12.3f\n", "forward+backward, best (s)", best_fb);
    printf("  %-34s %12.2f\n", "forward+backward images/s", B / best_fb);
    printf("  %-34s %12.1f\n", "model weights RSS (MiB)", rss_model - rss0);
    printf("  %-34s %12.1f\n", "peak RSS no-grad / image (MiB)", (rss_fwd - rss_model) / B);
    printf("  %-34s %12.1f\n", "peak RSS fwd+bwd / image (MiB)", (rss_bwd - rss_model) / B);
    printf("  %-34s %12.1f\n", "peak RSS total (MiB)", rss_bwd);

    free(hs);
    mvt_release(px);
    mvn_vit_free(m);
    return 0;
}
