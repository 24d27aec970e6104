/* bench_bank: speed of the memory-bank pieces at Real-IAD scale (float32,
 * dim 768 = ViT-B):
 *   - exact NN search, 10k queries against a 100k-entry bank (blocked GEMM)
 *   - k-means, K = 20 on 100k points (k-means++ then 10 Lloyd iterations)
 *   - greedy coreset, 200k points to 10% (exact and projected to 128 dims)
 *   - k-means++ and the exact coreset again on clustered points (a mixture of
 *     100 clusters, clustered_features), where the triangle-inequality
 *     pruning of both can fire; the coreset there runs whole in every mode
 * The exact greedy coreset at full size is ~20k passes over 614 MB, far too
 * long for a default run: by default the first CORESET_PROBE selections are
 * timed and the full run extrapolated (selections cost the same each).
 * MVEAD_BENCH_FULL=1 runs all of them; MVEAD_BENCH_QUICK=1 shrinks every
 * problem 5-10x (coreset to 20k points, run to the full 10%).
 * Prints time, GFLOP/s, and peak RSS against the bytes the bench holds. */
#include "bench/bench_util.h"
#include "mvead/scoring/coreset.h"
#include "mvead/scoring/kmeans.h"
#include "mvead/scoring/knn.h"
#include "tensor/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CORESET_PROBE 200

/* Draw j (0-based) of the splitmix64 stream `seed`, in [0, 1): counter-based,
 * so bench/peers/torch_bank.py reproduces every value in numpy. */
static double stream_uniform(uint64_t seed, uint64_t j) {
    uint64_t z = seed + (j + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* x (n) ~ roughly N(0, 1) (sum of 4 uniforms, rescaled): cheap and seeded. */
static float *random_features(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)n * sizeof(float));
    if (!x) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double acc = 0.0;
        for (int k = 0; k < 4; k++) acc += stream_uniform(seed, (uint64_t)(4 * i + k));
        x[i] = (float)((acc - 2.0) * 1.7320508075688772); /* var of sum = 1/3 */
    }
    return x;
}

/* Clustered features, the shape of real patch features (iid rows in 768-d
 * have all distances alike, which no pruning can use): a mixture of
 * CLUSTERS Gaussian-like clusters, centres mu_k ~ random_features (unit
 * spread per coordinate), point i in cluster z_i = floor(u_i CLUSTERS) with
 * spread sigma_k in [0.2, 0.4] per coordinate:
 * x_i = (float)(mu_{z_i} + sigma_{z_i} g_i), g ~ random_features. Streams:
 * seed (centres), seed + 1 (spreads), seed + 2 (labels), seed + 3 (g). */
#define CLUSTERS 100
static float *clustered_features(int64_t n, int64_t dim, uint64_t seed) {
    float *mu = random_features(CLUSTERS * dim, seed);
    float *x = random_features(n * dim, seed + 3);
    if (!mu || !x) { free(mu); free(x); return NULL; }
    double sigma[CLUSTERS];
    for (int k = 0; k < CLUSTERS; k++) sigma[k] = 0.2 + 0.2 * stream_uniform(seed + 1, (uint64_t)k);
    for (int64_t i = 0; i < n; i++) {
        int64_t z = (int64_t)(stream_uniform(seed + 2, (uint64_t)i) * CLUSTERS);
        for (int64_t d = 0; d < dim; d++)
            x[i * dim + d] = (float)((double)mu[z * dim + d] + sigma[z] * (double)x[i * dim + d]);
    }
    free(mu);
    /* the same values on the peer's side: it prints these too */
    printf("clustered data n=%lld: x[0] = %.9g, x[1] = %.9g, x[last] = %.9g\n", (long long)n, x[0], x[1],
           x[n * dim - 1]);
    return x;
}

static void row(const char *what, double seconds, double flops, double held_bytes) {
    printf("%-44s %9.3f s %9.1f GFLOP/s   held %8.1f MB   peak RSS %8.1f MB\n", what, seconds,
           flops / seconds * 1e-9, held_bytes / 1048576.0, mvead_peak_rss_mib());
    fflush(stdout);
}

int main(void) {
    int quick = env_flag("MVEAD_BENCH_QUICK"), full = env_flag("MVEAD_BENCH_FULL");
    const int64_t dim = 768;
    int64_t n_query = quick ? 2000 : 10000, n_bank = quick ? 20000 : 100000;
    int64_t n_kmeans = quick ? 20000 : 100000, k = 20, lloyd_iters = 10;
    int64_t n_coreset = quick ? 20000 : 200000;
    printf("bench_bank (float32, dim %lld)%s%s\n", (long long)dim, quick ? " [QUICK]" : "",
           full ? " [FULL]" : "");

    /* ---- kNN: blocked GEMM distances ---- */
    float *bank = random_features(n_bank * dim, 1);
    float *queries = random_features(n_query * dim, 2);
    float *dist = malloc((size_t)n_query * sizeof(float));
    int64_t *idx = malloc((size_t)n_query * sizeof(int64_t));
    if (!bank || !queries || !dist || !idx) { fprintf(stderr, "bench_bank: out of memory\n"); return 1; }
    double t0 = mvead_now();
    if (mvs_knn_f32(queries, n_query, bank, n_bank, dim, dist, idx)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    double t = mvead_now() - t0;
    char label[128];
    snprintf(label, sizeof label, "knn %lldq x %lld bank", (long long)n_query, (long long)n_bank);
    row(label, t, 2.0 * (double)n_query * (double)n_bank * (double)dim,
        (double)(n_bank + n_query) * (double)dim * 4.0);
    free(queries); free(dist); free(idx);

    /* ---- k-means on the first n_kmeans bank rows ---- */
    float *centers = malloc((size_t)(k * dim) * sizeof(float));
    int64_t *assign = malloc((size_t)n_kmeans * sizeof(int64_t));
    t0 = mvead_now();
    if (mvs_kmeanspp_init_f32(bank, n_kmeans, dim, k, 7, centers)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    t = mvead_now() - t0;
    snprintf(label, sizeof label, "kmeans++ init K=%lld n=%lld", (long long)k, (long long)n_kmeans);
    row(label, t, 3.0 * (double)k * (double)n_kmeans * (double)dim, (double)n_kmeans * (double)dim * 4.0);
    int64_t iters_run = 0;
    t0 = mvead_now();
    if (mvs_kmeans_lloyd_f32(bank, n_kmeans, dim, k, lloyd_iters, centers, assign, &iters_run)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    t = mvead_now() - t0;
    snprintf(label, sizeof label, "kmeans Lloyd %lld iters (+1 assign)", (long long)iters_run);
    /* per iteration: GEMM 2nkd + centre sums nd */
    row(label, t, (double)(iters_run + 1) * 2.0 * (double)n_kmeans * (double)k * (double)dim +
                      (double)iters_run * (double)n_kmeans * (double)dim,
        (double)n_kmeans * (double)dim * 4.0);
    free(bank);

    /* ---- k-means++ on clustered points (pruning can fire) ---- */
    float *clu = clustered_features(n_kmeans, dim, 21);
    if (!clu) { fprintf(stderr, "bench_bank: out of memory\n"); return 1; }
    int64_t n_dist = 0;
    t0 = mvead_now();
    if (mvs_kmeanspp_init_stats_f32(clu, n_kmeans, dim, k, 7, centers, &n_dist)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    t = mvead_now() - t0;
    snprintf(label, sizeof label, "kmeans++ init clustered K=%lld n=%lld", (long long)k, (long long)n_kmeans);
    /* flops: the unpruned algorithm's (both sides count the same work) */
    row(label, t, 3.0 * (double)k * (double)n_kmeans * (double)dim, (double)n_kmeans * (double)dim * 4.0);
    printf("  -> %lld distances computed of %lld unpruned (%.1f%%)\n", (long long)n_dist,
           (long long)(n_kmeans * (k - 1)), 100.0 * (double)n_dist / (double)(n_kmeans * (k - 1)));
    free(clu); free(centers); free(assign);

    /* ---- greedy coreset to 10% ---- */
    float *feats = random_features(n_coreset * dim, 3);
    int64_t m_full = mvs_coreset_size(n_coreset, 0.1);
    int64_t m_run = (quick || full) ? m_full : CORESET_PROBE;
    int64_t *sel = malloc((size_t)m_full * sizeof(int64_t));
    if (!feats || !sel) { fprintf(stderr, "bench_bank: out of memory\n"); return 1; }
    double held = (double)n_coreset * (double)dim * 4.0 + (double)n_coreset * 8.0;
    t0 = mvead_now();
    if (mvs_coreset_greedy_f32(feats, n_coreset, dim, m_run, 0, sel, NULL)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    t = mvead_now() - t0;
    snprintf(label, sizeof label, "coreset exact %lld of %lld sel, n=%lld", (long long)m_run, (long long)m_full,
             (long long)n_coreset);
    /* each selection: one pass of n*dim (sub, mul, add) */
    row(label, t, 3.0 * (double)m_run * (double)n_coreset * (double)dim, held);
    if (m_run < m_full)
        printf("%-44s %9.1f s (extrapolated, %.1f GB/s streamed)\n", "  -> full 10% exact coreset",
               t / (double)m_run * (double)m_full,
               (double)m_run * (double)n_coreset * (double)dim * 4.0 / t * 1e-9);

    const int64_t proj_dim = 128;
    /* one selection = the projection GEMM alone, to extrapolate only the passes */
    t0 = mvead_now();
    if (mvs_coreset_projected_f32(feats, n_coreset, dim, proj_dim, 11, 1, 0, sel)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    double t_setup = mvead_now() - t0;
    t0 = mvead_now();
    if (mvs_coreset_projected_f32(feats, n_coreset, dim, proj_dim, 11, m_run, 0, sel)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    t = mvead_now() - t0;
    snprintf(label, sizeof label, "coreset proj %lld-d %lld of %lld sel", (long long)proj_dim, (long long)m_run,
             (long long)m_full);
    row(label, t,
        2.0 * (double)n_coreset * (double)dim * (double)proj_dim +
            3.0 * (double)m_run * (double)n_coreset * (double)proj_dim,
        held + (double)n_coreset * (double)proj_dim * 4.0);
    if (m_run < m_full)
        printf("%-44s %9.1f s (extrapolated; projection GEMM %.2f s)\n", "  -> full 10% projected coreset",
               t_setup + (t - t_setup) / (double)(m_run - 1) * (double)(m_full - 1), t_setup);
    free(feats);

    /* ---- greedy coreset on clustered points: run whole in every mode (the
     * pruned passes do not cost the same each, so no extrapolation) ---- */
    feats = clustered_features(n_coreset, dim, 23);
    if (!feats) { fprintf(stderr, "bench_bank: out of memory\n"); return 1; }
    t0 = mvead_now();
    if (mvs_coreset_greedy_stats_f32(feats, n_coreset, dim, m_full, 0, sel, NULL, &n_dist)) {
        fprintf(stderr, "bench_bank: %s\n", mv_error_last());
        return 1;
    }
    t = mvead_now() - t0;
    snprintf(label, sizeof label, "coreset exact clustered %lld of %lld sel, n=%lld", (long long)m_full,
             (long long)m_full, (long long)n_coreset);
    row(label, t, 3.0 * (double)m_full * (double)n_coreset * (double)dim, held);
    printf("  -> %lld distances computed of %lld unpruned (%.2f%%)\n", (long long)n_dist,
           (long long)(m_full * n_coreset), 100.0 * (double)n_dist / ((double)m_full * (double)n_coreset));
    free(feats); free(sel);
    return 0;
}
