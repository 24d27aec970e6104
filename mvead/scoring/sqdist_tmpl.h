/* sqdist_tmpl: ||a - b||^2 for the float/double template bodies of
 * coreset.c and kmeans.c (included where `real` and SFX are defined).
 *
 * The arithmetic, which every variant below reproduces bit for bit: each
 * coordinate's difference is taken in double ((double)a[k] - (double)b[k]),
 * squared and added to lane k % 8 of 8 partial sums (in increasing k), for
 * the 8-aligned head of the vector; the tail (dim % 8 coordinates) goes into
 * a ninth sum in order; the result is
 * ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + tail.
 * No fused multiply-add: every product and sum is rounded on its own. A
 * single running sum would be a latency-bound chain (the compiler may not
 * reassociate it); 8 chains keep the FPU busy and the result is the same
 * for every thread count.
 *
 * Two builds of it: plain C (the lanes in named locals, so they stay in
 * registers), and on x86-64 an AVX2 one (two 4-wide double accumulators
 * holding lanes 0-3 and 4-7, target "avx2" only, so no FMA can be
 * contracted). SFX(mvs_sqdist_pick) returns the one the CPU runs; both give
 * the same bits (tests/check_bank.c compares them with a plain loop). */
#include <stdint.h>

#ifndef MVS_PRUNE_DEFINED
#define MVS_PRUNE_DEFINED
/* Pruning by the triangle inequality (the coreset's passes, k-means++'s
 * updates). A point i holds m_i = sqdist(x_i, c_a) for its nearest centre
 * so far c_a; a new centre c with computed b = sqdist(c, c_a) (or any
 * number <= it) satisfying
 *     b > mvs_prune_bound(m_i) = 4 (1 + 1e-6) m_i + 1e-300
 * cannot give sqdist(x_i, c) < m_i, so the update min(m_i, sqdist(x_i, c))
 * would leave m_i as it is, and the row of x_i need not be read.
 * Why, with rounding: sqdist sums non-negative terms, each a rounded
 * difference, squared and rounded, passing through at most dim + 8
 * roundings, so a computed value X' of a true X obeys
 * |X' - X| <= e X + tau, e = (dim + 8) 2^-53 (1 + o(1)) and tau <= dim 2^-1074
 * (products that underflow). With dim <= MVS_PRUNE_MAX_DIM = 2^24, e < 2e-9
 * and tau < 1e-316. Let M = (m_i + tau) / (1 - e) >= the true ||x_i - c_a||^2.
 * The test, itself rounded twice (relative 2^-52), gives the true
 * ||c - c_a||^2 >= (b - tau) / (1 + e) > 4 M, as
 * 4 (1 + 1e-6)(1 - 2^-52)(1 - e) > 4 (1 + e) and 1e-300 > 6 tau. Then
 * ||x_i - c|| >= ||c - c_a|| - ||x_i - c_a|| > 2 sqrt(M) - sqrt(M), so the
 * true ||x_i - c||^2 > M and its computed value is > M (1 - e) - tau = m_i.
 * Overflow: an infinite m_i makes the bound infinite and nothing is skipped;
 * an infinite b comes from a true value above DBL_MAX / (1 + e), which is
 * > 4 M for every finite bound, and an infinite sqdist(x_i, c) is >= m_i
 * anyway. NaN fails every comparison, so it is never skipped. */
#define MVS_PRUNE_MAX_DIM ((int64_t)1 << 24)
static inline double mvs_prune_bound(double m) { return 4.000004 * m + 1e-300; }
#endif

static inline double SFX(mvs_sqdist)(const real *a, const real *b, int64_t dim) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int64_t k = 0;
    for (; k + 8 <= dim; k += 8) {
        double d0 = (double)a[k] - (double)b[k], d1 = (double)a[k + 1] - (double)b[k + 1];
        double d2 = (double)a[k + 2] - (double)b[k + 2], d3 = (double)a[k + 3] - (double)b[k + 3];
        double d4 = (double)a[k + 4] - (double)b[k + 4], d5 = (double)a[k + 5] - (double)b[k + 5];
        double d6 = (double)a[k + 6] - (double)b[k + 6], d7 = (double)a[k + 7] - (double)b[k + 7];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
        s4 += d4 * d4; s5 += d5 * d5; s6 += d6 * d6; s7 += d7 * d7;
    }
    double tail = 0.0;
    for (; k < dim; k++) {
        double d = (double)a[k] - (double)b[k];
        tail += d * d;
    }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + tail;
}

typedef double (*SFX(mvs_sqdist_fn))(const real *a, const real *b, int64_t dim);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* 4 coordinates of a and b as doubles (lanes in order). */
#ifndef MVS_SQDIST_LOAD4_DEFINED
#define MVS_SQDIST_LOAD4_DEFINED
__attribute__((target("avx2"))) static inline __m256d mvs_sqdist_load4_f32(const float *p) {
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}
__attribute__((target("avx2"))) static inline __m256d mvs_sqdist_load4_f64(const double *p) {
    return _mm256_loadu_pd(p);
}
#endif

__attribute__((target("avx2"))) static double SFX(mvs_sqdist_avx2)(const real *a, const real *b, int64_t dim) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd(); /* lanes 0-3, 4-7 */
    int64_t k = 0;
    for (; k + 8 <= dim; k += 8) {
        __m256d dl = _mm256_sub_pd(SFX(mvs_sqdist_load4)(a + k), SFX(mvs_sqdist_load4)(b + k));
        __m256d dh = _mm256_sub_pd(SFX(mvs_sqdist_load4)(a + k + 4), SFX(mvs_sqdist_load4)(b + k + 4));
        lo = _mm256_add_pd(lo, _mm256_mul_pd(dl, dl));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(dh, dh));
    }
    double s[8];
    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);
    double tail = 0.0;
    for (; k < dim; k++) {
        double d = (double)a[k] - (double)b[k];
        tail += d * d;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

static double SFX(mvs_sqdist_generic)(const real *a, const real *b, int64_t dim) {
    return SFX(mvs_sqdist)(a, b, dim);
}

static inline SFX(mvs_sqdist_fn) SFX(mvs_sqdist_pick)(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? SFX(mvs_sqdist_avx2) : SFX(mvs_sqdist_generic);
}
#else
static double SFX(mvs_sqdist_generic)(const real *a, const real *b, int64_t dim) {
    return SFX(mvs_sqdist)(a, b, dim);
}
static inline SFX(mvs_sqdist_fn) SFX(mvs_sqdist_pick)(void) { return SFX(mvs_sqdist_generic); }
#endif
