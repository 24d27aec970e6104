/* vecmath: the f32 vector kernels behind exp, tanh, GELU, softmax and
 * LayerNorm (tensor/elementwise.c, softmax.c, layernorm.c call them; the
 * accuracy test tests/check_vecmath.c sweeps every ISA level). The
 * transcendental functions are SLEEF's 1-ulp (erfc 1.5-ulp) vector versions,
 * except GELU's Phi: glibc libmvec's erfcf where configure finds it (4-5x
 * cheaper than SLEEF's erf, same accuracy sweep);
 * the ISA (AVX-512, AVX2+FMA, SSE2) is picked once at run time. Internal to
 * libmvead: not installed. */
#ifndef MVEAD_TENSOR_VECMATH_H
#define MVEAD_TENSOR_VECMATH_H

#include <stdint.h>

typedef struct {
    const char *name;
    void (*vexp)(float *y, const float *x, int64_t n);
    void (*vtanh)(float *y, const float *x, int64_t n);
    void (*gelu)(float *y, const float *x, int64_t n);                       /* exact (erf) GELU */
    void (*gelu_bwd)(float *dx, const float *x, const float *dy, int64_t n); /* dx = dy gelu'(x) */
    /* the same from the forward's y = gelu(x), without an erf: dx may alias dy */
    void (*gelu_bwd_y)(float *dx, const float *x, const float *y, const float *dy, int64_t n);
    /* y [n]: masked logits (-inf = masked) -> softmax in place; all -inf -> zeros */
    void (*softmax_row)(float *y, int64_t n);
    /* the same, returning the row's log-sum-exp max + log(sum exp(y - max)) (-inf for an all -inf row) */
    double (*softmax_row_lse)(float *y, int64_t n);
    /* y = softmax(scale x) of an unmasked row, scale > 0 (x and y distinct) */
    void (*softmax_row_scaled)(float *y, const float *x, float scale, int64_t n);
    void (*softmax_bwd_row)(const float *y, const float *dy, float *dx, int64_t n);
    /* the block-sparse attention's row passes: y = exp(x - c) (y may be x), d = p (d - s), dst += src */
    void (*sub_exp)(float *y, const float *x, float c, int64_t n);
    void (*mul_sub)(float *d, const float *p, float s, int64_t n);
    void (*add_to)(float *dst, const float *src, int64_t n);
    /* LayerNorm of a row: x, y [n]; w, b [n] in f64 (converted once per call) or NULL; f64 statistics out */
    void (*ln_row)(const float *x, const double *w, const double *b, float *y, int64_t n, double eps, double *mean,
                   double *rstd);
    /* its backward: dx [n] += (NULL: skipped); aw += dy xh, ab += dy: f64 partial sums of dw, db (NULL: skipped) */
    void (*ln_bwd_row)(const float *dy, const float *x, const double *w, double mu, double rs, float *dx, double *aw,
                       double *ab, int64_t n);
} mvv_table;

/* The kernels for this CPU (the widest ISA it runs). */
const mvv_table *mvv_get(void);

/* Every ISA level this CPU runs, widest first, for the tests; returns the count (<= 3). */
int mvv_levels(const mvv_table **out);

#endif
