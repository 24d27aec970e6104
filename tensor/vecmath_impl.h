/* One ISA's f32 vector kernels, included by vecmath.c once per ISA under a
 * `#pragma GCC target` with V_W (floats per vector), FN(name) (suffixes the
 * ISA), V_EXP, V_ERF, V_ERFC, V_TANH (SLEEF's lane-wise functions of that width),
 * optionally V_ERFC_ALL (libmvec's erfcf of that width, for GELU's Phi),
 * V_LO, V_HI, V_NARROW (f32 <-> f64 halves, the ISA's conversions), and
 * optionally V_LD_PART, V_ST_PART (masked tail moves),
 * V_NAME; it undefines them at its end, ready for the next ISA.
 * Written with GCC vector extensions so that one text serves every width.
 * A tail shorter than a vector goes through the same lane-wise function on a
 * padded copy, so an element's result never depends on its position in the
 * array (hence not on how rows or blocks are split over threads). Sums run in
 * f64, lanes in a fixed order. */

typedef float FN(vf) __attribute__((vector_size(V_W * 4)));
typedef int32_t FN(vi) __attribute__((vector_size(V_W * 4)));
typedef double FN(vd) __attribute__((vector_size(V_W * 4)));   /* V_W / 2 doubles */
#define vf FN(vf)
#define vi FN(vi)
#define vd FN(vd)
#define V_H (V_W / 2)

static inline vf FN(ld)(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void FN(st)(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* first n (< V_W) elements of p, the other lanes = pad; V_LD_PART and
 * V_ST_PART, where the ISA has masked moves, touch no byte past p[n - 1]
 * (the generic form costs a failed store-to-load forwarding per row tail) */
static inline vf FN(ld_part)(const float *p, int64_t n, float pad) {
#ifdef V_LD_PART
    return (vf)V_LD_PART(p, n, pad);
#else
    float b[V_W];
    for (int i = 0; i < V_W; i++) b[i] = i < n ? p[i] : pad;
    return FN(ld)(b);
#endif
}
static inline void FN(st_part)(float *p, vf v, int64_t n) {
#ifdef V_ST_PART
    V_ST_PART(p, v, n);
#else
    float b[V_W];
    memcpy(b, &v, sizeof b);
    memcpy(p, b, (size_t)n * sizeof *p);
#endif
}
static inline vf FN(splat)(float a) { return (vf){0} + a; }
static inline vf FN(sel)(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
/* lanes 0..V_H-1 and V_H..V_W-1 of v as doubles, and back: one conversion
 * each (V_LO, V_HI, V_NARROW are the ISA's intrinsics, from vecmath.c). The
 * generic form (__builtin_convertvector on a memcpy'd half) made GCC 12 build
 * the narrowed vector on the stack, a failed store-to-load forwarding per
 * vector that cost LayerNorm half its time. */
static inline vd FN(lo)(vf v) { return (vd)V_LO(v); }
static inline vd FN(hi)(vf v) { return (vd)V_HI(v); }
static inline vf FN(narrow)(vd lo, vd hi) { return (vf)V_NARROW(lo, hi); }
static inline double FN(hsum)(vd v) {
    double s = 0;
    for (int i = 0; i < V_H; i++) s += v[i];
    return s;
}

/* gelu(x) = x Phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)). Without libmvec's
 * erfcf (below): SLEEF's erf costs ~8 exps and its erfc ~12, so erf carries
 * the bulk; its absolute error
 * (about 1 ulp of 1) times |x| / 2 stays under 1e-7 only for x >= -3. Below,
 * 1 + erf has cancelled and Phi(x) = 0.5 erfc(-x / sqrt 2) takes over, lane
 * by lane (a vector pays for erfc only when one of its lanes needs it). */
static inline vf FN(phi2_v)(vf x) {   /* 2 Phi(x) */
#ifdef V_ERFC_ALL
    /* 2 Phi(x) = erfc(-x / sqrt 2) on every lane: for x > 0 erfc lies in
     * [1, 2], for x < 0 it is the tail itself, so no cancellation anywhere
     * and one call; libmvec's erfcf costs less than SLEEF's erf alone */
    return V_ERFC_ALL(x * -0.70710678118654752f);
#else
    vf p = 1.0f + V_ERF(x * 0.70710678118654752f);
    vi tail = x < -3.0f;
    int any = 0;
    for (int l = 0; l < V_W; l++) any |= tail[l];
    if (any) p = FN(sel)(tail, V_ERFC(x * -0.70710678118654752f), p);
    return p;
#endif
}
static inline vf FN(gelu_v)(vf x) { return 0.5f * x * FN(phi2_v)(x); }
/* gelu'(x) = Phi(x) + x phi(x) */
static inline vf FN(dgelu_v)(vf x) {
    return 0.5f * FN(phi2_v)(x) + x * 0.39894228040143268f * V_EXP(-0.5f * x * x);
}

#define DEF_MAP1(NAME, EXPR)                                                                       \
    static void FN(NAME)(float *y, const float *x_, int64_t n) {                                   \
        int64_t i = 0;                                                                             \
        for (; i + V_W <= n; i += V_W) { vf x = FN(ld)(x_ + i); FN(st)(y + i, (EXPR)); }          \
        if (i < n) { vf x = FN(ld_part)(x_ + i, n - i, 0); FN(st_part)(y + i, (EXPR), n - i); }   \
    }
DEF_MAP1(exp, V_EXP(x))
DEF_MAP1(tanh, V_TANH(x))
DEF_MAP1(gelu, FN(gelu_v)(x))
#undef DEF_MAP1

/* dx = dy gelu'(x) */
static void FN(gelu_bwd)(float *dx, const float *x_, const float *dy, int64_t n) {
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) FN(st)(dx + i, FN(ld)(dy + i) * FN(dgelu_v)(FN(ld)(x_ + i)));
    if (i < n) {
        vf g = FN(ld_part)(dy + i, n - i, 0), x = FN(ld_part)(x_ + i, n - i, 0);
        FN(st_part)(dx + i, g * FN(dgelu_v)(x), n - i);
    }
}

/* dx = dy gelu'(x) from the forward's output y = gelu(x): Phi(x) = y / x
 * (within 3 ulp of the erf-based value) saves the backward its erf, the
 * dearest function here. Near 0, where y / x loses digits, Phi(x) = 1/2 +
 * x / sqrt(2 pi) to far below an ulp. +-inf gives NaN, as gelu_bwd and the f64
 * formula do (inf * 0). */
static inline vf FN(dgelu_y_v)(vf x, vf y) {
    vf ax = (vf)((vi)x & 0x7fffffff);
    vf phi = FN(sel)(ax < 9.5367431640625e-07f, 0.5f + 0.39894228040143268f * x, y / x);
    return phi + x * 0.39894228040143268f * V_EXP(-0.5f * x * x);
}

static void FN(gelu_bwd_y)(float *dx, const float *x_, const float *y_, const float *dy, int64_t n) {
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W)
        FN(st)(dx + i, FN(ld)(dy + i) * FN(dgelu_y_v)(FN(ld)(x_ + i), FN(ld)(y_ + i)));
    if (i < n) {
        vf g = FN(ld_part)(dy + i, n - i, 0), x = FN(ld_part)(x_ + i, n - i, 0), y = FN(ld_part)(y_ + i, n - i, 0);
        FN(st_part)(dx + i, g * FN(dgelu_y_v)(x, y), n - i);
    }
}

/* y [n] holds masked logits (-inf = masked); in place y = softmax(y). A row
 * with nothing finite to attend to (every logit -inf) becomes zeros. NaN
 * logits are skipped by the max and poison the sum (the row becomes NaN), as
 * in the f64 reference. */
static double FN(softmax_row_lse)(float *y, int64_t n) {
    vf m = FN(splat)(-INFINITY);
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) { vf v = FN(ld)(y + i); m = FN(sel)(v > m, v, m); }
    if (i < n) { vf v = FN(ld_part)(y + i, n - i, -INFINITY); m = FN(sel)(v > m, v, m); }
    float mx = -INFINITY;
    for (int l = 0; l < V_W; l++) mx = m[l] > mx ? m[l] : mx;
    if (mx == -INFINITY) { memset(y, 0, (size_t)n * sizeof *y); return -INFINITY; }
    vd s0 = {0}, s1 = {0};
    vf vm = FN(splat)(mx);
    for (i = 0; i + V_W <= n; i += V_W) {
        vf e = V_EXP(FN(ld)(y + i) - vm);
        FN(st)(y + i, e);
        s0 += FN(lo)(e);
        s1 += FN(hi)(e);
    }
    if (i < n) {
        vf e = V_EXP(FN(ld_part)(y + i, n - i, -INFINITY) - vm);   /* padding: exp(-inf) = 0 */
        FN(st_part)(y + i, e, n - i);
        s0 += FN(lo)(e);
        s1 += FN(hi)(e);
    }
    double sum = FN(hsum)(s0) + FN(hsum)(s1);
    vf inv = FN(splat)((float)(1.0 / sum));
    for (i = 0; i + V_W <= n; i += V_W) FN(st)(y + i, FN(ld)(y + i) * inv);
    if (i < n) FN(st_part)(y + i, FN(ld_part)(y + i, n - i, 0) * inv, n - i);
    return (double)mx + log(sum);
}
static void FN(softmax_row)(float *y, int64_t n) { (void)FN(softmax_row_lse)(y, n); }

/* y = exp(x - c) (x may be y; -inf gives 0): attention probabilities from a row's log-sum-exp */
static void FN(sub_exp)(float *y, const float *x_, float c, int64_t n) {
    vf vc = FN(splat)(c);
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) FN(st)(y + i, V_EXP(FN(ld)(x_ + i) - vc));
    if (i < n) FN(st_part)(y + i, V_EXP(FN(ld_part)(x_ + i, n - i, -INFINITY) - vc), n - i);
}

/* d = p (d - s): the softmax backward of a row whose sum(dy y) is s */
static void FN(mul_sub)(float *d, const float *p, float s, int64_t n) {
    vf vs = FN(splat)(s);
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) FN(st)(d + i, FN(ld)(p + i) * (FN(ld)(d + i) - vs));
    for (; i < n; i++) d[i] = p[i] * (d[i] - s);
}

/* dst += src */
static void FN(add_to)(float *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) FN(st)(dst + i, FN(ld)(dst + i) + FN(ld)(src + i));
    for (; i < n; i++) dst[i] += src[i];
}

/* y = softmax(scale x) of one row (scale > 0, no mask), read straight from x:
 * max(scale x) = scale max(x) as rounding is monotone, so the max pass needs
 * no product; the exp pass writes y. Row semantics as softmax_row. */
static void FN(softmax_row_scaled)(float *y, const float *x, float scale, int64_t n) {
    vf m = FN(splat)(-INFINITY);
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) { vf v = FN(ld)(x + i); m = FN(sel)(v > m, v, m); }
    if (i < n) { vf v = FN(ld_part)(x + i, n - i, -INFINITY); m = FN(sel)(v > m, v, m); }
    float mx = -INFINITY;
    for (int l = 0; l < V_W; l++) mx = m[l] > mx ? m[l] : mx;
    if (mx == -INFINITY) { memset(y, 0, (size_t)n * sizeof *y); return; }
    vd s0 = {0}, s1 = {0};
    vf vs = FN(splat)(scale), vm = FN(splat)(mx * scale);
    for (i = 0; i + V_W <= n; i += V_W) {
        vf z = FN(ld)(x + i) * vs;
        __asm__("" : "+x"(z));   /* the logit rounded to f32 first, as the masked path stores it: no FMA */
        vf e = V_EXP(z - vm);
        FN(st)(y + i, e);
        s0 += FN(lo)(e);
        s1 += FN(hi)(e);
    }
    if (i < n) {
        vf z = FN(ld_part)(x + i, n - i, -INFINITY) * vs;
        __asm__("" : "+x"(z));
        vf e = V_EXP(z - vm);   /* padding: exp(-inf) = 0 */
        FN(st_part)(y + i, e, n - i);
        s0 += FN(lo)(e);
        s1 += FN(hi)(e);
    }
    vf inv = FN(splat)((float)(1.0 / (FN(hsum)(s0) + FN(hsum)(s1))));
    for (i = 0; i + V_W <= n; i += V_W) FN(st)(y + i, FN(ld)(y + i) * inv);
    if (i < n) FN(st_part)(y + i, FN(ld_part)(y + i, n - i, 0) * inv, n - i);
}

/* sum_j a_j b_j in f64 */
static double FN(dot)(const float *a, const float *b, int64_t n) {
    vd s0 = {0}, s1 = {0};
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) {
        vf p = FN(ld)(a + i), q = FN(ld)(b + i);
        s0 += FN(lo)(p) * FN(lo)(q);
        s1 += FN(hi)(p) * FN(hi)(q);
    }
    if (i < n) {
        vf p = FN(ld_part)(a + i, n - i, 0), q = FN(ld_part)(b + i, n - i, 0);
        s0 += FN(lo)(p) * FN(lo)(q);
        s1 += FN(hi)(p) * FN(hi)(q);
    }
    return FN(hsum)(s0) + FN(hsum)(s1);
}

/* softmax backward of one row: dx = y (dy - sum(dy y)) */
static void FN(softmax_bwd_row)(const float *y, const float *dy, float *dx, int64_t n) {
    vf st = FN(splat)((float)FN(dot)(dy, y, n));
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) FN(st)(dx + i, FN(ld)(y + i) * (FN(ld)(dy + i) - st));
    if (i < n) FN(st_part)(dx + i, FN(ld_part)(y + i, n - i, 0) * (FN(ld_part)(dy + i, n - i, 0) - st), n - i);
}

static inline vd FN(ld_d)(const double *p) { vd v; memcpy(&v, p, sizeof v); return v; }
static inline void FN(st_d)(double *p, vd v) { memcpy(p, &v, sizeof v); }

/* LayerNorm of one row, one pass for the statistics: sums of x - x[0] and of
 * its square in f64 (the shift keeps the variance formula free of
 * cancellation when |mean| >> std), then one pass y = (x - mu) rs w + b in
 * f64, rounded once. w, b (f64, converted once per call by the caller) may be
 * NULL. */
static void FN(ln_row)(const float *x, const double *w, const double *b, float *y, int64_t n, double eps,
                       double *mean, double *rstd) {
    vd c = FN(lo)(FN(splat)(x[0]));
    vd a0 = {0}, a1 = {0}, q0 = {0}, q1 = {0};
    int64_t i = 0;
    for (; i + V_W <= n; i += V_W) {
        vf v = FN(ld)(x + i);
        vd d0 = FN(lo)(v) - c, d1 = FN(hi)(v) - c;
        a0 += d0; a1 += d1;
        q0 += d0 * d0; q1 += d1 * d1;
    }
    if (i < n) {   /* pad with x[0]: its shifted value is exactly 0 */
        vf v = FN(ld_part)(x + i, n - i, x[0]);
        vd d0 = FN(lo)(v) - c, d1 = FN(hi)(v) - c;
        a0 += d0; a1 += d1;
        q0 += d0 * d0; q1 += d1 * d1;
    }
    double s1 = FN(hsum)(a0) + FN(hsum)(a1), s2 = FN(hsum)(q0) + FN(hsum)(q1);
    double m1 = s1 / (double)n, var = s2 / (double)n - m1 * m1;
    if (var < 0) var = 0;
    double mu = (double)x[0] + m1, rs = 1.0 / sqrt(var + eps);
    *mean = mu;
    *rstd = rs;
    vd z = {0}, vmu = z + mu, vrs = z + rs, one = z + 1;
    for (i = 0; i + V_W <= n; i += V_W) {
        vf v = FN(ld)(x + i);
        vd o0 = (FN(lo)(v) - vmu) * vrs, o1 = (FN(hi)(v) - vmu) * vrs;
        vd w0 = w ? FN(ld_d)(w + i) : one, w1 = w ? FN(ld_d)(w + i + V_H) : one;
        vd b0 = b ? FN(ld_d)(b + i) : z, b1 = b ? FN(ld_d)(b + i + V_H) : z;
        FN(st)(y + i, FN(narrow)(o0 * w0 + b0, o1 * w1 + b1));
    }
    for (; i < n; i++) {   /* scalar tail: its columns are fixed by n, so no split of rows moves them */
        double o = ((double)x[i] - mu) * rs;
        y[i] = (float)(o * (w ? w[i] : 1.0) + (b ? b[i] : 0.0));
    }
}

/* LayerNorm backward of one row, with g = dy w and xh = (x - mu) rs:
 * dx += rs (g - mean(g) - xh mean(g xh)) (dx NULL: not wanted), and the f64
 * partial sums of dw and db: aw += dy xh, ab += dy (NULL: not wanted). One
 * pass for the two means, one for the rest, both over a row in L1. The first
 * pass keeps dy and xh in f64 for the second (rows up to LN_ROW_BUF), which
 * then converts nothing: the same values, so the same bits either way. */
#ifndef LN_ROW_BUF
#define LN_ROW_BUF 1024
#endif
static void FN(ln_bwd_row)(const float *dy, const float *x, const double *w, double mu, double rs, float *dx,
                           double *aw, double *ab, int64_t n) {
    vd z = {0}, vmu = z + mu, vrs = z + rs, one = z + 1;
    double m1 = 0, m2 = 0;
    double dbuf[LN_ROW_BUF] __attribute__((aligned(64))), hbuf[LN_ROW_BUF] __attribute__((aligned(64)));
    const int buf = dx && n <= LN_ROW_BUF;
    int64_t i;
    if (dx) {
        vd g0s = z, g1s = z, h0s = z, h1s = z;
        for (i = 0; i + V_W <= n; i += V_W) {
            vf gv = FN(ld)(dy + i), v = FN(ld)(x + i);
            vd d0 = FN(lo)(gv), d1 = FN(hi)(gv);
            vd h0 = (FN(lo)(v) - vmu) * vrs, h1 = (FN(hi)(v) - vmu) * vrs;
            if (buf) {
                FN(st_d)(dbuf + i, d0); FN(st_d)(dbuf + i + V_H, d1);
                FN(st_d)(hbuf + i, h0); FN(st_d)(hbuf + i + V_H, h1);
            }
            vd g0 = d0 * (w ? FN(ld_d)(w + i) : one), g1 = d1 * (w ? FN(ld_d)(w + i + V_H) : one);
            g0s += g0; g1s += g1;
            h0s += g0 * h0;
            h1s += g1 * h1;
        }
        m1 = FN(hsum)(g0s) + FN(hsum)(g1s);
        m2 = FN(hsum)(h0s) + FN(hsum)(h1s);
        for (; i < n; i++) {
            double g = (double)dy[i] * (w ? w[i] : 1.0);
            m1 += g;
            m2 += g * (((double)x[i] - mu) * rs);
        }
        m1 /= (double)n;
        m2 /= (double)n;
    }
    vd vm1 = z + m1, vm2 = z + m2;
    for (i = 0; i + V_W <= n; i += V_W) {
        vd d0, d1, h0, h1;
        if (buf) {
            d0 = FN(ld_d)(dbuf + i); d1 = FN(ld_d)(dbuf + i + V_H);
            h0 = FN(ld_d)(hbuf + i); h1 = FN(ld_d)(hbuf + i + V_H);
        } else {
            vf gv = FN(ld)(dy + i), v = FN(ld)(x + i);
            d0 = FN(lo)(gv); d1 = FN(hi)(gv);
            h0 = (FN(lo)(v) - vmu) * vrs; h1 = (FN(hi)(v) - vmu) * vrs;
        }
        if (dx) {
            vd g0 = d0 * (w ? FN(ld_d)(w + i) : one), g1 = d1 * (w ? FN(ld_d)(w + i + V_H) : one);
            FN(st)(dx + i, FN(ld)(dx + i) + FN(narrow)(vrs * (g0 - vm1 - h0 * vm2), vrs * (g1 - vm1 - h1 * vm2)));
        }
        if (aw) {
            FN(st_d)(aw + i, FN(ld_d)(aw + i) + d0 * h0);
            FN(st_d)(aw + i + V_H, FN(ld_d)(aw + i + V_H) + d1 * h1);
        }
        if (ab) {
            FN(st_d)(ab + i, FN(ld_d)(ab + i) + d0);
            FN(st_d)(ab + i + V_H, FN(ld_d)(ab + i + V_H) + d1);
        }
    }
    for (; i < n; i++) {   /* scalar tail: its columns are fixed by n, so no split of rows moves them */
        double d = dy[i], h = ((double)x[i] - mu) * rs;
        if (dx) dx[i] += (float)(rs * (d * (w ? w[i] : 1.0) - m1 - h * m2));
        if (aw) aw[i] += d * h;
        if (ab) ab[i] += d;
    }
}

static const mvv_table FN(table) = {
    .name = V_NAME,
    .vexp = FN(exp),
    .vtanh = FN(tanh),
    .gelu = FN(gelu),
    .gelu_bwd = FN(gelu_bwd),
    .gelu_bwd_y = FN(gelu_bwd_y),
    .softmax_row = FN(softmax_row),
    .softmax_row_lse = FN(softmax_row_lse),
    .softmax_row_scaled = FN(softmax_row_scaled),
    .softmax_bwd_row = FN(softmax_bwd_row),
    .sub_exp = FN(sub_exp),
    .mul_sub = FN(mul_sub),
    .add_to = FN(add_to),
    .ln_row = FN(ln_row),
    .ln_bwd_row = FN(ln_bwd_row),
};

#undef vf
#undef vi
#undef vd
#undef V_H
#undef V_W
#undef V_NAME
#undef FN
#undef V_EXP
#undef V_ERF
#undef V_ERFC
#undef V_ERFC_ALL
#undef V_TANH
#undef V_LO
#undef V_HI
#undef V_NARROW
#undef V_LD_PART
#undef V_ST_PART
