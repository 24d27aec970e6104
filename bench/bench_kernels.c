/* bench_kernels: speed of the tensor kernels at ViT-B shapes (N = 5 x 257
 * tokens = 1285 rows, D = 768, MLP 3072, 12 heads x 5 views = 60 attention
 * matrices of 257 x 257 with d = 64). Prints one table: median time over
 * repetitions, GFLOP/s (matmuls) or GB/s (memory-bound kernels), and for
 * matmuls the ratio of mvt_matmul to a raw cblas_sgemm call on the same shapes
 * (raw BLAS threaded as it likes; ours is cut into shape-fixed slabs for
 * determinism). The last column rates each row against the machine limit
 * measured in the same run at the same thread count: the copy bandwidth for
 * memory-bound rows, the peak of one 2048^3 sgemm for matmul rows.
 * MVEAD_BENCH_QUICK=1 shrinks the repetitions. MVEAD_BENCH_CPUTIME=1 times
 * with the process CPU clock instead of the wall clock: at one thread on a
 * machine that others load, it counts the work rather than the waiting
 * (bench/peers/common.py reads the same switch). Prints only; asserts nothing. */
#include "bench/bench_util.h"
#include "config.h"
#include "tensor/tensor.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

static int g_reps = 7;
static int g_cputime;

static double bench_clock(void) {
    if (!g_cputime) return mvead_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *ctx);

static void set_blas_threads(int n);

/* median seconds of g_reps runs of f (and of g when non-NULL) after one
 * warm-up; runs of f and g alternate so load changes hit both alike */
static double time_pair(bench_fn f, bench_fn g, void *ctx, double *g_median, int nt) {
    double tf[64], tg[64];
    int reps = g_reps < 64 ? g_reps : 64;
    f(ctx);
    if (g) { set_blas_threads(nt); g(ctx); }
    for (int i = 0; i < reps; i++) {
        double t0 = bench_clock();
        f(ctx);
        tf[i] = bench_clock() - t0;
        if (g) {
            set_blas_threads(nt);   /* raw cblas: let BLAS use every thread */
            t0 = bench_clock();
            g(ctx);
            tg[i] = bench_clock() - t0;
        }
    }
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    if (g) {
        qsort(tg, (size_t)reps, sizeof *tg, cmp_double);
        *g_median = tg[reps / 2];
    }
    return tf[reps / 2];
}

static double time_median(bench_fn f, void *ctx) { return time_pair(f, NULL, ctx, NULL, 1); }

static void set_blas_threads(int n) {
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(n);
#else
    (void)n;
#endif
}

static mvt_tensor *rnd(int nd, const int64_t *shape, uint64_t seed) {
    mvt_rng r;
    mvt_rng_seed(&r, seed);
    mvt_tensor *t = mvt_empty(MVT_F32, nd, shape);
    mvt_fill_uniform(t, &r, -1, 1);
    return t;
}

/* ---- linear-layer matmuls: y [M, N] = x [M, K] @ w[N, K]^T ---------------- */

typedef struct {
    int64_t M, K, N;
    mvt_tensor *x, *w, *wt, *dy, *dyt;
    float *raw_out;
} lin_ctx;

static void lin_fwd(void *p) {
    lin_ctx *c = p;
    mvt_release(mvt_matmul(c->x, c->wt));
}
static void lin_bwd(void *p) {   /* dx = dy @ w, dw = dy^T @ x */
    lin_ctx *c = p;
    mvt_release(mvt_matmul(c->dy, c->w));
    mvt_release(mvt_matmul(c->dyt, c->x));
}
static void lin_fwd_raw(void *p) {
    lin_ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->M, (int)c->N, (int)c->K, 1.0f, mvt_f32(c->x),
                (int)c->K, mvt_f32(c->w), (int)c->K, 0.0f, c->raw_out, (int)c->N);
}
static void lin_bwd_raw(void *p) {
    lin_ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->M, (int)c->K, (int)c->N, 1.0f, mvt_f32(c->dy),
                (int)c->N, mvt_f32(c->w), (int)c->K, 0.0f, c->raw_out, (int)c->K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c->N, (int)c->K, (int)c->M, 1.0f, mvt_f32(c->dy),
                (int)c->N, mvt_f32(c->x), (int)c->K, 0.0f, c->raw_out, (int)c->K);
}

/* ---- attention matmuls: s [B, T, T] = q [B, T, d] @ k^T ------------------- */

typedef struct {
    int64_t B, T, d;
    mvt_tensor *q, *k, *kt, *ds, *dst;
    float *raw_out;
} att_ctx;

static void att_fwd(void *p) {
    att_ctx *c = p;
    mvt_release(mvt_matmul(c->q, c->kt));
}
static void att_bwd(void *p) {   /* dq = ds @ k, dk = ds^T @ q */
    att_ctx *c = p;
    mvt_release(mvt_matmul(c->ds, c->k));
    mvt_release(mvt_matmul(c->dst, c->q));
}
static void att_fwd_raw(void *p) {
    att_ctx *c = p;
    int T = (int)c->T, d = (int)c->d;
    for (int64_t b = 0; b < c->B; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, 1.0f, mvt_f32(c->q) + b * T * d, d,
                    mvt_f32(c->k) + b * T * d, d, 0.0f, c->raw_out + b * T * T, T);
}
static void att_bwd_raw(void *p) {
    att_ctx *c = p;
    int T = (int)c->T, d = (int)c->d;
    for (int64_t b = 0; b < c->B; b++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, 1.0f, mvt_f32(c->ds) + b * T * T, T,
                    mvt_f32(c->k) + b * T * d, d, 0.0f, c->raw_out + b * T * d, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, d, T, 1.0f, mvt_f32(c->ds) + b * T * T, T,
                    mvt_f32(c->q) + b * T * d, d, 0.0f, c->raw_out + b * T * d, d);
    }
}

/* ---- memory-bound kernels -------------------------------------------------- */

typedef struct {
    mvt_tensor *x, *y, *dy, *w, *b, *mean, *rstd, *dx, *dw, *db;
} mem_ctx;

static void softmax_fwd(void *p) { mem_ctx *c = p; mvt_release(mvt_softmax(c->x, NULL)); }
static void softmax_bwd(void *p) { mem_ctx *c = p; mvt_release(mvt_softmax_backward(c->y, c->dy)); }
static void ln_fwd(void *p) {
    mem_ctx *c = p;
    mvt_tensor *m, *r;
    mvt_release(mvt_layernorm(c->x, c->w, c->b, 1e-6, &m, &r));
    mvt_release(m);
    mvt_release(r);
}
static void ln_bwd(void *p) {
    mem_ctx *c = p;
    mvt_layernorm_backward(c->dy, c->x, c->w, c->mean, c->rstd, c->dx, c->dw, c->db);
}
static void gelu_fwd(void *p) { mem_ctx *c = p; mvt_release(mvt_gelu(c->x)); }
/* the backward the autograd op runs: gelu' from x and the forward's output y (no second erf) */
static void gelu_bwd(void *p) { mem_ctx *c = p; mvt_release(mvt_gelu_backward_y(c->x, c->y, c->dy)); }

/* machine limits of this run (rates per second) */
static double g_sgemm_flops, g_copy_bytes;

static void row_flops(const char *name, const char *shape, double flops, double t, double t_raw) {
    printf("| %-22s | %-22s | %9.3f | %8.1f GFLOP/s | %8.1f GFLOP/s | %5.2f | %5.0f %% sgemm |\n", name, shape,
           t * 1e3, flops / t * 1e-9, flops / t_raw * 1e-9, t / t_raw, 100 * flops / t / g_sgemm_flops);
}

static void row_bytes(const char *name, const char *shape, double bytes, double t) {
    printf("| %-22s | %-22s | %9.3f | %10.2f GB/s | %15s | %5s | %6.0f %% copy |\n", name, shape, t * 1e3,
           bytes / t * 1e-9, "", "", 100 * bytes / t / g_copy_bytes);
}

int main(int argc, char **argv) {
    (void)argc;
    /* The raw-cblas reference runs OpenBLAS's own worker threads between our
     * runs; after each call they spin for about 2^28 cycles and slow whatever
     * runs next (measured: our matmul rows 0.65-1.67x raw cblas from one run to
     * the next, 0.57-0.95x with a short timeout). OpenBLAS reads the timeout
     * when it loads, hence the re-exec. */
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) {
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
        execv("/proc/self/exe", argv);   /* returns only on failure: then measure as is */
    }
    const char *quick = getenv("MVEAD_BENCH_QUICK");
    if (quick && atoi(quick) != 0) g_reps = 2;
    g_cputime = env_flag("MVEAD_BENCH_CPUTIME");
    int nt = mvt_get_num_threads();
    mvt_set_num_threads(nt);
    /* the copy limit before the memory-bound rows, the sgemm peak before the
     * matmul rows (see below why BLAS runs last) */
    const int lim_n = 2048;
    const size_t lim_len = (size_t)32 << 20;   /* floats per array: 2 x 128 MB */
    g_copy_bytes = 2.0 * (double)lim_len * sizeof(float) / mvead_limit_copy_s(lim_len, 3, bench_clock);
    printf("## bench_kernels (f32, %d threads, median of %d%s)\n\n", nt, g_reps, g_cputime ? ", process CPU time" : "");
    printf("| %-22s | %-22s | %9s | %15s | %15s | %5s | %13s |\n", "kernel", "shape", "ms", "ours", "raw cblas", "ratio",
           "% limit");
    printf("|------------------------|------------------------|-----------|-----------------|-----------------|-------|"
           "---------------|\n");

    /* memory-bound kernels first: raw threaded BLAS below leaves its worker
     * threads spinning for a while, which would steal the second core */
    {
        mem_ctx c = {0};
        int64_t s[3] = {60, 257, 257};
        c.x = rnd(3, s, 7);
        c.dy = rnd(3, s, 8);
        c.y = mvt_softmax(c.x, NULL);
        double n = 60.0 * 257 * 257 * 4;
        row_bytes("softmax fwd", "60x257x257", 2 * n, time_median(softmax_fwd, &c));
        row_bytes("softmax bwd", "60x257x257", 3 * n, time_median(softmax_bwd, &c));
        mvt_release(c.x); mvt_release(c.dy); mvt_release(c.y);
    }
    {
        mem_ctx c = {0};
        int64_t s[2] = {1285, 768};
        c.x = rnd(2, s, 9);
        c.dy = rnd(2, s, 10);
        c.w = rnd(1, s + 1, 11);
        c.b = rnd(1, s + 1, 12);
        mvt_release(mvt_layernorm(c.x, c.w, c.b, 1e-6, &c.mean, &c.rstd));
        c.dx = mvt_zeros(MVT_F32, 2, s);
        c.dw = mvt_zeros(MVT_F32, 1, s + 1);
        c.db = mvt_zeros(MVT_F32, 1, s + 1);
        double n = 1285.0 * 768 * 4;
        row_bytes("layernorm fwd", "1285x768", 2 * n, time_median(ln_fwd, &c));
        row_bytes("layernorm bwd", "1285x768", 4 * n, time_median(ln_bwd, &c));
        mvt_tensor *ts[] = {c.x, c.dy, c.w, c.b, c.mean, c.rstd, c.dx, c.dw, c.db};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) mvt_release(ts[i]);
    }
    const int64_t gshape[2][2] = {{1285, 3072}, {1285, 768}};
    for (int g = 0; g < 2; g++) {
        mem_ctx c = {0};
        c.x = rnd(2, gshape[g], 13);
        c.dy = rnd(2, gshape[g], 14);
        c.y = mvt_gelu(c.x);
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)gshape[g][0], (long long)gshape[g][1]);
        double n = (double)gshape[g][0] * (double)gshape[g][1] * 4;
        row_bytes("gelu fwd", shape, 2 * n, time_median(gelu_fwd, &c));
        row_bytes("gelu bwd", shape, 3 * n, time_median(gelu_bwd, &c));   /* x, dy -> dx (+ y read: not counted) */
        mvt_release(c.x); mvt_release(c.dy); mvt_release(c.y);
    }
    set_blas_threads(nt);
    g_sgemm_flops = 2.0 * lim_n * (double)lim_n * lim_n / mvead_limit_sgemm_s(lim_n, 3, bench_clock);
    const int64_t lin[4][3] = {{1285, 768, 2304}, {1285, 768, 768}, {1285, 768, 3072}, {1285, 3072, 768}};
    for (int s = 0; s < 4; s++) {
        lin_ctx c = {.M = lin[s][0], .K = lin[s][1], .N = lin[s][2]};
        c.x = rnd(2, (int64_t[]){c.M, c.K}, 1);
        c.w = rnd(2, (int64_t[]){c.N, c.K}, 2);
        c.wt = mvt_transpose(c.w, 0, 1);
        c.dy = rnd(2, (int64_t[]){c.M, c.N}, 3);
        c.dyt = mvt_transpose(c.dy, 0, 1);
        c.raw_out = malloc(sizeof(float) * (size_t)(c.M * (c.N > c.K ? c.N : c.K) + c.N * c.K));
        char shape[64];
        snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)c.M, (long long)c.K, (long long)c.N);
        double fl = 2.0 * (double)c.M * (double)c.K * (double)c.N;
        double tfr, tbr;
        double tf = time_pair(lin_fwd, lin_fwd_raw, &c, &tfr, nt);
        row_flops("matmul fwd x@W^T", shape, fl, tf, tfr);
        double tb = time_pair(lin_bwd, lin_bwd_raw, &c, &tbr, nt);
        row_flops("matmul bwd dX,dW", shape, 2 * fl, tb, tbr);
        mvt_release(c.x); mvt_release(c.w); mvt_release(c.wt); mvt_release(c.dy); mvt_release(c.dyt);
        free(c.raw_out);
    }
    {
        att_ctx c = {.B = 60, .T = 257, .d = 64};
        c.q = rnd(3, (int64_t[]){c.B, c.T, c.d}, 4);
        c.k = rnd(3, (int64_t[]){c.B, c.T, c.d}, 5);
        c.kt = mvt_transpose(c.k, 1, 2);
        c.ds = rnd(3, (int64_t[]){c.B, c.T, c.T}, 6);
        c.dst = mvt_transpose(c.ds, 1, 2);
        c.raw_out = malloc(sizeof(float) * (size_t)(c.B * c.T * c.T));
        double fl = 2.0 * (double)c.B * (double)c.T * (double)c.T * (double)c.d;
        double tfr, tbr;
        double tf = time_pair(att_fwd, att_fwd_raw, &c, &tfr, nt);
        row_flops("attn QK^T", "60x(257x64 @ 64x257)", fl, tf, tfr);
        double tb = time_pair(att_bwd, att_bwd_raw, &c, &tbr, nt);
        row_flops("attn bwd dQ,dK", "60x257x257x64", 2 * fl, tb, tbr);
        mvt_release(c.q); mvt_release(c.k); mvt_release(c.kt); mvt_release(c.ds); mvt_release(c.dst);
        free(c.raw_out);
    }
    printf("\n(ratio = ours / raw cblas time; targets: <= 1.03 at 1 thread, <= 1.05 at 2)\n");
    printf("Limits in this run: copy %.2f GB/s (2 x %zu MB), sgemm %.1f GFLOP/s (%d^3).\n", g_copy_bytes * 1e-9,
           lim_len * sizeof(float) >> 20, g_sgemm_flops * 1e-9, lim_n);
    return 0;
}
